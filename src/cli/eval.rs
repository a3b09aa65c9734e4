//! `gms eval`: accuracy of a model on a dataset.

use crate::device::open_device;
use crate::gms::session::read_dataset;
use crate::model::decoder_folder::LoadedDecoder;
use crate::model::encoder::{argmax_rows, count_matches};
use crate::model::tokenize::EncodedSet;
use crate::model::LoadedModel;
use candle_core::{Device, Tensor};
use clap::Args;
use std::path::PathBuf;

/// Arguments of `gms eval`.
#[derive(Debug, Args)]
pub struct EvalCmd {
    /// Model folder, or a PEFT LoRA adapter folder.
    #[arg(long, value_name = "DIR")]
    model: PathBuf,
    /// Base model folder of an adapter; default: its base_model_name_or_path.
    #[arg(long, value_name = "DIR")]
    base: Option<PathBuf>,
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
        let (data, set, all_logits) = self.logits(&device)?;
        let mut correct = 0;
        let mut rows: Vec<Option<(Vec<f32>, u32)>> = vec![None; set.len];
        for (batch, logits) in set.batches.iter().zip(all_logits) {
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

    /// The dataset, its batches and their logits, from an encoder or a decoder.
    fn logits(
        &self,
        device: &Device,
    ) -> anyhow::Result<(crate::data::Dataset, EncodedSet, Vec<Tensor>)> {
        if crate::model::source::is_decoder(&self.model) {
            let model = LoadedDecoder::load(&self.model, self.base.as_deref(), device)?;
            let data = read_dataset(&self.data, model.classifier.num_labels())?;
            let set = model.text_encoder()?.encode_set(&data.examples, device)?;
            let logits = model.classifier.set_logits(&set)?;
            return Ok((data, set, logits));
        }
        if self.base.is_some() {
            anyhow::bail!(
                "--base is for PEFT adapters; {} is an encoder model folder",
                self.model.display()
            );
        }
        let model = LoadedModel::load(&self.model, device)?;
        let data = read_dataset(&self.data, model.folder.config.num_labels)?;
        let set = model.text_encoder()?.encode_set(&data.examples, device)?;
        let logits = model.classifier.set_logits(&set)?;
        Ok((data, set, logits))
    }
}
