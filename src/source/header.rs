//! The safetensors header: an 8-byte little-endian length, that many bytes of JSON, then the
//! data section the JSON describes.
//!
//! Parsed here rather than by `SafeTensors::deserialize` for two reasons. A file loader should
//! only ever hold one tensor at a time, and that needs the whole file in memory. And every
//! allocation loading makes must be fallible (docs/format.md §8): a JSON library's maps and
//! strings abort the host when the allocator refuses. So the JSON is read by the small parser
//! below into three flat tables, each grown with `try_reserve`: the decoded strings (names,
//! keys, values) one after another in one buffer, the tensors' dimensions in another, and the
//! entries that point into them, sorted by name for lookup. Both loaders (bytes and file) go
//! through these two functions, so they accept and reject the same files with the same
//! messages.
//!
//! What is accepted is what safetensors accepts: RFC 8259 JSON (whitespace around values,
//! string escapes, the spaces Python's writer pads with), an object whose `__metadata__` entry
//! is `null` or an object of strings and whose other entries are tensors with a known `dtype`,
//! a `shape` and two `data_offsets` (other fields of an entry are skipped, as serde skips
//! them), and a table that tiles the data section in order with sizes that match shape and
//! dtype. Stricter than safetensors: no object may name a key twice (a JSON parser keeps the
//! last, so a file could say two things and mean the last).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::ops::Range;

use crate::error::{Error, Result};

/// Bytes of the length prefix.
pub(crate) const PREFIX: usize = 8;

/// The largest JSON header accepted: safetensors' own limit (100 MB).
const MAX_JSON: u64 = 100_000_000;

/// How deeply the values of fields innfer skips may nest (serde_json's limit too).
const MAX_DEPTH: usize = 128;

fn format_error(what: impl Into<String>) -> Error {
    Error::Format(what.into())
}

fn out_of_memory(bytes: usize) -> Error {
    Error::out_of_memory(format_args!("parsing the JSON header"), bytes, None)
}

/// `v` with room for `more` further items, or [`Error::OutOfMemory`].
fn reserve<T>(v: &mut Vec<T>, more: usize) -> Result<()> {
    super::budget::try_reserve("parsing the JSON header", v, more)
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

/// A tensor element type, as safetensors names it (the `dtype` field); `{:?}` prints that
/// name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub(crate) enum Dtype {
    BOOL,
    F4,
    F6_E2M3,
    F6_E3M2,
    U8,
    I8,
    F8_E5M2,
    F8_E4M3,
    F8_E8M0,
    F8_E4M3FNUZ,
    F8_E5M2FNUZ,
    I16,
    U16,
    F16,
    BF16,
    I32,
    U32,
    F32,
    C64,
    F64,
    I64,
    U64,
}

/// Every dtype, its name in a file and its bits per element.
const DTYPES: [(&str, Dtype, usize); 22] = [
    ("BOOL", Dtype::BOOL, 8),
    ("F4", Dtype::F4, 4),
    ("F6_E2M3", Dtype::F6_E2M3, 6),
    ("F6_E3M2", Dtype::F6_E3M2, 6),
    ("U8", Dtype::U8, 8),
    ("I8", Dtype::I8, 8),
    ("F8_E5M2", Dtype::F8_E5M2, 8),
    ("F8_E4M3", Dtype::F8_E4M3, 8),
    ("F8_E8M0", Dtype::F8_E8M0, 8),
    ("F8_E4M3FNUZ", Dtype::F8_E4M3FNUZ, 8),
    ("F8_E5M2FNUZ", Dtype::F8_E5M2FNUZ, 8),
    ("I16", Dtype::I16, 16),
    ("U16", Dtype::U16, 16),
    ("F16", Dtype::F16, 16),
    ("BF16", Dtype::BF16, 16),
    ("I32", Dtype::I32, 32),
    ("U32", Dtype::U32, 32),
    ("F32", Dtype::F32, 32),
    ("C64", Dtype::C64, 64),
    ("F64", Dtype::F64, 64),
    ("I64", Dtype::I64, 64),
    ("U64", Dtype::U64, 64),
];

