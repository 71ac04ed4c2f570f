//! Subnets: chains of `Linear` layers with element-wise activations between them.
//!
//! Weights are packed once, at load, into the GEMM kernel's panel layout. A subnet whose input
//! is `[passive half, condition]` keeps its first weight matrix in two packed parts, `W_x` and
//! `W_c`, so the passive half is read in place from the block's state and the condition from
//! its own buffer: no concatenation copy on the hot path.
//!
//! The first layer is then two products: the condition's part `p = W_c·c` into the hidden
//! scratch, and `b + W_x·x` with `p` added to each finished sum (`gemm::Product::add_rows`):
//! every output is `(b + Σ W_x·x) + Σ W_c·c`, each sum in input order as the GEMM's contract
//! sums. When the rows share conditions — the `n` samples of one observation ([`CondRows`]) —
//! `p` is computed once per observation and added to each of its samples: the condition's
//! multiply-adds (8 of the camera model's 10 inputs, docs/performance.md) are paid once per
//! observation, not per sample. A row gets the same bits whether its condition is shared or
//! its own, so sampling, summaries and forward/inverse passes with a condition per row agree
//! bit for bit. (The order `b + Σ W_c·c + Σ W_x·x` in one chain would need no added rows,
//! but put one of the FrEIA fixtures, pypi_cinn_stats, just past tests/freia_parity.rs's
//! tolerance, at 1.01 of it; this order keeps every fixture within 0.81.)

use crate::model::packed::array::Array;
use alloc::format;
use alloc::string::ToString;
use alloc::vec::Vec;

use super::{CheckedAtLoad, CondRows};
use crate::error::{Error, Result};
use crate::kernels::gemm::{
    self, AddedRows, Available, Epilogue, PackedWeight, Product, Rows, RowsMut, WeightPacker,
    WeightStorage,
};
use crate::kernels::math;
use crate::model::packed::image::{Reader, Writer};
use crate::source::Source;
use crate::source::budget::{try_reserve, try_with_capacity};
use crate::source::name::{Name, name};

/// An element-wise activation between Linear layers (PyTorch semantics).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Activation {
    Relu,
    LeakyRelu(f32),
    Tanh,
    Sigmoid,
    Elu(f32),
    Silu,
    Gelu,
    GeluTanh,
    Softplus { beta: f32, threshold: f32 },
}

impl Activation {
    #[inline]
    pub(crate) fn apply(self, v: &mut [f32]) {
        match self {
            Activation::Relu => v
                .iter_mut()
                .for_each(|x| *x = if *x > 0.0 { *x } else { 0.0 }),
            Activation::LeakyRelu(s) => v
                .iter_mut()
                .for_each(|x| *x = if *x >= 0.0 { *x } else { *x * s }),
            Activation::Tanh => v.iter_mut().for_each(|x| *x = math::tanh(*x)),
            Activation::Sigmoid => v.iter_mut().for_each(|x| *x = math::sigmoid(*x)),
            Activation::Elu(alpha) => v.iter_mut().for_each(|x| {
                if *x <= 0.0 {
                    *x = alpha * math::expm1(*x)
                }
            }),
            Activation::Silu => v.iter_mut().for_each(|x| *x *= math::sigmoid(*x)),
            Activation::Gelu => v.iter_mut().for_each(|x| {
                *x = 0.5 * *x * (1.0 + math::erf(*x * core::f32::consts::FRAC_1_SQRT_2))
            }),
            Activation::GeluTanh => v.iter_mut().for_each(|x| {
                let inner = 0.797_884_6 * (*x + 0.044715 * *x * *x * *x);
                *x = 0.5 * *x * (1.0 + math::tanh(inner))
            }),
            Activation::Softplus { beta, threshold } => v.iter_mut().for_each(|x| {
                if *x * beta <= threshold {
                    *x = math::log1p(math::exp(*x * beta)) / beta
                }
            }),
        }
    }
}

