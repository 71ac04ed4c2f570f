//! The model: bytes → validated, packed, immutable chain of blocks.
//!
//! A [`Model`] is built once (this is where all allocation happens) and is then read-only, so
//! it is `Send + Sync` and one model can serve many sessions on many threads.

use alloc::format;
use alloc::string::{String, ToString};

use crate::blocks::{Block, BlockSpec, Plan};
use crate::error::{Error, Result};
use crate::source::Source;
use crate::source::budget::try_string;
use crate::source::name::name;
use packed::array::Array;

mod labels;
pub(crate) mod packed;
pub use packed::{
    IMAGE_ALIGN, IMAGE_MAGIC, IMAGE_MEMORY_ALIGN, IMAGE_VERSION, ImageSummary, ImageTarget,
    image_summary,
};
pub mod transform;

pub use transform::{XTransform, XTransformKind, YTransform};

/// The format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// How the subnets' Linear weights are kept in memory (chosen at load; see [`LoadOptions`]):
/// the packed weights' storage, which the GEMM kernels read.
pub use crate::kernels::gemm::WeightStorage;

/// Options of [`Model::from_bytes_with`] and [`Model::from_file_with`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadOptions {
    /// How the subnets' Linear weights are stored.
    pub weight_storage: WeightStorage,
    /// The most bytes loading may allocate, all allocations counted (temporaries too, even
    /// once freed), so the model and loading's peak both stay below it. A load that would pass
    /// it fails with [`Error::OutOfMemory`] before allocating. Default: no limit beyond what the
    /// file backs: every count and width is checked against the file's tensors
    /// (docs/format.md §8), so a model needs at most a small multiple of its file's size.
    pub max_bytes: usize,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            weight_storage: WeightStorage::default(),
            max_bytes: usize::MAX,
        }
    }
}

/// Which FrEIA produced the file (it changes the AllInOneBlock clamp, docs/blocks.md §versions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreiaVariant {
    /// FrEIA 0.2 as published on PyPI.
    Pypi02,
    /// FrEIA's git main (2023-08 and later).
    Head,
}

/// How the chain's ends map to the problem's x, y and z (docs/format.md §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Forward and inverse only.
    None,
    /// The paper's INN: input `[x, pad_x]`, output `[z, pad_zy, y]`.
    Inn {
        x: usize,
        pad_x: usize,
        z: usize,
        pad_zy: usize,
        y: usize,
    },
    /// The conditional INN: x ↔ z of the same width, y fed to the blocks as the condition.
    Cinn { x: usize, y: usize },
}

impl Layout {
    /// Width of the parameters x a sample has (0 without a layout).
    pub fn x_dim(&self) -> usize {
        match *self {
            Layout::None => 0,
            Layout::Inn { x, .. } | Layout::Cinn { x, .. } => x,
        }
    }

    /// Width of an observation y (0 without a layout).
    pub fn y_dim(&self) -> usize {
        match *self {
            Layout::None => 0,
            Layout::Inn { y, .. } | Layout::Cinn { y, .. } => y,
        }
    }

    /// Width of the latent z that sampling draws (0 without a layout).
    pub fn z_dim(&self) -> usize {
        match *self {
            Layout::None => 0,
            Layout::Inn { z, .. } => z,
            Layout::Cinn { x, .. } => x,
        }
    }
}

/// Per-dimension standardisation `(v − mean) / std`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Standardize {
    pub(crate) mean: Array<f32>,
    pub(crate) std: Array<f32>,
    /// Σ log std, the log-determinant of de-standardising.
    pub(crate) log_std_sum: f32,
}

impl Standardize {
    #[inline]
    pub(crate) fn forward(&self, v: &mut [f32]) {
        for ((v, m), s) in v.iter_mut().zip(&self.mean).zip(&self.std) {
            *v = (*v - *m) / *s;
        }
    }

    #[inline]
    pub(crate) fn inverse(&self, v: &mut [f32]) {
        for ((v, m), s) in v.iter_mut().zip(&self.mean).zip(&self.std) {
            *v = *v * *s + *m;
        }
    }
}

