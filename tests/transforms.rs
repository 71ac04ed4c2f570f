//! The transforms between the caller's units and the network's (docs/format.md §3.1). A model
//! that declares them computes exactly what the same network without them computes, with x
//! mapped through its bounds (before the standardisation on the way in, after it on the way
//! out) and the raw condition through the centred log-ratio (before the y standardisation);
//! its log-determinants add the x transform's log-Jacobian; its samples never leave the box;
//! an invalid row spoils only itself. A file that declares them wrongly is refused, naming
//! the key.

mod common;

use common::{ModelFile, glow_cinn, glow_inn};
use innfer::model::{XTransform, XTransformKind, YTransform};
use innfer::{Error, Model, Session};

const X_DIM: usize = 4;
const BANDS: usize = 8;

/// A cINN for 4 parameters given 8 values, standardised: the network alone.
fn plain() -> ModelFile {
    let mut f = glow_cinn(X_DIM, BANDS, 16, 3, 11);
    f.set("innfer.x_mean", "0.3,-2.9,1.2,0.5")
        .set("innfer.x_std", "1.7,0.8,0.6,2.0")
        .set(
            "innfer.y_mean",
            "-0.35,-0.26,-0.19,-0.53,-0.63,0.33,0.81,0.82",
        )
        .set("innfer.y_std", "0.05,0.04,0.03,0.1,0.12,0.08,0.2,0.2");
    f
}

/// The same network behind the transforms: sO2-like in [0, 1], a volume fraction in
/// [0.005, 0.1], a scattering amplitude above 5, one free parameter; raw band values.
fn bounded() -> ModelFile {
    let mut f = plain();
    f.set("innfer.x_transform", "logit,logit,log,identity")
        .set("innfer.x_lower", "0,0.005,5,")
        .set("innfer.x_upper", "1,0.1,,")
        .set("innfer.y_transform", "clr");
    f
}

fn transforms() -> Vec<XTransform> {
    vec![
        XTransform::logit(0.0, 1.0).unwrap(),
        XTransform::logit(0.005, 0.1).unwrap(),
        XTransform::log(5.0).unwrap(),
        XTransform::IDENTITY,
    ]
}

fn load(f: &ModelFile) -> Model {
    Model::from_bytes(&f.to_bytes()).unwrap()
}

/// Band values of a few tissue-like pixels (positive, about 0.1 … 0.8).
fn bands(rows: usize) -> Vec<f32> {
    (0..rows * BANDS)
        .map(|i| 0.45 + 0.35 * ((i as f32) * 0.77).sin())
        .collect()
}

fn clr(raw: &[f32]) -> Vec<f32> {
    let mut out = raw.to_vec();
    out.chunks_exact_mut(BANDS)
        .for_each(|row| YTransform::Clr.apply(row));
    out
}

/// Parameters inside their bounds.
fn inside(rows: usize) -> Vec<f32> {
    (0..rows)
        .flat_map(|r| {
            let t = r as f32 / rows as f32;
            [
                0.02 + 0.96 * t,
                0.095 - 0.085 * t,
                5.5 + 30.0 * t * t,
                -2.0 + 4.0 * t,
            ]
        })
        .collect()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|f| f.to_bits()).collect()
}

fn in_box(x: &[f32]) -> bool {
    x.chunks_exact(X_DIM)
        .all(|r| (0.0..=1.0).contains(&r[0]) && (0.005..=0.1).contains(&r[1]) && r[2] >= 5.0)
}

/// Whether every row of an inverse pass's `x` lies inside the box, except rows whose x came
/// out past f32 (5 + e^u for u beyond 88.7): those are NaN throughout and the call reported
/// exactly them (src/session/finite.rs).
fn in_box_or_reported(result: Result<(), innfer::Error>, x: &[f32]) -> bool {
    let rows: Vec<&[f32]> = x.chunks_exact(X_DIM).collect();
    let nan: Vec<usize> = (0..rows.len())
        .filter(|&r| rows[r].iter().all(|v| v.is_nan()))
        .collect();
    let reported = match result {
        Ok(()) => nan.is_empty(),
        Err(innfer::Error::NonFiniteOutput { row, rows, .. }) => {
            nan.first() == Some(&row) && nan.len() == rows
        }
        Err(_) => false,
    };
    let finite = (0..rows.len()).filter(|r| !nan.contains(r));
    reported
        && finite
            .into_iter()
            .all(|r| in_box(rows[r]) && rows[r][2].is_finite())
}

