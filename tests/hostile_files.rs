//! Hostile model files: every structural fact of a file is checked against every other before
//! anything is sized or run by it (docs/format.md §8). Each test is one rule; each file here
//! is also committed under tests/fixtures/hostile/ (written by `INNFER_BLESS=1 cargo test
//! --test hostile_files`), where the fuzzers take them as seeds and other bindings can load
//! them.

mod common;

use common::{Lcg, ModelFile, glow_cinn, glow_inn};
use innfer::{Error, Model};

fn load(f: &ModelFile) -> Result<Model, Error> {
    Model::from_bytes(&bytes(f))
}

/// `f` as a safetensors file with its keys in sorted order (safetensors' own writer orders
/// the metadata as a hash map does, differently from run to run), so that the committed
/// reproducers can be compared byte for byte.
fn bytes(f: &ModelFile) -> Vec<u8> {
    let mut entries = Vec::new();
    let mut data = Vec::new();
    for (name, (dtype, shape, values)) in &f.tensors {
        let shape: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
        entries.push(format!(
            "\"{name}\":{{\"dtype\":\"{dtype:?}\",\"shape\":[{}],\"data_offsets\":[{},{}]}}",
            shape.join(","),
            data.len(),
            data.len() + values.len()
        ));
        data.extend_from_slice(values);
    }
    let meta: Vec<String> = f
        .meta
        .iter()
        .map(|(k, v)| format!("\"{k}\":\"{v}\""))
        .collect();
    entries.insert(0, format!("\"__metadata__\":{{{}}}", meta.join(",")));
    let mut json = format!("{{{}}}", entries.join(","));
    while json.len() % 8 != 0 {
        json.push(' ');
    }
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(json.as_bytes());
    out.extend_from_slice(&data);
    out
}

/// The error's metadata key, tensor name, or `Dims` text.
fn named(e: &Error) -> String {
    match e {
        Error::Metadata { key, .. } => key.clone(),
        Error::TensorValue { name, .. }
        | Error::TensorShape { name, .. }
        | Error::NonFinite { name, .. } => name.clone(),
        Error::MissingTensor(name) => name.clone(),
        Error::Dims(text) | Error::Format(text) => text.clone(),
        other => format!("{other:?}"),
    }
}

/// Loading `f` fails with an error naming `what` (a key, a tensor, or text of the message).
fn refused(f: &ModelFile, what: &str) -> Error {
    match load(f) {
        Ok(_) => panic!("loaded, but `{what}` should have been refused"),
        Err(e) => {
            assert!(
                named(&e).contains(what) || e.to_string().contains(what),
                "refused for another reason: {e}"
            );
            e
        }
    }
}

fn none_layout() -> ModelFile {
    glow_cinn(4, 0, 8, 1, 3)
}

// --- Counts and widths the file cannot back ---------------------------------------------

fn huge_block_count(count: &str) -> ModelFile {
    let mut f = none_layout();
    f.set("innfer.blocks", count);
    f
}

#[test]
fn a_block_count_the_file_cannot_back_is_refused_naming_innfer_blocks() {
    // 1e9 blocks once reserved 160 GB (abort); 1e17 overflowed the capacity (panic).
    for count in ["1000000000", "100000000000000000", "18446744073709551615"] {
        let e = refused(&huge_block_count(count), "innfer.blocks");
        assert!(e.to_string().contains("metadata keys"), "{e}");
    }
}

#[test]
fn an_empty_chain_is_refused_whatever_its_width() {
    let mut f = none_layout();
    f.set("innfer.blocks", 0);
    refused(&f, "innfer.blocks");
    // Without blocks nothing backs a width: a billion-wide identity once loaded, and then
    // every session asked for gigabytes.
    f.set("innfer.dim", 1_000_000_000);
    f.tensors.clear();
    f.meta.retain(|k, _| !k.starts_with("innfer.block."));
    refused(&f, "innfer.dim");
}

fn huge_dim() -> ModelFile {
    let mut f = none_layout();
    f.set("innfer.dim", 1_000_000_000u64);
    f
}

#[test]
fn a_width_wider_than_the_file_is_refused_naming_innfer_dim() {
    let e = refused(&huge_dim(), "innfer.dim");
    assert!(e.to_string().contains("bytes"), "{e}");
    let mut f = none_layout();
    f.set("innfer.dim", usize::MAX);
    refused(&f, "innfer.dim");
}

