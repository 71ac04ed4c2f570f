//! End-to-end tests of `innfer phantom`: the files are the library's phantom, as .npy.

mod common;
use common::{TempDir, assert_ok, innfer, stderr, stdout};

use innfer::tasks::phantom::{RatioBaseline, render_phantom};

/// An .npy file's shape and f32 values: version 1.0, `<f4`, C order, as innfer writes it
/// (read here directly: the library's reader takes 1-D and 2-D arrays only).
fn read_npy(path: &std::path::Path) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    assert!(header.contains("'descr': '<f4'") && header.contains("'fortran_order': False"));
    let shape = header
        .split("'shape': (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    let shape = shape
        .split(',')
        .filter_map(|d| d.trim().parse().ok())
        .collect();
    let data = bytes[10 + header_len..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    (shape, data)
}

#[test]
fn writes_the_cube_the_truth_and_the_ratio_map_of_the_library() {
    let dir = TempDir::new("phantom");
    let (cube, truth, map) = (
        dir.path("cube.npy"),
        dir.path("truth.npy"),
        dir.path("map.npy"),
    );
    let out = innfer(&[
        &"phantom",
        &"--out",
        &cube,
        &"--truth",
        &truth,
        &"--seed",
        &"3",
        &"--ratio-map",
        &map,
    ]);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(
        text.contains("256×256×8 raw band values") && text.contains("seed 3"),
        "{text}"
    );
    let expected = render_phantom(3);
    assert_eq!(read_npy(&cube), (vec![256, 256, 8], expected.cube.clone()));
    assert_eq!(read_npy(&truth), (vec![256, 256, 4], expected.truth));
    let baseline = RatioBaseline::nominal_tissue(100_000, 3);
    assert_eq!(
        read_npy(&map),
        (vec![256, 256], baseline.map(&expected.cube))
    );
    // The default seed is fixed: two runs give the same cube.
    let again = dir.path("again.npy");
    assert_ok(&innfer(&[&"phantom", &"--out", &cube, &"--truth", &truth]));
    assert_ok(&innfer(&[&"phantom", &"--out", &again, &"--truth", &truth]));
    assert_eq!(read_npy(&cube), read_npy(&again));
    assert_eq!(read_npy(&cube).1, render_phantom(0).cube);
}

#[test]
fn refuses_what_it_cannot_write_before_rendering() {
    let dir = TempDir::new("phantom-bad");
    let truth = dir.path("truth.npy");
    for (out, needle) in [
        (dir.path("cube.csv"), "name a .npy file"),
        (dir.path("missing/cube.npy"), "does not exist"),
    ] {
        let run = innfer(&[&"phantom", &"--out", &out, &"--truth", &truth]);
        assert_eq!(run.status.code(), Some(1));
        let err = stderr(&run);
        assert!(
            err.starts_with("innfer: --out ") && err.contains(needle),
            "{err}"
        );
        assert!(!truth.exists());
    }
    let run = innfer(&[&"phantom", &"--truth", &truth]);
    assert_eq!(run.status.code(), Some(2), "{}", stderr(&run));
    assert!(stderr(&run).contains("innfer phantom --help"));
}

#[test]
fn has_help_with_an_example_and_is_listed() {
    let out = innfer(&[&"phantom", &"--help"]);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(
        text.contains("Example") && text.contains("innfer phantom --out "),
        "{text}"
    );
    assert!(text.contains("docs/tasks.md §phantom"), "{text}");
    assert!(stdout(&innfer(&[&"--help"])).contains("  phantom "));
}
