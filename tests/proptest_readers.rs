//! Hardened readers (issue 12): random and mutated inputs to every reader of user files end in
//! a result or a typed error, never a panic, a hang or a huge allocation. Each property runs a
//! fixed number of cases ([`CASES`]) so the file takes seconds in the normal `cargo test`.

use gms::data::Dataset;
use gms::gms::journal::Journal;
use gms::gms::report::StrategyReport;
use gms::model::config::ModelConfig;
use gms::model::decoder_config::DecoderConfig;
use proptest::prelude::*;
use std::path::Path;

/// Cases per property: 256 random or mutated inputs each (seconds in all on 2 cores).
const CASES: u32 = 256;

/// Replaces, inserts or deletes bytes of `seed` at the positions `edits` pick.
fn mutate(seed: &[u8], edits: &[(usize, u8, u8)]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for &(at, op, byte) in edits {
        let i = if v.is_empty() { 0 } else { at % (v.len() + 1) };
        match op % 3 {
            0 if i < v.len() => v[i] = byte,
            1 => v.insert(i, byte),
            _ if i < v.len() => {
                v.remove(i);
            }
            _ => v.push(byte),
        }
    }
    v
}

fn edits() -> impl Strategy<Value = Vec<(usize, u8, u8)>> {
    prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..8)
}

fn write_temp(name: &str, bytes: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

const JSONL: &str = "{\"sentence\": \"a good film\", \"label\": 1}\n{\"text\": \"bad\", \"label\": 0}\n{\"premise\": \"p\", \"hypothesis\": \"h\", \"label\": 2}\n";
const TSV: &str = "sentence\tlabel\na good film\t1\nbad\t0\n";
const CSV: &str = "sentence1,sentence2,label\n\"a, b\",c,1\nd,e,0\n";

const BERT_CONFIG: &str = r#"{"architectures": ["BertForSequenceClassification"], "model_type": "bert",
 "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64,
 "vocab_size": 100, "max_position_embeddings": 64, "type_vocab_size": 2, "layer_norm_eps": 1e-12,
 "hidden_act": "gelu", "id2label": {"0": "NEG", "1": "POS"}, "pad_token_id": 0}"#;

const LLAMA_CONFIG: &str = r#"{"architectures": ["LlamaForSequenceClassification"], "model_type": "llama",
 "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
 "intermediate_size": 64, "vocab_size": 100, "max_position_embeddings": 64, "rms_norm_eps": 1e-6,
 "rope_theta": 10000.0, "hidden_act": "silu", "num_labels": 2, "pad_token_id": 0}"#;

/// A small valid safetensors file's bytes.
fn safetensors_seed() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    let mut tensors = std::collections::BTreeMap::new();
    tensors.insert(
        "w".to_string(),
        candle_core::Tensor::arange(0f32, 6.0, &candle_core::Device::Cpu)
            .unwrap()
            .reshape((2, 3))
            .unwrap(),
    );
    gms::model::folder::write_safetensors(&path, &tensors).unwrap();
    std::fs::read(path).unwrap()
}

/// A valid strategy JSON (a 2-layer manual strategy).
const STRATEGY: &str = r#"{"gms_version": "0.1.0", "origin": "manual", "modules": ["K"], "layers": [1],
 "cells": [[1, "K"]], "num_layers": 2, "alpha": 0.4, "patience": 5, "score": 0.5,
 "proxy": {"acc": 0.9, "asr": 0.1}, "baseline": {"acc": 0.9, "asr": 0.9}, "trace": [],
 "evaluations": 1, "test": null, "victim_test": null,
 "inputs": {"victim": {"path": "v", "sha256": "00"}, "proxy": {"path": "p", "sha256": "00"},
  "clean": {"path": "c", "sha256": "00"}, "suspect": {"path": "s", "sha256": "00"},
  "test_clean": null, "test_poison": null}}"#;

