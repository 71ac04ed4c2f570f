//! `innfer pack`: a model's packed image for a target (docs/format.md, "Packed images"), and
//! the memory each way of loading a model takes, for `innfer info`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use innfer::model::{ImageTarget, LoadOptions, WeightStorage, image_summary};
use innfer::{Isa, Model};

use crate::data::CliResult;

/// The targets, as `--target` names them.
pub fn parse_target(s: &str) -> Result<ImageTarget, String> {
    ImageTarget::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = ImageTarget::ALL.iter().map(|t| t.name()).collect();
        format!("`{s}` is not a target ({})", names.join(", "))
    })
}

/// The weight storages, as `--storage` names them.
pub fn parse_storage(s: &str) -> Result<WeightStorage, String> {
    match s {
        "f32" => Ok(WeightStorage::F32),
        "bf16" => Ok(WeightStorage::Bf16),
        "f16" => Ok(WeightStorage::F16),
        _ => Err(format!("`{s}` is not a weight storage (f32, bf16, f16)")),
    }
}

/// The instruction sets, as `--isa` names them.
pub fn parse_isa(s: &str) -> Result<Isa, String> {
    Isa::ALL.into_iter().find(|i| i.name() == s).ok_or_else(|| {
        let names: Vec<&str> = Isa::ALL.iter().map(|i| i.name()).collect();
        format!("`{s}` is not an instruction set ({})", names.join(", "))
    })
}

/// Writes the image of the model at `model_path` for `target`, its weights in `storage`, to
/// `out`, and says what it holds.
pub fn run(
    model_path: &Path,
    target: ImageTarget,
    storage: WeightStorage,
    out: &Path,
) -> CliResult<()> {
    let options = LoadOptions {
        weight_storage: storage,
        ..LoadOptions::default()
    };
    let model = Model::from_file_with(model_path, &options)
        .map_err(|e| format!("loading {}: {e}", model_path.display()))?;
    let image = model
        .to_image(target)
        .map_err(|e| format!("packing {}: {e}", model_path.display()))?;
    std::fs::write(out, &image).map_err(|e| format!("writing {}: {e}", out.display()))?;
    let descriptors = innfer::ffi::model_static_bytes(&image).map_err(|e| e.to_string())?;
    println!(
        "{}: {} bytes, target {}, {} weights; in place it needs {descriptors} bytes of RAM \
         (innfer_model_static_size, on this machine's pointer width)",
        out.display(),
        image.len(),
        target.name(),
        storage_name(storage)
    );
    Ok(())
}

pub fn storage_name(storage: WeightStorage) -> &'static str {
    match storage {
        WeightStorage::F32 => "f32",
        WeightStorage::Bf16 => "bf16",
        WeightStorage::F16 => "f16",
    }
}

/// The process's allocator, counting the bytes live and the most live at once, so that `innfer
/// info` reports what loading a model really took.
pub struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the counts are only
// read.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        p
    }
}

fn grew(bytes: usize) {
    let live = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

/// What loading takes: the most heap live at once while `load` ran, and what stayed live
/// after it (both beyond what was live before).
pub fn heap_of<T>(load: impl FnOnce() -> T) -> (T, usize, usize) {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let value = load();
    let peak = PEAK.load(Ordering::Relaxed) - before;
    let resident = LIVE.load(Ordering::Relaxed).saturating_sub(before);
    (value, peak, resident)
}

/// The lines `innfer info` prints about the model's memory: the heap load (peak and resident,
/// as measured), and in place from a Cortex-M4 image (its bytes, and the RAM it needs).
pub fn memory_lines(
    path: &Path,
    heap: Option<(usize, usize)>,
    model: &Model,
) -> Vec<(String, String)> {
    let mut lines = Vec::new();
    if let Some((peak, resident)) = heap {
        lines.push((
            "heap load".to_string(),
            format!("{peak} bytes peak while loading, {resident} bytes resident"),
        ));
    }
    let is_image = image_summary(&std::fs::read(path).unwrap_or_default()).ok();
    let (image, what) = match is_image {
        Some(s) => (
            std::fs::read(path).ok(),
            format!("this {} image", s.target.name()),
        ),
        None => (
            model.to_image(ImageTarget::CortexM4).ok(),
            "as a cortex-m4 image".into(),
        ),
    };
    if let Some(image) = image
        && let Ok(ram) = innfer::ffi::model_static_bytes(&image)
    {
        lines.push((
            "in place".to_string(),
            format!(
                "{what}: {} bytes of image (flash) + {ram} bytes of RAM (innfer_model_static_size)",
                image.len()
            ),
        ));
    }
    lines
}
