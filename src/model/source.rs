//! Reading a safetensors file: its metadata keys and its tensors, converted to what the blocks need.
//!
//! Every tensor is copied out of the file (the bytes may be unaligned, or big-endian hosts may
//! read them), converted to f32, shape-checked and checked for NaN/Inf, with errors that name the
//! tensor.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::error::{Error, Result};

/// A parsed model file: the `__metadata__` map and the tensor table, borrowing the bytes.
pub(crate) struct Source<'a> {
    tensors: SafeTensors<'a>,
    meta: BTreeMap<String, String>,
    /// How the subnets' Linear weights are to be stored (a load option, not from the file).
    pub(crate) weight_storage: super::WeightStorage,
}

/// A safetensors parse failure as a sentence a user can act on.
fn format_error(e: safetensors::SafeTensorError) -> Error {
    use safetensors::SafeTensorError as E;
    let what = match &e {
        E::HeaderTooSmall => "the file is shorter than the 8-byte header length".into(),
        E::HeaderTooLarge => {
            "the header length is implausibly large (is this a safetensors file?)".into()
        }
        E::InvalidHeaderLength => {
            "the header length points past the end of the file (truncated?)".into()
        }
        E::InvalidHeader(_) | E::InvalidHeaderDeserialization(_) => {
            "the JSON header is corrupt".into()
        }
        E::MetadataIncompleteBuffer => {
            "the data section is shorter than the header says (truncated?)".into()
        }
        E::InvalidOffset(name) => format!("tensor `{name}` has invalid data offsets"),
        E::TensorInvalidInfo => "a tensor's shape and byte length disagree".into(),
        other => format!("{other:?}"),
    };
    Error::Format(what)
}

fn shape_string(shape: &[usize]) -> String {
    let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

impl<'a> Source<'a> {
    pub(crate) fn parse(bytes: &'a [u8]) -> Result<Self> {
        let (_, metadata) = SafeTensors::read_metadata(bytes).map_err(format_error)?;
        let tensors = SafeTensors::deserialize(bytes).map_err(format_error)?;
        let mut meta = BTreeMap::new();
        if let Some(map) = metadata.metadata() {
            for (k, v) in map.iter() {
                meta.insert(k.clone(), v.clone());
            }
        }
        Ok(Source {
            tensors,
            meta,
            weight_storage: super::WeightStorage::F32,
        })
    }

    /// The raw value of a metadata key.
    pub(crate) fn meta(&self, key: &str) -> Option<&str> {
        self.meta.get(key).map(|s| s.as_str())
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
        let mut out = Vec::with_capacity(len);
        for item in v.split(',') {
            match item.trim().parse::<f32>() {
                Ok(x) if x.is_finite() => out.push(x),
                _ => {
                    return Err(self.bad_meta(key, format!("`{}` is not a finite number", item)));
                }
            }
        }
        if out.len() != len {
            return Err(self.bad_meta(key, format!("has {} values, expected {len}", out.len())));
        }
        Ok(Some(out))
    }

    pub(crate) fn has_tensor(&self, name: &str) -> bool {
        self.tensors.tensor(name).is_ok()
    }

    fn view(&self, name: &str) -> Result<TensorView<'a>> {
        self.tensors
            .tensor(name)
            .map_err(|_| Error::MissingTensor(name.to_string()))
    }

    /// The shape of a tensor, if present.
    pub(crate) fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.tensors.tensor(name).ok().map(|v| v.shape().to_vec())
    }

    /// A real tensor as f32, of exactly `shape` (all entries finite).
    pub(crate) fn f32_tensor(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let view = self.view(name)?;
        if view.shape() != shape {
            return Err(Error::TensorShape {
                name: name.to_string(),
                expected: shape_string(shape),
                found: shape_string(view.shape()),
            });
        }
        let values = to_f32(name, &view)?;
        if let Some(index) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                name: name.to_string(),
                index,
            });
        }
        Ok(values)
    }

    /// A per-channel tensor: shape `[1, len]` (FrEIA) or `[len]`.
    pub(crate) fn f32_channels(&self, name: &str, len: usize) -> Result<Vec<f32>> {
        match self.shape(name) {
            Some(s) if s.as_slice() == [len] => self.f32_tensor(name, &[len]),
            _ => self.f32_tensor(name, &[1, len]),
        }
    }

    /// A scalar: shape `[]` or `[1]`.
    pub(crate) fn f32_scalar(&self, name: &str) -> Result<f32> {
        match self.shape(name) {
            Some(s) if s.is_empty() => Ok(self.f32_tensor(name, &[])?[0]),
            _ => Ok(self.f32_tensor(name, &[1])?[0]),
        }
    }

    /// An integer index tensor of shape `[len]` (I64 or I32).
    pub(crate) fn index_tensor(&self, name: &str, len: usize) -> Result<Vec<i64>> {
        let view = self.view(name)?;
        if view.shape() != [len] {
            return Err(Error::TensorShape {
                name: name.to_string(),
                expected: shape_string(&[len]),
                found: shape_string(view.shape()),
            });
        }
        let data = view.data();
        match view.dtype() {
            Dtype::I64 => Ok(data
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect()),
            Dtype::I32 => Ok(data
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
                .collect()),
            d => Err(Error::TensorDtype {
                name: name.to_string(),
                found: format!("{d:?}"),
            }),
        }
    }

    /// A boolean flag tensor (BOOL or U8, any shape with one element).
    pub(crate) fn flag_tensor(&self, name: &str) -> Result<bool> {
        let view = self.view(name)?;
        match view.dtype() {
            Dtype::BOOL | Dtype::U8 if view.data().len() == 1 => Ok(view.data()[0] != 0),
            d => Err(Error::TensorDtype {
                name: name.to_string(),
                found: format!("{d:?} of {} bytes", view.data().len()),
            }),
        }
    }
}

fn to_f32(name: &str, view: &TensorView<'_>) -> Result<Vec<f32>> {
    let data = view.data();
    let out = match view.dtype() {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F64 => data
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect(),
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
            .collect(),
        Dtype::BF16 => data
            .chunks_exact(2)
            .map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16))
            .collect(),
        d => {
            return Err(Error::TensorDtype {
                name: name.to_string(),
                found: format!("{d:?}"),
            });
        }
    };
    Ok(out)
}

/// IEEE half to single, exact (every f16 is representable in f32).
pub(crate) fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let man = (h & 0x3ff) as u32;
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal half: normalise.
            let mut e: i32 = -14;
            let mut m = m;
            while m & 0x400 == 0 {
                m <<= 1;
                e -= 1;
            }
            sign | (((e + 127) as u32) << 23) | ((m & 0x3ff) << 13)
        }
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 112) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::f16_to_f32;

    #[test]
    fn half_conversion_is_exact_on_known_values() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0001), 5.960_464_5e-8);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert!(f16_to_f32(0x7c00).is_infinite());
    }
}
