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
use crate::gms::worker::{ExportFiles, MergeFiles, StrategyFiles};
use candle_core::DType;
use std::path::{Path, PathBuf};

/// Writes what a worker export asked for: for a strategy, its JSON and, when wanted, the
/// purified model folder (for PEFT adapters, the purified adapter); for a merge baseline, the
/// merged model folder when wanted, then its mergekit YAML (with the base folder mergekit
/// reads, when the base is not in the victim's layout). Each output is atomic. Front ends hand
/// this to [`crate::gms::worker::spawn`].
pub fn write_export(files: &ExportFiles<'_>) -> Result<()> {
    match files {
        ExportFiles::Strategy(files) => write_strategy(files),
        ExportFiles::Merge(files) => write_merge(files),
    }
}

fn write_strategy(files: &StrategyFiles<'_>) -> Result<()> {
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

/// An absolute form of `p` for a YAML mergekit may run from another folder.
fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

fn write_merge(files: &MergeFiles<'_>) -> Result<()> {
    let inputs = files.inputs;
    let method = files.params.method;
    // The model first, the YAML (which names the base folder) last, as `gms merge` does.
    if let (Some(dir), Some(merged)) = (files.model, files.merged) {
        merged_model::write_model_folder(&inputs.victim, &merged.tensors, DType::F32, dir)?;
    }
    let base = match files.mergekit_base {
        Some(dir) => {
            let tensors = inputs.mergekit_base_tensors()?;
            merged_model::write_model_folder(&inputs.victim, &tensors, DType::F32, dir)?;
            Some(absolute(dir))
        }
        None => inputs.base_dir.as_deref().map(absolute),
    };
    let text = mergekit_merge::merge_yaml(&mergekit_merge::MergeYaml {
        params: files.params,
        victim: &absolute(&inputs.victim.dir),
        proxy: &absolute(&inputs.proxy.dir),
        base: base.as_deref(),
        victim_only: if method.needs_base() {
            inputs.victim_only()
        } else {
            &[]
        },
        out_dtype: DType::F32,
    });
    crate::atomic::write_file(files.yaml, text.as_bytes())
}
