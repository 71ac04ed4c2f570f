//! The float types the trainer runs in: `f32` for speed, `f64` for gradient checks.

use crate::train::prelude::*;

use core::fmt::Debug;
use core::iter::Sum;
use core::ops::{Add, AddAssign, Div, Mul, MulAssign, Neg, Sub, SubAssign};

/// What the trainer needs of a float: arithmetic, a few transcendental functions and a GEMM.
pub trait Float:
    Copy
    + Debug
    + Default
    + PartialOrd
    + Send
    + Sync
    + Sum
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + 'static
{
    const ZERO: Self;
    const ONE: Self;
    fn from_f64(v: f64) -> Self;
    fn to_f64(self) -> f64;
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn ln_1p(self) -> Self;
    fn tanh(self) -> Self;
    fn atan(self) -> Self;
    fn sqrt(self) -> Self;
    fn abs(self) -> Self;

    /// `C ← α·A·B + β·C` for an `m × k` A and a `k × n` B, all given by (row, column) strides,
    /// so transposed operands cost nothing (matrixmultiply's `sgemm`/`dgemm`).
    #[allow(clippy::too_many_arguments)]
    fn gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: (&[Self], isize, isize),
        b: (&[Self], isize, isize),
        beta: Self,
        c: (&mut [Self], isize, isize),
    );

    fn sigmoid(self) -> Self {
        Self::ONE / (Self::ONE + (-self).exp())
    }

    fn max(self, other: Self) -> Self {
        if self >= other { self } else { other }
    }
}

/// Checks that every strided access of a GEMM operand stays inside its slice.
fn check_extent<T>(slice: &[T], rows: usize, cols: usize, rs: isize, cs: isize) {
    if rows == 0 || cols == 0 {
        return;
    }
    assert!(rs >= 0 && cs >= 0, "negative strides are not used");
    let last = (rows - 1) * rs as usize + (cols - 1) * cs as usize;
    assert!(last < slice.len(), "GEMM operand reaches past its slice");
}

macro_rules! impl_float {
    ($t:ty, $gemm:path) => {
        impl Float for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            #[inline]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline]
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            #[inline]
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            #[inline]
            fn ln_1p(self) -> Self {
                <$t>::ln_1p(self)
            }
            #[inline]
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
            #[inline]
            fn atan(self) -> Self {
                <$t>::atan(self)
            }
            #[inline]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            fn gemm(
                m: usize,
                k: usize,
                n: usize,
                alpha: Self,
                a: (&[Self], isize, isize),
                b: (&[Self], isize, isize),
                beta: Self,
                c: (&mut [Self], isize, isize),
            ) {
                if m == 0 || n == 0 {
                    return;
                }
                check_extent(a.0, m, k, a.1, a.2);
                check_extent(b.0, k, n, b.1, b.2);
                check_extent(c.0, m, n, c.1, c.2);
                // SAFETY: every index the kernel touches, (i·rs + j·cs) for i < rows and
                // j < cols, is inside its slice (checked above); C is a unique borrow and
                // does not alias A or B.
                unsafe {
                    $gemm(
                        m,
                        k,
                        n,
                        alpha,
                        a.0.as_ptr(),
                        a.1,
                        a.2,
                        b.0.as_ptr(),
                        b.1,
                        b.2,
                        beta,
                        c.0.as_mut_ptr(),
                        c.1,
                        c.2,
                    )
                }
            }
        }
    };
}

impl_float!(f32, matrixmultiply::sgemm);
impl_float!(f64, matrixmultiply::dgemm);
