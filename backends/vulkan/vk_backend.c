/* The Vulkan backend plugin: the ops table, device open/close, info and the bandwidth probe.
 * Environment: AWQ_VK_VALIDATE=1 enables VK_LAYER_KHRONOS_validation and turns any message into an
 * error of the next call; AWQ_VK_PROFILE=1 prints GPU time per op at close; AWQ_VK_NO_F16 and
 * AWQ_VK_NO_COOPMAT switch those paths off; AWQ_VK_NO_FUSE runs every node as its own dispatch (no
 * add+RMSNorm, attention prep or gate/up+SiLU mat-vec); AWQ_VK_PIPELINE_CACHE names a pipeline
 * cache file; AWQ_VK_MATVEC_KSPLIT, AWQ_VK_MATVEC_KU, AWQ_VK_MATVEC_WG, AWQ_VK_MATVEC_U4 and
 * AWQ_VK_MATVEC_NR tune the decode mat-vec (matvec_tuning); AWQ_VK_BARRIERS=full puts a full barrier after every node;
 * AWQ_VK_ATTN_MERGE=0 merges attention's key splits in a second dispatch (attn_combine.comp);
 * AWQ_VK_Q8=1 takes the int8-activation 4-bit mat-vec (matvec_tuning); AWQ_VK_ATTN_FOLD=0 keeps the
 * attention's q/k norm, RoPE and cache write in a dispatch of their own in decode steps too;
 * AWQ_VK_ATTN_FAST=0 keeps decode attention's generic key loop for head sizes 64, 128 and 256 too;
 * AWQ_VK_ATTN_GROUP=2 or 4 gives those variants' workgroups up to that many q heads of a kv head;
 * AWQ_VK_ATTN_PREFILL=0 runs prefill steps' attention as decode's (attention.comp) instead of in
 * tiles of query rows (attn_prefill.comp); AWQ_VK_COOPMAT_TILE=64 keeps the cooperative-matrix prefill
 * on its 64 x 64 tile, AWQ_VK_COOPMAT_WARPS=8 computes its 128 x 128 tile with 8 subgroups of 4 x 2
 * accumulators instead of 16 of 2 x 2 (the form before session 18, for A/Bs), AWQ_VK_MOE_BF16_CM=0
 * keeps BF16 MoE experts' prefill on the f32 tile shader and AWQ_VK_PIPELINE_STATS=1 prints each
 * pipeline's driver statistics. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "env.h"
#include "vk_internal.h"

static int env_on(const char *name)
{
	const char *v = getenv(name);
	return v && *v && strcmp(v, "0") != 0;
}

static int env_is(const char *name, const char *value)
{
	const char *v = getenv(name);
	return v && !strcmp(v, value);
}

static void vk_close(void *ctx)
{
	struct vk_ctx *c = ctx;
	if (!c)
		return;
	if (c->dev) {
		vkDeviceWaitIdle(c->dev);
		if (c->inflight)
			vk_sync(c, NULL, 0);
		vk_profile_report(c);
		vk_release_graph(c);
		if (c->qpool)
			vkDestroyQueryPool(c->dev, c->qpool, NULL);
		vk_pipes_destroy(c);
		vkDestroyDevice(c->dev, NULL);
	}
	if (c->messenger) {
		PFN_vkDestroyDebugUtilsMessengerEXT f =
			(PFN_vkDestroyDebugUtilsMessengerEXT)vkGetInstanceProcAddr(c->inst, "vkDestroyDebugUtilsMessengerEXT");
		if (f)
			f(c->inst, c->messenger, NULL);
	}
	/* c->inst is the process's shared instance (vk_instance): it stays */
	free(c);
}

/* A knob of two values: dflt when unset, other when set to it; anything else is reported and ignored. */
static int env_pick(const char *name, int dflt, int other)
{
	const char *v = getenv(name);
	if (!v || !*v)
		return dflt;
	char *end;
	long x = strtol(v, &end, 10);
	if (!*end && (x == dflt || x == other))
		return (int)x;
	fprintf(stderr, "awqrun: vulkan: %s=%s ignored (%d or %d)\n", name, v, dflt, other);
	return dflt;
}

