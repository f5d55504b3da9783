#ifndef MIJIAN_CMIJIANSCANSYSTEM_H
#define MIJIAN_CMIJIANSCANSYSTEM_H
// Calls `mijian scan` needs that the Swift Glibc module does not import: passing a descriptor
// over a Unix socket (CMSG_* are macros) and the I/O priority calls (glibc has no wrapper).

/// Sends one byte with `fd` attached (SCM_RIGHTS) on the Unix stream socket `sock`.
/// Returns 0, or -1 with errno set.
int mijian_send_fd(int sock, int fd);

/// ioprio_set(2) of the calling thread to the idle class (IOPRIO_CLASS_IDLE): its reads are
/// served when no other reads wait, under the BFQ scheduler. Returns 0, or -1 with errno set.
int mijian_ioprio_set_idle(void);

/// ioprio_get(2) of the calling thread: the class in bits 13 and up, the level below; -1 with
/// errno set when the call fails.
int mijian_ioprio_get(void);

/// ioprio_set(2) of the calling thread to `value` as mijian_ioprio_get returned it.
int mijian_ioprio_set(int value);

/// The idle class's number (IOPRIO_CLASS_IDLE).
extern const int mijian_ioprio_class_idle;
#endif
