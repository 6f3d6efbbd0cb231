/* config.json and quant_config.json parsing, without tensors. */
#include <string.h>

#include "tl.h"

/* The sizes every config needs, minus hidden_size, num_attention_heads, num_hidden_layers and
 * vocab_size (SIZES) or with them (BASE); cJSON would keep the first of two equal keys. */
#define SIZES                                                                               \
	"\"intermediate_size\": 128, \"max_position_embeddings\": 256, \"rms_norm_eps\": 1e-5"
#define BASE                                                                                \
	SIZES ", \"hidden_size\": 64, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, " \
	      "\"vocab_size\": 100"
#define LLAMA "{\"architectures\": [\"LlamaForCausalLM\"], "
#define BASE_BUT(key) SIZES ", " BASE_REST_##key
#define BASE_REST_hidden "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"vocab_size\": 100"
#define BASE_REST_layers "\"hidden_size\": 64, \"num_attention_heads\": 4, \"vocab_size\": 100"
#define BASE_REST_heads "\"hidden_size\": 64, \"num_hidden_layers\": 2, \"vocab_size\": 100"
#define BASE_REST_vocab "\"hidden_size\": 64, \"num_hidden_layers\": 2, \"num_attention_heads\": 4"

static int parse(const char *json, struct awq_config *c, char *err)
{
	memset(c, 0x5a, sizeof(*c));
	int rc = awq_config_parse(json, strlen(json), "cfg.json", c, err, AWQ_ERRLEN);
	return rc ? rc : awq_config_validate(c, "cfg.json", err, AWQ_ERRLEN);
}

static void expect_ok(const char *what, const char *json, struct awq_config *c)
{
	char err[AWQ_ERRLEN] = "";
	int rc = parse(json, c, err);
	CHECK(rc == 0, "%s: %s", what, err);
	if (rc == 0)
		printf("ok   %-34s parsed\n", what);
}

static void expect_bad(const char *what, const char *json, int code, const char *s1)
{
	char err[AWQ_ERRLEN] = "";
	struct awq_config c;
	int rc = parse(json, &c, err);
	CHECK(rc < 0 && (code == 0 || rc == code), "%s: status %d (%s)", what, rc, err);
	CHECK(strstr(err, "cfg.json") && strstr(err, s1), "%s: message '%s' lacks '%s'", what, err,
	      s1);
	printf("ok   %-34s %s\n", what, err);
}

