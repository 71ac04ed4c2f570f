//! The README's code snippets, as written: the C, C++, Fortran and Python blocks of "Use it
//! from C, C++, Fortran, Python and Rust" are cut out of README.md, wrapped in the least a
//! compiler needs (a `main`, the standard headers the snippet leaves out, a dump of `x`),
//! compiled against include/innfer.h and the libraries this `cargo test` built, and run on
//! `model.safetensors` (a copy of the shipped arm model: x_dim 4, y_dim 2, as in the
//! snippets); each must draw exactly the samples the Rust API draws for the same seed, which
//! is what the README promises. The Rust block is compiled here, verbatim (`rust_snippet`
//! below), and checked to be the README's text.
//!
//! The C, Python and Rust snippets need only cc and python3 (NumPy is set up on first use);
//! the C++ and Fortran ones are second-tier tests (tests/common/tools.rs).

mod common;
use common::native::{lib_dir, static_deps};
use common::tools::run;

use std::path::{Path, PathBuf};
use std::process::Command;

use innfer::{Model, Session};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The fenced blocks of README.md with info string `lang`, in order.
fn readme_blocks(lang: &str) -> Vec<String> {
    let text = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match (&mut current, line.strip_prefix("```")) {
            (None, Some(info)) if info.trim() == lang => current = Some(String::new()),
            (Some(_), Some("")) => out.push(current.take().unwrap()),
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            _ => {}
        }
    }
    out
}

/// The one block of `lang` whose text contains `marker`.
fn readme_block(lang: &str, marker: &str) -> String {
    let blocks: Vec<String> = readme_blocks(lang)
        .into_iter()
        .filter(|b| b.contains(marker))
        .collect();
    assert_eq!(
        blocks.len(),
        1,
        "README.md: expected one ```{lang} block with {marker:?}, found {}",
        blocks.len()
    );
    blocks.into_iter().next().unwrap()
}

/// A fresh directory holding `model.safetensors`, the shipped arm model (x_dim 4, y_dim 2).
fn work_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("bindings_readme")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        root().join("models/kinematics.safetensors"),
        dir.join("model.safetensors"),
    )
    .unwrap();
    dir
}

/// What the Rust API draws for the snippets' call: 1000 samples for y = (1.5, 0) from a
/// session of max batch 256, reseeded to (seed, 0) or, for `None`, as created.
fn rust_samples(seed: Option<u64>) -> Vec<f32> {
    let model = Model::from_file(root().join("models/kinematics.safetensors")).unwrap();
    let mut session = Session::new(&model, 256).unwrap();
    if let Some(seed) = seed {
        session.reseed(seed, 0);
    }
    let mut x = vec![0.0f32; 1000 * model.layout().x_dim()];
    session.sample(&[1.5, 0.0], 1000, &mut x).unwrap();
    x
}

/// The float32 dump `x.f32` a wrapped snippet wrote equals the Rust API's samples bit for bit.
#[track_caller]
fn check_dump(dir: &Path, what: &str, seed: Option<u64>) {
    let bytes = std::fs::read(dir.join("x.f32"))
        .unwrap_or_else(|e| panic!("{what}: no dump x.f32 in {}: {e}", dir.display()));
    let got: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let want = rust_samples(seed);
    assert_eq!(got.len(), want.len(), "{what}: sample count");
    let diff = got
        .iter()
        .zip(&want)
        .position(|(g, w)| g.to_bits() != w.to_bits());
    assert!(
        diff.is_none(),
        "{what}: sample element {} is {} but the Rust API draws {}",
        diff.unwrap(),
        got[diff.unwrap()],
        want[diff.unwrap()]
    );
}

#[test]
fn readme_c_snippet() {
    common::tools::need("cc");
    let snippet = readme_block("c", "innfer_model_load_file");
    let (includes, body): (Vec<&str>, Vec<&str>) =
        snippet.lines().partition(|l| l.starts_with("#include"));
    let program = format!(
        "#include <stdio.h>\n{}\nint main(void) {{\n{}\n\
         /* added by the test: the samples, for comparison */\n\
         FILE *dump = fopen(\"x.f32\", \"wb\");\n\
         if (dump == NULL || fwrite(x, sizeof x[0], 1000 * 4, dump) != 1000 * 4) return 3;\n\
         fclose(dump);\n\
         return 0;\n}}\n",
        includes.join("\n"),
        body.join("\n")
    );
    let dir = work_dir("c");
    std::fs::write(dir.join("readme.c"), program).unwrap();
    run(Command::new("cc")
        .args(["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror"])
        .arg("-I")
        .arg(root().join("include"))
        .arg("readme.c")
        .arg(lib_dir().join("libinnfer.a"))
        .args(static_deps())
        .args(["-o", "readme"])
        .current_dir(&dir));
    run(Command::new(dir.join("readme")).current_dir(&dir));
    check_dump(&dir, "README C snippet", Some(42));
}

