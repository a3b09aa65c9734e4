//! The workbench's state. [`App::update`] applies user [`Action`]s and returns the worker
//! [`Command`]s they imply; [`App::on_worker_event`] applies what the worker reports. Neither
//! draws nor touches the terminal, so both run the same in tests and in the live loop.

use crate::gms::evaluator::EvalStats;
use crate::gms::score::{self, Baseline, Metrics};
use crate::gms::search::{
    candidates, CandidateReport, Point, SearchEvent, SearchParams, StopReason, TraceStep,
};
use crate::gms::session::TestMetrics;
use crate::gms::worker::{Command, WorkerEvent};
use crate::model::{Module, SubstitutionMatrix};
use crate::tui::action::{Action, Direction};
use ratatui::layout::Rect;
use std::path::{Path, PathBuf};

/// α changes in steps of 0.05 (fine enough to move along the trade-off, coarse enough to
/// reach any decile in a few presses).
pub const ALPHA_STEP: f64 = 0.05;

/// The α values of a sweep: 0.0 to 1.0 by 0.1 (the trade-off grid).
pub fn sweep_alphas() -> Vec<f64> {
    (0..=10).map(|i| f64::from(i) / 10.0).collect()
}

/// How a heatmap cell is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellState {
    /// Taken from the proxy.
    Substituted,
    /// The victim's own module.
    Kept,
    /// Substituted now; the candidate in flight drops (or adds) it.
    Evaluating,
    /// Dropped by the last greedy step.
    JustRemoved,
}

/// A strategy evaluated on request and pinned in the step table.
#[derive(Debug, Clone)]
pub struct Pinned {
    /// Row label (`e1`, `e2`, …).
    pub label: String,
    /// Request tag echoed by the worker.
    pub tag: u64,
    /// The strategy.
    pub matrix: SubstitutionMatrix,
    /// Proxy-set accuracy and ASR, once evaluated.
    pub metrics: Option<Metrics>,
    /// Test-set scores, when test sets were given.
    pub test: Option<TestMetrics>,
}

/// One α of the sweep.
#[derive(Debug, Clone)]
pub struct SweepResult {
    /// The α.
    pub alpha: f64,
    /// The search's answer at that α.
    pub best: Point,
    /// Its test-set scores, when test sets were given.
    pub test: Option<TestMetrics>,
}

/// A one-line message for the status area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The text.
    pub text: String,
    /// Whether it reports a failure.
    pub error: bool,
}

/// What the search is doing, for the status line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Models are loading.
    Loading,
    /// Running.
    Running,
    /// Pause requested; the candidate in flight finishes first.
    Pausing,
    /// Paused.
    Paused,
    /// Paused, doing one step.
    Stepping,
    /// The search ended.
    Finished(StopReason),
    /// The worker ended.
    Stopped,
}

