//! The search worker: a thread that owns the session and runs the search, steered by
//! [`Command`]s and reporting [`WorkerEvent`]s over channels. The CLI and the TUI both drive it.

use crate::error::{ErrorClass, GmsError, Result};
use crate::gms::evaluator::EvalStats;
use crate::gms::journal::{Entry, Journal, JournalWriter};
use crate::gms::modes::{new_search, run_to_end, Search, SearchMode};
use crate::gms::report::{Origin, ReportParts, StrategyReport, SweepRow};
use crate::gms::score::{Baseline, Counts, Metrics};
use crate::gms::search::{Point, SearchEvent, SearchParams};
use crate::gms::session::{Session, TestMetrics};
use crate::gms::signal::{self, Signal, SignalMonitor, SuspectSignal};
use crate::model::{ModelSource, Module, SubstitutionMatrix};
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
    /// Run a search in `mode` to the end for each α (served from the shared cache where
    /// possible), at the running search's patience. Sweeps of other modes stand beside it in
    /// the TUI's trade-off view.
    Sweep {
        /// The αs, in order.
        alphas: Vec<f64>,
        /// The searches' mode.
        mode: SearchMode,
    },
    /// Write a strategy report (and optionally the purified model) for `matrix`, or for the
    /// search's best when `None`.
    Export {
        /// The strategy; `None` = the search's best.
        matrix: Option<SubstitutionMatrix>,
        /// With `matrix: None`: the answer of a search with these parameters instead of the
        /// running one's (a point of the α sweep the TUI shows). It replays from the cache the
        /// sweep filled, so the report carries that search's own α, mode, trace and
        /// evaluations.
        search: Option<(SearchParams, SearchMode)>,
        /// The α sweep to record in the report (empty: none was run).
        sweep: Vec<SweepRow>,
        /// Where the strategy JSON goes.
        json: PathBuf,
        /// Where the purified model folder goes, if wanted.
        model: Option<PathBuf>,
    },
    /// Merge and score every merge baseline at its defaults (`gms baselines`' rows), the
    /// merge and each part of its scoring a unit between other work; each is reported as
    /// [`WorkerEvent::Baseline`].
    Baselines {
        /// The pre-trained checkpoint victim and proxy were fine-tuned from: TIES, DARE and
        /// task arithmetic need it; without it only linear (WAG) runs.
        base: Option<PathBuf>,
    },
    /// Write one merge baseline: the mergekit YAML that builds it and, when wanted, the
    /// merged model folder (merged here, written by the export writer).
    ExportBaseline {
        /// The method, at its defaults (as [`Command::Baselines`] scored it).
        method: crate::gms::merge::MergeMethod,
        /// The pre-trained base (the base methods).
        base: Option<PathBuf>,
        /// Where the mergekit YAML goes.
        yaml: PathBuf,
        /// Where the merged model folder goes, if wanted.
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
        /// The architecture's substitutable modules in candidate order (the heatmap's
        /// columns).
        modules: Vec<Module>,
        /// The cells the proxy can give (all unless two adapters adapt different modules; the
        /// others are never substituted).
        substitutable: SubstitutionMatrix,
        /// Things to know about the pair (e.g. adapters with different target modules).
        warnings: Vec<String>,
        /// How the score measures drops.
        drops: crate::gms::score::Drops,
        /// Compute device.
        device: String,
        /// Search parameters in force.
        params: SearchParams,
        /// The search mode in force.
        mode: SearchMode,
        /// Which proxy-set rows the score uses.
        signal: Signal,
    },
    /// A unit of search work.
    Search(SearchEvent),
    /// The suspect-signal check ([`crate::gms::signal`]): sent once the inputs are checked,
    /// after the first step and when the search ends. Its `warnings` are for the user.
    Signal(SuspectSignal),
    /// The search restarted with new parameters or another mode (replaying from the cache).
    Restarted {
        /// The new parameters.
        params: SearchParams,
        /// The search mode now.
        mode: SearchMode,
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
        /// The search's patience.
        patience: usize,
        /// The search's mode.
        mode: SearchMode,
        /// The search's answer at that α.
        best: Point,
        /// Its test-set scores, when test sets were given.
        test: Option<TestMetrics>,
    },
    /// The sweep is done.
    SweepDone,
    /// The merge baselines about to run, in order, and those that will not, with why
    /// (method name, reason): sent when [`Command::Baselines`] starts.
    BaselinesPlanned {
        /// Methods to merge and score, in the order they run.
        methods: Vec<crate::gms::merge::MergeMethod>,
        /// Methods not run, with the reason.
        skipped: Vec<(String, String)>,
    },
    /// One merge baseline scored ([`Command::Baselines`]).
    Baseline(crate::gms::merge::BaselineScore),
    /// Every baseline that could run has; the others, with why not (method name, reason).
    BaselinesDone {
        /// Methods not run, with the reason.
        skipped: Vec<(String, String)>,
    },
    /// Files written for a merge baseline ([`Command::ExportBaseline`]).
    BaselineExported {
        /// The method.
        method: crate::gms::merge::MergeMethod,
        /// The mergekit YAML.
        yaml: PathBuf,
        /// The merged model folder, if written.
        model: Option<PathBuf>,
        /// The base folder in the victim's layout that the YAML reads, when one was written.
        mergekit_base: Option<PathBuf>,
    },
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
        /// Whether it is bad input (exit code 2) or an internal failure (1).
        class: ErrorClass,
    },
    /// Where the search journal stands (sent when the search starts and when it finishes).
    Journal(JournalStatus),
    /// Where the models stand, for a search opened from its journal ([`spawn_opened`]).
    Models(ModelsStatus),
    /// The worker ended.
    Stopped,
}

