//! FrEIA's coupling blocks: GLOW, RNVP, NICE, GIN, AffineCouplingOneSided and
//! ConditionalAffineTransform (docs/blocks.md §glowcouplingblock … §conditionalaffinetransform).
//!
//! All of them are one or two *halves*: a subnet reads the passive columns (plus the condition)
//! and its output transforms the active columns in place. The blocks differ only in which
//! subnets produce the coefficients and in what is done with them.

use crate::model::packed::array::Array;
use alloc::format;
use alloc::vec::Vec;

use super::subnet::Subnet;
use super::{BlockSpec, Plan, Work};
use crate::error::{Error, Result};
use crate::kernels::math::{self, SoftClamp};
use crate::model::packed::image::{Reader, Writer};
use crate::source::budget::try_with_capacity;

/// The coupling kinds, by their code in a packed image.
const KINDS: [&str; 6] = [
    "GLOWCouplingBlock",
    "GINCouplingBlock",
    "RNVPCouplingBlock",
    "NICECouplingBlock",
    "AffineCouplingOneSided",
    "ConditionalAffineTransform",
];

/// The soft clamps, by their code in a packed image.
const SOFT_CLAMPS: [SoftClamp; 3] = [
    SoftClamp::Atan,
    SoftClamp::Tanh { divide: false },
    SoftClamp::Sigmoid,
];

/// The `clamp_activation` of a coupling block (docs/blocks.md §soft-clamp): ATAN (the default), TANH or
/// SIGMOID.
fn parse_soft_clamp(spec: &BlockSpec<'_, '_>) -> Result<SoftClamp> {
    let key = spec.key("clamp_activation");
    match spec.src.meta(&key).map(str::trim) {
        None | Some("ATAN") => Ok(SoftClamp::Atan),
        Some("TANH") => Ok(SoftClamp::Tanh { divide: false }),
        Some("SIGMOID") => Ok(SoftClamp::Sigmoid),
        Some(v) => Err(spec
            .src
            .bad_meta(&key, format!("`{v}` is not ATAN, TANH or SIGMOID"))),
    }
}

/// How a half's subnets produce its coefficients.
enum Conditioner {
    /// One subnet whose output is `[s, t]` (GLOW, GIN, one-sided, conditional affine).
    Joint(Subnet),
    /// Separate subnets for `s` and `t` (RNVP).
    Split { s: Subnet, t: Subnet },
    /// One subnet giving an additive shift only (NICE).
    Shift(Subnet),
}

struct Half {
    active: (usize, usize),
    passive: (usize, usize),
    conditioner: Conditioner,
}

/// A coupling block.
pub(crate) struct Coupling {
    kind: &'static str,
    /// Halves in forward order.
    halves: Array<Half>,
    clamp: f32,
    soft_clamp: SoftClamp,
    /// GIN: log-scales centred per row, volume preserving.
    gin: bool,
    cond: bool,
}

/// `round(d · fraction)` with Python's ties-to-even, as FrEIA computes `split_len1`.
pub(crate) fn round_half_even(value: f64) -> f64 {
    let floor = libm::floor(value);
    let diff = value - floor;
    let round_up = diff > 0.5 || (diff == 0.5 && libm::fmod(floor, 2.0) != 0.0);
    if round_up { floor + 1.0 } else { floor }
}

fn split_length(spec: &BlockSpec<'_, '_>) -> Result<usize> {
    let key = spec.key("split");
    let d = spec.dim;
    let l1 = match spec.src.meta(&key).map(str::trim) {
        None => round_half_even(d as f64 * 0.5) as usize,
        Some(v) if !v.contains(['.', 'e', 'E']) => v.parse::<usize>().map_err(|_| {
            spec.src
                .bad_meta(&key, format!("`{v}` is not an integer or fraction"))
        })?,
        Some(v) => {
            let frac: f64 = v
                .parse()
                .ok()
                .filter(|f: &f64| f.is_finite() && *f >= 0.0)
                .ok_or_else(|| spec.src.bad_meta(&key, format!("`{v}` is not a fraction")))?;
            round_half_even(d as f64 * frac) as usize
        }
    };
    if l1 == 0 || l1 >= d {
        return Err(Error::Dims(format!(
            "block {}: split length {l1} leaves an empty half of a {d}-wide input",
            spec.index
        )));
    }
    Ok(l1)
}

