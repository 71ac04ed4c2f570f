/* innfer_session_summarize() through the C API.
 *
 * usage: summary MODEL OUT SEED STREAM M N MAX_BATCH
 * Summarizes N samples for each of M observations (observation j: obs_value(j % 2, .) +
 * 0.25 j; observation 2, if M > 2, has a NaN: an invalid row) at quantiles 0, 0.1, 0.5, 0.9
 * and 1 in one call and writes mean, std and quantile values ([M][x_dim], [M][x_dim],
 * [M][5][x_dim] float32, one after the other) to OUT for tests/c_api.rs to compare with the
 * Rust API. Then checks here, bit for bit, that blocks of the observations summarized by
 * their own sessions (seeked to the block's first row; heap and static; one thread and two),
 * a session too small to hold N samples (the passes), and a call without quantiles and without
 * a count give the same numbers. */
#include <math.h>
#include <stdint.h>

#include "common.h"

#define NQ 5
static const float QUANTILES[NQ] = {0.0f, 0.1f, 0.5f, 0.9f, 1.0f};

static float observation(size_t j, size_t i) { return obs_value(j % 2, i) + 0.25f * (float)j; }

/* The outputs of one call. */
typedef struct {
    float *mean, *std, *q;
} summaries;

static summaries alloc_summaries(size_t m, size_t xd) {
    summaries s;
    s.mean = (float *)calloc(m * xd, sizeof(float));
    s.std = (float *)calloc(m * xd, sizeof(float));
    s.q = (float *)calloc(m * NQ * xd, sizeof(float));
    CHECK(s.mean != NULL && s.std != NULL && s.q != NULL);
    return s;
}

static void free_summaries(summaries s) {
    free(s.mean);
    free(s.std);
    free(s.q);
}

static int same(summaries a, summaries b, size_t m, size_t xd) {
    return memcmp(a.mean, b.mean, sizeof(float) * m * xd) == 0 &&
           memcmp(a.std, b.std, sizeof(float) * m * xd) == 0 &&
           memcmp(a.q, b.q, sizeof(float) * m * NQ * xd) == 0;
}

int main(int argc, char **argv) {
    innfer_model *m;
    innfer_session *s;
    void *memory;
    size_t xd, yd, n_obs, n, max_batch, j, i, parts, r, config, invalid;
    uint64_t seed, stream, row;
    float *y;
    summaries whole, split;
    FILE *out;

    m = load_observations_run(argc, argv, &seed, &stream, &n_obs, &n, &max_batch);
    CHECK(n_obs > 2 && n > 3);
    CHECK_OK(innfer_model_dims(m, NULL, NULL, &xd, &yd, NULL, NULL));
    y = (float *)malloc(sizeof(float) * n_obs * yd);
    CHECK(y != NULL);
    for (j = 0; j < n_obs; j++)
        for (i = 0; i < yd; i++) y[j * yd + i] = observation(j, i);
    y[2 * yd] = NAN;
    whole = alloc_summaries(n_obs, xd);
    split = alloc_summaries(n_obs, xd);

    /* One call. */
    s = open_session(m, max_batch, 1, &memory);
    CHECK_OK(innfer_session_reseed(s, seed, stream));
    invalid = 99;
    CHECK_OK(innfer_session_summarize(s, y, n_obs, n, QUANTILES, NQ, whole.mean, whole.std,
                                      whole.q, &invalid));
    CHECK(invalid == 1);
    CHECK_OK(innfer_session_rng_position(s, NULL, NULL, &row));
    CHECK(row == (uint64_t)(n_obs * n));
    for (i = 0; i < xd; i++) {
        CHECK(isnan(whole.mean[2 * xd + i]) && isnan(whole.std[2 * xd + i]));
        CHECK(!isnan(whole.mean[i]) && whole.std[i] > 0.0f);
        for (r = 0; r < NQ; r++) {
            CHECK(isnan(whole.q[(2 * NQ + r) * xd + i]));
            if (r > 0) CHECK(whole.q[r * xd + i] >= whole.q[(r - 1) * xd + i]);
        }
    }
    innfer_session_free(s);
    out = fopen(argv[2], "wb");
    CHECK(out != NULL);
    CHECK(fwrite(whole.mean, sizeof(float), n_obs * xd, out) == n_obs * xd);
    CHECK(fwrite(whole.std, sizeof(float), n_obs * xd, out) == n_obs * xd);
    CHECK(fwrite(whole.q, sizeof(float), n_obs * NQ * xd, out) == n_obs * NQ * xd);
    CHECK(fclose(out) == 0);

    /* Blocks by their own sessions, seeked to their first row: heap or static memory, one
     * thread or two. */
    for (parts = 2; parts <= 3; parts++) {
        for (config = 0; config < 4; config++) {
            int on_heap = config % 2 == 0;
            size_t threads = config < 2 ? 1 : 2;
            memset(split.mean, 0, sizeof(float) * n_obs * xd);
            for (r = 0; r < parts; r++) {
                size_t j0 = r * n_obs / parts, j1 = (r + 1) * n_obs / parts;
                s = open_session(m, max_batch, on_heap, &memory);
                CHECK_OK(innfer_session_set_threads(s, threads));
                CHECK_OK(innfer_session_reseed(s, seed, stream));
                CHECK_OK(innfer_session_seek(s, (uint64_t)j0 * n));
                CHECK_OK(innfer_session_summarize(s, y + j0 * yd, j1 - j0, n, QUANTILES, NQ,
                                                  split.mean + j0 * xd, split.std + j0 * xd,
                                                  split.q + j0 * NQ * xd, NULL));
                innfer_session_free(s);
                free(memory);
            }
            if (!same(split, whole, n_obs, xd)) {
                fprintf(stderr, "%zu blocks, %s session, %zu threads: summaries differ\n", parts,
                        on_heap ? "heap" : "static", threads);
                return 1;
            }
        }
    }

    /* A session that holds fewer rows than N: the samples are drawn in passes. */
    s = open_session(m, 3, 0, &memory);
    CHECK_OK(innfer_session_reseed(s, seed, stream));
    CHECK_OK(innfer_session_summarize(s, y, n_obs, n, QUANTILES, NQ, split.mean, split.std,
                                      split.q, &invalid));
    CHECK(invalid == 1);
    CHECK(same(split, whole, n_obs, xd));
    /* No quantiles: quantile_values may be NULL; mean and std are the same. */
    memset(split.mean, 0, sizeof(float) * n_obs * xd);
    CHECK_OK(innfer_session_reseed(s, seed, stream));
    CHECK_OK(innfer_session_summarize(s, y, n_obs, n, NULL, 0, split.mean, split.std, NULL,
                                      NULL));
    CHECK(memcmp(split.mean, whole.mean, sizeof(float) * n_obs * xd) == 0);
    CHECK(memcmp(split.std, whole.std, sizeof(float) * n_obs * xd) == 0);
    innfer_session_free(s);
    free(memory);

    free_summaries(whole);
    free_summaries(split);
    free(y);
    innfer_model_free(m);
    puts("summary: ok");
    return 0;
}
