//! The architecture of a trainable chain: which FrEIA blocks, in which order, with which
//! subnets. Everything a `SequenceINN` constructor call would say.

use crate::prelude::*;

use super::activation::Activation;
use super::ops::half::ClampActivation;

/// A FrEIA block type with its hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BlockKind {
    /// `AllInOneBlock(affine_clamping = clamp)`, FrEIA head: SOFTPLUS global affine
    /// (initialised to Ψ = 1), hard random permutation, `α·tanh(0.1a/α)` soft clamp.
    AllInOne {
        clamp: f64,
    },
    Glow {
        clamp: f64,
        activation: ClampActivation,
    },
    Rnvp {
        clamp: f64,
        activation: ClampActivation,
    },
    Nice,
    OneSided {
        clamp: f64,
        activation: ClampActivation,
    },
    /// Needs a condition.
    ConditionalAffine {
        clamp: f64,
        activation: ClampActivation,
    },
    /// FrEIA head ActNorm (`log_scale`, `loc`), data-initialised by the trainer.
    ActNorm,
    /// A fixed random permutation.
    PermuteRandom,
}

impl BlockKind {
    /// FrEIA's class name.
    pub fn freia_name(&self) -> &'static str {
        match self {
            BlockKind::AllInOne { .. } => "AllInOneBlock",
            BlockKind::Glow { .. } => "GLOWCouplingBlock",
            BlockKind::Rnvp { .. } => "RNVPCouplingBlock",
            BlockKind::Nice => "NICECouplingBlock",
            BlockKind::OneSided { .. } => "AffineCouplingOneSided",
            BlockKind::ConditionalAffine { .. } => "ConditionalAffineTransform",
            BlockKind::ActNorm => "ActNorm",
            BlockKind::PermuteRandom => "PermuteRandom",
        }
    }

    /// Whether the block can receive a condition.
    pub fn accepts_condition(&self) -> bool {
        !matches!(self, BlockKind::ActNorm | BlockKind::PermuteRandom)
    }
}

/// One block of the chain.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BlockSpec {
    pub kind: BlockKind,
    /// Whether it receives the condition (SequenceINN's `cond=0`).
    pub cond: bool,
}

/// The subnet every block uses: `Linear(n_in, h₁) act … Linear(h_k, n_out)`.
#[derive(Clone, Debug, PartialEq)]
pub struct SubnetSpec {
    pub hidden: Vec<usize>,
    pub activation: Activation,
    /// Multiplies the initial weights and biases of the last layer (≪ 1: blocks start near
    /// the identity).
    pub last_layer_scale: f64,
}

impl Default for SubnetSpec {
    fn default() -> Self {
        SubnetSpec {
            hidden: vec![128, 128],
            activation: Activation::Relu,
            last_layer_scale: 0.1,
        }
    }
}

/// A whole chain.
#[derive(Clone, Debug, PartialEq)]
pub struct ChainSpec {
    pub dim: usize,
    pub cond_dim: usize,
    pub blocks: Vec<BlockSpec>,
    pub subnet: SubnetSpec,
}

impl ChainSpec {
    /// `n` conditional AllInOneBlocks (clamp 2), the FrEIA cINN recipe.
    pub fn all_in_one(dim: usize, cond_dim: usize, n: usize, subnet: SubnetSpec) -> ChainSpec {
        ChainSpec {
            dim,
            cond_dim,
            blocks: vec![
                BlockSpec {
                    kind: BlockKind::AllInOne { clamp: 2.0 },
                    cond: cond_dim > 0,
                };
                n
            ],
            subnet,
        }
    }
}
