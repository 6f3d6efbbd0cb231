/* Checkpoints that must load, with their fields checked. */
#include <string.h>

#include "tl.h"

/* AutoAWQ's packer (WQLinear_GEMM.from_linear): physical nibble i of each int32 holds logical
 * column 8c + order[i]. Written out here independently of awq_awq4_get. */
static const int pack_order[8] = {0, 2, 4, 6, 1, 3, 5, 7};

static void pack(const uint8_t *v, int rows, int cols, uint8_t *out)
{
	for (int r = 0; r < rows; r++) {
		for (int c = 0; c < cols / 8; c++) {
			uint32_t word = 0;
			for (int i = 0; i < 8; i++)
				word |= (uint32_t)v[r * cols + 8 * c + pack_order[i]] << (4 * i);
			memcpy(out + 4 * ((size_t)r * (cols / 8) + c), &word, 4);
		}
	}
}

static int unpack(const uint8_t *packed, int cols, int r, int col)
{
	uint32_t word;
	memcpy(&word, packed + 4 * ((size_t)r * (cols / 8) + col / 8), 4);
	for (int i = 0; i < 8; i++)
		if (pack_order[i] == col % 8)
			return (int)((word >> (4 * i)) & 0xf);
	return -1;
}

static int same_data(const void *p, struct tw *w, const char *name)
{
	struct tw_tensor *t = tw_find(w, name);
	return t && p && memcmp(p, t->data, t->bytes) == 0;
}

static void nibble_order(void)
{
	int32_t word = 0x76543210;
	static const int want[8] = {0, 4, 1, 5, 2, 6, 3, 7};
	for (int n = 0; n < 8; n++)
		CHECK(awq_awq4_get(&word, 8, 0, n) == want[n], "column %d reads %d", n,
		      awq_awq4_get(&word, 8, 0, n));
}

static void dense_llama(void)
{
	struct ck c;
	ck_init(&c, "dense_llama", "LlamaForCausalLM", 0);
	ck_build(&c);
	tw_add(&c.w, "model.layers.0.self_attn.rotary_emb.inv_freq", AWQ_DT_F32, 1, 4, 0);
	ck_write(&c);
	awq_model *m = tl_load_ok("dense llama bf16", c.dir);
	if (m) {
		const struct awq_config *cf = &m->cfg;
		CHECK(cf->arch == AWQ_ARCH_LLAMA && cf->hidden == 16 && cf->n_layers == 2, "config");
		CHECK(cf->n_heads == 2 && cf->n_kv_heads == 1 && cf->head_dim == 8, "heads");
		CHECK(cf->intermediate == 32 && cf->vocab == 24 && cf->max_pos == 128, "sizes");
		CHECK(cf->rope.theta == 1e6f && cf->rope.type == AWQ_ROPE_DEFAULT, "rope");
		CHECK(cf->bos_id == 1 && cf->n_eos == 1 && cf->eos_ids[0] == 2, "tokens");
		CHECK(cf->dtype == AWQ_DT_BF16 && !cf->tie_embeddings && !cf->qkv_bias, "flags");
		const struct awq_weight *k = &m->layers[1].k;
		CHECK(strcmp(k->name, "model.layers.1.self_attn.k_proj") == 0, "name %s", k->name);
		CHECK(k->fmt == AWQ_WFMT_DENSE && k->n == 8 && k->k == 16 && k->dtype == AWQ_DT_BF16,
		      "k_proj fields");
		CHECK(same_data(k->data, &c.w, "model.layers.1.self_attn.k_proj.weight"), "k data");
		CHECK(k->bias == NULL, "no bias");
		const struct awq_weight *nrm = &m->layers[0].attn_norm;
		CHECK(nrm->n == 16 && nrm->k == 1 &&
		      same_data(nrm->data, &c.w, "model.layers.0.input_layernorm.weight"), "norm");
		CHECK(same_data(m->layers[1].down.data, &c.w, "model.layers.1.mlp.down_proj.weight") &&
		      m->layers[1].down.n == 16 && m->layers[1].down.k == 32, "down");
		CHECK(same_data(m->lm_head.data, &c.w, "lm_head.weight") &&
		      m->lm_head.data != m->embed.data, "lm_head");
		CHECK(same_data(m->embed.data, &c.w, "model.embed_tokens.weight") &&
		      m->embed.n == 24 && m->embed.k == 16, "embed");
		CHECK(same_data(m->final_norm.data, &c.w, "model.norm.weight"), "final norm");
		CHECK(strcmp(m->precision, "bf16") == 0 && m->n_maps == 1, "precision %s",
		      m->precision);
		CHECK(!m->layers[0].is_moe && m->layers[0].q_norm.data == NULL, "no qk norm");
		awq_model_free(m);
	}
	/* a trailing slash names the same directory */
	strcat(c.dir, "/");
	awq_model_free(tl_load_ok("dense llama, dir with slash", c.dir));
	ck_free(&c);
}

