/* Helpers shared by the C test programs. */
#ifndef INNFER_TEST_COMMON_H
#define INNFER_TEST_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "innfer.h"

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);     \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)

#define CHECK_STATUS(call, want)                                                         \
    do {                                                                                 \
        innfer_status got_ = (call);                                                     \
        if (got_ != (want)) {                                                            \
            fprintf(stderr, "%s:%d: %s returned %d (%s), expected %d (%s)\n", __FILE__,  \
                    __LINE__, #call, (int)got_, innfer_status_string(got_), (int)(want), \
                    innfer_status_string(want));                                         \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)

#define CHECK_OK(call) CHECK_STATUS(call, INNFER_STATUS_OK)

/* Reads a whole file; *len receives its size. */
static inline unsigned char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    long n;
    unsigned char *data;
    CHECK(f != NULL);
    CHECK(fseek(f, 0, SEEK_END) == 0);
    n = ftell(f);
    CHECK(n > 0);
    CHECK(fseek(f, 0, SEEK_SET) == 0);
    data = (unsigned char *)malloc((size_t)n);
    CHECK(data != NULL);
    CHECK(fread(data, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return data;
}

static inline innfer_model *load(const char *path) {
    innfer_model *m = NULL;
    char err[256];
    innfer_status st = innfer_model_load_file(path, &m, err, sizeof err);
    if (st != INNFER_STATUS_OK) {
        fprintf(stderr, "loading %s: %s\n", path, err);
        exit(1);
    }
    return m;
}

/* A session on m of max_batch rows: on the heap, or in *memory (freed by the caller). */
static inline innfer_session *open_session(const innfer_model *m, size_t max_batch, int on_heap,
                                           void **memory) {
    innfer_session *s = NULL;
    *memory = NULL;
    if (on_heap) {
        CHECK_OK(innfer_session_create(m, max_batch, &s));
    } else {
        size_t bytes;
        CHECK_OK(innfer_session_size(m, max_batch, &bytes));
        *memory = aligned_alloc(INNFER_ARENA_ALIGN, (bytes + 63) / 64 * 64);
        CHECK(*memory != NULL);
        CHECK_OK(innfer_session_init_static(m, max_batch, *memory, bytes, &s));
    }
    return s;
}

/* The arguments MODEL OUT SEED STREAM M N MAX_BATCH of streams.c and summary.c (a run of N
 * samples for each of M observations): the model loaded, the numbers in the out-pointers. */
static inline innfer_model *load_observations_run(int argc, char **argv, uint64_t *seed,
                                                  uint64_t *stream, size_t *n_obs, size_t *n,
                                                  size_t *max_batch) {
    CHECK(argc == 8);
    *seed = strtoull(argv[3], NULL, 10);
    *stream = strtoull(argv[4], NULL, 10);
    *n_obs = (size_t)strtoull(argv[5], NULL, 10);
    *n = (size_t)strtoull(argv[6], NULL, 10);
    *max_batch = (size_t)strtoull(argv[7], NULL, 10);
    return load(argv[1]);
}

/* The deterministic inputs the Rust side recomputes (tests/c_api.rs). */
static inline float obs_value(size_t obs, size_t j) {
    return obs == 0 ? 0.25f * (float)j - 0.5f : 0.5f - 0.125f * (float)j;
}
static inline float x_value(size_t i) { return (float)(i % 7) * 0.3f - 0.9f; }
static inline float cond_value(size_t i) { return (float)(i % 5) * 0.2f - 0.4f; }

#endif
