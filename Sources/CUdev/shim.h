#ifndef MIJIAN_CUDEV_SHIM_H
#define MIJIAN_CUDEV_SHIM_H
#include <libudev.h>
/* The monitor's thread is stopped through an eventfd. */
#include <sys/eventfd.h>
#endif