/* The decode mat-vec's tuning knobs, for a new GPU: AWQ_VK_MATVEC_KSPLIT=0 (matvec.comp's 4-bit
 * kernel instead of the K-split one; the two after next imply it), AWQ_VK_MATVEC_KU=2 (the K-split
 * kernel with 2 chunks per invocation in flight), AWQ_VK_MATVEC_U4=1 (the 4-bit form with 4 chunks
 * per lane in flight), AWQ_VK_MATVEC_NR=2 (its 2 output rows per subgroup; 2 or 4), and
 * AWQ_VK_MATVEC_WG (the workgroup size of every mat-vec: a power of two within the device's limits and
 * at least a subgroup), AWQ_VK_MATVEC_XS=1 (one-row steps of the K-split kernel read x through shared
 * memory, coalesced; workgroups of 64 or less). Values out of range are reported and ignored.
 * (AWQ_VK_Q8 is read in vk_open: the device is created with the feature it needs.) */
static void matvec_tuning(struct vk_ctx *c)
{
	c->mv_u4 = env_on("AWQ_VK_MATVEC_U4");
	c->mv_ksplit = !env_is("AWQ_VK_MATVEC_KSPLIT", "0");
	c->mv_ku = env_pick("AWQ_VK_MATVEC_KU", 1, 2);
	c->mv_nr = env_pick("AWQ_VK_MATVEC_NR", 4, 2);
	c->mv_xs = env_pick("AWQ_VK_MATVEC_XS", 0, 1);
	c->mv_wg = VK_MV_WG;
	const char *e = getenv("AWQ_VK_MATVEC_WG");
	if (!e || !*e)
		return;
	char *end;
	long v = strtol(e, &end, 10);
	long lo = c->subgroup_size > 32 ? (long)c->subgroup_size : 32;
	long hi = (long)c->props.limits.maxComputeWorkGroupInvocations;
	if ((long)c->props.limits.maxComputeWorkGroupSize[0] < hi)
		hi = (long)c->props.limits.maxComputeWorkGroupSize[0];
	hi = hi < 1024 ? hi : 1024;
	if (*end || v < lo || v > hi || (v & (v - 1))) {
		fprintf(stderr, "awqrun: vulkan: AWQ_VK_MATVEC_WG=%s ignored (a power of two from %ld to %ld)\n", e, lo, hi);
		return;
	}
	c->mv_wg = (int)v;
}

