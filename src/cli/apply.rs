//! `gms apply`: write the purified model for a strategy file.

use crate::export::mergekit::mergekit_yaml;
use crate::export::write_purified;
use crate::gms::report::StrategyReport;
use crate::model::ModelSource;
use anyhow::bail;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `gms apply`.
#[derive(Debug, Args)]
pub struct ApplyCmd {
    /// Victim model folder, or its PEFT adapter folder (never modified).
    #[arg(long, value_name = "DIR")]
    victim: PathBuf,
    /// Proxy model folder, or its PEFT adapter folder (never modified).
    #[arg(long, value_name = "DIR")]
    proxy: PathBuf,
    /// Base model folder of the adapters; default: the victim adapter's
    /// base_model_name_or_path.
    #[arg(long, value_name = "DIR")]
    base: Option<PathBuf>,
    /// Strategy JSON written by gms search or the TUI.
    #[arg(long, value_name = "FILE")]
    strategy: PathBuf,
    /// Output folder (must not exist): the purified model as an HF folder, or for PEFT
    /// adapters the purified adapter folder.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// For adapters: write base + purified adapter merged, as an HF
    /// …ForSequenceClassification folder (base dtype, tokenizer copied).
    #[arg(long)]
    merged: bool,
    /// Also write a mergekit YAML that builds the same model (not for adapters).
    #[arg(long, value_name = "FILE")]
    mergekit: Option<PathBuf>,
}

impl ApplyCmd {
    /// Writes the purified model (and the YAML).
    pub fn run(self) -> anyhow::Result<()> {
        let report = StrategyReport::read(&self.strategy)?;
        let victim = ModelSource::open(&self.victim, self.base.as_deref())?;
        // An adapter proxy goes on the victim's base, as in the search.
        let proxy = match (&victim, ModelSource::open_unresolved(&self.proxy)?) {
            (ModelSource::Decoder { base, .. }, Some(adapter)) => ModelSource::Decoder {
                base: base.clone(),
                adapter: Some(adapter),
            },
            _ => ModelSource::open(&self.proxy, None)?,
        };
        report.check_fits(&self.strategy, &victim)?;
        if self.mergekit.is_some() && victim.base_dir().is_some() {
            bail!("--mergekit: mergekit cannot rebuild a PEFT sequence classifier's purified adapter; use the adapter gms writes, or --merged for a full model");
        }
        let matrix = report.matrix();
        write_purified(&victim, &proxy, &matrix, &self.out, self.merged)?;
        println!(
            "wrote {} ({} modules from {})",
            self.out.display(),
            matrix.count(),
            self.proxy.display()
        );
        if let Some(y) = &self.mergekit {
            let text = mergekit_yaml(victim.architecture(), &matrix, &self.victim, &self.proxy);
            crate::atomic::write_file(y, text.as_bytes())?;
            println!("wrote {}", y.display());
        }
        Ok(())
    }
}
