#include "CBase64.h"

#if defined(__x86_64__)
#include <immintrin.h>

/// One block: 32 characters to 32 six-bit values, or a non-zero mask of the characters that are
/// not in the standard alphabet. Ranges are compared as signed bytes, so bytes from 0x80 up
/// (negative) fall in none of them.
__attribute__((target("avx2"))) static inline __m256i values(__m256i c, unsigned *invalid, __m256i *plus_or_slash) {
    const __m256i upper = _mm256_and_si256(_mm256_cmpgt_epi8(c, _mm256_set1_epi8('A' - 1)), _mm256_cmpgt_epi8(_mm256_set1_epi8('Z' + 1), c));
    const __m256i lower = _mm256_and_si256(_mm256_cmpgt_epi8(c, _mm256_set1_epi8('a' - 1)), _mm256_cmpgt_epi8(_mm256_set1_epi8('z' + 1), c));
    const __m256i digit = _mm256_and_si256(_mm256_cmpgt_epi8(c, _mm256_set1_epi8('0' - 1)), _mm256_cmpgt_epi8(_mm256_set1_epi8('9' + 1), c));
    const __m256i plus = _mm256_cmpeq_epi8(c, _mm256_set1_epi8('+'));
    const __m256i slash = _mm256_cmpeq_epi8(c, _mm256_set1_epi8('/'));
    const __m256i valid = _mm256_or_si256(_mm256_or_si256(upper, lower), _mm256_or_si256(digit, _mm256_or_si256(plus, slash)));
    *invalid = ~(unsigned)_mm256_movemask_epi8(valid);
    *plus_or_slash = _mm256_or_si256(plus, slash);
    // 'A' 65 -> 0, 'a' 97 -> 26, '0' 48 -> 52, '+' 43 -> 62, '/' 47 -> 63.
    __m256i shift = _mm256_and_si256(upper, _mm256_set1_epi8(-65));
    shift = _mm256_or_si256(shift, _mm256_and_si256(lower, _mm256_set1_epi8(-71)));
    shift = _mm256_or_si256(shift, _mm256_and_si256(digit, _mm256_set1_epi8(4)));
    shift = _mm256_or_si256(shift, _mm256_and_si256(plus, _mm256_set1_epi8(19)));
    shift = _mm256_or_si256(shift, _mm256_and_si256(slash, _mm256_set1_epi8(16)));
    return _mm256_add_epi8(c, shift);
}

__attribute__((target("avx2"))) static size_t decode_avx2(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_capacity, int *saw_plus_slash) {
    size_t i = 0, o = 0;
    __m256i plus_slash = _mm256_setzero_si256();
    // Within each 32-bit lane: three bytes from the 24-bit value, first byte first.
    const __m256i order = _mm256_setr_epi8(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1,
                                           2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1);
    while (i + 32 <= in_len && o + 28 <= out_capacity) {
        unsigned invalid;
        __m256i specials;
        const __m256i sixes = values(_mm256_loadu_si256((const __m256i *)(in + i)), &invalid, &specials);
        if (invalid) break;
        plus_slash = _mm256_or_si256(plus_slash, specials);
        // a*64 + b per pair of characters, then (ab)*4096 + cd per quantum: 24 bits in each 32-bit lane.
        const __m256i pairs = _mm256_maddubs_epi16(sixes, _mm256_set1_epi32(0x01400140));
        const __m256i quanta = _mm256_madd_epi16(pairs, _mm256_set1_epi32(0x00011000));
        const __m256i bytes = _mm256_shuffle_epi8(quanta, order);
        _mm_storeu_si128((__m128i *)(out + o), _mm256_castsi256_si128(bytes));
        _mm_storeu_si128((__m128i *)(out + o + 12), _mm256_extracti128_si256(bytes, 1));
        i += 32;
        o += 24;
    }
    *saw_plus_slash = !_mm256_testz_si256(plus_slash, plus_slash);
    return i;
}

int mijian_base64_has_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") ? 1 : 0;
}

size_t mijian_base64_decode_blocks(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_capacity, int *saw_plus_slash) {
    static int avx2 = -1;  // -1 until asked; threads that race here store the same answer
    *saw_plus_slash = 0;
    int known = __atomic_load_n(&avx2, __ATOMIC_RELAXED);
    if (known < 0) {
        known = mijian_base64_has_avx2();
        __atomic_store_n(&avx2, known, __ATOMIC_RELAXED);
    }
    return known ? decode_avx2(in, in_len, out, out_capacity, saw_plus_slash) : 0;
}
#else
int mijian_base64_has_avx2(void) { return 0; }

size_t mijian_base64_decode_blocks(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_capacity, int *saw_plus_slash) {
    (void)in; (void)in_len; (void)out; (void)out_capacity;
    *saw_plus_slash = 0;
    return 0;
}
#endif
