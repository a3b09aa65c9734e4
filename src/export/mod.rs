//! Outputs: strategy JSON, the purified model folder, mergekit YAML — all written atomically.
//!
//! This layer only serialises what the search side computed; it runs no model.

pub mod merged_model;
pub mod mergekit;
pub mod mergekit_merge;
pub mod model;
pub mod strategy;

pub use model::{write_purified, write_purified_model};

use crate::error::Result;
use crate::gms::worker::ExportFiles;

/// Writes what a worker export asked for: the strategy JSON and, when wanted, the purified
/// model folder (for PEFT adapters, the purified adapter). Front ends hand this to [`crate::gms::worker::spawn`].
pub fn write_export(files: &ExportFiles<'_>) -> Result<()> {
    // The demo runs from a temporary copy of its embedded files, which may be gone when the
    // strategy is read again: name its inputs by where they come from (`assets/demo/…`).
    let mut report = files.report.clone();
    report.inputs.map_paths(crate::demo::recorded_path);
    report.write(files.json)?;
    if let Some(dir) = files.model {
        write_purified(
            files.victim,
            files.proxy,
            &files.report.matrix(),
            dir,
            false,
        )?;
    }
    Ok(())
}
