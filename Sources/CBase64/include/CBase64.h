#ifndef MIJIAN_CBASE64_H
#define MIJIAN_CBASE64_H
#include <stddef.h>
#include <stdint.h>

/// Decodes the leading whole blocks of 32 characters of standard-alphabet base64 (RFC 4648
/// section 4: A-Z a-z 0-9 + /) with AVX2, 24 bytes per block, while a block and its 28-byte
/// store fit (`in_len` characters, room for `out_capacity` bytes). Stops at the first block that
/// holds any other byte (the URL-safe alphabet, padding, anything else), leaving it to the
/// caller's exact decoder, which also says why. Returns the characters decoded (a multiple of
/// 32, 0 without AVX2); `*saw_plus_slash` is set to 1 when a decoded block held '+' or '/'.
size_t mijian_base64_decode_blocks(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_capacity, int *saw_plus_slash);

/// Whether this CPU runs the AVX2 decoder (for tests and benchmarks).
int mijian_base64_has_avx2(void);
#endif
