//! The compact training mode: train FrEIA INNs and cINNs in Rust and write them as innfer
//! model files (docs/training.md).
//!
//! - [`Chain`]: a trainable FrEIA chain (AllInOne, GLOW, RNVP, NICE, one-sided, conditional
//!   affine, ActNorm, PermuteRandom) generic over [`Float`], with reverse-mode gradients of
//!   the forward and the inverse pass that recompute activations from invertibility.
//! - [`export`]: the chain as an innfer `.safetensors` model (FrEIA `state_dict` names).
//! - [`inn`]: the paper's bidirectional INN objective.
//!
//! The simulators and the metrics a trained model is judged by are [`crate::tasks`] and
//! [`crate::metrics`] (no feature needed); [`TrainedModel`] is a
//! [`PosteriorSampler`](crate::metrics::PosteriorSampler).

pub mod activation;
mod blocks;
pub mod chain;
pub mod checkpoint;
pub mod export;
pub mod float;
pub mod inn;
mod mixing;
pub mod objective;
mod ops;
pub mod optim;
pub(crate) mod params;
pub mod spec;
pub(crate) mod subnet;
pub mod trainer;

pub use activation::Activation;
pub use chain::{Chain, Gradients, Tapes};
pub use float::Float;
pub use ops::half::ClampActivation;
pub use spec::{BlockKind, BlockSpec, ChainSpec, SubnetSpec};
// The trainer's data and simulators: `crate::tasks`, usable without this feature.
pub use crate::tasks::{Dataset, Labelling, Task};
pub use trainer::{EpochReport, Objective, TrainConfig, TrainedModel, prepare_y, train};
