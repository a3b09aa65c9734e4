//! Random-weight decoder bases and PEFT LoRA adapters written as real folders.
//!
//! Tests use them to check the decoder forward pass against transformers + peft and to build
//! bad inputs, in the formats users bring: a base folder (`config.json`, `tokenizer.json`,
//! safetensors in bf16/f16/f32, one file or two shards) and a peft adapter folder
//! (`adapter_config.json`, `adapter_model.safetensors`). The tokenizer is a word-level one that,
//! like the LLM kit's, adds no special tokens, with pad = eos = `<|im_end|>` (id 2).

use crate::error::{GmsError, Result};
use crate::model::arch::DecoderArchitecture;
use crate::model::arch::{Module, DECODER_MODULES};
use crate::model::folder::write_safetensors;
use crate::model::random::gaussian;
use candle_core::{DType, Device, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// Special tokens of the random tokenizer, ids 0..3 (the kit's SmolLM2 ids).
pub const DECODER_SPECIAL_TOKENS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

/// Shape, dtype and seed of a random decoder.
#[derive(Debug, Clone)]
pub struct RandomDecoderSpec {
    /// Llama, Mistral or Qwen2 layout.
    pub architecture: DecoderArchitecture,
    /// Hidden size.
    pub hidden: usize,
    /// Layers.
    pub layers: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// SwiGLU inner size.
    pub intermediate: usize,
    /// The tokenizer's words (after the special tokens).
    pub words: Vec<String>,
    /// Seed of the weights.
    pub seed: u64,
    /// Standard deviation of the linear weights.
    pub std: f32,
    /// Storage dtype of the weights.
    pub dtype: DType,
    /// RoPE θ (written in transformers 5's `rope_parameters`).
    pub rope_theta: f64,
    /// Mistral's sliding window.
    pub sliding_window: Option<usize>,
    /// Whether config.json names a `pad_token_id` (else the head falls back to eos).
    pub pad_in_config: bool,
    /// `Some(labels)`: a fully fine-tuned `…ForSequenceClassification` with its `score`.
    pub classifier_labels: Option<usize>,
    /// 1: `model.safetensors`; 2: two shards and an index.
    pub shards: usize,
}

impl RandomDecoderSpec {
    /// A tiny decoder of `arch` over `words` with grouped-query attention (4 query heads over
    /// 2 key/value heads of size 8), bf16 weights in two shards.
    pub fn tiny(
        arch: DecoderArchitecture,
        words: &[&str],
        layers: usize,
        seed: u64,
    ) -> RandomDecoderSpec {
        RandomDecoderSpec {
            architecture: arch,
            hidden: 32,
            layers,
            heads: 4,
            kv_heads: 2,
            intermediate: 48,
            words: words.iter().map(|w| w.to_string()).collect(),
            seed,
            std: 0.15,
            dtype: DType::BF16,
            rope_theta: 10_000.0,
            sliding_window: None,
            pad_in_config: true,
            classifier_labels: None,
            shards: 2,
        }
    }

    /// Rows of the embedding (special tokens + words).
    pub fn vocab_size(&self) -> usize {
        DECODER_SPECIAL_TOKENS.len() + self.words.len()
    }

    fn head_dim(&self) -> usize {
        self.hidden / self.heads
    }

    /// `(out, in)` of module `m`.
    pub fn module_shape(&self, m: Module) -> (usize, usize) {
        let (q, kv) = (
            self.heads * self.head_dim(),
            self.kv_heads * self.head_dim(),
        );
        match m {
            Module::Q => (q, self.hidden),
            Module::K | Module::V => (kv, self.hidden),
            Module::O => (self.hidden, q),
            Module::G | Module::U | Module::F => (self.intermediate, self.hidden),
            Module::D | Module::P => (self.hidden, self.intermediate),
        }
    }
}

/// A random PEFT LoRA adapter over a [`RandomDecoderSpec`] base.
#[derive(Debug, Clone)]
pub struct RandomAdapterSpec {
    /// Rank.
    pub r: usize,
    /// `lora_alpha`.
    pub alpha: f64,
    /// rsLoRA scaling.
    pub use_rslora: bool,
    /// Adapted projections.
    pub targets: Vec<Module>,
    /// Labels of the saved score head.
    pub num_labels: usize,
    /// Seed of the A/B matrices (both non-zero, unlike peft's B = 0 at initialisation).
    pub seed: u64,
    /// Standard deviation of A and B.
    pub std: f32,
    /// `base_model_name_or_path`.
    pub base_model: String,
}

impl RandomAdapterSpec {
    /// Rank 4, α 8, all seven projections, two labels.
    pub fn tiny(seed: u64, base_model: &str) -> RandomAdapterSpec {
        RandomAdapterSpec {
            r: 4,
            alpha: 8.0,
            use_rslora: false,
            targets: DECODER_MODULES.to_vec(),
            num_labels: 2,
            seed,
            std: 0.2,
            base_model: base_model.to_string(),
        }
    }
}

/// Writes the random base (or fine-tuned classifier) into `dir` (created if missing).
///
/// Tensors are made and written one shard at a time (layers split evenly over `s.shards`),
/// each converted to the storage dtype as it is made, so a 7B-shaped base needs one shard's
/// worth of memory, not the model's.
pub fn write_random_decoder(dir: &Path, s: &RandomDecoderSpec) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| GmsError::output(dir, e))?;
    write_json(
        &dir.join("tokenizer.json"),
        &word_level_tokenizer_json(&s.words),
    )?;
    write_json(
        &dir.join("tokenizer_config.json"),
        &json!({"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|im_start|>",
                "eos_token": "<|im_end|>", "pad_token": "<|im_end|>", "unk_token": "<|endoftext|>"}),
    )?;
    write_json(&dir.join("config.json"), &config_json(s))?;
    let mut rng = StdRng::seed_from_u64(s.seed);
    let shards = s.shards.clamp(1, s.layers.max(1));
    let per = s.layers.div_ceil(shards);
    let mut weight_map = serde_json::Map::new();
    for shard in 0..shards {
        // The stream of random numbers is the same for any shard count: embeddings, the
        // layers in order, the final norm, lm_head, score.
        let mut out = BTreeMap::new();
        if shard == 0 {
            put(
                &mut out,
                s,
                "model.embed_tokens.weight",
                normal(&[s.vocab_size(), s.hidden], 1.0, &mut rng)?,
            )?;
        }
        for l in shard * per..((shard + 1) * per).min(s.layers) {
            random_layer(&mut out, s, l, &mut rng)?;
        }
        if shard + 1 == shards {
            let h = s.hidden;
            put(
                &mut out,
                s,
                "model.norm.weight",
                (normal(&[h], 0.1, &mut rng)? + 1.0)?,
            )?;
            // Unused by a sequence classifier; present as in real checkpoints, which gms skips.
            put(
                &mut out,
                s,
                "lm_head.weight",
                normal(&[s.vocab_size(), h], 0.1, &mut rng)?,
            )?;
            if let Some(n) = s.classifier_labels {
                put(&mut out, s, "score.weight", normal(&[n, h], 0.5, &mut rng)?)?;
            }
        }
        if shards == 1 {
            return write_safetensors(&dir.join("model.safetensors"), &out);
        }
        let file = format!("model-{:05}-of-{:05}.safetensors", shard + 1, shards);
        for n in out.keys() {
            weight_map.insert(n.clone(), json!(file));
        }
        write_safetensors(&dir.join(&file), &out)?;
    }
    write_json(
        &dir.join("model.safetensors.index.json"),
        &json!({"metadata": {}, "weight_map": weight_map}),
    )
}

