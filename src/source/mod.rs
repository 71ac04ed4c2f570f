//! Reading a model file: its metadata keys and its tensors, converted to what the blocks need.
//!
//! The tensors live either in bytes the caller holds ([`Source::parse`]) or in an open file
//! read one tensor at a time ([`Source::open`]); every conversion and check below is the same
//! for both. Values are copied out (the bytes may be unaligned, or big-endian hosts may read
//! them), converted to f32, shape-checked and checked for NaN/Inf, with errors that name the
//! tensor.

pub(crate) mod budget;
#[cfg(feature = "std")]
mod file;
mod header;
pub(crate) mod name;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::ops::Range;

use header::{Dtype, Header, TensorInfo};

use crate::error::{Error, Result};
use crate::kernels::gemm::{self, WeightPacker, WeightStorage, memory::WeightMemory};
use crate::kernels::half;

/// The prefix of the metadata keys and tensors a training checkpoint adds to a model file
/// (src/train/checkpoint.rs writes them); the reader skips them and nothing else.
pub(crate) const CHECKPOINT_PREFIX: &str = "innfer_train.";
use budget::Budget;

/// Where the tensors' bytes are.
enum Data<'a> {
    /// The data section of a file held in memory.
    Bytes(&'a [u8]),
    /// An open file, read on demand.
    #[cfg(feature = "std")]
    File(file::TensorFile),
}

/// A parsed model file: the header (`__metadata__` and the tensor table) and the tensor data.
pub(crate) struct Source<'a> {
    header: Header,
    data: Data<'a>,
    /// The values of the tensor being converted, reused from tensor to tensor so that loading
    /// allocates (and zero-fills) no per-tensor temporary: weights are packed straight from it.
    scratch: Cell<Vec<f32>>,
    /// Where the blocks put their packed weights; the model takes it over.
    weights: RefCell<WeightMemory>,
    /// How the subnets' Linear weights are to be stored (a load option, not from the file).
    pub(crate) weight_storage: WeightStorage,
    /// What loading may still allocate (a load option).
    pub(crate) budget: Budget,
    /// Which metadata keys and tensors (by their index in the header's tables) the blocks
    /// have read: a file must hold no others (docs/format.md §7), so a renamed key is an
    /// error, not a silently different model.
    used_keys: Vec<Cell<bool>>,
    used_tensors: Vec<Cell<bool>>,
}

/// `len` flags, all unset.
fn unread(len: usize) -> Result<Vec<Cell<bool>>> {
    budget::try_collect(
        "the table of names read",
        (0..len).map(|_| Cell::new(false)),
    )
}

