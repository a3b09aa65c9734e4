//! Outputs: strategy JSON, the purified model folder, mergekit YAML — all written atomically.

pub mod atomic;
pub mod merged_model;
pub mod mergekit;
pub mod mergekit_merge;
pub mod model;
pub mod strategy;

pub use model::write_purified_model;
pub use strategy::{ReportParts, StrategyReport};
