//! One error type for the whole library.
//!
//! Load-time errors may carry owned strings (loading allocates anyway). Run-time errors
//! (batch, buffer and arena checks) carry only numbers and `&'static str`, so that reporting
//! them on the hot path allocates nothing.

use alloc::string::String;
use core::fmt;

/// What went wrong, with enough context to name the file part, tensor, block or buffer at fault.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not a valid safetensors file (truncated, corrupt header, bad offsets).
    Format(String),
    /// A metadata key is missing or its value cannot be understood.
    Metadata { key: String, problem: String },
    /// A tensor the architecture needs is not in the file.
    MissingTensor(String),
    /// A tensor has the wrong shape.
    TensorShape {
        name: String,
        expected: String,
        found: String,
    },
    /// A tensor has a dtype innfer cannot use for it.
    TensorDtype { name: String, found: String },
    /// A tensor holds a NaN or an infinity.
    NonFinite { name: String, index: usize },
    /// A tensor's values are not what its role requires (e.g. a permutation that is not one).
    TensorValue { name: String, problem: String },
    /// `innfer.block.{block}.type` names a block innfer does not know.
    UnknownBlock { block: usize, kind: String },
    /// A subnet layer kind innfer does not know.
    UnknownLayer { key: String, layer: String },
    /// Dimensions that do not chain (block widths, subnet layers, layout).
    Dims(String),
    /// A call asked for more rows than the session was created for.
    BatchTooLarge { batch: usize, max_batch: usize },
    /// A caller buffer has the wrong number of elements (or strides reach past its end).
    BufferLength {
        buffer: &'static str,
        expected: usize,
        found: usize,
    },
    /// A required buffer (a condition, say) was not given, or one was given that the model does not take.
    BufferPresence {
        buffer: &'static str,
        expected: bool,
    },
    /// Caller-provided session memory is smaller than [`crate::Session::arena_bytes`].
    ArenaTooSmall { needed: usize, found: usize },
    /// Caller-provided session memory is not aligned to [`crate::ARENA_ALIGN`].
    ArenaMisaligned { align: usize, address: usize },
    /// The model has no sampling layout (`innfer.layout = none`).
    NoLayout,
    /// A requested kernel instruction set is not available on this CPU.
    IsaUnavailable(&'static str),
    /// An invalid argument (zero batch, zero samples, …).
    Argument(&'static str),
    /// The file could not be read (std only).
    Io { path: String, problem: String },
    /// The bytes are not a packed image this build reads (docs/format.md, "Packed images"):
    /// `problem` (wrong magic, version or target, checksum mismatch, truncated, misaligned, an
    /// inconsistent count) found at byte `offset`. Owns nothing, so that reading an image
    /// allocates nothing even when it fails.
    Image {
        offset: usize,
        problem: &'static str,
    },
    /// Rows whose input was finite came out non-finite (an overflow: the input lies far outside
    /// what the model was trained on). The call wrote all its outputs; those rows are NaN in
    /// every output (see `Session`'s non-finite policy). `row` is the first such row of
    /// `buffer`, `rows` how many there are.
    NonFiniteOutput {
        buffer: &'static str,
        row: usize,
        rows: usize,
    },
    /// Memory for `what` (`bytes` of it) could not be had: the allocator refused, or loading
    /// would pass the caller's limit `limit` ([`crate::model::LoadOptions::max_bytes`]).
    OutOfMemory {
        what: String,
        bytes: usize,
        limit: Option<usize>,
    },
}

impl Error {
    /// [`Error::OutOfMemory`] for `what`, which is formatted without aborting: after an
    /// allocation was refused, the message's own allocation may be refused too, and then
    /// `what` stays empty rather than ending the host (docs/format.md §8).
    pub(crate) fn out_of_memory(
        what: fmt::Arguments<'_>,
        bytes: usize,
        limit: Option<usize>,
    ) -> Error {
        Error::OutOfMemory {
            what: try_message(what).unwrap_or_default(),
            bytes,
            limit,
        }
    }
}

/// `args` formatted, or `None` if the allocator refuses the room: measured first, then written
/// into room reserved fallibly (so writing never grows the string).
pub(crate) fn try_message(args: fmt::Arguments<'_>) -> Option<String> {
    struct Count(usize);
    impl fmt::Write for Count {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            self.0 += s.len();
            Ok(())
        }
    }
    let mut count = Count(0);
    fmt::write(&mut count, args).ok()?;
    let mut out = String::new();
    out.try_reserve_exact(count.0).ok()?;
    fmt::write(&mut out, args).ok()?;
    Some(out)
}

