//! Posterior summaries without the samples: [`Session::summarize`] draws `n` samples for each
//! observation and hands back only their mean, standard deviation and order statistics.
//!
//! # How it runs
//!
//! The samples are the ones [`Session::sample_batch`] draws (the same rows of the stream, the
//! same row loading and chain), reduced as they come out of the chain:
//!
//! - **`n` ≤ `max_batch`: one pass.** A chain call holds `max_batch / n` whole observations
//!   (so many observations × `n` rows keep the session's threads busy); each observation's
//!   samples stay in the state buffer while one parameter at a time is copied to the `tmp`
//!   buffer, summed in order and sorted for its order statistics.
//! - **`n` > `max_batch`: several passes over one observation.** The stream is replayable
//!   (a row's latent vector depends on its index alone), so an observation's `n` samples are
//!   drawn again, in chunks of `max_batch`, as often as needed: pass 1 sums them and finds
//!   each parameter's least and greatest value; pass 2 sums the squared deviations from the
//!   mean and starts narrowing a bracket around each requested order statistic by counting
//!   how many samples fall in each of up to ~1000 sub-intervals of it; later passes narrow
//!   further, and once a bracket holds few enough samples, the next pass collects them and
//!   picks the order statistic exactly. Brackets are intervals of the totally ordered 32-bit
//!   keys of the floats, so every pass shrinks them by the number of sub-intervals and they
//!   end at one value at the latest after 32 halvings; in practice 3 to 5 passes in all.
//!
//! Both paths compute the same numbers (the same sums in the same order, exact order
//! statistics), so the results do not depend on `max_batch`, the thread count or how the
//! observations are split over calls.
//!
//! # Memory
//!
//! Nothing is allocated. The one-pass path uses the chain's own buffers and one bit per
//! observation of a chain call; the passes use a scratch of 64-bit words sized when the session
//! is created, [`scratch_words`]: three words per parameter (sum, sum of squared deviations,
//! least and greatest key) and `clamp(max_batch, 64, 1024)` words for the brackets. That is
//! all [`Session::summarize`] adds to [`Session::arena_bytes`], whatever `n`; with many
//! quantiles the brackets are narrowed a group at a time (more passes, the same memory).

use super::finite::{Overflows, all_finite};
use super::matrix::MatRef;
use super::{Buffers, Draws, MemoryPlan, PartJob, Session, THREAD_ROWS, Team};
use crate::error::{Error, Result};
use crate::model::{Layout, Model};

/// Fewest and most words the passes' brackets get (as many as `max_batch` in between).
const BRACKET_WORDS: (usize, usize) = (64, 1024);
/// Words at the head of a bracket: `lo | hi << 32`, samples below `lo`, samples in `lo..=hi`,
/// and the bucket shift (counting) or the samples collected so far (collecting).
const HEAD: usize = 4;
/// Fewest counters a bracket gets: two halve it every pass.
const MIN_COUNTERS: usize = 2;

/// Words of summary scratch a session of `model` at `max_batch` rows holds (see the module
/// documentation); `None` if the count overflows. Zero for a model without a sampling layout.
pub(super) fn scratch_words(model: &Model, max_batch: usize) -> Option<usize> {
    let xd = model.layout().x_dim();
    if xd == 0 {
        return Some(0);
    }
    let passes = xd
        .checked_mul(3)?
        .checked_add(max_batch.clamp(BRACKET_WORDS.0, BRACKET_WORDS.1))?;
    Some(passes.max(max_batch.div_ceil(64)))
}

/// The caller's buffers [`Session::summarize`] writes, for `m` observations of a model with
/// `x_dim` parameters and `k` requested quantiles.
#[derive(Debug)]
pub struct SummaryBuffers<'o> {
    /// `[m][x_dim]`: the mean of each parameter's samples.
    pub mean: &'o mut [f32],
    /// `[m][x_dim]`: the standard deviation of each parameter's samples.
    pub std: &'o mut [f32],
    /// `[m][k][x_dim]`: the requested order statistics of each parameter's samples (empty when
    /// no quantiles are requested).
    pub quantile_values: &'o mut [f32],
}

/// What a [`Session::summarize`] call found besides the summaries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SummaryReport {
    /// Observations with an invalid y: a NaN or an infinity, or a value the model's y
    /// transform turns into one (NaN in every output of theirs; src/session/finite.rs).
    pub invalid_rows: usize,
    /// The most times one observation's samples were drawn: 1 when `n` ≤ `max_batch` (0 for
    /// no valid observation), more when they were reduced in passes.
    pub passes: usize,
}

