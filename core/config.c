/* config.json (Hugging Face transformers) and AWQ quantization settings. Key names and defaults
 * follow transformers' LlamaConfig / MistralConfig / Qwen2Config / Qwen3Config / Qwen3MoeConfig /
 * MixtralConfig and AwqConfig; transformers 5 moved rope_theta and rope_scaling into
 * "rope_parameters" and torch_dtype to "dtype", so both spellings are read. */
#define _POSIX_C_SOURCE 200809L

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "model.h"
#include "safetensors.h"

struct jctx {
	const char *path;
	char *err;
	size_t errlen;
};

static const struct {
	const char *name;
	enum awq_arch arch;
} archs[] = {
	{"LlamaForCausalLM", AWQ_ARCH_LLAMA},   {"MistralForCausalLM", AWQ_ARCH_LLAMA},
	{"Qwen2ForCausalLM", AWQ_ARCH_QWEN2},   {"Qwen3ForCausalLM", AWQ_ARCH_QWEN3},
	{"Qwen3MoeForCausalLM", AWQ_ARCH_QWEN3_MOE}, {"MixtralForCausalLM", AWQ_ARCH_MIXTRAL},
	{"Qwen2MoeForCausalLM", AWQ_ARCH_QWEN2_MOE},
};

static int missing(struct jctx *j, const char *pre, const char *key)
{
	return awq_err(j->err, j->errlen, AWQ_EFORMAT, "%s: required key \"%s%s\" is missing",
		       j->path, pre, key);
}

static int wrong_type(struct jctx *j, const char *pre, const char *key, const char *what)
{
	return awq_err(j->err, j->errlen, AWQ_EFORMAT, "%s: \"%s%s\" must be %s", j->path, pre,
		       key, what);
}

/* Absent and null both mean "not given": transformers writes null for unset optional keys. */
static const cJSON *item(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	return cJSON_IsNull(v) ? NULL : v;
}

static int to_int(const cJSON *v, int *out)
{
	if (!cJSON_IsNumber(v))
		return -1;
	double d = v->valuedouble;
	if (!(d >= INT_MIN && d <= INT_MAX) || d != floor(d))
		return -1;
	*out = (int)d;
	return 0;
}

static int get_int(struct jctx *j, const cJSON *obj, const char *pre, const char *key,
		   int required, int def, int *out)
{
	const cJSON *v = item(obj, key);
	if (!v) {
		*out = def;
		return required ? missing(j, pre, key) : 0;
	}
	return to_int(v, out) ? wrong_type(j, pre, key, "an integer") : 0;
}

static int get_float(struct jctx *j, const cJSON *obj, const char *pre, const char *key,
		     int required, float def, float *out)
{
	const cJSON *v = item(obj, key);
	if (!v) {
		*out = def;
		return required ? missing(j, pre, key) : 0;
	}
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || fabs(v->valuedouble) > 3.0e38)
		return wrong_type(j, pre, key, "a finite number");
	*out = (float)v->valuedouble;
	return 0;
}

static int get_bool(struct jctx *j, const cJSON *obj, const char *pre, const char *key, bool def,
		    bool *out)
{
	const cJSON *v = item(obj, key);
	if (!v) {
		*out = def;
		return 0;
	}
	if (!cJSON_IsBool(v))
		return wrong_type(j, pre, key, "true or false");
	*out = cJSON_IsTrue(v);
	return 0;
}

/* *out is NULL when the key is absent or null. */
static int get_str(struct jctx *j, const cJSON *obj, const char *pre, const char *key,
		   const char **out)
{
	const cJSON *v = item(obj, key);
	*out = NULL;
	if (!v)
		return 0;
	if (!cJSON_IsString(v))
		return wrong_type(j, pre, key, "a string");
	*out = v->valuestring;
	return 0;
}

/* cJSON keeps both copies of a repeated key and finds the first; Python's json (which wrote the
 * file and which transformers reads it with) keeps the last. Refuse rather than disagree. */
