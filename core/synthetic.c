/* Synthetic models: the published shapes of common checkpoints with random weights (for `awqrun
 * bench` on any machine, no download) or with no data at all (for the performance model). */
#include "synthetic.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

struct preset {
	const char *name;
	enum awq_arch arch;
	const char *arch_name;
	int hidden, layers, heads, kv_heads, head_dim, inter, vocab, max_pos;
	float theta;
	bool tied;
};

/* Shapes from the models' published config.json files (see /shared/spec/formats.md section 6). */
static const struct preset presets[] = {
	{"qwen3-0.6b", AWQ_ARCH_QWEN3, "Qwen3ForCausalLM", 1024, 28, 16, 8, 128, 3072, 151936, 40960, 1e6f, true},
	{"qwen3-1.7b", AWQ_ARCH_QWEN3, "Qwen3ForCausalLM", 2048, 28, 16, 8, 128, 6144, 151936, 40960, 1e6f, true},
	{"qwen3-4b", AWQ_ARCH_QWEN3, "Qwen3ForCausalLM", 2560, 36, 32, 8, 128, 9728, 151936, 40960, 1e6f, true},
	{"qwen3-8b", AWQ_ARCH_QWEN3, "Qwen3ForCausalLM", 4096, 36, 32, 8, 128, 12288, 151936, 40960, 1e6f, false},
	{"qwen3-14b", AWQ_ARCH_QWEN3, "Qwen3ForCausalLM", 5120, 40, 40, 8, 128, 17408, 151936, 40960, 1e6f, false},
	{"qwen3-32b", AWQ_ARCH_QWEN3, "Qwen3ForCausalLM", 5120, 64, 64, 8, 128, 25600, 151936, 40960, 1e6f, false},
	{"qwen2.5-0.5b", AWQ_ARCH_QWEN2, "Qwen2ForCausalLM", 896, 24, 14, 2, 64, 4864, 151936, 32768, 1e6f, true},
	{"qwen2.5-7b", AWQ_ARCH_QWEN2, "Qwen2ForCausalLM", 3584, 28, 28, 4, 128, 18944, 152064, 32768, 1e6f, false},
	{"llama2-7b", AWQ_ARCH_LLAMA, "LlamaForCausalLM", 4096, 32, 32, 32, 128, 11008, 32000, 4096, 1e4f, false},
	{"llama3-8b", AWQ_ARCH_LLAMA, "LlamaForCausalLM", 4096, 32, 32, 8, 128, 14336, 128256, 8192, 5e5f, false},
	{"tinyllama-1.1b", AWQ_ARCH_LLAMA, "LlamaForCausalLM", 2048, 22, 32, 4, 64, 5632, 32000, 2048, 1e4f, false},
	{"mistral-7b", AWQ_ARCH_LLAMA, "MistralForCausalLM", 4096, 32, 32, 8, 128, 14336, 32000, 32768, 1e6f, false},
	{"qwen3-30b-a3b", AWQ_ARCH_QWEN3_MOE, "Qwen3MoeForCausalLM", 2048, 48, 32, 4, 128, 6144, 151936, 40960, 1e6f,
	 false},
	{"qwen3-235b-a22b", AWQ_ARCH_QWEN3_MOE, "Qwen3MoeForCausalLM", 4096, 94, 64, 4, 128, 12288, 151936, 40960, 1e6f,
	 false},
	{"qwen1.5-moe-a2.7b", AWQ_ARCH_QWEN2_MOE, "Qwen2MoeForCausalLM", 2048, 24, 16, 16, 128, 5632, 151936, 8192, 1e6f,
	 false},
};

/* Mixture-of-experts settings of the MoE presets above (every layer sparse; norm_topk_prob true in
 * the Qwen3 configs, false in Qwen1.5-MoE's, which has a shared expert). */
static const struct moe_preset {
	const char *name;
	int experts, top_k, moe_inter, shared_inter;
	bool norm_topk;
} moe_presets[] = {
	{"qwen3-30b-a3b", 128, 8, 768, 0, true},
	{"qwen3-235b-a22b", 128, 8, 1536, 0, true},
	{"qwen1.5-moe-a2.7b", 60, 4, 1408, 5632, false},
};

