//! Packed images (docs/format.md, "Packed images"): a model packed for any target and built in
//! place gives the heap-loaded model's results bit for bit; every corruption is refused with
//! an error, never a panic.

mod common;

use std::path::Path;

use innfer::model::{IMAGE_MEMORY_ALIGN, ImageTarget, image_summary};
use innfer::{Error, Isa, Layout, LoadOptions, Model, Session, WeightStorage};

/// `bytes` in memory of their own for the rest of the process, 8-byte aligned (a firmware's
/// image lives in flash for as long).
fn leak_image(bytes: &[u8]) -> &'static [u8] {
    let words: &'static mut [u64] = vec![0u64; bytes.len().div_ceil(8)].leak();
    // SAFETY: the u64s' bytes, leaked, so valid forever; u8 has no alignment.
    let all: &'static mut [u8] =
        unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast(), words.len() * 8) };
    all[..bytes.len()].copy_from_slice(bytes);
    &all[..bytes.len()]
}

#[repr(C, align(64))]
#[derive(Clone, Copy)]
struct Line([u8; 64]);

/// `len` bytes aligned to [`IMAGE_MEMORY_ALIGN`], for the rest of the process.
fn leak_memory(len: usize) -> &'static mut [u8] {
    assert_eq!(IMAGE_MEMORY_ALIGN, 64);
    let lines: &'static mut [Line] = vec![Line([0xA5; 64]); len.div_ceil(64).max(1)].leak();
    // SAFETY: the lines' bytes, leaked, so valid forever.
    unsafe { std::slice::from_raw_parts_mut(lines.as_mut_ptr().cast(), len) }
}

/// The model in `image`, built in place.
fn built(image: &[u8]) -> Model {
    let need = Model::image_memory_bytes(image).unwrap();
    Model::from_image(leak_image(image), leak_memory(need)).unwrap()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// What a model gives on `isa`: samples (at batch 1 and in one call of 7), and a forward and
/// an inverse pass with log-determinants, all as bits.
fn results(model: &Model, isa: Isa) -> Vec<Vec<u32>> {
    let mut out = Vec::new();
    let mut session = Session::new(model, 8).unwrap();
    session.set_isa(isa).unwrap();
    let (d, c) = (model.dim(), model.cond_dim());
    let value = |i: usize| ((i * 7919) % 61) as f32 / 16.0 - 1.9;
    if model.layout() != Layout::None {
        let y: Vec<f32> = (0..model.layout().y_dim())
            .map(|i| value(i) + 3.0)
            .collect();
        let mut x = vec![0.0; 7 * model.layout().x_dim()];
        session.reseed(42, 3);
        session.sample(&y, 7, &mut x).unwrap();
        out.push(bits(&x));
        session.reseed(42, 3);
        for row in x.chunks_mut(model.layout().x_dim()) {
            session.sample(&y, 1, row).unwrap();
        }
        out.push(bits(&x));
    }
    let rows = 5;
    let x: Vec<f32> = (0..rows * d).map(value).collect();
    let cond: Vec<f32> = (0..rows * c).map(|i| value(i + 3)).collect();
    let cond = (c > 0).then_some(&cond[..]);
    let (mut y, mut logdet) = (vec![0.0; rows * d], vec![0.0; rows]);
    session
        .forward(&x, cond, &mut y, Some(&mut logdet))
        .unwrap();
    out.push(bits(&y));
    out.push(bits(&logdet));
    let mut back = vec![0.0; rows * d];
    session
        .inverse(&y, cond, &mut back, Some(&mut logdet))
        .unwrap();
    out.push(bits(&back));
    out.push(bits(&logdet));
    out
}

/// Pack → build in place → run: the heap-loaded model's bits, on the portable kernel for
/// every target (a Cortex-M4 image runs the narrow kernel, which keeps the portable
/// contract), and on every ISA for the portable target (whose weights are the host's
/// layout), for every storage.
#[test]
fn every_model_packed_for_every_target_gives_the_loaded_models_bits() {
    for path in common::committed_models() {
        for storage in [WeightStorage::F32, WeightStorage::Bf16] {
            let options = LoadOptions {
                weight_storage: storage,
                ..LoadOptions::default()
            };
            let loaded = Model::from_file_with(&path, &options).unwrap();
            for target in ImageTarget::ALL {
                let image = loaded.to_image(target).unwrap();
                let summary = image_summary(&image).unwrap();
                assert_eq!(
                    (summary.target, summary.weight_storage, summary.bytes),
                    (target, storage, image.len())
                );
                let packed = built(&image);
                assert_eq!(packed.weight_storage(), storage);
                assert_eq!(packed.parameter_count(), loaded.parameter_count());
                let isas: &[Isa] = match target {
                    ImageTarget::Portable => &Isa::ALL,
                    ImageTarget::CortexM4 => &[Isa::Portable],
                };
                for &isa in isas.iter().filter(|i| i.is_available()) {
                    assert!(
                        results(&packed, isa) == results(&loaded, isa),
                        "{} {storage:?} {target:?} {isa:?}",
                        path.display()
                    );
                }
                // The image of the model built on an image is that image.
                assert!(packed.to_image(target).unwrap() == image);
            }
        }
    }
}

/// A Cortex-M4 image keeps no padding: its weights are each n·k elements, so a model whose
/// subnets end in 2 outputs takes about the bytes of its parameters, where the host layout
/// pads those layers to 16 columns.
#[test]
fn a_cortex_m4_image_is_about_its_parameters() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = Model::from_file(root.join("models/gmm8_some.safetensors")).unwrap();
    let m4 = model.to_image(ImageTarget::CortexM4).unwrap().len();
    let host = model.to_image(ImageTarget::Portable).unwrap().len();
    let params = 4 * model.parameter_count();
    assert!(
        m4 < params + params / 20,
        "{m4} bytes for {params} bytes of parameters"
    );
    assert!(host > m4, "{host} ≤ {m4}");
}