/// Writes a random adapter over the base `base` into `dir` (created if missing).
pub fn write_random_adapter(
    dir: &Path,
    base: &RandomDecoderSpec,
    a: &RandomAdapterSpec,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| GmsError::output(dir, e))?;
    let targets: Vec<&str> = a.targets.iter().filter_map(|m| m.proj_name()).collect();
    write_json(
        &dir.join("adapter_config.json"),
        &json!({
            "peft_type": "LORA", "task_type": "SEQ_CLS", "r": a.r, "lora_alpha": a.alpha,
            "use_rslora": a.use_rslora, "lora_dropout": 0.0, "bias": "none",
            "fan_in_fan_out": false, "use_dora": false, "inference_mode": true,
            "init_lora_weights": true, "target_modules": targets,
            "modules_to_save": ["classifier", "score"], "rank_pattern": {}, "alpha_pattern": {},
            "base_model_name_or_path": a.base_model, "revision": null
        }),
    )?;
    let mut rng = StdRng::seed_from_u64(a.seed);
    let mut out = BTreeMap::new();
    for l in 0..base.layers {
        for &m in &a.targets {
            let (o, i) = base.module_shape(m);
            let p = format!("base_model.model.{}", m.decoder_path(l));
            out.insert(
                format!("{p}.lora_A.weight"),
                normal(&[a.r, i], a.std, &mut rng)?,
            );
            out.insert(
                format!("{p}.lora_B.weight"),
                normal(&[o, a.r], a.std, &mut rng)?,
            );
        }
    }
    out.insert(
        "base_model.model.score.weight".into(),
        normal(&[a.num_labels, base.hidden], 0.5, &mut rng)?,
    );
    write_safetensors(&dir.join("adapter_model.safetensors"), &out)
}

