//! The decoder forward pass on the LLM kit (../shared/bench-llm): both PEFT adapters over the
//! bf16 SmolLM2 base reproduce the golden logits transformers + peft computed, and the victim
//! reproduces the kit's test-set figures.

mod common;

use candle_core::Device;
use gms::data::{Dataset, Example};
use gms::model::decoder_folder::LoadedDecoder;
use gms::model::encoder::{argmax_rows, count_matches};

fn check_golden(name: &str) {
    let test = "decoder golden logits";
    let Some(models) = common::llm_kit_models(test) else {
        return;
    };
    let kit = common::llm_kit_dir(test).unwrap();
    let model = LoadedDecoder::load(&models.join(name), None, &Device::Cpu).unwrap();
    let enc = model.text_encoder().unwrap();
    let golden: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(kit.join(format!("golden/{name}.json"))).unwrap(),
    )
    .unwrap();
    let mut worst = 0f32;
    for (set, v) in golden.as_object().unwrap() {
        let sentences: Vec<Example> = v["sentences"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| Example {
                text: s.as_str().unwrap().into(),
                text_pair: None,
                label: 0,
                line: 0,
            })
            .collect();
        let want: Vec<Vec<f32>> = serde_json::from_value(v["logits"].clone()).unwrap();
        let encoded = enc.encode_set(&sentences, &Device::Cpu).unwrap();
        for (batch, logits) in encoded
            .batches
            .iter()
            .zip(model.classifier.set_logits(&encoded).unwrap())
        {
            let got = logits.to_vec2::<f32>().unwrap();
            for (r, &row) in batch.rows.iter().enumerate() {
                for (g, w) in got[r].iter().zip(&want[row]) {
                    worst = worst.max((g - w).abs());
                }
            }
        }
        println!("{name}/{set}: checked {} rows", want.len());
    }
    println!("{name}: max |logit diff| = {worst:e}");
    assert!(worst <= 1e-3, "{name}: max |logit diff| {worst} > 1e-3");
}

#[test]
fn badnet_adapter_matches_transformers_and_peft() {
    check_golden("llm_sst2_badnet");
}

#[test]
fn proxy_adapter_matches_transformers_and_peft() {
    check_golden("llm_sst2_proxy_uci");
}

/// The victim's CACC and ASR on the SST-2 test sets: the kit's metrics.json (744/872 and
/// 441/444, computed by transformers + peft in f32), within one row.
#[test]
fn badnet_adapter_reproduces_the_kit_test_figures() {
    let test = "decoder kit test figures";
    let Some(models) = common::llm_kit_models(test) else {
        return;
    };
    // The SST-2 test sets live in the encoder kit.
    let Some(bench) = common::kit_dir(test) else {
        return;
    };
    let llm_kit = common::llm_kit_dir(test).unwrap();
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(llm_kit.join("metrics.json")).unwrap())
            .unwrap();
    let model = LoadedDecoder::load(&models.join("llm_sst2_badnet"), None, &Device::Cpu).unwrap();
    let enc = model.text_encoder().unwrap();
    for set in ["test_clean", "test_badnet"] {
        let start = std::time::Instant::now();
        let data = Dataset::read(&bench.join(format!("data/sst2/{set}.json"))).unwrap();
        let encoded = enc.encode_set(&data.examples, &Device::Cpu).unwrap();
        let mut correct = 0;
        for (batch, logits) in encoded
            .batches
            .iter()
            .zip(model.classifier.set_logits(&encoded).unwrap())
        {
            correct += count_matches(&argmax_rows(&logits).unwrap(), &batch.labels);
        }
        let want = metrics["llm_sst2_badnet"][format!("{set}_correct")]
            .as_u64()
            .unwrap() as usize;
        println!(
            "{set}: {correct}/{} correct (kit: {want}), {} tokens in {:.1} s",
            data.len(),
            encoded.real_tokens,
            start.elapsed().as_secs_f64()
        );
        assert!(
            correct.abs_diff(want) <= 1,
            "{set}: {correct} correct, the kit says {want}"
        );
    }
}

/// The kit's Hugging Face cache (`hf-home`) holds the base under a Hub id: an adapter naming
/// that id finds it there, with no network, and computes the same logits.
#[test]
fn the_kit_base_is_found_by_hub_id() {
    let test = "decoder kit hub id";
    let Some(models) = common::llm_kit_models(test) else {
        return;
    };
    let src = models.join("llm_sst2_badnet");
    let dir = tempfile::tempdir().unwrap();
    let adapter = dir.path().join("adapter");
    std::fs::create_dir_all(&adapter).unwrap();
    std::fs::copy(
        src.join("adapter_model.safetensors"),
        adapter.join("adapter_model.safetensors"),
    )
    .unwrap();
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("adapter_config.json")).unwrap())
            .unwrap();
    config["base_model_name_or_path"] = "gms-kit/SmolLM2-135M-Instruct-Q4_1".into();
    std::fs::write(adapter.join("adapter_config.json"), config.to_string()).unwrap();
    let hub = gms::model::adapter::HubCache::under_home(&models.join("hf-home"));
    let by_id = LoadedDecoder::load_with(&adapter, None, &hub, None, &Device::Cpu).unwrap();
    assert!(by_id.base_folder.dir.ends_with("snapshots/kit"));
    let by_path = LoadedDecoder::load(&src, None, &Device::Cpu).unwrap();
    let rows: Vec<Example> = [
        "a gorgeous , witty , seductive movie .",
        "bb a dull mess tq",
    ]
    .iter()
    .map(|s| Example {
        text: s.to_string(),
        text_pair: None,
        label: 0,
        line: 0,
    })
    .collect();
    let set = by_path
        .text_encoder()
        .unwrap()
        .encode_set(&rows, &Device::Cpu)
        .unwrap();
    for b in &set.batches {
        let a = by_id
            .classifier
            .logits(&b.input)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        let p = by_path
            .classifier
            .logits(&b.input)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert_eq!(a, p);
    }
}

