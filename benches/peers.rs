//! innfer's side of benches/peers/run.py: inverse-pass throughput of exported model files.
//!
//! Batch mode:
//! `cargo bench --bench peers -- --models glow_toy=target/peers/glow_toy.safetensors ...
//!   [--batches 1 64 1024 16384] [--threads 1 2] [--variants f32]`
//! prints one JSON line per (model, variant, threads, batch): samples/s, median of 5
//! repetitions of at least 0.15 s after a warm-up (the peers' protocol).
//!
//! Bound mode (`--bound`, same `--models`/`--variants`): batch-1 speed against the
//! weight-streaming bound (see `bound`).
//!
//! Server mode (`--serve`), used by run.py so that innfer's repetitions interleave with the
//! peers' (load from elsewhere on the machine then hits every engine alike): reads commands
//! from stdin, one per line, and answers each with one line on stdout:
//! * `load NAME PATH` → `ok`
//! * `rep NAME VARIANT BATCH THREADS [SECONDS]` → samples/s of one repetition of at least
//!   0.15 s (or SECONDS; the first `rep` of a configuration warms it up first), then samples
//!   per CPU-second of the process (all its threads) during it
//! * `peak` → GFLOP/s of the core's FMA loop over one repetition (see `timing/fma.rs`), so
//!   the run can state each engine's GFLOP/s as a fraction of the peak at that moment
//! * `quit`

use std::collections::HashMap;
use std::hint::black_box;
use std::io::{BufRead, Write};
use std::time::Duration;

use innfer::{Model, Session};

#[path = "timing/mod.rs"]
mod timing;

#[path = "timing/fma.rs"]
mod fma;

use timing::{MIN_REP, median_rate, one_rep_for};

/// Loads `bytes` with the weight storage named by `variant` (`f32`, `bf16`, `f16`).
fn load(bytes: &[u8], variant: &str) -> Model {
    let storage = match variant {
        "f32" => innfer::model::WeightStorage::F32,
        "bf16" => innfer::model::WeightStorage::Bf16,
        "f16" => innfer::model::WeightStorage::F16,
        v => panic!("unknown variant {v} (f32, bf16, f16)"),
    };
    Model::from_bytes_with(
        bytes,
        &innfer::model::LoadOptions {
            weight_storage: storage,
            ..Default::default()
        },
    )
    .unwrap()
}

/// The input of every call: deterministic values in [-1, 1).
fn input(batch: usize, dim: usize) -> Vec<f32> {
    (0..batch * dim)
        .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
        .collect()
}

struct Case {
    session: Session<'static, 'static>,
    z: Vec<f32>,
    x: Vec<f32>,
    batch: usize,
}

impl Case {
    fn new(model: &'static Model, batch: usize, threads: usize) -> Case {
        let mut session = Session::new(model, batch).unwrap();
        session.set_threads(threads).unwrap();
        let dim = model.dim();
        let mut case = Case {
            session,
            z: input(batch, dim),
            x: vec![0.0f32; batch * dim],
            batch,
        };
        case.call();
        case
    }

    fn call(&mut self) {
        self.session
            .inverse(black_box(&self.z), None, &mut self.x, None)
            .unwrap();
        black_box(&self.x);
    }
}

fn serve() {
    let mut files: HashMap<String, Vec<u8>> = HashMap::new();
    // Models are leaked: the server lives for one benchmark run.
    let mut models: HashMap<(String, String), &'static Model> = HashMap::new();
    let mut cases: HashMap<(String, String, usize, usize), Case> = HashMap::new();
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let line = line.unwrap();
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["load", name, path] => {
                files.insert(name.to_string(), std::fs::read(path).expect("model file"));
                writeln!(out, "ok").unwrap();
            }
            ["rep", name, variant, batch, threads, rest @ ..] => {
                let (batch, threads): (usize, usize) =
                    (batch.parse().unwrap(), threads.parse().unwrap());
                let key = (name.to_string(), variant.to_string());
                let model = *models
                    .entry(key)
                    .or_insert_with(|| Box::leak(Box::new(load(&files[*name], variant))));
                // One live configuration at a time keeps the memory of the big batches bounded.
                let ckey = (name.to_string(), variant.to_string(), batch, threads);
                if !cases.contains_key(&ckey) {
                    cases.clear();
                    cases.insert(ckey.clone(), Case::new(model, batch, threads));
                }
                let case = cases.get_mut(&ckey).unwrap();
                let b = case.batch;
                let secs: f64 = rest
                    .first()
                    .map_or(MIN_REP.as_secs_f64(), |s| s.parse().unwrap());
                let (rate, cpu_rate) =
                    one_rep_for(Duration::from_secs_f64(secs), b, &mut || case.call());
                writeln!(out, "{rate:.1} {cpu_rate:.1}").unwrap();
            }
            ["peak"] => {
                let gflops = fma::peak_gflops(MIN_REP).unwrap_or(0.0);
                writeln!(out, "{gflops:.1}").unwrap();
            }
            ["quit"] => break,
            _ => writeln!(out, "error: {line}").unwrap(),
        }
        out.flush().unwrap();
    }
}

