//! Score over greedy steps: the state the search moved to (dots) and the best so far (a
//! line), told apart by glyph as well as colour.

use crate::tui::app::App;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType};
use ratatui::Frame;

/// Draws the score chart.
pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    // The legend lives in the title so it never covers the curves; a narrow panel keeps
    // the name whole and drops the legend.
    let title = if area.width >= 22 {
        Line::from(vec![
            Span::raw(" score "),
            Span::styled("• step", Style::new().fg(Color::Cyan)),
            Span::raw(" "),
            Span::styled("⠤ best ", Style::new().fg(Color::Green)),
        ])
    } else {
        Line::from(" score ")
    };
    let block = Block::bordered().title(title);
    let current: Vec<(f64, f64)> = app
        .steps
        .iter()
        .map(|s| (s.step as f64, s.point.metrics.score))
        .collect();
    let mut best = Vec::with_capacity(current.len());
    let mut top = f64::NEG_INFINITY;
    for &(x, y) in &current {
        top = top.max(y);
        best.push((x, top));
    }
    if current.is_empty() {
        frame.render_widget(
            ratatui::widgets::Paragraph::new("each step's score appears here")
                .wrap(ratatui::widgets::Wrap { trim: true })
                .block(block),
            area,
        );
        return;
    }
    let (lo, hi) = current
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &(_, y)| {
            (lo.min(y), hi.max(y))
        });
    // Pad flat or near-flat curves so they do not sit on an axis.
    let pad = ((hi - lo) * 0.1).max(0.01);
    let (lo, hi) = (lo - pad, hi + pad);
    let last = (current.len() - 1).max(1) as f64;
    // The best line first, so each step's dot is drawn over it.
    let datasets = vec![
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::new().fg(Color::Green))
            .data(&best),
        Dataset::default()
            .marker(Marker::Dot)
            .graph_type(GraphType::Scatter)
            .style(Style::new().fg(Color::Cyan))
            .data(&current),
    ];
    let chart = Chart::new(datasets)
        .block(block)
        .x_axis(
            Axis::default()
                .bounds([0.0, last])
                .labels([Line::from("0"), Line::from(format!("{}", last as usize))])
                .style(Style::new().fg(Color::DarkGray)),
        )
        .y_axis(
            Axis::default()
                .bounds([lo, hi])
                .labels([
                    Line::from(format!("{lo:.2}")),
                    Line::from(format!("{hi:.2}")),
                ])
                .style(Style::new().fg(Color::DarkGray)),
        );
    frame.render_widget(chart, area);
}