/// Shorthand used throughout the crate.
pub type Result<T> = core::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Format(m) => write!(f, "not a valid safetensors model: {m}"),
            Error::Metadata { key, problem } => write!(f, "metadata key `{key}`: {problem}"),
            Error::MissingTensor(n) => write!(f, "tensor `{n}` is missing"),
            Error::TensorShape {
                name,
                expected,
                found,
            } => write!(f, "tensor `{name}` has shape {found}, expected {expected}"),
            Error::TensorDtype { name, found } => {
                write!(f, "tensor `{name}` has unsupported dtype {found}")
            }
            Error::NonFinite { name, index } => {
                write!(
                    f,
                    "tensor `{name}` holds a NaN or Inf at flat index {index}"
                )
            }
            Error::TensorValue { name, problem } => write!(f, "tensor `{name}`: {problem}"),
            Error::UnknownBlock { block, kind } => {
                write!(f, "block {block}: unknown block type `{kind}`")
            }
            Error::UnknownLayer { key, layer } => {
                write!(f, "metadata key `{key}`: unknown subnet layer `{layer}`")
            }
            Error::Dims(m) => write!(f, "dimensions do not chain: {m}"),
            Error::BatchTooLarge { batch, max_batch } => write!(
                f,
                "batch of {batch} rows exceeds the session's maximum batch {max_batch}"
            ),
            Error::BufferLength {
                buffer,
                expected,
                found,
            } => write!(
                f,
                "buffer `{buffer}` holds {found} elements, expected {expected}"
            ),
            Error::BufferPresence { buffer, expected } => {
                if *expected {
                    write!(f, "buffer `{buffer}` is required by this model")
                } else {
                    write!(f, "buffer `{buffer}` was given but the model takes none")
                }
            }
            Error::ArenaTooSmall { needed, found } => write!(
                f,
                "session memory of {found} bytes is too small: {needed} bytes needed"
            ),
            Error::ArenaMisaligned { align, address } => write!(
                f,
                "session memory at {address:#x} is not aligned to {align} bytes"
            ),
            Error::NoLayout => write!(
                f,
                "the model has no sampling layout (innfer.layout = none): use forward/inverse"
            ),
            Error::IsaUnavailable(isa) => write!(f, "instruction set {isa} is not available"),
            Error::Argument(m) => write!(f, "invalid argument: {m}"),
            Error::NonFiniteOutput { buffer, row, rows } => write!(
                f,
                "buffer `{buffer}`: row {row} ({rows} rows in all) came out non-finite from finite input (an overflow: the input lies far outside the model's training range); those rows are NaN, the others are valid"
            ),
            Error::Io { path, problem } => write!(f, "cannot read `{path}`: {problem}"),
            Error::Image { offset, problem } => {
                write!(f, "not a valid packed image: {problem} (at byte {offset})")
            }
            Error::OutOfMemory {
                what,
                bytes,
                limit: Some(limit),
            } => write!(
                f,
                "out of memory: {what} needs {bytes} bytes, past the load limit of {limit} bytes (LoadOptions::max_bytes)"
            ),
            Error::OutOfMemory {
                what,
                bytes,
                limit: None,
            } => write!(
                f,
                "out of memory: {bytes} bytes for {what} could not be allocated"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}
