//! `gms proxy-sets`: the clean and suspect proxy sets for a victim and its training set.

use crate::data::Dataset;
use crate::device::open_device;
use crate::gms::proxy_sets::{build, ScoreSource, DEFAULT_SIZE};
use clap::Args;
use std::path::PathBuf;

/// Arguments of `gms proxy-sets`.
#[derive(Debug, Args)]
pub struct ProxySetsCmd {
    /// The victim model folder.
    #[arg(long, value_name = "DIR")]
    victim: PathBuf,
    /// The victim's (possibly poisoned) training set.
    #[arg(long, value_name = "FILE")]
    train: PathBuf,
    /// Folder for clean.jsonl and suspect.jsonl (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Rows per set.
    #[arg(long, default_value_t = DEFAULT_SIZE)]
    size: usize,
    /// Seed of the clean sample.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Compute device: auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
}

impl ProxySetsCmd {
    /// Builds and writes both sets.
    pub fn run(self) -> anyhow::Result<()> {
        let device = open_device(&self.device)?;
        let train = Dataset::read(&self.train)?;
        let sets = build(&self.victim, &train, self.size, self.seed, &device)?;
        std::fs::create_dir_all(&self.out).map_err(|e| crate::GmsError::output(&self.out, e))?;
        let (clean, suspect) = (self.out.join("clean.jsonl"), self.out.join("suspect.jsonl"));
        sets.clean.write_jsonl(&clean)?;
        sets.suspect.write_jsonl(&suspect)?;
        let how = match sets.source {
            ScoreSource::Dynamics { epochs } => {
                format!("the victim's per-epoch record ({epochs} epochs)")
            }
            ScoreSource::OnePass => "one pass of the victim".to_string(),
        };
        println!(
            "wrote {} ({} random rows)",
            clean.display(),
            sets.clean.len()
        );
        println!(
            "wrote {} ({} rows with the highest mean 1/(1-p(label)), from {how})",
            suspect.display(),
            sets.suspect.len()
        );
        Ok(())
    }
}
