//! The C API from C: builds the release static and shared libraries, compiles the programs in
//! tests/c against include/innfer.h, links them both ways, runs them and checks
//!
//! 1. samples, forward and inverse from C equal the Rust API's bit for bit (static and shared
//!    link, heap and static sessions, models loaded from a file and from bytes);
//! 2. misuse gets the documented status, never a crash (tests/c/misuse.c); non-finite inputs
//!    and overflows follow the header's NON-FINITE VALUES in every call (tests/c/non_finite.c);
//!    the parameter count and standardisation a model reports are the Rust API's and the
//!    file's (tests/c/model_info.c);
//! 3. one model shared by 4 pthreads, each with its own session, gives exactly the samples of
//!    4 serial runs (and of the Rust API);
//! 4. nothing allocates after session creation (tests/c/noalloc.c interposes the C allocator);
//!    a session seeked to an observation's first row, on one thread or two, draws the samples
//!    one call draws for it (tests/c/streams.c), and summarizes them as one call does
//!    (tests/c/summary.c), with the Rust API's summaries;
//! 5. the programs run clean under valgrind;
//! 6. scripts/install.sh installs a prefix that pkg-config, the compiler and CMake can use.
//!
//! 5 and 6 are second-tier tests (valgrind, pkg-config and cmake are not on every machine with
//! a Rust toolchain: tests/common/tools.rs).
//!
//! The library is built with `CARGO_TARGET_DIR=target/capi`, so this test never waits for the
//! lock of the `cargo test` that runs it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use innfer::{Layout, MatMut, MatRef, Model, Session};

