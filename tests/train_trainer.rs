//! The training loop: objective, optimiser, schedules, thread-count independence, early
//! stopping, checkpoints and resuming.

use innfer::train::objective::minibatch_gradient;
use innfer::train::optim::{Adam, AdamConfig, Clip, Schedule};
use innfer::train::{Chain, ChainSpec, Labelling, SubnetSpec, Task, TrainConfig, train};

fn small_config() -> TrainConfig {
    TrainConfig {
        blocks: 3,
        subnet: SubnetSpec {
            hidden: vec![16],
            ..SubnetSpec::default()
        },
        epochs: 3,
        batch: 128,
        lr: 3e-3,
        threads: 1,
        seed: 4,
        ..TrainConfig::default()
    }
}

#[test]
fn adam_matches_pytorch_on_a_worked_example() {
    // torch.optim.Adam([p], lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.5),
    // p = [1.0, -2.0], loss gradient [0.3, 0.0] for two steps; PyTorch's update rule
    // (`p -= lr/bc1 · m / (sqrt(v)/sqrt(bc2) + eps)`, g += wd·p) in float64 gives
    // [0.90000000125, -1.900000001], then [0.8002200736224936, -1.8001664876318761].
    let mut p = vec![1.0f32, -2.0];
    let mut adam = Adam::new(
        AdamConfig {
            weight_decay: 0.5,
            ..AdamConfig::default()
        },
        2,
    );
    adam.step(&mut p, &[0.3, 0.0], 0.1);
    assert!(
        (p[0] - 0.9).abs() < 1e-6 && (p[1] + 1.9).abs() < 1e-6,
        "{p:?}"
    );
    adam.step(&mut p, &[0.3, 0.0], 0.1);
    assert!((p[0] - 0.800_220_1).abs() < 1e-6, "{p:?}");
    assert!((p[1] + 1.800_166_5).abs() < 1e-6, "{p:?}");
}

#[test]
fn clipping_by_value_and_by_norm() {
    let mut g = vec![3.0, -20.0, 4.0];
    Clip::Value(15.0).apply(&mut g);
    assert_eq!(g, vec![3.0, -15.0, 4.0]);
    let mut g = vec![3.0, 4.0];
    let norm = Clip::Norm(1.0).apply(&mut g);
    assert_eq!(norm, 5.0);
    assert!((g[0] - 0.6).abs() < 1e-6 && (g[1] - 0.8).abs() < 1e-6);
}

#[test]
fn schedules_start_at_the_base_rate_and_decay() {
    let step = Schedule::Step {
        every: 10,
        gamma: 0.5,
    };
    assert_eq!(step.lr(1.0, 0, 100), 1.0);
    assert_eq!(step.lr(1.0, 25, 100), 0.25);
    let cos = Schedule::Cosine {
        final_fraction: 0.0,
    };
    assert_eq!(cos.lr(1.0, 0, 10), 1.0);
    assert!((cos.lr(1.0, 5, 10) - 0.5).abs() < 1e-12);
}

#[test]
fn the_gradient_does_not_depend_on_the_thread_count_beyond_summation_order() {
    let task = Task::Gmm8(Labelling::Some);
    let data = task.simulate(300, 2, 0);
    let spec = ChainSpec::all_in_one(2, 8, 3, SubnetSpec::default());
    let chain = Chain::<f32>::new(spec, 1).unwrap();
    let (l1, g1) = minibatch_gradient(&chain, &data.x, Some(&data.y), 1, false);
    for threads in [2, 3, 7] {
        let (l, g) = minibatch_gradient(&chain, &data.x, Some(&data.y), threads, false);
        assert!((l - l1).abs() < 1e-9 * (1.0 + l1.abs()));
        for (a, b) in g.iter().zip(&g1) {
            assert!(
                (a - b).abs() < 1e-5 * (1.0 + b.abs()),
                "{threads} threads: {a} vs {b}"
            );
        }
        // Same thread count: bit-identical.
        assert_eq!(
            minibatch_gradient(&chain, &data.x, Some(&data.y), threads, false).1,
            g
        );
    }
}

#[test]
fn stored_and_recomputed_activations_train_identically() {
    let data = Task::Gmm8(Labelling::All).simulate(600, 3, 0);
    let a = train(&small_config(), &data, |_| {}).unwrap();
    let b = train(
        &TrainConfig {
            store_activations: true,
            ..small_config()
        },
        &data,
        |_| {},
    )
    .unwrap();
    for (x, y) in a.chain.params().iter().zip(b.chain.params()) {
        assert!((x - y).abs() < 1e-4, "{x} vs {y}");
    }
}

