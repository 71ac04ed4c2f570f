//! Model handles: load, free, query.

use alloc::boxed::Box;
use core::ffi::{c_char, c_void};

use super::status::*;
use super::{
    INNFER_ARENA_ALIGN, INNFER_LAYOUT_CINN, INNFER_LAYOUT_INN, INNFER_LAYOUT_NONE, guard, try_box,
};
use crate::model::{Layout, LoadOptions, Model, WeightStorage};

const MODEL_MAGIC: u64 = u64::from_le_bytes(*b"innferM1");
/// The magic of a model built in caller memory by `innfer_model_init_static` (never freed).
const STATIC_MODEL_MAGIC: u64 = u64::from_le_bytes(*b"innferMS");

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
    if handle.magic != MODEL_MAGIC && handle.magic != STATIC_MODEL_MAGIC {
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

/// Options of `innfer_model_load_bytes_with()` and `innfer_model_load_file_with()`.
/// Initialise with `innfer_load_options_default()` and set the fields you need (new fields
/// may be added at the end in later ABI versions).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct innfer_load_options {
    /// The most bytes the load may allocate, all allocations counted (temporaries too), so
    /// both the model and the load's peak stay below it; a load that would pass it returns
    /// `INNFER_STATUS_OUT_OF_MEMORY` before allocating. 0 means no limit beyond what the file
    /// backs (every count and width in a file is checked against its tensors, docs/format.md).
    pub max_bytes: usize,
    /// How the subnets' weights are stored: `INNFER_WEIGHT_STORAGE_F32` (the default, results
    /// match FrEIA to f32 rounding), `_BF16` or `_F16` (half the bytes each sample streams,
    /// each weight rounded once at load; every product and sum still in f32, see
    /// docs/performance.md). Another value: `INNFER_STATUS_INVALID_ARGUMENT`.
    pub weight_storage: i32,
}

/// Weights stored as f32 (`innfer_load_options.weight_storage`).
pub const INNFER_WEIGHT_STORAGE_F32: i32 = 0;
/// Weights stored as bfloat16 (the top 16 bits of an f32: relative error ≤ 2⁻⁹).
pub const INNFER_WEIGHT_STORAGE_BF16: i32 = 1;
/// Weights stored as IEEE binary16 (relative error ≤ 2⁻¹², range ±65504: a model with a
/// larger weight fails to load with `INNFER_STATUS_DIMS`).
pub const INNFER_WEIGHT_STORAGE_F16: i32 = 2;

/// The default load options (no `max_bytes` limit). Thread-safe; never fails.
#[unsafe(no_mangle)]
pub extern "C" fn innfer_load_options_default() -> innfer_load_options {
    innfer_load_options {
        max_bytes: 0,
        weight_storage: INNFER_WEIGHT_STORAGE_F32,
    }
}

