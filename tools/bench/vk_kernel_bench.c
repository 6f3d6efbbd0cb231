/* awq-vk-bench: one Vulkan decode mat-vec in isolation, to split a kernel's own time from the fixed
 * cost around each dispatch (docs/perf-cuda-notes.md, session 11: three fixes were built for causes
 * that this would have ruled out first).
 *
 * For each weight shape, the mat-vec a one-token decode step records for it (the same pipeline
 * choice and AWQ_VK_* knobs as in a model, through vk_rec_matmul) is recorded R times into one
 * command buffer, timed with GPU timestamps around the whole run, in three ways:
 *   chain:  a compute barrier after every dispatch, as decode runs dependent nodes;
 *   free:   no barrier in between, the dispatches free to overlap (their outputs race; only the
 *           time is kept), the kernel's throughput;
 *   single: one dispatch per submit, host-timed per submit as well (the first dispatch's start-up
 *           and the submit round trip, what a model does not pay per node).
 * It prints us per dispatch, the weight bytes per second and their fraction of the device's read
 * bandwidth (the plugin's read kernel, as `awqrun bench` uses). Weights as `awqrun bench
 * --synthetic` fills them (awq_synthetic_weight).
 *
 *   awq-vk-bench [--device N] [--reps R] [--shape NxK[,NxK...]] [--format awq|f16] [--no-bw]
 *                [--barrier compute|exec|buffer|full] [--rotate MB] [--rows M]
 *
 * --rotate MB (default 256): the dispatches cycle through copies of the weight (up to 64) whose
 * bytes together reach MB, so that each reads its weight from memory as a model's decode does; one
 * weight read again and again stays in the last-level cache (an H200 has 50 MB of L2: the
 * earlier figures of this tool, before --rotate, were L2-resident). --rotate 0: one weight.
 *
 * --barrier: the chain's barrier (what each dependent dispatch pays for it): compute (default, a
 * global memory barrier compute to compute, as decode records), exec (an execution dependency with
 * no memory barrier: not enough for correctness, the floor of the wait itself), buffer (a buffer
 * memory barrier on the output only), full (vk_barrier, with transfer stages and accesses). A tiny
 * shape (8x128: one workgroup) makes the chain time the dispatch-to-dispatch latency alone.
 *
 * (--no-bw: no bandwidth reference, which reads a 1 GiB buffer: for the smoke test on lavapipe.)
 *
 * --rows M (default 1): the matrix product of an M-row step instead (prefill: matmul_coopmat.comp
 * where the device has cooperative matrices, else matmul_tile.comp), its rate also in TFLOP/s.
 *
 * Default shapes: llama2-7b's decode mat-vecs (4096x4096, 11008x4096, 4096x11008) and 4096x14336.
 * Exit 77 without a Vulkan device. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "synthetic.h"
#include "vk_internal.h"

const struct awq_backend_ops *awq_backend_entry(int abi);

enum mode { CHAIN, FREE, SINGLE };
enum bar { BAR_COMPUTE, BAR_EXEC, BAR_BUFFER, BAR_FULL };
static const char *const bar_names[] = {"compute", "exec", "buffer", "full"};
static enum bar chain_bar = BAR_COMPUTE;
static int step_rows = 1; /* --rows */

/* The chain's barrier after a dispatch that wrote out (chain_bar). */
static void chain_barrier(VkCommandBuffer cb, const struct vk_range *out)
{
	const VkPipelineStageFlags cs = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT;
	if (chain_bar == BAR_EXEC) {
		vkCmdPipelineBarrier(cb, cs, cs, 0, 0, NULL, 0, NULL, 0, NULL);
	} else if (chain_bar == BAR_BUFFER) {
		VkBufferMemoryBarrier b = {.sType = VK_STRUCTURE_TYPE_BUFFER_MEMORY_BARRIER,
					   .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
					   .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT,
					   .srcQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED,
					   .dstQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED,
					   .buffer = out->buf, .offset = out->off, .size = out->size};
		vkCmdPipelineBarrier(cb, cs, cs, 0, 0, NULL, 1, &b, 0, NULL);
	} else if (chain_bar == BAR_FULL) {
		vk_barrier(cb);
	} else {
		vk_barrier_compute(cb);
	}
}

/* GPU time of reps dispatches of the graph's mat-vecs in turn (its nodes: copies of one weight, so
 * that their bytes together exceed the device's last-level cache) in one command buffer (mode
 * CHAIN or FREE), or the mean host time of one-dispatch submits (SINGLE), in us per dispatch. */
