//! Householder permutations (docs/blocks.md §allinoneblock): `W = w_0·H_1⋯H_K` is formed at
//! load while that costs at most 64 multiply-adds per value of the file, and kept as its `K`
//! reflections otherwise, so that loading stays linear in the file however many reflections it
//! holds (docs/format.md §8, "Time"). Either way the block computes the map of its dense `W`.
//! Loading's work is counted here (`Model::load_multiply_adds`) for every block with a product
//! or check that could grow faster than its file.

mod common;

use common::{Lcg, ModelFile, glow_cinn, householder_aio, householder_product};
use innfer::{Model, Session};

/// The same model with `W = w_0·H_1⋯H_K` formed here in f64 and stored as a soft `w_perm`.
fn dense_twin(f: &ModelFile, d: usize) -> ModelFile {
    let f64s = |name: &str| -> Vec<f64> { f.tensor_f32(name).iter().map(|&v| v as f64).collect() };
    let w = householder_product(
        &f64s("module_list.0.w_0"),
        &f64s("module_list.0.vk_householder"),
        d,
    );
    let mut g = f.clone();
    g.tensors.remove("module_list.0.w_0");
    g.tensors.remove("module_list.0.vk_householder");
    let w: Vec<f32> = w.iter().map(|&v| v as f32).collect();
    g.set("innfer.block.0.permutation", "soft")
        .f32("module_list.0.w_perm", &[d, d], &w);
    g
}

/// `max |a − b|` over `max |b|`.
fn relative_error(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let diff = a
        .iter()
        .zip(b)
        .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
    diff / scale
}

/// Forward and inverse of `rows` rows (inputs from `seed`), with log-determinants.
fn passes(model: &Model, rows: usize, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let d = model.dim();
    let mut rng = Lcg(seed);
    let x = rng.vec(rows * d, 1.0);
    let cond = rng.vec(rows * model.cond_dim(), 1.0);
    let mut session = Session::new(model, rows).unwrap();
    let (mut z, mut ld_z) = (vec![0.0; rows * d], vec![0.0; rows]);
    session
        .forward(&x, Some(&cond), &mut z, Some(&mut ld_z))
        .unwrap();
    let (mut back, mut ld_back) = (vec![0.0; rows * d], vec![0.0; rows]);
    session
        .inverse(&x, Some(&cond), &mut back, Some(&mut ld_back))
        .unwrap();
    (z, ld_z, back, ld_back)
}

/// `(d, K, dense w_0)`: factored (`K·D > 32·(K + D)`) with either kind of `w_0`, one just past
/// the bound, and one formed at load.
const CASES: [(usize, usize, bool); 4] = [
    (512, 512, false),
    (128, 128, true),
    (200, 40, true),
    (512, 16, false),
];

#[test]
fn a_householder_permutation_computes_its_dense_matrix_to_1e_4() {
    for (d, k, dense_w0) in CASES {
        let f = householder_aio(d, k, dense_w0, 11);
        let model = Model::from_bytes(&f.to_bytes()).unwrap();
        let dense = Model::from_bytes(&dense_twin(&f, d).to_bytes()).unwrap();
        let (got, want) = (passes(&model, 9, 5), passes(&dense, 9, 5));
        for (what, a, b) in [
            ("forward", &got.0, &want.0),
            ("forward log-det", &got.1, &want.1),
            ("inverse", &got.2, &want.2),
            ("inverse log-det", &got.3, &want.3),
        ] {
            let e = relative_error(a, b);
            assert!(
                e <= 1e-4,
                "d = {d}, K = {k}: {what} off by {e:e} (relative)"
            );
        }
    }
}

#[test]
fn inverse_undoes_forward() {
    for (d, k, dense_w0) in CASES {
        let model = Model::from_bytes(&householder_aio(d, k, dense_w0, 12).to_bytes()).unwrap();
        let rows = 6;
        let mut rng = Lcg(3);
        let x = rng.vec(rows * d, 1.0);
        let cond = rng.vec(rows * 2, 1.0);
        let mut session = Session::new(&model, rows).unwrap();
        let (mut z, mut back) = (vec![0.0; rows * d], vec![0.0; rows * d]);
        let (mut ld_z, mut ld_back) = (vec![0.0; rows], vec![0.0; rows]);
        session
            .forward(&x, Some(&cond), &mut z, Some(&mut ld_z))
            .unwrap();
        session
            .inverse(&z, Some(&cond), &mut back, Some(&mut ld_back))
            .unwrap();
        let e = relative_error(&back, &x);
        assert!(
            e <= 1e-4,
            "d = {d}, K = {k}: inverse(forward(x)) off by {e:e}"
        );
        for (a, b) in ld_z.iter().zip(&ld_back) {
            assert!((a + b).abs() <= 1e-3 * (1.0 + a.abs()), "{a} {b}");
        }
    }
}

#[test]
fn a_factored_householder_model_samples_the_same_however_the_batch_is_split() {
    let model = Model::from_bytes(&householder_aio(512, 512, false, 13).to_bytes()).unwrap();
    let y = [0.3f32, -0.7];
    let n = 12;
    let mut session = Session::new(&model, n).unwrap();
    let mut at_once = vec![0.0; n * 512];
    session.reseed(9, 0);
    session.sample(&y, n, &mut at_once).unwrap();
    assert!(at_once.iter().all(|v| v.is_finite()));
    let mut one_by_one = vec![0.0; n * 512];
    session.reseed(9, 0);
    for row in one_by_one.chunks_exact_mut(512) {
        session.sample(&y, 1, row).unwrap();
    }
    assert!(
        at_once == one_by_one,
        "a batch of {n} and {n} batches of 1 differ"
    );

    // And whatever the number of threads.
    let rows = Session::min_threaded_rows(&model).max(4) * 2;
    let mut rng = Lcg(4);
    let x = rng.vec(rows * 512, 1.0);
    let cond = rng.vec(rows * 2, 1.0);
    let mut outs = Vec::new();
    for threads in [1, 2] {
        let mut session = Session::new(&model, rows).unwrap();
        session.set_threads(threads).unwrap();
        let mut z = vec![0.0; rows * 512];
        session.forward(&x, Some(&cond), &mut z, None).unwrap();
        let mut back = vec![0.0; rows * 512];
        session.inverse(&x, Some(&cond), &mut back, None).unwrap();
        outs.push((z, back));
    }
    assert!(outs[0] == outs[1], "1 and 2 threads differ");
}

