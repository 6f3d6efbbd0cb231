/* Memory accounting for `awqrun bench`: what a model needs on a device — weights by format and KV
 * cache as the performance model stores them (awq_perf_predict), activations as the backends plan
 * them (awq_graph_plan over the model's graph, the planner every backend sizes its arena with, plus
 * each backend's scratch buffers) — and the `--fit` table built from it: which presets fit on a
 * 16/24/48/80 GB GPU in each precision at a given context. Bench rows print the same accounting
 * beside what the backend really allocated, so the table's numbers are checked on every run.
 * graph.h is core's, not the public API: no public call sizes a model's activations yet. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "awqrun_caps.h"
#include "bench.h"
#include "graph.h"

/* Scratch the CUDA backend adds to its arena (backends/cuda: cuBLAS workspace, FP16 copies of the
 * prefill activations, attention split partials of 64 positions each). */
#define CUDA_BLAS_WS (32ull << 20)
#define CUDA_DECODE_ROWS 8
#define CUDA_ATTN_CHUNK 64

/* Bytes per weight of the performance model's AWQ scheme: 4-bit values plus, per group of 128, an
 * FP16 scale and a 4-bit zero point. */
#define AWQ4_BYTES_PER_WEIGHT (0.5 + 2.5 / 128.0)
/* Share of a GPU kept for the driver, the context and libraries (as the performance model keeps). */
#define GPU_RESERVE 0.05
/* GPU sizes are binary: an "80 GB" H100 holds 80 GiB. */
#define GIB 1073741824.0

static int predict(const struct awq_device_caps *d, const char *backend, const char *device, const awq_model *m,
		   enum awq_scheme s, int ctx, int chunk, struct awq_perf_result *r, char *err, size_t errlen)
{
	struct awq_perf_query q = {.scheme = s, .batch = 1, .ctx = ctx > 0 ? ctx : 1, .n_prompt = 1,
				   .chunk = chunk > 0 ? chunk : 1};
	/* Memory does not depend on the bandwidth; a nominal figure keeps the probe from timing runs. */
	return d ? awq_perf_predict(d, m, &q, r, err, errlen)
		 : awq_caps_predict_device(backend, device, m, &q, 1.0, r, err, errlen);
}

/* Split weights into the quantized part (4-bit AWQ incl. scales/zeros, or FP8 incl. block scales)
 * and the 16-bit part (embeddings, lm_head, norms: what the format leaves unquantized): the model in
 * BF16 and in AWQ differ only in the quantized weights, which gives the 16-bit part. */
static int split_by_format(const struct awq_device_caps *d, const char *backend, const char *device,
			   const awq_model *m, enum awq_scheme s, uint64_t total, struct bench_mem *mem, char *err,
			   size_t errlen)
{
	struct awq_model_info mi;
	struct awq_perf_result r16, r4;
	awq_model_get_info(m, &mi);
	int quantized = s == AWQ_SCHEME_AWQ4 || s == AWQ_SCHEME_FP8 ||
			(s == AWQ_SCHEME_STORED && (strstr(mi.precision, "awq") || strstr(mi.precision, "fp8")));
	if (!quantized) {
		mem->weights_16 = total;
		mem->weights_q4 = 0;
		return 0;
	}
	int rc = predict(d, backend, device, m, AWQ_SCHEME_BF16, 1, 1, &r16, err, errlen);
	if (!rc)
		rc = predict(d, backend, device, m, AWQ_SCHEME_AWQ4, 1, 1, &r4, err, errlen);
	if (rc)
		return rc;
	double q = ((double)r16.weight_bytes - (double)r4.weight_bytes) / (2.0 - AWQ4_BYTES_PER_WEIGHT);
	double w16 = (double)r16.weight_bytes - 2.0 * q;
	mem->weights_16 = w16 > 0 ? (uint64_t)llround(w16) : 0;
	mem->weights_q4 = total > mem->weights_16 ? total - mem->weights_16 : 0;
	return 0;
}

