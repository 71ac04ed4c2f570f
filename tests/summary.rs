//! `Session::summarize`: the mean, standard deviation and order statistics of the samples
//! `sample_batch` draws, without handing the samples out — equal, bit for bit, to reducing
//! `sample_batch`'s output by the definitions (f64 sums in sample order, divisor n − 1, the
//! order statistic of rank max(1, ⌈q·n⌉)), whatever the thread count, `max_batch`, split of
//! the observations over calls, or path (one pass when n ≤ max_batch, several beyond).

use std::path::PathBuf;

use innfer::{ARENA_ALIGN, Error, Model, Session, SummaryBuffers, SummaryReport};

fn fixture(name: &str) -> Model {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .join("model.safetensors");
    Model::from_file(path).unwrap()
}

/// A conditional INN with standardisation (x 4, y 2) and the paper's INN layout (x 2, y 4).
fn models() -> Vec<(&'static str, Model)> {
    vec![
        ("cinn", fixture("pypi_cinn_stats")),
        ("inn", fixture("pypi_toy_inn")),
    ]
}

/// Quantiles with awkward ranks: both ends, the median, and q·n just off whole numbers.
const QUANTILES: [f32; 7] = [0.0, 0.025, 0.1, 0.5, 0.9, 0.975, 1.0];

/// `m` observations of the model's width, different from each other.
fn observations(model: &Model, m: usize) -> Vec<f32> {
    let yd = model.layout().y_dim();
    (0..m * yd)
        .map(|i| ((i * 7 + 3) % 11) as f32 * 0.2 - 1.0)
        .collect()
}

/// The summaries of one call, as flat arrays.
#[derive(Debug)]
struct Summaries {
    mean: Vec<f32>,
    std: Vec<f32>,
    quantiles: Vec<f32>,
}

impl Summaries {
    fn bits(&self) -> Vec<u32> {
        let all = self.mean.iter().chain(&self.std).chain(&self.quantiles);
        all.map(|v| v.to_bits()).collect()
    }
}

fn summarize(
    session: &mut Session<'_, '_>,
    ys: &[f32],
    n: usize,
    quantiles: &[f32],
) -> (Summaries, SummaryReport) {
    let model = session.model();
    let (xd, m) = (model.layout().x_dim(), ys.len() / model.layout().y_dim());
    let mut s = Summaries {
        mean: vec![0.0; m * xd],
        std: vec![0.0; m * xd],
        quantiles: vec![0.0; m * quantiles.len() * xd],
    };
    let out = SummaryBuffers {
        mean: &mut s.mean,
        std: &mut s.std,
        quantile_values: &mut s.quantiles,
    };
    let report = session.summarize(ys, n, quantiles, out).unwrap();
    (s, report)
}

/// The rank the definition gives quantile q of n samples: k = max(1, ⌈q·n⌉), with q·n in f64
/// and a product within q's f32 rounding above a whole number taken as that number.
fn rank(q: f32, n: usize) -> usize {
    let t = q as f64 * n as f64;
    let k = if t - t.floor() <= t * 2f64.powi(-24) {
        t.floor()
    } else {
        t.ceil()
    };
    (k as usize).clamp(1, n)
}

/// The definitions applied to `sample_batch`'s output (`[m·n][x_dim]`).
fn reduce(samples: &[f32], m: usize, n: usize, xd: usize, quantiles: &[f32]) -> Summaries {
    let mut s = Summaries {
        mean: vec![],
        std: vec![],
        quantiles: vec![0.0; m * quantiles.len() * xd],
    };
    for j in 0..m {
        for c in 0..xd {
            let column: Vec<f32> = (0..n).map(|k| samples[(j * n + k) * xd + c]).collect();
            let mean = column.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
            let squares: f64 = column.iter().map(|&v| (v as f64 - mean).powi(2)).sum();
            s.mean.push(mean as f32);
            s.std.push(if n > 1 {
                (squares / (n - 1) as f64).sqrt() as f32
            } else {
                0.0
            });
            let mut sorted = column;
            sorted.sort_by(f32::total_cmp);
            for (qi, &q) in quantiles.iter().enumerate() {
                s.quantiles[(j * quantiles.len() + qi) * xd + c] = sorted[rank(q, n) - 1];
            }
        }
    }
    s
}

