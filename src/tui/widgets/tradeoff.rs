//! The trade-off view: for each α of a sweep, the search's answer as a point of accuracy
//! (up) against ASR (right), on the proxy sets and, when given, the test sets. The strategy
//! `w` would write now is highlighted.

use crate::tui::app::{sweep_alphas, App};
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType, Paragraph, Wrap};
use ratatui::Frame;

/// The current choice's proxy (and test) point, if it has been scored.
fn current_choice(app: &App) -> Vec<(f64, f64)> {
    let Some(target) = app.export_target() else {
        return Vec::new();
    };
    let mut points = Vec::new();
    if let Some(b) = app.best().filter(|b| b.matrix == target) {
        points.push((b.metrics.asr, b.metrics.acc));
        if let Some(t) = app.final_test {
            points.push((t.asr, t.cacc));
        }
    } else if let Some(p) = app
        .pinned
        .iter()
        .rev()
        .find(|p| p.matrix == target && p.metrics.is_some())
    {
        let m = p.metrics.expect("filtered");
        points.push((m.asr, m.acc));
        if let Some(t) = p.test {
            points.push((t.asr, t.cacc));
        }
    }
    points
}

/// Draws the trade-off view.
pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let head = if app.sweeping {
        format!(" α sweep {}/{} · ", app.sweep.len(), sweep_alphas().len())
    } else {
        " acc↑ ASR→ · ".to_string()
    };
    // The legend lives in the title so it never covers the points.
    let block = Block::bordered().title(Line::from(vec![
        Span::raw(head),
        Span::styled("• proxy", Style::new().fg(Color::Cyan)),
        Span::raw(" "),
        Span::styled("• test", Style::new().fg(Color::Magenta)),
        Span::raw(" "),
        Span::styled("█ chosen ", Style::new().fg(Color::Yellow)),
    ]));
    if app.sweep.is_empty() {
        let text = if app.sweeping {
            "sweeping α 0.0–1.0…"
        } else {
            "press a to sweep α from 0.0 to 1.0 by 0.1"
        };
        frame.render_widget(
            Paragraph::new(text).wrap(Wrap { trim: true }).block(block),
            area,
        );
        return;
    }
    let proxy: Vec<(f64, f64)> = app
        .sweep
        .iter()
        .map(|s| (s.best.metrics.asr, s.best.metrics.acc))
        .collect();
    let test: Vec<(f64, f64)> = app
        .sweep
        .iter()
        .filter_map(|s| s.test.map(|t| (t.asr, t.cacc)))
        .collect();
    let current = current_choice(app);
    let all = proxy.iter().chain(&test).chain(&current);
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for &(x, y) in all {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    let pad = |lo: f64, hi: f64| {
        let p = ((hi - lo) * 0.08).max(0.02);
        ((lo - p).max(0.0), (hi + p).min(1.0))
    };
    let ((x0, x1), (y0, y1)) = (pad(x0, x1), pad(y0, y1));
    let mut datasets = vec![Dataset::default()
        .marker(Marker::Dot)
        .graph_type(GraphType::Scatter)
        .style(Style::new().fg(Color::Cyan))
        .data(&proxy)];
    if !test.is_empty() {
        datasets.push(
            Dataset::default()
                .marker(Marker::Dot)
                .graph_type(GraphType::Scatter)
                .style(Style::new().fg(Color::Magenta))
                .data(&test),
        );
    }
    if !current.is_empty() {
        datasets.push(
            Dataset::default()
                .marker(Marker::Block)
                .graph_type(GraphType::Scatter)
                .style(Style::new().fg(Color::Yellow))
                .data(&current),
        );
    }
    let label = |v: f64| Line::from(format!("{:.0}%", v * 100.0));
    let chart = Chart::new(datasets)
        .block(block)
        .x_axis(
            Axis::default()
                .bounds([x0, x1])
                .labels([label(x0), label(x1)])
                .style(Style::new().fg(Color::DarkGray)),
        )
        .y_axis(
            Axis::default()
                .bounds([y0, y1])
                .labels([label(y0), label(y1)])
                .style(Style::new().fg(Color::DarkGray)),
        );
    frame.render_widget(chart, area);
}
