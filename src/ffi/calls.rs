//! The hot-path calls: sample, summarize, forward, inverse. None of them allocates.

use super::buffers::{Buf, disjoint, extent, product};
use super::session::{innfer_session, with_session};
use super::status::*;
use crate::model::Layout;
use crate::session::matrix::{MatMut, MatRef};
use crate::session::{Session, SummaryBuffers};

/// Strided sampling shared by the three sample calls.
///
/// # Safety
/// The buffers hold the elements their shapes and strides span.
#[allow(clippy::too_many_arguments)]
unsafe fn sample_impl(
    session: &mut Session<'static, 'static>,
    y: *const f32,
    y_rs: isize,
    y_cs: isize,
    n_obs: usize,
    n_samples: usize,
    x: *mut f32,
    x_rs: isize,
    x_cs: isize,
) -> Result<(), Fail> {
    let layout = session.model().layout();
    if layout == Layout::None {
        return Err(crate::Error::NoLayout.into());
    }
    let (xd, yd) = (layout.x_dim(), layout.y_dim());
    let total = n_obs
        .checked_mul(n_samples)
        .ok_or(Fail::Invalid("n_samples", "n_obs * n_samples overflows"))?;
    let yb = Buf::new("y", y, extent("y", n_obs, yd, y_rs, y_cs)?, false)?;
    let xb = Buf::new("x", x, extent("x", total, xd, x_rs, x_cs)?, true)?;
    disjoint(&[yb, xb])?;
    // SAFETY: extents computed above, pointers checked, the output overlaps nothing.
    let (ys, xs) = unsafe { (yb.input(), xb.output()) };
    let ym = MatRef::strided("y", ys, n_obs, yd, y_rs as usize, y_cs as usize)?;
    let xm = MatMut::strided("x", xs, total, xd, x_rs as usize, x_cs as usize)?;
    session.sample_strided(ym, n_samples, xm)?;
    Ok(())
}

/// A pass of `rows` rows fits the session (checked before any size: `rows = SIZE_MAX` is a
/// batch too large, not a size that overflows).
fn check_batch(session: &Session<'static, 'static>, rows: usize) -> Result<(), Fail> {
    let max_batch = session.max_batch();
    if rows > max_batch {
        return Err(crate::Error::BatchTooLarge {
            batch: rows,
            max_batch,
        }
        .into());
    }
    Ok(())
}

/// Strided forward or inverse pass.
///
/// # Safety
/// The buffers hold the elements their shapes and strides span.
#[allow(clippy::too_many_arguments)]
unsafe fn pass_impl(
    session: &mut Session<'static, 'static>,
    inverse: bool,
    input: *const f32,
    in_rs: isize,
    in_cs: isize,
    cond: *const f32,
    c_rs: isize,
    c_cs: isize,
    rows: usize,
    out: *mut f32,
    o_rs: isize,
    o_cs: isize,
    logdet: *mut f32,
) -> Result<(), Fail> {
    let model = session.model();
    let (d, cd) = (model.dim(), model.cond_dim());
    check_batch(session, rows)?;
    let (in_name, out_name) = if inverse { ("in", "x") } else { ("x", "out") };
    let ib = Buf::new(
        in_name,
        input,
        extent(in_name, rows, d, in_rs, in_cs)?,
        false,
    )?;
    let ob = Buf::new(out_name, out, extent(out_name, rows, d, o_rs, o_cs)?, true)?;
    let cb = if cond.is_null() {
        if cd > 0 && rows > 0 {
            return Err(Fail::Null("cond"));
        }
        None
    } else {
        if cd == 0 {
            return Err(Fail::Invalid(
                "cond",
                "the model takes no condition: pass NULL",
            ));
        }
        Some(Buf::new(
            "cond",
            cond,
            extent("cond", rows, cd, c_rs, c_cs)?,
            false,
        )?)
    };
    let lb = if logdet.is_null() {
        None
    } else {
        Some(Buf::new("logdet", logdet, rows, true)?)
    };
    let mut all = [ib, ob, ib, ib];
    let mut n = 2;
    for b in [cb, lb].into_iter().flatten() {
        all[n] = b;
        n += 1;
    }
    disjoint(&all[..n])?;
    if rows == 0 {
        // Nothing to do (and the block kernels expect at least one row).
        return Ok(());
    }
    // SAFETY: extents computed above, pointers checked, outputs overlap nothing.
    let (xin, xout) = unsafe { (ib.input(), ob.output()) };
    let inm = MatRef::strided(in_name, xin, rows, d, in_rs as usize, in_cs as usize)?;
    let outm = MatMut::strided(out_name, xout, rows, d, o_rs as usize, o_cs as usize)?;
    let cm = match cb {
        // SAFETY: as above.
        Some(cb) => Some(MatRef::strided(
            "cond",
            unsafe { cb.input() },
            rows,
            cd,
            c_rs as usize,
            c_cs as usize,
        )?),
        None => None,
    };
    // SAFETY: as above.
    let ld = lb.map(|b| unsafe { b.output() });
    if inverse {
        session.inverse_strided(inm, cm, outm, ld)?;
    } else {
        session.forward_strided(inm, cm, outm, ld)?;
    }
    Ok(())
}

