//! The paper's bidirectional INN objective (Ardizzone et al., ICLR 2019; docs/training.md §inn-objective).
//!
//! An unconditional chain maps `[x, pad_x]` to `[z, pad_zy, y]` (all `dim` wide). One step:
//! 1. forward `out = f([x, σ_pad·ε])`; the fit loss `w_fit·mean((out[z:] − [σ_pad·ε, y + σ_y·ε])²)`
//!    on padding and y, and the latent loss `w_latent·MMD([out_z, out_y], [N(0, I), y + σ_y·ε])`
//!    with `out_y` detached (its gradient reaches only `out_z`);
//! 2. inverse `x_samp = f⁻¹([N(0, I), σ_pad·ε, y + σ_y·ε])` and the backward loss
//!    `w_rev·ramp·MMD(x_samp[:x], x)`; reconstruction `x_rec = f⁻¹([out_z + σ_z·ε, σ_pad·ε,
//!    y + σ_y·ε])` (out_z detached) with `w_rec·mean((x_rec − [x, pad])²)`.
//!
//! The MMD is the notebook's biased V-statistic `mean(K_aa + K_bb − 2K_ab)` with the inverse
//! multiquadric kernel `Σ_h h²/(h² + ‖a − b‖²)`, widths configurable per direction. The ramp is
//! `min(1, 2·0.002^(1 − epoch/epochs))`. Gradients of the passes are split by rows across
//! threads; the MMD terms couple all rows and are computed once per minibatch, their pair sums
//! split by rows across the same threads.

use crate::prelude::*;

use super::chain::{Chain, Gradients};
use super::float::Float;

/// Weights, noise levels, widths and kernels of the INN objective. The default is the
/// ICLR 2019 notebook's (docs/training.md §inn-objective).
#[derive(Clone, Debug, PartialEq)]
pub struct InnConfig {
    /// Total width of the chain; 0: `max(x_dim, z_dim + y_dim)`.
    pub dim: usize,
    /// Latent width; 0: `x_dim`.
    pub z_dim: usize,
    pub w_fit: f64,
    pub w_latent: f64,
    pub w_rev: f64,
    pub w_rec: f64,
    pub y_noise: f64,
    pub pad_noise: f64,
    /// Noise on the detached z of the reconstruction pass.
    pub z_noise: f64,
    /// IMQ widths h of the latent (forward) MMD.
    pub kernels_forward: Vec<f64>,
    /// IMQ widths h of the backward MMD on x.
    pub kernels_backward: Vec<f64>,
    /// Ramp the backward MMD weight up as `min(1, 2·0.002^(1 − epoch/epochs))`.
    pub ramp: bool,
}

impl Default for InnConfig {
    fn default() -> Self {
        InnConfig {
            dim: 0,
            z_dim: 0,
            w_fit: 3.0,
            w_latent: 300.0,
            w_rev: 400.0,
            w_rec: 3.0,
            y_noise: 0.1,
            pad_noise: 0.05,
            z_noise: 0.1,
            kernels_forward: vec![0.05, 0.2, 0.9],
            kernels_backward: vec![0.05, 0.2, 0.9],
            ramp: true,
        }
    }
}

/// The widths of one INN: `[x, pad_x] ↔ [z, pad_zy, y]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InnDims {
    pub x: usize,
    pub y: usize,
    pub z: usize,
    pub dim: usize,
}

impl InnDims {
    pub fn new(config: &InnConfig, x: usize, y: usize) -> InnDims {
        let z = if config.z_dim == 0 { x } else { config.z_dim };
        let dim = if config.dim == 0 {
            x.max(z + y)
        } else {
            config.dim
        };
        InnDims { x, y, z, dim }
    }
    pub fn pad_x(&self) -> usize {
        self.dim - self.x
    }
    pub fn pad_zy(&self) -> usize {
        self.dim - self.z - self.y
    }
}

