//! Numerical kernels: GEMM on pre-packed weights, 16-bit float conversions, scalar math,
//! random normals.

pub mod gemm;
pub mod half;
pub(crate) mod math;
pub mod normal;
