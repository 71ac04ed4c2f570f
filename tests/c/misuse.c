/* Misuse of every call gets its documented status, never a crash.
 * usage: misuse CINN_MODEL LAYOUTLESS_MODEL TRUNCATED_FILE MISSING_FILE */
#include <math.h>
#include <stdint.h>

#include "common.h"

#define MB 4

static int contains(const char *s, const char *part) { return strstr(s, part) != NULL; }

static void versions(void) {
    char want[64];
    int code;
    CHECK(innfer_abi_version() == INNFER_ABI_VERSION);
    sprintf(want, "%d.%d.%d", INNFER_VERSION_MAJOR, INNFER_VERSION_MINOR, INNFER_VERSION_PATCH);
    CHECK(strcmp(innfer_version_string(), want) == 0);
    for (code = 0; code <= INNFER_STATUS_NON_FINITE_OUTPUT; code++) {
        CHECK(innfer_status_string(code) != NULL);
        CHECK(strcmp(innfer_status_string(code), "unknown status") != 0);
    }
    CHECK(strcmp(innfer_status_string(INNFER_STATUS_NON_FINITE_OUTPUT + 1), "unknown status") ==
          0);
    CHECK(strcmp(innfer_status_string(-1), "unknown status") == 0);
    CHECK(strcmp(innfer_status_string(INT32_MIN), "unknown status") == 0);
}

static void loading(const char *good, const char *truncated, const char *missing) {
    innfer_model *m = (innfer_model *)&m; /* garbage: must be overwritten with NULL */
    char err[256], tiny[5];
    unsigned char *bytes;
    size_t len, cut;

    CHECK_STATUS(innfer_model_load_file(NULL, &m, err, sizeof err), INNFER_STATUS_NULL_ARGUMENT);
    CHECK(m == NULL && contains(err, "path"));
    CHECK_STATUS(innfer_model_load_file(good, NULL, err, sizeof err), INNFER_STATUS_NULL_ARGUMENT);
    CHECK(contains(err, "out"));
    m = (innfer_model *)&m;
    CHECK_STATUS(innfer_model_load_file(missing, &m, err, sizeof err), INNFER_STATUS_IO);
    CHECK(m == NULL && contains(err, missing));
    CHECK_STATUS(innfer_model_load_file(truncated, &m, err, sizeof err), INNFER_STATUS_FORMAT);
    CHECK(m == NULL && err[0] != '\0');
    /* err may be NULL, or too short (truncated, always NUL-terminated). */
    CHECK_STATUS(innfer_model_load_file(truncated, &m, NULL, 100), INNFER_STATUS_FORMAT);
    memset(tiny, 'x', sizeof tiny);
    CHECK_STATUS(innfer_model_load_file(truncated, &m, tiny, sizeof tiny), INNFER_STATUS_FORMAT);
    CHECK(strlen(tiny) == sizeof tiny - 1);
    tiny[0] = 'x';
    CHECK_STATUS(innfer_model_load_file(truncated, &m, tiny, 1), INNFER_STATUS_FORMAT);
    CHECK(tiny[0] == '\0');
    tiny[0] = 'x';
    CHECK_STATUS(innfer_model_load_file(truncated, &m, tiny, 0), INNFER_STATUS_FORMAT);
    CHECK(tiny[0] == 'x');

    bytes = read_all(good, &len);
    CHECK_STATUS(innfer_model_load_bytes(NULL, 10, &m, err, sizeof err),
                 INNFER_STATUS_NULL_ARGUMENT);
    CHECK(m == NULL && contains(err, "data"));
    CHECK_STATUS(innfer_model_load_bytes(NULL, 0, &m, err, sizeof err), INNFER_STATUS_FORMAT);
    CHECK_STATUS(innfer_model_load_bytes(bytes, len, NULL, err, sizeof err),
                 INNFER_STATUS_NULL_ARGUMENT);
    /* Every truncation fails cleanly (header, metadata and tensor data cut). */
    for (cut = 0; cut < len; cut += (cut < 4096 ? 1 : 97)) {
        innfer_status st = innfer_model_load_bytes(bytes, cut, &m, err, sizeof err);
        CHECK(st != INNFER_STATUS_OK && st != INNFER_STATUS_INTERNAL);
        CHECK(m == NULL && err[0] != '\0');
    }
    /* A corrupt header length and a corrupt JSON header. */
    bytes[7] = 0x7f;
    CHECK_STATUS(innfer_model_load_bytes(bytes, len, &m, err, sizeof err), INNFER_STATUS_FORMAT);
    bytes[7] = 0;
    bytes[8] = '[';
    CHECK_STATUS(innfer_model_load_bytes(bytes, len, &m, err, sizeof err), INNFER_STATUS_FORMAT);
    free(bytes);

    CHECK_OK(innfer_model_load_file(good, &m, err, sizeof err));
    CHECK(m != NULL && err[0] == '\0');
    innfer_model_free(m);
}