/// Draws `n_samples` posterior samples of x for one observation `y`.
///
/// - `y`: `[y_dim]` floats, the observation in raw units (may be NULL if `y_dim` is 0);
/// - `x`: `[n_samples][x_dim]` floats, row-major, written (may be NULL if `n_samples` is 0).
///
/// Any `n_samples` is allowed: the session works in chunks of its `max_batch`. Sample `i` uses
/// row `next + i` of the random stream, where `next` is the session's next row (0 after
/// `innfer_session_reseed()` or creation, set by `innfer_session_seek()`, advanced by every
/// sample drawn), so splitting a run over calls changes nothing.
///
/// An observation with a NaN or infinity in `y` (or a value the model's y transform turns into
/// one) gets NaN samples and the call succeeds; a finite `y` whose samples overflow gets NaN
/// samples and `_NON_FINITE_OUTPUT` (see NON-FINITE VALUES at the top of this header).
///
/// Returns `INNFER_STATUS_OK`, `_NULL_ARGUMENT`, `_INVALID_ARGUMENT` (`x` overlaps `y`, a freed
/// static session, overflowing sizes, a call that would carry the stream's next-row counter
/// past 2^64 - 1), `_NO_LAYOUT` or `_NON_FINITE_OUTPUT`. Allocates nothing; bounded time.
///
/// # Safety
/// `s` is NULL or a live session not in use by another thread; `y` and `x` hold the stated
/// number of floats.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn innfer_sample(
    s: *mut innfer_session,
    y: *const f32,
    n_samples: usize,
    x: *mut f32,
) -> innfer_status {
    // SAFETY: forwarded contract.
    unsafe {
        with_session(s, "innfer_sample", |session| {
            let layout = session.model().layout();
            let (xd, yd) = (layout.x_dim(), layout.y_dim());
            product("x", n_samples, xd)?;
            sample_impl(session, y, yd as isize, 1, 1, n_samples, x, xd as isize, 1)
        })
    }
}

/// Draws `n_samples` samples for each of `n_obs` observations: the same numbers as `n_obs`
/// successive `innfer_sample()` calls.
///
/// - `y`: `[n_obs][y_dim]` floats, row-major;
/// - `x`: `[n_obs * n_samples][x_dim]` floats, row-major, observation by observation: the
///   samples of observation `j` are rows `j*n_samples ... (j+1)*n_samples - 1`, drawn from rows
///   `next + j*n_samples ...` of the random stream (see `innfer_session_seek()`).
///
/// Statuses as `innfer_sample()`. Allocates nothing.
///
/// # Safety
/// As `innfer_sample`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn innfer_sample_batch(
    s: *mut innfer_session,
    y: *const f32,
    n_obs: usize,
    n_samples: usize,
    x: *mut f32,
) -> innfer_status {
    // SAFETY: forwarded contract.
    unsafe {
        with_session(s, "innfer_sample_batch", |session| {
            let layout = session.model().layout();
            let (xd, yd) = (layout.x_dim(), layout.y_dim());
            product("y", n_obs, yd)?;
            let total = product("x", n_obs, n_samples)?;
            product("x", total, xd)?;
            sample_impl(
                session,
                y,
                yd as isize,
                1,
                n_obs,
                n_samples,
                x,
                xd as isize,
                1,
            )
        })
    }
}

