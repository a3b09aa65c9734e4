//! `gms train`: fine-tune a classifier from a base model, or train one from a config.

use crate::device::open_device;
use crate::train::{train, Progress, Start, TrainOptions};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;

/// Peak learning rate when fine-tuning (the benchmark kit's recipe).
const FINE_TUNE_LR: f64 = 5e-5;
/// Peak learning rate from scratch: small random models need a larger step.
const SCRATCH_LR: f64 = 5e-4;

/// Arguments of `gms train`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("start").required(true).args(["base", "config"])))]
pub struct TrainCmd {
    /// Fine-tune this Hugging Face model folder.
    #[arg(long, value_name = "DIR")]
    base: Option<PathBuf>,
    /// Train from scratch with this config.json (a WordPiece vocabulary is trained on --data).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Training set (JSONL/TSV/CSV).
    #[arg(long, value_name = "FILE")]
    data: PathBuf,
    /// Output model folder (must not exist).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Passes over the data.
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    /// Peak learning rate, decayed linearly to 0 [default: 5e-5 with --base, 5e-4 with --config].
    #[arg(long)]
    lr: Option<f64>,
    /// Rows per batch.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Tokens per row, special tokens included.
    #[arg(long, default_value_t = crate::model::tokenize::MAX_TOKENS)]
    max_len: usize,
    /// Keep the embeddings fixed (as the benchmark kit's victims were trained).
    #[arg(long)]
    freeze_embeddings: bool,
    /// Seed of the shuffling and of the initial weights.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Compute device: auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
}

impl TrainCmd {
    /// Trains, showing a progress bar with the loss, and writes the model folder.
    pub fn run(self) -> anyhow::Result<()> {
        let (start, default_lr) = match (&self.base, &self.config) {
            (Some(b), _) => (Start::Base(b.clone()), FINE_TUNE_LR),
            (None, Some(c)) => (Start::Config(c.clone()), SCRATCH_LR),
            (None, None) => anyhow::bail!("give --base DIR or --config FILE"),
        };
        let opts = TrainOptions {
            start,
            data: self.data.clone(),
            out: self.out.clone(),
            epochs: self.epochs,
            lr: self.lr.unwrap_or(default_lr),
            batch: self.batch,
            max_len: self.max_len,
            freeze_embeddings: self.freeze_embeddings,
            seed: self.seed,
        };
        let device = open_device(&self.device)?;
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {pos}/{len} steps  {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_message("tokenizing");
        // indicatif hides println when stderr is not a terminal; logs (scripts) still want the lines.
        let say = |line: String| {
            if bar.is_hidden() {
                eprintln!("{line}");
            } else {
                bar.println(line);
            }
        };
        let mut recent = Vec::new();
        let report = train(&opts, &device, &mut |p| match p {
            Progress::Started { steps, trainable } => {
                bar.set_length(*steps as u64);
                say(format!("{trainable} trainable parameters, {steps} steps"));
            }
            Progress::Step { epoch, loss, .. } => {
                recent.push(*loss);
                if recent.len() > 20 {
                    recent.remove(0);
                }
                let mean = recent.iter().sum::<f32>() / recent.len() as f32;
                bar.set_message(format!("epoch {epoch}  loss {mean:.4}"));
                bar.inc(1);
            }
            Progress::Epoch(s) => say(format!(
                "epoch {}: mean loss {:.4}, training accuracy {:.2}%",
                s.epoch,
                s.loss,
                100.0 * s.accuracy
            )),
        })?;
        bar.finish_and_clear();
        println!("wrote {} ({} weights)", report.out.display(), report.dtype);
        Ok(())
    }
}