/// System libraries a static link of libinnfer.a needs on Linux/glibc (what
/// `cargo rustc --crate-type staticlib -- --print native-static-libs` reports).
const NATIVE_STATIC_LIBS: &[&str] = &[
    "-lgcc_s",
    "-lutil",
    "-lrt",
    "-lpthread",
    "-lm",
    "-ldl",
    "-lc",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn target_dir() -> PathBuf {
    root().join("target/capi")
}

fn fixture(name: &str) -> PathBuf {
    root()
        .join("tests/fixtures")
        .join(name)
        .join("model.safetensors")
}

fn work_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = target_dir().join("work");
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

fn run_ok(cmd: &mut Command) -> Output {
    // `cargo test` puts target/<profile> on LD_LIBRARY_PATH, which outranks the programs'
    // RUNPATH: a stale libinnfer.so there (from an earlier `cargo build`) would be loaded
    // instead of the one this test built.
    let out = cmd
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({})\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The directory holding the freshly built release libinnfer.a and libinnfer.so.
fn libdir() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(common::native::lib_dir)
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Link {
    Static,
    Shared,
}

/// Compiles tests/c/`name`.c into an executable linked against libinnfer.
fn compile(name: &str, link: Link) -> PathBuf {
    let lib = libdir();
    let exe = work_dir().join(format!("{name}-{link:?}").to_lowercase());
    let mut cmd = Command::new("cc");
    cmd.args([
        "-std=c11",
        "-D_GNU_SOURCE",
        "-Wall",
        "-Wextra",
        "-pedantic",
        "-Werror",
    ])
    .args(["-O1", "-g", "-pthread", "-rdynamic"])
    .arg("-I")
    .arg(root().join("include"))
    .arg("-I")
    .arg(root().join("tests/c"))
    .arg(root().join(format!("tests/c/{name}.c")))
    .arg("-o")
    .arg(&exe);
    match link {
        Link::Static => {
            cmd.arg(lib.join("libinnfer.a")).args(NATIVE_STATIC_LIBS);
        }
        Link::Shared => {
            cmd.arg("-L")
                .arg(lib)
                .arg("-linnfer")
                .arg(format!("-Wl,-rpath,{}", lib.display()));
        }
    }
    run_ok(&mut cmd);
    exe
}

fn read_f32(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(bytes.len() % 4, 0);
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_ne_bytes(b.try_into().unwrap()))
        .collect()
}

fn assert_bits_eq(c: &[f32], rust: &[f32], what: &str) {
    assert_eq!(c.len(), rust.len(), "{what}: length");
    for (i, (a, b)) in c.iter().zip(rust).enumerate() {
        assert_eq!(
            a.to_bits(),
            b.to_bits(),
            "{what}: element {i}: C {a} vs Rust {b}"
        );
    }
}

// The inputs tests/c/common.h computes.
fn obs_value(obs: usize, j: usize) -> f32 {
    if obs == 0 {
        0.25 * j as f32 - 0.5
    } else {
        0.5 - 0.125 * j as f32
    }
}
fn x_value(i: usize) -> f32 {
    (i % 7) as f32 * 0.3 - 0.9
}
fn cond_value(i: usize) -> f32 {
    (i % 5) as f32 * 0.2 - 0.4
}

/// What tests/c/sample.c writes, computed with the Rust API.
fn expected_sample_run(model: &Model, seed: u64, stream: u64, n: usize) -> Vec<f32> {
    const ROWS: usize = 4;
    let mut s = Session::new(model, 4).unwrap();
    s.reseed(seed, stream);
    let layout = model.layout();
    let (d, cd, xd, yd) = (
        model.dim(),
        model.cond_dim(),
        layout.x_dim(),
        layout.y_dim(),
    );
    let y0: Vec<f32> = (0..yd).map(|j| obs_value(0, j)).collect();
    let y1: Vec<f32> = (0..yd).map(|j| obs_value(1, j)).collect();
    let mut all = Vec::new();
    if layout != Layout::None {
        let mut x = vec![0.0; n * xd];
        s.sample(&y0, n, &mut x).unwrap();
        all.extend(&x);
        let ys = [y0.clone(), y1].concat();
        let mut x = vec![0.0; 6 * xd];
        s.sample_batch(&ys, 3, &mut x).unwrap();
        all.extend(&x);
        let mut x = vec![0.0; 6 * xd];
        let ym = MatRef::strided("y", &y0, 2, yd, 0, 1).unwrap();
        let xm = MatMut::strided("x", &mut x, 6, xd, 1, 6).unwrap();
        s.sample_strided(ym, 3, xm).unwrap();
        all.extend(&x);
    }
    let xin: Vec<f32> = (0..ROWS * d).map(x_value).collect();
    let cond: Vec<f32> = (0..ROWS * cd).map(cond_value).collect();
    let c = (cd > 0).then_some(&cond[..]);
    let (mut fo, mut fl) = (vec![0.0; ROWS * d], vec![0.0; ROWS]);
    s.forward(&xin, c, &mut fo, Some(&mut fl)).unwrap();
    let (mut io, mut il) = (vec![0.0; ROWS * d], vec![0.0; ROWS]);
    s.inverse(&fo, c, &mut io, Some(&mut il)).unwrap();
    for v in [fo, fl, io, il] {
        all.extend(v);
    }
    all
}

const SAMPLE_FIXTURES: &[&str] = &[
    "pypi_cinn_stats",
    "head_cinn_stats",
    "pypi_toy_inn",
    "head_toy_inn",
    "pypi_glow_permute_cond",
    "pypi_rnvp_tanh",
    "head_coupling_cond",
];

#[test]
fn samples_match_the_rust_api_bit_for_bit() {
    for link in [Link::Static, Link::Shared] {
        let exe = compile("sample", link);
        for (k, name) in SAMPLE_FIXTURES.iter().enumerate() {
            let path = fixture(name);
            let model = Model::from_file(&path).unwrap();
            for (session, load) in [("heap", "file"), ("static", "bytes")] {
                let (seed, stream, n) = (1000 + k as u64, 3 * k as u64, 11);
                let out = work_dir().join(format!("sample-{link:?}-{name}-{session}.f32"));
                run_ok(Command::new(&exe).arg(&path).arg(&out).args([
                    seed.to_string(),
                    stream.to_string(),
                    n.to_string(),
                    session.into(),
                    load.into(),
                ]));
                assert_bits_eq(
                    &read_f32(&out),
                    &expected_sample_run(&model, seed, stream, n),
                    &format!("{name} ({link:?} link, {session} session, {load})"),
                );
            }
        }
    }
}

fn misuse_args() -> Vec<PathBuf> {
    let good = fixture("pypi_cinn_stats");
    let bytes = std::fs::read(&good).unwrap();
    let truncated = work_dir().join("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    vec![
        good,
        fixture("pypi_rnvp_tanh"),
        truncated,
        work_dir().join("no-such-model.safetensors"),
    ]
}

#[test]
fn misuse_gets_the_documented_status() {
    let args = misuse_args();
    for link in [Link::Static, Link::Shared] {
        let out = run_ok(Command::new(compile("misuse", link)).args(&args));
        assert!(String::from_utf8_lossy(&out.stdout).contains("misuse: ok"));
    }
}

#[test]
fn non_finite_values_follow_the_documented_policy_in_every_call() {
    let arm = root().join("models/kinematics.safetensors");
    for link in [Link::Static, Link::Shared] {
        let out = run_ok(Command::new(compile("non_finite", link)).arg(&arm));
        assert!(String::from_utf8_lossy(&out.stdout).contains("non_finite: ok"));
    }
}

/// The numbers of `innfer.{which}_mean` and `innfer.{which}_std` in a model file, if present.
fn file_standardization(path: &Path, which: &str) -> Option<(Vec<f32>, Vec<f32>)> {
    let bytes = std::fs::read(path).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let metadata = header.metadata().as_ref().unwrap();
    let list = |key: String| -> Option<Vec<f32>> {
        let value = metadata.get(&key)?;
        Some(
            value
                .split(',')
                .map(|v| v.trim().parse().unwrap())
                .collect(),
        )
    };
    Some((
        list(format!("innfer.{which}_mean"))?,
        list(format!("innfer.{which}_std"))?,
    ))
}

#[test]
fn parameter_count_and_standardization_are_those_of_the_model() {
    let exe = compile("model_info", Link::Static);
    let mut standardized = 0;
    for name in ["pypi_cinn_stats", "pypi_toy_inn", "pypi_cinn_bounded_clr"] {
        let path = fixture(name);
        let model = Model::from_file(&path).unwrap();
        let out = run_ok(Command::new(&exe).arg(&path));
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            format!("parameters {}", model.parameter_count()),
            "{name}"
        );
        let layout = model.layout();
        for (line, which, width) in [
            (lines[1], "x", layout.x_dim()),
            (lines[2], "y", layout.y_dim()),
        ] {
            let words: Vec<&str> = line.split(' ').collect();
            assert_eq!(words[0], which);
            let values: Vec<f32> = words[2..].iter().map(|v| v.parse().unwrap()).collect();
            let (mean, std) = values.split_at(width);
            match file_standardization(&path, which) {
                Some((want_mean, want_std)) => {
                    assert_eq!(words[1], "1", "{name} {which}");
                    assert_eq!(
                        (mean, std),
                        (&want_mean[..], &want_std[..]),
                        "{name} {which}"
                    );
                    standardized += 1;
                }
                None => {
                    assert_eq!(words[1], "0", "{name} {which}");
                    assert!(mean.iter().all(|&m| m == 0.0) && std.iter().all(|&s| s == 1.0));
                }
            }
        }
    }
    assert!(standardized >= 2, "the fixtures standardise something");
}

