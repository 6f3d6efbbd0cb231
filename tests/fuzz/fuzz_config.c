/* libFuzzer entry point: config.json and quant_config.json parsing and validation. */
#include "fuzz_targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	awq_fuzz_config(data, size);
	return 0;
}
