//! The C API called the way a C program calls it, small enough for Miri (scripts/miri.sh runs
//! this file under Stacked and Tree Borrows): a model loaded from bytes and one built in place
//! on a packed image, a heap session and a session in caller memory, every call family, and the
//! misuse a C caller can commit (NULLs, short and misaligned buffers, freed static handles).
//! The fixture is embedded, so Miri needs no file system access.

use std::ffi::{CStr, c_char, c_void};
use std::ptr;

use innfer::ffi::*;
use innfer::model::ImageTarget;
use innfer::{LoadOptions, Model};

/// The smallest committed model with a sampling layout (a cINN: x of 5, a condition of 2).
static MODEL: &[u8] = include_bytes!("fixtures/pypi_onesided_condaffine/model.safetensors");

/// Memory aligned to `INNFER_ARENA_ALIGN`, as a C caller would give with `aligned_alloc`.
#[repr(C, align(64))]
#[derive(Clone, Copy)]
struct Line([u8; 64]);

fn aligned(bytes: usize) -> Vec<Line> {
    vec![Line([0; 64]); bytes.div_ceil(64)]
}

fn text(p: *const c_char) -> String {
    assert!(!p.is_null());
    // SAFETY: the API returns NUL-terminated strings.
    unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_owned()
}

fn err_text(err: &[c_char]) -> String {
    text(err.as_ptr())
}

struct Dims {
    dim: usize,
    cond: usize,
    x: usize,
    y: usize,
}

/// # Safety
/// `m` is a live model.
unsafe fn dims(m: *const innfer_model) -> Dims {
    let (mut dim, mut cond, mut x, mut y, mut z, mut layout) = (0, 0, 0, 0, 0, -1);
    // SAFETY: live model, writable outputs.
    let status =
        unsafe { innfer_model_dims(m, &mut dim, &mut cond, &mut x, &mut y, &mut z, &mut layout) };
    assert_eq!(status, INNFER_STATUS_OK);
    assert_eq!(layout, INNFER_LAYOUT_CINN);
    assert_eq!(x, z);
    Dims { dim, cond, x, y }
}

/// Equal, NaN to NaN, up to a few ulps: natively the results are the same bits (tests/sessions.rs
/// checks that), but Miri perturbs inexact float operations on purpose and picks NaN payloads.
fn assert_close(a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x.is_nan() && y.is_nan()) || (x - y).abs() <= 1e-5 * (1.0 + x.abs()),
            "element {i}: {x} != {y}"
        );
    }
}

fn load() -> *mut innfer_model {
    let mut model = ptr::null_mut();
    let mut err = [1 as c_char; 64];
    // SAFETY: valid pointers and lengths.
    let status = unsafe {
        innfer_model_load_bytes(
            MODEL.as_ptr(),
            MODEL.len(),
            &mut model,
            err.as_mut_ptr(),
            err.len(),
        )
    };
    assert_eq!(status, INNFER_STATUS_OK, "{}", err_text(&err));
    assert_eq!(err_text(&err), "");
    assert!(!model.is_null());
    model
}