impl Session<'_, '_> {
    /// Draws `n` posterior samples of x for each observation of `ys` (`[m][y_dim]`, raw
    /// units) and writes only their summaries into `out`: per observation and parameter the
    /// mean, the standard deviation and the requested order statistics.
    ///
    /// # Definitions
    /// For the samples x₁ … xₙ of one parameter of one observation (sample k the k-th drawn):
    /// - mean = (1/n) Σₖ xₖ, summed in f64 in the order k = 1 … n, rounded to f32 once;
    /// - std = √(Σₖ (xₖ − mean)² / (n − 1)) with the f64 mean, summed in f64 in the same order
    ///   (0 for n = 1);
    /// - quantile q ∈ [0, 1] is the order statistic x₍ₖ₎ with k = max(1, ⌈q·n⌉): the inverse
    ///   of the samples' empirical distribution function, always one of the samples (q = 0 the
    ///   least, q = 1 the greatest, q = 0.5 the lower median). q·n is computed in f64, and a
    ///   product that lies less than q's own f32 rounding (a relative 2⁻²⁴) above a whole number
    ///   counts as that number, so q = 0.1 of 10 samples is x₍₁₎ although 0.1 is stored as
    ///   0.100000001…. Samples are ordered by IEEE 754 totalOrder ([`f32::total_cmp`]: −0
    ///   before +0).
    ///
    /// Output layouts: `out.mean` and `out.std` are `[m][x_dim]`, `out.quantile_values`
    /// `[m][quantiles.len()][x_dim]`.
    ///
    /// # The stream contract
    /// Sample k (from 0) of observation j is row `next_row + j·n + k` of the random stream,
    /// exactly as in [`Session::sample_batch`], and the stream is left at `next_row + m·n`. So
    /// the summaries are those of the samples `sample_batch` draws for the same observations
    /// from the same position, reduced as defined above, bit for bit; and they are the same for
    /// any thread count, any `max_batch`, and any split of the observations over calls or
    /// processes (reseed and [`Session::seek`] to `j0·n`, as for sampling).
    ///
    /// # Invalid rows
    /// An observation with an invalid y (a NaN or infinite value, or one that the model's y
    /// transform turns into one) gets NaN in all of its outputs and is counted in
    /// [`SummaryReport::invalid_rows`]; the other observations are unaffected and the call
    /// succeeds. Its stream rows are skipped all the same. An observation with a finite y
    /// whose summaries come out non-finite all the same (an overflow: y far outside the
    /// training range) also gets NaN in all its outputs, but the call returns
    /// [`Error::NonFiniteOutput`] naming `mean` (or `std`) and the first such observation,
    /// after writing every output (src/session/finite.rs).
    ///
    /// # Cost and memory
    /// Nothing is allocated, and the memory used does not depend on `n` (see
    /// src/session/summary.rs). For `n` ≤ [`Session::max_batch`] the samples are drawn once;
    /// for larger `n` each observation's samples are drawn in several passes over the same
    /// stream rows (2 without quantiles, typically 3 to 5 with), which costs that many times
    /// the sampling; [`SummaryReport::passes`] says how many.
    ///
    /// # Errors
    /// [`Error::NoLayout`] for a model without a sampling layout; [`Error::Argument`] for
    /// `n` = 0, a quantile outside [0, 1] or NaN, too many samples, or a call that would carry
    /// the stream's next-row counter past 2⁶⁴ − 1; [`Error::BufferLength`] naming `y`, `mean`,
    /// `std` or `quantile_values` if one has the wrong length. A failed call writes and draws
    /// nothing, except with [`Error::NonFiniteOutput`] (see above).
    ///
    /// ```
    /// # let model = innfer::Model::from_file(concat!(env!("CARGO_MANIFEST_DIR"), "/models/kinematics.safetensors")).unwrap();
    /// let ys = [1.5f32, 0.0, 0.5, 1.0]; // two observations, y_dim = 2
    /// let quantiles = [0.05f32, 0.5, 0.95];
    /// let xd = model.layout().x_dim();
    /// let (mut mean, mut std) = (vec![0.0; 2 * xd], vec![0.0; 2 * xd]);
    /// let mut q = vec![0.0; 2 * quantiles.len() * xd];
    /// let mut session = innfer::Session::new(&model, 256)?;
    /// session.reseed(42, 0);
    /// let out = innfer::SummaryBuffers { mean: &mut mean, std: &mut std, quantile_values: &mut q };
    /// let report = session.summarize(&ys, 100, &quantiles, out)?;
    /// assert_eq!(report.invalid_rows, 0);
    /// // The median of parameter 0 of observation 1 lies between its 5 % and 95 % quantiles.
    /// let at = |qi: usize| q[(quantiles.len() + qi) * xd];
    /// assert!(at(0) <= at(1) && at(1) <= at(2));
    /// # Ok::<(), innfer::Error>(())
    /// ```
    pub fn summarize(
        &mut self,
        ys: &[f32],
        n: usize,
        quantiles: &[f32],
        out: SummaryBuffers<'_>,
    ) -> Result<SummaryReport> {
        let (report, overflow) = self.summarize_reporting(ys, n, quantiles, out)?;
        overflow.map(|()| report)
    }