fn shape_string(shape: &[usize]) -> String {
    let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

/// Bytes of packed weights a file's blocks can ask for: every 2-D tensor might be a Linear
/// weight, and its packed f32 size bounds its packed size in any storage.
fn packed_weights_bound(header: &Header) -> usize {
    header
        .tensors()
        .iter()
        .filter_map(|t| match header.shape(t) {
            &[n, k] => Some(gemm::packed_bytes(n, k, WeightStorage::F32).saturating_add(64)),
            _ => None,
        })
        .fold(0usize, usize::saturating_add)
}

/// Heap a load needs besides the packed weights, per byte of JSON header: the parsed header,
/// the model's descriptors and the largest conversion buffer. The shipped models and the test
/// fixtures needed 6.1 to 8.0 (a load's peak less its weights, over the header's length) with
/// serde_json's tables (innfer's own parser, src/source/header.rs, holds the header's text once
/// plus a few words per entry), so 10 leaves a margin.
#[cfg(not(feature = "std"))]
const HEAP_PER_HEADER_BYTE: usize = 10;

/// Without `std`, a load first checks that the heap can hold what it is about to allocate, by
/// allocating that much (fallibly) and giving it back: every allocation of loading is
/// fallible anyway, but a firmware's small heap is then refused before any work is done (and
/// the allocations that follow fit in the block just freed).
#[cfg(not(feature = "std"))]
fn check_heap_room(what: &str, bytes: usize) -> Result<()> {
    budget::try_with_capacity::<u8>(what, bytes).map(drop)
}

impl<'a> Source<'a> {
    fn new(header: Header, data: Data<'a>, budget: Budget) -> Result<Self> {
        let bound = packed_weights_bound(&header);
        Ok(Source {
            used_keys: unread(header.meta_len())?,
            used_tensors: unread(header.tensors().len())?,
            header,
            data,
            scratch: Cell::new(Vec::new()),
            weights: RefCell::new(WeightMemory::new(bound)),
            weight_storage: WeightStorage::F32,
            budget,
        })
    }

    /// The whole file in memory; loading may allocate `max_bytes`.
    pub(crate) fn parse(bytes: &'a [u8], max_bytes: usize) -> Result<Self> {
        let n = header::json_len(bytes, bytes.len() as u64)?;
        let json_end = header::PREFIX + n;
        let budget = Budget::new(max_bytes);
        #[cfg(not(feature = "std"))]
        check_heap_room("parsing the header", n.saturating_mul(HEAP_PER_HEADER_BYTE))?;
        let metadata = header::parse(&bytes[header::PREFIX..json_end], bytes.len() as u64)?;
        #[cfg(not(feature = "std"))]
        check_heap_room(
            "loading the model",
            packed_weights_bound(&metadata).saturating_add(n.saturating_mul(HEAP_PER_HEADER_BYTE)),
        )?;
        Source::new(metadata, Data::Bytes(&bytes[json_end..]), budget)
    }

    /// A file, of which only the header is read now; loading may allocate `max_bytes`.
    #[cfg(feature = "std")]
    pub(crate) fn open(path: &std::path::Path, max_bytes: usize) -> Result<Source<'static>> {
        let budget = Budget::new(max_bytes);
        let (file, metadata) = file::TensorFile::open(path, &budget)?;
        Source::new(metadata, Data::File(file), budget)
    }

    /// Bytes of the data section (every tensor's bytes): what the file can back. The
    /// tensors of every block hold at least `innfer.dim` elements in all, and every element
    /// takes a byte at least, so no width the file describes can be larger.
    pub(crate) fn data_len(&self) -> usize {
        self.header.data_len()
    }

    /// Number of metadata keys (each block needs one, its `type`, at least).
    pub(crate) fn meta_len(&self) -> usize {
        self.header.meta_len()
    }

    /// Room for the packed `n`×`k` weight `what`, in the model's weight memory and the load
    /// option's storage, charged to the budget.
    pub(crate) fn weight_packer(&self, what: &str, n: usize, k: usize) -> Result<WeightPacker> {
        let storage = self.weight_storage;
        self.budget.charge::<u8>(
            || format!("the packed weight `{what}`"),
            gemm::packed_bytes(n, k, storage),
        )?;
        WeightPacker::new_in(&mut self.weights.borrow_mut(), what, n, k, storage)
    }

    /// Refuses the first metadata key (in byte order), then the first tensor, that no block
    /// read: nothing in a file may go unread.
    ///
    /// Keys and tensors under [`CHECKPOINT_PREFIX`] are a training checkpoint's own state (the
    /// optimiser's moments, the epoch): a checkpoint stays a loadable model (docs/format.md §8).
    pub(crate) fn check_all_read(&self) -> Result<()> {
        // Both tables are sorted by name, so the first found is the first in byte order.
        let unread_key = (0..self.header.meta_len())
            .filter(|&i| !self.used_keys[i].get())
            .map(|i| self.header.meta_key(i))
            .find(|k| !k.starts_with(CHECKPOINT_PREFIX));
        if let Some(key) = unread_key {
            return Err(self.bad_meta(
                key,
                "is not a key of this format (or not one for this block's type and options): \
                 a misspelt key would silently change the model (docs/format.md §2, §4)",
            ));
        }
        let unread_tensor = (self.header.tensors().iter().zip(&self.used_tensors))
            .filter(|(_, used)| !used.get())
            .map(|(t, _)| self.header.name(t))
            .find(|name| !name.starts_with(CHECKPOINT_PREFIX));
        if let Some(name) = unread_tensor {
            return Err(Error::TensorValue {
                name: name.to_string(),
                problem: "is not a tensor of the model's blocks (docs/format.md §1, §4)".into(),
            });
        }
        Ok(())
    }

    /// The packed weights' memory, for the model that owns them.
    pub(crate) fn into_weight_memory(self) -> WeightMemory {
        self.weights.into_inner()
    }

    /// The raw value of a metadata key (the key counts as read).
    pub(crate) fn meta(&self, key: &str) -> Option<&str> {
        let i = self.header.meta_index(key)?;
        self.used_keys[i].set(true);
        Some(self.header.meta_value(i))
    }

    pub(crate) fn meta_required(&self, key: &str) -> Result<&str> {
        self.meta(key).ok_or_else(|| Error::Metadata {
            key: key.to_string(),
            problem: "is missing".to_string(),
        })
    }

    pub(crate) fn bad_meta(&self, key: &str, problem: impl Into<String>) -> Error {
        Error::Metadata {
            key: key.to_string(),
            problem: problem.into(),
        }
    }

    pub(crate) fn meta_usize(&self, key: &str) -> Result<Option<usize>> {
        match self.meta(key) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse::<usize>()
                .map(Some)
                .map_err(|_| self.bad_meta(key, format!("`{v}` is not a non-negative integer"))),
        }
    }

    pub(crate) fn meta_usize_required(&self, key: &str) -> Result<usize> {
        self.meta_required(key)?;
        Ok(self.meta_usize(key)?.unwrap_or(0))
    }

    pub(crate) fn meta_f32(&self, key: &str, default: f32) -> Result<f32> {
        match self.meta(key) {
            None => Ok(default),
            Some(v) => match v.trim().parse::<f32>() {
                Ok(x) if x.is_finite() => Ok(x),
                _ => Err(self.bad_meta(key, format!("`{v}` is not a finite number"))),
            },
        }
    }

    pub(crate) fn meta_bool(&self, key: &str, default: bool) -> Result<bool> {
        match self.meta(key).map(|v| v.trim()) {
            None => Ok(default),
            Some("true") | Some("True") | Some("1") => Ok(true),
            Some("false") | Some("False") | Some("0") => Ok(false),
            Some(v) => Err(self.bad_meta(key, format!("`{v}` is not true or false"))),
        }
    }

    /// A comma-separated list of finite floats of a given length.
    pub(crate) fn meta_f32_list(&self, key: &str, len: usize) -> Result<Option<Vec<f32>>> {
        let Some(v) = self.meta(key) else {
            return Ok(None);
        };
        // Counted before anything is reserved: `len` comes from the file too.
        let count = v.split(',').count();
        if count != len {
            return Err(self.bad_meta(key, format!("has {count} values, expected {len}")));
        }
        let mut out = self.budget.with_capacity(key, len)?;
        for item in v.split(',') {
            match item.trim().parse::<f32>() {
                Ok(x) if x.is_finite() => out.push(x),
                _ => {
                    return Err(self.bad_meta(key, format!("`{}` is not a finite number", item)));
                }
            }
        }
        Ok(Some(out))
    }

    pub(crate) fn has_tensor(&self, name: &str) -> bool {
        self.header.tensor_index(name).is_some()
    }

    /// The header entry of tensor `name`, marked as read.
    fn info(&self, name: &str) -> Result<&TensorInfo> {
        let i = self
            .header
            .tensor_index(name)
            .ok_or_else(|| Error::MissingTensor(name.to_string()))?;
        self.used_tensors[i].set(true);
        Ok(&self.header.tensors()[i])
    }

    /// The shape of a tensor, if present.
    pub(crate) fn shape(&self, name: &str) -> Option<&[usize]> {
        let i = self.header.tensor_index(name)?;
        Some(self.header.shape(&self.header.tensors()[i]))
    }

    /// The error for a tensor whose value is wrong.
    pub(crate) fn bad_tensor(&self, name: &str, problem: impl Into<String>) -> Error {
        Error::TensorValue {
            name: name.to_string(),
            problem: problem.into(),
        }
    }

    /// Calls `f` with bytes `range` of a tensor (counted from its start; the header checked
    /// that its bytes are as many as its shape and dtype say). `name` is for I/O errors.
    #[cfg_attr(not(feature = "std"), allow(unused_variables))]
    fn with_bytes<R>(
        &self,
        name: &str,
        info: &TensorInfo,
        range: Range<usize>,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<R> {
        let start = info.data_offsets.0 + range.start;
        let end = info.data_offsets.0 + range.end;
        match &self.data {
            // header::parse checked that the offsets lie inside the data section.
            Data::Bytes(data) => Ok(f(&data[start..end])),
            #[cfg(feature = "std")]
            Data::File(file) => {
                let mut bytes = self.budget.vec(name, end - start, 0u8)?;
                file.read(name, (start, end), &mut bytes)?;
                Ok(f(&bytes))
            }
        }
    }

    /// Calls `f` with a real tensor as f32, of exactly `shape`, all entries finite. The values
    /// are lent from a buffer reused by the next tensor: `f` copies them.
    pub(crate) fn with_f32<R>(
        &self,
        name: &str,
        shape: &[usize],
        f: impl FnOnce(&[f32]) -> Result<R>,
    ) -> Result<R> {
        let (info, real) = self.real_info(name, shape)?;
        let count = shape.iter().product();
        self.with_scratch(name, count, |buf| {
            let values = &mut buf[..count];
            self.read_values(name, info, real, 0, values)?;
            f(values)
        })?
    }

    /// [`Source::with_f32`], copied out.
    pub(crate) fn f32_tensor(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        self.with_f32(name, shape, |v| {
            let mut out = self.budget.with_capacity(name, v.len())?;
            out.extend_from_slice(v);
            Ok(out)
        })
    }

    /// Calls `f(first_row, values)` for consecutive blocks of at most `block_rows` rows of a
    /// real `[rows, cols]` tensor (finite f32, row-major, lent as in [`Source::with_f32`]), so
    /// that a large weight is never held whole: it is packed block by block as it is read.
    pub(crate) fn for_each_rows(
        &self,
        name: &str,
        shape: [usize; 2],
        block_rows: usize,
        mut f: impl FnMut(usize, &[f32]) -> Result<()>,
    ) -> Result<()> {
        let (info, real) = self.real_info(name, &shape)?;
        let [rows, cols] = shape;
        let block_rows = block_rows.clamp(1, rows.max(1));
        self.with_scratch(name, block_rows * cols, |buf| {
            for first_row in (0..rows).step_by(block_rows) {
                let values = &mut buf[..block_rows.min(rows - first_row) * cols];
                self.read_values(name, info, real, first_row * cols, values)?;
                f(first_row, values)?;
            }
            Ok(())
        })?
    }

    /// The header entry of a tensor of exactly `shape` (which has no zero dimension: an
    /// empty tensor backs no width), marked as read.
    fn shaped_info(&self, name: &str, shape: &[usize]) -> Result<&TensorInfo> {
        let info = self.info(name)?;
        if self.header.shape(info) != shape {
            return Err(Error::TensorShape {
                name: name.to_string(),
                expected: shape_string(shape),
                found: shape_string(self.header.shape(info)),
            });
        }
        if shape.contains(&0) {
            return Err(self.bad_tensor(
                name,
                format!("has shape {}: no tensor may be empty", shape_string(shape)),
            ));
        }
        Ok(info)
    }

    /// The header entry of a real tensor of exactly `shape`.
    fn real_info(&self, name: &str, shape: &[usize]) -> Result<(&TensorInfo, Real)> {
        let info = self.shaped_info(name, shape)?;
        Ok((info, Real::of(name, info.dtype)?))
    }

    /// Runs `f` on the reused value buffer, at least `len` long (`name` is what it is for).
    fn with_scratch<R>(
        &self,
        name: &str,
        len: usize,
        f: impl FnOnce(&mut [f32]) -> R,
    ) -> Result<R> {
        // Taken out of the cell for the call (a nested call would just use a fresh buffer).
        let mut scratch = self.scratch.take();
        // Grown, and so zero-filled, only when a tensor (block) is larger than any before.
        if scratch.len() < len {
            let grow = len - scratch.len();
            self.budget
                .charge::<f32>(|| format!("reading tensor `{name}`"), grow)?;
            scratch.try_reserve_exact(grow).map_err(|_| {
                Error::out_of_memory(
                    format_args!("reading tensor `{name}`"),
                    len.saturating_mul(4),
                    None,
                )
            })?;
            scratch.resize(len, 0.0);
        }
        let result = f(&mut scratch);
        self.scratch.set(scratch);
        Ok(result)
    }

    /// Elements `first..first + out.len()` of a real tensor into `out`, checked to be finite
    /// (the error gives the index in the whole tensor).
    fn read_values(
        &self,
        name: &str,
        info: &TensorInfo,
        real: Real,
        first: usize,
        out: &mut [f32],
    ) -> Result<()> {
        self.fill_f32(name, info, real, first, out)?;
        match first_non_finite(out) {
            Some(i) => Err(Error::NonFinite {
                name: name.to_string(),
                index: first + i,
            }),
            None => Ok(()),
        }
    }

    /// Converts elements `first..first + out.len()` of a real tensor into `out`.
    fn fill_f32(
        &self,
        name: &str,
        info: &TensorInfo,
        real: Real,
        first: usize,
        out: &mut [f32],
    ) -> Result<()> {
        let size = real.size();
        let bytes = first * size..(first + out.len()) * size;
        // Little-endian f32 in a file: its bytes are the values, read in place (no copy).
        #[cfg(all(feature = "std", target_endian = "little"))]
        if let (Data::File(file), Real::F32) = (&self.data, real) {
            let start = info.data_offsets.0;
            // SAFETY: the f32 slice viewed as its bytes; every byte pattern is a valid f32.
            let raw = unsafe {
                core::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<u8>(), out.len() * 4)
            };
            return file.read(name, (start + bytes.start, start + bytes.end), raw);
        }
        self.with_bytes(name, info, bytes, |data| real.convert(data, out))
    }

    /// A per-channel tensor: shape `[1, len]` (FrEIA) or `[len]`.
    pub(crate) fn f32_channels(&self, name: &str, len: usize) -> Result<Vec<f32>> {
        match self.shape(name) {
            Some(s) if s == [len] => self.f32_tensor(name, &[len]),
            _ => self.f32_tensor(name, &[1, len]),
        }
    }

    /// A scalar: shape `[]` or `[1]`.
    pub(crate) fn f32_scalar(&self, name: &str) -> Result<f32> {
        match self.shape(name) {
            Some([]) => self.with_f32(name, &[], |v| Ok(v[0])),
            _ => self.with_f32(name, &[1], |v| Ok(v[0])),
        }
    }

    /// An integer index tensor of shape `[len]` (I64 or I32).
    pub(crate) fn index_tensor(&self, name: &str, len: usize) -> Result<Vec<i64>> {
        let info = self.shaped_info(name, &[len])?;
        let mut out = self.budget.with_capacity(name, len)?;
        match info.dtype {
            Dtype::I64 => {
                self.with_bytes(name, info, 0..len * 8, |data| {
                    out.extend(data.chunks_exact(8).map(|c| {
                        i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])
                    }));
                    out
                })
            }
            Dtype::I32 => self.with_bytes(name, info, 0..len * 4, |data| {
                out.extend(
                    data.chunks_exact(4)
                        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64),
                );
                out
            }),
            d => Err(Error::TensorDtype {
                name: name.to_string(),
                found: format!("{d:?}"),
            }),
        }
    }

    /// A boolean flag tensor (BOOL or U8, any shape with one element).
    pub(crate) fn flag_tensor(&self, name: &str) -> Result<bool> {
        let info = self.info(name)?;
        let len = info.data_offsets.1 - info.data_offsets.0;
        match info.dtype {
            Dtype::BOOL | Dtype::U8 if len == 1 => {
                self.with_bytes(name, info, 0..1, |data| data[0] != 0)
            }
            d => Err(Error::TensorDtype {
                name: name.to_string(),
                found: format!("{d:?} of {len} bytes"),
            }),
        }
    }
}

