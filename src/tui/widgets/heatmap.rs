//! The substitution-matrix heatmap: a row per layer, a column per module of the architecture
//! (Q K V O F P for encoders, Q K V O G U D for decoders).
//!
//! Each cell shows a glyph *and* a colour, so it reads on 16-colour terminals and in text
//! snapshots alike. Models deeper than the panel fold two layers into one row with half
//! blocks (`▀`: upper layer in the foreground colour, lower in the background); deeper still,
//! the rows scroll to keep the cursor in view.

use crate::model::Module;
use crate::tui::app::{App, CellState};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, Widget};
use ratatui::Frame;

/// Columns taken by the layer label (`L31 `).
const LABEL: u16 = 4;
/// Columns per module cell (`[Q]`).
const CELL: u16 = 3;
/// Inner width the grid needs for `modules` columns.
pub fn grid_width(modules: usize) -> u16 {
    LABEL + CELL * modules as u16
}

/// Where the grid's rows fall in a panel of a given size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// The area inside the border.
    pub inner: Rect,
    /// Layers per text row (1, or 2 when folded).
    pub per_row: usize,
    /// First text row shown (scrolling).
    pub offset: usize,
    /// Text rows shown.
    pub visible: usize,
}

impl Geometry {
    /// The layout of `num_layers` layers in the bordered panel `area`, scrolled so the cursor
    /// layer is visible.
    pub fn new(area: Rect, num_layers: usize, cursor_layer: usize) -> Geometry {
        let inner = Block::bordered().inner(area);
        let visible = usize::from(inner.height.saturating_sub(1)).max(1);
        let per_row = if num_layers <= visible { 1 } else { 2 };
        let rows = num_layers.div_ceil(per_row);
        let cursor_row = cursor_layer / per_row;
        let offset = if cursor_row < visible {
            0
        } else {
            cursor_row + 1 - visible
        };
        Geometry {
            inner,
            per_row,
            offset,
            visible: visible.min(rows.saturating_sub(offset)),
        }
    }

    /// The `(layer, module index)` under terminal position (`x`, `y`), if any.
    pub fn cell_at(
        &self,
        x: u16,
        y: u16,
        num_layers: usize,
        modules: usize,
        cursor: (usize, usize),
    ) -> Option<(usize, usize)> {
        let grid_x = self.inner.x + LABEL;
        if x < grid_x || y <= self.inner.y || y >= self.inner.y + 1 + self.visible as u16 {
            return None;
        }
        let module = usize::from((x - grid_x) / CELL);
        if module >= modules {
            return None;
        }
        let row = self.offset + usize::from(y - self.inner.y - 1);
        let mut layer = row * self.per_row;
        // A folded row holds two layers: a second click on the upper one picks the lower.
        if self.per_row == 2 && cursor == (layer, module) && layer + 1 < num_layers {
            layer += 1;
        }
        (layer < num_layers).then_some((layer, module))
    }
}

/// Colour of a cell state (16-colour palette only).
pub fn color(state: CellState) -> Color {
    match state {
        CellState::Substituted => Color::Blue,
        CellState::Kept => Color::DarkGray,
        CellState::Evaluating => Color::Yellow,
        CellState::JustRemoved => Color::Red,
    }
}

/// Glyph and style of a cell state in unfolded rows.
pub fn glyph(state: CellState, module: Module) -> (char, Style) {
    match state {
        CellState::Substituted => (
            module.letter(),
            Style::new()
                .fg(Color::White)
                .bg(Color::Blue)
                .add_modifier(Modifier::BOLD),
        ),
        CellState::Kept => ('·', Style::new().fg(Color::DarkGray)),
        CellState::Evaluating => (
            '?',
            Style::new()
                .fg(Color::Black)
                .bg(Color::Yellow)
                .add_modifier(Modifier::BOLD),
        ),
        CellState::JustRemoved => (
            '×',
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        ),
    }
}