#[test]
fn early_stopping_returns_the_best_epoch() {
    let data = Task::Gmm8(Labelling::All).simulate(600, 3, 0);
    let config = TrainConfig {
        epochs: 30,
        patience: Some(1),
        lr: 0.05, // large: validation NLL soon stops improving
        ..small_config()
    };
    let model = train(&config, &data, |_| {}).unwrap();
    let ran = model.history.len();
    assert!(ran < 30, "early stopping never triggered");
    let best = model.history[model.best_epoch - 1].validation_nll.unwrap();
    for r in &model.history {
        assert!(r.validation_nll.unwrap() >= best);
    }
}

#[test]
fn a_resumed_run_ends_where_an_uninterrupted_one_does() {
    let dir = std::env::temp_dir().join(format!("innfer_train_resume_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ck.safetensors");
    let data = Task::Gmm8(Labelling::Some).simulate(600, 5, 0);
    // A constant rate, so that a 2-epoch run is the first part of a 3-epoch one.
    let config = TrainConfig {
        schedule: Schedule::Constant,
        ..small_config()
    };
    let full = train(&config, &data, |_| {}).unwrap();
    // "Interrupted" after epoch 2, with a checkpoint per epoch.
    let interrupted = TrainConfig {
        epochs: 2,
        checkpoint: Some(path.clone()),
        ..config.clone()
    };
    train(&interrupted, &data, |_| {}).unwrap();
    let ck = innfer::train::checkpoint::load(&path, full.chain.params().len()).unwrap();
    assert_eq!(ck.epoch, 2);
    // The checkpoint is itself a loadable innfer model.
    let model = innfer::Model::from_bytes(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(model.block_count(), 3);
    let mut epochs_run = Vec::new();
    let resumed = train(
        &TrainConfig {
            resume: true,
            checkpoint: Some(path.clone()),
            ..config
        },
        &data,
        |r| epochs_run.push(r.epoch),
    )
    .unwrap();
    assert_eq!(epochs_run, vec![3]);
    assert_eq!(resumed.chain.params(), full.chain.params());
    std::fs::remove_dir_all(&dir).ok();
}

/// The keys of a safetensors file's `__metadata__`, in the order the file lists them.
fn metadata_keys(file: &[u8]) -> Vec<String> {
    let len = u64::from_le_bytes(file[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&file[8..8 + len]).unwrap();
    let start = header.find("\"__metadata__\":{").unwrap() + "\"__metadata__\":{".len();
    let meta = &header[start..start + header[start..].find('}').unwrap()];
    meta.split("\",\"")
        .map(|kv| {
            kv.trim_start_matches('"')
                .split("\":\"")
                .next()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn the_same_training_command_writes_the_same_bytes() {
    let dir = std::env::temp_dir().join(format!("innfer_train_bytes_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let data = Task::Gmm8(Labelling::Some).simulate(600, 5, 0);
    // Two threads: the gradient's summation order is fixed by the thread count, not by timing.
    let run = |name: &str| {
        let checkpoint = dir.join(format!("{name}.ckpt"));
        let config = TrainConfig {
            epochs: 2,
            threads: 2,
            checkpoint: Some(checkpoint.clone()),
            ..small_config()
        };
        let model = train(&config, &data, |_| {}).unwrap();
        let file = dir.join(format!("{name}.safetensors"));
        model.save(&file).unwrap();
        (
            std::fs::read(&file).unwrap(),
            std::fs::read(&checkpoint).unwrap(),
        )
    };
    let (model_a, checkpoint_a) = run("a");
    let (model_b, checkpoint_b) = run("b");
    assert!(model_a == model_b, "two runs wrote different model files");
    assert!(
        checkpoint_a == checkpoint_b,
        "two runs wrote different checkpoints"
    );
    for file in [&model_a, &checkpoint_a] {
        let keys = metadata_keys(file);
        assert!(keys.len() > 10 && keys.is_sorted(), "{keys:?}");
    }
    assert!(metadata_keys(&checkpoint_a).contains(&"innfer_train.epoch".to_string()));
    std::fs::remove_dir_all(&dir).ok();
}
