//! The trade-off view: for each α of a sweep, the search's answer — a selectable list (α,
//! cells, proxy accuracy/ASR/score, test CACC/ASR) and a plot with α along the bottom, so each
//! α keeps its own column and the ASR cliff reads at a glance. The selected row is what the
//! heatmap shows while the list has the focus.
//!
//! The rows are the greedy search's at each α; other series (search modes, merge baselines)
//! would be more rows of the same shape.

use crate::tui::app::{sweep_alphas, App, Focus, SweepResult};
use crate::tui::summary;
use crate::tui::widgets::heatmap::focus_style;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, Widget, Wrap};
use ratatui::Frame;

/// Columns of the list: marker, α, cells, acc, asr, score, CACC%, ASR%, mark, with spacing.
const LIST_WIDTH: u16 = 49;
/// The narrowest plot beside the list.
const PLOT_MIN_WIDTH: u16 = 30;
/// The lowest plot under the list.
const PLOT_MIN_HEIGHT: u16 = 6;

/// CACC and ASR of a row: on the test sets when given, else on the proxy sets.
fn rates(s: &SweepResult) -> (f64, f64) {
    match s.test {
        Some(t) => (t.cacc, t.asr),
        None => (s.best.metrics.acc, s.best.metrics.asr),
    }
}

/// Where the list and the plot go inside the panel `area`.
fn parts(area: Rect, app: &App) -> (Option<Rect>, Option<Rect>) {
    if app.sweep.is_empty() || area.width < 3 || area.height < 3 {
        return (None, None);
    }
    let inner = Block::bordered().inner(area);
    let focused = app.focus == Focus::Tradeoff;
    let list_h = (app.sweep.len() as u16 + 1).min(inner.height);
    if inner.width >= LIST_WIDTH + 1 + PLOT_MIN_WIDTH {
        let list = Rect::new(inner.x, inner.y, LIST_WIDTH, list_h);
        let plot = Rect::new(
            inner.x + LIST_WIDTH + 1,
            inner.y,
            inner.width - LIST_WIDTH - 1,
            inner.height,
        );
        return (Some(list), Some(plot));
    }
    if !focused {
        return (None, Some(inner));
    }
    // Stacked: the plot keeps its rows while the list still shows a few of its own.
    if inner.height >= PLOT_MIN_HEIGHT + 4 {
        let list_h = list_h.min(inner.height - PLOT_MIN_HEIGHT);
        let list = Rect::new(inner.x, inner.y, inner.width, list_h);
        let plot = Rect::new(
            inner.x,
            inner.y + list_h,
            inner.width,
            inner.height - list_h,
        );
        (Some(list), Some(plot))
    } else {
        (
            Some(Rect::new(inner.x, inner.y, inner.width, inner.height)),
            None,
        )
    }
}

/// Where the list is drawn in the panel `area`, if it is.
pub fn list_area(area: Rect, app: &App) -> Option<Rect> {
    parts(area, app).0
}

/// The first list row shown when `room` rows fit: the selection stays in view.
pub fn list_top(app: &App, room: usize) -> usize {
    (app.sweep_selected + 1).saturating_sub(room.max(1))
}

/// Draws the trade-off view.
pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    if area.width == 0 || area.height == 0 {
        return;
    }
    let focused = app.focus == Focus::Tradeoff;
    let width = usize::from(area.width.saturating_sub(2));
    let mut title = if app.sweeping {
        format!(
            " trade-off · sweeping {}/{} ",
            app.sweep.len(),
            sweep_alphas().len()
        )
    } else {
        " trade-off ".to_string()
    };
    if !app.sweep.is_empty() {
        let what = if app.has_test_sets() { "test" } else { "proxy" };
        // The plot's glyphs need their legend; a narrow title keeps a terse one.
        let legend = format!("· █ ASR ░ CACC ({what}) ");
        let terse = "█ASR ░CACC ";
        if title.chars().count() + legend.chars().count() <= width {
            title.push_str(&legend);
        } else if title.chars().count() + terse.chars().count() <= width {
            title.push_str(terse);
        }
    }
    let block = Block::bordered()
        .border_style(focus_style(focused))
        .title(summary::fit(&title, width));
    if app.sweep.is_empty() {
        let text = if app.sweeping {
            "sweeping α 0.0–1.0: rows appear as each α's search ends…"
        } else {
            "a sweeps α 0.0–1.0 by 0.1: the search's answer at each α, scored on every set"
        };
        frame.render_widget(
            Paragraph::new(text).wrap(Wrap { trim: true }).block(block),
            area,
        );
        return;
    }
    frame.render_widget(block, area);
    let (list, plot) = parts(area, app);
    if let Some(list) = list {
        render_list(frame, list, app);
    }
    if let Some(plot) = plot {
        frame.render_widget(Plot { app }, plot);
    }
}

