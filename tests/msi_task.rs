//! The msi-oximetry simulator (docs/tasks.md §msi-oximetry) against its numpy definition
//! (tests/fixtures/msi/make_msi_fixture.py), its noise model, its prior box, and its
//! reference posterior sampler (§msi-reference).

use innfer::rng::Rng;
use innfer::tasks::Task;
use innfer::tasks::msi::{
    BAND_FLOOR, MSI_BANDS, MSI_LOWER, MSI_SNR, MSI_UPPER, clr, msi_bands, msi_clr,
};

/// A fixture array as (f32 values, rows).
fn fixture(name: &str) -> (Vec<f32>, usize) {
    let path = format!("{}/tests/fixtures/msi/{name}", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let a = innfer::npy::parse(&bytes).unwrap();
    (a.data, a.shape[0])
}

fn as_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&v| v as f64).collect()
}

#[test]
fn the_forward_model_reproduces_the_numpy_definition() {
    for dim in [4, 6] {
        let (x, rows) = fixture(&format!("msi{dim}_x.npy"));
        let (bands, _) = fixture(&format!("msi{dim}_bands.npy"));
        let (y, _) = fixture(&format!("msi{dim}_clr.npy"));
        assert_eq!(rows, 200);
        let (mut worst_band, mut worst_clr) = (0.0f64, 0.0f64);
        for i in 0..rows {
            let xi = as_f64(&x[i * dim..(i + 1) * dim]);
            let b = msi_bands(&xi);
            let c = msi_clr(&xi);
            for k in 0..MSI_BANDS {
                let want = bands[i * MSI_BANDS + k] as f64;
                worst_band = worst_band.max((b[k] - want).abs() / want);
                worst_clr = worst_clr.max((c[k] - y[i * MSI_BANDS + k] as f64).abs());
            }
        }
        // The fixture's outputs are read as f32 (relative rounding 6e-8).
        assert!(
            worst_band < 1e-6,
            "{dim}-D: bands off by {worst_band:e} (relative)"
        );
        assert!(worst_clr < 1e-5, "{dim}-D: CLR off by {worst_clr:e}");
    }
}

#[test]
fn the_band_floor_is_never_reached_inside_the_box() {
    // The darkest bands are at the box's corners and edges, which the fixture holds.
    for dim in [4, 6] {
        let (x, rows) = fixture(&format!("msi{dim}_x.npy"));
        for i in 0..rows {
            let b = msi_bands(&as_f64(&x[i * dim..(i + 1) * dim]));
            assert!(b.iter().all(|&b| b > 1000.0 * BAND_FLOOR), "{b:?}");
        }
    }
}

/// The bands and CLR printed by the numpy reference for five tissues, to its 3 decimals.
#[test]
fn the_reference_printout_is_reproduced() {
    let cases: [([f64; 4], [f64; 8]); 5] = [
        (
            [0.97, 0.02, 18.9, 1.286],
            [0.234, 0.257, 0.276, 0.197, 0.178, 0.464, 0.749, 0.755],
        ),
        (
            [0.50, 0.02, 18.9, 1.286],
            [0.267, 0.287, 0.262, 0.177, 0.184, 0.350, 0.575, 0.634],
        ),
        (
            [0.10, 0.02, 18.9, 1.286],
            [0.306, 0.320, 0.252, 0.163, 0.190, 0.299, 0.505, 0.575],
        ),
        (
            [0.70, 0.08, 18.9, 1.286],
            [0.110, 0.124, 0.120, 0.070, 0.068, 0.210, 0.435, 0.492],
        ),
        (
            [0.70, 0.005, 18.9, 1.286],
            [0.440, 0.465, 0.459, 0.357, 0.352, 0.583, 0.778, 0.802],
        ),
    ];
    for (x, want) in cases {
        let b = msi_bands(&x);
        for k in 0..8 {
            // Printed to 3 decimals; the printout rounds 0.28647 to .287.
            assert!(
                (b[k] - want[k]).abs() <= 1e-3,
                "{x:?} band {k}: {} vs {}",
                b[k],
                want[k]
            );
        }
    }
    let y = msi_clr(&[0.97, 0.02, 18.9, 1.286]);
    let want = [-0.354, -0.261, -0.189, -0.526, -0.626, 0.331, 0.809, 0.817];
    for k in 0..8 {
        assert!(
            (y[k] - want[k]).abs() <= 1e-3,
            "CLR {k}: {} vs {}",
            y[k],
            want[k]
        );
    }
    // sO2 from 0 to 1 lowers R560/R660 monotonically, from 0.326 to 0.258.
    let ratio = |s: f64| {
        let b = msi_bands(&[s, 0.02, 18.9, 1.286]);
        b[3] / b[6]
    };
    assert!((ratio(0.0) - 0.326).abs() < 1e-3 && (ratio(1.0) - 0.258).abs() < 1e-3);
    assert!((0..10).all(|i| ratio(i as f64 / 10.0) > ratio((i + 1) as f64 / 10.0)));
}

