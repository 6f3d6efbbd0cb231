/* The BPE model: vocabulary and merge tables, and merging one pre-token by rank the way the
 * `tokenizers` library does (lowest rank first, leftmost first among equal ranks, with a heap so
 * long pre-tokens, e.g. a whole line under SentencePiece-style models, stay fast). */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_impl.h"

static uint64_t hash_bytes(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
	return h;
}

static uint64_t hash_pair(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	return k;
}

int tok_strmap_build(struct tok_strmap *m, char **vocab, int n)
{
	m->cap = 16;
	while (m->cap < (size_t)n * 2 + 16)
		m->cap <<= 1;
	m->slots = calloc(m->cap, sizeof(*m->slots));
	if (!m->slots)
		return -1;
	for (int id = 0; id < n; id++) {
		if (!vocab[id])
			continue;
		size_t len = strlen(vocab[id]);
		size_t i = hash_bytes(vocab[id], len) & (m->cap - 1);
		while (m->slots[i]) {
			const char *o = vocab[m->slots[i] - 1];
			if (strlen(o) == len && memcmp(o, vocab[id], len) == 0)
				break; /* duplicate string: the first id wins, as a lookup would find */
			i = (i + 1) & (m->cap - 1);
		}
		if (!m->slots[i])
			m->slots[i] = (uint32_t)id + 1;
	}
	return 0;
}

int32_t tok_strmap_get(const struct tok_strmap *m, char **vocab, const char *s, size_t len)
{
	if (!m->slots)
		return -1;
	size_t i = hash_bytes(s, len) & (m->cap - 1);
	while (m->slots[i]) {
		const char *o = vocab[m->slots[i] - 1];
		if (strnlen(o, len + 1) == len && memcmp(o, s, len) == 0)
			return (int32_t)m->slots[i] - 1;
		i = (i + 1) & (m->cap - 1);
	}
	return -1;
}

void tok_strmap_free(struct tok_strmap *m)
{
	free(m->slots);
	m->slots = NULL;
}

int tok_pairmap_init(struct tok_pairmap *m, size_t n)
{
	m->cap = 16;
	while (m->cap < n * 2 + 16)
		m->cap <<= 1;
	m->keys = malloc(m->cap * sizeof(*m->keys));
	m->rank = malloc(m->cap * sizeof(*m->rank));
	m->merged = malloc(m->cap * sizeof(*m->merged));
	if (!m->keys || !m->rank || !m->merged)
		return -1;
	memset(m->keys, 0xff, m->cap * sizeof(*m->keys));
	return 0;
}

/* Returns 1 when the pair was already present (the first, lowest rank, is kept). */
int tok_pairmap_put(struct tok_pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t merged)
{
	uint64_t k = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
	size_t i = hash_pair(k) & (m->cap - 1);
	while (m->keys[i] != UINT64_MAX) {
		if (m->keys[i] == k)
			return 1;
		i = (i + 1) & (m->cap - 1);
	}
	m->keys[i] = k;
	m->rank[i] = rank;
	m->merged[i] = merged;
	return 0;
}

int tok_pairmap_get(const struct tok_pairmap *m, int32_t a, int32_t b, int32_t *rank, int32_t *merged)
{
	if (!m->keys)
		return 0;
	uint64_t k = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
	size_t i = hash_pair(k) & (m->cap - 1);
	while (m->keys[i] != UINT64_MAX) {
		if (m->keys[i] == k) {
			*rank = m->rank[i];
			*merged = m->merged[i];
			return 1;
		}
		i = (i + 1) & (m->cap - 1);
	}
	return 0;
}

void tok_pairmap_free(struct tok_pairmap *m)
{
	free(m->keys);
	free(m->rank);
	free(m->merged);
	memset(m, 0, sizeof(*m));
}

