//! After a session exists, forward, inverse, sampling and summaries allocate nothing: a counting global
//! allocator wraps the system one and the calls below must leave its count unchanged — with
//! one thread and with a 2-thread session (`set_threads(2)`: the worker pool is created there,
//! and the calls, which then run on both threads, must still allocate nothing on any thread).
//! (Run in debug by `cargo test` and in release by `cargo test --release`; .ci/run does both.)
//!
//! The count is process-wide, so this file runs without the test harness (`harness = false`
//! in Cargo.toml): libtest's own main thread, which waits beside a running test, allocated now
//! and then (seen with `RUST_BACKTRACE=1`) and was counted against the library.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use innfer::{Isa, Model, Session, SummaryBuffers};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made while `f` runs (no other thread of this process runs meanwhile but the
/// session's own workers).
fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    f();
    ALLOCATIONS.load(Ordering::SeqCst) - before
}

fn models() -> Vec<(&'static str, Model)> {
    let mut out = vec![
        (
            "cinn",
            Model::from_bytes(&common::glow_cinn(7, 3, 32, 3, 5).to_bytes()).unwrap(),
        ),
        (
            "inn",
            Model::from_bytes(&common::glow_inn(2, 6, 2, 2, 4, 3).to_bytes()).unwrap(),
        ),
        // A Householder permutation applied as its reflections (src/blocks/allinone.rs).
        (
            "householder",
            Model::from_bytes(&common::householder_aio(128, 128, true, 5).to_bytes()).unwrap(),
        ),
    ];
    // Every committed FrEIA fixture too: every block type's hot path.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    if let Ok(dirs) = std::fs::read_dir(root) {
        for dir in dirs.flatten() {
            let path = dir.path().join("model.safetensors");
            if path.is_file() {
                out.push(("fixture", Model::from_file(&path).unwrap()));
            }
        }
    }
    out
}

fn main() {
    // Arguments a test runner passes (`--test-threads=1`, `-q`, a filter) change nothing here.
    forward_inverse_and_sample_allocate_nothing();
    building_on_a_packed_image_allocates_nothing();
    println!("no_allocation: 2 passed, 0 failed");
}

/// Addresses of the regions leaked on purpose below (images and their models need `'static`
/// memory), kept where a leak checker can still reach them: valgrind's run of this file
/// (scripts/valgrind-rust-tests.sh) fails on memory that is lost, not on memory kept.
static KEPT: std::sync::Mutex<Vec<usize>> = std::sync::Mutex::new(Vec::new());

/// `bytes`, for the rest of the process.
fn keep(bytes: Vec<u8>) -> &'static [u8] {
    let kept: &'static [u8] = bytes.leak();
    KEPT.lock().unwrap().push(kept.as_ptr() as usize);
    kept
}

/// `len` bytes aligned to 64 (what images' models and sessions take), for the rest of the
/// process.
fn aligned_memory(len: usize) -> &'static mut [u8] {
    #[repr(C, align(64))]
    struct Line([u8; 64]);
    let lines: &'static mut [Line] =
        Vec::from_iter((0..len.div_ceil(64)).map(|_| Line([0; 64]))).leak();
    KEPT.lock().unwrap().push(lines.as_ptr() as usize);
    // SAFETY: the lines' bytes, leaked (valid forever), at least `len` of them.
    unsafe { std::slice::from_raw_parts_mut(lines.as_mut_ptr().cast(), len) }
}

/// Building a model on a packed image (measuring its memory, then building), a session in
/// caller memory on it, and a pass: no allocation at all, for every target and every fixture
/// (docs/format.md, "Packed images").
fn building_on_a_packed_image_allocates_nothing() {
    for (name, model) in models() {
        for target in innfer::model::ImageTarget::ALL {
            let image = keep(model.to_image(target).unwrap());
            let memory = aligned_memory(16384);
            let arena = aligned_memory(Session::arena_bytes(&model, 4).unwrap());
            let (d, c) = (model.dim(), model.cond_dim());
            let (x, cond, mut out) = (vec![0.5f32; 4 * d], vec![0.25f32; 4 * c], vec![0.0; 4 * d]);
            let count = allocations_during(|| {
                let need = Model::image_memory_bytes(image).unwrap();
                assert!(need <= memory.len(), "{name}: {need} bytes");
                let built = Model::from_image(image, memory).unwrap();
                let mut session = Session::in_memory(&built, 4, arena).unwrap();
                let cond = (c > 0).then_some(&cond[..]);
                session.forward(&x, cond, &mut out, None).unwrap();
            });
            assert_eq!(count, 0, "{name} {target:?}: {count} allocations");
        }
    }
}