fn thread_observation(t: usize, yd: usize) -> Vec<f32> {
    (0..yd)
        .map(|j| obs_value(t % 2, j) + 0.5 * t as f32)
        .collect()
}

#[test]
fn threads_sharing_a_model_match_serial_runs() {
    let n = 37;
    for (link, name) in [
        (Link::Static, "pypi_cinn_stats"),
        (Link::Shared, "pypi_toy_inn"),
    ] {
        let path = fixture(name);
        let out = work_dir().join(format!("threads-{link:?}-{name}.f32"));
        run_ok(
            Command::new(compile("threads", link))
                .arg(&path)
                .arg(&out)
                .arg(n.to_string()),
        );
        let model = Model::from_file(&path).unwrap();
        let (xd, yd) = (model.layout().x_dim(), model.layout().y_dim());
        let mut want = Vec::new();
        for t in 0..4 {
            let mut s = Session::new(&model, 3).unwrap();
            s.reseed(7, t as u64);
            let mut x = vec![0.0; n * xd];
            s.sample(&thread_observation(t, yd), n, &mut x).unwrap();
            want.extend(x);
        }
        assert_bits_eq(&read_f32(&out), &want, &format!("threads, {name}"));
    }
}

/// The fixtures tests/c/streams.c and tests/c/summary.c run on, and how each is linked.
const OBSERVATION_RUNS: [(Link, &str); 2] = [
    (Link::Static, "pypi_cinn_stats"),
    (Link::Shared, "pypi_toy_inn"),
];

