//! Datasets: reading labelled sentences (JSONL, TSV, CSV), writing them back, and the
//! sets GMS works on.

pub mod dataset;
pub mod poison;
pub mod proxy_sets;

pub use dataset::{Dataset, Example};
