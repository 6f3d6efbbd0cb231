/* The loader on small MoE checkpoints written by tests/loader/ckpt.c: Qwen3-MoE, Mixtral and
 * Qwen2-MoE (with its shared expert), 16-bit and AWQ experts, which layers are sparse
 * (mlp_only_layers, decoder_sparse_step), and broken ones: a missing expert tensor, a router of the
 * wrong shape, a quantized router, a missing or quantized shared-expert gate, bad MoE config values.
 * Every failure must be a one-line message naming the file and tensor or key. */
#include <stdlib.h>
#include <string.h>

#include "awqrun.h"
#include "ckpt.h"
#include "graph.h"
#include "moe_test.h"

#define E 4
#define TOPK 2
#define MOE_I 16
#define SHARED_I 24 /* Qwen2-MoE shared expert */

enum { K_QWEN3, K_MIXTRAL, K_QWEN2 };

struct moe_ck {
	struct spec s;
	int mixtral, qwen2;
	cJSON *cfg;
	struct tw w;
	char dir[1100];
};

static void add_linear(struct moe_ck *c, const char *base, int n, int k)
{
	char t[224];
	if (c->s.awq) {
		snprintf(t, sizeof(t), "%s.qweight", base);
		tw_add(&c->w, t, AWQ_DT_I32, 2, k, n / 8);
		snprintf(t, sizeof(t), "%s.qzeros", base);
		tw_add(&c->w, t, AWQ_DT_I32, 2, k / c->s.group, n / 8);
		snprintf(t, sizeof(t), "%s.scales", base);
		tw_add(&c->w, t, AWQ_DT_F16, 2, k / c->s.group, n);
	} else {
		snprintf(t, sizeof(t), "%s.weight", base);
		tw_add(&c->w, t, c->s.dt, 2, n, k);
	}
}

/* Replaces the dense MLP of `layer` (as spec_tensors wrote it) by a router and E experts. */
static void make_sparse(struct moe_ck *c, int layer)
{
	const char *blk = c->mixtral ? "block_sparse_moe" : "mlp";
	const char *names[3] = {"gate_proj", "up_proj", "down_proj"}, *mix[3] = {"w1", "w3", "w2"};
	const char *sfx[4] = {"weight", "qweight", "qzeros", "scales"};
	char b[200];
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 4; j++) {
			snprintf(b, sizeof(b), "model.layers.%d.mlp.%s.%s", layer, names[i], sfx[j]);
			tw_remove(&c->w, b);
		}
	snprintf(b, sizeof(b), "model.layers.%d.%s.gate.weight", layer, blk);
	tw_add(&c->w, b, c->s.awq ? AWQ_DT_F16 : c->s.dt, 2, E, c->s.hidden);
	for (int e = 0; e < E; e++)
		for (int i = 0; i < 3; i++) {
			snprintf(b, sizeof(b), "model.layers.%d.%s.experts.%d.%s", layer, blk, e,
				 c->mixtral ? mix[i] : names[i]);
			add_linear(c, b, i == 2 ? c->s.hidden : MOE_I, i == 2 ? MOE_I : c->s.hidden);
		}
	if (!c->qwen2)
		return;
	for (int i = 0; i < 3; i++) {
		snprintf(b, sizeof(b), "model.layers.%d.mlp.shared_expert.%s", layer, names[i]);
		add_linear(c, b, i == 2 ? c->s.hidden : SHARED_I, i == 2 ? SHARED_I : c->s.hidden);
	}
	snprintf(b, sizeof(b), "model.layers.%d.mlp.shared_expert_gate.weight", layer);
	tw_add(&c->w, b, c->s.awq ? AWQ_DT_F16 : c->s.dt, 2, 1, c->s.hidden);
}

/* A 2-layer checkpoint whose layers in sparse_mask (bit l) are sparse: Qwen3-MoE or Qwen2-MoE
 * (config: layer 1 in mlp_only_layers) or Mixtral (config: every layer sparse). */
