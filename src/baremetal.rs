//! What the bare-metal C library needs besides its C API, since a C firmware cannot provide
//! it to Rust code: a global allocator forwarding to the firmware's C `malloc`/`free` (used
//! while loading a model and creating heap sessions, never on the hot path), and a panic
//! handler. The `baremetal-runtime` feature (turned on by capi/, the C library) adds them; a
//! Rust firmware using the innfer crate brings its own allocator and panic handler instead.
//!
//! The library does not panic on valid or invalid use (every input is validated and reported
//! as an error), so the handler only guards bugs: it reports to the firmware's hook
//! (`innfer_set_panic_hook`, src/ffi/panic_hook.rs) and then calls the C library's `abort()`,
//! never spinning.

use core::alloc::{GlobalAlloc, Layout};

unsafe extern "C" {
    fn malloc(size: usize) -> *mut u8;
    fn free(ptr: *mut u8);
    fn abort() -> !;
}

struct FirmwareMalloc;

// Over-allocate by `align` and keep the pointer malloc returned just before the block.
// SAFETY: `alloc` returns null or `layout.size()` bytes aligned to `layout.align()` inside one
// malloc block (C malloc aligns to at least a word, so the word before them is in the block
// too), valid until `dealloc` hands that block back to `free`.
unsafe impl GlobalAlloc for FirmwareMalloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let align = layout.align().max(core::mem::size_of::<usize>());
        let Some(total) = layout.size().checked_add(align) else {
            return core::ptr::null_mut();
        };
        // SAFETY: plain C malloc.
        let raw = unsafe { malloc(total) };
        if raw.is_null() {
            return raw;
        }
        let offset = align - (raw as usize % align);
        // SAFETY: offset ≤ align, so the result and the word before it lie inside the block.
        unsafe {
            let ptr = raw.add(offset);
            ptr.cast::<usize>().sub(1).write_unaligned(raw as usize);
            ptr
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from `alloc`, which stored malloc's pointer just before it.
        unsafe {
            let raw = ptr.cast::<usize>().sub(1).read_unaligned() as *mut u8;
            free(raw);
        }
    }
}

#[global_allocator]
static ALLOCATOR: FirmwareMalloc = FirmwareMalloc;

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    crate::ffi::panic_hook::report(info);
    // SAFETY: C abort takes no arguments and does not return.
    unsafe { abort() }
}
