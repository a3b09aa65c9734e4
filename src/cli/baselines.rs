//! `gms baselines`: every merge baseline at its defaults, beside the victim, the proxy and
//! (with `--strategy`) a GMS result, on the same proxy and test sets — one table.

use super::merge::spinner;
use crate::device::open_device;
use crate::gms::merge::score::ScoringPaths;
use crate::gms::merge::{
    merge_models, score_model, MergeInputs, MergeMethod, MergeParams, ModelScore, ScoringSets,
};
use crate::gms::report::StrategyReport;
use crate::gms::search::SearchParams;
use crate::model::encoder::Classifier;
use crate::model::{weight_view, LoadedModel};
use anyhow::bail;
use clap::Args;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `gms baselines`.
#[derive(Debug, Args)]
pub struct BaselinesCmd {
    /// Victim model folder.
    #[arg(long, value_name = "DIR")]
    victim: PathBuf,
    /// Proxy model folder.
    #[arg(long, value_name = "DIR")]
    proxy: PathBuf,
    /// Pre-trained base (for task-arithmetic, ties, dare, dare-linear; without it only linear
    /// runs).
    #[arg(long, value_name = "DIR")]
    base: Option<PathBuf>,
    /// A GMS strategy (gms search --out) to score beside the baselines.
    #[arg(long, value_name = "FILE")]
    strategy: Option<PathBuf>,
    /// Clean proxy set D_c.
    #[arg(long, value_name = "FILE")]
    clean: Option<PathBuf>,
    /// Suspect proxy set D_p.
    #[arg(long, value_name = "FILE")]
    suspect: Option<PathBuf>,
    /// Clean test set.
    #[arg(long, value_name = "FILE")]
    test_clean: Option<PathBuf>,
    /// Poisoned test set.
    #[arg(long, value_name = "FILE")]
    test_poison: Option<PathBuf>,
    /// Accuracy weight α of the score.
    #[arg(long, default_value_t = crate::gms::DEFAULT_ALPHA, allow_negative_numbers = true)]
    alpha: f64,
    /// Compute device for scoring: auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Print one JSON object (all rows) on stdout instead of the Markdown table.
    #[arg(long)]
    json: bool,
}

/// One row of the table.
#[derive(Debug, Serialize)]
struct Row {
    /// `victim`, `proxy`, a method name or `gms`.
    model: String,
    /// Parameters, or the GMS cells.
    detail: String,
    #[serde(flatten)]
    score: ModelScore,
    /// Proxy metrics against the victim's under α.
    metrics: Option<crate::gms::Metrics>,
    /// Seconds to merge (or substitute) and score it.
    seconds: f64,
}

