/* The sparse MLP of Qwen3-MoE, Mixtral and Qwen2-MoE layers (formats.md section 6): a router picks
 * top-k experts per token, and their SwiGLU outputs are summed with the router's weights; Qwen2-MoE
 * adds a shared expert (a SwiGLU MLP every token runs) scaled by sigmoid(shared_expert_gate(x)).
 * The rest of the decoder is the dense builder's (arch_llama.c), which calls this for layers that
 * are sparse.
 *
 * Qwen3MoeSparseMoeBlock: softmax over all experts in f32, top-k, renormalised when
 * norm_topk_prob. MixtralSparseMoeBlock (transformers 5, MixtralTopKRouter): the same softmax and
 * top-k, always renormalised, which equals a softmax over the k selected logits; so both map to
 * one MOE_ROUTE with norm_topk set from the config (config.c sets it for Mixtral). */
#include <stdio.h>

#include "graph.h"

int awq_build_moe_mlp(struct awq_graph *g, const struct awq_model *m, int l, int h)
{
	const struct awq_config *c = &m->cfg;
	const struct awq_layer *L = &m->layers[l];
	struct awq_node p = {0};
	char name[48];
	int route;

	p.p.moe.n_experts = L->experts.n;
	p.p.moe.top_k = c->n_experts_per_tok;
	p.p.moe.norm_topk = c->norm_topk_prob;
	snprintf(name, sizeof(name), "l%d.route", l);
	route = awq_graph_node(g, AWQ_OP_MOE_ROUTE, 2 * c->n_experts_per_tok, name, h, -1, -1, &L->router, &p);
	if (route < 0)
		return route;
	p.experts = &L->experts;
	snprintf(name, sizeof(name), "l%d.experts", l);
	int ex = awq_graph_node(g, AWQ_OP_MOE_EXPERTS, c->hidden, name, h, route, -1, NULL, &p);
	if (ex < 0 || !L->has_shared)
		return ex;
	/* Qwen2MoeSparseMoeBlock: experts + sigmoid(shared_expert_gate(x)) * shared_expert(x) */
	int sd, gl, gs;
	if ((sd = awq_build_swiglu(g, L, l, h, "shared_")) < 0)
		return sd;
	snprintf(name, sizeof(name), "l%d.shared_logit", l);
	if ((gl = awq_graph_node(g, AWQ_OP_MATMUL, 1, name, h, -1, -1, &L->shared_gate, NULL)) < 0)
		return gl;
	snprintf(name, sizeof(name), "l%d.shared", l);
	if ((gs = awq_graph_node(g, AWQ_OP_SIGMOID_MUL, c->hidden, name, gl, sd, -1, NULL, NULL)) < 0)
		return gs;
	snprintf(name, sizeof(name), "l%d.moe_out", l);
	return awq_graph_node(g, AWQ_OP_ADD, c->hidden, name, ex, gs, -1, NULL, NULL);
}
