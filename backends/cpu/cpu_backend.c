/* The CPU backend's plugin table: device probe, setup and data movement (execution is in
 * cpu_exec.c). Activations live in one planned f32 arena, the KV cache is f32. AWQ weights are
 * repacked once at prepare into the dot-product layout of cpu_kernels.h (still 4-bit); other weights
 * are used in place (memory-mapped). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include "cpu_backend.h"
#include "clock.h"
#include "cpu_membw.h"
#include "error.h"

/* The processor's brand string: cpuid on x86, /proc/cpuinfo elsewhere. */
static void cpu_name(char *out, size_t len)
{
	snprintf(out, len, "CPU");
#if defined(__x86_64__)
	unsigned r[12];
	if (__get_cpuid_max(0x80000000u, NULL) >= 0x80000004u) {
		for (unsigned i = 0; i < 3; i++)
			__get_cpuid(0x80000002u + i, &r[4 * i], &r[4 * i + 1], &r[4 * i + 2], &r[4 * i + 3]);
		char brand[49];
		memcpy(brand, r, 48);
		brand[48] = 0;
		char *b = brand;
		while (*b == ' ')
			b++;
		for (size_t n = strlen(b); n > 0 && b[n - 1] == ' '; n--)
			b[n - 1] = 0;
		if (*b) {
			snprintf(out, len, "%s", b);
			return;
		}
	}
#endif
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[512];
	while (f && fgets(line, sizeof(line), f)) {
		char *c = strchr(line, ':');
		if (c && (strncmp(line, "model name", 10) == 0 || strncmp(line, "Model", 5) == 0)) {
			c += 1 + strspn(c + 1, " \t");
			c[strcspn(c, "\n")] = 0;
			snprintf(out, len, "%s", c);
			break;
		}
	}
	if (f)
		fclose(f);
}

