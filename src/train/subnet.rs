//! Subnets: `Linear → act → Linear → … → Linear`, the FrEIA `subnet_constructor` MLP, with
//! reverse-mode gradients. Parameters live in the chain's flat parameter vector; a layer
//! only knows its offsets.

use crate::prelude::*;

use super::activation::Activation;
use super::float::Float;
use super::params::ParamLayout;
use crate::rng::Rng;

/// One Linear layer: weight `[n_out, n_in]` at `weight`, bias `[n_out]` at `bias`.
#[derive(Clone, Debug)]
pub(crate) struct Linear {
    pub(crate) n_in: usize,
    pub(crate) n_out: usize,
    pub(crate) weight: usize,
    pub(crate) bias: usize,
}

/// A subnet.
#[derive(Clone, Debug)]
pub(crate) struct Mlp {
    pub(crate) layers: Vec<Linear>,
    pub(crate) activation: Activation,
}

/// What the backward pass of one subnet call needs: every layer's input, and the
/// pre-activations of the hidden layers.
#[derive(Clone, Debug, Default)]
pub(crate) struct MlpTape<F> {
    inputs: Vec<Vec<F>>,
    pre_activations: Vec<Vec<F>>,
}

impl<F> MlpTape<F> {
    pub(crate) fn floats(&self) -> usize {
        self.inputs
            .iter()
            .chain(&self.pre_activations)
            .map(Vec::len)
            .sum()
    }
}

impl Mlp {
    /// Allocates `n_in → hidden… → n_out` in `layout`.
    pub(crate) fn new(
        layout: &mut ParamLayout,
        n_in: usize,
        hidden: &[usize],
        n_out: usize,
        activation: Activation,
    ) -> Mlp {
        let widths: Vec<usize> = core::iter::once(n_in)
            .chain(hidden.iter().copied())
            .chain(core::iter::once(n_out))
            .collect();
        let layers = widths
            .windows(2)
            .map(|w| Linear {
                n_in: w[0],
                n_out: w[1],
                weight: layout.take(w[0] * w[1]),
                bias: layout.take(w[1]),
            })
            .collect();
        Mlp { layers, activation }
    }

    /// PyTorch's `nn.Linear` default, U(±1/√fan_in) for weight and bias, with the last
    /// layer's values multiplied by `last_scale` so that a fresh block is close to the identity.
    pub(crate) fn init<F: Float>(&self, params: &mut [F], rng: &mut Rng, last_scale: f64) {
        let last = self.layers.len() - 1;
        for (i, l) in self.layers.iter().enumerate() {
            let bound = 1.0 / (l.n_in as f64).sqrt();
            let scale = if i == last { last_scale } else { 1.0 };
            let n = l.n_in * l.n_out;
            for p in &mut params[l.weight..l.weight + n] {
                *p = F::from_f64(rng.uniform_in(-bound, bound) * scale);
            }
            for p in &mut params[l.bias..l.bias + l.n_out] {
                *p = F::from_f64(rng.uniform_in(-bound, bound) * scale);
            }
        }
    }

    /// `FrEIA`-style layer list: `0:Linear 1:ReLU 2:Linear`.
    pub(crate) fn format_spec(&self) -> String {
        let mut items = Vec::new();
        for (i, _) in self.layers.iter().enumerate() {
            items.push(format!("{}:Linear", 2 * i));
            if i + 1 < self.layers.len() {
                items.push(format!("{}:{}", 2 * i + 1, self.activation.format_name()));
            }
        }
        items.join(" ")
    }

    /// Runs `m` rows of `input` (`m × n_in`, contiguous) to `m × n_out`; records a tape if asked.
    pub(crate) fn forward<F: Float>(
        &self,
        params: &[F],
        input: Vec<F>,
        m: usize,
        tape: Option<&mut MlpTape<F>>,
    ) -> Vec<F> {
        let last = self.layers.len() - 1;
        let mut inputs = Vec::new();
        let mut pre = Vec::new();
        let mut h = input;
        for (i, l) in self.layers.iter().enumerate() {
            let mut z = vec![F::ZERO; m * l.n_out];
            F::linear(
                m,
                l.n_in,
                l.n_out,
                &h,
                &params[l.weight..l.weight + l.n_in * l.n_out],
                &params[l.bias..l.bias + l.n_out],
                &mut z,
            );
            if tape.is_some() {
                inputs.push(h);
            }
            if i == last {
                h = z;
            } else {
                let a = if self.activation == Activation::Relu {
                    z.iter()
                        .map(|&v| if v > F::ZERO { v } else { F::ZERO })
                        .collect()
                } else {
                    z.iter().map(|&v| self.activation.apply(v)).collect()
                };
                if tape.is_some() {
                    pre.push(z);
                }
                h = a;
            }
        }
        if let Some(t) = tape {
            t.inputs = inputs;
            t.pre_activations = pre;
        }
        h
    }

    /// Given dL/d(output) (`m × n_out`), adds dL/d(parameters) into `grads` and returns
    /// dL/d(input) (`m × n_in`).
    pub(crate) fn backward<F: Float>(
        &self,
        params: &[F],
        tape: &MlpTape<F>,
        grad_out: Vec<F>,
        m: usize,
        grads: &mut [F],
    ) -> Vec<F> {
        let mut g = grad_out;
        for (i, l) in self.layers.iter().enumerate().rev() {
            if i + 1 < self.layers.len() {
                if self.activation == Activation::Relu {
                    // A select, not a branch: the sign of a pre-activation is a coin flip, and
                    // a conditional store mispredicts half the time (this loop was ~20 % of
                    // training time as a branch).
                    for (gv, &z) in g.iter_mut().zip(&tape.pre_activations[i]) {
                        *gv = if z > F::ZERO { *gv } else { F::ZERO };
                    }
                } else {
                    for (gv, &z) in g.iter_mut().zip(&tape.pre_activations[i]) {
                        *gv *= self.activation.derivative(z);
                    }
                }
            }
            let input = &tape.inputs[i];
            let (n_in, n_out) = (l.n_in, l.n_out);
            // dW += Gᵀ·H   (n_out × n_in)
            F::gemm(
                n_out,
                m,
                n_in,
                F::ONE,
                (&g, 1, n_out as isize),
                (input, n_in as isize, 1),
                F::ONE,
                (
                    &mut grads[l.weight..l.weight + n_in * n_out],
                    n_in as isize,
                    1,
                ),
            );
            let gb = &mut grads[l.bias..l.bias + n_out];
            for row in g.chunks_exact(n_out) {
                for (b, &v) in gb.iter_mut().zip(row) {
                    *b += v;
                }
            }
            // dH = G·W   (m × n_in)
            let mut g_in = vec![F::ZERO; m * n_in];
            F::linear_input_grad(
                m,
                n_in,
                n_out,
                &g,
                &params[l.weight..l.weight + n_in * n_out],
                &mut g_in,
            );
            g = g_in;
        }
        g
    }
}