/// A valid journal: header, an evaluation, a step, the end.
fn journal_seed() -> String {
    let input = r#"{"path": "x", "sha256": "00"}"#;
    [
        format!(
            r#"{{"format": 1, "gms_version": "0.1.0", "architecture": "BertForSequenceClassification", "num_layers": 2, "modules": ["Q","K","V","O","F","P"], "inputs": {{"victim": {input}, "proxy": {input}, "clean": {input}, "suspect": {input}, "test_clean": null, "test_poison": null}}, "baseline": {{"clean_correct": 8, "clean_total": 8, "suspect_hits": 7, "suspect_total": 8}}, "alpha": 0.4, "patience": 5, "dtype": "f32", "device": "cpu"}}"#
        ),
        r#"{"kind": "evaluation", "cells": [[0, "Q"], [1, "P"]], "complete": false, "counts": {"clean_correct": 3, "clean_total": 8, "suspect_hits": 1, "suspect_total": 8}, "done": [[true, false], [true]]}"#.into(),
        r#"{"kind": "step", "step": 0, "move": "start", "cells": [[0, "Q"]], "counts": {"clean_correct": 3, "clean_total": 8, "suspect_hits": 1, "suspect_total": 8}, "score": 0.5, "improved": true, "no_improve": 0}"#.into(),
        r#"{"kind": "finished", "cells": [[0, "Q"]], "score": 0.5, "reason": "Patience"}"#.into(),
        r#"{"kind": "action", "action": "export", "detail": {"json": "s.json"}}"#.into(),
    ]
    .join("\n")
        + "\n"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn datasets_never_panic_on_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512), ext in prop::sample::select(vec!["jsonl", "tsv", "csv"])) {
        let (_d, path) = write_temp(&format!("d.{ext}"), &bytes);
        let _ = Dataset::read(&path);
    }

    #[test]
    fn datasets_never_panic_on_mutated_files(which in 0usize..3, e in edits()) {
        let (seed, ext) = [(JSONL, "jsonl"), (TSV, "tsv"), (CSV, "csv")][which];
        let (_d, path) = write_temp(&format!("d.{ext}"), &mutate(seed.as_bytes(), &e));
        if let Ok(d) = Dataset::read(&path) {
            let _ = d.check_labels(2);
        }
    }

    #[test]
    fn configs_never_panic_on_mutated_json(which in 0usize..2, e in edits()) {
        let seed = [BERT_CONFIG, LLAMA_CONFIG][which];
        let bytes = mutate(seed.as_bytes(), &e);
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) {
            let _ = ModelConfig::from_json(&v);
            let _ = DecoderConfig::from_json(&v);
        }
        let (_d, path) = write_temp("config.json", &bytes);
        let _ = ModelConfig::from_file(&path);
        let _ = DecoderConfig::from_file(&path);
    }

    #[test]
    fn configs_never_panic_on_random_values(n in any::<i64>(), f in any::<f64>(), key in prop::sample::select(vec!["hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "intermediate_size", "vocab_size", "max_position_embeddings", "num_labels", "head_dim", "rope_theta", "layer_norm_eps"]), as_float in any::<bool>()) {
        for seed in [BERT_CONFIG, LLAMA_CONFIG] {
            let mut v: serde_json::Value = serde_json::from_str(seed).unwrap();
            v[key] = if as_float { serde_json::json!(f) } else { serde_json::json!(n) };
            let _ = ModelConfig::from_json(&v);
            let _ = DecoderConfig::from_json(&v);
        }
    }

    #[test]
    fn safetensors_check_never_panics_on_mutated_files(e in edits(), header_edit in any::<bool>()) {
        let seed = safetensors_seed();
        // Mutate the 8-byte length and JSON header as often as the data.
        let bytes = if header_edit {
            let h: Vec<(usize, u8, u8)> = e.iter().map(|&(at, op, b)| (at % 96, op, b)).collect();
            mutate(&seed, &h)
        } else {
            mutate(&seed, &e)
        };
        let (_d, path) = write_temp("model.safetensors", &bytes);
        let _ = gms::model::folder::for_each_tensor(&path, |_, _| Ok(()));
    }

    #[test]
    fn safetensors_check_never_panics_on_random_headers(len in any::<u64>(), header in ".{0,64}", tail in prop::collection::vec(any::<u8>(), 0..64)) {
        let mut bytes = len.to_le_bytes().to_vec();
        bytes.extend(header.as_bytes());
        bytes.extend(tail);
        let (_d, path) = write_temp("model.safetensors", &bytes);
        let _ = gms::model::folder::for_each_tensor(&path, |_, _| Ok(()));
    }

    #[test]
    fn strategy_reader_never_panics_on_mutated_json(e in edits(), layers in any::<usize>()) {
        let (_d, path) = write_temp("s.json", &mutate(STRATEGY.as_bytes(), &e));
        if let Ok(r) = StrategyReport::read(&path) {
            let _ = r.matrix();
        }
        // A num_layers no model has is refused, not allocated.
        let big = STRATEGY.replace("\"num_layers\": 2", &format!("\"num_layers\": {layers}"));
        let (_d2, path) = write_temp("s.json", big.as_bytes());
        if let Ok(r) = StrategyReport::read(&path) {
            let _ = r.matrix();
        }
    }

    #[test]
    fn journal_reader_never_panics_on_mutated_or_random_bytes(e in edits(), random in prop::collection::vec(any::<u8>(), 0..256)) {
        let seed = journal_seed();
        let parsed = Journal::parse(Path::new("j.jsonl"), seed.as_bytes()).unwrap();
        prop_assert_eq!(parsed.entries.len(), 4);
        if let Ok(j) = Journal::parse(Path::new("j.jsonl"), &mutate(seed.as_bytes(), &e)) {
            let _ = j.recorded();
            let _ = j.last_trace();
        }
        let _ = Journal::parse(Path::new("j.jsonl"), &random);
    }
}
