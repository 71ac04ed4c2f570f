//! The narrow kernel: the product on a weight in the [`PanelLayout::Narrow`] layout (a packed
//! image's, for Cortex-M4F/M7 cores; `packed.rs` describes it), in plain Rust on every target.
//!
//! It follows the portable contract of the parent module exactly: each step a multiply then
//! an add, each rounded (never fused), in k order, and the two chains of a weight of at most
//! [`NR`] outputs. So a product on a narrow weight has the bits of the portable kernel's on
//! the same weight packed for the host, and a Cortex-M firmware's results are reproduced on a
//! PC bit for bit (`innfer sample --isa portable`).
//!
//! A tile is one row × up to [`NARROW_NR`] columns of one panel: 8 sums, or 16 for the two
//! chains, plus 8 weights and the activation fit the 32 single-precision registers of a
//! Cortex-M4F. On bare-metal hard-float ARM targets the k-loops of f32 and f16 tiles whose
//! k-rows lie back to back run in assembly (`cortex_m.rs`: one `vmla.f32` per step, the FPU's
//! multiply-accumulate, which rounds the product before the add, unlike `vfma`); everything
//! else, and every other target, runs the Rust loops below. docs/format.md gives the
//! measured instructions per multiply-add.
//!
//! [`PanelLayout::Narrow`]: super::PanelLayout::Narrow

use super::driver::{Added, Init, Problem, elem};
use super::{NARROW_NR, NR, WeightStorage};
use crate::kernels::half;

/// The product `p` on a weight in the narrow layout: row by row, panel by panel, each panel
/// in tiles of 8, 4, 2 and 1 columns.
///
/// # Safety
/// `p` checked by `super::gemm` (m, n > 0) for a weight in the narrow layout of storage `S`,
/// its elements aligned to their size.
pub(super) unsafe fn gemm<const S: u8>(p: &Problem) {
    // SAFETY: forwarded caller contract.
    unsafe {
        if p.n <= NR {
            rows::<S, 2>(p)
        } else {
            rows::<S, 1>(p)
        }
    }
}

/// [`gemm`] with `SPLIT` chains per sum (2 for a weight of at most [`NR`] outputs).
///
/// # Safety
/// As for [`gemm`].
#[inline(always)]
unsafe fn rows<const S: u8, const SPLIT: usize>(p: &Problem) {
    for i in 0..p.m {
        let mut first = 0;
        while first < p.n {
            let width = (p.n - first).min(NARROW_NR);
            let mut col = 0;
            while col < width {
                let t = Columns {
                    a: p.a.wrapping_add(i * p.lda),
                    k: p.k,
                    b: elem::<S>(p.b, first * p.k + col),
                    kstride: width,
                    init: p.init.offset(first + col),
                    c: p.c.wrapping_add(i * p.ldc + first + col),
                    added: p.added.map(|s| added_row(s, i, first + col)),
                    relu: p.relu,
                };
                // SAFETY: row i < m, columns first + col.. of the panel at `first`, which
                // holds `width` columns, each k-row `width` elements (caller contract).
                unsafe {
                    col += match width - col {
                        8.. => tile::<S, 8, SPLIT>(t),
                        4..=7 => tile::<S, 4, SPLIT>(t),
                        2 | 3 => tile::<S, 2, SPLIT>(t),
                        _ => tile::<S, 1, SPLIT>(t),
                    };
                }
            }
            first += width;
        }
    }
}

/// The address of the row added to output row `i`, at column `col`.
#[inline(always)]
fn added_row(s: Added, i: usize, col: usize) -> *const f32 {
    s.base.wrapping_add((s.first + i) / s.repeat * s.ld + col)
}

/// One tile's operands: one row, `W` columns of a panel.
#[derive(Clone, Copy)]
struct Columns {
    /// The row of A (`k` values).
    a: *const f32,
    k: usize,
    /// The tile's first weight at k-row 0; k-row `kk` is `kk · kstride` elements on.
    b: *const u8,
    kstride: usize,
    init: Init,
    /// The tile's first output.
    c: *mut f32,
    /// The tile's first value of its added row.
    added: Option<*const f32>,
    relu: bool,
}

