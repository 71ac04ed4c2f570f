//! Built-in simulators and their exact posteriors: the 8-mode Gaussian mixture of the ICLR
//! 2019 toy (labellings `all`, `some`, `none`), the inverse-kinematics arm (Kruse et al.),
//! sbibm's Gaussian linear 10-D and the multispectral tissue-oximetry camera ([`msi`], one
//! and two layers); and [`Dataset`], paired rows from a simulator or from files.
//!
//! Every task draws pairs (x, y) with x the parameters (what the cINN samples) and y the
//! observation (its condition). [`ExactPosterior`] samples (and, where it has a closed form,
//! evaluates) p(x | y), the reference every metric of [`crate::metrics`] compares with.

use crate::prelude::*;

use crate::error::{Error, Result};
use crate::rng::Rng;

mod box_importance;
mod exact;
pub mod msi;
pub mod phantom;

pub use box_importance::{BoxPosterior, MSI_REFERENCE_ESS, msi_reference, sample_box_posterior};
pub use exact::{ARM_MODES, ArmReference, ExactPosterior, arm_mode, arm_reference};

fn io_error(path: &std::path::Path, e: impl ToString) -> Error {
    Error::Io {
        path: path.display().to_string(),
        problem: e.to_string(),
    }
}

/// Numbers of a CSV file and its column count.
fn read_csv(path: &std::path::Path) -> Result<(Vec<f32>, usize)> {
    let text = std::fs::read_to_string(path).map_err(|e| io_error(path, e))?;
    let mut values = Vec::new();
    let mut cols = None;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line
            .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
            .filter(|f| !f.is_empty())
            .collect();
        let parsed: core::result::Result<Vec<f32>, _> =
            fields.iter().map(|f| f.parse::<f32>()).collect();
        let row = match parsed {
            Ok(r) => r,
            Err(_) if cols.is_none() && values.is_empty() => continue, // header
            Err(e) => return Err(io_error(path, format!("line {}: {e}", i + 1))),
        };
        match cols {
            None => cols = Some(row.len()),
            Some(c) if c != row.len() => {
                return Err(io_error(
                    path,
                    format!("line {} has {} fields, the first row {c}", i + 1, row.len()),
                ));
            }
            _ => {}
        }
        values.extend(row);
    }
    let cols = cols.ok_or_else(|| io_error(path, "no data rows"))?;
    Ok((values, cols))
}

/// The octagon of mode centres, in the INN paper's order.
pub const GMM8_CENTRES: [(f64, f64); 8] = [
    (-2.4142, 1.0),
    (-1.0, 2.4142),
    (1.0, 2.4142),
    (2.4142, 1.0),
    (2.4142, -1.0),
    (1.0, -2.4142),
    (-1.0, -2.4142),
    (-2.4142, -1.0),
];

/// Standard deviation of each mixture component.
pub const GMM8_STD: f64 = 0.2;

/// Which label each mode gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Labelling {
    /// One label per mode: unimodal posteriors.
    All,
    /// `[0,0,0,0,1,1,2,3]`: posteriors with 4, 2, 1 and 1 modes.
    Some,
    /// One label for all: the posterior is the whole mixture.
    None,
}

impl Labelling {
    pub const fn label_of_mode(self, mode: usize) -> usize {
        match self {
            Labelling::All => mode,
            Labelling::Some => [0, 0, 0, 0, 1, 1, 2, 3][mode],
            Labelling::None => 0,
        }
    }

    /// The modes carrying `label`.
    pub fn modes_of(self, label: usize) -> Vec<usize> {
        (0..8).filter(|&m| self.label_of_mode(m) == label).collect()
    }

    /// Labels that occur.
    pub fn labels(self) -> Vec<usize> {
        let mut l: Vec<usize> = (0..8).map(|m| self.label_of_mode(m)).collect();
        l.dedup();
        l.sort_unstable();
        l.dedup();
        l
    }
}

/// A simulator.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Task {
    /// x ∈ R², y = one-hot(label) ∈ R⁸.
    Gmm8(Labelling),
    /// x ∈ R⁴ (rail height, three joint angles), y ∈ R² (end effector).
    Kinematics,
    /// θ ~ N(0, 0.1·I₁₀), y = θ + N(0, 0.1·I₁₀).
    GaussianLinear,
    /// x ∈ R⁴ (sO2, vhb, a_mie, b_mie) uniform in a box, y ∈ R⁸ the raw band values of a
    /// multispectral camera with multiplicative noise ([`msi`]).
    MsiOximetry,
    /// [`Task::MsiOximetry`] under an absorbing top layer: x ∈ R⁶ adds d_top and f_mel.
    MsiOximetryTwoLayer,
}

