/* Encoding, in the order the `tokenizers` library runs it: added tokens that are not normalized
 * are split out of the raw text; each remaining piece is normalized, then normalized added tokens
 * are split out; pre-tokenizers cut the rest into words; BPE turns each word into ids; the
 * post-processor adds the template's special tokens. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "error.h"
#include "tokenizer_impl.h"

int tok_pieces_push(struct tok_pieces *p, const char *s, size_t len, int32_t id, int at_start)
{
	if (id < 0 && len == 0)
		return 0;
	if (p->n == p->cap) {
		int cap = p->cap ? p->cap * 2 : 16;
		struct tok_piece *v = realloc(p->v, (size_t)cap * sizeof(*v));
		if (!v)
			return -1;
		p->v = v;
		p->cap = cap;
	}
	char *c = malloc(len + 1);
	if (!c)
		return -1;
	memcpy(c, s, len);
	c[len] = 0;
	p->v[p->n++] = (struct tok_piece){.s = c, .len = len, .id = id, .at_start = at_start};
	return 0;
}

void tok_pieces_free(struct tok_pieces *p)
{
	for (int i = 0; i < p->n; i++)
		free(p->v[i].s);
	free(p->v);
	memset(p, 0, sizeof(*p));
}

static int is_space(unsigned char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

/* Split text pieces at added tokens whose "normalized" flag equals `normalized`: leftmost match,
 * longest at that position, widened over neighbouring whitespace for lstrip/rstrip tokens. */
static int split_added(const awq_tokenizer *t, struct tok_pieces *in, struct tok_pieces *out, int normalized)
{
	unsigned char first[256] = {0};
	for (int k = 0; k < t->n_added; k++)
		if (t->added[k].normalized == normalized)
			first[(unsigned char)t->added[k].content[0]] = 1;
	for (int p = 0; p < in->n; p++) {
		const struct tok_piece *pc = &in->v[p];
		const char *s = pc->s;
		size_t len = pc->len, from = 0;
		if (pc->id >= 0) {
			if (tok_pieces_push(out, s, len, pc->id, pc->at_start))
				return -1;
			continue;
		}
		for (size_t i = 0; i < len; i++) {
			if (!first[(unsigned char)s[i]])
				continue;
			const struct tok_added *best = NULL;
			for (int k = 0; k < t->n_added; k++) {
				const struct tok_added *a = &t->added[k];
				if (a->normalized == normalized && a->len <= len - i && (!best || a->len > best->len) &&
				    memcmp(s + i, a->content, a->len) == 0)
					best = a;
			}
			if (!best)
				continue;
			size_t start = i, end = i + best->len;
			if (best->lstrip)
				while (start > from && is_space((unsigned char)s[start - 1]))
					start--;
			if (best->rstrip)
				while (end < len && is_space((unsigned char)s[end]))
					end++;
			if (tok_pieces_push(out, s + from, start - from, -1, pc->at_start && from == 0) ||
			    tok_pieces_push(out, s + start, end - start, best->id, 0))
				return -1;
			from = end;
			i = end - 1;
		}
		if (tok_pieces_push(out, s + from, len - from, -1, pc->at_start && from == 0))
			return -1;
	}
	return 0;
}

/* --- normalizers -------------------------------------------------------------------------- */

int tok_replace_all(const char *s, size_t len, const char *pat, const char *with, char **out, size_t *outlen)
{
	size_t lp = strlen(pat), lw = strlen(with), n = 0, cap = len + 16;
	char *o = malloc(cap);
	if (!o)
		return -1;
	for (size_t i = 0; i < len;) {
		int hit = lp && i + lp <= len && memcmp(s + i, pat, lp) == 0;
		size_t add = hit ? lw : 1;
		if (n + add + 1 > cap) {
			cap = (n + add + 1) * 2;
			char *no = realloc(o, cap);
			if (!no) {
				free(o);
				return -1;
			}
			o = no;
		}
		memcpy(o + n, hit ? with : s + i, add);
		n += add;
		i += hit ? lp : 1;
	}
	o[n] = 0;
	*out = o;
	*outlen = n;
	return 0;
}

