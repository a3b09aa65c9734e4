//! The merge-baselines panel (`B`): each merge method's proxy acc / asr / score under the
//! current α and its test CACC / ASR, beside the victim and the search's ★best, with the
//! methods that did not run and why. While the worker computes, a method's row says whether
//! it is being merged or waits its turn.

use crate::gms::merge::MergeMethod;
use crate::gms::score::Metrics;
use crate::gms::session::TestMetrics;
use crate::tui::app::{short_label, App};
use crate::tui::summary;
use crate::tui::widgets::heatmap::focus_style;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

/// From this inner width the settings column (`weight 0.5, density 0.7`) is shown.
const SETTINGS_FROM: u16 = 80;

/// The skipped methods grouped by reason, in method order: `(labels, reason)`.
fn skipped_groups(app: &App) -> Vec<(Vec<String>, String)> {
    let mut groups: Vec<(Vec<String>, String)> = Vec::new();
    for (method, why) in &app.baselines_skipped {
        let label = MergeMethod::from_name(method)
            .map_or_else(|| method.clone(), |m| short_label(m).to_string());
        match groups.iter_mut().find(|(_, w)| w == why) {
            Some((labels, _)) => labels.push(label),
            None => groups.push((vec![label], why.clone())),
        }
    }
    groups
}

/// The line naming skipped methods (`TA T D DL skipped: …`).
fn skipped_line(labels: &[String], why: &str) -> (String, String) {
    (format!("{} ", labels.join(" ")), format!("skipped: {why}"))
}

/// Rows the panel wants `width` columns wide: borders, header, the victim and ★best, a row a
/// method, the lines saying which methods were skipped and why, the progress line.
pub fn height(app: &App, width: u16) -> u16 {
    let inner = usize::from(width.saturating_sub(2)).max(1);
    let methods = app.baselines_planned.len().max(1);
    let skipped: usize = skipped_groups(app)
        .iter()
        .map(|(labels, why)| {
            let (a, b) = skipped_line(labels, why);
            (a.chars().count() + b.chars().count()).div_ceil(inner)
        })
        .sum();
    let progress = usize::from(!app.baselines_done);
    (2 + 1 + 2 + methods + skipped + progress) as u16
}

/// One table row's figures.
struct Figures {
    metrics: Option<Metrics>,
    test: Option<TestMetrics>,
}

fn figure_cells(f: &Figures, tests: bool, pending: Option<&str>) -> Vec<String> {
    let mut cells = match (f.metrics, pending) {
        (Some(m), _) => vec![
            format!("{:.3}", m.acc),
            format!("{:.3}", m.asr),
            format!("{:.3}", m.score),
        ],
        (None, Some(p)) => vec![p.to_string(), String::new(), String::new()],
        (None, None) => vec![String::new(); 3],
    };
    if tests {
        let (c, a) = f.test.map_or((String::new(), String::new()), |t| {
            (summary::pct(t.cacc), summary::pct(t.asr))
        });
        cells.extend([c, a]);
    }
    cells
}

