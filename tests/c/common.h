/* Helpers shared by the C test programs. */
#ifndef INNFER_TEST_COMMON_H
#define INNFER_TEST_COMMON_H

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

/* The deterministic inputs the Rust side recomputes (tests/c_api.rs). */
static inline float obs_value(size_t obs, size_t j) {
    return obs == 0 ? 0.25f * (float)j - 0.5f : 0.5f - 0.125f * (float)j;
}
static inline float x_value(size_t i) { return (float)(i % 7) * 0.3f - 0.9f; }
static inline float cond_value(size_t i) { return (float)(i % 5) * 0.2f - 0.4f; }

#endif
