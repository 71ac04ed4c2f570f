//! Scalar f32 math used by the blocks, in one place so that a vectorised version can replace
//! it behind the same names. `libm` is pure Rust: the same bits on every target, with or
//! without `std`.

#[inline]
pub(crate) fn exp(x: f32) -> f32 {
    libm::expf(x)
}

#[inline]
pub(crate) fn expm1(x: f32) -> f32 {
    libm::expm1f(x)
}

#[inline]
pub(crate) fn ln(x: f32) -> f32 {
    libm::logf(x)
}

#[inline]
pub(crate) fn log1p(x: f32) -> f32 {
    libm::log1pf(x)
}

#[inline]
pub(crate) fn tanh(x: f32) -> f32 {
    libm::tanhf(x)
}

#[inline]
pub(crate) fn atan(x: f32) -> f32 {
    libm::atanf(x)
}

#[inline]
pub(crate) fn erf(x: f32) -> f32 {
    libm::erff(x)
}

/// `1 / (1 + e^{-x})`, as `torch.sigmoid`.
#[inline]
pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}
