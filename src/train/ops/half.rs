//! One affine coupling half, the building block of every FrEIA coupling (docs/blocks.md §coupling-half):
//! a subnet reads `[passive columns, condition]` and its output `[s_raw, t]` transforms the
//! active columns, `y = x·exp(s) + t` with `s = clamp(s_raw)` and log|det J| = Σ s.
//!
//! The backward pass, in the direction the half was run (x → y, or y → x):
//! - forward:  dL/dx = dL/dy·e^s,   dL/ds = dL/dy·x·e^s + dL/dlogdet,  dL/dt = dL/dy;
//! - inverse:  dL/dy = dL/dx·e^−s,  dL/ds = −dL/dx·x − dL/dlogdet,      dL/dt = −dL/dx·e^−s;
//!
//! then through the clamp and the subnet into its parameters, the passive columns and the
//! condition.

use crate::prelude::*;

use super::{Batch, Grads};
use crate::train::float::Float;
use crate::train::subnet::{Mlp, MlpTape};

/// FrEIA's `clamp_activation` of the coupling blocks (docs/blocks.md §soft-clamp).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClampActivation {
    /// `0.636·atan(u)` (the literal 0.636, as FrEIA).
    Atan,
    Tanh,
    /// `2·(sigmoid(u) − 0.5)`.
    Sigmoid,
}

impl ClampActivation {
    pub fn format_name(self) -> &'static str {
        match self {
            ClampActivation::Atan => "ATAN",
            ClampActivation::Tanh => "TANH",
            ClampActivation::Sigmoid => "SIGMOID",
        }
    }
}

/// How the log-scale `s` is made from the subnet's raw output.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum LogScale {
    /// Coupling blocks: `clamp · f(u)`.
    Coupling { clamp: f64, f: ClampActivation },
    /// AllInOneBlock, FrEIA head: `α·tanh(u/α)` (u already scaled by 0.1).
    AllInOne { alpha: f64 },
    /// NICE: no scale at all, the subnet gives only `t`.
    None,
}

impl LogScale {
    /// (s, ds/du).
    #[inline]
    fn apply<F: Float>(self, u: F) -> (F, F) {
        match self {
            LogScale::Coupling { clamp, f } => {
                let c = F::from_f64(clamp);
                match f {
                    ClampActivation::Atan => {
                        let k = F::from_f64(0.636);
                        (c * (k * u.atan()), c * k / (F::ONE + u * u))
                    }
                    ClampActivation::Tanh => {
                        let t = u.tanh();
                        (c * t, c * (F::ONE - t * t))
                    }
                    ClampActivation::Sigmoid => {
                        let s = u.sigmoid();
                        let two = F::from_f64(2.0);
                        (
                            c * (two * (s - F::from_f64(0.5))),
                            c * two * s * (F::ONE - s),
                        )
                    }
                }
            }
            LogScale::AllInOne { alpha } => {
                let a = F::from_f64(alpha);
                let t = (u / a).tanh();
                (a * t, F::ONE - t * t)
            }
            LogScale::None => (F::ZERO, F::ZERO),
        }
    }
}

/// Which subnets produce `[s_raw, t]`.
#[derive(Clone, Debug)]
pub(crate) enum Conditioner {
    /// One subnet with output `[s_raw, t]` (GLOW, one-sided, conditional affine, AllInOne).
    Joint(Mlp),
    /// Separate `s` and `t` subnets (RNVP).
    Split { s: Mlp, t: Mlp },
    /// A `t`-only subnet (NICE).
    Shift(Mlp),
}

#[derive(Clone, Debug)]
pub(crate) struct Half {
    /// (first column, width) of the transformed columns.
    pub(crate) active: (usize, usize),
    /// (first column, width) of the columns the subnet reads.
    pub(crate) passive: (usize, usize),
    /// Whether the subnet also reads the condition (concatenated after the passive columns).
    pub(crate) cond: bool,
    pub(crate) conditioner: Conditioner,
    pub(crate) log_scale: LogScale,
    /// Multiplies the whole subnet output (0.1 in AllInOneBlock, else 1).
    pub(crate) output_scale: f64,
}

/// What the backward pass needs of one half call.
#[derive(Clone, Debug)]
pub(crate) struct HalfTape<F> {
    nets: Vec<MlpTape<F>>,
    /// `[s_raw, t]` per row after `output_scale` (`t` only for NICE), `m × width`.
    coeffs: Vec<F>,
    /// The active columns on the x side (the forward input), `m × l`.
    x_active: Vec<F>,
}

