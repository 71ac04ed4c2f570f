//! The maps between the caller's units and the network's, besides the standardisation
//! (docs/format.md §3.1):
//!
//! - an [`XTransform`] per parameter: the network models an unbounded coordinate `u` of a
//!   parameter `x` that may be bounded (`log`: `x > lower`; `logit`: `lower < x < upper`), so
//!   samples lie inside the bounds whatever the network puts out;
//! - a [`YTransform`] of the condition: `clr`, the centred log-ratio of raw positive values
//!   (camera bands), which takes out a common scale of the observation exactly.
//!
//! The session applies them (src/session/mod.rs) and the trainer trains behind them
//! (src/train/trainer.rs), with the same functions, so a trained model and its exported file
//! agree.

use alloc::format;
use alloc::vec::Vec;

use crate::error::{Error, Result};
use crate::kernels::math::{exp, ln, log1p};
use crate::model::Layout;
use crate::source::Source;

/// The metadata keys of the transforms (docs/format.md §2).
pub(crate) const X_TRANSFORM_KEY: &str = "innfer.x_transform";
pub(crate) const X_LOWER_KEY: &str = "innfer.x_lower";
pub(crate) const X_UPPER_KEY: &str = "innfer.x_upper";
pub(crate) const Y_TRANSFORM_KEY: &str = "innfer.y_transform";

/// The kind of an [`XTransform`], as `innfer.x_transform` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XTransformKind {
    /// `u = x`.
    Identity,
    /// `u = ln(x − lower)`; `x = lower + eᵘ`.
    Log,
    /// `u = ln((x − lower)/(upper − x))`; `x = lower + (upper − lower)·σ(u)`.
    Logit,
}

impl XTransformKind {
    /// The name in `innfer.x_transform`.
    pub fn name(self) -> &'static str {
        match self {
            XTransformKind::Identity => "identity",
            XTransformKind::Log => "log",
            XTransformKind::Logit => "logit",
        }
    }

    fn parse(name: &str) -> Option<XTransformKind> {
        match name {
            "identity" => Some(XTransformKind::Identity),
            "log" => Some(XTransformKind::Log),
            "logit" => Some(XTransformKind::Logit),
            _ => None,
        }
    }

    fn has_lower(self) -> bool {
        self != XTransformKind::Identity
    }

    fn has_upper(self) -> bool {
        self == XTransformKind::Logit
    }
}

/// The map of one parameter `x` to the unbounded coordinate `u` the network (behind its
/// standardisation) models. Its bounds are finite, and for `logit` `lower < upper` with
/// `upper − lower` finite in f32.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct XTransform {
    kind: XTransformKind,
    lower: f32,
    upper: f32,
    /// `upper − lower` (logit).
    width: f32,
    /// `ln(upper − lower)` (logit), the constant of both log-Jacobians.
    ln_width: f32,
}

impl XTransform {
    /// `u = x`.
    pub const IDENTITY: XTransform = XTransform {
        kind: XTransformKind::Identity,
        lower: 0.0,
        upper: 0.0,
        width: 0.0,
        ln_width: 0.0,
    };

    /// `x > lower`: `u = ln(x − lower)`. `lower` must be finite.
    pub fn log(lower: f32) -> Result<XTransform> {
        if !lower.is_finite() {
            return Err(Error::Argument(
                "a log transform's lower bound must be finite",
            ));
        }
        Ok(XTransform {
            kind: XTransformKind::Log,
            lower,
            ..XTransform::IDENTITY
        })
    }

    /// `lower < x < upper`: `u = ln((x − lower)/(upper − x))`. Both bounds finite,
    /// `lower < upper`, and `upper − lower` finite in f32.
    pub fn logit(lower: f32, upper: f32) -> Result<XTransform> {
        Self::check_logit(lower, upper).map_err(Error::Argument)?;
        let width = upper - lower;
        Ok(XTransform {
            kind: XTransformKind::Logit,
            lower,
            upper,
            width,
            ln_width: ln(width),
        })
    }

