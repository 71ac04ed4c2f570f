//! The exact posteriors p(x | y) of the built-in tasks: to sample and, where the density has
//! a closed form, to evaluate; and deliberately wrong variants of them (widened, shifted,
//! re-weighted, one mode only), the negative controls every metric must fail
//! (tests/train_metrics.rs).
//!
//! The mixture and the Gaussian-linear posteriors are sampled directly. The arm's posterior
//! lives on the curve f(x) = y* and is sampled by importance resampling on that manifold
//! ([`arm_reference`]); the msi tasks' by adaptive importance sampling
//! ([`msi_reference`](super::msi_reference)).

use crate::prelude::*;

use super::{ARM_LENGTHS, ARM_PRIOR_STD, GMM8_CENTRES, GMM8_STD, Labelling, Task, msi_reference};
use crate::rng::Rng;

/// The exact posterior of a built-in task, optionally perturbed (the negative controls).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExactPosterior {
    pub task: Task,
    /// Multiplies the posterior's spread: the component std (mixture, Gaussian linear) or the
    /// spread around the sample mean (kinematics, msi).
    pub scale: f64,
    /// Added to every coordinate of every sample.
    pub shift: f64,
    /// Mixture: the first mode of each multi-mode label gets `1/k + tilt` of the mass.
    pub tilt: f64,
    /// Kinematics: keep only the most massive mode of the reference posterior.
    pub one_mode: bool,
}

impl ExactPosterior {
    pub fn new(task: Task) -> ExactPosterior {
        ExactPosterior {
            task,
            scale: 1.0,
            shift: 0.0,
            tilt: 0.0,
            one_mode: false,
        }
    }

    pub fn widened(task: Task, scale: f64) -> ExactPosterior {
        ExactPosterior {
            scale,
            ..ExactPosterior::new(task)
        }
    }

    pub fn shifted(task: Task, shift: f64) -> ExactPosterior {
        ExactPosterior {
            shift,
            ..ExactPosterior::new(task)
        }
    }

    /// Whether this is the task's true posterior (no perturbation).
    pub fn is_exact(&self) -> bool {
        *self == ExactPosterior::new(self.task)
    }

    /// (mode, weight) of the label's mixture components.
    fn gmm8_weights(&self, l: Labelling, label: usize) -> Vec<(usize, f64)> {
        let modes = l.modes_of(label);
        let k = modes.len() as f64;
        if modes.len() == 1 {
            return vec![(modes[0], 1.0)];
        }
        let first = 1.0 / k + self.tilt;
        let rest = (1.0 - first) / (k - 1.0);
        modes
            .iter()
            .enumerate()
            .map(|(i, &m)| (m, if i == 0 { first } else { rest }))
            .collect()
    }

    /// log q(x | y) in nats (raw units), where the density has a closed form (mixture,
    /// Gaussian linear); `None` for the arm and the msi tasks.
    pub fn log_density(&self, x: &[f64], y: &[f64]) -> Option<f64> {
        match self.task {
            Task::Gmm8(l) => {
                let label = argmax(y);
                let sd = GMM8_STD * self.scale;
                let var = sd * sd;
                let norm = -(2.0 * core::f64::consts::PI * var).ln();
                let p: f64 = self
                    .gmm8_weights(l, label)
                    .iter()
                    .map(|&(m, w)| {
                        let (cx, cy) = GMM8_CENTRES[m];
                        let d2 =
                            (x[0] - cx - self.shift).powi(2) + (x[1] - cy - self.shift).powi(2);
                        w * (norm - 0.5 * d2 / var).exp()
                    })
                    .sum();
                Some(p.ln())
            }
            Task::GaussianLinear => {
                let var = 0.05 * self.scale * self.scale;
                let q: f64 = x
                    .iter()
                    .zip(y)
                    .map(|(&t, &o)| (t - o / 2.0 - self.shift).powi(2))
                    .sum();
                Some(-5.0 * (2.0 * core::f64::consts::PI * var).ln() - 0.5 * q / var)
            }
            Task::Kinematics | Task::MsiOximetry | Task::MsiOximetryTwoLayer => None,
        }
    }

