//! `gms proxy-sets`: the clean and suspect proxy sets for a victim and its training set.

use crate::data::Dataset;
use crate::device::open_device;
use crate::gms::proxy_sets::{build, sample_clean, ProxySets, ScoreSource, DEFAULT_SIZE};
use clap::Args;
use std::path::{Path, PathBuf};

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
    /// Rows of the clean set, when it should differ from --size: a larger random sample
    /// resolves accuracy differences the paper's 200 rows cannot (docs/algorithm.md §Suspect
    /// signal).
    #[arg(long, value_name = "N")]
    clean_size: Option<usize>,
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
        let (sets, clean, suspect) = write_proxy_sets(
            &self.victim,
            &train,
            &self.out,
            (self.clean_size.unwrap_or(self.size), self.size),
            self.seed,
            &device,
        )?;
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

/// Builds both proxy sets, `(clean, suspect)` rows each, and writes `out/clean.jsonl` and
/// `out/suspect.jsonl` (what `gms proxy-sets` does; `gms bench --efficacy` uses it for a kit
/// without proxy sets).
pub fn write_proxy_sets(
    victim: &Path,
    train: &Dataset,
    out: &Path,
    (clean_size, size): (usize, usize),
    seed: u64,
    device: &candle_core::Device,
) -> anyhow::Result<(ProxySets, PathBuf, PathBuf)> {
    let mut sets = build(victim, train, size, seed, device)?;
    if clean_size != size {
        (sets.clean, sets.clean_rows) = sample_clean(train, clean_size, seed);
    }
    std::fs::create_dir_all(out).map_err(|e| crate::GmsError::output(out, e))?;
    let (clean, suspect) = (out.join("clean.jsonl"), out.join("suspect.jsonl"));
    sets.clean.write_jsonl(&clean)?;
    sets.suspect.write_jsonl(&suspect)?;
    Ok((sets, clean, suspect))
}
