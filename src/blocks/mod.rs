//! The math of each FrEIA block: forward, inverse and log|det J|, in FrEIA's order of operations.
//!
//! Every block maps `[m, D]` rows to `[m, D]` rows in place, in the state buffer the session
//! owns, and adds its per-row log-determinant to `logdet`. Scratch comes from [`Work`].

pub(crate) mod allinone;
pub(crate) mod coupling;
pub(crate) mod linear;
pub(crate) mod subnet;

use alloc::string::ToString;

use crate::error::{Error, Result};
use crate::kernels::gemm::{self, Available, PackedWeight, Product, Rows, RowsMut};
use crate::model::packed::image::{Reader, Writer};
use crate::source::Source;
use crate::source::name::{Name, name};

/// What an error of a product would mean inside a block: a bug, for the blocks' shapes were
/// checked when the model was loaded and the session sized its buffers for them.
pub(crate) const CHECKED_AT_LOAD: &str = "block shapes are checked at load";

/// The value of a result the load's checks guarantee ([`CHECKED_AT_LOAD`]).
pub(crate) trait CheckedAtLoad<T> {
    /// The value; a panic naming the error (its Display, not `expect`'s Debug, whose
    /// formatting of every error kind would cost a bare-metal build some 9 KB of flash) if
    /// there is none.
    fn checked(self) -> T;
}

impl<T, E: core::fmt::Display> CheckedAtLoad<T> for core::result::Result<T, E> {
    #[track_caller]
    fn checked(self) -> T {
        match self {
            Ok(value) => value,
            Err(e) => panic!("{CHECKED_AT_LOAD}: {e}"),
        }
    }
}

/// `out = rows · Wᵀ` for a square weight (the dense channel mixings), rows contiguous.
pub(crate) fn mix(isa: Available, w: &PackedWeight, rows: &[f32], out: &mut [f32]) {
    let (d, m) = (w.k(), rows.len() / w.k());
    let a = Rows::new(rows, m, d, d).checked();
    let out = RowsMut::new(out, m, d, d).checked();
    gemm::gemm(isa, Product::new(a, w), out).checked();
}

/// The condition rows of a call: call row `i` reads row `(first + i) / repeat` of `data`
/// (rows of `width`). A forward or inverse pass has a row per call row (`repeat` 1); a
/// sampling call has one per observation, shared by its `repeat` samples, so that each
/// subnet computes its first layer's condition part once per observation
/// (src/blocks/subnet.rs).
#[derive(Clone, Copy, Debug)]
pub(crate) struct CondRows<'s> {
    pub(crate) data: &'s [f32],
    pub(crate) width: usize,
    pub(crate) first: usize,
    pub(crate) repeat: usize,
}

impl<'s> CondRows<'s> {
    /// The condition rows of call rows `start..`, as call rows `0..`.
    #[inline]
    pub(crate) fn skip_rows(self, start: usize) -> CondRows<'s> {
        CondRows {
            first: self.first + start,
            ..self
        }
    }

    /// The rows of `data` that call rows `0..m` read (`m` > 0).
    #[inline]
    pub(crate) fn span(&self, m: usize) -> core::ops::Range<usize> {
        self.first / self.repeat..(self.first + m - 1) / self.repeat + 1
    }
}

/// Scratch for one block call; sizes come from [`Plan`].
pub(crate) struct Work<'s> {
    pub(crate) isa: Available,
    /// Rows in this call.
    pub(crate) m: usize,
    /// Condition rows of the `m` call rows, if the model takes one.
    pub(crate) cond: Option<CondRows<'s>>,
    /// Rows per tile: subnets and coupling updates run `tile` rows at a time, so hidden
    /// activations and coefficients stay in cache (results do not depend on it).
    pub(crate) tile: usize,
    /// Two hidden-activation buffers, `tile × plan.hidden` each.
    pub(crate) hidden: (&'s mut [f32], &'s mut [f32]),
    /// Subnet outputs, `tile × plan.subnet_out`.
    pub(crate) coeffs: &'s mut [f32],
    /// Log-scales gathered contiguously for the vectorised math, `tile × plan.subnet_out`.
    pub(crate) sbuf: &'s mut [f32],
    /// A copy of the state for permutations, `m × D`.
    pub(crate) tmp: &'s mut [f32],
    /// Per-row partial log-determinants, `m`.
    pub(crate) jac: &'s mut [f32],
}