#[test]
fn models_say_which_transforms_they_apply() {
    let none = load(&plain());
    assert!(none.x_transform().is_empty());
    assert_eq!(none.y_transform(), YTransform::None);
    let model = load(&bounded());
    assert_eq!(model.x_transform(), &transforms()[..]);
    let kinds: Vec<_> = model.x_transform().iter().map(|t| t.kind()).collect();
    use XTransformKind::*;
    assert_eq!(kinds, [Logit, Logit, Log, Identity]);
    assert_eq!(model.x_transform()[1].lower(), Some(0.005));
    assert_eq!(model.x_transform()[1].upper(), Some(0.1));
    assert_eq!(model.x_transform()[2].upper(), None);
    assert_eq!(model.y_transform(), YTransform::Clr);
}

#[test]
fn samples_are_the_networks_samples_of_the_clr_condition_mapped_into_the_box() {
    let (network, model) = (load(&plain()), load(&bounded()));
    let raw = bands(3);
    let n = 150; // more than max_batch: several chunks
    let mut want = vec![0.0; 3 * n * X_DIM];
    let mut s = Session::new(&network, 64).unwrap();
    s.reseed(9, 2);
    s.sample_batch(&clr(&raw), n, &mut want).unwrap();
    for (v, t) in want.iter_mut().zip(transforms().iter().cycle()) {
        *v = t.to_bounded(*v);
    }
    let mut got = vec![0.0; 3 * n * X_DIM];
    let mut s = Session::new(&model, 64).unwrap();
    s.reseed(9, 2);
    s.sample_batch(&raw, n, &mut got).unwrap();
    assert_eq!(bits(&got), bits(&want));
    assert!(in_box(&got));
    // One observation at a time: the same numbers.
    let mut one = vec![0.0; n * X_DIM];
    s.reseed(9, 2);
    s.seek(2 * n as u64);
    s.sample(&raw[2 * BANDS..], n, &mut one).unwrap();
    assert_eq!(bits(&one), bits(&got[2 * n * X_DIM..]));
}

#[test]
fn forward_is_the_networks_forward_of_u_and_adds_the_log_jacobian_of_x_to_u() {
    let (network, model) = (load(&plain()), load(&bounded()));
    let rows = 37;
    let (x, raw) = (inside(rows), bands(rows));
    let u: Vec<f32> = x
        .iter()
        .zip(transforms().iter().cycle())
        .map(|(&v, t)| t.to_unbounded(v).0)
        .collect();
    let (mut want, mut want_ld) = (vec![0.0; rows * X_DIM], vec![0.0; rows]);
    Session::new(&network, rows)
        .unwrap()
        .forward(&u, Some(&clr(&raw)), &mut want, Some(&mut want_ld))
        .unwrap();
    let (mut got, mut got_ld) = (vec![0.0; rows * X_DIM], vec![0.0; rows]);
    let mut s = Session::new(&model, rows).unwrap();
    s.forward(&x, Some(&raw), &mut got, Some(&mut got_ld))
        .unwrap();
    assert_eq!(bits(&got), bits(&want));
    // log|du/dx| in f64: ln(h − l) − ln(x − l) − ln(h − x) (logit), −ln(x − l) (log).
    for r in 0..rows {
        let v: Vec<f64> = x[r * X_DIM..(r + 1) * X_DIM]
            .iter()
            .map(|&v| v as f64)
            .collect();
        let logit = |v: f64, l: f64, h: f64| (h - l).ln() - (v - l).ln() - (h - v).ln();
        let jacobian =
            logit(v[0], 0.0, 1.0) + logit(v[1], 0.005f32 as f64, 0.1f32 as f64) - (v[2] - 5.0).ln();
        let added = got_ld[r] as f64 - want_ld[r] as f64;
        assert!(
            (added - jacobian).abs() <= 1e-5 * (1.0 + got_ld[r].abs() as f64),
            "row {r}: added {added}, log-Jacobian {jacobian}"
        );
    }
    // Without a logdet buffer: the same outputs.
    let mut again = vec![0.0; rows * X_DIM];
    s.forward(&x, Some(&raw), &mut again, None).unwrap();
    assert_eq!(bits(&again), bits(&got));
}