/// Where the models stand for a search opened from its journal.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ModelsStatus {
    /// Replaying from the journal; nothing is loaded.
    Record {
        /// The journal.
        journal: PathBuf,
    },
    /// Loading them for an evaluation the journal does not hold.
    Loading,
    /// Loaded and checked against the journal: new evaluations are computed and journaled.
    Loaded {
        /// Compute device.
        device: String,
        /// Victim on the test sets, when given.
        victim_test: Option<TestMetrics>,
        /// Things to know about the pair (as in [`WorkerEvent::Ready`]).
        warnings: Vec<String>,
    },
    /// They cannot be loaded (an input changed since the journal was recorded, or is
    /// missing): the search stays read-only.
    Unavailable {
        /// Why, in one line.
        reason: String,
    },
}

/// The error event for `e`, keeping its exit class.
fn error_event(e: &GmsError) -> WorkerEvent {
    WorkerEvent::Error {
        message: e.to_string(),
        class: e.class(),
    }
}

/// How many strategies a journaled search took from its journal and how many it scored.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct JournalStatus {
    /// The journal file.
    pub path: PathBuf,
    /// Evaluations loaded from the journal when the search resumed (0 for a new journal).
    pub recorded: usize,
    /// Evaluations written since (new results, or partial ones completed).
    pub new: usize,
    /// Of those, strategies the journal had already recorded complete: a resumed search
    /// that is exact scores none again.
    pub reevaluated: usize,
}

/// Where a search keeps its journal.
#[derive(Debug, Clone)]
pub struct JournalPlan {
    /// The journal file (created, or appended to when resuming).
    pub path: PathBuf,
    /// The journal to resume from: its inputs, search mode and signal are checked and its
    /// evaluations seed the cache.
    pub resume: Option<Journal>,
    /// How a new journal's header names the inputs (front ends pass the demo's
    /// `recorded_path`, so the demo's temporary copies are named by where they come from);
    /// `None`: as given.
    pub rename: Option<fn(&Path) -> PathBuf>,
}

/// A journal being written by the worker.
struct JournalSink {
    writer: JournalWriter,
    recorded_complete: std::collections::HashSet<SubstitutionMatrix>,
    status: JournalStatus,
}

impl JournalSink {
    /// Checks a resumed journal against the session and seeds the cache, or starts a new one.
    fn open(
        session: &mut Session,
        options: &WorkerOptions,
        plan: JournalPlan,
    ) -> Result<JournalSink> {
        let params = options.params;
        // The header spells the paper's search and signal by leaving them out.
        let mode = (options.mode != SearchMode::Paper).then(|| options.mode.to_string());
        let signal = (options.signal != Signal::Paper).then(|| options.signal.to_string());
        let mut inputs = crate::gms::report::report_inputs(session)?;
        let dtype = session.dtype.as_str().to_string();
        let mut recorded_complete = std::collections::HashSet::new();
        let mut status = JournalStatus {
            path: plan.path.clone(),
            ..JournalStatus::default()
        };
        let writer = match plan.resume {
            Some(journal) => {
                let h = &journal.header;
                if journal.dropped_tail {
                    tracing::warn!(journal = %journal.path.display(), "dropped a truncated last line");
                }
                if let Some((role, path)) = crate::gms::journal::changed_input(&h.inputs, &inputs) {
                    return Err(GmsError::bad_file(
                        &path,
                        format!("the {role} changed since {} was recorded (its sha256 differs)", journal.path.display()),
                        "resume with the inputs the journal was recorded with, or start a new search",
                    ));
                }
                if h.drops != session.evaluator.drops {
                    return Err(GmsError::bad_file(
                        &journal.path,
                        format!(
                            "recorded with --drops {}; this search measures drops {}",
                            h.drops.name(),
                            session.evaluator.drops.name()
                        ),
                        format!("resume with --drops {}", h.drops.name()),
                    ));
                }
                if h.dtype != dtype || h.num_layers != session.evaluator.num_layers() {
                    return Err(GmsError::bad_file(
                        &journal.path,
                        format!(
                            "recorded with dtype {} on {} layers; this search runs {dtype} on {}",
                            h.dtype,
                            h.num_layers,
                            session.evaluator.num_layers()
                        ),
                        "resume with the journal's --dtype",
                    ));
                }
                // Another mode or signal would be another search: its steps would not replay.
                // The mode is the one in force at the journal's end (the workbench's `m`
                // changes it mid-journal); the signal decides which rows the counts are over.
                let (_, recorded_signal, recorded_mode) = journal.modes()?;
                if recorded_mode != options.mode {
                    return Err(GmsError::bad_file(
                        &journal.path,
                        format!("recorded with search mode {recorded_mode}; this search runs {}", options.mode),
                        "resume with the journal's --mode (and --beam, --cells-from), or start a new search",
                    ));
                }
                if recorded_signal != options.signal {
                    return Err(GmsError::bad_file(
                        &journal.path,
                        format!(
                            "recorded with signal {recorded_signal}; this search runs {}",
                            options.signal
                        ),
                        "resume with the journal's --signal, or start a new search",
                    ));
                }
                let (recorded, complete) = journal.seed(&mut session.evaluator)?;
                status.recorded = recorded;
                recorded_complete = complete;
                let mut w = JournalWriter::append_to(
                    &plan.path,
                    journal.dropped_tail.then_some(journal.complete_len),
                )?;
                w.append(&Entry::Action {
                    action: "resume".into(),
                    detail: serde_json::json!({"alpha": params.alpha, "patience": params.patience, "device": session.device_name}),
                })?;
                w
            }
            None => JournalWriter::create(
                &plan.path,
                &crate::gms::journal::Header {
                    format: crate::gms::journal::FORMAT,
                    gms_version: env!("CARGO_PKG_VERSION").to_string(),
                    architecture: session.evaluator.architecture().hf_class().to_string(),
                    num_layers: session.evaluator.num_layers(),
                    modules: session.evaluator.modules().to_vec(),
                    inputs: match plan.rename {
                        Some(rename) => {
                            inputs.map_paths(rename);
                            inputs
                        }
                        None => inputs,
                    },
                    baseline: session.evaluator.baseline_counts(),
                    drops: session.evaluator.drops,
                    batches: Some(session.evaluator.batch_rows()),
                    alpha: params.alpha,
                    patience: params.patience,
                    mode,
                    signal,
                    dtype,
                    device: session.device_name.clone(),
                },
            )?,
        };
        session.evaluator.track_updates();
        Ok(JournalSink {
            writer,
            recorded_complete,
            status,
        })
    }

