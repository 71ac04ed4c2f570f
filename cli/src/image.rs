//! `innfer image`: per-pixel posterior summaries of a spectral image (a cube of band values),
//! written as `.npy` maps and one PNG per parameter; with the true parameters, also the error
//! and z-score maps and the calibration over pixels.
//!
//! Each pixel is one observation of [`Session::summarize`]: pixel p (row-major) draws its
//! samples from rows p·n … p·n + n − 1 of the stream of `--seed`, so a frame's maps do not
//! depend on the thread count or on how the pixels are grouped into calls.

use std::path::{Path, PathBuf};
use std::time::Instant;

use innfer::{Model, Session, SummaryBuffers};

use crate::data::{CliResult, Format, Sink, write};
use crate::mapfig::{CalibrationCurve, Colormap, MapPanel, calibration_figure, map_figure};
use crate::progress::Progress;

/// The summaries every run writes: the 5 %, 50 % and 95 % quantiles.
pub const REPORTED_QUANTILES: [f32; 3] = [0.05, 0.5, 0.95];

/// Nominal levels of the central intervals whose coverage `--truth` measures.
pub const CALIBRATION_LEVELS: [f64; 9] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

/// Pixels per summarize call (the progress bar's step).
const PIXELS_PER_CALL: usize = 2048;

pub struct ImageOptions<'a> {
    pub model_path: &'a Path,
    pub cube: &'a Path,
    pub n: usize,
    pub seed: u64,
    pub out: &'a Path,
    pub truth: Option<&'a Path>,
    pub threads: Option<usize>,
}

/// A (height, width, depth) array read from a `.npy` file.
pub struct Cube {
    pub height: usize,
    pub width: usize,
    pub depth: usize,
    pub data: Vec<f32>,
}

/// Reads a 3-D `.npy` array; `what` and `depth_name` word the errors
/// ("CUBE.npy: … (height, width, bands)").
pub fn read_cube(path: &Path, what: &str, depth_name: &str) -> CliResult<Cube> {
    let bytes = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let array =
        innfer::npy::parse(&bytes).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let &[height, width, depth] = array.shape.as_slice() else {
        return Err(format!(
            "{}: {what} must be a 3-D array (height, width, {depth_name}); this one has shape {:?}",
            path.display(),
            array.shape
        ));
    };
    if height == 0 || width == 0 {
        return Err(format!(
            "{}: {what} has no pixels (shape {:?})",
            path.display(),
            array.shape
        ));
    }
    Ok(Cube {
        height,
        width,
        depth,
        data: array.data,
    })
}

/// Every requested quantile of a run: the reported ones, then (with a truth) the ends of the
/// central intervals of [`CALIBRATION_LEVELS`].
fn quantile_list(with_truth: bool) -> Vec<f32> {
    let mut q = REPORTED_QUANTILES.to_vec();
    if with_truth {
        for level in CALIBRATION_LEVELS {
            q.push(((1.0 - level) / 2.0) as f32);
            q.push(((1.0 + level) / 2.0) as f32);
        }
    }
    q
}

/// Per-pixel summaries of a frame: `[pixels][d]` means and stds, `[pixels][k][d]` quantiles.
pub struct FrameSummary {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    pub quantiles: Vec<f32>,
    pub quantile_levels: Vec<f32>,
    pub invalid_pixels: usize,
    pub seconds: f64,
}

/// Summarises every pixel of `bands` (`[pixels][y_dim]`) with `n` samples each, on the
/// session's threads, advancing a progress bar.
pub fn summarize_frame(
    session: &mut Session<'_, '_>,
    bands: &[f32],
    n: usize,
    seed: u64,
    quantile_levels: &[f32],
) -> CliResult<FrameSummary> {
    let model = session.model();
    let (xd, yd) = (model.layout().x_dim(), model.layout().y_dim());
    let pixels = bands.len() / yd.max(1);
    let k = quantile_levels.len();
    let mut mean = vec![0.0f32; pixels * xd];
    let mut std = vec![0.0f32; pixels * xd];
    let mut quantiles = vec![0.0f32; pixels * k * xd];
    let mut progress = Progress::new(pixels as u64, "summarising", "pixels");
    session.reseed(seed, 0);
    let started = Instant::now();
    let mut invalid = 0;
    for first in (0..pixels).step_by(PIXELS_PER_CALL) {
        let last = (first + PIXELS_PER_CALL).min(pixels);
        let report = session
            .summarize(
                &bands[first * yd..last * yd],
                n,
                quantile_levels,
                SummaryBuffers {
                    mean: &mut mean[first * xd..last * xd],
                    std: &mut std[first * xd..last * xd],
                    quantile_values: &mut quantiles[first * k * xd..last * k * xd],
                },
            )
            .map_err(|e| format!("summarising pixels {first}..{last}: {e}"))?;
        invalid += report.invalid_rows;
        progress.inc((last - first) as u64);
    }
    let seconds = started.elapsed().as_secs_f64();
    progress.finish();
    Ok(FrameSummary {
        mean,
        std,
        quantiles,
        quantile_levels: quantile_levels.to_vec(),
        invalid_pixels: invalid,
        seconds,
    })
}