    /// The transform for the bounds `(lower, upper)` of a parameter, `None` for an open side,
    /// as the Python exporter's `x_bounds` takes them: `(None, None)` identity, `(lower, None)`
    /// log, `(lower, upper)` logit. An upper bound alone is refused.
    pub fn from_bounds(lower: Option<f32>, upper: Option<f32>) -> Result<XTransform> {
        match (lower, upper) {
            (None, None) => Ok(XTransform::IDENTITY),
            (Some(lower), None) => XTransform::log(lower),
            (Some(lower), Some(upper)) => XTransform::logit(lower, upper),
            (None, Some(_)) => Err(Error::Argument(
                "a parameter bounded above only has no transform (give a lower bound too)",
            )),
        }
    }

    fn check_logit(lower: f32, upper: f32) -> core::result::Result<(), &'static str> {
        if !lower.is_finite() || !upper.is_finite() {
            return Err("a logit transform's bounds must be finite");
        }
        if lower >= upper {
            return Err("a logit transform's lower bound must be below its upper bound");
        }
        if !(upper - lower).is_finite() {
            return Err("a logit transform's upper − lower must be finite in f32");
        }
        Ok(())
    }

    /// The transform's words in a packed image: its kind (0 identity, 1 log, 2 logit), then
    /// lower, upper, upper − lower and ln(upper − lower) as f32 bits.
    pub(crate) fn image_words(&self) -> [u32; 5] {
        let kind = match self.kind {
            XTransformKind::Identity => 0,
            XTransformKind::Log => 1,
            XTransformKind::Logit => 2,
        };
        let [a, b, c, d] = [self.lower, self.upper, self.width, self.ln_width].map(f32::to_bits);
        [kind, a, b, c, d]
    }

    /// The transform of [`XTransform::image_words`], if the kind is known.
    pub(crate) fn from_image_words(words: [u32; 5]) -> Option<XTransform> {
        let kind = match words[0] {
            0 => XTransformKind::Identity,
            1 => XTransformKind::Log,
            2 => XTransformKind::Logit,
            _ => return None,
        };
        let [lower, upper, width, ln_width] =
            [words[1], words[2], words[3], words[4]].map(f32::from_bits);
        Some(XTransform {
            kind,
            lower,
            upper,
            width,
            ln_width,
        })
    }

    pub fn kind(&self) -> XTransformKind {
        self.kind
    }

    /// The lower bound (`log`, `logit`).
    pub fn lower(&self) -> Option<f32> {
        self.kind.has_lower().then_some(self.lower)
    }

    /// The upper bound (`logit`).
    pub fn upper(&self) -> Option<f32> {
        self.kind.has_upper().then_some(self.upper)
    }

    /// `u` of `x` and `log|du/dx|`. An `x` on a bound gives an infinite `u`, one outside the
    /// bounds (or NaN) a NaN `u`: nothing is clamped on the way in.
    #[inline]
    pub fn to_unbounded(&self, x: f32) -> (f32, f32) {
        match self.kind {
            XTransformKind::Identity => (x, 0.0),
            XTransformKind::Log => {
                let u = ln(x - self.lower);
                (u, -u)
            }
            XTransformKind::Logit => {
                let (above, below) = (x - self.lower, self.upper - x);
                // One logarithm of the ratio: no cancellation between two logarithms near the
                // middle of the interval, where most values are.
                let u = ln(above / below);
                (u, self.ln_width - ln(above) - ln(below))
            }
        }
    }

    /// `x` of `u`. `logit` and `log` results never leave the bounds; they reach a bound where
    /// f32 rounds onto it (for a logit on `[0, 1]`: `u` beyond about 17 gives 1, below −103
    /// gives 0). NaN stays NaN.
    #[inline]
    pub fn to_bounded(&self, u: f32) -> f32 {
        self.bounded(u).0
    }

    /// `x` of `u` (as [`XTransform::to_bounded`]) and `log|dx/du|`.
    #[inline]
    pub fn to_bounded_with_log_jacobian(&self, u: f32) -> (f32, f32) {
        let (x, e) = self.bounded(u);
        let log_jacobian = match self.kind {
            XTransformKind::Identity => 0.0,
            XTransformKind::Log => u,
            // ln(w·σ(u)·σ(−u)) = ln w − |u| − 2·ln(1 + e^{−|u|}).
            XTransformKind::Logit => self.ln_width - u.abs() - 2.0 * log1p(e),
        };
        (x, log_jacobian)
    }

    /// `x` of `u`, and for `logit` `e^{−|u|}`, which its log-Jacobian reuses.
    #[inline]
    fn bounded(&self, u: f32) -> (f32, f32) {
        match self.kind {
            XTransformKind::Identity => (u, 0.0),
            // eᵘ ≥ 0, and rounding is monotone: never below `lower`.
            XTransformKind::Log => (self.lower + exp(u), 0.0),
            XTransformKind::Logit => {
                // σ(−|u|) = e/(1 + e) is accurate where it is small, so x is measured from the
                // nearer bound: a sample close to a bound keeps its distance from it.
                let e = exp(-u.abs());
                let tail = self.width * (e / (1.0 + e));
                let x = if u < 0.0 {
                    self.lower + tail
                } else {
                    self.upper - tail
                };
                // `w` and the sums round: keep x inside. Comparisons with NaN are false, so
                // NaN passes through (f32::clamp would too, but panics on NaN bounds, which
                // these are not; the explicit form says what happens).
                let x = if x < self.lower {
                    self.lower
                } else if x > self.upper {
                    self.upper
                } else {
                    x
                };
                (x, e)
            }
        }
    }
}

