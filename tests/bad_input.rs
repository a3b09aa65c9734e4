//! Bad input ends in one clear line on stderr, exit code 2, and nothing written.

mod common;

use std::path::{Path, PathBuf};

struct Outcome {
    code: i32,
    stderr: String,
}

fn gms(args: &[&str]) -> Outcome {
    let out = common::gms_output(args);
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    }
}

/// Runs `gms search` on the tiny kit with some flags replaced, and checks the failure.
fn search_fails(kit: &common::TinyKit, overrides: &[&str], expect: &[&str]) {
    let out = kit.dir.path().join("strategy.json");
    let p = |p: &Path| p.to_str().unwrap().to_string();
    let mut flags: Vec<(String, String)> = vec![
        ("--victim".into(), p(&kit.victim)),
        ("--proxy".into(), p(&kit.proxy)),
        ("--clean".into(), p(&kit.clean)),
        ("--suspect".into(), p(&kit.suspect)),
        ("--device".into(), "cpu".into()),
        ("--out".into(), p(&out)),
    ];
    for pair in overrides.chunks(2) {
        match flags.iter_mut().find(|(f, _)| f == pair[0]) {
            Some(slot) => slot.1 = pair[1].to_string(),
            None => flags.push((pair[0].to_string(), pair[1].to_string())),
        }
    }
    let extra = overrides;
    let mut merged = vec!["search".to_string()];
    for (f, v) in flags {
        merged.push(f);
        merged.push(v);
    }
    let refs: Vec<&str> = merged.iter().map(String::as_str).collect();
    let o = gms(&refs);
    assert_eq!(o.code, 2, "exit code for {extra:?}; stderr: {}", o.stderr);
    assert_eq!(
        o.stderr.lines().count(),
        1,
        "one line for {extra:?}: {}",
        o.stderr
    );
    assert!(o.stderr.starts_with("error: "), "{}", o.stderr);
    for e in expect {
        assert!(
            o.stderr.contains(e),
            "{extra:?}: {:?} lacks {e:?}",
            o.stderr
        );
    }
    assert!(!out.exists(), "{extra:?} wrote {}", out.display());
    let leftovers: Vec<_> = std::fs::read_dir(kit.dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".gms-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left behind");
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap().flatten() {
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
}

fn rewrite_weights(
    dir: &Path,
    edit: impl FnOnce(&mut std::collections::BTreeMap<String, candle_core::Tensor>),
) {
    let file = dir.join("model.safetensors");
    let map = candle_core::safetensors::load(&file, &candle_core::Device::Cpu).unwrap();
    let mut map: std::collections::BTreeMap<_, _> = map.into_iter().collect();
    edit(&mut map);
    let map: std::collections::HashMap<_, _> = map.into_iter().collect();
    candle_core::safetensors::save(&map, &file).unwrap();
}

fn variant(kit: &common::TinyKit, name: &str) -> PathBuf {
    let dir = kit.dir.path().join(name);
    copy_dir(&kit.victim, &dir);
    dir
}

fn write(kit: &common::TinyKit, name: &str, body: &str) -> PathBuf {
    let p = kit.dir.path().join(name);
    std::fs::write(&p, body).unwrap();
    p
}

#[test]
fn bad_models_are_refused_with_the_file_and_the_fix() {
    let kit = common::tiny_kit(2);
    let s = |p: &Path| p.to_str().unwrap().to_string();

    search_fails(
        &kit,
        &["--victim", "/no/such/model"],
        &["/no/such/model", "not found"],
    );

    let truncated = variant(&kit, "truncated");
    let f = truncated.join("model.safetensors");
    let len = std::fs::metadata(&f).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&f)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    search_fails(
        &kit,
        &["--victim", &s(&truncated)],
        &["model.safetensors", "truncated"],
    );

    let missing = variant(&kit, "missing-tensor");
    rewrite_weights(&missing, |m| {
        m.remove("bert.encoder.layer.1.attention.self.key.bias");
    });
    search_fails(
        &kit,
        &["--victim", &s(&missing)],
        &["missing tensor bert.encoder.layer.1.attention.self.key.bias"],
    );

    let nan = variant(&kit, "nan");
    rewrite_weights(&nan, |m| {
        let t = m.get("bert.encoder.layer.0.output.dense.bias").unwrap();
        let mut v = t.to_vec1::<f32>().unwrap();
        v[3] = f32::NAN;
        m.insert(
            "bert.encoder.layer.0.output.dense.bias".into(),
            candle_core::Tensor::new(v, &candle_core::Device::Cpu).unwrap(),
        );
    });
    search_fails(
        &kit,
        &["--victim", &s(&nan)],
        &[
            "bert.encoder.layer.0.output.dense.bias holds NaN",
            "corrupt",
        ],
    );

    let pickle = kit.dir.path().join("pickle");
    copy_dir(&kit.victim, &pickle);
    std::fs::rename(
        pickle.join("model.safetensors"),
        pickle.join("pytorch_model.bin"),
    )
    .unwrap();
    search_fails(
        &kit,
        &["--victim", &s(&pickle)],
        &["pytorch_model.bin", "convert it"],
    );

    let no_tok = variant(&kit, "no-tokenizer");
    std::fs::remove_file(no_tok.join("tokenizer.json")).unwrap();
    search_fails(
        &kit,
        &["--victim", &s(&no_tok)],
        &["tokenizer.json", "not found"],
    );

    let big_vocab = variant(&kit, "big-vocab");
    let mut words: Vec<String> = common::WORDS.iter().map(|w| w.to_string()).collect();
    words.extend((0..20).map(|i| format!("extra{i}")));
    let tok = gms::model::random::wordpiece_tokenizer_json(&words);
    std::fs::write(big_vocab.join("tokenizer.json"), tok.to_string()).unwrap();
    search_fails(
        &kit,
        &["--victim", &s(&big_vocab)],
        &["tokenizer.json", "65 tokens", "45"],
    );
}

