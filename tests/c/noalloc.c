/* Counts heap allocations by interposing the C allocator (this program's malloc & co. take
 * precedence over libc's for the whole process, including libinnfer) and checks that no call
 * after session creation allocates: sampling, summaries, forward, inverse (contiguous and
 * strided), reseeding, seeking, failing calls (their messages) and last_error, rows with
 * non-finite input and rows that overflow (INNFER_STATUS_NON_FINITE_OUTPUT), on heap and
 * static sessions.
 * usage: noalloc SAMPLING_MODEL OTHER_MODEL */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"

#include "count_alloc.h"

#define MAX_BATCH 8

/* Calls that reported an overflow: the path must have been taken for the test to mean it. */
static size_t overflows;

/* The status of a call given huge finite input: OK, or an overflow reported (counted). */
static void ok_or_overflow(innfer_status st) {
    CHECK(st == INNFER_STATUS_OK || st == INNFER_STATUS_NON_FINITE_OUTPUT);
    overflows += st == INNFER_STATUS_NON_FINITE_OUTPUT;
}

static size_t exercise(innfer_session *s, const innfer_model *m) {
    size_t dim, cd, xd, yd, before;
    int32_t layout;
    float y[64], far[64], x[64 * 40], in[MAX_BATCH * 64], big[MAX_BATCH * 64], cond[MAX_BATCH * 64], o[MAX_BATCH * 64],
        ld[64], qs[3] = {0.05f, 0.5f, 0.95f}, mean[2 * 64], sd[2 * 64], qv[2 * 3 * 64];
    size_t i;
    CHECK_OK(innfer_model_dims(m, &dim, &cd, &xd, &yd, NULL, &layout));
    CHECK(dim <= 64 && cd <= 64 && yd <= 32);
    for (i = 0; i < 64; i++) {
        y[i] = obs_value(0, i);
        far[i] = 3e38f;
    }
    for (i = 0; i < MAX_BATCH * 64; i++) {
        in[i] = x_value(i);
        big[i] = i < dim ? 3e38f : x_value(i); /* row 0 far out */
        cond[i] = cond_value(i);
    }
    before = allocations;
    CHECK_OK(innfer_session_reseed(s, 3, 1));
    CHECK_OK(innfer_session_seek(s, 1000));
    CHECK_OK(innfer_session_rng_position(s, NULL, NULL, NULL));
    if (layout != INNFER_LAYOUT_NONE) {
        CHECK_OK(innfer_sample(s, y, 20, x)); /* several chunks of max_batch */
        CHECK_OK(innfer_sample_batch(s, y, 2, 10, x));
        CHECK_OK(innfer_sample_strided(s, y, 0, 1, 2, 10, x, 1, 20));
        /* Summaries in one pass (n = 3) and in passes (n = 20 > MAX_BATCH). */
        CHECK_OK(innfer_session_summarize(s, y, 2, 3, qs, 3, mean, sd, qv, NULL));
        CHECK_OK(innfer_session_summarize(s, y, 2, 20, qs, 3, mean, sd, qv, NULL));
        CHECK_STATUS(innfer_session_summarize(s, y, 2, 0, qs, 3, mean, sd, qv, NULL),
                     INNFER_STATUS_INVALID_ARGUMENT);
        /* A NaN observation (NaN rows) and one far out (an overflow, or finite samples). */
        y[0] = NAN;
        CHECK_OK(innfer_sample(s, y, 20, x));
        CHECK_OK(innfer_session_summarize(s, y, 2, 20, qs, 3, mean, sd, qv, NULL));
        y[0] = obs_value(0, 0);
        ok_or_overflow(innfer_sample(s, far, 20, x));
        ok_or_overflow(innfer_session_summarize(s, far, 1, 20, qs, 3, mean, sd, qv, NULL));
    } else {
        CHECK_STATUS(innfer_sample(s, y, 20, x), INNFER_STATUS_NO_LAYOUT);
    }
    CHECK_OK(innfer_forward(s, in, cd ? cond : NULL, MAX_BATCH, o, ld));
    CHECK_OK(innfer_inverse(s, in, cd ? cond : NULL, MAX_BATCH, o, NULL));
    CHECK_OK(innfer_forward_strided(s, in, 1, MAX_BATCH, cd ? cond : NULL, 1, MAX_BATCH, MAX_BATCH,
                                    o, 1, MAX_BATCH, ld));
    CHECK_OK(innfer_inverse_strided(s, in, (ptrdiff_t)dim, 1, cd ? cond : NULL, (ptrdiff_t)cd, 1,
                                    MAX_BATCH, o, (ptrdiff_t)dim, 1, ld));
    in[0] = NAN;
    CHECK_OK(innfer_forward(s, in, cd ? cond : NULL, MAX_BATCH, o, ld));
    in[0] = x_value(0);
    ok_or_overflow(innfer_forward(s, big, cd ? cond : NULL, MAX_BATCH, o, ld));
    ok_or_overflow(innfer_inverse(s, big, cd ? cond : NULL, MAX_BATCH, o, ld));
    /* Failures format their message into the session, without allocating. */
    CHECK_STATUS(innfer_forward(s, in, cd ? cond : NULL, MAX_BATCH + 1, o, ld),
                 INNFER_STATUS_BATCH_TOO_LARGE);
    CHECK_STATUS(innfer_forward(s, NULL, cd ? cond : NULL, 1, o, ld),
                 INNFER_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(innfer_forward(s, in, cd ? cond : NULL, 2, in, ld),
                 INNFER_STATUS_INVALID_ARGUMENT);
    CHECK(innfer_session_last_error(s)[0] != '\0');
    CHECK(innfer_session_max_batch(s) == MAX_BATCH);
    return allocations - before;
}

static void check_model(const char *path) {
    innfer_model *m;
    innfer_session *s;
    size_t before, bytes, during;
    void *memory;

    before = allocations;
    m = load(path);
    /* The counter sees the library's allocations (else this test proves nothing). */
    CHECK(allocations > before);

    CHECK_OK(innfer_session_create(m, MAX_BATCH, &s));
    during = exercise(s, m);
    if (during != 0) {
        fprintf(stderr, "%s, heap session: %zu allocations after creation\n", path, during);
        exit(1);
    }
    innfer_session_free(s);

    CHECK_OK(innfer_session_size(m, MAX_BATCH, &bytes));
    memory = aligned_alloc(INNFER_ARENA_ALIGN, (bytes + 63) / 64 * 64);
    before = allocations;
    CHECK_OK(innfer_session_init_static(m, MAX_BATCH, memory, bytes, &s));
    CHECK(allocations == before); /* a static session never allocates, not even to start */
    during = exercise(s, m);
    if (during != 0) {
        fprintf(stderr, "%s, static session: %zu allocations after creation\n", path, during);
        exit(1);
    }
    innfer_session_free(s);
    free(memory);
    innfer_model_free(m);
}

int main(int argc, char **argv) {
    int i;
    CHECK(argc >= 2);
    for (i = 1; i < argc; i++) check_model(argv[i]);
    CHECK(overflows > 0);
    printf("noalloc: ok (%zu overflows reported)\n", overflows);
    return 0;
}
