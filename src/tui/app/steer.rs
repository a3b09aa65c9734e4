//! Steering the search: pause, one step, α, patience and the search mode (each change replays
//! from the cache), the α sweep.

use super::*;

impl App {
    pub(super) fn toggle_pause(&mut self) -> Vec<Command> {
        if let Some(r) = self.finished {
            self.say(
                format!(
                    "the search has finished ({}); +/- or ]/[ search again",
                    r.describe(self.params.patience)
                ),
                Level::Info,
            );
            return Vec::new();
        }
        if self.running {
            self.pause_requested = true;
            self.say("pausing after the candidate in flight…", Level::Info);
            vec![Command::Pause]
        } else {
            self.say("resumed", Level::Info);
            vec![Command::Resume]
        }
    }

    pub(super) fn step(&mut self) -> Vec<Command> {
        if self.running {
            self.say("pause first (space), then n steps", Level::Info);
            Vec::new()
        } else if self.finished.is_some() {
            self.say(
                "the search has finished: nothing to step; +/- or ]/[ search again",
                Level::Info,
            );
            Vec::new()
        } else {
            self.stepping = true;
            self.say(
                format!("taking step {}…", self.steps.len().max(1)),
                Level::Info,
            );
            vec![Command::Step]
        }
    }

    pub(super) fn change_alpha(&mut self, action: Action) -> Vec<Command> {
        let sign = if action == Action::AlphaUp { 1.0 } else { -1.0 };
        // Round to the 0.05 grid so repeated presses land on 0.45, not 0.45000000000000007.
        let alpha = ((self.params.alpha + sign * ALPHA_STEP) * 100.0).round() / 100.0;
        let alpha = alpha.clamp(0.0, 1.0);
        if alpha == self.params.alpha {
            let end = if sign > 0.0 { "maximum" } else { "minimum" };
            self.say(format!("α is already {alpha:.2}, its {end}"), Level::Info);
            return Vec::new();
        }
        self.params.alpha = alpha;
        vec![Command::SetAlpha(alpha)]
    }

    pub(super) fn change_patience(&mut self, action: Action) -> Vec<Command> {
        let p = if action == Action::PatienceUp {
            self.params.patience + 1
        } else {
            self.params.patience.saturating_sub(1).max(1)
        };
        if p == self.params.patience {
            self.say("patience is already 1, its minimum", Level::Info);
            return Vec::new();
        }
        self.params.patience = p;
        vec![Command::SetPatience(p)]
    }

    /// `m`: the next search mode, restarting like an α change (the cache answers what any
    /// mode scored before).
    pub(super) fn cycle_mode(&mut self) -> Vec<Command> {
        let next = next_mode(self.mode);
        self.mode = next;
        vec![Command::SetMode(next)]
    }

    pub(super) fn start_sweep(&mut self) -> Vec<Command> {
        if self.sweeping {
            self.say(
                format!(
                    "a sweep is already running ({}: {}/{} α done)",
                    self.sweep_mode,
                    self.swept(self.sweep_mode),
                    sweep_alphas().len()
                ),
                Level::Info,
            );
            return Vec::new();
        }
        // Another mode's sweep stays beside this one; this mode's earlier one is replaced.
        let mode = self.mode;
        self.sweep.retain(|s| s.mode != mode);
        self.sweep_selected = 0;
        self.sweep_mode = mode;
        self.sweeping = true;
        let beside = if self.running {
            " beside the search"
        } else {
            ""
        };
        self.say(
            format!(
                "sweeping α 0.0–1.0 ({mode}, patience {}){beside}, from the cache where it can…",
                self.params.patience
            ),
            Level::Info,
        );
        vec![Command::Sweep {
            alphas: sweep_alphas(),
            mode,
        }]
    }

    /// Rows of `mode`'s sweep.
    pub fn swept(&self, mode: SearchMode) -> usize {
        self.sweep.iter().filter(|s| s.mode == mode).count()
    }

    /// The modes swept, in the trade-off list's order.
    pub fn swept_modes(&self) -> Vec<SearchMode> {
        let mut modes: Vec<SearchMode> = Vec::new();
        for s in &self.sweep {
            if !modes.contains(&s.mode) {
                modes.push(s.mode);
            }
        }
        modes
    }
}

/// Where `mode` stands in the `m` key's cycle (paper first): the trade-off list's order.
pub fn mode_rank(mode: SearchMode) -> usize {
    match mode {
        SearchMode::Paper => 0,
        SearchMode::Cells {
            from: CellsStart::Paper,
        } => 1,
        SearchMode::Cells {
            from: CellsStart::Full,
        } => 2,
        SearchMode::Beam { .. } => 3,
        SearchMode::Refine => 4,
    }
}

/// A mode in a few characters, for the trade-off list: `paper`, `cells`, `cellsF` (from the
/// full substitution), `beam4`, `refine`.
pub fn mode_tag(mode: SearchMode) -> String {
    match mode {
        SearchMode::Paper => "paper".into(),
        SearchMode::Cells {
            from: CellsStart::Paper,
        } => "cells".into(),
        SearchMode::Cells {
            from: CellsStart::Full,
        } => "cellsF".into(),
        SearchMode::Beam { width } => format!("beam{width}"),
        SearchMode::Refine => "refine".into(),
    }
}

/// A mode's glyph in the trade-off plot: the first letter of its tag, `f` for cells from
/// the full substitution.
pub fn mode_mark(mode: SearchMode) -> char {
    match mode {
        SearchMode::Cells {
            from: CellsStart::Full,
        } => 'f',
        m => mode_tag(m).chars().next().unwrap_or('?'),
    }
}

/// The mode after `mode` in the `m` key's cycle: paper → cells (from paper) → cells (from
/// full) → beam → refine → paper.
pub fn next_mode(mode: SearchMode) -> SearchMode {
    match mode {
        SearchMode::Paper => SearchMode::Cells {
            from: CellsStart::Paper,
        },
        SearchMode::Cells {
            from: CellsStart::Paper,
        } => SearchMode::Cells {
            from: CellsStart::Full,
        },
        SearchMode::Cells {
            from: CellsStart::Full,
        } => SearchMode::Beam {
            width: DEFAULT_BEAM_WIDTH,
        },
        SearchMode::Beam { .. } => SearchMode::Refine,
        SearchMode::Refine => SearchMode::Paper,
    }
}
