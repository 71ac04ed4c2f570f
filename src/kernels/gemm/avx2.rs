//! AVX2+FMA microkernel: two ymm per packed panel row (16 columns), FMA accumulation.

use core::arch::x86_64::*;

use super::driver::{self, Init, Microkernel, Problem, Tile, elem, k_steps};
use super::{NR, WeightStorage};

/// Packed weights `b[idx..idx+8]` of storage `S`, widened exactly to f32.
///
/// # Safety
/// AVX2, FMA and F16C available; 8 elements of storage `S` readable at element `idx` of `b`.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn load_b<const S: u8>(b: *const u8, idx: usize) -> __m256 {
    let at = elem::<S>(b, idx);
    // SAFETY: forwarded caller contract (unaligned loads).
    unsafe {
        match const { WeightStorage::from_code(S) } {
            WeightStorage::F32 => _mm256_loadu_ps(at.cast()),
            WeightStorage::Bf16 => {
                let h = _mm_loadu_si128(at.cast());
                _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(h)))
            }
            WeightStorage::F16 => _mm256_cvtph_ps(_mm_loadu_si128(at.cast())),
        }
    }
}

/// Micro-tile: `R` rows × `P` panels of `t`, accumulating k-steps `0..t.kc` in `SPLIT`
/// interleaved chains (1, or 2 for one-panel weights: see the GEMM's contract; `kc` is then
/// all of k). A partial last panel goes through a stack buffer.
///
/// # Safety
/// As for [`Microkernel::tile`], with `R` rows and `P` panels.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
#[allow(clippy::needless_range_loop)]
unsafe fn tile<const S: u8, const R: usize, const P: usize, const SPLIT: usize>(t: Tile) {
    let Tile {
        kc,
        a,
        lda,
        b,
        init,
        c,
        ldc,
        last,
        relu,
        ..
    } = t;
    let mut acc = [[[_mm256_setzero_ps(); 2]; P]; R];
    let mut tmp = [0f32; NR];
    match init {
        Init::Zero => {}
        Init::Bias(bp) => {
            for q in 0..P {
                let mut src = bp.wrapping_add(q * NR);
                if q == P - 1 && last < NR {
                    // SAFETY: the bias covers the `last` real columns of this panel.
                    unsafe { core::ptr::copy_nonoverlapping(src, tmp.as_mut_ptr(), last) };
                    src = tmp.as_ptr();
                }
                // SAFETY: `src` has NR readable f32 (bias or the stack buffer).
                let v = unsafe { [_mm256_loadu_ps(src), _mm256_loadu_ps(src.add(8))] };
                for r in 0..R {
                    acc[r][q] = v;
                }
            }
        }
        Init::Load => {
            for r in 0..R {
                for q in 0..P {
                    let mut src = c.wrapping_add(r * ldc + q * NR) as *const f32;
                    if q == P - 1 && last < NR {
                        // SAFETY: C row r covers the `last` real columns of this panel.
                        unsafe { core::ptr::copy_nonoverlapping(src, tmp.as_mut_ptr(), last) };
                        src = tmp.as_ptr();
                    }
                    // SAFETY: `src` has NR readable f32 (C row or the stack buffer).
                    acc[r][q] = unsafe { [_mm256_loadu_ps(src), _mm256_loadu_ps(src.add(8))] };
                }
            }
        }
    }
    // One k-step into chain `acc`.
    let step = |acc: &mut [[[__m256; 2]; P]; R], kk: usize| {
        let mut bv = [[_mm256_setzero_ps(); 2]; P];
        for q in 0..P {
            let i = t.panel_elem(q, kk);
            // SAFETY: packed panel q has kc k-rows of NR elements (`Tile::panel_elem`).
            bv[q] = unsafe { [load_b::<S>(b, i), load_b::<S>(b, i + 8)] };
        }
        for r in 0..R {
            // SAFETY: A row r has kc elements from `a + r*lda`.
            let av = _mm256_set1_ps(unsafe { *a.add(r * lda + kk) });
            for q in 0..P {
                for h in 0..2 {
                    acc[r][q][h] = _mm256_fmadd_ps(av, bv[q][h], acc[r][q][h]);
                }
            }
        }
    };
    // Even k-steps onto the init, odd ones (SPLIT = 2) from zero, added at the end.
    let mut odd = [[[_mm256_setzero_ps(); 2]; P]; R];
    k_steps::<_, SPLIT>(kc, &mut acc, &mut odd, step);
    if SPLIT == 2 {
        for r in 0..R {
            for q in 0..P {
                for h in 0..2 {
                    acc[r][q][h] = _mm256_add_ps(acc[r][q][h], odd[r][q][h]);
                }
            }
        }
    }
    if relu {
        let zero = _mm256_setzero_ps();
        for r in 0..R {
            for q in 0..P {
                for h in 0..2 {
                    // max(v, 0) returns the second operand for NaN and ±0: v > 0 ? v : 0.
                    acc[r][q][h] = _mm256_max_ps(acc[r][q][h], zero);
                }
            }
        }
    }
    for r in 0..R {
        for q in 0..P {
            let dst = c.wrapping_add(r * ldc + q * NR);
            if q == P - 1 && last < NR {
                // SAFETY: the stack buffer has NR f32; C row r covers `last` columns here.
                unsafe {
                    _mm256_storeu_ps(tmp.as_mut_ptr(), acc[r][q][0]);
                    _mm256_storeu_ps(tmp.as_mut_ptr().add(8), acc[r][q][1]);
                    core::ptr::copy_nonoverlapping(tmp.as_ptr(), dst, last);
                }
            } else {
                // SAFETY: C row r covers the full NR columns of this panel.
                unsafe {
                    _mm256_storeu_ps(dst, acc[r][q][0]);
                    _mm256_storeu_ps(dst.add(8), acc[r][q][1]);
                }
            }
        }
    }
}

