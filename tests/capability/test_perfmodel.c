/* Performance model unit tests from database rows and synthetic shapes (metadata only): bandwidth-
 * bound decode scales with bandwidth, a large 16-bit lm_head caps AWQ's gain, MoE decode reads the
 * top-k experts, formats the hardware lacks are refused, memory capacity is checked, and prefill is
 * compute-bound on tensor-core GPUs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ct.h"
#include "perfmodel.h"
#include "synthetic.h"

static awq_model *shape(const char *preset)
{
	awq_model *m = NULL;
	char err[AWQ_ERRLEN];
	if (awq_model_shape(preset, "bf16", &m, err, sizeof(err)))
		fprintf(stderr, "%s: %s\n", preset, err);
	return m;
}

static awq_model *from_config(const struct awq_config *c)
{
	awq_model *m = NULL;
	char err[AWQ_ERRLEN];
	if (awq_model_from_config(c, "bf16", 0, 0, &m, err, sizeof(err)))
		fprintf(stderr, "config: %s\n", err);
	return m;
}

static struct awq_perf_result predict(const struct awq_device_caps *d, const awq_model *m, enum awq_scheme s,
				      int ctx)
{
	struct awq_perf_query q = {.scheme = s, .batch = 1, .ctx = ctx, .n_prompt = 512};
	struct awq_perf_result r;
	char err[AWQ_ERRLEN];
	memset(&r, 0x5a, sizeof(r));
	int rc = awq_perf_predict(d, m, &q, &r, err, sizeof(err));
	CHECK(rc == 0, "predict: %s", err);
	return r;
}

static int near(double a, double b, double rel)
{
	return fabs(a - b) <= rel * fabs(b);
}

static void bandwidth_scaling(const awq_model *m)
{
	struct awq_device_caps d, half;
	char err[AWQ_ERRLEN];
	CHECK(awq_caps_from_db("h100", &d, err, sizeof(err)) == 0, "%s", err);
	half = d;
	half.peak_bw_gbs.v /= 2;
	struct awq_perf_result a = predict(&d, m, AWQ_SCHEME_BF16, 1024), b = predict(&half, m, AWQ_SCHEME_BF16, 1024);
	CHECK(a.decode.limit == AWQ_LIMIT_BANDWIDTH, "qwen3-8b BF16 decode on H100 limited by %s",
	      awq_limit_name(a.decode.limit));
	CHECK(near(b.decode.t_bytes, 2 * a.decode.t_bytes, 1e-9), "halved bandwidth: bytes time %g vs %g",
	      b.decode.t_bytes, a.decode.t_bytes);
	CHECK(near(b.decode.t_overhead, a.decode.t_overhead, 1e-9), "overhead changed with bandwidth");
	CHECK(b.decode.tok_s < 0.6 * a.decode.tok_s, "decode %g -> %g tok/s at half bandwidth", a.decode.tok_s,
	      b.decode.tok_s);
	CHECK(a.prefill.limit == AWQ_LIMIT_COMPUTE, "qwen3-8b prefill on H100 limited by %s",
	      awq_limit_name(a.prefill.limit));
	/* Decode bytes: every weight once (one embedding row) plus the KV cache at the context. */
	double kv = 2.0 * 36 * 8 * 128 * 2 * 1024;
	CHECK(a.decode.bytes > a.decode_weight_bytes + kv && a.decode.bytes < 1.02 * (a.decode_weight_bytes + kv),
	      "decode bytes %g, weights %g + kv %g", a.decode.bytes, a.decode_weight_bytes, kv);
	/* Longer context: more KV bytes, slower decode. */
	struct awq_perf_result c = predict(&d, m, AWQ_SCHEME_BF16, 16384);
	CHECK(near(c.decode.bytes - a.decode.bytes, 15 * kv, 0.01) && c.decode.tok_s < a.decode.tok_s,
	      "context 16k: %g more bytes, %g KV", c.decode.bytes - a.decode.bytes, 15 * kv);
}

