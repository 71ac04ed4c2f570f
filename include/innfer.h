/*
 * innfer.h - C API of innfer, an embeddable posterior sampler for invertible neural networks
 * (FrEIA-compatible). SPDX-License-Identifier: MIT OR Apache-2.0
 *
 * DATA FLOW
 *   bytes --innfer_model_load_*--> innfer_model (immutable, shareable)
 *         --innfer_session_create / innfer_session_init_static--> innfer_session
 *           (scratch memory + random stream for at most max_batch rows per pass)
 *         --innfer_sample* / innfer_forward* / innfer_inverse*--> your float buffers.
 *
 *   Minimal use (error handling shortened):
 *
 *     innfer_model *m; innfer_session *s; char err[256];
 *     if (innfer_model_load_file("model.safetensors", &m, err, sizeof err)) { puts(err); ... }
 *     innfer_session_create(m, 256, &s);
 *     innfer_session_reseed(s, 42, 0);
 *     innfer_sample(s, y, 1000, x);          (y: float[y_dim], x: float[1000][x_dim])
 *     innfer_session_free(s); innfer_model_free(m);
 *
 * STATUS CODES
 *   Every call that can fail returns an innfer_status (a 32-bit int): INNFER_STATUS_OK (0) on
 *   success, a positive INNFER_STATUS_* code otherwise. innfer_status_string() gives a static
 *   description of a code; innfer_session_last_error() the detailed message of the last call
 *   on a session if it failed (a success clears it); load calls write their message into the
 *   caller's err buffer. Failing
 *   calls leave caller buffers in an unspecified state but never crash for the misuse the
 *   library can detect: NULL pointers (INNFER_STATUS_NULL_ARGUMENT), bad sizes, strides and
 *   batch counts, misaligned or short session memory, corrupt model files. The one status
 *   that is a report rather than a failure is INNFER_STATUS_NON_FINITE_OUTPUT: that call has
 *   written all its outputs (see NON-FINITE VALUES). A panic inside the library (a bug) is
 *   caught and reported as INNFER_STATUS_INTERNAL (hosted builds, see that code for stderr;
 *   BARE-METAL BUILDS for the others).
 *
 * OWNERSHIP
 *   Handles returned through an out-pointer belong to the caller and are released with the
 *   matching *_free function (which accepts NULL). Every float buffer belongs to the caller;
 *   the library reads or writes it only during the call and never keeps a pointer to it. The
 *   one exception is the memory given to innfer_session_init_static(), which the session uses
 *   until innfer_session_free(). A session borrows its model: free sessions before their model.
 *   Strings returned by the library are static or live inside a handle; never free them.
 *
 * MEMORY
 *   Loading a model and innfer_session_create() allocate (with the C allocator in hosted
 *   builds), and so does innfer_session_set_threads() (its workers). Every allocation whose
 *   size comes from the file or from max_batch is fallible: the allocator's refusal is
 *   INNFER_STATUS_OUT_OF_MEMORY, never an abort. So is every other allocation of a load or
 *   of innfer_session_create(), down to the JSON header's tables and the message of the
 *   error itself (docs/format.md §8); tests/c_fault_injection.rs refuses each allocation in
 *   turn.
 *   Nothing else allocates: once a session exists, sampling, forward, inverse, reseeding,
 *   seeking and error reporting use only the session's memory. With
 *   innfer_session_init_static() the session lives entirely in memory you provide (ask
 *   innfer_session_size(), align it to INNFER_ARENA_ALIGN).
 *
 * BUFFER LAYOUT
 *   All data is float (IEEE binary32). A matrix of rows x cols is row-major float[rows][cols]
 *   unless the call takes strides: element (r, c) is then at p[r*rs + c*cs], with element
 *   strides rs, cs >= 0 (row-major: rs = cols, cs = 1; Fortran x(cols, rows): the same;
 *   Fortran x(rows, cols): rs = 1, cs = rows). Each sample, observation or state is a row.
 *   Values are in the caller's raw units: standardisation stored in the model is applied
 *   inside. Output buffers must not overlap any other buffer of the same call.
 *
 * NON-FINITE VALUES
 *   The same in every call (forward, inverse, sample, summarize; strided or not) and in the
 *   Rust API:
 *   - A row whose input holds a NaN or an infinity (x of a forward pass, in of an inverse
 *     pass, a cond row, an observation y), or a value the model's declared transform turns
 *     into one (an x on or outside its bounds; a band <= 0 under the clr y transform), is
 *     invalid: every output of that row is NaN (its logdet too), the other rows are computed
 *     as if it were not there, and the call returns INNFER_STATUS_OK. A dead camera pixel
 *     gives NaN summaries for that pixel alone; innfer_session_summarize() counts such rows.
 *   - A row whose input is finite but whose outputs come out non-finite all the same is an
 *     overflow (y = 1e38, say: the input lies far outside what the model was trained on).
 *     Every output of that row is NaN too, and the call returns
 *     INNFER_STATUS_NON_FINITE_OUTPUT, with innfer_session_last_error() naming the buffer, the
 *     first such row and how many there are; all outputs are written, the other rows are
 *     valid, and a sampling call has advanced the random stream.
 *   So no row mixes finite and non-finite numbers. Finite inputs far from the training data
 *   may still give finite but meaningless numbers: nothing in a model says where its data
 *   lay. Likewise inverse(forward(x)) returns x to within about 3e-6 * (1 + |x|) only for x
 *   like the training data; far from it the latent values grow large and the round trip
 *   keeps only float's 7 significant digits of them.
 *
 * THREAD SAFETY
 *   A model is immutable: any number of threads may use one model at once (query it, create
 *   sessions from it). A session is used by one thread at a time; give each thread its own
 *   session (with its own seed or stream for independent samples). The free functions must
 *   not race with other calls on the same handle. No call uses thread-local state, and none
 *   takes a lock except on a session given worker threads by innfer_session_set_threads()
 *   (which hands each call's rows to its own workers and waits for them).
 *
 * RANDOM STREAMS
 *   Sample row r of (seed, stream) draws its latent vector from a generator keyed by
 *   (seed, stream, r) alone. A session keeps the next row: innfer_session_reseed() sets
 *   (seed, stream) and row 0, innfer_session_seek() sets the row, innfer_session_rng_position()
 *   reads all three, and every sampling call draws the rows after it in the order of its
 *   output. With n samples per observation, observation j of a run therefore owns rows
 *   j*n ... j*n+n-1: its samples are the same bits however the run is split over calls,
 *   max_batch, threads, processes or MPI ranks (examples/mpi, docs/scaling.md). A worker
 *   that handles observations j0 ... j1-1 reseeds to the run's (seed, stream), seeks to
 *   row j0*n and calls innfer_sample_batch() on its block. Bit-identity holds on CPUs that
 *   run the same kernel; CPUs with other SIMD instruction sets may round differently.
 *
 * UNDEFINED BEHAVIOUR (the library cannot detect these)
 *   - freeing a model while a session created from it is still in use;
 *   - using a handle after it was freed (a freed static session is detected while its memory
 *     is untouched, on a best-effort basis);
 *   - buffers shorter than the sizes the call states (C cannot tell a pointer's extent);
 *   - concurrent calls on one session.
 *
 * VERSIONING
 *   INNFER_ABI_VERSION is the ABI of this header; innfer_abi_version() that of the library.
 *   Refuse to run if they differ. INNFER_VERSION_* and innfer_version_string() give the
 *   library's release version.
 *
 * BARE-METAL BUILDS
 *   Built without the Rust `std` feature the library has no file system: define INNFER_NO_STD
 *   before including this header to hide innfer_model_load_file() and declare
 *   innfer_set_panic_hook(). The bare-metal libinnfer.a (scripts/build-baremetal-lib.sh)
 *   allocates with the firmware's malloc/free (only where hosted builds allocate), uses the
 *   firmware's memcpy/memset/strlen, and cannot catch a panic: it calls the firmware's panic
 *   hook, then abort(), and never spins. README.md, "Firmware", has the build and the link.
 */

