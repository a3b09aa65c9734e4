//! The search worker: a thread that owns the session and runs the search, steered by
//! [`Command`]s and reporting [`WorkerEvent`]s over channels. The CLI and the TUI both drive it.

use crate::error::Result;
use crate::gms::evaluator::EvalStats;
use crate::gms::modes::{new_search, Search, SearchMode};
use crate::gms::report::{Origin, ReportParts, StrategyReport};
use crate::gms::score::{Baseline, Counts, Metrics};
use crate::gms::search::{Point, SearchEvent, SearchParams};
use crate::gms::session::{Session, TestMetrics};
use crate::gms::signal::{self, Signal, SignalMonitor, SuspectSignal};
use crate::model::{ModelFolder, SubstitutionMatrix};
use serde::Serialize;
use std::path::{Path, PathBuf};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

/// What the front end asks of the worker.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Stop after the unit in flight.
    Pause,
    /// Continue the search.
    Resume,
    /// While paused: run one greedy step (its candidates and the move).
    Step,
    /// Change α: the search replays from the cache under the new value and goes on.
    SetAlpha(f64),
    /// Change patience, replaying like [`Command::SetAlpha`].
    SetPatience(usize),
    /// Change the search mode, replaying like [`Command::SetAlpha`].
    SetMode(SearchMode),
    /// Score an arbitrary strategy (proxy sets, and test sets when given).
    Evaluate {
        /// Echoed back in [`WorkerEvent::Evaluated`].
        tag: u64,
        /// The strategy.
        matrix: SubstitutionMatrix,
    },
    /// Run the search to the end for each α (served from the shared cache where possible).
    Sweep(Vec<f64>),
    /// Write a strategy report (and optionally the purified model) for `matrix`, or for the
    /// search's best when `None`.
    Export {
        /// The strategy; `None` = the search's best.
        matrix: Option<SubstitutionMatrix>,
        /// Where the strategy JSON goes.
        json: PathBuf,
        /// Where the purified model folder goes, if wanted.
        model: Option<PathBuf>,
    },
    /// End the worker.
    Stop,
}

/// What the worker reports.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WorkerEvent {
    /// Inputs loaded; the victim's baseline is known.
    Ready {
        /// Victim on the proxy sets.
        baseline: Baseline,
        /// Victim counts on the proxy sets.
        baseline_counts: Counts,
        /// Victim on the test sets, when given.
        victim_test: Option<TestMetrics>,
        /// Layers of the model.
        num_layers: usize,
        /// Compute device.
        device: String,
        /// Search parameters in force.
        params: SearchParams,
    },
    /// A unit of search work.
    Search(SearchEvent),
    /// The suspect-signal check ([`crate::gms::signal`]): sent once the inputs are checked,
    /// after the first step and when the search ends. Its `warnings` are for the user.
    Signal(SuspectSignal),
    /// The search restarted with new parameters (replaying from the cache).
    Restarted {
        /// The new parameters.
        params: SearchParams,
    },
    /// Running state changed.
    Running {
        /// Whether the search is now running.
        running: bool,
    },
    /// An explicitly requested evaluation.
    Evaluated {
        /// The request's tag.
        tag: u64,
        /// The strategy.
        matrix: SubstitutionMatrix,
        /// Proxy-set scores under the current α.
        metrics: Metrics,
        /// Test-set scores, when test sets were given.
        test: Option<TestMetrics>,
    },
    /// One α of a sweep.
    SweepPoint {
        /// The α.
        alpha: f64,
        /// The search's answer at that α.
        best: Point,
        /// Its test-set scores, when test sets were given.
        test: Option<TestMetrics>,
    },
    /// The sweep is done.
    SweepDone,
    /// Files written by an export.
    Exported {
        /// The strategy JSON.
        json: PathBuf,
        /// The model folder, if written.
        model: Option<PathBuf>,
    },
    /// The purified model's test scores at the end of a search, when test sets were given.
    FinalTest {
        /// Test-set scores of the best strategy.
        test: TestMetrics,
    },
    /// Evaluator counters after the last unit.
    Stats {
        /// The counters.
        stats: EvalStats,
    },
    /// Something failed; the worker goes on where it can.
    Error {
        /// One-line description.
        message: String,
    },
    /// The worker ended.
    Stopped,
}

