//! FrEIA's `AllInOneBlock` (docs/blocks.md §allinoneblock): an affine coupling on the second half with a
//! `0.1`-scaled subnet, a learned global affine, and a fixed permutation.

use crate::model::packed::array::Array;
use alloc::format;
use alloc::string::ToString;
use alloc::vec::Vec;

use super::CheckedAtLoad;
use super::subnet::Subnet;
use super::{BlockSpec, Plan, Work};
use crate::error::{Error, Result};
use crate::kernels::gemm::{self, Available, PackedWeight, Product, Rows, RowsMut, WeightStorage};
use crate::kernels::math;
use crate::model::packed::image::{Reader, Writer};
use crate::source::Source;
use crate::source::budget::{Budget, try_collect, try_vec, try_with_capacity};

/// A fixed linear map on the D channels: a gather or a dense matrix.
pub(crate) enum Mixing {
    /// `out[i] = in[index[i]]`, with the inverse gather.
    Gather {
        forward: Array<u32>,
        inverse: Array<u32>,
    },
    /// `out = in · Wᵀ` (PyTorch `F.linear(in, W)`), with `W_inv` for the inverse; packed.
    Dense {
        forward: PackedWeight,
        inverse: PackedWeight,
    },
}

impl Mixing {
    /// Builds a gather from an index tensor, checking that it is a permutation.
    pub(crate) fn from_index(name: &str, index: &[i64]) -> Result<Mixing> {
        let d = index.len();
        let mut inverse = try_vec("a permutation's inverse", d, u32::MAX)?;
        for (i, &p) in index.iter().enumerate() {
            if p < 0 || p as usize >= d || inverse[p as usize] != u32::MAX {
                return Err(Error::TensorValue {
                    name: name.into(),
                    problem: format!("is not a permutation of 0..{d} (entry {i} = {p})"),
                });
            }
            inverse[p as usize] = i as u32;
        }
        Ok(Mixing::Gather {
            forward: try_collect("a permutation", index.iter().map(|&p| p as u32))?.into(),
            inverse: inverse.into(),
        })
    }

    /// Checks that the stored index tensor `name` is exactly this gather's inverse.
    pub(crate) fn check_inverse_index(&self, name: &str, stored: &[i64]) -> Result<()> {
        let Mixing::Gather { inverse, .. } = self else {
            return Ok(());
        };
        match inverse
            .iter()
            .zip(stored)
            .position(|(&a, &b)| a as i64 != b)
        {
            None => Ok(()),
            Some(i) => Err(Error::TensorValue {
                name: name.into(),
                problem: format!(
                    "is not the inverse of the permutation it belongs to (entry {i} is {}, must be {})",
                    stored[i], inverse[i]
                ),
            }),
        }
    }

    /// Builds from a `[D, D]` matrix `w` (tensor `name`): a gather if it is a 0/1 permutation
    /// matrix (exact, and D times cheaper), else a dense map. Its inverse is `w_inv` (tensor
    /// `inv_name`) if given, else the transpose, and is checked to be one: exactly for a
    /// permutation, to [`INVERSE_TOLERANCE`] otherwise.
    pub(crate) fn from_matrix(
        name: &str,
        w: &[f32],
        w_inv: Option<(&str, Vec<f32>)>,
        d: usize,
        budget: &Budget,
    ) -> Result<Mixing> {
        let is_permutation = w.iter().all(|&v| v == 0.0 || v == 1.0)
            && (0..d).all(|i| w[i * d..(i + 1) * d].iter().filter(|&&v| v == 1.0).count() == 1)
            && (0..d).all(|j| (0..d).filter(|&i| w[i * d + j] == 1.0).count() == 1);
        if is_permutation {
            if let Some((inv_name, w_inv)) = &w_inv
                && *w_inv != transposed(w, d)?
            {
                return Err(Error::TensorValue {
                    name: (*inv_name).into(),
                    problem: format!(
                        "is not the inverse of the permutation matrix `{name}` (its transpose)"
                    ),
                });
            }
            let rows = (0..d).map(|i| {
                w[i * d..(i + 1) * d]
                    .iter()
                    .position(|&v| v == 1.0)
                    .unwrap_or(0) as i64
            });
            let index = try_collect("a permutation", rows)?;
            return Mixing::from_index(name, &index);
        }
        let (inv_name, w_inv) = match w_inv {
            Some((inv_name, w_inv)) => (inv_name, w_inv),
            // W must be orthogonal: its inverse is Wᵀ, checked below like a stored one.
            None => (name, transposed(w, d)?),
        };
        let error = inverse_error(&w_inv, w, d, budget)?;
        if !within(error, INVERSE_TOLERANCE) {
            return Err(Error::TensorValue {
                name: inv_name.into(),
                problem: if inv_name == name {
                    format!(
                        "is not orthogonal (its inverse is its transpose): max |Wᵀ·(W·p) − p| = {error:e} over the probes p, above {INVERSE_TOLERANCE:e}"
                    )
                } else {
                    format!(
                        "is not the inverse of `{name}`: max |W_inv·(W·p) − p| = {error:e} over the probes p, above {INVERSE_TOLERANCE:e}"
                    )
                },
            });
        }
        Ok(Mixing::Dense {
            forward: PackedWeight::pack(w, d, d, WeightStorage::F32)?,
            inverse: PackedWeight::pack(&w_inv, d, d, WeightStorage::F32)?,
        })
    }

