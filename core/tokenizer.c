/* Tokenizer files: tokenizer.json (the pipeline, tokenizer_load.c), tokenizer_config.json (chat
 * template, BOS/EOS), chat_template.jinja (newer transformers save the template there) and
 * generation_config.json (the EOS ids generation stops at). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "tokenizer_impl.h"

/* Read a whole file; AWQ_EIO with a message naming it when it cannot be read. */
static int read_file(const char *path, char **out, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0, cap = 0;
	if (!f)
		return awq_err(err, errlen, AWQ_EIO, "%s: cannot open (%s)", path, strerror(errno));
	for (;;) {
		if (cap - n < 65536) {
			cap = cap ? cap * 2 : 1 << 20;
			char *nb = realloc(buf, cap + 1);
			if (!nb) {
				free(buf);
				fclose(f);
				return awq_err(err, errlen, AWQ_ENOMEM, "%s: out of memory reading it", path);
			}
			buf = nb;
		}
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	int bad = ferror(f);
	fclose(f);
	if (bad) {
		free(buf);
		return awq_err(err, errlen, AWQ_EIO, "%s: read error", path);
	}
	buf[n] = 0;
	*out = buf;
	if (len)
		*len = n;
	return 0;
}

static int parse_json(const char *path, cJSON **out, char *err, size_t errlen)
{
	char *text;
	size_t len;
	int rc = read_file(path, &text, &len, err, errlen);
	if (rc)
		return rc;
	const char *end = NULL;
	*out = cJSON_ParseWithLengthOpts(text, len, &end, 0);
	if (!*out) {
		long at = end ? (long)(end - text) : -1;
		free(text);
		return awq_err(err, errlen, AWQ_EFORMAT, "%s: invalid JSON near byte %ld", path, at);
	}
	free(text);
	return 0;
}

/* "bos_token": "<s>" or {"content": "<s>", ...}. */
static const char *token_text(const cJSON *v)
{
	if (cJSON_IsString(v))
		return v->valuestring;
	v = cJSON_GetObjectItemCaseSensitive(v, "content");
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int load_config(awq_tokenizer *t, const char *path, char *err, size_t errlen)
{
	cJSON *root;
	int rc = parse_json(path, &root, err, errlen);
	if (rc)
		return rc;
	const cJSON *tpl = cJSON_GetObjectItemCaseSensitive(root, "chat_template"), *e;
	if (cJSON_IsArray(tpl)) { /* [{"name": "default", "template": ...}, ...] */
		cJSON_ArrayForEach(e, tpl)
		{
			const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "name");
			if (cJSON_IsString(name) && !strcmp(name->valuestring, "default"))
				tpl = cJSON_GetObjectItemCaseSensitive(e, "template");
		}
	}
	if (cJSON_IsString(tpl) && !(t->chat_template = strdup(tpl->valuestring)))
		rc = AWQ_ENOMEM;
	const char *bos = token_text(cJSON_GetObjectItemCaseSensitive(root, "bos_token"));
	const char *eos = token_text(cJSON_GetObjectItemCaseSensitive(root, "eos_token"));
	if (bos && (t->bos = awq_tokenizer_token_to_id(t, bos)) >= 0 && !(t->bos_text = strdup(bos)))
		rc = AWQ_ENOMEM;
	if (eos)
		t->eos = awq_tokenizer_token_to_id(t, eos);
	cJSON_Delete(root);
	return rc ? awq_err(err, errlen, rc, "%s: out of memory", path) : 0;
}

int awq_tokenizer_load_files(const char *json_path, const char *config_path, awq_tokenizer **out, char *err,
			     size_t errlen)
{
	awq_tokenizer *t = calloc(1, sizeof(*t));
	cJSON *root = NULL;
	int rc;
	if (!t)
		return awq_err(err, errlen, AWQ_ENOMEM, "out of memory loading a tokenizer");
	t->bos = t->eos = t->unk = -1;
	if (snprintf(t->path, sizeof(t->path), "%s", json_path) >= (int)sizeof(t->path))
		memcpy(t->path + sizeof(t->path) - 4, "...", 4);
	rc = parse_json(json_path, &root, err, errlen);
	if (!rc && !cJSON_IsObject(root))
		rc = awq_err(err, errlen, AWQ_EFORMAT, "%s: not a tokenizer (the top level is not an object)", json_path);
	if (!rc)
		rc = tok_load_pipeline(t, root, err, errlen);
	cJSON_Delete(root);
	if (!rc && config_path)
		rc = load_config(t, config_path, err, errlen);
	if (rc) {
		awq_tokenizer_free(t);
		return rc;
	}
	*out = t;
	return 0;
}

static int join(char *buf, size_t len, const char *dir, const char *name)
{
	return snprintf(buf, len, "%s/%s", dir, name) < (int)len ? 0 : -1;
}

static int exists(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (f)
		fclose(f);
	return f != NULL;
}

/* generation_config.json's sampling fields, each checked against the range the sampler takes. */
static int load_sampling(awq_tokenizer *t, const cJSON *root, const char *path, char *err, size_t errlen)
{
	static const struct {
		const char *key;
		unsigned bit;
	} f[] = {
		{"temperature", AWQ_GEN_TEMPERATURE}, {"top_k", AWQ_GEN_TOP_K}, {"top_p", AWQ_GEN_TOP_P},
		{"min_p", AWQ_GEN_MIN_P},	      {"repetition_penalty", AWQ_GEN_REPEAT_PENALTY},
	};
	/* what vLLM uses for a field the file leaves out: no truncation, temperature 1 */
	awq_sampler_opts_default(&t->gen);
	t->gen.temperature = 1.0f;
	t->gen.top_k = 0;
	t->gen.top_p = 1.0f;
	t->gen.min_p = 0.0f;
	t->gen.repeat_penalty = 1.0f;
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, f[i].key);
		if (!v || cJSON_IsNull(v))
			continue;
		double lo = 0, hi = 0;
		awq_sampling_range(f[i].bit, &lo, &hi);
		if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi))
			return awq_err(err, errlen, AWQ_EFORMAT, "%s: \"%s\" must be a number from %g to %g", path, f[i].key,
				       lo, hi);
		double d = v->valuedouble;
		switch (f[i].bit) {
		case AWQ_GEN_TEMPERATURE: t->gen.temperature = (float)d; break;
		case AWQ_GEN_TOP_K: t->gen.top_k = (int)d; break;
		case AWQ_GEN_TOP_P: t->gen.top_p = (float)d; break;
		case AWQ_GEN_MIN_P: t->gen.min_p = (float)d; break;
		default: t->gen.repeat_penalty = (float)d; break;
		}
		t->gen_set |= f[i].bit;
	}
	return 0;
}