/* Activations (f32 arena of max_batch rows, as every backend plans it) and the backend's scratch;
 * workspace: the cuBLAS workspace on CUDA. */
static int runtime_bytes(const awq_model *m, const char *backend, int max_ctx, int max_batch, uint64_t *act,
			 uint64_t *workspace, char *err, size_t errlen)
{
	struct awq_graph g;
	size_t arena = 0, part = 0;
	int rc = awq_build_graph(m, &g, err, errlen);
	if (rc)
		return rc;
	size_t *offsets = malloc((size_t)(g.n_values > 0 ? g.n_values : 1) * sizeof(size_t));
	rc = offsets ? awq_graph_plan(&g, max_batch, 4, offsets, &arena, err, errlen) : AWQ_ENOMEM;
	free(offsets);
	int cuda = !strcmp(backend, "cuda"), vulkan = !strcmp(backend, "vulkan");
	uint64_t max_k = 0;
	for (int i = 0; !rc && i < g.n_nodes; i++) {
		const struct awq_node *n = &g.nodes[i];
		if (n->op == AWQ_OP_MATMUL && n->w && (uint64_t)n->w->k > max_k)
			max_k = (uint64_t)n->w->k;
		if (n->op != AWQ_OP_ATTENTION)
			continue;
		size_t heads = (size_t)n->p.attn.n_heads, per = heads * (size_t)(n->p.attn.head_dim + 2) * 4, p = 0;
		if (cuda) {
			/* split partials serve decode-sized steps only (at most 8 rows) */
			size_t rows = max_batch < CUDA_DECODE_ROWS ? (size_t)max_batch : CUDA_DECODE_ROWS;
			p = rows * per * (size_t)((max_ctx + CUDA_ATTN_CHUNK - 1) / CUDA_ATTN_CHUNK);
			p += (size_t)CUDA_DECODE_ROWS * heads * 4; /* the split-merge tickets after them */
		} else if (vulkan) {
			/* Split count as backends/vulkan chooses it: about 512 work items, at most 32 splits,
			 * at most one per 32 positions. */
			for (int r = 1; r <= max_batch; r++) {
				size_t work = (size_t)r * heads, s = (512 + work - 1) / work, most = max_ctx / 32 > 1
													    ? (size_t)max_ctx / 32 : 1;
				s = s > 32 ? 32 : s;
				s = s > most ? most : s < 1 ? 1 : s;
				p = (size_t)r * per * s > p ? (size_t)r * per * s : p;
			}
		}
		part = p > part ? p : part;
	}
	awq_graph_free(&g);
	if (rc)
		return rc;
	*act = arena + part;
	*workspace = 0;
	if (cuda) {
		*act += (max_batch > CUDA_DECODE_ROWS ? (uint64_t)max_batch * max_k * 4 : 0) + 64;
		*workspace = CUDA_BLAS_WS;
	}
	return 0;
}

int bench_mem_account(const awq_model *m, const char *backend, const char *device, int max_ctx, int max_batch,
		      struct bench_mem *mem, char *err, size_t errlen)
{
	struct awq_perf_result r;
	uint64_t act = 0, ws = 0;
	int rc = predict(NULL, backend, device, m, AWQ_SCHEME_STORED, max_ctx, max_batch, &r, err, errlen);
	if (!rc)
		rc = runtime_bytes(m, backend, max_ctx, max_batch, &act, &ws, err, errlen);
	if (rc)
		return rc;
	mem->acc_weights = r.weight_bytes;
	mem->acc_kv = r.kv_bytes;
	mem->acc_act = act + ws; /* the backends count their workspace among activations */
	mem->acc_total = r.weight_bytes + r.kv_bytes + act + ws;
	return split_by_format(NULL, backend, device, m, AWQ_SCHEME_STORED, r.weight_bytes, mem, err, errlen);
}

/* --- the --fit table ------------------------------------------------------------------------------ */

