/* A C firmware for QEMU's mps2-an386 (Cortex-M4F) sampling an innfer model through the C API
 * (libinnfer.a from scripts/build-baremetal-lib.sh, newlib-nano, semihosting console).
 *
 * It first checks the promises of the bare-metal library: with malloc refusing past a small
 * cap the load returns INNFER_STATUS_OUT_OF_MEMORY, in bounded time, leaking nothing; damaged
 * images return an error. Then it draws SAMPLES posterior samples for a one-hot label
 * (seed SEED, stream = label) one at a time into a session in static memory, hashes their bits
 * (FNV-1a 64, as examples/firmware/host.rs does on the host), and reports memory, flash and
 * instructions per sample, ending with the line examples/firmware/run.sh checks.
 *
 * Build-time inputs (run.sh): MODEL_PATH (the model file, embedded in flash) and EXPECTED_HASH
 * (the host's hash of the same samples, 16 hex digits). */
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
#define SESSION_CAPACITY (64 * 1024)
#define STACK_PAINT 0xdeadbeefu

#ifndef MODEL_PATH
#error "define MODEL_PATH, the model file to embed"
#endif
#ifndef EXPECTED_HASH
#error "define EXPECTED_HASH, the host's hash of the samples"
#endif

/* The model file in flash, aligned for formats read in place. */
__asm__(".section .rodata.model,\"a\"\n"
        ".balign 16\n"
        "model_start:\n"
        ".incbin \"" MODEL_PATH "\"\n"
        "model_end:\n"
        ".previous\n");
extern const uint8_t model_start[], model_end[];

static uint8_t session_memory[SESSION_CAPACITY] __attribute__((aligned(INNFER_ARENA_ALIGN)));

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

