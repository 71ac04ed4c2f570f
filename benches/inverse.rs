//! Inverse-pass throughput (samples/s) of innfer on the peers' benchmark models
//! (docs/performance.md §peer-models: GLOW + PermuteRandom, subnets Linear-ReLU-Linear-ReLU-Linear):
//! toy (16, 8 blocks, 128), medical (24, 8, 256), large (64, 12, 512), at batch 1, 64, 1024,
//! one thread. Run: `cargo bench --bench inverse` (harness = false; median of 5 runs ≥ 0.15 s).

#[path = "../tests/common/mod.rs"]
mod common;

use innfer::{Model, Session};
use std::hint::black_box;

#[path = "timing/mod.rs"]
mod timing;

use timing::median_rate;

fn main() {
    let models = [
        ("toy", 16, 8, 128),
        ("medical", 24, 8, 256),
        ("large", 64, 12, 512),
    ];
    let quick = std::env::args().any(|a| a == "--quick");
    println!("| model (dim, blocks, hidden) | batch | samples/s | GFLOP/s |");
    println!("|---|---:|---:|---:|");
    for (name, dim, blocks, hidden) in models {
        let file = common::glow_chain(dim, 0, hidden, 2, blocks, 1);
        let model = Model::from_bytes(&file.to_bytes()).unwrap();
        // FLOPs per sample: 2·in·out over every Linear of the two subnets of every block.
        let (l1, l2) = (dim / 2, dim - dim / 2);
        let per_subnet =
            |n_in: usize, n_out: usize| 2 * (n_in * hidden + hidden * hidden + hidden * n_out);
        let flops = blocks * (per_subnet(l1, 2 * l2) + per_subnet(l2, 2 * l1));
        for batch in [1usize, 64, 1024] {
            if quick && batch > 64 {
                continue;
            }
            let mut session = Session::new(&model, batch).unwrap();
            let z: Vec<f32> = (0..batch * dim)
                .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
                .collect();
            let mut x = vec![0.0f32; batch * dim];
            let rate = median_rate(batch, || {
                session.inverse(black_box(&z), None, &mut x, None).unwrap();
                black_box(&x);
            });
            println!(
                "| {name} ({dim}, {blocks}, {hidden}) | {batch} | {rate:.0} | {:.1} |",
                rate * flops as f64 / 1e9
            );
        }
    }
}
