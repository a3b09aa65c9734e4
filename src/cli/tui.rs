//! `gms tui` (and plain `gms`): the interactive workbench.

use super::args::{ModeArgs, ParamArgs, SessionArgs};
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
    #[command(flatten)]
    modes: ModeArgs,
    /// Where `w` (strategy JSON), `W` (purified model) and the search journal write.
    #[arg(long, value_name = "DIR", default_value = "gms-export")]
    export_dir: PathBuf,
    /// Log file (the TUI owns the terminal); default: gms-tui.log in the temp folder.
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
    /// Record the search here (default: search-UNIXTIME.journal.jsonl in the export folder).
    #[arg(long, value_name = "FILE", conflicts_with = "resume")]
    journal: Option<PathBuf>,
    /// Resume the search a journal recorded (its inputs, α and patience), appending to it.
    #[arg(long, value_name = "JOURNAL")]
    resume: Option<PathBuf>,
    /// Show a recorded search without loading a model: α and patience replay from the
    /// record; the first evaluation it lacks loads the models (then appends to the journal).
    #[arg(long, value_name = "JOURNAL", conflicts_with_all = ["resume", "journal", "demo"])]
    open: Option<PathBuf>,
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
        if let Some(path) = self.open.clone() {
            return self.open(path);
        }
        let resume = self
            .resume
            .as_deref()
            .map(crate::gms::journal::Journal::read)
            .transpose()?;
        let params = match &resume {
            Some(j) => crate::gms::SearchParams::validated(j.header.alpha, j.header.patience)?,
            None => self.params.params()?,
        };
        let given = self.session.any_given()
            || self.session.test_clean.is_some()
            || self.session.test_poison.is_some();
        let inputs = match (self.demo, given, &resume) {
            (true, true, _) => anyhow::bail!(
                "--demo brings its own models and datasets; drop --victim/--proxy/--clean/--suspect/--test-*"
            ),
            (false, true, _) => self.session.inputs()?,
            (false, false, Some(j)) => crate::demo::resolve_recorded(j.header.inputs.search_inputs()),
            _ => demo_inputs()?,
        };
        let (inputs, merge_base) = merge_base(inputs)?;
        let merge_base = merge_base.or_else(|| resume.as_ref().and_then(|j| j.merge_base()));
        let path = match (&self.resume, &self.journal) {
            (Some(r), _) => r.clone(),
            (None, Some(j)) => j.clone(),
            (None, None) => {
                // The journal lives with the exports; the folder is made now rather than at
                // the first `w`, since the journal is written from the first evaluation.
                std::fs::create_dir_all(&self.export_dir)
                    .map_err(|e| crate::GmsError::output(&self.export_dir, e))?;
                let secs = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                self.export_dir.join(format!("search-{secs}.journal.jsonl"))
            }
        };
        let (mode, signal) = self.modes.resolve(resume.as_ref())?;
        let journal = crate::gms::worker::JournalPlan {
            path,
            resume,
            rename: Some(crate::demo::recorded_path),
        };
        crate::tui::run(TuiOptions {
            inputs,
            device: self.session.device,
            dtype: self.session.dtype.dtype(),
            drops: self.params.drops(),
            params,
            mode,
            signal,
            export_dir: self.export_dir,
            log_file: self
                .log
                .unwrap_or_else(|| std::env::temp_dir().join("gms-tui.log")),
            journal: Some(journal),
            open: None,
            merge_base,
        })
    }

    /// `--open JOURNAL`: the recorded search, its inputs, dtype and drops from the header.
    fn open(self, path: PathBuf) -> anyhow::Result<()> {
        if self.session.any_given()
            || self.session.test_clean.is_some()
            || self.session.test_poison.is_some()
        {
            anyhow::bail!(
                "--open takes the inputs from the journal's header; drop --victim/--proxy/--clean/--suspect/--test-*"
            );
        }
        let journal = crate::gms::journal::Journal::read(&path)?;
        // Refuse a journal that cannot be replayed before the terminal is taken over.
        journal.evaluator()?;
        let h = &journal.header;
        let dtype = match h.dtype.as_str() {
            "bf16" => candle_core::DType::BF16,
            "f16" => candle_core::DType::F16,
            _ => candle_core::DType::F32,
        };
        let (alpha, patience) = journal.last_params();
        let (_, signal, mode) = journal.modes()?;
        let inputs = crate::demo::resolve_recorded(h.inputs.search_inputs());
        crate::tui::run(TuiOptions {
            inputs,
            device: self.session.device,
            dtype,
            drops: h.drops,
            params: crate::gms::SearchParams::validated(alpha, patience)?,
            mode,
            signal,
            export_dir: self.export_dir,
            log_file: self
                .log
                .unwrap_or_else(|| std::env::temp_dir().join("gms-tui.log")),
            journal: None,
            merge_base: journal.merge_base(),
            open: Some(journal),
        })
    }
}

/// For encoders, `--base` names the pre-trained checkpoint the merge baselines (`B`) need,
/// not an adapter base: it leaves the search inputs (the encoder pair loads without one).
fn merge_base(mut inputs: SearchInputs) -> anyhow::Result<(SearchInputs, Option<PathBuf>)> {
    let Some(base) = inputs.base.clone() else {
        return Ok((inputs, None));
    };
    if crate::model::source::is_decoder(&inputs.victim) {
        return Ok((inputs, None));
    }
    if !base.join("config.json").is_file() {
        return Err(crate::GmsError::bad_file(
            &base,
            "is not a model folder (no config.json)",
            "give --base the pre-trained checkpoint victim and proxy were fine-tuned from, or drop it",
        )
        .into());
    }
    inputs.base = None;
    Ok((inputs, Some(base)))
}

/// The embedded demo's inputs, written out to files the session can load.
fn demo_inputs() -> anyhow::Result<SearchInputs> {
    Ok(crate::demo::inputs()?)
}