impl Activation {
    /// The activation's words in a packed image: its code and two parameters (0 if unused).
    fn image_words(self) -> (u32, f32, f32) {
        match self {
            Activation::Relu => (0, 0.0, 0.0),
            Activation::LeakyRelu(slope) => (1, slope, 0.0),
            Activation::Tanh => (2, 0.0, 0.0),
            Activation::Sigmoid => (3, 0.0, 0.0),
            Activation::Elu(alpha) => (4, alpha, 0.0),
            Activation::Silu => (5, 0.0, 0.0),
            Activation::Gelu => (6, 0.0, 0.0),
            Activation::GeluTanh => (7, 0.0, 0.0),
            Activation::Softplus { beta, threshold } => (8, beta, threshold),
        }
    }

    fn from_image(r: &mut Reader<'_>) -> Result<Activation> {
        let at = r.offset();
        let (code, p, q) = (r.word()?, r.f32()?, r.f32()?);
        Ok(match code {
            0 => Activation::Relu,
            1 => Activation::LeakyRelu(p),
            2 => Activation::Tanh,
            3 => Activation::Sigmoid,
            4 => Activation::Elu(p),
            5 => Activation::Silu,
            6 => Activation::Gelu,
            7 => Activation::GeluTanh,
            8 => Activation::Softplus {
                beta: p,
                threshold: q,
            },
            _ => {
                return Err(crate::model::packed::image::invalid(
                    at,
                    "unknown activation",
                ));
            }
        })
    }
}

/// One Linear layer, packed; `cond_part` holds the columns of the weight that multiply the
/// condition (first layer of a conditional subnet only).
pub(crate) struct Dense {
    pub(crate) n_in: usize,
    pub(crate) n_out: usize,
    packed: PackedWeight,
    cond_part: Option<PackedWeight>,
    bias: Option<Array<f32>>,
    activations: Array<Activation>,
    /// A lone ReLU after a layer, fused into the store of its last GEMM; set at load so a
    /// call does not read the `activations` buffer to find out.
    fuse_relu: bool,
}

/// A whole subnet.
pub(crate) struct Subnet {
    layers: Array<Dense>,
}

enum Item<'s> {
    Linear { name: &'s str, bias: bool },
    Act(Activation),
    Identity,
}

/// At most this many arguments in a layer's parentheses (Softplus has two).
const MAX_ARGS: usize = 2;

/// A layer's kind and its arguments (`None` if the parentheses do not parse or hold more
/// than [`MAX_ARGS`]).
fn parse_args(spec: &str) -> Option<(&str, [&str; MAX_ARGS], usize)> {
    let mut args = [""; MAX_ARGS];
    match spec.find('(') {
        None => Some((spec, args, 0)),
        Some(open) => {
            let close = spec.rfind(')')?;
            if close != spec.len() - 1 || close < open {
                return None;
            }
            let mut n = 0;
            for a in spec[open + 1..close]
                .split(',')
                .map(|a| a.trim())
                .filter(|a| !a.is_empty())
            {
                *args.get_mut(n)? = a;
                n += 1;
            }
            Some((&spec[..open], args, n))
        }
    }
}

fn parse_item<'s>(key: &str, token: &'s str) -> Result<Item<'s>> {
    let unknown = || Error::UnknownLayer {
        key: key.to_string(),
        layer: token.to_string(),
    };
    let (name, kind) = token.split_once(':').ok_or_else(unknown)?;
    let (kind, args, n_args) = parse_args(kind).ok_or_else(unknown)?;
    let args = &args[..n_args];
    let num = |i: usize, default: f32| -> Result<f32> {
        match args.get(i) {
            None => Ok(default),
            Some(a) => a
                .parse::<f32>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(unknown),
        }
    };
    let no_args = |item: Item<'s>| -> Result<Item<'s>> {
        if args.is_empty() {
            Ok(item)
        } else {
            Err(unknown())
        }
    };
    match kind {
        "Linear" => match args {
            [] => Ok(Item::Linear { name, bias: true }),
            ["nobias"] => Ok(Item::Linear { name, bias: false }),
            _ => Err(unknown()),
        },
        "ReLU" => no_args(Item::Act(Activation::Relu)),
        "LeakyReLU" => Ok(Item::Act(Activation::LeakyRelu(num(0, 0.01)?))),
        "Tanh" => no_args(Item::Act(Activation::Tanh)),
        "Sigmoid" => no_args(Item::Act(Activation::Sigmoid)),
        "ELU" => Ok(Item::Act(Activation::Elu(num(0, 1.0)?))),
        "SiLU" => no_args(Item::Act(Activation::Silu)),
        "GELU" => match args {
            [] | ["none"] => Ok(Item::Act(Activation::Gelu)),
            ["tanh"] => Ok(Item::Act(Activation::GeluTanh)),
            _ => Err(unknown()),
        },
        "Softplus" => {
            let beta = num(0, 1.0)?;
            if beta == 0.0 {
                return Err(unknown());
            }
            Ok(Item::Act(Activation::Softplus {
                beta,
                threshold: num(1, 20.0)?,
            }))
        }
        "Identity" | "Dropout" => Ok(Item::Identity),
        _ => Err(unknown()),
    }
}

