/* Checkpoints whose files parse but do not match the config, broken configs, broken shards. */
#define _POSIX_C_SOURCE 200809L

#include <string.h>
#include <unistd.h>

#include "tl.h"

#define ST "model.safetensors"
#define L0 "model.layers.0."

static void tensor_cases(void)
{
	struct ck c;
	ck_init(&c, "wrong dtype", "LlamaForCausalLM", 0);
	ck_build(&c);
	tw_reshape(&c.w, tw_find(&c.w, L0 "self_attn.q_proj.weight"), AWQ_DT_I32, 2, 16, 16);
	ck_write(&c);
	tl_expect_fail("wrong dtype (dense)", c.dir, AWQ_EFORMAT,
		       ST ": tensor '" L0 "self_attn.q_proj.weight'", "dtype I32");
	ck_free(&c);

	ck_init(&c, "wrong dtype awq", "LlamaForCausalLM", 1);
	ck_build(&c);
	tw_reshape(&c.w, tw_find(&c.w, L0 "mlp.up_proj.scales"), AWQ_DT_BF16, 2, 2, 32);
	ck_write(&c);
	tl_expect_fail("wrong dtype (awq scales)", c.dir, AWQ_EFORMAT,
		       ST ": tensor '" L0 "mlp.up_proj.scales'", "dtype BF16, expected F16");
	ck_free(&c);

	ck_init(&c, "wrong shape", "LlamaForCausalLM", 0);
	ck_build(&c);
	tw_reshape(&c.w, tw_find(&c.w, "model.layers.1.self_attn.k_proj.weight"), AWQ_DT_BF16, 2,
		   16, 16);
	ck_write(&c);
	tl_expect_fail("wrong shape vs config", c.dir, AWQ_EFORMAT,
		       ST ": tensor 'model.layers.1.self_attn.k_proj.weight'",
		       "shape [16, 16], expected [8, 16]");
	ck_free(&c);

	ck_init(&c, "wrong shape awq", "Qwen2ForCausalLM", 1);
	ck_build(&c);
	tw_reshape(&c.w, tw_find(&c.w, L0 "mlp.down_proj.qweight"), AWQ_DT_I32, 2, 16, 4);
	ck_write(&c);
	tl_expect_fail("wrong shape (awq qweight)", c.dir, AWQ_EFORMAT,
		       ST ": tensor '" L0 "mlp.down_proj.qweight'", "expected [32, 2]");
	ck_free(&c);

	ck_init(&c, "missing tensor", "LlamaForCausalLM", 0);
	ck_build(&c);
	tw_remove(&c.w, "model.layers.1.post_attention_layernorm.weight");
	ck_write(&c);
	tl_expect_fail("missing tensor", c.dir, AWQ_EFORMAT, ST,
		       "'model.layers.1.post_attention_layernorm.weight' not found");
	ck_free(&c);

	ck_init(&c, "missing lm_head", "LlamaForCausalLM", 0);
	ck_build(&c);
	tw_remove(&c.w, "lm_head.weight");
	ck_write(&c);
	tl_expect_fail("untied, no lm_head", c.dir, AWQ_EFORMAT, ST, "'lm_head.weight' not found");
	ck_free(&c);

	ck_init(&c, "missing qzeros", "LlamaForCausalLM", 1);
	ck_build(&c);
	tw_remove(&c.w, "model.layers.1.self_attn.o_proj.qzeros");
	ck_write(&c);
	tl_expect_fail("awq zero_point without qzeros", c.dir, AWQ_EFORMAT, ST,
		       "'model.layers.1.self_attn.o_proj.qzeros' not found");
	ck_free(&c);

	ck_init(&c, "missing bias", "Qwen2ForCausalLM", 0);
	ck_build(&c);
	tw_remove(&c.w, L0 "self_attn.v_proj.bias");
	ck_write(&c);
	tl_expect_fail("qwen2 without v bias", c.dir, AWQ_EFORMAT, ST,
		       "'" L0 "self_attn.v_proj.bias' not found");
	ck_free(&c);

	ck_init(&c, "o bias", "LlamaForCausalLM", 0);
	ck_build(&c);
	cJSON_ReplaceItemInObject(c.cfg, "attention_bias", cJSON_CreateTrue());
	for (int i = 0; i < 2; i++) {
		static const char *const names[] = {"q", "k", "v", "o"};
		for (int j = 0; j < 4; j++) {
			char t[128];
			snprintf(t, sizeof(t), "model.layers.%d.self_attn.%s_proj.bias", i, names[j]);
			tw_add(&c.w, t, AWQ_DT_BF16, 1, j == 0 || j == 3 ? 16 : 8, 0);
		}
	}
	ck_write(&c);
	tl_expect_fail("llama attention_bias (o bias)", c.dir, AWQ_EUNSUPPORTED,
		       ST ": tensor '" L0 "self_attn.o_proj.bias'", "not supported");
	ck_free(&c);
}

