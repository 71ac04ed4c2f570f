/* Compiles the header alone, as C99 and as C++17, with every warning an error, and assigns
 * every function to a pointer of the exact agreed type so any signature change fails here.
 * Not linked. */
#include "innfer.h"

int innfer_header_check(void);

int innfer_header_check(void) {
    uint32_t (*abi_version)(void) = innfer_abi_version;
    const char *(*version_string)(void) = innfer_version_string;
    const char *(*status_string)(innfer_status) = innfer_status_string;
#ifdef INNFER_HAS_STD
    innfer_status (*load_file)(const char *, innfer_model **, char *, size_t) =
        innfer_model_load_file;
#endif
    innfer_status (*load_bytes)(const uint8_t *, size_t, innfer_model **, char *, size_t) =
        innfer_model_load_bytes;
    void (*model_free)(innfer_model *) = innfer_model_free;
    innfer_status (*model_dims)(const innfer_model *, size_t *, size_t *, size_t *, size_t *,
                                size_t *, int32_t *) = innfer_model_dims;
    size_t (*block_count)(const innfer_model *) = innfer_model_block_count;
    innfer_status (*session_size)(const innfer_model *, size_t, size_t *) = innfer_session_size;
    innfer_status (*init_static)(const innfer_model *, size_t, void *, size_t,
                                 innfer_session **) = innfer_session_init_static;
    innfer_status (*create)(const innfer_model *, size_t, innfer_session **) =
        innfer_session_create;
    void (*session_free)(innfer_session *) = innfer_session_free;
    innfer_status (*reseed)(innfer_session *, uint64_t, uint64_t) = innfer_session_reseed;
    innfer_status (*seek)(innfer_session *, uint64_t) = innfer_session_seek;
    innfer_status (*rng_position)(const innfer_session *, uint64_t *, uint64_t *, uint64_t *) =
        innfer_session_rng_position;
#ifdef INNFER_HAS_STD
    innfer_status (*set_threads)(innfer_session *, size_t) = innfer_session_set_threads;
#endif
    size_t (*max_batch)(const innfer_session *) = innfer_session_max_batch;
    const innfer_model *(*session_model)(const innfer_session *) = innfer_session_model;
    const char *(*last_error)(const innfer_session *) = innfer_session_last_error;
    innfer_status (*sample)(innfer_session *, const float *, size_t, float *) = innfer_sample;
    innfer_status (*sample_batch)(innfer_session *, const float *, size_t, size_t, float *) =
        innfer_sample_batch;
    innfer_status (*sample_strided)(innfer_session *, const float *, ptrdiff_t, ptrdiff_t,
                                    size_t, size_t, float *, ptrdiff_t, ptrdiff_t) =
        innfer_sample_strided;
    innfer_status (*summarize)(innfer_session *, const float *, size_t, size_t, const float *,
                               size_t, float *, float *, float *, size_t *) =
        innfer_session_summarize;
    innfer_status (*forward)(innfer_session *, const float *, const float *, size_t, float *,
                             float *) = innfer_forward;
    innfer_status (*inverse)(innfer_session *, const float *, const float *, size_t, float *,
                             float *) = innfer_inverse;
    innfer_status (*forward_strided)(innfer_session *, const float *, ptrdiff_t, ptrdiff_t,
                                     const float *, ptrdiff_t, ptrdiff_t, size_t, float *,
                                     ptrdiff_t, ptrdiff_t, float *) = innfer_forward_strided;
    innfer_status (*inverse_strided)(innfer_session *, const float *, ptrdiff_t, ptrdiff_t,
                                     const float *, ptrdiff_t, ptrdiff_t, size_t, float *,
                                     ptrdiff_t, ptrdiff_t, float *) = innfer_inverse_strided;
    innfer_status st = INNFER_STATUS_OK;
    int n = (int)sizeof(innfer_status) + (int)INNFER_ABI_VERSION + (int)INNFER_ARENA_ALIGN +
            INNFER_VERSION_MAJOR + INNFER_VERSION_MINOR + INNFER_VERSION_PATCH +
            INNFER_LAYOUT_NONE + INNFER_LAYOUT_INN + INNFER_LAYOUT_CINN;
    n += st == INNFER_STATUS_INTERNAL;
    (void)abi_version; (void)version_string; (void)status_string;
#ifdef INNFER_HAS_STD
    (void)load_file; (void)set_threads;
#endif
    (void)seek; (void)rng_position;
    (void)load_bytes; (void)model_free; (void)model_dims; (void)block_count;
    (void)session_size; (void)init_static; (void)create; (void)session_free; (void)reseed;
    (void)max_batch; (void)session_model; (void)last_error; (void)sample; (void)sample_batch; (void)sample_strided;
    (void)summarize;
    (void)forward; (void)inverse; (void)forward_strided; (void)inverse_strided;
    return n;
}
