//! Session handles: size, create (heap or caller memory), free, reseed, last error.

use alloc::boxed::Box;
use core::ffi::c_char;
use core::mem::{align_of, size_of};

use super::model::{innfer_model, model_ref};
use super::status::*;
use super::{INNFER_ARENA_ALIGN, guard, try_box};
use crate::model::Model;
use crate::session::Session;

const SESSION_MAGIC: u64 = u64::from_le_bytes(*b"innferS1");

/// Bytes of the per-session message buffer (including the NUL).
const MESSAGE_BYTES: usize = 256;

/// A session (opaque): scratch memory, random stream and last-error message for running one
/// model from one thread at a time.
///
/// Created by `innfer_session_create` (heap) or `innfer_session_init_static` (inside caller
/// memory), released by `innfer_session_free`. It borrows its model, which must outlive it.
pub struct innfer_session {
    magic: u64,
    /// Heap-owned (`innfer_session_free` drops and deallocates) or in caller memory (drop only).
    heap: bool,
    /// The handle the session was created from, for `innfer_session_model`.
    model: *const innfer_model,
    /// Borrows the model through a raw pointer: the C contract keeps the model alive longer.
    session: Session<'static, 'static>,
    /// The last failure's message, NUL-terminated.
    message: [u8; MESSAGE_BYTES],
}

/// Bytes the handle takes at the start of caller memory, rounded up so the arena after it is
/// aligned to `INNFER_ARENA_ALIGN`.
const HANDLE_BYTES: usize =
    size_of::<innfer_session>().div_ceil(INNFER_ARENA_ALIGN) * INNFER_ARENA_ALIGN;
const _: () = assert!(align_of::<innfer_session>() <= INNFER_ARENA_ALIGN);

fn caller_bytes(model: &Model, max_batch: usize) -> Result<usize, Fail> {
    Session::arena_bytes(model, max_batch)?
        .checked_add(HANDLE_BYTES)
        .ok_or(Fail::Invalid(
            "max_batch",
            "the session would be larger than memory",
        ))
}

/// What `innfer_session_size()` gives for `model` at `max_batch` rows per call: the session's
/// arena ([`Session::arena_bytes`], all a Rust `Session::in_memory` needs) plus the C session
/// handle placed before it. `None` if `max_batch` is 0 or the session would be larger than
/// memory. `innfer info` prints it.
pub fn session_static_bytes(model: &Model, max_batch: usize) -> Option<usize> {
    caller_bytes(model, max_batch).ok()
}

/// Runs `body` on a live session, recording a failure's message in the handle.
///
/// # Safety
/// `s` is NULL or a live session handle not used by another thread.
pub(crate) unsafe fn with_session(
    s: *mut innfer_session,
    what: &'static str,
    body: impl FnOnce(&mut Session<'static, 'static>) -> Result<(), Fail>,
) -> innfer_status {
    if s.is_null() {
        return INNFER_STATUS_NULL_ARGUMENT;
    }
    guard(
        || {
            // SAFETY: the handle is live (checked before `body` ran); the panicking borrow is gone.
            let message = unsafe { &mut (*s).message };
            write_message(
                message,
                format_args!("{what}: internal error (a caught panic): a bug in innfer"),
            );
            INNFER_STATUS_INTERNAL
        },
        || {
            // SAFETY: a live handle per the contract; the magic check guards freed static sessions.
            let handle = unsafe { &mut *s };
            if handle.magic != SESSION_MAGIC {
                return INNFER_STATUS_INVALID_ARGUMENT;
            }
            match body(&mut handle.session) {
                Ok(()) => {
                    // The message describes the last call: none after a success.
                    handle.message[0] = 0;
                    INNFER_STATUS_OK
                }
                Err(f) => {
                    write_message(&mut handle.message, format_args!("{what}: {f}"));
                    f.status()
                }
            }
        },
    )
}

