//! Where the test build put the native libraries, and what linking them needs: shared by the
//! tests that compile C, C++ and Fortran programs against libinnfer.

use std::path::{Path, PathBuf};

/// Where cargo put libinnfer.a and libinnfer.so for this test run: next to the test binary
/// (target/<profile>/deps, the libraries built with it), else target/<profile> (uplifted by a
/// `cargo build`).
pub fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let has = |d: &Path| {
        ["libinnfer.a", "libinnfer.so"]
            .iter()
            .all(|l| d.join(l).is_file())
    };
    let dir = if has(deps) {
        deps.to_path_buf()
    } else {
        deps.parent().unwrap().to_path_buf()
    };
    assert!(
        has(&dir),
        "libinnfer.a/libinnfer.so not found in {} or {}: cargo test should have built them \
         (crate-type staticlib and cdylib)",
        deps.display(),
        dir.display()
    );
    dir
}

/// Native libraries a Rust staticlib needs on this platform.
pub fn static_deps() -> Vec<&'static str> {
    if cfg!(target_os = "macos") {
        vec!["-lm"]
    } else {
        vec!["-lpthread", "-ldl", "-lm"]
    }
}
