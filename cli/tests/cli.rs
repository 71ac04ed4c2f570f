//! End-to-end tests of the `innfer` binary on the committed FrEIA fixtures
//! (tests/fixtures/*/model.safetensors and reference.safetensors at the workspace root).

mod common;
use common::{TempDir, assert_ok, innfer, stderr, stdout};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use safetensors::SafeTensors;

/// Forward outputs: the library's parity tolerance.
const FWD_RTOL: f32 = 1e-5;
const FWD_ATOL: f32 = 1e-6;
/// Inverse outputs: a few elements sit at ~1.1× the forward tolerance because of
/// cancellation; the library's own parity test is the strict one.
const INV_RTOL: f32 = 1e-4;
const INV_ATOL: f32 = 1e-5;

fn fixtures_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

fn fixture_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(fixtures_root())
        .expect("tests/fixtures exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("model.safetensors").is_file())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no fixtures found");
    dirs
}

fn fixture(name: &str) -> PathBuf {
    fixtures_root().join(name)
}

/// Asserts exit code 1 and a single `innfer: …` line on stderr containing every one of `needles`.
#[track_caller]
fn assert_fails_with(out: &Output, needles: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "stderr: {err}");
    assert!(err.starts_with("innfer: "), "stderr: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "stderr: {err}");
    for n in needles {
        assert!(err.contains(n), "stderr {err:?} does not mention {n:?}");
    }
    assert!(!err.contains("panicked"), "stderr: {err}");
}

// ---------------------------------------------------------------------------------------------
// .npy by hand (independent of the CLI's own module, so that the two check each other)

fn npy_bytes(descr: &str, shape: &[usize], body: &[u8]) -> Vec<u8> {
    let shape_text = match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(body);
    out
}

fn write_f32(path: &Path, shape: &[usize], data: &[f32]) {
    assert_eq!(shape.iter().product::<usize>(), data.len());
    let body: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(path, npy_bytes("<f4", shape, &body)).unwrap();
}

fn write_f64(path: &Path, shape: &[usize], data: &[f32]) {
    let body: Vec<u8> = data
        .iter()
        .flat_map(|&v| (v as f64).to_le_bytes())
        .collect();
    std::fs::write(path, npy_bytes("<f8", shape, &body)).unwrap();
}

/// Reads a v1.0 `<f4` C-order `.npy` (what the CLI writes): shape and data.
fn read_f32(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
    let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert_eq!((10 + hlen) % 64, 0, "header is padded to 64 bytes");
    let header = std::str::from_utf8(&bytes[10..10 + hlen]).unwrap();
    assert!(header.contains("'descr': '<f4'"), "{header}");
    assert!(header.contains("'fortran_order': False"), "{header}");
    assert!(header.ends_with('\n'));
    let start = header.find("'shape': (").unwrap() + "'shape': (".len();
    let end = start + header[start..].find(')').unwrap();
    let shape: Vec<usize> = header[start..end]
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    let data: Vec<f32> = bytes[10 + hlen..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(data.len(), shape.iter().product::<usize>());
    (shape, data)
}

// ---------------------------------------------------------------------------------------------
// Reference data

struct Reference {
    bytes: Vec<u8>,
}

impl Reference {
    fn load(dir: &Path) -> Reference {
        Reference {
            bytes: std::fs::read(dir.join("reference.safetensors")).unwrap(),
        }
    }

    /// Shape and data of tensor `name`, or None if the file lacks it.
    fn get(&self, name: &str) -> Option<(Vec<usize>, Vec<f32>)> {
        let st = SafeTensors::deserialize(&self.bytes).unwrap();
        let view = st.tensor(name).ok()?;
        assert_eq!(view.dtype(), safetensors::Dtype::F32);
        let data = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Some((view.shape().to_vec(), data))
    }

    fn tensor(&self, name: &str) -> (Vec<usize>, Vec<f32>) {
        self.get(name)
            .unwrap_or_else(|| panic!("reference lacks `{name}`"))
    }
}

/// Largest `|got − want| / (atol + rtol·|want|)`: at most 1 passes.
fn worst(got: &[f32], want: &[f32], rtol: f32, atol: f32) -> f32 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .map(|(g, w)| {
            let q = (g - w).abs() / (atol + rtol * w.abs());
            if q.is_nan() { f32::INFINITY } else { q }
        })
        .fold(0.0, f32::max)
}

// ---------------------------------------------------------------------------------------------
// info

#[test]
fn info_describes_a_conditional_model() {
    let dir = fixture("pypi_cinn_stats");
    let model_path = dir.join("model.safetensors");
    let out = innfer(&[&"info", &model_path, &"--batch", &"7"]);
    assert_ok(&out);
    let text = stdout(&out);

    let model = innfer::Model::from_file(&model_path).unwrap();
    let bytes = innfer::Session::arena_bytes(&model, 7).unwrap();
    assert!(text.contains("0.2 (PyPI)"), "{text}");
    assert!(text.contains("cinn (x 4, y 2)"), "{text}");
    // What innfer_session_size gives (tests/pack.rs checks it against the C API): the arena
    // and the C handle.
    let c_bytes = innfer::ffi::session_static_bytes(&model, 7).unwrap();
    assert!(
        text.contains(&format!("{c_bytes} bytes at --batch 7")),
        "{text}"
    );
    assert!(text.contains(&format!("a {bytes}-byte arena")), "{text}");
    assert!(
        text.contains(&format!("parameters      {}", model.parameter_count())),
        "{text}"
    );
    assert!(text.contains("standardised    x yes, y yes"), "{text}");
    assert!(
        text.contains(&format!("blocks          {}", model.block_count())),
        "{text}"
    );
    // One line per block: index, FrEIA type, and `cond` where the block takes the condition.
    let block_lines: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("blocks"))
        .skip(1)
        .collect();
    assert_eq!(block_lines.len(), model.block_count(), "{text}");
    for (i, line) in block_lines.iter().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields[0], i.to_string(), "{line}");
        assert_eq!(fields[1], model.block_kind(i).unwrap(), "{line}");
        assert_eq!(
            fields.get(2) == Some(&"cond"),
            model.block_takes_condition(i),
            "{line}"
        );
    }
    assert!(block_lines.iter().any(|l| l.ends_with("cond")));
    assert!(block_lines.iter().any(|l| l.contains("ActNorm")));
}

#[test]
fn info_names_the_transforms() {
    let model_path = fixture("pypi_cinn_bounded_clr").join("model.safetensors");
    let out = innfer(&[&"info", &model_path]);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(
        text.contains("x transform     logit(0, 1), logit(0.005, 0.1), log(5), identity\n"),
        "{text}"
    );
    assert!(text.contains("y transform     clr\n"), "{text}");
    let plain = stdout(&innfer(&[
        &"info",
        &fixture("pypi_cinn_stats").join("model.safetensors"),
    ]));
    assert!(plain.contains("x transform     none\n"), "{plain}");
    assert!(plain.contains("y transform     none\n"), "{plain}");
}

