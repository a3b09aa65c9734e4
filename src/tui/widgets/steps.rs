//! The step table (victim, pinned strategies, taken steps, the current step's candidates as
//! they stream in) and the progress gauge under it.

use crate::gms::score::Metrics;
use crate::gms::search::candidates;
use crate::gms::session::TestMetrics;
use crate::tui::app::{App, RunState};
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, Cell, LineGauge, Row, Table};
use ratatui::Frame;

/// Inner width the proxy columns need with four decimals; below it (an 80-column terminal)
/// accuracy, ASR and score get three, still exact on the paper's 200-row proxy sets.
const WIDTH_FULL: u16 = 57;
/// Inner width from which the test-set columns are shown.
const WIDTH_WITH_TESTS: u16 = WIDTH_FULL + 14;

struct Line {
    label: String,
    mv: String,
    metrics: Option<Metrics>,
    /// Shown in the score column when there are no metrics (an abandoned candidate's bound).
    score_note: String,
    mark: &'static str,
    test: Option<TestMetrics>,
    style: Style,
}

fn num(v: f64, decimals: usize) -> String {
    format!("{v:.decimals$}")
}

/// A relative drop shown as a signed percentage change (a 19.1 % drop reads `-19.1`).
fn change(drop: f64) -> String {
    // `+ 0.0` turns a negative zero (no drop) into a plain zero.
    format!("{:+.1}", -drop * 100.0 + 0.0)
}

fn lines(app: &App) -> (Vec<Line>, Vec<Line>) {
    let mut fixed = Vec::new();
    if let Some(b) = app.baseline {
        let m = app.rescore(&Metrics {
            acc: b.acc,
            asr: b.asr,
            acc_drop: 0.0,
            asr_drop: 0.0,
            score: 0.0,
        });
        fixed.push(Line {
            label: "victim".into(),
            mv: String::new(),
            metrics: Some(m),
            score_note: String::new(),
            mark: "",
            test: app.victim_test,
            style: Style::new().fg(Color::DarkGray),
        });
    }
    for p in &app.pinned {
        fixed.push(Line {
            label: p.label.clone(),
            mv: format!("{} cells", p.matrix.count()),
            metrics: p.metrics.as_ref().map(|m| app.rescore(m)),
            score_note: "…".into(),
            mark: "pin",
            test: p.test,
            style: Style::new().fg(Color::Magenta),
        });
    }
    let best_step = app.steps.iter().rev().find(|s| s.improved).map(|s| s.step);
    let mut flow: Vec<Line> = app
        .steps
        .iter()
        .map(|s| {
            let best = Some(s.step) == best_step;
            Line {
                label: s.step.to_string(),
                mv: s.point.mv.to_string(),
                metrics: Some(s.point.metrics),
                score_note: String::new(),
                mark: if best { "★best" } else { "" },
                test: if best && app.finished.is_some() {
                    app.final_test
                } else {
                    None
                },
                style: if best {
                    Style::new().fg(Color::Green).add_modifier(Modifier::BOLD)
                } else {
                    Style::new()
                },
            }
        })
        .collect();
    let leader = app.candidates.iter().rposition(|c| c.leader);
    for (i, c) in app.candidates.iter().enumerate() {
        let mark = if Some(i) == leader {
            "◂lead"
        } else if c.metrics.is_none() {
            "cut"
        } else if c.cached {
            "cache"
        } else {
            ""
        };
        flow.push(Line {
            label: format!("{}.{}", c.step, c.index + 1),
            mv: c.mv.to_string(),
            metrics: c.metrics,
            score_note: c
                .upper_bound
                .map(|u| format!("≤{u:.3}"))
                .unwrap_or_default(),
            mark,
            test: None,
            style: if Some(i) == leader {
                Style::new().fg(Color::Cyan)
            } else {
                Style::new().fg(Color::DarkGray)
            },
        });
    }
    (fixed, flow)
}