/// Bytes of caller memory `innfer_session_init_static()` needs for `m` at `max_batch` rows per
/// call. The count includes the session handle itself, which lives at the start of that memory
/// (its error-message buffer and state, a few hundred bytes): it is the Rust API's
/// `Session::arena_bytes` plus that handle, and what `innfer info` prints as the C session
/// memory.
///
/// Returns `INNFER_STATUS_OK` (and writes `*bytes`), `_NULL_ARGUMENT` (`m` or `bytes` NULL) or
/// `_INVALID_ARGUMENT` (`max_batch` is 0 or too large to address). Thread-safe; allocates
/// nothing.
///
/// # Safety
/// `m` is NULL or a live model; `bytes` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn innfer_session_size(
    m: *const innfer_model,
    max_batch: usize,
    bytes: *mut usize,
) -> innfer_status {
    guard(
        || INNFER_STATUS_INTERNAL,
        || {
            // SAFETY: the caller's contract.
            let model = match unsafe { model_ref(m) } {
                Ok(model) => model,
                Err(f) => return f.status(),
            };
            if bytes.is_null() {
                return INNFER_STATUS_NULL_ARGUMENT;
            }
            match caller_bytes(model, max_batch) {
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

/// Creates a session inside caller memory: no allocation at all, ever.
///
/// `memory` must be aligned to `INNFER_ARENA_ALIGN` (64) bytes and hold at least the
/// `innfer_session_size()` bytes for the same model and `max_batch`. The session handle is
/// placed at the start of `memory`, its scratch arena after it; `*out` receives the handle
/// (equal to `memory`). The memory stays the caller's: it must stay valid and untouched until
/// `innfer_session_free()` and may be reused or released after that. The model must outlive the
/// session. The random stream starts at seed 0, stream 0.
///
/// Returns `INNFER_STATUS_OK`, `_NULL_ARGUMENT` (`m`, `memory` or `out` NULL),
/// `_INVALID_ARGUMENT` (`max_batch` 0 or too large), `_ARENA_MISALIGNED` or
/// `_ARENA_TOO_SMALL`. On failure `*out` is set to NULL (if `out` is not NULL).
///
/// **Thread safety.** Any thread; many sessions may share one model.
///
/// # Safety
/// `m` is NULL or a live model; `memory` is NULL or points to `bytes` writable bytes that
/// nothing else uses until the session is freed; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn innfer_session_init_static(
    m: *const innfer_model,
    max_batch: usize,
    memory: *mut core::ffi::c_void,
    bytes: usize,
    out: *mut *mut innfer_session,
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
            let result = unsafe { init_static(m, max_batch, memory.cast(), bytes) };
            match result {
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
/// As `innfer_session_init_static`.
unsafe fn init_static(
    m: *const innfer_model,
    max_batch: usize,
    memory: *mut u8,
    bytes: usize,
) -> Result<*mut innfer_session, Fail> {
    // SAFETY: the caller's contract; the model outlives the session (documented), which is what
    // the 'static lifetime stands for.
    let model: &'static Model = unsafe { model_ref(m) }?;
    if memory.is_null() {
        return Err(Fail::Null("memory"));
    }
    let need = caller_bytes(model, max_batch)?;
    let address = memory as usize;
    if address & (INNFER_ARENA_ALIGN - 1) != 0 {
        return Err(crate::Error::ArenaMisaligned {
            align: INNFER_ARENA_ALIGN,
            address,
        }
        .into());
    }
    if bytes < need {
        return Err(crate::Error::ArenaTooSmall {
            needed: need,
            found: bytes,
        }
        .into());
    }
    if bytes > isize::MAX as usize || address.checked_add(bytes).is_none() {
        return Err(Fail::Invalid("bytes", "larger than memory"));
    }
    // SAFETY: `memory` holds `bytes` ≥ HANDLE_BYTES writable bytes that the caller gives to the
    // session until it is freed; the arena slice starts after the handle, so the two never
    // overlap.
    let arena: &'static mut [u8] =
        unsafe { core::slice::from_raw_parts_mut(memory.add(HANDLE_BYTES), bytes - HANDLE_BYTES) };
    let session = Session::in_memory(model, max_batch, arena)?;
    let handle = memory.cast::<innfer_session>();
    // SAFETY: aligned to 64 ≥ align_of::<innfer_session>(), and HANDLE_BYTES ≥ its size.
    unsafe {
        handle.write(innfer_session {
            magic: SESSION_MAGIC,
            heap: false,
            model: m,
            session,
            message: [0; MESSAGE_BYTES],
        })
    };
    Ok(handle)
}

/// Creates a session with its memory on the heap (allocated here, once; no call on the session
/// allocates afterwards). The model must outlive the session. The random stream starts at
/// seed 0, stream 0.
///
/// On success `*out` receives a session owned by the caller, to be released with
/// `innfer_session_free()`; on failure `*out` is set to NULL (if `out` is not NULL).
/// Returns `INNFER_STATUS_OK`, `_NULL_ARGUMENT` (`m` or `out` NULL), `_INVALID_ARGUMENT`
/// (`max_batch` 0 or too large to address) or `_OUT_OF_MEMORY` (the allocator refused the
/// session's memory or its handle: never an abort).
///
/// **Thread safety.** Any thread; many sessions may share one model.
///
/// # Safety
/// `m` is NULL or a live model; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn innfer_session_create(
    m: *const innfer_model,
    max_batch: usize,
    out: *mut *mut innfer_session,
) -> innfer_status {
    if out.is_null() {
        return INNFER_STATUS_NULL_ARGUMENT;
    }
    // SAFETY: non-NULL and writable per the contract.
    unsafe { out.write(core::ptr::null_mut()) };
    guard(
        || INNFER_STATUS_INTERNAL,
        || {
            // SAFETY: the caller's contract; the model outlives the session (documented).
            let model: &'static Model = match unsafe { model_ref(m) } {
                Ok(model) => model,
                Err(f) => return f.status(),
            };
            let result = caller_bytes(model, max_batch)
                .and_then(|_| Session::new(model, max_batch).map_err(Fail::from));
            match result {
                Ok(session) => {
                    let Ok(handle) = try_box(innfer_session {
                        magic: SESSION_MAGIC,
                        heap: true,
                        model: m,
                        session,
                        message: [0; MESSAGE_BYTES],
                    }) else {
                        return INNFER_STATUS_OUT_OF_MEMORY;
                    };
                    // SAFETY: as above.
                    unsafe { out.write(Box::into_raw(handle)) };
                    INNFER_STATUS_OK
                }
                Err(f) => f.status(),
            }
        },
    )
}

/// Releases a session. NULL is a no-op.
///
/// A heap session (`innfer_session_create`) is deallocated. A static session
/// (`innfer_session_init_static`) is only invalidated: its memory stays the caller's, and calls
/// on the stale handle return `INNFER_STATUS_INVALID_ARGUMENT` until the memory is reused.
/// Allocates nothing.
///
/// # Safety
/// `s` is NULL or a live session not in use by another thread; it is invalid afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn innfer_session_free(s: *mut innfer_session) {
    if s.is_null() {
        return;
    }
    guard(
        || (),
        || {
            // SAFETY: a live handle per the contract (heap ones come from `Box::into_raw`).
            unsafe {
                if (*s).magic != SESSION_MAGIC {
                    return;
                }
                (*s).magic = 0;
                if (*s).heap {
                    drop(Box::from_raw(s));
                } else {
                    // Drops the session in place; `magic` (plain data) stays 0 for the check above.
                    core::ptr::drop_in_place(s);
                }
            }
        },
    )
}

/// Restarts the session's random stream at `(seed, stream)`: the next sample drawn is row 0 of
/// that stream. Different streams with the same seed are independent. The same `(seed,
/// stream)` gives the same samples whatever the `max_batch` and however the samples are split
/// over calls (on one machine: other CPUs may round differently).
///
/// Returns `INNFER_STATUS_OK`, `_NULL_ARGUMENT` or `_INVALID_ARGUMENT` (a freed static
/// session). Allocates nothing.
///
/// # Safety
/// `s` is NULL or a live session not in use by another thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn innfer_session_reseed(
    s: *mut innfer_session,
    seed: u64,
    stream: u64,
) -> innfer_status {
    // SAFETY: forwarded contract.
    unsafe {
        with_session(s, "innfer_session_reseed", |session| {
            session.reseed(seed, stream);
            Ok(())
        })
    }
}

/// Moves the session's random stream to row `row` of its current `(seed, stream)`: the next
/// sample drawn is row `row`. Nothing is drawn or discarded, so any position costs the same.
///
/// **The stream contract.** Sample row `r` of `(seed, stream)` draws its latent vector from a
/// generator keyed by `(seed, stream, r)` alone. Every sampling call draws rows `next, next+1,
/// ...` in the order of its output and leaves `next` after the last; `innfer_sample_batch()`
/// with `n_samples` per observation gives observation `j` of the call rows `next +
/// j*n_samples ... next + j*n_samples + n_samples - 1`. So the samples of observation `j` of a
/// run that draws `n` samples for each observation are the same bits however the run is split
/// over calls, sessions, threads, processes or MPI ranks (on the same CPU kernel: see
/// `innfer_session_reseed()`). A process that handles observations `j0 ... j1-1` of such a run
/// does (with the run's seed and stream):
///
/// ```c
/// innfer_session_reseed(s, seed, stream);
/// innfer_session_seek(s, (uint64_t)j0 * n);
/// innfer_sample_batch(s, y + j0 * y_dim, j1 - j0, n, x_block);
/// ```
///
/// A later sampling call whose rows would carry the next-row counter past 2^64 - 1 fails with
/// `INNFER_STATUS_INVALID_ARGUMENT` and draws nothing.
///
/// Returns `INNFER_STATUS_OK`, `_NULL_ARGUMENT` or `_INVALID_ARGUMENT` (a freed static
/// session). Allocates nothing.
///
/// # Safety
/// `s` is NULL or a live session not in use by another thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn innfer_session_seek(s: *mut innfer_session, row: u64) -> innfer_status {
    // SAFETY: forwarded contract.
    unsafe {
        with_session(s, "innfer_session_seek", |session| {
            session.seek(row);
            Ok(())
        })
    }
}

