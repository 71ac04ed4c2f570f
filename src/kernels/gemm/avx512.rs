//! AVX-512F kernel: one zmm per packed panel row (16 columns), FMA accumulation.

use core::arch::x86_64::*;

use super::{GROUP, Init, NR, Problem, S_BF16, S_F32, badd, k_steps, panel_at, tile_span};

/// Packed weights `b[idx..idx+16]` of storage `S`, widened exactly to f32.
///
/// # Safety
/// AVX-512F available; 16 elements of storage `S` readable at element `idx` of `b`.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn load_b<const S: u8>(b: *const f32, idx: usize) -> __m512 {
    // SAFETY: forwarded caller contract.
    unsafe {
        if S == S_F32 {
            _mm512_loadu_ps(b.add(idx))
        } else {
            let h = _mm256_loadu_si256(badd::<S>(b, idx).cast());
            if S == S_BF16 {
                _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(h)))
            } else {
                _mm512_cvtph_ps(h)
            }
        }
    }
}

/// Rows of the large-m micro-tile (tile = MR rows × 2 panels = 24 zmm accumulators).
const MR: usize = 12;
/// Block of k for large m: the 2-panel slice of the packed weight (KC×32 f32) stays in L1.
const KC: usize = 192;
/// f32 budget of one row block of C plus its A block (rows × (n + KC)), to stay in L2.
const L2_BLOCK: usize = 96 * 1024;

/// Micro-tile: `R` rows × `P` panels, accumulating k-steps `0..kc` in `SPLIT` interleaved
/// chains (1, or 2 for one-panel weights: see the module's contract; `kc` is then all of k).
///
/// `a` addresses A[row0][k0], `b` the packed row k0 of the first panel, `c` addresses
/// C[row0][col0]. Panel `q` of the tile is `(q / GROUP)·gstride + (q % GROUP)·NR` elements
/// from the first (a tile spans whole groups, or stays in one), its k-rows `kstride` apart.
/// `last` (1..=16) is how many columns of panel `P-1` are real (the others are fully stored).
///
/// # Safety
/// AVX-512F available; A rows `0..R` × `0..kc`, packed panels `0..P` × `0..kc`, and C rows
/// `0..R` × columns `0..(P-1)*NR+last` (and the bias, if any, for those columns) in bounds.
#[target_feature(enable = "avx512f")]
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
    let mut mask = [0xFFFFu16; P];
    mask[P - 1] = ((1u32 << last) - 1) as u16;
    let mut acc = [[_mm512_setzero_ps(); P]; R];
    match init {
        Init::Zero => {}
        Init::Bias(bp) => {
            for q in 0..P {
                // SAFETY: bias covers the tile's real columns; masked-off lanes are not accessed.
                let v = unsafe { _mm512_maskz_loadu_ps(mask[q], bp.add(q * NR)) };
                for r in 0..R {
                    acc[r][q] = v;
                }
            }
        }
        Init::Load => {
            for r in 0..R {
                for q in 0..P {
                    // SAFETY: C row r covers the tile's real columns; masked lanes untouched.
                    acc[r][q] = unsafe { _mm512_maskz_loadu_ps(mask[q], c.add(r * ldc + q * NR)) };
                }
            }
        }
    }
    // One k-step into chain `acc`.
    let step = |acc: &mut [[__m512; P]; R], kk: usize| {
        let mut bv = [_mm512_setzero_ps(); P];
        for q in 0..P {
            let at = (q / GROUP) * gstride + (q % GROUP) * NR + kk * kstride;
            // SAFETY: packed panel q has kc rows of NR f32, `kstride` apart (see above).
            bv[q] = unsafe { load_b::<S>(b, at) };
        }
        for r in 0..R {
            // SAFETY: A row r has kc elements from `a + r*lda`.
            let av = _mm512_set1_ps(unsafe { *a.add(r * lda + kk) });
            for q in 0..P {
                acc[r][q] = _mm512_fmadd_ps(av, bv[q], acc[r][q]);
            }
        }
    };
    // Even k-steps onto the init, odd ones (SPLIT = 2) from zero, added at the end.
    let mut odd = [[_mm512_setzero_ps(); P]; R];
    k_steps::<_, SPLIT>(kc, &mut acc, &mut odd, step);
    if SPLIT == 2 {
        for r in 0..R {
            for q in 0..P {
                acc[r][q] = _mm512_add_ps(acc[r][q], odd[r][q]);
            }
        }
    }
    if relu {
        let zero = _mm512_setzero_ps();
        for r in 0..R {
            for q in 0..P {
                // max(v, 0) returns the second operand for NaN and for ±0: v > 0 ? v : 0.
                acc[r][q] = _mm512_max_ps(acc[r][q], zero);
            }
        }
    }
    for r in 0..R {
        for q in 0..P {
            // SAFETY: C row r covers the tile's real columns; masked-off lanes are not written.
            unsafe { _mm512_mask_storeu_ps(c.add(r * ldc + q * NR), mask[q], acc[r][q]) };
        }
    }
}