/// Paired rows: `x` is `n × x_dim`, `y` is `n × y_dim`.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    pub x: Vec<f32>,
    pub y: Vec<f32>,
    pub x_dim: usize,
    pub y_dim: usize,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.x.len() / self.x_dim.max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Paired rows from two `.npy` files (`<f4`/`<f8`, C order; 2-D `n × dim`, or 1-D for
    /// one column).
    pub fn from_npy(
        x_path: impl AsRef<std::path::Path>,
        y_path: impl AsRef<std::path::Path>,
    ) -> Result<Dataset> {
        let read = |p: &std::path::Path| -> Result<(Vec<f32>, usize)> {
            let bytes = std::fs::read(p).map_err(|e| io_error(p, e))?;
            let a = crate::npy::parse(&bytes).map_err(|e| io_error(p, e))?;
            let cols = if a.shape.len() == 1 {
                1
            } else {
                a.as_matrix().1
            };
            Ok((a.data, cols))
        };
        let (x, xd) = read(x_path.as_ref())?;
        let (y, yd) = read(y_path.as_ref())?;
        Dataset::from_columns(x, xd, y, yd)
    }

    /// Paired rows from two CSV files of numbers (comma-, semicolon- or whitespace-
    /// separated; a first line that does not parse is taken as a header and skipped).
    pub fn from_csv(
        x_path: impl AsRef<std::path::Path>,
        y_path: impl AsRef<std::path::Path>,
    ) -> Result<Dataset> {
        let (x, xd) = read_csv(x_path.as_ref())?;
        let (y, yd) = read_csv(y_path.as_ref())?;
        Dataset::from_columns(x, xd, y, yd)
    }

    /// Checks that `x` (`n × xd`) and `y` (`n × yd`) pair up.
    pub fn from_columns(x: Vec<f32>, xd: usize, y: Vec<f32>, yd: usize) -> Result<Dataset> {
        if xd == 0 || !x.len().is_multiple_of(xd) || (yd > 0 && !y.len().is_multiple_of(yd)) {
            return Err(Error::Dims("data is not a whole number of rows".into()));
        }
        let n = x.len() / xd;
        let ny = y.len().checked_div(yd).unwrap_or(0);
        if yd > 0 && n != ny {
            return Err(Error::Dims(format!(
                "the x file has {n} rows and the y file {ny}: rows must pair up"
            )));
        }
        if x.iter().chain(&y).any(|v| !v.is_finite()) {
            return Err(Error::Argument("the data holds NaN or infinite values"));
        }
        Ok(Dataset {
            x,
            y,
            x_dim: xd,
            y_dim: yd,
        })
    }

    /// Rows `rows` as a new dataset.
    pub fn select(&self, rows: &[usize]) -> Dataset {
        let mut x = Vec::with_capacity(rows.len() * self.x_dim);
        let mut y = Vec::with_capacity(rows.len() * self.y_dim);
        for &r in rows {
            x.extend_from_slice(&self.x[r * self.x_dim..(r + 1) * self.x_dim]);
            y.extend_from_slice(&self.y[r * self.y_dim..(r + 1) * self.y_dim]);
        }
        Dataset {
            x,
            y,
            x_dim: self.x_dim,
            y_dim: self.y_dim,
        }
    }
}

/// Kinematics: segment lengths and prior standard deviations.
pub const ARM_LENGTHS: [f64; 3] = [0.5, 0.5, 1.0];
pub const ARM_PRIOR_STD: [f64; 4] = [0.25, 0.5, 0.5, 0.5];

/// The arm's end point for parameters x = (rail height, three joint angles): the arm starts
/// at (0, x0), its absolute angles are φ1 = x1, φ2 = x1 + x2, φ3 = x1 + x2 + x3.
pub fn arm_forward(x: &[f64]) -> [f64; 2] {
    let [l0, l1, l2] = ARM_LENGTHS;
    let p1 = x[1];
    let p2 = x[1] + x[2];
    let p3 = x[1] + x[2] + x[3];
    [
        l0 * p1.cos() + l1 * p2.cos() + l2 * p3.cos(),
        x[0] + l0 * p1.sin() + l1 * p2.sin() + l2 * p3.sin(),
    ]
}

impl Task {
    pub fn x_dim(self) -> usize {
        match self {
            Task::Gmm8(_) => 2,
            Task::Kinematics => 4,
            Task::GaussianLinear => 10,
            Task::MsiOximetry => 4,
            Task::MsiOximetryTwoLayer => 6,
        }
    }

    pub fn y_dim(self) -> usize {
        match self {
            Task::Gmm8(_) => 8,
            Task::Kinematics => 2,
            Task::GaussianLinear => 10,
            Task::MsiOximetry | Task::MsiOximetryTwoLayer => msi::MSI_BANDS,
        }
    }

    /// The (lower, upper) corners of the uniform prior box of x, for a task whose prior is one.
    pub fn prior_box(self) -> Option<(&'static [f64], &'static [f64])> {
        match self {
            Task::MsiOximetry | Task::MsiOximetryTwoLayer => {
                let d = self.x_dim();
                Some((&msi::MSI_LOWER[..d], &msi::MSI_UPPER[..d]))
            }
            _ => None,
        }
    }