static void put_hex(uint64_t v) {
    char digits[17];
    for (int i = 0; i < 16; i++) digits[i] = "0123456789abcdef"[(v >> (60 - 4 * i)) & 0xf];
    digits[16] = 0;
    put(digits);
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

/* Ticks of exactly 2 * CALIBRATION_ITERATIONS instructions (subs, bne). */
static uint32_t calibrate(void) {
    uint32_t n = CALIBRATION_ITERATIONS;
    uint32_t before = ticks_now();
    __asm__ volatile("1: subs %0, %0, #1\n bne 1b" : "+r"(n));
    return ticks_between(before, ticks_now());
}

/* ---- stack high-water: paint below the current frame, scan after the run ---- */
extern uint32_t __stack_limit, __stack_top, __data_start, __data_end, __bss_start, __bss_end;
extern const uint8_t __flash_end[];

static void __attribute__((noinline)) paint_stack(void) {
    uint32_t *sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (volatile uint32_t *w = &__stack_limit; w < sp - 16; w++) *w = STACK_PAINT;
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

static void on_panic(const char *message, size_t message_len) {
    (void)message_len;
    fail("innfer panicked", message);
}

/* Loads the model from flash (the heap path: innfer copies and packs the weights). */
static innfer_status load_model(size_t bytes, innfer_model **model, char *err, size_t err_len) {
    return innfer_model_load_bytes(model_start, bytes, model, err, err_len);
}

/* With malloc capped at `cap` bytes the load of the whole image must fail with OUT_OF_MEMORY
 * and give back every byte; `ticks` receives its duration. */
static void check_load_out_of_memory(size_t cap, uint32_t *ticks) {
    char err[160];
    innfer_model *m = NULL;
    heap_cap = cap;
    uint32_t before = ticks_now();
    innfer_status st = load_model((size_t)(model_end - model_start), &m, err, sizeof err);
    *ticks = ticks_between(before, ticks_now());
    heap_cap = SIZE_MAX;
    if (st != INNFER_STATUS_OUT_OF_MEMORY || m != NULL) fail("load with malloc capped", innfer_status_string(st));
    if (heap_in_use != 0) fail("load with malloc capped", "memory leaked");
    put("firmware: malloc capped at ");
    put_u(cap);
    put(" bytes: load -> INNFER_STATUS_OUT_OF_MEMORY (");
    put(err);
    put(")");
    end_line();
}

/* A truncated image must be refused with an error, leaking nothing. */
static void check_truncated(size_t bytes) {
    char err[160];
    innfer_model *m = NULL;
    innfer_status st = load_model(bytes, &m, err, sizeof err);
    if (st == INNFER_STATUS_OK || m != NULL) fail("a truncated image", "was accepted");
    if (heap_in_use != 0) fail("a truncated image", "memory leaked");
    put("firmware: image cut to ");
    put_u(bytes);
    put(" bytes: ");
    put(innfer_status_string(st));
    end_line();
}

int main(void) {
    paint_stack();
    ticks_start();
    uint32_t calib_ticks = calibrate();
    if (innfer_abi_version() != INNFER_ABI_VERSION) fail("innfer", "ABI version mismatch");
    innfer_set_panic_hook(on_panic);
    size_t model_bytes = (size_t)(model_end - model_start);

    uint32_t oom_ticks[2];
    check_load_out_of_memory(10 * 1024, &oom_ticks[0]);
    check_load_out_of_memory(200 * 1024, &oom_ticks[1]);
    check_truncated(7);
    check_truncated(100);
    check_truncated(model_bytes / 2);
    check_truncated(model_bytes - 1);
    heap_peak = 0;
    heap_calls = 0;

    char err[160];
    innfer_model *model = NULL;
    if (load_model(model_bytes, &model, err, sizeof err) != INNFER_STATUS_OK) fail("load", err);
    size_t dim, cond_dim, x_dim, y_dim, z_dim, session_bytes;
    int32_t layout;
    innfer_model_dims(model, &dim, &cond_dim, &x_dim, &y_dim, &z_dim, &layout);
    if (innfer_session_size(model, MAX_BATCH, &session_bytes) != INNFER_STATUS_OK ||
        session_bytes > SESSION_CAPACITY || x_dim > 16 || y_dim > 16 || LABEL >= y_dim)
        fail("session", "does not fit the firmware's buffers");
    innfer_session *session = NULL;
    innfer_status st = innfer_session_init_static(model, MAX_BATCH, session_memory, SESSION_CAPACITY, &session);
    if (st != INNFER_STATUS_OK) fail("session", innfer_status_string(st));
    innfer_session_reseed(session, SEED, LABEL);
    float y[16] = {0}, x[16];
    y[LABEL] = 1.0f;

    size_t heap_calls_before_sampling = heap_calls;
    uint64_t hash = 0xcbf29ce484222325ull, ticks = 0;
    for (int i = 0; i < SAMPLES; i++) {
        uint32_t before = ticks_now();
        st = innfer_sample(session, y, 1, x);
        ticks += ticks_between(before, ticks_now());
        if (st != INNFER_STATUS_OK) fail("sample", innfer_session_last_error(session));
        hash = fnv1a(hash, x, x_dim);
    }
    size_t heap_calls_sampling = heap_calls - heap_calls_before_sampling;

    size_t data = (size_t)((char *)&__data_end - (char *)&__data_start);
    size_t bss = (size_t)((char *)&__bss_end - (char *)&__bss_start) - SESSION_CAPACITY;
    size_t stack = stack_high_water();
    size_t ram = data + bss + session_bytes + heap_peak + stack;
    size_t flash = (size_t)__flash_end;
    uint64_t calib_instructions = 2ull * CALIBRATION_ITERATIONS;
    uint64_t per_sample = ticks * calib_instructions / calib_ticks / SAMPLES;
    char hex[17];
    line_len = 0;
    put_hex(hash);
    memcpy(hex, line, 17);
    line_len = 0;
    int matches = strcmp(hex, EXPECTED_HASH) == 0;

    for (int i = 0; i < 2; i++) {
        put("firmware: the refused load took ");
        put_u((uint64_t)oom_ticks[i] * calib_instructions / calib_ticks);
        put(" instructions");
        end_line();
    }
    put("firmware: samples hash ");
    put(hex);
    put(" (host " EXPECTED_HASH ")");
    end_line();
    put("firmware: ram = data ");
    put_u(data);
    put(" + bss ");
    put_u(bss);
    put(" + session ");
    put_u(session_bytes);
    put(" + heap peak ");
    put_u(heap_peak);
    put(" (arena ");
    put_u(heap_arena_bytes());
    put(") + stack ");
    put_u(stack);
    end_line();
    put("firmware: heap calls ");
    put_u(heap_calls);
    put(" (while sampling: ");
    put_u(heap_calls_sampling);
    put("); model ");
    put_u(model_bytes);
    put(" bytes in flash");
    end_line();
    put("firmware: clock: ");
    put_u(calib_ticks);
    put(" ticks for ");
    put_u(calib_instructions);
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
