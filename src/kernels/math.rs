//! Scalar f32 math used by the blocks, in one place so that a vectorised version can replace
//! it behind the same names. `libm` is pure Rust: the same bits on every target, with or
//! without `std`.

#[inline]
pub(crate) fn exp(x: f32) -> f32 {
    libm::expf(x)
}

#[inline]
pub(crate) fn expm1(x: f32) -> f32 {
    libm::expm1f(x)
}

#[inline]
pub(crate) fn ln(x: f32) -> f32 {
    libm::logf(x)
}

#[inline]
pub(crate) fn log1p(x: f32) -> f32 {
    libm::log1pf(x)
}

#[inline]
pub(crate) fn tanh(x: f32) -> f32 {
    libm::tanhf(x)
}

#[inline]
pub(crate) fn erf(x: f32) -> f32 {
    libm::erff(x)
}

/// √x, correctly rounded (IEEE 754), so the same bits whichever of the two is used.
#[inline]
pub(crate) fn sqrtf(x: f32) -> f32 {
    // libm's x86-64 `sqrtf` is inline assembly (`sqrtss`), which Miri cannot run; std's is the
    // compiler's intrinsic, which it can (scripts/miri.sh).
    #[cfg(all(miri, feature = "std"))]
    return x.sqrt();
    #[cfg(not(all(miri, feature = "std")))]
    libm::sqrtf(x)
}

/// [`sqrtf`] in double precision (libm's is inline assembly on x86-64 too).
#[inline]
pub(crate) fn sqrt(x: f64) -> f64 {
    #[cfg(all(miri, feature = "std"))]
    return x.sqrt();
    #[cfg(not(all(miri, feature = "std")))]
    libm::sqrt(x)
}

/// [`exp`] (libm's `expf`, FreeBSD's algorithm) of 16 lanes, bit for bit. The lanes that libm
/// takes down its common paths (|x| < 87.34: argument reduction by k·ln 2 and a rational
/// approximation, or `1 + x` for |x| ≤ 2⁻¹⁴) are computed without branches, each lane taking
/// its own path's values by selects, so that the loop vectorises; the rare others (overflow,
/// underflow, NaN) are then computed by libm itself.
#[inline(always)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) fn exp_lanes(x: &[f32; 16]) -> [f32; 16] {
    const LN2_HI: f32 = 6.931_457_5e-1;
    const LN2_LO: f32 = 1.428_606_8e-6;
    const INV_LN2: f32 = 1.442_695_1;
    const P1: f32 = 1.666_662_5e-1;
    const P2: f32 = -2.766_733_3e-3;
    let mut out = [0.0f32; 16];
    let mut special = false;
    for (y, &x) in out.iter_mut().zip(x) {
        let bits = x.to_bits();
        let hx = bits & 0x7fff_ffff;
        let negative = bits >> 31 != 0;
        special |= hx >= 0x42ae_ac50;
        // |x| > 1.5 ln 2: k = round(x / ln 2), by truncating x/ln 2 ± 1/2; else k = ±1.
        let half = if negative { -0.5f32 } else { 0.5 };
        let k_far = (INV_LN2 * x + half) as i32;
        let k_near = if negative { -1 } else { 1 };
        let k = if hx > 0x3f85_1592 { k_far } else { k_near };
        let kf = k as f32;
        // |x| > ln 2 / 2: x = k ln 2 + (hi − lo); else k = 0, hi = x, lo = 0.
        let reduced = hx > 0x3eb1_7218;
        let hi = if reduced { x - kf * LN2_HI } else { x };
        let lo = if reduced { kf * LN2_LO } else { 0.0 };
        let k = if reduced { k } else { 0 };
        let r = if reduced { hi - lo } else { x };
        let rr = r * r;
        let c = r - rr * (P1 + rr * P2);
        let e = 1.0 + (r * c / (2.0 - c) - lo + hi);
        // e·2^k with k in −126..=126 on these paths: one exact scaling (2⁰ = 1 leaves e as
        // libm returns it).
        let scaled = e * f32::from_bits((k.wrapping_add(127) as u32) << 23);
        *y = if hx <= 0x3900_0000 { 1.0 + x } else { scaled };
    }
    if special {
        for (y, &x) in out.iter_mut().zip(x) {
            if x.to_bits() & 0x7fff_ffff >= 0x42ae_ac50 {
                *y = exp(x);
            }
        }
    }
    out
}

