//! Packed images: a model laid out as its kernels read it, for flash or a mapped file
//! (docs/format.md, "Packed images", gives the format byte by byte).
//!
//! [`Model::to_image`] writes a loaded model's image for a [`ImageTarget`]; [`Model::from_image`]
//! builds a model on an image in place: its weights, biases and every other array of numbers
//! are read where they lie, and the few descriptors (the chain's blocks, their halves and
//! layers) are placed in memory the caller gives, [`Model::image_memory_bytes`] of it. No
//! allocator is called, nothing is parsed but the image's own words (no safetensors, no
//! JSON), and every count, width and index is checked against the image before use; the
//! values themselves are taken as the packer wrote them, which the image's CRC-32 guards.

pub(crate) mod array;
pub(crate) mod image;

use alloc::vec::Vec;

use self::array::Array;
use self::image::{DESCRIPTOR_ALIGN, Descriptors, Reader, Writer, check_header, invalid};
pub use self::image::{IMAGE_ALIGN, IMAGE_MAGIC, IMAGE_VERSION, ImageTarget};
use super::{FreiaVariant, Layout, Model, Standardize, XTransform, YTransform, labels};
use crate::blocks::{Block, Plan};
use crate::error::Result;
use crate::kernels::gemm::memory::WeightMemory;

/// Alignment (bytes) of the memory [`Model::from_image`] places a model's descriptors in.
pub const IMAGE_MEMORY_ALIGN: usize = DESCRIPTOR_ALIGN;

/// What an image's header says (see [`image_summary`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageSummary {
    /// The core the image is laid out for.
    pub target: ImageTarget,
    /// How its subnets' weights are stored.
    pub weight_storage: super::WeightStorage,
    /// Bytes of the image.
    pub bytes: usize,
}

/// The header of `image`, checked (magic, version, length, checksum, target, storage).
pub fn image_summary(image: &[u8]) -> Result<ImageSummary> {
    let header = check_header(image)?;
    Ok(ImageSummary {
        target: header.target,
        weight_storage: header.storage,
        bytes: image.len(),
    })
}

/// The layout's words: its code (0 none, 1 inn, 2 cinn) and five widths.
fn layout_words(layout: Layout) -> [usize; 6] {
    match layout {
        Layout::None => [0; 6],
        Layout::Inn {
            x,
            pad_x,
            z,
            pad_zy,
            y,
        } => [1, x, pad_x, z, pad_zy, y],
        Layout::Cinn { x, y } => [2, x, y, 0, 0, 0],
    }
}

/// The layout of [`layout_words`], if it is one a model of `dim` and `cond_dim` may have (as
/// `Model::parse_layout` checks it).
fn layout_of(words: [usize; 6], dim: usize, cond_dim: usize) -> Option<Layout> {
    let sum = |a: usize, b: usize| a.checked_add(b);
    match words {
        [0, 0, 0, 0, 0, 0] => Some(Layout::None),
        [1, x, pad_x, z, pad_zy, y] => {
            let fits = sum(x, pad_x) == Some(dim)
                && sum(z, pad_zy).and_then(|s| sum(s, y)) == Some(dim)
                && cond_dim == 0
                && x > 0
                && z > 0
                && y > 0;
            fits.then_some(Layout::Inn {
                x,
                pad_x,
                z,
                pad_zy,
                y,
            })
        }
        [2, x, y, 0, 0, 0] => (x == dim && y == cond_dim && y > 0).then_some(Layout::Cinn { x, y }),
        _ => None,
    }
}

fn write_standardize(w: &mut Writer, norm: &Option<Standardize>) -> Result<()> {
    w.flag(norm.is_some());
    if let Some(norm) = norm {
        w.f32s(&norm.mean)?;
        w.f32s(&norm.std)?;
        w.f32(norm.log_std_sum);
    }
    Ok(())
}

fn read_standardize(r: &mut Reader<'_>, len: usize) -> Result<Option<Standardize>> {
    if !r.flag()? {
        return Ok(None);
    }
    let what = "a standardisation is not its vector's width";
    Ok(Some(Standardize {
        mean: r.f32s(len, what)?,
        std: r.f32s(len, what)?,
        log_std_sum: r.f32()?,
    }))
}

