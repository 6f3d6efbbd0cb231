/* awq_model_load: config.json (+ quant_config.json) and model.safetensors or its shards listed in
 * model.safetensors.index.json, memory-mapped; every tensor the architecture needs is checked for
 * dtype and shape against the config and bound in place (AWQ weights stay packed). */
#define _POSIX_C_SOURCE 200809L

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "error.h"
#include "model.h"
#include "safetensors.h"

#define MAX_JSON_FILE (64u << 20)
#define PATH_LEN 1280

struct awq_mapping {
	struct awq_st_file file;
};

struct index_entry {
	char *name;
	int map;
};

struct loader {
	struct awq_model *m;
	char index_path[PATH_LEN]; /* empty when the checkpoint is a single file */
	struct index_entry *index; /* sorted by name */
	int n_index;
	char *err;
	size_t errlen;
};

static int file_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

static int join(char *out, const char *dir, const char *name, char *err, size_t errlen)
{
	int n = snprintf(out, PATH_LEN, "%s/%s", dir, name);
	if (n < 0 || n >= PATH_LEN)
		return awq_err(err, errlen, AWQ_EINVAL, "%s: path too long", dir);
	return 0;
}

static int read_text(const char *path, char **out, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return awq_err(err, errlen, AWQ_EIO, "%s: cannot open: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > MAX_JSON_FILE) {
		fclose(f);
		return awq_err(err, errlen, AWQ_EIO, "%s: not a regular file of at most 64 MiB", path);
	}
	size_t size = (size_t)st.st_size;
	char *buf = malloc(size + 1);
	size_t n = buf ? fread(buf, 1, size, f) : 0;
	fclose(f);
	if (!buf)
		return awq_err(err, errlen, AWQ_ENOMEM, "%s: out of memory", path);
	if (n != size) {
		free(buf);
		return awq_err(err, errlen, AWQ_EIO, "%s: read error", path);
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

static int load_config(struct awq_model *m, char *err, size_t errlen)
{
	char path[PATH_LEN], *text;
	size_t len;
	int rc = join(path, m->dir, "config.json", err, errlen);
	rc = rc ? rc : read_text(path, &text, &len, err, errlen);
	if (rc)
		return rc;
	rc = awq_config_parse(text, len, path, &m->cfg, err, errlen);
	free(text);
	if (rc)
		return rc;
	if (m->cfg.quant.method == AWQ_QUANT_NONE) {
		/* older AutoAWQ wrote its settings beside config.json instead of inside it */
		rc = join(path, m->dir, "quant_config.json", err, errlen);
		if (!rc && file_exists(path)) {
			rc = read_text(path, &text, &len, err, errlen);
			if (rc)
				return rc;
			rc = awq_quant_config_parse(text, len, path, &m->cfg.quant, err, errlen);
			free(text);
		}
		if (rc)
			return rc;
	}
	rc = join(path, m->dir, "config.json", err, errlen);
	return rc ? rc : awq_config_validate(&m->cfg, path, err, errlen);
}

static int add_map(struct awq_model *m, const char *name, const char *index_path, char *err,
		   size_t errlen)
{
	char path[PATH_LEN], sub[AWQ_ERRLEN];
	int rc = join(path, m->dir, name, err, errlen);
	if (rc)
		return rc;
	struct awq_mapping *maps = realloc(m->maps, ((size_t)m->n_maps + 1) * sizeof(*maps));
	if (!maps)
		return awq_err(err, errlen, AWQ_ENOMEM, "%s: out of memory", path);
	m->maps = maps;
	rc = awq_safetensors_open(path, &maps[m->n_maps].file, sub, sizeof(sub));
	if (rc)
		return index_path ? awq_err(err, errlen, rc, "%s (shard listed in %s)", sub, index_path)
				  : awq_err(err, errlen, rc, "%s", sub);
	m->n_maps++;
	return 0;
}

static int find_map(const struct awq_model *m, const char *name)
{
	char path[PATH_LEN];
	snprintf(path, sizeof(path), "%s/%s", m->dir, name);
	for (int i = 0; i < m->n_maps; i++)
		if (strcmp(m->maps[i].file.path, path) == 0)
			return i;
	return -1;
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct index_entry *)a)->name, ((const struct index_entry *)b)->name);
}

