/* The CPU backend: executes the graph node by node on host memory, with SIMD kernels chosen from
 * cpuid and work split over a pinned thread pool. Activations live in one planned arena (f32), the
 * KV cache is f32. AWQ weights are repacked once at prepare into the dot-product layout of
 * cpu_kernels.h (still 4-bit); other weights are used in place (memory-mapped). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "cpu_kernels.h"
#include "cpu_membw.h"
#include "cpu_ref.h"
#include "error.h"
#include "threadpool.h"

struct cpu_weight {
	const struct awq_weight *w;
	struct cpu_q4 q4; /* q4.q != NULL when repacked */
};

struct cpu_ctx {
	struct awq_backend_opts opts;
	struct awq_pool *pool;
	const struct cpu_kernels *k; /* NULL: scalar reference */
	const struct awq_graph *g;
	int max_tokens, max_ctx;
	size_t *offsets;
	uint8_t *arena;
	size_t arena_bytes;
	float *kv;            /* [layers][2][max_ctx][kv_dim] */
	size_t kv_bytes;
	struct cpu_weight *weights;
	int n_weights;
	size_t repack_bytes;
	struct cpu_qact qa;   /* scratch for quantized activations */
	int qa_vid;           /* value qa holds (matmuls sharing an input quantize it once); values are
			       * written once per step, so the id identifies the contents */
	int qa_rows, qa_group;
	float *rope_cos, *rope_sin; /* [max_tokens][head_dim/2] for the current step */
	int rope_dim; /* largest head_dim of any ROPE node: sizes the tables */
	int rope_cur_dim;
	struct awq_rope rope_cfg;
	int rope_pos, rope_rows;
	char kernels[96];
	char device[128];
};

static int cpu_probe(struct awq_device_desc *out, int max, char *err, size_t errlen)
{
	(void)err, (void)errlen;
	if (max < 1)
		return 0;
	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "CPU");
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[512];
	while (f && fgets(line, sizeof(line), f)) {
		char *c = strchr(line, ':');
		if (c && strncmp(line, "model name", 10) == 0) {
			c += 2;
			c[strcspn(c, "\n")] = 0;
			snprintf(out->name, sizeof(out->name), "%s", c);
			break;
		}
	}
	if (f)
		fclose(f);
	const struct cpu_kernels *k = cpu_kernels_select();
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
	struct cpu_ctx *c = calloc(1, sizeof(*c));
	if (device != 0)
		return awq_err(err, errlen, AWQ_ENODEV, "the CPU backend has one device (0), not %d", device);
	if (!c)
		return awq_err(err, errlen, AWQ_ENOMEM, "out of memory");
	if (o)
		c->opts = *o;
	int rc = awq_pool_create(c->opts.threads, &c->pool, err, errlen);
	if (rc) {
		free(c);
		return rc;
	}
	c->k = c->opts.cpu_scalar ? NULL : cpu_kernels_select();
	struct awq_device_desc d;
	cpu_probe(&d, 1, NULL, 0);
	snprintf(c->device, sizeof(c->device), "%s", d.name);
	*out = c;
	return 0;
}

static void cpu_close(void *ctx)
{
	struct cpu_ctx *c = ctx;
	if (!c)
		return;
	for (int i = 0; i < c->n_weights; i++) {
		free(c->weights[i].q4.q);
		free(c->weights[i].q4.scales);
		free(c->weights[i].q4.zeros);
	}
	free(c->weights);
	free(c->offsets);
	free(c->arena);
	free(c->kv);
	free(c->qa.q);
	free(c->qa.scale);
	free(c->qa.corr);
	free(c->rope_cos);
	free(c->rope_sin);
	awq_pool_destroy(c->pool);
	free(c);
}

static int cpu_supports(void *ctx, const struct awq_graph *g, const struct awq_node *n)
{
	(void)ctx, (void)g;
	return n->op != AWQ_OP_MOE_ROUTE && n->op != AWQ_OP_MOE_EXPERTS && n->op < AWQ_OP_COUNT;
}

struct repack_job {
	const struct awq_weight *w;
	struct cpu_q4 *dst;
};

static void repack_part(void *ctx, int b, int e, int t)
{
	struct repack_job *j = ctx;
	(void)t;
	cpu_q4_repack(j->w, j->dst, b, e);
}

