//! End-to-end tests of `innfer train` and `innfer eval`: tiny tasks, one or two epochs.

mod common;
use common::{TempDir, assert_ok, innfer, stderr, stdout};

use std::ffi::OsStr;
use std::path::Path;
use std::process::Output;

/// Non-zero exit (`code`) with a single `innfer: …` line on stderr containing every needle.
#[track_caller]
fn assert_fails_with(out: &Output, code: i32, needles: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert!(err.starts_with("innfer: "), "stderr: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "stderr: {err}");
    for n in needles {
        assert!(err.contains(n), "stderr {err:?} does not mention {n:?}");
    }
    assert!(!err.contains("panicked"), "stderr: {err}");
}

/// The small, fast architecture every test trains.
const TINY: [&str; 10] = [
    "--blocks",
    "2",
    "--hidden",
    "16",
    "--batch",
    "128",
    "--threads",
    "2",
    "--seed",
    "3",
];

fn train(out: &Path, source: &[&str], epochs: &str, extra: &[&str]) -> Output {
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"train"];
    for a in source {
        args.push(a);
    }
    args.push(&"--out");
    args.push(&out);
    args.push(&"--epochs");
    args.push(&epochs);
    // TINY's settings unless `extra` overrides them.
    for pair in TINY.chunks(2) {
        if !extra.contains(&pair[0]) {
            args.push(&pair[0]);
            args.push(&pair[1]);
        }
    }
    for a in extra {
        args.push(a);
    }
    innfer(&args)
}

/// `.npy` float32 [rows, cols] by hand.
fn write_npy(path: &Path, shape: &[usize], data: &[f32]) {
    let shape_text = match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_text}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for v in data {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}

fn write_csv(path: &Path, cols: usize, data: &[f32]) {
    let text: String = data
        .chunks(cols)
        .map(|r| {
            r.iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(",")
                + "\n"
        })
        .collect();
    std::fs::write(path, text).unwrap();
}

/// A toy regression data set: x ∈ R², y = x0 + x1 + noise, as f32 rows.
fn toy_data(n: usize) -> (Vec<f32>, Vec<f32>) {
    let mut state = 12345u64;
    let mut u = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as f64 / (1u64 << 31) as f64) as f32 - 0.5
    };
    let mut x = Vec::new();
    let mut y = Vec::new();
    for _ in 0..n {
        let (a, b) = (u(), u());
        x.extend([a, b]);
        y.push(a + b + 0.1 * u());
    }
    (x, y)
}

/// 50 samples (seed 1) as CSV text.
fn samples(model: &Path, y: &str) -> String {
    let out = innfer(&[
        &"sample",
        &model,
        &format!("--y={y}"),
        &"-n",
        &"50",
        &"--seed",
        &"1",
    ]);
    assert_ok(&out);
    stdout(&out)
}

/// The model file's tensors by name (the metadata's order in the file is not fixed).
fn tensors(model: &Path) -> Vec<(String, Vec<u8>)> {
    let bytes = std::fs::read(model).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut t: Vec<(String, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.data().to_vec()))
        .collect();
    t.sort();
    t
}

#[track_caller]
fn assert_png(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        path.display()
    );
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let reader = decoder.read_info().expect("a readable PNG");
    let info = reader.info();
    assert!(info.width >= 400 && info.height >= 200);
}

/// `sample` draws finite samples of the right shape from a trained model; `info` describes it.
#[track_caller]
fn check_normal_model(model: &Path, x_dim: usize, y_dim: usize, y: &str) {
    let out = innfer(&[&"info", &model]);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(
        text.contains(&format!("cinn (x {x_dim}, y {y_dim})")),
        "{text}"
    );
    assert!(text.contains("innfer 0.1.0 train"), "{text}");
    assert!(text.contains("standardised    x yes, y yes"), "{text}");
    assert!(text.contains("AllInOneBlock  cond"), "{text}");
    let out = innfer(&[&"sample", &model, &format!("--y={y}"), &"-n", &"5"]);
    assert_ok(&out);
    let rows: Vec<Vec<f32>> = stdout(&out)
        .lines()
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    assert_eq!(rows.len(), 5);
    for r in rows {
        assert_eq!(r.len(), x_dim);
        assert!(r.iter().all(|v| v.is_finite()), "{r:?}");
    }
}

