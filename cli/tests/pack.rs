//! `innfer pack` and `--isa`: a packed image (docs/format.md, "Packed images") samples and
//! passes exactly as its model does on the portable kernel; `innfer info` prints the memory
//! the C API asks for.

mod common;
use common::{TempDir, assert_ok, innfer, stderr, stdout};

use std::ffi::c_void;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn gmm8() -> PathBuf {
    root().join("models/gmm8_some.safetensors")
}

/// The first number after `key` on `text`'s line starting with `line`.
fn number_after(text: &str, line: &str, key: &str) -> usize {
    let l = text
        .lines()
        .find(|l| l.starts_with(line))
        .unwrap_or_else(|| panic!("no `{line}` line in {text}"));
    let rest = &l[l.find(key).unwrap_or_else(|| panic!("no `{key}` in {l}")) + key.len()..];
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no number after `{key}` in {l}"))
}

/// Samples and forward/inverse passes of a Cortex-M4 image with --isa portable are the
/// .safetensors model's with --isa portable, byte for byte (the firmware's numbers on a PC).
#[test]
fn a_cortex_m4_image_samples_and_passes_as_its_model_on_the_portable_kernel() {
    let tmp = TempDir::new("pack_isa");
    let image = tmp.path("gmm8.bin");
    let out = innfer(&[&"pack", &gmm8(), &"--target", &"cortex-m4", &"-o", &image]);
    assert_ok(&out);
    assert!(
        stdout(&out).contains("target cortex-m4"),
        "{}",
        stdout(&out)
    );
    let y = "0.5,-1,0.25,2,0,1,-0.5,0.75";
    let run = |model: &Path, isa: &str, what: &str| {
        let path = tmp.path(&format!("{what}-{isa}.csv"));
        let out = innfer(&[
            &"sample",
            &model,
            &"--y",
            &y,
            &"-n",
            &"37",
            &"--seed",
            &"9",
            &"--isa",
            &isa,
            &"--batch",
            &"8",
            &"--output",
            &path,
        ]);
        assert_ok(&out);
        std::fs::read(&path).unwrap()
    };
    let want = run(&gmm8(), "portable", "model");
    assert_eq!(run(&image, "portable", "image"), want);
    // A pass, with logdet, on a fixture with every coupling kind.
    let model = root().join("tests/fixtures/head_coupling_cond/model.safetensors");
    let image = tmp.path("coupling.bin");
    assert_ok(&innfer(&[
        &"pack",
        &model,
        &"--target",
        &"cortex-m4",
        &"-o",
        &image,
    ]));
    let x = tmp.path("x.csv");
    std::fs::write(
        &x,
        "0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1.0,1.1\n-1,-0.5,0,0.5,1,1.5,2,2.5,3,3.5,4\n",
    )
    .unwrap();
    let c = tmp.path("c.csv");
    let m = innfer::Model::from_file(&model).unwrap();
    let cond: Vec<String> = (0..m.cond_dim())
        .map(|i| format!("{}", i as f32 * 0.25))
        .collect();
    std::fs::write(&c, cond.join(",") + "\n").unwrap();
    for pass in ["forward", "inverse"] {
        let outputs: Vec<(Vec<u8>, Vec<u8>)> = [&model, &image]
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let (z, ld) = (
                    tmp.path(&format!("{pass}{i}.csv")),
                    tmp.path(&format!("{pass}{i}ld.csv")),
                );
                assert_ok(&innfer(&[
                    &pass,
                    m,
                    &"--input",
                    &x,
                    &"--cond",
                    &c,
                    &"--output",
                    &z,
                    &"--logdet",
                    &ld,
                    &"--isa",
                    &"portable",
                ]));
                (std::fs::read(z).unwrap(), std::fs::read(ld).unwrap())
            })
            .collect();
        assert_eq!(outputs[0], outputs[1], "{pass}");
    }
}

