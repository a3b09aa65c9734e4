//! The status lines at the top and the key-hint bar at the bottom. Both fit their width by
//! dropping whole items, least useful first, rather than cutting text mid-word.

use crate::gms::modes::SearchMode;
use crate::gms::signal::{Signal, WarningKind};
use crate::tui::app::{mode_tag, sweep_alphas, App, Focus, Level, RunState};
use crate::tui::keymap;
use crate::tui::summary;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

fn state_span(app: &App) -> Span<'static> {
    let (text, color) = match app.run_state() {
        RunState::Loading => ("… loading", Color::Yellow),
        RunState::Running => ("▶ running", Color::Green),
        RunState::Pausing => ("▶ pausing…", Color::Yellow),
        RunState::Paused => ("⏸ paused", Color::Yellow),
        RunState::Stepping => ("⏵ stepping", Color::Cyan),
        // Why it ended is in the message line and the step table's patience column.
        RunState::Finished(_) => ("■ finished", Color::Blue),
        RunState::Stopped => ("■ stopped", Color::Red),
    };
    Span::styled(text, Style::new().fg(color).add_modifier(Modifier::BOLD))
}

/// Whether the engine is doing work now (the search moving or a sweep running).
fn busy(app: &App) -> bool {
    app.sweeping
        || matches!(
            app.run_state(),
            RunState::Running | RunState::Pausing | RunState::Stepping
        )
}

/// The line under the status when there is no message: what the user can do now.
fn guide(app: &App) -> String {
    match app.run_state() {
        RunState::Loading => "loading the models and datasets… ? for help".into(),
        RunState::Running | RunState::Pausing | RunState::Stepping => {
            "the search runs in the background; keys act at once · ? for help".into()
        }
        RunState::Paused if app.record_only() => {
            "the record ends here · space or n loads the models and goes on · ? for help".into()
        }
        RunState::Paused => "paused · space resumes · n takes one step · ? for help".into(),
        RunState::Finished(_) if app.record_only() => {
            "recorded search · +/- ]/[ replay it from the record · ? for help".into()
        }
        RunState::Finished(_) => {
            "finished · the heatmap shows ★best · w writes it · a sweeps α · ? for help".into()
        }
        RunState::Stopped => "the search worker has stopped · q quits".into(),
    }
}

