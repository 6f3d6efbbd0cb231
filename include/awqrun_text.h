/* awqrun public C API, text side: tokenizer, chat templates and sampling (what `awqrun run` and
 * `awqrun perplexity` use on top of the model API of awqrun.h). */
#ifndef AWQRUN_TEXT_H
#define AWQRUN_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "awqrun.h"

/* Tokenizer: Hugging Face tokenizer.json (BPE models: byte-level as in GPT-2/Qwen2/Qwen3/Llama-3,
 * and SentencePiece-style with the ▁ metaspace and <0xNN> byte fallback as in Llama-2/Mistral),
 * plus the special tokens tokenizer_config.json names. Encode and decode follow the `tokenizers`
 * library token for token (spec/formats.md §7). */

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

/* Chat templates: the model's tokenizer_config.json chat_template is recognised by its markers
 * and reproduced in C for the families awqrun knows (ChatML as Qwen2/Qwen2.5/Qwen3 write it,
 * including Qwen3's thinking switch and its history rules; Llama-3 and Llama-3.1), so the prompt
 * equals transformers' apply_chat_template output without a Jinja engine. */

enum awq_chat_kind { AWQ_CHAT_CHATML = 1, AWQ_CHAT_LLAMA3 };

struct awq_chat {
	enum awq_chat_kind kind;
	int reasoning;       /* Qwen3: <think> blocks in the history are rewritten as its template does */
	int think_switch;    /* the template honours enable_thinking */
	int llama31;         /* Llama-3.1: a system block with the knowledge-cutoff lines always comes first */
	char default_system[256]; /* ChatML templates that insert a system message when none is given */
	char bos[64];             /* Llama-3: bos_token written by the template */
	char date[32];            /* Llama-3.1/3.2: "Today Date" of the system block */
	const char *end_of_turn;  /* "<|im_end|>" or "<|eot_id|>": generation stops there */
};

struct awq_chat_msg {
	const char *role; /* "system", "user", "assistant" */
	const char *content;
};

/* Recognise a template; AWQ_EUNSUPPORTED (with a message naming the markers awqrun knows) for any
 * other, AWQ_EINVAL when there is none. bos_text: the tokenizer's bos_token ("" when none). */
int awq_chat_detect(const char *tmpl, const char *bos_text, struct awq_chat *c, char *err, size_t errlen);

/* apply_chat_template(messages, add_generation_prompt=add_gen, enable_thinking=...) where
 * thinking is -1 (not passed), 0 (false) or 1 (true). *out is malloc'ed. */
int awq_chat_format(const struct awq_chat *c, const struct awq_chat_msg *msgs, int n, int add_gen, int thinking,
		    char **out);

/* Interactive mode: the text that follows an assistant reply already in the KV cache (generation
 * stopped before its end-of-turn token) to close it and ask the next user message. */
int awq_chat_next_turn(const struct awq_chat *c, const char *user, int thinking, char **out);

/* Token sampling from a row of logits: repetition penalty, temperature, top-k, top-p, min-p, in
 * the order Hugging Face's generate() applies its logits processors; temperature 0 is greedy.
 * The random numbers come from a seeded xoshiro256** so a run repeats exactly with --seed. */

struct awq_sampler_opts {
	float temperature;    /* 0 = greedy */
	int top_k;            /* 0 = off */
	float top_p;          /* 1 = off */
	float min_p;          /* 0 = off */
	float repeat_penalty; /* 1 = off; HF's repetition_penalty (divide positive logits, multiply negative) */
	int repeat_last_n;    /* tokens of history the penalty looks at; 0 = all */
	uint64_t seed;
};
void awq_sampler_opts_default(struct awq_sampler_opts *o);

/* The sampling settings of the model's generation_config.json (temperature, top_k, top_p, min_p,
 * repetition_penalty), applied as vLLM applies them by default (do_sample is not consulted): when
 * the file has any of them, every field of o not in keep (AWQ_GEN_* bits the user set) becomes the
 * file's value, or vLLM's neutral one where the file has none (temperature 1, no top-k, top-p 1,
 * min-p 0, no penalty). Returns the bits it overwrote (0: the file sets no sampling). */
enum {
	AWQ_GEN_TEMPERATURE = 1,
	AWQ_GEN_TOP_K = 2,
	AWQ_GEN_TOP_P = 4,
	AWQ_GEN_MIN_P = 8,
	AWQ_GEN_REPEAT_PENALTY = 16,
};
unsigned awq_tokenizer_sampling_defaults(const awq_tokenizer *t, unsigned keep, struct awq_sampler_opts *o);
/* The values one AWQ_GEN_* field may take, inclusive, as command lines and generation_config.json are
 * checked: 0, or -1 for an unknown field. */