static void good_configs(void)
{
	struct awq_config c;
	expect_ok("llama defaults", LLAMA BASE "}", &c);
	CHECK(c.n_kv_heads == 4 && c.head_dim == 16 && c.rope.theta == 10000.0f && !c.tie_embeddings &&
	      c.bos_id == -1 && c.n_eos == 0 && c.dtype == AWQ_DT_F32 &&
	      c.quant.method == AWQ_QUANT_NONE, "defaults");
	expect_ok("llama3 rope scaling",
		  LLAMA BASE_BUT(vocab) ", \"rope_theta\": 500000.0, "
		  "\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0, "
		  "\"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, "
		  "\"original_max_position_embeddings\": 8192}, \"eos_token_id\": [128001, 7, 9], "
		  "\"vocab_size\": 128256}", &c);
	CHECK(c.rope.type == AWQ_ROPE_LLAMA3 && c.rope.factor == 8.0f && c.rope.low_freq_factor == 1.0f &&
	      c.rope.high_freq_factor == 4.0f && c.rope.original_max_pos == 8192 &&
	      c.rope.theta == 500000.0f, "llama3 rope");
	CHECK(c.n_eos == 3 && c.eos_ids[0] == 128001 && c.eos_ids[2] == 9, "eos list");
	expect_ok("transformers 5 rope_parameters",
		  "{\"architectures\": [\"MistralForCausalLM\"], " BASE ", \"dtype\": \"bfloat16\", "
		  "\"rope_parameters\": {\"rope_type\": \"linear\", \"factor\": 2.0, "
		  "\"rope_theta\": 250000.0}, \"num_key_value_heads\": 2, \"head_dim\": 32}", &c);
	CHECK(c.rope.type == AWQ_ROPE_LINEAR && c.rope.factor == 2.0f && c.rope.theta == 250000.0f &&
	      c.dtype == AWQ_DT_BF16 && c.n_kv_heads == 2 && c.head_dim == 32, "rope_parameters");
	expect_ok("qwen2 awq GEMM upper case",
		  "{\"architectures\": [\"Qwen2ForCausalLM\"], " BASE ", \"torch_dtype\": \"float16\", "
		  "\"quantization_config\": {\"quant_method\": \"awq\", \"bits\": 4, "
		  "\"group_size\": 32, \"zero_point\": true, \"version\": \"GEMM\", "
		  "\"modules_to_not_convert\": [\"visual\", \"mlp.gate\"]}}", &c);
	CHECK(c.qkv_bias && c.quant.method == AWQ_QUANT_AWQ && c.quant.bits == 4 &&
	      c.quant.group_size == 32 && c.quant.zero_point && c.quant.n_not_convert == 2 &&
	      strcmp(c.quant.not_convert[1], "mlp.gate") == 0 && c.dtype == AWQ_DT_F16, "awq");
	expect_ok("qwen3 moe keys",
		  "{\"architectures\": [\"Qwen3MoeForCausalLM\"], " BASE ", \"num_experts\": 8, "
		  "\"num_experts_per_tok\": 2, \"moe_intermediate_size\": 32, "
		  "\"norm_topk_prob\": true, \"decoder_sparse_step\": 1, \"mlp_only_layers\": [1]}", &c);
	CHECK(c.arch == AWQ_ARCH_QWEN3_MOE && c.n_experts == 8 && c.n_experts_per_tok == 2 &&
	      c.moe_intermediate == 32 && c.norm_topk_prob && c.n_mlp_only == 1 &&
	      c.mlp_only_layers[0] == 1 && c.qk_norm, "moe keys");
	expect_ok("mixtral keys",
		  "{\"architectures\": [\"MixtralForCausalLM\"], " BASE ", \"num_local_experts\": 8, "
		  "\"num_experts_per_tok\": 2}", &c);
	CHECK(c.arch == AWQ_ARCH_MIXTRAL && c.n_experts == 8 && c.moe_intermediate == 128 &&
	      c.norm_topk_prob, "mixtral");
	expect_ok("qwen2 moe keys (published Qwen1.5-MoE configs have no qkv_bias key: biases on)",
		  "{\"architectures\": [\"Qwen2MoeForCausalLM\"], " BASE ", \"num_experts\": 60, "
		  "\"num_experts_per_tok\": 4, \"moe_intermediate_size\": 1408, "
		  "\"shared_expert_intermediate_size\": 5632, \"decoder_sparse_step\": 1}", &c);
	CHECK(c.arch == AWQ_ARCH_QWEN2_MOE && c.n_experts == 60 && c.n_experts_per_tok == 4 &&
	      c.moe_intermediate == 1408 && c.shared_intermediate == 5632 && !c.norm_topk_prob && c.qkv_bias &&
	      !c.qk_norm, "qwen2 moe keys");
}