#[test]
#[ignore = "second tier: needs g++"]
fn readme_cpp_snippet() {
    common::tools::need("c++");
    let snippet = readme_block("cpp", "innfer::Session");
    let (includes, body): (Vec<&str>, Vec<&str>) =
        snippet.lines().partition(|l| l.starts_with("#include"));
    let program = format!(
        "#include <cstdio>\n#include <vector>\n{}\nint main() {{\n{}\n\
         // added by the test: the samples, for comparison\n\
         std::FILE *dump = std::fopen(\"x.f32\", \"wb\");\n\
         if (dump == nullptr || std::fwrite(x.data(), sizeof(float), x.size(), dump) != x.size()) return 3;\n\
         std::fclose(dump);\n\
         return 0;\n}}\n",
        includes.join("\n"),
        body.join("\n")
    );
    let dir = work_dir("cpp");
    std::fs::write(dir.join("readme.cpp"), program).unwrap();
    run(Command::new("c++")
        .args(["-std=c++17", "-O1", "-Wall", "-Wextra", "-Werror"])
        .arg("-I")
        .arg(root().join("include"))
        .arg("-I")
        .arg(root().join("bindings/cpp"))
        .arg("readme.cpp")
        .arg(lib_dir().join("libinnfer.a"))
        .args(static_deps())
        .args(["-o", "readme"])
        .current_dir(&dir));
    run(Command::new(dir.join("readme")).current_dir(&dir));
    check_dump(&dir, "README C++ snippet", Some(42));
}

#[test]
#[ignore = "second tier: needs gfortran"]
fn readme_fortran_snippet() {
    common::tools::need("gfortran");
    let snippet = readme_block("fortran", "innfer_sample_f");
    // Specification part (use, declarations), then the executable statements.
    let lines: Vec<&str> = snippet.lines().collect();
    let first_exec = lines
        .iter()
        .position(|l| l.trim_start().starts_with("call "))
        .expect("the Fortran snippet calls innfer");
    let (uses, rest): (Vec<&str>, Vec<&str>) = lines[..first_exec]
        .iter()
        .partition(|l| l.trim_start().starts_with("use "));
    let program = format!(
        "program readme\n{}\nimplicit none\n{}\ninteger :: dump\n{}\n\
         ! added by the test: stop on an error, write the samples for comparison\n\
         if (status /= INNFER_STATUS_OK) error stop 'sampling failed'\n\
         open (newunit=dump, file='x.f32', access='stream', form='unformatted', status='replace')\n\
         write (dump) x\n\
         close (dump)\n\
         end program readme\n",
        uses.join("\n"),
        rest.join("\n"),
        lines[first_exec..].join("\n")
    );
    let dir = work_dir("fortran");
    std::fs::write(dir.join("readme.f90"), program).unwrap();
    let strict = ["-std=f2008", "-Wall", "-Werror", "-O1"];
    run(Command::new("gfortran")
        .args(strict)
        .arg("-c")
        .arg(root().join("bindings/fortran/innfer.f90"))
        .args(["-o", "innfer.o"])
        .current_dir(&dir));
    run(Command::new("gfortran")
        .args(strict)
        .args(["readme.f90", "innfer.o"])
        .arg(lib_dir().join("libinnfer.a"))
        .args(static_deps())
        .args(["-o", "readme"])
        .current_dir(&dir));
    run(Command::new(dir.join("readme")).current_dir(&dir));
    // The snippet does not reseed: a fresh session's stream.
    check_dump(&dir, "README Fortran snippet", None);
}

#[test]
fn readme_python_snippet() {
    let snippet = readme_block("python", "import innfer\n");
    let program = format!(
        "import sys\nimport numpy as np\nsys.path.insert(0, {:?})\n{snippet}\n\
         # added by the test: shapes, and the samples for comparison\n\
         assert x.shape == (1000, 4) and x.dtype == np.float32, (x.shape, x.dtype)\n\
         assert z.shape == (1000, 4) and logdet.shape == (1000,), (z.shape, logdet.shape)\n\
         assert np.all(np.isfinite(z)) and np.all(np.isfinite(logdet))\n\
         x.tofile('x.f32')\n",
        root().join("bindings/python").display().to_string()
    );
    let dir = work_dir("python");
    std::fs::write(dir.join("readme.py"), program).unwrap();
    run(Command::new(common::tools::python())
        .arg("readme.py")
        .env("INNFER_LIB", lib_dir().join("libinnfer.so"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir(&dir));
    check_dump(&dir, "README Python snippet", Some(42));
}

/// The README's Rust block, verbatim between the markers (checked by `readme_rust_snippet`).
fn rust_snippet() -> Result<Vec<f32>, innfer::Error> {
    // README begin
    let model = innfer::Model::from_file("model.safetensors")?;
    let mut session = innfer::Session::new(&model, 256)?;
    session.reseed(42, 0);
    let mut x = vec![0.0; 1000 * model.layout().x_dim()];
    session.sample(&[1.5, 0.0], 1000, &mut x)?;
    // README end
    Ok(x)
}

#[test]
fn readme_rust_snippet() {
    let source = include_str!("bindings_readme.rs");
    let begin = source.find("    // README begin\n").unwrap() + "    // README begin\n".len();
    let end = source.find("    // README end\n").unwrap();
    let ours: Vec<&str> = source[begin..end].lines().map(|l| &l[4..]).collect();
    let readme = readme_block("rust", "innfer::Session::new");
    assert_eq!(
        readme.lines().collect::<Vec<_>>(),
        ours,
        "README.md's Rust block differs from rust_snippet() in tests/bindings_readme.rs"
    );
    let dir = work_dir("rust");
    std::env::set_current_dir(&dir).unwrap();
    let x = rust_snippet().unwrap();
    assert_eq!(x, rust_samples(Some(42)));
}