static struct cpu_weight *find_weight(struct cpu_ctx *c, const struct awq_weight *w)
{
	for (int i = 0; i < c->n_weights; i++)
		if (c->weights[i].w == w)
			return &c->weights[i];
	return NULL;
}

static int prepare_weights(struct cpu_ctx *c, char *err, size_t errlen)
{
	const struct awq_graph *g = c->g;
	c->weights = calloc((size_t)g->n_nodes + 1, sizeof(*c->weights));
	if (!c->weights)
		return awq_err(err, errlen, AWQ_ENOMEM, "out of memory");
	int64_t max_k = 0, max_g = 1;
	for (int i = 0; i < g->n_nodes; i++) {
		const struct awq_weight *w = g->nodes[i].w;
		if (!w || g->nodes[i].op != AWQ_OP_MATMUL || find_weight(c, w))
			continue;
		if (!w->data && !w->qweight)
			return awq_err(err, errlen, AWQ_EINVAL, "weight %s has no data (a shape-only model cannot run)",
				       w->name);
		struct cpu_weight *cw = &c->weights[c->n_weights++];
		cw->w = w;
		if (!c->k || !cpu_q4_supported(w) || getenv("AWQ_CPU_EXACT"))
			continue;
		int64_t ng = w->k / w->group_size;
		struct cpu_q4 *q = &cw->q4;
		q->n = w->n;
		q->k = w->k;
		q->group = w->group_size;
		q->bias = w->bias;
		q->bias_dtype = w->bias_dtype;
		q->q = aligned_alloc(64, ((size_t)(w->n * w->k / 2) + 63) & ~(size_t)63);
		q->scales = malloc((size_t)(w->n * ng) * 2);
		q->zeros = malloc((size_t)(w->n * ng));
		if (!q->q || !q->scales || !q->zeros)
			return awq_err(err, errlen, AWQ_ENOMEM, "out of memory repacking %s", w->name);
		struct repack_job job = {w, q};
		awq_pool_run(c->pool, repack_part, &job, (int)w->n, 8);
		c->repack_bytes += (size_t)(w->n * w->k / 2) + (size_t)(w->n * ng) * 3;
		if (w->k > max_k)
			max_k = w->k;
		if (w->group_size > max_g)
			max_g = w->group_size;
	}
	if (max_k > 0) {
		size_t rows = (size_t)c->max_tokens;
		c->qa.q = malloc(rows * (size_t)max_k);
		c->qa.scale = malloc(rows * (size_t)(max_k / CPU_QBLOCK) * sizeof(float));
		c->qa.corr = malloc(rows * (size_t)(max_k / CPU_QBLOCK) * sizeof(float));
		if (!c->qa.q || !c->qa.scale || !c->qa.corr)
			return awq_err(err, errlen, AWQ_ENOMEM, "out of memory");
	}
	(void)max_g;
	return 0;
}

static int cpu_prepare(void *ctx, const struct awq_graph *g, const struct awq_prepare_opts *o, char *err,
		       size_t errlen)
{
	struct cpu_ctx *c = ctx;
	int rc = awq_graph_check(g, err, errlen);
	if (rc)
		return rc;
	if (o->max_tokens < 1 || o->max_ctx < o->max_tokens)
		return awq_err(err, errlen, AWQ_EINVAL, "invalid sizes: %d tokens per step, %d context", o->max_tokens,
			       o->max_ctx);
	c->g = g;
	c->max_tokens = o->max_tokens;
	c->max_ctx = o->max_ctx;
	c->offsets = calloc((size_t)g->n_values, sizeof(size_t));
	if (!c->offsets)
		return awq_err(err, errlen, AWQ_ENOMEM, "out of memory");
	rc = awq_graph_plan(g, o->max_tokens, sizeof(float), c->offsets, &c->arena_bytes, err, errlen);
	if (rc)
		return rc;
	c->arena = aligned_alloc(64, (c->arena_bytes + 63) & ~(size_t)63);
	c->kv_bytes = (size_t)g->n_kv_layers * 2 * (size_t)o->max_ctx * (size_t)(g->kv_heads * g->head_dim) *
		      sizeof(float);
	c->kv = c->kv_bytes ? malloc(c->kv_bytes) : NULL;
	if (!c->arena || (c->kv_bytes && !c->kv))
		return awq_err(err, errlen, AWQ_ETOOBIG,
			       "not enough host memory: %.1f MiB of activations and %.1f MiB of KV cache for %d positions",
			       c->arena_bytes / 1048576.0, c->kv_bytes / 1048576.0, o->max_ctx);
	c->rope_dim = g->head_dim > 0 ? g->head_dim : 2;
	for (int i = 0; i < g->n_nodes; i++)
		if (g->nodes[i].op == AWQ_OP_ROPE && g->nodes[i].p.rope.head_dim > c->rope_dim)
			c->rope_dim = g->nodes[i].p.rope.head_dim;
	c->rope_cos = malloc((size_t)o->max_tokens * (size_t)(c->rope_dim / 2 + 1) * sizeof(float));
	c->rope_sin = malloc((size_t)o->max_tokens * (size_t)(c->rope_dim / 2 + 1) * sizeof(float));
	if (!c->rope_cos || !c->rope_sin)
		return awq_err(err, errlen, AWQ_ENOMEM, "out of memory");
	rc = prepare_weights(c, err, errlen);
	if (rc)
		return rc;
	snprintf(c->kernels, sizeof(c->kernels), "%s, %d threads%s", c->k ? c->k->name : "scalar reference",
		 awq_pool_threads(c->pool), c->repack_bytes ? ", AWQ repacked for int8 dot products" : "");
	return 0;
}