static int vk_open(int device, const struct awq_backend_opts *o, void **out, char *err, size_t errlen)
{
	struct vk_ctx *c = calloc(1, sizeof(*c));
	if (!c)
		return awq_err(err, errlen, AWQ_ENOMEM, "out of memory");
	if (o)
		c->opts = *o;
	c->validate = env_on("AWQ_VK_VALIDATE");
	c->profile = env_on("AWQ_VK_PROFILE");
	c->attn_merge = !env_is("AWQ_VK_ATTN_MERGE", "0");
	c->attn_fold = !env_is("AWQ_VK_ATTN_FOLD", "0");
	c->attn_prefill = !env_is("AWQ_VK_ATTN_PREFILL", "0");
	/* attention.comp's ILP: four keys per subgroup and eight values per loop step in flight; off:
	 * no gain on the H200 (2026-11-30: -1.4% llama2-7b, 0% qwen3-8b decode), kept for other GPUs */
	c->attn_ilp = env_pick("AWQ_VK_ATTN_ILP", 0, 1);
	/* attention.comp's cache keys with 16-byte loads, all of a block in flight (the HD variants) */
	c->attn_fast = !env_is("AWQ_VK_ATTN_FAST", "0");
	/* and their workgroups over 2 q heads of a kv head at once (vk_attn_group) in decode steps from
	 * AWQ_VK_ATTN_GROUP_FROM keys on (default 512), each span's steps recorded apart (vk_attn_span):
	 * on the H200 (session 34) after 4096 positions +3.0% on qwen3-8b, +4.6% qwen3-0.6b, +2.0%
	 * qwen3-30b-a3b, and 0.2-0.8% slower over positions 16-80; session 35: after 512 and 768
	 * positions +1.6-1.7% (qwen3-8b) and +2.3-2.4% (qwen3-0.6b), after 256 +2.2% and -0.6%, after
	 * 128 -0.4% and -0.6%. AWQ_VK_ATTN_GROUP=2 or 4: at most that many at every position; =0 or
	 * 1: never */
	const char *gv = getenv("AWQ_VK_ATTN_GROUP");
	c->attn_group = 2;
	c->attn_group_from = 512;
	if (gv && *gv) {
		if (!strcmp(gv, "2") || !strcmp(gv, "4"))
			c->attn_group = gv[0] - '0', c->attn_group_from = 0;
		else if (!strcmp(gv, "0") || !strcmp(gv, "1"))
			c->attn_group = 1;
		else
			fprintf(stderr, "awqrun: vulkan: AWQ_VK_ATTN_GROUP=%s ignored (0, 1, 2 or 4)\n", gv);
	}
	if (c->attn_group_from)
		c->attn_group_from = awq_env_int("AWQ_VK_ATTN_GROUP_FROM", c->attn_group_from, 1, 1 << 30);
	const char *sp = getenv("AWQ_VK_ATTN_SPLITS");
	if (sp && *sp) {
		char *end;
		long v = strtol(sp, &end, 10);
		if (*end || v < 1 || v > 32)
			fprintf(stderr, "awqrun: AWQ_VK_ATTN_SPLITS=%s ignored (want 1-32)\n", sp);
		else
			c->attn_splits_cap = (int)v;
	}
	/* the MoE experts' gate/up + SiLU in one dispatch: off by default, AWQ_VK_MOE_SILU=1 takes it. On
	 * the H200 qwen3-30b-a3b AWQ decoded at 146.0 / 148.6 tok/s with it against 151.8 without, in one
	 * call (16:05Z, docs/perf.md session 12) */
	c->moe_silu = env_pick("AWQ_VK_MOE_SILU", 0, 1);
	/* the residual add + RMSNorm of one-row steps in the epilogue of the K-split mat-vec before them
	 * and the prologue of the mat-vecs after (epinorm.glsl): off. On the H200 it was 2-4% slower in
	 * sessions 13 and 20, and at parity once its kernels were compiled as the plain one (session 20:
	 * llama2-7b 255.3 / 254.2 tok/s against 255.7 / 254.2): the readers' extra work (q/k/v 4096 x 4096
	 * 13.1 us against 11.7, gate+up 37.1 against 34.2) takes what the 63 dispatches it removes save */
	c->epinorm = env_pick("AWQ_VK_EPINORM", 0, 1);
	/* the MoE experts' combine inside the residual add + RMSNorm after them (decode): off (-7% on
	 * qwen3-30b-a3b in session 13) */
	c->moe_fold = env_pick("AWQ_VK_MOE_FOLD", 0, 1);
	/* BF16 experts' prefill (grouped matmuls) on the cooperative-matrix tile where their range fits
	 * fp16 (as dense BF16 weights take it): qwen3-30b-a3b BF16 pp512 2068 -> 4762 tok/s on the H200
	 * (session 18); AWQ_VK_MOE_BF16_CM=0 keeps them on the f32 tile shader */
	c->moe_bf16_cm = env_pick("AWQ_VK_MOE_BF16_CM", 1, 0);
	c->sample_chain = env_pick("AWQ_VK_SAMPLE_CHAIN", 1, 0);
	c->full_barriers = env_is("AWQ_VK_BARRIERS", "full");
	c->no_fuse = getenv("AWQ_VK_NO_FUSE") != NULL;
	/* int8 activations and integer dots in the 4-bit decode mat-vecs (q4dot.glsl, Q8DOT), a knob like
	 * the mat-vec's others: AWQ_VK_Q8=1 takes them where the device has the feature (lavapipe's dots
	 * are emulated: the tests' way to run them; vk_open_device enables it only then). Off by
	 * default: on the H200, whose 4x8-bit dots are accelerated, llama2-7b AWQ decoded at 253 tok/s
	 * with them against 264 without (1b00f73): the fp16 dot's ALU work is not what holds those
	 * kernels back */
	c->q8 = env_pick("AWQ_VK_Q8", 0, 1);
	/* read here, used by vk_open_device: the cooperative-matrix prefill's tile (128 where the device
	 * allows it; 64 for A/Bs), the 128 x 128 tile over 16 subgroups (8 for A/Bs), and each
	 * pipeline's driver statistics (where the device has the extension) */
	c->coopmat_tile = env_pick("AWQ_VK_COOPMAT_TILE", 128, 64);
	c->coopmat_warps = env_pick("AWQ_VK_COOPMAT_WARPS", 16, 8);
	c->pipe_stats = env_on("AWQ_VK_PIPELINE_STATS");
	int rc = vk_instance(c, err, errlen);
	if (!rc)
		rc = vk_open_device(c, device, err, errlen);
	if (!rc)
		matvec_tuning(c);
	if (!rc)
		rc = vk_pipes_init(c, err, errlen);
	if (!rc && c->profile) {
		VkQueryPoolCreateInfo qi = {.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
					    .queryType = VK_QUERY_TYPE_TIMESTAMP, .queryCount = 4096};
		rc = vk_check(c, vkCreateQueryPool(c->dev, &qi, NULL, &c->qpool), "vkCreateQueryPool", err, errlen);
	}
	if (rc) {
		vk_close(c);
		return rc;
	}
	char grp[96] = "";
	if (c->attn_fast && c->attn_group > 1)
		vk_attn_group_words(c, grp, sizeof(grp));
	snprintf(c->kernels, sizeof(c->kernels), "vulkan (not prepared): %s%s mat-vec; %s%s%s%s%s%s%s%s%s%s",
		 vk_q4_f16(c) ? "W4A16 fp16-math" : "W4A16 f32-math", vk_q4_q8(c) ? " + int8-dot decode" : "",
		 c->attn_ilp ? "attention keys four per subgroup; " : "",
		 c->attn_fast ? "" : "attention's generic key loop for every head size; ",
		 grp,
		 c->attn_merge ? "" : "attention combine as a second dispatch; ",
		 c->attn_fold ? "" : "attention prep as its own dispatch in decode; ",
		 c->attn_prefill ? "" : "prefill attention one workgroup per row and head; ",
		 c->moe_silu ? "MoE gate/up/SiLU in one dispatch; " : "",
		 c->epinorm ? "add+RMSNorm in the mat-vecs around it; " : "",
		 c->moe_fold ? "MoE combine in the add+RMSNorm; " : "", c->coopmat_why);
	*out = c;
	return 0;
}