    /// Writes the evaluator's changed records, then the search events, in that order.
    fn record(
        &mut self,
        ev: &mut crate::gms::evaluator::Evaluator,
        events: &[SearchEvent],
    ) -> Result<()> {
        for (matrix, result) in ev.take_updated() {
            self.status.new += 1;
            if self.recorded_complete.contains(&matrix) {
                self.status.reevaluated += 1;
            }
            self.writer.append(&Entry::evaluation(&matrix, &result))?;
        }
        for e in events {
            match e {
                SearchEvent::Step(s) => {
                    let p = &s.point;
                    self.writer.append(&Entry::step(
                        s.step,
                        p.mv,
                        &p.matrix,
                        p.counts,
                        p.metrics.score,
                        s.improved,
                        s.no_improve,
                    ))?
                }
                SearchEvent::Finished { best, reason } => self.writer.append(&Entry::Finished {
                    cells: best.matrix.cells(),
                    score: best.metrics.score,
                    reason: *reason,
                })?,
                SearchEvent::Candidate(_) => {}
            }
        }
        Ok(())
    }

    fn action(&mut self, action: &str, detail: serde_json::Value) -> Result<()> {
        self.writer.append(&Entry::Action {
            action: action.into(),
            detail,
        })
    }
}

/// What an export asks to have written. The worker computes it; the front end's writer puts
/// it on disk.
pub enum ExportFiles<'a> {
    /// A strategy: its report and, when wanted, the purified model.
    Strategy(StrategyFiles<'a>),
    /// A merge baseline: its mergekit YAML and, when wanted, the merged model.
    Merge(MergeFiles<'a>),
}

/// What a strategy export asks to have written: the scored report, and what the purified
/// model is built from.
pub struct StrategyFiles<'a> {
    /// The strategy report.
    pub report: &'a StrategyReport,
    /// Where the strategy JSON goes.
    pub json: &'a Path,
    /// Where the purified model folder goes, if wanted.
    pub model: Option<&'a Path>,
    /// The victim: the purified model's base.
    pub victim: &'a ModelSource,
    /// The proxy: where the substituted modules come from.
    pub proxy: &'a ModelSource,
}

/// What a merge-baseline export asks to have written.
pub struct MergeFiles<'a> {
    /// Victim, proxy and base, opened.
    pub inputs: &'a crate::gms::merge::MergeInputs,
    /// The method and its parameters.
    pub params: &'a crate::gms::merge::MergeParams,
    /// The merged model, when its folder is wanted.
    pub merged: Option<&'a crate::gms::merge::MergedModel>,
    /// Where the mergekit YAML goes.
    pub yaml: &'a Path,
    /// Where the merged model folder goes, if wanted.
    pub model: Option<&'a Path>,
    /// Where the base folder in the victim's layout goes when mergekit cannot read the base
    /// as it is (`None` when it can, or the method needs no base).
    pub mergekit_base: Option<&'a Path>,
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
    spawn_journaled(load, options, write, None)
}