/// `innfer eval MODEL --task TASK --n-obs … --n-samples … --n-test …` plus `extra` flags.
fn small_eval(
    model: &Path,
    task: &str,
    (n_obs, n_samples, n_test): (&str, &str, &str),
    extra: &[&dyn AsRef<OsStr>],
) -> Output {
    let mut args: Vec<&dyn AsRef<OsStr>> = vec![
        &"eval",
        &model,
        &"--task",
        &task,
        &"--n-obs",
        &n_obs,
        &"--n-samples",
        &n_samples,
        &"--n-test",
        &n_test,
    ];
    args.extend_from_slice(extra);
    innfer(&args)
}

#[test]
fn trains_every_builtin_task_into_a_normal_model() {
    let dir = TempDir::new("tasks");
    for (task, xd, yd, y) in [
        ("gmm8-all", 2, 8, "0,0,0,1,0,0,0,0"),
        ("gmm8-some", 2, 8, "1,0,0,0,0,0,0,0"),
        ("gmm8-none", 2, 8, "1,0,0,0,0,0,0,0"),
        ("kinematics", 4, 2, "1.5,0"),
        ("gaussian-linear", 10, 10, "0.1,0,0,0,0,0,0,0,0,-0.2"),
        (
            "msi-oximetry",
            4,
            8,
            "0.23,0.26,0.28,0.2,0.18,0.46,0.75,0.76",
        ),
        (
            "msi-oximetry-2l",
            6,
            8,
            "0.23,0.26,0.28,0.2,0.18,0.46,0.75,0.76",
        ),
    ] {
        let model = dir.path(&format!("{task}.safetensors"));
        let out = train(&model, &["--task", task, "--n-train", "600"], "1", &[]);
        assert_ok(&out);
        // Not a terminal: one line per epoch on stderr, the summary on stdout.
        let err = stderr(&out);
        assert!(err.contains("epoch 1/1  loss "), "{task}: {err}");
        // Camera noise is drawn afresh every epoch.
        assert_eq!(
            err.contains("simulations, fresh noise every epoch)"),
            task.starts_with("msi"),
            "{err}"
        );
        assert!(err.contains(" it/s"), "{err}");
        assert!(stdout(&out).starts_with("wrote "), "{}", stdout(&out));
        assert!(dir.path(&format!("{task}.safetensors.ckpt")).is_file());
        check_normal_model(&model, xd, yd, y);
    }
}

#[test]
fn trains_on_npy_and_on_csv_user_data() {
    let dir = TempDir::new("user");
    let (x, y) = toy_data(400);
    let (xn, yn) = (dir.path("x.npy"), dir.path("y.npy"));
    write_npy(&xn, &[400, 2], &x);
    // A 1-D y is one column.
    write_npy(&yn, &[400], &y);
    let model = dir.path("npy.safetensors");
    assert_ok(&train(
        &model,
        &["--x", xn.to_str().unwrap(), "--y", yn.to_str().unwrap()],
        "2",
        &[],
    ));
    check_normal_model(&model, 2, 1, "0.3");

    let (xc, yc) = (dir.path("x.csv"), dir.path("y.csv"));
    write_csv(&xc, 2, &x);
    write_csv(&yc, 1, &y);
    let model = dir.path("csv.safetensors");
    let out = train(
        &model,
        &["--x", xc.to_str().unwrap(), "--y", yc.to_str().unwrap()],
        "2",
        &[],
    );
    assert_ok(&out);
    assert!(stderr(&out).contains("400 rows"), "{}", stderr(&out));
    check_normal_model(&model, 2, 1, "-0.3");
    // The same numbers in either format train the same model.
    assert_eq!(
        samples(&dir.path("npy.safetensors"), "0.5"),
        samples(&model, "0.5")
    );
}

