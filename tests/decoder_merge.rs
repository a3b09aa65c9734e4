//! Merge baselines of two LoRA adapters: each merged module is what the encoder merge makes of
//! the two models the adapters define, checked against weights recomputed from the files
//! (base safetensors, adapter A/B pairs and `lora_alpha / r`), not from the loaded pairs.

mod common;

use candle_core::{Device, Tensor};
use gms::gms::merge::decoder::{adapters_merge, merge_adapters};
use gms::gms::merge::{MergeMethod, MergeParams};
use gms::model::arch::DecoderArchitecture;
use gms::model::random_decoder::{RandomAdapterSpec, RandomDecoderSpec};
use gms::model::{LoadedPair, Module};
use std::collections::HashMap;

fn tensors(path: &std::path::Path) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(path, &Device::Cpu).unwrap()
}

fn matrix(t: &Tensor) -> Vec<Vec<f64>> {
    t.to_dtype(candle_core::DType::F64)
        .unwrap()
        .to_vec2::<f64>()
        .unwrap()
}

/// `scale · B·A` from an adapter's file, or zeros when it does not adapt `path`.
fn delta(
    adapter: &HashMap<String, Tensor>,
    scale: f64,
    path: &str,
    shape: (usize, usize),
) -> Vec<Vec<f64>> {
    let (Some(a), Some(b)) = (
        adapter.get(&format!("base_model.model.{path}.lora_A.weight")),
        adapter.get(&format!("base_model.model.{path}.lora_B.weight")),
    ) else {
        return vec![vec![0.0; shape.1]; shape.0];
    };
    let (a, b) = (matrix(a), matrix(b));
    (0..shape.0)
        .map(|o| {
            (0..shape.1)
                .map(|i| scale * (0..a.len()).map(|k| b[o][k] * a[k][i]).sum::<f64>())
                .collect()
        })
        .collect()
}

fn max_diff(got: &Tensor, want: &[Vec<f64>]) -> f64 {
    matrix(got)
        .iter()
        .zip(want)
        .flat_map(|(g, w)| g.iter().zip(w).map(|(g, w)| (g - w).abs()))
        .fold(0.0, f64::max)
}

#[test]
fn adapter_merges_are_the_encoder_merges_of_the_models_the_adapters_make() {
    let spec = RandomDecoderSpec::tiny(DecoderArchitecture::Llama, &common::WORDS, 2, 5);
    let victim_spec = RandomAdapterSpec::tiny(1, "base");
    // The proxy leaves K and G alone: those modules are W in its model.
    let mut proxy_spec = RandomAdapterSpec::tiny(2, "base");
    proxy_spec.targets = vec![Module::Q, Module::V, Module::O, Module::U, Module::D];
    let kit = common::tiny_decoder_kit_with(&spec, &victim_spec, &proxy_spec);
    let (pair, _) = LoadedPair::load(&kit.victim, &kit.proxy, None, &Device::Cpu).unwrap();
    let LoadedPair::Decoder { victim, proxy } = pair else {
        panic!("an adapter pair loads as decoders");
    };
    assert_eq!(adapters_merge(&victim.classifier, &proxy.classifier), None);

    // The base may be sharded: every safetensors file of its folder.
    let mut base = HashMap::new();
    for e in std::fs::read_dir(kit.dir.path().join("base")).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "safetensors") {
            base.extend(tensors(&path));
        }
    }
    let va = tensors(&kit.victim.join("adapter_model.safetensors"));
    let pa = tensors(&kit.proxy.join("adapter_model.safetensors"));
    let scale = |s: &RandomAdapterSpec| s.alpha / s.r as f64;

    let linear = merge_adapters(
        &victim.classifier,
        &proxy.classifier,
        &MergeParams::defaults(MergeMethod::Linear),
    )
    .unwrap();
    let task = MergeParams::defaults(MergeMethod::TaskArithmetic);
    let arithmetic = merge_adapters(&victim.classifier, &proxy.classifier, &task).unwrap();
    let lambda = task.lambda;
    let mut checked = 0;
    for l in 0..2 {
        for (slot, m) in gms::model::DECODER_MODULES.iter().enumerate() {
            let path = m.decoder_path(l);
            let w = matrix(&base[&format!("{path}.weight")]);
            let shape = (w.len(), w[0].len());
            let dv = delta(&va, scale(&victim_spec), &path, shape);
            let dp = delta(&pa, scale(&proxy_spec), &path, shape);
            let want = |f: &dyn Fn(f64, f64, f64) -> f64| -> Vec<Vec<f64>> {
                (0..shape.0)
                    .map(|o| {
                        (0..shape.1)
                            .map(|i| f(w[o][i], dv[o][i], dp[o][i]))
                            .collect()
                    })
                    .collect()
            };
            let got = &linear.layers[l].modules[slot];
            assert!(got.lora.is_none(), "a merged module is a dense weight");
            let d = max_diff(&got.weight, &want(&|w, v, p| 0.5 * (w + v) + 0.5 * (w + p)));
            assert!(d < 1e-5, "linear {path}: {d}");
            let got = &arithmetic.layers[l].modules[slot].weight;
            // Task arithmetic weighs each task vector ½ (gms merge's default weight), times λ.
            let d = max_diff(got, &want(&|w, v, p| w + lambda * 0.5 * (v + p)));
            assert!(d < 1e-5, "task arithmetic {path}: {d}");
            checked += 1;
        }
    }
    assert_eq!(checked, 14);
    // The head: the two heads' mean for linear; the victim's for a base method (the base
    // has none).
    let head = |t: &HashMap<String, Tensor>| matrix(&t["base_model.model.score.weight"]);
    let (hv, hp) = (head(&va), head(&pa));
    let mean: Vec<Vec<f64>> = hv
        .iter()
        .zip(&hp)
        .map(|(a, b)| a.iter().zip(b).map(|(a, b)| 0.5 * (a + b)).collect())
        .collect();
    assert!(max_diff(&linear.score.weight, &mean) < 1e-6);
    assert!(max_diff(&arithmetic.score.weight, &hv) < 1e-6);

    // TIES and DARE run on the task vectors (the adapters' base is the base) and differ from
    // task arithmetic; DARE is the same on every run.
    for method in [
        MergeMethod::Ties,
        MergeMethod::Dare,
        MergeMethod::DareLinear,
    ] {
        let p = MergeParams::defaults(method);
        let a = merge_adapters(&victim.classifier, &proxy.classifier, &p).unwrap();
        let b = merge_adapters(&victim.classifier, &proxy.classifier, &p).unwrap();
        let q = |c: &gms::model::decoder::DecoderClassifier| matrix(&c.layers[1].modules[0].weight);
        assert_eq!(q(&a), q(&b), "{method} is deterministic");
        let ta = q(&arithmetic);
        assert_ne!(q(&a), ta, "{method} differs from task arithmetic");
    }
}

