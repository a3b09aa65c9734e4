//! The command line: one subcommand per job, each a thin layer over the library.

mod apply;
mod args;
mod bench;
mod eval;
mod gen_model;
mod inspect;
mod poison;
mod proxy_sets;
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
}

/// Parses arguments, runs the command, and turns errors into one line on stderr + exit code 2.
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
        Some(Command::Tui(c)) => c.run(),
        None => tui::TuiCmd::defaults().run(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
