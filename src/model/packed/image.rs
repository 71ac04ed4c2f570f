//! The bytes of a packed image: its header, its checksum, and the word stream of its body,
//! written by [`Writer`] and read back, every count checked, by [`Reader`] (docs/format.md,
//! "Packed images", gives the layout byte by byte).
//!
//! Reading allocates nothing: arrays of numbers are borrowed from the image where they lie,
//! and the few arrays of descriptors (blocks, subnet layers, ...) are placed in the caller's
//! memory by [`Descriptors`]. The same reading, with no memory given, measures how much
//! memory that takes ([`Descriptors::measure`]).

use alloc::vec::Vec;
use core::mem::{align_of, size_of};

use super::array::Array;
use crate::error::{Error, Result};
use crate::kernels::gemm::{PackedWeight, PanelLayout, WeightStorage};

/// The first 8 bytes of every packed image.
pub const IMAGE_MAGIC: [u8; 8] = *b"INNFPACK";

/// The packed image format version this build reads and writes.
pub const IMAGE_VERSION: u32 = 1;

/// Bytes of the header; the body's word stream starts here.
pub(crate) const HEADER_BYTES: usize = 32;

/// Alignment (bytes) an image must start at: its words and f32 arrays are read in place.
pub const IMAGE_ALIGN: usize = 4;

/// Byte offsets of the header's fields.
mod at {
    pub(super) const VERSION: usize = 8;
    pub(super) const CHECKSUM: usize = 12;
    pub(super) const LENGTH: usize = 16;
    pub(super) const TARGET: usize = 20;
    pub(super) const STORAGE: usize = 24;
    pub(super) const RESERVED: usize = 28;
}

/// The core an image is laid out for: it fixes the weights' panel layout and their alignment
/// inside the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ImageTarget {
    /// The host kernels' layout ([`PanelLayout::Grouped`]: panels of 16 columns, zero-padded,
    /// two interleaved), each weight at a multiple of 64 bytes (a cache line) in the image:
    /// for a mapped file on a PC, read by every instruction set's kernels.
    Portable = 0,
    /// Cortex-M4F/M7 ([`PanelLayout::Narrow`]: panels of 8 columns, the last at its own width,
    /// nothing padded), each weight at a multiple of 8 bytes: for flash, read by the narrow
    /// kernel with aligned loads.
    CortexM4 = 1,
}

impl ImageTarget {
    /// Every target.
    pub const ALL: [ImageTarget; 2] = [ImageTarget::Portable, ImageTarget::CortexM4];

    /// The name `innfer pack --target` takes.
    pub fn name(self) -> &'static str {
        match self {
            ImageTarget::Portable => "portable",
            ImageTarget::CortexM4 => "cortex-m4",
        }
    }

    /// The target named `name` (see [`ImageTarget::name`]).
    pub fn from_name(name: &str) -> Option<ImageTarget> {
        ImageTarget::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The panel layout of the image's weights.
    pub fn layout(self) -> PanelLayout {
        match self {
            ImageTarget::Portable => PanelLayout::Grouped,
            ImageTarget::CortexM4 => PanelLayout::Narrow,
        }
    }

    /// Alignment, from the image's start, of each weight's first element.
    pub fn weight_align(self) -> usize {
        match self {
            ImageTarget::Portable => 64,
            ImageTarget::CortexM4 => 8,
        }
    }

    fn from_code(code: u32) -> Option<ImageTarget> {
        ImageTarget::ALL.into_iter().find(|t| *t as u32 == code)
    }
}

/// The error of an image that cannot be read: `problem` at byte `offset`.
#[cold]
pub(crate) fn invalid(offset: usize, problem: &'static str) -> Error {
    Error::Image { offset, problem }
}

/// CRC-32 (ISO-HDLC: zlib's, PNG's), table-driven.
pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut bit = 0;
            while bit < 8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                bit += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    !bytes.iter().fold(!0u32, |c, &b| {
        TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8)
    })
}

/// The fields of a checked header.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Header {
    pub(crate) target: ImageTarget,
    pub(crate) storage: WeightStorage,
}

fn header_word(image: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes([
        image[offset],
        image[offset + 1],
        image[offset + 2],
        image[offset + 3],
    ])
}

