//! The step table (victim, pinned strategies, taken steps, the current step's candidates as
//! they stream in) and the progress gauge under it. The table scrolls and its selected row is
//! what the heatmap shows while the table has the focus.

use crate::gms::search::candidates;
use crate::tui::app::{App, Focus, RunState};
use crate::tui::rows::{self, Row as StepRow, RowKind};
use crate::tui::summary;
use crate::tui::widgets::heatmap::focus_style;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Cell, LineGauge, Row, Table};
use ratatui::Frame;

/// A column: header, width, and rank: when the table is too narrow the lowest rank goes
/// first (ΔACC/ΔASR, then the patience counter, then the marks; CACC/ASR stay longest).
struct Column {
    header: &'static str,
    width: u16,
    rank: u8,
    cell: fn(&StepRow, usize) -> String,
}

fn num(v: f64, decimals: usize) -> String {
    format!("{v:.decimals$}")
}

/// A relative drop shown as a signed percentage change (a 19.1 % drop reads `-19.1`).
fn change(drop: f64) -> String {
    // `+ 0.0` turns a negative zero (no drop) into a plain zero.
    format!("{:+.1}", -drop * 100.0 + 0.0)
}

fn metric(r: &StepRow, decimals: usize, f: fn(&crate::gms::score::Metrics) -> f64) -> String {
    r.metrics.map_or("–".into(), |m| num(f(&m), decimals))
}

fn columns(tests: bool) -> Vec<Column> {
    let mut c = vec![
        Column {
            // The selection marker, so the selected row reads without colour too.
            header: "",
            width: 1,
            rank: 255,
            cell: |_, _| String::new(),
        },
        Column {
            header: "step",
            width: 6,
            rank: 255,
            cell: |r, _| r.label.clone(),
        },
        Column {
            header: "move",
            width: 9,
            rank: 254,
            cell: |r, _| r.mv.clone(),
        },
        Column {
            header: "acc",
            width: 6,
            rank: 200,
            cell: |r, d| metric(r, d, |m| m.acc),
        },
        Column {
            header: "asr",
            width: 6,
            rank: 200,
            cell: |r, d| metric(r, d, |m| m.asr),
        },
        Column {
            header: "ΔACC%",
            width: 6,
            rank: 10,
            cell: |r, _| r.metrics.map_or("–".into(), |m| change(m.acc_drop)),
        },
        Column {
            header: "ΔASR%",
            width: 6,
            rank: 11,
            cell: |r, _| r.metrics.map_or("–".into(), |m| change(m.asr_drop)),
        },
        Column {
            header: "score",
            width: 6,
            rank: 250,
            cell: |r, d| match r.metrics {
                Some(m) => num(m.score, d),
                None => r.score_note.clone(),
            },
        },
        Column {
            header: "",
            width: 5,
            rank: 120,
            cell: |r, _| r.mark.to_string(),
        },
        Column {
            header: "pat.",
            width: 5,
            rank: 50,
            cell: |r, _| r.patience.clone(),
        },
    ];
    if tests {
        c.push(Column {
            header: "CACC%",
            width: 5,
            rank: 150,
            cell: |r, _| r.test.map_or(String::new(), |t| summary::pct(t.cacc)),
        });
        c.push(Column {
            header: "ASR%",
            width: 5,
            rank: 150,
            cell: |r, _| r.test.map_or(String::new(), |t| summary::pct(t.asr)),
        });
    }
    c
}

/// The columns that fit `width`, dropping the lowest ranks first; narrow tables print the
/// proxy figures with three decimals (still exact on the paper's 200-row proxy sets).
fn fitting(width: u16, tests: bool) -> (Vec<Column>, usize) {
    let mut cols = columns(tests);
    let need = |cols: &[Column]| cols.iter().map(|c| c.width + 1).sum::<u16>();
    let decimals = if need(&cols) <= width { 4 } else { 3 };
    if decimals == 3 {
        for c in &mut cols {
            if matches!(c.header, "acc" | "asr" | "score") {
                c.width = 5;
            }
        }
    }
    while need(&cols) > width + 1 {
        let Some(i) = cols
            .iter()
            .enumerate()
            .min_by_key(|(_, c)| c.rank)
            .map(|(i, _)| i)
        else {
            break;
        };
        cols.remove(i);
    }
    (cols, decimals)
}

fn row_style(kind: RowKind) -> Style {
    match kind {
        RowKind::Victim => Style::new().fg(Color::DarkGray),
        RowKind::Pinned => Style::new().fg(Color::Magenta),
        RowKind::Step => Style::new(),
        RowKind::Best => Style::new().fg(Color::Green).add_modifier(Modifier::BOLD),
        RowKind::Leader => Style::new().fg(Color::Cyan),
        RowKind::Candidate => Style::new().fg(Color::DarkGray),
    }
}