/// The index of the first NaN or Inf, if any. A branch-free pass per chunk (which vectorises)
/// finds whether there is one; only then is it looked for element by element.
fn first_non_finite(values: &[f32]) -> Option<usize> {
    const CHUNK: usize = 256;
    values.chunks(CHUNK).enumerate().find_map(|(c, chunk)| {
        let finite = chunk.iter().fold(true, |ok, v| ok & v.is_finite());
        if finite {
            None
        } else {
            chunk
                .iter()
                .position(|v| !v.is_finite())
                .map(|i| c * CHUNK + i)
        }
    })
}

/// The dtypes a real tensor may have.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Real {
    F32,
    F64,
    F16,
    BF16,
}

impl Real {
    fn of(name: &str, dtype: Dtype) -> Result<Real> {
        match dtype {
            Dtype::F32 => Ok(Real::F32),
            Dtype::F64 => Ok(Real::F64),
            Dtype::F16 => Ok(Real::F16),
            Dtype::BF16 => Ok(Real::BF16),
            d => Err(Error::TensorDtype {
                name: name.to_string(),
                found: format!("{d:?}"),
            }),
        }
    }

    /// Bytes per value.
    fn size(self) -> usize {
        match self {
            Real::F32 => 4,
            Real::F64 => 8,
            Real::F16 | Real::BF16 => 2,
        }
    }

    /// Little-endian values into f32 (`out` as long as `data` has values).
    fn convert(self, data: &[u8], out: &mut [f32]) {
        match self {
            Real::F32 => {
                for (o, c) in out.iter_mut().zip(data.chunks_exact(4)) {
                    *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                }
            }
            Real::F64 => {
                for (o, c) in out.iter_mut().zip(data.chunks_exact(8)) {
                    let b = [c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]];
                    *o = f64::from_le_bytes(b) as f32;
                }
            }
            Real::F16 => {
                for (o, c) in out.iter_mut().zip(data.chunks_exact(2)) {
                    *o = half::f16_to_f32(u16::from_le_bytes([c[0], c[1]]));
                }
            }
            Real::BF16 => {
                for (o, c) in out.iter_mut().zip(data.chunks_exact(2)) {
                    *o = half::bf16_to_f32(u16::from_le_bytes([c[0], c[1]]));
                }
            }
        }
    }
}