    /// [`Session::summarize`] whose report survives an overflow: the argument errors, or the
    /// report and the overflow's error (the C API writes `invalid_rows` in either case).
    pub(crate) fn summarize_reporting(
        &mut self,
        ys: &[f32],
        n: usize,
        quantiles: &[f32],
        out: SummaryBuffers<'_>,
    ) -> Result<(SummaryReport, Result<()>)> {
        let model = self.model;
        let layout = model.layout();
        if layout == Layout::None {
            return Err(Error::NoLayout);
        }
        if n == 0 {
            return Err(Error::Argument(
                "n: summaries need at least one sample per observation",
            ));
        }
        if !quantiles.iter().all(|q| (0.0..=1.0).contains(q)) {
            return Err(Error::Argument(
                "quantiles: every quantile must lie in [0, 1] (NaN is none)",
            ));
        }
        let xd = layout.x_dim();
        let ys = MatRef::rows_of("y", ys, layout.y_dim().max(1))?;
        let rows = ys.rows();
        let per_row = quantiles
            .len()
            .checked_mul(xd)
            .ok_or(Error::Argument("quantiles: too many"))?;
        for (buffer, found, width) in [
            ("mean", out.mean.len(), xd),
            ("std", out.std.len(), xd),
            ("quantile_values", out.quantile_values.len(), per_row),
        ] {
            let expected = rows
                .checked_mul(width)
                .ok_or(Error::Argument("quantiles: too many"))?;
            if found != expected {
                return Err(Error::BufferLength {
                    buffer,
                    expected,
                    found,
                });
            }
        }
        let total = rows
            .checked_mul(n)
            .ok_or(Error::Argument("too many samples"))?;
        let end_row = self.stream_end(total)?;

        let plan = self.plan;
        let mut draw = Draw {
            model,
            plan,
            bufs: Self::buffers(&plan, self.isa, &mut self.arena, plan.max_batch),
            team: &mut self.team,
            draws: Draws {
                ys,
                n,
                position: (self.seed, self.stream, self.next_row),
            },
        };
        let words = self.summary.elements();
        let mut report = SummaryReport::default();
        let mut outputs = Outputs {
            out,
            x_dim: xd,
            quantiles,
        };
        if n <= plan.max_batch {
            summarize_in_one_pass(&mut draw, words, &mut outputs, &mut report);
        } else {
            summarize_in_passes(&mut draw, words, &mut outputs, &mut report);
        }
        // A non-finite sample makes its observation's mean non-finite (the sums are f64); an
        // observation not invalid with such a mean or std is an overflow (src/session/finite.rs).
        let mut overflows = Overflows::default();
        for j in 0..rows {
            let (mean, std, _) = outputs.row(j);
            let mean_finite = all_finite(mean);
            if mean_finite && all_finite(std) {
                continue;
            }
            if Session::observation_is_invalid(model, &ys, j, &mut draw.bufs) {
                continue;
            }
            overflows.record(if mean_finite { "std" } else { "mean" }, j);
            outputs.invalid(j);
        }
        self.next_row = end_row;
        Ok((report, overflows.result()))
    }
}

/// The pieces of a session one summarize call draws with.
struct Draw<'s, 'y> {
    model: &'s Model,
    plan: MemoryPlan,
    bufs: Buffers<'s>,
    team: &'s mut Team,
    draws: Draws<'y>,
}

impl Draw<'_, '_> {
    /// Observations of the call.
    fn observations(&self) -> usize {
        self.draws.ys.rows()
    }