#[test]
fn mismatched_pairs_are_refused() {
    use gms::model::random::{write_random_model, RandomModelSpec};
    let kit = common::tiny_kit(2);
    let s = |p: &Path| p.to_str().unwrap().to_string();

    let deeper = kit.dir.path().join("deeper");
    write_random_model(&deeper, &RandomModelSpec::tiny(&common::WORDS, 3, 5)).unwrap();
    search_fails(
        &kit,
        &["--proxy", &s(&deeper)],
        &["do not match", "layer count 2 vs 3"],
    );

    let wider = kit.dir.path().join("wider");
    let mut spec = RandomModelSpec::tiny(&common::WORDS, 2, 6);
    spec.intermediate = 96;
    write_random_model(&wider, &spec).unwrap();
    search_fails(
        &kit,
        &["--proxy", &s(&wider)],
        &["intermediate size 64 vs 96"],
    );

    let distil = kit.dir.path().join("distil");
    let mut spec = RandomModelSpec::tiny(&common::WORDS, 2, 7);
    spec.architecture = gms::model::Architecture::DistilBert;
    write_random_model(&distil, &spec).unwrap();
    search_fails(
        &kit,
        &["--proxy", &s(&distil)],
        &["BertForSequenceClassification vs DistilBertForSequenceClassification"],
    );
}