/// The Rust options for C `options` (NULL: the defaults).
///
/// # Safety
/// `options` is NULL or points to a readable `innfer_load_options`.
unsafe fn load_options(options: *const innfer_load_options) -> Result<LoadOptions, Fail> {
    // SAFETY: per the caller's contract.
    let options = unsafe { options.as_ref() }.copied();
    let options = options.unwrap_or_else(|| innfer_load_options_default());
    let weight_storage = match options.weight_storage {
        INNFER_WEIGHT_STORAGE_F32 => WeightStorage::F32,
        INNFER_WEIGHT_STORAGE_BF16 => WeightStorage::Bf16,
        INNFER_WEIGHT_STORAGE_F16 => WeightStorage::F16,
        _ => {
            return Err(Fail::Invalid(
                "options",
                "weight_storage is not an INNFER_WEIGHT_STORAGE_* value",
            ));
        }
    };
    Ok(LoadOptions {
        max_bytes: if options.max_bytes > 0 {
            options.max_bytes
        } else {
            usize::MAX
        },
        weight_storage,
    })
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
    // Every message makes its own short-lived slice from the raw pointer: a slice made once
    // and shared by the guard's two closures would be invalidated (Stacked and Tree Borrows)
    // by the body's use before the panic path used it again.
    let message = |args: core::fmt::Arguments<'_>| {
        // SAFETY: `err` is NULL or `err_len` writable bytes (the load functions' contract),
        // and no other reference to them is live during this call.
        write_message(unsafe { err_buf(err, err_len) }, args);
    };
    message(format_args!(""));
    if out.is_null() {
        let f = Fail::Null("out");
        message(format_args!("{what}: {f}"));
        return f.status();
    }
    // SAFETY: `out` is non-NULL and, per the contract, writable.
    unsafe { out.write(core::ptr::null_mut()) };
    guard(
        || {
            message(format_args!(
                "{what}: internal error (a caught panic): a bug in innfer"
            ));
            INNFER_STATUS_INTERNAL
        },
        || match load() {
            Ok(model) => {
                let Ok(handle) = try_box(innfer_model {
                    magic: MODEL_MAGIC,
                    model,
                }) else {
                    message(format_args!("{what}: out of memory for the model's handle"));
                    return INNFER_STATUS_OUT_OF_MEMORY;
                };
                // SAFETY: checked non-NULL above.
                unsafe { out.write(Box::into_raw(handle)) };
                INNFER_STATUS_OK
            }
            Err(f) => {
                message(format_args!("{what}: {f}"));
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
/// `_INVALID_ARGUMENT`, `_FORMAT`, `_METADATA`, `_TENSOR`, `_UNSUPPORTED`, `_DIMS`,
/// `_OUT_OF_MEMORY` or `_INTERNAL`.
///
/// **Allocation.** Allocates the model (and temporaries). Out of memory is
/// `INNFER_STATUS_OUT_OF_MEMORY`, never an abort (see MEMORY);
/// `innfer_model_load_bytes_with()` can also cap what the load may allocate.
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
        load_bytes(
            "innfer_model_load_bytes",
            data,
            len,
            core::ptr::null(),
            out,
            err,
            err_len,
        )
    }
}

/// `innfer_model_load_bytes()` with options (`options` NULL: the defaults), e.g. a limit on
/// the memory the load may allocate. Returns what `innfer_model_load_bytes()` returns, and
/// `INNFER_STATUS_OUT_OF_MEMORY` if the load would pass `options->max_bytes` or the allocator
/// refuses.
///
/// **Thread safety.** May be called from any thread at any time.
///
/// # Safety
/// As `innfer_model_load_bytes()`; `options` is NULL or points to a readable
/// `innfer_load_options`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn innfer_model_load_bytes_with(
    data: *const u8,
    len: usize,
    options: *const innfer_load_options,
    out: *mut *mut innfer_model,
    err: *mut c_char,
    err_len: usize,
) -> innfer_status {
    // SAFETY: forwarded contract.
    unsafe {
        load_bytes(
            "innfer_model_load_bytes_with",
            data,
            len,
            options,
            out,
            err,
            err_len,
        )
    }
}

/// The body of the bytes loaders.
///
/// # Safety
/// As `innfer_model_load_bytes()`.
unsafe fn load_bytes(
    what: &str,
    data: *const u8,
    len: usize,
    options: *const innfer_load_options,
    out: *mut *mut innfer_model,
    err: *mut c_char,
    err_len: usize,
) -> innfer_status {
    // SAFETY: forwarded contract.
    unsafe {
        load_with(what, out, err, err_len, || {
            let options = load_options(options)?;
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
            Ok(Model::from_bytes_with(bytes, &options)?)
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
        load_file(
            "innfer_model_load_file",
            path,
            core::ptr::null(),
            out,
            err,
            err_len,
        )
    }
}

/// `innfer_model_load_file()` with options (`options` NULL: the defaults); see
/// `innfer_model_load_bytes_with()`.
///
/// **Thread safety.** May be called from any thread at any time.
///
/// # Safety
/// As `innfer_model_load_file()`; `options` is NULL or points to a readable
/// `innfer_load_options`.
#[cfg(feature = "std")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn innfer_model_load_file_with(
    path: *const c_char,
    options: *const innfer_load_options,
    out: *mut *mut innfer_model,
    err: *mut c_char,
    err_len: usize,
) -> innfer_status {
    // SAFETY: forwarded contract.
    unsafe {
        load_file(
            "innfer_model_load_file_with",
            path,
            options,
            out,
            err,
            err_len,
        )
    }
}

/// The body of the file loaders.
///
/// # Safety
/// As `innfer_model_load_file()`.
#[cfg(feature = "std")]
unsafe fn load_file(
    what: &str,
    path: *const c_char,
    options: *const innfer_load_options,
    out: *mut *mut innfer_model,
    err: *mut c_char,
    err_len: usize,
) -> innfer_status {
    // SAFETY: forwarded contract.
    unsafe {
        load_with(what, out, err, err_len, || {
            let options = load_options(options)?;
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
            Ok(Model::from_file_with(p, &options)?)
        })
    }
}

/// Bytes a model handle takes at the start of `innfer_model_init_static()`'s memory, rounded up
/// so the descriptors after it are aligned to `INNFER_ARENA_ALIGN`.
const STATIC_HANDLE_BYTES: usize =
    core::mem::size_of::<innfer_model>().div_ceil(INNFER_ARENA_ALIGN) * INNFER_ARENA_ALIGN;
const _: () = assert!(
    core::mem::align_of::<innfer_model>() <= INNFER_ARENA_ALIGN
        && INNFER_ARENA_ALIGN == crate::model::IMAGE_MEMORY_ALIGN
);

/// The caller's image as a slice that lives as long as the models built on it.
///
/// # Safety
/// `image` is NULL or points to `image_bytes` readable bytes that stay valid and unchanged for
/// as long as anything built on them (the C contract of `innfer_model_init_static`, which the
/// `'static` lifetime stands for).
unsafe fn caller_image(image: *const c_void, image_bytes: usize) -> Result<&'static [u8], Fail> {
    if image.is_null() {
        return Err(Fail::Null("image"));
    }
    if image_bytes > isize::MAX as usize {
        return Err(Fail::Invalid("image_bytes", "larger than memory"));
    }
    // SAFETY: the caller's contract.
    Ok(unsafe { core::slice::from_raw_parts(image.cast::<u8>(), image_bytes) })
}

