//! Turns a [`BlockSpec`] into operations, parameter ranges, initial values and the
//! description the exporter writes (FrEIA `state_dict` names, docs/format.md §4).

use crate::prelude::*;

use super::float::Float;
use super::mixing::Mixing;
use super::ops::Op;
use super::ops::affine::{AffineKind, ChannelAffine};
use super::ops::half::{ClampActivation, Conditioner, Half, LogScale};
use super::ops::permute::Permutation;
use super::params::ParamLayout;
use super::spec::{BlockKind, BlockSpec, SubnetSpec};
use super::subnet::Mlp;
use crate::rng::Rng;

/// Where an exported tensor's values come from.
#[derive(Clone, Debug)]
pub(crate) enum TensorSource {
    /// `len` parameters from `offset`.
    Params {
        offset: usize,
        len: usize,
    },
    Index(Vec<i64>),
    Flag(bool),
}

/// One tensor of a block's `state_dict`.
#[derive(Clone, Debug)]
pub(crate) struct TensorDesc {
    /// Relative to `module_list.{i}.`.
    pub(crate) name: String,
    pub(crate) shape: Vec<usize>,
    pub(crate) source: TensorSource,
}

/// A built block.
#[derive(Clone, Debug)]
pub(crate) struct BlockLayout {
    pub(crate) spec: BlockSpec,
    /// Its operations in the chain's op list.
    pub(crate) ops: core::ops::Range<usize>,
    /// Metadata keys relative to `innfer.block.{i}.`.
    pub(crate) meta: Vec<(String, String)>,
    pub(crate) tensors: Vec<TensorDesc>,
    /// (offset, value) pairs to set at initialisation besides the subnets.
    pub(crate) init_values: Vec<(usize, usize, f64)>,
    /// Subnets, with their attribute names.
    pub(crate) subnets: Vec<(String, Mlp)>,
}

/// `round(d/2)` with Python's ties-to-even, FrEIA's `split_len1` (docs/blocks.md §split).
pub(crate) fn coupling_split(d: usize) -> usize {
    let half = d / 2;
    if d % 2 == 1 && half % 2 == 1 {
        half + 1
    } else {
        half
    }
}

/// The AllInOneBlock SOFTPLUS pre-activation `a0` with Ψ(a0) = 1: `2·ln(e⁵ − 1)`.
pub(crate) const ALL_IN_ONE_SCALE_INIT: f64 = 9.986_478_501_101_022;

struct Builder<'a> {
    layout: &'a mut ParamLayout,
    subnet: &'a SubnetSpec,
    cond_dim: usize,
    block: BlockLayout,
}

impl Builder<'_> {
    fn mlp(&mut self, name: &str, n_passive: usize, n_out: usize) -> Mlp {
        let cc = if self.block.spec.cond {
            self.cond_dim
        } else {
            0
        };
        let net = Mlp::new(
            self.layout,
            n_passive + cc,
            &self.subnet.hidden,
            n_out,
            self.subnet.activation,
        );
        for (k, l) in net.layers.iter().enumerate() {
            self.block.tensors.push(TensorDesc {
                name: format!("{name}.{}.weight", 2 * k),
                shape: vec![l.n_out, l.n_in],
                source: TensorSource::Params {
                    offset: l.weight,
                    len: l.n_in * l.n_out,
                },
            });
            self.block.tensors.push(TensorDesc {
                name: format!("{name}.{}.bias", 2 * k),
                shape: vec![l.n_out],
                source: TensorSource::Params {
                    offset: l.bias,
                    len: l.n_out,
                },
            });
        }
        self.block
            .meta
            .push((format!("subnet.{name}"), net.format_spec()));
        self.block.subnets.push((name.to_string(), net.clone()));
        net
    }

    fn channels(&mut self, name: &str, d: usize, init: f64) -> usize {
        let offset = self.layout.take(d);
        self.block.tensors.push(TensorDesc {
            name: name.into(),
            shape: vec![1, d],
            source: TensorSource::Params { offset, len: d },
        });
        self.block.init_values.push((offset, d, init));
        offset
    }

    fn meta(&mut self, key: &str, value: impl ToString) {
        self.block.meta.push((key.into(), value.to_string()));
    }

    fn coupling_meta(&mut self, clamp: f64, activation: ClampActivation, l1: Option<usize>) {
        self.meta("clamp", format!("{clamp:?}"));
        self.meta("clamp_activation", activation.format_name());
        if let Some(l1) = l1 {
            self.meta("split", l1);
        }
    }
}

