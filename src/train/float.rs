//! The float types the trainer runs in: `f32` for speed, `f64` for gradient checks.

use crate::prelude::*;

use core::fmt::Debug;

use crate::kernels::gemm;
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

    /// A Linear layer, `Z = H·Wᵀ + b`: `m × n_in` rows H, the PyTorch weight `[n_out][n_in]`,
    /// the bias `[n_out]`, into `m × n_out` rows Z.
    fn linear(
        m: usize,
        n_in: usize,
        n_out: usize,
        h: &[Self],
        w: &[Self],
        b: &[Self],
        z: &mut [Self],
    ) {
        for row in z.chunks_exact_mut(n_out).take(m) {
            row.copy_from_slice(b);
        }
        // Wᵀ is W read with swapped strides.
        Self::gemm(
            m,
            n_in,
            n_out,
            Self::ONE,
            (h, n_in as isize, 1),
            (w, 1, n_in as isize),
            Self::ONE,
            (z, n_out as isize, 1),
        );
    }

    /// The input gradient of a Linear layer, `dH = G·W`: `m × n_out` rows G into `m × n_in`
    /// rows dH (overwritten).
    fn linear_input_grad(
        m: usize,
        n_in: usize,
        n_out: usize,
        g: &[Self],
        w: &[Self],
        dh: &mut [Self],
    ) {
        Self::gemm(
            m,
            n_out,
            n_in,
            Self::ONE,
            (g, n_out as isize, 1),
            (w, n_in as isize, 1),
            Self::ZERO,
            (dh, n_in as isize, 1),
        );
    }

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
    ($t:ty, $gemm:path $(, $extra:item)*) => {
        impl Float for $t {
            $($extra)*
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

// f32, the type training runs in, puts its Linear layers on the inference kernels: they read
// the activations' rows in place and pack only the (small) weight, where matrixmultiply packs
// the row-major activations with a strided gather on every call (a third of training time).
impl_float!(
    f32,
    matrixmultiply::sgemm,
    fn linear(m: usize, n_in: usize, n_out: usize, h: &[f32], w: &[f32], b: &[f32], z: &mut [f32]) {
        let w = gemm::PackedWeight::pack(w, n_out, n_in, gemm::WeightStorage::F32).unwrap();
        let h = gemm::Rows::new(h, m, n_in, n_in).unwrap();
        let z = gemm::RowsMut::new(z, m, n_out, n_out).unwrap();
        let product = gemm::Product::new(h, &w).bias(Some(b));
        gemm::gemm(gemm::Isa::detect_available(), product, z).unwrap();
    },
    fn linear_input_grad(
        m: usize,
        n_in: usize,
        n_out: usize,
        g: &[f32],
        w: &[f32],
        dh: &mut [f32],
    ) {
        // dH = G·W is a Linear layer with weight Wᵀ ([n_in][n_out]) and no bias.
        let storage = gemm::WeightStorage::F32;
        let wt = gemm::PackedWeight::pack_strided(w, n_in, n_out, (1, n_in), storage).unwrap();
        let g = gemm::Rows::new(g, m, n_out, n_out).unwrap();
        let dh = gemm::RowsMut::new(dh, m, n_in, n_in).unwrap();
        gemm::gemm(
            gemm::Isa::detect_available(),
            gemm::Product::new(g, &wt),
            dh,
        )
        .unwrap();
    }
);
impl_float!(f64, matrixmultiply::dgemm);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn random(rng: &mut Rng, n: usize) -> Vec<f32> {
        (0..n).map(|_| rng.uniform_in(-1.0, 1.0) as f32).collect()
    }

    /// f32's Linear layers run on the inference kernels, f64's on matrixmultiply: both are the
    /// same products, to f32 rounding, on shapes that cut through the kernels' 16-column panels.
    #[test]
    fn the_f32_linear_layers_compute_the_f64_products() {
        let mut rng = Rng::new(7, 0);
        for (m, n_in, n_out) in [(1, 1, 1), (7, 3, 5), (33, 17, 16), (64, 96, 4), (5, 4, 97)] {
            let h = random(&mut rng, m * n_in);
            let w = random(&mut rng, n_out * n_in);
            let b = random(&mut rng, n_out);
            let g = random(&mut rng, m * n_out);
            let wide = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();

            let mut z = vec![f32::NAN; m * n_out];
            f32::linear(m, n_in, n_out, &h, &w, &b, &mut z);
            let mut z64 = vec![0.0; m * n_out];
            f64::linear(m, n_in, n_out, &wide(&h), &wide(&w), &wide(&b), &mut z64);
            let mut dh = vec![f32::NAN; m * n_in];
            f32::linear_input_grad(m, n_in, n_out, &g, &w, &mut dh);
            let mut dh64 = vec![f64::NAN; m * n_in];
            f64::linear_input_grad(m, n_in, n_out, &wide(&g), &wide(&w), &mut dh64);

            for (what, got, want) in [("Z", &z, &z64), ("dH", &dh, &dh64)] {
                for (i, (&a, &e)) in got.iter().zip(want.iter()).enumerate() {
                    assert!(
                        (a as f64 - e).abs() <= 1e-5 * (1.0 + e.abs()),
                        "{what}[{i}] of {m}×{n_in}→{n_out}: {a} vs {e}"
                    );
                }
            }
        }
    }
}
