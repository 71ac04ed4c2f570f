//! The paper's bidirectional INN objective: the MMD gradients and the whole objective's
//! parameter gradient against central finite differences in f64; and user data from files.

use innfer::npy;
use innfer::rng::Rng;
use innfer::tasks::Dataset;
use innfer::train::inn::{InnConfig, InnDims, InnNoise, inn_gradient, mmd_biased_with_grad};
use innfer::train::{BlockKind, BlockSpec, Chain, ChainSpec, ClampActivation, SubnetSpec};

fn numeric(f: impl Fn(&[f64]) -> f64, at: &[f64], h: f64) -> Vec<f64> {
    (0..at.len())
        .map(|i| {
            let mut p = at.to_vec();
            p[i] += h;
            let up = f(&p);
            p[i] -= 2.0 * h;
            let down = f(&p);
            (up - down) / (2.0 * h)
        })
        .collect()
}

fn assert_close(what: &str, analytic: &[f64], numeric: &[f64], tol: f64) {
    let scale = numeric
        .iter()
        .map(|v| v.abs())
        .fold(0.0, f64::max)
        .max(1e-8);
    for (i, (a, n)) in analytic.iter().zip(numeric).enumerate() {
        assert!(
            (a - n).abs() <= tol * scale,
            "{what}[{i}]: analytic {a} vs numeric {n} (scale {scale})"
        );
    }
}

#[test]
fn mmd_gradient_matches_finite_differences() {
    let mut rng = Rng::new(3, 0);
    let dim = 3;
    let a: Vec<f64> = (0..7 * dim).map(|_| rng.normal()).collect();
    let b: Vec<f64> = (0..5 * dim).map(|_| 0.5 * rng.normal() + 0.3).collect();
    for widths in [vec![0.05, 0.2, 0.9], vec![0.5, 2.0]] {
        let (value, grad) = mmd_biased_with_grad(&a, &b, dim, &widths, 1);
        assert!(value > 0.0);
        let num = numeric(|p| mmd_biased_with_grad(p, &b, dim, &widths, 1).0, &a, 1e-6);
        assert_close("dMMD/da", &grad, &num, 1e-6);
    }
    // Identical sets: zero MMD and zero gradient.
    let (v, g) = mmd_biased_with_grad(&a, &a, dim, &[0.2], 1);
    assert!(v.abs() < 1e-12 && g.iter().all(|x| x.abs() < 1e-12));
}

/// Splitting the pair sums across threads changes only their summation order: the value and
/// the gradient agree to rounding for any thread count, including more threads than rows.
#[test]
fn mmd_is_the_same_on_any_number_of_threads() {
    let mut rng = Rng::new(5, 0);
    let dim = 4;
    let a: Vec<f64> = (0..37 * dim).map(|_| rng.normal()).collect();
    let b: Vec<f64> = (0..23 * dim).map(|_| 0.7 * rng.normal() - 0.2).collect();
    let widths = [0.05, 0.2, 0.9];
    let (v1, g1) = mmd_biased_with_grad(&a, &b, dim, &widths, 1);
    for threads in [2, 3, 8, 64] {
        let (v, g) = mmd_biased_with_grad(&a, &b, dim, &widths, threads);
        assert!(
            (v - v1).abs() <= 1e-12 * v1.abs(),
            "{threads} threads: {v} vs {v1}"
        );
        assert_close("dMMD/da", &g, &g1, 1e-12);
    }
}

#[test]
fn inn_objective_gradient_matches_finite_differences() {
    let config = InnConfig {
        dim: 6,
        kernels_forward: vec![0.3, 1.0],
        kernels_backward: vec![0.2, 0.9],
        ..InnConfig::default()
    };
    let dims = InnDims::new(&config, 2, 2);
    assert_eq!((dims.pad_x(), dims.pad_zy()), (4, 2));
    let glow = BlockSpec {
        kind: BlockKind::Glow {
            clamp: 2.0,
            activation: ClampActivation::Atan,
        },
        cond: false,
    };
    let permute = BlockSpec {
        kind: BlockKind::PermuteRandom,
        cond: false,
    };
    let aio = BlockSpec {
        kind: BlockKind::AllInOne { clamp: 2.0 },
        cond: false,
    };
    let spec = ChainSpec {
        dim: 6,
        cond_dim: 0,
        blocks: vec![glow, permute, aio, glow],
        subnet: SubnetSpec {
            hidden: vec![5],
            last_layer_scale: 1.0,
            ..SubnetSpec::default()
        },
    };
    let mut chain = Chain::<f64>::new(spec, 2).unwrap();
    let mut rng = Rng::new(9, 0);
    for p in chain.params_mut() {
        *p += 0.2 * rng.normal();
    }
    let m = 5;
    let x: Vec<f64> = (0..m * 2).map(|_| rng.normal()).collect();
    let y: Vec<f64> = (0..m * 2).map(|_| rng.normal()).collect();
    let noise = InnNoise::<f64>::draw(&config, dims, m, &mut rng);
    let ramp = 0.7;
    let (losses, grad) = inn_gradient(&chain, &config, dims, &x, &y, &noise, ramp, 1);
    assert!(losses.fit > 0.0 && losses.latent > 0.0);
    assert!(losses.backward > 0.0 && losses.reconstruction > 0.0);
    // Each term on its own (the others weighted 0); the sum must be the whole gradient.
    let only = |fit: f64, latent: f64, rev: f64, rec: f64| InnConfig {
        w_fit: fit,
        w_latent: latent,
        w_rev: rev,
        w_rec: rec,
        ..config.clone()
    };
    let terms = [
        only(config.w_fit, 0.0, 0.0, 0.0),
        only(0.0, config.w_latent, 0.0, 0.0),
        only(0.0, 0.0, config.w_rev, 0.0),
        only(0.0, 0.0, 0.0, config.w_rec),
    ];
    let mut sum = vec![0.0; grad.len()];
    let base = chain.clone();
    for (t, term) in terms.iter().enumerate() {
        let (_, g) = inn_gradient(&chain, term, dims, &x, &y, &noise, ramp, 1);
        sum.iter_mut().zip(&g).for_each(|(s, v)| *s += v);
        // Fit and backward MMD have no detached inputs: differentiate the loss itself. The
        // latent MMD detaches out_y and the reconstruction detaches out_z: differentiate
        // with those held at the current parameters' values.
        let num = numeric(
            |p| {
                let mut c = chain.clone();
                c.params_mut().copy_from_slice(p);
                match t {
                    1 => detached_loss(&base, &c, term, dims, &x, &y, &noise, true),
                    3 => detached_loss(&base, &c, term, dims, &x, &y, &noise, false),
                    _ => inn_gradient(&c, term, dims, &x, &y, &noise, ramp, 1)
                        .0
                        .total(),
                }
            },
            chain.params(),
            1e-6,
        );
        let name = ["fit", "latent MMD", "backward MMD", "reconstruction"][t];
        assert_close(name, &g, &num, 1e-5);
    }
    assert_close("sum of the terms", &sum, &grad, 1e-9);

    // Two threads: the same gradient up to summation order.
    let (_, g2) = inn_gradient(&chain, &config, dims, &x, &y, &noise, ramp, 2);
    for (a, b) in grad.iter().zip(&g2) {
        assert!((a - b).abs() < 1e-9 * (1.0 + a.abs()));
    }
}