fn small_image() -> Vec<u8> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let model =
        Model::from_file(root.join("tests/fixtures/pypi_cinn_stats/model.safetensors")).unwrap();
    model.to_image(ImageTarget::CortexM4).unwrap()
}

/// Why `image` (where it lies) is refused, by both measuring and building; `None` if built.
fn refusal(image: &'static [u8]) -> Option<Error> {
    let measured = Model::image_memory_bytes(image);
    let need = *measured.as_ref().unwrap_or(&4096);
    let placed = Model::from_image(image, leak_memory(need));
    match (measured, placed) {
        (Ok(_), Ok(_)) => None,
        (Err(a), Err(b)) => {
            assert_eq!(a, b, "measuring and building refuse alike");
            Some(a)
        }
        (a, b) => panic!("measuring gave {a:?}, building {:?}", b.err()),
    }
}

/// Each corruption class is refused with its reason.
#[test]
fn each_corruption_is_refused_with_its_reason() {
    let image = small_image();
    let problem = |image: &[u8]| match refusal(leak_image(image)) {
        Some(Error::Image { problem, .. }) => problem,
        other => panic!("{other:?}"),
    };
    let mut bad = image.clone();
    bad[0] = b'X';
    assert!(problem(&bad).contains("magic"));
    let mut bad = image.clone();
    bad[8] = 2;
    assert!(problem(&bad).contains("version"));
    assert!(problem(&image[..image.len() - 4]).contains("truncated"));
    assert!(problem(&image[..20]).contains("truncated"));
    let mut bad = image.clone();
    bad[100] ^= 1;
    assert!(problem(&bad).contains("checksum"));
    // A wrong target (with a checksum that matches): refused by the target check.
    let mut bad = image.clone();
    bad[20] = 7;
    let crc = crc32(&bad[16..]);
    bad[12..16].copy_from_slice(&crc.to_le_bytes());
    assert!(problem(&bad).contains("target"));
    // Misaligned in memory.
    let mut shifted = vec![0u8; image.len() + 1];
    shifted[1..].copy_from_slice(&image);
    let at_one = &leak_image(&shifted)[1..];
    assert!(
        matches!(refusal(at_one), Some(Error::Image { problem, .. }) if problem.contains("aligned"))
    );
    // Memory too small or misaligned.
    let need = Model::image_memory_bytes(&image).unwrap();
    let small = Model::from_image(leak_image(&image), leak_memory(need - 1));
    assert!(
        matches!(small, Err(Error::ArenaTooSmall { .. })),
        "{:?}",
        small.err()
    );
    let memory = &mut leak_memory(need + 8)[8..];
    let misaligned = Model::from_image(leak_image(&image), memory);
    assert!(
        matches!(misaligned, Err(Error::ArenaMisaligned { .. })),
        "{:?}",
        misaligned.err()
    );
}