/// One row × `W` columns: each sum starts at its init, takes the k-steps in `SPLIT` chains
/// (the contract's order), then its added value and the ReLU; returns `W`.
///
/// # Safety
/// `t`'s A row has `k` values, its weights `W` elements of storage `S` at each k-row, its
/// output, init and added values `W` values each.
#[inline(always)]
unsafe fn tile<const S: u8, const W: usize, const SPLIT: usize>(t: Columns) -> usize {
    // SAFETY: forwarded caller contract.
    unsafe {
        let mut even = init::<W>(&t);
        let mut odd = [0.0; W];
        // The steps the Cortex-M routines take (cortex_m.rs: the same operations in the same
        // order), for f32 and f16 k-rows that lie back to back; the rest below.
        #[cfg(all(target_arch = "arm", target_os = "none", target_abi = "eabihf"))]
        if t.kstride == W {
            let done = super::cortex_m::steps::<S, W, SPLIT>(&mut even, &mut odd, t.a, t.b, t.k);
            if done > 0 {
                if done < t.k {
                    step::<S, W>(&mut even, &t, done);
                }
                return finish::<W, SPLIT>(&t, even, odd);
            }
        }
        if SPLIT == 1 {
            for kk in 0..t.k {
                step::<S, W>(&mut even, &t, kk);
            }
        } else {
            let mut kk = 0;
            while kk + 2 <= t.k {
                step::<S, W>(&mut even, &t, kk);
                step::<S, W>(&mut odd, &t, kk + 1);
                kk += 2;
            }
            if kk < t.k {
                step::<S, W>(&mut even, &t, kk);
            }
        }
        finish::<W, SPLIT>(&t, even, odd)
    }
}

/// The `W` sums' starting values: 0, the bias, or the output's current values.
///
/// # Safety
/// As for [`tile`].
#[inline(always)]
unsafe fn init<const W: usize>(t: &Columns) -> [f32; W] {
    // SAFETY: W values at each address (caller contract).
    unsafe {
        match t.init {
            Init::Zero => [0.0; W],
            Init::Bias(b) => core::ptr::read(b.cast::<[f32; W]>()),
            Init::Load => core::ptr::read(t.c.cast::<[f32; W]>()),
        }
    }
}

/// k-step `kk` onto `acc`: `acc[j] + a[kk]·w[kk][j]`, the product and the sum each rounded.
///
/// # Safety
/// As for [`tile`], with `kk < k`.
#[inline(always)]
unsafe fn step<const S: u8, const W: usize>(acc: &mut [f32; W], t: &Columns, kk: usize) {
    // SAFETY: forwarded caller contract.
    let (av, wv) = unsafe { (*t.a.add(kk), weights::<S, W>(t.b, kk * t.kstride)) };
    for j in 0..W {
        acc[j] += av * wv[j];
    }
}

/// The sums finished (the odd chain added to the even one when there are two, then the added
/// values, then the ReLU) and stored; returns `W`.
///
/// # Safety
/// As for [`tile`].
#[inline(always)]
unsafe fn finish<const W: usize, const SPLIT: usize>(
    t: &Columns,
    mut sums: [f32; W],
    odd: [f32; W],
) -> usize {
    if SPLIT == 2 {
        for j in 0..W {
            sums[j] += odd[j];
        }
    }
    // SAFETY: W values at each address (caller contract).
    unsafe {
        if let Some(s) = t.added {
            let s = core::ptr::read(s.cast::<[f32; W]>());
            for j in 0..W {
                sums[j] += s[j];
            }
        }
        if t.relu {
            sums = sums.map(|v| if v > 0.0 { v } else { 0.0 });
        }
        core::ptr::write(t.c.cast::<[f32; W]>(), sums);
    }
    W
}

/// The `W` weights at element `idx` of `b`, widened exactly to f32: aligned loads (the
/// layout keeps each element at a multiple of its size), so a Cortex-M reads f32 weights
/// straight into floating-point registers.
///
/// # Safety
/// `W` elements of storage `S` readable at `idx`, aligned to the element size.
#[inline(always)]
unsafe fn weights<const S: u8, const W: usize>(b: *const u8, idx: usize) -> [f32; W] {
    let at = elem::<S>(b, idx);
    // SAFETY: forwarded caller contract.
    unsafe {
        match const { WeightStorage::from_code(S) } {
            WeightStorage::F32 => core::ptr::read(at.cast::<[f32; W]>()),
            WeightStorage::Bf16 => core::ptr::read(at.cast::<[u16; W]>()).map(half::bf16_to_f32),
            WeightStorage::F16 => core::ptr::read(at.cast::<[u16; W]>()).map(half::f16_to_f32),
        }
    }
}
