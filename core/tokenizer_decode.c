/* Decoding: ids to token strings, then tokenizer.json's decoder chain with the `tokenizers`
 * library's per-step semantics (each step maps a list of strings to a list of strings), and the
 * streaming decoder that holds text back until its characters are complete. */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "tokenizer_impl.h"

/* --- UTF-8 -------------------------------------------------------------------------------- */

/* Length of the valid sequence at s, or 0; *sub receives the length of the maximal invalid
 * subpart (the prefix that could still have started a valid character, at least 1). */
static int utf8_check(const unsigned char *s, size_t len, int *sub)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	int need;
	*sub = 1;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		need = 2;
	else if (c >= 0xe0 && c <= 0xef)
		need = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		need = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	for (int i = 1; i < need; i++) {
		if ((size_t)i >= len)
			return 0;
		unsigned char x = s[i];
		if (x < (i == 1 ? lo : 0x80) || x > (i == 1 ? hi : 0xbf))
			return 0;
		*sub = i + 1;
	}
	return need;
}

int awq_utf8_char_len(const unsigned char *s, size_t len)
{
	int sub;
	return len ? utf8_check(s, len, &sub) : 0;
}

int awq_utf8_lossy(const char *s, size_t len, char **out, size_t *outlen)
{
	char *o = malloc(len * 3 + 1); /* each invalid byte may become 3 bytes of U+FFFD */
	size_t k = 0;
	if (!o)
		return -1;
	for (size_t i = 0; i < len;) {
		int sub, n = utf8_check((const unsigned char *)s + i, len - i, &sub);
		if (n) {
			memcpy(o + k, s + i, (size_t)n);
			k += (size_t)n;
			i += (size_t)n;
		} else {
			memcpy(o + k, "\xef\xbf\xbd", 3);
			k += 3;
			i += (size_t)sub;
		}
	}
	o[k] = 0;
	*out = o;
	*outlen = k;
	return 0;
}

/* --- the decoder chain -------------------------------------------------------------------- */

struct strs {
	char **s;
	size_t *len;
	int n, cap;
};

static void strs_free(struct strs *l)
{
	for (int i = 0; i < l->n; i++)
		free(l->s[i]);
	free(l->s);
	free(l->len);
	memset(l, 0, sizeof(*l));
}

/* Takes ownership of s. */
static int strs_take(struct strs *l, char *s, size_t len)
{
	if (!s)
		return -1;
	if (l->n == l->cap) {
		int cap = l->cap ? l->cap * 2 : 16;
		char **ns = realloc(l->s, (size_t)cap * sizeof(*ns));
		if (!ns)
			return free(s), -1;
		l->s = ns;
		size_t *nl = realloc(l->len, (size_t)cap * sizeof(*nl));
		if (!nl)
			return free(s), -1;
		l->len = nl;
		l->cap = cap;
	}
	l->s[l->n] = s;
	l->len[l->n++] = len;
	return 0;
}

static char *copy(const char *s, size_t len)
{
	char *d = malloc(len + 1);
	if (d) {
		memcpy(d, s, len);
		d[len] = 0;
	}
	return d;
}

static int fuse(const struct strs *in, struct strs *out)
{
	size_t total = 0, k = 0;
	for (int i = 0; i < in->n; i++)
		total += in->len[i];
	char *s = malloc(total + 1);
	if (!s)
		return -1;
	for (int i = 0; i < in->n; i++) {
		memcpy(s + k, in->s[i], in->len[i]);
		k += in->len[i];
	}
	s[k] = 0;
	return strs_take(out, s, k);
}

/* Each token's characters mapped back to bytes (raw UTF-8 when one does not map), all joined and
 * made valid with replacement characters. */
static int byte_level(const struct strs *in, struct strs *out)
{
	size_t total = 0, k = 0;
	for (int i = 0; i < in->n; i++)
		total += in->len[i];
	char *b = malloc(total + 1), *s;
	size_t n;
	if (!b)
		return -1;
	for (int i = 0; i < in->n; i++) {
		const unsigned char *t = (const unsigned char *)in->s[i];
		size_t start = k;
		for (size_t j = 0; j < in->len[i];) {
			uint32_t cp;
			j += (size_t)tok_utf8_decode(t + j, &cp);
			int byte = tok_cp_to_byte(cp);
			if (byte < 0) {
				k = start;
				memcpy(b + k, t, in->len[i]);
				k += in->len[i];
				break;
			}
			b[k++] = (char)byte;
		}
	}
	int rc = awq_utf8_lossy(b, k, &s, &n);
	free(b);
	return rc ? -1 : strs_take(out, s, n);
}

