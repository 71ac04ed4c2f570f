//! What a session promises: reproducible samples from `(seed, stream)` whatever the batch
//! split, the same numbers in caller memory as on the heap, strided buffers, raw units with
//! standardisation, and one model shared by threads.

mod common;

use common::{glow_cinn, glow_inn};
use innfer::{ARENA_ALIGN, MatMut, MatRef, Model, Session};

fn cinn() -> Model {
    Model::from_bytes(&glow_cinn(5, 3, 24, 3, 11).to_bytes()).unwrap()
}

#[test]
fn the_same_seed_gives_the_same_samples_whatever_the_batch_split() {
    let model = cinn();
    let y = [0.3, -1.0, 2.0];
    let mut whole = vec![0.0; 100 * 5];
    let mut s = Session::new(&model, 64).unwrap();
    s.reseed(42, 7);
    s.sample(&y, 100, &mut whole).unwrap();

    for max_batch in [1, 7, 100, 512] {
        let mut parts = vec![0.0; 100 * 5];
        let mut s = Session::new(&model, max_batch).unwrap();
        s.reseed(42, 7);
        for chunk in parts.chunks_mut(5 * 25) {
            s.sample(&y, 25, chunk).unwrap();
        }
        assert_eq!(parts, whole, "max_batch {max_batch}");
    }
}

#[test]
fn different_seeds_and_streams_give_different_samples() {
    let model = cinn();
    let y = [0.3, -1.0, 2.0];
    let draw = |seed, stream| {
        let mut s = Session::new(&model, 16).unwrap();
        s.reseed(seed, stream);
        let mut x = vec![0.0; 10 * 5];
        s.sample(&y, 10, &mut x).unwrap();
        x
    };
    assert_eq!(draw(1, 0), draw(1, 0));
    assert_ne!(draw(1, 0), draw(2, 0));
    assert_ne!(draw(1, 0), draw(1, 1));
}

#[test]
fn a_batch_of_observations_equals_successive_single_calls() {
    let model = cinn();
    let ys = [0.3, -1.0, 2.0, 1.0, 0.0, -0.5, 0.0, 0.0, 0.0];
    let mut batch = vec![0.0; 3 * 40 * 5];
    let mut s = Session::new(&model, 32).unwrap();
    s.reseed(9, 0);
    s.sample_batch(&ys, 40, &mut batch).unwrap();

    let mut single = vec![0.0; 3 * 40 * 5];
    s.reseed(9, 0);
    for (y, x) in ys.chunks(3).zip(single.chunks_mut(40 * 5)) {
        s.sample(y, 40, x).unwrap();
    }
    assert_eq!(batch, single);
    // Different observations give different posteriors.
    assert_ne!(batch[..200], batch[200..400]);
}

#[test]
fn caller_memory_gives_the_same_numbers_as_the_heap() {
    let model = cinn();
    let bytes = Session::arena_bytes(&model, 32).unwrap();
    let mut storage = vec![0u8; bytes + ARENA_ALIGN];
    let offset = storage.as_ptr().align_offset(ARENA_ALIGN);
    let mut fixed = Session::in_memory(&model, 32, &mut storage[offset..offset + bytes]).unwrap();
    let mut heap = Session::new(&model, 32).unwrap();
    let y = [1.0, 2.0, 3.0];
    let (mut a, mut b) = (vec![0.0; 50 * 5], vec![0.0; 50 * 5]);
    fixed.reseed(3, 1);
    heap.reseed(3, 1);
    fixed.sample(&y, 50, &mut a).unwrap();
    heap.sample(&y, 50, &mut b).unwrap();
    assert_eq!(a, b);
}

