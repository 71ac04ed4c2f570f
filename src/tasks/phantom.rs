//! A 256 × 256 synthetic multispectral image of tissue for the msi-oximetry task
//! (docs/tasks.md §phantom): a smooth background, two arteries and two veins with soft edges,
//! and an ischemic disc; each pixel observed as the task observes (8 raw bands, SNR 100).
//! And the classical baseline a posterior is compared with on it: sO2 from the ratio of the
//! 560-nm and 660-nm bands, fitted by least squares.

use core::f64::consts::TAU;

use super::Dataset;
use super::msi::{MSI_BANDS, msi_observe_f32};
use crate::prelude::*;
use crate::rng::Rng;

/// Width and height of the image, in pixels.
pub const PHANTOM_SIZE: usize = 256;

/// Parameters per pixel of the truth: sO2, vhb, a_mie, b_mie.
pub const PHANTOM_PARAMETERS: usize = 4;

/// The seed `innfer phantom` uses when none is given.
pub const PHANTOM_DEFAULT_SEED: u64 = 0;

/// Stream of the camera noise (of `Rng::new(seed, PHANTOM_NOISE_STREAM)`).
const PHANTOM_NOISE_STREAM: u64 = 0x7068_616e;

/// What a pixel shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Region {
    Background,
    /// The ischemic disc.
    Ischemia,
    Artery,
    Vein,
}

/// Centre and amplitude of a background parameter, and its two cosines
/// (cycles along x, cycles along y, phase).
struct Field {
    centre: f64,
    amplitude: f64,
    waves: [(f64, f64, f64); 2],
}

/// The background: sO2 0.75 ± 0.08, vhb 0.02 ± 0.008, a_mie 18.9 ± 25 %, b_mie 1.286 ± 0.15.
/// The phases put vhb, a_mie and b_mie at their centre values at the disc's centre, so that
/// the disc differs from nominal tissue by its oxygen alone.
const BACKGROUND: [Field; PHANTOM_PARAMETERS] = [
    Field {
        centre: 0.75,
        amplitude: 0.08,
        waves: [(1.0, 2.0, 0.3), (2.0, -1.0, 1.1)],
    },
    Field {
        centre: 0.02,
        amplitude: 0.008,
        waves: [(2.0, 1.0, 3.58), (1.0, -3.0, 1.18)],
    },
    Field {
        centre: 18.9,
        amplitude: 18.9 * 0.25,
        waves: [(1.0, 1.0, 0.98), (3.0, 1.0, 6.18)],
    },
    Field {
        centre: 1.286,
        amplitude: 0.15,
        waves: [(2.0, 2.0, 0.39), (1.0, -2.0, 4.27)],
    },
];

/// A vessel whose centre line is a sinusoid `centre + amplitude·sin(2π·t/period + phase)`
/// along x (`horizontal`: its y as a function of x) or along y.
struct Vessel {
    region: Region,
    horizontal: bool,
    centre: f64,
    amplitude: f64,
    period: f64,
    phase: f64,
    width: f64,
    so2: f64,
    vhb: f64,
}

/// Veins first, then arteries over them.
const VESSELS: [Vessel; 4] = [
    Vessel {
        region: Region::Vein,
        horizontal: true,
        centre: 190.0,
        amplitude: 15.0,
        period: 300.0,
        phase: 2.0,
        width: 7.0,
        so2: 0.55,
        vhb: 0.09,
    },
    Vessel {
        region: Region::Vein,
        horizontal: false,
        centre: 200.0,
        amplitude: 20.0,
        period: 230.0,
        phase: 4.0,
        width: 4.0,
        so2: 0.60,
        vhb: 0.07,
    },
    Vessel {
        region: Region::Artery,
        horizontal: true,
        centre: 70.0,
        amplitude: 18.0,
        period: 256.0,
        phase: 0.0,
        width: 8.0,
        so2: 0.97,
        vhb: 0.08,
    },
    Vessel {
        region: Region::Artery,
        horizontal: false,
        centre: 60.0,
        amplitude: 14.0,
        period: 200.0,
        phase: 1.0,
        width: 5.0,
        so2: 0.97,
        vhb: 0.06,
    },
];

