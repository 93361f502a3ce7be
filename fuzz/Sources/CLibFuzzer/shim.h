// libFuzzer's entry for programs with their own main (SwiftPM gives every executable
// target one); the library itself is linked by `-sanitize=fuzzer`.
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
