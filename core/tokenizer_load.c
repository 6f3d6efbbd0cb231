/* Reading tokenizer.json's pipeline: model (BPE vocab and merges), added tokens, normalizer,
 * pre-tokenizer, post-processor and decoder. Anything outside what tokenizer_encode.c and
 * tokenizer_decode.c implement is refused with the component's name, never ignored. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "tokenizer_impl.h"

#define BAD(...) awq_err(err, errlen, AWQ_EFORMAT, __VA_ARGS__)
#define UNSUP(...) awq_err(err, errlen, AWQ_EUNSUPPORTED, __VA_ARGS__)

static const cJSON *get(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsNull(v) ? NULL : v;
}

static const char *get_str(const cJSON *o, const char *k)
{
	const cJSON *v = get(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int get_bool(const cJSON *o, const char *k, int def)
{
	const cJSON *v = get(o, k);
	return cJSON_IsBool(v) ? cJSON_IsTrue(v) : def;
}

static int get_int(const cJSON *o, const char *k, int def)
{
	const cJSON *v = get(o, k);
	return cJSON_IsNumber(v) ? v->valueint : def;
}

/* {"String": s} patterns only: a regex in a Replace is not something these models use. */
static const char *string_pattern(const cJSON *o)
{
	return get_str(get(o, "pattern"), "String");
}

static int compile(awq_tokenizer *t, pcre2_code **re, const char *pattern, int literal, char *err, size_t errlen)
{
	int code;
	PCRE2_SIZE off;
	uint32_t flags = PCRE2_UTF | PCRE2_UCP | (literal ? PCRE2_LITERAL : 0);
	*re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, flags, &code, &off, NULL);
	if (!*re) {
		PCRE2_UCHAR msg[256];
		pcre2_get_error_message(code, msg, sizeof(msg));
		return UNSUP("%s: the pre-tokenizer pattern does not compile at offset %zu: %s", t->path, (size_t)off,
			     (const char *)msg);
	}
	pcre2_jit_compile(*re, PCRE2_JIT_COMPLETE); /* optional: matching works without it */
	return 0;
}

static const char GPT2_PATTERN[] =
	"'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static int prepend_scheme(const cJSON *o)
{
	const char *s = get_str(o, "prepend_scheme");
	if (s)
		return !strcmp(s, "never") ? 0 : !strcmp(s, "first") ? 1 : 2;
	return get_bool(o, "add_prefix_space", 1) ? 2 : 0;
}

static int set_repl(awq_tokenizer *t, char *dst, const cJSON *o, const char *key, const char *def, char *err,
		    size_t errlen)
{
	const char *r = get_str(o, key);
	if (!r)
		r = def;
	if (strlen(r) >= 8)
		return BAD("%s: \"%s\" must be one character", t->path, key);
	memcpy(dst, r, strlen(r) + 1);
	return 0;
}

