//! `gms bench`: time the benchmark kit's search and write BENCHMARKS.md.
//!
//! Speed targets live here, not in timed tests. The search runs three ways — with the layer
//! cache and early abandonment, with the layer cache only, with neither — and must find the
//! same trace every time.
//!
//! Two more modes serve the GPU check (`scripts/gpu-check.sh`): `--golden` compares the kit's
//! models with the golden logits on the chosen device, and `--large DIR` times the full greedy
//! walk on a paper-scale random pair (`gms gen-model`) with the kit's proxy sets. With
//! `--json` each mode prints one JSON line per result for scripts.

use super::args::EvalDtype;
use crate::data::{Dataset, Example};
use crate::device::open_device;
use crate::gms::search::{GreedySearch, SearchParams};
use crate::gms::session::{SearchInputs, Session};
use crate::model::{LoadedModel, Module};
use anyhow::{bail, Context};
use clap::Args;
use std::fmt::Write;
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `gms bench`.
#[derive(Debug, Args)]
pub struct BenchCmd {
    /// The benchmark kit.
    #[arg(long, default_value = "../shared/bench")]
    kit: PathBuf,
    /// Where the kit's models are assembled (setup.sh).
    #[arg(long, default_value = "target/bench-models")]
    models: PathBuf,
    /// Report file.
    #[arg(long, default_value = "BENCHMARKS.md")]
    out: PathBuf,
    /// Compute device: auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Time only the default configuration (layer cache + abandonment); prints, writes nothing.
    #[arg(long)]
    quick: bool,
    /// Evaluation dtype; bf16/f16 also report how many proxy-set predictions differ from f32.
    #[arg(long, value_enum, default_value_t = EvalDtype::F32)]
    dtype: EvalDtype,
    /// Instead: check the kit's models against the golden logits on the device.
    #[arg(long, conflicts_with_all = ["large", "quick"])]
    golden: bool,
    /// Instead: time the full greedy walk (every step until nothing is left to drop) on the
    /// pair DIR/victim + DIR/proxy (e.g. BERT-large shaped, from `gms gen-model`) with the
    /// kit's proxy sets; prints, writes nothing.
    #[arg(long, value_name = "DIR", conflicts_with = "quick")]
    large: Option<PathBuf>,
    /// Print one JSON line per result (for scripts/gpu-check.sh).
    #[arg(long)]
    json: bool,
}

/// Largest |logit − golden| allowed: f32 on any device agrees with `transformers` far closer.
const GOLDEN_TOLERANCE: f32 = 1e-4;

struct Run {
    name: &'static str,
    load_s: f64,
    search_s: f64,
    evaluations: usize,
    computed: usize,
    abandoned: usize,
    layer_runs: usize,
    trace: Vec<(String, f64)>,
}