/// `1 / (1 + e^{-x})`, as `torch.sigmoid`.
#[inline]
pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

// ---------------------------------------------------------------------------------------------
// Vectorisable f32 math for the hot path.
//
// Each function below is branch-free straight-line f32 arithmetic (selects, bit casts, no
// table, no fused multiply-add: Rust never contracts `a * b + c`), so a loop over a slice is
// auto-vectorised by LLVM and every lane computes the same bits as the scalar call, whatever
// the ISA (portable, AVX2, AVX-512). Maximum errors against correctly rounded results, measured
// against libm's f64 functions by `tests::fast_math_matches_libm` (every f32 of the range with
// step 1; the test sweeps every 61st bit pattern in debug builds and every 7th in release):
//
// * `exp_fast`:  ≤ 2 ulp on [−87.3, 88.7]; 0 below −87.34 (libm gives subnormals there, < 1.2e-38
//   absolute), +inf above 88.72, NaN → NaN.
// * `atan_fast`: ≤ 3 ulp everywhere (Cephes `atanf` reduction and polynomial); ±π/2 at ±inf.
// * `tanh_fast`: ≤ 3 ulp everywhere (odd polynomial for |x| < 0.625, else
//   `1 − 2/(e^{2|x|} + 1)` with the sign); ±1 beyond |x| > 9.1.
// * `sigmoid_fast`: `1/(1 + exp_fast(−x))`, ≤ 3 ulp.
// ---------------------------------------------------------------------------------------------

/// e^x, ≤ 2 ulp (see above).
#[inline(always)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) fn exp_fast(x: f32) -> f32 {
    const LOG2E: f32 = core::f32::consts::LOG2_E;
    // ln 2 split so that n·LN2_HI is exact for |n| ≤ 128.
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let xc = x.clamp(-87.336_55, 88.722_84);
    // n = round(x·log2 e) via the 1.5·2^23 trick (exact for |v| < 2^22).
    const SHIFT: f32 = 12_582_912.0;
    let t = xc * LOG2E + SHIFT;
    let n = t - SHIFT;
    let r = xc - n * LN2_HI - n * LN2_LO;
    // e^r on |r| ≤ ln2/2: degree-6 Taylor/minimax (Cephes expf coefficients).
    let p = 1.987_569_1e-4f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let er = p * (r * r) + r + 1.0;
    // 2^n as two factors so n = 128 (x near 88.72) and n = −126 stay normal. n is read from
    // t's low mantissa bits (t = 1.5·2^23 + n exactly), not with `n as i32`, whose saturating
    // conversion LLVM does lane by lane: a bit cast keeps the whole function vectorised.
    let ni = t.to_bits() as i32 - SHIFT.to_bits() as i32;
    let n1 = ni >> 1;
    let n2 = ni - n1;
    let s1 = f32::from_bits(((n1 + 127) as u32) << 23);
    let s2 = f32::from_bits(((n2 + 127) as u32) << 23);
    let y = er * s1 * s2;
    let y = if x > 88.722_84 { f32::INFINITY } else { y };
    let y = if x < -87.336_55 { 0.0 } else { y };
    if x.is_nan() { x } else { y }
}

/// atan(x), ≤ 3 ulp (Cephes `atanf`).
#[inline(always)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) fn atan_fast(x: f32) -> f32 {
    use core::f32::consts::{FRAC_PI_2, FRAC_PI_4};
    let sign = x.to_bits() & 0x8000_0000;
    let ax = f32::from_bits(x.to_bits() & 0x7fff_ffff);
    let big = ax > 2.414_213_6;
    let mid = ax > 0.414_213_57;
    let xr = if big {
        -1.0 / ax
    } else if mid {
        (ax - 1.0) / (ax + 1.0)
    } else {
        ax
    };
    let y0 = if big {
        FRAC_PI_2
    } else if mid {
        FRAC_PI_4
    } else {
        0.0
    };
    let z = xr * xr;
    let p = 8.053_744_5e-2f32;
    let p = p * z - 1.387_768_5e-1;
    let p = p * z + 1.997_771_1e-1;
    let p = p * z - 3.333_295e-1;
    let y = y0 + (p * z * xr + xr);
    let y = f32::from_bits(y.to_bits() ^ sign);
    if x.is_nan() { x } else { y }
}

