//! The committed C header is exactly what cbindgen (pinned) generates from src/ffi, and it
//! compiles warning-free as C89, C99 and C++17.
//!
//! After changing the C API, rewrite the header with
//! `INNFER_BLESS=1 cargo test --test c_header`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn generate() -> Vec<u8> {
    let dir = root();
    let config =
        cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("read cbindgen.toml");
    // Parse src/ffi alone: the C boundary is that module, and public constants elsewhere in
    // the crate (the training mode's, say) are not part of the C API.
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join("src/ffi/mod.rs"))
        .generate()
        .expect("cbindgen failed");
    let mut out = Vec::new();
    bindings.write(&mut out);
    // C89 has no `//` comments, and cbindgen ends its C++ guards (cpp_compat) with them.
    String::from_utf8(out)
        .expect("cbindgen writes UTF-8")
        .replace("// __cplusplus", "/* __cplusplus */")
        .replace("// extern \"C\"", "/* extern \"C\" */")
        .into_bytes()
}

#[test]
fn header_is_up_to_date() {
    let fresh = generate();
    let path = root().join("include/innfer.h");
    if std::env::var_os("INNFER_BLESS").is_some() {
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    if committed != fresh {
        let fresh_path = std::env::temp_dir().join("innfer.h.fresh");
        std::fs::write(&fresh_path, &fresh).unwrap();
        panic!(
            "include/innfer.h is stale (fresh copy in {}); regenerate with \
             `INNFER_BLESS=1 cargo test --test c_header`",
            fresh_path.display()
        );
    }
}

fn compile(compiler: &str, args: &[&str], source: &Path, out: &Path) {
    let include = root().join("include");
    let status = Command::new(compiler)
        .args(args)
        .arg("-I")
        .arg(&include)
        .arg("-c")
        .arg(source)
        .arg("-o")
        .arg(out)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {compiler}: {e}"));
    assert!(
        status.success(),
        "{compiler} {args:?} failed on {}",
        source.display()
    );
}

#[test]
fn header_compiles_as_c89_c99_and_cpp17() {
    let dir = tempdir("c_header");
    // The header alone as C89 (the test program itself is C99).
    let c89 = dir.join("c89.c");
    std::fs::write(
        &c89,
        "#include \"innfer.h\"\nint main(void) { return 0; }\n",
    )
    .unwrap();
    compile(
        "cc",
        &["-std=c89", "-Wall", "-Wextra", "-pedantic", "-Werror"],
        &c89,
        &dir.join("c89.o"),
    );
    let c = root().join("tests/c/header_only.c");
    compile(
        "cc",
        &["-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror"],
        &c,
        &dir.join("c99.o"),
    );
    compile(
        "cc",
        &[
            "-std=c99",
            "-Wall",
            "-Wextra",
            "-pedantic",
            "-Werror",
            "-DINNFER_NO_STD",
        ],
        &c,
        &dir.join("c99_nostd.o"),
    );
    // The same file as C++ (header wrapped in extern "C").
    let cpp = dir.join("header_only.cpp");
    std::fs::copy(&c, &cpp).unwrap();
    compile(
        "c++",
        &["-std=c++17", "-Wall", "-Wextra", "-Werror"],
        &cpp,
        &dir.join("cpp17.o"),
    );
}

fn tempdir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("innfer-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
