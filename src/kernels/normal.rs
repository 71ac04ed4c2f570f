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

use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::{Rng, SeedableRng};

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

/// One pair of standard normals from 64 random bits.
#[inline]
pub fn box_muller(bits: u64) -> (f32, f32) {
    const TWO_POW_M32: f32 = 1.0 / 4_294_967_296.0;
    const TWO_POW_M24: f32 = 1.0 / 16_777_216.0;
    let u1 = ((bits >> 32) as f32 + 1.0) * TWO_POW_M32;
    let r = libm::sqrtf(-2.0 * ln_unit(u1));
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

#[cfg(test)]
mod tests {
    use super::*;

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
