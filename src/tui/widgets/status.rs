//! The status lines at the top and the key-hint bar at the bottom.

use crate::tui::app::{App, RunState};
use crate::tui::keymap;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

fn state_span(app: &App) -> Span<'static> {
    let (text, color) = match app.run_state() {
        RunState::Loading => ("… loading".to_string(), Color::Yellow),
        RunState::Running => ("▶ running".to_string(), Color::Green),
        RunState::Pausing => ("▶ pausing…".to_string(), Color::Yellow),
        RunState::Paused => ("⏸ paused".to_string(), Color::Yellow),
        RunState::Stepping => ("⏵ stepping".to_string(), Color::Cyan),
        // The reason is on the gauge line; this line has to fit 100 columns.
        RunState::Finished(_) => ("■ finished".to_string(), Color::Blue),
        RunState::Stopped => ("■ stopped".to_string(), Color::Red),
    };
    Span::styled(text, Style::new().fg(color).add_modifier(Modifier::BOLD))
}

/// Draws the two status lines: search state, α, patience, work done, device; then the last
/// message.
pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let sep = || Span::styled(" │ ", Style::new().fg(Color::DarkGray));
    let s = &app.stats;
    let no_improve = app.steps.last().map_or(0, |t| t.no_improve);
    let rate = match app.rate {
        Some(r) if r < 1.0 => format!("{r:.2} eval/s"),
        Some(r) => format!("{r:.1} eval/s"),
        None => "– eval/s".to_string(),
    };
    let mut first = vec![
        Span::styled("gms ", Style::new().add_modifier(Modifier::BOLD)),
        state_span(app),
        sep(),
        Span::raw(format!("α {:.2}", app.params.alpha)),
        sep(),
        Span::raw(format!("patience {no_improve}/{}", app.params.patience)),
        sep(),
        Span::raw(format!("{} evals ({} cached)", s.requests, s.cache_hits)),
        sep(),
        Span::raw(rate),
    ];
    if !app.device.is_empty() {
        first.extend([sep(), Span::raw(app.device.clone())]);
    }
    let second = match &app.message {
        Some(m) if m.error => Line::from(Span::styled(
            format!("error: {}", m.text),
            Style::new().fg(Color::Red),
        )),
        Some(m) => Line::from(Span::raw(m.text.clone())),
        None => Line::from(Span::styled(
            "? for help · the search runs in the background",
            Style::new().fg(Color::DarkGray),
        )),
    };
    frame.render_widget(Paragraph::new(vec![Line::from(first), second]), area);
}

/// Draws the key-hint bar from the key table: whole entries, as many as fit.
pub fn render_hints(frame: &mut Frame, area: Rect) {
    let mut spans = Vec::new();
    let mut used = 0;
    for hint in keymap::hints() {
        let (key, what) = hint.split_once(' ').unwrap_or((hint, ""));
        let sep = if spans.is_empty() { "" } else { "  " };
        let width = sep.chars().count() + hint.chars().count();
        if used + width > usize::from(area.width) {
            break;
        }
        used += width;
        spans.push(Span::raw(sep));
        spans.push(Span::styled(
            key,
            Style::new().fg(Color::Black).bg(Color::Gray),
        ));
        spans.push(Span::raw(format!(" {what}")));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
