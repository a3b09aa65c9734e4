//! Scoring strategies on the proxy sets, fast and exactly (docs/caches.md says why each shortcut
//! below changes no result).
//!
//! - A strategy is run through a weight view (no weight copy): encoder modules from the
//!   donor, or a decoder adapter's LoRA pairs from the proxy adapter over the one shared base.
//! - Hidden states at the layer boundaries are kept for the victim and for recent *anchors*
//!   (the search's current state and the states it came through), as a memory budget sized
//!   from the real state size allows (every boundary, or every k-th for large models), so a
//!   strategy is run only from the deepest kept boundary where it still agrees with one of
//!   them: a "drop layer l" candidate starts at layer l, and a search replayed under a new α
//!   finds its states again. Each batch's per-layer context (the decoder's masks and rotary
//!   tables) is built once and kept beside them.
//! - Every result is cached by its cell set.
//! - Early abandonment: given the best score a step has seen, evaluation stops once the rows
//!   left cannot lift the strategy above it. Rows are counted, never estimated, so no decision
//!   changes; the partial counts stay cached and are completed if a later question needs them.

use crate::error::{GmsError, Result};
use crate::gms::score::{Baseline, Counts, Drops, Metrics};
use crate::model::encoder::{argmax_rows, count_matches};
use crate::model::layered::LayeredClassifier;
use crate::model::substitution::SubstitutionMatrix;
use crate::model::tokenize::BatchInput;
use crate::model::tokenize::EncodedSet;
use crate::model::{ModelArchitecture, Module};
use candle_core::{DType, Device, Tensor};
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;

/// Hidden states `[set][batch][boundary]`: boundary 0 is the embedding output, boundary `l` the
/// input of layer `l`, boundary `L` the last layer's output. `None` where the state plan keeps
/// no state ([`StatePlan::stride`]).
pub type LayerStates = Vec<Vec<Vec<Option<Tensor>>>>;

/// Memory all kept layer states (the victim's and the anchors') may take: half of what is
/// free when the evaluator starts, at most 2 GiB in host memory or 16 GiB on a GPU. Sizes
/// for scale (2 × 200 proxy rows, f32): MiniLM-L6 ~40 MB per full state set, BERT-large
/// ~0.45 GB, the LLM kit's SmolLM2-135M ~0.36 GB, a 7B Llama ~2.5 GB (docs/caches.md
/// §Layer-boundary states).
fn state_budget_bytes(device: &Device) -> usize {
    let (cap, free) = if device.is_cpu() {
        (2usize << 30, host_available_bytes())
    } else {
        (16usize << 30, crate::device::free_memory(device))
    };
    free.map_or(cap, |f| cap.min(f / 2))
}

/// `MemAvailable` of `/proc/meminfo` (Linux), in bytes.
fn host_available_bytes() -> Option<usize> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// More anchors than a greedy walk revisits buy nothing.
const MAX_ANCHORS: usize = 16;

/// Which layer boundaries are kept and how many anchors fit the memory budget, sized from the
/// real state size at the start of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StatePlan {
    /// Boundaries `0, k, 2k, …` (and the last, which is one token per row) are kept; 1 keeps
    /// them all. A strategy then runs from the deepest kept boundary where it agrees with a
    /// cached state, at most `k − 1` layers earlier than with every boundary kept.
    pub stride: usize,
    /// Anchors kept besides the victim's states.
    pub max_anchors: usize,
    /// Bytes of one boundary's states over both proxy sets.
    pub boundary_bytes: usize,
    /// Bytes of one kept state set under this plan.
    pub set_bytes: usize,
    /// The budget the plan fits.
    pub budget_bytes: usize,
}

impl StatePlan {
    /// The plan for `layers` layers whose states take `boundary_bytes` per boundary: the
    /// smallest stride at which the victim's states and one anchor fit `budget`, then as many
    /// anchors as fit (1 to `MAX_ANCHORS`, 16).
    pub fn new(layers: usize, boundary_bytes: usize, budget: usize) -> StatePlan {
        let set_bytes = |stride: usize| (layers / stride + 1) * boundary_bytes.max(1);
        let stride = (1..=layers.max(1))
            .find(|&s| 2 * set_bytes(s) <= budget)
            .unwrap_or(layers.max(1));
        let set = set_bytes(stride);
        StatePlan {
            stride,
            max_anchors: (budget / set).saturating_sub(1).clamp(1, MAX_ANCHORS),
            boundary_bytes,
            set_bytes: set,
            budget_bytes: budget,
        }
    }

    /// Whether boundary `b` of an `layers`-layer model is kept.
    fn keeps(&self, b: usize, layers: usize) -> bool {
        b.is_multiple_of(self.stride) || b == layers
    }

