//! The GMS objective: relative drops against the victim and their weighted score.

use serde::{Deserialize, Serialize};

/// The paper's default accuracy weight α, also its reference implementation's
/// (docs/algorithm.md §Defaults).
pub const DEFAULT_ALPHA: f64 = 0.4;
/// The paper's default patience: greedy steps without improvement before stopping
/// (docs/algorithm.md §Defaults).
pub const DEFAULT_PATIENCE: usize = 5;

/// Correct predictions on the clean proxy set and target-label hits on the suspect set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Counts {
    /// Clean rows predicted as their label.
    pub clean_correct: usize,
    /// Clean rows in the set.
    pub clean_total: usize,
    /// Suspect rows predicted as their (target) label.
    pub suspect_hits: usize,
    /// Suspect rows in the set.
    pub suspect_total: usize,
}

impl Counts {
    /// Clean accuracy.
    pub fn acc(&self) -> f64 {
        ratio(self.clean_correct, self.clean_total)
    }

    /// Attack success rate on the suspect set.
    pub fn asr(&self) -> f64 {
        ratio(self.suspect_hits, self.suspect_total)
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// The victim's accuracy and ASR on the proxy sets: what drops are measured against.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// `acc(victim, D_c)`.
    pub acc: f64,
    /// `asr(victim, D_p)`.
    pub asr: f64,
}

/// Accuracy, ASR, their relative drops and the score of one strategy under one α.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Clean proxy accuracy.
    pub acc: f64,
    /// Suspect proxy ASR.
    pub asr: f64,
    /// `(acc0 - acc) / acc0`.
    pub acc_drop: f64,
    /// `(asr0 - asr) / asr0`.
    pub asr_drop: f64,
    /// `(1-α)·asr_drop + α·(1-acc_drop)`.
    pub score: f64,
}

/// Relative drop `(base - value) / base`, 0 when the base is 0.
pub fn relative_drop(base: f64, value: f64) -> f64 {
    if base == 0.0 {
        0.0
    } else {
        (base - value) / base
    }
}

/// Scores accuracy and ASR against the baseline with accuracy weight `alpha`.
pub fn metrics(alpha: f64, baseline: Baseline, acc: f64, asr: f64) -> Metrics {
    let acc_drop = relative_drop(baseline.acc, acc);
    let asr_drop = relative_drop(baseline.asr, asr);
    Metrics {
        acc,
        asr,
        acc_drop,
        asr_drop,
        score: (1.0 - alpha) * asr_drop + alpha * (1.0 - acc_drop),
    }
}

/// Scores complete counts.
pub fn score_counts(alpha: f64, baseline: Baseline, c: &Counts) -> Metrics {
    metrics(alpha, baseline, c.acc(), c.asr())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_step_zero() {
        // Encoder kit (docs/kits.md §Encoder kit): baseline 0.970 / 1.000, full substitution
        // 0.785 / 0.505 → 0.6207.
        let m = metrics(
            0.4,
            Baseline {
                acc: 0.97,
                asr: 1.0,
            },
            0.785,
            0.505,
        );
        assert!((m.score - 0.6207).abs() < 5e-5, "{}", m.score);
        assert!((m.acc_drop - 0.1907).abs() < 5e-5);
    }

    #[test]
    fn zero_baseline_means_zero_drop() {
        let m = metrics(0.5, Baseline { acc: 0.0, asr: 0.0 }, 0.3, 0.2);
        assert_eq!((m.acc_drop, m.asr_drop), (0.0, 0.0));
        assert_eq!(m.score, 0.5);
    }
}
