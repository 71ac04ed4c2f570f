//! Element-wise activations between a subnet's Linear layers, with their derivatives
//! (PyTorch semantics, docs/format.md §5).

use crate::prelude::*;

use super::float::Float;

/// An activation; `apply` and `derivative` both take the pre-activation value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Relu,
    LeakyRelu(f64),
    Tanh,
    Sigmoid,
    Elu(f64),
    Silu,
    /// `nn.Softplus(beta, threshold)`.
    Softplus {
        beta: f64,
        threshold: f64,
    },
}

impl Activation {
    #[inline]
    pub fn apply<F: Float>(self, z: F) -> F {
        match self {
            Activation::Relu => {
                if z > F::ZERO {
                    z
                } else {
                    F::ZERO
                }
            }
            Activation::LeakyRelu(s) => {
                if z >= F::ZERO {
                    z
                } else {
                    z * F::from_f64(s)
                }
            }
            Activation::Tanh => z.tanh(),
            Activation::Sigmoid => z.sigmoid(),
            Activation::Elu(alpha) => {
                if z > F::ZERO {
                    z
                } else {
                    F::from_f64(alpha) * (z.exp() - F::ONE)
                }
            }
            Activation::Silu => z * z.sigmoid(),
            Activation::Softplus { beta, threshold } => {
                let bz = z * F::from_f64(beta);
                if bz > F::from_f64(threshold) {
                    z
                } else {
                    bz.exp().ln_1p() / F::from_f64(beta)
                }
            }
        }
    }

    /// d apply / dz at the pre-activation `z` (PyTorch's choice at kinks: ReLU'(0) = 0).
    #[inline]
    pub fn derivative<F: Float>(self, z: F) -> F {
        match self {
            Activation::Relu => {
                if z > F::ZERO {
                    F::ONE
                } else {
                    F::ZERO
                }
            }
            Activation::LeakyRelu(s) => {
                if z >= F::ZERO {
                    F::ONE
                } else {
                    F::from_f64(s)
                }
            }
            Activation::Tanh => {
                let t = z.tanh();
                F::ONE - t * t
            }
            Activation::Sigmoid => {
                let s = z.sigmoid();
                s * (F::ONE - s)
            }
            Activation::Elu(alpha) => {
                if z > F::ZERO {
                    F::ONE
                } else {
                    F::from_f64(alpha) * z.exp()
                }
            }
            Activation::Silu => {
                let s = z.sigmoid();
                s * (F::ONE + z * (F::ONE - s))
            }
            Activation::Softplus { beta, threshold } => {
                let bz = z * F::from_f64(beta);
                if bz > F::from_f64(threshold) {
                    F::ONE
                } else {
                    bz.sigmoid()
                }
            }
        }
    }

    /// The layer kind as docs/format.md §5 spells it.
    pub fn format_name(self) -> String {
        match self {
            Activation::Relu => "ReLU".into(),
            Activation::LeakyRelu(s) => format!("LeakyReLU({s:?})"),
            Activation::Tanh => "Tanh".into(),
            Activation::Sigmoid => "Sigmoid".into(),
            Activation::Elu(a) => format!("ELU({a:?})"),
            Activation::Silu => "SiLU".into(),
            Activation::Softplus { beta, threshold } => {
                format!("Softplus({beta:?},{threshold:?})")
            }
        }
    }
}
