/* The random-stream position and the thread count through the C API.
 *
 * usage: streams MODEL OUT SEED STREAM M N MAX_BATCH
 * Draws N samples for each of M observations (observation j: obs_value(j % 2, .) + 0.25 j) in
 * one innfer_sample_batch() call and writes them to OUT ([M*N][x_dim] float32) for
 * tests/c_api.rs to compare with the Rust API. Then checks here, bit for bit, that every split
 * of the observations into 1 to 4 contiguous blocks (the larger blocks first, as
 * examples/mpi splits over ranks) gives the same samples when each block is drawn by its own
 * session that reseeds, seeks to row j0*N and samples its block: heap and static sessions,
 * one thread and two (innfer_session_set_threads). And the documented statuses of the new
 * calls. */
#include <stdint.h>

#include "common.h"

static float observation(size_t j, size_t i) { return obs_value(j % 2, i) + 0.25f * (float)j; }

static void check_position(const innfer_session *s, uint64_t seed, uint64_t stream,
                           uint64_t row) {
    uint64_t a = 1, b = 1, c = 1;
    CHECK_OK(innfer_session_rng_position(s, &a, &b, &c));
    CHECK(a == seed && b == stream && c == row);
}

int main(int argc, char **argv) {
    innfer_model *m;
    innfer_session *s;
    void *memory;
    size_t xd, yd, n_obs, n, max_batch, j, i, parts, r, config;
    uint64_t seed, stream, row;
    float *y, *whole, *split;
    FILE *out;

    m = load_observations_run(argc, argv, &seed, &stream, &n_obs, &n, &max_batch);
    CHECK_OK(innfer_model_dims(m, NULL, NULL, &xd, &yd, NULL, NULL));
    y = (float *)malloc(sizeof(float) * n_obs * yd);
    whole = (float *)malloc(sizeof(float) * n_obs * n * xd);
    split = (float *)malloc(sizeof(float) * n_obs * n * xd);
    CHECK(y != NULL && whole != NULL && split != NULL);
    for (j = 0; j < n_obs; j++)
        for (i = 0; i < yd; i++) y[j * yd + i] = observation(j, i);

    /* One process, one call. */
    s = open_session(m, max_batch, 1, &memory);
    check_position(s, 0, 0, 0);
    CHECK_OK(innfer_session_reseed(s, seed, stream));
    check_position(s, seed, stream, 0);
    CHECK_OK(innfer_sample_batch(s, y, n_obs, n, whole));
    check_position(s, seed, stream, (uint64_t)(n_obs * n));
    innfer_session_free(s);
    out = fopen(argv[2], "wb");
    CHECK(out != NULL);
    CHECK(fwrite(whole, sizeof(float), n_obs * n * xd, out) == n_obs * n * xd);
    CHECK(fclose(out) == 0);

    /* Blocks drawn by their own sessions from a seeked position: heap or static memory, one
     * thread or two. */
    for (parts = 1; parts <= 4; parts++) {
        for (config = 0; config < 4; config++) {
            int on_heap = config % 2 == 0;
            size_t threads = config < 2 ? 1 : 2;
            memset(split, 0, sizeof(float) * n_obs * n * xd);
            for (r = 0; r < parts; r++) {
                size_t j0 = r * (n_obs / parts) + (r < n_obs % parts ? r : n_obs % parts);
                size_t j1 = j0 + n_obs / parts + (r < n_obs % parts ? 1 : 0);
                s = open_session(m, max_batch, on_heap, &memory);
                CHECK_OK(innfer_session_set_threads(s, threads));
                CHECK_OK(innfer_session_reseed(s, seed, stream));
                CHECK_OK(innfer_session_seek(s, (uint64_t)j0 * n));
                check_position(s, seed, stream, (uint64_t)(j0 * n));
                CHECK_OK(innfer_sample_batch(s, y + j0 * yd, j1 - j0, n, split + j0 * n * xd));
                check_position(s, seed, stream, (uint64_t)(j1 * n));
                innfer_session_free(s);
                free(memory);
            }
            if (memcmp(split, whole, sizeof(float) * n_obs * n * xd) != 0) {
                fprintf(stderr, "%zu blocks, %s session, %zu threads: samples differ\n", parts,
                        on_heap ? "heap" : "static", threads);
                return 1;
            }
        }
    }

    /* Seeking back redraws the same rows, one observation at a time. */
    s = open_session(m, max_batch, 1, &memory);
    CHECK_OK(innfer_session_reseed(s, seed, stream));
    for (j = n_obs; j-- > 0;) {
        CHECK_OK(innfer_session_seek(s, (uint64_t)j * n));
        CHECK_OK(innfer_sample(s, y + j * yd, n, split));
        CHECK(memcmp(split, whole + j * n * xd, sizeof(float) * n * xd) == 0);
    }

    /* Statuses. Outputs of rng_position may be NULL. */
    CHECK_OK(innfer_session_seek(s, 77));
    CHECK_OK(innfer_session_rng_position(s, NULL, NULL, &row));
    CHECK(row == 77);
    CHECK_OK(innfer_session_rng_position(s, NULL, NULL, NULL));
    CHECK_STATUS(innfer_session_seek(NULL, 1), INNFER_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(innfer_session_rng_position(NULL, &row, NULL, NULL),
                 INNFER_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(innfer_session_set_threads(NULL, 2), INNFER_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(innfer_session_set_threads(s, 0), INNFER_STATUS_INVALID_ARGUMENT);
    CHECK(strstr(innfer_session_last_error(s), "innfer_session_set_threads") != NULL);
    CHECK(strstr(innfer_session_last_error(s), "at least 1") != NULL);
    CHECK_STATUS(innfer_session_set_threads(s, 1025), INNFER_STATUS_INVALID_ARGUMENT);
    CHECK(strstr(innfer_session_last_error(s), "at most 1024") != NULL);
    /* The last rows of the stream: a call that would pass 2^64 - 1 fails and draws nothing. */
    CHECK_OK(innfer_session_seek(s, UINT64_MAX - 2));
    CHECK_STATUS(innfer_sample(s, y, 3, split), INNFER_STATUS_INVALID_ARGUMENT);
    CHECK(strstr(innfer_session_last_error(s), "next-row counter") != NULL);
    check_position(s, seed, stream, UINT64_MAX - 2);
    CHECK_OK(innfer_sample(s, y, 2, split));
    check_position(s, seed, stream, UINT64_MAX);
    innfer_session_free(s);

    free(y);
    free(whole);
    free(split);
    innfer_model_free(m);
    puts("streams: ok");
    return 0;
}