#define FIT_MAX_SIZES 8
#define FIT_MAX_PRECS 6
#define FIT_MAX_MODELS 32
#define FIT_BATCH 512 /* rows per step: the session default (prefill chunk) */

struct fit_row {
	const char *model, *precision;
	uint64_t params;
	struct bench_mem mem;
	int max_position;
	double kv_per_token;
	int fits[FIT_MAX_SIZES];
	long max_ctx[FIT_MAX_SIZES]; /* longest context that fits (capped at the model's positions) */
};

static int scheme_of(const char *p, enum awq_scheme *s)
{
	if (!strcmp(p, "bf16"))
		*s = AWQ_SCHEME_BF16;
	else if (!strcmp(p, "f16") || !strcmp(p, "fp16"))
		*s = AWQ_SCHEME_FP16;
	else if (!strcmp(p, "fp8"))
		*s = AWQ_SCHEME_FP8;
	else if (!strcmp(p, "awq") || !strcmp(p, "awq-int4"))
		*s = AWQ_SCHEME_AWQ4;
	else
		return -1;
	return 0;
}

static int split_list(char *s, char **out, int max)
{
	int n = 0;
	for (char *t = strtok(s, ","); t; t = strtok(NULL, ","))
		if (n < max)
			out[n++] = t;
		else
			return -1;
	return n;
}

static void fmt_ctx(char *buf, size_t len, long ctx)
{
	if (ctx >= 1024)
		snprintf(buf, len, "%ldk", ctx / 1024);
	else
		snprintf(buf, len, "%ld", ctx);
}

static void fit_cell(char *buf, size_t len, const struct fit_row *r, int k)
{
	char c[24];
	if (!r->fits[k]) {
		snprintf(buf, len, "no");
		return;
	}
	fmt_ctx(c, sizeof(c), r->max_ctx[k]);
	snprintf(buf, len, "yes (%s%s)", c, r->max_ctx[k] >= r->max_position ? ", all" : "");
}

static int compute_row(const struct awq_device_caps *d, const char *preset, const char *prec, int ctx,
		       const double *sizes, int n_sizes, struct fit_row *row)
{
	char err[AWQ_ERRLEN];
	awq_model *m = NULL;
	enum awq_scheme s;
	struct awq_perf_result r;
	struct awq_model_info mi;
	memset(row, 0, sizeof(*row));
	if (scheme_of(prec, &s)) {
		fprintf(stderr, "awqrun bench: --fit precisions are bf16, f16, fp8 and awq, not '%s'\n", prec);
		return 2;
	}
	if (awq_caps_model_shape(preset, &m, err, sizeof(err))) {
		fprintf(stderr, "awqrun bench: %s\n", err);
		return 1;
	}
	awq_model_get_info(m, &mi);
	uint64_t act = 0, ws = 0;
	int rc = predict(d, NULL, NULL, m, s, ctx, FIT_BATCH, &r, err, sizeof(err));
	if (!rc)
		rc = split_by_format(d, NULL, NULL, m, s, r.weight_bytes, &row->mem, err, sizeof(err));
	if (!rc)
		rc = runtime_bytes(m, "cuda", ctx, FIT_BATCH, &act, &ws, err, sizeof(err));
	awq_model_free(m);
	if (rc) {
		fprintf(stderr, "awqrun bench: %s: %s\n", preset, err);
		return 1;
	}
	row->model = preset;
	row->precision = prec;
	row->params = mi.n_params;
	row->max_position = mi.max_position > 0 ? mi.max_position : ctx;
	row->mem.acc_weights = r.weight_bytes;
	row->mem.acc_kv = r.kv_bytes;
	row->mem.acc_act = act + ws;
	row->mem.acc_total = r.weight_bytes + r.kv_bytes + act + ws;
	row->kv_per_token = (double)r.kv_bytes / ctx;
	for (int k = 0; k < n_sizes; k++) {
		double avail = (1.0 - GPU_RESERVE) * sizes[k] * GIB;
		/* Longest context: activations barely depend on it (attention partials aside). */
		double room = avail - (double)r.weight_bytes - (double)row->mem.acc_act;
		long maxc = row->kv_per_token > 0 && room > 0 ? (long)(room / row->kv_per_token) : 0;
		row->fits[k] = (double)row->mem.acc_total <= avail;
		row->max_ctx[k] = maxc < row->max_position ? maxc : row->max_position;
	}
	return 0;
}