static int add_normalizer(awq_tokenizer *t, const cJSON *o, char *err, size_t errlen)
{
	const char *type = get_str(o, "type");
	if (!type)
		return BAD("%s: a normalizer has no \"type\"", t->path);
	if (!strcmp(type, "Sequence")) {
		const cJSON *e;
		cJSON_ArrayForEach(e, get(o, "normalizers"))
		{
			int rc = add_normalizer(t, e, err, errlen);
			if (rc)
				return rc;
		}
		return 0;
	}
	if (t->n_norm == TOK_MAX_STEPS)
		return UNSUP("%s: more than %d normalizers", t->path, TOK_MAX_STEPS);
	struct tok_norm *n = &t->norm[t->n_norm];
	if (!strcmp(type, "NFC") || !strcmp(type, "NFD") || !strcmp(type, "NFKC") || !strcmp(type, "NFKD")) {
		n->kind = !strcmp(type, "NFC") ? NORM_NFC : !strcmp(type, "NFD") ? NORM_NFD
			: !strcmp(type, "NFKC")	 ? NORM_NFKC
						 : NORM_NFKD;
	} else if (!strcmp(type, "Lowercase")) {
		n->kind = NORM_LOWERCASE;
	} else if (!strcmp(type, "Prepend")) {
		const char *p = get_str(o, "prepend");
		if (!p)
			return BAD("%s: Prepend normalizer without \"prepend\"", t->path);
		n->kind = NORM_PREPEND;
		if (!(n->a = strdup(p)))
			return AWQ_ENOMEM;
	} else if (!strcmp(type, "Replace")) {
		const char *p = string_pattern(o), *c = get_str(o, "content");
		if (!p || !c || !*p)
			return UNSUP("%s: Replace normalizer needs a non-empty {\"String\": ...} pattern and a content",
				     t->path);
		n->kind = NORM_REPLACE;
		if (!(n->a = strdup(p)) || !(n->b = strdup(c)))
			return AWQ_ENOMEM;
	} else {
		return UNSUP("%s: normalizer \"%s\" is not supported (NFC/NFD/NFKC/NFKD, Lowercase, Prepend, Replace "
			     "are)", t->path, type);
	}
	t->n_norm++;
	return 0;
}

static int add_pretokenizer(awq_tokenizer *t, const cJSON *o, char *err, size_t errlen)
{
	const char *type = get_str(o, "type");
	int rc;
	if (!type)
		return BAD("%s: a pre_tokenizer has no \"type\"", t->path);
	if (!strcmp(type, "Sequence")) {
		const cJSON *e;
		cJSON_ArrayForEach(e, get(o, "pretokenizers"))
		{
			if ((rc = add_pretokenizer(t, e, err, errlen)))
				return rc;
		}
		return 0;
	}
	if (t->n_pre == TOK_MAX_STEPS)
		return UNSUP("%s: more than %d pre-tokenizers", t->path, TOK_MAX_STEPS);
	struct tok_pre *p = &t->pre[t->n_pre];
	if (!strcmp(type, "Split")) {
		const cJSON *pat = get(o, "pattern");
		const char *re = get_str(pat, "Regex"), *lit = get_str(pat, "String");
		const char *b = get_str(o, "behavior");
		if (!re && !lit)
			return BAD("%s: Split pre-tokenizer without a Regex or String pattern", t->path);
		if (get_bool(o, "invert", 0))
			return UNSUP("%s: Split pre-tokenizer with invert true is not supported", t->path);
		if (!b || !strcmp(b, "Isolated"))
			p->behavior = SPLIT_ISOLATED;
		else if (!strcmp(b, "Removed"))
			p->behavior = SPLIT_REMOVED;
		else if (!strcmp(b, "MergedWithPrevious"))
			p->behavior = SPLIT_MERGED_PREV;
		else if (!strcmp(b, "MergedWithNext"))
			p->behavior = SPLIT_MERGED_NEXT;
		else
			return UNSUP("%s: Split behavior \"%s\" is not supported", t->path, b);
		p->kind = PRE_SPLIT;
		if ((rc = compile(t, &p->re, re ? re : lit, !re, err, errlen)))
			return rc;
	} else if (!strcmp(type, "ByteLevel")) {
		p->kind = PRE_BYTELEVEL;
		p->add_prefix_space = get_bool(o, "add_prefix_space", 1);
		if (get_bool(o, "use_regex", 1) && (rc = compile(t, &p->re, GPT2_PATTERN, 0, err, errlen)))
			return rc;
		t->byte_level = 1;
	} else if (!strcmp(type, "Metaspace")) {
		p->kind = PRE_METASPACE;
		p->prepend_scheme = prepend_scheme(o);
		p->split = get_bool(o, "split", 1);
		if ((rc = set_repl(t, p->repl, o, "replacement", "\xe2\x96\x81", err, errlen)))
			return rc;
	} else {
		return UNSUP("%s: pre_tokenizer \"%s\" is not supported (Split, ByteLevel, Metaspace are)", t->path,
			     type);
	}
	t->n_pre++;
	return 0;
}