/// Checks everything the header promises: magic, version, length, checksum, target, storage,
/// and the image's alignment in memory.
pub(crate) fn check_header(image: &[u8]) -> Result<Header> {
    if cfg!(target_endian = "big") {
        return Err(invalid(
            0,
            "packed images are little-endian; this CPU is not",
        ));
    }
    if image.len() < HEADER_BYTES {
        return Err(invalid(image.len(), "truncated: shorter than the header"));
    }
    if image[..8] != IMAGE_MAGIC {
        return Err(invalid(0, "not a packed image (wrong magic)"));
    }
    if header_word(image, at::VERSION) != IMAGE_VERSION {
        return Err(invalid(at::VERSION, "unsupported image format version"));
    }
    let length = header_word(image, at::LENGTH) as usize;
    if length != image.len() {
        return Err(invalid(
            at::LENGTH,
            if length > image.len() {
                "truncated: shorter than the length in its header"
            } else {
                "longer than the length in its header"
            },
        ));
    }
    if header_word(image, at::CHECKSUM) != crc32(&image[at::LENGTH..]) {
        return Err(invalid(
            at::CHECKSUM,
            "checksum mismatch: the image is corrupt",
        ));
    }
    if !(image.as_ptr() as usize).is_multiple_of(IMAGE_ALIGN) {
        return Err(invalid(0, "the image is not 4-byte aligned in memory"));
    }
    let target = ImageTarget::from_code(header_word(image, at::TARGET))
        .ok_or(invalid(at::TARGET, "unknown target"))?;
    let storage = storage_of(header_word(image, at::STORAGE))
        .ok_or(invalid(at::STORAGE, "unknown weight storage"))?;
    if header_word(image, at::RESERVED) != 0 {
        return Err(invalid(at::RESERVED, "reserved header word is not 0"));
    }
    Ok(Header { target, storage })
}

fn storage_of(code: u32) -> Option<WeightStorage> {
    [WeightStorage::F32, WeightStorage::Bf16, WeightStorage::F16]
        .into_iter()
        .find(|s| *s as u32 == code)
}

/// Writes an image: the header (completed by [`Writer::finish`]) and the body's words.
pub(crate) struct Writer {
    bytes: Vec<u8>,
    target: ImageTarget,
}

impl Writer {
    pub(crate) fn new(target: ImageTarget, storage: WeightStorage) -> Writer {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&IMAGE_MAGIC);
        for word in [IMAGE_VERSION, 0, 0, target as u32, storage as u32, 0] {
            bytes.extend_from_slice(&word.to_le_bytes());
        }
        Writer { bytes, target }
    }

    pub(crate) fn word(&mut self, v: u32) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }

    /// A count or width (checked to fit the image's 32-bit words).
    pub(crate) fn count(&mut self, v: usize) -> Result<()> {
        let v = u32::try_from(v).map_err(|_| Error::Argument("a count is past 2^32"))?;
        self.word(v);
        Ok(())
    }

    pub(crate) fn flag(&mut self, v: bool) {
        self.word(u32::from(v));
    }

    pub(crate) fn f32(&mut self, v: f32) {
        self.word(v.to_bits());
    }

    /// `values`, after their count.
    pub(crate) fn f32s(&mut self, values: &[f32]) -> Result<()> {
        self.count(values.len())?;
        values.iter().for_each(|&v| self.f32(v));
        Ok(())
    }

    /// `values`, after their count.
    pub(crate) fn u32s(&mut self, values: &[u32]) -> Result<()> {
        self.count(values.len())?;
        values.iter().for_each(|&v| self.word(v));
        Ok(())
    }

    /// A weight: its shape, storage and layout words, zeros up to the target's weight
    /// alignment, its elements in the target's layout, zeros up to a whole word.
    pub(crate) fn weight(&mut self, w: &PackedWeight) -> Result<()> {
        let layout = self.target.layout();
        let repacked;
        let w = if w.layout() == layout {
            w
        } else {
            repacked = w.repack(layout)?;
            &repacked
        };
        self.count(w.n())?;
        self.count(w.k())?;
        self.word(w.storage() as u32);
        self.word(layout as u32);
        self.pad_to(self.target.weight_align());
        self.bytes.extend_from_slice(w.packed_bytes());
        self.pad_to(4);
        Ok(())
    }

    fn pad_to(&mut self, align: usize) {
        let len = self.bytes.len().next_multiple_of(align);
        self.bytes.resize(len, 0);
    }

    /// The image: its length and checksum written into the header.
    pub(crate) fn finish(mut self) -> Result<Vec<u8>> {
        let length = u32::try_from(self.bytes.len())
            .map_err(|_| Error::Argument("the image would be past 4 GiB"))?;
        self.bytes[at::LENGTH..at::LENGTH + 4].copy_from_slice(&length.to_le_bytes());
        let crc = crc32(&self.bytes[at::LENGTH..]);
        self.bytes[at::CHECKSUM..at::CHECKSUM + 4].copy_from_slice(&crc.to_le_bytes());
        Ok(self.bytes)
    }
}