impl Coupling {
    pub(crate) fn load(spec: &BlockSpec<'_, '_>, kind: &str) -> Result<Coupling> {
        let cc = spec.cond_dim;
        let d = spec.dim;
        let subnet = |name: &str, n_passive: usize, n_out: usize| {
            Subnet::load(spec.src, spec.index, name, n_passive + cc, cc, n_out)
        };
        // NICE only shifts: it has no clamp, and a file must not give it one.
        let (clamp, soft_clamp) = if kind == "NICECouplingBlock" {
            (1.0, SoftClamp::Atan)
        } else {
            (spec.clamp()?, parse_soft_clamp(spec)?)
        };
        let two_sided = |l1: usize,
                         make: &dyn Fn(usize, usize, bool) -> Result<Conditioner>|
         -> Result<Vec<Half>> {
            let l2 = d - l1;
            let mut halves = try_with_capacity("a coupling's halves", 2)?;
            halves.push(Half {
                active: (0, l1),
                passive: (l1, l2),
                conditioner: make(l2, l1, true)?,
            });
            halves.push(Half {
                active: (l1, l2),
                passive: (0, l1),
                conditioner: make(l1, l2, false)?,
            });
            Ok(halves)
        };
        let one = |half: Half| -> Result<Vec<Half>> {
            let mut halves = try_with_capacity("a coupling's half", 1)?;
            halves.push(half);
            Ok(halves)
        };
        let (kind, halves, gin): (&'static str, Vec<Half>, bool) = match kind {
            "GLOWCouplingBlock" | "GINCouplingBlock" => {
                let l1 = split_length(spec)?;
                let halves = two_sided(l1, &|n_pas, n_act, first| {
                    let name = if first { "subnet2" } else { "subnet1" };
                    Ok(Conditioner::Joint(subnet(name, n_pas, 2 * n_act)?))
                })?;
                if kind == "GINCouplingBlock" {
                    ("GINCouplingBlock", halves, true)
                } else {
                    ("GLOWCouplingBlock", halves, false)
                }
            }
            "RNVPCouplingBlock" => {
                let l1 = split_length(spec)?;
                let halves = two_sided(l1, &|n_pas, n_act, first| {
                    let (s, t) = if first {
                        ("subnet_s2", "subnet_t2")
                    } else {
                        ("subnet_s1", "subnet_t1")
                    };
                    Ok(Conditioner::Split {
                        s: subnet(s, n_pas, n_act)?,
                        t: subnet(t, n_pas, n_act)?,
                    })
                })?;
                ("RNVPCouplingBlock", halves, false)
            }
            "NICECouplingBlock" => {
                let l1 = split_length(spec)?;
                let halves = two_sided(l1, &|n_pas, n_act, first| {
                    let name = if first { "F" } else { "G" };
                    Ok(Conditioner::Shift(subnet(name, n_pas, n_act)?))
                })?;
                ("NICECouplingBlock", halves, false)
            }
            "AffineCouplingOneSided" => {
                let l1 = split_length(spec)?;
                let l2 = d - l1;
                let half = Half {
                    active: (l1, l2),
                    passive: (0, l1),
                    conditioner: Conditioner::Joint(subnet("subnet", l1, 2 * l2)?),
                };
                ("AffineCouplingOneSided", one(half)?, false)
            }
            _ => {
                if cc == 0 {
                    return Err(spec.src.bad_meta(
                        &spec.key("cond"),
                        "ConditionalAffineTransform needs a condition",
                    ));
                }
                let half = Half {
                    active: (0, d),
                    passive: (0, 0),
                    conditioner: Conditioner::Joint(subnet("subnet", 0, 2 * d)?),
                };
                ("ConditionalAffineTransform", one(half)?, false)
            }
        };
        Ok(Coupling {
            kind,
            halves: halves.into(),
            clamp,
            soft_clamp,
            gin,
            cond: cc > 0,
        })
    }

    /// Writes the block into a packed image (docs/format.md, "Packed images").
    pub(crate) fn to_image(&self, w: &mut Writer) -> Result<()> {
        let code = |found: Option<usize>| {
            found.ok_or(Error::Argument(
                "a coupling block of a kind images do not know",
            ))
        };
        w.count(code(KINDS.iter().position(|&k| k == self.kind))?)?;
        w.f32(self.clamp);
        w.count(code(
            SOFT_CLAMPS.iter().position(|&c| c == self.soft_clamp),
        )?)?;
        w.flag(self.cond);
        w.count(self.halves.len())?;
        for half in &self.halves {
            for v in [half.active.0, half.active.1, half.passive.0, half.passive.1] {
                w.count(v)?;
            }
            match &half.conditioner {
                Conditioner::Joint(s) => {
                    w.word(0);
                    s.to_image(w)?;
                }
                Conditioner::Split { s, t } => {
                    w.word(1);
                    s.to_image(w)?;
                    t.to_image(w)?;
                }
                Conditioner::Shift(s) => {
                    w.word(2);
                    s.to_image(w)?;
                }
            }
        }
        Ok(())
    }