/// The strided form of `innfer_sample_batch()`.
///
/// Element `(r, c)` of `y` (`n_obs` rows of `y_dim`) is `y[r*y_rs + c*y_cs]`; element `(r, c)`
/// of `x` (`n_obs*n_samples` rows of `x_dim`) is `x[r*x_rs + c*x_cs]`. Strides count floats
/// and must be >= 0. Row-major: `rs = cols, cs = 1`; a Fortran array `x(n, x_dim)`:
/// `rs = 1, cs = n`; `y_rs = 0` uses one observation for every row. The output must not have a
/// stride between two of its elements (a zero stride when it has more than one row, or
/// column), and its rows must not interleave: `x_rs >= x_dim*x_cs` (rows one after another)
/// or `x_cs >= n_obs*n_samples*x_rs` (columns one after another).
///
/// Statuses as `innfer_sample()`, plus `_INVALID_ARGUMENT` for a negative stride, output
/// strides that make elements share memory, or an extent that overflows. Allocates nothing.
///
/// # Safety
/// As `innfer_sample`; `y` and `x` span the elements their strides reach.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn innfer_sample_strided(
    s: *mut innfer_session,
    y: *const f32,
    y_rs: isize,
    y_cs: isize,
    n_obs: usize,
    n_samples: usize,
    x: *mut f32,
    x_rs: isize,
    x_cs: isize,
) -> innfer_status {
    // SAFETY: forwarded contract.
    unsafe {
        with_session(s, "innfer_sample_strided", |session| {
            sample_impl(session, y, y_rs, y_cs, n_obs, n_samples, x, x_rs, x_cs)
        })
    }
}

/// Draws `n` posterior samples for each of `rows` observations and writes only their summaries:
/// per observation and parameter the mean, the standard deviation and the requested quantiles.
///
/// - `y`: `[rows][y_dim]` floats, the observations in raw units;
/// - `quantiles`: `[n_quantiles]` levels q, each in [0, 1] (may be NULL if `n_quantiles` is 0);
/// - `mean`, `std`: `[rows][x_dim]` floats, written;
/// - `quantile_values`: `[rows][n_quantiles][x_dim]` floats, written (may be NULL if
///   `n_quantiles` is 0);
/// - `invalid_rows`: receives the number of invalid observations (see below), or NULL.
///
/// **Definitions.** For the samples x_1 ... x_n of one parameter of one observation: mean =
/// (1/n) sum_k x_k, summed in double precision in the order the samples are drawn; std = the
/// sample standard deviation with divisor n - 1 (0 for n = 1), from a second sum in double
/// precision of the squared deviations from that mean; quantile q = the order statistic
/// x_(k), k = max(1, ceil(q*n)) (q*n in double precision; a product within q's float rounding
/// above a whole number counts as that number, so q = 0.1 of 10 samples is x_(1)): always one
/// of the samples, q = 0 the least, q = 1 the greatest; samples ordered by IEEE 754
/// totalOrder (-0 before +0).
///
/// **Samples.** Sample `k` of observation `j` is row `next + j*n + k` of the random stream and
/// the stream is left at `next + rows*n`, as with `innfer_sample_batch()`: the summaries are
/// those of the samples `innfer_sample_batch()` draws from the same position, bit for bit,
/// for any thread count (`innfer_session_set_threads()`), any `max_batch`, and any split of the
/// observations over calls or processes (`innfer_session_seek()` to `j0*n`).
///
/// **Invalid rows.** An observation with a NaN or infinite value in `y` (or one that the
/// model's y transform turns into one) gets NaN in all its outputs and is counted in
/// `*invalid_rows`; the call still returns `INNFER_STATUS_OK` and the other observations are
/// unaffected. An observation with a finite `y` whose summaries come out non-finite all the
/// same (an overflow) gets NaN in all its outputs too, is not counted, and the call returns
/// `_NON_FINITE_OUTPUT` naming `mean` (or `std`) and its row, with every output and
/// `*invalid_rows` written (see NON-FINITE VALUES at the top of this header).
///
/// **Cost.** Nothing is allocated and the memory used does not depend on `n` (the session's
/// memory includes a few KB for this call). With `n <= max_batch` the samples are drawn once,
/// many observations per pass through the network; with a larger `n` each observation's
/// samples are drawn again in several passes (2 without quantiles, typically 3 to 5 with),
/// which costs that many times the sampling.
///
/// Returns `INNFER_STATUS_OK`; `_NULL_ARGUMENT` (`s` NULL, or a buffer NULL that has elements
/// to hold); `_INVALID_ARGUMENT` (`n` is 0, a quantile outside [0, 1] or NaN, an output
/// overlapping another buffer, a pointer not aligned to `float`, sizes that overflow, a call
/// that would carry the stream's next-row counter past 2^64 - 1, or a freed static session);
/// `_NO_LAYOUT` (a model without a sampling layout); `_NON_FINITE_OUTPUT` (see above); or
/// `_INTERNAL`. On any other failure nothing is written or drawn and the session's last error
/// names the argument.
///
/// # Safety
/// `s` is NULL or a live session not in use by another thread; each buffer holds the stated
/// number of floats; `invalid_rows` is NULL or writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn innfer_session_summarize(
    s: *mut innfer_session,
    y: *const f32,
    rows: usize,
    n: usize,
    quantiles: *const f32,
    n_quantiles: usize,
    mean: *mut f32,
    std: *mut f32,
    quantile_values: *mut f32,
    invalid_rows: *mut usize,
) -> innfer_status {
    // SAFETY: forwarded contract.
    unsafe {
        with_session(s, "innfer_session_summarize", |session| {
            summarize_impl(
                session,
                y,
                rows,
                n,
                quantiles,
                n_quantiles,
                [mean, std, quantile_values],
                invalid_rows,
            )
        })
    }
}