/// The position of the session's random stream: its `seed` and `stream` (as given to
/// `innfer_session_reseed()`) and `next_row`, the row the next sample will draw (see
/// `innfer_session_seek()`). Any output pointer may be NULL. Saved and restored with
/// `innfer_session_reseed()` and `innfer_session_seek()`, it lets a run stop and resume with
/// the same samples.
///
/// Returns `INNFER_STATUS_OK`, `_NULL_ARGUMENT` (`s` NULL) or `_INVALID_ARGUMENT` (not a live
/// session). Allocates nothing.
///
/// # Safety
/// `s` is NULL or a live session not in use by another thread; each output is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn innfer_session_rng_position(
    s: *const innfer_session,
    seed: *mut u64,
    stream: *mut u64,
    next_row: *mut u64,
) -> innfer_status {
    if s.is_null() {
        return INNFER_STATUS_NULL_ARGUMENT;
    }
    // SAFETY: a live handle per the contract.
    let handle = unsafe { &*s };
    if handle.magic != SESSION_MAGIC {
        return INNFER_STATUS_INVALID_ARGUMENT;
    }
    let (sd, st, row) = handle.session.rng_position();
    for (out, value) in [(seed, sd), (stream, st), (next_row, row)] {
        if !out.is_null() {
            // SAFETY: non-NULL and writable per the contract.
            unsafe { out.write_unaligned(value) };
        }
    }
    INNFER_STATUS_OK
}