/* Changes config.json of a valid llama checkpoint and expects the load to fail. */
static void config_case(const char *what, const char *key, cJSON *value, int awq, int code,
			const char *s1, const char *s2)
{
	struct ck c;
	ck_init(&c, what, "LlamaForCausalLM", awq);
	ck_build(&c);
	if (value)
		cJSON_ReplaceItemInObject(c.cfg, key, value);
	else
		cJSON_DeleteItemFromObject(c.cfg, key);
	ck_write(&c);
	tl_expect_fail(what, c.dir, code, s1, s2);
	ck_free(&c);
}

static cJSON *arch_list(const char *name)
{
	cJSON *a = cJSON_CreateArray();
	cJSON_AddItemToArray(a, cJSON_CreateString(name));
	return a;
}

static cJSON *awq_with(const char *key, cJSON *value)
{
	cJSON *q = cJSON_CreateObject();
	cJSON_AddStringToObject(q, "quant_method", "awq");
	cJSON_AddNumberToObject(q, "bits", 4);
	cJSON_AddNumberToObject(q, "group_size", 8);
	cJSON_AddStringToObject(q, "version", "gemm");
	cJSON_ReplaceItemInObject(q, key, value);
	return q;
}

static void config_cases(void)
{
	config_case("missing config key", "vocab_size", NULL, 0, AWQ_EFORMAT, "config.json",
		    "\"vocab_size\" is missing");
	config_case("config wrong type", "hidden_size", cJSON_CreateString("16"), 0, AWQ_EFORMAT,
		    "config.json", "\"hidden_size\" must be an integer");
	config_case("unsupported architecture", "architectures", arch_list("GPT2LMHeadModel"), 0,
		    AWQ_EUNSUPPORTED, "config.json", "GPT2LMHeadModel");
	config_case("quant method gptq", "quantization_config",
		    awq_with("quant_method", cJSON_CreateString("gptq")), 1, AWQ_EUNSUPPORTED,
		    "config.json", "unsupported quantization method \"gptq\"");
	config_case("quant version gemv", "quantization_config",
		    awq_with("version", cJSON_CreateString("gemv")), 1, AWQ_EUNSUPPORTED,
		    "config.json", "unsupported quantization version \"gemv\"");
	config_case("group size not dividing", "quantization_config",
		    awq_with("group_size", cJSON_CreateNumber(12)), 1, AWQ_EFORMAT, ST,
		    "model.layers.0.self_attn.q_proj has in_features 16");

	struct ck c;
	char path[1200];
	ck_init(&c, "mixture of experts", "Qwen3MoeForCausalLM", 0);
	ck_build(&c);
	cJSON_AddNumberToObject(c.cfg, "num_experts", 4);
	cJSON_AddNumberToObject(c.cfg, "num_experts_per_tok", 2);
	cJSON_AddNumberToObject(c.cfg, "moe_intermediate_size", 8);
	ck_write(&c);
	tl_expect_fail("qwen3-moe with a dense model's tensors", c.dir, AWQ_EFORMAT, ST,
		       "'model.layers.0.self_attn.q_norm.weight' not found");
	ck_free(&c);

	ck_init(&c, "bad quant_config.json", "LlamaForCausalLM", 1);
	c.s.old_quant_file = 1;
	ck_build(&c);
	ck_write(&c);
	snprintf(path, sizeof(path), "%s/quant_config.json", c.dir);
	const char *gemv = "{\"w_bit\": 4, \"q_group_size\": 8, \"version\": \"gemv\"}";
	write_bytes(path, gemv, strlen(gemv));
	tl_expect_fail("quant_config.json gemv", c.dir, AWQ_EUNSUPPORTED, "quant_config.json",
		       "gemv");
	snprintf(path, sizeof(path), "%s/config.json", c.dir);
	write_bytes(path, "{\"architectures\": [", 19);
	tl_expect_fail("config.json not JSON", c.dir, AWQ_EFORMAT, "config.json", "not valid JSON");
	unlink(path);
	tl_expect_fail("no config.json", c.dir, AWQ_EIO, "config.json", "cannot open");
	ck_free(&c);

	ck_init(&c, "no weights", "LlamaForCausalLM", 0);
	c.cfg = spec_config(&c.s);
	spec_write(&c.s, c.cfg, NULL, c.dir);
	tl_expect_fail("no weight files", c.dir, AWQ_EIO, "no model.safetensors", NULL);
	ck_free(&c);
}