/* Opens each shard once; checks that every tensor the index names is in the shard it names. */
static int index_entries(struct loader *L, const cJSON *wm)
{
	const cJSON *e;
	int count = 0;
	cJSON_ArrayForEach(e, wm)
		count++;
	L->index = calloc((size_t)count + 1, sizeof(*L->index));
	if (!L->index)
		return awq_err(L->err, L->errlen, AWQ_ENOMEM, "%s: out of memory", L->index_path);
	cJSON_ArrayForEach(e, wm) {
		const char *shard = cJSON_GetStringValue(e);
		if (!shard || !shard[0] || strchr(shard, '/') || strcmp(shard, "..") == 0)
			return awq_err(L->err, L->errlen, AWQ_EFORMAT,
				       "%s: weight_map entry '%s' is not a file name in the model directory",
				       L->index_path, e->string);
		int map = find_map(L->m, shard);
		if (map < 0) {
			int rc = add_map(L->m, shard, L->index_path, L->err, L->errlen);
			if (rc)
				return rc;
			map = L->m->n_maps - 1;
		}
		L->index[L->n_index].map = map;
		L->index[L->n_index].name = strdup(e->string);
		if (!L->index[L->n_index++].name)
			return awq_err(L->err, L->errlen, AWQ_ENOMEM, "%s: out of memory",
				       L->index_path);
		if (!awq_safetensors_find(&L->m->maps[map].file.hdr, e->string))
			return awq_err(L->err, L->errlen, AWQ_EFORMAT,
				       "%s: tensor '%s' is listed in shard %s, which does not contain it",
				       L->index_path, e->string, shard);
	}
	qsort(L->index, (size_t)L->n_index, sizeof(*L->index), cmp_entry);
	for (int i = 1; i < L->n_index; i++)
		if (strcmp(L->index[i].name, L->index[i - 1].name) == 0)
			return awq_err(L->err, L->errlen, AWQ_EFORMAT,
				       "%s: tensor '%s' is listed twice", L->index_path,
				       L->index[i].name);
	return 0;
}

static int open_index(struct loader *L)
{
	char *text;
	size_t len;
	int rc = read_text(L->index_path, &text, &len, L->err, L->errlen);
	if (rc)
		return rc;
	cJSON *root = cJSON_ParseWithLength(text, len);
	free(text);
	const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
	if (!root)
		rc = awq_err(L->err, L->errlen, AWQ_EFORMAT, "%s: not valid JSON", L->index_path);
	else if (!cJSON_IsObject(wm))
		rc = awq_err(L->err, L->errlen, AWQ_EFORMAT,
			     "%s: \"weight_map\" is missing or not an object", L->index_path);
	else
		rc = index_entries(L, wm);
	cJSON_Delete(root);
	return rc;
}

static int open_files(struct loader *L)
{
	char path[PATH_LEN];
	int rc = join(path, L->m->dir, "model.safetensors", L->err, L->errlen);
	if (rc)
		return rc;
	if (file_exists(path))
		return add_map(L->m, "model.safetensors", NULL, L->err, L->errlen);
	rc = join(L->index_path, L->m->dir, "model.safetensors.index.json", L->err, L->errlen);
	if (rc)
		return rc;
	if (file_exists(L->index_path))
		return open_index(L);
	L->index_path[0] = '\0';
	return awq_err(L->err, L->errlen, AWQ_EIO,
		       "%s: no model.safetensors or model.safetensors.index.json", L->m->dir);
}

static const struct awq_st_tensor *lookup(struct loader *L, const char *name,
					  const struct awq_st_file **file)
{
	int map = 0;
	if (L->index) {
		struct index_entry key = {(char *)name, 0};
		const struct index_entry *e =
			bsearch(&key, L->index, (size_t)L->n_index, sizeof(key), cmp_entry);
		if (!e)
			return NULL;
		map = e->map;
	}
	*file = &L->m->maps[map].file;
	return awq_safetensors_find(&(*file)->hdr, name);
}

/* The file that messages about the checkpoint as a whole name. */
static const char *source(const struct loader *L)
{
	return L->index ? L->index_path : L->m->maps[0].file.path;
}

static int not_found(struct loader *L, const char *name)
{
	if (L->index)
		return awq_err(L->err, L->errlen, AWQ_EFORMAT,
			       "%s: required tensor '%s' is not listed (searched the index and its %d shard files)",
			       L->index_path, name, L->m->n_maps);
	return awq_err(L->err, L->errlen, AWQ_EFORMAT, "%s: required tensor '%s' not found",
		       L->m->maps[0].file.path, name);
}

