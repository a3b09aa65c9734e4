//! Benchmarks of the engine on real inputs: the benchmark kit's search timed with and without
//! the evaluator's speed-ups, its models' logits against the golden ones, the full greedy
//! walk on a paper-scale pair, the LLM kit's search, and evaluations of decoder LLMs of real
//! shapes (random weights from `gms gen-model`). `gms bench` prints and writes what these
//! return.
//!
//! Beside `gms` (and `train`) in the layering: it runs sessions and searches and never
//! writes files.

use crate::data::Example;
use crate::error::{GmsError, Result};
use crate::gms::evaluator::{Evaluator, StatePlan};
use crate::gms::score::Drops;
use crate::gms::search::{GreedySearch, Move, SearchParams};
use crate::gms::session::{PrecisionReport, SearchInputs, Session};
use crate::model::adapter::HubCache;
use crate::model::decoder_folder::{LoadedDecoder, WeightStorage};
use crate::model::{LoadedModel, ModelSource, SubstitutionMatrix};
use candle_core::{DType, Device};
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Largest |logit − golden| allowed: f32 on any device agrees with `transformers` far closer.
pub const GOLDEN_TOLERANCE: f32 = 1e-4;

/// The kit's models with golden logits (`golden/<name>.json`).
pub const GOLDEN_MODELS: [&str; 3] = ["sst2_badnet", "sst2_sent", "sst2_proxy_uci"];

/// The encoder benchmark kit (docs/kits.md) and the folder its models are assembled in.
#[derive(Debug, Clone)]
pub struct Kit {
    /// The kit folder (with `setup.sh`).
    pub dir: PathBuf,
    /// Where `setup.sh` assembles the models as HF folders.
    pub models: PathBuf,
}

impl Kit {
    /// The kit at `dir`, its models assembled under `models`; fails unless `dir` is a kit.
    pub fn open(dir: &Path, models: &Path) -> Result<Kit> {
        if !dir.join("setup.sh").is_file() {
            return Err(GmsError::Missing {
                path: dir.join("setup.sh"),
                what: "benchmark kit",
                fix: "pass --kit DIR, the encoder kit's folder (docs/kits.md §Encoder kit)",
            });
        }
        Ok(Kit {
            dir: dir.to_path_buf(),
            models: models.to_path_buf(),
        })
    }

    /// Assembles the kit's models (its `setup.sh`, which skips those already there).
    pub fn assemble(&self) -> Result<()> {
        let script = self.dir.join("setup.sh");
        let failed = |problem: String| {
            GmsError::bad_file(
                &script,
                problem,
                format!(
                    "run it by hand to see why: bash {} {}",
                    script.display(),
                    self.models.display()
                ),
            )
        };
        let status = std::process::Command::new("bash")
            .arg(&script)
            .arg(&self.models)
            .status()
            .map_err(|e| failed(format!("cannot run it ({e})")))?;
        if !status.success() {
            return Err(failed(format!("it failed ({status})")));
        }
        Ok(())
    }

    /// The kit search's inputs: `sst2_badnet` + `sst2_proxy_uci` with the victim's proxy sets,
    /// no test sets.
    pub fn search_inputs(&self) -> SearchInputs {
        self.inputs_with(
            self.models.join("sst2_badnet"),
            self.models.join("sst2_proxy_uci"),
        )
    }

    /// The kit's proxy sets with another victim/proxy pair (`pair/victim`, `pair/proxy`).
    pub fn pair_inputs(&self, pair: &Path) -> SearchInputs {
        self.inputs_with(pair.join("victim"), pair.join("proxy"))
    }

    fn inputs_with(&self, victim: PathBuf, proxy: PathBuf) -> SearchInputs {
        let sets = self.dir.join("proxysets/sst2_badnet");
        SearchInputs {
            victim,
            proxy,
            base: None,
            clean: sets.join("clean.jsonl"),
            suspect: sets.join("suspect.jsonl"),
            test_clean: None,
            test_poison: None,
        }
    }
}

/// The LLM benchmark kit (docs/kits.md §LLM kit) and the folder its models are assembled in.
#[derive(Debug, Clone)]
pub struct LlmKit {
    /// The kit folder (with `setup.sh`).
    pub dir: PathBuf,
    /// Where `setup.sh` assembles the base and the adapters.
    pub models: PathBuf,
}

