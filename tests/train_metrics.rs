//! Every posterior-quality metric passes the exact posterior and fails a deliberately
//! widened, shifted or re-weighted one (the negative controls of issue 4 / quality.md §5).

use innfer::tasks::arm_forward;
use innfer::train::eval::{
    ARM_MODES, C2stOptions, ExactPosterior, Posterior, arm_missing_modes, arm_mode, arm_reference,
    c2st, gmm8_mode_masses, kinematics_errors, kl_gap, ks_uniform_pvalue, median_calibration_error,
    mmd2_unbiased, sbc_ranks,
};
use innfer::train::{Labelling, Task};

const GMM: Task = Task::Gmm8(Labelling::Some);

/// Median calibration error bar at N = 1000 SBC draws: the coverage of one central interval
/// scatters by ±0.016 at q = ½, so the exact posterior scores up to ≈ 0.02 on some of 10
/// dimensions; a 1.5× widened one scores ≈ 0.15.
const CALIBRATION_BAR: f64 = 0.03;

fn sbc_passes(p: &dyn Posterior, task: Task) -> (bool, bool, Vec<f64>, Vec<f64>) {
    let ranks = sbc_ranks(p, task, 1000, 127, 3);
    let ks: Vec<f64> = ranks.iter().map(|u| ks_uniform_pvalue(u.clone())).collect();
    let calib = median_calibration_error(&ranks);
    let alpha = 0.01 / ks.len() as f64;
    (
        ks.iter().all(|&p| p > alpha),
        calib.iter().all(|&c| c < CALIBRATION_BAR),
        ks,
        calib,
    )
}

#[test]
fn kl_gap_passes_the_exact_posterior_and_fails_widened_and_shifted_ones() {
    for task in [GMM, Task::GaussianLinear] {
        let exact = kl_gap(&ExactPosterior::new(task), task, 20_000, 1).unwrap();
        assert!(exact.abs() < 0.02, "{task:?}: exact posterior gap {exact}");
        for bad in [
            ExactPosterior::widened(task, 1.5),
            ExactPosterior::widened(task, 0.8),
            ExactPosterior::shifted(task, 0.1),
        ] {
            let gap = kl_gap(&bad, task, 20_000, 1).unwrap();
            assert!(gap > 0.02, "{task:?}: {bad:?} passes with gap {gap}");
        }
    }
}

