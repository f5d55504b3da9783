#ifndef MIJIAN_CNETLINK_H
#define MIJIAN_CNETLINK_H
// Netlink and rtnetlink constants and message layouts for the route/rule/address readers.
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/if_addr.h>
#include <linux/fib_rules.h>
#include <linux/if_link.h>
#include <sys/socket.h>
#endif