#[test]
fn inverse_gives_x_back_inside_the_box_and_the_negative_log_determinant() {
    let model = load(&bounded());
    let rows = 37;
    let (x, raw) = (inside(rows), bands(rows));
    let mut s = Session::new(&model, rows).unwrap();
    let (mut z, mut ld) = (vec![0.0; rows * X_DIM], vec![0.0; rows]);
    s.forward(&x, Some(&raw), &mut z, Some(&mut ld)).unwrap();
    let (mut back, mut ld_back) = (vec![0.0; rows * X_DIM], vec![0.0; rows]);
    s.inverse(&z, Some(&raw), &mut back, Some(&mut ld_back))
        .unwrap();
    assert!(in_box(&back));
    for (b, v) in back.iter().zip(&x) {
        assert!((b - v).abs() <= 1e-5 * (1.0 + v.abs()), "{b} vs {v}");
    }
    for (f, i) in ld.iter().zip(&ld_back) {
        assert!((f + i).abs() <= 1e-5 * (1.0 + f.abs()), "{f} vs {i}");
    }
    let mut no_ld = vec![0.0; rows * X_DIM];
    s.inverse(&z, Some(&raw), &mut no_ld, None).unwrap();
    assert_eq!(bits(&no_ld), bits(&back));
}

#[test]
fn a_common_scale_of_the_band_values_does_not_change_the_samples() {
    let model = load(&bounded());
    let raw = bands(1);
    let brighter: Vec<f32> = raw.iter().map(|v| v * 2.7).collect();
    let mut s = Session::new(&model, 256).unwrap();
    let (mut a, mut b) = (vec![0.0; 500 * X_DIM], vec![0.0; 500 * X_DIM]);
    s.reseed(4, 0);
    s.sample(&raw, 500, &mut a).unwrap();
    s.reseed(4, 0);
    s.sample(&brighter, 500, &mut b).unwrap();
    // Equal up to the rounding of ln(2.7·b) against ln 2.7 + ln b.
    for (p, q) in a.iter().zip(&b) {
        assert!((p - q).abs() <= 1e-4 * (1.0 + p.abs()), "{p} vs {q}");
    }
}

#[test]
fn an_invalid_observation_gives_nan_for_its_own_rows_only() {
    let model = load(&bounded());
    let mut raw = bands(6);
    // A dead pixel, a negative (dark-subtracted) value, a NaN and a saturated band.
    for (row, bad) in [(1, 0.0), (2, -0.01), (3, f32::NAN), (4, f32::INFINITY)] {
        raw[row * BANDS + 3] = bad;
    }
    let n = 20;
    let mut s = Session::new(&model, 64).unwrap();
    let mut x = vec![0.0; 6 * n * X_DIM];
    s.sample_batch(&raw, n, &mut x).unwrap();
    let per = n * X_DIM;
    for row in [0, 5] {
        let mut alone = vec![0.0; per];
        s.reseed(0, 0);
        s.seek((row * n) as u64);
        s.sample(&raw[row * BANDS..(row + 1) * BANDS], n, &mut alone)
            .unwrap();
        assert_eq!(bits(&alone), bits(&x[row * per..(row + 1) * per]));
        assert!(in_box(&alone));
    }
    for row in 1..5 {
        let part = &x[row * per..(row + 1) * per];
        assert!(
            part.iter().all(|v| v.is_nan()),
            "row {row}: {:?}",
            &part[..8]
        );
    }
    // Forward and inverse alike: the condition enters the same way.
    let xs = inside(6);
    let (mut z, mut ld) = (vec![0.0; 6 * X_DIM], vec![0.0; 6]);
    s.forward(&xs, Some(&raw), &mut z, Some(&mut ld)).unwrap();
    let (mut back, mut ld_back) = (vec![0.0; 6 * X_DIM], vec![0.0; 6]);
    s.inverse(&z, Some(&raw), &mut back, Some(&mut ld_back))
        .unwrap();
    for (out, ld) in [(&z, &ld), (&back, &ld_back)] {
        for row in 0..6 {
            let values = out[row * X_DIM..(row + 1) * X_DIM].iter().chain([&ld[row]]);
            if row == 0 || row == 5 {
                assert!(values.clone().all(|v| v.is_finite()), "row {row}");
            } else {
                assert!(values.clone().all(|v| v.is_nan()), "row {row}");
            }
        }
    }
}

