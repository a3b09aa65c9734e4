//! Screen layout and drawing. [`draw`] reads the [`App`] and never changes it; [`layout`] is
//! shared with mouse hit-testing so a click lands on the cell that is drawn there.

use crate::tui::app::App;
use crate::tui::widgets::{chart, heatmap, help, status, steps, tradeoff};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// Smallest usable screen (the "usable at 80×24").
pub const MIN_SIZE: (u16, u16) = (80, 24);

/// Where each panel goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    /// Two status lines at the top.
    pub status: Rect,
    /// The heatmap panel.
    pub heatmap: Rect,
    /// Legend under the heatmap.
    pub legend: Rect,
    /// Step table.
    pub steps: Rect,
    /// Progress gauge under the step table.
    pub gauge: Rect,
    /// Score chart.
    pub chart: Rect,
    /// Trade-off view.
    pub tradeoff: Rect,
    /// Key-hint bar at the bottom.
    pub hints: Rect,
}

/// Splits the screen for a model with `num_layers` layers.
pub fn layout(area: Rect, num_layers: usize, modules: usize) -> Areas {
    let [status, main, hints] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    let [left, right] = Layout::horizontal([
        Constraint::Length(heatmap::grid_width(modules) + 2),
        Constraint::Min(0),
    ])
    .areas(main);
    // The legend keeps at least 4 rows; the heatmap takes what its layers need.
    let wanted = u16::try_from(num_layers)
        .unwrap_or(u16::MAX)
        .saturating_add(3);
    let heat_h = wanted.min(left.height.saturating_sub(4));
    let [heatmap, legend] =
        Layout::vertical([Constraint::Length(heat_h), Constraint::Min(0)]).areas(left);
    let [table, bottom] =
        Layout::vertical([Constraint::Min(6), Constraint::Percentage(38)]).areas(right);
    let [steps, gauge] = Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(table);
    let [chart, tradeoff] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(bottom);
    Areas {
        status,
        heatmap,
        legend,
        steps,
        gauge,
        chart,
        tradeoff,
        hints,
    }
}

/// The heatmap cell `(layer, module index)` at a terminal position, if any.
pub fn heatmap_cell_at(app: &App, column: u16, row: u16) -> Option<(usize, usize)> {
    if app.num_layers == 0 {
        return None;
    }
    let areas = layout(app.size, app.num_layers, app.modules.len());
    heatmap::Geometry::new(areas.heatmap, app.num_layers, app.cursor.0).cell_at(
        column,
        row,
        app.num_layers,
        app.modules.len(),
        app.cursor,
    )
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
    let a = layout(area, app.num_layers, app.modules.len());
    status::render(frame, a.status, app);
    heatmap::render(frame, a.heatmap, app);
    heatmap::render_legend(frame, a.legend, app);
    steps::render(frame, a.steps, app);
    steps::render_gauge(frame, a.gauge, app);
    chart::render(frame, a.chart, app);
    tradeoff::render(frame, a.tradeoff, app);
    status::render_hints(frame, a.hints);
    if app.help {
        help::render(frame, area, app);
    }
    if app.confirm_quit {
        help::render_confirm(frame, area);
    }
}
