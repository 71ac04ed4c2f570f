//! Random streams and standard normals.
//!
//! # The contract
//! Sample row `r` (counted from 0 over the life of a `(seed, stream)` pair) draws its latent
//! vector from its own Xoshiro256++ generator, seeded by
//! `Xoshiro256PlusPlus::seed_from_u64(key(seed, stream, r))`, where
//! `key = mix(mix(mix(seed) ^ stream) ^ r)` and `mix` is SplitMix64's bijective finaliser.
//! A row therefore gets the same numbers whatever batch it is in, whichever call computes it
//! and on however many threads: splitting a batch changes nothing, bit for bit.
//!
//! # Normals: Box–Muller in f32, with our own polynomials
//! Each `u64` drawn gives one pair: `u1 = (hi32 + 1)·2⁻³²` in (0, 1] (computed in f32) and an
//! angle from the low 24 bits. `r = sqrt(−2 ln u1)`, `(z0, z1) = (r cos θ, r sin θ)`; a row of
//! width `d` uses `ceil(d/2)` draws and drops the last `z1` if `d` is odd. `ln`, `sin` and `cos`
//! are short polynomials written with separate multiplies and adds (no FMA, no table), and
//! `sqrt` is IEEE-exact, so a SIMD version computes the same bits as this scalar one.
//! Accuracy: |error| < 2e-7 relative in `ln` on (0, 1] and < 1e-7 absolute in sin/cos;
//! the tails are cut at |z| ≤ sqrt(64 ln 2) ≈ 6.66 (probability 3e-11 beyond).
//! `rand_distr` is not used: its f32 normal samples an f64 ziggurat and casts (soft-float f64 on
//! Cortex-M), and rand may change values between minor versions.
//!
//! # Many rows at once
//! [`fill_rows`] gives each row what [`fill_row`] gives it, bit for bit. With AVX-512 (F and
//! DQ) it runs 16 rows in the lanes of a vector: the generators' seeding and steps in 64-bit
//! integer lanes, Box–Muller in f32 lanes with the same operations in the same order (no FMA,
//! IEEE `sqrt` and division), the quadrant chosen by blends instead of a branch that the random
//! angle mispredicts half the time. A camera frame's 2 M rows spent about 8 % of the frame's
//! time in the scalar generator.

use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::{Rng, SeedableRng};

use crate::kernels::gemm::Available;

/// SplitMix64's finaliser: a bijection on u64.
#[inline]
const fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The generator of one sample row (see the module docs).
#[inline]
pub fn row_generator(seed: u64, stream: u64, row: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(mix(mix(mix(seed) ^ stream) ^ row))
}

/// Fills `out` with standard normals for sample row `row` of `(seed, stream)`.
pub fn fill_row(seed: u64, stream: u64, row: u64, out: &mut [f32]) {
    let mut rng = row_generator(seed, stream, row);
    let mut pairs = out.chunks_exact_mut(2);
    for pair in &mut pairs {
        let (a, b) = box_muller(rng.next_u64());
        pair[0] = a;
        pair[1] = b;
    }
    if let [last] = pairs.into_remainder() {
        *last = box_muller(rng.next_u64()).0;
    }
}

/// Fills rows `0..rows` of `out` (row `r` is `out[r·stride..][..width]`) with the standard
/// normals of stream rows `first_row + r` of `(seed, stream)`: row `r` gets exactly what
/// [`fill_row`] gives it. Panics if `out` is too short or `stride < width`.
pub fn fill_rows(
    isa: Available,
    (seed, stream, first_row): (u64, u64, u64),
    rows: usize,
    out: &mut [f32],
    stride: usize,
    width: usize,
) {
    assert!(stride >= width, "normal rows overlap");
    if rows == 0 {
        return;
    }
    assert!(
        out.len() >= (rows - 1) * stride + width,
        "normal rows past the end of their buffer"
    );
    // Whole blocks of 16 rows with the vector generator, if this CPU has it.
    #[cfg(target_arch = "x86_64")]
    // (Never under Miri: `isa` is then portable, src/kernels/gemm/mod.rs `Isa::is_available`.)
    let done = if isa.isa() == crate::kernels::gemm::Isa::Avx512 && avx512dq_available() {
        let blocks = rows / LANES;
        let base = key_base(seed, stream);
        // SAFETY: AVX-512F (`isa`) and DQ (checked) are available; the rows lie in `out`
        // (checked above).
        unsafe { avx512::fill_blocks(base, first_row, blocks, out, stride, width) };
        blocks * LANES
    } else {
        0
    };
    #[cfg(not(target_arch = "x86_64"))]
    let done = {
        let _ = isa;
        0
    };
    for r in done..rows {
        let row = first_row.wrapping_add(r as u64);
        fill_row(seed, stream, row, &mut out[r * stride..r * stride + width]);
    }
}

