#ifndef MIJIAN_FUZZER_DRIVER_H
#define MIJIAN_FUZZER_DRIVER_H
#include <stddef.h>
#include <stdint.h>

/// Runs libFuzzer's driver (LLVMFuzzerRunDriver, in the runtime -sanitize=fuzzer links) over `callback`.
int mijian_fuzzer_run(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