/// The widths the session's scratch must cover, per row.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) hidden: usize,
    pub(crate) subnet_out: usize,
}

impl Plan {
    /// Rows per tile for this model (see [`Work::tile`]): the two hidden buffers of a tile
    /// take about 384 KiB (a fifth of a 2 MiB L2), in multiples of 12 rows (the AVX-512
    /// micro-tile), 24 to 240 rows.
    pub(crate) fn tile_rows(&self) -> usize {
        let rows = (48 * 1024) / self.hidden.max(1);
        (rows / 12 * 12).clamp(24, 240)
    }

    pub(crate) fn cover(&mut self, other: Plan) {
        self.hidden = self.hidden.max(other.hidden);
        self.subnet_out = self.subnet_out.max(other.subnet_out);
    }
}

/// The largest soft clamp a file may set (see [`BlockSpec::clamp`]).
pub(crate) const MAX_CLAMP: f32 = 64.0;

/// Whether `scale` can scale and unscale: it and its reciprocal are finite, normal f32 values
/// (so neither multiplying nor dividing by it gives 0, ∞ or NaN from a finite input alone).
pub(crate) fn is_invertible_scale(scale: f32) -> bool {
    scale > 0.0 && scale.is_normal() && (1.0 / scale).is_normal()
}

/// One block of the chain.
pub(crate) enum Block {
    Coupling(coupling::Coupling),
    AllInOne(allinone::AllInOne),
    Permute(linear::Permute),
    ActNorm(linear::ActNorm),
    FixedLinear(linear::FixedLinear),
}

/// What every block's loader gets.
pub(crate) struct BlockSpec<'a, 'b> {
    pub(crate) src: &'a Source<'b>,
    pub(crate) index: usize,
    pub(crate) dim: usize,
    /// Width of the condition this block receives (0 if none).
    pub(crate) cond_dim: usize,
    pub(crate) freia_head: bool,
}

impl BlockSpec<'_, '_> {
    /// The block's metadata key `name`.
    pub(crate) fn key(&self, name: &str) -> Name {
        name!("innfer.block.{}.{}", self.index, name)
    }

    /// The block's tensor `name`.
    pub(crate) fn tensor(&self, name: &str) -> Name {
        name!("module_list.{}.{}", self.index, name)
    }

    /// The block's soft clamp `clamp` (docs/format.md §4), checked to lie in
    /// (0, [`MAX_CLAMP`]]: a clamped log-scale then lies in (−64, 64), so its exponential and
    /// that exponential's reciprocal are finite, normal f32 values and the block is invertible.
    pub(crate) fn clamp(&self) -> Result<f32> {
        let key = self.key("clamp");
        let clamp = self.src.meta_f32(&key, 2.0)?;
        if !(clamp > 0.0 && clamp <= MAX_CLAMP) {
            return Err(self.src.bad_meta(
                &key,
                alloc::format!(
                    "is {clamp}: a clamp must be above 0 and at most {MAX_CLAMP} (e^{MAX_CLAMP} and its reciprocal must stay finite f32 values)"
                ),
            ));
        }
        Ok(clamp)
    }

    pub(crate) fn require_no_cond(&self, kind: &str) -> Result<()> {
        if self.cond_dim > 0 {
            return Err(self.src.bad_meta(
                &self.key("cond"),
                alloc::format!("{kind} takes no condition"),
            ));
        }
        Ok(())
    }
}

impl Block {
    pub(crate) fn load(spec: &BlockSpec<'_, '_>) -> Result<Block> {
        let type_key = spec.key("type");
        let kind = spec.src.meta_required(&type_key)?;
        Ok(match kind {
            "GLOWCouplingBlock"
            | "RNVPCouplingBlock"
            | "NICECouplingBlock"
            | "GINCouplingBlock"
            | "AffineCouplingOneSided"
            | "ConditionalAffineTransform" => {
                Block::Coupling(coupling::Coupling::load(spec, kind)?)
            }
            "AllInOneBlock" => Block::AllInOne(allinone::AllInOne::load(spec)?),
            "PermuteRandom" => {
                spec.require_no_cond(kind)?;
                Block::Permute(linear::Permute::load(spec)?)
            }
            "ActNorm" => {
                spec.require_no_cond(kind)?;
                Block::ActNorm(linear::ActNorm::load(spec)?)
            }
            "FixedLinearTransform" => {
                spec.require_no_cond(kind)?;
                Block::FixedLinear(linear::FixedLinear::load(spec)?)
            }
            other => {
                return Err(Error::UnknownBlock {
                    block: spec.index,
                    kind: other.to_string(),
                });
            }
        })
    }

