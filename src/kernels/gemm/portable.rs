//! Portable microkernel: plain Rust over `[f32; NR]` accumulators, written for
//! auto-vectorisation. Each step is a separate multiply then add (`acc + a*b`), never
//! `mul_add`.

use super::driver::{self, Microkernel, Problem, Tile, elem};
use super::tile::{self, Lanes};
use super::{NR, WeightStorage};
use crate::kernels::half;

/// A panel row as plain f32, for the compiler to vectorise.
#[derive(Clone, Copy)]
pub(super) struct Row([f32; NR]);

// SAFETY: the loads and stores touch the named elements only (element by element).
unsafe impl Lanes for Row {
    #[inline(always)]
    unsafe fn zero() -> Row {
        Row([0.0; NR])
    }

    #[inline(always)]
    unsafe fn splat(v: f32) -> Row {
        Row([v; NR])
    }

    #[inline(always)]
    unsafe fn mul_add(self, a: Row, b: Row) -> Row {
        let mut acc = self.0;
        for ((acc, a), b) in acc.iter_mut().zip(a.0).zip(b.0) {
            *acc += a * b;
        }
        Row(acc)
    }

    #[inline(always)]
    unsafe fn add(self, other: Row) -> Row {
        Row(core::array::from_fn(|j| self.0[j] + other.0[j]))
    }

    #[inline(always)]
    unsafe fn relu(self) -> Row {
        Row(self.0.map(|v| if v > 0.0 { v } else { 0.0 }))
    }

    #[inline(always)]
    unsafe fn load_packed<const S: u8>(b: *const u8, idx: usize) -> Row {
        let at = elem::<S>(b, idx);
        Row(match const { WeightStorage::from_code(S) } {
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
        })
    }

    #[inline(always)]
    unsafe fn load(p: *const f32, cols: usize) -> Row {
        if cols == NR {
            // SAFETY: NR f32 readable at `p` (caller contract); unaligned read.
            return Row(unsafe { core::ptr::read_unaligned(p.cast()) });
        }
        let mut v = [0.0; NR];
        for (j, v) in v[..cols].iter_mut().enumerate() {
            // SAFETY: `cols` f32 readable at `p` (caller contract).
            *v = unsafe { *p.add(j) };
        }
        Row(v)
    }

    #[inline(always)]
    unsafe fn store(self, p: *mut f32, cols: usize) {
        if cols == NR {
            // SAFETY: NR f32 writable at `p` (caller contract); unaligned write.
            return unsafe { core::ptr::write_unaligned(p.cast(), self.0) };
        }
        for (j, &v) in self.0[..cols].iter().enumerate() {
            // SAFETY: `cols` f32 writable at `p` (caller contract).
            unsafe { *p.add(j) = v };
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
        unsafe { tile::tile::<Row, S, 1, 1, 1>(t) }
    }

    #[inline(always)]
    unsafe fn one_panel_tile<const S: u8>(rows: usize, t: Tile) {
        debug_assert!(rows == 1, "portable tiles have one row");
        // SAFETY: forwarded caller contract.
        unsafe { tile::tile::<Row, S, 1, 1, 2>(t) }
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