#[test]
fn resume_continues_where_the_checkpoint_stopped() {
    let dir = TempDir::new("resume");
    let source = ["--task", "gmm8-some", "--n-train", "500"];
    let full = dir.path("full.safetensors");
    assert_ok(&train(&full, &source, "2", &[]));

    let part = dir.path("part.safetensors");
    assert_ok(&train(&part, &source, "1", &[]));
    let out = train(&part, &source, "2", &["--resume"]);
    assert_ok(&out);
    let err = stderr(&out);
    assert!(err.contains("resuming after epoch 1"), "{err}");
    assert!(err.contains("epoch 2/2"), "{err}");
    assert!(!err.contains("epoch 1/2"), "{err}");
    // Interrupted after epoch 1 and resumed: the same model as one uninterrupted run.
    assert_eq!(
        samples(&full, "1,0,0,0,0,0,0,0"),
        samples(&part, "1,0,0,0,0,0,0,0")
    );
    assert_eq!(tensors(&full), tensors(&part));

    // A checkpoint of another architecture is refused, naming it.
    let out = train(&part, &source, "3", &["--resume", "--blocks", "3"]);
    assert_fails_with(&out, 1, &["part.safetensors.ckpt", "another architecture"]);
}

#[test]
fn eval_reports_every_metric_and_draws_png_figures() {
    let dir = TempDir::new("eval");
    for (task, extra) in [
        ("gmm8-some", &["mode", "off-mode", "KL gap, paired"][..]),
        ("kinematics", &["re-simulation error", "n/a"][..]),
        ("gaussian-linear", &["KL gap, paired"][..]),
    ] {
        let model = dir.path(&format!("{task}.safetensors"));
        assert_ok(&train(
            &model,
            &["--task", task, "--n-train", "500"],
            "1",
            &[],
        ));
        let figs = dir.path(&format!("figs-{task}"));
        let out = small_eval(&model, task, ("12", "40", "300"), &[&"--plot", &figs]);
        assert_ok(&out);
        let text = stdout(&out);
        for needle in [
            "held-out NLL",
            "MMD² unbiased, IMQ h ∈ {0.05, 0.2, 0.9}",
            "SBC KS p-value",
            "median calibration error",
            "x0",
        ]
        .iter()
        .chain(extra)
        {
            assert!(text.contains(needle), "{task}: no {needle:?} in\n{text}");
        }
        assert_png(&figs.join("sbc_ranks.png"));
        assert_png(&figs.join("calibration.png"));
    }
}

/// An msi model is judged by the prior box and by importance-sampled reference posteriors
/// instead of a raw-unit MMD².
#[test]
fn eval_of_an_msi_model_reports_the_box_and_the_reference_comparison() {
    let dir = TempDir::new("eval-msi");
    let model = dir.path("msi.safetensors");
    assert_ok(&train(
        &model,
        &["--task", "msi-oximetry", "--n-train", "500"],
        "1",
        &[],
    ));
    let out = small_eval(
        &model,
        "msi-oximetry",
        ("4", "30", "100"),
        &[&"--n-reference", &"2"],
    );
    assert_ok(&out);
    let text = stdout(&out);
    for needle in [
        "held-out NLL",
        "samples outside the prior box",
        " of 120 ",
        "SBC KS p-value",
        "mean calib. error",
        "against reference posteriors (importance sampling, effective sample size min",
        "for 2 observations:",
        "MMD² unbiased, IMQ, box-scaled to [0, 1]: mean",
        "median |mean − ref.|/ref. std",
        "x0 sO2",
        "x3 b_mie",
    ] {
        assert!(text.contains(needle), "no {needle:?} in\n{text}");
    }
    assert!(!text.contains("IMQ h ∈"), "{text}");
}