/// The whole state of the workbench.
pub struct App {
    /// Where `w` and `W` write.
    pub export_dir: PathBuf,
    /// Search parameters in force (optimistically updated on `+`/`-`/`]`/`[`).
    pub params: SearchParams,
    /// The victim's proxy-set scores, once loaded.
    pub baseline: Option<Baseline>,
    /// The victim's test-set scores, when test sets were given.
    pub victim_test: Option<TestMetrics>,
    /// Layers of the model (0 until loaded).
    pub num_layers: usize,
    /// Compute device, as the worker names it.
    pub device: String,
    /// Whether the worker reports running.
    pub running: bool,
    /// Pause was asked for and not yet confirmed.
    pub pause_requested: bool,
    /// A single step was asked for and not yet taken.
    pub stepping: bool,
    /// Taken greedy steps, step 0 first.
    pub steps: Vec<TraceStep>,
    /// Candidates of the step in progress, as they stream in.
    pub candidates: Vec<CandidateReport>,
    /// Why the search ended, once it has.
    pub finished: Option<StopReason>,
    /// Test-set scores of the search's best, when test sets were given.
    pub final_test: Option<TestMetrics>,
    /// Evaluator counters.
    pub stats: EvalStats,
    /// Evaluations per second, measured by the live loop (`None` in tests and before data).
    pub rate: Option<f64>,
    /// Heatmap cursor `(layer, module index)`.
    pub cursor: (usize, usize),
    /// The hand-edited strategy; `None` while the heatmap follows the search.
    pub edited: Option<SubstitutionMatrix>,
    /// Strategies evaluated on request.
    pub pinned: Vec<Pinned>,
    /// α sweep results.
    pub sweep: Vec<SweepResult>,
    /// Whether a sweep is in progress.
    pub sweeping: bool,
    /// Help overlay shown.
    pub help: bool,
    /// Quit confirmation shown.
    pub confirm_quit: bool,
    /// The loop should end.
    pub quit: bool,
    /// The worker has ended.
    pub stopped: bool,
    /// Last message for the status area.
    pub message: Option<Message>,
    /// Terminal size, for mouse hit-testing.
    pub size: Rect,
    /// Log file, shown in the help overlay.
    pub log_file: Option<PathBuf>,
    exports_pending: Vec<(PathBuf, SubstitutionMatrix)>,
    last_written: Option<SubstitutionMatrix>,
    export_counter: usize,
    next_tag: u64,
}

impl App {
    /// A fresh state: loading, parameters as asked for, files to `export_dir`.
    pub fn new(params: SearchParams, export_dir: PathBuf) -> App {
        App {
            export_dir,
            params,
            baseline: None,
            victim_test: None,
            num_layers: 0,
            device: String::new(),
            running: false,
            pause_requested: false,
            stepping: false,
            steps: Vec::new(),
            candidates: Vec::new(),
            finished: None,
            final_test: None,
            stats: EvalStats::default(),
            rate: None,
            cursor: (0, 0),
            edited: None,
            pinned: Vec::new(),
            sweep: Vec::new(),
            sweeping: false,
            help: false,
            confirm_quit: false,
            quit: false,
            stopped: false,
            message: None,
            size: Rect::new(0, 0, 100, 30),
            log_file: None,
            exports_pending: Vec::new(),
            last_written: None,
            export_counter: 0,
            next_tag: 1,
        }
    }

    /// Whether the worker has loaded the inputs.
    pub fn ready(&self) -> bool {
        self.baseline.is_some()
    }

    /// Whether test sets were given.
    pub fn has_test_sets(&self) -> bool {
        self.victim_test.is_some()
    }

    /// What the search is doing.
    pub fn run_state(&self) -> RunState {
        if self.stopped {
            RunState::Stopped
        } else if !self.ready() {
            RunState::Loading
        } else if let Some(r) = self.finished {
            RunState::Finished(r)
        } else if self.running && self.pause_requested {
            RunState::Pausing
        } else if self.running {
            RunState::Running
        } else if self.stepping {
            RunState::Stepping
        } else {
            RunState::Paused
        }
    }

    /// The search's best point so far (the last step that improved).
    pub fn best(&self) -> Option<&Point> {
        self.steps
            .iter()
            .rev()
            .find(|s| s.improved)
            .map(|s| &s.point)
    }

    /// The greedy state the search stands on.
    pub fn current(&self) -> Option<&Point> {
        self.steps.last().map(|s| &s.point)
    }

    /// The matrix the heatmap shows: the edited strategy, else the search's current state.
    pub fn shown_matrix(&self) -> SubstitutionMatrix {
        match (&self.edited, self.current()) {
            (Some(e), _) => e.clone(),
            (None, Some(p)) => p.matrix.clone(),
            (None, None) => SubstitutionMatrix::empty(self.num_layers),
        }
    }

    /// The strategy the worker is scoring now, when the search is moving.
    pub fn in_flight(&self) -> Option<SubstitutionMatrix> {
        if !self.ready() || self.finished.is_some() || !(self.running || self.stepping) {
            return None;
        }
        match self.current() {
            None => Some(SubstitutionMatrix::full(self.num_layers)),
            Some(p) => candidates(&p.modules, &p.layers)
                .get(self.candidates.len())
                .map(|c| c.matrix(self.num_layers)),
        }
    }

