//! Scoring strategies on the proxy sets, fast and exactly (docs/caches.md says why each shortcut
//! below changes no result).
//!
//! - A strategy is run through a weight view (no weight copy).
//! - Hidden states at every layer boundary are kept for the victim and for recent *anchors*
//!   (the search's current state and the states it came through, as memory allows), so a
//!   strategy is run only from the first layer where it differs from one of them: a "drop
//!   layer l" candidate starts at layer l, and a search replayed under a new α finds its
//!   states again.
//! - Every result is cached by its cell set.
//! - Early abandonment: given the best score a step has seen, evaluation stops once the rows
//!   left cannot lift the strategy above it. Rows are counted, never estimated, so no decision
//!   changes; the partial counts stay cached and are completed if a later question needs them.

use crate::error::Result;
use crate::gms::score::{metrics, score_counts, Baseline, Counts, Metrics};
use crate::model::encoder::{argmax_rows, count_matches, Classifier};
use crate::model::substitution::{substituted_layer, SubstitutionMatrix};
use crate::model::tokenize::EncodedSet;
use candle_core::Tensor;
use serde::Serialize;
use std::collections::HashMap;

/// Hidden states `[set][batch][boundary]`: boundary 0 is the embedding output, boundary `l` the
/// input of layer `l`, boundary `L` the last layer's output.
pub type LayerStates = Vec<Vec<Vec<Tensor>>>;

/// Memory allowed for anchor layer states: 1 GiB in host memory, 8 GiB on a GPU (MiniLM-L6 on
/// the encoder kit's proxy sets: ~40 MB per state; BERT-large: ~0.45 GB; docs/caches.md
/// §Layer-boundary states).
fn anchor_budget_bytes(device: &candle_core::Device) -> usize {
    if device.is_cpu() {
        1 << 30
    } else {
        8 << 30
    }
}

/// More anchors than a greedy walk revisits buy nothing.
const MAX_ANCHORS: usize = 16;

const CLEAN: usize = 0;
const SUSPECT: usize = 1;

/// Stop evaluating once the strategy cannot score above `beat` under `alpha`.
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

/// Proxy-set evaluator over a victim and a donor (proxy) model.
pub struct Evaluator {
    victim: Classifier,
    donor: Classifier,
    sets: [EncodedSet; 2],
    baseline_counts: Counts,
    victim_states: LayerStates,
    anchors: Vec<(SubstitutionMatrix, LayerStates)>,
    max_anchors: usize,
    records: HashMap<SubstitutionMatrix, Record>,
    order: Vec<(usize, usize)>,
    /// Reuse cached layer states (off only to measure what they save).
    pub layer_cache: bool,
    /// Allow early abandonment (off only to measure what it saves).
    pub abandonment: bool,
    /// Work counters.
    pub stats: EvalStats,
    /// Cell sets whose record changed since [`Self::take_updated`] last ran (`None`: not
    /// tracked). A journal drains it after each unit of work.
    updated: Option<Vec<SubstitutionMatrix>>,
}

impl Evaluator {
    /// Runs the victim on both proxy sets once, keeping its layer states and baseline.
    pub fn new(
        victim: Classifier,
        donor: Classifier,
        clean: EncodedSet,
        suspect: EncodedSet,
    ) -> Result<Evaluator> {
        let sets = [clean, suspect];
        // Suspect rows first: while a candidate still carries the backdoor, each suspect hit
        // lowers its score bound by (1-α)/(n·asr0), more than a clean miss does by
        // α/(n·acc0), and backdoored candidates miss few clean rows; so early abandonment
        // triggers sooner this way round.
        let order = (0..sets[SUSPECT].batches.len())
            .map(|b| (SUSPECT, b))
            .chain((0..sets[CLEAN].batches.len()).map(|b| (CLEAN, b)))
            .collect();
        let mut ev = Evaluator {
            baseline_counts: Counts::default(),
            victim_states: Vec::new(),
            anchors: Vec::new(),
            max_anchors: 1,
            records: HashMap::new(),
            order,
            layer_cache: true,
            abandonment: true,
            stats: EvalStats::default(),
            updated: None,
            victim,
            donor,
            sets,
        };
        let empty = SubstitutionMatrix::empty(ev.num_layers());
        let embedded = ev.embed_all()?;
        let fresh = ev.new_record();
        let (record, states) = ev.run(&empty, &embedded, 0, fresh, None, true)?;
        ev.baseline_counts = record.counts;
        let states = states.expect("states were requested");
        let bytes: usize = states
            .iter()
            .flatten()
            .flatten()
            .map(|t| t.elem_count() * t.dtype().size_in_bytes())
            .sum();
        ev.max_anchors =
            (anchor_budget_bytes(ev.victim.device()) / bytes.max(1)).clamp(1, MAX_ANCHORS);
        ev.victim_states = states;
        Ok(ev)
    }

    /// Number of transformer layers.
    pub fn num_layers(&self) -> usize {
        self.victim.layers.len()
    }

    /// The victim model.
    pub fn victim(&self) -> &Classifier {
        &self.victim
    }

