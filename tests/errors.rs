//! Bad input gets a typed error that names what is wrong — never a panic.

mod common;

use common::{glow_cinn, glow_inn};
use innfer::{ARENA_ALIGN, Error, Model, Session};

fn load(f: &common::ModelFile) -> Result<Model, Error> {
    Model::from_bytes(&f.to_bytes())
}

fn good() -> common::ModelFile {
    glow_cinn(5, 3, 16, 2, 1)
}

#[test]
fn the_reference_model_loads() {
    let m = load(&good()).unwrap();
    assert_eq!((m.dim(), m.cond_dim(), m.block_count()), (5, 3, 4));
}

#[test]
fn a_truncated_file_is_a_format_error() {
    let bytes = good().to_bytes();
    for cut in [0, 4, 8, 20, bytes.len() / 2, bytes.len() - 1] {
        match Model::from_bytes(&bytes[..cut]) {
            Err(Error::Format(_)) => {}
            other => panic!("cut at {cut}: {:?}", other.err()),
        }
    }
}

#[test]
fn a_corrupt_header_is_a_format_error() {
    let mut bytes = good().to_bytes();
    bytes[10] = b'{';
    bytes[11] = 0xff;
    assert!(matches!(Model::from_bytes(&bytes), Err(Error::Format(_))));
    let mut huge = good().to_bytes();
    huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(Model::from_bytes(&huge), Err(Error::Format(_))));
}

#[test]
fn a_missing_tensor_is_named() {
    let mut f = good();
    f.tensors.remove("module_list.2.subnet2.2.bias");
    assert_eq!(
        load(&f).err(),
        Some(Error::MissingTensor("module_list.2.subnet2.2.bias".into()))
    );
}

#[test]
fn a_misshaped_tensor_is_named_with_both_shapes() {
    let mut f = good();
    f.f32("module_list.0.subnet1.2.bias", &[3], &[0.0; 3]);
    match load(&f) {
        Err(Error::TensorShape {
            name,
            expected,
            found,
        }) => {
            assert_eq!(name, "module_list.0.subnet1.2.bias");
            assert_eq!((expected.as_str(), found.as_str()), ("[6]", "[3]"));
        }
        other => panic!("{:?}", other.err()),
    }
}

#[test]
fn an_unknown_block_is_named() {
    let mut f = good();
    f.set("innfer.block.1.type", "IRevNetCoupling");
    assert_eq!(
        load(&f).err(),
        Some(Error::UnknownBlock {
            block: 1,
            kind: "IRevNetCoupling".into()
        })
    );
}

#[test]
fn an_unknown_activation_is_named() {
    let mut f = good();
    f.set("innfer.block.0.subnet.subnet1", "0:Linear 1:Mish 2:Linear");
    match load(&f) {
        Err(Error::UnknownLayer { key, layer }) => {
            assert_eq!(key, "innfer.block.0.subnet.subnet1");
            assert_eq!(layer, "1:Mish");
        }
        other => panic!("{:?}", other.err()),
    }
}

#[test]
fn nan_or_inf_in_weights_is_named_with_its_index() {
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut f = good();
        let mut w = vec![0.1f32; 16 * 5];
        w[17] = bad;
        f.f32("module_list.0.subnet1.0.weight", &[16, 5], &w);
        assert_eq!(
            load(&f).err(),
            Some(Error::NonFinite {
                name: "module_list.0.subnet1.0.weight".into(),
                index: 17
            })
        );
    }
}