impl Model {
    /// The packed image of this model for `target` (docs/format.md, "Packed images"): what
    /// [`Model::from_image`] builds the same model on, bit for bit (the weights keep this
    /// model's storage). The x labels and the producer are not part of an image.
    pub fn to_image(&self, target: ImageTarget) -> Result<Vec<u8>> {
        let mut w = Writer::new(target, self.weight_storage);
        w.count(self.dim)?;
        w.count(self.cond_dim)?;
        w.word(match self.variant {
            FreiaVariant::Pypi02 => 0,
            FreiaVariant::Head => 1,
        });
        for v in layout_words(self.layout) {
            w.count(v)?;
        }
        write_standardize(&mut w, &self.x_norm)?;
        write_standardize(&mut w, &self.y_norm)?;
        w.count(self.x_transform.len())?;
        for t in &self.x_transform {
            t.image_words().into_iter().for_each(|v| w.word(v));
        }
        w.word(match self.y_transform {
            YTransform::None => 0,
            YTransform::Clr => 1,
        });
        w.count(self.blocks.len())?;
        for block in &self.blocks {
            block.to_image(&mut w)?;
        }
        w.finish()
    }

    /// Bytes of memory [`Model::from_image`] needs for `image` (aligned to
    /// [`IMAGE_MEMORY_ALIGN`]): the model's descriptors: about 450 bytes a block on a Cortex-M4
    /// (7,104 for the 16 blocks of models/gmm8_some), about twice that on a 64-bit host.
    /// Reads (and checks) the whole image; allocates nothing.
    pub fn image_memory_bytes(image: &[u8]) -> Result<usize> {
        // SAFETY: nothing read from the image outlives this call: measuring keeps no value it
        // reads (the blocks are dropped as they are read, and the model is never built), so
        // the image need only live as long as the call, as it does.
        let image: &'static [u8] =
            unsafe { core::slice::from_raw_parts(image.as_ptr(), image.len()) };
        let mut descriptors = Descriptors::measure();
        read_model(image, &mut descriptors)?;
        Ok(descriptors.used())
    }

    /// The model packed in `image` ([`Model::to_image`]), built in place: it reads the image's
    /// weights and values where they lie (flash, or a mapped file) and places its descriptors
    /// in `memory` (at least [`Model::image_memory_bytes`] of it, aligned to
    /// [`IMAGE_MEMORY_ALIGN`]). No allocator is called, not even on failure: a Rust firmware
    /// needs none, and runs the model with a [`crate::Session::in_memory`] over memory of its
    /// own.
    ///
    /// Refused with [`crate::Error::Image`]: an image with the wrong magic, format version or
    /// target, a checksum mismatch, truncated, not [`IMAGE_ALIGN`]-aligned, or with any count
    /// or width that does not match the rest; [`crate::Error::ArenaMisaligned`] and
    /// [`crate::Error::ArenaTooSmall`] for `memory`.
    pub fn from_image(image: &'static [u8], memory: &'static mut [u8]) -> Result<Model> {
        let mut descriptors = Descriptors::place(memory)?;
        read_model(image, &mut descriptors)?.ok_or_else(|| invalid(0, "internal: not placed"))
    }
}

/// A cache line, the unit of [`ImageMemory`].
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

/// The memory of a model built on a copy of an image: the copy and the descriptors.
pub(crate) struct ImageMemory {
    _image: Vec<Line>,
    _descriptors: Vec<Line>,
}

/// `len` zeroed bytes on the heap, 64-byte aligned (out of memory an error).
fn lines(len: usize, what: &str) -> Result<Vec<Line>> {
    let mut v = Vec::new();
    let count = len.div_ceil(64);
    v.try_reserve_exact(count)
        .map_err(|_| crate::Error::out_of_memory(format_args!("the {what}"), len, None))?;
    v.resize(count, Line([0; 64]));
    Ok(v)
}

/// The bytes of `lines`, to live as long as the model that will own `lines`.
///
/// # Safety
/// The returned slice must not be used after `lines` is dropped (nor `lines` touched while the
/// slice is used); moving the `Vec` is fine (its buffer stays where it is).
unsafe fn lines_bytes(lines: &mut [Line], len: usize) -> &'static mut [u8] {
    debug_assert!(len <= lines.len() * 64);
    // SAFETY: `len` ≤ the lines' bytes, initialised; the lifetime per the caller's contract.
    unsafe { core::slice::from_raw_parts_mut(lines.as_mut_ptr().cast(), len) }
}