/// The ischemic disc: centre (x, y) and radius in pixels, and its sO2.
const DISC_CENTRE: (f64, f64) = (150.0, 130.0);
const DISC_RADIUS: f64 = 31.0;
const DISC_SO2: f64 = 0.30;

/// Softness of the vessels' and the disc's edges, in pixels: the share of the vessel (or
/// disc) in a pixel at distance d from its edge is 1/(1 + exp(d/s)).
const VESSEL_EDGE: f64 = 0.7;
const DISC_EDGE: f64 = 1.0;

fn logistic_share(outside_by: f64, softness: f64) -> f64 {
    1.0 / (1.0 + (outside_by / softness).exp())
}

impl Vessel {
    /// The share of the vessel in the pixel centred at (x, y): from the distance to the
    /// centre line across it, |offset|/√(1 + slope²).
    fn share(&self, x: f64, y: f64) -> f64 {
        let (along, across) = if self.horizontal { (x, y) } else { (y, x) };
        let angle = TAU * along / self.period + self.phase;
        let line = self.centre + self.amplitude * angle.sin();
        let slope = self.amplitude * TAU / self.period * angle.cos();
        let distance = (across - line).abs() / (1.0 + slope * slope).sqrt();
        logistic_share(distance - 0.5 * self.width, VESSEL_EDGE)
    }
}

/// The background's parameters (sO2, vhb, a_mie, b_mie) at the pixel in column `col`, row
/// `row`: each `centre + amplitude·½(cos w₁ + cos w₂)`, w = 2π(cx·u + cy·v) + phase at the
/// pixel centre (u, v) = ((col + ½)/256, (row + ½)/256).
pub fn background(col: usize, row: usize) -> [f64; PHANTOM_PARAMETERS] {
    let n = PHANTOM_SIZE as f64;
    let (u, v) = ((col as f64 + 0.5) / n, (row as f64 + 0.5) / n);
    BACKGROUND.map(|f| {
        let wave = |(cx, cy, phase): (f64, f64, f64)| (TAU * (cx * u + cy * v) + phase).cos();
        f.centre + f.amplitude * 0.5 * (wave(f.waves[0]) + wave(f.waves[1]))
    })
}

/// The true parameters of every pixel (`PHANTOM_SIZE² × 4`, row-major: row y, then column x)
/// and its region (the last of disc, veins, arteries with a share ≥ ½, else background).
pub fn phantom_truth() -> (Vec<f32>, Vec<Region>) {
    let n = PHANTOM_SIZE;
    let mut truth = Vec::with_capacity(n * n * PHANTOM_PARAMETERS);
    let mut regions = Vec::with_capacity(n * n);
    for row in 0..n {
        for col in 0..n {
            let (x, y) = (col as f64 + 0.5, row as f64 + 0.5);
            let mut p = background(col, row);
            let mut region = Region::Background;
            let rho = (x - DISC_CENTRE.0).hypot(y - DISC_CENTRE.1);
            let w = logistic_share(rho - DISC_RADIUS, DISC_EDGE);
            p[0] = (1.0 - w) * p[0] + w * DISC_SO2;
            if w >= 0.5 {
                region = Region::Ischemia;
            }
            // Partial volume mixes the parameters: the vessel's blood, the background's
            // scattering.
            for vessel in &VESSELS {
                let w = vessel.share(x, y);
                p[0] = (1.0 - w) * p[0] + w * vessel.so2;
                p[1] = (1.0 - w) * p[1] + w * vessel.vhb;
                if w >= 0.5 {
                    region = vessel.region;
                }
            }
            truth.extend(p.map(|v| v as f32));
            regions.push(region);
        }
    }
    (truth, regions)
}

