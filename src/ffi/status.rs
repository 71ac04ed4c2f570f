//! Status codes and fixed-buffer messages.

use core::ffi::c_char;
use core::fmt;

use crate::error::Error;

/// What a call returns: `INNFER_STATUS_OK` (0) on success, a positive `INNFER_STATUS_*` code
/// otherwise.
///
/// A plain 32-bit integer whatever the compiler's enum settings (Fortran: `integer(c_int32_t)`).
/// Codes are stable across releases with the same `INNFER_ABI_VERSION`; new codes may be added.
/// Use `innfer_status_string()` for a short description and, on a session,
/// `innfer_session_last_error()` for the details of the failure.
pub type innfer_status = i32;

/// Success.
pub const INNFER_STATUS_OK: innfer_status = 0;
/// A required pointer argument (handle, buffer or out-pointer) is NULL.
pub const INNFER_STATUS_NULL_ARGUMENT: innfer_status = 1;
/// An argument has an invalid value: a zero `max_batch`, a negative stride, output strides
/// that make two elements share memory (a zero stride, interleaved rows), overlapping input
/// and output buffers, a misaligned `float` pointer, a size that overflows, a condition given
/// to a model that takes none, a freed static session.
pub const INNFER_STATUS_INVALID_ARGUMENT: innfer_status = 2;
/// The model file could not be opened or read.
pub const INNFER_STATUS_IO: innfer_status = 3;
/// The bytes are not a valid safetensors file (truncated, corrupt header, bad offsets), or not
/// a valid packed image (`innfer_model_init_static`: wrong magic, format version or target,
/// checksum mismatch, truncated, misaligned, or a count that does not match the image).
pub const INNFER_STATUS_FORMAT: innfer_status = 4;
/// An `innfer.*` metadata key is missing or has a value that cannot be understood.
pub const INNFER_STATUS_METADATA: innfer_status = 5;
/// A tensor is missing, misshaped, has an unusable dtype, a bad value or a NaN/Inf.
pub const INNFER_STATUS_TENSOR: innfer_status = 6;
/// The model uses a block type or subnet layer innfer does not know.
pub const INNFER_STATUS_UNSUPPORTED: innfer_status = 7;
/// The model's dimensions do not chain (block widths, subnet layers, layout).
pub const INNFER_STATUS_DIMS: innfer_status = 8;
/// A forward or inverse call asked for more rows than the session's `max_batch` (any row
/// count above it, `SIZE_MAX` too).
pub const INNFER_STATUS_BATCH_TOO_LARGE: innfer_status = 9;
/// A buffer's size does not match the model: the `len` given to
/// `innfer_model_standardization()`. (The other calls take row counts and work out every
/// buffer's size from them and the model, so a size cannot disagree there.)
pub const INNFER_STATUS_BUFFER_SIZE: innfer_status = 10;
/// The memory given to `innfer_session_init_static` is smaller than `innfer_session_size`.
pub const INNFER_STATUS_ARENA_TOO_SMALL: innfer_status = 11;
/// The memory given to `innfer_session_init_static` is not aligned to `INNFER_ARENA_ALIGN`.
pub const INNFER_STATUS_ARENA_MISALIGNED: innfer_status = 12;
/// The model has no sampling layout (`innfer.layout = none`); use forward/inverse.
pub const INNFER_STATUS_NO_LAYOUT: innfer_status = 13;
/// A requested instruction set is not available on this CPU. No call of this ABI version
/// returns it (the C API has no call that chooses an instruction set); the code is kept so
/// that codes stay stable.
pub const INNFER_STATUS_ISA_UNAVAILABLE: innfer_status = 14;
/// An internal error (a caught panic): a bug in innfer; please report it.
///
/// The panic was caught at the call's boundary, but it has run the process's panic hook
/// first, and the default hook prints the panic's message to stderr. innfer installs no hook
/// of its own: a hook is global to the process, so ours would replace the host's (or race
/// with another library's) on every thread. A host that must keep stderr clean sets its own
/// hook (`std::panic::set_hook` in a Rust host; a C host cannot). Apart from this, nothing in
/// the library writes to stdout or stderr.
pub const INNFER_STATUS_INTERNAL: innfer_status = 15;
/// Memory could not be had: the allocator refused (a session's `max_batch` too large for this
/// machine, say), a load would pass the caller's `max_bytes` (`innfer_load_options`), or the
/// system refused to start a worker thread (`innfer_session_set_threads()`). Nothing was
/// allocated that the call did not free again.
pub const INNFER_STATUS_OUT_OF_MEMORY: innfer_status = 16;
/// Rows whose input was finite came out non-finite: an overflow, the input lies far outside
/// what the model was trained on (y = 1e38, say). Unlike every other failure, the call has
/// done its work: all outputs are written, the rows concerned are NaN in every output (and
/// log-determinant), the other rows are valid, and a sampling call has advanced the random
/// stream. `innfer_session_last_error()` names the buffer, the first such row and how many
/// there are. (Rows whose input holds a NaN or an infinity are not this: see NON-FINITE
/// VALUES at the top of this header.)
pub const INNFER_STATUS_NON_FINITE_OUTPUT: innfer_status = 17;