/// Splits every call of the session over `threads` threads: the calling thread and
/// `threads - 1` worker threads that belong to the session (1, the default, runs on the
/// calling thread only). Results are bit-identical for any thread count (every sample row has
/// its own random stream, see `innfer_session_seek()`). Calls shorter than about 4 M
/// multiply-adds (at least 24 rows) stay on the calling thread: waking the workers would cost
/// more than it saves; give such a session a `max_batch` of a few thousand rows for small
/// models.
///
/// This call allocates (the workers' scratch, a few KB each, and their stacks) and starts the
/// workers; it ends those of an earlier call. The workers wait on a condition variable
/// between calls, allocate nothing after this call, and end with `innfer_session_free()`. A
/// session in caller memory (`innfer_session_init_static()`) keeps its arena there; only the
/// workers' scratch is on the heap. Only in builds with the standard library.
///
/// Returns `INNFER_STATUS_OK`, `_NULL_ARGUMENT`, `_INVALID_ARGUMENT` (`threads` is 0 or more
/// than 1024, or a freed static session) or `_OUT_OF_MEMORY` (the allocator refused the
/// workers' scratch, or the system refused to start a thread: never an abort; the session
/// then runs on the calling thread alone).
///
/// # Safety
/// `s` is NULL or a live session not in use by another thread.
#[cfg(feature = "std")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn innfer_session_set_threads(
    s: *mut innfer_session,
    threads: usize,
) -> innfer_status {
    // SAFETY: forwarded contract.
    unsafe {
        with_session(s, "innfer_session_set_threads", |session| {
            session.set_threads(threads).map_err(Fail::from)
        })
    }
}

