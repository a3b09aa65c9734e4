//! The trade-off view: for each α of a sweep, the search's answer — a selectable list (α,
//! cells, proxy accuracy/ASR/score, test CACC/ASR) and a plot with α along the bottom, so each
//! α keeps its own column and the ASR cliff reads at a glance. The selected row is what the
//! heatmap shows while the list has the focus.
//!
//! The rows are the greedy search's at each α. Merge baselines the worker has scored (`B`)
//! stand after the sweep's columns as labelled points (`◇` CACC, `◆` ASR, `L`/`TA`/`T`/`D`/
//! `DL` under them): a merge has no α, so it is a point beside the curve, not on it.
//!
//! Sweeps of several modes (`a`, `m`, `a` again) stand side by side: the list gains a mode
//! column, and the plot becomes a scatter of CACC (up) against ASR (across), each answer
//! drawn as its mode's letter (`p` paper, `c` cells, `f` cells from full, `b` beam, `r`
//! refine), the merges as their labels and the victim as `v`: which mode's answers lie up
//! and to the left of which reads at a glance, where α columns per mode would not fit.

use crate::gms::merge::BaselineScore;
use crate::gms::modes::{CellsStart, SearchMode};
use crate::tui::app::{mode_mark, mode_tag, short_label, sweep_alphas, App, Focus, SweepResult};
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
/// Columns the mode adds to the list when several modes were swept.
const MODE_WIDTH: u16 = 7;
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

/// CACC and ASR of a merge baseline: on the test sets when given, else on the proxy sets.
fn baseline_rates(b: &BaselineScore) -> Option<(f64, f64)> {
    match (b.score.test, b.score.proxy) {
        (Some(t), _) => Some((t.cacc, t.asr)),
        (None, Some(c)) => Some((c.acc(), c.asr())),
        (None, None) => None,
    }
}

/// Where the list and the plot go inside the panel `area`.
fn parts(area: Rect, app: &App) -> (Option<Rect>, Option<Rect>) {
    if area.width < 3 || area.height < 3 {
        return (None, None);
    }
    let inner = Block::bordered().inner(area);
    if app.sweep.is_empty() {
        // Merge baselines without a sweep: their points alone.
        return (None, (!app.baselines.is_empty()).then_some(inner));
    }
    let focused = app.focus == Focus::Tradeoff;
    let list_h = (app.sweep.len() as u16 + 1).min(inner.height);
    let list_w = if several_modes(app) {
        LIST_WIDTH + MODE_WIDTH
    } else {
        LIST_WIDTH
    };
    if inner.width >= list_w + 1 + PLOT_MIN_WIDTH {
        let list = Rect::new(inner.x, inner.y, list_w, list_h);
        let plot = Rect::new(
            inner.x + list_w + 1,
            inner.y,
            inner.width - list_w - 1,
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

/// Whether sweeps of more than one mode are shown.
fn several_modes(app: &App) -> bool {
    app.sweep.iter().any(|s| s.mode != app.sweep[0].mode)
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
            " trade-off · sweeping {} {}/{} ",
            mode_tag(app.sweep_mode),
            app.swept(app.sweep_mode),
            sweep_alphas().len()
        )
    } else {
        " trade-off ".to_string()
    };
    if !app.sweep.is_empty() || !app.baselines.is_empty() {
        let what = if app.has_test_sets() { "test" } else { "proxy" };
        // The plot's glyphs need their legend; a narrow title keeps a terse one.
        let merges = !app.baselines.is_empty();
        let (legend, terse) = if several_modes(app) {
            let marks: Vec<String> = app
                .swept_modes()
                .into_iter()
                .map(|m| format!("{} {}", mode_mark(m), mode_tag(m)))
                .collect();
            (
                format!("· ↑CACC →ASR ({what}) · {} ", marks.join(" ")),
                format!(
                    "{} ",
                    app.swept_modes()
                        .into_iter()
                        .map(mode_mark)
                        .collect::<String>()
                ),
            )
        } else {
            match (app.sweep.is_empty(), merges) {
                (false, false) => (
                    format!("· █ ASR ░ CACC ({what}) "),
                    "█ASR ░CACC ".to_string(),
                ),
                (false, true) => (
                    format!("· █ ASR ░ CACC ({what}) · merges ◆ ASR ◇ CACC "),
                    "█◆ASR ░◇CACC ".to_string(),
                ),
                (true, _) => (
                    format!("· merges: ◆ ASR ◇ CACC ({what}) "),
                    "◆ASR ◇CACC ".to_string(),
                ),
            }
        };
        if title.chars().count() + legend.chars().count() <= width {
            title.push_str(&legend);
        } else if title.chars().count() + terse.chars().count() <= width {
            title.push_str(&terse);
        }
    }
    let block = Block::bordered()
        .border_style(focus_style(focused))
        .title(summary::fit(&title, width));
    if app.sweep.is_empty() && app.baselines.is_empty() {
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
        if several_modes(app) {
            frame.render_widget(Scatter { app }, plot);
        } else {
            frame.render_widget(Plot { app }, plot);
        }
    }
}

fn render_list(frame: &mut Frame, area: Rect, app: &App) {
    let focused = app.focus == Focus::Tradeoff;
    let tests = app.has_test_sets();
    let room = usize::from(area.height.saturating_sub(1));
    let top = list_top(app, room);
    let adopted = app.adopted.as_ref().map(|a| &a.matrix);
    let modes = several_modes(app);
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
            if s.mode == app.mode && (s.alpha - app.params.alpha).abs() < 1e-9 {
                mark.push_str("now");
            }
            let selected = if i == app.sweep_selected { "▶" } else { "" };
            let mut cells = vec![selected.to_string()];
            if modes {
                cells.push(mode_tag(s.mode));
            }
            cells.extend([
                format!("{:.2}", s.alpha),
                s.best.matrix.count().to_string(),
                format!("{:.3}", m.acc),
                format!("{:.3}", m.asr),
                format!("{:.3}", m.score),
            ]);
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
            if modes {
                style = style.fg(mode_color(s.mode));
            }
            Row::new(cells.into_iter().map(Cell::from)).style(style)
        });
    let mut header = vec![""];
    let mut widths = vec![Constraint::Length(1)];
    if modes {
        header.push("mode");
        widths.push(Constraint::Length(MODE_WIDTH - 1));
    }
    header.extend(["α", "cells"]);
    widths.extend([Constraint::Length(4), Constraint::Length(5)]);
    super::score_columns(&mut header, &mut widths, tests);
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

