/* A C firmware for QEMU's mps2-an386 (Cortex-M4F) sampling an innfer model through the C API
 * (libinnfer.a from scripts/build-baremetal-lib.sh, newlib-nano, semihosting console).
 *
 * The model is a packed image (`innfer pack --target cortex-m4`) in flash, which
 * innfer_model_init_static() builds the model on in place: the weights are read where they
 * lie, the model's descriptors and the session live in static memory of exactly the sizes
 * `innfer info` gives (MODEL_MEMORY_BYTES, SESSION_BYTES), and nothing is allocated. The
 * firmware draws SAMPLES posterior samples for a one-hot label (seed SEED, stream = label) one
 * at a time, hashes their bits (FNV-1a 64, as examples/firmware/run.sh does with the host's
 * samples), and reports memory, flash and instructions per sample, ending with the line run.sh
 * checks.
 *
 * Built with CHECKS, it instead checks the library's promises and ends with "firmware: checks
 * passed": damaged packed images are refused; on the heap load path (HEAP_MODEL_PATH, the
 * model's .safetensors file), with malloc refusing past a small cap the load returns
 * INNFER_STATUS_OUT_OF_MEMORY in bounded time, leaking nothing, and truncated files are
 * refused.
 *
 * Build-time inputs (run.sh): MODEL_PATH (the packed image), EXPECTED_HASH (the host's hash of
 * the same samples, 16 hex digits), MODEL_MEMORY_BYTES and SESSION_BYTES; for CHECKS,
 * HEAP_MODEL_PATH. */
#define INNFER_NO_STD 1
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "firmware.h"
#include "innfer.h"

#define SAMPLES 1000
#define SEED 42
#define LABEL 0
#define MAX_BATCH 1
#define STACK_PAINT 0xdeadbeefu

#if !defined(MODEL_PATH) || !defined(EXPECTED_HASH) || !defined(MODEL_MEMORY_BYTES) || !defined(SESSION_BYTES)
#error "define MODEL_PATH, EXPECTED_HASH, MODEL_MEMORY_BYTES and SESSION_BYTES (see run.sh)"
#endif

/* Embeds file `path` in flash between `name`_start and `name`_end, aligned for reading in
 * place. */
#define EMBED(name, path)                                                                      \
    __asm__(".section .rodata." #name ",\"a\"\n"                                                \
            ".balign 16\n" #name "_start:\n"                                                   \
            ".incbin \"" path "\"\n" #name "_end:\n"                                           \
            ".previous\n");                                                                    \
    extern const uint8_t name##_start[], name##_end[]

EMBED(model, MODEL_PATH);

static uint8_t model_memory[MODEL_MEMORY_BYTES] __attribute__((aligned(INNFER_ARENA_ALIGN)));

/* ---- console lines without printf (which would allocate in newlib) ---- */
static char line[256];
static size_t line_len;

static void put(const char *s) {
    while (*s && line_len + 1 < sizeof line) line[line_len++] = *s++;
    line[line_len] = 0;
}

static void put_u(uint64_t v) {
    char digits[21];
    int i = 20;
    digits[i] = 0;
    do digits[--i] = (char)('0' + v % 10); while ((v /= 10) != 0);
    put(digits + i);
}

static void end_line(void) {
    put("\n");
    console_write(line);
    line_len = 0;
    line[0] = 0;
}

static void fail(const char *what, const char *detail) {
    put("firmware: error: ");
    put(what);
    put(": ");
    put(detail);
    end_line();
    firmware_exit(1);
}

/* ---- malloc with a cap, counted (the link wraps malloc and free: -Wl,--wrap=malloc) ---- */
void *__real_malloc(size_t size);
void __real_free(void *ptr);

static size_t heap_cap = SIZE_MAX, heap_in_use, heap_peak, heap_calls;

