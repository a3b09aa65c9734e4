//! `config.json` of a decoder LLM (Llama, Mistral, Qwen2), reduced to what the forward pass
//! needs.
//!
//! gms parses it itself rather than through candle-transformers' config types: those read
//! `rope_theta` only at the top level (transformers 5 moved it into `rope_parameters`, so
//! candle's `LlamaConfig` silently falls back to θ = 10 000 on the LLM kit, and its Mistral and
//! Qwen2 configs refuse the file), and they carry no `pad_token_id`, label count, per-layer
//! sliding windows, attention/MLP biases or `head_dim` for Llama. See docs/decoders.md.

use crate::error::{GmsError, Result};
use crate::model::arch::DecoderArchitecture;
use serde_json::Value;
use std::path::Path;

/// How rotary frequencies are rescaled (`rope_parameters` / `rope_scaling`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RopeScaling {
    /// Plain RoPE (`rope_type: default`).
    None,
    /// Frequencies divided by `factor` (`rope_type: linear`).
    Linear {
        /// The divisor.
        factor: f64,
    },
    /// Llama 3.1's band-wise rescaling (`rope_type: llama3`).
    Llama3 {
        /// Divisor of the low-frequency band.
        factor: f64,
        /// Wavelengths above `original / low_freq_factor` are divided by `factor`.
        low_freq_factor: f64,
        /// Wavelengths below `original / high_freq_factor` stay as they are.
        high_freq_factor: f64,
        /// Context length of pre-training.
        original_max_positions: f64,
    },
}

/// Shape and hyper-parameters of a decoder LLM.
#[derive(Debug, Clone, PartialEq)]
pub struct DecoderConfig {
    /// Which decoder family.
    pub architecture: DecoderArchitecture,
    /// Hidden size.
    pub hidden: usize,
    /// Number of transformer layers.
    pub layers: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (fewer than `heads` with grouped-query attention).
    pub kv_heads: usize,
    /// Size of one attention head.
    pub head_dim: usize,
    /// SwiGLU inner size (gate/up output).
    pub intermediate: usize,
    /// Rows of the token embedding.
    pub vocab_size: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// RoPE base θ.
    pub rope_theta: f64,
    /// RoPE frequency rescaling.
    pub rope_scaling: RopeScaling,
    /// Whether q/k/v projections have biases (Qwen2; Llama with `attention_bias`).
    pub qkv_bias: bool,
    /// Whether o_proj has a bias (Llama with `attention_bias`).
    pub o_bias: bool,
    /// Whether gate/up/down have biases (Llama with `mlp_bias`).
    pub mlp_bias: bool,
    /// Sliding attention window of each layer (`None`: full causal attention).
    pub layer_windows: Vec<Option<usize>>,
    /// `pad_token_id`, if the config has one.
    pub pad_token_id: Option<u32>,
    /// The (first) `eos_token_id`, if any.
    pub eos_token_id: Option<u32>,
    /// Output labels, when the config describes a sequence classifier.
    pub num_labels: Option<usize>,
    /// Whether the checkpoint is a `…ForSequenceClassification` (has a `score` head).
    pub is_classifier: bool,
    /// Storage dtype named by the config (`dtype` / `torch_dtype`), if any.
    pub dtype: Option<String>,
}

impl DecoderConfig {
    /// Reads and validates `config.json`.
    pub fn from_file(path: &Path) -> Result<DecoderConfig> {
        let value = crate::model::config::read_config_json(
            path,
            "decoder model config",
            "point at a Hugging Face model folder (config.json, tokenizer.json, *.safetensors)",
        )?;
        Self::from_json(&value).map_err(|problem| {
            GmsError::bad_file(
                path,
                problem,
                "gms reads Llama, Mistral and Qwen2 decoders (…ForCausalLM or …ForSequenceClassification) saved by transformers",
            )
        })
    }

