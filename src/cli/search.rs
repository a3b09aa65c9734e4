//! `gms search`: the paper's search, headless.

use super::args::{ParamArgs, SessionArgs};
use crate::device::open_device;
use crate::gms::search::SearchEvent;
use crate::gms::session::Session;
use crate::gms::worker::{self, Command, WorkerEvent, WorkerOptions};
use anyhow::{bail, Context};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `gms search`.
#[derive(Debug, Args)]
pub struct SearchCmd {
    #[command(flatten)]
    session: SessionArgs,
    #[command(flatten)]
    params: ParamArgs,
    /// Where to write the strategy JSON.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Also write the purified model as an HF folder here (must not exist).
    #[arg(long, value_name = "DIR")]
    out_model: Option<PathBuf>,
    /// Print one JSON event per line on stdout (baseline, candidate, step, finished, test, written).
    #[arg(long)]
    json: bool,
    /// Search the embedded demo (victim, proxy, proxy sets and test sets) instead of given inputs.
    #[arg(long)]
    demo: bool,
}

impl SearchCmd {
    /// Runs the search and writes the outputs.
    pub fn run(self) -> anyhow::Result<()> {
        let params = self.params.params()?;
        let inputs = if self.demo {
            if self.session.any_given()
                || self.session.test_clean.is_some()
                || self.session.test_poison.is_some()
            {
                bail!("--demo brings its own models and datasets; drop --victim/--proxy/--clean/--suspect/--test-*");
            }
            crate::demo::inputs()?
        } else {
            self.session.inputs()?
        };
        if let Some(dir) = &self.out_model {
            if dir.exists()
                && std::fs::read_dir(dir)
                    .map(|mut d| d.next().is_some())
                    .unwrap_or(true)
            {
                bail!(
                    "{}: already exists and is not empty; choose a new --out-model folder",
                    dir.display()
                );
            }
        }
        let device = open_device(&self.session.device)?;
        let dtype = self.session.dtype.dtype();
        let started = Instant::now();
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}").expect("valid template"),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar.set_message("loading models and datasets");
        let mut handle = worker::spawn(
            move || Session::load_with(inputs, &device, dtype),
            WorkerOptions {
                params,
                running: true,
                test_at_end: true,
            },
        );
        // Progress (the baseline, each step as it is taken) goes to stderr above the spinner;
        // the result lines go to stdout at the end.
        let progress = |line: String| bar.suspend(|| eprintln!("{line}"));
        let mut lines: Vec<String> = Vec::new();
        let mut failure = None;
        let mut best_score = f64::NAN;
        while let Some(event) = handle.events.blocking_recv() {
            match &event {
                WorkerEvent::Ready {
                    baseline,
                    device,
                    victim_test,
                    ..
                } => {
                    self.emit(&serde_json::json!({
                        "event": "baseline", "acc": baseline.acc, "asr": baseline.asr,
                        "victim_test": victim_test, "device": device,
                        "load_s": started.elapsed().as_secs_f64(),
                    }));
                    progress(format!(
                        "victim on the proxy sets: acc {:.4}  asr {:.4}  ({device})",
                        baseline.acc, baseline.asr
                    ));
                    bar.set_message("scoring the full substitution");
                }
                WorkerEvent::Search(e) => {
                    self.emit(e);
                    match e {
                        SearchEvent::Candidate(c) => bar.set_message(format!(
                            "step {} · candidate {}/{} ({}) · best {best_score:.4}",
                            c.step,
                            c.index + 1,
                            c.total,
                            c.mv
                        )),
                        SearchEvent::Step(s) => {
                            let m = &s.point.metrics;
                            if s.improved {
                                best_score = m.score;
                            }
                            progress(format!(
                                "step {:>2}  {:<10} acc {:.4}  asr {:.4}  score {:.4}{}",
                                s.step,
                                s.point.mv.to_string(),
                                m.acc,
                                m.asr,
                                m.score,
                                if s.improved { "  new best" } else { "" }
                            ));
                        }
                        SearchEvent::Finished { best, reason } => {
                            lines.push(format!(
                                "best: {}  acc {:.4}  asr {:.4}  score {:.4}  (stopped: {})",
                                best.matrix,
                                best.metrics.acc,
                                best.metrics.asr,
                                best.metrics.score,
                                reason.describe(params.patience)
                            ));
                            bar.set_message("scoring the result on the test sets and writing");
                            let _ = handle.commands.send(Command::Export {
                                matrix: None,
                                search: None,
                                sweep: Vec::new(),
                                json: self.out.clone(),
                                model: self.out_model.clone(),
                            });
                        }
                    }
                }
                WorkerEvent::FinalTest { test } => {
                    self.emit(
                        &serde_json::json!({"event": "test", "cacc": test.cacc, "asr": test.asr}),
                    );
                    lines.push(format!(
                        "test sets: CACC {:.2}% ({}/{})  ASR {:.2}% ({}/{})",
                        test.cacc * 100.0,
                        test.clean_correct,
                        test.clean_total,
                        test.asr * 100.0,
                        test.poison_hits,
                        test.poison_total
                    ));
                }
                WorkerEvent::Exported { json, model } => {
                    self.emit(&serde_json::json!({
                        "event": "written", "strategy": json, "model": model,
                        "wall_s": started.elapsed().as_secs_f64(),
                    }));
                    lines.push(format!("wrote {}", json.display()));
                    if let Some(m) = model {
                        lines.push(format!("wrote {}", m.display()));
                    }
                    let _ = handle.commands.send(Command::Stop);
                }
                WorkerEvent::Error { message } => {
                    failure = Some(message.clone());
                    let _ = handle.commands.send(Command::Stop);
                }
                WorkerEvent::Stopped => break,
                _ => {}
            }
        }
        bar.finish_and_clear();
        let _ = handle.thread.join();
        if let Some(message) = failure {
            bail!(message);
        }
        if !self.json {
            for l in &lines {
                println!("{l}");
            }
            println!("{:.1} s in all", started.elapsed().as_secs_f64());
        }
        std::fs::metadata(&self.out)
            .with_context(|| format!("{} was not written", self.out.display()))?;
        Ok(())
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