/// Memory for the descriptors of a model read from an image: a bump allocator over the
/// caller's memory, or, to measure, over none.
pub(crate) struct Descriptors {
    /// Start of the caller's memory (aligned to [`DESCRIPTOR_ALIGN`]), or null to measure.
    base: *mut u8,
    len: usize,
    used: usize,
}

/// Alignment of the memory descriptors are placed in (at least every descriptor type's, so
/// that measuring, which assumes it, gives the same count as placing).
pub(crate) const DESCRIPTOR_ALIGN: usize = 64;

impl Descriptors {
    /// Placing into `memory`, which must be [`DESCRIPTOR_ALIGN`]-aligned.
    pub(crate) fn place(memory: &'static mut [u8]) -> Result<Descriptors> {
        let address = memory.as_mut_ptr() as usize;
        if !address.is_multiple_of(DESCRIPTOR_ALIGN) {
            return Err(Error::ArenaMisaligned {
                align: DESCRIPTOR_ALIGN,
                address,
            });
        }
        Ok(Descriptors {
            base: memory.as_mut_ptr(),
            len: memory.len(),
            used: 0,
        })
    }

    /// Counting only.
    pub(crate) fn measure() -> Descriptors {
        Descriptors {
            base: core::ptr::null_mut(),
            len: usize::MAX,
            used: 0,
        }
    }

    /// Whether the descriptors are really placed (not only measured): only then may the
    /// reader look at what it placed.
    pub(crate) fn placing(&self) -> bool {
        !self.base.is_null()
    }

    /// Bytes used so far.
    pub(crate) fn used(&self) -> usize {
        self.used
    }

    /// Room for `count` values of `T`, or where they would go when measuring (null).
    fn room<T>(&mut self, count: usize) -> Result<*mut T> {
        const { assert!(align_of::<T>() <= DESCRIPTOR_ALIGN) };
        let too_large = || invalid(0, "a count is larger than memory");
        let start = self
            .used
            .checked_next_multiple_of(align_of::<T>())
            .ok_or_else(too_large)?;
        let bytes = count.checked_mul(size_of::<T>()).ok_or_else(too_large)?;
        let end = start.checked_add(bytes).ok_or_else(too_large)?;
        if end > self.len {
            return Err(Error::ArenaTooSmall {
                needed: end,
                found: self.len,
            });
        }
        self.used = end;
        Ok(if self.placing() {
            // SAFETY: start ≤ end ≤ len: inside the caller's memory.
            unsafe { self.base.add(start).cast() }
        } else {
            core::ptr::null_mut()
        })
    }
}

/// Reads an image's body, a word at a time, every count against what the image holds.
pub(crate) struct Reader<'d> {
    image: &'static [u8],
    at: usize,
    pub(crate) header: Header,
    descriptors: &'d mut Descriptors,
}

