//! The workbench's panels; each draws from `&App` and nothing else.

pub mod baselines;
pub mod chart;
pub mod heatmap;
pub mod help;
pub mod info;
pub mod status;
pub mod steps;
pub mod tradeoff;
