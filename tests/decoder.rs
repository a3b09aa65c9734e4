//! The decoder classifier on tiny random Llama/Mistral/Qwen2 bases with random LoRA adapters:
//! layer-range execution, the LoRA substitution view, weight storage, base resolution, and
//! (with `GMS_PYTHON` set to a python with torch, transformers and peft) agreement with
//! transformers + peft.

mod common;

use candle_core::{Device, Tensor};
use gms::data::Example;
use gms::model::adapter::HubCache;
use gms::model::arch::DecoderArchitecture;
use gms::model::decoder::{lora_view, DecoderClassifier};
use gms::model::decoder_folder::{LoadedDecoder, WeightStorage};
use gms::model::lora::LoraLinear;
use gms::model::random_decoder::{
    write_random_adapter, write_random_decoder, RandomAdapterSpec, RandomDecoderSpec,
};
use gms::model::tokenize::EncodedSet;
use gms::model::{Module, DECODER_MODULES};
use std::path::{Path, PathBuf};

const LAYERS: usize = 3;

fn examples(n: usize, seed: u64) -> Vec<Example> {
    common::sentences(n, seed, true)
        .into_iter()
        .map(|text| Example {
            text,
            text_pair: None,
            label: 0,
            line: 0,
        })
        .collect()
}

/// A base of `spec` in `dir/base` and adapters `dir/victim` (seed 1), `dir/proxy` (seed 2).
fn tiny_pair(dir: &Path, spec: &RandomDecoderSpec) -> (PathBuf, PathBuf, PathBuf) {
    let base = dir.join("base");
    write_random_decoder(&base, spec).unwrap();
    let victim = dir.join("victim");
    let proxy = dir.join("proxy");
    write_random_adapter(&victim, spec, &RandomAdapterSpec::tiny(1, "base")).unwrap();
    write_random_adapter(&proxy, spec, &RandomAdapterSpec::tiny(2, "base")).unwrap();
    (base, victim, proxy)
}

fn encoded(model: &LoadedDecoder, n: usize, seed: u64) -> EncodedSet {
    let enc = model.text_encoder().unwrap();
    enc.encode_set(&examples(n, seed), &Device::Cpu).unwrap()
}

/// Logits of every row of `set`, in row order.
fn logits(c: &DecoderClassifier, set: &EncodedSet) -> Vec<Vec<f32>> {
    let mut rows = vec![Vec::new(); set.len];
    for (batch, l) in set.batches.iter().zip(c.set_logits(set).unwrap()) {
        for (r, v) in batch.rows.iter().zip(l.to_vec2::<f32>().unwrap()) {
            rows[*r] = v;
        }
    }
    rows
}

fn max_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    a.iter()
        .flatten()
        .zip(b.iter().flatten())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn layer_ranges_and_the_pooled_last_layer_match_the_full_pass() {
    let dir = tempfile::tempdir().unwrap();
    let spec = RandomDecoderSpec::tiny(DecoderArchitecture::Llama, &common::WORDS, LAYERS, 5);
    let (_, victim, _) = tiny_pair(dir.path(), &spec);
    let model = LoadedDecoder::load(&victim, None, &Device::Cpu).unwrap();
    let c = &model.classifier;
    let set = encoded(&model, 24, 3);
    assert!(set.batches.len() == 1 || set.batches.iter().any(|b| b.rows.len() > 1));
    for batch in &set.batches {
        let x = &batch.input;
        let full = c.logits(x).unwrap();
        // Resumed at every layer boundary.
        for k in 0..=LAYERS {
            let h = c.run_layers(c.embed(x).unwrap(), x, 0..k).unwrap();
            let h = c.run_layers(h, x, k..LAYERS).unwrap();
            let resumed = c.head(&h, x).unwrap();
            let d = (&full - &resumed)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap();
            assert_eq!(d.to_scalar::<f32>().unwrap(), 0.0, "boundary {k}");
        }
        // Every position through the last layer, the head picking the pooled tokens.
        let ctx = c.context(x).unwrap();
        let mut h = c.embed(x).unwrap();
        for (l, layer) in c.layers.iter().enumerate() {
            h = c.layer_forward(layer, l, &h, &ctx, false).unwrap();
        }
        let all = c.head(&h, x).unwrap();
        let d = (&full - &all).unwrap().abs().unwrap().max_all().unwrap();
        assert!(d.to_scalar::<f32>().unwrap() < 1e-5);
    }
}

