//! The parameter-light blocks: `PermuteRandom`, `ActNorm`, `FixedLinearTransform`
//! (docs/blocks.md §permuterandom, §actnorm, §fixedlineartransform).

use crate::model::packed::array::Array;
use alloc::format;
use alloc::string::ToString;
use alloc::vec::Vec;

use super::allinone::{
    INVERSE_TOLERANCE, Mixing, WORK_PER_VALUE, dense_map_bytes, inverse_error, within,
};
use super::{BlockSpec, Work};
use crate::error::{Error, Result};
use crate::kernels::gemm::PackedWeight;
use crate::kernels::gemm::WeightStorage::F32;
use crate::kernels::math;
use crate::model::packed::image::{Reader, Writer};
use crate::source::budget::{try_collect, try_vec, try_with_capacity};

/// `PermuteRandom`: `y = x[:, perm]`.
pub(crate) struct Permute {
    mixing: Mixing,
}

impl Permute {
    pub(crate) fn load(spec: &BlockSpec<'_, '_>) -> Result<Permute> {
        let name = spec.tensor("perm");
        let index = spec.src.index_tensor(&name, spec.dim)?;
        let mixing = Mixing::from_index(&name, &index)?;
        let inv_name = spec.tensor("perm_inv");
        if spec.src.has_tensor(&inv_name) {
            let stored = spec.src.index_tensor(&inv_name, spec.dim)?;
            mixing.check_inverse_index(&inv_name, &stored)?;
        }
        Ok(Permute { mixing })
    }

    pub(crate) fn to_image(&self, w: &mut Writer) -> Result<()> {
        self.mixing.to_image(w)
    }

    pub(crate) fn from_image(r: &mut Reader<'_>, d: usize) -> Result<Permute> {
        Ok(Permute {
            mixing: Mixing::from_image(r, d)?,
        })
    }

    pub(crate) fn run(&self, work: &mut Work<'_>, state: &mut [f32], rev: bool) {
        let d = state.len() / work.m.max(1);
        self.mixing.apply(work.isa, work.m, d, state, work.tmp, rev);
    }
}

/// `exp` of each log-scale of tensor `name`, each checked to be an invertible scale.
fn invertible_scales(name: &str, log_scale: &[f32]) -> Result<Vec<f32>> {
    let scale = try_collect("ActNorm scales", log_scale.iter().map(|&v| math::exp(v)))?;
    match scale.iter().position(|&s| !super::is_invertible_scale(s)) {
        None => Ok(scale),
        Some(c) => Err(Error::TensorValue {
            name: name.into(),
            problem: format!(
                "channel {c} holds the log-scale {}, whose scale {} (or its reciprocal) is not a finite, normal f32: the block would not be invertible",
                log_scale[c], scale[c]
            ),
        }),
    }
}

