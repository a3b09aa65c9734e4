//! What the user can ask for: every key, click, wheel turn and resize becomes one [`Action`].

use crossterm::event::KeyCode;

/// A direction for the heatmap cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// One layer up.
    Up,
    /// One layer down.
    Down,
    /// One module left.
    Left,
    /// One module right.
    Right,
}

/// How a selection moves in a list (the step table, the trade-off list, the help text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Motion {
    /// One row up.
    Up,
    /// One row down.
    Down,
    /// One page up.
    PageUp,
    /// One page down.
    PageDown,
    /// The first row.
    First,
    /// The last row.
    Last,
}

/// A user intent, independent of the key that produced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Show or hide the help overlay.
    ToggleHelp,
    /// Close an overlay or dialog; in a list, give the focus back to the heatmap.
    Dismiss,
    /// Quit, asking first when the chosen strategy has not been written.
    Quit,
    /// Quit without asking.
    ForceQuit,
    /// Focus the next pane (heatmap → steps → trade-off).
    FocusNext,
    /// Focus the previous pane.
    FocusPrev,
    /// Pause or resume the search.
    TogglePause,
    /// While paused: one greedy step.
    Step,
    /// Raise α by 0.05.
    AlphaUp,
    /// Lower α by 0.05.
    AlphaDown,
    /// Patience + 1.
    PatienceUp,
    /// Patience − 1 (at least 1).
    PatienceDown,
    /// Run the α sweep (0.0–1.0 by 0.1).
    Sweep,
    /// Switch to the next search mode (paper → cells → beam → refine → paper).
    CycleMode,
    /// Open or close the merge-baselines panel (asking the worker for them the first time).
    ToggleBaselines,
    /// Move the heatmap cursor.
    Move(Direction),
    /// Move the selection of the focused list.
    Select(Motion),
    /// Adopt the selected row: the heatmap keeps showing it and `w` writes it.
    Adopt,
    /// Toggle the cell under the cursor (starts an edited strategy).
    ToggleCell,
    /// Toggle the cursor's layer.
    ToggleRow,
    /// Toggle the cursor's module column.
    ToggleColumn,
    /// Evaluate the shown strategy and pin it in the step table.
    Evaluate,
    /// Show the search's best strategy.
    TakeBest,
    /// Drop what was adopted or edited; the heatmap follows the search again.
    Follow,
    /// Undo the last adopt, edit or follow.
    Undo,
    /// Write the shown strategy's JSON to the export folder.
    WriteStrategy,
    /// Write the JSON and the purified model to the export folder.
    WriteModel,
    /// A key with no binding where the focus is (it says so instead of doing nothing).
    Unbound(KeyCode),
    /// A mouse click at a terminal position.
    Click {
        /// Terminal column.
        column: u16,
        /// Terminal row.
        row: u16,
    },
    /// A mouse wheel turn at a terminal position.
    Scroll {
        /// Terminal column.
        column: u16,
        /// Terminal row.
        row: u16,
        /// Towards the end of the list (wheel down).
        down: bool,
    },
    /// The terminal was resized.
    Resize {
        /// New width.
        width: u16,
        /// New height.
        height: u16,
    },
}