#[test]
fn mmd_separates_shifted_and_widened_samples() {
    let y = [1.0f32, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
    let a = ExactPosterior::new(GMM).sample(&y, 1000, 1);
    let b = ExactPosterior::new(GMM).sample(&y, 1000, 2);
    let same = mmd2_unbiased(&a, &b, 2);
    // Unbiased: zero in expectation, Monte-Carlo scatter ≈ ±0.0015 at n = 1000.
    assert!(same.abs() < 0.005, "same distribution: {same}");
    for bad in [
        ExactPosterior::widened(GMM, 1.5),
        ExactPosterior::shifted(GMM, 0.2),
    ] {
        let c = bad.sample(&y, 1000, 3);
        let d = mmd2_unbiased(&a, &c, 2);
        // Above the kinematics Err_post bar (0.005), far outside the ±0.0015 scatter.
        assert!(d > 0.005, "{bad:?}: MMD² {d}");
    }
}

#[test]
fn mode_masses_and_off_mode_mass_fail_reweighted_and_widened_mixtures() {
    let check = |p: &ExactPosterior| {
        let m = gmm8_mode_masses(p, Labelling::Some, 20_000, 5);
        let worst = m.iter().map(|m| m.worst_error()).fold(0.0, f64::max);
        let off = m.iter().map(|m| m.off_mode).fold(0.0, f64::max);
        (worst, off)
    };
    let (worst, off) = check(&ExactPosterior::new(GMM));
    assert!(worst <= 0.02 && off < 0.01, "exact: {worst} {off}");
    let tilted = ExactPosterior {
        tilt: 0.05,
        ..ExactPosterior::new(GMM)
    };
    let (worst, _) = check(&tilted);
    assert!(worst > 0.02, "re-weighted modes pass: {worst}");
    let (_, off) = check(&ExactPosterior::widened(GMM, 1.5));
    assert!(off > 0.01, "widened modes pass the off-mode check: {off}");
    let (_, off) = check(&ExactPosterior::shifted(GMM, 0.5));
    assert!(off > 0.01, "shifted modes pass the off-mode check: {off}");
}

#[test]
fn sbc_and_calibration_error_fail_widened_narrowed_and_shifted_posteriors() {
    for task in [GMM, Task::GaussianLinear] {
        let (ks_ok, calib_ok, ks, calib) = sbc_passes(&ExactPosterior::new(task), task);
        assert!(
            ks_ok && calib_ok,
            "{task:?} exact: KS {ks:?}, calibration {calib:?}"
        );
        for bad in [
            ExactPosterior::widened(task, 1.5),
            ExactPosterior::widened(task, 0.7),
            // A shift of 0.4 in x (2σ of a mixture mode, 1.8σ of the Gaussian-linear
            // posterior): SBC alone flags 0.15 already, the calibration error (a median over
            // credible levels) needs a clearer one.
            ExactPosterior::shifted(task, 0.4),
        ] {
            let (ks_ok, calib_ok, ks, calib) = sbc_passes(&bad, task);
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
    let reference = ExactPosterior::new(task).sample(&y, 1000, 1);
    let same = ExactPosterior::new(task).sample(&y, 1000, 2);
    let acc = c2st(&reference, &same, 10, 1, &opt);
    assert!(acc < 0.55, "exact vs exact: {acc}");
    for bad in [
        ExactPosterior::widened(task, 1.5),
        ExactPosterior::shifted(task, 0.15),
    ] {
        let other = bad.sample(&y, 1000, 3);
        let acc = c2st(&reference, &other, 10, 1, &opt);
        assert!(acc > 0.55, "{bad:?}: C2ST {acc}");
    }
}

#[test]
fn the_arm_reference_lies_on_the_manifold_and_has_the_known_modes() {
    for y in [[1.5, 0.0], [1.936, 0.426], [1.09, 1.291]] {
        let r = arm_reference(y, 500, 1);
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
    // (1.5, 0) is the hard, multimodal point (quality.md §6): both elbow branches, and the
    // last joint's std well above the prior's 0.5.
    let r = arm_reference([1.5, 0.0], 1000, 2);
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
    let exact = ExactPosterior::new(task);
    let e = kinematics_errors(&exact, 4, 400, 1);
    eprintln!(
        "exact: Err_post {:?}, Err_resim {:?}",
        e.err_post, e.err_resim
    );
    assert!(
        e.mean_err_post() < 0.005,
        "exact Err_post {}",
        e.mean_err_post()
    );
    assert!(
        e.mean_err_resim() < 1e-9,
        "exact Err_resim {}",
        e.mean_err_resim()
    );
    let (missing, _, _) = arm_missing_modes(&exact, [1.5, 0.0], 4000, 0.01, 3);
    assert!(missing.is_empty(), "{missing:?}");
    for bad in [
        ExactPosterior::widened(task, 1.5),
        ExactPosterior::shifted(task, 0.15),
    ] {
        let e = kinematics_errors(&bad, 4, 400, 1);
        eprintln!(
            "{bad:?}: Err_post {}, Err_resim {}",
            e.mean_err_post(),
            e.mean_err_resim()
        );
        assert!(e.mean_err_post() > 0.005, "{bad:?} passes Err_post");
        assert!(e.mean_err_resim() > 0.005, "{bad:?} passes Err_resim");
    }
    let one_mode = ExactPosterior {
        one_mode: true,
        ..exact
    };
    let (missing, reference, got) = arm_missing_modes(&one_mode, [1.5, 0.0], 4000, 0.01, 3);
    assert!(
        !missing.is_empty(),
        "a single-mode posterior passes: {reference:?} vs {got:?}"
    );
}
