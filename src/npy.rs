//! `.npy` files for [`Dataset::from_npy`](crate::tasks::Dataset::from_npy) and the CLI's
//! array arguments.
//!
//! A small, self-contained reader and writer for NumPy's `.npy` format.
//!
//! Reads format versions 1.0, 2.0 and 3.0 holding little-endian `<f4` or `<f8` (converted to
//! f32) in C order, with 1-D or 2-D shapes. Writes version 1.0 `<f4`.
//! Format reference: numpy/lib/format.py (`NEP 1`).

use crate::prelude::*;

use std::fmt;
use std::io::{self, Write};

/// The six bytes every `.npy` file starts with.
const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Headers (magic through the terminating newline) are padded to a multiple of this.
const HEADER_ALIGN: usize = 64;
/// Most axes an array may have: a spectral cube's summaries are (height, width, quantile, x).
const MAX_DIMENSIONS: usize = 4;

/// An array of f32 of 1 to 4 axes in C (row-major) order.
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Array {
    /// Rows and columns when read as a matrix: `[n]` is one row of `n`.
    pub fn as_matrix(&self) -> (usize, usize) {
        match self.shape.as_slice() {
            [n] => (1, *n),
            // An image of vectors, (height, width, depth) or more axes: rows of the last axis.
            [lead @ .., c] => (lead.iter().product(), *c),
            [] => (0, 0),
        }
    }
}

/// Why bytes are not an `.npy` file this reader accepts.
#[derive(Clone, Debug, PartialEq)]
pub enum NpyError {
    /// The file does not start with `\x93NUMPY`.
    BadMagic,
    /// The file ends before the header or the data does.
    Truncated { needed: usize, found: usize },
    /// A format version other than 1.0, 2.0, 3.0.
    Version(u8, u8),
    /// The header dictionary cannot be parsed or lacks a key.
    Header(String),
    /// A dtype other than `<f4` / `<f8`.
    Dtype(String),
    /// `fortran_order: True`.
    FortranOrder,
    /// A shape that is not 1-D or 2-D (or whose size overflows).
    Shape(String),
}

impl fmt::Display for NpyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NpyError::BadMagic => write!(f, "not an .npy file (bad magic bytes)"),
            NpyError::Truncated { needed, found } => write!(
                f,
                "truncated .npy file: {found} bytes, the header and shape need {needed}"
            ),
            NpyError::Version(major, minor) => {
                write!(
                    f,
                    ".npy format version {major}.{minor} is not supported (1.0, 2.0, 3.0 are)"
                )
            }
            NpyError::Header(m) => write!(f, "malformed .npy header: {m}"),
            NpyError::Dtype(d) => write!(
                f,
                "dtype `{d}` is not supported (use little-endian float32 `<f4` or float64 `<f8`)"
            ),
            NpyError::FortranOrder => write!(
                f,
                "the array is in Fortran order (fortran_order: True); save it in C order, \
                 e.g. with numpy.ascontiguousarray"
            ),
            NpyError::Shape(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for NpyError {}

/// Element types the reader accepts.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Dtype {
    F4,
    F8,
}

impl Dtype {
    fn size(self) -> usize {
        match self {
            Dtype::F4 => 4,
            Dtype::F8 => 8,
        }
    }
}

