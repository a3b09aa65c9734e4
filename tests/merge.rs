//! Merge baselines (`gms merge`): each method's arithmetic on tiny random models, the command's
//! contract (outputs, metrics, bad input), and — when GMS_PYTHON names a Python with mergekit —
//! the model mergekit builds from the YAML gms writes, tensor for tensor.

mod common;

use candle_core::{DType, Tensor};
use gms::gms::merge::arithmetic::{combine, delta, sparsify, Combine};
use gms::model::folder::{find_weight_files, for_each_tensor};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Every floating tensor of a model folder: shape and f32 values.
type Weights = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

fn weights(dir: &Path) -> Weights {
    let mut out = Weights::new();
    for file in find_weight_files(dir).unwrap() {
        for_each_tensor(&file, |name, t| {
            if t.dtype().is_float() {
                let v = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
                out.insert(name.to_string(), (t.dims().to_vec(), v));
            }
            Ok(())
        })
        .unwrap();
    }
    out
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs `gms merge` with `args`; panics with its stderr unless it succeeds.
fn merge(args: &[&str]) -> String {
    let (ok, out, err) = common::gms(&[&["merge"], args].concat());
    assert!(ok, "gms merge {args:?} failed: {err}");
    out
}

/// The tiny victim/proxy kit plus a third random classifier (seed 3) as a base, and the same
/// base in a plain encoder's layout (`BertModel`: no `bert.` prefix, no head).
struct Tiny {
    kit: common::TinyKit,
    base: PathBuf,
    plain_base: PathBuf,
}

fn tiny() -> Tiny {
    use gms::model::random::{write_random_model, RandomModelSpec};
    let kit = common::tiny_kit(2);
    let base = kit.dir.path().join("base");
    write_random_model(&base, &RandomModelSpec::tiny(&common::WORDS, 2, 3)).unwrap();
    let plain_base = kit.dir.path().join("plain_base");
    std::fs::create_dir_all(&plain_base).unwrap();
    let mut tensors: BTreeMap<String, Tensor> = BTreeMap::new();
    for_each_tensor(&base.join("model.safetensors"), |name, t| {
        if let Some(body) = name.strip_prefix("bert.") {
            tensors.insert(body.to_string(), t);
        }
        Ok(())
    })
    .unwrap();
    safetensors::serialize_to_file(tensors.iter(), None, &plain_base.join("model.safetensors"))
        .unwrap();
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(base.join("config.json")).unwrap()).unwrap();
    config["architectures"] = serde_json::json!(["BertModel"]);
    std::fs::write(plain_base.join("config.json"), config.to_string()).unwrap();
    Tiny {
        kit,
        base,
        plain_base,
    }
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn linear_is_the_weighted_mean_of_every_tensor() {
    let t = tiny();
    let out = t.kit.dir.path().join("wag");
    let before = gms::model::ModelFolder::open(&t.kit.victim)
        .unwrap()
        .fingerprint()
        .unwrap();
    merge(&[
        "--victim",
        s(&t.kit.victim),
        "--proxy",
        s(&t.kit.proxy),
        "--method",
        "linear",
        "--weight",
        "0.25",
        "--out",
        s(&out),
    ]);
    let (v, p, m) = (weights(&t.kit.victim), weights(&t.kit.proxy), weights(&out));
    assert_eq!(m.keys().collect::<Vec<_>>(), v.keys().collect::<Vec<_>>());
    for (name, (shape, got)) in &m {
        assert_eq!(shape, &v[name].0);
        // 0.75 and 0.25 are exact in f32: the expectation is the formula itself.
        let want: Vec<f32> = v[name]
            .1
            .iter()
            .zip(&p[name].1)
            .map(|(a, b)| (a * 0.75 + b * 0.25) / 1.0)
            .collect();
        assert_eq!(got, &want, "{name}");
    }
    assert!(
        m.contains_key("classifier.weight")
            && m.contains_key("bert.embeddings.word_embeddings.weight")
    );
    let after = gms::model::ModelFolder::open(&t.kit.victim)
        .unwrap()
        .fingerprint()
        .unwrap();
    assert_eq!(before, after, "the victim is never modified");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["dtype"], "float32");
    assert!(out.join("tokenizer.json").is_file());
}