#[test]
fn info_describes_an_inn_layout_and_defaults_to_batch_1() {
    let model_path = fixture("head_toy_inn").join("model.safetensors");
    let out = innfer(&[&"info", &model_path]);
    assert_ok(&out);
    let text = stdout(&out);
    let model = innfer::Model::from_file(&model_path).unwrap();
    let bytes = innfer::ffi::session_static_bytes(&model, 1).unwrap();
    assert!(text.contains("head (git main)"), "{text}");
    assert!(text.contains("layout          inn (x "), "{text}");
    assert!(text.contains("pad_zy"), "{text}");
    assert!(text.contains("cond_dim        0"), "{text}");
    assert!(
        text.contains(&format!("{bytes} bytes at --batch 1")),
        "{text}"
    );
    assert!(text.contains("GLOWCouplingBlock"), "{text}");
    assert!(text.contains("PermuteRandom"), "{text}");
    assert!(!text.contains("cond\n"), "{text}");
}

#[test]
fn info_of_a_model_without_layout() {
    let out = innfer(&[
        &"info",
        &fixture("pypi_rnvp_tanh").join("model.safetensors"),
    ]);
    assert_ok(&out);
    assert!(stdout(&out).contains("layout          none"));
}

// ---------------------------------------------------------------------------------------------
// forward / inverse against FrEIA's reference