/* Same model, two vocabularies: the larger 16-bit lm_head is a larger share and AWQ gains less. */
static void lm_head_share(void)
{
	struct awq_config c;
	struct awq_device_caps d;
	char err[AWQ_ERRLEN];
	CHECK(awq_preset_config("qwen3-4b", &c, err, sizeof(err)) == 0, "%s", err);
	CHECK(awq_caps_from_db("l40s", &d, err, sizeof(err)) == 0, "%s", err);
	c.vocab = 32000;
	awq_model *small = from_config(&c);
	c.vocab = 256000;
	awq_model *big = from_config(&c);
	if (small && big) {
		struct awq_perf_result s16 = predict(&d, small, AWQ_SCHEME_BF16, 1024), s4 = predict(&d, small, AWQ_SCHEME_AWQ4, 1024);
		struct awq_perf_result b16 = predict(&d, big, AWQ_SCHEME_BF16, 1024), b4 = predict(&d, big, AWQ_SCHEME_AWQ4, 1024);
		double gain_small = s4.decode.tok_s / s16.decode.tok_s, gain_big = b4.decode.tok_s / b16.decode.tok_s;
		CHECK(gain_big < 0.95 * gain_small, "AWQ gain %g with a 256k vocabulary vs %g with 32k", gain_big, gain_small);
		CHECK(b4.unquantized_share > s4.unquantized_share + 0.1, "unquantized share %g vs %g", b4.unquantized_share,
		      s4.unquantized_share);
		CHECK(gain_small > 1.2 && gain_small < 4.0, "AWQ gain %g for a 4B model on L40S", gain_small);
	}
	awq_model_free(small);
	awq_model_free(big);
}

static double expert_layer_bytes(const awq_model *m)
{
	const struct awq_experts *x = &m->layers[0].experts;
	return awq_perf_weight_bytes(m, &x->gate[0], AWQ_SCHEME_BF16) + awq_perf_weight_bytes(m, &x->up[0], AWQ_SCHEME_BF16) +
	       awq_perf_weight_bytes(m, &x->down[0], AWQ_SCHEME_BF16);
}

/* MoE: decode reads the top-k experts' bytes; the expert count changes memory, not decode bytes. */
static void moe_topk(void)
{
	struct awq_config c;
	struct awq_device_caps d;
	char err[AWQ_ERRLEN];
	CHECK(awq_preset_config("qwen3-30b-a3b", &c, err, sizeof(err)) == 0, "%s", err);
	CHECK(awq_caps_from_db("h200", &d, err, sizeof(err)) == 0, "%s", err);
	awq_model *base = from_config(&c);
	c.n_experts = 64;
	awq_model *fewer = from_config(&c);
	c.n_experts = 128;
	c.n_experts_per_tok = 16;
	awq_model *wider = from_config(&c);
	if (base && fewer && wider) {
		struct awq_perf_result b = predict(&d, base, AWQ_SCHEME_BF16, 1024), f = predict(&d, fewer, AWQ_SCHEME_BF16, 1024);
		struct awq_perf_result w = predict(&d, wider, AWQ_SCHEME_BF16, 1024);
		double per_expert = expert_layer_bytes(base) * c.n_layers;
		/* Only the router (one row per expert) grows with the expert count. */
		double router = (double)c.n_layers * 64 * c.hidden * 2;
		CHECK(near(b.decode_weight_bytes - f.decode_weight_bytes, router, 1e-6),
		      "128 vs 64 experts: %g vs %g decode bytes", b.decode_weight_bytes, f.decode_weight_bytes);
		CHECK(near(w.decode_weight_bytes - b.decode_weight_bytes, 8 * per_expert, 1e-3),
		      "top-16 reads %g more bytes than top-8, 8 experts are %g", w.decode_weight_bytes - b.decode_weight_bytes,
		      8 * per_expert);
		CHECK(b.weight_bytes > 5 * b.decode_weight_bytes, "all experts %llu vs per token %g",
		      (unsigned long long)b.weight_bytes, b.decode_weight_bytes);
		CHECK(near((double)b.weight_bytes - (double)f.weight_bytes, 64 * per_expert, 1e-3), "memory of 64 experts");
		struct awq_perf_query q = {.scheme = AWQ_SCHEME_BF16, .batch = 64, .ctx = 1024};
		struct awq_perf_result r;
		CHECK(awq_perf_predict(&d, base, &q, &r, err, sizeof(err)) == 0, "%s", err);
		CHECK(r.decode_weight_bytes > 4 * b.decode_weight_bytes, "batch 64 touches more experts: %g vs %g",
		      r.decode_weight_bytes, b.decode_weight_bytes);
	}
	awq_model_free(base);
	awq_model_free(fewer);
	awq_model_free(wider);
}

