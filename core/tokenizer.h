/* Tokenizer: Hugging Face tokenizer.json (BPE models: byte-level as in GPT-2/Qwen2/Qwen3/Llama-3,
 * and SentencePiece-style with the ▁ metaspace and <0xNN> byte fallback as in Llama-2/Mistral),
 * plus the special tokens tokenizer_config.json names. Encode and decode follow the `tokenizers`
 * library token for token (spec/formats.md §7). */
#ifndef AWQ_TOKENIZER_H
#define AWQ_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "awqrun.h"

typedef struct awq_tokenizer awq_tokenizer;

/* Load DIR/tokenizer.json and, when present, DIR/tokenizer_config.json. */
int awq_tokenizer_load(const char *dir, awq_tokenizer **out, char *err, size_t errlen);
/* Load from explicit paths; config_path may be NULL. */
int awq_tokenizer_load_files(const char *json_path, const char *config_path, awq_tokenizer **out, char *err,
			     size_t errlen);
void awq_tokenizer_free(awq_tokenizer *t);

/* Encode len bytes of text. add_special: apply the post-processor (e.g. Llama's leading <s> or
 * <|begin_of_text|>), as HF's add_special_tokens=True. Invalid UTF-8 is replaced by U+FFFD first.
 * *ids is malloc'ed (free it); *n receives the count. */
int awq_tokenizer_encode(const awq_tokenizer *t, const char *text, size_t len, int add_special, int32_t **ids,
			 int *n, char *err, size_t errlen);

/* Decode ids as HF's tokenizer.decode(ids, skip_special_tokens=skip_special): a malloc'ed,
 * NUL-terminated, valid UTF-8 string (invalid byte sequences become U+FFFD). */
int awq_tokenizer_decode(const awq_tokenizer *t, const int32_t *ids, int n, int skip_special, char **out,
			 size_t *outlen, char *err, size_t errlen);

int awq_tokenizer_vocab_size(const awq_tokenizer *t);     /* highest id + 1 */
const char *awq_tokenizer_id_to_token(const awq_tokenizer *t, int32_t id); /* NULL if none */
int32_t awq_tokenizer_token_to_id(const awq_tokenizer *t, const char *token); /* -1 if none */
int awq_tokenizer_is_special(const awq_tokenizer *t, int32_t id);

/* From tokenizer_config.json (NULL / -1 when absent). */
const char *awq_tokenizer_chat_template(const awq_tokenizer *t);
int32_t awq_tokenizer_bos(const awq_tokenizer *t);
int32_t awq_tokenizer_eos(const awq_tokenizer *t);
const char *awq_tokenizer_bos_text(const awq_tokenizer *t); /* "" when none */
/* Token ids that end generation: generation_config.json's eos_token_id (one or a list) and
 * tokenizer_config.json's eos_token; returns the count. */
int awq_tokenizer_stop_ids(const awq_tokenizer *t, int32_t *ids, int max);

/* Streaming decode that never emits part of a UTF-8 character: push one id at a time and write
 * out the text it completes. */
struct awq_detok {
	const awq_tokenizer *t;
	int32_t *ids;
	int n, cap;
	int prefix, read; /* window [prefix, read) already emitted; read.. pending */
	int skip_special;
};
void awq_detok_init(struct awq_detok *d, const awq_tokenizer *t, int skip_special);
/* Appends the newly completed text (possibly nothing) to *piece (malloc'ed, NUL-terminated, or
 * NULL when empty). */
int awq_detok_push(struct awq_detok *d, int32_t id, char **piece, char *err, size_t errlen);
/* Whatever is still pending, incomplete characters as U+FFFD. */
int awq_detok_flush(struct awq_detok *d, char **piece, char *err, size_t errlen);
void awq_detok_free(struct awq_detok *d);

/* UTF-8 helpers shared by the tokenizer, chat and CLI: bytes of the valid character at s (1..4)
 * or 0 when s starts an invalid sequence; lossy copy with HF/Rust from_utf8_lossy semantics
 * (each maximal invalid subpart becomes one U+FFFD). */
int awq_utf8_char_len(const unsigned char *s, size_t len);
int awq_utf8_lossy(const char *s, size_t len, char **out, size_t *outlen);

#endif
