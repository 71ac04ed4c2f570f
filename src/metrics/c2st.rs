//! The classifier two-sample test (C2ST) with sbibm's settings: how well a small MLP tells a
//! model's samples from exact ones. Fitting the classifier uses the training mode's MLP and
//! Adam, hence the `train` feature.

use crate::prelude::*;

use super::par_map;
use crate::rng::Rng;
use crate::train::Activation;
use crate::train::optim::{Adam, AdamConfig};
use crate::train::params::ParamLayout;
use crate::train::subnet::{Mlp, MlpTape};

/// The classifier two-sample test's settings. The defaults are sbibm's:
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
    let net = Mlp::new(&mut layout, dim, &[h, h], 1, Activation::Relu);
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
