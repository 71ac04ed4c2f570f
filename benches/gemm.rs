//! GEMM throughput of the innfer kernels vs `matrixmultiply::sgemm` on the layer shapes of the
//! benchmark models. Run with `cargo bench --bench gemm` (harness = false).
//! Set `GEMM_BENCH_ALL_ISAS=1` to add a column per other available ISA. Each row is the median of
//! REPS repetitions of ≥ 50 ms, the implementations' repetitions interleaved.

use std::hint::black_box;
use std::time::{Duration, Instant};

use innfer::kernels::gemm::*;

const REPS: usize = 5;
const MIN_REP: Duration = Duration::from_millis(50);

/// GFLOP/s of one repetition (≥ MIN_REP) of `f` doing `flops` per call.
fn rep(flops: f64, f: &mut dyn FnMut()) -> f64 {
    let mut iters = 0u64;
    let start = Instant::now();
    loop {
        f();
        iters += 1;
        if start.elapsed() >= MIN_REP {
            break;
        }
    }
    flops * iters as f64 / start.elapsed().as_secs_f64() / 1e9
}

/// Median GFLOP/s of each function over REPS repetitions, the functions' repetitions interleaved
/// (so that load from elsewhere on the machine hits them alike).
fn measure(flops: f64, fs: &mut [&mut dyn FnMut()]) -> Vec<f64> {
    for f in fs.iter_mut() {
        f(); // warm up
    }
    let mut rates = vec![Vec::with_capacity(REPS); fs.len()];
    for _ in 0..REPS {
        for (f, r) in fs.iter_mut().zip(&mut rates) {
            r.push(rep(flops, *f));
        }
    }
    rates
        .into_iter()
        .map(|mut r| {
            r.sort_by(f64::total_cmp);
            r[REPS / 2]
        })
        .collect()
}

fn main() {
    let shapes: [(usize, usize); 11] = [
        (8, 128),
        (128, 128),
        (128, 16),
        (12, 256),
        (256, 256),
        (256, 24),
        (32, 512),
        (512, 512),
        (512, 64),
        (8, 512),
        (512, 16),
    ];
    let ms = [1usize, 8, 64, 1024];
    let best = Isa::detect();
    let all = std::env::var_os("GEMM_BENCH_ALL_ISAS").is_some();
    let extra: Vec<Isa> = if all {
        Isa::ALL
            .into_iter()
            .filter(|i| i.is_available() && *i != best)
            .collect()
    } else {
        Vec::new()
    };

    let mut seed = 0x1234_5678_9ABC_DEF1u64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };

    print!(
        "{:>5} {:>5} {:>5} | {:>14} {:>14} {:>6}",
        "k",
        "n",
        "m",
        format!("{} GF/s", best.name()),
        "mm GF/s",
        "ratio"
    );
    for isa in &extra {
        print!(" | {:>16}", format!("{} GF/s", isa.name()));
    }
    println!();
    for &(k, n) in &shapes {
        let w: Vec<f32> = (0..n * k).map(|_| rnd()).collect();
        let bias: Vec<f32> = (0..n).map(|_| rnd()).collect();
        let mut packed = vec![0.0; packed_len(n, k)];
        pack_weight(&w, n, k, &mut packed);
        for &m in &ms {
            let a: Vec<f32> = (0..m * k).map(|_| rnd()).collect();
            let c = vec![0.0f32; m * n];
            let flops = 2.0 * (m * n * k) as f64;
            let mut c2 = c.clone();
            let mut runs: Vec<Box<dyn FnMut() + '_>> = Vec::new();
            for isa in std::iter::once(best).chain(extra.iter().copied()) {
                let (a, packed, bias) = (&a, &packed, &bias);
                let mut c = c.clone();
                runs.push(Box::new(move || {
                    gemm(
                        isa,
                        m,
                        k,
                        n,
                        black_box(a),
                        k,
                        black_box(packed),
                        Some(bias),
                        &mut c,
                        n,
                    );
                    black_box(&mut c);
                }));
            }
            let (a, w) = (&a, &w);
            runs.push(Box::new(move || {
                // SAFETY: A is m×k (row stride k), W is n×k read as its transpose, C is m×n.
                unsafe {
                    matrixmultiply::sgemm(
                        m,
                        k,
                        n,
                        1.0,
                        black_box(a.as_ptr()),
                        k as isize,
                        1,
                        black_box(w.as_ptr()),
                        1,
                        k as isize,
                        0.0,
                        c2.as_mut_ptr(),
                        n as isize,
                        1,
                    );
                }
                black_box(&mut c2);
            }));
            let mut fs: Vec<&mut dyn FnMut()> = runs
                .iter_mut()
                .map(|b| &mut **b as &mut dyn FnMut())
                .collect();
            let g = measure(flops, &mut fs);
            let (g_ours, g_mm) = (g[0], g[g.len() - 1]);
            print!(
                "{k:>5} {n:>5} {m:>5} | {g_ours:>14.1} {g_mm:>14.1} {:>6.2}",
                g_ours / g_mm
            );
            for r in &g[1..g.len() - 1] {
                print!(" | {r:>16.1}");
            }
            println!();
        }
    }
}
