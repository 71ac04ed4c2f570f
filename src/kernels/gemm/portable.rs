//! Portable kernel: plain Rust over `[f32; NR]` accumulators, written for auto-vectorisation.
//! Each step is a separate multiply then add (`acc + a*b`), never `mul_add`.

use super::{HalfFormat, Init, NR, Problem, S_BF16, S_F32, badd, k_steps, panel_at};

/// Packed weights `b[idx..idx+NR]` of storage `S`, widened exactly to f32.
///
/// # Safety
/// NR elements of storage `S` readable at element `idx` of `b`.
#[inline(always)]
unsafe fn load_b<const S: u8>(b: *const f32, idx: usize) -> [f32; NR] {
    if S == S_F32 {
        // SAFETY: forwarded caller contract; unaligned read.
        unsafe { core::ptr::read_unaligned(b.add(idx).cast()) }
    } else {
        // SAFETY: forwarded caller contract; unaligned read.
        let h: [u16; NR] = unsafe { core::ptr::read_unaligned(badd::<S>(b, idx).cast()) };
        let f = if S == S_BF16 {
            HalfFormat::Bf16
        } else {
            HalfFormat::F16
        };
        h.map(|v| f.decode(v))
    }
}

/// Block of k for large m: the panel slice of the packed weight (KC×16 f32) stays in L1.
const KC: usize = 256;
/// Rows per block for large m: the A block (MC×KC f32) stays in L2.
const MC: usize = 256;

/// Micro-tile: `R` rows × 1 panel, accumulating k-steps `0..kc` in `SPLIT` interleaved chains
/// (1, or 2 for one-panel weights: see the module's contract; `kc` is then all of k); `valid`
/// (1..=16) real columns. `b` addresses the panel's packed k-row k0, the following k-rows
/// `kstride` apart.
///
/// # Safety
/// A rows `0..R` × `0..kc` from `a`, the packed panel rows `0..kc` from `b`, and C rows `0..R`
/// × columns `0..valid` from `c` (and the bias, if any, for those columns) in bounds.
#[inline(always)]
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
unsafe fn tile<const S: u8, const R: usize, const SPLIT: usize>(
    kc: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    kstride: usize,
    init: Init,
    c: *mut f32,
    ldc: usize,
    valid: usize,
    relu: bool,
) {
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
        // SAFETY: the packed panel has kc rows of NR elements, `kstride` apart.
        let bv: [f32; NR] = unsafe { load_b::<S>(b, kk * kstride) };
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

/// Blocked over k (KC), rows (MC), panels, then rows one at a time (1×16 tiles: multi-row
/// tiles made LLVM's SLP vectoriser shuffle and spill, 4× slower on x86-64 SSE2).
pub(super) fn gemm<const S: u8>(p: Problem) {
    if p.n <= NR {
        // One panel: all of k in two chains (the module's contract), a row at a time.
        for r in 0..p.m {
            let a = p.a.wrapping_add(r * p.lda);
            let c = p.c.wrapping_add(r * p.ldc);
            // SAFETY: `check` validated the slices; row r < m, the one panel (k-rows NR
            // apart), all k-steps.
            unsafe { tile::<S, 1, 2>(p.k, a, p.lda, p.b, NR, p.init, c, p.ldc, p.n, p.relu) };
        }
        return;
    }
    let np = p.n.div_ceil(NR);
    let last = p.n - (np - 1) * NR;
    let mut k0 = 0;
    loop {
        let kc = KC.min(p.k - k0);
        let init = if k0 == 0 { p.init } else { Init::Load };
        let relu = p.relu && k0 + kc >= p.k;
        let mut m0 = 0;
        while m0 < p.m {
            let m1 = (m0 + MC).min(p.m);
            for q in 0..np {
                let valid = if q + 1 == np { last } else { NR };
                let at = panel_at(q, np, p.k);
                let b = badd::<S>(p.b, at.offset + k0 * at.kstride);
                let init = init.offset(q * NR);
                for r in m0..m1 {
                    let a = p.a.wrapping_add(r * p.lda + k0);
                    let c = p.c.wrapping_add(r * p.ldc + q * NR);
                    // SAFETY: `check` validated the slices for the whole problem; this tile is
                    // row r < m, panel q < np, k-steps k0..k0+kc <= k.
                    unsafe {
                        tile::<S, 1, 1>(kc, a, p.lda, b, at.kstride, init, c, p.ldc, valid, relu)
                    };
                }
            }
            m0 = m1;
        }
        k0 += kc;
        if k0 >= p.k {
            break;
        }
    }
}
