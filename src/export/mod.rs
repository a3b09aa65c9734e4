//! Outputs: strategy JSON, the purified model folder, mergekit YAML — all written atomically.

pub mod atomic;
