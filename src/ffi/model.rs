//! Model handles: load, free, query.

use alloc::boxed::Box;
use core::ffi::c_char;

use super::status::*;
use super::{INNFER_LAYOUT_CINN, INNFER_LAYOUT_INN, INNFER_LAYOUT_NONE, guard};
use crate::model::{Layout, Model};

const MODEL_MAGIC: u64 = u64::from_le_bytes(*b"innferM1");

/// A loaded model (opaque).
///
/// Immutable after loading: any number of threads may use one model at the same time (to
/// create sessions, query it, and through their own sessions run it). Created by
/// `innfer_model_load_bytes` / `innfer_model_load_file`, released by `innfer_model_free`.
pub struct innfer_model {
    magic: u64,
    pub(crate) model: Model,
}

/// The model behind a handle, or why not.
///
/// # Safety
/// `m` is NULL or a pointer returned by a load call and not yet freed.
pub(crate) unsafe fn model_ref<'a>(m: *const innfer_model) -> Result<&'a Model, Fail> {
    if m.is_null() {
        return Err(Fail::Null("model"));
    }
    // SAFETY: the caller guarantees a live handle (freed handles are documented UB; the magic
    // check is a best-effort guard against stray pointers).
    let handle = unsafe { &*m };
    if handle.magic != MODEL_MAGIC {
        return Err(Fail::Invalid("model", "not a live innfer_model handle"));
    }
    Ok(&handle.model)
}

/// The caller's `err` buffer as a byte slice (empty if NULL or zero-length).
///
/// # Safety
/// `err` is NULL or points to `err_len` writable bytes.
unsafe fn err_buf<'a>(err: *mut c_char, err_len: usize) -> &'a mut [u8] {
    if err.is_null() || err_len == 0 {
        return &mut [];
    }
    // SAFETY: guaranteed by the caller.
    unsafe { core::slice::from_raw_parts_mut(err.cast::<u8>(), err_len) }
}

/// Shared tail of the load calls: clears `*out` and `err`, runs `load`, boxes the model.
///
/// # Safety
/// As the load functions.
unsafe fn load_with(
    what: &str,
    out: *mut *mut innfer_model,
    err: *mut c_char,
    err_len: usize,
    load: impl FnOnce() -> Result<Model, Fail>,
) -> innfer_status {
    // SAFETY: per the contract of the load functions.
    let err = unsafe { err_buf(err, err_len) };
    write_message(err, format_args!(""));
    if out.is_null() {
        let f = Fail::Null("out");
        write_message(err, format_args!("{what}: {f}"));
        return f.status();
    }
    // SAFETY: `out` is non-NULL and, per the contract, writable.
    unsafe { out.write(core::ptr::null_mut()) };
    let err_ptr = err.as_mut_ptr();
    let err_len = err.len();
    guard(
        || {
            // SAFETY: the closure that panicked no longer uses `err`.
            let err = unsafe { err_buf(err_ptr.cast(), err_len) };
            write_message(
                err,
                format_args!("{what}: internal error (a caught panic): a bug in innfer"),
            );
            INNFER_STATUS_INTERNAL
        },
        || match load() {
            Ok(model) => {
                let handle = Box::new(innfer_model {
                    magic: MODEL_MAGIC,
                    model,
                });
                // SAFETY: checked non-NULL above.
                unsafe { out.write(Box::into_raw(handle)) };
                INNFER_STATUS_OK
            }
            Err(f) => {
                write_message(err, format_args!("{what}: {f}"));
                f.status()
            }
        },
    )
}

/// Loads a model from the bytes of an innfer `.safetensors` file held in memory.
///
/// **Ownership.** The bytes are only read during the call: the model keeps its own packed copy,
/// so `data` may be freed as soon as this returns. On success `*out` receives a new model owned
/// by the caller, to be released with `innfer_model_free()`. On failure `*out` is set to NULL.
///
/// **Errors.** `err` may be NULL; otherwise it receives a NUL-terminated message (empty on
/// success), truncated to fit `err_len` bytes including the NUL. Returns
/// `INNFER_STATUS_OK`, `_NULL_ARGUMENT` (`out` NULL, or `data` NULL with `len > 0`),
/// `_INVALID_ARGUMENT`, `_FORMAT`, `_METADATA`, `_TENSOR`, `_UNSUPPORTED`, `_DIMS` or
/// `_INTERNAL`.
///
/// **Allocation.** Allocates the model (and temporaries). Out of memory aborts the process.
///
/// **Thread safety.** May be called from any thread at any time.
///
/// # Safety
/// `data` points to `len` readable bytes (or is NULL), `out` is NULL or writable, `err` is NULL
/// or points to `err_len` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn innfer_model_load_bytes(
    data: *const u8,
    len: usize,
    out: *mut *mut innfer_model,
    err: *mut c_char,
    err_len: usize,
) -> innfer_status {
    // SAFETY: forwarded contract.
    unsafe {
        load_with("innfer_model_load_bytes", out, err, err_len, || {
            let bytes: &[u8] = if len == 0 {
                &[]
            } else if data.is_null() {
                return Err(Fail::Null("data"));
            } else if len > isize::MAX as usize {
                return Err(Fail::Invalid("len", "larger than memory"));
            } else {
                // SAFETY: non-NULL; the caller guarantees `len` readable bytes.
                core::slice::from_raw_parts(data, len)
            };
            Ok(Model::from_bytes(bytes)?)
        })
    }
}

