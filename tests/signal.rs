//! The suspect-signal check on a tiny fixture whose suspect rows carry a label every strategy
//! and the proxy predict anyway: `gms search` must say so on stderr and in the strategy JSON.

mod common;

use serde_json::Value;
use std::path::Path;

fn search(kit: &common::TinyKit, out: &Path, extra: &[&str]) -> (bool, String, String) {
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let mut args = vec![
        "search".to_string(),
        "--victim".into(),
        s(&kit.victim),
        "--proxy".into(),
        s(&kit.proxy),
        "--clean".into(),
        s(&kit.clean),
        "--suspect".into(),
        s(&kit.suspect),
        "--device".into(),
        "cpu".into(),
        "--out".into(),
        s(out),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    common::gms(&args)
}

#[test]
fn a_flat_suspect_signal_is_reported_on_stderr_and_in_the_strategy() {
    let kit = common::flat_signal_kit();
    for mode in ["paper", "cells"] {
        let out = kit.dir.path().join(format!("strategy-{mode}.json"));
        let (ok, _, stderr) = search(&kit, &out, &["--mode", mode]);
        assert!(ok, "{stderr}");
        assert_eq!(
            stderr.matches("warning: suspect signal is flat").count(),
            1,
            "{mode}: {stderr}"
        );
        assert!(stderr.contains("What to do"), "{stderr}");
        assert!(
            stderr.contains("warning: the proxy looks backdoored itself"),
            "{stderr}"
        );
        let report: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        let signal = &report["suspect_signal"];
        assert_eq!(signal["flat"], true, "{signal}");
        let n = signal["victim"]["suspect_total"].as_u64().unwrap();
        assert_eq!(signal["suspect_hits"], serde_json::json!([n, n]));
        let kinds: Vec<&str> = signal["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["flat_signal", "proxy_agrees"]);
        assert_eq!(signal["proxy_check"]["proxy_agrees"], true);
        assert_eq!(signal["proxy_check"]["suspect_disputed"], 0);
        assert_eq!(report["mode"]["name"], mode);
    }
}

#[test]
fn a_moving_suspect_signal_gives_no_flat_warning() {
    let kit = common::tiny_kit(2);
    let out = kit.dir.path().join("strategy.json");
    let (ok, stdout, stderr) = search(&kit, &out, &["--json"]);
    assert!(ok, "{stderr}");
    assert!(!stderr.contains("suspect signal is flat"), "{stderr}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(report["suspect_signal"]["flat"], false);
    assert!(
        stdout.lines().any(|l| l.contains(r#""event":"signal""#)),
        "the check is one of the --json events"
    );
}

#[test]
fn filtering_refuses_a_suspect_set_the_proxy_agrees_with_entirely() {
    let kit = common::flat_signal_kit();
    let out = kit.dir.path().join("strategy.json");
    let (ok, _, stderr) = search(&kit, &out, &["--signal", "filtered"]);
    assert!(!ok);
    assert!(stderr.contains("no row is left"), "{stderr}");
    assert!(!out.exists());
}
