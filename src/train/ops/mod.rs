//! The invertible operations a chain is made of. A FrEIA block is one or more of them (GLOW is
//! two coupling halves; AllInOneBlock is a half, a global affine and a permutation).
//!
//! Every operation maps the `m × d` state in place, in either direction, and has a
//! `backprop`: given the state at the operation's *output* and dL/d(output), it restores the
//! state to the operation's *input* (by running the inverse, or from a stored tape) and turns
//! the gradient into dL/d(input), adding parameter gradients on the way. That one contract is
//! what lets the chain backpropagate without storing activations.

use crate::prelude::*;

pub(crate) mod affine;
pub(crate) mod half;
pub(crate) mod permute;

use super::float::Float;

/// The rows one call works on.
pub(crate) struct Batch<'a, F> {
    pub(crate) m: usize,
    pub(crate) d: usize,
    /// `m × cond_dim` condition rows, if the chain takes a condition.
    pub(crate) cond: Option<&'a [F]>,
    pub(crate) cond_dim: usize,
}

/// Gradient sinks of one backward pass.
pub(crate) struct Grads<'a, F> {
    /// dL/d(parameters), same layout as the parameter vector (accumulated).
    pub(crate) params: &'a mut [F],
    /// dL/d(condition), `m × cond_dim` (accumulated), if wanted.
    pub(crate) cond: Option<&'a mut [F]>,
}

/// One operation.
#[derive(Clone, Debug)]
pub(crate) enum Op {
    Half(half::Half),
    Affine(affine::ChannelAffine),
    Permute(permute::Permutation),
}

/// What an operation recorded in a forward (or inverse) call for its backward pass.
#[derive(Clone, Debug)]
pub(crate) enum OpTape<F> {
    Half(half::HalfTape<F>),
    /// The operation's input state, `m × d`.
    Input(Vec<F>),
}

impl<F> OpTape<F> {
    pub(crate) fn floats(&self) -> usize {
        match self {
            OpTape::Half(t) => t.floats(),
            OpTape::Input(v) => v.len(),
        }
    }
}

impl Op {
    /// Runs the operation on the state; `rev` selects the inverse. Adds each row's
    /// log|det J| of the map applied to `logdet`. Records a tape if `record`.
    pub(crate) fn run<F: Float>(
        &self,
        params: &[F],
        batch: &Batch<'_, F>,
        state: &mut [F],
        logdet: &mut [F],
        rev: bool,
        record: bool,
    ) -> Option<OpTape<F>> {
        match self {
            Op::Half(h) => h
                .run(params, batch, state, logdet, rev, record)
                .map(OpTape::Half),
            Op::Affine(a) => {
                let tape = record.then(|| OpTape::Input(state.to_vec()));
                a.run(params, batch, state, logdet, rev);
                tape
            }
            Op::Permute(p) => {
                let tape = record.then(|| OpTape::Input(state.to_vec()));
                p.run(batch, state, rev);
                tape
            }
        }
    }

    /// See the module doc. `rev` is the direction the operation was run in; `grad_logdet`
    /// is dL/d(logdet) per row.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn backprop<F: Float>(
        &self,
        params: &[F],
        batch: &Batch<'_, F>,
        state: &mut [F],
        grad: &mut [F],
        grad_logdet: &[F],
        rev: bool,
        tape: Option<OpTape<F>>,
        grads: &mut Grads<'_, F>,
    ) {
        match (self, tape) {
            (Op::Half(h), Some(OpTape::Half(t))) => {
                h.backprop(params, batch, state, grad, grad_logdet, rev, Some(t), grads)
            }
            (Op::Half(h), None) => {
                h.backprop(params, batch, state, grad, grad_logdet, rev, None, grads)
            }
            (op, tape) => {
                match tape {
                    Some(OpTape::Input(input)) => state.copy_from_slice(&input),
                    Some(OpTape::Half(_)) => unreachable!("a half's tape given to another op"),
                    None => {
                        let mut scratch = vec![F::ZERO; batch.m];
                        op.run(params, batch, state, &mut scratch, !rev, false);
                    }
                }
                match op {
                    Op::Affine(a) => {
                        a.backprop(params, batch, state, grad, grad_logdet, rev, grads)
                    }
                    Op::Permute(p) => p.run(batch, grad, !rev),
                    Op::Half(_) => unreachable!(),
                }
            }
        }
    }
}
