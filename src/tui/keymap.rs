//! The one key table: it maps keys to actions (by the pane that has the focus) and feeds both
//! the help overlay and the key-hint bar, so what is shown can never drift from what is bound.

use crate::tui::action::{Action, Direction, Motion};
use crate::tui::app::Focus;
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// Sections of the help overlay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// Steering the search.
    Search,
    /// Moving between panes and through lists.
    Panes,
    /// Editing a strategy on the heatmap.
    Heatmap,
    /// Choosing, scoring and undoing strategies.
    Strategy,
    /// Writing files.
    Files,
    /// Everything else.
    General,
}

impl Group {
    /// All groups in overlay order.
    pub const ALL: [Group; 6] = [
        Group::Search,
        Group::Panes,
        Group::Heatmap,
        Group::Strategy,
        Group::Files,
        Group::General,
    ];

    /// Heading in the help overlay.
    pub fn title(self) -> &'static str {
        match self {
            Group::Search => "search",
            Group::Panes => "panes · steps and trade-off lists (tab to focus)",
            Group::Heatmap => "heatmap (focused): hand edits",
            Group::Strategy => "strategy on the heatmap",
            Group::Files => "files",
            Group::General => "general",
        }
    }
}

/// Where a binding acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Whatever has the focus.
    Any,
    /// The heatmap has the focus.
    Heatmap,
    /// A list has the focus: the step table, the trade-off list or the baselines panel.
    Lists,
    /// The step table or the trade-off list has the focus (their rows are strategies).
    Rows,
    /// The trade-off list has the focus.
    Tradeoff,
}

