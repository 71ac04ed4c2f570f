//! Summary statistics of metric values: mean, quantiles (one median), standard error, and the
//! Kolmogorov–Smirnov test of uniformity. A NaN among the values makes the statistic NaN: a
//! failed value is never silently dropped.

use crate::prelude::*;

/// The arithmetic mean; NaN for no values.
pub fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.iter().sum::<f64>() / values.len() as f64
}

/// The mean and its standard error (the sample standard deviation, n − 1 in the denominator,
/// over √n); the error is NaN for fewer than two values.
pub fn mean_and_standard_error(values: &[f64]) -> (f64, f64) {
    let m = mean(values);
    let n = values.len() as f64;
    let var = values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1.0);
    let se = if values.len() < 2 {
        f64::NAN
    } else {
        (var / n).sqrt()
    };
    (m, se)
}

/// The q-quantile by linear interpolation between order statistics (numpy's default):
/// the value at position q·(n − 1) of the sorted values. NaN for no values or if any is NaN.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() || values.iter().any(|v| v.is_nan()) {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let t = pos - lo as f64;
    sorted[lo] * (1.0 - t) + sorted[hi] * t
}

/// The median: the middle value for an odd count, the mean of the two middle values for an
/// even one ([`quantile`] at ½).
pub fn median(values: &[f64]) -> f64 {
    quantile(values, 0.5)
}

/// The Kolmogorov–Smirnov statistic of values in (0, 1) against U(0, 1): the largest distance
/// between their empirical distribution function and the identity.
pub fn ks_statistic(mut u: Vec<f64>) -> f64 {
    u.sort_by(f64::total_cmp);
    let n = u.len() as f64;
    u.iter()
        .enumerate()
        .map(|(i, &v)| ((i as f64 + 1.0) / n - v).max(v - i as f64 / n))
        .fold(0.0, f64::max)
}

/// The asymptotic p-value of the Kolmogorov–Smirnov test of values in (0, 1) against U(0, 1),
/// with Stephens' small-sample correction: Q_KS((√n + 0.12 + 0.11/√n)·D), where
/// Q_KS(t) = 2 Σ_{k≥1} (−1)^{k−1} e^{−2k²t²}.
pub fn ks_uniform_pvalue(u: Vec<f64>) -> f64 {
    let n = u.len() as f64;
    let d = ks_statistic(u);
    let t = (n.sqrt() + 0.12 + 0.11 / n.sqrt()) * d;
    let mut p = 0.0;
    for k in 1..100 {
        let term = 2.0 * (-1f64).powi(k - 1) * (-2.0 * (k as f64).powi(2) * t * t).exp();
        p += term;
        if term.abs() < 1e-12 {
            break;
        }
    }
    p.clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_of_values_and_of_nothing() {
        assert_eq!(mean(&[1.0, 2.0, 6.0]), 3.0);
        assert!(mean(&[]).is_nan());
        assert!(mean(&[1.0, f64::NAN]).is_nan());
    }

    #[test]
    fn standard_error_uses_the_sample_variance() {
        // Deviations −1, 1, −1, 1 from the mean 1: sample variance 4/3, error √(4/3 / 4).
        let (m, se) = mean_and_standard_error(&[0.0, 2.0, 0.0, 2.0]);
        assert_eq!(m, 1.0);
        assert!((se - (1.0f64 / 3.0).sqrt()).abs() < 1e-15, "{se}");
        assert!(mean_and_standard_error(&[5.0]).1.is_nan());
    }

    #[test]
    fn quantiles_interpolate_between_order_statistics() {
        let v = [4.0, 1.0, 3.0, 2.0];
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert_eq!(quantile(&v, 1.0), 4.0);
        // Position 0.75 between 1 and 2; 2.25 between 3 and 4.
        assert_eq!(quantile(&v, 0.25), 1.75);
        assert_eq!(quantile(&v, 0.75), 3.25);
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[7.0]), 7.0);
        assert!(median(&[]).is_nan());
        assert!(median(&[1.0, f64::NAN, 3.0]).is_nan());
    }

    #[test]
    fn ks_statistic_is_the_largest_gap_to_the_uniform_cdf() {
        // One value at 0.5: the step from 0 to 1 at 0.5 is 0.5 from the identity either side.
        assert_eq!(ks_statistic(vec![0.5]), 0.5);
        // 0.1 and 0.2: the empirical CDF is 1 from 0.2 on, 0.8 above the identity there.
        assert!((ks_statistic(vec![0.2, 0.1]) - 0.8).abs() < 1e-15);
        // Evenly spread mid-points (i + ½)/n: the smallest possible gap, 1/(2n).
        let mid: Vec<f64> = (0..10).map(|i| (i as f64 + 0.5) / 10.0).collect();
        assert!((ks_statistic(mid) - 0.05).abs() < 1e-15);
    }

    #[test]
    fn ks_pvalue_is_the_kolmogorov_tail_at_the_corrected_statistic() {
        // One value at 0.5: t = (1 + 0.12 + 0.11)·0.5 = 0.615, Q_KS(0.615) = 0.84382…
        let q: f64 = (1..100)
            .map(|k| 2.0 * (-1f64).powi(k - 1) * (-2.0 * (k * k) as f64 * 0.615f64.powi(2)).exp())
            .sum();
        assert!((q - 0.843_82).abs() < 1e-5, "{q}");
        assert!((ks_uniform_pvalue(vec![0.5]) - q).abs() < 1e-12);
        // Well spread values pass, values crowded at one end fail.
        let spread: Vec<f64> = (0..1000).map(|i| (i as f64 + 0.5) / 1000.0).collect();
        assert!(ks_uniform_pvalue(spread) > 0.99);
        let crowded: Vec<f64> = (0..1000).map(|i| (i as f64 + 0.5) / 2000.0).collect();
        assert!(ks_uniform_pvalue(crowded) < 1e-6);
    }
}