    /// How to draw heatmap cell (`layer`, `module`).
    pub fn cell_state(&self, layer: usize, module: Module) -> CellState {
        if let Some(e) = &self.edited {
            return if e.get(layer, module) {
                CellState::Substituted
            } else {
                CellState::Kept
            };
        }
        let current = self.shown_matrix();
        let on = current.get(layer, module);
        if self.in_flight().is_some_and(|m| m.get(layer, module) != on) {
            return CellState::Evaluating;
        }
        if on {
            return CellState::Substituted;
        }
        let n = self.steps.len();
        if n >= 2 && self.steps[n - 2].point.matrix.get(layer, module) {
            CellState::JustRemoved
        } else {
            CellState::Kept
        }
    }

    /// The strategy `w` writes: the edited one, else the search's best.
    pub fn export_target(&self) -> Option<SubstitutionMatrix> {
        self.edited
            .clone()
            .or_else(|| self.best().map(|p| p.matrix.clone()))
    }

    /// Whether quitting now would lose a result: the search finished or a strategy was
    /// edited, and that strategy has not been written.
    pub fn unsaved(&self) -> bool {
        let worth = self.finished.is_some() || self.edited.is_some();
        worth && self.export_target().is_some() && self.export_target() != self.last_written
    }

    /// Re-scores proxy metrics under the current α (pinned rows keep their accuracy and ASR).
    pub fn rescore(&self, m: &Metrics) -> Metrics {
        match self.baseline {
            Some(b) => score::metrics(self.params.alpha, b, m.acc, m.asr),
            None => *m,
        }
    }

    /// Applies a user action; returns the commands to send to the worker.
    pub fn update(&mut self, action: Action) -> Vec<Command> {
        if let Action::Resize { width, height } = action {
            self.size = Rect::new(0, 0, width, height);
            return Vec::new();
        }
        if self.confirm_quit {
            match action {
                Action::ForceQuit | Action::Quit => self.quit = true,
                Action::WriteStrategy | Action::WriteModel => {
                    self.confirm_quit = false;
                    return self.update(action);
                }
                _ => self.confirm_quit = false,
            }
            return Vec::new();
        }
        if self.help {
            match action {
                Action::ToggleHelp | Action::Dismiss => self.help = false,
                Action::Quit | Action::ForceQuit => {
                    self.help = false;
                    return self.update(action);
                }
                _ => {}
            }
            return Vec::new();
        }
        match action {
            Action::ToggleHelp => self.help = true,
            Action::Dismiss => self.message = None,
            Action::Quit if self.unsaved() => self.confirm_quit = true,
            Action::Quit | Action::ForceQuit => self.quit = true,
            Action::Resize { .. } => {}
            Action::Click { column, row } => {
                if let Some(cell) = crate::tui::ui::heatmap_cell_at(self, column, row) {
                    self.cursor = cell;
                }
            }
            Action::Move(d) => self.move_cursor(d),
            _ if !self.ready() => self.say("still loading the models and datasets", false),
            Action::TogglePause => return self.toggle_pause(),
            Action::Step => return self.step(),
            Action::AlphaUp | Action::AlphaDown => {
                let sign = if action == Action::AlphaUp { 1.0 } else { -1.0 };
                // Round to the 0.05 grid so repeated presses land on 0.45, not 0.45000000000000007.
                let alpha = ((self.params.alpha + sign * ALPHA_STEP) * 100.0).round() / 100.0;
                let alpha = alpha.clamp(0.0, 1.0);
                if alpha != self.params.alpha {
                    self.params.alpha = alpha;
                    return vec![Command::SetAlpha(alpha)];
                }
            }
            Action::PatienceUp | Action::PatienceDown => {
                let p = if action == Action::PatienceUp {
                    self.params.patience + 1
                } else {
                    self.params.patience.saturating_sub(1).max(1)
                };
                if p != self.params.patience {
                    self.params.patience = p;
                    return vec![Command::SetPatience(p)];
                }
            }
            Action::ToggleCell => {
                let (l, m) = self.cursor_cell();
                self.edit().toggle(l, m);
            }
            Action::ToggleRow => {
                let (l, _) = self.cursor_cell();
                self.edit().toggle_layer(l);
            }
            Action::ToggleColumn => {
                let (_, m) = self.cursor_cell();
                self.edit().toggle_module(m);
            }
            Action::Evaluate => return self.evaluate(),
            Action::TakeBest => match self.best() {
                Some(b) => {
                    self.edited = Some(b.matrix.clone());
                    self.say("editing the search's best strategy", false);
                }
                None => self.say("the search has no best strategy yet", true),
            },
            Action::Follow => {
                self.edited = None;
                self.say("the heatmap follows the search", false);
            }
            Action::Sweep => return self.start_sweep(),
            Action::WriteStrategy => return self.export(false),
            Action::WriteModel => return self.export(true),
        }
        Vec::new()
    }