impl Scope {
    /// Whether the binding acts while `focus` has the focus.
    pub fn covers(self, focus: Focus) -> bool {
        match self {
            Scope::Any => true,
            Scope::Heatmap => focus == Focus::Heatmap,
            Scope::Lists => focus != Focus::Heatmap,
            Scope::Rows => matches!(focus, Focus::Steps | Focus::Tradeoff),
            Scope::Tradeoff => focus == Focus::Tradeoff,
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
    /// Where it acts.
    pub scope: Scope,
    /// Help-overlay line; `None` hides the binding there (a sibling's line covers it).
    pub help: Option<&'static str>,
    /// Key-hint bar entry (keys, then what) and its rank: a narrow bar keeps the lowest ranks.
    pub hint: Option<(&'static str, u8)>,
    /// Help-overlay section.
    pub group: Group,
}

const fn bind(
    keys: &'static [KeyCode],
    label: &'static str,
    action: Action,
    scope: Scope,
    group: Group,
    help: Option<&'static str>,
    hint: Option<(&'static str, u8)>,
) -> Binding {
    Binding {
        keys,
        ctrl: false,
        label,
        action,
        scope,
        help,
        hint,
        group,
    }
}

use Group::{Files, General, Heatmap, Panes, Search, Strategy};
use KeyCode::Char;

/// Every binding of the main screen.
pub const KEYS: &[Binding] = &[
    // general
    bind(
        &[Char('?')],
        "?",
        Action::ToggleHelp,
        Scope::Any,
        General,
        Some("show or hide this help"),
        Some(("? help", 0)),
    ),
    bind(
        &[Char('q')],
        "q",
        Action::Quit,
        Scope::Any,
        General,
        Some("quit (names the strategy if unwritten)"),
        Some(("q quit", 1)),
    ),
    Binding {
        keys: &[Char('c')],
        ctrl: true,
        label: "ctrl-c",
        action: Action::ForceQuit,
        scope: Scope::Any,
        group: General,
        help: Some("quit at once"),
        hint: None,
    },
    bind(
        &[KeyCode::Esc],
        "esc",
        Action::Dismiss,
        Scope::Any,
        General,
        Some("close a dialog; from a list, to the heatmap"),
        None,
    ),
    // search
    bind(
        &[Char(' ')],
        "space",
        Action::TogglePause,
        Scope::Any,
        Search,
        Some("pause / resume (after the unit in flight)"),
        Some(("space pause", 3)),
    ),
    bind(
        &[Char('n')],
        "n",
        Action::Step,
        Scope::Any,
        Search,
        Some("one greedy step while paused"),
        Some(("n step", 12)),
    ),
    bind(
        &[Char('+'), Char('=')],
        "+ -",
        Action::AlphaUp,
        Scope::Any,
        Search,
        Some("α ± 0.05: replays from the cache, goes on"),
        Some(("+/- α", 8)),
    ),
    bind(
        &[Char('-')],
        "-",
        Action::AlphaDown,
        Scope::Any,
        Search,
        None,
        None,
    ),
    bind(
        &[Char(']')],
        "] [",
        Action::PatienceUp,
        Scope::Any,
        Search,
        Some("patience ± 1: replays, then goes on"),
        Some(("]/[ patience", 13)),
    ),
    bind(
        &[Char('[')],
        "[",
        Action::PatienceDown,
        Scope::Any,
        Search,
        None,
        None,
    ),
    bind(
        &[Char('m')],
        "m",
        Action::CycleMode,
        Scope::Any,
        Search,
        Some("next search mode: replays, then goes on"),
        Some(("m mode", 14)),
    ),
    bind(
        &[Char('a')],
        "a",
        Action::Sweep,
        Scope::Any,
        Search,
        Some("α sweep 0.0–1.0 by 0.1 in this mode → trade-off list (m, a adds a mode)"),
        Some(("a sweep", 6)),
    ),
    bind(
        &[Char('B')],
        "B",
        Action::ToggleBaselines,
        Scope::Any,
        Search,
        Some("merge baselines (WAG, TIES, DARE…): panel"),
        Some(("B merges", 15)),
    ),
    // panes and lists
    bind(
        &[KeyCode::Tab],
        "tab S-tab",
        Action::FocusNext,
        Scope::Any,
        Panes,
        Some("focus the next / previous pane"),
        Some(("tab pane", 2)),
    ),
    bind(
        &[KeyCode::BackTab],
        "shift-tab",
        Action::FocusPrev,
        Scope::Any,
        Panes,
        None,
        None,
    ),
    bind(
        &[KeyCode::Up, Char('k')],
        "↑↓ jk",
        Action::Select(Motion::Up),
        Scope::Lists,
        Panes,
        Some("select a row; the heatmap shows it"),
        Some(("↑↓ select", 4)),
    ),
    bind(
        &[KeyCode::Down, Char('j')],
        "↓ j",
        Action::Select(Motion::Down),
        Scope::Lists,
        Panes,
        None,
        None,
    ),
    bind(
        &[KeyCode::Left, Char('h')],
        "←→ hl",
        Action::Select(Motion::Up),
        Scope::Tradeoff,
        Panes,
        Some("trade-off: the previous / next α"),
        Some(("←→ α", 5)),
    ),
    bind(
        &[KeyCode::Right, Char('l')],
        "→ l",
        Action::Select(Motion::Down),
        Scope::Tradeoff,
        Panes,
        None,
        None,
    ),
    bind(
        &[KeyCode::PageUp],
        "PgUp PgDn",
        Action::Select(Motion::PageUp),
        Scope::Lists,
        Panes,
        Some("page up / down (the mouse wheel scrolls)"),
        None,
    ),
    bind(
        &[KeyCode::PageDown],
        "PgDn",
        Action::Select(Motion::PageDown),
        Scope::Lists,
        Panes,
        None,
        None,
    ),
    bind(
        &[KeyCode::Home, Char('g')],
        "g G",
        Action::Select(Motion::First),
        Scope::Lists,
        Panes,
        Some("first / last row (Home / End)"),
        None,
    ),
    bind(
        &[KeyCode::End, Char('G')],
        "G",
        Action::Select(Motion::Last),
        Scope::Lists,
        Panes,
        None,
        None,
    ),
    bind(
        &[KeyCode::Enter],
        "enter",
        Action::Adopt,
        Scope::Rows,
        Panes,
        Some("adopt the row: kept on the heatmap for w"),
        Some(("enter adopt", 7)),
    ),
    // heatmap
    bind(
        &[KeyCode::Up, Char('k')],
        "arrows hjkl",
        Action::Move(Direction::Up),
        Scope::Heatmap,
        Heatmap,
        Some("move the cursor (or click a cell)"),
        None,
    ),
    bind(
        &[KeyCode::Down, Char('j')],
        "↓ j",
        Action::Move(Direction::Down),
        Scope::Heatmap,
        Heatmap,
        None,
        None,
    ),
    bind(
        &[KeyCode::Left, Char('h')],
        "← h",
        Action::Move(Direction::Left),
        Scope::Heatmap,
        Heatmap,
        None,
        None,
    ),
    bind(
        &[KeyCode::Right, Char('l')],
        "→ l",
        Action::Move(Direction::Right),
        Scope::Heatmap,
        Heatmap,
        None,
        None,
    ),
    bind(
        &[KeyCode::Enter],
        "enter",
        Action::ToggleCell,
        Scope::Heatmap,
        Heatmap,
        Some("toggle the cell: edit a copy of the shown"),
        Some(("enter edit", 7)),
    ),
    bind(
        &[Char('r')],
        "r",
        Action::ToggleRow,
        Scope::Heatmap,
        Heatmap,
        Some("toggle the cursor's layer"),
        None,
    ),
    bind(
        &[Char('c')],
        "c",
        Action::ToggleColumn,
        Scope::Heatmap,
        Heatmap,
        Some("toggle the cursor's module column"),
        None,
    ),
    // strategy
    bind(
        &[Char('e')],
        "e",
        Action::Evaluate,
        Scope::Any,
        Strategy,
        Some("score the shown strategy; pin it as e1, e2…"),
        Some(("e pin", 10)),
    ),
    bind(
        &[Char('b')],
        "b",
        Action::TakeBest,
        Scope::Any,
        Strategy,
        Some("show the search's best (★best)"),
        Some(("b best", 11)),
    ),
    bind(
        &[Char('f')],
        "f",
        Action::Follow,
        Scope::Any,
        Strategy,
        Some("drop adopted/edited; follow the search"),
        None,
    ),
    bind(
        &[Char('u')],
        "u",
        Action::Undo,
        Scope::Any,
        Strategy,
        Some("undo the last edit, adopt, b or f"),
        Some(("u undo", 14)),
    ),
    // files
    bind(
        &[Char('w')],
        "w",
        Action::WriteStrategy,
        Scope::Any,
        Files,
        Some("write the shown strategy, or B's merge YAML"),
        Some(("w write", 3)),
    ),
    bind(
        &[Char('W')],
        "W",
        Action::WriteModel,
        Scope::Any,
        Files,
        Some("…and the purified model, or B's merged model"),
        Some(("W +model", 9)),
    ),
];

/// The action bound to a key press while `focus` has the focus: the pane's own binding
/// first, then a global one; an unbound key becomes [`Action::Unbound`] so it can say so.
pub fn action_for(key: KeyEvent, focus: Focus) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let hit = |b: &&Binding| b.ctrl == ctrl && b.keys.contains(&key.code);
    let own = KEYS
        .iter()
        .filter(|b| b.scope != Scope::Any && b.scope.covers(focus))
        .find(hit);
    let any = || KEYS.iter().filter(|b| b.scope == Scope::Any).find(hit);
    match own.or_else(any) {
        Some(b) => Some(b.action),
        None if matches!(key.code, KeyCode::Modifier(_) | KeyCode::Null) => None,
        None => Some(Action::Unbound(key.code)),
    }
}

/// Keys of the quit confirmation: keys, label, action, what it does. Any other key stays.
pub const CONFIRM_KEYS: &[(&[KeyCode], &str, Action, &str)] = &[
    (
        &[Char('y'), Char('q')],
        "y / q",
        Action::ForceQuit,
        "quit without writing",
    ),
    (
        &[Char('w')],
        "w",
        Action::WriteStrategy,
        "write it as JSON, then stay",
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

/// Keys of the help overlay: it scrolls like a list; `?`/esc close it, `q` quits.
pub fn help_action(key: KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == Char('c') {
        return Some(Action::ForceQuit);
    }
    Some(match key.code {
        KeyCode::Up | Char('k') => Action::Select(Motion::Up),
        KeyCode::Down | Char('j') => Action::Select(Motion::Down),
        KeyCode::PageUp => Action::Select(Motion::PageUp),
        KeyCode::PageDown | Char(' ') => Action::Select(Motion::PageDown),
        KeyCode::Home | Char('g') => Action::Select(Motion::First),
        KeyCode::End | Char('G') => Action::Select(Motion::Last),
        Char('q') => Action::Quit,
        _ => Action::Dismiss,
    })
}

/// The key-hint bar entries that act while `focus` has the focus, most useful first.
pub fn hints(focus: Focus) -> Vec<&'static str> {
    let mut hints: Vec<(&str, u8)> = KEYS
        .iter()
        .filter(|b| b.scope.covers(focus))
        .filter_map(|b| b.hint)
        .collect();
    hints.sort_by_key(|h| h.1);
    hints.into_iter().map(|h| h.0).collect()
}

/// How the status line names a key (for "x is not bound here").
pub fn key_name(code: KeyCode) -> String {
    match code {
        Char(' ') => "space".into(),
        Char(c) => c.to_string(),
        KeyCode::Enter => "enter".into(),
        KeyCode::Left => "←".into(),
        KeyCode::Right => "→".into(),
        KeyCode::Up => "↑".into(),
        KeyCode::Down => "↓".into(),
        other => format!("{other}").to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FOCI: [Focus; 4] = [
        Focus::Heatmap,
        Focus::Steps,
        Focus::Tradeoff,
        Focus::Baselines,
    ];

    #[test]
    fn keys_are_bound_once_per_pane() {
        for (i, a) in KEYS.iter().enumerate() {
            for b in &KEYS[i + 1..] {
                let shared = a.keys.iter().any(|k| b.keys.contains(k));
                // A pane's own binding may override a global one; two of one kind may not meet.
                let same_kind = (a.scope == Scope::Any) == (b.scope == Scope::Any);
                let both =
                    same_kind && FOCI.iter().any(|&f| a.scope.covers(f) && b.scope.covers(f));
                assert!(
                    !(shared && a.ctrl == b.ctrl && both),
                    "{} and {} share a key",
                    a.label,
                    b.label
                );
            }
        }
    }

    #[test]
    fn every_action_has_a_help_line() {
        // A binding without its own line must share a group with one that has it.
        for b in KEYS.iter().filter(|b| b.help.is_none()) {
            assert!(
                KEYS.iter().any(|o| o.group == b.group && o.help.is_some()),
                "{}",
                b.label
            );
        }
    }

    #[test]
    fn keys_by_pane() {
        let key = |c, m| KeyEvent::new(KeyCode::Char(c), m);
        let none = KeyModifiers::NONE;
        let heat = Focus::Heatmap;
        assert_eq!(
            action_for(key('W', KeyModifiers::SHIFT), heat),
            Some(Action::WriteModel)
        );
        assert_eq!(
            action_for(key('+', KeyModifiers::SHIFT), heat),
            Some(Action::AlphaUp)
        );
        assert_eq!(
            action_for(key('c', KeyModifiers::CONTROL), heat),
            Some(Action::ForceQuit)
        );
        assert_eq!(action_for(key('c', none), heat), Some(Action::ToggleColumn));
        assert_eq!(
            action_for(key('c', none), Focus::Steps),
            Some(Action::Unbound(KeyCode::Char('c')))
        );
        assert_eq!(
            action_for(key('x', none), heat),
            Some(Action::Unbound(KeyCode::Char('x')))
        );
        assert_eq!(
            action_for(key('j', none), heat),
            Some(Action::Move(Direction::Down))
        );
        assert_eq!(
            action_for(key('j', none), Focus::Steps),
            Some(Action::Select(Motion::Down))
        );
        assert_eq!(
            action_for(key('l', none), Focus::Tradeoff),
            Some(Action::Select(Motion::Down))
        );
        let enter = KeyEvent::new(KeyCode::Enter, none);
        assert_eq!(action_for(enter, heat), Some(Action::ToggleCell));
        assert_eq!(action_for(enter, Focus::Tradeoff), Some(Action::Adopt));
        // `]` and `[` share a line in the help but not an action.
        assert_eq!(action_for(key('[', none), heat), Some(Action::PatienceDown));
        assert_eq!(action_for(key(']', none), heat), Some(Action::PatienceUp));
    }

    #[test]
    fn hints_follow_the_focus() {
        assert!(hints(Focus::Heatmap).contains(&"enter edit"));
        assert!(!hints(Focus::Heatmap).contains(&"enter adopt"));
        assert!(hints(Focus::Tradeoff).contains(&"←→ α"));
        assert!(!hints(Focus::Steps).contains(&"←→ α"));
        assert_eq!(hints(Focus::Steps)[0], "? help");
        assert!(hints(Focus::Baselines).contains(&"↑↓ select"));
        assert!(!hints(Focus::Baselines).contains(&"enter adopt"));
    }
}