int tok_ids_push(struct tok_ids *ids, int32_t id)
{
	if (ids->n == ids->cap) {
		int cap = ids->cap ? ids->cap * 2 : 64;
		int32_t *v = realloc(ids->v, (size_t)cap * sizeof(*v));
		if (!v)
			return -1;
		ids->v = v;
		ids->cap = cap;
	}
	ids->v[ids->n++] = id;
	return 0;
}

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the rest to 256 + n. */
uint32_t tok_byte_to_cp(unsigned char b)
{
	if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174)
		return b;
	int n = 0;
	for (int c = 0; c < b; c++)
		if (!((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || c >= 174))
			n++;
	return 256u + (uint32_t)n;
}

int tok_cp_to_byte(uint32_t cp)
{
	static int16_t inv[324];
	static int ready;
	if (!ready) { /* idempotent: concurrent first calls write the same values */
		for (int i = 0; i < 324; i++)
			inv[i] = -1;
		for (int b = 0; b < 256; b++)
			inv[tok_byte_to_cp((unsigned char)b)] = (int16_t)b;
		ready = 1;
	}
	return cp < 324 ? inv[cp] : -1;
}

int tok_utf8_decode(const unsigned char *s, uint32_t *cp)
{
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] < 0xe0) {
		*cp = (uint32_t)(s[0] & 0x1f) << 6 | (s[1] & 0x3f);
		return 2;
	}
	if (s[0] < 0xf0) {
		*cp = (uint32_t)(s[0] & 0x0f) << 12 | (uint32_t)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
		return 3;
	}
	*cp = (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3f) << 12 | (uint32_t)(s[2] & 0x3f) << 6 |
	      (s[3] & 0x3f);
	return 4;
}

int tok_utf8_encode(uint32_t cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | cp >> 12);
		out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | cp >> 18);
	out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* --- merging ------------------------------------------------------------------------------ */

struct sym {
	int32_t id;
	int prev, next; /* -1 at the ends */
	int alive;
};

struct cand {
	int32_t rank;
	int pos;
	int32_t merged;
};