/// Draws the heatmap panel.
pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let title = if app.edited.is_some() {
        " strategy · edited "
    } else {
        " strategy · live "
    };
    let block = Block::bordered().title(title);
    frame.render_widget(block, area);
    if app.num_layers == 0 {
        return;
    }
    let geometry = Geometry::new(area, app.num_layers, app.cursor.0);
    frame.render_widget(Grid { app, geometry }, area);
}

struct Grid<'a> {
    app: &'a App,
    geometry: Geometry,
}

impl Widget for Grid<'_> {
    fn render(self, _area: Rect, buf: &mut Buffer) {
        let Geometry {
            inner,
            per_row,
            offset,
            visible,
        } = self.geometry;
        let app = self.app;
        let (cl, cm) = app.cursor;
        buf.set_string(
            inner.x,
            inner.y,
            format!("{:LABEL$}", "", LABEL = LABEL as usize),
            Style::new(),
        );
        for (i, m) in app.modules.iter().enumerate() {
            let style = if i == cm {
                Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
            } else {
                Style::new().add_modifier(Modifier::BOLD)
            };
            buf.set_string(
                inner.x + LABEL + CELL * i as u16,
                inner.y,
                format!(" {m} "),
                style,
            );
        }
        for r in 0..visible {
            let y = inner.y + 1 + r as u16;
            if y >= inner.bottom() {
                break;
            }
            let top = (offset + r) * per_row;
            let label = if per_row == 1 {
                format!("L{top:<2} ")
            } else {
                format!("{top:>2}+ ")
            };
            let on_cursor = (top..top + per_row).contains(&cl);
            let label_style = if on_cursor {
                Style::new().add_modifier(Modifier::BOLD)
            } else {
                Style::new().fg(Color::DarkGray)
            };
            buf.set_string(inner.x, y, label, label_style);
            for (i, &m) in app.modules.iter().enumerate() {
                let x = inner.x + LABEL + CELL * i as u16;
                if per_row == 1 {
                    let (ch, style) = glyph(app.cell_state(top, m), m);
                    let text = if (top, i) == (cl, cm) {
                        format!("[{ch}]")
                    } else {
                        format!(" {ch} ")
                    };
                    buf.set_string(x, y, text, style);
                } else {
                    let half = |layer: usize| {
                        if layer >= app.num_layers {
                            Color::Reset
                        } else if (layer, i) == (cl, cm) {
                            Color::White
                        } else {
                            color(app.cell_state(layer, m))
                        }
                    };
                    buf.set_string(x, y, "▀▀▀", Style::new().fg(half(top)).bg(half(top + 1)));
                }
            }
        }
        if offset > 0 {
            buf.set_string(inner.x, inner.y, "↑", Style::new().fg(Color::DarkGray));
        }
        if offset + visible < app.num_layers.div_ceil(per_row) {
            buf.set_string(
                inner.x,
                inner.bottom().saturating_sub(1),
                "↓",
                Style::new().fg(Color::DarkGray),
            );
        }
    }
}

/// Draws the legend and the cursor's cell under the heatmap.
pub fn render_legend(frame: &mut Frame, area: Rect, app: &App) {
    use ratatui::text::{Line, Span};
    let entry = |state: CellState, text: &'static str| {
        let (ch, style) = glyph(state, Module::Q);
        Line::from(vec![
            Span::styled(format!(" {ch} "), style),
            Span::raw(format!(" {text}")),
        ])
    };
    let mut lines = vec![
        entry(CellState::Substituted, "from the proxy"),
        entry(CellState::Kept, "victim's own"),
        entry(CellState::Evaluating, "under evaluation"),
        entry(CellState::JustRemoved, "dropped last step"),
    ];
    if app.num_layers > 0 {
        let (l, m) = app.cursor;
        let module = app.modules[m];
        let from = if app.shown_matrix().get(l, module) {
            "proxy"
        } else {
            "victim"
        };
        let cells = app.shown_matrix().count();
        lines.push(Line::from(format!(" cursor L{l}·{module}: {from}")));
        lines.push(Line::from(format!(" {cells} cells from proxy")));
    }
    let block = Block::bordered().title(" legend ");
    frame.render_widget(ratatui::widgets::Paragraph::new(lines).block(block), area);
}
