/* The non-finite policy through the C API, in every call (see NON-FINITE VALUES in innfer.h;
 * tests/non_finite.rs checks the Rust API):
 *  - a row whose input holds a NaN or an infinity comes out NaN in every output (logdet too),
 *    the call returns INNFER_STATUS_OK, and the other rows keep their bits;
 *  - a row whose finite input overflows (1e38) comes out NaN in every output too, and the call
 *    returns INNFER_STATUS_NON_FINITE_OUTPUT with the buffer and first row in the last error,
 *    after writing every output and advancing the stream.
 * usage: non_finite ARM_MODEL (models/kinematics.safetensors: a cINN, x_dim 4, y_dim 2) */
#include <math.h>

#include "common.h"

#define XD 4
#define YD 2
#define N 6 /* samples per observation */

static const float BAD[4] = {NAN, INFINITY, -INFINITY, 1e38f};
#define OVERFLOW 3 /* BAD[OVERFLOW] is finite: its rows overflow */

static int all_nan(const float *v, size_t n) {
    size_t i;
    for (i = 0; i < n; i++)
        if (!isnan(v[i])) return 0;
    return 1;
}

static int all_finite(const float *v, size_t n) {
    size_t i;
    for (i = 0; i < n; i++)
        if (!isfinite(v[i])) return 0;
    return 1;
}

static int contains(const char *s, const char *part) { return strstr(s, part) != NULL; }

/* The status a call with BAD[k] in a row's input must return. */
static innfer_status expected(size_t k) {
    return k == OVERFLOW ? INNFER_STATUS_NON_FINITE_OUTPUT : INNFER_STATUS_OK;
}

/* The last error after a call with BAD[k]: empty, or naming the call, buffer and row. */
static void check_message(innfer_session *s, size_t k, const char *call, const char *buffer,
                          const char *row) {
    const char *e = innfer_session_last_error(s);
    if (k != OVERFLOW) {
        CHECK(strcmp(e, "") == 0);
        return;
    }
    if (!(contains(e, call) && contains(e, buffer) && contains(e, row))) {
        fprintf(stderr, "unexpected message: %s\n", e);
        exit(1);
    }
}

/* Three observations, N samples each, BAD[k] in the middle one's first value. */
static void sampling(innfer_session *s) {
    float ys[3 * YD] = {1.5f, 0.0f, 0.0f, 0.0f, 0.5f, 1.0f};
    float x[3 * N * XD], alone[N * XD];
    uint64_t row;
    size_t k;
    for (k = 0; k < 4; k++) {
        ys[YD] = BAD[k];
        CHECK_OK(innfer_session_reseed(s, 7, 1));
        CHECK_STATUS(innfer_sample_batch(s, ys, 3, N, x), expected(k));
        check_message(s, k, "innfer_sample_batch", "`x`", "row 6 (6 rows in all)");
        CHECK(all_nan(x + N * XD, N * XD));
        CHECK(all_finite(x, N * XD) && all_finite(x + 2 * N * XD, N * XD));
        CHECK_OK(innfer_session_rng_position(s, NULL, NULL, &row));
        CHECK(row == 3 * N);
        /* Observation 2 alone, from its stream rows: the same bits. */
        CHECK_OK(innfer_session_seek(s, 2 * N));
        CHECK_OK(innfer_sample(s, ys + 2 * YD, N, alone));
        CHECK(memcmp(alone, x + 2 * N * XD, sizeof alone) == 0);
        /* The bad observation alone, contiguous and column by column. */
        CHECK_STATUS(innfer_sample(s, ys + YD, N, alone), expected(k));
        check_message(s, k, "innfer_sample", "`x`", "row 0 (6 rows in all)");
        CHECK(all_nan(alone, N * XD));
        CHECK_STATUS(innfer_sample_strided(s, ys + YD, 0, 1, 1, N, alone, 1, N), expected(k));
        check_message(s, k, "innfer_sample_strided", "`x`", "row 0 (6 rows in all)");
        CHECK(all_nan(alone, N * XD));
    }
}

/* Summaries of three observations, BAD[k] in the middle one, n in one pass and in several
 * (the session's max_batch is 4). */
