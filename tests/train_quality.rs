//! Training reaches the exact posteriors. The CI tests are small and fast; the full runs (the
//! quality bar of README.md and models/README.md) are `#[ignore]`d, run in release mode, one at
//! a time:
//!
//! ```text
//! cargo test --release --features train --test train_quality -- --ignored --nocapture --test-threads 1
//! cargo test --release --features train --test train_quality -- --ignored --nocapture gmm8_some
//! cargo test --release --features train --test train_quality -- --ignored --nocapture kinematics
//! cargo test --release --features train --test train_quality -- --ignored --nocapture gaussian_linear
//! cargo test --release --features train --test train_quality -- --ignored --nocapture inn_objective
//! ```
//!
//! Every knob of the full runs can be overridden by an environment variable (`INNFER_N`,
//! `INNFER_EPOCHS`, `INNFER_BLOCKS`, `INNFER_HIDDEN`, `INNFER_LAYERS`, `INNFER_BATCH`,
//! `INNFER_LR`, `INNFER_THREADS`, `INNFER_SEED`, `INNFER_OBS`; `INNFER_OUT` saves the model).

use std::time::Instant;

use innfer::metrics::stats::{mean, median};
use innfer::metrics::{
    C2stOptions, PosteriorSampler, arm_modes, c2st_vs_exact, compare_with_exact, draw,
    gmm8_mode_masses, held_out, observation_checks, sbc_ranks,
};
use innfer::rng::Rng;
use innfer::train::inn::InnConfig;
use innfer::train::optim::{AdamConfig, Clip, Schedule};
use innfer::train::{
    BlockKind, ClampActivation, Dataset, Labelling, Objective, SubnetSpec, Task, TrainConfig,
    TrainedModel, train,
};

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// User + system CPU seconds of this process (Linux; 0 elsewhere). On a shared machine the
/// wall time is inflated by other load; CPU / threads is what 2 dedicated cores would take.
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit(')').next()?.to_string();
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
            Some(ticks / 100.0)
        })
        .unwrap_or(0.0)
}

/// Trains with a progress line per epoch; returns the model and the CPU minutes per thread.
fn run(config: &TrainConfig, data: &Dataset, name: &str) -> (TrainedModel, f64) {
    let started = Instant::now();
    let cpu0 = cpu_seconds();
    let model = train(config, data, |r| {
        eprintln!(
            "[{name}] epoch {:>3}/{}  train {:.4}  val NLL {:.4}  {:.1} it/s  {:.1} s  lr {:.2e}",
            r.epoch,
            r.epochs,
            r.train_loss,
            r.validation_nll.unwrap_or(f64::NAN),
            r.iterations_per_second,
            r.seconds,
            r.lr
        )
    })
    .unwrap();
    let minutes = started.elapsed().as_secs_f64() / 60.0;
    let cpu = cpu_seconds() - cpu0;
    eprintln!(
        "[{name}] training took {minutes:.2} min wall, {:.2} min CPU on {} threads ({} rows, best epoch {})",
        cpu / 60.0,
        config.threads,
        data.len(),
        model.best_epoch
    );
    if let Ok(path) = std::env::var("INNFER_OUT") {
        model.save(path).unwrap();
    }
    // The training budget is judged on CPU time per thread (what dedicated cores would take),
    // not wall time, which other load on a shared machine inflates.
    (model, cpu / 60.0 / config.threads.max(1) as f64)
}

/// The KL gap paired with the exact density on `n` held-out pairs (nats).
fn kl_gap(model: &mut TrainedModel, task: Task, n: usize, seed: u64) -> f64 {
    held_out(model, task, n, seed)
        .unwrap()
        .and_then(|h| h.kl_gap())
        .expect("a cINN of a task with a closed-form posterior")
}