/* innfer_model_standardization: every status but _INTERNAL; nothing written on failure. */
static void standardization(const innfer_model *m) {
    float mean[64], sd[64];
    int32_t on = 7;
    size_t xd, yd;
    CHECK_OK(innfer_model_dims(m, NULL, NULL, &xd, &yd, NULL, NULL));
    CHECK(xd > 1 && xd <= 64 && yd > 1 && yd <= 64);
    CHECK_STATUS(innfer_model_standardization(NULL, INNFER_VARIABLE_X, &on, mean, sd, xd),
                 INNFER_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(innfer_model_standardization(m, 2, &on, mean, sd, xd),
                 INNFER_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(innfer_model_standardization(m, -1, &on, NULL, NULL, 0),
                 INNFER_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(innfer_model_standardization(m, INNFER_VARIABLE_X, &on, mean, sd, xd + 1),
                 INNFER_STATUS_BUFFER_SIZE);
    CHECK_STATUS(innfer_model_standardization(m, INNFER_VARIABLE_Y, &on, NULL, sd, yd - 1),
                 INNFER_STATUS_BUFFER_SIZE);
    CHECK_STATUS(innfer_model_standardization(m, INNFER_VARIABLE_X, &on, mean, mean + 1, xd),
                 INNFER_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(innfer_model_standardization(m, INNFER_VARIABLE_X, &on,
                                              (float *)((char *)mean + 2), sd, xd),
                 INNFER_STATUS_INVALID_ARGUMENT);
    CHECK(on == 7);
    /* Only whether: no buffers, any len. */
    CHECK_OK(innfer_model_standardization(m, INNFER_VARIABLE_Y, &on, NULL, NULL, 12345));
    CHECK(on == 0 || on == 1);
    CHECK_OK(innfer_model_standardization(m, INNFER_VARIABLE_X, NULL, mean, NULL, xd));
}

static void sessions(innfer_model *m) {
    innfer_session *s = (innfer_session *)&s;
    size_t bytes, huge;
    unsigned char *raw;
    void *memory;

    CHECK_STATUS(innfer_model_dims(NULL, NULL, NULL, NULL, NULL, NULL, NULL),
                 INNFER_STATUS_NULL_ARGUMENT);
    CHECK_OK(innfer_model_dims(m, NULL, NULL, NULL, NULL, NULL, NULL));
    CHECK(innfer_model_block_count(NULL) == 0);
    CHECK(innfer_model_block_count(m) > 0);
    CHECK(innfer_model_parameter_count(NULL) == 0);
    CHECK(innfer_model_parameter_count(m) > 0);
    standardization(m);

    CHECK_STATUS(innfer_session_size(NULL, MB, &bytes), INNFER_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(innfer_session_size(m, MB, NULL), INNFER_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(innfer_session_size(m, 0, &bytes), INNFER_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(innfer_session_size(m, SIZE_MAX, &huge), INNFER_STATUS_INVALID_ARGUMENT);
    CHECK_OK(innfer_session_size(m, MB, &bytes));

    CHECK_STATUS(innfer_session_create(NULL, MB, &s), INNFER_STATUS_NULL_ARGUMENT);
    CHECK(s == NULL);
    CHECK_STATUS(innfer_session_create(m, MB, NULL), INNFER_STATUS_NULL_ARGUMENT);
    s = (innfer_session *)&s;
    CHECK_STATUS(innfer_session_create(m, 0, &s), INNFER_STATUS_INVALID_ARGUMENT);
    CHECK(s == NULL);
    CHECK_STATUS(innfer_session_create(m, SIZE_MAX / 2, &s), INNFER_STATUS_INVALID_ARGUMENT);
    CHECK(s == NULL);
    /* Addressable (some 2^56 bytes) but more than any allocator gives: refused, no abort. */
    s = (innfer_session *)&s;
    CHECK_STATUS(innfer_session_create(m, (size_t)1 << 50, &s), INNFER_STATUS_OUT_OF_MEMORY);
    CHECK(s == NULL);

    /* aligned_alloc's size is a multiple of the alignment (C11 7.22.3.1). */
    raw = (unsigned char *)aligned_alloc(INNFER_ARENA_ALIGN,
                                         (bytes + 63) / 64 * 64 + 2 * INNFER_ARENA_ALIGN);
    memory = raw;
    CHECK_STATUS(innfer_session_init_static(m, MB, NULL, bytes, &s), INNFER_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(innfer_session_init_static(NULL, MB, memory, bytes, &s),
                 INNFER_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(innfer_session_init_static(m, MB, memory, bytes, NULL),
                 INNFER_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(innfer_session_init_static(m, 0, memory, bytes, &s),
                 INNFER_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(innfer_session_init_static(m, MB, raw + 8, bytes, &s),
                 INNFER_STATUS_ARENA_MISALIGNED);
    CHECK(s == NULL);
    CHECK_STATUS(innfer_session_init_static(m, MB, raw + 1, bytes, &s),
                 INNFER_STATUS_ARENA_MISALIGNED);
    CHECK_STATUS(innfer_session_init_static(m, MB, memory, bytes - 1, &s),
                 INNFER_STATUS_ARENA_TOO_SMALL);
    CHECK_STATUS(innfer_session_init_static(m, MB, memory, 0, &s), INNFER_STATUS_ARENA_TOO_SMALL);
    CHECK_STATUS(innfer_session_init_static(m, MB + 1, memory, bytes, &s),
                 INNFER_STATUS_ARENA_TOO_SMALL);
    CHECK(s == NULL);
    /* Larger memory than needed is fine. */
    CHECK_OK(innfer_session_init_static(m, MB, memory, bytes + INNFER_ARENA_ALIGN, &s));
    CHECK((void *)s == memory);
    CHECK(innfer_session_max_batch(s) == MB);
    innfer_session_free(s);
    /* A freed static session is detected while its memory is untouched. */
    CHECK(innfer_session_max_batch(s) == 0);
    CHECK(innfer_session_threads(s) == 0);
    CHECK(innfer_session_model(s) == NULL);
    CHECK_STATUS(innfer_session_reseed(s, 1, 2), INNFER_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(innfer_sample(s, NULL, 0, NULL), INNFER_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(innfer_session_summarize(s, NULL, 0, 1, NULL, 0, NULL, NULL, NULL, NULL),
                 INNFER_STATUS_INVALID_ARGUMENT);
    innfer_session_free(s); /* a second free of a static session is a no-op */
    free(raw);

    CHECK_STATUS(innfer_session_reseed(NULL, 1, 2), INNFER_STATUS_NULL_ARGUMENT);
    CHECK(innfer_session_max_batch(NULL) == 0);
    CHECK(innfer_session_threads(NULL) == 0);
    CHECK(innfer_session_model(NULL) == NULL);
    CHECK(innfer_session_last_error(NULL) != NULL);
    innfer_session_free(NULL);
    innfer_model_free(NULL);
}

/* innfer_session_summarize: every status but _INTERNAL, and the argument named in the
 * message. A session of a conditional model with max_batch MB, x_dim and y_dim at most 8. */
static void summarize(innfer_session *s) {
    float y[16], qs[3] = {0.1f, 0.5f, 0.9f}, mean[2 * 8], sd[2 * 8], qv[2 * 3 * 8];
    float bad[3] = {-0.5f, 1.5f, NAN};
    float *odd = (float *)((char *)sd + 2);
    size_t i, invalid = 7;
    uint64_t row;
    for (i = 0; i < 16; i++) y[i] = obs_value(0, i);
    /* n within and beyond max_batch; no quantiles (NULL); no observations (NULL buffers). */
    CHECK_OK(innfer_session_summarize(s, y, 2, MB, qs, 3, mean, sd, qv, &invalid));
    CHECK(invalid == 0);
    CHECK_OK(innfer_session_summarize(s, y, 2, 3 * MB + 1, qs, 3, mean, sd, qv, NULL));
    CHECK_OK(innfer_session_summarize(s, y, 2, 5, NULL, 0, mean, sd, NULL, NULL));
    CHECK_OK(innfer_session_summarize(s, NULL, 0, 5, qs, 3, NULL, NULL, NULL, NULL));

    invalid = 7;
    CHECK_STATUS(innfer_session_summarize(NULL, y, 2, 5, qs, 3, mean, sd, qv, &invalid),
                 INNFER_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(innfer_session_summarize(s, NULL, 2, 5, qs, 3, mean, sd, qv, &invalid),
                 INNFER_STATUS_NULL_ARGUMENT);
    CHECK(contains(innfer_session_last_error(s), "innfer_session_summarize") &&
          contains(innfer_session_last_error(s), "`y`"));
    CHECK_STATUS(innfer_session_summarize(s, y, 2, 5, NULL, 3, mean, sd, qv, &invalid),
                 INNFER_STATUS_NULL_ARGUMENT);
    CHECK(contains(innfer_session_last_error(s), "`quantiles`"));
    CHECK_STATUS(innfer_session_summarize(s, y, 2, 5, qs, 3, NULL, sd, qv, &invalid),
                 INNFER_STATUS_NULL_ARGUMENT);
    CHECK(contains(innfer_session_last_error(s), "`mean`"));
    CHECK_STATUS(innfer_session_summarize(s, y, 2, 5, qs, 3, mean, NULL, qv, &invalid),
                 INNFER_STATUS_NULL_ARGUMENT);
    CHECK(contains(innfer_session_last_error(s), "`std`"));
    CHECK_STATUS(innfer_session_summarize(s, y, 2, 5, qs, 3, mean, sd, NULL, &invalid),
                 INNFER_STATUS_NULL_ARGUMENT);
    CHECK(contains(innfer_session_last_error(s), "`quantile_values`"));
    CHECK_STATUS(innfer_session_summarize(s, y, 2, 0, qs, 3, mean, sd, qv, &invalid),
                 INNFER_STATUS_INVALID_ARGUMENT);
    CHECK(contains(innfer_session_last_error(s), "n: "));
    for (i = 0; i < 3; i++) {
        CHECK_STATUS(innfer_session_summarize(s, y, 2, 5, &bad[i], 1, mean, sd, qv, &invalid),
                     INNFER_STATUS_INVALID_ARGUMENT);
        CHECK(contains(innfer_session_last_error(s), "quantiles: "));
    }
    CHECK_STATUS(innfer_session_summarize(s, y, 2, 5, qs, 3, mean, mean, qv, &invalid),
                 INNFER_STATUS_INVALID_ARGUMENT);
    CHECK(contains(innfer_session_last_error(s), "overlaps"));
    CHECK_STATUS(innfer_session_summarize(s, qv + 4, 2, 5, qs, 3, mean, sd, qv, &invalid),
                 INNFER_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(innfer_session_summarize(s, y, 2, 5, qs, 3, mean, odd, qv, &invalid),
                 INNFER_STATUS_INVALID_ARGUMENT);
    CHECK(contains(innfer_session_last_error(s), "aligned"));
    CHECK_STATUS(innfer_session_summarize(s, y, SIZE_MAX, 5, qs, 3, mean, sd, qv, &invalid),
                 INNFER_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(innfer_session_summarize(s, y, 2, 5, qs, SIZE_MAX, mean, sd, qv, &invalid),
                 INNFER_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(innfer_session_summarize(s, y, 2, SIZE_MAX, qs, 3, mean, sd, qv, &invalid),
                 INNFER_STATUS_INVALID_ARGUMENT);
    CHECK(contains(innfer_session_last_error(s), "too many samples"));
    /* The last rows of the stream: refused, nothing drawn. */
    CHECK_OK(innfer_session_seek(s, UINT64_MAX - 9));
    CHECK_STATUS(innfer_session_summarize(s, y, 2, 5, qs, 3, mean, sd, qv, &invalid),
                 INNFER_STATUS_INVALID_ARGUMENT);
    CHECK(contains(innfer_session_last_error(s), "next-row counter"));
    CHECK_OK(innfer_session_rng_position(s, NULL, NULL, &row));
    CHECK(row == UINT64_MAX - 9);
    /* A failed call leaves the count alone. */
    CHECK(invalid == 7);
}

static void calls(innfer_model *m) {
    innfer_session *s;
    size_t dim, cd, xd, yd;
    int32_t layout;
    float y[64], x[64 * 64], in[64 * 64], cond[64 * 64], out[64 * 64], ld[64];
    float *odd = (float *)((char *)x + 2);
    size_t i;

    CHECK_OK(innfer_model_dims(m, &dim, &cd, &xd, &yd, NULL, &layout));
    CHECK(layout == INNFER_LAYOUT_CINN && cd > 0 && dim <= 64);
    for (i = 0; i < 64; i++) y[i] = obs_value(0, i);
    for (i = 0; i < 64 * 64; i++) {
        in[i] = x_value(i);
        cond[i] = cond_value(i);
    }
    CHECK_OK(innfer_session_create(m, MB, &s));
    CHECK(strcmp(innfer_session_last_error(s), "") == 0);

    /* sample */
    CHECK_STATUS(innfer_sample(NULL, y, 2, x), INNFER_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(innfer_sample(s, NULL, 2, x), INNFER_STATUS_NULL_ARGUMENT);
    CHECK(contains(innfer_session_last_error(s), "innfer_sample") &&
          contains(innfer_session_last_error(s), "`y`"));
    CHECK_STATUS(innfer_sample(s, y, 2, NULL), INNFER_STATUS_NULL_ARGUMENT);
    CHECK(contains(innfer_session_last_error(s), "`x`"));
    CHECK_OK(innfer_sample(s, y, 0, NULL));
    CHECK_OK(innfer_sample(s, y, 9, x)); /* more than max_batch: chunked */
    CHECK_STATUS(innfer_sample(s, y, SIZE_MAX, x), INNFER_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(innfer_sample(s, x, 2, x), INNFER_STATUS_INVALID_ARGUMENT); /* overlap */
    CHECK(contains(innfer_session_last_error(s), "overlaps"));
    CHECK_STATUS(innfer_sample(s, y, 2, odd), INNFER_STATUS_INVALID_ARGUMENT); /* misaligned */
    CHECK_STATUS(innfer_sample_batch(s, NULL, 2, 2, x), INNFER_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(innfer_sample_batch(s, y, SIZE_MAX, 2, x), INNFER_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(innfer_sample_batch(s, y, 2, SIZE_MAX, x), INNFER_STATUS_INVALID_ARGUMENT);
    CHECK_OK(innfer_sample_batch(s, y, 2, 3, x));
    CHECK_OK(innfer_sample_batch(s, NULL, 0, 3, NULL));
    /* strided */
    CHECK_STATUS(innfer_sample_strided(s, y, -1, 1, 2, 2, x, (ptrdiff_t)xd, 1),
                 INNFER_STATUS_INVALID_ARGUMENT);
    CHECK(contains(innfer_session_last_error(s), ">= 0"));
    CHECK_STATUS(innfer_sample_strided(s, y, 0, -1, 2, 2, x, (ptrdiff_t)xd, 1),
                 INNFER_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(innfer_sample_strided(s, y, 0, 1, 2, 2, x, -(ptrdiff_t)xd, 1),
                 INNFER_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(innfer_sample_strided(s, y, 0, 1, 2, 2, x, (ptrdiff_t)xd, -1),
                 INNFER_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(innfer_sample_strided(s, y, 0, 1, 2, 2, x, 0, 1), /* zero output stride */
                 INNFER_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(innfer_sample_strided(s, y, 0, 1, 2, 2, x, PTRDIFF_MAX, 1),
                 INNFER_STATUS_INVALID_ARGUMENT); /* extent overflows */
    CHECK_STATUS(innfer_sample_strided(NULL, y, 0, 1, 2, 2, x, (ptrdiff_t)xd, 1),
                 INNFER_STATUS_NULL_ARGUMENT);
    CHECK_OK(innfer_sample_strided(s, y, 0, 1, 2, 2, x, (ptrdiff_t)xd, 1));
    CHECK_OK(innfer_sample_strided(s, y, 0, 1, 2, 2, x, 1, 4));

    summarize(s);

    /* forward / inverse */
    CHECK_STATUS(innfer_forward(NULL, in, cond, 2, out, ld), INNFER_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(innfer_forward(s, NULL, cond, 2, out, ld), INNFER_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(innfer_forward(s, in, NULL, 2, out, ld), INNFER_STATUS_NULL_ARGUMENT);
    CHECK(contains(innfer_session_last_error(s), "cond"));
    CHECK_STATUS(innfer_forward(s, in, cond, 2, NULL, ld), INNFER_STATUS_NULL_ARGUMENT);
    CHECK_OK(innfer_forward(s, in, cond, 2, out, NULL));
    CHECK_OK(innfer_forward(s, NULL, NULL, 0, NULL, NULL));
    CHECK_STATUS(innfer_forward(s, in, cond, MB + 1, out, ld), INNFER_STATUS_BATCH_TOO_LARGE);
    CHECK(contains(innfer_session_last_error(s), "maximum batch"));
    CHECK_STATUS(innfer_inverse(s, in, cond, MB + 1, out, ld), INNFER_STATUS_BATCH_TOO_LARGE);
    /* Any row count above max_batch is a batch too large, SIZE_MAX too (not an overflow). */
    CHECK_STATUS(innfer_forward(s, in, cond, SIZE_MAX, out, ld), INNFER_STATUS_BATCH_TOO_LARGE);
    CHECK_STATUS(innfer_inverse(s, in, cond, SIZE_MAX, out, ld), INNFER_STATUS_BATCH_TOO_LARGE);
    CHECK_STATUS(innfer_forward_strided(s, in, (ptrdiff_t)dim, 1, cond, (ptrdiff_t)cd, 1,
                                        SIZE_MAX, out, (ptrdiff_t)dim, 1, ld),
                 INNFER_STATUS_BATCH_TOO_LARGE);
    CHECK(contains(innfer_session_last_error(s), "maximum batch"));
    CHECK_STATUS(innfer_forward(s, in, cond, 2, in, ld), INNFER_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(innfer_forward(s, in, cond, 2, out, out + 1), INNFER_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(innfer_forward(s, in, cond, 2, out, cond), INNFER_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(innfer_inverse(s, in, cond, 2, cond, NULL), INNFER_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(innfer_forward(s, in, cond, 2, odd, NULL), INNFER_STATUS_INVALID_ARGUMENT);
    CHECK_OK(innfer_forward(s, in, in, 2, out, ld)); /* inputs may overlap each other */
    CHECK_STATUS(innfer_forward_strided(s, in, -1, 1, cond, (ptrdiff_t)cd, 1, 2, out,
                                        (ptrdiff_t)dim, 1, ld),
                 INNFER_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(innfer_forward_strided(s, in, (ptrdiff_t)dim, 1, cond, 1, -1, 2, out,
                                        (ptrdiff_t)dim, 1, ld),
                 INNFER_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(innfer_inverse_strided(s, in, (ptrdiff_t)dim, 1, cond, (ptrdiff_t)cd, 1, 2, out,
                                        0, 0, ld),
                 INNFER_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(innfer_inverse_strided(s, in, (ptrdiff_t)dim, 1, cond, (ptrdiff_t)cd, 1, 2, out,
                                        (ptrdiff_t)dim, PTRDIFF_MIN, ld),
                 INNFER_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(innfer_inverse_strided(s, in, (ptrdiff_t)dim, 1, cond, (ptrdiff_t)cd, 1, MB + 1,
                                        out, (ptrdiff_t)dim, 1, ld),
                 INNFER_STATUS_BATCH_TOO_LARGE);
    /* broadcasting one condition row (c_rs = 0) is allowed */
    CHECK_OK(innfer_forward_strided(s, in, (ptrdiff_t)dim, 1, cond, 0, 1, 2, out, (ptrdiff_t)dim,
                                    1, ld));
    /* Output strides that make elements share memory: rows interleaved (rs = cs = 1), or a
     * zero stride between rows. */
    CHECK_STATUS(innfer_forward_strided(s, in, (ptrdiff_t)dim, 1, cond, (ptrdiff_t)cd, 1, 2, out,
                                        1, 1, ld),
                 INNFER_STATUS_INVALID_ARGUMENT);
    CHECK(contains(innfer_session_last_error(s), "share memory"));
    CHECK_STATUS(innfer_sample_strided(s, y, 0, 1, 2, 2, x, 1, 1), INNFER_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(innfer_sample_strided(s, y, 0, 1, 2, 2, x, 2, 1), INNFER_STATUS_INVALID_ARGUMENT);
    /* Column after column (cs = rows * rs) is fine. */
    CHECK_OK(innfer_forward_strided(s, in, (ptrdiff_t)dim, 1, cond, (ptrdiff_t)cd, 1, 2, out, 1,
                                    2, ld));
    /* The last error describes the last call: a success clears it, the read-only queries
     * leave it. */
    CHECK_STATUS(innfer_forward(s, in, cond, MB + 1, out, ld), INNFER_STATUS_BATCH_TOO_LARGE);
    CHECK(innfer_session_max_batch(s) == MB && innfer_session_threads(s) == 1);
    CHECK(contains(innfer_session_last_error(s), "innfer_forward: batch of 5 rows exceeds"));
    CHECK_OK(innfer_session_reseed(s, 1, 1));
    CHECK(strcmp(innfer_session_last_error(s), "") == 0);
    /* Thread counts: 0 and more than 1024 refused (never spawned), 2 accepted. */
    CHECK_STATUS(innfer_session_set_threads(s, 0), INNFER_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(innfer_session_set_threads(s, SIZE_MAX), INNFER_STATUS_INVALID_ARGUMENT);
    CHECK(contains(innfer_session_last_error(s), "1024"));
    CHECK_STATUS(innfer_session_set_threads(NULL, 2), INNFER_STATUS_NULL_ARGUMENT);
    CHECK_OK(innfer_session_set_threads(s, 2));
    CHECK(innfer_session_threads(s) == 2);
    innfer_session_free(s);
}

static void layoutless(innfer_model *m) {
    innfer_session *s;
    size_t dim, cd;
    int32_t layout;
    float y[8] = {0}, x[256], in[64], out[64];
    size_t i;
    CHECK_OK(innfer_model_dims(m, &dim, &cd, NULL, NULL, NULL, &layout));
    CHECK(layout == INNFER_LAYOUT_NONE && cd == 0 && dim * 2 <= 64);
    for (i = 0; i < 64; i++) in[i] = x_value(i);
    CHECK_OK(innfer_session_create(m, MB, &s));
    CHECK_STATUS(innfer_sample(s, y, 4, x), INNFER_STATUS_NO_LAYOUT);
    CHECK(contains(innfer_session_last_error(s), "layout"));
    CHECK_STATUS(innfer_sample(s, NULL, 4, NULL), INNFER_STATUS_NO_LAYOUT);
    CHECK_STATUS(innfer_sample_batch(s, y, 2, 4, x), INNFER_STATUS_NO_LAYOUT);
    CHECK_STATUS(innfer_sample_strided(s, y, 0, 1, 2, 4, x, 1, 8), INNFER_STATUS_NO_LAYOUT);
    CHECK_STATUS(innfer_session_summarize(s, y, 2, 4, NULL, 0, x, x + 64, NULL, NULL),
                 INNFER_STATUS_NO_LAYOUT);
    CHECK(contains(innfer_session_last_error(s), "layout"));
    /* A condition for a model that takes none. */
    CHECK_STATUS(innfer_forward(s, in, y, 2, out, NULL), INNFER_STATUS_INVALID_ARGUMENT);
    CHECK(contains(innfer_session_last_error(s), "cond"));
    CHECK_OK(innfer_forward(s, in, NULL, 2, out, NULL));
    CHECK_OK(innfer_inverse(s, out, NULL, 2, x, NULL));
    innfer_session_free(s);
}

int main(int argc, char **argv) {
    innfer_model *cinn, *plain;
    CHECK(argc == 5);
    versions();
    loading(argv[1], argv[3], argv[4]);
    cinn = load(argv[1]);
    plain = load(argv[2]);
    sessions(cinn);
    calls(cinn);
    layoutless(plain);
    innfer_model_free(plain);
    innfer_model_free(cinn);
    printf("misuse: ok\n");
    return 0;
}
