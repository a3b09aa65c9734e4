//! The paper's greedy search over product sets `M × L` as a step-wise state machine.
//!
//! docs/algorithm.md §Search: start from all modules × all layers; each step scores every
//! candidate that drops one module (in the architecture's order: Q,K,V,O,F,P for encoders,
//! Q,K,V,O,G,U,D for decoders) or one layer (ascending), moves to the best (first on ties)
//! whether or not it improves, and stops after `patience` steps without a new best. With
//! absolute drops ([`Drops::Absolute`], the reference's decoder search) the initial full
//! substitution is never eligible as best and only a new best resets patience.
//! [`GreedySearch::advance`] does one unit of work (one candidate, or the move that ends a
//! step), so a worker can pause, change α, or answer the UI between units.

use crate::error::Result;
use crate::gms::evaluator::{Cutoff, Evaluator, LayerStates};
use crate::gms::score::{Counts, Drops, Metrics};
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
    /// Give one cell (layer, module) back to the victim (the `cells` mode, src/gms/modes).
    DropCell(usize, Module),
    /// Take one cell (layer, module) from the proxy again (the `cells` mode).
    AddCell(usize, Module),
    /// Go back to the best point so far before searching on (where the `cells` mode starts
    /// after the paper's search).
    ReturnToBest,
}

impl Move {
    /// The one spelling of a move, with `minus` marking a drop: `−` on screen (Display), `-`
    /// in the strategy JSON ([`Move::ascii`]).
    fn write_with(self, f: &mut impl fmt::Write, minus: char) -> fmt::Result {
        match self {
            Move::Start => write!(f, "start"),
            Move::DropModule(m) => write!(f, "{minus}module {m}"),
            Move::DropLayer(l) => write!(f, "{minus}layer {l}"),
            Move::DropCell(l, m) => write!(f, "{minus}cell {l} {m}"),
            Move::AddCell(l, m) => write!(f, "+cell {l} {m}"),
            Move::ReturnToBest => write!(f, "back to best"),
        }
    }

    /// The move in ASCII (`start`, `-module Q`, `-layer 3`, `-cell 3 Q`, `+cell 3 Q`,
    /// `back to best`), as the strategy JSON spells it for scripts.
    pub fn ascii(self) -> String {
        let mut s = String::new();
        self.write_with(&mut s, '-').expect("writing to a String");
        s
    }
}

/// People read `−module Q` (a real minus sign).
impl fmt::Display for Move {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_with(f, '−')
    }
}

/// Parses either spelling ([`Move::ascii`] or Display).
impl std::str::FromStr for Move {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Move, String> {
        let unknown = || {
            format!(
                "unknown move \"{text}\" (expected start, -module X, -layer N, -cell N X, \
                 +cell N X or back to best)"
            )
        };
        match text {
            "start" => return Ok(Move::Start),
            "back to best" => return Ok(Move::ReturnToBest),
            _ => {}
        }
        let cell = |spec: &str| -> Option<(usize, Module)> {
            let (layer, module) = spec.split_once(' ')?;
            let mut letters = module.chars();
            let m = letters.next().and_then(Module::from_letter)?;
            letters.next().is_none().then_some(())?;
            Some((layer.parse().ok()?, m))
        };
        if let Some(spec) = text.strip_prefix("+cell ") {
            return cell(spec)
                .map(|(l, m)| Move::AddCell(l, m))
                .ok_or_else(unknown);
        }
        let drop = text
            .strip_prefix('-')
            .or_else(|| text.strip_prefix('−'))
            .ok_or_else(unknown)?;
        if let Some(spec) = drop.strip_prefix("cell ") {
            return cell(spec)
                .map(|(l, m)| Move::DropCell(l, m))
                .ok_or_else(unknown);
        }
        if let Some(m) = drop.strip_prefix("module ") {
            let mut letters = m.chars();
            return match (letters.next().and_then(Module::from_letter), letters.next()) {
                (Some(module), None) => Ok(Move::DropModule(module)),
                _ => Err(unknown()),
            };
        }
        match drop.strip_prefix("layer ").map(str::parse) {
            Some(Ok(layer)) => Ok(Move::DropLayer(layer)),
            _ => Err(unknown()),
        }
    }
}

/// A scored product-set strategy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// How it was reached from the previous state.
    #[serde(rename = "move")]
    pub mv: Move,
    /// Substituted module types, in the architecture's order.
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