static int is_byte_token(const char *s, size_t len, unsigned char *byte)
{
	static const char hex[] = "0123456789ABCDEFabcdef";
	if (len != 6 || memcmp(s, "<0x", 3) || s[5] != '>' || !strchr(hex, s[3]) || !strchr(hex, s[4]))
		return 0;
	*byte = (unsigned char)strtol(s + 3, NULL, 16);
	return 1;
}

/* Runs of <0xNN> tokens become their bytes when those are valid UTF-8, else one U+FFFD per byte. */
static int byte_fallback(const struct strs *in, struct strs *out)
{
	unsigned char run[256];
	size_t nrun = 0;
	for (int i = 0; i <= in->n; i++) {
		unsigned char b;
		if (i < in->n && is_byte_token(in->s[i], in->len[i], &b) && nrun < sizeof(run)) {
			run[nrun++] = b;
			continue;
		}
		if (nrun) {
			int valid = 1;
			for (size_t j = 0; j < nrun && valid;) {
				int n = awq_utf8_char_len(run + j, nrun - j);
				valid = n > 0;
				j += (size_t)n;
			}
			if (valid && strs_take(out, copy((const char *)run, nrun), nrun))
				return -1;
			for (size_t j = 0; !valid && j < nrun; j++)
				if (strs_take(out, copy("\xef\xbf\xbd", 3), 3))
					return -1;
			nrun = 0;
		}
		if (i < in->n && is_byte_token(in->s[i], in->len[i], &b)) {
			run[nrun++] = b;
			continue;
		}
		if (i < in->n && strs_take(out, copy(in->s[i], in->len[i]), in->len[i]))
			return -1;
	}
	return 0;
}

static int strip(const struct tok_dec *d, const struct strs *in, struct strs *out)
{
	size_t lc = strlen(d->repl);
	for (int i = 0; i < in->n; i++) {
		const char *s = in->s[i];
		size_t a = 0, b = in->len[i];
		for (int k = 0; k < d->start && b - a >= lc && memcmp(s + a, d->repl, lc) == 0; k++)
			a += lc;
		for (int k = 0; k < d->stop && b - a >= lc && memcmp(s + b - lc, d->repl, lc) == 0; k++)
			b -= lc;
		if (strs_take(out, copy(s + a, b - a), b - a))
			return -1;
	}
	return 0;
}

static int run_step(const struct tok_dec *d, const struct strs *in, struct strs *out)
{
	switch (d->kind) {
	case DEC_BYTELEVEL:
		return byte_level(in, out);
	case DEC_FUSE:
		return fuse(in, out);
	case DEC_BYTEFALLBACK:
		return byte_fallback(in, out);
	case DEC_STRIP:
		return strip(d, in, out);
	case DEC_REPLACE:
	case DEC_METASPACE:
		for (int i = 0; i < in->n; i++) {
			char *s;
			size_t n;
			/* Metaspace drops the replacement characters of the first token when it prepends */
			const char *with = d->kind == DEC_METASPACE && i == 0 && d->prepend_scheme ? "" : " ";
			if (tok_replace_all(in->s[i], in->len[i], d->kind == DEC_REPLACE ? d->a : d->repl,
					    d->kind == DEC_REPLACE ? d->b : with, &s, &n) ||
			    strs_take(out, s, n))
				return -1;
		}
		return 0;
	}
	return -1;
}