/// A session for summarising a frame with `n` samples per pixel: whole pixels per chain call
/// (a few thousand rows in all), on `threads` threads (default: all cores).
pub fn frame_session(
    model: &Model,
    n: usize,
    threads: Option<usize>,
) -> CliResult<Session<'_, 'static>> {
    let max_batch = if n <= 8192 { (8192 / n) * n } else { 8192 };
    let mut session = Session::new(model, max_batch)
        .map_err(|e| format!("creating a session of {max_batch} rows: {e}"))?;
    let threads = threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    session
        .set_threads(threads)
        .map_err(|e| format!("--threads {threads}: {e}"))?;
    Ok(session)
}

/// Parameter `j`'s values of a `[pixels][d]` array.
fn channel(values: &[f32], d: usize, j: usize) -> Vec<f32> {
    values.iter().skip(j).step_by(d).copied().collect()
}

/// Name and units of each parameter (from the model file, or x0, x1, … without units).
pub fn parameter_labels(model: &Model) -> Vec<(String, String)> {
    let d = model.layout().x_dim();
    (0..d)
        .map(|j| {
            let name = model
                .x_name(j)
                .map_or_else(|| format!("x{j}"), str::to_string);
            let units = model.x_unit(j).unwrap_or("").to_string();
            (name, units)
        })
        .collect()
}