fn unused_condition() -> ModelFile {
    let mut f = none_layout();
    f.set("innfer.cond_dim", 1_000_000_000_000u64);
    f
}

#[test]
fn a_condition_width_is_backed_by_a_block_that_takes_it() {
    // A trillion-wide condition no block reads once made every session ask for 4 TB.
    refused(&unused_condition(), "innfer.cond_dim");
    let mut f = none_layout();
    f.set("innfer.cond_dim", 3);
    let e = refused(&f, "innfer.cond_dim");
    assert!(
        e.to_string().contains("no block takes the condition"),
        "{e}"
    );
}

#[test]
fn standardisation_lists_are_counted_before_anything_is_reserved() {
    let mut f = glow_cinn(4, 2, 8, 1, 3);
    f.set("innfer.x_mean", "0,0,0")
        .set("innfer.x_std", "1,1,1,1");
    let e = refused(&f, "innfer.x_mean");
    assert!(e.to_string().contains("3 values, expected 4"), "{e}");
}

// --- Zero widths -------------------------------------------------------------------------

fn empty_weight() -> ModelFile {
    let mut f = none_layout();
    // Block 0's subnet1 maps 2 → 8 → 4; its first weight becomes [0, 2].
    f.f32("module_list.0.subnet1.0.weight", &[0, 2], &[]);
    f
}

#[test]
fn a_layer_with_no_outputs_is_refused_naming_its_weight() {
    // A [0, K] weight once got K floats of scratch (2.3 GB from a 715-byte file).
    let e = refused(&empty_weight(), "module_list.0.subnet1.0.weight");
    assert!(matches!(e, Error::Dims(_)), "{e:?}");
}

#[test]
fn a_layer_with_no_inputs_is_refused() {
    let mut f = none_layout();
    f.f32("module_list.0.subnet1.2.weight", &[4, 0], &[]);
    refused(&f, "module_list.0.subnet1.2.weight");
}

#[test]
fn no_tensor_may_be_empty() {
    let mut f = none_layout();
    f.f32("module_list.0.subnet1.0.bias", &[0], &[]);
    refused(&f, "module_list.0.subnet1.0.bias");
}

#[test]
fn a_split_that_leaves_an_empty_half_is_refused() {
    for split in ["0", "4", "18446744073709551615", "1e30"] {
        let mut f = none_layout();
        f.set("innfer.block.0.split", split);
        assert!(load(&f).is_err(), "split {split} loaded");
    }
}

// --- Layouts ------------------------------------------------------------------------------

fn wrapping_layout() -> ModelFile {
    // x + pad_x wraps to dim = 6 in release builds: x = 7 would read into the next sample.
    let mut f = glow_inn(3, 3, 2, 1, 3, 1);
    f.set("innfer.layout.x", 7)
        .set("innfer.layout.pad_x", usize::MAX);
    f
}

#[test]
fn layout_sums_are_computed_without_wrapping() {
    let e = refused(&wrapping_layout(), "layout inn");
    assert!(matches!(e, Error::Dims(_)), "{e:?}");
    let mut f = glow_inn(3, 3, 2, 1, 3, 1);
    f.set("innfer.layout.z", usize::MAX - 2)
        .set("innfer.layout.pad_zy", 5);
    refused(&f, "layout inn");
}

#[test]
fn a_layout_one_wider_than_the_chain_is_refused() {
    let mut f = glow_inn(3, 3, 2, 1, 3, 1);
    f.set("innfer.layout.x", 4);
    refused(&f, "x + pad_x = 7");
}

// --- Invertibility --------------------------------------------------------------------------

/// One head ActNorm of width 4 with these log-scales, then a GLOW block.
fn actnorm(log_scale: [f32; 4]) -> ModelFile {
    let mut f = glow_cinn(4, 0, 8, 1, 3);
    // Blocks: 0 GLOW, 1 PermuteRandom, 2 ActNorm.
    f.set("innfer.blocks", 3)
        .set("innfer.freia", "head")
        .set("innfer.block.2.type", "ActNorm")
        .f32("module_list.2.log_scale", &[1, 4], &log_scale)
        .f32("module_list.2.loc", &[1, 4], &[0.5, -0.5, 0.0, 1.0]);
    f
}