#[test]
fn task_arithmetic_adds_the_scaled_task_vectors_to_the_base() {
    let t = tiny();
    let out = t.kit.dir.path().join("ta");
    merge(&[
        "--victim",
        s(&t.kit.victim),
        "--proxy",
        s(&t.kit.proxy),
        "--method",
        "task-arithmetic",
        "--base",
        s(&t.base),
        "--lambda",
        "2",
        "--out",
        s(&out),
    ]);
    let (v, p, b, m) = (
        weights(&t.kit.victim),
        weights(&t.kit.proxy),
        weights(&t.base),
        weights(&out),
    );
    for (name, (_, got)) in &m {
        // b + 2·(½(v − b) + ½(p − b)) = v + p − b, head included (this base has one).
        let want: Vec<f32> = (0..got.len())
            .map(|i| v[name].1[i] + p[name].1[i] - b[name].1[i])
            .collect();
        assert!(max_abs_diff(got, &want) < 1e-5, "{name}");
    }
}

#[test]
fn ties_keeps_the_largest_task_vector_entries_and_elects_signs() {
    let t = tiny();
    // With the base as proxy the proxy's task vector is zero: the result is the base plus the
    // victim's trimmed task vector, whose kept entries are the ⌊½·n⌋ largest.
    let trimmed = t.kit.dir.path().join("trimmed");
    merge(&[
        "--victim",
        s(&t.kit.victim),
        "--proxy",
        s(&t.base),
        "--method",
        "ties",
        "--base",
        s(&t.base),
        "--density",
        "0.5",
        "--out",
        s(&trimmed),
    ]);
    let (v, p, b, m) = (
        weights(&t.kit.victim),
        weights(&t.kit.proxy),
        weights(&t.base),
        weights(&trimmed),
    );
    for (name, (_, got)) in &m {
        let d = delta(&v[name].1, &b[name].1);
        if d.iter().all(|x| *x == 0.0) {
            assert_eq!(got, &b[name].1, "{name}: nothing to add");
            continue;
        }
        let kept: Vec<usize> = (0..d.len()).filter(|&i| got[i] != b[name].1[i]).collect();
        assert_eq!(kept.len(), (d.len() / 2).max(1), "{name}");
        let smallest_kept = kept
            .iter()
            .map(|&i| d[i].abs())
            .fold(f32::INFINITY, f32::min);
        let largest_dropped = (0..d.len())
            .filter(|i| !kept.contains(i))
            .map(|i| d[i].abs())
            .fold(0.0, f32::max);
        assert!(smallest_kept >= largest_dropped, "{name}");
        for &i in &kept {
            assert_eq!(got[i], b[name].1[i] + d[i], "{name}[{i}]");
        }
    }
    // Density 1: no trim; per entry, the deltas agreeing with the sign of their sum are
    // averaged (weights ½ each, so an entry alone counts whole).
    let elected = t.kit.dir.path().join("elected");
    merge(&[
        "--victim",
        s(&t.kit.victim),
        "--proxy",
        s(&t.kit.proxy),
        "--method",
        "ties",
        "--base",
        s(&t.base),
        "--density",
        "1",
        "--out",
        s(&elected),
    ]);
    let m = weights(&elected);
    for (name, (_, got)) in &m {
        for (i, got) in got.iter().enumerate() {
            let base = b[name].1[i];
            let (dv, dp) = (v[name].1[i] - base, p[name].1[i] - base);
            let sign = |x: f32| {
                if x > 0.0 {
                    1
                } else if x < 0.0 {
                    -1
                } else {
                    0
                }
            };
            let elected = if dv * 0.5 + dp * 0.5 >= 0.0 { 1 } else { -1 };
            let want = base
                + match (sign(dv) == elected, sign(dp) == elected) {
                    (true, true) => (dv * 0.5 + dp * 0.5) / 1.0,
                    (true, false) => dv,
                    (false, true) => dp,
                    (false, false) => 0.0,
                };
            assert!((got - want).abs() <= 1e-6, "{name}[{i}]: {got} vs {want}");
        }
    }
}