    /// Applies one worker event.
    pub fn on_worker_event(&mut self, event: WorkerEvent) {
        match event {
            WorkerEvent::Ready {
                baseline,
                victim_test,
                num_layers,
                device,
                params,
                ..
            } => {
                self.baseline = Some(baseline);
                self.victim_test = victim_test;
                self.num_layers = num_layers;
                self.device = device;
                self.params = params;
                self.cursor = (0, 0);
            }
            WorkerEvent::Search(SearchEvent::Candidate(c)) => {
                if c.step == self.steps.len() {
                    self.candidates.push(c);
                }
            }
            WorkerEvent::Search(SearchEvent::Step(s)) => {
                if s.step > 0 {
                    self.stepping = false;
                }
                self.candidates.clear();
                self.steps.push(s);
            }
            WorkerEvent::Search(SearchEvent::Finished { reason, .. }) => {
                self.finished = Some(reason);
                self.stepping = false;
                self.candidates.clear();
            }
            WorkerEvent::Restarted { params } => {
                self.params = params;
                self.steps.clear();
                self.candidates.clear();
                self.finished = None;
                self.final_test = None;
                self.say(
                    format!(
                        "α {:.2} · patience {}: replaying the search from the cache",
                        params.alpha, params.patience
                    ),
                    false,
                );
            }
            WorkerEvent::Running { running } => {
                self.running = running;
                self.pause_requested = false;
            }
            WorkerEvent::Evaluated {
                tag, metrics, test, ..
            } => {
                if let Some(p) = self.pinned.iter_mut().find(|p| p.tag == tag) {
                    p.metrics = Some(metrics);
                    p.test = test;
                    let text = format!(
                        "{} evaluated: acc {:.4} asr {:.4}",
                        p.label, metrics.acc, metrics.asr
                    );
                    self.say(text, false);
                }
            }
            WorkerEvent::SweepPoint { alpha, best, test } => {
                self.sweep.push(SweepResult { alpha, best, test });
            }
            WorkerEvent::SweepDone => {
                self.sweeping = false;
                self.say("α sweep done", false);
            }
            WorkerEvent::Exported { json, model } => {
                if let Some(i) = self.exports_pending.iter().position(|(j, _)| *j == json) {
                    let (_, matrix) = self.exports_pending.remove(i);
                    self.last_written = Some(matrix);
                }
                let text = match model {
                    Some(m) => format!("wrote {} and {}", json.display(), m.display()),
                    None => format!("wrote {}", json.display()),
                };
                self.say(text, false);
            }
            // The suspect-signal check reaches the log (tui::apply); showing its warnings is
            // left to the TUI's rework, which owns the status line and its snapshots.
            WorkerEvent::Signal(_) => {}
            WorkerEvent::FinalTest { test } => self.final_test = Some(test),
            WorkerEvent::Stats { stats } => self.stats = stats,
            WorkerEvent::Error { message } => {
                self.sweeping = false;
                self.stepping = false;
                self.say(message, true);
            }
            WorkerEvent::Stopped => self.stopped = true,
        }
    }

