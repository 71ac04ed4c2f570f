//! Every posterior-quality metric of `innfer::metrics` passes the exact posterior and fails a
//! deliberately widened, shifted or re-weighted one (the negative controls), run through the
//! same protocol `innfer eval` runs.

use innfer::metrics::stats::mean;
use innfer::metrics::{
    C2stOptions, PosteriorSampler, arm_modes, c2st, draw, gmm8_mode_masses, held_out,
    mmd2_unbiased, observation_checks, sbc_ranks,
};
use innfer::rng::Rng;
use innfer::tasks::{
    ARM_MODES, ExactPosterior, Labelling, Task, arm_forward, arm_mode, arm_reference,
};

const GMM: Task = Task::Gmm8(Labelling::Some);

/// Median calibration error bar at N = 1000 SBC draws: the coverage of one central interval
/// scatters by ±0.016 at q = ½, so the exact posterior scores up to ≈ 0.02 on some of 10
/// dimensions; a 1.5× widened one scores ≈ 0.15.
const CALIBRATION_BAR: f64 = 0.03;

fn sbc_passes(p: &mut dyn PosteriorSampler, task: Task) -> (bool, bool, Vec<f64>, Vec<f64>) {
    let ranks = sbc_ranks(p, task, 1000, 127, 3).unwrap();
    let calib = ranks.median_calibration_errors();
    (
        ranks.ks_passes(),
        calib.iter().all(|&c| c < CALIBRATION_BAR),
        ranks.ks_pvalues(),
        calib,
    )
}

#[test]
fn kl_gap_passes_the_exact_posterior_and_fails_widened_and_shifted_ones() {
    for task in [GMM, Task::GaussianLinear] {
        let exact = held_out(&mut ExactPosterior::new(task), task, 20_000, 1)
            .unwrap()
            .unwrap();
        // Paired with itself the gap is exactly zero; NLL − H(x|y) only up to sampling noise.
        assert_eq!(exact.kl_gap(), Some(0.0), "{task:?}");
        let unpaired = exact.kl_unpaired().unwrap();
        assert!(unpaired.abs() < 0.02, "{task:?}: exact NLL − H {unpaired}");
        for mut bad in [
            ExactPosterior::widened(task, 1.5),
            ExactPosterior::widened(task, 0.8),
            ExactPosterior::shifted(task, 0.1),
        ] {
            let h = held_out(&mut bad, task, 20_000, 1).unwrap().unwrap();
            let (gap, unpaired) = (h.kl_gap().unwrap(), h.kl_unpaired().unwrap());
            assert!(gap > 0.02, "{task:?}: {bad:?} passes with gap {gap}");
            assert!(unpaired > 0.02, "{task:?}: {bad:?} NLL − H {unpaired}");
        }
    }
}

