//! The demo's camera scene: the 256×256 tissue phantom (docs/tasks.md §phantom) observed by
//! the 8-band camera, every pixel turned into a posterior by the shipped oximetry model
//! (models/msi_oximetry.safetensors, embedded), summarised on the fly, and drawn beside the
//! truth and the classical ratio-map baseline (docs/tasks.md §ratio-baseline).

use std::path::{Path, PathBuf};

use innfer::Model;
use innfer::tasks::phantom::{PHANTOM_SIZE, RatioBaseline, render_phantom};

use crate::image::{FrameSummary, frame_session, rmse, summarize_frame};
use crate::mapfig::{Colormap, MapPanel, map_figure};

/// The shipped tissue-oximetry model, embedded.
pub const MSI_OXIMETRY: &[u8] = include_bytes!("../../models/msi_oximetry.safetensors");

/// Simulations the ratio baseline is fitted on.
const BASELINE_SIMULATIONS: usize = 20_000;

/// Parameter 0 (sO2) of a `[pixels][d]` array.
fn so2(values: &[f32], d: usize) -> Vec<f32> {
    values.iter().step_by(d).copied().collect()
}

/// Renders the phantom with camera noise from `seed`, summarises every pixel with `n` samples
/// on all cores, prints the errors against the truth and writes `out/msi_oximetry.png`.
pub fn scene(n: usize, seed: u64, out: &Path) -> Result<PathBuf, String> {
    let model =
        Model::from_bytes(MSI_OXIMETRY).map_err(|e| format!("embedded oximetry model: {e}"))?;
    let d = model.layout().x_dim();
    let phantom = render_phantom(seed);
    let mut session = frame_session(&model, n, None)?;
    let threads = session.threads();
    let s: FrameSummary =
        summarize_frame(&mut session, &phantom.cube, n, seed, &[0.05, 0.5, 0.95])?;
    let truth = so2(&phantom.truth, d);
    let mean = so2(&s.mean, d);
    let std = so2(&s.std, d);
    let error: Vec<f32> = mean
        .iter()
        .zip(&truth)
        .map(|(m, t)| (m - t).abs())
        .collect();
    let baseline = RatioBaseline::nominal_tissue(BASELINE_SIMULATIONS, seed);
    // Clipped to [0, 1], as anyone reading a saturation off the ratio would.
    let ratio_map: Vec<f32> = baseline
        .map(&phantom.cube)
        .into_iter()
        .map(|s| s.clamp(0.0, 1.0))
        .collect();
    let pixels = PHANTOM_SIZE * PHANTOM_SIZE;
    println!(
        "camera: {PHANTOM_SIZE}×{PHANTOM_SIZE} phantom, 8 bands per pixel, {n} posterior samples per \
         pixel summarised on the fly: {:.2} s ({:.1} M samples/s on {threads} threads)",
        s.seconds,
        (pixels * n) as f64 / s.seconds / 1e6
    );
    println!(
        "camera: sO2 RMSE over the phantom: posterior mean {:.4}, ratio-map baseline \
         ln(b560/b660) clipped to [0, 1] {:.4}; median posterior std {:.4}",
        rmse(&mean, &truth),
        rmse(&ratio_map, &truth),
        median(&std)
    );
    let unit = (0.0, 1.0);
    let panels = [
        MapPanel {
            title: "true sO2".into(),
            values: &truth,
            range: unit,
            units: String::new(),
            colormap: Colormap::Viridis,
        },
        MapPanel {
            title: format!("posterior mean ({n} samples/pixel)"),
            values: &mean,
            range: unit,
            units: String::new(),
            colormap: Colormap::Viridis,
        },
        MapPanel {
            title: "posterior std".into(),
            range: MapPanel::range_of(&std, true, Colormap::Viridis),
            values: &std,
            units: String::new(),
            colormap: Colormap::Viridis,
        },
        MapPanel {
            title: "|posterior mean − true|".into(),
            range: (0.0, 0.25),
            values: &error,
            units: String::new(),
            colormap: Colormap::Viridis,
        },
        MapPanel {
            title: "ratio map: α + β·ln(b560/b660), clipped".into(),
            values: &ratio_map,
            range: unit,
            units: String::new(),
            colormap: Colormap::Viridis,
        },
    ];
    let path = out.join("msi_oximetry.png");
    map_figure(
        &path,
        "Oxygen saturation of a simulated tissue phantom, from an 8-band camera, per pixel",
        &panels,
        (PHANTOM_SIZE, PHANTOM_SIZE),
    )?;
    Ok(path)
}

/// The median of the finite values.
fn median(v: &[f32]) -> f32 {
    let mut f: Vec<f32> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if f.is_empty() {
        return f32::NAN;
    }
    f.sort_by(f32::total_cmp);
    f[f.len() / 2]
}