/// An unknown --isa, target or storage is a usage error naming the choices.
#[test]
fn unknown_names_are_refused_with_the_choices() {
    let tmp = TempDir::new("pack_names");
    let out = innfer(&[
        &"sample",
        &gmm8(),
        &"--y",
        &"0,0,0,0,0,0,0,0",
        &"-n",
        &"1",
        &"--isa",
        &"neon",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("portable"), "{}", stderr(&out));
    let bin = tmp.path("x.bin");
    let out = innfer(&[&"pack", &gmm8(), &"--target", &"cortex-m0", &"-o", &bin]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cortex-m4"), "{}", stderr(&out));
    let out = innfer(&[
        &"pack",
        &gmm8(),
        &"--target",
        &"portable",
        &"--storage",
        &"f8",
        &"-o",
        &bin,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("bf16"), "{}", stderr(&out));
}

/// A bf16 image holds bf16 weights (about half the bytes) and samples as the model loaded
/// with bf16 storage.
#[test]
fn a_bf16_image_is_the_bf16_model() {
    let tmp = TempDir::new("pack_bf16");
    let (f32_bin, bf16_bin) = (tmp.path("f32.bin"), tmp.path("bf16.bin"));
    assert_ok(&innfer(&[
        &"pack",
        &gmm8(),
        &"--target",
        &"cortex-m4",
        &"-o",
        &f32_bin,
    ]));
    assert_ok(&innfer(&[
        &"pack",
        &gmm8(),
        &"--target",
        &"cortex-m4",
        &"--storage",
        &"bf16",
        &"-o",
        &bf16_bin,
    ]));
    let (a, b) = (
        std::fs::read(&f32_bin).unwrap(),
        std::fs::read(&bf16_bin).unwrap(),
    );
    assert!(b.len() * 10 < a.len() * 6, "{} vs {}", b.len(), a.len());
    let options = innfer::LoadOptions {
        weight_storage: innfer::WeightStorage::Bf16,
        ..innfer::LoadOptions::default()
    };
    let loaded = innfer::Model::from_file_with(gmm8(), &options).unwrap();
    let image = innfer::Model::from_file(&bf16_bin).unwrap();
    assert_eq!(image.weight_storage(), innfer::WeightStorage::Bf16);
    let y = [0.5f32, -1.0, 0.25, 2.0, 0.0, 1.0, -0.5, 0.75];
    let sample = |m: &innfer::Model| {
        let mut s = innfer::Session::new(m, 4).unwrap();
        s.set_isa(innfer::Isa::Portable).unwrap();
        let mut x = vec![0.0; 2 * 9];
        s.sample(&y, 9, &mut x).unwrap();
        x.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    };
    assert_eq!(sample(&image), sample(&loaded));
}

/// `innfer info` prints what the C API asks for: innfer_session_size at the batch, and
/// innfer_model_static_size for the Cortex-M4 image (whose bytes it prints too).
#[test]
fn info_prints_the_c_apis_memory() {
    use innfer::ffi::*;
    let tmp = TempDir::new("pack_info");
    for batch in [1usize, 64] {
        let out = innfer(&[&"info", &gmm8(), &"--batch", &batch.to_string()]);
        assert_ok(&out);
        let text = stdout(&out);
        let file = std::fs::read(gmm8()).unwrap();
        let image = innfer::Model::from_bytes(&file)
            .unwrap()
            .to_image(innfer::model::ImageTarget::CortexM4)
            .unwrap();
        let (mut session, mut in_place) = (0usize, 0usize);
        // SAFETY: valid pointers and lengths; the model freed once.
        unsafe {
            let mut m = std::ptr::null_mut();
            let st =
                innfer_model_load_bytes(file.as_ptr(), file.len(), &mut m, std::ptr::null_mut(), 0);
            assert_eq!(st, INNFER_STATUS_OK);
            assert_eq!(
                innfer_session_size(m, batch, &mut session),
                INNFER_STATUS_OK
            );
            innfer_model_free(m);
            let st = innfer_model_static_size(
                image.as_ptr().cast::<c_void>(),
                image.len(),
                &mut in_place,
            );
            assert_eq!(st, INNFER_STATUS_OK);
        }
        assert_eq!(
            number_after(&text, "session memory", "memory"),
            session,
            "{text}"
        );
        assert_eq!(
            number_after(&text, "in place", "image:"),
            image.len(),
            "{text}"
        );
        assert_eq!(number_after(&text, "in place", "+"), in_place, "{text}");
        let peak = number_after(&text, "heap load", "load");
        let resident = number_after(&text, "heap load", "loading,");
        assert!(resident <= peak && resident > 4 * 78944, "{text}");
    }
    // On an image, the same lines, for the image itself.
    let bin = tmp.path("gmm8.bin");
    assert_ok(&innfer(&[
        &"pack",
        &gmm8(),
        &"--target",
        &"portable",
        &"-o",
        &bin,
    ]));
    let out = innfer(&[&"info", &bin]);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(text.contains("this portable image"), "{text}");
    let image = std::fs::read(&bin).unwrap();
    let need = innfer::ffi::model_static_bytes(&image).unwrap();
    assert_eq!(number_after(&text, "in place", "+"), need, "{text}");
}
