//! The safetensors header: an 8-byte little-endian length, that many bytes of JSON, then the
//! data section the JSON describes.
//!
//! Parsed here rather than by `SafeTensors::deserialize` because that needs the whole file in
//! memory, and a file loader should only ever hold one tensor at a time. Both loaders (bytes
//! and file) go through these two functions, so they accept and reject the same files with the
//! same messages.

use alloc::collections::BTreeSet;
use alloc::format;
use alloc::string::String;

use safetensors::tensor::Metadata;
use serde::de::{Deserialize, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};

use crate::error::{Error, Result};

/// Bytes of the length prefix.
pub(crate) const PREFIX: usize = 8;

/// The largest JSON header accepted: safetensors' own limit (100 MB).
const MAX_JSON: u64 = 100_000_000;

fn format_error(what: impl Into<String>) -> Error {
    Error::Format(what.into())
}

/// The JSON header's length, from the file's first bytes (`prefix`, at most 8 are looked at)
/// and the file's total length.
pub(crate) fn json_len(prefix: &[u8], file_len: u64) -> Result<usize> {
    let Some(prefix) = prefix.get(..PREFIX) else {
        return Err(format_error(
            "the file is shorter than the 8-byte header length",
        ));
    };
    let mut le = [0u8; PREFIX];
    le.copy_from_slice(prefix);
    let n = u64::from_le_bytes(le);
    if n > MAX_JSON {
        return Err(format_error(
            "the header length is implausibly large (is this a safetensors file?)",
        ));
    }
    if PREFIX as u64 + n > file_len {
        return Err(format_error(
            "the header length points past the end of the file (truncated?)",
        ));
    }
    // n ≤ 100 MB fits usize on every target.
    Ok(n as usize)
}

/// A JSON value walked only to check that no object in it names a key twice (JSON parsers,
/// serde_json's included, keep the last of repeated keys, so a file could say two things and
/// mean the last).
struct NoRepeatedKeys;

impl<'de> Deserialize<'de> for NoRepeatedKeys {
    fn deserialize<D: Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        d.deserialize_any(NoRepeatedKeys)
    }
}

impl<'de> Visitor<'de> for NoRepeatedKeys {
    type Value = NoRepeatedKeys;

    fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> core::result::Result<Self, E> {
        Ok(self)
    }

    fn visit_i64<E>(self, _: i64) -> core::result::Result<Self, E> {
        Ok(self)
    }

    fn visit_u64<E>(self, _: u64) -> core::result::Result<Self, E> {
        Ok(self)
    }

    fn visit_f64<E>(self, _: f64) -> core::result::Result<Self, E> {
        Ok(self)
    }

    fn visit_str<E>(self, _: &str) -> core::result::Result<Self, E> {
        Ok(self)
    }

    fn visit_unit<E>(self) -> core::result::Result<Self, E> {
        Ok(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> core::result::Result<Self, A::Error> {
        while seq.next_element::<NoRepeatedKeys>()?.is_some() {}
        Ok(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> core::result::Result<Self, A::Error> {
        let mut seen = BTreeSet::new();
        while let Some(key) = map.next_key::<String>()? {
            map.next_value::<NoRepeatedKeys>()?;
            if let Some(key) = seen.replace(key) {
                return Err(A::Error::custom(format!("the key `{key}` appears twice")));
            }
        }
        Ok(self)
    }
}

/// The tensor table and `__metadata__` from the JSON header, checked to describe exactly the
/// rest of a file of `file_len` bytes.
pub(crate) fn parse(json: &[u8], file_len: u64) -> Result<Metadata> {
    if let Err(e) = serde_json::from_slice::<NoRepeatedKeys>(json) {
        return Err(format_error(if e.is_data() {
            format!("the JSON header is invalid: {e}")
        } else {
            "the JSON header is corrupt".into()
        }));
    }
    // Metadata's deserializer also checks the table: contiguous offsets in order, and byte
    // lengths that match shape × dtype. Those failures arrive as data errors whose text is
    // safetensors' own explanation (it names the tensor where it can).
    let metadata: Metadata = serde_json::from_slice(json).map_err(|e| {
        if e.is_data() {
            format_error(format!("the JSON header's tensor table is invalid: {e}"))
        } else {
            format_error("the JSON header is corrupt")
        }
    })?;
    let expected = (PREFIX + json.len()) as u64 + metadata.data_len() as u64;
    if expected > file_len {
        return Err(format_error(
            "the data section is shorter than the header says (truncated?)",
        ));
    }
    if expected < file_len {
        return Err(format_error(format!(
            "the file has {} bytes after the data the header describes",
            file_len - expected
        )));
    }
    Ok(metadata)
}
