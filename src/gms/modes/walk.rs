//! The step-wise walk the finer modes share: a greedy over a neighbourhood that keeps the
//! `width` best states of each step (a beam; width 1 is a plain greedy).
//!
//! Its rules are the paper's (docs/algorithm.md §Search), generalised:
//!
//! - a step proposes the moves from every state of the beam, in beam order (best first) and,
//!   within a state, in the neighbourhood's fixed order; the step's new beam is the `width`
//!   best complete candidates, an earlier candidate ahead of a later one on equal scores;
//! - the beam's first state is the step's leader: a strictly higher score than the best so
//!   far makes it the new best and resets the patience counter; with product moves, a
//!   strictly higher one than the previous leader's resets it too (the paper's rule), while a
//!   cell walk counts every step without a new best (below); the walk moves on whatever the
//!   score, and stops after `patience` steps without improvement or when no move is left;
//! - early abandonment is exact as before: a candidate is stopped once it provably cannot
//!   score strictly above the step's `width`-th best complete candidate (with width 1, the
//!   leader), and the first `width` complete candidates of a step run without a cutoff;
//! - with revisits avoided (every cell walk, every beam wider than 1), a state that was ever in
//!   a beam, or was already proposed in this step, is not proposed again: a greedy forced to
//!   move downhill would otherwise step off a local optimum and straight back onto it, for
//!   ever, and a beam would fill with copies of one state;
//! - in a cell walk, equal scores go to the strategy with fewer substituted cells, then to
//!   the earlier candidate: where the proxy sets cannot tell two strategies apart, the one
//!   closer to the victim keeps more of the victim's accuracy and shows no more backdoor.
//!   On the encoder kit, 11 of the 36 cells the paper's answer (the full substitution) can give
//!   back leave its proxy-set counts exactly as they were; on the test sets 5 of those 11 moves
//!   dominate it (CACC no lower, ASR no higher, one strictly), 5 trade CACC for ASR and 1
//!   changes nothing (EFFICACY.md, SST-2 BadNet's neighbourhood table, row "same");
//! - a cell walk resets patience only on a new best, as the reference's decoder search does
//!   (docs/algorithm.md §The reference's decoder search): product moves shrink the set at
//!   every step, so the paper's walk is at most |M| + |L| steps long, but single cells can be
//!   given and taken for ever: on the encoder kit (filtered signal) the paper's rule let a
//!   cell walk wander a plateau of one-row score differences for 33 steps after its last new
//!   best, about 1,000 evaluations that changed nothing.
//!
//! - with a floor (the `refine` mode), a state with fewer clean rows correct or more suspect
//!   rows hit than the floor's is scored but never entered; a step none of whose candidates
//!   clears the floor ends the walk.
//!
//! With the paper's product moves, width 1 and revisits allowed, this is exactly
//! [`crate::gms::search::GreedySearch`] (a unit test holds the two to the same trace).

use crate::error::Result;
use crate::gms::evaluator::{Cutoff, Evaluator, LayerStates};
use crate::gms::modes::{Search, SearchMode};
use crate::gms::score::{Counts, Drops};
use crate::gms::search::{
    candidates, product_cover, start_sets, CandidateReport, Move, Point, SearchEvent, SearchParams,
    StopReason, TraceStep,
};
use crate::model::{Module, SubstitutionMatrix};
use std::collections::HashSet;

/// Which moves a step proposes from a state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moves {
    /// The paper's: drop one module type (the architecture's order), then one layer
    /// (ascending), of a product set; a candidate with both sets empty is skipped. Its cells
    /// are the product's that the proxy can give, as in the paper's search.
    Product,
    /// Give one substituted cell back to the victim (cells layer-major, modules in the
    /// architecture's order), then take one of the victim's cells from the proxy (same
    /// order). The cells are the substitutable ones (the architecture's modules — six for an
    /// encoder, seven for a decoder — of every layer, less any cell two adapters do not both
    /// adapt). The empty set (the victim itself) is not proposed.
    Cells,
}

/// A state one step may move to, and the beam state it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// The move from its parent.
    pub mv: Move,
    /// Its cell set.
    pub matrix: SubstitutionMatrix,
    /// Its module types (for product moves, exactly the product's; else the cover).
    pub modules: Vec<Module>,
    /// Its layers (likewise).
    pub layers: Vec<usize>,
    /// Index of the beam state it was proposed from.
    pub parent: usize,
}

