//! gms's forward pass against Hugging Face `transformers`, live: every architecture gms loads
//! (random-weight models written by gms) and the purified kit model. Needs a Python with torch
//! and transformers, named by `GMS_PYTHON`; without it the tests print why they are skipped.
//! `tests/transformers_fixtures.rs` makes the same comparison on every run without Python,
//! against logits recorded by `scripts/make-transformers-fixtures.py`.

mod common;

use std::path::Path;
use std::process::Command;

fn python() -> Option<String> {
    match std::env::var("GMS_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            common::skipped(
                "transformers cross-check (live)",
                "set GMS_PYTHON to a python with torch and transformers",
            );
            None
        }
    }
}

fn crosscheck(python: &str, model: &Path, data: &Path) {
    let (preds, _) = common::gms_logits(model, data);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/check-transformers.py");
    let out = Command::new(python)
        .arg(script)
        .arg(model)
        .arg(data)
        .arg(&preds)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    common::report(&format!("transformers cross-check (live): {}", text.trim()));
    assert!(
        out.status.success(),
        "transformers disagrees: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_architecture_matches_transformers() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.jsonl");
    common::write_crosscheck_data(&data, &common::crosscheck_sentences());
    for arch in common::CROSSCHECK_ARCHITECTURES {
        let model = dir.path().join(format!("{arch:?}"));
        common::write_crosscheck_model(&model, arch);
        crosscheck(&python, &model, &data);
    }
}

#[test]
fn the_purified_kit_model_loads_in_transformers() {
    let Some(python) = python() else { return };
    let Some(models) = common::kit_models("transformers purified model") else {
        return;
    };
    let kit = common::kit_dir("transformers purified model").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let strategy = dir.path().join("s.json");
    let cells: Vec<serde_json::Value> = (0..6)
        .flat_map(|l| ["K", "F"].map(|m| serde_json::json!([l, m])))
        .collect();
    // A hand-made strategy in the report schema (only what `apply` needs is meaningful).
    let report = serde_json::json!({
        "gms_version": "test", "origin": "manual", "modules": ["K", "F"], "layers": [0,1,2,3,4,5],
        "cells": cells, "num_layers": 6, "alpha": 0.4, "patience": 5, "score": 0.0,
        "proxy": {"acc": 0.0, "asr": 0.0}, "baseline": {"acc": 0.0, "asr": 0.0}, "trace": [],
        "evaluations": 0, "test": null, "victim_test": null,
        "inputs": {"victim": {"path": "v", "sha256": ""}, "proxy": {"path": "p", "sha256": ""},
                   "clean": {"path": "c", "sha256": ""}, "suspect": {"path": "s", "sha256": ""},
                   "test_clean": null, "test_poison": null}
    });
    std::fs::write(&strategy, report.to_string()).unwrap();
    let out = dir.path().join("purified");
    let status = Command::new(env!("CARGO_BIN_EXE_gms"))
        .args(["apply", "--victim"])
        .arg(models.join("sst2_badnet"))
        .arg("--proxy")
        .arg(models.join("sst2_proxy_uci"))
        .arg("--strategy")
        .arg(&strategy)
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    crosscheck(&python, &out, &kit.join("data/sst2/test_badnet.json"));
}