    /// The deepest kept boundary at or before `b`.
    fn floor(&self, b: usize, layers: usize) -> usize {
        if b == layers {
            b
        } else {
            b - b % self.stride
        }
    }
}

const CLEAN: usize = 0;
const SUSPECT: usize = 1;

/// Stop evaluating once the strategy cannot score above `beat` under `alpha` (drops as the
/// evaluator's [`Evaluator::drops`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cutoff {
    /// Accuracy weight of the score.
    pub alpha: f64,
    /// Score to beat strictly (an earlier candidate wins ties).
    pub beat: f64,
}

/// The answer for one strategy.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    /// Counts over the rows evaluated (all rows unless abandoned).
    pub counts: Counts,
    /// Whether every row was evaluated.
    pub complete: bool,
    /// Whether the answer needed no forward pass.
    pub cached: bool,
    /// First layer that had to run (number of layers when only the head ran; 0 from cache).
    pub start_layer: usize,
    /// For an abandoned strategy, the highest score it could still have reached.
    pub upper_bound: Option<f64>,
}

/// Work counters, for benchmarks, the status line and tests.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct EvalStats {
    /// Strategies asked for.
    pub requests: usize,
    /// Requests answered fully from the cache.
    pub cache_hits: usize,
    /// Requests that ran a forward pass (new or resumed).
    pub computed: usize,
    /// Requests that ended abandoned.
    pub abandoned: usize,
    /// Layer × batch forward runs.
    pub layer_runs: usize,
    /// Layer × batch runs skipped thanks to cached layer states.
    pub layer_runs_skipped: usize,
    /// Forward passes run only to record an anchor's layer states.
    pub anchor_runs: usize,
}

#[derive(Debug, Clone)]
struct Record {
    done: [Vec<bool>; 2],
    seen: [usize; 2],
    counts: Counts,
}

/// A cached result as a journal records it: which batches (clean, suspect) are done and the
/// counts over them. Together with the same inputs it restores the record exactly, so a
/// resumed search decides as an uninterrupted one (docs/caches.md §Result cache).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct RecordedResult {
    /// Done batches of the clean set, then of the suspect set, in batch order.
    pub done: [Vec<bool>; 2],
    /// Counts over the done batches (totals are the sets' sizes).
    pub counts: Counts,
}

impl RecordedResult {
    /// Whether every batch was done.
    pub fn is_complete(&self) -> bool {
        self.done.iter().flatten().all(|d| *d)
    }
}

/// Proxy-set evaluator over a victim and a donor (proxy) model of one architecture, encoder or
/// decoder.
pub struct Evaluator {
    pair: Box<dyn Pair>,
    sets: [EncodedSet; 2],
    /// Rows in each batch of the clean and the suspect set (what the records count in).
    rows: [Vec<usize>; 2],
    baseline_counts: Counts,
    victim_states: LayerStates,
    anchors: Vec<(SubstitutionMatrix, LayerStates)>,
    plan: StatePlan,
    records: HashMap<SubstitutionMatrix, Record>,
    order: Vec<(usize, usize)>,
    /// Reuse cached layer states (off only to measure what they save).
    pub layer_cache: bool,
    /// Allow early abandonment (off only to measure what it saves).
    pub abandonment: bool,
    /// How score drops are measured (a session setting: counts are cached, scores are not,
    /// so it may change between searches like α).
    pub drops: Drops,
    /// Work counters.
    pub stats: EvalStats,
    /// Cell sets whose record changed since [`Self::take_updated`] last ran (`None`: not
    /// tracked). A journal drains it after each unit of work.
    updated: Option<Vec<SubstitutionMatrix>>,
}