/// A column of the plot.
enum Column<'a> {
    /// The sweep's `i`-th α.
    Sweep(usize, &'a SweepResult),
    /// A dotted line between the sweep and the merges.
    Gap,
    /// A merge baseline's point.
    Merge(&'a BaselineScore),
}

impl Widget for Plot<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let merges: Vec<&BaselineScore> = app
            .baselines
            .iter()
            .filter(|b| baseline_rates(b).is_some())
            .collect();
        let mut columns: Vec<Column> = app
            .sweep
            .iter()
            .enumerate()
            .map(|(i, s)| Column::Sweep(i, s))
            .collect();
        if !columns.is_empty() && !merges.is_empty() {
            columns.push(Column::Gap);
        }
        columns.extend(merges.iter().map(|b| Column::Merge(b)));
        let n = columns.len() as u16;
        if area.width <= 6 || area.height < 3 || n == 0 {
            return;
        }
        let mut top = area.y;
        let mut height = area.height;
        // The selected α's (or, in the baselines panel, merge's) figures, when there is a
        // row to spare.
        if area.height >= 6 {
            let selected_merge = (app.focus == Focus::Baselines)
                .then(|| app.selected_baseline())
                .flatten()
                .and_then(|m| app.baseline_score(m))
                .and_then(|b| Some((b, baseline_rates(b)?)));
            let text = match selected_merge {
                Some((b, (cacc, asr))) => Some(format!(
                    "{} {}: CACC {}% · ASR {}%",
                    short_label(b.method),
                    b.method,
                    summary::pct(cacc),
                    summary::pct(asr)
                )),
                None => app.sweep.get(app.sweep_selected).map(|s| {
                    let (cacc, asr) = rates(s);
                    format!(
                        "α {:.2}: {} · CACC {}% · ASR {}%",
                        s.alpha,
                        summary::cells(s.best.matrix.count()),
                        summary::pct(cacc),
                        summary::pct(asr)
                    )
                }),
            };
            if let Some(text) = text {
                headline(buf, area, &text);
                top += 1;
                height -= 1;
            }
        }
        let plot_h = height - 1;
        let labels: Vec<usize> = columns
            .iter()
            .filter_map(|c| match c {
                Column::Merge(b) => Some(short_label(b.method).chars().count()),
                _ => None,
            })
            .collect();
        let g = fit_columns(area.width, app.sweep.len(), &labels);
        let (axis, col) = (g.axis, g.col);
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
        // The row a rate stands on: 0 at the bottom, `plot_h - 1` at 100 %.
        let row_of = |rate: f64| (rate * f64::from(plot_h - 1)).round() as u16;
        let selected_merge = (app.focus == Focus::Baselines)
            .then(|| app.selected_baseline())
            .flatten();
        let mut x = area.x + axis;
        for column in &columns {
            let width = match column {
                Column::Sweep(..) => col,
                Column::Gap => g.gap,
                Column::Merge(b) => g.merge_width(short_label(b.method).chars().count()),
            };
            let at = x;
            x += width;
            if width == 0 {
                continue;
            }
            let x = at;
            if x + 1 >= area.right() {
                break;
            }
            match column {
                Column::Sweep(i, s) => {
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
                        let ch =
                            [" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"][usize::from(left.min(8))];
                        let block = ch.repeat(usize::from(bar));
                        buf.set_string(x + bar, base_y - 1 - k, block, Style::new().fg(Color::Red));
                    }
                    let label = alpha_label(s.alpha, col, *i, app.sweep.len());
                    if !label.is_empty() {
                        let style = if *i == app.sweep_selected && app.focus != Focus::Baselines {
                            Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
                        } else {
                            dim
                        };
                        let label = summary::fit(&label, usize::from(area.right() - x));
                        buf.set_string(x, base_y, label, style);
                    }
                }
                Column::Gap => {
                    for r in 0..plot_h {
                        buf.set_string(x + (g.gap - 1) / 2, top + r, "┊", dim);
                    }
                }
                Column::Merge(b) => {
                    let Some((cacc, asr)) = baseline_rates(b) else {
                        continue;
                    };
                    buf.set_string(
                        x,
                        base_y - 1 - row_of(cacc),
                        "◇",
                        Style::new().fg(Color::Green).add_modifier(Modifier::BOLD),
                    );
                    buf.set_string(
                        x + bar,
                        base_y - 1 - row_of(asr),
                        "◆",
                        Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
                    );
                    let style = if selected_merge == Some(b.method) {
                        Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
                    } else {
                        Style::new().fg(Color::Cyan)
                    };
                    let label = summary::fit(short_label(b.method), usize::from(area.right() - x));
                    buf.set_string(x, base_y, label, style);
                }
            }
        }
        let alpha = if app.sweep.is_empty() { " " } else { "α" };
        let alpha = format!("{:>w$} ", alpha, w = usize::from(axis - 1));
        buf.set_string(area.x, base_y, alpha, dim);
    }
}