#[test]
fn dims_that_do_not_chain_are_reported() {
    // The subnet's last layer is 7 wide but the block needs 6.
    let mut f = good();
    f.f32("module_list.0.subnet1.2.weight", &[7, 16], &[0.0; 7 * 16]);
    f.f32("module_list.0.subnet1.2.bias", &[7], &[0.0; 7]);
    assert!(matches!(load(&f), Err(Error::Dims(m)) if m.contains("subnet1")));
    // A hidden layer whose input does not match the previous output.
    let mut f = good();
    f.f32("module_list.0.subnet1.2.weight", &[6, 15], &[0.0; 6 * 15]);
    assert!(
        matches!(load(&f), Err(Error::Dims(m)) if m.contains("module_list.0.subnet1.2.weight"))
    );
    // A layout whose x and y do not match the chain.
    let mut f = good();
    f.set("innfer.layout.x", 4);
    assert!(matches!(load(&f), Err(Error::Dims(_))));
    let mut f = glow_inn(2, 6, 2, 2, 4, 1);
    f.set("innfer.layout.pad_zy", 3);
    assert!(matches!(load(&f), Err(Error::Dims(_))));
}

#[test]
fn bad_metadata_values_name_the_key() {
    for (key, value) in [
        ("innfer.format", "2"),
        ("innfer.freia", "0.3"),
        ("innfer.dim", "five"),
        ("innfer.layout", "diffusion"),
        ("innfer.block.0.clamp", "NaN"),
        ("innfer.block.0.clamp_activation", "RELU"),
        ("innfer.block.0.cond", "1"),
    ] {
        let mut f = good();
        f.set(key, value);
        match load(&f) {
            Err(Error::Metadata { key: k, .. }) => assert_eq!(k, key),
            other => panic!("{key}={value}: {:?}", other.err()),
        }
    }
    let mut f = good();
    f.meta.remove("innfer.dim");
    assert!(matches!(load(&f), Err(Error::Metadata { key, .. }) if key == "innfer.dim"));
}

#[test]
fn a_broken_permutation_is_rejected() {
    let mut f = good();
    f.i64("module_list.1.perm", &[0, 1, 1, 3, 4]);
    assert!(
        matches!(load(&f), Err(Error::TensorValue { name, .. }) if name == "module_list.1.perm")
    );
}

#[test]
fn a_batch_above_the_maximum_is_refused() {
    let model = load(&good()).unwrap();
    let mut s = Session::new(&model, 4).unwrap();
    let x = vec![0.0; 5 * 5];
    let c = vec![0.0; 5 * 3];
    let mut out = vec![0.0; 5 * 5];
    assert_eq!(
        s.forward(&x, Some(&c), &mut out, None).err(),
        Some(Error::BatchTooLarge {
            batch: 5,
            max_batch: 4
        })
    );
    assert_eq!(
        s.inverse(&x, Some(&c), &mut out, None).err(),
        Some(Error::BatchTooLarge {
            batch: 5,
            max_batch: 4
        })
    );
}

#[test]
fn buffers_of_the_wrong_length_are_named() {
    let model = load(&good()).unwrap();
    let mut s = Session::new(&model, 8).unwrap();
    let x = vec![0.0; 2 * 5];
    let c = vec![0.0; 2 * 3];
    let mut out = vec![0.0; 2 * 5];
    let mut short = vec![0.0; 9];
    assert!(matches!(
        s.forward(&x[..9], Some(&c), &mut out, None),
        Err(Error::BufferLength {
            buffer: "input",
            ..
        })
    ));
    assert!(matches!(
        s.forward(&x, Some(&c), &mut short, None),
        Err(Error::BufferLength {
            buffer: "output",
            ..
        })
    ));
    assert!(matches!(
        s.forward(&x, Some(&c[..5]), &mut out, None),
        Err(Error::BufferLength { buffer: "cond", .. })
    ));
    assert!(matches!(
        s.forward(&x, None, &mut out, None),
        Err(Error::BufferPresence {
            buffer: "cond",
            expected: true
        })
    ));
    let mut ld = vec![0.0; 3];
    assert!(matches!(
        s.forward(&x, Some(&c), &mut out, Some(&mut ld)),
        Err(Error::BufferLength {
            buffer: "logdet",
            ..
        })
    ));
    let mut xs = vec![0.0; 10 * 5];
    assert!(matches!(
        s.sample(&[0.0; 2], 10, &mut xs),
        Err(Error::BufferLength { buffer: "y", .. })
    ));
    assert!(matches!(
        s.sample(&[0.0; 3], 11, &mut xs),
        Err(Error::BufferLength { buffer: "x", .. })
    ));
}

