//! Sessions: the scratch memory, the random stream and the calls (forward, inverse, sample,
//! summarize).
//!
//! A session is created once for a model and a maximum batch. Its memory is one arena, on the
//! heap ([`Session::new`]) or in caller memory ([`Session::in_memory`], after asking
//! [`Session::arena_bytes`]); nothing is allocated after that. One session serves one thread
//! at a time; the model it borrows can be shared.

mod bound;
mod finite;
pub mod matrix;
#[cfg(feature = "std")]
mod pool;
mod summary;

use alloc::vec::Vec;

use crate::blocks::{CondRows, Work};
use crate::error::{Error, Result};
use crate::kernels::gemm::{Available, Isa};
use crate::kernels::normal;
use crate::model::{Layout, Model, transform};
use finite::{Overflows, all_finite, condition_is_invalid};
use matrix::{MatMut, MatRef};
pub use summary::{SummaryBuffers, SummaryReport};

/// Alignment (bytes) that caller-provided session memory must have.
pub const ARENA_ALIGN: usize = 64;

/// Floats per arena region granule (one 64-byte cache line).
const GRANULE: usize = ARENA_ALIGN / 4;

fn round_up(n: usize) -> usize {
    n.div_ceil(GRANULE) * GRANULE
}

impl MemoryPlan {
    /// Floats of one extra worker's tile scratch: 2 × hidden, coeffs, sbuf.
    #[cfg(feature = "std")]
    fn worker_floats(&self) -> usize {
        2 * self.hidden + 2 * self.coeffs
    }
}

/// Makes a row's outputs NaN (an invalid input, or a condition or input whose standardisation
/// overflowed; see src/session/finite.rs): NaN in every entry of the chain's state stays NaN in
/// every entry through every block (each output entry is arithmetic on some input entry;
/// only a subnet, e.g. a ReLU, could turn NaN into a number), whereas a single non-finite
/// value could come out as finite, meaningless numbers.
fn invalidate(row: &mut [f32]) {
    row.fill(f32::NAN);
}

/// What a sampling call draws: `n` samples for each row of `ys`, its rows from the stream
/// position `(seed, stream, first row)` on.
#[derive(Clone, Copy)]
struct Draws<'y> {
    ys: MatRef<'y>,
    n: usize,
    position: (u64, u64, u64),
}

/// What [`Session::run_parts`] runs on each part of a call: `job(part, r0, rows)`.
type PartJob<'j> = dyn Fn(&mut Buffers<'_>, usize, usize) + Sync + 'j;

/// Rows of the AVX-512 micro-tile: the threaded path gives each thread a multiple of this.
const THREAD_ROWS: usize = 12;
/// Multiply-adds a call needs (rows × the model's parameters) before it is split across
/// threads: about 40 µs of one core's work, several times the cost of waking the workers.
const THREADED_MIN_MACS: usize = 4 << 20;

/// Carves a worker's tile scratch (2 × hidden, coeffs, sbuf) out of `floats`.
#[cfg(feature = "std")]
#[allow(clippy::type_complexity)]
fn tile_scratch<'f>(
    plan: &MemoryPlan,
    floats: &'f mut [f32],
) -> (&'f mut [f32], &'f mut [f32], &'f mut [f32], &'f mut [f32]) {
    let (h0, rest) = floats.split_at_mut(plan.hidden);
    let (h1, rest) = rest.split_at_mut(plan.hidden);
    let (coeffs, sbuf) = rest.split_at_mut(plan.coeffs);
    (h0, h1, coeffs, sbuf)
}

/// Offsets (in floats) of the session's regions in its arena.
#[derive(Clone, Copy, Debug)]
struct MemoryPlan {
    max_batch: usize,
    /// Rows per tile (see `Work::tile`).
    tile: usize,
    state: usize,
    tmp: usize,
    cond: usize,
    hidden: usize,
    coeffs: usize,
    rows: usize,
    total: usize,
    /// 64-bit words of the summary scratch (src/session/summary.rs), kept apart from the floats.
    summary_words: usize,
    /// Bytes of the whole arena: `total` floats, then `summary_words` words.
    bytes: usize,
    /// [`Session::min_threaded_rows`] of the model, worked out once here (threads need std).
    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    threaded_rows: usize,
}

impl MemoryPlan {
    fn new(model: &Model, max_batch: usize) -> Option<MemoryPlan> {
        let b = max_batch;
        let state = round_up(b.checked_mul(model.dim())?);
        let cond = round_up(b.checked_mul(model.cond_dim())?);
        let tile = model.plan.tile_rows().min(b);
        let hidden = round_up(tile.checked_mul(model.plan.hidden)?);
        let coeffs = round_up(tile.checked_mul(model.plan.subnet_out)?);
        let rows = round_up(b);
        // state, tmp, cond, 2 × hidden, coeffs, sbuf (as coeffs), jac, logdet
        let total = state
            .checked_mul(2)?
            .checked_add(cond)?
            .checked_add(hidden.checked_mul(2)?)?
            .checked_add(coeffs.checked_mul(2)?)?
            .checked_add(rows.checked_mul(2)?)?;
        let summary_words = summary::scratch_words(model, max_batch)?;
        // In bytes, the arena must be a valid allocation (at most isize::MAX).
        let bytes = total
            .checked_mul(4)?
            .checked_add(summary_words.checked_mul(8)?)?;
        if bytes > isize::MAX as usize {
            return None;
        }
        Some(MemoryPlan {
            max_batch,
            tile,
            state,
            tmp: state,
            cond,
            hidden,
            coeffs,
            rows,
            total,
            summary_words,
            bytes,
            threaded_rows: Session::min_threaded_rows(model),
        })
    }
}

enum Arena<'a, T = f32> {
    Borrowed(&'a mut [T]),
    Owned(Vec<T>),
}

impl<T> Arena<'_, T> {
    fn elements(&mut self) -> &mut [T] {
        match self {
            Arena::Borrowed(s) => s,
            Arena::Owned(v) => v,
        }
    }
}

/// The buffers of one call, carved from the arena.
struct Buffers<'s> {
    state: &'s mut [f32],
    /// Condition rows, as the network takes them: row `(cond_first + i) / cond_repeat` is
    /// row `i`'s (see [`CondRows`]): one per row in a forward or inverse pass, one per
    /// observation when sampling.
    cond: &'s mut [f32],
    cond_first: usize,
    cond_repeat: usize,
    logdet: &'s mut [f32],
    work: Work<'s>,
}

