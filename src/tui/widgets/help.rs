//! The help overlay (built from the key table) and the quit confirmation.

use crate::tui::app::App;
use crate::tui::keymap::{Group, CONFIRM_KEYS, KEYS};
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};
use ratatui::Frame;

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let [row] = Layout::vertical([Constraint::Length(height.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [cell] = Layout::horizontal([Constraint::Length(width.min(area.width))])
        .flex(Flex::Center)
        .areas(row);
    cell
}

/// Draws the help overlay over `area`.
pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let key_style = Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD);
    // Short terminals drop the blank lines, then the headings, before anything is cut off.
    let bindings = KEYS.iter().filter(|b| b.help.is_some()).count();
    let room = usize::from(area.height.saturating_sub(2));
    let groups = Group::ALL.len();
    let blanks = bindings + 2 * groups - 1 <= room;
    let headings = bindings + groups <= room;
    let mut lines = Vec::new();
    for group in Group::ALL {
        if blanks && !lines.is_empty() {
            lines.push(Line::raw(""));
        }
        if headings {
            lines.push(Line::styled(
                group.title(),
                Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
            ));
        }
        for b in KEYS.iter().filter(|b| b.group == group) {
            if let Some(help) = b.help {
                lines.push(Line::from(vec![
                    Span::styled(format!("  {:<12}", b.label), key_style),
                    Span::raw(help),
                ]));
            }
        }
    }
    if let Some(log) = app.log_file.as_ref().filter(|_| lines.len() + 2 <= room) {
        lines.push(Line::raw(""));
        lines.push(Line::styled(
            format!("log: {}", log.display()),
            Style::new().fg(Color::DarkGray),
        ));
    }
    let height = lines.len() as u16 + 2;
    let popup = centered(area, 64, height);
    frame.render_widget(Clear, popup);
    let block = Block::bordered()
        .title(" help · ? or esc closes ")
        .border_style(Style::new().fg(Color::Yellow));
    frame.render_widget(Paragraph::new(lines).block(block), popup);
}

/// Draws the "quit without writing?" dialog.
pub fn render_confirm(frame: &mut Frame, area: Rect) {
    let key_style = Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD);
    let mut lines = vec![
        Line::raw("The chosen strategy has not been written."),
        Line::raw(""),
    ];
    for (_, key, _, what) in CONFIRM_KEYS {
        lines.push(Line::from(vec![
            Span::styled(format!("  {key:<10}"), key_style),
            Span::raw(*what),
        ]));
    }
    let popup = centered(area, 52, lines.len() as u16 + 2);
    frame.render_widget(Clear, popup);
    let block = Block::bordered()
        .title(" quit? ")
        .border_style(Style::new().fg(Color::Red));
    frame.render_widget(Paragraph::new(lines).block(block), popup);
}