static void ck_init(struct moe_ck *c, const char *name, int kind, int awq, int sparse_mask)
{
	const int mixtral = kind == K_MIXTRAL;
	memset(c, 0, sizeof(*c));
	c->mixtral = mixtral;
	c->qwen2 = kind == K_QWEN2;
	spec_default(&c->s, mixtral ? "MixtralForCausalLM" : c->qwen2 ? "Qwen2MoeForCausalLM" : "Qwen3MoeForCausalLM");
	c->s.awq = awq;
	if (mixtral) /* Mixtral's experts are intermediate_size wide */
		c->s.inter = MOE_I;
	c->cfg = spec_config(&c->s);
	if (mixtral) {
		cJSON_AddNumberToObject(c->cfg, "num_local_experts", E);
	} else {
		cJSON_AddNumberToObject(c->cfg, "num_experts", E);
		cJSON_AddNumberToObject(c->cfg, "moe_intermediate_size", MOE_I);
		cJSON_AddBoolToObject(c->cfg, "norm_topk_prob", 1);
		cJSON *only = cJSON_AddArrayToObject(c->cfg, "mlp_only_layers");
		cJSON_AddItemToArray(only, cJSON_CreateNumber(1));
	}
	if (c->qwen2) { /* the q/k/v biases are Qwen2-MoE's default; this checkpoint has none */
		cJSON_AddNumberToObject(c->cfg, "shared_expert_intermediate_size", SHARED_I);
		cJSON_AddBoolToObject(c->cfg, "qkv_bias", 0);
	}
	cJSON_AddNumberToObject(c->cfg, "num_experts_per_tok", TOPK);
	tw_init(&c->w, 77);
	spec_tensors(&c->s, &c->w);
	for (int l = 0; kind == K_QWEN3 && l < c->s.layers; l++) {
		char b[96];
		snprintf(b, sizeof(b), "model.layers.%d.self_attn.q_norm.weight", l);
		tw_add(&c->w, b, awq ? AWQ_DT_F16 : c->s.dt, 1, c->s.hidden / c->s.heads, 0);
		snprintf(b, sizeof(b), "model.layers.%d.self_attn.k_norm.weight", l);
		tw_add(&c->w, b, awq ? AWQ_DT_F16 : c->s.dt, 1, c->s.hidden / c->s.heads, 0);
	}
	for (int l = 0; l < c->s.layers; l++)
		if (sparse_mask >> l & 1)
			make_sparse(c, l);
	mt_newdir(name, c->dir, sizeof(c->dir));
}

static void ck_write(struct moe_ck *c)
{
	if (spec_write(&c->s, c->cfg, &c->w, c->dir)) {
		fprintf(stderr, "cannot write %s\n", c->dir);
		exit(1);
	}
}

static void ck_free(struct moe_ck *c)
{
	cJSON_Delete(c->cfg);
	tw_free(&c->w);
}

static void expect_fail(const char *what, struct moe_ck *c, int code, const char *s1, const char *s2)
{
	char err[AWQ_ERRLEN] = "";
	awq_model *m = NULL;
	ck_write(c);
	int rc = awq_model_load(c->dir, &m, err, sizeof(err));
	CHECK(rc == code && !m, "%s: load returned %d (want %d): %s", what, rc, code, err);
	CHECK(strstr(err, s1) && (!s2 || strstr(err, s2)) && !strchr(err, '\n'),
	      "%s: message \"%s\" lacks \"%s\"%s%s", what, err, s1, s2 ? " / " : "", s2 ? s2 : "");
	awq_model_free(m);
	ck_free(c);
}

