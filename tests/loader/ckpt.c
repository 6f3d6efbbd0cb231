#define _POSIX_C_SOURCE 200809L

#include "ckpt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint32_t tw_rand(struct tw *w)
{
	w->rng ^= w->rng << 13;
	w->rng ^= w->rng >> 7;
	w->rng ^= w->rng << 17;
	return (uint32_t)(w->rng >> 16);
}

void tw_init(struct tw *w, uint64_t seed)
{
	memset(w, 0, sizeof(*w));
	w->rng = seed * 0x9e3779b97f4a7c15ull + 1;
}

void tw_free(struct tw *w)
{
	for (int i = 0; i < w->n; i++)
		free(w->t[i].data);
	free(w->t);
	memset(w, 0, sizeof(*w));
}

static void fill_random(struct tw *w, struct tw_tensor *t)
{
	size_t esz = awq_dtype_size(t->dt), n = t->bytes / esz;
	for (size_t i = 0; i < n; i++) {
		float f = (float)((int)(tw_rand(w) % 2001) - 1000) / 1000.0f;
		if (f == 0.0f)
			f = 0.5f;
		uint16_t h;
		uint32_t u = tw_rand(w) ^ (tw_rand(w) << 16);
		switch (t->dt) {
		case AWQ_DT_F32: memcpy(t->data + 4 * i, &f, 4); break;
		case AWQ_DT_F16: h = awq_f32_to_f16(f); memcpy(t->data + 2 * i, &h, 2); break;
		case AWQ_DT_BF16: h = awq_f32_to_bf16(f); memcpy(t->data + 2 * i, &h, 2); break;
		default:
			for (size_t b = 0; b < esz; b++)
				t->data[i * esz + b] = (uint8_t)(u >> (8 * (b % 4)));
		}
	}
}

static void alloc_data(struct tw *w, struct tw_tensor *t)
{
	size_t n = 1;
	for (int i = 0; i < t->nd; i++)
		n *= (size_t)t->shape[i];
	t->bytes = n * awq_dtype_size(t->dt);
	t->data = malloc(t->bytes ? t->bytes : 1);
	if (!t->data) {
		fprintf(stderr, "test: out of memory\n");
		exit(1);
	}
	fill_random(w, t);
}

struct tw_tensor *tw_add(struct tw *w, const char *name, enum awq_dtype dt, int nd, int64_t d0,
			 int64_t d1)
{
	if (w->n == w->cap) {
		w->cap = w->cap ? 2 * w->cap : 64;
		w->t = realloc(w->t, (size_t)w->cap * sizeof(*w->t));
		if (!w->t) {
			fprintf(stderr, "test: out of memory\n");
			exit(1);
		}
	}
	struct tw_tensor *t = &w->t[w->n++];
	memset(t, 0, sizeof(*t));
	snprintf(t->name, sizeof(t->name), "%s", name);
	t->dt = dt;
	t->nd = nd;
	t->shape[0] = d0;
	t->shape[1] = d1;
	alloc_data(w, t);
	return t;
}

struct tw_tensor *tw_find(struct tw *w, const char *name)
{
	for (int i = 0; i < w->n; i++)
		if (strcmp(w->t[i].name, name) == 0)
			return &w->t[i];
	return NULL;
}

int tw_remove(struct tw *w, const char *name)
{
	struct tw_tensor *t = tw_find(w, name);
	if (!t)
		return -1;
	free(t->data);
	*t = w->t[--w->n];
	return 0;
}

void tw_reshape(struct tw *w, struct tw_tensor *t, enum awq_dtype dt, int nd, int64_t d0,
		int64_t d1)
{
	free(t->data);
	t->dt = dt;
	t->nd = nd;
	t->shape[0] = d0;
	t->shape[1] = d1;
	alloc_data(w, t);
}

int write_bytes(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	size_t n = len ? fwrite(data, 1, len, f) : 0;
	return (fclose(f) == 0 && n == len) ? 0 : -1;
}

