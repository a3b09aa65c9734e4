//! The per-tensor arithmetic of the merge baselines, on flat f32 slices.
//!
//! Each function follows mergekit 0.1.5 (`merge_methods/linear.py`,
//! `merge_methods/generalized_task_arithmetic.py`, `sparsify.py`) operation for operation in
//! f32, so a deterministic merge gms computes equals the one mergekit builds from the YAML gms
//! writes (tests/merge.rs checks it). Two places cannot agree bit for bit, by design:
//! - magnitude trimming keeps the `k` largest |δ|; where several entries tie at the threshold,
//!   mergekit's unstable `torch.argsort` keeps an arbitrary subset, gms the lowest indices;
//! - DARE's random masks: mergekit draws them with `torch.bernoulli`, gms with its own seeded
//!   generator ([`random_keep`]). Given the same masks the arithmetic agrees.

use rand::Rng;

/// mergekit's `rescaled_masked_tensor` leaves a tensor unscaled when either L1 norm is below
/// this (`sparsify.py`, `eps=1e-7`).
const RESCALE_EPS: f32 = 1e-7;

/// Normalised weighted mean `(w₀·a + w₁·b) / (w₀ + w₁)`: mergekit `linear` with
/// `normalize: true` (the paper's WAG at weights ½, ½).
pub fn linear(a: &[f32], b: &[f32], weights: [f32; 2]) -> Vec<f32> {
    let denominator = weights[0] + weights[1];
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (x * weights[0] + y * weights[1]) / denominator)
        .collect()
}

/// The task vector `model − base`.
pub fn delta(model: &[f32], base: &[f32]) -> Vec<f32> {
    model.iter().zip(base).map(|(&m, &b)| m - b).collect()
}

/// Which entries magnitude trimming keeps: the `max(1, ⌊density·n⌋)` largest |δ| (mergekit's
/// `magnitude`), ties at the threshold broken towards the lowest index. `None` keeps all
/// (density ≥ 1, where mergekit returns the tensor untouched).
pub fn magnitude_keep(delta: &[f32], density: f64) -> Option<Vec<bool>> {
    if density >= 1.0 || delta.is_empty() {
        return None;
    }
    // Python's int(density * numel): the product in f64, truncated.
    let k = ((density * delta.len() as f64) as usize).clamp(1, delta.len());
    let mut magnitudes: Vec<f32> = delta.iter().map(|d| d.abs()).collect();
    let (_, &mut threshold, _) = magnitudes.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
    let above = delta.iter().filter(|d| d.abs() > threshold).count();
    let mut at_threshold_left = k - above;
    Some(
        delta
            .iter()
            .map(|d| {
                let m = d.abs();
                if m > threshold {
                    true
                } else if m == threshold && at_threshold_left > 0 {
                    at_threshold_left -= 1;
                    true
                } else {
                    false
                }
            })
            .collect(),
    )
}

/// DARE's random drop: each entry kept with probability `density`. `None` keeps all
/// (density ≥ 1, where mergekit draws nothing).
pub fn random_keep(len: usize, density: f64, rng: &mut impl Rng) -> Option<Vec<bool>> {
    if density >= 1.0 {
        return None;
    }
    Some((0..len).map(|_| rng.random_bool(density)).collect())
}

/// Zeroes the entries `keep` drops; with `rescale`, scales the rest so the L1 norm is what it
/// was (mergekit's `rescale: true`, `RescaleNorm.l1` — for a random mask ≈ DARE's 1/density).
pub fn sparsify(delta: &mut [f32], keep: &[bool], rescale: bool) {
    // L1 norms in f64: torch sums f32 pairwise, within a few ulps of this.
    let before: f64 = delta.iter().map(|d| d.abs() as f64).sum();
    for (d, &k) in delta.iter_mut().zip(keep) {
        if !k {
            *d = 0.0;
        }
    }
    if !rescale {
        return;
    }
    let after: f64 = delta.iter().map(|d| d.abs() as f64).sum();
    let (before, after) = (before as f32, after as f32);
    if before < RESCALE_EPS || after < RESCALE_EPS {
        return;
    }
    let scale = before / after;
    for d in delta.iter_mut() {
        *d *= scale;
    }
}

