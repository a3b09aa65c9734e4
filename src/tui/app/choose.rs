//! Choosing what the heatmap keeps showing: adopting a row, hand edits, the best, following
//! the search, undo; and scoring the shown strategy into a pinned row.

use super::*;

impl App {
    pub(super) fn adopt(&mut self) {
        let shown = self.shown();
        if matches!(self.focus, Focus::Heatmap | Focus::Baselines) {
            return;
        }
        if matches!(shown.source, Source::Live { .. }) {
            self.say("select a row first (↑↓)", Level::Info);
            return;
        }
        let text = format!(
            "adopted {} · w writes it · u undoes · f follows the search",
            self.describe(&shown)
        );
        self.set_adopted(Some(shown));
        self.say(text, Level::Info);
    }

    pub(super) fn set_adopted(&mut self, next: Option<Strategy>) {
        let before = std::mem::replace(&mut self.adopted, next);
        self.undo.push(before);
    }

    pub(super) fn edit(&mut self, action: Action) {
        let (l, m) = self.cursor_cell();
        if action == Action::ToggleCell && !self.can_substitute(l, m) {
            self.say(
                format!("L{l}·{m} cannot be substituted: the victim and proxy adapters do not both adapt it"),
                Level::Warn,
            );
            return;
        }
        let base = self.shown();
        let mut matrix = base.matrix.clone();
        let what = match action {
            Action::ToggleCell => {
                matrix.toggle(l, m);
                let from = if matrix.get(l, m) { "proxy" } else { "victim" };
                format!("L{l}·{m} → {from}")
            }
            Action::ToggleRow => {
                matrix.toggle_layer(l, &self.modules);
                let from = if matrix.get(l, m) { "proxy" } else { "victim" };
                format!("layer {l} → all {from}")
            }
            _ => {
                matrix.toggle_module(m);
                let from = if matrix.get(l, m) { "proxy" } else { "victim" };
                format!("module {m} → {from} in every layer")
            }
        };
        // A row or column toggle leaves the cells the proxy cannot give alone.
        if let Some(s) = &self.substitutable {
            matrix = matrix.intersection(s);
        }
        let source = match &base.source {
            Source::Edited { .. } => base.source.clone(),
            other => Source::Edited { from: other.name() },
        };
        let from = match &source {
            Source::Edited { from } => from.clone(),
            _ => String::new(),
        };
        self.set_adopted(Some(Strategy { source, matrix }));
        let cells = self.edited().map_or(0, |m| m.count());
        self.say(
            format!(
                "edit of {from}: {what} · {} · e scores it · u undoes",
                summary::cells(cells)
            ),
            Level::Info,
        );
    }

    pub(super) fn take_best(&mut self) {
        match self.best_strategy() {
            Some(b) => {
                let text = format!("showing {} · w writes it", self.describe(&b));
                self.focus = Focus::Heatmap;
                self.set_adopted(Some(b));
                self.say(text, Level::Info);
            }
            None => self.say("the search has no best strategy yet", Level::Info),
        }
    }

    pub(super) fn follow(&mut self) {
        self.focus = Focus::Heatmap;
        let Some(dropped) = self.adopted.clone() else {
            self.say("already following the search", Level::Info);
            return;
        };
        self.set_adopted(None);
        let what = if self.finished.is_some() {
            "its ★best"
        } else {
            "its live walk"
        };
        self.say(
            format!(
                "following the search ({what}); dropped {} ({}) · u brings it back",
                dropped.source.name(),
                summary::cells(dropped.matrix.count())
            ),
            Level::Info,
        );
    }

    pub(super) fn undo_last(&mut self) {
        match self.undo.pop() {
            Some(before) => {
                self.adopted = before;
                self.focus = Focus::Heatmap;
                let now = self.chosen();
                self.say(
                    format!("undone: showing {}", self.describe(&now)),
                    Level::Info,
                );
            }
            None => self.say("nothing to undo", Level::Info),
        }
    }

    pub(super) fn evaluate(&mut self) -> Vec<Command> {
        let shown = self.shown();
        if let Some(p) = self.pinned.iter().find(|p| p.matrix == shown.matrix) {
            let text = format!(
                "{} already holds this strategy ({})",
                p.label,
                summary::cells(p.matrix.count())
            );
            self.say(text, Level::Info);
            return Vec::new();
        }
        let (label, command) = self.pin(&shown.matrix);
        self.say(
            format!(
                "scoring {} as {label} on the proxy{} sets…",
                shown.source.name(),
                if self.has_test_sets() {
                    " and test"
                } else {
                    ""
                }
            ),
            Level::Info,
        );
        vec![command]
    }

    /// Adds a pinned row for `matrix` and the command that scores it.
    pub(super) fn pin(&mut self, matrix: &SubstitutionMatrix) -> (String, Command) {
        let tag = self.next_tag;
        self.next_tag += 1;
        let label = format!("e{tag}");
        self.pinned.push(Pinned {
            label: label.clone(),
            tag,
            matrix: matrix.clone(),
            metrics: None,
            test: None,
        });
        (
            label,
            Command::Evaluate {
                tag,
                matrix: matrix.clone(),
            },
        )
    }
}