impl Evaluator {
    /// Runs the victim on both proxy sets once, keeping its layer states and baseline.
    /// `victim` and `donor` are two encoders or two decoders (see [`LayeredClassifier`]).
    pub fn new<M: LayeredClassifier>(
        victim: M,
        donor: M,
        clean: EncodedSet,
        suspect: EncodedSet,
    ) -> Result<Evaluator> {
        let sets = [clean, suspect];
        let pair = ModelPair::new(victim, donor, &sets)?;
        let rows = sets
            .each_ref()
            .map(|s| s.batches.iter().map(|b| b.labels.len()).collect());
        let mut ev = Evaluator {
            baseline_counts: Counts::default(),
            victim_states: Vec::new(),
            anchors: Vec::new(),
            plan: StatePlan::new(0, 0, 0),
            records: HashMap::new(),
            order: batch_order(&rows),
            rows,
            layer_cache: true,
            abandonment: true,
            drops: Drops::Relative,
            stats: EvalStats::default(),
            pair: Box::new(pair),
            updated: None,
            sets,
        };
        let embedded = ev.embed_all()?;
        // The plan is sized from the real states: one boundary is what the embeddings take.
        let boundary_bytes: usize = embedded
            .iter()
            .flatten()
            .flatten()
            .flatten()
            .map(|t| t.elem_count() * t.dtype().size_in_bytes())
            .sum();
        ev.plan = StatePlan::new(
            ev.num_layers(),
            boundary_bytes,
            state_budget_bytes(ev.pair.device()),
        );
        tracing::info!(plan = ?ev.plan, "layer-state plan");
        let empty = SubstitutionMatrix::empty(ev.num_layers());
        let fresh = ev.new_record();
        let (record, states) = ev.run(&empty, &embedded, 0, fresh, None, true)?;
        ev.baseline_counts = record.counts;
        ev.victim_states = states.expect("states were requested");
        Ok(ev)
    }

    /// An evaluator that holds no models, only results put in with [`Self::seed`]: it answers
    /// what its cache holds and fails with [`GmsError::NotRecorded`] for anything else (a
    /// search opened from its journal, replayed without loading a model). `rows` are the
    /// proxy sets' rows per batch, as the journal recorded them.
    pub fn recorded(
        journal: &Path,
        record: RecordedPair,
        baseline_counts: Counts,
        rows: [Vec<usize>; 2],
    ) -> Evaluator {
        let set = |len| EncodedSet {
            len,
            batches: Vec::new(),
            real_tokens: 0,
        };
        Evaluator {
            baseline_counts,
            victim_states: Vec::new(),
            anchors: Vec::new(),
            plan: StatePlan::new(0, 0, 0),
            records: HashMap::new(),
            order: batch_order(&rows),
            rows,
            // No states to keep: a search's steps then never run a model.
            layer_cache: false,
            abandonment: true,
            drops: record.drops,
            stats: EvalStats::default(),
            pair: Box::new(Recorded {
                journal: journal.to_path_buf(),
                pair: record,
            }),
            updated: None,
            sets: [
                set(baseline_counts.clean_total),
                set(baseline_counts.suspect_total),
            ],
        }
    }

    /// The device the models run on.
    pub fn device(&self) -> &Device {
        self.pair.device()
    }

    /// Whether this evaluator holds models (else it answers only from its cache).
    pub fn computes(&self) -> bool {
        self.pair.computes()
    }

    /// Rows in each batch of the clean and the suspect set, in batch order.
    pub fn batch_rows(&self) -> [Vec<usize>; 2] {
        self.rows.clone()
    }

    /// Number of transformer layers.
    pub fn num_layers(&self) -> usize {
        self.pair.num_layers()
    }

    /// The models' architecture.
    pub fn architecture(&self) -> ModelArchitecture {
        self.pair.architecture()
    }