/// Every call family on one live session `s` of a model with dimensions `d`; returns what it
/// computed, to compare sessions.
///
/// # Safety
/// `s` is a live session of at least 4 rows.
unsafe fn exercise(s: *mut innfer_session, d: &Dims) -> Vec<f32> {
    let rows = 3;
    let x: Vec<f32> = (0..rows * d.dim).map(|i| (i as f32 * 0.37).sin()).collect();
    let cond: Vec<f32> = (0..rows * d.cond)
        .map(|i| (i as f32 * 0.51).cos())
        .collect();
    let mut z = vec![0.0f32; rows * d.dim];
    let mut back = vec![0.0f32; rows * d.dim];
    let mut logdet = [0.0f32; 3];
    let mut logdet_back = [0.0f32; 3];
    let mut bits: Vec<f32> = Vec::new();
    // SAFETY: every buffer holds what its call reads or writes.
    unsafe {
        assert_eq!(innfer_session_reseed(s, 7, 2), INNFER_STATUS_OK);
        let st = innfer_forward(
            s,
            x.as_ptr(),
            cond.as_ptr(),
            rows,
            z.as_mut_ptr(),
            logdet.as_mut_ptr(),
        );
        assert_eq!(
            st,
            INNFER_STATUS_OK,
            "{}",
            text(innfer_session_last_error(s))
        );
        assert_eq!(text(innfer_session_last_error(s)), "");
        let st = innfer_inverse(
            s,
            z.as_ptr(),
            cond.as_ptr(),
            rows,
            back.as_mut_ptr(),
            logdet_back.as_mut_ptr(),
        );
        assert_eq!(st, INNFER_STATUS_OK);
        for (a, b) in x.iter().zip(&back) {
            assert!((a - b).abs() < 1e-4, "{a} {b}");
        }
        for (a, b) in logdet.iter().zip(&logdet_back) {
            assert!((a + b).abs() < 1e-4, "{a} {b}");
        }
        bits.extend(z.iter().chain(&logdet));

        // Strided: column-major x (a Fortran array), without logdet.
        let xt: Vec<f32> = (0..rows * d.dim)
            .map(|i| x[(i % rows) * d.dim + i / rows])
            .collect();
        let mut zt = vec![0.0f32; rows * d.dim];
        let st = innfer_forward_strided(
            s,
            xt.as_ptr(),
            1,
            rows as isize,
            cond.as_ptr(),
            d.cond as isize,
            1,
            rows,
            zt.as_mut_ptr(),
            1,
            rows as isize,
            ptr::null_mut(),
        );
        assert_eq!(st, INNFER_STATUS_OK);
        for r in 0..rows {
            for c in 0..d.dim {
                assert_close(&[zt[c * rows + r]], &[z[r * d.dim + c]]);
            }
        }
        let mut xb = vec![0.0f32; rows * d.dim];
        let st = innfer_inverse_strided(
            s,
            zt.as_ptr(),
            1,
            rows as isize,
            cond.as_ptr(),
            d.cond as isize,
            1,
            rows,
            xb.as_mut_ptr(),
            d.dim as isize,
            1,
            ptr::null_mut(),
        );
        assert_eq!(st, INNFER_STATUS_OK);
        assert_close(&xb, &back);

        // Sampling: one observation, then two, then strided with one shared observation.
        let y: Vec<f32> = (0..2 * d.y).map(|i| 0.3 * i as f32 - 0.2).collect();
        let mut xs = vec![0.0f32; 4 * d.x];
        assert_eq!(
            innfer_sample(s, y.as_ptr(), 2, xs.as_mut_ptr()),
            INNFER_STATUS_OK
        );
        let (mut seed, mut stream, mut next) = (0, 0, 0);
        assert_eq!(
            innfer_session_rng_position(s, &mut seed, &mut stream, &mut next),
            INNFER_STATUS_OK
        );
        assert_eq!((seed, stream, next), (7, 2, 2));
        assert_eq!(innfer_session_seek(s, 0), INNFER_STATUS_OK);
        let mut xb = vec![0.0f32; 4 * d.x];
        assert_eq!(
            innfer_sample_batch(s, y.as_ptr(), 2, 2, xb.as_mut_ptr()),
            INNFER_STATUS_OK
        );
        assert_close(&xb[..2 * d.x], &xs[..2 * d.x]);
        assert_eq!(innfer_session_seek(s, 0), INNFER_STATUS_OK);
        let mut xf = vec![0.0f32; 2 * d.x];
        assert_eq!(
            innfer_sample_strided(s, y.as_ptr(), 0, 1, 1, 2, xf.as_mut_ptr(), 1, 2),
            INNFER_STATUS_OK
        );
        for r in 0..2 {
            for c in 0..d.x {
                assert_close(&[xf[c * 2 + r]], &[xs[r * d.x + c]]);
            }
        }
        bits.extend(&xb);

        // Summaries of 3 samples for each of two observations, the second one invalid.
        let mut yn = y.clone();
        yn[d.y] = f32::NAN;
        let q = [0.0f32, 0.5, 1.0];
        let (mut mean, mut std) = (vec![0.0f32; 2 * d.x], vec![0.0f32; 2 * d.x]);
        let mut qv = vec![0.0f32; 2 * q.len() * d.x];
        let mut invalid = usize::MAX;
        let st = innfer_session_summarize(
            s,
            yn.as_ptr(),
            2,
            3,
            q.as_ptr(),
            q.len(),
            mean.as_mut_ptr(),
            std.as_mut_ptr(),
            qv.as_mut_ptr(),
            &mut invalid,
        );
        assert_eq!(
            st,
            INNFER_STATUS_OK,
            "{}",
            text(innfer_session_last_error(s))
        );
        assert_eq!(invalid, 1);
        assert!(mean[..d.x].iter().all(|v| v.is_finite()));
        assert!(mean[d.x..].iter().all(|v| v.is_nan()));
        bits.extend(mean.iter().chain(&std).chain(&qv));

        // Misuse: each refused with its status and a message naming the call.
        let st = innfer_forward(
            s,
            ptr::null(),
            cond.as_ptr(),
            rows,
            z.as_mut_ptr(),
            ptr::null_mut(),
        );
        assert_eq!(st, INNFER_STATUS_NULL_ARGUMENT);
        assert!(text(innfer_session_last_error(s)).starts_with("innfer_forward"));
        let st = innfer_forward(
            s,
            x.as_ptr(),
            ptr::null(),
            rows,
            z.as_mut_ptr(),
            ptr::null_mut(),
        );
        assert_eq!(st, INNFER_STATUS_NULL_ARGUMENT);
        let st = innfer_forward(
            s,
            x.as_ptr(),
            cond.as_ptr(),
            5,
            z.as_mut_ptr(),
            ptr::null_mut(),
        );
        assert_eq!(st, INNFER_STATUS_BATCH_TOO_LARGE);
        // In place: the output overlaps the input.
        let st = innfer_forward(
            s,
            z.as_ptr(),
            cond.as_ptr(),
            rows,
            z.as_mut_ptr(),
            ptr::null_mut(),
        );
        assert_eq!(st, INNFER_STATUS_INVALID_ARGUMENT);
        // A pointer not aligned to float.
        let mut raw = vec![0u32; rows * d.dim + 1];
        let odd = raw.as_mut_ptr().cast::<u8>().add(1).cast::<f32>();
        let st = innfer_forward(s, x.as_ptr(), cond.as_ptr(), rows, odd, ptr::null_mut());
        assert_eq!(st, INNFER_STATUS_INVALID_ARGUMENT);
        assert_eq!(
            innfer_sample(s, ptr::null(), 1, xs.as_mut_ptr()),
            INNFER_STATUS_NULL_ARGUMENT
        );
        let st = innfer_session_summarize(
            s,
            y.as_ptr(),
            1,
            0,
            ptr::null(),
            0,
            mean.as_mut_ptr(),
            std.as_mut_ptr(),
            ptr::null_mut(),
            ptr::null_mut(),
        );
        assert_eq!(st, INNFER_STATUS_INVALID_ARGUMENT);
        let bad_q = [1.5f32];
        let st = innfer_session_summarize(
            s,
            y.as_ptr(),
            1,
            2,
            bad_q.as_ptr(),
            1,
            mean.as_mut_ptr(),
            std.as_mut_ptr(),
            qv.as_mut_ptr(),
            ptr::null_mut(),
        );
        assert_eq!(st, INNFER_STATUS_INVALID_ARGUMENT);
        // A later success clears the message.
        assert_eq!(innfer_session_reseed(s, 0, 0), INNFER_STATUS_OK);
        assert_eq!(text(innfer_session_last_error(s)), "");
    }
    bits
}

