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
//!
//! With a decoder `--arch` (llama, mistral, qwen2) it writes a base and two PEFT LoRA
//! adapters over it, `OUT/base`, `OUT/victim` (seed) and `OUT/proxy` (seed + 1); without shape
//! flags, of Llama-2-7B / Mistral-7B's shape (hidden 4096, 32 layers, 32 heads over 8
//! key-value heads, SwiGLU 14336, vocabulary 32000) with rank-8 adapters on all seven
//! projections. The tokenizer is a word-level one over generated words (tokens per row then
//! follow whitespace and punctuation, about what a BPE gives English text).

use crate::model::arch::DecoderArchitecture;
use crate::model::random::{write_random_model, RandomModelSpec, TokenizerSource};
use crate::model::random_decoder::{
    write_random_adapter, write_random_decoder, RandomAdapterSpec, RandomDecoderSpec,
    DECODER_SPECIAL_TOKENS,
};
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
    /// A Llama base + two LoRA adapters.
    Llama,
    /// A Mistral base + two LoRA adapters.
    Mistral,
    /// A Qwen2 base + two LoRA adapters.
    Qwen2,
}

/// Arguments of `gms gen-model`.
#[derive(Debug, Args)]
pub struct GenModelCmd {
    /// Output folder (created; its config, tokenizer and weights are replaced).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Copy tokenizer.json (and vocab/config side files) from this model folder (encoders).
    #[arg(long, value_name = "DIR")]
    tokenizer_from: Option<PathBuf>,
    /// Embedding rows: at least the tokenizer's vocabulary (30522 for BERT's uncased vocab;
    /// decoders: 32000).
    #[arg(long, value_name = "N")]
    vocab_size: Option<usize>,
    /// Layout.
    #[arg(long, value_enum, default_value_t = GenArch::Bert)]
    arch: GenArch,
    /// Transformer layers (default 24; decoders 32).
    #[arg(long)]
    layers: Option<usize>,
    /// Hidden size (default 1024; decoders 4096).
    #[arg(long)]
    hidden: Option<usize>,
    /// Attention heads, must divide the hidden size (default 16; decoders 32).
    #[arg(long)]
    heads: Option<usize>,
    /// Decoders: key/value heads, must divide the heads (default 8).
    #[arg(long)]
    kv_heads: Option<usize>,
    /// Feed-forward inner size (default 4096; decoders 14336).
    #[arg(long)]
    intermediate: Option<usize>,
    /// Decoders: LoRA rank of the two adapters (lora_alpha is twice the rank).
    #[arg(long, default_value_t = 8)]
    rank: usize,
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
        if let Some(arch) = self.decoder_arch() {
            return self.write_decoder(arch);
        }
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
        let Some(tokenizer) = &self.tokenizer_from else {
            bail!("--tokenizer-from is required for encoders (a model folder whose tokenizer.json to copy)");
        };
        let Some(vocab_size) = self.vocab_size else {
            bail!("--vocab-size is required for encoders (at least the tokenizer's vocabulary)");
        };
        if self.max_positions < MAX_TOKENS {
            bail!("--max-positions must be at least {MAX_TOKENS}, the tokens evaluation uses");
        }
        Ok(RandomModelSpec {
            architecture: match self.arch {
                GenArch::Distilbert => Architecture::DistilBert,
                _ => Architecture::Bert,
            },
            hidden: self.hidden.unwrap_or(1024),
            layers: self.layers.unwrap_or(24),
            heads: self.heads.unwrap_or(16),
            intermediate: self.intermediate.unwrap_or(4096),
            num_labels: self.labels,
            max_positions: self.max_positions,
            vocab_size,
            tokenizer: TokenizerSource::CopyFrom(tokenizer.clone()),
            seed: self.seed,
            std: self.std,
        })
    }
}

impl GenModelCmd {
    fn decoder_arch(&self) -> Option<DecoderArchitecture> {
        match self.arch {
            GenArch::Llama => Some(DecoderArchitecture::Llama),
            GenArch::Mistral => Some(DecoderArchitecture::Mistral),
            GenArch::Qwen2 => Some(DecoderArchitecture::Qwen2),
            GenArch::Bert | GenArch::Distilbert => None,
        }
    }

    /// Writes `OUT/base`, `OUT/victim` and `OUT/proxy`.
    fn write_decoder(&self, arch: DecoderArchitecture) -> anyhow::Result<()> {
        if self.tokenizer_from.is_some() {
            bail!(
                "--tokenizer-from is for encoders; decoders get a generated word-level tokenizer"
            );
        }
        let hidden = self.hidden.unwrap_or(4096);
        let heads = self.heads.unwrap_or(32);
        let kv_heads = self.kv_heads.unwrap_or(8.min(heads));
        let vocab = self.vocab_size.unwrap_or(32000);
        if heads == 0
            || !hidden.is_multiple_of(heads)
            || kv_heads == 0
            || !heads.is_multiple_of(kv_heads)
        {
            bail!("--heads must divide --hidden and --kv-heads must divide --heads");
        }
        if vocab <= DECODER_SPECIAL_TOKENS.len() || self.labels < 2 || self.rank == 0 {
            bail!("--vocab-size must exceed the 3 special tokens, --labels be at least 2 and --rank at least 1");
        }
        let layers = self.layers.unwrap_or(32);
        let words: Vec<String> = (DECODER_SPECIAL_TOKENS.len()..vocab)
            .map(|i| format!("w{i}"))
            .collect();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let mut spec = RandomDecoderSpec::tiny(arch, &words, layers, self.seed);
        spec.hidden = hidden;
        spec.heads = heads;
        spec.kv_heads = kv_heads;
        spec.intermediate = self.intermediate.unwrap_or(14336);
        spec.std = self.std;
        // One shard per ~2 GB of bf16 weights, as transformers shards.
        let per_layer = 2
            * (hidden * hidden * 2
                + hidden * hidden / heads * kv_heads * 2
                + 3 * hidden * spec.intermediate);
        spec.shards = (per_layer * layers / (2 << 30)).max(1);
        let started = std::time::Instant::now();
        let base = self.out.join("base");
        crate::atomic::check_new_dir(&self.out)?;
        write_random_decoder(&base, &spec)
            .with_context(|| format!("writing the random base to {}", base.display()))?;
        let base_abs = std::fs::canonicalize(&base).unwrap_or(base.clone());
        for (name, seed) in [("victim", self.seed), ("proxy", self.seed + 1)] {
            let mut a = RandomAdapterSpec::tiny(seed, &base_abs.to_string_lossy());
            a.r = self.rank;
            a.alpha = 2.0 * self.rank as f64;
            a.num_labels = self.labels;
            a.std = 0.02;
            write_random_adapter(&self.out.join(name), &spec, &a)?;
        }
        let per_layer_params = per_layer / 2;
        println!(
            "wrote {} (base: {} layers, hidden {hidden}, {heads}/{kv_heads} heads, SwiGLU {}, vocab {vocab}, {:.2} B parameters, bf16; adapters victim and proxy, r {}) in {:.1} s",
            self.out.display(),
            layers,
            spec.intermediate,
            (per_layer_params * layers + 2 * vocab * hidden) as f64 / 1e9,
            self.rank,
            started.elapsed().as_secs_f64()
        );
        Ok(())
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
