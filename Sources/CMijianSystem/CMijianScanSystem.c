#define _GNU_SOURCE
#include "CMijianScanSystem.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

// From <linux/ioprio.h>, which older kernels' headers do not ship.
#define MIJIAN_IOPRIO_CLASS_SHIFT 13
#define MIJIAN_IOPRIO_CLASS_IDLE 3
#define MIJIAN_IOPRIO_WHO_PROCESS 1

const int mijian_ioprio_class_idle = MIJIAN_IOPRIO_CLASS_IDLE;

int mijian_send_fd(int sock, int fd) {
    char byte = 'f';
    struct iovec io = {.iov_base = &byte, .iov_len = 1};
    union {
        struct cmsghdr header;
        char space[CMSG_SPACE(sizeof(int))];
    } control;
    memset(&control, 0, sizeof(control));
    struct msghdr message = {0};
    message.msg_iov = &io;
    message.msg_iovlen = 1;
    message.msg_control = control.space;
    message.msg_controllen = sizeof(control.space);
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&message);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
    ssize_t sent;
    do {
        sent = sendmsg(sock, &message, MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
    return sent == 1 ? 0 : -1;
}

int mijian_ioprio_set_idle(void) {
    // `who` 0 with IOPRIO_WHO_PROCESS is the calling thread.
    return (int)syscall(SYS_ioprio_set, MIJIAN_IOPRIO_WHO_PROCESS, 0, MIJIAN_IOPRIO_CLASS_IDLE << MIJIAN_IOPRIO_CLASS_SHIFT);
}

int mijian_ioprio_get(void) { return (int)syscall(SYS_ioprio_get, MIJIAN_IOPRIO_WHO_PROCESS, 0); }

int mijian_ioprio_set(int value) { return (int)syscall(SYS_ioprio_set, MIJIAN_IOPRIO_WHO_PROCESS, 0, value); }
