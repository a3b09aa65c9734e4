//! The workbench's state. [`App::update`] applies user [`Action`]s and returns the worker
//! [`Command`]s they imply; [`App::on_worker_event`] applies what the worker reports. Neither
//! draws nor touches the terminal, so both run the same in tests and in the live loop.
//!
//! The heatmap always shows one strategy, [`App::shown`], and names where it comes from
//! ([`Source`]): the row selected in the focused list, else the adopted or edited strategy,
//! else the search itself (its live walk while it moves, its best once it has finished).
//! `w` writes what is shown (the best while the walk is live).

use crate::gms::evaluator::EvalStats;
use crate::gms::modes::{CellsStart, SearchMode, DEFAULT_BEAM_WIDTH};
use crate::gms::score::{self, Baseline, Metrics};
use crate::gms::search::{
    candidates, CandidateReport, Point, SearchEvent, SearchParams, StopReason, TraceStep,
};
use crate::gms::session::TestMetrics;
use crate::gms::signal::{Signal, SuspectSignal, WarningKind};
use crate::gms::worker::{Command, ModelsStatus, WorkerEvent};
use crate::model::{Module, SubstitutionMatrix};
use crate::tui::action::Action;
use crate::tui::keymap;
use crate::tui::rows::{self, RowId};
use crate::tui::summary;
use ratatui::layout::Rect;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

mod baselines;
pub use baselines::short_label;
mod choose;
mod navigate;
mod steer;
pub use steer::{mode_mark, mode_rank, mode_tag};
mod write;

/// α changes in steps of 0.05 (fine enough to move along the trade-off, coarse enough to
/// reach any decile in a few presses).
pub const ALPHA_STEP: f64 = 0.05;

/// The α values of a sweep: 0.0 to 1.0 by 0.1 (the trade-off grid).
pub fn sweep_alphas() -> Vec<f64> {
    (0..=10).map(|i| f64::from(i) / 10.0).collect()
}

/// The pane that has the keyboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    /// The heatmap: arrows move the cursor, enter/r/c edit.
    Heatmap,
    /// The step table: arrows select a step, enter adopts it.
    Steps,
    /// The trade-off list: arrows choose an α, enter adopts it.
    Tradeoff,
    /// The merge-baselines panel (`B`): arrows choose a method, `w`/`W` write it. Outside
    /// the tab cycle: tab leaves it for the heatmap.
    Baselines,
}

impl Focus {
    /// The pane after this one (tab).
    pub fn next(self) -> Focus {
        match self {
            Focus::Heatmap => Focus::Steps,
            Focus::Steps => Focus::Tradeoff,
            Focus::Tradeoff | Focus::Baselines => Focus::Heatmap,
        }
    }

    /// The pane before this one (shift-tab).
    pub fn prev(self) -> Focus {
        match self {
            Focus::Baselines => Focus::Tradeoff,
            f => f.next().next(),
        }
    }
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
    /// Not substitutable: the proxy cannot give it (two adapters that do not both adapt the
    /// module there); never searched, and edits leave it alone.
    Unavailable,
}

/// Where a strategy on screen comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// The walk's state while the search moves; `step` is the step being scored.
    Live {
        /// The step in progress.
        step: usize,
    },
    /// The search's answer (the best step so far, or at the end).
    Best {
        /// Its step.
        step: usize,
    },
    /// A step of the walk.
    Step {
        /// The step.
        step: usize,
    },
    /// A candidate of the step in progress.
    Candidate {
        /// Its step.
        step: usize,
        /// Its position in the step (0-based).
        index: usize,
    },
    /// Nothing substituted.
    Victim,
    /// The search's answer at another α, or in another mode (a row of a sweep).
    Sweep {
        /// That search's α.
        alpha: f64,
        /// That search's patience.
        patience: usize,
        /// That search's mode.
        mode: SearchMode,
    },
    /// A strategy scored with `e`.
    Pinned {
        /// Its row label (`e1`, …).
        label: String,
    },
    /// A hand edit of another strategy.
    Edited {
        /// What it was forked from.
        from: String,
    },
}

