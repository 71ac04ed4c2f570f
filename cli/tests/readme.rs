//! Every `innfer …` command line in README.md's shell blocks, run as written.
//!
//! Each ```sh block runs in a fresh directory holding the files its commands name:
//! `model.safetensors` (a copy of the shipped arm model: a cINN with x_dim 4 and y_dim 2, the
//! layout of the README's export example), `y_obs.npy` and `y.npy` (the observation
//! (1.5, 0)), `x.npy`/`y.csv` (400 simulated arms and their end points, for
//! `train --x … --y …`) and a `models/` holding only the shipped oximetry model (for
//! `innfer image`; the commands that remake the shipped models write beside it). The commands run in the order shown, so later ones read what earlier
//! ones wrote. Inference commands run exactly as written. Training and evaluation run with the
//! README's arguments but smaller sizes, so that the test takes seconds instead of the
//! minutes the README's settings take: `train` gets `--epochs 1` (replacing the README's
//! value, if any) and `--n-train 600` for a built-in task (likewise); `train … --resume` is preceded by
//! the same command without `--resume` (which writes the checkpoint it resumes from) and
//! resumes to epoch 2; `eval` gets `--n-obs 12 --n-samples 40 --n-test 300` (replacing the README's values, and
//! `--c2st-samples 20` with `--c2st`); `bench` gets
//! `--reps 1 --min-time 0.01`; `image` gets `--n 2`. A README command this test does not know how to run fails it.

mod common;
use common::TempDir;

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `innfer` command lines of README.md's ```sh blocks, block by block, comments removed
/// and `\` continuations joined.
fn readme_commands() -> Vec<Vec<Vec<String>>> {
    let text = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut blocks = Vec::new();
    let (mut inside, mut is_sh) = (false, false);
    let mut block: Vec<Vec<String>> = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        if let Some(info) = line.strip_prefix("```") {
            if !inside {
                is_sh = info.trim() == "sh";
            } else if is_sh && !block.is_empty() {
                blocks.push(std::mem::take(&mut block));
            }
            inside = !inside;
            continue;
        }
        if !(inside && is_sh) {
            continue;
        }
        let line = match line.find(" #") {
            Some(i) => &line[..i],
            None => line,
        };
        pending.push_str(line.trim_end().trim_end_matches('\\'));
        pending.push(' ');
        if line.trim_end().ends_with('\\') {
            continue;
        }
        let command = std::mem::take(&mut pending);
        let command = command.trim();
        if let Some(args) = command.strip_prefix("innfer ") {
            assert!(
                !args.contains(['"', '\'', '$', '`', '|', '>', '<']),
                "README command {command:?}: quoting and shell syntax are beyond this test"
            );
            block.push(args.split_whitespace().map(str::to_string).collect());
        }
    }
    blocks
}

fn write_npy(path: &Path, shape: &[usize], data: &[f32]) {
    assert_eq!(shape.iter().product::<usize>(), data.len());
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = if shape.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
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

/// The float32 data of an `.npy` file the CLI wrote (its header ends at a multiple of 64).
fn read_npy(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    bytes[10 + header..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// The files the README's commands read (and `models/`, where the commands that remake the
/// shipped models write).
fn prepare(dir: &Path) {
    std::fs::create_dir_all(dir.join("models")).unwrap();
    std::fs::copy(
        root().join("models/msi_oximetry.safetensors"),
        dir.join("models/msi_oximetry.safetensors"),
    )
    .unwrap();
    std::fs::copy(
        root().join("models/kinematics.safetensors"),
        dir.join("model.safetensors"),
    )
    .unwrap();
    write_npy(&dir.join("y_obs.npy"), &[1, 2], &[1.5, 0.0]);
    write_npy(&dir.join("y.npy"), &[2], &[1.5, 0.0]);
    // 400 arms from the prior (a small fixed generator) and their end points.
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut normal = move || {
        let mut u = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 11) + 1) as f64 / (1u64 << 53) as f64
        };
        let (a, b) = (u(), u());
        (-2.0 * a.ln()).sqrt() * (std::f64::consts::TAU * b).cos()
    };
    let (mut x, mut y_csv) = (Vec::new(), String::new());
    for _ in 0..400 {
        let p: Vec<f64> = [0.25, 0.5, 0.5, 0.5].iter().map(|s| s * normal()).collect();
        let (a1, a2, a3) = (p[1], p[1] + p[2], p[1] + p[2] + p[3]);
        let end = (
            0.5 * a1.cos() + 0.5 * a2.cos() + a3.cos(),
            p[0] + 0.5 * a1.sin() + 0.5 * a2.sin() + a3.sin(),
        );
        x.extend(p.iter().map(|&v| v as f32));
        y_csv.push_str(&format!("{},{}\n", end.0 as f32, end.1 as f32));
    }
    write_npy(&dir.join("x.npy"), &[400, 4], &x);
    std::fs::write(dir.join("y.csv"), y_csv).unwrap();
}

/// `args` with `--flag value` set: replaced where given, else appended.
fn set(args: &[String], flag: &str, value: &str) -> Vec<String> {
    let mut out = args.to_vec();
    match out.iter().position(|a| a == flag) {
        Some(i) => out[i + 1] = value.to_string(),
        None => out.extend([flag.to_string(), value.to_string()]),
    }
    out
}

/// `args` with `--flag value` appended unless the flag is there.
fn default(args: &[String], flag: &str, value: &str) -> Vec<String> {
    if args.iter().any(|a| a == flag) {
        args.to_vec()
    } else {
        set(args, flag, value)
    }
}

