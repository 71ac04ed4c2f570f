//! The Python package's sampler (bindings/python/innfer, ctypes over libinnfer) from the
//! source tree, on the shared library this `cargo test` built: it must draw the Rust API's
//! samples and compute its forward passes bit for bit, from C- and Fortran-order arrays. Needs
//! python3; NumPy is set up on first use where it lacks it (tests/common/tools.rs).
//!
//! The package's own test suite (bindings/python/tests, pytest) runs on the installed wheel in
//! .ci/run: installing, the exporter, every error path, the README's Python example.

mod common;
use common::native::lib_dir;

use std::path::{Path, PathBuf};
use std::process::Command;

use innfer::{Model, Session};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn write_f32(path: &Path, values: &[f32]) {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_ne_bytes()).collect();
    std::fs::write(path, bytes).unwrap();
}

/// Draws with the package what `package_matches_the_rust_api` drew with the Rust API (the
/// cases in the same order) and compares the bits.
const PYTHON: &str = r#"
import os, sys
import numpy as np
sys.path.insert(0, os.environ["INNFER_PACKAGE_DIR"])
import innfer

out = os.environ["INNFER_RUST_OUT"]
def rust(name, shape):
    return np.fromfile(os.path.join(out, name), dtype=np.float32).reshape(shape)
def same(a, b, what):
    assert a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32)), what

cases = [("gmm8_some", np.eye(8, dtype=np.float32)[3]), ("kinematics", np.array([1.5, 0.0], np.float32))]
for name, y in cases:
    model = innfer.Model(os.path.join(os.environ["INNFER_MODELS"], name + ".safetensors"))
    for seed, stream in [(42, 0), (7, 3)]:
        x = model.session(max_batch=256, seed=seed, stream=stream).sample(y, 1000)
        same(x, rust(f"{name}_{seed}_{stream}.f32", (1000, model.x_dim)), f"{name} samples, seed {seed}, stream {stream}")
    x = rust(f"{name}_42_0.f32", (1000, model.x_dim))
    z, logdet = model.session(max_batch=64).forward(np.asfortranarray(x), cond=y)
    same(z, rust(f"{name}_forward.f32", (1000, model.dim)), f"{name} forward of Fortran-order x")
    same(logdet, rust(f"{name}_logdet.f32", (1000,)), f"{name} logdet")
try:
    innfer.Model("does_not_exist.safetensors")
except innfer.Error as e:
    assert e.status == innfer.STATUS["IO"] and "does_not_exist" in e.message, e
print("package = Rust API:", innfer.library_path())
"#;

#[test]
fn package_matches_the_rust_api() {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bindings_python");
    std::fs::create_dir_all(&out).unwrap();
    let mut y3 = [0.0f32; 8];
    y3[3] = 1.0;
    for (name, y) in [("gmm8_some", &y3[..]), ("kinematics", &[1.5f32, 0.0][..])] {
        let model =
            Model::from_file(root().join("models").join(format!("{name}.safetensors"))).unwrap();
        let (x_dim, d) = (model.layout().x_dim(), model.dim());
        let mut session = Session::new(&model, 256).unwrap();
        for (seed, stream) in [(42, 0), (7, 3)] {
            session.reseed(seed, stream);
            let mut x = vec![0.0f32; 1000 * x_dim];
            session.sample(y, 1000, &mut x).unwrap();
            write_f32(&out.join(format!("{name}_{seed}_{stream}.f32")), &x);
            if (seed, stream) == (42, 0) {
                let cond: Vec<f32> = y.iter().copied().cycle().take(1000 * y.len()).collect();
                let (mut z, mut logdet) = (vec![0.0f32; 1000 * d], vec![0.0f32; 1000]);
                let mut big = Session::new(&model, 1000).unwrap();
                big.forward(&x, Some(&cond), &mut z, Some(&mut logdet))
                    .unwrap();
                write_f32(&out.join(format!("{name}_forward.f32")), &z);
                write_f32(&out.join(format!("{name}_logdet.f32")), &logdet);
            }
        }
    }

    let run = Command::new(common::tools::python())
        .args(["-c", PYTHON])
        .env("INNFER_LIB", lib_dir().join("libinnfer.so"))
        .env("INNFER_PACKAGE_DIR", root().join("bindings/python"))
        .env("INNFER_MODELS", root().join("models"))
        .env("INNFER_RUST_OUT", &out)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "the package's samples differ from the Rust API's ({}):\n{stdout}\n{}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains("package = Rust API"));
}

/// `Session.seek` and `Session.set_threads` of the Python package keep the stream contract
/// (tests/bindings/python_streams.py): blocks of observations drawn by seeked sessions, on one
/// thread or two, are the bits of one call, which are the Rust API's.
#[test]
fn python_seek_and_threads() {
    let model_path = root().join("tests/fixtures/pypi_cinn_stats/model.safetensors");
    let model = Model::from_file(&model_path).unwrap();
    let ys = [1.5f32, -0.25, 0.0, 2.0, -1.0, 0.5, 0.75, 0.75];
    let per = 4000;
    let mut session = Session::new(&model, 256).unwrap();
    session.reseed(9, 4);
    let mut x = vec![0.0f32; 4 * per * model.layout().x_dim()];
    session.sample_batch(&ys, per, &mut x).unwrap();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bindings_python_streams");
    std::fs::create_dir_all(&dir).unwrap();
    let samples = dir.join("rust_samples.f32");
    write_f32(&samples, &x);

    let run = Command::new(common::tools::python())
        .arg(root().join("tests/bindings/python_streams.py"))
        .env("INNFER_LIB", lib_dir().join("libinnfer.so"))
        .env("INNFER_BINDINGS", root().join("bindings/python"))
        .env("INNFER_MODEL", &model_path)
        .env("INNFER_RUST_SAMPLES", &samples)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success() && stdout.contains("python streams: all checks passed"),
        "python_streams.py ({}):\n{stdout}\n{}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
}