    /// The substitutable modules of a layer, in candidate order.
    pub fn modules(&self) -> &'static [Module] {
        self.architecture().modules()
    }

    /// The cells the proxy can give the victim (every cell, except for two adapters that
    /// adapt different modules: then the cells both adapt).
    pub fn substitutable(&self) -> &SubstitutionMatrix {
        self.pair.substitutable()
    }

    /// The dtype activations are computed in.
    pub fn dtype(&self) -> DType {
        self.pair.dtype()
    }

    /// The layer-state plan in force.
    pub fn state_plan(&self) -> StatePlan {
        self.plan
    }

    /// Plans the layer states for a budget of `bytes` instead of the one measured at the
    /// start (tests and benchmarks: the coarser plans a large model gets, on a small one):
    /// recomputes the victim's states and forgets the anchors. Results are unchanged.
    pub fn set_state_budget(&mut self, bytes: usize) -> Result<()> {
        let n = self.num_layers();
        self.plan = StatePlan::new(n, self.plan.boundary_bytes, bytes);
        self.anchors.clear();
        let embedded = self.embed_all()?;
        let fresh = self.new_record();
        let (_, states) = self.run(
            &SubstitutionMatrix::empty(n),
            &embedded,
            0,
            fresh,
            None,
            true,
        )?;
        self.victim_states = states.expect("states were requested");
        Ok(())
    }

    /// Rows in the clean and suspect proxy sets.
    pub fn set_sizes(&self) -> (usize, usize) {
        (self.sets[CLEAN].len, self.sets[SUSPECT].len)
    }

    /// The victim's counts on the proxy sets.
    pub fn baseline_counts(&self) -> Counts {
        self.baseline_counts
    }

    /// The victim's accuracy and ASR on the proxy sets.
    pub fn baseline(&self) -> Baseline {
        Baseline {
            acc: self.baseline_counts.acc(),
            asr: self.baseline_counts.asr(),
        }
    }

    /// Scores complete counts against this evaluator's baseline (drops as [`Self::drops`]).
    pub fn metrics(&self, alpha: f64, counts: &Counts) -> Metrics {
        self.drops
            .metrics(alpha, self.baseline(), counts.acc(), counts.asr())
    }

    /// Whether [`Self::evaluate`] would answer without a forward pass.
    pub fn answers_from_cache(&self, matrix: &SubstitutionMatrix, cutoff: Option<Cutoff>) -> bool {
        match self.records.get(matrix) {
            Some(r) if r.is_complete() => true,
            Some(r) => cutoff
                .is_some_and(|c| self.abandonment && r.cannot_beat(self.drops, self.baseline(), c)),
            None => false,
        }
    }

    /// Scores `matrix` on the proxy sets. With a cutoff, may stop early (see module docs).
    pub fn evaluate(
        &mut self,
        matrix: &SubstitutionMatrix,
        cutoff: Option<Cutoff>,
    ) -> Result<Evaluation> {
        Ok(self.evaluate_keeping(matrix, cutoff, false)?.0)
    }

    /// Like [`Self::evaluate`], also returning the strategy's layer states when it ran
    /// completely in this call (so it can become the anchor without a second pass).
    pub fn evaluate_keeping(
        &mut self,
        matrix: &SubstitutionMatrix,
        cutoff: Option<Cutoff>,
        keep_states: bool,
    ) -> Result<(Evaluation, Option<LayerStates>)> {
        self.stats.requests += 1;
        let cutoff = cutoff.filter(|_| self.abandonment);
        let (baseline, drops) = (self.baseline(), self.drops);
        if let Some(r) = self.records.get(matrix) {
            if r.is_complete() {
                self.stats.cache_hits += 1;
                return Ok((r.answer(true, 0, None), None));
            }
            if let Some(c) = cutoff.filter(|c| r.cannot_beat(drops, baseline, *c)) {
                self.stats.cache_hits += 1;
                self.stats.abandoned += 1;
                let ub = r.upper_bound(drops, baseline, c.alpha);
                return Ok((r.answer(true, 0, Some(ub)), None));
            }
        }
        if !self.pair.computes() {
            return Err(self.pair.not_recorded());
        }
        let (start, base) = self.base_for(matrix);
        let base = base.clone();
        let partial = self.records.remove(matrix);
        let resumed = partial.is_some();
        let record = partial.unwrap_or_else(|| self.new_record());
        self.stats.computed += 1;
        let (record, states) = self.run(matrix, &base, start, record, cutoff, keep_states)?;
        let complete = record.is_complete();
        let ub = (!complete)
            .then(|| record.upper_bound(drops, baseline, cutoff.map_or(0.0, |c| c.alpha)));
        if !complete {
            self.stats.abandoned += 1;
        }
        let answer = record.answer(false, start, ub);
        self.records.insert(matrix.clone(), record);
        if let Some(u) = self.updated.as_mut() {
            u.push(matrix.clone());
        }
        Ok((answer, states.filter(|_| complete && !resumed)))
    }

    /// Starts listing the cell sets whose record changes, for [`Self::take_updated`].
    pub fn track_updates(&mut self) {
        self.updated.get_or_insert_with(Vec::new);
    }

    /// The records changed since the last call (in the order they changed), as a journal
    /// writes them; empty unless [`Self::track_updates`] was called.
    pub fn take_updated(&mut self) -> Vec<(SubstitutionMatrix, RecordedResult)> {
        let Some(list) = self.updated.as_mut() else {
            return Vec::new();
        };
        std::mem::take(list)
            .into_iter()
            .filter_map(|m| {
                let r = self.records.get(&m)?;
                let recorded = RecordedResult {
                    done: [r.done[CLEAN].clone(), r.done[SUSPECT].clone()],
                    counts: r.counts,
                };
                Some((m, recorded))
            })
            .collect()
    }

    /// Puts a journal's recorded result into the cache, as if this evaluator had computed it.
    /// Refused (with the reason) when it cannot come from these proxy sets: other batch
    /// counts, other totals, or counts that the done batches cannot hold.
    pub fn seed(
        &mut self,
        matrix: &SubstitutionMatrix,
        recorded: &RecordedResult,
    ) -> std::result::Result<(), String> {
        if matrix.num_layers() != self.num_layers() {
            return Err(format!(
                "{} layers, the model has {}",
                matrix.num_layers(),
                self.num_layers()
            ));
        }
        let mut record = self.new_record();
        let c = &recorded.counts;
        if c.clean_total != record.counts.clean_total
            || c.suspect_total != record.counts.suspect_total
        {
            return Err("set sizes differ from the proxy sets".into());
        }
        if self.rows[CLEAN].iter().sum::<usize>() != c.clean_total
            || self.rows[SUSPECT].iter().sum::<usize>() != c.suspect_total
        {
            return Err("batch sizes do not add up to the sets".into());
        }
        for set in [CLEAN, SUSPECT] {
            if recorded.done[set].len() != record.done[set].len() {
                return Err("batch counts differ from the proxy sets".into());
            }
            for (b, &d) in recorded.done[set].iter().enumerate() {
                if d {
                    record.done[set][b] = true;
                    record.seen[set] += self.rows[set][b];
                }
            }
        }
        if c.clean_correct > record.seen[CLEAN] || c.suspect_hits > record.seen[SUSPECT] {
            return Err("counts exceed the rows of the done batches".into());
        }
        record.counts = *c;
        // A complete record already here is the same numbers; never replace it by a partial one.
        if self.records.get(matrix).is_some_and(Record::is_complete) {
            return Ok(());
        }
        self.records.insert(matrix.clone(), record);
        Ok(())
    }

    /// Whether the cache holds a complete result for `matrix`.
    pub fn has_complete(&self, matrix: &SubstitutionMatrix) -> bool {
        self.records.get(matrix).is_some_and(Record::is_complete)
    }

    /// Makes `matrix` the newest anchor whose layer states later strategies may start from;
    /// reuses its states if it was an anchor before, else takes `states` or computes them.
    pub fn set_anchor(
        &mut self,
        matrix: &SubstitutionMatrix,
        states: Option<LayerStates>,
    ) -> Result<()> {
        if !self.layer_cache {
            return Ok(());
        }
        if let Some(i) = self.anchors.iter().position(|(m, _)| m == matrix) {
            let known = self.anchors.remove(i);
            self.anchors.push(known);
            return Ok(());
        }
        let states = match states {
            Some(s) => s,
            None => {
                self.stats.anchor_runs += 1;
                let (start, base) = self.base_for(matrix);
                let base = base.clone();
                let fresh = self.new_record();
                let (_, s) = self.run(matrix, &base, start, fresh, None, true)?;
                s.expect("states were requested")
            }
        };
        self.anchors.push((matrix.clone(), states));
        if self.anchors.len() > self.plan.max_anchors {
            self.anchors.remove(0);
        }
        Ok(())
    }

    /// Correct predictions of the `matrix` model on each row of an arbitrary encoded set
    /// (test sets): a plain full forward pass, not cached here.
    pub fn count_correct(&self, matrix: &SubstitutionMatrix, set: &EncodedSet) -> Result<usize> {
        let mut correct = 0;
        for (batch, logits) in set.batches.iter().zip(self.pair.set_logits(matrix, set)?) {
            let preds = argmax_rows(&logits)?;
            correct += count_matches(&preds, &batch.labels);
        }
        Ok(correct)
    }

    /// Each row's prediction under the `matrix` view, in the file order of `set`'s rows.
    pub fn predictions(&self, matrix: &SubstitutionMatrix, set: &EncodedSet) -> Result<Vec<u32>> {
        file_order(set, self.pair.set_logits(matrix, set)?)
    }

    /// Each row's prediction by the proxy model itself (its own embeddings and head; `set`
    /// encoded with its tokenizer), in file order.
    pub fn proxy_predictions(&self, set: &EncodedSet) -> Result<Vec<u32>> {
        file_order(set, self.pair.donor_logits(set)?)
    }

    /// An evaluator over the same victim and proxy, scoring other proxy sets (what
    /// `--signal filtered` searches with); the cache starts empty, the settings are kept.
    pub fn with_sets(&self, clean: EncodedSet, suspect: EncodedSet) -> Result<Evaluator> {
        let mut ev = self.pair.with_sets(clean, suspect)?;
        ev.layer_cache = self.layer_cache;
        ev.abandonment = self.abandonment;
        ev.drops = self.drops;
        Ok(ev)
    }

    fn embed_all(&self) -> Result<LayerStates> {
        let n = self.num_layers();
        self.sets
            .iter()
            .map(|s| {
                s.batches
                    .iter()
                    .map(|b| {
                        let mut states = vec![None; n + 1];
                        states[0] = Some(self.pair.embed(&b.input)?);
                        Ok(states)
                    })
                    .collect()
            })
            .collect()
    }

    /// The deepest cached boundary `matrix` can start from, and the states holding it.
    fn base_for(&self, matrix: &SubstitutionMatrix) -> (usize, &LayerStates) {
        let n = self.num_layers();
        if !self.layer_cache {
            return (0, &self.victim_states);
        }
        let empty = SubstitutionMatrix::empty(n);
        let mut best = (
            self.plan.floor(matrix.common_prefix(&empty), n),
            &self.victim_states,
        );
        for (m, s) in self.anchors.iter().rev() {
            let p = self.plan.floor(matrix.common_prefix(m), n);
            if p > best.0 {
                best = (p, s);
            }
        }
        best
    }

    fn new_record(&self) -> Record {
        Record {
            done: [
                vec![false; self.rows[CLEAN].len()],
                vec![false; self.rows[SUSPECT].len()],
            ],
            seen: [0, 0],
            counts: Counts {
                clean_total: self.sets[CLEAN].len,
                suspect_total: self.sets[SUSPECT].len,
                ..Counts::default()
            },
        }
    }

    /// Runs layers `start..` of the `matrix` view on every batch the record has not done,
    /// starting from `base` states, counting and (optionally) keeping states.
    fn run(
        &mut self,
        matrix: &SubstitutionMatrix,
        base: &LayerStates,
        start: usize,
        mut record: Record,
        cutoff: Option<Cutoff>,
        keep_states: bool,
    ) -> Result<(Record, Option<LayerStates>)> {
        let n = self.num_layers();
        let (baseline, drops) = (self.baseline(), self.drops);
        let mut states: Option<LayerStates> = keep_states.then(|| {
            self.sets
                .iter()
                .map(|s| vec![Vec::new(); s.batches.len()])
                .collect()
        });
        let pending: Vec<(usize, usize)> = self
            .order
            .iter()
            .copied()
            .filter(|&(set, b)| !record.done[set][b])
            .collect();
        let workers = crate::model::threads::batch_workers(self.pair.device());
        let keep = keep_states.then_some(self.plan);
        // One round runs `workers` batches side by side; the cutoff is checked between rounds.
        for round in pending.chunks(workers) {
            let outcomes = self
                .pair
                .run_round(matrix, start, round, base, &self.sets, keep)?;
            for (&(set, b), (hits, kept)) in round.iter().zip(outcomes) {
                self.stats.layer_runs += n - start;
                self.stats.layer_runs_skipped += start;
                record.add(set, b, self.rows[set][b], hits);
                if let Some(s) = states.as_mut() {
                    s[set][b] = kept;
                }
            }
            if let Some(c) = cutoff {
                if !record.is_complete() && record.cannot_beat(drops, baseline, c) {
                    return Ok((record, None));
                }
            }
        }
        Ok((record, states))
    }
}

