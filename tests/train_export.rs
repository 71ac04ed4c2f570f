//! A chain written by the exporter loads with `innfer::Model::from_bytes` and computes what
//! the trainer computes: forward, inverse and log-determinants, standardisation included;
//! and sampling through `innfer::Session` works.

use innfer::model::YTransform;
use innfer::rng::Rng;
use innfer::train::export::{self, ExportOptions, Standardization};
use innfer::train::{
    Activation, BlockKind, BlockSpec, Chain, ChainSpec, ClampActivation, SubnetSpec,
};
use innfer::{Layout, Model, Session};

fn every_block(cond: bool) -> Vec<BlockSpec> {
    let atan = ClampActivation::Atan;
    let mut kinds = vec![
        BlockKind::ActNorm,
        BlockKind::AllInOne { clamp: 2.0 },
        BlockKind::Glow {
            clamp: 2.0,
            activation: atan,
        },
        BlockKind::PermuteRandom,
        BlockKind::Rnvp {
            clamp: 1.5,
            activation: ClampActivation::Tanh,
        },
        BlockKind::Nice,
        BlockKind::OneSided {
            clamp: 2.0,
            activation: ClampActivation::Sigmoid,
        },
    ];
    if cond {
        kinds.push(BlockKind::ConditionalAffine {
            clamp: 2.0,
            activation: atan,
        });
    }
    kinds
        .into_iter()
        .map(|kind| BlockSpec {
            kind,
            cond: cond && kind.accepts_condition(),
        })
        .collect()
}

fn perturbed_chain(dim: usize, cond_dim: usize, act: Activation) -> Chain<f32> {
    let spec = ChainSpec {
        dim,
        cond_dim,
        blocks: every_block(cond_dim > 0),
        subnet: SubnetSpec {
            hidden: vec![16, 8],
            activation: act,
            last_layer_scale: 1.0,
        },
    };
    let mut chain = Chain::<f32>::new(spec, 3).unwrap();
    let mut rng = Rng::new(8, 0);
    for p in chain.params_mut() {
        *p += (rng.normal() * 0.2) as f32;
    }
    chain
}

fn rows(rng: &mut Rng, n: usize, scale: f64, shift: f64) -> Vec<f32> {
    (0..n)
        .map(|_| (rng.normal() * scale + shift) as f32)
        .collect()
}

fn assert_close(what: &str, a: &[f32], b: &[f32], tol: f32) {
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tol * (1.0 + x.abs()),
            "{what}[{i}]: {x} vs {y}"
        );
    }
}

#[test]
fn a_conditional_chain_with_standardisation_round_trips_through_the_engine() {
    let (d, cc, m) = (5, 3, 64);
    let chain = perturbed_chain(d, cc, Activation::Silu);
    let mut rng = Rng::new(1, 1);
    let x_raw = rows(&mut rng, m * d, 2.0, 1.0);
    let y_raw = rows(&mut rng, m * cc, 3.0, -2.0);
    let x_norm = Standardization::of_rows(&x_raw, d);
    let y_norm = Standardization::of_rows(&y_raw, cc);
    let options = ExportOptions {
        layout: Layout::Cinn { x: d, y: cc },
        x_norm: Some(x_norm.clone()),
        y_norm: Some(y_norm.clone()),
        x_transform: Vec::new(),
        y_transform: YTransform::None,
        x_names: Vec::new(),
        x_units: Vec::new(),
        producer: "innfer train test".into(),
    };
    let model = Model::from_bytes(&export::to_safetensors(&chain, &options).unwrap()).unwrap();
    assert_eq!(model.block_count(), chain.spec().blocks.len());
    assert_eq!(model.block_kind(1), Some("AllInOneBlock"));

    // The trainer's own f32 pass, in standardised units.
    let (mut z, mut y) = (x_raw.clone(), y_raw.clone());
    x_norm.apply(&mut z);
    y_norm.apply(&mut y);
    let mut logdet = vec![0.0f32; m];
    chain.forward(&mut z, Some(&y), &mut logdet);
    let raw_logdet: Vec<f32> = logdet
        .iter()
        .map(|l| l - x_norm.log_std_sum() as f32)
        .collect();

    let mut session = Session::new(&model, m).unwrap();
    let (mut z_engine, mut ld_engine) = (vec![0.0; m * d], vec![0.0; m]);
    session
        .forward(&x_raw, Some(&y_raw), &mut z_engine, Some(&mut ld_engine))
        .unwrap();
    assert_close("z", &z, &z_engine, 1e-5);
    assert_close("forward logdet", &raw_logdet, &ld_engine, 1e-5);

    let mut x_back = z.clone();
    chain.inverse(&mut x_back, Some(&y), &mut logdet);
    x_norm.undo(&mut x_back);
    let mut x_engine = vec![0.0; m * d];
    session
        .inverse(&z_engine, Some(&y_raw), &mut x_engine, Some(&mut ld_engine))
        .unwrap();
    assert_close("x", &x_back, &x_engine, 1e-5);
    assert_close("x round trip", &x_raw, &x_engine, 1e-4);

    let mut samples = vec![0.0; 100 * d];
    session.sample(&y_raw[..cc], 100, &mut samples).unwrap();
    assert!(samples.iter().all(|v| v.is_finite()));
}

