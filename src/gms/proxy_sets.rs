//! Building GMS's proxy sets from a (possibly poisoned) training set and its victim
//! (docs/algorithm.md §Proxy sets): D_c = rows sampled at random, D_p = the rows the victim
//! found easiest, by mean over epochs of 1/(1 − p(label)).

use crate::data::dynamics::{inverse_gap, TrainingDynamics, DYNAMICS_FILE};
use crate::data::{Dataset, Example};
use crate::error::{GmsError, Result};
use crate::model::LoadedModel;
use candle_core::{Device, D};
use rand::rngs::StdRng;
use rand::seq::index::sample;
use rand::SeedableRng;
use std::path::Path;

/// Rows per proxy set: the paper's and the reference implementation's default.
pub const DEFAULT_SIZE: usize = 200;

/// Where the suspicion scores came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum ScoreSource {
    /// The victim folder's per-epoch record, over this many epochs.
    Dynamics {
        /// Epochs recorded.
        epochs: usize,
    },
    /// One pass of the final victim over the training set.
    OnePass,
}

/// Salt of the clean sample's random stream (see `data::poison`'s note: with the same seed
/// unsalted, the clean sample would be the very rows `gms poison` poisoned).
const STREAM: u64 = u64::from_le_bytes(*b"gms-prox");

/// The two proxy sets.
#[derive(Debug, Clone)]
pub struct ProxySets {
    /// D_c: random rows, in file order.
    pub clean: Dataset,
    /// D_p: the most suspicious rows, most suspicious first.
    pub suspect: Dataset,
    /// Indices (into the training set) of the clean rows, ascending.
    pub clean_rows: Vec<usize>,
    /// Indices of the suspect rows, in rank order.
    pub suspect_rows: Vec<usize>,
    /// How rows were ranked.
    pub source: ScoreSource,
}

/// Picks `size` rows at random (seeded) for D_c and the `size` highest `scores` for D_p
/// (ties: the earlier row first). Each set is capped at the training set's size.
pub fn select(
    train: &Dataset,
    scores: &[f64],
    size: usize,
    seed: u64,
    source: ScoreSource,
) -> Result<ProxySets> {
    if size == 0 {
        return Err(GmsError::BadArgument {
            flag: "--size",
            value: "0".into(),
            problem: "a proxy set needs at least one row".into(),
        });
    }
    let n = train.len();
    debug_assert_eq!(scores.len(), n);
    let k = size.min(n);
    let (clean, clean_rows) = sample_clean(train, k, seed);
    let mut ranked: Vec<usize> = (0..n).collect();
    ranked.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    ranked.truncate(k);
    let pick = |rows: &[usize], name: &str| -> Dataset {
        let examples: Vec<Example> = rows.iter().map(|&i| train.examples[i].clone()).collect();
        Dataset::from_examples(train.path.with_file_name(name), examples)
    };
    Ok(ProxySets {
        clean,
        suspect: pick(&ranked, "suspect.jsonl"),
        clean_rows,
        suspect_rows: ranked,
        source,
    })
}

/// D_c alone: `size` rows of `train` drawn at random (seeded; capped at its size), in file
/// order, and their indices. A larger clean set needs no pass of the victim: `gms proxy-sets
/// --clean-size` and the efficacy report's 2,000-row sets come from here.
pub fn sample_clean(train: &Dataset, size: usize, seed: u64) -> (Dataset, Vec<usize>) {
    let n = train.len();
    let mut rng = StdRng::seed_from_u64(seed ^ STREAM);
    let mut rows = sample(&mut rng, n, size.min(n)).into_vec();
    rows.sort_unstable();
    let examples = rows.iter().map(|&i| train.examples[i].clone()).collect();
    (
        Dataset::from_examples(train.path.with_file_name("clean.jsonl"), examples),
        rows,
    )
}

/// Suspicion scores of `train`'s rows: from `victim/training_dynamics.json` when it records
/// this very file (same sha256 and row count), else from one pass of the victim.
pub fn suspicion_scores(
    victim: &Path,
    train: &Dataset,
    device: &Device,
) -> Result<(Vec<f64>, ScoreSource)> {
    let record = victim.join(DYNAMICS_FILE);
    if record.is_file() {
        let d = TrainingDynamics::read(&record)?;
        let sha = crate::model::folder::sha256_files(std::slice::from_ref(&train.path))?;
        if d.data_sha256 == sha && d.p_label.len() == train.len() {
            return Ok((
                d.mean_inverse_gap(),
                ScoreSource::Dynamics { epochs: d.epochs },
            ));
        }
        tracing::warn!(
            "{} records another training set ({}); ranking by one pass of the victim",
            record.display(),
            d.data
        );
    }
    let model = LoadedModel::load(victim, device)?;
    train.check_labels(model.folder.config.num_labels)?;
    let set = model.text_encoder()?.encode_set(&train.examples, device)?;
    let mut scores = vec![0.0; train.len()];
    for (batch, logits) in set.batches.iter().zip(model.classifier.set_logits(&set)?) {
        let probs = candle_nn::ops::softmax(&logits, D::Minus1)?.to_vec2::<f32>()?;
        for ((&r, &label), p) in batch.rows.iter().zip(&batch.labels).zip(probs) {
            scores[r] = inverse_gap(p[label as usize]);
        }
    }
    Ok((scores, ScoreSource::OnePass))
}

/// Builds both proxy sets for `victim` from its training set `train`.
pub fn build(
    victim: &Path,
    train: &Dataset,
    size: usize,
    seed: u64,
    device: &Device,
) -> Result<ProxySets> {
    let (scores, source) = suspicion_scores(victim, train, device)?;
    select(train, &scores, size, seed, source)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize) -> Dataset {
        let examples = (0..n)
            .map(|i| Example {
                text: format!("row {i}"),
                text_pair: None,
                label: i % 2,
                line: i + 1,
            })
            .collect();
        Dataset::from_examples("/tmp/train.jsonl", examples)
    }

    #[test]
    fn suspect_rows_rank_by_score_with_ties_in_file_order() {
        let d = rows(6);
        let s = select(
            &d,
            &[1.0, 5.0, 3.0, 5.0, 0.5, 2.0],
            3,
            7,
            ScoreSource::OnePass,
        )
        .unwrap();
        assert_eq!(s.suspect_rows, [1, 3, 2]);
        assert_eq!(s.suspect.examples[0].text, "row 1");
        assert_eq!(s.clean_rows.len(), 3);
        assert!(s.clean_rows.windows(2).all(|w| w[0] < w[1]));
        let all = select(&d, &[0.0; 6], 50, 7, ScoreSource::OnePass).unwrap();
        assert_eq!((all.clean.len(), all.suspect.len()), (6, 6));
    }
}
