/* Samples, forward and inverse through the C API; writes every result as raw float32 so
 * tests/c_api.rs can compare with the Rust API bit for bit.
 *
 * usage: sample MODEL OUT SEED STREAM N heap|static file|bytes
 * OUT receives, for a model with a sampling layout:
 *   A innfer_sample(y0, N)                                   [N][x_dim]
 *   B innfer_sample_batch([y0; y1], 3)                       [6][x_dim]
 *   C innfer_sample_strided(y0 broadcast (y_rs = 0), 2 obs, 3 samples) into Fortran x(6, x_dim)
 * and for every model (R = 4 rows, max_batch 4):
 *   D innfer_forward(x, cond)   out [R][dim], logdet [R]
 *   E innfer_inverse(D.out, cond) x [R][dim], logdet [R]
 * The strided forward/inverse on transposed copies must give D and E exactly (checked here). */
#include <stdint.h>

#include "common.h"

#define MAX_BATCH 4
#define ROWS 4

static void put(FILE *f, const float *v, size_t n) {
    if (n > 0) CHECK(fwrite(v, sizeof(float), n, f) == n);
}

int main(int argc, char **argv) {
    innfer_model *m = NULL;
    innfer_session *s = NULL;
    void *memory = NULL;
    size_t dim, cd, xd, yd, zd, i, r, c, n;
    int32_t layout;
    uint64_t seed, stream;
    FILE *out;
    float *y, *x, *xin, *cond, *fout, *fld, *iout, *ild, *t_in, *t_out, *t_cond, ld2[ROWS];

    CHECK(argc == 8);
    seed = strtoull(argv[3], NULL, 10);
    stream = strtoull(argv[4], NULL, 10);
    n = (size_t)strtoull(argv[5], NULL, 10);
    if (strcmp(argv[7], "file") == 0) {
        m = load(argv[1]);
    } else {
        size_t len;
        unsigned char *bytes = read_all(argv[1], &len);
        char err[128];
        CHECK_OK(innfer_model_load_bytes(bytes, len, &m, err, sizeof err));
        CHECK(err[0] == '\0');
        free(bytes); /* the model keeps its own copy */
    }
    CHECK_OK(innfer_model_dims(m, &dim, &cd, &xd, &yd, &zd, &layout));
    if (strcmp(argv[6], "heap") == 0) {
        CHECK_OK(innfer_session_create(m, MAX_BATCH, &s));
    } else {
        size_t bytes;
        CHECK_OK(innfer_session_size(m, MAX_BATCH, &bytes));
        memory = aligned_alloc(INNFER_ARENA_ALIGN, (bytes + 63) / 64 * 64);
        CHECK(memory != NULL);
        CHECK_OK(innfer_session_init_static(m, MAX_BATCH, memory, bytes, &s));
        CHECK((void *)s == memory);
    }
    CHECK(innfer_session_max_batch(s) == MAX_BATCH);
    CHECK(innfer_session_model(s) == m);
    CHECK(strcmp(innfer_session_last_error(s), "") == 0);
    CHECK_OK(innfer_session_reseed(s, seed, stream));
    out = fopen(argv[2], "wb");
    CHECK(out != NULL);

    y = (float *)malloc(sizeof(float) * (2 * yd + 1));
    for (i = 0; i < yd; i++) {
        y[i] = obs_value(0, i);
        y[yd + i] = obs_value(1, i);
    }
    if (layout != INNFER_LAYOUT_NONE) {
        size_t total = 6;
        x = (float *)malloc(sizeof(float) * (n > total ? n : total) * xd);
        CHECK_OK(innfer_sample(s, y, n, x));
        put(out, x, n * xd);
        CHECK_OK(innfer_sample_batch(s, y, 2, 3, x));
        put(out, x, total * xd);
        CHECK_OK(innfer_sample_strided(s, y, 0, 1, 2, 3, x, 1, (ptrdiff_t)total));
        put(out, x, total * xd);
        free(x);
    } else {
        CHECK_STATUS(innfer_sample(s, y, n, NULL), INNFER_STATUS_NO_LAYOUT);
        CHECK(strstr(innfer_session_last_error(s), "layout") != NULL);
    }

    xin = (float *)malloc(sizeof(float) * ROWS * dim);
    cond = (float *)malloc(sizeof(float) * (ROWS * cd + 1));
    fout = (float *)malloc(sizeof(float) * ROWS * dim);
    iout = (float *)malloc(sizeof(float) * ROWS * dim);
    fld = (float *)malloc(sizeof(float) * ROWS);
    ild = (float *)malloc(sizeof(float) * ROWS);
    for (i = 0; i < ROWS * dim; i++) xin[i] = x_value(i);
    for (i = 0; i < ROWS * cd; i++) cond[i] = cond_value(i);
    CHECK_OK(innfer_forward(s, xin, cd ? cond : NULL, ROWS, fout, fld));
    put(out, fout, ROWS * dim);
    put(out, fld, ROWS);
    CHECK_OK(innfer_inverse(s, fout, cd ? cond : NULL, ROWS, iout, ild));
    put(out, iout, ROWS * dim);
    put(out, ild, ROWS);

    /* Column-major (Fortran x(ROWS, dim)) copies through the strided calls. */
    t_in = (float *)malloc(sizeof(float) * ROWS * dim);
    t_out = (float *)malloc(sizeof(float) * ROWS * dim);
    t_cond = (float *)malloc(sizeof(float) * (ROWS * cd + 1));
    for (r = 0; r < ROWS; r++) {
        for (c = 0; c < dim; c++) t_in[c * ROWS + r] = xin[r * dim + c];
        for (c = 0; c < cd; c++) t_cond[c * ROWS + r] = cond[r * cd + c];
    }
    CHECK_OK(innfer_forward_strided(s, t_in, 1, ROWS, cd ? t_cond : NULL, 1, ROWS, ROWS, t_out, 1,
                                    ROWS, ld2));
    for (r = 0; r < ROWS; r++) {
        for (c = 0; c < dim; c++) CHECK(memcmp(&t_out[c * ROWS + r], &fout[r * dim + c], 4) == 0);
    }
    CHECK(memcmp(ld2, fld, sizeof ld2) == 0);
    for (r = 0; r < ROWS; r++)
        for (c = 0; c < dim; c++) t_in[c * ROWS + r] = fout[r * dim + c];
    CHECK_OK(innfer_inverse_strided(s, t_in, 1, ROWS, cd ? t_cond : NULL, 1, ROWS, ROWS, t_out, 1,
                                    ROWS, NULL));
    for (r = 0; r < ROWS; r++) {
        for (c = 0; c < dim; c++) CHECK(memcmp(&t_out[c * ROWS + r], &iout[r * dim + c], 4) == 0);
    }

    CHECK(fclose(out) == 0);
    free(y); free(xin); free(cond); free(fout); free(iout); free(fld); free(ild);
    free(t_in); free(t_out); free(t_cond);
    innfer_session_free(s);
    free(memory);
    innfer_model_free(m);
    return 0;
}