int write_json(const char *path, const cJSON *obj)
{
	char *s = cJSON_Print(obj);
	if (!s)
		return -1;
	int rc = write_bytes(path, s, strlen(s));
	free(s);
	return rc;
}

int write_raw_st(const char *path, const char *header, const void *data, size_t len)
{
	size_t hl = strlen(header);
	uint8_t *buf = malloc(8 + hl + len + 1);
	if (!buf)
		return -1;
	for (int i = 0; i < 8; i++)
		buf[i] = (uint8_t)((uint64_t)hl >> (8 * i));
	memcpy(buf + 8, header, hl);
	if (len)
		memcpy(buf + 8 + hl, data, len);
	int rc = write_bytes(path, buf, 8 + hl + len);
	free(buf);
	return rc;
}

static int cmp_layout(const void *a, const void *b)
{
	const struct tw_tensor *x = *(struct tw_tensor *const *)a, *y = *(struct tw_tensor *const *)b;
	size_t sx = awq_dtype_size(x->dt), sy = awq_dtype_size(y->dt);
	if (sx != sy)
		return sx > sy ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* Writes the tensors of one shard (all when shard < 0). */
static int write_file(const struct tw *w, const char *path, int shard)
{
	struct tw_tensor **ord = malloc(((size_t)w->n + 1) * sizeof(*ord));
	cJSON *hdr = cJSON_CreateObject(), *meta = cJSON_AddObjectToObject(hdr, "__metadata__");
	int n = 0, rc = -1;
	cJSON_AddStringToObject(meta, "format", "pt");
	for (int i = 0; i < w->n; i++)
		if (shard < 0 || w->t[i].shard == shard)
			ord[n++] = &w->t[i];
	qsort(ord, (size_t)n, sizeof(*ord), cmp_layout);
	size_t off = 0;
	for (int i = 0; i < n; i++) {
		cJSON *e = cJSON_AddObjectToObject(hdr, ord[i]->name);
		cJSON_AddStringToObject(e, "dtype", awq_dtype_name(ord[i]->dt));
		cJSON *shape = cJSON_AddArrayToObject(e, "shape");
		for (int d = 0; d < ord[i]->nd; d++)
			cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)ord[i]->shape[d]));
		cJSON *offs = cJSON_AddArrayToObject(e, "data_offsets");
		cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
		off += ord[i]->bytes;
		cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
	}
	char *js = cJSON_PrintUnformatted(hdr);
	size_t hl = strlen(js), padded = (hl + 7) / 8 * 8;
	uint8_t *buf = calloc(1, 8 + padded + off + 1);
	if (buf) {
		for (int i = 0; i < 8; i++)
			buf[i] = (uint8_t)((uint64_t)padded >> (8 * i));
		memset(buf + 8, ' ', padded);
		memcpy(buf + 8, js, hl);
		size_t at = 8 + padded;
		for (int i = 0; i < n; i++) {
			memcpy(buf + at, ord[i]->data, ord[i]->bytes);
			at += ord[i]->bytes;
		}
		rc = write_bytes(path, buf, at);
	}
	free(buf);
	free(js);
	free(ord);
	cJSON_Delete(hdr);
	return rc;
}

int tw_write(const struct tw *w, const char *path)
{
	return write_file(w, path, -1);
}

cJSON *tw_write_shards(const struct tw *w, const char *dir, int n_shards)
{
	cJSON *idx = cJSON_CreateObject();
	cJSON_AddNumberToObject(cJSON_AddObjectToObject(idx, "metadata"), "total_size", 0);
	cJSON *wm = cJSON_AddObjectToObject(idx, "weight_map");
	for (int s = 0; s < n_shards; s++) {
		char name[64], path[1200];
		snprintf(name, sizeof(name), "model-%05d-of-%05d.safetensors", s + 1, n_shards);
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		if (write_file(w, path, s)) {
			cJSON_Delete(idx);
			return NULL;
		}
		for (int i = 0; i < w->n; i++)
			if (w->t[i].shard == s)
				cJSON_AddStringToObject(wm, w->t[i].name, name);
	}
	return idx;
}