/// The latent MMD (`latent`) with out_y taken from `base`, or the reconstruction loss with
/// out_z taken from `base`: the losses as functions of `c`'s parameters with the detached
/// parts held fixed.
#[allow(clippy::too_many_arguments)]
fn detached_loss(
    base: &Chain<f64>,
    c: &Chain<f64>,
    config: &InnConfig,
    dims: InnDims,
    x: &[f64],
    y: &[f64],
    noise: &InnNoise<f64>,
    latent: bool,
) -> f64 {
    let (d, xd, yd, zd) = (dims.dim, dims.x, dims.y, dims.z);
    let (px, pz) = (dims.pad_x(), dims.pad_zy());
    let m = x.len() / xd;
    let mut x_pad = Vec::new();
    for r in 0..m {
        x_pad.extend_from_slice(&x[r * xd..(r + 1) * xd]);
        x_pad.extend_from_slice(&noise.pad_x[r * px..(r + 1) * px]);
    }
    let mut fixed = x_pad.clone();
    base.forward(&mut fixed, None, &mut vec![0.0; m]);
    if latent {
        let mut out = x_pad.clone();
        c.forward(&mut out, None, &mut vec![0.0; m]);
        let mut a = Vec::new();
        let mut b = Vec::new();
        for r in 0..m {
            a.extend_from_slice(&out[r * d..r * d + zd]);
            a.extend_from_slice(&fixed[r * d + zd + pz..(r + 1) * d]);
            b.extend_from_slice(&noise.z_target[r * zd..(r + 1) * zd]);
            for k in 0..yd {
                b.push(y[r * yd + k] + noise.y_fwd[r * yd + k]);
            }
        }
        return config.w_latent
            * mmd_biased_with_grad(&a, &b, zd + yd, &config.kernels_forward, 1).0;
    }
    let mut state = Vec::new();
    for r in 0..m {
        for k in 0..zd {
            state.push(fixed[r * d + k] + noise.z_rec[r * zd + k]);
        }
        state.extend_from_slice(&noise.pad_rec[r * pz..(r + 1) * pz]);
        for k in 0..yd {
            state.push(y[r * yd + k] + noise.y_back[r * yd + k]);
        }
    }
    c.inverse(&mut state, None, &mut vec![0.0; m]);
    let se: f64 = state.iter().zip(&x_pad).map(|(a, b)| (a - b).powi(2)).sum();
    config.w_rec * se / (m * d) as f64
}

#[test]
fn datasets_load_from_npy_and_csv() {
    let dir = std::env::temp_dir().join(format!("innfer_train_data_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let x = vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
    let y = vec![0.5f32, -0.5, 1.5];
    std::fs::write(dir.join("x.npy"), npy::to_bytes(&[3, 2], &x)).unwrap();
    std::fs::write(dir.join("y.npy"), npy::to_bytes(&[3], &y)).unwrap();
    let d = Dataset::from_npy(dir.join("x.npy"), dir.join("y.npy")).unwrap();
    assert_eq!((d.len(), d.x_dim, d.y_dim), (3, 2, 1));
    assert_eq!((d.x.clone(), d.y.clone()), (x.clone(), y.clone()));

    std::fs::write(dir.join("x.csv"), "a,b\n1,2\n3,4\n5,6\n").unwrap();
    std::fs::write(dir.join("y.csv"), "0.5\n-0.5\n1.5\n").unwrap();
    let c = Dataset::from_csv(dir.join("x.csv"), dir.join("y.csv")).unwrap();
    assert_eq!(c, d);

    std::fs::write(dir.join("y2.csv"), "0.5\n-0.5\n").unwrap();
    let err = Dataset::from_csv(dir.join("x.csv"), dir.join("y2.csv")).unwrap_err();
    assert!(err.to_string().contains("rows"), "{err}");
    std::fs::write(dir.join("bad.csv"), "1,2\n3\n").unwrap();
    assert!(Dataset::from_csv(dir.join("bad.csv"), dir.join("y.csv")).is_err());
    assert!(Dataset::from_npy(dir.join("missing.npy"), dir.join("y.npy")).is_err());
    std::fs::remove_dir_all(&dir).ok();
}
