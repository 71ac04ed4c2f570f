//! AVX-512F microkernel: one zmm per packed panel row (16 columns), FMA accumulation.

use core::arch::x86_64::*;

use super::driver::{self, Init, Microkernel, Problem, Tile, by_rows, elem};
use super::tile::{self, Lanes};
use super::{NR, WeightStorage};
use crate::kernels::half;

/// One zmm: the 16 columns of a panel row.
#[derive(Clone, Copy)]
pub(super) struct Zmm(__m512);

/// The mask of the first `cols` (1..=16) lanes.
#[inline(always)]
fn first(cols: usize) -> __mmask16 {
    ((1u32 << cols) - 1) as u16
}

// SAFETY: the loads and stores touch the named elements only (masked past `cols`).
unsafe impl Lanes for Zmm {
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn zero() -> Zmm {
        Zmm(_mm512_setzero_ps())
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn splat(v: f32) -> Zmm {
        Zmm(_mm512_set1_ps(v))
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn mul_add(self, a: Zmm, b: Zmm) -> Zmm {
        Zmm(_mm512_fmadd_ps(a.0, b.0, self.0))
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn add(self, other: Zmm) -> Zmm {
        Zmm(_mm512_add_ps(self.0, other.0))
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn relu(self) -> Zmm {
        // max(v, 0) returns the second operand for NaN and for ±0: v > 0 ? v : 0.
        Zmm(_mm512_max_ps(self.0, _mm512_setzero_ps()))
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn load_packed<const S: u8>(b: *const u8, idx: usize) -> Zmm {
        let at = elem::<S>(b, idx);
        // SAFETY: forwarded caller contract (unaligned loads).
        unsafe {
            Zmm(match const { WeightStorage::from_code(S) } {
                WeightStorage::F32 => _mm512_loadu_ps(at.cast()),
                WeightStorage::Bf16 => {
                    let h = _mm256_loadu_si256(at.cast());
                    _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(h)))
                }
                WeightStorage::F16 => _mm512_cvtph_ps(_mm256_loadu_si256(at.cast())),
            })
        }
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn load(p: *const f32, cols: usize) -> Zmm {
        // SAFETY: `cols` f32 readable at `p` (caller contract); masked-off lanes are not read.
        Zmm(unsafe { _mm512_maskz_loadu_ps(first(cols), p) })
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn store(self, p: *mut f32, cols: usize) {
        // SAFETY: `cols` f32 writable at `p` (caller contract); masked-off lanes are not written.
        unsafe { _mm512_mask_storeu_ps(p, first(cols), self.0) }
    }
}

/// [`tile::tile`] of `R` rows × `P` panels on AVX-512F (up to 24 zmm accumulators).
///
/// # Safety
/// As for [`tile::tile`], with AVX-512F available.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn tile<const S: u8, const R: usize, const P: usize, const SPLIT: usize>(t: Tile) {
    // SAFETY: forwarded caller contract.
    unsafe { tile::tile::<Zmm, S, R, P, SPLIT>(t) }
}

/// The AVX-512F tiles: up to 12 rows × 2 panels (24 zmm accumulators) in the blocked path,
/// 1 row × 8 panels to 11 rows × 2 panels for small batches, 12 rows × 1 panel in two chains
/// for one-panel weights.
pub(super) struct Avx512;

impl Microkernel for Avx512 {
    const KC: usize = 192;
    const MR: usize = 12;
    const BLOCKED_PANELS: usize = 2;
    const ONE_PANEL_ROWS: usize = 12;
    const SMALL_M_PANELS: &'static [usize] = &[8, 6, 4, 4, 4, 4, 2, 2, 2, 2, 2];

    #[inline(always)]
    unsafe fn tile<const S: u8>(rows: usize, panels: usize, t: Tile) {
        macro_rules! go {
            ($r:literal, $p:literal) => {
                // SAFETY: forwarded caller contract.
                unsafe { tile::<S, $r, $p, 1>(t) }
            };
        }
        match (rows, panels) {
            (_, 1) => by_rows!(rows, go(1), [12 1 2 3 4 5 6 7 8 9 10 11]),
            (_, 2) => by_rows!(rows, go(2), [12 1 2 3 4 5 6 7 8 9 10 11]),
            (1, 8) => go!(1, 8),
            (2, 6) => go!(2, 6),
            (3, 4) => go!(3, 4),
            (4, 4) => go!(4, 4),
            (5, 4) => go!(5, 4),
            (6, 4) => go!(6, 4),
            _ => unreachable!("no AVX-512 tile of {rows} rows × {panels} panels"),
        }
    }

    const NARROW: usize = 4;
    const NARROW_ROWS: usize = 16;

    #[inline(always)]
    unsafe fn narrow_tile<const S: u8>(t: Tile) {
        // SAFETY: forwarded caller contract, with `t.last` outputs.
        unsafe {
            match t.last {
                1 => narrow::<S, 1>(t),
                2 => narrow::<S, 2>(t),
                3 => narrow::<S, 3>(t),
                4 => narrow::<S, 4>(t),
                n => unreachable!("no narrow tile of {n} outputs"),
            }
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
        by_rows!(rows, go, [12 1 2 3 4 5 6 7 8 9 10 11])
    }
}

/// The product `p` on AVX-512F.
///
/// # Safety
/// AVX-512F available; `p` checked by `super::gemm` (m, n > 0).
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn gemm<const S: u8>(p: &Problem) {
    // SAFETY: forwarded caller contract.
    unsafe { driver::gemm::<Avx512, S>(p) }
}

/// Transposes a 16×16 block: row `i` of `src` (16 f32, rows `ld` apart) becomes column `i` of
/// `dst` (16 rows of 16 f32, `ldd` apart). Used by the packer.
///
/// # Safety
/// AVX-512F available; 16 rows of 16 f32 readable at `src` and writable at `dst`.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn transpose16(src: *const f32, ld: usize, dst: *mut f32, ldd: usize) {
    let mut r = [_mm512_setzero_ps(); 16];
    for (i, v) in r.iter_mut().enumerate() {
        // SAFETY: row i of the block is readable (caller contract).
        *v = unsafe { _mm512_loadu_ps(src.add(i * ld)) };
    }
    for (i, v) in transposed(r).iter().enumerate() {
        // SAFETY: row i of the destination block is writable (caller contract).
        unsafe { _mm512_storeu_ps(dst.add(i * ldd), *v) };
    }
}

/// The 16×16 block whose row `i` is lane `i` of each of `r`'s vectors.
#[target_feature(enable = "avx512f")]
#[inline]
fn transposed(mut r: [__m512; 16]) -> [__m512; 16] {
    // 32-bit then 64-bit interleaves within 128-bit lanes: r[4q + c] then holds, in lane L,
    // element 4L + c of rows 4q..4q+4.
    let mut t = [_mm512_setzero_ps(); 16];
    for i in 0..8 {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    let pd = _mm512_castps_pd;
    for q in 0..4 {
        let (a0, a1, b0, b1) = (t[4 * q], t[4 * q + 1], t[4 * q + 2], t[4 * q + 3]);
        r[4 * q] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(a0), pd(b0)));
        r[4 * q + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(a0), pd(b0)));
        r[4 * q + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(a1), pd(b1)));
        r[4 * q + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(a1), pd(b1)));
    }
    // Gather lane L of the four row quads: column 4L + c.
    for c in 0..4 {
        let (q0, q1, q2, q3) = (r[c], r[4 + c], r[8 + c], r[12 + c]);
        let lo01 = _mm512_shuffle_f32x4::<0x44>(q0, q1);
        let hi01 = _mm512_shuffle_f32x4::<0xEE>(q0, q1);
        let lo23 = _mm512_shuffle_f32x4::<0x44>(q2, q3);
        let hi23 = _mm512_shuffle_f32x4::<0xEE>(q2, q3);
        t[c] = _mm512_shuffle_f32x4::<0x88>(lo01, lo23);
        t[4 + c] = _mm512_shuffle_f32x4::<0xDD>(lo01, lo23);
        t[8 + c] = _mm512_shuffle_f32x4::<0x88>(hi01, hi23);
        t[12 + c] = _mm512_shuffle_f32x4::<0xDD>(hi01, hi23);
    }
    t
}