/// Parses the bytes of an `.npy` file.
pub fn parse(bytes: &[u8]) -> Result<Array, NpyError> {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(NpyError::BadMagic);
    }
    let truncated = |needed: usize| NpyError::Truncated {
        needed,
        found: bytes.len(),
    };
    if bytes.len() < 8 {
        return Err(truncated(8));
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (len_bytes, header_start) = match (major, minor) {
        (1, 0) => (2, 10),
        (2, 0) | (3, 0) => (4, 12),
        _ => return Err(NpyError::Version(major, minor)),
    };
    if bytes.len() < header_start {
        return Err(truncated(header_start));
    }
    let header_len = if len_bytes == 2 {
        u16::from_le_bytes([bytes[8], bytes[9]]) as usize
    } else {
        u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize
    };
    let data_start = header_start
        .checked_add(header_len)
        .ok_or_else(|| NpyError::Header("header length overflows".into()))?;
    if bytes.len() < data_start {
        return Err(truncated(data_start));
    }
    let raw = &bytes[header_start..data_start];
    // Versions 1 and 2 are latin-1, 3 is UTF-8; the keys and values we read are ASCII either way.
    let header: String = if major == 3 {
        String::from_utf8(raw.to_vec())
            .map_err(|_| NpyError::Header("version 3 header is not UTF-8".into()))?
    } else {
        raw.iter().map(|&b| b as char).collect()
    };
    let (dtype, shape) = parse_header(&header)?;

    let count = shape
        .iter()
        .try_fold(1usize, |acc, &n| acc.checked_mul(n))
        .ok_or_else(|| NpyError::Shape(format!("shape {shape:?} is too large")))?;
    let data_len = count
        .checked_mul(dtype.size())
        .ok_or_else(|| NpyError::Shape(format!("shape {shape:?} is too large")))?;
    let needed = data_start
        .checked_add(data_len)
        .ok_or_else(|| NpyError::Shape(format!("shape {shape:?} is too large")))?;
    if bytes.len() < needed {
        return Err(truncated(needed));
    }
    let body = &bytes[data_start..needed];
    let data = match dtype {
        Dtype::F4 => body
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F8 => body
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect(),
    };
    Ok(Array { shape, data })
}

/// A value in the header dictionary.
#[derive(Debug, PartialEq)]
enum Value {
    Str(String),
    Bool(bool),
    Tuple(Vec<usize>),
    /// Anything else (lists of structured dtypes, None, …): parsed past, not understood.
    Other(String),
}

/// Reads `descr`, `fortran_order` and `shape` out of the header's Python dict literal.
fn parse_header(header: &str) -> Result<(Dtype, Vec<usize>), NpyError> {
    let mut p = Parser {
        s: header.as_bytes(),
        i: 0,
    };
    let entries = p.dict()?;
    let get = |key: &str| {
        entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
            .ok_or_else(|| NpyError::Header(format!("key '{key}' is missing")))
    };
    let dtype = match get("descr")? {
        Value::Str(d) => match d.as_str() {
            "<f4" => Dtype::F4,
            "<f8" => Dtype::F8,
            _ => return Err(NpyError::Dtype(d.clone())),
        },
        Value::Other(d) => return Err(NpyError::Dtype(d.clone())),
        v => return Err(NpyError::Header(format!("'descr' is {v:?}, not a string"))),
    };
    match get("fortran_order")? {
        Value::Bool(false) => {}
        Value::Bool(true) => return Err(NpyError::FortranOrder),
        v => {
            return Err(NpyError::Header(format!(
                "'fortran_order' is {v:?}, not True or False"
            )));
        }
    }
    let shape = match get("shape")? {
        Value::Tuple(s) => s.clone(),
        v => return Err(NpyError::Header(format!("'shape' is {v:?}, not a tuple"))),
    };
    if shape.is_empty() || shape.len() > MAX_DIMENSIONS {
        return Err(NpyError::Shape(format!(
            "shape {shape:?} has {} dimensions; 1 to {MAX_DIMENSIONS} are supported",
            shape.len()
        )));
    }
    Ok((dtype, shape))
}

