//! `gms bench`: time the benchmark kit's search and write BENCHMARKS.md; with `--efficacy`,
//! run every search mode on every kit found and write EFFICACY.md.
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
//!
//! Decoders: `--llm` times the LLM kit's search (PEFT adapters over SmolLM2-135M) and writes its
//! section of BENCHMARKS.md; `--llm-shape DIR` evaluates a random decoder pair of a real shape
//! (`gms gen-model --arch llama`) on the kit's proxy sets and adds its row there. Each runs
//! in its own process, so the peak memory reported is its own.

use super::args::EvalDtype;
use crate::bench::{
    self, Kit, LlmKit, SearchTiming, CONFIGURATIONS, GOLDEN_MODELS, GOLDEN_TOLERANCE,
};
use crate::device::open_device;
use crate::efficacy::{self, EfficacyKit, KitEntry};
use crate::gms::modes::SearchMode;
use crate::gms::score::Drops;
use crate::gms::search::SearchParams;
use crate::model::decoder_folder::WeightStorage;
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
    /// Instead: run every search mode, with the paper's and the filtered proxy-set signal, on
    /// the embedded demo and every kit found, score the answers on their test sets, and write
    /// the table to --efficacy-out.
    #[arg(long, conflicts_with_all = ["large", "quick", "golden", "llm", "llm_shape"])]
    efficacy: bool,
    /// Efficacy: also run the LLM kit (--llm-kit, assembled under --llm-models). Opt-in: a
    /// full evaluation of its LoRA pair takes about 30 s on 2 CPU cores, and the report
    /// scores hundreds of strategies per kit.
    #[arg(long, requires = "efficacy")]
    efficacy_llm: bool,
    /// Efficacy report file.
    #[arg(long, value_name = "FILE", default_value = "EFFICACY.md")]
    efficacy_out: PathBuf,
    /// Beam width of the efficacy report's beam mode.
    #[arg(long, value_name = "K", default_value_t = crate::gms::modes::DEFAULT_BEAM_WIDTH)]
    beam: usize,
    /// Efficacy: measure only the kits whose name contains this text, and put their sections
    /// in place of the same kits' sections of --efficacy-out (the other kits' stay as they
    /// were).
    #[arg(long, value_name = "TEXT", requires = "efficacy")]
    only: Option<String>,
    /// Efficacy: run only these runs of each kit, named MODE/SIGNAL (paper/paper,
    /// cells-paper/filtered, refine/filtered/2000, …); the report lists the ones left out.
    #[arg(
        long,
        value_name = "RUN,…",
        value_delimiter = ',',
        requires = "efficacy"
    )]
    runs: Vec<String>,
    /// Instead: time the full greedy walk (every step until nothing is left to drop) on the
    /// pair DIR/victim + DIR/proxy (e.g. BERT-large shaped, from `gms gen-model`) with the
    /// kit's proxy sets; prints, writes nothing.
    #[arg(long, value_name = "DIR", conflicts_with = "quick")]
    large: Option<PathBuf>,
    /// Print one JSON line per result (for scripts/gpu-check.sh).
    #[arg(long)]
    json: bool,
    /// Instead: time the LLM kit's search and write its section of the report.
    #[arg(long, conflicts_with_all = ["golden", "large", "quick", "llm_shape"])]
    llm: bool,
    /// Instead: evaluate the decoder pair DIR/base + DIR/victim, DIR/proxy (from `gms
    /// gen-model --arch llama`) on the LLM kit's proxy sets and add its row to the report.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["golden", "large", "quick"])]
    llm_shape: Option<PathBuf>,
    /// With --llm-shape: keep base weights in f32 or in their stored dtype (default: by size,
    /// as loading does).
    #[arg(long, value_enum)]
    storage: Option<StorageArg>,
    /// The LLM kit.
    #[arg(long, default_value = "../shared/bench-llm")]
    llm_kit: PathBuf,
    /// Where the LLM kit's models are assembled (its setup.sh).
    #[arg(long, default_value = "target/bench-llm")]
    llm_models: PathBuf,
}

/// `--storage` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StorageArg {
    /// Converted to f32 once at load.
    F32,
    /// Kept in the checkpoint's dtype (bf16), converted per use: what a 7B base gets.
    Stored,
}

