//! `gms tui` (and plain `gms`): the interactive workbench.

use super::args::{ParamArgs, SessionArgs};
use crate::gms::session::SearchInputs;
use crate::tui::TuiOptions;
use clap::{Args, FromArgMatches};
use std::path::PathBuf;

/// Arguments of `gms tui`.
#[derive(Debug, Args)]
#[command(
    after_help = "With no --victim/--proxy/--clean/--suspect (or with --demo), the \
workbench opens on the embedded demo: a BadNet victim, its proxy, proxy sets and test sets."
)]
pub struct TuiCmd {
    #[command(flatten)]
    session: SessionArgs,
    /// Open the embedded demo (what plain `gms` and `gms tui` without inputs do).
    #[arg(long)]
    demo: bool,
    #[command(flatten)]
    params: ParamArgs,
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
        let given = self.session.any_given()
            || self.session.test_clean.is_some()
            || self.session.test_poison.is_some();
        let inputs = match (self.demo, given) {
            (true, true) => anyhow::bail!(
                "--demo brings its own models and datasets; drop --victim/--proxy/--clean/--suspect/--test-*"
            ),
            (false, true) => self.session.inputs()?,
            _ => demo_inputs()?,
        };
        crate::tui::run(TuiOptions {
            inputs,
            device: self.session.device,
            dtype: self.session.dtype.dtype(),
            drops: self.params.drops(),
            params,
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