/// Replaces the first `transforms.len()` values of `row` by the first half of `map`'s result
/// and returns the sum of the second halves (the log-Jacobians).
#[inline]
fn map_row(
    transforms: &[XTransform],
    row: &mut [f32],
    map: impl Fn(&XTransform, f32) -> (f32, f32),
) -> f32 {
    let mut log_jacobian = 0.0f32;
    for (v, t) in row.iter_mut().zip(transforms) {
        let (mapped, lj) = map(t, *v);
        *v = mapped;
        log_jacobian += lj;
    }
    log_jacobian
}

/// Maps the first `transforms.len()` values of `row` from x to u in place; returns
/// `Σ log|du/dx|`.
#[inline]
pub(crate) fn unbound_row(transforms: &[XTransform], row: &mut [f32]) -> f32 {
    map_row(transforms, row, XTransform::to_unbounded)
}

/// Maps the first `transforms.len()` values of `row` from u to x in place.
#[inline]
pub(crate) fn bound_row(transforms: &[XTransform], row: &mut [f32]) {
    for (v, t) in row.iter_mut().zip(transforms) {
        *v = t.to_bounded(*v);
    }
}

/// [`bound_row`], returning `Σ log|dx/du|`.
#[inline]
pub(crate) fn bound_row_with_log_jacobian(transforms: &[XTransform], row: &mut [f32]) -> f32 {
    map_row(transforms, row, XTransform::to_bounded_with_log_jacobian)
}

/// The map of a raw condition row to the one the network (behind its standardisation) reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum YTransform {
    /// The condition as given.
    #[default]
    None,
    /// The centred log-ratio `y_k = ln b_k − (1/n) Σ_j ln b_j` of `n` positive values `b`
    /// (summed in f32, in order). A value that is not positive and finite makes every entry
    /// of the row non-finite: the row is invalid.
    Clr,
}

impl YTransform {
    /// The name in `innfer.y_transform`.
    pub fn name(self) -> &'static str {
        match self {
            YTransform::None => "none",
            YTransform::Clr => "clr",
        }
    }

    /// Transforms one condition row in place.
    #[inline]
    pub fn apply(self, row: &mut [f32]) {
        match self {
            YTransform::None => {}
            YTransform::Clr => {
                let mut sum = 0.0f32;
                for v in row.iter_mut() {
                    *v = ln(*v);
                    sum += *v;
                }
                let mean = sum / row.len() as f32;
                for v in row.iter_mut() {
                    *v -= mean;
                }
            }
        }
    }
}