/// What `sample_batch` draws from `(seed, stream)` at row 0, reduced.
fn reference(model: &Model, ys: &[f32], n: usize, quantiles: &[f32], seed: u64) -> Summaries {
    let (xd, m) = (model.layout().x_dim(), ys.len() / model.layout().y_dim());
    let mut session = Session::new(model, 512).unwrap();
    session.reseed(seed, 3);
    let mut x = vec![0.0; m * n * xd];
    session.sample_batch(ys, n, &mut x).unwrap();
    reduce(&x, m, n, xd, quantiles)
}

fn assert_same(got: &Summaries, want: &Summaries, what: &str) {
    assert_eq!(got.bits(), want.bits(), "{what}: {got:?} vs {want:?}");
}

#[test]
fn summaries_are_those_of_the_samples_sample_batch_draws() {
    for (name, model) in models() {
        let ys = observations(&model, 5);
        for (max_batch, n) in [(64, 1), (64, 2), (64, 40), (64, 64), (64, 65), (16, 333)] {
            let mut session = Session::new(&model, max_batch).unwrap();
            session.reseed(8, 3);
            let (got, report) = summarize(&mut session, &ys, n, &QUANTILES);
            let what = format!("{name}, max_batch {max_batch}, n {n}");
            assert_same(&got, &reference(&model, &ys, n, &QUANTILES, 8), &what);
            assert_eq!(report.invalid_rows, 0, "{what}");
            // Beyond max_batch the samples are drawn more than once.
            assert_eq!(report.passes > 1, n > max_batch, "{what}: {report:?}");
            // The stream moved on as sample_batch would have moved it.
            assert_eq!(session.rng_position(), (8, 3, 5 * n as u64), "{what}");
        }
    }
}

#[test]
fn one_sample_has_zero_spread_and_every_quantile_is_it() {
    let model = fixture("pypi_cinn_stats");
    let ys = observations(&model, 3);
    let mut session = Session::new(&model, 8).unwrap();
    let (got, _) = summarize(&mut session, &ys, 1, &QUANTILES);
    let mut x = vec![0.0; 3 * 4];
    session.reseed(0, 0);
    session.sample_batch(&ys, 1, &mut x).unwrap();
    assert_eq!(got.mean, x);
    assert!(got.std.iter().all(|&s| s == 0.0));
    for j in 0..3 {
        for qi in 0..QUANTILES.len() {
            let at = (j * QUANTILES.len() + qi) * 4;
            assert_eq!(got.quantiles[at..at + 4], x[j * 4..j * 4 + 4]);
        }
    }
}

#[test]
fn the_summaries_do_not_depend_on_threads_max_batch_or_splits() {
    for (name, model) in models() {
        let (yd, xd) = (model.layout().y_dim(), model.layout().x_dim());
        // Enough observations of n = 100 samples that one chain call of whole observations is
        // long enough for two threads.
        let threshold = Session::min_threaded_rows(&model);
        let n = 100;
        let m = threshold.div_ceil(n) + 3;
        let ys = observations(&model, m);
        let want = reference(&model, &ys, n, &QUANTILES, 21);
        let threaded = (threshold.div_ceil(n) + 1) * n;
        for (max_batch, threads) in [(threaded, 1), (threaded, 2), (4096, 1), (7, 1), (7, 2)] {
            let mut session = Session::new(&model, max_batch).unwrap();
            session.set_threads(threads).unwrap();
            session.reseed(21, 3);
            let (got, _) = summarize(&mut session, &ys, n, &QUANTILES);
            let what = format!("{name}, max_batch {max_batch}, {threads} threads");
            assert_same(&got, &want, &what);
        }
        // Observations 0..5 and 5.. by two sessions, the second seeked to its first row.
        let mut first = Session::new(&model, 256).unwrap();
        first.reseed(21, 3);
        let (a, _) = summarize(&mut first, &ys[..5 * yd], n, &QUANTILES);
        let mut second = Session::new(&model, 33).unwrap();
        second.reseed(21, 3);
        second.seek(5 * n as u64);
        let (b, _) = summarize(&mut second, &ys[5 * yd..], n, &QUANTILES);
        let joined = Summaries {
            mean: [a.mean, b.mean].concat(),
            std: [a.std, b.std].concat(),
            quantiles: [a.quantiles, b.quantiles].concat(),
        };
        assert_eq!(joined.quantiles.len(), m * QUANTILES.len() * xd);
        assert_same(&joined, &want, &format!("{name}, split over two sessions"));

        // In passes, with chunks of max_batch rows long enough for two threads.
        let n = 2 * threshold + 50;
        let ys = observations(&model, 2);
        let want = reference(&model, &ys, n, &QUANTILES, 21);
        for threads in [1, 2] {
            let mut session = Session::new(&model, threshold + 13).unwrap();
            session.set_threads(threads).unwrap();
            session.reseed(21, 3);
            let (got, report) = summarize(&mut session, &ys, n, &QUANTILES);
            assert!(report.passes > 2, "{report:?}");
            assert_same(
                &got,
                &want,
                &format!("{name}, in passes, {threads} threads"),
            );
        }
    }
}

