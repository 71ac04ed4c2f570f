//! What a bare-metal static library needs from the firmware: a global allocator (used only
//! while loading a model and creating heap sessions; never on the hot path) forwarding to the
//! firmware's C `malloc`/`free`, and a panic handler. The library never panics on valid use
//! (every input is validated and reported as an error), so the handler only guards bugs.

use core::alloc::{GlobalAlloc, Layout};

unsafe extern "C" {
    fn malloc(size: usize) -> *mut u8;
    fn free(ptr: *mut u8);
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
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    loop {
        core::hint::spin_loop();
    }
}