#ifndef INNFER_H
#define INNFER_H

/* Generated by cbindgen 0.29.4 from src/ffi (see cbindgen.toml); do not edit. */

#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>

#if !defined(INNFER_NO_STD) && !defined(INNFER_HAS_STD)
#define INNFER_HAS_STD 1
#endif

/**
 * Major version of the library (semantic versioning).
 */
#define INNFER_VERSION_MAJOR 0

/**
 * Minor version of the library.
 */
#define INNFER_VERSION_MINOR 1

/**
 * Patch version of the library.
 */
#define INNFER_VERSION_PATCH 0

/**
 * Version of the C ABI this header describes. Compare with `innfer_abi_version()` at start-up:
 * a library with a different ABI version must not be used with this header. Version 2:
 * `innfer_load_options` gained `weight_storage` (a program built against version 1 passes a
 * smaller struct).
 */
#define INNFER_ABI_VERSION 2

/**
 * Alignment in bytes that memory given to `innfer_session_init_static` must have.
 */
#define INNFER_ARENA_ALIGN 64

/**
 * `layout` value from `innfer_model_dims`: the model has no sampling layout
 * (forward and inverse only; the sampling calls return `INNFER_STATUS_NO_LAYOUT`).
 */
#define INNFER_LAYOUT_NONE 0

/**
 * `layout` value: the paper's INN, input `[x, pad_x]`, output `[z, pad_zy, y]`.
 */
#define INNFER_LAYOUT_INN 1

/**
 * `layout` value: a conditional INN, x <-> z of equal width, y is the condition.
 */
#define INNFER_LAYOUT_CINN 2

/**
 * Weights stored as f32 (`innfer_load_options.weight_storage`).
 */
#define INNFER_WEIGHT_STORAGE_F32 0

/**
 * Weights stored as bfloat16 (the top 16 bits of an f32: relative error ≤ 2⁻⁹).
 */
#define INNFER_WEIGHT_STORAGE_BF16 1

/**
 * Weights stored as IEEE binary16 (relative error ≤ 2⁻¹², range ±65504: a model with a
 * larger weight fails to load with `INNFER_STATUS_DIMS`).
 */
#define INNFER_WEIGHT_STORAGE_F16 2

/**
 * `which` of `innfer_model_standardization()`: the parameters x (`x_dim` values).
 */
#define INNFER_VARIABLE_X 0

/**
 * `which` of `innfer_model_standardization()`: the observation y, the condition (`y_dim`
 * values, `cond_dim` for a model without a sampling layout).
 */
#define INNFER_VARIABLE_Y 1

/**
 * A loaded model (opaque).
 *
 * Immutable after loading: any number of threads may use one model at the same time (to
 * create sessions, query it, and through their own sessions run it). Created by
 * `innfer_model_load_bytes` / `innfer_model_load_file`, released by `innfer_model_free`.
 */
typedef struct innfer_model innfer_model;

/**
 * A session (opaque): scratch memory, random stream and last-error message for running one
 * model from one thread at a time.
 *
 * Created by `innfer_session_create` (heap) or `innfer_session_init_static` (inside caller
 * memory), released by `innfer_session_free`. It borrows its model, which must outlive it.
 */
typedef struct innfer_session innfer_session;

/**
 * What a call returns: `INNFER_STATUS_OK` (0) on success, a positive `INNFER_STATUS_*` code
 * otherwise.
 *
 * A plain 32-bit integer whatever the compiler's enum settings (Fortran: `integer(c_int32_t)`).
 * Codes are stable across releases with the same `INNFER_ABI_VERSION`; new codes may be added.
 * Use `innfer_status_string()` for a short description and, on a session,
 * `innfer_session_last_error()` for the details of the failure.
 */
typedef int32_t innfer_status;

/**
 * Options of `innfer_model_load_bytes_with()` and `innfer_model_load_file_with()`.
 * Initialise with `innfer_load_options_default()` and set the fields you need (new fields
 * may be added at the end in later ABI versions).
 */
typedef struct {
    /**
     * The most bytes the load may allocate, all allocations counted (temporaries too), so
     * both the model and the load's peak stay below it; a load that would pass it returns
     * `INNFER_STATUS_OUT_OF_MEMORY` before allocating. 0 means no limit beyond what the file
     * backs (every count and width in a file is checked against its tensors, docs/format.md).
     */
    size_t max_bytes;
    /**
     * How the subnets' weights are stored: `INNFER_WEIGHT_STORAGE_F32` (the default, results
     * match FrEIA to f32 rounding), `_BF16` or `_F16` (half the bytes each sample streams,
     * each weight rounded once at load; every product and sum still in f32, see
     * docs/performance.md). Another value: `INNFER_STATUS_INVALID_ARGUMENT`.
     */
    int32_t weight_storage;
} innfer_load_options;

