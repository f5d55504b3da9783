#define _GNU_SOURCE
#include <fcntl.h>
#include <malloc.h>
#include "CMijianSystem.h"
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int mijian_openat2(int dirfd, const char *path, uint64_t flags, uint64_t resolve) {
    struct open_how how;
    // The kernel rejects unknown non-zero fields, so the struct is cleared before use.
    memset(&how, 0, sizeof how);
    how.flags = flags;
    how.resolve = resolve;
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

const int mijian_o_path = O_PATH;

int mijian_malloc_trim(void) { return malloc_trim(0); }
