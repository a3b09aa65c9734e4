//! Turning datasets into model inputs: the victim's own tokenizer, truncation to 128 tokens,
//! and length-sorted batches with dynamic padding.

use crate::data::Example;
use crate::error::{GmsError, Result};
use crate::model::arch::Architecture;
use crate::model::config::ModelConfig;
use candle_core::{DType, Device, Tensor};
use std::path::{Path, PathBuf};
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

/// Token ids and masks of one batch of rows, padded to the batch's longest row.
#[derive(Debug, Clone)]
pub struct BatchInput {
    /// `[b, t]` u32 token ids.
    pub input_ids: Tensor,
    /// `[b, t]` u32 token-type ids.
    pub type_ids: Tensor,
    /// `[b, t]` u32 position ids.
    pub position_ids: Tensor,
    /// `[b, 1, 1, t]` f32 additive attention mask (0 or a large negative).
    pub attention_bias: Tensor,
}

/// Maximum tokens per row, special tokens included: where the paper's reference truncates
/// (docs/algorithm.md §Evaluation conventions).
pub const MAX_TOKENS: usize = 128;

/// Tokens per batch on the CPU: large enough for efficient matmuls, small enough that early
/// abandonment (checked after each round of batches) has something to skip. Kit search on 2
/// cores: 1024 → 32.9 s, 768 → 25.9 s, 512 → 22.2 s, 384 → 22.0 s, 256 → 25.3 s.
pub const BATCH_TOKENS: usize = 512;

/// Tokens per batch on a GPU: a 1024-wide matmul needs thousands of rows to fill an H100, and
/// each batch costs ~20 kernel launches per layer plus a host sync for its predictions; 16384
/// puts a 200-row proxy set in one or two batches (early abandonment still checks between them).
pub const GPU_BATCH_TOKENS: usize = 16384;

/// Share of the GPU's free memory one batch's activations may take (the rest holds weights,
/// layer-state caches and cuBLAS workspace).
const GPU_BATCH_MEMORY_SHARE: usize = 4;

/// The additive attention bias of a padding position: far below any real score, so its
/// softmax weight is exactly 0. f16 tops out at 65504 (-1e9 would become -inf there, and a
/// sum with -inf can turn into NaN), so it gets half its range, still far below any score.
pub fn masked_bias(dtype: DType) -> f32 {
    match dtype {
        DType::F16 => -32752.0,
        _ => -1e9,
    }
}

/// Tokens per batch for `device`: [`BATCH_TOKENS`] on the CPU; on a GPU
/// [`GPU_BATCH_TOKENS`], lowered if one batch's activations (f32, one layer at a time) would
/// take more than a quarter of the free memory.
pub fn batch_tokens(device: &Device, config: &ModelConfig) -> usize {
    // Per token of one layer: x, q, k, v, context, attention output, block output (7·h), the
    // feed-forward activation before and after GELU (2·i), scores and probabilities over up
    // to MAX_TOKENS keys per head.
    let per_token =
        4 * (7 * config.hidden + 2 * config.intermediate + 2 * config.heads * MAX_TOKENS);
    batch_tokens_for(device, per_token)
}

/// Tokens per batch for `device` when one token's activations in one layer take
/// `bytes_per_token`: [`BATCH_TOKENS`] on the CPU; on a GPU [`GPU_BATCH_TOKENS`], lowered so
/// one batch takes at most a quarter of the free memory.
pub fn batch_tokens_for(device: &Device, bytes_per_token: usize) -> usize {
    if device.is_cpu() {
        return BATCH_TOKENS;
    }
    match crate::device::free_memory(device) {
        Some(free) => (free / GPU_BATCH_MEMORY_SHARE / bytes_per_token.max(1))
            .clamp(MAX_TOKENS, GPU_BATCH_TOKENS),
        None => GPU_BATCH_TOKENS,
    }
}

/// A model's tokenizer, set up as evaluation needs it.
pub struct TextEncoder {
    tokenizer: Tokenizer,
    path: PathBuf,
    arch: Architecture,
    pad_id: u32,
    config: ModelConfig,
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
            GmsError::bad_file(
                &path,
                format!("cannot load tokenizer ({e})"),
                "re-save it with transformers or tokenizers",
            )
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
                "use the tokenizer the model was trained with, or a vocab_size that covers it",
            ));
        }
        Ok(TextEncoder {
            tokenizer,
            path,
            arch: config.architecture,
            pad_id: config.pad_token_id,
            config: config.clone(),
        })
    }

    /// Tokenizes rows (special tokens added, truncated to [`MAX_TOKENS`]).
    pub fn encode(&self, examples: &[Example]) -> Result<Vec<EncodedRow>> {
        encode_rows(&self.tokenizer, &self.path, examples)
    }

    /// Tokenizes and batches a dataset for `device` (batch size from [`batch_tokens`]).
    pub fn encode_set(&self, examples: &[Example], device: &Device) -> Result<EncodedSet> {
        let rows = self.encode(examples)?;
        let budget = batch_tokens(device, &self.config);
        batch_rows(&rows, self.arch, self.pad_id, device, budget)
    }
}

impl EncodedSet {
    /// The same batches with the attention bias in `dtype`, for a classifier converted with
    /// [`crate::model::Classifier::to_dtype`]; the padding bias becomes [`masked_bias`]`(dtype)`.
    pub fn to_dtype(&self, dtype: DType) -> Result<EncodedSet> {
        let mut out = self.clone();
        for b in &mut out.batches {
            let bias = &b.input.attention_bias;
            b.input.attention_bias = bias.maximum(masked_bias(dtype))?.to_dtype(dtype)?;
        }
        Ok(out)
    }
}

/// Tokenizes rows with `tokenizer` (read from `path`, named in errors): special tokens as the
/// tokenizer adds them, a pair joined by its pair template, truncation as configured on it.
pub fn encode_rows(
    tokenizer: &Tokenizer,
    path: &Path,
    examples: &[Example],
) -> Result<Vec<EncodedRow>> {
    let inputs: Vec<tokenizers::EncodeInput> = examples
        .iter()
        .map(|e| match &e.text_pair {
            None => e.text.as_str().into(),
            Some(p) => (e.text.as_str(), p.as_str()).into(),
        })
        .collect();
    let encodings = tokenizer.encode_batch(inputs, true).map_err(|e| {
        GmsError::bad_file(
            path,
            format!("tokenization failed ({e})"),
            "check the tokenizer",
        )
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
    let t = idx
        .iter()
        .map(|&i| rows[i].ids.len())
        .max()
        .unwrap_or(1)
        .max(1);
    let b = idx.len();
    let mut ids = vec![pad_id; b * t];
    let mut types = vec![0u32; b * t];
    let mut pos = vec![0u32; b * t];
    let mut bias = vec![masked_bias(DType::F32); b * t];
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
