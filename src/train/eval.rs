//! Posterior-quality metrics against exact references (quality.md §5–§7): KL gap, unbiased
//! MMD² with inverse-multiquadric kernels, per-mode masses of the 8-mode mixture, and SBC
//! rank uniformity.

use crate::train::prelude::*;

use super::rng::Rng;
use super::tasks::{GMM8_CENTRES, GMM8_STD, Labelling, Task};
use super::trainer::TrainedModel;

impl TrainedModel {
    /// `n` posterior samples of x (raw units) for one observation `y` (raw units), `n × x_dim`.
    pub fn sample(&self, y: &[f32], n: usize, seed: u64) -> Vec<f32> {
        let d = self.chain.dim();
        let mut rng = Rng::new(seed, 7);
        let mut z: Vec<f32> = (0..n * d).map(|_| rng.normal() as f32).collect();
        let mut cond_row = y.to_vec();
        self.y_norm.apply(&mut cond_row);
        let cond: Vec<f32> = (0..n).flat_map(|_| cond_row.iter().copied()).collect();
        let mut logdet = vec![0.0f32; n];
        self.chain
            .inverse(&mut z, (!cond.is_empty()).then_some(&cond), &mut logdet);
        self.x_norm.undo(&mut z);
        z
    }
}

/// Held-out NLL minus the true conditional entropy (nats): E_y KL(p(x|y) ‖ q(x|y)) ≥ 0.
pub fn kl_gap(model: &TrainedModel, task: Task, n_test: usize, seed: u64) -> Option<f64> {
    let h = task.conditional_entropy()?;
    let test = task.simulate(n_test, seed, 4242);
    Some(model.nll(&test) - h)
}

/// The IMQ kernel Σ_h h²/(h² + ‖a − b‖²), h ∈ {0.05, 0.2, 0.9} (the ICLR 2019 kernel).
pub const IMQ_WIDTHS: [f64; 3] = [0.05, 0.2, 0.9];

fn imq(a: &[f32], b: &[f32]) -> f64 {
    let d2: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum();
    IMQ_WIDTHS.iter().map(|h| h * h / (h * h + d2)).sum()
}

/// Unbiased MMD² between sample sets `a` and `b` (rows of `dim`).
pub fn mmd2_unbiased(a: &[f32], b: &[f32], dim: usize) -> f64 {
    let ra: Vec<&[f32]> = a.chunks_exact(dim).collect();
    let rb: Vec<&[f32]> = b.chunks_exact(dim).collect();
    let within = |r: &[&[f32]]| {
        let n = r.len() as f64;
        let mut s = 0.0;
        for i in 0..r.len() {
            for j in 0..r.len() {
                if i != j {
                    s += imq(r[i], r[j]);
                }
            }
        }
        s / (n * (n - 1.0))
    };
    let mut cross = 0.0;
    for x in &ra {
        for y in &rb {
            cross += imq(x, y);
        }
    }
    within(&ra) + within(&rb) - 2.0 * cross / (ra.len() * rb.len()) as f64
}

/// Mode masses of one label's posterior samples.
#[derive(Clone, Debug, PartialEq)]
pub struct ModeMasses {
    pub label: usize,
    /// (mode, fraction of samples nearest to it, expected fraction) for the label's modes.
    pub modes: Vec<(usize, f64, f64)>,
    /// Fraction farther than 4σ from every mode of the label.
    pub off_mode: f64,
}

/// Per-label mode masses of `n` samples per label.
pub fn gmm8_mode_masses(
    model: &TrainedModel,
    labelling: Labelling,
    n: usize,
    seed: u64,
) -> Vec<ModeMasses> {
    labelling
        .labels()
        .into_iter()
        .map(|label| {
            let mut y = [0.0f32; 8];
            y[label] = 1.0;
            let s = model.sample(&y, n, seed + label as u64);
            let modes = labelling.modes_of(label);
            let mut counts = [0usize; 8];
            let mut off = 0usize;
            for p in s.chunks_exact(2) {
                let dist = |m: usize| {
                    let (cx, cy) = GMM8_CENTRES[m];
                    ((p[0] as f64 - cx).powi(2) + (p[1] as f64 - cy).powi(2)).sqrt()
                };
                let nearest = (0..8)
                    .min_by(|&a, &b| dist(a).total_cmp(&dist(b)))
                    .expect("8 modes");
                counts[nearest] += 1;
                if modes.iter().all(|&m| dist(m) > 4.0 * GMM8_STD) {
                    off += 1;
                }
            }
            ModeMasses {
                label,
                modes: modes
                    .iter()
                    .map(|&m| (m, counts[m] as f64 / n as f64, 1.0 / modes.len() as f64))
                    .collect(),
                off_mode: off as f64 / n as f64,
            }
        })
        .collect()
}

/// SBC (Talts et al.): for `n` draws (x*, y) from the task, ranks of x*_d among `l` posterior
/// samples per dimension; returns the KS p-value of each dimension's ranks against uniform.
pub fn sbc_ks_pvalues(model: &TrainedModel, task: Task, n: usize, l: usize, seed: u64) -> Vec<f64> {
    let data = task.simulate(n, seed, 777);
    let xd = task.x_dim();
    let mut ranks = vec![Vec::with_capacity(n); xd];
    for i in 0..n {
        let y = &data.y[i * data.y_dim..(i + 1) * data.y_dim];
        let truth = &data.x[i * xd..(i + 1) * xd];
        let s = model.sample(y, l, seed ^ (i as u64 + 1));
        for d in 0..xd {
            let r = s.chunks_exact(xd).filter(|row| row[d] < truth[d]).count();
            // Continuous rank in (0, 1), with a deterministic jitter to break ties.
            ranks[d].push((r as f64 + 0.5) / (l as f64 + 1.0));
        }
    }
    ranks.into_iter().map(ks_uniform_pvalue).collect()
}

/// Kolmogorov–Smirnov test of samples in (0, 1) against U(0, 1): the asymptotic p-value.
pub fn ks_uniform_pvalue(mut u: Vec<f64>) -> f64 {
    u.sort_by(f64::total_cmp);
    let n = u.len() as f64;
    let d = u
        .iter()
        .enumerate()
        .map(|(i, &v)| ((i as f64 + 1.0) / n - v).max(v - i as f64 / n))
        .fold(0.0, f64::max);
    let t = (n.sqrt() + 0.12 + 0.11 / n.sqrt()) * d;
    // Q_KS(t) = 2 Σ (−1)^{k−1} e^{−2k²t²}
    let mut p = 0.0;
    for k in 1..100 {
        let term = 2.0 * (-1f64).powi(k - 1) * (-2.0 * (k as f64).powi(2) * t * t).exp();
        p += term;
        if term.abs() < 1e-12 {
            break;
        }
    }
    p.clamp(0.0, 1.0)
}