impl Moves {
    /// The proposals from `point` (beam state number `parent`), in order, before revisits
    /// are filtered out; `universe` is the cells the proxy can give.
    pub fn from_point(
        self,
        point: &Point,
        parent: usize,
        universe: &SubstitutionMatrix,
    ) -> Vec<Proposal> {
        let n = point.matrix.num_layers();
        match self {
            Moves::Product => candidates(&point.modules, &point.layers)
                .into_iter()
                .map(|c| Proposal {
                    matrix: c.matrix(n).intersection(universe),
                    mv: c.mv,
                    modules: c.modules,
                    layers: c.layers,
                    parent,
                })
                .collect(),
            Moves::Cells => {
                let with = |l: usize, m: Module, on: bool, mv: Move| {
                    let mut matrix = point.matrix.clone();
                    matrix.set(l, m, on);
                    let (modules, layers) = product_cover(&matrix);
                    Proposal {
                        mv,
                        matrix,
                        modules,
                        layers,
                        parent,
                    }
                };
                let drops = point
                    .matrix
                    .cells()
                    .into_iter()
                    .map(|(l, m)| with(l, m, false, Move::DropCell(l, m)));
                let adds = universe
                    .cells()
                    .into_iter()
                    .filter(|&(l, m)| !point.matrix.get(l, m))
                    .map(|(l, m)| with(l, m, true, Move::AddCell(l, m)));
                drops.chain(adds).filter(|p| p.matrix.count() > 0).collect()
            }
        }
    }
}

/// A beam walk, advanced one unit at a time.
pub struct Walk {
    mode: SearchMode,
    params: SearchParams,
    num_layers: usize,
    width: usize,
    moves: Moves,
    avoid_revisits: bool,
    /// Only a new best resets patience (cell walks; every walk with absolute drops).
    strict_patience: bool,
    /// The cells the proxy can give (known once the walk starts).
    universe: SubstitutionMatrix,
    /// Equal scores go to fewer substituted cells (cell walks).
    prefer_fewer_cells: bool,
    /// Counts a state must match or better (clean correct ≥, suspect hits ≤) to be entered.
    floor: Option<Counts>,
    /// A start point handed over by an earlier search, not yet taken.
    seed: Option<Point>,
    beam: Vec<Point>,
    /// Layer states of beam states 1.. kept from their evaluation, until they are needed.
    beam_states: Vec<Option<LayerStates>>,
    anchored: Vec<bool>,
    best: Option<Point>,
    no_improve: usize,
    trace: Vec<TraceStep>,
    visited: HashSet<SubstitutionMatrix>,
    pending: Vec<Proposal>,
    next: usize,
    top: Vec<(Point, Option<LayerStates>)>,
    finished: Option<StopReason>,
    evaluations: usize,
}

impl Walk {
    /// A walk from the full substitution, not yet started, reported as `mode`.
    pub fn new(
        mode: SearchMode,
        params: SearchParams,
        num_layers: usize,
        width: usize,
        moves: Moves,
    ) -> Walk {
        Walk {
            mode,
            params,
            num_layers,
            width: width.max(1),
            moves,
            avoid_revisits: width > 1 || moves == Moves::Cells,
            strict_patience: moves == Moves::Cells,
            universe: SubstitutionMatrix::empty(num_layers),
            prefer_fewer_cells: moves == Moves::Cells,
            floor: None,
            seed: None,
            beam: Vec::new(),
            beam_states: Vec::new(),
            anchored: Vec::new(),
            best: None,
            no_improve: 0,
            trace: Vec::new(),
            visited: HashSet::new(),
            pending: Vec::new(),
            next: 0,
            top: Vec::new(),
            finished: None,
            evaluations: 0,
        }
    }

    /// A walk that goes on from `best` (the answer of the search whose steps are `trace` and
    /// which scored `evaluations` strategies): its first unit returns to `best` (a
    /// `back to best` step, unless the trace already ends there) and plans the first step.
    pub fn seeded(mut walk: Walk, trace: Vec<TraceStep>, best: Point, evaluations: usize) -> Walk {
        walk.visited = trace.iter().map(|s| s.point.matrix.clone()).collect();
        walk.trace = trace;
        walk.evaluations = evaluations;
        walk.best = Some(best.clone());
        walk.seed = Some(best);
        walk
    }