/// A loaded model. Immutable; share it between threads freely.
pub struct Model {
    weight_storage: WeightStorage,
    dim: usize,
    cond_dim: usize,
    layout: Layout,
    variant: FreiaVariant,
    pub(crate) blocks: Array<Block>,
    pub(crate) plan: Plan,
    pub(crate) x_norm: Option<Standardize>,
    pub(crate) y_norm: Option<Standardize>,
    /// One per x dimension, or empty (docs/format.md §3.1).
    pub(crate) x_transform: Array<XTransform>,
    x_labels: labels::XLabels,
    pub(crate) y_transform: YTransform,
    producer: Option<String>,
    /// Multiply-adds loading's checks and products performed (0 for an image).
    load_work: u64,
    /// The memory of the blocks' packed weights (declared after `blocks`: dropped after them).
    /// Never read: it is here to own that memory.
    #[allow(dead_code)]
    weights: crate::kernels::gemm::memory::WeightMemory,
    /// The image and descriptors of a model built on a copy of an image
    /// ([`Model::from_image_bytes`]), which its arrays borrow (declared last: dropped after
    /// them). Never read: it is here to own that memory.
    #[allow(dead_code)]
    image_memory: Option<packed::ImageMemory>,
}

fn stats(src: &Source<'_>, which: &str, len: usize) -> Result<Option<Standardize>> {
    let mean_key = name!("innfer.{which}_mean");
    let std_key = name!("innfer.{which}_std");
    match (
        src.meta_f32_list(&mean_key, len)?,
        src.meta_f32_list(&std_key, len)?,
    ) {
        (None, None) => Ok(None),
        (Some(mean), Some(std)) => {
            if let Some(i) = std
                .iter()
                .position(|&s| s.partial_cmp(&0.0) != Some(core::cmp::Ordering::Greater))
            {
                return Err(
                    src.bad_meta(&std_key, format!("entry {i} is {} (must be > 0)", std[i]))
                );
            }
            let log_std_sum = std.iter().map(|&s| crate::kernels::math::ln(s)).sum();
            Ok(Some(Standardize {
                mean: mean.into(),
                std: std.into(),
                log_std_sum,
            }))
        }
        (Some(_), None) => {
            Err(src.bad_meta(&std_key, format!("is missing but `{mean_key}` is given")))
        }
        (None, Some(_)) => {
            Err(src.bad_meta(&mean_key, format!("is missing but `{std_key}` is given")))
        }
    }
}

impl Model {
    /// Loads a model from the bytes of a `.safetensors` file (docs/format.md).
    ///
    /// The bytes are only read during the call; the model keeps its own packed copy.
    pub fn from_bytes(bytes: &[u8]) -> Result<Model> {
        Model::from_bytes_with(bytes, &LoadOptions::default())
    }

    /// [`Model::from_bytes`] with [`LoadOptions`] (e.g. 16-bit weight storage).
    ///
    /// Bytes that start with [`IMAGE_MAGIC`] are a packed image (docs/format.md, "Packed
    /// images"): copied, and the model built on the copy ([`Model::from_image_bytes`]).
    pub fn from_bytes_with(bytes: &[u8], options: &LoadOptions) -> Result<Model> {
        if bytes.starts_with(&IMAGE_MAGIC) {
            return Model::from_image_bytes(bytes, options);
        }
        Model::from_source(Source::parse(bytes, options.max_bytes)?, options)
    }

    /// Loads a model file (docs/format.md): a `.safetensors` file, or a packed image (read
    /// whole, see [`Model::from_bytes_with`]).
    ///
    /// The file is read piece by piece (the header, then each tensor, a large weight in blocks
    /// of rows packed as soon as they are read), so loading needs little memory beyond the
    /// model itself. I/O and format errors name the file.
    #[cfg(feature = "std")]
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<Model> {
        Model::from_file_with(path, &LoadOptions::default())
    }