static void expect_ok(const char *what, struct moe_ck *c, const int *sparse)
{
	char err[AWQ_ERRLEN] = "";
	awq_model *m = NULL;
	struct awq_graph g;
	ck_write(c);
	if (awq_model_load(c->dir, &m, err, sizeof(err))) {
		CHECK(0, "%s: %s", what, err);
		ck_free(c);
		return;
	}
	for (int l = 0; l < c->s.layers; l++) {
		const struct awq_layer *L = &m->layers[l];
		CHECK(L->is_moe == (sparse[l] != 0), "%s: layer %d sparse %d, want %d", what, l, L->is_moe, sparse[l]);
		if (!L->is_moe)
			continue;
		CHECK(L->experts.n == E && L->router.n == E && L->router.k == c->s.hidden &&
			      L->router.fmt == AWQ_WFMT_DENSE,
		      "%s: layer %d has %d experts, router [%lld, %lld]", what, l, L->experts.n, (long long)L->router.n,
		      (long long)L->router.k);
		const struct awq_weight *d = &L->experts.down[E - 1];
		CHECK(d->n == c->s.hidden && d->k == MOE_I && d->fmt == (c->s.awq ? AWQ_WFMT_AWQ4 : AWQ_WFMT_DENSE),
		      "%s: layer %d down expert %s is [%lld, %lld]", what, l, d->name, (long long)d->n, (long long)d->k);
		CHECK(L->has_shared == c->qwen2, "%s: layer %d shared expert %d", what, l, L->has_shared);
		if (c->qwen2)
			CHECK(L->gate.n == SHARED_I && L->down.k == SHARED_I && L->shared_gate.n == 1 &&
				      L->shared_gate.k == c->s.hidden && L->shared_gate.fmt == AWQ_WFMT_DENSE &&
				      L->down.fmt == (c->s.awq ? AWQ_WFMT_AWQ4 : AWQ_WFMT_DENSE),
			      "%s: layer %d shared expert %s [%lld, %lld], gate [%lld, %lld]", what, l, L->gate.name,
			      (long long)L->gate.n, (long long)L->gate.k, (long long)L->shared_gate.n,
			      (long long)L->shared_gate.k);
	}
	CHECK(awq_build_graph(m, &g, err, sizeof(err)) == 0, "%s: graph: %s", what, err);
	int routes = 0, gated = 0;
	for (int i = 0; i < g.n_nodes; i++) {
		routes += g.nodes[i].op == AWQ_OP_MOE_ROUTE;
		gated += g.nodes[i].op == AWQ_OP_SIGMOID_MUL;
	}
	CHECK(routes == sparse[0] + sparse[1], "%s: %d MOE_ROUTE nodes", what, routes);
	CHECK(gated == (c->qwen2 ? routes : 0), "%s: %d SIGMOID_MUL nodes for %d sparse layers", what, gated, routes);
	awq_graph_free(&g);
	awq_model_free(m);
	ck_free(c);
}

static void valid_cases(void)
{
	const int q_sparse[2] = {1, 0}, all[2] = {1, 1}, step2[2] = {0, 1};
	struct moe_ck c;
	ck_init(&c, "qwen3moe bf16", 0, 0, 1);
	expect_ok("qwen3-moe bf16, layer 1 in mlp_only_layers", &c, q_sparse);
	ck_init(&c, "qwen3moe awq", 0, 1, 1);
	expect_ok("qwen3-moe awq experts", &c, q_sparse);
	ck_init(&c, "mixtral bf16", 1, 0, 3);
	expect_ok("mixtral bf16", &c, all);
	ck_init(&c, "mixtral awq", 1, 1, 3);
	expect_ok("mixtral awq experts", &c, all);
	ck_init(&c, "qwen2moe bf16", K_QWEN2, 0, 1);
	expect_ok("qwen2-moe bf16 with a shared expert", &c, q_sparse);
	ck_init(&c, "qwen2moe awq", K_QWEN2, 1, 1);
	expect_ok("qwen2-moe awq experts and shared expert", &c, q_sparse);

	/* transformers 5 writes Qwen3MoeConfig.num_experts as num_local_experts */
	ck_init(&c, "qwen3moe tf5 key", 0, 0, 1);
	cJSON_DeleteItemFromObject(c.cfg, "num_experts");
	cJSON_AddNumberToObject(c.cfg, "num_local_experts", E);
	expect_ok("qwen3-moe with num_local_experts", &c, q_sparse);

	/* decoder_sparse_step 2: layer i sparse when (i + 1) % 2 == 0 */
	ck_init(&c, "qwen3moe step2", 0, 0, 2);
	cJSON_DeleteItemFromObject(c.cfg, "mlp_only_layers");
	cJSON_AddNumberToObject(c.cfg, "decoder_sparse_step", 2);
	expect_ok("qwen3-moe decoder_sparse_step 2", &c, step2);
}