impl Subnet {
    /// Reads `innfer.block.{block}.subnet.{name}` and the Linear tensors under `{prefix}{name}.`.
    /// `n_in` is the width of the block's input to this subnet (passive part plus `n_cond`),
    /// `n_out` the width the block needs back.
    pub(crate) fn load(
        src: &Source<'_>,
        block: usize,
        name: &str,
        n_in: usize,
        n_cond: usize,
        n_out: usize,
    ) -> Result<Subnet> {
        let key = name!("innfer.block.{block}.subnet.{name}");
        let spec = src.meta_required(&key)?;
        // Every token parsed (and the Linear layers counted) before anything is read, so a
        // bad one is named first.
        let mut n_layers = 0;
        for token in spec.split_whitespace() {
            n_layers += usize::from(matches!(parse_item(&key, token)?, Item::Linear { .. }));
        }
        let mut layers: Vec<Dense> = try_with_capacity("a subnet's layers", n_layers)?;
        let mut width = n_in;
        for (i, token) in spec.split_whitespace().enumerate() {
            match parse_item(&key, token)? {
                Item::Identity => {}
                Item::Act(act) => match layers.last_mut() {
                    Some(layer) => {
                        let acts = layer.activations.to_mut();
                        try_reserve("a layer's activations", acts, 1)?;
                        acts.push(act);
                    }
                    None => {
                        return Err(src.bad_meta(&key, "a subnet must start with a Linear layer"));
                    }
                },
                Item::Linear { name: layer, bias } => {
                    let wname = name!("module_list.{block}.{name}.{layer}.weight");
                    let bname = name!("module_list.{block}.{name}.{layer}.bias");
                    if bname.whole().is_none() {
                        return Err(src.bad_meta(
                            &key,
                            format!(
                                "layer {i}'s tensor names are longer than {} bytes",
                                Name::CAPACITY
                            ),
                        ));
                    }
                    let shape = src
                        .shape(&wname)
                        .ok_or_else(|| Error::MissingTensor(wname.to_string()))?;
                    if shape.len() != 2 || shape[1] != width {
                        return Err(Error::Dims(format!(
                            "block {block} subnet `{name}` layer `{layer}`: weight `{wname}` has shape {shape:?}, but its input is {width} wide"
                        )));
                    }
                    let out = shape[0];
                    if out == 0 {
                        return Err(Error::Dims(format!(
                            "block {block} subnet `{name}` layer `{layer}`: weight `{wname}` has no outputs (shape {shape:?})"
                        )));
                    }
                    // Only the first layer sees the condition.
                    let cond_cols = if layers.is_empty() { n_cond } else { 0 };
                    let mut dense = Dense::load(src, &wname, out, width, cond_cols)?;
                    if bias {
                        dense.bias = Some(src.f32_tensor(&bname, &[out])?.into());
                    }
                    layers.push(dense);
                    width = out;
                }
            }
        }
        if layers.is_empty() {
            return Err(src.bad_meta(&key, "a subnet needs at least one Linear layer"));
        }
        for layer in &mut layers {
            // A layer of the condition alone copies its rows out last, with no GEMM to fuse into.
            layer.fuse_relu = layer.packed.k() > 0 && *layer.activations == [Activation::Relu];
        }
        if width != n_out {
            return Err(Error::Dims(format!(
                "block {block} subnet `{name}` ends {width} wide, but the block needs {n_out}"
            )));
        }
        Ok(Subnet {
            layers: layers.into(),
        })
    }