    /// Whether observation `j`'s condition, as the network takes it (after the model's
    /// transformation and standardisation of y), is finite: what loading its rows computes,
    /// computed here, on the calling thread, in a buffer the rows are loaded into later.
    fn observation_is_valid(&mut self, j: usize) -> bool {
        let model = self.model;
        let scratch = match model.layout() {
            Layout::Inn { y, .. } => &mut self.bufs.work.tmp[..y],
            Layout::Cinn { .. } => &mut self.bufs.cond[..model.cond_dim()],
            Layout::None => return true,
        };
        self.draws.ys.read_row(j, scratch);
        model.prepare_condition(scratch)
    }

    /// Makes every output of observation `j`, whose condition the network cannot take, NaN,
    /// and counts it if its y is invalid (an overflow of its standardisation is not: the final
    /// scan of `summarize` reports it).
    fn skip(&mut self, outputs: &mut Outputs<'_, '_>, report: &mut SummaryReport, j: usize) {
        outputs.invalid(j);
        if Session::observation_is_invalid(self.model, &self.draws.ys, j, &mut self.bufs) {
            report.invalid_rows += 1;
        }
    }

    /// Draws rows `start..start + m` of the call ([`Session::draw_rows`], sample `g % n` of
    /// observation `g / n`) on the session's threads, in parts of a multiple of `align` rows,
    /// and runs `after(part, r0, rows)` on each part's samples (rows of `dim` floats, x
    /// first).
    fn draw(&mut self, start: usize, m: usize, align: usize, after: &PartJob<'_>) {
        Session::draw_rows(
            self.model,
            &mut self.bufs,
            &self.draws,
            (start, m),
            align,
            &self.plan,
            self.team,
            after,
        );
    }

    /// The samples of the last [`Draw::draw`]: rows of `dim` floats.
    fn samples(&self, m: usize) -> &[f32] {
        &self.bufs.state[..m * self.model.dim()]
    }
}

/// The caller's outputs and what shapes them.
struct Outputs<'o, 'q> {
    out: SummaryBuffers<'o>,
    x_dim: usize,
    quantiles: &'q [f32],
}

impl Outputs<'_, '_> {
    /// Observation `j`'s mean, std and quantile rows.
    fn row(&mut self, j: usize) -> (&mut [f32], &mut [f32], &mut [f32]) {
        let xd = self.x_dim;
        let per = self.quantiles.len() * xd;
        (
            &mut self.out.mean[j * xd..(j + 1) * xd],
            &mut self.out.std[j * xd..(j + 1) * xd],
            &mut self.out.quantile_values[j * per..(j + 1) * per],
        )
    }

    /// NaN in every output of observation `j`.
    fn invalid(&mut self, j: usize) {
        let (mean, std, q) = self.row(j);
        for v in mean.iter_mut().chain(std.iter_mut()).chain(q.iter_mut()) {
            *v = f32::NAN;
        }
    }
}

/// The f64 mean of `n` samples whose f64 sum is `sum`.
fn mean_of(sum: f64, n: usize) -> f64 {
    sum / n as f64
}

/// One sample's squared deviation from the f64 mean, in f64.
fn squared_deviation(x: f32, mean: f64) -> f64 {
    let e = f64::from(x) - mean;
    e * e
}

/// The standard deviation (divisor n − 1, 0 for n = 1) from the sum of squared deviations.
fn std_of(squares: f64, n: usize) -> f32 {
    if n < 2 {
        return 0.0;
    }
    crate::kernels::math::sqrt(squares / (n - 1) as f64) as f32
}

/// The 1-based rank k = max(1, ⌈q·n⌉) of quantile `q` among `n` samples. q·n is computed in
/// f64, and a product less than q's own f32 rounding (a relative 2⁻²⁴) above a whole number
/// counts as that number: the q a caller writes as 0.1 is stored as 0.100000001…, and 0.1 of
/// 10 samples is meant to be the first.
fn rank(q: f32, n: usize) -> usize {
    let t = f64::from(q) * n as f64;
    let whole = libm::floor(t);
    let k = if t - whole <= t * F32_ROUNDING {
        whole
    } else {
        libm::ceil(t)
    };
    (k as usize).clamp(1, n)
}

/// The relative rounding of an f32 (half its machine epsilon).
const F32_ROUNDING: f64 = 1.0 / (1u64 << 24) as f64;

