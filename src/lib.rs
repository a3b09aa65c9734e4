//! gms: Guided Module Substitution for backdoored transformer classifiers.
//!
//! Data flows `data` → `model` → `gms` (proxy sets, score, evaluator, search, report) →
//! `export`; the CLI and the TUI are thin front ends over the same search worker. A module
//! imports only from layers to its left; `train`, `bench` and `efficacy` sit beside `gms`; `error`,
//! `device` and `atomic` are leaves (README.md, "Layout").

pub mod atomic;
pub mod bench;
pub mod cli;
pub mod data;
pub mod demo;
pub mod device;
pub mod efficacy;
pub mod error;
pub mod export;
pub mod gms;
pub mod model;
pub mod train;
pub mod tui;

pub use error::{GmsError, Result};
