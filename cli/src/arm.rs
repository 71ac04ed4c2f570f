//! The second half of `innfer demo`: the inverse-kinematics arm of Kruse et al. (2019).
//!
//! The model (models/kinematics.safetensors, embedded; models/README.md gives the `innfer
//! train` command that made it) is a conditional INN for p(x | y): x = (x0, x1, x2, x3) with
//! prior σ = (0.25, 0.5, 0.5, 0.5), the arm starting at (0, x0) on a vertical rail with joint
//! angles φ1 = x1, φ2 = x1 + x2, φ3 = x1 + x2 + x3 and segment lengths (0.5, 0.5, 1.0); y is
//! the end point. Each target y* of the demo is the end point of a known arm x_true (see
//! `true_configuration`), the ground truth the figures and the summary mark. For each target
//! the demo samples the posterior, prints per-parameter mean and std next to those of the
//! exact posterior (`innfer::tasks::arm_reference`) and x_true, and the mean re-simulation
//! error ‖f(x) − y*‖ (`innfer::metrics::resimulation_error`); `armfig` draws the sampled arms
//! and the marginals.

use std::time::Instant;

use innfer::metrics::resimulation_error;
use innfer::rng::Rng;
use innfer::tasks::{ARM_LENGTHS, ARM_PRIOR_STD, arm_reference};
use innfer::{Model, Session};

use crate::armfig::ArmPanel;

/// The arm model, embedded.
pub const KINEMATICS: &[u8] = include_bytes!("../../models/kinematics.safetensors");

/// The targets y* of the demo: the INN paper's (1.5, 0) (the arm must bend to reach it), then
/// points up and down the reachable region.
pub const ARM_TARGETS: [[f32; 2]; 4] = [[1.5, 0.0], [1.8, 0.6], [1.5, -1.0], [0.9, 1.5]];

/// Draws of the exact posterior (for the summary and the figures), for the first target
/// (whose marginals are drawn) and for the others.
const REFERENCE_DRAWS: [usize; 2] = [10_000, 2_000];

/// Per-target result of the demo.
pub struct ArmSummary {
    pub target: [f32; 2],
    /// The arm that made the observation: f(truth) = target (`true_configuration`).
    pub truth: [f32; 4],
    /// `[n][4]` posterior samples of the model.
    pub samples: Vec<f32>,
    pub mean: [f32; 4],
    pub std: [f32; 4],
    /// `[draws][4]` draws of the exact posterior.
    pub reference: Vec<f32>,
    pub ref_mean: [f32; 4],
    pub ref_std: [f32; 4],
    /// Mean of ‖f(x) − y*‖ over the model's samples.
    pub resim: f64,
    pub seconds: f64,
}

impl ArmSummary {
    /// What the figures draw of this target.
    pub fn panel(&self) -> ArmPanel<'_> {
        ArmPanel {
            target: self.target,
            truth: self.truth,
            samples: &self.samples,
            reference: &self.reference,
            resim: self.resim,
        }
    }
}

/// Mean and standard deviation per column of `[rows][4]` data.
pub fn moments(x: &[f32]) -> ([f32; 4], [f32; 4]) {
    let mut s = [0.0f64; 4];
    let mut sq = [0.0f64; 4];
    let n = (x.len() / 4).max(1) as f64;
    for r in x.chunks_exact(4) {
        for j in 0..4 {
            s[j] += r[j] as f64;
            sq[j] += (r[j] as f64).powi(2);
        }
    }
    let mean = s.map(|v| (v / n) as f32);
    let std: [f32; 4] =
        std::array::from_fn(|j| ((sq[j] / n - (s[j] / n).powi(2)).max(0.0)).sqrt() as f32);
    (mean, std)
}

/// Log-density of the arm's prior N(0, diag σ²) at `x`, up to a constant.
fn prior_log_density(x: &[f64; 4]) -> f64 {
    -0.5 * x
        .iter()
        .zip(ARM_PRIOR_STD)
        .map(|(v, s)| (v / s).powi(2))
        .sum::<f64>()
}