int awq_tokenizer_decode(const awq_tokenizer *t, const int32_t *ids, int n, int skip_special, char **out,
			 size_t *outlen, char *err, size_t errlen)
{
	struct strs cur = {0};
	int rc = 0;
	*out = NULL;
	for (int i = 0; i < n && !rc; i++) {
		/* ids without a token (a model vocabulary padded past the tokenizer's) are dropped, as the
		 * tokenizers library does */
		const char *tok = awq_tokenizer_id_to_token(t, ids[i]);
		if (!tok || (skip_special && t->is_special[ids[i]]))
			continue;
		rc = strs_take(&cur, copy(tok, strlen(tok)), strlen(tok));
	}
	for (int k = 0; k < t->n_dec && !rc; k++) {
		struct strs next = {0};
		rc = run_step(&t->dec[k], &cur, &next);
		strs_free(&cur);
		cur = next;
	}
	if (!rc && !t->n_dec) { /* no decoder: the library joins tokens with spaces */
		struct strs next = {0};
		for (int i = 0; i < cur.n && !rc; i++)
			rc = strs_take(&next, copy(i ? " " : "", i ? 1 : 0), i ? 1 : 0) ||
			     strs_take(&next, copy(cur.s[i], cur.len[i]), cur.len[i]);
		strs_free(&cur);
		cur = next;
	}
	if (!rc) {
		struct strs joined = {0};
		rc = fuse(&cur, &joined);
		if (!rc && awq_utf8_lossy(joined.s[0], joined.len[0], out, outlen))
			rc = -1;
		strs_free(&joined);
	}
	strs_free(&cur);
	if (rc)
		return awq_err(err, errlen, AWQ_ENOMEM, "%s: out of memory while decoding", t->path);
	return 0;
}

/* --- streaming ---------------------------------------------------------------------------- */

void awq_detok_init(struct awq_detok *d, const awq_tokenizer *t, int skip_special)
{
	memset(d, 0, sizeof(*d));
	d->t = t;
	d->skip_special = skip_special;
}

void awq_detok_free(struct awq_detok *d)
{
	free(d->ids);
	memset(d, 0, sizeof(*d));
}

static int ends_incomplete(const char *s, size_t n)
{
	return n >= 3 && memcmp(s + n - 3, "\xef\xbf\xbd", 3) == 0;
}

/* Emit decode(ids[prefix..n]) minus decode(ids[prefix..read]) once it is complete (or forced):
 * decoding a window, not single tokens, keeps decoders that look at neighbours (spaces, bytes)
 * exact. */
static int emit(struct awq_detok *d, int force, char **piece, char *err, size_t errlen)
{
	char *prev = NULL, *cur = NULL;
	size_t lp = 0, lc = 0;
	*piece = NULL;
	int rc = awq_tokenizer_decode(d->t, d->ids + d->prefix, d->read - d->prefix, d->skip_special, &prev, &lp, err,
				      errlen);
	if (!rc)
		rc = awq_tokenizer_decode(d->t, d->ids + d->prefix, d->n - d->prefix, d->skip_special, &cur, &lc, err,
					  errlen);
	/* the emitted window is normally a prefix of the longer one; when it is not (a character that
	 * was forced out incomplete got completed), emit from where they differ so nothing is lost */
	size_t same = 0;
	while (!rc && same < lp && same < lc && prev[same] == cur[same])
		same++;
	size_t from = same == lp ? lp : same;
	if (!rc && lc > from && (force || !ends_incomplete(cur, lc))) {
		*piece = copy(cur + from, lc - from);
		if (!*piece)
			rc = awq_err(err, errlen, AWQ_ENOMEM, "out of memory while decoding");
		d->prefix = d->read;
		d->read = d->n;
	} else if (!rc && force) {
		d->prefix = d->read = d->n;
	}
	free(prev);
	free(cur);
	return rc;
}

int awq_detok_push(struct awq_detok *d, int32_t id, char **piece, char *err, size_t errlen)
{
	if (d->n == d->cap) {
		int cap = d->cap ? d->cap * 2 : 64;
		int32_t *v = realloc(d->ids, (size_t)cap * sizeof(*v));
		if (!v)
			return awq_err(err, errlen, AWQ_ENOMEM, "out of memory while decoding");
		d->ids = v;
		d->cap = cap;
	}
	d->ids[d->n++] = id;
	/* a character is at most 4 bytes: a window still incomplete after 8 tokens is invalid */
	return emit(d, d->n - d->read >= 8, piece, err, errlen);
}

int awq_detok_flush(struct awq_detok *d, char **piece, char *err, size_t errlen)
{
	if (d->n == d->read) {
		*piece = NULL;
		return 0;
	}
	return emit(d, 1, piece, err, errlen);
}