#define N_PRESETS (sizeof(presets) / sizeof(presets[0]))

const char *const *awq_synthetic_presets(void)
{
	static const char *names[N_PRESETS + 1];
	for (size_t i = 0; i < N_PRESETS; i++)
		names[i] = presets[i].name;
	names[N_PRESETS] = NULL;
	return names;
}

int awq_preset_config(const char *preset, struct awq_config *c, char *err, size_t errlen)
{
	for (size_t i = 0; i < N_PRESETS; i++) {
		const struct preset *p = &presets[i];
		if (strcmp(p->name, preset) != 0)
			continue;
		memset(c, 0, sizeof(*c));
		c->arch = p->arch;
		snprintf(c->arch_name, sizeof(c->arch_name), "%s", p->arch_name);
		c->hidden = p->hidden;
		c->n_layers = p->layers;
		c->n_heads = p->heads;
		c->n_kv_heads = p->kv_heads;
		c->head_dim = p->head_dim;
		c->intermediate = p->inter;
		c->vocab = p->vocab;
		c->max_pos = p->max_pos;
		c->rms_eps = 1e-6f;
		c->rope.theta = p->theta;
		c->rope.type = AWQ_ROPE_DEFAULT;
		c->tie_embeddings = p->tied;
		c->qkv_bias = awq_arch_qkv_bias_default(p->arch);
		c->qk_norm = awq_arch_qk_norm(p->arch);
		c->dtype = AWQ_DT_BF16;
		c->bos_id = -1;
		for (size_t j = 0; j < sizeof(moe_presets) / sizeof(moe_presets[0]); j++) {
			if (strcmp(moe_presets[j].name, preset) != 0)
				continue;
			c->n_experts = moe_presets[j].experts;
			c->n_experts_per_tok = moe_presets[j].top_k;
			c->moe_intermediate = moe_presets[j].moe_inter;
			c->shared_intermediate = moe_presets[j].shared_inter;
			c->decoder_sparse_step = 1;
			c->norm_topk_prob = moe_presets[j].norm_topk;
		}
		return 0;
	}
	return awq_err(err, errlen, AWQ_EINVAL, "unknown synthetic model '%s' (awqrun bench --list shows the presets)",
		       preset);
}

/* Lays weights out in one block: first pass with base == NULL only counts bytes. */
struct layout {
	uint8_t *base;
	size_t used;
	uint64_t rng;
};

static uint64_t next_rand(struct layout *L)
{
	uint64_t x = L->rng;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return L->rng = x;
}

static void *take(struct layout *L, size_t bytes)
{
	size_t off = L->used;
	L->used += (bytes + 63) & ~(size_t)63;
	return L->base ? L->base + off : NULL;
}

/* Random 16-bit floats of magnitude 2^-8..2^-5 with random sign: the scale of trained weights. */
static void fill_float16(struct layout *L, uint16_t *p, size_t n, enum awq_dtype t, float one)
{
	uint16_t one_bits = t == AWQ_DT_BF16 ? awq_f32_to_bf16(one) : awq_f32_to_f16(one);
	for (size_t i = 0; i < n; i += 4) {
		uint64_t r = next_rand(L);
		for (size_t j = 0; j < 4 && i + j < n; j++, r >>= 16) {
			uint16_t h;
			if (t == AWQ_DT_BF16)
				h = (uint16_t)((r & 0x807fu) | ((120u + ((r >> 7) & 3u)) << 7));
			else
				h = (uint16_t)((r & 0x83ffu) | ((7u + ((r >> 10) & 3u)) << 10));
			p[i + j] = one != 0.0f ? one_bits : h;
		}
	}
}

static void dense(struct layout *L, struct awq_weight *w, const char *name, int64_t n, int64_t k,
		  enum awq_dtype t, float one)
{
	memset(w, 0, sizeof(*w));
	snprintf(w->name, sizeof(w->name), "%s", name);
	w->fmt = AWQ_WFMT_DENSE;
	w->n = n;
	w->k = k;
	w->dtype = t;
	w->data = take(L, (size_t)(n * k) * awq_dtype_size(t));
	if (L->base)
		fill_float16(L, (uint16_t *)w->data, (size_t)(n * k), t, one);
}

