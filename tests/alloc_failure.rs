//! Allocation failure: every allocation that loading a model or creating a session makes may
//! fail, one at a time, and each failure ends in `Error::OutOfMemory` (never an abort) with
//! every byte allocated so far freed again: the JSON header's tables, the names looked up, the
//! labels, the packed weights, the session's arena, for a file in memory and a file read piece
//! by piece, in every weight storage, and for a packed image copied onto the heap.
//!
//! (An allocation that fails and aborts would end this test's process: the test fails.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};

use innfer::model::ImageTarget;
use innfer::{Error, LoadOptions, Model, Session, WeightStorage};

mod common;

struct FailingAlloc;

thread_local! {
    /// Bytes this thread allocated less the bytes it freed. Per thread: the test harness's
    /// own threads allocate while a test runs, and a load and its session (one thread) allocate
    /// and free only on the thread that calls them.
    static LIVE: Cell<isize> = const { Cell::new(0) };
    /// Allocations this thread may still make before one fails (`usize::MAX`: all).
    static LEFT: Cell<usize> = const { Cell::new(usize::MAX) };
    /// Whether an allocation was refused since [`refuse_allocation`].
    static REFUSED: Cell<bool> = const { Cell::new(false) };
}

/// Adds `bytes` to this thread's live bytes (not while the thread is being torn down).
fn count(bytes: isize) {
    let _ = LIVE.try_with(|live| live.set(live.get() + bytes));
}

/// This thread's live bytes.
fn live() -> isize {
    LIVE.with(Cell::get)
}

/// Makes this thread's allocation number `n` (from 0) fail.
fn refuse_allocation(n: usize) {
    REFUSED.with(|r| r.set(false));
    LEFT.with(|left| left.set(n));
}

/// Stops refusing; whether an allocation was refused.
fn stop_refusing() -> bool {
    LEFT.with(|left| left.set(usize::MAX));
    REFUSED.with(Cell::get)
}

/// Whether this allocation fails (counting it).
fn fails(_size: usize) -> bool {
    LEFT.try_with(|left| {
        let n = left.get();
        if n == 0 {
            left.set(usize::MAX);
            REFUSED.with(|r| r.set(true));
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
            count(layout.size() as isize);
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
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
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
            count(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: FailingAlloc = FailingAlloc;

/// How a model reaches the loader.
#[derive(Clone, Copy, Debug)]
enum Load {
    /// `Model::from_bytes_with` on the whole file.
    Bytes(WeightStorage),
    /// `Model::from_file`, which reads the file piece by piece.
    File,
}

/// Loads `bytes` (from memory or from `path`) and creates a session of 64 rows.
fn load_and_open(bytes: &[u8], path: &Path, how: Load) -> Result<(), Error> {
    let model = match how {
        Load::File => Model::from_file(path)?,
        Load::Bytes(weight_storage) => {
            let options = LoadOptions {
                weight_storage,
                ..LoadOptions::default()
            };
            Model::from_bytes_with(bytes, &options)?
        }
    };
    Session::new(&model, 64)?;
    Ok(())
}

/// Model files with every block type and option: the committed fixtures and shipped models,
/// and built ones (written to `dir`).
fn model_files(dir: &Path) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths: Vec<PathBuf> = std::fs::read_dir(root.join("tests/fixtures"))
        .unwrap()
        .flatten()
        .map(|d| d.path().join("model.safetensors"))
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    for name in ["kinematics", "gmm8_some", "msi_oximetry"] {
        paths.push(root.join(format!("models/{name}.safetensors")));
    }
    std::fs::create_dir_all(dir).unwrap();
    let mut built = |name: &str, bytes: Vec<u8>| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        paths.push(path);
    };
    built(
        "glow_chain.safetensors",
        common::glow_chain(8, 3, 256, 2, 2, 1).to_bytes(),
    );
    // A 64-wide FixedLinearTransform: its dense checks and packing allocate [64, 64] matrices.
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
    built("fixed_linear.safetensors", f.to_bytes());
    // A Householder permutation kept as its reflections (D = K = 96, past the bound for
    // forming W): its groups' f64 working arrays and packed weights.
    built(
        "householder.safetensors",
        common::householder_aio(96, 96, true, 3).to_bytes(),
    );
    paths
}

/// Makes each allocation of `load` fail in turn, until one runs with none refused: every
/// refusal must end in `Error::OutOfMemory` with the heap as before. Returns how many
/// allocations the load makes.
fn refuse_each_allocation(what: &str, load: impl Fn() -> Result<(), Error>) -> usize {
    // Once unhindered first, so that one-time initialisations (CPU feature detection and the
    // like) are not taken for leaks.
    load().unwrap();
    for n in 0.. {
        let before = live();
        refuse_allocation(n);
        // Whether it loaded; the error and its message are dropped at the end of this
        // statement, before the heap is counted again.
        let loaded = match load() {
            Ok(()) => true,
            Err(Error::OutOfMemory { limit: None, .. }) => false,
            Err(e) => {
                stop_refusing();
                panic!("{what}, allocation {n} refused: {e}")
            }
        };
        let refused = stop_refusing();
        if loaded && !refused {
            return n;
        }
        // (A refusal loading survives would be no fault; none does today.)
        assert_eq!(live(), before, "{what}, allocation {n} refused: a leak");
    }
    unreachable!()
}

#[test]
fn every_allocation_of_a_load_and_a_session_may_fail_without_an_abort_or_a_leak() {
    let dir = std::env::temp_dir().join(format!("innfer-alloc-{}", std::process::id()));
    for path in model_files(&dir) {
        let file = path.display().to_string();
        let bytes = std::fs::read(&path).unwrap();
        for how in [
            Load::File,
            Load::Bytes(WeightStorage::F32),
            Load::Bytes(WeightStorage::Bf16),
            Load::Bytes(WeightStorage::F16),
        ] {
            let what = format!("{file} ({how:?})");
            let made = refuse_each_allocation(&what, || load_and_open(&bytes, &path, how));
            assert!(made > 3, "{what}: only {made} allocations");
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn every_allocation_of_loading_a_packed_image_onto_the_heap_may_fail_cleanly() {
    let dir = std::env::temp_dir().join(format!("innfer-alloc-image-{}", std::process::id()));
    for path in model_files(&dir) {
        let model = Model::from_file(&path).unwrap();
        for target in ImageTarget::ALL {
            let image = model.to_image(target).unwrap();
            let what = format!("{} packed for {target:?}", path.display());
            let made = refuse_each_allocation(&what, || {
                let model = Model::from_bytes(&image)?;
                Session::new(&model, 64)?;
                Ok(())
            });
            assert!(made > 1, "{what}: only {made} allocations");
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}