    /// [`Model::from_file`] with [`LoadOptions`] (e.g. 16-bit weight storage).
    #[cfg(feature = "std")]
    pub fn from_file_with(
        path: impl AsRef<std::path::Path>,
        options: &LoadOptions,
    ) -> Result<Model> {
        let path = path.as_ref();
        if packed::is_image_file(path) {
            // `fs::read` reserves fallibly and reports a refusal as an I/O error of kind
            // OutOfMemory: that is this library's out-of-memory error.
            let io = |e: std::io::Error| match e.kind() {
                std::io::ErrorKind::OutOfMemory => Error::OutOfMemory {
                    what: "reading the packed image".to_string(),
                    bytes: std::fs::metadata(path).map_or(0, |m| m.len() as usize),
                    limit: None,
                },
                _ => Error::Io {
                    path: path.display().to_string(),
                    problem: e.to_string(),
                },
            };
            return Model::from_image_bytes(&std::fs::read(path).map_err(io)?, options);
        }
        Model::from_source(Source::open(path, options.max_bytes)?, options)
    }

    fn from_source(mut src: Source<'_>, options: &LoadOptions) -> Result<Model> {
        src.weight_storage = options.weight_storage;
        let version = src.meta_usize_required("innfer.format")?;
        if version != FORMAT_VERSION as usize {
            return Err(src.bad_meta(
                "innfer.format",
                format!("format {version} is not supported (this build reads {FORMAT_VERSION})"),
            ));
        }
        let variant = match src.meta_required("innfer.freia")?.trim() {
            "0.2" | "pypi" | "pypi-0.2" => FreiaVariant::Pypi02,
            "head" | "main" => FreiaVariant::Head,
            v => return Err(src.bad_meta("innfer.freia", format!("`{v}` is not `0.2` or `head`"))),
        };
        // Widths and counts are checked against what the file can back before anything is
        // sized by them: the tensors of every block hold at least `dim` elements in all (a
        // subnet that takes the condition, a weight at least `cond_dim` wide), every element
        // takes a byte at least, and every block needs a metadata key (its type).
        let backed = src.data_len();
        let dim = src.meta_usize_required("innfer.dim")?;
        if dim == 0 {
            return Err(src.bad_meta("innfer.dim", "must be at least 1"));
        }
        let cond_dim = src.meta_usize("innfer.cond_dim")?.unwrap_or(0);
        for (key, width) in [("innfer.dim", dim), ("innfer.cond_dim", cond_dim)] {
            if width > backed {
                return Err(src.bad_meta(
                    key,
                    format!(
                        "is {width}, but the file's tensors hold {backed} bytes in all: no block can be that wide"
                    ),
                ));
            }
        }
        let n_blocks = src.meta_usize_required("innfer.blocks")?;
        if n_blocks == 0 {
            return Err(src.bad_meta(
                "innfer.blocks",
                "must be at least 1 (an empty chain backs no width)",
            ));
        }
        if n_blocks > src.meta_len() {
            return Err(src.bad_meta(
                "innfer.blocks",
                format!(
                    "says {n_blocks} blocks, but the file has only {} metadata keys (each block needs its type)",
                    src.meta_len()
                ),
            ));
        }
        let layout = Self::parse_layout(&src, dim, cond_dim)?;

        let mut blocks = src.budget.with_capacity("the chain of blocks", n_blocks)?;
        let mut plan = Plan::default();
        for index in 0..n_blocks {
            let cond_key = name!("innfer.block.{index}.cond");
            let block_cond = match src.meta(&cond_key).map(str::trim) {
                None | Some("") | Some("none") => 0,
                Some("0") => {
                    if cond_dim == 0 {
                        return Err(src.bad_meta(
                            &cond_key,
                            "the block takes a condition but innfer.cond_dim is 0",
                        ));
                    }
                    cond_dim
                }
                Some(v) => {
                    return Err(
                        src.bad_meta(&cond_key, format!("`{v}`: only condition 0 is supported"))
                    );
                }
            };
            let spec = BlockSpec {
                src: &src,
                index,
                dim,
                cond_dim: block_cond,
                freia_head: variant == FreiaVariant::Head,
            };
            let block = Block::load(&spec)?;
            plan.cover(block.plan());
            blocks.push(block);
        }
        if let Some(extra) = src.meta(&name!("innfer.block.{n_blocks}.type")) {
            return Err(src.bad_meta(
                "innfer.blocks",
                format!(
                    "says {n_blocks} blocks, but block {n_blocks} (`{extra}`) is described too"
                ),
            ));
        }
        if cond_dim > 0 && !blocks.iter().any(Block::takes_condition) {
            return Err(src.bad_meta(
                "innfer.cond_dim",
                format!("is {cond_dim}, but no block takes the condition"),
            ));
        }
        if layout == Layout::None
            && [
                "x_mean",
                "x_std",
                "y_mean",
                "y_std",
                "x_transform",
                "x_lower",
                "x_upper",
                "y_transform",
                "x_names",
                "x_units",
            ]
            .iter()
            .any(|k| src.meta(&name!("innfer.{k}")).is_some())
        {
            return Err(src.bad_meta(
                "innfer.layout",
                "standardisation and transforms need a layout naming x and y",
            ));
        }
        let x_norm = stats(&src, "x", layout.x_dim())?;
        let y_norm = stats(&src, "y", layout.y_dim())?;
        let x_transform = transform::read_x_transform(&src, layout.x_dim())?;
        let y_transform = transform::read_y_transform(&src, layout)?;
        let x_labels = labels::read_x_labels(&src, layout.x_dim())?;
        let producer = match src.meta("innfer.producer") {
            Some(s) => Some(try_string("the producer's name", s)?),
            None => None,
        };
        src.check_all_read()?;
        let load_work = src.budget.work();
        Ok(Model {
            weight_storage: options.weight_storage,
            dim,
            cond_dim,
            layout,
            variant,
            blocks: blocks.into(),
            plan,
            x_norm,
            y_norm,
            x_transform: x_transform.into(),
            x_labels,
            y_transform,
            producer,
            load_work,
            weights: src.into_weight_memory(),
            image_memory: None,
        })
    }