static void formats_and_fit(const awq_model *m8)
{
	struct awq_device_caps t4, a100, h100;
	char err[AWQ_ERRLEN];
	CHECK(awq_caps_from_db("t4", &t4, err, sizeof(err)) == 0 && awq_caps_from_db("a100-80g", &a100, err, sizeof(err)) == 0 &&
		      awq_caps_from_db("h100", &h100, err, sizeof(err)) == 0, "%s", err);
	CHECK(predict(&t4, m8, AWQ_SCHEME_FP8, 1024).limit == AWQ_LIMIT_UNSUPPORTED, "FP8 on a T4");
	CHECK(predict(&a100, m8, AWQ_SCHEME_FP8, 1024).limit == AWQ_LIMIT_UNSUPPORTED, "FP8 on an A100");
	struct awq_perf_result f8 = predict(&h100, m8, AWQ_SCHEME_FP8, 1024), b16 = predict(&h100, m8, AWQ_SCHEME_BF16, 1024);
	CHECK(f8.limit == AWQ_LIMIT_BANDWIDTH && f8.prefill.tok_s > 1.2 * b16.prefill.tok_s, "FP8 prefill %g vs BF16 %g",
	      f8.prefill.tok_s, b16.prefill.tok_s);
	CHECK(f8.decode_weight_bytes < 0.6 * b16.decode_weight_bytes, "FP8 bytes %g vs BF16 %g", f8.decode_weight_bytes,
	      b16.decode_weight_bytes);
	/* qwen3-8b in FP16 is 16.4 GB: it does not fit a 16 GB T4, with 4-bit weights it does. */
	struct awq_perf_result t16 = predict(&t4, m8, AWQ_SCHEME_FP16, 1024), t4b = predict(&t4, m8, AWQ_SCHEME_AWQ4, 1024);
	CHECK(t16.limit == AWQ_LIMIT_MEMORY && t16.why[0], "FP16 qwen3-8b on T4: %s", awq_limit_name(t16.limit));
	CHECK(t4b.limit == AWQ_LIMIT_BANDWIDTH, "AWQ qwen3-8b on T4: %s", awq_limit_name(t4b.limit));
	/* No prefill speedup from W4A16 on any GPU: it dequantizes to FP16 and uses the same units. */
	struct awq_perf_result h4 = predict(&h100, m8, AWQ_SCHEME_AWQ4, 1024);
	CHECK(h4.prefill.tok_s <= b16.prefill.tok_s, "AWQ prefill %g above BF16 %g", h4.prefill.tok_s, b16.prefill.tok_s);
	CHECK(h4.unit == AWQ_MF_FP16_F32ACC, "W4A16 runs on %s", awq_mfmt_name(h4.unit));
}

/* Per-weight byte counts of each scheme, on a hand-made 4096 x 4096 projection. */
static void weight_bytes(const awq_model *m)
{
	struct awq_weight w;
	memset(&w, 0, sizeof(w));
	snprintf(w.name, sizeof(w.name), "model.layers.0.self_attn.q_proj");
	w.fmt = AWQ_WFMT_DENSE, w.dtype = AWQ_DT_BF16, w.n = 4096, w.k = 4096;
	double nk = 4096.0 * 4096;
	CHECK(awq_perf_weight_bytes(m, &w, AWQ_SCHEME_BF16) == nk * 2, "bf16");
	CHECK(awq_perf_weight_bytes(m, &w, AWQ_SCHEME_AWQ4) == nk / 2 + 32 * 4096 * 2 + 32 * 4096 / 2, "awq g128");
	CHECK(awq_perf_weight_bytes(m, &w, AWQ_SCHEME_FP8) == nk + 32 * 32 * 4, "fp8 128x128 blocks");
	CHECK(awq_perf_weight_bytes(m, &m->lm_head, AWQ_SCHEME_AWQ4) == 2.0 * m->lm_head.n * m->lm_head.k,
	      "lm_head stays 16-bit");
}

/* A device whose per-op overhead dwarfs the bytes: decode is overhead-bound and AWQ barely helps. */
static void overhead_floor(const awq_model *m)
{
	struct awq_device_caps d;
	char err[AWQ_ERRLEN];
	CHECK(awq_caps_from_db("h100", &d, err, sizeof(err)) == 0, "%s", err);
	snprintf(d.backend, sizeof(d.backend), "vulkan");
	struct awq_perf_result b = predict(&d, m, AWQ_SCHEME_BF16, 1024), a = predict(&d, m, AWQ_SCHEME_AWQ4, 1024);
	CHECK(b.decode.limit == AWQ_LIMIT_OVERHEAD, "qwen3-0.6b on Vulkan H100: %s", awq_limit_name(b.decode.limit));
	CHECK(a.decode.tok_s < 1.3 * b.decode.tok_s, "AWQ %g vs BF16 %g tok/s while overhead-bound", a.decode.tok_s,
	      b.decode.tok_s);
}