/// The victim and donor of one architecture as the evaluator runs them: object-safe, so one
/// evaluator serves encoders and decoders.
trait Pair: Send + Sync {
    fn architecture(&self) -> ModelArchitecture;
    fn num_layers(&self) -> usize;
    fn device(&self) -> &Device;
    fn dtype(&self) -> DType;
    fn substitutable(&self) -> &SubstitutionMatrix;
    /// The victim's states at boundary 0.
    fn embed(&self, x: &BatchInput) -> Result<Tensor>;
    /// Runs the proxy-set batches of `round` side by side through layers `start..` of the
    /// `matrix` view, from `base` states: each batch's hits and, when `keep` names the plan,
    /// its states at every boundary the plan keeps.
    fn run_round(
        &self,
        matrix: &SubstitutionMatrix,
        start: usize,
        round: &[(usize, usize)],
        base: &LayerStates,
        sets: &[EncodedSet; 2],
        keep: Option<StatePlan>,
    ) -> Result<Vec<(usize, Vec<Option<Tensor>>)>>;
    /// Logits of every batch of `set` under the `matrix` view (a full forward pass).
    fn set_logits(&self, matrix: &SubstitutionMatrix, set: &EncodedSet) -> Result<Vec<Tensor>>;
    /// Logits of every batch of `set` by the donor itself: its own embeddings, layers and
    /// head (`set` encoded with the donor's tokenizer).
    fn donor_logits(&self, set: &EncodedSet) -> Result<Vec<Tensor>>;
    /// A new evaluator over the same two models and other proxy sets.
    fn with_sets(&self, clean: EncodedSet, suspect: EncodedSet) -> Result<Evaluator>;
    /// Whether it holds models (a [`Recorded`] pair answers from the cache only).
    fn computes(&self) -> bool {
        true
    }
    /// The error for an evaluation it cannot do.
    fn not_recorded(&self) -> crate::error::GmsError {
        unreachable!("a pair with models computes")
    }
}

