//! The multispectral tissue-oximetry simulator (docs/tasks.md §msi-oximetry): tissue
//! parameters x → the 8 white-referenced band values of a multispectral camera.
//!
//! A defined diffusion-theory model, not Monte-Carlo light transport: absorption from
//! tabulated haemoglobin and water spectra, a power-law reduced scattering, Farrell's total
//! diffuse reflectance of a semi-infinite medium, optionally a thin absorbing (melanin) top
//! layer crossed twice, and Gaussian camera bands. Everything is computed in f64, in the order
//! of the numpy reference in tests/fixtures/msi/make_msi_fixture.py, which defines the model
//! (tests/msi_task.rs holds the Rust model to it).
//!
//! The camera observes b̃_k = b_k · exp(ε_k / SNR), ε ~ N(0, I₈), SNR = 100. The network's
//! condition is the centred log-ratio (CLR) of the raw bands, y_k = ln b̃_k − (1/8) Σ_j ln b̃_j,
//! so y = CLR(ln b(x)) + C ε / SNR with C the centring projector, and the likelihood on the
//! 7-D subspace Σ y = 0 is exactly p(y | x) ∝ exp(−SNR²/2 · ‖y − CLR(ln b(x))‖²)
//! ([`msi_log_likelihood`]).

use std::sync::OnceLock;

use crate::prelude::*;
use crate::rng::Rng;

/// Camera bands per pixel.
pub const MSI_BANDS: usize = 8;

/// Signal-to-noise ratio of the multiplicative band noise.
pub const MSI_SNR: f64 = 100.0;

/// Names of the parameters, in the order of x: oxygen saturation, blood volume fraction,
/// reduced scattering at 500 nm [1/cm], scattering power; the two-layer model adds the top
/// layer's thickness [mm] and its melanin volume fraction.
pub const MSI_PARAMETERS: [&str; 6] = ["sO2", "vhb", "a_mie", "b_mie", "d_top", "f_mel"];

/// Units of the parameters (empty: a fraction or an exponent).
pub const MSI_UNITS: [&str; 6] = ["", "", "1/cm", "", "mm", ""];

/// Lower corner of the uniform prior box (the one-layer model uses the first four entries).
pub const MSI_LOWER: [f64; 6] = [0.0, 0.005, 5.0, 0.5, 0.02, 0.0];

/// Upper corner of the uniform prior box.
pub const MSI_UPPER: [f64; 6] = [1.0, 0.10, 40.0, 2.0, 0.15, 0.05];

/// Centre wavelengths of the camera bands [nm].
pub const BAND_CENTRES_NM: [f64; MSI_BANDS] =
    [470.0, 480.0, 511.0, 560.0, 580.0, 600.0, 660.0, 700.0];

/// Full width at half maximum of every band's Gaussian pass-band [nm].
pub const BAND_FWHM_NM: f64 = 10.0;

/// Rows of the absorption tables: 440, 450, …, 740 nm.
const TABLE_ROWS: usize = 31;
const TABLE_FIRST_NM: f64 = 440.0;
const TABLE_STEP_NM: f64 = 10.0;

/// Molar extinction of oxygenated haemoglobin [1/(cm·M)] at the table rows (Prahl's
/// compilation).
const EPS_HBO2: [f64; TABLE_ROWS] = [
    102580.0, 62816.0, 44480.0, 33209.2, 26629.2, 23684.4, 20932.8, 20035.2, 24202.4, 39956.8,
    53236.0, 43016.0, 32613.2, 44496.0, 50104.0, 14400.8, 3200.0, 1506.0, 942.0, 610.0, 442.0,
    368.0, 319.6, 294.0, 277.6, 276.0, 290.0, 314.0, 348.0, 390.0, 446.0,
];