/// The rendered phantom.
#[derive(Clone, Debug)]
pub struct Phantom {
    /// `PHANTOM_SIZE × PHANTOM_SIZE × 4`: sO2, vhb, a_mie, b_mie of every pixel.
    pub truth: Vec<f32>,
    /// `PHANTOM_SIZE × PHANTOM_SIZE × 8`: the observed raw band values.
    pub cube: Vec<f32>,
    pub regions: Vec<Region>,
}

/// The phantom observed by the camera with noise from `seed` (the scene does not depend on
/// it): each pixel in row-major order draws its 8 band noises from one stream, as the task's
/// simulator observes x.
pub fn render_phantom(seed: u64) -> Phantom {
    let (truth, regions) = phantom_truth();
    let mut rng = Rng::new(seed, PHANTOM_NOISE_STREAM);
    let cube = truth
        .chunks_exact(PHANTOM_PARAMETERS)
        .flat_map(|x| msi_observe_f32(x, &mut rng))
        .collect();
    Phantom {
        truth,
        cube,
        regions,
    }
}

/// Bands of 560 nm and 660 nm among the camera's.
const BAND_560: usize = 3;
const BAND_660: usize = 6;

/// ln(b_560 / b_660) of one pixel's raw bands.
pub fn log_ratio_560_660(bands: &[f32]) -> f64 {
    (bands[BAND_560] as f64 / bands[BAND_660] as f64).ln()
}

/// The ratio-map baseline: sO2 ≈ α + β·ln(b_560/b_660).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RatioBaseline {
    pub alpha: f64,
    pub beta: f64,
}

impl RatioBaseline {
    /// The least-squares line of sO2 (x column 0) on ln(b_560/b_660) over the rows of `data`
    /// (raw bands as y), in f64.
    pub fn fit(data: &Dataset) -> RatioBaseline {
        let n = data.len() as f64;
        let pairs: Vec<(f64, f64)> = data
            .x
            .chunks_exact(data.x_dim)
            .zip(data.y.chunks_exact(data.y_dim))
            .map(|(x, b)| (log_ratio_560_660(b), x[0] as f64))
            .collect();
        let (mr, ms) = pairs
            .iter()
            .fold((0.0, 0.0), |(a, b), &(r, s)| (a + r / n, b + s / n));
        let (cov, var) = pairs.iter().fold((0.0, 0.0), |(c, v), &(r, s)| {
            (c + (r - mr) * (s - ms), v + (r - mr) * (r - mr))
        });
        let beta = cov / var;
        RatioBaseline {
            alpha: ms - beta * mr,
            beta,
        }
    }

    /// The baseline calibrated on nominal tissue: fitted to `n` simulations (noise as the
    /// task's, stream `(seed, 0)`) with sO2 uniform on [0, 1] and vhb, a_mie, b_mie at the
    /// phantom background's centre values 0.02, 18.9 and 1.286. It reads the background
    /// and the disc, and not the vessels, whose blood volume dominates the ratio.
    pub fn nominal_tissue(n: usize, seed: u64) -> RatioBaseline {
        let mut rng = Rng::new(seed, 0);
        let mut x = Vec::with_capacity(n * PHANTOM_PARAMETERS);
        let mut y = Vec::with_capacity(n * MSI_BANDS);
        for _ in 0..n {
            let row = [
                rng.uniform() as f32,
                BACKGROUND[1].centre as f32,
                BACKGROUND[2].centre as f32,
                BACKGROUND[3].centre as f32,
            ];
            y.extend(msi_observe_f32(&row, &mut rng));
            x.extend(row);
        }
        RatioBaseline::fit(&Dataset {
            x,
            y,
            x_dim: PHANTOM_PARAMETERS,
            y_dim: MSI_BANDS,
        })
    }

    /// The baseline's sO2 for one pixel's raw bands.
    pub fn predict(&self, bands: &[f32]) -> f64 {
        self.alpha + self.beta * log_ratio_560_660(bands)
    }

    /// The sO2 map of a cube of pixels (`pixels × 8` raw bands).
    pub fn map(&self, cube: &[f32]) -> Vec<f32> {
        cube.chunks_exact(MSI_BANDS)
            .map(|b| self.predict(b) as f32)
            .collect()
    }
}