impl<F> HalfTape<F> {
    pub(crate) fn floats(&self) -> usize {
        self.nets.iter().map(MlpTape::floats).sum::<usize>()
            + self.coeffs.len()
            + self.x_active.len()
    }
}

impl Half {
    fn shift_only(&self) -> bool {
        matches!(self.conditioner, Conditioner::Shift(_))
    }

    /// Per-row width of the coefficients: `2l`, or `l` for NICE.
    fn width(&self) -> usize {
        if self.shift_only() {
            self.active.1
        } else {
            2 * self.active.1
        }
    }

    /// `[passive columns, condition]`, `m × (l_passive + cond_dim)`.
    fn subnet_input<F: Float>(&self, batch: &Batch<'_, F>, state: &[F]) -> Vec<F> {
        let (p0, pl) = self.passive;
        let cc = if self.cond { batch.cond_dim } else { 0 };
        let mut u = Vec::with_capacity(batch.m * (pl + cc));
        for r in 0..batch.m {
            u.extend_from_slice(&state[r * batch.d + p0..r * batch.d + p0 + pl]);
            if self.cond {
                let c = batch.cond.expect("a conditional half needs the condition");
                u.extend_from_slice(&c[r * cc..(r + 1) * cc]);
            }
        }
        u
    }

    /// The coefficients `[s_raw, t]` (scaled), with the subnet tapes if `record`.
    fn coefficients<F: Float>(
        &self,
        params: &[F],
        batch: &Batch<'_, F>,
        state: &[F],
        record: bool,
    ) -> (Vec<F>, Vec<MlpTape<F>>) {
        let m = batch.m;
        let u = self.subnet_input(batch, state);
        let mut tapes = Vec::new();
        let mut run = |net: &Mlp, u: Vec<F>| {
            let mut tape = MlpTape::default();
            let out = net.forward(params, u, m, record.then_some(&mut tape));
            if record {
                tapes.push(tape);
            }
            out
        };
        let mut coeffs = match &self.conditioner {
            Conditioner::Joint(net) | Conditioner::Shift(net) => run(net, u),
            Conditioner::Split { s, t } => {
                let l = self.active.1;
                let so = run(s, u.clone());
                let to = run(t, u);
                let mut c = Vec::with_capacity(m * 2 * l);
                for r in 0..m {
                    c.extend_from_slice(&so[r * l..(r + 1) * l]);
                    c.extend_from_slice(&to[r * l..(r + 1) * l]);
                }
                c
            }
        };
        if self.output_scale != 1.0 {
            let k = F::from_f64(self.output_scale);
            coeffs.iter_mut().for_each(|v| *v *= k);
        }
        (coeffs, tapes)
    }

    pub(crate) fn run<F: Float>(
        &self,
        params: &[F],
        batch: &Batch<'_, F>,
        state: &mut [F],
        logdet: &mut [F],
        rev: bool,
        record: bool,
    ) -> Option<HalfTape<F>> {
        let (a0, l) = self.active;
        let d = batch.d;
        let width = self.width();
        let (coeffs, nets) = self.coefficients(params, batch, state, record);
        let mut x_active = Vec::with_capacity(if record { batch.m * l } else { 0 });
        for r in 0..batch.m {
            let c = &coeffs[r * width..(r + 1) * width];
            let x = &mut state[r * d + a0..r * d + a0 + l];
            if record && !rev {
                x_active.extend_from_slice(x);
            }
            if self.shift_only() {
                for (x, &t) in x.iter_mut().zip(c) {
                    *x = if rev { *x - t } else { *x + t };
                }
            } else {
                let (s_raw, t) = c.split_at(l);
                let mut sum = F::ZERO;
                for ((x, &u), &t) in x.iter_mut().zip(s_raw).zip(t) {
                    let s = self.log_scale.apply(u).0;
                    sum += s;
                    *x = if rev {
                        (*x - t) * (-s).exp()
                    } else {
                        *x * s.exp() + t
                    };
                }
                logdet[r] += if rev { -sum } else { sum };
            }
            if record && rev {
                x_active.extend_from_slice(x);
            }
        }
        record.then_some(HalfTape {
            nets,
            coeffs,
            x_active,
        })
    }