    /// −log q(x | y) of each row pair (`x` is `rows × x_dim`, `y` `rows × y_dim`), or `None`
    /// where there is no closed form.
    pub fn neg_log_density_rows(&self, x: &[f32], y: &[f32]) -> Option<Vec<f64>> {
        let (xd, yd) = (self.task.x_dim(), self.task.y_dim());
        x.chunks_exact(xd)
            .zip(y.chunks_exact(yd))
            .map(|(x, y)| {
                let x: Vec<f64> = x.iter().map(|&v| v as f64).collect();
                let y: Vec<f64> = y.iter().map(|&v| v as f64).collect();
                self.log_density(&x, &y).map(|l| -l)
            })
            .collect()
    }

    /// `n` draws for the observation `y` (raw units) from `rng`, `n × x_dim` row-major.
    pub fn draw(&self, y: &[f32], n: usize, rng: &mut Rng) -> Vec<f32> {
        let mut out = Vec::with_capacity(n * self.task.x_dim());
        match self.task {
            Task::Gmm8(l) => {
                let yd: Vec<f64> = y.iter().map(|&v| v as f64).collect();
                let weights = self.gmm8_weights(l, argmax(&yd));
                let sd = GMM8_STD * self.scale;
                for _ in 0..n {
                    // Equal weights: one uniform index.
                    let mode = if self.tilt == 0.0 {
                        weights[rng.below(weights.len())].0
                    } else {
                        pick(&weights, rng.uniform())
                    };
                    let (cx, cy) = GMM8_CENTRES[mode];
                    out.push((cx + sd * rng.normal() + self.shift) as f32);
                    out.push((cy + sd * rng.normal() + self.shift) as f32);
                }
            }
            // θ | y ~ N(y/2, 0.05·I).
            Task::GaussianLinear => {
                let sd = 0.05f64.sqrt() * self.scale;
                for _ in 0..n {
                    for &o in y {
                        out.push((o as f64 / 2.0 + self.shift + sd * rng.normal()) as f32);
                    }
                }
            }
            Task::Kinematics => {
                let r = arm_reference([y[0] as f64, y[1] as f64], n, rng);
                if self.is_exact() {
                    return r.samples;
                }
                let keep = self.one_mode.then(|| {
                    (0..ARM_MODES)
                        .max_by(|&a, &b| r.mode_mass[a].total_cmp(&r.mode_mass[b]))
                        .unwrap_or(0)
                });
                let rows: Vec<&[f32]> = r
                    .samples
                    .chunks_exact(4)
                    .zip(&r.modes)
                    .filter(|(_, m)| keep.is_none_or(|k| **m == k))
                    .map(|(s, _)| s)
                    .collect();
                out = self.spread_and_shift(&rows, n);
            }
            Task::MsiOximetry | Task::MsiOximetryTwoLayer => {
                let r = msi_reference(self.task, y, n, rng);
                if self.is_exact() {
                    return r.samples;
                }
                let rows: Vec<&[f32]> = r.samples.chunks_exact(self.task.x_dim()).collect();
                out = self.spread_and_shift(&rows, n);
            }
        }
        out
    }

    /// `n` rows cycling through `rows`, spread around their mean by `scale` and moved by
    /// `shift`.
    fn spread_and_shift(&self, rows: &[&[f32]], n: usize) -> Vec<f32> {
        let dim = self.task.x_dim();
        let mut mean = vec![0.0f64; dim];
        for s in rows {
            for (m, &v) in mean.iter_mut().zip(s.iter()) {
                *m += v as f64 / rows.len() as f64;
            }
        }
        let mut out = Vec::with_capacity(n * dim);
        for i in 0..n {
            let s = rows[i % rows.len()];
            for c in 0..dim {
                out.push((mean[c] + self.scale * (s[c] as f64 - mean[c]) + self.shift) as f32);
            }
        }
        out
    }
}

/// The entry of `weights` (summing to 1) in whose share of [0, 1) the uniform `u` falls.
fn pick(weights: &[(usize, f64)], mut u: f64) -> usize {
    for &(m, w) in weights {
        if u < w {
            return m;
        }
        u -= w;
    }
    weights[weights.len() - 1].0
}

/// The index of the largest entry (a one-hot label), 0 for none.
pub(crate) fn argmax(v: &[f64]) -> usize {
    v.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}

// ------------------------------------------------------------------------------------------
// The arm

/// Modes of the arm posterior: the elbow branch (±) times the 2πk shift of the last absolute
/// angle, k ∈ {−2, …, 2}; mode `b·5 + k + 2` for branch b ∈ {0 (+), 1 (−)}.
pub const ARM_MODES: usize = 10;