static void print_fit_json(FILE *f, const struct fit_row *rows, int n, const double *sizes, int n_sizes, int ctx)
{
	fprintf(f, "{\"schema\": \"awqrun-fit/1\", \"awqrun\": \"%s\", \"commit\": ", awq_version());
	bench_json_string(f, bench_commit());
	fprintf(f, ", \"ctx\": %d, \"batch\": 1, \"max_batch\": %d, \"reserve\": %.2f, \"gpus_gib\": [", ctx, FIT_BATCH,
		GPU_RESERVE);
	for (int k = 0; k < n_sizes; k++)
		fprintf(f, "%s%g", k ? ", " : "", sizes[k]);
	fprintf(f, "], \"rows\": [\n");
	for (int i = 0; i < n; i++) {
		const struct fit_row *r = &rows[i];
		fprintf(f, "  {\"model\": \"%s\", \"precision\": \"%s\", \"params\": %llu, \"weights_bytes\": %llu, "
			   "\"weights_quantized_bytes\": %llu, \"weights_16bit_bytes\": %llu, \"kv_bytes\": %llu, "
			   "\"activation_bytes\": %llu, \"total_bytes\": %llu, \"kv_bytes_per_token\": %.0f, \"fits\": [",
			r->model, r->precision, (unsigned long long)r->params, (unsigned long long)r->mem.acc_weights,
			(unsigned long long)r->mem.weights_q4, (unsigned long long)r->mem.weights_16,
			(unsigned long long)r->mem.acc_kv, (unsigned long long)r->mem.acc_act,
			(unsigned long long)r->mem.acc_total, r->kv_per_token);
		for (int k = 0; k < n_sizes; k++)
			fprintf(f, "%s{\"gpu_gib\": %g, \"fits\": %s, \"max_ctx\": %ld}", k ? ", " : "", sizes[k],
				r->fits[k] ? "true" : "false", r->max_ctx[k] > 0 ? r->max_ctx[k] : 0);
		fprintf(f, "]}%s\n", i + 1 < n ? "," : "");
	}
	fprintf(f, "]}\n");
}

static void print_fit_text(FILE *f, const struct fit_row *rows, int n, const double *sizes, int n_sizes, int ctx,
			   int csv)
{
	const char *sep = csv ? "," : " | ";
	if (!csv)
		fprintf(f, "## Which models fit: context %d tokens, batch 1\n\nMemory = weights + KV cache (FP16) + "
			   "activations and workspace (512-token prefill steps), as awqrun's CUDA backend allocates "
			   "them; %.0f%% of each GPU is kept for the driver and context. Cells: fits, and in "
			   "parentheses the longest context that fits (\"all\": the model's whole context).\n\n| ",
			ctx, 100 * GPU_RESERVE);
	fprintf(f, "model%sprecision%sparams (B)%sweights (GiB)%sof which 4/8-bit%sof which 16-bit%sKV cache (GiB)%s"
		   "activations (GiB)%stotal (GiB)", sep, sep, sep, sep, sep, sep, sep, sep);
	for (int k = 0; k < n_sizes; k++)
		fprintf(f, "%s%g GiB", sep, sizes[k]);
	fprintf(f, "%s\n", csv ? "" : " |");
	if (!csv) {
		fprintf(f, "|---|---|---:|---:|---:|---:|---:|---:|---:|");
		for (int k = 0; k < n_sizes; k++)
			fprintf(f, "---|");
		fprintf(f, "\n");
	}
	for (int i = 0; i < n; i++) {
		const struct fit_row *r = &rows[i];
		fprintf(f, "%s%s%s%s%s%.2f%s%.2f%s%.2f%s%.2f%s%.2f%s%.2f%s%.2f", csv ? "" : "| ", r->model, sep,
			r->precision, sep, r->params / 1e9, sep, r->mem.acc_weights / GIB, sep, r->mem.weights_q4 / GIB,
			sep, r->mem.weights_16 / GIB, sep, r->mem.acc_kv / GIB, sep, r->mem.acc_act / GIB, sep,
			r->mem.acc_total / GIB);
		for (int k = 0; k < n_sizes; k++) {
			char cell[48];
			if (csv)
				snprintf(cell, sizeof(cell), "%ld", r->fits[k] ? r->max_ctx[k] : 0);
			else
				fit_cell(cell, sizeof(cell), r, k);
			fprintf(f, "%s%s", sep, cell);
		}
		fprintf(f, "%s\n", csv ? "" : " |");
	}
}

