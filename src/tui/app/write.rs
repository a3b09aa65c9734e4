//! Writing the shown strategy: what goes to the worker, and what the status line says
//! when the files are written.

use super::*;
use crate::gms::report::{ProxyMetrics, SweepRow};

/// A write on its way to the worker.
#[derive(Debug, Clone)]
pub(super) struct PendingExport {
    pub(super) json: PathBuf,
    pub(super) strategy: Strategy,
}

impl App {
    /// The sweep as the strategy JSON records it.
    pub fn sweep_rows(&self) -> Vec<SweepRow> {
        self.sweep
            .iter()
            .map(|s| {
                // modules × layers describe the answer exactly or not at all (a cell walk's
                // answer is no product set: its cells say what it is).
                let (modules, layers, cells) = match s.best.matrix.as_product() {
                    Some((m, l)) => (m, l, Vec::new()),
                    None => (Vec::new(), Vec::new(), s.best.matrix.cells()),
                };
                SweepRow {
                    alpha: s.alpha,
                    patience: s.patience,
                    mode: s.mode,
                    modules,
                    layers,
                    cells,
                    proxy: ProxyMetrics {
                        acc: s.best.metrics.acc,
                        asr: s.best.metrics.asr,
                    },
                    score: s.best.metrics.score,
                    test: s.test,
                }
            })
            .collect()
    }

    pub(super) fn export(&mut self, with_model: bool) -> Vec<Command> {
        let Some(target) = self.write_target(self.shown()) else {
            self.say(
                "nothing to write yet: the search has not scored a strategy",
                Level::Info,
            );
            return Vec::new();
        };
        let mut commands = Vec::new();
        // Score an unscored strategy first, in a pinned row, so what is written can be judged.
        let unscored = self.known(&target.matrix).proxy.is_none()
            || (self.has_test_sets() && self.known(&target.matrix).test.is_none());
        if unscored && !self.pinned.iter().any(|p| p.matrix == target.matrix) {
            commands.push(self.pin(&target.matrix).1);
        }
        let is_best = self.best().is_some_and(|b| b.matrix == target.matrix);
        // The search's best goes as `None` so the report keeps the greedy trace; another α's
        // answer names its search, which the worker replays for its own trace.
        let (matrix, search) = match &target.source {
            Source::Sweep {
                alpha,
                patience,
                mode,
            } => (
                None,
                Some((
                    SearchParams {
                        alpha: *alpha,
                        patience: *patience,
                    },
                    *mode,
                )),
            ),
            _ if is_best => (None, None),
            _ => (Some(target.matrix.clone()), None),
        };
        let n = self.next_export_number();
        let json = self.export_dir.join(format!("strategy-{n}.json"));
        let model = with_model.then(|| self.export_dir.join(format!("model-{n}")));
        self.say(
            format!(
                "writing {} to {}{}…",
                target.source.name(),
                json.display(),
                if with_model { " with the model" } else { "" }
            ),
            Level::Info,
        );
        self.exports_pending.push(PendingExport {
            json: json.clone(),
            strategy: target,
        });
        commands.push(Command::Export {
            matrix,
            search,
            sweep: self.sweep_rows(),
            json,
            model,
        });
        commands
    }

    pub(super) fn exported(&mut self, json: PathBuf, model: Option<PathBuf>) {
        let Some(i) = self.exports_pending.iter().position(|p| p.json == json) else {
            self.say(format!("wrote {}", json.display()), Level::Info);
            return;
        };
        let PendingExport { strategy, .. } = self.exports_pending.remove(i);
        self.written.push((json.clone(), strategy.matrix.clone()));
        let files = match &model {
            Some(m) => format!("{} + {}", json.display(), m.display()),
            None => json.display().to_string(),
        };
        // What and how it scores first: a narrow status line cuts the paths, not the news.
        let mut text = format!("wrote {}", strategy.source.name());
        let mut level = Level::Info;
        if let Some(m) = self.metrics_of(&strategy.matrix) {
            text.push_str(&format!(": score {:.4}", m.score));
            let best = self.best().map(|b| self.rescore(&b.metrics).score);
            // Compared at the search's α: what the search optimises.
            if let Some(best) = best.filter(|b| m.score < b - 1e-12) {
                level = Level::Warn;
                text.push_str(&format!(
                    " (below the search's best {best:.4} at α {:.2}; b shows it)",
                    self.params.alpha
                ));
            }
        }
        if let Some(t) = self.known(&strategy.matrix).test {
            text.push_str(&format!(
                " · test CACC {}% ASR {}%",
                summary::pct(t.cacc),
                summary::pct(t.asr)
            ));
        }
        text.push_str(&format!(
            " · {} → {files}",
            summary::strategy(&strategy.matrix)
        ));
        self.say(text, level);
    }

    /// The next export number whose files do not exist yet, so nothing is overwritten.
    pub(super) fn next_export_number(&mut self) -> usize {
        let taken = |dir: &Path, n: usize| {
            dir.join(format!("strategy-{n}.json")).exists()
                || dir.join(format!("model-{n}")).exists()
        };
        self.export_counter += 1;
        while taken(&self.export_dir, self.export_counter) {
            self.export_counter += 1;
        }
        self.export_counter
    }
}