fn render_list(frame: &mut Frame, area: Rect, app: &App) {
    let focused = app.focus == Focus::Tradeoff;
    let tests = app.has_test_sets();
    let room = usize::from(area.height.saturating_sub(1));
    let top = list_top(app, room);
    let adopted = app.adopted.as_ref().map(|a| &a.matrix);
    let rows = app
        .sweep
        .iter()
        .enumerate()
        .skip(top)
        .take(room)
        .map(|(i, s)| {
            let m = s.best.metrics;
            let mut mark = String::new();
            if adopted == Some(&s.best.matrix) {
                mark.push('●');
            }
            if app.written.iter().any(|(_, w)| *w == s.best.matrix) {
                mark.push('✓');
            }
            if (s.alpha - app.params.alpha).abs() < 1e-9 {
                mark.push_str("now");
            }
            let selected = if i == app.sweep_selected { "▶" } else { "" };
            let mut cells = vec![
                selected.to_string(),
                format!("{:.2}", s.alpha),
                s.best.matrix.count().to_string(),
                format!("{:.3}", m.acc),
                format!("{:.3}", m.asr),
                format!("{:.3}", m.score),
            ];
            if tests {
                let (cacc, asr) = s.test.map_or((String::new(), String::new()), |t| {
                    (summary::pct(t.cacc), summary::pct(t.asr))
                });
                cells.extend([cacc, asr]);
            }
            cells.push(mark);
            let mut style = Style::new();
            if i == app.sweep_selected {
                style = if focused {
                    style.add_modifier(Modifier::REVERSED)
                } else {
                    style.add_modifier(Modifier::UNDERLINED)
                };
            }
            Row::new(cells.into_iter().map(Cell::from)).style(style)
        });
    let mut header = vec!["", "α", "cells", "acc", "asr", "score"];
    let mut widths = vec![
        Constraint::Length(1),
        Constraint::Length(4),
        Constraint::Length(5),
        Constraint::Length(5),
        Constraint::Length(5),
        Constraint::Length(5),
    ];
    if tests {
        header.extend(["CACC%", "ASR%"]);
        widths.extend([Constraint::Length(5), Constraint::Length(5)]);
    }
    header.push("");
    widths.push(Constraint::Length(5));
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(Style::new().add_modifier(Modifier::BOLD)))
        .column_spacing(1);
    frame.render_widget(table, area);
}

/// α along the bottom (one column each), 0–100 % up: a `░` bar for CACC and a `█` bar for
/// ASR per α; the selected α's label is highlighted and its values head the plot.
struct Plot<'a> {
    app: &'a App,
}