/// Builds block `spec` of a `d`-wide chain: appends its operations to `ops`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn build(
    spec: BlockSpec,
    d: usize,
    cond_dim: usize,
    subnet: &SubnetSpec,
    layout: &mut ParamLayout,
    mixing: &mut Mixing<'_>,
    ops: &mut Vec<Op>,
) -> BlockLayout {
    let first_op = ops.len();
    let mut b = Builder {
        layout,
        subnet,
        cond_dim,
        block: BlockLayout {
            spec,
            ops: 0..0,
            meta: vec![("type".into(), spec.kind.freia_name().into())],
            tensors: Vec::new(),
            init_values: Vec::new(),
            subnets: Vec::new(),
        },
    };
    if spec.cond {
        b.meta("cond", 0);
    }
    let cond = spec.cond;
    let half = |active, passive, conditioner, log_scale| {
        Op::Half(Half {
            active,
            passive,
            cond,
            conditioner,
            log_scale,
            output_scale: 1.0,
        })
    };
    match spec.kind {
        BlockKind::AllInOne { clamp } => {
            let l2 = d / 2;
            let l1 = d - l2;
            b.meta("clamp", format!("{clamp:?}"));
            b.meta("gin_block", "false");
            b.meta("global_affine_type", "SOFTPLUS");
            b.meta("permutation", "hard");
            b.meta("reverse_permutation", "false");
            let net = b.mlp("subnet", l1, 2 * l2);
            let scale = b.channels("global_scale", d, ALL_IN_ONE_SCALE_INIT);
            let offset = b.channels("global_offset", d, 0.0);
            mixing.coupling(0..l1);
            let permutation = Permutation::new(mixing.permutation());
            b.block.tensors.push(TensorDesc {
                name: "w_perm".into(),
                shape: vec![d],
                source: TensorSource::Index(
                    permutation.forward.iter().map(|&p| p as i64).collect(),
                ),
            });
            b.block.tensors.push(TensorDesc {
                name: "w_perm_inv".into(),
                shape: vec![d],
                source: TensorSource::Index(
                    permutation.inverse.iter().map(|&p| p as i64).collect(),
                ),
            });
            ops.push(Op::Half(Half {
                active: (l1, l2),
                passive: (0, l1),
                cond,
                conditioner: Conditioner::Joint(net),
                log_scale: LogScale::AllInOne { alpha: clamp },
                output_scale: 0.1,
            }));
            ops.push(Op::Affine(ChannelAffine {
                kind: AffineKind::AllInOneSoftplus { scale, offset },
                d,
            }));
            ops.push(Op::Permute(permutation));
        }
        BlockKind::Glow { clamp, activation } | BlockKind::Rnvp { clamp, activation } => {
            let l1 = coupling_split(d);
            let l2 = d - l1;
            b.coupling_meta(clamp, activation, Some(l1));
            let ls = LogScale::Coupling {
                clamp,
                f: activation,
            };
            let (first, second) = if matches!(spec.kind, BlockKind::Glow { .. }) {
                (
                    Conditioner::Joint(b.mlp("subnet2", l2, 2 * l1)),
                    Conditioner::Joint(b.mlp("subnet1", l1, 2 * l2)),
                )
            } else {
                (
                    Conditioner::Split {
                        s: b.mlp("subnet_s2", l2, l1),
                        t: b.mlp("subnet_t2", l2, l1),
                    },
                    Conditioner::Split {
                        s: b.mlp("subnet_s1", l1, l2),
                        t: b.mlp("subnet_t1", l1, l2),
                    },
                )
            };
            ops.push(half((0, l1), (l1, l2), first, ls));
            ops.push(half((l1, l2), (0, l1), second, ls));
            mixing.coupling(0..0);
        }
        BlockKind::Nice => {
            let l1 = coupling_split(d);
            let l2 = d - l1;
            b.meta("split", l1);
            let f = b.mlp("F", l2, l1);
            let g = b.mlp("G", l1, l2);
            ops.push(half(
                (0, l1),
                (l1, l2),
                Conditioner::Shift(f),
                LogScale::None,
            ));
            ops.push(half(
                (l1, l2),
                (0, l1),
                Conditioner::Shift(g),
                LogScale::None,
            ));
            mixing.coupling(0..0);
        }
        BlockKind::OneSided { clamp, activation } => {
            let l1 = coupling_split(d);
            let l2 = d - l1;
            b.coupling_meta(clamp, activation, Some(l1));
            let net = b.mlp("subnet", l1, 2 * l2);
            let ls = LogScale::Coupling {
                clamp,
                f: activation,
            };
            ops.push(half((l1, l2), (0, l1), Conditioner::Joint(net), ls));
            mixing.coupling(0..l1);
        }
        BlockKind::ConditionalAffine { clamp, activation } => {
            b.coupling_meta(clamp, activation, None);
            let net = b.mlp("subnet", 0, 2 * d);
            let ls = LogScale::Coupling {
                clamp,
                f: activation,
            };
            ops.push(half((0, d), (0, 0), Conditioner::Joint(net), ls));
            mixing.coupling(0..0);
        }
        BlockKind::ActNorm => {
            let log_scale = b.channels("log_scale", d, 0.0);
            let loc = b.channels("loc", d, 0.0);
            b.block.tensors.push(TensorDesc {
                name: "is_initialized".into(),
                shape: vec![],
                source: TensorSource::Flag(true),
            });
            ops.push(Op::Affine(ChannelAffine {
                kind: AffineKind::ActNorm { log_scale, loc },
                d,
            }));
        }
        BlockKind::PermuteRandom => {
            let permutation = Permutation::new(mixing.permutation());
            for (name, index) in [
                ("perm", &permutation.forward),
                ("perm_inv", &permutation.inverse),
            ] {
                b.block.tensors.push(TensorDesc {
                    name: name.into(),
                    shape: vec![d],
                    source: TensorSource::Index(index.iter().map(|&p| p as i64).collect()),
                });
            }
            ops.push(Op::Permute(permutation));
        }
    }
    b.block.ops = first_op..ops.len();
    b.block
}

/// Sets a built block's initial parameter values.
pub(crate) fn initialise<F: Float>(
    block: &BlockLayout,
    subnet: &SubnetSpec,
    params: &mut [F],
    rng: &mut Rng,
) {
    for (_, net) in &block.subnets {
        net.init(params, rng, subnet.last_layer_scale);
    }
    for &(offset, len, value) in &block.init_values {
        params[offset..offset + len].fill(F::from_f64(value));
    }
}
