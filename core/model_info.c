/* Model summary figures: parameters, stored bytes, and bytes read per decoded token. */
#include <string.h>

#include "model.h"

uint64_t awq_weight_bytes(const struct awq_weight *w)
{
	uint64_t b = 0;
	if (w->fmt == AWQ_WFMT_AWQ4) {
		uint64_t groups = (uint64_t)(w->k / w->group_size);
		b = (uint64_t)w->k * (uint64_t)w->n / 2 + groups * (uint64_t)w->n * 2;
		if (w->qzeros)
			b += groups * (uint64_t)w->n / 2;
	} else {
		b = (uint64_t)w->n * (uint64_t)w->k * awq_dtype_size(w->dtype);
	}
	if (w->bias)
		b += (uint64_t)w->n * awq_dtype_size(w->bias_dtype);
	return b;
}

static uint64_t params(const struct awq_weight *w)
{
	return (uint64_t)w->n * (uint64_t)w->k + (w->bias ? (uint64_t)w->n : 0);
}

static const char *arch_short(enum awq_arch a)
{
	switch (a) {
	case AWQ_ARCH_LLAMA: return "llama";
	case AWQ_ARCH_QWEN2: return "qwen2";
	case AWQ_ARCH_QWEN3: return "qwen3";
	case AWQ_ARCH_QWEN3_MOE: return "qwen3_moe";
	case AWQ_ARCH_MIXTRAL: return "mixtral";
	case AWQ_ARCH_QWEN2_MOE: return "qwen2_moe";
	}
	return "?";
}

int awq_model_get_info(const awq_model *m, struct awq_model_info *info)
{
	const struct awq_config *c = &m->cfg;
	uint64_t layer_bytes = 0, layer_params = 0, active_bytes = 0;

	memset(info, 0, sizeof(*info));
	info->arch = arch_short(c->arch);
	info->precision = m->precision;
	info->n_layers = c->n_layers;
	info->hidden = c->hidden;
	info->n_heads = c->n_heads;
	info->n_kv_heads = c->n_kv_heads;
	info->head_dim = c->head_dim;
	info->intermediate = c->intermediate;
	info->vocab = c->vocab;
	info->n_experts = c->n_experts;
	info->n_experts_per_tok = c->n_experts_per_tok;
	info->max_position = c->max_pos;
	for (int l = 0; l < c->n_layers; l++) {
		const struct awq_layer *L = &m->layers[l];
		const struct awq_weight *ws[] = {&L->attn_norm, &L->q, &L->k, &L->v, &L->o, &L->mlp_norm,
						 &L->gate, &L->up, &L->down, &L->q_norm, &L->k_norm};
		int nw = c->qk_norm ? 11 : 9;
		for (int i = 0; i < nw; i++) {
			/* a sparse layer's gate/up/down are its shared expert's, read every token */
			if (L->is_moe && !L->has_shared && (ws[i] == &L->gate || ws[i] == &L->up || ws[i] == &L->down))
				continue;
			layer_bytes += awq_weight_bytes(ws[i]);
			layer_params += params(ws[i]);
		}
		if (L->has_shared) {
			layer_bytes += awq_weight_bytes(&L->shared_gate);
			layer_params += params(&L->shared_gate);
		}
		if (L->is_moe) {
			uint64_t expert_bytes = 0;
			layer_bytes += awq_weight_bytes(&L->router);
			layer_params += params(&L->router);
			active_bytes += awq_weight_bytes(&L->router);
			for (int e = 0; e < L->experts.n; e++) {
				const struct awq_weight *ew[] = {&L->experts.gate[e], &L->experts.up[e], &L->experts.down[e]};
				for (int i = 0; i < 3; i++) {
					expert_bytes += awq_weight_bytes(ew[i]);
					layer_params += params(ew[i]);
				}
			}
			layer_bytes += expert_bytes;
			if (L->experts.n > 0)
				active_bytes += expert_bytes / (uint64_t)L->experts.n * (uint64_t)c->n_experts_per_tok;
		}
	}
	/* Dense layers: everything is read per token. MoE layers: attention + router + top-k experts. */
	uint64_t dense_layer_bytes = layer_bytes;
	for (int l = 0; l < c->n_layers; l++) {
		const struct awq_layer *L = &m->layers[l];
		if (!L->is_moe)
			continue;
		dense_layer_bytes -= awq_weight_bytes(&L->router);
		for (int e = 0; e < L->experts.n; e++)
			dense_layer_bytes -= awq_weight_bytes(&L->experts.gate[e]) + awq_weight_bytes(&L->experts.up[e]) +
					     awq_weight_bytes(&L->experts.down[e]);
	}
	uint64_t embed = awq_weight_bytes(&m->embed), head = awq_weight_bytes(&m->lm_head);
	uint64_t norm = awq_weight_bytes(&m->final_norm);
	info->weight_bytes = layer_bytes + embed + norm + (c->tie_embeddings ? 0 : head);
	info->n_params = layer_params + params(&m->embed) + params(&m->final_norm) +
			 (c->tie_embeddings ? 0 : params(&m->lm_head));
	info->decode_bytes = dense_layer_bytes + active_bytes + norm + head +
			     (uint64_t)c->hidden * awq_dtype_size(m->embed.dtype);
	info->kv_bytes_per_token = 2ull * (uint64_t)c->n_layers * (uint64_t)c->n_kv_heads * (uint64_t)c->head_dim * 4;
	return 0;
}