    /// Writes the map into a packed image (docs/format.md, "Packed images").
    pub(crate) fn to_image(&self, w: &mut Writer) -> Result<()> {
        match self {
            Mixing::Gather { forward, inverse } => {
                w.word(0);
                w.u32s(forward)?;
                w.u32s(inverse)
            }
            Mixing::Dense { forward, inverse } => {
                w.word(1);
                w.weight(forward)?;
                w.weight(inverse)
            }
        }
    }

    /// Reads a map on `d` channels from a packed image: a gather is checked to be a
    /// permutation and its inverse (`inverse[forward[i]] = i` for every `i`, all below `d`).
    pub(crate) fn from_image(r: &mut Reader<'_>, d: usize) -> Result<Mixing> {
        let tag = r.word()?;
        Mixing::from_image_tagged(r, tag, d)
    }

    /// [`Mixing::from_image`] with the leading word (`tag`) already read.
    pub(crate) fn from_image_tagged(r: &mut Reader<'_>, tag: u32, d: usize) -> Result<Mixing> {
        match tag {
            0 => {
                let at = r.offset();
                let forward = r.u32s(d, "a permutation is not its block's width")?;
                let inverse = r.u32s(d, "a permutation is not its block's width")?;
                let inverts = forward
                    .iter()
                    .enumerate()
                    .all(|(i, &p)| (p as usize) < d && inverse[p as usize] as usize == i);
                if !inverts {
                    return Err(crate::model::packed::image::invalid(
                        at,
                        "a permutation's inverse is not its inverse",
                    ));
                }
                Ok(Mixing::Gather { forward, inverse })
            }
            1 => Ok(Mixing::Dense {
                forward: r.weight(d, d)?,
                inverse: r.weight(d, d)?,
            }),
            _ => Err(r.invalid("unknown channel mixing")),
        }
    }

    /// Applies the map (or its inverse) to `m` rows of `state` (`m × d`), via `tmp`.
    pub(crate) fn apply(
        &self,
        isa: Available,
        m: usize,
        d: usize,
        state: &mut [f32],
        tmp: &mut [f32],
        inverse: bool,
    ) {
        let state = &mut state[..m * d];
        let tmp = &mut tmp[..m * d];
        match self {
            Mixing::Gather {
                forward,
                inverse: inv,
            } => {
                let index = if inverse { inv } else { forward };
                tmp.copy_from_slice(state);
                for (out, src) in state.chunks_exact_mut(d).zip(tmp.chunks_exact(d)) {
                    for (o, &p) in out.iter_mut().zip(index.iter()) {
                        *o = src[p as usize];
                    }
                }
            }
            Mixing::Dense {
                forward,
                inverse: inv,
            } => {
                super::mix(isa, if inverse { inv } else { forward }, state, tmp);
                state.copy_from_slice(tmp);
            }
        }
    }
}

/// The transpose of a `[d, d]` row-major matrix (memory refused: an error).
pub(crate) fn transposed(w: &[f32], d: usize) -> Result<Vec<f32>> {
    let mut t = try_vec("a [D, D] matrix's transpose", d * d, 0.0)?;
    for i in 0..d {
        for j in 0..d {
            t[j * d + i] = w[i * d + j];
        }
    }
    Ok(t)
}

/// Bytes loading may allocate for one dense `[D, D]` map beyond the tensors it reads (f64
/// working copies, a transpose, the two packed matrices), charged to the budget up front.
pub(crate) fn dense_map_bytes(d: usize) -> usize {
    d.saturating_mul(d).saturating_mul(32)
}

/// How far a stored inverse `A⁻¹` may be from the inverse of its `A`: for each of
/// [`PROBES`] fixed vectors `p` of ±1 entries, every entry of `A⁻¹·(A·p) − p` within this
/// (f32 inverses of the matrices FrEIA makes are within ~1e-6). Probing costs `O(D²)`, as
/// reading the matrices does, where forming `A⁻¹·A` would cost `O(D³)`; a wrong entry `δ` of
/// `A⁻¹·A` shows in every probe as `±δ` plus the other errors of its row.
pub(crate) const INVERSE_TOLERANCE: f64 = 1e-3;

