//! `innfer image`: the per-pixel posterior summaries of a spectral cube are exactly what
//! `Session::summarize` gives for the pixels as observations (pixel p on rows p·n … of the
//! stream), whatever the thread count; dead and saturated pixels come out NaN and are counted;
//! every bad input is one line naming it.

mod common;
use common::{TempDir, assert_ok, innfer, stderr, stdout};

use std::path::{Path, PathBuf};

use innfer::{Model, Session, SummaryBuffers};

/// A cINN of 4 bounded parameters given 8 raw band values (y transform clr).
fn camera_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/pypi_cinn_bounded_clr/model.safetensors")
}

const H: usize = 6;
const W: usize = 5;
const BANDS: usize = 8;
const X: usize = 4;

/// Band values of a small frame; pixel 7 has a dead band (0), pixel 12 a saturated one (Inf),
/// pixel 20 a NaN.
fn frame() -> Vec<f32> {
    let mut c: Vec<f32> = (0..H * W * BANDS)
        .map(|i| 0.4 + 0.3 * ((i as f32) * 0.61).sin())
        .collect();
    c[7 * BANDS + 3] = 0.0;
    c[12 * BANDS] = f32::INFINITY;
    c[20 * BANDS + 7] = f32::NAN;
    c
}

const INVALID: [usize; 3] = [7, 12, 20];

fn save(dir: &TempDir, name: &str, shape: &[usize], data: &[f32]) -> PathBuf {
    let path = dir.path(name);
    std::fs::write(&path, innfer::npy::to_bytes(shape, data)).unwrap();
    path
}

fn load(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let a = innfer::npy::parse(&std::fs::read(path).unwrap()).unwrap();
    (a.shape, a.data)
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|f| f.to_bits()).collect()
}

#[test]
fn the_maps_are_the_sessions_summaries_of_every_pixel_for_any_thread_count() {
    let dir = TempDir::new("image_maps");
    let cube = save(&dir, "cube.npy", &[H, W, BANDS], &frame());
    let run = |threads: &str, out: &str| {
        let o = innfer(&[
            &"image",
            &camera_model(),
            &"--cube",
            &cube,
            &"--n",
            &"40",
            &"--seed",
            &"5",
            &"--threads",
            &threads,
            &"--out",
            &dir.path(out),
        ]);
        assert_ok(&o);
        assert!(stdout(&o).contains("3 invalid pixels"), "{}", stdout(&o));
        dir.path(out)
    };
    let one = run("1", "one");
    let two = run("2", "two");
    for name in ["mean.npy", "std.npy", "quantiles.npy"] {
        assert_eq!(
            bits(&load(&one.join(name)).1),
            bits(&load(&two.join(name)).1),
            "{name}"
        );
    }
    for j in 0..X {
        assert!(one.join(format!("x{j}.png")).is_file());
    }

    // The library's own summaries of the pixels as observations.
    let model = Model::from_file(camera_model()).unwrap();
    let mut s = Session::new(&model, 256).unwrap();
    s.reseed(5, 0);
    let q = [0.05f32, 0.5, 0.95];
    let (mut mean, mut std, mut qv) = (
        vec![0.0; H * W * X],
        vec![0.0; H * W * X],
        vec![0.0; H * W * q.len() * X],
    );
    let report = s
        .summarize(
            &frame(),
            40,
            &q,
            SummaryBuffers {
                mean: &mut mean,
                std: &mut std,
                quantile_values: &mut qv,
            },
        )
        .unwrap();
    assert_eq!(report.invalid_rows, INVALID.len());
    let (shape, m) = load(&one.join("mean.npy"));
    assert_eq!(shape, [H, W, X]);
    assert_eq!(bits(&m), bits(&mean));
    assert_eq!(bits(&load(&one.join("std.npy")).1), bits(&std));
    let (shape, qs) = load(&one.join("quantiles.npy"));
    assert_eq!(shape, [H, W, q.len(), X]);
    assert_eq!(bits(&qs), bits(&qv));
    for p in 0..H * W {
        let nan = m[p * X..(p + 1) * X].iter().all(|v| v.is_nan());
        assert_eq!(nan, INVALID.contains(&p), "pixel {p}");
    }
}

#[test]
fn with_the_truth_it_reports_error_and_calibration_and_draws_them() {
    let dir = TempDir::new("image_truth");
    let cube = save(&dir, "cube.npy", &[H, W, BANDS], &frame());
    let truth: Vec<f32> = (0..H * W)
        .flat_map(|p| [0.5, 0.03, 10.0 + p as f32 * 0.1, 0.0])
        .collect();
    let truth = save(&dir, "truth.npy", &[H, W, X], &truth);
    let out = dir.path("maps");
    let o = innfer(&[
        &"image",
        &camera_model(),
        &"--cube",
        &cube,
        &"--truth",
        &truth,
        &"--out",
        &out,
    ]);
    assert_ok(&o);
    let text = stdout(&o);
    assert_eq!(
        text.matches("RMSE of the posterior mean").count(),
        X,
        "{text}"
    );
    assert!(text.contains("calibration error"), "{text}");
    assert!(out.join("calibration.png").is_file());
}

/// Exit code 1 (2 for a usage error the argument parser finds) and one `innfer: …` line on
/// stderr mentioning every needle.
#[track_caller]
fn fails_with(args: &[&dyn AsRef<std::ffi::OsStr>], needles: &[&str]) {
    let o = innfer(args);
    let err = stderr(&o);
    assert!(matches!(o.status.code(), Some(1 | 2)), "stderr: {err}");
    assert!(
        err.starts_with("innfer: ") && !err.contains("panicked"),
        "stderr: {err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "stderr: {err}");
    for n in needles {
        assert!(err.contains(n), "stderr {err:?} does not mention {n:?}");
    }
}

#[test]
fn bad_inputs_are_one_line_naming_what_is_wrong() {
    let dir = TempDir::new("image_errors");
    let out = dir.path("out");
    let seven = save(&dir, "seven.npy", &[H, W, 7], &vec![0.5; H * W * 7]);
    fails_with(
        &[&"image", &camera_model(), &"--cube", &seven, &"--out", &out],
        &["seven.npy", "7 bands", "takes 8"],
    );
    let flat = save(&dir, "flat.npy", &[H * W, BANDS], &frame());
    fails_with(
        &[&"image", &camera_model(), &"--cube", &flat, &"--out", &out],
        &["flat.npy", "3-D", "(height, width, bands)"],
    );
    let cube = save(&dir, "cube.npy", &[H, W, BANDS], &frame());
    fails_with(
        &[
            &"image",
            &camera_model(),
            &"--cube",
            &cube,
            &"--n",
            &"0",
            &"--out",
            &out,
        ],
        &["--n", "at least 1"],
    );
    let no_layout = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/pypi_rnvp_tanh/model.safetensors");
    fails_with(
        &[&"image", &no_layout, &"--cube", &cube, &"--out", &out],
        &["no sampling layout"],
    );
    let truth = save(&dir, "truth.npy", &[H, W, 3], &vec![0.5; H * W * 3]);
    fails_with(
        &[
            &"image",
            &camera_model(),
            &"--cube",
            &cube,
            &"--truth",
            &truth,
            &"--out",
            &out,
        ],
        &["truth.npy", &format!("({H}, {W}, {X})")],
    );
}