/// Proposals of [`arm_reference`]'s first round, and the most it draws.
const ARM_PROPOSALS: (usize, usize) = (100_000, 6_400_000);

/// Candidates this far (in log-weight) below the heaviest one so far are dropped: with a
/// weight below e⁻³⁰ ≈ 10⁻¹³ of the largest, one would be drawn once in 10¹³ draws.
const ARM_NEGLIGIBLE_LOG_WEIGHT: f64 = 30.0;

/// Draws from the exact posterior p(x | y*) of the arm.
#[derive(Clone, Debug)]
pub struct ArmReference {
    /// `n × 4`; NaN rows if no proposal reaches y*.
    pub samples: Vec<f32>,
    /// The mode of each draw.
    pub modes: Vec<usize>,
    /// The posterior mass of each mode (from the importance weights).
    pub mode_mass: [f64; ARM_MODES],
    /// Effective sample size of the importance weights.
    pub ess: f64,
}

/// The arms with inner angles (x1, x2) that reach y*: what the other two coordinates of each
/// solution (elbow branch ±, 2πk shift of the last absolute angle φ3) need.
struct Reach {
    a2: f64,
    py: f64,
    /// acos(c), c the cosine of φ3 that reaches y*'s abscissa.
    ac: f64,
    /// sin(acos c) = √(1 − c²): |sin φ3| on every branch and shift.
    sin_ac: f64,
}

impl Reach {
    /// `None` when the end segment cannot reach y*'s abscissa.
    fn new(y: [f64; 2], x1: f64, x2: f64) -> Option<Reach> {
        let [l0, l1, l2] = ARM_LENGTHS;
        let a2 = x1 + x2;
        let px = l0 * x1.cos() + l1 * a2.cos();
        let py = l0 * x1.sin() + l1 * a2.sin();
        let c = (y[0] - px) / l2;
        (c.abs() < 1.0).then(|| Reach {
            a2,
            py,
            ac: c.acos(),
            sin_ac: (1.0 - c * c).sqrt(),
        })
    }

    /// The rail height x0 on the branch with sin φ3 = `sign`·√(1 − c²).
    fn x0(&self, y: [f64; 2], sign: f64) -> f64 {
        y[1] - self.py - ARM_LENGTHS[2] * sign * self.sin_ac
    }

    /// The last joint angle x3 on branch `sign` and shift `k`.
    fn x3(&self, sign: f64, k: i32) -> f64 {
        sign * self.ac + core::f64::consts::TAU * k as f64 - self.a2
    }

    /// ln of the manifold's volume factor l3 |sin φ3|.
    fn ln_volume(&self) -> f64 {
        (ARM_LENGTHS[2] * self.sin_ac + 1e-300).ln()
    }
}

/// Elbow branch (sign of sin φ3) and 2πk shift of arm mode `m` (`b·5 + k + 2`).
fn branch_and_shift(m: usize) -> (f64, i32) {
    (if m < 5 { 1.0 } else { -1.0 }, (m % 5) as i32 - 2)
}