/// Loads a model from an innfer `.safetensors` file.
///
/// `path` is a NUL-terminated file name (bytes passed to the OS as they are). The file is read
/// a tensor at a time (never whole) and closed before the call returns. Ownership, `out`,
/// `err` and allocation as for `innfer_model_load_bytes()`; in addition `INNFER_STATUS_IO` if
/// the file cannot be read.
///
/// Only in builds with the `std` feature (all hosted builds); bare-metal builds have no file
/// system: read the bytes yourself and use `innfer_model_load_bytes()`.
///
/// **Thread safety.** May be called from any thread at any time.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; `out` and `err` as for `innfer_model_load_bytes`.
#[cfg(feature = "std")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn innfer_model_load_file(
    path: *const c_char,
    out: *mut *mut innfer_model,
    err: *mut c_char,
    err_len: usize,
) -> innfer_status {
    // SAFETY: forwarded contract.
    unsafe {
        load_with("innfer_model_load_file", out, err, err_len, || {
            if path.is_null() {
                return Err(Fail::Null("path"));
            }
            // SAFETY: non-NULL and NUL-terminated per the contract.
            let bytes = core::ffi::CStr::from_ptr(path).to_bytes();
            #[cfg(unix)]
            let p = {
                use std::os::unix::ffi::OsStrExt;
                std::path::Path::new(std::ffi::OsStr::from_bytes(bytes))
            };
            #[cfg(not(unix))]
            let p = std::path::Path::new(
                core::str::from_utf8(bytes)
                    .map_err(|_| Fail::Invalid("path", "not valid UTF-8"))?,
            );
            Ok(Model::from_file(p)?)
        })
    }
}

/// Releases a model. NULL is a no-op.
///
/// Every session created from the model must have been freed first (freeing a model a session
/// still uses is undefined behaviour). Must not be called while another thread uses the model.
///
/// # Safety
/// `m` is NULL or a live handle from a load call; it is invalid afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn innfer_model_free(m: *mut innfer_model) {
    if m.is_null() {
        return;
    }
    guard(
        || (),
        || {
            // SAFETY: a live handle per the contract, allocated by `Box` in `load_with`.
            unsafe {
                if (*m).magic != MODEL_MAGIC {
                    return;
                }
                (*m).magic = 0;
                drop(Box::from_raw(m));
            }
        },
    )
}

/// The model's dimensions. Every out-pointer may be NULL (that value is then not written).
///
/// - `dim`: width of the chain, the row length of `innfer_forward`/`innfer_inverse` buffers;
/// - `cond_dim`: width of the condition rows (0 if the model takes no condition);
/// - `x_dim`, `y_dim`, `z_dim`: widths of a sample x, an observation y and the latent z
///   (all 0 without a sampling layout);
/// - `layout`: `INNFER_LAYOUT_NONE`, `INNFER_LAYOUT_INN` or `INNFER_LAYOUT_CINN`.
///
/// Returns `INNFER_STATUS_OK`, `_NULL_ARGUMENT` (`m` NULL) or `_INVALID_ARGUMENT` (not a live
/// model). Thread-safe; allocates nothing.
///
/// # Safety
/// `m` is NULL or a live model; each out-pointer is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn innfer_model_dims(
    m: *const innfer_model,
    dim: *mut usize,
    cond_dim: *mut usize,
    x_dim: *mut usize,
    y_dim: *mut usize,
    z_dim: *mut usize,
    layout: *mut i32,
) -> innfer_status {
    guard(
        || INNFER_STATUS_INTERNAL,
        || {
            // SAFETY: the caller's contract.
            let model = match unsafe { model_ref(m) } {
                Ok(model) => model,
                Err(f) => return f.status(),
            };
            let l = model.layout();
            let code = match l {
                Layout::None => INNFER_LAYOUT_NONE,
                Layout::Inn { .. } => INNFER_LAYOUT_INN,
                Layout::Cinn { .. } => INNFER_LAYOUT_CINN,
            };
            // SAFETY: each pointer is NULL or writable per the contract.
            unsafe {
                put(dim, model.dim());
                put(cond_dim, model.cond_dim());
                put(x_dim, l.x_dim());
                put(y_dim, l.y_dim());
                put(z_dim, l.z_dim());
                put(layout, code);
            }
            INNFER_STATUS_OK
        },
    )
}

/// Writes `v` to `p` unless `p` is NULL.
///
/// # Safety
/// `p` is NULL or valid for a write.
unsafe fn put<T>(p: *mut T, v: T) {
    if !p.is_null() {
        // SAFETY: non-NULL and writable per the contract.
        unsafe { p.write_unaligned(v) };
    }
}

/// Number of blocks in the model's chain; 0 if `m` is NULL or not a live model.
/// Thread-safe; allocates nothing.
///
/// # Safety
/// `m` is NULL or a live model.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn innfer_model_block_count(m: *const innfer_model) -> usize {
    guard(
        || 0,
        || {
            // SAFETY: the caller's contract.
            unsafe { model_ref(m) }.map_or(0, Model::block_count)
        },
    )
}
