//! A trainable chain: the operations of its blocks, one flat parameter vector, and the passes
//! x → z (forward), z → x (inverse) and their reverse-mode gradients.
//!
//! **Memory from invertibility.** [`Chain::backward`] walks the operations from the output
//! back to the input. Without tapes it recomputes each operation's input from its output with
//! the operation's inverse (for the forward pass) or forward map (for the inverse pass), so
//! only one operation's subnet activations are alive at a time and memory does not grow with
//! depth. With [`Tapes`] from [`Chain::run_recording`] it uses the stored activations instead
//! (the usual autodiff trade: memory grows with depth, no recomputation).

use crate::prelude::*;

use crate::error::{Error, Result};

use super::blocks::{self, BlockLayout};
use super::float::Float;
use super::mixing::Mixing;
use super::ops::affine::{AffineKind, ChannelAffine};
use super::ops::{Batch, Grads, Op, OpTape};
use super::params::ParamLayout;
use super::spec::{BlockKind, ChainSpec};
use crate::rng::Rng;

/// The chain.
#[derive(Clone, Debug)]
pub struct Chain<F> {
    spec: ChainSpec,
    pub(crate) ops: Vec<Op>,
    pub(crate) blocks: Vec<BlockLayout>,
    params: Vec<F>,
}

/// The activations a recorded pass stored, one tape per operation.
#[derive(Clone, Debug)]
pub struct Tapes<F> {
    rev: bool,
    tapes: Vec<OpTape<F>>,
}

impl<F> Tapes<F> {
    /// Floats held.
    pub fn floats(&self) -> usize {
        self.tapes.iter().map(OpTape::floats).sum()
    }
}

/// Gradients of a backward pass.
pub struct Gradients<'a, F> {
    /// dL/d(parameters), accumulated (same layout as [`Chain::params`]).
    pub params: &'a mut [F],
    /// dL/d(condition), `m × cond_dim`, accumulated, if wanted.
    pub cond: Option<&'a mut [F]>,
}

impl<F: Float> Chain<F> {
    /// Builds and initialises a chain (FrEIA-like initialisation, permutations from `seed`).
    pub fn new(spec: ChainSpec, seed: u64) -> Result<Chain<F>> {
        let d = spec.dim;
        if d < 2 {
            return Err(Error::Dims(
                "a trainable chain needs at least 2 dimensions".into(),
            ));
        }
        if spec.blocks.is_empty() {
            return Err(Error::Argument("a chain needs at least one block"));
        }
        for (i, b) in spec.blocks.iter().enumerate() {
            if b.cond && (spec.cond_dim == 0 || !b.kind.accepts_condition()) {
                return Err(Error::Dims(format!(
                    "block {i} ({}) cannot take a condition here (cond_dim = {})",
                    b.kind.freia_name(),
                    spec.cond_dim
                )));
            }
            if matches!(b.kind, BlockKind::ConditionalAffine { .. }) && !b.cond {
                return Err(Error::Dims(format!(
                    "block {i}: ConditionalAffineTransform needs the condition"
                )));
            }
        }
        let mut layout = ParamLayout::default();
        let mut structure_rng = Rng::new(seed, 1);
        let mut mixing = Mixing::new(d, &mut structure_rng);
        let mut ops = Vec::new();
        let blocks: Vec<BlockLayout> = spec
            .blocks
            .iter()
            .map(|&b| {
                blocks::build(
                    b,
                    d,
                    spec.cond_dim,
                    &spec.subnet,
                    &mut layout,
                    &mut mixing,
                    &mut ops,
                )
            })
            .collect();
        let mut params = vec![F::ZERO; layout.len()];
        let mut init_rng = Rng::new(seed, 2);
        for b in &blocks {
            blocks::initialise(b, &spec.subnet, &mut params, &mut init_rng);
        }
        Ok(Chain {
            spec,
            ops,
            blocks,
            params,
        })
    }

    pub fn spec(&self) -> &ChainSpec {
        &self.spec
    }

    pub fn dim(&self) -> usize {
        self.spec.dim
    }

    pub fn cond_dim(&self) -> usize {
        self.spec.cond_dim
    }

    pub fn params(&self) -> &[F] {
        &self.params
    }

    pub fn params_mut(&mut self) -> &mut [F] {
        &mut self.params
    }

    /// The same chain in another float type.
    pub fn cast<G: Float>(&self) -> Chain<G> {
        Chain {
            spec: self.spec.clone(),
            ops: self.ops.clone(),
            blocks: self.blocks.clone(),
            params: self
                .params
                .iter()
                .map(|v| G::from_f64(v.to_f64()))
                .collect(),
        }
    }