    /// Builds a config from parsed JSON; the error is a description of the problem.
    pub fn from_json(v: &Value) -> std::result::Result<DecoderConfig, String> {
        let architecture = DecoderArchitecture::from_config(v).ok_or_else(|| {
            let class = v["architectures"]
                .as_array()
                .and_then(|a| a.first())
                .and_then(Value::as_str)
                .unwrap_or("?");
            let model_type = v["model_type"].as_str().unwrap_or("?");
            format!("unsupported decoder architecture {class} (model_type {model_type})")
        })?;
        let int = |key: &str| -> std::result::Result<usize, String> {
            v[key]
                .as_u64()
                .map(|n| n as usize)
                .ok_or_else(|| format!("missing integer \"{key}\""))
        };
        let hidden = int("hidden_size")?;
        let layers = int("num_hidden_layers")?;
        crate::model::config::check_layers(layers)?;
        let heads = int("num_attention_heads")?;
        let kv_heads = v["num_key_value_heads"]
            .as_u64()
            .map_or(heads, |n| n as usize);
        if heads == 0 || kv_heads == 0 || !heads.is_multiple_of(kv_heads) {
            return Err(format!(
                "{heads} attention heads cannot be grouped over {kv_heads} key/value heads"
            ));
        }
        let head_dim = match v["head_dim"].as_u64() {
            Some(d) => d as usize,
            None if hidden.is_multiple_of(heads) => hidden / heads,
            None => {
                return Err(format!(
                    "hidden size {hidden} is not divisible by {heads} heads"
                ))
            }
        };
        if head_dim % 2 != 0 {
            return Err(format!("head_dim {head_dim} is odd; RoPE needs pairs"));
        }
        let act = v["hidden_act"].as_str().unwrap_or("silu");
        if !matches!(act, "silu" | "swish") {
            return Err(format!(
                "unsupported activation {act} (the SwiGLU MLP needs silu)"
            ));
        }
        let (rope_theta, rope_scaling) = rope(v)?;
        let (qkv_bias, o_bias, mlp_bias) = match architecture {
            DecoderArchitecture::Llama => {
                let attn = v["attention_bias"].as_bool().unwrap_or(false);
                (attn, attn, v["mlp_bias"].as_bool().unwrap_or(false))
            }
            DecoderArchitecture::Mistral => (false, false, false),
            DecoderArchitecture::Qwen2 => (true, false, false),
        };
        let layer_windows = layer_windows(v, architecture, layers)?;
        let first_id = |key: &str| match &v[key] {
            Value::Number(n) => n.as_u64().map(|n| n as u32),
            Value::Array(a) => a.first().and_then(Value::as_u64).map(|n| n as u32),
            _ => None,
        };
        let class = v["architectures"]
            .as_array()
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            .unwrap_or("");
        let is_classifier = class.ends_with("ForSequenceClassification");
        let num_labels = is_classifier.then(|| match v["id2label"].as_object() {
            Some(m) if !m.is_empty() => m.len(),
            _ => v["num_labels"].as_u64().unwrap_or(2) as usize,
        });
        Ok(DecoderConfig {
            architecture,
            hidden,
            layers,
            heads,
            kv_heads,
            head_dim,
            intermediate: int("intermediate_size")?,
            vocab_size: int("vocab_size")?,
            // transformers' LlamaConfig default; Mistral and Qwen2 configs always carry it.
            rms_norm_eps: v["rms_norm_eps"].as_f64().unwrap_or(1e-6),
            rope_theta,
            rope_scaling,
            qkv_bias,
            o_bias,
            mlp_bias,
            layer_windows,
            pad_token_id: first_id("pad_token_id"),
            eos_token_id: first_id("eos_token_id"),
            num_labels,
            is_classifier,
            dtype: v["dtype"]
                .as_str()
                .or_else(|| v["torch_dtype"].as_str())
                .map(str::to_string),
        })
    }

    /// The id whose positions count as padding when the head picks each row's last token:
    /// `pad_token_id`, else `eos_token_id` (what the reference sets when a tokenizer has no
    /// pad token, docs/algorithm.md §Evaluation conventions).
    pub fn pad_id(&self) -> Option<u32> {
        self.pad_token_id.or(self.eos_token_id)
    }

    /// Width of the q_proj output (`heads × head_dim`).
    pub fn q_width(&self) -> usize {
        self.heads * self.head_dim
    }

    /// Width of the k_proj/v_proj output (`kv_heads × head_dim`).
    pub fn kv_width(&self) -> usize {
        self.kv_heads * self.head_dim
    }

    /// What differs between two configs in the substitutable body, if anything.
    pub fn body_mismatch(&self, other: &DecoderConfig) -> Option<String> {
        if self.architecture != other.architecture {
            return Some(format!(
                "architecture {} vs {}",
                self.architecture.model_type(),
                other.architecture.model_type()
            ));
        }
        [
            ("hidden size", self.hidden, other.hidden),
            ("layer count", self.layers, other.layers),
            ("attention heads", self.heads, other.heads),
            ("key/value heads", self.kv_heads, other.kv_heads),
            ("head size", self.head_dim, other.head_dim),
            ("intermediate size", self.intermediate, other.intermediate),
        ]
        .iter()
        .find(|(_, a, b)| a != b)
        .map(|(what, a, b)| format!("{what} {a} vs {b}"))
    }
}

/// θ and scaling from transformers 5's `rope_parameters`, else 4.x's top-level `rope_theta` and
/// `rope_scaling`.
fn rope(v: &Value) -> std::result::Result<(f64, RopeScaling), String> {
    let params = if v["rope_parameters"].is_object() {
        &v["rope_parameters"]
    } else {
        &v["rope_scaling"]
    };
    // transformers' default θ for all three families.
    let theta = params["rope_theta"]
        .as_f64()
        .or_else(|| v["rope_theta"].as_f64())
        .unwrap_or(10_000.0);
    let kind = params["rope_type"]
        .as_str()
        .or_else(|| params["type"].as_str())
        .unwrap_or("default");
    let num = |key: &str| -> std::result::Result<f64, String> {
        params[key]
            .as_f64()
            .ok_or_else(|| format!("rope_type {kind} needs a number \"{key}\""))
    };
    if params["partial_rotary_factor"]
        .as_f64()
        .or_else(|| v["partial_rotary_factor"].as_f64())
        .is_some_and(|f| f != 1.0)
    {
        return Err("partial rotary embeddings are not supported".into());
    }
    let scaling = match kind {
        "default" => RopeScaling::None,
        "linear" => RopeScaling::Linear {
            factor: num("factor")?,
        },
        "llama3" => RopeScaling::Llama3 {
            factor: num("factor")?,
            low_freq_factor: num("low_freq_factor")?,
            high_freq_factor: num("high_freq_factor")?,
            original_max_positions: num("original_max_position_embeddings")?,
        },
        other => {
            return Err(format!(
                "unsupported rope_type {other} (gms supports default, linear and llama3)"
            ))
        }
    };
    Ok((theta, scaling))
}