#[test]
fn mmd_separates_shifted_and_widened_samples() {
    let y = [1.0f32, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
    let a = draw(&mut ExactPosterior::new(GMM), &y, 1000, 1, 0).unwrap();
    let b = draw(&mut ExactPosterior::new(GMM), &y, 1000, 2, 0).unwrap();
    let same = mmd2_unbiased(&a, &b, 2);
    // Unbiased: zero in expectation, Monte-Carlo scatter ≈ ±0.0015 at n = 1000.
    assert!(same.abs() < 0.005, "same distribution: {same}");
    for mut bad in [
        ExactPosterior::widened(GMM, 1.5),
        ExactPosterior::shifted(GMM, 0.2),
    ] {
        let c = draw(&mut bad, &y, 1000, 3, 0).unwrap();
        let d = mmd2_unbiased(&a, &c, 2);
        // Above the kinematics Err_post bar (0.005), far outside the ±0.0015 scatter.
        assert!(d > 0.005, "{bad:?}: MMD² {d}");
    }
}

#[test]
fn mode_masses_and_off_mode_mass_fail_reweighted_and_widened_mixtures() {
    let check = |mut p: ExactPosterior| {
        let m = gmm8_mode_masses(&mut p, Labelling::Some, 20_000, 5).unwrap();
        let worst = m.iter().map(|m| m.worst_error()).fold(0.0, f64::max);
        let off = m.iter().map(|m| m.off_mode).fold(0.0, f64::max);
        (worst, off)
    };
    let (worst, off) = check(ExactPosterior::new(GMM));
    assert!(worst <= 0.02 && off < 0.01, "exact: {worst} {off}");
    let tilted = ExactPosterior {
        tilt: 0.05,
        ..ExactPosterior::new(GMM)
    };
    let (worst, _) = check(tilted);
    assert!(worst > 0.02, "re-weighted modes pass: {worst}");
    let (_, off) = check(ExactPosterior::widened(GMM, 1.5));
    assert!(off > 0.01, "widened modes pass the off-mode check: {off}");
    let (_, off) = check(ExactPosterior::shifted(GMM, 0.5));
    assert!(off > 0.01, "shifted modes pass the off-mode check: {off}");
}

#[test]
fn sbc_and_calibration_error_fail_widened_narrowed_and_shifted_posteriors() {
    for task in [GMM, Task::GaussianLinear] {
        let (ks_ok, calib_ok, ks, calib) = sbc_passes(&mut ExactPosterior::new(task), task);
        assert!(
            ks_ok && calib_ok,
            "{task:?} exact: KS {ks:?}, calibration {calib:?}"
        );
        for mut bad in [
            ExactPosterior::widened(task, 1.5),
            ExactPosterior::widened(task, 0.7),
            // A shift of 0.4 in x (2σ of a mixture mode, 1.8σ of the Gaussian-linear
            // posterior): SBC alone flags 0.15 already, the calibration error (a median over
            // credible levels) needs a clearer one.
            ExactPosterior::shifted(task, 0.4),
        ] {
            let (ks_ok, calib_ok, ks, calib) = sbc_passes(&mut bad, task);
            assert!(!ks_ok, "{task:?} {bad:?} passes SBC: {ks:?}");
            assert!(!calib_ok, "{task:?} {bad:?} passes calibration: {calib:?}");
        }
    }
}

#[test]
fn c2st_is_chance_for_the_exact_posterior_and_high_for_wrong_ones() {
    let task = Task::GaussianLinear;
    let y = task.simulate(1, 3, 0).y;
    let opt = C2stOptions {
        hidden_factor: 2,
        max_epochs: 20,
        ..C2stOptions::default()
    };
    let reference = draw(&mut ExactPosterior::new(task), &y, 1000, 1, 0).unwrap();
    let same = draw(&mut ExactPosterior::new(task), &y, 1000, 2, 0).unwrap();
    let acc = c2st(&reference, &same, 10, 1, &opt);
    assert!(acc < 0.55, "exact vs exact: {acc}");
    for mut bad in [
        ExactPosterior::widened(task, 1.5),
        ExactPosterior::shifted(task, 0.15),
    ] {
        let other = draw(&mut bad, &y, 1000, 3, 0).unwrap();
        let acc = c2st(&reference, &other, 10, 1, &opt);
        assert!(acc > 0.55, "{bad:?}: C2ST {acc}");
    }
}

#[test]
fn the_arm_reference_lies_on_the_manifold_and_has_the_known_modes() {
    for y in [[1.5, 0.0], [1.936, 0.426], [1.09, 1.291]] {
        let r = arm_reference(y, 500, &mut Rng::new(1, 0));
        assert!(r.ess > 20.0 * 500.0, "ESS {}", r.ess);
        for (x, &m) in r.samples.chunks_exact(4).zip(&r.modes) {
            let xd: Vec<f64> = x.iter().map(|&v| v as f64).collect();
            let e = arm_forward(&xd);
            // f32 storage of x: re-simulation within ~1e-6.
            assert!((e[0] - y[0]).abs() < 1e-5 && (e[1] - y[1]).abs() < 1e-5);
            assert_eq!(arm_mode(x, y), m);
        }
        let total: f64 = r.mode_mass.iter().sum();
        assert!((total - 1.0).abs() < 1e-9);
    }
    // (1.5, 0) is the hard, multimodal point: both elbow branches, and the last joint's std
    // well above the prior's 0.5.
    let r = arm_reference([1.5, 0.0], 1000, &mut Rng::new(2, 0));
    let big = r.mode_mass.iter().filter(|&&m| m > 0.01).count();
    assert!(big >= 2, "modes {:?}", r.mode_mass);
    let x4: Vec<f64> = r.samples.chunks_exact(4).map(|x| x[3] as f64).collect();
    let mean = x4.iter().sum::<f64>() / x4.len() as f64;
    let sd = (x4.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / x4.len() as f64).sqrt();
    assert!(sd > 0.9, "x4 std {sd}");
    assert_eq!(r.mode_mass.len(), ARM_MODES);
}

#[test]
fn err_post_err_resim_and_missing_modes_fail_perturbed_arm_posteriors() {
    let task = Task::Kinematics;
    // Err_post (mean MMD²) and Err_resim (mean squared re-simulation error) over 4
    // observations with 400 samples each.
    let errors = |p: &mut ExactPosterior| {
        let c = observation_checks(p, task, 4, 400, 1, &mut |_| {}).unwrap();
        (mean(&c.mmd), mean(&c.resim.unwrap().0))
    };
    let mut exact = ExactPosterior::new(task);
    let (post, resim) = errors(&mut exact);
    eprintln!("exact: Err_post {post}, Err_resim {resim}");
    assert!(post < 0.005, "exact Err_post {post}");
    assert!(resim < 1e-9, "exact Err_resim {resim}");
    let modes = arm_modes(&mut exact, [1.5, 0.0], 4000, 3).unwrap();
    assert!(modes.missing(0.01).is_empty(), "{modes:?}");
    for mut bad in [
        ExactPosterior::widened(task, 1.5),
        ExactPosterior::shifted(task, 0.15),
    ] {
        let (post, resim) = errors(&mut bad);
        eprintln!("{bad:?}: Err_post {post}, Err_resim {resim}");
        assert!(post > 0.005, "{bad:?} passes Err_post");
        assert!(resim > 0.005, "{bad:?} passes Err_resim");
    }
    let mut one_mode = ExactPosterior {
        one_mode: true,
        ..exact
    };
    let modes = arm_modes(&mut one_mode, [1.5, 0.0], 4000, 3).unwrap();
    assert!(
        !modes.missing(0.01).is_empty(),
        "a single-mode posterior passes: {modes:?}"
    );
}
