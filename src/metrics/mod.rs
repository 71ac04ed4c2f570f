//! Posterior-quality metrics: one definition of each, used by `innfer eval`, `innfer demo` and
//! the tests.
//!
//! Two layers:
//! - Pure functions of sample sets ([`stats`], [`mmd2_unbiased`], [`Ranks`], [`mode_masses`],
//!   [`resimulation_error`], and with the `train` feature `c2st`): the definitions, each
//!   pinned by unit tests on small hand-computed inputs.
//! - The evaluation protocol ([`evaluate`] and its parts [`held_out`], [`observation_checks`]
//!   (or [`sbc_ranks`] alone), [`gmm8_mode_masses`], [`arm_modes`], [`reference_checks`], and
//!   with `train` `c2st_vs_exact`): which observations, how many samples, which random
//!   streams. It drives
//!   any [`PosteriorSampler`]: a [`Session`] running a model file, a trained model
//!   (`innfer::train`), or an [`ExactPosterior`] (the references, and the perturbed negative
//!   controls the tests run).
//!
//! Conventions shared by every metric: samples are `n × x_dim` row-major f32 in raw units; a
//! sample with a NaN or infinite coordinate is a failure (it is off every mode and never
//! below a true value); a statistic of values containing NaN is NaN.

use crate::prelude::*;

use crate::error::{Error, Result};
use crate::model::Layout;
use crate::rng::Rng;
use crate::session::Session;
use crate::tasks::ExactPosterior;

mod arm;
#[cfg(feature = "train")]
mod c2st;
mod mmd;
mod modes;
mod protocol;
mod reference;
mod sbc;
pub mod stats;

pub use arm::{ArmModes, arm_mode_masses, resimulation_error};
#[cfg(feature = "train")]
pub use c2st::{C2stOptions, c2st};
pub use mmd::{IMQ_WIDTHS, mmd2_unbiased};
pub use modes::{ModeMasses, OFF_MODE_RADIUS, mode_masses};
#[cfg(feature = "train")]
pub use protocol::c2st_vs_exact;
pub use protocol::{
    Comparison, EvalSettings, HeldOut, MODE_MASS_SAMPLES, ObservationChecks, Report, arm_modes,
    compare_with_exact, evaluate, gmm8_mode_masses, held_out, observation_checks, reference_checks,
    sbc_ranks,
};
pub use reference::{
    ReferenceChecks, ReferenceComparison, box_scaled, compare_with_reference, count_outside_box,
    inside_box,
};
pub use sbc::{CALIBRATION_LEVELS, Ranks, SBC_ALPHA, calibration_level, calibration_noise_floor};

/// A posterior model q(x | y) as the metrics use it: samples (and, if it has one, its
/// density) in raw units. Fallible and `&mut`, so that a [`Session`] (scratch memory, random
/// stream) implements it as it is.
pub trait PosteriorSampler {
    /// Width of x.
    fn x_dim(&self) -> usize;

    /// Fills `out` (`n × x_dim`, `n = out.len() / x_dim`) with samples of x given the
    /// observation `y`, from the random stream `(seed, stream)`: the same stream gives the
    /// same samples, different streams independent ones.
    fn sample(&mut self, y: &[f32], seed: u64, stream: u64, out: &mut [f32]) -> Result<()>;

    /// −log q(x | y) in nats of each row pair (`x` is `rows × x_dim`, `y` `rows × y_dim`), or
    /// `None` where q has no density of x given y (the INN paper's INN, whose forward pass
    /// maps x to [z, y], not z given y).
    fn neg_log_density(&mut self, _x: &[f32], _y: &[f32]) -> Result<Option<Vec<f64>>> {
        Ok(None)
    }
}

/// `n` samples of `sampler` for `y` from stream `(seed, stream)`, `n × x_dim`.
pub fn draw<P: PosteriorSampler + ?Sized>(
    sampler: &mut P,
    y: &[f32],
    n: usize,
    seed: u64,
    stream: u64,
) -> Result<Vec<f32>> {
    let mut out = vec![0.0f32; n * sampler.x_dim()];
    sampler.sample(y, seed, stream, &mut out)?;
    Ok(out)
}

/// A model file run by the engine, as `innfer sample` and `innfer forward` run it.
impl PosteriorSampler for Session<'_, '_> {
    fn x_dim(&self) -> usize {
        self.model().layout().x_dim()
    }

    fn sample(&mut self, y: &[f32], seed: u64, stream: u64, out: &mut [f32]) -> Result<()> {
        self.reseed(seed, stream);
        let n = out.len() / self.x_dim().max(1);
        Session::sample(self, y, n, out)
    }

    /// A cINN's density by change of variables: ½‖z‖² + (d/2)·ln 2π − log|det J| with
    /// z = f(x; y). Only a cINN's forward pass gives z of x given y.
    fn neg_log_density(&mut self, x: &[f32], y: &[f32]) -> Result<Option<Vec<f64>>> {
        let Layout::Cinn { x: xd, y: yd } = self.model().layout() else {
            return Ok(None);
        };
        let rows = x.len() / xd;
        if y.len() != rows * yd {
            return Err(Error::BufferLength {
                buffer: "y",
                expected: rows * yd,
                found: y.len(),
            });
        }
        let chunk = self.max_batch();
        let half_ln_tau = 0.5 * core::f64::consts::TAU.ln();
        let mut out = Vec::with_capacity(rows);
        let mut z = vec![0.0f32; chunk * xd];
        let mut logdet = vec![0.0f32; chunk];
        for start in (0..rows).step_by(chunk) {
            let m = (rows - start).min(chunk);
            self.forward(
                &x[start * xd..(start + m) * xd],
                Some(&y[start * yd..(start + m) * yd]),
                &mut z[..m * xd],
                Some(&mut logdet[..m]),
            )?;
            out.extend(
                z[..m * xd]
                    .chunks_exact(xd)
                    .zip(&logdet[..m])
                    .map(|(row, &l)| {
                        0.5 * row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>()
                            + xd as f64 * half_ln_tau
                            - l as f64
                    }),
            );
        }
        Ok(Some(out))
    }
}

/// Seeds of an exact posterior used as the model under test are salted: its draws never
/// share a stream with the simulator's observations or the references it is compared with,
/// which the protocol draws from `Rng::new(seed, stream)` directly.
const EXACT_SAMPLER_SALT: u64 = 0x6578_6163_7400_0000;

impl PosteriorSampler for ExactPosterior {
    fn x_dim(&self) -> usize {
        self.task.x_dim()
    }

    fn sample(&mut self, y: &[f32], seed: u64, stream: u64, out: &mut [f32]) -> Result<()> {
        let xd = self.task.x_dim();
        if !out.len().is_multiple_of(xd) {
            return Err(Error::BufferLength {
                buffer: "x",
                expected: out.len() / xd * xd,
                found: out.len(),
            });
        }
        let n = out.len() / xd;
        let mut rng = Rng::new(seed ^ EXACT_SAMPLER_SALT, stream);
        out.copy_from_slice(&self.draw(y, n, &mut rng));
        Ok(())
    }

    fn neg_log_density(&mut self, x: &[f32], y: &[f32]) -> Result<Option<Vec<f64>>> {
        Ok(self.neg_log_density_rows(x, y))
    }
}

/// Runs `f(0..n)` on all cores; results in index order.
pub(crate) fn par_map<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .clamp(1, n.max(1));
    if threads == 1 {
        return (0..n).map(f).collect();
    }
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    (t * n / threads..(t + 1) * n / threads)
                        .map(f)
                        .collect::<Vec<T>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("evaluation thread panicked"))
            .collect()
    })
}