    fn parse_layout(src: &Source<'_>, dim: usize, cond_dim: usize) -> Result<Layout> {
        let get = |name: &str| src.meta_usize_required(&name!("innfer.layout.{name}"));
        match src.meta("innfer.layout").map(str::trim) {
            None | Some("none") => Ok(Layout::None),
            Some("inn") => {
                let (x, pad_x, z, pad_zy, y) = (
                    get("x")?,
                    get("pad_x")?,
                    get("z")?,
                    get("pad_zy")?,
                    get("y")?,
                );
                // Summed without wrapping: a sum past usize is no width either.
                let input = x.checked_add(pad_x);
                let output = z.checked_add(pad_zy).and_then(|s| s.checked_add(y));
                if input != Some(dim) || output != Some(dim) {
                    let shown =
                        |s: Option<usize>| s.map_or("more than usize".into(), |s| s.to_string());
                    return Err(Error::Dims(format!(
                        "layout inn: x + pad_x = {} and z + pad_zy + y = {} must both equal innfer.dim = {dim}",
                        shown(input),
                        shown(output)
                    )));
                }
                if cond_dim != 0 {
                    return Err(Error::Dims(
                        "layout inn takes no condition, but innfer.cond_dim > 0".into(),
                    ));
                }
                if x == 0 || z == 0 || y == 0 {
                    return Err(Error::Dims(
                        "layout inn needs x, z and y of at least 1".into(),
                    ));
                }
                Ok(Layout::Inn {
                    x,
                    pad_x,
                    z,
                    pad_zy,
                    y,
                })
            }
            Some("cinn") => {
                let (x, y) = (get("x")?, get("y")?);
                if y == 0 {
                    return Err(Error::Dims(
                        "layout cinn needs a condition: y and innfer.cond_dim of at least 1".into(),
                    ));
                }
                if x != dim || y != cond_dim {
                    return Err(Error::Dims(format!(
                        "layout cinn: x = {x} must equal innfer.dim = {dim} and y = {y} innfer.cond_dim = {cond_dim}"
                    )));
                }
                Ok(Layout::Cinn { x, y })
            }
            Some(v) => {
                Err(src.bad_meta("innfer.layout", format!("`{v}` is not inn, cinn or none")))
            }
        }
    }