/// Runs tests/c/`program`.c as `program MODEL OUT SEED STREAM M N MAX_BATCH` on fixture
/// `fixture`, checks that it says `program: ok` (its own checks passed) and returns the floats
/// it wrote to OUT.
fn run_observations_program(
    program: &str,
    link: Link,
    fixture_name: &str,
    args: [usize; 5],
) -> Vec<f32> {
    let out = work_dir().join(format!("{program}-{link:?}-{fixture_name}.f32"));
    let stdout = run_ok(
        Command::new(compile(program, link))
            .arg(fixture(fixture_name))
            .arg(&out)
            .args(args.map(|v| v.to_string())),
    )
    .stdout;
    assert!(String::from_utf8_lossy(&stdout).contains(&format!("{program}: ok")));
    read_f32(&out)
}

/// Observation `j` of tests/c/streams.c and tests/c/summary.c.
fn stream_observation(j: usize, yd: usize) -> Vec<f32> {
    (0..yd)
        .map(|i| obs_value(j % 2, i) + 0.25 * j as f32)
        .collect()
}

#[test]
fn seeked_and_threaded_sessions_draw_the_samples_of_one_call() {
    for (link, name) in OBSERVATION_RUNS {
        let model = Model::from_file(fixture(name)).unwrap();
        let (xd, yd) = (model.layout().x_dim(), model.layout().y_dim());
        // Blocks of two or more observations make calls long enough for two threads.
        let max_batch = Session::min_threaded_rows(&model) + 5;
        let (m, n, seed, stream) = (7, max_batch / 2 + 1, 40_000, 2);
        let got = run_observations_program("streams", link, name, [seed, stream, m, n, max_batch]);
        let ys: Vec<f32> = (0..m).flat_map(|j| stream_observation(j, yd)).collect();
        let mut s = Session::new(&model, 64).unwrap();
        s.reseed(seed as u64, stream as u64);
        let mut want = vec![0.0; m * n * xd];
        s.sample_batch(&ys, n, &mut want).unwrap();
        assert_bits_eq(&got, &want, &format!("streams, {name}"));
    }
}

/// tests/c/summary.c: `innfer_session_summarize` from C gives the Rust API's summaries bit
/// for bit, and (checked in C) the same numbers from seeked blocks on heap and static sessions
/// with one thread or two, and from a session too small to hold `n` samples.
#[test]
fn summaries_match_the_rust_api_bit_for_bit() {
    const QUANTILES: [f32; 5] = [0.0, 0.1, 0.5, 0.9, 1.0];
    for (link, name) in OBSERVATION_RUNS {
        let model = Model::from_file(fixture(name)).unwrap();
        let (xd, yd) = (model.layout().x_dim(), model.layout().y_dim());
        // Enough observations for chain calls of whole observations on two threads.
        let n = 40;
        let threaded = Session::min_threaded_rows(&model).div_ceil(n);
        let (m, max_batch, seed, stream) = (threaded + 3, (threaded + 1) * n, 12, 5);
        let got = run_observations_program("summary", link, name, [seed, stream, m, n, max_batch]);
        let mut ys: Vec<f32> = (0..m).flat_map(|j| stream_observation(j, yd)).collect();
        ys[2 * yd] = f32::NAN;
        let mut s = Session::new(&model, 64).unwrap();
        s.reseed(seed as u64, stream as u64);
        let (mut mean, mut std) = (vec![0.0; m * xd], vec![0.0; m * xd]);
        let mut values = vec![0.0; m * QUANTILES.len() * xd];
        let buffers = innfer::SummaryBuffers {
            mean: &mut mean,
            std: &mut std,
            quantile_values: &mut values,
        };
        let report = s.summarize(&ys, n, &QUANTILES, buffers).unwrap();
        assert_eq!(report.invalid_rows, 1);
        let want = [mean, std, values].concat();
        assert_bits_eq(&got, &want, &format!("summary, {name}"));
    }
}

#[test]
fn nothing_allocates_after_session_creation() {
    let models = [
        fixture("pypi_cinn_stats"),
        fixture("pypi_toy_inn"),
        fixture("pypi_rnvp_tanh"),
    ];
    for link in [Link::Static, Link::Shared] {
        let out = run_ok(Command::new(compile("noalloc", link)).args(&models));
        assert!(String::from_utf8_lossy(&out.stdout).contains("noalloc: ok"));
    }
}

