//! A Rust firmware for QEMU's mps2-an386 (Cortex-M4F) that samples an innfer model the way a
//! firmware team would: innfer is a plain dependency, and the firmware brings its own start-up
//! code (cortex-m-rt), panic handler (panic-semihosting) and allocator (embedded-alloc, wrapped
//! to count what innfer asks of it: nothing).
//!
//! The model is a packed image (`innfer pack --target cortex-m4`) in flash, which
//! `Model::from_image` builds the model on in place; the model's descriptors and the session
//! live in static memory. The firmware draws `SAMPLES` posterior samples for a one-hot label
//! (seed, stream = label) one at a time, hashes their bits (FNV-1a 64, as
//! examples/firmware/run.sh does with the host's samples), and reports memory, flash and
//! instructions per sample, ending with the line run.sh checks.
//!
//! Build-time inputs (set by run.sh): INNFER_FIRMWARE_MODEL (the packed image),
//! INNFER_FIRMWARE_EXPECTED (the host's hash of the same samples), and the static memory's
//! sizes INNFER_FIRMWARE_MODEL_MEMORY_BYTES and INNFER_FIRMWARE_SESSION_BYTES (run.sh builds
//! once with room to spare, reads the sizes the firmware reports, and builds again with them).
#![no_std]
#![no_main]

use core::alloc::{GlobalAlloc, Layout};
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicUsize, Ordering};

use cortex_m::peripheral::{SYST, syst::SystClkSource};
use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};
use embedded_alloc::LlffHeap;
use panic_semihosting as _;

/// Prints a line to the host through semihosting (`hprintln!` with inline format arguments).
macro_rules! say {
    ($($arg:tt)*) => {
        hprintln!("{}", format_args!($($arg)*))
    };
}

const SAMPLES: usize = 1000;
const SEED: u64 = 42;
const LABEL: usize = 0;
/// Rows per pass: one sample at a time, the smallest session.
const MAX_BATCH: usize = 1;

/// The packed image, aligned as `Model::from_image` reads it (4 bytes; more does no harm).
#[repr(C, align(16))]
struct Aligned<Bytes: ?Sized> {
    bytes: Bytes,
}

static MODEL: &Aligned<[u8]> = &Aligned {
    bytes: *include_bytes!(env!("INNFER_FIRMWARE_MODEL")),
};

/// A decimal number from a build-time variable.
const fn parse_bytes(digits: &str) -> usize {
    let digits = digits.as_bytes();
    let mut value = 0;
    let mut i = 0;
    while i < digits.len() {
        assert!(digits[i].is_ascii_digit(), "not a decimal number");
        value = value * 10 + (digits[i] - b'0') as usize;
        i += 1;
    }
    value
}

const MODEL_MEMORY_BYTES: usize = parse_bytes(env!("INNFER_FIRMWARE_MODEL_MEMORY_BYTES"));
const SESSION_BYTES: usize = parse_bytes(env!("INNFER_FIRMWARE_SESSION_BYTES"));

/// Static memory aligned as innfer requires (`IMAGE_MEMORY_ALIGN`, `ARENA_ALIGN`: 64 bytes).
#[repr(C, align(64))]
struct Memory<const N: usize>([u8; N]);
static mut MODEL_MEMORY: Memory<MODEL_MEMORY_BYTES> = Memory([0; MODEL_MEMORY_BYTES]);
static mut SESSION_MEMORY: Memory<SESSION_BYTES> = Memory([0; SESSION_BYTES]);

/// The firmware's own heap, for its own use: innfer allocates nothing from it.
const HEAP_CAPACITY: usize = 256;
static mut HEAP_MEMORY: [MaybeUninit<u8>; HEAP_CAPACITY] = [MaybeUninit::uninit(); HEAP_CAPACITY];

/// The firmware's allocator, counting calls, bytes in use and their peak.
struct CountingHeap {
    heap: LlffHeap,
    calls: AtomicUsize,
    in_use: AtomicUsize,
    peak: AtomicUsize,
}

