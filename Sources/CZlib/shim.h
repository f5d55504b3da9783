#ifndef MIJIAN_CZLIB_SHIM_H
#define MIJIAN_CZLIB_SHIM_H
#include <zlib.h>
// inflateInit2 is a macro; this gives Swift a function for gzip-wrapped streams.
static inline int mijian_inflate_init_gzip(z_stream *stream) {
    return inflateInit2(stream, 16 + MAX_WBITS);
}
#endif