/// tanh(x), ≤ 3 ulp.
#[inline(always)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) fn tanh_fast(x: f32) -> f32 {
    let sign = x.to_bits() & 0x8000_0000;
    let ax = f32::from_bits(x.to_bits() & 0x7fff_ffff);
    // Small: Cephes tanhf polynomial.
    let z = x * x;
    let p = -5.704_988_7e-3f32;
    let p = p * z + 0.020_639_09;
    let p = p * z - 5.373_971_6e-2;
    let p = p * z + 1.333_144_2e-1;
    let p = p * z - 0.333_332_8;
    let small = p * z * x + x;
    // Large: 1 − 2/(e^{2|x|} + 1), exp saturating to +inf gives exactly 1.
    let e = exp_fast(2.0 * ax.min(10.0));
    let large = 1.0 - 2.0 / (e + 1.0);
    let large = f32::from_bits(large.to_bits() ^ sign);
    let y = if ax < 0.625 { small } else { large };
    if x.is_nan() { x } else { y }
}

/// 1/(1 + e^{−x}), ≤ 3 ulp.
#[inline(always)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) fn sigmoid_fast(x: f32) -> f32 {
    1.0 / (1.0 + exp_fast(-x))
}

/// `$f` on each whole `$w`-lane vector of the slice `$v` as a fixed-size array (one vector
/// operation per step of the function, whatever the length), then on the rest. The functions
/// are chains of some 30 dependent operations: a 16-value slice (a coupling's 8 log-scales at
/// batch 1, padded by the caller, see [`vector_padded`]) is then one chain; LLVM's loop over
/// a slice of unknown length took it in its 4-lane remainder loop. A macro, not a
/// closure-taking function, so that `$f` is inlined into the target-feature function and
/// compiled for its ISA.
#[cfg(target_arch = "x86_64")]
macro_rules! in_vectors {
    ($w:literal, $v:ident, $f:ident($($arg:expr),*)) => {{
        let mut chunks = $v.chunks_exact_mut($w);
        for chunk in &mut chunks {
            let vector: &mut [f32; $w] = chunk.try_into().expect("an exact chunk");
            $f(vector, $($arg),*);
        }
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            $f(rest, $($arg),*);
        }
    }};
}

/// `len` rounded up to whole 16-value vectors, if `buf` has room for that, with the padding
/// `buf[len..]` zeroed: a caller whose scratch has room passes its values with their padding
/// (defined values that nobody reads back), so the element-wise functions run without a
/// remainder loop. (The padding must be written: a session in caller memory may never have
/// written it, and reading it unwritten would be undefined.)
pub(crate) fn vector_padded(len: usize, buf: &mut [f32]) -> usize {
    let padded = len.next_multiple_of(16);
    if padded > buf.len() {
        return len;
    }
    buf[len..padded].fill(0.0);
    padded
}