static void *val(struct cpu_ctx *c, int v)
{
	return c->arena + c->offsets[v];
}

static int cpu_write_value(void *ctx, int v, const void *src, int rows, char *err, size_t errlen)
{
	struct cpu_ctx *c = ctx;
	if (!c->g || v < 0 || v >= c->g->n_values || rows < 1 || rows > c->max_tokens)
		return awq_err(err, errlen, AWQ_EINVAL, "write of value %d with %d rows is out of range", v, rows);
	memcpy(val(c, v), src, (size_t)rows * (size_t)c->g->values[v].cols * 4);
	return 0;
}

static int cpu_read_value(void *ctx, int v, void *dst, int rows, char *err, size_t errlen)
{
	struct cpu_ctx *c = ctx;
	if (!c->g || v < 0 || v >= c->g->n_values || rows < 1 || rows > c->max_tokens)
		return awq_err(err, errlen, AWQ_EINVAL, "read of value %d with %d rows is out of range", v, rows);
	memcpy(dst, val(c, v), (size_t)rows * (size_t)c->g->values[v].cols * 4);
	return 0;
}

/* --- parallel parts ------------------------------------------------------------------------ */

struct mm_job {
	struct cpu_ctx *c;
	const struct awq_weight *w;
	const struct cpu_q4 *q4;
	const float *x;
	float *out;
	int rows;
};

static void mm_part(void *ctx, int b, int e, int t)
{
	struct mm_job *j = ctx;
	(void)t;
	if (j->q4)
		j->c->k->q4(j->q4, &j->c->qa, j->rows, b, e, j->out);
	else if (j->c->k && j->w->fmt == AWQ_WFMT_DENSE)
		j->c->k->dense(j->w, j->x, j->rows, b, e, j->out);
	else
		for (int r = 0; r < j->rows; r++) {
			/* scalar reference on a column slice: run it on a view of the weight */
			struct awq_weight view = *j->w;
			float *tmp = malloc((size_t)(e - b) * sizeof(float));
			if (!tmp)
				return;
			for (int n = b; n < e; n++) {
				double acc = 0;
				for (int64_t k = 0; k < view.k; k++) {
					float wv = view.fmt == AWQ_WFMT_AWQ4
							   ? awq_awq4_weight_at(&view, k, n)
							   : awq_load_float(view.data, view.dtype, (size_t)(n * view.k + k));
					acc += (double)j->x[(size_t)r * view.k + k] * wv;
				}
				if (view.bias)
					acc += awq_load_float(view.bias, view.bias_dtype, (size_t)n);
				tmp[n - b] = (float)acc;
			}
			memcpy(j->out + (size_t)r * view.n + b, tmp, (size_t)(e - b) * sizeof(float));
			free(tmp);
		}
}

static void quant_part(void *ctx, int b, int e, int t)
{
	struct mm_job *j = ctx;
	(void)t;
	cpu_quantize_rows(j->x, b, e, &j->c->qa);
}