    /// Restricts the walk to states at least as good as `floor` on both proxy sets.
    pub fn with_floor(mut self, floor: Option<Counts>) -> Walk {
        self.floor = floor;
        self
    }

    /// Whether a state with `counts` may be entered.
    fn admissible(&self, counts: &Counts) -> bool {
        self.floor.is_none_or(|f| {
            counts.clean_correct >= f.clean_correct && counts.suspect_hits <= f.suspect_hits
        })
    }

    /// The best point, or (absolute drops, no step taken) the start.
    fn answer_point(&self) -> Point {
        self.best
            .clone()
            .or_else(|| self.beam.first().cloned())
            .expect("a started walk has scored its start")
    }

    fn started(&self) -> bool {
        !self.beam.is_empty()
    }

    /// Takes in what the walk needs of the evaluator before its first unit: the cells the
    /// proxy can give, and the drops (absolute drops: only a new best resets patience, as in
    /// the paper's search).
    fn begin(&mut self, ev: &Evaluator) {
        self.universe = ev.substitutable().clone();
        if ev.drops == Drops::Absolute {
            self.strict_patience = true;
        }
    }

    /// The start: every module and layer with a substitutable cell, as the paper's search.
    fn start_point(
        ev: &Evaluator,
        num_layers: usize,
    ) -> (Vec<crate::model::Module>, Vec<usize>, SubstitutionMatrix) {
        let (modules, layers) = start_sets(ev);
        let matrix = SubstitutionMatrix::product(num_layers, &modules, &layers)
            .intersection(ev.substitutable());
        (modules, layers, matrix)
    }

    /// Whether `a` ranks above `b` (a strictly higher score; with fewer cells preferred, an
    /// equal score and fewer cells).
    fn better(&self, a: &Point, b: &Point) -> bool {
        a.metrics.score > b.metrics.score
            || (self.prefer_fewer_cells
                && a.metrics.score == b.metrics.score
                && a.matrix.count() < b.matrix.count())
    }

    /// The cutoff for `matrix`: it matters only if it can rank above the step's `width`-th
    /// best, i.e. score strictly more — or, with fewer cells preferred and fewer cells than
    /// that one, at least as much (the largest f64 below its score as the bar: exact).
    fn cutoff(&self, matrix: &SubstitutionMatrix) -> Option<Cutoff> {
        if self.top.len() < self.width {
            return None;
        }
        let last = &self.top.last().expect("width ≥ 1").0;
        let score = last.metrics.score;
        let beat = if self.prefer_fewer_cells && matrix.count() < last.matrix.count() {
            score.next_down()
        } else {
            score
        };
        Some(Cutoff {
            alpha: self.params.alpha,
            beat,
        })
    }

    fn start(&mut self, ev: &mut Evaluator) -> Result<Vec<SearchEvent>> {
        self.begin(ev);
        let (modules, layers, full) = Walk::start_point(ev, self.num_layers);
        let (e, states) = ev.evaluate_keeping(&full, None, true)?;
        self.evaluations += 1;
        let p = Point {
            mv: Move::Start,
            modules,
            layers,
            matrix: full,
            metrics: ev.metrics(self.params.alpha, &e.counts),
            counts: e.counts,
        };
        ev.set_anchor(&p.matrix, states)?;
        // With absolute drops the start is never eligible as best (the paper's search's rule).
        let eligible = ev.drops == Drops::Relative;
        self.best = eligible.then(|| p.clone());
        let step = TraceStep {
            step: 0,
            point: p.clone(),
            improved: eligible,
            no_improve: 0,
        };
        self.trace.push(step.clone());
        self.enter_beam(vec![p], vec![None]);
        let mut events = vec![SearchEvent::Step(step)];
        events.extend(self.plan_next());
        Ok(events)
    }

    fn take_seed(&mut self, ev: &mut Evaluator, seed: Point) -> Result<Vec<SearchEvent>> {
        self.begin(ev);
        ev.set_anchor(&seed.matrix, None)?;
        let mut events = Vec::new();
        if self.trace.last().map(|s| &s.point.matrix) != Some(&seed.matrix) {
            let step = TraceStep {
                step: self.trace.len(),
                point: Point {
                    mv: Move::ReturnToBest,
                    ..seed.clone()
                },
                improved: false,
                no_improve: 0,
            };
            self.trace.push(step.clone());
            events.push(SearchEvent::Step(step));
        }
        self.enter_beam(vec![seed], vec![None]);
        events.extend(self.plan_next());
        Ok(events)
    }