/// Molar extinction of deoxygenated haemoglobin [1/(cm·M)] at the table rows.
const EPS_HB: [f64; TABLE_ROWS] = [
    413280.0, 103292.0, 23388.8, 16156.4, 14550.0, 16684.0, 20862.0, 25773.6, 31589.6, 39036.4,
    46592.0, 53412.0, 53788.0, 45072.0, 37020.0, 28324.4, 14677.2, 9443.6, 6509.6, 5148.8, 4345.2,
    3750.12, 3226.56, 2795.12, 2407.92, 2051.96, 1794.28, 1540.48, 1325.88, 1102.2, 1115.88,
];

/// Absorption coefficient of water [1/cm] at the table rows (Segelstein 1981).
const MUA_WATER: [f64; TABLE_ROWS] = [
    2.69e-4, 2.26e-4, 2.07e-4, 1.95e-4, 1.86e-4, 1.88e-4, 2.32e-4, 3.12e-4, 3.79e-4, 4.17e-4,
    4.89e-4, 5.58e-4, 6.44e-4, 7.57e-4, 9.88e-4, 1.36e-3, 2.02e-3, 2.55e-3, 2.86e-3, 3.01e-3,
    3.08e-3, 3.24e-3, 3.64e-3, 3.94e-3, 4.21e-3, 4.83e-3, 6.01e-3, 8.85e-3, 1.34e-2, 2.04e-2,
    2.48e-2,
];

/// The spectral grid: 440, 442, …, 740 nm.
const GRID: usize = 151;
const GRID_STEP_NM: f64 = 2.0;

/// Haemoglobin concentration of whole blood [g/L] and its molar mass [g/mol].
const HB_GRAMS_PER_LITRE: f64 = 150.0;
const HB_MOLAR_MASS: f64 = 64500.0;
/// Water volume fraction of the tissue.
const WATER_FRACTION: f64 = 0.7;
/// Refractive index of the tissue.
const REFRACTIVE_INDEX: f64 = 1.36;
/// Melanosome absorption μa = 1.70e12 · λ[nm]^−3.48 [1/cm] (Jacques 1998).
const MELANIN_SCALE: f64 = 1.70e12;
const MELANIN_EXPONENT: f64 = 3.48;
/// Band values are clipped here before the logarithm (never active inside the prior box).
pub const BAND_FLOOR: f64 = 1e-6;

/// The spectra on the grid and the camera's pass-bands, computed once.
struct Spectra {
    /// ln(λ / 500 nm), the exponent's argument of the scattering power law.
    ln_lambda_500: [f64; GRID],
    eps_hbo2: [f64; GRID],
    eps_hb: [f64; GRID],
    mua_water: [f64; GRID],
    /// λ^−3.48, the melanin spectrum without its scale.
    melanin: [f64; GRID],
    /// Pass-band weights of each band, normalised to sum 1.
    bands: [[f64; GRID]; MSI_BANDS],
    /// ln(10) · c / M: μa of whole blood per unit of molar extinction.
    blood: f64,
    /// Farrell's A = (1 + r_i)/(1 − r_i) with the internal diffuse reflection r_i.
    farrell_a: f64,
}

/// Linear interpolation of the 10-nm table at `lambda` (as numpy's `interp`).
fn interpolate(table: &[f64; TABLE_ROWS], lambda: f64) -> f64 {
    let pos = (lambda - TABLE_FIRST_NM) / TABLE_STEP_NM;
    let j = (pos.floor() as usize).min(TABLE_ROWS - 2);
    let x0 = TABLE_FIRST_NM + TABLE_STEP_NM * j as f64;
    if lambda == x0 {
        return table[j];
    }
    let slope = (table[j + 1] - table[j]) / TABLE_STEP_NM;
    slope * (lambda - x0) + table[j]
}

