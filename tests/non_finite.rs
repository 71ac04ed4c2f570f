//! The non-finite policy (src/session/finite.rs), call by call, through the Rust API (the C
//! API's side is tests/c/non_finite.c, run by tests/c_api.rs):
//!
//! 1. a row whose input holds a NaN or an infinity (x, the inverse pass's input, the
//!    condition, the observation) comes out NaN in every output, log-determinant included;
//!    the call succeeds and the other rows are the bits of a call without that row;
//! 2. a row whose finite input overflows (y = 1e38 for the shipped arm model) comes out NaN in
//!    every output too, but the call reports it: `Error::NonFiniteOutput` names the buffer,
//!    the first such row and how many, after writing every output (and advancing the stream).

mod common;

use std::path::{Path, PathBuf};

use innfer::{Error, Model, Session, SummaryBuffers};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shipped inverse-kinematics arm: a cINN, x of 4 joint parameters, y an end point in 2-D,
/// both standardised inside.
fn arm() -> Model {
    Model::from_file(root().join("models/kinematics.safetensors")).unwrap()
}

const NON_FINITE: [f32; 3] = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY];

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn all_nan(v: &[f32]) -> bool {
    v.iter().all(|x| x.is_nan())
}

/// A tensor of a fixture's reference.safetensors, flattened.
fn reference(dir: &Path, name: &str) -> Vec<f32> {
    let bytes = std::fs::read(dir.join("reference.safetensors")).unwrap();
    let refs = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let t = refs.tensor(name).unwrap();
    t.data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

/// A forward (`rev` false) or inverse pass of `rows` rows, outputs and log-determinants.
fn pass(
    s: &mut Session,
    rev: bool,
    input: &[f32],
    cond: Option<&[f32]>,
) -> (Result<(), Error>, Vec<f32>, Vec<f32>) {
    let rows = input.len() / s.model().dim();
    let (mut out, mut logdet) = (vec![0.0; input.len()], vec![0.0; rows]);
    let result = if rev {
        s.inverse(input, cond, &mut out, Some(&mut logdet))
    } else {
        s.forward(input, cond, &mut out, Some(&mut logdet))
    };
    (result, out, logdet)
}

/// Every fixture (every block type), both ways: a NaN, +Inf or -Inf in any one entry of a
/// row's input, or of its condition, makes that row NaN in every output and log-determinant;
/// the rows around it keep their bits and the call succeeds.
#[test]
fn one_non_finite_input_value_makes_its_row_nan_in_every_output() {
    let mut checked = 0;
    for dir in std::fs::read_dir(root().join("tests/fixtures"))
        .unwrap()
        .flatten()
    {
        let dir = dir.path();
        if !dir.join("model.safetensors").is_file() {
            continue;
        }
        let model = Model::from_file(dir.join("model.safetensors")).unwrap();
        let (d, cc) = (model.dim(), model.cond_dim());
        let c = if cc > 0 {
            reference(&dir, "c_b1").repeat(3)
        } else {
            Vec::new()
        };
        let mut s = Session::new(&model, 3).unwrap();
        for (rev, valid) in [
            (false, reference(&dir, "x_b1")),
            (true, reference(&dir, "inv_in_b1")),
        ] {
            let input = valid.repeat(3);
            let cond = (cc > 0).then_some(&c[..]);
            let (clean, clean_out, clean_ld) = pass(&mut s, rev, &input, cond);
            clean.unwrap();
            assert!(clean_out.iter().chain(&clean_ld).all(|v| v.is_finite()));
            // Each entry of the middle row's input, then each of its condition.
            for k in 0..d + cc {
                for bad in NON_FINITE {
                    let (mut input, mut c) = (input.clone(), c.clone());
                    if k < d {
                        input[d + k] = bad;
                    } else {
                        c[cc + k - d] = bad;
                    }
                    let cond = (cc > 0).then_some(&c[..]);
                    let (result, out, ld) = pass(&mut s, rev, &input, cond);
                    let what = format!("{} rev {rev}, entry {k} = {bad}", dir.display());
                    result.unwrap_or_else(|e| panic!("{what}: {e}"));
                    assert!(all_nan(&out[d..2 * d]) && ld[1].is_nan(), "{what}: {out:?}");
                    for r in [0, 2] {
                        assert_eq!(bits(&out[r * d..][..d]), bits(&clean_out[r * d..][..d]));
                        assert_eq!(ld[r].to_bits(), clean_ld[r].to_bits(), "{what}");
                    }
                }
            }
        }
        checked += 1;
    }
    assert!(checked >= 19, "{checked} fixtures");
}

/// Three observations of the arm and 5 samples each, `bad` in the middle one; the samples of
/// the call and the samples of each observation drawn alone from its stream rows.
fn sample_around(y: [f32; 2]) -> (Result<(), Error>, Vec<f32>, Vec<f32>, u64) {
    let model = arm();
    let (n, xd) = (5, 4);
    let ys = [1.5, 0.0, y[0], y[1], 0.5, 1.0];
    let mut s = Session::new(&model, 8).unwrap();
    s.reseed(7, 1);
    let mut x = vec![0.0; 3 * n * xd];
    let result = s.sample_batch(&ys, n, &mut x);
    let next_row = s.rng_position().2;
    let mut alone = vec![0.0; 3 * n * xd];
    for j in [0, 2] {
        s.reseed(7, 1);
        s.seek((j * n) as u64);
        let part = &mut alone[j * n * xd..(j + 1) * n * xd];
        s.sample(&ys[2 * j..2 * j + 2], n, part).unwrap();
    }
    (result, x, alone, next_row)
}

#[test]
fn an_observation_with_a_non_finite_value_gives_nan_samples_and_the_call_succeeds() {
    for bad in NON_FINITE {
        for y in [[bad, 0.0], [1.0, bad]] {
            let (result, x, alone, next_row) = sample_around(y);
            result.unwrap();
            assert!(all_nan(&x[20..40]), "{y:?}: {x:?}");
            assert_eq!(bits(&x[..20]), bits(&alone[..20]));
            assert_eq!(bits(&x[40..]), bits(&alone[40..]));
            assert_eq!(next_row, 15, "its stream rows are skipped all the same");
        }
    }
}

#[test]
fn an_observation_that_overflows_the_network_is_reported_by_name_and_first_row() {
    // y = 1e38 is finite, and so is its standardisation; the network's arithmetic is not.
    let (result, x, alone, next_row) = sample_around([1e38, 0.0]);
    assert_eq!(
        result,
        Err(Error::NonFiniteOutput {
            buffer: "x",
            row: 5,
            rows: 5
        })
    );
    assert!(all_nan(&x[20..40]), "{x:?}");
    assert_eq!(
        bits(&x[..20]),
        bits(&alone[..20]),
        "the other rows are written"
    );
    assert_eq!(bits(&x[40..]), bits(&alone[40..]));
    assert_eq!(next_row, 15, "the stream advanced as on success");
    // A standardisation that overflows (3.4e38 is finite) is an overflow too, not an
    // invalid input.
    let (result, x, _, _) = sample_around([f32::MAX, 0.0]);
    assert!(matches!(
        result,
        Err(Error::NonFiniteOutput {
            buffer: "x",
            row: 5,
            ..
        })
    ));
    assert!(all_nan(&x[20..40]));
}

/// Summaries of 3 observations of the arm, 6 samples each (quantiles 0.1 and 0.9) on a session
/// of `max_batch` rows: one pass (`max_batch` ≥ 6) or several.
fn summarize(ys: &[f32], max_batch: usize) -> (Result<usize, Error>, [Vec<f32>; 3]) {
    let model = arm();
    let mut s = Session::new(&model, max_batch).unwrap();
    s.reseed(3, 0);
    let (mut mean, mut std, mut q) = (vec![0.0; 12], vec![0.0; 12], vec![0.0; 24]);
    let out = SummaryBuffers {
        mean: &mut mean,
        std: &mut std,
        quantile_values: &mut q,
    };
    let result = s.summarize(ys, 6, &[0.1, 0.9], out);
    (result.map(|r| r.invalid_rows), [mean, std, q])
}

#[test]
fn summaries_follow_the_same_policy_in_one_pass_and_in_several() {
    let clean = [1.5, 0.0, 1.0, 0.5, 0.5, 1.0];
    for max_batch in [64, 4] {
        let (result, reference) = summarize(&clean, max_batch);
        assert_eq!(result, Ok(0));
        let observation = |outputs: &[Vec<f32>; 3], j: usize| -> Vec<u32> {
            let [m, s, q] = outputs;
            let rows = [&m[j * 4..][..4], &s[j * 4..][..4], &q[j * 8..][..8]];
            rows.iter().flat_map(|r| bits(r)).collect()
        };
        let nan_observation = |outputs: &[Vec<f32>; 3], j: usize| {
            let [m, s, q] = outputs;
            all_nan(&m[j * 4..][..4]) && all_nan(&s[j * 4..][..4]) && all_nan(&q[j * 8..][..8])
        };
        for bad in NON_FINITE {
            let mut ys = clean;
            ys[2] = bad;
            let (result, out) = summarize(&ys, max_batch);
            assert_eq!(result, Ok(1), "max_batch {max_batch}, y = {bad}: counted");
            assert!(nan_observation(&out, 1));
            for j in [0, 2] {
                assert_eq!(observation(&out, j), observation(&reference, j));
            }
        }
        for overflow in [1e38, f32::MAX] {
            let mut ys = clean;
            ys[2] = overflow;
            let (result, out) = summarize(&ys, max_batch);
            assert!(
                matches!(
                    result,
                    Err(Error::NonFiniteOutput {
                        buffer: "mean",
                        row: 1,
                        rows: 1
                    })
                ),
                "max_batch {max_batch}, y = {overflow}: {result:?}"
            );
            assert!(nan_observation(&out, 1));
            for j in [0, 2] {
                assert_eq!(observation(&out, j), observation(&reference, j));
            }
        }
    }
}

/// Forward and inverse passes of the arm, the middle row's input overflowing: reported,
/// that row NaN (log-determinant too), the others written.
#[test]
fn a_pass_whose_finite_input_overflows_is_reported() {
    let model = arm();
    let mut s = Session::new(&model, 3).unwrap();
    let cond = [1.5, 0.0, 1.5, 0.0, 1.5, 0.0];
    let valid = [0.1f32, -0.2, 0.3, 0.4];
    for rev in [false, true] {
        let clean_input = valid.repeat(3);
        let (clean, clean_out, clean_ld) = pass(&mut s, rev, &clean_input, Some(&cond));
        clean.unwrap();
        let mut input = clean_input.clone();
        input[4..8].fill(1e38);
        let (result, out, ld) = pass(&mut s, rev, &input, Some(&cond));
        assert_eq!(
            result,
            Err(Error::NonFiniteOutput {
                buffer: "output",
                row: 1,
                rows: 1
            }),
            "rev {rev}: {out:?} {ld:?}"
        );
        assert!(all_nan(&out[4..8]) && ld[1].is_nan());
        for r in [0, 2] {
            assert_eq!(bits(&out[r * 4..][..4]), bits(&clean_out[r * 4..][..4]));
            assert_eq!(ld[r].to_bits(), clean_ld[r].to_bits());
        }
        // The same condition overflowing instead (its standardisation is finite).
        let mut c = cond;
        c[2] = 1e38;
        let mut out = vec![0.0; 12];
        let result = if rev {
            s.inverse(&clean_input, Some(&c), &mut out, None)
        } else {
            s.forward(&clean_input, Some(&c), &mut out, None)
        };
        assert!(
            matches!(
                result,
                Err(Error::NonFiniteOutput {
                    row: 1,
                    rows: 1,
                    ..
                })
            ),
            "rev {rev}: {result:?}"
        );
        assert!(all_nan(&out[4..8]));
    }
}

/// A model whose x lies in a box: a de-standardised output past f32 (x_std = 3e38 for the
/// first parameter, on [0, 1] behind a logit) is reported, not mapped onto the box's bounds
/// as if it were a sample there, by sampling and by the inverse pass alike.
#[test]
fn the_bounds_of_x_do_not_hide_an_overflow() {
    let mut file = common::glow_cinn(4, 3, 16, 3, 11);
    file.set("innfer.x_mean", "0,0,0,0")
        .set("innfer.x_std", "3e38,1,1,1")
        .set("innfer.x_transform", "logit,identity,identity,identity")
        .set("innfer.x_lower", "0,,,")
        .set("innfer.x_upper", "1,,,");
    let model = Model::from_bytes(&file.to_bytes()).unwrap();
    let mut s = Session::new(&model, 64).unwrap();
    let mut x = vec![0.0; 64 * 4];
    let result = s.sample(&[0.3, -0.2, 0.5], 64, &mut x);
    let nan: Vec<usize> = (0..64).filter(|&r| all_nan(&x[r * 4..][..4])).collect();
    assert!(!nan.is_empty() && nan.len() < 64, "{nan:?}");
    assert_eq!(
        result,
        Err(Error::NonFiniteOutput {
            buffer: "x",
            row: nan[0],
            rows: nan.len()
        })
    );
    // The other samples lie in the box (on its bounds, mostly: u is huge).
    for r in (0..64).filter(|r| !nan.contains(r)) {
        assert!(
            (0.0..=1.0).contains(&x[r * 4]),
            "row {r}: {:?}",
            &x[r * 4..][..4]
        );
    }
    // The inverse pass of the same latent vectors agrees row by row.
    let mut z = vec![0.0; 64 * 4];
    for r in 0..64 {
        innfer::kernels::normal::fill_row(0, 0, r as u64, &mut z[r * 4..][..4]);
    }
    let cond = [0.3f32, -0.2, 0.5].repeat(64);
    let mut back = vec![0.0; 64 * 4];
    let result = s.inverse(&z, Some(&cond), &mut back, None);
    assert_eq!(bits(&back), bits(&x));
    assert_eq!(
        result,
        Err(Error::NonFiniteOutput {
            buffer: "output",
            row: nan[0],
            rows: nan.len()
        })
    );
}