/// Runs `$body` (an expression over a `&mut [f32]` named `$v`) compiled for AVX-512 or AVX2
/// when `isa` is one of them, so the loop is vectorised 16 or 8 wide. The portable ISA runs
/// `$pbody` instead, with the scalar `libm` functions: it is the exactness reference (no FMA
/// in its GEMM either), and the fixtures' tightest case (pypi_cinn_stats, at 0.78 of the
/// tolerance in FrEIA itself) reached 1.01 of the tolerance with the fast functions there.
macro_rules! dispatch_slice {
    ($(#[$meta:meta])* $name:ident($($arg:ident: $ty:ty),*) |$v:ident| $body:block
     portable $pbody:block) => {
        $(#[$meta])*
        pub(crate) fn $name(isa: crate::kernels::gemm::Available, $v: &mut [f32], $($arg: $ty),*) {
            #[inline(always)]
            #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
            fn body($v: &mut [f32], $($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                fn avx512($v: &mut [f32], $($arg: $ty),*) {
                    in_vectors!(16, $v, body($($arg),*))
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($v: &mut [f32], $($arg: $ty),*) {
                    in_vectors!(8, $v, body($($arg),*))
                }
                match isa.isa() {
                    // SAFETY: `Available`: this CPU has the ISA.
                    crate::kernels::gemm::Isa::Avx512 => return unsafe { avx512($v, $($arg),*) },
                    // SAFETY: as above.
                    crate::kernels::gemm::Isa::Avx2Fma => return unsafe { avx2($v, $($arg),*) },
                    crate::kernels::gemm::Isa::Portable => {}
                }
            }
            let _ = isa;
            $pbody
        }
    };
}

/// `v ← v·scale + offset` element by element (`reverse`: `v ← (v − offset)/scale`), with
/// `scale` and `offset` of equal length repeating along `v` from its start: a per-channel
/// affine map of rows, the channels' values given for several rows so that the loop runs over
/// whole vectors of them. The same operations on every ISA (two roundings, no fused
/// multiply-add).
pub(crate) fn affine_rows(
    isa: crate::kernels::gemm::Available,
    v: &mut [f32],
    scale: &[f32],
    offset: &[f32],
    reverse: bool,
) {
    assert!(
        scale.len() == offset.len() && !scale.is_empty(),
        "affine_rows: one scale per offset"
    );
    #[inline(always)]
    fn body(v: &mut [f32], scale: &[f32], offset: &[f32], reverse: bool) {
        for chunk in v.chunks_mut(scale.len()) {
            if reverse {
                for ((x, o), g) in chunk.iter_mut().zip(offset).zip(scale) {
                    *x = (*x - *o) / *g;
                }
            } else {
                for ((x, o), g) in chunk.iter_mut().zip(offset).zip(scale) {
                    *x = *x * *g + *o;
                }
            }
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f")]
        fn avx512(v: &mut [f32], scale: &[f32], offset: &[f32], reverse: bool) {
            body(v, scale, offset, reverse)
        }
        #[target_feature(enable = "avx2,fma")]
        fn avx2(v: &mut [f32], scale: &[f32], offset: &[f32], reverse: bool) {
            body(v, scale, offset, reverse)
        }
        match isa.isa() {
            crate::kernels::gemm::Isa::Avx512 => {
                // SAFETY: `Available`: this CPU has the ISA.
                return unsafe { avx512(v, scale, offset, reverse) };
            }
            crate::kernels::gemm::Isa::Avx2Fma => {
                // SAFETY: as above.
                return unsafe { avx2(v, scale, offset, reverse) };
            }
            crate::kernels::gemm::Isa::Portable => {}
        }
    }
    let _ = isa;
    body(v, scale, offset, reverse)
}

dispatch_slice!(
    /// `v ← e^{sign·v}` element-wise (`sign` is ±1).
    exp_scaled_slice(sign: f32) |v| {
        for x in v.iter_mut() {
            *x = exp_fast(sign * *x);
        }
    }
    portable {
        v.iter_mut().for_each(|x| *x = exp(sign * *x));
    }
);

/// How a coupling soft-clamps its raw log-scales `u` with its `clamp` (docs/blocks.md §soft-clamp):
/// `clamp·(0.636·atan(u))` (ATAN, FrEIA's literal 0.636), `clamp·tanh(u)` (TANH; with `divide`,
/// `clamp·tanh(u/clamp)`, the AllInOne block of FrEIA head) or `clamp·(2·(sigmoid(u) − 0.5))`
/// (SIGMOID).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum SoftClamp {
    Atan,
    Tanh { divide: bool },
    Sigmoid,
}

impl SoftClamp {
    /// With the fast functions (AVX-512 and AVX2 bodies).
    #[inline(always)]
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    fn fast(self, clamp: f32, u: f32) -> f32 {
        match self {
            SoftClamp::Atan => clamp * (0.636f32 * atan_fast(u)),
            SoftClamp::Tanh { divide } => clamp * tanh_fast(if divide { u / clamp } else { u }),
            SoftClamp::Sigmoid => clamp * (2.0 * (sigmoid_fast(u) - 0.5)),
        }
    }

    /// With `libm` (the portable body, the exactness reference).
    #[inline(always)]
    fn exact(self, clamp: f32, u: f32) -> f32 {
        match self {
            SoftClamp::Atan => clamp * (0.636f32 * libm::atanf(u)),
            SoftClamp::Tanh { divide } => clamp * tanh(if divide { u / clamp } else { u }),
            SoftClamp::Sigmoid => clamp * (2.0 * (sigmoid(u) - 0.5)),
        }
    }
}

dispatch_slice!(
    /// `v ← soft_clamp(v)` element-wise.
    soft_clamp_slice(kind: SoftClamp, clamp: f32) |v| {
        match kind {
            SoftClamp::Atan => v.iter_mut().for_each(|x| *x = SoftClamp::Atan.fast(clamp, *x)),
            SoftClamp::Tanh { divide } => v
                .iter_mut()
                .for_each(|x| *x = SoftClamp::Tanh { divide }.fast(clamp, *x)),
            SoftClamp::Sigmoid => v.iter_mut().for_each(|x| *x = SoftClamp::Sigmoid.fast(clamp, *x)),
        }
    }
    portable {
        v.iter_mut().for_each(|x| *x = kind.exact(clamp, *x));
    }
);

/// One row of an affine coupling, fused: `s ← soft_clamp(s)` (left in `s` for the caller's
/// log-determinant), then `x ← e^{s}·x + t`, or `x ← (x − t)·e^{−s}` if `rev`. `s`, `t` and `x`
/// have the same length.
///
/// Element by element these are the operations of [`soft_clamp_slice`], [`exp_scaled_slice`]
/// and the update as the blocks run them over many rows, so a row's bits do not depend on
/// which way it went. One call and one pass in registers instead of a gather, three passes and
/// two calls: a batch-1 call is a chain of such rows, each waiting for the one before.
#[allow(clippy::too_many_arguments)]
pub(crate) fn coupling_row(
    isa: crate::kernels::gemm::Available,
    s: &mut [f32],
    t: &[f32],
    x: &mut [f32],
    kind: SoftClamp,
    clamp: f32,
    rev: bool,
) {
    assert!(
        t.len() == s.len() && x.len() == s.len(),
        "coupling_row: lengths differ"
    );
    let sign = if rev { -1.0f32 } else { 1.0 };
    /// The row with the soft clamp `soft` and the exponential `exp`, on equal-length slices.
    #[inline(always)]
    fn lanes(
        s: &mut [f32],
        t: &[f32],
        x: &mut [f32],
        soft: impl Fn(f32) -> f32,
        exp: impl Fn(f32) -> f32,
        sign: f32,
    ) {
        for ((s, t), x) in s.iter_mut().zip(t).zip(x.iter_mut()) {
            let c = soft(*s);
            *s = c;
            let e = exp(sign * c);
            *x = if sign < 0.0 {
                (*x - *t) * e
            } else {
                e * *x + *t
            };
        }
    }
    /// [`lanes`] with the fast functions over whole `W`-lane vectors as fixed-size arrays (one
    /// vector operation per step); returns how many values that covered.
    #[inline(always)]
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    fn in_steps<const W: usize>(
        s: &mut [f32],
        t: &[f32],
        x: &mut [f32],
        soft: impl Fn(f32) -> f32 + Copy,
        sign: f32,
    ) -> usize {
        let whole = s.len() / W * W;
        for ((s, t), x) in s[..whole]
            .chunks_exact_mut(W)
            .zip(t[..whole].chunks_exact(W))
            .zip(x[..whole].chunks_exact_mut(W))
        {
            let s: &mut [f32; W] = s.try_into().expect("an exact chunk");
            let t: &[f32; W] = t.try_into().expect("an exact chunk");
            let x: &mut [f32; W] = x.try_into().expect("an exact chunk");
            lanes(s, t, x, soft, exp_fast, sign);
        }
        whole
    }
    /// The fast row: 16-lane steps (if `WIDE`), 8-lane steps, then one value at a time.
    #[inline(always)]
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    fn fast_row<const WIDE: bool>(
        s: &mut [f32],
        t: &[f32],
        x: &mut [f32],
        soft: impl Fn(f32) -> f32 + Copy,
        sign: f32,
    ) {
        let i = if WIDE {
            in_steps::<16>(s, t, x, soft, sign)
        } else {
            0
        };
        let j = i + in_steps::<8>(&mut s[i..], &t[i..], &mut x[i..], soft, sign);
        lanes(&mut s[j..], &t[j..], &mut x[j..], soft, exp_fast, sign);
    }
    /// `fast_row` with the clamp chosen once, outside the loops.
    #[inline(always)]
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    fn by_kind<const WIDE: bool>(
        s: &mut [f32],
        t: &[f32],
        x: &mut [f32],
        kind: SoftClamp,
        clamp: f32,
        sign: f32,
    ) {
        match kind {
            SoftClamp::Atan => fast_row::<WIDE>(s, t, x, |u| SoftClamp::Atan.fast(clamp, u), sign),
            SoftClamp::Tanh { divide } => {
                fast_row::<WIDE>(s, t, x, |u| SoftClamp::Tanh { divide }.fast(clamp, u), sign)
            }
            SoftClamp::Sigmoid => {
                fast_row::<WIDE>(s, t, x, |u| SoftClamp::Sigmoid.fast(clamp, u), sign)
            }
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f")]
        fn avx512(s: &mut [f32], t: &[f32], x: &mut [f32], kind: SoftClamp, clamp: f32, sign: f32) {
            by_kind::<true>(s, t, x, kind, clamp, sign)
        }
        #[target_feature(enable = "avx2,fma")]
        fn avx2(s: &mut [f32], t: &[f32], x: &mut [f32], kind: SoftClamp, clamp: f32, sign: f32) {
            by_kind::<false>(s, t, x, kind, clamp, sign)
        }
        match isa.isa() {
            crate::kernels::gemm::Isa::Avx512 => {
                // SAFETY: `Available`: this CPU has the ISA.
                return unsafe { avx512(s, t, x, kind, clamp, sign) };
            }
            crate::kernels::gemm::Isa::Avx2Fma => {
                // SAFETY: as above.
                return unsafe { avx2(s, t, x, kind, clamp, sign) };
            }
            crate::kernels::gemm::Isa::Portable => {}
        }
    }
    let _ = isa;
    lanes(s, t, x, |u| kind.exact(clamp, u), exp, sign);
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;

    /// `exp_lanes` is libm's `expf` bit for bit: every 257th f32, dense sweeps across its
    /// thresholds (±2⁻¹⁴, ±ln 2 / 2, ±1.5 ln 2, −87.34, 88.72, −103.97) and the special values.
    #[test]
    // Too slow under Miri (more than 10 s interpreted; scripts/miri.sh runs the rest).
    #[cfg_attr(miri, ignore)]
    fn exp_lanes_is_libm() {
        let mut inputs: alloc::vec::Vec<f32> = (0..=u32::MAX / 257)
            .map(|i| f32::from_bits(i * 257))
            .collect();
        for edge in [
            6.103_515_6e-5f32,
            0.346_573_6,
            1.039_720_8,
            87.336_55,
            88.722_84,
            103.972_08,
        ] {
            for sign in [1.0f32, -1.0] {
                let e = (sign * edge).to_bits();
                inputs.extend((e - 2000..e + 2000).map(f32::from_bits));
            }
        }
        inputs.extend([
            0.0,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            f32::MIN_POSITIVE,
        ]);
        for chunk in inputs.chunks(16) {
            let mut x = [0.0f32; 16];
            x[..chunk.len()].copy_from_slice(chunk);
            let got = exp_lanes(&x);
            for (g, x) in got.iter().zip(&x) {
                let want = exp(*x);
                assert!(
                    g.to_bits() == want.to_bits() || (g.is_nan() && want.is_nan()),
                    "exp({x:e}) = {g:e}, libm {want:e}"
                );
            }
        }
    }

    /// A per-channel affine map of rows is the scalar formula on every element, on every ISA,
    /// for a channel count that does not divide a vector (3) and rows that do not fill the
    /// repeated pattern.
    #[test]
    fn affine_rows_is_the_formula_per_element() {
        let (d, rows_given) = (3, 16);
        let scale: alloc::vec::Vec<f32> = (0..rows_given * d)
            .map(|i| 0.5 + (i % d) as f32 * 0.7)
            .collect();
        let offset: alloc::vec::Vec<f32> =
            (0..rows_given * d).map(|i| (i % d) as f32 - 1.3).collect();
        let rows = 37;
        let v0: alloc::vec::Vec<f32> = (0..rows * d)
            .map(|i| (i as f32 * 0.37).sin() * 3.0)
            .collect();
        for isa in crate::kernels::gemm::Isa::ALL
            .into_iter()
            .filter_map(crate::kernels::gemm::Isa::available)
        {
            for reverse in [false, true] {
                let mut v = v0.clone();
                affine_rows(isa, &mut v, &scale, &offset, reverse);
                for (i, (&got, &x)) in v.iter().zip(&v0).enumerate() {
                    let (g, o) = (scale[i % d], offset[i % d]);
                    let want = if reverse { (x - o) / g } else { x * g + o };
                    assert_eq!(
                        got.to_bits(),
                        want.to_bits(),
                        "{isa:?} reverse={reverse} element {i}"
                    );
                }
            }
        }
    }

    /// Distance in ulps between `got` and the f64 reference rounded to f32.
    fn ulps(got: f32, want: f64) -> u64 {
        let w = want as f32;
        if got == w || (got.is_nan() && w.is_nan()) {
            return 0;
        }
        let key = |v: f32| {
            let b = v.to_bits() as i64;
            if b < 0x8000_0000 { b } else { 0x8000_0000 - b }
        };
        (key(got) - key(w)).unsigned_abs()
    }

    fn worst(f: fn(f32) -> f32, exact: fn(f64) -> f64, lo: f32, hi: f32, step: u32) -> u64 {
        let mut worst = 0;
        let mut bits = 0u32;
        loop {
            let x = f32::from_bits(bits);
            if x.is_finite() && x >= lo && x <= hi {
                worst = worst.max(ulps(f(x), exact(x as f64)));
            }
            let nx = -x;
            if nx.is_finite() && nx >= lo && nx <= hi {
                worst = worst.max(ulps(f(nx), exact(nx as f64)));
            }
            match bits.checked_add(step) {
                Some(b) if b < 0x7f80_0000 => bits = b,
                _ => break,
            }
        }
        worst
    }

    #[test]
    // Too slow under Miri (more than 10 s interpreted; scripts/miri.sh runs the rest).
    #[cfg_attr(miri, ignore)]
    fn fast_math_matches_libm() {
        // Step 1 = every f32 (3 minutes in release); the strides keep the test quick while
        // still sweeping every binade densely. The bounds were derived with step 1.
        let step = if cfg!(debug_assertions) { 61 } else { 7 };
        let e = worst(exp_fast, libm::exp, -87.3, 88.7, step);
        assert!(e <= 2, "exp: {e} ulp");
        let a = worst(atan_fast, libm::atan, f32::MIN, f32::MAX, step);
        assert!(a <= 3, "atan: {a} ulp");
        let t = worst(tanh_fast, libm::tanh, f32::MIN, f32::MAX, step);
        assert!(t <= 3, "tanh: {t} ulp");
        let s = worst(
            sigmoid_fast,
            |x| 1.0 / (1.0 + libm::exp(-x)),
            -87.0,
            87.0,
            step,
        );
        assert!(s <= 3, "sigmoid: {s} ulp");
        assert_eq!(exp_fast(-100.0), 0.0);
        assert_eq!(exp_fast(100.0), f32::INFINITY);
        assert!(exp_fast(f32::NAN).is_nan() && atan_fast(f32::NAN).is_nan());
        assert_eq!(atan_fast(f32::INFINITY), core::f32::consts::FRAC_PI_2);
        assert_eq!(tanh_fast(f32::NEG_INFINITY), -1.0);
    }
}