/// [`Microkernel::narrow_tile`] with `N` outputs: 16 rows in the lanes of one vector per
/// output and chain.
///
/// # Safety
/// As for [`Microkernel::narrow_tile`], with `t.last == N`.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn narrow<const S: u8, const N: usize>(t: Tile) {
    const ROWS: usize = Avx512::NARROW_ROWS;
    // Plain loads and conversions: nothing in this closure needs the target features.
    let weight = |kk: usize, j: usize| -> f32 {
        let at = elem::<S>(t.b, kk * NR + j);
        // SAFETY: k-row kk < kc of the one panel, column j < N ≤ NR (caller contract).
        unsafe {
            match const { WeightStorage::from_code(S) } {
                WeightStorage::F32 => *at.cast::<f32>(),
                WeightStorage::Bf16 => half::bf16_to_f32(*at.cast::<u16>()),
                WeightStorage::F16 => half::f16_to_f32(*at.cast::<u16>()),
            }
        }
    };
    let mut even = [_mm512_setzero_ps(); N];
    let mut odd = [_mm512_setzero_ps(); N];
    for (j, acc) in even.iter_mut().enumerate() {
        *acc = match t.init {
            Init::Zero => _mm512_setzero_ps(),
            // SAFETY: the bias of column j < N (caller contract).
            Init::Bias(b) => _mm512_set1_ps(unsafe { *b.add(j) }),
            Init::Load => {
                let mut lanes = [0.0f32; ROWS];
                for (r, lane) in lanes.iter_mut().enumerate() {
                    // SAFETY: C rows 0..16, column j (caller contract).
                    *lane = unsafe { *t.c.add(r * t.ldc + j) };
                }
                // SAFETY: 16 f32 on the stack.
                unsafe { _mm512_loadu_ps(lanes.as_ptr()) }
            }
        };
    }
    let mut k0 = 0;
    while k0 < t.kc {
        let width = (t.kc - k0).min(16);
        let mut block = [_mm512_setzero_ps(); 16];
        let mask = ((1u32 << width) - 1) as u16;
        let mut row = t.a.wrapping_add(k0);
        for v in block.iter_mut() {
            // SAFETY: A rows 0..16, k-steps k0..k0 + width (caller contract); lanes past
            // `width` are not read.
            *v = unsafe { _mm512_maskz_loadu_ps(mask, row) };
            row = row.wrapping_add(t.lda);
        }
        // Column kk of the block: k-step k0 + kk of the 16 rows. The contract's chains: even
        // k-steps (k0 is even) onto the init, odd ones from zero.
        // Loops of constant length, so that the columns stay in registers (a whole block
        // without a test per k-step).
        let columns = transposed(block);
        // (A macro, not a closure: a closure would not inherit this function's target
        // features.)
        macro_rules! step {
            ($kk:expr, $chain:ident) => {
                for (j, acc) in $chain.iter_mut().enumerate() {
                    let w = _mm512_set1_ps(weight(k0 + $kk, j));
                    *acc = _mm512_fmadd_ps(columns[$kk], w, *acc);
                }
            };
        }
        if width == 16 {
            for kk in (0..16).step_by(2) {
                step!(kk, even);
                step!(kk + 1, odd);
            }
        } else {
            for kk in (0..16).step_by(2) {
                if kk < width {
                    step!(kk, even);
                }
                if kk + 1 < width {
                    step!(kk + 1, odd);
                }
            }
        }
        k0 += width;
    }
    let mut out = [[0.0f32; ROWS]; N];
    for j in 0..N {
        let mut v = _mm512_add_ps(even[j], odd[j]);
        if let Some(added) = t.added {
            let mut lanes = [0.0f32; ROWS];
            let (mut row, mut left) = (
                added.first / added.repeat,
                added.repeat - added.first % added.repeat,
            );
            for lane in &mut lanes {
                // SAFETY: the added row of each tile row, column j (caller contract).
                *lane = unsafe { *added.base.add(row * added.ld + j) };
                left -= 1;
                if left == 0 {
                    row += 1;
                    left = added.repeat;
                }
            }
            // SAFETY: 16 f32 on the stack.
            v = _mm512_add_ps(v, unsafe { _mm512_loadu_ps(lanes.as_ptr()) });
        }
        if t.relu {
            v = _mm512_max_ps(v, _mm512_setzero_ps());
        }
        // SAFETY: 16 f32 on the stack.
        unsafe { _mm512_storeu_ps(out[j].as_mut_ptr(), v) };
    }
    for r in 0..ROWS {
        for (j, column) in out.iter().enumerate() {
            // SAFETY: C rows 0..16, column j (caller contract).
            unsafe { *t.c.add(r * t.ldc + j) = column[r] };
        }
    }
}