    pub(crate) fn n_out(&self) -> usize {
        self.layers.last().map_or(0, |l| l.n_out)
    }

    /// Writes the subnet into a packed image (docs/format.md, "Packed images").
    pub(crate) fn to_image(&self, w: &mut Writer) -> Result<()> {
        w.count(self.layers.len())?;
        for layer in &self.layers {
            w.count(layer.n_out)?;
            w.weight(&layer.packed)?;
            w.flag(layer.cond_part.is_some());
            if let Some(part) = &layer.cond_part {
                w.weight(part)?;
            }
            w.flag(layer.bias.is_some());
            if let Some(bias) = &layer.bias {
                w.f32s(bias)?;
            }
            w.count(layer.activations.len())?;
            for a in &layer.activations {
                let (code, p, q) = a.image_words();
                w.word(code);
                w.f32(p);
                w.f32(q);
            }
        }
        Ok(())
    }

    /// Reads a subnet from a packed image, as [`Subnet::load`] checks it: `n_in` wide (its last
    /// `n_cond` inputs the condition, packed apart in the first layer), `n_out` outputs.
    pub(crate) fn from_image(
        r: &mut Reader<'_>,
        n_in: usize,
        n_cond: usize,
        n_out: usize,
    ) -> Result<Subnet> {
        let at = r.offset();
        let count = r.count()?;
        if count == 0 {
            return Err(r.invalid("a subnet has no layers"));
        }
        let mut width = n_in;
        let mut first = true;
        let layers = r.array(count, |r| {
            let out = r.count()?;
            if out == 0 {
                return Err(r.invalid("a layer has no outputs"));
            }
            let cond_cols = if first { n_cond } else { 0 };
            let packed = r.weight(out, width - cond_cols)?;
            let cond_part = if r.flag()? {
                if cond_cols == 0 {
                    return Err(r.invalid("a layer that sees no condition has a condition part"));
                }
                Some(r.weight(out, cond_cols)?)
            } else if cond_cols > 0 {
                return Err(
                    r.invalid("the first layer of a conditional subnet has no condition part")
                );
            } else {
                None
            };
            let bias = match r.flag()? {
                true => Some(r.f32s(out, "a bias is not its layer's width")?),
                false => None,
            };
            let n_activations = r.count()?;
            let activations = r.array(n_activations, Activation::from_image)?;
            let fuse_relu = packed.k() > 0 && *activations == [Activation::Relu];
            let layer = Dense {
                n_in: width,
                n_out: out,
                packed,
                cond_part,
                bias,
                activations,
                fuse_relu,
            };
            (width, first) = (out, false);
            Ok(layer)
        })?;
        if width != n_out {
            return Err(crate::model::packed::image::invalid(
                at,
                "a subnet's output is not the width its block needs",
            ));
        }
        Ok(Subnet { layers })
    }

    /// Floats per row of each of the two hidden buffers [`Subnet::run`] needs: the widest
    /// hidden layer (the output widths of every layer but the last), and the first layer's
    /// output if it has a condition part (computed into a hidden buffer, see the module doc).
    pub(crate) fn max_hidden(&self) -> usize {
        let first = &self.layers[0];
        let cond_part = if first.cond_part.is_some() {
            first.n_out
        } else {
            0
        };
        self.layers[..self.layers.len() - 1]
            .iter()
            .map(|l| l.n_out)
            .max()
            .unwrap_or(0)
            .max(cond_part)
    }

    /// Bytes of the packed weights and biases.
    pub(crate) fn weight_bytes(&self) -> usize {
        self.layers
            .iter()
            .map(|l| {
                l.packed.bytes()
                    + l.cond_part.as_ref().map_or(0, PackedWeight::bytes)
                    + l.bias.as_ref().map_or(0, |b| b.len() * 4)
            })
            .sum()
    }