/* Tensor name with dtype and shape checked; *data points into the mapping. */
static int get_tensor(struct loader *L, const char *name, int float_ok, enum awq_dtype want,
		      int nd, const int64_t *shape, const void **data, enum awq_dtype *dt)
{
	const struct awq_st_file *f;
	const struct awq_st_tensor *t = lookup(L, name, &f);
	if (!t)
		return not_found(L, name);
	int is_float = t->dtype == AWQ_DT_F32 || t->dtype == AWQ_DT_F16 || t->dtype == AWQ_DT_BF16;
	if (float_ok ? !is_float : t->dtype != want)
		return awq_err(L->err, L->errlen, AWQ_EFORMAT,
			       "%s: tensor '%s' has dtype %s, expected %s", f->path, name,
			       awq_dtype_name(t->dtype), float_ok ? "F32, F16 or BF16"
								  : awq_dtype_name(want));
	if (t->n_dims != nd || memcmp(t->shape, shape, (size_t)nd * sizeof(*shape))) {
		char got[160], exp[160];
		awq_shape_str(t->shape, t->n_dims, got, sizeof(got));
		awq_shape_str(shape, nd, exp, sizeof(exp));
		return awq_err(L->err, L->errlen, AWQ_EFORMAT,
			       "%s: tensor '%s' has shape %s, expected %s from config.json",
			       f->path, name, got, exp);
	}
	*data = awq_safetensors_data(f, t);
	if (dt)
		*dt = t->dtype;
	return 0;
}

static int has_tensor(struct loader *L, const char *name)
{
	const struct awq_st_file *f;
	return lookup(L, name, &f) != NULL;
}

static int set_name(struct loader *L, struct awq_weight *w, const char *base)
{
	if (strlen(base) >= sizeof(w->name))
		return awq_err(L->err, L->errlen, AWQ_EINVAL, "tensor name '%s' is too long", base);
	strcpy(w->name, base);
	return 0;
}

/* A vector (norm weight) of n floats: base.weight [n]. */
static int bind_vector(struct loader *L, const char *base, int64_t n, struct awq_weight *w)
{
	char t[160];
	snprintf(t, sizeof(t), "%s.weight", base);
	w->fmt = AWQ_WFMT_DENSE;
	w->n = n;
	w->k = 1;
	int rc = set_name(L, w, base);
	return rc ? rc : get_tensor(L, t, 1, AWQ_DT_F32, 1, &n, &w->data, &w->dtype);
}

static int bind_dense(struct loader *L, const char *base, struct awq_weight *w)
{
	char t[160];
	int64_t shape[2] = {w->n, w->k};
	snprintf(t, sizeof(t), "%s.weight", base);
	return get_tensor(L, t, 1, AWQ_DT_F32, 2, shape, &w->data, &w->dtype);
}

/* zero_point false: AutoAWQ's pseudo_quantize_tensor (awq/quantize/quantizer.py) then quantizes
 * symmetrically to signed q in [-8, 7] (scale max|w| / 7) and returns zeros = None, but
 * WQLinear_GEMM.from_linear (awq/modules/linear/gemm.py) asserts zeros is not None and packs
 * them, so AutoAWQ never writes a GEMM checkpoint without qzeros, and the GEMM loaders (AutoAWQ,
 * transformers, vLLM's AWQLinearMethod) always allocate qzeros and subtract it. So a stored
 * qzeros is always used; a checkpoint that omits it under zero_point false is read as that
 * symmetric grid stored as unsigned nibbles q + 8, i.e. a constant zero of 8 (sym_zero). */
static int bind_awq4(struct loader *L, const char *base, struct awq_weight *w)
{
	const struct awq_quant *q = &L->m->cfg.quant;
	int64_t g = q->group_size == -1 ? w->k : q->group_size;
	if (w->k % g || w->n % 8)
		return awq_err(L->err, L->errlen, AWQ_EFORMAT,
			       "%s: %s has in_features %lld and out_features %lld: AWQ needs group_size %lld to divide in_features and out_features divisible by 8",
			       source(L), base,
			       (long long)w->k, (long long)w->n, (long long)g);
	char t[160];
	int64_t qw[2] = {w->k, w->n / 8}, qz[2] = {w->k / g, w->n / 8}, sc[2] = {w->k / g, w->n};
	const void *p;
	w->fmt = AWQ_WFMT_AWQ4;
	w->group_size = (int)g;
	snprintf(t, sizeof(t), "%s.qweight", base);
	int rc = get_tensor(L, t, 0, AWQ_DT_I32, 2, qw, &p, NULL);
	if (rc)
		return rc;
	w->qweight = p;
	snprintf(t, sizeof(t), "%s.scales", base);
	rc = get_tensor(L, t, 0, AWQ_DT_F16, 2, sc, &p, NULL);
	if (rc)
		return rc;
	w->scales = p;
	snprintf(t, sizeof(t), "%s.qzeros", base);
	if (!q->zero_point && !has_tensor(L, t)) {
		w->sym_zero = 8;
		return 0;
	}
	rc = get_tensor(L, t, 0, AWQ_DT_I32, 2, qz, &p, NULL);
	w->qzeros = p;
	return rc;
}