impl Source {
    /// How messages name it: `★best (step 3)`, `α 0.80's answer`, `edited ★best (step 3)`.
    pub fn name(&self) -> String {
        match self {
            Source::Live { step } => format!("live walk (step {step})"),
            Source::Best { step } => format!("★best (step {step})"),
            Source::Step { step } => format!("step {step}"),
            Source::Candidate { step, index } => format!("candidate {step}.{}", index + 1),
            Source::Victim => "the victim".into(),
            Source::Sweep {
                alpha,
                mode: SearchMode::Paper,
                ..
            } => format!("α {alpha:.2}'s answer"),
            Source::Sweep { alpha, mode, .. } => format!("α {alpha:.2}'s answer ({mode})"),
            Source::Pinned { label } => label.clone(),
            Source::Edited { from } => format!("edited {from}"),
        }
    }

    /// How the heatmap title names it, in a few characters.
    pub fn tag(&self) -> String {
        match self {
            Source::Live { step } => format!("live · step {step}"),
            Source::Best { step } => format!("★best · step {step}"),
            Source::Step { step } => format!("step {step}"),
            Source::Candidate { step, index } => format!("cand {step}.{}", index + 1),
            Source::Victim => "victim".into(),
            Source::Sweep {
                alpha,
                mode: SearchMode::Paper,
                ..
            } => format!("α {alpha:.2}"),
            Source::Sweep { alpha, mode, .. } => format!("α {alpha:.2} {}", mode_tag(*mode)),
            Source::Pinned { label } => format!("pin {label}"),
            Source::Edited { .. } => "edited".into(),
        }
    }
}

/// A strategy and where it comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct Strategy {
    /// Where it comes from.
    pub source: Source,
    /// Its cells.
    pub matrix: SubstitutionMatrix,
}

/// What is known of a strategy's scores: proxy accuracy and ASR (α-free), test metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Known {
    /// Proxy-set accuracy and ASR.
    pub proxy: Option<(f64, f64)>,
    /// Test-set scores.
    pub test: Option<TestMetrics>,
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

/// One α of a sweep.
#[derive(Debug, Clone)]
pub struct SweepResult {
    /// The α.
    pub alpha: f64,
    /// The search's mode.
    pub mode: SearchMode,
    /// The search's patience.
    pub patience: usize,
    /// The search's answer at that α.
    pub best: Point,
    /// Its test-set scores, when test sets were given.
    pub test: Option<TestMetrics>,
}

/// How a message reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// News.
    Info,
    /// Done, but maybe not what was wanted (written below the best, …).
    Warn,
    /// Failed.
    Error,
}

