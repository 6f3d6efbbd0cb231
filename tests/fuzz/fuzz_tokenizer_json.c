/* libFuzzer entry point: tokenizer.json loading and a fixed encode/decode. */
#include "fuzz_targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	awq_fuzz_tokenizer_json(data, size);
	return 0;
}