#[test]
fn more_samples_than_the_session_holds_are_summarized_exactly_in_passes() {
    let model = fixture("pypi_cinn_stats");
    let ys = observations(&model, 3);
    // Many quantiles: with a small session their brackets do not all fit its scratch at once,
    // so they are narrowed a group at a time.
    let many: Vec<f32> = (0..=40).map(|i| i as f32 / 40.0).collect();
    for (n, max_batches) in [(5000, &[64, 999, 4999][..]), (50, &[1, 2][..])] {
        let mut big = Session::new(&model, n).unwrap();
        big.reseed(5, 3);
        let (whole, report) = summarize(&mut big, &ys, n, &many);
        assert_eq!(report.passes, 1);
        assert_same(&whole, &reference(&model, &ys, n, &many, 5), "one pass");
        for &max_batch in max_batches {
            let mut small = Session::new(&model, max_batch).unwrap();
            small.reseed(5, 3);
            let (got, report) = summarize(&mut small, &ys, n, &many);
            let what = format!("n {n}, max_batch {max_batch}");
            assert!(report.passes >= 3, "{what}: {report:?}");
            assert_same(&got, &whole, &what);
            // Without quantiles: one pass for the sums, one for the squared deviations.
            small.reseed(5, 3);
            let (got, report) = summarize(&mut small, &ys, n, &[]);
            assert_eq!(report.passes, 2, "{what}, no quantiles");
            assert_eq!(got.mean, whole.mean, "{what}");
            assert_eq!(got.std, whole.std, "{what}");
        }
    }
}

#[test]
fn a_session_in_caller_memory_summarizes_as_one_on_the_heap() {
    let model = fixture("pypi_cinn_stats");
    let ys = observations(&model, 4);
    for max_batch in [10, 300] {
        let bytes = Session::arena_bytes(&model, max_batch).unwrap();
        let mut storage = vec![0u8; bytes + ARENA_ALIGN];
        let at = storage.as_ptr().align_offset(ARENA_ALIGN);
        let mut fixed =
            Session::in_memory(&model, max_batch, &mut storage[at..at + bytes]).unwrap();
        let mut heap = Session::new(&model, max_batch).unwrap();
        let (a, _) = summarize(&mut fixed, &ys, 100, &QUANTILES);
        let (b, _) = summarize(&mut heap, &ys, 100, &QUANTILES);
        assert_same(&a, &b, &format!("max_batch {max_batch}"));
        // One byte short is refused.
        assert!(matches!(
            Session::in_memory(&model, max_batch, &mut storage[at..at + bytes - 1]),
            Err(Error::ArenaTooSmall { .. })
        ));
    }
}