/// A one-line message for the status area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The text.
    pub text: String,
    /// How it reads.
    pub level: Level,
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
    /// The search mode in force (optimistically updated on `m`).
    pub mode: SearchMode,
    /// Which proxy-set rows the score uses.
    pub signal: Signal,
    /// The last suspect-signal check, and which of its warnings were shown.
    pub suspect_signal: Option<SuspectSignal>,
    warned: Vec<WarningKind>,
    /// The victim's proxy-set scores, once loaded.
    pub baseline: Option<Baseline>,
    /// The victim's test-set scores, when test sets were given.
    pub victim_test: Option<TestMetrics>,
    /// Layers of the model (0 until loaded).
    pub num_layers: usize,
    /// The architecture's modules, the heatmap's columns (the encoder's until loaded).
    pub modules: Vec<Module>,
    /// The cells the proxy can give (`None` until loaded).
    pub substitutable: Option<SubstitutionMatrix>,
    /// What the worker said to know about the pair (adapters with different target modules).
    pub warnings: Vec<String>,
    /// How the session's score measures drops.
    pub drops: score::Drops,
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
    /// The pane that has the keyboard.
    pub focus: Focus,
    /// Heatmap cursor `(layer, module index)`.
    pub cursor: (usize, usize),
    /// The adopted or edited strategy; `None` while the heatmap follows the search.
    pub adopted: Option<Strategy>,
    /// Earlier values of `adopted`, for `u`.
    pub undo: Vec<Option<Strategy>>,
    /// The selected row of the step table.
    pub steps_selected: Option<RowId>,
    /// First shown row of the step table's scrolling part; `None` keeps the newest in view.
    pub steps_top: Option<usize>,
    /// Strategies evaluated on request.
    pub pinned: Vec<Pinned>,
    /// α sweep results: each mode swept, in the `m` key's order, each in α order.
    pub sweep: Vec<SweepResult>,
    /// The mode of the sweep in progress (or of the last one).
    pub sweep_mode: SearchMode,
    /// The selected row of the trade-off list.
    pub sweep_selected: usize,
    /// Whether a sweep is in progress.
    pub sweeping: bool,
    /// Help overlay shown.
    pub help: bool,
    /// First shown line of the help overlay.
    pub help_scroll: usize,
    /// Quit confirmation shown.
    pub confirm_quit: bool,
    /// The loop should end.
    pub quit: bool,
    /// The worker has ended.
    pub stopped: bool,
    /// Last message for the status area.
    pub message: Option<Message>,
    /// Terminal size, for layout-dependent input (mouse, paging).
    pub size: Rect,
    /// Log file, shown in the help overlay.
    pub log_file: Option<PathBuf>,
    /// Files written so far, newest last, with the strategy each holds.
    pub written: Vec<(PathBuf, SubstitutionMatrix)>,
    /// For a search opened from its journal (`--open`): where its models stand.
    pub models: Option<ModelsStatus>,
    /// Merge baselines the worker scored ([`Command::Baselines`]), in method order.
    pub baselines: Vec<crate::gms::merge::BaselineScore>,
    /// Merge methods the worker did not run, with why.
    pub baselines_skipped: Vec<(String, String)>,
    /// Merge methods the worker is running, in order (what the panel lists while computing).
    pub baselines_planned: Vec<crate::gms::merge::MergeMethod>,
    /// Whether the baselines were asked for (once per session: `B` asks the first time).
    pub baselines_requested: bool,
    /// Whether every baseline that could run has.
    pub baselines_done: bool,
    /// The selected row of the baselines panel (an index into `baselines_planned`).
    pub baselines_selected: usize,
    /// The pre-trained base the base methods merge against (`gms tui --base` for encoders).
    pub merge_base: Option<PathBuf>,
    /// Merge baselines written so far, newest last: the method and the YAML (and model).
    pub written_merges: Vec<(crate::gms::merge::MergeMethod, PathBuf, Option<PathBuf>)>,
    known: HashMap<SubstitutionMatrix, Known>,
    replaying: bool,
    exports_pending: Vec<write::PendingExport>,
    export_counter: usize,
    next_tag: u64,
}

