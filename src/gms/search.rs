//! The paper's greedy search over product sets `M × L` as a step-wise state machine.
//!
//! DESIGN.md §1: start from all modules × all layers; each step scores every candidate that
//! drops one module (Q,K,V,O,F,P order) or one layer (ascending), moves to the best (first on
//! ties) whether or not it improves, and stops after `patience` steps without a new best.
//! [`GreedySearch::advance`] does one unit of work (one candidate, or the move that ends a
//! step), so a worker can pause, change α, or answer the UI between units.

use crate::error::Result;
use crate::gms::evaluator::{Cutoff, Evaluator, LayerStates};
use crate::gms::score::{Counts, Metrics};
use crate::model::{Module, SubstitutionMatrix};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Search parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SearchParams {
    /// Accuracy weight α in `[0, 1]`.
    pub alpha: f64,
    /// Steps without a new best before stopping (≥ 1).
    pub patience: usize,
}

/// What a greedy step changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Move {
    /// The initial full substitution (step 0).
    Start,
    /// Stop substituting this module type in every layer.
    DropModule(Module),
    /// Stop substituting anything in this layer.
    DropLayer(usize),
}

impl fmt::Display for Move {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Move::Start => write!(f, "start"),
            Move::DropModule(m) => write!(f, "−module {m}"),
            Move::DropLayer(l) => write!(f, "−layer {l}"),
        }
    }
}

/// A scored product-set strategy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// How it was reached from the previous state.
    #[serde(rename = "move")]
    pub mv: Move,
    /// Substituted module types, Q,K,V,O,F,P order.
    pub modules: Vec<Module>,
    /// Substituted layers, ascending.
    pub layers: Vec<usize>,
    /// The cell set.
    pub matrix: SubstitutionMatrix,
    /// Proxy-set counts.
    pub counts: Counts,
    /// Scores under the search's α.
    pub metrics: Metrics,
}

/// One taken greedy step (step 0 is the initial full substitution).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceStep {
    /// Step number.
    pub step: usize,
    /// The state moved to.
    pub point: Point,
    /// Whether it is a new best.
    pub improved: bool,
    /// Steps without improvement so far.
    pub no_improve: usize,
}

/// A candidate's evaluation as it happens.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CandidateReport {
    /// The step this candidate belongs to (1-based).
    pub step: usize,
    /// Its position among the step's candidates.
    pub index: usize,
    /// How many candidates the step has.
    pub total: usize,
    /// The move it would make.
    #[serde(rename = "move")]
    pub mv: Move,
    /// Its cell set.
    pub matrix: SubstitutionMatrix,
    /// Scores, when evaluated completely.
    pub metrics: Option<Metrics>,
    /// For an abandoned candidate, the best score it could have reached.
    pub upper_bound: Option<f64>,
    /// Whether it was answered from the cache.
    pub cached: bool,
    /// First layer its forward pass ran.
    pub start_layer: usize,
    /// Whether it leads the step so far.
    pub leader: bool,
}

/// Why the search ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StopReason {
    /// `patience` steps without a new best.
    Patience,
    /// Nothing left to drop.
    Exhausted,
}

impl StopReason {
    /// Why the search ended, in words, for a search with `patience`.
    pub fn describe(self, patience: usize) -> String {
        match self {
            StopReason::Patience => format!(
                "{patience} step{} in a row without improving",
                if patience == 1 { "" } else { "s" }
            ),
            StopReason::Exhausted => "nothing left to drop".into(),
        }
    }
}

/// What one unit of search work produced.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum SearchEvent {
    /// One candidate was scored (or abandoned).
    Candidate(CandidateReport),
    /// A step was taken (step 0: the initial full substitution).
    Step(TraceStep),
    /// The search ended; `best` is its answer.
    Finished {
        /// The best strategy seen.
        best: Point,
        /// Why it stopped.
        reason: StopReason,
    },
}

struct Pending {
    mv: Move,
    modules: Vec<Module>,
    layers: Vec<usize>,
}

/// The greedy search, advanced one unit at a time.
pub struct GreedySearch {
    params: SearchParams,
    num_layers: usize,
    current: Option<Point>,
    best: Option<Point>,
    no_improve: usize,
    trace: Vec<TraceStep>,
    pending: Vec<Pending>,
    next: usize,
    leader: Option<(Point, Option<LayerStates>)>,
    finished: Option<StopReason>,
    evaluations: usize,
}