static int time_matvec(struct vk_ctx *c, VkQueryPool qp, enum mode m, int reps, double *us, char *err, size_t errlen)
{
	const int copies = c->g->n_nodes;
	VkCommandBuffer cb;
	int n_sub = m == SINGLE ? reps : 1, per = m == SINGLE ? 1 : reps;
	double t0 = awq_now_s(), gpu = 0;
	for (int s = 0; s < n_sub; s++) {
		int rc = vk_begin_once(c, &cb, err, errlen);
		if (rc)
			return rc;
		vkCmdResetQueryPool(cb, qp, 0, 2);
		vkCmdWriteTimestamp(cb, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, qp, 0);
		for (int i = 0; i < per && !rc; i++) {
			const int j = (s * per + i) % copies;
			rc = vk_rec_matmul(c, cb, c->nodes[j].wt, c->nodes[j].set[0], step_rows, 0, err, errlen);
			if (m == CHAIN) {
				const struct vk_range out = vk_value(c, c->g->nodes[j].out);
				chain_barrier(cb, &out);
			}
		}
		vkCmdWriteTimestamp(cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, qp, 1);
		if (!rc)
			rc = vk_submit_wait(c, cb, err, errlen);
		if (rc)
			return rc;
		uint64_t t[2];
		if (vkGetQueryPoolResults(c->dev, qp, 0, 2, sizeof(t), t, sizeof(uint64_t),
					  VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT) != VK_SUCCESS)
			return awq_err(err, errlen, AWQ_EDEVICE, "timestamps not available");
		gpu += (double)(t[1] - t[0]) * c->props.limits.timestampPeriod * 1e-3;
	}
	*us = m == SINGLE ? (awq_now_s() - t0) * 1e6 / reps : gpu / reps;
	return 0;
}

static double rotate_mb = 256; /* --rotate: the copies' bytes together, at least (0: one weight) */
#define MAX_COPIES 64

