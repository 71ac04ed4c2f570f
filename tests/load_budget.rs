//! Memory: what a load allocates is bounded by its file and by the caller's
//! `LoadOptions::max_bytes`; a session too large for the machine is an error; nothing aborts.

use std::ffi::c_char;
mod common;

use std::path::Path;
use std::ptr;

use innfer::ffi::*;
use innfer::model::LoadOptions;
use innfer::{Error, Model, Session};

fn with_limit(bytes: &[u8], max_bytes: usize) -> Result<Model, Error> {
    let options = LoadOptions {
        max_bytes,
        ..LoadOptions::default()
    };
    Model::from_bytes_with(bytes, &options)
}

/// The smallest `max_bytes` under which `load` succeeds (loading is deterministic), checked
/// to refuse one byte less with OutOfMemory naming that limit.
fn least_limit(load: impl Fn(&LoadOptions) -> Result<Model, Error>) -> usize {
    let limit = |max_bytes| LoadOptions {
        max_bytes,
        ..LoadOptions::default()
    };
    let (mut refused, mut loads) = (0usize, 1usize << 40);
    assert!(load(&limit(loads)).is_ok());
    while loads - refused > 1 {
        let mid = refused + (loads - refused) / 2;
        match load(&limit(mid)) {
            Ok(_) => loads = mid,
            Err(Error::OutOfMemory { limit, .. }) => {
                assert_eq!(limit, Some(mid));
                refused = mid;
            }
            Err(e) => panic!("{e}"),
        }
    }
    loads
}

#[test]
fn every_committed_model_loads_within_twice_its_file() {
    for path in common::committed_models() {
        let bytes = std::fs::read(&path).unwrap();
        // The file reader also holds the JSON header and converts a tensor at a time.
        for (reader, least) in [
            ("bytes", least_limit(|o| Model::from_bytes_with(&bytes, o))),
            ("file", least_limit(|o| Model::from_file_with(&path, o))),
        ] {
            // f32 weights packed to the kernel's panels, with the per-tensor scratch and
            // copies: 0.9–1.8 times the file for these (f32) files; 16 KiB covers the fixed
            // costs of a tiny file.
            assert!(
                least <= 2 * bytes.len() + (16 << 10),
                "{} ({reader}): needs {least} bytes to load {} bytes",
                path.display(),
                bytes.len()
            );
        }
    }
}

fn kinematics() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("models/kinematics.safetensors"))
        .unwrap()
}

#[test]
fn a_load_past_max_bytes_is_out_of_memory_naming_what_needed_it() {
    // Room for the chain of blocks (a few KiB), not for the weights (most of its 673 KB).
    match with_limit(&kinematics(), 16 << 10) {
        Err(e @ Error::OutOfMemory { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("past the load limit of 16384 bytes"),
                "{text}"
            );
            assert!(text.contains("module_list."), "{text}");
        }
        other => panic!("{:?}", other.err()),
    }
}

#[test]
fn a_session_too_large_for_the_machine_is_out_of_memory_not_an_abort() {
    let model = Model::from_bytes(&kinematics()).unwrap();
    // 2^42 rows: more bytes than x86-64's 47-bit address space, whatever the overcommit policy.
    match Session::new(&model, 1 << 42) {
        Err(Error::OutOfMemory {
            what, limit: None, ..
        }) => {
            assert_eq!(what, "the session's memory")
        }
        other => panic!("{:?}", other.err()),
    }
    // Sizes past isize::MAX bytes are no allocation at all.
    assert!(matches!(
        Session::arena_bytes(&model, usize::MAX / 2),
        Err(Error::Argument(_))
    ));
}