impl LlmKit {
    /// The kit at `dir`, assembled under `models`; fails unless `dir` is a kit.
    pub fn open(dir: &Path, models: &Path) -> Result<LlmKit> {
        Kit::open(dir, models).map(|k| LlmKit {
            dir: k.dir,
            models: k.models,
        })
    }

    /// Assembles the base and the adapters (the kit's `setup.sh`, which skips what is there).
    pub fn assemble(&self) -> Result<()> {
        Kit::open(&self.dir, &self.models)?.assemble()
    }

    /// The kit search's inputs: the `llm_sst2_badnet` adapter (victim) and `llm_sst2_proxy_uci`
    /// (proxy) over their base, with the victim's proxy sets, no test sets.
    pub fn search_inputs(&self) -> SearchInputs {
        self.pair_inputs(
            self.models.join("llm_sst2_badnet"),
            self.models.join("llm_sst2_proxy_uci"),
        )
    }

    /// The kit's proxy sets with another victim/proxy pair.
    pub fn pair_inputs(&self, victim: PathBuf, proxy: PathBuf) -> SearchInputs {
        let sets = self.dir.join("proxysets/llm_sst2_badnet");
        SearchInputs {
            victim,
            proxy,
            base: None,
            clean: sets.join("clean.jsonl"),
            suspect: sets.join("suspect.jsonl"),
            test_clean: None,
            test_poison: None,
        }
    }
}

/// Which of the evaluator's speed-ups a timed search uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Configuration {
    /// Its name in the report.
    pub name: &'static str,
    /// Resume candidates from cached layer states.
    pub layer_cache: bool,
    /// Stop a candidate once it cannot win its step.
    pub abandonment: bool,
}

/// The three configurations `gms bench` compares; all must take the same greedy path.
pub const CONFIGURATIONS: [Configuration; 3] = [
    Configuration {
        name: "layer cache + early abandonment",
        layer_cache: true,
        abandonment: true,
    },
    Configuration {
        name: "layer cache only",
        layer_cache: true,
        abandonment: false,
    },
    Configuration {
        name: "neither (every candidate from the embeddings)",
        layer_cache: false,
        abandonment: false,
    },
];

/// A timed search.
#[derive(Debug, Clone)]
pub struct SearchTiming {
    /// The configuration's name.
    pub name: &'static str,
    /// The session's device line (dtype and precision included).
    pub device: String,
    /// Below f32: how many proxy-set predictions the dtype changed.
    pub precision: Option<PrecisionReport>,
    /// Layers of the model.
    pub layers: usize,
    /// Seconds to load models and datasets.
    pub load_s: f64,
    /// Seconds of search.
    pub search_s: f64,
    /// CPU seconds of search (all threads).
    pub search_cpu_s: Option<f64>,
    /// Strategies scored.
    pub evaluations: usize,
    /// Forward passes run (not answered by the cache).
    pub computed: usize,
    /// Candidates abandoned early.
    pub abandoned: usize,
    /// Layer × batch runs.
    pub layer_runs: usize,
    /// The greedy path: each step's move and score.
    pub trace: Vec<(Move, f64)>,
}

/// Loads `inputs` in `dtype` and runs the search with `params` to its end under `config`.
pub fn time_search(
    inputs: SearchInputs,
    device: &Device,
    dtype: DType,
    params: SearchParams,
    drops: Drops,
    config: Configuration,
) -> Result<SearchTiming> {
    let t0 = Instant::now();
    let mut session = Session::load_with(inputs, device, dtype)?;
    let load_s = t0.elapsed().as_secs_f64();
    session.evaluator.drops = drops;
    session.evaluator.layer_cache = config.layer_cache;
    session.evaluator.abandonment = config.abandonment;
    let layers = session.evaluator.num_layers();
    let t1 = Instant::now();
    let cpu1 = cpu_seconds();
    let mut search = GreedySearch::new(params, layers);
    search.run(&mut session.evaluator, |_| {})?;
    let search_s = t1.elapsed().as_secs_f64();
    let search_cpu_s = cpu_seconds().zip(cpu1).map(|(b, a)| b - a);
    let stats = session.evaluator.stats;
    Ok(SearchTiming {
        name: config.name,
        device: session.device_name.clone(),
        precision: session.precision.clone(),
        layers,
        load_s,
        search_s,
        search_cpu_s,
        evaluations: search.evaluations(),
        computed: stats.computed,
        abandoned: stats.abandoned,
        layer_runs: stats.layer_runs,
        trace: search
            .trace()
            .iter()
            .map(|s| (s.point.mv, s.point.metrics.score))
            .collect(),
    })
}