/// Scratch memory, random stream and kernel choice for running one model.
///
/// # Non-finite values
/// The same in every call ([`Session::forward`], [`Session::inverse`], the sampling calls,
/// [`Session::summarize`]) and in the C API (src/session/finite.rs):
/// - a row whose input holds a NaN or an infinity (x of a forward pass, the input of an
///   inverse pass, a condition or observation y), or a value the model's declared transform
///   turns into one (an x on or outside its bounds, a band that is not positive for `clr`), is
///   *invalid*: it comes out NaN in every output, log-determinant included, and the call
///   succeeds (summarize counts such observations). The other rows are unaffected.
/// - a row whose input is finite but whose outputs come out non-finite all the same (an
///   overflow: y = 1e38, say, lies far outside what the model was trained on) also comes out
///   NaN in every output, and the call returns [`Error::NonFiniteOutput`] naming the buffer, the
///   first such row and how many there are. That error is a report, not a refusal: every output
///   is written (the other rows valid) and a sampling call has advanced the stream.
///
/// So no row mixes finite and non-finite numbers. Finite inputs far from the training data
/// can still give finite, meaningless numbers: nothing in a model says where its data lay.
/// Accuracy follows the same line: `inverse(forward(x))` returns x to within 3e-6 · (1 + |x|)
/// for x like the data a model was trained on (tests/freia_parity.rs, on the fixtures), and
/// far from it, where the latent values grow large, only to float32's 7 digits of the
/// largest value inside the chain.
pub struct Session<'m, 'a> {
    model: &'m Model,
    plan: MemoryPlan,
    arena: Arena<'a>,
    /// The summary scratch (src/session/summary.rs), in the same caller memory as `arena`.
    summary: Arena<'a, u64>,
    isa: Available,
    seed: u64,
    stream: u64,
    next_row: u64,
    /// The extra threads and their scratch, see `set_threads`.
    team: Team,
}

/// A session's extra threads: their scratch (tile-sized buffers each) and, with std, the
/// threads themselves, parked between calls (see `Session::set_threads`).
#[derive(Default)]
struct Team {
    workers: Vec<Vec<f32>>,
    #[cfg(feature = "std")]
    pool: Option<pool::Pool>,
}

impl<'m> Session<'m, 'static> {
    /// A session with its memory on the heap (allocated here, once). A `max_batch` whose
    /// memory the allocator refuses is [`Error::OutOfMemory`], not an abort.
    pub fn new(model: &'m Model, max_batch: usize) -> Result<Self> {
        let plan = Self::plan_for(model, max_batch)?;
        let arena = crate::source::budget::try_zeroed_f32("the session's memory", plan.total)?;
        let summary = crate::source::budget::try_vec(
            "the session's summary scratch",
            plan.summary_words,
            0u64,
        )?;
        Ok(Self::with_arena(
            model,
            plan,
            Arena::Owned(arena),
            Arena::Owned(summary),
        ))
    }
}

impl<'m, 'a> Session<'m, 'a> {
    /// The most threads [`Session::set_threads`] accepts.
    pub const MAX_THREADS: usize = 1024;

    fn plan_for(model: &Model, max_batch: usize) -> Result<MemoryPlan> {
        if max_batch == 0 {
            return Err(Error::Argument("max_batch must be at least 1"));
        }
        MemoryPlan::new(model, max_batch)
            .ok_or(Error::Argument("max_batch is too large to address"))
    }

    fn with_arena(
        model: &'m Model,
        plan: MemoryPlan,
        arena: Arena<'a>,
        summary: Arena<'a, u64>,
    ) -> Self {
        Session {
            model,
            plan,
            arena,
            summary,
            isa: Isa::detect_available(),
            seed: 0,
            stream: 0,
            next_row: 0,
            team: Team::default(),
        }
    }

    /// Splits every call's rows over `threads` threads (1 = the calling thread only, the
    /// default). Rows are independent and every sample row draws from its own random stream,
    /// so the results are bit-identical for any thread count. The extra threads and their
    /// scratch are created here, once: they stay parked on a condition variable between calls
    /// (and end when the session is dropped or `set_threads` is called again), so calls
    /// allocate nothing whatever the thread count. Calls of fewer rows than
    /// [`Session::min_threaded_rows`] (at least 24, and about 4 M multiply-adds in all) stay on
    /// the calling thread: waking the workers would cost more than it saves.
    ///
    /// At most [`Session::MAX_THREADS`]: a larger count is refused rather than spawned. Memory
    /// the allocator refuses, or a thread the system refuses to start, is
    /// [`Error::OutOfMemory`] (never an abort); the session then runs on the calling thread
    /// alone.
    #[cfg(feature = "std")]
    pub fn set_threads(&mut self, threads: usize) -> Result<()> {
        if threads == 0 {
            return Err(Error::Argument("threads must be at least 1"));
        }
        if threads > Self::MAX_THREADS {
            return Err(Error::Argument("threads must be at most 1024"));
        }
        self.team = Team::default();
        let per = self.plan.worker_floats();
        let scratch = "a worker thread's scratch";
        let mut workers = crate::source::budget::try_with_capacity(scratch, threads - 1)?;
        for _ in 1..threads {
            workers.push(crate::source::budget::try_vec(scratch, per, 0.0f32)?);
        }
        let pool = if threads > 1 {
            Some(pool::Pool::new(threads - 1)?)
        } else {
            None
        };
        self.team = Team { workers, pool };
        Ok(())
    }

    /// The fewest rows a call on `model` needs to run on a session's extra threads (see
    /// [`Session::set_threads`]): at least 24, and enough that the call does about 4 M
    /// multiply-adds (rows × the model's parameters). Smaller calls stay on the calling thread.
    pub fn min_threaded_rows(model: &Model) -> usize {
        let per_row = model.parameter_count().max(1);
        (2 * THREAD_ROWS).max(THREADED_MIN_MACS.div_ceil(per_row))
    }

    /// Threads each call uses (see [`Session::set_threads`]).
    pub fn threads(&self) -> usize {
        1 + self.team.workers.len()
    }

    /// Bytes of session memory for `model` at `max_batch` rows per call (for
    /// [`Session::in_memory`]); the memory must be aligned to [`ARENA_ALIGN`]. It includes
    /// [`Session::summarize`]'s scratch: 24 bytes per parameter of x and 8 per row up to 8 KB
    /// (at least 512 bytes; one bit per row beyond 65,536 rows), src/session/summary.rs.
    pub fn arena_bytes(model: &Model, max_batch: usize) -> Result<usize> {
        Ok(Self::plan_for(model, max_batch)?.bytes)
    }