impl Dtype {
    fn bits(self) -> usize {
        DTYPES.iter().find(|d| d.1 == self).map_or(8, |d| d.2)
    }
}

/// A tensor's entry in the header's table.
pub(crate) struct TensorInfo {
    pub(crate) dtype: Dtype,
    /// Its bytes, counted from the start of the data section.
    pub(crate) data_offsets: (usize, usize),
    /// Its name, in [`Header::text`].
    name: Range<usize>,
    /// Its dimensions, in [`Header::dims`].
    shape: Range<usize>,
}

/// A `__metadata__` entry: a key and its value, both in [`Header::text`].
struct MetaEntry {
    key: Range<usize>,
    value: Range<usize>,
}

/// The parsed JSON header: the tensor table and the `__metadata__` entries, each sorted by
/// name (byte order) with no name twice.
pub(crate) struct Header {
    text: String,
    dims: Vec<usize>,
    tensors: Vec<TensorInfo>,
    metadata: Vec<MetaEntry>,
    data_len: usize,
}

impl Header {
    /// The index of the tensor `name` in [`Header::tensors`].
    pub(crate) fn tensor_index(&self, name: &str) -> Option<usize> {
        self.tensors
            .binary_search_by(|t| self.text[t.name.clone()].cmp(name))
            .ok()
    }

    /// The tensors, sorted by name.
    pub(crate) fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    pub(crate) fn name(&self, info: &TensorInfo) -> &str {
        &self.text[info.name.clone()]
    }

    pub(crate) fn shape(&self, info: &TensorInfo) -> &[usize] {
        &self.dims[info.shape.clone()]
    }

    /// The index of the metadata key `key` (for [`Header::meta_key`], [`Header::meta_value`]).
    pub(crate) fn meta_index(&self, key: &str) -> Option<usize> {
        self.metadata
            .binary_search_by(|m| self.text[m.key.clone()].cmp(key))
            .ok()
    }

    /// Number of metadata keys.
    pub(crate) fn meta_len(&self) -> usize {
        self.metadata.len()
    }

    /// The `i`-th metadata key, in byte order.
    pub(crate) fn meta_key(&self, i: usize) -> &str {
        &self.text[self.metadata[i].key.clone()]
    }

    pub(crate) fn meta_value(&self, i: usize) -> &str {
        &self.text[self.metadata[i].value.clone()]
    }

    /// Bytes of the data section the table describes.
    pub(crate) fn data_len(&self) -> usize {
        self.data_len
    }
}

/// The tensor table and `__metadata__` from the JSON header, checked to describe exactly the
/// rest of a file of `file_len` bytes.
pub(crate) fn parse(json: &[u8], file_len: u64) -> Result<Header> {
    let mut header = Parser::new(json)?.header()?;
    sort_unique(&mut header)?;
    header.data_len = tile(&header)?;
    let expected = (PREFIX + json.len()) as u64 + header.data_len as u64;
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
    Ok(header)
}

/// Sorts both tables by name and refuses a name given twice.
fn sort_unique(header: &mut Header) -> Result<()> {
    let text = &header.text;
    // Unstable sorts: they allocate nothing (and no two names are equal, or the file is
    // refused next).
    header
        .tensors
        .sort_unstable_by(|a, b| text[a.name.clone()].cmp(&text[b.name.clone()]));
    header
        .metadata
        .sort_unstable_by(|a, b| text[a.key.clone()].cmp(&text[b.key.clone()]));
    let twice = |name: &str, within: &str| {
        format_error(format!(
            "the JSON header is invalid: the key `{name}` appears twice{within}"
        ))
    };
    for pair in header.tensors.windows(2) {
        if text[pair[0].name.clone()] == text[pair[1].name.clone()] {
            return Err(twice(&text[pair[0].name.clone()], ""));
        }
    }
    for pair in header.metadata.windows(2) {
        if text[pair[0].key.clone()] == text[pair[1].key.clone()] {
            return Err(twice(&text[pair[0].key.clone()], " in `__metadata__`"));
        }
    }
    Ok(())
}