static int vk_supports(void *ctx, const struct awq_graph *g, const struct awq_node *n)
{
	(void)ctx, (void)g;
	if (n->op >= AWQ_OP_COUNT)
		return 0;
	if (n->op == AWQ_OP_MOE_ROUTE || n->op == AWQ_OP_MOE_EXPERTS)
		return vk_moe_check(n, NULL, 0) == 0;
	if (n->op == AWQ_OP_ATTENTION && n->p.attn.head_dim > 256)
		return 0;
	if (n->op == AWQ_OP_ROPE && (n->p.rope.head_dim > 256 || n->p.rope.head_dim % 2))
		return 0;
	if (n->w && n->w->fmt == AWQ_WFMT_AWQ4 && (n->w->k % 8 || n->w->n % 8))
		return 0;
	if (n->w && n->w->fmt == AWQ_WFMT_DENSE && n->w->dtype != AWQ_DT_F32 && n->w->dtype != AWQ_DT_F16 &&
	    n->w->dtype != AWQ_DT_BF16)
		return 0;
	return 1;
}

static int vk_info(void *ctx, struct awq_backend_info *info)
{
	struct vk_ctx *c = ctx;
	memset(info, 0, sizeof(*info));
	awq_backend_info_set(info, c->device, c->kernels, c->weight_bytes, c->kv_bytes, c->act_bytes);
	return 0;
}

