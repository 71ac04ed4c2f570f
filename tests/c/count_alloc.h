/* Counts heap allocations by interposing the C allocator: a program that includes this defines
 * malloc & co., which take precedence over libc's for the whole process, including libinnfer.
 * `allocations` is the number of allocating calls so far. glibc only (__libc_*). */
#ifndef INNFER_TEST_COUNT_ALLOC_H
#define INNFER_TEST_COUNT_ALLOC_H

#include <errno.h>
#include <stddef.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static volatile size_t allocations;

void *malloc(size_t n) {
    allocations++;
    return __libc_malloc(n);
}
void *calloc(size_t a, size_t b) {
    allocations++;
    return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n) {
    allocations++;
    return __libc_realloc(p, n);
}
void free(void *p) { __libc_free(p); }
void *memalign(size_t align, size_t n) {
    allocations++;
    return __libc_memalign(align, n);
}
void *aligned_alloc(size_t align, size_t n) {
    allocations++;
    return __libc_memalign(align, n);
}
int posix_memalign(void **p, size_t align, size_t n) {
    void *q;
    allocations++;
    q = __libc_memalign(align, n);
    if (q == NULL) return ENOMEM;
    *p = q;
    return 0;
}

#endif
