//! Times innfer's training for `benches/train_vs_freia.py`: trains a conditional chain by
//! maximum likelihood on x/y from `.npy` files and prints one JSON line per epoch.
//!
//! ```text
//! cargo run --release --features train --example train_epoch -- \
//!     --x x.npy --y y.npy --block allinone --blocks 8 --hidden 64 --layers 2 \
//!     --batch 512 --epochs 3 --threads 2 [--lr 1e-3] [--store]
//! ```
//!
//! Needs the `train` feature (Cargo.toml: `[[example]] name = "train_epoch"
//! required-features = ["train"]`); without it, it only says so.

#[cfg(feature = "train")]
fn main() {
    use innfer::train::optim::{Clip, Schedule};
    use innfer::train::{BlockKind, ClampActivation, Dataset, SubnetSpec, TrainConfig, train};

    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |key: &str| {
        args.iter()
            .position(|a| a == key)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let num = |key: &str, default: f64| get(key).map_or(default, |v| v.parse().expect(key));
    let (Some(x), Some(y)) = (get("--x"), get("--y")) else {
        eprintln!(
            "usage: train_epoch --x X.npy --y Y.npy [--block allinone|glow] [--blocks N] [--hidden H] [--layers L] [--batch B] [--epochs E] [--threads T] [--lr LR] [--store]"
        );
        std::process::exit(2);
    };
    let data = Dataset::from_npy(&x, &y).expect("reading the data");
    let block = match get("--block").as_deref().unwrap_or("allinone") {
        "glow" => BlockKind::Glow {
            clamp: 2.0,
            activation: ClampActivation::Atan,
        },
        _ => BlockKind::AllInOne { clamp: 2.0 },
    };
    let config = TrainConfig {
        block,
        blocks: num("--blocks", 8.0) as usize,
        subnet: SubnetSpec {
            hidden: vec![num("--hidden", 64.0) as usize; num("--layers", 2.0) as usize],
            ..SubnetSpec::default()
        },
        epochs: num("--epochs", 3.0) as usize,
        batch: num("--batch", 512.0) as usize,
        lr: num("--lr", 1e-3),
        clip: Clip::Norm(10.0),
        schedule: Schedule::Constant,
        validation_fraction: 0.0,
        threads: num("--threads", 2.0) as usize,
        store_activations: args.iter().any(|a| a == "--store"),
        ..TrainConfig::default()
    };
    train(&config, &data, |r| {
        println!(
            "{{\"epoch\": {}, \"seconds\": {:.4}, \"loss\": {:.5}, \"it_per_s\": {:.2}}}",
            r.epoch, r.seconds, r.train_loss, r.iterations_per_second
        );
    })
    .expect("training");
}

#[cfg(not(feature = "train"))]
fn main() {
    eprintln!("train_epoch needs `--features train`");
    std::process::exit(2);
}