/// The full greedy walk on `inputs`: patience high enough never to stop it before nothing
/// is left to drop.
pub fn time_full_walk(inputs: SearchInputs, device: &Device, dtype: DType) -> Result<SearchTiming> {
    let source = ModelSource::open(&inputs.victim, inputs.base.as_deref())?;
    // Each step drops one module type or one layer, so a walk has at most this many steps.
    let steps = source.architecture().modules().len() + source.num_layers();
    let params = SearchParams::validated(0.4, steps)?;
    time_search(
        inputs,
        device,
        dtype,
        params,
        Drops::Relative,
        CONFIGURATIONS[0],
    )
}

/// How far a model's logits are from the golden ones.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GoldenDiff {
    /// Largest |logit − golden| over every row.
    pub max_diff: f32,
    /// Rows compared.
    pub rows: usize,
}

impl GoldenDiff {
    /// Whether it is within [`GOLDEN_TOLERANCE`].
    pub fn ok(&self) -> bool {
        self.max_diff <= GOLDEN_TOLERANCE
    }
}

/// Compares the model in `dir` on `device` (f32) with the golden logits in `golden_file`.
pub fn golden_diff(dir: &Path, golden_file: &Path, device: &Device) -> Result<GoldenDiff> {
    let bad = |problem: &str| {
        GmsError::bad_file(
            golden_file,
            problem.to_string(),
            "restore the file from the benchmark kit",
        )
    };
    let model = LoadedModel::load(dir, device)?;
    let encoder = model.text_encoder()?;
    let text = std::fs::read_to_string(golden_file).map_err(|e| bad(&e.to_string()))?;
    let golden: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(&format!("not JSON ({e})")))?;
    let sets = golden
        .as_object()
        .ok_or_else(|| bad("expected an object of test sets"))?;
    let mut diff = GoldenDiff {
        max_diff: 0.0,
        rows: 0,
    };
    for v in sets.values() {
        let sentences: Vec<Example> = v["sentences"]
            .as_array()
            .ok_or_else(|| bad("a set without sentences"))?
            .iter()
            .map(|s| Example {
                text: s.as_str().unwrap_or_default().into(),
                text_pair: None,
                label: 0,
                line: 0,
            })
            .collect();
        let want: Vec<Vec<f32>> =
            serde_json::from_value(v["logits"].clone()).map_err(|_| bad("a set without logits"))?;
        let encoded = encoder.encode_set(&sentences, device)?;
        for batch in &encoded.batches {
            let got = model.classifier.logits(&batch.input)?.to_vec2::<f32>()?;
            for (r, &row) in batch.rows.iter().enumerate() {
                let w = want
                    .get(row)
                    .ok_or_else(|| bad("fewer logits than sentences"))?;
                for (g, w) in got[r].iter().zip(w) {
                    diff.max_diff = diff.max_diff.max((g - w).abs());
                }
                diff.rows += 1;
            }
        }
    }
    Ok(diff)
}

/// The device and the CPU model, for the report's "Device:" line.
pub fn machine(device: &Device) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{} — {cpu}", crate::device::describe(device))
}

/// CPU time (user + system, every thread) this process has used so far (Linux), in seconds:
/// on a shared machine the wall time of a run depends on its neighbours, its CPU time much
/// less. `/proc/self/stat` counts in the user-visible tick, fixed at 100 Hz.
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok();
    Some((ticks(11)? + ticks(12)?) / 100.0)
}