/// Multiply-adds loading may spend per value of the file on a block's checks and products
/// (inverse probes, a determinant, a Householder product), so that loading stays linear in the
/// file however it is made (docs/format.md §8, "Time"). Work beyond it is left to run time (a
/// Householder permutation with many reflections) or not done (a large FixedLinearTransform's
/// determinant check).
pub(crate) const WORK_PER_VALUE: usize = 64;

/// Whether `error` is at most `bound` (a NaN error never is).
pub(crate) fn within(error: f64, bound: f64) -> bool {
    error <= bound
}

/// Number of probe vectors of [`inverse_error`].
const PROBES: usize = 4;

/// `Σ a[i]·b[i]` in f64, eight partial sums at a time (so it vectorises).
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut lanes = [0.0f64; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f64 = a8
        .remainder()
        .iter()
        .zip(b8.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a8.zip(b8) {
        for i in 0..8 {
            lanes[i] += x[i] * y[i];
        }
    }
    lanes.iter().sum::<f64>() + tail
}

/// `a·x` for a `[d, d]` row-major f32 matrix, in f64 (`row` is scratch of `d`).
fn mat_vec(a: &[f32], x: &[f64], row: &mut [f64], out: &mut [f64]) {
    let d = x.len();
    for (o, a_row) in out.iter_mut().zip(a.chunks_exact(d)) {
        row.iter_mut().zip(a_row).for_each(|(r, &v)| *r = v as f64);
        *o = dot(row, x);
    }
}

/// `max |inv·(a·p) − p|` over the entries and the [`PROBES`] probe vectors `p` (±1 entries
/// from a fixed sequence), in f64, for `[d, d]` row-major matrices; NaN if anything
/// overflows, which no tolerance accepts. A Freivalds check: `2·PROBES·d²` multiply-adds
/// (counted in `budget`), linear in the two matrices' `2·d²` values, where forming `inv·a`
/// would take `d³`.
pub(crate) fn inverse_error(inv: &[f32], a: &[f32], d: usize, budget: &Budget) -> Result<f64> {
    budget.count_work(2 * PROBES * d * d);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut buffers = try_vec("the inverse probes", 4 * d, 0.0)?;
    let (p, rest) = buffers.split_at_mut(d);
    let (ap, rest) = rest.split_at_mut(d);
    let (back, row) = rest.split_at_mut(d);
    let mut worst = 0.0f64;
    for _ in 0..PROBES {
        for v in p.iter_mut() {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            *v = if state >> 63 == 0 { 1.0 } else { -1.0 };
        }
        mat_vec(a, p, row, ap);
        mat_vec(inv, ap, row, back);
        for (b, q) in back.iter().zip(p.iter()) {
            let r = (b - q).abs();
            if r > worst || r.is_nan() {
                worst = r;
            }
        }
    }
    Ok(worst)
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum GlobalAffine {
    Softplus,
    Sigmoid,
    Exp,
}

/// Rows whose channels' global scale and offset an [`AllInOne`] keeps side by side.
const AFFINE_ROWS: usize = 16;

/// An AllInOneBlock.
pub(crate) struct AllInOne {
    split: (usize, usize),
    pub(crate) subnet: Subnet,
    clamp: f32,
    /// FrEIA head: `α·tanh(a/α)`; FrEIA 0.2: `α·tanh(a)`.
    clamp_divides: bool,
    gin: bool,
    /// Ψ(global_scale), per channel (1 for GIN), and the offsets, each repeated for
    /// [`AFFINE_ROWS`] rows (the global affine runs over whole vectors of rows).
    scale: Array<f32>,
    offset: Array<f32>,
    /// Σ log Ψ(global_scale) as FrEIA sums it (0 for GIN).
    log_scale_sum: f32,
    permutation: Mixing,
    /// A Householder permutation kept factored: its `K` reflections in groups of
    /// [`REFLECTION_GROUP`], applied next to `permutation` (which is then `w_0`, see
    /// [`AllInOne::mix`]); empty otherwise.
    reflections: Array<Reflections>,
    reverse_permutation: bool,
    cond: bool,
}

/// The word that, in a packed image, puts a Householder permutation's reflections before its
/// `w_0` mixing (docs/format.md §9.2).
const HOUSEHOLDER_IMAGE_TAG: u32 = 2;

/// A Householder permutation `W = w_0·H_1⋯H_K` (docs/blocks.md §allinoneblock), either
/// formed at load (`Formed`) or kept as its factors (`Factored`).
enum Householder {
    /// `W` as a dense `[D, D]` matrix.
    Formed(Vec<f32>),
    /// The reflections in groups ([`Reflections`]), and `w_0`.
    Factored {
        reflections: Vec<Reflections>,
        w0: Vec<f32>,
    },
}

/// Reads a Householder permutation. Forming `W` costs `2·K·D²` multiply-adds for the
/// `(K + D)·D` values of `vk_householder` and `w_0`: it is formed (in f64, as FrEIA forms it,
/// so results match FrEIA's to f32 rounding) while that is within [`WORK_PER_VALUE`] per
/// value, that is while `K·D ≤ 32·(K + D)` (any `K ≤ 32`, or `D ≤ 64`). Otherwise the block
/// keeps the `K` reflections, in groups of [`REFLECTION_GROUP`] ([`Reflections`], about
/// `1.5·REFLECTION_GROUP` multiply-adds per value of `vk_householder` to build), and applies
/// them at run time (`2·K·D` multiply-adds a row, as products: about `2·K/D` times a dense
/// `W`'s `D²`), so a hostile `D = K` file still loads in time linear in its size.
fn householder(src: &Source<'_>, spec: &BlockSpec<'_, '_>, d: usize) -> Result<Householder> {
    let vk_name = spec.tensor("vk_householder");
    let k = match src.shape(&vk_name) {
        Some([k, dd]) if *dd == d && *k <= d => *k,
        Some([k, dd]) if *dd == d => {
            return Err(Error::TensorShape {
                name: vk_name.to_string(),
                expected: format!(
                    "[K, {d}] with K ≤ {d} (D reflections compose any orthogonal map; more would only cost run time, K·D² operations)"
                ),
                found: format!("[{k}, {dd}]"),
            });
        }
        _ => {
            return Err(Error::TensorShape {
                name: vk_name.to_string(),
                expected: format!("[K, {d}]"),
                found: format!("{:?}", src.shape(&spec.tensor("vk_householder"))),
            });
        }
    };
    let vk = src.f32_tensor(&vk_name, &[k, d])?;
    let w0 = src.f32_tensor(&spec.tensor("w_0"), &[d, d])?;
    src.budget.charge::<f64>(
        || format!("the Householder vectors of block {}", spec.index),
        k * d,
    )?;
    let mut v64 = try_with_capacity::<f64>("the Householder vectors", k * d)?;
    v64.extend(vk.iter().map(|&x| x as f64));
    let mut scale = try_with_capacity::<f64>("the Householder vectors", k)?;
    src.budget.count_work(k * d);
    for (i, v) in v64.chunks_exact(d).enumerate() {
        let vv = dot(v, v);
        if !(vv.is_normal() && (2.0 / vv).is_finite()) {
            return Err(Error::TensorValue {
                name: spec.tensor("vk_householder").to_string(),
                problem: format!("row {i} is a zero (or vanishing) Householder vector"),
            });
        }
        scale.push(2.0 / vv);
    }
    if k * d > WORK_PER_VALUE / 2 * (k + d) {
        src.budget.charge::<f32>(
            || format!("the Householder reflections of block {}", spec.index),
            3 * k * d,
        )?;
        let mut u = v64;
        for (u, &c) in u.chunks_exact_mut(d).zip(&scale) {
            let r = libm::sqrt(c);
            u.iter_mut().for_each(|u| *u *= r);
        }
        let mut reflections =
            try_with_capacity("the Householder reflections", k.div_ceil(REFLECTION_GROUP))?;
        for group in u.chunks(REFLECTION_GROUP * d) {
            reflections.push(Reflections::new(group, d, &src.budget)?);
        }
        return Ok(Householder::Factored { reflections, w0 });
    }
    // W = w_0 · Π_k (I − 2 v vᵀ / vᵀv), right-multiplied in order, in f64 (its memory is in
    // the dense map's charge, `dense_map_bytes`).
    src.budget.count_work(2 * k * d * d);
    let mut w = try_with_capacity::<f64>("the Householder product", d * d)?;
    w.extend(w0.iter().map(|&v| v as f64));
    // Row r of W is row r of w_0 times H_1 ⋯ H_K, each row on its own: a group of
    // reflections (a few hundred KiB) is applied to every row in turn while the group and
    // the row are in cache, so W is streamed K/32 times rather than K times.
    const GROUP: usize = 32;
    for (vs, cs) in v64.chunks(GROUP * d).zip(scale.chunks(GROUP)) {
        for row in w.chunks_exact_mut(d) {
            // row ← row − 2 (row·v) vᵀ / vᵀv
            for (v, &c) in vs.chunks_exact(d).zip(cs) {
                let f = c * dot(row, v);
                row.iter_mut().zip(v).for_each(|(a, b)| *a -= f * b);
            }
        }
    }
    let mut out = try_with_capacity("the Householder product", d * d)?;
    out.extend(w.iter().map(|&v| v as f32));
    Ok(Householder::Formed(out))
}

/// Reflections a [`Reflections`] group holds (the last group of a block may hold fewer).
const REFLECTION_GROUP: usize = 32;

/// Up to [`REFLECTION_GROUP`] consecutive reflections `H_1⋯H_g` of a Householder permutation
/// (`H_j = I − u_j·u_jᵀ`, `|u_j|² = 2`) in compact WY form: `H_1⋯H_g = I − Uᵀ·T·U` with `U`
/// the `[g, D]` rows `u_jᵀ` and `T` upper triangular `[g, g]` (so `H_g⋯H_1 = I − Uᵀ·Tᵀ·U`).
/// Rows `x` are then mapped by two products, `p = x·Uᵀ` and `x − p·(T·U)`, on the same
/// kernels as every other weight: `2·g·D` multiply-adds a row, as `g` reflections one by
/// one take, but at the kernels' speed.
pub(crate) struct Reflections {
    /// `U`, as a `[g, D]` weight (`p = x·Uᵀ`).
    project: PackedWeight,
    /// `−(T·U)ᵀ`, `[D, g]`: `x·H_1⋯H_g = x + p·(−T·U)`.
    in_order: PackedWeight,
    /// `−(Tᵀ·U)ᵀ`, `[D, g]`: `x·H_g⋯H_1 = x + p·(−Tᵀ·U)`.
    reversed: PackedWeight,
}

impl Reflections {
    /// The group of the `[g, d]` vectors `u` (`|u_j|² = 2`), built in f64 (about `1.5·g²·d`
    /// multiply-adds, counted in `budget`).
    fn new(u: &[f64], d: usize, budget: &Budget) -> Result<Reflections> {
        let g = u.len() / d;
        // T by columns: T_jj = 1, T[..j, j] = −T[..j, ..j]·(U[..j]·u_j).
        let mut t = try_vec("a Householder group", g * g, 0.0f64)?;
        let mut gram = try_vec("a Householder group", g, 0.0f64)?;
        for j in 0..g {
            let uj = &u[j * d..(j + 1) * d];
            for (l, y) in gram[..j].iter_mut().enumerate() {
                *y = dot(&u[l * d..(l + 1) * d], uj);
            }
            for i in 0..j {
                let z: f64 = (i..j).map(|l| t[i * g + l] * gram[l]).sum();
                t[i * g + j] = -z;
            }
            t[j * g + j] = 1.0;
        }
        budget.count_work(g * g * d / 2 + g * g * g);
        // (T·U)ᵀ[c][j] = Σ_{l ≥ j} T[j][l]·U[l][c]; (Tᵀ·U)ᵀ[c][j] = Σ_{l ≤ j} T[l][j]·U[l][c].
        let mut in_order = try_vec("a Householder group", d * g, 0.0f32)?;
        let mut reversed = try_vec("a Householder group", d * g, 0.0f32)?;
        for c in 0..d {
            for j in 0..g {
                let a: f64 = (j..g).map(|l| t[j * g + l] * u[l * d + c]).sum();
                let b: f64 = (0..=j).map(|l| t[l * g + j] * u[l * d + c]).sum();
                in_order[c * g + j] = -a as f32;
                reversed[c * g + j] = -b as f32;
            }
        }
        budget.count_work(d * g * (g + 1));
        let u32s = try_collect("a Householder group", u.iter().map(|&v| v as f32))?;
        Ok(Reflections {
            project: PackedWeight::pack(&u32s, g, d, WeightStorage::F32)?,
            in_order: PackedWeight::pack(&in_order, d, g, WeightStorage::F32)?,
            reversed: PackedWeight::pack(&reversed, d, g, WeightStorage::F32)?,
        })
    }

    /// Writes the group into a packed image (docs/format.md §9.2).
    fn to_image(&self, w: &mut Writer) -> Result<()> {
        w.weight(&self.project)?;
        w.weight(&self.in_order)?;
        w.weight(&self.reversed)
    }

    /// Reads a group of `g` reflections on `d` channels from a packed image.
    fn from_image(r: &mut Reader<'_>, g: usize, d: usize) -> Result<Reflections> {
        Ok(Reflections {
            project: r.weight(g, d)?,
            in_order: r.weight(d, g)?,
            reversed: r.weight(d, g)?,
        })
    }

    /// `rows ← rows·H_1⋯H_g`, or `rows·H_g⋯H_1` if `reverse` (`m` rows of `d`; `p` is scratch
    /// of `m·g` at least). A row's result does not depend on the other rows (the kernels'
    /// contract), so not on how a batch is split.
    fn apply(
        &self,
        isa: Available,
        m: usize,
        d: usize,
        rows: &mut [f32],
        p: &mut [f32],
        reverse: bool,
    ) {
        let g = self.project.n();
        let rows = &mut rows[..m * d];
        let p = &mut p[..m * g];
        let x = Rows::new(rows, m, d, d).checked();
        let out = RowsMut::new(p, m, g, g).checked();
        gemm::gemm(isa, Product::new(x, &self.project), out).checked();
        let update = if reverse {
            &self.reversed
        } else {
            &self.in_order
        };
        let a = Rows::new(p, m, g, g).checked();
        let out = RowsMut::new(rows, m, d, d).checked();
        gemm::gemm(isa, Product::new(a, update).accumulate(true), out).checked();
    }
}

impl AllInOne {
    pub(crate) fn load(spec: &BlockSpec<'_, '_>) -> Result<AllInOne> {
        let src = spec.src;
        let d = spec.dim;
        if d < 2 {
            return Err(Error::Dims(format!(
                "block {}: AllInOneBlock needs at least 2 channels",
                spec.index
            )));
        }
        let l2 = d / 2;
        let l1 = d - l2;
        let subnet = Subnet::load(
            src,
            spec.index,
            "subnet",
            l1 + spec.cond_dim,
            spec.cond_dim,
            2 * l2,
        )?;
        let clamp = spec.clamp()?;
        let gin = src.meta_bool(&spec.key("gin_block"), false)?;
        let reverse_permutation = src.meta_bool(&spec.key("reverse_permutation"), false)?;
        let type_key = spec.key("global_affine_type");
        let affine = match src.meta(&type_key).map(str::trim) {
            None | Some("SOFTPLUS") => GlobalAffine::Softplus,
            Some("SIGMOID") => GlobalAffine::Sigmoid,
            Some("EXP") => GlobalAffine::Exp,
            Some(v) => {
                return Err(
                    src.bad_meta(&type_key, format!("`{v}` is not SOFTPLUS, SIGMOID or EXP"))
                );
            }
        };
        let raw_scale = src.f32_channels(&spec.tensor("global_scale"), d)?;
        let offset = src.f32_channels(&spec.tensor("global_offset"), d)?;
        let (scale, log_scale_sum) = if gin {
            (try_vec("the global scale", d, 1.0)?, 0.0)
        } else {
            let scales = raw_scale.iter().map(|&a| match affine {
                // 0.1 · Softplus(beta = 0.5, threshold = 20)
                GlobalAffine::Softplus => {
                    let beta = 0.5f32;
                    let sp = if a * beta > 20.0 {
                        a
                    } else {
                        math::log1p(math::exp(a * beta)) / beta
                    };
                    0.1 * sp
                }
                GlobalAffine::Sigmoid => 10.0 * math::sigmoid(a - 2.0),
                GlobalAffine::Exp => math::exp(a),
            });
            let scale = try_collect("the global scale", scales)?;
            if let Some(c) = scale.iter().position(|&g| !super::is_invertible_scale(g)) {
                return Err(Error::TensorValue {
                    name: spec.tensor("global_scale").to_string(),
                    problem: format!(
                        "channel {c} gives a global scale of {}, which is not invertible",
                        scale[c]
                    ),
                });
            }
            let sum = scale.iter().map(|&g| math::ln(g)).sum();
            (scale, sum)
        };
        let perm_name = spec.tensor("w_perm");
        let inv_name = spec.tensor("w_perm_inv");
        if !matches!(src.shape(&perm_name), Some([_])) {
            src.budget.charge::<u8>(
                || format!("the dense permutation of block {}", spec.index),
                dense_map_bytes(d),
            )?;
        }
        let householder_name = spec.tensor("vk_householder");
        // The `permutation` key, if given, must say what the tensors are.
        let perm_key = spec.key("permutation");
        let stated = src.meta(&perm_key).map(str::trim);
        let found = match src.shape(&perm_name) {
            _ if src.has_tensor(&householder_name) => "householder",
            Some([_]) => "hard",
            _ => "hard or soft",
        };
        match stated {
            None => {}
            Some(v @ ("hard" | "soft" | "householder")) if found.contains(v) => {}
            Some(v @ ("hard" | "soft" | "householder")) => {
                return Err(src.bad_meta(
                    &perm_key,
                    format!("is `{v}`, but the block's tensors describe a {found} permutation"),
                ));
            }
            Some(v) => {
                return Err(
                    src.bad_meta(&perm_key, format!("`{v}` is not hard, soft or householder"))
                );
            }
        }
        let mut reflections = Vec::new();
        let permutation = if src.has_tensor(&householder_name) {
            match householder(src, spec, d)? {
                Householder::Formed(w) => {
                    Mixing::from_matrix(&perm_name, &w, None, d, &src.budget)?
                }
                Householder::Factored { reflections: u, w0 } => {
                    reflections = u;
                    // W is orthogonal if w_0 is (the reflections are, to f32 rounding).
                    Mixing::from_matrix(&spec.tensor("w_0"), &w0, None, d, &src.budget)?
                }
            }
        } else {
            match src.shape(&perm_name) {
                Some([n]) if *n == d => {
                    let mixing = Mixing::from_index(&perm_name, &src.index_tensor(&perm_name, d)?)?;
                    if src.has_tensor(&inv_name) {
                        mixing.check_inverse_index(&inv_name, &src.index_tensor(&inv_name, d)?)?;
                    }
                    mixing
                }
                Some([a, b]) if *a == d && *b == d => {
                    let w = src.f32_tensor(&perm_name, &[d, d])?;
                    let w_inv = if src.has_tensor(&inv_name) {
                        Some((inv_name.as_str(), src.f32_tensor(&inv_name, &[d, d])?))
                    } else {
                        None
                    };
                    let mixing = Mixing::from_matrix(&perm_name, &w, w_inv, d, &src.budget)?;
                    if stated == Some("hard") && matches!(mixing, Mixing::Dense { .. }) {
                        return Err(src.bad_meta(
                            &perm_key,
                            format!("is `hard`, but `{perm_name}` is not a 0/1 permutation matrix"),
                        ));
                    }
                    mixing
                }
                Some(other) => {
                    return Err(Error::TensorShape {
                        name: perm_name.to_string(),
                        expected: format!("[{d}] or [{d}, {d}]"),
                        found: format!("{other:?}"),
                    });
                }
                None => return Err(Error::MissingTensor(perm_name.to_string())),
            }
        };
        let repeated =
            |v: &[f32]| try_collect("the global affine", (0..AFFINE_ROWS * d).map(|i| v[i % d]));
        Ok(AllInOne {
            split: (l1, l2),
            subnet,
            clamp,
            clamp_divides: spec.freia_head,
            gin,
            scale: repeated(&scale)?.into(),
            offset: repeated(&offset)?.into(),
            log_scale_sum,
            permutation,
            reflections: reflections.into(),
            reverse_permutation,
            cond: spec.cond_dim > 0,
        })
    }

    pub(crate) fn takes_condition(&self) -> bool {
        self.cond
    }

    /// Writes the block into a packed image (docs/format.md, "Packed images").
    pub(crate) fn to_image(&self, w: &mut Writer) -> Result<()> {
        w.count(self.split.0)?;
        w.count(self.split.1)?;
        w.f32(self.clamp);
        w.flag(self.clamp_divides);
        w.flag(self.gin);
        w.f32s(&self.scale)?;
        w.f32s(&self.offset)?;
        w.f32(self.log_scale_sum);
        if !self.reflections.is_empty() {
            w.word(HOUSEHOLDER_IMAGE_TAG);
            let k = self.reflections.iter().map(|g| g.project.n()).sum();
            w.count(k)?;
            for group in self.reflections.iter() {
                group.to_image(w)?;
            }
        }
        self.permutation.to_image(w)?;
        w.flag(self.reverse_permutation);
        w.flag(self.cond);
        self.subnet.to_image(w)
    }

    /// Reads the block from a packed image: `d` wide, split in two non-empty parts, its subnet
    /// taking `cond_dim` condition values if it takes the condition.
    pub(crate) fn from_image(r: &mut Reader<'_>, d: usize, cond_dim: usize) -> Result<AllInOne> {
        let split = (r.count()?, r.count()?);
        if split.0 == 0 || split.1 == 0 || split.0.checked_add(split.1) != Some(d) {
            return Err(r.invalid("a split does not cut the block's width in two"));
        }
        let (clamp, clamp_divides, gin) = (r.f32()?, r.flag()?, r.flag()?);
        let scale = r.f32s(AFFINE_ROWS * d, "a global scale is not its block's width")?;
        let offset = r.f32s(AFFINE_ROWS * d, "a global offset is not its block's width")?;
        let log_scale_sum = r.f32()?;
        let (reflections, permutation) = match r.word()? {
            HOUSEHOLDER_IMAGE_TAG => {
                let k = r.count()?;
                if k == 0 || k > d {
                    return Err(r.invalid(
                        "a Householder permutation has no reflections or more than its block's width",
                    ));
                }
                let mut left = k;
                let reflections = r.array(k.div_ceil(REFLECTION_GROUP), |r| {
                    let g = left.min(REFLECTION_GROUP);
                    left -= g;
                    Reflections::from_image(r, g, d)
                })?;
                (reflections, Mixing::from_image(r, d)?)
            }
            tag => (Array::default(), Mixing::from_image_tagged(r, tag, d)?),
        };
        let (reverse_permutation, cond) = (r.flag()?, r.flag()?);
        let cc = if cond { cond_dim } else { 0 };
        if cond && cc == 0 {
            return Err(r.invalid("a block takes a condition the model does not have"));
        }
        let subnet = Subnet::from_image(r, split.0 + cc, cc, 2 * split.1)?;
        Ok(AllInOne {
            split,
            subnet,
            clamp,
            clamp_divides,
            gin,
            scale,
            offset,
            log_scale_sum,
            permutation,
            reflections,
            reverse_permutation,
            cond,
        })
    }

    /// Applies the permutation `W` (`x·Wᵀ`, as `F.linear`) or its inverse (`y·W`) to `m`
    /// rows of `state`. For a factored Householder permutation `W = w_0·H_1⋯H_K` (each `H_k`
    /// symmetric and its own inverse) that is `x·H_K⋯H_1·w_0ᵀ`, and `y·w_0·H_1⋯H_K`; in
    /// place, with `tmp` (`m·D`) as scratch, so nothing is allocated.
    fn mix(&self, work: &mut Work<'_>, m: usize, d: usize, state: &mut [f32], inverse: bool) {
        if !inverse {
            for group in self.reflections.iter().rev() {
                group.apply(work.isa, m, d, state, work.tmp, true);
            }
        }
        self.permutation
            .apply(work.isa, m, d, state, work.tmp, inverse);
        if inverse {
            for group in self.reflections.iter() {
                group.apply(work.isa, m, d, state, work.tmp, false);
            }
        }
    }

    pub(crate) fn plan(&self) -> Plan {
        Plan {
            hidden: self.subnet.max_hidden(),
            subnet_out: self.subnet.n_out(),
        }
    }

    pub(crate) fn parameter_count(&self) -> usize {
        self.subnet.parameter_count() + 2 * (self.split.0 + self.split.1)
    }

    pub(crate) fn run(
        &self,
        work: &mut Work<'_>,
        state: &mut [f32],
        logdet: &mut [f32],
        rev: bool,
    ) {
        let m = work.m;
        let (l1, l2) = self.split;
        let d = l1 + l2;
        if rev {
            self.mix(work, m, d, state, true);
            let rows = &mut state[..m * d];
            math::affine_rows(work.isa, rows, &self.scale, &self.offset, true);
        } else if self.reverse_permutation {
            self.mix(work, m, d, state, true);
        }

        let width = 2 * l2;
        let mut r0 = 0;
        while r0 < m {
            let rows = work.tile.min(m - r0);
            let cond = work.cond.map(|c| c.skip_rows(r0));
            let (h0, h1) = (&mut *work.hidden.0, &mut *work.hidden.1);
            let coeffs = &mut work.coeffs[..rows * width];
            let st = &mut state[r0 * d..(r0 + rows) * d];
            self.subnet
                .run(work.isa, rows, st, d, cond, (h0, h1), coeffs, width);
            coeffs.iter_mut().for_each(|a| *a *= 0.1);
            let soft_clamp = math::SoftClamp::Tanh {
                divide: self.clamp_divides,
            };
            if rows == 1 && !self.gin {
                // One row (batch 1): clamp, exponential and update fused, in place.
                let (s, t) = coeffs.split_at_mut(l2);
                let x2 = &mut st[l1..d];
                math::coupling_row(work.isa, s, t, x2, soft_clamp, self.clamp, rev);
                let sum: f32 = s.iter().sum();
                logdet[r0] += if rev {
                    -sum + -self.log_scale_sum
                } else {
                    sum + self.log_scale_sum
                };
                r0 += rows;
                continue;
            }
            let sbuf = &mut work.sbuf[..rows * l2];
            for (dst, row) in sbuf.chunks_exact_mut(l2).zip(coeffs.chunks_exact(width)) {
                dst.copy_from_slice(&row[..l2]);
            }
            let padded = math::vector_padded(rows * l2, work.sbuf);
            let lanes = &mut work.sbuf[..padded];
            math::soft_clamp_slice(work.isa, lanes, soft_clamp, self.clamp);
            let sbuf = &mut work.sbuf[..rows * l2];
            for (row, s) in sbuf.chunks_exact_mut(l2).enumerate() {
                if self.gin {
                    let mean = s.iter().sum::<f32>() / l2 as f32;
                    s.iter_mut().for_each(|v| *v -= mean);
                }
                let sum: f32 = s.iter().sum();
                logdet[r0 + row] += if rev {
                    -sum + -self.log_scale_sum
                } else {
                    sum + self.log_scale_sum
                };
            }
            let lanes = &mut work.sbuf[..padded];
            math::exp_scaled_slice(work.isa, lanes, if rev { -1.0 } else { 1.0 });
            let sbuf = &work.sbuf[..rows * l2];
            for row in 0..rows {
                let e = &sbuf[row * l2..row * l2 + l2];
                let t = &coeffs[row * width + l2..row * width + width];
                let x2 = &mut st[row * d + l1..row * d + d];
                if rev {
                    for ((x, e), t) in x2.iter_mut().zip(e).zip(t) {
                        *x = (*x - *t) * *e;
                    }
                } else {
                    for ((x, e), t) in x2.iter_mut().zip(e).zip(t) {
                        *x = *x * *e + *t;
                    }
                }
            }
            r0 += rows;
        }

        if !rev {
            let rows = &mut state[..m * d];
            math::affine_rows(work.isa, rows, &self.scale, &self.offset, false);
            self.mix(work, m, d, state, false);
        } else if self.reverse_permutation {
            self.mix(work, m, d, state, false);
        }
    }
}