#[test]
fn x_on_or_outside_its_bounds_makes_its_row_nan_and_no_error() {
    let model = load(&bounded());
    let raw = bands(5);
    let mut x = inside(5);
    x[X_DIM] = 1.0; // on the upper bound: u = +inf
    x[2 * X_DIM + 1] = 0.2; // above the upper bound: u = NaN
    x[3 * X_DIM + 2] = 4.0; // below the lower bound: u = NaN
    let mut s = Session::new(&model, 5).unwrap();
    let (mut z, mut ld) = (vec![0.0; 5 * X_DIM], vec![0.0; 5]);
    s.forward(&x, Some(&raw), &mut z, Some(&mut ld)).unwrap();
    for row in 0..5 {
        let values = z[row * X_DIM..(row + 1) * X_DIM].iter().chain([&ld[row]]);
        if row == 0 || row == 4 {
            assert!(values.clone().all(|v| v.is_finite()), "row {row}");
        } else {
            assert!(values.clone().all(|v| v.is_nan()), "row {row}");
        }
    }
    // Without a logdet buffer the outputs are the same.
    let mut again = vec![0.0; 5 * X_DIM];
    s.forward(&x, Some(&raw), &mut again, None).unwrap();
    assert_eq!(bits(&again), bits(&z));
}

/// What makes an invalid row NaN throughout: a state row of NaN comes out of every block type
/// as NaN in every entry (the committed FrEIA fixtures hold every block type), both ways.
#[test]
fn a_row_of_nan_stays_nan_in_every_entry_through_every_block() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut checked = 0;
    for dir in std::fs::read_dir(root).unwrap().flatten() {
        let path = dir.path().join("model.safetensors");
        if !path.is_file() {
            continue;
        }
        let model = Model::from_file(&path).unwrap();
        let (d, cc) = (model.dim(), model.cond_dim());
        let bytes = std::fs::read(dir.path().join("reference.safetensors")).unwrap();
        let refs = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let row = |name: &str| -> Vec<f32> {
            let t = refs.tensor(name).unwrap();
            t.data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect()
        };
        let c = if cc > 0 {
            row("c_b1").repeat(3)
        } else {
            Vec::new()
        };
        let cond = (cc > 0).then_some(&c[..]);
        let mut s = Session::new(&model, 3).unwrap();
        for (rev, valid) in [(false, row("x_b1")), (true, row("inv_in_b1"))] {
            // A valid row between two rows of NaN.
            let mut input = vec![f32::NAN; 3 * d];
            input[d..2 * d].copy_from_slice(&valid);
            let mut out = vec![0.0; 3 * d];
            if rev {
                s.inverse(&input, cond, &mut out, None).unwrap();
            } else {
                s.forward(&input, cond, &mut out, None).unwrap();
            }
            let name = path.display();
            assert!(
                out[..d].iter().all(|v| v.is_nan()),
                "{name} rev {rev}: {out:?}"
            );
            assert!(out[2 * d..].iter().all(|v| v.is_nan()), "{name} rev {rev}");
            assert!(
                out[d..2 * d].iter().all(|v| v.is_finite()),
                "{name} rev {rev}"
            );
        }
        checked += 1;
    }
    assert!(checked >= 19, "{checked} fixtures");
}