/// `n` draws from the exact manifold posterior of the arm at `y`: (x1, x2) (the two inner
/// angles) from the prior; then for each elbow branch and 2πk shift the last angle x3 and the
/// rail height x0 that reach y*, weighted by p(x0) p(x3) / (l3 |sin φ3|) (the prior on the
/// solved coordinates times the manifold's volume factor); then systematic resampling and a
/// shuffle (so that any prefix is a fair sample). Rounds of proposals are added, each as many
/// as all before, until the weights' effective sample size is at least 20 n (so that few
/// draws repeat) or 6.4 million proposals are spent.
pub fn arm_reference(y: [f64; 2], n: usize, rng: &mut Rng) -> ArmReference {
    let s = ARM_PRIOR_STD;
    // Millions of candidates are kept: each as its proposal's index, its mode and its
    // log-weight; the coordinates of the few drawn are solved again at the end.
    let mut inner: Vec<[f64; 2]> = Vec::new();
    let (mut proposal, mut mode, mut lw) = (Vec::<u32>::new(), Vec::<u8>::new(), Vec::new());
    let mut top = f64::NEG_INFINITY;
    let (mut proposals, mut round) = (0, ARM_PROPOSALS.0);
    let ess = loop {
        for _ in 0..round {
            let x1 = s[1] * rng.normal();
            let x2 = s[2] * rng.normal();
            let Some(reach) = Reach::new(y, x1, x2) else {
                continue;
            };
            let ln_volume = reach.ln_volume();
            for m in 0..ARM_MODES {
                let (sign, k) = branch_and_shift(m);
                let (x0, x3) = (reach.x0(y, sign), reach.x3(sign, k));
                let w = -0.5 * (x0 / s[0]).powi(2) - ln_volume - 0.5 * (x3 / s[3]).powi(2);
                if w < top - ARM_NEGLIGIBLE_LOG_WEIGHT {
                    continue;
                }
                top = top.max(w);
                proposal.push(inner.len() as u32);
                mode.push(m as u8);
                lw.push(w);
            }
            if proposal.last() == Some(&(inner.len() as u32)) {
                inner.push([x1, x2]);
            }
        }
        proposals += round;
        round = proposals;
        let (total, squares) = lw.iter().fold((0.0, 0.0), |(t, q), &l| {
            let w = (l - top).exp();
            (t + w, q + w * w)
        });
        let ess = total * total / squares;
        if (ess >= 20.0 * n as f64 && ess.is_finite()) || proposals >= ARM_PROPOSALS.1 {
            break ess;
        }
    };
    if lw.is_empty() {
        return ArmReference {
            samples: vec![f32::NAN; n * 4],
            modes: vec![0; n],
            mode_mass: [0.0; ARM_MODES],
            ess: 0.0,
        };
    }
    let weight = |j: usize| (lw[j] - top).exp();
    let total: f64 = (0..lw.len()).map(weight).sum();
    let mut mode_mass = [0.0; ARM_MODES];
    for j in 0..lw.len() {
        mode_mass[mode[j] as usize] += weight(j) / total;
    }
    // Systematic resampling: fewer duplicates than multinomial.
    let mut samples = Vec::with_capacity(n * 4);
    let mut modes = Vec::with_capacity(n);
    let step = total / n as f64;
    let mut u = rng.uniform() * step;
    let (mut acc, mut j, mut w_j) = (0.0, 0, weight(0));
    for _ in 0..n {
        while j + 1 < lw.len() && acc + w_j < u {
            acc += w_j;
            j += 1;
            w_j = weight(j);
        }
        let [x1, x2] = inner[proposal[j] as usize];
        let reach = Reach::new(y, x1, x2).expect("a kept proposal reaches y*");
        let (sign, k) = branch_and_shift(mode[j] as usize);
        let x = [reach.x0(y, sign), x1, x2, reach.x3(sign, k)];
        samples.extend(x.map(|v| v as f32));
        modes.push(mode[j] as usize);
        u += step;
    }
    // Systematic resampling is ordered; shuffle so that any prefix is a fair sample.
    let perm = rng.permutation(n);
    ArmReference {
        samples: perm
            .iter()
            .flat_map(|&i| samples[i * 4..(i + 1) * 4].iter().copied())
            .collect(),
        modes: perm.iter().map(|&i| modes[i]).collect(),
        mode_mass,
        ess,
    }
}