    pub(crate) fn parameter_count(&self) -> usize {
        self.layers
            .iter()
            .map(|l| l.n_in * l.n_out + l.bias.as_ref().map_or(0, |b| b.len()))
            .sum()
    }

    /// Runs the subnet on `m` rows.
    ///
    /// `input` holds the passive part, row stride `ld_in` (a view into the block's state);
    /// `cond` the condition rows of the `m` rows when the subnet was loaded with one.
    /// The result goes to `out` with row stride `ld_out`. `hidden` must hold two buffers of
    /// `m × max_hidden()` floats.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn run(
        &self,
        isa: Available,
        m: usize,
        input: &[f32],
        ld_in: usize,
        cond: Option<CondRows<'_>>,
        hidden: (&mut [f32], &mut [f32]),
        out: &mut [f32],
        ld_out: usize,
    ) {
        let (mut h_cur, mut h_next) = hidden;
        let last = self.layers.len() - 1;
        for (index, layer) in self.layers.iter().enumerate() {
            let (dst, ld_dst): (&mut [f32], usize) = if index == last {
                (&mut *out, ld_out)
            } else {
                (&mut *h_next, layer.n_out)
            };
            if index == 0 {
                // The other hidden buffer is free until the second layer: the condition's
                // part goes there.
                let cond = cond.map(|c| (c, &mut *h_cur));
                layer.forward(isa, m, input, ld_in, cond, dst, ld_dst);
            } else {
                let src: &[f32] = h_cur;
                layer.forward(isa, m, src, self.layers[index - 1].n_out, None, dst, ld_dst);
            }
            if index != last {
                core::mem::swap(&mut h_cur, &mut h_next);
            }
        }
    }
}

/// Columns `cols` of the row-major `w` (`n_in` wide): `w` itself if that is all of them,
/// else copied into `buf`.
fn columns<'a>(
    w: &'a [f32],
    n_in: usize,
    cols: core::ops::Range<usize>,
    buf: &'a mut Vec<f32>,
) -> Result<&'a [f32]> {
    if cols.len() == n_in {
        return Ok(w);
    }
    buf.clear();
    let len = w.len() / n_in * cols.len();
    try_reserve("a weight's columns", buf, len)?;
    for row in w.chunks_exact(n_in) {
        buf.extend_from_slice(&row[cols.clone()]);
    }
    Ok(buf)
}

impl Dense {
    /// A layer without bias (the caller sets it) from the weight `wname`, `[n_out][n_in]`,
    /// whose last `n_cond` columns multiply the condition (packed apart, see the module doc).
    ///
    /// The weight is read and packed a block of rows at a time (32 Ki values or more, in whole
    /// panel groups): loading never holds a whole weight unpacked, and each block is packed
    /// while in cache.
    fn load(
        src: &Source<'_>,
        wname: &str,
        n_out: usize,
        n_in: usize,
        n_cond: usize,
    ) -> Result<Dense> {
        let storage = src.weight_storage;
        let n_main = n_in - n_cond;
        let mut main = src.weight_packer(wname, n_out, n_main)?;
        let mut cond = match n_cond {
            0 => None,
            _ => Some(src.weight_packer(wname, n_out, n_cond)?),
        };
        // Whole panel groups per block, so each block streams whole groups when packed.
        let block_rows = (32 * 1024 / n_in.max(1))
            .max(1)
            .next_multiple_of(gemm::GROUP_ROWS);
        let mut part = Vec::new();
        src.for_each_rows(wname, [n_out, n_in], block_rows, |first_row, w| {
            if storage == WeightStorage::F16
                && let Some(v) = w.iter().find(|v| v.abs() > 65504.0)
            {
                return Err(Error::Dims(format!(
                    "weight `{wname}` holds {v}, beyond the f16 range (±65504): load it with f32 or bf16 storage"
                )));
            }
            main.pack_rows(first_row, columns(w, n_in, 0..n_main, &mut part)?)?;
            if let Some(c) = cond.as_mut() {
                c.pack_rows(first_row, columns(w, n_in, n_main..n_in, &mut part)?)?;
            }
            Ok(())
        })?;
        Ok(Dense {
            n_in,
            n_out,
            packed: main.finish(),
            cond_part: cond.map(WeightPacker::finish),
            bias: None,
            activations: Array::default(),
            fuse_relu: false,
        })
    }

