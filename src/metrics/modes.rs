//! Mode masses of the 8-mode Gaussian mixture: how a posterior sample for one label divides
//! between that label's modes, and how much of it falls off them.

use crate::prelude::*;

use crate::tasks::{GMM8_CENTRES, GMM8_STD, Labelling};

/// A sample farther than this from every mode of its label is off-mode: 4σ, beyond which an
/// exact mixture component holds e⁻⁸ ≈ 0.03 % of its mass.
pub const OFF_MODE_RADIUS: f64 = 4.0 * GMM8_STD;

/// Mode masses of one label's posterior samples.
#[derive(Clone, Debug, PartialEq)]
pub struct ModeMasses {
    pub label: usize,
    /// (mode, fraction of the samples nearest to it, expected fraction) for each of the
    /// label's modes.
    pub modes: Vec<(usize, f64, f64)>,
    /// Fraction of the samples farther than [`OFF_MODE_RADIUS`] from every mode of the
    /// label, or not finite.
    pub off_mode: f64,
}

impl ModeMasses {
    /// The largest |got − expected| over the label's modes.
    pub fn worst_error(&self) -> f64 {
        self.modes
            .iter()
            .map(|&(_, got, want)| (got - want).abs())
            .fold(0.0, f64::max)
    }

    /// How many of the label's modes the samples found: those holding more than a quarter of
    /// their expected fraction.
    pub fn found(&self) -> usize {
        self.modes
            .iter()
            .filter(|&&(_, got, want)| got > 0.25 * want)
            .count()
    }
}

/// Mode masses of `samples` (rows of 2) for `label`: each finite sample counts toward the
/// nearest of the eight mode centres (the lower index on a tie); a sample with a NaN or
/// infinite coordinate counts toward no mode and as off-mode. Fractions are of all samples.
pub fn mode_masses(labelling: Labelling, label: usize, samples: &[f32]) -> ModeMasses {
    let modes = labelling.modes_of(label);
    let n = samples.len() / 2;
    let mut counts = [0usize; 8];
    let mut off = 0usize;
    for p in samples.chunks_exact(2) {
        if !(p[0].is_finite() && p[1].is_finite()) {
            off += 1;
            continue;
        }
        let dist = |m: usize| {
            let (cx, cy) = GMM8_CENTRES[m];
            ((p[0] as f64 - cx).powi(2) + (p[1] as f64 - cy).powi(2)).sqrt()
        };
        let nearest = (0..8)
            .min_by(|&a, &b| dist(a).total_cmp(&dist(b)))
            .unwrap_or(0);
        counts[nearest] += 1;
        if modes.iter().all(|&m| dist(m) > OFF_MODE_RADIUS) {
            off += 1;
        }
    }
    let fraction = |c: usize| c as f64 / n.max(1) as f64;
    ModeMasses {
        label,
        modes: modes
            .iter()
            .map(|&m| (m, fraction(counts[m]), 1.0 / modes.len() as f64))
            .collect(),
        off_mode: fraction(off),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn centre(m: usize) -> [f32; 2] {
        [GMM8_CENTRES[m].0 as f32, GMM8_CENTRES[m].1 as f32]
    }

    #[test]
    // Not under Miri: the origin's tie between eight equal distances needs exact `powi` and
    // `sqrt` results, which Miri perturbs on purpose (a rounding error of its choosing).
    #[cfg_attr(miri, ignore)]
    fn samples_count_toward_their_nearest_mode() {
        // Label 1 of `some` owns modes 4 and 5. Eight samples: three at mode 4, one at mode
        // 5, one 0.5 (2.5σ) from mode 5, two at mode 0 (another label's mode: off-mode for
        // label 1), and one at the origin, equidistant from all eight centres (mode 0, the
        // lower index, and off-mode).
        let mut s = Vec::new();
        for m in [4, 4, 4, 5] {
            s.extend(centre(m));
        }
        s.extend([centre(5)[0] + 0.5, centre(5)[1]]);
        s.extend(centre(0));
        s.extend(centre(0));
        s.extend([0.0, 0.0]);
        let m = mode_masses(Labelling::Some, 1, &s);
        assert_eq!(m.label, 1);
        assert_eq!(m.modes, vec![(4, 3.0 / 8.0, 0.5), (5, 2.0 / 8.0, 0.5)]);
        // Off-mode: the two at mode 0 and the origin (2.6 from modes 4 and 5).
        assert_eq!(m.off_mode, 3.0 / 8.0);
        assert_eq!(m.worst_error(), 0.5 - 2.0 / 8.0);
        assert_eq!(m.found(), 2);
    }

    #[test]
    fn the_off_mode_radius_is_four_sigma() {
        let c = centre(6);
        let inside = [c[0] + 0.79, c[1]];
        let outside = [c[0] + 0.81, c[1]];
        let m = mode_masses(Labelling::Some, 2, &[inside, outside].concat());
        assert_eq!(m.off_mode, 0.5);
        assert_eq!(m.modes, vec![(6, 1.0, 1.0)]);
    }

    #[test]
    fn a_non_finite_sample_is_off_mode_and_in_no_mode() {
        let c = centre(0);
        let s = [c[0], c[1], f32::NAN, c[1], c[0], f32::INFINITY, c[0], c[1]];
        let m = mode_masses(Labelling::All, 0, &s);
        assert_eq!(m.modes, vec![(0, 0.5, 1.0)]);
        assert_eq!(m.off_mode, 0.5);
    }

    #[test]
    fn a_mode_is_found_above_a_quarter_of_its_share() {
        let m = ModeMasses {
            label: 0,
            modes: vec![
                (0, 0.5, 0.25),
                (1, 0.4, 0.25),
                (2, 0.07, 0.25),
                (3, 0.03, 0.25),
            ],
            off_mode: 0.0,
        };
        // 0.07 > 0.0625 is found, 0.03 is not.
        assert_eq!(m.found(), 3);
    }
}