/// Draws the step table.
pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let title = match app.baseline {
        Some(_) => " steps ".to_string(),
        None => " steps · loading ".to_string(),
    };
    let block = Block::bordered().title(title);
    let inner = block.inner(area);
    let tests = app.has_test_sets() && inner.width >= WIDTH_WITH_TESTS;
    let (decimals, w) = if inner.width >= WIDTH_FULL {
        (4, 6)
    } else {
        (3, 5)
    };
    let (fixed, flow) = lines(app);
    // Keep the victim and the pinned rows; show the newest of the rest.
    let room = usize::from(inner.height.saturating_sub(1));
    let fixed_shown = fixed.len().min(room);
    let flow_shown = flow.len().min(room - fixed_shown);
    let shown = fixed[fixed.len() - fixed_shown..]
        .iter()
        .chain(&flow[flow.len() - flow_shown..]);
    let rows = shown.map(|l| {
        let mut cells = vec![Cell::from(l.label.clone()), Cell::from(l.mv.clone())];
        match &l.metrics {
            Some(m) => cells.extend(
                [
                    num(m.acc, decimals),
                    num(m.asr, decimals),
                    change(m.acc_drop),
                    change(m.asr_drop),
                    num(m.score, decimals),
                ]
                .map(Cell::from),
            ),
            None => {
                cells.extend(["–", "–", "–", "–"].map(Cell::from));
                cells.push(Cell::from(l.score_note.clone()));
            }
        }
        cells.push(Cell::from(l.mark));
        if tests {
            match l.test {
                Some(t) => cells.extend(
                    [
                        format!("{:.1}", t.cacc * 100.0),
                        format!("{:.1}", t.asr * 100.0),
                    ]
                    .map(Cell::from),
                ),
                None => cells.extend(["", ""].map(Cell::from)),
            }
        }
        Row::new(cells).style(l.style)
    });
    let mut header = vec!["step", "move", "acc", "asr", "ΔACC%", "ΔASR%", "score", ""];
    let mut widths = vec![
        Constraint::Length(6),
        Constraint::Length(9),
        Constraint::Length(w),
        Constraint::Length(w),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(w),
        Constraint::Length(5),
    ];
    if tests {
        header.extend(["CACC%", "ASR%"]);
        widths.extend([Constraint::Length(6), Constraint::Length(6)]);
    }
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(Style::new().add_modifier(Modifier::BOLD)))
        .column_spacing(1)
        .block(block);
    frame.render_widget(table, area);
}

/// Candidates in the step from the current state (what the gauge counts to).
fn step_total(app: &App) -> usize {
    if let Some(c) = app.candidates.first() {
        return c.total;
    }
    app.current()
        .map(|p| candidates(&p.modules, &p.layers).len())
        .unwrap_or(0)
}

/// Draws the one-line progress gauge of the step in progress.
pub fn render_gauge(frame: &mut Frame, area: Rect, app: &App) {
    let (ratio, label) = match app.run_state() {
        RunState::Loading => (0.0, "loading models and datasets…".to_string()),
        RunState::Finished(reason) => {
            let best = app
                .best()
                .map(|b| format!(" · best {}", b.matrix))
                .unwrap_or_default();
            (
                1.0,
                format!("finished ({}){best}", format!("{reason:?}").to_lowercase()),
            )
        }
        _ if app.steps.is_empty() => (0.0, "step 0 · full substitution".to_string()),
        _ => {
            let total = step_total(app);
            let done = app.candidates.len();
            let ratio = if total == 0 {
                0.0
            } else {
                done as f64 / total as f64
            };
            (
                ratio.clamp(0.0, 1.0),
                format!("step {} · {done}/{total}", app.steps.len()),
            )
        }
    };
    let gauge = LineGauge::default()
        .ratio(ratio)
        .label(label)
        .filled_style(Style::new().fg(Color::Cyan))
        .unfilled_style(Style::new().fg(Color::DarkGray));
    frame.render_widget(gauge, area);
}
