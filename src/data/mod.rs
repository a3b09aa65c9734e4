//! Datasets: reading labelled sentences (JSONL, TSV, CSV), writing them back, poisoning them,
//! and the per-row training record a trainer leaves beside a model.

pub mod dataset;
pub mod dynamics;
pub mod poison;

pub use dataset::{Dataset, Example};