unsigned awq_tokenizer_sampling_defaults(const awq_tokenizer *t, unsigned keep, struct awq_sampler_opts *o)
{
	const unsigned all = AWQ_GEN_TEMPERATURE | AWQ_GEN_TOP_K | AWQ_GEN_TOP_P | AWQ_GEN_MIN_P | AWQ_GEN_REPEAT_PENALTY;
	unsigned use = t->gen_set ? all & ~keep : 0;
	if (use & AWQ_GEN_TEMPERATURE)
		o->temperature = t->gen.temperature;
	if (use & AWQ_GEN_TOP_K)
		o->top_k = t->gen.top_k;
	if (use & AWQ_GEN_TOP_P)
		o->top_p = t->gen.top_p;
	if (use & AWQ_GEN_MIN_P)
		o->min_p = t->gen.min_p;
	if (use & AWQ_GEN_REPEAT_PENALTY)
		o->repeat_penalty = t->gen.repeat_penalty;
	return use;
}

/* generation_config.json's eos_token_id: an id or a list of ids. A missing file is fine. */
static int load_generation_config(awq_tokenizer *t, const char *path, char *err, size_t errlen)
{
	cJSON *root;
	if (!exists(path))
		return 0;
	int rc = parse_json(path, &root, err, errlen);
	if (rc)
		return rc;
	rc = load_sampling(t, root, path, err, errlen);
	if (rc) {
		cJSON_Delete(root);
		return rc;
	}
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "eos_token_id"), *x;
	if (cJSON_IsNumber(e))
		t->stop[t->n_stop++] = (int32_t)e->valueint;
	if (cJSON_IsArray(e)) {
		cJSON_ArrayForEach(x, e)
		{
			if (cJSON_IsNumber(x) && t->n_stop < 8)
				t->stop[t->n_stop++] = (int32_t)x->valueint;
		}
	}
	cJSON_Delete(root);
	return 0;
}