static void dense_qwen3_tied(void)
{
	struct ck c;
	ck_init(&c, "qwen3_tied", "Qwen3ForCausalLM", 0);
	c.s.tie = 1;
	c.s.head_dim = 12;
	c.s.dt = AWQ_DT_F16;
	ck_build(&c);
	ck_write(&c);
	awq_model *m = tl_load_ok("dense qwen3 f16 tied", c.dir);
	if (m) {
		CHECK(m->cfg.arch == AWQ_ARCH_QWEN3 && m->cfg.qk_norm && m->cfg.head_dim == 12, "cfg");
		CHECK(m->layers[0].q.n == 24 && m->layers[0].o.k == 24 && m->layers[0].k.n == 12,
		      "head_dim shapes");
		CHECK(m->layers[1].k_norm.n == 12 &&
		      same_data(m->layers[1].k_norm.data, &c.w, "model.layers.1.self_attn.k_norm.weight"),
		      "k_norm");
		CHECK(m->lm_head.data == m->embed.data && strcmp(m->lm_head.name, m->embed.name) == 0 &&
		      m->lm_head.n == 24 && m->lm_head.dtype == AWQ_DT_F16, "tied lm_head");
		CHECK(strcmp(m->precision, "f16") == 0, "precision %s", m->precision);
		awq_model_free(m);
	}
	ck_free(&c);
}

/* Replaces the q_proj of layer 0 by hand-packed values and returns them for checking. */
static void hand_pack_q(struct ck *c, uint8_t q[16][16], uint8_t z[2][16], uint16_t s[2][16])
{
	uint8_t buf[16 * 16 / 2];
	for (int r = 0; r < 16; r++)
		for (int n = 0; n < 16; n++)
			q[r][n] = (uint8_t)(tw_rand(&c->w) % 16);
	for (int g = 0; g < 2; g++) {
		for (int n = 0; n < 16; n++) {
			z[g][n] = (uint8_t)(tw_rand(&c->w) % 16);
			s[g][n] = awq_f32_to_f16((float)(1 + tw_rand(&c->w) % 100) / 1000.0f);
		}
	}
	pack(&q[0][0], 16, 16, buf);
	memcpy(tw_find(&c->w, "model.layers.0.self_attn.q_proj.qweight")->data, buf, sizeof(buf));
	pack(&z[0][0], 2, 16, buf);
	memcpy(tw_find(&c->w, "model.layers.0.self_attn.q_proj.qzeros")->data, buf, 16);
	memcpy(tw_find(&c->w, "model.layers.0.self_attn.q_proj.scales")->data, s, 2 * 16 * 2);
}

static void awq_qwen2(void)
{
	struct ck c;
	uint8_t q[16][16], z[2][16];
	uint16_t s[2][16];
	ck_init(&c, "awq_qwen2", "Qwen2ForCausalLM", 1);
	c.s.not_convert = "layers.1.mlp";
	ck_build(&c);
	hand_pack_q(&c, q, z, s);
	ck_write(&c);
	awq_model *m = tl_load_ok("awq qwen2 gemm g8", c.dir);
	if (!m) {
		ck_free(&c);
		return;
	}
	const struct awq_weight *w = &m->layers[0].q;
	CHECK(m->cfg.qkv_bias && m->cfg.quant.method == AWQ_QUANT_AWQ && m->cfg.quant.group_size == 8,
	      "quant config");
	CHECK(w->fmt == AWQ_WFMT_AWQ4 && w->n == 16 && w->k == 16 && w->group_size == 8 &&
	      w->qzeros != NULL, "q fields");
	CHECK(strcmp(w->name, "model.layers.0.self_attn.q_proj") == 0, "name %s", w->name);
	CHECK(w->bias_dtype == AWQ_DT_F16 &&
	      same_data(w->bias, &c.w, "model.layers.0.self_attn.q_proj.bias"), "q bias");
	int bad = 0;
	for (int k = 0; k < 16; k++)
		for (int n = 0; n < 16; n++)
			bad += awq_awq4_weight_at(w, k, n) !=
			       (float)(q[k][n] - z[k / 8][n]) * awq_f16_to_f32(s[k / 8][n]);
	CHECK(bad == 0, "%d dequantized values differ from the hand-packed ones", bad);
	CHECK(awq_weight_bytes(w) == 16 * 16 / 2 + 2 * 16 * 2 + 2 * 16 / 2 + 16 * 2, "bytes %llu",
	      (unsigned long long)awq_weight_bytes(w));
	const struct awq_weight *dn = &m->layers[0].down;
	CHECK(dn->fmt == AWQ_WFMT_AWQ4 && dn->n == 16 && dn->k == 32 && dn->bias == NULL, "down");
	CHECK(same_data(dn->qweight, &c.w, "model.layers.0.mlp.down_proj.qweight") &&
	      same_data(dn->scales, &c.w, "model.layers.0.mlp.down_proj.scales"), "down data");
	CHECK(m->layers[1].gate.fmt == AWQ_WFMT_DENSE && m->layers[1].gate.dtype == AWQ_DT_F16 &&
	      same_data(m->layers[1].gate.data, &c.w, "model.layers.1.mlp.gate_proj.weight"),
	      "modules_to_not_convert keeps layer 1 mlp dense");
	CHECK(m->layers[1].q.fmt == AWQ_WFMT_AWQ4, "layer 1 attention stays quantized");
	CHECK(m->lm_head.fmt == AWQ_WFMT_DENSE && m->embed.fmt == AWQ_WFMT_DENSE, "head dense");
	CHECK(strcmp(m->precision, "awq-int4-g8") == 0, "precision %s", m->precision);
	awq_model_free(m);
	ck_free(&c);
}

