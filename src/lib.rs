//! innfer: an embeddable posterior sampler for invertible neural networks.
//!
//! Data flow one way: bytes → [`Model`] (validated, packed, immutable) → [`Session`] (scratch
//! memory and random stream for a maximum batch) → samples. After a session exists, its calls
//! allocate nothing.
//!
//! ```no_run
//! # fn main() -> Result<(), innfer::Error> {
//! let model = innfer::Model::from_file("models/gmm8_some.safetensors")?;
//! let mut session = innfer::Session::new(&model, 256)?;
//! session.reseed(42, 0);
//! let y = vec![0.0; model.layout().y_dim()];
//! let mut x = vec![0.0; 1000 * model.layout().x_dim()];
//! session.sample(&y, 1000, &mut x)?;
//! # Ok(()) }
//! ```
#![no_std]
#![forbid(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub(crate) mod blocks;
pub mod error;
pub mod ffi;
pub mod kernels;
#[cfg(feature = "std")]
pub mod metrics;
pub mod model;
#[cfg(feature = "ndarray")]
mod ndarray;
#[cfg(feature = "std")]
pub mod npy;
#[cfg(feature = "std")]
mod prelude;
#[cfg(feature = "std")]
pub mod rng;
pub mod session;
pub(crate) mod source;
#[cfg(feature = "std")]
pub mod tasks;
#[cfg(feature = "train")]
pub mod train;

#[cfg(all(feature = "baremetal-runtime", not(feature = "std")))]
mod baremetal;

pub use error::{Error, Result};
pub use kernels::gemm::Isa;
pub use model::{FORMAT_VERSION, FreiaVariant, Layout, LoadOptions, Model, WeightStorage};
pub use session::matrix::{MatMut, MatRef};
pub use session::{ARENA_ALIGN, Session, SummaryBuffers, SummaryReport};