impl Point {
    /// A point for any cell set; `modules` and `layers` describe it as
    /// [`product_cover`] does (the finer modes visit non-product sets).
    pub fn of_matrix(
        mv: Move,
        matrix: SubstitutionMatrix,
        counts: Counts,
        metrics: Metrics,
    ) -> Point {
        let (modules, layers) = product_cover(&matrix);
        Point {
            mv,
            modules,
            layers,
            matrix,
            counts,
            metrics,
        }
    }
}

/// A cell set as `(modules, layers)`: the product set itself when it is one, else every
/// module and every layer used somewhere (the strategy JSON's `modules` / `layers`).
pub fn product_cover(matrix: &SubstitutionMatrix) -> (Vec<Module>, Vec<usize>) {
    matrix.as_product().unwrap_or_else(|| {
        let cells = matrix.cells();
        let mut m: Vec<Module> = cells.iter().map(|c| c.1).collect();
        m.sort();
        m.dedup();
        let mut l: Vec<usize> = cells.iter().map(|c| c.0).collect();
        l.dedup();
        (m, l)
    })
}

/// One taken greedy step (step 0 is the initial full substitution).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceStep {
    /// Step number.
    pub step: usize,
    /// The state moved to.
    pub point: Point,
    /// Whether it is a new best (never step 0 with absolute drops).
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
    /// Why a search stops after taking a step, if it does: its patience is spent, or it has
    /// no candidate left.
    pub fn after_step(patience_spent: bool, no_candidates: bool) -> Option<StopReason> {
        if patience_spent {
            Some(StopReason::Patience)
        } else if no_candidates {
            Some(StopReason::Exhausted)
        } else {
            None
        }
    }

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

/// A strategy one greedy step may move to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The move that reaches it.
    pub mv: Move,
    /// Its substituted module types.
    pub modules: Vec<Module>,
    /// Its substituted layers.
    pub layers: Vec<usize>,
}

impl Candidate {
    /// Its cell set in a model of `num_layers` layers.
    pub fn matrix(&self, num_layers: usize) -> SubstitutionMatrix {
        SubstitutionMatrix::product(num_layers, &self.modules, &self.layers)
    }
}

/// The candidates of a greedy step from the product set `modules × layers`, in the search's
/// order (docs/algorithm.md §Search): drop each module in turn (in the order of `modules`,
/// which is the architecture's), then each layer
/// (ascending), skipping a candidate whose sets are both empty. The first best wins ties, so
/// this order decides results; the TUI uses it too, to mark the candidate in flight.
pub fn candidates(modules: &[Module], layers: &[usize]) -> Vec<Candidate> {
    let without = |i: usize, v: &[Module]| [&v[..i], &v[i + 1..]].concat();
    let drop_module = modules.iter().enumerate().map(|(i, &m)| Candidate {
        mv: Move::DropModule(m),
        modules: without(i, modules),
        layers: layers.to_vec(),
    });
    let drop_layer = layers.iter().enumerate().map(|(i, &l)| Candidate {
        mv: Move::DropLayer(l),
        modules: modules.to_vec(),
        layers: [&layers[..i], &layers[i + 1..]].concat(),
    });
    drop_module
        .chain(drop_layer)
        .filter(|c| !(c.modules.is_empty() && c.layers.is_empty()))
        .collect()
}

/// The greedy search, advanced one unit at a time.
pub struct GreedySearch {
    params: SearchParams,
    num_layers: usize,
    current: Option<Point>,
    best: Option<Point>,
    no_improve: usize,
    trace: Vec<TraceStep>,
    pending: Vec<Candidate>,
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