/* quant_config.json of older AutoAWQ, zero_point false and no qzeros: constant zero 8. */
static void awq_symmetric_old_file(void)
{
	struct ck c;
	ck_init(&c, "awq_sym", "LlamaForCausalLM", 1);
	c.s.old_quant_file = 1;
	c.s.zero_point = 0;
	c.s.omit_qzeros = 1;
	ck_build(&c);
	ck_write(&c);
	awq_model *m = tl_load_ok("awq via quant_config.json, sym", c.dir);
	if (m) {
		const struct awq_weight *w = &m->layers[1].up;
		const uint8_t *qw = tw_find(&c.w, "model.layers.1.mlp.up_proj.qweight")->data;
		const uint8_t *sc = tw_find(&c.w, "model.layers.1.mlp.up_proj.scales")->data;
		CHECK(!m->cfg.quant.zero_point && m->cfg.quant.group_size == 8, "quant file");
		CHECK(w->qzeros == NULL && w->sym_zero == 8 && w->n == 32 && w->k == 16, "sym");
		int bad = 0;
		for (int k = 0; k < 16; k++) {
			for (int n = 0; n < 32; n++) {
				uint16_t h;
				memcpy(&h, sc + 2 * ((k / 8) * 32 + n), 2);
				bad += awq_awq4_weight_at(w, k, n) !=
				       (float)(unpack(qw, 32, k, n) - 8) * awq_f16_to_f32(h);
			}
		}
		CHECK(bad == 0, "%d symmetric values differ", bad);
		awq_model_free(m);
	}
	ck_free(&c);
}

static void sharded(void)
{
	struct ck c;
	char path[1200];
	ck_init(&c, "sharded", "LlamaForCausalLM", 0);
	c.s.dt = AWQ_DT_F32;
	ck_build(&c);
	for (int i = 0; i < c.w.n; i++)
		c.w.t[i].shard = i % 3;
	spec_write(&c.s, c.cfg, NULL, c.dir);
	cJSON *idx = tw_write_shards(&c.w, c.dir, 3);
	snprintf(path, sizeof(path), "%s/model.safetensors.index.json", c.dir);
	CHECK(idx && write_json(path, idx) == 0, "writing shards");
	cJSON_Delete(idx);
	awq_model *m = tl_load_ok("sharded f32 (3 shards)", c.dir);
	if (m) {
		CHECK(m->n_maps == 3, "%d maps", m->n_maps);
		CHECK(same_data(m->layers[0].q.data, &c.w, "model.layers.0.self_attn.q_proj.weight") &&
		      same_data(m->layers[1].v.data, &c.w, "model.layers.1.self_attn.v_proj.weight") &&
		      same_data(m->layers[1].up.data, &c.w, "model.layers.1.mlp.up_proj.weight") &&
		      same_data(m->lm_head.data, &c.w, "lm_head.weight"), "sharded data");
		CHECK(strcmp(m->precision, "f32") == 0, "precision %s", m->precision);
		awq_model_free(m);
	}
	ck_free(&c);
}

void tl_valid_cases(void)
{
	nibble_order();
	dense_llama();
	dense_qwen3_tied();
	awq_qwen2();
	awq_symmetric_old_file();
	sharded();
}