/// Sum of `buf` with 8 independent AVX-512 (or portable) accumulators: a pure read stream.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn read512(buf: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let mut acc = [_mm512_setzero_ps(); 8];
    for chunk in buf.chunks_exact(128) {
        for (j, v) in acc.iter_mut().enumerate() {
            // SAFETY: chunk has 128 floats; j*16+16 <= 128.
            let x = unsafe { _mm512_loadu_ps(chunk.as_ptr().add(j * 16)) };
            *v = _mm512_add_ps(*v, x);
        }
    }
    let mut s = _mm512_setzero_ps();
    for v in acc {
        s = _mm512_add_ps(s, v);
    }
    _mm512_reduce_add_ps(s)
}

fn read_stream(buf: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") {
        // SAFETY: AVX-512F detected.
        return unsafe { read512(buf) };
    }
    buf.chunks_exact(8)
        .fold([0f32; 8], |mut a, c| {
            a.iter_mut().zip(c).for_each(|(x, y)| *x += y);
            a
        })
        .iter()
        .sum()
}

/// `--bound`: batch-1 inverse speed against the weight-streaming bound, side by side: reading
/// a buffer of the model's weight bytes (the same cache level) is timed between the batch-1
/// repetitions; fraction = samples/s × weight bytes / read bandwidth. Wall-clock and per
/// CPU-second of the process (the latter is what a quiet core would give).
fn bound(models: &[(String, String)], variants: &[String]) {
    println!(
        "| model | storage | weight MB | batch-1 samples/s | read GB/s | fraction | per CPU-s: samples | read GB | fraction |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for (name, path) in models {
        let bytes = std::fs::read(path).expect("model file");
        for variant in variants {
            let model: &'static Model = Box::leak(Box::new(load(&bytes, variant)));
            let wb = model.weight_bytes();
            let buf = vec![1.0f32; wb / 4];
            let mut case = Case::new(model, 1, 1);
            let mut reads = || {
                black_box(read_stream(black_box(&buf)));
            };
            reads();
            let mut r = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
            for _ in 0..7 {
                let (a, b) = one_rep_for(Duration::from_millis(300), 1, &mut || case.call());
                let (c, d) = one_rep_for(Duration::from_millis(300), 1, &mut reads);
                r[0].push(a);
                r[1].push(b);
                r[2].push(c * wb as f64 / 1e9);
                r[3].push(d * wb as f64 / 1e9);
            }
            let med = |v: &mut Vec<f64>| {
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            let [s, sc, g, gc] = r.each_mut().map(med);
            println!(
                "| {name} | {variant} | {:.2} | {s:.0} | {g:.1} | {:.2} | {sc:.0} | {gc:.1} | {:.2} |",
                wb as f64 / 1e6,
                s * wb as f64 / 1e9 / g,
                sc * wb as f64 / 1e9 / gc
            );
        }
    }
}

fn main() {
    let mut models: Vec<(String, String)> = Vec::new();
    let mut batches: Vec<usize> = vec![1, 64, 1024];
    let mut threads: Vec<usize> = vec![1];
    let mut variants: Vec<String> = vec!["f32".into()];
    let mut list: Option<&str> = None;
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--serve") {
        serve();
        return;
    }
    for a in &args {
        match a.as_str() {
            "--models" | "--batches" | "--threads" | "--variants" => {
                list = Some(match a.as_str() {
                    "--models" => "m",
                    "--batches" => "b",
                    "--threads" => "t",
                    _ => "v",
                });
                match list {
                    Some("b") => batches.clear(),
                    Some("t") => threads.clear(),
                    Some("v") => variants.clear(),
                    _ => {}
                }
            }
            "--bench" | "--bound" => {}
            v => match list {
                Some("m") => {
                    let (name, path) = v.split_once('=').expect("--models name=path");
                    models.push((name.into(), path.into()));
                }
                Some("b") => batches.push(v.parse().expect("batch")),
                Some("t") => threads.push(v.parse().expect("threads")),
                Some("v") => variants.push(v.into()),
                _ => {}
            },
        }
    }
    let bound_mode = args.iter().any(|a| a == "--bound");
    if models.is_empty() {
        for name in [
            "allinone_toy",
            "glow_toy",
            "allinone_medical",
            "glow_medical",
            "allinone_large",
            "glow_large",
        ] {
            let path = format!("target/peers/{name}.safetensors");
            if std::path::Path::new(&path).exists() {
                models.push((name.into(), path));
            }
        }
    }
    if bound_mode {
        bound(&models, &variants);
        return;
    }
    for (name, path) in &models {
        let bytes = std::fs::read(path).expect("model file");
        for variant in &variants {
            let model: &'static Model = Box::leak(Box::new(load(&bytes, variant)));
            for &t in &threads {
                for &batch in &batches {
                    let mut case = Case::new(model, batch, t);
                    let rate = median_rate(batch, || case.call());
                    println!(
                        "{{\"model\": \"{name}\", \"variant\": \"{variant}\", \"threads\": {t}, \"batch\": {batch}, \"rate\": {rate:.1}}}"
                    );
                }
            }
        }
    }
}