#[test]
fn observations_that_are_not_finite_get_nan_and_leave_the_others_alone() {
    for (name, model) in models() {
        let yd = model.layout().y_dim();
        let xd = model.layout().x_dim();
        let clean = observations(&model, 4);
        for (max_batch, n) in [(256, 30), (16, 50)] {
            let mut session = Session::new(&model, max_batch).unwrap();
            session.reseed(2, 3);
            let (want, _) = summarize(&mut session, &clean, n, &QUANTILES);
            for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                let mut ys = clean.clone();
                ys[yd + yd / 2] = bad; // observation 1
                ys[3 * yd] = bad; // observation 3
                session.reseed(2, 3);
                let (got, report) = summarize(&mut session, &ys, n, &QUANTILES);
                let what = format!("{name}, {bad} in y, max_batch {max_batch}, n {n}");
                assert_eq!(report.invalid_rows, 2, "{what}");
                assert_eq!(session.rng_position(), (2, 3, 4 * n as u64), "{what}");
                let per = QUANTILES.len() * xd;
                for j in 0..4 {
                    let rows = [
                        (&got.mean[j * xd..][..xd], &want.mean[j * xd..][..xd]),
                        (&got.std[j * xd..][..xd], &want.std[j * xd..][..xd]),
                        (
                            &got.quantiles[j * per..][..per],
                            &want.quantiles[j * per..][..per],
                        ),
                    ];
                    for (g, w) in rows {
                        if j == 1 || j == 3 {
                            assert!(g.iter().all(|v| v.is_nan()), "{what}: observation {j}");
                        } else {
                            assert_eq!(g, w, "{what}: observation {j}");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn bad_arguments_are_errors_naming_them_and_draw_nothing() {
    let model = fixture("pypi_cinn_stats");
    let ys = observations(&model, 2);
    let mut session = Session::new(&model, 16).unwrap();
    session.reseed(4, 3);
    session.seek(10);
    let (mut mean, mut std, mut q) = (vec![0.0; 8], vec![0.0; 8], vec![0.0; 2 * 2 * 4]);
    let mut call = |ys: &[f32], n: usize, quantiles: &[f32], lens: [usize; 3]| {
        let out = SummaryBuffers {
            mean: &mut mean[..lens[0]],
            std: &mut std[..lens[1]],
            quantile_values: &mut q[..lens[2]],
        };
        session.summarize(ys, n, quantiles, out)
    };
    let fine = [8, 8, 16];
    assert!(call(&ys, 10, &[0.5, 0.9], fine).is_ok());
    let argument = |e: Error| match e {
        Error::Argument(m) => m,
        other => panic!("{other:?}"),
    };
    assert!(argument(call(&ys, 0, &[0.5, 0.9], fine).unwrap_err()).starts_with("n:"));
    for bad in [-0.01, 1.01, f32::NAN, f32::INFINITY] {
        let e = call(&ys, 10, &[0.5, bad], fine).unwrap_err();
        assert!(argument(e).starts_with("quantiles:"), "quantile {bad}");
    }
    let length = |e: Error| match e {
        Error::BufferLength {
            buffer,
            expected,
            found,
        } => (buffer, expected, found),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        length(call(&ys[..3], 10, &[0.5, 0.9], fine).unwrap_err()),
        ("y", 2, 3)
    );
    assert_eq!(
        length(call(&ys, 10, &[0.5, 0.9], [7, 8, 16]).unwrap_err()),
        ("mean", 8, 7)
    );
    assert_eq!(
        length(call(&ys, 10, &[0.5, 0.9], [8, 0, 16]).unwrap_err()),
        ("std", 8, 0)
    );
    assert_eq!(
        length(call(&ys, 10, &[0.5], fine).unwrap_err()),
        ("quantile_values", 8, 16)
    );
    // No observations: nothing to do.
    assert_eq!(
        call(&[], 10, &[0.5], [0, 0, 0]).unwrap(),
        SummaryReport::default()
    );
    // Only the first call drew (2 × 10 rows from row 10).
    assert_eq!(session.rng_position(), (4, 3, 30));
    // Past the end of the stream: refused, nothing drawn.
    session.seek(u64::MAX - 15);
    let out = SummaryBuffers {
        mean: &mut mean,
        std: &mut std,
        quantile_values: &mut [],
    };
    let e = session.summarize(&ys, 8, &[], out).unwrap_err();
    assert!(argument(e).contains("next-row counter"));
    assert_eq!(session.rng_position(), (4, 3, u64::MAX - 15));

    // A model without a sampling layout cannot summarize.
    let plain = fixture("pypi_rnvp_tanh");
    let mut session = Session::new(&plain, 4).unwrap();
    let out = SummaryBuffers {
        mean: &mut [],
        std: &mut [],
        quantile_values: &mut [],
    };
    assert_eq!(
        session.summarize(&[], 1, &[], out).unwrap_err(),
        Error::NoLayout
    );
}