/* Each block carries its size in an 8-byte header (keeping malloc's 8-byte alignment). */
void *__wrap_malloc(size_t size) {
    heap_calls++;
    if (size > heap_cap - heap_in_use || size > SIZE_MAX - 8) return NULL;
    size_t *block = __real_malloc(size + 8);
    if (!block) return NULL;
    block[0] = size;
    heap_in_use += size;
    if (heap_in_use > heap_peak) heap_peak = heap_in_use;
    return (char *)block + 8;
}

void __wrap_free(void *ptr) {
    if (!ptr) return;
    size_t *block = (size_t *)((char *)ptr - 8);
    heap_in_use -= block[0];
    __real_free(block);
}

/* ---- SysTick on the core clock: under qemu -icount the clock is virtual time, a fixed step
 * per instruction; calibrate() measures the step with a loop of known length ---- */
#define SYST_CSR (*(volatile uint32_t *)0xE000E010)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018)
#define TICK_MASK 0x00ffffffu

static void ticks_start(void) {
    SYST_RVR = TICK_MASK;
    SYST_CVR = 0;
    SYST_CSR = 0x5; /* enable, core clock, no interrupt */
}

static uint32_t ticks_now(void) { return SYST_CVR; }

/* Ticks from `earlier` to `later` (the counter counts down; intervals are far below a wrap). */
static uint32_t ticks_between(uint32_t earlier, uint32_t later) {
    return (earlier - later) & TICK_MASK;
}

#define CALIBRATION_ITERATIONS (1u << 20)

static uint32_t calibration_ticks;

/* Ticks of exactly 2 * CALIBRATION_ITERATIONS instructions (subs, bne). */
static uint32_t calibrate(void) {
    uint32_t n = CALIBRATION_ITERATIONS;
    uint32_t before = ticks_now();
    __asm__ volatile("1: subs %0, %0, #1\n bne 1b" : "+r"(n));
    return ticks_between(before, ticks_now());
}

/* ---- stack high-water: paint below the current frame now, scan after the run ---- */
extern uint32_t __stack_limit, __stack_top, __data_start, __data_end, __bss_start, __bss_end;
extern const uint8_t __flash_end[];

static void __attribute__((noinline)) paint_stack(void) {
    uint32_t *sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (volatile uint32_t *w = &__stack_limit; w < sp - 16; w++) *w = STACK_PAINT;
}

static void on_panic(const char *message, size_t message_len) {
    (void)message_len;
    fail("innfer panicked", message);
}

/* Builds the model on the packed image in flash, in place. */
static innfer_status load_model(const uint8_t *image, size_t bytes, innfer_model **model) {
    size_t need;
    innfer_status st = innfer_model_static_size(image, bytes, &need);
    if (st != INNFER_STATUS_OK) return st;
    if (need > sizeof model_memory) return INNFER_STATUS_ARENA_TOO_SMALL;
    return innfer_model_init_static(image, bytes, model_memory, sizeof model_memory, model);
}

#ifdef CHECKS
#ifndef HEAP_MODEL_PATH
#error "CHECKS needs HEAP_MODEL_PATH, the model's .safetensors file"
#endif
EMBED(safetensors, HEAP_MODEL_PATH);

/* A damaged packed image must be refused. */
static void check_image_refused(const char *what, const uint8_t *image, size_t bytes) {
    innfer_model *m = NULL;
    innfer_status st = load_model(image, bytes, &m);
    if (st == INNFER_STATUS_OK || m != NULL) fail(what, "was accepted");
    put("firmware: packed image ");
    put(what);
    put(": ");
    put(innfer_status_string(st));
    end_line();
}

/* With malloc capped at `cap` bytes the heap load of the .safetensors file must fail with
 * OUT_OF_MEMORY, in bounded time, and give back every byte. */