#[test]
fn an_actnorm_scale_must_be_invertible_in_f32() {
    assert!(load(&actnorm([0.1, -0.2, 3.0, -3.0])).is_ok());
    // exp(−1e4) is 0 (the inverse divides by it); exp(89) is ∞; exp(−87.5) is subnormal, and
    // its reciprocal ∞.
    for bad in [-1e4, 89.0, -87.5] {
        let e = refused(&actnorm([0.1, bad, 0.0, 0.0]), "module_list.2.log_scale");
        assert!(e.to_string().contains("channel 1"), "{e}");
    }
}

#[test]
fn the_pypi_actnorm_scale_is_checked_too() {
    let mut f = actnorm([0.0; 4]);
    f.set("innfer.freia", "0.2");
    f.tensors.remove("module_list.2.log_scale");
    f.tensors.remove("module_list.2.loc");
    f.f32("module_list.2.scale", &[1, 4], &[0.0, 0.0, 100.0, 0.0])
        .f32("module_list.2.bias", &[1, 4], &[0.0; 4]);
    refused(&f, "module_list.2.scale");
}

fn huge_clamp() -> ModelFile {
    let mut f = none_layout();
    f.set("innfer.block.0.clamp", "3.4e38");
    f
}

#[test]
fn a_clamp_is_positive_and_at_most_64() {
    refused(&huge_clamp(), "innfer.block.0.clamp");
    for bad in ["0", "-2", "64.5", "inf", "NaN"] {
        let mut f = none_layout();
        f.set("innfer.block.0.clamp", bad);
        refused(&f, "innfer.block.0.clamp");
    }
    let mut f = none_layout();
    f.set("innfer.block.0.clamp", "64");
    assert!(load(&f).is_ok());
}

/// One FixedLinearTransform of width 3 (M, M_inv, logDetM as given) after a GLOW block.
fn fixed_linear(m: [f32; 9], m_inv: [f32; 9], log_det: f32) -> ModelFile {
    let mut f = glow_cinn(3, 0, 8, 1, 3);
    f.set("innfer.blocks", 3)
        .set("innfer.block.2.type", "FixedLinearTransform")
        .f32("module_list.2.M", &[3, 3], &m)
        .f32("module_list.2.M_inv", &[3, 3], &m_inv)
        .f32("module_list.2.logDetM", &[1], &[log_det]);
    f
}

/// diag(2, 1, 0.5) with an off-diagonal entry, its inverse, and log|det| = 0.
const M: [f32; 9] = [2.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.5];
const M_INV: [f32; 9] = [0.5, 0.0, 0.0, -0.5, 1.0, 0.0, 0.0, 0.0, 2.0];

fn wrong_inverse() -> ModelFile {
    let mut m_inv = M_INV;
    m_inv[3] = 0.5;
    fixed_linear(M, m_inv, 0.0)
}

#[test]
fn a_fixed_linear_inverse_must_invert_its_matrix() {
    assert!(load(&fixed_linear(M, M_INV, 0.0)).is_ok());
    let e = refused(&wrong_inverse(), "module_list.2.M_inv");
    assert!(e.to_string().contains("max |M_inv·(M·p) − p|"), "{e}");
}

#[test]
fn a_fixed_linear_log_determinant_must_match_its_matrix() {
    let e = refused(&fixed_linear(M, M_INV, 0.7), "module_list.2.logDetM");
    assert!(e.to_string().contains("log|det"), "{e}");
    // Within the stated tolerance, 1e-3 · (1 + |log|det M||): loads.
    assert!(load(&fixed_linear(M, M_INV, 5e-4)).is_ok());
    // A singular M has no inverse at all.
    let singular = [1.0, 2.0, 0.0, 2.0, 4.0, 0.0, 0.0, 0.0, 1.0];
    assert!(load(&fixed_linear(singular, M_INV, 0.0)).is_err());
}

fn wrong_perm_inv() -> ModelFile {
    let mut f = none_layout();
    f.i64("module_list.1.perm_inv", &[0, 1, 2, 3]);
    f
}

#[test]
fn a_stored_permutation_inverse_is_exactly_the_inverse() {
    let e = refused(&wrong_perm_inv(), "module_list.1.perm_inv");
    assert!(e.to_string().contains("not the inverse"), "{e}");
}