static int check_duplicates(struct jctx *j, const cJSON *node, int depth)
{
	const cJSON *a, *b;
	if (depth > 16)
		return 0;
	cJSON_ArrayForEach(a, node) {
		for (b = a->next; cJSON_IsObject(node) && b; b = b->next)
			if (strcmp(a->string, b->string) == 0)
				return awq_err(j->err, j->errlen, AWQ_EFORMAT,
					       "%s: key \"%.64s\" appears twice", j->path, a->string);
		int rc = check_duplicates(j, a, depth + 1);
		if (rc)
			return rc;
	}
	return 0;
}

static int parse_arch(struct jctx *j, const cJSON *root, struct awq_config *c)
{
	const cJSON *a = item(root, "architectures");
	if (!a)
		return missing(j, "", "architectures");
	const cJSON *first = cJSON_GetArrayItem(a, 0);
	if (!cJSON_IsArray(a) || !cJSON_IsString(first))
		return wrong_type(j, "", "architectures", "a list of strings");
	snprintf(c->arch_name, sizeof(c->arch_name), "%s", first->valuestring);
	for (size_t i = 0; i < sizeof(archs) / sizeof(archs[0]); i++) {
		if (strcmp(first->valuestring, archs[i].name) == 0) {
			c->arch = archs[i].arch;
			return 0;
		}
	}
	return awq_err(j->err, j->errlen, AWQ_EUNSUPPORTED,
		       "%s: unsupported architecture \"%.64s\" (supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, Qwen3MoeForCausalLM, MixtralForCausalLM)",
		       j->path, first->valuestring);
}

static int parse_sizes(struct jctx *j, const cJSON *r, struct awq_config *c)
{
	int rc = get_int(j, r, "", "hidden_size", 1, 0, &c->hidden);
	rc = rc ? rc : get_int(j, r, "", "num_hidden_layers", 1, 0, &c->n_layers);
	rc = rc ? rc : get_int(j, r, "", "num_attention_heads", 1, 0, &c->n_heads);
	rc = rc ? rc : get_int(j, r, "", "num_key_value_heads", 0, 0, &c->n_kv_heads);
	rc = rc ? rc : get_int(j, r, "", "head_dim", 0, 0, &c->head_dim);
	rc = rc ? rc : get_int(j, r, "", "intermediate_size", 1, 0, &c->intermediate);
	rc = rc ? rc : get_int(j, r, "", "vocab_size", 1, 0, &c->vocab);
	rc = rc ? rc : get_int(j, r, "", "max_position_embeddings", 1, 0, &c->max_pos);
	rc = rc ? rc : get_float(j, r, "", "rms_norm_eps", 1, 0.0f, &c->rms_eps);
	return rc;
}

static int parse_rope_type(struct jctx *j, const cJSON *s, const char *pre, struct awq_rope *rope)
{
	const char *type = NULL, *alt = NULL;
	int rc = get_str(j, s, pre, "rope_type", &type);
	rc = rc ? rc : get_str(j, s, pre, "type", &alt);
	if (rc)
		return rc;
	type = type ? type : alt;
	if (!type)
		return missing(j, pre, "rope_type");
	if (strcmp(type, "default") == 0) {
		rope->type = AWQ_ROPE_DEFAULT;
		return 0;
	}
	if (strcmp(type, "linear") == 0) {
		rope->type = AWQ_ROPE_LINEAR;
		return get_float(j, s, pre, "factor", 1, 0.0f, &rope->factor);
	}
	if (strcmp(type, "llama3") == 0) {
		rope->type = AWQ_ROPE_LLAMA3;
		rc = get_float(j, s, pre, "factor", 1, 0.0f, &rope->factor);
		rc = rc ? rc : get_float(j, s, pre, "low_freq_factor", 1, 0.0f, &rope->low_freq_factor);
		rc = rc ? rc : get_float(j, s, pre, "high_freq_factor", 1, 0.0f,
					 &rope->high_freq_factor);
		return rc ? rc : get_int(j, s, pre, "original_max_position_embeddings", 1, 0,
					 &rope->original_max_pos);
	}
	return awq_err(j->err, j->errlen, AWQ_EUNSUPPORTED,
		       "%s: rope scaling type \"%.32s\" is not supported (supported: default, linear, llama3)",
		       j->path, type);
}

