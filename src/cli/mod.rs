//! The command line: one subcommand per job, each a thin layer over the library.

mod apply;
mod args;
mod baselines;
mod bench;
mod eval;
mod gen_model;
mod inspect;
mod merge;
mod poison;
mod proxy_sets;
mod report;
mod search;
mod train;
mod tui;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

pub use args::{ModeArgs, ParamArgs, SessionArgs};

/// gms — remove backdoors from fine-tuned transformer classifiers by Guided Module Substitution.
#[derive(Debug, Parser)]
#[command(name = "gms", version, about, long_about = None)]
pub struct Cli {
    /// What to do; with none, the TUI opens on the embedded demo.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the GMS search headless and write the strategy (and optionally the purified model).
    Search(search::SearchCmd),
    /// Accuracy of a model on a labelled dataset.
    Eval(eval::EvalCmd),
    /// Architecture, layers, module map, dtype and parameter count of a model folder.
    Inspect(inspect::InspectCmd),
    /// Write the purified model for a strategy file.
    Apply(apply::ApplyCmd),
    /// Time the kit search and write BENCHMARKS.md.
    Bench(bench::BenchCmd),
    /// The interactive workbench (the default): watch, steer and override the search.
    Tui(tui::TuiCmd),
    /// Poison a dataset with a BadNet or InsertSent trigger (training set or ASR test set).
    Poison(poison::PoisonCmd),
    /// Fine-tune a classifier from a base model, or train one from a config.
    Train(train::TrainCmd),
    /// Build the clean and suspect proxy sets for a victim from its training set.
    ProxySets(proxy_sets::ProxySetsCmd),
    /// Write a random-weight classifier folder of any shape (benchmarks, e.g. BERT-large).
    GenModel(gen_model::GenModelCmd),
    /// Merge victim and proxy (WAG, task arithmetic, TIES, DARE): a baseline to compare GMS with.
    Merge(merge::MergeCmd),
    /// Every merge baseline beside the victim, the proxy and a GMS strategy, as one table.
    Baselines(baselines::BaselinesCmd),
    /// The trace and best strategy a search journal recorded (no model is loaded).
    Report(report::ReportCmd),
}

/// Parses arguments, runs the command, and turns errors into one line on stderr and an exit
/// code: 2 for bad input or usage, 1 for an internal failure ([`crate::error::ErrorClass`]).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Evaluation spreads batches over the cores with single-threaded ops (model::threads);
    // training steps one batch at a time, so it keeps candle's per-op threads. No other thread
    // exists yet, as setting the environment requires.
    if !matches!(cli.command, Some(Command::Train(_))) {
        crate::model::threads::single_threaded_ops();
    }
    let result = match cli.command {
        Some(Command::Search(c)) => c.run(),
        Some(Command::Eval(c)) => c.run(),
        Some(Command::Inspect(c)) => c.run(),
        Some(Command::Apply(c)) => c.run(),
        Some(Command::Bench(c)) => c.run(),
        Some(Command::Poison(c)) => c.run(),
        Some(Command::Train(c)) => c.run(),
        Some(Command::ProxySets(c)) => c.run(),
        Some(Command::GenModel(c)) => c.run(),
        Some(Command::Merge(c)) => c.run(),
        Some(Command::Baselines(c)) => c.run(),
        Some(Command::Tui(c)) => c.run(),
        Some(Command::Report(c)) => c.run(),
        None => tui::TuiCmd::defaults().run(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit_class(&e).exit_code())
        }
    }
}

/// The class of the first typed error in the chain; an untyped one is a usage message
/// (`bail!` in a front end), so bad input.
pub fn exit_class(e: &anyhow::Error) -> crate::error::ErrorClass {
    use crate::error::{ClassedError, ErrorClass};
    for cause in e.chain() {
        if let Some(g) = cause.downcast_ref::<crate::GmsError>() {
            return g.class();
        }
        if let Some(c) = cause.downcast_ref::<ClassedError>() {
            return c.class;
        }
        if cause.downcast_ref::<candle_core::Error>().is_some() {
            return ErrorClass::Internal;
        }
    }
    ErrorClass::BadInput
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ClassedError, ErrorClass};

    #[test]
    fn exit_codes_are_two_for_bad_input_and_one_for_internal_failures() {
        let bad = anyhow::Error::from(crate::GmsError::bad_file("x.json", "truncated", "fix it"))
            .context("reading the strategy");
        assert_eq!(exit_class(&bad).exit_code(), 2);
        let compute = anyhow::Error::from(crate::GmsError::Compute(candle_core::Error::Msg(
            "out of memory".into(),
        )));
        assert_eq!(exit_class(&compute).exit_code(), 1);
        let worker = anyhow::Error::from(ClassedError {
            message: "tensor computation failed".into(),
            class: ErrorClass::Internal,
        });
        assert_eq!(exit_class(&worker).exit_code(), 1);
        assert_eq!(
            exit_class(&anyhow::anyhow!("--victim is required")).exit_code(),
            2
        );
    }
}