static int quantized(const struct awq_quant *q, const char *base)
{
	if (q->method != AWQ_QUANT_AWQ)
		return 0;
	for (int i = 0; i < q->n_not_convert; i++)
		if (strstr(base, q->not_convert[i]))
			return 0;
	return 1;
}

/* A Linear with out_features n and in_features k; bias [n] required when with_bias, rejected
 * when present otherwise (it would silently change the results). */
static int bind_linear(struct loader *L, const char *base, int64_t n, int64_t k, int with_bias,
		       int may_quantize, struct awq_weight *w)
{
	char t[160];
	w->n = n;
	w->k = k;
	int rc = set_name(L, w, base);
	if (rc)
		return rc;
	if (may_quantize && quantized(&L->m->cfg.quant, base))
		rc = bind_awq4(L, base, w);
	else
		rc = bind_dense(L, base, w);
	if (rc)
		return rc;
	snprintf(t, sizeof(t), "%s.bias", base);
	if (with_bias)
		return get_tensor(L, t, 1, AWQ_DT_F32, 1, &n, &w->bias, &w->bias_dtype);
	if (has_tensor(L, t))
		return awq_err(L->err, L->errlen, AWQ_EUNSUPPORTED,
			       "%s: tensor '%s' is present, but a bias on this projection is not supported for %s",
			       source(L), t,
			       L->m->cfg.arch_name);
	return 0;
}

static int bind_attention(struct loader *L, const char *pre, struct awq_layer *l)
{
	const struct awq_config *c = &L->m->cfg;
	int64_t qd = (int64_t)c->n_heads * c->head_dim, kvd = (int64_t)c->n_kv_heads * c->head_dim;
	char b[160];
	int rc;
	snprintf(b, sizeof(b), "%sself_attn.q_proj", pre);
	if ((rc = bind_linear(L, b, qd, c->hidden, c->qkv_bias, 1, &l->q)))
		return rc;
	snprintf(b, sizeof(b), "%sself_attn.k_proj", pre);
	if ((rc = bind_linear(L, b, kvd, c->hidden, c->qkv_bias, 1, &l->k)))
		return rc;
	snprintf(b, sizeof(b), "%sself_attn.v_proj", pre);
	if ((rc = bind_linear(L, b, kvd, c->hidden, c->qkv_bias, 1, &l->v)))
		return rc;
	snprintf(b, sizeof(b), "%sself_attn.o_proj", pre);
	if ((rc = bind_linear(L, b, c->hidden, qd, 0, 1, &l->o)))
		return rc;
	if (!c->qk_norm)
		return 0;
	snprintf(b, sizeof(b), "%sself_attn.q_norm", pre);
	if ((rc = bind_vector(L, b, c->head_dim, &l->q_norm)))
		return rc;
	snprintf(b, sizeof(b), "%sself_attn.k_norm", pre);
	return bind_vector(L, b, c->head_dim, &l->k_norm);
}

/* The router stays 16-bit in AWQ checkpoints (AutoAWQ quantizes only the experts' Linears); say
 * so plainly when a checkpoint quantized it anyway, instead of "weight not found". */
/* A 16-bit [n, hidden] gating weight (the router; Qwen2-MoE's shared-expert gate): a quantized one
 * is refused with a clear message, as checkpoints ship them in 16-bit. */
static int bind_router(struct loader *L, const char *base, int64_t n, struct awq_weight *w)
{
	const struct awq_config *c = &L->m->cfg;
	char t[176];
	snprintf(t, sizeof(t), "%s.qweight", base);
	if (has_tensor(L, t))
		return awq_err(L->err, L->errlen, AWQ_EUNSUPPORTED,
			       "%s: router '%s' is quantized; awqrun needs MoE routers in 16-bit",
			       source(L), base);
	return bind_linear(L, base, n, c->hidden, 0, 0, w);
}

