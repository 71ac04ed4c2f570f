//! A learned per-channel affine map `y = x·g + o` with log|det J| = Σ_c log g_c per row:
//! AllInOneBlock's global affine (g = Ψ(global_scale), o = global_offset; SOFTPLUS Ψ) and
//! FrEIA head's ActNorm (g = exp(−log_scale), o = −loc·g, i.e. y = (x − loc)/exp(log_scale)).

use crate::prelude::*;

use super::{Batch, Grads};
use crate::train::float::Float;

#[derive(Clone, Copy, Debug)]
pub(crate) enum AffineKind {
    /// Ψ(a) = 0.1·Softplus(β = 0.5, threshold = 20)(a) = 0.2·ln(1 + e^{a/2}), linear above.
    AllInOneSoftplus { scale: usize, offset: usize },
    /// FrEIA head ActNorm.
    ActNorm { log_scale: usize, loc: usize },
}

#[derive(Clone, Debug)]
pub(crate) struct ChannelAffine {
    pub(crate) kind: AffineKind,
    pub(crate) d: usize,
}

/// Ψ and dΨ/da of the AllInOneBlock SOFTPLUS global affine.
pub(crate) fn softplus_scale<F: Float>(a: F) -> (F, F) {
    let half = F::from_f64(0.5);
    let tenth = F::from_f64(0.1);
    if a * half > F::from_f64(20.0) {
        (tenth * a, tenth)
    } else {
        (
            tenth * (a * half).exp().ln_1p() / half,
            tenth * (a * half).sigmoid(),
        )
    }
}

impl ChannelAffine {
    /// Per channel: (g, o).
    fn coefficients<F: Float>(&self, params: &[F]) -> (Vec<F>, Vec<F>) {
        let d = self.d;
        match self.kind {
            AffineKind::AllInOneSoftplus { scale, offset } => (
                params[scale..scale + d]
                    .iter()
                    .map(|&a| softplus_scale(a).0)
                    .collect(),
                params[offset..offset + d].to_vec(),
            ),
            AffineKind::ActNorm { log_scale, loc } => {
                let g: Vec<F> = params[log_scale..log_scale + d]
                    .iter()
                    .map(|&v| (-v).exp())
                    .collect();
                let o = g
                    .iter()
                    .zip(&params[loc..loc + d])
                    .map(|(&g, &l)| -l * g)
                    .collect();
                (g, o)
            }
        }
    }

    fn log_det<F: Float>(&self, params: &[F], g: &[F]) -> F {
        match self.kind {
            AffineKind::AllInOneSoftplus { .. } => g.iter().map(|g| g.ln()).sum(),
            AffineKind::ActNorm { log_scale, .. } => -params[log_scale..log_scale + self.d]
                .iter()
                .copied()
                .sum::<F>(),
        }
    }

    pub(crate) fn run<F: Float>(
        &self,
        params: &[F],
        batch: &Batch<'_, F>,
        state: &mut [F],
        logdet: &mut [F],
        rev: bool,
    ) {
        let (g, o) = self.coefficients(params);
        for row in state[..batch.m * batch.d].chunks_exact_mut(batch.d) {
            for ((x, &g), &o) in row.iter_mut().zip(&g).zip(&o) {
                *x = if rev { (*x - o) / g } else { *x * g + o };
            }
        }
        let j = self.log_det(params, &g);
        let j = if rev { -j } else { j };
        logdet[..batch.m].iter_mut().for_each(|l| *l += j);
    }

    /// `state` holds the op's input already; `grad` holds dL/d(output) and becomes dL/d(input).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn backprop<F: Float>(
        &self,
        params: &[F],
        batch: &Batch<'_, F>,
        state: &[F],
        grad: &mut [F],
        grad_logdet: &[F],
        rev: bool,
        grads: &mut Grads<'_, F>,
    ) {
        let d = self.d;
        let (g, o) = self.coefficients(params);
        let gl: F = grad_logdet[..batch.m].iter().copied().sum();
        // dL/dg_c and dL/do_c.
        let mut dg = vec![F::ZERO; d];
        let mut d_o = vec![F::ZERO; d];
        let rows = state[..batch.m * d].chunks_exact(d);
        for (input, gr) in rows.zip(grad[..batch.m * d].chunks_exact_mut(d)) {
            for c in 0..d {
                if rev {
                    // x = (y − o)/g with y = input: dx/dy = 1/g, dx/do = −1/g, dx/dg = −x/g.
                    let x = (input[c] - o[c]) / g[c];
                    dg[c] -= gr[c] * x / g[c];
                    d_o[c] -= gr[c] / g[c];
                    gr[c] = gr[c] / g[c];
                } else {
                    dg[c] += gr[c] * input[c];
                    d_o[c] += gr[c];
                    gr[c] *= g[c];
                }
            }
        }
        // logdet = ±Σ log g.
        let sign = if rev { -F::ONE } else { F::ONE };
        match self.kind {
            AffineKind::AllInOneSoftplus { scale, offset } => {
                for c in 0..d {
                    let (psi, dpsi) = softplus_scale(params[scale + c]);
                    let dg_total = dg[c] + sign * gl / psi;
                    grads.params[scale + c] += dg_total * dpsi;
                    grads.params[offset + c] += d_o[c];
                }
            }
            AffineKind::ActNorm { log_scale, loc } => {
                for c in 0..d {
                    // g = e^{−ls}, o = −loc·g, logdet = −Σ ls.
                    let l = params[loc + c];
                    grads.params[log_scale + c] += -dg[c] * g[c] + d_o[c] * l * g[c] - sign * gl;
                    grads.params[loc + c] += -d_o[c] * g[c];
                }
            }
        }
    }
}