static void summaries(innfer_session *s) {
    float ys[3 * YD] = {1.5f, 0.0f, 0.0f, 0.0f, 0.5f, 1.0f}, q[2] = {0.1f, 0.9f};
    float mean[3 * XD], sd[3 * XD], qv[3 * 2 * XD];
    size_t k, invalid, n;
    for (n = 3; n <= N; n += 3) {
        for (k = 0; k < 4; k++) {
            ys[YD + 1] = BAD[k];
            invalid = 99;
            CHECK_STATUS(innfer_session_summarize(s, ys, 3, n, q, 2, mean, sd, qv, &invalid),
                         expected(k));
            check_message(s, k, "innfer_session_summarize", "`mean`", "row 1 (1 rows in all)");
            CHECK(invalid == (k == OVERFLOW ? 0u : 1u));
            CHECK(all_nan(mean + XD, XD) && all_nan(sd + XD, XD) && all_nan(qv + 2 * XD, 2 * XD));
            CHECK(all_finite(mean, XD) && all_finite(sd, XD) && all_finite(qv, 2 * XD));
            CHECK(all_finite(mean + 2 * XD, XD) && all_finite(qv + 4 * XD, 2 * XD));
        }
    }
}

/* A forward or inverse pass of 3 rows, contiguous or with a column-major output. */
static innfer_status pass(innfer_session *s, int rev, int strided, const float *in,
                          const float *cond, float *out, float *ld) {
    if (strided) {
        return rev ? innfer_inverse_strided(s, in, XD, 1, cond, YD, 1, 3, out, 1, 3, ld)
                   : innfer_forward_strided(s, in, XD, 1, cond, YD, 1, 3, out, 1, 3, ld);
    }
    return rev ? innfer_inverse(s, in, cond, 3, out, ld) : innfer_forward(s, in, cond, 3, out, ld);
}

/* Row r of a pass's output (column-major when strided) into row[XD]. */
static void output_row(const float *out, int strided, size_t r, float *row) {
    size_t c;
    for (c = 0; c < XD; c++) row[c] = strided ? out[c * 3 + r] : out[r * XD + c];
}

/* Each entry of the middle row's input and condition non-finite in turn; then the whole
 * input row, or one condition value, 1e38 (an overflow). */
static void passes(innfer_session *s) {
    float in[3 * XD], cond[3 * YD], out[3 * XD], ld[3], clean[3 * XD], clean_ld[3];
    float row[XD], want[XD];
    const char *calls[2][2] = {{"innfer_forward:", "innfer_forward_strided"},
                               {"innfer_inverse:", "innfer_inverse_strided"}};
    const char *buffers[2] = {"`out`", "`x`"};
    size_t i, k, e, r;
    int rev, strided;
    for (rev = 0; rev < 2; rev++) {
        for (strided = 0; strided < 2; strided++) {
            for (i = 0; i < 3 * XD; i++) in[i] = 0.1f * (float)(i % XD) - 0.2f;
            for (i = 0; i < 3 * YD; i++) cond[i] = i % YD == 0 ? 1.5f : 0.0f;
            CHECK_OK(pass(s, rev, strided, in, cond, clean, clean_ld));
            for (k = 0; k < 4; k++) {
                /* entries 0..XD-1 of the input row, XD..XD+YD-1 of the condition; for the
                 * overflow the whole input row (XD + YD) and the first condition value. */
                for (e = 0; e < XD + YD + 1; e++) {
                    if (k == OVERFLOW ? e != XD && e != XD + YD : e == XD + YD) continue;
                    for (i = 0; i < 3 * XD; i++) in[i] = 0.1f * (float)(i % XD) - 0.2f;
                    for (i = 0; i < 3 * YD; i++) cond[i] = i % YD == 0 ? 1.5f : 0.0f;
                    if (e < XD) {
                        in[XD + e] = BAD[k];
                    } else if (e < XD + YD) {
                        cond[YD + e - XD] = BAD[k];
                    } else {
                        for (i = 0; i < XD; i++) in[XD + i] = BAD[k];
                    }
                    CHECK_STATUS(pass(s, rev, strided, in, cond, out, ld), expected(k));
                    check_message(s, k, calls[rev][strided], buffers[rev],
                                  "row 1 (1 rows in all)");
                    output_row(out, strided, 1, row);
                    CHECK(all_nan(row, XD) && isnan(ld[1]));
                    for (r = 0; r < 3; r += 2) {
                        output_row(out, strided, r, row);
                        output_row(clean, strided, r, want);
                        CHECK(memcmp(row, want, sizeof row) == 0);
                        CHECK(memcmp(&ld[r], &clean_ld[r], sizeof ld[r]) == 0);
                    }
                }
            }
        }
    }
}

int main(int argc, char **argv) {
    innfer_model *m;
    innfer_session *s;
    size_t xd, yd;
    CHECK(argc == 2);
    m = load(argv[1]);
    CHECK_OK(innfer_model_dims(m, NULL, NULL, &xd, &yd, NULL, NULL));
    CHECK(xd == XD && yd == YD);
    CHECK_OK(innfer_session_create(m, 4, &s));
    sampling(s);
    summaries(s);
    passes(s);
    innfer_session_free(s);
    innfer_model_free(m);
    printf("non_finite: ok\n");
    return 0;
}
