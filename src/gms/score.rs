//! The GMS objective: drops against the victim and their weighted score.
//!
//! Drops are relative to the victim's figures (the paper's encoder search, gms's default for
//! every architecture) or absolute (the reference's decoder search, docs/algorithm.md §The
//! reference's decoder search): [`Drops`].

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

/// How accuracy and ASR drops are measured against the victim's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Drops {
    /// `(base − value) / base`: the paper's encoder search; gms's default everywhere.
    #[default]
    Relative,
    /// `base − value`: the reference's decoder search. Choosing it also switches that
    /// search's two other rules (docs/algorithm.md §The reference's decoder search): the
    /// initial full substitution is never eligible as best, and patience counts only steps
    /// without a new best.
    Absolute,
}

impl Drops {
    /// The drop from `base` to `value` (a relative drop from a zero base is 0).
    pub fn drop(self, base: f64, value: f64) -> f64 {
        match self {
            Drops::Relative => relative_drop(base, value),
            Drops::Absolute => base - value,
        }
    }

    /// Scores accuracy and ASR against the baseline with accuracy weight `alpha`.
    pub fn metrics(self, alpha: f64, baseline: Baseline, acc: f64, asr: f64) -> Metrics {
        let acc_drop = self.drop(baseline.acc, acc);
        let asr_drop = self.drop(baseline.asr, asr);
        Metrics {
            acc,
            asr,
            acc_drop,
            asr_drop,
            score: (1.0 - alpha) * asr_drop + alpha * (1.0 - acc_drop),
        }
    }

    /// `relative` or `absolute`.
    pub fn name(self) -> &'static str {
        match self {
            Drops::Relative => "relative",
            Drops::Absolute => "absolute",
        }
    }
}

impl std::str::FromStr for Drops {
    type Err = String;

    fn from_str(s: &str) -> Result<Drops, String> {
        match s {
            "relative" => Ok(Drops::Relative),
            "absolute" => Ok(Drops::Absolute),
            _ => Err(format!("unknown drops \"{s}\" (relative or absolute)")),
        }
    }
}

/// Accuracy, ASR, their drops and the score of one strategy under one α.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Clean proxy accuracy.
    pub acc: f64,
    /// Suspect proxy ASR.
    pub asr: f64,
    /// `(acc0 - acc) / acc0` (absolute drops: `acc0 - acc`).
    pub acc_drop: f64,
    /// `(asr0 - asr) / asr0` (absolute drops: `asr0 - asr`).
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

/// Scores accuracy and ASR against the baseline with accuracy weight `alpha`, relative drops
/// (the default; [`Drops::metrics`] for either).
pub fn metrics(alpha: f64, baseline: Baseline, acc: f64, asr: f64) -> Metrics {
    Drops::Relative.metrics(alpha, baseline, acc, asr)
}

/// Scores complete counts with relative drops ([`Drops::metrics`] for either).
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
    fn reference_decoder_step_zero() {
        // LLM kit (docs/algorithm.md §The reference's decoder search): baseline 0.905 / 1.000,
        // full substitution 0.650 / 0.780 → 0.4300 absolute, 0.4193 relative.
        let b = Baseline {
            acc: 0.905,
            asr: 1.0,
        };
        let abs = Drops::Absolute.metrics(0.4, b, 0.65, 0.78);
        assert!((abs.score - 0.4300).abs() < 5e-5, "{}", abs.score);
        let rel = Drops::Relative.metrics(0.4, b, 0.65, 0.78);
        assert!((rel.score - 0.4193).abs() < 5e-5, "{}", rel.score);
        assert_eq!("absolute".parse::<Drops>(), Ok(Drops::Absolute));
        assert!("other".parse::<Drops>().is_err());
    }

    #[test]
    fn zero_baseline_means_zero_drop() {
        let m = metrics(0.5, Baseline { acc: 0.0, asr: 0.0 }, 0.3, 0.2);
        assert_eq!((m.acc_drop, m.asr_drop), (0.0, 0.0));
        assert_eq!(m.score, 0.5);
    }
}
