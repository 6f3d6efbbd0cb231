/* Chat templates: the model's tokenizer_config.json chat_template is recognised by its markers
 * and reproduced in C for the families awqrun knows (ChatML as Qwen2/Qwen2.5/Qwen3 write it,
 * including Qwen3's thinking switch and its history rules; Llama-3 and Llama-3.1), so the prompt
 * equals transformers' apply_chat_template output without a Jinja engine. */
#ifndef AWQ_CHAT_H
#define AWQ_CHAT_H

#include <stddef.h>

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

#endif
