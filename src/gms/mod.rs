//! Guided Module Substitution: the proxy sets, the score, the evaluator with its caches, the
//! greedy search and the worker that runs it for the CLI and the TUI.

pub mod evaluator;
pub mod journal;
pub mod merge;
pub mod modes;
pub mod proxy_sets;
pub mod report;
pub mod score;
pub mod search;
pub mod session;
pub mod signal;
pub mod worker;

pub use evaluator::{Cutoff, EvalStats, Evaluation, Evaluator};
pub use score::{Baseline, Counts, Metrics, DEFAULT_ALPHA, DEFAULT_PATIENCE};
pub use search::{GreedySearch, Move, Point, SearchEvent, SearchParams, StopReason, TraceStep};