/* Read a device-local buffer (up to 1 GiB) repeatedly with membw.comp; the wall time of one submit
 * of `reps` dispatches gives GB/s. */
static int vk_bandwidth(void *ctx, double *gbs, char *err, size_t errlen)
{
	struct vk_ctx *c = ctx;
	VkDeviceSize size = 1ull << 30;
	size = size < c->max_range ? size : c->max_range & ~(VkDeviceSize)4095;
	size = size < c->max_alloc ? size : c->max_alloc & ~(VkDeviceSize)4095;
	struct vk_buf src, out;
	VkPipeline p;
	VkDescriptorSet set;
	int rc = vk_sync(c, err, errlen);
	if (rc)
		return rc;
	if (!c->dpool || !c->step.buf)
		return awq_err(err, errlen, AWQ_EINVAL, "bandwidth needs a prepared graph");
	rc = vk_buf_create(c, &src, size, 0, "bandwidth buffer", err, errlen);
	if (!rc)
		rc = vk_buf_create(c, &out, 256, 0, "bandwidth output", err, errlen);
	if (!rc)
		rc = vk_pipe_get(c, "membw", 0, 0, 0, &p, err, errlen);
	if (!rc)
		rc = vk_set_alloc(c, &set, err, errlen);
	if (rc) {
		vk_buf_destroy(c, &src);
		return rc;
	}
	struct vk_range r[3] = {vk_whole(&src), {0}, vk_whole(&out)};
	vk_set_write(c, set, r, 3);
	const uint32_t groups = 2048;
	struct vk_push pc = {.u = {(uint32_t)(size / 16), groups * 256}};
	double best = 0;
	for (int pass = 0; pass < 3 && !rc; pass++) {
		const int reps = pass == 0 ? 1 : 8;
		VkCommandBuffer cb;
		rc = vk_begin_once(c, &cb, err, errlen);
		if (rc)
			break;
		vkCmdFillBuffer(cb, src.buf, 0, VK_WHOLE_SIZE, 0x3f800000u);
		vk_barrier(cb);
		for (int i = 0; i < reps; i++) {
			vk_dispatch(cb, c, p, set, &pc, groups, 1, 1);
			vk_barrier(cb);
		}
		double t0 = awq_now_s();
		rc = vk_submit_wait(c, cb, err, errlen);
		double dt = awq_now_s() - t0;
		if (pass && dt > 0 && reps * (double)size / dt / 1e9 > best)
			best = reps * (double)size / dt / 1e9;
	}
	vk_buf_destroy(c, &src);
	vk_buf_destroy(c, &out);
	*gbs = best;
	return rc;
}

static int vk_probe(struct awq_device_desc *out, int max, char *err, size_t errlen)
{
	return vk_probe_devices(out, max, err, errlen);
}

static const struct awq_backend_ops vk_ops = {
	.name = "vulkan",
	.abi = AWQ_BACKEND_ABI,
	.probe = vk_probe,
	.open = vk_open,
	.close = vk_close,
	.supports = vk_supports,
	.prepare = vk_prepare,
	.write_value = vk_write_value,
	.run = vk_run,
	.decode_chain = vk_chain,
	.read_value = vk_read_value,
	.sync = vk_sync,
	.info = vk_info,
	.bandwidth = vk_bandwidth,
};

__attribute__((visibility("default"))) const struct awq_backend_ops *awq_backend_entry(int abi)
{
	return abi == AWQ_BACKEND_ABI ? &vk_ops : NULL;
}
