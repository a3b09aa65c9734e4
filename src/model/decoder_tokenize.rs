//! Turning datasets into decoder inputs: the model's own tokenizer (special tokens as its
//! post-processor adds them; the LLM kit's byte-level BPE adds none), truncation to
//! [`MAX_TOKENS`], right padding with the pad id, and the length-sorted batches of
//! [`crate::model::tokenize::batch_rows`].
//!
//! The LLM kit's adapters were trained with at most 64 tokens, and none of its test or proxy
//! rows is longer, so truncating at the encoders' 128 (docs/algorithm.md §Evaluation conventions) changes nothing there.

use crate::data::Example;
use crate::error::{GmsError, Result};
use crate::model::arch::Architecture;
use crate::model::decoder_config::DecoderConfig;
use crate::model::tokenize::{batch_rows, batch_tokens_for, EncodedRow, EncodedSet, MAX_TOKENS};
use candle_core::Device;
use std::path::{Path, PathBuf};
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

/// A decoder's tokenizer, set up as evaluation needs it.
pub struct DecoderTextEncoder {
    tokenizer: Tokenizer,
    path: PathBuf,
    pad_id: u32,
    config: DecoderConfig,
}

impl DecoderTextEncoder {
    /// Loads `tokenizer.json` from `dir` and checks it fits the model's embeddings.
    pub fn load(dir: &Path, config: &DecoderConfig) -> Result<DecoderTextEncoder> {
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
                "use the tokenizer of the base model",
            ));
        }
        Ok(DecoderTextEncoder {
            tokenizer,
            path,
            // Without a pad (or eos) id the padding value is never read: the attention mask
            // hides it and the head then picks rows by the mask.
            pad_id: config.pad_id().unwrap_or(0),
            config: config.clone(),
        })
    }

    /// Tokenizes rows (special tokens as the tokenizer adds them, truncated to
    /// [`MAX_TOKENS`]); a pair is joined by the tokenizer's pair template.
    pub fn encode(&self, examples: &[Example]) -> Result<Vec<EncodedRow>> {
        let inputs: Vec<tokenizers::EncodeInput> = examples
            .iter()
            .map(|e| match &e.text_pair {
                None => e.text.as_str().into(),
                Some(p) => (e.text.as_str(), p.as_str()).into(),
            })
            .collect();
        let encodings = self.tokenizer.encode_batch(inputs, true).map_err(|e| {
            GmsError::bad_file(
                &self.path,
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

    /// Tokenizes and batches a dataset for `device` (right padding with the pad id).
    pub fn encode_set(&self, examples: &[Example], device: &Device) -> Result<EncodedSet> {
        let rows = self.encode(examples)?;
        let budget = decoder_batch_tokens(device, &self.config);
        // The decoder reads only ids and the padding mask of a batch (its rotary positions
        // count from 0 in every right-padded row); BERT's layout gives plain 0-based
        // position ids, unlike RoBERTa's.
        batch_rows(&rows, Architecture::Bert, self.pad_id, device, budget)
    }
}

/// Tokens per batch for a decoder on `device` (see [`batch_tokens_for`]).
pub fn decoder_batch_tokens(device: &Device, c: &DecoderConfig) -> usize {
    // Per token of one layer (f32): x, normed x, q, k and v after repeat_kv, context, o, the
    // residual and its norm (≈ 9·hidden), gate, up, their silu product (3·intermediate), and
    // scores + probabilities over up to MAX_TOKENS keys per query head.
    let per_token = 4 * (9 * c.hidden + 3 * c.intermediate + 2 * c.heads * MAX_TOKENS);
    batch_tokens_for(device, per_token)
}