impl Model {
    /// The model in the packed image `image`, built on a heap copy of it, which the model
    /// owns (with its descriptors): for a host, where the image is a file read into memory.
    /// `options.max_bytes` caps the copy and the descriptors together; the image keeps its own
    /// weight storage, so `options.weight_storage` must be the default (f32) or the image's.
    pub fn from_image_bytes(image: &[u8], options: &super::LoadOptions) -> Result<Model> {
        let header = check_header(image)?;
        if ![super::WeightStorage::F32, header.storage].contains(&options.weight_storage) {
            return Err(crate::Error::Argument(
                "a packed image keeps its own weight storage: load it with the default (f32)",
            ));
        }
        let need = Model::image_memory_bytes(image)?;
        let total = need.saturating_add(image.len());
        if total > options.max_bytes {
            return Err(crate::Error::out_of_memory(
                format_args!("the packed image's copy and descriptors"),
                total,
                Some(options.max_bytes),
            ));
        }
        let mut copy = lines(image.len(), "packed image's copy")?;
        let mut descriptors = lines(need, "packed image's descriptors")?;
        // SAFETY: both buffers move into the model built on them, which drops them last,
        // after every array that borrows them; nothing else touches them.
        let (bytes, memory) = unsafe {
            (
                lines_bytes(&mut copy, image.len()),
                lines_bytes(&mut descriptors, need),
            )
        };
        bytes.copy_from_slice(image);
        let mut model = Model::from_image(bytes, memory)?;
        model.image_memory = Some(ImageMemory {
            _image: copy,
            _descriptors: descriptors,
        });
        Ok(model)
    }
}

/// Whether the file at `path` starts with [`IMAGE_MAGIC`] (false if it cannot be read: the
/// safetensors loader then reports why).
#[cfg(feature = "std")]
pub(crate) fn is_image_file(path: &std::path::Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 8];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|()| magic == IMAGE_MAGIC)
}

/// Reads the model in `image`, its descriptors placed by `descriptors` (the model itself only
/// when they are really placed, not measured).
fn read_model(image: &'static [u8], descriptors: &mut Descriptors) -> Result<Option<Model>> {
    let header = check_header(image)?;
    let mut r = Reader::new(image, header, descriptors);
    let (dim, cond_dim) = (r.count()?, r.count()?);
    if dim == 0 {
        return Err(r.invalid("the chain is 0 wide"));
    }
    let variant = match r.word()? {
        0 => FreiaVariant::Pypi02,
        1 => FreiaVariant::Head,
        _ => return Err(r.invalid("unknown FrEIA variant")),
    };
    let at = r.offset();
    let mut words = [0; 6];
    for v in &mut words {
        *v = r.count()?;
    }
    let layout =
        layout_of(words, dim, cond_dim).ok_or(invalid(at, "the layout does not fit the chain"))?;
    if layout == Layout::None && cond_dim > 0 {
        return Err(invalid(at, "a condition needs the cinn layout"));
    }
    let x_norm = read_standardize(&mut r, layout.x_dim())?;
    let y_norm = read_standardize(&mut r, layout.y_dim())?;
    let at = r.offset();
    let transforms = r.count()?;
    if transforms != 0 && transforms != layout.x_dim() {
        return Err(invalid(at, "the x transforms are not one per x dimension"));
    }
    let x_transform: Array<XTransform> = r.array(transforms, |r| {
        let at = r.offset();
        let mut words = [0; 5];
        for v in &mut words {
            *v = r.word()?;
        }
        XTransform::from_image_words(words).ok_or(invalid(at, "unknown x transform"))
    })?;
    let y_transform = match (r.word()?, layout) {
        (0, _) => YTransform::None,
        (1, Layout::Cinn { y, .. }) if y >= 2 => YTransform::Clr,
        _ => return Err(r.invalid("unknown y transform, or one the layout cannot have")),
    };
    let count = r.count()?;
    if count == 0 {
        return Err(r.invalid("the chain has no blocks"));
    }
    let blocks = r.array(count, |r| Block::from_image(r, dim, cond_dim))?;
    if !r.placing() {
        r.finish()?;
        return Ok(None);
    }
    if cond_dim > 0 && !blocks.iter().any(Block::takes_condition) {
        return Err(r.invalid("the model has a condition no block takes"));
    }
    r.finish()?;
    let mut plan = Plan::default();
    blocks.iter().for_each(|b| plan.cover(b.plan()));
    Ok(Some(Model {
        weight_storage: header.storage,
        dim,
        cond_dim,
        layout,
        variant,
        blocks,
        plan,
        x_norm,
        y_norm,
        x_transform,
        x_labels: labels::XLabels::default(),
        y_transform,
        producer: None,
        load_work: 0,
        weights: WeightMemory::new(0),
        image_memory: None,
    }))
}