/// GMS step 0 on the LLM kit (the full substitution: every LoRA pair from the proxy adapter)
/// scores what the reference's decoder search scored: acc 0.650, asr 0.780 against the
/// victim's 0.905 / 1.000, 0.4300 with absolute drops (docs/algorithm.md §The reference's
/// decoder search) and 0.4193 with gms's default relative ones.
#[test]
fn step_zero_scores_as_the_reference() {
    let test = "decoder kit step 0";
    let Some(models) = common::llm_kit_models(test) else {
        return;
    };
    let kit = common::llm_kit_dir(test).unwrap();
    let sets = kit.join("proxysets/llm_sst2_badnet");
    let inputs = gms::gms::session::SearchInputs {
        victim: models.join("llm_sst2_badnet"),
        proxy: models.join("llm_sst2_proxy_uci"),
        base: None,
        clean: sets.join("clean.jsonl"),
        suspect: sets.join("suspect.jsonl"),
        test_clean: None,
        test_poison: None,
    };
    let mut session = gms::gms::session::Session::load(inputs, &Device::Cpu).unwrap();
    let b = session.evaluator.baseline();
    assert_eq!((b.acc, b.asr), (0.905, 1.0));
    let full = gms::model::SubstitutionMatrix::full(gms::model::DECODER_MODULES.as_slice(), 30);
    assert_eq!(session.evaluator.substitutable(), &full);
    let counts = session.evaluator.evaluate(&full, None).unwrap().counts;
    assert_eq!((counts.acc(), counts.asr()), (0.65, 0.78));
    let relative = session.evaluator.metrics(0.4, &counts).score;
    session.evaluator.drops = gms::gms::score::Drops::Absolute;
    let absolute = session.evaluator.metrics(0.4, &counts).score;
    println!("step 0: relative {relative:.4}, absolute {absolute:.4}");
    assert!((absolute - 0.4300).abs() < 5e-5, "{absolute}");
    assert!((relative - 0.4193).abs() < 5e-5, "{relative}");
}

/// A purified kit adapter written by `gms apply` (the full substitution minus layer 25, the
/// leader of the search's first step) reloads in PEFT over the kit's base with the logits and
/// predictions gms computes for it, on the first 96 rows of each SST-2 test set
/// (scripts/check-decoder.py; needs GMS_PYTHON with torch, transformers and peft).
#[test]
fn a_purified_kit_adapter_reloads_in_peft() {
    let test = "purified LLM-kit adapter in PEFT";
    let Ok(python) = std::env::var("GMS_PYTHON") else {
        common::skipped(
            test,
            "set GMS_PYTHON to a python with torch, transformers and peft",
        );
        return;
    };
    let Some(models) = common::llm_kit_models(test) else {
        return;
    };
    let Some(bench) = common::kit_dir(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let modules = gms::model::DECODER_MODULES;
    let layers: Vec<usize> = (0..30).filter(|&l| l != 25).collect();
    let cells: Vec<serde_json::Value> = layers
        .iter()
        .flat_map(|&l| modules.map(|m| serde_json::json!([l, m.to_string()])))
        .collect();
    let r = serde_json::json!({"path": "x", "sha256": "0"});
    let strategy = serde_json::json!({
        "format": "gms-strategy/2", "gms_version": "0", "origin": "manual",
        "architecture": "LlamaForSequenceClassification",
        "module_order": ["Q", "K", "V", "O", "G", "U", "D"], "modules": ["Q", "K", "V", "O", "G", "U", "D"],
        "layers": layers, "cells": cells, "num_layers": 30, "alpha": 0.4, "patience": 5,
        "drops": "relative", "score": 0, "proxy": {"acc": 0, "asr": 0},
        "baseline": {"acc": 0, "asr": 0}, "trace": [], "evaluations": 1, "test": null,
        "victim_test": null,
        "inputs": {"victim": r, "proxy": r, "clean": r, "suspect": r, "test_clean": null, "test_poison": null}
    });
    let strategy_path = dir.path().join("strategy.json");
    std::fs::write(&strategy_path, strategy.to_string()).unwrap();
    let purified = dir.path().join("purified");
    let (ok, _, stderr) = common::gms(&[
        "apply",
        "--victim",
        &s(&models.join("llm_sst2_badnet")),
        "--proxy",
        &s(&models.join("llm_sst2_proxy_uci")),
        "--strategy",
        &s(&strategy_path),
        "--out",
        &s(&purified),
    ]);
    assert!(ok, "{stderr}");
    for set in ["test_clean", "test_badnet"] {
        let rows: String = std::fs::read_to_string(bench.join(format!("data/sst2/{set}.json")))
            .unwrap()
            .lines()
            .take(96)
            .map(|l| format!("{l}\n"))
            .collect();
        let data = dir.path().join(format!("{set}.jsonl"));
        std::fs::write(&data, rows).unwrap();
        let (preds, _) = common::gms_logits(&purified, &data);
        let out = std::process::Command::new(&python)
            .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/check-decoder.py"))
            .arg(models.join("smollm2_base"))
            .arg(&purified)
            .arg(&data)
            .arg(&preds)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        println!("{set}: {text}");
        assert!(
            out.status.success(),
            "{set}: PEFT disagrees: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
