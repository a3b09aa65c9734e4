//! `gms merge`: a merge baseline (WAG, task arithmetic, TIES, DARE) written as an HF folder,
//! with its mergekit YAML and the same metrics a GMS strategy reports.

use crate::device::open_device;
use crate::export::merged_model::write_model_folder;
use crate::export::mergekit_merge::{merge_yaml, mergekit_base_dir, MergeYaml};
use crate::gms::merge::score::ScoringPaths;
use crate::gms::merge::{
    merge_models, score_model, MergeInputs, MergeMethod, MergeParams, ModelScore, ScoringSets,
};
use crate::gms::search::SearchParams;
use crate::model::encoder::Classifier;
use crate::model::tokenize::TextEncoder;
use crate::model::LoadedModel;
use anyhow::bail;
use candle_core::DType;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// `--method` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MethodArg {
    /// Weighted mean of victim and proxy (the paper's WAG); mergekit `linear`.
    Linear,
    /// Base + λ·weighted sum of task vectors; mergekit `task_arithmetic`.
    TaskArithmetic,
    /// Trim by magnitude, elect signs, disjoint mean; mergekit `ties`.
    Ties,
    /// Random drop + L1 rescale, then TIES's sign election; mergekit `dare_ties`.
    Dare,
    /// Random drop + L1 rescale, then task arithmetic; mergekit `dare_linear`.
    DareLinear,
}

impl MethodArg {
    fn method(self) -> MergeMethod {
        match self {
            MethodArg::Linear => MergeMethod::Linear,
            MethodArg::TaskArithmetic => MergeMethod::TaskArithmetic,
            MethodArg::Ties => MergeMethod::Ties,
            MethodArg::Dare => MergeMethod::Dare,
            MethodArg::DareLinear => MergeMethod::DareLinear,
        }
    }
}

/// `--out-dtype` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutDtype {
    /// 32-bit float: the merge exactly as computed.
    F32,
    /// IEEE half (rounded from the f32 merge).
    F16,
    /// bfloat16 (rounded from the f32 merge).
    Bf16,
}

impl OutDtype {
    fn dtype(self) -> DType {
        match self {
            OutDtype::F32 => DType::F32,
            OutDtype::F16 => DType::F16,
            OutDtype::Bf16 => DType::BF16,
        }
    }
}

/// Arguments of `gms merge`.
#[derive(Debug, Args)]
pub struct MergeCmd {
    /// Victim model folder (never modified).
    #[arg(long, value_name = "DIR")]
    victim: PathBuf,
    /// Proxy model folder (never modified).
    #[arg(long, value_name = "DIR")]
    proxy: PathBuf,
    /// How to merge (see docs/merging.md).
    #[arg(long, value_enum)]
    method: MethodArg,
    /// The proxy's weight in [0, 1]; the victim gets 1 − weight [default: 0.5].
    #[arg(long)]
    weight: Option<f64>,
    /// Share of each task vector kept, in (0, 1] (ties, dare, dare-linear) [default: 0.7].
    #[arg(long)]
    density: Option<f64>,
    /// Scale of the merged task vector (base methods; mergekit's `lambda`) [default: 1].
    #[arg(long = "lambda", allow_negative_numbers = true)]
    lambda: Option<f64>,
    /// Pre-trained checkpoint victim and proxy were fine-tuned from (task-arithmetic, ties,
    /// dare, dare-linear). A plain encoder folder (BertModel names, no head) is fine.
    #[arg(long, value_name = "DIR")]
    base: Option<PathBuf>,
    /// Seed of DARE's random masks [default: 42].
    #[arg(long)]
    seed: Option<u64>,
    /// Output folder for the merged model (must not exist).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Dtype of the written model.
    #[arg(long, value_enum, default_value_t = OutDtype::F32)]
    out_dtype: OutDtype,
    /// Also write the mergekit YAML that builds the same model (and, when the base is not in
    /// the victim's layout, the base folder it reads: FILE's stem + `-mergekit-base`).
    #[arg(long, value_name = "FILE")]
    mergekit: Option<PathBuf>,
    /// Clean proxy set D_c, for acc and the score.
    #[arg(long, value_name = "FILE")]
    clean: Option<PathBuf>,
    /// Suspect proxy set D_p, for asr and the score.
    #[arg(long, value_name = "FILE")]
    suspect: Option<PathBuf>,
    /// Clean test set, for CACC.
    #[arg(long, value_name = "FILE")]
    test_clean: Option<PathBuf>,
    /// Poisoned test set (trigger inserted, relabelled to the target), for ASR.
    #[arg(long, value_name = "FILE")]
    test_poison: Option<PathBuf>,
    /// Accuracy weight α of the score, as for gms search.
    #[arg(long, default_value_t = crate::gms::DEFAULT_ALPHA, allow_negative_numbers = true)]
    alpha: f64,
    /// Compute device for scoring: auto, cpu, cuda or cuda:N (the merge runs on the CPU).
    #[arg(long, default_value = "auto")]
    device: String,
    /// Print one JSON object on stdout instead of text.
    #[arg(long)]
    json: bool,
}

