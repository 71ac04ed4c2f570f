//! Simulation-based calibration (Talts et al. 2018) and the marginal calibration error of the
//! ICLR 2019 INN paper, both from the ranks of true values among posterior samples.
//!
//! For observations (x*, y) drawn from the prior predictive and S posterior samples of each,
//! the rank r of x*_d among the samples' d-th coordinates is uniform on 0..=S exactly when the
//! posterior is calibrated. The rank fraction u = (r + ½)/(S + 1) ∈ (0, 1) is then uniform on
//! the S + 1 mid-points, which the Kolmogorov–Smirnov test checks. x* lies in the central
//! q-interval of the samples when |u − ½| ≤ q/2; the coverage of those intervals minus q,
//! over q = 0.01 … 0.99, is the calibration error. Counting ranks instead of comparing x*
//! with sample quantiles avoids the small-S bias of quantiles (S draws' central interval
//! covers only ≈ q·(S − 1)/(S + 1) even for the exact posterior).

use crate::prelude::*;

use super::stats::{ks_uniform_pvalue, mean, median};
use crate::rng::Rng;

/// Number of confidence levels of the calibration error: q = 0.01, 0.02, …, 0.99.
pub const CALIBRATION_LEVELS: usize = 99;

/// The `i`-th confidence level, (i + 1)/100.
pub fn calibration_level(i: usize) -> f64 {
    (i + 1) as f64 / (CALIBRATION_LEVELS + 1) as f64
}

/// The index of the 68 % level.
const LEVEL_68: usize = 67;

/// The significance level of the SBC uniformity test over all dimensions together.
pub const SBC_ALPHA: f64 = 0.01;

/// Ranks of true values among posterior samples, per dimension and observation.
#[derive(Clone, Debug, PartialEq)]
pub struct Ranks {
    /// Posterior samples per observation, S.
    samples: usize,
    /// `per_dim[d][i]` ∈ 0..=S: samples of observation i whose x_d is below x*_d.
    per_dim: Vec<Vec<usize>>,
}

impl Ranks {
    /// No observations yet, for `dims` dimensions and `samples` samples per observation.
    pub fn new(dims: usize, samples: usize) -> Ranks {
        Ranks {
            samples,
            per_dim: vec![Vec::new(); dims],
        }
    }

    /// Ranks given directly: `per_dim[d][i]` ∈ 0..=`samples`.
    pub fn from_ranks(per_dim: Vec<Vec<usize>>, samples: usize) -> Ranks {
        debug_assert!(per_dim.iter().flatten().all(|&r| r <= samples));
        Ranks { samples, per_dim }
    }

    /// Adds one observation: its true value `truth` and its samples (`S × dims`). A sample
    /// coordinate that is NaN is not below the true value.
    pub fn push(&mut self, samples: &[f32], truth: &[f32]) {
        let dims = self.per_dim.len();
        debug_assert_eq!(samples.len(), self.samples * dims);
        for (d, ranks) in self.per_dim.iter_mut().enumerate() {
            ranks.push(
                samples
                    .chunks_exact(dims)
                    .filter(|row| row[d] < truth[d])
                    .count(),
            );
        }
    }

    pub fn dims(&self) -> usize {
        self.per_dim.len()
    }

    pub fn observations(&self) -> usize {
        self.per_dim.first().map_or(0, Vec::len)
    }

    /// Samples per observation, S.
    pub fn samples_per_observation(&self) -> usize {
        self.samples
    }

    /// The ranks of dimension `d`, one per observation.
    pub fn of_dim(&self, d: usize) -> &[usize] {
        &self.per_dim[d]
    }

    /// The rank fractions u = (r + ½)/(S + 1) of dimension `d`.
    pub fn fractions(&self, d: usize) -> Vec<f64> {
        let s = self.samples as f64;
        self.per_dim[d]
            .iter()
            .map(|&r| (r as f64 + 0.5) / (s + 1.0))
            .collect()
    }

    /// Per dimension: the Kolmogorov–Smirnov p-value of the rank fractions against uniform.
    pub fn ks_pvalues(&self) -> Vec<f64> {
        (0..self.dims())
            .map(|d| ks_uniform_pvalue(self.fractions(d)))
            .collect()
    }