static int parse_rope(struct jctx *j, const cJSON *root, struct awq_rope *rope)
{
	const cJSON *scaling = item(root, "rope_scaling");
	const cJSON *params = item(root, "rope_parameters");
	const char *pre = "rope_scaling.";
	if (scaling && !cJSON_IsObject(scaling))
		return wrong_type(j, "", "rope_scaling", "an object or null");
	if (params && !cJSON_IsObject(params))
		return wrong_type(j, "", "rope_parameters", "an object or null");
	int rc = get_float(j, root, "", "rope_theta", 0, 10000.0f, &rope->theta);
	if (!rc && params)
		rc = get_float(j, params, "rope_parameters.", "rope_theta", 0, rope->theta,
			       &rope->theta);
	if (rc)
		return rc;
	rope->type = AWQ_ROPE_DEFAULT;
	if (!scaling && params) {
		scaling = params;
		pre = "rope_parameters.";
	}
	return scaling ? parse_rope_type(j, scaling, pre, rope) : 0;
}

static int parse_dtype(struct jctx *j, const cJSON *root, struct awq_config *c)
{
	static const struct {
		const char *name;
		enum awq_dtype dt;
	} names[] = {
		{"float32", AWQ_DT_F32}, {"float16", AWQ_DT_F16}, {"bfloat16", AWQ_DT_BF16},
	};
	const char *s = NULL, *alt = NULL;
	int rc = get_str(j, root, "", "torch_dtype", &s);
	rc = rc ? rc : get_str(j, root, "", "dtype", &alt);
	if (rc)
		return rc;
	s = s ? s : alt;
	c->dtype = AWQ_DT_F32; /* transformers' default when the config names none */
	if (!s)
		return 0;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(s, names[i].name) == 0) {
			c->dtype = names[i].dt;
			return 0;
		}
	}
	return awq_err(j->err, j->errlen, AWQ_EUNSUPPORTED,
		       "%s: torch_dtype \"%.32s\" is not supported (float32, float16, bfloat16)",
		       j->path, s);
}

static int parse_flags(struct jctx *j, const cJSON *r, struct awq_config *c)
{
	bool attn_bias = false, mlp_bias = false, sliding = false;
	const char *act = NULL;
	int rc = get_bool(j, r, "", "tie_word_embeddings", false, &c->tie_embeddings);
	rc = rc ? rc : get_bool(j, r, "", "attention_bias", false, &attn_bias);
	/* Qwen2MoeConfig.qkv_bias (default true; the published Qwen1.5-MoE configs predate the key) */
	if (c->arch == AWQ_ARCH_QWEN2_MOE)
		rc = rc ? rc : get_bool(j, r, "", "qkv_bias", awq_arch_qkv_bias_default(c->arch), &attn_bias);
	rc = rc ? rc : get_bool(j, r, "", "mlp_bias", false, &mlp_bias);
	rc = rc ? rc : get_bool(j, r, "", "use_sliding_window", false, &sliding);
	rc = rc ? rc : get_str(j, r, "", "hidden_act", &act);
	if (rc)
		return rc;
	if (mlp_bias || sliding)
		return awq_err(j->err, j->errlen, AWQ_EUNSUPPORTED, "%s: \"%s\": true is not supported",
			       j->path, mlp_bias ? "mlp_bias" : "use_sliding_window");
	if (act && strcmp(act, "silu") != 0)
		return awq_err(j->err, j->errlen, AWQ_EUNSUPPORTED,
			       "%s: \"hidden_act\" \"%.32s\" is not supported (only silu)", j->path,
			       act);
	c->qkv_bias = attn_bias || awq_arch_qkv_bias(c->arch);
	c->qk_norm = awq_arch_qk_norm(c->arch);
	return parse_dtype(j, r, c);
}