static void matmul(struct cpu_ctx *c, const struct awq_weight *w, int vid, const float *x, int rows, float *out)
{
	struct cpu_weight *cw = find_weight(c, w);
	struct mm_job j = {c, w, cw && cw->q4.q ? &cw->q4 : NULL, x, out, rows};
	if (j.q4 && (c->qa_vid != vid || c->qa_rows != rows || c->qa_group != w->group_size || c->qa.k != (int)w->k)) {
		c->qa.rows = rows;
		c->qa.k = (int)w->k;
		c->qa.group = w->group_size;
		if ((size_t)rows * (size_t)w->k <= 65536)
			cpu_quantize_rows(x, 0, rows, &c->qa); /* cheaper than waking the pool */
		else
			awq_pool_run(c->pool, quant_part, &j, rows, 1);
		c->qa_vid = vid;
		c->qa_rows = rows;
		c->qa_group = w->group_size;
	}
	awq_pool_run(c->pool, mm_part, &j, (int)w->n, 8);
}

struct attn_job {
	struct cpu_ctx *c;
	const struct awq_node *n;
	const float *q;
	float *kc, *vc, *out;
	int rows, pos;
};

static void attn_part(void *ctx, int b, int e, int t)
{
	struct attn_job *j = ctx;
	const int hq = j->n->p.attn.n_heads, hk = j->n->p.attn.n_kv_heads, d = j->n->p.attn.head_dim;
	const int kv_dim = hk * d, q_dim = hq * d, grp = hq / hk;
	float *p = malloc((size_t)(j->pos + j->rows) * sizeof(float));
	(void)t;
	if (!p)
		return;
	/* items are (row, head) pairs */
	for (int it = b; it < e; it++) {
		int r = it / hq, h = it % hq, kh = h / grp, last = j->pos + r;
		const float *qi = j->q + (size_t)r * q_dim + h * d;
		float mx = -INFINITY, sum = 0;
		for (int s = 0; s <= last; s++) {
			const float *ks = j->kc + (size_t)s * kv_dim + kh * d;
			float dot = 0;
			for (int i = 0; i < d; i++)
				dot += qi[i] * ks[i];
			p[s] = dot * j->n->p.attn.scale;
			mx = p[s] > mx ? p[s] : mx;
		}
		for (int s = 0; s <= last; s++) {
			p[s] = expf(p[s] - mx);
			sum += p[s];
		}
		float *o = j->out + (size_t)r * q_dim + h * d;
		for (int i = 0; i < d; i++)
			o[i] = 0;
		for (int s = 0; s <= last; s++) {
			const float *vs = j->vc + (size_t)s * kv_dim + kh * d;
			float ps = p[s] / sum;
			for (int i = 0; i < d; i++)
				o[i] += ps * vs[i];
		}
	}
	free(p);
}

static void rope_tables(struct cpu_ctx *c, const struct awq_node *n, int rows, int pos)
{
	const int d = n->p.rope.head_dim;
	if (c->rope_rows == rows && c->rope_pos == pos && c->rope_cur_dim == d &&
	    memcmp(&c->rope_cfg, &n->p.rope.rope, sizeof(c->rope_cfg)) == 0)
		return;
	float inv[1024], ps;
	awq_rope_inv_freq(&n->p.rope.rope, d, inv, &ps);
	for (int r = 0; r < rows; r++)
		for (int i = 0; i < d / 2; i++) {
			float ang = (float)(pos + r) * ps * inv[i];
			c->rope_cos[(size_t)r * (d / 2) + i] = cosf(ang);
			c->rope_sin[(size_t)r * (d / 2) + i] = sinf(ang);
		}
	c->rope_rows = rows;
	c->rope_pos = pos;
	c->rope_cur_dim = d;
	c->rope_cfg = n->p.rope.rope;
}

