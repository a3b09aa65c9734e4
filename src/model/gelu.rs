//! Exact-form (erf) GELU, fast on the CPU.
//!
//! candle's `gelu_erf` maps libm's scalar `erff` over one thread; in the encoder kit's search
//! (docs/kits.md §Encoder kit) that was ~11% of the time. This op uses a rational erf
//! approximation that vectorises (the one Eigen uses for float: accurate to a few ulp on
//! [-4, 4], where erf saturates in f32) and splits the work over the available cores. Other
//! devices, and training (which needs a backward pass), use candle's own `gelu_erf`.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};

/// `0.5·x·(1 + erf(x/√2))`.
pub fn gelu_erf(x: &Tensor, trainable: bool) -> Result<Tensor> {
    if trainable || !x.device().is_cpu() || x.dtype() != candle_core::DType::F32 {
        return x.gelu_erf();
    }
    x.apply_op1_no_bwd(&FastGeluErf)
}

struct FastGeluErf;

/// erf(x) for f32 by a rational approximation (Eigen's `generic_fast_erf_float`).
#[inline(always)]
fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = x2 * -2.726_142_3e-10 + 2.770_681_4e-8;
    p = p * x2 + -2.101_024e-6;
    p = p * x2 + -5.692_506_4e-5;
    p = p * x2 + -7.349_906_3e-4;
    p = p * x2 + -2.954_600_1e-3;
    p = p * x2 + -1.609_603_3e-2;
    p *= x;
    let mut q = x2 * -1.456_607_2e-5 + -2.133_740_6e-4;
    q = q * x2 + -1.682_827e-3;
    q = q * x2 + -7.373_329e-3;
    q = q * x2 + -1.426_474e-2;
    p / q
}

fn gelu_slice(src: &[f32], dst: &mut [f32]) {
    for (d, &x) in dst.iter_mut().zip(src) {
        *d = 0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
    }
}

impl CustomOp1 for FastGeluErf {
    fn name(&self) -> &'static str {
        "fast-gelu-erf"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("fast-gelu-erf expects f32");
        };
        let src = match layout.contiguous_offsets() {
            Some((a, b)) => &data[a..b],
            None => candle_core::bail!("fast-gelu-erf expects a contiguous tensor"),
        };
        let mut out = vec![0f32; src.len()];
        let threads = candle_core::utils::get_num_threads().max(1);
        // Splitting only pays off for large tensors (thread start-up is ~tens of µs).
        if threads == 1 || src.len() < 1 << 16 {
            gelu_slice(src, &mut out);
        } else {
            let chunk = src.len().div_ceil(threads);
            std::thread::scope(|s| {
                for (i, o) in src.chunks(chunk).zip(out.chunks_mut(chunk)) {
                    s.spawn(move || gelu_slice(i, o));
                }
            });
        }
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_candle_exact_gelu() {
        let xs: Vec<f32> = (-2000..2000).map(|i| i as f32 / 200.0).collect();
        let t = Tensor::new(xs.as_slice(), &candle_core::Device::Cpu).unwrap();
        let fast = gelu_erf(&t, false).unwrap().to_vec1::<f32>().unwrap();
        let exact = t.gelu_erf().unwrap().to_vec1::<f32>().unwrap();
        let worst = fast
            .iter()
            .zip(&exact)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst < 2e-6, "max |diff| {worst}");
    }
}