#if !defined(INNFER_HAS_STD)
/**
 * A firmware function the bare-metal C library calls when it panics, with a NUL-terminated
 * message (`message_len` bytes before the NUL, truncated to fit a small buffer on the stack):
 * the panic's place in the library's source and what it says. It should log, reset or halt
 * the device (it
 * runs in the failed call's context: do not call innfer from it). If it returns, the library
 * calls the C library's `abort()`.
 */
typedef void (*innfer_panic_hook)(const char *message, size_t message_len);
#endif

/**
 * Success.
 */
#define INNFER_STATUS_OK 0

/**
 * A required pointer argument (handle, buffer or out-pointer) is NULL.
 */
#define INNFER_STATUS_NULL_ARGUMENT 1

/**
 * An argument has an invalid value: a zero `max_batch`, a negative stride, output strides
 * that make two elements share memory (a zero stride, interleaved rows), overlapping input
 * and output buffers, a misaligned `float` pointer, a size that overflows, a condition given
 * to a model that takes none, a freed static session.
 */
#define INNFER_STATUS_INVALID_ARGUMENT 2

/**
 * The model file could not be opened or read.
 */
#define INNFER_STATUS_IO 3

/**
 * The bytes are not a valid safetensors file (truncated, corrupt header, bad offsets), or not
 * a valid packed image (`innfer_model_init_static`: wrong magic, format version or target,
 * checksum mismatch, truncated, misaligned, or a count that does not match the image).
 */
#define INNFER_STATUS_FORMAT 4

/**
 * An `innfer.*` metadata key is missing or has a value that cannot be understood.
 */
#define INNFER_STATUS_METADATA 5

/**
 * A tensor is missing, misshaped, has an unusable dtype, a bad value or a NaN/Inf.
 */
#define INNFER_STATUS_TENSOR 6

/**
 * The model uses a block type or subnet layer innfer does not know.
 */
#define INNFER_STATUS_UNSUPPORTED 7

/**
 * The model's dimensions do not chain (block widths, subnet layers, layout).
 */
#define INNFER_STATUS_DIMS 8

/**
 * A forward or inverse call asked for more rows than the session's `max_batch` (any row
 * count above it, `SIZE_MAX` too).
 */
#define INNFER_STATUS_BATCH_TOO_LARGE 9

/**
 * A buffer's size does not match the model: the `len` given to
 * `innfer_model_standardization()`. (The other calls take row counts and work out every
 * buffer's size from them and the model, so a size cannot disagree there.)
 */
#define INNFER_STATUS_BUFFER_SIZE 10

/**
 * The memory given to `innfer_session_init_static` is smaller than `innfer_session_size`.
 */
#define INNFER_STATUS_ARENA_TOO_SMALL 11

/**
 * The memory given to `innfer_session_init_static` is not aligned to `INNFER_ARENA_ALIGN`.
 */
#define INNFER_STATUS_ARENA_MISALIGNED 12

/**
 * The model has no sampling layout (`innfer.layout = none`); use forward/inverse.
 */
#define INNFER_STATUS_NO_LAYOUT 13

/**
 * A requested instruction set is not available on this CPU. No call of this ABI version
 * returns it (the C API has no call that chooses an instruction set); the code is kept so
 * that codes stay stable.
 */
#define INNFER_STATUS_ISA_UNAVAILABLE 14

/**
 * An internal error (a caught panic): a bug in innfer; please report it.
 *
 * The panic was caught at the call's boundary, but it has run the process's panic hook
 * first, and the default hook prints the panic's message to stderr. innfer installs no hook
 * of its own: a hook is global to the process, so ours would replace the host's (or race
 * with another library's) on every thread. A host that must keep stderr clean sets its own
 * hook (`std::panic::set_hook` in a Rust host; a C host cannot). Apart from this, nothing in
 * the library writes to stdout or stderr.
 */
#define INNFER_STATUS_INTERNAL 15

/**
 * Memory could not be had: the allocator refused (a session's `max_batch` too large for this
 * machine, say), a load would pass the caller's `max_bytes` (`innfer_load_options`), or the
 * system refused to start a worker thread (`innfer_session_set_threads()`). Nothing was
 * allocated that the call did not free again.
 */
#define INNFER_STATUS_OUT_OF_MEMORY 16

/**
 * Rows whose input was finite came out non-finite: an overflow, the input lies far outside
 * what the model was trained on (y = 1e38, say). Unlike every other failure, the call has
 * done its work: all outputs are written, the rows concerned are NaN in every output (and
 * log-determinant), the other rows are valid, and a sampling call has advanced the random
 * stream. `innfer_session_last_error()` names the buffer, the first such row and how many
 * there are. (Rows whose input holds a NaN or an infinity are not this: see NON-FINITE
 * VALUES at the top of this header.)
 */
#define INNFER_STATUS_NON_FINITE_OUTPUT 17

