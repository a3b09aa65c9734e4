//! Datasets: reading labelled sentences (JSONL, TSV, CSV), writing them back, and the
//! sets GMS works on.

pub mod dataset;

pub use dataset::{Dataset, Example};
