//! Posterior samples against an importance-sampled reference posterior under a box prior (the
//! msi tasks, docs/metrics.md §reference): the error of the mean in reference standard
//! deviations, the ratio of standard deviations, and MMD² in box-scaled coordinates; and the
//! count of samples outside the prior box.

use crate::prelude::*;

use super::mmd::mmd2_unbiased;
use super::stats::median;
use crate::tasks::BoxPosterior;

/// Whether `x` lies in the box (every coordinate finite and within its bounds rounded to f32,
/// inclusive).
pub fn inside_box(x: &[f32], lower: &[f64], upper: &[f64]) -> bool {
    x.iter()
        .zip(lower.iter().zip(upper))
        // The box as f32 samples can hold it: a bound such as 0.005 is not an f32, and a
        // sample on it (an f32 model's bound, docs/format.md §3.1) lies on the box's edge.
        .all(|(&v, (&lo, &hi))| v.is_finite() && lo as f32 <= v && v <= hi as f32)
}

/// Rows of `samples` (`n × dim`) outside the box; a sample with a NaN coordinate is outside.
pub fn count_outside_box(samples: &[f32], lower: &[f64], upper: &[f64]) -> usize {
    samples
        .chunks_exact(lower.len())
        .filter(|x| !inside_box(x, lower, upper))
        .count()
}

/// `samples` mapped to the unit box: (x − lo)/(hi − lo) per coordinate.
pub fn box_scaled(samples: &[f32], lower: &[f64], upper: &[f64]) -> Vec<f32> {
    samples
        .chunks_exact(lower.len())
        .flat_map(|x| {
            x.iter()
                .zip(lower.iter().zip(upper))
                .map(|(&v, (&lo, &hi))| ((v as f64 - lo) / (hi - lo)) as f32)
        })
        .collect()
}

/// One observation's samples against its reference posterior.
#[derive(Clone, Debug, PartialEq)]
pub struct ReferenceComparison {
    /// Per parameter: |mean of the samples − reference mean| / reference std.
    pub mean_error: Vec<f64>,
    /// Per parameter: std of the samples / reference std.
    pub std_ratio: Vec<f64>,
    /// Unbiased MMD² (the IMQ kernel of [`IMQ_WIDTHS`](super::IMQ_WIDTHS)) between the
    /// samples and the reference's resampled draws, both scaled to the unit box.
    pub mmd_box: f64,
    /// The reference's effective sample size.
    pub ess: f64,
}

/// Compares `samples` (`n × dim`) with the reference posterior `reference` of the box
/// [`lower`, `upper`]. Means and standard deviations of the samples are population moments
/// in f64, as the reference's weighted ones; a NaN sample makes them NaN.
pub fn compare_with_reference(
    samples: &[f32],
    reference: &BoxPosterior,
    lower: &[f64],
    upper: &[f64],
) -> ReferenceComparison {
    let dim = lower.len();
    let n = (samples.len() / dim) as f64;
    let mut mean_error = Vec::with_capacity(dim);
    let mut std_ratio = Vec::with_capacity(dim);
    for d in 0..dim {
        let col = samples.iter().skip(d).step_by(dim).map(|&v| v as f64);
        let m = col.clone().sum::<f64>() / n;
        let s = (col.map(|v| (v - m).powi(2)).sum::<f64>() / n).sqrt();
        mean_error.push((m - reference.mean[d]).abs() / reference.std[d]);
        std_ratio.push(s / reference.std[d]);
    }
    let mmd_box = if samples.len() >= 2 * dim && reference.samples.len() >= 2 * dim {
        mmd2_unbiased(
            &box_scaled(samples, lower, upper),
            &box_scaled(&reference.samples, lower, upper),
            dim,
        )
    } else {
        f64::NAN
    };
    ReferenceComparison {
        mean_error,
        std_ratio,
        mmd_box,
        ess: reference.ess,
    }
}

/// The comparisons of several observations.
#[derive(Clone, Debug, PartialEq)]
pub struct ReferenceChecks {
    pub per_observation: Vec<ReferenceComparison>,
}

impl ReferenceChecks {
    fn column(&self, f: impl Fn(&ReferenceComparison) -> f64) -> Vec<f64> {
        self.per_observation.iter().map(f).collect()
    }

    /// Per parameter: the median over observations of the mean error.
    pub fn median_mean_errors(&self) -> Vec<f64> {
        (0..self.dims())
            .map(|d| median(&self.column(|c| c.mean_error[d])))
            .collect()
    }

    /// Per parameter: the median over observations of the std ratio.
    pub fn median_std_ratios(&self) -> Vec<f64> {
        (0..self.dims())
            .map(|d| median(&self.column(|c| c.std_ratio[d])))
            .collect()
    }

    /// The box-scaled MMD² of each observation.
    pub fn mmd(&self) -> Vec<f64> {
        self.column(|c| c.mmd_box)
    }

    /// The effective sample size of each observation's reference.
    pub fn ess(&self) -> Vec<f64> {
        self.column(|c| c.ess)
    }

    pub fn dims(&self) -> usize {
        self.per_observation
            .first()
            .map_or(0, |c| c.mean_error.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_box_is_closed_and_nan_is_outside() {
        let (lo, hi) = ([0.0, 5.0], [1.0, 40.0]);
        assert!(inside_box(&[0.0, 40.0], &lo, &hi));
        assert!(!inside_box(&[-1e-7, 20.0], &lo, &hi));
        assert!(!inside_box(&[0.5, f32::NAN], &lo, &hi));
        let rows = [0.5, 20.0, 1.5, 20.0, 0.5, 4.0, f32::NAN, 10.0];
        assert_eq!(count_outside_box(&rows, &lo, &hi), 3);
        assert_eq!(box_scaled(&[0.25, 12.0], &lo, &hi), vec![0.25, 0.2]);
    }

    #[test]
    fn moments_are_compared_in_reference_standard_deviations() {
        let reference = BoxPosterior {
            samples: vec![0.4, 0.6, 0.5, 0.5],
            mean: vec![0.5],
            std: vec![0.1],
            ess: 3000.0,
            rounds: 1,
            draws: 10,
        };
        // Samples 0.55 ± 0.05: mean off by half a reference std, half as wide.
        let c = compare_with_reference(&[0.5, 0.6], &reference, &[0.0], &[1.0]);
        assert!((c.mean_error[0] - 0.5).abs() < 1e-6 && (c.std_ratio[0] - 0.5).abs() < 1e-6);
        assert!(c.mmd_box.is_finite());
        let checks = ReferenceChecks {
            per_observation: vec![c.clone(), c.clone(), c],
        };
        assert!((checks.median_mean_errors()[0] - 0.5).abs() < 1e-6);
        assert_eq!(checks.ess(), vec![3000.0; 3]);
    }
}