/// The selected row's figures, bold, on the plot's top line.
fn headline(buf: &mut Buffer, area: Rect, text: &str) {
    buf.set_line(
        area.x,
        area.y,
        &Line::from(Span::styled(
            summary::fit(text, usize::from(area.width)),
            Style::new().add_modifier(Modifier::BOLD),
        )),
        area.width,
    );
}

/// A mode's colour in the list and the scatter.
fn mode_color(mode: SearchMode) -> Color {
    match mode {
        SearchMode::Paper => Color::Yellow,
        SearchMode::Cells {
            from: CellsStart::Paper,
        } => Color::Cyan,
        SearchMode::Cells {
            from: CellsStart::Full,
        } => Color::Blue,
        SearchMode::Beam { .. } => Color::Magenta,
        SearchMode::Refine => Color::Green,
    }
}

/// Several modes' sweeps: CACC up (from just below the lowest point to just above the
/// highest, in steps of 5 %), ASR across (0–100 %); each answer is its mode's letter, the
/// selected one reversed, merges their labels, the victim `v`, `*` where different ones
/// coincide. The selected row's figures head the plot.
struct Scatter<'a> {
    app: &'a App,
}

impl Scatter<'_> {
    /// Every point: `(cacc, asr, label, style, selected)`, the selected answer last so it is
    /// drawn on top.
    fn points(&self) -> Vec<(f64, f64, String, Style, bool)> {
        let app = self.app;
        let mut points = Vec::new();
        let victim = match (app.victim_test, app.baseline) {
            (Some(t), _) => Some((t.cacc, t.asr)),
            (None, Some(b)) if !app.has_test_sets() => Some((b.acc, b.asr)),
            _ => None,
        };
        if let Some((cacc, asr)) = victim {
            let style = Style::new().fg(Color::DarkGray);
            points.push((cacc, asr, "v".to_string(), style, false));
        }
        for b in &app.baselines {
            if let Some((cacc, asr)) = baseline_rates(b) {
                let label = short_label(b.method).to_string();
                points.push((cacc, asr, label, Style::new().fg(Color::Cyan), false));
            }
        }
        let mut selected = None;
        for (i, s) in app.sweep.iter().enumerate() {
            let (cacc, asr) = rates(s);
            let mark = mode_mark(s.mode).to_string();
            if i == app.sweep_selected && app.focus != Focus::Baselines {
                let style = Style::new()
                    .fg(mode_color(s.mode))
                    .add_modifier(Modifier::REVERSED | Modifier::BOLD);
                selected = Some((cacc, asr, mark, style, true));
            } else {
                let style = Style::new().fg(mode_color(s.mode));
                points.push((cacc, asr, mark, style, false));
            }
        }
        points.extend(selected);
        points
    }
}