/* A SwiGLU MLP's <pre>{gate,up,down}_proj of width inter into the layer's gate/up/down: the dense
 * MLP (pre "model.layers.N.mlp.") or Qwen2-MoE's shared expert ("...mlp.shared_expert."). */
static int bind_mlp(struct loader *L, const char *pre, int64_t inter, struct awq_layer *l)
{
	const struct awq_config *c = &L->m->cfg;
	char b[176];
	int rc;
	snprintf(b, sizeof(b), "%sgate_proj", pre);
	if ((rc = bind_linear(L, b, inter, c->hidden, 0, 1, &l->gate)))
		return rc;
	snprintf(b, sizeof(b), "%sup_proj", pre);
	if ((rc = bind_linear(L, b, inter, c->hidden, 0, 1, &l->up)))
		return rc;
	snprintf(b, sizeof(b), "%sdown_proj", pre);
	return bind_linear(L, b, c->hidden, inter, 0, 1, &l->down);
}

/* Qwen3-MoE: mlp.gate + mlp.experts.{e}.{gate,up,down}_proj; Mixtral:
 * block_sparse_moe.gate + block_sparse_moe.experts.{e}.{w1,w3,w2}; Qwen2-MoE: Qwen3-MoE's names plus
 * mlp.shared_expert.{gate,up,down}_proj (into the layer's dense gate/up/down) and the 16-bit
 * mlp.shared_expert_gate [1, hidden]. */
static int bind_moe(struct loader *L, const char *pre, struct awq_layer *l)
{
	const struct awq_config *c = &L->m->cfg;
	const int mixtral = c->arch == AWQ_ARCH_MIXTRAL;
	const char *blk = mixtral ? "block_sparse_moe" : "mlp";
	const char *gn = mixtral ? "w1" : "gate_proj", *un = mixtral ? "w3" : "up_proj";
	const char *dn = mixtral ? "w2" : "down_proj";
	const int64_t E = c->n_experts, I = c->moe_intermediate;
	char b[160];
	int rc;
	l->is_moe = true;
	snprintf(b, sizeof(b), "%s%s.gate", pre, blk);
	if ((rc = bind_router(L, b, c->n_experts, &l->router)))
		return rc;
	/* calloc'ed before binding so awq_model_free releases them on any failure below */
	l->experts.gate = calloc((size_t)E, sizeof(struct awq_weight));
	l->experts.up = calloc((size_t)E, sizeof(struct awq_weight));
	l->experts.down = calloc((size_t)E, sizeof(struct awq_weight));
	if (!l->experts.gate || !l->experts.up || !l->experts.down)
		return awq_err(L->err, L->errlen, AWQ_ENOMEM, "%s: out of memory for %lld experts",
			       L->m->dir, (long long)E);
	l->experts.n = (int)E;
	for (int64_t e = 0; e < E; e++) {
		snprintf(b, sizeof(b), "%s%s.experts.%lld.%s", pre, blk, (long long)e, gn);
		if ((rc = bind_linear(L, b, I, c->hidden, 0, 1, &l->experts.gate[e])))
			return rc;
		snprintf(b, sizeof(b), "%s%s.experts.%lld.%s", pre, blk, (long long)e, un);
		if ((rc = bind_linear(L, b, I, c->hidden, 0, 1, &l->experts.up[e])))
			return rc;
		snprintf(b, sizeof(b), "%s%s.experts.%lld.%s", pre, blk, (long long)e, dn);
		if ((rc = bind_linear(L, b, c->hidden, I, 0, 1, &l->experts.down[e])))
			return rc;
	}
	if (!awq_arch_shared_expert(c->arch))
		return 0;
	l->has_shared = true;
	snprintf(b, sizeof(b), "%smlp.shared_expert.", pre);
	if ((rc = bind_mlp(L, b, c->shared_intermediate, l)))
		return rc;
	snprintf(b, sizeof(b), "%smlp.shared_expert_gate", pre);
	return bind_router(L, b, 1, &l->shared_gate);
}

