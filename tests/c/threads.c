/* One model shared by 4 threads, each with its own heap session (seed 7, stream t) and its
 * own observation; the results must equal 4 serial runs (static sessions) exactly.
 * usage: threads MODEL OUT N   (OUT receives the 4 threads' samples, [4][N][x_dim]) */
#include <pthread.h>
#include <stdint.h>

#include "common.h"

#define THREADS 4
#define SEED 7

struct job {
    const innfer_model *m;
    size_t t, n, xd, yd;
    float *x;
    innfer_status status;
};

static void observation(float *y, size_t t, size_t yd) {
    size_t j;
    for (j = 0; j < yd; j++) y[j] = obs_value(t % 2, j) + 0.5f * (float)t;
}

static void *run(void *arg) {
    struct job *job = (struct job *)arg;
    innfer_session *s = NULL;
    float y[64];
    observation(y, job->t, job->yd);
    job->status = innfer_session_create(job->m, 3, &s);
    if (job->status == INNFER_STATUS_OK) job->status = innfer_session_reseed(s, SEED, job->t);
    if (job->status == INNFER_STATUS_OK) job->status = innfer_sample(s, y, job->n, job->x);
    innfer_session_free(s);
    return NULL;
}

int main(int argc, char **argv) {
    innfer_model *m;
    size_t xd, yd, n, t, bytes;
    pthread_t th[THREADS];
    struct job jobs[THREADS];
    float *serial, y[64];
    void *memory;
    innfer_session *s;
    FILE *out;

    CHECK(argc == 4);
    m = load(argv[1]);
    n = (size_t)strtoull(argv[3], NULL, 10);
    CHECK_OK(innfer_model_dims(m, NULL, NULL, &xd, &yd, NULL, NULL));
    CHECK(yd <= 64);
    for (t = 0; t < THREADS; t++) {
        jobs[t].m = m;
        jobs[t].t = t;
        jobs[t].n = n;
        jobs[t].xd = xd;
        jobs[t].yd = yd;
        jobs[t].x = (float *)malloc(sizeof(float) * n * xd);
        jobs[t].status = -1;
        CHECK(pthread_create(&th[t], NULL, run, &jobs[t]) == 0);
    }
    for (t = 0; t < THREADS; t++) CHECK(pthread_join(th[t], NULL) == 0);

    /* Serial runs, one static session reseeded per stream, another max_batch. */
    CHECK_OK(innfer_session_size(m, 5, &bytes));
    memory = aligned_alloc(INNFER_ARENA_ALIGN, (bytes + 63) / 64 * 64);
    CHECK_OK(innfer_session_init_static(m, 5, memory, bytes, &s));
    serial = (float *)malloc(sizeof(float) * n * xd);
    out = fopen(argv[2], "wb");
    CHECK(out != NULL);
    for (t = 0; t < THREADS; t++) {
        CHECK_OK(jobs[t].status);
        observation(y, t, yd);
        CHECK_OK(innfer_session_reseed(s, SEED, t));
        CHECK_OK(innfer_sample(s, y, n, serial));
        CHECK(memcmp(serial, jobs[t].x, sizeof(float) * n * xd) == 0);
        CHECK(fwrite(jobs[t].x, sizeof(float), n * xd, out) == n * xd);
        free(jobs[t].x);
    }
    CHECK(fclose(out) == 0);
    free(serial);
    innfer_session_free(s);
    free(memory);
    innfer_model_free(m);
    return 0;
}