/// The `max_batch` the session was created with (the most rows one forward/inverse call takes);
/// 0 if `s` is NULL or not a live session. Allocates nothing.
///
/// # Safety
/// `s` is NULL or a live session.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn innfer_session_max_batch(s: *const innfer_session) -> usize {
    // SAFETY: forwarded contract.
    unsafe { live(s) }.map_or(0, |h| h.session.max_batch())
}

/// The model the session runs: the `m` it was created with, so that code holding only a
/// session can read the dimensions with `innfer_model_dims()`. NULL if `s` is NULL or not a
/// live session. The model stays the caller's (do not free it through this pointer while
/// other code uses it); the pointer is valid as long as the model is. Allocates nothing.
///
/// **Thread safety.** Any thread, concurrently with other calls on `s` except
/// `innfer_session_free(s)`: it reads a field set at creation.
///
/// # Safety
/// `s` is NULL or a live session.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn innfer_session_model(s: *const innfer_session) -> *const innfer_model {
    // SAFETY: forwarded contract.
    unsafe { live(s) }.map_or(core::ptr::null(), |h| h.model)
}

/// The detailed message of the last call on this session if it failed, such as
/// `"innfer_forward: batch of 300 rows exceeds the session's maximum batch 256"`; `""` if it
/// succeeded or no call has been made. Every call that takes a non-const `innfer_session *`
/// sets it (clears it on success); the read-only queries (`innfer_session_max_batch()`,
/// `_threads()`, `_model()`, `_rng_position()`, this one) leave it as it is.
///
/// The string lives inside the session (a fixed 256-byte buffer, no heap); it stays valid until
/// the next call on `s` or `innfer_session_free(s)`. Do not free it. Failures of
/// `innfer_session_create`/`_init_static` and NULL-handle failures have no session to record
/// in: use `innfer_status_string()`. Returns a static message if `s` is NULL.
///
/// # Safety
/// `s` is NULL or a live session not in use by another thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn innfer_session_last_error(s: *const innfer_session) -> *const c_char {
    if s.is_null() {
        return c"the session handle is NULL".as_ptr();
    }
    // SAFETY: a live handle per the contract.
    let handle = unsafe { &*s };
    if handle.magic != SESSION_MAGIC {
        return c"not a live innfer_session handle".as_ptr();
    }
    handle.message.as_ptr().cast()
}

/// Threads each call of the session uses (1 unless `innfer_session_set_threads()` gave it
/// more); 0 if `s` is NULL or not a live session. Allocates nothing.
///
/// # Safety
/// `s` is NULL or a live session.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn innfer_session_threads(s: *const innfer_session) -> usize {
    // SAFETY: forwarded contract.
    unsafe { live(s) }.map_or(0, |h| h.session.threads())
}

/// The handle behind `s` for a read-only query: `None` if NULL or not a live session.
///
/// # Safety
/// `s` is NULL or a live session handle (a freed static one is caught by its magic).
unsafe fn live<'a>(s: *const innfer_session) -> Option<&'a innfer_session> {
    // SAFETY: non-NULL handles are live per the contract.
    let handle = unsafe { s.as_ref() }?;
    (handle.magic == SESSION_MAGIC).then_some(handle)
}
