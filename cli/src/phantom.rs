//! `innfer phantom`: the 256 × 256 multispectral image of the msi-oximetry task
//! (docs/tasks.md §phantom) as a cube of raw band values, with its true parameters and,
//! on request, the ratio-map baseline's sO2.

use std::path::{Path, PathBuf};

use innfer::tasks::msi::{MSI_BANDS, MSI_SNR};
use innfer::tasks::phantom::{PHANTOM_PARAMETERS, PHANTOM_SIZE, RatioBaseline, render_phantom};

use crate::data::{self, CliResult, Format, Sink};
use crate::train::check_directory;

/// Simulations the ratio baseline is calibrated on.
const BASELINE_SIMULATIONS: usize = 100_000;

/// Everything `innfer phantom` was asked for.
#[derive(Debug)]
pub struct PhantomOptions {
    pub out: PathBuf,
    pub truth: PathBuf,
    pub ratio_map: Option<PathBuf>,
    pub seed: u64,
}

/// `path` as an .npy sink, or a message naming `flag`.
fn npy_sink<'p>(path: &'p Path, flag: &str) -> CliResult<Sink<'p>> {
    if data::format_of(path) != Some(Format::Npy) {
        return Err(format!(
            "{flag} {}: the phantom is written as .npy (name a .npy file)",
            path.display()
        ));
    }
    check_directory(path, flag)?;
    Ok(Sink::File(path, Format::Npy))
}

pub fn run(o: &PhantomOptions) -> CliResult<()> {
    let cube_sink = npy_sink(&o.out, "--out")?;
    let truth_sink = npy_sink(&o.truth, "--truth")?;
    let map_sink = match &o.ratio_map {
        Some(p) => Some(npy_sink(p, "--ratio-map")?),
        None => None,
    };
    let phantom = render_phantom(o.seed);
    let n = PHANTOM_SIZE;
    data::write(&cube_sink, &[n, n, MSI_BANDS], &phantom.cube)?;
    data::write(&truth_sink, &[n, n, PHANTOM_PARAMETERS], &phantom.truth)?;
    println!(
        "wrote {} ({n}×{n}×{MSI_BANDS} raw band values at 470…700 nm, SNR {MSI_SNR}, seed {}) and {} \
         ({n}×{n}×{PHANTOM_PARAMETERS}: sO2, vhb, a_mie, b_mie)",
        o.out.display(),
        o.seed,
        o.truth.display()
    );
    if let (Some(sink), Some(path)) = (map_sink, &o.ratio_map) {
        let baseline = RatioBaseline::nominal_tissue(BASELINE_SIMULATIONS, o.seed);
        data::write(&sink, &[n, n], &baseline.map(&phantom.cube))?;
        println!(
            "wrote {} ({n}×{n}: sO2 ≈ {:.4} {:+.4}·ln(b560/b660), calibrated on nominal tissue)",
            path.display(),
            baseline.alpha,
            baseline.beta
        );
    }
    Ok(())
}
