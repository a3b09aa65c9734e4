//! `gms inspect`: what a model folder (or PEFT adapter folder) holds.

use crate::model::decoder_folder::LoadedDecoder;
use crate::model::{letters, LoadedModel, ModelArchitecture, ENCODER_MODULES};
use candle_core::Device;
use clap::Args;
use serde_json::json;
use std::path::PathBuf;

/// Arguments of `gms inspect`.
#[derive(Debug, Args)]
pub struct InspectCmd {
    /// Model folder, or a PEFT LoRA adapter folder.
    #[arg(long, value_name = "DIR")]
    model: PathBuf,
    /// Base model folder of an adapter; default: its base_model_name_or_path.
    #[arg(long, value_name = "DIR")]
    base: Option<PathBuf>,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

impl InspectCmd {
    /// Loads (validating every tensor) and describes the model.
    pub fn run(self) -> anyhow::Result<()> {
        if crate::model::source::is_decoder(&self.model) {
            return self.decoder();
        }
        if self.base.is_some() {
            anyhow::bail!(
                "--base is for PEFT adapters; {} is an encoder model folder",
                self.model.display()
            );
        }
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
        let modules: Vec<(char, String)> = ENCODER_MODULES
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

    /// Describes a decoder: a PEFT adapter over its base, or a fine-tuned classifier.
    fn decoder(&self) -> anyhow::Result<()> {
        let model = LoadedDecoder::load(&self.model, self.base.as_deref(), &Device::Cpu)?;
        let c = &model.base.config;
        let arch = ModelArchitecture::Decoder(c.architecture);
        let b = &model.base;
        let base_params: usize = b.embed_tokens.elem_count()
            + b.norm.weight.elem_count()
            + b.layers
                .iter()
                .map(|l| {
                    l.modules
                        .iter()
                        .map(|m| {
                            m.weight.elem_count() + m.bias.as_ref().map_or(0, |b| b.elem_count())
                        })
                        .sum::<usize>()
                        + l.input_norm.weight.elem_count()
                        + l.post_attention_norm.weight.elem_count()
                })
                .sum::<usize>();
        let dtype = format!("{:?}", b.embed_tokens.dtype()).to_lowercase();
        let tokenizer = model
            .text_encoder()
            .map(|_| "ok")
            .unwrap_or("missing or unusable");
        let modules: Vec<(String, String)> = arch
            .modules()
            .iter()
            .map(|&m| {
                (
                    m.letter().to_string(),
                    m.decoder_path(0).replacen(".0.", ".{i}.", 1),
                )
            })
            .collect();
        let adapter = model.adapter.as_ref().map(|a| {
            let pairs = a.adapted_cells();
            let params: usize = a
                .layers
                .iter()
                .flatten()
                .flatten()
                .map(|p| p.a.elem_count() + p.b.elem_count())
                .sum::<usize>()
                + a.score.as_ref().map_or(0, |s| s.weight.elem_count());
            let targets: Vec<crate::model::Module> = arch
                .modules()
                .iter()
                .copied()
                .enumerate()
                .filter(|(i, _)| a.layers.iter().any(|l| l[*i].is_some()))
                .map(|(_, m)| m)
                .collect();
            json!({
                "dir": a.dir, "r": a.config.r, "lora_alpha": a.config.lora_alpha,
                "use_rslora": a.config.use_rslora, "scale": a.config.scale(),
                "targets": letters(&targets), "lora_pairs": pairs, "parameters": params,
                "score_head": a.score.as_ref().map(|s| s.weight.dims().to_vec()),
            })
        });
        let summary = json!({
            "architecture": arch.hf_class(), "family": "decoder",
            "kind": if adapter.is_some() { "peft-lora-adapter" } else { "fine-tuned" },
            "base": model.base_folder.dir, "layers": c.layers, "hidden": c.hidden,
            "heads": c.heads, "kv_heads": c.kv_heads, "head_dim": c.head_dim,
            "intermediate": c.intermediate, "labels": model.classifier.num_labels(),
            "vocab_size": c.vocab_size, "stored_dtype": dtype, "base_parameters": base_params,
            "weight_files": model.base_folder.weight_files, "adapter": adapter,
            "modules": modules.iter().map(|(l, p)| json!({"letter": l, "path": p})).collect::<Vec<_>>(),
        });
        if self.json {
            println!("{summary}");
            return Ok(());
        }
        println!("{}", self.model.display());
        match &adapter {
            Some(a) => println!(
                "  kind          PEFT LoRA adapter over {} (r {}, lora_alpha {}, scale {}, modules {}, {} LoRA pairs, {:.2} M parameters, score head {})",
                model.base_folder.dir.display(),
                a["r"], a["lora_alpha"], a["scale"], a["targets"].as_str().unwrap_or(""),
                a["lora_pairs"], a["parameters"].as_u64().unwrap_or(0) as f64 / 1e6,
                a["score_head"]
            ),
            None => println!("  kind          fine-tuned classifier"),
        }
        println!("  architecture  {}", arch.hf_class());
        println!(
            "  layers        {} (hidden {}, {} heads / {} key-value heads of {}, SwiGLU {})",
            c.layers, c.hidden, c.heads, c.kv_heads, c.head_dim, c.intermediate
        );
        println!("  labels        {}", model.classifier.num_labels());
        println!("  stored dtype  {dtype}");
        println!(
            "  parameters    {base_params} ({:.1} M) in the base",
            base_params as f64 / 1e6
        );
        println!("  weight files  {}", model.base_folder.weight_files.len());
        println!("  tokenizer     {tokenizer}");
        println!(
            "  substitutable modules per layer i ({}):",
            if adapter.is_some() {
                "the LoRA pair"
            } else {
                "weight + bias"
            }
        );
        for (letter, path) in modules {
            println!("    {letter}  {path}");
        }
        Ok(())
    }
}
