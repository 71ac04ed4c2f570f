//! GEMM throughput of the innfer kernels vs `matrixmultiply::sgemm` on the layer shapes of the
//! benchmark models. Run with `cargo bench --bench gemm` (harness = false).
//! Set `GEMM_BENCH_ALL_ISAS=1` to add a column per other available ISA. Each row is the median of
//! REPS repetitions of ≥ 50 ms, the implementations' repetitions interleaved.
//! `cargo bench --bench gemm -- --cpu`: GFLOP per second of CPU time received instead (for
//! comparing kernel variants on a loaded machine), best of 7, on the shapes the sessions run.
//! `--quick` (with either mode): one short repetition per row, a smoke test of a second or
//! two (CI runs it); its numbers are noisy.

use std::hint::black_box;
use std::time::{Duration, Instant};

// The FMA loop (12 ymm chains: the AVX2 limit on this core; on Zen 4 a zmm FMA takes both
// 256-bit pipes, so AVX-512 has the same peak). This bench uses only part of the module.
#[allow(dead_code)]
#[path = "timing/fma.rs"]
mod fma;

use innfer::kernels::gemm::*;

const REPS: usize = 5;
const MIN_REP: Duration = Duration::from_millis(50);
/// `--quick`: one repetition of at least this long per row.
const QUICK_MIN_REP: Duration = Duration::from_millis(5);

/// GFLOP/s of one repetition (≥ `min`) of `f` doing `flops` per call.
fn rep(flops: f64, min: Duration, f: &mut dyn FnMut()) -> f64 {
    let mut iters = 0u64;
    let start = Instant::now();
    loop {
        f();
        iters += 1;
        if start.elapsed() >= min {
            break;
        }
    }
    flops * iters as f64 / start.elapsed().as_secs_f64() / 1e9
}

