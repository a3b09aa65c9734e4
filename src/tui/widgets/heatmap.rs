//! The substitution-matrix heatmap: a row per layer, a column per module of the architecture
//! (Q K V O F P for encoders, Q K V O G U D for decoders).
//!
//! Each cell shows a glyph *and* a colour, so it reads on 16-colour terminals and in text
//! snapshots alike. Models deeper than the panel fold two layers into one row, each cell then
//! holding two glyphs (the upper layer's, then the lower one's); deeper still, the rows scroll
//! to keep the cursor in view. The title names the strategy shown and its size.

use crate::model::Module;
use crate::tui::app::{App, CellState, Focus, Strategy};
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

/// Rows the heatmap panel wants in a column `height` rows tall: every layer on its own row
/// when that leaves the panel below it `MIN_BELOW` rows, else two layers a row, else all the
/// column can give.
pub fn panel_height(num_layers: usize, height: u16) -> u16 {
    /// The panel below (what is shown, the legend) keeps at least this many rows.
    const MIN_BELOW: u16 = 5;
    let most = height.saturating_sub(MIN_BELOW);
    let rows = |per_row: usize| {
        u16::try_from(num_layers.div_ceil(per_row))
            .unwrap_or(u16::MAX)
            .saturating_add(3)
    };
    if rows(1) <= most {
        rows(1)
    } else {
        rows(2).min(most)
    }
}

/// Border style of a pane: highlighted while it has the focus.
pub fn focus_style(focused: bool) -> Style {
    if focused {
        Style::new().fg(Color::Cyan)
    } else {
        Style::new()
    }
}

/// Draws the heatmap panel for `shown`.
pub fn render(frame: &mut Frame, area: Rect, app: &App, shown: &Strategy) {
    use ratatui::text::Line;
    let focused = app.focus == Focus::Heatmap;
    let title = Line::from(format!(" {} ", shown.source.tag()));
    let mut size = format!(" {}", crate::tui::summary::cells(shown.matrix.count()));
    if let Some(m) = app.metrics_of(&shown.matrix) {
        size.push_str(&format!(" · {:.4}", m.score));
    }
    size.push(' ');
    let block = Block::bordered()
        .border_style(focus_style(focused))
        .title(title.style(Style::new().add_modifier(Modifier::BOLD)))
        .title_bottom(Line::from(size).right_aligned());
    frame.render_widget(block, area);
    if app.num_layers == 0 {
        return;
    }
    let geometry = Geometry::new(area, app.num_layers, app.cursor.0);
    frame.render_widget(
        Grid {
            app,
            shown,
            geometry,
        },
        area,
    );
}

struct Grid<'a> {
    app: &'a App,
    shown: &'a Strategy,
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
                    let (ch, style) = glyph(app.cell_state(self.shown, top, m), m);
                    let text = if (top, i) == (cl, cm) {
                        format!("[{ch}]")
                    } else {
                        format!(" {ch} ")
                    };
                    buf.set_string(x, y, text, style);
                } else {
                    // Two layers a row: the upper layer's glyph, then the lower one's.
                    for (k, layer) in [top, top + 1].into_iter().enumerate() {
                        if layer >= app.num_layers {
                            continue;
                        }
                        let (ch, mut style) = glyph(app.cell_state(self.shown, layer, m), m);
                        if (layer, i) == (cl, cm) {
                            style = style.add_modifier(Modifier::REVERSED | Modifier::UNDERLINED);
                        }
                        buf.set_string(x + 1 + k as u16, y, ch.to_string(), style);
                    }
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