/// A forward pass and two samples on `s` (cheaper than [`exercise`]).
///
/// # Safety
/// `s` is a live session of at least 4 rows.
unsafe fn light(s: *mut innfer_session, d: &Dims) -> Vec<f32> {
    let x: Vec<f32> = (0..2 * d.dim).map(|i| (i as f32 * 0.37).sin()).collect();
    let cond: Vec<f32> = (0..2 * d.cond).map(|i| (i as f32 * 0.51).cos()).collect();
    let mut out = vec![0.0f32; 2 * d.dim + 2 * d.x];
    // SAFETY: every buffer holds what its call reads or writes.
    unsafe {
        let (z, xs) = out.split_at_mut(2 * d.dim);
        let st = innfer_forward(
            s,
            x.as_ptr(),
            cond.as_ptr(),
            2,
            z.as_mut_ptr(),
            ptr::null_mut(),
        );
        assert_eq!(st, INNFER_STATUS_OK);
        assert_eq!(innfer_session_reseed(s, 5, 0), INNFER_STATUS_OK);
        assert_eq!(
            innfer_sample(s, cond.as_ptr(), 2, xs.as_mut_ptr()),
            INNFER_STATUS_OK
        );
    }
    out
}

#[test]
fn a_c_caller_loads_runs_and_frees_heap_and_static_sessions() {
    let model = load();
    // SAFETY: a live model until freed at the end; sessions freed before it.
    unsafe {
        let d = dims(model);
        assert_eq!((d.dim, d.cond, d.x, d.y), (5, 2, 5, 2));
        assert!(innfer_model_block_count(model) > 0);
        assert!(innfer_model_parameter_count(model) > 0);
        let mut standardized = -1;
        let (mut mean, mut std) = ([0.0f32; 5], [0.0f32; 5]);
        assert_eq!(
            innfer_model_standardization(
                model,
                INNFER_VARIABLE_X,
                &mut standardized,
                mean.as_mut_ptr(),
                std.as_mut_ptr(),
                5
            ),
            INNFER_STATUS_OK
        );
        assert!(standardized == 0 || standardized == 1);
        assert_eq!(
            innfer_model_standardization(
                model,
                INNFER_VARIABLE_X,
                ptr::null_mut(),
                mean.as_mut_ptr(),
                mean.as_mut_ptr(),
                5
            ),
            INNFER_STATUS_INVALID_ARGUMENT
        );

        // The heap session.
        let mut heap = ptr::null_mut();
        assert_eq!(innfer_session_create(model, 4, &mut heap), INNFER_STATUS_OK);
        assert_eq!(innfer_session_max_batch(heap), 4);
        assert_eq!(innfer_session_model(heap), model.cast_const());
        assert_eq!(innfer_session_threads(heap), 1);
        let from_heap = exercise(heap, &d);

        // The static session, in 64-byte aligned caller memory.
        let mut bytes = 0;
        assert_eq!(innfer_session_size(model, 4, &mut bytes), INNFER_STATUS_OK);
        let mut memory = aligned(bytes + 64);
        let base = memory.as_mut_ptr().cast::<u8>();
        let mut st = ptr::dangling_mut();
        // Misaligned, too small, NULL: refused, `*out` NULL.
        assert_eq!(
            innfer_session_init_static(model, 4, base.add(8).cast(), bytes, &mut st),
            INNFER_STATUS_ARENA_MISALIGNED
        );
        assert!(st.is_null());
        assert_eq!(
            innfer_session_init_static(model, 4, base.cast(), bytes - 1, &mut st),
            INNFER_STATUS_ARENA_TOO_SMALL
        );
        assert_eq!(
            innfer_session_init_static(model, 4, ptr::null_mut(), bytes, &mut st),
            INNFER_STATUS_NULL_ARGUMENT
        );
        assert_eq!(
            innfer_session_init_static(model, 0, base.cast(), bytes, &mut st),
            INNFER_STATUS_INVALID_ARGUMENT
        );
        assert_eq!(
            innfer_session_init_static(model, 4, base.cast(), bytes, ptr::null_mut()),
            INNFER_STATUS_NULL_ARGUMENT
        );
        assert_eq!(
            innfer_session_init_static(model, 4, base.cast(), bytes, &mut st),
            INNFER_STATUS_OK
        );
        assert_eq!(st.cast::<u8>(), base);
        let from_static = exercise(st, &d);
        assert_close(&from_heap, &from_static);

        // Threads: workers started and ended (these calls are too short to use them).
        assert_eq!(innfer_session_set_threads(st, 2), INNFER_STATUS_OK);
        assert_eq!(innfer_session_threads(st), 2);
        assert_eq!(
            innfer_session_set_threads(st, 0),
            INNFER_STATUS_INVALID_ARGUMENT
        );
        assert_close(&light(st, &d), &light(heap, &d));

        // A freed static session is refused, not used; freeing it again is a no-op.
        innfer_session_free(st);
        assert_eq!(
            innfer_session_reseed(st, 1, 1),
            INNFER_STATUS_INVALID_ARGUMENT
        );
        assert_eq!(
            text(innfer_session_last_error(st)),
            "not a live innfer_session handle"
        );
        assert_eq!(innfer_session_max_batch(st), 0);
        innfer_session_free(st);
        drop(memory);

        innfer_session_free(heap);
        innfer_session_free(ptr::null_mut());
        innfer_model_free(model);
        innfer_model_free(ptr::null_mut());
    }
}