/// What a journal says of the pair it recorded: enough to replay its search from the cache
/// ([`Evaluator::recorded`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedPair {
    /// The architecture.
    pub architecture: ModelArchitecture,
    /// Layers.
    pub num_layers: usize,
    /// The cells the proxy can give.
    pub substitutable: SubstitutionMatrix,
    /// How the score measured drops.
    pub drops: Drops,
}

/// A pair without models: every forward pass is [`GmsError::NotRecorded`].
struct Recorded {
    journal: std::path::PathBuf,
    pair: RecordedPair,
}

impl Pair for Recorded {
    fn architecture(&self) -> ModelArchitecture {
        self.pair.architecture
    }

    fn num_layers(&self) -> usize {
        self.pair.num_layers
    }

    fn device(&self) -> &Device {
        &Device::Cpu
    }

    fn dtype(&self) -> DType {
        DType::F32
    }

    fn substitutable(&self) -> &SubstitutionMatrix {
        &self.pair.substitutable
    }

    fn embed(&self, _: &BatchInput) -> Result<Tensor> {
        Err(self.not_recorded())
    }

    fn run_round(
        &self,
        _: &SubstitutionMatrix,
        _: usize,
        _: &[(usize, usize)],
        _: &LayerStates,
        _: &[EncodedSet; 2],
        _: Option<StatePlan>,
    ) -> Result<Vec<(usize, Vec<Option<Tensor>>)>> {
        Err(self.not_recorded())
    }

