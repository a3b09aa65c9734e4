//! Search modes: the paper's product-set greedy and finer walks over the same evaluator.
//!
//! Every mode chooses with the proxy sets only, through the one [`Evaluator`] (so the result
//! cache, the layer states and exact early abandonment serve all of them), is deterministic,
//! and runs one unit of work per [`Search::advance`] — the start, one candidate, or the move
//! that closes a step — reporting the same [`SearchEvent`]s. The worker, the CLI and the
//! benchmarks hold a `Box<dyn Search>` and never ask which mode it is.
//!
//! - `paper` ([`GreedySearch`]): docs/algorithm.md §Search, unchanged.
//! - `cells` ([`cells::CellSearch`]): a greedy over single cells (layer, module) that gives one
//!   cell back to the victim or takes one from the proxy again per step, after the paper's
//!   search or from the full substitution.
//! - `beam` ([`beam::new`]): the paper's product-set moves, keeping the `width` best states of
//!   each step instead of one.
//! - `refine` ([`cells::CellSearch`]): the cell walk from the paper's answer, entering only
//!   states no worse than that answer on either proxy set.

pub mod beam;
pub mod cells;
pub mod walk;

use crate::error::{GmsError, Result};
use crate::gms::evaluator::Evaluator;
use crate::gms::search::{GreedySearch, Point, SearchEvent, SearchParams, StopReason, TraceStep};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The beam width when none is given: four states per step, so a beam step costs about four
/// paper steps (the suggestion; no wider beam has been measured).
pub const DEFAULT_BEAM_WIDTH: usize = 4;

/// Where the `cells` mode starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CellsStart {
    /// The paper's answer: run the paper's search first, then refine its best by cells.
    Paper,
    /// The full substitution (every cell from the proxy).
    Full,
}

/// Which search runs, as the strategy JSON records it (`{"name": "beam", "width": 4}`; files
/// written before modes existed read as `paper`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "lowercase")]
pub enum SearchMode {
    /// The paper's greedy over product sets `M × L`.
    #[default]
    Paper,
    /// Single-cell greedy.
    Cells {
        /// Its starting point.
        from: CellsStart,
    },
    /// Product-set moves with a beam.
    Beam {
        /// States kept per step (≥ 1; 1 is the paper's search).
        width: usize,
    },
    /// The cell walk from the paper's answer, restricted to states at least as accurate on
    /// the clean set and hitting no more suspect rows: it can only improve on the paper's
    /// answer on both proxy sets at once.
    Refine,
}

impl SearchMode {
    /// Checks the beam width (≥ 1).
    pub fn validated(self) -> Result<SearchMode> {
        match self {
            SearchMode::Beam { width: 0 } => Err(GmsError::BadArgument {
                flag: "--beam",
                value: "0".into(),
                problem: format!(
                    "a beam keeps at least one state per step (default {DEFAULT_BEAM_WIDTH})"
                ),
            }),
            m => Ok(m),
        }
    }
}

/// `paper`, `cells (from paper)`, `beam 4`: how reports and tables name a mode.
impl fmt::Display for SearchMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SearchMode::Paper => write!(f, "paper"),
            SearchMode::Cells {
                from: CellsStart::Paper,
            } => write!(f, "cells (from paper)"),
            SearchMode::Cells {
                from: CellsStart::Full,
            } => write!(f, "cells (from full)"),
            SearchMode::Beam { width } => write!(f, "beam {width}"),
            SearchMode::Refine => write!(f, "refine"),
        }
    }
}

/// Reads back what [`SearchMode`]'s Display writes (the journal header records it so).
impl std::str::FromStr for SearchMode {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<SearchMode, String> {
        let mode = match text {
            "paper" => SearchMode::Paper,
            "cells (from paper)" => SearchMode::Cells {
                from: CellsStart::Paper,
            },
            "cells (from full)" => SearchMode::Cells {
                from: CellsStart::Full,
            },
            "refine" => SearchMode::Refine,
            _ => match text.strip_prefix("beam ").map(str::parse) {
                Some(Ok(width)) if width > 0 => SearchMode::Beam { width },
                _ => {
                    return Err(format!(
                        "unknown search mode \"{text}\" (expected paper, cells (from paper), \
                         cells (from full), beam K or refine)"
                    ))
                }
            },
        };
        Ok(mode)
    }
}

/// A search advanced one unit of work at a time (the interface [`GreedySearch`] defined).
pub trait Search {
    /// The mode it runs.
    fn mode(&self) -> SearchMode;
    /// α and patience.
    fn params(&self) -> SearchParams;
    /// Steps taken so far (step 0 first).
    fn trace(&self) -> &[TraceStep];
    /// The best point so far (none before the first step with absolute drops, whose start
    /// is never eligible).
    fn best(&self) -> Option<&Point>;
    /// The state the search stands on.
    fn current(&self) -> Option<&Point>;
    /// Strategies scored so far.
    fn evaluations(&self) -> usize;
    /// Why the search ended, once it has.
    fn finished(&self) -> Option<StopReason>;
    /// Whether the next unit of work needs no forward pass (replay after an α change).
    fn next_is_cached(&self, ev: &Evaluator) -> bool;
    /// Does one unit of work and reports it; after the end, reports nothing.
    fn advance(&mut self, ev: &mut Evaluator) -> Result<Vec<SearchEvent>>;

    /// The search's answer: the best point, or (absolute drops, stopped before any step)
    /// the state it stands on; `None` before it has scored anything.
    fn answer(&self) -> Option<Point> {
        self.best().or(self.current()).cloned()
    }
}

impl Search for GreedySearch {
    fn mode(&self) -> SearchMode {
        SearchMode::Paper
    }
    fn params(&self) -> SearchParams {
        GreedySearch::params(self)
    }
    fn trace(&self) -> &[TraceStep] {
        GreedySearch::trace(self)
    }
    fn best(&self) -> Option<&Point> {
        GreedySearch::best(self)
    }
    fn current(&self) -> Option<&Point> {
        GreedySearch::current(self)
    }
    fn evaluations(&self) -> usize {
        GreedySearch::evaluations(self)
    }
    fn finished(&self) -> Option<StopReason> {
        GreedySearch::finished(self)
    }
    fn next_is_cached(&self, ev: &Evaluator) -> bool {
        GreedySearch::next_is_cached(self, ev)
    }
    fn advance(&mut self, ev: &mut Evaluator) -> Result<Vec<SearchEvent>> {
        GreedySearch::advance(self, ev)
    }
}

/// A new search of `mode` over a model with `num_layers` layers, not yet started.
pub fn new_search(mode: SearchMode, params: SearchParams, num_layers: usize) -> Box<dyn Search> {
    match mode {
        SearchMode::Paper => Box::new(GreedySearch::new(params, num_layers)),
        SearchMode::Cells { from } => Box::new(cells::CellSearch::new(params, num_layers, from)),
        SearchMode::Refine => Box::new(cells::CellSearch::refine(params, num_layers)),
        SearchMode::Beam { width } => Box::new(beam::new(params, num_layers, width)),
    }
}

/// Runs `search` to its end, handing every event to `on_event`; returns its best point.
pub fn run_to_end(
    search: &mut dyn Search,
    ev: &mut Evaluator,
    mut on_event: impl FnMut(&SearchEvent),
) -> Result<Point> {
    while search.finished().is_none() {
        for e in search.advance(ev)? {
            on_event(&e);
        }
    }
    Ok(search
        .answer()
        .expect("a finished search has scored its start"))
}