/// SBC KS p-values (Bonferroni over dimensions at 0.01) and median calibration error (bar
/// 0.03 at N = 1000: the exact posterior's sampling scatter reaches ≈ 0.02, tests/train_metrics.rs).
fn check_sbc(model: &mut TrainedModel, task: Task, n: usize, l: usize, max_calib: f64, name: &str) {
    let started = Instant::now();
    let ranks = sbc_ranks(model, task, n, l, 5).unwrap();
    let (ks, calib) = (ranks.ks_pvalues(), ranks.median_calibration_errors());
    eprintln!(
        "[{name}] SBC (N = {n}, L = {l}) KS p {ks:.3?}; median calibration error {calib:.4?} ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    assert!(ranks.ks_passes(), "SBC fails: {ks:?}");
    assert!(
        calib.iter().all(|&c| c < max_calib),
        "calibration: {calib:?}"
    );
}

fn subnet(hidden: usize, layers: usize) -> SubnetSpec {
    SubnetSpec {
        hidden: vec![hidden; layers],
        ..SubnetSpec::default()
    }
}

/// The prior as a "posterior" (whatever y is): the baseline a trained model must beat.
struct PriorSampler(Task);

impl PosteriorSampler for PriorSampler {
    fn x_dim(&self) -> usize {
        self.0.x_dim()
    }

    fn sample(
        &mut self,
        _y: &[f32],
        seed: u64,
        stream: u64,
        out: &mut [f32],
    ) -> innfer::Result<()> {
        let n = out.len() / self.0.x_dim();
        out.copy_from_slice(&self.0.simulate(n, seed, stream).x);
        Ok(())
    }
}

// ------------------------------------------------------------------------------------------
// Small versions for CI (debug mode, < 30 s each)

#[test]
fn a_small_gmm8_all_run_learns_the_modes() {
    let task = Task::Gmm8(Labelling::All);
    let data = task.simulate(8192, 1, 0);
    let config = TrainConfig {
        blocks: 4,
        subnet: subnet(32, 1),
        epochs: 8,
        batch: 256,
        lr: 5e-3,
        threads: 2,
        ..TrainConfig::default()
    };
    let mut epochs = 0;
    let mut model = train(&config, &data, |_| epochs += 1).unwrap();
    assert_eq!(epochs, 8);
    let first = model.history[0].validation_nll.unwrap();
    let last = model.history.last().unwrap().validation_nll.unwrap();
    assert!(
        last < first,
        "validation NLL did not improve: {first} → {last}"
    );
    // Unimodal posteriors: a short run already puts nearly all mass on the right mode.
    let gap = kl_gap(&mut model, task, 2000, 9);
    eprintln!(
        "small GMM8 all: KL gap {gap:.3} nats after {} epochs",
        model.history.len()
    );
    assert!(gap < 0.5, "KL gap {gap}");
    for m in gmm8_mode_masses(&mut model, Labelling::All, 500, 3).unwrap() {
        assert!(m.modes[0].1 > 0.9, "label {}: {:?}", m.label, m);
    }
    // No SBC check here: an 8-epoch model is not calibrated yet (p-values as low as 5e-6 were
    // seen), and SBC's power and negative controls are tested on exact posteriors in
    // tests/train_metrics.rs; the full runs above apply it to trained models.
}

#[test]
fn a_small_kinematics_run_learns_the_arm() {
    let data = Task::Kinematics.simulate(8192, 1, 0);
    let config = TrainConfig {
        blocks: 4,
        subnet: subnet(32, 1),
        epochs: 6,
        batch: 256,
        lr: 5e-3,
        threads: 2,
        ..TrainConfig::default()
    };
    let mut model = train(&config, &data, |_| {}).unwrap();
    // Err_post (mean MMD²) and Err_resim (mean squared) over 16 observations.
    let errors = |p: &mut dyn PosteriorSampler| {
        let c = observation_checks(p, Task::Kinematics, 16, 200, 3, &mut |_| {}).unwrap();
        (mean(&c.mmd), mean(&c.resim.unwrap().0))
    };
    let (post, resim) = errors(&mut model);
    let (prior_post, prior_resim) = errors(&mut PriorSampler(Task::Kinematics));
    eprintln!(
        "small kinematics: Err_post {post:.4}, Err_resim {resim:.4}; the prior's {prior_post:.4}, {prior_resim:.4}"
    );
    // A short run is far better than the prior already: its samples miss y* by about 0.45
    // (root mean square), the prior's by 1.8, and its MMD² is less than half the prior's.
    assert!(
        post < 0.6 * prior_post,
        "Err_post {post}, prior {prior_post}"
    );
    assert!(
        resim < 0.2 * prior_resim,
        "Err_resim {resim}, prior {prior_resim}"
    );
}

#[test]
fn a_small_gaussian_linear_run_approaches_the_posterior() {
    let task = Task::GaussianLinear;
    let data = task.simulate(4000, 1, 0);
    let config = TrainConfig {
        blocks: 3,
        subnet: subnet(32, 1),
        epochs: 10,
        batch: 128,
        lr: 3e-3,
        threads: 2,
        ..TrainConfig::default()
    };
    let mut model = train(&config, &data, |_| {}).unwrap();
    let gap = kl_gap(&mut model, task, 2000, 9);
    eprintln!("small Gaussian linear: KL gap {gap:.3} nats");
    assert!(gap < 0.5, "KL gap {gap}");
    let c2st = c2st_vs_exact(
        &mut model,
        task,
        1,
        500,
        3,
        &C2stOptions {
            hidden_factor: 2,
            max_epochs: 20,
            ..C2stOptions::default()
        },
        &mut |_| {},
    )
    .unwrap();
    eprintln!("small Gaussian linear: C2ST {c2st:.3?}");
    assert!(c2st[0] < 0.75, "{c2st:?}");
}

#[test]
fn the_inn_objective_trains_a_small_gmm8() {
    let task = Task::Gmm8(Labelling::All);
    let data = task.simulate(4096, 1, 0);
    let config = TrainConfig {
        block: BlockKind::Glow {
            clamp: 2.0,
            activation: ClampActivation::Atan,
        },
        blocks: 3,
        permute_between: true,
        subnet: subnet(32, 1),
        objective: Objective::Inn(InnConfig {
            dim: 12,
            ..InnConfig::default()
        }),
        epochs: 4,
        batch: 256,
        lr: 2e-3,
        adam: AdamConfig {
            betas: (0.8, 0.9),
            eps: 1e-6,
            weight_decay: 2e-5,
        },
        clip: Clip::Value(15.0),
        threads: 2,
        ..TrainConfig::default()
    };
    let mut model = train(&config, &data, |_| {}).unwrap();
    let first = model.history[0].train_loss;
    let last = model.history.last().unwrap().train_loss;
    eprintln!("small INN GMM8 all: loss {first:.3} → {last:.3}");
    assert!(last < first, "{first} → {last}");
    assert!(
        held_out(&mut model, task, 100, 1).unwrap().is_none(),
        "an INN has no density"
    );
    // It exports as an INN-layout model the engine loads.
    let bytes = model.to_safetensors().unwrap();
    let engine = innfer::Model::from_bytes(&bytes).unwrap();
    assert_eq!(engine.block_count(), 6);
}

// ------------------------------------------------------------------------------------------
// Full runs (the quality bar)

/// GMM8 `some`: KL gap < 0.02 nats, mode masses within ±0.02, off-mode < 1 %, SBC.
#[test]
#[ignore]
fn gmm8_some_reaches_the_quality_bar() {
    let task = Task::Gmm8(Labelling::Some);
    let data = task.simulate(env_or("INNFER_N", 1usize << 18), 1, 0);
    let config = TrainConfig {
        blocks: env_or("INNFER_BLOCKS", 16),
        subnet: subnet(env_or("INNFER_HIDDEN", 64), env_or("INNFER_LAYERS", 2)),
        epochs: env_or("INNFER_EPOCHS", 36),
        batch: env_or("INNFER_BATCH", 512),
        lr: env_or("INNFER_LR", 2e-3),
        validation_fraction: 0.02,
        threads: env_or("INNFER_THREADS", 2),
        seed: env_or("INNFER_SEED", 0),
        store_activations: true,
        ..TrainConfig::default()
    };
    let (mut model, minutes) = run(&config, &data, "gmm8-some");
    let gap = kl_gap(&mut model, task, 100_000, 12345);
    let masses = gmm8_mode_masses(&mut model, Labelling::Some, 20_000, 99).unwrap();
    let mut worst: f64 = 0.0;
    let mut off: f64 = 0.0;
    for m in &masses {
        eprintln!(
            "[gmm8-some] label {}: modes {:?}  off-mode {:.4}",
            m.label, m.modes, m.off_mode
        );
        worst = worst.max(m.worst_error());
        off = off.max(m.off_mode);
    }
    eprintln!(
        "[gmm8-some] KL gap {gap:.4} nats; worst mode-mass error {worst:.4}; worst off-mode {off:.4}"
    );
    check_sbc(&mut model, task, 1000, 255, 0.03, "gmm8-some");
    assert!(gap < 0.02, "KL gap {gap}");
    assert!(worst <= 0.02, "mode mass error {worst}");
    assert!(off < 0.01, "off-mode mass {off}");
    assert!(minutes < 10.0, "{minutes} min");
}

/// Inverse kinematics: Err_post ≤ 0.005 (mean unbiased MMD², 1000 y*), Err_resim ≤ 0.005,
/// no mode of the exact posterior at y* = (1.5, 0) missing, SBC.
#[test]
#[ignore]
fn kinematics_reaches_the_quality_bar() {
    let task = Task::Kinematics;
    // The README's recipe for models/kinematics.safetensors, with the CLI's data stream.
    let data = task.simulate(env_or("INNFER_N", 1usize << 19), 0, 0);
    let config = TrainConfig {
        blocks: env_or("INNFER_BLOCKS", 16),
        subnet: subnet(env_or("INNFER_HIDDEN", 96), env_or("INNFER_LAYERS", 2)),
        epochs: env_or("INNFER_EPOCHS", 56),
        batch: env_or("INNFER_BATCH", 512),
        lr: env_or("INNFER_LR", 2e-3),
        threads: env_or("INNFER_THREADS", 2),
        seed: env_or("INNFER_SEED", 0),
        store_activations: true,
        ..TrainConfig::default()
    };
    let (mut model, minutes) = run(&config, &data, "kinematics");
    let started = Instant::now();
    let n_obs = env_or("INNFER_OBS", 1000);
    let c = observation_checks(&mut model, task, n_obs, 1000, 2024, &mut |_| {}).unwrap();
    let (post, resim) = (mean(&c.mmd), mean(&c.resim.unwrap().0));
    // The INN paper's hard, bimodal observation.
    let y = [1.5f32, 0.0];
    let q = draw(&mut model, &y, 1000, 2024, 0).unwrap();
    let at = compare_with_exact(task, &y, &q, &mut Rng::new(2024, 1));
    eprintln!(
        "[kinematics] {n_obs} y*, 1000 vs 1000 samples: Err_post mean {post:.5}, median {:.5}; \
         Err_resim (squared) mean {resim:.5}; at (1.5, 0): Err_post {:.5}, Err_resim {:.5} ({:.0} s)",
        median(&c.mmd),
        at.mmd,
        at.resim.unwrap().0,
        started.elapsed().as_secs_f64()
    );
    let modes = arm_modes(&mut model, [1.5, 0.0], 20_000, 7).unwrap();
    eprintln!(
        "[kinematics] modes at (1.5, 0): reference {:.3?}\n                                model {:.3?}",
        modes.reference, modes.model
    );
    check_sbc(&mut model, task, 1000, 255, 0.03, "kinematics");
    let missing = modes.missing(0.01);
    assert!(missing.is_empty(), "missing modes {missing:?}");
    assert!(post <= 0.005, "Err_post {post}");
    assert!(resim <= 0.005, "Err_resim {resim}");
    assert!(minutes < 10.0, "{minutes} min");
}

/// Gaussian linear 10-D with 10⁴ simulations: C2ST ≤ 0.55 (sbibm protocol: 10 observations,
/// 10 000 vs 10 000), KL gap < 0.02 nats, SBC.
#[test]
#[ignore]
fn gaussian_linear_reaches_the_quality_bar() {
    let task = Task::GaussianLinear;
    // The CLI's data stream (seed 0, stream 0), as in the README's command.
    let data = task.simulate(env_or("INNFER_N", 10_000), 0, 0);
    let block = match std::env::var("INNFER_BLOCK").as_deref() {
        Ok("condaffine") => BlockKind::ConditionalAffine {
            clamp: 2.0,
            activation: ClampActivation::Atan,
        },
        _ => BlockKind::AllInOne { clamp: 2.0 },
    };
    let config = TrainConfig {
        block,
        // The README's recipe: three blocks whose subnets are one Linear layer each.
        blocks: env_or("INNFER_BLOCKS", 3),
        subnet: subnet(env_or("INNFER_HIDDEN", 64), env_or("INNFER_LAYERS", 0)),
        epochs: env_or("INNFER_EPOCHS", 300),
        batch: env_or("INNFER_BATCH", 256),
        lr: env_or("INNFER_LR", 3e-3),
        patience: Some(env_or("INNFER_PATIENCE", 0usize)).filter(|&p| p > 0),
        validation_fraction: env_or("INNFER_VAL", 0.1),
        adam: AdamConfig {
            weight_decay: env_or("INNFER_WD", 0.0),
            ..AdamConfig::default()
        },
        schedule: Schedule::Cosine {
            final_fraction: 0.01,
        },
        threads: env_or("INNFER_THREADS", 2),
        seed: env_or("INNFER_SEED", 0),
        store_activations: true,
        ..TrainConfig::default()
    };
    let (mut model, minutes) = run(&config, &data, "gaussian-linear");
    let gap = kl_gap(&mut model, task, 100_000, 12345);
    eprintln!("[gaussian-linear] KL gap {gap:.4} nats");
    let started = Instant::now();
    let c2st = c2st_vs_exact(
        &mut model,
        task,
        10,
        10_000,
        77,
        &C2stOptions::default(),
        &mut |_| {},
    )
    .unwrap();
    let mean = c2st.iter().sum::<f64>() / c2st.len() as f64;
    eprintln!(
        "[gaussian-linear] C2ST per observation {c2st:.3?}; mean {mean:.4} ({:.0} s)",
        started.elapsed().as_secs_f64()
    );
    check_sbc(&mut model, task, 1000, 255, 0.03, "gaussian-linear");
    assert!(gap < 0.02, "KL gap {gap}");
    assert!(mean <= 0.55, "C2ST {mean}");
    assert!(minutes < 10.0, "{minutes} min");
}

/// The paper's INN objective (the FrEIA notebook's recipe) trains GMM8 to a
/// posterior with every mode present.
#[test]
#[ignore]
fn inn_objective_trains_gmm8_with_all_modes() {
    let labelling = match std::env::var("INNFER_LABELS").as_deref() {
        Ok("all") => Labelling::All,
        _ => Labelling::Some,
    };
    let task = Task::Gmm8(labelling);
    let data = task.simulate(env_or("INNFER_N", 1usize << 17), 1, 0);
    let config = TrainConfig {
        blocks: env_or("INNFER_BLOCKS", 8),
        subnet: subnet(env_or("INNFER_HIDDEN", 128), env_or("INNFER_LAYERS", 1)),
        epochs: env_or("INNFER_EPOCHS", 50),
        iterations_per_epoch: Some(env_or("INNFER_ITERS", 40)),
        batch: env_or("INNFER_BATCH", 1600),
        lr: env_or("INNFER_LR", 1e-3),
        threads: env_or("INNFER_THREADS", 2),
        seed: env_or("INNFER_SEED", 0),
        ..TrainConfig::default()
    }
    .paper_inn(16);
    let (mut model, minutes) = run(&config, &data, "inn-gmm8");
    let masses = gmm8_mode_masses(&mut model, labelling, 20_000, 99).unwrap();
    let mut smallest: f64 = 1.0;
    for m in &masses {
        eprintln!(
            "[inn-gmm8] label {}: modes {:?}  off-mode {:.4}",
            m.label, m.modes, m.off_mode
        );
        for &(_, got, want) in &m.modes {
            smallest = smallest.min(got / want);
        }
    }
    eprintln!("[inn-gmm8] smallest mode mass / expected {smallest:.3}; {minutes:.2} min");
    // Present: every mode holds at least a quarter of its share.
    assert!(smallest > 0.25, "a mode is missing: {masses:?}");
}
