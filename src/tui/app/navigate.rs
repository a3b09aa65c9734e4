//! Moving around: the focus, list selections and their scrolling, the heatmap cursor,
//! clicks and the mouse wheel.

use super::*;
use crate::tui::action::{Direction, Motion};
use crate::tui::rows::{self, RowId};
use crate::tui::ui;
use ratatui::layout::{Position, Rect};

impl App {
    pub(super) fn move_cursor(&mut self, d: Direction) {
        let (l, m) = &mut self.cursor;
        match d {
            Direction::Up => *l = l.saturating_sub(1),
            Direction::Down => *l = (*l + 1).min(self.num_layers.saturating_sub(1)),
            Direction::Left => *m = m.saturating_sub(1),
            Direction::Right => *m = (*m + 1).min(self.modules.len() - 1),
        }
    }

    pub(super) fn set_focus(&mut self, focus: Focus) {
        self.focus = focus;
        match focus {
            Focus::Steps => {
                let ids = rows::row_ids(self);
                let valid = self.steps_selected.is_some_and(|id| ids.contains(&id));
                if !valid {
                    // Start on the answer: the ★best row, else the newest.
                    self.steps_selected = self
                        .best_step()
                        .map(|s| RowId::Step(s.step))
                        .or_else(|| ids.last().copied());
                }
                self.reveal_step();
            }
            Focus::Tradeoff => {
                if self.sweep.is_empty() {
                    self.say(
                        "the trade-off list fills when you sweep α: press a",
                        Level::Info,
                    );
                } else if self.sweep_selected >= self.sweep.len() {
                    self.sweep_selected = self.sweep.len() - 1;
                }
            }
            Focus::Heatmap | Focus::Baselines => {}
        }
    }

    pub(super) fn select(&mut self, m: Motion) {
        match self.focus {
            Focus::Heatmap => {}
            Focus::Steps => {
                let ids = rows::row_ids(self);
                if ids.is_empty() {
                    return;
                }
                let page = ui::steps_room(self).max(1);
                let cur = self
                    .steps_selected
                    .and_then(|id| ids.iter().position(|x| *x == id));
                let i = moved(cur, m, ids.len(), page);
                self.steps_selected = Some(ids[i]);
                self.reveal_step();
            }
            Focus::Tradeoff => {
                if self.sweep.is_empty() {
                    self.say("nothing to choose yet: press a to sweep α", Level::Info);
                    return;
                }
                let page = ui::tradeoff_room(self).max(1);
                self.sweep_selected = moved(Some(self.sweep_selected), m, self.sweep.len(), page);
            }
            Focus::Baselines => self.select_baseline(m),
        }
    }

    /// Scrolls the step table so the selected row is in view.
    pub(super) fn reveal_step(&mut self) {
        let Some(sel) = self.steps_selected else {
            return;
        };
        let flow = rows::flow_ids(self);
        let Some(i) = flow.iter().position(|x| *x == sel) else {
            return;
        };
        let fixed = rows::fixed_ids(self).len();
        let room = ui::steps_room(self);
        let w = rows::window(fixed, flow.len(), room, self.steps_top);
        let top = if i < w.flow_top {
            i
        } else if i >= w.flow_top + w.flow_shown {
            i + 1 - w.flow_shown.max(1)
        } else {
            w.flow_top
        };
        let tail = flow.len().saturating_sub(w.flow_shown);
        self.steps_top = (top < tail).then_some(top);
    }

    pub(super) fn scroll_help(&mut self, m: Motion) {
        let page = usize::from(self.size.height.saturating_sub(4)).max(1);
        self.help_scroll = match m {
            Motion::Up => self.help_scroll.saturating_sub(1),
            Motion::Down => self.help_scroll + 1,
            Motion::PageUp => self.help_scroll.saturating_sub(page),
            Motion::PageDown => self.help_scroll + page,
            Motion::First => 0,
            Motion::Last => usize::MAX / 2,
        };
        // The overlay clamps to its last page when it draws.
    }

    pub(super) fn click(&mut self, column: u16, row: u16) {
        let areas = ui::layout(self.size, self);
        let inside = |r: Rect| r.contains(Position::new(column, row));
        if let Some(cell) = ui::heatmap_cell_at(self, column, row) {
            self.focus = Focus::Heatmap;
            self.cursor = cell;
        } else if inside(areas.heatmap) {
            self.focus = Focus::Heatmap;
        } else if inside(areas.steps) {
            if let Some(id) = ui::steps_row_at(self, row) {
                self.steps_selected = Some(id);
            }
            self.set_focus(Focus::Steps);
        } else if inside(areas.tradeoff) {
            if let Some(i) = ui::tradeoff_row_at(self, column, row) {
                self.sweep_selected = i;
            }
            self.set_focus(Focus::Tradeoff);
        }
    }

    pub(super) fn wheel(&mut self, column: u16, row: u16, down: bool) {
        let areas = ui::layout(self.size, self);
        let inside = |r: Rect| r.contains(Position::new(column, row));
        if inside(areas.steps) {
            // Three rows a notch, like most terminals scroll text.
            let fixed = rows::fixed_ids(self).len();
            let flow = rows::flow_ids(self).len();
            let room = ui::steps_room(self);
            let w = rows::window(fixed, flow, room, self.steps_top);
            let tail = flow.saturating_sub(w.flow_shown);
            let top = if down {
                (w.flow_top + 3).min(tail)
            } else {
                w.flow_top.saturating_sub(3)
            };
            self.steps_top = (top < tail).then_some(top);
        } else if inside(areas.tradeoff) && !self.sweep.is_empty() {
            self.sweep_selected = if down {
                (self.sweep_selected + 1).min(self.sweep.len() - 1)
            } else {
                self.sweep_selected.saturating_sub(1)
            };
        } else if inside(areas.heatmap) || inside(areas.legend) {
            self.move_cursor(if down { Direction::Down } else { Direction::Up });
        }
    }
}

/// Where a selection at `cur` of `len` rows lands after `m` (`page` rows a page).
pub(super) fn moved(cur: Option<usize>, m: Motion, len: usize, page: usize) -> usize {
    let last = len.saturating_sub(1);
    let Some(i) = cur else {
        return match m {
            Motion::First | Motion::Down | Motion::PageDown => 0,
            _ => last,
        };
    };
    match m {
        Motion::Up => i.saturating_sub(1),
        Motion::Down => (i + 1).min(last),
        Motion::PageUp => i.saturating_sub(page),
        Motion::PageDown => (i + page).min(last),
        Motion::First => 0,
        Motion::Last => last,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_moves_and_stops_at_the_ends() {
        assert_eq!(moved(None, Motion::Down, 5, 2), 0);
        assert_eq!(moved(None, Motion::Up, 5, 2), 4);
        assert_eq!(moved(Some(4), Motion::Down, 5, 2), 4);
        assert_eq!(moved(Some(0), Motion::Up, 5, 2), 0);
        assert_eq!(moved(Some(1), Motion::PageDown, 5, 2), 3);
        assert_eq!(moved(Some(3), Motion::PageDown, 5, 2), 4);
        assert_eq!(moved(Some(3), Motion::First, 5, 2), 0);
        assert_eq!(moved(Some(0), Motion::Last, 5, 2), 4);
    }
}