    /// The layer on `m` rows of `input` (the passive part, row stride `ld_in`) into `out`
    /// (row stride `ld_out`). A layer with a condition part takes the rows' conditions and a
    /// scratch of at least `m × n_out` floats for the condition's part (see the module doc).
    #[allow(clippy::too_many_arguments)]
    fn forward(
        &self,
        isa: Available,
        m: usize,
        input: &[f32],
        ld_in: usize,
        cond: Option<(CondRows<'_>, &mut [f32])>,
        out: &mut [f32],
        ld_out: usize,
    ) {
        let n_main = self.packed.k();
        let epilogue = if self.fuse_relu {
            Epilogue::Relu
        } else {
            Epilogue::None
        };
        let a = Rows::new(input, m, n_main, ld_in).checked();
        match (&self.cond_part, cond) {
            (Some(packed), Some((c, scratch))) => {
                // The condition's part W_c·c, once per condition row the rows read (with the
                // bias for a layer of the condition alone, whose rows are then copies of it).
                let span = c.span(m);
                let (rows, k) = (span.len(), packed.k());
                let part = &mut scratch[..rows * self.n_out];
                let a_c = Rows::new(&c.data[span.start * c.width..], rows, k, c.width).checked();
                let bias = if n_main > 0 {
                    None
                } else {
                    self.bias.as_deref()
                };
                let product = Product::new(a_c, packed).bias(bias);
                let part_out = RowsMut::new(part, rows, self.n_out, self.n_out);
                gemm::gemm(isa, product, part_out.checked()).checked();
                let first = c.first - span.start * c.repeat;
                if n_main > 0 {
                    let part = Rows::new(part, rows, self.n_out, self.n_out);
                    let added = AddedRows::new(part.checked(), first, c.repeat);
                    let product = Product::new(a, &self.packed)
                        .bias(self.bias.as_deref())
                        .add_rows(added.checked())
                        .epilogue(epilogue);
                    let out = RowsMut::new(&mut *out, m, self.n_out, ld_out);
                    gemm::gemm(isa, product, out.checked()).checked();
                } else {
                    // The condition alone (ConditionalAffineTransform): each row is its part.
                    for row in 0..m {
                        let from = (first + row) / c.repeat * self.n_out;
                        out[row * ld_out..row * ld_out + self.n_out]
                            .copy_from_slice(&part[from..from + self.n_out]);
                    }
                }
            }
            _ => {
                let product = Product::new(a, &self.packed)
                    .bias(self.bias.as_deref())
                    .epilogue(epilogue);
                let out = RowsMut::new(&mut *out, m, self.n_out, ld_out).checked();
                gemm::gemm(isa, product, out).checked();
            }
        }
        if self.fuse_relu {
            return;
        }
        for act in &self.activations {
            for row in 0..m {
                act.apply(&mut out[row * ld_out..row * ld_out + self.n_out]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    /// A file holding one weight `w`, `[n][k]`, and its values.
    fn weight_file(n: usize, k: usize) -> (Vec<u8>, Vec<f32>) {
        let w: Vec<f32> = (0..n * k)
            .map(|i| ((i * 7919) % 201) as f32 / 100.0 - 1.0)
            .collect();
        let bytes: Vec<u8> = w.iter().flat_map(|v| v.to_le_bytes()).collect();
        let view = safetensors::tensor::TensorView::new(
            safetensors::tensor::Dtype::F32,
            vec![n, k],
            &bytes,
        )
        .unwrap();
        let file = safetensors::serialize([("w", view)], None).unwrap();
        (file, w)
    }

    #[test]
    // Too slow under Miri (more than 10 s interpreted; scripts/miri.sh runs the rest).
    #[cfg_attr(miri, ignore)]
    fn a_weight_packed_block_by_block_computes_as_the_whole_matrix() {
        // Several blocks of rows (the last one a partial panel), with and without condition
        // columns, a condition-only layer, and one row.
        for (n, k, n_cond) in [(1000, 35, 3), (130, 300, 0), (17, 5, 5), (1, 1, 0)] {
            let (file, w) = weight_file(n, k);
            let src = Source::parse(&file, usize::MAX).unwrap();
            let dense = Dense::load(&src, "w", n, k, n_cond).unwrap();
            let m = 3;
            let n_main = k - n_cond;
            let x: Vec<f32> = (0..m * n_main).map(|i| (i as f32 * 0.3).sin()).collect();
            let c: Vec<f32> = (0..m * n_cond).map(|i| (i as f32 * 0.7).cos()).collect();
            let mut out = vec![0.0; m * n];
            let mut scratch = vec![0.0; m * n];
            let rows = CondRows {
                data: &c,
                width: n_cond,
                first: 0,
                repeat: 1,
            };
            let cond = (n_cond > 0).then_some((rows, &mut scratch[..]));
            dense.forward(
                gemm::Isa::Portable.available().unwrap(),
                m,
                &x,
                n_main,
                cond,
                &mut out,
                n,
            );
            for r in 0..m {
                for i in 0..n {
                    let row = &w[i * k..(i + 1) * k];
                    let input = x[r * n_main..(r + 1) * n_main]
                        .iter()
                        .chain(&c[r * n_cond..(r + 1) * n_cond]);
                    let want: f32 = row.iter().zip(input).map(|(a, b)| a * b).sum();
                    let got = out[r * n + i];
                    assert!(
                        (got - want).abs() <= 1e-4 * (1.0 + want.abs()),
                        "{n}×{k} (cond {n_cond}), row {r}, output {i}: {got} vs {want}"
                    );
                }
            }
        }
    }

    /// Rows that share a condition row (the samples of one observation) get the bits they get
    /// with a copy of it each, on every ISA, whichever row of its run a call starts at, for a
    /// layer with a passive part and for a layer of the condition alone.
    #[test]
    // Too slow under Miri (more than 10 s interpreted; scripts/miri.sh runs the rest).
    #[cfg_attr(miri, ignore)]
    fn a_shared_condition_gives_the_bits_of_a_condition_per_row() {
        for (n, k, n_cond) in [(64, 10, 8), (40, 3, 3), (4, 7, 5), (6, 5, 5)] {
            let (file, _) = weight_file(n, k);
            let src = Source::parse(&file, usize::MAX).unwrap();
            let mut dense = Dense::load(&src, "w", n, k, n_cond).unwrap();
            dense.bias = Some((0..n).map(|i| i as f32 * 0.01 - 0.2).collect());
            let n_main = k - n_cond;
            let m = 29;
            let x: Vec<f32> = (0..m * n_main).map(|i| (i as f32 * 0.3).sin()).collect();
            // Five observations' conditions; rows `first..first + m` of runs of 7 samples each.
            let observations: Vec<f32> = (0..5 * n_cond).map(|i| (i as f32 * 0.7).cos()).collect();
            for first in [0, 3, 6] {
                let per_row: Vec<f32> = (0..m)
                    .flat_map(|i| {
                        let o = (first + i) / 7;
                        observations[o * n_cond..(o + 1) * n_cond].to_vec()
                    })
                    .collect();
                for isa in gemm::Isa::ALL.into_iter().filter_map(gemm::Isa::available) {
                    let run = |cond: CondRows<'_>| {
                        let (mut out, mut scratch) = (vec![0.0; m * n], vec![f32::NAN; m * n]);
                        dense.forward(isa, m, &x, n_main, Some((cond, &mut scratch)), &mut out, n);
                        out.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
                    };
                    let shared = run(CondRows {
                        data: &observations,
                        width: n_cond,
                        first,
                        repeat: 7,
                    });
                    let own = run(CondRows {
                        data: &per_row,
                        width: n_cond,
                        first: 0,
                        repeat: 1,
                    });
                    assert!(
                        shared == own,
                        "{isa:?} {n}×{k} (cond {n_cond}), first row {first}"
                    );
                }
            }
        }
    }
}