#[test]
fn lora_view_swaps_pairs_over_one_shared_base() {
    let dir = tempfile::tempdir().unwrap();
    let spec = RandomDecoderSpec::tiny(DecoderArchitecture::Llama, &common::WORDS, LAYERS, 6);
    let (_, victim_dir, proxy_dir) = tiny_pair(dir.path(), &spec);
    let victim = LoadedDecoder::load(&victim_dir, None, &Device::Cpu).unwrap();
    let proxy = victim.with_adapter_dir(&proxy_dir, &Device::Cpu).unwrap();
    assert_ne!(victim.fingerprint().unwrap(), proxy.fingerprint().unwrap());
    let (v, p) = (&victim.classifier, &proxy.classifier);
    let set = encoded(&victim, 20, 4);

    let none = lora_view(v, p, |_, _| false);
    assert_eq!(max_diff(&logits(&none, &set), &logits(v, &set)), 0.0);

    // Every cell from the proxy = the proxy's pairs under the victim's head.
    let all = lora_view(v, p, |_, _| true);
    let mut expected = p.clone();
    expected.score = v.score.clone();
    assert_eq!(max_diff(&logits(&all, &set), &logits(&expected, &set)), 0.0);

    // One cell: only that module's pair changes; the base weights are the same tensors.
    let one = lora_view(v, p, |l, m| l == 1 && m == Module::G);
    for (l, layer) in one.layers.iter().enumerate() {
        for m in DECODER_MODULES {
            let got = layer.module(m).unwrap();
            let from = if l == 1 && m == Module::G { p } else { v };
            let want = from.layers[l].module(m).unwrap();
            assert_eq!(
                got.weight.id(),
                v.layers[l].module(m).unwrap().weight.id(),
                "shared base"
            );
            assert_eq!(
                got.lora.as_ref().unwrap().a.id(),
                want.lora.as_ref().unwrap().a.id()
            );
        }
    }
    let d = max_diff(&logits(&one, &set), &logits(v, &set));
    assert!(d > 0.0, "substituting a LoRA pair changes the logits");
}

#[test]
fn lora_matches_a_merged_weight_and_storage_does_not_matter() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = RandomDecoderSpec::tiny(DecoderArchitecture::Qwen2, &common::WORDS, LAYERS, 7);
    spec.shards = 1;
    let (_, victim_dir, _) = tiny_pair(dir.path(), &spec);
    let hub = HubCache::from_env();
    let load = |storage| {
        LoadedDecoder::load_with(&victim_dir, None, &hub, Some(storage), &Device::Cpu).unwrap()
    };
    let f32 = load(WeightStorage::F32);
    let stored = load(WeightStorage::Stored);
    assert_eq!(
        stored.classifier.layers[0].modules[0].weight.dtype(),
        candle_core::DType::BF16
    );
    let set = encoded(&f32, 20, 5);
    let reference = logits(&f32.classifier, &set);
    assert!(max_diff(&reference, &logits(&stored.classifier, &set)) < 1e-5);

    // W + s·B·A merged by hand: the unmerged path computes the same function.
    let mut merged = f32.classifier.clone();
    for layer in &mut merged.layers {
        for module in &mut layer.modules {
            let pair = module.lora.take().unwrap();
            let delta = (pair.b.matmul(&pair.a).unwrap() * pair.scale).unwrap();
            *module = LoraLinear {
                weight: (&module.weight + delta).unwrap(),
                bias: module.bias.clone(),
                lora: None,
            };
        }
    }
    let d = max_diff(&reference, &logits(&merged, &set));
    assert!(d < 1e-4, "merged vs unmerged: {d}");
}

#[test]
fn a_fine_tuned_classifier_loads_without_adapter_and_pads_with_eos() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = RandomDecoderSpec::tiny(DecoderArchitecture::Llama, &common::WORDS, LAYERS, 8);
    spec.classifier_labels = Some(3);
    spec.pad_in_config = false;
    write_random_decoder(dir.path(), &spec).unwrap();
    let model = LoadedDecoder::load(dir.path(), None, &Device::Cpu).unwrap();
    assert!(model.adapter.is_none());
    assert_eq!(model.classifier.num_labels(), 3);
    assert_eq!(
        model.classifier.pad_id,
        Some(2),
        "eos when the config has no pad id"
    );
    let set = encoded(&model, 10, 6);
    assert!(logits(&model.classifier, &set)
        .iter()
        .all(|r| r.len() == 3 && r.iter().all(|v| v.is_finite())));
}

#[test]
fn the_base_is_found_beside_the_adapter_and_in_the_hub_cache() {
    let dir = tempfile::tempdir().unwrap();
    let spec = RandomDecoderSpec::tiny(DecoderArchitecture::Llama, &common::WORDS, 2, 9);
    let (base, victim, _) = tiny_pair(dir.path(), &spec);
    // "base" relative to the folder holding the adapter.
    let beside = LoadedDecoder::load(&victim, None, &Device::Cpu).unwrap();
    assert_eq!(beside.base_folder.dir, dir.path().join("base"));

    // A Hub id, found through refs/main in a cache laid out as huggingface_hub does.
    let home = dir.path().join("hf-home");
    let snap = home.join("hub/models--tiny-org--tiny-llama/snapshots/0123abc");
    let refs = home.join("hub/models--tiny-org--tiny-llama/refs");
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::create_dir_all(&refs).unwrap();
    std::fs::write(refs.join("main"), "0123abc").unwrap();
    for f in std::fs::read_dir(&base).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, snap.join(f.file_name().unwrap())).unwrap();
    }
    let by_id = dir.path().join("by-id");
    write_random_adapter(
        &by_id,
        &spec,
        &RandomAdapterSpec::tiny(1, "tiny-org/tiny-llama"),
    )
    .unwrap();
    let hub = HubCache::under_home(&home);
    let model = LoadedDecoder::load_with(&by_id, None, &hub, None, &Device::Cpu).unwrap();
    assert_eq!(model.base_folder.dir, snap);
    let set = encoded(&model, 8, 7);
    assert_eq!(
        max_diff(
            &logits(&model.classifier, &set),
            &logits(&beside.classifier, &set)
        ),
        0.0,
        "same base, same adapter weights (seed 1)"
    );
}

