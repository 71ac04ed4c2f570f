//! `Model::from_file` reads a file a tensor at a time; it must load exactly what
//! `Model::from_bytes` loads from the same bytes, and refuse exactly what it refuses.

mod common;

use std::path::{Path, PathBuf};

use common::{glow_cinn, glow_inn};
use innfer::{Error, LoadOptions, Model, Session, WeightStorage};

/// A scratch directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("innfer-load-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The inverse pass and its log-determinant on a few fixed rows: bit-identical models give
/// bit-identical results.
fn fingerprint(model: &Model) -> Vec<u32> {
    let (d, c, rows) = (model.dim(), model.cond_dim(), 3);
    let z: Vec<f32> = (0..rows * d).map(|i| (i as f32 * 0.37).sin()).collect();
    let cond: Vec<f32> = (0..rows * c).map(|i| (i as f32 * 0.51).cos()).collect();
    let mut x = vec![0.0; rows * d];
    let mut ld = vec![0.0; rows];
    let mut s = Session::new(model, rows).unwrap();
    s.inverse(&z, (c > 0).then_some(&cond[..]), &mut x, Some(&mut ld))
        .unwrap();
    x.iter().chain(&ld).map(|v| v.to_bits()).collect()
}

fn fixture_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut out: Vec<PathBuf> = std::fs::read_dir(root)
        .map(|dirs| {
            dirs.flatten()
                .map(|d| d.path().join("model.safetensors"))
                .filter(|p| p.exists())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

#[test]
fn a_file_loads_exactly_as_its_bytes() {
    let tmp = TempDir::new("same");
    let mut files = fixture_files();
    files.push(tmp.write("cinn.safetensors", &glow_cinn(7, 3, 32, 3, 5).to_bytes()));
    files.push(tmp.write("inn.safetensors", &glow_inn(2, 6, 2, 2, 4, 3).to_bytes()));
    assert!(files.len() > 2, "no fixtures found");
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        for storage in [WeightStorage::F32, WeightStorage::Bf16, WeightStorage::F16] {
            let options = LoadOptions {
                weight_storage: storage,
                ..Default::default()
            };
            let from_file = Model::from_file_with(path, &options).unwrap();
            let from_bytes = Model::from_bytes_with(&bytes, &options).unwrap();
            assert_eq!(from_file.weight_bytes(), from_bytes.weight_bytes());
            assert_eq!(from_file.weight_storage(), storage);
            assert_eq!(
                fingerprint(&from_file),
                fingerprint(&from_bytes),
                "{} with {storage:?}",
                path.display()
            );
        }
    }
}

#[test]
fn a_large_file_loads_exactly_as_its_bytes() {
    // Over 8 MiB of weights: on Linux they go to the huge-page region (src/kernels/gemm/memory.rs)
    // rather than one heap allocation each.
    let tmp = TempDir::new("large");
    let bytes = common::glow_chain(64, 3, 256, 2, 12, 9).to_bytes();
    let path = tmp.write("large.safetensors", &bytes);
    for storage in [WeightStorage::F32, WeightStorage::Bf16] {
        let options = LoadOptions {
            weight_storage: storage,
            ..Default::default()
        };
        let from_file = Model::from_file_with(&path, &options).unwrap();
        let from_bytes = Model::from_bytes_with(&bytes, &options).unwrap();
        if storage == WeightStorage::F32 {
            assert!(from_file.weight_bytes() > 8 << 20);
        }
        assert_eq!(fingerprint(&from_file), fingerprint(&from_bytes));
    }
}

/// The error a file gets is the one its bytes get, a format error naming the file besides.
fn same_error(path: &Path, bytes: &[u8], what: &str) {
    let from_bytes = Model::from_bytes(bytes).err();
    let from_file = Model::from_file(path).err();
    match (&from_bytes, &from_file) {
        (Some(Error::Format(b)), Some(Error::Format(f))) => {
            assert_eq!(f, &format!("{}: {b}", path.display()), "{what}");
        }
        _ => assert_eq!(from_file, from_bytes, "{what}"),
    }
    assert!(from_file.is_some(), "{what}: loaded");
}

#[test]
fn a_broken_file_fails_as_its_bytes_do() {
    let tmp = TempDir::new("broken");
    let good = glow_cinn(5, 3, 16, 2, 1).to_bytes();
    // Cut in the length prefix, the JSON header and the data section.
    for cut in [0, 4, 8, 20, good.len() / 2, good.len() - 1] {
        let path = tmp.write("cut.safetensors", &good[..cut]);
        same_error(&path, &good[..cut], &format!("cut at {cut}"));
    }
    // Bytes past the data the header describes.
    let mut long = good.clone();
    long.extend_from_slice(&[0; 3]);
    same_error(
        &tmp.write("long.safetensors", &long),
        &long,
        "trailing bytes",
    );
    // A corrupt header, an implausible header length, and not a safetensors file at all.
    let mut corrupt = good.clone();
    corrupt[10] = b'{';
    corrupt[11] = 0xff;
    same_error(
        &tmp.write("c.safetensors", &corrupt),
        &corrupt,
        "corrupt JSON",
    );
    let mut huge = good.clone();
    huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    same_error(&tmp.write("h.safetensors", &huge), &huge, "huge header");
    let text = b"this is not a model at all, just some text";
    same_error(&tmp.write("t.safetensors", text), text, "text");
    // Errors found in the tensors themselves (a missing tensor, a NaN) carry no path.
    let mut f = glow_cinn(5, 3, 16, 2, 1);
    f.tensors.remove("module_list.2.subnet2.2.bias");
    let missing = f.to_bytes();
    same_error(&tmp.write("m.safetensors", &missing), &missing, "missing");
    let mut f = glow_cinn(5, 3, 16, 2, 1);
    let mut w = vec![0.1f32; 16 * 5];
    w[17] = f32::NAN;
    f.f32("module_list.0.subnet1.0.weight", &[16, 5], &w);
    let nan = f.to_bytes();
    same_error(&tmp.write("n.safetensors", &nan), &nan, "NaN");
}

#[test]
fn an_invalid_tensor_table_is_explained() {
    // A tensor whose byte range does not match its shape: safetensors' reason is kept.
    let good = glow_cinn(5, 3, 16, 2, 1).to_bytes();
    let n = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    let json = std::str::from_utf8(&good[8..8 + n]).unwrap();
    let bad_json = json.replacen("\"shape\":[16,5]", "\"shape\":[16,4]", 1);
    assert_ne!(json, bad_json, "the builder's JSON changed");
    let mut bad = (bad_json.len() as u64).to_le_bytes().to_vec();
    bad.extend_from_slice(bad_json.as_bytes());
    bad.extend_from_slice(&good[8 + n..]);
    match Model::from_bytes(&bad) {
        Err(Error::Format(m)) => assert!(m.contains("tensor table is invalid"), "{m}"),
        other => panic!("{:?}", other.err()),
    }
}