impl BaselinesCmd {
    /// Merges with every method, scores everything, prints the table.
    pub fn run(self) -> anyhow::Result<()> {
        let started = Instant::now();
        SearchParams::validated(self.alpha, crate::gms::DEFAULT_PATIENCE)?;
        let paths = ScoringPaths {
            clean: self.clean.as_deref(),
            suspect: self.suspect.as_deref(),
            test_clean: self.test_clean.as_deref(),
            test_poison: self.test_poison.as_deref(),
        };
        if paths.clean.is_none() && paths.test_clean.is_none() {
            bail!("give proxy sets (--clean/--suspect), test sets (--test-clean/--test-poison) or both: there is nothing to score on");
        }
        let bar = spinner(self.json);
        bar.set_message("loading models and datasets");
        let inputs = MergeInputs::open(&self.victim, &self.proxy, self.base.as_deref())?;
        let strategy = self
            .strategy
            .as_deref()
            .map(StrategyReport::read)
            .transpose()?;
        let device = open_device(&self.device)?;
        let victim = LoadedModel::load(&self.victim, &device)?;
        let proxy = LoadedModel::load(&self.proxy, &device)?;
        let sets = ScoringSets::load(
            &victim.text_encoder()?,
            victim.folder.config.num_labels,
            &paths,
            &device,
        )?;
        let mut rows: Vec<Row> = Vec::new();
        let mut push = |model: String, detail: String, score: ModelScore, t: Instant| {
            rows.push(Row {
                model,
                detail,
                score,
                metrics: None,
                seconds: t.elapsed().as_secs_f64(),
            })
        };
        bar.set_message("scoring the victim");
        let t = Instant::now();
        push(
            "victim".into(),
            String::new(),
            score_model(&victim.classifier, &sets)?,
            t,
        );
        bar.set_message("scoring the proxy");
        let t = Instant::now();
        push(
            "proxy".into(),
            "every tensor from the proxy".into(),
            score_model(&proxy.classifier, &sets)?,
            t,
        );
        if let Some(report) = &strategy {
            if report.num_layers != victim.folder.config.layers {
                bail!(
                    "{}: the strategy is for a {}-layer model, the victim has {}; use the strategy found for this victim",
                    self.strategy.as_deref().unwrap_or_else(|| std::path::Path::new("")).display(),
                    report.num_layers,
                    victim.folder.config.layers
                );
            }
            bar.set_message("scoring the GMS strategy");
            let t = Instant::now();
            let matrix = report.matrix();
            let model = weight_view(&victim.classifier, &proxy.classifier, &matrix);
            push(
                "gms".into(),
                format!("{matrix}"),
                score_model(&model, &sets)?,
                t,
            );
        }
        let mut skipped = Vec::new();
        for method in MergeMethod::ALL {
            if method.needs_base() && self.base.is_none() {
                skipped.push(method.name());
                continue;
            }
            let params = MergeParams::defaults(method);
            bar.set_message(format!("merging and scoring {}", params.describe()));
            let t = Instant::now();
            let merged = merge_models(&inputs, &params)?;
            let model = Classifier::from_tensors(
                &victim.folder.config,
                &merged.f32_tensors(&device)?,
                &self.victim,
            )?;
            push(
                method.name().into(),
                params.settings(),
                score_model(&model, &sets)?,
                t,
            );
        }
        bar.finish_and_clear();
        let victim_score = rows[0].score;
        for r in &mut rows {
            r.metrics = r.score.metrics(self.alpha, &victim_score);
        }
        if self.json {
            println!(
                "{}",
                serde_json::json!({
                    "alpha": self.alpha,
                    "rows": rows,
                    "skipped": skipped,
                    "wall_s": started.elapsed().as_secs_f64(),
                })
            );
            return Ok(());
        }
        print_table(&rows, self.alpha);
        if !skipped.is_empty() {
            println!(
                "\nnot run (they need --base, the pre-trained checkpoint): {}",
                skipped.join(", ")
            );
        }
        println!("\n{:.1} s in all", started.elapsed().as_secs_f64());
        Ok(())
    }
}

/// The rows as a Markdown table; columns without data are left out.
fn print_table(rows: &[Row], alpha: f64) {
    let proxy = rows.iter().any(|r| r.metrics.is_some());
    let test = rows.iter().any(|r| r.score.test.is_some());
    let mut head = vec!["model".to_string(), "parameters".to_string()];
    if proxy {
        head.extend([
            "proxy acc".into(),
            "proxy asr".into(),
            format!("score (α {alpha})"),
        ]);
    }
    if test {
        head.extend(["test CACC".into(), "test ASR".into()]);
    }
    println!("| {} |", head.join(" | "));
    println!("|{}", "---|".repeat(head.len()));
    for r in rows {
        let mut cells = vec![r.model.clone(), r.detail.clone()];
        if proxy {
            match &r.metrics {
                Some(m) => cells.extend([
                    format!("{:.3}", m.acc),
                    format!("{:.3}", m.asr),
                    format!("{:.4}", m.score),
                ]),
                None => cells.extend(["".into(), "".into(), "".into()]),
            }
        }
        if test {
            match &r.score.test {
                Some(t) => cells.extend([
                    format!(
                        "{:.2} % ({}/{})",
                        t.cacc * 100.0,
                        t.clean_correct,
                        t.clean_total
                    ),
                    format!(
                        "{:.2} % ({}/{})",
                        t.asr * 100.0,
                        t.poison_hits,
                        t.poison_total
                    ),
                ]),
                None => cells.extend(["".into(), "".into()]),
            }
        }
        println!("| {} |", cells.join(" | "));
    }
}
