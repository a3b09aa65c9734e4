//! gms: Guided Module Substitution for backdoored transformer classifiers.
//!
//! Data flows `data` → `model` → `gms` (score, evaluator, search) → `export`; the CLI and the
//! TUI are thin front ends over the same search worker.

pub mod atomic;
pub mod bench;
pub mod cli;
pub mod data;
pub mod demo;
pub mod device;
pub mod error;
pub mod export;
pub mod gms;
pub mod model;
pub mod train;
pub mod tui;

pub use error::{GmsError, Result};