#[test]
fn caller_memory_that_is_too_small_is_refused() {
    let model = load(&good()).unwrap();
    let need = Session::arena_bytes(&model, 16).unwrap();
    let mut mem = AlignedBytes::new(need - 1);
    assert_eq!(
        Session::in_memory(&model, 16, mem.bytes()).err(),
        Some(Error::ArenaTooSmall {
            needed: need,
            found: need - 1
        })
    );
}

#[test]
fn misaligned_caller_memory_is_refused() {
    let model = load(&good()).unwrap();
    let need = Session::arena_bytes(&model, 16).unwrap();
    let mut mem = AlignedBytes::new(need + 64);
    let bytes = mem.bytes();
    match Session::in_memory(&model, 16, &mut bytes[4..]) {
        Err(Error::ArenaMisaligned { align, .. }) => assert_eq!(align, ARENA_ALIGN),
        other => panic!("{:?}", other.err()),
    }
    // The same memory, aligned, works.
    assert!(Session::in_memory(&model, 16, &mut bytes[..need]).is_ok());
}

#[test]
fn a_missing_file_names_the_path() {
    match Model::from_file("/nonexistent/model.safetensors") {
        Err(Error::Io { path, .. }) => assert_eq!(path, "/nonexistent/model.safetensors"),
        other => panic!("{:?}", other.err()),
    }
}

#[test]
fn sampling_a_model_without_layout_is_refused() {
    let mut f = good();
    f.set("innfer.layout", "none");
    f.meta.remove("innfer.layout.x");
    f.meta.remove("innfer.layout.y");
    let model = load(&f).unwrap();
    let mut s = Session::new(&model, 4).unwrap();
    assert_eq!(
        s.sample(&[0.0; 3], 2, &mut [0.0; 10]).err(),
        Some(Error::NoLayout)
    );
}

#[test]
fn errors_read_as_sentences() {
    let e = Error::BufferLength {
        buffer: "x",
        expected: 10,
        found: 9,
    };
    assert_eq!(e.to_string(), "buffer `x` holds 9 elements, expected 10");
}

/// 64-byte aligned heap bytes for caller-memory sessions.
struct AlignedBytes {
    storage: Vec<u128>,
    len: usize,
}

impl AlignedBytes {
    fn new(len: usize) -> Self {
        AlignedBytes {
            storage: vec![0u128; len / 16 + 8],
            len,
        }
    }

    fn bytes(&mut self) -> &mut [u8] {
        let bytes: &mut [u8] = bytemuck_bytes(&mut self.storage);
        let offset = bytes.as_ptr().align_offset(ARENA_ALIGN);
        &mut bytes[offset..offset + self.len]
    }
}

fn bytemuck_bytes(v: &mut [u128]) -> &mut [u8] {
    // SAFETY: u128 storage viewed as bytes; any byte pattern is valid for both.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<u8>(), v.len() * 16) }
}

#[test]
fn zero_rows_are_a_no_op_not_a_panic() {
    let model = load(&good()).unwrap();
    let mut s = Session::new(&model, 4).unwrap();
    s.forward(&[], Some(&[]), &mut [], Some(&mut [])).unwrap();
    s.inverse(&[], Some(&[]), &mut [], None).unwrap();
    s.sample(&[0.0; 3], 0, &mut []).unwrap();
}

#[test]
fn a_text_file_is_reported_as_not_safetensors() {
    match Model::from_bytes(b"this is not a model at all, just some text") {
        Err(Error::Format(m)) => assert!(m.contains("header"), "{m}"),
        other => panic!("{:?}", other.err()),
    }
}