    /// The best point so far (none before the first step with absolute drops, whose start
    /// is never eligible).
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
            None => {
                let (modules, layers) = start_sets(ev);
                ev.answers_from_cache(&self.matrix(ev, &modules, &layers), None)
            }
            Some(_) if self.next < self.pending.len() => {
                let c = &self.pending[self.next];
                ev.answers_from_cache(&self.matrix(ev, &c.modules, &c.layers), self.cutoff())
            }
            // Taking a step may recompute anchor states, but never changes a result.
            Some(_) => true,
        }
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
        Ok(self.answer())
    }

    /// The search's answer: the best point, or (absolute drops, stopped before any step) the
    /// start.
    fn answer(&self) -> Point {
        self.best
            .clone()
            .or_else(|| self.current.clone())
            .expect("a finished search has scored its start")
    }

    /// The cell set of `modules × layers`, limited to the cells the proxy can give.
    fn matrix(&self, ev: &Evaluator, modules: &[Module], layers: &[usize]) -> SubstitutionMatrix {
        SubstitutionMatrix::product(self.num_layers, modules, layers)
            .intersection(ev.substitutable())
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
            matrix: self.matrix(ev, &modules, &layers),
            metrics: ev.metrics(self.params.alpha, &counts),
            modules,
            layers,
            counts,
        }
    }

    fn start(&mut self, ev: &mut Evaluator) -> Result<Vec<SearchEvent>> {
        let (modules, layers) = start_sets(ev);
        let full = self.matrix(ev, &modules, &layers);
        let (e, states) = ev.evaluate_keeping(&full, None, true)?;
        self.evaluations += 1;
        let p = self.point(ev, Move::Start, modules, layers, e.counts);
        ev.set_anchor(&full, states)?;
        self.current = Some(p.clone());
        // The reference's decoder search starts its best at −∞ (docs/algorithm.md §The
        // reference's decoder search).
        let eligible = ev.drops == Drops::Relative;
        self.best = eligible.then(|| p.clone());
        let step = TraceStep {
            step: 0,
            point: p,
            improved: eligible,
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
        let patience_spent = self.no_improve >= self.params.patience;
        self.pending = if patience_spent {
            Vec::new()
        } else {
            candidates(&cur.modules, &cur.layers)
        };
        self.next = 0;
        self.leader = None;
        let reason = StopReason::after_step(patience_spent, self.pending.is_empty());
        reason.map(|r| {
            self.finished = Some(r);
            SearchEvent::Finished {
                best: self.answer(),
                reason: r,
            }
        })
    }

    fn evaluate_candidate(&mut self, ev: &mut Evaluator) -> Result<CandidateReport> {
        let (index, total) = (self.next, self.pending.len());
        let Candidate {
            mv,
            modules,
            layers,
        } = self.pending[index].clone();
        let matrix = self.matrix(ev, &modules, &layers);
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
        let improved = self
            .best
            .as_ref()
            .is_none_or(|b| point.metrics.score > b.metrics.score);
        // The reference's decoder search resets patience only on a new best.
        let beats_current = ev.drops == Drops::Relative && point.metrics.score > cur;
        if improved {
            self.best = Some(point.clone());
            self.no_improve = 0;
        } else if beats_current {
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

/// Where the search starts: every module of the architecture and every layer that has a cell
/// the proxy can give (all of them, unless two adapters adapt different modules).
pub fn start_sets(ev: &Evaluator) -> (Vec<Module>, Vec<usize>) {
    let cells = ev.substitutable().cells();
    let modules = ev
        .modules()
        .iter()
        .copied()
        .filter(|m| cells.iter().any(|c| c.1 == *m))
        .collect();
    let mut layers: Vec<usize> = cells.iter().map(|c| c.0).collect();
    layers.dedup();
    (modules, layers)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_parse_from_either_spelling() {
        for mv in [
            Move::Start,
            Move::DropModule(Module::F),
            Move::DropLayer(11),
            Move::DropCell(3, Module::Q),
            Move::AddCell(0, Module::P),
            Move::ReturnToBest,
        ] {
            assert_eq!(mv.ascii().parse::<Move>(), Ok(mv));
            assert_eq!(mv.to_string().parse::<Move>(), Ok(mv));
        }
        assert_eq!(Move::DropModule(Module::Q).ascii(), "-module Q");
        assert_eq!(Move::DropLayer(3).to_string(), "−layer 3");
        assert_eq!(Move::DropCell(3, Module::Q).ascii(), "-cell 3 Q");
        assert_eq!(Move::AddCell(3, Module::Q).ascii(), "+cell 3 Q");
        for bad in [
            "",
            "stop",
            "-module",
            "-module QK",
            "-module X",
            "-layer",
            "+layer 1",
            "-cell 3",
            "-cell Q 3",
            "+cell 3 QK",
            "+module Q",
        ] {
            assert!(bad.parse::<Move>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn candidates_drop_modules_then_layers_and_skip_the_empty_set() {
        let c = candidates(&[Module::K, Module::P], &[0, 2]);
        let moves: Vec<Move> = c.iter().map(|c| c.mv).collect();
        assert_eq!(
            moves,
            [
                Move::DropModule(Module::K),
                Move::DropModule(Module::P),
                Move::DropLayer(0),
                Move::DropLayer(2)
            ]
        );
        assert_eq!(
            (c[1].modules.as_slice(), c[1].layers.as_slice()),
            (&[Module::K][..], &[0, 2][..])
        );
        assert_eq!(c[2].layers, [2]);
        // A candidate is skipped only when both of its sets are empty (docs/algorithm.md §Search).
        assert_eq!(candidates(&[Module::V], &[4]).len(), 2);
        assert!(candidates(&[], &[4]).is_empty());
        assert!(candidates(&[], &[]).is_empty());
    }
}