/// [`spawn`], recording the search in a journal (and resuming from one) as `journal` says.
pub fn spawn_journaled(
    load: impl FnOnce() -> Result<Session> + Send + 'static,
    options: WorkerOptions,
    write: impl FnMut(&ExportFiles<'_>) -> Result<()> + Send + 'static,
    journal: Option<JournalPlan>,
) -> WorkerHandle {
    start(move |events, commands| {
        let mut session = load()?;
        // The signal check comes first: `--signal filtered` changes the proxy sets the
        // journal's evaluations are recorded on.
        let monitor = signal::prepare(&mut session, options.signal)?;
        let sink = journal
            .map(|plan| JournalSink::open(&mut session, &options, plan))
            .transpose()?;
        let backend = Backend::Loaded(Box::new(session));
        let mut w = Worker::new(backend, options, events, commands, Box::new(write));
        w.signal = monitor;
        w.journal = sink;
        w.run();
        Ok(())
    })
}

/// Loads the session a search opened from its journal needs for a new evaluation.
pub type Loader = Box<dyn FnOnce() -> Result<Session> + Send>;

/// Opens a recorded search: replays it from `journal` without loading a model (the heatmap,
/// the steps, the recorded α sweep; α and patience replay from the record), and calls `load`
/// only when a command needs an evaluation the journal does not hold. The loaded session is
/// checked against the journal's fingerprints and seeded from it as `--resume` does, and the
/// journal is appended to from then on; inputs that changed or are missing leave the search
/// read-only ([`ModelsStatus::Unavailable`]).
pub fn spawn_opened(
    journal: Journal,
    load: impl FnOnce() -> Result<Session> + Send + 'static,
    write: impl FnMut(&ExportFiles<'_>) -> Result<()> + Send + 'static,
) -> WorkerHandle {
    start(move |events, commands| {
        let evaluator = journal.evaluator()?;
        let (alpha, patience) = journal.last_params();
        let (_, signal, mode) = journal.modes()?;
        let options = WorkerOptions {
            params: SearchParams { alpha, patience },
            mode,
            signal,
            running: false,
            test_at_end: true,
        };
        let backend = Backend::Record(Box::new(RecordBackend {
            evaluator,
            journal,
            load: Some(Box::new(load)),
            unavailable: None,
        }));
        Worker::new(backend, options, events, commands, Box::new(write)).run();
        Ok(())
    })
}

/// Runs `body` on the worker thread with the channels' ends; an error it returns becomes an
/// [`WorkerEvent::Error`], and [`WorkerEvent::Stopped`] always comes last.
fn start(
    body: impl FnOnce(UnboundedSender<WorkerEvent>, UnboundedReceiver<Command>) -> Result<()>
        + Send
        + 'static,
) -> WorkerHandle {
    let (cmd_tx, cmd_rx) = unbounded_channel();
    let (ev_tx, ev_rx) = unbounded_channel();
    let thread = std::thread::Builder::new()
        .name("gms-search".into())
        .spawn(move || {
            if let Err(e) = body(ev_tx.clone(), cmd_rx) {
                let _ = ev_tx.send(error_event(&e));
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

/// What the worker evaluates with: a loaded session, or a journal's record.
enum Backend {
    /// Models and datasets loaded.
    Loaded(Box<Session>),
    /// A search opened from its journal: no model loaded yet.
    Record(Box<RecordBackend>),
}

struct RecordBackend {
    /// Answers from the journal's evaluations only ([`Journal::evaluator`]).
    evaluator: crate::gms::evaluator::Evaluator,
    journal: Journal,
    /// Loads the models; `None` once it failed (the search stays read-only).
    load: Option<Loader>,
    /// Why the models could not be loaded, once that failed.
    unavailable: Option<String>,
}

impl Backend {
    fn evaluator(&self) -> &crate::gms::evaluator::Evaluator {
        match self {
            Backend::Loaded(s) => &s.evaluator,
            Backend::Record(r) => &r.evaluator,
        }
    }

    fn evaluator_mut(&mut self) -> &mut crate::gms::evaluator::Evaluator {
        match self {
            Backend::Loaded(s) => &mut s.evaluator,
            Backend::Record(r) => &mut r.evaluator,
        }
    }

    /// Test-set scores; none from a record (they need the models).
    fn test_metrics(&mut self, matrix: &SubstitutionMatrix) -> Result<Option<TestMetrics>> {
        match self {
            Backend::Loaded(s) => s.test_metrics(matrix),
            Backend::Record(_) => Ok(None),
        }
    }

    fn warnings(&self) -> Vec<String> {
        match self {
            Backend::Loaded(s) => s.warnings.clone(),
            Backend::Record(_) => Vec::new(),
        }
    }

    fn device_name(&self) -> String {
        match self {
            Backend::Loaded(s) => s.device_name.clone(),
            Backend::Record(_) => "no models loaded".into(),
        }
    }

    /// The loaded session, or the error that says it is needed.
    fn session(&mut self) -> Result<&mut Session> {
        match self {
            Backend::Loaded(s) => Ok(s),
            Backend::Record(r) => Err(GmsError::NotRecorded {
                journal: r.journal.path.clone(),
            }),
        }
    }
}

struct Worker {
    backend: Backend,
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
    /// Whose turn it is when a sweep and a running search both have work: they alternate one
    /// unit each, so asking for a sweep never freezes the search (nor the reverse).
    sweep_turn: bool,
    /// The search journal, when one is kept.
    journal: Option<JournalSink>,
    /// Merge baselines being computed.
    baselines: Option<BaselineJob>,
}

/// [`Command::Baselines`] in progress: the merge inputs and scoring sets, the methods left.
struct BaselineJob {
    pair: crate::gms::merge::BaselinePair,
    sets: crate::gms::merge::ScoringSets,
    device: candle_core::Device,
    pending: Vec<crate::gms::merge::MergeMethod>,
    skipped: Vec<(String, String)>,
    /// The method merged and being scored, a part a unit.
    current: Option<crate::gms::merge::BaselineRun>,
}

/// An α sweep in progress: one search per α, advanced a unit at a time between commands.
struct Sweep {
    alphas: Vec<f64>,
    /// The searches' mode and patience, fixed when the sweep starts: a mode or patience
    /// change meanwhile restarts the running search, not the sweep.
    mode: SearchMode,
    patience: usize,
    next: usize,
    search: Option<Box<dyn Search>>,
}

impl Worker {
    fn new(
        backend: Backend,
        options: WorkerOptions,
        events: UnboundedSender<WorkerEvent>,
        commands: UnboundedReceiver<Command>,
        write: ExportWriter,
    ) -> Worker {
        let search = new_search(
            options.mode,
            options.params,
            backend.evaluator().num_layers(),
        );
        let signal = SignalMonitor::new(
            options.signal,
            backend.evaluator().baseline_counts(),
            None,
            None,
        );
        Worker {
            backend,
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
            sweep_turn: false,
            journal: None,
            baselines: None,
        }
    }

    fn send(&self, e: WorkerEvent) {
        let _ = self.events.send(e);
    }

    fn run(mut self) {
        let empty = SubstitutionMatrix::empty(self.backend.evaluator().num_layers());
        let victim_test = match self.backend.test_metrics(&empty) {
            Ok(t) => t,
            Err(e) => {
                self.send(error_event(&e));
                return;
            }
        };
        self.send(WorkerEvent::Ready {
            baseline: self.backend.evaluator().baseline(),
            baseline_counts: self.backend.evaluator().baseline_counts(),
            victim_test,
            num_layers: self.backend.evaluator().num_layers(),
            modules: self.backend.evaluator().modules().to_vec(),
            substitutable: self.backend.evaluator().substitutable().clone(),
            warnings: self.backend.warnings(),
            drops: self.backend.evaluator().drops,
            device: self.backend.device_name(),
            params: self.options.params,
            mode: self.options.mode,
            signal: self.options.signal,
        });
        self.send(WorkerEvent::Signal(self.signal.report()));
        self.send_journal_status();
        self.send(WorkerEvent::Running {
            running: self.running,
        });
        if let Backend::Record(r) = &self.backend {
            let journal = r.journal.path.clone();
            self.replay_cached();
            self.replay_recorded_sweep();
            self.send(WorkerEvent::Models(ModelsStatus::Record { journal }));
        }
        while !self.stop {
            while let Ok(cmd) = self.commands.try_recv() {
                self.handle(cmd);
            }
            if self.stop {
                break;
            }
            let busy = (self.running || self.stepping) && self.search.finished().is_none();
            // A sweep and a moving search take turns; commands act between any two units.
            self.sweep_turn = !self.sweep_turn;
            // Baselines take turns with a sweep or a moving search too (a merge, or one scored set,
            // is one unit).
            let other = busy || self.sweep.is_some();
            if self.baselines.is_some() && (self.sweep_turn || !other) {
                if let Err(e) = self.advance_baselines() {
                    self.baselines = None;
                    self.send(error_event(&e));
                }
            } else if self.sweep.is_some() && (self.sweep_turn || !busy) {
                let swept = self.advance_sweep();
                self.journal(&[]);
                if let Err(e) = swept {
                    // The unit did not happen; with the models loaded it runs again.
                    if !self.load_models_for(&e) {
                        self.sweep = None;
                        self.send(self.failure_event(&e));
                    }
                }
            } else if busy {
                if let Err(e) = self.advance() {
                    if !self.load_models_for(&e) {
                        self.send(self.failure_event(&e));
                        self.running = false;
                        self.stepping = false;
                        self.send(WorkerEvent::Running { running: false });
                    }
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

    /// Journals what the last unit of work changed: the evaluator's new records, then
    /// `events`. A journal that cannot be written is reported and not written again.
    fn journal(&mut self, events: &[SearchEvent]) {
        let Some(sink) = self.journal.as_mut() else {
            return;
        };
        if let Err(e) = sink.record(self.backend.evaluator_mut(), events) {
            self.journal = None;
            self.send(error_event(&e));
        }
    }

    /// Journals a user action.
    fn journal_action(&mut self, action: &str, detail: serde_json::Value) {
        let Some(sink) = self.journal.as_mut() else {
            return;
        };
        if let Err(e) = sink.action(action, detail) {
            self.journal = None;
            self.send(error_event(&e));
        }
    }

    fn send_journal_status(&self) {
        if let Some(sink) = &self.journal {
            self.send(WorkerEvent::Journal(sink.status.clone()));
        }
    }

    fn advance(&mut self) -> Result<()> {
        let events = self.search.advance(self.backend.evaluator_mut())?;
        self.journal(&events);
        let mut check = false;
        for e in &events {
            self.signal.observe(e);
            check |= matches!(e, SearchEvent::Step(s) if s.step == 1)
                || matches!(e, SearchEvent::Finished { .. });
        }
        if check {
            self.send(WorkerEvent::Signal(self.signal.report()));
        }
        if events
            .iter()
            .any(|e| matches!(e, SearchEvent::Finished { .. }))
        {
            self.send_journal_status();
        }
        for e in events {
            match &e {
                SearchEvent::Step(s) if s.step > 0 => self.stepping = false,
                SearchEvent::Finished { best, .. } => {
                    self.stepping = false;
                    let matrix = best.matrix.clone();
                    self.send(WorkerEvent::Search(e));
                    if self.options.test_at_end {
                        if let Some(test) = self.backend.test_metrics(&matrix)? {
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
            stats: self.backend.evaluator().stats,
        });
        Ok(())
    }

    fn restart(&mut self, params: SearchParams, mode: SearchMode) {
        // A finished search stopped by itself, not by a pause: the new one goes on after the
        // replay. A search the user paused stays paused.
        let go_on = self.search.finished().is_some();
        self.search = new_search(mode, params, self.backend.evaluator().num_layers());
        self.send(WorkerEvent::Restarted { params, mode });
        if go_on && !self.running {
            self.running = true;
            self.send(WorkerEvent::Running { running: true });
        }
        self.replay_cached();
    }

    /// Advances the search as far as the cache answers, whatever the running state.
    fn replay_cached(&mut self) {
        while self.search.finished().is_none()
            && self.search.next_is_cached(self.backend.evaluator())
        {
            if let Err(e) = self.advance() {
                self.send(error_event(&e));
                break;
            }
        }
    }

    /// A search opened from its journal: each mode's last α sweep, each α's search replayed
    /// from the record (an α the record does not finish is left out).
    fn replay_recorded_sweep(&mut self) {
        let Backend::Record(r) = &self.backend else {
            return;
        };
        let sweeps = r.journal.sweeps();
        if sweeps.is_empty() {
            return;
        }
        let layers = self.backend.evaluator().num_layers();
        for recorded in sweeps {
            for alpha in recorded.alphas {
                let params = SearchParams {
                    alpha,
                    patience: recorded.patience,
                };
                let mut s = new_search(recorded.mode, params, layers);
                while s.finished().is_none() && s.next_is_cached(self.backend.evaluator()) {
                    if s.advance(self.backend.evaluator_mut()).is_err() {
                        break;
                    }
                }
                if let (Some(_), Some(best)) = (s.finished(), s.answer()) {
                    self.send(WorkerEvent::SweepPoint {
                        alpha,
                        patience: recorded.patience,
                        mode: recorded.mode,
                        best,
                        test: None,
                    });
                }
            }
        }
        self.send(WorkerEvent::SweepDone);
        self.send(WorkerEvent::Stats {
            stats: self.backend.evaluator().stats,
        });
    }

    /// After `e`: when it is [`GmsError::NotRecorded`] and the models can be loaded, loads
    /// them (checked against the journal and seeded from it, as `--resume` does) so the work
    /// can run again; whether it can.
    fn load_models_for(&mut self, e: &GmsError) -> bool {
        if !matches!(e, GmsError::NotRecorded { .. }) {
            return false;
        }
        let Backend::Record(r) = &mut self.backend else {
            return false;
        };
        let Some(load) = r.load.take() else {
            return false;
        };
        let plan = JournalPlan {
            path: r.journal.path.clone(),
            resume: Some(r.journal.clone()),
            rename: None,
        };
        let stats = r.evaluator.stats;
        self.send(WorkerEvent::Models(ModelsStatus::Loading));
        let options = WorkerOptions {
            params: self.search.params(),
            mode: self.search.mode(),
            ..self.options
        };
        let opened = load().and_then(|mut session| {
            let monitor = signal::prepare(&mut session, options.signal)?;
            let sink = JournalSink::open(&mut session, &options, plan)?;
            Ok((session, monitor, sink))
        });
        match opened {
            Ok((mut session, monitor, sink)) => {
                self.signal = monitor;
                // The counters go on from the replay's.
                session.evaluator.stats = stats;
                let empty = SubstitutionMatrix::empty(session.evaluator.num_layers());
                let victim_test = session.test_metrics(&empty);
                let (device, warnings) = (session.device_name.clone(), session.warnings.clone());
                self.backend = Backend::Loaded(Box::new(session));
                self.journal = Some(sink);
                match victim_test {
                    Ok(victim_test) => self.send(WorkerEvent::Models(ModelsStatus::Loaded {
                        device,
                        victim_test,
                        warnings,
                    })),
                    Err(e) => self.send(error_event(&e)),
                }
                self.send_journal_status();
                true
            }
            Err(e) => {
                let reason = e.to_string();
                if let Backend::Record(r) = &mut self.backend {
                    r.unavailable = Some(reason.clone());
                }
                self.send(WorkerEvent::Models(ModelsStatus::Unavailable { reason }));
                false
            }
        }
    }

    /// The error event for `e`; an evaluation a read-only record cannot give says why.
    fn failure_event(&self, e: &GmsError) -> WorkerEvent {
        match (&self.backend, e) {
            (Backend::Record(r), GmsError::NotRecorded { .. }) => WorkerEvent::Error {
                message: format!(
                    "read-only: this needs an evaluation the journal does not hold, and the models cannot be loaded ({})",
                    r.unavailable.as_deref().unwrap_or("no loader")
                ),
                class: e.class(),
            },
            _ => error_event(e),
        }
    }

    fn handle(&mut self, cmd: Command) {
        if self.journal.is_some() {
            let p = self.search.params();
            let action = match &cmd {
                Command::SetAlpha(a) => Some((
                    "params",
                    serde_json::json!({"alpha": a, "patience": p.patience}),
                )),
                Command::SetPatience(n) => Some((
                    "params",
                    serde_json::json!({"alpha": p.alpha, "patience": n}),
                )),
                Command::SetMode(mode) => {
                    Some(("mode", serde_json::json!({"mode": mode.to_string()})))
                }
                Command::Evaluate { matrix, .. } => {
                    Some(("evaluate", serde_json::json!({"cells": matrix.cells()})))
                }
                Command::Sweep { alphas, mode } => Some((
                    "sweep",
                    serde_json::json!({"alphas": alphas, "mode": mode.to_string()}),
                )),
                Command::Baselines { base } => {
                    Some(("baselines", serde_json::json!({"base": base})))
                }
                Command::ExportBaseline {
                    method,
                    base,
                    yaml,
                    model,
                } => Some((
                    "export_baseline",
                    serde_json::json!({
                        "method": method.name(), "base": base, "yaml": yaml, "model": model,
                    }),
                )),
                Command::Export {
                    matrix,
                    json,
                    model,
                    ..
                } => Some((
                    "export",
                    serde_json::json!({
                        "cells": matrix.as_ref().map(|m| m.cells()), "json": json, "model": model,
                    }),
                )),
                _ => None,
            };
            if let Some((action, detail)) = action {
                self.journal_action(action, detail);
            }
        }
        let retry = cmd.clone();
        let result = self.handle_command(cmd);
        // Evaluations a command caused (a pin, an export's scoring) are journaled too.
        self.journal(&[]);
        if let Err(e) = result {
            // A search opened from its journal: with the models loaded, the command runs again.
            if self.load_models_for(&e) {
                self.handle(retry);
            } else {
                self.send(self.failure_event(&e));
            }
        }
    }

    fn handle_command(&mut self, cmd: Command) -> Result<()> {
        match cmd {
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
            Command::Sweep { alphas, mode } => {
                self.sweep = Some(Sweep {
                    alphas,
                    mode,
                    patience: self.search.params().patience,
                    next: 0,
                    search: None,
                });
                Ok(())
            }
            Command::Export {
                matrix,
                search,
                sweep,
                json,
                model,
            } => self.export(matrix, search, sweep, json, model),
            Command::Baselines { base } => self.start_baselines(base.as_deref()),
            Command::ExportBaseline {
                method,
                base,
                yaml,
                model,
            } => self.export_baseline(method, base.as_deref(), yaml, model),
            Command::Stop => {
                self.stop = true;
                Ok(())
            }
        }
    }

    fn evaluate(&mut self, tag: u64, matrix: SubstitutionMatrix) -> Result<()> {
        let counts = self.backend.evaluator_mut().evaluate(&matrix, None)?.counts;
        let metrics = self
            .backend
            .evaluator()
            .metrics(self.search.params().alpha, &counts);
        let test = self.backend.test_metrics(&matrix)?;
        self.send(WorkerEvent::Evaluated {
            tag,
            matrix,
            metrics,
            test,
        });
        self.send(WorkerEvent::Stats {
            stats: self.backend.evaluator().stats,
        });
        Ok(())
    }

    /// Opens the merge inputs and encodes the sets for [`Command::Baselines`].
    fn start_baselines(&mut self, base: Option<&Path>) -> Result<()> {
        use crate::gms::merge::{BaselinePair, MergeInputs, ScoringSets};
        let session = self.backend.session()?;
        let i = &session.inputs;
        let device = session.evaluator.device().clone();
        let (pair, sets) = match &session.victim {
            ModelSource::Encoder(victim) => {
                let inputs = MergeInputs::open(&i.victim, &i.proxy, base)?;
                let encoder =
                    crate::model::tokenize::TextEncoder::load(&victim.dir, &victim.config)?;
                let paths = crate::gms::merge::score::ScoringPaths {
                    clean: Some(&i.clean),
                    suspect: Some(&i.suspect),
                    test_clean: i.test_clean.as_deref(),
                    test_poison: i.test_poison.as_deref(),
                };
                let sets = ScoringSets::load(&encoder, victim.config.num_labels, &paths, &device)?;
                (BaselinePair::Encoder(Box::new(inputs)), sets)
            }
            ModelSource::Decoder { .. } => {
                // The pair again, as classifiers the merge can read (the evaluator's are
                // behind its views); the sets with the session's own tokenizer.
                let (loaded, _) = crate::model::LoadedPair::load(
                    &i.victim,
                    &i.proxy,
                    i.base.as_deref(),
                    &device,
                )?;
                let crate::model::LoadedPair::Decoder { victim, proxy } = loaded else {
                    unreachable!("a decoder session loads a decoder pair");
                };
                if let Some(why) = crate::gms::merge::decoder::adapters_merge(
                    &victim.classifier,
                    &proxy.classifier,
                ) {
                    let skipped: Vec<(String, String)> = crate::gms::merge::MergeMethod::ALL
                        .iter()
                        .map(|m| (m.name().to_string(), why.clone()))
                        .collect();
                    self.send(WorkerEvent::BaselinesPlanned {
                        methods: Vec::new(),
                        skipped: skipped.clone(),
                    });
                    self.send(WorkerEvent::BaselinesDone { skipped });
                    return Ok(());
                }
                let labels = victim.classifier.num_labels();
                let encode = |p: &Path| -> Result<crate::model::tokenize::EncodedSet> {
                    let rows = crate::gms::session::read_dataset(p, labels)?;
                    session.encode_for(&session.victim, &rows.examples)
                };
                let proxy_sets = Some((encode(&i.clean)?, encode(&i.suspect)?));
                let test_sets = match (&i.test_clean, &i.test_poison) {
                    (Some(c), Some(p)) => Some((encode(c)?, encode(p)?)),
                    _ => None,
                };
                let pair = BaselinePair::Decoder(Box::new((victim.classifier, proxy.classifier)));
                (pair, ScoringSets::from_sets(proxy_sets, test_sets))
            }
        };
        let (pending, skipped) = pair.methods();
        let skipped: Vec<(String, String)> = skipped
            .into_iter()
            .map(|(m, why)| (m.name().to_string(), why))
            .collect();
        self.send(WorkerEvent::BaselinesPlanned {
            methods: pending.clone(),
            skipped: skipped.clone(),
        });
        self.baselines = Some(BaselineJob {
            pair,
            sets,
            device,
            pending,
            skipped,
            current: None,
        });
        Ok(())
    }

    /// Merges `method` at its defaults (when the model is wanted) and has the export writer
    /// put the YAML and the model folder on disk.
    fn export_baseline(
        &mut self,
        method: crate::gms::merge::MergeMethod,
        base: Option<&Path>,
        yaml: PathBuf,
        model: Option<PathBuf>,
    ) -> Result<()> {
        use crate::gms::merge::{merge_models, MergeInputs, MergeParams};
        let session = self.backend.session()?;
        if !matches!(session.victim, ModelSource::Encoder(_)) {
            return Err(GmsError::BadArgument {
                flag: "export",
                value: method.name().into(),
                problem: "decoder merges are scored in the panel; writing them (YAML or model) is \
                          built for encoders only"
                    .into(),
            });
        }
        if method.needs_base() && base.is_none() {
            return Err(GmsError::BadArgument {
                flag: "--base",
                value: String::new(),
                problem: format!("{method} {}", crate::gms::merge::NEEDS_BASE),
            });
        }
        let i = &session.inputs;
        let inputs = MergeInputs::open(&i.victim, &i.proxy, base.filter(|_| method.needs_base()))?;
        let params = MergeParams::defaults(method);
        let merged = model
            .as_ref()
            .map(|_| merge_models(&inputs, &params))
            .transpose()?;
        let mergekit_base = (method.needs_base() && !inputs.base_is_mergekit_ready())
            .then(|| crate::gms::merge::mergekit_base_dir(&yaml));
        (self.write)(&ExportFiles::Merge(MergeFiles {
            inputs: &inputs,
            params: &params,
            merged: merged.as_ref(),
            yaml: &yaml,
            model: model.as_deref(),
            mergekit_base: mergekit_base.as_deref(),
        }))?;
        self.send(WorkerEvent::BaselineExported {
            method,
            yaml,
            model,
            mergekit_base,
        });
        Ok(())
    }

    /// One baseline merged and scored, or the end of the job.
    fn advance_baselines(&mut self) -> Result<()> {
        let Some(job) = self.baselines.as_mut() else {
            return Ok(());
        };
        if job.pending.is_empty() {
            let skipped = std::mem::take(&mut job.skipped);
            self.baselines = None;
            self.send(WorkerEvent::BaselinesDone { skipped });
            return Ok(());
        }
        // A unit is the merge, or one part of its scoring: commands wait for one of those.
        let Some(run) = job.current.as_mut() else {
            let method = job.pending[0];
            job.current = Some(crate::gms::merge::BaselineRun::merge(
                &job.pair,
                method,
                &job.device,
            )?);
            return Ok(());
        };
        if let Some(b) = run.advance(&job.sets)? {
            job.current = None;
            job.pending.remove(0);
            self.send(WorkerEvent::Baseline(b));
        }
        Ok(())
    }

    /// One unit of the sweep: a unit of the current α's search, or the report of a finished α.
    fn advance_sweep(&mut self) -> Result<()> {
        let layers = self.backend.evaluator().num_layers();
        let Some(sweep) = self.sweep.as_mut() else {
            return Ok(());
        };
        let Some(search) = sweep.search.as_mut() else {
            match sweep.alphas.get(sweep.next) {
                Some(&alpha) => {
                    let params = SearchParams {
                        alpha,
                        patience: sweep.patience,
                    };
                    sweep.search = Some(new_search(sweep.mode, params, layers))
                }
                None => {
                    self.sweep = None;
                    self.send(WorkerEvent::SweepDone);
                }
            }
            return Ok(());
        };
        search.advance(self.backend.evaluator_mut())?;
        if search.finished().is_none() {
            return Ok(());
        }
        let (params, mode) = (search.params(), search.mode());
        let best = search
            .answer()
            .expect("a finished search has scored its start");
        sweep.search = None;
        sweep.next += 1;
        let test = self.backend.test_metrics(&best.matrix)?;
        self.send(WorkerEvent::SweepPoint {
            alpha: params.alpha,
            patience: params.patience,
            mode,
            best,
            test,
        });
        self.send(WorkerEvent::Stats {
            stats: self.backend.evaluator().stats,
        });
        Ok(())
    }

    fn export(
        &mut self,
        matrix: Option<SubstitutionMatrix>,
        search: Option<(SearchParams, SearchMode)>,
        sweep: Vec<SweepRow>,
        json: PathBuf,
        model: Option<PathBuf>,
    ) -> Result<()> {
        // The answer of another α or mode: replay that search (from the cache) for its own
        // trace.
        let replayed = match (&matrix, search) {
            (None, Some((p, mode))) => {
                let layers = self.backend.evaluator().num_layers();
                let mut s = new_search(mode, p, layers);
                run_to_end(s.as_mut(), self.backend.evaluator_mut(), |_| {})?;
                Some(s)
            }
            _ => None,
        };
        let answer: &dyn Search = replayed.as_deref().unwrap_or(self.search.as_ref());
        let (matrix, origin) = match matrix {
            Some(m) => (m, Origin::Manual),
            None => match answer.answer() {
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
        let params = answer.params();
        let (trace, evaluations) = match origin {
            Origin::Greedy => (answer.trace().to_vec(), answer.evaluations()),
            Origin::Manual => (Vec::new(), 1),
        };
        let session = self.backend.session()?;
        let mut report = StrategyReport::build(
            session,
            ReportParts {
                matrix: &matrix,
                origin,
                alpha: params.alpha,
                patience: params.patience,
                mode: answer.mode(),
                trace: &trace,
                evaluations,
                suspect_signal: Some(self.signal.report()),
            },
        )?;
        report.sweep = sweep;
        (self.write)(&ExportFiles::Strategy(StrategyFiles {
            report: &report,
            json: &json,
            model: model.as_deref(),
            victim: &session.victim,
            proxy: &session.proxy,
        }))?;
        self.send(WorkerEvent::Exported { json, model });
        Ok(())
    }
}