#[test]
fn a_c_caller_builds_a_static_model_on_a_packed_image() {
    let loaded = Model::from_bytes_with(MODEL, &LoadOptions::default()).unwrap();
    let image = loaded.to_image(ImageTarget::Portable).unwrap();
    // The image copied into 64-byte aligned memory, as a mapped file would be.
    let mut image_memory = aligned(image.len());
    // SAFETY: `image_memory` holds at least `image.len()` bytes.
    unsafe {
        ptr::copy_nonoverlapping(
            image.as_ptr(),
            image_memory.as_mut_ptr().cast::<u8>(),
            image.len(),
        );
    }
    let image_ptr = image_memory.as_ptr().cast::<c_void>();
    // SAFETY: the image and the model's memory outlive the model and its session.
    unsafe {
        let mut need = 0;
        assert_eq!(
            innfer_model_static_size(image_ptr, image.len(), &mut need),
            INNFER_STATUS_OK
        );
        assert_eq!(
            innfer_model_static_size(image_ptr, image.len(), ptr::null_mut()),
            INNFER_STATUS_NULL_ARGUMENT
        );
        assert_eq!(
            innfer_model_static_size(image_ptr, 3, &mut need),
            INNFER_STATUS_FORMAT
        );
        let mut memory = aligned(need + 64);
        let base = memory.as_mut_ptr().cast::<u8>();
        let mut m = ptr::dangling_mut();
        assert_eq!(
            innfer_model_init_static(image_ptr, image.len(), base.add(4).cast(), need, &mut m),
            INNFER_STATUS_ARENA_MISALIGNED
        );
        assert!(m.is_null());
        assert_eq!(
            innfer_model_init_static(image_ptr, image.len(), base.cast(), need - 1, &mut m),
            INNFER_STATUS_ARENA_TOO_SMALL
        );
        assert_eq!(
            innfer_model_init_static(ptr::null(), 0, base.cast(), need, &mut m),
            INNFER_STATUS_NULL_ARGUMENT
        );
        assert_eq!(
            innfer_model_init_static(image_ptr, image.len(), base.cast(), need, &mut m),
            INNFER_STATUS_OK
        );
        assert_eq!(m.cast::<u8>(), base);
        let d = dims(m);

        // Its results are the loaded model's, bit for bit.
        let heap_model = load();
        let mut a = ptr::null_mut();
        assert_eq!(
            innfer_session_create(heap_model, 4, &mut a),
            INNFER_STATUS_OK
        );
        let mut b = ptr::null_mut();
        assert_eq!(innfer_session_create(m, 4, &mut b), INNFER_STATUS_OK);
        exercise(b, &d);
        assert_close(&light(a, &d), &light(b, &d));
        innfer_session_free(a);
        innfer_session_free(b);
        // Freeing a static model is a no-op; its memory is the caller's again.
        innfer_model_free(m);
        innfer_model_free(heap_model);
        drop(memory);
    }
}

