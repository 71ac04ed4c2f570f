//! The core's f32 FMA peak, measured: independent accumulator chains of fused multiply-adds
//! and nothing else (no loads), AVX-512 where the CPU has it, else AVX2+FMA. Shared by
//! benches/peak.rs and the peers server, which measures it in the same run as the engines so
//! that their GFLOP/s can be read as fractions of what the core gave at that moment (the
//! clock of this shared machine moves by 15 % or more between runs).

use std::hint::black_box;
use std::time::{Duration, Instant};

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// `iters` rounds over 16 zmm chains (16 FMAs of 16 lanes each round).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub fn fma512(iters: usize) -> f32 {
    let mut acc = [_mm512_set1_ps(0.0); 16];
    let a = _mm512_set1_ps(black_box(0.999_999));
    let b = _mm512_set1_ps(black_box(1e-7));
    for _ in 0..iters {
        for v in acc.iter_mut() {
            *v = _mm512_fmadd_ps(*v, a, b);
        }
    }
    let mut s = _mm512_setzero_ps();
    for v in acc {
        s = _mm512_add_ps(s, v);
    }
    _mm512_reduce_add_ps(s)
}

/// `iters` rounds over 12 ymm chains (12 FMAs of 8 lanes each round).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub fn fma256(iters: usize) -> f32 {
    let mut acc = [_mm256_set1_ps(0.0); 12];
    let a = _mm256_set1_ps(black_box(0.999_999));
    let b = _mm256_set1_ps(black_box(1e-7));
    for _ in 0..iters {
        for v in acc.iter_mut() {
            *v = _mm256_fmadd_ps(*v, a, b);
        }
    }
    let mut s = [0f32; 8];
    let mut t = _mm256_setzero_ps();
    for v in acc {
        t = _mm256_add_ps(t, v);
    }
    // SAFETY: s has 8 floats.
    unsafe { _mm256_storeu_ps(s.as_mut_ptr(), t) };
    s.iter().sum()
}

/// GFLOP/s of the widest FMA loop this CPU runs, timed over at least `min` (wall clock), or
/// `None` without AVX2+FMA.
#[allow(dead_code)] // benches/peak.rs times the two widths itself
pub fn peak_gflops(min: Duration) -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        const ITERS: usize = 200_000;
        let (flops_per_call, call): (usize, fn() -> f32) =
            if std::is_x86_feature_detected!("avx512f") {
                // SAFETY: AVX-512F detected.
                (ITERS * 16 * 16 * 2, || unsafe { fma512(black_box(ITERS)) })
            } else if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
            {
                // SAFETY: AVX2+FMA detected.
                (ITERS * 12 * 8 * 2, || unsafe { fma256(black_box(ITERS)) })
            } else {
                return None;
            };
        let (start, mut calls) = (Instant::now(), 0usize);
        while start.elapsed() < min {
            black_box(call());
            calls += 1;
        }
        Some((calls * flops_per_call) as f64 / start.elapsed().as_secs_f64() / 1e9)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = min;
        None
    }
}
