//! The firmware's panic hook: what the bare-metal C library does on a panic (a bug: innfer
//! validates every input and reports errors as statuses). Without `std` a panic cannot be
//! caught and turned into `INNFER_STATUS_INTERNAL`; the library's panic handler
//! (src/baremetal.rs) reports it to the hook and then ends the program.

use core::ffi::c_char;
use core::sync::atomic::{AtomicPtr, Ordering};

/// A firmware function the bare-metal C library calls when it panics, with a NUL-terminated
/// message (`message_len` bytes before the NUL, truncated to fit a small buffer on the stack):
/// the panic's place in the library's source and what it says. It should log, reset or halt
/// the device (it
/// runs in the failed call's context: do not call innfer from it). If it returns, the library
/// calls the C library's `abort()`.
pub type innfer_panic_hook =
    Option<unsafe extern "C" fn(message: *const c_char, message_len: usize)>;

static HOOK: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());

/// Sets the function a panic in the bare-metal C library calls (NULL: none). Without a hook,
/// or when the hook returns, a panic calls the C library's `abort()` (on newlib: `_exit(1)`,
/// which with semihosting ends the program; give `abort` or the hook a reset for a device).
/// It never spins: a panic never leaves the device hanging inside the library.
///
/// Only the C library built without `std` for bare-metal targets has a panic handler that
/// calls the hook; hosted builds catch panics and return `INNFER_STATUS_INTERNAL` instead, and
/// a Rust firmware using the innfer crate handles panics with its own handler.
///
/// Thread-safe; call it once at start-up, before other innfer calls.
#[unsafe(no_mangle)]
pub extern "C" fn innfer_set_panic_hook(hook: innfer_panic_hook) {
    let ptr = hook.map_or(core::ptr::null_mut(), |f| f as *mut ());
    HOOK.store(ptr, Ordering::Release);
}

/// Calls the firmware's hook (if one is set) with `info` formatted as the message.
#[cfg(feature = "baremetal-runtime")]
pub(crate) fn report(info: &core::panic::PanicInfo<'_>) {
    let ptr = HOOK.load(Ordering::Acquire);
    if ptr.is_null() {
        return;
    }
    // SAFETY: a non-null HOOK was stored by `innfer_set_panic_hook` from a function pointer of
    // exactly this type.
    let hook: unsafe extern "C" fn(*const c_char, usize) = unsafe { core::mem::transmute(ptr) };
    let mut buf = [0u8; 160];
    super::status::write_message(&mut buf, format_args!("innfer: {info}"));
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len() - 1);
    // SAFETY: the firmware's function, given a NUL-terminated message of `len` bytes that
    // lives for the call.
    unsafe { hook(buf.as_ptr().cast(), len) };
}
