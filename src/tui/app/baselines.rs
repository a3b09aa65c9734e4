//! The merge-baselines panel (`B`): asking the worker for the baselines once, choosing one,
//! writing it (`w` its mergekit YAML, `W` with the merged model), and the messages on the way.
//! Scores under α are recomputed here from the α-free counts with the session's one score
//! function ([`score::Drops::metrics`]), so `+`/`-` move them like every other row.

use super::*;
use crate::gms::merge::{BaselineScore, MergeMethod};

/// A method's short label in the trade-off view and the panel: `L`, `TA`, `T`, `D`, `DL`.
pub fn short_label(method: MergeMethod) -> &'static str {
    match method {
        MergeMethod::Linear => "L",
        MergeMethod::TaskArithmetic => "TA",
        MergeMethod::Ties => "T",
        MergeMethod::Dare => "D",
        MergeMethod::DareLinear => "DL",
    }
}

impl App {
    /// The scores of `method`, once the worker has them.
    pub fn baseline_score(&self, method: MergeMethod) -> Option<&BaselineScore> {
        self.baselines.iter().find(|b| b.method == method)
    }

    /// A baseline's proxy metrics under the current α, against the victim's: the same
    /// function every strategy row is scored with.
    pub fn baseline_metrics(&self, b: &BaselineScore) -> Option<Metrics> {
        let c = b.score.proxy?;
        let victim = self.baseline?;
        Some(
            self.drops
                .metrics(self.params.alpha, victim, c.acc(), c.asr()),
        )
    }

    /// The method the panel's selection is on.
    pub fn selected_baseline(&self) -> Option<MergeMethod> {
        self.baselines_planned.get(self.baselines_selected).copied()
    }

    /// The method the worker is merging now, while the baselines are being computed.
    pub fn baseline_in_flight(&self) -> Option<MergeMethod> {
        if self.baselines_done {
            return None;
        }
        self.baselines_planned
            .iter()
            .copied()
            .find(|m| self.baseline_score(*m).is_none())
    }

    pub(super) fn toggle_baselines(&mut self) -> Vec<Command> {
        if self.focus == Focus::Baselines {
            self.focus = Focus::Heatmap;
            return Vec::new();
        }
        self.focus = Focus::Baselines;
        if self.baselines_requested {
            if self.baselines_done {
                self.say(
                    "merge baselines · ↑↓ choose · w writes the mergekit YAML, W with the merged model · B closes",
                    Level::Info,
                );
            }
            return Vec::new();
        }
        self.baselines_requested = true;
        self.baselines_done = false;
        self.say(
            "merging the baselines on the worker, a part at a time between search units · B closes the panel",
            Level::Info,
        );
        vec![Command::Baselines {
            base: self.merge_base.clone(),
        }]
    }

    pub(super) fn select_baseline(&mut self, m: crate::tui::action::Motion) {
        let n = self.baselines_planned.len();
        if n == 0 {
            return;
        }
        self.baselines_selected = navigate::moved(Some(self.baselines_selected), m, n, n);
    }

    pub(super) fn baseline_scored(&mut self, b: BaselineScore) {
        let method = b.method;
        self.baselines.push(b);
        let done = self.baselines.len();
        let of = self.baselines_planned.len().max(done);
        self.say(
            format!("baselines: {method} merged and scored ({done} of {of})"),
            Level::Info,
        );
    }

    pub(super) fn baselines_finished(&mut self, skipped: Vec<(String, String)>) {
        self.baselines_done = true;
        self.baselines_skipped = skipped;
        let mut text = format!("baselines done: {} scored", self.baselines.len());
        if !self.baselines_skipped.is_empty() {
            text.push_str(&format!(
                ", {} skipped (the panel says why)",
                self.baselines_skipped.len()
            ));
        }
        if !self.baselines.is_empty() {
            text.push_str(" · in B, w writes the YAML, W with the model");
        }
        self.say(text, Level::Info);
    }

    pub(super) fn export_baseline(&mut self, with_model: bool) -> Vec<Command> {
        let Some(method) = self.selected_baseline() else {
            let text = if self.baselines_done {
                "no merge baseline could run here; the panel says why"
            } else {
                "no merge baseline yet: the worker is still starting them"
            };
            self.say(text, Level::Info);
            return Vec::new();
        };
        if self.baseline_score(method).is_none() {
            self.say(
                format!("{method} is still being merged; w writes it once it is scored"),
                Level::Info,
            );
            return Vec::new();
        }
        if self.modules.as_slice() == crate::model::DECODER_MODULES.as_slice() {
            self.say(
                format!(
                    "{method}: decoder merges are scored here, not written: the YAML and model \
                     writers are built for encoders only"
                ),
                Level::Warn,
            );
            return Vec::new();
        }
        let n = self.next_merge_number(method);
        let stem = format!("merge-{n}-{}", method.name());
        let yaml = self.export_dir.join(format!("{stem}.yaml"));
        let model = with_model.then(|| self.export_dir.join(&stem));
        self.say(
            format!(
                "writing the {method} merge to {}{}…",
                yaml.display(),
                if with_model { " with the model" } else { "" }
            ),
            Level::Info,
        );
        vec![Command::ExportBaseline {
            method,
            base: self.merge_base.clone().filter(|_| method.needs_base()),
            yaml,
            model,
        }]
    }

    pub(super) fn baseline_exported(
        &mut self,
        method: MergeMethod,
        yaml: PathBuf,
        model: Option<PathBuf>,
        mergekit_base: Option<PathBuf>,
    ) {
        self.written_merges
            .push((method, yaml.clone(), model.clone()));
        let mut text = format!("wrote the {method} merge");
        if let Some(m) = self
            .baseline_score(method)
            .and_then(|b| self.baseline_metrics(b))
        {
            text.push_str(&format!(": score {:.4}", m.score));
        }
        if let Some(t) = self.baseline_score(method).and_then(|b| b.score.test) {
            text.push_str(&format!(
                " · test CACC {}% ASR {}%",
                summary::pct(t.cacc),
                summary::pct(t.asr)
            ));
        }
        let mut files = yaml.display().to_string();
        for extra in [model, mergekit_base].into_iter().flatten() {
            files.push_str(&format!(" + {}", extra.display()));
        }
        text.push_str(&format!(" → {files}"));
        self.say(text, Level::Info);
    }

    /// The next merge number whose files do not exist yet, so nothing is overwritten.
    fn next_merge_number(&mut self, method: MergeMethod) -> usize {
        let taken = |dir: &Path, n: usize| {
            let stem = format!("merge-{n}-{}", method.name());
            dir.join(format!("{stem}.yaml")).exists()
                || dir.join(&stem).exists()
                || dir.join(format!("{stem}-mergekit-base")).exists()
        };
        let mut n = self.written_merges.len() + 1;
        while taken(&self.export_dir, n) {
            n += 1;
        }
        n
    }
}