impl Widget for Plot<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let n = app.sweep.len() as u16;
        if area.width <= 6 || area.height < 3 || n == 0 {
            return;
        }
        let mut top = area.y;
        let mut height = area.height;
        // The selected α's figures, when there is a row to spare.
        if area.height >= 6 {
            if let Some(s) = app.sweep.get(app.sweep_selected) {
                let (cacc, asr) = rates(s);
                let text = format!(
                    "α {:.2}: {} · CACC {}% · ASR {}%",
                    s.alpha,
                    summary::cells(s.best.matrix.count()),
                    summary::pct(cacc),
                    summary::pct(asr)
                );
                buf.set_line(
                    area.x,
                    top,
                    &Line::from(Span::styled(
                        summary::fit(&text, usize::from(area.width)),
                        Style::new().add_modifier(Modifier::BOLD),
                    )),
                    area.width,
                );
                top += 1;
                height -= 1;
            }
        }
        let plot_h = height - 1;
        // The y axis takes `100%│`, or `100│` when that leaves each α two columns.
        let axis: u16 = if (area.width - 5) / n >= 2 { 5 } else { 4 };
        let col = ((area.width - axis) / n).clamp(2, 8);
        // Each bar is `bar` columns wide: one on a narrow plot, more when there is room,
        // always leaving a gap between αs once the columns are wide enough.
        let bar = ((col - 1) / 2).max(1);
        let dim = Style::new().fg(Color::DarkGray);
        for r in 0..plot_h {
            let y = top + r;
            let label = if r == 0 {
                "100%"
            } else if r == plot_h - 1 {
                "0%"
            } else if r == plot_h / 2 && plot_h >= 5 {
                "50%"
            } else {
                ""
            };
            let label = if axis == 5 {
                label
            } else {
                label.trim_end_matches('%')
            };
            let w = usize::from(axis - 1);
            buf.set_string(area.x, y, format!("{label:>w$}│"), dim);
        }
        let base_y = top + plot_h;
        for (i, s) in app.sweep.iter().enumerate() {
            let x = area.x + axis + col * i as u16;
            if x + 1 >= area.right() {
                break;
            }
            let (cacc, asr) = rates(s);
            // CACC in whole cells of light shade.
            let cacc_cells = (cacc * f64::from(plot_h)).round() as u16;
            for k in 0..cacc_cells.min(plot_h) {
                let shade = "░".repeat(usize::from(bar));
                buf.set_string(x, base_y - 1 - k, shade, Style::new().fg(Color::Green));
            }
            // ASR in eighths of a cell.
            let eighths = (asr * f64::from(plot_h) * 8.0).round() as u16;
            for k in 0..plot_h {
                let left = eighths.saturating_sub(k * 8);
                if left == 0 {
                    break;
                }
                let ch = [" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"][usize::from(left.min(8))];
                let block = ch.repeat(usize::from(bar));
                buf.set_string(x + bar, base_y - 1 - k, block, Style::new().fg(Color::Red));
            }
            let label = alpha_label(s.alpha, col, i, app.sweep.len());
            if !label.is_empty() {
                let style = if i == app.sweep_selected {
                    Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
                } else {
                    dim
                };
                let label = summary::fit(&label, usize::from(area.right() - x));
                buf.set_string(x, base_y, label, style);
            }
        }
        let alpha = format!("{:>w$} ", "α", w = usize::from(axis - 1));
        buf.set_string(area.x, base_y, alpha, dim);
    }
}

/// The α label under column `i` of `n`, `col` wide: `0.3` when it fits, `.3` in three
/// columns, only 0, .5 and 1 in two.
fn alpha_label(alpha: f64, col: u16, i: usize, n: usize) -> String {
    let last = i + 1 == n;
    match col {
        4.. => format!("{alpha:.1}"),
        3 if alpha >= 1.0 && last => "1.0".into(),
        3 => format!("{alpha:.1}").trim_start_matches('0').to_string(),
        _ if (alpha * 10.0).round() as i64 % 5 == 0 => {
            if alpha >= 1.0 {
                "1".into()
            } else if alpha == 0.0 {
                "0".into()
            } else {
                ".5".into()
            }
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpha_labels_fit_their_columns() {
        assert_eq!(alpha_label(0.3, 4, 3, 11), "0.3");
        assert_eq!(alpha_label(0.3, 3, 3, 11), ".3");
        assert_eq!(alpha_label(1.0, 3, 10, 11), "1.0");
        assert_eq!(alpha_label(0.3, 2, 3, 11), "");
        assert_eq!(alpha_label(0.5, 2, 5, 11), ".5");
        assert_eq!(alpha_label(0.0, 2, 0, 11), "0");
    }
}