/// A float's position in IEEE 754 totalOrder as an unsigned key: `key(a) < key(b)` exactly
/// when `a.total_cmp(&b)` is `Less`.
fn key(x: f32) -> u32 {
    let bits = x.to_bits();
    if bits >> 31 == 1 {
        !bits
    } else {
        bits | 1 << 31
    }
}

/// The float of a key (the inverse of [`key`]).
fn from_key(k: u32) -> f32 {
    f32::from_bits(if k >> 31 == 1 { k & !(1 << 31) } else { !k })
}

/// `n` ≤ `max_batch`: whole observations per chain call, each reduced by the thread that drew
/// it, from its rows of the state buffer, as soon as its part of the call is drawn.
fn summarize_in_one_pass(
    draw: &mut Draw<'_, '_>,
    valid: &mut [u64],
    outputs: &mut Outputs<'_, '_>,
    report: &mut SummaryReport,
) {
    let (n, d) = (draw.draws.n, draw.model.dim());
    let quantiles = outputs.quantiles;
    let rows = draw.observations();
    let per_call = draw.plan.max_batch / n;
    let mut j0 = 0;
    while j0 < rows {
        let g = per_call.min(rows - j0);
        valid[..g.div_ceil(64)].fill(0);
        for i in 0..g {
            if draw.observation_is_valid(j0 + i) {
                valid[i / 64] |= 1 << (i % 64);
            } else {
                draw.skip(outputs, report, j0 + i);
            }
        }
        if valid[..g.div_ceil(64)].iter().any(|&w| w != 0) {
            report.passes = 1;
        }
        let valid: &[u64] = valid;
        let shared = SharedRows::new(outputs);
        // Parts of whole observations: each thread reduces the observations it drew.
        draw.draw(j0 * n, g * n, n, &|part, r0, part_rows| {
            for local in 0..part_rows / n {
                let i = r0 / n + local;
                if valid[i / 64] >> (i % 64) & 1 == 0 {
                    continue;
                }
                let samples = &part.state[local * n * d..(local + 1) * n * d];
                let column = &mut part.work.tmp[..n];
                // SAFETY: observation j0 + i lies in this part alone, and no other code uses
                // the outputs while the parts run.
                let row = unsafe { shared.row(j0 + i) };
                reduce(samples, d, quantiles, column, row);
            }
        });
        j0 += g;
    }
}

/// Writes the mean, std and `quantiles` of each parameter of one observation's `n` samples
/// (`samples`: `n` rows of `d` floats, x first; `column`: `n` floats of scratch) into its
/// output rows.
fn reduce(
    samples: &[f32],
    d: usize,
    quantiles: &[f32],
    column: &mut [f32],
    (mean, std, values): (&mut [f32], &mut [f32], &mut [f32]),
) {
    let (n, xd) = (column.len(), mean.len());
    for c in 0..xd {
        for (k, v) in column.iter_mut().enumerate() {
            *v = samples[k * d + c];
        }
        let sum = column.iter().fold(0.0f64, |s, &x| s + f64::from(x));
        let mu = mean_of(sum, n);
        let squares = column
            .iter()
            .fold(0.0f64, |s, &x| s + squared_deviation(x, mu));
        mean[c] = mu as f32;
        std[c] = std_of(squares, n);
        if !quantiles.is_empty() {
            // Sorted as their totalOrder keys: an integer sort, several times faster than one
            // calling `f32::total_cmp`, in the same order.
            let keys = as_keys(column);
            keys.iter_mut().for_each(|k| *k = key(f32::from_bits(*k)));
            keys.sort_unstable();
            for (qi, &q) in quantiles.iter().enumerate() {
                values[qi * xd + c] = from_key(keys[rank(q, n) - 1]);
            }
        }
    }
}

/// The floats of `column` as their bits, in place.
fn as_keys(column: &mut [f32]) -> &mut [u32] {
    // SAFETY: f32 and u32 have the same size and alignment, and every bit pattern is valid for
    // both; the new slice takes over the unique borrow of `column`.
    unsafe { core::slice::from_raw_parts_mut(column.as_mut_ptr().cast::<u32>(), column.len()) }
}

/// The caller's outputs as raw rows, for the threads of a call to write, each its own
/// observations' rows.
struct SharedRows {
    mean: *mut f32,
    std: *mut f32,
    values: *mut f32,
    x_dim: usize,
    per_values: usize,
    rows: usize,
}

