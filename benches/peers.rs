//! innfer's side of benches/peers/run.py: inverse-pass throughput of exported model files.
//!
//! `cargo bench --bench peers -- --models glow_toy=target/peers/glow_toy.safetensors ...
//!   [--batches 1 64 1024 16384] [--threads 1 2] [--variants f32]`
//!
//! Prints one JSON line per (model, variant, threads, batch): samples/s, median of 5
//! repetitions of at least 0.15 s after a warm-up (the peers' protocol).

use std::hint::black_box;
use std::time::{Duration, Instant};

use innfer::{Model, Session};

const REPS: usize = 5;
const MIN_REP: Duration = Duration::from_millis(150);

fn median_rate(items_per_call: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut rates: Vec<f64> = (0..REPS)
        .map(|_| {
            let (start, mut calls) = (Instant::now(), 0usize);
            while start.elapsed() < MIN_REP {
                f();
                calls += 1;
            }
            (calls * items_per_call) as f64 / start.elapsed().as_secs_f64()
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    rates[REPS / 2]
}

fn main() {
    let mut models: Vec<(String, String)> = Vec::new();
    let mut batches: Vec<usize> = vec![1, 64, 1024];
    let mut threads: Vec<usize> = vec![1];
    let mut variants: Vec<String> = vec!["f32".into()];
    let mut list: Option<&str> = None;
    let args: Vec<String> = std::env::args().skip(1).collect();
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
            "--bench" => {}
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
    for (name, path) in &models {
        let bytes = std::fs::read(path).expect("model file");
        for variant in &variants {
            // Only f32 weight storage exists so far (f16/bf16 storage: issue 6, not done).
            assert_eq!(variant, "f32", "unknown variant {variant}");
            let model = Model::from_bytes(&bytes).unwrap();
            let dim = model.dim();
            for &t in &threads {
                for &batch in &batches {
                    let mut session = Session::new(&model, batch).unwrap();
                    session.set_threads(t).unwrap();
                    let z: Vec<f32> = (0..batch * dim)
                        .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
                        .collect();
                    let mut x = vec![0.0f32; batch * dim];
                    let rate = median_rate(batch, || {
                        session.inverse(black_box(&z), None, &mut x, None).unwrap();
                        black_box(&x);
                    });
                    println!(
                        "{{\"model\": \"{name}\", \"variant\": \"{variant}\", \"threads\": {t}, \"batch\": {batch}, \"rate\": {rate:.1}}}"
                    );
                }
            }
        }
    }
}
