//! `gms eval`: accuracy of a model on a dataset.

use crate::device::open_device;
use crate::gms::session::read_dataset;
use crate::model::encoder::argmax_rows;
use crate::model::LoadedModel;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `gms eval`.
#[derive(Debug, Args)]
pub struct EvalCmd {
    /// Model folder.
    #[arg(long, value_name = "DIR")]
    model: PathBuf,
    /// Labelled dataset (JSONL/TSV/CSV).
    #[arg(long, value_name = "FILE")]
    data: PathBuf,
    /// Print {"n","correct","accuracy"} as JSON.
    #[arg(long)]
    json: bool,
    /// Compute device: auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
}

impl EvalCmd {
    /// Evaluates and prints the accuracy.
    pub fn run(self) -> anyhow::Result<()> {
        let device = open_device(&self.device)?;
        let model = LoadedModel::load(&self.model, &device)?;
        let data = read_dataset(&self.data, model.folder.config.num_labels)?;
        let set = model.text_encoder()?.encode_set(&data.examples, &device)?;
        let mut correct = 0;
        for batch in &set.batches {
            let preds = argmax_rows(&model.classifier.logits(&batch.input)?)?;
            correct += preds.iter().zip(&batch.labels).filter(|(p, l)| p == l).count();
        }
        let accuracy = correct as f64 / set.len as f64;
        if self.json {
            println!("{}", serde_json::json!({"n": set.len, "correct": correct, "accuracy": accuracy}));
        } else {
            println!(
                "{} on {}: {correct}/{} correct, accuracy {:.2}%",
                self.model.display(),
                self.data.display(),
                set.len,
                accuracy * 100.0
            );
        }
        Ok(())
    }
}
