//! Reduced-precision evaluation (`--dtype bf16|f16`) and the random-model generator that the
//! GPU benchmarks use, checked on the CPU with tiny models.

mod common;

use candle_core::{DType, Device};
use gms::gms::search::{GreedySearch, SearchParams};
use gms::gms::session::Session;
use gms::model::encoder::argmax_rows;
use gms::model::tokenize::masked_bias;
use gms::model::LoadedModel;

#[test]
fn bf16_evaluation_runs_and_reports_how_many_predictions_differ() {
    let kit = common::tiny_kit(2);
    let mut s = Session::load_with(kit.inputs(true), &Device::Cpu, DType::BF16).unwrap();
    let report = s
        .precision
        .clone()
        .expect("below f32 the session compares with f32");
    let (clean, suspect) = s.evaluator.set_sizes();
    assert_eq!(report.total, clean + suspect);
    assert!(report.differ <= report.total);
    assert_eq!(report.dtype, "bf16");
    assert!(
        s.device_name.contains(&format!(
            "{} of {} proxy-set predictions differ from f32",
            report.differ, report.total
        )),
        "the status line names the difference: {}",
        s.device_name
    );
    assert_eq!(s.evaluator.dtype(), DType::BF16);
    // The search and the test sets run in bf16 end to end.
    let params = SearchParams::validated(0.4, 2).unwrap();
    let mut search = GreedySearch::new(params, s.evaluator.num_layers());
    let best = search.run(&mut s.evaluator, |_| {}).unwrap();
    assert!(best.metrics.score.is_finite());
    let test = s
        .test_metrics(&best.matrix)
        .unwrap()
        .expect("test sets were given");
    assert_eq!(test.clean_total, 60);
}

#[test]
fn f32_sessions_report_no_precision_change() {
    let kit = common::tiny_kit(2);
    let s = Session::load(kit.inputs(false), &Device::Cpu).unwrap();
    assert!(s.precision.is_none());
    assert_eq!(s.dtype, DType::F32);
    assert!(!s.device_name.contains("differ"));
}

#[test]
fn f16_padding_bias_stays_finite_and_logits_match_f32() {
    let kit = common::tiny_kit(2);
    let model = LoadedModel::load(&kit.victim, &Device::Cpu).unwrap();
    let rows = gms::data::Dataset::read(&kit.clean).unwrap();
    let set = model
        .text_encoder()
        .unwrap()
        .encode_set(&rows.examples, &Device::Cpu)
        .unwrap();
    assert!(
        set.batches.iter().any(|b| b.tokens > b.rows.len() * 3),
        "some batch is padded"
    );
    let half = model.classifier.to_dtype(DType::F16).unwrap();
    let half_set = set.to_dtype(DType::F16).unwrap();
    for (b32, b16) in set.batches.iter().zip(&half_set.batches) {
        let bias = b16
            .input
            .attention_bias
            .to_dtype(DType::F32)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert!(bias.iter().all(|v| v.is_finite()), "f16 bias overflowed");
        assert!(bias.contains(&masked_bias(DType::F16)) || bias.iter().all(|&v| v == 0.0));
        let full = model
            .classifier
            .logits(&b32.input)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        let low = half
            .logits(&b16.input)
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        for (a, b) in full.iter().flatten().zip(low.iter().flatten()) {
            assert!(b.is_finite(), "f16 logits must stay finite");
            assert!(
                (a - b).abs() < 0.05 * (1.0 + a.abs()),
                "f16 logit {b} far from f32 {a}"
            );
        }
        assert_eq!(
            argmax_rows(&half.logits(&b16.input).unwrap())
                .unwrap()
                .len(),
            b16.rows.len()
        );
    }
}