/// A tiny recursive-descent parser for the subset of Python literals `.npy` headers use.
struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn err<T>(&self, what: &str) -> Result<T, NpyError> {
        Err(NpyError::Header(format!("{what} at byte {}", self.i)))
    }

    fn skip_ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.i).copied()
    }

    fn expect(&mut self, c: u8) -> Result<(), NpyError> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            self.err(&format!("expected '{}'", c as char))
        }
    }

    fn dict(&mut self) -> Result<Vec<(String, Value)>, NpyError> {
        self.expect(b'{')?;
        let mut entries = Vec::new();
        loop {
            if self.peek() == Some(b'}') {
                self.i += 1;
                break;
            }
            let key = match self.value()? {
                Value::Str(k) => k,
                _ => return self.err("expected a string key"),
            };
            self.expect(b':')?;
            let value = self.value()?;
            entries.push((key, value));
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {}
                _ => return self.err("expected ',' or '}'"),
            }
        }
        // Only padding (spaces and the final newline) may follow.
        self.skip_ws();
        if self.i != self.s.len() {
            return self.err("unexpected text after the dictionary");
        }
        Ok(entries)
    }

    fn value(&mut self) -> Result<Value, NpyError> {
        match self.peek() {
            Some(q @ (b'\'' | b'"')) => {
                self.i += 1;
                let start = self.i;
                while self.i < self.s.len() && self.s[self.i] != q {
                    self.i += 1;
                }
                if self.i == self.s.len() {
                    return self.err("unterminated string");
                }
                let text = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
                self.i += 1;
                Ok(Value::Str(text))
            }
            Some(b'(') => {
                self.i += 1;
                let mut dims = Vec::new();
                loop {
                    match self.peek() {
                        Some(b')') => {
                            self.i += 1;
                            break;
                        }
                        Some(c) if c.is_ascii_digit() => {
                            let start = self.i;
                            while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
                                self.i += 1;
                            }
                            let text = String::from_utf8_lossy(&self.s[start..self.i]);
                            // Python 2 era writers may add an `L` suffix.
                            if self.s.get(self.i) == Some(&b'L') {
                                self.i += 1;
                            }
                            match text.parse::<usize>() {
                                Ok(n) => dims.push(n),
                                Err(_) => return self.err("shape entry out of range"),
                            }
                        }
                        _ => return self.err("expected a non-negative integer in the shape"),
                    }
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b')') => {}
                        _ => return self.err("expected ',' or ')' in the shape"),
                    }
                }
                Ok(Value::Tuple(dims))
            }
            Some(b'[') => {
                // A structured dtype: skip to the matching bracket, keep its text for the message.
                let start = self.i;
                let mut depth = 0usize;
                while self.i < self.s.len() {
                    match self.s[self.i] {
                        b'[' | b'(' => depth += 1,
                        b']' | b')' => {
                            depth -= 1;
                            if depth == 0 {
                                self.i += 1;
                                let text = String::from_utf8_lossy(&self.s[start..self.i]);
                                return Ok(Value::Other(text.into_owned()));
                            }
                        }
                        _ => {}
                    }
                    self.i += 1;
                }
                self.err("unterminated list")
            }
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.i;
                while self.i < self.s.len() && self.s[self.i].is_ascii_alphanumeric() {
                    self.i += 1;
                }
                match &self.s[start..self.i] {
                    b"True" => Ok(Value::Bool(true)),
                    b"False" => Ok(Value::Bool(false)),
                    other => Ok(Value::Other(String::from_utf8_lossy(other).into_owned())),
                }
            }
            _ => self.err("expected a value"),
        }
    }
}

