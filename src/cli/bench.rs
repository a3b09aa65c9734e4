//! `gms bench`: time the benchmark kit's search and write BENCHMARKS.md.
//!
//! Speed targets live here, not in timed tests. The search runs three ways — with the layer
//! cache and early abandonment, with the layer cache only, with neither — and must find the
//! same trace every time.

use crate::device::open_device;
use crate::gms::search::{GreedySearch, SearchParams};
use crate::gms::session::{SearchInputs, Session};
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
}

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
        let status = std::process::Command::new("bash")
            .arg(self.kit.join("setup.sh"))
            .arg(&self.models)
            .status()
            .context("running the kit's setup.sh")?;
        if !status.success() {
            bail!("{}: setup.sh failed", self.kit.display());
        }
        let device = open_device(&self.device)?;
        let inputs = SearchInputs {
            victim: self.models.join("sst2_badnet"),
            proxy: self.models.join("sst2_proxy_uci"),
            clean: self.kit.join("proxysets/sst2_badnet/clean.jsonl"),
            suspect: self.kit.join("proxysets/sst2_badnet/suspect.jsonl"),
            test_clean: None,
            test_poison: None,
        };
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
            let mut session = Session::load(inputs.clone(), &device)?;
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
            runs.push(run);
            if self.quick {
                return Ok(());
            }
        }
        let same = runs.windows(2).all(|w| w[0].trace == w[1].trace);
        if !same {
            bail!("the three configurations found different traces: the caches changed a result");
        }
        let report = render(&runs, &session_device(&device), &self.kit);
        crate::export::atomic::write_file(&self.out, report.as_bytes())?;
        println!("{report}");
        println!("wrote {}", self.out.display());
        Ok(())
    }
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
    s
}