int awq_sampling_range(unsigned field, double *lo, double *hi);

struct awq_sampler {
	struct awq_sampler_opts o;
	uint64_t rng[4];
	int vocab;
	float *prob;    /* scratch: vocab */
	int32_t *index; /* scratch: vocab */
};

int awq_sampler_init(struct awq_sampler *s, const struct awq_sampler_opts *o, int vocab, char *err, size_t errlen);
void awq_sampler_free(struct awq_sampler *s);

/* Pick the next token. logits (vocab floats) is modified in place; history: the tokens so far
 * (prompt and generated) for the repetition penalty. */
int32_t awq_sampler_sample(struct awq_sampler *s, float *logits, const int32_t *history, int n_history);

/* Pick the next token from the top_k best logits alone (ids and vals best first: higher logit, then
 * lower id, as awq_session_eval_topk and awq_topk_select give them), k being the options' top_k
 * (< vocab): the token awq_sampler_sample draws from the whole row, with the same random stream,
 * where no repetition penalty applies (repeat_penalty 1). Temperature 0 returns ids[0]. -1 when k
 * is not the options' top_k. */
int32_t awq_sampler_sample_topk(struct awq_sampler *s, const int32_t *ids, const float *vals, int k);
/* Top-k sampling (or greedy: k = 1) with a repetition penalty of 1 or more needs only the row's best
 * k + repeat_last_n logits (a penalty lowers only the window's logits, at most repeat_last_n distinct
 * ones, so no token outside them reaches the penalised top-k): the candidates to ask
 * awq_session_eval_topk for, or 0 where the whole row is needed (top-k off, a penalty below 1, a
 * window of the whole history, or more than AWQ_TOPK_MAX). Without a penalty: k. */
int awq_sampler_candidates_needed(const struct awq_sampler *s);
/* Pick the next token from those candidates (ids and vals as awq_session_eval_topk returns them, n
 * = awq_sampler_candidates_needed): the penalty applied to the ones in the history's window, their
 * best k drawn from as awq_sampler_sample_topk draws (greedy: the best). The same token
 * awq_sampler_sample picks from the row with the same history and stream. -1 when n is not what the
 * sampler needs. */
int32_t awq_sampler_sample_candidates(struct awq_sampler *s, const int32_t *ids, const float *vals, int n,
				      const int32_t *history, int n_history);

/* Whether awq_session_decode_sampled takes this sampler: top-k sampling (temperature > 0, top_k in
 * 1..AWQ_TOPK_MAX and below the vocabulary) without a repetition penalty. */
int awq_sampler_topk_only(const struct awq_sampler *s);

/* Sampled decoding, as awq_session_decode_greedy decodes greedily: evaluate `first` at position pos,
 * then each step's drawn token at the next position, up to n steps; on_token sees every token in
 * order and returns nonzero to stop after it; *steps (may be NULL) gets the number seen. The sampler
 * must be top-k only (awq_sampler_topk_only). On a backend that draws on the device (CUDA: the top-k
 * and the draw after each step, from the sampler's random stream, the next step queued while the host
 * reads a token) the steps run as one chain; elsewhere (or with AWQ_DECODE_CHAIN=0) each step's top-k
 * comes back (awq_session_eval_topk) and the host draws (awq_sampler_sample_topk). Either way the
 * tokens are the ones awq_sampler_sample draws from each step's row, and the sampler's random stream
 * has advanced by one draw per token seen. */
int awq_session_decode_sampled(awq_session *s, struct awq_sampler *smp, int32_t first, int pos, int n,
			       int (*on_token)(void *user, int32_t id), void *user, int *steps, char *err, size_t errlen);

/* The k best ids of a row of vocab logits into idx[0..k), best first (higher logit, then lower id). */
void awq_topk_select(const float *logits, int vocab, int k, int32_t *idx);

/* The steps, exposed for tests. */
void awq_sampler_apply_penalty(float *logits, int vocab, const int32_t *history, int n, float penalty);
/* Probabilities after temperature, top-k, top-p and min-p: prob[i] for every token (0 when cut),
 * summing to 1. Returns the number of tokens kept. */
int awq_sampler_probs(struct awq_sampler *s, const float *logits, float *prob);
uint64_t awq_rng_next(uint64_t st[4]);
void awq_rng_seed(uint64_t st[4], uint64_t seed);

#endif