int awq_tokenizer_load(const char *dir, awq_tokenizer **out, char *err, size_t errlen)
{
	char json[4096], cfg[4096], jinja[4096], gen[4096];
	if (join(json, sizeof(json), dir, "tokenizer.json") || join(cfg, sizeof(cfg), dir, "tokenizer_config.json") ||
	    join(jinja, sizeof(jinja), dir, "chat_template.jinja") ||
	    join(gen, sizeof(gen), dir, "generation_config.json"))
		return awq_err(err, errlen, AWQ_EINVAL, "model directory path is too long");
	if (!exists(json))
		return awq_err(err, errlen, AWQ_EIO,
			       "%s: missing; awqrun needs the Hugging Face tokenizer.json (fast tokenizer) next to the model",
			       json);
	*out = NULL;
	int rc = awq_tokenizer_load_files(json, exists(cfg) ? cfg : NULL, out, err, errlen);
	if (!rc && !(*out)->chat_template && exists(jinja))
		rc = read_file(jinja, &(*out)->chat_template, NULL, err, errlen);
	if (!rc)
		rc = load_generation_config(*out, gen, err, errlen);
	if (rc && *out) {
		awq_tokenizer_free(*out);
		*out = NULL;
	}
	return rc;
}

void awq_tokenizer_free(awq_tokenizer *t)
{
	if (!t)
		return;
	for (int i = 0; i < t->n_vocab; i++)
		free(t->vocab[i]);
	free(t->vocab);
	free(t->is_special);
	free(t->added);
	tok_strmap_free(&t->map);
	tok_pairmap_free(&t->merges);
	for (int i = 0; i < t->n_norm; i++) {
		free(t->norm[i].a);
		free(t->norm[i].b);
	}
	for (int i = 0; i < t->n_pre; i++)
		pcre2_code_free(t->pre[i].re);
	for (int i = 0; i < t->n_dec; i++) {
		free(t->dec[i].a);
		free(t->dec[i].b);
	}
	free(t->chat_template);
	free(t->bos_text);
	free(t);
}

int awq_tokenizer_vocab_size(const awq_tokenizer *t)
{
	return t->n_vocab;
}

const char *awq_tokenizer_id_to_token(const awq_tokenizer *t, int32_t id)
{
	return id >= 0 && id < t->n_vocab ? t->vocab[id] : NULL;
}

int32_t awq_tokenizer_token_to_id(const awq_tokenizer *t, const char *token)
{
	return tok_strmap_get(&t->map, t->vocab, token, strlen(token));
}

int awq_tokenizer_is_special(const awq_tokenizer *t, int32_t id)
{
	return id >= 0 && id < t->n_vocab && t->is_special[id];
}

const char *awq_tokenizer_chat_template(const awq_tokenizer *t)
{
	return t->chat_template;
}

int32_t awq_tokenizer_bos(const awq_tokenizer *t)
{
	return t->bos;
}

int32_t awq_tokenizer_eos(const awq_tokenizer *t)
{
	return t->eos;
}

int awq_tokenizer_stop_ids(const awq_tokenizer *t, int32_t *ids, int max)
{
	int n = 0;
	for (int i = 0; i < t->n_stop && n < max; i++)
		ids[n++] = t->stop[i];
	if (t->eos >= 0 && n < max) {
		int dup_id = 0;
		for (int i = 0; i < n; i++)
			dup_id |= ids[i] == t->eos;
		if (!dup_id)
			ids[n++] = t->eos;
	}
	return n;
}

const char *awq_tokenizer_bos_text(const awq_tokenizer *t)
{
	return t->bos_text ? t->bos_text : "";
}