/// `ramp` factor of the backward MMD at (0-based) `epoch` of `epochs`.
pub fn ramp(epoch: usize, epochs: usize) -> f64 {
    (2.0 * 0.002f64.powf(1.0 - epoch as f64 / epochs.max(1) as f64)).min(1.0)
}

/// The biased MMD² `mean_{i,j}(k(a_i,a_j) + k(b_i,b_j) − 2k(a_i,b_j))` with the IMQ kernel
/// `Σ_h h²/(h² + ‖·‖²)`, and its gradient with respect to `a` (`n_a × dim`), on `threads`
/// threads.
///
/// The O(n²) pair sums dominate an INN step, so they are split by rows: each thread takes a
/// range of rows with about the same number of pairs, sums into its own f64 buffers, and
/// the buffers are added in thread order. The thread count changes only that summation order;
/// one thread gives the plain serial sum.
pub fn mmd_biased_with_grad<F: Float>(
    a: &[F],
    b: &[F],
    dim: usize,
    widths: &[f64],
    threads: usize,
) -> (f64, Vec<F>) {
    let na = a.len() / dim;
    let nb = b.len() / dim;
    let h2: Vec<f64> = widths.iter().map(|h| h * h).collect();
    let threads = threads.clamp(1, na.max(nb).max(1));
    let tri_a = triangle_split(na, threads);
    let tri_b = triangle_split(nb, threads);
    let parts: Vec<MmdPart> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (h2, tri_a, tri_b) = (&h2, &tri_a, &tri_b);
                s.spawn(move || {
                    mmd_part(
                        a,
                        b,
                        dim,
                        h2,
                        tri_a[t]..tri_a[t + 1],
                        tri_b[t]..tri_b[t + 1],
                        t * na / threads..(t + 1) * na / threads,
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("MMD thread panicked"))
            .collect()
    });
    let mut grad = vec![0.0f64; na * dim];
    let (mut kaa, mut kbb, mut kab) = (0.0, 0.0, 0.0);
    for part in parts {
        kaa += part.kaa;
        kbb += part.kbb;
        kab += part.kab;
        grad.iter_mut().zip(&part.grad).for_each(|(g, p)| *g += p);
    }
    // The diagonal pairs (i, i), at distance 0.
    let k0 = imq(&h2, 0.0).0;
    kaa += na as f64 * k0;
    kbb += nb as f64 * k0;
    let cross = 1.0 / (na * nb) as f64;
    let within = 1.0 / (na * na) as f64;
    let value = kaa * within + kbb / (nb * nb) as f64 - 2.0 * kab * cross;
    (
        value,
        grad.into_iter().map(|g| F::from_f64(g * within)).collect(),
    )
}

/// `(k, dk/d(d²))` of the IMQ kernel `Σ_h h²/(h² + d²)` at squared distance `d2` (`h2`: the h²).
fn imq(h2: &[f64], d2: f64) -> (f64, f64) {
    let mut k = 0.0;
    let mut dk = 0.0;
    for &h in h2 {
        let q = 1.0 / (h + d2);
        k += h * q;
        dk -= h * q * q;
    }
    (k, dk)
}

fn squared_distance<F: Float>(u: &[F], v: &[F]) -> f64 {
    u.iter()
        .zip(v)
        .map(|(&p, &q)| {
            let t = p.to_f64() - q.to_f64();
            t * t
        })
        .sum()
}

/// Row boundaries `0 = r_0 ≤ … ≤ r_threads = n` giving each thread about the same number of
/// pairs (i, j > i).
fn triangle_split(n: usize, threads: usize) -> Vec<usize> {
    let pairs_before = |i: usize| i * n - i * (i + 1) / 2;
    let total = pairs_before(n);
    let mut bounds = vec![0];
    let mut i = 0;
    for t in 1..threads {
        while i < n && pairs_before(i) * threads < t * total {
            i += 1;
        }
        bounds.push(i);
    }
    bounds.push(n);
    bounds
}

/// One thread's share of the MMD sums (unscaled) and of the gradient with respect to `a`.
struct MmdPart {
    kaa: f64,
    kbb: f64,
    kab: f64,
    grad: Vec<f64>,
}