void spec_default(struct spec *s, const char *arch)
{
	memset(s, 0, sizeof(*s));
	s->arch = arch;
	s->hidden = 16;
	s->layers = 2;
	s->heads = 2;
	s->kv = 1;
	s->inter = 32;
	s->vocab = 24;
	s->dt = AWQ_DT_BF16;
	s->group = 8;
	s->zero_point = 1;
}

static cJSON *quant_object(const struct spec *s)
{
	cJSON *q = cJSON_CreateObject();
	if (s->old_quant_file) {
		cJSON_AddNumberToObject(q, "w_bit", 4);
		cJSON_AddNumberToObject(q, "q_group_size", s->group);
		cJSON_AddBoolToObject(q, "zero_point", s->zero_point);
		cJSON_AddStringToObject(q, "version", "GEMM");
		return q;
	}
	cJSON_AddStringToObject(q, "quant_method", "awq");
	cJSON_AddNumberToObject(q, "bits", 4);
	cJSON_AddNumberToObject(q, "group_size", s->group);
	cJSON_AddBoolToObject(q, "zero_point", s->zero_point);
	cJSON_AddStringToObject(q, "version", "gemm");
	if (s->not_convert) {
		cJSON *l = cJSON_AddArrayToObject(q, "modules_to_not_convert");
		cJSON_AddItemToArray(l, cJSON_CreateString(s->not_convert));
	} else {
		cJSON_AddNullToObject(q, "modules_to_not_convert");
	}
	return q;
}

cJSON *spec_config(const struct spec *s)
{
	cJSON *c = cJSON_CreateObject();
	cJSON *a = cJSON_AddArrayToObject(c, "architectures");
	cJSON_AddItemToArray(a, cJSON_CreateString(s->arch));
	cJSON_AddNumberToObject(c, "hidden_size", s->hidden);
	cJSON_AddNumberToObject(c, "num_hidden_layers", s->layers);
	cJSON_AddNumberToObject(c, "num_attention_heads", s->heads);
	cJSON_AddNumberToObject(c, "num_key_value_heads", s->kv);
	if (s->head_dim)
		cJSON_AddNumberToObject(c, "head_dim", s->head_dim);
	cJSON_AddNumberToObject(c, "intermediate_size", s->inter);
	cJSON_AddNumberToObject(c, "vocab_size", s->vocab);
	cJSON_AddNumberToObject(c, "max_position_embeddings", 128);
	cJSON_AddNumberToObject(c, "rms_norm_eps", 1e-6);
	cJSON_AddNumberToObject(c, "rope_theta", 1000000.0);
	cJSON_AddNullToObject(c, "rope_scaling");
	cJSON_AddBoolToObject(c, "tie_word_embeddings", s->tie);
	cJSON_AddBoolToObject(c, "attention_bias", 0);
	cJSON_AddStringToObject(c, "hidden_act", "silu");
	cJSON_AddStringToObject(c, "torch_dtype", s->dt == AWQ_DT_F16	 ? "float16"
						  : s->dt == AWQ_DT_F32 ? "float32"
									 : "bfloat16");
	cJSON_AddNumberToObject(c, "bos_token_id", 1);
	cJSON_AddNumberToObject(c, "eos_token_id", 2);
	if (s->awq && !s->old_quant_file)
		cJSON_AddItemToObject(c, "quantization_config", quant_object(s));
	return c;
}

static void add_linear(const struct spec *s, struct tw *w, const char *base, int n, int k,
		       int bias)
{
	char t[160];
	int quant = s->awq && !(s->not_convert && strstr(base, s->not_convert));
	if (quant) {
		snprintf(t, sizeof(t), "%s.qweight", base);
		tw_add(w, t, AWQ_DT_I32, 2, k, n / 8);
		if (!s->omit_qzeros) {
			snprintf(t, sizeof(t), "%s.qzeros", base);
			tw_add(w, t, AWQ_DT_I32, 2, k / s->group, n / 8);
		}
		snprintf(t, sizeof(t), "%s.scales", base);
		tw_add(w, t, AWQ_DT_F16, 2, k / s->group, n);
	} else {
		snprintf(t, sizeof(t), "%s.weight", base);
		tw_add(w, t, s->awq ? AWQ_DT_F16 : s->dt, 2, n, k);
	}
	if (bias) {
		snprintf(t, sizeof(t), "%s.bias", base);
		tw_add(w, t, s->awq ? AWQ_DT_F16 : s->dt, 1, n, 0);
	}
}

