//! The strategy JSON: what `gms search` and the TUI's `w` write and `gms apply` reads. The
//! report itself is built by the search side ([`crate::gms::report`]); this is its file form.

use crate::error::{GmsError, Result};
use crate::gms::report::StrategyReport;
use crate::model::{letters, ModelArchitecture, ModelSource};
use std::path::Path;

impl StrategyReport {
    /// Reads a report written by gms, validating its cells.
    pub fn read(path: &Path) -> Result<StrategyReport> {
        let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => GmsError::Missing {
                path: path.to_path_buf(),
                what: "strategy file",
                fix: "write one with gms search --out FILE or the TUI's w key",
            },
            _ => GmsError::bad_file(path, e.to_string(), "check the file's permissions"),
        })?;
        let report: StrategyReport = serde_json::from_str(&text).map_err(|e| {
            GmsError::bad_file(
                path,
                format!("not a gms strategy ({e})"),
                "write one with gms search --out FILE",
            )
        })?;
        if report.num_layers > crate::model::config::MAX_LAYERS {
            return Err(GmsError::bad_file(
                path,
                format!("num_layers {} is beyond any model", report.num_layers),
                "regenerate the strategy",
            ));
        }
        if report.cells.iter().any(|c| c.0 >= report.num_layers) {
            return Err(GmsError::bad_file(
                path,
                "a cell names a layer beyond num_layers",
                "regenerate the strategy",
            ));
        }
        let order = report.module_order();
        if let Some((l, m)) = report.cells.iter().find(|c| !order.contains(&c.1)) {
            return Err(GmsError::bad_file(
                path,
                format!(
                    "cell [{l}, \"{m}\"] names a module its architecture (modules {}) does not have",
                    letters(order)
                ),
                "regenerate the strategy",
            ));
        }
        if let Some(class) = &report.architecture {
            let known = ModelArchitecture::from_hf_class(class);
            if known.is_none_or(|a| a.modules() != order) {
                return Err(GmsError::bad_file(
                    path,
                    format!(
                        "architecture {class} with modules {} is not one gms knows",
                        letters(order)
                    ),
                    "regenerate the strategy with this version of gms",
                ));
            }
        }
        Ok(report)
    }

    /// Fails, naming the strategy file at `path` and the model, unless every cell of the
    /// strategy exists in `model`: the same architecture (so the same modules) and the same
    /// number of layers. Strategies of the first format are encoder strategies.
    pub fn check_fits(&self, path: &Path, model: &ModelSource) -> Result<()> {
        let arch = model.architecture();
        let ours = match &self.architecture {
            Some(class) => class.clone(),
            None => "an encoder".to_string(),
        };
        let same = match &self.architecture {
            Some(class) => class == arch.hf_class(),
            None => matches!(arch, ModelArchitecture::Encoder(_)),
        };
        if !same {
            return Err(GmsError::bad_file(
                path,
                format!(
                    "the strategy is for {ours} (modules {}), but {} is {arch}",
                    letters(self.module_order()),
                    model.dir().display()
                ),
                "apply a strategy found for this model (gms search on it)",
            ));
        }
        if self.num_layers != model.num_layers() {
            return Err(GmsError::bad_file(
                path,
                format!(
                    "the strategy has {} layers, the model {} ({})",
                    self.num_layers,
                    model.num_layers(),
                    model.dir().display()
                ),
                "use the strategy found for this victim",
            ));
        }
        Ok(())
    }

    /// Writes the report as pretty JSON, atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self).expect("reports serialize");
        crate::atomic::write_file(path, format!("{json}\n").as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gms::report::Origin;
    use crate::gms::search::Move;
    use crate::model::Module;

    /// A strategy file as gms wrote them before origin and moves were typed (trimmed from the
    /// demo's `metrics.json`): it must still read, and write back to the same JSON.
    const WRITTEN_BEFORE: &str = r#"{
      "gms_version": "0.1.0", "origin": "greedy", "modules": ["K", "V"], "layers": [0, 1],
      "cells": [[0, "K"], [0, "V"], [1, "K"], [1, "V"]], "num_layers": 2, "alpha": 0.4,
      "patience": 5, "score": 0.47, "proxy": {"acc": 0.675, "asr": 0.735},
      "baseline": {"acc": 0.85, "asr": 1.0},
      "trace": [
        {"step": 0, "move": "start", "modules": ["Q", "K", "V", "O", "F", "P"], "layers": [0, 1],
         "acc": 0.64, "asr": 0.74, "acc_drop": 0.24, "asr_drop": 0.26, "score": 0.45, "improved": true},
        {"step": 1, "move": "-module O", "modules": ["Q", "K", "V", "F", "P"], "layers": [0, 1],
         "acc": 0.655, "asr": 0.73, "acc_drop": 0.22, "asr_drop": 0.27, "score": 0.47, "improved": true},
        {"step": 2, "move": "-layer 1", "modules": ["Q", "K", "V", "F", "P"], "layers": [0],
         "acc": 0.6, "asr": 0.8, "acc_drop": 0.29, "asr_drop": 0.2, "score": 0.4, "improved": false}
      ],
      "evaluations": 12, "test": null, "victim_test": null,
      "inputs": {
        "victim": {"path": "v", "sha256": "00"}, "proxy": {"path": "p", "sha256": "11"},
        "clean": {"path": "c.jsonl", "sha256": "22"}, "suspect": {"path": "s.jsonl", "sha256": "33"},
        "test_clean": null, "test_poison": null
      }
    }"#;

    #[test]
    fn strategy_files_written_before_typed_moves_read_and_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old.json");
        std::fs::write(&old, WRITTEN_BEFORE).unwrap();
        let report = StrategyReport::read(&old).unwrap();
        assert_eq!(report.origin, Origin::Greedy);
        let moves: Vec<Move> = report.trace.iter().map(|r| r.mv).collect();
        assert_eq!(
            moves,
            [Move::Start, Move::DropModule(Module::O), Move::DropLayer(1)]
        );

        let again = dir.path().join("again.json");
        report.write(&again).unwrap();
        let json = |p: &Path| -> serde_json::Value {
            serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
        };
        // Written back, it gains only the fields added since: the mode it was found by (all
        // older files come from the paper's search) and the suspect-signal check it lacks.
        let mut want = json(&old);
        want["mode"] = serde_json::json!({"name": "paper"});
        want["suspect_signal"] = serde_json::Value::Null;
        assert_eq!(
            json(&again),
            want,
            "the JSON spelling is otherwise unchanged"
        );
        assert_eq!(report.mode, crate::gms::modes::SearchMode::Paper);

        let manual = WRITTEN_BEFORE.replace("\"greedy\"", "\"manual\"");
        std::fs::write(&old, manual).unwrap();
        assert_eq!(StrategyReport::read(&old).unwrap().origin, Origin::Manual);
    }

    #[test]
    fn unknown_moves_and_origins_are_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.json");
        for (from, to) in [("\"-layer 1\"", "\"-layer x\""), ("\"greedy\"", "\"beam\"")] {
            std::fs::write(&path, WRITTEN_BEFORE.replace(from, to)).unwrap();
            let err = StrategyReport::read(&path).unwrap_err().to_string();
            assert!(
                err.contains("bad.json") && err.contains("not a gms strategy"),
                "{err}"
            );
        }
    }
}
