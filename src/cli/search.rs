//! `gms search`: a search (the paper's by default, or a finer mode), headless.

use super::args::{ModeArgs, ParamArgs, SessionArgs};
use crate::device::open_device;
use crate::error::{ClassedError, ErrorClass};
use crate::gms::journal::Journal;
use crate::gms::modes::SearchMode;
use crate::gms::search::SearchEvent;
use crate::gms::search::SearchParams;
use crate::gms::session::{SearchInputs, Session};
use crate::gms::signal::{Signal, WarningKind};
use crate::gms::worker::JournalPlan;
use crate::gms::worker::{self, Command, WorkerEvent, WorkerOptions};
use anyhow::{bail, Context};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `gms search`.
#[derive(Debug, Args)]
pub struct SearchCmd {
    #[command(flatten)]
    session: SessionArgs,
    #[command(flatten)]
    params: ParamArgs,
    #[command(flatten)]
    modes: ModeArgs,
    /// Where to write the strategy JSON.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Also write the purified model here (must not exist): an HF folder, or for PEFT
    /// adapters the purified adapter folder.
    #[arg(long, value_name = "DIR")]
    out_model: Option<PathBuf>,
    /// Print one JSON event per line on stdout (baseline, signal, candidate, step, finished,
    /// test, written).
    #[arg(long)]
    json: bool,
    /// Search the embedded demo (victim, proxy, proxy sets and test sets) instead of given inputs.
    #[arg(long)]
    demo: bool,
    /// Record the search here (default: beside --out, STRATEGY.journal.jsonl).
    #[arg(long, value_name = "FILE", conflicts_with = "resume")]
    journal: Option<PathBuf>,
    /// Resume the search a journal recorded (its inputs, α and patience unless given; what it
    /// scored is not scored again), appending to that journal.
    #[arg(long, value_name = "JOURNAL")]
    resume: Option<PathBuf>,
}

impl SearchCmd {
    /// Runs the search and writes the outputs.
    pub fn run(self) -> anyhow::Result<()> {
        let resume = match &self.resume {
            Some(path) => {
                let journal = Journal::read(path)?;
                if journal.dropped_tail {
                    eprintln!(
                        "note: {}: dropped its truncated last line (the search was stopped while writing it)",
                        path.display()
                    );
                }
                Some(journal)
            }
            None => None,
        };
        // A resumed search keeps the journal's α and patience (it is the same search).
        let params = match &resume {
            Some(j) => SearchParams::validated(j.header.alpha, j.header.patience)?,
            None => self.params.params()?,
        };
        let inputs = match &resume {
            Some(j) if !self.demo && !self.session.any_given() => {
                crate::demo::resolve_recorded(j.header.inputs.search_inputs())
            }
            _ => self.inputs()?,
        };
        let (mode, signal) = self.modes.resolve(resume.as_ref())?;
        let journal = JournalPlan {
            path: match (&self.resume, &self.journal) {
                (Some(r), _) => r.clone(),
                (None, Some(j)) => j.clone(),
                (None, None) => crate::gms::journal::default_path(&self.out),
            },
            resume,
            rename: Some(crate::demo::recorded_path),
        };
        if let Some(dir) = &self.out_model {
            // The writer's own check, made before the search rather than after it.
            crate::atomic::check_new_dir(dir)?;
        }
        let device = open_device(&self.session.device)?;
        let dtype = self.session.dtype.dtype();
        let drops = self.params.drops();
        let mut progress = Progress::new(&self, mode, signal);
        let mut handle = worker::spawn_journaled(
            move || Session::load_scoring(inputs, &device, dtype, drops),
            WorkerOptions {
                params,
                mode,
                signal,
                running: true,
                test_at_end: true,
            },
            crate::export::write_export,
            Some(journal),
        );
        while let Some(event) = handle.events.blocking_recv() {
            if matches!(event, WorkerEvent::Stopped) {
                break;
            }
            if let Some(command) = progress.handle(&event) {
                let _ = handle.commands.send(command);
            }
        }
        progress.bar.finish_and_clear();
        if handle.thread.join().is_err() {
            return Err(ClassedError {
                message: "the search worker panicked (a bug in gms; the journal keeps what was scored, resume with --resume)".into(),
                class: ErrorClass::Internal,
            }
            .into());
        }
        if let Some(failure) = progress.failure {
            return Err(failure.into());
        }
        if !self.json {
            for l in &progress.lines {
                println!("{l}");
            }
            println!("{:.1} s in all", progress.started.elapsed().as_secs_f64());
        }
        std::fs::metadata(&self.out)
            .with_context(|| format!("{} was not written", self.out.display()))?;
        Ok(())
    }

    /// The embedded demo's inputs with `--demo`, else the given ones.
    fn inputs(&self) -> anyhow::Result<SearchInputs> {
        if !self.demo {
            return self.session.inputs();
        }
        if self.session.any_given()
            || self.session.test_clean.is_some()
            || self.session.test_poison.is_some()
        {
            bail!("--demo brings its own models and datasets; drop --victim/--proxy/--clean/--suspect/--test-*");
        }
        Ok(crate::demo::inputs()?)
    }

    fn emit<T: serde::Serialize>(&self, value: &T) {
        if self.json {
            println!(
                "{}",
                serde_json::to_string(value).expect("events serialize")
            );
        }
    }
}

