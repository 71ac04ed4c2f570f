/* Fault injection from C: makes the n-th allocation of a load or of a session creation fail,
 * for every n, and checks what the C API promises about it.
 *
 *   fail_nth_alloc MODEL MAX_BATCH
 *
 * Linked against libinnfer.a with -Wl,--wrap=malloc,... (tests/c_fault_injection.rs), so every
 * allocation the library makes through the C allocator (Rust's System allocator calls malloc,
 * calloc, realloc, posix_memalign and free) passes through the __wrap_ functions below. For each
 * of innfer_model_load_file, innfer_model_load_bytes and innfer_session_create (MAX_BATCH rows)
 * it counts the call's allocations N in an undisturbed run, then for n = 0 .. N-1 runs the call
 * in a forked child whose n-th allocation returns NULL, and requires:
 *
 *   the call returns INNFER_STATUS_OUT_OF_MEMORY with *out NULL, and every allocation it made
 *   has been freed (none live afterwards). An abort (Rust's allocation-failure handler, reached
 *   by an infallible allocation) fails the run: every allocation of loading and of a session
 *   is fallible (docs/format.md §8).
 *
 * An undisturbed call frees everything too (after innfer_model_free/innfer_session_free). Each
 * call also runs once before counting, so that one-time initialisations are not taken for
 * leaks. Prints one summary line per call and "fail_nth_alloc: ok".
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

/* ---- the allocator shim ------------------------------------------------------------------ */

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
int __real_posix_memalign(void **p, size_t align, size_t size);
void *__real_aligned_alloc(size_t align, size_t size);
void *__real_memalign(size_t align, size_t size);
void __real_free(void *p);

/* Pointers the call under test allocated and has not freed. */
#define MAX_LIVE 65536
static void *live[MAX_LIVE];
static size_t live_count;

/* Counting only while armed (inside the call under test and its _free). */
static int armed;
/* Allocations counted so far in this arming. */
static long allocations;
/* The index of the allocation to refuse (-1: none). */
static long fail_at = -1;

/* What a child tells its parent: the size of the allocation it refused (read after an abort). */
struct report {
    size_t refused_size;
};
static struct report *shared;

static void remember(void *p) {
    if (p == NULL) return;
    if (live_count == MAX_LIVE) {
        fprintf(stderr, "fail_nth_alloc: more than %d live allocations\n", MAX_LIVE);
        abort();
    }
    live[live_count++] = p;
}

static void forget(void *p) {
    for (size_t i = live_count; i-- > 0;) {
        if (live[i] == p) {
            live[i] = live[--live_count];
            return;
        }
    }
}

/* Whether this allocation (of size bytes) is the one to refuse; counts it. */
static int refuse(size_t size) {
    if (!armed) return 0;
    if (allocations++ == fail_at) {
        if (shared != NULL) shared->refused_size = size;
        return 1;
    }
    return 0;
}

void *__wrap_malloc(size_t size) {
    if (refuse(size)) return NULL;
    void *p = __real_malloc(size);
    if (armed) remember(p);
    return p;
}

void *__wrap_calloc(size_t n, size_t size) {
    if (refuse(n * size)) return NULL;
    void *p = __real_calloc(n, size);
    if (armed) remember(p);
    return p;
}

void *__wrap_realloc(void *old, size_t size) {
    if (refuse(size)) return NULL;
    void *p = __real_realloc(old, size);
    if (armed && p != NULL) {
        if (old != NULL) forget(old);
        remember(p);
    }
    return p;
}

int __wrap_posix_memalign(void **out, size_t align, size_t size) {
    if (refuse(size)) return ENOMEM;
    int r = __real_posix_memalign(out, align, size);
    if (armed && r == 0) remember(*out);
    return r;
}

void *__wrap_aligned_alloc(size_t align, size_t size) {
    if (refuse(size)) return NULL;
    void *p = __real_aligned_alloc(align, size);
    if (armed) remember(p);
    return p;
}

void *__wrap_memalign(size_t align, size_t size) {
    if (refuse(size)) return NULL;
    void *p = __real_memalign(align, size);
    if (armed) remember(p);
    return p;
}

void __wrap_free(void *p) {
    if (armed && p != NULL) forget(p);
    __real_free(p);
}

/* A child's abort() ends here: exit status ABORTED, without a core dump to write. */
#define ABORTED 3
static void on_abort(int sig) {
    (void)sig;
    _exit(ABORTED);
}

/* ---- the calls under test ------------------------------------------------------------------ */

enum call { LOAD_FILE, LOAD_BYTES, SESSION_CREATE };
static const char *const call_names[] = {"innfer_model_load_file", "innfer_model_load_bytes",
                                         "innfer_session_create"};