/// Draws the two status lines: search state, α, patience, work done, device; then the last
/// message (or what to do next).
pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let s = &app.stats;
    let no_improve = app.steps.last().map_or(0, |t| t.no_improve);
    // (rank, text): the narrow line keeps the highest ranks.
    let mut items: Vec<(u8, Span<'static>)> = vec![
        (9, Span::raw(format!("α {:.2}", app.params.alpha))),
        (
            8,
            Span::raw(format!("patience {no_improve}/{}", app.params.patience)),
        ),
    ];
    if let Some(m) = &app.models {
        use crate::gms::worker::ModelsStatus;
        let (text, color) = match m {
            ModelsStatus::Record { .. } => ("record only", Color::Magenta),
            ModelsStatus::Loading => ("loading models…", Color::Yellow),
            ModelsStatus::Loaded { .. } => ("record + models", Color::Magenta),
            ModelsStatus::Unavailable { .. } => ("read-only", Color::Red),
        };
        items.push((7, Span::styled(text, Style::new().fg(color))));
    }
    // The mode (and a filtered signal), and a suspect-signal warning above everything but α:
    // a flat signal means the search's answer says nothing about the backdoor.
    let filtered = if app.signal == Signal::Filtered {
        " · filtered"
    } else {
        ""
    };
    // The default (paper, paper signal) says least: it gives way to the evaluation count.
    let default = app.mode == SearchMode::Paper && filtered.is_empty();
    items.push((
        if default { 3 } else { 6 },
        Span::raw(format!("mode {}{filtered}", app.mode)),
    ));
    if let Some(sig) = &app.suspect_signal {
        let flags: Vec<&str> = sig
            .warnings
            .iter()
            .map(|w| match w.kind {
                WarningKind::FlatSignal => "flat suspect signal",
                WarningKind::ProxyAgrees => "proxy hits the suspect rows",
            })
            .collect();
        if !flags.is_empty() {
            items.push((
                10,
                Span::styled(
                    format!("⚠ {}", flags.join(", ")),
                    Style::new().fg(Color::Yellow),
                ),
            ));
        }
    }
    if app.sweeping {
        items.push((
            7,
            Span::styled(
                format!(
                    "sweep {} {}/{}",
                    mode_tag(app.sweep_mode),
                    app.swept(app.sweep_mode),
                    sweep_alphas().len()
                ),
                Style::new().fg(Color::Magenta),
            ),
        ));
    }
    items.push((
        4,
        Span::raw(format!("{} evals ({} cached)", s.requests, s.cache_hits)),
    ));
    // A rate only while something runs: an idle engine has none, not "0.00".
    if let (true, Some(r)) = (busy(app), app.rate) {
        let text = if r < 1.0 {
            format!("{r:.2} eval/s")
        } else {
            format!("{r:.1} eval/s")
        };
        items.push((3, Span::raw(text)));
    }
    if !app.device.is_empty() {
        items.push((1, Span::raw(app.device.clone())));
    }
    let head = vec![
        Span::styled("gms ", Style::new().add_modifier(Modifier::BOLD)),
        state_span(app),
    ];
    let width = usize::from(area.width);
    let len = |spans: &[Span]| {
        spans
            .iter()
            .map(|s| s.content.chars().count())
            .sum::<usize>()
    };
    const SEP: usize = 3;
    let mut keep: Vec<bool> = vec![true; items.len()];
    loop {
        let used = len(&head)
            + items
                .iter()
                .zip(&keep)
                .filter(|(_, k)| **k)
                .map(|((_, s), _)| SEP + s.content.chars().count())
                .sum::<usize>();
        if used <= width {
            break;
        }
        let drop = items
            .iter()
            .enumerate()
            .filter(|(i, _)| keep[*i])
            .min_by_key(|(_, (rank, _))| *rank)
            .map(|(i, _)| i);
        match drop {
            Some(i) => keep[i] = false,
            None => break,
        }
    }
    let mut first = head;
    for ((_, span), k) in items.into_iter().zip(keep) {
        if k {
            first.push(Span::styled(" │ ", Style::new().fg(Color::DarkGray)));
            first.push(span);
        }
    }
    let second = match &app.message {
        Some(m) => {
            let (prefix, style) = match m.level {
                Level::Info => ("", Style::new()),
                Level::Warn => ("⚠ ", Style::new().fg(Color::Yellow)),
                Level::Error => ("error: ", Style::new().fg(Color::Red)),
            };
            Line::from(Span::styled(
                summary::fit(&format!("{prefix}{}", m.text), width),
                style,
            ))
        }
        None => Line::from(Span::styled(
            summary::fit(&guide(app), width),
            Style::new().fg(Color::DarkGray),
        )),
    };
    frame.render_widget(Paragraph::new(vec![Line::from(first), second]), area);
}

/// Draws the key-hint bar from the key table: the focused pane's and the global keys, whole
/// entries, most useful first, as many as fit.
pub fn render_hints(frame: &mut Frame, area: Rect, app: &App) {
    let mut spans = Vec::new();
    let mut used = 0;
    let pane = match app.focus {
        Focus::Heatmap => "heatmap",
        Focus::Steps => "steps",
        Focus::Tradeoff => "trade-off",
        Focus::Baselines => "baselines",
    };
    let tag = format!("[{pane}] ");
    used += tag.chars().count();
    spans.push(Span::styled(tag, Style::new().fg(Color::Cyan)));
    for hint in keymap::hints(app.focus) {
        let (key, what) = hint.split_once(' ').unwrap_or((hint, ""));
        let sep = if spans.len() == 1 { "" } else { "  " };
        let width = sep.chars().count() + hint.chars().count();
        if used + width > usize::from(area.width) {
            continue;
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
