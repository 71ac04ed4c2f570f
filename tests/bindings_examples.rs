//! The C, C++ and Fortran examples (examples/*) build against the C API (include/innfer.h),
//! link against the static and the shared library, run, and draw — with seed 0 — exactly the
//! samples the Rust API draws, bit for bit. The C++ example builds with CMake through the
//! installed package (scripts/install.sh PREFIX, `find_package(innfer)`); a test program
//! (tests/bindings/cpp_api.cpp) exercises the rest of bindings/cpp/innfer.hpp; the Fortran
//! module and example compile with `gfortran -std=f2008 -Wall -Werror`.
//!
//! The C example needs only `cc`; the C++ and Fortran ones are second-tier tests (they need
//! g++, gfortran and cmake: tests/common/tools.rs), which fail, naming the tool, where it is
//! missing. The libraries are the ones `cargo test` built next to this test binary.

mod common;
use common::native::{lib_dir, static_deps};
use common::tools::run;

use std::path::{Path, PathBuf};
use std::process::Command;

use innfer::{Model, Session};

const MAX_BATCH: usize = 256;

/// (fixture, observation as given on the command line, N)
const CASES: &[(&str, &str, usize)] = &[
    ("pypi_cinn_stats", "1.5,-0.25", 1000),
    ("pypi_toy_inn", "0.5,-1,0.25,2", 777),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn include_dir() -> PathBuf {
    let inc = root().join("include");
    assert!(
        inc.join("innfer.h").is_file(),
        "include/innfer.h is missing (cbindgen output, committed)"
    );
    inc
}

fn work_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("bindings_examples")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What the Rust API draws: `n` samples for `y` with a fresh session reseeded to (0, 0).
fn rust_samples(fixture: &str, y: &str, n: usize) -> (Vec<f32>, usize) {
    let model = Model::from_file(
        root()
            .join("tests/fixtures")
            .join(fixture)
            .join("model.safetensors"),
    )
    .unwrap();
    let y: Vec<f32> = y.split(',').map(|v| v.parse().unwrap()).collect();
    let xd = model.layout().x_dim();
    let mut session = Session::new(&model, MAX_BATCH).unwrap();
    session.reseed(0, 0);
    let mut x = vec![0.0f32; n * xd];
    session.sample(&y, n, &mut x).unwrap();
    (x, xd)
}

/// The executable needs libinnfer.so at run time iff `shared` (checked with ldd where it exists).
fn check_linkage(exe: &Path, shared: bool) {
    if !cfg!(target_os = "linux") {
        return;
    }
    let Ok(out) = Command::new("ldd").arg(exe).output() else {
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.contains("libinnfer.so"),
        shared,
        "{}: expected {} linkage of libinnfer, ldd says:\n{text}",
        exe.display(),
        if shared { "shared" } else { "static" }
    );
}

/// Runs an example on every case; checks the dump bit for bit and the printed statistics.
fn check_example(exe: &Path, what: &str) {
    for &(fixture, y, n) in CASES {
        let model = root()
            .join("tests/fixtures")
            .join(fixture)
            .join("model.safetensors");
        let dump = exe.with_extension(format!("{fixture}.f32"));
        let _ = std::fs::remove_file(&dump);
        let stdout = run(Command::new(exe)
            .arg(&model)
            .arg(y)
            .arg(n.to_string())
            .env("INNFER_EXAMPLE_DUMP", &dump));
        let (want, xd) = rust_samples(fixture, y, n);
        let bytes = std::fs::read(&dump)
            .unwrap_or_else(|e| panic!("{what} {fixture}: no dump {}: {e}", dump.display()));
        let got: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|c| f32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(got.len(), want.len(), "{what} {fixture}: sample count");
        let diff = got
            .iter()
            .zip(&want)
            .position(|(g, w)| g.to_bits() != w.to_bits());
        assert!(
            diff.is_none(),
            "{what} {fixture}: sample element {} is {} but the Rust API draws {}",
            diff.unwrap(),
            got[diff.unwrap()],
            want[diff.unwrap()]
        );
        // The printed means and standard deviations (6 decimals) are those of the samples.
        let rows: Vec<Vec<f64>> = stdout
            .lines()
            .filter_map(|l| {
                let f: Vec<f64> = l
                    .split_whitespace()
                    .map(|t| t.parse::<f64>())
                    .collect::<Result<_, _>>()
                    .ok()?;
                (f.len() == 3).then_some(f)
            })
            .collect();
        assert_eq!(
            rows.len(),
            xd,
            "{what} {fixture}: one line per parameter in\n{stdout}"
        );
        for (j, row) in rows.iter().enumerate() {
            let col: Vec<f64> = (0..n).map(|i| want[i * xd + j] as f64).collect();
            let mean = col.iter().sum::<f64>() / n as f64;
            let sd = (col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
            assert_eq!(row[0] as usize, j, "{what} {fixture}: parameter index");
            assert!(
                (row[1] - mean).abs() <= 2e-6 && (row[2] - sd).abs() <= 2e-6,
                "{what} {fixture}: parameter {j} printed mean {} std {}, samples have {mean} {sd}",
                row[1],
                row[2]
            );
        }
    }
}

#[test]
fn c_example_static_and_shared() {
    common::tools::need("cc");
    let (libs, inc) = (lib_dir(), include_dir());
    let dir = work_dir("c");
    let src = root().join("examples/c/sample.c");
    let flags = [
        "-std=c99",
        "-O2",
        "-Wall",
        "-Wextra",
        "-pedantic",
        "-Werror",
    ];

    let exe = dir.join("sample_static");
    run(Command::new("cc")
        .args(flags)
        .arg("-I")
        .arg(&inc)
        .arg(&src)
        .arg(libs.join("libinnfer.a"))
        .args(static_deps())
        .arg("-o")
        .arg(&exe));
    check_linkage(&exe, false);
    check_example(&exe, "C (static)");

    let exe = dir.join("sample_shared");
    run(Command::new("cc")
        .args(flags)
        .arg("-I")
        .arg(&inc)
        .arg(&src)
        .arg("-L")
        .arg(&libs)
        .arg("-linnfer")
        .arg(format!("-Wl,-rpath,{}", libs.display()))
        .arg("-lm")
        .arg("-o")
        .arg(&exe));
    check_linkage(&exe, true);
    check_example(&exe, "C (shared)");

    // Bad arguments: usage errors, not crashes.
    let model = root().join("tests/fixtures/pypi_cinn_stats/model.safetensors");
    for args in [vec![], vec!["1,2,3"], vec!["x,y"]] {
        let st = Command::new(&exe)
            .arg(&model)
            .args(&args)
            .output()
            .unwrap()
            .status;
        assert_eq!(st.code(), Some(2), "C example with {args:?}");
    }
    let st = Command::new(&exe)
        .arg(dir.join("missing.safetensors"))
        .arg("1,2")
        .output()
        .unwrap();
    assert_eq!(st.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&st.stderr).contains("cannot load"));
}

/// An install prefix made by scripts/install.sh PREFIX, with this test run's libraries: the
/// script's own `cargo build --release` would wait for the build-directory lock this `cargo
/// test` holds (and rebuild everything in release), so it gets `CARGO=true` and a target
/// directory whose `release/` holds the libraries cargo built for this test.
fn install_prefix(dir: &Path) -> PathBuf {
    let prefix = dir.join("prefix");
    let script = root().join("scripts/install.sh");
    assert!(script.is_file(), "scripts/install.sh is missing");
    let fake_target = dir.join("target");
    std::fs::create_dir_all(fake_target.join("release")).unwrap();
    for lib in ["libinnfer.a", "libinnfer.so"] {
        std::fs::copy(lib_dir().join(lib), fake_target.join("release").join(lib)).unwrap();
    }
    run(Command::new("sh")
        .arg(&script)
        .arg(&prefix)
        .env("CARGO", "true")
        .env("CARGO_TARGET_DIR", &fake_target)
        .env_remove("DESTDIR")
        .current_dir(root()));
    let config = prefix.join("lib/cmake/innfer/innferConfig.cmake");
    assert!(
        config.is_file(),
        "install.sh did not install {}",
        config.display()
    );
    assert!(prefix.join("include/innfer.h").is_file());
    prefix
}

#[test]
#[ignore = "second tier: needs g++ and cmake"]
fn cpp_example_cmake_static_and_shared() {
    common::tools::need("c++");
    common::tools::need("cmake");
    let dir = work_dir("cpp");
    let prefix = install_prefix(&dir);
    for (kind, static_) in [("static", "ON"), ("shared", "OFF")] {
        let build = dir.join(format!("build-{kind}"));
        run(Command::new("cmake")
            .arg("-S")
            .arg(root().join("examples/cpp"))
            .arg("-B")
            .arg(&build)
            .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix.display()))
            .arg(format!("-DINNFER_STATIC={static_}"))
            .arg("-DCMAKE_BUILD_TYPE=Release")
            .arg("-DCMAKE_CXX_FLAGS=-Wall -Wextra -pedantic -Werror"));
        run(Command::new("cmake").arg("--build").arg(&build));
        let exe = build.join("sample");
        check_linkage(&exe, kind == "shared");
        check_example(&exe, &format!("C++ ({kind}, CMake)"));
    }
}