/* The H200 through NVIDIA's Vulkan driver (cooperative matrices), at a run's read-kernel bandwidth,
 * and the predictions for one shape in AWQ (*a) and BF16 (*b) at the bench's mean decode context of
 * 64; 0 when the shape is missing. */
static int vulkan_h200(const char *preset, double bw, struct awq_perf_result *a, struct awq_perf_result *b)
{
	struct awq_device_caps d;
	char err[AWQ_ERRLEN];
	CHECK(awq_caps_from_db("h200", &d, err, sizeof(err)) == 0, "%s", err);
	snprintf(d.backend, sizeof(d.backend), "vulkan");
	d.vk.nv_coopmat = 1;
	d.measured_bw_gbs.v = bw;
	awq_model *m = shape(preset);
	CHECK(m != NULL, "%s shape", preset);
	if (!m)
		return 0;
	*a = predict(&d, m, AWQ_SCHEME_AWQ4, 64);
	*b = predict(&d, m, AWQ_SCHEME_BF16, 64);
	awq_model_free(m);
	return 1;
}

/* Vulkan decode on an H200 (tg128 at the bench's mean context of 64, its read kernel's 3.80 TB/s):
 * the profile's fit to session 18's main rows (docs/perf.md, 41d133b: llama2-7b 267.4 tok/s AWQ,
 * 165.9 BF16; qwen3-8b 241.8, 144.8; qwen3-30b-a3b 186.3, 174.6), with the backend's folds counted
 * per node (qwen3's per-head norms launch nothing of their own: a launch per graph node left
 * qwen3-8b AWQ 17% slow against llama2-7b's 6%), and prefill's (llama2-7b pp512 5650: the
 * cooperative-matrix shader's 128 x 128 tile over 16 subgroups, tiled prefill attention). Decode
 * runs mat-vecs, so it must not come out compute-bound from the cooperative-matrix prefill shader's
 * rate padded to 16 rows (which predicted 55.6 tok/s for both). */
static void vulkan_decode(void)
{
	static const struct {
		const char *preset;
		double awq, bf16;
	} rows[] = {{"llama2-7b", 267.4, 165.9}, {"qwen3-8b", 241.8, 144.8}, {"qwen3-30b-a3b", 186.3, 174.6}};
	for (int i = 0; i < 3; i++) {
		struct awq_perf_result a, b;
		if (!vulkan_h200(rows[i].preset, 3797.1, &a, &b))
			return;
		CHECK(a.decode.limit != AWQ_LIMIT_COMPUTE && b.decode.limit != AWQ_LIMIT_COMPUTE,
		      "%s decode limited by %s / %s", rows[i].preset, awq_limit_name(a.decode.limit),
		      awq_limit_name(b.decode.limit));
		CHECK(near(a.decode.tok_s, rows[i].awq, 0.08), "%s AWQ decode %g tok/s, measured %g", rows[i].preset,
		      a.decode.tok_s, rows[i].awq);
		CHECK(near(b.decode.tok_s, rows[i].bf16, 0.08), "%s BF16 decode %g tok/s, measured %g", rows[i].preset,
		      b.decode.tok_s, rows[i].bf16);
		printf("vulkan %s tg128: AWQ %.1f (measured %.1f), BF16 %.1f (measured %.1f)\n", rows[i].preset,
		       a.decode.tok_s, rows[i].awq, b.decode.tok_s, rows[i].bf16);
		if (i == 0)
			CHECK(a.prefill.limit == AWQ_LIMIT_COMPUTE && near(a.prefill.tok_s, 5650, 0.15),
			      "AWQ pp512 %g tok/s (%s), measured 5650", a.prefill.tok_s, awq_limit_name(a.prefill.limit));
	}
}

/* Vulkan prompts of 2-8 tokens on an H200: 4-bit matmuls on the K-split mat-vec, each row beyond a
 * pass's first at 0.8 of the weight's bytes (perf_profile.matvec_row_q4), steps of 5-8 rows in two
 * passes (q4_split_rows) instead of the cooperative-matrix tiles. Measured (docs/perf.md, session 20,
 * calls 3 and 6): llama2-7b pp2 400, pp4 414, pp5 466, pp8 495 tok/s (265 on the tiles). */