#[test]
fn bad_datasets_and_arguments_are_refused() {
    let kit = common::tiny_kit(2);
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let empty = write(&kit, "empty.jsonl", "\n");
    search_fails(&kit, &["--clean", &s(&empty)], &["empty.jsonl", "no rows"]);
    let malformed = write(
        &kit,
        "bad.jsonl",
        "{\"sentence\": \"fine\", \"label\": 1}\n{\"sentence\": \"broken\"\n",
    );
    search_fails(
        &kit,
        &["--suspect", &s(&malformed)],
        &["bad.jsonl:2:", "invalid JSON"],
    );
    let no_label = write(&kit, "nolabel.jsonl", "{\"sentence\": \"fine\"}\n");
    search_fails(
        &kit,
        &["--clean", &s(&no_label)],
        &["nolabel.jsonl:1:", "missing \"label\""],
    );
    let out_of_range = write(
        &kit,
        "range.jsonl",
        "{\"sentence\": \"a\", \"label\": 0}\n{\"sentence\": \"b\", \"label\": 5}\n",
    );
    search_fails(
        &kit,
        &["--clean", &s(&out_of_range)],
        &["range.jsonl:2:", "label 5 is out of range", "2 labels"],
    );
    let unknown = write(&kit, "data.parquet", "x");
    search_fails(
        &kit,
        &["--clean", &s(&unknown)],
        &["data.parquet", "unknown dataset format"],
    );
    search_fails(&kit, &["--alpha", "1.5"], &["--alpha 1.5", "[0, 1]"]);
    search_fails(&kit, &["--alpha", "-0.1"], &["--alpha -0.1"]);
    search_fails(&kit, &["--patience", "0"], &["--patience 0", "at least 1"]);
    search_fails(&kit, &["--device", "tpu"], &["--device tpu"]);
}

#[test]
fn eval_and_apply_refuse_bad_input_too() {
    let kit = common::tiny_kit(2);
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let o = gms(&[
        "eval",
        "--model",
        &s(&kit.victim),
        "--data",
        "/no/data.jsonl",
        "--device",
        "cpu",
    ]);
    assert_eq!(o.code, 2);
    assert!(
        o.stderr.contains("/no/data.jsonl: not found"),
        "{}",
        o.stderr
    );
    let bogus = write(&kit, "strategy.json", "{\"cells\": 3}");
    let out = kit.dir.path().join("purified");
    let o = gms(&[
        "apply",
        "--victim",
        &s(&kit.victim),
        "--proxy",
        &s(&kit.proxy),
        "--strategy",
        &s(&bogus),
        "--out",
        &s(&out),
    ]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("not a gms strategy"), "{}", o.stderr);
    assert!(!out.exists());

    // A strategy found for a deeper model: the writer's own check, one line with the fix.
    let ref_ = r#"{"path": "x", "sha256": "0"}"#;
    let deeper = write(
        &kit,
        "deeper.json",
        &format!(
            r#"{{"gms_version": "0", "origin": "manual", "modules": ["Q"], "layers": [2],
                "cells": [[2, "Q"]], "num_layers": 3, "alpha": 0.4, "patience": 5, "score": 0,
                "proxy": {{"acc": 1, "asr": 0}}, "baseline": {{"acc": 1, "asr": 1}}, "trace": [],
                "evaluations": 1, "test": null, "victim_test": null,
                "inputs": {{"victim": {ref_}, "proxy": {ref_}, "clean": {ref_}, "suspect": {ref_},
                            "test_clean": null, "test_poison": null}}}}"#
        ),
    );
    let o = gms(&[
        "apply",
        "--victim",
        &s(&kit.victim),
        "--proxy",
        &s(&kit.proxy),
        "--strategy",
        &s(&deeper),
        "--out",
        &s(&out),
    ]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert_eq!(o.stderr.lines().count(), 1, "{}", o.stderr);
    assert!(
        o.stderr.contains("the strategy has 3 layers, the model 2")
            && o.stderr.contains("use the strategy found for this victim"),
        "{}",
        o.stderr
    );
    assert!(!out.exists());
}

/// `gms … | head` must end quietly: a closed stdout kills the process with SIGPIPE, as it does
/// other command-line tools, instead of a panic message and exit code 101.
#[cfg(unix)]
#[test]
fn a_closed_stdout_ends_the_process_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let kit = common::tiny_kit(2);
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gms"))
        .args(["inspect", "--model"])
        .arg(&kit.victim)
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "gms panicked: {stderr}");
    // 13: SIGPIPE on Linux and macOS.
    assert_eq!(out.status.signal(), Some(13), "status {:?}", out.status);
}