static int parse_tokens(struct jctx *j, const cJSON *r, struct awq_config *c)
{
	int rc = get_int(j, r, "", "bos_token_id", 0, -1, &c->bos_id);
	if (rc)
		return rc;
	const cJSON *eos = item(r, "eos_token_id");
	c->n_eos = 0;
	if (!eos)
		return 0;
	if (cJSON_IsNumber(eos)) {
		c->n_eos = 1;
		return to_int(eos, &c->eos_ids[0]) ? wrong_type(j, "", "eos_token_id",
								"an integer or a list of integers") : 0;
	}
	if (!cJSON_IsArray(eos))
		return wrong_type(j, "", "eos_token_id", "an integer or a list of integers");
	const cJSON *e;
	cJSON_ArrayForEach(e, eos) {
		if (c->n_eos == AWQ_MAX_EOS)
			return awq_err(j->err, j->errlen, AWQ_EUNSUPPORTED,
				       "%s: \"eos_token_id\" lists more than %d tokens", j->path,
				       AWQ_MAX_EOS);
		if (to_int(e, &c->eos_ids[c->n_eos]))
			return wrong_type(j, "", "eos_token_id", "an integer or a list of integers");
		c->n_eos++;
	}
	return 0;
}

static int parse_mlp_only(struct jctx *j, const cJSON *r, struct awq_config *c)
{
	const cJSON *l = item(r, "mlp_only_layers"), *e;
	c->n_mlp_only = 0;
	if (!l)
		return 0;
	if (!cJSON_IsArray(l))
		return wrong_type(j, "", "mlp_only_layers", "a list of integers");
	cJSON_ArrayForEach(e, l) {
		int max = (int)(sizeof(c->mlp_only_layers) / sizeof(c->mlp_only_layers[0]));
		if (c->n_mlp_only == max)
			return awq_err(j->err, j->errlen, AWQ_EUNSUPPORTED,
				       "%s: \"mlp_only_layers\" lists more than %d layers", j->path,
				       max);
		if (to_int(e, &c->mlp_only_layers[c->n_mlp_only]))
			return wrong_type(j, "", "mlp_only_layers", "a list of integers");
		c->n_mlp_only++;
	}
	return 0;
}

static int parse_moe(struct jctx *j, const cJSON *r, struct awq_config *c)
{
	int rc;
	if (c->arch == AWQ_ARCH_MIXTRAL) {
		/* Mixtral: every layer sparse, experts sized intermediate_size, top-k renormalised */
		c->moe_intermediate = c->intermediate;
		c->decoder_sparse_step = 1;
		c->norm_topk_prob = true;
		rc = get_int(j, r, "", "num_local_experts", 1, 0, &c->n_experts);
		return rc ? rc : get_int(j, r, "", "num_experts_per_tok", 1, 0,
					 &c->n_experts_per_tok);
	}
	if (c->arch != AWQ_ARCH_QWEN3_MOE && c->arch != AWQ_ARCH_QWEN2_MOE)
		return 0;
	if (c->arch == AWQ_ARCH_QWEN2_MOE) {
		rc = get_int(j, r, "", "shared_expert_intermediate_size", 1, 0, &c->shared_intermediate);
		if (rc)
			return rc;
	}
	/* transformers 5 aliases Qwen3MoeConfig.num_experts to num_local_experts and writes that key */
	const char *n_key = !item(r, "num_experts") && item(r, "num_local_experts") ? "num_local_experts"
										 : "num_experts";
	rc = get_int(j, r, "", n_key, 1, 0, &c->n_experts);
	rc = rc ? rc : get_int(j, r, "", "num_experts_per_tok", 1, 0, &c->n_experts_per_tok);
	rc = rc ? rc : get_int(j, r, "", "moe_intermediate_size", 1, 0, &c->moe_intermediate);
	rc = rc ? rc : get_int(j, r, "", "decoder_sparse_step", 0, 1, &c->decoder_sparse_step);
	rc = rc ? rc : get_bool(j, r, "", "norm_topk_prob", false, &c->norm_topk_prob);
	return rc ? rc : parse_mlp_only(j, r, c);
}