/// `ActNorm`, in either parameterisation, kept as FrEIA computes it.
pub(crate) enum ActNorm {
    /// FrEIA head: `y = (x − loc) / exp(log_scale)`, logdet `−Σ log_scale`.
    Head {
        loc: Array<f32>,
        scale: Array<f32>,
        log_scale_sum: f32,
    },
    /// FrEIA 0.2: `y = x·exp(scale) + bias`, logdet `Σ scale`.
    Pypi {
        exp_scale: Array<f32>,
        bias: Array<f32>,
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
                    name: flag.to_string(),
                    problem: "is false: the ActNorm was never data-initialised; run one batch through it in FrEIA before exporting".into(),
                });
            }
            let name = spec.tensor("log_scale");
            let log_scale = src.f32_channels(&name, d)?;
            let loc = src.f32_channels(&spec.tensor("loc"), d)?;
            Ok(ActNorm::Head {
                loc: loc.into(),
                scale: invertible_scales(&name, &log_scale)?.into(),
                log_scale_sum: log_scale.iter().sum(),
            })
        } else {
            let name = spec.tensor("scale");
            let scale = src.f32_channels(&name, d)?;
            let bias = src.f32_channels(&spec.tensor("bias"), d)?;
            Ok(ActNorm::Pypi {
                exp_scale: invertible_scales(&name, &scale)?.into(),
                bias: bias.into(),
                scale_sum: scale.iter().sum(),
            })
        }
    }

    /// Writes the block into a packed image (docs/format.md, "Packed images").
    pub(crate) fn to_image(&self, w: &mut Writer) -> Result<()> {
        let (code, a, b, sum) = match self {
            ActNorm::Head {
                loc,
                scale,
                log_scale_sum,
            } => (0, loc, scale, log_scale_sum),
            ActNorm::Pypi {
                exp_scale,
                bias,
                scale_sum,
            } => (1, exp_scale, bias, scale_sum),
        };
        w.word(code);
        w.f32s(a)?;
        w.f32s(b)?;
        w.f32(*sum);
        Ok(())
    }

    /// Reads the block (`d` wide) from a packed image.
    pub(crate) fn from_image(r: &mut Reader<'_>, d: usize) -> Result<ActNorm> {
        let code = r.word()?;
        let what = "an ActNorm parameter is not its block's width";
        let (a, b, sum) = (r.f32s(d, what)?, r.f32s(d, what)?, r.f32()?);
        match code {
            0 => Ok(ActNorm::Head {
                loc: a,
                scale: b,
                log_scale_sum: sum,
            }),
            1 => Ok(ActNorm::Pypi {
                exp_scale: a,
                bias: b,
                scale_sum: sum,
            }),
            _ => Err(r.invalid("unknown ActNorm parameterisation")),
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

/// How far a stored `logDetM` may be from `log|det M|`, relative to `1 + |log|det M||`
/// (f32 determinants of well-conditioned matrices agree to ~1e-6).
const LOG_DET_TOLERANCE: f64 = 1e-3;

/// `log|det a|` of a `[d, d]` row-major matrix, by LU decomposition with partial pivoting in
/// f64 (−∞ if it is singular).
fn log_abs_det(a: &[f32], d: usize) -> Result<f64> {
    let mut lu = try_with_capacity::<f64>("an LU decomposition", d * d)?;
    lu.extend(a.iter().map(|&v| v as f64));
    let mut sum = 0.0;
    for col in 0..d {
        let pivot = (col..d)
            .max_by(|&i, &j| lu[i * d + col].abs().total_cmp(&lu[j * d + col].abs()))
            .unwrap_or(col);
        if pivot != col {
            for j in 0..d {
                lu.swap(pivot * d + j, col * d + j);
            }
        }
        let p = lu[col * d + col];
        if p == 0.0 {
            return Ok(f64::NEG_INFINITY);
        }
        sum += libm::log(p.abs());
        let (upper, lower) = lu.split_at_mut((col + 1) * d);
        let pivot_row = &upper[col * d..];
        for row in lower.chunks_exact_mut(d) {
            let f = row[col] / p;
            if f != 0.0 {
                row[col..]
                    .iter_mut()
                    .zip(&pivot_row[col..])
                    .for_each(|(r, &u)| *r -= f * u);
            }
        }
    }
    Ok(sum)
}

/// `FixedLinearTransform`: `y = x·Mt + b` with FrEIA's stored `M` (= Mᵀ), inverse `(y − b)·M_inv`.
pub(crate) struct FixedLinear {
    d: usize,
    forward: PackedWeight,
    inverse: PackedWeight,
    bias: Array<f32>,
    log_det: f32,
}

impl FixedLinear {
    /// Writes the block into a packed image (docs/format.md, "Packed images").
    pub(crate) fn to_image(&self, w: &mut Writer) -> Result<()> {
        w.weight(&self.forward)?;
        w.weight(&self.inverse)?;
        w.f32s(&self.bias)?;
        w.f32(self.log_det);
        Ok(())
    }

    /// Reads the block (`d` wide) from a packed image.
    pub(crate) fn from_image(r: &mut Reader<'_>, d: usize) -> Result<FixedLinear> {
        Ok(FixedLinear {
            d,
            forward: r.weight(d, d)?,
            inverse: r.weight(d, d)?,
            bias: r.f32s(d, "a bias is not its block's width")?,
            log_det: r.f32()?,
        })
    }

    pub(crate) fn load(spec: &BlockSpec<'_, '_>) -> Result<FixedLinear> {
        let src = spec.src;
        let d = spec.dim;
        let m_name = spec.tensor("M");
        let m = src.f32_tensor(&m_name, &[d, d])?;
        src.budget.charge::<u8>(
            || format!("the matrices of block {}", spec.index),
            dense_map_bytes(d),
        )?;
        let inv_name = spec.tensor("M_inv");
        let m_inv = src.f32_tensor(&inv_name, &[d, d])?;
        let det_name = spec.tensor("logDetM");
        let log_det = src.f32_scalar(&det_name)?;
        let error = inverse_error(&m_inv, &m, d, &src.budget)?;
        if !within(error, INVERSE_TOLERANCE) {
            return Err(Error::TensorValue {
                name: inv_name.to_string(),
                problem: format!(
                    "is not the inverse of `{m_name}`: max |M_inv·(M·p) − p| = {error:e} over the probes p, above {INVERSE_TOLERANCE:e}"
                ),
            });
        }
        // The determinant costs `(d−1)·d·(d+1)/3` multiply-adds (LU) for the `2·d²` values of
        // `M` and `M_inv`: checked while that is within WORK_PER_VALUE per value (d ≤ 384),
        // so loading stays linear in the file (docs/format.md §8, "Time"). Above, `logDetM` is
        // taken as stored: it only shifts the log-densities, and the probes above have
        // already shown `M` invertible.
        let d128 = d as u128;
        let lu_work = d128.saturating_sub(1) * d128 * (d128 + 1) / 3;
        if lu_work <= WORK_PER_VALUE as u128 * 2 * d128 * d128 {
            src.budget.count_work(lu_work as usize);
            let want = log_abs_det(&m, d)?;
            if !within(
                (log_det as f64 - want).abs(),
                LOG_DET_TOLERANCE * (1.0 + want.abs()),
            ) {
                return Err(Error::TensorValue {
                    name: det_name.to_string(),
                    problem: format!(
                        "is {log_det}, but log|det {m_name}| is {want}: they must agree to {LOG_DET_TOLERANCE:e} (relative)"
                    ),
                });
            }
        }
        let b_name = spec.tensor("b");
        let bias = match src.shape(&b_name) {
            None => try_vec("a bias", d, 0.0)?,
            Some([]) | Some([1]) => try_vec("a bias", d, src.f32_scalar(&b_name)?)?,
            Some(_) => src.f32_channels(&b_name, d)?,
        };
        // `x.mm(A)` is `F.linear(x, Aᵀ)`: pack the transposes (A read with strides (1, d)) as
        // Linear weights.
        let pack_transposed = |a: &[f32]| PackedWeight::pack_strided(a, d, d, (1, d), F32);
        Ok(FixedLinear {
            d,
            forward: pack_transposed(&m)?,
            inverse: pack_transposed(&m_inv)?,
            bias: bias.into(),
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