/// Writes gms's logits and the states after layer `k` for `sentences`, for the script.
fn write_ours(model: &LoadedDecoder, sentences: &[String], k: usize, out: &Path) {
    let c = &model.classifier;
    let ex: Vec<Example> = sentences
        .iter()
        .map(|s| Example {
            text: s.clone(),
            text_pair: None,
            label: 0,
            line: 0,
        })
        .collect();
    let set = model
        .text_encoder()
        .unwrap()
        .encode_set(&ex, &Device::Cpu)
        .unwrap();
    let mut rows_logits = vec![Vec::new(); set.len];
    let mut rows_states = vec![Vec::new(); set.len];
    let encoded = model.text_encoder().unwrap().encode(&ex).unwrap();
    for b in &set.batches {
        let x = &b.input;
        let l = c.logits(x).unwrap().to_vec2::<f32>().unwrap();
        let h: Tensor = c.run_layers(c.embed(x).unwrap(), x, 0..k).unwrap();
        let h = h.to_vec3::<f32>().unwrap();
        for (i, &r) in b.rows.iter().enumerate() {
            rows_logits[r] = l[i].clone();
            rows_states[r] = h[i][..encoded[r].ids.len()].to_vec();
        }
    }
    let v = serde_json::json!({"logits": rows_logits, "boundary": k, "states": rows_states});
    std::fs::write(out, v.to_string()).unwrap();
}

#[test]
fn tiny_decoders_match_transformers_and_peft() {
    let Ok(python) = std::env::var("GMS_PYTHON") else {
        common::skipped(
            "decoder transformers cross-check",
            "set GMS_PYTHON to a python with torch, transformers and peft",
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sentences = common::sentences(12, 21, true);
    let sentences_path = dir.path().join("sentences.json");
    std::fs::write(&sentences_path, serde_json::to_string(&sentences).unwrap()).unwrap();
    let llama = RandomDecoderSpec::tiny(DecoderArchitecture::Llama, &common::WORDS, LAYERS, 11);
    let qwen2 = RandomDecoderSpec::tiny(DecoderArchitecture::Qwen2, &common::WORDS, LAYERS, 12);
    let mut mistral =
        RandomDecoderSpec::tiny(DecoderArchitecture::Mistral, &common::WORDS, LAYERS, 13);
    mistral.sliding_window = Some(4);
    mistral.dtype = candle_core::DType::F32;
    mistral.shards = 1;
    let mut tuned = RandomDecoderSpec::tiny(DecoderArchitecture::Llama, &common::WORDS, LAYERS, 14);
    tuned.classifier_labels = Some(3);
    tuned.pad_in_config = false;
    tuned.dtype = candle_core::DType::F16;
    let mut rslora = RandomAdapterSpec::tiny(3, "base");
    rslora.use_rslora = true;
    rslora.r = 2;
    rslora.targets = vec![Module::Q, Module::V, Module::D];
    let cases: [(&str, &RandomDecoderSpec, Option<RandomAdapterSpec>); 5] = [
        ("llama", &llama, Some(RandomAdapterSpec::tiny(1, "base"))),
        ("llama-rslora", &llama, Some(rslora)),
        ("qwen2", &qwen2, Some(RandomAdapterSpec::tiny(2, "base"))),
        (
            "mistral-window4",
            &mistral,
            Some(RandomAdapterSpec::tiny(4, "base")),
        ),
        ("llama-fine-tuned", &tuned, None),
    ];
    for (name, spec, adapter) in cases {
        let case = dir.path().join(name);
        let base = case.join("base");
        write_random_decoder(&base, spec).unwrap();
        let model_dir = match &adapter {
            Some(a) => {
                let d = case.join("adapter");
                write_random_adapter(&d, spec, a).unwrap();
                d
            }
            None => base.clone(),
        };
        let model = LoadedDecoder::load(&model_dir, None, &Device::Cpu).unwrap();
        let ours = case.join("ours.json");
        write_ours(&model, &sentences, 2, &ours);
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/check-decoder.py");
        let out = std::process::Command::new(&python)
            .arg(script)
            .arg(&base)
            .arg(if adapter.is_some() {
                model_dir.as_os_str()
            } else {
                "-".as_ref()
            })
            .arg(&sentences_path)
            .arg(&ours)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        println!("{name}: {text}");
        assert!(
            out.status.success(),
            "{name}: transformers disagrees: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