/// The CACC range of the scatter: 5 % steps around the points, at least 10 % tall.
fn cacc_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > hi {
        return (0.0, 1.0);
    }
    let mut lo = ((lo * 20.0).floor() / 20.0).max(0.0);
    let mut hi = ((hi * 20.0).ceil() / 20.0).min(1.0);
    while hi - lo < 0.1 - 1e-9 {
        if hi < 1.0 {
            hi = (hi + 0.05).min(1.0);
        } else {
            lo = (lo - 0.05).max(0.0);
        }
    }
    (lo, hi)
}

impl Widget for Scatter<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        const AXIS: u16 = 5;
        if area.width < AXIS + 12 || area.height < 4 {
            return;
        }
        let mut top = area.y;
        let mut height = area.height;
        if area.height >= 6 {
            if let Some(s) = app.sweep.get(app.sweep_selected) {
                let (cacc, asr) = rates(s);
                let text = format!(
                    "{} α {:.2}: {} · CACC {}% · ASR {}%",
                    mode_tag(s.mode),
                    s.alpha,
                    summary::cells(s.best.matrix.count()),
                    summary::pct(cacc),
                    summary::pct(asr)
                );
                headline(buf, area, &text);
                top += 1;
                height -= 1;
            }
        }
        // The last row is the ASR axis.
        let plot_h = height - 1;
        let x0 = area.x + AXIS;
        let plot_w = area.width - AXIS;
        let points = self.points();
        let (lo, hi) = cacc_range(points.iter().map(|p| p.0));
        let dim = Style::new().fg(Color::DarkGray);
        let row_of = |cacc: f64| {
            let r = ((cacc - lo) / (hi - lo) * f64::from(plot_h - 1)).round();
            top + plot_h - 1 - (r.clamp(0.0, f64::from(plot_h - 1)) as u16)
        };
        let col_of = |asr: f64| x0 + (asr.clamp(0.0, 1.0) * f64::from(plot_w - 1)).round() as u16;
        for r in 0..plot_h {
            buf.set_string(area.x, top + r, "    │", dim);
        }
        // The range's ends, then every 5 % between that keeps a row clear of the others.
        let (k_lo, k_hi) = ((lo * 20.0).round() as u32, (hi * 20.0).round() as u32);
        let mut labelled: Vec<u16> = Vec::new();
        for k in [k_hi, k_lo].into_iter().chain((k_lo + 1..k_hi).rev()) {
            let y = row_of(f64::from(k) / 20.0);
            if labelled.iter().any(|&l| l.abs_diff(y) < 2) {
                continue;
            }
            buf.set_string(area.x, y, format!("{:>4}", k * 5), dim);
            labelled.push(y);
        }
        let axis_y = top + plot_h;
        buf.set_string(area.x, axis_y, format!("{:>4}└", "%"), dim);
        buf.set_string(x0, axis_y, "─".repeat(usize::from(plot_w)), dim);
        buf.set_string(x0, axis_y, "0", dim);
        let mid = "ASR 50";
        let mid_x = col_of(0.5).saturating_sub(mid.chars().count() as u16 - 2);
        if mid_x > x0 + 2 {
            buf.set_string(mid_x, axis_y, mid, dim);
        }
        buf.set_string(area.right() - 3, axis_y, "100", dim);
        // Points of different labels on one spot show as `*`; the selected answer, drawn
        // last, keeps its letter.
        let mut drawn: std::collections::HashMap<(u16, u16), String> = Default::default();
        for (cacc, asr, label, style, selected) in points {
            let x = col_of(asr).min(area.right() - label.chars().count() as u16);
            let y = row_of(cacc);
            let shown = match drawn.get(&(x, y)) {
                Some(there) if *there != label && !selected => "*".to_string(),
                _ => label.clone(),
            };
            buf.set_string(x, y, &shown, style);
            drawn.insert((x, y), shown);
        }
    }
}

