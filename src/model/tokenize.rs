//! Turning datasets into model inputs: the victim's own tokenizer, truncation to 128 tokens,
//! and length-sorted batches with dynamic padding.

use crate::data::Example;
use crate::error::{GmsError, Result};
use crate::model::arch::Architecture;
use crate::model::config::ModelConfig;
use crate::model::encoder::BatchInput;
use candle_core::{Device, Tensor};
use std::path::{Path, PathBuf};
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

/// Maximum tokens per row, special tokens included (DESIGN.md §1, as the paper's reference).
pub const MAX_TOKENS: usize = 128;

/// Tokens per batch: large enough for efficient matmuls, small enough that early abandonment
/// (which checks after each batch) has something to skip.
pub const BATCH_TOKENS: usize = 1024;

/// A model's tokenizer, set up as evaluation needs it.
pub struct TextEncoder {
    tokenizer: Tokenizer,
    path: PathBuf,
    arch: Architecture,
    pad_id: u32,
}

/// One tokenized row.
#[derive(Debug, Clone)]
pub struct EncodedRow {
    /// Token ids, special tokens included.
    pub ids: Vec<u32>,
    /// Token-type ids (1 for the second sentence of a pair on BERT).
    pub type_ids: Vec<u32>,
    /// Gold label.
    pub label: u32,
}

/// A padded batch of rows of similar length.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The model input.
    pub input: BatchInput,
    /// Indices of the rows (into the set) in batch order.
    pub rows: Vec<usize>,
    /// Their gold labels.
    pub labels: Vec<u32>,
    /// Padded token count (`rows × longest`).
    pub tokens: usize,
}

/// A tokenized dataset split into batches.
#[derive(Debug, Clone)]
pub struct EncodedSet {
    /// Number of rows.
    pub len: usize,
    /// Batches, shortest rows first.
    pub batches: Vec<Batch>,
    /// Real (unpadded) tokens in all rows.
    pub real_tokens: usize,
}

impl TextEncoder {
    /// Loads `tokenizer.json` from `dir` and checks it fits the model's embeddings.
    pub fn load(dir: &Path, config: &ModelConfig) -> Result<TextEncoder> {
        let path = dir.join("tokenizer.json");
        if !path.is_file() {
            return Err(GmsError::Missing {
                path,
                what: "tokenizer",
                fix: "save the model's tokenizer into the folder (tokenizer.save_pretrained(DIR)) so tokenizer.json is there",
            });
        }
        let mut tokenizer = Tokenizer::from_file(&path).map_err(|e| {
            GmsError::bad_file(&path, format!("cannot load tokenizer ({e})"), "re-save it with transformers or tokenizers")
        })?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|e| GmsError::bad_file(&path, e.to_string(), "re-save the tokenizer"))?;
        let vocab = tokenizer.get_vocab_size(true);
        if vocab > config.vocab_size {
            return Err(GmsError::bad_file(
                &path,
                format!(
                    "the tokenizer has {vocab} tokens but the model's embeddings hold {}",
                    config.vocab_size
                ),
                "use the tokenizer the model was trained with",
            ));
        }
        Ok(TextEncoder {
            tokenizer,
            path,
            arch: config.architecture,
            pad_id: config.pad_token_id,
        })
    }

    /// Tokenizes rows (special tokens added, truncated to [`MAX_TOKENS`]).
    pub fn encode(&self, examples: &[Example]) -> Result<Vec<EncodedRow>> {
        let inputs: Vec<tokenizers::EncodeInput> = examples
            .iter()
            .map(|e| match &e.text_pair {
                None => e.text.as_str().into(),
                Some(p) => (e.text.as_str(), p.as_str()).into(),
            })
            .collect();
        let encodings = self.tokenizer.encode_batch(inputs, true).map_err(|e| {
            GmsError::bad_file(&self.path, format!("tokenization failed ({e})"), "check the tokenizer")
        })?;
        Ok(encodings
            .into_iter()
            .zip(examples)
            .map(|(enc, e)| EncodedRow {
                ids: enc.get_ids().to_vec(),
                type_ids: enc.get_type_ids().to_vec(),
                label: e.label as u32,
            })
            .collect())
    }

    /// Tokenizes and batches a dataset for `device`.
    pub fn encode_set(&self, examples: &[Example], device: &Device) -> Result<EncodedSet> {
        let rows = self.encode(examples)?;
        batch_rows(&rows, self.arch, self.pad_id, device, BATCH_TOKENS)
    }
}

/// Sorts rows by length and cuts them into batches of at most `budget` padded tokens, so
/// padding stays small; position ids follow the architecture (RoBERTa's start after padding).
pub fn batch_rows(
    rows: &[EncodedRow],
    arch: Architecture,
    pad_id: u32,
    device: &Device,
    budget: usize,
) -> Result<EncodedSet> {
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|&i| (rows[i].ids.len(), i));
    let mut batches = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && (end + 1 - start) * rows[order[end]].ids.len() <= budget {
            end += 1;
        }
        batches.push(make_batch(rows, &order[start..end], arch, pad_id, device)?);
        start = end;
    }
    Ok(EncodedSet {
        len: rows.len(),
        batches,
        real_tokens: rows.iter().map(|r| r.ids.len()).sum(),
    })
}

fn make_batch(
    rows: &[EncodedRow],
    idx: &[usize],
    arch: Architecture,
    pad_id: u32,
    device: &Device,
) -> Result<Batch> {
    let t = idx.iter().map(|&i| rows[i].ids.len()).max().unwrap_or(1).max(1);
    let b = idx.len();
    let mut ids = vec![pad_id; b * t];
    let mut types = vec![0u32; b * t];
    let mut pos = vec![0u32; b * t];
    let mut bias = vec![-1e9f32; b * t];
    for (r, &i) in idx.iter().enumerate() {
        let row = &rows[i];
        for j in 0..t {
            let k = r * t + j;
            let real = j < row.ids.len();
            if real {
                ids[k] = row.ids[j];
                types[k] = row.type_ids[j];
                bias[k] = 0.0;
            }
            pos[k] = match arch {
                // HF: positions count non-padding tokens from padding_idx + 1; padding sits at padding_idx.
                Architecture::Roberta if real => pad_id + 1 + j as u32,
                Architecture::Roberta => pad_id,
                _ => j as u32,
            };
        }
    }
    let input = BatchInput {
        input_ids: Tensor::from_vec(ids, (b, t), device)?,
        type_ids: Tensor::from_vec(types, (b, t), device)?,
        position_ids: Tensor::from_vec(pos, (b, t), device)?,
        attention_bias: Tensor::from_vec(bias, (b, 1, 1, t), device)?,
    };
    Ok(Batch {
        input,
        rows: idx.to_vec(),
        labels: idx.iter().map(|&i| rows[i].label).collect(),
        tokens: b * t,
    })
}
