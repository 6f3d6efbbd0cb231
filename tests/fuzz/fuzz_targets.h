/* Fuzz target bodies, shared by the libFuzzer entry points and the replay driver. Each returns 1
 * when the input was accepted, 0 when it was rejected cleanly, and aborts when the code under
 * test breaks one of its promises (a crash for libFuzzer). */
#ifndef AWQ_FUZZ_TARGETS_H
#define AWQ_FUZZ_TARGETS_H

#include <stddef.h>
#include <stdint.h>

int awq_fuzz_safetensors(const uint8_t *data, size_t size);
int awq_fuzz_config(const uint8_t *data, size_t size);

#endif