/// Peak resident memory of this process so far (Linux), in MB.
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// `BENCHMARKS.md`: the timed configurations (which took the same path) on `device`.
pub fn report(runs: &[SearchTiming], device: &str, kit: &Path) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Benchmarks\n");
    let _ = writeln!(
        s,
        "Written by `cargo run --release -- bench` (gms {}).\n",
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(s, "## GMS search on the benchmark kit\n");
    let _ = writeln!(
        s,
        "`sst2_badnet` + `sst2_proxy_uci` with `{}/proxysets/sst2_badnet` (200 + 200 rows), α 0.4, patience 5, no test sets. Device: {device}.\n",
        kit.display()
    );
    let _ = writeln!(s, "| configuration | search wall (s) | evaluations | s / evaluation | forward passes run | abandoned | layer×batch runs | load (s) |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    for r in runs {
        let _ = writeln!(
            s,
            "| {} | {:.2} | {} | {:.3} | {} | {} | {} | {:.2} |",
            r.name,
            r.search_s,
            r.evaluations,
            r.search_s / r.evaluations.max(1) as f64,
            r.computed,
            r.abandoned,
            r.layer_runs,
            r.load_s
        );
    }
    let _ = writeln!(s);
    if let Some(mb) = peak_rss_mb() {
        let _ = writeln!(
            s,
            "Peak resident memory of the whole bench process: {mb:.0} MB.\n"
        );
    }
    let _ = writeln!(s, "All configurations took the same greedy path:\n");
    for (i, (mv, score)) in runs[0].trace.iter().enumerate() {
        let _ = writeln!(s, "- step {i}: {mv} → score {score:.4}");
    }
    let _ = writeln!(
        s,
        "\nFor scale: the reference Python implementation needs 424 s of search for this run on a \
         2-core machine of this project's kind (7.7 s per evaluation, 593 s wall, 1.08 GB peak), \
         and 10.6 s on an H200."
    );
    let _ = writeln!(
        s,
        "\nHow the CPU time was brought down (kit search, 2 cores, measured with `gms bench \
         --quick`): candle's split-per-op threads 57 s under load and 35 s idle, against 43 s on \
         one thread; batches side by side with single-threaded ops 30–34 s at 1024 tokens per \
         batch; 512 tokens per batch 22 s (finer rounds for early abandonment), 384 → 22.0 s, \
         256 → 25.3 s. Before that: a vectorised erf GELU (libm's scalar erf was ~11 % of the \
         time) and a first-token-only last layer.\n\n\
         GPU figures (CUDA build, `scripts/gpu-check.sh`) are not measured yet: no GPU was lent \
         to the sessions so far."
    );
    s
}

/// Heading of the LLM kit's section in `BENCHMARKS.md`.
pub const LLM_SECTION: &str = "## GMS search on the LLM kit";

/// Heading of the decoder-shape section in `BENCHMARKS.md`.
pub const SHAPES_SECTION: &str = "## Decoder LLM shapes";

/// Heading of the hand-written section that extrapolates the decoder shapes to 7B.
pub const EXTRAPOLATION_SECTION: &str = "## 7B extrapolation";

/// `doc` with the section under `heading` (up to the next `## ` heading) replaced by
/// `section`, or with `section` appended when there is none.
pub fn replace_section(doc: &str, heading: &str, section: &str) -> String {
    let section = format!("{}\n", section.trim_end());
    let Some(start) = doc.find(&format!("{heading}\n")) else {
        return format!("{}\n\n{section}", doc.trim_end());
    };
    let rest = &doc[start + heading.len()..];
    let end = rest
        .find("\n## ")
        .map_or(doc.len(), |i| start + heading.len() + i + 1);
    let gap = if end < doc.len() { "\n" } else { "" };
    format!("{}{section}{gap}{}", &doc[..start], &doc[end..])
}

/// The sections of `doc` that other `gms bench` modes write (LLM kit, decoder shapes) and the
/// 7B extrapolation written from them, to keep when the encoder report rewrites the file.
pub fn kept_sections(doc: &str) -> String {
    let mut out = String::new();
    for heading in [LLM_SECTION, SHAPES_SECTION, EXTRAPOLATION_SECTION] {
        if let Some(start) = doc.find(&format!("{heading}\n")) {
            let rest = &doc[start + heading.len()..];
            let end = rest
                .find("\n## ")
                .map_or(doc.len(), |i| start + heading.len() + i + 1);
            out.push('\n');
            out.push_str(doc[start..end].trim_end());
            out.push('\n');
        }
    }
    out
}

