/* sample_mpi.c: posterior samples for a file of observations, split over MPI ranks, with the
 * same bits as one process (docs/scaling.md).
 *
 *   usage: mpirun -n P sample_mpi MODEL OBS.npy N SEED OUT.npy [THREADS]
 *     MODEL    a model file (.safetensors in the innfer format) with a sampling layout
 *     OBS.npy  the observations, float32 [m, y_dim] (or [y_dim]: one observation)
 *     N        samples per observation
 *     SEED     seed of the random stream (stream 0)
 *     OUT.npy  written: float32 [m*N, x_dim], observation by observation, the same file
 *              `innfer sample MODEL --y OBS.npy -n N --seed SEED --output OUT.npy` writes
 *     THREADS  threads per rank (default 1)
 *
 * The pattern: rank 0 reads the model file and broadcasts its bytes (one read of the file
 * system, not one per rank); every rank loads the model from those bytes; rank 0 reads the
 * observations and scatters contiguous blocks (the first m % P ranks take one more); each
 * rank seeks its session's random stream to the first sample of its block (observation j0
 * owns rows j0*N ... of the stream, see innfer_session_seek() in innfer.h) and writes its
 * samples into the one output file with MPI-IO at their place. So the file does not depend on
 * P or THREADS. Any failure — a missing file on rank 0, bytes that do not load on any rank, a
 * failed call — prints the reason and calls MPI_Abort, which ends every rank: never a hang.
 *
 * INNFER_MPI_CORRUPT_RANK=r (for examples/mpi/run.sh) damages the model bytes rank r
 * received, to show what a corrupted broadcast does.
 *
 * Build (from the repository root, after `cargo build --release`):
 *   mpicc -std=c99 -O2 -Iinclude examples/mpi/sample_mpi.c target/release/libinnfer.a \
 *         -lpthread -ldl -lm -o sample_mpi
 */
#include <errno.h>
#include <mpi.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "innfer.h"

/* Rows per pass: at least 256 per thread, so each of a session's threads gets a long run. */
#define MAX_BATCH(threads) ((threads) > 16 ? 256 * (size_t)(threads) : 4096)
/* Sample rows per sampling call and per write: bounds a rank's memory whatever its block. */
#define CHUNK_ROWS 65536
/* Bytes per MPI_Bcast call (counts are int). */
#define BCAST_BYTES (1 << 30)

static int rank = 0;

/* Prints the reason and ends the whole job (every rank). */
static void fail(const char *fmt, ...) {
    char reason[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    /* One call, so that the lines of ranks failing together do not interleave. */
    fprintf(stderr, "sample_mpi: rank %d: %s\n", rank, reason);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1); /* not reached */
}

static void check_mpi(int code, const char *what) {
    if (code != MPI_SUCCESS) {
        char text[MPI_MAX_ERROR_STRING];
        int len = 0;
        MPI_Error_string(code, text, &len);
        fail("%s: %s", what, text);
    }
}

/* The whole file, or NULL with errno set. */
static unsigned char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    unsigned char *data = NULL;
    long n;
    if (f == NULL) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        data = malloc(n > 0 ? (size_t)n : 1);
        if (data != NULL && fread(data, 1, (size_t)n, f) != (size_t)n) {
            free(data);
            data = NULL;
            errno = EIO;
        }
        *len = (size_t)n;
    }
    fclose(f);
    return data;
}

/* The float32 [m][cols] (or [cols]) data of a .npy file; *m receives m. */
static float *read_npy_rows(const char *path, size_t cols, size_t *m) {
    size_t len, hlen, dims[2], ndims = 0, want;
    unsigned char *bytes = read_file(path, &len);
    const char *p;
    char *header;
    float *data;
    if (bytes == NULL) fail("cannot read %s: %s", path, strerror(errno));
    if (len < 10 || memcmp(bytes, "\x93NUMPY", 6) != 0 || bytes[6] != 1)
        fail("%s: not a version 1 .npy file", path);
    hlen = bytes[8] | (size_t)bytes[9] << 8;
    if (10 + hlen > len) fail("%s: truncated header", path);
    header = malloc(hlen + 1);
    if (header == NULL) fail("out of memory");
    memcpy(header, bytes + 10, hlen);
    header[hlen] = '\0';
    if (strstr(header, "'descr': '<f4'") == NULL || strstr(header, "'fortran_order': False") == NULL)
        fail("%s: need little-endian float32 ('<f4') in C order", path);
    p = strstr(header, "'shape': (");
    if (p == NULL) fail("%s: no shape in the header", path);
    for (p += 10; *p != ')' && ndims < 2;) {
        char *next;
        dims[ndims++] = (size_t)strtoull(p, &next, 10);
        if (next == p) break;
        for (p = next; *p == ',' || *p == ' ';) p++;
    }
    if (*p != ')' || ndims == 0) fail("%s: need a 1-D or 2-D array", path);
    if (ndims == 1) {
        dims[1] = dims[0];
        dims[0] = 1;
    }
    if (dims[1] != cols) fail("%s: rows of %zu values, the model's y_dim is %zu", path, dims[1], cols);
    want = dims[0] * cols * sizeof(float);
    if (len - 10 - hlen != want) fail("%s: %zu data bytes, the shape needs %zu", path, len - 10 - hlen, want);
    data = malloc(want > 0 ? want : 1);
    if (data == NULL) fail("cannot allocate %zu bytes for %s", want, path);
    memcpy(data, bytes + 10 + hlen, want);
    free(header);
    free(bytes);
    *m = dims[0];
    return data;
}