    /// Makes `points` the beam; the first is already an anchor.
    fn enter_beam(&mut self, points: Vec<Point>, states: Vec<Option<LayerStates>>) {
        self.visited.extend(points.iter().map(|p| p.matrix.clone()));
        self.anchored = (0..points.len()).map(|i| i == 0).collect();
        self.beam_states = states;
        self.beam = points;
    }

    /// Lists the next step's candidates, or finishes.
    fn plan_next(&mut self) -> Option<SearchEvent> {
        let patience_spent = self.no_improve >= self.params.patience;
        let mut pending = Vec::new();
        if !patience_spent {
            let mut proposed = HashSet::new();
            for (i, p) in self.beam.iter().enumerate() {
                for prop in self.moves.from_point(p, i, &self.universe) {
                    if self.avoid_revisits
                        && (self.visited.contains(&prop.matrix)
                            || !proposed.insert(prop.matrix.clone()))
                    {
                        continue;
                    }
                    pending.push(prop);
                }
            }
        }
        self.pending = pending;
        self.next = 0;
        self.top.clear();
        let reason = StopReason::after_step(patience_spent, self.pending.is_empty());
        reason.map(|r| {
            self.finished = Some(r);
            SearchEvent::Finished {
                best: self.answer_point(),
                reason: r,
            }
        })
    }

    fn evaluate_candidate(&mut self, ev: &mut Evaluator) -> Result<CandidateReport> {
        let (index, total) = (self.next, self.pending.len());
        let prop = self.pending[index].clone();
        let cutoff = self.cutoff(&prop.matrix);
        // A state of the beam other than the first becomes an anchor when the first of its
        // moves needs a forward pass (the first was made one when the step was taken).
        if !self.anchored[prop.parent] && !ev.answers_from_cache(&prop.matrix, cutoff) {
            let states = self.beam_states[prop.parent].take();
            ev.set_anchor(&self.beam[prop.parent].matrix, states)?;
            self.anchored[prop.parent] = true;
        }
        let (e, states) = ev.evaluate_keeping(&prop.matrix, cutoff, true)?;
        self.next += 1;
        self.evaluations += 1;
        let mut report = CandidateReport {
            step: self.trace.len(),
            index,
            total,
            mv: prop.mv,
            matrix: prop.matrix.clone(),
            metrics: None,
            upper_bound: e.upper_bound,
            cached: e.cached,
            start_layer: e.start_layer,
            leader: false,
        };
        if e.complete {
            let point = Point {
                mv: prop.mv,
                modules: prop.modules,
                layers: prop.layers,
                matrix: prop.matrix,
                metrics: ev.metrics(self.params.alpha, &e.counts),
                counts: e.counts,
            };
            report.metrics = Some(point.metrics);
            let at = self
                .top
                .iter()
                .position(|(q, _)| self.better(&point, q))
                .unwrap_or(self.top.len());
            if at < self.width && self.admissible(&point.counts) {
                self.top.insert(at, (point, states));
                self.top.truncate(self.width);
                report.leader = at == 0;
            }
        }
        Ok(report)
    }

    fn take_step(&mut self, ev: &mut Evaluator) -> Result<Vec<SearchEvent>> {
        let (points, mut states): (Vec<Point>, Vec<Option<LayerStates>>) =
            std::mem::take(&mut self.top).into_iter().unzip();
        let Some(leader) = points.first().cloned() else {
            // Every candidate fell below the floor: no move is left.
            self.finished = Some(StopReason::Exhausted);
            return Ok(vec![SearchEvent::Finished {
                best: self.answer_point(),
                reason: StopReason::Exhausted,
            }]);
        };
        let cur = self.beam[0].metrics.score;
        let improved = self.best.as_ref().is_none_or(|b| self.better(&leader, b));
        if improved {
            self.best = Some(leader.clone());
            self.no_improve = 0;
        } else if !self.strict_patience && leader.metrics.score > cur {
            self.no_improve = 0;
        } else {
            self.no_improve += 1;
        }
        ev.set_anchor(&leader.matrix, states[0].take())?;
        let step = TraceStep {
            step: self.trace.len(),
            point: leader,
            improved,
            no_improve: self.no_improve,
        };
        self.trace.push(step.clone());
        self.enter_beam(points, states);
        let mut events = vec![SearchEvent::Step(step)];
        events.extend(self.plan_next());
        Ok(events)
    }
}

