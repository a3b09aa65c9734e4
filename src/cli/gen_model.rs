//! `gms gen-model`: a random-weight classifier written as a Hugging Face folder.
//!
//! Benchmarks use it for paper-scale shapes without downloading anything, e.g. the
//! BERT-large-shaped victim/proxy pair (two seeds) that `scripts/gpu-check.sh` times with the
//! benchmark kit's proxy sets:
//!
//! ```text
//! gms gen-model --layers 24 --hidden 1024 --heads 16 --intermediate 4096 \
//!     --tokenizer-from target/bench-models/sst2_badnet --vocab-size 30522 --seed 1 --out large/victim
//! ```

use crate::model::random::{write_random_model, RandomModelSpec, TokenizerSource};
use crate::model::tokenize::MAX_TOKENS;
use crate::model::Architecture;
use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use std::path::PathBuf;

/// Layouts the generator writes (RoBERTa needs a byte-level BPE tokenizer it does not make).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GenArch {
    /// `BertForSequenceClassification`.
    Bert,
    /// `DistilBertForSequenceClassification`.
    Distilbert,
}

/// Arguments of `gms gen-model`.
#[derive(Debug, Args)]
pub struct GenModelCmd {
    /// Output folder (created; its config, tokenizer and weights are replaced).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Copy tokenizer.json (and vocab/config side files) from this model folder.
    #[arg(long, value_name = "DIR")]
    tokenizer_from: PathBuf,
    /// Embedding rows: at least the tokenizer's vocabulary (30522 for BERT's uncased vocab).
    #[arg(long, value_name = "N")]
    vocab_size: usize,
    /// Layout.
    #[arg(long, value_enum, default_value_t = GenArch::Bert)]
    arch: GenArch,
    /// Transformer layers.
    #[arg(long, default_value_t = 24)]
    layers: usize,
    /// Hidden size.
    #[arg(long, default_value_t = 1024)]
    hidden: usize,
    /// Attention heads (must divide the hidden size).
    #[arg(long, default_value_t = 16)]
    heads: usize,
    /// Feed-forward inner size.
    #[arg(long, default_value_t = 4096)]
    intermediate: usize,
    /// Output labels.
    #[arg(long, default_value_t = 2)]
    labels: usize,
    /// Position embeddings (at least the 128 tokens evaluation uses).
    #[arg(long, default_value_t = 512)]
    max_positions: usize,
    /// Seed of the weights: two seeds make a victim/proxy pair.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Standard deviation of the weights (BERT's initializer range).
    #[arg(long, default_value_t = 0.02)]
    std: f32,
}

impl GenModelCmd {
    /// Checks the shape and writes the folder.
    pub fn run(self) -> anyhow::Result<()> {
        let spec = self.spec()?;
        let params = parameter_count(&spec);
        let started = std::time::Instant::now();
        write_random_model(&self.out, &spec)
            .with_context(|| format!("writing the random model to {}", self.out.display()))?;
        println!(
            "wrote {} ({} layers, hidden {}, {} heads, FFN {}, {:.1} M parameters, seed {}) in {:.1} s",
            self.out.display(),
            spec.layers,
            spec.hidden,
            spec.heads,
            spec.intermediate,
            params as f64 / 1e6,
            spec.seed,
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }

    /// The spec the flags describe. The shape itself is checked by the library
    /// ([`RandomModelSpec::validate`]); what is checked here is what gen-model promises beyond
    /// a loadable model: a classifier that evaluation's 128 tokens fit.
    fn spec(&self) -> anyhow::Result<RandomModelSpec> {
        if self.labels < 2 {
            bail!("--labels must be at least 2 for a classifier");
        }
        if self.max_positions < MAX_TOKENS {
            bail!("--max-positions must be at least {MAX_TOKENS}, the tokens evaluation uses");
        }
        Ok(RandomModelSpec {
            architecture: match self.arch {
                GenArch::Bert => Architecture::Bert,
                GenArch::Distilbert => Architecture::DistilBert,
            },
            hidden: self.hidden,
            layers: self.layers,
            heads: self.heads,
            intermediate: self.intermediate,
            num_labels: self.labels,
            max_positions: self.max_positions,
            vocab_size: self.vocab_size,
            tokenizer: TokenizerSource::CopyFrom(self.tokenizer_from.clone()),
            seed: self.seed,
            std: self.std,
        })
    }
}

/// Parameters of a BERT-layout classifier of this shape (for the summary line).
fn parameter_count(s: &RandomModelSpec) -> usize {
    let (h, i) = (s.hidden, s.intermediate);
    let embeddings = (s.vocab_size + s.max_positions + 2) * h + 2 * h;
    let layer = 4 * (h * h + h) + (h * i + i) + (i * h + h) + 4 * h;
    let head = (h * h + h) + (s.num_labels * h + s.num_labels);
    embeddings + s.layers * layer + head
}