#[test]
#[ignore = "second tier: needs g++"]
fn cpp_header_api() {
    common::tools::need("c++");
    let (libs, inc) = (lib_dir(), include_dir());
    let dir = work_dir("cpp_api");
    let exe = dir.join("cpp_api");
    run(Command::new("c++")
        .args([
            "-std=c++17",
            "-O1",
            "-Wall",
            "-Wextra",
            "-pedantic",
            "-Werror",
        ])
        .arg("-I")
        .arg(&inc)
        .arg("-I")
        .arg(root().join("bindings/cpp"))
        .arg(root().join("tests/bindings/cpp_api.cpp"))
        .arg(libs.join("libinnfer.a"))
        .args(static_deps())
        .arg("-o")
        .arg(&exe));
    let out = run(Command::new(&exe).arg(root().join("tests/fixtures")));
    assert!(out.contains("cpp_api: all checks passed"), "{out}");
}

fn fortran_build(dir: &Path, exe: &Path, link: &[String]) {
    let modules = dir.join("mod");
    std::fs::create_dir_all(&modules).unwrap();
    let strict = ["-std=f2008", "-Wall", "-Wextra", "-Werror", "-O2"];
    let obj = dir.join("innfer.o");
    run(Command::new("gfortran")
        .args(strict)
        .arg("-J")
        .arg(&modules)
        .arg("-c")
        .arg(root().join("bindings/fortran/innfer.f90"))
        .arg("-o")
        .arg(&obj));
    run(Command::new("gfortran")
        .args(strict)
        .arg("-I")
        .arg(&modules)
        .arg(root().join("examples/fortran/sample.f90"))
        .arg(&obj)
        .args(link)
        .arg("-o")
        .arg(exe));
}