static int normalize_one(const struct tok_norm *nm, const char *s, size_t len, char **out, size_t *outlen)
{
	utf8proc_uint8_t *dst = NULL;
	utf8proc_ssize_t n;
	switch (nm->kind) {
	case NORM_NFC:
	case NORM_NFD:
	case NORM_NFKC:
	case NORM_NFKD: {
		int opt = UTF8PROC_STABLE;
		opt |= nm->kind == NORM_NFC || nm->kind == NORM_NFKC ? UTF8PROC_COMPOSE : UTF8PROC_DECOMPOSE;
		if (nm->kind == NORM_NFKC || nm->kind == NORM_NFKD)
			opt |= UTF8PROC_COMPAT;
		if (len == 0)
			break;
		n = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)len, &dst, (utf8proc_option_t)opt);
		if (n < 0)
			return -1;
		*out = (char *)dst;
		*outlen = (size_t)n;
		return 0;
	}
	case NORM_LOWERCASE: {
		char *o = malloc(len * 2 + 4);
		size_t k = 0;
		if (!o)
			return -1;
		for (size_t i = 0; i < len;) {
			uint32_t cp;
			i += (size_t)tok_utf8_decode((const unsigned char *)s + i, &cp);
			k += (size_t)tok_utf8_encode((uint32_t)utf8proc_tolower((utf8proc_int32_t)cp), o + k);
		}
		o[k] = 0;
		*out = o;
		*outlen = k;
		return 0;
	}
	case NORM_PREPEND: {
		size_t lp = len ? strlen(nm->a) : 0;
		char *o = malloc(lp + len + 1);
		if (!o)
			return -1;
		memcpy(o, nm->a, lp);
		memcpy(o + lp, s, len);
		o[lp + len] = 0;
		*out = o;
		*outlen = lp + len;
		return 0;
	}
	case NORM_REPLACE:
		return tok_replace_all(s, len, nm->a, nm->b, out, outlen);
	}
	*out = malloc(len + 1);
	if (!*out)
		return -1;
	memcpy(*out, s, len);
	(*out)[len] = 0;
	*outlen = len;
	return 0;
}

static int normalize_pieces(const awq_tokenizer *t, struct tok_pieces *p)
{
	for (int i = 0; i < p->n; i++) {
		if (p->v[i].id >= 0)
			continue;
		for (int k = 0; k < t->n_norm; k++) {
			char *o;
			size_t n;
			if (normalize_one(&t->norm[k], p->v[i].s, p->v[i].len, &o, &n))
				return -1;
			free(p->v[i].s);
			p->v[i].s = o;
			p->v[i].len = n;
		}
	}
	return 0;
}

/* --- pre-tokenizers ----------------------------------------------------------------------- */

static int split_regex(const struct tok_pre *pre, const struct tok_piece *pc, struct tok_pieces *out)
{
	pcre2_match_data *md = pcre2_match_data_create_from_pattern(pre->re, NULL);
	const char *s = pc->s;
	size_t len = pc->len, at = 0, prev = 0; /* prev: end of the last emitted span */
	int rc = 0;
	if (!md)
		return -1;
#define EMIT(a, b) (rc = tok_pieces_push(out, s + (a), (b) - (a), -1, pc->at_start && (a) == 0))
	while (at <= len && !rc) {
		/* the text was made valid UTF-8 on entry: checking it again on every call is quadratic */
		int m = pcre2_match(pre->re, (PCRE2_SPTR)s, len, at, PCRE2_NO_UTF_CHECK, md, NULL);
		if (m < 0)
			break;
		PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
		size_t ms = ov[0], me = ov[1];
		if (me == ms) { /* an empty match splits nothing: step over one character */
			at = ms + 1;
			while (at < len && ((unsigned char)s[at] & 0xc0) == 0x80)
				at++;
			continue;
		}
		switch (pre->behavior) {
		case SPLIT_ISOLATED:
			if (ms > prev)
				EMIT(prev, ms);
			if (!rc)
				EMIT(ms, me);
			prev = me;
			break;
		case SPLIT_REMOVED:
			if (ms > prev)
				EMIT(prev, ms);
			prev = me;
			break;
		case SPLIT_MERGED_PREV:
			EMIT(prev, me);
			prev = me;
			break;
		case SPLIT_MERGED_NEXT: /* cut before every match */
			if (ms > prev)
				EMIT(prev, ms);
			prev = ms;
			break;
		}
		at = me;
	}
	if (!rc && len > prev)
		EMIT(prev, len);
#undef EMIT
	pcre2_match_data_free(md);
	return rc;
}