/// The mode (elbow branch, 2πk shift) of the solution of y* nearest to the arm `x`: the
/// candidate last absolute angle ±acos(c) + 2πk closest to x's own φ3, with c from x's first
/// two joints.
pub fn arm_mode(x: &[f32], y: [f64; 2]) -> usize {
    let [l0, l1, l2] = ARM_LENGTHS;
    let (x1, x2, x3) = (x[1] as f64, x[2] as f64, x[3] as f64);
    let a2 = x1 + x2;
    let px = l0 * x1.cos() + l1 * a2.cos();
    let c = ((y[0] - px) / l2).clamp(-1.0, 1.0);
    let ac = c.acos();
    let phi3 = a2 + x3;
    let mut best = (f64::INFINITY, 0);
    for (b, sign) in [1.0, -1.0].into_iter().enumerate() {
        for k in -2i32..=2 {
            let d = (phi3 - (sign * ac + core::f64::consts::TAU * k as f64)).abs();
            if d < best.0 {
                best = (d, b * 5 + (k + 2) as usize);
            }
        }
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::arm_forward;

    #[test]
    // Too slow under Miri (more than 10 s interpreted; scripts/miri.sh runs the rest).
    #[cfg_attr(miri, ignore)]
    fn mixture_draws_use_the_labels_modes_and_their_spread() {
        // Label 1 of `some`: modes 4 and 5, equally weighted, std 0.2.
        let y = [0.0f32, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        let x =
            ExactPosterior::new(Task::Gmm8(Labelling::Some)).draw(&y, 4000, &mut Rng::new(1, 0));
        let near = |m: usize, p: &[f32]| {
            let (cx, cy) = GMM8_CENTRES[m];
            (p[0] as f64 - cx).hypot(p[1] as f64 - cy) < 1.0
        };
        let at4 = x.chunks_exact(2).filter(|p| near(4, p)).count();
        let at5 = x.chunks_exact(2).filter(|p| near(5, p)).count();
        assert_eq!(at4 + at5, 4000);
        assert!((at4 as f64 / 4000.0 - 0.5).abs() < 0.03, "{at4}");
        // Tilted: the first mode gets 1/2 + 0.2.
        let tilted = ExactPosterior {
            tilt: 0.2,
            ..ExactPosterior::new(Task::Gmm8(Labelling::Some))
        };
        let x = tilted.draw(&y, 4000, &mut Rng::new(1, 0));
        let at4 = x.chunks_exact(2).filter(|p| near(4, p)).count();
        assert!((at4 as f64 / 4000.0 - 0.7).abs() < 0.03, "{at4}");
    }

    #[test]
    fn densities_are_the_closed_forms() {
        // Gaussian linear at its mean: −5·ln(2π·0.05).
        let gl = ExactPosterior::new(Task::GaussianLinear);
        let y = [0.4f64; 10];
        let x = [0.2f64; 10];
        let want = -5.0 * (2.0 * core::f64::consts::PI * 0.05).ln();
        assert!((gl.log_density(&x, &y).unwrap() - want).abs() < 1e-12);
        // A mixture component's centre, label 2 of `some` (mode 6 alone): −ln(2π·0.04), plus
        // the other modes' negligible tails.
        let mix = ExactPosterior::new(Task::Gmm8(Labelling::Some));
        let (cx, cy) = GMM8_CENTRES[6];
        let mut y = [0.0f64; 8];
        y[2] = 1.0;
        let want = -(2.0 * core::f64::consts::PI * 0.04).ln();
        assert!((mix.log_density(&[cx, cy], &y).unwrap() - want).abs() < 1e-12);
        assert_eq!(
            ExactPosterior::new(Task::Kinematics).log_density(&[0.0; 4], &[1.5, 0.0]),
            None
        );
    }

    #[test]
    // Too slow under Miri (more than 10 s interpreted; scripts/miri.sh runs the rest).
    #[cfg_attr(miri, ignore)]
    fn arm_reference_draws_reach_the_observation() {
        for y in [[1.5, 0.0], [1.936, 0.426]] {
            let r = arm_reference(y, 500, &mut Rng::new(3, 0));
            assert!(r.ess >= 20.0 * 500.0, "ESS {}", r.ess);
            for (row, &m) in r.samples.chunks_exact(4).zip(&r.modes) {
                let x: Vec<f64> = row.iter().map(|&v| v as f64).collect();
                let e = arm_forward(&x);
                assert!((e[0] - y[0]).abs() < 1e-5 && (e[1] - y[1]).abs() < 1e-5);
                assert_eq!(arm_mode(row, y), m);
            }
        }
        // At y* = (1.5, 0) the posterior is broad: x3's std is about 1.18.
        let r = arm_reference([1.5, 0.0], 4000, &mut Rng::new(3, 1));
        let x3: Vec<f64> = r.samples.chunks_exact(4).map(|r| r[3] as f64).collect();
        let m = x3.iter().sum::<f64>() / x3.len() as f64;
        let sd = (x3.iter().map(|v| (v - m).powi(2)).sum::<f64>() / x3.len() as f64).sqrt();
        assert!((sd - 1.18).abs() < 0.15, "std of x3 {sd}");
    }

    #[test]
    // Too slow under Miri (more than 10 s interpreted; scripts/miri.sh runs the rest).
    #[cfg_attr(miri, ignore)]
    fn an_unreachable_arm_observation_gives_nan_draws() {
        let r = arm_reference([5.0, 0.0], 3, &mut Rng::new(1, 0));
        assert_eq!(r.samples.len(), 12);
        assert!(r.samples.iter().all(|v| v.is_nan()));
        assert_eq!(r.ess, 0.0);
    }
}
