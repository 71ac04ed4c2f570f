//! Where the test build put the native libraries, and what linking them needs: shared by the
//! tests that compile C, C++ and Fortran programs against libinnfer.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The directory holding a freshly built release libinnfer.a and libinnfer.so: the C library
/// package (capi/), built once per test binary by a nested `cargo build --release -p
/// innfer-capi` into target/capi. The innfer package's own tests build no C library, and the
/// outer `cargo test` holds the lock of its target directory, hence a directory of its own.
pub fn lib_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let target = root.join("target/capi");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--release", "-p", "innfer-capi", "--manifest-path"])
            .arg(root.join("Cargo.toml"))
            .env("CARGO_TARGET_DIR", &target);
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        assert!(
            out.status.success(),
            "{cmd:?} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let dir = target.join("release");
        for lib in ["libinnfer.a", "libinnfer.so"] {
            assert!(dir.join(lib).is_file(), "{cmd:?} built no {lib}");
        }
        dir
    })
    .clone()
}

/// Native libraries a Rust staticlib needs on this platform.
pub fn static_deps() -> Vec<&'static str> {
    if cfg!(target_os = "macos") {
        vec!["-lm"]
    } else {
        vec!["-lpthread", "-ldl", "-lm"]
    }
}
