//! Posterior-quality metrics against exact references (quality.md §5–§7): KL gap, unbiased
//! MMD² with inverse-multiquadric kernels, per-mode masses of the 8-mode mixture, SBC rank
//! uniformity and the median calibration error, the classifier two-sample test (C2ST, sbibm
//! settings) and the inverse-kinematics errors Err_post / Err_resim against the exact
//! manifold posterior (quality.md §6).
//!
//! Every metric takes any [`Posterior`]: a trained model, the exact reference
//! ([`ExactPosterior`]), or a deliberately widened / shifted / re-weighted reference — the
//! negative controls the tests run.

use crate::prelude::*;

use super::optim::{Adam, AdamConfig};
use super::params::ParamLayout;
use super::subnet::{Mlp, MlpTape};
use super::trainer::TrainedModel;
use crate::model::Layout;
use crate::rng::Rng;
use crate::tasks::{
    ARM_LENGTHS, ARM_PRIOR_STD, Dataset, GMM8_CENTRES, GMM8_STD, Labelling, Task, arm_forward,
};

/// A conditional distribution q(x | y) that can be sampled (raw units).
pub trait Posterior: Sync {
    fn x_dim(&self) -> usize;
    /// `n` samples for the observation `y`, `n × x_dim`.
    fn sample(&self, y: &[f32], n: usize, seed: u64) -> Vec<f32>;
    /// −log q(x|y) of every row of `data` (nats, raw units), where q has a density.
    fn nll_rows(&self, _data: &Dataset) -> Option<Vec<f64>> {
        None
    }
}

impl TrainedModel {
    /// `n` posterior samples of x (raw units) for one observation `y` (raw units), `n × x_dim`.
    /// A cINN inverts `[z, y]`; a paper-style INN inverts `[z, 0 (padding), y]` and drops its
    /// x padding.
    pub fn sample(&self, y: &[f32], n: usize, seed: u64) -> Vec<f32> {
        let d = self.chain.dim();
        let mut rng = Rng::new(seed, 7);
        let mut cond_row = y.to_vec();
        self.y_norm.apply(&mut cond_row);
        let mut logdet = vec![0.0f32; n];
        match self.layout {
            Layout::Inn { x, z, pad_zy, .. } => {
                let mut state = vec![0.0f32; n * d];
                for row in state.chunks_exact_mut(d) {
                    for v in &mut row[..z] {
                        *v = rng.normal() as f32;
                    }
                    row[z + pad_zy..].copy_from_slice(&cond_row);
                }
                self.chain.inverse(&mut state, None, &mut logdet);
                let mut out: Vec<f32> = state
                    .chunks_exact(d)
                    .flat_map(|r| &r[..x])
                    .copied()
                    .collect();
                self.x_norm.undo(&mut out);
                out
            }
            _ => {
                let mut z: Vec<f32> = (0..n * d).map(|_| rng.normal() as f32).collect();
                let cond: Vec<f32> = (0..n).flat_map(|_| cond_row.iter().copied()).collect();
                self.chain
                    .inverse(&mut z, (!cond.is_empty()).then_some(&cond), &mut logdet);
                self.x_norm.undo(&mut z);
                z
            }
        }
    }
}

impl Posterior for TrainedModel {
    fn x_dim(&self) -> usize {
        self.x_norm.mean.len()
    }

    fn sample(&self, y: &[f32], n: usize, seed: u64) -> Vec<f32> {
        TrainedModel::sample(self, y, n, seed)
    }

    fn nll_rows(&self, data: &Dataset) -> Option<Vec<f64>> {
        matches!(self.layout, Layout::Cinn { .. }).then(|| TrainedModel::nll_rows(self, data))
    }
}