#[test]
fn simulated_parameters_stay_strictly_inside_the_prior_box() {
    for task in [Task::MsiOximetry, Task::MsiOximetryTwoLayer] {
        let d = task.x_dim();
        let (lo, hi) = task.prior_box().unwrap();
        assert_eq!((lo, hi), (&MSI_LOWER[..d], &MSI_UPPER[..d]));
        let data = task.simulate(50_000, 3, 0);
        assert_eq!((data.x_dim, data.y_dim), (d, MSI_BANDS));
        for row in data.x.chunks_exact(d) {
            for i in 0..d {
                let v = row[i] as f64;
                assert!(lo[i] < v && v < hi[i], "x{i} = {v}");
            }
        }
        // Uniform: each coordinate's mean near the box's centre (σ/√n ≈ 0.0013 of the width).
        for i in 0..d {
            let m = data
                .x
                .iter()
                .skip(i)
                .step_by(d)
                .map(|&v| v as f64)
                .sum::<f64>()
                / 50_000.0;
            let centre = 0.5 * (lo[i] + hi[i]);
            assert!(
                (m - centre).abs() < 0.006 * (hi[i] - lo[i]),
                "x{i}: mean {m}"
            );
        }
    }
}

#[test]
fn the_noise_is_log_normal_with_the_stated_std_on_the_clr_subspace() {
    for task in [Task::MsiOximetry, Task::MsiOximetryTwoLayer] {
        let d = task.x_dim();
        let n = 20_000;
        let data = task.simulate(n, 5, 0);
        // A second observation of the same parameters, as the trainer draws every epoch.
        let again = task.observe(&data.x, &mut Rng::new(5, 1)).unwrap();
        for y in [&data.y, &again] {
            let (mut raw, mut projected) = (Vec::new(), Vec::new());
            for (x, b) in data.x.chunks_exact(d).zip(y.chunks_exact(MSI_BANDS)) {
                let x = as_f64(x);
                let b = as_f64(b);
                let clean = msi_bands(&x);
                raw.extend((0..MSI_BANDS).map(|k| MSI_SNR * (b[k] / clean[k]).ln()));
                // The CLR residual is C ε / SNR: its entries sum to 0.
                let r: Vec<f64> = clr(&b)
                    .iter()
                    .zip(msi_clr(&x))
                    .map(|(o, m)| MSI_SNR * (o - m))
                    .collect();
                assert!(r.iter().sum::<f64>().abs() < 1e-3);
                projected.extend(r);
            }
            let moments = |v: &[f64]| {
                let m = v.iter().sum::<f64>() / v.len() as f64;
                let s = (v.iter().map(|e| (e - m).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
                (m, s)
            };
            // ln(b̃/b)·SNR = ε ~ N(0, 1); each CLR entry of C ε has variance 1 − 1/8.
            let (m, s) = moments(&raw);
            assert!(
                m.abs() < 0.01 && (s - 1.0).abs() < 0.01,
                "{task:?}: ε {m} ± {s}"
            );
            let (m, s) = moments(&projected);
            assert!(m.abs() < 1e-6, "{m}");
            assert!(
                (s - (7.0f64 / 8.0).sqrt()).abs() < 0.01,
                "{task:?}: C ε std {s}"
            );
        }
        assert_ne!(data.y, again);
    }
    // Only a noisy image of x can be re-observed.
    assert!(
        Task::Kinematics
            .observe(&[0.0; 4], &mut Rng::new(0, 0))
            .is_none()
    );
}

mod reference {
    use super::*;
    use innfer::tasks::msi::msi_log_likelihood;
    use innfer::tasks::{
        BoxPosterior, ExactPosterior, MSI_REFERENCE_ESS, msi_reference, sample_box_posterior,
    };

    /// Weighted mean and standard deviation of a density given on a grid.
    fn grid_moments(points: &[(f64, f64, f64)]) -> ([f64; 2], [f64; 2]) {
        let top = points.iter().map(|p| p.2).fold(f64::NEG_INFINITY, f64::max);
        let w: Vec<f64> = points.iter().map(|p| (p.2 - top).exp()).collect();
        let total: f64 = w.iter().sum();
        let mean = [0, 1].map(|c| {
            points
                .iter()
                .zip(&w)
                .map(|(p, w)| w * [p.0, p.1][c])
                .sum::<f64>()
                / total
        });
        let std = [0, 1].map(|c| {
            let v = points
                .iter()
                .zip(&w)
                .map(|(p, w)| w * ([p.0, p.1][c] - mean[c]).powi(2));
            (v.sum::<f64>() / total).sqrt()
        });
        (mean, std)
    }

    fn assert_moments(r: &BoxPosterior, mean: &[f64], std: &[f64], what: &str) {
        // Monte-Carlo error of a weighted mean: about std/√ESS (≈ std/45 at ESS 2000).
        for i in 0..mean.len() {
            let z = (r.mean[i] - mean[i]) / std[i];
            let ratio = r.std[i] / std[i];
            assert!(
                z.abs() < 0.12,
                "{what} x{i}: mean {} vs {} ({z:.3} std)",
                r.mean[i],
                mean[i]
            );
            assert!(
                (ratio - 1.0).abs() < 0.06,
                "{what} x{i}: std {} vs {}",
                r.std[i],
                std[i]
            );
        }
    }

    #[test]
    fn a_known_posterior_with_a_ridge_and_a_box_edge_is_recovered() {
        // Likelihood: sO2 ~ N(1, 0.01²) cut by the box at 1 (a half-normal); (vhb, a_mie) a
        // ridge of correlation 0.995 well inside the box; b_mie ~ N(1.2, 0.05²).
        let (m_v, s_v, m_a, s_a, rho) = (0.05, 0.01, 20.0, 4.0, 0.995);
        let log_l = |x: &[f64]| {
            let (zv, za) = ((x[1] - m_v) / s_v, (x[2] - m_a) / s_a);
            let ridge = (zv * zv - 2.0 * rho * zv * za + za * za) / (1.0 - rho * rho);
            -0.5 * (((x[0] - 1.0) / 0.01).powi(2) + ridge + ((x[3] - 1.2) / 0.05).powi(2))
        };
        let r = sample_box_posterior(
            &MSI_LOWER[..4],
            &MSI_UPPER[..4],
            log_l,
            4000,
            2000.0,
            &mut Rng::new(2, 0),
        );
        assert!(r.ess >= 2000.0, "{}", r.ess);
        let half = 2.0 / std::f64::consts::PI;
        let mean = [1.0 - 0.01 * half.sqrt(), m_v, m_a, 1.2];
        let std = [0.01 * (1.0 - half).sqrt(), s_v, s_a, 0.05];
        assert_moments(&r, &mean, &std, "ridge");
        // The draws: inside the box, with the ridge's correlation.
        let rows: Vec<&[f32]> = r.samples.chunks_exact(4).collect();
        assert!(rows.iter().all(|x| (0..4).all(|i| MSI_LOWER[i] <= x[i] as f64 && x[i] as f64 <= MSI_UPPER[i])));
        let n = rows.len() as f64;
        let (mv, ma) = (
            rows.iter().map(|x| x[1] as f64).sum::<f64>() / n,
            rows.iter().map(|x| x[2] as f64).sum::<f64>() / n,
        );
        let cov = rows
            .iter()
            .map(|x| (x[1] as f64 - mv) * (x[2] as f64 - ma))
            .sum::<f64>()
            / n;
        let corr = cov / (r.std[1] * r.std[2]);
        assert!((corr - rho).abs() < 0.01, "correlation {corr}");
    }

    #[test]
    fn the_msi_posterior_of_two_free_parameters_matches_grid_integration() {
        // sO2 and vhb free, a_mie and b_mie fixed at the truth: the exact posterior by
        // brute force on a grid, the coarse one to find the mode, a fine one around it.
        let x_true = [0.62f32, 0.031, 18.0, 1.1];
        let y: Vec<f64> = msi_observe_bands(&x_true, 11);
        let log_l =
            |s: f64, v: f64| msi_log_likelihood(&[s, v, x_true[2] as f64, x_true[3] as f64], &y);
        let (lo, hi) = ([MSI_LOWER[0], MSI_LOWER[1]], [MSI_UPPER[0], MSI_UPPER[1]]);
        // Cell centres of a 200 × 200 grid over the box.
        let at = |i: usize, d: usize| lo[d] + (hi[d] - lo[d]) * (i as f64 + 0.5) / 200.0;
        let mut best = (f64::NEG_INFINITY, 0.0, 0.0);
        for i in 0..200 {
            for j in 0..200 {
                let (s, v) = (at(i, 0), at(j, 1));
                let l = log_l(s, v);
                if l > best.0 {
                    best = (l, s, v);
                }
            }
        }
        // ±20 coarse cells around the mode, 401² points.
        let (ws, wv) = (
            20.0 * (hi[0] - lo[0]) / 200.0,
            20.0 * (hi[1] - lo[1]) / 200.0,
        );
        let mut points = Vec::new();
        for i in 0..401 {
            for j in 0..401 {
                let s = best.1 - ws + 2.0 * ws * i as f64 / 400.0;
                let v = best.2 - wv + 2.0 * wv * j as f64 / 400.0;
                if s >= lo[0] && s <= hi[0] && v >= lo[1] && v <= hi[1] {
                    points.push((s, v, log_l(s, v)));
                }
            }
        }
        let (mean, std) = grid_moments(&points);
        // The window holds the posterior: its edges are many standard deviations out.
        assert!(
            ws > 6.0 * std[0] && wv > 6.0 * std[1],
            "{std:?} in ±({ws}, {wv})"
        );
        let r = sample_box_posterior(
            &lo,
            &hi,
            |x| log_l(x[0], x[1]),
            2000,
            2000.0,
            &mut Rng::new(4, 0),
        );
        assert!(r.ess >= 2000.0);
        assert_moments(&r, &mean, &std, "grid");
    }

    /// Noisy raw bands of `x` from stream `(seed, 0)`, as f64, and their CLR.
    fn msi_observe_bands(x: &[f32], seed: u64) -> Vec<f64> {
        let b = innfer::tasks::msi::msi_observe_f32(x, &mut Rng::new(seed, 0));
        clr(&as_f64(&b)).to_vec()
    }

    #[test]
    fn reference_posteriors_are_calibrated_over_the_prior_predictive() {
        // (x* − posterior mean)/posterior std over observations from the prior predictive:
        // mean square 1 for an exact posterior (12 values: 1 ± 0.41).
        for task in [Task::MsiOximetry, Task::MsiOximetryTwoLayer] {
            let d = task.x_dim();
            let obs = task.simulate(12, 21, 0);
            let mut z2 = vec![0.0; d];
            for i in 0..12 {
                let r = msi_reference(
                    task,
                    &obs.y[i * 8..(i + 1) * 8],
                    1000,
                    &mut Rng::new(21, 1 + i as u64),
                );
                assert!(
                    r.ess >= MSI_REFERENCE_ESS,
                    "{task:?} obs {i}: ESS {} after {} draws",
                    r.ess,
                    r.draws
                );
                let truth = &obs.x[i * d..(i + 1) * d];
                for (k, z) in z2.iter_mut().enumerate() {
                    *z += ((truth[k] as f64 - r.mean[k]) / r.std[k]).powi(2) / 12.0;
                }
            }
            for (k, z) in z2.iter().enumerate() {
                assert!((0.25..2.5).contains(z), "{task:?} x{k}: mean z² {z}");
            }
        }
    }

    #[test]
    fn an_invalid_pixel_gets_nan_reference_draws() {
        for bad in [0.0f32, -0.1, f32::NAN, f32::INFINITY] {
            let mut y = [0.3f32; 8];
            y[2] = bad;
            let r = msi_reference(Task::MsiOximetry, &y, 5, &mut Rng::new(1, 0));
            assert!(
                r.samples.iter().all(|v| v.is_nan()) && r.ess == 0.0,
                "{bad}"
            );
            let e = ExactPosterior::new(Task::MsiOximetry).draw(&y, 5, &mut Rng::new(1, 0));
            assert!(e.iter().all(|v| v.is_nan()));
        }
    }
}

/// The evaluation of an msi model (docs/metrics.md §reference) passes the exact posterior
/// and fails a widened and a shifted one.
#[test]
fn eval_passes_the_exact_posterior_and_fails_perturbed_ones() {
    use innfer::metrics::stats::mean;
    use innfer::metrics::{EvalSettings, Report, evaluate};
    use innfer::tasks::ExactPosterior;
    let task = Task::MsiOximetry;
    let settings = EvalSettings {
        task,
        n_obs: 12,
        n_samples: 500,
        n_test: 10,
        seed: 8,
        n_reference: 12,
    };
    let run =
        |mut p: ExactPosterior| -> Report { evaluate(&mut p, &settings, &mut |_| {}).unwrap() };
    let exact = run(ExactPosterior::new(task));
    // No density of x given y in closed form; no raw-unit MMD² for a box prior.
    assert!(exact.held_out.is_none() && exact.checks.mmd.is_empty());
    assert_eq!(exact.checks.outside_box, Some(0));
    let r = exact.reference.unwrap();
    assert_eq!(r.per_observation.len(), 12);
    assert!(r.ess().iter().all(|&e| e >= 2000.0));
    assert!(
        r.median_mean_errors().iter().all(|&e| e < 0.1),
        "{:?}",
        r.median_mean_errors()
    );
    assert!(
        r.median_std_ratios()
            .iter()
            .all(|&q| (q - 1.0).abs() < 0.06),
        "{:?}",
        r.median_std_ratios()
    );
    assert!(mean(&r.mmd()) < 0.002, "{:?}", r.mmd());

    let wide = run(ExactPosterior::widened(task, 1.25));
    assert!(wide.checks.outside_box.unwrap() > 0);
    let r = wide.reference.unwrap();
    assert!(
        r.median_std_ratios().iter().all(|&q| q > 1.15),
        "{:?}",
        r.median_std_ratios()
    );
    assert!(mean(&r.mmd()) > 0.005);

    // 0.01 in every parameter: about 0.6 of sO2's posterior std, nothing for a_mie.
    let shifted = run(ExactPosterior::shifted(task, 0.01));
    let r = shifted.reference.unwrap();
    assert!(
        r.median_mean_errors()[0] > 0.3,
        "{:?}",
        r.median_mean_errors()
    );
    assert!(mean(&r.mmd()) > 0.005);
}

mod phantom {
    use super::*;
    use innfer::tasks::phantom::{
        PHANTOM_PARAMETERS, PHANTOM_SIZE, RatioBaseline, Region, background, log_ratio_560_660,
        phantom_truth, render_phantom,
    };

    fn median(mut v: Vec<f64>) -> f64 {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }

    /// Per region: the median of `f` over its pixels.
    fn region_median(regions: &[Region], region: Region, f: impl Fn(usize) -> f64) -> f64 {
        median(
            (0..regions.len())
                .filter(|&i| regions[i] == region)
                .map(f)
                .collect(),
        )
    }

    #[test]
    fn the_scene_is_fixed_and_the_noise_follows_the_seed() {
        let a = render_phantom(0);
        let n = PHANTOM_SIZE * PHANTOM_SIZE;
        assert_eq!(a.truth.len(), n * PHANTOM_PARAMETERS);
        assert_eq!(a.cube.len(), n * MSI_BANDS);
        let again = render_phantom(0);
        assert_eq!((&a.truth, &a.cube), (&again.truth, &again.cube));
        let other = render_phantom(1);
        assert_eq!(a.truth, other.truth);
        assert_ne!(a.cube, other.cube);
        assert_eq!(phantom_truth().0, a.truth);
        // Every pixel's parameters inside the prior box, every band positive.
        for x in a.truth.chunks_exact(4) {
            assert!(
                (0..4).all(|i| MSI_LOWER[i] < x[i] as f64 && (x[i] as f64) < MSI_UPPER[i]),
                "{x:?}"
            );
        }
        assert!(a.cube.iter().all(|&b| b > 0.0 && b.is_finite()));
    }

    #[test]
    fn the_regions_have_their_stated_sizes_and_parameters() {
        let (truth, regions) = phantom_truth();
        let count = |r: Region| regions.iter().filter(|&&g| g == r).count();
        // The disc: π·31² ≈ 3019 pixels, less where a vein crosses its edge.
        let disc = count(Region::Ischemia) as f64;
        assert!(
            (disc / (std::f64::consts::PI * 31.0 * 31.0) - 1.0).abs() < 0.05,
            "{disc}"
        );
        // Vessels: about length × width (two arteries 8 and 5 px, two veins 7 and 4 px wide).
        let (arteries, veins) = (count(Region::Artery), count(Region::Vein));
        assert!(
            (3000..5000).contains(&arteries) && (2500..4500).contains(&veins),
            "{arteries} {veins}"
        );
        let p = |r: Region, k: usize| region_median(&regions, r, |i| truth[i * 4 + k] as f64);
        assert!((p(Region::Background, 0) - 0.75).abs() < 0.03);
        assert!((p(Region::Background, 1) - 0.02).abs() < 0.004);
        assert!((p(Region::Ischemia, 0) - 0.30).abs() < 0.01);
        assert!(
            (p(Region::Artery, 0) - 0.97).abs() < 0.03
                && (0.055..0.085).contains(&p(Region::Artery, 1))
        );
        assert!(
            (0.5..0.65).contains(&p(Region::Vein, 0))
                && (0.065..0.095).contains(&p(Region::Vein, 1))
        );
        // The background field spans sO2 0.75 ± 0.08, vhb 0.02 ± 0.008, a_mie 18.9 ± 25 %,
        // b_mie 1.286 ± 0.15, and is nominal tissue at the disc's centre (150, 130).
        let field: Vec<[f64; 4]> = (0..PHANTOM_SIZE * PHANTOM_SIZE)
            .map(|i| background(i % PHANTOM_SIZE, i / PHANTOM_SIZE))
            .collect();
        let ranges = [(0.75, 0.08), (0.02, 0.008), (18.9, 4.725), (1.286, 0.15)];
        for (k, (centre, amplitude)) in ranges.into_iter().enumerate() {
            let (min, max) = field
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
                    (a.min(p[k]), b.max(p[k]))
                });
            assert!(
                min >= centre - amplitude && max <= centre + amplitude,
                "x{k}: [{min}, {max}]"
            );
            assert!(
                max - min > amplitude,
                "x{k} varies too little: [{min}, {max}]"
            );
        }
        let at_disc = background(150, 130);
        for (k, want) in [(1, 0.02), (2, 18.9), (3, 1.286)] {
            assert!(
                (at_disc[k] / want - 1.0).abs() < 0.02,
                "x{k} = {}",
                at_disc[k]
            );
        }
    }

    #[test]
    fn blood_content_dominates_the_band_ratio() {
        // ln(b560/b660) of the noisy cube by region: about −1.24 (background), −1.17 (disc),
        // −2.00 (arteries), −1.80 (veins). Arteries are the most oxygenated, yet look the
        // least: their blood volume darkens 560 nm more than oxygen brightens 660 nm.
        let ph = render_phantom(0);
        let r = |g: Region| {
            region_median(&ph.regions, g, |i| {
                log_ratio_560_660(&ph.cube[i * 8..(i + 1) * 8])
            })
        };
        assert!(
            (r(Region::Background) + 1.24).abs() < 0.05,
            "{}",
            r(Region::Background)
        );
        assert!(
            (r(Region::Ischemia) + 1.17).abs() < 0.05,
            "{}",
            r(Region::Ischemia)
        );
        // Partial volume at the vessels' edges puts their medians a little closer to the
        // background's.
        assert!(
            (r(Region::Artery) + 2.00).abs() < 0.15,
            "{}",
            r(Region::Artery)
        );
        assert!((r(Region::Vein) + 1.80).abs() < 0.12, "{}", r(Region::Vein));
    }

    #[test]
    fn the_ratio_baseline_is_a_least_squares_line() {
        // On data that lie on a line it recovers the line.
        let mut data = Task::MsiOximetry.simulate(500, 3, 0);
        for (x, b) in data.x.chunks_exact_mut(4).zip(data.y.chunks_exact(8)) {
            x[0] = (0.3 - 0.8 * log_ratio_560_660(b)) as f32;
        }
        let line = RatioBaseline::fit(&data);
        assert!(
            (line.alpha - 0.3).abs() < 1e-5 && (line.beta + 0.8).abs() < 1e-5,
            "{line:?}"
        );
        // Residuals of a least-squares fit are orthogonal to the regressor and sum to 0.
        let data = Task::MsiOximetry.simulate(20_000, 4, 0);
        let fit = RatioBaseline::fit(&data);
        let (mut sum, mut dot) = (0.0, 0.0);
        for (x, b) in data.x.chunks_exact(4).zip(data.y.chunks_exact(8)) {
            let e = x[0] as f64 - fit.predict(b);
            sum += e;
            dot += e * log_ratio_560_660(b);
        }
        assert!(
            sum.abs() < 1e-6 * 20_000.0 && dot.abs() < 1e-6 * 20_000.0,
            "{sum} {dot}"
        );
        // More oxygen, lower ratio: β < 0.
        assert!(fit.beta < 0.0, "{fit:?}");
    }

    #[test]
    fn the_ratio_baseline_reads_nominal_tissue_and_fails_on_the_vessels() {
        let ph = render_phantom(0);
        let error = |fit: &RatioBaseline, g: Region| {
            let map = fit.map(&ph.cube);
            assert_eq!(map.len(), PHANTOM_SIZE * PHANTOM_SIZE);
            region_median(&ph.regions, g, |i| map[i] as f64 - ph.truth[i * 4] as f64)
        };
        // Calibrated on nominal tissue: right on the background and the disc; the vessels'
        // blood lowers the ratio as oxygen would, and they read far above sO2 = 1.
        let nominal = RatioBaseline::nominal_tissue(100_000, 5);
        assert!(error(&nominal, Region::Background).abs() < 0.05);
        assert!(error(&nominal, Region::Ischemia).abs() < 0.05);
        assert!(error(&nominal, Region::Artery) > 1.5 && error(&nominal, Region::Vein) > 1.5);
        // Fitted over the prior predictive, where blood volume and scattering vary, the ratio
        // says little about sO2: a flat line, wrong by 0.3 on the background.
        let prior = RatioBaseline::fit(&Task::MsiOximetry.simulate(100_000, 5, 0));
        assert!(
            prior.beta.abs() < 0.1 * nominal.beta.abs(),
            "{prior:?} vs {nominal:?}"
        );
        assert!(error(&prior, Region::Background) < -0.2);
    }
}