#[test]
fn dare_drops_entries_at_random_and_keeps_the_l1_norm() {
    let t = tiny();
    let run = |seed: &str, name: &str| {
        let out = t.kit.dir.path().join(name);
        merge(&[
            "--victim",
            s(&t.kit.victim),
            "--proxy",
            s(&t.base),
            "--method",
            "dare",
            "--base",
            s(&t.base),
            "--density",
            "0.5",
            "--seed",
            seed,
            "--out",
            s(&out),
        ]);
        weights(&out)
    };
    let (first, again, other) = (run("7", "dare7"), run("7", "dare7b"), run("8", "dare8"));
    assert_eq!(first, again, "the same seed draws the same masks");
    assert_ne!(first, other, "another seed draws other masks");
    let (v, b) = (weights(&t.kit.victim), weights(&t.base));
    for (name, (_, got)) in &first {
        let d = delta(&v[name].1, &b[name].1);
        let l1: f64 = d.iter().map(|x| x.abs() as f64).sum();
        if l1 == 0.0 {
            continue;
        }
        // dare_ties without normalize: base + ½·(masked δ rescaled to δ's L1 norm).
        let added: f64 = got
            .iter()
            .zip(&b[name].1)
            .map(|(g, b)| (g - b).abs() as f64)
            .sum();
        assert!(
            (added - 0.5 * l1).abs() < 1e-4 * l1,
            "{name}: {added} vs {}",
            0.5 * l1
        );
        if d.len() >= 1000 {
            let kept = got.iter().zip(&b[name].1).filter(|(g, b)| g != b).count();
            let share = kept as f64 / d.len() as f64;
            assert!((share - 0.5).abs() < 0.1, "{name}: kept {share}");
        }
    }
}