    /// Names and units of the parameters, where the task gives them (the msi tasks:
    /// docs/tasks.md §msi-oximetry); written into a trained model's file.
    pub fn parameter_labels(self) -> Option<(&'static [&'static str], &'static [&'static str])> {
        match self {
            Task::MsiOximetry | Task::MsiOximetryTwoLayer => {
                let d = self.x_dim();
                Some((&msi::MSI_PARAMETERS[..d], &msi::MSI_UNITS[..d]))
            }
            _ => None,
        }
    }

    /// Whether y holds raw camera band values, which a model conditions on through their
    /// centred log-ratio (the `clr` y transform, docs/tasks.md §msi-oximetry).
    pub fn observes_bands(self) -> bool {
        matches!(self, Task::MsiOximetry | Task::MsiOximetryTwoLayer)
    }

    /// Whether y is a noisy image of x alone, which [`Task::observe`] can draw afresh for
    /// given x: the msi tasks (a mixture's label depends on the hidden mode, not on x; the
    /// arm has no noise).
    pub fn reobserves(self) -> bool {
        self.observes_bands()
    }

    /// Fresh observations y (`rows × y_dim`) of the parameters `x` (`rows × x_dim`) from
    /// `rng`; `None` for a task that does not [re-observe](Task::reobserves).
    pub fn observe(self, x: &[f32], rng: &mut Rng) -> Option<Vec<f32>> {
        if !self.reobserves() {
            return None;
        }
        let xd = self.x_dim();
        let mut y = Vec::with_capacity(x.len() / xd * msi::MSI_BANDS);
        for row in x.chunks_exact(xd) {
            y.extend(msi::msi_observe_f32(row, rng));
        }
        Some(y)
    }

    /// `n` simulated pairs from stream `(seed, stream)`.
    pub fn simulate(self, n: usize, seed: u64, stream: u64) -> Dataset {
        let mut rng = Rng::new(seed, stream);
        let (xd, yd) = (self.x_dim(), self.y_dim());
        let mut x = Vec::with_capacity(n * xd);
        let mut y = Vec::with_capacity(n * yd);
        for _ in 0..n {
            match self {
                Task::Gmm8(labelling) => {
                    let mode = rng.below(8);
                    let (cx, cy) = GMM8_CENTRES[mode];
                    x.push((cx + GMM8_STD * rng.normal()) as f32);
                    x.push((cy + GMM8_STD * rng.normal()) as f32);
                    let mut onehot = [0.0f32; 8];
                    onehot[labelling.label_of_mode(mode)] = 1.0;
                    y.extend_from_slice(&onehot);
                }
                Task::Kinematics => {
                    let xs: Vec<f64> = ARM_PRIOR_STD.iter().map(|s| s * rng.normal()).collect();
                    let end = arm_forward(&xs);
                    x.extend(xs.iter().map(|&v| v as f32));
                    y.extend(end.iter().map(|&v| v as f32));
                }
                Task::GaussianLinear => {
                    let sd = 0.1f64.sqrt();
                    let theta: Vec<f64> = (0..10).map(|_| sd * rng.normal()).collect();
                    x.extend(theta.iter().map(|&v| v as f32));
                    y.extend(theta.iter().map(|&t| (t + sd * rng.normal()) as f32));
                }
                // y from the f32 parameters as stored, as `observe` re-observes them.
                Task::MsiOximetry | Task::MsiOximetryTwoLayer => {
                    let mut row = [0.0f32; 6];
                    msi::msi_prior_draw(xd, &mut rng, &mut row);
                    x.extend_from_slice(&row[..xd]);
                    y.extend(msi::msi_observe_f32(&row[..xd], &mut rng));
                }
            }
        }
        Dataset {
            x,
            y,
            x_dim: xd,
            y_dim: yd,
        }
    }

    /// The exact conditional entropy H(x|y) in nats, where it is known in closed form
    /// (the KL gap is held-out NLL minus this).
    pub fn conditional_entropy(self) -> Option<f64> {
        let gaussian_2d = 1.0 + (2.0 * core::f64::consts::PI * GMM8_STD * GMM8_STD).ln();
        match self {
            // H = H(N(0, 0.04 I₂)) + E_label ln |modes of the label| (modes do not overlap).
            Task::Gmm8(l) => Some(
                gaussian_2d
                    + l.labels()
                        .iter()
                        .map(|&c| {
                            let k = l.modes_of(c).len() as f64;
                            k / 8.0 * k.ln()
                        })
                        .sum::<f64>(),
            ),
            Task::GaussianLinear => Some(5.0 * (1.0 + (2.0 * core::f64::consts::PI * 0.05).ln())),
            Task::Kinematics | Task::MsiOximetry | Task::MsiOximetryTwoLayer => None,
        }
    }
}
