//! AVX2+FMA kernel: two ymm per packed panel row (16 columns), FMA accumulation.

use core::arch::x86_64::*;

use super::{GROUP, Init, NR, Problem, S_BF16, S_F32, badd, k_steps, panel_at, tile_span};

/// Packed weights `b[idx..idx+8]` of storage `S`, widened exactly to f32.
///
/// # Safety
/// AVX2, FMA and F16C available; 8 elements of storage `S` readable at element `idx` of `b`.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn load_b<const S: u8>(b: *const f32, idx: usize) -> __m256 {
    // SAFETY: forwarded caller contract.
    unsafe {
        if S == S_F32 {
            _mm256_loadu_ps(b.add(idx))
        } else {
            let h = _mm_loadu_si128(badd::<S>(b, idx).cast());
            if S == S_BF16 {
                _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(h)))
            } else {
                _mm256_cvtph_ps(h)
            }
        }
    }
}

/// Rows of the large-m micro-tile (tile = MR rows × 1 panel = 12 ymm accumulators).
const MR: usize = 6;
/// Block of k for large m: the panel slice of the packed weight (KC×16 f32) stays in L1.
const KC: usize = 256;
/// f32 budget of one row block of C plus its A block (rows × (n + KC)), to stay in L2.
const L2_BLOCK: usize = 96 * 1024;

/// Micro-tile: `R` rows × `P` panels, accumulating k-steps `0..kc` in `SPLIT` interleaved
/// chains (1, or 2 for one-panel weights: see the module's contract; `kc` is then all of k).
///
/// `a` addresses A[row0][k0], `b` the packed row k0 of the first panel, `c` addresses
/// C[row0][col0]. Panel `q` of the tile is `(q / GROUP)·gstride + (q % GROUP)·NR` elements
/// from the first (a tile spans whole groups, or stays in one), its k-rows `kstride` apart.
/// `last` (1..=16) is how many columns of panel `P-1` are real (the others are fully stored);
/// a partial last panel goes through a stack buffer.
///
/// # Safety
/// AVX2+FMA available; A rows `0..R` × `0..kc`, packed panels `0..P` × `0..kc`, and C rows
/// `0..R` × columns `0..(P-1)*NR+last` (and the bias, if any, for those columns) in bounds.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
unsafe fn tile<const S: u8, const R: usize, const P: usize, const SPLIT: usize>(
    kc: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    kstride: usize,
    gstride: usize,
    init: Init,
    c: *mut f32,
    ldc: usize,
    last: usize,
    relu: bool,
) {
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
            let i = (q / GROUP) * gstride + (q % GROUP) * NR + kk * kstride;
            // SAFETY: packed panel q has kc rows of NR elements, `kstride` apart (see above).
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

/// All panels for `R` rows: tiles of `P` panels over whole groups, then of 2 or 1 panels
/// within a group.
///
/// # Safety
/// As for [`tile`], for rows `0..R` of the problem.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn row_panels<const S: u8, const R: usize, const P: usize>(p: &Problem) {
    let np = p.n.div_ceil(NR);
    let last = p.n - (np - 1) * NR;
    let mut q = 0;
    while q < np {
        let at = panel_at(q, np, p.k);
        let span = tile_span(q, np, P, &at);
        let w = if span >= P {
            P
        } else if span >= 2 {
            2
        } else {
            1
        };
        let lastv = if q + w == np { last } else { NR };
        let b = badd::<S>(p.b, at.offset);
        let ks = at.kstride;
        let gs = GROUP * NR * p.k;
        let c = p.c.wrapping_add(q * NR);
        let init = p.init.offset(q * NR);
        // SAFETY: panels q..q+w exist, in whole groups or in one (`tile_span`), and the caller
        // guarantees the rows.
        unsafe {
            match w {
                1 => tile::<S, R, 1, 1>(p.k, p.a, p.lda, b, ks, gs, init, c, p.ldc, lastv, p.relu),
                2 => tile::<S, R, 2, 1>(p.k, p.a, p.lda, b, ks, gs, init, c, p.ldc, lastv, p.relu),
                _ => tile::<S, R, P, 1>(p.k, p.a, p.lda, b, ks, gs, init, c, p.ldc, lastv, p.relu),
            }
        }
        q += w;
    }
}

