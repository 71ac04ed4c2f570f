//! The cINN maximum-likelihood objective, `mean(½‖z‖² − log|det J|)` (docs/training.md §max-likelihood), and
//! its gradient for a minibatch split across threads.
//!
//! **Thread independence.** Rows are split into contiguous chunks, one per thread; each thread
//! accumulates its chunk's gradient in its own f32 buffer (scaled by 1/batch), and the
//! buffers are added in thread order into an f64 sum. A different thread count changes only
//! where the f32 row sums inside each chunk stop and the f64 sum starts, i.e. the floating-
//! point summation order, not the math; a fixed thread count gives bit-identical results.

use crate::prelude::*;

use super::chain::{Chain, Gradients};

/// ½ ln 2π: the per-dimension constant of the standard normal's NLL.
pub const HALF_LN_TAU: f64 = 0.918_938_533_204_672_8;

/// The NLL of each row, `½‖z‖² + (D/2)·ln 2π − logdet`, in the chain's (standardised) units.
pub fn nll_rows(chain: &Chain<f32>, x: &[f32], cond: Option<&[f32]>) -> Vec<f64> {
    let d = chain.dim();
    let m = x.len() / d;
    let mut z = x.to_vec();
    let mut logdet = vec![0.0f32; m];
    chain.forward(&mut z, cond, &mut logdet);
    z.chunks_exact(d)
        .zip(&logdet)
        .map(|(row, &ld)| {
            0.5 * row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() + d as f64 * HALF_LN_TAU
                - ld as f64
        })
        .collect()
}

/// Loss sum and gradient of one chunk: adds `scale · dL/dθ` of L = Σ_rows (½‖z‖² − logdet)
/// into `grads` and returns that L (unscaled).
fn chunk_gradient(
    chain: &Chain<f32>,
    x: &[f32],
    cond: Option<&[f32]>,
    scale: f32,
    store_activations: bool,
    grads: &mut [f32],
) -> f64 {
    let d = chain.dim();
    let m = x.len() / d;
    let mut z = x.to_vec();
    let mut logdet = vec![0.0f32; m];
    let tapes = if store_activations {
        Some(chain.run_recording(&mut z, cond, &mut logdet, false))
    } else {
        chain.forward(&mut z, cond, &mut logdet);
        None
    };
    let loss: f64 = z
        .chunks_exact(d)
        .zip(&logdet)
        .map(|(row, &ld)| 0.5 * row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() - ld as f64)
        .sum();
    let mut grad: Vec<f32> = z.iter().map(|&v| v * scale).collect();
    let grad_logdet = vec![-scale; m];
    chain.backward(
        false,
        &mut z,
        &mut grad,
        &grad_logdet,
        cond,
        Gradients {
            params: grads,
            cond: None,
        },
        tapes,
    );
    loss
}

/// Mean loss and mean gradient (f64) of a minibatch on `threads` threads.
pub fn minibatch_gradient(
    chain: &Chain<f32>,
    x: &[f32],
    cond: Option<&[f32]>,
    threads: usize,
    store_activations: bool,
) -> (f64, Vec<f64>) {
    let d = chain.dim();
    let cc = chain.cond_dim();
    let m = x.len() / d;
    let threads = threads.clamp(1, m.max(1));
    let scale = 1.0 / m as f32;
    let n_params = chain.params().len();
    let bounds: Vec<usize> = (0..=threads).map(|t| t * m / threads).collect();
    let work = |t: usize| {
        let (r0, r1) = (bounds[t], bounds[t + 1]);
        let mut g = vec![0.0f32; n_params];
        let loss = chunk_gradient(
            chain,
            &x[r0 * d..r1 * d],
            cond.map(|c| &c[r0 * cc..r1 * cc]),
            scale,
            store_activations,
            &mut g,
        );
        (loss, g)
    };
    let parts: Vec<(f64, Vec<f32>)> = if threads == 1 {
        vec![work(0)]
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads).map(|t| s.spawn(move || work(t))).collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("gradient thread panicked"))
                .collect()
        })
    };
    // Fixed reduction order: thread 0, 1, 2, …
    let mut total = vec![0.0f64; n_params];
    let mut loss = 0.0;
    for (l, g) in parts {
        loss += l;
        total.iter_mut().zip(&g).for_each(|(t, &v)| *t += v as f64);
    }
    (loss / m as f64, total)
}