/// One AllInOneBlock of width 4, no condition, with the permutation tensors given.
fn all_in_one(perm: &[(&str, Vec<usize>, Vec<f32>)], permutation: Option<&str>) -> ModelFile {
    let mut rng = Lcg(5);
    let mut f = ModelFile {
        meta: Default::default(),
        tensors: Default::default(),
    };
    f.set("innfer.format", 1)
        .set("innfer.freia", "0.2")
        .set("innfer.dim", 4)
        .set("innfer.blocks", 1)
        .set("innfer.block.0.type", "AllInOneBlock")
        .mlp(&mut rng, 0, "subnet", 2, 8, 4)
        .f32("module_list.0.global_scale", &[1, 4], &[0.3, 0.2, 0.1, 0.0])
        .f32(
            "module_list.0.global_offset",
            &[1, 4],
            &[0.0, 0.1, 0.2, 0.3],
        );
    if let Some(p) = permutation {
        f.set("innfer.block.0.permutation", p);
    }
    for (name, shape, values) in perm {
        f.f32(&format!("module_list.0.{name}"), shape, values);
    }
    f
}

/// A rotation by θ in the (0, 1) plane and by 2θ in the (2, 3) plane, and its transpose.
fn rotation(theta: f32) -> (Vec<f32>, Vec<f32>) {
    let (c, s) = (theta.cos(), theta.sin());
    let (c2, s2) = ((2.0 * theta).cos(), (2.0 * theta).sin());
    let w = vec![
        c, -s, 0.0, 0.0, s, c, 0.0, 0.0, 0.0, 0.0, c2, -s2, 0.0, 0.0, s2, c2,
    ];
    let mut t = vec![0.0; 16];
    for i in 0..4 {
        for j in 0..4 {
            t[j * 4 + i] = w[i * 4 + j];
        }
    }
    (w, t)
}

fn wrong_soft_inverse() -> ModelFile {
    let (w, _) = rotation(0.4);
    let (_, wrong) = rotation(0.5);
    all_in_one(
        &[("w_perm", vec![4, 4], w), ("w_perm_inv", vec![4, 4], wrong)],
        Some("soft"),
    )
}

#[test]
fn a_soft_permutation_inverse_must_invert_it() {
    let (w, t) = rotation(0.4);
    let good = all_in_one(
        &[
            ("w_perm", vec![4, 4], w.clone()),
            ("w_perm_inv", vec![4, 4], t),
        ],
        Some("soft"),
    );
    assert!(load(&good).is_ok());
    let e = refused(&wrong_soft_inverse(), "module_list.0.w_perm_inv");
    assert!(e.to_string().contains("is not the inverse of"), "{e}");
    // Without a stored inverse the transpose is used: the matrix must be orthogonal.
    let mut scaled = w;
    scaled[0] *= 1.5;
    let f = all_in_one(&[("w_perm", vec![4, 4], scaled)], None);
    let e = refused(&f, "module_list.0.w_perm");
    assert!(e.to_string().contains("not orthogonal"), "{e}");
}

#[test]
fn a_hard_permutation_matrix_inverse_is_exactly_its_transpose() {
    let p = vec![
        0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0,
    ];
    let good = all_in_one(
        &[
            ("w_perm", vec![4, 4], p.clone()),
            ("w_perm_inv", vec![4, 4], p.clone()),
        ],
        Some("hard"),
    );
    // p is not symmetric, so p itself is not its inverse.
    refused(&good, "module_list.0.w_perm_inv");
    let mut t = vec![0.0; 16];
    for i in 0..4 {
        for j in 0..4 {
            t[j * 4 + i] = p[i * 4 + j];
        }
    }
    let good = all_in_one(
        &[("w_perm", vec![4, 4], p), ("w_perm_inv", vec![4, 4], t)],
        Some("hard"),
    );
    assert!(load(&good).is_ok());
}

fn bogus_permutation() -> ModelFile {
    let (w, t) = rotation(0.4);
    all_in_one(
        &[("w_perm", vec![4, 4], w), ("w_perm_inv", vec![4, 4], t)],
        Some("bogus-value"),
    )
}

#[test]
fn the_permutation_key_is_one_of_three_and_agrees_with_the_tensors() {
    refused(&bogus_permutation(), "innfer.block.0.permutation");
    let (w, t) = rotation(0.4);
    for wrong in ["hard", "householder"] {
        let f = all_in_one(
            &[
                ("w_perm", vec![4, 4], w.clone()),
                ("w_perm_inv", vec![4, 4], t.clone()),
            ],
            Some(wrong),
        );
        refused(&f, "innfer.block.0.permutation");
    }
}