/// Splits a comma-separated metadata list, refusing a count other than `len` before anything
/// is reserved (`len` comes from the file too).
pub(crate) fn entries<'v>(
    src: &Source<'_>,
    key: &str,
    value: &'v str,
    len: usize,
) -> Result<impl Iterator<Item = &'v str>> {
    let count = value.split(',').count();
    if count != len {
        return Err(src.bad_meta(
            key,
            format!("has {count} entries, expected {len} (one per x dimension)"),
        ));
    }
    Ok(value.split(',').map(str::trim))
}

/// A bound entry: a finite number where the dimension's kind has that bound, empty where not.
fn bound_entry(
    src: &Source<'_>,
    key: &str,
    i: usize,
    entry: Option<&str>,
    kind: XTransformKind,
    needed: bool,
) -> Result<f32> {
    match (entry, needed) {
        (None, false) | (Some(""), false) => Ok(0.0),
        (Some(v), false) => Err(src.bad_meta(
            key,
            format!("entry {i} is `{v}`, but dimension {i} is {} and has no such bound (leave the entry empty)", kind.name()),
        )),
        (None, true) => Err(src.bad_meta(
            key,
            format!("is missing, but dimension {i} is {} and needs it", kind.name()),
        )),
        (Some(v), true) => match v.parse::<f32>() {
            Ok(b) if b.is_finite() => Ok(b),
            _ => Err(src.bad_meta(
                key,
                format!("entry {i} (dimension {i} is {}) is `{v}`, not a finite number", kind.name()),
            )),
        },
    }
}

/// `innfer.x_transform`, `innfer.x_lower`, `innfer.x_upper` (docs/format.md §2): one
/// transform per x dimension, or none at all (an empty list).
pub(crate) fn read_x_transform(src: &Source<'_>, x_dim: usize) -> Result<Vec<XTransform>> {
    let (kinds, lowers, uppers) = (
        src.meta(X_TRANSFORM_KEY),
        src.meta(X_LOWER_KEY),
        src.meta(X_UPPER_KEY),
    );
    let Some(kinds) = kinds else {
        for (key, value) in [(X_LOWER_KEY, lowers), (X_UPPER_KEY, uppers)] {
            if value.is_some() {
                return Err(src.bad_meta(key, format!("is given but `{X_TRANSFORM_KEY}` is not")));
            }
        }
        return Ok(Vec::new());
    };
    let mut lower_entries = match lowers {
        Some(v) => Some(entries(src, X_LOWER_KEY, v, x_dim)?),
        None => None,
    };
    let mut upper_entries = match uppers {
        Some(v) => Some(entries(src, X_UPPER_KEY, v, x_dim)?),
        None => None,
    };
    let kind_entries = entries(src, X_TRANSFORM_KEY, kinds, x_dim)?;
    let mut out = src.budget.with_capacity(X_TRANSFORM_KEY, x_dim)?;
    let (mut any_lower, mut any_upper) = (false, false);
    for (i, name) in kind_entries.enumerate() {
        let kind = XTransformKind::parse(name).ok_or_else(|| {
            src.bad_meta(
                X_TRANSFORM_KEY,
                format!("entry {i} is `{name}`, not identity, log or logit"),
            )
        })?;
        let lower_entry = lower_entries.as_mut().and_then(Iterator::next);
        let upper_entry = upper_entries.as_mut().and_then(Iterator::next);
        let lower = bound_entry(src, X_LOWER_KEY, i, lower_entry, kind, kind.has_lower())?;
        let upper = bound_entry(src, X_UPPER_KEY, i, upper_entry, kind, kind.has_upper())?;
        any_lower |= kind.has_lower();
        any_upper |= kind.has_upper();
        out.push(match kind {
            XTransformKind::Identity => XTransform::IDENTITY,
            XTransformKind::Log => XTransform::log(lower)?,
            XTransformKind::Logit => {
                if let Err(problem) = XTransform::check_logit(lower, upper) {
                    return Err(src.bad_meta(
                        X_UPPER_KEY,
                        format!("entry {i} is {upper} with lower bound {lower}: {problem}"),
                    ));
                }
                XTransform::logit(lower, upper)?
            }
        });
    }
    // A key no dimension reads would be a key that changes nothing (docs/format.md §7).
    for (key, given, read) in [
        (X_LOWER_KEY, lowers.is_some(), any_lower),
        (X_UPPER_KEY, uppers.is_some(), any_upper),
    ] {
        if given && !read {
            return Err(src.bad_meta(
                key,
                format!("is given, but no dimension of `{X_TRANSFORM_KEY}` has that bound"),
            ));
        }
    }
    Ok(out)
}

