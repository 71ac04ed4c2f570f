//! A persistent worker pool for multi-threaded calls (std only): the threads are spawned once,
//! by `Session::set_threads`, and parked on a condition variable between calls. A call hands
//! every thread its index through a borrowed closure; nothing is allocated per call (the
//! futex-based `Mutex`/`Condvar` of std allocate nothing).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::vec::Vec;

/// The job of one call, its lifetime erased: only dereferenced while [`Pool::run`] (which
/// borrows the closure) waits for every worker to finish with it.
#[derive(Clone, Copy)]
struct JobPtr(*const (dyn Fn(usize) + Sync + 'static));

// SAFETY: the pointee is `Sync` and outlives every use (see `JobPtr`).
unsafe impl Send for JobPtr {}

struct State {
    /// Bumped once per call; a worker runs each generation once.
    generation: u64,
    job: Option<JobPtr>,
    /// Workers still running the current job.
    pending: usize,
    /// A worker's job panicked during the current call.
    panicked: bool,
    quit: bool,
}

struct Shared {
    state: Mutex<State>,
    start: Condvar,
    done: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic never happens while the lock is held (jobs run outside it).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `workers` parked threads; the calling thread is index 0 of every job.
pub(crate) struct Pool {
    shared: Arc<Shared>,
    handles: Vec<JoinHandle<()>>,
}

impl Pool {
    /// Spawns `workers` threads (indices 1..=workers), or ends those it started and fails if
    /// the system refuses one.
    pub(crate) fn new(workers: usize) -> crate::error::Result<Pool> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                generation: 0,
                job: None,
                pending: 0,
                panicked: false,
                quit: false,
            }),
            start: Condvar::new(),
            done: Condvar::new(),
        });
        let mut pool = Pool {
            shared,
            handles: crate::source::budget::try_with_capacity("the worker threads", workers)?,
        };
        for index in 1..=workers {
            let shared = Arc::clone(&pool.shared);
            let spawned = std::thread::Builder::new()
                .name(std::format!("innfer-{index}"))
                .spawn(move || worker(&shared, index));
            match spawned {
                Ok(handle) => pool.handles.push(handle),
                // Dropping `pool` ends the workers started so far.
                Err(e) => {
                    return Err(crate::error::Error::OutOfMemory {
                        what: std::format!("the stack of worker thread {index} ({e})"),
                        // Rust's default stack for a new thread.
                        bytes: 2 << 20,
                        limit: None,
                    });
                }
            }
        }
        // One empty call: every worker has started (and done whatever a new thread allocates)
        // before the pool is handed out.
        pool.run(&|_| {});
        Ok(pool)
    }

    /// Threads of a call, the caller included.
    pub(crate) fn threads(&self) -> usize {
        1 + self.handles.len()
    }

    /// Runs `job(0)` on the calling thread and `job(i)` on worker `i` for every worker, and
    /// returns when all have finished. A panic in any of them is re-raised here.
    pub(crate) fn run(&self, job: &(dyn Fn(usize) + Sync)) {
        // SAFETY: only the lifetime is changed; `Wait` below keeps this call (and so the borrow
        // of `job`) alive until no worker uses the pointer any more, even if `job(0)` panics.
        let ptr: *const (dyn Fn(usize) + Sync + 'static) = unsafe { core::mem::transmute(job) };
        {
            let mut st = self.shared.lock();
            st.job = Some(JobPtr(ptr));
            st.pending = self.handles.len();
            st.panicked = false;
            st.generation = st.generation.wrapping_add(1);
        }
        self.shared.start.notify_all();

        struct Wait<'p>(&'p Shared);
        impl Drop for Wait<'_> {
            fn drop(&mut self) {
                let mut st = self.0.lock();
                while st.pending > 0 {
                    st = self.0.done.wait(st).unwrap_or_else(|e| e.into_inner());
                }
                st.job = None;
            }
        }
        let wait = Wait(&self.shared);
        job(0);
        drop(wait);
        if self.shared.lock().panicked {
            panic!("innfer: a worker thread panicked");
        }
    }
}

fn worker(shared: &Shared, index: usize) {
    let mut seen = 0u64;
    loop {
        let job = {
            let mut st = shared.lock();
            while st.generation == seen && !st.quit {
                st = shared.start.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            if st.quit {
                return;
            }
            seen = st.generation;
            st.job
        };
        let ok = match job {
            // SAFETY: `Pool::run` keeps the closure alive until `pending` drops to 0 below.
            Some(JobPtr(f)) => catch_unwind(AssertUnwindSafe(|| unsafe { (*f)(index) })).is_ok(),
            None => true,
        };
        let mut st = shared.lock();
        st.panicked |= !ok;
        st.pending -= 1;
        if st.pending == 0 {
            shared.done.notify_one();
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.lock().quit = true;
        self.shared.start.notify_all();
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}