/// Each layer's sliding window, as transformers decides it: `layer_types` when the config
/// lists them; else Mistral's `sliding_window` on every layer, and Qwen2's on layers from
/// `max_window_layers` on when `use_sliding_window` is set.
fn layer_windows(
    v: &Value,
    arch: DecoderArchitecture,
    layers: usize,
) -> std::result::Result<Vec<Option<usize>>, String> {
    let window = v["sliding_window"].as_u64().map(|w| w as usize);
    if window == Some(0) {
        return Err("sliding_window 0 leaves no key to attend to".into());
    }
    let window = match arch {
        DecoderArchitecture::Llama => None,
        DecoderArchitecture::Mistral => window,
        DecoderArchitecture::Qwen2 => {
            window.filter(|_| v["use_sliding_window"].as_bool() == Some(true))
        }
    };
    if let Some(types) = v["layer_types"].as_array() {
        if types.len() != layers {
            return Err(format!(
                "layer_types lists {} layers, num_hidden_layers says {layers}",
                types.len()
            ));
        }
        return types
            .iter()
            .map(|t| match t.as_str() {
                Some("full_attention") => Ok(None),
                Some("sliding_attention") => Ok(window),
                other => Err(format!("unsupported layer type {other:?}")),
            })
            .collect();
    }
    Ok(match arch {
        DecoderArchitecture::Qwen2 => {
            let from = v["max_window_layers"].as_u64().unwrap_or(28) as usize;
            (0..layers).map(|l| window.filter(|_| l >= from)).collect()
        }
        _ => vec![window; layers],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kit_like() -> Value {
        json!({
            "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 576,
            "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3,
            "head_dim": 64, "intermediate_size": 1536, "vocab_size": 49152,
            "rms_norm_eps": 1e-5, "pad_token_id": 2, "eos_token_id": 2,
            "rope_parameters": {"rope_theta": 100000.0, "rope_type": "default"}
        })
    }

    #[test]
    fn reads_transformers5_rope_parameters() {
        let c = DecoderConfig::from_json(&kit_like()).unwrap();
        assert_eq!(c.rope_theta, 100_000.0);
        assert_eq!(c.rope_scaling, RopeScaling::None);
        assert_eq!((c.heads, c.kv_heads, c.head_dim), (9, 3, 64));
        assert_eq!(c.pad_id(), Some(2));
        assert_eq!(c.num_labels, None);
        assert!(c.layer_windows.iter().all(Option::is_none));
    }

    #[test]
    fn reads_transformers4_rope_and_qwen2_windows() {
        let mut v = kit_like();
        v["model_type"] = json!("qwen2");
        v["architectures"] = json!(["Qwen2ForSequenceClassification"]);
        v["rope_parameters"] = Value::Null;
        v["rope_theta"] = json!(1e6);
        v["rope_scaling"] = json!({"type": "linear", "factor": 2.0});
        v["use_sliding_window"] = json!(true);
        v["sliding_window"] = json!(16);
        v["max_window_layers"] = json!(28);
        v["pad_token_id"] = Value::Null;
        v["eos_token_id"] = json!([7, 8]);
        v["num_labels"] = json!(3);
        let c = DecoderConfig::from_json(&v).unwrap();
        assert_eq!(c.rope_theta, 1e6);
        assert_eq!(c.rope_scaling, RopeScaling::Linear { factor: 2.0 });
        assert!(c.qkv_bias && !c.o_bias);
        assert_eq!(c.layer_windows[27], None);
        assert_eq!(c.layer_windows[28], Some(16));
        assert_eq!(c.pad_id(), Some(7));
        assert_eq!(c.num_labels, Some(3));
    }

    #[test]
    fn refuses_what_it_cannot_run() {
        let mut v = kit_like();
        v["model_type"] = json!("gpt2");
        v["architectures"] = json!(["GPT2LMHeadModel"]);
        let e = DecoderConfig::from_json(&v).unwrap_err();
        assert!(e.contains("GPT2LMHeadModel"), "{e}");
        let mut v = kit_like();
        v["rope_parameters"] = json!({"rope_theta": 1e4, "rope_type": "yarn", "factor": 4.0});
        assert!(DecoderConfig::from_json(&v).unwrap_err().contains("yarn"));
        let mut v = kit_like();
        v["num_key_value_heads"] = json!(2);
        assert!(DecoderConfig::from_json(&v).is_err());
    }
}