static void check_load_out_of_memory(size_t cap) {
    char err[160];
    innfer_model *m = NULL;
    heap_cap = cap;
    uint32_t before = ticks_now();
    innfer_status st = innfer_model_load_bytes(safetensors_start, (size_t)(safetensors_end - safetensors_start), &m, err, sizeof err);
    uint32_t ticks = ticks_between(before, ticks_now());
    heap_cap = SIZE_MAX;
    if (st != INNFER_STATUS_OUT_OF_MEMORY || m != NULL) fail("load with malloc capped", innfer_status_string(st));
    if (heap_in_use != 0) fail("load with malloc capped", "memory leaked");
    put("firmware: heap load, malloc capped at ");
    put_u(cap);
    put(" bytes: INNFER_STATUS_OUT_OF_MEMORY after ");
    put_u((uint64_t)ticks * 2 * CALIBRATION_ITERATIONS / calibration_ticks);
    put(" instructions (");
    put(err);
    put(")");
    end_line();
}

/* A truncated .safetensors file must be refused by the heap load, leaking nothing. */
static void check_truncated(size_t bytes) {
    char err[160];
    innfer_model *m = NULL;
    innfer_status st = innfer_model_load_bytes(safetensors_start, bytes, &m, err, sizeof err);
    if (st == INNFER_STATUS_OK || m != NULL) fail("a truncated file", "was accepted");
    if (heap_in_use != 0) fail("a truncated file", "memory leaked");
    put("firmware: heap load of the file cut to ");
    put_u(bytes);
    put(" bytes: ");
    put(innfer_status_string(st));
    end_line();
}

static int run_checks(void) {
    size_t image_bytes = (size_t)(model_end - model_start);
    check_image_refused("cut to 7 bytes", model_start, 7);
    check_image_refused("cut by one byte", model_start, image_bytes - 1);
    check_image_refused("cut in half", model_start, image_bytes / 2);
    /* A copy with one byte of its weights changed: the checksum catches it. */
    uint8_t *copy = malloc(image_bytes);
    if (!copy) fail("a copy of the image", "out of memory");
    memcpy(copy, model_start, image_bytes);
    copy[image_bytes / 2] ^= 0x40;
    check_image_refused("with a byte changed", copy, image_bytes);
    memmove(copy + 1, model_start, image_bytes - 1);
    check_image_refused("misaligned", copy + 1, image_bytes - 1);
    free(copy);

    size_t file_bytes = (size_t)(safetensors_end - safetensors_start);
    check_load_out_of_memory(10 * 1024);
    check_load_out_of_memory(200 * 1024);
    check_truncated(7);
    check_truncated(100);
    check_truncated(file_bytes / 2);
    check_truncated(file_bytes - 1);
    innfer_model *m = NULL;
    char err[160];
    if (innfer_model_load_bytes(safetensors_start, file_bytes, &m, err, sizeof err) != INNFER_STATUS_OK)
        fail("heap load", err);
    innfer_model_free(m);
    if (heap_in_use != 0) fail("heap load", "memory leaked");
    put("firmware: heap load of the whole file: ok, peak ");
    put_u(heap_peak);
    put(" bytes of malloc");
    end_line();
    put("firmware: checks passed");
    end_line();
    return 0;
}
#endif

#ifndef CHECKS
static uint8_t session_memory[SESSION_BYTES] __attribute__((aligned(INNFER_ARENA_ALIGN)));

static void put_hex(uint64_t v) {
    char digits[17];
    for (int i = 0; i < 16; i++) digits[i] = "0123456789abcdef"[(v >> (60 - 4 * i)) & 0xf];
    digits[16] = 0;
    put(digits);
}

static size_t stack_high_water(void) {
    const volatile uint32_t *w = &__stack_limit;
    while (*w == STACK_PAINT) w++;
    return (size_t)((const char *)&__stack_top - (const char *)w);
}

static uint64_t fnv1a(uint64_t hash, const float *v, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &v[i], 4);
        for (int b = 0; b < 4; b++) hash = (hash ^ ((bits >> (8 * b)) & 0xff)) * 0x100000001b3ull;
    }
    return hash;
}