impl BenchCmd {
    /// Runs the benchmark and writes the report.
    pub fn run(self) -> anyhow::Result<()> {
        if !self.kit.join("setup.sh").is_file() {
            bail!(
                "{}: the benchmark kit is missing; pass --kit DIR",
                self.kit.display()
            );
        }
        let device = open_device(&self.device)?;
        let mut inputs = SearchInputs {
            victim: self.models.join("sst2_badnet"),
            proxy: self.models.join("sst2_proxy_uci"),
            clean: self.kit.join("proxysets/sst2_badnet/clean.jsonl"),
            suspect: self.kit.join("proxysets/sst2_badnet/suspect.jsonl"),
            test_clean: None,
            test_poison: None,
        };
        if let Some(dir) = &self.large {
            // Only the kit's proxy sets are used: its models need not be assembled.
            inputs.victim = dir.join("victim");
            inputs.proxy = dir.join("proxy");
            return self.full_walk(inputs, &device);
        }
        let status = std::process::Command::new("bash")
            .arg(self.kit.join("setup.sh"))
            .arg(&self.models)
            .status()
            .context("running the kit's setup.sh")?;
        if !status.success() {
            bail!("{}: setup.sh failed", self.kit.display());
        }
        if self.golden {
            return self.golden_check(&device);
        }
        let params = SearchParams::validated(0.4, 5)?;
        let mut runs = Vec::new();
        for (name, layer_cache, abandonment) in [
            ("layer cache + early abandonment", true, true),
            ("layer cache only", true, false),
            (
                "neither (every candidate from the embeddings)",
                false,
                false,
            ),
        ] {
            let t0 = Instant::now();
            let mut session = Session::load_with(inputs.clone(), &device, self.dtype.dtype())?;
            let load_s = t0.elapsed().as_secs_f64();
            session.evaluator.layer_cache = layer_cache;
            session.evaluator.abandonment = abandonment;
            let t1 = Instant::now();
            let mut search = GreedySearch::new(params, session.evaluator.num_layers());
            search.run(&mut session.evaluator, |_| {})?;
            let search_s = t1.elapsed().as_secs_f64();
            let stats = session.evaluator.stats;
            let run = Run {
                name,
                load_s,
                search_s,
                evaluations: search.evaluations(),
                computed: stats.computed,
                abandoned: stats.abandoned,
                layer_runs: stats.layer_runs,
                trace: search
                    .trace()
                    .iter()
                    .map(|s| (s.point.mv.to_string(), s.point.metrics.score))
                    .collect(),
            };
            eprintln!(
                "{name}: {search_s:.1} s search, {} evaluations",
                run.evaluations
            );
            if self.quick {
                if self.json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "bench": "kit", "device": session.device_name, "dtype": self.dtype.dtype().as_str(),
                            "load_s": run.load_s, "search_s": run.search_s, "evaluations": run.evaluations,
                            "computed": run.computed, "abandoned": run.abandoned, "layer_runs": run.layer_runs,
                            "precision": session.precision,
                            "trace": run.trace.iter().map(|(mv, score)| serde_json::json!({"move": mv, "score": score})).collect::<Vec<_>>(),
                        })
                    );
                }
                return Ok(());
            }
            runs.push(run);
        }
        let same = runs.windows(2).all(|w| w[0].trace == w[1].trace);
        if !same {
            bail!("the three configurations found different traces: the caches changed a result");
        }
        let mut device_line = session_device(&device);
        if self.dtype != EvalDtype::F32 {
            device_line = format!(
                "{device_line}, evaluated in {}",
                self.dtype.dtype().as_str()
            );
        }
        let report = render(&runs, &device_line, &self.kit);
        crate::atomic::write_file(&self.out, report.as_bytes())?;
        println!("{report}");
        println!("wrote {}", self.out.display());
        Ok(())
    }
}

impl BenchCmd {
    /// Golden logits of every kit model assembled under `--models`, on `device` (f32).
    fn golden_check(&self, device: &candle_core::Device) -> anyhow::Result<()> {
        let mut checked = 0;
        let mut failed = Vec::new();
        for name in ["sst2_badnet", "sst2_sent", "sst2_proxy_uci"] {
            let golden_file = self.kit.join(format!("golden/{name}.json"));
            let dir = self.models.join(name);
            if !golden_file.is_file() || !dir.is_dir() {
                eprintln!("golden {name}: skipped (model or golden file not in the kit)");
                continue;
            }
            let worst = golden_diff(&dir, &golden_file, device)?;
            let ok = worst.0 <= GOLDEN_TOLERANCE;
            if self.json {
                println!(
                    "{}",
                    serde_json::json!({"check": "golden", "model": name, "rows": worst.1, "max_diff": worst.0,
                                       "ok": ok, "device": crate::device::describe(device)})
                );
            } else {
                println!(
                    "golden {name}: {} rows, max |logit diff| {:e} ({})",
                    worst.1,
                    worst.0,
                    if ok { "ok" } else { "FAIL" }
                );
            }
            checked += 1;
            if !ok {
                failed.push(name);
            }
        }
        if checked == 0 {
            bail!("{}: no kit model with golden logits there; run the kit's setup.sh or pass --models", self.models.display());
        }
        if !failed.is_empty() {
            bail!(
                "golden logits differ by more than {GOLDEN_TOLERANCE:e} for {}",
                failed.join(", ")
            );
        }
        Ok(())
    }