#[test]
fn load_misuse_is_reported_not_undefined() {
    let mut model = ptr::dangling_mut();
    let mut err = [1 as c_char; 48];
    // SAFETY: each call gets valid pointers or the NULLs under test.
    unsafe {
        // `out` NULL: the message in `err`, truncated to fit.
        let st = innfer_model_load_bytes(
            MODEL.as_ptr(),
            MODEL.len(),
            ptr::null_mut(),
            err.as_mut_ptr(),
            err.len(),
        );
        assert_eq!(st, INNFER_STATUS_NULL_ARGUMENT);
        let message = err_text(&err);
        assert!(message.starts_with("innfer_model_load_bytes"), "{message}");
        assert!(message.len() < err.len());
        // `data` NULL with a length.
        let st = innfer_model_load_bytes(ptr::null(), 10, &mut model, err.as_mut_ptr(), 48);
        assert_eq!(st, INNFER_STATUS_NULL_ARGUMENT);
        assert!(model.is_null());
        // A truncated file, with an err buffer of one byte (only the NUL) and of none.
        let st = innfer_model_load_bytes(MODEL.as_ptr(), 100, &mut model, err.as_mut_ptr(), 1);
        assert_eq!(st, INNFER_STATUS_FORMAT);
        assert_eq!(err[0], 0);
        let st = innfer_model_load_bytes(MODEL.as_ptr(), 100, &mut model, ptr::null_mut(), 0);
        assert_eq!(st, INNFER_STATUS_FORMAT);
        // Options: a bad weight storage; a limit too small; bf16 storage loads.
        let mut options = innfer_load_options_default();
        options.weight_storage = 99;
        let st = innfer_model_load_bytes_with(
            MODEL.as_ptr(),
            MODEL.len(),
            &options,
            &mut model,
            err.as_mut_ptr(),
            err.len(),
        );
        assert_eq!(st, INNFER_STATUS_INVALID_ARGUMENT);
        options.weight_storage = INNFER_WEIGHT_STORAGE_BF16;
        options.max_bytes = 64;
        let st = innfer_model_load_bytes_with(
            MODEL.as_ptr(),
            MODEL.len(),
            &options,
            &mut model,
            err.as_mut_ptr(),
            err.len(),
        );
        assert_eq!(st, INNFER_STATUS_OUT_OF_MEMORY);
        options.max_bytes = 0;
        let st = innfer_model_load_bytes_with(
            MODEL.as_ptr(),
            MODEL.len(),
            &options,
            &mut model,
            err.as_mut_ptr(),
            err.len(),
        );
        assert_eq!(st, INNFER_STATUS_OK);
        innfer_model_free(model);

        // Calls on NULL handles.
        let mut bytes = 0;
        assert_eq!(
            innfer_session_size(ptr::null(), 4, &mut bytes),
            INNFER_STATUS_NULL_ARGUMENT
        );
        let mut s = ptr::dangling_mut();
        assert_eq!(
            innfer_session_create(ptr::null(), 4, &mut s),
            INNFER_STATUS_NULL_ARGUMENT
        );
        assert!(s.is_null());
        assert_eq!(
            innfer_sample(ptr::null_mut(), ptr::null(), 1, ptr::null_mut()),
            INNFER_STATUS_NULL_ARGUMENT
        );
        assert_eq!(
            text(innfer_session_last_error(ptr::null())),
            "the session handle is NULL"
        );
        assert_eq!(innfer_model_block_count(ptr::null()), 0);
        assert_eq!(
            innfer_model_dims(
                ptr::null(),
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut()
            ),
            INNFER_STATUS_NULL_ARGUMENT
        );
    }
    // The static strings.
    assert!(!text(innfer_status_string(INNFER_STATUS_FORMAT)).is_empty());
    assert!(!text(innfer_status_string(12345)).is_empty());
    assert!(!text(innfer_version_string()).is_empty());
    assert_eq!(innfer_abi_version(), INNFER_ABI_VERSION);
}