impl GreedySearch {
    /// A search over a model with `num_layers` layers, not yet started.
    pub fn new(params: SearchParams, num_layers: usize) -> GreedySearch {
        GreedySearch {
            params,
            num_layers,
            current: None,
            best: None,
            no_improve: 0,
            trace: Vec::new(),
            pending: Vec::new(),
            next: 0,
            leader: None,
            finished: None,
            evaluations: 0,
        }
    }

    /// The parameters.
    pub fn params(&self) -> SearchParams {
        self.params
    }

    /// Steps taken so far (step 0 first).
    pub fn trace(&self) -> &[TraceStep] {
        &self.trace
    }

    /// The best point so far.
    pub fn best(&self) -> Option<&Point> {
        self.best.as_ref()
    }

    /// The current greedy state.
    pub fn current(&self) -> Option<&Point> {
        self.current.as_ref()
    }

    /// Steps without improvement so far.
    pub fn no_improve(&self) -> usize {
        self.no_improve
    }

    /// Strategies this search has scored (the initial one and every candidate).
    pub fn evaluations(&self) -> usize {
        self.evaluations
    }

    /// Why the search ended, once it has.
    pub fn finished(&self) -> Option<StopReason> {
        self.finished
    }

    /// Whether the next unit of work needs no forward pass.
    pub fn next_is_cached(&self, ev: &Evaluator) -> bool {
        if self.finished.is_some() {
            return true;
        }
        match self.current {
            None => ev.answers_from_cache(&self.full(), None),
            Some(_) if self.next < self.pending.len() => {
                let p = &self.pending[self.next];
                let m = SubstitutionMatrix::product(self.num_layers, &p.modules, &p.layers);
                ev.answers_from_cache(&m, self.cutoff())
            }
            // Taking a step may recompute anchor states, but never changes a result.
            Some(_) => true,
        }
    }

    fn full(&self) -> SubstitutionMatrix {
        SubstitutionMatrix::product(
            self.num_layers,
            &Module::ALL,
            &(0..self.num_layers).collect::<Vec<_>>(),
        )
    }

    fn cutoff(&self) -> Option<Cutoff> {
        self.leader.as_ref().map(|(p, _)| Cutoff {
            alpha: self.params.alpha,
            beat: p.metrics.score,
        })
    }

    /// Does one unit of work and reports it; after the end, reports nothing.
    pub fn advance(&mut self, ev: &mut Evaluator) -> Result<Vec<SearchEvent>> {
        if self.finished.is_some() {
            return Ok(Vec::new());
        }
        if self.current.is_none() {
            return self.start(ev);
        }
        if self.next < self.pending.len() {
            return self
                .evaluate_candidate(ev)
                .map(|r| vec![SearchEvent::Candidate(r)]);
        }
        self.take_step(ev)
    }

    /// Runs to the end, handing every event to `on_event`.
    pub fn run(
        &mut self,
        ev: &mut Evaluator,
        mut on_event: impl FnMut(&SearchEvent),
    ) -> Result<Point> {
        while self.finished.is_none() {
            for e in self.advance(ev)? {
                on_event(&e);
            }
        }
        Ok(self
            .best
            .clone()
            .expect("a finished search has a best point"))
    }

    fn point(
        &self,
        ev: &Evaluator,
        mv: Move,
        modules: Vec<Module>,
        layers: Vec<usize>,
        counts: Counts,
    ) -> Point {
        Point {
            mv,
            matrix: SubstitutionMatrix::product(self.num_layers, &modules, &layers),
            metrics: ev.metrics(self.params.alpha, &counts),
            modules,
            layers,
            counts,
        }
    }

    fn start(&mut self, ev: &mut Evaluator) -> Result<Vec<SearchEvent>> {
        let full = self.full();
        let (e, states) = ev.evaluate_keeping(&full, None, true)?;
        self.evaluations += 1;
        let p = self.point(
            ev,
            Move::Start,
            Module::ALL.to_vec(),
            (0..self.num_layers).collect(),
            e.counts,
        );
        ev.set_anchor(&full, states)?;
        self.current = Some(p.clone());
        self.best = Some(p.clone());
        let step = TraceStep {
            step: 0,
            point: p,
            improved: true,
            no_improve: 0,
        };
        self.trace.push(step.clone());
        let mut events = vec![SearchEvent::Step(step)];
        events.extend(self.plan_next());
        Ok(events)
    }