/// Large m: blocked over rows (a block of C, plus the A block, stays in L2), then k (KC),
/// panels, then MR-row tiles.
///
/// # Safety
/// AVX2+FMA available; `p` validated by `check`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn blocked<const S: u8>(p: &Problem) {
    let np = p.n.div_ceil(NR);
    let last = p.n - (np - 1) * NR;
    let mc = (L2_BLOCK / (p.n + KC.min(p.k))).max(MR) / MR * MR;
    let mut m0 = 0;
    while m0 < p.m {
        let m1 = (m0 + mc).min(p.m);
        let mut k0 = 0;
        loop {
            let kc = KC.min(p.k - k0);
            let init = if k0 == 0 { p.init } else { Init::Load };
            let relu = p.relu && k0 + kc >= p.k;
            for q in 0..np {
                let lastv = if q + 1 == np { last } else { NR };
                let at = panel_at(q, np, p.k);
                let b = badd::<S>(p.b, at.offset + k0 * at.kstride);
                let ks = at.kstride;
                let init = init.offset(q * NR);
                let mut r0 = m0;
                while r0 < m1 {
                    let rows = MR.min(m1 - r0);
                    let a = p.a.wrapping_add(r0 * p.lda + k0);
                    let c = p.c.wrapping_add(r0 * p.ldc + q * NR);
                    macro_rules! go {
                        ($r:literal) => {
                            // SAFETY: rows r0..r0+$r < m, panel q < np, k0+kc <= k.
                            unsafe {
                                tile::<S, $r, 1, 1>(
                                    kc, a, p.lda, b, ks, 0, init, c, p.ldc, lastv, relu,
                                )
                            }
                        };
                    }
                    match rows {
                        6 => go!(6),
                        1 => go!(1),
                        2 => go!(2),
                        3 => go!(3),
                        4 => go!(4),
                        _ => go!(5),
                    }
                    r0 += rows;
                }
            }
            k0 += kc;
            if k0 >= p.k {
                break;
            }
        }
        m0 = m1;
    }
}

/// Rows of the one-panel tile: 3 rows × 2 chains × 2 ymm = 12 accumulators.
const MR_ONE_PANEL: usize = 3;

/// A one-panel weight (n ≤ NR), any m: tiles of up to three rows over all of k in two chains
/// (the module's contract), with no blocking: the panel (k × NR) is read once per tile.
///
/// # Safety
/// AVX2+FMA available; `p` validated by `check`, `p.n <= NR`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn one_panel<const S: u8>(p: &Problem) {
    let mut r0 = 0;
    while r0 < p.m {
        let rows = MR_ONE_PANEL.min(p.m - r0);
        let a = p.a.wrapping_add(r0 * p.lda);
        let c = p.c.wrapping_add(r0 * p.ldc);
        macro_rules! go {
            ($r:literal) => {
                // SAFETY: rows r0..r0+$r < m, the one panel (k-rows NR apart), all k-steps.
                unsafe {
                    tile::<S, $r, 1, 2>(p.k, a, p.lda, p.b, NR, 0, p.init, c, p.ldc, p.n, p.relu)
                }
            };
        }
        match rows {
            3 => go!(3),
            2 => go!(2),
            _ => go!(1),
        }
        r0 += rows;
    }
}

/// # Safety
/// AVX2+FMA available; `p` validated by `check` (m, n > 0).
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn gemm<const S: u8>(p: Problem) {
    // SAFETY: rows 0..m exist; row_panels::<R,_> is only called with R == m.
    unsafe {
        if p.n <= NR {
            return one_panel::<S>(&p);
        }
        match p.m {
            1 => row_panels::<S, 1, 4>(&p),
            2 => row_panels::<S, 2, 2>(&p),
            3 => row_panels::<S, 3, 1>(&p),
            4 => row_panels::<S, 4, 1>(&p),
            5 => row_panels::<S, 5, 1>(&p),
            _ => blocked::<S>(&p),
        }
    }
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