/// Median GFLOP/s of each function over REPS repetitions (one short one if `quick`), the
/// functions' repetitions interleaved (so that load from elsewhere on the machine hits them
/// alike).
fn measure(flops: f64, quick: bool, fs: &mut [&mut dyn FnMut()]) -> Vec<f64> {
    let (reps, min) = if quick {
        (1, QUICK_MIN_REP)
    } else {
        (REPS, MIN_REP)
    };
    for f in fs.iter_mut() {
        f(); // warm up
    }
    let mut rates = vec![Vec::with_capacity(reps); fs.len()];
    for _ in 0..reps {
        for (f, r) in fs.iter_mut().zip(&mut rates) {
            r.push(rep(flops, min, *f));
        }
    }
    rates
        .into_iter()
        .map(|mut r| {
            r.sort_by(f64::total_cmp);
            r[reps / 2]
        })
        .collect()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    if std::env::args().any(|a| a == "--cpu") {
        cpu_mode(quick);
        return;
    }
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
        let packed = PackedWeight::pack(&w, n, k, WeightStorage::F32).unwrap();
        for &m in &ms {
            let a: Vec<f32> = (0..m * k).map(|_| rnd()).collect();
            let c = vec![0.0f32; m * n];
            let flops = 2.0 * (m * n * k) as f64;
            let mut c2 = c.clone();
            let mut runs: Vec<Box<dyn FnMut() + '_>> = Vec::new();
            for isa in std::iter::once(best).chain(extra.iter().copied()) {
                let (a, packed, bias) = (&a, &packed, &bias);
                let isa = isa.available().unwrap();
                let mut c = c.clone();
                runs.push(Box::new(move || {
                    let a = Rows::new(black_box(a), m, k, k).unwrap();
                    let product = Product::new(a, black_box(packed)).bias(Some(bias));
                    gemm(isa, product, RowsMut::new(&mut c, m, n, n).unwrap()).unwrap();
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
            let g = measure(flops, quick, &mut fs);
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

// `--cpu` mode of this bench: GEMM kernel speed per second of CPU time actually received (from
// /proc/thread-self/schedstat), so that kernel variants can be compared on a shared, loaded
// machine where wall-clock rates swing by ±30 %. The layer shapes of the benchmark models at
// the row counts the session's tiles give them (96, 192, 240 rows) and at 1 and 1024 rows.
// Run: `cargo bench --bench gemm -- --cpu` (Linux only; GEMM_ISA=avx2|avx512 for one ISA).

/// Nanoseconds this thread has spent on a CPU.
fn cpu_ns() -> u64 {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").expect("Linux schedstat");
    s.split_whitespace().next().unwrap().parse().unwrap()
}

/// The CPU clock advances in scheduler ticks: a measurement repeats its work until at least this
/// much CPU time has passed.
const MIN_CPU_NS: u64 = 20_000_000;

/// FLOP per CPU-nanosecond (= GFLOP per CPU-second) of `work` (returning the FLOP it did),
/// repeated until MIN_CPU_NS of CPU time have passed.
fn per_cpu_second(work: &mut dyn FnMut() -> f64) -> f64 {
    let t0 = cpu_ns();
    let mut flops = 0.0;
    loop {
        flops += work();
        let dt = cpu_ns() - t0;
        if dt >= MIN_CPU_NS {
            return flops / dt as f64;
        }
    }
}

/// `quick`: one repetition of a tenth of the work per row.
fn cpu_mode(quick: bool) {
    let (reps, work) = if quick { (1, 0.1) } else { (7, 1.0) };
    #[cfg(target_arch = "x86_64")]
    if Isa::Avx2Fma.is_available() {
        let iters = (10_000_000.0 * work) as usize;
        let mut best = 0.0f64;
        for _ in 0..reps {
            best = best.max(per_cpu_second(&mut || {
                // SAFETY: AVX2+FMA checked above.
                black_box(unsafe { fma::fma256(iters) });
                (iters * 12 * 16) as f64
            }));
        }
        println!("FMA peak (12 ymm chains): {best:.1} GFLOP per CPU-second");
    }
    let isas: Vec<Isa> = match std::env::var("GEMM_ISA").as_deref() {
        Ok("avx2") => vec![Isa::Avx2Fma],
        Ok("avx512") => vec![Isa::Avx512],
        _ => Isa::ALL
            .into_iter()
            .filter(|i| i.is_available() && *i != Isa::Portable)
            .collect(),
    };
    println!(
        "    k     n     m | {}",
        isas.iter()
            .map(|i| format!("{:>8} GF/cpu-s", i.name()))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    for &(k, n, m) in &[
        (512, 512, 1),
        (512, 512, 96),
        (512, 512, 1024),
        (32, 512, 96),
        (512, 64, 96),
        (256, 256, 192),
        (128, 128, 240),
    ] {
        let mut seed = 7u32;
        let mut rnd = move || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        let w: Vec<f32> = (0..n * k).map(|_| rnd()).collect();
        let bias: Vec<f32> = (0..n).map(|_| rnd()).collect();
        let a: Vec<f32> = (0..m * k).map(|_| rnd()).collect();
        let packed = PackedWeight::pack(&w, n, k, WeightStorage::F32).unwrap();
        let mut c = vec![0.0f32; m * n];
        let flops = 2.0 * (m * n * k) as f64;
        let calls = ((3e9 * work / flops) as usize).max(1);
        let mut best = vec![0.0f64; isas.len()];
        for _rep in 0..reps {
            for (i, &isa) in isas.iter().enumerate() {
                let isa = isa.available().unwrap();
                let rate = per_cpu_second(&mut || {
                    for _ in 0..calls {
                        let a = Rows::new(black_box(&a), m, k, k).unwrap();
                        let product = Product::new(a, &packed)
                            .bias(Some(&bias))
                            .epilogue(Epilogue::Relu);
                        gemm(isa, product, RowsMut::new(&mut c, m, n, n).unwrap()).unwrap();
                        black_box(&c);
                    }
                    flops * calls as f64
                });
                best[i] = best[i].max(rate);
            }
        }
        println!(
            "{k:>5} {n:>5} {m:>5} | {}",
            best.iter()
                .map(|g| format!("{g:>17.1}"))
                .collect::<Vec<_>>()
                .join(" | ")
        );
    }
}