#[test]
fn extreme_latents_give_samples_inside_the_box() {
    let model = load(&bounded());
    // Every corner of [−40, 40]⁴ and the axes: far beyond any draw of N(0, I).
    let mut z = Vec::new();
    for corner in 0..16 {
        z.extend((0..X_DIM).map(|k| if corner >> k & 1 == 1 { 40.0 } else { -40.0 }));
    }
    for k in 0..X_DIM {
        for v in [-40.0, 40.0] {
            z.extend((0..X_DIM).map(|j| if j == k { v } else { 0.0 }));
        }
    }
    let rows = z.len() / X_DIM;
    let raw = bands(rows);
    let mut x = vec![0.0; z.len()];
    let result = Session::new(&model, rows)
        .unwrap()
        .inverse(&z, Some(&raw), &mut x, None);
    assert!(in_box_or_reported(result, &x), "{x:?}");
}

/// The FrEIA-exported fixture (tests/fixtures/make_transform_fixture.py; tests/freia_parity.rs
/// checks its numbers): its samples lie inside its box for real observations and for latents
/// far beyond any normal draw.
#[test]
fn the_freia_fixture_stays_inside_its_box_even_for_extreme_latents() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pypi_cinn_bounded_clr");
    let model = Model::from_file(dir.join("model.safetensors")).unwrap();
    assert_eq!(model.x_transform(), &transforms()[..]);
    assert_eq!(model.y_transform(), YTransform::Clr);
    let bytes = std::fs::read(dir.join("reference.safetensors")).unwrap();
    let refs = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let c: Vec<f32> = refs
        .tensor("c_b257")
        .unwrap()
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let mut s = Session::new(&model, 256).unwrap();
    let mut x = vec![0.0; 20 * 500 * X_DIM];
    s.sample_batch(&c[..20 * BANDS], 500, &mut x).unwrap();
    assert!(in_box(&x));
    // Every corner of [−40, 40]⁴, each with several observations.
    let z: Vec<f32> = (0..64)
        .flat_map(|r| (0..X_DIM).map(move |k| if (r % 16) >> k & 1 == 1 { 40.0 } else { -40.0 }))
        .collect();
    let mut x = vec![0.0; 64 * X_DIM];
    let result = s.inverse(&z, Some(&c[..64 * BANDS]), &mut x, None);
    assert!(in_box_or_reported(result, &x), "{x:?}");
}

#[test]
fn identity_and_none_written_out_change_no_bit() {
    let mut spelt = plain();
    spelt
        .set("innfer.x_transform", "identity,identity,identity,identity")
        .set("innfer.y_transform", "none");
    let (a, b) = (load(&plain()), load(&spelt));
    let rows = 9;
    let (x, c) = (inside(rows), bands(rows));
    let run = |m: &Model| {
        let mut s = Session::new(m, 16).unwrap();
        s.reseed(1, 1);
        let (mut z, mut ld) = (vec![0.0; rows * X_DIM], vec![0.0; rows]);
        s.forward(&x, Some(&c), &mut z, Some(&mut ld)).unwrap();
        let (mut back, mut ld_back) = (vec![0.0; rows * X_DIM], vec![0.0; rows]);
        s.inverse(&z, Some(&c), &mut back, Some(&mut ld_back))
            .unwrap();
        let mut samples = vec![0.0; 40 * X_DIM];
        s.sample(&c[..BANDS], 40, &mut samples).unwrap();
        [z, ld, back, ld_back, samples].map(|v| bits(&v))
    };
    assert_eq!(run(&a), run(&b));
}

// --- Files that declare transforms wrongly ------------------------------------------------

/// Loading fails with a metadata error naming `key` whose message contains `says`.
fn refused(f: &ModelFile, key: &str, says: &str) {
    match Model::from_bytes(&f.to_bytes()) {
        Ok(_) => panic!("loaded, but `{key}` should have been refused"),
        Err(Error::Metadata { key: k, problem }) => {
            assert_eq!(k, key, "{problem}");
            assert!(problem.contains(says), "`{key}`: {problem}");
        }
        Err(e) => panic!("`{key}`: refused for another reason: {e}"),
    }
}

