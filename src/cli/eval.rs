//! `gms eval`: accuracy of a model on a dataset.

use crate::device::open_device;
use crate::gms::session::read_dataset;
use crate::model::encoder::{argmax_rows, count_matches};
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
    /// Also write each row's logits and prediction as JSONL (file order).
    #[arg(long, value_name = "FILE")]
    predictions: Option<PathBuf>,
}

impl EvalCmd {
    /// Evaluates and prints the accuracy.
    pub fn run(self) -> anyhow::Result<()> {
        let device = open_device(&self.device)?;
        let model = LoadedModel::load(&self.model, &device)?;
        let data = read_dataset(&self.data, model.folder.config.num_labels)?;
        let set = model.text_encoder()?.encode_set(&data.examples, &device)?;
        let mut correct = 0;
        let mut rows: Vec<Option<(Vec<f32>, u32)>> = vec![None; set.len];
        for (batch, logits) in set.batches.iter().zip(model.classifier.set_logits(&set)?) {
            let preds = argmax_rows(&logits)?;
            correct += count_matches(&preds, &batch.labels);
            if self.predictions.is_some() {
                let values = logits.to_dtype(candle_core::DType::F32)?.to_vec2::<f32>()?;
                for ((&row, v), p) in batch.rows.iter().zip(values).zip(&preds) {
                    rows[row] = Some((v, *p));
                }
            }
        }
        if let Some(path) = &self.predictions {
            let mut out = String::new();
            for (e, r) in data.examples.iter().zip(&rows) {
                let (logits, prediction) = r.as_ref().expect("every row was in a batch");
                let line = serde_json::json!({"line": e.line, "label": e.label, "prediction": prediction, "logits": logits});
                out.push_str(&format!("{line}\n"));
            }
            crate::atomic::write_file(path, out.as_bytes())?;
        }
        let accuracy = correct as f64 / set.len as f64;
        if self.json {
            println!(
                "{}",
                serde_json::json!({"n": set.len, "correct": correct, "accuracy": accuracy})
            );
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
