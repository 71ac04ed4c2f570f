//! The machine's limits, measured here: f32 FMA peak of one core (AVX-512 and AVX2, 16/12
//! independent accumulator chains), and read bandwidth from buffers sized for L1, L2, L3 and
//! DRAM (sum of all floats with 16 independent vector accumulators). The batch-1 bound
//! (docs/performance.md §batch-1-bound) is a model's weight bytes over the bandwidth of the level that holds them.
//! Run: `cargo bench --bench peak` (harness = false).

use std::hint::black_box;
use std::time::Instant;

#[path = "timing/fma.rs"]
mod fma;

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn read512(buf: &[f32]) -> f32 {
    let mut acc = [_mm512_setzero_ps(); 8];
    for chunk in buf.chunks_exact(128) {
        for (j, v) in acc.iter_mut().enumerate() {
            // SAFETY: chunk has 128 floats; j*16+16 <= 128.
            let x = unsafe { _mm512_loadu_ps(chunk.as_ptr().add(j * 16)) };
            *v = _mm512_add_ps(*v, x);
        }
    }
    let mut s = _mm512_setzero_ps();
    for v in acc {
        s = _mm512_add_ps(s, v);
    }
    _mm512_reduce_add_ps(s)
}

fn best_of(reps: usize, mut f: impl FnMut() -> f64) -> f64 {
    (0..reps).map(|_| f()).fold(0.0, f64::max)
}

fn main() {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") {
            let iters = 20_000_000;
            let g = best_of(5, || {
                let t = Instant::now();
                // SAFETY: AVX-512F detected.
                black_box(unsafe { fma::fma512(iters) });
                (iters * 16 * 16 * 2) as f64 / t.elapsed().as_secs_f64() / 1e9
            });
            println!("FMA peak, AVX-512 (16 zmm chains): {g:.1} GFLOP/s");
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            let iters = 20_000_000;
            let g = best_of(5, || {
                let t = Instant::now();
                // SAFETY: AVX2+FMA detected.
                black_box(unsafe { fma::fma256(iters) });
                (iters * 12 * 8 * 2) as f64 / t.elapsed().as_secs_f64() / 1e9
            });
            println!("FMA peak, AVX2 (12 ymm chains):    {g:.1} GFLOP/s");
        }
        if std::is_x86_feature_detected!("avx512f") {
            println!("read bandwidth (one thread, median of repeated full reads):");
            for (label, bytes) in [
                ("L1  (32 KB)", 32 << 10),
                ("L2  (1 MB)", 1 << 20),
                ("L2  (1.5 MB)", 3 << 19),
                ("L3  (8 MB)", 8 << 20),
                ("L3  (16 MB)", 16 << 20),
                ("L3  (28 MB)", 28 << 20),
                ("DRAM (256 MB)", 256 << 20),
            ] {
                let buf = vec![1.0f32; bytes / 4];
                let passes = ((1usize << 31) / bytes).max(2);
                let mut rates: Vec<f64> = (0..7)
                    .map(|_| {
                        let t = Instant::now();
                        for _ in 0..passes {
                            // SAFETY: AVX-512F detected.
                            black_box(unsafe { read512(black_box(&buf)) });
                        }
                        (passes * bytes) as f64 / t.elapsed().as_secs_f64() / 1e9
                    })
                    .collect();
                rates.sort_by(f64::total_cmp);
                println!("  {label:<14} {:6.1} GB/s", rates[3]);
            }
        }
    }
}