    fn set_logits(&self, _: &SubstitutionMatrix, _: &EncodedSet) -> Result<Vec<Tensor>> {
        Err(self.not_recorded())
    }

    fn donor_logits(&self, _: &EncodedSet) -> Result<Vec<Tensor>> {
        Err(self.not_recorded())
    }

    fn with_sets(&self, _: EncodedSet, _: EncodedSet) -> Result<Evaluator> {
        Err(self.not_recorded())
    }

    fn computes(&self) -> bool {
        false
    }

    fn not_recorded(&self) -> GmsError {
        GmsError::NotRecorded {
            journal: self.journal.clone(),
        }
    }
}

/// The order batches are run in. Suspect rows first: while a candidate still carries the
/// backdoor, each suspect hit lowers its score bound by (1-α)/(n·asr0), more than a clean miss
/// does by α/(n·acc0), and backdoored candidates miss few clean rows; so early abandonment
/// triggers sooner this way round.
fn batch_order(rows: &[Vec<usize>; 2]) -> Vec<(usize, usize)> {
    (0..rows[SUSPECT].len())
        .map(|b| (SUSPECT, b))
        .chain((0..rows[CLEAN].len()).map(|b| (CLEAN, b)))
        .collect()
}

struct ModelPair<M: LayeredClassifier> {
    victim: M,
    donor: M,
    substitutable: SubstitutionMatrix,
    /// Per-batch contexts of the proxy sets, `[set][batch]`, built once.
    contexts: [Vec<M::Context>; 2],
}

impl<M: LayeredClassifier> ModelPair<M> {
    fn new(victim: M, donor: M, sets: &[EncodedSet; 2]) -> Result<ModelPair<M>> {
        let contexts = |s: &EncodedSet| -> Result<Vec<M::Context>> {
            s.batches.iter().map(|b| victim.context(&b.input)).collect()
        };
        let contexts = [contexts(&sets[0])?, contexts(&sets[1])?];
        Ok(ModelPair {
            substitutable: victim.substitutable(&donor),
            victim,
            donor,
            contexts,
        })
    }
}

impl<M: LayeredClassifier> Pair for ModelPair<M> {
    fn architecture(&self) -> ModelArchitecture {
        self.victim.architecture()
    }

    fn num_layers(&self) -> usize {
        self.victim.num_layers()
    }

    fn device(&self) -> &Device {
        self.victim.device()
    }

    fn dtype(&self) -> DType {
        self.victim.dtype()
    }

    fn substitutable(&self) -> &SubstitutionMatrix {
        &self.substitutable
    }

    fn embed(&self, x: &BatchInput) -> Result<Tensor> {
        self.victim.embed(x)
    }