/// What `innfer_model_static_size()` gives for `image`: the model handle and the descriptors
/// [`Model::image_memory_bytes`] counts (`innfer info` prints it).
pub fn model_static_bytes(image: &[u8]) -> crate::Result<usize> {
    Model::image_memory_bytes(image)?
        .checked_add(STATIC_HANDLE_BYTES)
        .ok_or(crate::Error::Argument(
            "the model would be larger than memory",
        ))
}

/// Bytes of memory `innfer_model_init_static()` needs for the packed image `image`
/// (`image_bytes` long): the model handle and its descriptors (the chain's blocks, their
/// halves and layers): about 450 bytes a block on a Cortex-M4 (7,104 for the 16 blocks of
/// models/gmm8_some), about twice that on a 64-bit host. The whole image is read
/// and checked, as `innfer_model_init_static()` checks it.
///
/// Returns `INNFER_STATUS_OK` (and writes `*bytes`), `_NULL_ARGUMENT` (`image` or `bytes`
/// NULL) or `_FORMAT` (not a valid packed image: docs/format.md, "Packed images").
/// Thread-safe; allocates nothing.
///
/// # Safety
/// `image` is NULL or points to `image_bytes` readable bytes; `bytes` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn innfer_model_static_size(
    image: *const c_void,
    image_bytes: usize,
    bytes: *mut usize,
) -> innfer_status {
    guard(
        || INNFER_STATUS_INTERNAL,
        || {
            if bytes.is_null() {
                return INNFER_STATUS_NULL_ARGUMENT;
            }
            // SAFETY: the caller's contract (the slice does not outlive this call).
            let need = unsafe { caller_image(image, image_bytes) }
                .and_then(|image| Ok(model_static_bytes(image)?));
            match need {
                Ok(n) => {
                    // SAFETY: non-NULL and writable per the contract.
                    unsafe { bytes.write_unaligned(n) };
                    INNFER_STATUS_OK
                }
                Err(f) => f.status(),
            }
        },
    )
}

/// Builds a model on a packed image (`innfer pack`, docs/format.md "Packed images") in
/// place, in caller memory: no allocation at all, no safetensors or JSON parsing.
///
/// The model **references the image's weights where they lie** (flash, or a mapped file): the
/// image must be 4-byte aligned and stay valid and unmodified for as long as the model lives.
/// `mem` receives the model handle and its descriptors: it must be aligned to
/// `INNFER_ARENA_ALIGN` (64) bytes, hold at least `innfer_model_static_size()` bytes, and stay
/// valid and untouched while the model lives. `*out` receives the handle (equal to `mem`).
///
/// The model works with `innfer_session_size()`, `innfer_session_init_static()`,
/// `innfer_session_create()` and every sampling call exactly as a loaded one (the same results
/// bit for bit, see docs/format.md). `innfer_model_free()` on it is a no-op: the caller
/// reuses `mem` (and the image) once the model's sessions are freed.
///
/// Returns `INNFER_STATUS_OK`, `_NULL_ARGUMENT` (`image`, `mem` or `out` NULL), `_FORMAT`
/// (not a valid packed image: wrong magic, format version or target, checksum mismatch,
/// truncated, misaligned, or a count that does not match), `_ARENA_MISALIGNED` or
/// `_ARENA_TOO_SMALL` (`mem`). On failure `*out` is set to NULL (if `out` is not NULL).
///
/// **Thread safety.** Any thread; the model, once built, as a loaded one.
///
/// # Safety
/// `image` is NULL or points to `image_bytes` readable bytes kept valid and unchanged while
/// the model lives; `mem` is NULL or points to `mem_bytes` writable bytes that nothing else
/// uses while the model lives; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn innfer_model_init_static(
    image: *const c_void,
    image_bytes: usize,
    mem: *mut c_void,
    mem_bytes: usize,
    out: *mut *mut innfer_model,
) -> innfer_status {
    if out.is_null() {
        return INNFER_STATUS_NULL_ARGUMENT;
    }
    // SAFETY: non-NULL and writable per the contract.
    unsafe { out.write(core::ptr::null_mut()) };
    guard(
        || INNFER_STATUS_INTERNAL,
        || {
            // SAFETY: the caller's contract.
            match unsafe { init_static(image, image_bytes, mem.cast(), mem_bytes) } {
                Ok(handle) => {
                    // SAFETY: as above.
                    unsafe { out.write(handle) };
                    INNFER_STATUS_OK
                }
                Err(f) => f.status(),
            }
        },
    )
}

