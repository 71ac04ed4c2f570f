//! Every gradient of the training mode against central finite differences, in f64: per block
//! type, through the forward and the inverse pass, with and without a condition, for the
//! parameters, the inputs and the condition. And: recomputing activations from invertibility
//! gives the same gradients as storing them.

use innfer::rng::Rng;
use innfer::train::{
    Activation, BlockKind, BlockSpec, Chain, ChainSpec, ClampActivation, Gradients, SubnetSpec,
};

const ROWS: usize = 3;

/// The scalar the checks differentiate: L = Σ w·out + Σ v·logdet, for fixed random w, v.
struct Probe {
    w: Vec<f64>,
    v: Vec<f64>,
}

fn random_vec(rng: &mut Rng, n: usize, scale: f64) -> Vec<f64> {
    (0..n).map(|_| rng.normal() * scale).collect()
}

fn chain_for(kinds: &[BlockKind], dim: usize, cond_dim: usize, act: Activation) -> Chain<f64> {
    let spec = ChainSpec {
        dim,
        cond_dim,
        blocks: kinds
            .iter()
            .map(|&kind| BlockSpec {
                kind,
                cond: cond_dim > 0 && kind.accepts_condition(),
            })
            .collect(),
        subnet: SubnetSpec {
            hidden: vec![7, 5],
            activation: act,
            last_layer_scale: 1.0,
        },
    };
    let mut chain = Chain::<f64>::new(spec, 11).unwrap();
    // Move every parameter off its initial value, so that no gradient is trivially zero
    // (AllInOne's global scale stays near its Ψ = 1 point, where it is used).
    let mut rng = Rng::new(5, 0);
    for p in chain.params_mut() {
        *p += rng.normal() * 0.3;
    }
    chain
}

fn loss(chain: &Chain<f64>, rev: bool, input: &[f64], cond: Option<&[f64]>, probe: &Probe) -> f64 {
    let mut state = input.to_vec();
    let mut logdet = vec![0.0; ROWS];
    if rev {
        chain.inverse(&mut state, cond, &mut logdet);
    } else {
        chain.forward(&mut state, cond, &mut logdet);
    }
    let a: f64 = state.iter().zip(&probe.w).map(|(s, w)| s * w).sum();
    a + logdet.iter().zip(&probe.v).map(|(l, v)| l * v).sum::<f64>()
}

/// Analytic gradients (params, input, cond), via stored tapes or recomputation.
fn analytic(
    chain: &Chain<f64>,
    rev: bool,
    input: &[f64],
    cond: Option<&[f64]>,
    probe: &Probe,
    store: bool,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut state = input.to_vec();
    let mut logdet = vec![0.0; ROWS];
    let tapes = if store {
        Some(chain.run_recording(&mut state, cond, &mut logdet, rev))
    } else {
        if rev {
            chain.inverse(&mut state, cond, &mut logdet);
        } else {
            chain.forward(&mut state, cond, &mut logdet);
        }
        None
    };
    let mut grad = probe.w.clone();
    let mut g_params = vec![0.0; chain.params().len()];
    let mut g_cond = vec![0.0; cond.map_or(0, <[f64]>::len)];
    chain.backward(
        rev,
        &mut state,
        &mut grad,
        &probe.v,
        cond,
        Gradients {
            params: &mut g_params,
            cond: cond.is_some().then_some(&mut g_cond),
        },
        tapes,
    );
    for (s, x) in state.iter().zip(input) {
        assert!(
            (s - x).abs() < 1e-9,
            "backward did not restore the input: {s} vs {x}"
        );
    }
    (g_params, grad, g_cond)
}

fn numeric(f: impl Fn(&[f64]) -> f64, at: &[f64]) -> Vec<f64> {
    let h = 1e-5;
    let mut p = at.to_vec();
    (0..at.len())
        .map(|i| {
            let keep = p[i];
            p[i] = keep + h;
            let up = f(&p);
            p[i] = keep - h;
            let down = f(&p);
            p[i] = keep;
            (up - down) / (2.0 * h)
        })
        .collect()
}

fn assert_close(what: &str, analytic: &[f64], numeric: &[f64]) {
    assert_eq!(analytic.len(), numeric.len());
    let mut nonzero = 0;
    for (i, (a, n)) in analytic.iter().zip(numeric).enumerate() {
        assert!(
            (a - n).abs() <= 1e-6 * (1.0 + a.abs().max(n.abs())),
            "{what}[{i}]: analytic {a}, finite difference {n}"
        );
        nonzero += usize::from(a.abs() > 1e-9);
    }
    assert!(nonzero > 0 || analytic.is_empty(), "{what}: all zero");
}

