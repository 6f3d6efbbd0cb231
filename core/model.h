/* In-memory model: parsed config.json and the weights of every layer, each in its stored format.
 * Weight data points into memory-mapped safetensors files (or into memory a synthetic model owns). */
#ifndef AWQ_MODEL_H
#define AWQ_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "awqrun.h"
#include "dtype.h"

enum awq_arch {
	AWQ_ARCH_LLAMA,     /* LlamaForCausalLM, MistralForCausalLM */
	AWQ_ARCH_QWEN2,     /* Qwen2ForCausalLM: q/k/v bias */
	AWQ_ARCH_QWEN3,     /* Qwen3ForCausalLM: q_norm/k_norm */
	AWQ_ARCH_QWEN3_MOE, /* Qwen3MoeForCausalLM */
	AWQ_ARCH_MIXTRAL,   /* MixtralForCausalLM */
	AWQ_ARCH_QWEN2_MOE, /* Qwen2MoeForCausalLM: Qwen2 attention, experts plus a gated shared expert */
};

enum awq_rope_type { AWQ_ROPE_DEFAULT, AWQ_ROPE_LLAMA3, AWQ_ROPE_LINEAR };

struct awq_rope {
	float theta;
	enum awq_rope_type type;
	float factor;           /* llama3 / linear */
	float low_freq_factor;  /* llama3 */
	float high_freq_factor; /* llama3 */
	int original_max_pos;   /* llama3 */
};

enum awq_quant_method { AWQ_QUANT_NONE, AWQ_QUANT_AWQ };

#define AWQ_MAX_NOT_CONVERT 64
#define AWQ_MAX_EOS 8

struct awq_quant {
	enum awq_quant_method method;
	int bits;       /* 4 */
	int group_size; /* divides in_features of every quantized Linear */
	bool zero_point;
	int n_not_convert;
	char not_convert[AWQ_MAX_NOT_CONVERT][96]; /* modules_to_not_convert (substring match on names) */
};

struct awq_config {
	enum awq_arch arch;
	char arch_name[64]; /* the "architectures"[0] string */
	int hidden, n_layers, n_heads, n_kv_heads, head_dim, intermediate, vocab;
	int max_pos;
	float rms_eps;
	struct awq_rope rope;
	bool tie_embeddings;
	bool qkv_bias; /* Qwen2 (and Llama with attention_bias) */
	bool qk_norm;  /* Qwen3 */
	enum awq_dtype dtype; /* torch_dtype of the unquantized tensors */
	/* mixture of experts */
	int n_experts, n_experts_per_tok, moe_intermediate, decoder_sparse_step;
	int shared_intermediate; /* Qwen2-MoE shared expert; 0 when the architecture has none */
	bool norm_topk_prob;
	int n_mlp_only;
	int mlp_only_layers[256];
	/* tokens */
	int bos_id; /* -1 if none */
	int n_eos;
	int eos_ids[AWQ_MAX_EOS];
	struct awq_quant quant;
};

enum awq_wfmt {
	AWQ_WFMT_DENSE, /* data [n, k] (nn.Linear layout) in F32/F16/BF16; vectors: [n], k = 1 */
	AWQ_WFMT_AWQ4,  /* AutoAWQ GEMM: qweight i32 [k, n/8], qzeros i32 [k/G, n/8], scales f16 [k/G, n] */
};

struct awq_weight {
	char name[128]; /* tensor base name, e.g. "model.layers.0.self_attn.q_proj" */
	enum awq_wfmt fmt;
	int64_t n, k;   /* out_features (rows of W^T), in_features */
	/* DENSE */
	enum awq_dtype dtype;
	const void *data;
	/* AWQ4: weights stay packed. W[k][n] = (q[k][n] - zero[k/G][n]) * scale[k/G][n]; nibble
	 * order inside each int32 is AutoAWQ's interleaved [0,4,1,5,2,6,3,7] (see awq_awq4_get). When
	 * qzeros is NULL (zero_point false) every zero is sym_zero. */
	const int32_t *qweight;
	const int32_t *qzeros;
	const uint16_t *scales; /* f16 bits */
	int group_size;
	int sym_zero;
	/* optional bias [n] */
	const void *bias;
	enum awq_dtype bias_dtype;
};

