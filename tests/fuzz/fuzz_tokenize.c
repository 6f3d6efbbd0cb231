/* libFuzzer entry point: arbitrary text through the byte-level BPE tokenizer, decode(encode(x)) == lossy(x). */
#include "fuzz_targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	awq_fuzz_tokenize(data, size);
	return 0;
}