static int parse_not_convert(struct jctx *j, const cJSON *o, const char *pre, struct awq_quant *q)
{
	const cJSON *l = item(o, "modules_to_not_convert"), *e;
	if (!l)
		return 0;
	if (!cJSON_IsArray(l))
		return wrong_type(j, pre, "modules_to_not_convert", "a list of strings or null");
	cJSON_ArrayForEach(e, l) {
		if (!cJSON_IsString(e))
			return wrong_type(j, pre, "modules_to_not_convert", "a list of strings or null");
		if (q->n_not_convert == AWQ_MAX_NOT_CONVERT ||
		    strlen(e->valuestring) >= sizeof(q->not_convert[0]))
			return awq_err(j->err, j->errlen, AWQ_EUNSUPPORTED,
				       "%s: \"%smodules_to_not_convert\" has more than %d entries or one longer than %zu characters",
				       j->path, pre, AWQ_MAX_NOT_CONVERT,
				       sizeof(q->not_convert[0]) - 1);
		strcpy(q->not_convert[q->n_not_convert++], e->valuestring);
	}
	return 0;
}

/* Method and version; the older quant_config.json has neither key and is always AWQ GEMM. */
static int parse_quant_kind(struct jctx *j, const cJSON *o, const char *pre, int need_method)
{
	const char *method = NULL, *version = NULL, *backend = NULL;
	int rc = get_str(j, o, pre, "quant_method", &method);
	rc = rc ? rc : get_str(j, o, pre, "version", &version);
	rc = rc ? rc : get_str(j, o, pre, "backend", &backend);
	if (rc)
		return rc;
	if (!method && need_method)
		return missing(j, pre, "quant_method");
	if (method && strcasecmp(method, "awq") != 0)
		return awq_err(j->err, j->errlen, AWQ_EUNSUPPORTED,
			       "%s: unsupported quantization method \"%.32s\" (awqrun reads AWQ GEMM checkpoints)",
			       j->path, method);
	if (version && strcasecmp(version, "gemm") != 0)
		return awq_err(j->err, j->errlen, AWQ_EUNSUPPORTED,
			       "%s: unsupported quantization version \"%.32s\" for AWQ (only GEMM)",
			       j->path, version);
	/* llm-awq (MIT) packs differently from AutoAWQ's GEMM layout */
	if (backend && strcasecmp(backend, "autoawq") != 0)
		return awq_err(j->err, j->errlen, AWQ_EUNSUPPORTED,
			       "%s: unsupported quantization backend \"%.32s\" for AWQ (only autoawq)",
			       j->path, backend);
	return 0;
}

static int parse_quant_obj(struct jctx *j, const cJSON *o, const char *pre, int need_method,
			   struct awq_quant *q)
{
	memset(q, 0, sizeof(*q));
	if (!cJSON_IsObject(o))
		return awq_err(j->err, j->errlen, AWQ_EFORMAT, "%s: %s is not a JSON object",
			       j->path, pre[0] ? "\"quantization_config\"" : "the file");
	/* quant_config.json spelling only when the quantization_config one is absent */
	const char *bits_key = !item(o, "bits") && item(o, "w_bit") ? "w_bit" : "bits";
	const char *group_key =
		!item(o, "group_size") && item(o, "q_group_size") ? "q_group_size" : "group_size";
	int rc = parse_quant_kind(j, o, pre, need_method);
	rc = rc ? rc : get_int(j, o, pre, bits_key, 1, 0, &q->bits);
	rc = rc ? rc : get_int(j, o, pre, group_key, 1, 0, &q->group_size);
	rc = rc ? rc : get_bool(j, o, pre, "zero_point", true, &q->zero_point);
	rc = rc ? rc : parse_not_convert(j, o, pre, q);
	if (rc)
		return rc;
	q->method = AWQ_QUANT_AWQ;
	return 0;
}

int awq_quant_config_parse(const char *json, size_t len, const char *path, struct awq_quant *q,
			   char *err, size_t errlen)
{
	struct jctx j = {path, err, errlen};
	memset(q, 0, sizeof(*q));
	cJSON *root = cJSON_ParseWithLength(json, len);
	if (!root)
		return awq_err(err, errlen, AWQ_EFORMAT, "%s: not valid JSON", path);
	int rc = check_duplicates(&j, root, 0);
	rc = rc ? rc : parse_quant_obj(&j, root, "", 0, q);
	cJSON_Delete(root);
	if (rc)
		memset(q, 0, sizeof(*q));
	return rc;
}