/// The pairs (i, j > i) of `a` for i in `rows_aa`, of `b` for i in `rows_bb`, and (i, all j)
/// of `a × b` for i in `rows_ab`.
fn mmd_part<F: Float>(
    a: &[F],
    b: &[F],
    dim: usize,
    h2: &[f64],
    rows_aa: core::ops::Range<usize>,
    rows_bb: core::ops::Range<usize>,
    rows_ab: core::ops::Range<usize>,
) -> MmdPart {
    let na = a.len() / dim;
    let nb = b.len() / dim;
    let mut grad = vec![0.0f64; na * dim];
    let mut kaa = 0.0;
    for i in rows_aa {
        let ai = &a[i * dim..(i + 1) * dim];
        for j in i + 1..na {
            let aj = &a[j * dim..(j + 1) * dim];
            let (k, dk) = imq(h2, squared_distance(ai, aj));
            kaa += 2.0 * k;
            // d/da_i of Σ_{p,q} k(d_pq) = 2 Σ_j k'(d_ij)·2(a_i − a_j); the pair (i, j) also
            // contributes the opposite to a_j.
            for c in 0..dim {
                let t = 4.0 * dk * (ai[c].to_f64() - aj[c].to_f64());
                grad[i * dim + c] += t;
                grad[j * dim + c] -= t;
            }
        }
    }
    let mut kbb = 0.0;
    for i in rows_bb {
        let bi = &b[i * dim..(i + 1) * dim];
        for j in i + 1..nb {
            kbb += 2.0 * imq(h2, squared_distance(bi, &b[j * dim..(j + 1) * dim])).0;
        }
    }
    let mut kab = 0.0;
    let cross = 1.0 / (na * nb) as f64;
    let within = 1.0 / (na * na) as f64;
    for i in rows_ab {
        let ai = &a[i * dim..(i + 1) * dim];
        for j in 0..nb {
            let bj = &b[j * dim..(j + 1) * dim];
            let (k, dk) = imq(h2, squared_distance(ai, bj));
            kab += k;
            for c in 0..dim {
                grad[i * dim + c] -=
                    2.0 * cross / within * dk * 2.0 * (ai[c].to_f64() - bj[c].to_f64());
            }
        }
    }
    MmdPart {
        kaa,
        kbb,
        kab,
        grad,
    }
}

/// The random draws of one INN step (`m` rows each), drawn by the trainer so that the loss is
/// a deterministic function of the parameters (the gradient test needs that).
#[derive(Clone, Debug)]
pub struct InnNoise<F> {
    /// `m × pad_x`: padding of the forward input (σ_pad already applied).
    pub pad_x: Vec<F>,
    /// `m × y`: y noise of the forward targets.
    pub y_fwd: Vec<F>,
    /// `m × z`: the latent MMD's target samples.
    pub z_target: Vec<F>,
    /// `m × pad_zy`: the forward padding targets.
    pub pad_target: Vec<F>,
    /// `m × z`: latent draws of the backward samples.
    pub z_back: Vec<F>,
    /// `m × pad_zy`, twice (sampling, reconstruction).
    pub pad_back: Vec<F>,
    pub pad_rec: Vec<F>,
    /// `m × y`, y noise of the backward passes.
    pub y_back: Vec<F>,
    /// `m × z`, perturbation of the reconstruction's z.
    pub z_rec: Vec<F>,
}

impl<F: Float> InnNoise<F> {
    pub fn draw(
        config: &InnConfig,
        dims: InnDims,
        m: usize,
        rng: &mut crate::rng::Rng,
    ) -> InnNoise<F> {
        let mut v = |n: usize, s: f64| -> Vec<F> {
            (0..m * n).map(|_| F::from_f64(s * rng.normal())).collect()
        };
        InnNoise {
            pad_x: v(dims.pad_x(), config.pad_noise),
            y_fwd: v(dims.y, config.y_noise),
            z_target: v(dims.z, 1.0),
            pad_target: v(dims.pad_zy(), config.pad_noise),
            z_back: v(dims.z, 1.0),
            pad_back: v(dims.pad_zy(), config.pad_noise),
            pad_rec: v(dims.pad_zy(), config.pad_noise),
            y_back: v(dims.y, config.y_noise),
            z_rec: v(dims.z, config.z_noise),
        }
    }
}

