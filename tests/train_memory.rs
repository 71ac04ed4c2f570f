//! Memory from invertibility: with recomputed activations (the default) the bytes a training
//! step allocates do not grow with depth; with stored activations they do. Measured by a
//! counting global allocator that tracks the high-water mark of live heap bytes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use innfer::rng::Rng;
use innfer::train::objective::minibatch_gradient;
use innfer::train::optim::{Adam, AdamConfig, Clip};
use innfer::train::{Chain, ChainSpec, SubnetSpec};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
            PEAK.fetch_max(now, Ordering::SeqCst);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const DIM: usize = 8;
const COND: usize = 4;
const BATCH: usize = 4096;
const HIDDEN: usize = 16;

/// Heap high-water marks, above what was live before: (a) of one training step alone (the
/// gradient with its per-thread buffers, clipping and the Adam update), on top of the
/// persistent chain and optimiser state; (b) of everything, building the chain and the
/// optimiser included. The batch is allocated beforehand.
fn training_step_peaks(blocks: usize, store_activations: bool) -> (usize, usize) {
    let mut rng = Rng::new(1, 1);
    let x: Vec<f32> = (0..BATCH * DIM).map(|_| rng.normal() as f32).collect();
    let y: Vec<f32> = (0..BATCH * COND).map(|_| rng.normal() as f32).collect();
    let base = LIVE.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    let spec = ChainSpec::all_in_one(
        DIM,
        COND,
        blocks,
        // Narrow subnets keep the test fast in debug builds; with 4096 rows the activations
        // (not the depth-proportional parameter gradients) still dominate a step's memory.
        SubnetSpec {
            hidden: vec![HIDDEN],
            ..SubnetSpec::default()
        },
    );
    let mut chain = Chain::<f32>::new(spec, 0).unwrap();
    let mut adam = Adam::new(AdamConfig::default(), chain.params().len());
    let persistent = LIVE.load(Ordering::SeqCst);
    PEAK.store(persistent, Ordering::SeqCst);
    let (loss, mut grads) = minibatch_gradient(&chain, &x, Some(&y), 1, store_activations);
    assert!(loss.is_finite());
    Clip::Norm(10.0).apply(&mut grads);
    adam.step(chain.params_mut(), &grads, 1e-3);
    drop(grads);
    let peak = PEAK.load(Ordering::SeqCst);
    (peak - persistent, peak - base)
}

#[test]
fn recomputing_activations_keeps_training_memory_flat_in_depth() {
    // One test function, so no other test thread allocates while we measure.
    let recompute = [
        training_step_peaks(4, false),
        training_step_peaks(32, false),
    ];
    let stored = [training_step_peaks(4, true), training_step_peaks(32, true)];
    let ratio = |p: [(usize, usize); 2], total: bool| {
        let pick = |v: (usize, usize)| if total { v.1 } else { v.0 } as f64;
        pick(p[1]) / pick(p[0])
    };
    let mib = |b: usize| b as f64 / (1 << 20) as f64;
    for (name, p) in [("recompute", recompute), ("stored", stored)] {
        eprintln!(
            "{name:>9}, batch {BATCH}: step peak 4 blocks {:.2} MiB, 32 blocks {:.2} MiB ({:.2}x); \
             with chain and optimiser {:.2} MiB → {:.2} MiB ({:.2}x)",
            mib(p[0].0),
            mib(p[1].0),
            ratio(p, false),
            mib(p[0].1),
            mib(p[1].1),
            ratio(p, true)
        );
    }
    assert!(
        ratio(recompute, false) <= 1.5,
        "recompute mode step memory grew {:.2}x",
        ratio(recompute, false)
    );
    assert!(
        ratio(recompute, true) <= 1.5,
        "recompute mode memory with the chain and optimiser grew {:.2}x",
        ratio(recompute, true)
    );
    assert!(
        ratio(stored, false) >= 4.0,
        "stored mode step memory grew only {:.2}x",
        ratio(stored, false)
    );
}