#[test]
fn strided_buffers_read_and_write_fortran_layouts() {
    let model = cinn();
    let mut s = Session::new(&model, 8).unwrap();
    let rows = 6;
    let x: Vec<f32> = (0..rows * 5).map(|i| (i as f32 * 0.37).sin()).collect();
    let c: Vec<f32> = (0..rows * 3).map(|i| (i as f32 * 0.11).cos()).collect();
    let mut out = vec![0.0; rows * 5];
    let mut ld = vec![0.0; rows];
    s.forward(&x, Some(&c), &mut out, Some(&mut ld)).unwrap();

    // The same data as Fortran x(rows, dim): element (r, j) at r + j·rows.
    let transpose = |v: &[f32], cols: usize| {
        let mut t = vec![0.0; v.len()];
        for r in 0..rows {
            for j in 0..cols {
                t[r + j * rows] = v[r * cols + j];
            }
        }
        t
    };
    let (xt, ct) = (transpose(&x, 5), transpose(&c, 3));
    let mut out_t = vec![0.0; rows * 5];
    let mut ld2 = vec![0.0; rows];
    s.forward_strided(
        MatRef::strided("x", &xt, rows, 5, 1, rows).unwrap(),
        Some(MatRef::strided("cond", &ct, rows, 3, 1, rows).unwrap()),
        MatMut::strided("out", &mut out_t, rows, 5, 1, rows).unwrap(),
        Some(&mut ld2),
    )
    .unwrap();
    assert_eq!(out_t, transpose(&out, 5));
    assert_eq!(ld, ld2);
}

/// An output whose strides give two elements one place is refused: it would be written
/// twice, and two rows would read back each other's numbers.
#[test]
fn output_strides_that_share_memory_are_refused() {
    let mut buf = vec![0.0f32; 64];
    for (rs, cs) in [(1, 1), (3, 1), (0, 1), (1, 0), (2, 3)] {
        let err = MatMut::strided("out", &mut buf, 4, 5, rs, cs).unwrap_err();
        assert!(
            err.to_string().contains("share memory"),
            "({rs}, {cs}): {err}"
        );
    }
    // Rows one after another, padded, or columns one after another.
    for (rs, cs) in [(5, 1), (8, 1), (1, 4), (2, 8)] {
        assert!(
            MatMut::strided("out", &mut buf, 4, 5, rs, cs).is_ok(),
            "({rs}, {cs})"
        );
    }
    // Inputs may share memory (one condition row for every row, say).
    assert!(MatRef::strided("cond", &buf, 4, 5, 0, 1).is_ok());
}

#[test]
fn forward_and_inverse_log_determinants_cancel() {
    let model = cinn();
    let mut s = Session::new(&model, 16).unwrap();
    let x: Vec<f32> = (0..16 * 5).map(|i| (i as f32 * 0.7).sin() * 2.0).collect();
    let c: Vec<f32> = (0..16 * 3).map(|i| (i as f32 * 0.3).cos()).collect();
    let (mut z, mut back) = (vec![0.0; x.len()], vec![0.0; x.len()]);
    let (mut ldf, mut ldi) = (vec![0.0; 16], vec![0.0; 16]);
    s.forward(&x, Some(&c), &mut z, Some(&mut ldf)).unwrap();
    s.inverse(&z, Some(&c), &mut back, Some(&mut ldi)).unwrap();
    for (a, b) in x.iter().zip(&back) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
    for (f, i) in ldf.iter().zip(&ldi) {
        assert!((f + i).abs() < 1e-5 * (1.0 + f.abs()));
    }
}