static int parse_root(struct jctx *j, const cJSON *root, struct awq_config *c)
{
	int rc = check_duplicates(j, root, 0);
	rc = rc ? rc : parse_arch(j, root, c);
	rc = rc ? rc : parse_sizes(j, root, c);
	rc = rc ? rc : parse_rope(j, root, &c->rope);
	rc = rc ? rc : parse_flags(j, root, c);
	rc = rc ? rc : parse_tokens(j, root, c);
	rc = rc ? rc : parse_moe(j, root, c);
	if (rc)
		return rc;
	const cJSON *q = item(root, "quantization_config");
	if (q)
		return parse_quant_obj(j, q, "quantization_config.", 1, &c->quant);
	return 0;
}

int awq_config_parse(const char *json, size_t len, const char *path, struct awq_config *c,
		     char *err, size_t errlen)
{
	struct jctx j = {path, err, errlen};
	memset(c, 0, sizeof(*c));
	cJSON *root = cJSON_ParseWithLength(json, len);
	if (!root)
		return awq_err(err, errlen, AWQ_EFORMAT, "%s: not valid JSON", path);
	int rc = cJSON_IsObject(root) ? parse_root(&j, root, c)
				      : awq_err(err, errlen, AWQ_EFORMAT,
						"%s: not a JSON object", path);
	cJSON_Delete(root);
	if (rc)
		memset(c, 0, sizeof(*c));
	return rc;
}

static int bad(struct jctx *j, const char *key, const char *why)
{
	return awq_err(j->err, j->errlen, AWQ_EFORMAT, "%s: \"%s\" %s", j->path, key, why);
}

static int validate_shape(struct jctx *j, struct awq_config *c)
{
	if (c->hidden <= 0)
		return bad(j, "hidden_size", "must be positive");
	if (c->n_layers <= 0)
		return bad(j, "num_hidden_layers", "must be positive");
	if (c->n_heads <= 0)
		return bad(j, "num_attention_heads", "must be positive");
	if (c->intermediate <= 0)
		return bad(j, "intermediate_size", "must be positive");
	if (c->vocab <= 0)
		return bad(j, "vocab_size", "must be positive");
	if (c->max_pos <= 0)
		return bad(j, "max_position_embeddings", "must be positive");
	if (c->n_kv_heads == 0)
		c->n_kv_heads = c->n_heads;
	if (c->n_kv_heads < 0 || c->n_heads % c->n_kv_heads)
		return bad(j, "num_key_value_heads", "must be positive and divide num_attention_heads");
	if (c->head_dim == 0) {
		if (c->hidden % c->n_heads)
			return bad(j, "num_attention_heads",
				   "must divide hidden_size when head_dim is not given");
		c->head_dim = c->hidden / c->n_heads;
	}
	if (c->head_dim <= 0 || c->head_dim % 2)
		return bad(j, "head_dim", "must be positive and even (rotary embedding)");
	if ((int64_t)c->n_heads * c->head_dim > INT_MAX)
		return bad(j, "num_attention_heads", "times head_dim is too large");
	if (!(c->rms_eps > 0.0f))
		return bad(j, "rms_norm_eps", "must be positive");
	return 0;
}

static int validate_rope(struct jctx *j, const struct awq_rope *r)
{
	if (!(r->theta > 0.0f))
		return bad(j, "rope_theta", "must be positive");
	if (r->type != AWQ_ROPE_DEFAULT && !(r->factor > 0.0f))
		return bad(j, "rope_scaling.factor", "must be positive");
	if (r->type == AWQ_ROPE_LLAMA3 &&
	    !(r->low_freq_factor > 0.0f && r->high_freq_factor > r->low_freq_factor))
		return bad(j, "rope_scaling.high_freq_factor",
			   "must be greater than a positive low_freq_factor");
	if (r->type == AWQ_ROPE_LLAMA3 && r->original_max_pos <= 0)
		return bad(j, "rope_scaling.original_max_position_embeddings", "must be positive");
	return 0;
}