static int add_decoder(awq_tokenizer *t, const cJSON *o, char *err, size_t errlen)
{
	const char *type = get_str(o, "type");
	if (!type)
		return BAD("%s: a decoder has no \"type\"", t->path);
	if (!strcmp(type, "Sequence")) {
		const cJSON *e;
		cJSON_ArrayForEach(e, get(o, "decoders"))
		{
			int rc = add_decoder(t, e, err, errlen);
			if (rc)
				return rc;
		}
		return 0;
	}
	if (t->n_dec == TOK_MAX_STEPS)
		return UNSUP("%s: more than %d decoders", t->path, TOK_MAX_STEPS);
	struct tok_dec *d = &t->dec[t->n_dec];
	if (!strcmp(type, "ByteLevel")) {
		d->kind = DEC_BYTELEVEL;
	} else if (!strcmp(type, "ByteFallback")) {
		d->kind = DEC_BYTEFALLBACK;
	} else if (!strcmp(type, "Fuse")) {
		d->kind = DEC_FUSE;
	} else if (!strcmp(type, "Replace")) {
		const char *p = string_pattern(o), *c = get_str(o, "content");
		if (!p || !c || !*p)
			return UNSUP("%s: Replace decoder needs a non-empty {\"String\": ...} pattern and a content", t->path);
		d->kind = DEC_REPLACE;
		if (!(d->a = strdup(p)) || !(d->b = strdup(c)))
			return AWQ_ENOMEM;
	} else if (!strcmp(type, "Strip")) {
		d->kind = DEC_STRIP;
		d->start = get_int(o, "start", 0);
		d->stop = get_int(o, "stop", 0);
		int rc = set_repl(t, d->repl, o, "content", " ", err, errlen);
		if (rc)
			return rc;
	} else if (!strcmp(type, "Metaspace")) {
		d->kind = DEC_METASPACE;
		d->prepend_scheme = prepend_scheme(o);
		int rc = set_repl(t, d->repl, o, "replacement", "\xe2\x96\x81", err, errlen);
		if (rc)
			return rc;
	} else {
		return UNSUP("%s: decoder \"%s\" is not supported (ByteLevel, ByteFallback, Fuse, Replace, Strip, "
			     "Metaspace are)", t->path, type);
	}
	t->n_dec++;
	return 0;
}

/* TemplateProcessing's "single" template: special tokens before and after the sequence. */
static int add_post(awq_tokenizer *t, const cJSON *o, char *err, size_t errlen)
{
	const char *type = get_str(o, "type");
	if (!type)
		return BAD("%s: the post_processor has no \"type\"", t->path);
	if (!strcmp(type, "Sequence")) {
		const cJSON *e;
		cJSON_ArrayForEach(e, get(o, "processors"))
		{
			int rc = add_post(t, e, err, errlen);
			if (rc)
				return rc;
		}
		return 0;
	}
	if (!strcmp(type, "ByteLevel"))
		return 0; /* only adjusts offsets */
	if (strcmp(type, "TemplateProcessing"))
		return UNSUP("%s: post_processor \"%s\" is not supported (TemplateProcessing, ByteLevel are)", t->path,
			     type);
	const cJSON *e, *specials = get(o, "special_tokens");
	int seen_seq = 0;
	cJSON_ArrayForEach(e, get(o, "single"))
	{
		if (get(e, "Sequence")) {
			seen_seq = 1;
			continue;
		}
		const char *name = get_str(get(e, "SpecialToken"), "id");
		const cJSON *ids = name ? get(get(specials, name), "ids") : NULL, *id;
		if (!cJSON_IsArray(ids))
			return BAD("%s: post_processor special token \"%s\" has no ids", t->path, name ? name : "?");
		cJSON_ArrayForEach(id, ids)
		{
			int32_t *dst = seen_seq ? t->post_suffix : t->post_prefix;
			int *n = seen_seq ? &t->n_post_suffix : &t->n_post_prefix;
			if (*n == 4 || !cJSON_IsNumber(id))
				return UNSUP("%s: post_processor template is longer than supported", t->path);
			dst[(*n)++] = (int32_t)id->valueint;
		}
	}
	return 0;
}

