//! `gms inspect`: what a model folder holds.

use crate::model::{LoadedModel, Module};
use candle_core::Device;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `gms inspect`.
#[derive(Debug, Args)]
pub struct InspectCmd {
    /// Model folder.
    #[arg(long, value_name = "DIR")]
    model: PathBuf,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

impl InspectCmd {
    /// Loads (validating every tensor) and describes the model.
    pub fn run(self) -> anyhow::Result<()> {
        let model = LoadedModel::load(&self.model, &Device::Cpu)?;
        let c = &model.folder.config;
        let params: usize = model
            .classifier
            .named_tensors()
            .iter()
            .map(|(_, t)| t.elem_count())
            .sum();
        let dtype = model.folder.stored_dtype()?;
        let vocab = model
            .text_encoder()
            .map(|_| "ok")
            .unwrap_or("missing or unusable");
        let modules: Vec<(char, String)> = Module::ALL
            .iter()
            .map(|&m| {
                (
                    m.letter(),
                    format!(
                        "{}{{i}}.{}",
                        c.architecture.layer_prefix(0).trim_end_matches("0."),
                        c.architecture.module_suffix(m)
                    ),
                )
            })
            .collect();
        if self.json {
            println!(
                "{}",
                serde_json::json!({
                    "architecture": c.architecture.hf_class(), "layers": c.layers, "hidden": c.hidden,
                    "heads": c.heads, "intermediate": c.intermediate, "labels": c.num_labels,
                    "vocab_size": c.vocab_size, "stored_dtype": format!("{dtype:?}").to_lowercase(),
                    "parameters": params, "weight_files": model.folder.weight_files,
                    "modules": modules.iter().map(|(l, p)| serde_json::json!({"letter": l.to_string(), "path": p})).collect::<Vec<_>>(),
                })
            );
            return Ok(());
        }
        println!("{}", self.model.display());
        println!("  architecture  {}", c.architecture.hf_class());
        println!(
            "  layers        {} (hidden {}, {} heads, FFN {})",
            c.layers, c.hidden, c.heads, c.intermediate
        );
        println!("  labels        {}", c.num_labels);
        println!("  stored dtype  {}", format!("{dtype:?}").to_lowercase());
        println!("  parameters    {params} ({:.1} M)", params as f64 / 1e6);
        println!("  weight files  {}", model.folder.weight_files.len());
        println!("  tokenizer     {vocab}");
        println!("  substitutable modules (weight + bias) per layer i:");
        for (letter, path) in modules {
            println!("    {letter}  {path}");
        }
        Ok(())
    }
}