/// The status code of a Rust API error.
pub(crate) fn status_of(e: &Error) -> innfer_status {
    match e {
        Error::Format(_) | Error::Image { .. } => INNFER_STATUS_FORMAT,
        Error::Metadata { .. } => INNFER_STATUS_METADATA,
        Error::MissingTensor(_)
        | Error::TensorShape { .. }
        | Error::TensorDtype { .. }
        | Error::NonFinite { .. }
        | Error::TensorValue { .. } => INNFER_STATUS_TENSOR,
        Error::UnknownBlock { .. } | Error::UnknownLayer { .. } => INNFER_STATUS_UNSUPPORTED,
        Error::Dims(_) => INNFER_STATUS_DIMS,
        Error::BatchTooLarge { .. } => INNFER_STATUS_BATCH_TOO_LARGE,
        Error::BufferLength { .. } => INNFER_STATUS_BUFFER_SIZE,
        Error::BufferPresence { expected: true, .. } => INNFER_STATUS_NULL_ARGUMENT,
        Error::BufferPresence {
            expected: false, ..
        } => INNFER_STATUS_INVALID_ARGUMENT,
        Error::ArenaTooSmall { .. } => INNFER_STATUS_ARENA_TOO_SMALL,
        Error::ArenaMisaligned { .. } => INNFER_STATUS_ARENA_MISALIGNED,
        Error::NoLayout => INNFER_STATUS_NO_LAYOUT,
        Error::IsaUnavailable(_) => INNFER_STATUS_ISA_UNAVAILABLE,
        Error::Argument(_) => INNFER_STATUS_INVALID_ARGUMENT,
        Error::Io { .. } => INNFER_STATUS_IO,
        Error::OutOfMemory { .. } => INNFER_STATUS_OUT_OF_MEMORY,
        Error::NonFiniteOutput { .. } => INNFER_STATUS_NON_FINITE_OUTPUT,
    }
}

/// The static description of a status code.
fn describe(code: innfer_status) -> &'static core::ffi::CStr {
    match code {
        INNFER_STATUS_OK => c"ok",
        INNFER_STATUS_NULL_ARGUMENT => c"a required pointer argument is NULL",
        INNFER_STATUS_INVALID_ARGUMENT => c"invalid argument",
        INNFER_STATUS_IO => c"the model file could not be read",
        INNFER_STATUS_FORMAT => c"not a valid safetensors file or packed image",
        INNFER_STATUS_METADATA => c"missing or invalid innfer metadata",
        INNFER_STATUS_TENSOR => c"missing, misshaped or invalid tensor",
        INNFER_STATUS_UNSUPPORTED => c"unsupported block type or subnet layer",
        INNFER_STATUS_DIMS => c"model dimensions do not chain",
        INNFER_STATUS_BATCH_TOO_LARGE => c"batch exceeds the session's max_batch",
        INNFER_STATUS_BUFFER_SIZE => c"buffer size does not match the model",
        INNFER_STATUS_ARENA_TOO_SMALL => c"session memory too small",
        INNFER_STATUS_ARENA_MISALIGNED => c"session memory misaligned",
        INNFER_STATUS_NO_LAYOUT => c"the model has no sampling layout",
        INNFER_STATUS_ISA_UNAVAILABLE => c"instruction set unavailable on this CPU",
        INNFER_STATUS_INTERNAL => c"internal error (a bug in innfer)",
        INNFER_STATUS_OUT_OF_MEMORY => c"out of memory",
        INNFER_STATUS_NON_FINITE_OUTPUT => c"finite input gave non-finite output (overflow)",
        _ => c"unknown status",
    }
}

