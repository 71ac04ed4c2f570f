//! The benches' timing protocol (the peers' one): a warm-up call, then repetitions of at
//! least `MIN_REP` each, the median of `REPS` reported. Shared by benches/inverse.rs and
//! benches/peers.rs (`#[path = "timing/mod.rs"] mod timing;`).

use std::time::{Duration, Instant};

pub const REPS: usize = 5;
pub const MIN_REP: Duration = Duration::from_millis(150);

pub fn one_rep(items_per_call: usize, f: &mut impl FnMut()) -> f64 {
    one_rep_for(MIN_REP, items_per_call, f).0
}

/// CPU time (user + system) of this process, all threads, in seconds (Linux; 0 elsewhere).
pub fn process_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
    let f: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    f.iter().sum::<f64>() / 100.0 // USER_HZ is 100 on Linux
}

/// Samples/s of calls for at least `min` and samples per CPU-second the process used for
/// them (all threads; ±10 ms resolution): on a loaded machine the second shows whether the
/// code scales even when no core is free for the extra threads.
pub fn one_rep_for(min: Duration, items_per_call: usize, f: &mut impl FnMut()) -> (f64, f64) {
    let (start, cpu0, mut calls) = (Instant::now(), process_cpu_seconds(), 0usize);
    while start.elapsed() < min {
        f();
        calls += 1;
    }
    let items = (calls * items_per_call) as f64;
    let cpu = process_cpu_seconds() - cpu0;
    (items / start.elapsed().as_secs_f64(), items / cpu)
}

pub fn median_rate(items_per_call: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut rates: Vec<f64> = (0..REPS).map(|_| one_rep(items_per_call, &mut f)).collect();
    rates.sort_by(f64::total_cmp);
    rates[REPS / 2]
}