static int bench_shape(const struct awq_backend_ops *ops, int dev, int n, int k, int awq, int reps, double *bw)
{
	char err[AWQ_ERRLEN] = "";
	struct awq_weight w;
	void *data;
	if (awq_synthetic_weight(&w, awq ? "awq_g128" : "f16", n, k, awq, AWQ_DT_F16, 1, &data, err, sizeof(err))) {
		fprintf(stderr, "awq-vk-bench: %s\n", err);
		return 1;
	}
	/* copies of the weight (one host copy; each node uploads its own), reps cycling through them:
	 * one weight stays in a 50 MB L2 (an H200's) between dispatches, which HBM-bound decode never sees */
	const double bytes1 = (double)awq_weight_bytes(&w);
	int copies = rotate_mb > 0 ? (int)(rotate_mb * 1e6 / bytes1 + 0.999) : 1;
	copies = copies < 1 ? 1 : copies > MAX_COPIES ? MAX_COPIES : copies;
	struct awq_weight ws[MAX_COPIES];
	struct awq_graph g;
	awq_graph_init(&g);
	int tok = awq_graph_value(&g, AWQ_V_TOKENS, 1, "tok"), x = awq_graph_value(&g, AWQ_V_ACT, k, "x"), y = -1;
	for (int i = 0; i < copies; i++) {
		ws[i] = w;
		y = awq_graph_node(&g, AWQ_OP_MATMUL, n, "y", x, -1, -1, &ws[i], NULL);
	}
	g.tokens_in = tok;
	g.logits_out = y;
	struct awq_backend_opts o = {.quiet = 1};
	struct awq_prepare_opts po = {.max_tokens = step_rows, .max_ctx = step_rows};
	void *ctx = NULL;
	VkQueryPool qp = VK_NULL_HANDLE;
	int rc = ops->open(dev, &o, &ctx, err, sizeof(err));
	if (!rc)
		rc = ops->prepare(ctx, &g, &po, err, sizeof(err));
	struct vk_ctx *c = ctx;
	if (!rc) {
		VkQueryPoolCreateInfo qi = {.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
					    .queryType = VK_QUERY_TYPE_TIMESTAMP, .queryCount = 2};
		rc = vk_check(c, vkCreateQueryPool(c->dev, &qi, NULL, &qp), "vkCreateQueryPool", err, sizeof(err));
	}
	if (!rc && *bw == 0) { /* the read-bandwidth reference, once (it needs a prepared context) */
		if (!ops->bandwidth || ops->bandwidth(ctx, bw, err, sizeof(err)))
			*bw = -1;
	}
	double t[3] = {0, 0, 0};
	if (!rc) /* warm-up: pipelines created, clocks up */
		rc = time_matvec(c, qp, FREE, reps, &t[0], err, sizeof(err));
	for (int m = 0; m < 3 && !rc; m++)
		rc = time_matvec(c, qp, (enum mode)m, m == SINGLE ? (reps < 50 ? reps : 50) : reps, &t[m], err,
				 sizeof(err));
	if (!rc) {
		double bytes = (double)awq_weight_bytes(&w);
		char fc[16] = "-", ff[16] = "-"; /* fractions of the read bandwidth, where it was measured */
		if (*bw > 0) {
			snprintf(fc, sizeof(fc), "%.0f%%", 100 * bytes / (t[CHAIN] * 1e3) / *bw);
			snprintf(ff, sizeof(ff), "%.0f%%", 100 * bytes / (t[FREE] * 1e3) / *bw);
		}
		const double flop = 2.0 * step_rows * n * (double)k; /* TFLOP/s = flop / (us * 1e6) */
		printf("| %s | %d x %d | %d | %.2f MB x %d | %.2f | %.1f GB/s | %s | %.1f | %.2f | %.1f GB/s | %s | %.1f | %.1f |\n",
		       awq ? "awq g128" : "f16", n, k, step_rows, bytes / 1e6, copies, t[CHAIN], bytes / (t[CHAIN] * 1e3), fc,
		       flop / (t[CHAIN] * 1e6), t[FREE], bytes / (t[FREE] * 1e3), ff, flop / (t[FREE] * 1e6), t[SINGLE]);
	} else {
		fprintf(stderr, "awq-vk-bench: %s x %d x %d: %s\n", awq ? "awq" : "f16", n, k, err);
	}
	if (qp)
		vkDestroyQueryPool(c->dev, qp, NULL);
	if (ctx)
		ops->close(ctx);
	awq_graph_free(&g);
	free(data);
	return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
	int dev = 0, reps = 200, awq = 1, no_bw = 0;
	const char *shapes = "4096x4096,11008x4096,4096x11008,4096x14336";
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--device") && i + 1 < argc)
			dev = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
			reps = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--no-bw"))
			no_bw = 1;
		else if (!strcmp(argv[i], "--rows") && i + 1 < argc)
			step_rows = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--rotate") && i + 1 < argc)
			rotate_mb = atof(argv[++i]);
		else if (!strcmp(argv[i], "--shape") && i + 1 < argc)
			shapes = argv[++i];
		else if (!strcmp(argv[i], "--format") && i + 1 < argc && (!strcmp(argv[i + 1], "awq") || !strcmp(argv[i + 1], "f16")))
			awq = !strcmp(argv[++i], "awq");
		else if (!strcmp(argv[i], "--barrier") && i + 1 < argc) {
			const char *b = argv[++i];
			int found = 0;
			for (int j = 0; j < 4; j++)
				if (!strcmp(b, bar_names[j]))
					chain_bar = (enum bar)j, found = 1;
			if (!found) {
				fprintf(stderr, "awq-vk-bench: --barrier %s: not one of compute, exec, buffer, full\n", b);
				return 2;
			}
		} else {
			fprintf(stderr, "usage: awq-vk-bench [--device N] [--reps R] [--shape NxK[,NxK...]] [--format awq|f16] "
					"[--no-bw] [--barrier compute|exec|buffer|full] [--rotate MB] [--rows M]\n");
			return 2;
		}
	}
	if (!(rotate_mb >= 0 && rotate_mb <= 65536)) {
		fprintf(stderr, "awq-vk-bench: --rotate %g out of range (0..65536 MB)\n", rotate_mb);
		return 2;
	}
	if (step_rows < 1 || step_rows > 65536) {
		fprintf(stderr, "awq-vk-bench: --rows %d out of range (1..65536)\n", step_rows);
		return 2;
	}
	if (reps < 1 || reps > 100000) {
		fprintf(stderr, "awq-vk-bench: --reps %d out of range (1..100000)\n", reps);
		return 2;
	}
	const struct awq_backend_ops *ops = awq_backend_entry(AWQ_BACKEND_ABI);
	struct awq_device_desc d[8];
	char err[AWQ_ERRLEN] = "";
	int nd = ops ? ops->probe(d, 8, err, sizeof(err)) : 0;
	if (nd <= 0) {
		printf("SKIP: no Vulkan device: %s\n", err);
		return 77;
	}
	if (dev < 0 || dev >= nd) {
		fprintf(stderr, "awq-vk-bench: device %d does not exist (%d found)\n", dev, nd);
		return 2;
	}
	void *ctx;
	struct awq_backend_opts o = {.quiet = 1};
	if (!ops->open(dev, &o, &ctx, err, sizeof(err))) {
		struct awq_backend_info info;
		ops->info(ctx, &info);
		printf("# awq-vk-bench: %s; %s\n", d[dev].name, info.kernels);
		ops->close(ctx);
	}
	printf("# %d dispatches per timing (single: up to 50 submits, host time); chain barrier: %s\n", reps,
	       bar_names[chain_bar]);
	double bw = no_bw ? -1 : 0; /* -1: none (the table's fractions are then -) */
	int fails = 0;
	printf("\n| weights | n x k | rows | bytes x copies | chain us | chain GB/s | of BW | chain TFLOP/s | free us | free GB/s | of BW | free TFLOP/s | single us (host) |\n");
	printf("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
	for (const char *p = shapes; *p;) {
		int n = 0, k = 0, used = 0;
		if (sscanf(p, "%dx%d%n", &n, &k, &used) != 2 || n < 1 || k < 1) {
			fprintf(stderr, "awq-vk-bench: bad shape list at \"%s\" (NxK[,NxK...])\n", p);
			return 2;
		}
		fails += bench_shape(ops, dev, n, k, awq, reps, &bw);
		p += used;
		if (*p == ',')
			p++;
		else if (*p) {
			fprintf(stderr, "awq-vk-bench: bad shape list at \"%s\" (NxK[,NxK...])\n", p);
			return 2;
		}
	}
	if (bw > 0)
		printf("\n# of BW: of the read bandwidth %.1f GB/s (the plugin's read kernel, as awqrun bench)\n", bw);
	return fails ? 1 : 0;
}