// SAFETY: forwards to LlffHeap, which upholds GlobalAlloc's contract; the counters only
// observe.
unsafe impl GlobalAlloc for CountingHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.calls.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's layout, passed on.
        let ptr = unsafe { self.heap.alloc(layout) };
        if !ptr.is_null() {
            let now = self.in_use.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            self.peak.fetch_max(now, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.in_use.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { self.heap.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static HEAP: CountingHeap = CountingHeap {
    heap: LlffHeap::empty(),
    calls: AtomicUsize::new(0),
    in_use: AtomicUsize::new(0),
    peak: AtomicUsize::new(0),
};

/// The stack region painted at start-up and scanned for the high-water mark.
const STACK_PAINTED: usize = 64 * 1024;
const PAINT: u32 = 0xdead_beef;

unsafe extern "C" {
    // cortex-m-rt's linker script (link.x): section bounds and the top of the stack.
    static __sdata: u32;
    static __edata: u32;
    static __sidata: u32;
    static __sbss: u32;
    static __ebss: u32;
    static _stack_start: u32;
}

fn addr(symbol: &u32) -> usize {
    symbol as *const u32 as usize
}

/// Fills the stack below the current frame with `PAINT`, down to `STACK_PAINTED` below its top.
#[inline(never)]
fn paint_stack() {
    // SAFETY: the words lie between the end of the static data and the current stack pointer
    // (less a margin for this frame), memory nothing else uses.
    unsafe {
        let top = addr(&_stack_start);
        let mut word = (top - STACK_PAINTED) as *mut u32;
        let below_frame = (cortex_m::register::msp::read() as usize - 64) as *mut u32;
        while word < below_frame {
            word.write_volatile(PAINT);
            word = word.add(1);
        }
    }
}

/// Bytes of stack used since `paint_stack`: from the top to the lowest word overwritten.
fn stack_high_water() -> usize {
    // SAFETY: reads the painted region, which lies in RAM.
    unsafe {
        let top = addr(&_stack_start);
        let mut word = (top - STACK_PAINTED) as *const u32;
        while word.read_volatile() == PAINT {
            word = word.add(1);
        }
        top - word as usize
    }
}

/// SysTick, free-running on the core clock: 24-bit ticks, read across intervals far shorter
/// than a wrap. Under `qemu -icount shift=0` the core clock is virtual time, which advances a
/// fixed step per executed instruction; `calibrate` measures that step.
struct Ticks;

impl Ticks {
    const MASK: u32 = 0x00ff_ffff;

    fn start(syst: &mut SYST) {
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(Self::MASK);
        syst.clear_current();
        syst.enable_counter();
    }

    fn now() -> u32 {
        SYST::get_current()
    }

    /// Ticks from `earlier` to `later` (the counter counts down).
    fn between(earlier: u32, later: u32) -> u64 {
        u64::from(earlier.wrapping_sub(later) & Self::MASK)
    }
}

/// Ticks of a loop of exactly `2 * ITERATIONS` instructions (`subs`, `bne`).
fn calibrate() -> (u64, u64) {
    const ITERATIONS: u32 = 1 << 20;
    let before = Ticks::now();
    // SAFETY: a counted loop on one register.
    unsafe {
        core::arch::asm!(
            "2:",
            "subs {n}, {n}, #1",
            "bne 2b",
            n = inout(reg) ITERATIONS => _,
            options(nomem, nostack),
        );
    }
    (
        2 * u64::from(ITERATIONS),
        Ticks::between(before, Ticks::now()),
    )
}

/// FNV-1a 64 over the little-endian bytes of `values`, continuing from `hash`.
fn fnv1a(mut hash: u64, values: &[f32]) -> u64 {
    for v in values {
        for b in v.to_bits().to_le_bytes() {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

#[entry]
fn main() -> ! {
    paint_stack();
    // SAFETY: the heap memory is used by nothing else, and this runs once, before any allocation.
    unsafe { HEAP.heap.init(&raw mut HEAP_MEMORY as usize, HEAP_CAPACITY) };
    let mut core = cortex_m::Peripherals::take().unwrap();
    Ticks::start(&mut core.SYST);
    let (calib_instructions, calib_ticks) = calibrate();

    let image: &'static [u8] = &MODEL.bytes;
    let model_memory_bytes = innfer::Model::image_memory_bytes(image)
        .unwrap_or_else(|e| fail(format_args!("the packed image: {e}")));
    // SAFETY: the only reference to MODEL_MEMORY's bytes, made once.
    let model_memory = unsafe {
        core::slice::from_raw_parts_mut((&raw mut MODEL_MEMORY).cast::<u8>(), MODEL_MEMORY_BYTES)
    };
    let model = innfer::Model::from_image(image, model_memory)
        .unwrap_or_else(|e| fail(format_args!("the packed image: {e}")));
    let session_bytes = innfer::Session::arena_bytes(&model, MAX_BATCH)
        .unwrap_or_else(|e| fail(format_args!("the session: {e}")));
    say!("firmware: sizes model_memory={model_memory_bytes} session={session_bytes}");
    // SAFETY: the only reference to SESSION_MEMORY's bytes, made once.
    let session_memory = unsafe {
        core::slice::from_raw_parts_mut((&raw mut SESSION_MEMORY).cast::<u8>(), SESSION_BYTES)
    };
    let mut session = innfer::Session::in_memory(&model, MAX_BATCH, session_memory)
        .unwrap_or_else(|e| fail(format_args!("the session: {e}")));
    session.reseed(SEED, LABEL as u64);
    let layout = model.layout();
    let mut y = [0.0f32; 16];
    let mut x = [0.0f32; 16];
    let (y, x) = (&mut y[..layout.y_dim()], &mut x[..layout.x_dim()]);
    y[LABEL] = 1.0;

    let mut hash = FNV_OFFSET;
    let mut ticks = 0u64;
    for _ in 0..SAMPLES {
        let before = Ticks::now();
        let status = session.sample(y, 1, x);
        ticks += Ticks::between(before, Ticks::now());
        if let Err(e) = status {
            fail(format_args!("sampling: {e}"));
        }
        hash = fnv1a(hash, x);
    }

    // SAFETY: linker symbols: only their addresses are used.
    let (data, bss, flash) = unsafe {
        let data = addr(&__edata) - addr(&__sdata);
        (data, addr(&__ebss) - addr(&__sbss), addr(&__sidata) + data)
    };
    let heap_peak = HEAP.peak.load(Ordering::Relaxed);
    let stack = stack_high_water();
    let ram = data + bss + heap_peak + stack;
    let instructions_per_sample = ticks * calib_instructions / calib_ticks / SAMPLES as u64;
    let expected = env!("INNFER_FIRMWARE_EXPECTED");
    let mut hex = [0u8; 16];
    for (i, d) in hex.iter_mut().enumerate() {
        *d = b"0123456789abcdef"[(hash >> (60 - 4 * i)) as usize & 0xf];
    }
    let matches = expected.as_bytes() == hex;
    say!(
        "firmware: samples hash {} (host {expected})",
        core::str::from_utf8(&hex).unwrap()
    );
    say!(
        "firmware: ram = data {data} + bss {bss} (model {MODEL_MEMORY_BYTES}, session {SESSION_BYTES}, own heap {HEAP_CAPACITY}) + heap {heap_peak} + stack {stack}"
    );
    say!(
        "firmware: flash = image {} + code and constants {}; heap calls {}",
        image.len(),
        flash - image.len(),
        HEAP.calls.load(Ordering::Relaxed)
    );
    say!("firmware: clock: {calib_ticks} ticks for {calib_instructions} instructions");
    say!(
        "firmware: lang=rust samples={SAMPLES} ram_bytes={ram} flash_bytes={flash} instructions_per_sample={instructions_per_sample} matches_host={}",
        if matches { "yes" } else { "no" }
    );
    exit(if matches {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    })
}

/// Ends the program: QEMU exits with the status (semihosting); on a board without a debugger
/// attached the core sleeps.
fn exit(status: debug::ExitStatus) -> ! {
    debug::exit(status);
    loop {
        cortex_m::asm::wfi();
    }
}

fn fail(args: core::fmt::Arguments<'_>) -> ! {
    say!("firmware: error: {args}");
    exit(debug::EXIT_FAILURE)
}