/// Rows per block of the vector generator.
#[cfg(target_arch = "x86_64")]
const LANES: usize = 16;

/// `mix(mix(seed) ^ stream)`: the part of every row's key that does not depend on the row.
#[cfg(target_arch = "x86_64")]
fn key_base(seed: u64, stream: u64) -> u64 {
    mix(mix(seed) ^ stream)
}

#[cfg(all(target_arch = "x86_64", feature = "std"))]
fn avx512dq_available() -> bool {
    std::is_x86_feature_detected!("avx512dq")
}
#[cfg(all(target_arch = "x86_64", not(feature = "std")))]
fn avx512dq_available() -> bool {
    cfg!(target_feature = "avx512dq")
}

/// One pair of standard normals from 64 random bits.
#[inline]
pub fn box_muller(bits: u64) -> (f32, f32) {
    const TWO_POW_M32: f32 = 1.0 / 4_294_967_296.0;
    const TWO_POW_M24: f32 = 1.0 / 16_777_216.0;
    let u1 = ((bits >> 32) as f32 + 1.0) * TWO_POW_M32;
    let r = crate::kernels::math::sqrtf(-2.0 * ln_unit(u1));
    let u2 = (bits & 0x00ff_ffff) as u32;
    let (s, c) = sincos_turn(u2, TWO_POW_M24);
    (r * c, r * s)
}

/// ln(u) for u in (0, 1]: u = 2^e·m with m in [√½, √2), ln m = 2·atanh(t), t = (m−1)/(m+1).
#[inline]
fn ln_unit(u: f32) -> f32 {
    const LN2: f32 = core::f32::consts::LN_2;
    let bits = u.to_bits();
    // Exponent and mantissa, with the mantissa moved into [√½, √2).
    let mut e = ((bits >> 23) & 0xff) as i32 - 127;
    let mut m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    if m > core::f32::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    let t = (m - 1.0) / (m + 1.0);
    let t2 = t * t;
    // 2·(t + t³/3 + t⁵/5 + t⁷/7 + t⁹/9): |t| ≤ 0.1716, next term < 4e-10.
    let p = 1.0 / 9.0;
    let p = p * t2 + 1.0 / 7.0;
    let p = p * t2 + 1.0 / 5.0;
    let p = p * t2 + 1.0 / 3.0;
    let p = p * t2 + 1.0;
    (e as f32) * LN2 + 2.0 * t * p
}