/* Logical 4-bit value at row k, column n of a packed AWQ int32 matrix with n_cols logical columns. */
static inline int awq_awq4_get(const int32_t *packed, int64_t n_cols, int64_t k, int64_t n)
{
	static const int reverse_order[8] = {0, 4, 1, 5, 2, 6, 3, 7};
	uint32_t word = (uint32_t)packed[k * (n_cols / 8) + n / 8];
	return (int)((word >> (4 * reverse_order[n % 8])) & 0xfu);
}

/* Dequantized W[k][n] of an AWQ4 weight (reference path and tests). */
static inline float awq_awq4_weight_at(const struct awq_weight *w, int64_t k, int64_t n)
{
	int64_t g = k / w->group_size;
	int q = awq_awq4_get(w->qweight, w->n, k, n);
	int z = w->qzeros ? awq_awq4_get(w->qzeros, w->n, g, n) : w->sym_zero;
	return (float)(q - z) * awq_f16_to_f32(w->scales[g * w->n + n]);
}

struct awq_experts {
	int n;                 /* number of experts */
	struct awq_weight *gate, *up, *down; /* arrays of n */
};

struct awq_layer {
	struct awq_weight attn_norm, q, k, v, o;
	struct awq_weight q_norm, k_norm; /* Qwen3 only */
	struct awq_weight mlp_norm;
	/* dense MLP; in a sparse layer with a shared expert (has_shared), the shared expert's */
	struct awq_weight gate, up, down;
	/* sparse MLP (MoE); is_moe tells which one the layer has */
	bool is_moe;
	struct awq_weight router; /* [n_experts, hidden] */
	struct awq_experts experts;
	bool has_shared;                 /* Qwen2-MoE: + sigmoid(shared_gate x) * shared expert(x) */
	struct awq_weight shared_gate;   /* [1, hidden], 16-bit */
};

struct awq_mapping; /* a mapped file, owned by the model */

struct awq_model {
	struct awq_config cfg;
	char dir[1024];
	struct awq_weight embed, final_norm, lm_head; /* lm_head copies embed's fields when tied */
	struct awq_layer *layers;
	/* storage */
	struct awq_mapping *maps;
	int n_maps;
	void *owned;       /* synthetic models: one allocation holding all weight data */
	size_t owned_size;
	char precision[32];
};

/* Fill derived defaults (head_dim, kv heads, ...) and check the config for consistency. */
int awq_config_validate(struct awq_config *c, const char *path, char *err, size_t errlen);

/* Parse config.json (text, already read) into c. path is used in messages. */
int awq_config_parse(const char *json, size_t len, const char *path, struct awq_config *c,
		     char *err, size_t errlen);

/* Parse the AWQ settings of an older checkpoint's separate quant_config.json (keys w_bit,
 * q_group_size, zero_point, version; quantization_config's key names are accepted too). */
int awq_quant_config_parse(const char *json, size_t len, const char *path, struct awq_quant *q,
			   char *err, size_t errlen);

/* Qwen3-MoE, Mixtral and Qwen2-MoE: the architectures with sparse (mixture-of-experts) layers. */
bool awq_arch_is_moe(enum awq_arch a);
/* Attention rules of the architectures: q/k/v biases always (Qwen2) or by default when the config
 * does not say (Qwen2-MoE's qkv_bias key); per-head q/k RMSNorm (the Qwen3 families). */
bool awq_arch_qkv_bias(enum awq_arch a);
bool awq_arch_qkv_bias_default(enum awq_arch a);
bool awq_arch_qk_norm(enum awq_arch a);
/* Sparse layers with a shared expert beside the routed ones (Qwen2-MoE; shared_intermediate > 0). */
bool awq_arch_shared_expert(enum awq_arch a);
/* Whether layer has a sparse (mixture-of-experts) MLP: Qwen3-MoE's (and Qwen2-MoE's)
 * decoder_sparse_step and mlp_only_layers rule; every layer of Mixtral. */
bool awq_layer_is_sparse(const struct awq_config *c, int layer);

/* Bytes one weight occupies as stored (data, scales, zeros, bias). */
uint64_t awq_weight_bytes(const struct awq_weight *w);

#endif