    /// The KS p-value every dimension must exceed: [`SBC_ALPHA`] split over the dimensions
    /// (Bonferroni).
    pub fn ks_threshold(&self) -> f64 {
        SBC_ALPHA / self.dims() as f64
    }

    /// Whether the ranks of every dimension pass the KS test of uniformity at
    /// [`Ranks::ks_threshold`].
    pub fn ks_passes(&self) -> bool {
        let threshold = self.ks_threshold();
        self.ks_pvalues().iter().all(|&p| p > threshold)
    }

    /// `coverage()[d][i]`: the fraction of observations whose x*_d lies in the central
    /// interval at level q = [`calibration_level`]`(i)`, i.e. |u − ½| ≤ q/2, decided exactly
    /// in integers as 100·|2r − S| ≤ 100·q·(S + 1).
    pub fn coverage(&self) -> Vec<Vec<f64>> {
        let s = self.samples as i64;
        self.per_dim
            .iter()
            .map(|ranks| {
                let n = ranks.len() as f64;
                (0..CALIBRATION_LEVELS)
                    .map(|i| {
                        let k = (i + 1) as i64;
                        let inside = ranks
                            .iter()
                            .filter(|&&r| 100 * (2 * r as i64 - s).abs() <= k * (s + 1))
                            .count();
                        inside as f64 / n
                    })
                    .collect()
            })
            .collect()
    }

    /// Per dimension: |coverage − q| at each of the 99 levels q.
    fn calibration_gaps(&self) -> Vec<Vec<f64>> {
        self.coverage()
            .iter()
            .map(|c| {
                c.iter()
                    .enumerate()
                    .map(|(i, v)| (v - calibration_level(i)).abs())
                    .collect()
            })
            .collect()
    }

    /// Per dimension: the median calibration error, the median over the 99 levels q of
    /// |coverage − q|.
    pub fn median_calibration_errors(&self) -> Vec<f64> {
        self.calibration_gaps().iter().map(|g| median(g)).collect()
    }

    /// Per dimension: the mean calibration error, the mean over the 99 levels q of
    /// |coverage − q| (the ICLR 2019 paper's calibration error, docs/metrics.md
    /// §calibration).
    pub fn mean_calibration_errors(&self) -> Vec<f64> {
        self.calibration_gaps().iter().map(|g| mean(g)).collect()
    }

    /// Per dimension: coverage − q at q = 0.68 (positive: the posterior is too wide there).
    pub fn calibration_errors_at_68(&self) -> Vec<f64> {
        self.coverage()
            .iter()
            .map(|c| c[LEVEL_68] - calibration_level(LEVEL_68))
            .collect()
    }
}

