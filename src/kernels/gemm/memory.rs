//! Memory for packed weights: slabs that live exactly as long as their owner, a model or a
//! standalone [`super::PackedWeight`].
//!
//! Why not one `Vec` per weight: the packed weights are nearly all of a model (30 MB for the
//! large benchmark model), and first-touch page faults on them dominated its start-up: 7,300
//! faults of 4 KiB, about half of `innfer sample`'s 25 ms. On Linux, a model with at least
//! 8 MiB of weights (`REGION_MIN`) gets one region, 2 MiB-aligned and marked for transparent
//! huge pages (`madvise(MADV_HUGEPAGE)`, honoured when THP is `always` or `madvise`), from
//! which the slabs are cut in order: about 15 faults instead. Batch-1 calls, which stream
//! every weight, also miss the TLB less. Everywhere else (and past the region's end) each slab
//! is its own heap allocation.

use alloc::vec::Vec;
use core::alloc::Layout;
use core::ptr::NonNull;

use crate::error::{Error, Result};

/// Alignment of every slab (a cache line; the kernels need no more).
const ALIGN: usize = 64;

/// A type aligned to a cache line: its dangling pointer starts an empty slab, so that empty
/// slabs are aligned like the others.
#[repr(align(64))]
struct Line;

/// Models with fewer weight bytes than this stay on the heap: a huge page would cost more
/// resident memory than they save in faults.
#[cfg(all(feature = "std", target_os = "linux"))]
pub(crate) const REGION_MIN: usize = 8 << 20;

/// Element types a slab may be viewed as: plain numbers, valid for any bit pattern (all-zero
/// included), whose alignment divides [`ALIGN`].
pub(crate) trait Plain: Copy {}
impl Plain for f32 {}
impl Plain for u16 {}
impl Plain for u8 {}

/// Read-only bytes in a [`WeightMemory`], valid as long as that memory, or in a packed image
/// (valid as long as the model built on it).
pub(crate) struct Slab {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: a slab is written once, before its weight exists, then only read; its memory belongs
// to a WeightMemory that outlives every use of the slab (the model's, dropped after its
// blocks, or the one a standalone PackedWeight holds next to it).
unsafe impl Send for Slab {}
// SAFETY: as above (shared reads only).
unsafe impl Sync for Slab {}

impl Slab {
    /// The bytes of a packed image, read in place (`'static` stands for "as long as the model
    /// built on the image", which the image's caller keeps valid).
    pub(crate) fn borrowed(bytes: &'static [u8]) -> Slab {
        Slab {
            ptr: NonNull::from(bytes).cast(),
            len: bytes.len(),
        }
    }

    /// Address of the first byte (ALIGN-aligned).
    #[inline]
    pub(crate) fn as_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }

    /// Length in bytes.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The bytes as `T`s (`len` must be a multiple of `T`'s size, the address of its
    /// alignment).
    pub(crate) fn as_slice<T: Plain>(&self) -> &[T] {
        assert!(
            self.len.is_multiple_of(size_of::<T>())
                && (self.ptr.as_ptr() as usize).is_multiple_of(align_of::<T>())
        );
        // SAFETY: `len` initialised bytes at a `T`-aligned address (checked; a WeightMemory's
        // slabs are ALIGN-aligned), whole `T`s of a type valid for any bits, alive while the
        // slab's WeightMemory (or image) is and never written after the slab was frozen.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr().cast(), self.len / size_of::<T>()) }
    }
}

/// A slab being filled: the only access to its memory until [`SlabMut::freeze`].
pub(crate) struct SlabMut {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the sole handle to its bytes (see `Slab`).
unsafe impl Send for SlabMut {}
// SAFETY: shared access only reads.
unsafe impl Sync for SlabMut {}

impl SlabMut {
    /// The filled slab, read-only from now on.
    pub(crate) fn freeze(self) -> Slab {
        Slab {
            ptr: self.ptr,
            len: self.len,
        }
    }

