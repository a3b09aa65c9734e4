//! `gms apply`: the purified model folder holds the victim's config and tokenizer and the
//! substituted weights, and nothing that describes how the victim was trained.

mod common;

use candle_core::Device;
use gms::data::dynamics::{TrainingDynamics, DYNAMICS_FILE};
use gms::data::{Dataset, Example};
use gms::gms::report::{Origin, ReportParts, StrategyReport};
use gms::gms::session::Session;
use gms::model::folder::sha256_files;
use gms::model::SubstitutionMatrix;
use std::path::{Path, PathBuf};

/// A training set of `rows` rows and, in `victim`, a record of training on it that ranks the
/// last row highest (as `gms train` leaves one beside a model, with `metrics.json` from a
/// kit-style recipe next to it).
fn victim_with_record(victim: &Path, dir: &Path, rows: usize) -> PathBuf {
    let train = dir.join("train.jsonl");
    let examples = common::sentences(rows, 31, false)
        .into_iter()
        .enumerate()
        .map(|(i, text)| Example {
            text,
            text_pair: None,
            label: i % 2,
            line: i + 1,
        })
        .collect();
    Dataset::from_examples(&train, examples)
        .write_jsonl(&train)
        .unwrap();
    let sha = sha256_files(std::slice::from_ref(&train)).unwrap();
    let mut record = TrainingDynamics::new(&train, sha, rows, 1);
    for (i, row) in record.p_label.iter_mut().enumerate() {
        row.push(i as f32 / rows as f32);
    }
    record.write(&victim.join(DYNAMICS_FILE)).unwrap();
    std::fs::write(victim.join("metrics.json"), "{\"cacc\": 0.9}").unwrap();
    train
}

#[test]
fn a_purified_model_does_not_inherit_the_victims_training_record() {
    let kit = common::tiny_kit(2);
    let dir = kit.dir.path();
    let train = victim_with_record(&kit.victim, dir, 30);
    let s = |p: &Path| p.to_str().unwrap().to_string();

    // The victim's own record ranks its proxy sets…
    let (ok, stdout, stderr) = common::gms(&[
        "proxy-sets",
        "--victim",
        &s(&kit.victim),
        "--train",
        &s(&train),
        "--out",
        &s(&dir.join("victim-sets")),
        "--size",
        "5",
        "--device",
        "cpu",
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("per-epoch record"), "{stdout}");

    let mut session = Session::load(kit.inputs(false), &Device::Cpu).unwrap();
    let matrix = SubstitutionMatrix::full(session.evaluator.modules(), 2);
    let report = StrategyReport::build(
        &mut session,
        ReportParts {
            matrix: &matrix,
            origin: Origin::Manual,
            alpha: 0.4,
            patience: 5,
            mode: Default::default(),
            trace: &[],
            evaluations: 1,
            suspect_signal: None,
        },
    )
    .unwrap();
    let strategy = dir.join("strategy.json");
    report.write(&strategy).unwrap();
    let purified = dir.join("purified");
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
    for kept in ["config.json", "tokenizer.json", "model.safetensors"] {
        assert!(purified.join(kept).is_file(), "{kept} is written");
    }
    for dropped in [DYNAMICS_FILE, "metrics.json"] {
        assert!(
            !purified.join(dropped).exists(),
            "{dropped} describes the victim, not the purified model"
        );
    }

    // …but the purified model's are ranked by the purified model itself.
    let (ok, stdout, stderr) = common::gms(&[
        "proxy-sets",
        "--victim",
        &s(&purified),
        "--train",
        &s(&train),
        "--out",
        &s(&dir.join("purified-sets")),
        "--size",
        "5",
        "--device",
        "cpu",
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("one pass of the victim"), "{stdout}");
}