/// (sin θ, cos θ) for θ = 2π·(u2·scale), u2 < 2²⁴: quadrant from the top two bits, then
/// Taylor polynomials on [−π/4, π/4) around the octant's middle.
#[inline]
fn sincos_turn(u2: u32, scale: f32) -> (f32, f32) {
    use core::f32::consts::{FRAC_1_SQRT_2, FRAC_PI_2};
    let quadrant = u2 >> 22;
    // Fraction within the quadrant, centred: g in [−½, ½).
    let g = (u2 & 0x003f_ffff) as f32 * (scale * 4.0) - 0.5;
    let phi = g * FRAC_PI_2;
    let p2 = phi * phi;
    let sin_p = phi
        * (1.0
            + p2 * (-1.0 / 6.0
                + p2 * (1.0 / 120.0 + p2 * (-1.0 / 5040.0 + p2 * (1.0 / 362_880.0)))));
    let cos_p = 1.0
        + p2 * (-0.5
            + p2 * (1.0 / 24.0
                + p2 * (-1.0 / 720.0 + p2 * (1.0 / 40_320.0 + p2 * (-1.0 / 3_628_800.0)))));
    // Angle within the quadrant is π/4 + φ.
    let s = (sin_p + cos_p) * FRAC_1_SQRT_2;
    let c = (cos_p - sin_p) * FRAC_1_SQRT_2;
    match quadrant {
        0 => (s, c),
        1 => (c, -s),
        2 => (-s, -c),
        _ => (-c, s),
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    //! [`super::fill_rows`] in blocks of 16 rows: two vectors of 8 u64 generators, then
    //! Box–Muller on 16 f32 lanes. Each step mirrors a line of the scalar code.

    use core::arch::x86_64::*;

    use super::LANES;

    const PHI: i64 = 0x9e37_79b9_7f4a_7c15_u64 as i64;

    /// SplitMix64's finaliser on 8 lanes (`super::mix`).
    #[target_feature(enable = "avx512f,avx512dq")]
    fn mix(z: __m512i) -> __m512i {
        let z = _mm512_mullo_epi64(
            _mm512_xor_si512(z, _mm512_srli_epi64::<30>(z)),
            _mm512_set1_epi64(0xbf58_476d_1ce4_e5b9_u64 as i64),
        );
        let z = _mm512_mullo_epi64(
            _mm512_xor_si512(z, _mm512_srli_epi64::<27>(z)),
            _mm512_set1_epi64(0x94d0_49bb_1331_11eb_u64 as i64),
        );
        _mm512_xor_si512(z, _mm512_srli_epi64::<31>(z))
    }

    /// 8 Xoshiro256++ generators, seeded as `Xoshiro256PlusPlus::seed_from_u64(key)` seeds
    /// one: its four words are the first four outputs of SplitMix64 started at `key`.
    struct Generators([__m512i; 4]);

    impl Generators {
        #[target_feature(enable = "avx512f,avx512dq")]
        fn seeded(key: __m512i) -> Generators {
            let word = |k: i64| {
                mix(_mm512_add_epi64(
                    key,
                    _mm512_set1_epi64(PHI.wrapping_mul(k)),
                ))
            };
            Generators([word(1), word(2), word(3), word(4)])
        }

        /// The next output of each (`Xoshiro256PlusPlus::next_u64`).
        #[target_feature(enable = "avx512f,avx512dq")]
        fn next(&mut self) -> __m512i {
            let [s0, s1, s2, s3] = self.0;
            let out = _mm512_add_epi64(_mm512_rol_epi64::<23>(_mm512_add_epi64(s0, s3)), s0);
            let t = _mm512_slli_epi64::<17>(s1);
            let s2 = _mm512_xor_si512(s2, s0);
            let s3 = _mm512_xor_si512(s3, s1);
            let s1 = _mm512_xor_si512(s1, s2);
            let s0 = _mm512_xor_si512(s0, s3);
            let s2 = _mm512_xor_si512(s2, t);
            let s3 = _mm512_rol_epi64::<45>(s3);
            self.0 = [s0, s1, s2, s3];
            out
        }
    }

    /// `super::ln_unit` on 16 lanes.
    #[target_feature(enable = "avx512f")]
    fn ln_unit(u: __m512) -> __m512 {
        let bits = _mm512_castps_si512(u);
        let e = _mm512_sub_epi32(
            _mm512_and_si512(_mm512_srli_epi32::<23>(bits), _mm512_set1_epi32(0xff)),
            _mm512_set1_epi32(127),
        );
        let m = _mm512_castsi512_ps(_mm512_or_si512(
            _mm512_and_si512(bits, _mm512_set1_epi32(0x007f_ffff)),
            _mm512_set1_epi32(0x3f80_0000),
        ));
        let above = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(m, _mm512_set1_ps(core::f32::consts::SQRT_2));
        let m = _mm512_mask_mul_ps(m, above, m, _mm512_set1_ps(0.5));
        let e = _mm512_mask_add_epi32(e, above, e, _mm512_set1_epi32(1));
        let one = _mm512_set1_ps(1.0);
        let t = _mm512_div_ps(_mm512_sub_ps(m, one), _mm512_add_ps(m, one));
        let t2 = _mm512_mul_ps(t, t);
        let step = |p: __m512, c: f32| _mm512_add_ps(_mm512_mul_ps(p, t2), _mm512_set1_ps(c));
        let p = _mm512_set1_ps(1.0f32 / 9.0);
        let p = step(p, 1.0f32 / 7.0);
        let p = step(p, 1.0f32 / 5.0);
        let p = step(p, 1.0f32 / 3.0);
        let p = step(p, 1.0);
        _mm512_add_ps(
            _mm512_mul_ps(
                _mm512_cvtepi32_ps(e),
                _mm512_set1_ps(core::f32::consts::LN_2),
            ),
            _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(2.0), t), p),
        )
    }

    /// `super::box_muller` on 16 lanes, from the high 32 and the low 32 bits of each lane's
    /// 64 random bits.
    #[target_feature(enable = "avx512f")]
    fn box_muller(high: __m512i, low: __m512i) -> (__m512, __m512) {
        use core::f32::consts::{FRAC_1_SQRT_2, FRAC_PI_2};
        let (add, mul) = (_mm512_add_ps, _mm512_mul_ps);
        let splat = _mm512_set1_ps;
        let u1 = mul(
            add(_mm512_cvtepu32_ps(high), splat(1.0)),
            splat(1.0 / 4_294_967_296.0),
        );
        let r = _mm512_sqrt_ps(mul(splat(-2.0), ln_unit(u1)));
        // `sincos_turn(low & 0xff_ffff, 2⁻²⁴)`.
        let quadrant = _mm512_and_si512(_mm512_srli_epi32::<22>(low), _mm512_set1_epi32(3));
        let fraction = _mm512_cvtepi32_ps(_mm512_and_si512(low, _mm512_set1_epi32(0x003f_ffff)));
        let g = _mm512_sub_ps(mul(fraction, splat((1.0 / 16_777_216.0) * 4.0)), splat(0.5));
        let phi = mul(g, splat(FRAC_PI_2));
        let p2 = mul(phi, phi);
        let term = |c: f32, inner: __m512| add(splat(c), mul(p2, inner));
        let sin_p = mul(
            phi,
            term(
                1.0,
                term(
                    -1.0 / 6.0,
                    term(1.0 / 120.0, term(-1.0 / 5040.0, splat(1.0 / 362_880.0))),
                ),
            ),
        );
        let cos_p = term(
            1.0,
            term(
                -0.5,
                term(
                    1.0 / 24.0,
                    term(
                        -1.0 / 720.0,
                        term(1.0 / 40_320.0, splat(-1.0 / 3_628_800.0)),
                    ),
                ),
            ),
        );
        let s = mul(add(sin_p, cos_p), splat(FRAC_1_SQRT_2));
        let c = mul(_mm512_sub_ps(cos_p, sin_p), splat(FRAC_1_SQRT_2));
        // Quadrants 0..3 give (sin, cos) = (s, c), (c, −s), (−s, −c), (−c, s).
        let bit = |k: i32| _mm512_test_epi32_mask(quadrant, _mm512_set1_epi32(k));
        let odd = bit(1);
        let sin = _mm512_mask_blend_ps(odd, s, c);
        let cos = _mm512_mask_blend_ps(odd, c, s);
        let sign = _mm512_set1_epi32(i32::MIN);
        let negate = |v: __m512, lanes: __mmask16| {
            _mm512_castsi512_ps(_mm512_mask_xor_epi32(
                _mm512_castps_si512(v),
                lanes,
                _mm512_castps_si512(v),
                sign,
            ))
        };
        let sin = negate(sin, bit(2));
        let cos = negate(cos, odd ^ bit(2));
        (mul(r, cos), mul(r, sin))
    }

    /// The low 32 bits of the 8 + 8 lanes of `a` and `b`, as 16 lanes.
    #[target_feature(enable = "avx512f")]
    fn low_halves(a: __m512i, b: __m512i) -> __m512i {
        _mm512_inserti64x4::<1>(
            _mm512_castsi256_si512(_mm512_cvtepi64_epi32(a)),
            _mm512_cvtepi64_epi32(b),
        )
    }

    /// Rows `0..blocks·16` of `out` (see `super::fill_rows`), `base` the rows' key base.
    ///
    /// # Safety
    /// AVX-512F and DQ are available, and the rows, `stride` apart, lie in `out`
    /// (the indexing below is checked regardless).
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) unsafe fn fill_blocks(
        base: u64,
        first_row: u64,
        blocks: usize,
        out: &mut [f32],
        stride: usize,
        width: usize,
    ) {
        let lane = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
        let base = _mm512_set1_epi64(base as i64);
        for block in 0..blocks {
            let r0 = first_row.wrapping_add((block * LANES) as u64);
            let rows_lo = _mm512_add_epi64(_mm512_set1_epi64(r0 as i64), lane);
            let rows_hi = _mm512_add_epi64(_mm512_set1_epi64(r0.wrapping_add(8) as i64), lane);
            let mut lo = Generators::seeded(mix(_mm512_xor_si512(base, rows_lo)));
            let mut hi = Generators::seeded(mix(_mm512_xor_si512(base, rows_hi)));
            let rows = &mut out[block * LANES * stride..];
            for pair in 0..width.div_ceil(2) {
                let (a, b) = (lo.next(), hi.next());
                let high = low_halves(_mm512_srli_epi64::<32>(a), _mm512_srli_epi64::<32>(b));
                let low = _mm512_and_si512(low_halves(a, b), _mm512_set1_epi32(0x00ff_ffff));
                let (z0, z1) = box_muller(high, low);
                let (mut first, mut second) = ([0.0f32; LANES], [0.0f32; LANES]);
                // SAFETY: each array holds 16 f32 (unaligned stores).
                unsafe {
                    _mm512_storeu_ps(first.as_mut_ptr(), z0);
                    _mm512_storeu_ps(second.as_mut_ptr(), z1);
                }
                let col = 2 * pair;
                for r in 0..LANES {
                    rows[r * stride + col] = first[r];
                    if col + 1 < width {
                        rows[r * stride + col + 1] = second[r];
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::gemm::Isa;

    /// Many rows at once are the rows one at a time, bit for bit, on every ISA: odd and even
    /// widths, rows a stride apart, counts that leave a partial block, rows across the end of
    /// the row counter, and generators that hit every quadrant and the mantissa test of `ln`.
    #[test]
    fn rows_at_once_are_rows_one_at_a_time() {
        for isa in Isa::ALL.into_iter().filter_map(Isa::available) {
            for (seed, stream, first) in [(1, 0, 0), (42, 7, 1000), (3, 1, u64::MAX - 20)] {
                for (width, stride, rows) in [(4, 4, 70), (1, 3, 33), (5, 8, 16), (9, 9, 47)] {
                    let mut got = alloc::vec![f32::NAN; rows * stride];
                    fill_rows(isa, (seed, stream, first), rows, &mut got, stride, width);
                    let mut want = alloc::vec![f32::NAN; rows * stride];
                    for r in 0..rows {
                        let row = first.wrapping_add(r as u64);
                        fill_row(seed, stream, row, &mut want[r * stride..r * stride + width]);
                    }
                    let bits = |v: &[f32]| {
                        v.iter()
                            .map(|x| x.to_bits())
                            .collect::<alloc::vec::Vec<_>>()
                    };
                    assert!(
                        bits(&got) == bits(&want),
                        "{isa:?}, seed {seed}, stream {stream}, rows {first}.. of {width} (stride {stride})"
                    );
                }
            }
        }
    }

    #[test]
    fn ln_matches_libm_on_the_unit_interval() {
        let mut worst = 0.0f64;
        for i in 1..=100_000u32 {
            let u = i as f32 / 100_000.0;
            let exact = (u as f64).ln();
            let err = ((ln_unit(u) as f64 - exact) / exact.abs().max(1e-30)).abs();
            if u < 0.999 {
                worst = worst.max(err);
            }
        }
        assert!(worst < 2e-6, "worst relative error {worst}");
        assert_eq!(ln_unit(1.0), 0.0);
    }

    #[test]
    fn sincos_is_accurate_on_every_quadrant() {
        for u2 in (0..(1u32 << 24)).step_by(997) {
            let theta = 2.0 * core::f64::consts::PI * (u2 as f64 / 16_777_216.0);
            let (s, c) = sincos_turn(u2, 1.0 / 16_777_216.0);
            assert!((s as f64 - theta.sin()).abs() < 5e-7, "sin at {u2}");
            assert!((c as f64 - theta.cos()).abs() < 5e-7, "cos at {u2}");
        }
    }

    #[test]
    // Too slow under Miri (more than 10 s interpreted; scripts/miri.sh runs the rest).
    #[cfg_attr(miri, ignore)]
    fn normals_have_unit_moments() {
        let mut sum = 0.0f64;
        let mut sq = 0.0f64;
        let mut fourth = 0.0f64;
        let n = 200_000u64;
        let mut row = [0.0f32; 2];
        for r in 0..n / 2 {
            fill_row(7, 0, r, &mut row);
            for &z in &row {
                let z = z as f64;
                sum += z;
                sq += z * z;
                fourth += z * z * z * z;
            }
        }
        let n = n as f64;
        assert!((sum / n).abs() < 0.01);
        assert!((sq / n - 1.0).abs() < 0.015);
        assert!((fourth / n - 3.0).abs() < 0.1);
    }

    #[test]
    fn rows_and_streams_are_distinct_and_reproducible() {
        let mut a = [0.0f32; 5];
        let mut b = [0.0f32; 5];
        fill_row(1, 2, 3, &mut a);
        fill_row(1, 2, 3, &mut b);
        assert_eq!(a, b);
        fill_row(1, 2, 4, &mut b);
        assert_ne!(a, b);
        fill_row(1, 3, 3, &mut b);
        assert_ne!(a, b);
        fill_row(2, 2, 3, &mut b);
        assert_ne!(a, b);
    }
}