/// safetensors' rule for the table: taken in order of their offsets, the tensors tile the
/// data section from byte 0 without gap or overlap, each as long as its shape and dtype say.
/// Returns the data section's length.
fn tile(header: &Header) -> Result<usize> {
    let invalid =
        |what: String| format_error(format!("the JSON header's tensor table is invalid: {what}"));
    let mut order: Vec<usize> = Vec::new();
    reserve(&mut order, header.tensors.len())?;
    order.extend(0..header.tensors.len());
    order.sort_unstable_by_key(|&i| header.tensors[i].data_offsets);
    let mut end = 0usize;
    for i in order {
        let info = &header.tensors[i];
        let name = header.name(info);
        let (s, e) = info.data_offsets;
        if s != end || e < s {
            return Err(invalid(format!(
                "invalid offset for tensor `{name}` ({s}..{e}: the tensors must follow one another from byte 0)"
            )));
        }
        let bytes = header
            .shape(info)
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .and_then(|n| n.checked_mul(info.dtype.bits()))
            .filter(|bits| bits % 8 == 0)
            .map(|bits| bits / 8);
        if bytes != Some(e - s) {
            return Err(invalid(format!(
                "tensor `{name}` holds {} bytes, but its shape {:?} of {:?} needs {}",
                e - s,
                header.shape(info),
                info.dtype,
                match bytes {
                    Some(b) => format!("{b}"),
                    None => String::from("a size that is not a whole number of bytes"),
                }
            )));
        }
        end = e;
    }
    Ok(end)
}

/// Reads the JSON header byte by byte.
struct Parser<'j> {
    json: &'j [u8],
    at: usize,
    text: String,
}

impl<'j> Parser<'j> {
    fn new(json: &'j [u8]) -> Result<Self> {
        let mut text = String::new();
        // Decoded strings are never longer than their JSON text, so this is all the room the
        // names, keys and values need (no growth later).
        text.try_reserve_exact(json.len())
            .map_err(|_| out_of_memory(json.len()))?;
        Ok(Parser { json, at: 0, text })
    }

    /// The error for JSON that does not parse, with where and what was expected.
    fn corrupt(&self, expected: &str) -> Error {
        format_error(format!(
            "the JSON header is corrupt at byte {}: expected {expected}",
            self.at
        ))
    }

    fn invalid(&self, what: String) -> Error {
        format_error(format!("the JSON header is invalid: {what}"))
    }