/// The checks and the call of `innfer_session_summarize`; `outputs` are mean, std and
/// quantile values.
///
/// # Safety
/// As `innfer_session_summarize`.
#[allow(clippy::too_many_arguments)]
unsafe fn summarize_impl(
    session: &mut Session<'static, 'static>,
    y: *const f32,
    rows: usize,
    n: usize,
    quantiles: *const f32,
    n_quantiles: usize,
    [mean, std, quantile_values]: [*mut f32; 3],
    invalid_rows: *mut usize,
) -> Result<(), Fail> {
    let layout = session.model().layout();
    if layout == Layout::None {
        return Err(crate::Error::NoLayout.into());
    }
    let (xd, yd) = (layout.x_dim(), layout.y_dim());
    let yb = Buf::new("y", y, product("y", rows, yd)?, false)?;
    let qb = Buf::new("quantiles", quantiles, n_quantiles, false)?;
    let mb = Buf::new("mean", mean, product("mean", rows, xd)?, true)?;
    let sb = Buf::new("std", std, product("std", rows, xd)?, true)?;
    let per_row = product("quantile_values", n_quantiles, xd)?;
    let values = product("quantile_values", rows, per_row)?;
    let vb = Buf::new("quantile_values", quantile_values, values, true)?;
    disjoint(&[yb, qb, mb, sb, vb])?;
    // SAFETY: lengths computed above, pointers checked, the outputs overlap nothing.
    let (ys, qs, out) = unsafe {
        let out = SummaryBuffers {
            mean: mb.output(),
            std: sb.output(),
            quantile_values: vb.output(),
        };
        (yb.input(), qb.input(), out)
    };
    let (report, overflow) = session.summarize_reporting(ys, n, qs, out)?;
    if !invalid_rows.is_null() {
        // SAFETY: non-NULL and writable per the contract.
        unsafe { invalid_rows.write_unaligned(report.invalid_rows) };
    }
    Ok(overflow?)
}

/// The forward pass `out = f(x; cond)` on `rows` rows, with the per-row log|det J| of the map
/// in raw units.
///
/// - `x`, `out`: `[rows][dim]` floats, row-major (`out` written);
/// - `cond`: `[rows][cond_dim]` floats, or NULL if the model's `cond_dim` is 0 (then it must
///   be NULL);
/// - `logdet`: `[rows]` floats written, or NULL if not wanted.
///
/// `rows` may be at most the session's `max_batch`. Outputs must not overlap any other buffer
/// (no in-place calls).
///
/// A row with a NaN or infinity in `x` or its `cond` row (or an `x` its transform cannot take:
/// on or outside its bounds) gets NaN in its `out` row and `logdet` and the call succeeds; a
/// finite row whose outputs overflow gets NaN too and `_NON_FINITE_OUTPUT` (see NON-FINITE
/// VALUES at the top of this header).
///
/// Returns `INNFER_STATUS_OK`, `_NULL_ARGUMENT` (`s`, or a buffer with elements to hold,
/// NULL), `_INVALID_ARGUMENT` (an output overlapping another buffer, a pointer not aligned to
/// `float`, a `cond` given to a model that takes none, a freed static session),
/// `_BATCH_TOO_LARGE` (`rows` above `max_batch`) or `_NON_FINITE_OUTPUT`. Allocates nothing.
///
/// # Safety
/// `s` is NULL or a live session not in use by another thread; the buffers hold the stated
/// number of floats.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn innfer_forward(
    s: *mut innfer_session,
    x: *const f32,
    cond: *const f32,
    rows: usize,
    out: *mut f32,
    logdet: *mut f32,
) -> innfer_status {
    // SAFETY: forwarded contract.
    unsafe { contiguous(s, "innfer_forward", false, x, cond, rows, out, logdet) }
}