static void add_vector(const struct spec *s, struct tw *w, const char *base, int n)
{
	char t[160];
	snprintf(t, sizeof(t), "%s.weight", base);
	tw_add(w, t, s->awq ? AWQ_DT_F16 : s->dt, 1, n, 0);
}

void spec_tensors(const struct spec *s, struct tw *w)
{
	int hd = s->head_dim ? s->head_dim : s->hidden / s->heads;
	int qkv_bias = strcmp(s->arch, "Qwen2ForCausalLM") == 0;
	int qk_norm = strcmp(s->arch, "Qwen3ForCausalLM") == 0;
	enum awq_dtype dt = s->awq ? AWQ_DT_F16 : s->dt;
	char b[128];
	tw_add(w, "model.embed_tokens.weight", dt, 2, s->vocab, s->hidden);
	for (int i = 0; i < s->layers; i++) {
		snprintf(b, sizeof(b), "model.layers.%d.input_layernorm", i);
		add_vector(s, w, b, s->hidden);
		snprintf(b, sizeof(b), "model.layers.%d.post_attention_layernorm", i);
		add_vector(s, w, b, s->hidden);
		snprintf(b, sizeof(b), "model.layers.%d.self_attn.q_proj", i);
		add_linear(s, w, b, s->heads * hd, s->hidden, qkv_bias);
		snprintf(b, sizeof(b), "model.layers.%d.self_attn.k_proj", i);
		add_linear(s, w, b, s->kv * hd, s->hidden, qkv_bias);
		snprintf(b, sizeof(b), "model.layers.%d.self_attn.v_proj", i);
		add_linear(s, w, b, s->kv * hd, s->hidden, qkv_bias);
		snprintf(b, sizeof(b), "model.layers.%d.self_attn.o_proj", i);
		add_linear(s, w, b, s->hidden, s->heads * hd, 0);
		if (qk_norm) {
			snprintf(b, sizeof(b), "model.layers.%d.self_attn.q_norm", i);
			add_vector(s, w, b, hd);
			snprintf(b, sizeof(b), "model.layers.%d.self_attn.k_norm", i);
			add_vector(s, w, b, hd);
		}
		snprintf(b, sizeof(b), "model.layers.%d.mlp.gate_proj", i);
		add_linear(s, w, b, s->inter, s->hidden, 0);
		snprintf(b, sizeof(b), "model.layers.%d.mlp.up_proj", i);
		add_linear(s, w, b, s->inter, s->hidden, 0);
		snprintf(b, sizeof(b), "model.layers.%d.mlp.down_proj", i);
		add_linear(s, w, b, s->hidden, s->inter, 0);
	}
	add_vector(s, w, "model.norm", s->hidden);
	if (!s->tie)
		tw_add(w, "lm_head.weight", dt, 2, s->vocab, s->hidden);
}

int spec_write(const struct spec *s, const cJSON *config, const struct tw *w, const char *dir)
{
	char path[1200];
	snprintf(path, sizeof(path), "%s/config.json", dir);
	if (write_json(path, config))
		return -1;
	if (s->awq && s->old_quant_file) {
		cJSON *q = quant_object(s);
		snprintf(path, sizeof(path), "%s/quant_config.json", dir);
		int rc = write_json(path, q);
		cJSON_Delete(q);
		if (rc)
			return -1;
	}
	if (!w)
		return 0;
	snprintf(path, sizeof(path), "%s/model.safetensors", dir);
	return tw_write(w, path);
}