static void awq4(struct layout *L, struct awq_weight *w, const char *name, int64_t n, int64_t k, int G)
{
	memset(w, 0, sizeof(*w));
	snprintf(w->name, sizeof(w->name), "%s", name);
	w->fmt = AWQ_WFMT_AWQ4;
	w->n = n;
	w->k = k;
	w->group_size = G;
	w->dtype = AWQ_DT_I32;
	w->qweight = take(L, (size_t)(k * n / 8) * 4);
	w->qzeros = take(L, (size_t)(k / G * n / 8) * 4);
	w->scales = take(L, (size_t)(k / G * n) * 2);
	if (!L->base)
		return;
	uint64_t *q = (uint64_t *)w->qweight;
	for (size_t i = 0; i < (size_t)(k * n / 16); i++)
		q[i] = next_rand(L);
	int32_t *z = (int32_t *)w->qzeros;
	for (size_t i = 0; i < (size_t)(k / G * n / 8); i++)
		z[i] = (int32_t)0x88888888u ^ (int32_t)(next_rand(L) & 0x33333333u); /* zeros 4..11 */
	uint16_t *s = (uint16_t *)w->scales;
	for (size_t i = 0; i < (size_t)(k / G * n); i++)
		s[i] = (uint16_t)(0x1800u | (next_rand(L) & 0x3ffu)); /* 2^-9 .. 2^-8 */
}

static void linear(struct layout *L, struct awq_weight *w, const char *name, int64_t n, int64_t k, int awq,
		   enum awq_dtype t)
{
	if (awq)
		awq4(L, w, name, n, k, 128);
	else
		dense(L, w, name, n, k, t, 0.0f);
}

static void bias(struct layout *L, struct awq_weight *w, enum awq_dtype t)
{
	w->bias_dtype = t;
	w->bias = take(L, (size_t)w->n * awq_dtype_size(t));
	if (L->base)
		fill_float16(L, (uint16_t *)w->bias, (size_t)w->n, t, 0.0f);
}

/* A SwiGLU MLP of width inter into the layer's gate/up/down, named <pre>{gate,up,down}_proj: the
 * dense MLP of layer l or Qwen2-MoE's shared expert. */
static void lay_out_mlp(struct layout *L, struct awq_layer *Y, const struct awq_config *c, int l, const char *pre,
			int64_t inter, int awq, enum awq_dtype t)
{
	char name[128];
	snprintf(name, sizeof(name), "model.layers.%d.%sgate_proj", l, pre);
	linear(L, &Y->gate, name, inter, c->hidden, awq, t);
	snprintf(name, sizeof(name), "model.layers.%d.%sup_proj", l, pre);
	linear(L, &Y->up, name, inter, c->hidden, awq, t);
	snprintf(name, sizeof(name), "model.layers.%d.%sdown_proj", l, pre);
	linear(L, &Y->down, name, c->hidden, inter, awq, t);
}

/* Qwen3-MoE names (Mixtral's differ only in the checkpoint, which a synthetic model has none of). */
static void lay_out_experts(struct layout *L, struct awq_layer *Y, const struct awq_config *c, int l, int awq,
			    enum awq_dtype t)
{
	char name[128];
	snprintf(name, sizeof(name), "model.layers.%d.mlp.gate", l);
	dense(L, &Y->router, name, c->n_experts, c->hidden, t, 0.0f);
	for (int e = 0; e < Y->experts.n; e++) {
		snprintf(name, sizeof(name), "model.layers.%d.mlp.experts.%d.gate_proj", l, e);
		linear(L, &Y->experts.gate[e], name, c->moe_intermediate, c->hidden, awq, t);
		snprintf(name, sizeof(name), "model.layers.%d.mlp.experts.%d.up_proj", l, e);
		linear(L, &Y->experts.up[e], name, c->moe_intermediate, c->hidden, awq, t);
		snprintf(name, sizeof(name), "model.layers.%d.mlp.experts.%d.down_proj", l, e);
		linear(L, &Y->experts.down[e], name, c->hidden, c->moe_intermediate, awq, t);
	}
	if (!Y->has_shared)
		return;
	lay_out_mlp(L, Y, c, l, "mlp.shared_expert.", c->shared_intermediate, awq, t);
	snprintf(name, sizeof(name), "model.layers.%d.mlp.shared_expert_gate", l);
	dense(L, &Y->shared_gate, name, 1, c->hidden, t, 0.0f);
}

