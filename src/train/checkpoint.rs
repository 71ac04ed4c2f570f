//! Checkpoints: an innfer model file (loadable as is: the engine ignores tensors it does not
//! name) with the optimiser state as extra tensors `innfer_train.*` and the epoch in the
//! metadata, so that `--resume` continues exactly where the run stopped.

use std::collections::BTreeMap;
use std::path::Path;

use safetensors::SafeTensors;
use safetensors::tensor::{Dtype, TensorView};

use crate::prelude::*;

use super::chain::Chain;
use super::export::{self, ExportOptions};
use crate::error::{Error, Result};

/// The state a resumed run needs.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// Epochs completed.
    pub epoch: usize,
    pub params: Vec<f32>,
    pub adam_m: Vec<f64>,
    pub adam_v: Vec<f64>,
    pub adam_step: u64,
    pub best_nll: f64,
    pub best_epoch: usize,
    pub best_params: Option<Vec<f32>>,
}

fn io(path: &Path, e: impl ToString) -> Error {
    Error::Io {
        path: path.display().to_string(),
        problem: e.to_string(),
    }
}

/// Writes the checkpoint (atomically: to a temporary file, then renamed).
pub fn save(
    path: &Path,
    chain: &Chain<f32>,
    options: &ExportOptions,
    ck: &Checkpoint,
) -> Result<()> {
    let model = export::to_safetensors(chain, options)?;
    let parsed = SafeTensors::deserialize(&model).map_err(|e| Error::Format(e.to_string()))?;
    let (_, header) =
        SafeTensors::read_metadata(&model).map_err(|e| Error::Format(e.to_string()))?;
    let mut meta: BTreeMap<String, String> = header
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    meta.insert("innfer_train.epoch".into(), ck.epoch.to_string());
    meta.insert("innfer_train.adam_step".into(), ck.adam_step.to_string());
    meta.insert("innfer_train.best_nll".into(), format!("{:?}", ck.best_nll));
    meta.insert("innfer_train.best_epoch".into(), ck.best_epoch.to_string());
    let f32_bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let f64_bytes = |v: &[f64]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let mut extra: Vec<(String, Dtype, Vec<u8>)> = vec![
        (
            "innfer_train.params".into(),
            Dtype::F32,
            f32_bytes(&ck.params),
        ),
        (
            "innfer_train.adam_m".into(),
            Dtype::F64,
            f64_bytes(&ck.adam_m),
        ),
        (
            "innfer_train.adam_v".into(),
            Dtype::F64,
            f64_bytes(&ck.adam_v),
        ),
    ];
    if let Some(b) = &ck.best_params {
        extra.push(("innfer_train.best_params".into(), Dtype::F32, f32_bytes(b)));
    }
    let mut views: Vec<(String, TensorView<'_>)> = parsed.tensors().into_iter().collect();
    for (name, dtype, bytes) in &extra {
        let n = bytes.len() * 8 / dtype.bitsize();
        views.push((
            name.clone(),
            TensorView::new(*dtype, vec![n], bytes).map_err(|e| Error::Format(e.to_string()))?,
        ));
    }
    let bytes = export::serialize_sorted(views, meta)?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(|e| io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io(path, e))
}

/// Reads a checkpoint for a chain of `n_params` parameters.
pub fn load(path: &Path, n_params: usize) -> Result<Checkpoint> {
    let bytes = std::fs::read(path).map_err(|e| io(path, e))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| Error::Format(e.to_string()))?;
    let (_, header) =
        SafeTensors::read_metadata(&bytes).map_err(|e| Error::Format(e.to_string()))?;
    let meta = header.metadata().clone().unwrap_or_default();
    let get = |k: &str| -> Result<String> {
        meta.get(k).cloned().ok_or_else(|| Error::Metadata {
            key: k.into(),
            problem: "is missing: not a training checkpoint".into(),
        })
    };
    let num = |k: &str| -> Result<f64> {
        get(k)?.parse::<f64>().map_err(|e| Error::Metadata {
            key: k.into(),
            problem: e.to_string(),
        })
    };
    let floats32 = |name: &str| -> Result<Option<Vec<f32>>> {
        match st.tensor(name) {
            Err(_) => Ok(None),
            Ok(t) => Ok(Some(
                t.data()
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            )),
        }
    };
    let floats64 = |name: &str| -> Result<Vec<f64>> {
        let t = st
            .tensor(name)
            .map_err(|_| Error::MissingTensor(name.into()))?;
        Ok(t.data()
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect())
    };
    let params = floats32("innfer_train.params")?
        .ok_or_else(|| Error::MissingTensor("innfer_train.params".into()))?;
    if params.len() != n_params {
        return Err(Error::Dims(format!(
            "the checkpoint holds {} parameters, the configured chain has {n_params}",
            params.len()
        )));
    }
    Ok(Checkpoint {
        epoch: num("innfer_train.epoch")? as usize,
        params,
        adam_m: floats64("innfer_train.adam_m")?,
        adam_v: floats64("innfer_train.adam_v")?,
        adam_step: num("innfer_train.adam_step")? as u64,
        best_nll: num("innfer_train.best_nll")?,
        best_epoch: num("innfer_train.best_epoch")? as usize,
        best_params: floats32("innfer_train.best_params")?,
    })
}
