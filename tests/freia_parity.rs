//! innfer computes what FrEIA computes: on every committed fixture (tests/fixtures/*, made by
//! tests/fixtures/make_fixtures.py with FrEIA 0.2 and FrEIA head), forward output, inverse
//! output and both log-determinants agree with FrEIA's within 1e-5 relative plus 1e-6
//! absolute, at batch 1 and 257, on every GEMM kernel this CPU has; and inverse(forward(x))
//! gives x back.

use std::path::{Path, PathBuf};

use innfer::{Isa, Model, Session};
use safetensors::SafeTensors;

const RTOL: f32 = 1e-5;
const ATOL: f32 = 1e-6;

fn fixture_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("tests/fixtures exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("model.safetensors").is_file())
        .collect();
    dirs.sort();
    dirs
}

fn tensor(st: &SafeTensors<'_>, name: &str) -> Option<Vec<f32>> {
    let view = st.tensor(name).ok()?;
    Some(
        view.data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

/// Largest `|a − b| / (ATOL + RTOL·|b|)`: at most 1 passes.
fn worst_ratio(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .map(|(g, w)| (g - w).abs() / (ATOL + RTOL * w.abs()))
        .fold(0.0, f32::max)
}

fn isas() -> Vec<Isa> {
    [Isa::Portable, Isa::Avx2Fma, Isa::Avx512]
        .into_iter()
        .filter(|i| i.is_available())
        .collect()
}

struct Outcome {
    name: String,
    worst: f32,
    roundtrip: f32,
}

fn check_fixture(dir: &Path, isa: Isa) -> Outcome {
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let model = Model::from_file(dir.join("model.safetensors"))
        .unwrap_or_else(|e| panic!("{name}: model does not load: {e}"));
    let bytes = std::fs::read(dir.join("reference.safetensors")).unwrap();
    let refs = SafeTensors::deserialize(&bytes).unwrap();
    let d = model.dim();
    let mut worst = 0.0f32;
    let mut roundtrip = 0.0f32;
    for batch in ["b1", "b257"] {
        let x = tensor(&refs, &format!("x_{batch}")).unwrap();
        let rows = x.len() / d;
        let cond = tensor(&refs, &format!("c_{batch}"));
        let mut session = Session::new(&model, rows).unwrap();
        session.set_isa(isa).unwrap();

        let mut out = vec![0.0; x.len()];
        let mut logdet = vec![0.0; rows];
        session
            .forward(&x, cond.as_deref(), &mut out, Some(&mut logdet))
            .unwrap();
        let want_out = tensor(&refs, &format!("fwd_out_{batch}")).unwrap();
        let want_ld = tensor(&refs, &format!("fwd_logdet_{batch}")).unwrap();
        let r_out = worst_ratio(&out, &want_out);
        let r_ld = worst_ratio(&logdet, &want_ld);

        let z = tensor(&refs, &format!("inv_in_{batch}")).unwrap();
        let mut xi = vec![0.0; z.len()];
        let mut ldi = vec![0.0; rows];
        session
            .inverse(&z, cond.as_deref(), &mut xi, Some(&mut ldi))
            .unwrap();
        let want_x = tensor(&refs, &format!("inv_out_{batch}")).unwrap();
        let want_ldi = tensor(&refs, &format!("inv_logdet_{batch}")).unwrap();
        let r_inv = worst_ratio(&xi, &want_x);
        let r_ldi = worst_ratio(&ldi, &want_ldi);
        for (what, r) in [
            ("forward output", r_out),
            ("forward logdet", r_ld),
            ("inverse output", r_inv),
            ("inverse logdet", r_ldi),
        ] {
            assert!(
                r <= 1.0,
                "{name} [{batch}, {}]: {what} differs from FrEIA by {r:.2}× the tolerance",
                isa.name()
            );
        }
        worst = worst.max(r_out).max(r_ld).max(r_inv).max(r_ldi);

        // inverse(forward(x)) = x
        let mut back = vec![0.0; x.len()];
        session
            .inverse(&out, cond.as_deref(), &mut back, None)
            .unwrap();
        let rt = back
            .iter()
            .zip(&x)
            .map(|(b, x)| (b - x).abs() / (1.0 + x.abs()))
            .fold(0.0, f32::max);
        assert!(
            rt <= 1e-5,
            "{name} [{batch}]: inverse(forward(x)) is off by {rt:e}"
        );
        roundtrip = roundtrip.max(rt);
    }
    Outcome {
        name,
        worst,
        roundtrip,
    }
}

#[test]
fn every_fixture_matches_freia_on_every_kernel() {
    let dirs = fixture_dirs();
    assert!(
        dirs.len() >= 12,
        "expected at least 12 fixtures, found {}",
        dirs.len()
    );
    for isa in isas() {
        for dir in &dirs {
            let o = check_fixture(dir, isa);
            println!(
                "{:<8} {:<40} worst {:.3} of tolerance, roundtrip {:.1e}",
                isa.name(),
                o.name,
                o.worst,
                o.roundtrip
            );
        }
    }
}