int bench_fit_table(FILE *f, const char *presets, const char *precisions, const char *sizes_arg, int ctx, int csv,
		    int json)
{
	char pbuf[1024], qbuf[128], sbuf[128], err[AWQ_ERRLEN];
	char *models[FIT_MAX_MODELS], *precs[FIT_MAX_PRECS], *sz[FIT_MAX_SIZES];
	double sizes[FIT_MAX_SIZES];
	int n_models = 0, n_precs, n_sizes, rc = 0;

	if (presets && presets[0]) {
		if ((size_t)snprintf(pbuf, sizeof(pbuf), "%s", presets) >= sizeof(pbuf))
			goto usage;
		n_models = split_list(pbuf, models, FIT_MAX_MODELS);
	} else {
		for (const char *const *p = awq_synthetic_presets(); *p && n_models < FIT_MAX_MODELS; p++)
			models[n_models++] = (char *)*p;
	}
	if ((size_t)snprintf(qbuf, sizeof(qbuf), "%s", precisions) >= sizeof(qbuf) ||
	    (size_t)snprintf(sbuf, sizeof(sbuf), "%s", sizes_arg) >= sizeof(sbuf))
		goto usage;
	n_precs = split_list(qbuf, precs, FIT_MAX_PRECS);
	n_sizes = split_list(sbuf, sz, FIT_MAX_SIZES);
	if (n_models <= 0 || n_precs <= 0 || n_sizes <= 0 || ctx < 1)
		goto usage;
	for (int k = 0; k < n_sizes; k++) {
		char *end;
		sizes[k] = strtod(sz[k], &end);
		if (end == sz[k] || *end || !(sizes[k] > 0 && sizes[k] < 1e6))
			goto usage;
	}
	/* Any CUDA GPU of the database gives the CUDA backend's KV and activation formats; capacity
	 * is the column's, not this GPU's. */
	struct awq_device_caps gpu;
	if (awq_caps_from_db("h100", &gpu, err, sizeof(err))) {
		fprintf(stderr, "awqrun bench: %s\n", err);
		return 1;
	}
	gpu.mem_total = 0;
	struct fit_row *rows = calloc((size_t)n_models * n_precs, sizeof(*rows));
	int n = 0;
	if (!rows) {
		fprintf(stderr, "awqrun bench: out of memory\n");
		return 1;
	}
	for (int i = 0; i < n_models && !rc; i++)
		for (int p = 0; p < n_precs && !rc; p++)
			if (!(rc = compute_row(&gpu, models[i], precs[p], ctx, sizes, n_sizes, &rows[n])))
				n++;
	if (!rc) {
		if (json)
			print_fit_json(f, rows, n, sizes, n_sizes, ctx);
		else
			print_fit_text(f, rows, n, sizes, n_sizes, ctx, csv);
	}
	free(rows);
	return rc;
usage:
	fprintf(stderr, "awqrun bench: --fit takes comma-separated presets, precisions (bf16,f16,fp8,awq) and GPU "
			"sizes in GiB (--gpu-mem 16,24,48,80), and a positive --ctx\n");
	return 2;
}