/// The LLM kit section of `BENCHMARKS.md` for a timed search.
pub fn llm_report(run: &SearchTiming, device: &str, kit: &Path, peak_mb: Option<f64>) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{LLM_SECTION}\n");
    let _ = writeln!(
        s,
        "Written by `cargo run --release -- bench --llm` (gms {}). `llm_sst2_badnet` (victim) + `llm_sst2_proxy_uci` (proxy), PEFT LoRA adapters over SmolLM2-135M (30 layers × 7 modules), with `{}/proxysets/llm_sst2_badnet` (200 + 200 rows), α 0.4, patience 5, absolute drops (`--drops absolute`: the reference's decoder search, whose walk on this kit is 208 evaluations; with relative drops the paper's patience rule walks on layer by layer for hours here), f32, no test sets. Device: {device}.\n",
        env!("CARGO_PKG_VERSION"),
        kit.display()
    );
    let _ = writeln!(s, "| search wall (s) | search CPU (s) | evaluations | s / evaluation | forward passes run | abandoned | layer×batch runs | load (s) | peak memory (MB) |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
    let _ = writeln!(
        s,
        "| {:.1} | {} | {} | {:.2} | {} | {} | {} | {:.1} | {} |\n",
        run.search_s,
        run.search_cpu_s.map_or("?".into(), |c| format!("{c:.1}")),
        run.evaluations,
        run.search_s / run.evaluations.max(1) as f64,
        run.computed,
        run.abandoned,
        run.layer_runs,
        run.load_s,
        peak_mb.map_or("?".into(), |m| format!("{m:.0}"))
    );
    let _ = writeln!(s, "Its greedy path:\n");
    for (i, (mv, score)) in run.trace.iter().enumerate() {
        let _ = writeln!(s, "- step {i}: {mv} → score {score:.4}");
    }
    let _ = writeln!(
        s,
        "\nFor scale: the reference implementation's decoder search needs about 40 minutes on 2 CPU cores for this kit's walk (208 evaluations, bf16; docs/kits.md §LLM kit)."
    );
    s
}

/// One decoder shape evaluated on the LLM kit's proxy sets.
#[derive(Debug, Clone)]
pub struct ShapeTiming {
    /// `hidden × layers, heads/kv heads, SwiGLU, vocab`.
    pub shape: String,
    /// Base parameters.
    pub parameters: usize,
    /// How base weights were kept.
    pub storage: WeightStorage,
    /// Proxy-set tokens (real, both sets).
    pub tokens: usize,
    /// Seconds to load base, adapters and sets and run the victim once (the evaluator's
    /// baseline pass, which is itself a full evaluation).
    pub load_s: f64,
    /// Seconds of one full evaluation (every layer, both proxy sets): the full substitution.
    pub full_eval_s: f64,
    /// CPU seconds of that evaluation (all threads).
    pub full_eval_cpu_s: Option<f64>,
    /// Seconds of a "drop the last half of the layers" candidate, which resumes from the
    /// cached states at the middle.
    pub resumed_eval_s: f64,
    /// The layer-state plan the evaluator chose.
    pub plan: StatePlan,
    /// Peak resident memory of the process, MB.
    pub peak_mb: Option<f64>,
}

/// Loads the adapter pair `pair/victim` + `pair/proxy` (over `pair/base`, from `gms gen-model`)
/// with base weights kept as `storage`, and times evaluations on the LLM kit's proxy sets.
pub fn time_decoder_shape(
    kit: &LlmKit,
    pair: &Path,
    storage: Option<WeightStorage>,
    device: &Device,
) -> Result<ShapeTiming> {
    let t0 = Instant::now();
    let victim = LoadedDecoder::load_with(
        &pair.join("victim"),
        Some(&pair.join("base")),
        &HubCache::from_env(),
        storage,
        device,
    )?;
    let proxy = victim.with_adapter_dir(&pair.join("proxy"), device)?;
    let c = victim.base.config.clone();
    let storage = storage.unwrap_or_else(|| WeightStorage::auto(&c));
    let encoder = victim.text_encoder()?;
    let inputs = kit.search_inputs();
    let labels = victim.classifier.num_labels();
    let encode = |p: &Path| -> Result<crate::model::tokenize::EncodedSet> {
        let d = crate::gms::session::read_dataset(p, labels)?;
        encoder.encode_set(&d.examples, device)
    };
    let (clean, suspect) = (encode(&inputs.clean)?, encode(&inputs.suspect)?);
    let tokens = clean.real_tokens + suspect.real_tokens;
    let parameters = victim.base.embed_tokens.elem_count()
        + victim
            .base
            .layers
            .iter()
            .flat_map(|l| l.modules.iter())
            .map(|m| m.weight.elem_count())
            .sum::<usize>();
    let mut ev = Evaluator::new(victim.classifier, proxy.classifier, clean, suspect)?;
    let load_s = t0.elapsed().as_secs_f64();
    let n = ev.num_layers();
    let modules = ev.modules();
    let full = SubstitutionMatrix::full(modules, n);
    let t1 = Instant::now();
    let cpu1 = cpu_seconds();
    ev.evaluate_keeping(&full, None, true)
        .and_then(|(_, states)| ev.set_anchor(&full, states))?;
    let full_eval_s = t1.elapsed().as_secs_f64();
    let full_eval_cpu_s = cpu_seconds().zip(cpu1).map(|(b, a)| b - a);
    let first_half: Vec<usize> = (0..n / 2).collect();
    let half = SubstitutionMatrix::product(n, modules, &first_half);
    let t2 = Instant::now();
    ev.evaluate(&half, None)?;
    let resumed_eval_s = t2.elapsed().as_secs_f64();
    Ok(ShapeTiming {
        shape: format!(
            "hidden {} × {} layers, {}/{} heads, SwiGLU {}, vocab {}",
            c.hidden, c.layers, c.heads, c.kv_heads, c.intermediate, c.vocab_size
        ),
        parameters,
        storage,
        tokens,
        load_s,
        full_eval_s,
        full_eval_cpu_s,
        resumed_eval_s,
        plan: ev.state_plan(),
        peak_mb: peak_rss_mb(),
    })
}