static void bad_cases(void)
{
	struct moe_ck c;
	ck_init(&c, "missing expert", 0, 0, 1);
	tw_remove(&c.w, "model.layers.0.mlp.experts.3.up_proj.weight");
	expect_fail("missing expert tensor", &c, AWQ_EFORMAT, "model.safetensors",
		    "'model.layers.0.mlp.experts.3.up_proj.weight' not found");

	ck_init(&c, "missing awq scales", 1, 1, 3);
	tw_remove(&c.w, "model.layers.1.block_sparse_moe.experts.2.w2.scales");
	expect_fail("missing AWQ expert scales", &c, AWQ_EFORMAT, "model.safetensors",
		    "'model.layers.1.block_sparse_moe.experts.2.w2.scales' not found");

	ck_init(&c, "router shape", 0, 0, 1);
	tw_reshape(&c.w, tw_find(&c.w, "model.layers.0.mlp.gate.weight"), AWQ_DT_BF16, 2, E - 1, c.s.hidden);
	expect_fail("router with too few rows", &c, AWQ_EFORMAT, "'model.layers.0.mlp.gate.weight'",
		    "shape [3, 16], expected [4, 16]");

	ck_init(&c, "expert shape", 1, 0, 3);
	tw_reshape(&c.w, tw_find(&c.w, "model.layers.0.block_sparse_moe.experts.1.w1.weight"), AWQ_DT_BF16, 2,
		   MOE_I, c.s.hidden + 8);
	expect_fail("expert of the wrong width", &c, AWQ_EFORMAT, "experts.1.w1.weight'", "expected [16, 16]");

	ck_init(&c, "quantized router", 0, 1, 1);
	tw_remove(&c.w, "model.layers.0.mlp.gate.weight");
	add_linear(&c, "model.layers.0.mlp.gate", E * 2, c.s.hidden);
	expect_fail("quantized router", &c, AWQ_EUNSUPPORTED, "model.layers.0.mlp.gate", "16-bit");

	ck_init(&c, "topk too big", 0, 0, 1);
	cJSON_SetNumberValue(cJSON_GetObjectItem(c.cfg, "num_experts_per_tok"), E + 1);
	expect_fail("num_experts_per_tok > num_experts", &c, AWQ_EFORMAT, "config.json", "num_experts_per_tok");

	ck_init(&c, "mlp only out of range", 0, 0, 1);
	cJSON_AddItemToArray(cJSON_GetObjectItem(c.cfg, "mlp_only_layers"), cJSON_CreateNumber(7));
	expect_fail("mlp_only_layers past the last layer", &c, AWQ_EFORMAT, "config.json", "mlp_only_layers");

	ck_init(&c, "no experts key", 0, 0, 1);
	cJSON_DeleteItemFromObject(c.cfg, "num_experts");
	expect_fail("no num_experts", &c, AWQ_EFORMAT, "config.json", "\"num_experts\" is missing");

	ck_init(&c, "mixtral no experts key", 1, 0, 3);
	cJSON_DeleteItemFromObject(c.cfg, "num_local_experts");
	expect_fail("mixtral without num_local_experts", &c, AWQ_EFORMAT, "config.json", "num_local_experts");

	ck_init(&c, "qwen2moe no shared size", K_QWEN2, 0, 1);
	cJSON_DeleteItemFromObject(c.cfg, "shared_expert_intermediate_size");
	expect_fail("qwen2-moe without shared_expert_intermediate_size", &c, AWQ_EFORMAT, "config.json",
		    "shared_expert_intermediate_size");

	ck_init(&c, "qwen2moe missing shared gate", K_QWEN2, 1, 1);
	tw_remove(&c.w, "model.layers.0.mlp.shared_expert_gate.weight");
	expect_fail("qwen2-moe without shared_expert_gate", &c, AWQ_EFORMAT, "model.safetensors",
		    "'model.layers.0.mlp.shared_expert_gate.weight' not found");

	ck_init(&c, "qwen2moe quantized shared gate", K_QWEN2, 1, 1);
	tw_remove(&c.w, "model.layers.0.mlp.shared_expert_gate.weight");
	add_linear(&c, "model.layers.0.mlp.shared_expert_gate", 8, c.s.hidden);
	expect_fail("qwen2-moe with a quantized shared_expert_gate", &c, AWQ_EUNSUPPORTED,
		    "model.layers.0.mlp.shared_expert_gate", "16-bit");

	ck_init(&c, "qwen2moe missing shared down", K_QWEN2, 0, 1);
	tw_remove(&c.w, "model.layers.0.mlp.shared_expert.down_proj.weight");
	expect_fail("qwen2-moe without the shared expert's down_proj", &c, AWQ_EFORMAT, "model.safetensors",
		    "'model.layers.0.mlp.shared_expert.down_proj.weight' not found");

	ck_init(&c, "qwen2moe biases expected", K_QWEN2, 0, 1);
	cJSON_DeleteItemFromObject(c.cfg, "qkv_bias"); /* default true: q_proj.bias is required */
	expect_fail("qwen2-moe with its default q/k/v biases absent", &c, AWQ_EFORMAT, "model.safetensors",
		    "q_proj.bias");
}

void mt_loader_cases(void)
{
	valid_cases();
	bad_cases();
}
