/* libFuzzer entry point: safetensors header parser. */
#include "fuzz_targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	awq_fuzz_safetensors(data, size);
	return 0;
}
