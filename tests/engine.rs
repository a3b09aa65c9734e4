//! The engine on tiny real models: caches never change results, exports reload the same.

mod common;

use candle_core::Device;
use gms::gms::search::{GreedySearch, SearchParams};
use gms::gms::session::Session;
use gms::model::SubstitutionMatrix;

fn run(
    kit: &common::TinyKit,
    layer_cache: bool,
    abandonment: bool,
    alpha: f64,
) -> (Vec<(String, f64)>, gms::gms::EvalStats) {
    let mut s = Session::load(kit.inputs(false), &Device::Cpu).unwrap();
    s.evaluator.layer_cache = layer_cache;
    s.evaluator.abandonment = abandonment;
    let mut search = GreedySearch::new(
        SearchParams { alpha, patience: 3 },
        s.evaluator.num_layers(),
    );
    search.run(&mut s.evaluator, |_| {}).unwrap();
    let trace = search
        .trace()
        .iter()
        .map(|t| (t.point.mv.to_string(), t.point.metrics.score))
        .collect();
    (trace, s.evaluator.stats)
}

#[test]
fn caches_and_abandonment_never_change_the_path() {
    let kit = common::tiny_kit(4);
    for alpha in [0.0, 0.4, 0.9] {
        let (plain, plain_stats) = run(&kit, false, false, alpha);
        let (fast, fast_stats) = run(&kit, true, true, alpha);
        assert_eq!(plain, fast, "α {alpha}");
        assert!(plain.len() >= 2, "the search took at least one step");
        assert!(
            fast_stats.layer_runs < plain_stats.layer_runs,
            "the layer cache skipped work"
        );
    }
}

#[test]
fn abandoned_partial_results_are_completed_when_needed() {
    let kit = common::tiny_kit(3);
    let mut s = Session::load(kit.inputs(false), &Device::Cpu).unwrap();
    let n = s.evaluator.num_layers();
    let m = SubstitutionMatrix::product(n, s.evaluator.modules(), &[1, 2]);
    let cut = gms::gms::Cutoff {
        alpha: 0.4,
        beat: 10.0,
    };
    let first = s.evaluator.evaluate(&m, Some(cut)).unwrap();
    assert!(
        !first.complete,
        "an unbeatable cutoff abandons after the first batch"
    );
    let full = s.evaluator.evaluate(&m, None).unwrap();
    assert!(full.complete);
    let mut fresh = Session::load(kit.inputs(false), &Device::Cpu).unwrap();
    assert_eq!(
        fresh.evaluator.evaluate(&m, None).unwrap().counts,
        full.counts
    );
    let again = s.evaluator.evaluate(&m, None).unwrap();
    assert!(again.cached);
}

/// Every input of a search, each with the sha256 of its bytes (a folder: of all its files).
fn input_hashes(kit: &common::TinyKit) -> Vec<(std::path::PathBuf, String)> {
    [
        &kit.victim,
        &kit.proxy,
        &kit.clean,
        &kit.suspect,
        &kit.test_clean,
        &kit.test_poison,
    ]
    .into_iter()
    .map(|p| (p.clone(), common::tree_sha256(p)))
    .collect()
}

#[test]
fn weight_view_equals_a_written_purified_model() {
    let kit = common::tiny_kit(3);
    let before = input_hashes(&kit);
    let mut s = Session::load(kit.inputs(true), &Device::Cpu).unwrap();
    let mut search = GreedySearch::new(
        SearchParams {
            alpha: 0.4,
            patience: 2,
        },
        3,
    );
    search.run(&mut s.evaluator, |_| {}).unwrap();
    let mut m = SubstitutionMatrix::empty(3);
    m.toggle_layer(1, s.evaluator.modules());
    m.toggle(2, gms::model::Module::P);
    let view = s.test_metrics(&m).unwrap().unwrap();
    let out = kit.dir.path().join("purified");
    gms::export::write_purified(&s.victim, &s.proxy, &m, &out, false).unwrap();
    let inputs = gms::gms::session::SearchInputs {
        victim: out.clone(),
        ..kit.inputs(true)
    };
    let mut reloaded = Session::load(inputs, &Device::Cpu).unwrap();
    let empty = SubstitutionMatrix::empty(3);
    assert_eq!(reloaded.test_metrics(&empty).unwrap().unwrap(), view);
    // The output is a complete HF folder ...
    for f in ["config.json", "tokenizer.json", "model.safetensors"] {
        assert!(out.join(f).is_file(), "{f}");
    }
    // ... and no input changed: not a byte, and no file added to or removed from the model
    // folders.
    assert_eq!(
        input_hashes(&kit),
        before,
        "a search or export modified its inputs"
    );
}