static int validate_moe(struct jctx *j, const struct awq_config *c)
{
	if (!awq_arch_is_moe(c->arch))
		return 0;
	if (awq_arch_shared_expert(c->arch) && c->shared_intermediate <= 0)
		return bad(j, "shared_expert_intermediate_size", "must be positive");
	if (c->n_experts <= 0)
		return bad(j, "num_experts", "must be positive");
	if (c->n_experts_per_tok <= 0 || c->n_experts_per_tok > c->n_experts)
		return bad(j, "num_experts_per_tok", "must be between 1 and the number of experts");
	if (c->moe_intermediate <= 0)
		return bad(j, "moe_intermediate_size", "must be positive");
	if (c->decoder_sparse_step <= 0)
		return bad(j, "decoder_sparse_step", "must be positive");
	for (int i = 0; i < c->n_mlp_only; i++)
		if (c->mlp_only_layers[i] < 0 || c->mlp_only_layers[i] >= c->n_layers)
			return bad(j, "mlp_only_layers", "names a layer that does not exist");
	return 0;
}

static int validate_tokens(struct jctx *j, const struct awq_config *c)
{
	if (c->bos_id < -1 || c->bos_id >= c->vocab)
		return bad(j, "bos_token_id", "is outside the vocabulary");
	for (int i = 0; i < c->n_eos; i++)
		if (c->eos_ids[i] < 0 || c->eos_ids[i] >= c->vocab)
			return bad(j, "eos_token_id", "is outside the vocabulary");
	return 0;
}

static int validate_quant(struct jctx *j, const struct awq_quant *q)
{
	if (q->method == AWQ_QUANT_NONE)
		return 0;
	if (q->bits != 4)
		return awq_err(j->err, j->errlen, AWQ_EUNSUPPORTED,
			       "%s: unsupported quantization: %d-bit AWQ (only 4-bit)", j->path,
			       q->bits);
	if (q->group_size == 0 || q->group_size < -1)
		return bad(j, "quantization_config.group_size", "must be positive or -1");
	return 0;
}

int awq_config_validate(struct awq_config *c, const char *path, char *err, size_t errlen)
{
	struct jctx j = {path, err, errlen};
	c->qkv_bias |= awq_arch_qkv_bias(c->arch);
	c->qk_norm |= awq_arch_qk_norm(c->arch);
	int rc = validate_shape(&j, c);
	rc = rc ? rc : validate_rope(&j, &c->rope);
	rc = rc ? rc : validate_moe(&j, c);
	rc = rc ? rc : validate_tokens(&j, c);
	return rc ? rc : validate_quant(&j, &c->quant);
}

bool awq_arch_qkv_bias(enum awq_arch a)
{
	return a == AWQ_ARCH_QWEN2;
}

bool awq_arch_qkv_bias_default(enum awq_arch a)
{
	return a == AWQ_ARCH_QWEN2 || a == AWQ_ARCH_QWEN2_MOE;
}

bool awq_arch_qk_norm(enum awq_arch a)
{
	return a == AWQ_ARCH_QWEN3 || a == AWQ_ARCH_QWEN3_MOE;
}

bool awq_arch_shared_expert(enum awq_arch a)
{
	return a == AWQ_ARCH_QWEN2_MOE;
}

bool awq_arch_is_moe(enum awq_arch a)
{
	return a == AWQ_ARCH_QWEN3_MOE || a == AWQ_ARCH_MIXTRAL || a == AWQ_ARCH_QWEN2_MOE;
}

bool awq_layer_is_sparse(const struct awq_config *c, int layer)
{
	if (!awq_arch_is_moe(c->arch))
		return false;
	for (int i = 0; i < c->n_mlp_only; i++)
		if (c->mlp_only_layers[i] == layer)
			return false;
	/* Qwen3MoeDecoderLayer's rule; Mixtral has step 1 and no mlp_only_layers */
	return c->n_experts > 0 && c->decoder_sparse_step > 0 && (layer + 1) % c->decoder_sparse_step == 0;
}
