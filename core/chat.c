/* Chat formatting for the template families chat.h names. Each branch is the template's own logic
 * for system/user/assistant messages (tool calls are not produced by the CLI). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "awqrun_text.h"
#include "error.h"

struct buf {
	char *s;
	size_t n, cap;
	int failed;
};

static void put_n(struct buf *b, const char *s, size_t n)
{
	if (b->failed)
		return;
	if (b->n + n + 1 > b->cap) {
		size_t cap = (b->n + n + 1) * 2;
		char *ns = realloc(b->s, cap);
		if (!ns) {
			b->failed = 1;
			return;
		}
		b->s = ns;
		b->cap = cap;
	}
	memcpy(b->s + b->n, s, n);
	b->n += n;
	b->s[b->n] = 0;
}

static void put(struct buf *b, const char *s)
{
	put_n(b, s, strlen(s));
}

static int finish(struct buf *b, char **out)
{
	if (!b->failed && !b->s)
		put(b, "");
	if (b->failed) {
		free(b->s);
		*out = NULL;
		return AWQ_ENOMEM;
	}
	*out = b->s;
	return 0;
}

/* Python's str.isspace for the characters that occur in practice (Jinja's trim is str.strip()). */
static size_t space_len(const char *s, size_t n)
{
	static const char *const uni[] = {"\xc2\x85", "\xc2\xa0", "\xe1\x9a\x80", "\xe2\x80\xa8", "\xe2\x80\xa9",
					  "\xe2\x80\xaf", "\xe2\x81\x9f", "\xe3\x80\x80"};
	unsigned char c = (unsigned char)s[0];
	if (c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f))
		return 1;
	if (n >= 3 && (unsigned char)s[0] == 0xe2 && (unsigned char)s[1] == 0x80 && (unsigned char)s[2] >= 0x80 &&
	    (unsigned char)s[2] <= 0x8a)
		return 3; /* U+2000..U+200A */
	for (size_t i = 0; i < sizeof(uni) / sizeof(uni[0]); i++) {
		size_t l = strlen(uni[i]);
		if (n >= l && memcmp(s, uni[i], l) == 0)
			return l;
	}
	return 0;
}

/* [*a, *b) narrowed by Python's strip(): whitespace (chars NULL) or the given ASCII characters. */
static void strip_span(const char **a, const char **b, const char *chars, int left, int right)
{
	size_t k;
	while (left && *a < *b) {
		if (chars ? (strchr(chars, **a) != NULL) : (k = space_len(*a, (size_t)(*b - *a))) > 0)
			*a += chars ? 1 : k;
		else
			break;
	}
	while (right && *a < *b) {
		const char *p = *b - 1;
		while (p > *a && ((unsigned char)*p & 0xc0) == 0x80)
			p--;
		if (chars ? (strchr(chars, *p) != NULL && p == *b - 1) : space_len(p, (size_t)(*b - p)) == (size_t)(*b - p))
			*b = p;
		else
			break;
	}
}

static void put_stripped(struct buf *b, const char *s, const char *chars, int left, int right)
{
	const char *a = s, *e = s + strlen(s);
	strip_span(&a, &e, chars, left, right);
	put_n(b, a, (size_t)(e - a));
}

/* Finds the last occurrence of needle in [a, e). */
static const char *rfind(const char *a, const char *e, const char *needle)
{
	size_t l = strlen(needle);
	for (const char *p = e - l; p >= a && e - a >= (ptrdiff_t)l; p--)
		if (memcmp(p, needle, l) == 0)
			return p;
	return NULL;
}

/* Qwen3's assistant message: reasoning = content.split('</think>')[0].rstrip('\n')
 * .split('<think>')[-1].lstrip('\n'); content = content.split('</think>')[-1].lstrip('\n'). */
