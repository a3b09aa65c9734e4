//! The help overlay (built from the key table, with the screen's terms explained) and the
//! quit confirmation.

use crate::tui::app::App;
use crate::tui::keymap::{Group, CONFIRM_KEYS, KEYS};
use crate::tui::summary;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use ratatui::Frame;

/// The step table's marks and the screen's terms: the mark, a few words for the panel under
/// the heatmap, and a sentence for this overlay.
pub const TERMS: &[(&str, &str, &str)] = &[
    (
        "★best",
        "search's answer",
        "the search's answer (its best step)",
    ),
    (
        "▲",
        "was a new best",
        "was a new best when taken; later beaten",
    ),
    (
        "2/5",
        "patience used",
        "pat.: steps without improving; stops at N/N",
    ),
    (
        "↺",
        "counter restart",
        "beat the step before: counter restarted",
    ),
    (
        "◂lead",
        "leads the step",
        "best candidate so far in this step",
    ),
    (
        "cut",
        "stopped early",
        "abandoned: can no longer pass ◂lead",
    ),
    (
        "≤0.45",
        "its upper bound",
        "a cut candidate's highest possible score",
    ),
    (
        "cache",
        "from the cache",
        "answered from the cache (no forward pass)",
    ),
    ("e1 pin", "scored with e", "a strategy you scored with e"),
];

/// The trade-off view's glyphs, for this overlay only (the panel under the heatmap explains
/// the step table).
pub const TRADEOFF_TERMS: &[(&str, &str)] = &[
    ("█ ░", "an α's answer: ASR / CACC bars (one mode swept)"),
    (
        "p c f b r",
        "answers by mode (paper cells cellsF beam refine)",
    ),
    ("v  *", "the victim; several modes' answers on one spot"),
    (
        "L TA T D DL",
        "merges (B): linear, TA, TIES, DARE, DARE-linear",
    ),
];

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let [row] = Layout::vertical([Constraint::Length(height.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [cell] = Layout::horizontal([Constraint::Length(width.min(area.width))])
        .flex(Flex::Center)
        .areas(row);
    cell
}

/// The overlay's sections (a heading and its lines), `width` columns wide.
fn sections(app: &App, width: usize) -> Vec<Vec<Line<'static>>> {
    let key_style = Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD);
    let heading = Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED);
    let entry = |key: &str, text: &str| {
        Line::from(vec![
            Span::styled(format!("  {key:<12}"), key_style),
            Span::raw(summary::fit(text, width.saturating_sub(14))),
        ])
    };
    let mut out = Vec::new();
    for group in Group::ALL {
        let mut lines = vec![Line::styled(group.title(), heading)];
        for b in KEYS.iter().filter(|b| b.group == group) {
            if let Some(help) = b.help {
                lines.push(entry(b.label, help));
            }
        }
        out.push(lines);
    }
    let mut terms = vec![Line::styled("terms on screen", heading)];
    terms.extend(TERMS.iter().map(|(mark, _, long)| entry(mark, long)));
    terms.extend(TRADEOFF_TERMS.iter().map(|(mark, long)| entry(mark, long)));
    if let Some(log) = &app.log_file {
        terms.push(Line::raw(""));
        terms.push(Line::styled(
            summary::fit(&format!("log: {}", log.display()), width),
            Style::new().fg(Color::DarkGray),
        ));
    }
    out.push(terms);
    out
}

/// Sections one after the other, a blank line between.
fn stacked(sections: Vec<Vec<Line<'static>>>) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    for s in sections {
        if !lines.is_empty() {
            lines.push(Line::raw(""));
        }
        lines.extend(s);
    }
    lines
}

/// Draws the help overlay over `area`: two columns on a wide screen, else one that scrolls
/// from `app.help_scroll`.
pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    // Two columns of 14-column keys and a 44-column text each, when the screen has room.
    let two = area.width >= 120;
    let width = if two {
        area.width.min(124)
    } else {
        area.width.min(96)
    };
    let inner_w = usize::from(width.saturating_sub(2));
    let col_w = if two { (inner_w - 2) / 2 } else { inner_w };
    let mut all = sections(app, col_w);
    let (lines, right) = if two {
        // The keys that steer and edit on the left; strategy, files, general, terms right.
        let right = all.split_off(3);
        (stacked(all), stacked(right))
    } else {
        (stacked(all), Vec::new())
    };
    let len = lines.len().max(right.len());
    let room = usize::from(area.height.saturating_sub(2));
    let height = (len.min(room) + 2) as u16;
    let popup = centered(area, width, height);
    let last_top = len.saturating_sub(room);
    let top = app.help_scroll.min(last_top);
    let title = if last_top > 0 {
        format!(
            " help · ↑↓ PgUp PgDn scroll ({}/{len}) · ? or esc closes ",
            top + room.min(len)
        )
    } else {
        " help · ? or esc closes ".to_string()
    };
    frame.render_widget(Clear, popup);
    let block = Block::bordered()
        .title(summary::fit(&title, inner_w))
        .border_style(Style::new().fg(Color::Yellow));
    let inner = block.inner(popup);
    frame.render_widget(block, popup);
    let scroll = (top as u16, 0);
    if two {
        let [l, _, r] = Layout::horizontal([
            Constraint::Length(col_w as u16),
            Constraint::Length(2),
            Constraint::Min(0),
        ])
        .areas(inner);
        frame.render_widget(Paragraph::new(lines).scroll(scroll), l);
        frame.render_widget(Paragraph::new(right).scroll(scroll), r);
    } else {
        frame.render_widget(Paragraph::new(lines).scroll(scroll), inner);
    }
}

/// Draws the "quit without writing?" dialog, naming the strategy that would be lost.
pub fn render_confirm(frame: &mut Frame, area: Rect, app: &App) {
    let key_style = Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD);
    let what = app
        .unsaved()
        .map(|s| app.describe(&s))
        .unwrap_or_else(|| "the chosen strategy".into());
    let mut lines = vec![Line::raw(format!("Not written yet: {what}")), Line::raw("")];
    for (_, key, _, what) in CONFIRM_KEYS {
        lines.push(Line::from(vec![
            Span::styled(format!("  {key:<10}"), key_style),
            Span::raw(*what),
        ]));
    }
    let width = area.width.min(60);
    let first = format!("Not written yet: {what}");
    let text_rows = first
        .chars()
        .count()
        .div_ceil(usize::from(width.saturating_sub(2)).max(1));
    let popup = centered(area, width, (text_rows + 1 + CONFIRM_KEYS.len() + 2) as u16);
    frame.render_widget(Clear, popup);
    let block = Block::bordered()
        .title(" quit? ")
        .border_style(Style::new().fg(Color::Red));
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block),
        popup,
    );
}