/// The v1.0 header (magic through the newline) for a `<f4` array of `shape`, padded with
/// spaces so that the data starts at a multiple of 64 bytes.
pub fn header_v1_f4(shape: &[usize]) -> Vec<u8> {
    let shape_text = match shape {
        [n] => format!("({n},)"),
        _ => {
            let parts: Vec<String> = shape.iter().map(|n| n.to_string()).collect();
            format!("({})", parts.join(", "))
        }
    };
    let mut dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_text}, }}");
    // magic (6) + version (2) + length (2) + dict + padding + '\n' ≡ 0 (mod 64)
    let unpadded = 10 + dict.len() + 1;
    let padding = (HEADER_ALIGN - unpadded % HEADER_ALIGN) % HEADER_ALIGN;
    dict.extend(std::iter::repeat_n(' ', padding));
    dict.push('\n');
    let mut out = Vec::with_capacity(10 + dict.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    // A 1-D or 2-D shape keeps the dict far below u16::MAX bytes.
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

/// Writes a v1.0 `<f4` `.npy` of `shape` (1-D or 2-D) holding `data` to `w`.
pub fn write_f32<W: Write>(mut w: W, shape: &[usize], data: &[f32]) -> io::Result<()> {
    debug_assert_eq!(shape.iter().product::<usize>(), data.len());
    w.write_all(&header_v1_f4(shape))?;
    let mut buf = Vec::with_capacity(data.len().min(16384) * 4);
    for chunk in data.chunks(16384) {
        buf.clear();
        for v in chunk {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        w.write_all(&buf)?;
    }
    w.flush()
}

/// The bytes of a v1.0 `<f4` `.npy` file.
pub fn to_bytes(shape: &[usize], data: &[f32]) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = write_f32(&mut out, shape, data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An `.npy` file with a hand-written header (padded as numpy pads), for any dtype.
    fn with_header(version: (u8, u8), dict: &str, body: &[u8]) -> Vec<u8> {
        let len_bytes = if version.0 == 1 { 2 } else { 4 };
        let unpadded = 8 + len_bytes + dict.len() + 1;
        let padding = (64 - unpadded % 64) % 64;
        let header = format!("{dict}{}\n", " ".repeat(padding));
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[version.0, version.1]);
        if len_bytes == 2 {
            out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        } else {
            out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        }
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn round_trip_2d_and_1d() {
        let data: Vec<f32> = (0..12).map(|i| i as f32 * 0.5 - 3.0).collect();
        let a = parse(&to_bytes(&[3, 4], &data)).unwrap();
        assert_eq!(a.shape, vec![3, 4]);
        assert_eq!(a.data, data);
        assert_eq!(a.as_matrix(), (3, 4));

        let b = parse(&to_bytes(&[12], &data)).unwrap();
        assert_eq!(b.shape, vec![12]);
        assert_eq!(b.data, data);
        assert_eq!(b.as_matrix(), (1, 12));

        let empty = parse(&to_bytes(&[0, 5], &[])).unwrap();
        assert_eq!(empty.shape, vec![0, 5]);
        assert!(empty.data.is_empty());
    }

    #[test]
    fn round_trip_keeps_special_values() {
        let data = [f32::NAN, f32::INFINITY, -0.0, f32::MIN_POSITIVE, 1e-45];
        let a = parse(&to_bytes(&[5], &data)).unwrap();
        for (x, y) in a.data.iter().zip(&data) {
            assert_eq!(x.to_bits(), y.to_bits());
        }
    }

    #[test]
    fn header_is_padded_to_64_bytes_like_numpy() {
        for shape in [&[1usize][..], &[7, 3], &[123456789, 2], &[0]] {
            let h = header_v1_f4(shape);
            assert_eq!(h.len() % 64, 0, "{shape:?}");
            assert_eq!(h[h.len() - 1], b'\n');
            assert_eq!(&h[..8], b"\x93NUMPY\x01\x00");
            assert_eq!(u16::from_le_bytes([h[8], h[9]]) as usize, h.len() - 10);
        }
        // Exactly what numpy 1.x/2.x writes for np.zeros((2, 3), np.float32).
        let expected = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
        let h = header_v1_f4(&[2, 3]);
        assert!(std::str::from_utf8(&h[10..]).unwrap().starts_with(expected));
        let h1 = header_v1_f4(&[4]);
        assert!(
            std::str::from_utf8(&h1[10..])
                .unwrap()
                .contains("'shape': (4,), }")
        );
    }

    #[test]
    fn reads_f8_as_f32() {
        let vals = [1.5f64, -2.25, 1e-3, 123456.789];
        let body: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        let bytes = with_header(
            (1, 0),
            "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }",
            &body,
        );
        let a = parse(&bytes).unwrap();
        assert_eq!(a.shape, vec![2, 2]);
        let want: Vec<f32> = vals.iter().map(|&v| v as f32).collect();
        assert_eq!(a.data, want);
    }

    #[test]
    fn reads_versions_2_and_3_and_odd_spacing() {
        let body: Vec<u8> = [1.0f32, 2.0, 3.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        for version in [(2, 0), (3, 0)] {
            let bytes = with_header(
                version,
                "{\"shape\":(3,),\"fortran_order\":False,\"descr\":\"<f4\"}",
                &body,
            );
            let a = parse(&bytes).unwrap();
            assert_eq!(a.shape, vec![3]);
            assert_eq!(a.data, vec![1.0, 2.0, 3.0]);
        }
        let bytes = with_header(
            (1, 0),
            "{ 'descr' : '<f4' , 'fortran_order' : False , 'shape' : ( 1 , 3 ) , }",
            &body,
        );
        assert_eq!(parse(&bytes).unwrap().shape, vec![1, 3]);
    }

    #[test]
    fn rejects_bad_magic() {
        assert_eq!(parse(b"PK\x03\x04 not npy"), Err(NpyError::BadMagic));
        assert_eq!(parse(b""), Err(NpyError::BadMagic));
        assert_eq!(parse(b"\x93NUM"), Err(NpyError::BadMagic));
    }

    #[test]
    fn rejects_unknown_version() {
        let mut bytes = to_bytes(&[1], &[1.0]);
        bytes[6] = 4;
        assert_eq!(parse(&bytes), Err(NpyError::Version(4, 0)));
    }

    #[test]
    fn rejects_truncated_data_and_header() {
        let bytes = to_bytes(&[4, 3], &[0.0; 12]);
        let short = &bytes[..bytes.len() - 1];
        match parse(short) {
            Err(NpyError::Truncated { needed, found }) => {
                assert_eq!(needed, bytes.len());
                assert_eq!(found, bytes.len() - 1);
            }
            other => std::panic!("{other:?}"),
        }
        assert!(matches!(
            parse(&bytes[..30]),
            Err(NpyError::Truncated { .. })
        ));
        assert!(matches!(
            parse(&bytes[..9]),
            Err(NpyError::Truncated { .. })
        ));
        let msg = parse(short).unwrap_err().to_string();
        assert!(msg.contains("truncated"), "{msg}");
    }

    #[test]
    fn rejects_other_dtypes() {
        for descr in ["<i4", ">f4", "<f2", "|u1", "<c8"] {
            let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (2,), }}");
            let bytes = with_header((1, 0), &dict, &[0u8; 16]);
            assert_eq!(parse(&bytes), Err(NpyError::Dtype(descr.into())), "{descr}");
            let msg = parse(&bytes).unwrap_err().to_string();
            assert!(msg.contains(descr), "{msg}");
        }
        let structured =
            "{'descr': [('a', '<f4'), ('b', '<i4')], 'fortran_order': False, 'shape': (2,), }";
        let bytes = with_header((1, 0), structured, &[0u8; 16]);
        assert!(matches!(parse(&bytes), Err(NpyError::Dtype(_))));
    }

    #[test]
    fn rejects_fortran_order() {
        let dict = "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }";
        let bytes = with_header((1, 0), dict, &[0u8; 16]);
        assert_eq!(parse(&bytes), Err(NpyError::FortranOrder));
        assert!(parse(&bytes).unwrap_err().to_string().contains("Fortran"));
    }

    #[test]
    fn rejects_0d_and_5d_shapes() {
        for shape in ["()", "(1, 1, 1, 2, 2)"] {
            let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
            let bytes = with_header((1, 0), &dict, &[0u8; 32]);
            assert!(matches!(parse(&bytes), Err(NpyError::Shape(_))), "{shape}");
        }
    }

    #[test]
    fn reads_a_cube_as_rows_of_its_last_axis() {
        let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 4), }";
        let data: Vec<u8> = (0..24).flat_map(|i| (i as f32).to_le_bytes()).collect();
        let a = parse(&with_header((1, 0), dict, &data)).unwrap();
        assert_eq!(a.shape, [2, 3, 4]);
        assert_eq!(a.as_matrix(), (6, 4));
        assert_eq!(a.data[23], 23.0);
    }

    #[test]
    fn rejects_overflowing_shape() {
        let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (18446744073709551615, 3), }";
        let bytes = with_header((1, 0), dict, &[]);
        assert!(matches!(parse(&bytes), Err(NpyError::Shape(_))));
    }

    #[test]
    fn rejects_malformed_headers() {
        for dict in [
            "not a dict",
            "{'descr': '<f4', 'fortran_order': False}",
            "{'descr': '<f4', 'shape': (2,)}",
            "{'fortran_order': False, 'shape': (2,)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} trailing",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}",
            "{'descr': '<f4', 'fortran_order': maybe, 'shape': (2,)}",
            "{'descr': '<f4, 'fortran_order': False, 'shape': (2,)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2,",
        ] {
            let bytes = with_header((1, 0), dict, &[0u8; 8]);
            assert!(matches!(parse(&bytes), Err(NpyError::Header(_))), "{dict}");
        }
    }

    #[test]
    fn ignores_trailing_bytes_after_the_data() {
        let mut bytes = to_bytes(&[2], &[1.0, 2.0]);
        bytes.extend_from_slice(&[0xAB; 3]);
        assert_eq!(parse(&bytes).unwrap().data, vec![1.0, 2.0]);
    }
}
