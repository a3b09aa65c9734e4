//! `gms tui` (and plain `gms`): the interactive workbench.

use super::args::{ModeArgs, ParamArgs, SessionArgs};
use crate::gms::session::SearchInputs;
use crate::tui::TuiOptions;
use clap::{Args, FromArgMatches};
use std::path::PathBuf;

/// Arguments of `gms tui`.
#[derive(Debug, Args)]
pub struct TuiCmd {
    #[command(flatten)]
    session: SessionArgs,
    #[command(flatten)]
    params: ParamArgs,
    #[command(flatten)]
    modes: ModeArgs,
    /// Where `w` (strategy JSON) and `W` (purified model) write; created on first use.
    #[arg(long, value_name = "DIR", default_value = "gms-export")]
    export_dir: PathBuf,
    /// Log file (the TUI owns the terminal); default: gms-tui.log in the temp folder.
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
}

impl TuiCmd {
    /// The arguments of plain `gms`: every default, so the embedded demo opens.
    pub fn defaults() -> TuiCmd {
        let command = TuiCmd::augment_args(clap::Command::new("gms"));
        let matches = command.get_matches_from(["gms"]);
        TuiCmd::from_arg_matches(&matches).expect("the defaults parse")
    }

    /// Opens the workbench.
    pub fn run(self) -> anyhow::Result<()> {
        let params = self.params.params()?;
        let inputs = if self.session.any_given() {
            self.session.inputs()?
        } else {
            demo_inputs()?
        };
        crate::tui::run(TuiOptions {
            inputs,
            device: self.session.device,
            dtype: self.session.dtype.dtype(),
            params,
            mode: self.modes.mode()?,
            signal: self.modes.signal(),
            export_dir: self.export_dir,
            log_file: self
                .log
                .unwrap_or_else(|| std::env::temp_dir().join("gms-tui.log")),
        })
    }
}

/// The embedded demo's inputs, written out to files the session can load.
fn demo_inputs() -> anyhow::Result<SearchInputs> {
    Ok(crate::demo::inputs()?)
}