    fn batch<'a>(&self, rows: usize, cond: Option<&'a [F]>) -> Batch<'a, F> {
        let cc = self.spec.cond_dim;
        assert_eq!(
            cc > 0,
            cond.is_some(),
            "condition presence must match cond_dim"
        );
        if let Some(c) = cond {
            assert_eq!(c.len(), rows * cc, "condition is not rows × cond_dim");
        }
        Batch {
            m: rows,
            d: self.spec.dim,
            cond,
            cond_dim: cc,
        }
    }

    fn run(
        &self,
        state: &mut [F],
        cond: Option<&[F]>,
        logdet: &mut [F],
        rev: bool,
        record: bool,
    ) -> Vec<OpTape<F>> {
        let m = logdet.len();
        assert_eq!(state.len(), m * self.spec.dim, "state is not rows × dim");
        let batch = self.batch(m, cond);
        logdet.fill(F::ZERO);
        let mut tapes = Vec::new();
        let mut step = |op: &Op| {
            if let Some(t) = op.run(&self.params, &batch, state, logdet, rev, record) {
                tapes.push(t);
            }
        };
        if rev {
            self.ops.iter().rev().for_each(&mut step);
        } else {
            self.ops.iter().for_each(&mut step);
        }
        tapes
    }

    /// x → z in place, `logdet[r]` = log|det ∂z/∂x| of row r. `state` is `rows × dim` with
    /// rows = `logdet.len()`; `cond` is `rows × cond_dim` if the chain takes one.
    pub fn forward(&self, state: &mut [F], cond: Option<&[F]>, logdet: &mut [F]) {
        self.run(state, cond, logdet, false, false);
    }

    /// z → x in place, `logdet[r]` = log|det ∂x/∂z|.
    pub fn inverse(&self, state: &mut [F], cond: Option<&[F]>, logdet: &mut [F]) {
        self.run(state, cond, logdet, true, false);
    }

    /// A forward (`rev = false`) or inverse pass that stores every operation's activations.
    pub fn run_recording(
        &self,
        state: &mut [F],
        cond: Option<&[F]>,
        logdet: &mut [F],
        rev: bool,
    ) -> Tapes<F> {
        Tapes {
            rev,
            tapes: self.run(state, cond, logdet, rev, true),
        }
    }

    /// FrEIA's ActNorm data initialisation: runs `state` (`rows × dim`) forward and sets
    /// every ActNorm so that its output has zero mean and unit (unbiased) standard deviation
    /// per channel on these rows (docs/training.md §initialisation).
    pub fn data_init(&mut self, state: &mut [F], cond: Option<&[F]>) {
        let d = self.spec.dim;
        let m = state.len() / d;
        let mut logdet = vec![F::ZERO; m];
        for i in 0..self.ops.len() {
            if let Op::Affine(ChannelAffine {
                kind: AffineKind::ActNorm { log_scale, loc },
                ..
            }) = self.ops[i]
            {
                for c in 0..d {
                    let col = state.chunks_exact(d).map(|r| r[c].to_f64());
                    let mean = col.clone().sum::<f64>() / m as f64;
                    let var =
                        col.map(|v| (v - mean) * (v - mean)).sum::<f64>() / (m.max(2) - 1) as f64;
                    self.params[loc + c] = F::from_f64(mean);
                    self.params[log_scale + c] = F::from_f64(0.5 * var.max(1e-12).ln());
                }
            }
            let batch = self.batch(m, cond);
            self.ops[i].run(&self.params, &batch, state, &mut logdet, false, false);
        }
    }

    /// Reverse-mode gradient of a pass in direction `rev`.
    ///
    /// On entry `state` holds the pass's output and `grad` dL/d(output); `grad_logdet` is
    /// dL/d(logdet) per row. On return `state` holds the pass's input (recomputed, or
    /// restored from `tapes`), `grad` holds dL/d(input), and the parameter and condition
    /// gradients have been added to `out`.
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        rev: bool,
        state: &mut [F],
        grad: &mut [F],
        grad_logdet: &[F],
        cond: Option<&[F]>,
        out: Gradients<'_, F>,
        tapes: Option<Tapes<F>>,
    ) {
        let m = grad_logdet.len();
        assert_eq!(state.len(), m * self.spec.dim);
        assert_eq!(grad.len(), m * self.spec.dim);
        assert_eq!(out.params.len(), self.params.len());
        let batch = self.batch(m, cond);
        let mut grads = Grads {
            params: out.params,
            cond: out.cond,
        };
        let mut tapes = tapes.map(|t| {
            assert_eq!(t.rev, rev, "tapes recorded in the other direction");
            t.tapes
        });
        // Walk the operations in the reverse of the order the pass ran them.
        let order: Vec<usize> = if rev {
            (0..self.ops.len()).collect()
        } else {
            (0..self.ops.len()).rev().collect()
        };
        for i in order {
            let tape = tapes
                .as_mut()
                .map(|t| t.pop().expect("one tape per operation"));
            self.ops[i].backprop(
                &self.params,
                &batch,
                state,
                grad,
                grad_logdet,
                rev,
                tape,
                &mut grads,
            );
        }
    }
}
