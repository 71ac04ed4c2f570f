//! Writes a chain as an innfer model file (docs/format.md): the tensors under FrEIA's
//! `state_dict` names (`module_list.{i}.…`, so `load_state_dict` works for the same
//! architecture), the architecture in `__metadata__`, and the x/y standardisation the chain
//! was trained behind.

use std::collections::BTreeMap;

use safetensors::tensor::{Dtype, TensorView};

use crate::prelude::*;

use super::blocks::TensorSource;
use super::chain::Chain;
use super::float::Float;
use crate::error::{Error, Result};
use crate::model::{FORMAT_VERSION, Layout, XTransform, YTransform};

/// Per-dimension `(v − mean)/std`, as f32 (what the engine reads).
#[derive(Clone, Debug, PartialEq)]
pub struct Standardization {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Standardization {
    /// Mean and (population) standard deviation of the rows of `data` (`rows × dim`).
    /// A constant column gets std 1 (it carries no information; avoids dividing by 0).
    pub fn of_rows(data: &[f32], dim: usize) -> Standardization {
        let n = (data.len() / dim.max(1)).max(1) as f64;
        let mut mean = vec![0.0f64; dim];
        for row in data.chunks_exact(dim) {
            mean.iter_mut().zip(row).for_each(|(m, &v)| *m += v as f64);
        }
        mean.iter_mut().for_each(|m| *m /= n);
        let mut var = vec![0.0f64; dim];
        for row in data.chunks_exact(dim) {
            for ((s, &v), m) in var.iter_mut().zip(row).zip(&mean) {
                *s += (v as f64 - m) * (v as f64 - m);
            }
        }
        Standardization {
            mean: mean.iter().map(|&m| m as f32).collect(),
            std: var
                .iter()
                .map(|&v| {
                    let s = (v / n).sqrt() as f32;
                    if s > 1e-12 { s } else { 1.0 }
                })
                .collect(),
        }
    }

    /// The identity.
    pub fn identity(dim: usize) -> Standardization {
        Standardization {
            mean: vec![0.0; dim],
            std: vec![1.0; dim],
        }
    }

    /// Standardises `rows` (`n × dim`) in place.
    pub fn apply(&self, rows: &mut [f32]) {
        let d = self.mean.len();
        for row in rows.chunks_exact_mut(d) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = (*v - m) / s;
            }
        }
    }

    /// Undoes [`Standardization::apply`].
    pub fn undo(&self, rows: &mut [f32]) {
        let d = self.mean.len();
        for row in rows.chunks_exact_mut(d) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = *v * s + m;
            }
        }
    }

    /// Σ log std: log|det| of undoing the standardisation.
    pub fn log_std_sum(&self) -> f64 {
        self.std.iter().map(|&s| (s as f64).ln()).sum()
    }
}

/// What the file says besides the chain.
#[derive(Clone, Debug)]
pub struct ExportOptions {
    pub layout: Layout,
    /// Statistics of the transformed x (u) and y (docs/format.md §3.1).
    pub x_norm: Option<Standardization>,
    pub y_norm: Option<Standardization>,
    /// `innfer.x_transform` and its bounds: empty, or one per x dimension.
    pub x_transform: Vec<XTransform>,
    /// `innfer.y_transform` (written unless `None`).
    pub y_transform: YTransform,
    /// `innfer.x_names` and `innfer.x_units`: empty, or one per x dimension.
    pub x_names: Vec<String>,
    pub x_units: Vec<String>,
    /// `innfer.producer`.
    pub producer: String,
}

/// The metadata of the x transforms (docs/format.md §2): kinds, and each bound list where
/// some dimension has that bound, with empty entries for the dimensions that have not.
fn x_transform_meta(transforms: &[XTransform]) -> Vec<(&'static str, String)> {
    let list = |entry: &dyn Fn(&XTransform) -> Option<String>| {
        let entries: Vec<Option<String>> = transforms.iter().map(entry).collect();
        entries.iter().any(Option::is_some).then(|| {
            entries
                .into_iter()
                .map(Option::unwrap_or_default)
                .collect::<Vec<_>>()
                .join(",")
        })
    };
    let mut meta = vec![(
        "innfer.x_transform",
        list(&|t| Some(t.kind().name().to_string())).unwrap_or_default(),
    )];
    if let Some(lower) = list(&|t| t.lower().map(|v| format!("{v:?}"))) {
        meta.push(("innfer.x_lower", lower));
    }
    if let Some(upper) = list(&|t| t.upper().map(|v| format!("{v:?}"))) {
        meta.push(("innfer.x_upper", upper));
    }
    meta
}