/// # Safety
/// As `innfer_model_init_static`.
unsafe fn init_static(
    image: *const c_void,
    image_bytes: usize,
    mem: *mut u8,
    mem_bytes: usize,
) -> Result<*mut innfer_model, Fail> {
    // SAFETY: the caller's contract.
    let image = unsafe { caller_image(image, image_bytes) }?;
    if mem.is_null() {
        return Err(Fail::Null("mem"));
    }
    let address = mem as usize;
    if !address.is_multiple_of(INNFER_ARENA_ALIGN) {
        return Err(crate::Error::ArenaMisaligned {
            align: INNFER_ARENA_ALIGN,
            address,
        }
        .into());
    }
    if mem_bytes < STATIC_HANDLE_BYTES {
        return Err(crate::Error::ArenaTooSmall {
            needed: STATIC_HANDLE_BYTES,
            found: mem_bytes,
        }
        .into());
    }
    if mem_bytes > isize::MAX as usize || address.checked_add(mem_bytes).is_none() {
        return Err(Fail::Invalid("mem_bytes", "larger than memory"));
    }
    // SAFETY: `mem` holds `mem_bytes` ≥ STATIC_HANDLE_BYTES writable bytes the caller gives to
    // the model while it lives (which `'static` stands for); the descriptors' part starts
    // after the handle, so the two never overlap.
    let descriptors: &'static mut [u8] = unsafe {
        core::slice::from_raw_parts_mut(
            mem.add(STATIC_HANDLE_BYTES),
            mem_bytes - STATIC_HANDLE_BYTES,
        )
    };
    let model = Model::from_image(image, descriptors)?;
    let handle = mem.cast::<innfer_model>();
    // SAFETY: aligned to 64 ≥ align_of::<innfer_model>(), and STATIC_HANDLE_BYTES ≥ its size.
    unsafe {
        handle.write(innfer_model {
            magic: STATIC_MODEL_MAGIC,
            model,
        })
    };
    Ok(handle)
}

/// Releases a model. NULL is a no-op, and so is a model built by `innfer_model_init_static()`
/// (its memory is the caller's, to reuse once its sessions are freed).
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

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use alloc::string::String;
    use alloc::vec::Vec;

    fn message(err: &[c_char]) -> String {
        let bytes: Vec<u8> = err
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn a_panic_while_loading_is_reported_in_err_and_leaves_out_null() {
        let mut out = core::ptr::dangling_mut::<innfer_model>();
        let mut err = [1 as c_char; 80];
        // SAFETY: valid out and err pointers; the load closure panics before touching them.
        let status = unsafe {
            load_with("load", &mut out, err.as_mut_ptr(), err.len(), || {
                panic!("a bug in a loader")
            })
        };
        assert_eq!(status, INNFER_STATUS_INTERNAL);
        assert!(out.is_null());
        assert!(
            message(&err).starts_with("load: internal error"),
            "{}",
            message(&err)
        );
    }

    #[test]
    fn a_load_error_is_reported_in_err() {
        let mut out = core::ptr::null_mut();
        let mut err = [0 as c_char; 120];
        // SAFETY: valid pointers; 3 readable bytes.
        let status = unsafe {
            innfer_model_load_bytes(b"abc".as_ptr(), 3, &mut out, err.as_mut_ptr(), err.len())
        };
        assert_eq!(status, INNFER_STATUS_FORMAT);
        assert!(out.is_null());
        assert!(
            message(&err).starts_with("innfer_model_load_bytes: "),
            "{}",
            message(&err)
        );
    }
}