/* The header numpy (and `innfer sample`) writes for float32 [rows, cols]: v1.0, padded with
 * spaces to a multiple of 64 bytes. */
static size_t npy_header(char *out, size_t rows, size_t cols) {
    int n = snprintf(out + 10, 118, "{'descr': '<f4', 'fortran_order': False, 'shape': (%zu, %zu), }",
                     rows, cols);
    size_t dict = (size_t)n, total = (10 + dict + 1 + 63) / 64 * 64;
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    memset(out + 10 + dict, ' ', total - 10 - dict - 1);
    out[total - 1] = '\n';
    out[8] = (char)((total - 10) & 0xff);
    out[9] = (char)((total - 10) >> 8);
    return total;
}

/* Writes rows [first, first + rows) of the samples (x: rows * x_dim floats) at their place. */
static void write_rows(MPI_File out, size_t header_len, size_t first, size_t rows, size_t x_dim,
                       const float *x) {
    MPI_Offset at = (MPI_Offset)header_len + (MPI_Offset)(first * x_dim * sizeof(float));
    check_mpi(MPI_File_write_at(out, at, x, (int)(rows * x_dim), MPI_FLOAT, MPI_STATUS_IGNORE),
              "writing samples");
}

int main(int argc, char **argv) {
    int ranks, threads = 1, r, endian_probe = 1;
    unsigned long long model_len = 0, m_all = 0;
    unsigned char *model_bytes = NULL;
    innfer_model *model = NULL;
    innfer_session *session = NULL;
    size_t x_dim, y_dim, n, m, j0, j1, j, off;
    uint64_t seed;
    float *y_all = NULL, *y, *x;
    int *counts, *displs;
    char err[512], header[128];
    size_t header_len;
    MPI_Datatype obs_type;
    MPI_File out;
    MPI_Offset total_bytes;
    double start, elapsed, slowest, work_cpu, busiest;
    clock_t cpu_start;
    const char *corrupt;

    MPI_Init(&argc, &argv);
    start = MPI_Wtime();
    cpu_start = clock();
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    if (argc < 6 || argc > 7) {
        if (rank == 0)
            fprintf(stderr, "usage: mpirun -n P %s MODEL OBS.npy N SEED OUT.npy [THREADS]\n",
                    argv[0]);
        MPI_Finalize();
        return 2;
    }
    n = (size_t)strtoull(argv[3], NULL, 10);
    seed = strtoull(argv[4], NULL, 10);
    if (argc == 7) threads = atoi(argv[6]);
    if (n == 0 || threads < 1) fail("N and THREADS must be positive");
    if (*(unsigned char *)&endian_probe != 1) fail(".npy float32 '<f4' needs a little-endian CPU");

    /* The model: one read on rank 0, its bytes broadcast. */
    if (rank == 0) {
        size_t len = 0;
        model_bytes = read_file(argv[1], &len);
        if (model_bytes == NULL) fail("cannot read %s: %s", argv[1], strerror(errno));
        model_len = len;
    }
    MPI_Bcast(&model_len, 1, MPI_UNSIGNED_LONG_LONG, 0, MPI_COMM_WORLD);
    if (rank != 0 && (model_bytes = malloc(model_len > 0 ? model_len : 1)) == NULL)
        fail("cannot allocate %llu bytes for the model", model_len);
    for (off = 0; off < model_len; off += BCAST_BYTES) {
        size_t part = model_len - off < BCAST_BYTES ? model_len - off : BCAST_BYTES;
        MPI_Bcast(model_bytes + off, (int)part, MPI_BYTE, 0, MPI_COMM_WORLD);
    }
    corrupt = getenv("INNFER_MPI_CORRUPT_RANK");
    if (corrupt != NULL && atoi(corrupt) == rank && model_len > 16) memset(model_bytes + 8, 'X', 8);
    if (innfer_model_load_bytes(model_bytes, model_len, &model, err, sizeof err) != INNFER_STATUS_OK)
        fail("cannot load the model broadcast from %s: %s", argv[1], err);
    free(model_bytes); /* the model keeps its own copy */
    innfer_model_dims(model, NULL, NULL, &x_dim, &y_dim, NULL, NULL);
    if (x_dim == 0) fail("%s has no sampling layout", argv[1]);

    /* The observations: read on rank 0, contiguous blocks scattered. */
    if (rank == 0) {
        size_t rows;
        y_all = read_npy_rows(argv[2], y_dim, &rows);
        m_all = rows;
    }
    MPI_Bcast(&m_all, 1, MPI_UNSIGNED_LONG_LONG, 0, MPI_COMM_WORLD);
    if (m_all > (unsigned long long)INT32_MAX) fail("more than 2^31 - 1 observations");
    counts = malloc(sizeof(int) * (size_t)ranks);
    displs = malloc(sizeof(int) * (size_t)ranks);
    for (r = 0; r < ranks; r++) {
        size_t q = m_all / (size_t)ranks, extra = m_all % (size_t)ranks, rr = (size_t)r;
        displs[r] = (int)(rr * q + (rr < extra ? rr : extra));
        counts[r] = (int)(q + (rr < extra ? 1 : 0));
    }
    j0 = (size_t)displs[rank];
    m = (size_t)counts[rank];
    j1 = j0 + m;
    y = malloc(sizeof(float) * (m > 0 ? m : 1) * y_dim);
    MPI_Type_contiguous((int)y_dim, MPI_FLOAT, &obs_type);
    MPI_Type_commit(&obs_type);
    MPI_Scatterv(y_all, counts, displs, obs_type, y, (int)m, obs_type, 0, MPI_COMM_WORLD);
    MPI_Type_free(&obs_type);
    free(y_all);

    /* This rank's session: the run's stream, at the first sample of observation j0. */
    if (innfer_session_create(model, MAX_BATCH(threads), &session) != INNFER_STATUS_OK)
        fail("cannot create a session");
    if (innfer_session_set_threads(session, (size_t)threads) != INNFER_STATUS_OK ||
        innfer_session_reseed(session, seed, 0) != INNFER_STATUS_OK ||
        innfer_session_seek(session, (uint64_t)j0 * n) != INNFER_STATUS_OK)
        fail("%s", innfer_session_last_error(session));

    /* One output file: rank 0 writes the header, every rank its rows at their place. */
    header_len = npy_header(header, (size_t)m_all * n, x_dim);
    total_bytes = (MPI_Offset)header_len + (MPI_Offset)(m_all * n * x_dim * sizeof(float));
    check_mpi(MPI_File_open(MPI_COMM_WORLD, argv[5], MPI_MODE_CREATE | MPI_MODE_WRONLY,
                            MPI_INFO_NULL, &out),
              argv[5]);
    check_mpi(MPI_File_set_size(out, total_bytes), "setting the output's size");
    if (rank == 0)
        check_mpi(MPI_File_write_at(out, 0, header, (int)header_len, MPI_BYTE, MPI_STATUS_IGNORE),
                  "writing the .npy header");
    x = malloc(sizeof(float) * CHUNK_ROWS * x_dim);
    if (x == NULL) fail("out of memory");
    if (n < CHUNK_ROWS) {
        /* Whole observations per call: j .. j+obs-1. */
        size_t per_call = CHUNK_ROWS / n, obs;
        for (j = j0; j < j1; j += obs) {
            obs = j1 - j < per_call ? j1 - j : per_call;
            if (innfer_sample_batch(session, y + (j - j0) * y_dim, obs, n, x) != INNFER_STATUS_OK)
                fail("sampling observation %zu: %s", j, innfer_session_last_error(session));
            write_rows(out, header_len, j * n, obs * n, x_dim, x);
        }
    } else {
        /* One observation in several calls: the stream carries on from call to call. */
        size_t k, rows;
        for (j = j0; j < j1; j++) {
            for (k = 0; k < n; k += rows) {
                rows = n - k < CHUNK_ROWS ? n - k : CHUNK_ROWS;
                if (innfer_sample(session, y + (j - j0) * y_dim, rows, x) != INNFER_STATUS_OK)
                    fail("sampling observation %zu: %s", j, innfer_session_last_error(session));
                write_rows(out, header_len, j * n + k, rows, x_dim, x);
            }
        }
    }
    /* CPU time of this process (all its threads) up to here: its own work, before the
     * collective close, where a rank that finished first waits (MPI may spin there). */
    work_cpu = (double)(clock() - cpu_start) / CLOCKS_PER_SEC;
    check_mpi(MPI_File_close(&out), "closing the output");

    elapsed = MPI_Wtime() - start;
    MPI_Reduce(&elapsed, &slowest, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    MPI_Reduce(&work_cpu, &busiest, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    if (rank == 0)
        printf("sample_mpi: %llu observations x %zu samples -> %s on %d ranks x %d threads: "
               "%.3f s, %.0f samples/s; busiest rank %.3f CPU-s\n",
               m_all, n, argv[5], ranks, threads, slowest, (double)(m_all * n) / slowest,
               busiest);

    free(x);
    free(y);
    free(counts);
    free(displs);
    innfer_session_free(session);
    innfer_model_free(model);
    MPI_Finalize();
    return 0;
}