    fn say(&mut self, text: impl Into<String>, error: bool) {
        self.message = Some(Message {
            text: text.into(),
            error,
        });
    }

    fn cursor_cell(&self) -> (usize, Module) {
        (self.cursor.0, Module::ALL[self.cursor.1])
    }

    fn move_cursor(&mut self, d: Direction) {
        let (l, m) = &mut self.cursor;
        match d {
            Direction::Up => *l = l.saturating_sub(1),
            Direction::Down => *l = (*l + 1).min(self.num_layers.saturating_sub(1)),
            Direction::Left => *m = m.saturating_sub(1),
            Direction::Right => *m = (*m + 1).min(Module::ALL.len() - 1),
        }
    }

    /// The edited strategy, forked from what the heatmap shows on first use.
    fn edit(&mut self) -> &mut SubstitutionMatrix {
        let shown = self.shown_matrix();
        self.edited.get_or_insert(shown)
    }

    fn toggle_pause(&mut self) -> Vec<Command> {
        if let Some(r) = self.finished {
            self.say(
                format!("the search finished ({r:?}); change α or patience to go on"),
                false,
            );
            return Vec::new();
        }
        if self.running {
            self.pause_requested = true;
            vec![Command::Pause]
        } else {
            vec![Command::Resume]
        }
    }

    fn step(&mut self) -> Vec<Command> {
        if self.running {
            self.say("pause first (space), then n steps", false);
            Vec::new()
        } else if self.finished.is_some() {
            self.say("the search has finished", false);
            Vec::new()
        } else {
            self.stepping = true;
            vec![Command::Step]
        }
    }

    fn evaluate(&mut self) -> Vec<Command> {
        let matrix = self.shown_matrix();
        let tag = self.next_tag;
        self.next_tag += 1;
        let label = format!("e{tag}");
        self.say(
            format!("evaluating {label} ({} cells)…", matrix.count()),
            false,
        );
        self.pinned.push(Pinned {
            label,
            tag,
            matrix: matrix.clone(),
            metrics: None,
            test: None,
        });
        vec![Command::Evaluate { tag, matrix }]
    }

    fn start_sweep(&mut self) -> Vec<Command> {
        if self.sweeping {
            self.say("a sweep is already running", false);
            return Vec::new();
        }
        self.sweep.clear();
        self.sweeping = true;
        self.say(
            "α sweep 0.0–1.0 running (served from the cache where it can)…",
            false,
        );
        vec![Command::Sweep(sweep_alphas())]
    }

    fn export(&mut self, with_model: bool) -> Vec<Command> {
        let Some(matrix) = self.export_target() else {
            self.say(
                "nothing to write yet: the search has not scored a strategy",
                true,
            );
            return Vec::new();
        };
        // The search's best goes as `None` so the report keeps the greedy trace.
        let explicit = (self.best().map(|b| &b.matrix) != Some(&matrix)).then(|| matrix.clone());
        let n = self.next_export_number();
        let json = self.export_dir.join(format!("strategy-{n}.json"));
        let model = with_model.then(|| self.export_dir.join(format!("model-{n}")));
        self.exports_pending.push((json.clone(), matrix));
        let what = if with_model {
            "strategy and purified model"
        } else {
            "strategy"
        };
        self.say(
            format!("writing the {what} to {}…", self.export_dir.display()),
            false,
        );
        vec![Command::Export {
            matrix: explicit,
            json,
            model,
        }]
    }

    /// The next export number whose files do not exist yet, so nothing is overwritten.
    fn next_export_number(&mut self) -> usize {
        let taken = |dir: &Path, n: usize| {
            dir.join(format!("strategy-{n}.json")).exists()
                || dir.join(format!("model-{n}")).exists()
        };
        self.export_counter += 1;
        while taken(&self.export_dir, self.export_counter) {
            self.export_counter += 1;
        }
        self.export_counter
    }
}