    /// The bytes as `T`s to fill (`len` must be a multiple of `T`'s size).
    pub(crate) fn as_mut_slice<T: Plain>(&mut self) -> &mut [T] {
        assert!(self.len.is_multiple_of(size_of::<T>()) && ALIGN.is_multiple_of(align_of::<T>()));
        // SAFETY: `len` initialised (zeroed) bytes at an ALIGN-aligned address, whole `T`s of
        // a type valid for any bits, alive as long as the slab's WeightMemory; `&mut self`
        // makes the access exclusive (this SlabMut is the only handle until frozen).
        unsafe {
            core::slice::from_raw_parts_mut(self.ptr.as_ptr().cast(), self.len / size_of::<T>())
        }
    }
}

/// The owner of slabs: a model's (dropped with it, after its blocks), or a standalone packed
/// weight's own.
pub(crate) struct WeightMemory {
    #[cfg(all(feature = "std", target_os = "linux"))]
    region: Option<region::Region>,
    /// Slabs allocated one by one, freed on drop.
    heap: Vec<(NonNull<u8>, Layout)>,
}

// SAFETY: it only owns memory (no shared state); the slabs' reads are covered above.
unsafe impl Send for WeightMemory {}
// SAFETY: no method takes `&self`.
unsafe impl Sync for WeightMemory {}

impl WeightMemory {
    /// Memory for weights of at most about `bound` bytes in all (more still works: the rest
    /// goes to the heap).
    #[cfg_attr(
        not(all(feature = "std", target_os = "linux")),
        allow(unused_variables)
    )]
    pub(crate) fn new(bound: usize) -> WeightMemory {
        WeightMemory {
            #[cfg(all(feature = "std", target_os = "linux"))]
            region: if bound >= REGION_MIN {
                region::Region::reserve(bound)
            } else {
                None
            },
            heap: Vec::new(),
        }
    }

    /// A slab of `len` bytes, zeroed, to be filled and then frozen; out of memory is an
    /// error naming `what` (the sizes come from a file).
    pub(crate) fn alloc(&mut self, what: &str, len: usize) -> Result<SlabMut> {
        let out_of_memory =
            || Error::out_of_memory(format_args!("the packed weight `{what}`"), len, None);
        let layout = Layout::from_size_align(len, ALIGN).map_err(|_| out_of_memory())?;
        let ptr = if len == 0 {
            NonNull::<Line>::dangling().cast()
        } else {
            self.heap.try_reserve(1).map_err(|_| out_of_memory())?;
            self.zeroed(layout).ok_or_else(out_of_memory)?
        };
        Ok(SlabMut { ptr, len })
    }

    /// Zeroed memory for `layout` (of non-zero size), if it can be had.
    fn zeroed(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        #[cfg(all(feature = "std", target_os = "linux"))]
        if let Some(p) = self.region.as_mut().and_then(|r| r.take(layout)) {
            return Some(p);
        }
        // SAFETY: non-zero size.
        let p = NonNull::new(unsafe { alloc::alloc::alloc_zeroed(layout) })?;
        self.heap.push((p, layout));
        Some(p)
    }
}

impl Drop for WeightMemory {
    fn drop(&mut self) {
        for &(p, layout) in &self.heap {
            // SAFETY: allocated by alloc_zeroed with this layout, freed once.
            unsafe { alloc::alloc::dealloc(p.as_ptr(), layout) };
        }
    }
}

/// The huge-page region (Linux).
#[cfg(all(feature = "std", target_os = "linux"))]
mod region {
    use core::alloc::Layout;
    use core::ptr::NonNull;

    const HUGE_PAGE: usize = 2 << 20;

    pub(super) struct Region {
        base: NonNull<u8>,
        len: usize,
        used: usize,
    }