static void bad_configs(void)
{
	expect_bad("not json", "{\"architectures\": [", AWQ_EFORMAT, "JSON");
	expect_bad("no architectures", "{" BASE "}", AWQ_EFORMAT, "architectures");
	expect_bad("unsupported arch", "{\"architectures\": [\"GPT2LMHeadModel\"], " BASE "}",
		   AWQ_EUNSUPPORTED, "GPT2LMHeadModel");
	expect_bad("missing vocab", LLAMA BASE_BUT(vocab) "}",
		   AWQ_EFORMAT, "vocab_size");
	expect_bad("duplicate key", LLAMA BASE
		   ", \"vocab_size\": 50}", AWQ_EFORMAT, "\"vocab_size\" appears twice");
	expect_bad("hidden_size as string",
		   LLAMA BASE_BUT(hidden) ", \"hidden_size\": \"64\"}",
		   AWQ_EFORMAT, "hidden_size");
	expect_bad("fractional heads",
		   LLAMA BASE_BUT(heads) ", \"num_attention_heads\": 4.5}",
		   AWQ_EFORMAT, "num_attention_heads");
	expect_bad("negative layers",
		   LLAMA BASE_BUT(layers) ", \"num_hidden_layers\": -2}",
		   AWQ_EFORMAT, "num_hidden_layers");
	expect_bad("heads not dividing hidden",
		   LLAMA BASE_BUT(heads) ", \"num_attention_heads\": 6}",
		   AWQ_EFORMAT, "num_attention_heads");
	expect_bad("kv heads not dividing",
		   LLAMA BASE ", \"num_key_value_heads\": 3}",
		   AWQ_EFORMAT, "num_key_value_heads");
	expect_bad("tie as number",
		   LLAMA BASE ", \"tie_word_embeddings\": 1}",
		   AWQ_EFORMAT, "tie_word_embeddings");
	expect_bad("yarn rope",
		   "{\"architectures\": [\"Qwen3ForCausalLM\"], " BASE ", \"rope_scaling\": "
		   "{\"type\": \"yarn\", \"factor\": 4.0}}", AWQ_EUNSUPPORTED, "yarn");
	expect_bad("llama3 rope missing factor",
		   LLAMA BASE ", \"rope_scaling\": "
		   "{\"rope_type\": \"llama3\", \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, "
		   "\"original_max_position_embeddings\": 8192}}", AWQ_EFORMAT, "rope_scaling.factor");
	expect_bad("eos out of vocab",
		   LLAMA BASE ", \"eos_token_id\": [1, 100]}",
		   AWQ_EFORMAT, "eos_token_id");
	expect_bad("gelu", LLAMA BASE
		   ", \"hidden_act\": \"gelu\"}", AWQ_EUNSUPPORTED, "gelu");
	expect_bad("gptq", LLAMA BASE
		   ", \"quantization_config\": {\"quant_method\": \"gptq\", \"bits\": 4}}",
		   AWQ_EUNSUPPORTED, "unsupported quantization method \"gptq\"");
	expect_bad("compressed-tensors", LLAMA BASE
		   ", \"quantization_config\": {\"quant_method\": \"compressed-tensors\"}}",
		   AWQ_EUNSUPPORTED, "compressed-tensors");
	expect_bad("awq gemv", LLAMA BASE
		   ", \"quantization_config\": {\"quant_method\": \"awq\", \"bits\": 4, "
		   "\"group_size\": 128, \"version\": \"gemv\"}}", AWQ_EUNSUPPORTED,
		   "unsupported quantization version \"gemv\"");
	expect_bad("awq 8-bit", LLAMA BASE
		   ", \"quantization_config\": {\"quant_method\": \"awq\", \"bits\": 8, "
		   "\"group_size\": 128}}", AWQ_EUNSUPPORTED, "8-bit");
	expect_bad("awq group 0", LLAMA BASE
		   ", \"quantization_config\": {\"quant_method\": \"awq\", \"bits\": 4, "
		   "\"group_size\": 0}}", AWQ_EFORMAT, "group_size");
	expect_bad("awq no group", LLAMA BASE
		   ", \"quantization_config\": {\"quant_method\": \"awq\", \"bits\": 4}}",
		   AWQ_EFORMAT, "quantization_config.group_size");
	expect_bad("moe top-k above experts",
		   "{\"architectures\": [\"Qwen3MoeForCausalLM\"], " BASE ", \"num_experts\": 2, "
		   "\"num_experts_per_tok\": 4, \"moe_intermediate_size\": 32}", AWQ_EFORMAT,
		   "num_experts_per_tok");
}

static void quant_file(void)
{
	char err[AWQ_ERRLEN] = "";
	struct awq_quant q;
	const char *ok = "{\"zero_point\": false, \"q_group_size\": 64, \"w_bit\": 4, "
			 "\"version\": \"GEMM\"}";
	int rc = awq_quant_config_parse(ok, strlen(ok), "quant_config.json", &q, err, sizeof(err));
	CHECK(rc == 0 && q.method == AWQ_QUANT_AWQ && q.group_size == 64 && q.bits == 4 &&
	      !q.zero_point, "quant_config.json: %s", err);
	const char *bad = "{\"zero_point\": true, \"q_group_size\": 64, \"w_bit\": 4, "
			  "\"version\": \"marlin\"}";
	rc = awq_quant_config_parse(bad, strlen(bad), "quant_config.json", &q, err, sizeof(err));
	CHECK(rc == AWQ_EUNSUPPORTED && strstr(err, "quant_config.json") && strstr(err, "marlin"),
	      "marlin: %d %s", rc, err);
	printf("ok   %-34s %s\n", "quant_config.json", err);
}

void tl_config_cases(void)
{
	good_configs();
	bad_configs();
	quant_file();
}