/// The arms reaching `target` with inner angles (x1, x2): the end segment's angle φ3 has two
/// solutions (±acos), then x3 = φ3 − x1 − x2 (wrapped into (−π, π]) and the rail height x0
/// follow. None when the end segment cannot reach the target's abscissa.
fn arms_reaching(target: [f64; 2], x1: f64, x2: f64) -> Option<[[f64; 4]; 2]> {
    let [l0, l1, l2] = ARM_LENGTHS;
    let a2 = x1 + x2;
    let px = l0 * x1.cos() + l1 * a2.cos();
    let py = l0 * x1.sin() + l1 * a2.sin();
    let c = (target[0] - px) / l2;
    if c.abs() > 1.0 {
        return None;
    }
    let arm = |phi3: f64| {
        let x3 = (phi3 - a2 + std::f64::consts::PI).rem_euclid(std::f64::consts::TAU)
            - std::f64::consts::PI;
        [target[1] - py - l2 * phi3.sin(), x1, x2, x3]
    };
    Some([arm(c.acos()), arm(-c.acos())])
}

/// The ground truth of a demo target: the arm that reaches `target` with the highest prior
/// density, i.e. the most probable arm configuration that could have produced the
/// observation y* = f(x_true) (the prior's maximum on the solution manifold; the posterior
/// density itself has no maximum there, it diverges where the end segment is horizontal).
/// Found by a grid search over the inner angles (x1, x2) within 4σ, refined three times; at
/// y* = (1.5, 0) two mirror-image arms tie and the elbow-up one (x1 > 0) is taken.
pub fn true_configuration(target: &[f32; 2]) -> [f32; 4] {
    let t = [target[0] as f64, target[1] as f64];
    let mut best = ([0.0f64; 4], f64::NEG_INFINITY);
    let mut centre = (0.0f64, 0.0f64);
    let mut half = 4.0 * ARM_PRIOR_STD[1];
    let mut steps = 200i32;
    for _stage in 0..4 {
        let h = half / steps as f64;
        for i in -steps..=steps {
            for j in -steps..=steps {
                let (x1, x2) = (centre.0 + i as f64 * h, centre.1 + j as f64 * h);
                for arm in arms_reaching(t, x1, x2).into_iter().flatten() {
                    let lp = prior_log_density(&arm);
                    if lp > best.1 {
                        best = (arm, lp);
                    }
                }
            }
        }
        centre = (best.0[1], best.0[2]);
        half = 4.0 * h;
        steps = 40;
    }
    let mut x = best.0;
    if t[1] == 0.0 && x[1] < 0.0 {
        // The mirror image x → −x reaches the same point on the axis with the same density.
        x = x.map(|v| -v);
    }
    x.map(|v| v as f32)
}

/// Samples `n` posterior draws of the arm model for each of `ARM_TARGETS`, and the exact
/// posterior for comparison.
pub fn sample_targets(model: &Model, n: usize, seed: u64) -> Result<Vec<ArmSummary>, String> {
    let mut session = Session::new(model, 1024).map_err(|e| format!("demo arm model: {e}"))?;
    let mut out = Vec::new();
    for (t, target) in ARM_TARGETS.iter().enumerate() {
        let mut x = vec![0.0f32; 4 * n];
        session.reseed(seed, 100 + t as u64);
        let start = Instant::now();
        session
            .sample(target, n, &mut x)
            .map_err(|e| format!("demo arm sampling: {e}"))?;
        let seconds = start.elapsed().as_secs_f64();
        let (mean, std) = moments(&x);
        let resim = resimulation_error(&x, target).1;
        let draws = REFERENCE_DRAWS[(t > 0) as usize];
        let y = [target[0] as f64, target[1] as f64];
        let reference = arm_reference(y, draws, &mut Rng::new(seed, 200 + t as u64)).samples;
        let (ref_mean, ref_std) = moments(&reference);
        out.push(ArmSummary {
            target: *target,
            truth: true_configuration(target),
            samples: x,
            mean,
            std,
            reference,
            ref_mean,
            ref_std,
            resim,
            seconds,
        });
    }
    Ok(out)
}

