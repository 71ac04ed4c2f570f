//! AVX2+FMA microkernel: two ymm per packed panel row (16 columns), FMA accumulation.

use core::arch::x86_64::*;

use super::driver::{self, Microkernel, Problem, Tile, by_rows, elem};
use super::tile::{self, Lanes};
use super::{NR, WeightStorage};

/// Two ymm: the 16 columns of a panel row, in halves of 8.
#[derive(Clone, Copy)]
pub(super) struct Ymm2([__m256; 2]);

/// Packed weights `b[idx..idx+8]` of storage `S`, widened exactly to f32.
///
/// # Safety
/// AVX2, FMA and F16C available; 8 elements of storage `S` readable at element `idx` of `b`.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn load_half_panel<const S: u8>(b: *const u8, idx: usize) -> __m256 {
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

// SAFETY: the loads and stores touch the named elements only (a partial panel row goes
// through a stack buffer).
unsafe impl Lanes for Ymm2 {
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn zero() -> Ymm2 {
        Ymm2([_mm256_setzero_ps(); 2])
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn splat(v: f32) -> Ymm2 {
        Ymm2([_mm256_set1_ps(v); 2])
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn mul_add(self, a: Ymm2, b: Ymm2) -> Ymm2 {
        Ymm2([0, 1].map(|h| _mm256_fmadd_ps(a.0[h], b.0[h], self.0[h])))
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn add(self, other: Ymm2) -> Ymm2 {
        Ymm2([0, 1].map(|h| _mm256_add_ps(self.0[h], other.0[h])))
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn relu(self) -> Ymm2 {
        // max(v, 0) returns the second operand for NaN and ±0: v > 0 ? v : 0.
        Ymm2(self.0.map(|v| _mm256_max_ps(v, _mm256_setzero_ps())))
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn load_packed<const S: u8>(b: *const u8, idx: usize) -> Ymm2 {
        // SAFETY: forwarded caller contract: NR = 16 elements at `idx`.
        unsafe {
            Ymm2([
                load_half_panel::<S>(b, idx),
                load_half_panel::<S>(b, idx + 8),
            ])
        }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn load(p: *const f32, cols: usize) -> Ymm2 {
        let mut buf = [0f32; NR];
        let mut src = p;
        if cols < NR {
            // SAFETY: `cols` f32 readable at `p` (caller contract), NR writable in `buf`.
            unsafe { core::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), cols) };
            src = buf.as_ptr();
        }
        // SAFETY: `src` has NR readable f32 (all of the caller's, or the buffer).
        unsafe { Ymm2([_mm256_loadu_ps(src), _mm256_loadu_ps(src.add(8))]) }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn store(self, p: *mut f32, cols: usize) {
        if cols < NR {
            let mut buf = [0f32; NR];
            // SAFETY: the buffer has NR f32; `cols` f32 writable at `p` (caller contract).
            unsafe {
                _mm256_storeu_ps(buf.as_mut_ptr(), self.0[0]);
                _mm256_storeu_ps(buf.as_mut_ptr().add(8), self.0[1]);
                core::ptr::copy_nonoverlapping(buf.as_ptr(), p, cols);
            }
        } else {
            // SAFETY: NR f32 writable at `p` (caller contract, cols = NR).
            unsafe {
                _mm256_storeu_ps(p, self.0[0]);
                _mm256_storeu_ps(p.add(8), self.0[1]);
            }
        }
    }
}

/// [`tile::tile`] of `R` rows × `P` panels on AVX2 (up to 12 ymm accumulators).
///
/// # Safety
/// As for [`tile::tile`], with AVX2, FMA and F16C available.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn tile<const S: u8, const R: usize, const P: usize, const SPLIT: usize>(t: Tile) {
    // SAFETY: forwarded caller contract.
    unsafe { tile::tile::<Ymm2, S, R, P, SPLIT>(t) }
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
        by_rows!(rows, go, [3 2 1])
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
