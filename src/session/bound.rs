//! The last step of every sample, in blocks of 16 rows: the chain's output `u` de-standardised
//! and mapped into the bounds of its x transform (docs/format.md §3.1), with the bits that
//! `Standardize::inverse` and `transform::bound_row` give one row at a time.
//!
//! One parameter of 16 rows is gathered into a vector, so the arithmetic runs 16 wide, and
//! the exponential is libm's `expf` in vector form (`math::exp_lanes`). A camera frame's 2 M
//! samples of 4 logit-bounded parameters spent 6 % of its time here, mostly in scalar
//! `expf` calls and the branches of the logit's two sides.

use crate::kernels::gemm::Available;
use crate::kernels::math::exp_lanes;
use crate::model::{Standardize, XTransform, XTransformKind};

/// Rows per block.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const ROWS: usize = 16;

/// Turns the first `transforms.len()` (or the norm's) values of whole blocks of 16 of the `m`
/// rows of `state` (row stride `d`) into x in raw units; returns how many rows that covered
/// (0 without AVX-512: the caller does every row).
pub(super) fn blocks(
    isa: Available,
    norm: Option<&Standardize>,
    transforms: &[XTransform],
    state: &mut [f32],
    m: usize,
    d: usize,
) -> usize {
    #[cfg(target_arch = "x86_64")]
    if isa.isa() == crate::kernels::gemm::Isa::Avx512 {
        let rows = m / ROWS * ROWS;
        // SAFETY: `Available` says this CPU has AVX-512F.
        unsafe { avx512(norm, transforms, &mut state[..rows * d], d) };
        return rows;
    }
    let _ = (isa, norm, transforms, state, m, d);
    0
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn avx512(norm: Option<&Standardize>, transforms: &[XTransform], state: &mut [f32], d: usize) {
    let columns = norm.map_or(0, |n| n.mean.len()).max(transforms.len());
    for block in state.chunks_exact_mut(ROWS * d) {
        for c in 0..columns {
            let mut u = [0.0f32; ROWS];
            for (r, v) in u.iter_mut().enumerate() {
                *v = block[r * d + c];
            }
            if let Some(norm) = norm {
                let (mean, std) = (norm.mean[c], norm.std[c]);
                u.iter_mut().for_each(|v| *v = *v * std + mean);
            }
            if let Some(t) = transforms.get(c) {
                bound(t, &mut u);
            }
            for (r, v) in u.iter().enumerate() {
                block[r * d + c] = *v;
            }
        }
    }
}

/// `XTransform::to_bounded` of each lane.
#[inline(always)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn bound(t: &XTransform, u: &mut [f32; ROWS]) {
    match t.kind() {
        XTransformKind::Identity => {}
        XTransformKind::Log => {
            let lower = t.lower().unwrap_or(0.0);
            let e = exp_lanes(u);
            for (v, e) in u.iter_mut().zip(e) {
                *v = lower + e;
            }
        }
        XTransformKind::Logit => {
            let (lower, upper) = (t.lower().unwrap_or(0.0), t.upper().unwrap_or(0.0));
            let width = upper - lower;
            let mut minus_abs = [0.0f32; ROWS];
            for (a, v) in minus_abs.iter_mut().zip(u.iter()) {
                *a = -v.abs();
            }
            let e = exp_lanes(&minus_abs);
            for (v, e) in u.iter_mut().zip(e) {
                let tail = width * (e / (1.0 + e));
                let x = if *v < 0.0 { lower + tail } else { upper - tail };
                *v = if x < lower {
                    lower
                } else if x > upper {
                    upper
                } else {
                    x
                };
            }
        }
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use crate::kernels::gemm::Isa;
    use crate::model::transform;
    use alloc::vec::Vec;

    /// Blocks of rows get the bits that de-standardising and `bound_row` give each row, for
    /// every kind of transform, outputs from far below to far above the bounds, ±0, ±∞ and
    /// NaN; rows past the last whole block are left to the caller.
    #[test]
    fn blocks_are_rows_one_at_a_time() {
        let transforms = [
            XTransform::logit(0.0, 1.0).unwrap(),
            XTransform::logit(-3.0, 250.0).unwrap(),
            XTransform::log(2.0).unwrap(),
            XTransform::IDENTITY,
            XTransform::logit(1e-3, 2e-3).unwrap(),
        ];
        let (d, xd) = (7, transforms.len());
        let norm = Standardize {
            mean: (0..xd).map(|c| c as f32 * 0.3 - 0.5).collect(),
            std: (0..xd).map(|c| 0.5 + c as f32).collect(),
            log_std_sum: 0.0,
        };
        let specials = [
            0.0f32,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            1e-30,
            -1e-30,
        ];
        let values: Vec<f32> = (0..4000)
            .map(|i| (i as f32 - 2000.0) * 0.06)
            .chain(specials)
            .collect();
        let m = 1000;
        let state: Vec<f32> = (0..m * d).map(|i| values[(i * 7) % values.len()]).collect();
        for isa in Isa::ALL.into_iter().filter_map(Isa::available) {
            for norm in [None, Some(&norm)] {
                let mut got = state.clone();
                let done = blocks(isa, norm, &transforms, &mut got, m, d);
                assert_eq!(done % ROWS, 0);
                let mut want = state.clone();
                for row in want[..done * d].chunks_exact_mut(d) {
                    if let Some(norm) = norm {
                        norm.inverse(&mut row[..xd]);
                    }
                    transform::bound_row(&transforms, row);
                }
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert!(
                    bits(&got) == bits(&want),
                    "{isa:?}, norm {}",
                    norm.is_some()
                );
            }
        }
    }
}
