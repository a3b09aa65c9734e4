//! gms's forward pass against Hugging Face `transformers`, on every `cargo test` and with no
//! Python: the logits `transformers` computed for the random BERT, RoBERTa and DistilBERT
//! cross-check models are recorded in `tests/fixtures/transformers_logits.json` by
//! `scripts/make-transformers-fixtures.py`; this test regenerates the models with gms's own
//! generator, checks they are the recorded ones (sha256 of the folder), and compares gms's
//! logits and predictions with the recorded ones (docs/kits.md §transformers cross-checks).

mod common;

use gms::model::Architecture;
use serde_json::Value;
use std::path::Path;

const FIXTURE: &str = "tests/fixtures/transformers_logits.json";
const SCRIPT: &str = "scripts/make-transformers-fixtures.py";
/// Largest |logit difference| allowed: the live cross-check's (`scripts/check-transformers.py`).
const TOLERANCE: f32 = 1e-4;

fn architecture(name: &str) -> Architecture {
    common::CROSSCHECK_ARCHITECTURES
        .into_iter()
        .find(|a| format!("{a:?}") == name)
        .unwrap_or_else(|| panic!("{FIXTURE}: unknown architecture {name}; rerun {SCRIPT}"))
}

#[test]
fn gms_matches_logits_recorded_from_transformers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join(FIXTURE))
            .unwrap_or_else(|e| panic!("{FIXTURE}: {e}; make it with {SCRIPT}")),
    )
    .unwrap();
    let sentences: Vec<String> = serde_json::from_value(fixture["sentences"].clone()).unwrap();
    assert!(
        sentences.iter().any(|s| s.split(' ').count() > 128),
        "{FIXTURE} must hold a row longer than 128 tokens (truncation); rerun {SCRIPT}"
    );
    let models = fixture["models"].as_array().unwrap();
    let archs: Vec<&str> = models
        .iter()
        .map(|m| m["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(
        archs,
        common::CROSSCHECK_ARCHITECTURES
            .map(|a| format!("{a:?}"))
            .to_vec(),
        "{FIXTURE} must cover every architecture gms loads; rerun {SCRIPT}"
    );
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.jsonl");
    common::write_crosscheck_data(&data, &sentences);
    for m in models {
        let name = m["architecture"].as_str().unwrap();
        let model = dir.path().join(name);
        common::write_crosscheck_model(&model, architecture(name));
        let sha = common::tree_sha256(&model);
        assert_eq!(
            sha,
            m["folder_sha256"].as_str().unwrap(),
            "{name}: the random-model generator (gms::model::random, tests/common's \
             write_crosscheck_model) no longer writes the model the fixture was recorded for; \
             regenerate {FIXTURE} with {SCRIPT} and review the logits it records"
        );
        let want: Vec<Vec<f32>> = serde_json::from_value(m["logits"].clone()).unwrap();
        let want_pred: Vec<u64> = serde_json::from_value(m["predictions"].clone()).unwrap();
        let (_, got) = common::gms_logits(&model, &data);
        assert_eq!(got.len(), want.len(), "{name}: rows");
        let mut worst = 0f32;
        for (row, ((logits, _), w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(logits.len(), w.len(), "{name} row {row}: labels");
            for (g, w) in logits.iter().zip(w) {
                worst = worst.max((g - w).abs());
            }
        }
        let differ = got
            .iter()
            .zip(&want_pred)
            .filter(|((_, p), w)| p != *w)
            .count();
        common::report(&format!(
            "transformers cross-check (recorded, {}): {name}: {} rows, max |logit diff| {worst:.2e} \
             (tolerance {TOLERANCE:.0e}), {differ} predictions differ",
            fixture["transformers"].as_str().unwrap_or("?"),
            got.len()
        ));
        assert!(
            worst <= TOLERANCE,
            "{name}: max |logit diff| {worst:e} against transformers exceeds {TOLERANCE:e}"
        );
        assert_eq!(differ, 0, "{name}: predictions differ from transformers'");
    }
}

/// Not a check: writes the cross-check models and sentences for
/// `scripts/make-transformers-fixtures.py`, into `$GMS_FIXTURE_DIR`.
#[test]
#[ignore = "a tool: scripts/make-transformers-fixtures.py runs it to write the fixture models"]
fn write_fixture_models() {
    let out = std::path::PathBuf::from(
        std::env::var("GMS_FIXTURE_DIR").expect("GMS_FIXTURE_DIR names the output folder"),
    );
    std::fs::create_dir_all(&out).unwrap();
    let sentences = common::crosscheck_sentences();
    common::write_crosscheck_data(&out.join("data.jsonl"), &sentences);
    let models: Vec<Value> = common::CROSSCHECK_ARCHITECTURES
        .into_iter()
        .map(|arch| {
            let name = format!("{arch:?}");
            let dir = out.join(&name);
            common::write_crosscheck_model(&dir, arch);
            serde_json::json!({"architecture": name, "folder_sha256": common::tree_sha256(&dir)})
        })
        .collect();
    let manifest = serde_json::json!({"sentences": sentences, "models": models});
    std::fs::write(out.join("manifest.json"), manifest.to_string()).unwrap();
}
