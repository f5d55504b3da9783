#ifndef MIJIAN_CNETLINK_H
#define MIJIAN_CNETLINK_H
// Netlink and rtnetlink constants and message layouts for the route/rule/address readers.
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/if_addr.h>
#include <linux/fib_rules.h>
#include <linux/if_link.h>
#include <linux/sched.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

/// Moves the calling thread into the network namespace open at `fd` (setns with CLONE_NEWNET).
/// Called through syscall(2) so that no feature-test macro is needed to see setns.
static inline int mijian_setns_net(int fd) { return (int)syscall(SYS_setns, fd, CLONE_NEWNET); }
#endif
