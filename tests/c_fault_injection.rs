//! Allocation failure through the C API: tests/c/fault/fail_nth_alloc.c, linked against
//! libinnfer.a with the C allocator wrapped (`-Wl,--wrap=malloc,...`), refuses the n-th
//! allocation of `innfer_model_load_file`, `innfer_model_load_bytes` and
//! `innfer_session_create`, for every n. Each refusal must end in
//! `INNFER_STATUS_OUT_OF_MEMORY` with every allocation of the call freed again, never in an
//! abort. tests/alloc_failure.rs checks the same from Rust with a failing global allocator;
//! this checks the C library as C programs link it, where the allocations go to malloc.
//!
//! Linux only (GNU ld's `--wrap`). The libraries are the ones `cargo test` built next to this
//! test binary.

#![cfg(target_os = "linux")]

mod common;
use common::native::{lib_dir, static_deps};
use common::tools::run;

use std::path::{Path, PathBuf};
use std::process::Command;

const WRAPPED: &[&str] = &[
    "malloc",
    "calloc",
    "realloc",
    "posix_memalign",
    "aligned_alloc",
    "memalign",
    "free",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn build(dir: &Path) -> PathBuf {
    let exe = dir.join("fail_nth_alloc");
    let wrap: Vec<String> = WRAPPED.iter().map(|f| format!("--wrap={f}")).collect();
    run(Command::new("cc")
        .args([
            "-std=c11",
            "-D_GNU_SOURCE",
            "-Wall",
            "-Wextra",
            "-pedantic",
            "-Werror",
            "-O1",
            "-g",
        ])
        .arg("-I")
        .arg(root().join("include"))
        .arg("-I")
        .arg(root().join("tests/c"))
        .arg(root().join("tests/c/fault/fail_nth_alloc.c"))
        .arg(format!("-Wl,{}", wrap.join(",")))
        .arg(lib_dir().join("libinnfer.a"))
        .args(static_deps())
        .arg("-o")
        .arg(&exe));
    exe
}

#[test]
fn every_allocation_of_a_c_load_and_session_may_fail_without_a_leak() {
    common::tools::need("cc");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("c_fault_injection");
    std::fs::create_dir_all(&dir).unwrap();
    let exe = build(&dir);
    let built = dir.join("glow_chain.safetensors");
    std::fs::write(&built, common::glow_chain(8, 3, 256, 2, 2, 1).to_bytes()).unwrap();
    // A packed image, loaded onto the heap (docs/format.md, "Packed images").
    let image = dir.join("msi_oximetry.bin");
    let msi = root().join("models/msi_oximetry.safetensors");
    let packed = innfer::Model::from_file(&msi)
        .unwrap()
        .to_image(innfer::model::ImageTarget::Portable)
        .unwrap();
    std::fs::write(&image, packed).unwrap();
    for model in [
        root().join("tests/fixtures/pypi_cinn_stats/model.safetensors"),
        root().join("tests/fixtures/pypi_actnorm_fixedlinear/model.safetensors"),
        root().join("tests/fixtures/pypi_aio_householder/model.safetensors"),
        msi,
        built,
        image,
    ] {
        let out = run(Command::new(&exe).arg(&model).arg("64"));
        assert!(
            out.contains("fail_nth_alloc: ok"),
            "{}: {out}",
            model.display()
        );
        for call in [
            "innfer_model_load_file",
            "innfer_model_load_bytes",
            "innfer_session_create",
        ] {
            assert!(
                out.contains(&format!("{call}: ")),
                "{}: no summary for {call}:\n{out}",
                model.display()
            );
        }
        eprint!("{}:\n{out}", model.display());
    }
}
