//! The panel under the heatmap: the strategy shown (what, how big, how it scores, whether it
//! is written), the heatmap's legend, the cursor's cell, and as room allows the step table's
//! marks explained.

use crate::model::Module;
use crate::tui::app::{App, CellState, Source, Strategy};
use crate::tui::summary;
use crate::tui::widgets::heatmap::{self, glyph};
use crate::tui::widgets::help::TERMS;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};
use ratatui::Frame;

/// Draws the panel for `shown`, under the heatmap drawn in `heatmap_area`.
pub fn render(frame: &mut Frame, area: Rect, app: &App, shown: &Strategy, heatmap_area: Rect) {
    let block = Block::bordered().title(" shown ");
    let inner = block.inner(area);
    let width = usize::from(inner.width);
    let room = usize::from(inner.height);
    let dim = Style::new().fg(Color::DarkGray);
    let mut lines = vec![Line::styled(
        summary::fit(&shown.source.name(), width),
        Style::new().add_modifier(Modifier::BOLD),
    )];
    let folded = app.num_layers > 0
        && heatmap::Geometry::new(heatmap_area, app.num_layers, app.cursor.0).per_row == 2;
    if app.num_layers > 0 {
        lines.push(Line::raw(summary::fit(
            &summary::strategy(&shown.matrix),
            width,
        )));
        if folded {
            // The heatmap's rows need this to be read at all, so it comes early.
            lines.push(Line::styled(
                summary::fit("each row: layers N,N+1", width),
                dim,
            ));
        }
        if let Some(m) = app.metrics_of(&shown.matrix) {
            lines.push(Line::raw(summary::fit(
                &format!("score {:.4} at α {:.2}", m.score, app.params.alpha),
                width,
            )));
        }
        if let Some(t) = app.known(&shown.matrix).test {
            lines.push(Line::raw(summary::fit(
                &format!(
                    "CACC {}% ASR {}%",
                    summary::pct(t.cacc),
                    summary::pct(t.asr)
                ),
                width,
            )));
        }
        lines.push(written_line(app, shown, width));
    }
    let live = matches!(shown.source, Source::Live { .. });
    let mut legend = vec![
        (CellState::Substituted, "from the proxy"),
        (CellState::Kept, "victim's own"),
    ];
    let greyed = app
        .substitutable
        .as_ref()
        .is_some_and(|s| s.count() < app.num_layers * app.modules.len());
    if greyed {
        legend.push((CellState::Unavailable, "not substitutable"));
    }
    if live {
        legend.push((CellState::Evaluating, "under evaluation"));
        legend.push((CellState::JustRemoved, "dropped last step"));
    }
    // The strategy's own lines first, then the legend, then the rest as room allows.
    let mut extra: Vec<Line> = Vec::new();
    if app.num_layers > 0 {
        let (l, m) = app.cursor;
        let module = app.modules[m];
        let from = if shown.matrix.get(l, module) {
            "proxy"
        } else if !app.can_substitute(l, module) {
            "victim only"
        } else {
            "victim"
        };
        extra.push(Line::raw(format!("cursor L{l}·{module}: {from}")));
    }
    for (state, text) in legend {
        let (ch, style) = glyph(state, Module::Q);
        lines.push(Line::from(vec![
            Span::styled(format!(" {ch} "), style),
            Span::raw(format!(" {text}")),
        ]));
    }
    lines.extend(extra);
    // What the pair needs known (adapters with different target modules), wrapped.
    for w in &app.warnings {
        lines.push(Line::styled(
            format!("⚠ {w}"),
            Style::new().fg(Color::Yellow),
        ));
    }
    if lines.len() + 2 <= room {
        lines.push(Line::styled(
            "step table marks",
            dim.add_modifier(Modifier::UNDERLINED),
        ));
        for (mark, short, _) in TERMS {
            lines.push(Line::from(vec![
                Span::styled(
                    format!("{mark:<7}"),
                    Style::new().add_modifier(Modifier::BOLD),
                ),
                Span::styled(summary::fit(short, width.saturating_sub(7)), dim),
            ]));
        }
    }
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block),
        area,
    );
}

/// Whether the shown strategy (or, for the live walk, the best that `w` writes) was written.
fn written_line(app: &App, shown: &Strategy, width: usize) -> Line<'static> {
    let target = app.write_target(shown.clone());
    let Some(target) = target else {
        return Line::styled("nothing to write yet", Style::new().fg(Color::DarkGray));
    };
    let file = app
        .written
        .iter()
        .rev()
        .find(|(_, m)| *m == target.matrix)
        .and_then(|(p, _)| p.file_name().map(|f| f.to_string_lossy().into_owned()));
    let text = match (file, &shown.source) {
        (Some(f), _) => format!("✓ written: {f}"),
        (None, Source::Live { .. }) => "w writes ★best".to_string(),
        (None, _) => "unwritten · w writes it".to_string(),
    };
    let style = if text.starts_with('✓') {
        Style::new().fg(Color::Green)
    } else {
        Style::new().fg(Color::Yellow)
    };
    Line::styled(summary::fit(&text, width), style)
}
