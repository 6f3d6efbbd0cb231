/* Graph builder for the dense Llama family: Llama 2/3, Mistral, Qwen2 (q/k/v bias, carried by the
 * weights), Qwen3 (per-head q_norm/k_norm before RoPE). The forward pass is formats.md section 6. */
#include <math.h>
#include <stdio.h>

#include "error.h"
#include "graph.h"

#define TRY(x)                                                                                     \
	do {                                                                                       \
		if ((x) < 0)                                                                       \
			goto nomem;                                                                \
	} while (0)

static int norm(struct awq_graph *g, int x, const struct awq_weight *w, float eps, int group,
		const char *name)
{
	struct awq_node p = {0};
	p.p.norm.eps = eps;
	p.p.norm.group = group;
	return awq_graph_node(g, AWQ_OP_RMSNORM, g->values[x].cols, name, x, -1, -1, w, &p);
}

static int matmul(struct awq_graph *g, int x, const struct awq_weight *w, const char *name)
{
	return awq_graph_node(g, AWQ_OP_MATMUL, (int)w->n, name, x, -1, -1, w, NULL);
}

int awq_build_swiglu(struct awq_graph *g, const struct awq_layer *L, int l, int h, const char *pre)
{
	char name[48];
	int gt, up, act;
	snprintf(name, sizeof(name), "l%d.%sgate", l, pre);
	if ((gt = matmul(g, h, &L->gate, name)) < 0)
		return gt;
	snprintf(name, sizeof(name), "l%d.%sup", l, pre);
	if ((up = matmul(g, h, &L->up, name)) < 0)
		return up;
	snprintf(name, sizeof(name), "l%d.%sact", l, pre);
	if ((act = awq_graph_node(g, AWQ_OP_SILU_MUL, (int)L->gate.n, name, gt, up, -1, NULL, NULL)) < 0)
		return act;
	snprintf(name, sizeof(name), "l%d.%sdown", l, pre);
	return matmul(g, act, &L->down, name);
}

static int rope(struct awq_graph *g, const struct awq_config *c, int x, int heads, const char *name)
{
	struct awq_node p = {0};
	p.p.rope.n_heads = heads;
	p.p.rope.head_dim = c->head_dim;
	p.p.rope.rope = c->rope;
	return awq_graph_node(g, AWQ_OP_ROPE, heads * c->head_dim, name, x, -1, -1, NULL, &p);
}

int awq_build_graph(const struct awq_model *m, struct awq_graph *g, char *err, size_t errlen)
{
	const struct awq_config *c = &m->cfg;
	char name[48];
	int x, h, q, k, v, a;

	if (c->arch != AWQ_ARCH_LLAMA && c->arch != AWQ_ARCH_QWEN2 && c->arch != AWQ_ARCH_QWEN3 &&
	    !awq_arch_is_moe(c->arch))
		return awq_err(err, errlen, AWQ_EUNSUPPORTED, "%s: no graph builder for architecture %s", m->dir,
			       c->arch_name);
	awq_graph_init(g);
	g->model = m;
	g->n_kv_layers = c->n_layers;
	g->kv_heads = c->n_kv_heads;
	g->head_dim = c->head_dim;

	TRY(g->tokens_in = awq_graph_value(g, AWQ_V_TOKENS, 1, "tokens"));
	TRY(x = awq_graph_node(g, AWQ_OP_EMBED, c->hidden, "embed", g->tokens_in, -1, -1, &m->embed, NULL));
	for (int l = 0; l < c->n_layers; l++) {
		const struct awq_layer *L = &m->layers[l];
		struct awq_node p = {0};

		snprintf(name, sizeof(name), "l%d.attn_in", l);
		TRY(h = norm(g, x, &L->attn_norm, c->rms_eps, c->hidden, name));
		snprintf(name, sizeof(name), "l%d.q", l);
		TRY(q = matmul(g, h, &L->q, name));
		snprintf(name, sizeof(name), "l%d.k", l);
		TRY(k = matmul(g, h, &L->k, name));
		snprintf(name, sizeof(name), "l%d.v", l);
		TRY(v = matmul(g, h, &L->v, name));
		if (c->qk_norm) {
			snprintf(name, sizeof(name), "l%d.q_norm", l);
			TRY(q = norm(g, q, &L->q_norm, c->rms_eps, c->head_dim, name));
			snprintf(name, sizeof(name), "l%d.k_norm", l);
			TRY(k = norm(g, k, &L->k_norm, c->rms_eps, c->head_dim, name));
		}
		snprintf(name, sizeof(name), "l%d.q_rope", l);
		TRY(q = rope(g, c, q, c->n_heads, name));
		snprintf(name, sizeof(name), "l%d.k_rope", l);
		TRY(k = rope(g, c, k, c->n_kv_heads, name));
		p.p.attn.layer = l;
		p.p.attn.n_heads = c->n_heads;
		p.p.attn.n_kv_heads = c->n_kv_heads;
		p.p.attn.head_dim = c->head_dim;
		p.p.attn.scale = 1.0f / sqrtf((float)c->head_dim);
		snprintf(name, sizeof(name), "l%d.attn", l);
		TRY(a = awq_graph_node(g, AWQ_OP_ATTENTION, c->n_heads * c->head_dim, name, q, k, v, NULL, &p));
		snprintf(name, sizeof(name), "l%d.o", l);
		TRY(a = matmul(g, a, &L->o, name));
		snprintf(name, sizeof(name), "l%d.res1", l);
		TRY(x = awq_graph_node(g, AWQ_OP_ADD, c->hidden, name, x, a, -1, NULL, NULL));

		snprintf(name, sizeof(name), "l%d.mlp_in", l);
		TRY(h = norm(g, x, &L->mlp_norm, c->rms_eps, c->hidden, name));
		if (L->is_moe) {
			TRY(a = awq_build_moe_mlp(g, m, l, h));
			snprintf(name, sizeof(name), "l%d.res2", l);
			TRY(x = awq_graph_node(g, AWQ_OP_ADD, c->hidden, name, x, a, -1, NULL, NULL));
			continue;
		}
		TRY(a = awq_build_swiglu(g, L, l, h, ""));
		snprintf(name, sizeof(name), "l%d.res2", l);
		TRY(x = awq_graph_node(g, AWQ_OP_ADD, c->hidden, name, x, a, -1, NULL, NULL));
	}
	TRY(x = awq_graph_node(g, AWQ_OP_LAST_ROWS, c->hidden, "last", x, -1, -1, NULL, NULL));
	TRY(x = norm(g, x, &m->final_norm, c->rms_eps, c->hidden, "final_norm"));
	TRY(g->logits_out = matmul(g, x, &m->lm_head, "logits"));
	TRY(g->argmax_out = awq_graph_node(g, AWQ_OP_ARGMAX, 1, "argmax", g->logits_out, -1, -1, NULL, NULL));
	int rc = awq_graph_check(g, err, errlen);
	if (rc)
		awq_graph_free(g);
	return rc;
nomem:
	awq_graph_free(g);
	return awq_err(err, errlen, AWQ_ENOMEM, "out of memory building the graph");
}
