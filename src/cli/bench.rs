//! `gms bench`: time the benchmark kit's search and write BENCHMARKS.md.
//!
//! Speed targets live here, not in timed tests. The search runs three ways — with the layer
//! cache and early abandonment, with the layer cache only, with neither — and must find the
//! same trace every time.
//!
//! Two more modes serve the GPU check (`scripts/gpu-check.sh`): `--golden` compares the kit's
//! models with the golden logits on the chosen device, and `--large DIR` times the full greedy
//! walk on a paper-scale random pair (`gms gen-model`) with the kit's proxy sets. With
//! `--json` each mode prints one JSON line per result for scripts. The work itself is
//! [`crate::bench`]'s; this prints and writes.

use super::args::EvalDtype;
use crate::bench::{self, Kit, SearchTiming, CONFIGURATIONS, GOLDEN_MODELS, GOLDEN_TOLERANCE};
use crate::device::open_device;
use crate::gms::search::SearchParams;
use anyhow::bail;
use candle_core::Device;
use clap::Args;
use serde_json::json;
use std::path::PathBuf;

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

impl BenchCmd {
    /// Runs the chosen benchmark and prints (and for the full run, writes) its results.
    pub fn run(self) -> anyhow::Result<()> {
        let kit = Kit::open(&self.kit, &self.models)?;
        let device = open_device(&self.device)?;
        if let Some(pair) = &self.large {
            // Only the kit's proxy sets are used: its models need not be assembled.
            return self.full_walk(&kit, pair, &device);
        }
        kit.assemble()?;
        if self.golden {
            return self.golden_check(&kit, &device);
        }
        self.kit_search(&kit, &device)
    }

    /// The kit search in each configuration (only the first with `--quick`).
    fn kit_search(&self, kit: &Kit, device: &Device) -> anyhow::Result<()> {
        let params = SearchParams::validated(0.4, 5)?;
        let configurations = if self.quick {
            &CONFIGURATIONS[..1]
        } else {
            &CONFIGURATIONS[..]
        };
        let mut runs = Vec::new();
        for &config in configurations {
            let run =
                bench::time_search(kit.search_inputs(), device, self.dtype(), params, config)?;
            eprintln!(
                "{}: {:.1} s search, {} evaluations",
                run.name, run.search_s, run.evaluations
            );
            runs.push(run);
        }
        if self.quick {
            if self.json {
                println!("{}", self.timing_json("kit", &runs[0]));
            }
            return Ok(());
        }
        if !runs.windows(2).all(|w| w[0].trace == w[1].trace) {
            bail!("the three configurations found different traces: the caches changed a result");
        }
        let mut device_line = bench::machine(device);
        if self.dtype != EvalDtype::F32 {
            device_line = format!("{device_line}, evaluated in {}", self.dtype().as_str());
        }
        let report = bench::report(&runs, &device_line, &kit.dir);
        crate::atomic::write_file(&self.out, report.as_bytes())?;
        println!("{report}");
        println!("wrote {}", self.out.display());
        Ok(())
    }

    /// Golden logits of every kit model assembled under `--models`, on `device` (f32).
    fn golden_check(&self, kit: &Kit, device: &Device) -> anyhow::Result<()> {
        let mut checked = 0;
        let mut failed = Vec::new();
        for name in GOLDEN_MODELS {
            let golden_file = kit.dir.join(format!("golden/{name}.json"));
            let dir = kit.models.join(name);
            if !golden_file.is_file() || !dir.is_dir() {
                eprintln!("golden {name}: skipped (model or golden file not in the kit)");
                continue;
            }
            let diff = bench::golden_diff(&dir, &golden_file, device)?;
            if self.json {
                println!(
                    "{}",
                    json!({"check": "golden", "model": name, "rows": diff.rows, "max_diff": diff.max_diff,
                           "ok": diff.ok(), "device": crate::device::describe(device)})
                );
            } else {
                println!(
                    "golden {name}: {} rows, max |logit diff| {:e} ({})",
                    diff.rows,
                    diff.max_diff,
                    if diff.ok() { "ok" } else { "FAIL" }
                );
            }
            checked += 1;
            if !diff.ok() {
                failed.push(name);
            }
        }
        if checked == 0 {
            bail!("{}: no kit model with golden logits there; run the kit's setup.sh or pass --models", kit.models.display());
        }
        if !failed.is_empty() {
            bail!(
                "golden logits differ by more than {GOLDEN_TOLERANCE:e} for {}",
                failed.join(", ")
            );
        }
        Ok(())
    }

    /// The full greedy walk on the pair in `pair`.
    fn full_walk(&self, kit: &Kit, pair: &std::path::Path, device: &Device) -> anyhow::Result<()> {
        let run = bench::time_full_walk(kit.pair_inputs(pair), device, self.dtype())?;
        if self.json {
            let mut line = self.timing_json("large", &run);
            line["layers"] = run.layers.into();
            line["gpu_free_gib_after"] = crate::device::free_memory(device)
                .map(|b| b as f64 / (1u64 << 30) as f64)
                .into();
            println!("{line}");
        } else {
            println!(
                "full walk, {} layers, {}: {:.2} s search ({} evaluations, {} abandoned), {:.1} s load — {}",
                run.layers,
                self.dtype().as_str(),
                run.search_s,
                run.evaluations,
                run.abandoned,
                run.load_s,
                run.device
            );
        }
        Ok(())
    }

    fn dtype(&self) -> candle_core::DType {
        self.dtype.dtype()
    }

    /// One timed search as a JSON line for scripts/gpu-check.sh.
    fn timing_json(&self, bench: &str, run: &SearchTiming) -> serde_json::Value {
        let trace: Vec<_> = run
            .trace
            .iter()
            .map(|(mv, score)| json!({"move": mv.to_string(), "score": score}))
            .collect();
        let mut line = json!({
            "bench": bench, "device": run.device, "dtype": self.dtype().as_str(),
            "load_s": run.load_s, "search_s": run.search_s, "evaluations": run.evaluations,
            "computed": run.computed, "abandoned": run.abandoned, "layer_runs": run.layer_runs,
            "precision": run.precision,
        });
        if bench == "kit" {
            line["trace"] = trace.into();
        }
        line
    }
}
