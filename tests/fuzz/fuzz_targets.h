/* Fuzz target bodies, shared by the libFuzzer entry points and the replay driver. Each returns 1
 * when the input was accepted, 0 when it was rejected cleanly, and aborts when the code under
 * test breaks one of its promises (a crash for libFuzzer). */
#ifndef AWQ_FUZZ_TARGETS_H
#define AWQ_FUZZ_TARGETS_H

#include <stddef.h>
#include <stdint.h>

int awq_fuzz_safetensors(const uint8_t *data, size_t size);
int awq_fuzz_config(const uint8_t *data, size_t size);
/* tokenizer.json loading (the input is the file), then an encode/decode of a fixed text */
int awq_fuzz_tokenizer_json(const uint8_t *data, size_t size);
/* arbitrary bytes through a byte-level BPE tokenizer (the Llama-3-style one of tests/data, no
 * normaliser): decode(encode(text)) must equal the text with invalid UTF-8 replaced by U+FFFD */
int awq_fuzz_tokenize(const uint8_t *data, size_t size);
/* a chat template (the input up to its first NUL) recognised and applied to messages made of the
 * rest of the input, the way `awqrun run` formats a conversation */
int awq_fuzz_chat(const uint8_t *data, size_t size);

#endif
