//! The step table's rows as data: the victim and pinned strategies (kept in view at the top),
//! then the walk's steps and the step in progress's candidates (scrolling). The app selects
//! and scrolls by [`RowId`]; the widget draws the same rows.

use crate::gms::score::Metrics;
use crate::gms::session::TestMetrics;
use crate::model::SubstitutionMatrix;
use crate::tui::app::{App, Source, Strategy};

/// A row of the step table, stable while rows are added around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowId {
    /// The victim (nothing substituted).
    Victim,
    /// A pinned strategy, by request tag.
    Pinned(u64),
    /// A taken step.
    Step(usize),
    /// A candidate of the step in progress, by its index in the step.
    Candidate(usize),
}

/// What a row is, for its style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    /// The victim.
    Victim,
    /// A pinned strategy.
    Pinned,
    /// A taken step.
    Step,
    /// The step holding the search's best.
    Best,
    /// The candidate leading the step in progress.
    Leader,
    /// Another candidate.
    Candidate,
}

/// One row of the step table.
#[derive(Debug, Clone)]
pub struct Row {
    /// Which row.
    pub id: RowId,
    /// First column: step number, `3.4` for a candidate, `e1`, `victim`.
    pub label: String,
    /// The move, or a pinned strategy's size.
    pub mv: String,
    /// Proxy metrics under the current α, when scored completely.
    pub metrics: Option<Metrics>,
    /// Shown in the score column without metrics (an abandoned candidate's bound).
    pub score_note: String,
    /// `★best`, `▲`, `◂lead`, `cut`, `cache`, `pin`.
    pub mark: &'static str,
    /// Patience counter after a step (`2/5`, `0/5↺` when it restarted).
    pub patience: String,
    /// Test-set scores, when known.
    pub test: Option<TestMetrics>,
    /// What it is.
    pub kind: RowKind,
}

/// The rows kept at the top: the victim, then pinned strategies.
pub fn fixed_rows(app: &App) -> Vec<Row> {
    let mut rows = Vec::new();
    if let Some(b) = app.baseline {
        rows.push(Row {
            id: RowId::Victim,
            label: "victim".into(),
            mv: String::new(),
            metrics: app
                .metrics_of(&SubstitutionMatrix::empty(app.num_layers))
                .or(Some(app.rescore(&Metrics {
                    acc: b.acc,
                    asr: b.asr,
                    acc_drop: 0.0,
                    asr_drop: 0.0,
                    score: 0.0,
                }))),
            score_note: String::new(),
            mark: "",
            patience: String::new(),
            test: app.victim_test,
            kind: RowKind::Victim,
        });
    }
    for p in &app.pinned {
        rows.push(Row {
            id: RowId::Pinned(p.tag),
            label: p.label.clone(),
            mv: crate::tui::summary::cells(p.matrix.count()),
            metrics: p.metrics.as_ref().map(|m| app.rescore(m)),
            score_note: "…".into(),
            mark: "pin",
            patience: String::new(),
            test: p.test,
            kind: RowKind::Pinned,
        });
    }
    rows
}

/// The scrolling rows: taken steps, then the step in progress's candidates.
pub fn flow_rows(app: &App) -> Vec<Row> {
    let best_step = app.best_step().map(|s| s.step);
    let patience = app.params.patience;
    let mut rows: Vec<Row> = app
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let best = Some(s.step) == best_step;
            // The counter restarts on a step that beats the one before without a new best.
            let reset = i > 0 && !s.improved && s.no_improve == 0;
            Row {
                id: RowId::Step(s.step),
                label: s.step.to_string(),
                mv: s.point.mv.to_string(),
                metrics: Some(s.point.metrics),
                score_note: String::new(),
                mark: if best {
                    "★best"
                } else if s.improved && i > 0 {
                    "▲"
                } else {
                    ""
                },
                patience: if i == 0 {
                    String::new()
                } else {
                    format!(
                        "{}/{patience}{}",
                        s.no_improve,
                        if reset { "↺" } else { "" }
                    )
                },
                test: if best && app.finished.is_some() {
                    app.final_test.or(app.known(&s.point.matrix).test)
                } else {
                    app.known(&s.point.matrix).test
                },
                kind: if best { RowKind::Best } else { RowKind::Step },
            }
        })
        .collect();
    let leader = app.candidates.iter().rposition(|c| c.leader);
    for (i, c) in app.candidates.iter().enumerate() {
        rows.push(Row {
            id: RowId::Candidate(c.index),
            label: format!("{}.{}", c.step, c.index + 1),
            mv: c.mv.to_string(),
            metrics: c.metrics,
            score_note: c
                .upper_bound
                .map(|u| format!("≤{u:.3}"))
                .unwrap_or_default(),
            mark: if Some(i) == leader {
                "◂lead"
            } else if c.metrics.is_none() {
                "cut"
            } else if c.cached {
                "cache"
            } else {
                ""
            },
            patience: String::new(),
            test: None,
            kind: if Some(i) == leader {
                RowKind::Leader
            } else {
                RowKind::Candidate
            },
        });
    }
    rows
}