#[test]
fn the_c_api_reports_out_of_memory_for_loads_and_sessions() {
    let file = kinematics();
    let mut err = [0 as c_char; 256];
    let mut model = ptr::null_mut();
    let tight = innfer_load_options {
        max_bytes: 4096,
        ..innfer_load_options_default()
    };
    // SAFETY: valid pointers and lengths; handles freed once.
    unsafe {
        let status = innfer_model_load_bytes_with(
            file.as_ptr(),
            file.len(),
            &tight,
            &mut model,
            err.as_mut_ptr(),
            err.len(),
        );
        assert_eq!(status, INNFER_STATUS_OUT_OF_MEMORY);
        assert!(model.is_null());
        let defaults = innfer_load_options_default();
        assert_eq!(defaults.max_bytes, 0);
        let status = innfer_model_load_bytes_with(
            file.as_ptr(),
            file.len(),
            &defaults,
            &mut model,
            err.as_mut_ptr(),
            err.len(),
        );
        assert_eq!(status, INNFER_STATUS_OK);
        // The size of a 2^40-row session is an answer (tens of TB); creating it is refused.
        let mut bytes = 0;
        assert_eq!(
            innfer_session_size(model, 1 << 40, &mut bytes),
            INNFER_STATUS_OK
        );
        assert!(bytes > 1 << 44, "{bytes}");
        let mut session = ptr::null_mut();
        assert_eq!(
            innfer_session_create(model, 1 << 42, &mut session),
            INNFER_STATUS_OUT_OF_MEMORY
        );
        assert!(session.is_null());
        innfer_model_free(model);
    }
}

/// `innfer_load_options.weight_storage` loads the weights in bf16 or f16 from C: the samples
/// are the Rust API's with that storage (and differ from f32's); another value is refused.
#[test]
fn the_c_load_options_choose_the_weight_storage() {
    use innfer::WeightStorage;
    let file = kinematics();
    let y = [1.5f32, 0.0];
    let rust = |storage| {
        let options = LoadOptions {
            weight_storage: storage,
            ..LoadOptions::default()
        };
        let model = Model::from_bytes_with(&file, &options).unwrap();
        let mut s = Session::new(&model, 4).unwrap();
        s.reseed(3, 1);
        let mut x = vec![0.0f32; 5 * model.layout().x_dim()];
        s.sample(&y, 5, &mut x).unwrap();
        x
    };
    let c = |code: i32| -> Result<Vec<f32>, innfer_status> {
        let options = innfer_load_options {
            weight_storage: code,
            ..innfer_load_options_default()
        };
        let mut model = ptr::null_mut();
        // SAFETY: valid pointers and lengths; handles freed once.
        unsafe {
            let status = innfer_model_load_bytes_with(
                file.as_ptr(),
                file.len(),
                &options,
                &mut model,
                ptr::null_mut(),
                0,
            );
            if status != INNFER_STATUS_OK {
                assert!(model.is_null());
                return Err(status);
            }
            let mut s = ptr::null_mut();
            assert_eq!(innfer_session_create(model, 4, &mut s), INNFER_STATUS_OK);
            assert_eq!(innfer_session_reseed(s, 3, 1), INNFER_STATUS_OK);
            let mut x = vec![0.0f32; 5 * 4];
            assert_eq!(
                innfer_sample(s, y.as_ptr(), 5, x.as_mut_ptr()),
                INNFER_STATUS_OK
            );
            innfer_session_free(s);
            innfer_model_free(model);
            Ok(x)
        }
    };
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    for (code, storage) in [
        (INNFER_WEIGHT_STORAGE_F32, WeightStorage::F32),
        (INNFER_WEIGHT_STORAGE_BF16, WeightStorage::Bf16),
        (INNFER_WEIGHT_STORAGE_F16, WeightStorage::F16),
    ] {
        assert_eq!(bits(&c(code).unwrap()), bits(&rust(storage)), "{storage:?}");
    }
    assert_ne!(
        bits(&rust(WeightStorage::Bf16)),
        bits(&rust(WeightStorage::F32))
    );
    assert_eq!(c(3), Err(INNFER_STATUS_INVALID_ARGUMENT));
    assert_eq!(c(-1), Err(INNFER_STATUS_INVALID_ARGUMENT));
}
