//! Random-weight classifiers written as real Hugging Face folders.
//!
//! Tests use them where a trained model is not needed (tiny shapes), and benchmarks use them
//! for paper-scale shapes (e.g. BERT-large) without downloading anything. The folder is the
//! same format users bring: `config.json`, `tokenizer.json`, `model.safetensors`.

use crate::error::{GmsError, Result};
use crate::model::arch::Architecture;
use crate::model::config::{check_heads, ModelConfig};
use crate::model::folder::{copy_tokenizer_files, write_safetensors};
use crate::model::tokenize::TextEncoder;
use candle_core::{Device, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where the tokenizer of a random model comes from.
#[derive(Debug, Clone)]
pub enum TokenizerSource {
    /// A WordPiece tokenizer over these (lower-case) words, after the BERT special tokens.
    Words(Vec<String>),
    /// Copy `tokenizer.json` (and side files) from this folder; `vocab_size` must cover it.
    CopyFrom(PathBuf),
}

/// Shape and seed of a random classifier.
#[derive(Debug, Clone)]
pub struct RandomModelSpec {
    /// BERT, RoBERTa or DistilBERT layout. A RoBERTa model gets the same WordPiece tokenizer
    /// (padding id 0, so positions start at 1 as `transformers` computes them); it checks the
    /// RoBERTa tensor layout and position ids, not a byte-level BPE vocabulary.
    pub architecture: Architecture,
    /// Hidden size.
    pub hidden: usize,
    /// Transformer layers.
    pub layers: usize,
    /// Attention heads.
    pub heads: usize,
    /// Feed-forward inner size.
    pub intermediate: usize,
    /// Output labels.
    pub num_labels: usize,
    /// Position embeddings.
    pub max_positions: usize,
    /// Embedding rows (ignored for [`TokenizerSource::Words`], which sets it).
    pub vocab_size: usize,
    /// Tokenizer.
    pub tokenizer: TokenizerSource,
    /// Seed of the weights.
    pub seed: u64,
    /// Standard deviation of the weights (BERT's initializer uses 0.02).
    pub std: f32,
}

/// The BERT special tokens, ids 0..5.
pub const SPECIAL_TOKENS: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

impl RandomModelSpec {
    /// A tiny BERT over `words`: the shape tests use.
    pub fn tiny(words: &[&str], layers: usize, seed: u64) -> RandomModelSpec {
        RandomModelSpec {
            architecture: Architecture::Bert,
            hidden: 32,
            layers,
            heads: 4,
            intermediate: 64,
            num_labels: 2,
            max_positions: 128,
            vocab_size: 0,
            tokenizer: TokenizerSource::Words(words.iter().map(|w| w.to_string()).collect()),
            seed,
            std: 0.2,
        }
    }
}

impl RandomModelSpec {
    /// Embedding rows of the model: the word list's size for [`TokenizerSource::Words`].
    fn embedding_rows(&self) -> usize {
        match &self.tokenizer {
            TokenizerSource::Words(words) => SPECIAL_TOKENS.len() + words.len(),
            TokenizerSource::CopyFrom(_) => self.vocab_size,
        }
    }

    /// Checks that the spec makes a loadable model, with the checks a loaded model gets (head
    /// split, tokenizer against the embeddings), before anything is written.
    pub fn validate(&self) -> Result<()> {
        let sizes = [
            ("--layers", self.layers),
            ("--hidden", self.hidden),
            ("--heads", self.heads),
            ("--intermediate", self.intermediate),
            ("--vocab-size", self.embedding_rows()),
        ];
        let bad = |flag, value: String, problem: String| GmsError::BadArgument {
            flag,
            value,
            problem,
        };
        if let Some((flag, _)) = sizes.iter().find(|(_, v)| *v == 0) {
            return Err(bad(flag, "0".into(), "must be at least 1".into()));
        }
        check_heads(self.hidden, self.heads).map_err(|problem| {
            bad(
                "--heads",
                self.heads.to_string(),
                format!("{problem}; pick heads that divide it (e.g. hidden/64)"),
            )
        })?;
        if !(self.std.is_finite() && self.std > 0.0) {
            return Err(bad(
                "--std",
                self.std.to_string(),
                "must be a positive number (BERT uses 0.02)".into(),
            ));
        }
        if let TokenizerSource::CopyFrom(src) = &self.tokenizer {
            let json = config_json(self, self.embedding_rows());
            let config = ModelConfig::from_json(&json)
                .map_err(|problem| bad("--arch", format!("{:?}", self.architecture), problem))?;
            TextEncoder::load(src, &config)?;
        }
        Ok(())
    }
}

/// Writes the random model into `dir` (created if missing; existing files are replaced), after
/// [`RandomModelSpec::validate`].
pub fn write_random_model(dir: &Path, spec: &RandomModelSpec) -> Result<()> {
    spec.validate()?;
    std::fs::create_dir_all(dir).map_err(|e| GmsError::output(dir, e))?;
    let vocab_size = spec.embedding_rows();
    match &spec.tokenizer {
        TokenizerSource::Words(words) => {
            let tok = wordpiece_tokenizer_json(words);
            let text = serde_json::to_string_pretty(&tok).expect("json");
            crate::atomic::write_file(&dir.join("tokenizer.json"), text.as_bytes())?;
        }
        TokenizerSource::CopyFrom(src) => copy_tokenizer_files(src, dir)?,
    }
    let config = config_json(spec, vocab_size);
    crate::atomic::write_file(
        &dir.join("config.json"),
        serde_json::to_string_pretty(&config)
            .expect("json")
            .as_bytes(),
    )?;
    let tensors = random_tensors(spec, vocab_size)?;
    write_safetensors(&dir.join("model.safetensors"), &tensors)
}

fn config_json(s: &RandomModelSpec, vocab_size: usize) -> Value {
    let id2label: BTreeMap<String, String> = (0..s.num_labels)
        .map(|i| (i.to_string(), format!("LABEL_{i}")))
        .collect();
    let label2id: BTreeMap<String, usize> = (0..s.num_labels)
        .map(|i| (format!("LABEL_{i}"), i))
        .collect();
    match s.architecture {
        Architecture::DistilBert => json!({
            "architectures": ["DistilBertForSequenceClassification"], "model_type": "distilbert",
            "dim": s.hidden, "n_layers": s.layers, "n_heads": s.heads, "hidden_dim": s.intermediate,
            "vocab_size": vocab_size, "max_position_embeddings": s.max_positions, "activation": "gelu",
            "pad_token_id": 0, "id2label": id2label, "label2id": label2id, "dtype": "float32",
            "dropout": 0.1, "attention_dropout": 0.1, "seq_classif_dropout": 0.2,
            "sinusoidal_pos_embds": false, "initializer_range": 0.02,
        }),
        Architecture::Roberta => json!({
            "architectures": ["RobertaForSequenceClassification"], "model_type": "roberta",
            "hidden_size": s.hidden, "num_hidden_layers": s.layers, "num_attention_heads": s.heads,
            "intermediate_size": s.intermediate, "vocab_size": vocab_size,
            "max_position_embeddings": s.max_positions, "type_vocab_size": 1, "hidden_act": "gelu",
            "layer_norm_eps": 1e-5, "pad_token_id": 0, "bos_token_id": 2, "eos_token_id": 3,
            "id2label": id2label, "label2id": label2id, "dtype": "float32",
            "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
            "initializer_range": 0.02, "position_embedding_type": "absolute",
        }),
        Architecture::Bert => json!({
            "architectures": ["BertForSequenceClassification"], "model_type": "bert",
            "hidden_size": s.hidden, "num_hidden_layers": s.layers, "num_attention_heads": s.heads,
            "intermediate_size": s.intermediate, "vocab_size": vocab_size,
            "max_position_embeddings": s.max_positions, "type_vocab_size": 2, "hidden_act": "gelu",
            "layer_norm_eps": 1e-12, "pad_token_id": 0, "id2label": id2label, "label2id": label2id,
            "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "dtype": "float32",
            "initializer_range": 0.02, "position_embedding_type": "absolute",
        }),
    }
}

fn random_tensors(s: &RandomModelSpec, vocab: usize) -> Result<BTreeMap<String, Tensor>> {
    let mut rng = StdRng::seed_from_u64(s.seed);
    let mut out = BTreeMap::new();
    let (h, i, n) = (s.hidden, s.intermediate, s.num_labels);
    let mut normal = |name: String,
                      shape: &[usize],
                      std: f32,
                      out: &mut BTreeMap<String, Tensor>|
     -> Result<()> {
        let count: usize = shape.iter().product();
        let values: Vec<f32> = (0..count).map(|_| gaussian(&mut rng) * std).collect();
        out.insert(name, Tensor::from_vec(values, shape, &Device::Cpu)?);
        Ok(())
    };
    let ones =
        |name: String, size: usize, v: f32, out: &mut BTreeMap<String, Tensor>| -> Result<()> {
            out.insert(name, Tensor::full(v, size, &Device::Cpu)?);
            Ok(())
        };
    let arch = s.architecture;
    let type_vocab = if arch == Architecture::Roberta { 1 } else { 2 };
    let names = arch.embedding_names();
    normal(names.word, &[vocab, h], s.std, &mut out)?;
    normal(names.position, &[s.max_positions, h], s.std, &mut out)?;
    if let Some(token_type) = names.token_type {
        normal(token_type, &[type_vocab, h], s.std, &mut out)?;
    }
    let norm = |name: &str, out: &mut BTreeMap<String, Tensor>| -> Result<()> {
        ones(format!("{name}.weight"), h, 1.0, out)?;
        ones(format!("{name}.bias"), h, 0.0, out)
    };
    norm(&names.norm, &mut out)?;
    for l in 0..s.layers {
        for m in crate::model::arch::ENCODER_MODULES {
            let (o, inp) = m.shape(h, i);
            let p = arch.module_path(l, m);
            normal(format!("{p}.weight"), &[o, inp], s.std, &mut out)?;
            normal(format!("{p}.bias"), &[o], s.std, &mut out)?;
        }
        for name in arch.layer_norm_names(l) {
            norm(&name, &mut out)?;
        }
    }
    let [first, second] = arch.head_names();
    normal(format!("{first}.weight"), &[h, h], s.std, &mut out)?;
    normal(format!("{first}.bias"), &[h], s.std, &mut out)?;
    normal(
        format!("{second}.weight"),
        &[n, h],
        s.std.max(0.5),
        &mut out,
    )?;
    normal(format!("{second}.bias"), &[n], s.std, &mut out)?;
    Ok(out)
}

/// A standard normal sample (Box–Muller), so weights depend only on the seed.
fn gaussian(rng: &mut StdRng) -> f32 {
    let u1: f32 = rng.random_range(f32::EPSILON..1.0);
    let u2: f32 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f32::consts::PI * u2).cos()
}

/// A Hugging Face `tokenizer.json` for BERT-style WordPiece over `words`.
pub fn wordpiece_tokenizer_json(words: &[String]) -> Value {
    let mut vocab = serde_json::Map::new();
    for (id, t) in SPECIAL_TOKENS
        .iter()
        .map(|s| s.to_string())
        .chain(words.iter().cloned())
        .enumerate()
    {
        vocab.entry(t).or_insert(json!(id));
    }
    let added: Vec<Value> = SPECIAL_TOKENS
        .iter()
        .enumerate()
        .map(|(id, t)| {
            json!({"id": id, "content": t, "single_word": false, "lstrip": false,
                              "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    let special = |t: &str, type_id: u32| json!({"SpecialToken": {"id": t, "type_id": type_id}});
    let seq = |s: &str, type_id: u32| json!({"Sequence": {"id": s, "type_id": type_id}});
    json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": added,
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                       "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [special("[CLS]", 0), seq("A", 0), special("[SEP]", 0)],
            "pair": [special("[CLS]", 0), seq("A", 0), special("[SEP]", 0), seq("B", 1), special("[SEP]", 1)],
            "special_tokens": {
                "[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]},
            }
        },
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": vocab}
    })
}