fn spectra() -> &'static Spectra {
    static SPECTRA: OnceLock<Spectra> = OnceLock::new();
    SPECTRA.get_or_init(|| {
        let lambda: [f64; GRID] =
            core::array::from_fn(|i| TABLE_FIRST_NM + GRID_STEP_NM * i as f64);
        let bands = core::array::from_fn(|k| {
            let mut t: [f64; GRID] = core::array::from_fn(|i| {
                let u = (lambda[i] - BAND_CENTRES_NM[k]) / BAND_FWHM_NM;
                (-4.0 * 2f64.ln() * (u * u)).exp()
            });
            let sum: f64 = t.iter().sum();
            t.iter_mut().for_each(|v| *v /= sum);
            t
        });
        let n = REFRACTIVE_INDEX;
        let r_i = 0.6681 + 0.0636 * n + 0.7099 / n - 1.4399 / (n * n);
        Spectra {
            ln_lambda_500: lambda.map(|l| (l / 500.0).ln()),
            eps_hbo2: lambda.map(|l| interpolate(&EPS_HBO2, l)),
            eps_hb: lambda.map(|l| interpolate(&EPS_HB, l)),
            mua_water: lambda.map(|l| interpolate(&MUA_WATER, l)),
            melanin: lambda.map(|l| l.powf(-MELANIN_EXPONENT)),
            bands,
            blood: 10f64.ln() * HB_GRAMS_PER_LITRE / HB_MOLAR_MASS,
            farrell_a: (1.0 + r_i) / (1.0 - r_i),
        }
    })
}

/// The diffuse reflectance R(λ) on the grid for x = (sO2, vhb, a_mie, b_mie) or
/// (sO2, vhb, a_mie, b_mie, d_top [mm], f_mel).
fn reflectance(x: &[f64], r: &mut [f64; GRID]) {
    let sp = spectra();
    let (s, v, a, b) = (x[0], x[1], x[2], x[3]);
    for (i, r) in r.iter_mut().enumerate() {
        let mua = v * sp.blood * (s * sp.eps_hbo2[i] + (1.0 - s) * sp.eps_hb[i])
            + WATER_FRACTION * sp.mua_water[i];
        let musp = a * (-b * sp.ln_lambda_500[i]).exp();
        let albedo = musp / (mua + musp);
        let q = (3.0 * (1.0 - albedo)).sqrt();
        // Farrell et al. 1992, total diffuse reflectance.
        *r = 0.5 * albedo * (-q).exp() * (1.0 + (-4.0 / 3.0 * sp.farrell_a * q).exp());
        if x.len() >= 6 {
            // The absorbing top layer, crossed twice; d_top in mm, μa in 1/cm.
            *r *= (-2.0 * x[5] * MELANIN_SCALE * sp.melanin[i] * x[4] * 0.1).exp();
        }
    }
}

/// The noise-free, white-referenced band values b_k = Σ_λ T_k(λ) R(λ) of parameters `x`
/// (4 or 6 entries, docs/tasks.md §msi-oximetry).
pub fn msi_bands(x: &[f64]) -> [f64; MSI_BANDS] {
    let mut r = [0.0; GRID];
    reflectance(x, &mut r);
    spectra()
        .bands
        .map(|t| t.iter().zip(&r).map(|(t, r)| t * r).sum())
}

/// The centred log-ratio of band values: ln b_k − (1/8) Σ_j ln b_j. Not finite if a band is
/// NaN, infinite or ≤ 0.
pub fn clr(bands: &[f64]) -> [f64; MSI_BANDS] {
    let logs: [f64; MSI_BANDS] = core::array::from_fn(|k| bands[k].ln());
    let mean = logs.iter().sum::<f64>() / MSI_BANDS as f64;
    logs.map(|l| l - mean)
}

/// The noise-free CLR observation of `x`: the CLR of its bands clipped at [`BAND_FLOOR`].
pub fn msi_clr(x: &[f64]) -> [f64; MSI_BANDS] {
    clr(&msi_bands(x).map(|b| b.max(BAND_FLOOR)))
}

/// The exact log-likelihood ln p(y | x) on the CLR subspace, up to its constant:
/// −SNR²/2 · ‖y − CLR(ln b(x))‖², `y_clr` the CLR of the observed bands.
pub fn msi_log_likelihood(x: &[f64], y_clr: &[f64]) -> f64 {
    let m = msi_clr(x);
    let d2: f64 = m.iter().zip(y_clr).map(|(m, y)| (y - m).powi(2)).sum();
    -0.5 * MSI_SNR * MSI_SNR * d2
}