fn with(key: &str, value: &str) -> ModelFile {
    let mut f = bounded();
    f.set(key, value);
    f
}

fn without(key: &str) -> ModelFile {
    let mut f = bounded();
    f.meta.remove(key);
    f
}

/// Each `(key, value, says)`: the bounded model with `key` set to `value` is refused naming
/// `key`, saying `says`.
fn refused_with_each(cases: &[(&str, &str, &str)]) {
    for &(key, value, says) in cases {
        refused(&with(key, value), key, says);
    }
}

#[test]
fn the_x_transform_has_one_known_kind_per_x_dimension() {
    let key = "innfer.x_transform";
    refused_with_each(&[
        (key, "logit,logit,log", "has 3 entries, expected 4"),
        (key, "logit,logit,log,identity,log", "has 5 entries"),
        (
            key,
            "logit,logit,sqrt,identity",
            "`sqrt`, not identity, log or logit",
        ),
        (key, "logit,Logit,log,identity", "`Logit`"),
    ]);
}

#[test]
fn bounds_have_one_entry_per_dimension_and_exactly_the_ones_its_kind_has() {
    let (lower, upper) = ("innfer.x_lower", "innfer.x_upper");
    refused_with_each(&[
        (lower, "0,0.005,5", "has 3 entries, expected 4"),
        (upper, "1,0.1,,,", "has 5 entries"),
        // A bound the dimension's kind does not have would be read by nothing…
        (
            lower,
            "0,0.005,5,-3",
            "entry 3 is `-3`, but dimension 3 is identity",
        ),
        (upper, "1,0.1,50,", "dimension 2 is log"),
        // …and a bound it has must be there.
        (lower, "0,,5,", "entry 1 (dimension 1 is logit) is ``"),
    ]);
    for key in [lower, upper] {
        refused(&without(key), key, "is missing, but dimension 0 is logit");
    }
    let mut unbounded = without(lower);
    unbounded
        .set("innfer.x_transform", "identity,identity,identity,identity")
        .set(upper, ",,,");
    refused(
        &unbounded,
        upper,
        "no dimension of `innfer.x_transform` has that bound",
    );
    refused(
        &without("innfer.x_transform"),
        lower,
        "is given but `innfer.x_transform` is not",
    );
}

#[test]
fn bounds_are_finite_and_a_logit_interval_is_not_empty() {
    let (lower, upper) = ("innfer.x_lower", "innfer.x_upper");
    for bad in ["nan", "inf", "-inf", "1e39", "x", "0x1"] {
        refused_with_each(&[
            (lower, &format!("0,{bad},5,"), "not a finite number"),
            (upper, &format!("{bad},0.1,,"), "not a finite number"),
        ]);
    }
    refused_with_each(&[
        (
            upper,
            "1,0.005,,",
            "entry 1 is 0.005 with lower bound 0.005",
        ),
        (upper, "-1,0.1,,", "must be below its upper bound"),
    ]);
    let mut wide = with(lower, "-3e38,0.005,5,");
    wide.set(upper, "3e38,0.1,,");
    refused(&wide, upper, "upper − lower must be finite");
}

#[test]
fn the_y_transform_is_none_or_clr_on_a_cinn_condition_of_two_values_or_more() {
    refused(
        &with("innfer.y_transform", "alr"),
        "innfer.y_transform",
        "`alr` is not none or clr",
    );
    let mut inn = glow_inn(2, 2, 2, 0, 2, 2);
    inn.set("innfer.y_transform", "clr");
    refused(&inn, "innfer.y_transform", "cinn layout only");
    let mut one = glow_cinn(2, 1, 8, 1, 3);
    one.set("innfer.y_transform", "clr");
    refused(
        &one,
        "innfer.y_transform",
        "at least 2 values, this one has 1",
    );
    // The inn layout does take an x transform: its input's first x entries are x.
    let mut inn_bounded = glow_inn(2, 2, 2, 0, 2, 2);
    inn_bounded
        .set("innfer.x_transform", "logit,identity")
        .set("innfer.x_lower", "-1,")
        .set("innfer.x_upper", "1,");
    let model = load(&inn_bounded);
    let mut x = vec![0.0; 64 * 2];
    Session::new(&model, 64)
        .unwrap()
        .sample(&[0.5, -0.5], 64, &mut x)
        .unwrap();
    assert!(x.chunks_exact(2).all(|r| (-1.0..=1.0).contains(&r[0])));
}