#[test]
fn a_householder_permutation_has_at_most_d_reflections_none_zero() {
    let (w0, _) = rotation(0.3);
    let vk = |k: usize| -> Vec<f32> { (0..k * 4).map(|i| 1.0 + (i % 3) as f32).collect() };
    let ok = all_in_one(
        &[
            ("w_0", vec![4, 4], w0.clone()),
            ("vk_householder", vec![4, 4], vk(4)),
        ],
        Some("householder"),
    );
    assert!(load(&ok).is_ok());
    let too_many = all_in_one(
        &[
            ("w_0", vec![4, 4], w0.clone()),
            ("vk_householder", vec![5, 4], vk(5)),
        ],
        Some("householder"),
    );
    refused(&too_many, "module_list.0.vk_householder");
    let mut zero = vk(2);
    zero[4..8].fill(0.0);
    let f = all_in_one(
        &[
            ("w_0", vec![4, 4], w0),
            ("vk_householder", vec![2, 4], zero),
        ],
        None,
    );
    let e = refused(&f, "module_list.0.vk_householder");
    assert!(e.to_string().contains("row 1"), "{e}");
}

// --- Nothing unread, nothing said twice ----------------------------------------------------

fn misspelt_key() -> ModelFile {
    // One flipped bit: `clamp` → `clamq`. The block would silently run with the default clamp.
    let mut f = none_layout();
    f.set("innfer.block.0.clamp", "1.5");
    let v = f.meta.remove("innfer.block.0.clamp").unwrap();
    f.set("innfer.block.0.clamq", v);
    f
}

#[test]
fn an_unknown_metadata_key_is_refused_naming_it() {
    let e = refused(&misspelt_key(), "innfer.block.0.clamq");
    assert!(e.to_string().contains("not a key of this format"), "{e}");
    let mut f = none_layout();
    f.set("innfer.comment", "hello");
    refused(&f, "innfer.comment");
}

#[test]
fn only_a_checkpoints_own_prefix_goes_unread() {
    // A training checkpoint's state (src/train/checkpoint.rs) rides along in the model file.
    let mut f = none_layout();
    f.set("innfer_train.epoch", 3)
        .f32("innfer_train.adam_m", &[2], &[0.5, 0.25]);
    innfer::Model::from_bytes(&f.to_bytes()).expect("a checkpoint's keys and tensors load");
    // A prefix that only looks like it does not.
    let mut f = none_layout();
    f.set("innfer_training.epoch", 3);
    refused(&f, "innfer_training.epoch");
    let mut f = none_layout();
    f.f32("innfer_trainer.adam_m", &[1], &[0.5]);
    refused(&f, "innfer_trainer.adam_m");
}

#[test]
fn a_key_of_another_block_type_is_refused() {
    // NICE has no clamp; a layout key without that layout names nothing.
    let mut f = none_layout();
    f.set("innfer.block.0.type", "NICECouplingBlock")
        .set("innfer.block.0.clamp", "2.0");
    f.meta.remove("innfer.block.0.subnet.subnet1");
    refused(&f, "innfer.block.0");
    let mut f = none_layout();
    f.set("innfer.layout.x", 4);
    refused(&f, "innfer.layout.x");
}

#[test]
fn an_unknown_tensor_is_refused_naming_it() {
    let mut f = none_layout();
    f.f32("module_list.0.subnet1.0.weigth", &[1], &[0.0]);
    refused(&f, "module_list.0.subnet1.0.weigth");
}