/// All panels for `R` rows: tiles of `P` panels over whole groups, then of 2 or 1 panels
/// within a group.
///
/// # Safety
/// As for [`tile`], for rows `0..R` of the problem.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn row_panels<const S: u8, const R: usize, const P: usize>(p: &Problem) {
    let np = p.n.div_ceil(NR);
    let last = p.n - (np - 1) * NR;
    let a = p.a;
    let c = p.c;
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
        let cc = c.wrapping_add(q * NR);
        let init = p.init.offset(q * NR);
        // SAFETY: panels q..q+w exist, in whole groups or in one (`tile_span`), and the caller
        // guarantees the rows.
        unsafe {
            match w {
                1 => tile::<S, R, 1, 1>(p.k, a, p.lda, b, ks, gs, init, cc, p.ldc, lastv, p.relu),
                2 => tile::<S, R, 2, 1>(p.k, a, p.lda, b, ks, gs, init, cc, p.ldc, lastv, p.relu),
                _ => tile::<S, R, P, 1>(p.k, a, p.lda, b, ks, gs, init, cc, p.ldc, lastv, p.relu),
            }
        }
        q += w;
    }
}

/// One MR-or-fewer row tile × `P` panels (`SPLIT` chains), for the blocked large-m path and
/// one-panel weights.
///
/// # Safety
/// As for [`tile`]; `rows` in 1..=MR.
#[target_feature(enable = "avx512f")]
#[inline]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_rows<const S: u8, const P: usize, const SPLIT: usize>(
    rows: usize,
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
    macro_rules! go {
        ($r:literal) => {
            // SAFETY: forwarded caller contract.
            unsafe {
                tile::<S, $r, P, SPLIT>(kc, a, lda, b, kstride, gstride, init, c, ldc, last, relu)
            }
        };
    }
    match rows {
        12 => go!(12),
        1 => go!(1),
        2 => go!(2),
        3 => go!(3),
        4 => go!(4),
        5 => go!(5),
        6 => go!(6),
        7 => go!(7),
        8 => go!(8),
        9 => go!(9),
        10 => go!(10),
        _ => go!(11),
    }
}

/// Large m: blocked over rows (a block of C, plus the A block, stays in L2), then k (KC),
/// panel pairs, then MR-row tiles.
///
/// # Safety
/// AVX-512F available; `p` validated by `check`.
#[target_feature(enable = "avx512f")]
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
            let mut q = 0;
            while q < np {
                let at = panel_at(q, np, p.k);
                let w = at.rest.min(2);
                let lastv = if q + w == np { last } else { NR };
                let b = badd::<S>(p.b, at.offset + k0 * at.kstride);
                let ks = at.kstride;
                let init = init.offset(q * NR);
                let mut r0 = m0;
                while r0 < m1 {
                    let rows = MR.min(m1 - r0);
                    let a = p.a.wrapping_add(r0 * p.lda + k0);
                    let c = p.c.wrapping_add(r0 * p.ldc + q * NR);
                    // SAFETY: rows r0..r0+rows < m, panels q..q+w < np in one group,
                    // k0+kc <= k.
                    unsafe {
                        if w == 2 {
                            tile_rows::<S, 2, 1>(
                                rows, kc, a, p.lda, b, ks, 0, init, c, p.ldc, lastv, relu,
                            );
                        } else {
                            tile_rows::<S, 1, 1>(
                                rows, kc, a, p.lda, b, ks, 0, init, c, p.ldc, lastv, relu,
                            );
                        }
                    }
                    r0 += rows;
                }
                q += w;
            }
            k0 += kc;
            if k0 >= p.k {
                break;
            }
        }
        m0 = m1;
    }
}

/// A one-panel weight (n ≤ NR), any m: MR-row tiles over all of k in two chains (the
/// module's contract), with no blocking: the panel (k × NR) is read once per tile from L1/L2.
///
/// # Safety
/// AVX-512F available; `p` validated by `check`, `p.n <= NR`.
#[target_feature(enable = "avx512f")]
unsafe fn one_panel<const S: u8>(p: &Problem) {
    let mut r0 = 0;
    while r0 < p.m {
        let rows = MR.min(p.m - r0);
        let a = p.a.wrapping_add(r0 * p.lda);
        let c = p.c.wrapping_add(r0 * p.ldc);
        // SAFETY: rows r0..r0+rows < m, the one panel, all k-steps (with the stride of a
        // one-panel group, NR).
        unsafe {
            tile_rows::<S, 1, 2>(
                rows, p.k, a, p.lda, p.b, NR, 0, p.init, c, p.ldc, p.n, p.relu,
            )
        };
        r0 += rows;
    }
}

/// # Safety
/// AVX-512F available; `p` validated by `check` (m, n > 0).
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn gemm<const S: u8>(p: Problem) {
    // SAFETY: rows 0..m exist; row_panels::<R,_> is only called with R == m.
    unsafe {
        if p.n <= NR {
            return one_panel::<S>(&p);
        }
        match p.m {
            1 => row_panels::<S, 1, 8>(&p),
            2 => row_panels::<S, 2, 6>(&p),
            3 => row_panels::<S, 3, 4>(&p),
            4 => row_panels::<S, 4, 4>(&p),
            5 => row_panels::<S, 5, 4>(&p),
            6 => row_panels::<S, 6, 4>(&p),
            7 => row_panels::<S, 7, 2>(&p),
            8 => row_panels::<S, 8, 2>(&p),
            9 => row_panels::<S, 9, 2>(&p),
            10 => row_panels::<S, 10, 2>(&p),
            11 => row_panels::<S, 11, 2>(&p),
            _ => blocked::<S>(&p),
        }
    }
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
    for (i, v) in t.iter().enumerate() {
        // SAFETY: row i of the destination block is writable (caller contract).
        unsafe { _mm512_storeu_ps(dst.add(i * ldd), *v) };
    }
}
