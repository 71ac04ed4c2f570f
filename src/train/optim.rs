//! Adam as PyTorch implements it (coupled L2 weight decay: `g ← g + λ·p` before the moments),
//! gradient clipping and learning-rate schedules.

use crate::prelude::*;

/// Adam's hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    pub betas: (f64, f64),
    pub eps: f64,
    /// Coupled L2 (`torch.optim.Adam(weight_decay=…)`), not AdamW.
    pub weight_decay: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

/// Adam's state: first and second moments (f64 for the sums) and the step count.
#[derive(Clone, Debug, PartialEq)]
pub struct Adam {
    pub config: AdamConfig,
    pub m: Vec<f64>,
    pub v: Vec<f64>,
    pub step: u64,
}

impl Adam {
    pub fn new(config: AdamConfig, n_params: usize) -> Adam {
        Adam {
            config,
            m: vec![0.0; n_params],
            v: vec![0.0; n_params],
            step: 0,
        }
    }

    /// One update of `params` with gradient `grads` at learning rate `lr`.
    pub fn step(&mut self, params: &mut [f32], grads: &[f64], lr: f64) {
        self.step += 1;
        let (b1, b2) = self.config.betas;
        let bias1 = 1.0 - b1.powi(self.step as i32);
        let bias2_sqrt = (1.0 - b2.powi(self.step as i32)).sqrt();
        let step_size = lr / bias1;
        let wd = self.config.weight_decay;
        for (((p, &g), m), v) in params
            .iter_mut()
            .zip(grads)
            .zip(&mut self.m)
            .zip(&mut self.v)
        {
            let g = g + wd * *p as f64;
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            let denom = v.sqrt() / bias2_sqrt + self.config.eps;
            *p -= (step_size * *m / denom) as f32;
        }
    }
}

/// Gradient clipping, applied to the reduced minibatch gradient before the step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Clip {
    None,
    /// Clamp every component to [−c, c] (the ICLR 2019 notebook: 15).
    Value(f64),
    /// Rescale so that the global L2 norm is at most c (`clip_grad_norm_`).
    Norm(f64),
}

impl Clip {
    /// Clips `grads` in place; returns the global L2 norm before clipping.
    pub fn apply(self, grads: &mut [f64]) -> f64 {
        let norm = grads.iter().map(|g| g * g).sum::<f64>().sqrt();
        match self {
            Clip::None => {}
            Clip::Value(c) => grads.iter_mut().for_each(|g| *g = g.clamp(-c, c)),
            Clip::Norm(c) => {
                // As PyTorch: scale by c / (norm + 1e-6) when that is below 1.
                let k = c / (norm + 1e-6);
                if k < 1.0 {
                    grads.iter_mut().for_each(|g| *g *= k);
                }
            }
        }
        norm
    }
}

/// Learning rate as a function of the epoch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Schedule {
    Constant,
    /// `lr · gamma^⌊epoch / every⌋` (StepLR).
    Step {
        every: usize,
        gamma: f64,
    },
    /// Cosine annealing from `lr` to `lr·final_fraction` over `epochs` epochs.
    Cosine {
        final_fraction: f64,
    },
}

impl Schedule {
    pub fn lr(self, base: f64, epoch: usize, epochs: usize) -> f64 {
        match self {
            Schedule::Constant => base,
            Schedule::Step { every, gamma } => base * gamma.powi((epoch / every.max(1)) as i32),
            Schedule::Cosine { final_fraction } => {
                let t = epoch as f64 / epochs.max(1) as f64;
                let lo = base * final_fraction;
                lo + (base - lo) * 0.5 * (1.0 + (core::f64::consts::PI * t).cos())
            }
        }
    }
}
