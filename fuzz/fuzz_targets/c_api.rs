//! The C API's sequence on any bytes: load (with a `max_bytes` limit taken from the input's
//! first byte, so the limit's refusals are fuzzed too), query, size and create a session,
//! sample, forward, inverse, free. Every call returns a status; none panics (a caught panic
//! would be `INNFER_STATUS_INTERNAL`, which fails the target) or aborts.
#![no_main]

use std::ffi::c_char;
use std::ptr;

use innfer::ffi::*;
use libfuzzer_sys::fuzz_target;

fn check(status: innfer_status, call: &str) -> bool {
    assert_ne!(status, INNFER_STATUS_INTERNAL, "{call} caught a panic");
    status == INNFER_STATUS_OK
}

fuzz_target!(|input: &[u8]| {
    let Some((&limit, data)) = input.split_first() else {
        return;
    };
    let mut options = innfer_load_options_default();
    // 0: no limit; else 2^(limit % 32) bytes, from 2 bytes to 2 GiB.
    if limit != 0 {
        options.max_bytes = 1 << (limit % 32);
    }
    let mut model = ptr::null_mut();
    let mut err = [0 as c_char; 256];
    // SAFETY: valid pointers and lengths throughout; handles freed once, sessions first.
    unsafe {
        let status = innfer_model_load_bytes_with(
            data.as_ptr(),
            data.len(),
            &options,
            &mut model,
            err.as_mut_ptr(),
            err.len(),
        );
        if !check(status, "innfer_model_load_bytes_with") {
            assert!(model.is_null());
            return;
        }
        let (mut dim, mut cond, mut x_dim, mut y_dim, mut z_dim, mut layout) = (0, 0, 0, 0, 0, 0);
        check(
            innfer_model_dims(
                model,
                &mut dim,
                &mut cond,
                &mut x_dim,
                &mut y_dim,
                &mut z_dim,
                &mut layout,
            ),
            "innfer_model_dims",
        );
        let mut bytes = 0;
        check(
            innfer_session_size(model, 4, &mut bytes),
            "innfer_session_size",
        );
        let mut session = ptr::null_mut();
        if check(
            innfer_session_create(model, 4, &mut session),
            "innfer_session_create",
        ) {
            let rows = 3;
            let x: Vec<f32> = (0..rows * dim).map(|i| (i as f32 * 0.37).sin()).collect();
            let c: Vec<f32> = (0..rows * cond).map(|i| (i as f32 * 0.11).cos()).collect();
            let c_ptr = if cond > 0 { c.as_ptr() } else { ptr::null() };
            let mut out = vec![0.0f32; rows * dim];
            let mut back = vec![0.0f32; rows * dim];
            let mut logdet = vec![0.0f32; rows];
            check(
                innfer_forward(
                    session,
                    x.as_ptr(),
                    c_ptr,
                    rows,
                    out.as_mut_ptr(),
                    logdet.as_mut_ptr(),
                ),
                "innfer_forward",
            );
            check(
                innfer_inverse(
                    session,
                    out.as_ptr(),
                    c_ptr,
                    rows,
                    back.as_mut_ptr(),
                    logdet.as_mut_ptr(),
                ),
                "innfer_inverse",
            );
            if layout != INNFER_LAYOUT_NONE {
                let y: Vec<f32> = (0..y_dim).map(|i| i as f32 * 0.5).collect();
                let mut samples = vec![0.0f32; 4 * x_dim];
                check(
                    innfer_sample(session, y.as_ptr(), 4, samples.as_mut_ptr()),
                    "innfer_sample",
                );
            }
            innfer_session_free(session);
        }
        // A session far too large for any machine is refused, not an abort.
        let mut huge = ptr::null_mut();
        let status = innfer_session_create(model, usize::MAX / 64, &mut huge);
        assert!(
            status == INNFER_STATUS_OUT_OF_MEMORY || status == INNFER_STATUS_INVALID_ARGUMENT,
            "{status}"
        );
        innfer_model_free(model);
    }
});
