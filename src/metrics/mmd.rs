//! The maximum mean discrepancy between two sample sets, the INN paper's Err_post.

use crate::prelude::*;

/// Widths h of the inverse-multiquadric kernel k(a, b) = Σ_h h² / (h² + ‖a − b‖²), the
/// ICLR 2019 paper's kernel.
pub const IMQ_WIDTHS: [f64; 3] = [0.05, 0.2, 0.9];

fn imq(a: &[f32], b: &[f32]) -> f64 {
    let d2: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum();
    IMQ_WIDTHS.iter().map(|h| h * h / (h * h + d2)).sum()
}

/// The unbiased estimate of MMD² between the sample sets `a` and `b` (rows of `dim`) with the
/// kernel of [`IMQ_WIDTHS`]: the mean kernel over distinct pairs within `a`, plus that within
/// `b`, minus twice the mean over all pairs across. Zero in expectation for equal
/// distributions (so it can be negative); needs two rows in each set.
pub fn mmd2_unbiased(a: &[f32], b: &[f32], dim: usize) -> f64 {
    let ra: Vec<&[f32]> = a.chunks_exact(dim).collect();
    let rb: Vec<&[f32]> = b.chunks_exact(dim).collect();
    let within = |r: &[&[f32]]| {
        let n = r.len() as f64;
        let mut s = 0.0;
        for i in 0..r.len() {
            for j in i + 1..r.len() {
                s += 2.0 * imq(r[i], r[j]);
            }
        }
        s / (n * (n - 1.0))
    };
    let mut cross = 0.0;
    for x in &ra {
        for y in &rb {
            cross += imq(x, y);
        }
    }
    within(&ra) + within(&rb) - 2.0 * cross / (ra.len() * rb.len()) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel at squared distance d2.
    fn k(d2: f64) -> f64 {
        IMQ_WIDTHS.iter().map(|h| h * h / (h * h + d2)).sum()
    }

    #[test]
    fn the_kernel_is_three_at_zero_distance() {
        assert_eq!(imq(&[0.5, -1.0], &[0.5, -1.0]), 3.0);
        // Distance 0.2: 0.0025/0.0425 + 0.04/0.08 + 0.81/0.85.
        let want = 0.0025 / 0.0425 + 0.5 + 0.81 / 0.85;
        assert!((imq(&[0.0], &[0.2]) - want).abs() < 1e-7);
    }

    #[test]
    fn mmd_of_two_small_sets_by_hand() {
        // a = {0, 1}, b = {0, 1}: within each k(1); across (k(0) + k(1) + k(1) + k(0))/4.
        let a = [0.0f32, 1.0];
        let want = 2.0 * k(1.0) - 2.0 * (2.0 * 3.0 + 2.0 * k(1.0)) / 4.0;
        assert!((mmd2_unbiased(&a, &a, 1) - want).abs() < 1e-12);
        assert!(want < 0.0, "unbiased: below zero for identical small sets");
        // a = {0, 1}, b = {3, 4}: within k(1) each; across k(9), k(16), k(4), k(9).
        let b = [3.0f32, 4.0];
        let want = 2.0 * k(1.0) - 2.0 * (k(9.0) + k(16.0) + k(4.0) + k(9.0)) / 4.0;
        assert!((mmd2_unbiased(&a, &b, 1) - want).abs() < 1e-12);
        // Symmetric in its arguments; rows of two.
        let (p, q) = ([0.0f32, 0.0, 1.0, 1.0], [0.0f32, 1.0, 2.0, 0.0]);
        assert!((mmd2_unbiased(&p, &q, 2) - mmd2_unbiased(&q, &p, 2)).abs() < 1e-12);
    }
}
