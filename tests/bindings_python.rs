//! The Python binding (bindings/python/innfer.py, ctypes over libinnfer.so): runs
//! bindings/python/test_innfer.py against the shared library this `cargo test` built, and has it
//! compare its samples with the Rust API's bit for bit; and the parts of the FrEIA exporter
//! (bindings/python/innfer_export.py) that run without PyTorch (`exporter_metadata_without_torch`).
//! Needs python3 with numpy (.ci/run installs numpy); no torch.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use innfer::{Model, Session};

/// Runs `python` (a `python3` command with its arguments and environment) without writing
/// .pyc files; fails the test with its output unless it succeeds. Returns its stdout.
fn run_python(python: &mut Command, what: &str) -> String {
    let out = python
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Writes `x` as raw native-endian f32 (what the Python scripts compare with).
fn write_f32(path: &Path, x: &[f32]) {
    let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_ne_bytes()).collect();
    std::fs::write(path, bytes).unwrap();
}

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
    write_f32(&samples, &x);

    let stdout = run_python(
        Command::new("python3")
            .arg(root.join("bindings/python/test_innfer.py"))
            .env("INNFER_LIB", &lib)
            .env("INNFER_RUST_SAMPLES", &samples),
        "test_innfer.py",
    );
    println!("{stdout}");
    assert!(stdout.contains("compared with the Rust API's samples"));
    assert!(stdout.contains("all Python binding checks passed"));
}

/// What of the FrEIA exporter (bindings/python/innfer_export.py) runs without PyTorch: the
/// exporter imports torch at the top and walks live torch modules, so its block description
/// and its writer (safetensors.torch) need torch and are exercised only when the fixtures are
/// made (tests/fixtures/make_fixtures.py; the parity tests then load what it wrote). This test
/// gives it a stand-in `torch` module with the three names it touches at import and runs the
/// parts that are plain NumPy: the README's call signature, the layout and x/y statistics
/// metadata (compared with what it wrote into every committed fixture, and its refusals), and
/// a model whose x statistics it formatted from NumPy arrays, which the loader must apply.
const EXPORTER_WITHOUT_TORCH: &str = r#"
import glob, inspect, json, os, struct, sys, types
import numpy as np

# A stand-in for torch: the names innfer_export uses at import time, nothing else.
torch = types.ModuleType("torch")
torch.nn = types.ModuleType("torch.nn")
torch.Tensor = type("Tensor", (), {})
torch.float32 = "float32"
torch.linspace = lambda *args, **kwargs: None
torch.__version__ = "stand-in"
sys.modules["torch"], sys.modules["torch.nn"] = torch, torch.nn
sys.path.insert(0, os.environ["INNFER_BINDINGS"])
import innfer_export as ex

