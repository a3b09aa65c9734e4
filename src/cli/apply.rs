//! `gms apply`: write the purified model for a strategy file.

use crate::export::mergekit::mergekit_yaml;
use crate::export::write_purified_model;
use crate::gms::report::StrategyReport;
use crate::model::ModelFolder;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `gms apply`.
#[derive(Debug, Args)]
pub struct ApplyCmd {
    /// Victim model folder (never modified).
    #[arg(long, value_name = "DIR")]
    victim: PathBuf,
    /// Proxy model folder (never modified).
    #[arg(long, value_name = "DIR")]
    proxy: PathBuf,
    /// Strategy JSON written by gms search or the TUI.
    #[arg(long, value_name = "FILE")]
    strategy: PathBuf,
    /// Output folder for the purified model (must not exist).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Also write a mergekit YAML that builds the same model.
    #[arg(long, value_name = "FILE")]
    mergekit: Option<PathBuf>,
}

impl ApplyCmd {
    /// Writes the purified model (and the YAML).
    pub fn run(self) -> anyhow::Result<()> {
        let report = StrategyReport::read(&self.strategy)?;
        let victim = ModelFolder::open(&self.victim)?;
        let proxy = ModelFolder::open(&self.proxy)?;
        let matrix = report.matrix();
        write_purified_model(&victim, &proxy, &matrix, &self.out)?;
        println!(
            "wrote {} ({} modules from {})",
            self.out.display(),
            matrix.count(),
            self.proxy.display()
        );
        if let Some(y) = &self.mergekit {
            let text = mergekit_yaml(
                victim.config.architecture,
                &matrix,
                &self.victim,
                &self.proxy,
            );
            crate::atomic::write_file(y, text.as_bytes())?;
            println!("wrote {}", y.display());
        }
        Ok(())
    }
}