/// `--c2st` adds sbibm's classifier two-sample test (here with few samples, to stay quick).
#[test]
fn eval_runs_the_c2st_on_request() {
    let dir = TempDir::new("c2st");
    let model = dir.path("gl.safetensors");
    assert_ok(&train(
        &model,
        &["--task", "gaussian-linear", "--n-train", "500"],
        "1",
        &[],
    ));
    let out = small_eval(
        &model,
        "gaussian-linear",
        ("5", "20", "100"),
        &[&"--c2st", &"--c2st-samples", &"20"],
    );
    assert_ok(&out);
    let text = stdout(&out);
    assert!(
        text.contains("C2ST accuracy (10 observations × 20 samples)"),
        "{text}"
    );
}

/// The metrics tell a good model from a bad one: a gaussian-linear model trained a little
/// longer has a smaller KL gap and MMD than after a single tiny epoch.
#[test]
fn eval_numbers_improve_with_training() {
    let dir = TempDir::new("improve");
    let value = |text: &str, key: &str| -> f64 {
        let line = text.lines().find(|l| l.starts_with(key)).unwrap();
        line[key.len()..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let mut gaps = Vec::new();
    for (name, epochs, lr) in [("short", "1", "1e-4"), ("long", "6", "3e-3")] {
        let model = dir.path(&format!("{name}.safetensors"));
        assert_ok(&train(
            &model,
            &["--task", "gaussian-linear", "--n-train", "3000"],
            epochs,
            &["--lr", lr],
        ));
        let out = small_eval(&model, "gaussian-linear", ("10", "100", "2000"), &[]);
        assert_ok(&out);
        gaps.push(value(
            &stdout(&out),
            "KL gap, paired with exact log p(x|y) (nats)",
        ));
    }
    assert!(gaps[1] < gaps[0], "KL gaps {gaps:?}");
}

#[test]
fn bad_input_gets_one_line_naming_the_culprit() {
    let dir = TempDir::new("bad");
    let out_model = dir.path("m.safetensors");

    // Unknown task: a usage error (exit 2) listing the tasks.
    let out = train(&out_model, &["--task", "gmm9"], "1", &[]);
    assert_fails_with(&out, 2, &["gmm9", "gmm8-some", "kinematics"]);
    let out = innfer(&[&"eval", &out_model, &"--task", &"nope"]);
    assert_fails_with(&out, 2, &["nope", "gaussian-linear"]);
    // Neither or both data sources.
    let out = innfer(&[&"train", &"--out", &out_model]);
    assert_fails_with(&out, 2, &["--task"]);
    let out = train(
        &out_model,
        &["--task", "gmm8-all", "--x", "a.npy", "--y", "b.npy"],
        "1",
        &[],
    );
    assert_fails_with(&out, 2, &["--task", "--x"]);

    let (x, y) = toy_data(50);
    let (xn, yn) = (dir.path("x.npy"), dir.path("y.npy"));
    write_npy(&xn, &[50, 2], &x);
    write_npy(&yn, &[50, 1], &y);
    let s = |p: &Path| p.to_str().unwrap().to_string();

    // Missing x file.
    let missing = dir.path("missing.npy");
    let out = train(&out_model, &["--x", &s(&missing), "--y", &s(&yn)], "1", &[]);
    assert_fails_with(&out, 1, &["--x", "missing.npy"]);
    // Row mismatch.
    let y_short = dir.path("y_short.npy");
    write_npy(&y_short, &[40, 1], &y[..40]);
    let out = train(&out_model, &["--x", &s(&xn), "--y", &s(&y_short)], "1", &[]);
    assert_fails_with(&out, 1, &["50 rows", "y_short.npy", "40"]);
    // Malformed numbers in a CSV file: the line and field.
    let bad_csv = dir.path("bad.csv");
    std::fs::write(&bad_csv, "0.1,0.2\n0.3,zero\n").unwrap();
    let out = train(&out_model, &["--x", &s(&bad_csv), "--y", &s(&yn)], "1", &[]);
    assert_fails_with(&out, 1, &["bad.csv", "line 2, field 2", "`zero`"]);
    // Non-finite data.
    let nan_csv = dir.path("nan.csv");
    std::fs::write(&nan_csv, "0.1\nnan\n").unwrap();
    let out = train(&out_model, &["--x", &s(&xn), "--y", &s(&nan_csv)], "1", &[]);
    assert_fails_with(&out, 1, &["nan.csv", "row 2"]);
    // Not a .npy file.
    let junk = dir.path("junk.npy");
    std::fs::write(&junk, b"not an array").unwrap();
    let out = train(&out_model, &["--x", &s(&junk), "--y", &s(&yn)], "1", &[]);
    assert_fails_with(&out, 1, &["junk.npy"]);

    // --resume without a checkpoint.
    let out = train(&out_model, &["--task", "gmm8-all"], "1", &["--resume"]);
    assert_fails_with(&out, 1, &["--resume", "m.safetensors.ckpt"]);
    // An output directory that does not exist.
    let nowhere = dir.path("no/such/dir/m.safetensors");
    let out = train(&nowhere, &["--task", "gmm8-all"], "1", &[]);
    assert_fails_with(&out, 1, &["--out", "does not exist"]);
    // Bad numbers in flags.
    let out = train(&out_model, &["--task", "gmm8-all"], "1", &["--lr", "0"]);
    assert_fails_with(&out, 2, &["--lr", "`0`"]);

    // eval: a missing model, and a model of another task.
    let out = innfer(&[
        &"eval",
        &dir.path("none.safetensors"),
        &"--task",
        &"gmm8-all",
    ]);
    assert_fails_with(&out, 1, &["none.safetensors"]);
    assert_ok(&train(
        &out_model,
        &["--task", "gmm8-all", "--n-train", "300"],
        "1",
        &[],
    ));
    let out = innfer(&[&"eval", &out_model, &"--task", &"kinematics"]);
    assert_fails_with(
        &out,
        1,
        &["m.safetensors", "x 2, y 8", "kinematics", "x 4, y 2"],
    );
}

#[test]
fn train_and_eval_have_help_with_an_example() {
    for cmd in ["train", "eval"] {
        let out = innfer(&[&cmd, &"--help"]);
        assert_ok(&out);
        let text = stdout(&out);
        assert!(text.contains(&format!("innfer {cmd} ")), "{text}");
        assert!(text.contains("gmm8-some"), "{text}");
    }
}

#[test]
fn the_paper_inn_objective_trains_a_model_with_the_inn_layout() {
    let dir = TempDir::new("inn_objective");
    let model = dir.path("inn.safetensors");
    let out = train(
        &model,
        &["--task", "gmm8-all"],
        "1",
        &[
            "--objective",
            "inn",
            "--blocks",
            "2",
            "--hidden",
            "16",
            "--n-train",
            "512",
            "--batch",
            "64",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info = innfer(&[&"info", &model]);
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(text.contains("layout          inn (x 2"), "{text}");
    assert!(
        text.contains("GLOWCouplingBlock"),
        "the paper's blocks: {text}"
    );
    // eval measures an INN by its samples: no density of x given y, so no NLL or KL gap.
    let out = small_eval(&model, "gmm8-all", ("5", "20", "100"), &[]);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(
        text.contains("held-out NLL, KL gap") && text.contains("(an INN: no density of x given y)"),
        "{text}"
    );
    assert!(
        text.contains("MMD² unbiased") && text.contains("label    mode"),
        "{text}"
    );
    let samples = dir.path("x.csv");
    let out = innfer(&[
        &"sample",
        &model,
        &"--y",
        &"1,0,0,0,0,0,0,0",
        &"-n",
        &"10",
        &"--output",
        &samples,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&samples).unwrap().lines().count(),
        10
    );
}