fn check_chain(name: &str, kinds: &[BlockKind], dim: usize, cond_dim: usize, act: Activation) {
    let chain = chain_for(kinds, dim, cond_dim, act);
    let mut rng = Rng::new(99, dim as u64);
    let input = random_vec(&mut rng, ROWS * dim, 1.0);
    let cond_v = random_vec(&mut rng, ROWS * cond_dim, 1.0);
    let cond = (cond_dim > 0).then_some(cond_v.as_slice());
    let probe = Probe {
        w: random_vec(&mut rng, ROWS * dim, 1.0),
        v: random_vec(&mut rng, ROWS, 1.0),
    };
    for rev in [false, true] {
        let dir = if rev { "inverse" } else { "forward" };
        let (gp, gx, gc) = analytic(&chain, rev, &input, cond, &probe, false);
        let num_p = numeric(
            |p| {
                let mut c = chain.clone();
                c.params_mut().copy_from_slice(p);
                loss(&c, rev, &input, cond, &probe)
            },
            chain.params(),
        );
        assert_close(&format!("{name} {dir} d/dparams"), &gp, &num_p);
        let num_x = numeric(|x| loss(&chain, rev, x, cond, &probe), &input);
        assert_close(&format!("{name} {dir} d/dinput"), &gx, &num_x);
        if let Some(c) = cond {
            let num_c = numeric(|c| loss(&chain, rev, &input, Some(c), &probe), c);
            assert_close(&format!("{name} {dir} d/dcond"), &gc, &num_c);
        }
        // Stored activations give the same gradients as recomputed ones.
        let (sp, sx, sc) = analytic(&chain, rev, &input, cond, &probe, true);
        for (what, a, b) in [
            ("params", &gp, &sp),
            ("input", &gx, &sx),
            ("cond", &gc, &sc),
        ] {
            for (x, y) in a.iter().zip(b.iter()) {
                assert!(
                    (x - y).abs() <= 1e-10 * (1.0 + x.abs()),
                    "{name} {dir} {what}: recomputed {x} vs stored {y}"
                );
            }
        }
    }
}

const ATAN: ClampActivation = ClampActivation::Atan;

fn each_condition(name: &str, kinds: &[BlockKind], dim: usize) {
    check_chain(
        &format!("{name} (unconditional)"),
        kinds,
        dim,
        0,
        Activation::Tanh,
    );
    check_chain(
        &format!("{name} (conditional)"),
        kinds,
        dim,
        3,
        Activation::Silu,
    );
}

#[test]
fn all_in_one_block() {
    each_condition("AllInOne", &[BlockKind::AllInOne { clamp: 2.0 }; 2], 5);
}

#[test]
fn glow_coupling_block_every_clamp_activation() {
    for activation in [
        ClampActivation::Atan,
        ClampActivation::Tanh,
        ClampActivation::Sigmoid,
    ] {
        each_condition(
            &format!("GLOW {activation:?}"),
            &[BlockKind::Glow {
                clamp: 1.5,
                activation,
            }],
            5,
        );
    }
}

#[test]
fn rnvp_coupling_block() {
    each_condition(
        "RNVP",
        &[BlockKind::Rnvp {
            clamp: 2.0,
            activation: ATAN,
        }],
        4,
    );
}

#[test]
fn nice_coupling_block() {
    each_condition("NICE", &[BlockKind::Nice], 5);
}

#[test]
fn affine_coupling_one_sided() {
    each_condition(
        "OneSided",
        &[BlockKind::OneSided {
            clamp: 2.0,
            activation: ATAN,
        }],
        3,
    );
}

#[test]
fn conditional_affine_transform() {
    check_chain(
        "ConditionalAffine",
        &[BlockKind::ConditionalAffine {
            clamp: 2.0,
            activation: ATAN,
        }],
        3,
        2,
        Activation::Tanh,
    );
}

#[test]
fn act_norm_and_permute_random_in_a_chain() {
    each_condition(
        "ActNorm+Permute+GLOW",
        &[
            BlockKind::ActNorm,
            BlockKind::PermuteRandom,
            BlockKind::Glow {
                clamp: 2.0,
                activation: ATAN,
            },
        ],
        4,
    );
}

#[test]
fn every_subnet_activation() {
    for act in [
        Activation::Relu,
        Activation::LeakyRelu(0.1),
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::Elu(1.0),
        Activation::Silu,
        Activation::Softplus {
            beta: 1.0,
            threshold: 20.0,
        },
    ] {
        check_chain(
            &format!("GLOW with {act:?}"),
            &[BlockKind::Glow {
                clamp: 2.0,
                activation: ATAN,
            }],
            4,
            2,
            act,
        );
    }
}

#[test]
fn a_mixed_deep_chain() {
    each_condition(
        "mixed",
        &[
            BlockKind::ActNorm,
            BlockKind::AllInOne { clamp: 1.0 },
            BlockKind::Rnvp {
                clamp: 2.0,
                activation: ClampActivation::Tanh,
            },
            BlockKind::PermuteRandom,
            BlockKind::Nice,
            BlockKind::OneSided {
                clamp: 2.0,
                activation: ATAN,
            },
            BlockKind::AllInOne { clamp: 2.0 },
        ],
        6,
    );
}