/// How the plot's columns share its width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Geometry {
    /// Columns of the y axis: `100%│`, or `100│` when that leaves each α two.
    axis: u16,
    /// Columns of each α.
    col: u16,
    /// Columns of the dotted line between the sweep and the merges (0: none).
    gap: u16,
}

impl Geometry {
    /// Columns of a merge whose label is `label` characters: its two points, and a space
    /// after the label so neighbours' labels do not run together.
    fn merge_width(&self, label: usize) -> u16 {
        self.col.max(label as u16 + 1)
    }

    fn total(&self, sweep: usize, labels: &[usize]) -> u16 {
        let merges: u16 = labels.iter().map(|l| self.merge_width(*l)).sum();
        self.axis + self.col * sweep as u16 + self.gap + merges
    }
}

/// The widest columns (2 to 8 an α) that fit `width` with `sweep` αs and merges labelled
/// `labels` characters long; the dotted gap goes first when room is short, then the axis's
/// `%`. Past that, the columns stay 2 wide and the right end is cut.
fn fit_columns(width: u16, sweep: usize, labels: &[usize]) -> Geometry {
    let gap = if sweep > 0 && !labels.is_empty() {
        2
    } else {
        0
    };
    for (axis, gap) in [(5, gap), (5, 0), (4, 0)] {
        for col in (2..=8).rev() {
            let g = Geometry { axis, col, gap };
            if g.total(sweep, labels) <= width {
                return g;
            }
        }
    }
    Geometry {
        axis: 4,
        col: 2,
        gap: 0,
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
    fn merges_get_room_for_their_labels() {
        // The sweep alone: as wide as fits, `100%│` while each α keeps two columns.
        assert_eq!(
            fit_columns(60, 11, &[]),
            Geometry {
                axis: 5,
                col: 5,
                gap: 0
            }
        );
        assert_eq!(fit_columns(25, 11, &[]).axis, 4);
        // L TA T D DL beside it: the gap goes before the axis's `%`.
        let labels = [1, 2, 1, 1, 2];
        let g = fit_columns(38, 11, &labels);
        assert_eq!((g.col, g.gap), (2, 0));
        assert!(g.total(11, &labels) <= 38);
        assert_eq!(fit_columns(54, 11, &labels).gap, 2);
    }

    #[test]
    fn the_scatter_spans_its_points_in_five_percent_steps() {
        let r = cacc_range([0.7901, 0.8853, 0.7924].into_iter());
        assert!(
            (r.0 - 0.75).abs() < 1e-9 && (r.1 - 0.9).abs() < 1e-9,
            "{r:?}"
        );
        // One point: still 10 % tall.
        let r = cacc_range([0.80].into_iter());
        assert!((r.1 - r.0 - 0.1).abs() < 1e-9, "{r:?}");
        let r = cacc_range([1.0].into_iter());
        assert!((r.0 - 0.9).abs() < 1e-9 && r.1 == 1.0, "{r:?}");
    }

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