impl App {
    /// A fresh state: loading, parameters as asked for, files to `export_dir`.
    pub fn new(params: SearchParams, export_dir: PathBuf) -> App {
        App {
            export_dir,
            params,
            mode: SearchMode::Paper,
            signal: Signal::Paper,
            suspect_signal: None,
            warned: Vec::new(),
            baseline: None,
            victim_test: None,
            num_layers: 0,
            modules: crate::model::ENCODER_MODULES.to_vec(),
            substitutable: None,
            warnings: Vec::new(),
            drops: score::Drops::Relative,
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
            focus: Focus::Heatmap,
            cursor: (0, 0),
            adopted: None,
            undo: Vec::new(),
            steps_selected: None,
            steps_top: None,
            pinned: Vec::new(),
            sweep: Vec::new(),
            sweep_mode: SearchMode::Paper,
            sweep_selected: 0,
            sweeping: false,
            help: false,
            help_scroll: 0,
            confirm_quit: false,
            quit: false,
            stopped: false,
            message: None,
            size: Rect::new(0, 0, 100, 30),
            log_file: None,
            written: Vec::new(),
            models: None,
            baselines: Vec::new(),
            baselines_skipped: Vec::new(),
            baselines_planned: Vec::new(),
            baselines_requested: false,
            baselines_done: false,
            baselines_selected: 0,
            merge_base: None,
            written_merges: Vec::new(),
            known: HashMap::new(),
            replaying: false,
            exports_pending: Vec::new(),
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

    /// The step that holds the search's best point so far (the last one that improved).
    pub fn best_step(&self) -> Option<&TraceStep> {
        self.steps.iter().rev().find(|s| s.improved)
    }

    /// The search's best point so far.
    pub fn best(&self) -> Option<&Point> {
        self.best_step().map(|s| &s.point)
    }

    /// The search's best as a strategy.
    pub fn best_strategy(&self) -> Option<Strategy> {
        self.best_step().map(|s| Strategy {
            source: Source::Best { step: s.step },
            matrix: s.point.matrix.clone(),
        })
    }

    /// The greedy state the search stands on.
    pub fn current(&self) -> Option<&Point> {
        self.steps.last().map(|s| &s.point)
    }

    /// The edited strategy's cells, when the adopted strategy is a hand edit.
    pub fn edited(&self) -> Option<&SubstitutionMatrix> {
        self.adopted
            .as_ref()
            .filter(|a| matches!(a.source, Source::Edited { .. }))
            .map(|a| &a.matrix)
    }

    /// What the heatmap shows when no list row is selected: the adopted strategy, else the
    /// search (its live walk until it finishes, then its best).
    pub fn chosen(&self) -> Strategy {
        match &self.adopted {
            // An adopted best follows the search's best as it improves.
            Some(Strategy {
                source: Source::Best { .. },
                ..
            }) => self.best_strategy().unwrap_or_else(|| self.following()),
            Some(a) => a.clone(),
            None => self.following(),
        }
    }

    fn following(&self) -> Strategy {
        if self.finished.is_some() {
            if let Some(best) = self.best_strategy() {
                return best;
            }
        }
        Strategy {
            source: Source::Live {
                step: self.steps.len(),
            },
            matrix: self
                .current()
                .map(|p| p.matrix.clone())
                .unwrap_or_else(|| SubstitutionMatrix::empty(self.num_layers)),
        }
    }

    /// The strategy the heatmap shows: the focused list's selected row, else [`Self::chosen`].
    pub fn shown(&self) -> Strategy {
        let selected = match self.focus {
            Focus::Heatmap => None,
            Focus::Steps => self
                .steps_selected
                .and_then(|id| rows::row_strategy(self, id)),
            Focus::Tradeoff => self.sweep_strategy(self.sweep_selected),
            Focus::Baselines => None,
        };
        selected.unwrap_or_else(|| self.chosen())
    }

    /// The `i`-th sweep row as a strategy.
    pub fn sweep_strategy(&self, i: usize) -> Option<Strategy> {
        self.sweep.get(i).map(|s| Strategy {
            source: Source::Sweep {
                alpha: s.alpha,
                patience: s.patience,
                mode: s.mode,
            },
            matrix: s.best.matrix.clone(),
        })
    }

    /// What `w` writes for `shown`: itself, except that a live walk's state is no answer, so
    /// the search's best stands in for it.
    pub fn write_target(&self, shown: Strategy) -> Option<Strategy> {
        match shown.source {
            Source::Live { .. } => self.best_strategy(),
            _ => Some(shown),
        }
    }

    /// The matrix the heatmap shows.
    pub fn shown_matrix(&self) -> SubstitutionMatrix {
        self.shown().matrix
    }

    /// The strategy the worker is scoring now, when the search is moving.
    pub fn in_flight(&self) -> Option<SubstitutionMatrix> {
        if !self.ready() || self.finished.is_some() || !(self.running || self.stepping) {
            return None;
        }
        // Only the paper's search has a candidate order known here; the other modes' moves
        // are the worker's to list.
        if self.mode != SearchMode::Paper {
            return None;
        }
        let m = match self.current() {
            None => Some(SubstitutionMatrix::full(&self.modules, self.num_layers)),
            Some(p) => candidates(&p.modules, &p.layers)
                .get(self.candidates.len())
                .map(|c| c.matrix(self.num_layers)),
        };
        // The search scores only the cells the proxy can give.
        match (m, &self.substitutable) {
            (Some(m), Some(s)) => Some(m.intersection(s)),
            (m, _) => m,
        }
    }

    /// How to draw heatmap cell (`layer`, `module`) of `shown`: only a live walk marks the
    /// candidate in flight and the last step's drop.
    pub fn cell_state(&self, shown: &Strategy, layer: usize, module: Module) -> CellState {
        let on = shown.matrix.get(layer, module);
        if !on && !self.can_substitute(layer, module) {
            return CellState::Unavailable;
        }
        if let Source::Live { .. } = shown.source {
            if self.in_flight().is_some_and(|m| m.get(layer, module) != on) {
                return CellState::Evaluating;
            }
            let n = self.steps.len();
            if !on && n >= 2 && self.steps[n - 2].point.matrix.get(layer, module) {
                return CellState::JustRemoved;
            }
        }
        if on {
            CellState::Substituted
        } else {
            CellState::Kept
        }
    }

    /// Whether the proxy can give cell (`layer`, `module`).
    pub fn can_substitute(&self, layer: usize, module: Module) -> bool {
        self.substitutable
            .as_ref()
            .is_none_or(|s| s.get(layer, module))
    }

    /// What is known of `matrix`'s scores.
    pub fn known(&self, matrix: &SubstitutionMatrix) -> Known {
        self.known.get(matrix).copied().unwrap_or_default()
    }

    /// `matrix`'s proxy metrics under the current α, if it has been scored.
    pub fn metrics_of(&self, matrix: &SubstitutionMatrix) -> Option<Metrics> {
        let (acc, asr) = self.known(matrix).proxy?;
        let b = self.baseline?;
        Some(self.drops.metrics(self.params.alpha, b, acc, asr))
    }

    fn learn(
        &mut self,
        matrix: &SubstitutionMatrix,
        proxy: Option<(f64, f64)>,
        test: Option<TestMetrics>,
    ) {
        let k = self.known.entry(matrix.clone()).or_default();
        k.proxy = proxy.or(k.proxy);
        k.test = test.or(k.test);
    }

    /// Whether quitting now would lose a result: the search finished or a strategy was
    /// adopted, and what `w` would write from the heatmap has not been written.
    pub fn unsaved(&self) -> Option<Strategy> {
        let worth = self.finished.is_some() || self.adopted.is_some();
        let target = self.write_target(self.chosen())?;
        let written = self.written.iter().any(|(_, m)| *m == target.matrix);
        (worth && !written).then_some(target)
    }

    /// Re-scores proxy metrics under the current α (pinned rows keep their accuracy and ASR).
    pub fn rescore(&self, m: &Metrics) -> Metrics {
        match self.baseline {
            Some(b) => self.drops.metrics(self.params.alpha, b, m.acc, m.asr),
            None => *m,
        }
    }

    /// One line on a strategy: what, cells, score, test scores.
    pub fn describe(&self, s: &Strategy) -> String {
        let mut text = format!("{} · {}", s.source.name(), summary::strategy(&s.matrix));
        if let Some(m) = self.metrics_of(&s.matrix) {
            text.push_str(&format!(" · score {:.4}", m.score));
        }
        if let Some(t) = self.known(&s.matrix).test {
            text.push_str(&format!(
                " · test CACC {}% ASR {}%",
                summary::pct(t.cacc),
                summary::pct(t.asr)
            ));
        }
        text
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
                    // The dialog named the heatmap's strategy: write that one.
                    self.focus = Focus::Heatmap;
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
                Action::Select(m) => self.scroll_help(m),
                _ => {}
            }
            return Vec::new();
        }
        match action {
            Action::ToggleHelp => {
                self.help = true;
                self.help_scroll = 0;
            }
            Action::Dismiss => {
                if self.focus != Focus::Heatmap {
                    self.focus = Focus::Heatmap;
                } else {
                    self.message = None;
                }
            }
            Action::Quit => match self.unsaved() {
                Some(_) => self.confirm_quit = true,
                None => self.quit = true,
            },
            Action::ForceQuit => self.quit = true,
            Action::Resize { .. } => {}
            Action::FocusNext => self.set_focus(self.focus.next()),
            Action::FocusPrev => self.set_focus(self.focus.prev()),
            Action::Click { column, row } => self.click(column, row),
            Action::Scroll { column, row, down } => self.wheel(column, row, down),
            Action::Unbound(code) => {
                let pane = match self.focus {
                    Focus::Heatmap => "on the heatmap",
                    Focus::Steps => "in the step table",
                    Focus::Tradeoff => "in the trade-off list",
                    Focus::Baselines => "in the baselines panel",
                };
                self.say(
                    format!(
                        "{} does nothing {pane} · ? lists the keys",
                        keymap::key_name(code)
                    ),
                    Level::Info,
                );
            }
            Action::Move(d) => self.move_cursor(d),
            Action::Select(m) => self.select(m),
            _ if !self.ready() => self.say("still loading the models and datasets", Level::Info),
            Action::TogglePause => return self.toggle_pause(),
            Action::Step => return self.step(),
            Action::AlphaUp | Action::AlphaDown => return self.change_alpha(action),
            Action::PatienceUp | Action::PatienceDown => return self.change_patience(action),
            Action::Sweep => return self.start_sweep(),
            Action::CycleMode => return self.cycle_mode(),
            Action::ToggleBaselines => return self.toggle_baselines(),
            Action::Adopt => self.adopt(),
            Action::ToggleCell | Action::ToggleRow | Action::ToggleColumn => self.edit(action),
            Action::Evaluate => return self.evaluate(),
            Action::TakeBest => self.take_best(),
            Action::Follow => self.follow(),
            Action::Undo => self.undo_last(),
            Action::WriteStrategy | Action::WriteModel if self.focus == Focus::Baselines => {
                return self.export_baseline(action == Action::WriteModel)
            }
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
                modules,
                drops,
                device,
                params,
                substitutable,
                warnings,
                mode,
                signal,
                ..
            } => {
                self.mode = mode;
                self.signal = signal;
                self.drops = drops;
                self.substitutable = Some(substitutable);
                self.baseline = Some(baseline);
                self.victim_test = victim_test;
                self.num_layers = num_layers;
                self.modules = modules;
                self.device = device;
                self.params = params;
                self.cursor = (0, 0);
                // Whatever was said while loading ("still loading…") is over now; what the
                // pair needs known comes first.
                self.message = None;
                if let Some(w) = warnings.first() {
                    self.say(w.clone(), Level::Warn);
                }
                self.warnings = warnings;
                self.learn(
                    &SubstitutionMatrix::empty(num_layers),
                    Some((baseline.acc, baseline.asr)),
                    victim_test,
                );
            }
            WorkerEvent::Search(SearchEvent::Candidate(c)) => {
                if let Some(m) = c.metrics {
                    self.learn(&c.matrix, Some((m.acc, m.asr)), None);
                }
                if self.replaying && !c.cached {
                    self.replaying = false;
                    self.say(
                        // Where the cache ran out, named like the step table's rows (`2.5`).
                        format!(
                            "α {:.2} · patience {}: the cache answered up to {}.{}; computing on",
                            self.params.alpha, self.params.patience, c.step, c.index
                        ),
                        Level::Info,
                    );
                }
                if c.step == self.steps.len() {
                    self.candidates.push(c);
                }
            }
            WorkerEvent::Search(SearchEvent::Step(s)) => {
                if s.step > 0 {
                    self.stepping = false;
                }
                let m = s.point.metrics;
                self.learn(&s.point.matrix, Some((m.acc, m.asr)), None);
                self.candidates.clear();
                self.steps.push(s);
            }
            WorkerEvent::Search(SearchEvent::Finished { reason, best }) => {
                self.finished = Some(reason);
                self.stepping = false;
                self.candidates.clear();
                self.replaying = false;
                let step = self.best_step().map_or(0, |s| s.step);
                self.say(
                    format!(
                        "finished · ★best step {step} ({}) shown · w writes it · stopped: {}",
                        summary::cells(best.matrix.count()),
                        reason.describe(self.params.patience),
                    ),
                    Level::Info,
                );
            }
            WorkerEvent::Restarted { params, mode } => {
                // A search the user paused stays paused; a finished one goes on (the worker
                // says so with `Running` right after this event).
                let paused = if !self.running && self.finished.is_none() {
                    " (paused: it stops where the cache ends; space goes on)"
                } else {
                    ""
                };
                self.params = params;
                self.mode = mode;
                self.steps.clear();
                self.candidates.clear();
                self.finished = None;
                self.final_test = None;
                self.replaying = true;
                self.say(
                    format!(
                        "{mode} · α {:.2} · patience {}: replaying the search from the cache…{paused}",
                        params.alpha, params.patience
                    ),
                    Level::Info,
                );
            }
            WorkerEvent::Running { running } => {
                self.running = running;
                self.pause_requested = false;
            }
            WorkerEvent::Evaluated {
                tag,
                matrix,
                metrics,
                test,
            } => {
                self.learn(&matrix, Some((metrics.acc, metrics.asr)), test);
                if let Some(p) = self.pinned.iter_mut().find(|p| p.tag == tag) {
                    p.metrics = Some(metrics);
                    p.test = test;
                    let label = p.label.clone();
                    let tests = test
                        .map(|t| {
                            format!(
                                " · test CACC {}% ASR {}%",
                                summary::pct(t.cacc),
                                summary::pct(t.asr)
                            )
                        })
                        .unwrap_or_default();
                    let m = self.rescore(&metrics);
                    self.say(
                        format!(
                            "{label} scored: acc {:.4} asr {:.4} score {:.4}{tests}",
                            m.acc, m.asr, m.score
                        ),
                        Level::Info,
                    );
                }
            }
            WorkerEvent::SweepPoint {
                alpha,
                patience,
                mode,
                best,
                test,
            } => {
                let m = best.metrics;
                self.learn(&best.matrix, Some((m.acc, m.asr)), test);
                let key = |mode: SearchMode, alpha: f64| (mode_rank(mode), alpha);
                let at = self
                    .sweep
                    .partition_point(|s| key(s.mode, s.alpha) < key(mode, alpha));
                self.sweep.insert(
                    at,
                    SweepResult {
                        alpha,
                        mode,
                        patience,
                        best,
                        test,
                    },
                );
            }
            WorkerEvent::SweepDone => {
                self.sweeping = false;
                // Unless the user is choosing already, start on the search's own α.
                if self.focus != Focus::Tradeoff {
                    if let Some(i) = self.sweep.iter().position(|s| {
                        s.mode == self.mode && (s.alpha - self.params.alpha).abs() < 1e-9
                    }) {
                        self.sweep_selected = i;
                    }
                }
                // A record's sweep comes with its opening, whose message says more.
                if !self.record_only() {
                    self.say(
                        "α sweep done · tab to the trade-off list, ←→ to choose, enter adopts, w writes",
                        Level::Info,
                    );
                }
            }
            WorkerEvent::Exported { json, model } => self.exported(json, model),
            WorkerEvent::FinalTest { test } => {
                self.final_test = Some(test);
                if let Some(b) = self.best().map(|b| b.matrix.clone()) {
                    self.learn(&b, None, Some(test));
                }
            }
            WorkerEvent::Signal(signal) => self.signal_checked(signal),
            WorkerEvent::Stats { stats } => self.stats = stats,
            WorkerEvent::Journal(_) => {}
            WorkerEvent::Models(m) => self.models_changed(m),
            WorkerEvent::BaselinesPlanned { methods, skipped } => {
                self.baselines_planned = methods;
                self.baselines_skipped = skipped;
            }
            WorkerEvent::Baseline(b) => self.baseline_scored(b),
            WorkerEvent::BaselinesDone { skipped } => self.baselines_finished(skipped),
            WorkerEvent::BaselineExported {
                method,
                yaml,
                model,
                mergekit_base,
            } => self.baseline_exported(method, yaml, model, mergekit_base),
            WorkerEvent::Error { message, .. } => {
                self.sweeping = false;
                if self.baselines_requested && !self.baselines_done {
                    // The job ended with the error; what was scored stays.
                    self.baselines_done = true;
                }
                self.stepping = false;
                self.exports_pending.clear();
                self.say(message, Level::Error);
            }
            WorkerEvent::Stopped => self.stopped = true,
        }
    }

    /// Whether the search shows a journal's record with no model loaded.
    pub fn record_only(&self) -> bool {
        matches!(
            self.models,
            Some(ModelsStatus::Record { .. } | ModelsStatus::Unavailable { .. })
        )
    }

    fn models_changed(&mut self, m: ModelsStatus) {
        match &m {
            ModelsStatus::Record { journal } => {
                let name = journal.file_name().map_or_else(
                    || journal.display().to_string(),
                    |f| f.to_string_lossy().into_owned(),
                );
                self.say(
                    format!("{name} · record only: +/- ]/[ replay it; new evaluations load models"),
                    Level::Info,
                );
            }
            ModelsStatus::Loading => self.say("loading models for a new evaluation…", Level::Info),
            ModelsStatus::Loaded {
                device,
                victim_test,
                warnings,
            } => {
                self.device = device.clone();
                self.victim_test = *victim_test;
                self.learn(
                    &SubstitutionMatrix::empty(self.num_layers),
                    None,
                    *victim_test,
                );
                let mut text =
                    "models loaded · new evaluations are computed and journaled".to_string();
                for w in warnings {
                    text.push_str(&format!(" · {w}"));
                }
                self.say(text, Level::Info);
            }
            ModelsStatus::Unavailable { reason } => {
                self.running = false;
                self.stepping = false;
                self.say(format!("read-only: {reason}"), Level::Warn);
            }
        }
        self.models = Some(m);
    }

    /// A suspect-signal check: kept for the status line; each kind of warning is said once
    /// (the log has the full report).
    fn signal_checked(&mut self, signal: SuspectSignal) {
        tracing::info!(?signal, "suspect-signal check");
        let new: Vec<_> = signal
            .warnings
            .iter()
            .filter(|w| !self.warned.contains(&w.kind))
            .cloned()
            .collect();
        if let Some(w) = new.first() {
            self.say(w.text.clone(), Level::Warn);
        }
        self.warned.extend(new.iter().map(|w| w.kind));
        self.suspect_signal = Some(signal);
    }

    fn say(&mut self, text: impl Into<String>, level: Level) {
        self.message = Some(Message {
            text: text.into(),
            level,
        });
    }

    fn cursor_cell(&self) -> (usize, Module) {
        (self.cursor.0, self.modules[self.cursor.1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loading_message_ends_with_loading() {
        let params = SearchParams {
            alpha: 0.4,
            patience: 5,
        };
        let mut app = App::new(params, PathBuf::from("x"));
        assert!(app.update(Action::Sweep).is_empty());
        assert!(app.message.as_ref().unwrap().text.contains("still loading"));
        app.on_worker_event(WorkerEvent::Ready {
            baseline: Baseline { acc: 1.0, asr: 1.0 },
            baseline_counts: crate::gms::score::Counts {
                clean_correct: 1,
                clean_total: 1,
                suspect_hits: 1,
                suspect_total: 1,
            },
            victim_test: None,
            num_layers: 2,
            modules: crate::model::ENCODER_MODULES.to_vec(),
            substitutable: SubstitutionMatrix::full(&crate::model::ENCODER_MODULES, 2),
            warnings: Vec::new(),
            drops: crate::gms::score::Drops::Relative,
            device: "cpu".into(),
            params,
            mode: SearchMode::Paper,
            signal: Signal::Paper,
        });
        assert_eq!(app.message, None, "no stale 'still loading'");
    }

    #[test]
    fn m_cycles_every_mode_and_back() {
        let mut app = App::new(
            SearchParams {
                alpha: 0.4,
                patience: 5,
            },
            PathBuf::from("x"),
        );
        app.baseline = Some(Baseline { acc: 1.0, asr: 1.0 });
        let mut seen = vec![app.mode];
        for _ in 0..5 {
            let sent = app.update(Action::CycleMode);
            assert_eq!(sent, vec![Command::SetMode(app.mode)]);
            seen.push(app.mode);
        }
        assert_eq!(seen.first(), seen.last(), "five presses come back to paper");
        let distinct: std::collections::HashSet<String> =
            seen.iter().map(|m| m.to_string()).collect();
        assert_eq!(distinct.len(), 5, "{seen:?}");
    }

    #[test]
    fn alpha_and_patience_limits_say_so() {
        let mut app = App::new(
            SearchParams {
                alpha: 1.0,
                patience: 1,
            },
            PathBuf::from("x"),
        );
        app.baseline = Some(Baseline { acc: 1.0, asr: 1.0 });
        assert!(app.update(Action::AlphaUp).is_empty());
        assert!(app.message.as_ref().unwrap().text.contains("maximum"));
        assert!(app.update(Action::PatienceDown).is_empty());
        assert!(app.message.as_ref().unwrap().text.contains("minimum"));
        assert_eq!(app.update(Action::AlphaDown), vec![Command::SetAlpha(0.95)]);
    }
}