impl<'d> Reader<'d> {
    /// The body of `image` (checked by [`check_header`]).
    pub(crate) fn new(
        image: &'static [u8],
        header: Header,
        descriptors: &'d mut Descriptors,
    ) -> Reader<'d> {
        Reader {
            image,
            at: HEADER_BYTES,
            header,
            descriptors,
        }
    }

    /// Where the next word is.
    pub(crate) fn offset(&self) -> usize {
        self.at
    }

    /// An error at the next word.
    pub(crate) fn invalid(&self, problem: &'static str) -> Error {
        invalid(self.at, problem)
    }

    /// Whether the descriptors are placed (see [`Descriptors::placing`]).
    pub(crate) fn placing(&self) -> bool {
        self.descriptors.placing()
    }

    /// The next `len` bytes, in place.
    fn take(&mut self, len: usize) -> Result<&'static [u8]> {
        let end = self
            .at
            .checked_add(len)
            .filter(|&end| end <= self.image.len())
            .ok_or_else(|| self.invalid("truncated: a count runs past the image's end"))?;
        let bytes = &self.image[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    pub(crate) fn word(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn count(&mut self) -> Result<usize> {
        Ok(self.word()? as usize)
    }

    /// A count that must be `expected`.
    pub(crate) fn count_of(&mut self, expected: usize, what: &'static str) -> Result<()> {
        let at = self.at;
        if self.count()? != expected {
            return Err(invalid(at, what));
        }
        Ok(())
    }

    pub(crate) fn flag(&mut self) -> Result<bool> {
        let at = self.at;
        match self.word()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(invalid(at, "a flag is neither 0 nor 1")),
        }
    }

    pub(crate) fn f32(&mut self) -> Result<f32> {
        Ok(f32::from_bits(self.word()?))
    }

    /// The next `len` words as `T` (f32 or u32), in place.
    fn words<T: Word>(&mut self, len: usize) -> Result<Array<T>> {
        let bytes = len
            .checked_mul(4)
            .ok_or_else(|| self.invalid("truncated: a count runs past the image's end"))?;
        let bytes = self.take(bytes)?;
        // SAFETY: `bytes` are `len` whole words of the image, which is 4-aligned
        // (`check_header`) at a word offset (every item is whole words), so aligned for `T`
        // (4 bytes, align 4, valid for any bits); they live as long as the image, which
        // `'static` stands for, and the image is never written while a model reads it.
        let values = unsafe { core::slice::from_raw_parts(bytes.as_ptr().cast::<T>(), len) };
        Ok(Array::Borrowed(values))
    }

    /// An f32 array of `len` values (after its count, checked).
    pub(crate) fn f32s(&mut self, len: usize, what: &'static str) -> Result<Array<f32>> {
        self.count_of(len, what)?;
        self.words(len)
    }

    /// A u32 array of `len` values (after its count, checked).
    pub(crate) fn u32s(&mut self, len: usize, what: &'static str) -> Result<Array<u32>> {
        self.count_of(len, what)?;
        self.words(len)
    }

    /// A weight of `n` outputs × `k` inputs, read in place.
    pub(crate) fn weight(&mut self, n: usize, k: usize) -> Result<PackedWeight> {
        let at = self.at;
        self.count_of(n, "a weight's outputs do not match its layer")?;
        self.count_of(k, "a weight's inputs do not match its layer")?;
        let storage =
            storage_of(self.word()?).ok_or_else(|| invalid(at, "unknown weight storage"))?;
        let layout = self.word()?;
        if layout != self.header.target.layout() as u32 {
            return Err(invalid(at, "a weight's layout is not its target's"));
        }
        let start = self.at.next_multiple_of(self.header.target.weight_align());
        self.take(start - self.at.min(start))?;
        let len = self
            .header
            .target
            .layout()
            .elements(n, k)
            .and_then(|e| e.checked_mul(storage.size()));
        let len = len.ok_or_else(|| invalid(at, "a weight is larger than memory"))?;
        let bytes = self.take(len)?;
        self.take(self.at.next_multiple_of(4) - self.at)?;
        PackedWeight::in_image(n, k, storage, self.header.target.layout(), bytes)
            .ok_or_else(|| invalid(at, "a weight's elements are misaligned"))
    }

    /// `count` values read by `item`, placed in the descriptors' memory.
    pub(crate) fn array<T>(
        &mut self,
        count: usize,
        mut item: impl FnMut(&mut Reader<'d>) -> Result<T>,
    ) -> Result<Array<T>> {
        // Every item takes a word at least: a count the rest of the image cannot back is
        // refused before any room is taken for it.
        if count > (self.image.len() - self.at) / 4 {
            return Err(self.invalid("truncated: a count runs past the image's end"));
        }
        let room = self.descriptors.room::<T>(count)?;
        for i in 0..count {
            let value = item(self)?;
            if room.is_null() {
                // Measuring: nothing placed (the values own no memory).
                core::mem::forget(value);
            } else {
                // SAFETY: room for `count` values of T, aligned, in the caller's memory.
                unsafe { room.add(i).write(value) };
            }
        }
        if room.is_null() {
            return Ok(Array::Borrowed(&[]));
        }
        // SAFETY: `count` values written above, in memory the caller gave for as long as the
        // model lives (which `'static` stands for), used by nothing else.
        Ok(Array::Borrowed(unsafe {
            core::slice::from_raw_parts(room, count)
        }))
    }

    /// Checks that the whole body was read.
    pub(crate) fn finish(self) -> Result<()> {
        if self.at != self.image.len() {
            return Err(self.invalid("bytes are left after the last block"));
        }
        Ok(())
    }
}

/// The 4-byte element types read in place.
trait Word: Copy {}
impl Word for f32 {}
impl Word for u32 {}

#[cfg(test)]
mod tests {
    use super::crc32;

    #[test]
    fn crc32_is_zlibs() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }
}