static const char *model_path;
static unsigned char *model_bytes;
static size_t model_len;
static innfer_model *session_model; /* loaded before arming, for SESSION_CREATE */
static size_t max_batch;

/* Runs the call armed and releases what it made. Returns its status; *live_after receives the
 * number of its allocations still live after the release. */
static innfer_status run_call(enum call c, size_t *live_after) {
    innfer_model *m = (innfer_model *)1;
    innfer_session *s = (innfer_session *)1;
    char err[256];
    innfer_status st;
    live_count = 0;
    allocations = 0;
    armed = 1;
    switch (c) {
        case LOAD_FILE:
            st = innfer_model_load_file(model_path, &m, err, sizeof err);
            CHECK((st == INNFER_STATUS_OK) == (m != NULL));
            innfer_model_free(m);
            break;
        case LOAD_BYTES:
            st = innfer_model_load_bytes(model_bytes, model_len, &m, err, sizeof err);
            CHECK((st == INNFER_STATUS_OK) == (m != NULL));
            innfer_model_free(m);
            break;
        default:
            st = innfer_session_create(session_model, max_batch, &s);
            CHECK((st == INNFER_STATUS_OK) == (s != NULL));
            innfer_session_free(s);
            break;
    }
    armed = 0;
    *live_after = live_count;
    return st;
}

/* The outcomes of one call over every n. */
struct tally {
    long allocations, clean;
};

static struct tally inject(enum call c) {
    struct tally t = {0, 0};
    size_t leaked;
    const char *name = call_names[c];

    fail_at = -1;
    CHECK_OK(run_call(c, &leaked)); /* one-time initialisations */
    CHECK_OK(run_call(c, &leaked));
    if (leaked != 0) {
        fprintf(stderr, "%s: %zu allocations live after the free (no failure injected)\n", name,
                leaked);
        exit(1);
    }
    t.allocations = allocations;

    for (long n = 0; n < t.allocations; n++) {
        shared->refused_size = 0;
        fflush(NULL);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            /* Rust's "memory allocation of N bytes failed" before an abort goes to stderr:
             * silenced; this child's own findings go to stdout. */
            CHECK(freopen("/dev/null", "w", stderr) != NULL);
            CHECK(signal(SIGABRT, on_abort) != SIG_ERR);
            fail_at = n;
            innfer_status st = run_call(c, &leaked);
            if (st != INNFER_STATUS_OUT_OF_MEMORY) {
                printf("%s, allocation %ld (%zu bytes) refused: status %d (%s), not "
                        "INNFER_STATUS_OUT_OF_MEMORY\n", name, n, shared->refused_size, (int)st,
                        innfer_status_string(st));
                fflush(stdout);
                _exit(1);
            }
            if (leaked != 0) {
                printf("%s, allocation %ld (%zu bytes) refused: %zu allocations leaked\n", name,
                       n, shared->refused_size, leaked);
                fflush(stdout);
                _exit(1);
            }
            _exit(0);
        }
        int status;
        CHECK(waitpid(pid, &status, 0) == pid);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            t.clean++;
        } else if (WIFEXITED(status) && WEXITSTATUS(status) == ABORTED) {
            fprintf(stderr, "%s, allocation %ld (%zu bytes) refused: the process aborted "
                    "instead of returning INNFER_STATUS_OUT_OF_MEMORY\n",
                    name, n, shared->refused_size);
            exit(1);
        } else {
            fprintf(stderr, "%s, allocation %ld refused: the child ended with wait status "
                    "0x%x\n", name, n, (unsigned)status);
            exit(1);
        }
    }
    printf("%s: %ld allocations; refusing each: %ld OUT_OF_MEMORY with nothing leaked, no "
           "abort\n", name, t.allocations, t.clean);
    if (t.clean == 0) {
        fprintf(stderr, "%s: no allocation failed cleanly: nothing was tested\n", name);
        exit(1);
    }
    return t;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: fail_nth_alloc MODEL MAX_BATCH\n");
        return 2;
    }
    model_path = argv[1];
    max_batch = (size_t)strtoull(argv[2], NULL, 10);
    /* An abort would otherwise symbolise a backtrace (80 ms) where it is set. */
    CHECK(setenv("RUST_BACKTRACE", "0", 1) == 0);
    model_bytes = read_all(model_path, &model_len);
    shared = mmap(NULL, sizeof *shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(shared != MAP_FAILED);
    inject(LOAD_FILE);
    inject(LOAD_BYTES);
    char err[256];
    CHECK_OK(innfer_model_load_file(model_path, &session_model, err, sizeof err));
    inject(SESSION_CREATE);
    innfer_model_free(session_model);
    free(model_bytes);
    munmap(shared, sizeof *shared);
    printf("fail_nth_alloc: ok\n");
    return 0;
}