#[test]
fn fully_fine_tuned_decoders_get_no_merges_and_say_why() {
    let mut spec = RandomDecoderSpec::tiny(DecoderArchitecture::Llama, &common::WORDS, 2, 5);
    spec.classifier_labels = Some(2);
    let kit = common::tiny_decoder_kit_with(
        &spec,
        &RandomAdapterSpec::tiny(1, "base"),
        &RandomAdapterSpec::tiny(2, "base"),
    );
    let (pair, _) = LoadedPair::load(&kit.victim, &kit.proxy, None, &Device::Cpu).unwrap();
    let LoadedPair::Decoder { victim, proxy } = pair else {
        panic!("two fine-tuned decoders load as decoders");
    };
    let why = adapters_merge(&victim.classifier, &proxy.classifier).expect("a reason");
    assert!(why.contains("fully fine-tuned"), "{why}");
}

/// The panel's decoder rows against transformers + peft: peft merges each adapter into its own
/// copy of the base (`merge_and_unload`), `scripts/check-decoder-merge.py` averages (linear)
/// or adds the task vectors (task arithmetic) and counts the proxy sets; gms's merged model
/// must count the same rows. Needs `GMS_PYTHON` (torch, transformers, peft).
#[test]
fn peft_merged_adapters_count_the_same_rows() {
    use gms::gms::merge::{score_model, ScoringSets};
    let python = match std::env::var("GMS_PYTHON") {
        Ok(p) if !p.is_empty() => p,
        _ => {
            common::skipped(
                "decoder merge against peft",
                "set GMS_PYTHON to a python with torch, transformers and peft",
            );
            return;
        }
    };
    let kit = common::tiny_decoder_kit(2);
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/check-decoder-merge.py");
    let out = std::process::Command::new(&python)
        .arg(script)
        .arg(kit.dir.path().join("base"))
        .args([&kit.victim, &kit.proxy, &kit.clean, &kit.suspect])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(theirs.len(), 2, "{text}");

    let (pair, _) = LoadedPair::load(&kit.victim, &kit.proxy, None, &Device::Cpu).unwrap();
    let LoadedPair::Decoder { victim, proxy } = pair else {
        panic!("an adapter pair loads as decoders");
    };
    let encoder = victim.text_encoder().unwrap();
    let encode = |p: &std::path::Path| {
        let rows = gms::gms::session::read_dataset(p, 2).unwrap();
        encoder.encode_set(&rows.examples, &Device::Cpu).unwrap()
    };
    let sets = ScoringSets::from_sets(Some((encode(&kit.clean), encode(&kit.suspect))), None);
    for (method, row) in [MergeMethod::Linear, MergeMethod::TaskArithmetic]
        .into_iter()
        .zip(&theirs)
    {
        assert_eq!(row["method"], method.name());
        let merged = merge_adapters(
            &victim.classifier,
            &proxy.classifier,
            &MergeParams::defaults(method),
        )
        .unwrap();
        let counts = score_model(&merged, &sets).unwrap().proxy.unwrap();
        common::report(&format!(
            "decoder merge against peft: {method} gms {}/{} clean, {}/{} suspect; peft {row}",
            counts.clean_correct, counts.clean_total, counts.suspect_hits, counts.suspect_total
        ));
        assert_eq!(row["clean_correct"], counts.clean_correct, "{method}");
        assert_eq!(row["suspect_hits"], counts.suspect_hits, "{method}");
    }
}