/// A file name for a parameter: its name with anything but letters, digits, `-` and `_`
/// replaced.
fn file_stem(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Coverage of the central intervals of [`CALIBRATION_LEVELS`] for parameter `j` over the
/// valid pixels: for each level q, the fraction of pixels whose true value lies within
/// [Q((1−q)/2), Q((1+q)/2)] of its samples.
pub fn coverage(s: &FrameSummary, truth: &[f32], d: usize, j: usize) -> Vec<(f64, f64)> {
    let k = s.quantile_levels.len();
    let level_index = |q: f32| s.quantile_levels.iter().position(|&l| l == q);
    CALIBRATION_LEVELS
        .iter()
        .map(|&level| {
            let lo = level_index(((1.0 - level) / 2.0) as f32).expect("requested");
            let hi = level_index(((1.0 + level) / 2.0) as f32).expect("requested");
            let (mut inside, mut total) = (0usize, 0usize);
            for p in 0..truth.len() / d {
                let (a, b) = (
                    s.quantiles[(p * k + lo) * d + j],
                    s.quantiles[(p * k + hi) * d + j],
                );
                if a.is_nan() || b.is_nan() {
                    continue;
                }
                total += 1;
                let t = truth[p * d + j];
                inside += usize::from(a <= t && t <= b);
            }
            (level, inside as f64 / total.max(1) as f64)
        })
        .collect()
}

/// Mean over the levels of |coverage − level| (docs/metrics.md §calibration-error).
pub fn calibration_error(curve: &[(f64, f64)]) -> f64 {
    curve.iter().map(|(q, c)| (c - q).abs()).sum::<f64>() / curve.len().max(1) as f64
}

/// Root mean square of `a − b` over the entries where both are finite.
pub fn rmse(a: &[f32], b: &[f32]) -> f64 {
    let (mut sum, mut count) = (0.0f64, 0usize);
    for (&x, &y) in a.iter().zip(b) {
        if x.is_finite() && y.is_finite() {
            sum += (x as f64 - y as f64).powi(2);
            count += 1;
        }
    }
    (sum / count.max(1) as f64).sqrt()
}

pub fn run(model: &Model, o: &ImageOptions<'_>) -> CliResult<()> {
    let layout = model.layout();
    if layout.x_dim() == 0 || layout == innfer::Layout::None {
        return Err(format!(
            "{}: the model has no sampling layout (docs/format.md §3): `innfer image` needs a \
             conditional model",
            o.model_path.display()
        ));
    }
    let (xd, yd) = (layout.x_dim(), layout.y_dim());
    let cube = read_cube(o.cube, "a spectral cube", "bands")?;
    if cube.depth != yd {
        return Err(format!(
            "{}: the cube has {} bands per pixel; the model {} takes {yd}",
            o.cube.display(),
            cube.depth,
            o.model_path.display()
        ));
    }
    let (h, w) = (cube.height, cube.width);
    let truth = match o.truth {
        Some(path) => {
            let t = read_cube(path, "the truth", "parameters")?;
            if (t.height, t.width, t.depth) != (h, w, xd) {
                return Err(format!(
                    "{}: the truth has shape ({}, {}, {}); the cube and the model need \
                     ({h}, {w}, {xd})",
                    path.display(),
                    t.height,
                    t.width,
                    t.depth
                ));
            }
            Some(t.data)
        }
        None => None,
    };
    std::fs::create_dir_all(o.out).map_err(|e| format!("creating {}: {e}", o.out.display()))?;

    let mut session = frame_session(model, o.n, o.threads)?;
    let levels = quantile_list(truth.is_some());
    let s = summarize_frame(&mut session, &cube.data, o.n, o.seed, &levels)?;
    let pixels = h * w;
    println!(
        "{h}×{w} pixels, {} samples each: {:.3} s, {:.2} frames/s, {:.3} M samples/s on {} threads; \
         {} invalid pixels (NaN summaries)",
        o.n,
        s.seconds,
        1.0 / s.seconds,
        (pixels * o.n) as f64 / s.seconds / 1e6,
        session.threads(),
        s.invalid_pixels
    );

    // The maps: mean and std (h, w, d), the reported quantiles (h, w, 3, d).
    let k = levels.len();
    let reported: Vec<f32> = (0..pixels)
        .flat_map(|p| {
            let row = &s.quantiles[p * k * xd..(p * k + REPORTED_QUANTILES.len()) * xd];
            row.iter().copied()
        })
        .collect();
    let save = |name: &str, shape: &[usize], data: &[f32]| -> CliResult<PathBuf> {
        let path = o.out.join(name);
        write(&Sink::File(&path, Format::Npy), shape, data)?;
        Ok(path)
    };
    save("mean.npy", &[h, w, xd], &s.mean)?;
    save("std.npy", &[h, w, xd], &s.std)?;
    save(
        "quantiles.npy",
        &[h, w, REPORTED_QUANTILES.len(), xd],
        &reported,
    )?;
    println!(
        "wrote {}/mean.npy, std.npy ({h}, {w}, {xd}) and quantiles.npy ({h}, {w}, {}, {xd}) at q = {:?}",
        o.out.display(),
        REPORTED_QUANTILES.len(),
        REPORTED_QUANTILES
    );

    let labels = parameter_labels(model);
    let mut curves = Vec::new();
    for (j, (name, units)) in labels.iter().enumerate() {
        let mean = channel(&s.mean, xd, j);
        let std = channel(&s.std, xd, j);
        let mut panels = vec![
            MapPanel {
                title: format!("posterior mean of {name}"),
                range: MapPanel::range_of(&mean, true, Colormap::Viridis),
                values: &mean,
                units: units.clone(),
                colormap: Colormap::Viridis,
            },
            MapPanel {
                title: format!("posterior std of {name}"),
                range: MapPanel::range_of(&std, true, Colormap::Viridis),
                values: &std,
                units: units.clone(),
                colormap: Colormap::Viridis,
            },
        ];
        let (error, zscore);
        if let Some(t) = &truth {
            let true_j = channel(t, xd, j);
            error = mean
                .iter()
                .zip(&true_j)
                .map(|(m, t)| m - t)
                .collect::<Vec<f32>>();
            zscore = error
                .iter()
                .zip(&std)
                .map(|(e, s)| e / s)
                .collect::<Vec<f32>>();
            panels.push(MapPanel {
                title: format!("error of the mean ({name})"),
                range: MapPanel::range_of(&error, true, Colormap::Diverging),
                values: &error,
                units: units.clone(),
                colormap: Colormap::Diverging,
            });
            panels.push(MapPanel {
                title: "z-score (mean − true) / std".into(),
                range: (-3.0, 3.0),
                values: &zscore,
                units: String::new(),
                colormap: Colormap::Diverging,
            });
            let curve = coverage(&s, t, xd, j);
            println!(
                "{name}: RMSE of the posterior mean {:.4}{}, calibration error {:.4}",
                rmse(&mean, &true_j),
                if units.is_empty() {
                    String::new()
                } else {
                    format!(" {units}")
                },
                calibration_error(&curve)
            );
            curves.push(CalibrationCurve {
                name: name.clone(),
                points: curve,
            });
        }
        let path = o.out.join(format!("{}.png", file_stem(name)));
        map_figure(
            &path,
            &format!("{name}: {} samples per pixel", o.n),
            &panels,
            (h, w),
        )?;
        println!("wrote {}", path.display());
    }
    if !curves.is_empty() {
        let path = o.out.join("calibration.png");
        calibration_figure(
            &path,
            "Calibration over pixels: coverage of the central q-intervals",
            &curves,
        )?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