/// The inverse pass `x = f^-1(in; cond)` on `rows` rows, with the per-row log|det J| of the
/// inverse map in raw units. Buffers, rules, non-finite values and statuses as
/// `innfer_forward()`, with `in` (`[rows][dim]`) read and `x` (`[rows][dim]`) written.
///
/// # Safety
/// As `innfer_forward`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn innfer_inverse(
    s: *mut innfer_session,
    r#in: *const f32,
    cond: *const f32,
    rows: usize,
    x: *mut f32,
    logdet: *mut f32,
) -> innfer_status {
    // SAFETY: forwarded contract.
    unsafe { contiguous(s, "innfer_inverse", true, r#in, cond, rows, x, logdet) }
}

/// # Safety
/// As `innfer_forward`.
#[allow(clippy::too_many_arguments)]
unsafe fn contiguous(
    s: *mut innfer_session,
    what: &'static str,
    inverse: bool,
    input: *const f32,
    cond: *const f32,
    rows: usize,
    out: *mut f32,
    logdet: *mut f32,
) -> innfer_status {
    // SAFETY: forwarded contract.
    unsafe {
        with_session(s, what, |session| {
            let (d, cd) = (session.model().dim(), session.model().cond_dim());
            check_batch(session, rows)?;
            product("x", rows, d)?;
            product("cond", rows, cd)?;
            pass_impl(
                session,
                inverse,
                input,
                d as isize,
                1,
                cond,
                cd as isize,
                1,
                rows,
                out,
                d as isize,
                1,
                logdet,
            )
        })
    }
}

/// The strided form of `innfer_forward()`: element `(r, c)` of `x` is `x[r*x_rs + c*x_cs]`, of
/// `cond` `cond[r*c_rs + c*c_cs]`, of `out` `out[r*o_rs + c*o_cs]`; strides count floats and
/// must be >= 0 (see `innfer_sample_strided()` for common layouts, and for the output's
/// strides, which must not make two elements share memory). `logdet` is contiguous `[rows]`
/// or NULL; `c_rs`/`c_cs` are ignored when `cond` is NULL.
///
/// Statuses as `innfer_forward()`, plus `_INVALID_ARGUMENT` for a negative stride, output
/// strides that make elements share memory, or an extent that overflows. Allocates nothing.
///
/// # Safety
/// As `innfer_forward`; each buffer spans the elements its strides reach.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn innfer_forward_strided(
    s: *mut innfer_session,
    x: *const f32,
    x_rs: isize,
    x_cs: isize,
    cond: *const f32,
    c_rs: isize,
    c_cs: isize,
    rows: usize,
    out: *mut f32,
    o_rs: isize,
    o_cs: isize,
    logdet: *mut f32,
) -> innfer_status {
    // SAFETY: forwarded contract.
    unsafe {
        with_session(s, "innfer_forward_strided", |session| {
            pass_impl(
                session, false, x, x_rs, x_cs, cond, c_rs, c_cs, rows, out, o_rs, o_cs, logdet,
            )
        })
    }
}

/// The strided form of `innfer_inverse()`: `in` is read with strides `(in_rs, in_cs)`, `x`
/// written with `(x_rs, x_cs)`; otherwise as `innfer_forward_strided()`.
///
/// # Safety
/// As `innfer_forward_strided`.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn innfer_inverse_strided(
    s: *mut innfer_session,
    r#in: *const f32,
    in_rs: isize,
    in_cs: isize,
    cond: *const f32,
    c_rs: isize,
    c_cs: isize,
    rows: usize,
    x: *mut f32,
    x_rs: isize,
    x_cs: isize,
    logdet: *mut f32,
) -> innfer_status {
    // SAFETY: forwarded contract.
    unsafe {
        with_session(s, "innfer_inverse_strided", |session| {
            pass_impl(
                session, true, r#in, in_rs, in_cs, cond, c_rs, c_cs, rows, x, x_rs, x_cs, logdet,
            )
        })
    }
}