fn config_json(s: &RandomDecoderSpec) -> Value {
    let class = match s.classifier_labels {
        Some(_) => s.architecture.classifier_class().to_string(),
        None => format!(
            "{}ForCausalLM",
            s.architecture
                .classifier_class()
                .trim_end_matches("ForSequenceClassification")
        ),
    };
    let dtype = match s.dtype {
        DType::BF16 => "bfloat16",
        DType::F16 => "float16",
        _ => "float32",
    };
    let mut v = json!({
        "architectures": [class], "model_type": s.architecture.model_type(),
        "hidden_size": s.hidden, "intermediate_size": s.intermediate,
        "num_hidden_layers": s.layers, "num_attention_heads": s.heads,
        "num_key_value_heads": s.kv_heads, "head_dim": s.head_dim(), "hidden_act": "silu",
        "max_position_embeddings": 256, "rms_norm_eps": 1e-5,
        "rope_parameters": {"rope_theta": s.rope_theta, "rope_type": "default"},
        "tie_word_embeddings": false, "vocab_size": s.vocab_size(),
        "bos_token_id": 1, "eos_token_id": 2, "dtype": dtype,
        "attention_dropout": 0.0,
    });
    if s.pad_in_config {
        v["pad_token_id"] = json!(2);
    }
    match s.architecture {
        DecoderArchitecture::Llama => {
            v["attention_bias"] = json!(false);
            v["mlp_bias"] = json!(false);
        }
        DecoderArchitecture::Mistral => v["sliding_window"] = json!(s.sliding_window),
        DecoderArchitecture::Qwen2 => {
            v["use_sliding_window"] = json!(false);
            v["sliding_window"] = Value::Null;
            v["max_window_layers"] = json!(s.layers);
        }
    }
    if let Some(n) = s.classifier_labels {
        let id2label: BTreeMap<String, String> = (0..n)
            .map(|i| (i.to_string(), format!("LABEL_{i}")))
            .collect();
        let label2id: BTreeMap<String, usize> = (0..n).map(|i| (format!("LABEL_{i}"), i)).collect();
        v["id2label"] = json!(id2label);
        v["label2id"] = json!(label2id);
    }
    v
}

