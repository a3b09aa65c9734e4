//! The one key table: it maps keys to actions and feeds both the help overlay and the
//! key-hint bar, so what is shown can never drift from what is bound.

use crate::tui::action::{Action, Direction};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// Sections of the help overlay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// Steering the search.
    Search,
    /// Editing and scoring a strategy by hand.
    Strategy,
    /// Writing files.
    Files,
    /// Everything else.
    General,
}

impl Group {
    /// All groups in overlay order.
    pub const ALL: [Group; 4] = [Group::Search, Group::Strategy, Group::Files, Group::General];

    /// Heading in the help overlay.
    pub fn title(self) -> &'static str {
        match self {
            Group::Search => "search",
            Group::Strategy => "strategy",
            Group::Files => "files",
            Group::General => "general",
        }
    }
}

/// One key binding.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    /// Keys that trigger it (any of them).
    pub keys: &'static [KeyCode],
    /// Whether Ctrl must be held.
    pub ctrl: bool,
    /// How the help overlay names the keys.
    pub label: &'static str,
    /// What it does.
    pub action: Action,
    /// Help-overlay line; `None` hides the binding there (a sibling's line covers it).
    pub help: Option<&'static str>,
    /// Key-hint bar entry, keys included; `None` keeps it off the bar.
    pub hint: Option<&'static str>,
    /// Help-overlay section.
    pub group: Group,
}

const fn bind(
    keys: &'static [KeyCode],
    label: &'static str,
    action: Action,
    group: Group,
    help: Option<&'static str>,
    hint: Option<&'static str>,
) -> Binding {
    Binding {
        keys,
        ctrl: false,
        label,
        action,
        help,
        hint,
        group,
    }
}

use Group::{Files, General, Search, Strategy};

/// Every binding of the main screen.
pub const KEYS: &[Binding] = &[
    bind(
        &[KeyCode::Char('?')],
        "?",
        Action::ToggleHelp,
        General,
        Some("show or hide this help"),
        Some("? help"),
    ),
    bind(
        &[KeyCode::Char('q')],
        "q",
        Action::Quit,
        General,
        Some("quit (asks when the strategy is unsaved)"),
        Some("q quit"),
    ),
    Binding {
        keys: &[KeyCode::Char('c')],
        ctrl: true,
        label: "ctrl-c",
        action: Action::ForceQuit,
        group: General,
        help: Some("quit at once"),
        hint: None,
    },
    bind(
        &[KeyCode::Esc],
        "esc",
        Action::Dismiss,
        General,
        Some("close this help or a dialog"),
        None,
    ),
    bind(
        &[KeyCode::Char(' ')],
        "space",
        Action::TogglePause,
        Search,
        Some("pause / resume (after the candidate in flight)"),
        Some("space pause"),
    ),
    bind(
        &[KeyCode::Char('n')],
        "n",
        Action::Step,
        Search,
        Some("one greedy step while paused"),
        Some("n step"),
    ),
    bind(
        &[KeyCode::Char('+'), KeyCode::Char('=')],
        "+",
        Action::AlphaUp,
        Search,
        Some("α + 0.05 (replays from the cache)"),
        Some("+/- α"),
    ),
    bind(
        &[KeyCode::Char('-')],
        "-",
        Action::AlphaDown,
        Search,
        Some("α − 0.05"),
        None,
    ),
    bind(
        &[KeyCode::Char(']')],
        "]",
        Action::PatienceUp,
        Search,
        Some("patience + 1 (replays from the cache)"),
        Some("]/[ patience"),
    ),
    bind(
        &[KeyCode::Char('[')],
        "[",
        Action::PatienceDown,
        Search,
        Some("patience − 1"),
        None,
    ),
    bind(
        &[KeyCode::Char('a')],
        "a",
        Action::Sweep,
        Search,
        Some("α sweep 0.0–1.0 by 0.1 → trade-off view"),
        Some("a sweep"),
    ),
    bind(
        &[KeyCode::Up, KeyCode::Char('k')],
        "arrows hjkl",
        Action::Move(Direction::Up),
        Strategy,
        Some("move the heatmap cursor (or click a cell)"),
        None,
    ),
    bind(
        &[KeyCode::Down, KeyCode::Char('j')],
        "↓ j",
        Action::Move(Direction::Down),
        Strategy,
        None,
        None,
    ),
    bind(
        &[KeyCode::Left, KeyCode::Char('h')],
        "← h",
        Action::Move(Direction::Left),
        Strategy,
        None,
        None,
    ),
    bind(
        &[KeyCode::Right, KeyCode::Char('l')],
        "→ l",
        Action::Move(Direction::Right),
        Strategy,
        None,
        None,
    ),
    bind(
        &[KeyCode::Enter],
        "enter",
        Action::ToggleCell,
        Strategy,
        Some("toggle the cell (starts an edited strategy)"),
        Some("enter toggle"),
    ),
    bind(
        &[KeyCode::Char('r')],
        "r",
        Action::ToggleRow,
        Strategy,
        Some("toggle the cursor's layer"),
        None,
    ),
    bind(
        &[KeyCode::Char('c')],
        "c",
        Action::ToggleColumn,
        Strategy,
        Some("toggle the cursor's module column"),
        None,
    ),
    bind(
        &[KeyCode::Char('e')],
        "e",
        Action::Evaluate,
        Strategy,
        Some("evaluate the edited strategy and pin it"),
        Some("e eval"),
    ),
    bind(
        &[KeyCode::Char('b')],
        "b",
        Action::TakeBest,
        Strategy,
        Some("take the search's best as the edited strategy"),
        Some("b best"),
    ),
    bind(
        &[KeyCode::Char('f')],
        "f",
        Action::Follow,
        Strategy,
        Some("drop edits; the heatmap follows the search"),
        None,
    ),
    bind(
        &[KeyCode::Char('w')],
        "w",
        Action::WriteStrategy,
        Files,
        Some("write the strategy JSON to the export folder"),
        Some("w write"),
    ),
    bind(
        &[KeyCode::Char('W')],
        "W",
        Action::WriteModel,
        Files,
        Some("write the strategy JSON and the purified model"),
        Some("W model"),
    ),
];