/// How task vectors are combined (mergekit's `GeneralizedTaskArithmeticMerge.merge_group`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Combine {
    /// TIES sign election: keep, per entry, only the weighted deltas whose sign agrees with
    /// the sign of their sum (mergekit `consensus_method: sum`).
    pub consensus: bool,
    /// Divide by the summed weights of the deltas kept (mergekit `normalize`).
    pub normalize: bool,
    /// Scale of the merged task vector (mergekit `lambda`).
    pub lambda: f32,
}

/// `base + λ·mix(weights · deltas)`, with the (already sparsified) `deltas` in model order.
pub fn combine(base: &[f32], deltas: &[Vec<f32>], weights: &[f32], how: Combine) -> Vec<f32> {
    let sign = |x: f32| {
        if x > 0.0 {
            1.0
        } else if x < 0.0 {
            -1.0
        } else {
            0.0
        }
    };
    let mut weighted = vec![0.0f32; deltas.len()];
    base.iter()
        .enumerate()
        .map(|(i, &b)| {
            for (w, (d, &wt)) in weighted.iter_mut().zip(deltas.iter().zip(weights)) {
                *w = d[i] * wt;
            }
            let (mut mixed, mut divisor) = (0.0f32, 0.0f32);
            if how.consensus {
                let total: f32 = weighted.iter().sum();
                let majority = if total >= 0.0 { 1.0 } else { -1.0 };
                for (&w, &wt) in weighted.iter().zip(weights) {
                    let agree = if sign(w) == majority { 1.0 } else { 0.0 };
                    mixed += w * agree;
                    divisor += wt * agree;
                }
                if divisor == 0.0 {
                    divisor = 1.0;
                }
            } else {
                mixed = weighted.iter().sum();
                divisor = weights.iter().sum();
                if divisor.abs() < 1e-8 {
                    divisor = 1.0;
                }
            }
            if how.normalize {
                mixed /= divisor;
            }
            if how.lambda != 1.0 {
                mixed *= how.lambda;
            }
            b + mixed
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_is_the_weighted_mean() {
        assert_eq!(linear(&[1.0, -2.0], &[3.0, 2.0], [0.5, 0.5]), [2.0, 0.0]);
        assert_eq!(linear(&[1.0], &[5.0], [0.75, 0.25]), [2.0]);
    }

    #[test]
    fn magnitude_keeps_the_largest_lowest_index_first_on_ties() {
        // ⌊0.5·6⌋ = 3 kept: |-5| and |4|, then one of the two 2s — the first.
        let keep = magnitude_keep(&[2.0, -5.0, 1.0, 2.0, 4.0, 0.5], 0.5).unwrap();
        assert_eq!(keep, [true, true, false, false, true, false]);
        // At least one entry survives any positive density.
        let keep = magnitude_keep(&[1.0, 3.0, 2.0], 0.1).unwrap();
        assert_eq!(keep, [false, true, false]);
        assert_eq!(magnitude_keep(&[1.0], 1.0), None);
    }

    #[test]
    fn sparsify_rescales_to_the_l1_norm() {
        let mut d = vec![1.0, -3.0, 2.0, 2.0];
        sparsify(&mut d, &[true, true, false, false], true);
        // |d|₁ = 8 before, 4 after: the kept entries double.
        assert_eq!(d, [2.0, -6.0, 0.0, 0.0]);
        let mut d = vec![1.0, -3.0];
        sparsify(&mut d, &[false, true], false);
        assert_eq!(d, [0.0, -3.0]);
    }

    #[test]
    fn ties_elects_signs_and_takes_the_disjoint_mean() {
        let base = [10.0, 10.0, 10.0];
        let deltas = vec![vec![2.0, -1.0, 0.0], vec![4.0, 3.0, 0.0]];
        let ties = Combine {
            consensus: true,
            normalize: true,
            lambda: 1.0,
        };
        // entry 0: both agree → mean 3; entry 1: sum 2 > 0 elects +, only 3 counts;
        // entry 2: nothing agrees → the base.
        assert_eq!(
            combine(&base, &deltas, &[1.0, 1.0], ties),
            [13.0, 13.0, 10.0]
        );
        let arithmetic = Combine {
            consensus: false,
            normalize: false,
            lambda: 2.0,
        };
        assert_eq!(
            combine(&base, &deltas, &[0.5, 0.5], arithmetic),
            [16.0, 12.0, 10.0]
        );
    }
}