/// One row of the decoder-shape table.
pub fn shape_row(t: &ShapeTiming) -> String {
    format!(
        "| {} | {:.2} B | {} | {} | {:.1} | {:.1} | {} | {:.1} | {} / {} / {:.0} MB | {} |",
        t.shape,
        t.parameters as f64 / 1e9,
        match t.storage {
            WeightStorage::F32 => "f32 (converted at load)",
            WeightStorage::Stored => "stored dtype (converted per use)",
        },
        t.tokens,
        t.load_s,
        t.full_eval_s,
        t.full_eval_cpu_s.map_or("?".into(), |c| format!("{c:.1}")),
        t.resumed_eval_s,
        t.plan.stride,
        t.plan.max_anchors,
        t.plan.boundary_bytes as f64 / 1e6,
        t.peak_mb.map_or("?".into(), |m| format!("{m:.0}"))
    )
}

/// The decoder-shape section of `doc` with `row` added (a row for the same shape and storage
/// replaced), under the table's header.
pub fn add_shape_row(doc: &str, row: &str, device: &str) -> String {
    let header = "| shape | base parameters | base weights | proxy-set tokens | load + victim pass (s) | full evaluation (s) | its CPU time (s) | second half of the layers (s) | state stride / anchors / MB per boundary | peak memory (MB) |";
    let key = row.split(" | ").take(3).collect::<Vec<_>>().join(" | ");
    let mut rows: Vec<String> = match doc.find(&format!("{SHAPES_SECTION}\n")) {
        Some(start) => doc[start..]
            .lines()
            .skip(1)
            .take_while(|l| !l.starts_with("## "))
            .filter(|l| l.starts_with("| ") && !l.starts_with("| shape") && !l.starts_with(&key))
            .map(str::to_string)
            .collect(),
        None => Vec::new(),
    };
    rows.push(row.to_string());
    let mut s = String::new();
    let _ = writeln!(s, "{SHAPES_SECTION}\n");
    let _ = writeln!(
        s,
        "Written by `gms bench --llm-shape DIR` (one process per row, so peak memory is the row's), random-weight bases and rank-8 adapters from `gms gen-model --arch llama …` (a word-level tokenizer: fewer tokens than a BPE gives the same rows), evaluated on the LLM kit's proxy sets (f32 activations). A full evaluation runs every layer on both proxy sets; the CPU time counts every thread and depends much less than the wall time on what else the machine runs. Device: {device}.\n"
    );
    let _ = writeln!(s, "{header}");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let _ = writeln!(s, "{r}");
    }
    replace_section(doc, SHAPES_SECTION, &s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_replaced_or_appended() {
        let doc = "# B\n\n## A\nold a\n\n## GMS search on the LLM kit\nold\n\n## Z\nz\n";
        let new = replace_section(doc, LLM_SECTION, "## GMS search on the LLM kit\nnew\n");
        assert_eq!(
            new,
            "# B\n\n## A\nold a\n\n## GMS search on the LLM kit\nnew\n\n## Z\nz\n"
        );
        let appended = replace_section("# B\n", SHAPES_SECTION, "## Decoder LLM shapes\nx");
        assert_eq!(appended, "# B\n\n## Decoder LLM shapes\nx\n");
        assert_eq!(kept_sections(doc), "\n## GMS search on the LLM kit\nold\n");
    }
}