/* Samples from the model built in place and reports; 0 if the samples match the host's. */
static int run_sampling(void) {
    size_t image_bytes = (size_t)(model_end - model_start);
    innfer_model *model = NULL;
    size_t model_memory_bytes = 0;
    innfer_model_static_size(model_start, image_bytes, &model_memory_bytes);
    innfer_status st = load_model(model_start, image_bytes, &model);
    if (st != INNFER_STATUS_OK) fail("the packed image", innfer_status_string(st));
    size_t dim, cond_dim, x_dim, y_dim, z_dim, session_bytes;
    int32_t layout;
    innfer_model_dims(model, &dim, &cond_dim, &x_dim, &y_dim, &z_dim, &layout);
    if (innfer_session_size(model, MAX_BATCH, &session_bytes) != INNFER_STATUS_OK ||
        x_dim > 16 || y_dim > 16 || LABEL >= y_dim)
        fail("session", "does not fit the firmware's buffers");
    /* What MODEL_MEMORY_BYTES and SESSION_BYTES should be (run.sh builds again with them). */
    put("firmware: sizes model_memory=");
    put_u(model_memory_bytes);
    put(" session=");
    put_u(session_bytes);
    end_line();
    innfer_session *session = NULL;
    st = innfer_session_init_static(model, MAX_BATCH, session_memory, sizeof session_memory, &session);
    if (st != INNFER_STATUS_OK) fail("session", innfer_status_string(st));
    innfer_session_reseed(session, SEED, LABEL);
    float y[16] = {0}, x[16];
    y[LABEL] = 1.0f;

    uint64_t hash = 0xcbf29ce484222325ull, ticks = 0;
    for (int i = 0; i < SAMPLES; i++) {
        uint32_t before = ticks_now();
        st = innfer_sample(session, y, 1, x);
        ticks += ticks_between(before, ticks_now());
        if (st != INNFER_STATUS_OK) fail("sample", innfer_session_last_error(session));
        hash = fnv1a(hash, x, x_dim);
    }

    size_t data = (size_t)((char *)&__data_end - (char *)&__data_start);
    size_t bss = (size_t)((char *)&__bss_end - (char *)&__bss_start);
    size_t stack = stack_high_water();
    size_t ram = data + bss + heap_peak + stack;
    size_t flash = (size_t)__flash_end;
    uint64_t per_sample = ticks * 2 * CALIBRATION_ITERATIONS / calibration_ticks / SAMPLES;
    char hex[17];
    put_hex(hash);
    memcpy(hex, line, 17);
    line_len = 0;
    int matches = memcmp(hex, EXPECTED_HASH, sizeof hex) == 0;

    put("firmware: samples hash ");
    put(hex);
    put(" (host " EXPECTED_HASH ")");
    end_line();
    put("firmware: ram = data ");
    put_u(data);
    put(" + bss ");
    put_u(bss);
    put(" (model ");
    put_u(sizeof model_memory);
    put(", session ");
    put_u(sizeof session_memory);
    put(") + heap ");
    put_u(heap_peak);
    put(" + stack ");
    put_u(stack);
    end_line();
    put("firmware: flash = image ");
    put_u(image_bytes);
    put(" + code and constants ");
    put_u(flash - image_bytes);
    put("; heap calls ");
    put_u(heap_calls);
    end_line();
    put("firmware: clock: ");
    put_u(calibration_ticks);
    put(" ticks for ");
    put_u(2ull * CALIBRATION_ITERATIONS);
    put(" instructions");
    end_line();
    put("firmware: lang=c samples=");
    put_u(SAMPLES);
    put(" ram_bytes=");
    put_u(ram);
    put(" flash_bytes=");
    put_u(flash);
    put(" instructions_per_sample=");
    put_u(per_sample);
    put(" matches_host=");
    put(matches ? "yes" : "no");
    end_line();
    innfer_session_free(session);
    innfer_model_free(model);
    return matches ? 0 : 1;
}
#endif

int main(void) {
    paint_stack();
    ticks_start();
    calibration_ticks = calibrate();
    if (innfer_abi_version() != INNFER_ABI_VERSION) fail("innfer", "ABI version mismatch");
    innfer_set_panic_hook(on_panic);
#ifdef CHECKS
    return run_checks();
#else
    return run_sampling();
#endif
}