// SAFETY: the rows are written through `row` only, whose callers write disjoint rows.
unsafe impl Sync for SharedRows {}

impl SharedRows {
    fn new(outputs: &mut Outputs<'_, '_>) -> SharedRows {
        let out = &mut outputs.out;
        SharedRows {
            mean: out.mean.as_mut_ptr(),
            std: out.std.as_mut_ptr(),
            values: out.quantile_values.as_mut_ptr(),
            x_dim: outputs.x_dim,
            per_values: outputs.quantiles.len() * outputs.x_dim,
            rows: out.mean.len() / outputs.x_dim.max(1),
        }
    }

    /// Observation `j`'s mean, std and quantile rows.
    ///
    /// # Safety
    /// No other reference to row `j` is used while the returned ones are.
    #[allow(clippy::mut_from_ref)]
    unsafe fn row(&self, j: usize) -> (&mut [f32], &mut [f32], &mut [f32]) {
        assert!(j < self.rows, "an observation of the call");
        let (xd, per) = (self.x_dim, self.per_values);
        // SAFETY: `j` is a row of the buffers (checked above; `summarize` checked their
        // lengths); the caller's contract makes the references unique.
        unsafe {
            use core::slice::from_raw_parts_mut as part;
            (
                part(self.mean.add(j * xd), xd),
                part(self.std.add(j * xd), xd),
                part(self.values.add(j * per), per),
            )
        }
    }
}

/// `n` > `max_batch`: each observation's samples drawn in passes (see the module docs).
fn summarize_in_passes(
    draw: &mut Draw<'_, '_>,
    words: &mut [u64],
    outputs: &mut Outputs<'_, '_>,
    report: &mut SummaryReport,
) {
    for j in 0..draw.observations() {
        match observation_in_passes(draw, words, outputs, j) {
            Some(passes) => report.passes = report.passes.max(passes),
            None => draw.skip(outputs, report, j),
        }
    }
}

/// Draws observation `j`'s samples once more, in chunks, and shows each chunk to `visit`
/// (rows of `dim` floats, x first). `false`, drawing nothing, if its condition is not finite.
fn pass(draw: &mut Draw<'_, '_>, j: usize, mut visit: impl FnMut(&[f32], usize)) -> bool {
    let (n, chunk) = (draw.draws.n, draw.plan.max_batch);
    if !draw.observation_is_valid(j) {
        return false;
    }
    let mut k0 = 0;
    while k0 < n {
        let m = chunk.min(n - k0);
        draw.draw(j * n + k0, m, THREAD_ROWS, &|_, _, _| {});
        visit(draw.samples(m), m);
        k0 += m;
    }
    true
}

