//! Argument groups shared by several subcommands.

use crate::gms::search::SearchParams;
use crate::gms::session::SearchInputs;
use clap::Args;
use std::path::PathBuf;

/// The models and datasets of a search.
#[derive(Debug, Clone, Args)]
pub struct SessionArgs {
    /// Backdoored (victim) model folder.
    #[arg(long, value_name = "DIR")]
    pub victim: Option<PathBuf>,
    /// Proxy (donor) model folder: same architecture, trained on other data.
    #[arg(long, value_name = "DIR")]
    pub proxy: Option<PathBuf>,
    /// Clean proxy set D_c (JSONL/TSV/CSV with labels).
    #[arg(long, value_name = "FILE")]
    pub clean: Option<PathBuf>,
    /// Suspect proxy set D_p (rows labelled with the attacker's target).
    #[arg(long, value_name = "FILE")]
    pub suspect: Option<PathBuf>,
    /// Clean test set, for CACC of the result.
    #[arg(long, value_name = "FILE")]
    pub test_clean: Option<PathBuf>,
    /// Poisoned test set (trigger inserted, relabelled to the target), for ASR of the result.
    #[arg(long, value_name = "FILE")]
    pub test_poison: Option<PathBuf>,
    /// Compute device: auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
}

impl SessionArgs {
    /// Whether any model or dataset path was given.
    pub fn any_given(&self) -> bool {
        self.victim.is_some() || self.proxy.is_some() || self.clean.is_some() || self.suspect.is_some()
    }

    /// The inputs, requiring the four mandatory paths.
    pub fn inputs(&self) -> anyhow::Result<SearchInputs> {
        let need = |v: &Option<PathBuf>, flag: &str| {
            v.clone().ok_or_else(|| anyhow::anyhow!("{flag} is required (or use --demo)"))
        };
        Ok(SearchInputs {
            victim: need(&self.victim, "--victim")?,
            proxy: need(&self.proxy, "--proxy")?,
            clean: need(&self.clean, "--clean")?,
            suspect: need(&self.suspect, "--suspect")?,
            test_clean: self.test_clean.clone(),
            test_poison: self.test_poison.clone(),
        })
    }
}

/// α and patience.
#[derive(Debug, Clone, Args)]
pub struct ParamArgs {
    /// Accuracy weight α in [0, 1] of score = (1-α)·ΔASR + α·(1-ΔACC).
    #[arg(long, default_value_t = crate::gms::DEFAULT_ALPHA)]
    pub alpha: f64,
    /// Greedy steps without improvement before the search stops.
    #[arg(long, default_value_t = crate::gms::DEFAULT_PATIENCE)]
    pub patience: usize,
}

impl ParamArgs {
    /// Validated parameters.
    pub fn params(&self) -> crate::Result<SearchParams> {
        SearchParams::validated(self.alpha, self.patience)
    }
}