static int cpu_probe(struct awq_device_desc *out, int max, char *err, size_t errlen)
{
	(void)err, (void)errlen;
	if (max < 1)
		return 0;
	memset(out, 0, sizeof(*out));
	cpu_name(out->name, sizeof(out->name));
	const struct awq_cpu_kernels *k = awq_cpu_kernels_select();
#if defined(__x86_64__)
	snprintf(out->arch, sizeof(out->arch), "x86-64 %s", k ? k->name : "scalar");
#elif defined(__aarch64__)
	snprintf(out->arch, sizeof(out->arch), "arm64 %s", k ? k->name : "scalar");
#else
	snprintf(out->arch, sizeof(out->arch), "%s", k ? k->name : "scalar");
#endif
	long pages = sysconf(_SC_PHYS_PAGES), avail = sysconf(_SC_AVPHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
	out->mem_total = pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz : 0;
	out->mem_free = avail > 0 && psz > 0 ? (uint64_t)avail * (uint64_t)psz : 0;
	return 1;
}

static int cpu_open(int device, const struct awq_backend_opts *o, void **out, char *err, size_t errlen)
{
	if (device != 0)
		return awq_err(err, errlen, AWQ_ENODEV, "the CPU backend has one device (0), not %d", device);
	struct cpu_ctx *c = calloc(1, sizeof(*c));
	if (!c)
		return awq_err(err, errlen, AWQ_ENOMEM, "out of memory opening the CPU backend");
	if (o)
		c->opts = *o;
	int rc = awq_pool_create(c->opts.threads, &c->pool, err, errlen);
	if (rc) {
		free(c);
		return rc;
	}
	c->threads = awq_pool_threads(c->pool);
	c->k = c->opts.cpu_scalar ? NULL : awq_cpu_kernels_select();
	const char *exact = getenv("AWQ_CPU_EXACT");
	c->exact = exact && *exact && strcmp(exact, "0") != 0;
	struct awq_device_desc d;
	cpu_probe(&d, 1, NULL, 0);
	snprintf(c->device, sizeof(c->device), "%s", d.name);
	*out = c;
	return 0;
}

/* AWQ_CPU_PROFILE=1: time per op kind of single-token steps. */
static void profile_report(const struct cpu_ctx *c)
{
	if (!c->prof_s || !c->g || !c->prof_steps)
		return;
	const struct awq_graph *g = c->g;
	double by_op[AWQ_OP_COUNT] = {0}, total = 0;
	int count[AWQ_OP_COUNT] = {0};
	for (int i = 0; i < g->n_nodes; i++) {
		by_op[g->nodes[i].op] += c->prof_s[i];
		count[g->nodes[i].op]++;
		total += c->prof_s[i];
	}
	fprintf(stderr, "cpu profile: %.1f us per single-token step over %d steps, %d nodes\n", 1e6 * total / c->prof_steps,
		c->prof_steps, g->n_nodes);
	for (int op = 0; op < AWQ_OP_COUNT; op++)
		if (count[op])
			fprintf(stderr, "  %-12s %5d nodes %10.1f us/step %8.2f us/node %5.1f%%\n", awq_op_name((enum awq_op)op),
				count[op], 1e6 * by_op[op] / c->prof_steps, 1e6 * by_op[op] / c->prof_steps / count[op],
				100.0 * by_op[op] / total);
}

static void cpu_close(void *ctx)
{
	struct cpu_ctx *c = ctx;
	if (!c)
		return;
	profile_report(c);
	free(c->prof_s);
	for (int i = 0; i < c->n_weights; i++) {
		awq_cpu_q4_free(&c->weights[i].q4);
		free((void *)c->weights[i].copy.data);
	}
	free(c->weights);
	awq_cpu_moe_release(&c->moe);
	free(c->offsets);
	free(c->arena);
	free(c->kv);
	free(c->qa.q);
	free(c->qa.scale);
	free(c->qa.sum);
	free(c->xp);
	free(c->attn_p);
	free(c->rope_cos);
	free(c->rope_sin);
	awq_pool_destroy(c->pool);
	free(c);
}

static int cpu_supports(void *ctx, const struct awq_graph *g, const struct awq_node *n)
{
	(void)ctx, (void)g;
	return n->op >= 0 && n->op < AWQ_OP_COUNT;
}

struct repack_job {
	const struct awq_weight *w;
	struct awq_cpu_q4 *dst;
};

static void repack_part(void *ctx, int b, int e, int t)
{
	struct repack_job *j = ctx;
	(void)t;
	awq_cpu_q4_repack(j->w, j->dst, b, e);
}

static int has_data(const struct awq_weight *w)
{
	return w->fmt == AWQ_WFMT_AWQ4 ? w->qweight && w->scales : w->data != NULL;
}

/* Dense matmul weights are streamed every token; moved to huge pages they stream 25-30% faster than
 * from the 4 KiB pages of a file mapping. Only when they fit twice over in available memory: the
 * mapped file pages stay cached until the kernel needs them back. */
static int dense_copy_fits(const struct cpu_ctx *c)
{
	uint64_t need = 0;
	long avail = sysconf(_SC_AVPHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
	const char *env = getenv("AWQ_CPU_NO_COPY");
	if (env && *env && strcmp(env, "0") != 0)
		return 0;
	for (int i = 0; i < c->n_weights; i++)
		if (c->weights[i].w->fmt == AWQ_WFMT_DENSE)
			need += awq_weight_bytes(c->weights[i].w);
	return avail > 0 && psz > 0 && need * 2 < (uint64_t)avail * (uint64_t)psz;
}

struct copy_job {
	uint8_t *dst;
	const uint8_t *src;
	size_t bytes;
};

static void copy_part(void *ctx, int b, int e, int t)
{
	struct copy_job *j = ctx;
	size_t chunk = (j->bytes + 255) / 256, lo = (size_t)b * chunk, hi = (size_t)e * chunk;
	(void)t;
	hi = hi < j->bytes ? hi : j->bytes;
	if (lo < hi)
		memcpy(j->dst + lo, j->src + lo, hi - lo);
}

static int copy_to_huge(struct cpu_ctx *c, struct cpu_weight *cw, char *err, size_t errlen)
{
	const struct awq_weight *w = cw->w;
	size_t bytes = (size_t)w->n * (size_t)w->k * awq_dtype_size(w->dtype);
	void *p = awq_cpu_alloc_huge(bytes);
	if (!p)
		return awq_err(err, errlen, AWQ_ETOOBIG, "out of memory copying %s (%.1f MiB)", w->name,
			       bytes / 1048576.0);
	struct copy_job job = {p, w->data, bytes};
	awq_pool_run(c->pool, copy_part, &job, 256, 1); /* fault the pages in on every thread */
	cw->copy = *w;
	cw->copy.data = p;
	c->copy_bytes += bytes;
	return 0;
}

/* The matmul weights, once per storage (a tied lm_head is its own struct over the embedding's data):
 * AWQ repacked for the kernels, dense copied to huge pages when that fits. */
static int prepare_matmul_weights(struct cpu_ctx *c, int64_t *max_k, char *err, size_t errlen)
{
	const struct awq_graph *g = c->g;
	c->weights = calloc((size_t)g->n_nodes + 1, sizeof(*c->weights));
	if (!c->weights)
		return awq_err(err, errlen, AWQ_ENOMEM, "out of memory");
	for (int i = 0; i < g->n_nodes; i++) {
		const struct awq_weight *w = g->nodes[i].w;
		if (g->nodes[i].op != AWQ_OP_MATMUL || awq_cpu_find_weight(c, w))
			continue;
		c->weights[c->n_weights++].w = w;
		*max_k = w->k > *max_k ? w->k : *max_k;
	}
	int copy = c->k && dense_copy_fits(c);
	for (int i = 0; i < c->n_weights; i++) {
		struct cpu_weight *cw = &c->weights[i];
		const struct awq_weight *w = cw->w;
		int rc;
		if (!has_data(w))
			return awq_err(err, errlen, AWQ_EINVAL, "weight %s has no data (a shape-only model cannot run)",
				       w->name);
		if (w->fmt == AWQ_WFMT_DENSE && copy && (rc = copy_to_huge(c, cw, err, errlen)))
			return rc;
		if (!c->k || !awq_cpu_q4_supported(w))
			continue;
		if (awq_cpu_q4_alloc(w, &cw->q4))
			return awq_err(err, errlen, AWQ_ETOOBIG, "out of memory repacking %s (%.1f MiB)", w->name,
				       awq_cpu_q4_bytes(w) / 1048576.0);
		struct repack_job job = {w, &cw->q4};
		awq_pool_run(c->pool, repack_part, &job, (int)cw->q4.tiles, 1);
		c->repack_bytes += awq_cpu_q4_bytes(w);
	}
	return 0;
}

/* Bytes of weights this backend reads: repacked AWQ at its new size, the rest as stored. */
static int count_weights(struct cpu_ctx *c, char *err, size_t errlen)
{
	const struct awq_weight **ws;
	int nw = awq_graph_weights(c->g, &ws);
	if (nw < 0)
		return awq_err(err, errlen, AWQ_ENOMEM, "out of memory listing the graph's weights");
	for (int i = 0; i < nw; i++) {
		const struct cpu_weight *cw = awq_cpu_find_weight(c, ws[i]);
		if (awq_cpu_moe_owns(&c->moe, ws[i]))
			continue; /* counted below as the MoE code holds them */
		if (!has_data(ws[i])) {
			int rc = awq_err(err, errlen, AWQ_EINVAL, "weight %s has no data (a shape-only model cannot run)",
					 ws[i]->name);
			free(ws);
			return rc;
		}
		if (cw && cw->q4.q)
			c->weight_bytes += awq_cpu_q4_bytes(ws[i]) +
					   (ws[i]->bias ? (size_t)ws[i]->n * awq_dtype_size(ws[i]->bias_dtype) : 0);
		else
			c->weight_bytes += awq_weight_bytes(ws[i]);
	}
	c->weight_bytes += c->moe.weight_bytes;
	free(ws);
	return 0;
}

static int prepare_weights(struct cpu_ctx *c, char *err, size_t errlen)
{
	int64_t max_k = 0;
	int rc = prepare_matmul_weights(c, &max_k, err, errlen);
	if (!rc)
		rc = awq_cpu_moe_prepare(&c->moe, c->g, c->max_tokens, c->k, c->exact, c->pool, err, errlen);
	if (rc || (rc = count_weights(c, err, errlen)))
		return rc;
	size_t rows = (size_t)c->max_tokens, k = (size_t)max_k;
	c->qa.q = malloc(rows * k + 64);
	c->qa.scale = malloc(rows * (k / 8 + 1) * sizeof(float));
	c->qa.sum = malloc(rows * (k / 8 + 1) * sizeof(int32_t));
	/* 64-byte aligned: the 512-bit bf16 loop reads it in whole cache lines (a split load per vector
	 * cost a fifth of its speed) */
	c->xp = aligned_alloc(64, (rows * k * sizeof(float) + 127) & ~(size_t)63);
	if (!c->qa.q || !c->qa.scale || !c->qa.sum || !c->xp)
		return awq_err(err, errlen, AWQ_ENOMEM, "out of memory for matmul scratch");
	return 0;
}

static int alloc_state(struct cpu_ctx *c, const struct awq_prepare_opts *o, char *err, size_t errlen)
{
	const struct awq_graph *g = c->g;
	c->offsets = calloc((size_t)g->n_values, sizeof(size_t));
	if (!c->offsets)
		return awq_err(err, errlen, AWQ_ENOMEM, "out of memory");
	int rc = awq_graph_plan(g, o->max_tokens, sizeof(float), c->offsets, &c->arena_bytes, err, errlen);
	if (rc)
		return rc;
	c->arena = aligned_alloc(64, (c->arena_bytes + 63) & ~(size_t)63);
	c->kv_bytes = (size_t)g->n_kv_layers * 2 * (size_t)o->max_ctx * (size_t)g->kv_heads * (size_t)g->head_dim *
		      sizeof(float);
	c->kv = c->kv_bytes ? malloc(c->kv_bytes) : NULL;
	if (!c->arena || (c->kv_bytes && !c->kv))
		return awq_err(err, errlen, AWQ_ETOOBIG,
			       "not enough host memory: %.1f MiB of activations and %.1f MiB of KV cache for %d positions",
			       c->arena_bytes / 1048576.0, c->kv_bytes / 1048576.0, o->max_ctx);
	c->rope_dim = 2;
	for (int i = 0; i < g->n_nodes; i++)
		if (g->nodes[i].op == AWQ_OP_ROPE && g->nodes[i].p.rope.head_dim > c->rope_dim)
			c->rope_dim = g->nodes[i].p.rope.head_dim;
	/* one spare row holds the inverse frequencies while the tables are filled */
	size_t rope = ((size_t)o->max_tokens + 1) * (size_t)(c->rope_dim / 2) * sizeof(float);
	c->rope_cos = malloc(rope);
	c->rope_sin = malloc(rope);
	c->attn_p = malloc((size_t)c->threads * AWQ_CPU_ATTN_G * (size_t)o->max_ctx * sizeof(float));
	if (!c->rope_cos || !c->rope_sin || !c->attn_p)
		return awq_err(err, errlen, AWQ_ENOMEM, "out of memory");
	return 0;
}

static int cpu_prepare(void *ctx, const struct awq_graph *g, const struct awq_prepare_opts *o, char *err,
		       size_t errlen)
{
	struct cpu_ctx *c = ctx;
	if (c->g)
		return awq_err(err, errlen, AWQ_EINVAL, "the CPU backend was already prepared with a graph");
	int rc = awq_graph_check(g, err, errlen);
	if (rc)
		return rc;
	if (o->max_tokens < 1 || o->max_ctx < o->max_tokens)
		return awq_err(err, errlen, AWQ_EINVAL, "invalid sizes: %d tokens per step, %d context", o->max_tokens,
			       o->max_ctx);
	c->g = g;
	c->max_tokens = o->max_tokens;
	c->max_ctx = o->max_ctx;
	if ((rc = alloc_state(c, o, err, errlen)) || (rc = prepare_weights(c, err, errlen)))
		return rc;
	const char *prof = getenv("AWQ_CPU_PROFILE");
	if (prof && prof[0] == '1' && !(c->prof_s = calloc((size_t)g->n_nodes, sizeof(double))))
		return awq_err(err, errlen, AWQ_ENOMEM, "out of memory");
	snprintf(c->kernels, sizeof(c->kernels), "%s%s, %d threads%s%s", c->k ? c->k->name : "scalar reference",
		 c->k && c->exact ? " f32" : "", c->threads,
		 c->repack_bytes ? (c->exact ? ", AWQ repacked 4-bit (f32 activations)"
					     : ", AWQ repacked 4-bit for int8 dot products (int8 activations)")
				 : "",
		 c->copy_bytes ? ", 16-bit weights copied to huge pages" : "");
	return 0;
}

static int check_io(const struct cpu_ctx *c, int v, int rows, const char *what, char *err, size_t errlen)
{
	if (!c->g)
		return awq_err(err, errlen, AWQ_EINVAL, "%s before prepare", what);
	if (v < 0 || v >= c->g->n_values || rows < 1 || rows > c->max_tokens)
		return awq_err(err, errlen, AWQ_EINVAL, "%s of value %d with %d rows is out of range", what, v, rows);
	return 0;
}

static int cpu_write_value(void *ctx, int v, const void *src, int rows, char *err, size_t errlen)
{
	struct cpu_ctx *c = ctx;
	int rc = check_io(c, v, rows, "write", err, errlen);
	if (rc)
		return rc;
	memcpy(c->arena + c->offsets[v], src, (size_t)rows * (size_t)c->g->values[v].cols * 4);
	return 0;
}

static int cpu_read_value(void *ctx, int v, void *dst, int rows, char *err, size_t errlen)
{
	struct cpu_ctx *c = ctx;
	int rc = check_io(c, v, rows, "read", err, errlen);
	if (rc)
		return rc;
	memcpy(dst, c->arena + c->offsets[v], (size_t)rows * (size_t)c->g->values[v].cols * 4);
	return 0;
}

static int cpu_run(void *ctx, const struct awq_step *s, char *err, size_t errlen)
{
	struct cpu_ctx *c = ctx;
	if (!c->g)
		return awq_err(err, errlen, AWQ_EINVAL, "run before prepare");
	if (s->n_tokens < 1 || s->n_tokens > c->max_tokens || s->pos < 0 || s->pos > c->max_ctx - s->n_tokens)
		return awq_err(err, errlen, AWQ_ETOOBIG, "step of %d tokens at position %d exceeds %d tokens / %d context",
			       s->n_tokens, s->pos, c->max_tokens, c->max_ctx);
	/* a new step means new activations and positions */
	c->qa_of.vid = c->xp_of.vid = -1;
	c->rope_of.rows = -1;
	int prof = c->prof_s && s->n_tokens == 1;
	for (int i = 0; i < c->g->n_nodes; i++) {
		double t0 = prof ? awq_now_s() : 0;
		int rc = awq_cpu_run_node(c, &c->g->nodes[i], s, err, errlen);
		if (rc)
			return rc;
		if (prof)
			c->prof_s[i] += awq_now_s() - t0;
	}
	c->prof_steps += prof;
	return 0;
}

static int cpu_sync(void *ctx, char *err, size_t errlen)
{
	(void)ctx, (void)err, (void)errlen;
	return 0;
}

static int cpu_info(void *ctx, struct awq_backend_info *info)
{
	struct cpu_ctx *c = ctx;
	memset(info, 0, sizeof(*info));
	awq_backend_info_set(info, c->device, c->kernels, c->weight_bytes, c->kv_bytes, c->arena_bytes);
	return 0;
}

static int cpu_bandwidth(void *ctx, double *gbs, char *err, size_t errlen)
{
	struct cpu_ctx *c = ctx;
	*gbs = awq_cpu_read_bandwidth_gbs(c->pool, 0);
	if (*gbs <= 0)
		return awq_err(err, errlen, AWQ_ENOMEM, "no memory for the 1 GiB bandwidth test buffer");
	return 0;
}

static const struct awq_backend_ops cpu_ops = {
	.name = "cpu",
	.abi = AWQ_BACKEND_ABI,
	.probe = cpu_probe,
	.open = cpu_open,
	.close = cpu_close,
	.supports = cpu_supports,
	.prepare = cpu_prepare,
	.write_value = cpu_write_value,
	.run = cpu_run,
	.read_value = cpu_read_value,
	.sync = cpu_sync,
	.info = cpu_info,
	.bandwidth = cpu_bandwidth,
};

const struct awq_backend_ops *awq_cpu_backend(void)
{
	return &cpu_ops;
}
