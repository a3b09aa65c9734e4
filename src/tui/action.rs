//! What the user can ask for: every key, click and resize becomes one [`Action`].

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

/// A user intent, independent of the key that produced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Show or hide the help overlay.
    ToggleHelp,
    /// Close an overlay or dialog.
    Dismiss,
    /// Quit, asking first when the current strategy has not been written.
    Quit,
    /// Quit without asking.
    ForceQuit,
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
    /// Move the heatmap cursor.
    Move(Direction),
    /// Toggle the cell under the cursor in the edited strategy.
    ToggleCell,
    /// Toggle the cursor's layer.
    ToggleRow,
    /// Toggle the cursor's module column.
    ToggleColumn,
    /// Evaluate the edited strategy and pin it in the step table.
    Evaluate,
    /// Take the search's best strategy as the edited strategy.
    TakeBest,
    /// Drop the edits and let the heatmap follow the search again.
    Follow,
    /// Run the α sweep (0.0–1.0 by 0.1).
    Sweep,
    /// Write the strategy JSON to the export folder.
    WriteStrategy,
    /// Write the strategy JSON and the purified model to the export folder.
    WriteModel,
    /// A mouse click at a terminal position (column, row).
    Click {
        /// Terminal column.
        column: u16,
        /// Terminal row.
        row: u16,
    },
    /// The terminal was resized.
    Resize {
        /// New width.
        width: u16,
        /// New height.
        height: u16,
    },
}