    /// The full greedy walk (patience high enough never to stop it) on a given pair.
    fn full_walk(&self, inputs: SearchInputs, device: &candle_core::Device) -> anyhow::Result<()> {
        let t0 = Instant::now();
        let mut session = Session::load_with(inputs, device, self.dtype.dtype())?;
        let load_s = t0.elapsed().as_secs_f64();
        let layers = session.evaluator.num_layers();
        // Each step drops one module type or one layer, so a walk has at most this many steps.
        let params = SearchParams::validated(0.4, Module::ALL.len() + layers)?;
        let t1 = Instant::now();
        let mut search = GreedySearch::new(params, layers);
        search.run(&mut session.evaluator, |_| {})?;
        let search_s = t1.elapsed().as_secs_f64();
        let stats = session.evaluator.stats;
        let free_gib = crate::device::free_memory(device).map(|b| b as f64 / (1u64 << 30) as f64);
        if self.json {
            println!(
                "{}",
                serde_json::json!({
                    "bench": "large", "device": session.device_name, "dtype": self.dtype.dtype().as_str(),
                    "layers": layers, "load_s": load_s, "search_s": search_s, "evaluations": search.evaluations(),
                    "computed": stats.computed, "abandoned": stats.abandoned, "layer_runs": stats.layer_runs,
                    "precision": session.precision, "gpu_free_gib_after": free_gib,
                })
            );
        } else {
            println!(
                "full walk, {layers} layers, {}: {search_s:.2} s search ({} evaluations, {} abandoned), {load_s:.1} s load — {}",
                self.dtype.dtype().as_str(),
                search.evaluations(),
                stats.abandoned,
                session.device_name
            );
        }
        Ok(())
    }
}

/// Largest |logit − golden| over a kit model's golden sentences, and the rows compared.
fn golden_diff(
    dir: &std::path::Path,
    golden_file: &std::path::Path,
    device: &candle_core::Device,
) -> anyhow::Result<(f32, usize)> {
    let model = LoadedModel::load(dir, device)?;
    let enc = model.text_encoder()?;
    let text = std::fs::read_to_string(golden_file)
        .with_context(|| format!("reading {}", golden_file.display()))?;
    let golden: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: not JSON", golden_file.display()))?;
    let sets = golden
        .as_object()
        .with_context(|| format!("{}: expected an object of test sets", golden_file.display()))?;
    let (mut worst, mut rows) = (0f32, 0);
    for v in sets.values() {
        let sentences: Vec<Example> = v["sentences"]
            .as_array()
            .with_context(|| format!("{}: a set without sentences", golden_file.display()))?
            .iter()
            .map(|s| Example {
                text: s.as_str().unwrap_or_default().into(),
                text_pair: None,
                label: 0,
                line: 0,
            })
            .collect();
        let want: Vec<Vec<f32>> = serde_json::from_value(v["logits"].clone())
            .with_context(|| format!("{}: a set without logits", golden_file.display()))?;
        let encoded = enc.encode_set(
            &Dataset::from_examples("golden", sentences).examples,
            device,
        )?;
        for batch in &encoded.batches {
            let got = model.classifier.logits(&batch.input)?.to_vec2::<f32>()?;
            for (r, &row) in batch.rows.iter().enumerate() {
                let w = want.get(row).with_context(|| {
                    format!("{}: fewer logits than sentences", golden_file.display())
                })?;
                for (g, w) in got[r].iter().zip(w) {
                    worst = worst.max((g - w).abs());
                }
                rows += 1;
            }
        }
    }
    Ok((worst, rows))
}

fn session_device(device: &candle_core::Device) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{} — {cpu}", crate::gms::session::device_name(device))
}

fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn render(runs: &[Run], device: &str, kit: &std::path::Path) -> String {
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
