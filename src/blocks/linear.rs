//! The parameter-light blocks: `PermuteRandom`, `ActNorm`, `FixedLinearTransform`
//! (freia.md §1.10–§1.12).

use alloc::vec;
use alloc::vec::Vec;

use super::allinone::Mixing;
use super::{BlockSpec, Work};
use crate::error::{Error, Result};
use crate::kernels::gemm::PackedWeight;
use crate::kernels::gemm::WeightStorage::F32;
use crate::kernels::math;

/// `PermuteRandom`: `y = x[:, perm]`.
pub(crate) struct Permute {
    mixing: Mixing,
}

impl Permute {
    pub(crate) fn load(spec: &BlockSpec<'_, '_>) -> Result<Permute> {
        let name = spec.tensor("perm");
        let index = spec.src.index_tensor(&name, spec.dim)?;
        Ok(Permute {
            mixing: Mixing::from_index(&name, &index)?,
        })
    }

    pub(crate) fn run(&self, work: &mut Work<'_>, state: &mut [f32], rev: bool) {
        let d = state.len() / work.m.max(1);
        self.mixing.apply(work.isa, work.m, d, state, work.tmp, rev);
    }
}

/// `ActNorm`, in either parameterisation, kept as FrEIA computes it.
pub(crate) enum ActNorm {
    /// FrEIA head: `y = (x − loc) / exp(log_scale)`, logdet `−Σ log_scale`.
    Head {
        loc: Vec<f32>,
        scale: Vec<f32>,
        log_scale_sum: f32,
    },
    /// FrEIA 0.2: `y = x·exp(scale) + bias`, logdet `Σ scale`.
    Pypi {
        exp_scale: Vec<f32>,
        bias: Vec<f32>,
        scale_sum: f32,
    },
}

impl ActNorm {
    pub(crate) fn load(spec: &BlockSpec<'_, '_>) -> Result<ActNorm> {
        let src = spec.src;
        let d = spec.dim;
        if src.has_tensor(&spec.tensor("log_scale")) {
            let flag = spec.tensor("is_initialized");
            if src.has_tensor(&flag) && !src.flag_tensor(&flag)? {
                return Err(Error::TensorValue {
                    name: flag,
                    problem: "is false: the ActNorm was never data-initialised; run one batch through it in FrEIA before exporting".into(),
                });
            }
            let log_scale = src.f32_channels(&spec.tensor("log_scale"), d)?;
            let loc = src.f32_channels(&spec.tensor("loc"), d)?;
            Ok(ActNorm::Head {
                loc,
                scale: log_scale.iter().map(|&v| math::exp(v)).collect(),
                log_scale_sum: log_scale.iter().sum(),
            })
        } else {
            let scale = src.f32_channels(&spec.tensor("scale"), d)?;
            let bias = src.f32_channels(&spec.tensor("bias"), d)?;
            Ok(ActNorm::Pypi {
                exp_scale: scale.iter().map(|&v| math::exp(v)).collect(),
                bias,
                scale_sum: scale.iter().sum(),
            })
        }
    }

    pub(crate) fn parameter_count(&self) -> usize {
        match self {
            ActNorm::Head { loc, .. } => 2 * loc.len(),
            ActNorm::Pypi { bias, .. } => 2 * bias.len(),
        }
    }

    pub(crate) fn run(&self, m: usize, state: &mut [f32], logdet: &mut [f32], rev: bool) {
        let d = state.len() / m.max(1);
        let (jac, rows) = (&mut logdet[..m], state[..m * d].chunks_exact_mut(d));
        match self {
            ActNorm::Head {
                loc,
                scale,
                log_scale_sum,
            } => {
                for row in rows {
                    for ((x, l), s) in row.iter_mut().zip(loc).zip(scale) {
                        *x = if rev { *s * *x + *l } else { (*x - *l) / *s };
                    }
                }
                let j = if rev { *log_scale_sum } else { -*log_scale_sum };
                jac.iter_mut().for_each(|ld| *ld += j);
            }
            ActNorm::Pypi {
                exp_scale,
                bias,
                scale_sum,
            } => {
                for row in rows {
                    for ((x, b), s) in row.iter_mut().zip(bias).zip(exp_scale) {
                        *x = if rev { (*x - *b) / *s } else { *x * *s + *b };
                    }
                }
                let j = if rev { -*scale_sum } else { *scale_sum };
                jac.iter_mut().for_each(|ld| *ld += j);
            }
        }
    }
}

/// `FixedLinearTransform`: `y = x·Mt + b` with FrEIA's stored `M` (= Mᵀ), inverse `(y − b)·M_inv`.
pub(crate) struct FixedLinear {
    d: usize,
    forward: PackedWeight,
    inverse: PackedWeight,
    bias: Vec<f32>,
    log_det: f32,
}

impl FixedLinear {
    pub(crate) fn load(spec: &BlockSpec<'_, '_>) -> Result<FixedLinear> {
        let src = spec.src;
        let d = spec.dim;
        let m = src.f32_tensor(&spec.tensor("M"), &[d, d])?;
        let m_inv = src.f32_tensor(&spec.tensor("M_inv"), &[d, d])?;
        let log_det = src.f32_scalar(&spec.tensor("logDetM"))?;
        let b_name = spec.tensor("b");
        let bias = match src.shape(&b_name).as_deref() {
            None => vec![0.0; d],
            Some([]) | Some([1]) => vec![src.f32_scalar(&b_name)?; d],
            Some(_) => src.f32_channels(&b_name, d)?,
        };
        // `x.mm(A)` is `F.linear(x, Aᵀ)`: pack the transposes (A read with strides (1, d)) as
        // Linear weights.
        let pack_transposed = |a: &[f32]| PackedWeight::pack_strided(a, d, d, (1, d), F32);
        Ok(FixedLinear {
            d,
            forward: pack_transposed(&m)?,
            inverse: pack_transposed(&m_inv)?,
            bias,
            log_det,
        })
    }

    pub(crate) fn parameter_count(&self) -> usize {
        0
    }

    pub(crate) fn run(
        &self,
        work: &mut Work<'_>,
        state: &mut [f32],
        logdet: &mut [f32],
        rev: bool,
    ) {
        let (m, d) = (work.m, self.d);
        let state = &mut state[..m * d];
        let tmp = &mut work.tmp[..m * d];
        if rev {
            for row in state.chunks_exact_mut(d) {
                row.iter_mut().zip(&self.bias).for_each(|(x, b)| *x -= *b);
            }
            super::mix(work.isa, &self.inverse, state, tmp);
            state.copy_from_slice(tmp);
        } else {
            super::mix(work.isa, &self.forward, state, tmp);
            for (row, src) in state.chunks_exact_mut(d).zip(tmp.chunks_exact(d)) {
                for ((x, t), b) in row.iter_mut().zip(src).zip(&self.bias) {
                    *x = *t + *b;
                }
            }
        }
        let j = if rev { -self.log_det } else { self.log_det };
        logdet[..m].iter_mut().for_each(|ld| *ld += j);
    }
}