/// Fails unless `dir` is free for a new output folder.
pub(super) fn require_new_dir(dir: &Path, flag: &str) -> anyhow::Result<()> {
    if dir.exists()
        && std::fs::read_dir(dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        bail!(
            "{}: already exists and is not empty; choose a new {flag} folder or remove the old one",
            dir.display()
        );
    }
    Ok(())
}

/// An absolute form of `p` for the YAML (mergekit may run from another folder).
fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// A spinner on stderr (hidden under --json so stdout stays one object).
pub(super) fn spinner(json: bool) -> ProgressBar {
    let bar = if json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new_spinner()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}").expect("valid template"),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

impl MergeCmd {
    /// Merges, writes and scores.
    pub fn run(self) -> anyhow::Result<()> {
        let started = Instant::now();
        let method = self.method.method();
        let params =
            MergeParams::validated(method, self.weight, self.density, self.lambda, self.seed)?;
        SearchParams::validated(self.alpha, crate::gms::DEFAULT_PATIENCE)?;
        match (&self.base, method.needs_base()) {
            (Some(b), false) => bail!(
                "--base {}: linear averages victim and proxy directly and needs no base; drop --base",
                b.display()
            ),
            (None, true) => bail!(
                "--base is required for {method}: it adds task vectors (model − base) to the pre-trained checkpoint victim and proxy were fine-tuned from"
            ),
            _ => {}
        }
        require_new_dir(&self.out, "--out")?;
        if let Some(y) = &self.mergekit {
            let parent = y.parent().filter(|p| !p.as_os_str().is_empty());
            if parent.is_some_and(|p| !p.is_dir()) {
                bail!(
                    "{}: its folder does not exist; create it or write the YAML elsewhere",
                    y.display()
                );
            }
        }
        let bar = spinner(self.json);
        bar.set_message("opening the models");
        let inputs = MergeInputs::open(&self.victim, &self.proxy, self.base.as_deref())?;
        let companion = match (&self.mergekit, method.needs_base()) {
            (Some(y), true) if !inputs.base_is_mergekit_ready() => {
                let dir = mergekit_base_dir(y);
                if dir.exists() {
                    bail!(
                        "{}: already exists; the YAML's base folder goes there, so remove it or choose another --mergekit file name",
                        dir.display()
                    );
                }
                Some(dir)
            }
            _ => None,
        };
        let device = open_device(&self.device)?;
        let paths = ScoringPaths {
            clean: self.clean.as_deref(),
            suspect: self.suspect.as_deref(),
            test_clean: self.test_clean.as_deref(),
            test_poison: self.test_poison.as_deref(),
        };
        // Datasets are read before anything is written, so a bad one leaves no output behind.
        let encoder = TextEncoder::load(&inputs.victim.dir, &inputs.victim.config)?;
        let sets = ScoringSets::load(&encoder, inputs.victim.config.num_labels, &paths, &device)?;
        bar.set_message(format!("merging ({})", params.describe()));
        let mut merged = merge_models(&inputs, &params)?;
        let out_dtype = self.out_dtype.dtype();
        merged.round_to(out_dtype)?;
        // The model first, the YAML (which names the base folder) last: each output is atomic.
        bar.set_message(format!("writing {}", self.out.display()));
        write_model_folder(&inputs.victim, &merged.tensors, out_dtype, &self.out)?;
        if let Some(yaml) = &self.mergekit {
            bar.set_message("writing the mergekit YAML");
            let base_for_mergekit = match &companion {
                Some(dir) => {
                    let tensors = inputs.mergekit_base_tensors()?;
                    write_model_folder(&inputs.victim, &tensors, DType::F32, dir)?;
                    Some(absolute(dir))
                }
                None => self.base.as_deref().map(absolute),
            };
            let text = merge_yaml(&MergeYaml {
                params: &params,
                victim: &absolute(&self.victim),
                proxy: &absolute(&self.proxy),
                base: base_for_mergekit.as_deref(),
                victim_only: if method.needs_base() {
                    inputs.victim_only()
                } else {
                    &[]
                },
                out_dtype,
            });
            crate::atomic::write_file(yaml, text.as_bytes())?;
        }
        let (victim_score, merged_score) = if sets.has_proxy() || sets.has_test() {
            bar.set_message("scoring the victim");
            let victim = LoadedModel::load(&self.victim, &device)?;
            let victim_score = score_model(&victim.classifier, &sets)?;
            bar.set_message("scoring the merged model");
            let model = Classifier::from_tensors(
                &inputs.victim.config,
                &merged.f32_tensors(&device)?,
                &self.out,
            )?;
            (Some(victim_score), Some(score_model(&model, &sets)?))
        } else {
            (None, None)
        };
        bar.finish_and_clear();
        let report = Report {
            params: &params,
            out: &self.out,
            out_dtype,
            mergekit: self.mergekit.as_deref(),
            companion: companion.as_deref(),
            victim_kept: &merged.victim_kept,
            tensors: merged.tensors.len(),
            alpha: self.alpha,
            victim: victim_score.as_ref(),
            merged: merged_score.as_ref(),
            wall_s: started.elapsed().as_secs_f64(),
        };
        if self.json {
            println!("{}", report.json());
        } else {
            report.print();
        }
        Ok(())
    }
}