#[test]
fn forward_and_inverse_match_freia_on_every_fixture() {
    let tmp = TempDir::new("parity");
    let mut failures = Vec::new();
    for dir in fixture_dirs() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let model = dir.join("model.safetensors");
        let r = Reference::load(&dir);
        let cond = r.get("c_b257");
        let cond_path = tmp.path(&format!("{name}_c.npy"));
        if let Some((shape, data)) = &cond {
            write_f32(&cond_path, shape, data);
        }

        for (inverse, input, want_out, want_ld, rtol, atol) in [
            (
                false,
                "x_b257",
                "fwd_out_b257",
                "fwd_logdet_b257",
                FWD_RTOL,
                FWD_ATOL,
            ),
            (
                true,
                "inv_in_b257",
                "inv_out_b257",
                "inv_logdet_b257",
                INV_RTOL,
                INV_ATOL,
            ),
        ] {
            let (shape, data) = r.tensor(input);
            let in_path = tmp.path(&format!("{name}_{input}.npy"));
            let out_path = tmp.path(&format!("{name}_{input}_out.npy"));
            let ld_path = tmp.path(&format!("{name}_{input}_ld.npy"));
            write_f32(&in_path, &shape, &data);
            let cmd = if inverse { "inverse" } else { "forward" };
            let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![
                &cmd,
                &model,
                &"--input",
                &in_path,
                &"--output",
                &out_path,
                &"--logdet",
                &ld_path,
                // 257 rows in chunks of 100, 100, 57.
                &"--batch",
                &"100",
            ];
            if cond.is_some() {
                args.push(&"--cond");
                args.push(&cond_path);
            }
            let out = innfer(&args);
            assert_ok(&out);

            let (got_shape, got) = read_f32(&out_path);
            let (want_shape, want) = r.tensor(want_out);
            assert_eq!(got_shape, want_shape, "{name} {cmd}");
            let (ld_shape, ld) = read_f32(&ld_path);
            let (want_ld_shape, want_ld) = r.tensor(want_ld);
            assert_eq!(ld_shape, want_ld_shape, "{name} {cmd} logdet");
            let w = worst(&got, &want, rtol, atol);
            let wl = worst(&ld, &want_ld, rtol, atol);
            if w > 1.0 || wl > 1.0 {
                failures.push(format!(
                    "{name} {cmd}: worst output ratio {w}, logdet ratio {wl}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn one_dimensional_input_and_f64_input_are_accepted() {
    let tmp = TempDir::new("onerow");
    let dir = fixture("pypi_glow_permute_cond");
    let model = dir.join("model.safetensors");
    let r = Reference::load(&dir);
    let (xs, x) = r.tensor("x_b257");
    let (cs, c) = r.tensor("c_b257");
    let (d, cc) = (xs[1], cs[1]);
    let (_, want) = r.tensor("fwd_out_b257");
    let (_, want_ld) = r.tensor("fwd_logdet_b257");

    // Row 5 as 1-D float64 arrays.
    let (x_path, c_path) = (tmp.path("x.npy"), tmp.path("c.npy"));
    write_f64(&x_path, &[d], &x[5 * d..6 * d]);
    write_f64(&c_path, &[cc], &c[5 * cc..6 * cc]);
    let (out_path, ld_path) = (tmp.path("z.npy"), tmp.path("ld.npy"));
    let out = innfer(&[
        &"forward",
        &model,
        &"--input",
        &x_path,
        &"--cond",
        &c_path,
        &"--output",
        &out_path,
        &"--logdet",
        &ld_path,
    ]);
    assert_ok(&out);
    let (shape, got) = read_f32(&out_path);
    assert_eq!(shape, vec![1, d]);
    assert!(worst(&got, &want[5 * d..6 * d], FWD_RTOL, FWD_ATOL) <= 1.0);
    let (shape, ld) = read_f32(&ld_path);
    assert_eq!(shape, vec![1]);
    assert!(worst(&ld, &want_ld[5..6], FWD_RTOL, FWD_ATOL) <= 1.0);
}

#[test]
fn a_single_condition_row_is_used_for_every_input_row() {
    let tmp = TempDir::new("broadcast");
    let dir = fixture("head_coupling_cond");
    let model = dir.join("model.safetensors");
    let r = Reference::load(&dir);
    let (xs, x) = r.tensor("x_b257");
    let (cs, c) = r.tensor("c_b257");
    let (rows, d, cc) = (10, xs[1], cs[1]);
    let x = &x[..rows * d];
    let one = &c[3 * cc..4 * cc];

    let x_path = tmp.path("x.npy");
    write_f32(&x_path, &[rows, d], x);
    let one_path = tmp.path("c1.npy");
    write_f32(&one_path, &[1, cc], one);
    let many_path = tmp.path("cn.npy");
    write_f32(&many_path, &[rows, cc], &one.repeat(rows));

    let run = |cond: &Path, out: &Path| {
        let o = innfer(&[
            &"inverse",
            &model,
            &"--input",
            &x_path,
            &"--cond",
            &cond,
            &"--output",
            &out,
        ]);
        assert_ok(&o);
        read_f32(out)
    };
    let a = run(&one_path, &tmp.path("a.npy"));
    let b = run(&many_path, &tmp.path("b.npy"));
    assert_eq!(a.0, vec![rows, d]);
    assert_eq!(a, b);
}

#[test]
fn forward_then_inverse_round_trips() {
    let tmp = TempDir::new("roundtrip");
    let dir = fixture("head_cinn_stats");
    let model = dir.join("model.safetensors");
    let r = Reference::load(&dir);
    let (xs, x) = r.tensor("x_b257");
    let (cs, c) = r.tensor("c_b257");
    let (x_path, c_path) = (tmp.path("x.npy"), tmp.path("c.npy"));
    write_f32(&x_path, &xs, &x);
    write_f32(&c_path, &cs, &c);
    let (z_path, xr_path) = (tmp.path("z.npy"), tmp.path("xr.npy"));
    let (ldf, ldi) = (tmp.path("ldf.npy"), tmp.path("ldi.npy"));
    assert_ok(&innfer(&[
        &"forward",
        &model,
        &"--input",
        &x_path,
        &"--cond",
        &c_path,
        &"--output",
        &z_path,
        &"--logdet",
        &ldf,
    ]));
    assert_ok(&innfer(&[
        &"inverse",
        &model,
        &"--input",
        &z_path,
        &"--cond",
        &c_path,
        &"--output",
        &xr_path,
        &"--logdet",
        &ldi,
    ]));
    let (_, xr) = read_f32(&xr_path);
    assert!(worst(&xr, &x, INV_RTOL, INV_ATOL) <= 1.0);
    let (_, f) = read_f32(&ldf);
    let (_, i) = read_f32(&ldi);
    let neg: Vec<f32> = f.iter().map(|v| -v).collect();
    assert!(worst(&i, &neg, INV_RTOL, INV_ATOL) <= 1.0);
}

// ---------------------------------------------------------------------------------------------
// sample

fn sample_run(model: &Path, y: &Path, n: &str, seed: &str, stream: &str, out: &Path) -> Output {
    innfer(&[
        &"sample",
        &model,
        &"--y",
        &y,
        &"-n",
        &n,
        &"--seed",
        &seed,
        &"--stream",
        &stream,
        &"--output",
        &out,
    ])
}

#[test]
fn sample_shapes_reproducibility_and_seeds() {
    let tmp = TempDir::new("sample");
    for name in ["pypi_cinn_stats", "head_toy_inn"] {
        let model_path = fixture(name).join("model.safetensors");
        let model = innfer::Model::from_file(&model_path).unwrap();
        let layout = model.layout();
        let (xd, yd) = (layout.x_dim(), layout.y_dim());
        assert!(xd > 0 && yd > 0, "{name} has a sampling layout");
        let rows = 3;
        let n = 50;
        let ys: Vec<f32> = (0..rows * yd).map(|i| (i as f32 * 0.37).sin()).collect();
        let y_path = tmp.path(&format!("{name}_y.npy"));
        write_f32(&y_path, &[rows, yd], &ys);

        let out = |tag: &str| tmp.path(&format!("{name}_{tag}.npy"));
        assert_ok(&sample_run(&model_path, &y_path, "50", "7", "0", &out("a")));
        assert_ok(&sample_run(&model_path, &y_path, "50", "7", "0", &out("b")));
        assert_ok(&sample_run(&model_path, &y_path, "50", "8", "0", &out("c")));
        assert_ok(&sample_run(&model_path, &y_path, "50", "7", "1", &out("d")));
        // A small --batch changes the chunking, not the numbers.
        assert_ok(&innfer(&[
            &"sample",
            &model_path,
            &"--y",
            &y_path,
            &"-n",
            &"50",
            &"--seed",
            &"7",
            &"--output",
            &out("e"),
            &"--batch",
            &"16",
        ]));

        let (shape, a) = read_f32(&out("a"));
        assert_eq!(shape, vec![rows * n, xd], "{name}");
        assert!(a.iter().all(|v| v.is_finite()), "{name}");
        let (_, b) = read_f32(&out("b"));
        let (_, c) = read_f32(&out("c"));
        let (_, d) = read_f32(&out("d"));
        let (_, e) = read_f32(&out("e"));
        assert_eq!(a, b, "{name}: same seed, same samples");
        assert_ne!(a, c, "{name}: another seed, other samples");
        assert_ne!(a, d, "{name}: another stream, other samples");
        assert_eq!(a, e, "{name}: --batch does not change the samples");

        // The same numbers as the library's sample_batch.
        let mut session = innfer::Session::new(&model, 64).unwrap();
        session.reseed(7, 0);
        let mut want = vec![0.0; rows * n * xd];
        session.sample_batch(&ys, n, &mut want).unwrap();
        assert_eq!(a, want, "{name}");
    }
}

#[test]
fn sample_accepts_a_single_observation_and_defaults_to_seed_0() {
    let tmp = TempDir::new("sample1");
    let model_path = fixture("head_cinn_stats").join("model.safetensors");
    let model = innfer::Model::from_file(&model_path).unwrap();
    let (xd, yd) = (model.layout().x_dim(), model.layout().y_dim());
    let y: Vec<f32> = (0..yd).map(|i| i as f32 * 0.1).collect();
    let y_path = tmp.path("y.npy");
    write_f32(&y_path, &[yd], &y);
    let out_path = tmp.path("x.npy");
    assert_ok(&innfer(&[
        &"sample",
        &model_path,
        &"--y",
        &y_path,
        &"-n",
        &"5",
        &"--output",
        &out_path,
    ]));
    let (shape, got) = read_f32(&out_path);
    assert_eq!(shape, vec![5, xd]);
    let mut session = innfer::Session::new(&model, 5).unwrap();
    session.reseed(0, 0);
    let mut want = vec![0.0; 5 * xd];
    session.sample(&y, 5, &mut want).unwrap();
    assert_eq!(got, want);
}

/// A `--batch` whose session no allocator can give (480 TB: more than a 47-bit address space)
/// is an error naming `--batch`, not an abort.
#[test]
fn a_batch_too_large_for_memory_is_an_error_naming_batch() {
    let tmp = TempDir::new("huge_batch");
    let model_path = fixture("head_cinn_stats").join("model.safetensors");
    let yd = innfer::Model::from_file(&model_path)
        .unwrap()
        .layout()
        .y_dim();
    let y_path = tmp.path("y.npy");
    write_f32(&y_path, &[yd], &vec![0.1; yd]);
    let huge = "10000000000000";
    let out = innfer(&[
        &"sample",
        &model_path,
        &"--y",
        &y_path,
        &"-n",
        &huge,
        &"--batch",
        &huge,
        &"--output",
        &tmp.path("x.npy"),
    ]);
    assert_fails_with(&out, &["--batch 10000000000000", "out of memory"]);
}

// ---------------------------------------------------------------------------------------------
// bad input

#[test]
fn missing_model_file_is_named() {
    let tmp = TempDir::new("nomodel");
    let x = tmp.path("x.npy");
    write_f32(&x, &[1, 5], &[0.0; 5]);
    let missing = tmp.path("no_such_model.safetensors");
    let out = innfer(&[
        &"forward",
        &missing,
        &"--input",
        &x,
        &"--output",
        &tmp.path("o.npy"),
    ]);
    assert_fails_with(&out, &["no_such_model.safetensors"]);
    let out = innfer(&[&"info", &missing]);
    assert_fails_with(&out, &["no_such_model.safetensors"]);
}

#[test]
fn a_file_that_is_not_a_model_is_named() {
    let tmp = TempDir::new("notmodel");
    let bogus = tmp.path("bogus.safetensors");
    std::fs::write(&bogus, b"definitely not safetensors").unwrap();
    let out = innfer(&[&"info", &bogus]);
    assert_fails_with(&out, &["bogus.safetensors", "safetensors"]);
}

#[test]
fn missing_input_file_is_named() {
    let tmp = TempDir::new("noinput");
    let model = fixture("pypi_rnvp_tanh").join("model.safetensors");
    let out = innfer(&[
        &"forward",
        &model,
        &"--input",
        &tmp.path("absent_input.npy"),
        &"--output",
        &tmp.path("o.npy"),
    ]);
    assert_fails_with(&out, &["absent_input.npy"]);
    assert!(!tmp.path("o.npy").exists(), "no output on failure");
}

#[test]
fn wrong_dims_are_named() {
    let tmp = TempDir::new("dims");
    // pypi_glow_permute_cond: dim 5, cond_dim 3.
    let model = fixture("pypi_glow_permute_cond").join("model.safetensors");
    let x_ok = tmp.path("x_ok.npy");
    write_f32(&x_ok, &[3, 5], &[0.1; 15]);
    let x_bad = tmp.path("x_bad.npy");
    write_f32(&x_bad, &[3, 4], &[0.1; 12]);
    let c_ok = tmp.path("cond_ok.npy");
    write_f32(&c_ok, &[3, 3], &[0.2; 9]);
    let c_bad = tmp.path("cond.npy");
    write_f32(&c_bad, &[3, 2], &[0.2; 6]);
    let c_rows = tmp.path("cond_rows.npy");
    write_f32(&c_rows, &[2, 3], &[0.2; 6]);
    let o = tmp.path("o.npy");

    let out = innfer(&[
        &"forward",
        &model,
        &"--input",
        &x_bad,
        &"--cond",
        &c_ok,
        &"--output",
        &o,
    ]);
    assert_fails_with(&out, &["x_bad.npy", "[3, 4]", "dim 5"]);

    let out = innfer(&[
        &"forward",
        &model,
        &"--input",
        &x_ok,
        &"--cond",
        &c_bad,
        &"--output",
        &o,
    ]);
    assert_fails_with(
        &out,
        &[
            "cond.npy",
            "shape [3, 2] does not match the model's cond_dim 3",
        ],
    );

    let out = innfer(&[
        &"inverse",
        &model,
        &"--input",
        &x_ok,
        &"--cond",
        &c_rows,
        &"--output",
        &o,
    ]);
    assert_fails_with(&out, &["cond_rows.npy", "2 condition rows", "3 input rows"]);

    let out = innfer(&[&"forward", &model, &"--input", &x_ok, &"--output", &o]);
    assert_fails_with(&out, &["--cond", "cond_dim"]);

    // A condition given to a model that takes none.
    let plain = fixture("pypi_rnvp_tanh").join("model.safetensors");
    let x7 = tmp.path("x7.npy");
    write_f32(&x7, &[1, 7], &[0.0; 7]);
    let out = innfer(&[
        &"forward",
        &plain,
        &"--input",
        &x7,
        &"--cond",
        &c_ok,
        &"--output",
        &o,
    ]);
    assert_fails_with(&out, &["--cond", "cond_ok.npy", "no condition"]);

    // Sampling: y of the wrong width, and a model without a sampling layout.
    let cinn = fixture("pypi_cinn_stats").join("model.safetensors");
    let y_bad = tmp.path("y_bad.npy");
    write_f32(&y_bad, &[2, 5], &[0.0; 10]);
    let out = sample_run(&cinn, &y_bad, "3", "0", "0", &o);
    assert_fails_with(&out, &["y_bad.npy", "[2, 5]", "y_dim 2"]);
    let y2 = tmp.path("y2.npy");
    write_f32(&y2, &[2], &[0.0; 2]);
    let out = sample_run(&plain, &y2, "3", "0", "0", &o);
    assert_fails_with(&out, &["pypi_rnvp_tanh", "no sampling layout"]);
    assert!(!o.exists(), "no output on failure");
}

#[test]
fn malformed_npy_is_named() {
    let tmp = TempDir::new("malformed");
    let model = fixture("pypi_rnvp_tanh").join("model.safetensors"); // dim 7
    let o = tmp.path("o.npy");
    let run = |path: &Path| innfer(&[&"forward", &model, &"--input", &path, &"--output", &o]);

    let garbage = tmp.path("garbage.npy");
    std::fs::write(&garbage, b"this is not an npy file at all").unwrap();
    assert_fails_with(&run(&garbage), &["garbage.npy", "bad magic"]);

    let truncated = tmp.path("truncated.npy");
    let body: Vec<u8> = [0.5f32; 14].iter().flat_map(|v| v.to_le_bytes()).collect();
    let full = npy_bytes("<f4", &[2, 7], &body);
    std::fs::write(&truncated, &full[..full.len() - 3]).unwrap();
    assert_fails_with(&run(&truncated), &["truncated.npy", "truncated"]);

    let ints = tmp.path("ints.npy");
    std::fs::write(&ints, npy_bytes("<i4", &[2, 7], &[0u8; 56])).unwrap();
    assert_fails_with(&run(&ints), &["ints.npy", "<i4"]);

    let fortran = tmp.path("fortran.npy");
    let mut bytes = npy_bytes("<f4", &[2, 7], &body);
    let at = bytes.windows(5).position(|w| w == b"False").unwrap();
    bytes.splice(at..at + 5, *b"True ");
    std::fs::write(&fortran, &bytes).unwrap();
    assert_fails_with(&run(&fortran), &["fortran.npy", "Fortran"]);

    // A cube is rows of its last axis (a camera frame's pixels); five axes are too many.
    let five = tmp.path("five.npy");
    std::fs::write(&five, npy_bytes("<f4", &[1, 1, 1, 2, 7], &body)).unwrap();
    assert_fails_with(&run(&five), &["five.npy", "5 dimensions", "1 to 4"]);
}

#[test]
fn unwritable_output_is_named() {
    let tmp = TempDir::new("unwritable");
    let model = fixture("pypi_rnvp_tanh").join("model.safetensors");
    let x = tmp.path("x.npy");
    write_f32(&x, &[7], &[0.0; 7]);
    let out_path = tmp.path("no_such_dir").join("out.npy");
    let out = innfer(&[&"forward", &model, &"--input", &x, &"--output", &out_path]);
    assert_fails_with(&out, &["writing", "out.npy"]);
}

/// Asserts exit code 2 (a usage error, as clap's) and one `innfer: …` line naming `needles`.
#[track_caller]
fn assert_usage_error(out: &Output, needles: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(err.starts_with("innfer: "), "stderr: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "stderr: {err}");
    for n in needles {
        assert!(err.contains(n), "stderr {err:?} does not mention {n:?}");
    }
    assert!(out.stdout.is_empty());
}

#[test]
fn usage_errors_keep_clap_exit_code_2_on_one_line() {
    let out = innfer(&[&"frobnicate"]);
    assert_usage_error(&out, &["frobnicate", "innfer --help"]);

    let out = innfer(&[&"forward", &"m.safetensors", &"--output", &"o.npy"]);
    assert_usage_error(&out, &["--input", "innfer forward --help"]);

    let out = innfer(&[
        &"sample",
        &"m.safetensors",
        &"--y",
        &"y.npy",
        &"-n",
        &"0",
        &"--output",
        &"o.npy",
    ]);
    assert_usage_error(&out, &["-n", "'0'"]);

    let out = innfer(&[&"info", &"m.safetensors", &"--batch", &"lots"]);
    assert_usage_error(&out, &["lots", "--batch"]);

    let out = innfer(&[&"sample", &"m.safetensors", &"-n", &"3"]);
    assert_usage_error(&out, &["--y", "innfer sample --help"]);

    let out = innfer(&[&"demo", &"--label", &"9"]);
    assert_usage_error(&out, &["--label", "9"]);

    let out = innfer(&[&"demo", &"--task", &"arm"]);
    assert_usage_error(&out, &["--task"]);

    let out = innfer(&[&"demo", &"--arm-n", &"0"]);
    assert_usage_error(&out, &["--arm-n", "at least 1"]);

    let out = innfer(&[&"bench", &"m.safetensors", &"--batch", &"1,x"]);
    assert_usage_error(&out, &["--batch", "`x`"]);

    let out = innfer(&[&"bench", &"m.safetensors", &"--threads", &"0"]);
    assert_usage_error(&out, &["--threads", "at least 1"]);
}

#[test]
fn every_command_has_help_with_an_example() {
    for cmd in [
        "info", "forward", "inverse", "sample", "bench", "demo", "pack",
    ] {
        let out = innfer(&[&cmd, &"--help"]);
        assert_ok(&out);
        let text = stdout(&out);
        assert!(text.contains("Example"), "{cmd}: {text}");
        assert!(text.contains(&format!("innfer {cmd} ")), "{cmd}: {text}");
    }
    let out = innfer(&[&"--help"]);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(text.contains("Examples"));
    for cmd in [
        "info", "forward", "inverse", "sample", "bench", "demo", "pack",
    ] {
        assert!(text.contains(&format!("  {cmd} ")), "{cmd} listed: {text}");
    }
    // --y's two forms are documented where the user looks.
    let text = stdout(&innfer(&[&"sample", &"--help"]));
    assert!(text.contains("--y 1.5,0"), "{text}");
    assert!(text.contains("ends in .npy or .csv"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// sample: inline observations, CSV, stdout

/// Parses CSV as the CLI writes it: one row per line, comma-separated f32.
fn parse_csv(text: &str) -> Vec<Vec<f32>> {
    text.lines()
        .map(|l| {
            l.split(',')
                .map(|v| v.parse::<f32>().unwrap_or_else(|e| panic!("{v:?}: {e}")))
                .collect()
        })
        .collect()
}

fn flat(rows: &[Vec<f32>]) -> Vec<f32> {
    rows.iter().flatten().copied().collect()
}

#[test]
fn inline_y_csv_and_stdout_give_the_same_samples_as_npy() {
    let tmp = TempDir::new("inline");
    let model = fixture("pypi_cinn_stats").join("model.safetensors"); // x 4, y 2
    let y_npy = tmp.path("y.npy");
    write_f32(&y_npy, &[2], &[-1.5, 0.25]);
    let reference = tmp.path("ref.npy");
    assert_ok(&sample_run(&model, &y_npy, "40", "9", "0", &reference));
    let (shape, want) = read_f32(&reference);
    assert_eq!(shape, vec![40, 4]);

    // Inline, as `--y=-1.5,0.25` and as `--y -1.5,0.25` (a leading minus is a value here).
    for y_args in [
        vec!["--y=-1.5,0.25"],
        vec!["--y", "-1.5,0.25"],
        vec!["--y", " -1.5 , 0.25"],
    ] {
        let out_path = tmp.path("inline.npy");
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"sample", &model];
        for a in &y_args {
            args.push(a);
        }
        args.extend([
            &"-n" as &dyn AsRef<std::ffi::OsStr>,
            &"40",
            &"--seed",
            &"9",
            &"--output",
            &out_path,
        ]);
        let out = innfer(&args);
        assert_ok(&out);
        assert_eq!(
            read_f32(&out_path),
            (vec![40, 4], want.clone()),
            "{y_args:?}"
        );
    }

    // CSV file output: same numbers, bit for bit (shortest round-trip text).
    let csv = tmp.path("x.csv");
    let out = innfer(&[
        &"sample",
        &model,
        &"--y",
        &"-1.5,0.25",
        &"-n",
        &"40",
        &"--seed",
        &"9",
        &"--output",
        &csv,
    ]);
    assert_ok(&out);
    assert!(stdout(&out).is_empty());
    let rows = parse_csv(&std::fs::read_to_string(&csv).unwrap());
    assert_eq!(rows.len(), 40);
    assert!(rows.iter().all(|r| r.len() == 4));
    assert_eq!(flat(&rows), want);

    // Upper-case extension works too.
    let npy_upper = tmp.path("X.NPY");
    assert_ok(&innfer(&[
        &"sample",
        &model,
        &"--y",
        &y_npy,
        &"-n",
        &"40",
        &"--seed",
        &"9",
        &"--output",
        &npy_upper,
    ]));
    assert_eq!(read_f32(&npy_upper).1, want);

    // stdout: --output omitted, and --output -.
    for extra in [&[][..], &["--output", "-"][..]] {
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![
            &"sample",
            &model,
            &"--y",
            &"-1.5,0.25",
            &"-n",
            &"40",
            &"--seed",
            &"9",
        ];
        for a in extra {
            args.push(a);
        }
        let out = innfer(&args);
        assert_ok(&out);
        assert!(
            stderr(&out).is_empty(),
            "no progress bar when stderr is not a terminal"
        );
        let rows = parse_csv(&stdout(&out));
        assert_eq!(rows.len(), 40, "{extra:?}");
        assert_eq!(flat(&rows), want, "{extra:?}");
    }
}

#[test]
fn y_from_a_csv_file_with_several_observations() {
    let tmp = TempDir::new("ycsv");
    let model = fixture("head_cinn_stats").join("model.safetensors");
    let m = innfer::Model::from_file(&model).unwrap();
    let (xd, yd) = (m.layout().x_dim(), m.layout().y_dim());
    let ys: Vec<f32> = (0..3 * yd).map(|i| (i as f32 * 0.7).cos()).collect();
    let mut text = String::from("# observations, one per line\n");
    for row in ys.chunks(yd) {
        let fields: Vec<String> = row.iter().map(|v| format!("{v}")).collect();
        text.push_str(&fields.join(", "));
        text.push('\n');
    }
    let y_csv = tmp.path("obs.csv");
    std::fs::write(&y_csv, text).unwrap();
    let out_path = tmp.path("x.npy");
    // --batch 7 splits each observation's 20 samples over several calls: same numbers.
    assert_ok(&innfer(&[
        &"sample",
        &model,
        &"--y",
        &y_csv,
        &"-n",
        &"20",
        &"--seed",
        &"3",
        &"--output",
        &out_path,
        &"--batch",
        &"7",
    ]));
    let (shape, got) = read_f32(&out_path);
    assert_eq!(shape, vec![60, xd]);
    let mut session = innfer::Session::new(&m, 64).unwrap();
    session.reseed(3, 0);
    let mut want = vec![0.0; 60 * xd];
    session.sample_batch(&ys, 20, &mut want).unwrap();
    assert_eq!(got, want);

    // forward/inverse read .csv and write .csv as well; the same numbers as .npy.
    let c_fields: Vec<String> = (0..m.cond_dim())
        .map(|i| format!("{}", 0.1 * i as f32))
        .collect();
    let c_csv = tmp.path("c.csv");
    std::fs::write(&c_csv, c_fields.join(",") + "\n").unwrap();
    let c_npy = tmp.path("c.npy");
    let c: Vec<f32> = (0..m.cond_dim()).map(|i| 0.1 * i as f32).collect();
    write_f32(&c_npy, &[m.cond_dim()], &c);
    let x_csv = tmp.path("x.csv");
    let fields: Vec<String> = got.iter().map(|v| format!("{v}")).collect();
    let lines: Vec<String> = fields.chunks(m.dim()).map(|r| r.join(",")).collect();
    std::fs::write(&x_csv, lines.join("\n")).unwrap();
    let (z_csv, z_npy, ld_csv) = (tmp.path("z.csv"), tmp.path("z.npy"), tmp.path("ld.csv"));
    assert_ok(&innfer(&[
        &"forward",
        &model,
        &"--input",
        &x_csv,
        &"--cond",
        &c_csv,
        &"--output",
        &z_csv,
        &"--logdet",
        &ld_csv,
    ]));
    assert_ok(&innfer(&[
        &"forward",
        &model,
        &"--input",
        &out_path,
        &"--cond",
        &c_npy,
        &"--output",
        &z_npy,
    ]));
    let rows = parse_csv(&std::fs::read_to_string(&z_csv).unwrap());
    assert_eq!(rows.len(), 60);
    assert_eq!(flat(&rows), read_f32(&z_npy).1);
    let ld = parse_csv(&std::fs::read_to_string(&ld_csv).unwrap());
    assert_eq!(ld.len(), 60);
    assert!(ld.iter().all(|r| r.len() == 1));
    // --output - prints CSV; --output and --logdet cannot both take stdout.
    let out = innfer(&[
        &"inverse",
        &model,
        &"--input",
        &z_csv,
        &"--cond",
        &c_csv,
        &"--output",
        &"-",
    ]);
    assert_ok(&out);
    assert_eq!(parse_csv(&stdout(&out)).len(), 60);
    let out = innfer(&[
        &"inverse",
        &model,
        &"--input",
        &z_csv,
        &"--cond",
        &c_csv,
        &"--output",
        &"-",
        &"--logdet",
        &"-",
    ]);
    assert_fails_with(&out, &["--output -", "--logdet -", "stdout"]);
}

#[test]
fn bad_observations_are_named() {
    let tmp = TempDir::new("bady");
    let model = fixture("pypi_cinn_stats").join("model.safetensors"); // y_dim 2
    let o = tmp.path("o.npy");
    let run = |y: &str| innfer(&[&"sample", &model, &"--y", &y, &"-n", &"3", &"--output", &o]);
    assert_fails_with(&run("1.5,abc"), &["--y 1.5,abc", "`abc`", "not a number"]);
    assert_fails_with(&run("1.5,,2"), &["--y 1.5,,2", "empty"]);
    assert_fails_with(&run("1.5,0,2"), &["--y 1.5,0,2", "3 values", "y_dim is 2"]);
    assert_fails_with(&run("1.5"), &["--y 1.5", "1 value,", "y_dim is 2"]);
    let missing = tmp.path("absent_obs.npy");
    assert_fails_with(&run(missing.to_str().unwrap()), &["absent_obs.npy"]);
    let missing_csv = tmp.path("absent_obs.csv");
    assert_fails_with(&run(missing_csv.to_str().unwrap()), &["absent_obs.csv"]);

    let bad_csv = tmp.path("bad.csv");
    std::fs::write(&bad_csv, "1.0,2.0\n3.0,x7\n").unwrap();
    assert_fails_with(
        &run(bad_csv.to_str().unwrap()),
        &["bad.csv", "line 2, field 2", "`x7`"],
    );
    let ragged = tmp.path("ragged.csv");
    std::fs::write(&ragged, "1.0,2.0\n3.0\n").unwrap();
    assert_fails_with(&run(ragged.to_str().unwrap()), &["ragged.csv", "line 2"]);
    let wide = tmp.path("wide.csv");
    std::fs::write(&wide, "1,2,3\n").unwrap();
    assert_fails_with(
        &run(wide.to_str().unwrap()),
        &["wide.csv", "[1, 3]", "y_dim 2"],
    );
    assert!(!o.exists(), "no output on failure");

    // An output name that is neither .npy nor .csv, before any work is done.
    let txt = tmp.path("x.txt");
    let out = innfer(&[
        &"sample",
        &model,
        &"--y",
        &"1,2",
        &"-n",
        &"3",
        &"--output",
        &txt,
    ]);
    assert_fails_with(&out, &["--output", "x.txt", ".npy or .csv"]);
    assert!(!txt.exists());
}

// ---------------------------------------------------------------------------------------------
// bench

/// Rows of the bench table: (op, threads, batch, samples/s, µs/call).
fn bench_rows(text: &str) -> Vec<(String, usize, usize, f64, f64)> {
    text.lines()
        .filter(|l| l.starts_with("sample ") || l.starts_with("inverse "))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 5, "{l}");
            (
                f[0].to_string(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
                f[4].parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn bench_prints_throughput_and_latency_per_setting() {
    let model = fixture("pypi_cinn_stats").join("model.safetensors");
    let out = innfer(&[
        &"bench",
        &model,
        &"--batch",
        &"1,16",
        &"--threads",
        &"1,2",
        &"--reps",
        &"2",
        &"--min-time",
        &"0.01",
    ]);
    assert_ok(&out);
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("samples/s") && text.contains("µs/call"),
        "{text}"
    );
    assert!(text.contains("median of 2 runs"), "{text}");
    let rows = bench_rows(&text);
    let mut settings: Vec<(String, usize, usize)> =
        rows.iter().map(|r| (r.0.clone(), r.1, r.2)).collect();
    settings.sort();
    let mut want = Vec::new();
    for op in ["inverse", "sample"] {
        for t in [1, 2] {
            for b in [1, 16] {
                want.push((op.to_string(), t, b));
            }
        }
    }
    assert_eq!(settings, want, "{text}");
    for (op, t, b, rate, us) in &rows {
        assert!(*rate > 0.0 && *us > 0.0, "{op} {t} {b}: {text}");
        // Throughput and latency agree: rate = threads·batch / latency, within the rounding
        // of the printed latency (two decimals below 10 µs, one above).
        let implied = (*t * *b) as f64 / (us * 1e-6);
        let rounding = if *us < 10.0 { 0.005 } else { 0.05 } / us;
        assert!(
            (implied / rate - 1.0).abs() < 0.01 + rounding,
            "{op} {t} {b}: {text}"
        );
    }

    // A model without a sampling layout: the inverse pass only.
    let plain = fixture("pypi_rnvp_tanh").join("model.safetensors");
    let out = innfer(&[
        &"bench",
        &plain,
        &"--batch",
        &"4",
        &"--reps",
        &"1",
        &"--min-time",
        &"0.01",
    ]);
    assert_ok(&out);
    let rows = bench_rows(&stdout(&out));
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].0.as_str(), rows[0].1, rows[0].2),
        ("inverse", 1, 4)
    );

    let tmp = TempDir::new("benchmissing");
    let out = innfer(&[&"bench", &tmp.path("gone.safetensors")]);
    assert_fails_with(&out, &["gone.safetensors"]);
}

// ---------------------------------------------------------------------------------------------
// demo

/// Width, height and RGB pixels of a PNG (8-bit RGB or RGBA).
fn decode_png(path: &Path) -> (u32, u32, Vec<[u8; 3]>) {
    let file = std::fs::File::open(path).unwrap();
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("{}: colour type {other:?}", path.display()),
    };
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    let pixels = buf[..info.buffer_size()]
        .chunks_exact(channels)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    (info.width, info.height, pixels)
}

#[track_caller]
fn check_figure(path: &Path) -> Vec<[u8; 3]> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", path.display());
    assert!(
        bytes.len() > 10_000,
        "{}: {} bytes",
        path.display(),
        bytes.len()
    );
    let (w, h, pixels) = decode_png(path);
    assert!(
        (1000..=4000).contains(&w) && (300..=2000).contains(&h),
        "{w}×{h}"
    );
    // Text and axes (dark), and not a blank canvas.
    let dark = pixels.iter().filter(|p| p.iter().all(|&c| c < 90)).count();
    assert!(dark > 2000, "{}: {dark} dark pixels", path.display());
    pixels
}

fn reddish(p: &[u8; 3]) -> bool {
    p[0] as i32 > p[1] as i32 + 40 && p[0] as i32 > p[2] as i32 + 40
}

fn bluish(p: &[u8; 3]) -> bool {
    p[2] as i32 > p[0] as i32 + 40
}

/// The README's first command (`cargo run --release -p innfer-cli -- demo`) and the output it
/// shows: each shown line is printed, in order, with the same words and the same numbers to
/// within a few units of their last digit (other CPUs run other kernels); a line ending in
/// `...` is a prefix of the printed one.
fn check_readme_demo_output(text: &str) {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let command = "$ cargo run --release -p innfer-cli -- demo";
    let shown: Vec<&str> = readme
        .lines()
        .skip_while(|l| *l != command)
        .skip(1)
        .take_while(|l| !l.starts_with("```"))
        .collect();
    assert!(
        !shown.is_empty(),
        "README.md shows no output under {command:?}"
    );
    // Words must match; numbers (with their sign, decimals and a trailing %) may differ by 5
    // units of the last decimal shown.
    let tokens = |l: &str| -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = String::new();
        for c in l.chars() {
            let numeric =
                c.is_ascii_digit() || c == '.' || ((c == '+' || c == '-') && cur.is_empty());
            if numeric != cur.chars().all(|d| d.is_ascii_digit() || "+-.".contains(d))
                && !cur.is_empty()
            {
                out.push(std::mem::take(&mut cur));
            }
            cur.push(c);
        }
        out.push(cur);
        out
    };
    let same = |want: &str, got: &str| -> bool {
        let (want, prefix) = match want.strip_suffix("...") {
            Some(w) => (w, true),
            None => (want, false),
        };
        let (w, g) = (tokens(want), tokens(got));
        if w.len() > g.len() || (!prefix && w.len() != g.len()) {
            return false;
        }
        w.iter().zip(&g).enumerate().all(|(i, (a, b))| {
            let last = i + 1 == w.len() && prefix;
            match (a.parse::<f64>(), b.parse::<f64>()) {
                (Ok(x), Ok(y)) if a.contains('.') => {
                    let decimals = a.len() - a.find('.').unwrap() - 1;
                    (x - y).abs() <= 5.0 * 10f64.powi(-(decimals as i32)) + 1e-9
                }
                _ if last => b.starts_with(a.as_str()),
                _ => a == b,
            }
        })
    };
    let mut printed = text.lines();
    for line in shown {
        assert!(
            printed.any(|p| same(line, p)),
            "README.md shows {line:?}, which `innfer demo` does not print (in that order):\n{text}"
        );
    }
}

#[test]
fn demo_prints_a_summary_and_writes_its_figures() {
    let tmp = TempDir::new("demo");
    // The README's command: default arguments, figures into innfer-demo/ under the current
    // directory.
    let out = Command::new(env!("CARGO_BIN_EXE_innfer"))
        .arg("demo")
        .current_dir(&tmp.0)
        .output()
        .unwrap();
    assert_ok(&out);
    let text = stdout(&out);
    check_readme_demo_output(&text);
    for label in 0..4 {
        assert!(text.contains(&format!("label {label}: x mean")), "{text}");
    }
    assert!(text.contains("found 1 of 1 modes"), "{text}");
    // The arm: every target, the paper's (1.5, 0) first, with the exact posterior beside it.
    for target in [
        "(1.500, 0.000)",
        "(1.800, 0.600)",
        "(1.500, -1.000)",
        "(0.900, 1.500)",
    ] {
        assert!(text.contains(&format!("y* = {target}: x mean")), "{text}");
    }
    assert_eq!(text.matches("exact posterior: mean").count(), 4, "{text}");
    // Each target is the end point of a known arm, printed as the true value; at (1.5, 0) the
    // elbow-up arm of highest prior density.
    let truths: Vec<Vec<f64>> = text
        .lines()
        .filter_map(|l| l.split("true value x_true (").nth(1))
        .map(|r| {
            r.trim_end_matches(')')
                .split(", ")
                .map(|v| v.parse().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(truths.len(), 4, "{text}");
    assert!(truths.iter().all(|t| t.len() == 4), "{truths:?}");
    assert!(truths[0][1] > 0.5 && truths[0][3] < -1.0, "{truths:?}");
    // Re-simulation errors are printed and small for the well-covered targets.
    let resim: Vec<f64> = text
        .lines()
        .filter_map(|l| l.split("‖f(x) − y*‖ = ").nth(1))
        .map(|r| r.split(';').next().unwrap().trim().parse().unwrap())
        .collect();
    assert_eq!(resim.len(), 4, "{text}");
    assert!(resim.iter().all(|&e| e.is_finite() && e < 0.5), "{resim:?}");
    assert!(resim[1..].iter().all(|&e| e < 0.05), "{resim:?}");
    let dir = tmp.path("innfer-demo");
    let posteriors = dir.join("gmm8_posteriors.png");
    let marginals = dir.join("gmm8_marginals.png");
    let arms = dir.join("kinematics_arms.png");
    let arm_marginals = dir.join("kinematics_marginals.png");
    for name in ["kinematics_arms.png", "kinematics_marginals.png"] {
        assert!(
            text.contains(&format!("wrote innfer-demo/{name}")),
            "{text}"
        );
    }
    assert!(
        text.contains("wrote innfer-demo/gmm8_posteriors.png"),
        "{text}"
    );
    assert!(
        text.contains("wrote innfer-demo/gmm8_marginals.png"),
        "{text}"
    );

    // The posterior panels: red sample dots over blue density shading.
    let px = check_figure(&posteriors);
    let red = px.iter().filter(|p| reddish(p)).count();
    let blue = px.iter().filter(|p| bluish(p)).count();
    assert!(red > 1000, "{red} red pixels");
    // (4000 dots per panel cover most of the shading; ~2500 blue pixels stay visible.)
    assert!(blue > 1500, "{blue} blue pixels");
    // The marginals: blue posterior bars, grey prior bars, red true-value lines.
    let px = check_figure(&marginals);
    let grey = px
        .iter()
        .filter(|p| p[0] == p[1] && p[1] == p[2] && (150..240).contains(&p[0]))
        .count();
    assert!(px.iter().filter(|p| bluish(p)).count() > 3000);
    assert!(px.iter().filter(|p| reddish(p)).count() > 300);
    assert!(grey > 3000, "{grey} grey pixels");

    // The arms: blue model arms, dark exact arms, red target crosses, a grey rail.
    let px = check_figure(&arms);
    let (w, h, _) = decode_png(&arms);
    assert!(h > 800 && w > 1500, "{w}×{h}");
    assert!(px.iter().filter(|p| bluish(p)).count() > 20_000);
    assert!(px.iter().filter(|p| reddish(p)).count() > 8 * 100);
    let rail = px.iter().filter(|p| **p == [120, 120, 120]).count();
    assert!(rail > 8 * 500, "{rail} rail pixels");
    // The arm marginals: blue posterior bars over grey prior bars, the exact outline in black,
    // the true values as red lines (four of them, ≥ 100 pixels tall, and their legend marks).
    let px = check_figure(&arm_marginals);
    let grey = px
        .iter()
        .filter(|p| p[0] == p[1] && p[1] == p[2] && (150..240).contains(&p[0]))
        .count();
    assert!(px.iter().filter(|p| bluish(p)).count() > 10_000);
    assert!(grey > 3000, "{grey} grey pixels");
    let red = px.iter().filter(|p| reddish(p)).count();
    assert!(red > 4 * 200, "{red} red pixels");

    // --out elsewhere, a directory that does not exist yet (created).
    let other = tmp.path("figs/nested");
    let out = innfer(&[
        &"demo", &"-n", &"50", &"--out", &other, &"--label", &"3", &"--arm-n", &"20",
    ]);
    assert_ok(&out);
    assert!(stdout(&out).contains("20 samples per target"));
    for name in [
        "gmm8_posteriors.png",
        "gmm8_marginals.png",
        "kinematics_arms.png",
        "kinematics_marginals.png",
        "msi_oximetry.png",
    ] {
        assert!(other.join(name).is_file(), "{name}");
    }

    // An --out that cannot be a directory.
    let file = tmp.path("a_file");
    std::fs::write(&file, b"x").unwrap();
    let out = innfer(&[&"demo", &"-n", &"10", &"--out", &file.join("sub")]);
    assert_fails_with(&out, &["--out", "a_file"]);
}

/// The figures the README links (docs/figures/, copies of `innfer demo`'s output) exist, are
/// PNGs of the demo's dimensions and stay small enough for a repository.
#[test]
fn readme_figures_exist_and_are_small() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let mut linked: Vec<&str> = readme
        .split("](")
        .skip(1)
        .filter_map(|s| s.split(')').next())
        .filter(|l| l.starts_with("docs/figures/") && l.ends_with(".png"))
        .collect();
    linked.sort();
    linked.dedup();
    assert_eq!(
        linked,
        [
            "docs/figures/gmm8_marginals.png",
            "docs/figures/gmm8_posteriors.png",
            "docs/figures/kinematics_arms.png",
            "docs/figures/kinematics_marginals.png",
            "docs/figures/msi_oximetry.png",
        ]
    );
    for figure in linked {
        let path = root.join(figure);
        check_figure(&path);
        let bytes = std::fs::metadata(&path).unwrap().len();
        // The camera maps are noise-like pixels, which PNG barely compresses.
        assert!(bytes < 700_000, "{figure}: {bytes} bytes");
    }
}