/// A GLOW block then a FixedLinearTransform `d` wide whose `M` is orthogonal (a Householder
/// product), `M_inv = Mᵀ`, `logDetM = 0`.
fn fixed_linear(d: usize) -> ModelFile {
    let mut rng = Lcg(21);
    let mut w0 = vec![0.0f64; d * d];
    (0..d).for_each(|i| w0[i * d + i] = 1.0);
    let vk: Vec<f64> = rng.vec(3 * d, 1.0).iter().map(|&v| v as f64).collect();
    let m = householder_product(&w0, &vk, d);
    let mut t = vec![0.0f32; d * d];
    for i in 0..d {
        for j in 0..d {
            t[j * d + i] = m[i * d + j] as f32;
        }
    }
    let m: Vec<f32> = m.iter().map(|&v| v as f32).collect();
    let mut f = glow_cinn(d, 0, 8, 1, 3);
    f.set("innfer.blocks", 3)
        .set("innfer.block.2.type", "FixedLinearTransform")
        .f32("module_list.2.M", &[d, d], &m)
        .f32("module_list.2.M_inv", &[d, d], &t)
        .f32("module_list.2.logDetM", &[1], &[0.0]);
    f
}

/// Loading's checks and products (counted by the library, as multiply-adds: wall-clock times
/// are noise on a shared machine) take at most 80 per value of the file: the 64 of
/// `WORK_PER_VALUE` (src/blocks/allinone.rs) plus the inverse probes' 8·D² per dense map.
#[test]
fn loading_does_work_linear_in_the_file() {
    let files = [
        (
            "Householder, D = K = 512",
            householder_aio(512, 512, false, 14),
        ),
        (
            "Householder, dense w_0, D = K = 128",
            householder_aio(128, 128, true, 15),
        ),
        (
            "Householder, D = 512, K = 16",
            householder_aio(512, 16, true, 16),
        ),
        ("FixedLinearTransform, D = 512", fixed_linear(512)),
        ("FixedLinearTransform, D = 64", fixed_linear(64)),
    ];
    for (what, f) in files {
        let model = Model::from_bytes(&f.to_bytes()).unwrap();
        let (work, values) = (model.load_multiply_adds(), f.values() as u64);
        assert!(work > 0, "{what}: no work counted");
        assert!(
            work <= 80 * values,
            "{what}: {work} multiply-adds for {values} values ({} per value)",
            work / values
        );
    }
    // The product a D = K = 512 file would cost formed at load is 2·K·D² = 256 per value.
    let f = householder_aio(512, 512, false, 14);
    let work = Model::from_bytes(&f.to_bytes())
        .unwrap()
        .load_multiply_adds();
    assert!(work < 2 * 512 * 512 * 512 / 10, "{work}");
}

/// A factored Householder permutation goes into a packed image as its reflections (docs/format.md
/// §9.2) and gives the loaded model's bits from it.
#[test]
fn a_factored_householder_model_packs_into_an_image() {
    use innfer::model::ImageTarget;
    let loaded = Model::from_bytes(&householder_aio(128, 128, true, 17).to_bytes()).unwrap();
    let image = loaded.to_image(ImageTarget::Portable).unwrap();
    let packed = Model::from_image_bytes(&image, &Default::default()).unwrap();
    assert!(passes(&packed, 5, 8) == passes(&loaded, 5, 8));
    assert!(packed.to_image(ImageTarget::Portable).unwrap() == image);
}

/// A factored permutation's `w_0` is checked to be orthogonal on its own (then `W` is: the
/// reflections are), and named; a formed one's product `W` is checked, under `w_perm`.
#[test]
fn a_householder_w_0_that_is_not_orthogonal_is_refused() {
    for (d, k, name) in [
        (128, 128, "module_list.0.w_0"),
        (128, 8, "module_list.0.w_perm"),
    ] {
        let mut f = householder_aio(d, k, true, 18);
        let w0: Vec<f32> = f
            .tensor_f32("module_list.0.w_0")
            .iter()
            .map(|v| 1.01 * v)
            .collect();
        f.f32("module_list.0.w_0", &[d, d], &w0);
        let e = Model::from_bytes(&f.to_bytes()).err().expect("refused");
        let text = e.to_string();
        assert!(
            text.contains(name) && text.contains("is not orthogonal"),
            "K = {k}: {text}"
        );
    }
}

/// The one check linear time gives up: a FixedLinearTransform wider than 384 has its
/// `logDetM` taken as stored (its LU would cost `D³/3`); a narrower one's is still checked
/// (docs/format.md §8).
#[test]
fn a_wide_fixed_linear_log_det_is_taken_as_stored() {
    for (d, checked) in [(384, true), (385, false)] {
        let mut f = fixed_linear(d);
        f.f32("module_list.2.logDetM", &[1], &[0.5]);
        let loaded = Model::from_bytes(&f.to_bytes());
        assert_eq!(loaded.is_err(), checked, "D = {d}");
    }
}
