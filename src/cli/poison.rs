//! `gms poison`: make a poisoned training set or an ASR test set.

use crate::data::poison::{
    poison_test, poison_training, Attack, BADNET_TRIGGERS, DEFAULT_SENTENCE,
};
use crate::data::Dataset;
use anyhow::bail;
use clap::{Args, ValueEnum};
use std::path::PathBuf;

/// The attacks `gms poison` can apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AttackKind {
    /// Rare-word triggers (1, 3 or 5 of --triggers at random word positions).
    Badnet,
    /// A fixed sentence (--sentence) at a random sentence boundary.
    Insertsent,
}

/// Arguments of `gms poison`.
#[derive(Debug, Args)]
pub struct PoisonCmd {
    /// Which trigger to insert.
    #[arg(long, value_enum)]
    attack: AttackKind,
    /// Input dataset (JSONL/TSV/CSV).
    #[arg(long = "in", value_name = "FILE")]
    input: PathBuf,
    /// Output JSONL.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// The attacker's target label.
    #[arg(long, default_value_t = 0)]
    target: usize,
    /// Share of training rows to poison (ignored with --test).
    #[arg(long, default_value_t = 0.2)]
    rate: f64,
    /// BadNet trigger words, comma-separated.
    #[arg(long, value_delimiter = ',', conflicts_with = "sentence")]
    triggers: Option<Vec<String>>,
    /// InsertSent trigger sentence.
    #[arg(long)]
    sentence: Option<String>,
    /// Seed of the row choice and insert positions.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Make an ASR test set: keep only non-target rows, insert the trigger into each, relabel.
    #[arg(long)]
    test: bool,
}

impl PoisonCmd {
    /// Poisons the input and writes the output.
    pub fn run(self) -> anyhow::Result<()> {
        let attack = match self.attack {
            AttackKind::Badnet => {
                if self.sentence.is_some() {
                    bail!("--sentence belongs to --attack insertsent; BadNet takes --triggers");
                }
                Attack::BadNet {
                    triggers: self
                        .triggers
                        .clone()
                        .unwrap_or_else(|| BADNET_TRIGGERS.iter().map(|t| t.to_string()).collect()),
                }
            }
            AttackKind::Insertsent => {
                if self.triggers.is_some() {
                    bail!("--triggers belongs to --attack badnet; InsertSent takes --sentence");
                }
                Attack::InsertSent {
                    sentence: self
                        .sentence
                        .clone()
                        .unwrap_or_else(|| DEFAULT_SENTENCE.to_string()),
                }
            }
        };
        let data = Dataset::read(&self.input)?;
        if self.test {
            let out = poison_test(&data, &attack, self.target, self.seed)?;
            out.write_jsonl(&self.out)?;
            println!(
                "wrote {}: {} of {} rows (those not labelled {}), trigger inserted, relabelled to {}",
                self.out.display(),
                out.len(),
                data.len(),
                self.target,
                self.target
            );
        } else {
            let out = poison_training(&data, &attack, self.target, self.rate, self.seed)?;
            out.dataset.write_jsonl(&self.out)?;
            println!(
                "wrote {}: {} rows, {} poisoned ({:.1}%) and relabelled to {}",
                self.out.display(),
                data.len(),
                out.poisoned.len(),
                100.0 * out.poisoned.len() as f64 / data.len() as f64,
                self.target
            );
        }
        Ok(())
    }
}