/// What an export asks to have written: the scored report, and what the purified model is
/// built from. The worker computes it; the front end's writer puts it on disk.
pub struct ExportFiles<'a> {
    /// The strategy report.
    pub report: &'a StrategyReport,
    /// Where the strategy JSON goes.
    pub json: &'a Path,
    /// Where the purified model folder goes, if wanted.
    pub model: Option<&'a Path>,
    /// The victim's folder: the purified model's base.
    pub victim: &'a ModelFolder,
    /// The proxy's folder: where the substituted modules come from.
    pub proxy: &'a ModelFolder,
}

/// Writes an export's files on the worker thread (so a large model does not stall the UI).
/// Front ends pass `export::write_export`; `gms` itself never imports the export layer,
/// which sits above it.
pub type ExportWriter = Box<dyn FnMut(&ExportFiles<'_>) -> Result<()> + Send>;

/// The front end's end of a worker.
pub struct WorkerHandle {
    /// Send commands here.
    pub commands: UnboundedSender<Command>,
    /// Receive events here.
    pub events: UnboundedReceiver<WorkerEvent>,
    /// The worker thread.
    pub thread: std::thread::JoinHandle<()>,
}

/// How the worker starts.
#[derive(Debug, Clone, Copy)]
pub struct WorkerOptions {
    /// Initial parameters.
    pub params: SearchParams,
    /// The search mode (src/gms/modes).
    pub mode: SearchMode,
    /// Which proxy-set rows the score uses (src/gms/signal.rs).
    pub signal: Signal,
    /// Start running (else paused, waiting for Resume or Step).
    pub running: bool,
    /// Score the final best on the test sets when the search finishes.
    pub test_at_end: bool,
}

/// Starts a worker; `load` runs on the worker thread, so the caller's UI stays live meanwhile.
/// `write` puts [`Command::Export`]'s files on disk.
pub fn spawn(
    load: impl FnOnce() -> Result<Session> + Send + 'static,
    options: WorkerOptions,
    write: impl FnMut(&ExportFiles<'_>) -> Result<()> + Send + 'static,
) -> WorkerHandle {
    let (cmd_tx, cmd_rx) = unbounded_channel();
    let (ev_tx, ev_rx) = unbounded_channel();
    let thread = std::thread::Builder::new()
        .name("gms-search".into())
        .spawn(move || {
            match load() {
                Ok(session) => {
                    Worker::new(session, options, ev_tx.clone(), cmd_rx, Box::new(write)).run()
                }
                Err(e) => {
                    let _ = ev_tx.send(WorkerEvent::Error {
                        message: e.to_string(),
                    });
                }
            }
            let _ = ev_tx.send(WorkerEvent::Stopped);
        })
        .expect("the OS can start a thread");
    WorkerHandle {
        commands: cmd_tx,
        events: ev_rx,
        thread,
    }
}

struct Worker {
    session: Session,
    search: Box<dyn Search>,
    signal: SignalMonitor,
    options: WorkerOptions,
    running: bool,
    stepping: bool,
    events: UnboundedSender<WorkerEvent>,
    commands: UnboundedReceiver<Command>,
    stop: bool,
    sweep: Option<Sweep>,
    write: ExportWriter,
}

/// An α sweep in progress: one search per α, advanced a unit at a time between commands.
struct Sweep {
    alphas: Vec<f64>,
    next: usize,
    search: Option<Box<dyn Search>>,
}

impl Worker {
    fn new(
        session: Session,
        options: WorkerOptions,
        events: UnboundedSender<WorkerEvent>,
        commands: UnboundedReceiver<Command>,
        write: ExportWriter,
    ) -> Worker {
        let search = new_search(options.mode, options.params, session.evaluator.num_layers());
        let signal = SignalMonitor::new(
            options.signal,
            session.evaluator.baseline_counts(),
            None,
            None,
        );
        Worker {
            session,
            search,
            signal,
            running: options.running,
            options,
            stepping: false,
            events,
            commands,
            stop: false,
            sweep: None,
            write,
        }
    }

    fn send(&self, e: WorkerEvent) {
        let _ = self.events.send(e);
    }

    /// Checks the proxy (and with `--signal filtered`, filters the proxy sets by it) before
    /// the baseline is reported.
    fn check_signal(&mut self) -> Result<()> {
        let (filtered, check) = match self.options.signal {
            Signal::Filtered => {
                let (f, c) = signal::filter_by_proxy(&mut self.session)?;
                (Some(f), Some(c))
            }
            Signal::Paper => match signal::check_proxy(&self.session) {
                Ok(c) => (None, Some(c)),
                Err(e) => {
                    // The check needs the proxy's tokenizer; without it the search still runs.
                    tracing::warn!("proxy check skipped: {e}");
                    (None, None)
                }
            },
        };
        self.signal = SignalMonitor::new(
            self.options.signal,
            self.session.evaluator.baseline_counts(),
            filtered,
            check,
        );
        Ok(())
    }

    fn run(mut self) {
        if let Err(e) = self.check_signal() {
            self.send(WorkerEvent::Error {
                message: e.to_string(),
            });
            return;
        }
        let empty = SubstitutionMatrix::empty(self.session.evaluator.num_layers());
        let victim_test = match self.session.test_metrics(&empty) {
            Ok(t) => t,
            Err(e) => {
                self.send(WorkerEvent::Error {
                    message: e.to_string(),
                });
                return;
            }
        };
        self.send(WorkerEvent::Ready {
            baseline: self.session.evaluator.baseline(),
            baseline_counts: self.session.evaluator.baseline_counts(),
            victim_test,
            num_layers: self.session.evaluator.num_layers(),
            device: self.session.device_name.clone(),
            params: self.options.params,
        });
        self.send(WorkerEvent::Signal(self.signal.report()));
        self.send(WorkerEvent::Running {
            running: self.running,
        });
        while !self.stop {
            while let Ok(cmd) = self.commands.try_recv() {
                self.handle(cmd);
            }
            if self.stop {
                break;
            }
            let busy = (self.running || self.stepping) && self.search.finished().is_none();
            if self.sweep.is_some() {
                // The sweep goes first (it was asked for last); commands still act between units.
                if let Err(e) = self.advance_sweep() {
                    self.sweep = None;
                    self.send(WorkerEvent::Error {
                        message: e.to_string(),
                    });
                }
            } else if busy {
                if let Err(e) = self.advance() {
                    self.send(WorkerEvent::Error {
                        message: e.to_string(),
                    });
                    self.running = false;
                    self.stepping = false;
                }
            } else {
                if self.running {
                    self.running = false;
                    self.send(WorkerEvent::Running { running: false });
                }
                match self.commands.blocking_recv() {
                    Some(cmd) => self.handle(cmd),
                    None => break,
                }
            }
        }
    }

    fn advance(&mut self) -> Result<()> {
        let events = self.search.advance(&mut self.session.evaluator)?;
        let mut check = false;
        for e in &events {
            self.signal.observe(e);
            check |= matches!(e, SearchEvent::Step(s) if s.step == 1)
                || matches!(e, SearchEvent::Finished { .. });
        }
        if check {
            self.send(WorkerEvent::Signal(self.signal.report()));
        }
        for e in events {
            match &e {
                SearchEvent::Step(s) if s.step > 0 => self.stepping = false,
                SearchEvent::Finished { best, .. } => {
                    self.stepping = false;
                    let matrix = best.matrix.clone();
                    self.send(WorkerEvent::Search(e));
                    if self.options.test_at_end {
                        if let Some(test) = self.session.test_metrics(&matrix)? {
                            self.send(WorkerEvent::FinalTest { test });
                        }
                    }
                    continue;
                }
                _ => {}
            }
            self.send(WorkerEvent::Search(e));
        }
        self.send(WorkerEvent::Stats {
            stats: self.session.evaluator.stats,
        });
        Ok(())
    }

    fn restart(&mut self, params: SearchParams, mode: SearchMode) {
        self.search = new_search(mode, params, self.session.evaluator.num_layers());
        self.send(WorkerEvent::Restarted { params });
        // Replay what the cache already answers, whatever the running state.
        while self.search.finished().is_none()
            && self.search.next_is_cached(&self.session.evaluator)
        {
            if let Err(e) = self.advance() {
                self.send(WorkerEvent::Error {
                    message: e.to_string(),
                });
                break;
            }
        }
    }

    fn handle(&mut self, cmd: Command) {
        let result = match cmd {
            Command::Pause | Command::Resume => {
                self.running = cmd == Command::Resume;
                self.send(WorkerEvent::Running {
                    running: self.running,
                });
                Ok(())
            }
            Command::Step => {
                self.stepping = !self.running;
                Ok(())
            }
            Command::SetAlpha(alpha) => {
                let p = SearchParams {
                    alpha,
                    ..self.search.params()
                };
                self.restart(p, self.search.mode());
                Ok(())
            }
            Command::SetPatience(patience) => {
                let p = SearchParams {
                    patience,
                    ..self.search.params()
                };
                self.restart(p, self.search.mode());
                Ok(())
            }
            Command::SetMode(mode) => {
                self.restart(self.search.params(), mode);
                Ok(())
            }
            Command::Evaluate { tag, matrix } => self.evaluate(tag, matrix),
            Command::Sweep(alphas) => {
                self.sweep = Some(Sweep {
                    alphas,
                    next: 0,
                    search: None,
                });
                Ok(())
            }
            Command::Export {
                matrix,
                json,
                model,
            } => self.export(matrix, json, model),
            Command::Stop => {
                self.stop = true;
                Ok(())
            }
        };
        if let Err(e) = result {
            self.send(WorkerEvent::Error {
                message: e.to_string(),
            });
        }
    }

    fn evaluate(&mut self, tag: u64, matrix: SubstitutionMatrix) -> Result<()> {
        let counts = self.session.evaluator.evaluate(&matrix, None)?.counts;
        let metrics = self
            .session
            .evaluator
            .metrics(self.search.params().alpha, &counts);
        let test = self.session.test_metrics(&matrix)?;
        self.send(WorkerEvent::Evaluated {
            tag,
            matrix,
            metrics,
            test,
        });
        self.send(WorkerEvent::Stats {
            stats: self.session.evaluator.stats,
        });
        Ok(())
    }

    /// One unit of the sweep: a unit of the current α's search, or the report of a finished α.
    fn advance_sweep(&mut self) -> Result<()> {
        let layers = self.session.evaluator.num_layers();
        let patience = self.search.params().patience;
        let mode = self.search.mode();
        let Some(sweep) = self.sweep.as_mut() else {
            return Ok(());
        };
        let Some(search) = sweep.search.as_mut() else {
            match sweep.alphas.get(sweep.next) {
                Some(&alpha) => {
                    sweep.search = Some(new_search(mode, SearchParams { alpha, patience }, layers))
                }
                None => {
                    self.sweep = None;
                    self.send(WorkerEvent::SweepDone);
                }
            }
            return Ok(());
        };
        search.advance(&mut self.session.evaluator)?;
        if search.finished().is_none() {
            return Ok(());
        }
        let alpha = search.params().alpha;
        let best = search.best().expect("finished").clone();
        sweep.search = None;
        sweep.next += 1;
        let test = self.session.test_metrics(&best.matrix)?;
        self.send(WorkerEvent::SweepPoint { alpha, best, test });
        self.send(WorkerEvent::Stats {
            stats: self.session.evaluator.stats,
        });
        Ok(())
    }

    fn export(
        &mut self,
        matrix: Option<SubstitutionMatrix>,
        json: PathBuf,
        model: Option<PathBuf>,
    ) -> Result<()> {
        let (matrix, origin) = match matrix {
            Some(m) => (m, Origin::Manual),
            None => match self.search.best() {
                Some(b) => (b.matrix.clone(), Origin::Greedy),
                None => {
                    return Err(crate::GmsError::BadArgument {
                        flag: "export",
                        value: String::new(),
                        problem: "the search has not scored anything yet".into(),
                    })
                }
            },
        };
        let params = self.search.params();
        let (trace, evaluations) = match origin {
            Origin::Greedy => (self.search.trace().to_vec(), self.search.evaluations()),
            Origin::Manual => (Vec::new(), 1),
        };
        let report = StrategyReport::build(
            &mut self.session,
            ReportParts {
                matrix: &matrix,
                origin,
                alpha: params.alpha,
                patience: params.patience,
                mode: self.search.mode(),
                trace: &trace,
                evaluations,
                suspect_signal: Some(self.signal.report()),
            },
        )?;
        (self.write)(&ExportFiles {
            report: &report,
            json: &json,
            model: model.as_deref(),
            victim: &self.session.victim_folder,
            proxy: &self.session.proxy_folder,
        })?;
        self.send(WorkerEvent::Exported { json, model });
        Ok(())
    }
}