    /// A session whose scratch lives in caller memory (at least
    /// [`Session::arena_bytes`] bytes, aligned to [`ARENA_ALIGN`]). Nothing is allocated.
    pub fn in_memory(model: &'m Model, max_batch: usize, memory: &'a mut [u8]) -> Result<Self> {
        let plan = Self::plan_for(model, max_batch)?;
        let address = memory.as_ptr() as usize;
        if !address.is_multiple_of(ARENA_ALIGN) {
            return Err(Error::ArenaMisaligned {
                align: ARENA_ALIGN,
                address,
            });
        }
        if memory.len() < plan.bytes {
            return Err(Error::ArenaTooSmall {
                needed: plan.bytes,
                found: memory.len(),
            });
        }
        let (float_bytes, word_bytes) = memory.split_at_mut(plan.total * 4);
        // SAFETY: the pointer is 64-byte aligned (checked above), so aligned for f32; the
        // length in floats stays within the byte slice; every bit pattern is a valid f32; and
        // the new slice takes over the unique borrow of `float_bytes` for 'a.
        let floats = unsafe {
            core::slice::from_raw_parts_mut(float_bytes.as_mut_ptr().cast::<f32>(), plan.total)
        };
        // SAFETY: `total` is a whole number of 64-byte granules, so the words start 64-byte
        // aligned; `summary_words` words fit in the rest (`bytes` counts them); every bit
        // pattern is a valid u64; the slice takes over the unique borrow of `word_bytes`.
        let words = unsafe {
            core::slice::from_raw_parts_mut(
                word_bytes.as_mut_ptr().cast::<u64>(),
                plan.summary_words,
            )
        };
        Ok(Self::with_arena(
            model,
            plan,
            Arena::Borrowed(floats),
            Arena::Borrowed(words),
        ))
    }

