#ifndef MIJIAN_CZSTD_SHIM_H
#define MIJIAN_CZSTD_SHIM_H
#include <zstd.h>
#endif