/// The exact posterior of a built-in task, optionally perturbed (the negative controls).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExactPosterior {
    pub task: Task,
    /// Multiplies the posterior's spread: the component std (GMM8, Gaussian linear) or the
    /// spread around the sample mean (kinematics).
    pub scale: f64,
    /// Added to every coordinate of every sample.
    pub shift: f64,
    /// GMM8: the first mode of each multi-mode label gets `1/k + tilt` of the mass.
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

    fn log_density(&self, x: &[f64], y: &[f64]) -> Option<f64> {
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
            Task::Kinematics => None,
        }
    }
}

fn argmax(v: &[f64]) -> usize {
    v.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}

impl Posterior for ExactPosterior {
    fn x_dim(&self) -> usize {
        self.task.x_dim()
    }

    fn sample(&self, y: &[f32], n: usize, seed: u64) -> Vec<f32> {
        let mut rng = Rng::new(seed, 8);
        let yd: Vec<f64> = y.iter().map(|&v| v as f64).collect();
        let mut out = Vec::with_capacity(n * self.x_dim());
        match self.task {
            Task::Gmm8(l) => {
                let weights = self.gmm8_weights(l, argmax(&yd));
                for _ in 0..n {
                    let mut u = rng.uniform();
                    let mut mode = weights[weights.len() - 1].0;
                    for &(m, w) in &weights {
                        if u < w {
                            mode = m;
                            break;
                        }
                        u -= w;
                    }
                    let (cx, cy) = GMM8_CENTRES[mode];
                    let sd = GMM8_STD * self.scale;
                    out.push((cx + sd * rng.normal() + self.shift) as f32);
                    out.push((cy + sd * rng.normal() + self.shift) as f32);
                }
            }
            Task::GaussianLinear => {
                let sd = 0.05f64.sqrt() * self.scale;
                for _ in 0..n {
                    for &o in &yd {
                        out.push((o / 2.0 + self.shift + sd * rng.normal()) as f32);
                    }
                }
            }
            Task::Kinematics => {
                let r = arm_reference([yd[0], yd[1]], n, seed);
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
                let mut mean = [0.0f64; 4];
                for s in &rows {
                    for (m, &v) in mean.iter_mut().zip(s.iter()) {
                        *m += v as f64 / rows.len() as f64;
                    }
                }
                for i in 0..n {
                    let s = rows[i % rows.len()];
                    for c in 0..4 {
                        out.push(
                            (mean[c] + self.scale * (s[c] as f64 - mean[c]) + self.shift) as f32,
                        );
                    }
                }
            }
        }
        out
    }

    fn nll_rows(&self, data: &Dataset) -> Option<Vec<f64>> {
        (0..data.len())
            .map(|i| {
                let x: Vec<f64> = data.x[i * data.x_dim..(i + 1) * data.x_dim]
                    .iter()
                    .map(|&v| v as f64)
                    .collect();
                let y: Vec<f64> = data.y[i * data.y_dim..(i + 1) * data.y_dim]
                    .iter()
                    .map(|&v| v as f64)
                    .collect();
                self.log_density(&x, &y).map(|l| -l)
            })
            .collect()
    }
}

/// Runs `f(0..n)` on all cores; results in index order.
pub(crate) fn par_map<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .clamp(1, n.max(1));
    if threads == 1 {
        return (0..n).map(f).collect();
    }
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    (t * n / threads..(t + 1) * n / threads)
                        .map(f)
                        .collect::<Vec<T>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("evaluation thread panicked"))
            .collect()
    })
}