static int metaspace(const struct tok_pre *pre, const struct tok_piece *pc, struct tok_pieces *out)
{
	char *r;
	size_t n, lr = strlen(pre->repl);
	if (tok_replace_all(pc->s, pc->len, " ", pre->repl, &r, &n))
		return -1;
	int starts = n >= lr && memcmp(r, pre->repl, lr) == 0;
	int prepend = !starts && (pre->prepend_scheme == 2 || (pre->prepend_scheme == 1 && pc->at_start));
	char *s = malloc(n + lr + 1);
	if (!s) {
		free(r);
		return -1;
	}
	memcpy(s, pre->repl, prepend ? lr : 0);
	memcpy(s + (prepend ? lr : 0), r, n + 1);
	n += prepend ? lr : 0;
	free(r);
	int rc = 0;
	size_t from = 0;
	if (pre->split) /* MergedWithNext on the replacement character */
		for (size_t i = 1; i + lr <= n && !rc; i++)
			if (memcmp(s + i, pre->repl, lr) == 0) {
				rc = tok_pieces_push(out, s + from, i - from, -1, pc->at_start && from == 0);
				from = i;
			}
	if (!rc)
		rc = tok_pieces_push(out, s + from, n - from, -1, pc->at_start && from == 0);
	free(s);
	return rc;
}

static int pre_tokenize(const awq_tokenizer *t, struct tok_pieces *p)
{
	for (int k = 0; k < t->n_pre; k++) {
		const struct tok_pre *pre = &t->pre[k];
		struct tok_pieces out = {0};
		int rc = 0;
		for (int i = 0; i < p->n && !rc; i++) {
			struct tok_piece *pc = &p->v[i];
			if (pc->id >= 0) {
				rc = tok_pieces_push(&out, pc->s, pc->len, pc->id, pc->at_start);
			} else if (pre->kind == PRE_METASPACE) {
				rc = metaspace(pre, pc, &out);
			} else if (pre->kind == PRE_BYTELEVEL && pre->add_prefix_space && pc->s[0] != ' ') {
				struct tok_piece sp = *pc;
				sp.s = malloc(pc->len + 2);
				if (!sp.s) {
					rc = -1;
					break;
				}
				sp.s[0] = ' ';
				memcpy(sp.s + 1, pc->s, pc->len + 1);
				sp.len = pc->len + 1;
				rc = pre->re ? split_regex(pre, &sp, &out)
					     : tok_pieces_push(&out, sp.s, sp.len, -1, sp.at_start);
				free(sp.s);
			} else if (pre->re) {
				rc = split_regex(pre, pc, &out);
			} else {
				rc = tok_pieces_push(&out, pc->s, pc->len, -1, pc->at_start);
			}
		}
		tok_pieces_free(p);
		*p = out;
		if (rc)
			return rc;
	}
	return 0;
}

int awq_tokenizer_encode(const awq_tokenizer *t, const char *text, size_t len, int add_special, int32_t **ids,
			 int *n, char *err, size_t errlen)
{
	struct tok_pieces raw = {0}, a = {0}, b = {0};
	struct tok_ids out = {0};
	char *clean = NULL;
	size_t clen;
	int rc = -1;
	*ids = NULL;
	*n = 0;
	if (awq_utf8_lossy(text, len, &clean, &clen))
		goto done;
	if (tok_pieces_push(&raw, clean, clen, -1, 1) || split_added(t, &raw, &a, 0) || normalize_pieces(t, &a) ||
	    split_added(t, &a, &b, 1) || pre_tokenize(t, &b))
		goto done;
	if (add_special)
		for (int i = 0; i < t->n_post_prefix; i++)
			if (tok_ids_push(&out, t->post_prefix[i]))
				goto done;
	for (int i = 0; i < b.n; i++) {
		if (b.v[i].id >= 0 ? tok_ids_push(&out, b.v[i].id) : tok_bpe_word(t, b.v[i].s, b.v[i].len, &out))
			goto done;
	}
	if (add_special)
		for (int i = 0; i < t->n_post_suffix; i++)
			if (tok_ids_push(&out, t->post_suffix[i]))
				goto done;
	rc = 0;
done:
	free(clean);
	tok_pieces_free(&raw);
	tok_pieces_free(&a);
	tok_pieces_free(&b);
	if (rc) {
		free(out.v);
		return awq_err(err, errlen, AWQ_ENOMEM, "%s: out of memory while encoding %zu bytes", t->path, len);
	}
	if (!out.v)
		out.v = malloc(sizeof(int32_t)); /* a valid pointer for zero tokens */
	*ids = out.v;
	*n = out.n;
	return 0;
}
