//! `innfer bench`: throughput and latency of sampling and of the inverse pass, per batch size
//! and thread count.
//!
//! For each (operation, threads, batch) the number of calls per run is calibrated so that one
//! run takes at least `min_time`; then `reps` runs are timed and the median is reported. With
//! several threads, each has its own session and makes the same number of calls; a run lasts
//! until the slowest thread is done (they start together at a barrier).

use std::path::Path;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use innfer::{Layout, Model, Session};

use crate::progress::Progress;

pub struct BenchOptions<'a> {
    pub model_path: &'a Path,
    pub batches: &'a [usize],
    pub threads: &'a [usize],
    pub reps: usize,
    pub min_time: Duration,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    /// `Session::sample`: draw z, run the inverse (the job of a sampler).
    Sample,
    /// `Session::inverse` on given z and condition.
    Inverse,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Sample => "sample",
            Op::Inverse => "inverse",
        }
    }
}

/// Deterministic filler values in [-1, 1) (the numbers do not matter for timing; finiteness
/// does).
fn filler(len: usize, salt: u64) -> Vec<f32> {
    let mut s = salt.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// Filler for the condition of `model`: in [-1, 1), or in [0.25, 0.75) for a model whose y
/// transform takes logarithms (clr needs positive values; a row of invalid conditions would
/// time NaN rows).
fn condition_filler(model: &Model, len: usize, salt: u64) -> Vec<f32> {
    let mut v = filler(len, salt);
    if model.y_transform() != innfer::model::YTransform::None {
        v.iter_mut().for_each(|c| *c = 0.5 + 0.25 * *c);
    }
    v
}

/// One thread's session and buffers for one (op, batch).
struct Worker<'m> {
    session: Session<'m, 'static>,
    op: Op,
    batch: usize,
    input: Vec<f32>,
    cond: Option<Vec<f32>>,
    y: Vec<f32>,
    out: Vec<f32>,
}

impl<'m> Worker<'m> {
    fn new(model: &'m Model, op: Op, batch: usize, index: usize) -> Result<Worker<'m>, String> {
        let mut session = Session::new(model, batch)
            .map_err(|e| format!("creating a session for --batch {batch}: {e}"))?;
        session.reseed(0, index as u64);
        let layout = model.layout();
        let (d, cc) = (model.dim(), model.cond_dim());
        let (input, out) = match op {
            Op::Sample => (Vec::new(), vec![0.0; batch * layout.x_dim()]),
            Op::Inverse => (filler(batch * d, 1), vec![0.0; batch * d]),
        };
        Ok(Worker {
            session,
            op,
            batch,
            input,
            cond: (cc > 0).then(|| condition_filler(model, batch * cc, 2)),
            y: condition_filler(model, layout.y_dim(), 3),
            out,
        })
    }

    fn call(&mut self) -> Result<(), String> {
        let result = match self.op {
            Op::Sample => self.session.sample(&self.y, self.batch, &mut self.out),
            Op::Inverse => {
                self.session
                    .inverse(&self.input, self.cond.as_deref(), &mut self.out, None)
            }
        };
        result.map_err(|e| format!("{} at batch {}: {e}", self.op.name(), self.batch))
    }

    fn run(&mut self, calls: usize) -> Result<Duration, String> {
        let start = Instant::now();
        for _ in 0..calls {
            self.call()?;
        }
        Ok(start.elapsed())
    }
}

/// Calls per run so that one run of one thread takes at least `min_time`.
fn calibrate(worker: &mut Worker<'_>, min_time: Duration) -> Result<usize, String> {
    worker.call()?; // warm-up: first-touch of the arena, caches
    let mut calls = 1usize;
    loop {
        let t = worker.run(calls)?;
        if t >= min_time {
            return Ok(calls);
        }
        let ratio = min_time.as_secs_f64() / t.as_secs_f64().max(1e-9);
        let grow = (ratio * 1.2).ceil().clamp(2.0, 1000.0) as usize;
        calls = calls.saturating_mul(grow);
    }
}

/// Wall time of one run: every worker makes `calls` calls, starting together.
fn timed_run(workers: &mut [Worker<'_>], calls: usize) -> Result<Duration, String> {
    if let [only] = workers {
        return only.run(calls);
    }
    let barrier = Barrier::new(workers.len());
    let results: Vec<Result<Duration, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = workers
            .iter_mut()
            .map(|w| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    w.run(calls)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("a bench thread panicked".into()))
            })
            .collect()
    });
    let mut longest = Duration::ZERO;
    for r in results {
        longest = longest.max(r?);
    }
    Ok(longest)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2
    }
}

pub fn run(opts: &BenchOptions<'_>, model: &Model) -> Result<(), String> {
    let layout = model.layout();
    let mut ops = Vec::new();
    if layout != Layout::None {
        ops.push(Op::Sample);
    }
    ops.push(Op::Inverse);

    let layout_text = match layout {
        Layout::None => "no sampling layout".to_string(),
        Layout::Inn { x, y, .. } => format!("inn, x {x}, y {y}"),
        Layout::Cinn { x, y } => format!("cinn, x {x}, y {y}"),
    };
    let isa = Session::new(model, 1)
        .map_err(|e| format!("creating a session: {e}"))?
        .isa();
    println!(
        "model {} (dim {}, cond_dim {}, {layout_text}; {} parameters), kernel {}",
        opts.model_path.display(),
        model.dim(),
        model.cond_dim(),
        model.parameter_count(),
        isa.name()
    );
    println!(
        "median of {} runs of at least {} s each; samples/s counts rows of all threads",
        opts.reps,
        opts.min_time.as_secs_f64()
    );
    println!(
        "{:<8} {:>7} {:>7} {:>14} {:>12}",
        "op", "threads", "batch", "samples/s", "µs/call"
    );

    let total = (ops.len() * opts.threads.len() * opts.batches.len() * opts.reps) as u64;
    let mut progress = Progress::new(total, "bench", "runs");
    for &op in &ops {
        for &threads in opts.threads {
            for &batch in opts.batches {
                let mut workers = (0..threads)
                    .map(|i| Worker::new(model, op, batch, i))
                    .collect::<Result<Vec<_>, _>>()?;
                let calls = calibrate(&mut workers[0], opts.min_time)?;
                for w in &mut workers[1..] {
                    w.call()?;
                }
                let mut times = Vec::with_capacity(opts.reps);
                for _ in 0..opts.reps {
                    times.push(timed_run(&mut workers, calls)?);
                    progress.inc(1);
                }
                let t = median(times).as_secs_f64();
                let per_call_us = t / calls as f64 * 1e6;
                let rate = (threads * calls * batch) as f64 / t;
                // Three significant digits or more: a sub-µs call keeps two decimals.
                let decimals = if per_call_us < 10.0 { 2 } else { 1 };
                progress.suspend(|| {
                    println!(
                        "{:<8} {threads:>7} {batch:>7} {rate:>14.0} {per_call_us:>12.decimals$}",
                        op.name()
                    )
                });
            }
        }
    }
    progress.finish();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        let ms = |v: u64| Duration::from_millis(v);
        assert_eq!(median(vec![ms(3), ms(1), ms(2)]), ms(2));
        assert_eq!(
            median(vec![ms(4), ms(1), ms(2), ms(3)]),
            Duration::from_micros(2500)
        );
    }

    #[test]
    fn filler_is_finite_and_in_range() {
        let v = filler(1000, 7);
        assert!(v.iter().all(|x| (-1.0..1.0).contains(x)));
        assert_ne!(v[0], v[1]);
    }
}