#[test]
#[ignore = "second tier: needs valgrind"]
fn valgrind_is_clean() {
    common::tools::need("valgrind");
    let valgrind = |exe: &Path, args: &[PathBuf]| {
        let out = run_ok(
            Command::new("valgrind")
                .args(["--leak-check=full", "--error-exitcode=1", "--quiet"])
                .arg(exe)
                .args(args),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("definitely lost") && !stderr.contains("Invalid"),
            "valgrind on {}:\n{stderr}",
            exe.display()
        );
    };
    let misuse = misuse_args();
    let model = fixture("pypi_cinn_stats");
    let toy = fixture("pypi_toy_inn");
    let arm = root().join("models/kinematics.safetensors");
    for link in [Link::Static, Link::Shared] {
        valgrind(&compile("misuse", link), &misuse);
        valgrind(&compile("non_finite", link), std::slice::from_ref(&arm));
        for (session, load) in [("heap", "file"), ("static", "bytes")] {
            valgrind(
                &compile("sample", link),
                &[
                    model.clone(),
                    work_dir().join(format!("vg-{link:?}-{session}.f32")),
                    "5".into(),
                    "1".into(),
                    "9".into(),
                    session.into(),
                    load.into(),
                ],
            );
        }
        // SEED STREAM M N MAX_BATCH
        for (program, args) in [("streams", [3, 1, 5, 4, 6]), ("summary", [3, 1, 4, 6, 8])] {
            let mut all = vec![
                toy.clone(),
                work_dir().join(format!("vg-{program}-{link:?}.f32")),
            ];
            all.extend(args.map(|v: usize| PathBuf::from(v.to_string())));
            valgrind(&compile(program, link), &all);
        }
        valgrind(
            &compile("threads", link),
            &[
                toy.clone(),
                work_dir().join(format!("vg-threads-{link:?}.f32")),
                "9".into(),
            ],
        );
    }
}

#[test]
#[ignore = "second tier: needs pkg-config and cmake"]
fn install_script_gives_a_usable_prefix() {
    common::tools::need("pkg-config");
    common::tools::need("cmake");
    let prefix = work_dir().join("prefix");
    let _ = std::fs::remove_dir_all(&prefix);
    run_ok(
        Command::new("sh")
            .arg(root().join("scripts/install.sh"))
            .arg(&prefix)
            .env("CARGO_TARGET_DIR", target_dir()),
    );
    for f in [
        "include/innfer.h",
        "lib/libinnfer.a",
        "lib/libinnfer.so",
        "lib/pkgconfig/innfer.pc",
        "lib/cmake/innfer/innferConfig.cmake",
        "lib/cmake/innfer/innferConfigVersion.cmake",
    ] {
        assert!(prefix.join(f).exists(), "{f} not installed");
    }
    for (src, dst) in [
        ("bindings/cpp/innfer.hpp", "include/innfer.hpp"),
        (
            "bindings/fortran/innfer.f90",
            "share/innfer/fortran/innfer.f90",
        ),
        (
            "bindings/python/innfer/sampler.py",
            "share/innfer/python/innfer.py",
        ),
    ] {
        if root().join(src).exists() {
            assert!(prefix.join(dst).exists(), "{dst} not installed");
        }
    }
    assert_eq!(
        std::fs::read(prefix.join("include/innfer.h")).unwrap(),
        std::fs::read(root().join("include/innfer.h")).unwrap()
    );
    let pc = prefix.join("lib/pkgconfig");
    let pkg = |args: &[&str]| -> Vec<String> {
        let out = run_ok(
            Command::new("pkg-config")
                .args(args)
                .arg("innfer")
                .env("PKG_CONFIG_PATH", &pc),
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    let shared_flags = pkg(&["--cflags", "--libs"]);
    assert!(
        shared_flags.iter().any(|f| f == "-linnfer"),
        "{shared_flags:?}"
    );
    let static_flags = pkg(&["--cflags", "--libs", "--static"]);
    assert!(
        static_flags.iter().any(|f| f == "-lpthread" || f == "-lc"),
        "{static_flags:?}"
    );

    // Compile and run the sample program against the installed prefix, both ways.
    let model_path = fixture("pypi_cinn_stats");
    let model = Model::from_file(&model_path).unwrap();
    let want = expected_sample_run(&model, 11, 2, 6);
    for (tag, flags) in [("shared", &shared_flags), ("static", &static_flags)] {
        let exe = work_dir().join(format!("installed-{tag}"));
        let mut cmd = Command::new("cc");
        cmd.args(["-std=c11", "-D_GNU_SOURCE", "-Wall", "-Werror", "-I"])
            .arg(root().join("tests/c"))
            .arg(root().join("tests/c/sample.c"))
            .arg("-o")
            .arg(&exe);
        for f in flags {
            if tag == "static" && f == "-linnfer" {
                cmd.arg(prefix.join("lib/libinnfer.a"));
            } else {
                cmd.arg(f);
            }
        }
        cmd.arg(format!("-Wl,-rpath,{}", prefix.join("lib").display()));
        run_ok(&mut cmd);
        let out = work_dir().join(format!("installed-{tag}.f32"));
        run_ok(
            Command::new(&exe)
                .arg(&model_path)
                .arg(&out)
                .args(["11", "2", "6", "heap", "file"]),
        );
        assert_bits_eq(
            &read_f32(&out),
            &want,
            &format!("installed prefix, {tag} link"),
        );
    }
    cmake_finds_the_package(&prefix);
}

/// `find_package(innfer 0.1 CONFIG)` gives working `innfer::innfer` and `innfer::innfer_static`.
fn cmake_finds_the_package(prefix: &Path) {
    let dir = work_dir().join("cmake");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("CMakeLists.txt"),
        "cmake_minimum_required(VERSION 3.16)\n\
         project(innfer_consumer C)\n\
         find_package(innfer 0.1 CONFIG REQUIRED)\n\
         add_executable(app_shared main.c)\n\
         target_link_libraries(app_shared PRIVATE innfer::innfer)\n\
         add_executable(app_static main.c)\n\
         target_link_libraries(app_static PRIVATE innfer::innfer_static)\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("main.c"),
        "#include <string.h>\n#include \"innfer.h\"\n\
         int main(void) { return innfer_abi_version() == INNFER_ABI_VERSION &&\n\
         strcmp(innfer_status_string(INNFER_STATUS_OK), \"ok\") == 0 ? 0 : 1; }\n",
    )
    .unwrap();
    let build = dir.join("build");
    run_ok(
        Command::new("cmake")
            .arg("-S")
            .arg(&dir)
            .arg("-B")
            .arg(&build)
            .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix.display())),
    );
    run_ok(Command::new("cmake").arg("--build").arg(&build));
    run_ok(&mut Command::new(build.join("app_shared")));
    run_ok(&mut Command::new(build.join("app_static")));
}