/* Expert arrays of the sparse layers, before the two lay_out passes fill them. */
static int alloc_experts(struct awq_model *m)
{
	const struct awq_config *c = &m->cfg;
	for (int l = 0; l < c->n_layers; l++) {
		struct awq_layer *Y = &m->layers[l];
		if (!awq_layer_is_sparse(c, l))
			continue;
		Y->is_moe = true;
		Y->has_shared = awq_arch_shared_expert(c->arch);
		Y->experts.gate = calloc((size_t)c->n_experts, sizeof(struct awq_weight));
		Y->experts.up = calloc((size_t)c->n_experts, sizeof(struct awq_weight));
		Y->experts.down = calloc((size_t)c->n_experts, sizeof(struct awq_weight));
		if (!Y->experts.gate || !Y->experts.up || !Y->experts.down)
			return AWQ_ENOMEM;
		Y->experts.n = c->n_experts;
	}
	return 0;
}

static void lay_out(struct awq_model *m, struct layout *L, int awq, enum awq_dtype t)
{
	const struct awq_config *c = &m->cfg;
	int q_dim = c->n_heads * c->head_dim, kv_dim = c->n_kv_heads * c->head_dim;
	char name[128];

	dense(L, &m->embed, "model.embed_tokens", c->vocab, c->hidden, t, 0.0f);
	for (int l = 0; l < c->n_layers; l++) {
		struct awq_layer *Y = &m->layers[l];
#define NAME(s) (snprintf(name, sizeof(name), "model.layers.%d.%s", l, s), name)
		dense(L, &Y->attn_norm, NAME("input_layernorm"), c->hidden, 1, t, 1.0f);
		linear(L, &Y->q, NAME("self_attn.q_proj"), q_dim, c->hidden, awq, t);
		linear(L, &Y->k, NAME("self_attn.k_proj"), kv_dim, c->hidden, awq, t);
		linear(L, &Y->v, NAME("self_attn.v_proj"), kv_dim, c->hidden, awq, t);
		if (c->qkv_bias) {
			bias(L, &Y->q, t);
			bias(L, &Y->k, t);
			bias(L, &Y->v, t);
		}
		if (c->qk_norm) {
			dense(L, &Y->q_norm, NAME("self_attn.q_norm"), c->head_dim, 1, t, 1.0f);
			dense(L, &Y->k_norm, NAME("self_attn.k_norm"), c->head_dim, 1, t, 1.0f);
		}
		linear(L, &Y->o, NAME("self_attn.o_proj"), c->hidden, q_dim, awq, t);
		dense(L, &Y->mlp_norm, NAME("post_attention_layernorm"), c->hidden, 1, t, 1.0f);
		if (Y->is_moe) {
			lay_out_experts(L, Y, c, l, awq, t);
			continue;
		}
		lay_out_mlp(L, Y, c, l, "mlp.", c->intermediate, awq, t);
#undef NAME
	}
	dense(L, &m->final_norm, "model.norm", c->hidden, 1, t, 1.0f);
	if (c->tie_embeddings) {
		m->lm_head = m->embed;
	} else {
		dense(L, &m->lm_head, "lm_head", c->vocab, c->hidden, t, 0.0f);
	}
}