static void qwen3_assistant(struct buf *b, const char *content, int keep_reasoning_if_last, int is_last)
{
	const char *end = content + strlen(content), *close = strstr(content, "</think>");
	const char *ra = content, *re = content, *ca = content;
	if (close) {
		re = close;
		strip_span(&ra, &re, "\n", 0, 1);
		const char *open = rfind(ra, re, "<think>");
		if (open)
			ra = open + strlen("<think>");
		strip_span(&ra, &re, "\n", 1, 0);
		ca = rfind(content, end, "</think>") + strlen("</think>");
		const char *ce = end;
		strip_span(&ca, &ce, "\n", 1, 0);
	}
	put(b, "<|im_start|>assistant\n");
	if (keep_reasoning_if_last && (is_last || re > ra)) {
		put(b, "<think>\n");
		strip_span(&ra, &re, "\n", 1, 1);
		put_n(b, ra, (size_t)(re - ra));
		put(b, "\n</think>\n\n");
		const char *ce = end;
		strip_span(&ca, &ce, "\n", 1, 0);
		put_n(b, ca, (size_t)(ce - ca));
	} else {
		put_n(b, ca, (size_t)(end - ca));
	}
}

static void chatml(const struct awq_chat *c, struct buf *b, const struct awq_chat_msg *m, int n, int preamble)
{
	int last_query = n - 1;
	for (int i = n - 1; i >= 0; i--)
		if (!strcmp(m[i].role, "user")) {
			last_query = i;
			break;
		}
	if (preamble && (n == 0 || strcmp(m[0].role, "system")) && c->default_system[0]) {
		put(b, "<|im_start|>system\n");
		put(b, c->default_system);
		put(b, "<|im_end|>\n");
	}
	for (int i = 0; i < n; i++) {
		if (!strcmp(m[i].role, "assistant")) {
			if (c->reasoning) {
				qwen3_assistant(b, m[i].content, i > last_query, i == n - 1);
			} else {
				put(b, "<|im_start|>assistant\n");
				put(b, m[i].content);
			}
			put(b, "<|im_end|>\n");
			continue;
		}
		put(b, "<|im_start|>");
		put(b, m[i].role);
		put(b, "\n");
		put(b, m[i].content);
		put(b, "<|im_end|>\n");
	}
}

static void llama3_turn(struct buf *b, const char *role, const char *content)
{
	put(b, "<|start_header_id|>");
	put(b, role);
	put(b, "<|end_header_id|>\n\n");
	put_stripped(b, content, NULL, 1, 1);
	put(b, "<|eot_id|>");
}

static void llama3(const struct awq_chat *c, struct buf *b, const struct awq_chat_msg *m, int n, int preamble)
{
	int first = 0;
	if (preamble && c->llama31) {
		put(b, c->bos);
		put(b, "<|start_header_id|>system<|end_header_id|>\n\n");
		put(b, "Cutting Knowledge Date: December 2023\nToday Date: ");
		put(b, c->date);
		put(b, "\n\n");
		if (n > 0 && !strcmp(m[0].role, "system")) {
			put_stripped(b, m[0].content, NULL, 1, 1);
			first = 1;
		}
		put(b, "<|eot_id|>");
	}
	for (int i = first; i < n; i++) {
		if (i == 0 && preamble && !c->llama31)
			put(b, c->bos);
		llama3_turn(b, m[i].role, m[i].content);
	}
}