#[test]
#[ignore = "second tier: needs gfortran"]
fn fortran_example_static_and_shared() {
    common::tools::need("gfortran");
    let libs = lib_dir();
    let dir = work_dir("fortran");

    let exe = dir.join("sample_static");
    let mut link = vec![libs.join("libinnfer.a").display().to_string()];
    link.extend(static_deps().iter().map(|s| s.to_string()));
    fortran_build(&dir, &exe, &link);
    check_linkage(&exe, false);
    check_example(&exe, "Fortran (static)");

    let exe = dir.join("sample_shared");
    let link = vec![
        format!("-L{}", libs.display()),
        "-linnfer".to_string(),
        format!("-Wl,-rpath,{}", libs.display()),
    ];
    fortran_build(&dir, &exe, &link);
    check_linkage(&exe, true);
    check_example(&exe, "Fortran (shared)");
}

#[test]
#[ignore = "second tier: needs gfortran"]
fn fortran_module_is_strict_f2008() {
    common::tools::need("gfortran");
    let dir = work_dir("fortran_strict");
    // -fsyntax-only would skip some checks; compile for real, also with -pedantic and the
    // run-time checks on, and once as Fortran 2018.
    for std in ["-std=f2008", "-std=f2018"] {
        run(Command::new("gfortran")
            .args([
                std,
                "-Wall",
                "-Wextra",
                "-Werror",
                "-pedantic",
                "-fcheck=all",
            ])
            .arg("-J")
            .arg(&dir)
            .arg("-c")
            .arg(root().join("bindings/fortran/innfer.f90"))
            .arg("-o")
            .arg(dir.join("innfer.o")));
        run(Command::new("gfortran")
            .args([
                std,
                "-Wall",
                "-Wextra",
                "-Werror",
                "-pedantic",
                "-fcheck=all",
            ])
            .arg("-I")
            .arg(&dir)
            .arg("-c")
            .arg(root().join("examples/fortran/sample.f90"))
            .arg("-o")
            .arg(dir.join("sample.o")));
    }
}

#[test]
#[ignore = "second tier: needs gfortran"]
fn fortran_module_api() {
    common::tools::need("gfortran");
    let libs = lib_dir();
    let dir = work_dir("fortran_api");
    let exe = dir.join("fortran_api");
    let strict = ["-std=f2008", "-Wall", "-Wextra", "-Werror", "-fcheck=all"];
    run(Command::new("gfortran")
        .args(strict)
        .arg("-J")
        .arg(&dir)
        .arg("-c")
        .arg(root().join("bindings/fortran/innfer.f90"))
        .arg("-o")
        .arg(dir.join("innfer.o")));
    run(Command::new("gfortran")
        .args(strict)
        .arg("-I")
        .arg(&dir)
        .arg(root().join("tests/bindings/fortran_api.f90"))
        .arg(dir.join("innfer.o"))
        .arg(libs.join("libinnfer.a"))
        .args(static_deps())
        .arg("-o")
        .arg(&exe));
    let out = run(Command::new(&exe).arg(root().join("tests/fixtures")));
    assert!(out.contains("fortran_api: all checks passed"), "{out}");
}
