//! The outside programs the tests run, found or set up in one place.
//!
//! The first tier of the suite (`cargo test --workspace --release`, the README's test command)
//! needs only what a machine with the Rust toolchain has (`cc`, which rustc links with) and
//! `python3`: NumPy, when python3 lacks it, is installed on first use into a project-local
//! virtual environment under `target/`. Tests that need gfortran, a C++ compiler, CMake or
//! valgrind are the second tier: `#[ignore]`d with the tools named, and run by
//! `cargo test --workspace --release -- --ignored` (README.md, "Tests"), where a missing tool
//! fails the test instead of skipping it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Whether `tool --version` runs.
fn runs(tool: &Path) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Fails with the tool and how to install it, if `tool` is not installed.
pub fn need(tool: &str) {
    assert!(
        runs(Path::new(tool)),
        "`{tool}` is not installed. The second tier of the tests needs gfortran, g++, cmake, \
         pkg-config and valgrind (Debian/Ubuntu: apt-get install -y gfortran g++ cmake \
         pkg-config valgrind; .ci/run does this)"
    );
}

fn imports_numpy(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", "import numpy"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// A Python interpreter that imports NumPy: `$INNFER_PYTHON` if set, else `python3` if it has
/// NumPy, else a virtual environment in `target/test-python` made on first use (`python3 -m
/// venv`, then `pip install numpy`). Test binaries run in parallel, so the environment is built
/// in a scratch directory and renamed into place: whoever renames first wins, the others use it.
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            if let Some(p) = std::env::var_os("INNFER_PYTHON") {
                let p = PathBuf::from(p);
                assert!(
                    imports_numpy(&p),
                    "INNFER_PYTHON={} cannot import numpy",
                    p.display()
                );
                return p;
            }
            if imports_numpy(Path::new("python3")) {
                return PathBuf::from("python3");
            }
            let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
            let venv = target.join("test-python");
            let python = venv.join("bin/python");
            if imports_numpy(&python) {
                return python;
            }
            let scratch = target.join(format!("test-python.{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&scratch);
            let step = |cmd: &mut Command, what: &str| {
                let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
                assert!(
                    out.status.success(),
                    "{what} failed (the Python tests need python3 with the venv module and \
                     access to PyPI, or INNFER_PYTHON naming a python with numpy):\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            };
            step(
                Command::new("python3").args(["-m", "venv"]).arg(&scratch),
                "python3 -m venv target/test-python",
            );
            step(
                Command::new(scratch.join("bin/python"))
                    .args(["-m", "pip", "install", "--quiet", "numpy"]),
                "pip install numpy into target/test-python",
            );
            // A venv's scripts name its directory, so it is renamed before anything runs from
            // it again; the interpreter itself finds its packages relative to where it lies.
            if std::fs::rename(&scratch, &venv).is_err() {
                let _ = std::fs::remove_dir_all(&scratch);
            }
            assert!(
                imports_numpy(&python),
                "{} cannot import numpy",
                python.display()
            );
            python
        })
        .clone()
}

/// Runs `cmd`; fails the test with its output unless it succeeds. Returns its stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
