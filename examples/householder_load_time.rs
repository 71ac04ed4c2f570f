//! Writes a Householder AllInOneBlock model (`tests/common`'s `householder_aio`: `D` channels,
//! `K` reflections, `w_0` a permutation matrix) and times loading it (docs/format.md §8,
//! "Time"): best of 3 wall-clock loads.
//!
//! ```text
//! cargo run --release --example householder_load_time -- 2048 2048 target/householder.safetensors
//! ```

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(d), Some(k), Some(path)) = (
        args.first().and_then(|a| a.parse::<usize>().ok()),
        args.get(1).and_then(|a| a.parse::<usize>().ok()),
        args.get(2),
    ) else {
        eprintln!("usage: householder_load_time D K OUT.safetensors");
        std::process::exit(2);
    };
    let bytes = common::householder_aio(d, k, false, 1).to_bytes();
    std::fs::write(path, &bytes).expect("writing the model");
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let start = Instant::now();
        let model = innfer::Model::from_file(path).expect("loading the model");
        best = best.min(start.elapsed().as_secs_f64());
        drop(model);
    }
    println!(
        "D = {d}, K = {k}: {} bytes, loaded in {best:.3} s (best of 3)",
        bytes.len()
    );
    // What the block then costs to run: a forward pass of 64 rows, best of 3.
    let model = innfer::Model::from_file(path).expect("loading the model");
    let rows = 64;
    let mut session = innfer::Session::new(&model, rows).expect("a session");
    let x = vec![0.5f32; rows * d];
    let cond = vec![0.25f32; rows * model.cond_dim()];
    let mut z = vec![0.0f32; rows * d];
    let mut run = f64::INFINITY;
    for _ in 0..3 {
        let start = Instant::now();
        session
            .forward(&x, Some(&cond), &mut z, None)
            .expect("a forward pass");
        run = run.min(start.elapsed().as_secs_f64());
    }
    println!(
        "forward pass of {rows} rows: {:.1} ms (best of 3)",
        run * 1e3
    );
}
