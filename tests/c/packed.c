/* A packed image (innfer pack) run from C as a firmware runs it: the model built in place on
 * the image with innfer_model_init_static, a static session, samples; no allocation at all
 * from the image's read to the last sample (the C allocator is interposed and counted). Each
 * refusal gets its status. Writes the samples for the Rust side to compare.
 * usage: packed IMAGE OUT N */
#include <errno.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"

#include "count_alloc.h"

#define MAX_BATCH 4
#define MAX_SAMPLES 64

/* The firmware's memory: the image (as if in flash), the model's and the session's RAM. */
static alignas(64) unsigned char flash[1 << 20];
static alignas(64) unsigned char model_ram[4096];
static alignas(64) unsigned char session_ram[1 << 16];
static float samples[MAX_SAMPLES * 64];

int main(int argc, char **argv) {
    size_t image_len, need, session_bytes, dim, cd, xd, yd, n, i, before;
    unsigned char *file;
    innfer_model *m = NULL;
    innfer_session *s = NULL;
    float y[64];
    FILE *out;

    CHECK(argc == 4);
    n = (size_t)atoi(argv[3]);
    CHECK(n <= MAX_SAMPLES);
    file = read_all(argv[1], &image_len);
    CHECK(image_len <= sizeof flash);
    memcpy(flash, file, image_len);
    free(file);

    before = allocations;
    CHECK_OK(innfer_model_static_size(flash, image_len, &need));
    CHECK(need <= sizeof model_ram);

    /* Refusals, each with its status and *out cleared. */
    m = (innfer_model *)1;
    CHECK_STATUS(innfer_model_init_static(flash, image_len, model_ram, need - 1, &m),
                 INNFER_STATUS_ARENA_TOO_SMALL);
    CHECK(m == NULL);
    CHECK_STATUS(innfer_model_init_static(flash, image_len, model_ram + 8, need, &m),
                 INNFER_STATUS_ARENA_MISALIGNED);
    CHECK_STATUS(innfer_model_init_static(NULL, image_len, model_ram, need, &m),
                 INNFER_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(innfer_model_init_static(flash, image_len, NULL, need, &m),
                 INNFER_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(innfer_model_init_static(flash, image_len, model_ram, need, NULL),
                 INNFER_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(innfer_model_init_static(flash, image_len - 1, model_ram, need, &m),
                 INNFER_STATUS_FORMAT);
    CHECK_STATUS(innfer_model_static_size(flash, image_len - 1, &need), INNFER_STATUS_FORMAT);
    flash[image_len / 2] ^= 0x10;
    CHECK_STATUS(innfer_model_init_static(flash, image_len, model_ram, need, &m),
                 INNFER_STATUS_FORMAT);
    flash[image_len / 2] ^= 0x10;
    flash[0] ^= 0x10;
    CHECK_STATUS(innfer_model_static_size(flash, image_len, &need), INNFER_STATUS_FORMAT);
    flash[0] ^= 0x10;

    /* The firmware's path: model, static session, samples. */
    CHECK_OK(innfer_model_static_size(flash, image_len, &need));
    CHECK_OK(innfer_model_init_static(flash, image_len, model_ram, need, &m));
    CHECK((void *)m == (void *)model_ram);
    CHECK_OK(innfer_model_dims(m, &dim, &cd, &xd, &yd, NULL, NULL));
    CHECK(xd > 0 && xd <= 64 && yd <= 64);
    CHECK_OK(innfer_session_size(m, MAX_BATCH, &session_bytes));
    CHECK(session_bytes <= sizeof session_ram);
    CHECK_OK(innfer_session_init_static(m, MAX_BATCH, session_ram, session_bytes, &s));
    for (i = 0; i < yd; i++) y[i] = obs_value(0, i);
    CHECK_OK(innfer_session_reseed(s, 5, 1));
    CHECK_OK(innfer_sample(s, y, n, samples));
    innfer_session_free(s);
    if (allocations != before) {
        fprintf(stderr, "%zu allocations from the image to the samples\n",
                (size_t)(allocations - before));
        return 1;
    }

    /* A heap session works on a static model too; freeing the model is a no-op. */
    CHECK_OK(innfer_session_create(m, MAX_BATCH, &s));
    innfer_session_free(s);
    innfer_model_free(m);
    CHECK_OK(innfer_model_dims(m, &dim, NULL, NULL, NULL, NULL, NULL));

    out = fopen(argv[2], "wb");
    CHECK(out != NULL);
    CHECK(fwrite(samples, sizeof(float), n * xd, out) == n * xd);
    fclose(out);
    printf("packed: ok\n");
    return 0;
}
