//! Metrics of the inverse-kinematics arm: how well samples re-simulate to the observed end
//! point (the INN paper's Err_resim), and which modes of the exact posterior they populate.

use crate::prelude::*;

use crate::tasks::{ARM_MODES, arm_forward, arm_mode};

/// The re-simulation errors of arm samples (`n × 4`) for the observed end point `y`: the mean
/// of ‖f(x̂) − y*‖² (the INN paper's Err_resim) and the mean of ‖f(x̂) − y*‖ (what Kruse et
/// al.'s code reports). NaN samples make both NaN.
pub fn resimulation_error(samples: &[f32], y: &[f32]) -> (f64, f64) {
    let (mut squared, mut norm) = (Vec::new(), Vec::new());
    for row in samples.chunks_exact(4) {
        let x: Vec<f64> = row.iter().map(|&v| v as f64).collect();
        let e = arm_forward(&x);
        let d2 = (e[0] - y[0] as f64).powi(2) + (e[1] - y[1] as f64).powi(2);
        squared.push(d2);
        norm.push(d2.sqrt());
    }
    (super::stats::mean(&squared), super::stats::mean(&norm))
}

/// The fraction of arm samples (`n × 4`) in each mode of the posterior at `y`
/// ([`crate::tasks::arm_mode`]).
pub fn arm_mode_masses(samples: &[f32], y: [f64; 2]) -> [f64; ARM_MODES] {
    let n = samples.len() / 4;
    let mut mass = [0.0; ARM_MODES];
    for x in samples.chunks_exact(4) {
        mass[arm_mode(x, y)] += 1.0 / n as f64;
    }
    mass
}

/// Mode masses of the arm posterior at one observation: the exact posterior's and a model's.
#[derive(Clone, Debug, PartialEq)]
pub struct ArmModes {
    pub reference: [f64; ARM_MODES],
    pub model: [f64; ARM_MODES],
}

impl ArmModes {
    /// The modes the model misses: (mode, reference mass, model mass) of each mode holding at
    /// least `min_mass` of the exact posterior of which the model has less than half.
    pub fn missing(&self, min_mass: f64) -> Vec<(usize, f64, f64)> {
        (0..ARM_MODES)
            .filter(|&m| self.reference[m] >= min_mass && self.model[m] < 0.5 * self.reference[m])
            .map(|m| (m, self.reference[m], self.model[m]))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resimulation_error_of_arms_by_hand() {
        // The straight arm x = 0 ends at (2, 0); raised by 0.3 on the rail, at (2, 0.3).
        let samples = [0.0f32, 0.0, 0.0, 0.0, 0.3, 0.0, 0.0, 0.0];
        let (sq, norm) = resimulation_error(&samples, &[2.0, 0.0]);
        assert!((sq - 0.09 / 2.0).abs() < 1e-7, "{sq}");
        assert!((norm - 0.3 / 2.0).abs() < 1e-7, "{norm}");
        assert!(
            resimulation_error(&[f32::NAN, 0.0, 0.0, 0.0], &[2.0, 0.0])
                .0
                .is_nan()
        );
    }

    #[test]
    fn mode_masses_and_missing_modes() {
        // At y* = (1.5, 0), the arm bent up by x3 = +1 and down by −1 lie on the two branches.
        let y = [1.5, 0.0];
        let up = [0.0f32, 0.0, 0.0, 1.0];
        let down = [0.0f32, 0.0, 0.0, -1.0];
        let (mu, md) = (arm_mode(&up, y), arm_mode(&down, y));
        assert_ne!(mu, md);
        let mass = arm_mode_masses(&[up, up, up, down].concat(), y);
        assert_eq!(mass[mu], 0.75);
        assert_eq!(mass[md], 0.25);
        let mut reference = [0.0; ARM_MODES];
        reference[mu] = 0.4;
        reference[md] = 0.6;
        let modes = ArmModes {
            reference,
            model: mass,
        };
        // 0.25 < 0.3: the down branch is missed; the up branch is not.
        assert_eq!(modes.missing(0.01), vec![(md, 0.6, 0.25)]);
        assert!(modes.missing(0.7).is_empty());
    }
}