    /// Lists the next step's candidates, or finishes.
    fn plan_next(&mut self) -> Option<SearchEvent> {
        let cur = self.current.as_ref().expect("started");
        let (m, l) = (&cur.modules, &cur.layers);
        let reason = if self.no_improve >= self.params.patience {
            Some(StopReason::Patience)
        } else if m.is_empty() && l.is_empty() {
            Some(StopReason::Exhausted)
        } else {
            None
        };
        let mut pending = Vec::new();
        if reason.is_none() {
            for (i, &module) in m.iter().enumerate() {
                let mut mm = m.clone();
                mm.remove(i);
                pending.push(Pending {
                    mv: Move::DropModule(module),
                    modules: mm,
                    layers: l.clone(),
                });
            }
            for (i, &layer) in l.iter().enumerate() {
                let mut ll = l.clone();
                ll.remove(i);
                pending.push(Pending {
                    mv: Move::DropLayer(layer),
                    modules: m.clone(),
                    layers: ll,
                });
            }
            pending.retain(|p| !(p.modules.is_empty() && p.layers.is_empty()));
        }
        let reason = reason.or(pending.is_empty().then_some(StopReason::Exhausted));
        self.pending = pending;
        self.next = 0;
        self.leader = None;
        reason.map(|r| {
            self.finished = Some(r);
            SearchEvent::Finished {
                best: self.best.clone().expect("started"),
                reason: r,
            }
        })
    }

    fn evaluate_candidate(&mut self, ev: &mut Evaluator) -> Result<CandidateReport> {
        let (index, total) = (self.next, self.pending.len());
        let p = &self.pending[index];
        let (mv, modules, layers) = (p.mv, p.modules.clone(), p.layers.clone());
        let matrix = SubstitutionMatrix::product(self.num_layers, &modules, &layers);
        let (e, states) = ev.evaluate_keeping(&matrix, self.cutoff(), true)?;
        self.next += 1;
        self.evaluations += 1;
        let mut report = CandidateReport {
            step: self.trace.len(),
            index,
            total,
            mv,
            matrix: matrix.clone(),
            metrics: None,
            upper_bound: e.upper_bound,
            cached: e.cached,
            start_layer: e.start_layer,
            leader: false,
        };
        if e.complete {
            let point = self.point(ev, mv, modules, layers, e.counts);
            report.metrics = Some(point.metrics);
            let beats = self
                .leader
                .as_ref()
                .is_none_or(|(l, _)| point.metrics.score > l.metrics.score);
            if beats {
                self.leader = Some((point, states));
                report.leader = true;
            }
        }
        Ok(report)
    }

    fn take_step(&mut self, ev: &mut Evaluator) -> Result<Vec<SearchEvent>> {
        let (point, states) = self
            .leader
            .take()
            .expect("a step has at least one complete candidate");
        let cur = self.current.as_ref().expect("started").metrics.score;
        let best = self.best.as_ref().expect("started").metrics.score;
        let improved = point.metrics.score > best;
        if improved {
            self.best = Some(point.clone());
            self.no_improve = 0;
        } else if point.metrics.score > cur {
            self.no_improve = 0;
        } else {
            self.no_improve += 1;
        }
        ev.set_anchor(&point.matrix, states)?;
        self.current = Some(point.clone());
        let step = TraceStep {
            step: self.trace.len(),
            point,
            improved,
            no_improve: self.no_improve,
        };
        self.trace.push(step.clone());
        let mut events = vec![SearchEvent::Step(step)];
        events.extend(self.plan_next());
        Ok(events)
    }
}

impl SearchParams {
    /// Checks α ∈ [0, 1] and patience ≥ 1.
    pub fn validated(alpha: f64, patience: usize) -> crate::error::Result<SearchParams> {
        if !(0.0..=1.0).contains(&alpha) {
            return Err(crate::error::GmsError::BadArgument {
                flag: "--alpha",
                value: alpha.to_string(),
                problem:
                    "α weights accuracy against ASR and must lie in [0, 1] (the paper uses 0.4)"
                        .into(),
            });
        }
        if patience == 0 {
            return Err(crate::error::GmsError::BadArgument {
                flag: "--patience",
                value: "0".into(),
                problem: "patience must be at least 1 (the paper uses 5)".into(),
            });
        }
        Ok(SearchParams { alpha, patience })
    }
}
