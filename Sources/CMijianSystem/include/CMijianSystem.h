#ifndef MIJIAN_CMIJIANSYSTEM_H
#define MIJIAN_CMIJIANSYSTEM_H
// File-system and memory calls the C library does not wrap (glibc 2.36 has no openat2) or the
// Swift Glibc module does not import.
#include <stdint.h>
#include <linux/openat2.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

/// openat2(2) through syscall(2): opens `path` relative to `dirfd` with `flags` and `resolve`
/// (RESOLVE_* bits). Returns the descriptor, or -1 with errno set (ENOSYS before Linux 5.6).
int mijian_openat2(int dirfd, const char *path, uint64_t flags, uint64_t resolve);

/// O_PATH, which the C library shows only under _GNU_SOURCE: a descriptor that names a file
/// without opening it (no read, no device open, no FIFO wait).
extern const int mijian_o_path;

/// malloc_trim(3), declared in <malloc.h>, which the Swift Glibc module does not import: gives
/// freed heap pages back to the kernel. Returns 1 when memory was released.
int mijian_malloc_trim(void);

// The scan's calls (descriptor passing, I/O priority).
#include "CMijianScanSystem.h"
#endif
