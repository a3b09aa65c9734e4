//! A whole model — a merge baseline, the victim, a GMS result — scored with the numbers a GMS
//! strategy reports: proxy-set accuracy and ASR (and, against the victim's, the score under
//! α) and test-set CACC and ASR.
//!
//! The proxy sets go through the search's own [`Evaluator`]: its baseline pass is exactly
//! "this model on D_c and D_p", so a baseline's acc/asr are computed as the victim's acc0/asr0
//! are in a search.

use crate::error::{GmsError, Result};
use crate::gms::evaluator::Evaluator;
use crate::gms::score::{score_counts, Baseline, Counts, Metrics};
use crate::gms::session::{read_dataset, TestMetrics};
use crate::model::encoder::{argmax_rows, count_matches};
use crate::model::layered::LayeredClassifier;
use crate::model::tokenize::{EncodedSet, TextEncoder};
use candle_core::Device;
use serde::Serialize;
use std::path::Path;

/// Proxy sets and test sets, each pair optional, encoded once with the victim's tokenizer.
pub struct ScoringSets {
    proxy: Option<(EncodedSet, EncodedSet)>,
    test: Option<(EncodedSet, EncodedSet)>,
}

/// The dataset paths a score is computed on.
#[derive(Debug, Clone, Default)]
pub struct ScoringPaths<'a> {
    /// Clean proxy set D_c.
    pub clean: Option<&'a Path>,
    /// Suspect proxy set D_p.
    pub suspect: Option<&'a Path>,
    /// Clean test set.
    pub test_clean: Option<&'a Path>,
    /// Poisoned test set.
    pub test_poison: Option<&'a Path>,
}

impl ScoringSets {
    /// Reads and encodes the sets given; each pair must be given whole or not at all.
    pub fn load(
        encoder: &TextEncoder,
        num_labels: usize,
        paths: &ScoringPaths<'_>,
        device: &Device,
    ) -> Result<ScoringSets> {
        let pair = |a: Option<&Path>, b: Option<&Path>, flags: &'static str| match (a, b) {
            (Some(a), Some(b)) => {
                let encode = |p: &Path| -> Result<EncodedSet> {
                    encoder.encode_set(&read_dataset(p, num_labels)?.examples, device)
                };
                Ok(Some((encode(a)?, encode(b)?)))
            }
            (None, None) => Ok(None),
            _ => Err(GmsError::BadArgument {
                flag: flags,
                value: String::new(),
                problem: "give both sets of the pair or neither".into(),
            }),
        };
        Ok(ScoringSets {
            proxy: pair(paths.clean, paths.suspect, "--clean/--suspect")?,
            test: pair(
                paths.test_clean,
                paths.test_poison,
                "--test-clean/--test-poison",
            )?,
        })
    }

    /// Sets encoded elsewhere (a decoder's, by its session's tokenizer).
    pub fn from_sets(
        proxy: Option<(EncodedSet, EncodedSet)>,
        test: Option<(EncodedSet, EncodedSet)>,
    ) -> ScoringSets {
        ScoringSets { proxy, test }
    }

    /// Whether proxy sets were given.
    pub fn has_proxy(&self) -> bool {
        self.proxy.is_some()
    }

    /// Whether test sets were given.
    pub fn has_test(&self) -> bool {
        self.test.is_some()
    }
}

/// One model on the sets given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ModelScore {
    /// Counts on the proxy sets (clean correct, suspect hits).
    pub proxy: Option<Counts>,
    /// CACC and ASR on the test sets.
    pub test: Option<TestMetrics>,
}

impl ModelScore {
    /// acc and asr on the proxy sets, as a baseline to measure drops against.
    pub fn baseline(&self) -> Option<Baseline> {
        self.proxy.map(|c| Baseline {
            acc: c.acc(),
            asr: c.asr(),
        })
    }

    /// This model's proxy metrics against `victim`'s, under `alpha`: what a strategy reports.
    pub fn metrics(&self, alpha: f64, victim: &ModelScore) -> Option<Metrics> {
        Some(score_counts(
            alpha,
            victim.baseline()?,
            self.proxy.as_ref()?,
        ))
    }
}

/// Scores `model` (an encoder or a decoder) on `sets`.
pub fn score_model<M: LayeredClassifier>(model: &M, sets: &ScoringSets) -> Result<ModelScore> {
    let mut scoring = Scoring::default();
    while !scoring.advance(model, sets)? {}
    Ok(scoring.score)
}

/// [`score_model`] a part at a time — the proxy sets, then each test set — so a caller that
/// must answer between parts (the workbench's worker) waits for one part only.
#[derive(Debug, Clone, Default)]
pub struct Scoring {
    /// What is scored so far.
    pub score: ModelScore,
    /// Parts done: 0 none, 1 the proxy sets, 2 the clean test set, 3 all.
    done: usize,
    /// Clean test rows correct, once counted.
    clean_correct: usize,
}

impl Scoring {
    /// Scores the next part of `sets`; whether the score is complete.
    pub fn advance<M: LayeredClassifier>(&mut self, model: &M, sets: &ScoringSets) -> Result<bool> {
        match (self.done, &sets.proxy, &sets.test) {
            (0, Some((clean, suspect)), _) => {
                self.score.proxy = Some(
                    Evaluator::new(model.clone(), model.clone(), clean.clone(), suspect.clone())?
                        .baseline_counts(),
                );
            }
            (1, _, Some((clean, _))) => self.clean_correct = count_correct(model, clean)?,
            (2, _, Some((clean, poison))) => {
                let poison_hits = count_correct(model, poison)?;
                self.score.test = Some(TestMetrics {
                    cacc: self.clean_correct as f64 / clean.len as f64,
                    asr: poison_hits as f64 / poison.len as f64,
                    clean_correct: self.clean_correct,
                    clean_total: clean.len,
                    poison_hits,
                    poison_total: poison.len,
                });
            }
            _ => {}
        }
        self.done = (self.done + 1).min(3);
        Ok(self.done == 3)
    }
}

/// Rows of `set` the model predicts as labelled (for the poisoned set: as the target): the
/// whole-model form of [`Evaluator::count_correct`], which scores a weight view.
fn count_correct<M: LayeredClassifier>(model: &M, set: &EncodedSet) -> Result<usize> {
    let mut correct = 0;
    for (batch, logits) in set.batches.iter().zip(model.set_logits(set)?) {
        correct += count_matches(&argmax_rows(&logits)?, &batch.labels);
    }
    Ok(correct)
}