static int set_token(awq_tokenizer *t, int32_t id, const char *s)
{
	if (t->vocab[id] && !strcmp(t->vocab[id], s))
		return 0;
	free(t->vocab[id]);
	return (t->vocab[id] = strdup(s)) ? 0 : -1;
}

static int load_model(awq_tokenizer *t, const cJSON *root, char *err, size_t errlen)
{
	const cJSON *model = get(root, "model"), *vocab = get(model, "vocab"), *merges = get(model, "merges");
	const cJSON *added = get(root, "added_tokens"), *e;
	const char *type = get_str(model, "type");
	if (!cJSON_IsObject(model))
		return BAD("%s: no \"model\" object", t->path);
	if (type && strcmp(type, "BPE"))
		return UNSUP("%s: model type \"%s\" is not supported (only BPE is)", t->path, type);
	if (!cJSON_IsObject(vocab) || !cJSON_IsArray(merges))
		return BAD("%s: the BPE model needs a \"vocab\" object and a \"merges\" array", t->path);
	if (get_str(model, "continuing_subword_prefix") || get_str(model, "end_of_word_suffix"))
		return UNSUP("%s: BPE with continuing_subword_prefix/end_of_word_suffix is not supported", t->path);
	int max_id = -1;
	cJSON_ArrayForEach(e, vocab)
	{
		if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble > 16777216)
			return BAD("%s: vocab entry \"%s\" has no valid id", t->path, e->string);
		max_id = e->valueint > max_id ? e->valueint : max_id;
	}
	cJSON_ArrayForEach(e, added)
	{
		const cJSON *id = get(e, "id");
		if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble > 16777216 || !get_str(e, "content"))
			return BAD("%s: an added token has no valid id or content", t->path);
		max_id = id->valueint > max_id ? id->valueint : max_id;
		t->n_added++;
	}
	if (max_id < 0)
		return BAD("%s: the vocabulary is empty", t->path);
	t->n_vocab = max_id + 1;
	t->vocab = calloc((size_t)t->n_vocab, sizeof(*t->vocab));
	t->is_special = calloc((size_t)t->n_vocab, 1);
	t->added = calloc((size_t)t->n_added + 1, sizeof(*t->added));
	if (!t->vocab || !t->is_special || !t->added)
		return AWQ_ENOMEM;
	cJSON_ArrayForEach(e, vocab)
	{
		if (set_token(t, e->valueint, e->string))
			return AWQ_ENOMEM;
	}
	int i = 0;
	cJSON_ArrayForEach(e, added)
	{
		struct tok_added *a = &t->added[i++];
		a->id = get(e, "id")->valueint;
		/* an earlier added token keeps a pointer to its vocabulary string: a second one with the
		 * same id would replace (free) it */
		for (int j = 0; j < i - 1; j++)
			if (t->added[j].id == a->id)
				return BAD("%s: added tokens \"%s\" and \"%s\" have the same id %d", t->path,
					   t->added[j].content, get_str(e, "content"), a->id);
		if (set_token(t, a->id, get_str(e, "content")))
			return AWQ_ENOMEM;
		if (get_bool(e, "single_word", 0))
			return UNSUP("%s: added token \"%s\" has single_word true, which is not supported", t->path,
				     get_str(e, "content"));
		a->content = t->vocab[a->id];
		a->len = strlen(a->content);
		a->special = get_bool(e, "special", 0);
		a->normalized = get_bool(e, "normalized", !a->special);
		a->lstrip = get_bool(e, "lstrip", 0);
		a->rstrip = get_bool(e, "rstrip", 0);
		t->is_special[a->id] = (unsigned char)a->special;
		if (!a->len)
			return BAD("%s: added token %d is empty", t->path, a->id);
	}
	if (tok_strmap_build(&t->map, t->vocab, t->n_vocab))
		return AWQ_ENOMEM;
	const char *unk = get_str(model, "unk_token");
	t->unk = unk ? tok_strmap_get(&t->map, t->vocab, unk, strlen(unk)) : -1;
	t->byte_fallback = get_bool(model, "byte_fallback", 0);
	t->fuse_unk = get_bool(model, "fuse_unk", 0);
	t->ignore_merges = get_bool(model, "ignore_merges", 0);
	for (int b = 0; b < 256; b++) {
		char name[8];
		snprintf(name, sizeof(name), "<0x%02X>", (unsigned)b);
		t->byte_token[b] = tok_strmap_get(&t->map, t->vocab, name, 6);
	}
	if (tok_pairmap_init(&t->merges, (size_t)cJSON_GetArraySize(merges)))
		return AWQ_ENOMEM;
	int rank = 0;
	cJSON_ArrayForEach(e, merges)
	{
		const char *a, *b;
		char buf[1024];
		if (cJSON_IsString(e)) { /* "left right" */
			const char *sp = strchr(e->valuestring + 1, ' ');
			size_t n = strlen(e->valuestring);
			if (!sp || n >= sizeof(buf))
				return BAD("%s: merge %d \"%s\" is not \"left right\"", t->path, rank, e->valuestring);
			memcpy(buf, e->valuestring, n + 1);
			buf[sp - e->valuestring] = 0;
			a = buf;
			b = buf + (sp - e->valuestring) + 1;
		} else if (cJSON_GetArraySize(e) == 2 && cJSON_IsString(cJSON_GetArrayItem(e, 0)) &&
			   cJSON_IsString(cJSON_GetArrayItem(e, 1))) {
			a = cJSON_GetArrayItem(e, 0)->valuestring;
			b = cJSON_GetArrayItem(e, 1)->valuestring;
		} else {
			return BAD("%s: merge %d is neither \"left right\" nor [left, right]", t->path, rank);
		}
		size_t la = strlen(a), lb = strlen(b);
		char *ab = malloc(la + lb + 1);
		if (!ab)
			return AWQ_ENOMEM;
		memcpy(ab, a, la);
		memcpy(ab + la, b, lb + 1);
		int32_t ia = tok_strmap_get(&t->map, t->vocab, a, la), ib = tok_strmap_get(&t->map, t->vocab, b, lb);
		int32_t im = tok_strmap_get(&t->map, t->vocab, ab, la + lb);
		if (ia < 0 || ib < 0 || im < 0) {
			int rc = BAD("%s: merge %d (\"%s\" + \"%s\") uses a token that is not in the vocabulary", t->path,
				     rank, a, b);
			free(ab);
			return rc;
		}
		free(ab);
		tok_pairmap_put(&t->merges, ia, ib, rank, im);
		rank++;
	}
	return 0;
}

int tok_load_pipeline(awq_tokenizer *t, const void *root_json, char *err, size_t errlen)
{
	const cJSON *root = root_json, *o;
	int rc = load_model(t, root, err, errlen);
	if (!rc && (o = get(root, "normalizer")))
		rc = add_normalizer(t, o, err, errlen);
	if (!rc && (o = get(root, "pre_tokenizer")))
		rc = add_pretokenizer(t, o, err, errlen);
	if (!rc && (o = get(root, "post_processor")))
		rc = add_post(t, o, err, errlen);
	if (!rc && (o = get(root, "decoder")))
		rc = add_decoder(t, o, err, errlen);
	if (rc == AWQ_ENOMEM)
		awq_err(err, errlen, rc, "%s: out of memory loading the tokenizer", t->path);
	return rc;
}