fn join(values: &[f32]) -> String {
    values
        .iter()
        .map(|v| format!("{v:?}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The model file's bytes.
pub fn to_safetensors<F: Float>(chain: &Chain<F>, options: &ExportOptions) -> Result<Vec<u8>> {
    let spec = chain.spec();
    let mut meta: BTreeMap<String, String> = BTreeMap::new();
    let mut put = |k: String, v: String| {
        meta.insert(k, v);
    };
    put("innfer.format".into(), FORMAT_VERSION.to_string());
    put("innfer.freia".into(), "head".into());
    put("innfer.dim".into(), spec.dim.to_string());
    put("innfer.cond_dim".into(), spec.cond_dim.to_string());
    put("innfer.blocks".into(), chain.blocks.len().to_string());
    put("innfer.producer".into(), options.producer.clone());
    match options.layout {
        Layout::None => put("innfer.layout".into(), "none".into()),
        Layout::Cinn { x, y } => {
            if x != spec.dim || y != spec.cond_dim {
                return Err(Error::Dims(format!(
                    "cinn layout x = {x}, y = {y} does not match the chain ({}, {})",
                    spec.dim, spec.cond_dim
                )));
            }
            put("innfer.layout".into(), "cinn".into());
            put("innfer.layout.x".into(), x.to_string());
            put("innfer.layout.y".into(), y.to_string());
        }
        Layout::Inn {
            x,
            pad_x,
            z,
            pad_zy,
            y,
        } => {
            put("innfer.layout".into(), "inn".into());
            for (k, v) in [
                ("x", x),
                ("pad_x", pad_x),
                ("z", z),
                ("pad_zy", pad_zy),
                ("y", y),
            ] {
                put(format!("innfer.layout.{k}"), v.to_string());
            }
        }
    }
    for (which, norm, len) in [
        ("x", &options.x_norm, options.layout.x_dim()),
        ("y", &options.y_norm, options.layout.y_dim()),
    ] {
        if let Some(n) = norm {
            if n.mean.len() != len || n.std.len() != len {
                return Err(Error::Dims(format!(
                    "{which} standardisation has {} entries, the layout's {which} is {len} wide",
                    n.mean.len()
                )));
            }
            put(format!("innfer.{which}_mean"), join(&n.mean));
            put(format!("innfer.{which}_std"), join(&n.std));
        }
    }

    if !options.x_transform.is_empty() {
        let len = options.layout.x_dim();
        if options.x_transform.len() != len {
            return Err(Error::Dims(format!(
                "{} x transforms, the layout's x is {len} wide",
                options.x_transform.len()
            )));
        }
        for (key, value) in x_transform_meta(&options.x_transform) {
            put(key.into(), value);
        }
    }
    for (key, labels) in [
        ("innfer.x_names", &options.x_names),
        ("innfer.x_units", &options.x_units),
    ] {
        if labels.is_empty() {
            continue;
        }
        let len = options.layout.x_dim();
        if labels.len() != len || labels.iter().any(|l| l.contains(',')) {
            return Err(Error::Dims(format!(
                "`{key}`: {} entries, the layout's x is {len} wide (and no entry may hold a comma)",
                labels.len()
            )));
        }
        put(key.into(), labels.join(","));
    }
    if options.y_transform != YTransform::None {
        put(
            "innfer.y_transform".into(),
            options.y_transform.name().into(),
        );
    }

    let params = chain.params();
    let mut tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (i, block) in chain.blocks.iter().enumerate() {
        for (k, v) in &block.meta {
            put(format!("innfer.block.{i}.{k}"), v.clone());
        }
        for t in &block.tensors {
            let (dtype, bytes) = match &t.source {
                TensorSource::Params { offset, len } => (
                    Dtype::F32,
                    params[*offset..*offset + *len]
                        .iter()
                        .flat_map(|v| (v.to_f64() as f32).to_le_bytes())
                        .collect(),
                ),
                TensorSource::Index(idx) => (
                    Dtype::I64,
                    idx.iter().flat_map(|v| v.to_le_bytes()).collect(),
                ),
                TensorSource::Flag(b) => (Dtype::BOOL, vec![u8::from(*b)]),
            };
            tensors.push((
                format!("module_list.{i}.{}", t.name),
                dtype,
                t.shape.clone(),
                bytes,
            ));
        }
    }
    let views = tensors
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            TensorView::new(*dtype, shape.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| Error::Format(format!("tensor `{name}`: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    serialize_sorted(views, meta)
}

/// A safetensors file of `views` and `meta` whose JSON header lists its keys in sorted order
/// (`__metadata__` first, its keys sorted, then the tensors by name), so that one training
/// command gives byte-identical files. `safetensors::serialize` takes the metadata as a
/// `HashMap` and writes it in that map's random order; the header is therefore rewritten
/// from ordered maps, which sort whatever features serde_json is built with. The data
/// offsets are relative to the end of the header, so only the header changes.
pub(crate) fn serialize_sorted<'a>(
    views: Vec<(String, TensorView<'a>)>,
    meta: BTreeMap<String, String>,
) -> Result<Vec<u8>> {
    let format = |e: &dyn core::fmt::Display| Error::Format(e.to_string());
    let bytes = safetensors::serialize(views, Some(meta.clone().into_iter().collect()))
        .map_err(|e| format(&e))?;
    let header_len = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let mut header: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + header_len]).map_err(|e| format(&e))?;
    // Inserted in sorted order: sorted also where serde_json's maps keep insertion order.
    let sorted_meta: serde_json::Map<String, serde_json::Value> = meta
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect();
    header.insert("__metadata__".into(), sorted_meta.into());
    let mut json = serde_json::to_vec(&header).map_err(|e| format(&e))?;
    // As safetensors does: pad the header with spaces so the data stays 8-byte aligned.
    json.resize(json.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + json.len() + bytes.len() - 8 - header_len);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&bytes[8 + header_len..]);
    Ok(out)
}

/// Writes the model file to `path`.
pub fn save<F: Float>(
    chain: &Chain<F>,
    options: &ExportOptions,
    path: impl AsRef<std::path::Path>,
) -> Result<()> {
    let bytes = to_safetensors(chain, options)?;
    let path = path.as_ref();
    std::fs::write(path, bytes).map_err(|e| Error::Io {
        path: path.display().to_string(),
        problem: e.to_string(),
    })
}