/* A 2-shard llama; edit(idx) changes the index before it is written. */
static void shard_case(const char *what, void (*edit)(cJSON *idx, const char *dir), int code,
		       const char *s1, const char *s2)
{
	struct ck c;
	char path[1200];
	ck_init(&c, what, "LlamaForCausalLM", 0);
	ck_build(&c);
	for (int i = 0; i < c.w.n; i++)
		c.w.t[i].shard = i % 2;
	spec_write(&c.s, c.cfg, NULL, c.dir);
	cJSON *idx = tw_write_shards(&c.w, c.dir, 2);
	edit(idx, c.dir);
	snprintf(path, sizeof(path), "%s/model.safetensors.index.json", c.dir);
	CHECK(write_json(path, idx) == 0, "index");
	cJSON_Delete(idx);
	tl_expect_fail(what, c.dir, code, s1, s2);
	ck_free(&c);
}

static void drop_shard(cJSON *idx, const char *dir)
{
	char path[1200];
	(void)idx;
	snprintf(path, sizeof(path), "%s/model-00002-of-00002.safetensors", dir);
	unlink(path);
}

static void extra_entry(cJSON *idx, const char *dir)
{
	(void)dir;
	cJSON_AddStringToObject(cJSON_GetObjectItem(idx, "weight_map"), "model.extra.weight",
				"model-00001-of-00002.safetensors");
}

static void drop_entry(cJSON *idx, const char *dir)
{
	(void)dir;
	cJSON_DeleteItemFromObject(cJSON_GetObjectItem(idx, "weight_map"), "model.norm.weight");
}

static void escape_entry(cJSON *idx, const char *dir)
{
	(void)dir;
	cJSON_ReplaceItemInObject(cJSON_GetObjectItem(idx, "weight_map"), "model.norm.weight",
				  cJSON_CreateString("../model-00001-of-00002.safetensors"));
}

static void no_weight_map(cJSON *idx, const char *dir)
{
	(void)dir;
	cJSON_DeleteItemFromObject(idx, "weight_map");
}

static void shard_cases(void)
{
	shard_case("missing shard file", drop_shard, AWQ_EIO, "model-00002-of-00002.safetensors",
		   "model.safetensors.index.json");
	shard_case("index names absent tensor", extra_entry, AWQ_EFORMAT,
		   "model.safetensors.index.json: tensor 'model.extra.weight'",
		   "shard model-00001-of-00002.safetensors, which does not contain it");
	shard_case("index lacks a tensor", drop_entry, AWQ_EFORMAT, "model.safetensors.index.json",
		   "'model.norm.weight' is not listed");
	shard_case("index path escape", escape_entry, AWQ_EFORMAT, "model.safetensors.index.json",
		   "'model.norm.weight' is not a file name");
	shard_case("index without weight_map", no_weight_map, AWQ_EFORMAT,
		   "model.safetensors.index.json", "weight_map");
}

void tl_bad_model_cases(void)
{
	tensor_cases();
	config_cases();
	shard_cases();
}