/// One observation in passes: its summaries written, the number of passes returned (`None`
/// for an invalid observation).
fn observation_in_passes(
    draw: &mut Draw<'_, '_>,
    words: &mut [u64],
    outputs: &mut Outputs<'_, '_>,
    j: usize,
) -> Option<usize> {
    let (n, d, xd) = (draw.draws.n, draw.model.dim(), outputs.x_dim);
    let (sums, rest) = words.split_at_mut(xd);
    let (squares, rest) = rest.split_at_mut(xd);
    let (extremes, brackets) = rest.split_at_mut(xd);

    // Pass 1: sums, least and greatest keys.
    sums.fill(0.0f64.to_bits());
    extremes.fill(u64::from(u32::MAX));
    let valid = pass(draw, j, |rows, m| {
        for c in 0..xd {
            let mut sum = f64::from_bits(sums[c]);
            let (mut least, mut greatest) = (extremes[c] as u32, (extremes[c] >> 32) as u32);
            for r in 0..m {
                let x = rows[r * d + c];
                sum += f64::from(x);
                least = least.min(key(x));
                greatest = greatest.max(key(x));
            }
            sums[c] = sum.to_bits();
            extremes[c] = u64::from(least) | u64::from(greatest) << 32;
        }
    });
    if !valid {
        return None;
    }
    let mut passes = 1;
    let quantiles = outputs.quantiles;
    let (mean, std, values) = outputs.row(j);
    for c in 0..xd {
        let mu = mean_of(f64::from_bits(sums[c]), n);
        mean[c] = mu as f32;
        // Kept in f64 for pass 2.
        sums[c] = mu.to_bits();
    }

    // Pass 2 sums the squared deviations and narrows the first group of brackets; more
    // passes narrow the rest.
    squares.fill(0.0f64.to_bits());
    let targets = quantiles.len() * xd;
    let group = targets.min(brackets.len() / (HEAD + MIN_COUNTERS));
    let mut squares_pending = true;
    let mut first = 0;
    loop {
        let count = group.min(targets - first);
        let size = brackets.len().checked_div(count).unwrap_or(0);
        for t in 0..count {
            let c = (first + t) % xd;
            let (least, greatest) = (extremes[c] as u32, (extremes[c] >> 32) as u32);
            let bracket = &mut brackets[t * size..(t + 1) * size];
            bracket[0] = u64::from(least) | u64::from(greatest) << 32;
            bracket[1] = 0;
            bracket[2] = n as u64;
            prepare(bracket);
        }
        let open = |brackets: &[u64]| (0..count).any(|t| !resolved(&brackets[t * size..]));
        while squares_pending || open(brackets) {
            let counting = open(brackets);
            pass(draw, j, |rows, m| {
                if squares_pending {
                    for c in 0..xd {
                        let mu = f64::from_bits(sums[c]);
                        let mut s = f64::from_bits(squares[c]);
                        for r in 0..m {
                            s += squared_deviation(rows[r * d + c], mu);
                        }
                        squares[c] = s.to_bits();
                    }
                }
                if counting {
                    for t in 0..count {
                        let c = (first + t) % xd;
                        let bracket = &mut brackets[t * size..(t + 1) * size];
                        tally(bracket, (0..m).map(|r| rows[r * d + c]));
                    }
                }
            });
            passes += 1;
            squares_pending = false;
            if counting {
                for t in 0..count {
                    let k = rank(quantiles[(first + t) / xd], n) as u64;
                    narrow(&mut brackets[t * size..(t + 1) * size], k);
                }
            }
        }
        for t in 0..count {
            let (qi, c) = ((first + t) / xd, (first + t) % xd);
            values[qi * xd + c] = from_key(brackets[t * size] as u32);
        }
        first += count;
        if first >= targets {
            break;
        }
    }
    for c in 0..xd {
        std[c] = std_of(f64::from_bits(squares[c]), n);
    }
    Some(passes)
}

// A bracket is `size` words: [lo | hi << 32, samples below lo, samples in lo..=hi, shift or
// collected count, counters or collected keys...]. It is resolved when lo == hi: the order
// statistic is then the float of that key.

fn bounds(bracket: &[u64]) -> (u32, u32) {
    (bracket[0] as u32, (bracket[0] >> 32) as u32)
}

fn resolved(bracket: &[u64]) -> bool {
    let (lo, hi) = bounds(bracket);
    lo == hi
}

/// Whether the next pass collects the bracket's samples (few enough) or counts them.
fn collecting(bracket: &[u64]) -> bool {
    bracket[2] <= (bracket.len() - HEAD) as u64
}

/// Readies a bracket for the next pass: zero counters of the width that splits `lo..=hi` into
/// at most as many buckets as it has counters, or an empty collection.
fn prepare(bracket: &mut [u64]) {
    if resolved(bracket) {
        return;
    }
    let (lo, hi) = bounds(bracket);
    let counters = (bracket.len() - HEAD) as u64;
    if collecting(bracket) {
        bracket[3] = 0;
        return;
    }
    let width = u64::from(hi - lo);
    let mut shift = 0;
    while width >> shift >= counters {
        shift += 1;
    }
    bracket[3] = shift;
    bracket[HEAD..HEAD + (width >> shift) as usize + 1].fill(0);
}

/// Counts (or collects) the samples of one chunk that fall in the bracket.
fn tally(bracket: &mut [u64], samples: impl Iterator<Item = f32>) {
    if resolved(bracket) {
        return;
    }
    let (lo, hi) = bounds(bracket);
    if collecting(bracket) {
        let (head, keys) = bracket.split_at_mut(HEAD);
        for x in samples {
            let k = key(x);
            if (lo..=hi).contains(&k) {
                // The pass before counted exactly these samples, so they fit; a replay that
                // did not draw the same samples could only make the result wrong, not panic.
                if let Some(slot) = keys.get_mut(head[3] as usize) {
                    *slot = u64::from(k);
                    head[3] += 1;
                }
            }
        }
    } else {
        let shift = bracket[3];
        let counters = &mut bracket[HEAD..];
        for x in samples {
            let k = key(x);
            if (lo..=hi).contains(&k) {
                counters[((k - lo) as u64 >> shift) as usize] += 1;
            }
        }
    }
}