    /// Reads the block from a packed image: `d` wide, its subnets taking `cond_dim` condition
    /// values if it takes the condition; every half's columns lie in the `d`.
    pub(crate) fn from_image(r: &mut Reader<'_>, d: usize, cond_dim: usize) -> Result<Coupling> {
        let kind = *KINDS
            .get(r.count()?)
            .ok_or_else(|| r.invalid("unknown coupling kind"))?;
        let clamp = r.f32()?;
        let soft_clamp = *SOFT_CLAMPS
            .get(r.count()?)
            .ok_or_else(|| r.invalid("unknown soft clamp"))?;
        let cond = r.flag()?;
        let cc = if cond { cond_dim } else { 0 };
        if cond && cc == 0 {
            return Err(r.invalid("a block takes a condition the model does not have"));
        }
        let count = r.count()?;
        if !(1..=2).contains(&count) {
            return Err(r.invalid("a coupling block has not 1 or 2 halves"));
        }
        let halves = r.array(count, |r| {
            let mut span = || -> Result<(usize, usize)> {
                let (start, len) = (r.count()?, r.count()?);
                match start.checked_add(len) {
                    Some(end) if end <= d => Ok((start, len)),
                    _ => Err(r.invalid("a half's columns run past the block's width")),
                }
            };
            let (active, passive) = (span()?, span()?);
            if active.1 == 0 {
                return Err(r.invalid("a half has no active columns"));
            }
            let n_in = passive.1 + cc;
            let l = active.1;
            let conditioner = match r.word()? {
                0 => Conditioner::Joint(Subnet::from_image(r, n_in, cc, 2 * l)?),
                1 => Conditioner::Split {
                    s: Subnet::from_image(r, n_in, cc, l)?,
                    t: Subnet::from_image(r, n_in, cc, l)?,
                },
                2 => Conditioner::Shift(Subnet::from_image(r, n_in, cc, l)?),
                _ => return Err(r.invalid("unknown conditioner")),
            };
            Ok(Half {
                active,
                passive,
                conditioner,
            })
        })?;
        Ok(Coupling {
            kind,
            halves,
            clamp,
            soft_clamp,
            gin: kind == "GINCouplingBlock",
            cond,
        })
    }

