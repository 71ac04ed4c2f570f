//! Allocation failure: every large allocation that loading a model or creating a session
//! makes may fail, one at a time, and each failure ends in `Error::OutOfMemory` (never an
//! abort) with every byte allocated so far freed again.
//!
//! Large means at least twice the file's JSON header and at least 4 KiB. Smaller allocations
//! stay infallible: names and messages, and the tables safetensors' parser builds from the
//! header (at most about twice its length, bytes the file holds), which innfer cannot make
//! fallible; what a hostile file inflates is sized by counts, and those are larger.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;
use std::sync::atomic::{AtomicIsize, Ordering};

use innfer::{Error, Model, Session};

mod common;

struct FailingAlloc;

/// Bytes live on the heap, all threads.
static LIVE: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    /// Large allocations this thread may still make before one fails (`usize::MAX`: all).
    static LARGE_LEFT: Cell<usize> = const { Cell::new(usize::MAX) };
    /// Allocations at least this large are the ones made to fail.
    static LARGE: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Whether this large allocation fails (counting it).
fn fails(size: usize) -> bool {
    size >= LARGE.try_with(Cell::get).unwrap_or(usize::MAX)
        && LARGE_LEFT
            .try_with(|left| {
                let n = left.get();
                if n == 0 {
                    return true;
                }
                if n != usize::MAX {
                    left.set(n - 1);
                }
                false
            })
            .unwrap_or(false)
}

// SAFETY: forwards to the system allocator, or returns NULL (a valid allocation failure).
unsafe impl GlobalAlloc for FailingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if fails(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::SeqCst);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if fails(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::SeqCst);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::SeqCst);
        // SAFETY: forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() && fails(new_size) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::SeqCst);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: FailingAlloc = FailingAlloc;

/// Loads `bytes` (from memory or from `path`) and creates a session of 64 rows.
fn load_and_open(bytes: &[u8], path: &Path, from_file: bool) -> Result<(), Error> {
    let model = if from_file {
        Model::from_file(path)?
    } else {
        Model::from_bytes(bytes)?
    };
    Session::new(&model, 64)?;
    Ok(())
}

#[test]
fn every_large_allocation_of_a_load_and_a_session_may_fail_without_an_abort_or_a_leak() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let built = std::env::temp_dir().join(format!("innfer-alloc-{}.st", std::process::id()));
    std::fs::write(&built, common::glow_chain(8, 3, 256, 2, 2, 1).to_bytes()).unwrap();
    // A 64-wide FixedLinearTransform: its dense checks and packing allocate [64, 64] matrices.
    let dense = std::env::temp_dir().join(format!("innfer-alloc-dense-{}.st", std::process::id()));
    let mut f = common::glow_cinn(64, 0, 8, 1, 3);
    let d = 64;
    let diagonal = |even: f32, odd: f32| -> Vec<f32> {
        (0..d * d)
            .map(|k| match (k / d == k % d, k % 2) {
                (true, 0) => even,
                (true, _) => odd,
                _ => 0.0,
            })
            .collect()
    };
    f.set("innfer.blocks", 3)
        .set("innfer.block.2.type", "FixedLinearTransform")
        .f32("module_list.2.M", &[d, d], &diagonal(2.0, 0.5))
        .f32("module_list.2.M_inv", &[d, d], &diagonal(0.5, 2.0))
        .f32("module_list.2.logDetM", &[1], &[0.0]);
    std::fs::write(&dense, f.to_bytes()).unwrap();
    // A Householder permutation kept as its reflections (D = K = 96, past the bound for
    // forming W): its groups' f64 working arrays and packed weights.
    let householder = std::env::temp_dir().join(format!(
        "innfer-alloc-householder-{}.st",
        std::process::id()
    ));
    std::fs::write(
        &householder,
        common::householder_aio(96, 96, true, 3).to_bytes(),
    )
    .unwrap();
    for path in [
        root.join("models/kinematics.safetensors"),
        built.clone(),
        dense.clone(),
        householder.clone(),
    ] {
        let file = path.display().to_string();
        let bytes = std::fs::read(&path).unwrap();
        let header = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        // Once unhindered first, so that one-time initialisations (CPU feature detection and
        // the like) are not taken for leaks.
        load_and_open(&bytes, &path, true).unwrap();
        LARGE.with(|large| large.set((2 * header).max(4096)));
        for from_file in [false, true] {
            let mut failures = 0;
            for n in 0.. {
                let before = LIVE.load(Ordering::SeqCst);
                LARGE_LEFT.with(|left| left.set(n));
                // The error (and its message) is dropped before the heap is counted again.
                let loaded = match load_and_open(&bytes, &path, from_file) {
                    Ok(()) => true,
                    Err(Error::OutOfMemory { limit: None, .. }) => false,
                    Err(e) => panic!("{file}, allocation {n} failing: {e}"),
                };
                LARGE_LEFT.with(|left| left.set(usize::MAX));
                assert_eq!(
                    LIVE.load(Ordering::SeqCst),
                    before,
                    "{file} (file reader: {from_file}), allocation {n} failing: a leak"
                );
                if loaded {
                    break;
                }
                failures += 1;
            }
            assert!(failures > 0, "{file}: no large allocation was made");
        }
        LARGE.with(|large| large.set(usize::MAX));
    }
    std::fs::remove_file(built).unwrap();
    std::fs::remove_file(dense).unwrap();
    std::fs::remove_file(householder).unwrap();
}