/// A short static description of a status code, such as `"session memory too small"`.
///
/// Any integer may be passed; codes this library does not define give `"unknown status"`.
/// The string is owned by the library and lives for the whole program; do not free it.
/// Thread-safe; never returns NULL.
#[unsafe(no_mangle)]
pub extern "C" fn innfer_status_string(status: innfer_status) -> *const c_char {
    describe(status).as_ptr()
}

/// `core::fmt::Write` into a fixed byte buffer, truncating at a UTF-8 boundary and always
/// leaving room for the terminating NUL.
pub(crate) struct FixedWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
    full: bool,
}

impl<'a> FixedWriter<'a> {
    /// A writer over `buf` (which may be empty: then nothing is written).
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        if let Some(b) = buf.first_mut() {
            *b = 0;
        }
        FixedWriter {
            buf,
            len: 0,
            full: false,
        }
    }
}

impl fmt::Write for FixedWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.full || self.buf.is_empty() {
            return Ok(());
        }
        let room = self.buf.len() - 1 - self.len;
        let mut n = s.len().min(room);
        if n < s.len() {
            while !s.is_char_boundary(n) {
                n -= 1;
            }
            self.full = true;
        }
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        self.buf[self.len] = 0;
        Ok(())
    }
}

/// Writes `args` into `buf` as a NUL-terminated string (truncated to fit).
pub(crate) fn write_message(buf: &mut [u8], args: fmt::Arguments<'_>) {
    let mut w = FixedWriter::new(buf);
    // FixedWriter never fails; a Display impl that fails only shortens the message.
    let _ = fmt::write(&mut w, args);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_writer_truncates_on_char_boundaries() {
        let mut buf = [0xffu8; 6];
        write_message(&mut buf, format_args!("ab{}", "cdé€"));
        // 5 bytes of room: "abcd" + the first byte of é would split it, so "abcd".
        assert_eq!(&buf[..5], b"abcd\0");
        let mut empty: [u8; 0] = [];
        write_message(&mut empty, format_args!("x"));
        let mut one = [7u8; 1];
        write_message(&mut one, format_args!("xyz"));
        assert_eq!(one, [0]);
    }

    #[test]
    fn status_strings_cover_every_code() {
        for code in 0..=17 {
            assert_ne!(describe(code), c"unknown status");
        }
        assert_eq!(describe(18), c"unknown status");
        assert_eq!(describe(-1), c"unknown status");
    }
}

/// Why an FFI call failed: an error of the Rust API, or a problem with a raw argument.
/// Formatting it allocates nothing.
#[derive(Debug)]
pub(crate) enum Fail {
    Api(Error),
    /// The named pointer argument is NULL.
    Null(&'static str),
    /// The named argument is invalid for the stated reason.
    Invalid(&'static str, &'static str),
}

impl Fail {
    pub(crate) fn status(&self) -> innfer_status {
        match self {
            Fail::Api(e) => status_of(e),
            Fail::Null(_) => INNFER_STATUS_NULL_ARGUMENT,
            Fail::Invalid(..) => INNFER_STATUS_INVALID_ARGUMENT,
        }
    }
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail::Api(e)
    }
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fail::Api(e) => e.fmt(f),
            Fail::Null(name) => write!(f, "argument `{name}` is NULL"),
            Fail::Invalid(name, problem) => write!(f, "argument `{name}`: {problem}"),
        }
    }
}