    /// Writes the block into a packed image (docs/format.md, "Packed images"): its code, then
    /// its own words.
    pub(crate) fn to_image(&self, w: &mut Writer) -> Result<()> {
        match self {
            Block::Coupling(c) => {
                w.word(0);
                c.to_image(w)
            }
            Block::AllInOne(a) => {
                w.word(1);
                a.to_image(w)
            }
            Block::Permute(p) => {
                w.word(2);
                p.to_image(w)
            }
            Block::ActNorm(a) => {
                w.word(3);
                a.to_image(w)
            }
            Block::FixedLinear(f) => {
                w.word(4);
                f.to_image(w)
            }
        }
    }

    /// Reads a block of a `dim`-wide chain whose condition is `cond_dim` wide from a packed
    /// image.
    pub(crate) fn from_image(r: &mut Reader<'_>, dim: usize, cond_dim: usize) -> Result<Block> {
        Ok(match r.word()? {
            0 => Block::Coupling(coupling::Coupling::from_image(r, dim, cond_dim)?),
            1 => Block::AllInOne(allinone::AllInOne::from_image(r, dim, cond_dim)?),
            2 => Block::Permute(linear::Permute::from_image(r, dim)?),
            3 => Block::ActNorm(linear::ActNorm::from_image(r, dim)?),
            4 => Block::FixedLinear(linear::FixedLinear::from_image(r, dim)?),
            _ => return Err(r.invalid("unknown block type")),
        })
    }

    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Block::Coupling(c) => c.kind_name(),
            Block::AllInOne(_) => "AllInOneBlock",
            Block::Permute(_) => "PermuteRandom",
            Block::ActNorm(_) => "ActNorm",
            Block::FixedLinear(_) => "FixedLinearTransform",
        }
    }

    pub(crate) fn plan(&self) -> Plan {
        match self {
            Block::Coupling(c) => c.plan(),
            Block::AllInOne(a) => a.plan(),
            _ => Plan::default(),
        }
    }

    pub(crate) fn parameter_count(&self) -> usize {
        match self {
            Block::Coupling(c) => c.parameter_count(),
            Block::AllInOne(a) => a.parameter_count(),
            Block::Permute(_) => 0,
            Block::ActNorm(a) => a.parameter_count(),
            Block::FixedLinear(f) => f.parameter_count(),
        }
    }

    /// Bytes of the block's packed subnet weights.
    pub(crate) fn weight_bytes(&self) -> usize {
        match self {
            Block::Coupling(c) => c.subnets().map(|s| s.weight_bytes()).sum(),
            Block::AllInOne(a) => a.subnet.weight_bytes(),
            _ => 0,
        }
    }

    pub(crate) fn takes_condition(&self) -> bool {
        match self {
            Block::Coupling(c) => c.takes_condition(),
            Block::AllInOne(a) => a.takes_condition(),
            _ => false,
        }
    }

    /// Forward (`rev = false`) or inverse pass of `work.m` rows of `state` (`m × D`), adding
    /// each row's log|det J| to `logdet`.
    pub(crate) fn run(
        &self,
        work: &mut Work<'_>,
        state: &mut [f32],
        logdet: &mut [f32],
        rev: bool,
    ) {
        match self {
            Block::Coupling(c) => c.run(work, state, logdet, rev),
            Block::AllInOne(a) => a.run(work, state, logdet, rev),
            Block::Permute(p) => p.run(work, state, rev),
            Block::ActNorm(a) => a.run(work.m, state, logdet, rev),
            Block::FixedLinear(f) => f.run(work, state, logdet, rev),
        }
    }
}