    impl Region {
        /// Reserves `bytes` (rounded up to 2 MiB) of address space; nothing is resident until
        /// written. `None` if the kernel refuses (then the heap serves).
        pub(super) fn reserve(bytes: usize) -> Option<Region> {
            let len = bytes.checked_next_multiple_of(HUGE_PAGE)?;
            let mapped = len.checked_add(HUGE_PAGE)?;
            // SAFETY: a fresh private anonymous mapping; no existing memory is touched.
            let raw = unsafe {
                libc::mmap(
                    core::ptr::null_mut(),
                    mapped,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                )
            };
            if raw == libc::MAP_FAILED {
                return None;
            }
            // Keep the 2 MiB-aligned part: huge pages need aligned virtual addresses.
            let raw = raw.cast::<u8>();
            let head = raw.align_offset(HUGE_PAGE);
            // SAFETY: head < HUGE_PAGE, so base and the tail lie inside the mapping, which
            // is ours; unmapping its unused head and tail leaves [base, base + len) mapped.
            let base = unsafe {
                let base = raw.add(head);
                if head > 0 {
                    libc::munmap(raw.cast(), head);
                }
                let tail = HUGE_PAGE - head;
                libc::munmap(base.add(len).cast(), tail);
                // Huge pages only where the weights will fill them (the bound is near the
                // weights' size): the last, partial one stays in 4 KiB pages, so as not to
                // hold up to 2 MiB more than the weights. Advice only: refused (no THP in
                // this kernel), the region has 4 KiB pages throughout.
                let huge = bytes / HUGE_PAGE * HUGE_PAGE;
                if huge > 0 {
                    libc::madvise(base.cast(), huge, libc::MADV_HUGEPAGE);
                }
                base
            };
            Some(Region {
                base: NonNull::new(base)?,
                len,
                used: 0,
            })
        }

        /// The next `layout.size()` bytes at `layout.align()` (≤ 2 MiB), if they fit. Fresh
        /// anonymous memory reads as zero.
        pub(super) fn take(&mut self, layout: Layout) -> Option<NonNull<u8>> {
            let start = self.used.checked_next_multiple_of(layout.align())?;
            let end = start.checked_add(layout.size())?;
            if end > self.len {
                return None;
            }
            self.used = end;
            // SAFETY: start < end ≤ len: inside the region.
            Some(unsafe { self.base.add(start) })
        }
    }

    impl Drop for Region {
        fn drop(&mut self) {
            // SAFETY: the mapping made in reserve; its slabs are no longer used (the model's
            // blocks are dropped before its WeightMemory).
            unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A slab of `len` f32, filled from `seed`.
    fn check(memory: &mut WeightMemory, len: usize, seed: f32) -> Slab {
        let mut out = memory.alloc("w", len * 4).unwrap();
        let values = out.as_mut_slice::<f32>();
        assert!(values.iter().all(|&v| v == 0.0), "not zeroed");
        for (i, v) in values.iter_mut().enumerate() {
            *v = seed + i as f32;
        }
        let slab = out.freeze();
        assert_eq!(slab.len(), len * 4);
        assert!((slab.as_ptr() as usize).is_multiple_of(ALIGN), "misaligned");
        slab
    }

    /// Slabs are zeroed, aligned (empty ones too), keep their contents, and survive the
    /// memory being moved.
    fn exercise(bound: usize, lens: &[usize]) {
        let mut memory = WeightMemory::new(bound);
        let slabs: Vec<Slab> = lens
            .iter()
            .enumerate()
            .map(|(i, &len)| check(&mut memory, len, i as f32 * 1e6))
            .collect();
        let mut half = memory.alloc("h", 66).unwrap();
        half.as_mut_slice::<u16>().fill(7);
        let half = half.freeze();
        let moved = memory;
        for (i, (slab, &len)) in slabs.iter().zip(lens).enumerate() {
            assert!(
                slab.as_slice::<f32>()
                    .iter()
                    .copied()
                    .eq((0..len).map(|j| i as f32 * 1e6 + j as f32))
            );
        }
        assert!(half.as_slice::<u16>().iter().all(|&v| v == 7));
        drop(moved);
    }

    #[test]
    fn small_models_use_the_heap() {
        exercise(1000, &[0, 5, 100, 3]);
    }

    #[test]
    // Not under Miri: it supports only private anonymous mmap, not the reserved region's
    // flags (src/kernels/gemm/memory.rs `Region::reserve`); small_models_use_the_heap runs.
    #[cfg_attr(miri, ignore)]
    fn large_models_use_a_region_and_the_heap_past_its_end() {
        // 9 MiB bound, 10 MiB asked for: the last slabs overflow to the heap.
        let mib = (1 << 20) / 4;
        exercise(9 << 20, &[mib, 3 * mib, 17, 5 * mib, mib, 2]);
    }
}