    /// The next byte that is not JSON whitespace (not consumed).
    fn peek(&mut self) -> Option<u8> {
        while let Some(&b) = self.json.get(self.at) {
            if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
                return Some(b);
            }
            self.at += 1;
        }
        None
    }

    fn eat(&mut self, b: u8, expected: &str) -> Result<()> {
        if self.peek() == Some(b) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.corrupt(expected))
        }
    }

    /// `,` before another member (true) or the closing `close` (false).
    fn more(&mut self, close: u8, expected: &str) -> Result<bool> {
        match self.peek() {
            Some(b',') => {
                self.at += 1;
                Ok(true)
            }
            Some(b) if b == close => {
                self.at += 1;
                Ok(false)
            }
            _ => Err(self.corrupt(expected)),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<()> {
        if self.json[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(())
        } else {
            Err(self.corrupt("a JSON value"))
        }
    }

    /// A string, decoded onto the end of `text`; returns where it is there.
    fn string(&mut self) -> Result<Range<usize>> {
        self.eat(b'"', "a string")?;
        let start = self.text.len();
        loop {
            // The run of plain bytes up to the next quote, backslash or control character.
            let run = self.json[self.at..]
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                .ok_or_else(|| self.corrupt("the end of a string"))?;
            let plain = core::str::from_utf8(&self.json[self.at..self.at + run])
                .map_err(|_| self.invalid(String::from("a string is not valid UTF-8")))?;
            self.push(plain)?;
            self.at += run;
            match self.json[self.at] {
                b'"' => {
                    self.at += 1;
                    return Ok(start..self.text.len());
                }
                b'\\' => {
                    self.at += 1;
                    self.escape()?;
                }
                _ => return Err(self.corrupt("no control character inside a string")),
            }
        }
    }

    fn push(&mut self, s: &str) -> Result<()> {
        self.text
            .try_reserve(s.len())
            .map_err(|_| out_of_memory(s.len()))?;
        self.text.push_str(s);
        Ok(())
    }

    /// The escape after a backslash.
    fn escape(&mut self) -> Result<()> {
        let Some(&b) = self.json.get(self.at) else {
            return Err(self.corrupt("an escape"));
        };
        self.at += 1;
        let c = match b {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let first = self.hex4()?;
                let code = match first {
                    0xD800..=0xDBFF => {
                        if !self.json[self.at..].starts_with(b"\\u") {
                            return Err(self.invalid(String::from("a lone surrogate escape")));
                        }
                        self.at += 2;
                        let second = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&second) {
                            return Err(self.invalid(String::from("a lone surrogate escape")));
                        }
                        0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
                    }
                    0xDC00..=0xDFFF => {
                        return Err(self.invalid(String::from("a lone surrogate escape")));
                    }
                    _ => first,
                };
                char::from_u32(code).ok_or_else(|| self.corrupt("a valid \\u escape"))?
            }
            _ => return Err(self.corrupt("a valid escape")),
        };
        let mut utf8 = [0u8; 4];
        self.push(c.encode_utf8(&mut utf8))
    }

    fn hex4(&mut self) -> Result<u32> {
        let digits = self
            .json
            .get(self.at..self.at + 4)
            .ok_or_else(|| self.corrupt("four hex digits"))?;
        let mut v = 0u32;
        for &d in digits {
            let x = (d as char)
                .to_digit(16)
                .ok_or_else(|| self.corrupt("four hex digits"))?;
            v = v * 16 + x;
        }
        self.at += 4;
        Ok(v)
    }

    /// A JSON number that is a non-negative integer fitting `usize`, or why it is not.
    fn integer(&mut self) -> core::result::Result<usize, &'static str> {
        self.peek();
        let digits = self.json[self.at..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let after = self.json.get(self.at + digits).copied();
        if digits == 0 || matches!(after, Some(b'.' | b'e' | b'E')) {
            return Err("is not a non-negative integer");
        }
        if digits > 1 && self.json[self.at] == b'0' {
            return Err("has leading zeros");
        }
        let mut v = 0usize;
        for &d in &self.json[self.at..self.at + digits] {
            v = v
                .checked_mul(10)
                .and_then(|v| v.checked_add(usize::from(d - b'0')))
                .ok_or("is too large")?;
        }
        self.at += digits;
        Ok(v)
    }

    /// Any JSON value, checked and skipped (`depth`: the arrays and objects it is inside).
    fn skip_value(&mut self, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(self.invalid(format!("values nest deeper than {MAX_DEPTH} levels")));
        }
        match self.peek() {
            Some(b'"') => {
                let range = self.string()?;
                self.text.truncate(range.start);
            }
            Some(b'{') => {
                self.at += 1;
                if self.peek() == Some(b'}') {
                    self.at += 1;
                    return Ok(());
                }
                loop {
                    let range = self.string()?;
                    self.text.truncate(range.start);
                    self.eat(b':', "`:`")?;
                    self.skip_value(depth + 1)?;
                    if !self.more(b'}', "`,` or `}`")? {
                        return Ok(());
                    }
                }
            }
            Some(b'[') => {
                self.at += 1;
                if self.peek() == Some(b']') {
                    self.at += 1;
                    return Ok(());
                }
                loop {
                    self.skip_value(depth + 1)?;
                    if !self.more(b']', "`,` or `]`")? {
                        return Ok(());
                    }
                }
            }
            Some(b't') => self.literal(b"true")?,
            Some(b'f') => self.literal(b"false")?,
            Some(b'n') => self.literal(b"null")?,
            Some(b'-' | b'0'..=b'9') => self.number()?,
            _ => return Err(self.corrupt("a JSON value")),
        }
        Ok(())
    }

    /// A JSON number, checked against the grammar and skipped.
    fn number(&mut self) -> Result<()> {
        let digits = |p: &mut Self| {
            let n = p.json[p.at..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            p.at += n;
            n
        };
        if self.json[self.at] == b'-' {
            self.at += 1;
        }
        let first = self.json.get(self.at).copied();
        let n = digits(self);
        if n == 0 || (n > 1 && first == Some(b'0')) {
            return Err(self.corrupt("a number"));
        }
        if self.json.get(self.at) == Some(&b'.') {
            self.at += 1;
            if digits(self) == 0 {
                return Err(self.corrupt("digits after `.`"));
            }
        }
        if matches!(self.json.get(self.at), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.json.get(self.at), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if digits(self) == 0 {
                return Err(self.corrupt("an exponent"));
            }
        }
        Ok(())
    }

    /// The whole header: one object, then nothing but whitespace.
    fn header(mut self) -> Result<Header> {
        let mut dims = Vec::new();
        let mut tensors = Vec::new();
        let mut metadata = Vec::new();
        let mut seen_metadata = false;
        self.eat(b'{', "`{`")?;
        if self.peek() == Some(b'}') {
            self.at += 1;
        } else {
            loop {
                let name = self.string()?;
                self.eat(b':', "`:`")?;
                if &self.text[name.clone()] == "__metadata__" {
                    if seen_metadata {
                        return Err(
                            self.invalid(String::from("the key `__metadata__` appears twice"))
                        );
                    }
                    seen_metadata = true;
                    self.text.truncate(name.start);
                    self.metadata(&mut metadata)?;
                } else {
                    reserve(&mut tensors, 1)?;
                    let info = self.tensor(name, &mut dims)?;
                    tensors.push(info);
                }
                if !self.more(b'}', "`,` or `}`")? {
                    break;
                }
            }
        }
        if self.peek().is_some() {
            return Err(self.corrupt("nothing after the header's object"));
        }
        Ok(Header {
            text: self.text,
            dims,
            tensors,
            metadata,
            data_len: 0,
        })
    }

    /// `__metadata__`'s value: `null`, or an object whose values are strings.
    fn metadata(&mut self, metadata: &mut Vec<MetaEntry>) -> Result<()> {
        match self.peek() {
            Some(b'n') => return self.literal(b"null"),
            Some(b'{') => self.at += 1,
            _ => return Err(self.invalid(String::from("`__metadata__` is not an object"))),
        }
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(());
        }
        loop {
            let key = self.string()?;
            self.eat(b':', "`:`")?;
            if self.peek() != Some(b'"') {
                let key = &self.text[key];
                return Err(self.invalid(format!(
                    "the value of `__metadata__` key `{key}` is not a string"
                )));
            }
            let value = self.string()?;
            reserve(metadata, 1)?;
            metadata.push(MetaEntry { key, value });
            if !self.more(b'}', "`,` or `}`")? {
                return Ok(());
            }
        }
    }

    /// A tensor's entry (its name already read): `dtype`, `shape` and `data_offsets`.
    fn tensor(&mut self, name: Range<usize>, dims: &mut Vec<usize>) -> Result<TensorInfo> {
        let shown = |p: &Self| String::from(&p.text[name.clone()]);
        if self.peek() != Some(b'{') {
            return Err(self.invalid(format!("tensor `{}` is not an object", shown(self))));
        }
        self.at += 1;
        let (mut dtype, mut shape, mut offsets) = (None, None, None);
        if self.peek() == Some(b'}') {
            self.at += 1;
        } else {
            loop {
                let field = self.string()?;
                self.eat(b':', "`:`")?;
                let (seen, what) = match &self.text[field.clone()] {
                    "dtype" => (dtype.is_some(), "dtype"),
                    "shape" => (shape.is_some(), "shape"),
                    "data_offsets" => (offsets.is_some(), "data_offsets"),
                    _ => (false, ""),
                };
                self.text.truncate(field.start);
                if seen {
                    return Err(self.invalid(format!(
                        "the key `{what}` appears twice in tensor `{}`",
                        shown(self)
                    )));
                }
                match what {
                    "dtype" => {
                        let value = self.string()?;
                        let found = DTYPES
                            .iter()
                            .find(|d| d.0 == &self.text[value.clone()])
                            .map(|d| d.1);
                        let Some(found) = found else {
                            return Err(self.invalid(format!(
                                "tensor `{}` has the unknown dtype `{}`",
                                shown(self),
                                &self.text[value]
                            )));
                        };
                        self.text.truncate(value.start);
                        dtype = Some(found);
                    }
                    "shape" => {
                        let start = dims.len();
                        self.eat(b'[', "`[`")?;
                        if self.peek() == Some(b']') {
                            self.at += 1;
                        } else {
                            loop {
                                let d = self.integer().map_err(|why| {
                                    self.invalid(format!(
                                        "a dimension of tensor `{}` {why}",
                                        shown(self)
                                    ))
                                })?;
                                reserve(dims, 1)?;
                                dims.push(d);
                                if !self.more(b']', "`,` or `]`")? {
                                    break;
                                }
                            }
                        }
                        shape = Some(start..dims.len());
                    }
                    "data_offsets" => {
                        let bad = |p: &Self, why: &str| {
                            p.invalid(format!("an offset of tensor `{}` {why}", shown(p)))
                        };
                        self.eat(b'[', "`[`")?;
                        let s = self.integer().map_err(|why| bad(self, why))?;
                        self.eat(b',', "`,`")?;
                        let e = self.integer().map_err(|why| bad(self, why))?;
                        self.eat(b']', "`]` after two offsets")?;
                        offsets = Some((s, e));
                    }
                    _ => self.skip_value(1)?,
                }
                if !self.more(b'}', "`,` or `}`")? {
                    break;
                }
            }
        }
        let missing =
            |p: &Self, field: &str| p.invalid(format!("tensor `{}` has no `{field}`", shown(p)));
        Ok(TensorInfo {
            dtype: dtype.ok_or_else(|| missing(self, "dtype"))?,
            shape: shape.ok_or_else(|| missing(self, "shape"))?,
            data_offsets: offsets.ok_or_else(|| missing(self, "data_offsets"))?,
            name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(json: &str, data: usize) -> Result<Header> {
        parse(json.as_bytes(), (PREFIX + json.len() + data) as u64)
    }

    fn message(r: Result<Header>) -> String {
        match r {
            Err(Error::Format(m)) => m,
            Err(e) => panic!("not a format error: {e}"),
            Ok(_) => panic!("accepted"),
        }
    }

    #[test]
    fn reads_tensors_and_metadata_sorted_with_escapes_and_padding() {
        let json = r#" { "b" : {"dtype":"F32","shape":[2, 1],"data_offsets":[8,16], "extra": [1, {"x": null}, -2.5e3]},
            "__metadata__": {"k\u00e9y": "v\"1\n", "a": "2"},
            "a\ud83d\ude00": {"shape":[],"dtype":"I64","data_offsets":[0,8]}}    "#;
        let h = parsed(json, 16).unwrap();
        let names: Vec<&str> = h.tensors().iter().map(|t| h.name(t)).collect();
        assert_eq!(names, ["a😀", "b"]);
        let b = &h.tensors()[h.tensor_index("b").unwrap()];
        assert_eq!(
            (h.shape(b), b.dtype, b.data_offsets),
            (&[2, 1][..], Dtype::F32, (8, 16))
        );
        assert_eq!(h.meta_len(), 2);
        assert_eq!((h.meta_key(0), h.meta_value(0)), ("a", "2"));
        assert_eq!(h.meta_value(h.meta_index("kéy").unwrap()), "v\"1\n");
        assert_eq!(h.data_len(), 16);
        assert!(parsed("{}", 0).unwrap().tensors().is_empty());
        assert_eq!(
            parsed(r#"{"__metadata__": null}"#, 0).unwrap().meta_len(),
            0
        );
    }

    #[test]
    fn refuses_repeated_keys_at_every_level() {
        for (json, key) in [
            (
                r#"{"__metadata__": {"k": "1", "k": "2"}}"#,
                "`k` appears twice",
            ),
            (
                r#"{"__metadata__": {}, "__metadata__": {}}"#,
                "`__metadata__` appears twice",
            ),
            (
                r#"{"t": {"dtype":"U8","shape":[1],"data_offsets":[0,1]}, "t": {"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#,
                "`t` appears twice",
            ),
            (
                r#"{"t": {"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#,
                "`dtype` appears twice in tensor `t`",
            ),
        ] {
            let m = message(parsed(json, 2));
            assert!(m.contains(key), "{json}: {m}");
        }
    }

    #[test]
    fn refuses_tables_that_do_not_tile_the_data() {
        for (json, data, what) in [
            (
                r#"{"t": {"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#,
                4,
                "needs 8",
            ),
            (
                r#"{"t": {"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                8,
                "invalid offset for tensor `t`",
            ),
            (
                r#"{"t": {"dtype":"F4","shape":[3],"data_offsets":[0,1]}}"#,
                1,
                "not a whole number",
            ),
            (
                r#"{"t": {"dtype":"F32","shape":[4294967296, 4294967296, 16],"data_offsets":[0,4]}}"#,
                4,
                "shape",
            ),
            (
                r#"{"t": {"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
                5,
                "1 bytes after",
            ),
            (
                r#"{"t": {"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
                3,
                "shorter",
            ),
        ] {
            let m = message(parsed(json, data));
            assert!(m.contains(what), "{json}: {m}");
        }
    }

    #[test]
    fn refuses_what_is_not_json_or_not_a_table() {
        for (json, what) in [
            ("", "corrupt at byte 0"),
            ("{", "corrupt"),
            (r#"{"a" 1}"#, "expected `:`"),
            (
                r#"{"t": {"dtype":"F32","shape":[1],"data_offsets":[0,4]}} x"#,
                "nothing after",
            ),
            (
                r#"{"t": {"dtype":"X9","shape":[1],"data_offsets":[0,4]}}"#,
                "unknown dtype `X9`",
            ),
            (
                r#"{"t": {"dtype":"F32","data_offsets":[0,4]}}"#,
                "has no `shape`",
            ),
            (
                r#"{"t": {"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#,
                "not a non-negative",
            ),
            (
                r#"{"t": {"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}"#,
                "not a non-negative",
            ),
            (
                r#"{"t": {"dtype":"F32","shape":[01],"data_offsets":[0,4]}}"#,
                "has leading zeros",
            ),
            (
                r#"{"t": {"dtype":"F32","shape":[99999999999999999999999],"data_offsets":[0,4]}}"#,
                "too large",
            ),
            (
                r#"{"t": {"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}"#,
                "two offsets",
            ),
            (r#"{"__metadata__": {"k": 1}}"#, "`k` is not a string"),
            (r#"{"__metadata__": [1]}"#, "not an object"),
            (r#"{"t": 3}"#, "tensor `t` is not an object"),
            ("{\"a\u{1}\": 1}", "control character"),
            (r#"{"\ud800": 1}"#, "lone surrogate"),
            (r#"{"\q": 1}"#, "valid escape"),
        ] {
            let m = message(parsed(json, 0));
            assert!(m.contains(what), "{json}: {m}");
        }
        let deep = alloc::format!(
            r#"{{"t": {{"x": {}{}}}}}"#,
            "[".repeat(MAX_DEPTH + 1),
            "]".repeat(MAX_DEPTH + 1)
        );
        assert!(message(parsed(&deep, 0)).contains("nest deeper"));
        let bad_utf8 = b"{\"\xff\": 1}";
        let m = message(parse(bad_utf8, (PREFIX + bad_utf8.len()) as u64));
        assert!(m.contains("UTF-8"), "{m}");
    }
}

/// The parser against safetensors' own, on every model file in the repository and on each
/// of them mutated: the same files accepted, with the same tables.
#[cfg(all(test, feature = "std"))]
mod against_safetensors {
    use super::*;
    use alloc::vec;
    use std::path::{Path, PathBuf};

    fn files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                files(&path, out);
            } else if path.extension().is_some_and(|e| e == "safetensors") {
                out.push(path);
            }
        }
    }

    /// Both parsers' reading of `file`: the sorted (name, dtype, shape, offsets) table and
    /// the sorted metadata, or `None` where the parser refuses it.
    type Table = (
        Vec<(String, String, Vec<usize>, (usize, usize))>,
        Vec<(String, String)>,
    );

    fn ours(file: &[u8]) -> Option<Table> {
        let n = json_len(file, file.len() as u64).ok()?;
        let h = parse(&file[PREFIX..PREFIX + n], file.len() as u64).ok()?;
        let tensors = h
            .tensors()
            .iter()
            .map(|t| {
                let dtype = format!("{:?}", t.dtype);
                (
                    String::from(h.name(t)),
                    dtype,
                    h.shape(t).to_vec(),
                    t.data_offsets,
                )
            })
            .collect();
        let meta = (0..h.meta_len())
            .map(|i| (String::from(h.meta_key(i)), String::from(h.meta_value(i))))
            .collect();
        Some((tensors, meta))
    }

    fn theirs(file: &[u8]) -> Option<Table> {
        let (_, m) = safetensors::SafeTensors::read_metadata(file).ok()?;
        let mut tensors: Vec<_> = m
            .tensors()
            .into_iter()
            .map(|(name, t)| {
                (
                    name,
                    format!("{:?}", t.dtype),
                    t.shape.clone(),
                    t.data_offsets,
                )
            })
            .collect();
        tensors.sort();
        let mut meta: Vec<_> = m
            .metadata()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        meta.sort();
        Some((tensors, meta))
    }

    #[test]
    // Reads real files, thousands of parses: too slow under Miri (scripts/miri.sh runs the
    // parser's own unit tests above).
    #[cfg_attr(miri, ignore)]
    fn every_model_file_and_its_mutations_read_as_safetensors_reads_them() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut paths = Vec::new();
        files(&root.join("tests/fixtures"), &mut paths);
        files(&root.join("models"), &mut paths);
        assert!(paths.len() > 20, "{paths:?}");
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let (mut agreed, mut refused) = (0, 0);
        for path in &paths {
            let file = std::fs::read(path).unwrap();
            let n = json_len(&file, file.len() as u64).map_or(0, |n| n);
            let mut cases = vec![file.clone()];
            // Single-byte changes inside the JSON: each either still parses (and both
            // parsers must read the same) or is refused by both.
            for _ in 0..200 {
                let mut m = file.clone();
                if n > 0 {
                    let at = PREFIX + (next() as usize) % n;
                    let alphabet = b" \"{}[],:0123456789-.eE\\u";
                    m[at] = alphabet[next() as usize % alphabet.len()];
                }
                cases.push(m);
            }
            for case in cases {
                let (a, b) = (ours(&case), theirs(&case));
                match (&a, &b) {
                    (Some(_), Some(_)) => {
                        assert_eq!(a, b, "{}", path.display());
                        agreed += 1;
                    }
                    (None, None) => refused += 1,
                    // Only a repeated key (which safetensors resolves to the last) may be
                    // refused here alone.
                    (None, Some(_)) => {
                        let n = json_len(&case, case.len() as u64).unwrap();
                        let e = parse(&case[PREFIX..PREFIX + n], case.len() as u64);
                        let m = match e {
                            Err(Error::Format(m)) => m,
                            _ => unreachable!(),
                        };
                        assert!(m.contains("appears twice"), "{}: {m}", path.display());
                        refused += 1;
                    }
                    (Some(_), None) => {
                        panic!("{}: accepted what safetensors refuses", path.display())
                    }
                }
            }
        }
        assert!(
            agreed > 100 && refused > 100,
            "{agreed} agreed, {refused} refused"
        );
    }
}