/// Held-out NLL minus the true conditional entropy (nats): E_y KL(p(x|y) ‖ q(x|y)) ≥ 0.
/// `None` where the task's entropy or the posterior's density is unknown.
pub fn kl_gap<P: Posterior + ?Sized>(
    model: &P,
    task: Task,
    n_test: usize,
    seed: u64,
) -> Option<f64> {
    let h = task.conditional_entropy()?;
    let test = task.simulate(n_test, seed, 4242);
    let rows = model.nll_rows(&test)?;
    Some(rows.iter().sum::<f64>() / rows.len().max(1) as f64 - h)
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

/// Unbiased MMD² between sample sets `a` and `b` (rows of `dim`), IMQ kernel [`IMQ_WIDTHS`].
pub fn mmd2_unbiased(a: &[f32], b: &[f32], dim: usize) -> f64 {
    let ra: Vec<&[f32]> = a.chunks_exact(dim).collect();
    let rb: Vec<&[f32]> = b.chunks_exact(dim).collect();
    let within = |r: &[&[f32]]| {
        let n = r.len() as f64;
        let mut s = 0.0;
        for i in 0..r.len() {
            for j in i + 1..r.len() {
                s += 2.0 * imq(r[i], r[j]);
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

impl ModeMasses {
    /// The largest |got − expected| over the label's modes.
    pub fn worst_error(&self) -> f64 {
        self.modes
            .iter()
            .map(|&(_, got, want)| (got - want).abs())
            .fold(0.0, f64::max)
    }
}

/// Per-label mode masses of `n` samples per label.
pub fn gmm8_mode_masses<P: Posterior + ?Sized>(
    model: &P,
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

/// SBC ranks (Talts et al.): for `n` draws (x*, y) from the task, the rank of x*_d among `l`
/// posterior samples, per dimension, as u = (rank + ½)/(l + 1) ∈ (0, 1).
pub fn sbc_ranks<P: Posterior + ?Sized>(
    model: &P,
    task: Task,
    n: usize,
    l: usize,
    seed: u64,
) -> Vec<Vec<f64>> {
    let data = task.simulate(n, seed, 777);
    let xd = task.x_dim();
    let per_row = par_map(n, |i| {
        let y = &data.y[i * data.y_dim..(i + 1) * data.y_dim];
        let truth = &data.x[i * xd..(i + 1) * xd];
        let s = model.sample(y, l, seed ^ (i as u64 + 1));
        (0..xd)
            .map(|d| {
                let r = s.chunks_exact(xd).filter(|row| row[d] < truth[d]).count();
                (r as f64 + 0.5) / (l as f64 + 1.0)
            })
            .collect::<Vec<f64>>()
    });
    (0..xd)
        .map(|d| per_row.iter().map(|r| r[d]).collect())
        .collect()
}

/// SBC: the KS p-value of each dimension's ranks against uniform.
pub fn sbc_ks_pvalues<P: Posterior + ?Sized>(
    model: &P,
    task: Task,
    n: usize,
    l: usize,
    seed: u64,
) -> Vec<f64> {
    sbc_ranks(model, task, n, l, seed)
        .into_iter()
        .map(ks_uniform_pvalue)
        .collect()
}

/// The ICLR 2019 marginal calibration error from SBC ranks (quality.md §1b, §5): for the
/// central intervals at q = 0.01 … 0.99, |fraction of true values inside − q|, and the median
/// over q, per dimension. x* lies in the central q-interval of the samples iff |u − ½| ≤ q/2.
pub fn median_calibration_error(ranks: &[Vec<f64>]) -> Vec<f64> {
    ranks
        .iter()
        .map(|u| {
            let n = u.len().max(1) as f64;
            let mut errs: Vec<f64> = (1..=99)
                .map(|k| {
                    let q = k as f64 / 100.0;
                    let inside = u.iter().filter(|&&v| (v - 0.5).abs() <= q / 2.0).count();
                    (inside as f64 / n - q).abs()
                })
                .collect();
            errs.sort_by(f64::total_cmp);
            errs[errs.len() / 2]
        })
        .collect()
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

// ------------------------------------------------------------------------------------------
// C2ST

/// The classifier two-sample test's settings. The defaults are sbibm's (quality.md §4):
/// sklearn `MLPClassifier(hidden=(10·dim, 10·dim), relu, adam lr 1e-3, batch 200)`, stopped
/// when the training loss has not improved by `tol` for `patience` epochs, 5-fold shuffled
/// cross-validation, both sets z-scored by the reference's mean and std.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct C2stOptions {
    pub folds: usize,
    /// Hidden width = `hidden_factor · dim`.
    pub hidden_factor: usize,
    pub max_epochs: usize,
    pub batch: usize,
    pub lr: f64,
    pub tol: f64,
    pub patience: usize,
}

impl Default for C2stOptions {
    fn default() -> Self {
        C2stOptions {
            folds: 5,
            hidden_factor: 10,
            max_epochs: 200,
            batch: 200,
            lr: 1e-3,
            tol: 1e-4,
            patience: 10,
        }
    }
}

/// C2ST accuracy between `reference` and `other` (rows of `dim`): 0.5 = indistinguishable,
/// 1 = disjoint. Folds run in parallel.
pub fn c2st(reference: &[f32], other: &[f32], dim: usize, seed: u64, opt: &C2stOptions) -> f64 {
    let na = reference.len() / dim;
    let nb = other.len() / dim;
    let n = na + nb;
    // z-score by the reference.
    let mut mean = vec![0.0f64; dim];
    let mut var = vec![0.0f64; dim];
    for r in reference.chunks_exact(dim) {
        mean.iter_mut()
            .zip(r)
            .for_each(|(m, &v)| *m += v as f64 / na as f64);
    }
    for r in reference.chunks_exact(dim) {
        for ((s, &v), m) in var.iter_mut().zip(r).zip(&mean) {
            *s += (v as f64 - m).powi(2) / na as f64;
        }
    }
    let sd: Vec<f64> = var.iter().map(|v| v.sqrt().max(1e-12)).collect();
    let mut x = Vec::with_capacity(n * dim);
    for r in reference.chunks_exact(dim).chain(other.chunks_exact(dim)) {
        for c in 0..dim {
            x.push(((r[c] as f64 - mean[c]) / sd[c]) as f32);
        }
    }
    let labels: Vec<f32> = (0..n).map(|i| if i < na { 0.0 } else { 1.0 }).collect();
    let order = Rng::new(seed, 31).permutation(n);
    let folds = opt.folds.max(2);
    let accuracies = par_map(folds, |f| {
        let (lo, hi) = (f * n / folds, (f + 1) * n / folds);
        let test: Vec<usize> = order[lo..hi].to_vec();
        let train: Vec<usize> = order[..lo].iter().chain(&order[hi..]).copied().collect();
        let net = fit_classifier(&x, &labels, dim, &train, seed ^ (f as u64 + 1), opt);
        let logits = net.logits(&x, dim, &test);
        let correct = test
            .iter()
            .zip(&logits)
            .filter(|&(&i, &l)| (l > 0.0) == (labels[i] > 0.5))
            .count();
        correct as f64 / test.len() as f64
    });
    accuracies.iter().sum::<f64>() / accuracies.len() as f64
}

struct Classifier {
    net: Mlp,
    params: Vec<f32>,
}

impl Classifier {
    fn logits(&self, x: &[f32], dim: usize, rows: &[usize]) -> Vec<f32> {
        let mut out = Vec::with_capacity(rows.len());
        for chunk in rows.chunks(4096) {
            let input: Vec<f32> = chunk
                .iter()
                .flat_map(|&i| x[i * dim..(i + 1) * dim].iter().copied())
                .collect();
            out.extend(self.net.forward(&self.params, input, chunk.len(), None));
        }
        out
    }
}

fn fit_classifier(
    x: &[f32],
    labels: &[f32],
    dim: usize,
    rows: &[usize],
    seed: u64,
    opt: &C2stOptions,
) -> Classifier {
    let mut layout = ParamLayout::default();
    let h = opt.hidden_factor * dim;
    let net = Mlp::new(&mut layout, dim, &[h, h], 1, super::Activation::Relu);
    let mut params = vec![0.0f32; layout.len()];
    let mut rng = Rng::new(seed, 32);
    net.init(&mut params, &mut rng, 1.0);
    let mut adam = Adam::new(AdamConfig::default(), params.len());
    let mut order = rows.to_vec();
    let mut best = f64::INFINITY;
    let mut stale = 0;
    let mut grads = vec![0.0f32; params.len()];
    let mut g64 = vec![0.0f64; params.len()];
    for _ in 0..opt.max_epochs {
        rng.shuffle(&mut order);
        let mut loss_sum = 0.0;
        for batch in order.chunks(opt.batch) {
            let m = batch.len();
            let input: Vec<f32> = batch
                .iter()
                .flat_map(|&i| x[i * dim..(i + 1) * dim].iter().copied())
                .collect();
            let mut tape = MlpTape::default();
            let logits = net.forward(&params, input, m, Some(&mut tape));
            let mut g = Vec::with_capacity(m);
            for (&l, &i) in logits.iter().zip(batch) {
                let y = labels[i];
                let l = l as f64;
                // BCE with logits: softplus(l) − y·l.
                let sp = if l > 0.0 {
                    l + (-l).exp().ln_1p()
                } else {
                    l.exp().ln_1p()
                };
                loss_sum += sp - y as f64 * l;
                let p = 1.0 / (1.0 + (-l).exp());
                g.push(((p - y as f64) / m as f64) as f32);
            }
            grads.iter_mut().for_each(|v| *v = 0.0);
            net.backward(&params, &tape, g, m, &mut grads);
            g64.iter_mut().zip(&grads).for_each(|(a, &b)| *a = b as f64);
            adam.step(&mut params, &g64, opt.lr);
        }
        let loss = loss_sum / order.len() as f64;
        // sklearn's rule: stop after `patience` epochs without improving the best by `tol`.
        if loss > best - opt.tol {
            stale += 1;
        } else {
            stale = 0;
        }
        best = best.min(loss);
        if stale >= opt.patience {
            break;
        }
    }
    Classifier { net, params }
}

/// C2ST of a posterior against the exact one, averaged over `n_obs` prior-predictive
/// observations, `n` samples each (sbibm: 10 observations, 10 000 vs 10 000).
pub fn c2st_vs_exact<P: Posterior + ?Sized>(
    model: &P,
    task: Task,
    n_obs: usize,
    n: usize,
    seed: u64,
    opt: &C2stOptions,
) -> Vec<f64> {
    let obs = task.simulate(n_obs, seed, 999);
    let exact = ExactPosterior::new(task);
    (0..n_obs)
        .map(|i| {
            let y = &obs.y[i * obs.y_dim..(i + 1) * obs.y_dim];
            let reference = exact.sample(y, n, seed ^ (0x5eed + i as u64));
            let q = model.sample(y, n, seed ^ (0xc25 + i as u64));
            c2st(&reference, &q, task.x_dim(), seed + i as u64, opt)
        })
        .collect()
}

// ------------------------------------------------------------------------------------------
// Inverse kinematics: exact reference posterior and errors

/// Modes of the arm posterior: the elbow branch (±) times the 2πk shift of the last absolute
/// angle, k ∈ {−2, …, 2}.
pub const ARM_MODES: usize = 10;

/// Samples from the exact posterior p(x | y*) of the arm.
#[derive(Clone, Debug)]
pub struct ArmReference {
    /// `n × 4`.
    pub samples: Vec<f32>,
    /// The mode of each sample.
    pub modes: Vec<usize>,
    /// The posterior mass of each mode (from the importance weights).
    pub mode_mass: [f64; ARM_MODES],
    /// Effective sample size of the importance weights.
    pub ess: f64,
}

/// The exact manifold posterior of quality.md §6: (x2, x3) from the prior, x4 and x1 solved
/// for each elbow branch and 2πk shift, weighted by p(x1) p(x4) / (l3 |sin φ3|), then
/// resampled. Proposals are doubled until the effective sample size is ≥ 20 n.
pub fn arm_reference(y: [f64; 2], n: usize, seed: u64) -> ArmReference {
    let [l0, l1, l2] = ARM_LENGTHS;
    let s = ARM_PRIOR_STD;
    let mut n_prop = 100_000usize;
    loop {
        let mut rng = Rng::new(seed, 41 + n_prop as u64);
        let mut xs: Vec<[f64; 4]> = Vec::new();
        let mut lw: Vec<f64> = Vec::new();
        let mut mode: Vec<usize> = Vec::new();
        for _ in 0..n_prop {
            let x2 = s[1] * rng.normal();
            let x3 = s[2] * rng.normal();
            let a2 = x2 + x3;
            let px = l0 * x2.cos() + l1 * a2.cos();
            let py = l0 * x2.sin() + l1 * a2.sin();
            let c = (y[0] - px) / l2;
            if c.abs() >= 1.0 {
                continue;
            }
            let ac = c.acos();
            for (b, sign) in [1.0, -1.0].into_iter().enumerate() {
                for k in -2i32..=2 {
                    let ph = sign * ac + core::f64::consts::TAU * k as f64;
                    let x4 = ph - a2;
                    let x1 = y[1] - py - l2 * ph.sin();
                    let w = -0.5 * (x1 / s[0]).powi(2)
                        - 0.5 * (x4 / s[3]).powi(2)
                        - (l2 * ph.sin().abs() + 1e-300).ln();
                    xs.push([x1, x2, x3, x4]);
                    lw.push(w);
                    mode.push(b * 5 + (k + 2) as usize);
                }
            }
        }
        let max = lw.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let w: Vec<f64> = lw.iter().map(|&l| (l - max).exp()).collect();
        let total: f64 = w.iter().sum();
        let ess = total * total / w.iter().map(|v| v * v).sum::<f64>();
        if (ess < 20.0 * n as f64 || !ess.is_finite()) && n_prop < 6_400_000 {
            n_prop *= 2;
            continue;
        }
        let mut mode_mass = [0.0; ARM_MODES];
        for (&m, &v) in mode.iter().zip(&w) {
            mode_mass[m] += v / total;
        }
        // Systematic resampling: fewer duplicates than multinomial.
        let mut samples = Vec::with_capacity(n * 4);
        let mut modes = Vec::with_capacity(n);
        let step = total / n as f64;
        let mut u = rng.uniform() * step;
        let mut acc = 0.0;
        let mut j = 0;
        for _ in 0..n {
            while j + 1 < w.len() && acc + w[j] < u {
                acc += w[j];
                j += 1;
            }
            samples.extend(xs[j].iter().map(|&v| v as f32));
            modes.push(mode[j]);
            u += step;
        }
        // Systematic resampling is ordered; shuffle so that any prefix is a fair sample.
        let perm = rng.permutation(n);
        let samples = perm
            .iter()
            .flat_map(|&i| samples[i * 4..(i + 1) * 4].iter().copied())
            .collect();
        let modes = perm.iter().map(|&i| modes[i]).collect();
        return ArmReference {
            samples,
            modes,
            mode_mass,
            ess,
        };
    }
}

/// The mode (elbow branch, 2πk shift) of the solution of y* nearest to the arm `x`: the
/// candidate last angle ±acos(c) + 2πk closest to x's own φ3, with c from x's first two
/// joints.
pub fn arm_mode(x: &[f32], y: [f64; 2]) -> usize {
    let [l0, l1, l2] = ARM_LENGTHS;
    let (x2, x3, x4) = (x[1] as f64, x[2] as f64, x[3] as f64);
    let a2 = x2 + x3;
    let px = l0 * x2.cos() + l1 * a2.cos();
    let c = ((y[0] - px) / l2).clamp(-1.0, 1.0);
    let ac = c.acos();
    let phi3 = a2 + x4;
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

/// Err_post and Err_resim over test observations.
#[derive(Clone, Debug, PartialEq)]
pub struct KinematicsErrors {
    /// The observations y* (the first is (1.5, 0)).
    pub observations: Vec<[f64; 2]>,
    /// Unbiased MMD² (IMQ, raw x units) of model vs exact samples, per observation.
    pub err_post: Vec<f64>,
    /// Mean ‖f(x̂) − y*‖² (squared) over the model samples, per observation.
    pub err_resim: Vec<f64>,
}

impl KinematicsErrors {
    pub fn mean_err_post(&self) -> f64 {
        mean(&self.err_post)
    }
    pub fn median_err_post(&self) -> f64 {
        median(&self.err_post)
    }
    pub fn mean_err_resim(&self) -> f64 {
        mean(&self.err_resim)
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s.get(s.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The kinematics test observations: (1.5, 0), then y* = f(x), x ~ prior (fixed seed).
pub fn kinematics_observations(n_obs: usize, seed: u64) -> Vec<[f64; 2]> {
    let data = Task::Kinematics.simulate(n_obs.saturating_sub(1), seed, 4343);
    core::iter::once([1.5, 0.0])
        .chain(data.y.chunks_exact(2).map(|r| [r[0] as f64, r[1] as f64]))
        .take(n_obs)
        .collect()
}

/// Err_post (unbiased MMD², `n` model vs `n` exact samples) and Err_resim (squared) over
/// `n_obs` observations, on all cores.
pub fn kinematics_errors<P: Posterior + ?Sized>(
    model: &P,
    n_obs: usize,
    n: usize,
    seed: u64,
) -> KinematicsErrors {
    let observations = kinematics_observations(n_obs, seed);
    let per = par_map(observations.len(), |i| {
        let y = observations[i];
        let q = model.sample(&[y[0] as f32, y[1] as f32], n, seed ^ (0xa11 + i as u64));
        let reference = arm_reference(y, n, seed ^ (0xbee + i as u64));
        let post = mmd2_unbiased(&q, &reference.samples, 4);
        let resim = q
            .chunks_exact(4)
            .map(|x| {
                let xd: Vec<f64> = x.iter().map(|&v| v as f64).collect();
                let e = arm_forward(&xd);
                (e[0] - y[0]).powi(2) + (e[1] - y[1]).powi(2)
            })
            .sum::<f64>()
            / n as f64;
        (post, resim)
    });
    KinematicsErrors {
        observations,
        err_post: per.iter().map(|p| p.0).collect(),
        err_resim: per.iter().map(|p| p.1).collect(),
    }
}

/// Modes of the exact posterior at `y` holding ≥ `min_mass` that the model misses: model
/// mass below half the reference mass. Returns (mode, reference mass, model mass) of each.
#[allow(clippy::type_complexity)]
pub fn arm_missing_modes<P: Posterior + ?Sized>(
    model: &P,
    y: [f64; 2],
    n: usize,
    min_mass: f64,
    seed: u64,
) -> (Vec<(usize, f64, f64)>, [f64; ARM_MODES], [f64; ARM_MODES]) {
    let reference = arm_reference(y, 1000, seed);
    let q = model.sample(&[y[0] as f32, y[1] as f32], n, seed ^ 0x3a3);
    let mut mass = [0.0; ARM_MODES];
    for x in q.chunks_exact(4) {
        mass[arm_mode(x, y)] += 1.0 / n as f64;
    }
    let missing = (0..ARM_MODES)
        .filter(|&m| reference.mode_mass[m] >= min_mass && mass[m] < 0.5 * reference.mode_mass[m])
        .map(|m| (m, reference.mode_mass[m], mass[m]))
        .collect();
    (missing, reference.mode_mass, mass)
}
