//! The per-epoch record of training-set confidences that `gms train` leaves beside a model
//! (`training_dynamics.json`), from which `gms proxy-sets` ranks suspect rows.
//!
//! Its format lives with the data because it is a per-row record of a training set: the
//! trainer writes it and proxy-set building (in `gms`) reads it.

use crate::error::{GmsError, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// File name of the record inside a model folder.
pub const DYNAMICS_FILE: &str = "training_dynamics.json";

/// Identifies the record's format.
const FORMAT: &str = "gms-training-dynamics/1";

/// For each training row, the model's probability of the row's (stored) label in each epoch,
/// taken from the training forward pass of the row's batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingDynamics {
    /// Format tag.
    pub format: String,
    /// File name of the training set (for messages).
    pub data: String,
    /// sha256 of the training set file: the record only ranks that file's rows.
    pub data_sha256: String,
    /// Number of epochs.
    pub epochs: usize,
    /// `p_label[row][epoch]`, rows in file order.
    pub p_label: Vec<Vec<f32>>,
}

impl TrainingDynamics {
    /// An empty record for `rows` rows of the file with hash `data_sha256`.
    pub fn new(data: &Path, data_sha256: String, rows: usize, epochs: usize) -> TrainingDynamics {
        TrainingDynamics {
            format: FORMAT.into(),
            data: data
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            data_sha256,
            epochs,
            p_label: vec![Vec::with_capacity(epochs); rows],
        }
    }

    /// Reads a record, checking its shape.
    pub fn read(path: &Path) -> Result<TrainingDynamics> {
        let bad = |problem: String| {
            GmsError::bad_file(
                path,
                problem,
                "delete it to rank rows by one pass of the victim instead",
            )
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let d: TrainingDynamics =
            serde_json::from_str(&text).map_err(|e| bad(format!("invalid record ({e})")))?;
        if d.format != FORMAT {
            return Err(bad(format!("unknown format \"{}\"", d.format)));
        }
        if let Some(i) = d.p_label.iter().position(|r| r.len() != d.epochs) {
            return Err(bad(format!(
                "row {i} has {} epochs, not {}",
                d.p_label[i].len(),
                d.epochs
            )));
        }
        Ok(d)
    }

    /// Writes the record atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string(self).map_err(|e| GmsError::output(path, e))?;
        crate::atomic::write_file(path, text.as_bytes())
    }

    /// Mean over epochs of 1/(1 − p(label)) per row: the suspicion score of docs/algorithm.md
    /// §Proxy sets.
    pub fn mean_inverse_gap(&self) -> Vec<f64> {
        self.p_label
            .iter()
            .map(|ps| ps.iter().map(|&p| inverse_gap(p)).sum::<f64>() / ps.len().max(1) as f64)
            .collect()
    }
}

/// 1/(1 − p), with 1 − p floored at 1e-7 (f32 resolution near 1) so certain rows rank high
/// but finite.
pub fn inverse_gap(p: f32) -> f64 {
    1.0 / (1.0 - p as f64).max(1e-7)
}
