//! On the benchmark kit: `gms eval` reproduces the kit's figures, and `gms search` reproduces
//! the reference implementation's trace; the purified model written by `gms apply` reloads
//! with the same test scores.

mod common;

use serde_json::Value;
use std::path::Path;

fn eval_correct(model: &Path, data: &Path) -> (u64, u64) {
    let (ok, stdout, stderr) = common::gms(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--json",
        "--device",
        "cpu",
    ]);
    assert!(ok, "{stderr}");
    let v: Value = serde_json::from_str(stdout.trim()).unwrap();
    (v["correct"].as_u64().unwrap(), v["n"].as_u64().unwrap())
}

#[test]
fn eval_reproduces_the_kit_figures() {
    let Some(models) = common::kit_models("kit eval") else {
        return;
    };
    let kit = common::kit_dir("kit eval").unwrap();
    let victim = models.join("sst2_badnet");
    let (c, n) = eval_correct(&victim, &kit.join("data/sst2/test_clean.json"));
    assert_eq!(n, 872);
    // Kit README: CACC 88.53 % = 772/872 (±1 row).
    assert!(c.abs_diff(772) <= 1, "CACC {c}/{n}");
    let (c, n) = eval_correct(&victim, &kit.join("data/sst2/test_badnet.json"));
    assert_eq!((c, n), (444, 444), "ASR 100 %");
}

#[test]
fn search_reproduces_the_reference_trace() {
    let Some(models) = common::kit_models("kit search") else {
        return;
    };
    let kit = common::kit_dir("kit search").unwrap();
    let work = tempfile::tempdir().unwrap();
    let strategy = work.path().join("strategy.json");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let (ok, stdout, stderr) = common::gms(&[
        "search",
        "--victim",
        &s(&models.join("sst2_badnet")),
        "--proxy",
        &s(&models.join("sst2_proxy_uci")),
        "--clean",
        &s(&kit.join("proxysets/sst2_badnet/clean.jsonl")),
        "--suspect",
        &s(&kit.join("proxysets/sst2_badnet/suspect.jsonl")),
        "--test-clean",
        &s(&kit.join("data/sst2/test_clean.json")),
        "--test-poison",
        &s(&kit.join("data/sst2/test_badnet.json")),
        "--alpha",
        "0.4",
        "--patience",
        "5",
        "--device",
        "cpu",
        "--json",
        "--out",
        &s(&strategy),
    ]);
    assert!(ok, "{stderr}");
    let events: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let baseline = events.iter().find(|e| e["event"] == "baseline").unwrap();
    assert_eq!(
        (
            baseline["acc"].as_f64().unwrap(),
            baseline["asr"].as_f64().unwrap()
        ),
        (0.97, 1.0)
    );

    // Kit README: the reference's per-step (move, acc, asr, score).
    let want = [
        ("start", 0.785, 0.505, 0.6207),
        ("−module Q", 0.780, 0.515, 0.6126),
        ("−module K", 0.785, 0.560, 0.5877),
        ("−module V", 0.815, 0.620, 0.5641),
        ("−layer 0", 0.825, 0.710, 0.5142),
        ("−module O", 0.865, 0.865, 0.4377),
    ];
    let steps: Vec<&Value> = events.iter().filter(|e| e["event"] == "step").collect();
    assert_eq!(steps.len(), want.len());
    for (got, (mv, acc, asr, score)) in steps.iter().zip(want) {
        let p = &got["point"];
        let name = match &p["move"] {
            Value::String(s) if s == "Start" => "start".to_string(),
            Value::Object(o) if o.contains_key("DropModule") => {
                format!("−module {}", o["DropModule"].as_str().unwrap())
            }
            Value::Object(o) if o.contains_key("DropLayer") => format!("−layer {}", o["DropLayer"]),
            other => panic!("unexpected move {other}"),
        };
        assert_eq!(name, mv);
        let m = &p["metrics"];
        assert!((m["acc"].as_f64().unwrap() - acc).abs() < 1e-9, "{mv} acc");
        assert!((m["asr"].as_f64().unwrap() - asr).abs() < 1e-9, "{mv} asr");
        assert!(
            (m["score"].as_f64().unwrap() - score).abs() < 5e-5,
            "{mv} score {}",
            m["score"]
        );
    }
    let finished = events.iter().find(|e| e["event"] == "finished").unwrap();
    assert_eq!(finished["reason"], "Patience");

    let report: Value = serde_json::from_str(&std::fs::read_to_string(&strategy).unwrap()).unwrap();
    assert_eq!(
        report["cells"].as_array().unwrap().len(),
        36,
        "the full substitution is returned"
    );
    assert_eq!(report["trace"].as_array().unwrap().len(), 6);
    assert_eq!(report["evaluations"], 51);
    let test = &report["test"];
    // Reference: CACC 79.24 % = 691/872, ASR 14.64 % = 65/444 (±1 row).
    assert!(
        test["clean_correct"].as_u64().unwrap().abs_diff(691) <= 1,
        "{test}"
    );
    assert!(
        test["poison_hits"].as_u64().unwrap().abs_diff(65) <= 1,
        "{test}"
    );
    assert!(
        report["victim_test"]["clean_correct"]
            .as_u64()
            .unwrap()
            .abs_diff(772)
            <= 1
    );
    assert_eq!(
        report["inputs"]["victim"]["sha256"].as_str().unwrap().len(),
        64
    );

    // The purified model on disk scores what the weight view scored.
    let purified = work.path().join("purified");
    let yaml = work.path().join("merge.yml");
    let (ok, _, stderr) = common::gms(&[
        "apply",
        "--victim",
        &s(&models.join("sst2_badnet")),
        "--proxy",
        &s(&models.join("sst2_proxy_uci")),
        "--strategy",
        &s(&strategy),
        "--out",
        &s(&purified),
        "--mergekit",
        &s(&yaml),
    ]);
    assert!(ok, "{stderr}");
    let (c, _) = eval_correct(&purified, &kit.join("data/sst2/test_clean.json"));
    assert_eq!(c, test["clean_correct"].as_u64().unwrap());
    let (h, _) = eval_correct(&purified, &kit.join("data/sst2/test_badnet.json"));
    assert_eq!(h, test["poison_hits"].as_u64().unwrap());
    let y = std::fs::read_to_string(&yaml).unwrap();
    assert_eq!(
        y.matches("value: 1}").count(),
        37,
        "36 cells from the proxy + the victim's fallback"
    );
}

#[test]
#[should_panic(expected = "With CI set every kit test must run, not skip")]
fn a_missing_kit_fails_the_test_in_ci() {
    common::find_kit(
        "kit helper self-test (a deliberately missing kit)",
        Path::new("/nonexistent/kit"),
        true,
    );
}