/// What `gms search` makes of the worker's events: a spinner on stderr, one JSON line per
/// event on stdout with `--json`, and the summary printed at the end.
struct Progress<'a> {
    cmd: &'a SearchCmd,
    bar: ProgressBar,
    started: Instant,
    lines: Vec<String>,
    best_score: f64,
    failure: Option<ClassedError>,
    /// Which suspect-signal warnings were printed, so each shows once.
    warned: HashSet<WarningKind>,
    /// The search's mode and signal (a resume's are the journal's).
    mode: SearchMode,
    signal: Signal,
}

impl<'a> Progress<'a> {
    fn new(cmd: &'a SearchCmd, mode: SearchMode, signal: Signal) -> Progress<'a> {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}").expect("valid template"),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar.set_message("loading models and datasets");
        Progress {
            cmd,
            bar,
            started: Instant::now(),
            lines: Vec::new(),
            best_score: f64::NAN,
            failure: None,
            warned: HashSet::new(),
            mode,
            signal,
        }
    }

    /// Takes in one event; returns the command it calls for: the export once the search has
    /// finished, the stop once the files are written or something failed.
    fn handle(&mut self, event: &WorkerEvent) -> Option<Command> {
        match event {
            WorkerEvent::Ready {
                baseline,
                device,
                victim_test,
                warnings,
                ..
            } => {
                for w in warnings {
                    self.bar.suspend(|| eprintln!("warning: {w}"));
                }
                self.cmd.emit(&serde_json::json!({
                    "event": "baseline", "acc": baseline.acc, "asr": baseline.asr,
                    "victim_test": victim_test, "device": device,
                    "load_s": self.started.elapsed().as_secs_f64(),
                    "warnings": warnings,
                }));
                self.progress(format!(
                    "victim on the proxy sets: acc {:.4}  asr {:.4}  ({device})",
                    baseline.acc, baseline.asr
                ));
                self.lines
                    .push(format!("mode: {}  signal: {}", self.mode, self.signal));
                self.bar.set_message("scoring the full substitution");
                None
            }
            WorkerEvent::Search(e) => {
                self.cmd.emit(e);
                self.search(e)
            }
            WorkerEvent::Signal(signal) => {
                let mut line = serde_json::to_value(signal).expect("the report serializes");
                line["event"] = "signal".into();
                self.cmd.emit(&line);
                // A warning goes to stderr even with --json: it is for the person running it.
                for w in &signal.warnings {
                    if self.warned.insert(w.kind) {
                        self.bar.suspend(|| eprintln!("warning: {}", w.text));
                    }
                }
                None
            }
            WorkerEvent::FinalTest { test } => {
                self.cmd.emit(
                    &serde_json::json!({"event": "test", "cacc": test.cacc, "asr": test.asr}),
                );
                self.lines.push(format!(
                    "test sets: CACC {:.2}% ({}/{})  ASR {:.2}% ({}/{})",
                    test.cacc * 100.0,
                    test.clean_correct,
                    test.clean_total,
                    test.asr * 100.0,
                    test.poison_hits,
                    test.poison_total
                ));
                None
            }
            WorkerEvent::Exported { json, model } => {
                self.cmd.emit(&serde_json::json!({
                    "event": "written", "strategy": json, "model": model,
                    "wall_s": self.started.elapsed().as_secs_f64(),
                }));
                self.lines.push(format!("wrote {}", json.display()));
                if let Some(m) = model {
                    self.lines.push(format!("wrote {}", m.display()));
                }
                Some(Command::Stop)
            }
            WorkerEvent::Error { message, class } => {
                self.failure = Some(ClassedError {
                    message: message.clone(),
                    class: *class,
                });
                Some(Command::Stop)
            }
            WorkerEvent::Journal(status) => {
                self.cmd.emit(&serde_json::json!({
                    "event": "journal", "path": status.path, "recorded": status.recorded,
                    "new": status.new, "reevaluated": status.reevaluated,
                }));
                None
            }
            _ => None,
        }
    }

    /// Progress (the baseline, each step as it is taken) goes to stderr above the spinner as it
    /// happens; the result lines go to stdout at the end.
    fn progress(&self, line: String) {
        self.bar.suspend(|| eprintln!("{line}"));
    }

    fn search(&mut self, event: &SearchEvent) -> Option<Command> {
        match event {
            SearchEvent::Candidate(c) => {
                self.bar.set_message(format!(
                    "step {} · candidate {}/{} ({}) · best {:.4}",
                    c.step,
                    c.index + 1,
                    c.total,
                    c.mv,
                    self.best_score
                ));
                None
            }
            SearchEvent::Step(s) => {
                let m = &s.point.metrics;
                if s.improved {
                    self.best_score = m.score;
                }
                self.progress(format!(
                    "step {:>2}  {:<12} acc {:.4}  asr {:.4}  score {:.4}{}",
                    s.step,
                    s.point.mv.to_string(),
                    m.acc,
                    m.asr,
                    m.score,
                    if s.improved { "  new best" } else { "" }
                ));
                None
            }
            SearchEvent::Finished { best, reason } => {
                self.lines.push(format!(
                    "best: {}  acc {:.4}  asr {:.4}  score {:.4}  (stopped: {})",
                    best.matrix,
                    best.metrics.acc,
                    best.metrics.asr,
                    best.metrics.score,
                    reason.describe(self.cmd.params.patience)
                ));
                self.bar
                    .set_message("scoring the result on the test sets and writing");
                Some(Command::Export {
                    matrix: None,
                    search: None,
                    sweep: Vec::new(),
                    json: self.cmd.out.clone(),
                    model: self.cmd.out_model.clone(),
                })
            }
        }
    }
}