#[test]
fn transforms_need_a_layout() {
    for (key, value) in [
        ("innfer.x_transform", "identity,identity,identity,identity"),
        ("innfer.y_transform", "none"),
    ] {
        let mut f = glow_cinn(X_DIM, 0, 8, 1, 3);
        f.set(key, value);
        refused(&f, "innfer.layout", "need a layout");
    }
}

#[test]
fn parameters_may_carry_names_and_units_that_change_no_number() {
    let mut f = bounded();
    f.set("innfer.x_names", "sO2,vhb,a_mie,b_mie")
        .set("innfer.x_units", ",,1/cm,");
    let labelled = load(&f);
    assert_eq!(labelled.x_name(0), Some("sO2"));
    assert_eq!(labelled.x_name(2), Some("a_mie"));
    assert_eq!(labelled.x_unit(2), Some("1/cm"));
    assert_eq!(labelled.x_unit(0), Some(""));
    assert_eq!(labelled.x_name(4), None);
    let plain = load(&bounded());
    assert_eq!((plain.x_name(0), plain.x_unit(0)), (None, None));

    let draw = |m: &Model| {
        let mut s = Session::new(m, 64).unwrap();
        s.reseed(3, 0);
        let mut x = vec![0.0; 50 * X_DIM];
        s.sample(&bands(1), 50, &mut x).unwrap();
        bits(&x)
    };
    assert_eq!(draw(&labelled), draw(&plain));
}

#[test]
fn names_and_units_have_one_entry_per_x_dimension_and_names_are_not_empty() {
    refused_with_each(&[
        ("innfer.x_names", "sO2,vhb,a_mie", "3 entries, expected 4"),
        ("innfer.x_names", "sO2,,a_mie,b_mie", "entry 1 is empty"),
        ("innfer.x_units", ",,1/cm", "3 entries, expected 4"),
        ("innfer.x_units", ",\u{7},,", "control characters"),
    ]);
}

#[test]
fn summaries_of_a_camera_frame_mark_dead_and_saturated_pixels_and_stay_in_the_box() {
    let model = load(&bounded());
    let mut frame = bands(5);
    frame[BANDS] = 0.0; // pixel 1: a dead band
    frame[3 * BANDS + 2] = f32::INFINITY; // pixel 3: a saturated one
    frame[4 * BANDS + 7] = f32::NAN; // pixel 4: no value
    let q = [0.05f32, 0.5, 0.95];
    let (mut mean, mut std, mut qv) = (
        vec![0.0; 5 * X_DIM],
        vec![0.0; 5 * X_DIM],
        vec![0.0; 5 * q.len() * X_DIM],
    );
    let mut s = Session::new(&model, 256).unwrap();
    s.reseed(9, 0);
    let report = s
        .summarize(
            &frame,
            64,
            &q,
            innfer::SummaryBuffers {
                mean: &mut mean,
                std: &mut std,
                quantile_values: &mut qv,
            },
        )
        .unwrap();
    assert_eq!(report.invalid_rows, 3);
    for p in 0..5 {
        let invalid = [1, 3, 4].contains(&p);
        let m = &mean[p * X_DIM..(p + 1) * X_DIM];
        let qs = &qv[p * q.len() * X_DIM..(p + 1) * q.len() * X_DIM];
        if invalid {
            assert!(m.iter().chain(qs).all(|v| v.is_nan()), "pixel {p}");
        } else {
            assert!(in_box(m) && in_box(qs), "pixel {p}: {m:?} {qs:?}");
        }
    }
}