static int run_node(struct cpu_ctx *c, const struct awq_node *n, const struct awq_step *s, char *err,
		    size_t errlen)
{
	const struct awq_graph *g = c->g;
	const int rows = awq_value_rows(g, n->out, s), cols = g->values[n->out].cols;
	float *out = val(c, n->out);
	const float *a = n->in[0] >= 0 ? val(c, n->in[0]) : NULL;
	const float *b = n->in[1] >= 0 ? val(c, n->in[1]) : NULL;

	switch (n->op) {
	case AWQ_OP_EMBED:
		if (awq_ref_embed(n->w, (const int32_t *)a, rows, out))
			return awq_err(err, errlen, AWQ_EINVAL, "a token id is outside the embedding table (%lld rows)",
				       (long long)n->w->n);
		break;
	case AWQ_OP_RMSNORM:
		awq_ref_rmsnorm(a, rows, cols, n->p.norm.group, n->p.norm.eps, n->w, out);
		break;
	case AWQ_OP_MATMUL:
		if (c->k || find_weight(c, n->w))
			matmul(c, n->w, n->in[0], a, rows, out);
		else
			awq_ref_matmul(a, rows, n->w, out);
		break;
	case AWQ_OP_ROPE: {
		const int d = n->p.rope.head_dim, half = d / 2, heads = n->p.rope.n_heads;
		if (d > c->rope_dim || d > 2048)
			return awq_err(err, errlen, AWQ_EUNSUPPORTED, "head_dim %d is too large for the CPU RoPE", d);
		rope_tables(c, n, rows, s->pos);
		for (int r = 0; r < rows; r++)
			for (int h = 0; h < heads; h++) {
				const float *x = a + (size_t)r * cols + h * d;
				float *o = out + (size_t)r * cols + h * d;
				const float *cs = c->rope_cos + (size_t)r * half, *sn = c->rope_sin + (size_t)r * half;
				for (int i = 0; i < half; i++) {
					float x1 = x[i], x2 = x[i + half];
					o[i] = x1 * cs[i] - x2 * sn[i];
					o[i + half] = x2 * cs[i] + x1 * sn[i];
				}
			}
		break;
	}
	case AWQ_OP_ATTENTION: {
		const int kv_dim = g->kv_heads * g->head_dim;
		float *kc = c->kv + (size_t)n->p.attn.layer * 2 * (size_t)c->max_ctx * kv_dim;
		float *vc = kc + (size_t)c->max_ctx * kv_dim;
		memcpy(kc + (size_t)s->pos * kv_dim, b, (size_t)rows * kv_dim * sizeof(float));
		memcpy(vc + (size_t)s->pos * kv_dim, val(c, n->in[2]), (size_t)rows * kv_dim * sizeof(float));
		struct attn_job j = {c, n, a, kc, vc, out, rows, s->pos};
		awq_pool_run(c->pool, attn_part, &j, rows * n->p.attn.n_heads, 1);
		break;
	}
	case AWQ_OP_SILU_MUL:
		awq_ref_silu_mul(a, b, rows * cols, out);
		break;
	case AWQ_OP_ADD:
		awq_ref_add(a, b, rows * cols, out);
		break;
	case AWQ_OP_LAST_ROWS:
		memcpy(out, a + (size_t)(s->all_rows ? 0 : s->n_tokens - 1) * cols, (size_t)rows * cols * sizeof(float));
		break;
	case AWQ_OP_ARGMAX:
		awq_ref_argmax(a, rows, g->values[n->in[0]].cols, (int32_t *)out);
		break;
	default:
		return awq_err(err, errlen, AWQ_EUNSUPPORTED, "the CPU backend does not run %s", awq_op_name(n->op));
	}
	return 0;
}

static int cpu_run(void *ctx, const struct awq_step *s, char *err, size_t errlen)
{
	struct cpu_ctx *c = ctx;
	if (!c->g)
		return awq_err(err, errlen, AWQ_EINVAL, "run before prepare");
	if (s->n_tokens < 1 || s->n_tokens > c->max_tokens || s->pos < 0 || s->pos + s->n_tokens > c->max_ctx)
		return awq_err(err, errlen, AWQ_ETOOBIG, "step of %d tokens at position %d exceeds %d tokens / %d context",
			       s->n_tokens, s->pos, c->max_tokens, c->max_ctx);
	c->rope_rows = -1;
	c->qa_vid = -1; /* activations are new every step */
	for (int i = 0; i < c->g->n_nodes; i++) {
		int rc = run_node(c, &c->g->nodes[i], s, err, errlen);
		if (rc)
			return rc;
	}
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
	info->device = c->device;
	info->kernels = c->kernels;
	info->weight_bytes = c->repack_bytes;
	info->kv_bytes = c->kv_bytes;
	info->act_bytes = c->arena_bytes;
	info->device_bytes = c->repack_bytes + c->kv_bytes + c->arena_bytes;
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