/// `n` draws `[n][4]` of the arm's prior N(0, diag σ²).
pub fn prior_samples(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed, 300);
    (0..n)
        .flat_map(|_| ARM_PRIOR_STD.map(|s| (s * rng.normal()) as f32))
        .collect()
}

fn four(v: &[f32; 4], signed: bool) -> String {
    let parts: Vec<String> = v
        .iter()
        .map(|x| {
            if signed {
                format!("{x:+.3}")
            } else {
                format!("{x:.3}")
            }
        })
        .collect();
    format!("({})", parts.join(", "))
}

/// Prints the arm half of the demo's summary.
pub fn print_summary(model: &Model, summaries: &[ArmSummary], n: usize) {
    println!(
        "task 2: the inverse-kinematics arm of Kruse et al. (2019) ({} parameters in the model):",
        model.parameter_count()
    );
    println!(
        "      x = (rail height x0, joint angles x1, x2, x3), prior std (0.25, 0.5, 0.5, 0.5);"
    );
    println!(
        "      y = the end point of the arm (segments 0.5, 0.5, 1.0); {n} samples per target y*;"
    );
    println!(
        "      'exact' is the true posterior, by importance sampling on the manifold f(x) = y*;"
    );
    println!(
        "      each y* is the end point of a known arm x_true (the most probable one under the prior)."
    );
    for s in summaries {
        println!(
            "y* = ({:.3}, {:.3}): x mean {}, std {}; re-simulation error mean ‖f(x) − y*‖ = {:.4}; {:.0} samples/s",
            s.target[0],
            s.target[1],
            four(&s.mean, true),
            four(&s.std, false),
            s.resim,
            n as f64 / s.seconds
        );
        println!(
            "      exact posterior: mean {}, std {}",
            four(&s.ref_mean, true),
            four(&s.ref_std, false)
        );
        println!("      true value x_true {}", four(&s.truth, true));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use innfer::tasks::arm_forward;

    /// Each target's x_true reaches it, is the elbow-up arm at (1.5, 0), and no draw of the
    /// exact posterior is more probable under the prior.
    #[test]
    fn true_configurations_reach_their_targets_with_the_highest_prior_density() {
        for target in ARM_TARGETS {
            let x = true_configuration(&target);
            let end = arm_forward(&x.map(|v| v as f64));
            let miss = (end[0] - target[0] as f64).hypot(end[1] - target[1] as f64);
            assert!(miss < 1e-6, "{target:?}: x_true {x:?} ends at {end:?}");
            let lp = prior_log_density(&x.map(|v| v as f64));
            let y = [target[0] as f64, target[1] as f64];
            let reference = arm_reference(y, 2000, &mut Rng::new(1, 2));
            for r in reference.samples.chunks_exact(4) {
                let r = [r[0] as f64, r[1] as f64, r[2] as f64, r[3] as f64];
                assert!(
                    prior_log_density(&r) <= lp + 1e-6,
                    "{target:?}: {r:?} beats {x:?}"
                );
            }
        }
        let x = true_configuration(&ARM_TARGETS[0]);
        assert!(x[1] > 0.5 && x[3] < -1.0, "{x:?}");
    }

    #[test]
    fn moments_of_known_rows() {
        let (m, s) = moments(&[1.0, 0.0, 2.0, -1.0, 3.0, 0.0, 2.0, 1.0]);
        assert_eq!(m, [2.0, 0.0, 2.0, 0.0]);
        assert_eq!(s, [1.0, 0.0, 0.0, 1.0]);
    }
}