/// A packed image run from C (tests/c/packed.c) as a firmware runs it, with no allocation from
/// the image to the samples, gives the samples the Rust API gives on the same image, for every
/// target.
#[test]
fn packed_images_sample_from_c_without_allocating() {
    let model = Model::from_file(fixture("pypi_cinn_stats")).unwrap();
    let n = 9;
    for target in innfer::model::ImageTarget::ALL {
        let image = model.to_image(target).unwrap();
        let path = work_dir().join(format!("packed-{}.bin", target.name()));
        std::fs::write(&path, &image).unwrap();
        let image: &'static [u8] = image.leak();
        let memory = vec![0u64; 1024].leak();
        let need = Model::image_memory_bytes(image).unwrap();
        assert!(need <= 1024 * 8 - 64);
        // A 64-byte aligned part of the memory.
        let bytes: &'static mut [u8] = bytemuck_bytes(memory);
        let skip = bytes.as_ptr().align_offset(64);
        let built = Model::from_image(image, &mut bytes[skip..]).unwrap();
        let mut s = Session::new(&built, 4).unwrap();
        s.reseed(5, 1);
        let y: Vec<f32> = (0..built.layout().y_dim())
            .map(|j| obs_value(0, j))
            .collect();
        let mut want = vec![0.0; n * built.layout().x_dim()];
        s.sample(&y, n, &mut want).unwrap();
        for link in [Link::Static, Link::Shared] {
            let out = work_dir().join(format!("packed-{}-{link:?}.f32", target.name()));
            let run = run_ok(
                Command::new(compile("packed", link))
                    .arg(&path)
                    .arg(&out)
                    .arg(n.to_string()),
            );
            assert!(String::from_utf8_lossy(&run.stdout).contains("packed: ok"));
            assert_bits_eq(&read_f32(&out), &want, &format!("{target:?} {link:?}"));
        }
    }
}

/// The bytes of leaked `u64`s.
fn bytemuck_bytes(words: &'static mut [u64]) -> &'static mut [u8] {
    // SAFETY: the words' bytes, leaked (valid forever); u8 has no alignment.
    unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast(), words.len() * 8) }
}