#ifdef __cplusplus
extern "C" {
#endif /* __cplusplus */

/**
 * The version of the C ABI the library implements (`INNFER_ABI_VERSION` of its header).
 *
 * Thread-safe; never fails.
 */
uint32_t innfer_abi_version(void);

/**
 * The library version as a static NUL-terminated string such as `"0.1.0"`.
 *
 * The string is owned by the library and lives for the whole program; do not free it.
 * Thread-safe; never returns NULL.
 */
const char *innfer_version_string(void);

/**
 * A short static description of a status code, such as `"session memory too small"`.
 *
 * Any integer may be passed; codes this library does not define give `"unknown status"`.
 * The string is owned by the library and lives for the whole program; do not free it.
 * Thread-safe; never returns NULL.
 */
const char *innfer_status_string(innfer_status status);

/**
 * The default load options (no `max_bytes` limit). Thread-safe; never fails.
 */
innfer_load_options innfer_load_options_default(void);

/**
 * Loads a model from the bytes of an innfer `.safetensors` file held in memory.
 *
 * **Ownership.** The bytes are only read during the call: the model keeps its own packed copy,
 * so `data` may be freed as soon as this returns. On success `*out` receives a new model owned
 * by the caller, to be released with `innfer_model_free()`. On failure `*out` is set to NULL.
 *
 * **Errors.** `err` may be NULL; otherwise it receives a NUL-terminated message (empty on
 * success), truncated to fit `err_len` bytes including the NUL. Returns
 * `INNFER_STATUS_OK`, `_NULL_ARGUMENT` (`out` NULL, or `data` NULL with `len > 0`),
 * `_INVALID_ARGUMENT`, `_FORMAT`, `_METADATA`, `_TENSOR`, `_UNSUPPORTED`, `_DIMS`,
 * `_OUT_OF_MEMORY` or `_INTERNAL`.
 *
 * **Allocation.** Allocates the model (and temporaries). Out of memory is
 * `INNFER_STATUS_OUT_OF_MEMORY`, never an abort (see MEMORY);
 * `innfer_model_load_bytes_with()` can also cap what the load may allocate.
 *
 * **Thread safety.** May be called from any thread at any time.
 *
 * # Safety
 * `data` points to `len` readable bytes (or is NULL), `out` is NULL or writable, `err` is NULL
 * or points to `err_len` writable bytes.
 */
innfer_status innfer_model_load_bytes(const uint8_t *data,
                                      size_t len,
                                      innfer_model **out,
                                      char *err,
                                      size_t err_len);

/**
 * `innfer_model_load_bytes()` with options (`options` NULL: the defaults), e.g. a limit on
 * the memory the load may allocate. Returns what `innfer_model_load_bytes()` returns, and
 * `INNFER_STATUS_OUT_OF_MEMORY` if the load would pass `options->max_bytes` or the allocator
 * refuses.
 *
 * **Thread safety.** May be called from any thread at any time.
 *
 * # Safety
 * As `innfer_model_load_bytes()`; `options` is NULL or points to a readable
 * `innfer_load_options`.
 */
innfer_status innfer_model_load_bytes_with(const uint8_t *data,
                                           size_t len,
                                           const innfer_load_options *options,
                                           innfer_model **out,
                                           char *err,
                                           size_t err_len);

#if defined(INNFER_HAS_STD)
/**
 * Loads a model from an innfer `.safetensors` file.
 *
 * `path` is a NUL-terminated file name (bytes passed to the OS as they are). The file is read
 * a tensor at a time (never whole) and closed before the call returns. Ownership, `out`,
 * `err` and allocation as for `innfer_model_load_bytes()`; in addition `INNFER_STATUS_IO` if
 * the file cannot be read.
 *
 * Only in builds with the `std` feature (all hosted builds); bare-metal builds have no file
 * system: read the bytes yourself and use `innfer_model_load_bytes()`.
 *
 * **Thread safety.** May be called from any thread at any time.
 *
 * # Safety
 * `path` is NULL or a NUL-terminated string; `out` and `err` as for `innfer_model_load_bytes`.
 */
innfer_status innfer_model_load_file(const char *path,
                                     innfer_model **out,
                                     char *err,
                                     size_t err_len);
#endif

#if defined(INNFER_HAS_STD)
/**
 * `innfer_model_load_file()` with options (`options` NULL: the defaults); see
 * `innfer_model_load_bytes_with()`.
 *
 * **Thread safety.** May be called from any thread at any time.
 *
 * # Safety
 * As `innfer_model_load_file()`; `options` is NULL or points to a readable
 * `innfer_load_options`.
 */
innfer_status innfer_model_load_file_with(const char *path,
                                          const innfer_load_options *options,
                                          innfer_model **out,
                                          char *err,
                                          size_t err_len);
#endif

/**
 * Bytes of memory `innfer_model_init_static()` needs for the packed image `image`
 * (`image_bytes` long): the model handle and its descriptors (the chain's blocks, their
 * halves and layers): about 450 bytes a block on a Cortex-M4 (7,104 for the 16 blocks of
 * models/gmm8_some), about twice that on a 64-bit host. The whole image is read
 * and checked, as `innfer_model_init_static()` checks it.
 *
 * Returns `INNFER_STATUS_OK` (and writes `*bytes`), `_NULL_ARGUMENT` (`image` or `bytes`
 * NULL) or `_FORMAT` (not a valid packed image: docs/format.md, "Packed images").
 * Thread-safe; allocates nothing.
 *
 * # Safety
 * `image` is NULL or points to `image_bytes` readable bytes; `bytes` is NULL or writable.
 */
innfer_status innfer_model_static_size(const void *image, size_t image_bytes, size_t *bytes);

/**
 * Builds a model on a packed image (`innfer pack`, docs/format.md "Packed images") in
 * place, in caller memory: no allocation at all, no safetensors or JSON parsing.
 *
 * The model **references the image's weights where they lie** (flash, or a mapped file): the
 * image must be 4-byte aligned and stay valid and unmodified for as long as the model lives.
 * `mem` receives the model handle and its descriptors: it must be aligned to
 * `INNFER_ARENA_ALIGN` (64) bytes, hold at least `innfer_model_static_size()` bytes, and stay
 * valid and untouched while the model lives. `*out` receives the handle (equal to `mem`).
 *
 * The model works with `innfer_session_size()`, `innfer_session_init_static()`,
 * `innfer_session_create()` and every sampling call exactly as a loaded one (the same results
 * bit for bit, see docs/format.md). `innfer_model_free()` on it is a no-op: the caller
 * reuses `mem` (and the image) once the model's sessions are freed.
 *
 * Returns `INNFER_STATUS_OK`, `_NULL_ARGUMENT` (`image`, `mem` or `out` NULL), `_FORMAT`
 * (not a valid packed image: wrong magic, format version or target, checksum mismatch,
 * truncated, misaligned, or a count that does not match), `_ARENA_MISALIGNED` or
 * `_ARENA_TOO_SMALL` (`mem`). On failure `*out` is set to NULL (if `out` is not NULL).
 *
 * **Thread safety.** Any thread; the model, once built, as a loaded one.
 *
 * # Safety
 * `image` is NULL or points to `image_bytes` readable bytes kept valid and unchanged while
 * the model lives; `mem` is NULL or points to `mem_bytes` writable bytes that nothing else
 * uses while the model lives; `out` is NULL or writable.
 */
innfer_status innfer_model_init_static(const void *image,
                                       size_t image_bytes,
                                       void *mem,
                                       size_t mem_bytes,
                                       innfer_model **out);

/**
 * Releases a model. NULL is a no-op, and so is a model built by `innfer_model_init_static()`
 * (its memory is the caller's, to reuse once its sessions are freed).
 *
 * Every session created from the model must have been freed first (freeing a model a session
 * still uses is undefined behaviour). Must not be called while another thread uses the model.
 *
 * # Safety
 * `m` is NULL or a live handle from a load call; it is invalid afterwards.
 */
void innfer_model_free(innfer_model *m);

/**
 * The model's dimensions. Every out-pointer may be NULL (that value is then not written).
 *
 * - `dim`: width of the chain, the row length of `innfer_forward`/`innfer_inverse` buffers;
 * - `cond_dim`: width of the condition rows (0 if the model takes no condition);
 * - `x_dim`, `y_dim`, `z_dim`: widths of a sample x, an observation y and the latent z
 *   (all 0 without a sampling layout);
 * - `layout`: `INNFER_LAYOUT_NONE`, `INNFER_LAYOUT_INN` or `INNFER_LAYOUT_CINN`.
 *
 * Returns `INNFER_STATUS_OK`, `_NULL_ARGUMENT` (`m` NULL) or `_INVALID_ARGUMENT` (not a live
 * model). Thread-safe; allocates nothing.
 *
 * # Safety
 * `m` is NULL or a live model; each out-pointer is NULL or writable.
 */
innfer_status innfer_model_dims(const innfer_model *m,
                                size_t *dim,
                                size_t *cond_dim,
                                size_t *x_dim,
                                size_t *y_dim,
                                size_t *z_dim,
                                int32_t *layout);

/**
 * Number of blocks in the model's chain; 0 if `m` is NULL or not a live model.
 * Thread-safe; allocates nothing.
 *
 * # Safety
 * `m` is NULL or a live model.
 */
size_t innfer_model_block_count(const innfer_model *m);

/**
 * Number of trainable parameters of the model (subnet weights and biases, global affine
 * scales and offsets, ActNorm); 0 if `m` is NULL or not a live model. What `innfer info`
 * prints. Thread-safe; allocates nothing.
 *
 * # Safety
 * `m` is NULL or a live model.
 */
size_t innfer_model_parameter_count(const innfer_model *m);

/**
 * The standardisation the model applies to x or y inside (`which`: `INNFER_VARIABLE_X` or
 * `INNFER_VARIABLE_Y`): the network sees `(v - mean) / std`, after the variable's transform
 * (docs/format.md §3). Callers always pass raw units; this is for reporting and checks.
 *
 * - `standardized`: receives 1 if the model standardises the variable, 0 if not (NULL: not
 *   written);
 * - `mean`, `std`: receive the `len` means and standard deviations (0 and 1 when the model
 *   does not standardise the variable); each may be NULL (not written). When either is
 *   given, `len` must be the variable's width (`x_dim`, or `y_dim` / `cond_dim`, from
 *   `innfer_model_dims()`).
 *
 * Returns `INNFER_STATUS_OK`, `_NULL_ARGUMENT` (`m` NULL), `_INVALID_ARGUMENT` (`which` is
 * neither constant, `m` not a live model, a pointer not aligned to `float`, `mean` and `std`
 * overlapping) or `_BUFFER_SIZE` (`len` is not the variable's width). Nothing is written on
 * failure. Thread-safe; allocates nothing.
 *
 * # Safety
 * `m` is NULL or a live model; `standardized` is NULL or writable; `mean` and `std` are NULL
 * or hold `len` writable floats.
 */
innfer_status innfer_model_standardization(const innfer_model *m,
                                           int32_t which,
                                           int32_t *standardized,
                                           float *mean,
                                           float *std,
                                           size_t len);

/**
 * Bytes of caller memory `innfer_session_init_static()` needs for `m` at `max_batch` rows per
 * call. The count includes the session handle itself, which lives at the start of that memory
 * (its error-message buffer and state, a few hundred bytes): it is the Rust API's
 * `Session::arena_bytes` plus that handle, and what `innfer info` prints as the C session
 * memory.
 *
 * Returns `INNFER_STATUS_OK` (and writes `*bytes`), `_NULL_ARGUMENT` (`m` or `bytes` NULL) or
 * `_INVALID_ARGUMENT` (`max_batch` is 0 or too large to address). Thread-safe; allocates
 * nothing.
 *
 * # Safety
 * `m` is NULL or a live model; `bytes` is NULL or writable.
 */
innfer_status innfer_session_size(const innfer_model *m, size_t max_batch, size_t *bytes);

/**
 * Creates a session inside caller memory: no allocation at all, ever.
 *
 * `memory` must be aligned to `INNFER_ARENA_ALIGN` (64) bytes and hold at least the
 * `innfer_session_size()` bytes for the same model and `max_batch`. The session handle is
 * placed at the start of `memory`, its scratch arena after it; `*out` receives the handle
 * (equal to `memory`). The memory stays the caller's: it must stay valid and untouched until
 * `innfer_session_free()` and may be reused or released after that. The model must outlive the
 * session. The random stream starts at seed 0, stream 0.
 *
 * Returns `INNFER_STATUS_OK`, `_NULL_ARGUMENT` (`m`, `memory` or `out` NULL),
 * `_INVALID_ARGUMENT` (`max_batch` 0 or too large), `_ARENA_MISALIGNED` or
 * `_ARENA_TOO_SMALL`. On failure `*out` is set to NULL (if `out` is not NULL).
 *
 * **Thread safety.** Any thread; many sessions may share one model.
 *
 * # Safety
 * `m` is NULL or a live model; `memory` is NULL or points to `bytes` writable bytes that
 * nothing else uses until the session is freed; `out` is NULL or writable.
 */
innfer_status innfer_session_init_static(const innfer_model *m,
                                         size_t max_batch,
                                         void *memory,
                                         size_t bytes,
                                         innfer_session **out);

/**
 * Creates a session with its memory on the heap (allocated here, once; no call on the session
 * allocates afterwards). The model must outlive the session. The random stream starts at
 * seed 0, stream 0.
 *
 * On success `*out` receives a session owned by the caller, to be released with
 * `innfer_session_free()`; on failure `*out` is set to NULL (if `out` is not NULL).
 * Returns `INNFER_STATUS_OK`, `_NULL_ARGUMENT` (`m` or `out` NULL), `_INVALID_ARGUMENT`
 * (`max_batch` 0 or too large to address) or `_OUT_OF_MEMORY` (the allocator refused the
 * session's memory or its handle: never an abort).
 *
 * **Thread safety.** Any thread; many sessions may share one model.
 *
 * # Safety
 * `m` is NULL or a live model; `out` is NULL or writable.
 */
innfer_status innfer_session_create(const innfer_model *m, size_t max_batch, innfer_session **out);

/**
 * Releases a session. NULL is a no-op.
 *
 * A heap session (`innfer_session_create`) is deallocated. A static session
 * (`innfer_session_init_static`) is only invalidated: its memory stays the caller's, and calls
 * on the stale handle return `INNFER_STATUS_INVALID_ARGUMENT` until the memory is reused.
 * Allocates nothing.
 *
 * # Safety
 * `s` is NULL or a live session not in use by another thread; it is invalid afterwards.
 */
void innfer_session_free(innfer_session *s);

/**
 * Restarts the session's random stream at `(seed, stream)`: the next sample drawn is row 0 of
 * that stream. Different streams with the same seed are independent. The same `(seed,
 * stream)` gives the same samples whatever the `max_batch` and however the samples are split
 * over calls (on one machine: other CPUs may round differently).
 *
 * Returns `INNFER_STATUS_OK`, `_NULL_ARGUMENT` or `_INVALID_ARGUMENT` (a freed static
 * session). Allocates nothing.
 *
 * # Safety
 * `s` is NULL or a live session not in use by another thread.
 */
innfer_status innfer_session_reseed(innfer_session *s, uint64_t seed, uint64_t stream);

/**
 * Moves the session's random stream to row `row` of its current `(seed, stream)`: the next
 * sample drawn is row `row`. Nothing is drawn or discarded, so any position costs the same.
 *
 * **The stream contract.** Sample row `r` of `(seed, stream)` draws its latent vector from a
 * generator keyed by `(seed, stream, r)` alone. Every sampling call draws rows `next, next+1,
 * ...` in the order of its output and leaves `next` after the last; `innfer_sample_batch()`
 * with `n_samples` per observation gives observation `j` of the call rows `next +
 * j*n_samples ... next + j*n_samples + n_samples - 1`. So the samples of observation `j` of a
 * run that draws `n` samples for each observation are the same bits however the run is split
 * over calls, sessions, threads, processes or MPI ranks (on the same CPU kernel: see
 * `innfer_session_reseed()`). A process that handles observations `j0 ... j1-1` of such a run
 * does (with the run's seed and stream):
 *
 * ```c
 * innfer_session_reseed(s, seed, stream);
 * innfer_session_seek(s, (uint64_t)j0 * n);
 * innfer_sample_batch(s, y + j0 * y_dim, j1 - j0, n, x_block);
 * ```
 *
 * A later sampling call whose rows would carry the next-row counter past 2^64 - 1 fails with
 * `INNFER_STATUS_INVALID_ARGUMENT` and draws nothing.
 *
 * Returns `INNFER_STATUS_OK`, `_NULL_ARGUMENT` or `_INVALID_ARGUMENT` (a freed static
 * session). Allocates nothing.
 *
 * # Safety
 * `s` is NULL or a live session not in use by another thread.
 */
innfer_status innfer_session_seek(innfer_session *s, uint64_t row);

/**
 * The position of the session's random stream: its `seed` and `stream` (as given to
 * `innfer_session_reseed()`) and `next_row`, the row the next sample will draw (see
 * `innfer_session_seek()`). Any output pointer may be NULL. Saved and restored with
 * `innfer_session_reseed()` and `innfer_session_seek()`, it lets a run stop and resume with
 * the same samples.
 *
 * Returns `INNFER_STATUS_OK`, `_NULL_ARGUMENT` (`s` NULL) or `_INVALID_ARGUMENT` (not a live
 * session). Allocates nothing.
 *
 * # Safety
 * `s` is NULL or a live session not in use by another thread; each output is NULL or
 * writable.
 */
innfer_status innfer_session_rng_position(const innfer_session *s,
                                          uint64_t *seed,
                                          uint64_t *stream,
                                          uint64_t *next_row);

#if defined(INNFER_HAS_STD)
/**
 * Splits every call of the session over `threads` threads: the calling thread and
 * `threads - 1` worker threads that belong to the session (1, the default, runs on the
 * calling thread only). Results are bit-identical for any thread count (every sample row has
 * its own random stream, see `innfer_session_seek()`). Calls shorter than about 4 M
 * multiply-adds (at least 24 rows) stay on the calling thread: waking the workers would cost
 * more than it saves; give such a session a `max_batch` of a few thousand rows for small
 * models.
 *
 * This call allocates (the workers' scratch, a few KB each, and their stacks) and starts the
 * workers; it ends those of an earlier call. The workers wait on a condition variable
 * between calls, allocate nothing after this call, and end with `innfer_session_free()`. A
 * session in caller memory (`innfer_session_init_static()`) keeps its arena there; only the
 * workers' scratch is on the heap. Only in builds with the standard library.
 *
 * Returns `INNFER_STATUS_OK`, `_NULL_ARGUMENT`, `_INVALID_ARGUMENT` (`threads` is 0 or more
 * than 1024, or a freed static session) or `_OUT_OF_MEMORY` (the allocator refused the
 * workers' scratch, or the system refused to start a thread: never an abort; the session
 * then runs on the calling thread alone).
 *
 * # Safety
 * `s` is NULL or a live session not in use by another thread.
 */
innfer_status innfer_session_set_threads(innfer_session *s, size_t threads);
#endif

/**
 * The `max_batch` the session was created with (the most rows one forward/inverse call takes);
 * 0 if `s` is NULL or not a live session. Allocates nothing.
 *
 * # Safety
 * `s` is NULL or a live session.
 */
size_t innfer_session_max_batch(const innfer_session *s);

/**
 * The model the session runs: the `m` it was created with, so that code holding only a
 * session can read the dimensions with `innfer_model_dims()`. NULL if `s` is NULL or not a
 * live session. The model stays the caller's (do not free it through this pointer while
 * other code uses it); the pointer is valid as long as the model is. Allocates nothing.
 *
 * **Thread safety.** Any thread, concurrently with other calls on `s` except
 * `innfer_session_free(s)`: it reads a field set at creation.
 *
 * # Safety
 * `s` is NULL or a live session.
 */
const innfer_model *innfer_session_model(const innfer_session *s);

/**
 * The detailed message of the last call on this session if it failed, such as
 * `"innfer_forward: batch of 300 rows exceeds the session's maximum batch 256"`; `""` if it
 * succeeded or no call has been made. Every call that takes a non-const `innfer_session *`
 * sets it (clears it on success); the read-only queries (`innfer_session_max_batch()`,
 * `_threads()`, `_model()`, `_rng_position()`, this one) leave it as it is.
 *
 * The string lives inside the session (a fixed 256-byte buffer, no heap); it stays valid until
 * the next call on `s` or `innfer_session_free(s)`. Do not free it. Failures of
 * `innfer_session_create`/`_init_static` and NULL-handle failures have no session to record
 * in: use `innfer_status_string()`. Returns a static message if `s` is NULL.
 *
 * # Safety
 * `s` is NULL or a live session not in use by another thread.
 */
const char *innfer_session_last_error(const innfer_session *s);

/**
 * Threads each call of the session uses (1 unless `innfer_session_set_threads()` gave it
 * more); 0 if `s` is NULL or not a live session. Allocates nothing.
 *
 * # Safety
 * `s` is NULL or a live session.
 */
size_t innfer_session_threads(const innfer_session *s);

/**
 * Draws `n_samples` posterior samples of x for one observation `y`.
 *
 * - `y`: `[y_dim]` floats, the observation in raw units (may be NULL if `y_dim` is 0);
 * - `x`: `[n_samples][x_dim]` floats, row-major, written (may be NULL if `n_samples` is 0).
 *
 * Any `n_samples` is allowed: the session works in chunks of its `max_batch`. Sample `i` uses
 * row `next + i` of the random stream, where `next` is the session's next row (0 after
 * `innfer_session_reseed()` or creation, set by `innfer_session_seek()`, advanced by every
 * sample drawn), so splitting a run over calls changes nothing.
 *
 * An observation with a NaN or infinity in `y` (or a value the model's y transform turns into
 * one) gets NaN samples and the call succeeds; a finite `y` whose samples overflow gets NaN
 * samples and `_NON_FINITE_OUTPUT` (see NON-FINITE VALUES at the top of this header).
 *
 * Returns `INNFER_STATUS_OK`, `_NULL_ARGUMENT`, `_INVALID_ARGUMENT` (`x` overlaps `y`, a freed
 * static session, overflowing sizes, a call that would carry the stream's next-row counter
 * past 2^64 - 1), `_NO_LAYOUT` or `_NON_FINITE_OUTPUT`. Allocates nothing; bounded time.
 *
 * # Safety
 * `s` is NULL or a live session not in use by another thread; `y` and `x` hold the stated
 * number of floats.
 */
innfer_status innfer_sample(innfer_session *s, const float *y, size_t n_samples, float *x);

/**
 * Draws `n_samples` samples for each of `n_obs` observations: the same numbers as `n_obs`
 * successive `innfer_sample()` calls.
 *
 * - `y`: `[n_obs][y_dim]` floats, row-major;
 * - `x`: `[n_obs * n_samples][x_dim]` floats, row-major, observation by observation: the
 *   samples of observation `j` are rows `j*n_samples ... (j+1)*n_samples - 1`, drawn from rows
 *   `next + j*n_samples ...` of the random stream (see `innfer_session_seek()`).
 *
 * Statuses as `innfer_sample()`. Allocates nothing.
 *
 * # Safety
 * As `innfer_sample`.
 */
innfer_status innfer_sample_batch(innfer_session *s,
                                  const float *y,
                                  size_t n_obs,
                                  size_t n_samples,
                                  float *x);

/**
 * The strided form of `innfer_sample_batch()`.
 *
 * Element `(r, c)` of `y` (`n_obs` rows of `y_dim`) is `y[r*y_rs + c*y_cs]`; element `(r, c)`
 * of `x` (`n_obs*n_samples` rows of `x_dim`) is `x[r*x_rs + c*x_cs]`. Strides count floats
 * and must be >= 0. Row-major: `rs = cols, cs = 1`; a Fortran array `x(n, x_dim)`:
 * `rs = 1, cs = n`; `y_rs = 0` uses one observation for every row. The output must not have a
 * stride between two of its elements (a zero stride when it has more than one row, or
 * column), and its rows must not interleave: `x_rs >= x_dim*x_cs` (rows one after another)
 * or `x_cs >= n_obs*n_samples*x_rs` (columns one after another).
 *
 * Statuses as `innfer_sample()`, plus `_INVALID_ARGUMENT` for a negative stride, output
 * strides that make elements share memory, or an extent that overflows. Allocates nothing.
 *
 * # Safety
 * As `innfer_sample`; `y` and `x` span the elements their strides reach.
 */
innfer_status innfer_sample_strided(innfer_session *s,
                                    const float *y,
                                    ptrdiff_t y_rs,
                                    ptrdiff_t y_cs,
                                    size_t n_obs,
                                    size_t n_samples,
                                    float *x,
                                    ptrdiff_t x_rs,
                                    ptrdiff_t x_cs);

/**
 * Draws `n` posterior samples for each of `rows` observations and writes only their summaries:
 * per observation and parameter the mean, the standard deviation and the requested quantiles.
 *
 * - `y`: `[rows][y_dim]` floats, the observations in raw units;
 * - `quantiles`: `[n_quantiles]` levels q, each in [0, 1] (may be NULL if `n_quantiles` is 0);
 * - `mean`, `std`: `[rows][x_dim]` floats, written;
 * - `quantile_values`: `[rows][n_quantiles][x_dim]` floats, written (may be NULL if
 *   `n_quantiles` is 0);
 * - `invalid_rows`: receives the number of invalid observations (see below), or NULL.
 *
 * **Definitions.** For the samples x_1 ... x_n of one parameter of one observation: mean =
 * (1/n) sum_k x_k, summed in double precision in the order the samples are drawn; std = the
 * sample standard deviation with divisor n - 1 (0 for n = 1), from a second sum in double
 * precision of the squared deviations from that mean; quantile q = the order statistic
 * x_(k), k = max(1, ceil(q*n)) (q*n in double precision; a product within q's float rounding
 * above a whole number counts as that number, so q = 0.1 of 10 samples is x_(1)): always one
 * of the samples, q = 0 the least, q = 1 the greatest; samples ordered by IEEE 754
 * totalOrder (-0 before +0).
 *
 * **Samples.** Sample `k` of observation `j` is row `next + j*n + k` of the random stream and
 * the stream is left at `next + rows*n`, as with `innfer_sample_batch()`: the summaries are
 * those of the samples `innfer_sample_batch()` draws from the same position, bit for bit,
 * for any thread count (`innfer_session_set_threads()`), any `max_batch`, and any split of the
 * observations over calls or processes (`innfer_session_seek()` to `j0*n`).
 *
 * **Invalid rows.** An observation with a NaN or infinite value in `y` (or one that the
 * model's y transform turns into one) gets NaN in all its outputs and is counted in
 * `*invalid_rows`; the call still returns `INNFER_STATUS_OK` and the other observations are
 * unaffected. An observation with a finite `y` whose summaries come out non-finite all the
 * same (an overflow) gets NaN in all its outputs too, is not counted, and the call returns
 * `_NON_FINITE_OUTPUT` naming `mean` (or `std`) and its row, with every output and
 * `*invalid_rows` written (see NON-FINITE VALUES at the top of this header).
 *
 * **Cost.** Nothing is allocated and the memory used does not depend on `n` (the session's
 * memory includes a few KB for this call). With `n <= max_batch` the samples are drawn once,
 * many observations per pass through the network; with a larger `n` each observation's
 * samples are drawn again in several passes (2 without quantiles, typically 3 to 5 with),
 * which costs that many times the sampling.
 *
 * Returns `INNFER_STATUS_OK`; `_NULL_ARGUMENT` (`s` NULL, or a buffer NULL that has elements
 * to hold); `_INVALID_ARGUMENT` (`n` is 0, a quantile outside [0, 1] or NaN, an output
 * overlapping another buffer, a pointer not aligned to `float`, sizes that overflow, a call
 * that would carry the stream's next-row counter past 2^64 - 1, or a freed static session);
 * `_NO_LAYOUT` (a model without a sampling layout); `_NON_FINITE_OUTPUT` (see above); or
 * `_INTERNAL`. On any other failure nothing is written or drawn and the session's last error
 * names the argument.
 *
 * # Safety
 * `s` is NULL or a live session not in use by another thread; each buffer holds the stated
 * number of floats; `invalid_rows` is NULL or writable.
 */
innfer_status innfer_session_summarize(innfer_session *s,
                                       const float *y,
                                       size_t rows,
                                       size_t n,
                                       const float *quantiles,
                                       size_t n_quantiles,
                                       float *mean,
                                       float *std,
                                       float *quantile_values,
                                       size_t *invalid_rows);

/**
 * The forward pass `out = f(x; cond)` on `rows` rows, with the per-row log|det J| of the map
 * in raw units.
 *
 * - `x`, `out`: `[rows][dim]` floats, row-major (`out` written);
 * - `cond`: `[rows][cond_dim]` floats, or NULL if the model's `cond_dim` is 0 (then it must
 *   be NULL);
 * - `logdet`: `[rows]` floats written, or NULL if not wanted.
 *
 * `rows` may be at most the session's `max_batch`. Outputs must not overlap any other buffer
 * (no in-place calls).
 *
 * A row with a NaN or infinity in `x` or its `cond` row (or an `x` its transform cannot take:
 * on or outside its bounds) gets NaN in its `out` row and `logdet` and the call succeeds; a
 * finite row whose outputs overflow gets NaN too and `_NON_FINITE_OUTPUT` (see NON-FINITE
 * VALUES at the top of this header).
 *
 * Returns `INNFER_STATUS_OK`, `_NULL_ARGUMENT` (`s`, or a buffer with elements to hold,
 * NULL), `_INVALID_ARGUMENT` (an output overlapping another buffer, a pointer not aligned to
 * `float`, a `cond` given to a model that takes none, a freed static session),
 * `_BATCH_TOO_LARGE` (`rows` above `max_batch`) or `_NON_FINITE_OUTPUT`. Allocates nothing.
 *
 * # Safety
 * `s` is NULL or a live session not in use by another thread; the buffers hold the stated
 * number of floats.
 */
innfer_status innfer_forward(innfer_session *s,
                             const float *x,
                             const float *cond,
                             size_t rows,
                             float *out,
                             float *logdet);

/**
 * The inverse pass `x = f^-1(in; cond)` on `rows` rows, with the per-row log|det J| of the
 * inverse map in raw units. Buffers, rules, non-finite values and statuses as
 * `innfer_forward()`, with `in` (`[rows][dim]`) read and `x` (`[rows][dim]`) written.
 *
 * # Safety
 * As `innfer_forward`.
 */
innfer_status innfer_inverse(innfer_session *s,
                             const float *in,
                             const float *cond,
                             size_t rows,
                             float *x,
                             float *logdet);

/**
 * The strided form of `innfer_forward()`: element `(r, c)` of `x` is `x[r*x_rs + c*x_cs]`, of
 * `cond` `cond[r*c_rs + c*c_cs]`, of `out` `out[r*o_rs + c*o_cs]`; strides count floats and
 * must be >= 0 (see `innfer_sample_strided()` for common layouts, and for the output's
 * strides, which must not make two elements share memory). `logdet` is contiguous `[rows]`
 * or NULL; `c_rs`/`c_cs` are ignored when `cond` is NULL.
 *
 * Statuses as `innfer_forward()`, plus `_INVALID_ARGUMENT` for a negative stride, output
 * strides that make elements share memory, or an extent that overflows. Allocates nothing.
 *
 * # Safety
 * As `innfer_forward`; each buffer spans the elements its strides reach.
 */
innfer_status innfer_forward_strided(innfer_session *s,
                                     const float *x,
                                     ptrdiff_t x_rs,
                                     ptrdiff_t x_cs,
                                     const float *cond,
                                     ptrdiff_t c_rs,
                                     ptrdiff_t c_cs,
                                     size_t rows,
                                     float *out,
                                     ptrdiff_t o_rs,
                                     ptrdiff_t o_cs,
                                     float *logdet);

/**
 * The strided form of `innfer_inverse()`: `in` is read with strides `(in_rs, in_cs)`, `x`
 * written with `(x_rs, x_cs)`; otherwise as `innfer_forward_strided()`.
 *
 * # Safety
 * As `innfer_forward_strided`.
 */
innfer_status innfer_inverse_strided(innfer_session *s,
                                     const float *in,
                                     ptrdiff_t in_rs,
                                     ptrdiff_t in_cs,
                                     const float *cond,
                                     ptrdiff_t c_rs,
                                     ptrdiff_t c_cs,
                                     size_t rows,
                                     float *x,
                                     ptrdiff_t x_rs,
                                     ptrdiff_t x_cs,
                                     float *logdet);

#if !defined(INNFER_HAS_STD)
/**
 * Sets the function a panic in the bare-metal C library calls (NULL: none). Without a hook,
 * or when the hook returns, a panic calls the C library's `abort()` (on newlib: `_exit(1)`,
 * which with semihosting ends the program; give `abort` or the hook a reset for a device).
 * It never spins: a panic never leaves the device hanging inside the library.
 *
 * Only the C library built without `std` for bare-metal targets has a panic handler that
 * calls the hook; hosted builds catch panics and return `INNFER_STATUS_INTERNAL` instead, and
 * a Rust firmware using the innfer crate handles panics with its own handler.
 *
 * Thread-safe; call it once at start-up, before other innfer calls.
 */
void innfer_set_panic_hook(innfer_panic_hook hook);
#endif

#ifdef __cplusplus
}  /* extern "C" */
#endif  /* __cplusplus */

#endif  /* INNFER_H */