    /// The donor (proxy) model.
    pub fn donor(&self) -> &Classifier {
        &self.donor
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

    /// Scores complete counts against this evaluator's baseline.
    pub fn metrics(&self, alpha: f64, counts: &Counts) -> Metrics {
        score_counts(alpha, self.baseline(), counts)
    }

    /// Whether [`Self::evaluate`] would answer without a forward pass.
    pub fn answers_from_cache(&self, matrix: &SubstitutionMatrix, cutoff: Option<Cutoff>) -> bool {
        match self.records.get(matrix) {
            Some(r) if r.is_complete() => true,
            Some(r) => {
                cutoff.is_some_and(|c| self.abandonment && r.cannot_beat(self.baseline(), c))
            }
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
        let baseline = self.baseline();
        if let Some(r) = self.records.get(matrix) {
            if r.is_complete() {
                self.stats.cache_hits += 1;
                return Ok((r.answer(true, 0, None), None));
            }
            if let Some(c) = cutoff.filter(|c| r.cannot_beat(baseline, *c)) {
                self.stats.cache_hits += 1;
                self.stats.abandoned += 1;
                let ub = r.upper_bound(baseline, c.alpha);
                return Ok((r.answer(true, 0, Some(ub)), None));
            }
        }
        let (start, base) = self.base_for(matrix);
        let base = base.clone();
        let partial = self.records.remove(matrix);
        let resumed = partial.is_some();
        let record = partial.unwrap_or_else(|| self.new_record());
        self.stats.computed += 1;
        let (record, states) = self.run(matrix, &base, start, record, cutoff, keep_states)?;
        let complete = record.is_complete();
        let ub = (!complete).then(|| record.upper_bound(baseline, cutoff.map_or(0.0, |c| c.alpha)));
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
        for set in [CLEAN, SUSPECT] {
            if recorded.done[set].len() != record.done[set].len() {
                return Err("batch counts differ from the proxy sets".into());
            }
            for (b, &d) in recorded.done[set].iter().enumerate() {
                if d {
                    record.done[set][b] = true;
                    record.seen[set] += self.sets[set].batches[b].labels.len();
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
        if self.anchors.len() > self.max_anchors {
            self.anchors.remove(0);
        }
        Ok(())
    }

    /// Correct predictions of the `matrix` model on each row of an arbitrary encoded set
    /// (test sets): a plain full forward pass, not cached here.
    pub fn count_correct(&self, matrix: &SubstitutionMatrix, set: &EncodedSet) -> Result<usize> {
        let model = crate::model::weight_view(&self.victim, &self.donor, matrix);
        let mut correct = 0;
        for (batch, logits) in set.batches.iter().zip(model.set_logits(set)?) {
            let preds = argmax_rows(&logits)?;
            correct += count_matches(&preds, &batch.labels);
        }
        Ok(correct)
    }

    fn embed_all(&self) -> Result<LayerStates> {
        self.sets
            .iter()
            .map(|s| {
                s.batches
                    .iter()
                    .map(|b| Ok(vec![self.victim.embed(&b.input)?]))
                    .collect()
            })
            .collect()
    }

    /// The deepest cached boundary `matrix` can start from, and the states holding it.
    fn base_for(&self, matrix: &SubstitutionMatrix) -> (usize, &LayerStates) {
        if !self.layer_cache {
            return (0, &self.victim_states);
        }
        let empty = SubstitutionMatrix::empty(self.num_layers());
        let mut best = (matrix.common_prefix(&empty), &self.victim_states);
        for (m, s) in self.anchors.iter().rev() {
            let p = matrix.common_prefix(m);
            if p > best.0 {
                best = (p, s);
            }
        }
        best
    }

    fn new_record(&self) -> Record {
        Record {
            done: [
                vec![false; self.sets[CLEAN].batches.len()],
                vec![false; self.sets[SUSPECT].batches.len()],
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
        let layers: Vec<_> = (start..n)
            .map(|l| substituted_layer(&self.victim.layers[l], &self.donor.layers[l], matrix, l))
            .collect();
        let baseline = self.baseline();
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
        let workers = crate::model::threads::batch_workers(self.victim.device());
        // One round runs `workers` batches side by side; the cutoff is checked between rounds.
        for round in pending.chunks(workers) {
            let outcomes = crate::model::threads::map_parallel(round, workers, |&(set, b)| {
                let batch = &self.sets[set].batches[b];
                let mut h = base[set][b][start].clone();
                let mut kept: Vec<Tensor> = Vec::new();
                if keep_states {
                    kept.extend(base[set][b][..=start].iter().cloned());
                }
                for (i, layer) in layers.iter().enumerate() {
                    let last = start + i + 1 == n;
                    h = self
                        .victim
                        .layer_forward(layer, &h, &batch.input.attention_bias, last)?;
                    if keep_states {
                        kept.push(h.clone());
                    }
                }
                let preds = argmax_rows(&self.victim.head(&h)?)?;
                let hits = count_matches(&preds, &batch.labels);
                Ok((hits, kept))
            })?;
            for (&(set, b), (hits, kept)) in round.iter().zip(outcomes) {
                self.stats.layer_runs += layers.len();
                self.stats.layer_runs_skipped += start;
                record.add(set, b, self.sets[set].batches[b].labels.len(), hits);
                if let Some(s) = states.as_mut() {
                    s[set][b] = kept;
                }
            }
            if let Some(c) = cutoff {
                if !record.is_complete() && record.cannot_beat(baseline, c) {
                    return Ok((record, None));
                }
            }
        }
        Ok((record, states))
    }
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
    fn upper_bound(&self, baseline: Baseline, alpha: f64) -> f64 {
        let c = &self.counts;
        let best_clean = c.clean_correct + (c.clean_total - self.seen[CLEAN]);
        let acc = if c.clean_total == 0 {
            0.0
        } else {
            best_clean as f64 / c.clean_total as f64
        };
        metrics(alpha, baseline, acc, c.asr()).score
    }

    fn cannot_beat(&self, baseline: Baseline, c: Cutoff) -> bool {
        self.upper_bound(baseline, c.alpha) <= c.beat
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
