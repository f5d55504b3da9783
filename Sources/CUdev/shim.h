#ifndef MIJIAN_CUDEV_SHIM_H
#define MIJIAN_CUDEV_SHIM_H
#include <libudev.h>
#endif