/// `f`'s bytes with the metadata key `key` written twice, first with `first`.
fn with_repeated_key(f: &ModelFile, key: &str, first: &str) -> Vec<u8> {
    let file = bytes(f);
    let n = u64::from_le_bytes(file[..8].try_into().unwrap()) as usize;
    let json = std::str::from_utf8(&file[8..8 + n]).unwrap().trim_end();
    let marker = "\"__metadata__\":{";
    let at = json.find(marker).unwrap() + marker.len();
    let mut edited = format!("{}\"{key}\":\"{first}\",{}", &json[..at], &json[at..]);
    while edited.len() % 8 != 0 {
        edited.push(' ');
    }
    let mut out = (edited.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(edited.as_bytes());
    out.extend_from_slice(&file[8 + n..]);
    out
}

fn repeated_key_bytes() -> Vec<u8> {
    with_repeated_key(&none_layout(), "innfer.block.0.split", "1")
}

#[test]
fn a_key_given_twice_is_refused_naming_it() {
    match Model::from_bytes(&repeated_key_bytes()) {
        Err(Error::Format(m)) => {
            assert!(m.contains("`innfer.block.0.split` appears twice"), "{m}")
        }
        other => panic!("{:?}", other.err()),
    }
}

// --- The committed reproducers ----------------------------------------------------------------

/// Every reproducer: its file name under tests/fixtures/hostile/, its bytes, and what its
/// refusal names.
fn reproducers() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    vec![
        (
            "blocks_1e9",
            bytes(&huge_block_count("1000000000")),
            "innfer.blocks",
        ),
        (
            "blocks_1e17",
            bytes(&huge_block_count("100000000000000000")),
            "innfer.blocks",
        ),
        ("dim_1e9", bytes(&huge_dim()), "innfer.dim"),
        (
            "cond_dim_unused_1e12",
            bytes(&unused_condition()),
            "innfer.cond_dim",
        ),
        (
            "empty_weight",
            bytes(&empty_weight()),
            "module_list.0.subnet1.0.weight",
        ),
        ("layout_sum_wraps", bytes(&wrapping_layout()), "layout inn"),
        (
            "actnorm_log_scale_-1e4",
            bytes(&actnorm([0.0, -1e4, 0.0, 0.0])),
            "module_list.2.log_scale",
        ),
        (
            "actnorm_log_scale_89",
            bytes(&actnorm([0.0, 89.0, 0.0, 0.0])),
            "module_list.2.log_scale",
        ),
        ("clamp_3.4e38", bytes(&huge_clamp()), "innfer.block.0.clamp"),
        (
            "fixed_linear_wrong_inverse",
            bytes(&wrong_inverse()),
            "module_list.2.M_inv",
        ),
        (
            "fixed_linear_wrong_logdet",
            bytes(&fixed_linear(M, M_INV, 0.7)),
            "module_list.2.logDetM",
        ),
        (
            "perm_inv_wrong",
            bytes(&wrong_perm_inv()),
            "module_list.1.perm_inv",
        ),
        (
            "soft_permutation_wrong_inverse",
            bytes(&wrong_soft_inverse()),
            "module_list.0.w_perm_inv",
        ),
        (
            "permutation_bogus_value",
            bytes(&bogus_permutation()),
            "innfer.block.0.permutation",
        ),
        (
            "misspelt_clamq",
            bytes(&misspelt_key()),
            "innfer.block.0.clamq",
        ),
        ("repeated_key", repeated_key_bytes(), "innfer.block.0.split"),
    ]
}

#[test]
fn every_committed_reproducer_is_current_and_refused_naming_its_fault() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hostile");
    let bless = std::env::var_os("INNFER_BLESS").is_some();
    for (name, file, what) in reproducers() {
        let path = dir.join(format!("{name}.safetensors"));
        if bless {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &file).unwrap();
        }
        let committed = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (INNFER_BLESS=1 writes it)", path.display()));
        assert!(
            committed == file,
            "{name}: stale (INNFER_BLESS=1 rewrites it)"
        );
        for e in [
            Model::from_bytes(&file).err(),
            Model::from_file(&path).err(),
        ] {
            let e = e.unwrap_or_else(|| panic!("{name} loaded"));
            assert!(
                named(&e).contains(what) || e.to_string().contains(what),
                "{name}: refused for another reason: {e}"
            );
        }
    }
}

#[test]
fn a_subnet_layer_name_too_long_to_look_up_is_refused_naming_the_subnet() {
    // The names a block looks up are built on the stack (src/source/name.rs): a layer whose
    // tensor names would pass 192 bytes is refused, not looked up cut short.
    let long = "l".repeat(200);
    let mut f = common::glow_cinn(4, 2, 8, 1, 1);
    f.set("innfer.block.0.subnet.subnet1", format!("{long}:Linear"))
        .f32(
            &format!("module_list.0.subnet1.{long}.weight"),
            &[4, 4],
            &[0.1; 16],
        )
        .f32(
            &format!("module_list.0.subnet1.{long}.bias"),
            &[4],
            &[0.0; 4],
        );
    let e = refused(&f, "innfer.block.0.subnet.subnet1");
    assert!(e.to_string().contains("longer than 192 bytes"), "{e}");
}