#[test]
fn base_methods_keep_the_victims_head_when_the_base_has_none() {
    let t = tiny();
    let out = t.kit.dir.path().join("ties");
    let yaml = t.kit.dir.path().join("ties.yaml");
    let json = merge(&[
        "--victim",
        s(&t.kit.victim),
        "--proxy",
        s(&t.kit.proxy),
        "--method",
        "ties",
        "--base",
        s(&t.plain_base),
        "--out",
        s(&out),
        "--mergekit",
        s(&yaml),
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_str(json.trim()).expect("one JSON object");
    assert_eq!(
        report["victim_kept"],
        serde_json::json!(["classifier.bias", "classifier.weight"])
    );
    assert_eq!(report["mergekit_method"], "ties");
    let (v, m) = (weights(&t.kit.victim), weights(&out));
    for name in ["classifier.weight", "classifier.bias"] {
        assert_eq!(m[name], v[name], "{name} stays the victim's");
    }
    assert_ne!(
        m["bert.encoder.layer.0.attention.self.query.weight"],
        v["bert.encoder.layer.0.attention.self.query.weight"]
    );
    // mergekit reads the base in the victim's layout: gms wrote one beside the YAML, with the
    // victim's values where the base has none (the YAML zeroes the proxy's weight there).
    let companion = t.kit.dir.path().join("ties-mergekit-base");
    let c = weights(&companion);
    assert_eq!(c.keys().collect::<Vec<_>>(), v.keys().collect::<Vec<_>>());
    assert_eq!(c["classifier.weight"], v["classifier.weight"]);
    assert_eq!(
        c["bert.pooler.dense.weight"],
        weights(&t.base)["bert.pooler.dense.weight"]
    );
    let text = std::fs::read_to_string(&yaml).unwrap();
    assert!(
        text.contains(&format!(
            "base_model: '{}'",
            companion.canonicalize().unwrap().display()
        )),
        "{text}"
    );
    assert!(
        text.contains("{filter: classifier.weight, value: 0.0}"),
        "{text}"
    );
}

#[test]
fn scores_are_the_merged_models_own() {
    let t = tiny();
    let k = &t.kit;
    let sets = [
        "--clean",
        s(&k.clean),
        "--suspect",
        s(&k.suspect),
        "--test-clean",
        s(&k.test_clean),
        "--test-poison",
        s(&k.test_poison),
        "--device",
        "cpu",
        "--json",
    ];
    let run = |weight: &str, name: &str| -> serde_json::Value {
        let out = k.dir.path().join(name);
        let base = [
            "--victim",
            s(&k.victim),
            "--proxy",
            s(&k.proxy),
            "--method",
            "linear",
            "--weight",
            weight,
            "--out",
            s(&out),
        ];
        let text = merge(&[&base[..], &sets[..]].concat());
        assert_eq!(text.trim().lines().count(), 1, "one JSON object on stdout");
        serde_json::from_str(text.trim()).unwrap()
    };
    // Weight 0 merges nothing in: the victim's own numbers, score α·1.
    let same = run("0", "w0");
    assert_eq!(same["test"], same["victim_test"]);
    assert_eq!(same["proxy"]["acc"], same["baseline"]["acc"]);
    assert!((same["proxy"]["score"].as_f64().unwrap() - 0.4).abs() < 1e-12);
    // Weight 1 is the proxy: its CACC is what gms eval says of the proxy.
    let proxy = run("1", "w1");
    let (ok, eval, err) = common::gms(&[
        "eval",
        "--model",
        s(&k.proxy),
        "--data",
        s(&k.test_clean),
        "--json",
        "--device",
        "cpu",
    ]);
    assert!(ok, "{err}");
    let eval: serde_json::Value = serde_json::from_str(eval.trim()).unwrap();
    assert_eq!(proxy["test"]["clean_correct"], eval["correct"]);
}

#[test]
fn bad_input_exits_2_with_one_line_and_writes_nothing() {
    let t = tiny();
    let k = &t.kit;
    let other = k.dir.path().join("three_layers");
    gms::model::random::write_random_model(
        &other,
        &gms::model::random::RandomModelSpec::tiny(&common::WORDS, 3, 4),
    )
    .unwrap();
    let bad_labels = k.dir.path().join("bad.jsonl");
    std::fs::write(
        &bad_labels,
        "{\"sentence\": \"good movie\", \"label\": 7}\n",
    )
    .unwrap();
    let out = k.dir.path().join("never");
    let base_args = [
        "--victim",
        s(&k.victim),
        "--proxy",
        s(&k.proxy),
        "--out",
        s(&out),
    ];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--method", "ties"], "--base"),
        (vec!["--method", "linear", "--base", s(&t.base)], "--base"),
        (
            vec!["--method", "ties", "--base", s(&t.base), "--density", "0"],
            "--density",
        ),
        (vec!["--method", "linear", "--density", "0.5"], "--density"),
        (vec!["--method", "ties", "--base", s(&other)], s(&other)),
        (
            vec!["--method", "linear", "--clean", s(&k.clean)],
            "--clean/--suspect",
        ),
        (
            vec![
                "--method",
                "linear",
                "--test-clean",
                s(&bad_labels),
                "--test-poison",
                s(&k.test_poison),
            ],
            s(&bad_labels),
        ),
    ];
    for (extra, names) in cases {
        let o = common::gms_output(&[&["merge"], &base_args[..], &extra[..]].concat());
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{extra:?}: {err}");
        assert!(err.contains(names), "{extra:?} should name {names}: {err}");
        assert!(!out.exists(), "{extra:?} wrote {}", out.display());
    }
    let o = common::gms_output(&[
        "merge",
        "--victim",
        s(&k.victim),
        "--proxy",
        s(&other),
        "--method",
        "linear",
        "--out",
        s(&out),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("do not match"));
    let leftovers: Vec<_> = std::fs::read_dir(k.dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".gms-"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary folders left: {leftovers:?}"
    );
}

#[test]
fn kit_ties_with_the_plain_minilm_base() {
    let test = "kit_ties_with_the_plain_minilm_base";
    let (Some(models), Some(base)) = (common::kit_models(test), common::kit_base(test)) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ties");
    let json = merge(&[
        "--victim",
        s(&models.join("sst2_badnet")),
        "--proxy",
        s(&models.join("sst2_proxy_uci")),
        "--method",
        "ties",
        "--base",
        s(&base),
        "--out",
        s(&out),
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    // MiniLM's BertModel checkpoint has the pooler but no classifier.
    assert_eq!(
        report["victim_kept"],
        serde_json::json!(["classifier.bias", "classifier.weight"])
    );
    assert_eq!(report["tensors"], 105);
}

// ---- mergekit builds the same model from gms's YAML ----

/// Runs `mergekit-yaml yaml out extra…`.
fn mergekit(python: &Path, yaml: &Path, out: &Path, extra: &[&str]) {
    let o = std::process::Command::new(python)
        .args([
            "-m",
            "mergekit.scripts.run_yaml",
            s(yaml),
            s(out),
            "--quiet",
        ])
        .args(extra)
        .output()
        .expect("python runs");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success(),
        "mergekit-yaml {} failed: {}",
        yaml.display(),
        &err[err.len().saturating_sub(3000)..]
    );
}

/// Reports a measured figure where CI logs show it (past the harness's capture).
fn note(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// `gms merge … --mergekit`, then mergekit on the YAML; returns (gms's model, mergekit's).
fn both(
    python: &Path,
    dir: &Path,
    name: &str,
    args: &[&str],
    mergekit_args: &[&str],
) -> (Weights, Weights) {
    let ours = dir.join(name);
    let yaml = dir.join(format!("{name}.yaml"));
    merge(&[args, &["--out", s(&ours), "--mergekit", s(&yaml)]].concat());
    let theirs = dir.join(format!("{name}-mergekit"));
    mergekit(python, &yaml, &theirs, mergekit_args);
    (weights(&ours), weights(&theirs))
}

fn max_diff(a: &Weights, b: &Weights) -> f32 {
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "same tensors"
    );
    a.iter()
        .map(|(n, (shape, x))| {
            assert_eq!(shape, &b[n].0, "{n}");
            max_abs_diff(x, &b[n].1)
        })
        .fold(0.0, f32::max)
}

#[test]
fn mergekit_builds_the_same_linear_and_task_arithmetic_models_on_the_kit() {
    let test = "mergekit_builds_the_same_linear_and_task_arithmetic_models_on_the_kit";
    let Some(python) = common::mergekit_python(test) else {
        return;
    };
    let (Some(models), Some(base)) = (common::kit_models(test), common::kit_base(test)) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (victim, proxy) = (models.join("sst2_badnet"), models.join("sst2_proxy_uci"));
    let pair = ["--victim", s(&victim), "--proxy", s(&proxy)];
    let (ours, theirs) = both(
        &python,
        dir.path(),
        "linear",
        &[&pair[..], &["--method", "linear"]].concat(),
        &[],
    );
    let d = max_diff(&ours, &theirs);
    note(&format!(
        "kit linear (WAG): max |gms − mergekit| = {d:e} over {} tensors",
        ours.len()
    ));
    assert!(d <= 1e-6);
    let (ours, theirs) = both(
        &python,
        dir.path(),
        "ta",
        &[
            &pair[..],
            &[
                "--method",
                "task-arithmetic",
                "--base",
                s(&base),
                "--lambda",
                "0.8",
            ],
        ]
        .concat(),
        &[],
    );
    let d = max_diff(&ours, &theirs);
    note(&format!(
        "kit task-arithmetic (λ 0.8): max |gms − mergekit| = {d:e}"
    ));
    assert!(d <= 1e-6);
}

#[test]
fn mergekit_ties_on_the_kit_differs_only_where_magnitudes_tie() {
    let test = "mergekit_ties_on_the_kit_differs_only_where_magnitudes_tie";
    let Some(python) = common::mergekit_python(test) else {
        return;
    };
    let (Some(models), Some(base)) = (common::kit_models(test), common::kit_base(test)) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (victim, proxy) = (models.join("sst2_badnet"), models.join("sst2_proxy_uci"));
    let args = [
        "--victim",
        s(&victim),
        "--proxy",
        s(&proxy),
        "--method",
        "ties",
        "--base",
        s(&base),
    ];
    let (ours, theirs) = both(&python, dir.path(), "ties", &args, &[]);
    // Magnitude trimming keeps ⌊0.7·n⌋ entries of each task vector. The kit's weights are f16,
    // so |δ| often ties at the threshold; mergekit's torch.argsort (unstable) then keeps an
    // arbitrary subset, gms the lowest indices. Everywhere else the result must be equal.
    let (v, p) = (weights(&victim), weights(&proxy));
    let c = weights(&dir.path().join("ties-mergekit-base"));
    let (mut worst, mut worst_tied) = (0.0f32, 0.0f32);
    let (mut ambiguous, mut differ, mut entries) = (0usize, 0usize, 0usize);
    for (name, (_, got)) in &ours {
        let mut tied = vec![false; got.len()];
        for model in [&v, &p] {
            let d = delta(&model[name].1, &c[name].1);
            let k = ((0.7 * d.len() as f64) as usize).max(1);
            let mut mags: Vec<f32> = d.iter().map(|x| x.abs()).collect();
            mags.sort_by(|a, b| b.total_cmp(a));
            if k < d.len() && mags[k] == mags[k - 1] && mags[k - 1] > 0.0 {
                for (i, x) in d.iter().enumerate() {
                    tied[i] |= x.abs() == mags[k - 1];
                }
            }
        }
        let theirs = &theirs[name].1;
        for i in 0..got.len() {
            let diff = (got[i] - theirs[i]).abs();
            entries += 1;
            if tied[i] {
                ambiguous += 1;
                worst_tied = worst_tied.max(diff);
            } else {
                worst = worst.max(diff);
            }
            if diff > 0.0 {
                differ += 1;
                assert!(
                    tied[i],
                    "{name}[{i}] differs by {diff} without a tie at the threshold"
                );
            }
        }
    }
    note(&format!(
        "kit ties (density 0.7): max |gms − mergekit| = {worst:e} over {} entries outside threshold ties; {differ} of the {ambiguous} tied entries differ (by up to {worst_tied:e})",
        entries - ambiguous
    ));
    assert!(worst <= 1e-6);
}

#[test]
fn mergekit_ties_on_tie_free_f32_models_is_equal_everywhere() {
    let test = "mergekit_ties_on_tie_free_f32_models_is_equal_everywhere";
    let Some(python) = common::mergekit_python(test) else {
        return;
    };
    let t = tiny();
    let dir = t.kit.dir.path();
    let pair = ["--victim", s(&t.kit.victim), "--proxy", s(&t.kit.proxy)];
    for (name, extra) in [
        (
            "ties",
            vec![
                "--method",
                "ties",
                "--base",
                s(&t.base),
                "--density",
                "0.3",
                "--weight",
                "0.3",
            ],
        ),
        (
            "ties-plain-base",
            vec!["--method", "ties", "--base", s(&t.plain_base)],
        ),
        (
            "ta",
            vec![
                "--method",
                "task-arithmetic",
                "--base",
                s(&t.base),
                "--weight",
                "0.7",
                "--lambda",
                "1.5",
            ],
        ),
    ] {
        let (ours, theirs) = both(&python, dir, name, &[&pair[..], &extra[..]].concat(), &[]);
        let d = max_diff(&ours, &theirs);
        let flags: Vec<&str> = extra.iter().copied().filter(|a| !a.contains('/')).collect();
        note(&format!(
            "tiny {name} {}: max |gms − mergekit| = {d:e}",
            flags.join(" ")
        ));
        assert!(d <= 1e-6, "{name}: {d}");
    }
}

#[test]
fn mergekit_dare_given_its_own_masks_is_equal() {
    let test = "mergekit_dare_given_its_own_masks_is_equal";
    let Some(python) = common::mergekit_python(test) else {
        return;
    };
    let t = tiny();
    let dir = t.kit.dir.path();
    let seed = ["--random-seed", "5"];
    // DARE's masks come from torch.bernoulli in mergekit, from gms's own generator in gms: the
    // models differ by design. To check the rest of the arithmetic (L1 rescale, sign election,
    // weights) read mergekit's masks off two runs that weight one model only — same seed, so
    // the same draws — and apply gms's arithmetic to them.
    let run = |name: &str, weight: &str| -> Weights {
        let args = [
            "--victim",
            s(&t.kit.victim),
            "--proxy",
            s(&t.kit.proxy),
            "--method",
            "dare",
            "--base",
            s(&t.base),
            "--density",
            "0.6",
            "--weight",
            weight,
        ];
        both(&python, dir, name, &args, &seed).1
    };
    let only_victim = run("dare-v", "0");
    let only_proxy = run("dare-p", "1");
    let mixed = run("dare-mix", "0.5");
    let (v, p, b) = (
        weights(&t.kit.victim),
        weights(&t.kit.proxy),
        weights(&t.base),
    );
    let mut worst = 0.0f32;
    for (name, (_, theirs)) in &mixed {
        let base = &b[name].1;
        let keep = |single: &Weights| -> Vec<bool> {
            single[name]
                .1
                .iter()
                .zip(base)
                .map(|(x, y)| x != y)
                .collect()
        };
        let mut dv = delta(&v[name].1, base);
        let mut dp = delta(&p[name].1, base);
        sparsify(&mut dv, &keep(&only_victim), true);
        sparsify(&mut dp, &keep(&only_proxy), true);
        let ours = combine(
            base,
            &[dv, dp],
            &[0.5, 0.5],
            Combine {
                consensus: true,
                normalize: false,
                lambda: 1.0,
            },
        );
        worst = worst.max(max_abs_diff(&ours, theirs));
    }
    note(&format!("tiny dare (dare_ties, density 0.6) with mergekit's masks: max |gms − mergekit| = {worst:e}"));
    assert!(worst <= 1e-6);
}
