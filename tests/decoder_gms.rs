//! GMS on decoder LLMs, on tiny random Llama bases with PEFT LoRA adapters: the search runs
//! end to end through the CLI and its strategy applies; the caches and the coarse layer-state
//! plans of large models never change the path; `--drops absolute` follows the reference's
//! decoder search; adapters that adapt different modules or ranks are searched on what they
//! share and written so they reload; bad input ends in one line (exit 2).

mod common;

use candle_core::Device;
use gms::gms::score::Drops;
use gms::gms::search::{GreedySearch, SearchParams};
use gms::gms::session::Session;
use gms::model::arch::DecoderArchitecture;
use gms::model::random_decoder::{RandomAdapterSpec, RandomDecoderSpec};
use gms::model::{Module, SubstitutionMatrix, DECODER_MODULES};
use serde_json::Value;
use std::path::Path;

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `gms search` on the kit's adapters with test sets; returns the strategy file.
fn search(kit: &common::TinyKit, extra: &[&str]) -> std::path::PathBuf {
    let out = kit.dir.path().join("strategy.json");
    let mut args = vec![
        "search".to_string(),
        "--victim".into(),
        s(&kit.victim),
        "--proxy".into(),
        s(&kit.proxy),
        "--clean".into(),
        s(&kit.clean),
        "--suspect".into(),
        s(&kit.suspect),
        "--test-clean".into(),
        s(&kit.test_clean),
        "--test-poison".into(),
        s(&kit.test_poison),
        "--patience".into(),
        "2".into(),
        "--device".into(),
        "cpu".into(),
        "--out".into(),
        s(&out),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, _, stderr) = common::gms(&args);
    assert!(ok, "{stderr}");
    out
}

/// `gms eval --json` correct rows of `model` on `data`.
fn eval_correct(model: &Path, data: &Path) -> u64 {
    let (ok, stdout, stderr) = common::gms(&[
        "eval",
        "--model",
        &s(model),
        "--data",
        &s(data),
        "--json",
        "--device",
        "cpu",
    ]);
    assert!(ok, "{stderr}");
    let v: Value = serde_json::from_str(stdout.trim()).unwrap();
    v["correct"].as_u64().unwrap()
}

