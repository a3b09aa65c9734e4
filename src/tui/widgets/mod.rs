//! The workbench's panels; each draws from `&App` and nothing else.

pub mod baselines;
pub mod chart;
pub mod heatmap;
pub mod help;
pub mod info;
pub mod status;
pub mod steps;
pub mod tradeoff;

use ratatui::layout::Constraint;

/// The score columns a table of strategies shares (the trade-off list, the baselines panel):
/// proxy acc, asr and score, then with test sets CACC% and ASR%, each five wide.
pub fn score_columns(header: &mut Vec<&'static str>, widths: &mut Vec<Constraint>, tests: bool) {
    header.extend(["acc", "asr", "score"]);
    if tests {
        header.extend(["CACC%", "ASR%"]);
    }
    widths.resize(header.len(), Constraint::Length(5));
}