/// `innfer.y_transform` (docs/format.md §2): `none` (or absent) or `clr`, for a `cinn`
/// condition of at least 2 values.
pub(crate) fn read_y_transform(src: &Source<'_>, layout: Layout) -> Result<YTransform> {
    let transform = match src.meta(Y_TRANSFORM_KEY).map(str::trim) {
        None | Some("none") => return Ok(YTransform::None),
        Some("clr") => YTransform::Clr,
        Some(v) => {
            return Err(src.bad_meta(Y_TRANSFORM_KEY, format!("`{v}` is not none or clr")));
        }
    };
    match layout {
        Layout::Cinn { y, .. } if y >= 2 => Ok(transform),
        Layout::Cinn { y, .. } => Err(src.bad_meta(
            Y_TRANSFORM_KEY,
            format!("clr needs a condition of at least 2 values, this one has {y}"),
        )),
        _ => Err(src.bad_meta(
            Y_TRANSFORM_KEY,
            "applies to the condition of a cinn layout only (in the inn layout y is an output of the network)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logit01() -> XTransform {
        XTransform::logit(0.0, 1.0).unwrap()
    }

    #[test]
    fn logit_samples_never_leave_the_interval_even_where_f32_rounds_onto_a_bound() {
        // Bounds whose width rounds: lower + (upper − lower) is not upper in f32.
        let t = XTransform::logit(0.005, 0.1).unwrap();
        for u in [
            -1e30f32,
            -200.0,
            -104.0,
            -40.0,
            -17.0,
            -1.0,
            0.0,
            1.0,
            17.0,
            40.0,
            200.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
        ] {
            let x = t.to_bounded(u);
            assert!((0.005..=0.1).contains(&x), "u = {u}: x = {x}");
        }
        assert_eq!(t.to_bounded(f32::INFINITY), 0.1);
        assert_eq!(t.to_bounded(f32::NEG_INFINITY), 0.005);
        assert!(t.to_bounded(f32::NAN).is_nan());
    }

    #[test]
    fn log_samples_stay_above_the_lower_bound() {
        let t = XTransform::log(5.0).unwrap();
        for u in [-1e30f32, -200.0, -40.0, 0.0, 40.0] {
            assert!(t.to_bounded(u) >= 5.0);
        }
        assert_eq!(t.to_bounded(0.0), 6.0);
        assert!(t.to_bounded(f32::NAN).is_nan());
    }

    #[test]
    fn to_bounded_inverts_to_unbounded_and_the_log_jacobians_cancel() {
        for t in [
            logit01(),
            XTransform::logit(-3.0, 40.0).unwrap(),
            XTransform::log(0.5).unwrap(),
            XTransform::IDENTITY,
        ] {
            for u in [-8.0f32, -1.5, -0.01, 0.0, 0.3, 2.0, 9.0] {
                let (x, lj_inverse) = t.to_bounded_with_log_jacobian(u);
                let (back, lj_forward) = t.to_unbounded(x);
                // x carries f32 rounding (relative to the bounds' size), which du/dx amplifies.
                let scale = x
                    .abs()
                    .max(t.lower().unwrap_or(0.0).abs())
                    .max(t.upper().unwrap_or(0.0).abs());
                let tolerance = 1e-6 + 2.0 * f32::EPSILON * scale * lj_forward.exp();
                assert!((back - u).abs() <= tolerance, "{t:?} u {u}: {back}");
                // The forward log-Jacobian sees the same rounding of x.
                let lj_tolerance = tolerance + 1e-5 * (1.0 + lj_forward.abs());
                assert!(
                    (lj_forward + lj_inverse).abs() <= lj_tolerance,
                    "{t:?} u {u}"
                );
            }
        }
    }

    #[test]
    fn the_logit_log_jacobian_is_that_of_the_sigmoid() {
        // dx/du = w·σ(u)·σ(−u); in f64, with ln σ(v) = −ln(1 + e^{−v}) (1 − σ loses digits).
        let t = XTransform::logit(2.0, 6.0).unwrap();
        let ln_sigmoid = |v: f64| -(-v).exp().ln_1p();
        for u in [-30.0f32, -3.0, -0.5, 0.0, 0.7, 4.0, 30.0] {
            let u64 = u as f64;
            let want = 4.0f64.ln() + ln_sigmoid(u64) + ln_sigmoid(-u64);
            let got = t.to_bounded_with_log_jacobian(u).1 as f64;
            assert!(
                (got - want).abs() <= 1e-5 * (1.0 + want.abs()),
                "u {u}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn values_on_or_outside_the_bounds_are_not_finite_on_the_way_in() {
        let t = logit01();
        assert_eq!(t.to_unbounded(0.0).0, f32::NEG_INFINITY);
        assert_eq!(t.to_unbounded(1.0).0, f32::INFINITY);
        assert!(t.to_unbounded(1.5).0.is_nan());
        assert!(t.to_unbounded(-0.5).0.is_nan());
        let l = XTransform::log(1.0).unwrap();
        assert_eq!(l.to_unbounded(1.0).0, f32::NEG_INFINITY);
        assert!(l.to_unbounded(0.0).0.is_nan());
    }

    #[test]
    fn bounds_are_checked() {
        assert!(XTransform::logit(1.0, 1.0).is_err());
        assert!(XTransform::logit(2.0, 1.0).is_err());
        assert!(XTransform::logit(-3e38, 3e38).is_err());
        assert!(XTransform::logit(0.0, f32::INFINITY).is_err());
        assert!(XTransform::log(f32::NAN).is_err());
        assert!(XTransform::from_bounds(None, Some(1.0)).is_err());
        assert_eq!(
            XTransform::from_bounds(None, None).unwrap(),
            XTransform::IDENTITY
        );
        assert_eq!(
            XTransform::from_bounds(Some(0.0), Some(1.0)).unwrap(),
            logit01()
        );
        assert_eq!(
            XTransform::from_bounds(Some(3.0), None).unwrap().kind(),
            XTransformKind::Log
        );
    }

    #[test]
    fn clr_centres_the_logarithms_and_ignores_a_common_scale() {
        // White-referenced band values of a tissue pixel, 470 … 700 nm.
        let raw = [0.234f64, 0.257, 0.276, 0.197, 0.178, 0.464, 0.749, 0.755];
        let mut a = raw.map(|v| v as f32);
        let mut b = a.map(|v| v * 3.5);
        YTransform::Clr.apply(&mut a);
        YTransform::Clr.apply(&mut b);
        let mean = raw.iter().map(|v| v.ln()).sum::<f64>() / 8.0;
        for ((p, q), r) in a.iter().zip(&b).zip(raw) {
            assert!((*p as f64 - (r.ln() - mean)).abs() < 1e-6);
            assert!((p - q).abs() < 1e-6);
        }
    }

    #[test]
    fn clr_of_a_dead_or_saturated_band_makes_the_whole_row_non_finite() {
        for bad in [0.0f32, -0.1, f32::NAN, f32::INFINITY] {
            let mut row = [0.3f32, bad, 0.5, 0.2];
            YTransform::Clr.apply(&mut row);
            assert!(row.iter().all(|v| !v.is_finite()), "{bad}: {row:?}");
        }
    }
}