int awq_model_from_config(const struct awq_config *c, const char *precision, int with_data, uint64_t seed,
			  awq_model **out, char *err, size_t errlen)
{
	int awq;
	enum awq_dtype t;
	if (strcmp(precision, "bf16") == 0) {
		awq = 0, t = AWQ_DT_BF16;
	} else if (strcmp(precision, "f16") == 0 || strcmp(precision, "fp16") == 0) {
		awq = 0, t = AWQ_DT_F16;
	} else if (strcmp(precision, "awq") == 0) {
		awq = 1, t = AWQ_DT_F16; /* AutoAWQ checkpoints keep the unquantized tensors in fp16 */
	} else {
		return awq_err(err, errlen, AWQ_EINVAL, "unknown precision '%s' (use bf16, f16 or awq)", precision);
	}
	if (awq && (c->hidden % 128 || c->intermediate % 128 || (c->n_heads * c->head_dim) % 128 ||
		    (c->n_experts > 0 && c->moe_intermediate % 128) || c->shared_intermediate % 128))
		return awq_err(err, errlen, AWQ_EUNSUPPORTED, "AWQ group size 128 does not divide this model's dimensions");
	struct awq_model *m = calloc(1, sizeof(*m));
	if (!m)
		return awq_err(err, errlen, AWQ_ENOMEM, "out of memory");
	m->cfg = *c;
	m->cfg.dtype = t;
	if (awq) {
		m->cfg.quant.method = AWQ_QUANT_AWQ;
		m->cfg.quant.bits = 4;
		m->cfg.quant.group_size = 128;
		m->cfg.quant.zero_point = true;
	}
	snprintf(m->precision, sizeof(m->precision), "%s", awq ? "awq-int4-g128" : awq_dtype_name(t));
	for (char *p = m->precision; *p; p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
	snprintf(m->dir, sizeof(m->dir), "synthetic:%s", c->arch_name);
	m->layers = calloc((size_t)c->n_layers, sizeof(*m->layers));
	if (!m->layers || alloc_experts(m)) {
		awq_model_free(m);
		return awq_err(err, errlen, AWQ_ENOMEM, "out of memory");
	}
	struct layout L = {.base = NULL, .used = 0, .rng = seed * 2654435761u + 0x9e3779b97f4a7c15ull};
	lay_out(m, &L, awq, t);
	if (with_data) {
		size_t size = L.used;
		void *block = NULL;
		if (posix_memalign(&block, 64, size) != 0) {
			awq_model_free(m);
			return awq_err(err, errlen, AWQ_ENOMEM, "not enough host memory for a %.1f GiB synthetic model",
				       (double)size / (1u << 30));
		}
		m->owned = block;
		m->owned_size = size;
		L.base = block;
		L.used = 0;
		lay_out(m, &L, awq, t);
	}
	*out = m;
	return 0;
}

int awq_synthetic_weight(struct awq_weight *w, const char *name, int64_t n, int64_t k, int awq, enum awq_dtype t,
			 uint64_t seed, void **owned, char *err, size_t errlen)
{
	*owned = NULL;
	if (n < 1 || k < 1 || (awq && (k % 128 || n % 8)) || (!awq && t != AWQ_DT_F16 && t != AWQ_DT_BF16))
		return awq_err(err, errlen, AWQ_EINVAL,
			       "synthetic weight %lld x %lld: AWQ g128 needs K a multiple of 128 and N of 8, 16-bit F16/BF16",
			       (long long)n, (long long)k);
	const uint64_t rng = seed * 2654435761u + 0x9e3779b97f4a7c15ull;
	struct layout L = {.base = NULL, .used = 0, .rng = rng};
	linear(&L, w, name, n, k, awq, t); /* counts the bytes */
	void *block = NULL;
	if (posix_memalign(&block, 64, L.used) != 0)
		return awq_err(err, errlen, AWQ_ENOMEM, "not enough host memory for a %.1f MiB weight",
			       (double)L.used / (1u << 20));
	L = (struct layout){.base = block, .used = 0, .rng = rng};
	linear(&L, w, name, n, k, awq, t);
	*owned = block;
	return 0;
}

int awq_model_shape(const char *preset, const char *precision, awq_model **out, char *err, size_t errlen)
{
	struct awq_config c;
	int rc = awq_preset_config(preset, &c, err, errlen);
	if (rc)
		return rc;
	return awq_model_from_config(&c, precision, 0, 0, out, err, errlen);
}

int awq_model_synthetic(const char *preset, const char *precision, uint64_t seed, awq_model **out, char *err,
			size_t errlen)
{
	struct awq_config c;
	int rc = awq_preset_config(preset, &c, err, errlen);
	if (rc)
		return rc;
	rc = awq_model_from_config(&c, precision, 1, seed, out, err, errlen);
	if (rc == 0)
		snprintf((*out)->dir, sizeof((*out)->dir), "synthetic:%s", preset);
	return rc;
}