    /// The model this session runs.
    pub fn model(&self) -> &'m Model {
        self.model
    }

    /// Most rows one `forward`/`inverse` call takes (and the chunk size of `sample`).
    pub fn max_batch(&self) -> usize {
        self.plan.max_batch
    }

    /// The GEMM kernel in use.
    pub fn isa(&self) -> Isa {
        self.isa.isa()
    }

    /// Chooses the GEMM kernel (for tests and benchmarks); fails if this CPU lacks it.
    pub fn set_isa(&mut self, isa: Isa) -> Result<()> {
        self.isa = isa.available().ok_or(Error::IsaUnavailable(isa.name()))?;
        Ok(())
    }

    /// Restarts the random stream at `(seed, stream)`: the next sample row is row 0 of it.
    ///
    /// # The stream contract
    /// Sample row `r` of `(seed, stream)` draws its latent vector from a generator keyed by
    /// `(seed, stream, r)` alone (src/kernels/normal.rs). The session keeps the next row to
    /// draw; every sampling call draws rows `next, next + 1, …` in the order of its output and
    /// leaves `next` after the last. [`Session::sample_batch`] with `n` samples per observation
    /// gives observation `j` of the call rows `next + j·n … next + j·n + n − 1`. So observation
    /// `j` of a run that draws `n` samples for each observation has the same samples however
    /// the run is split over calls, sessions, threads or processes: a process handling
    /// observations `j0..` reseeds and calls [`Session::seek`]`(j0 · n)`.
    pub fn reseed(&mut self, seed: u64, stream: u64) {
        self.seed = seed;
        self.stream = stream;
        self.next_row = 0;
    }

    /// Moves the random stream to `row`: the next sample row drawn is row `row` of the current
    /// `(seed, stream)` (see [`Session::reseed`] for the contract). Nothing is drawn or
    /// discarded, so any position costs the same. A call whose rows would carry the next-row
    /// counter past 2⁶⁴ − 1 fails with [`Error::Argument`] and draws nothing.
    ///
    /// ```
    /// # let model = innfer::Model::from_file(concat!(env!("CARGO_MANIFEST_DIR"), "/models/kinematics.safetensors")).unwrap();
    /// // Observations 0..5, 100 samples each, in one call…
    /// let ys = [0.9f32, 0.1, 1.2, -0.3, 1.5, 0.0, 1.1, 0.4, 0.7, -0.6];
    /// let mut s = innfer::Session::new(&model, 256)?;
    /// s.reseed(42, 0);
    /// let mut all = vec![0.0; 5 * 100 * 4];
    /// s.sample_batch(&ys, 100, &mut all)?;
    /// // …or observations 3..5 alone, as another process would draw them.
    /// let mut part = innfer::Session::new(&model, 256)?;
    /// part.reseed(42, 0);
    /// part.seek(3 * 100);
    /// let mut tail = vec![0.0; 2 * 100 * 4];
    /// part.sample_batch(&ys[3 * 2..], 100, &mut tail)?;
    /// assert_eq!(tail, all[3 * 100 * 4..]);
    /// # Ok::<(), innfer::Error>(())
    /// ```
    pub fn seek(&mut self, row: u64) {
        self.next_row = row;
    }

    /// `(seed, stream, next row)` of the random stream.
    pub fn rng_position(&self) -> (u64, u64, u64) {
        (self.seed, self.stream, self.next_row)
    }

    /// The next row after a call that draws `rows` rows, or the error if the counter would
    /// pass 2⁶⁴ − 1 (then the call draws nothing).
    fn stream_end(&self, rows: usize) -> Result<u64> {
        u64::try_from(rows)
            .ok()
            .and_then(|t| self.next_row.checked_add(t))
            .ok_or(Error::Argument(
                "the random stream's next-row counter would pass 2^64 - 1",
            ))
    }

    fn buffers<'b>(
        plan: &MemoryPlan,
        isa: Available,
        arena: &'b mut Arena<'_>,
        m: usize,
    ) -> Buffers<'b> {
        let plan = *plan;
        let floats = arena.elements();
        let (state, rest) = floats.split_at_mut(plan.state);
        let (tmp, rest) = rest.split_at_mut(plan.tmp);
        let (cond, rest) = rest.split_at_mut(plan.cond);
        let (h0, rest) = rest.split_at_mut(plan.hidden);
        let (h1, rest) = rest.split_at_mut(plan.hidden);
        let (coeffs, rest) = rest.split_at_mut(plan.coeffs);
        let (sbuf, rest) = rest.split_at_mut(plan.coeffs);
        let (jac, rest) = rest.split_at_mut(plan.rows);
        let (logdet, _) = rest.split_at_mut(plan.rows);
        Buffers {
            state,
            cond,
            cond_first: 0,
            cond_repeat: 1,
            logdet,
            work: Work {
                isa,
                m,
                cond: None,
                tile: plan.tile,
                hidden: (h0, h1),
                coeffs,
                sbuf,
                tmp,
                jac,
            },
        }
    }

    fn check_rows(&self, rows: usize) -> Result<()> {
        if rows > self.plan.max_batch {
            return Err(Error::BatchTooLarge {
                batch: rows,
                max_batch: self.plan.max_batch,
            });
        }
        Ok(())
    }

    fn check_cond(&self, cond: Option<&MatRef<'_>>, rows: usize) -> Result<()> {
        match (cond, self.model.cond_dim()) {
            (None, 0) => Ok(()),
            (None, _) => Err(Error::BufferPresence {
                buffer: "cond",
                expected: true,
            }),
            (Some(_), 0) => Err(Error::BufferPresence {
                buffer: "cond",
                expected: false,
            }),
            (Some(c), cc) => {
                if c.cols() != cc {
                    return Err(Error::BufferLength {
                        buffer: c.name,
                        expected: rows * cc,
                        found: c.rows() * c.cols(),
                    });
                }
                if c.rows() != rows {
                    return Err(Error::BufferLength {
                        buffer: c.name,
                        expected: rows * cc,
                        found: c.rows() * cc,
                    });
                }
                Ok(())
            }
        }
    }

    /// Runs the chain on `m` rows already in the state buffer (their conditions one per row,
    /// see `Buffers::cond`), on the session's threads.
    fn run_chain(
        model: &Model,
        bufs: &mut Buffers<'_>,
        m: usize,
        rev: bool,
        plan: &MemoryPlan,
        team: &mut Team,
    ) {
        let job = |part: &mut Buffers<'_>, _: usize, rows: usize| {
            Self::chain(model, part, rows, rev);
        };
        Self::run_parts(model, bufs, (m, THREAD_ROWS), plan, team, &job);
    }

    /// The chain on rows `0..m` of `bufs`, on the calling thread.
    fn chain(model: &Model, bufs: &mut Buffers<'_>, m: usize, rev: bool) {
        let (d, cc) = (model.dim(), model.cond_dim());
        let logdet = &mut bufs.logdet[..m];
        logdet.fill(0.0);
        let mut work = Work {
            isa: bufs.work.isa,
            m,
            cond: (cc > 0).then_some(CondRows {
                data: bufs.cond,
                width: cc,
                first: bufs.cond_first,
                repeat: bufs.cond_repeat,
            }),
            tile: bufs.work.tile,
            hidden: (&mut *bufs.work.hidden.0, &mut *bufs.work.hidden.1),
            coeffs: &mut *bufs.work.coeffs,
            sbuf: &mut *bufs.work.sbuf,
            tmp: &mut *bufs.work.tmp,
            jac: &mut *bufs.work.jac,
        };
        Self::run_blocks(model, &mut work, &mut bufs.state[..m * d], logdet, rev);
    }

    /// Runs `job(part, r0, rows)` on parts of a call's `m` rows: on the calling thread alone
    /// (`part` is then `bufs`, `r0` 0, `rows` m), or, for at least `threaded_rows` rows on a
    /// session with threads, on contiguous parts of a multiple of `align` rows, one per
    /// thread. A part is the call's buffers for its rows (state, logdet, tmp and jac rows
    /// `r0..r0 + rows`, condition rows `r0..` with one condition per row) and scratch of its
    /// thread's own; the job loads what it needs in them, or uses conditions loaded one per
    /// row. Rows are independent, so the results do not depend on the split.
    fn run_parts(
        model: &Model,
        bufs: &mut Buffers<'_>,
        (m, align): (usize, usize),
        plan: &MemoryPlan,
        team: &mut Team,
        job: &PartJob<'_>,
    ) {
        #[cfg(feature = "std")]
        if let Some(pool) = &team.pool
            && m >= plan.threaded_rows
        {
            let workers = &mut team.workers;
            Self::run_parts_threaded(model, bufs, (m, align), plan, workers, pool, job);
            return;
        }
        let _ = (model, align, plan, team);
        job(bufs, 0, m);
    }

    /// [`Session::run_parts`] on the pool.
    #[cfg(feature = "std")]
    fn run_parts_threaded(
        model: &Model,
        bufs: &mut Buffers<'_>,
        (m, align): (usize, usize),
        plan: &MemoryPlan,
        workers: &mut [Vec<f32>],
        pool: &pool::Pool,
        job: &PartJob<'_>,
    ) {
        /// Raw views of the call's buffers; each thread touches only its own rows and scratch.
        struct Ctx {
            state: *mut f32,
            cond: *mut f32,
            logdet: *mut f32,
            tmp: *mut f32,
            jac: *mut f32,
            main: [(*mut f32, usize); 4],
            workers: *mut Vec<f32>,
        }
        // SAFETY: the pointers are only used for disjoint row ranges and per-thread scratch.
        unsafe impl Sync for Ctx {}
        let d = model.dim();
        let cc = model.cond_dim();
        let threads = pool.threads();
        let per = m.div_ceil(threads).next_multiple_of(align);
        let raw = |s: &mut [f32]| (s.as_mut_ptr(), s.len());
        let ctx = Ctx {
            state: bufs.state.as_mut_ptr(),
            cond: bufs.cond.as_mut_ptr(),
            logdet: bufs.logdet.as_mut_ptr(),
            tmp: bufs.work.tmp.as_mut_ptr(),
            jac: bufs.work.jac.as_mut_ptr(),
            main: [
                raw(bufs.work.hidden.0),
                raw(bufs.work.hidden.1),
                raw(bufs.work.coeffs),
                raw(bufs.work.sbuf),
            ],
            workers: workers.as_mut_ptr(),
        };
        assert!(workers.len() + 1 >= threads);
        let (isa, tile) = (bufs.work.isa, bufs.work.tile);
        let part_of = |t: usize| {
            let r0 = t * per;
            if r0 >= m {
                return;
            }
            let rows = per.min(m - r0);
            let ctx = &ctx;
            // SAFETY: row ranges [r0, r0 + rows) are disjoint between threads and inside the
            // buffers (m rows of each; condition rows too: there is room for one per row);
            // thread 0 alone uses the main scratch, thread t > 0 alone worker t - 1's; all
            // outlive `pool.run`, which returns only when every thread is done.
            unsafe {
                use core::slice::from_raw_parts_mut as part;
                let (h0, h1, coeffs, sbuf) = if t == 0 {
                    let [a, b, c, e] = ctx.main;
                    (
                        part(a.0, a.1),
                        part(b.0, b.1),
                        part(c.0, c.1),
                        part(e.0, e.1),
                    )
                } else {
                    tile_scratch(plan, &mut *ctx.workers.add(t - 1))
                };
                let mut bufs = Buffers {
                    state: part(ctx.state.add(r0 * d), rows * d),
                    cond: part(ctx.cond.add(r0 * cc), rows * cc),
                    cond_first: 0,
                    cond_repeat: 1,
                    logdet: part(ctx.logdet.add(r0), rows),
                    work: Work {
                        isa,
                        m: rows,
                        cond: None,
                        tile,
                        hidden: (h0, h1),
                        coeffs,
                        sbuf,
                        tmp: part(ctx.tmp.add(r0 * d), rows * d),
                        jac: part(ctx.jac.add(r0), rows),
                    },
                };
                job(&mut bufs, r0, rows);
            }
        };
        pool.run(&part_of);
    }

    fn run_blocks(
        model: &Model,
        work: &mut Work<'_>,
        state: &mut [f32],
        logdet: &mut [f32],
        rev: bool,
    ) {
        if rev {
            for block in model.blocks.iter().rev() {
                block.run(work, state, logdet, true);
            }
        } else {
            for block in &model.blocks {
                block.run(work, state, logdet, false);
            }
        }
    }

    /// Copies condition rows in, transformed and standardised (cINN layout).
    fn load_cond(model: &Model, cond_buf: &mut [f32], cond: &MatRef<'_>, m: usize) {
        let cc = model.cond_dim();
        for r in 0..m {
            let row = &mut cond_buf[r * cc..(r + 1) * cc];
            cond.read_row(r, row);
            model.prepare_condition(row);
        }
    }

    /// The forward pass `out = f(x; cond)` with per-row log|det J| (raw units, docs/format.md §3).
    /// All matrices have the same number of rows, at most [`Session::max_batch`].
    ///
    /// With an x transform (docs/format.md §3.1) x is mapped to the network's u first and
    /// log|det J| includes that map's log-Jacobian; with a y transform `cond` holds raw
    /// values. An invalid row (a NaN or infinity in x or the condition, an x on or outside its
    /// bounds, a condition its transform makes non-finite) gets NaN in its outputs and
    /// log|det J|; the call does not fail. A finite row whose outputs overflow gets NaN too and
    /// the call returns [`Error::NonFiniteOutput`] (see [`Session`], "Non-finite values").
    pub fn forward_strided(
        &mut self,
        x: MatRef<'_>,
        cond: Option<MatRef<'_>>,
        mut out: MatMut<'_>,
        logdet: Option<&mut [f32]>,
    ) -> Result<()> {
        self.pass(x, cond, &mut out, logdet, false)
    }

    /// The inverse pass `x = f⁻¹(out; cond)` with per-row log|det J| of the inverse map,
    /// x mapped into its bounds by the x transform (whose log-Jacobian log|det J| includes).
    pub fn inverse_strided(
        &mut self,
        input: MatRef<'_>,
        cond: Option<MatRef<'_>>,
        mut x: MatMut<'_>,
        logdet: Option<&mut [f32]>,
    ) -> Result<()> {
        self.pass(input, cond, &mut x, logdet, true)
    }

    fn pass(
        &mut self,
        input: MatRef<'_>,
        cond: Option<MatRef<'_>>,
        out: &mut MatMut<'_>,
        mut logdet: Option<&mut [f32]>,
        rev: bool,
    ) -> Result<()> {
        let model = self.model;
        let d = model.dim();
        let m = input.rows();
        if input.cols() != d {
            return Err(Error::BufferLength {
                buffer: input.name,
                expected: m * d,
                found: m * input.cols(),
            });
        }
        if out.rows() != m || out.cols() != d {
            return Err(Error::BufferLength {
                buffer: out.name,
                expected: m * d,
                found: out.rows() * out.cols(),
            });
        }
        if let Some(ld) = &logdet
            && ld.len() != m
        {
            return Err(Error::BufferLength {
                buffer: "logdet",
                expected: m,
                found: ld.len(),
            });
        }
        self.check_rows(m)?;
        self.check_cond(cond.as_ref(), m)?;
        if m == 0 {
            return Ok(());
        }
        let layout = model.layout();
        let plan = self.plan;
        let mut bufs = Self::buffers(&plan, self.isa, &mut self.arena, m);
        if let Some(c) = &cond {
            // A condition per row (see `Buffers::cond`).
            Self::load_cond(model, bufs.cond, c, m);
        }
        let cc = model.cond_dim();
        let transformed = !model.x_transform.is_empty();
        for r in 0..m {
            let row = &mut bufs.state[r * d..(r + 1) * d];
            input.read_row(r, row);
            let mut log_jacobian = 0.0;
            // Transform and standardise what enters the chain.
            if rev {
                if let (Layout::Inn { y, .. }, Some(norm)) = (layout, &model.y_norm) {
                    norm.forward(&mut row[d - y..]);
                }
            } else {
                let x = &mut row[..layout.x_dim()];
                log_jacobian = transform::unbound_row(&model.x_transform, x);
                if let Some(norm) = &model.x_norm {
                    norm.forward(x);
                }
            }
            // A row enters the chain finite or as NaN throughout (src/session/finite.rs).
            let valid = all_finite(row) && all_finite(&bufs.cond[r * cc..(r + 1) * cc]);
            if !valid {
                invalidate(row);
            }
            // Until the chain has run, the caller's logdet holds the x transform's
            // log-Jacobian (forward), or NaN for an invalid row.
            if let Some(ld) = logdet.as_deref_mut() {
                ld[r] = if valid { log_jacobian } else { f32::NAN };
            }
        }
        Self::run_chain(model, &mut bufs, m, rev, &plan, &mut self.team);
        // The standardisations' own log-determinants, so logdet is that of the raw-unit map.
        let mut extra = 0.0f32;
        if let Some(norm) = &model.x_norm {
            extra += if rev {
                norm.log_std_sum
            } else {
                -norm.log_std_sum
            };
        }
        let inn_y = match layout {
            Layout::Inn { y, .. } => model.y_norm.as_ref().map(|n| (y, n)),
            _ => None,
        };
        if let Some((_, norm)) = inn_y {
            extra += if rev {
                -norm.log_std_sum
            } else {
                norm.log_std_sum
            };
        }
        for r in 0..m {
            let row = &mut bufs.state[r * d..(r + 1) * d];
            if rev {
                let x = &mut row[..layout.x_dim()];
                if let Some(norm) = &model.x_norm {
                    norm.inverse(x);
                }
                if transformed && !all_finite(x) {
                    // Not finite before the bounds: an overflow (or an invalid row), NaN so
                    // the bounds cannot make finite numbers of it (src/session/finite.rs).
                    invalidate(x);
                }
                match logdet.as_deref_mut() {
                    Some(ld) if !ld[r].is_nan() => {
                        ld[r] = transform::bound_row_with_log_jacobian(&model.x_transform, x)
                    }
                    _ => transform::bound_row(&model.x_transform, x),
                }
            } else if let Some((y, norm)) = inn_y {
                norm.inverse(&mut row[d - y..]);
            }
            out.write_row(r, row);
        }
        if let Some(ld) = logdet.as_deref_mut() {
            for (dst, src) in ld.iter_mut().zip(bufs.logdet.iter()) {
                // `dst` holds the x transform's log-Jacobian (set above), or NaN.
                *dst = if dst.is_nan() {
                    f32::NAN
                } else if transformed {
                    *src + extra + *dst
                } else {
                    *src + extra
                };
            }
        }
        // The outputs as written are still in the state rows: a valid row with a non-finite
        // output is an overflow, reported (src/session/finite.rs).
        let mut overflows = Overflows::default();
        let (state, tmp) = (&mut *bufs.state, &mut *bufs.work.tmp);
        for r in 0..m {
            let row = &mut state[r * d..(r + 1) * d];
            let row_finite = all_finite(row);
            let ld_finite = logdet.as_deref().is_none_or(|ld| ld[r].is_finite());
            if row_finite && ld_finite {
                continue;
            }
            let cond_row = &mut bufs.cond[r * cc..(r + 1) * cc];
            if Self::input_is_invalid(
                model,
                &input,
                cond.as_ref(),
                r,
                rev,
                &mut tmp[..d],
                cond_row,
            ) {
                continue;
            }
            overflows.record(if row_finite { "logdet" } else { out.name }, r);
            invalidate(row);
            out.write_row(r, row);
            if let Some(ld) = logdet.as_deref_mut() {
                ld[r] = f32::NAN;
            }
        }
        overflows.result()
    }

    /// Whether row `r` of a forward (`rev` false) or inverse pass has an invalid input (see
    /// src/session/finite.rs): a non-finite value in its input row or condition, or one the
    /// model's transforms (not its standardisations) turn into one. `row` (`dim` floats) and
    /// `cond_row` (`cond_dim`) are scratch.
    fn input_is_invalid(
        model: &Model,
        input: &MatRef<'_>,
        cond: Option<&MatRef<'_>>,
        r: usize,
        rev: bool,
        row: &mut [f32],
        cond_row: &mut [f32],
    ) -> bool {
        if let Some(c) = cond {
            c.read_row(r, cond_row);
            if condition_is_invalid(model, cond_row) {
                return true;
            }
        }
        input.read_row(r, row);
        if !rev {
            transform::unbound_row(&model.x_transform, &mut row[..model.layout().x_dim()]);
        }
        !all_finite(row)
    }

    /// Forward pass on contiguous row-major buffers: `x` is `[rows][dim]`, `cond`
    /// `[rows][cond_dim]`, `out` like `x`, `logdet` `[rows]`. Non-finite values as in every
    /// call (see [`Session`]): NaN rows for invalid input, [`Error::NonFiniteOutput`] for an
    /// overflow.
    pub fn forward(
        &mut self,
        x: &[f32],
        cond: Option<&[f32]>,
        out: &mut [f32],
        logdet: Option<&mut [f32]>,
    ) -> Result<()> {
        let (xin, cin, xout) = self.contiguous(x, cond, out)?;
        self.forward_strided(xin, cin, xout, logdet)
    }

    /// Inverse pass on contiguous row-major buffers (see [`Session::forward`]).
    pub fn inverse(
        &mut self,
        input: &[f32],
        cond: Option<&[f32]>,
        x: &mut [f32],
        logdet: Option<&mut [f32]>,
    ) -> Result<()> {
        let (zin, cin, xout) = self.contiguous(input, cond, x)?;
        self.inverse_strided(zin, cin, xout, logdet)
    }

    #[allow(clippy::type_complexity)]
    fn contiguous<'x>(
        &self,
        input: &'x [f32],
        cond: Option<&'x [f32]>,
        out: &'x mut [f32],
    ) -> Result<(MatRef<'x>, Option<MatRef<'x>>, MatMut<'x>)> {
        let d = self.model.dim();
        let inp = MatRef::rows_of("input", input, d)?;
        let rows = inp.rows();
        let cin = match cond {
            Some(c) => Some(MatRef::rows_of("cond", c, self.model.cond_dim().max(1))?),
            None => None,
        };
        let outm = MatMut::rows_of("output", out, rows, d)?;
        Ok((inp, cin, outm))
    }

    /// `n` posterior samples of x for one observation `y` (raw units), written as `[n][x_dim]`
    /// row-major into `x`. Any `n`: it runs in chunks of [`Session::max_batch`]. Sample `i` uses
    /// row `next_row + i` of the random stream, so splitting `n` over calls changes nothing.
    ///
    /// `y` is what the model's y transform takes (the raw band values for `clr`), and the
    /// samples lie inside the bounds of its x transform (docs/format.md §3.1). An invalid `y`
    /// gives NaN samples, not an error; a finite `y` whose samples overflow gives NaN samples
    /// and [`Error::NonFiniteOutput`] (see [`Session`], "Non-finite values").
    pub fn sample(&mut self, y: &[f32], n: usize, x: &mut [f32]) -> Result<()> {
        let layout = self.model.layout();
        if layout == Layout::None {
            return Err(Error::NoLayout);
        }
        if y.len() != layout.y_dim() {
            return Err(Error::BufferLength {
                buffer: "y",
                expected: layout.y_dim(),
                found: y.len(),
            });
        }
        let ys = MatRef::strided("y", y, 1, y.len(), y.len(), 1)?;
        let out = MatMut::rows_of("x", x, n, layout.x_dim())?;
        self.sample_strided(ys, n, out)
    }

    /// `n` samples for each of the rows of `ys` (`[m][y_dim]`), written observation by
    /// observation into `x` (`[m·n][x_dim]`): the same numbers, and the same non-finite rows,
    /// as `m` successive `sample` calls ([`Error::NonFiniteOutput`] names the first overflowing
    /// sample row of the whole call).
    /// Sample `k` of observation `j` is row `next_row + j·n + k` of the random stream (see
    /// [`Session::reseed`] and [`Session::seek`]).
    pub fn sample_batch(&mut self, ys: &[f32], n: usize, x: &mut [f32]) -> Result<()> {
        let layout = self.model.layout();
        if layout == Layout::None {
            return Err(Error::NoLayout);
        }
        let ym = MatRef::rows_of("y", ys, layout.y_dim().max(1))?;
        let out = MatMut::rows_of("x", x, ym.rows() * n, layout.x_dim())?;
        self.sample_strided(ym, n, out)
    }

    /// The strided form of [`Session::sample_batch`]: `ys` has `m` rows of `y_dim`, `x` has
    /// `m·n` rows of `x_dim`.
    pub fn sample_strided(&mut self, ys: MatRef<'_>, n: usize, mut x: MatMut<'_>) -> Result<()> {
        let model = self.model;
        let layout = model.layout();
        let (xd, yd) = (layout.x_dim(), layout.y_dim());
        if layout == Layout::None {
            return Err(Error::NoLayout);
        }
        if ys.cols() != yd {
            return Err(Error::BufferLength {
                buffer: ys.name,
                expected: ys.rows() * yd,
                found: ys.rows() * ys.cols(),
            });
        }
        let total = ys
            .rows()
            .checked_mul(n)
            .ok_or(Error::Argument("too many samples"))?;
        if x.rows() != total || x.cols() != xd {
            return Err(Error::BufferLength {
                buffer: x.name,
                expected: total * xd,
                found: x.rows() * x.cols(),
            });
        }
        let d = model.dim();
        let (seed, stream, first_row) = (self.seed, self.stream, self.next_row);
        let end_row = self.stream_end(total)?;
        let chunk = self.plan.max_batch;
        let mut done = 0usize;
        let plan = self.plan;
        let mut bufs = Self::buffers(&plan, self.isa, &mut self.arena, chunk);
        let draws = Draws {
            ys,
            n,
            position: (seed, stream, first_row),
        };
        let mut overflows = Overflows::default();
        // The last observation found to have non-finite samples, and whether it is invalid.
        let mut checked: Option<(usize, bool)> = None;
        while done < total {
            let m = chunk.min(total - done);
            Self::draw_rows(
                model,
                &mut bufs,
                &draws,
                (done, m),
                THREAD_ROWS,
                &plan,
                &mut self.team,
                &|_, _, _| {},
            );
            for r in 0..m {
                if !all_finite(&bufs.state[r * d..r * d + xd]) {
                    // An invalid observation's samples are NaN; any other's are an overflow
                    // (src/session/finite.rs).
                    let obs = (done + r) / n;
                    let invalid = match checked {
                        Some((j, invalid)) if j == obs => invalid,
                        _ => {
                            let invalid = Self::observation_is_invalid(model, &ys, obs, &mut bufs);
                            checked = Some((obs, invalid));
                            invalid
                        }
                    };
                    let sample = &mut bufs.state[r * d..r * d + xd];
                    if !invalid {
                        overflows.record(x.name, done + r);
                        invalidate(sample);
                    }
                }
                x.write_row(done + r, &bufs.state[r * d..r * d + xd]);
            }
            done += m;
        }
        self.next_row = end_row;
        overflows.result()
    }

    /// Whether observation `j` of `ys` is invalid (src/session/finite.rs), worked out in
    /// scratch of `bufs` that holds nothing a finished chain needs.
    fn observation_is_invalid(
        model: &Model,
        ys: &MatRef<'_>,
        j: usize,
        bufs: &mut Buffers<'_>,
    ) -> bool {
        let scratch = match model.layout() {
            Layout::Inn { y, .. } => &mut bufs.work.tmp[..y],
            Layout::Cinn { .. } => &mut bufs.cond[..model.cond_dim()],
            Layout::None => return false,
        };
        ys.read_row(j, scratch);
        condition_is_invalid(model, scratch)
    }

    /// Draws rows `start..start + m` of a sampling call (`rows` = `(start, m)`) into rows
    /// `0..m` of `bufs`, on the session's threads ([`Session::run_parts`], parts a multiple of
    /// `align` rows): each part loads its rows ([`Session::load_sample_rows`]), runs the
    /// inverse chain on them and turns them into samples ([`Session::finish_sample_rows`]),
    /// then runs `after(part, r0, rows)` on them, while they are in its cache. Every sampling
    /// call draws its rows here.
    #[allow(clippy::too_many_arguments)]
    fn draw_rows(
        model: &Model,
        bufs: &mut Buffers<'_>,
        draws: &Draws<'_>,
        (start, m): (usize, usize),
        align: usize,
        plan: &MemoryPlan,
        team: &mut Team,
        after: &PartJob<'_>,
    ) {
        let job = |part: &mut Buffers<'_>, r0: usize, rows: usize| {
            let (ys, n, position) = (&draws.ys, draws.n, draws.position);
            Self::load_sample_rows(model, part, ys, n, position, start + r0, rows);
            Self::chain(model, part, rows, true);
            Self::finish_sample_rows(model, part.work.isa, part.state, rows);
            after(part, r0, rows);
        };
        Self::run_parts(model, bufs, (m, align), plan, team, &job);
    }

    /// Fills rows `0..m` of the chain's buffers with rows `start..start + m` of a sampling call
    /// that draws `n` samples for each row of `ys`: call row `g` is sample `g % n` of
    /// observation `g / n`, its latent vector drawn from stream row `first_row + g` (the stream
    /// contract of [`Session::reseed`]), its condition the observation as the network takes it.
    fn load_sample_rows(
        model: &Model,
        bufs: &mut Buffers<'_>,
        ys: &MatRef<'_>,
        n: usize,
        (seed, stream, first_row): (u64, u64, u64),
        start: usize,
        m: usize,
    ) {
        let layout = model.layout();
        let (d, cc, zd) = (model.dim(), model.cond_dim(), layout.z_dim());
        // One condition row per observation, shared by its samples (see `Buffers::cond`).
        let first_obs = start / n;
        bufs.cond_first = start - first_obs * n;
        bufs.cond_repeat = n;
        let position = (seed, stream, first_row + start as u64);
        normal::fill_rows(bufs.work.isa, position, m, bufs.state, d, zd);
        let mut observation_valid = true;
        for r in 0..m {
            let global = start + r;
            let obs = global / n;
            let row = &mut bufs.state[r * d..(r + 1) * d];
            match layout {
                Layout::Inn { y, .. } => {
                    row[zd..d - y].fill(0.0);
                    ys.read_row(obs, &mut row[d - y..]);
                    if !model.prepare_condition(&mut row[d - y..]) {
                        invalidate(row);
                    }
                }
                Layout::Cinn { .. } => {
                    // An observation's condition is prepared (transformed, standardised)
                    // once per call, at its first row.
                    if r == 0 || global.is_multiple_of(n) {
                        let c = &mut bufs.cond[(obs - first_obs) * cc..][..cc];
                        ys.read_row(obs, c);
                        observation_valid = model.prepare_condition(c);
                    }
                    if !observation_valid {
                        invalidate(row);
                    }
                }
                Layout::None => {}
            }
        }
    }

    /// Turns rows `0..m` of `state` (row stride `dim`), as the inverse chain left them, into
    /// samples of x in raw units, in place in the first `x_dim` floats of each row: what every
    /// sampling call hands out.
    fn finish_sample_rows(model: &Model, isa: Available, state: &mut [f32], m: usize) {
        let (d, xd) = (model.dim(), model.layout().x_dim());
        if !model.x_transform.is_empty() {
            // A de-standardised output that is not finite is an overflow (or an invalid row):
            // NaN, so the bounds of x cannot make finite numbers of it (src/session/finite.rs).
            // `v * std + mean` is what de-standardising computes, bit for bit.
            for row in state[..m * d].chunks_exact_mut(d) {
                let u = &mut row[..xd];
                let finite = match &model.x_norm {
                    Some(n) => u
                        .iter()
                        .zip(&n.mean)
                        .zip(&n.std)
                        .fold(true, |ok, ((v, mean), std)| {
                            ok & (v * std + mean).is_finite()
                        }),
                    None => all_finite(u),
                };
                if !finite {
                    invalidate(u);
                }
            }
        }
        let norm = model.x_norm.as_ref();
        let done = bound::blocks(isa, norm, &model.x_transform, state, m, d);
        for r in done..m {
            let row = &mut state[r * d..r * d + xd];
            if let Some(norm) = &model.x_norm {
                norm.inverse(row);
            }
            transform::bound_row(&model.x_transform, row);
        }
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;

    /// A sample is the inverse pass of its latent vector with its observation's condition, bit
    /// for bit: sampling computes each subnet's condition part once per observation
    /// (src/blocks/subnet.rs), a pass with a condition per row once per row. On every ISA, on
    /// one thread and two, with calls that end inside an observation's run of samples.
    #[test]
    // Not under Miri: it reads its model from a file, which Miri's isolation refuses
    // (scripts/miri.sh keeps isolation on; tests/ffi_miri.rs embeds its fixture).
    #[cfg_attr(miri, ignore)]
    fn a_sample_is_the_inverse_of_its_latent_vector_with_its_condition() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/pypi_cinn_bounded_clr/model.safetensors"
        );
        let model = Model::from_file(path).unwrap();
        let (d, xd, yd) = (model.dim(), model.layout().x_dim(), model.layout().y_dim());
        let (m, n) = (5, 23);
        let ys: Vec<f32> = (0..m * yd).map(|i| 0.5 + (i % 7) as f32 * 0.25).collect();
        let z: Vec<f32> = (0..m * n)
            .flat_map(|r| {
                let mut row = alloc::vec![0.0f32; d];
                normal::fill_row(3, 1, r as u64, &mut row);
                row
            })
            .collect();
        let cond: Vec<f32> = (0..m * n)
            .flat_map(|r| ys[r / n * yd..(r / n + 1) * yd].to_vec())
            .collect();
        for isa in Isa::ALL.into_iter().filter(|i| i.is_available()) {
            for threads in [1, 2] {
                // 40 rows a call: calls end inside observations.
                let mut s = Session::new(&model, 40).unwrap();
                s.set_isa(isa).unwrap();
                s.set_threads(threads).unwrap();
                s.reseed(3, 1);
                let mut sampled = alloc::vec![0.0f32; m * n * xd];
                s.sample_batch(&ys, n, &mut sampled).unwrap();
                let mut big = Session::new(&model, m * n).unwrap();
                big.set_isa(isa).unwrap();
                let mut inverted = alloc::vec![0.0f32; m * n * d];
                big.inverse(&z, Some(&cond), &mut inverted, None).unwrap();
                for r in 0..m * n {
                    let (a, b) = (&sampled[r * xd..][..xd], &inverted[r * d..][..xd]);
                    assert!(
                        a.iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits()),
                        "{isa:?}, {threads} threads, row {r}: {a:?} sampled, {b:?} inverted"
                    );
                }
            }
        }
    }

    /// Samples and inverse passes are bit-identical for 1, 2 and 3 threads on every ISA.
    #[test]
    // Too slow under Miri: the threads need calls of thousands of rows (minutes interpreted;
    // scripts/miri.sh runs the rest).
    #[cfg_attr(miri, ignore)]
    fn threads_give_identical_results() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/pypi_cinn_stats/model.safetensors"
        );
        let model = Model::from_file(path).unwrap();
        let (xd, yd) = (model.layout().x_dim(), model.layout().y_dim());
        // Calls big enough for the threads (this small model needs thousands of rows), and a
        // sample count that needs several calls.
        let batch = Session::min_threaded_rows(&model) + 5;
        let n = batch + batch / 2;
        let y: alloc::vec::Vec<f32> = (0..2 * yd).map(|i| i as f32 * 0.3 - 0.5).collect();
        for isa in Isa::ALL.into_iter().filter(|i| i.is_available()) {
            let mut reference: Option<(alloc::vec::Vec<f32>, alloc::vec::Vec<f32>)> = None;
            for threads in [1, 2, 3] {
                let mut s = Session::new(&model, batch).unwrap();
                s.set_isa(isa).unwrap();
                s.set_threads(threads).unwrap();
                s.reseed(5, 1);
                let mut x = alloc::vec![0.0f32; 2 * n * xd];
                s.sample_batch(&y, n, &mut x).unwrap();
                let z: alloc::vec::Vec<f32> = x[..batch * xd].to_vec();
                let cond: alloc::vec::Vec<f32> =
                    (0..batch * yd).map(|i| (i % 7) as f32 * 0.1).collect();
                let mut inv = alloc::vec![0.0f32; batch * xd];
                s.inverse(&z, Some(&cond), &mut inv, None).unwrap();
                match &reference {
                    None => reference = Some((x, inv)),
                    Some((rx, ri)) => {
                        assert!(
                            rx.iter().zip(&x).all(|(a, b)| a.to_bits() == b.to_bits()),
                            "{isa:?}: samples differ with {threads} threads"
                        );
                        assert!(
                            ri.iter().zip(&inv).all(|(a, b)| a.to_bits() == b.to_bits()),
                            "{isa:?}: inverse differs with {threads} threads"
                        );
                    }
                }
            }
        }
    }
}
