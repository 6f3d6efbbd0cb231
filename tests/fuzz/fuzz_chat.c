/* libFuzzer entry point: chat template recognition and formatting. */
#include "fuzz_targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	awq_fuzz_chat(data, size);
	return 0;
}