/// What `gms merge` prints.
struct Report<'a> {
    params: &'a MergeParams,
    out: &'a Path,
    out_dtype: DType,
    mergekit: Option<&'a Path>,
    companion: Option<&'a Path>,
    victim_kept: &'a [String],
    tensors: usize,
    alpha: f64,
    victim: Option<&'a ModelScore>,
    merged: Option<&'a ModelScore>,
    wall_s: f64,
}

impl Report<'_> {
    fn json(&self) -> serde_json::Value {
        let p = self.params;
        let metrics = match (self.merged, self.victim) {
            (Some(m), Some(v)) => m.metrics(self.alpha, v),
            _ => None,
        };
        serde_json::json!({
            "method": p.method.name(),
            "mergekit_method": p.method.mergekit_name(),
            "weight": p.weight,
            "density": p.method.sparsifies().then_some(p.density),
            "lambda": p.method.needs_base().then_some(p.lambda),
            "seed": p.method.is_random().then_some(p.seed),
            "out": self.out,
            "out_dtype": crate::export::merged_model::hf_dtype_name(self.out_dtype),
            "mergekit": self.mergekit,
            "mergekit_base": self.companion,
            "tensors": self.tensors,
            "victim_kept": self.victim_kept,
            "alpha": self.alpha,
            "baseline": self.victim.and_then(|v| v.baseline()),
            "proxy": metrics,
            "test": self.merged.and_then(|m| m.test),
            "victim_test": self.victim.and_then(|v| v.test),
            "wall_s": self.wall_s,
        })
    }

    fn print(&self) {
        let kept = if self.victim_kept.is_empty() {
            String::new()
        } else {
            format!(
                "; kept from the victim (not in the base): {}",
                self.victim_kept.join(", ")
            )
        };
        println!(
            "wrote {} ({}, {} tensors{kept})",
            self.out.display(),
            self.params.describe(),
            self.tensors
        );
        if let Some(y) = self.mergekit {
            println!(
                "wrote {} (mergekit-yaml {} OUT_DIR builds the same model)",
                y.display(),
                y.display()
            );
        }
        if let Some(c) = self.companion {
            println!(
                "wrote {} (the base in the victim's layout, for mergekit)",
                c.display()
            );
        }
        if let (Some(v), Some(m)) = (self.victim, self.merged) {
            if let (Some(b), Some(x)) = (v.baseline(), m.metrics(self.alpha, v)) {
                println!(
                    "victim on the proxy sets: acc {:.4}  asr {:.4}",
                    b.acc, b.asr
                );
                println!(
                    "merged on the proxy sets: acc {:.4}  asr {:.4}  score {:.4} (α {})",
                    x.acc, x.asr, x.score, self.alpha
                );
            }
            for (who, t) in [("victim", v.test), ("merged", m.test)] {
                if let Some(t) = t {
                    println!(
                        "{who} on the test sets: CACC {:.2}% ({}/{})  ASR {:.2}% ({}/{})",
                        t.cacc * 100.0,
                        t.clean_correct,
                        t.clean_total,
                        t.asr * 100.0,
                        t.poison_hits,
                        t.poison_total
                    );
                }
            }
        }
        println!("{:.1} s in all", self.wall_s);
    }
}