/// CRC-32 as zlib computes it (for the test's forged headers).
fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// Every byte of an image flipped, with the checksum fixed up so the body's own checks are
/// reached: refused or built, never a panic; and whatever is built runs.
#[test]
fn no_flipped_byte_panics_even_with_a_matching_checksum() {
    let image = small_image();
    let mut built_ok = 0;
    for at in 16..image.len() {
        for flip in [0x01u8, 0x80, 0xFF] {
            let mut bad = image.clone();
            bad[at] ^= flip;
            if at >= 16 {
                let crc = crc32(&bad[16..]);
                bad[12..16].copy_from_slice(&crc.to_le_bytes());
            }
            let outcome = std::panic::catch_unwind(|| {
                let Ok(need) = Model::image_memory_bytes(&bad) else {
                    return false;
                };
                // A flipped count may ask for much memory: up to what the image can back.
                assert!(need < 64 * bad.len() + 4096, "{need} bytes at {at}");
                let Ok(model) = Model::from_image(leak_image(&bad), leak_memory(need)) else {
                    panic!("measured but not built at byte {at}")
                };
                let mut session = Session::new(&model, 2).unwrap();
                session.set_isa(Isa::Portable).unwrap();
                let (d, c) = (model.dim(), model.cond_dim());
                let x = vec![0.5; 2 * d];
                let cond = vec![0.25; 2 * c];
                let mut out = vec![0.0; 2 * d];
                let cond = (c > 0).then_some(&cond[..]);
                session.forward(&x, cond, &mut out, None).unwrap();
                session.inverse(&out.clone(), cond, &mut out, None).unwrap();
                true
            });
            match outcome {
                Ok(ok) => built_ok += usize::from(ok),
                Err(_) => panic!("a panic with byte {at} ^ {flip:#x}"),
            }
        }
    }
    // Flipped values (weights, biases) still build: only structure is refused.
    assert!(built_ok > 0);
}

/// A model's descriptors take little memory: a chain of 4 blocks, under 4 KiB.
#[test]
fn the_descriptors_of_a_small_model_are_small() {
    let image = leak_image(&small_image());
    let need = Model::image_memory_bytes(image).unwrap();
    assert!(need < 4096, "{need} bytes of descriptors");
    let model = Model::from_image(image, leak_memory(need)).unwrap();
    assert_eq!(model.block_count(), 4);
}

/// `Model::from_bytes` and `Model::from_file` take a packed image too (a copy the model owns),
/// with the in-place model's bits; an image keeps its own storage.
#[test]
fn loading_an_image_from_bytes_or_a_file_builds_it_on_a_copy() {
    let image = small_image();
    let in_place = built(&image);
    let from_bytes = Model::from_bytes(&image).unwrap();
    let path = std::env::temp_dir().join(format!("innfer-image-{}.bin", std::process::id()));
    std::fs::write(&path, &image).unwrap();
    let from_file = Model::from_file(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let want = results(&in_place, Isa::Portable);
    assert!(results(&from_bytes, Isa::Portable) == want);
    assert!(results(&from_file, Isa::Portable) == want);
    let bf16 = LoadOptions {
        weight_storage: WeightStorage::Bf16,
        ..LoadOptions::default()
    };
    assert!(matches!(
        Model::from_bytes_with(&image, &bf16),
        Err(Error::Argument(_))
    ));
    let tight = LoadOptions {
        max_bytes: image.len(),
        ..LoadOptions::default()
    };
    assert!(matches!(
        Model::from_bytes_with(&image, &tight),
        Err(Error::OutOfMemory { .. })
    ));
}