impl Search for Walk {
    fn mode(&self) -> SearchMode {
        self.mode
    }

    fn params(&self) -> SearchParams {
        self.params
    }

    fn trace(&self) -> &[TraceStep] {
        &self.trace
    }

    fn best(&self) -> Option<&Point> {
        self.best.as_ref()
    }

    fn current(&self) -> Option<&Point> {
        self.beam.first().or(self.seed.as_ref())
    }

    fn evaluations(&self) -> usize {
        self.evaluations
    }

    fn finished(&self) -> Option<StopReason> {
        self.finished
    }

    fn next_is_cached(&self, ev: &Evaluator) -> bool {
        if self.finished.is_some() || self.seed.is_some() {
            // Taking the seed may compute anchor states, but never changes a result.
            return true;
        }
        if !self.started() {
            return ev.answers_from_cache(&Walk::start_point(ev, self.num_layers).2, None);
        }
        match self.pending.get(self.next) {
            Some(p) => ev.answers_from_cache(&p.matrix, self.cutoff(&p.matrix)),
            None => true,
        }
    }

    fn advance(&mut self, ev: &mut Evaluator) -> Result<Vec<SearchEvent>> {
        if self.finished.is_some() {
            return Ok(Vec::new());
        }
        if let Some(seed) = self.seed.take() {
            return self.take_seed(ev, seed);
        }
        if !self.started() {
            return self.start(ev);
        }
        if self.next < self.pending.len() {
            return self
                .evaluate_candidate(ev)
                .map(|r| vec![SearchEvent::Candidate(r)]);
        }
        self.take_step(ev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gms::score::Metrics;
    use crate::model::ENCODER_MODULES;

    fn point(matrix: SubstitutionMatrix) -> Point {
        let metrics = Metrics {
            acc: 0.0,
            asr: 0.0,
            acc_drop: 0.0,
            asr_drop: 0.0,
            score: 0.0,
        };
        Point::of_matrix(Move::Start, matrix, Counts::default(), metrics)
    }

    #[test]
    fn cell_moves_give_back_then_take_again_in_cell_order() {
        let full = SubstitutionMatrix::full(&ENCODER_MODULES, 2);
        let all = full.cells();
        let from_full = Moves::Cells.from_point(&point(full.clone()), 0, &full);
        let moves: Vec<Move> = from_full.iter().map(|p| p.mv).collect();
        let drops: Vec<Move> = all.iter().map(|&(l, m)| Move::DropCell(l, m)).collect();
        assert_eq!(
            moves, drops,
            "from the full substitution: only drops, layer-major"
        );
        assert!(from_full.iter().all(|p| p.matrix.count() == all.len() - 1));

        let (l, m) = all[3];
        let mut less = full.clone();
        less.set(l, m, false);
        let from_less = Moves::Cells.from_point(&point(less.clone()), 2, &full);
        assert_eq!(from_less.len(), all.len());
        assert_eq!(from_less.last().unwrap().mv, Move::AddCell(l, m));
        assert_eq!(from_less.last().unwrap().matrix, full);
        assert!(from_less.iter().all(|p| p.parent == 2));
        let (modules, layers) = (&from_less[0].modules, &from_less[0].layers);
        assert_eq!(
            (modules.len(), layers.len()),
            (all.len() / 2, 2),
            "the cover"
        );

        // One cell left: giving it back would be the victim itself, which is not proposed.
        let one = SubstitutionMatrix::from_cells(2, &[(1, m)]).unwrap();
        let from_one = Moves::Cells.from_point(&point(one), 0, &full);
        assert_eq!(from_one.len(), all.len() - 1);
        assert!(from_one.iter().all(|p| matches!(p.mv, Move::AddCell(..))));
    }

    #[test]
    fn product_moves_are_the_papers_candidates() {
        let p = point(SubstitutionMatrix::full(&ENCODER_MODULES, 3));
        let props = Moves::Product.from_point(&p, 1, &p.matrix);
        let paper = candidates(&p.modules, &p.layers);
        assert_eq!(props.len(), paper.len());
        for (a, b) in props.iter().zip(&paper) {
            assert_eq!((a.mv, &a.modules, &a.layers), (b.mv, &b.modules, &b.layers));
            assert_eq!(a.matrix, b.matrix(3));
        }
    }
}
