//! `config.json` of a Hugging Face encoder classifier, reduced to what the forward pass needs.

use crate::error::{GmsError, Result};
use crate::model::arch::Architecture;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::Path;

/// The feed-forward activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Activation {
    /// Exact GELU (erf form), Hugging Face `gelu`.
    GeluErf,
    /// Tanh-approximated GELU (`gelu_new`, `gelu_pytorch_tanh`).
    GeluTanh,
    /// `relu`.
    Relu,
}

/// Shape and hyper-parameters of an encoder classifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Which encoder family.
    pub architecture: Architecture,
    /// Hidden size.
    pub hidden: usize,
    /// Number of transformer layers.
    pub layers: usize,
    /// Attention heads.
    pub heads: usize,
    /// Feed-forward inner size.
    pub intermediate: usize,
    /// Vocabulary size of the word embeddings.
    pub vocab_size: usize,
    /// Number of position embeddings.
    pub max_positions: usize,
    /// Token-type vocabulary (0 for DistilBERT).
    pub type_vocab_size: usize,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// Padding token id (RoBERTa positions start after it).
    pub pad_token_id: u32,
    /// Number of output labels.
    pub num_labels: usize,
    /// Feed-forward activation.
    pub activation: Activation,
    /// Storage dtype named by the config (`dtype` / `torch_dtype`), if any.
    pub dtype: Option<String>,
}

/// More layers than any model has (BERT-large 24, 70B decoders 80): a config, strategy or
/// journal claiming more is corrupt, and is refused before anything is sized by it.
pub const MAX_LAYERS: usize = 4096;

/// Refuses a layer count of 0 or above [`MAX_LAYERS`].
pub fn check_layers(layers: usize) -> std::result::Result<(), String> {
    if layers == 0 || layers > MAX_LAYERS {
        return Err(format!(
            "{layers} layers is out of range (1 to {MAX_LAYERS})"
        ));
    }
    Ok(())
}

/// Fails unless `heads` attention heads split a hidden size of `hidden` evenly (each head
/// takes `hidden / heads` dimensions).
pub fn check_heads(hidden: usize, heads: usize) -> std::result::Result<(), String> {
    if heads == 0 || !hidden.is_multiple_of(heads) {
        return Err(format!(
            "hidden size {hidden} is not divisible by {heads} heads"
        ));
    }
    Ok(())
}

impl ModelConfig {
    /// Reads and validates `config.json`.
    pub fn from_file(path: &Path) -> Result<ModelConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                GmsError::Missing {
                    path: path.to_path_buf(),
                    what: "model config",
                    fix: "point --model/--victim/--proxy at a Hugging Face model folder",
                }
            } else {
                GmsError::bad_file(path, e.to_string(), "check the file's permissions")
            }
        })?;
        let value: Value = serde_json::from_str(&text).map_err(|e| {
            GmsError::bad_file(
                path,
                format!("invalid JSON ({e})"),
                "re-save the model with transformers",
            )
        })?;
        Self::from_json(&value).map_err(|problem| {
            GmsError::bad_file(path, problem, "gms reads BERT, RoBERTa/XLM-R and DistilBERT sequence classifiers saved by transformers")
        })
    }

    /// Builds a config from parsed JSON; the error is a description of the problem.
    pub fn from_json(v: &Value) -> std::result::Result<ModelConfig, String> {
        let class = v["architectures"]
            .as_array()
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            .ok_or("no \"architectures\" entry")?;
        let architecture = Architecture::from_hf_class(class)
            .ok_or_else(|| format!("unsupported architecture {class}"))?;
        let int = |keys: &[&str]| -> std::result::Result<usize, String> {
            keys.iter()
                .find_map(|k| v[*k].as_u64())
                .map(|n| n as usize)
                .ok_or_else(|| format!("missing integer \"{}\"", keys[0]))
        };
        let distil = architecture == Architecture::DistilBert;
        let (hidden, layers, heads, intermediate) = if distil {
            (
                int(&["dim"])?,
                int(&["n_layers"])?,
                int(&["n_heads"])?,
                int(&["hidden_dim"])?,
            )
        } else {
            (
                int(&["hidden_size"])?,
                int(&["num_hidden_layers"])?,
                int(&["num_attention_heads"])?,
                int(&["intermediate_size"])?,
            )
        };
        check_heads(hidden, heads)?;
        check_layers(layers)?;
        let act_name = v[if distil { "activation" } else { "hidden_act" }]
            .as_str()
            .unwrap_or("gelu");
        let activation = match act_name {
            "gelu" => Activation::GeluErf,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Activation::GeluTanh,
            "relu" => Activation::Relu,
            other => return Err(format!("unsupported activation {other}")),
        };
        let num_labels = match v["id2label"].as_object() {
            Some(m) if !m.is_empty() => m.len(),
            _ => v["num_labels"].as_u64().unwrap_or(2) as usize,
        };
        Ok(ModelConfig {
            architecture,
            hidden,
            layers,
            heads,
            intermediate,
            vocab_size: int(&["vocab_size"])?,
            max_positions: int(&["max_position_embeddings"])?,
            type_vocab_size: if distil {
                0
            } else {
                int(&["type_vocab_size"]).unwrap_or(2)
            },
            // DistilBERT hard-codes 1e-12; BERT's default is 1e-12, RoBERTa's configs say 1e-5.
            layer_norm_eps: v["layer_norm_eps"].as_f64().unwrap_or(1e-12),
            pad_token_id: v["pad_token_id"].as_u64().unwrap_or(0) as u32,
            num_labels,
            activation,
            dtype: v["dtype"]
                .as_str()
                .or_else(|| v["torch_dtype"].as_str())
                .map(str::to_string),
        })
    }

    /// What differs between two configs in the substitutable body, if anything.
    pub fn body_mismatch(&self, other: &ModelConfig) -> Option<String> {
        let pairs = [
            ("hidden size", self.hidden, other.hidden),
            ("layer count", self.layers, other.layers),
            ("attention heads", self.heads, other.heads),
            ("intermediate size", self.intermediate, other.intermediate),
        ];
        if self.architecture != other.architecture {
            return Some(format!(
                "architecture {} vs {}",
                self.architecture.hf_class(),
                other.architecture.hf_class()
            ));
        }
        pairs
            .iter()
            .find(|(_, a, b)| a != b)
            .map(|(what, a, b)| format!("{what} {a} vs {b}"))
    }
}
