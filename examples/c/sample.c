/* sample.c: posterior samples from an innfer model, from C.
 *
 *   usage: sample MODEL Y [N]
 *     MODEL  a model file (.safetensors in the innfer format) with a sampling layout
 *     Y      the observation, comma-separated, y_dim values (e.g. 1.5,0)
 *     N      number of samples (default 1000)
 *   Draws N samples of x with seed 0 and prints the mean and standard deviation of each
 *   parameter. With INNFER_EXAMPLE_DUMP=FILE it also writes the raw samples there
 *   (float32, native byte order, [N][x_dim] row-major).
 *
 * Build (from the repository root, after `cargo build --release`):
 *   cc -std=c99 -O2 -Iinclude examples/c/sample.c target/release/libinnfer.a \
 *      -lpthread -ldl -lm -o sample                                      (static)
 *   cc -std=c99 -O2 -Iinclude examples/c/sample.c -Ltarget/release -linnfer \
 *      -Wl,-rpath,$PWD/target/release -lm -o sample                      (shared)
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "innfer.h"

#define MAX_BATCH 256

static int parse_floats(const char *text, float *out, size_t cap, size_t *count) {
    const char *p = text;
    size_t n = 0;
    for (;;) {
        char *end;
        errno = 0;
        float v = strtof(p, &end);
        if (end == p || errno != 0) return -1;
        if (n < cap) out[n] = v;
        n++;
        if (*end == '\0') break;
        if (*end != ',') return -1;
        p = end + 1;
    }
    *count = n;
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: %s MODEL Y [N]   (Y comma-separated, e.g. 1.5,0)\n", argv[0]);
        return 2;
    }
    size_t n = 1000;
    if (argc == 4) {
        char *end;
        long v = strtol(argv[3], &end, 10);
        if (*end != '\0' || v <= 0) {
            fprintf(stderr, "N must be a positive integer, got '%s'\n", argv[3]);
            return 2;
        }
        n = (size_t)v;
    }

    char err[512];
    innfer_model *model = NULL;
    innfer_status st = innfer_model_load_file(argv[1], &model, err, sizeof err);
    if (st != INNFER_STATUS_OK) {
        fprintf(stderr, "cannot load %s: %s (%s)\n", argv[1], err, innfer_status_string(st));
        return 1;
    }
    size_t x_dim = 0, y_dim = 0;
    int32_t layout = 0;
    innfer_model_dims(model, NULL, NULL, &x_dim, &y_dim, NULL, &layout);
    if (layout == INNFER_LAYOUT_NONE) {
        fprintf(stderr, "%s has no sampling layout\n", argv[1]);
        innfer_model_free(model);
        return 1;
    }

    size_t y_count = 0;
    float *y = calloc(y_dim > 0 ? y_dim : 1, sizeof *y);
    if (y == NULL || parse_floats(argv[2], y, y_dim, &y_count) != 0 || y_count != y_dim) {
        fprintf(stderr, "Y must be %zu comma-separated numbers, got '%s'\n", y_dim, argv[2]);
        free(y);
        innfer_model_free(model);
        return 2;
    }

    innfer_session *session = NULL;
    st = innfer_session_create(model, MAX_BATCH, &session);
    if (st != INNFER_STATUS_OK) {
        fprintf(stderr, "cannot create a session: %s\n", innfer_status_string(st));
        free(y);
        innfer_model_free(model);
        return 1;
    }
    innfer_session_reseed(session, 0, 0);

    float *x = malloc(n * x_dim * sizeof *x);
    if (x == NULL) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    st = innfer_sample(session, y, n, x);
    if (st != INNFER_STATUS_OK) {
        fprintf(stderr, "sampling failed: %s (%s)\n", innfer_session_last_error(session),
                innfer_status_string(st));
        return 1;
    }

    const char *dump = getenv("INNFER_EXAMPLE_DUMP");
    if (dump != NULL && dump[0] != '\0') {
        FILE *f = fopen(dump, "wb");
        if (f == NULL || fwrite(x, sizeof *x, n * x_dim, f) != n * x_dim || fclose(f) != 0) {
            fprintf(stderr, "cannot write %s\n", dump);
            return 1;
        }
    }

    printf("%zu samples, seed 0, x_dim %zu\n", n, x_dim);
    printf("param %14s %14s\n", "mean", "std");
    for (size_t j = 0; j < x_dim; j++) {
        double sum = 0.0, sq = 0.0;
        for (size_t i = 0; i < n; i++) sum += x[i * x_dim + j];
        double mean = sum / (double)n;
        for (size_t i = 0; i < n; i++) {
            double d = x[i * x_dim + j] - mean;
            sq += d * d;
        }
        double sd = n > 1 ? sqrt(sq / (double)(n - 1)) : 0.0;
        printf("%5zu %14.6f %14.6f\n", j, mean, sd);
    }

    free(x);
    free(y);
    innfer_session_free(session);
    innfer_model_free(model);
    return 0;
}