/// The loss terms of one step.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct InnLosses {
    pub fit: f64,
    pub latent: f64,
    pub backward: f64,
    pub reconstruction: f64,
}

impl InnLosses {
    pub fn total(&self) -> f64 {
        self.fit + self.latent + self.backward + self.reconstruction
    }
}

/// Runs a pass over `state` (`m × dim`) split by rows across `threads`.
fn par_pass<F: Float>(chain: &Chain<F>, state: &mut [F], rev: bool, threads: usize) {
    let d = chain.dim();
    let m = state.len() / d;
    let threads = threads.clamp(1, m.max(1));
    let rows = m.div_ceil(threads);
    std::thread::scope(|s| {
        for chunk in state.chunks_mut(rows * d) {
            s.spawn(move || {
                let mut logdet = vec![F::ZERO; chunk.len() / d];
                if rev {
                    chain.inverse(chunk, None, &mut logdet);
                } else {
                    chain.forward(chunk, None, &mut logdet);
                }
            });
        }
    });
}

/// dL/dθ of a pass in direction `rev` whose output is `state` with dL/d(output) `grad`,
/// split by rows across `threads`; per-thread sums are added in thread order.
fn par_backward<F: Float>(
    chain: &Chain<F>,
    rev: bool,
    state: &mut [F],
    grad: &mut [F],
    threads: usize,
) -> Vec<F> {
    let d = chain.dim();
    let m = state.len() / d;
    let n = chain.params().len();
    let threads = threads.clamp(1, m.max(1));
    let rows = m.div_ceil(threads);
    let parts: Vec<Vec<F>> = std::thread::scope(|s| {
        let handles: Vec<_> = state
            .chunks_mut(rows * d)
            .zip(grad.chunks_mut(rows * d))
            .map(|(st, gr)| {
                s.spawn(move || {
                    let mut g = vec![F::ZERO; n];
                    let gl = vec![F::ZERO; st.len() / d];
                    chain.backward(
                        rev,
                        st,
                        gr,
                        &gl,
                        None,
                        Gradients {
                            params: &mut g,
                            cond: None,
                        },
                        None,
                    );
                    g
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("INN gradient thread panicked"))
            .collect()
    });
    let mut total = vec![F::ZERO; n];
    for p in parts {
        total.iter_mut().zip(&p).for_each(|(t, &v)| *t += v);
    }
    total
}

/// Loss terms and dL/dθ of one INN step on `x` (`m × x`) and `y` (`m × y`, both in the
/// chain's units) with the draws `noise`; `ramp` multiplies the backward MMD weight.
#[allow(clippy::too_many_arguments)]
pub fn inn_gradient<F: Float>(
    chain: &Chain<F>,
    config: &InnConfig,
    dims: InnDims,
    x: &[F],
    y: &[F],
    noise: &InnNoise<F>,
    ramp: f64,
    threads: usize,
) -> (InnLosses, Vec<F>) {
    let InnDims {
        x: xd,
        y: yd,
        z: zd,
        dim: d,
    } = dims;
    let (px, pz) = (dims.pad_x(), dims.pad_zy());
    let m = x.len() / xd;
    let mut losses = InnLosses::default();

    // Forward: [x, pad] → [z, pad, y].
    let mut x_pad = Vec::with_capacity(m * d);
    for r in 0..m {
        x_pad.extend_from_slice(&x[r * xd..(r + 1) * xd]);
        x_pad.extend_from_slice(&noise.pad_x[r * px..(r + 1) * px]);
    }
    let mut out = x_pad.clone();
    par_pass(chain, &mut out, false, threads);
    let mut grad = vec![F::ZERO; m * d];
    // Fit on [pad, y] against [pad noise, y + noise].
    let n_fit = (m * (d - zd)) as f64;
    let mut fit = 0.0;
    for r in 0..m {
        for c in zd..d {
            let target = if c < zd + pz {
                noise.pad_target[r * pz + c - zd]
            } else {
                let k = c - zd - pz;
                y[r * yd + k] + noise.y_fwd[r * yd + k]
            };
            let e = out[r * d + c] - target;
            fit += e.to_f64() * e.to_f64();
            grad[r * d + c] = F::from_f64(config.w_fit * 2.0 * e.to_f64() / n_fit);
        }
    }
    losses.fit = config.w_fit * fit / n_fit;
    // Latent MMD on [z, y (detached)] against [N(0, I), y + noise].
    let mut a = Vec::with_capacity(m * (zd + yd));
    let mut b = Vec::with_capacity(m * (zd + yd));
    for r in 0..m {
        a.extend_from_slice(&out[r * d..r * d + zd]);
        a.extend_from_slice(&out[r * d + zd + pz..(r + 1) * d]);
        b.extend_from_slice(&noise.z_target[r * zd..(r + 1) * zd]);
        for k in 0..yd {
            b.push(y[r * yd + k] + noise.y_fwd[r * yd + k]);
        }
    }
    let (mmd_z, g_a) = mmd_biased_with_grad(&a, &b, zd + yd, &config.kernels_forward, threads);
    losses.latent = config.w_latent * mmd_z;
    let wl = F::from_f64(config.w_latent);
    for r in 0..m {
        for c in 0..zd {
            grad[r * d + c] += wl * g_a[r * (zd + yd) + c];
        }
    }
    let z_detached: Vec<F> = (0..m)
        .flat_map(|r| out[r * d..r * d + zd].iter().copied())
        .collect();
    let mut total = par_backward(chain, false, &mut out, &mut grad, threads);

    // Backward: sampling and reconstruction in one inverse pass of 2m rows.
    let mut state = Vec::with_capacity(2 * m * d);
    for r in 0..m {
        state.extend_from_slice(&noise.z_back[r * zd..(r + 1) * zd]);
        state.extend_from_slice(&noise.pad_back[r * pz..(r + 1) * pz]);
        for k in 0..yd {
            state.push(y[r * yd + k] + noise.y_back[r * yd + k]);
        }
    }
    for r in 0..m {
        for c in 0..zd {
            state.push(z_detached[r * zd + c] + noise.z_rec[r * zd + c]);
        }
        state.extend_from_slice(&noise.pad_rec[r * pz..(r + 1) * pz]);
        for k in 0..yd {
            state.push(y[r * yd + k] + noise.y_back[r * yd + k]);
        }
    }
    par_pass(chain, &mut state, true, threads);
    let mut grad = vec![F::ZERO; 2 * m * d];
    let samples: Vec<F> = (0..m)
        .flat_map(|r| state[r * d..r * d + xd].iter().copied())
        .collect();
    let w_back = config.w_rev * ramp;
    let (mmd_x, g_x) = mmd_biased_with_grad(&samples, x, xd, &config.kernels_backward, threads);
    losses.backward = w_back * mmd_x;
    for r in 0..m {
        for c in 0..xd {
            grad[r * d + c] = F::from_f64(w_back) * g_x[r * xd + c];
        }
    }
    let n_rec = (m * d) as f64;
    let mut rec = 0.0;
    for r in 0..m {
        for c in 0..d {
            let e = state[(m + r) * d + c] - x_pad[r * d + c];
            rec += e.to_f64() * e.to_f64();
            grad[(m + r) * d + c] = F::from_f64(config.w_rec * 2.0 * e.to_f64() / n_rec);
        }
    }
    losses.reconstruction = config.w_rec * rec / n_rec;
    let back = par_backward(chain, true, &mut state, &mut grad, threads);
    total.iter_mut().zip(&back).for_each(|(t, &v)| *t += v);
    (losses, total)
}