fn value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    let i = args.iter().position(|a| a == flag)?;
    args.get(i + 1).map(String::as_str)
}

/// Runs `innfer args` in `dir`; returns stdout and stderr.
fn innfer(dir: &Path, shown: &str, args: &[String]) -> (String, String) {
    println!("README: innfer {shown}\n  runs: innfer {}", args.join(" "));
    let out = Command::new(env!("CARGO_BIN_EXE_innfer"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the innfer binary runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "README command `innfer {shown}` (run as `innfer {}`) failed ({}):\n{stderr}",
        args.join(" "),
        out.status
    );
    (stdout, stderr)
}

#[test]
fn every_readme_innfer_command_runs() {
    let blocks = readme_commands();
    let all: Vec<&Vec<String>> = blocks.iter().flatten().collect();
    // The README shows at least the inference and the training commands.
    for sub in ["info", "sample", "forward", "inverse", "train", "eval"] {
        assert!(
            all.iter().any(|a| a[0] == sub),
            "README.md shows no `innfer {sub}` command; {all:?}"
        );
    }
    for (b, block) in blocks.iter().enumerate() {
        let tmp = TempDir::new(&format!("block{b}"));
        let dir = &tmp.0;
        prepare(dir);
        let mut sampled: Option<(String, Vec<f32>)> = None;
        for args in block {
            let shown = args.join(" ");
            match args[0].as_str() {
                "info" | "sample" | "forward" | "inverse" => {
                    let (stdout, _) = innfer(dir, &shown, args);
                    if args[0] == "info" {
                        assert!(stdout.contains("cinn"), "`innfer {shown}`:\n{stdout}");
                    }
                    for flag in ["--output", "--logdet"] {
                        if let Some(file) = value(args, flag) {
                            assert!(dir.join(file).is_file(), "`innfer {shown}` wrote no {file}");
                        }
                    }
                    let output = value(args, "--output").map(str::to_string);
                    match (args[0].as_str(), output) {
                        (kind @ ("sample" | "inverse"), Some(file)) if file.ends_with(".npy") => {
                            let x = read_npy(&dir.join(&file));
                            assert!(x.iter().all(|v| v.is_finite()), "`innfer {shown}`");
                            // The inverse of the forward pass of the samples gives them back.
                            if let (Some((f, want)), "inverse") = (&sampled, kind)
                                && *f == file
                            {
                                assert_eq!(x.len(), want.len());
                                let worst = x
                                    .iter()
                                    .zip(want)
                                    .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
                                    .fold(0.0f32, f32::max);
                                assert!(worst < 1e-4, "`innfer {shown}`: round trip {worst}");
                                println!("  round trip of the samples: worst {worst:.1e}");
                            }
                            if kind == "sample" {
                                sampled = Some((file, x));
                            }
                        }
                        _ => {}
                    }
                }
                "train" => {
                    let mut run = set(args, "--epochs", "1");
                    if run.iter().any(|a| a == "--task") {
                        run = set(&run, "--n-train", "600");
                    }
                    if run.iter().any(|a| a == "--resume") {
                        let first: Vec<String> =
                            run.iter().filter(|a| *a != "--resume").cloned().collect();
                        innfer(dir, &shown, &first);
                        run = set(&run, "--epochs", "2");
                        let (_, stderr) = innfer(dir, &shown, &run);
                        assert!(
                            stderr.contains("resuming after epoch 1"),
                            "`innfer {shown}`:\n{stderr}"
                        );
                    } else {
                        innfer(dir, &shown, &run);
                    }
                    let out = value(args, "--out").expect("train --out");
                    assert!(dir.join(out).is_file(), "`innfer {shown}` wrote no {out}");
                }
                "eval" => {
                    let mut run = set(args, "--n-obs", "12");
                    run = set(&run, "--n-samples", "40");
                    run = set(&run, "--n-test", "300");
                    if args.iter().any(|a| a == "--c2st") {
                        run = set(&run, "--c2st-samples", "20");
                    }
                    let (stdout, _) = innfer(dir, &shown, &run);
                    assert!(
                        stdout.contains("held-out NLL"),
                        "`innfer {shown}`:\n{stdout}"
                    );
                    if let Some(figs) = value(args, "--plot") {
                        for f in ["sbc_ranks.png", "calibration.png"] {
                            assert!(dir.join(figs).join(f).is_file(), "`innfer {shown}`: {f}");
                        }
                    }
                }
                "phantom" => {
                    innfer(dir, &shown, args);
                    let out = value(args, "--out").expect("phantom --out");
                    assert!(dir.join(out).is_file(), "`innfer {shown}` wrote no {out}");
                }
                "image" => {
                    let run = set(args, "--n", "2");
                    let (stdout, _) = innfer(dir, &shown, &run);
                    assert!(stdout.contains("frames/s"), "`innfer {shown}`:\n{stdout}");
                    let maps = dir.join(value(args, "--out").expect("image --out"));
                    for f in ["mean.npy", "std.npy", "quantiles.npy", "sO2.png"] {
                        assert!(maps.join(f).is_file(), "`innfer {shown}`: {f}");
                    }
                }
                "bench" => {
                    let mut run = default(args, "--reps", "1");
                    run = default(&run, "--min-time", "0.01");
                    innfer(dir, &shown, &run);
                }
                other => panic!(
                    "README.md shows `innfer {shown}`: this test does not know how to run \
                     `innfer {other}` (teach cli/tests/readme.rs)"
                ),
            }
        }
    }
}
