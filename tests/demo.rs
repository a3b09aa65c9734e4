//! The embedded demo: its assets load, reproduce the metrics recorded when they were made,
//! and show what the demo promises (a working backdoor that GMS at least halves).

mod common;

use candle_core::Device;
use gms::gms::report::StrategyReport;
use gms::gms::session::{Session, TestMetrics};
use gms::model::encoder::argmax_rows;
use gms::model::{LoadedModel, SubstitutionMatrix};
use std::path::Path;

/// The counts of test metrics (the rates follow from them; JSON may round their last digit).
fn counts(m: Option<TestMetrics>) -> Option<[usize; 4]> {
    m.map(|m| {
        [
            m.clean_correct,
            m.clean_total,
            m.poison_hits,
            m.poison_total,
        ]
    })
}

fn correct(model: &LoadedModel, data: &Path) -> usize {
    let rows = gms::data::Dataset::read(data).unwrap();
    let set = model
        .text_encoder()
        .unwrap()
        .encode_set(&rows.examples, &Device::Cpu)
        .unwrap();
    let mut n = 0;
    for b in &set.batches {
        let preds = argmax_rows(&model.classifier.logits(&b.input).unwrap()).unwrap();
        n += preds.iter().zip(&b.labels).filter(|(p, l)| p == l).count();
    }
    n
}

#[test]
fn demo_assets_reproduce_their_recorded_metrics() {
    let inputs = gms::demo::inputs().unwrap();
    let recorded = gms::demo::recorded_metrics().unwrap();
    let mut session = Session::load(inputs.clone(), &Device::Cpu).unwrap();
    let layers = session.evaluator.num_layers();
    assert!(layers >= 6, "the heatmap needs several layers");

    let victim = session
        .test_metrics(&SubstitutionMatrix::empty(layers))
        .unwrap()
        .unwrap();
    assert_eq!(counts(Some(victim)), counts(recorded.search.victim_test));
    let purified = session
        .test_metrics(&recorded.search.matrix())
        .unwrap()
        .unwrap();
    assert_eq!(counts(Some(purified)), counts(recorded.search.test));

    let proxy = LoadedModel::load(&inputs.proxy, &Device::Cpu).unwrap();
    let (clean, poison) = (inputs.test_clean.unwrap(), inputs.test_poison.unwrap());
    assert_eq!(correct(&proxy, &clean), recorded.proxy_test_clean.correct);
    assert_eq!(correct(&proxy, &poison), recorded.proxy_test_poison.correct);

    // What the demo is for: the backdoor works, and GMS at least halves it at small cost.
    assert!(victim.asr >= 0.9, "victim ASR {}", victim.asr);
    assert!(
        purified.asr <= victim.asr / 2.0,
        "ASR {} -> {}",
        victim.asr,
        purified.asr
    );
    assert!(
        victim.cacc - purified.cacc <= 0.10,
        "CACC {} -> {}",
        victim.cacc,
        purified.cacc
    );
}

#[test]
fn headless_demo_search_reproduces_the_recorded_result() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("strategy.json");
    let (ok, _, stderr) = common::gms(&[
        "search",
        "--demo",
        "--device",
        "cpu",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let report = StrategyReport::read(&out).unwrap();
    let recorded = gms::demo::recorded_metrics().unwrap().search;
    assert_eq!(counts(report.victim_test), counts(recorded.victim_test));
    assert_eq!(counts(report.test), counts(recorded.test));
    assert_eq!(report.cells, recorded.cells);
    assert_eq!(report.evaluations, recorded.evaluations);
}

#[test]
fn the_cache_folder_is_reused_and_repaired() {
    let first = gms::demo::materialize().unwrap();
    let again = gms::demo::materialize().unwrap();
    assert_eq!(first, again);
    assert!(first
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("gms-demo-"));
    for f in [
        "victim/model.safetensors",
        "proxy/tokenizer.json",
        "suspect.jsonl",
        "ATTRIBUTION.md",
    ] {
        assert!(first.join(f).is_file(), "{f}");
    }
}