/// After a pass: narrows the bracket to the bucket holding the sample of rank `k` (1-based),
/// or resolves it from the collected samples; then readies it for the next pass.
fn narrow(bracket: &mut [u64], k: u64) {
    if resolved(bracket) {
        return;
    }
    let (lo, hi) = bounds(bracket);
    let below = bracket[1];
    if collecting(bracket) {
        let collected = bracket[3] as usize;
        let keys = &mut bracket[HEAD..HEAD + collected];
        keys.sort_unstable();
        let at = keys[(k - below - 1) as usize];
        bracket[0] = at | at << 32;
        return;
    }
    let shift = bracket[3];
    let buckets = (u64::from(hi - lo) >> shift) as usize + 1;
    let mut passed = 0;
    for b in 0..buckets {
        let count = bracket[HEAD + b];
        if below + passed + count >= k {
            let start = u64::from(lo) + ((b as u64) << shift);
            let end = (start + (1u64 << shift) - 1).min(u64::from(hi));
            bracket[0] = start | end << 32;
            bracket[1] = below + passed;
            bracket[2] = count;
            break;
        }
        passed += count;
    }
    prepare(bracket);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_total_order() {
        let values = [
            f32::NEG_INFINITY,
            -3.5,
            -f32::MIN_POSITIVE,
            -0.0,
            0.0,
            1e-45,
            1.0,
            f32::MAX,
            f32::INFINITY,
        ];
        for w in values.windows(2) {
            assert!(key(w[0]) < key(w[1]), "{} < {}", w[0], w[1]);
        }
        for v in values {
            assert_eq!(from_key(key(v)).to_bits(), v.to_bits());
        }
    }

    #[test]
    fn ranks_invert_the_empirical_distribution() {
        assert_eq!(rank(0.0, 10), 1);
        assert_eq!(rank(0.1, 10), 1);
        assert_eq!(rank(0.11, 10), 2);
        assert_eq!(rank(0.15, 10), 2);
        assert_eq!(rank(0.3, 10), 3);
        assert_eq!(rank(0.5, 10), 5);
        assert_eq!(rank(0.5, 11), 6);
        assert_eq!(rank(0.7, 10), 7);
        assert_eq!(rank(0.9, 10), 9);
        assert_eq!(rank(0.95, 100), 95);
        assert_eq!(rank(0.99, 1000), 990);
        assert_eq!(rank(1.0, 10), 10);
        assert_eq!(rank(1.0, 1 << 40), 1 << 40);
        assert_eq!(rank(0.3, 1), 1);
        // Every q = i/100 of 100 samples is rank i, as written.
        for i in 1..=100 {
            assert_eq!(rank(i as f32 / 100.0, 100), i, "q = {i}/100");
        }
    }

    /// A bracket narrowed pass by pass over the same values finds every order statistic, with
    /// as few counters as two.
    #[test]
    // Too slow under Miri (more than 10 s interpreted; scripts/miri.sh runs the rest).
    #[cfg_attr(miri, ignore)]
    fn brackets_find_exact_order_statistics() {
        let values: alloc::vec::Vec<f32> = (0..1000)
            .map(|i| libm::sinf(i as f32 * 0.7) * 100.0 + (i % 3) as f32)
            .chain([0.0, -0.0, 5.0, 5.0, 5.0])
            .collect();
        let mut sorted = values.clone();
        sorted.sort_unstable_by(f32::total_cmp);
        let least = values.iter().map(|&v| key(v)).min().unwrap();
        let greatest = values.iter().map(|&v| key(v)).max().unwrap();
        for size in [HEAD + MIN_COUNTERS, HEAD + 7, HEAD + 300] {
            for k in [1, 2, 500, 501, 1004, 1005] {
                let mut bracket = alloc::vec![0u64; size];
                bracket[0] = u64::from(least) | u64::from(greatest) << 32;
                bracket[2] = values.len() as u64;
                prepare(&mut bracket);
                let mut passes = 0;
                while !resolved(&bracket) {
                    tally(&mut bracket, values.iter().copied());
                    narrow(&mut bracket, k);
                    passes += 1;
                    assert!(passes <= 40);
                }
                assert_eq!(
                    from_key(bracket[0] as u32).to_bits(),
                    sorted[k as usize - 1].to_bits(),
                    "rank {k} with {size} words"
                );
            }
        }
    }
}
