// Counts heap allocations for AllocationCheck.swift (see alloc-check.sh).
// The executable's own malloc family takes precedence over libc's for every
// caller in the process, the Swift runtime included; each forwards to glibc's
// internal entry point after bumping the counter. Frees are not counted: the
// check is "no allocation", and an allocation always comes before its free.
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdatomic.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

_Atomic long portunus_allocation_count = 0;

void *malloc(size_t size) {
    atomic_fetch_add(&portunus_allocation_count, 1);
    return __libc_malloc(size);
}

void *calloc(size_t count, size_t size) {
    atomic_fetch_add(&portunus_allocation_count, 1);
    return __libc_calloc(count, size);
}

void *realloc(void *pointer, size_t size) {
    atomic_fetch_add(&portunus_allocation_count, 1);
    return __libc_realloc(pointer, size);
}

void *memalign(size_t alignment, size_t size) {
    atomic_fetch_add(&portunus_allocation_count, 1);
    return __libc_memalign(alignment, size);
}

void *aligned_alloc(size_t alignment, size_t size) {
    return memalign(alignment, size);
}

int posix_memalign(void **out, size_t alignment, size_t size) {
    void *pointer = memalign(alignment, size);
    if (pointer == NULL) return ENOMEM;
    *out = pointer;
    return 0;
}