    /// See `ops` module doc.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn backprop<F: Float>(
        &self,
        params: &[F],
        batch: &Batch<'_, F>,
        state: &mut [F],
        grad: &mut [F],
        grad_logdet: &[F],
        rev: bool,
        stored: Option<HalfTape<F>>,
        grads: &mut Grads<'_, F>,
    ) {
        let (m, d) = (batch.m, batch.d);
        let (a0, l) = self.active;
        let width = self.width();
        let tape = match stored {
            Some(tape) => {
                // Restore the input from the tape: x itself, or y = x·e^s + t.
                for r in 0..m {
                    let x = &tape.x_active[r * l..(r + 1) * l];
                    let dst = &mut state[r * d + a0..r * d + a0 + l];
                    if !rev {
                        dst.copy_from_slice(x);
                    } else {
                        let c = &tape.coeffs[r * width..(r + 1) * width];
                        self.forward_values(c, x, dst);
                    }
                }
                tape
            }
            None => {
                let mut scratch = vec![F::ZERO; m];
                self.run(params, batch, state, &mut scratch, !rev, true)
                    .expect("recorded")
            }
        };
        // dL/d(coefficients), before the output scale.
        let mut g_coeffs = vec![F::ZERO; m * width];
        for r in 0..m {
            let c = &tape.coeffs[r * width..(r + 1) * width];
            let x = &tape.x_active[r * l..(r + 1) * l];
            let g = &mut grad[r * d + a0..r * d + a0 + l];
            let gc = &mut g_coeffs[r * width..(r + 1) * width];
            let gld = grad_logdet[r];
            if self.shift_only() {
                for (gc, g) in gc.iter_mut().zip(g.iter()) {
                    *gc = if rev { -*g } else { *g };
                }
                continue;
            }
            let (s_raw, _) = c.split_at(l);
            let (gs, gt) = gc.split_at_mut(l);
            for j in 0..l {
                let (s, ds) = self.log_scale.apply(s_raw[j]);
                let gsj = if rev {
                    let e = (-s).exp();
                    let gx = g[j];
                    g[j] = gx * e;
                    gt[j] = -gx * e;
                    -gx * x[j] - gld
                } else {
                    let e = s.exp();
                    let gy = g[j];
                    g[j] = gy * e;
                    gt[j] = gy;
                    gy * x[j] * e + gld
                };
                gs[j] = gsj * ds;
            }
        }
        if self.output_scale != 1.0 {
            let k = F::from_f64(self.output_scale);
            g_coeffs.iter_mut().for_each(|v| *v *= k);
        }
        // Through the subnet(s) into [passive, condition].
        let g_input = match &self.conditioner {
            Conditioner::Joint(net) | Conditioner::Shift(net) => {
                net.backward(params, &tape.nets[0], g_coeffs, m, grads.params)
            }
            Conditioner::Split { s, t } => {
                let mut gs = Vec::with_capacity(m * l);
                let mut gt = Vec::with_capacity(m * l);
                for row in g_coeffs.chunks_exact(2 * l) {
                    gs.extend_from_slice(&row[..l]);
                    gt.extend_from_slice(&row[l..]);
                }
                let mut gi = s.backward(params, &tape.nets[0], gs, m, grads.params);
                let gi_t = t.backward(params, &tape.nets[1], gt, m, grads.params);
                gi.iter_mut().zip(&gi_t).for_each(|(a, &b)| *a += b);
                gi
            }
        };
        let (p0, pl) = self.passive;
        let cc = if self.cond { batch.cond_dim } else { 0 };
        let n_in = pl + cc;
        for r in 0..m {
            let gi = &g_input[r * n_in..(r + 1) * n_in];
            for (g, &v) in grad[r * d + p0..r * d + p0 + pl].iter_mut().zip(&gi[..pl]) {
                *g += v;
            }
            if let Some(gc) = grads.cond.as_deref_mut() {
                for (g, &v) in gc[r * cc..(r + 1) * cc].iter_mut().zip(&gi[pl..]) {
                    *g += v;
                }
            }
        }
    }

    /// y = x·e^s + t (or x + t) for one row's active columns.
    fn forward_values<F: Float>(&self, coeffs: &[F], x: &[F], y: &mut [F]) {
        let l = self.active.1;
        if self.shift_only() {
            for ((y, &x), &t) in y.iter_mut().zip(x).zip(coeffs) {
                *y = x + t;
            }
        } else {
            let (s_raw, t) = coeffs.split_at(l);
            for (((y, &x), &u), &t) in y.iter_mut().zip(x).zip(s_raw).zip(t) {
                *y = x * self.log_scale.apply(u).0.exp() + t;
            }
        }
    }
}