#[test]
fn gen_model_writes_a_loadable_classifier_of_the_asked_shape() {
    let kit = common::tiny_kit(1);
    let out = kit.dir.path().join("generated");
    let tok = kit.victim.to_str().unwrap();
    // The same shape and seed, written to `out`.
    let generate = |out: &std::path::Path| {
        common::gms(&[
            "gen-model",
            "--layers",
            "3",
            "--hidden",
            "48",
            "--heads",
            "4",
            "--intermediate",
            "96",
            "--labels",
            "3",
            "--seed",
            "7",
            "--tokenizer-from",
            tok,
            "--vocab-size",
            "64",
            "--max-positions",
            "128",
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let (ok, stdout, stderr) = generate(&out);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("wrote"), "{stdout}");
    let model = LoadedModel::load(&out, &Device::Cpu).unwrap();
    let c = &model.folder.config;
    assert_eq!(
        (
            c.layers,
            c.hidden,
            c.heads,
            c.intermediate,
            c.num_labels,
            c.vocab_size
        ),
        (3, 48, 4, 96, 3, 64)
    );
    // The copied tokenizer works with it, and the same seed gives the same weights.
    let examples = gms::data::Dataset::read(&kit.clean).unwrap().examples;
    let set = model
        .text_encoder()
        .unwrap()
        .encode_set(&examples, &Device::Cpu)
        .unwrap();
    let logits = model
        .classifier
        .logits(&set.batches[0].input)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    let again = kit.dir.path().join("again");
    let (ok, _, stderr) = generate(&again);
    assert!(ok, "{stderr}");
    let twin = LoadedModel::load(&again, &Device::Cpu).unwrap();
    assert_eq!(
        twin.classifier
            .logits(&set.batches[0].input)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap(),
        logits
    );
}

#[test]
fn gen_model_refuses_bad_shapes_with_the_fix() {
    let kit = common::tiny_kit(1);
    let tok = kit.victim.to_str().unwrap();
    let out = kit.dir.path().join("bad");
    let o = out.to_str().unwrap();
    let (ok, _, stderr) = common::gms(&[
        "gen-model",
        "--hidden",
        "50",
        "--heads",
        "4",
        "--tokenizer-from",
        tok,
        "--vocab-size",
        "64",
        "--out",
        o,
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("--heads 4: hidden size 50 is not divisible by 4 heads"),
        "{stderr}"
    );
    let (ok, _, stderr) = common::gms(&[
        "gen-model",
        "--layers",
        "1",
        "--hidden",
        "8",
        "--heads",
        "2",
        "--intermediate",
        "8",
        "--tokenizer-from",
        tok,
        "--vocab-size",
        "10",
        "--out",
        o,
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("the tokenizer has 45 tokens but the model's embeddings hold 10"),
        "{stderr}"
    );
    let (ok, _, stderr) = common::gms(&[
        "gen-model",
        "--tokenizer-from",
        kit.dir.path().to_str().unwrap(),
        "--vocab-size",
        "64",
        "--out",
        o,
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("tokenizer.json: not found (tokenizer)"),
        "{stderr}"
    );
    assert!(!out.exists(), "nothing is written for a refused shape");
}

#[test]
fn search_cli_takes_dtype_and_says_so() {
    let kit = common::tiny_kit(1);
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let strategy = kit.dir.path().join("strategy.json");
    let (ok, stdout, stderr) = common::gms(&[
        "search",
        "--victim",
        &s(&kit.victim),
        "--proxy",
        &s(&kit.proxy),
        "--clean",
        &s(&kit.clean),
        "--suspect",
        &s(&kit.suspect),
        "--device",
        "cpu",
        "--dtype",
        "bf16",
        "--patience",
        "1",
        "--json",
        "--out",
        &s(&strategy),
    ]);
    assert!(ok, "{stderr}");
    let baseline: serde_json::Value = stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["event"] == "baseline")
        .expect("a baseline event");
    let device = baseline["device"].as_str().unwrap();
    assert!(
        device.starts_with("cpu")
            && device.contains("bf16: ")
            && device.contains("of 80 proxy-set predictions differ from f32"),
        "{device}"
    );
    let (ok, _, stderr) = common::gms(&[
        "search",
        "--dtype",
        "f64",
        "--victim",
        "x",
        "--proxy",
        "x",
        "--clean",
        "x",
        "--suspect",
        "x",
        "--out",
        "x",
    ]);
    assert!(
        !ok && stderr.contains("f32") && stderr.contains("bf16"),
        "{stderr}"
    );
}

#[test]
fn bench_large_walks_every_step_and_reports_json() {
    let kit = common::tiny_kit(1);
    // A kit-shaped folder holding only what `--large` reads: the proxy sets.
    let fake = kit.dir.path().join("kit");
    let sets = fake.join("proxysets/sst2_badnet");
    std::fs::create_dir_all(&sets).unwrap();
    std::fs::write(fake.join("setup.sh"), "").unwrap();
    std::fs::copy(&kit.clean, sets.join("clean.jsonl")).unwrap();
    std::fs::copy(&kit.suspect, sets.join("suspect.jsonl")).unwrap();
    for dtype in ["f32", "bf16"] {
        let (ok, stdout, stderr) = common::gms(&[
            "bench",
            "--kit",
            fake.to_str().unwrap(),
            "--large",
            kit.dir.path().to_str().unwrap(),
            "--device",
            "cpu",
            "--dtype",
            dtype,
            "--json",
        ]);
        assert!(ok, "{stderr}");
        let r: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(r["bench"], "large");
        assert_eq!(r["dtype"], dtype);
        // 6 module types + 1 layer: candidates 7 + 6 + … + 2 = 27 over the walk, plus the start.
        assert_eq!(r["evaluations"], 28, "{r}");
        assert_eq!(r["precision"].is_null(), dtype == "f32", "{r}");
    }
}
