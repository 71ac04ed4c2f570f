//! The C ABI (see include/innfer.h, generated from this module by cbindgen).
//!
//! Every `extern "C"` function checks its pointers and sizes, turns [`crate::Error`] into an
//! [`innfer_status`], and (with `std`) runs its body inside `catch_unwind`, so no panic crosses
//! the boundary. Nothing here allocates after a session exists: messages are formatted into
//! fixed buffers with `core::fmt::Write`.
//!
//! The handle types are opaque to C. A session handle holds an `innfer::Session<'static,
//! 'static>` that borrows its model through a raw pointer; the C contract (the model outlives
//! its sessions) is what makes that `'static` sound.
#![allow(non_camel_case_types)]

// Declaration order is the order of the header's sections (cbindgen keeps it).
mod status;

mod model;

mod session;

mod calls;

mod buffers;

#[cfg(not(feature = "std"))]
pub(crate) mod panic_hook;

pub use calls::*;
pub use model::*;
#[cfg(not(feature = "std"))]
pub use panic_hook::*;
pub use session::*;
pub use status::*;

/// Major version of the library (semantic versioning).
pub const INNFER_VERSION_MAJOR: u32 = 0;
/// Minor version of the library.
pub const INNFER_VERSION_MINOR: u32 = 1;
/// Patch version of the library.
pub const INNFER_VERSION_PATCH: u32 = 0;
/// Version of the C ABI this header describes. Compare with `innfer_abi_version()` at start-up:
/// a library with a different ABI version must not be used with this header. Version 2:
/// `innfer_load_options` gained `weight_storage` (a program built against version 1 passes a
/// smaller struct).
pub const INNFER_ABI_VERSION: u32 = 2;
/// Alignment in bytes that memory given to `innfer_session_init_static` must have.
pub const INNFER_ARENA_ALIGN: usize = 64;
/// `layout` value from `innfer_model_dims`: the model has no sampling layout
/// (forward and inverse only; the sampling calls return `INNFER_STATUS_NO_LAYOUT`).
pub const INNFER_LAYOUT_NONE: i32 = 0;
/// `layout` value: the paper's INN, input `[x, pad_x]`, output `[z, pad_zy, y]`.
pub const INNFER_LAYOUT_INN: i32 = 1;
/// `layout` value: a conditional INN, x <-> z of equal width, y is the condition.
pub const INNFER_LAYOUT_CINN: i32 = 2;

const _: () = assert!(INNFER_ARENA_ALIGN == crate::ARENA_ALIGN);

/// Runs `f`, turning a panic into `fail` (std builds; without std a panic reaches the
/// firmware's panic handler, which must not return).
///
/// A caught panic has already run the process's panic hook, which by default prints the
/// message to stderr. innfer installs no hook to hide that: a hook is process-wide, so one of
/// ours would replace or wrap the host's (and race with any other library's) for every thread
/// of the process. The host decides (`std::panic::set_hook` in a Rust host). What innfer does
/// instead is not panic: loading checks every fact of a file before using it
/// (docs/format.md §8), calls check their arguments, and fuzz/ holds both to it.
#[cfg(feature = "std")]
#[inline]
pub(crate) fn guard<R>(fail: impl FnOnce() -> R, f: impl FnOnce() -> R) -> R {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(_) => fail(),
    }
}

#[cfg(not(feature = "std"))]
#[inline]
pub(crate) fn guard<R>(_fail: impl FnOnce() -> R, f: impl FnOnce() -> R) -> R {
    f()
}

/// `value` in a heap box, or `value` back if the allocator refuses: a handle's allocation fails
/// with `INNFER_STATUS_OUT_OF_MEMORY` like the memory it holds, where `Box::new` would abort.
pub(crate) fn try_box<T>(value: T) -> Result<alloc::boxed::Box<T>, T> {
    let layout = core::alloc::Layout::new::<T>();
    assert!(layout.size() > 0, "handles are not zero-sized");
    // SAFETY: a non-zero-sized layout; on success the block is T's size and alignment, written
    // before the box owns it, and freed by Box's drop with the same layout.
    unsafe {
        let at = alloc::alloc::alloc(layout).cast::<T>();
        if at.is_null() {
            return Err(value);
        }
        at.write(value);
        Ok(alloc::boxed::Box::from_raw(at))
    }
}

/// The version of the C ABI the library implements (`INNFER_ABI_VERSION` of its header).
///
/// Thread-safe; never fails.
#[unsafe(no_mangle)]
pub extern "C" fn innfer_abi_version() -> u32 {
    INNFER_ABI_VERSION
}

/// The library version as a static NUL-terminated string such as `"0.1.0"`.
///
/// The string is owned by the library and lives for the whole program; do not free it.
/// Thread-safe; never returns NULL.
#[unsafe(no_mangle)]
pub extern "C" fn innfer_version_string() -> *const core::ffi::c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

#[cfg(test)]
mod tests {
    #[test]
    fn version_constants_match_the_package() {
        let v = env!("CARGO_PKG_VERSION");
        let want = alloc::format!(
            "{}.{}.{}",
            super::INNFER_VERSION_MAJOR,
            super::INNFER_VERSION_MINOR,
            super::INNFER_VERSION_PATCH
        );
        assert_eq!(v, want);
    }
}
