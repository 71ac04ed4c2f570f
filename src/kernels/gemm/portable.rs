//! Portable microkernel: plain Rust over `[f32; NR]` accumulators, written for
//! auto-vectorisation. Each step is a separate multiply then add (`acc + a*b`), never
//! `mul_add`.

use super::driver::{self, Init, Microkernel, Problem, Tile, elem, k_steps};
use super::{NR, WeightStorage};
use crate::kernels::half;

/// Packed weights `b[idx..idx+NR]` of storage `S`, widened exactly to f32.
///
/// # Safety
/// NR elements of storage `S` readable at element `idx` of `b`.
#[inline(always)]
unsafe fn load_b<const S: u8>(b: *const u8, idx: usize) -> [f32; NR] {
    let at = elem::<S>(b, idx);
    match const { WeightStorage::from_code(S) } {
        // SAFETY: forwarded caller contract; unaligned read.
        WeightStorage::F32 => unsafe { core::ptr::read_unaligned(at.cast()) },
        WeightStorage::Bf16 => {
            // SAFETY: forwarded caller contract; unaligned read.
            let h: [u16; NR] = unsafe { core::ptr::read_unaligned(at.cast()) };
            h.map(half::bf16_to_f32)
        }
        WeightStorage::F16 => {
            // SAFETY: forwarded caller contract; unaligned read.
            let h: [u16; NR] = unsafe { core::ptr::read_unaligned(at.cast()) };
            h.map(half::f16_to_f32)
        }
    }
}

/// Micro-tile: `R` rows × 1 panel of `t`, accumulating k-steps `0..t.kc` in `SPLIT`
/// interleaved chains (1, or 2 for one-panel weights: see the GEMM's contract; `kc` is then
/// all of k); `t.last` (1..=16) real columns.
///
/// # Safety
/// As for [`Microkernel::tile`], with `R` rows and one panel.
#[inline(always)]
#[allow(clippy::needless_range_loop)]
unsafe fn tile<const S: u8, const R: usize, const SPLIT: usize>(t: Tile) {
    let Tile {
        kc,
        a,
        lda,
        b,
        init,
        c,
        ldc,
        last: valid,
        relu,
        ..
    } = t;
    let mut acc = [[0f32; NR]; R];
    match init {
        Init::Zero => {}
        Init::Bias(bp) => {
            for j in 0..valid {
                // SAFETY: the bias covers the tile's `valid` columns.
                let v = unsafe { *bp.add(j) };
                for r in 0..R {
                    acc[r][j] = v;
                }
            }
        }
        Init::Load => {
            for r in 0..R {
                for j in 0..valid {
                    // SAFETY: C row r covers the tile's `valid` columns.
                    acc[r][j] = unsafe { *c.add(r * ldc + j) };
                }
            }
        }
    }
    // Even k-steps onto the init, odd ones (SPLIT = 2) from zero, added at the end.
    let mut odd = [[0f32; NR]; R];
    k_steps::<_, SPLIT>(kc, &mut acc, &mut odd, |chain: &mut [[f32; NR]; R], kk| {
        // SAFETY: the packed panel has kc k-rows of NR elements (`Tile::panel_elem`).
        let bv: [f32; NR] = unsafe { load_b::<S>(b, t.panel_elem(0, kk)) };
        for r in 0..R {
            // SAFETY: A row r has kc elements from `a + r*lda`.
            let av = unsafe { *a.add(r * lda + kk) };
            for j in 0..NR {
                chain[r][j] += av * bv[j];
            }
        }
    });
    if SPLIT == 2 {
        for r in 0..R {
            for j in 0..NR {
                acc[r][j] += odd[r][j];
            }
        }
    }
    for r in 0..R {
        for j in 0..valid {
            let v = acc[r][j];
            // ReLU as `v > 0 ? v : 0` (NaN and −0 give +0).
            let v = if relu && v.partial_cmp(&0.0) != Some(core::cmp::Ordering::Greater) {
                0.0
            } else {
                v
            };
            // SAFETY: C row r covers the tile's `valid` columns.
            unsafe { *c.add(r * ldc + j) = v };
        }
    }
}

/// The portable tiles: 1 row × 1 panel (multi-row tiles made LLVM's SLP vectoriser shuffle
/// and spill, 4× slower on x86-64 SSE2), blocked for every batch with more than one panel.
pub(super) struct Portable;

impl Microkernel for Portable {
    const KC: usize = 256;
    const MR: usize = 1;
    const BLOCKED_PANELS: usize = 1;
    const ONE_PANEL_ROWS: usize = 1;
    const SMALL_M_PANELS: &'static [usize] = &[];

    #[inline(always)]
    unsafe fn tile<const S: u8>(rows: usize, panels: usize, t: Tile) {
        debug_assert!(rows == 1 && panels == 1, "portable tiles are 1 × 1");
        // SAFETY: forwarded caller contract.
        unsafe { tile::<S, 1, 1>(t) }
    }

    #[inline(always)]
    unsafe fn one_panel_tile<const S: u8>(rows: usize, t: Tile) {
        debug_assert!(rows == 1, "portable tiles have one row");
        // SAFETY: forwarded caller contract.
        unsafe { tile::<S, 1, 2>(t) }
    }
}

/// The product `p` with the portable tiles.
///
/// # Safety
/// `p` checked by `super::gemm` (m, n > 0).
pub(super) unsafe fn gemm<const S: u8>(p: &Problem) {
    // SAFETY: forwarded caller contract.
    unsafe { driver::gemm::<Portable, S>(p) }
}
