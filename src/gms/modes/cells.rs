//! The `cells` mode: a greedy whose moves are single cells (layer, module). Each step either
//! gives one substituted cell back to the victim or takes one of the victim's cells from the
//! proxy again, scored like every other candidate, with the paper's patience rule; states
//! already visited are not proposed again (rules: [`super::walk`]).
//!
//! It starts from the paper's answer (the paper's search runs first, its steps are the start
//! of the trace, and the walk returns to its best point before going on) or from the full
//! substitution. The `refine` mode is the walk from the paper's answer that enters only
//! states no worse than that answer on either proxy set (as many clean rows correct or more,
//! as many suspect rows hit or fewer): whatever it returns, it dominates or equals the
//! paper's answer on the proxy sets, and the paper's own score can only go up. Whole module types and whole layers are coarse moves: one cell of a layer may
//! carry the backdoor while its neighbours carry the task.

use crate::error::Result;
use crate::gms::evaluator::Evaluator;
use crate::gms::modes::walk::{Moves, Walk};
use crate::gms::modes::{CellsStart, Search, SearchMode};
use crate::gms::search::{GreedySearch, Point, SearchEvent, SearchParams, StopReason, TraceStep};

/// The cell greedy, with the paper's search in front of it when it starts from its answer.
pub struct CellSearch {
    from: CellsStart,
    /// Only states no worse than the paper's answer on both proxy sets (`refine`).
    refine: bool,
    params: SearchParams,
    num_layers: usize,
    /// The paper's search, while it runs (`from` = paper).
    paper: Option<GreedySearch>,
    /// The cell walk, once it runs.
    walk: Option<Walk>,
}

impl CellSearch {
    /// A cell search over a model with `num_layers` layers, not yet started.
    pub fn new(params: SearchParams, num_layers: usize, from: CellsStart) -> CellSearch {
        let mut search = CellSearch {
            from,
            refine: false,
            params,
            num_layers,
            paper: None,
            walk: None,
        };
        match from {
            CellsStart::Paper => search.paper = Some(GreedySearch::new(params, num_layers)),
            CellsStart::Full => search.walk = Some(search.new_walk()),
        }
        search
    }

    /// The `refine` mode: the cell walk after the paper's search, never below its answer.
    pub fn refine(params: SearchParams, num_layers: usize) -> CellSearch {
        CellSearch {
            refine: true,
            ..CellSearch::new(params, num_layers, CellsStart::Paper)
        }
    }

    fn new_walk(&self) -> Walk {
        Walk::new(self.mode(), self.params, self.num_layers, 1, Moves::Cells)
    }

    /// The part running now.
    fn running(&self) -> &dyn Search {
        match (&self.walk, &self.paper) {
            (Some(w), _) => w,
            (None, Some(p)) => p,
            (None, None) => unreachable!("a cell search has a paper phase or a walk"),
        }
    }
}

impl Search for CellSearch {
    fn mode(&self) -> SearchMode {
        if self.refine {
            SearchMode::Refine
        } else {
            SearchMode::Cells { from: self.from }
        }
    }

    fn params(&self) -> SearchParams {
        self.params
    }

    fn trace(&self) -> &[TraceStep] {
        self.running().trace()
    }

    fn best(&self) -> Option<&Point> {
        self.running().best()
    }

    fn current(&self) -> Option<&Point> {
        self.running().current()
    }

    fn evaluations(&self) -> usize {
        self.running().evaluations()
    }

    fn finished(&self) -> Option<StopReason> {
        self.walk.as_ref().and_then(|w| w.finished())
    }

    fn next_is_cached(&self, ev: &Evaluator) -> bool {
        self.running().next_is_cached(ev)
    }

    fn advance(&mut self, ev: &mut Evaluator) -> Result<Vec<SearchEvent>> {
        if let Some(walk) = self.walk.as_mut() {
            return walk.advance(ev);
        }
        let paper = self.paper.as_mut().expect("the paper phase runs");
        let mut events = paper.advance(ev)?;
        if paper.finished().is_none() {
            return Ok(events);
        }
        // The paper's answer is where the cell walk starts; its end is not the search's.
        events.retain(|e| !matches!(e, SearchEvent::Finished { .. }));
        let paper = self.paper.take().expect("the paper phase ran");
        let best = Search::answer(&paper).expect("a finished search has scored its start");
        let floor = self.refine.then_some(best.counts);
        let mut walk = Walk::seeded(
            self.new_walk(),
            paper.trace().to_vec(),
            best,
            paper.evaluations(),
        )
        .with_floor(floor);
        events.extend(walk.advance(ev)?);
        self.walk = Some(walk);
        Ok(events)
    }
}
