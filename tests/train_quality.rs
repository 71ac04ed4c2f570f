//! Training reaches the exact posteriors (quality.md §7). The CI tests are small and fast;
//! the full runs are `#[ignore]`d and run in release mode:
//!
//! ```text
//! cargo test --release --features train --test train_quality -- --ignored --nocapture
//! ```
#![cfg(feature = "train")]

use innfer::train::eval::{gmm8_mode_masses, kl_gap, sbc_ks_pvalues};
use innfer::train::optim::Schedule;
use innfer::train::{Labelling, SubnetSpec, Task, TrainConfig, train};

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn a_small_gmm8_all_run_learns_the_modes() {
    let task = Task::Gmm8(Labelling::All);
    let data = task.simulate(8192, 1, 0);
    let config = TrainConfig {
        blocks: 4,
        subnet: SubnetSpec {
            hidden: vec![32],
            ..SubnetSpec::default()
        },
        epochs: 8,
        batch: 256,
        lr: 5e-3,
        threads: 2,
        ..TrainConfig::default()
    };
    let mut epochs = 0;
    let model = train(&config, &data, |_| epochs += 1).unwrap();
    assert_eq!(epochs, 8);
    let first = model.history[0].validation_nll.unwrap();
    let last = model.history.last().unwrap().validation_nll.unwrap();
    assert!(
        last < first,
        "validation NLL did not improve: {first} → {last}"
    );
    // Unimodal posteriors: a short run already puts nearly all mass on the right mode.
    let gap = kl_gap(&model, task, 2000, 9).unwrap();
    eprintln!(
        "small GMM8 all: KL gap {gap:.3} nats after {} epochs",
        model.history.len()
    );
    assert!(gap < 0.5, "KL gap {gap}");
    for m in gmm8_mode_masses(&model, Labelling::All, 500, 3) {
        assert!(m.modes[0].1 > 0.9, "label {}: {:?}", m.label, m);
    }
}

/// The issue's bar: GMM8 `some`, KL gap < 0.02 nats, mode masses within ±0.02, off-mode < 1 %.
#[test]
#[ignore]
fn gmm8_some_reaches_the_quality_bar() {
    let task = Task::Gmm8(Labelling::Some);
    let n = env_or("INNFER_N", 1usize << 19);
    let data = task.simulate(n, 1, 0);
    let config = TrainConfig {
        blocks: env_or("INNFER_BLOCKS", 12),
        subnet: SubnetSpec {
            hidden: vec![env_or("INNFER_HIDDEN", 128); 2],
            ..SubnetSpec::default()
        },
        epochs: env_or("INNFER_EPOCHS", 30),
        batch: env_or("INNFER_BATCH", 1024),
        lr: env_or("INNFER_LR", 2e-3),
        schedule: Schedule::Cosine {
            final_fraction: 0.01,
        },
        validation_fraction: 0.02,
        threads: env_or("INNFER_THREADS", 2),
        seed: env_or("INNFER_SEED", 0),
        ..TrainConfig::default()
    };
    let started = std::time::Instant::now();
    let model = train(&config, &data, |r| {
        eprintln!(
            "epoch {:>3}/{}  train {:.4}  val NLL {:.4}  {:.1} it/s  lr {:.2e}",
            r.epoch,
            r.epochs,
            r.train_loss,
            r.validation_nll.unwrap_or(f64::NAN),
            r.iterations_per_second,
            r.lr
        )
    })
    .unwrap();
    let minutes = started.elapsed().as_secs_f64() / 60.0;
    let gap = kl_gap(&model, task, 100_000, 12345).unwrap();
    eprintln!("training took {minutes:.2} min; KL gap {gap:.4} nats");
    let masses = gmm8_mode_masses(&model, Labelling::Some, 20_000, 99);
    let mut worst: f64 = 0.0;
    let mut off: f64 = 0.0;
    for m in &masses {
        eprintln!(
            "label {}: modes {:?}  off-mode {:.4}",
            m.label, m.modes, m.off_mode
        );
        for &(_, got, want) in &m.modes {
            worst = worst.max((got - want).abs());
        }
        off = off.max(m.off_mode);
    }
    let sbc = sbc_ks_pvalues(&model, task, 1000, 255, 5);
    eprintln!("worst mode-mass error {worst:.4}, worst off-mode {off:.4}, SBC KS p {sbc:?}");
    if let Ok(path) = std::env::var("INNFER_OUT") {
        model.save(path).unwrap();
    }
    assert!(gap < 0.02, "KL gap {gap}");
    assert!(worst <= 0.02, "mode mass error {worst}");
    assert!(off < 0.01, "off-mode mass {off}");
    assert!(minutes < 10.0);
}