static void generation_prompt(const struct awq_chat *c, struct buf *b, int thinking)
{
	if (c->kind == AWQ_CHAT_LLAMA3) {
		put(b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
		return;
	}
	put(b, "<|im_start|>assistant\n");
	if (c->think_switch && thinking == 0)
		put(b, "<think>\n\n</think>\n\n");
}

int awq_chat_format(const struct awq_chat *c, const struct awq_chat_msg *msgs, int n, int add_gen, int thinking,
		    char **out)
{
	struct buf b = {0};
	if (c->kind == AWQ_CHAT_LLAMA3)
		llama3(c, &b, msgs, n, 1);
	else
		chatml(c, &b, msgs, n, 1);
	if (add_gen)
		generation_prompt(c, &b, thinking);
	return finish(&b, out);
}

int awq_chat_next_turn(const struct awq_chat *c, const char *user, int thinking, char **out)
{
	struct buf b = {0};
	struct awq_chat_msg m = {"user", user};
	put(&b, c->end_of_turn);
	if (c->kind == AWQ_CHAT_LLAMA3) {
		llama3(c, &b, &m, 1, 0);
	} else {
		put(&b, "\n");
		chatml(c, &b, &m, 1, 0);
	}
	generation_prompt(c, &b, thinking);
	return finish(&b, out);
}

/* A default system prompt written literally after "<|im_start|>system\n" in the template source
 * (Qwen2: "You are a helpful assistant.", Qwen2.5: "You are Qwen, created by Alibaba Cloud. ..."). */
static void find_default_system(const char *tmpl, char *out, size_t len)
{
	static const char marker[] = "<|im_start|>system\\n";
	for (const char *p = strstr(tmpl, marker); p; p = strstr(p + 1, marker)) {
		const char *s = p + strlen(marker), *e = strstr(s, "<|im_end|>");
		if (!e || *s == '\'' || *s == '"' || memchr(s, '\'', (size_t)(e - s)) || memchr(s, '{', (size_t)(e - s)))
			continue;
		size_t n = (size_t)(e - s) < len - 1 ? (size_t)(e - s) : len - 1;
		memcpy(out, s, n);
		out[n] = 0;
		return;
	}
	out[0] = 0;
}

int awq_chat_detect(const char *tmpl, const char *bos_text, struct awq_chat *c, char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	if (!tmpl || !*tmpl)
		return awq_err(err, errlen, AWQ_EINVAL,
			       "the tokenizer has no chat_template (tokenizer_config.json); use --no-chat for a raw prompt");
	if (strstr(tmpl, "<|im_start|>")) {
		c->kind = AWQ_CHAT_CHATML;
		c->end_of_turn = "<|im_end|>";
		c->reasoning = strstr(tmpl, "</think>") != NULL;
		c->think_switch = strstr(tmpl, "enable_thinking") != NULL;
		find_default_system(tmpl, c->default_system, sizeof(c->default_system));
		return 0;
	}
	if (strstr(tmpl, "<|start_header_id|>")) {
		c->kind = AWQ_CHAT_LLAMA3;
		c->end_of_turn = "<|eot_id|>";
		c->llama31 = strstr(tmpl, "Cutting Knowledge Date") != NULL;
		/* the BOS the template writes: the bos_token variable, or the literal token */
		const char *bos = strstr(tmpl, "bos_token") ? (bos_text ? bos_text : "")
				  : strstr(tmpl, "<|begin_of_text|>") ? "<|begin_of_text|>"
								      : "";
		if (strlen(bos) >= sizeof(c->bos))
			return awq_err(err, errlen, AWQ_EUNSUPPORTED, "the bos_token is too long for the Llama-3 template");
		strcpy(c->bos, bos);
		/* Llama-3.2 dates the system block with today's date when strftime_now exists (it does in
		 * transformers), Llama-3.1 with a fixed one */
		strcpy(c->date, "26 Jul 2024");
		if (strstr(tmpl, "strftime_now")) {
			time_t now = time(NULL);
			struct tm tm;
			if (localtime_r(&now, &tm))
				strftime(c->date, sizeof(c->date), "%d %b %Y", &tm);
		}
		return 0;
	}
	return awq_err(err, errlen, AWQ_EUNSUPPORTED,
		       "unknown chat template: awqrun formats ChatML (\"<|im_start|>\": Qwen2/Qwen2.5/Qwen3) and Llama-3 "
		       "(\"<|start_header_id|>\") templates; use --no-chat and write the prompt in the model's format");
}