    pub(crate) fn kind_name(&self) -> &'static str {
        self.kind
    }

    pub(crate) fn takes_condition(&self) -> bool {
        self.cond
    }

    pub(crate) fn subnets(&self) -> impl Iterator<Item = &Subnet> {
        self.halves
            .iter()
            .flat_map(|h| match &h.conditioner {
                Conditioner::Joint(s) | Conditioner::Shift(s) => [Some(s), None],
                Conditioner::Split { s, t } => [Some(s), Some(t)],
            })
            .flatten()
    }

    pub(crate) fn plan(&self) -> Plan {
        let hidden = self.subnets().map(Subnet::max_hidden).max().unwrap_or(0);
        let subnet_out = self
            .halves
            .iter()
            .map(|h| 2 * h.active.1)
            .max()
            .unwrap_or(0);
        Plan { hidden, subnet_out }
    }

    pub(crate) fn parameter_count(&self) -> usize {
        self.subnets().map(Subnet::parameter_count).sum()
    }

    pub(crate) fn run(
        &self,
        work: &mut Work<'_>,
        state: &mut [f32],
        logdet: &mut [f32],
        rev: bool,
    ) {
        let m = work.m;
        let d = state.len() / m.max(1);
        // Per-row sum of the halves' log-determinants, in FrEIA's order (j1 + j2).
        work.jac[..m].fill(0.0);
        let order: &mut dyn Iterator<Item = &Half> = if rev {
            &mut self.halves.iter().rev()
        } else {
            &mut self.halves.iter()
        };
        for half in order {
            self.run_half(work, half, state, d, rev);
        }
        for (ld, j) in logdet[..m].iter_mut().zip(work.jac.iter()) {
            *ld += *j;
        }
    }

    fn run_half(&self, work: &mut Work<'_>, half: &Half, state: &mut [f32], d: usize, rev: bool) {
        let mut r0 = 0;
        while r0 < work.m {
            let rows = work.tile.min(work.m - r0);
            self.run_half_tile(work, half, state, d, rev, r0, rows);
            r0 += rows;
        }
    }

    /// Rows `r0 .. r0 + rows` of one half: the subnet(s), then the coupling update.
    #[allow(clippy::too_many_arguments)]
    fn run_half_tile(
        &self,
        work: &mut Work<'_>,
        half: &Half,
        state: &mut [f32],
        d: usize,
        rev: bool,
        r0: usize,
        m: usize,
    ) {
        let (act_off, l) = half.active;
        let width = 2 * l;
        let passive = &state[r0 * d + half.passive.0..];
        let (isa, cond) = (work.isa, work.cond);
        let cond = cond.map(|c| c.skip_rows(r0));
        let (h0, h1) = (&mut *work.hidden.0, &mut *work.hidden.1);
        let coeffs = &mut work.coeffs[..m * width];
        match &half.conditioner {
            Conditioner::Joint(net) => net.run(isa, m, passive, d, cond, (h0, h1), coeffs, width),
            Conditioner::Split { s, t } => {
                s.run(
                    isa,
                    m,
                    passive,
                    d,
                    cond,
                    (&mut *h0, &mut *h1),
                    coeffs,
                    width,
                );
                t.run(isa, m, passive, d, cond, (h0, h1), &mut coeffs[l..], width);
            }
            Conditioner::Shift(net) => {
                net.run(isa, m, passive, d, cond, (h0, h1), coeffs, l);
                let state = &mut state[r0 * d..];
                for row in 0..m {
                    let shift = &coeffs[row * l..row * l + l];
                    let x = &mut state[row * d + act_off..row * d + act_off + l];
                    if rev {
                        x.iter_mut().zip(shift).for_each(|(x, t)| *x -= *t);
                    } else {
                        x.iter_mut().zip(shift).for_each(|(x, t)| *x += *t);
                    }
                }
                return;
            }
        }
        if m == 1 && !self.gin {
            // One row (batch 1): clamp, exponential and update fused, in place.
            let (s, t) = coeffs.split_at_mut(l);
            let x = &mut state[r0 * d + act_off..r0 * d + act_off + l];
            math::coupling_row(isa, s, t, x, self.soft_clamp, self.clamp, rev);
            let sum: f32 = s.iter().sum();
            work.jac[r0] += if rev { -sum } else { sum };
            return;
        }
        // Gather the raw log-scales of the tile into one contiguous run, so the soft clamp and
        // the exponential are vectorised over rows × l.
        let sbuf = &mut work.sbuf[..m * l];
        for (dst, row) in sbuf.chunks_exact_mut(l).zip(coeffs.chunks_exact(width)) {
            dst.copy_from_slice(&row[..l]);
        }
        let padded = math::vector_padded(m * l, work.sbuf);
        let lanes = &mut work.sbuf[..padded];
        math::soft_clamp_slice(isa, lanes, self.soft_clamp, self.clamp);
        let sbuf = &mut work.sbuf[..m * l];
        let jac = &mut work.jac[r0..r0 + m];
        for (s, j) in sbuf.chunks_exact_mut(l).zip(jac.iter_mut()) {
            if self.gin {
                let mean = s.iter().sum::<f32>() / l as f32;
                s.iter_mut().for_each(|v| *v -= mean);
            } else {
                let sum: f32 = s.iter().sum();
                *j += if rev { -sum } else { sum };
            }
        }
        math::exp_scaled_slice(isa, &mut work.sbuf[..padded], if rev { -1.0 } else { 1.0 });
        let sbuf = &work.sbuf[..m * l];
        let state = &mut state[r0 * d..];
        for row in 0..m {
            let e = &sbuf[row * l..row * l + l];
            let t = &coeffs[row * width + l..row * width + width];
            let x = &mut state[row * d + act_off..row * d + act_off + l];
            if rev {
                for ((x, e), t) in x.iter_mut().zip(e).zip(t) {
                    *x = (*x - *t) * *e;
                }
            } else {
                for ((x, e), t) in x.iter_mut().zip(e).zip(t) {
                    *x = *e * *x + *t;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::round_half_even;

    #[test]
    fn split_lengths_round_like_python() {
        let l1 = |d: usize| round_half_even(d as f64 * 0.5) as usize;
        assert_eq!(
            [l1(1), l1(3), l1(5), l1(7), l1(9), l1(11), l1(16)],
            [0, 2, 2, 4, 4, 6, 8]
        );
    }
}