    /// Width of the chain (the vectors `forward` and `inverse` take and give).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Width of the condition vector (0 if the model takes none).
    pub fn cond_dim(&self) -> usize {
        self.cond_dim
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    pub fn freia_variant(&self) -> FreiaVariant {
        self.variant
    }

    /// Number of blocks in the chain.
    pub fn block_count(&self) -> usize {
        self.blocks.len()
    }

    /// FrEIA class name of block `i`.
    pub fn block_kind(&self, i: usize) -> Option<&'static str> {
        self.blocks.get(i).map(Block::kind)
    }

    /// Whether block `i` receives the condition.
    pub fn block_takes_condition(&self, i: usize) -> bool {
        self.blocks.get(i).is_some_and(Block::takes_condition)
    }

    /// Number of trainable parameters (subnet weights and biases, global affine, ActNorm).
    pub fn parameter_count(&self) -> usize {
        self.blocks.iter().map(Block::parameter_count).sum()
    }

    /// Whether x and y are standardised inside the model.
    pub fn has_standardization(&self) -> (bool, bool) {
        (self.x_norm.is_some(), self.y_norm.is_some())
    }

    /// The transform of each x dimension between the caller's units and the network's
    /// (docs/format.md §3.1); empty if the file has none (every dimension the identity).
    pub fn x_transform(&self) -> &[XTransform] {
        &self.x_transform
    }

    /// The name of parameter `j` (`innfer.x_names`, docs/format.md §2), if the file gives
    /// names.
    pub fn x_name(&self, j: usize) -> Option<&str> {
        self.x_labels.names.get(j).map(String::as_str)
    }

    /// The units of parameter `j` (`innfer.x_units`; may be empty), if the file gives units.
    pub fn x_unit(&self, j: usize) -> Option<&str> {
        self.x_labels.units.get(j).map(String::as_str)
    }

    /// The transform of the raw condition (docs/format.md §3.1).
    pub fn y_transform(&self) -> YTransform {
        self.y_transform
    }

    /// Turns a raw observation row (`y_dim` values, as `sample` and the `cond` of `forward`
    /// and `inverse` take it) into what the network reads, in place: the y transform, then
    /// the y standardisation. Returns whether the row is valid: every value finite. An invalid
    /// row (for `clr`, a band that is not positive and finite: a dead or saturated pixel) is
    /// not refused by the calls; its samples and outputs are NaN.
    pub fn prepare_condition(&self, row: &mut [f32]) -> bool {
        self.y_transform.apply(row);
        if let Some(norm) = &self.y_norm {
            norm.forward(row);
        }
        row.iter().all(|v| v.is_finite())
    }

    /// How the subnets' weights are stored (see [`LoadOptions`]).
    pub fn weight_storage(&self) -> WeightStorage {
        self.weight_storage
    }

    /// Bytes of the packed subnet weights (what batch-1 calls stream per sample).
    pub fn weight_bytes(&self) -> usize {
        self.blocks.iter().map(Block::weight_bytes).sum()
    }

    /// The `innfer.producer` text, if any.
    pub fn producer(&self) -> Option<&str> {
        self.producer.as_deref()
    }

    /// The multiply-adds loading's own checks and products performed (inverse probes,
    /// determinants, Householder products; 0 for a model built from an image). Loading
    /// keeps it within a constant times the file's values (docs/format.md §8, "Time"); tests
    /// hold it to that, where wall-clock times would be noise.
    #[doc(hidden)]
    pub fn load_multiply_adds(&self) -> u64 {
        self.load_work
    }
}