/// Draws the step table.
pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let focused = app.focus == Focus::Steps;
    let mut title = match app.baseline {
        Some(_) => " steps ".to_string(),
        None => " steps · loading ".to_string(),
    };
    if let Some(b) = app.best_step() {
        title = format!(
            " steps · ★best {} ({:.4}) · patience {}/{} ",
            b.step,
            b.point.metrics.score,
            app.steps.last().map_or(0, |s| s.no_improve),
            app.params.patience
        );
    }
    let block = Block::bordered()
        .border_style(focus_style(focused))
        .title(Line::from(summary::fit(
            &title,
            usize::from(area.width.saturating_sub(2)),
        )));
    let inner = block.inner(area);
    let (cols, decimals) = fitting(inner.width, app.has_test_sets());
    let fixed = rows::fixed_rows(app);
    let flow = rows::flow_rows(app);
    let room = usize::from(inner.height.saturating_sub(1));
    let w = rows::window(fixed.len(), flow.len(), room, app.steps_top);
    let shown = fixed[fixed.len() - w.fixed_shown..]
        .iter()
        .chain(&flow[w.flow_top..w.flow_top + w.flow_shown]);
    let selected = app.steps_selected;
    let table_rows = shown.map(|r| {
        let mut cells: Vec<Cell> = cols
            .iter()
            .map(|c| Cell::from((c.cell)(r, decimals)))
            .collect();
        // The marker only while the table has the focus: only then is the row on the heatmap.
        if focused && Some(r.id) == selected {
            cells[0] = Cell::from("▶");
        }
        let mut style = row_style(r.kind);
        if Some(r.id) == selected {
            style = if focused {
                style.add_modifier(Modifier::REVERSED)
            } else {
                style.add_modifier(Modifier::UNDERLINED)
            };
        }
        Row::new(cells).style(style)
    });
    let header: Vec<&str> = cols.iter().map(|c| c.header).collect();
    let widths: Vec<Constraint> = cols.iter().map(|c| Constraint::Length(c.width)).collect();
    let table = Table::new(table_rows, widths)
        .header(Row::new(header).style(Style::new().add_modifier(Modifier::BOLD)))
        .column_spacing(1)
        .block(block);
    frame.render_widget(table, area);
    // Say when rows are out of view, so a long walk's rows are known to be there.
    let above = w.flow_top;
    let below = flow.len() - w.flow_top - w.flow_shown;
    if (above > 0 || below > 0) && area.height > 2 {
        let text = match (above, below) {
            (0, b) => format!(" ↓{b} more "),
            (a, 0) => format!(" ↑{a} more "),
            (a, b) => format!(" ↑{a} ↓{b} "),
        };
        let x = area.right().saturating_sub(text.chars().count() as u16 + 1);
        frame
            .buffer_mut()
            .set_string(x, area.bottom() - 1, text, Style::new().fg(Color::DarkGray));
    }
}

/// Candidates in the step from the current state (what the gauge counts to).
fn step_total(app: &App) -> usize {
    if let Some(c) = app.candidates.first() {
        return c.total;
    }
    // Only the paper's search has its candidate list known here; the other modes' first
    // candidate event says how many there are.
    if app.mode != crate::gms::modes::SearchMode::Paper {
        return 0;
    }
    app.current()
        .map(|p| candidates(&p.modules, &p.layers).len())
        .unwrap_or(0)
}

/// Draws the one-line progress gauge of the step in progress.
pub fn render_gauge(frame: &mut Frame, area: Rect, app: &App) {
    let width = usize::from(area.width);
    let (ratio, label) = match app.run_state() {
        RunState::Loading => (0.0, "loading models and datasets…".to_string()),
        RunState::Finished(_) => {
            let best = app
                .best()
                .map(|b| format!(" · ★best {}", summary::strategy(&b.matrix)))
                .unwrap_or_default();
            let test = app
                .final_test
                .map(|t| {
                    format!(
                        " · CACC {}% ASR {}%",
                        summary::pct(t.cacc),
                        summary::pct(t.asr)
                    )
                })
                .unwrap_or_default();
            (1.0, format!("finished{best}{test}"))
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
        .label(summary::fit(&label, width.saturating_sub(2)))
        .filled_style(Style::new().fg(Color::Cyan))
        .unfilled_style(Style::new().fg(Color::DarkGray));
    frame.render_widget(gauge, area);
}
