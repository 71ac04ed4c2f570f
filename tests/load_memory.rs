//! Loading a model file takes little more memory than the model itself: the peak resident
//! memory of loading the large benchmark model (about 30 MB of f32 weights) with
//! `Model::from_file`, creating a batch-1 session and drawing one sample is at most the
//! process's peak before loading + the packed weights + the session + 5 MB. (Reading the whole
//! file first would need the file's 30 MB on top.)
//!
//! The measurement runs in a child process (this test binary again, this test alone), so that
//! neither the parent's copy of the model nor other tests count. Linux only: it reads the
//! peak (`VmHWM`) from /proc/self/status.
#![cfg(target_os = "linux")]

mod common;

use std::process::Command;

use innfer::{Model, Session};

/// Set in the child to the model file it loads.
const CHILD: &str = "INNFER_LOAD_MEMORY_MODEL";
const TEST: &str = "loading_a_file_needs_little_more_than_the_weights";
const SLACK: usize = 5 << 20;

/// Peak resident memory of this process so far, in bytes.
fn peak_rss() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM in /proc/self/status");
    let kb: usize = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kb * 1024
}

fn child(path: &str) {
    let baseline = peak_rss();
    let model = Model::from_file(path).unwrap();
    let session_bytes = Session::arena_bytes(&model, 1).unwrap();
    let mut session = Session::new(&model, 1).unwrap();
    let y = vec![0.5; model.layout().y_dim()];
    let mut x = vec![0.0; model.layout().x_dim()];
    session.sample(&y, 1, &mut x).unwrap();
    assert!(x.iter().all(|v| v.is_finite()));
    let peak = peak_rss();
    let weights = model.weight_bytes();
    let bound = baseline + weights + session_bytes + SLACK;
    println!(
        "peak {peak} B = baseline {baseline} + {} B; weights {weights} B, session {session_bytes} B; bound {bound} B",
        peak - baseline
    );
    assert!(
        peak <= bound,
        "peak resident memory {peak} B exceeds baseline {baseline} + weights {weights} + session {session_bytes} + 5 MiB = {bound} B"
    );
}

#[test]
fn loading_a_file_needs_little_more_than_the_weights() {
    if let Ok(path) = std::env::var(CHILD) {
        child(&path);
        return;
    }
    let path = std::env::temp_dir().join(format!("innfer-load-memory-{}.st", std::process::id()));
    std::fs::write(&path, common::glow_large().to_bytes()).unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, &path)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    // The child's harness must really have run the measurement (libtest may print the test's
    // name on the same line).
    let Some(at) = stdout.find("peak ") else {
        panic!("child did not measure:\n{stdout}");
    };
    println!("{}", stdout[at..].lines().next().unwrap_or(""));
}