/// Number of trainable parameters of the model (subnet weights and biases, global affine
/// scales and offsets, ActNorm); 0 if `m` is NULL or not a live model. What `innfer info`
/// prints. Thread-safe; allocates nothing.
///
/// # Safety
/// `m` is NULL or a live model.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn innfer_model_parameter_count(m: *const innfer_model) -> usize {
    guard(
        || 0,
        || {
            // SAFETY: the caller's contract.
            unsafe { model_ref(m) }.map_or(0, Model::parameter_count)
        },
    )
}

/// `which` of `innfer_model_standardization()`: the parameters x (`x_dim` values).
pub const INNFER_VARIABLE_X: i32 = 0;
/// `which` of `innfer_model_standardization()`: the observation y, the condition (`y_dim`
/// values, `cond_dim` for a model without a sampling layout).
pub const INNFER_VARIABLE_Y: i32 = 1;

/// The standardisation the model applies to x or y inside (`which`: `INNFER_VARIABLE_X` or
/// `INNFER_VARIABLE_Y`): the network sees `(v - mean) / std`, after the variable's transform
/// (docs/format.md §3). Callers always pass raw units; this is for reporting and checks.
///
/// - `standardized`: receives 1 if the model standardises the variable, 0 if not (NULL: not
///   written);
/// - `mean`, `std`: receive the `len` means and standard deviations (0 and 1 when the model
///   does not standardise the variable); each may be NULL (not written). When either is
///   given, `len` must be the variable's width (`x_dim`, or `y_dim` / `cond_dim`, from
///   `innfer_model_dims()`).
///
/// Returns `INNFER_STATUS_OK`, `_NULL_ARGUMENT` (`m` NULL), `_INVALID_ARGUMENT` (`which` is
/// neither constant, `m` not a live model, a pointer not aligned to `float`, `mean` and `std`
/// overlapping) or `_BUFFER_SIZE` (`len` is not the variable's width). Nothing is written on
/// failure. Thread-safe; allocates nothing.
///
/// # Safety
/// `m` is NULL or a live model; `standardized` is NULL or writable; `mean` and `std` are NULL
/// or hold `len` writable floats.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn innfer_model_standardization(
    m: *const innfer_model,
    which: i32,
    standardized: *mut i32,
    mean: *mut f32,
    std: *mut f32,
    len: usize,
) -> innfer_status {
    use super::buffers::{Buf, disjoint};
    let result = || -> Result<(), Fail> {
        // SAFETY: the caller's contract.
        let model = unsafe { model_ref(m) }?;
        let layout = model.layout();
        let (norm, width) = match which {
            INNFER_VARIABLE_X => (model.x_norm.as_ref(), layout.x_dim()),
            INNFER_VARIABLE_Y => {
                let width = match layout {
                    Layout::None => model.cond_dim(),
                    _ => layout.y_dim(),
                };
                (model.y_norm.as_ref(), width)
            }
            _ => {
                return Err(Fail::Invalid(
                    "which",
                    "neither INNFER_VARIABLE_X nor INNFER_VARIABLE_Y",
                ));
            }
        };
        let width = norm.map_or(width, |n| n.mean.len());
        let wanted = !mean.is_null() || !std.is_null();
        if wanted && len != width {
            return Err(crate::Error::BufferLength {
                buffer: if mean.is_null() { "std" } else { "mean" },
                expected: width,
                found: len,
            }
            .into());
        }
        let n = if wanted { len } else { 0 };
        let mb = Buf::new("mean", mean, if mean.is_null() { 0 } else { n }, true)?;
        let sb = Buf::new("std", std, if std.is_null() { 0 } else { n }, true)?;
        disjoint(&[mb, sb])?;
        // SAFETY: lengths checked above, pointers non-NULL when their length is not 0, disjoint.
        let (mean, std) = unsafe { (mb.output(), sb.output()) };
        match norm {
            Some(norm) => {
                mean.copy_from_slice(&norm.mean[..mean.len()]);
                std.copy_from_slice(&norm.std[..std.len()]);
            }
            None => {
                mean.fill(0.0);
                std.fill(1.0);
            }
        }
        // SAFETY: NULL or writable per the contract.
        unsafe { put(standardized, i32::from(norm.is_some())) };
        Ok(())
    };
    guard(
        || INNFER_STATUS_INTERNAL,
        || match result() {
            Ok(()) => INNFER_STATUS_OK,
            Err(f) => f.status(),
        },
    )
}