static void vulkan_short_prompts(void)
{
	struct awq_device_caps d;
	char err[AWQ_ERRLEN];
	CHECK(awq_caps_from_db("h200", &d, err, sizeof(err)) == 0, "%s", err);
	snprintf(d.backend, sizeof(d.backend), "vulkan");
	d.vk.nv_coopmat = 1;
	d.measured_bw_gbs.v = 3797.1;
	awq_model *m = shape("llama2-7b");
	CHECK(m != NULL, "llama2-7b shape");
	if (!m)
		return;
	static const struct {
		int n;
		double tok_s;
	} rows[] = {{2, 400.4}, {4, 413.6}, {5, 466.0}, {8, 495.0}};
	for (int i = 0; i < 4; i++) {
		struct awq_perf_query q = {.scheme = AWQ_SCHEME_AWQ4, .batch = 1, .ctx = 64, .n_prompt = rows[i].n};
		struct awq_perf_result r;
		CHECK(awq_perf_predict(&d, m, &q, &r, err, sizeof(err)) == 0, "predict: %s", err);
		printf("vulkan llama2-7b pp%d: AWQ %.0f (measured %.0f)\n", rows[i].n, r.prefill.tok_s, rows[i].tok_s);
		CHECK(near(r.prefill.tok_s, rows[i].tok_s, 0.2), "pp%d %g tok/s, measured %g", rows[i].n, r.prefill.tok_s,
		      rows[i].tok_s);
	}
	awq_model_free(m);
}

/* CUDA prompts of 2-8 tokens on an H200 run the decode GEMV on f16 activations (XH, session 19):
 * measured (docs/perf.md, session 20, call 3) llama2-7b pp2 / pp4 / pp8 1129.5 / 2215.0 / 4117.8
 * tok/s, qwen3-8b 912.0 / 1810.2 / 3272.4; the model (the W4A16 rate padded to 8 rows, launches and
 * bytes as decode) says +2..+11%. */
static void cuda_short_prompts(void)
{
	struct awq_device_caps d;
	char err[AWQ_ERRLEN];
	CHECK(awq_caps_from_db("h200", &d, err, sizeof(err)) == 0, "%s", err);
	d.measured_bw_gbs.v = 4100;
	static const struct {
		const char *preset;
		int n;
		double tok_s;
	} rows[] = {{"llama2-7b", 2, 1129.5}, {"llama2-7b", 4, 2215.0}, {"llama2-7b", 8, 4117.8},
		    {"qwen3-8b", 2, 912.0},    {"qwen3-8b", 4, 1810.2},    {"qwen3-8b", 8, 3272.4}};
	for (int i = 0; i < 6; i++) {
		awq_model *m = shape(rows[i].preset);
		CHECK(m != NULL, "%s shape", rows[i].preset);
		if (!m)
			return;
		struct awq_perf_query q = {.scheme = AWQ_SCHEME_AWQ4, .batch = 1, .ctx = 64, .n_prompt = rows[i].n};
		struct awq_perf_result r;
		CHECK(awq_perf_predict(&d, m, &q, &r, err, sizeof(err)) == 0, "predict: %s", err);
		printf("cuda %s pp%d: AWQ %.0f (measured %.0f)\n", rows[i].preset, rows[i].n, r.prefill.tok_s, rows[i].tok_s);
		CHECK(near(r.prefill.tok_s, rows[i].tok_s, 0.15), "%s pp%d %g tok/s, measured %g", rows[i].preset, rows[i].n,
		      r.prefill.tok_s, rows[i].tok_s);
		awq_model_free(m);
	}
}

/* Vulkan MoE prefill on an H200 (qwen3-30b-a3b, pp512): AWQ experts' grouped matmuls on the
 * cooperative-matrix shader measured 5863 tok/s (docs/perf.md, session 17, call 6); BF16 experts on
 * the same shader 4762 (session 18, call 7; 2061 on the f32 tile shader before). */
static void vulkan_moe_prefill(void)
{
	struct awq_perf_result a, b;
	if (!vulkan_h200("qwen3-30b-a3b", 3826.6, &a, &b))
		return;
	printf("vulkan qwen3-30b-a3b pp512: AWQ %.0f (measured 5863), BF16 %.0f (measured 4762)\n", a.prefill.tok_s,
	       b.prefill.tok_s);
	CHECK(near(a.prefill.tok_s, 5863, 0.2), "AWQ pp512 %g tok/s, measured 5863", a.prefill.tok_s);
	CHECK(near(b.prefill.tok_s, 4762, 0.2), "BF16 pp512 %g tok/s, measured 4762", b.prefill.tok_s);
}

