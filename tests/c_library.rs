//! The C library (capi/, built from the innfer crate's C API) carries exactly the functions
//! include/innfer.h declares for hosted builds: libinnfer.so exports each of them and no other
//! `innfer_` symbol, and libinnfer.a defines the same set. The functions the header declares
//! only without `std` (the bare-metal panic hook) are in neither; examples/firmware/run.sh links
//! them in a firmware.
#![cfg(target_os = "linux")]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The functions include/innfer.h declares: (outside `#if !defined(INNFER_HAS_STD)`, inside).
fn header_functions() -> (BTreeSet<String>, BTreeSet<String>) {
    let header = std::fs::read_to_string(root().join("include/innfer.h")).unwrap();
    let (mut hosted, mut bare_metal) = (BTreeSet::new(), BTreeSet::new());
    // One entry per open #if: whether it holds the bare-metal-only declarations.
    let mut blocks: Vec<bool> = Vec::new();
    for line in header.lines() {
        if line.starts_with("#if") {
            blocks.push(line.trim() == "#if !defined(INNFER_HAS_STD)");
        } else if line.starts_with("#endif") {
            blocks.pop();
        }
        let declares = line.starts_with(|c: char| c.is_ascii_alphabetic())
            && !line.starts_with("typedef")
            && line.contains('(');
        if !declares {
            continue;
        }
        let before_paren = &line[..line.find('(').unwrap()];
        let name = before_paren.rsplit([' ', '*']).next().unwrap().to_string();
        if name.starts_with("innfer_") {
            if blocks.contains(&true) {
                bare_metal.insert(name);
            } else {
                hosted.insert(name);
            }
        }
    }
    (hosted, bare_metal)
}

/// The `innfer_` functions `nm` lists as defined text symbols of `lib` (`dynamic`: the
/// exported ones of a shared library).
fn defined_functions(lib: &Path, dynamic: bool) -> BTreeSet<String> {
    let mut cmd = Command::new("nm");
    cmd.arg("--defined-only");
    if dynamic {
        cmd.arg("-D");
    }
    let out = cmd
        .arg(lib)
        .output()
        .unwrap_or_else(|e| panic!("cannot run nm: {e}"));
    assert!(out.status.success(), "nm {} failed", lib.display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
            [_, "T", name] if name.starts_with("innfer_") => Some(name.to_string()),
            _ => None,
        })
        .collect()
}

#[test]
fn the_shared_library_exports_the_headers_functions() {
    let (hosted, bare_metal) = header_functions();
    assert!(hosted.len() >= 30 && hosted.contains("innfer_sample"));
    assert!(bare_metal.contains("innfer_set_panic_hook"));
    let exported = defined_functions(&common::native::lib_dir().join("libinnfer.so"), true);
    assert_eq!(exported, hosted);
}

#[test]
fn the_static_library_defines_the_headers_functions() {
    let (hosted, _) = header_functions();
    let defined = defined_functions(&common::native::lib_dir().join("libinnfer.a"), false);
    assert_eq!(defined, hosted);
}