/// Draws the panel.
pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    if area.width < 3 || area.height < 3 {
        return;
    }
    let width = usize::from(area.width.saturating_sub(2));
    let progress = if !app.baselines_requested {
        String::new()
    } else if let Some(m) = app.baseline_in_flight() {
        let done = app.baselines.len();
        let of = app.baselines_planned.len();
        format!("· merging {m} ({}/{of}) ", done + 1)
    } else if app.baselines_done {
        "· B closes · w/W write ".to_string()
    } else {
        "· starting… ".to_string()
    };
    let title = format!(" merge baselines · α {:.2} {progress}", app.params.alpha);
    let block = Block::bordered()
        .border_style(focus_style(true))
        .title(summary::fit(&title, width));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let tests = app.has_test_sets();
    let settings = inner.width >= SETTINGS_FROM;
    let dim = Style::new().fg(Color::DarkGray);

    let mut rows: Vec<Row> = Vec::new();
    let mut reference = |name: &str, f: Figures| {
        let mut cells = vec![String::new(), String::new(), name.to_string()];
        if settings {
            cells.push(String::new());
        }
        cells.extend(figure_cells(&f, tests, None));
        cells.push(String::new());
        rows.push(Row::new(cells.into_iter().map(Cell::from)).style(dim));
    };
    if let Some(b) = app.baseline {
        reference(
            "victim",
            Figures {
                metrics: Some(app.drops.metrics(app.params.alpha, b, b.acc, b.asr)),
                test: app.victim_test,
            },
        );
    }
    if let Some(best) = app.best() {
        reference(
            "GMS ★best",
            Figures {
                metrics: Some(app.rescore(&best.metrics)),
                test: app.known(&best.matrix).test,
            },
        );
    }
    let in_flight = app.baseline_in_flight();
    for (i, method) in app.baselines_planned.iter().enumerate() {
        let scored = app.baseline_score(*method);
        let selected = i == app.baselines_selected;
        let pending = match (scored, in_flight) {
            (Some(_), _) => None,
            (None, Some(m)) if m == *method => Some("…"),
            (None, _) if app.baselines_done => Some("–"),
            (None, _) => Some("·"),
        };
        let f = Figures {
            metrics: scored.and_then(|b| app.baseline_metrics(b)),
            test: scored.and_then(|b| b.score.test),
        };
        let mut cells = vec![
            if selected { "▶" } else { "" }.to_string(),
            short_label(*method).to_string(),
            method.name().to_string(),
        ];
        if settings {
            cells.push(scored.map(|b| b.settings.clone()).unwrap_or_default());
        }
        cells.extend(figure_cells(&f, tests, pending));
        let written = app.written_merges.iter().any(|(m, ..)| m == method);
        cells.push(if written { "✓" } else { "" }.to_string());
        let mut style = Style::new();
        if selected {
            style = style.add_modifier(Modifier::REVERSED);
        }
        match pending {
            Some("…") => style = style.fg(Color::Yellow),
            Some(_) => style = style.fg(Color::DarkGray),
            None => {}
        }
        rows.push(Row::new(cells.into_iter().map(Cell::from)).style(style));
    }
    let mut header = vec!["", "", "method"];
    let mut widths = vec![
        Constraint::Length(1),
        Constraint::Length(2),
        Constraint::Length(15),
    ];
    if settings {
        header.push("settings");
        widths.push(Constraint::Length(32));
    }
    super::score_columns(&mut header, &mut widths, tests);
    header.push("");
    widths.push(Constraint::Length(1));
    let n_rows = rows.len() as u16 + 1;
    let skipped = skipped_groups(app);
    let empty = app.baselines_planned.is_empty();
    let table_h = n_rows.min(inner.height);
    let table_area = Rect::new(inner.x, inner.y, inner.width, table_h);
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(Style::new().add_modifier(Modifier::BOLD)))
        .column_spacing(1);
    frame.render_widget(table, table_area);
    let mut lines: Vec<Line> = Vec::new();
    if empty && !app.baselines_done {
        lines.push(Line::from(Span::styled(
            "opening the models for the merges…",
            dim,
        )));
    } else if let Some(m) = app.baseline_in_flight() {
        let queued: Vec<&str> = app
            .baselines_planned
            .iter()
            .filter(|q| **q != m && app.baseline_score(**q).is_none())
            .map(|q| short_label(*q))
            .collect();
        let mut text = format!(
            "… merging {m} ({}/{})",
            app.baselines.len() + 1,
            app.baselines_planned.len()
        );
        if !queued.is_empty() {
            text.push_str(&format!(" · queued: {}", queued.join(" ")));
        }
        lines.push(Line::from(Span::styled(
            text,
            Style::new().fg(Color::Yellow),
        )));
    }
    for (labels, why) in skipped {
        lines.push(Line::from(vec![
            Span::styled(
                format!("{} ", labels.join(" ")),
                Style::new().fg(Color::Yellow),
            ),
            Span::styled(format!("skipped: {why}"), dim),
        ]));
    }
    let rest = Rect::new(
        inner.x,
        inner.y + table_h,
        inner.width,
        inner.height.saturating_sub(table_h),
    );
    if rest.height > 0 && !lines.is_empty() {
        frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), rest);
    }
}
