//! Any bytes shaped as a packed image (docs/format.md §9) build a model or give an error, on
//! both paths: in place (`Model::from_image`, the firmware's: descriptors in caller memory, the
//! weights read where they lie) and on a heap copy (`Model::from_bytes`). No panic, no abort,
//! no read outside the image. A model that builds runs forward, inverse and sample.
//!
//! The harness writes the input's length and CRC-32 into its header before loading, so that
//! mutations reach the structure behind the checksum rather than stopping at it (the
//! checksum's own check is tested in src/model/packed/image.rs).
#![no_main]

use innfer::Model;
use libfuzzer_sys::fuzz_target;

mod exercise;

const MAX_IMAGE: usize = 1 << 16;
const MAX_MEMORY: usize = 1 << 20;

#[repr(C, align(64))]
struct Aligned<const N: usize>([u8; N]);

static mut IMAGE: Aligned<MAX_IMAGE> = Aligned([0; MAX_IMAGE]);
static mut MEMORY: Aligned<MAX_MEMORY> = Aligned([0; MAX_MEMORY]);

/// CRC-32 (ISO-HDLC, zlib's), bit by bit: what the image header's checksum is.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 32 || data.len() > MAX_IMAGE {
        return;
    }
    let mut image = data.to_vec();
    let len = image.len() as u32;
    image[16..20].copy_from_slice(&len.to_le_bytes());
    let crc = crc32(&image[16..]);
    image[12..16].copy_from_slice(&crc.to_le_bytes());

    let on_heap = Model::from_bytes(&image);
    if let Ok(model) = &on_heap {
        exercise::exercise(model);
    }

    let Ok(need) = Model::image_memory_bytes(&image) else {
        assert!(on_heap.is_err(), "an image the heap path built but measuring refused");
        return;
    };
    if need > MAX_MEMORY {
        return;
    }
    // SAFETY: one input at a time (libFuzzer's loop): the statics are only used here, and the
    // model borrowing them is dropped at the end of this scope, before the next input.
    let (image, memory) = unsafe {
        let at = core::ptr::addr_of_mut!(IMAGE).cast::<u8>();
        core::ptr::copy_nonoverlapping(image.as_ptr(), at, image.len());
        let image: &'static [u8] = core::slice::from_raw_parts(at, image.len());
        let memory: &'static mut [u8] =
            core::slice::from_raw_parts_mut(core::ptr::addr_of_mut!(MEMORY).cast::<u8>(), need);
        (image, memory)
    };
    match Model::from_image(image, memory) {
        Ok(model) => exercise::exercise(&model),
        Err(e) => panic!("measured ({need} bytes) but not built in place: {e}"),
    }
});