static int bind_layer(struct loader *L, int i, struct awq_layer *l)
{
	const struct awq_config *c = &L->m->cfg;
	char pre[64], b[160];
	int rc;
	snprintf(pre, sizeof(pre), "model.layers.%d.", i);
	snprintf(b, sizeof(b), "%sinput_layernorm", pre);
	if ((rc = bind_vector(L, b, c->hidden, &l->attn_norm)))
		return rc;
	if ((rc = bind_attention(L, pre, l)))
		return rc;
	snprintf(b, sizeof(b), "%spost_attention_layernorm", pre);
	if ((rc = bind_vector(L, b, c->hidden, &l->mlp_norm)))
		return rc;
	if (awq_layer_is_sparse(c, i))
		return bind_moe(L, pre, l);
	snprintf(b, sizeof(b), "%smlp.", pre);
	return bind_mlp(L, b, c->intermediate, l);
}

static int bind_model(struct loader *L)
{
	struct awq_model *m = L->m;
	const struct awq_config *c = &m->cfg;
	m->layers = calloc((size_t)c->n_layers, sizeof(*m->layers));
	if (!m->layers)
		return awq_err(L->err, L->errlen, AWQ_ENOMEM, "%s: out of memory for %d layers",
			       m->dir, c->n_layers);
	int rc = bind_linear(L, "model.embed_tokens", c->vocab, c->hidden, 0, 0, &m->embed);
	for (int i = 0; i < c->n_layers && !rc; i++)
		rc = bind_layer(L, i, &m->layers[i]);
	if (!rc)
		rc = bind_vector(L, "model.norm", c->hidden, &m->final_norm);
	if (rc)
		return rc;
	/* a tied checkpoint may still carry a copy of lm_head.weight; the embedding is used */
	if (c->tie_embeddings) {
		m->lm_head = m->embed;
		return 0;
	}
	return bind_linear(L, "lm_head", c->vocab, c->hidden, 0, 0, &m->lm_head);
}

static void set_precision(struct awq_model *m)
{
	const struct awq_quant *q = &m->cfg.quant;
	const char *dt = "f32";
	if (q->method == AWQ_QUANT_AWQ) {
		if (q->group_size > 0)
			snprintf(m->precision, sizeof(m->precision), "awq-int4-g%d", q->group_size);
		else
			snprintf(m->precision, sizeof(m->precision), "awq-int4-per-channel");
		return;
	}
	if (m->layers[0].q.dtype == AWQ_DT_BF16)
		dt = "bf16";
	else if (m->layers[0].q.dtype == AWQ_DT_F16)
		dt = "f16";
	snprintf(m->precision, sizeof(m->precision), "%s", dt);
}

static void loader_free(struct loader *L)
{
	for (int i = 0; i < L->n_index; i++)
		free(L->index[i].name);
	free(L->index);
}

static int load(struct awq_model *m, char *err, size_t errlen)
{
	int rc = load_config(m, err, errlen);
	if (rc)
		return rc;
	struct loader L = {.m = m, .err = err, .errlen = errlen};
	rc = open_files(&L);
	if (!rc)
		rc = bind_model(&L);
	loader_free(&L);
	if (!rc)
		set_precision(m);
	return rc;
}

int awq_model_load(const char *dir, awq_model **out, char *err, size_t errlen)
{
	if (!dir || !out)
		return awq_err(err, errlen, AWQ_EINVAL, "awq_model_load: no directory or output");
	*out = NULL;
	struct awq_model *m = calloc(1, sizeof(*m));
	if (!m)
		return awq_err(err, errlen, AWQ_ENOMEM, "%s: out of memory", dir);
	size_t n = strlen(dir);
	while (n > 1 && dir[n - 1] == '/')
		n--;
	if (n >= sizeof(m->dir)) {
		free(m);
		return awq_err(err, errlen, AWQ_EINVAL, "%.64s...: directory path too long", dir);
	}
	memcpy(m->dir, dir, n);
	int rc = load(m, err, errlen);
	if (rc) {
		awq_model_free(m);
		return rc;
	}
	*out = m;
	return 0;
}

void awq_model_free(awq_model *m)
{
	if (!m)
		return;
	for (int i = 0; m->layers && i < m->cfg.n_layers; i++) {
		free(m->layers[i].experts.gate);
		free(m->layers[i].experts.up);
		free(m->layers[i].experts.down);
	}
	free(m->layers);
	for (int i = 0; i < m->n_maps; i++)
		awq_safetensors_close(&m->maps[i].file);
	free(m->maps);
	free(m->owned);
	free(m);
}