#[test]
fn an_unconditional_chain_matches_the_engine_in_both_directions() {
    let (d, m) = (4, 32);
    for act in [
        Activation::Relu,
        Activation::LeakyRelu(0.2),
        Activation::Tanh,
    ] {
        let chain = perturbed_chain(d, 0, act);
        let options = ExportOptions {
            layout: Layout::None,
            x_norm: None,
            y_norm: None,
            x_transform: Vec::new(),
            y_transform: YTransform::None,
            x_names: Vec::new(),
            x_units: Vec::new(),
            producer: "test".into(),
        };
        let model = Model::from_bytes(&export::to_safetensors(&chain, &options).unwrap()).unwrap();
        let mut session = Session::new(&model, m).unwrap();
        let mut rng = Rng::new(2, 2);
        let x = rows(&mut rng, m * d, 1.0, 0.0);
        for rev in [false, true] {
            let mut ours = x.clone();
            let mut ld = vec![0.0; m];
            let (mut theirs, mut ld_theirs) = (vec![0.0; m * d], vec![0.0; m]);
            if rev {
                chain.inverse(&mut ours, None, &mut ld);
                session
                    .inverse(&x, None, &mut theirs, Some(&mut ld_theirs))
                    .unwrap();
            } else {
                chain.forward(&mut ours, None, &mut ld);
                session
                    .forward(&x, None, &mut theirs, Some(&mut ld_theirs))
                    .unwrap();
            }
            assert_close(&format!("{act:?} rev={rev} out"), &ours, &theirs, 1e-5);
            assert_close(&format!("{act:?} rev={rev} logdet"), &ld, &ld_theirs, 1e-5);
        }
    }
}

#[test]
fn the_same_chain_exports_to_the_same_bytes_with_sorted_header_keys() {
    let chain = perturbed_chain(4, 2, Activation::Relu);
    let options = ExportOptions {
        layout: Layout::Cinn { x: 4, y: 2 },
        x_norm: None,
        y_norm: None,
        x_transform: Vec::new(),
        y_transform: YTransform::None,
        x_names: Vec::new(),
        x_units: Vec::new(),
        producer: "innfer train test".into(),
    };
    let first = export::to_safetensors(&chain, &options).unwrap();
    // Each export builds its metadata in a fresh HashMap with its own random order.
    for _ in 0..8 {
        assert_eq!(export::to_safetensors(&chain, &options).unwrap(), first);
    }
    let header_len = u64::from_le_bytes(first[..8].try_into().unwrap()) as usize;
    assert_eq!(header_len % 8, 0, "the data stays 8-byte aligned");
    let header = std::str::from_utf8(&first[8..8 + header_len]).unwrap();
    let meta_start = header.find("\"__metadata__\":{").unwrap() + "\"__metadata__\":{".len();
    let meta = &header[meta_start..meta_start + header[meta_start..].find('}').unwrap()];
    let keys: Vec<&str> = meta
        .split("\",\"")
        .map(|kv| kv.trim_start_matches('"').split("\":\"").next().unwrap())
        .collect();
    assert!(keys.len() > 10, "{keys:?}");
    assert!(keys.is_sorted(), "metadata keys out of order: {keys:?}");
    Model::from_bytes(&first).unwrap();
}