/// Runs `gms` expecting failure: exit code 2 and one line on stderr holding every `expect`.
fn refused(args: &[&str], expect: &[&str]) {
    let out = common::gms_output(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    for e in expect {
        assert!(stderr.contains(e), "{stderr:?} lacks {e:?}");
    }
}

#[test]
fn search_on_adapters_runs_and_its_strategy_applies() {
    let kit = common::tiny_decoder_kit(4);
    let inputs = [&kit.victim, &kit.proxy, &kit.dir.path().join("base")];
    let before: Vec<String> = inputs.iter().map(|p| common::tree_sha256(p)).collect();
    let strategy = search(&kit, &[]);
    let report = json(&strategy);
    assert_eq!(report["format"], "gms-strategy/2");
    assert_eq!(report["architecture"], "LlamaForSequenceClassification");
    assert_eq!(
        report["module_order"],
        serde_json::json!(["Q", "K", "V", "O", "G", "U", "D"])
    );
    assert_eq!(report["drops"], "relative");
    assert_eq!(report["trace"][0]["modules"], report["module_order"]);
    assert!(report["inputs"]["base"]["sha256"].as_str().unwrap().len() == 64);
    assert!(report["cells"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| "QKVOGUD".contains(c[1].as_str().unwrap())));

    let purified = kit.dir.path().join("purified");
    let (ok, _, stderr) = common::gms(&[
        "apply",
        "--victim",
        &s(&kit.victim),
        "--proxy",
        &s(&kit.proxy),
        "--strategy",
        &s(&strategy),
        "--out",
        &s(&purified),
    ]);
    assert!(ok, "{stderr}");
    for f in ["adapter_config.json", "adapter_model.safetensors"] {
        assert!(purified.join(f).is_file(), "{f}");
    }
    assert_eq!(
        json(&purified.join("adapter_config.json")),
        json(&kit.victim.join("adapter_config.json")),
        "same ranks: the victim's config, unchanged"
    );
    // The purified adapter reloads (over the same base) and scores what the view scored.
    let test = &report["test"];
    assert_eq!(
        eval_correct(&purified, &kit.test_clean),
        test["clean_correct"].as_u64().unwrap()
    );
    assert_eq!(
        eval_correct(&purified, &kit.test_poison),
        test["poison_hits"].as_u64().unwrap()
    );
    let after: Vec<String> = inputs.iter().map(|p| common::tree_sha256(p)).collect();
    assert_eq!(before, after, "a search or apply modified its inputs");

    // Merged: an HF classifier folder of base + purified adapter, which loads by itself.
    let merged = kit.dir.path().join("merged");
    let (ok, _, stderr) = common::gms(&[
        "apply",
        "--victim",
        &s(&kit.victim),
        "--proxy",
        &s(&kit.proxy),
        "--strategy",
        &s(&strategy),
        "--out",
        &s(&merged),
        "--merged",
    ]);
    assert!(ok, "{stderr}");
    let config = json(&merged.join("config.json"));
    assert_eq!(
        config["architectures"],
        serde_json::json!(["LlamaForSequenceClassification"])
    );
    assert!(merged.join("tokenizer.json").is_file());
    // bf16 weights with the LoRA update rounded in: the same predictions on nearly all rows.
    let c = eval_correct(&merged, &kit.test_clean);
    assert!(
        c.abs_diff(test["clean_correct"].as_u64().unwrap()) <= 3,
        "{c} vs {test}"
    );
}

fn trace(session: &mut Session, patience: usize) -> Vec<(String, f64, bool)> {
    let mut search = GreedySearch::new(
        SearchParams::validated(0.4, patience).unwrap(),
        session.evaluator.num_layers(),
    );
    search.run(&mut session.evaluator, |_| {}).unwrap();
    search
        .trace()
        .iter()
        .map(|t| (t.point.mv.to_string(), t.point.metrics.score, t.improved))
        .collect()
}

#[test]
fn caches_and_coarse_state_plans_never_change_the_decoder_path() {
    let kit = common::tiny_decoder_kit(5);
    let load = || Session::load(kit.inputs(false), &Device::Cpu).unwrap();
    let mut plain = load();
    plain.evaluator.layer_cache = false;
    plain.evaluator.abandonment = false;
    let want = trace(&mut plain, 3);
    assert!(want.len() >= 2, "{want:?}");
    let mut fast = load();
    assert_eq!(fast.evaluator.state_plan().stride, 1);
    assert_eq!(trace(&mut fast, 3), want);
    assert!(fast.evaluator.stats.layer_runs < plain.evaluator.stats.layer_runs);
    // A 7B model keeps every k-th boundary; the same on a tiny one with a tiny budget.
    let mut coarse = load();
    let bytes = coarse.evaluator.state_plan().boundary_bytes;
    coarse.evaluator.set_state_budget(5 * bytes).unwrap();
    assert_eq!(coarse.evaluator.state_plan().stride, 3);
    assert_eq!(trace(&mut coarse, 3), want);
}

#[test]
fn absolute_drops_follow_the_reference_decoder_search() {
    let kit = common::tiny_decoder_kit(4);
    let mut session = Session::load(kit.inputs(false), &Device::Cpu).unwrap();
    session.evaluator.drops = Drops::Absolute;
    let steps = trace(&mut session, 2);
    assert!(
        !steps[0].2,
        "the full substitution is never eligible as best"
    );
    assert!(steps[1].2, "the first step's leader is always a new best");
    // Absolute drops: score = (1-α)(asr0-asr) + α(1-(acc0-acc)).
    let b = session.evaluator.baseline();
    let full = SubstitutionMatrix::full(&DECODER_MODULES, 4);
    let counts = session.evaluator.evaluate(&full, None).unwrap().counts;
    let m = session.evaluator.metrics(0.4, &counts);
    let want = 0.6 * (b.asr - counts.asr()) + 0.4 * (1.0 - (b.acc - counts.acc()));
    assert!((m.score - want).abs() < 1e-12);
    assert_eq!(m.score, steps[0].1);
}

#[test]
fn adapters_of_different_modules_are_searched_on_the_modules_both_adapt() {
    let spec = RandomDecoderSpec::tiny(DecoderArchitecture::Llama, &common::WORDS, 3, 5);
    let mut proxy = RandomAdapterSpec::tiny(2, "base");
    proxy.targets = vec![Module::Q, Module::V, Module::G, Module::D];
    let mut victim = RandomAdapterSpec::tiny(1, "base");
    victim.targets = vec![Module::Q, Module::K, Module::V, Module::O, Module::D];
    let kit = common::tiny_decoder_kit_with(&spec, &victim, &proxy);
    let session = Session::load(kit.inputs(false), &Device::Cpu).unwrap();
    assert_eq!(session.warnings.len(), 1, "{:?}", session.warnings);
    let w = &session.warnings[0];
    assert!(
        w.contains("QKVOD") && w.contains("QVGD") && w.contains("only QVD"),
        "{w}"
    );
    assert_eq!(session.evaluator.substitutable().count(), 3 * 3);
    drop(session);
    let strategy = search(&kit, &[]);
    let report = json(&strategy);
    assert_eq!(
        report["trace"][0]["modules"],
        serde_json::json!(["Q", "V", "D"])
    );
    assert!(report["cells"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| "QVD".contains(c[1].as_str().unwrap())));
}

#[test]
fn adapters_of_different_ranks_warn_and_the_purified_adapter_records_the_proxy_ranks() {
    let spec = RandomDecoderSpec::tiny(DecoderArchitecture::Llama, &common::WORDS, 3, 5);
    let mut proxy = RandomAdapterSpec::tiny(2, "base");
    proxy.r = 2;
    proxy.alpha = 6.0;
    let kit = common::tiny_decoder_kit_with(&spec, &RandomAdapterSpec::tiny(1, "base"), &proxy);
    let session = Session::load(kit.inputs(false), &Device::Cpu).unwrap();
    assert!(
        session.warnings.iter().any(|w| w.contains("victim r 4")
            && w.contains("proxy r 2")
            && w.contains("proxy's scale")),
        "{:?}",
        session.warnings
    );
    drop(session);
    let strategy = search(&kit, &[]);
    let report = json(&strategy);
    let purified = kit.dir.path().join("purified");
    let (ok, _, stderr) = common::gms(&[
        "apply",
        "--victim",
        &s(&kit.victim),
        "--proxy",
        &s(&kit.proxy),
        "--strategy",
        &s(&strategy),
        "--out",
        &s(&purified),
    ]);
    assert!(ok, "{stderr}");
    let config = json(&purified.join("adapter_config.json"));
    let cells = report["cells"].as_array().unwrap();
    assert_eq!(
        config["rank_pattern"].as_object().unwrap().len(),
        cells.len()
    );
    let (l, m) = (
        cells[0][0].as_u64().unwrap() as usize,
        cells[0][1].as_str().unwrap().chars().next().unwrap(),
    );
    let path = Module::from_letter(m).unwrap().decoder_path(l);
    assert_eq!(config["rank_pattern"][&path], 2);
    assert_eq!(config["alpha_pattern"][&path], 6.0);
    assert_eq!(
        eval_correct(&purified, &kit.test_clean),
        report["test"]["clean_correct"].as_u64().unwrap()
    );
    assert_eq!(
        eval_correct(&purified, &kit.test_poison),
        report["test"]["poison_hits"].as_u64().unwrap()
    );
}

#[test]
fn fine_tuned_decoders_are_searched_and_applied_like_encoders() {
    let mut spec = RandomDecoderSpec::tiny(DecoderArchitecture::Qwen2, &common::WORDS, 3, 5);
    spec.classifier_labels = Some(2);
    spec.shards = 1;
    let unused = RandomAdapterSpec::tiny(0, "-");
    let kit = common::tiny_decoder_kit_with(&spec, &unused, &unused);
    let strategy = search(&kit, &[]);
    let report = json(&strategy);
    assert_eq!(report["architecture"], "Qwen2ForSequenceClassification");
    let purified = kit.dir.path().join("purified");
    let (ok, _, stderr) = common::gms(&[
        "apply",
        "--victim",
        &s(&kit.victim),
        "--proxy",
        &s(&kit.proxy),
        "--strategy",
        &s(&strategy),
        "--out",
        &s(&purified),
    ]);
    assert!(ok, "{stderr}");
    assert!(purified.join("model.safetensors").is_file());
    assert_eq!(
        eval_correct(&purified, &kit.test_clean),
        report["test"]["clean_correct"].as_u64().unwrap()
    );
    assert_eq!(
        eval_correct(&purified, &kit.test_poison),
        report["test"]["poison_hits"].as_u64().unwrap()
    );
}

#[test]
fn apply_refuses_strategies_for_another_model() {
    let decoders = common::tiny_decoder_kit(3);
    let encoders = common::tiny_kit(3);
    let encoder_strategy = search(&encoders, &[]);
    let decoder_strategy = search(&decoders, &[]);
    let out = decoders.dir.path().join("never");
    let apply = |victim: &Path, proxy: &Path, strategy: &Path| {
        vec![
            "apply".to_string(),
            "--victim".into(),
            s(victim),
            "--proxy".into(),
            s(proxy),
            "--strategy".into(),
            s(strategy),
            "--out".into(),
            s(&out),
        ]
    };
    let args = apply(&decoders.victim, &decoders.proxy, &encoder_strategy);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    refused(
        &args,
        &[
            "strategy.json",
            "BertForSequenceClassification (modules QKVOFP)",
            "LlamaForSequenceClassification (decoder; modules QKVOGUD)",
        ],
    );
    let args = apply(&encoders.victim, &encoders.proxy, &decoder_strategy);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    refused(&args, &["LlamaForSequenceClassification", "encoder"]);
    // A strategy file of the first format (no architecture) is an encoder strategy.
    let mut old = json(&encoder_strategy);
    for key in ["format", "architecture", "module_order", "drops"] {
        old.as_object_mut().unwrap().remove(key);
    }
    let old_path = decoders.dir.path().join("old.json");
    std::fs::write(&old_path, old.to_string()).unwrap();
    let args = apply(&decoders.victim, &decoders.proxy, &old_path);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    refused(&args, &["old.json", "an encoder (modules QKVOFP)"]);
    // Same architecture, other depth.
    let deeper = common::tiny_decoder_kit(4);
    let args = apply(&deeper.victim, &deeper.proxy, &decoder_strategy);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    refused(&args, &["the strategy has 3 layers, the model 4"]);
    assert!(!out.exists());
}

#[test]
fn bad_decoder_pairs_end_in_one_line() {
    let kit = common::tiny_decoder_kit(3);
    let search_args = |victim: &Path, proxy: &Path| {
        vec![
            "search".to_string(),
            "--victim".into(),
            s(victim),
            "--proxy".into(),
            s(proxy),
            "--clean".into(),
            s(&kit.clean),
            "--suspect".into(),
            s(&kit.suspect),
            "--device".into(),
            "cpu".into(),
            "--out".into(),
            s(&kit.dir.path().join("never.json")),
        ]
    };
    let run = |v: &Path, p: &Path, expect: &[&str]| {
        let args = search_args(v, p);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(&args, expect);
    };
    // A proxy adapter trained on a wider base.
    let mut wide = RandomDecoderSpec::tiny(DecoderArchitecture::Llama, &common::WORDS, 3, 5);
    wide.intermediate = 64;
    let wide_adapter = kit.dir.path().join("wide");
    gms::model::random_decoder::write_random_adapter(
        &wide_adapter,
        &wide,
        &RandomAdapterSpec::tiny(3, "base"),
    )
    .unwrap();
    run(
        &kit.victim,
        &wide_adapter,
        &["wide", "gate_proj", "does not fit"],
    );
    // A proxy adapter whose base is another folder with other weights of the same shape.
    let other_base = kit.dir.path().join("other-base");
    let spec = RandomDecoderSpec::tiny(DecoderArchitecture::Llama, &common::WORDS, 3, 99);
    gms::model::random_decoder::write_random_decoder(&other_base, &spec).unwrap();
    let elsewhere = kit.dir.path().join("elsewhere");
    gms::model::random_decoder::write_random_adapter(
        &elsewhere,
        &spec,
        &RandomAdapterSpec::tiny(2, &s(&other_base)),
    )
    .unwrap();
    run(
        &kit.victim,
        &elsewhere,
        &["elsewhere", "trained on", "other-base"],
    );
    // An encoder proxy for a decoder victim.
    let encoders = common::tiny_kit(3);
    run(
        &kit.victim,
        &encoders.proxy,
        &["the victim is an decoder", "encoder"],
    );
    // A base that is nowhere.
    let lost = kit.dir.path().join("lost");
    gms::model::random_decoder::write_random_adapter(
        &lost,
        &spec,
        &RandomAdapterSpec::tiny(1, "some-org/absent-llm"),
    )
    .unwrap();
    run(&lost, &kit.proxy, &["some-org/absent-llm", "not found"]);
    // --dtype is for encoders.
    let mut args = search_args(&kit.victim, &kit.proxy);
    args.extend(["--dtype".to_string(), "bf16".to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    refused(&args, &["--dtype", "f32"]);
}

#[test]
fn inspect_describes_adapters() {
    let kit = common::tiny_decoder_kit(2);
    let (ok, stdout, stderr) = common::gms(&["inspect", "--model", &s(&kit.victim), "--json"]);
    assert!(ok, "{stderr}");
    let v: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["architecture"], "LlamaForSequenceClassification");
    assert_eq!(v["kind"], "peft-lora-adapter");
    assert_eq!(v["adapter"]["r"], 4);
    assert_eq!(v["adapter"]["targets"], "QKVOGUD");
    assert_eq!(v["adapter"]["lora_pairs"], 14);
    assert_eq!(v["modules"].as_array().unwrap().len(), 7);
    let (ok, stdout, _) = common::gms(&["inspect", "--model", &s(&kit.victim)]);
    assert!(ok);
    assert!(stdout.contains("PEFT LoRA adapter over"), "{stdout}");
    assert!(
        stdout.contains("G  model.layers.{i}.mlp.gate_proj"),
        "{stdout}"
    );
}

/// The purified adapter `gms apply` writes, loaded by PEFT over the base, computes the logits
/// the search's view computed (scripts/check-decoder.py; needs GMS_PYTHON with torch,
/// transformers and peft).
#[test]
fn the_purified_adapter_reloads_in_peft_with_the_same_predictions() {
    let Ok(python) = std::env::var("GMS_PYTHON") else {
        common::skipped(
            "purified adapter PEFT reload",
            "set GMS_PYTHON to a python with torch, transformers and peft",
        );
        return;
    };
    let spec = RandomDecoderSpec::tiny(DecoderArchitecture::Llama, &common::WORDS, 3, 5);
    let mut proxy = RandomAdapterSpec::tiny(2, "base");
    proxy.r = 2;
    let kit = common::tiny_decoder_kit_with(&spec, &RandomAdapterSpec::tiny(1, "base"), &proxy);
    let strategy = search(&kit, &[]);
    let purified = kit.dir.path().join("purified");
    let (ok, _, stderr) = common::gms(&[
        "apply",
        "--victim",
        &s(&kit.victim),
        "--proxy",
        &s(&kit.proxy),
        "--strategy",
        &s(&strategy),
        "--out",
        &s(&purified),
    ]);
    assert!(ok, "{stderr}");
    // gms's logits of the written adapter, which the eval above showed equal the view's.
    let (preds, _) = common::gms_logits(&purified, &kit.test_clean);
    let sentences: Vec<String> = std::fs::read_to_string(&kit.test_clean)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["sentence"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let sentences_path = kit.dir.path().join("sentences.json");
    std::fs::write(&sentences_path, serde_json::to_string(&sentences).unwrap()).unwrap();
    let out = std::process::Command::new(python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/check-decoder.py"))
        .arg(kit.dir.path().join("base"))
        .arg(&purified)
        .arg(&sentences_path)
        .arg(&preds)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    assert!(
        out.status.success(),
        "PEFT disagrees: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("predictions agree"), "{text}");
}