    fn run_round(
        &self,
        matrix: &SubstitutionMatrix,
        start: usize,
        round: &[(usize, usize)],
        base: &LayerStates,
        sets: &[EncodedSet; 2],
        keep: Option<StatePlan>,
    ) -> Result<Vec<(usize, Vec<Option<Tensor>>)>> {
        let n = self.num_layers();
        let layers: Vec<M::Layer> = (start..n)
            .map(|l| self.victim.substituted_layer(&self.donor, matrix, l))
            .collect();
        let workers = crate::model::threads::batch_workers(self.device());
        crate::model::threads::map_parallel(round, workers, |&(set, b)| {
            let batch = &sets[set].batches[b];
            let ctx = &self.contexts[set][b];
            let mut h = base[set][b][start]
                .clone()
                .expect("runs start at a kept boundary");
            let mut kept: Vec<Option<Tensor>> = Vec::new();
            if keep.is_some() {
                kept.extend(base[set][b][..=start].iter().cloned());
            }
            for (i, layer) in layers.iter().enumerate() {
                let l = start + i;
                h = self.victim.layer_forward(layer, l, &h, ctx, l + 1 == n)?;
                if let Some(plan) = keep {
                    kept.push(plan.keeps(l + 1, n).then(|| h.clone()));
                }
            }
            let preds = argmax_rows(&self.victim.head(&h, &batch.input)?)?;
            Ok((count_matches(&preds, &batch.labels), kept))
        })
    }

    fn set_logits(&self, matrix: &SubstitutionMatrix, set: &EncodedSet) -> Result<Vec<Tensor>> {
        self.victim.view(&self.donor, matrix).set_logits(set)
    }

    fn donor_logits(&self, set: &EncodedSet) -> Result<Vec<Tensor>> {
        self.donor.set_logits(set)
    }

    fn with_sets(&self, clean: EncodedSet, suspect: EncodedSet) -> Result<Evaluator> {
        Evaluator::new(self.victim.clone(), self.donor.clone(), clean, suspect)
    }
}

/// Predictions from per-batch logits, put back in the set's file order.
fn file_order(set: &EncodedSet, logits: Vec<Tensor>) -> Result<Vec<u32>> {
    let mut out = vec![0; set.len];
    for (batch, logits) in set.batches.iter().zip(logits) {
        for (&r, p) in batch.rows.iter().zip(argmax_rows(&logits)?) {
            out[r] = p;
        }
    }
    Ok(out)
}

impl Record {
    fn is_complete(&self) -> bool {
        self.seen[CLEAN] == self.counts.clean_total
            && self.seen[SUSPECT] == self.counts.suspect_total
    }

    fn add(&mut self, set: usize, batch: usize, rows: usize, hits: usize) {
        self.done[set][batch] = true;
        self.seen[set] += rows;
        if set == CLEAN {
            self.counts.clean_correct += hits;
        } else {
            self.counts.suspect_hits += hits;
        }
    }

    /// The best score still reachable: every clean row left correct, every suspect row left
    /// missed by the attack.
    fn upper_bound(&self, drops: Drops, baseline: Baseline, alpha: f64) -> f64 {
        let c = &self.counts;
        let best_clean = c.clean_correct + (c.clean_total - self.seen[CLEAN]);
        let acc = if c.clean_total == 0 {
            0.0
        } else {
            best_clean as f64 / c.clean_total as f64
        };
        drops.metrics(alpha, baseline, acc, c.asr()).score
    }

    fn cannot_beat(&self, drops: Drops, baseline: Baseline, c: Cutoff) -> bool {
        self.upper_bound(drops, baseline, c.alpha) <= c.beat
    }

    fn answer(&self, cached: bool, start_layer: usize, upper_bound: Option<f64>) -> Evaluation {
        Evaluation {
            counts: self.counts,
            complete: self.is_complete(),
            cached,
            start_layer,
            upper_bound,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_plan_fits_the_budget() {
        // The encoder kit: every boundary, 16 anchors.
        let p = StatePlan::new(6, 6 << 20, 2 << 30);
        assert_eq!((p.stride, p.max_anchors), (1, MAX_ANCHORS));
        // A 7B shape on the kit's proxy sets (~82 MB per boundary, 32 layers) in 2 GiB:
        // every third boundary, the victim and one anchor.
        let p = StatePlan::new(32, 82 << 20, 2 << 30);
        assert_eq!(p.stride, 3);
        assert!(2 * p.set_bytes <= p.budget_bytes);
        assert_eq!(p.max_anchors, 1);
        assert_eq!(
            (p.floor(5, 32), p.floor(6, 32), p.floor(32, 32)),
            (3, 6, 32)
        );
        assert!(p.keeps(32, 32) && p.keeps(0, 32) && !p.keeps(31, 32));
        // Nothing fits: the coarsest plan, still one anchor.
        let p = StatePlan::new(4, 1 << 30, 1 << 20);
        assert_eq!((p.stride, p.max_anchors), (4, 1));
    }
}