/// The 95th percentile of the worst-dimension median calibration error of an *exact*
/// posterior (ranks uniform on 0..=S) with `n_obs` observations of `s` samples in `dims`
/// dimensions: below it, a calibration error cannot be told from sampling noise. Monte Carlo
/// over 100 replicates, fixed seed.
pub fn calibration_noise_floor(n_obs: usize, s: usize, dims: usize) -> f64 {
    const REPLICATES: usize = 100;
    let mut rng = Rng::new(0xca1, 0);
    let mut worst: Vec<f64> = (0..REPLICATES)
        .map(|_| {
            let per_dim = (0..dims)
                .map(|_| (0..n_obs).map(|_| rng.below(s + 1)).collect())
                .collect();
            Ranks::from_ranks(per_dim, s)
                .median_calibration_errors()
                .into_iter()
                .fold(0.0, f64::max)
        })
        .collect();
    worst.sort_by(f64::total_cmp);
    worst[REPLICATES * 95 / 100]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rank_counts_the_samples_below_the_true_value() {
        let mut r = Ranks::new(2, 3);
        // Three samples of (x0, x1); truth (0.5, 10): x0 below in two, x1 below in all three;
        // a NaN coordinate is never below.
        r.push(&[0.0, 1.0, 1.0, 2.0, 0.2, f32::NAN], &[0.5, 10.0]);
        assert_eq!(r.of_dim(0), &[2]);
        assert_eq!(r.of_dim(1), &[2]);
        // Ties are not below.
        r.push(&[0.5, 10.0, 0.5, 10.0, 0.5, 10.0], &[0.5, 10.0]);
        assert_eq!(r.of_dim(0), &[2, 0]);
        assert_eq!(r.observations(), 2);
        assert_eq!(r.fractions(0), vec![2.5 / 4.0, 0.5 / 4.0]);
    }

    #[test]
    fn coverage_counts_ranks_inside_each_central_interval() {
        // S = 9: u = (r + ½)/10; the central q-interval holds |2r − 9| ≤ 10·q.
        // r = 4 or 5 (u = 0.45, 0.55) are inside from q = 0.1; r = 0 (u = 0.05) from q = 0.9.
        let r = Ranks::from_ranks(vec![vec![4, 5, 0, 9]], 9);
        let c = &r.coverage()[0];
        assert_eq!(c[8], 0.0); // q = 0.09
        assert_eq!(c[9], 0.5); // q = 0.10: ranks 4 and 5
        assert_eq!(c[88], 0.5); // q = 0.89
        assert_eq!(c[89], 1.0); // q = 0.90: ranks 0 and 9 too
        // The boundary is inclusive and exact: |2·4 − 9| = 1 ≤ 0.1·10.
        assert_eq!(calibration_level(9), 0.1);
    }

    #[test]
    fn the_median_calibration_error_of_known_coverage() {
        // One observation at rank 5 of S = 9 (u = 0.55): coverage 0 for q < 0.1, 1 from there,
        // so |coverage − q| is q for q = 0.01…0.09 and 1 − q for q = 0.10…0.99; the median of
        // those 99 values is the 50th smallest, 1 − 0.59 = 0.41.
        let r = Ranks::from_ranks(vec![vec![5]], 9);
        assert!((r.median_calibration_errors()[0] - 0.41).abs() < 1e-12);
        // Their mean: (Σ_{q<0.1} q + Σ_{q≥0.1} (1 − q))/99 = (0.45 + 40.95)/99.
        assert!((r.mean_calibration_errors()[0] - 41.4 / 99.0).abs() < 1e-12);
        // At q = 0.68 the coverage is 1: error +0.32.
        assert!((r.calibration_errors_at_68()[0] - 0.32).abs() < 1e-12);
    }

    #[test]
    // Too slow under Miri (more than 10 s interpreted; scripts/miri.sh runs the rest).
    #[cfg_attr(miri, ignore)]
    fn uniform_ranks_are_calibrated_and_piled_up_ones_are_not() {
        // Every rank 0..=S once: coverage of level q is the share of the S + 1 mid-points
        // within q/2 of ½, within 1/(S + 1) of q.
        let s = 999;
        let uniform = Ranks::from_ranks(vec![(0..=s).collect()], s);
        assert!(uniform.median_calibration_errors()[0] <= 1.0 / (s + 1) as f64);
        assert!(uniform.ks_pvalues()[0] > 0.99);
        assert!(uniform.ks_passes());
        // Every true value in the middle: an overdispersed posterior, coverage 1 everywhere.
        let middle = Ranks::from_ranks(vec![vec![s / 2; 1000]], s);
        assert!(middle.median_calibration_errors()[0] > 0.4);
        assert!(middle.ks_pvalues()[0] < 1e-10);
        assert!(!middle.ks_passes());
    }

    #[test]
    fn the_ks_threshold_is_bonferroni_split() {
        assert_eq!(Ranks::new(4, 10).ks_threshold(), 0.0025);
        assert_eq!(Ranks::new(1, 10).ks_threshold(), SBC_ALPHA);
    }

    #[test]
    // Too slow under Miri (more than 10 s interpreted; scripts/miri.sh runs the rest).
    #[cfg_attr(miri, ignore)]
    fn the_noise_floor_shrinks_as_one_over_root_n() {
        let (a, b) = (
            calibration_noise_floor(250, 255, 4),
            calibration_noise_floor(4000, 255, 4),
        );
        // 16× the observations: a quarter of the floor, up to Monte Carlo noise.
        assert!((0.18..0.35).contains(&(b / a)), "{a} → {b}");
        assert!(a > 0.03 && b < 0.015, "{a}, {b}");
    }
}
