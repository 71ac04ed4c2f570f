//! Numerical kernels: GEMM on pre-packed weights, scalar math, random normals.

pub mod gemm;
pub(crate) mod math;
pub mod normal;