fn put(
    out: &mut BTreeMap<String, Tensor>,
    s: &RandomDecoderSpec,
    name: &str,
    t: Tensor,
) -> Result<()> {
    out.insert(name.to_string(), t.to_dtype(s.dtype)?);
    Ok(())
}

fn random_layer(
    out: &mut BTreeMap<String, Tensor>,
    s: &RandomDecoderSpec,
    l: usize,
    rng: &mut StdRng,
) -> Result<()> {
    for m in DECODER_MODULES {
        let (o, i) = s.module_shape(m);
        let path = m.decoder_path(l);
        put(
            out,
            s,
            &format!("{path}.weight"),
            normal(&[o, i], s.std, rng)?,
        )?;
        let biased = s.architecture == DecoderArchitecture::Qwen2
            && matches!(m, Module::Q | Module::K | Module::V);
        if biased {
            put(out, s, &format!("{path}.bias"), normal(&[o], 0.5, rng)?)?;
        }
    }
    for norm in ["input_layernorm", "post_attention_layernorm"] {
        put(
            out,
            s,
            &format!("model.layers.{l}.{norm}.weight"),
            (normal(&[s.hidden], 0.1, rng)? + 1.0)?,
        )?;
    }
    Ok(())
}

/// A Hugging Face `tokenizer.json`: word-level over `words` after
/// [`DECODER_SPECIAL_TOKENS`], lower-casing, split on whitespace and punctuation, no special
/// tokens added.
pub fn word_level_tokenizer_json(words: &[String]) -> Value {
    let mut vocab = serde_json::Map::new();
    for (id, t) in DECODER_SPECIAL_TOKENS
        .iter()
        .map(|s| s.to_string())
        .chain(words.iter().cloned())
        .enumerate()
    {
        vocab.entry(t).or_insert(json!(id));
    }
    let added: Vec<Value> = DECODER_SPECIAL_TOKENS
        .iter()
        .enumerate()
        .map(|(id, t)| {
            json!({"id": id, "content": t, "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": added,
        "normalizer": {"type": "Lowercase"},
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": null, "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<|endoftext|>"}
    })
}

/// Tensors with more values than this are drawn in parallel, one chunk of this size at a time.
const CHUNK: usize = 1 << 20;

/// `shape` values from N(0, std²). Small tensors come straight from `rng`'s stream; a larger
/// one takes a single seed from it and draws chunk `c` from a generator seeded by (seed, c),
/// on every core: the values depend on the seed only, never on the thread count, and a
/// 7B-shaped base is written in minutes instead of the better part of an hour.
fn normal(shape: &[usize], std: f32, rng: &mut StdRng) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let values: Vec<f32> = if n <= CHUNK {
        (0..n).map(|_| gaussian(rng) * std).collect()
    } else {
        let seed: u64 = rng.random();
        let mut values = vec![0f32; n];
        let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
        let mut work: Vec<Vec<(usize, &mut [f32])>> = (0..threads).map(|_| Vec::new()).collect();
        for (c, chunk) in values.chunks_mut(CHUNK).enumerate() {
            work[c % threads].push((c, chunk));
        }
        std::thread::scope(|scope| {
            for chunks in work {
                scope.spawn(move || {
                    for (c, chunk) in chunks {
                        let mut r =
                            StdRng::seed_from_u64(seed ^ (c as u64 + 1).wrapping_mul(GOLDEN));
                        for v in chunk.iter_mut() {
                            *v = gaussian(&mut r) * std;
                        }
                    }
                });
            }
        });
        values
    };
    Ok(Tensor::from_vec(values, shape, &Device::Cpu)?)
}

/// 2⁶⁴ / φ: spreads chunk numbers over the seed's bits.
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

fn write_json(path: &Path, v: &Value) -> Result<()> {
    let text = serde_json::to_string_pretty(v).expect("json values serialize");
    std::fs::write(path, text).map_err(|e| GmsError::output(path, e))
}