impl BenchCmd {
    /// Runs the chosen benchmark and prints (and for the full run, writes) its results.
    pub fn run(self) -> anyhow::Result<()> {
        let device = open_device(&self.device)?;
        if self.efficacy {
            return self.efficacy(&device);
        }
        if self.llm || self.llm_shape.is_some() {
            let kit = LlmKit::open(&self.llm_kit, &self.llm_models)?;
            return match &self.llm_shape {
                Some(pair) => self.decoder_shape(&kit, pair, &device),
                None => self.llm_search(&kit, &device),
            };
        }
        let kit = Kit::open(&self.kit, &self.models)?;
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
            let run = bench::time_search(
                kit.search_inputs(),
                device,
                self.dtype(),
                params,
                Drops::Relative,
                config,
            )?;
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
        let mut report = bench::report(&runs, &device_line, &kit.dir);
        // Keep what `--llm` and `--llm-shape` wrote.
        if let Ok(old) = std::fs::read_to_string(&self.out) {
            report.push_str(&bench::kept_sections(&old));
        }
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

    /// The efficacy report over the demo, the encoder kit (when present) and the LLM kit's
    /// hook.
    fn efficacy(&self, device: &Device) -> anyhow::Result<()> {
        let params =
            SearchParams::validated(crate::gms::DEFAULT_ALPHA, crate::gms::DEFAULT_PATIENCE)?;
        SearchMode::Beam { width: self.beam }.validated()?;
        let mut entries = Vec::new();
        match Kit::open(&self.kit, &self.models) {
            Ok(kit) => {
                kit.assemble()?;
                for victim in efficacy::ENCODER_VICTIMS {
                    let sets = self.encoder_proxy_sets(&kit, victim.1, device)?;
                    let mut entry = efficacy::encoder_kit(&kit, victim, &sets);
                    entry.large_clean = Some(self.large_clean_sample(&kit, victim.1)?);
                    entries.push(KitEntry::Run(Box::new(entry)));
                }
            }
            Err(e) => entries.push(KitEntry::Skipped {
                name: "Encoder kit".into(),
                why: e.to_string(),
            }),
        }
        let demo = KitEntry::Run(Box::new(EfficacyKit {
            name: "Demo".into(),
            about: "The embedded demo: a 6-layer BERT (hidden 64) BadNet victim and its proxy \
                    (README §The demo)"
                .into(),
            inputs: crate::demo::inputs()?,
            // The demo carries no training set to sample from.
            large_clean: None,
            drops: crate::gms::score::Drops::Relative,
            no_neighbourhood: None,
        }));
        // SST-2 BadNet first, the kit the goal is set on: each kit is written when it is done.
        entries.insert(entries.len().min(1), demo);
        let llm_name = "SST-2 BadNet, LoRA decoder (LLM kit)".to_string();
        if !self.efficacy_llm {
            entries.push(KitEntry::Skipped {
                name: llm_name,
                why: "opt-in with `--efficacy-llm` (a full evaluation of its LoRA pair takes \
                      about 30 s on 2 CPU cores; the report's runs score hundreds of strategies)"
                    .into(),
            });
        } else {
            match LlmKit::open(&self.llm_kit, &self.llm_models) {
                Ok(llm) => {
                    llm.assemble()?;
                    entries.push(KitEntry::Run(Box::new(efficacy::llm_kit(
                        &llm,
                        &self.kit.join("data/sst2"),
                    ))));
                }
                Err(e) => entries.push(KitEntry::Skipped {
                    name: llm_name,
                    why: e.to_string(),
                }),
            }
        }
        let all_runs = efficacy::runs(self.beam);
        let names: Vec<String> = all_runs.iter().map(efficacy::Run::name).collect();
        if let Some(bad) = self.runs.iter().find(|r| !names.contains(r)) {
            return Err(crate::GmsError::BadArgument {
                flag: "--runs",
                value: bad.clone(),
                problem: format!("the report's runs are {}", names.join(", ")),
            }
            .into());
        }
        let (runs, left_out): (Vec<efficacy::Run>, Vec<efficacy::Run>) = all_runs
            .into_iter()
            .partition(|r| self.runs.is_empty() || self.runs.contains(&r.name()));
        let left_out: Vec<String> = left_out.iter().map(efficacy::Run::name).collect();
        let mut results = Vec::new();
        let mut skipped = Vec::new();
        // Each kit's line in a report written before the end: its skip reason, or that it is
        // still to be measured.
        let later: Vec<(String, String)> = entries
            .iter()
            .map(|e| match e {
                KitEntry::Run(kit) => (
                    kit.name.clone(),
                    "not measured yet: the report was still running".to_string(),
                ),
                KitEntry::Skipped { name, why } => (name.clone(), why.clone()),
            })
            .collect();
        let report = |results: &[efficacy::KitResult], skipped: &[(String, String)]| {
            efficacy::report(
                results,
                skipped,
                &bench::machine(device),
                params,
                "cargo run --release -- bench --efficacy",
            )
        };
        // With --only, the measured kits' sections go into the file as it is, each saying how
        // it was measured; the other kits' sections stay.
        let existing = std::fs::read_to_string(&self.efficacy_out).unwrap_or_default();
        let only_note = self.only.as_ref().map(|only| {
            let mut command = "cargo run --release -- bench --efficacy".to_string();
            if self.efficacy_llm {
                command.push_str(" --efficacy-llm");
            }
            command.push_str(&format!(" --only '{only}'"));
            if !self.runs.is_empty() {
                command.push_str(&format!(" --runs {}", self.runs.join(",")));
            }
            format!(
                "Measured on its own by `{command}`. Device: {}.",
                bench::machine(device)
            )
        });
        let full_report =
            |results: &[efficacy::KitResult], pending: &[(String, String)]| match &only_note {
                Some(note) => {
                    efficacy::splice(&existing, &efficacy::report_sections(results), note)
                }
                None => report(results, pending),
            };
        for (i, entry) in entries.into_iter().enumerate() {
            match entry {
                KitEntry::Run(kit) => {
                    if self
                        .only
                        .as_ref()
                        .is_some_and(|o| !kit.name.contains(o.as_str()))
                    {
                        continue;
                    }
                    eprintln!("{}: {} runs", kit.name, runs.len());
                    let mut pending = skipped.clone();
                    pending.extend(later[i + 1..].iter().cloned());
                    // Each finished run is written at once: the report takes hours on two
                    // cores, and a stopped run keeps what it measured.
                    let mut write_error = None;
                    let mut result = efficacy::run_kit(
                        &kit,
                        device,
                        params,
                        &runs,
                        |line| eprintln!("  {line}"),
                        |partial| {
                            let mut so_far = results.clone();
                            let mut partial = partial.clone();
                            partial.left_out = left_out.clone();
                            so_far.push(partial);
                            if let Err(e) = crate::atomic::write_file(
                                &self.efficacy_out,
                                full_report(&so_far, &pending).as_bytes(),
                            ) {
                                write_error.get_or_insert(e);
                            }
                        },
                    )?;
                    if let Some(e) = write_error {
                        return Err(e.into());
                    }
                    result.left_out = left_out.clone();
                    results.push(result);
                    crate::atomic::write_file(
                        &self.efficacy_out,
                        full_report(&results, &pending).as_bytes(),
                    )?;
                }
                KitEntry::Skipped { name, why } => {
                    eprintln!("{name}: skipped ({why})");
                    skipped.push((name, why));
                }
            }
        }
        if let (Some(only), true) = (&self.only, results.is_empty()) {
            let why: Vec<String> = skipped
                .iter()
                .filter(|(n, _)| n.contains(only.as_str()))
                .map(|(n, w)| format!("{n}: {w}"))
                .collect();
            return Err(crate::GmsError::BadArgument {
                flag: "--only",
                value: only.clone(),
                problem: if why.is_empty() {
                    "no kit's name contains it (SST-2 BadNet, SST-2 InsertSent, Demo, and the \
                     LLM kit with --efficacy-llm)"
                        .into()
                } else {
                    format!("no kit it names was measured ({})", why.join("; "))
                },
            }
            .into());
        }
        let report = full_report(&results, &skipped);
        println!("{report}");
        crate::atomic::write_file(&self.efficacy_out, report.as_bytes())?;
        println!("wrote {}", self.efficacy_out.display());
        Ok(())
    }

    /// A random sample of [`efficacy::LARGE_CLEAN_ROWS`] rows of `victim`'s training set
    /// (seed 42, as `gms proxy-sets --clean-size` draws it), written once under `--models`.
    fn large_clean_sample(&self, kit: &Kit, victim: &str) -> anyhow::Result<PathBuf> {
        let file = kit
            .models
            .join("proxysets")
            .join(victim)
            .join(format!("clean-{}.jsonl", efficacy::LARGE_CLEAN_ROWS));
        if !file.is_file() {
            let train = crate::data::Dataset::read(&Self::training_set(kit, victim))?;
            let (clean, _) =
                crate::gms::proxy_sets::sample_clean(&train, efficacy::LARGE_CLEAN_ROWS, 42);
            if let Some(dir) = file.parent() {
                std::fs::create_dir_all(dir).map_err(|e| crate::GmsError::output(dir, e))?;
            }
            clean.write_jsonl(&file)?;
        }
        Ok(file)
    }

    /// The encoder kit's training set of `victim` (`sst2_badnet` → `train_badnet.json`).
    fn training_set(kit: &Kit, victim: &str) -> PathBuf {
        let attack = victim.strip_prefix("sst2_").unwrap_or(victim);
        kit.dir.join(format!("data/sst2/train_{attack}.json"))
    }

    /// The kit's proxy sets for `victim`, or — when the kit has none — ones built from the
    /// victim's training set under `--models` (as `gms proxy-sets` would, seed 42).
    fn encoder_proxy_sets(
        &self,
        kit: &Kit,
        victim: &str,
        device: &Device,
    ) -> anyhow::Result<PathBuf> {
        let given = kit.dir.join("proxysets").join(victim);
        if given.join("clean.jsonl").is_file() && given.join("suspect.jsonl").is_file() {
            return Ok(given);
        }
        let built = kit.models.join("proxysets").join(victim);
        if built.join("clean.jsonl").is_file() && built.join("suspect.jsonl").is_file() {
            return Ok(built);
        }
        let train = Self::training_set(kit, victim);
        eprintln!(
            "{victim}: the kit has no proxy sets; building them from {}",
            train.display()
        );
        let train = crate::data::Dataset::read(&train)?;
        super::proxy_sets::write_proxy_sets(
            &kit.models.join(victim),
            &train,
            &built,
            (
                crate::gms::proxy_sets::DEFAULT_SIZE,
                crate::gms::proxy_sets::DEFAULT_SIZE,
            ),
            42,
            device,
        )?;
        Ok(built)
    }

    /// The LLM kit's search (layer cache and abandonment on), written into its section.
    fn llm_search(&self, kit: &LlmKit, device: &Device) -> anyhow::Result<()> {
        kit.assemble()?;
        let params = SearchParams::validated(0.4, 5)?;
        let run = bench::time_search(
            kit.search_inputs(),
            device,
            candle_core::DType::F32,
            params,
            Drops::Absolute,
            CONFIGURATIONS[0],
        )?;
        let peak = bench::peak_rss_mb();
        if self.json {
            let mut line = self.timing_json("kit", &run);
            line["bench"] = "llm".into();
            line["peak_mb"] = peak.into();
            println!("{line}");
        }
        let section = bench::llm_report(&run, &bench::machine(device), &kit.dir, peak);
        let old = std::fs::read_to_string(&self.out).unwrap_or_else(|_| "# Benchmarks\n".into());
        let doc = bench::replace_section(&old, bench::LLM_SECTION, &section);
        crate::atomic::write_file(&self.out, doc.as_bytes())?;
        println!("{section}");
        println!("wrote {}", self.out.display());
        Ok(())
    }

    /// One decoder shape's evaluation timings, added as a row of the report.
    fn decoder_shape(
        &self,
        kit: &LlmKit,
        pair: &std::path::Path,
        device: &Device,
    ) -> anyhow::Result<()> {
        let storage = self.storage.map(|s| match s {
            StorageArg::F32 => WeightStorage::F32,
            StorageArg::Stored => WeightStorage::Stored,
        });
        let t = bench::time_decoder_shape(kit, pair, storage, device)?;
        let row = bench::shape_row(&t);
        if self.json {
            println!(
                "{}",
                json!({"bench": "llm-shape", "shape": t.shape, "parameters": t.parameters,
                       "storage": format!("{:?}", t.storage), "tokens": t.tokens,
                       "load_s": t.load_s, "full_eval_s": t.full_eval_s,
                       "full_eval_cpu_s": t.full_eval_cpu_s,
                       "resumed_eval_s": t.resumed_eval_s, "state_plan": t.plan,
                       "peak_mb": t.peak_mb})
            );
        }
        let old = std::fs::read_to_string(&self.out).unwrap_or_else(|_| "# Benchmarks\n".into());
        let doc = bench::add_shape_row(&old, &row, &bench::machine(device));
        crate::atomic::write_file(&self.out, doc.as_bytes())?;
        println!("{row}");
        println!("wrote {}", self.out.display());
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
            "load_s": run.load_s, "search_s": run.search_s, "search_cpu_s": run.search_cpu_s,
            "evaluations": run.evaluations,
            "computed": run.computed, "abandoned": run.abandoned, "layer_runs": run.layer_runs,
            "precision": run.precision,
        });
        if bench == "kit" {
            line["trace"] = trace.into();
        }
        line
    }
}