/// Noisy band values of `x`: b_k · exp(ε_k / SNR) with ε_k standard normal from `rng`.
pub fn msi_observe(x: &[f64], rng: &mut Rng) -> [f64; MSI_BANDS] {
    msi_bands(x).map(|b| b * (rng.normal() / MSI_SNR).exp())
}

/// [`msi_observe`] of parameters stored as f32, rounded to f32: how the task simulates and
/// re-observes its rows.
pub fn msi_observe_f32(x: &[f32], rng: &mut Rng) -> [f32; MSI_BANDS] {
    let x: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    msi_observe(&x, rng).map(|b| b as f32)
}

/// A uniform draw from the prior box of the first `dim` parameters, as f32 strictly inside
/// the box: a value that rounds onto (or past) a bound is moved one f32 step inwards, so its
/// logit is finite.
pub fn msi_prior_draw(dim: usize, rng: &mut Rng, out: &mut [f32]) {
    for d in 0..dim {
        let (lo, hi) = (MSI_LOWER[d], MSI_UPPER[d]);
        let v = (lo + (hi - lo) * rng.uniform()) as f32;
        out[d] = strictly_inside(v, lo, hi);
    }
}

/// `v`, or the nearest f32 inside (lo, hi) if `v` is on or beyond a bound.
fn strictly_inside(v: f32, lo: f64, hi: f64) -> f32 {
    if (v as f64) <= lo {
        next_f32_up(lo as f32)
    } else if (v as f64) >= hi {
        next_f32_down(hi as f32)
    } else {
        v
    }
}

fn next_f32_up(v: f32) -> f32 {
    let up = f32::from_bits(if v == 0.0 {
        1
    } else if v > 0.0 {
        v.to_bits() + 1
    } else {
        v.to_bits() - 1
    });
    if (up as f64) <= (v as f64) {
        next_f32_up(up)
    } else {
        up
    }
}

fn next_f32_down(v: f32) -> f32 {
    -next_f32_up(-v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolation_hits_the_rows_and_the_midpoints() {
        assert_eq!(interpolate(&EPS_HBO2, 440.0), 102580.0);
        assert_eq!(interpolate(&EPS_HBO2, 740.0), 446.0);
        assert_eq!(interpolate(&EPS_HB, 560.0), 53788.0);
        // 444 nm: 40 % of the way from 440 to 450.
        let want = 102580.0 + 0.4 * (62816.0 - 102580.0);
        assert!((interpolate(&EPS_HBO2, 444.0) - want).abs() < 1e-9);
    }

    #[test]
    fn pass_bands_are_normalised_and_centred() {
        let sp = spectra();
        for (k, t) in sp.bands.iter().enumerate() {
            assert!((t.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            let centre: f64 = t
                .iter()
                .enumerate()
                .map(|(i, t)| t * (TABLE_FIRST_NM + GRID_STEP_NM * i as f64))
                .sum();
            assert!((centre - BAND_CENTRES_NM[k]).abs() < 0.01, "{k}: {centre}");
        }
        // n = 1.36 gives A = 2.985.
        assert!((sp.farrell_a - 2.985).abs() < 1e-3, "{}", sp.farrell_a);
    }

    #[test]
    fn prior_draws_stay_strictly_inside_even_when_rounding_reaches_a_bound() {
        assert_eq!(strictly_inside(0.0, 0.0, 1.0), f32::from_bits(1));
        assert_eq!(strictly_inside(1.0, 0.0, 1.0), 1.0f32 - f32::EPSILON / 2.0);
        // 0.1 and 0.005 are not f32 numbers: the bound's f32 may lie outside or inside.
        for (lo, hi) in [(0.005, 0.10), (0.5, 2.0)] {
            let a = strictly_inside(lo as f32, lo, hi) as f64;
            let b = strictly_inside(hi as f32, lo, hi) as f64;
            assert!(a > lo && b < hi, "{a} {b}");
        }
    }
}