/// Ids of the fixed rows.
pub fn fixed_ids(app: &App) -> Vec<RowId> {
    let mut ids = Vec::new();
    if app.baseline.is_some() {
        ids.push(RowId::Victim);
    }
    ids.extend(app.pinned.iter().map(|p| RowId::Pinned(p.tag)));
    ids
}

/// Ids of the scrolling rows.
pub fn flow_ids(app: &App) -> Vec<RowId> {
    app.steps
        .iter()
        .map(|s| RowId::Step(s.step))
        .chain(app.candidates.iter().map(|c| RowId::Candidate(c.index)))
        .collect()
}

/// Every row id, fixed rows first (the order the selection moves through).
pub fn row_ids(app: &App) -> Vec<RowId> {
    let mut ids = fixed_ids(app);
    ids.extend(flow_ids(app));
    ids
}

/// The strategy a row stands for.
pub fn row_strategy(app: &App, id: RowId) -> Option<Strategy> {
    let best = app.best_step().map(|s| s.step);
    let (source, matrix) = match id {
        RowId::Victim => (Source::Victim, SubstitutionMatrix::empty(app.num_layers)),
        RowId::Pinned(tag) => {
            let p = app.pinned.iter().find(|p| p.tag == tag)?;
            (
                Source::Pinned {
                    label: p.label.clone(),
                },
                p.matrix.clone(),
            )
        }
        RowId::Step(step) => {
            let s = app.steps.iter().find(|s| s.step == step)?;
            let source = if Some(step) == best {
                Source::Best { step }
            } else {
                Source::Step { step }
            };
            (source, s.point.matrix.clone())
        }
        RowId::Candidate(index) => {
            let c = app.candidates.iter().find(|c| c.index == index)?;
            (
                Source::Candidate {
                    step: c.step,
                    index,
                },
                c.matrix.clone(),
            )
        }
    };
    Some(Strategy { source, matrix })
}

/// Which rows fit: the last `fixed_shown` fixed rows, then `flow_shown` scrolling rows from
/// `flow_top`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Fixed rows shown (the newest ones).
    pub fixed_shown: usize,
    /// First scrolling row shown.
    pub flow_top: usize,
    /// Scrolling rows shown.
    pub flow_shown: usize,
}

/// The rows that fit `room` lines, the scrolling part from `top` (`None`: the newest rows).
/// Fixed rows take at most half the room while there are scrolling rows to show.
pub fn window(fixed: usize, flow: usize, room: usize, top: Option<usize>) -> Window {
    let fixed_shown = fixed.min((room / 2).max(room.saturating_sub(flow)));
    let flow_room = room - fixed_shown;
    let flow_shown = flow.min(flow_room);
    let tail = flow - flow_shown;
    let flow_top = top.map_or(tail, |t| t.min(tail));
    Window {
        fixed_shown,
        flow_top,
        flow_shown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows() {
        // Everything fits.
        assert_eq!(
            window(2, 3, 10, None),
            Window {
                fixed_shown: 2,
                flow_top: 0,
                flow_shown: 3
            }
        );
        // A long walk follows its newest rows until scrolled.
        assert_eq!(window(1, 40, 10, None).flow_top, 31);
        assert_eq!(window(1, 40, 10, Some(5)).flow_top, 5);
        assert_eq!(window(1, 40, 10, Some(39)).flow_top, 31);
        // Many pins take at most half the room.
        assert_eq!(window(12, 40, 10, None).fixed_shown, 5);
        assert_eq!(window(12, 2, 10, None).fixed_shown, 8);
    }
}