static int cand_less(const struct cand *a, const struct cand *b)
{
	return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

struct heap {
	struct cand *v;
	int n, cap;
};

static int heap_push(struct heap *h, struct cand c)
{
	if (h->n == h->cap) {
		int cap = h->cap ? h->cap * 2 : 32;
		struct cand *v = realloc(h->v, (size_t)cap * sizeof(*v));
		if (!v)
			return -1;
		h->v = v;
		h->cap = cap;
	}
	int i = h->n++;
	while (i > 0 && cand_less(&c, &h->v[(i - 1) / 2])) {
		h->v[i] = h->v[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h->v[i] = c;
	return 0;
}

static struct cand heap_pop(struct heap *h)
{
	struct cand top = h->v[0], last = h->v[--h->n];
	int i = 0;
	for (;;) {
		int c = 2 * i + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && cand_less(&h->v[c + 1], &h->v[c]))
			c++;
		if (!cand_less(&h->v[c], &last))
			break;
		h->v[i] = h->v[c];
		i = c;
	}
	if (h->n)
		h->v[i] = last;
	return top;
}

static int push_pair(const awq_tokenizer *t, struct heap *h, const struct sym *sy, int pos)
{
	int nx = sy[pos].next;
	struct cand c = {.pos = pos};
	if (nx < 0 || !tok_pairmap_get(&t->merges, sy[pos].id, sy[nx].id, &c.rank, &c.merged))
		return 0;
	return heap_push(h, c);
}

/* Initial symbols of a word: bytes (byte-level) or characters with byte fallback / unk. */
static int initial_symbols(const awq_tokenizer *t, const char *s, size_t len, struct tok_ids *syms)
{
	int32_t unk_pending = -1;
	for (size_t i = 0; i < len;) {
		if (t->byte_level) {
			char buf[4];
			int n = tok_utf8_encode(tok_byte_to_cp((unsigned char)s[i]), buf);
			int32_t id = tok_strmap_get(&t->map, t->vocab, buf, (size_t)n);
			if (id < 0)
				id = t->unk; /* the tokenizers library drops the byte when there is no unk */
			if (id >= 0 && tok_ids_push(syms, id))
				return -1;
			i++;
			continue;
		}
		size_t n = 1;
		while (i + n < len && ((unsigned char)s[i + n] & 0xc0) == 0x80)
			n++;
		int32_t id = tok_strmap_get(&t->map, t->vocab, s + i, n);
		if (id >= 0) {
			if (unk_pending >= 0 && tok_ids_push(syms, unk_pending))
				return -1;
			unk_pending = -1;
			if (tok_ids_push(syms, id))
				return -1;
		} else {
			int ok = t->byte_fallback;
			for (size_t k = 0; ok && k < n; k++)
				ok = t->byte_token[(unsigned char)s[i + k]] >= 0;
			if (ok) {
				/* like the tokenizers library, a pending unk stays pending across byte tokens */
				for (size_t k = 0; k < n; k++)
					if (tok_ids_push(syms, t->byte_token[(unsigned char)s[i + k]]))
						return -1;
			} else if (t->unk >= 0) {
				if (unk_pending >= 0 && !t->fuse_unk && tok_ids_push(syms, unk_pending))
					return -1;
				unk_pending = t->unk;
			}
		}
		i += n;
	}
	if (unk_pending >= 0 && tok_ids_push(syms, unk_pending))
		return -1;
	return 0;
}

int tok_bpe_word(const awq_tokenizer *t, const char *s, size_t len, struct tok_ids *out)
{
	if (len == 0)
		return 0;
	if (t->ignore_merges) {
		int32_t id = -1;
		if (t->byte_level) {
			char *m = malloc(len * 2 + 1);
			size_t k = 0;
			if (!m)
				return -1;
			for (size_t i = 0; i < len; i++)
				k += (size_t)tok_utf8_encode(tok_byte_to_cp((unsigned char)s[i]), m + k);
			id = tok_strmap_get(&t->map, t->vocab, m, k);
			free(m);
		} else {
			id = tok_strmap_get(&t->map, t->vocab, s, len);
		}
		if (id >= 0)
			return tok_ids_push(out, id);
	}
	struct tok_ids syms = {0};
	struct heap h = {0};
	struct sym *sy = NULL;
	int rc = initial_symbols(t, s, len, &syms);
	if (rc || syms.n == 0)
		goto done;
	rc = -1;
	sy = malloc((size_t)syms.n * sizeof(*sy));
	if (!sy)
		goto done;
	for (int i = 0; i < syms.n; i++)
		sy[i] = (struct sym){.id = syms.v[i], .prev = i - 1, .next = i + 1 < syms.n ? i + 1 : -1, .alive = 1};
	for (int i = 0; i + 1 < syms.n; i++)
		if (push_pair(t, &h, sy, i))
			goto done;
	while (h.n) {
		struct cand c = heap_pop(&h);
		struct sym *l = &sy[c.pos];
		int32_t rank, merged;
		/* stale entries are recognised as the library does: the pair now there must still
		 * merge into the same token */
		if (!l->alive || l->next < 0 || !tok_pairmap_get(&t->merges, l->id, sy[l->next].id, &rank, &merged) ||
		    merged != c.merged)
			continue;
		struct sym *r = &sy[l->next];
		l->id = c.merged;
		r->alive = 0;
		l->next = r->next;
		if (r->next >= 0)
			sy[r->next].prev = c.pos;
		if (l->prev >= 0 && push_pair(t, &h, sy, l->prev))
			goto done;
		if (push_pair(t, &h, sy, c.pos))
			goto done;
	}
	rc = 0;
	for (int i = 0; i >= 0 && !rc; i = sy[i].next)
		rc = tok_ids_push(out, sy[i].id);
done:
	free(syms.v);
	free(h.v);
	free(sy);
	return rc;
}
