//! The Python binding (bindings/python/innfer.py, ctypes over libinnfer.so): runs
//! bindings/python/test_innfer.py against the shared library this `cargo test` built, and has it
//! compare its samples with the Rust API's bit for bit. Needs python3 with numpy (.ci/run
//! installs numpy); no torch.

use std::path::{Path, PathBuf};
use std::process::Command;

use innfer::{Model, Session};

#[test]
fn python_binding() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let exe = std::env::current_exe().unwrap();
    // Next to the test binary (target/<profile>/deps), else uplifted into target/<profile>.
    let deps = exe.parent().unwrap();
    let lib = [deps, deps.parent().unwrap()]
        .iter()
        .map(|d| d.join("libinnfer.so"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| deps.join("libinnfer.so"));
    assert!(
        lib.is_file(),
        "{} not found: cargo test should have built it (crate-type cdylib)",
        lib.display()
    );
    let numpy = Command::new("python3")
        .args(["-c", "import numpy"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        numpy,
        "python3 with numpy is needed for the Python binding test (pip install numpy; .ci/run does)"
    );

    // The Rust API's samples for what test_innfer.py draws: pypi_cinn_stats, y = (1.5, -0.25),
    // 1000 samples, max_batch 256, seed (0, 0).
    let model =
        Model::from_file(root.join("tests/fixtures/pypi_cinn_stats/model.safetensors")).unwrap();
    let mut session = Session::new(&model, 256).unwrap();
    session.reseed(0, 0);
    let mut x = vec![0.0f32; 1000 * model.layout().x_dim()];
    session.sample(&[1.5, -0.25], 1000, &mut x).unwrap();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bindings_python");
    std::fs::create_dir_all(&dir).unwrap();
    let samples = dir.join("rust_samples_cinn.f32");
    let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_ne_bytes()).collect();
    std::fs::write(&samples, bytes).unwrap();

    let out = Command::new("python3")
        .arg(root.join("bindings/python/test_innfer.py"))
        .env("INNFER_LIB", &lib)
        .env("INNFER_RUST_SAMPLES", &samples)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "test_innfer.py failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    assert!(stdout.contains("compared with the Rust API's samples"));
    assert!(stdout.contains("all Python binding checks passed"));
}
