//! The speed of `Session::summarize` on the camera case: 65,536 observations (a 256 × 256
//! image of 8 band values per pixel) × 32 samples each, reduced to mean, std and the 5 %, 50 %
//! and 95 % quantiles of 4 parameters, on a model of the camera model's shape
//! (docs/performance.md §camera-frame): 6 conditional AllInOneBlocks, subnets
//! Linear(2 + 8 → 64) ReLU Linear(64 → 64) ReLU Linear(64 → 4), x 4 behind a logit on a box,
//! y 8 behind `clr`, both standardised; untrained weights: the speed does not depend on them.
//!
//! Where the time goes, from differences of the same work done in parts:
//! - `inverse`: the chain alone on the same number of rows (given latent vectors, no
//!   random numbers);
//! - `sample_batch`: normals, condition loading, the chain and writing every sample out;
//! - `summarize` without and with quantiles: the same sampling, reduced instead of written.
//!
//! One thread and two (`set_threads`), `max_batch` 1024 and 4096; then `n` = 100,000 samples
//! of 4 observations, more than the session holds, which `summarize` reduces in passes.
//!
//! Run: `cargo bench --features train --bench summarize` (`-- --quick`: 4,096 observations).

use std::hint::black_box;
use std::time::Instant;

// Only its CPU clock is used here.
#[path = "timing/mod.rs"]
#[allow(dead_code)]
mod timing;

use innfer::model::{XTransform, YTransform};
use innfer::train::export::{ExportOptions, Standardization, to_safetensors};
use innfer::train::{Chain, ChainSpec, SubnetSpec};
use innfer::{Layout, Model, Session, SummaryBuffers};

const X: usize = 4;
const Y: usize = 8;
const N: usize = 32;
const QUANTILES: [f32; 3] = [0.05, 0.5, 0.95];

fn model() -> Model {
    let subnet = SubnetSpec {
        hidden: vec![64, 64],
        ..SubnetSpec::default()
    };
    let spec = ChainSpec::all_in_one(X, Y, 6, subnet);
    let chain = Chain::<f32>::new(spec, 1).unwrap();
    let options = ExportOptions {
        layout: Layout::Cinn { x: X, y: Y },
        x_norm: Some(Standardization::identity(X)),
        y_norm: Some(Standardization {
            mean: vec![0.0; Y],
            std: vec![0.5; Y],
        }),
        x_transform: vec![XTransform::logit(0.0, 1.0).unwrap(); X],
        y_transform: YTransform::Clr,
        x_names: Vec::new(),
        x_units: Vec::new(),
        producer: "benches/summarize.rs".into(),
    };
    Model::from_bytes(&to_safetensors(&chain, &options).unwrap()).unwrap()
}

/// Wall and CPU seconds (all threads) of the fastest of `reps` runs of `f`: on a machine
/// shared with other work the CPU seconds still say what the work costs.
fn best_seconds(reps: usize, mut f: impl FnMut()) -> (f64, f64) {
    (0..reps)
        .map(|_| {
            let (start, cpu) = (Instant::now(), timing::process_cpu_seconds());
            f();
            let cpu = timing::process_cpu_seconds() - cpu;
            (start.elapsed().as_secs_f64(), cpu)
        })
        .fold((f64::INFINITY, 0.0), |a, b| if b.0 < a.0 { b } else { a })
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let pixels = if quick { 4096 } else { 256 * 256 };
    let reps = if quick { 1 } else { 3 };
    let model = model();
    // Band values of a smooth image: every pixel a different observation.
    let ys: Vec<f32> = (0..pixels * Y)
        .map(|i| 0.2 + 0.5 * (((i / Y) % 256) as f32 / 256.0) + 0.03 * (i % Y) as f32)
        .collect();
    let rows = pixels * N;
    let (mut mean, mut std) = (vec![0.0f32; pixels * X], vec![0.0f32; pixels * X]);
    let mut values = vec![0.0f32; pixels * QUANTILES.len() * X];
    let mut samples = vec![0.0f32; rows * X];
    println!(
        "{pixels} observations × {N} samples, x {X}, y {Y}, {} parameters; samples/s of the \
         fastest of {reps} runs (in brackets: per CPU-second, all threads)",
        model.parameter_count()
    );
    println!(
        "| threads | max_batch | inverse | sample_batch | summarize | summarize + 3 quantiles |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    for threads in [1, 2] {
        for max_batch in [1024, 4096] {
            let mut session = Session::new(&model, max_batch).unwrap();
            session.set_threads(threads).unwrap();
            let z: Vec<f32> = (0..max_batch * X)
                .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
                .collect();
            let cond: Vec<f32> = ys[..max_batch * Y].to_vec();
            let mut x = vec![0.0f32; max_batch * X];
            let inverse = best_seconds(reps, || {
                for _ in 0..rows / max_batch {
                    session
                        .inverse(black_box(&z), Some(&cond), &mut x, None)
                        .unwrap();
                }
            });
            let sample = best_seconds(reps, || {
                session.reseed(1, 0);
                session.sample_batch(&ys, N, &mut samples).unwrap();
                black_box(&samples);
            });
            let mut summarize = |quantiles: &[f32]| {
                best_seconds(reps, || {
                    session.reseed(1, 0);
                    let per = quantiles.len() * X;
                    let out = SummaryBuffers {
                        mean: &mut mean,
                        std: &mut std,
                        quantile_values: &mut values[..pixels * per],
                    };
                    session.summarize(&ys, N, quantiles, out).unwrap();
                    black_box(&mean);
                })
            };
            let moments = summarize(&[]);
            let all = summarize(&QUANTILES);
            let rate = |(wall, cpu): (f64, f64)| {
                format!("{:.0} ({:.0})", rows as f64 / wall, rows as f64 / cpu)
            };
            println!(
                "| {threads} | {max_batch} | {} | {} | {} | {} |",
                rate(inverse),
                rate(sample),
                rate(moments),
                rate(all)
            );
        }
    }

    // More samples than the session holds: passes over each observation's stream rows.
    let n = 100_000;
    let few = &ys[..4 * Y];
    let mut session = Session::new(&model, 4096).unwrap();
    session.set_threads(2).unwrap();
    let (mut mean, mut std, mut values) = (vec![0.0; 4 * X], vec![0.0; 4 * X], vec![0.0; 12 * X]);
    let mut passes = 0;
    let (seconds, _) = best_seconds(1, || {
        let out = SummaryBuffers {
            mean: &mut mean,
            std: &mut std,
            quantile_values: &mut values,
        };
        passes = session.summarize(few, n, &QUANTILES, out).unwrap().passes;
    });
    let mut samples = vec![0.0f32; 4 * n * X];
    let (sample, _) = best_seconds(1, || session.sample_batch(few, n, &mut samples).unwrap());
    println!(
        "\n4 observations × {n} samples, max_batch 4096, 2 threads: summarize in {passes} passes \
         {:.3} s ({:.0} samples/s), sample_batch {:.3} s ({:.0} samples/s): {:.1}× the sampling",
        seconds,
        (4 * n) as f64 / seconds,
        sample,
        (4 * n) as f64 / sample,
        seconds / sample
    );
}