/// The AVX2 tiles: up to 6 rows × 1 panel (12 ymm accumulators) in the blocked path, 1 row ×
/// 4 panels to 5 rows × 1 panel for small batches, 3 rows × 1 panel in two chains (12
/// accumulators) for one-panel weights.
pub(super) struct Avx2;

impl Microkernel for Avx2 {
    const KC: usize = 256;
    const MR: usize = 6;
    const BLOCKED_PANELS: usize = 1;
    const ONE_PANEL_ROWS: usize = 3;
    const SMALL_M_PANELS: &'static [usize] = &[4, 2, 1, 1, 1];

    #[inline(always)]
    unsafe fn tile<const S: u8>(rows: usize, panels: usize, t: Tile) {
        macro_rules! go {
            ($r:literal, $p:literal) => {
                // SAFETY: forwarded caller contract.
                unsafe { tile::<S, $r, $p, 1>(t) }
            };
        }
        match (rows, panels) {
            (6, 1) => go!(6, 1),
            (1, 1) => go!(1, 1),
            (2, 1) => go!(2, 1),
            (3, 1) => go!(3, 1),
            (4, 1) => go!(4, 1),
            (5, 1) => go!(5, 1),
            (1, 2) => go!(1, 2),
            (2, 2) => go!(2, 2),
            (1, 4) => go!(1, 4),
            _ => unreachable!("no AVX2 tile of {rows} rows × {panels} panels"),
        }
    }

    #[inline(always)]
    unsafe fn one_panel_tile<const S: u8>(rows: usize, t: Tile) {
        macro_rules! go {
            ($r:literal) => {
                // SAFETY: forwarded caller contract.
                unsafe { tile::<S, $r, 1, 2>(t) }
            };
        }
        match rows {
            3 => go!(3),
            2 => go!(2),
            1 => go!(1),
            _ => unreachable!("AVX2 one-panel tiles have 1 to 3 rows"),
        }
    }
}

/// The product `p` on AVX2+FMA.
///
/// # Safety
/// AVX2, FMA and F16C available; `p` checked by `super::gemm` (m, n > 0).
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn gemm<const S: u8>(p: &Problem) {
    // SAFETY: forwarded caller contract.
    unsafe { driver::gemm::<Avx2, S>(p) }
}

/// Transposes an 8×8 block: row `i` of `src` (8 f32, rows `ld` apart) becomes column `i` of
/// `dst` (rows `ldd` apart).
///
/// # Safety
/// AVX available; 8 rows of 8 f32 readable at `src` and writable at `dst`.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn transpose8(src: *const f32, ld: usize, dst: *mut f32, ldd: usize) {
    let mut r = [_mm256_setzero_ps(); 8];
    for (i, v) in r.iter_mut().enumerate() {
        // SAFETY: row i of the block is readable (caller contract).
        *v = unsafe { _mm256_loadu_ps(src.add(i * ld)) };
    }
    let mut t = [_mm256_setzero_ps(); 8];
    for i in 0..4 {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for q in 0..2 {
        let (a0, a1, b0, b1) = (t[4 * q], t[4 * q + 1], t[4 * q + 2], t[4 * q + 3]);
        r[4 * q] = _mm256_shuffle_ps::<0x44>(a0, b0);
        r[4 * q + 1] = _mm256_shuffle_ps::<0xEE>(a0, b0);
        r[4 * q + 2] = _mm256_shuffle_ps::<0x44>(a1, b1);
        r[4 * q + 3] = _mm256_shuffle_ps::<0xEE>(a1, b1);
    }
    for c in 0..4 {
        let lo = _mm256_permute2f128_ps::<0x20>(r[c], r[4 + c]);
        let hi = _mm256_permute2f128_ps::<0x31>(r[c], r[4 + c]);
        // SAFETY: rows c and c + 4 of the destination block are writable (caller contract).
        unsafe {
            _mm256_storeu_ps(dst.add(c * ldd), lo);
            _mm256_storeu_ps(dst.add((c + 4) * ldd), hi);
        }
    }
}

/// [`super::avx512::transpose16`] in four 8×8 blocks.
///
/// # Safety
/// AVX2+FMA+F16C available; 16 rows of 16 f32 readable at `src` and writable at `dst`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn transpose16(src: *const f32, ld: usize, dst: *mut f32, ldd: usize) {
    for (bi, bj) in [(0, 0), (0, 8), (8, 0), (8, 8)] {
        // SAFETY: the 8×8 sub-blocks lie inside the 16×16 block (caller contract).
        unsafe { transpose8(src.add(bi * ld + bj), ld, dst.add(bj * ldd + bi), ldd) };
    }
}