#[test]
fn standardisation_lets_callers_work_in_raw_units() {
    let mut f = glow_cinn(5, 3, 24, 3, 11);
    let plain = Model::from_bytes(&f.to_bytes()).unwrap();
    let (xm, xs) = (
        [10.0f32, -3.0, 0.5, 100.0, 0.0],
        [2.0f32, 0.5, 1.0, 10.0, 4.0],
    );
    let (ym, ys) = ([1.0f32, 2.0, 3.0], [0.1f32, 1.0, 5.0]);
    let list = |v: &[f32]| {
        v.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    f.set("innfer.x_mean", list(&xm))
        .set("innfer.x_std", list(&xs));
    f.set("innfer.y_mean", list(&ym))
        .set("innfer.y_std", list(&ys));
    let scaled = Model::from_bytes(&f.to_bytes()).unwrap();

    let x_std = [0.3f32, -0.2, 1.0, 0.7, -1.5];
    let y_std = [0.5f32, -0.5, 0.25];
    let x_raw: Vec<f32> = (0..5).map(|i| x_std[i] * xs[i] + xm[i]).collect();
    let y_raw: Vec<f32> = (0..3).map(|i| y_std[i] * ys[i] + ym[i]).collect();
    let (mut z1, mut z2) = (vec![0.0; 5], vec![0.0; 5]);
    let (mut ld1, mut ld2) = ([0.0f32], [0.0f32]);
    Session::new(&plain, 1)
        .unwrap()
        .forward(&x_std, Some(&y_std), &mut z1, Some(&mut ld1))
        .unwrap();
    Session::new(&scaled, 1)
        .unwrap()
        .forward(&x_raw, Some(&y_raw), &mut z2, Some(&mut ld2))
        .unwrap();
    for (a, b) in z1.iter().zip(&z2) {
        assert!((a - b).abs() < 1e-5);
    }
    let log_std: f32 = xs.iter().map(|s| s.ln()).sum();
    assert!((ld2[0] - (ld1[0] - log_std)).abs() < 1e-4);

    // Samples come back in raw units: the same latent rows give x_raw = x_std·std + mean.
    let (mut a, mut b) = (vec![0.0; 20 * 5], vec![0.0; 20 * 5]);
    let mut sp = Session::new(&plain, 8).unwrap();
    let mut ss = Session::new(&scaled, 8).unwrap();
    sp.sample(&y_std, 20, &mut a).unwrap();
    ss.sample(&y_raw, 20, &mut b).unwrap();
    for (k, (a, b)) in a.iter().zip(&b).enumerate() {
        let j = k % 5;
        assert!((a * xs[j] + xm[j] - b).abs() < 1e-3 * xs[j], "{k}");
    }
}

#[test]
fn the_paper_layout_samples_x_from_z_padding_and_y() {
    let model = Model::from_bytes(&glow_inn(2, 6, 2, 2, 4, 3).to_bytes()).unwrap();
    assert_eq!(
        (
            model.layout().x_dim(),
            model.layout().y_dim(),
            model.layout().z_dim()
        ),
        (2, 4, 2)
    );
    let y = [0.0, 1.0, 0.0, 0.0];
    let mut s = Session::new(&model, 32).unwrap();
    s.reseed(5, 0);
    let mut x = vec![0.0; 10 * 2];
    s.sample(&y, 10, &mut x).unwrap();

    // By hand: [z, 0, 0, y] through the inverse, first two entries.
    let mut s2 = Session::new(&model, 32).unwrap();
    let mut z = vec![0.0f32; 2];
    for i in 0..10 {
        innfer::kernels::normal::fill_row(5, 0, i as u64, &mut z);
        let input = [z[0], z[1], 0.0, 0.0, 0.0, 1.0, 0.0, 0.0];
        let mut full = [0.0f32; 8];
        s2.inverse(&input, None, &mut full, None).unwrap();
        assert_eq!(&x[2 * i..2 * i + 2], &full[..2]);
    }
}

#[test]
fn one_model_serves_four_threads_with_their_own_sessions() {
    let model = cinn();
    let y = [0.3, -1.0, 2.0];
    let serial: Vec<Vec<f32>> = (0..4)
        .map(|t| {
            let mut s = Session::new(&model, 16).unwrap();
            s.reseed(100, t);
            let mut x = vec![0.0; 64 * 5];
            s.sample(&y, 64, &mut x).unwrap();
            x
        })
        .collect();
    let threaded: Vec<Vec<f32>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let model = &model;
                scope.spawn(move || {
                    let mut s = Session::new(model, 16).unwrap();
                    s.reseed(100, t);
                    let mut x = vec![0.0; 64 * 5];
                    s.sample(&y, 64, &mut x).unwrap();
                    x
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(serial, threaded);
}

#[test]
fn models_are_send_and_sync() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Model>();
}

/// The first observation of each of `parts` contiguous blocks of `m` observations, the
/// larger blocks first (the split examples/mpi uses for its ranks).
fn block_starts(m: usize, parts: usize) -> Vec<usize> {
    (0..=parts)
        .map(|r| r * (m / parts) + r.min(m % parts))
        .collect()
}

#[test]
fn a_seeked_session_draws_the_samples_one_run_draws_for_its_observations() {
    let model = cinn();
    // Enough samples per observation that a block of two observations is a call long enough
    // for a threaded session's extra threads.
    let threaded_batch = Session::min_threaded_rows(&model) + 5;
    let (m, n) = (11, threaded_batch / 2 + 1);
    let ys: Vec<f32> = (0..m * 3).map(|i| (i as f32 * 0.37).sin() * 2.0).collect();
    let mut whole = vec![0.0; m * n * 5];
    let mut s = Session::new(&model, 16).unwrap();
    s.reseed(42, 3);
    s.sample_batch(&ys, n, &mut whole).unwrap();
    assert_eq!(s.rng_position(), (42, 3, (m * n) as u64));

    // Every split into 1..=4 blocks, each drawn by its own session (another max_batch, or
    // two threads) from a seeked position.
    for parts in 1..=4 {
        for (max_batch, threads) in [(7, 1), (threaded_batch, 2)] {
            let starts = block_starts(m, parts);
            let mut split = vec![0.0; m * n * 5];
            for block in starts.windows(2) {
                let (j0, j1) = (block[0], block[1]);
                let mut s = Session::new(&model, max_batch).unwrap();
                s.set_threads(threads).unwrap();
                s.reseed(42, 3);
                s.seek((j0 * n) as u64);
                assert_eq!(s.rng_position(), (42, 3, (j0 * n) as u64));
                s.sample_batch(&ys[j0 * 3..j1 * 3], n, &mut split[j0 * n * 5..j1 * n * 5])
                    .unwrap();
                assert_eq!(s.rng_position(), (42, 3, (j1 * n) as u64));
            }
            assert!(
                split
                    .iter()
                    .zip(&whole)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{parts} blocks, max_batch {max_batch}, {threads} threads"
            );
        }
    }
}

#[test]
fn seeking_back_redraws_and_seeking_moves_nothing_else() {
    let model = cinn();
    let y = [0.3, -1.0, 2.0];
    let mut s = Session::new(&model, 8).unwrap();
    s.reseed(5, 1);
    let mut first = vec![0.0; 20 * 5];
    s.sample(&y, 20, &mut first).unwrap();
    // Sample 7 onwards again: the same rows; the seed and stream stay.
    s.seek(7);
    assert_eq!(s.rng_position(), (5, 1, 7));
    let mut again = vec![0.0; 13 * 5];
    s.sample(&y, 13, &mut again).unwrap();
    assert_eq!(again, first[7 * 5..]);
    // A reseed goes back to row 0.
    s.seek(1000);
    s.reseed(5, 1);
    assert_eq!(s.rng_position(), (5, 1, 0));
}

#[test]
fn a_call_that_would_pass_the_last_row_of_the_stream_fails_and_draws_nothing() {
    let model = cinn();
    let y = [0.3, -1.0, 2.0];
    let mut s = Session::new(&model, 8).unwrap();
    s.reseed(5, 1);
    s.seek(u64::MAX - 3);
    let mut x = vec![0.0; 4 * 5];
    let err = s.sample(&y, 4, &mut x).unwrap_err();
    assert!(matches!(err, innfer::Error::Argument(_)), "{err}");
    assert_eq!(s.rng_position(), (5, 1, u64::MAX - 3));
    assert!(x.iter().all(|&v| v == 0.0));
    // Three rows still fit (the counter ends at 2^64 - 1).
    s.sample(&y, 3, &mut x[..3 * 5]).unwrap();
    assert_eq!(s.rng_position(), (5, 1, u64::MAX));
}