def read(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    return json.loads(b[8:8 + n]), b[8 + n:]

# The README's call: export_freia(inn, "model.safetensors", layout=..., x_stats=..., y_stats=...)
assert list(inspect.signature(ex.export_freia).parameters) == ["inn", "path", "layout", "x_stats", "y_stats"]

# Layout and statistics metadata: what the exporter writes now is what it wrote into every
# committed fixture (which the Rust tests load).
fixtures = sorted(glob.glob(os.path.join(os.environ["INNFER_FIXTURES"], "*", "model.safetensors")))
assert len(fixtures) >= 10, fixtures
checked = 0
for path in fixtures:
    meta = read(path)[0]["__metadata__"]
    dim, cond = int(meta["innfer.dim"]), int(meta["innfer.cond_dim"])
    layout = {"kind": meta["innfer.layout"]}
    layout.update({k[len("innfer.layout."):]: int(v) for k, v in meta.items() if k.startswith("innfer.layout.")})
    got, nx, ny = ex._layout_meta(layout, dim, cond)
    want = {k: v for k, v in meta.items() if k == "innfer.layout" or k.startswith("innfer.layout.")}
    assert got == want, (path, got, want)
    for which, n in (("x", nx), ("y", ny)):
        key = f"innfer.{which}_mean"
        if key in meta:
            mean = np.array([float(v) for v in meta[key].split(",")])
            std = np.array([float(v) for v in meta[f"innfer.{which}_std"].split(",")])
            got = ex._stats_meta((mean, std), n, which)
            assert got == {key: meta[key], f"innfer.{which}_std": meta[f"innfer.{which}_std"]}, (path, got)
            checked += 1
assert checked >= 4, checked

# Refusals name what is wrong.
def refuses(f, needle):
    try:
        f()
    except ValueError as e:
        assert needle in str(e), (str(e), needle)
    else:
        raise AssertionError(f"no ValueError ({needle})")
refuses(lambda: ex._layout_meta({"kind": "cinn", "x": 3, "y": 2}, 4, 2), "x = 3")
refuses(lambda: ex._layout_meta({"kind": "cinn", "x": 4, "y": 1}, 4, 2), "condition width is 2")
refuses(lambda: ex._layout_meta({"kind": "inn", "x": 2, "pad_x": 1, "z": 2, "pad_zy": 0, "y": 1}, 4, 0), "model width is 4")
refuses(lambda: ex._layout_meta({"kind": "flow"}, 4, 0), "unknown layout kind")
refuses(lambda: ex._stats_meta((np.zeros(4), np.ones(3)), 4, "x"), "need 4 means and stds")
refuses(lambda: ex._stats_meta((np.zeros(4), np.array([1.0, 0.0, 1.0, 1.0])), 4, "x"), "std must be > 0")
refuses(lambda: ex._stats_meta((np.zeros(2), np.ones(2)), None, "y"), "need a layout")

# x statistics from NumPy arrays (float64, as a user computes them) into a copy of the
# pypi_cinn_stats fixture; the Rust side checks that the loader applies them.
header, data = read(os.path.join(os.environ["INNFER_FIXTURES"], "pypi_cinn_stats", "model.safetensors"))
x_mean, x_std = np.array([0.5, -1.25, 3.0, 0.1]), np.array([2.0, 0.3, 1.7, 0.9])
header["__metadata__"].update(ex._stats_meta((x_mean, x_std), 4, "x"))
text = json.dumps(header, separators=(",", ":")).encode()
text += b" " * (-len(text) % 8)
with open(os.environ["INNFER_OUT"], "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text + data)
print("exporter checks without torch passed")
"#;

#[test]
fn exporter_metadata_without_torch() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bindings_python_export");
    std::fs::create_dir_all(&dir).unwrap();
    let out_model = dir.join("restated.safetensors");
    let _ = std::fs::remove_file(&out_model);
    let stdout = run_python(
        Command::new("python3")
            .args(["-c", EXPORTER_WITHOUT_TORCH])
            .env("INNFER_BINDINGS", root.join("bindings/python"))
            .env("INNFER_FIXTURES", root.join("tests/fixtures"))
            .env("INNFER_OUT", &out_model),
        "the exporter checks",
    );
    assert!(stdout.contains("exporter checks without torch passed"));

    // Same network and y statistics, other x statistics: the samples differ by exactly the
    // change of units, x' = (x − m) / s · s' + m'.
    let sample = |model: &Model| {
        let mut session = Session::new(model, 64).unwrap();
        session.reseed(3, 0);
        let mut x = vec![0.0f32; 50 * 4];
        session.sample(&[1.5, -0.25], 50, &mut x).unwrap();
        x
    };
    let old =
        Model::from_file(root.join("tests/fixtures/pypi_cinn_stats/model.safetensors")).unwrap();
    let new = Model::from_file(&out_model).unwrap();
    let fixture_stats = |key: &str| -> Vec<f32> {
        let bytes =
            std::fs::read(root.join("tests/fixtures/pypi_cinn_stats/model.safetensors")).unwrap();
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        meta.metadata().as_ref().unwrap()[key]
            .split(',')
            .map(|v| v.parse().unwrap())
            .collect()
    };
    let (m_old, s_old) = (
        fixture_stats("innfer.x_mean"),
        fixture_stats("innfer.x_std"),
    );
    let (m_new, s_new) = ([0.5f32, -1.25, 3.0, 0.1], [2.0f32, 0.3, 1.7, 0.9]);
    for (r, (a, b)) in sample(&old)
        .chunks_exact(4)
        .zip(sample(&new).chunks_exact(4))
        .enumerate()
    {
        for j in 0..4 {
            let want = (a[j] - m_old[j]) / s_old[j] * s_new[j] + m_new[j];
            assert!(
                (b[j] - want).abs() <= 1e-5 * (1.0 + want.abs()),
                "row {r}, x{j}: {} with the new statistics, {want} expected",
                b[j]
            );
        }
    }
}

/// `Session.seek` and `Session.set_threads` of the Python binding keep the stream contract
/// (tests/bindings/python_streams.py): blocks of observations drawn by seeked sessions, on one
/// thread or two, are the bits of one call, which are the Rust API's.
#[test]
fn python_seek_and_threads() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let lib = common::native::lib_dir().join("libinnfer.so");
    let model_path = root.join("tests/fixtures/pypi_cinn_stats/model.safetensors");
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

    let stdout = run_python(
        Command::new("python3")
            .arg(root.join("tests/bindings/python_streams.py"))
            .env("INNFER_LIB", &lib)
            .env("INNFER_BINDINGS", root.join("bindings/python"))
            .env("INNFER_MODEL", &model_path)
            .env("INNFER_RUST_SAMPLES", &samples),
        "python_streams.py",
    );
    assert!(stdout.contains("python streams: all checks passed"));
}
