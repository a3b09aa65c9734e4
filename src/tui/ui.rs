//! Screen layout and drawing. [`draw`] reads the [`App`] and never changes it; [`layout`] is
//! shared with mouse hit-testing and paging so a click lands on the row that is drawn there.
//!
//! What gives way on a small screen: the step table's ΔACC/ΔASR columns before CACC/ASR; the
//! score chart and then the step table when the trade-off list has the focus; the heatmap
//! folds two layers a row, then scrolls.

use crate::tui::app::{App, Focus};
use crate::tui::rows::{self, RowId};
use crate::tui::widgets::{baselines, chart, heatmap, help, info, status, steps, tradeoff};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// Smallest usable screen (the "usable at 80×24").
pub const MIN_SIZE: (u16, u16) = (80, 24);

/// Below this many rows for the right-hand column, a focused trade-off list takes all of it.
const COMPACT_HEIGHT: u16 = 26;

/// Where each panel goes; a panel not shown has an empty area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    /// Two status lines at the top.
    pub status: Rect,
    /// The heatmap panel.
    pub heatmap: Rect,
    /// What the heatmap shows, its legend and the table's terms, under the heatmap.
    pub legend: Rect,
    /// Step table.
    pub steps: Rect,
    /// Progress gauge under the step table.
    pub gauge: Rect,
    /// Score chart.
    pub chart: Rect,
    /// Trade-off view.
    pub tradeoff: Rect,
    /// The merge-baselines panel (while it has the focus, in the step table's place).
    pub baselines: Rect,
    /// Key-hint bar at the bottom.
    pub hints: Rect,
}

/// Splits the screen for the app's model and focus.
pub fn layout(area: Rect, app: &App) -> Areas {
    let [status, main, hints] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    let [left, right] = Layout::horizontal([
        Constraint::Length(heatmap::grid_width(app.modules.len()) + 2),
        Constraint::Min(0),
    ])
    .areas(main);
    let heat_h = heatmap::panel_height(app.num_layers, left.height);
    let [heatmap, legend] =
        Layout::vertical([Constraint::Length(heat_h), Constraint::Min(0)]).areas(left);
    let none = Rect::new(right.x, right.y, 0, 0);
    if app.focus == Focus::Baselines {
        // The panel on top, the trade-off view (with the merges' points) under it.
        let want = baselines::height(app, right.width);
        let panel_h = want
            .min(right.height.saturating_sub(8))
            .max(5.min(right.height));
        let [panel, bottom] =
            Layout::vertical([Constraint::Length(panel_h), Constraint::Min(0)]).areas(right);
        return Areas {
            status,
            heatmap,
            legend,
            steps: none,
            gauge: none,
            chart: none,
            tradeoff: bottom,
            baselines: panel,
            hints,
        };
    }
    let (table, bottom) = if app.focus == Focus::Tradeoff && right.height < COMPACT_HEIGHT {
        (none, right)
    } else {
        let bottom_h = if app.focus == Focus::Tradeoff {
            (right.height * 3 / 5).min(18)
        } else {
            (right.height * 38 / 100).max(7)
        };
        let [t, b] =
            Layout::vertical([Constraint::Min(0), Constraint::Length(bottom_h)]).areas(right);
        (t, b)
    };
    let [steps, gauge] = if table.height == 0 {
        [none, none]
    } else {
        Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(table)
    };
    let (chart, tradeoff) = if app.focus == Focus::Tradeoff {
        (none, bottom)
    } else {
        // Once there is a sweep, the trade-off has more to show than the score chart.
        // (From 100 columns: narrower, both need their half for titles and axes.)
        let chart_share = if app.sweep.is_empty() || bottom.width < 100 {
            50
        } else {
            35
        };
        let [c, t] = Layout::horizontal([
            Constraint::Percentage(chart_share),
            Constraint::Percentage(100 - chart_share),
        ])
        .areas(bottom);
        (c, t)
    };
    Areas {
        status,
        heatmap,
        legend,
        steps,
        gauge,
        chart,
        tradeoff,
        baselines: none,
        hints,
    }
}

/// Rows of the step table that fit on screen now.
pub fn steps_room(app: &App) -> usize {
    let a = layout(app.size, app);
    // Borders and the header line.
    usize::from(a.steps.height.saturating_sub(3))
}

/// Rows of the trade-off list that fit on screen now.
pub fn tradeoff_room(app: &App) -> usize {
    let a = layout(app.size, app);
    tradeoff::list_area(a.tradeoff, app).map_or(0, |r| usize::from(r.height.saturating_sub(1)))
}

/// The heatmap cell `(layer, module index)` at a terminal position, if any.
pub fn heatmap_cell_at(app: &App, column: u16, row: u16) -> Option<(usize, usize)> {
    if app.num_layers == 0 {
        return None;
    }
    let areas = layout(app.size, app);
    heatmap::Geometry::new(areas.heatmap, app.num_layers, app.cursor.0).cell_at(
        column,
        row,
        app.num_layers,
        app.modules.len(),
        app.cursor,
    )
}

/// The step-table row drawn at terminal row `row`, if any.
pub fn steps_row_at(app: &App, row: u16) -> Option<RowId> {
    let a = layout(app.size, app);
    // Border, then the header line.
    let first = a.steps.y + 2;
    if row < first {
        return None;
    }
    let i = usize::from(row - first);
    let fixed = rows::fixed_ids(app);
    let flow = rows::flow_ids(app);
    let w = rows::window(fixed.len(), flow.len(), steps_room(app), app.steps_top);
    let fixed_shown = &fixed[fixed.len() - w.fixed_shown..];
    match fixed_shown.get(i) {
        Some(id) => Some(*id),
        None => flow
            .get(w.flow_top + i - w.fixed_shown)
            .filter(|_| i - w.fixed_shown < w.flow_shown)
            .copied(),
    }
}

/// The trade-off list row at a terminal position, if any.
pub fn tradeoff_row_at(app: &App, column: u16, row: u16) -> Option<usize> {
    let a = layout(app.size, app);
    let list = tradeoff::list_area(a.tradeoff, app)?;
    if !list.contains(ratatui::layout::Position::new(column, row)) || row <= list.y {
        return None;
    }
    let top = tradeoff::list_top(app, usize::from(list.height.saturating_sub(1)));
    let i = top + usize::from(row - list.y - 1);
    (i < app.sweep.len()).then_some(i)
}

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    if area.width < MIN_SIZE.0 || area.height < MIN_SIZE.1 {
        let text = format!(
            "gms needs at least {}×{}; this terminal is {}×{}. Enlarge it, or press q to quit.",
            MIN_SIZE.0, MIN_SIZE.1, area.width, area.height
        );
        frame.render_widget(
            Paragraph::new(text).wrap(ratatui::widgets::Wrap { trim: true }),
            area,
        );
        return;
    }
    let a = layout(area, app);
    let shown = app.shown();
    status::render(frame, a.status, app);
    heatmap::render(frame, a.heatmap, app, &shown);
    info::render(frame, a.legend, app, &shown, a.heatmap);
    if a.steps.height > 0 {
        steps::render(frame, a.steps, app);
        steps::render_gauge(frame, a.gauge, app);
    }
    if a.chart.width > 0 {
        chart::render(frame, a.chart, app);
    }
    tradeoff::render(frame, a.tradeoff, app);
    if a.baselines.height > 0 {
        baselines::render(frame, a.baselines, app);
    }
    status::render_hints(frame, a.hints, app);
    if app.help {
        help::render(frame, area, app);
    }
    if app.confirm_quit {
        help::render_confirm(frame, area, app);
    }
}