/// The action bound to a key press on the main screen, if any.
pub fn action_for(key: KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    KEYS.iter()
        .find(|b| b.ctrl == ctrl && b.keys.contains(&key.code))
        .map(|b| b.action)
}

/// Keys of the quit confirmation: keys, label, action, what it does. Any other key stays.
pub const CONFIRM_KEYS: &[(&[KeyCode], &str, Action, &str)] = &[
    (
        &[KeyCode::Char('y'), KeyCode::Char('q')],
        "y / q",
        Action::ForceQuit,
        "quit without writing",
    ),
    (
        &[KeyCode::Char('w')],
        "w",
        Action::WriteStrategy,
        "write the strategy JSON, then stay",
    ),
    (&[], "any other", Action::Dismiss, "stay"),
];

/// The action of a key press while the quit confirmation is shown.
pub fn confirm_action(key: KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let hit = CONFIRM_KEYS
        .iter()
        .find(|(keys, ..)| keys.contains(&key.code));
    Some(hit.map_or(Action::Dismiss, |(_, _, action, _)| *action))
}

/// The key-hint bar entries, in table order.
pub fn hints() -> impl Iterator<Item = &'static str> {
    KEYS.iter().filter_map(|b| b.hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_bound_once() {
        for (i, a) in KEYS.iter().enumerate() {
            for b in &KEYS[i + 1..] {
                let shared = a.keys.iter().any(|k| b.keys.contains(k));
                assert!(
                    !(shared && a.ctrl == b.ctrl),
                    "{} and {} share a key",
                    a.label,
                    b.label
                );
            }
        }
    }

    #[test]
    fn shift_and_ctrl() {
        let key = |c, m| KeyEvent::new(KeyCode::Char(c), m);
        assert_eq!(
            action_for(key('W', KeyModifiers::SHIFT)),
            Some(Action::WriteModel)
        );
        assert_eq!(
            action_for(key('+', KeyModifiers::SHIFT)),
            Some(Action::AlphaUp)
        );
        assert_eq!(
            action_for(key('c', KeyModifiers::CONTROL)),
            Some(Action::ForceQuit)
        );
        assert_eq!(
            action_for(key('c', KeyModifiers::NONE)),
            Some(Action::ToggleColumn)
        );
        assert_eq!(action_for(key('x', KeyModifiers::NONE)), None);
    }
}