fn forward_inverse_and_sample_allocate_nothing() {
    // The counter works: an allocation is seen.
    assert!(allocations_during(|| drop(std::hint::black_box(Vec::<u8>::with_capacity(16)))) >= 1);
    for (name, model) in models() {
        for (isa, threads) in [
            (Isa::Portable, 1),
            (Isa::Avx2Fma, 1),
            (Isa::Avx512, 1),
            (Isa::detect(), 2),
        ] {
            if !isa.is_available() {
                continue;
            }
            // Multi-threaded calls need enough rows to be worth the threads.
            let max_batch = if threads == 1 {
                64
            } else {
                Session::min_threaded_rows(&model)
            };
            let mut session = Session::new(&model, max_batch).unwrap();
            session.set_isa(isa).unwrap();
            session.set_threads(threads).unwrap();
            let d = model.dim();
            let cc = model.cond_dim();
            let x = vec![0.25f32; max_batch * d];
            let c = vec![0.5f32; max_batch * cc];
            let cond = (cc > 0).then_some(&c[..]);
            let mut out = vec![0.0f32; max_batch * d];
            let mut back = vec![0.0f32; max_batch * d];
            let mut logdet = vec![0.0f32; max_batch];
            let layout = model.layout();
            let y = vec![0.1f32; 3 * layout.y_dim()];
            let n = max_batch * 2 + 22; // more than max_batch: sampling runs in chunks
            let mut xs = vec![0.0f32; 3 * n * layout.x_dim()];
            // Summaries with an invalid observation, in one pass and in passes.
            let mut ys_bad = y.clone();
            if let Some(v) = ys_bad.first_mut() {
                *v = f32::NAN;
            }
            let quantiles = [0.05f32, 0.5, 0.95];
            let xd = layout.x_dim();
            let (mut mean, mut std) = (vec![0.0f32; 3 * xd], vec![0.0f32; 3 * xd]);
            let mut q = vec![0.0f32; 3 * quantiles.len() * xd];

            let count = allocations_during(|| {
                for rows in [1, 7, max_batch] {
                    let cond = cond.map(|c| &c[..rows * cc]);
                    session
                        .forward(
                            &x[..rows * d],
                            cond,
                            &mut out[..rows * d],
                            Some(&mut logdet[..rows]),
                        )
                        .unwrap();
                    session
                        .inverse(
                            &out[..rows * d],
                            cond,
                            &mut back[..rows * d],
                            Some(&mut logdet[..rows]),
                        )
                        .unwrap();
                }
                if layout.x_dim() > 0 {
                    session
                        .sample(&y[..layout.y_dim()], n, &mut xs[..n * layout.x_dim()])
                        .unwrap();
                    session.sample_batch(&y, n, &mut xs).unwrap();
                    // Two observations (the invalid one and one more) in passes, with just
                    // more samples than the session holds.
                    let yd = layout.y_dim();
                    for (rows, samples) in [(3, 5), (2, max_batch + 1)] {
                        let out = SummaryBuffers {
                            mean: &mut mean[..rows * xd],
                            std: &mut std[..rows * xd],
                            quantile_values: &mut q[..rows * quantiles.len() * xd],
                        };
                        let report = session
                            .summarize(&ys_bad[..rows * yd], samples, &quantiles, out)
                            .unwrap();
                        assert_eq!(report.invalid_rows, 1);
                        assert_eq!(report.passes > 1, samples > max_batch);
                    }
                    let out = SummaryBuffers {
                        mean: &mut mean,
                        std: &mut std,
                        quantile_values: &mut q,
                    };
                    assert!(session.summarize(&y, 0, &quantiles, out).is_err());
                }
                // Errors on the hot path allocate nothing either.
                assert!(
                    session
                        .forward(&x[..d + 1], cond, &mut out[..d + 1], None)
                        .is_err()
                );
            });
            assert_eq!(
                count,
                0,
                "{name} on {} with {threads} threads: {count} allocations after session creation",
                isa.name()
            );
        }
    }
}