/* CUDA AWQ prefill of 512 tokens runs through a dequantised f16 copy and the 16-bit GEMM
 * (perf_profile.q4_deq_rows): slower than BF16 by the copy's bytes alone, faster than the W4A16
 * GEMM it replaced (AWQ_CUDA_DEQ_ROWS=0). H200, llama2-7b, measured (docs/perf.md, 2026-12-01,
 * session 16): 28618 tok/s AWQ, 37462 BF16 at 512 tokens, 17589 with the GEMM; decode untouched. */
static void awq_prefill_dequant(void)
{
	struct awq_device_caps d;
	char err[AWQ_ERRLEN];
	CHECK(awq_caps_from_db("h200", &d, err, sizeof(err)) == 0, "%s", err);
	d.measured_bw_gbs.v = 4100;
	awq_model *m = shape("llama2-7b");
	CHECK(m != NULL, "llama2-7b shape");
	if (!m)
		return;
	unsetenv("AWQ_CUDA_DEQ_ROWS");
	struct awq_perf_result a = predict(&d, m, AWQ_SCHEME_AWQ4, 64), b = predict(&d, m, AWQ_SCHEME_BF16, 64);
	setenv("AWQ_CUDA_DEQ_ROWS", "0", 1);
	struct awq_perf_result g = predict(&d, m, AWQ_SCHEME_AWQ4, 64);
	unsetenv("AWQ_CUDA_DEQ_ROWS");
	double copy = 2.0 * 6.48e9; /* the f16 copy of llama2-7b's AWQ projections (6.48 G weights) */
	CHECK(a.prefill.bytes > b.prefill.bytes + 0.9 * copy, "AWQ prefill bytes %g, BF16 %g", a.prefill.bytes,
	      b.prefill.bytes);
	CHECK(a.prefill.tok_s < b.prefill.tok_s && a.prefill.tok_s > 0.6 * b.prefill.tok_s,
	      "AWQ pp512 %g tok/s against BF16 %g", a.prefill.tok_s, b.prefill.tok_s);
	CHECK(near(a.prefill.tok_s, 28618, 0.15) && near(b.prefill.tok_s, 37462, 0.15),
	      "pp512 AWQ %g (measured 28618), BF16 %g (37462)", a.prefill.tok_s, b.prefill.tok_s);
	CHECK(g.prefill.tok_s < 0.8 * a.prefill.tok_s, "W4A16 GEMM pp512 %g tok/s against the copy's %g", g.prefill.tok_s,
	      a.prefill.tok_s);
	CHECK(near(g.decode.tok_s, a.decode.tok_s, 1e-9), "decode %g vs %g: the copy is prefill only", g.decode.tok_s,
	      a.decode.tok_s);
	printf("# llama2-7b H200 pp512: AWQ %.0f (copy) / %.0f (W4A16 GEMM), BF16 %.0f tok/s\n", a.prefill.tok_s,
	       g.prefill.tok_s, b.prefill.tok_s);
	awq_model_free(m);
}

static void no_bandwidth(const awq_model *m)
{
	struct awq_device_caps d;
	awq_caps_init(&d, "vulkan", 0);
	snprintf(d.name, sizeof(d.name), "Mystery GPU");
	struct awq_perf_result r = predict(&d, m, AWQ_SCHEME_BF16, 1024);
	CHECK(r.limit == AWQ_LIMIT_UNKNOWN && strstr(r.why, "bandwidth"), "no figures: %s / %s", awq_limit_name(r.limit),
	      r.why);
}

int main(void)
{
	awq_model *m8 = shape("qwen3-8b"), *m06 = shape("qwen3-0.6b");
	CHECK(m8 && m06, "synthetic shapes unavailable");
	if (m8 && m06) {
		bandwidth_scaling(m8);
		lm_head_share();
		moe_topk();
		formats_and_fit(m8);
		weight_bytes(m8);
		overhead_floor(m06);
		vulkan_decode();
		vulkan_moe_prefill();
		vulkan_short_prompts();
		cuda_short_prompts();
		awq_prefill_dequant();
		no_bandwidth(m06);
	}
	awq_model_free(m8);
	awq_model_free(m06);
	return ct_result("caps_perfmodel");
}
