/* prepare(): fusion plan, activation arena, f16 KV cache, scratch buffers, RoPE tables, and the
 * fit check against free device memory before anything large is allocated. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"
#include "error.h"

#define MIB (1024.0 * 1024.0)
#define BLAS_WS_BYTES (32u << 20)
#define FIT_MARGIN ((uint64_t)256 << 20) /* context, cuBLAS handles, graph exec, fragmentation */

static int rope_table(struct cu_ctx *c, struct cu_node *cn, const struct awq_node *n, char *err, size_t errlen)
{
	int half = n->p.rope.head_dim / 2, d = n->p.rope.head_dim;
	const struct awq_rope *r = &n->p.rope.rope;
	float h[512];
	if (half > 512)
		return awq_err(err, errlen, AWQ_EUNSUPPORTED, "cuda: head_dim %d too large for RoPE", d);
	for (int i = 0; i < half; i++) {
		double inv = pow((double)r->theta, -2.0 * i / d);
		if (r->type == AWQ_ROPE_LINEAR && r->factor > 0) {
			inv /= r->factor;
		} else if (r->type == AWQ_ROPE_LLAMA3) {
			double lo_wl = r->original_max_pos / r->low_freq_factor;
			double hi_wl = r->original_max_pos / r->high_freq_factor;
			double wl = 2.0 * 3.14159265358979323846 / inv;
			if (wl > lo_wl) {
				inv /= r->factor;
			} else if (wl >= hi_wl) {
				double sm = (r->original_max_pos / wl - r->low_freq_factor) /
					    (r->high_freq_factor - r->low_freq_factor);
				inv = (1.0 - sm) * inv / r->factor + sm * inv;
			}
		}
		h[i] = (float)inv;
	}
	cudaError_t e = cudaMalloc((void **)&cn->inv_freq, (size_t)half * 4);
	if (e == cudaSuccess)
		e = cudaMemcpyAsync(cn->inv_freq, h, (size_t)half * 4, cudaMemcpyHostToDevice, c->stream);
	if (e == cudaSuccess)
		e = cudaStreamSynchronize(c->stream);
	return e == cudaSuccess ? 0 : awq_cu_fail(err, errlen, e, "uploading the RoPE table");
}

static int check_nodes(const struct awq_graph *g, char *err, size_t errlen)
{
	for (int i = 0; i < g->n_nodes; i++) {
		const struct awq_node *n = &g->nodes[i];
		int ok;
		switch (n->op) {
		case AWQ_OP_MOE_ROUTE:
		case AWQ_OP_MOE_EXPERTS:
			ok = awq_cu_moe_supported(g, n);
			break;
		case AWQ_OP_COUNT:
			ok = 0;
			break;
		case AWQ_OP_ATTENTION:
			ok = n->p.attn.head_dim % 8 == 0 && n->p.attn.head_dim <= 256 && n->p.attn.n_kv_heads > 0 &&
			     n->p.attn.n_heads % n->p.attn.n_kv_heads == 0;
			break;
		case AWQ_OP_EMBED:
		case AWQ_OP_RMSNORM:
		case AWQ_OP_MATMUL:
			ok = awq_cu_weight_ok(n->w, n->op);
			break;
		default:
			ok = 1;
		}
		if (!ok)
			return awq_err(err, errlen, AWQ_EUNSUPPORTED, "cuda: node %d (%s -> %s) is not supported by this backend",
				       i, awq_op_name(n->op), g->values[n->out].name);
	}
	return 0;
}

/* Floats of the attention split partials, and in *tickets the words of the split-merge tickets
 * that follow them in the same buffer. */
static size_t attn_part_floats(const struct cu_ctx *c, size_t *tickets)
{
	const struct awq_graph *g = c->g;
	size_t part = 0, tk = 0;
	int rows = c->max_tokens < AWQ_CU_DECODE_ROWS ? c->max_tokens : AWQ_CU_DECODE_ROWS;
	for (int i = 0; i < g->n_nodes; i++) {
		const struct awq_node *n = &g->nodes[i];
		if (n->op == AWQ_OP_ATTENTION) {
			size_t p = awq_cu_attn_part_floats(rows, n->p.attn.n_heads, n->p.attn.head_dim, c->max_ctx);
			size_t t = awq_cu_attn_ticket_words(n->p.attn.n_heads);
			part = p > part ? p : part;
			tk = t > tk ? t : tk;
		}
	}
	*tickets = tk;
	return part;
}

/* Which values' prefill matmul readers take a 16-bit copy, and of which kind (cu_ctx.x16_want): f16
 * for AWQ and F16 weights, bf16 for BF16 ones, none for f32 weights or readers that disagree. */
static void plan_x16(struct cu_ctx *c)
{
	const struct awq_graph *g = c->g;
	for (int i = 0; i < g->n_nodes; i++) {
		const struct awq_node *n = &g->nodes[i];
		if (n->op != AWQ_OP_MATMUL || !n->w || n->in[0] < 0)
			continue;
		int want = n->w->fmt == AWQ_WFMT_AWQ4 || n->w->dtype == AWQ_DT_F16 ? 1 : n->w->dtype == AWQ_DT_BF16 ? 2 : -1;
		signed char *x = &c->x16_want[n->in[0]];
		*x = *x == 0 && want > 0 ? (signed char)want : *x == want ? *x : -1;
		unsigned char *d = &c->x16_dec[n->in[0]]; /* 0 unseen, 1 AWQ readers so far, 2 another */
		*d = n->w->fmt == AWQ_WFMT_AWQ4 && *d != 2 ? 1 : 2;
	}
	for (int v = 0; v < g->n_values; v++) {
		if (c->x16_want[v] < 0)
			c->x16_want[v] = 0;
		c->x16_dec[v] = c->x16_dec[v] == 1 && c->x16_want[v] == 1;
	}
}

/* The split argmax's scratch (awq_cu_amax_scratch): a value and an index per block of the longest
 * one-row argmax, then its ticket. */
static size_t amax_floats(const struct awq_graph *g)
{
	int mb = 0;
	for (int i = 0; i < g->n_nodes; i++)
		if (g->nodes[i].op == AWQ_OP_ARGMAX) {
			int b = awq_cu_argmax_blocks(1, g->values[g->nodes[i].in[0]].cols);
			mb = b > mb ? b : mb;
		}
	return mb ? 2 * (size_t)mb + 1 : 0;
}

/* Bytes of everything but the weights; also sizes the scratch buffers. */
static uint64_t runtime_bytes(struct cu_ctx *c)
{
	const struct awq_graph *g = c->g;
	int max_k = 0;
	for (int i = 0; i < g->n_nodes; i++)
		if (g->nodes[i].op == AWQ_OP_MATMUL && g->nodes[i].w->k > max_k)
			max_k = (int)g->nodes[i].w->k;
	/* prefill's 16-bit inputs, and the f16 inputs of decode's XH GEMVs (2-8 tokens, x16_dec) */
	c->x16_elems = c->max_tokens >= c->xh_rows || c->max_tokens > AWQ_CU_DECODE_ROWS ? (size_t)c->max_tokens * max_k : 0;
	c->deq_elems = 0;
	if (c->deq_rows > AWQ_CU_DECODE_ROWS && c->max_tokens >= c->deq_rows)
		for (int i = 0; i < c->n_wts; i++)
			for (int j = 0; c->wts[i].kind == CU_W_Q4 && j < c->wts[i].nsrc; j++) {
				size_t e = (size_t)c->wts[i].src[j]->n * c->wts[i].src[j]->k;
				c->deq_elems = e > c->deq_elems ? e : c->deq_elems;
			}
	c->kv_slot = (size_t)c->max_ctx * g->kv_heads * g->head_dim;
	c->kv_bytes = (uint64_t)c->kv_slot * 2 * 2 * g->n_kv_layers;
	size_t tk, part = attn_part_floats(c, &tk);
	c->act_bytes = c->arena_bytes + c->x16_elems * 2 * 2 + c->deq_elems * 2 + (part + tk + 2 * (size_t)c->n_folds) * 4 + BLAS_WS_BYTES + 64 +
		       amax_floats(g) * 4;
	return c->kv_bytes + c->act_bytes;
}

static void free_chain(struct cu_ctx *c)
{
	for (int i = 0; i < 2; i++)
		if (c->chain_ev[i])
			cudaEventDestroy(c->chain_ev[i]);
	if (c->ring)
		cudaFreeHost(c->ring);
	c->chain_ev[0] = c->chain_ev[1] = NULL;
	c->ring = c->d_ring = NULL;
}

static int alloc_runtime(struct cu_ctx *c, char *err, size_t errlen)
{
	const struct awq_graph *g = c->g;
	size_t tk, pf = attn_part_floats(c, &tk);
	void **ptrs[] = {(void **)&c->arena, (void **)&c->kcache, (void **)&c->vcache, (void **)&c->x16[0],
			 (void **)&c->x16[1], (void **)&c->attn_part, &c->blas_ws, (void **)&c->d_pos, (void **)&c->xn_sumsq,
			 (void **)&c->deq, (void **)&c->amax_scr.part_v};
	size_t sizes[] = {c->arena_bytes, (size_t)c->kv_slot * 2 * g->n_kv_layers,
			  (size_t)c->kv_slot * 2 * g->n_kv_layers, c->x16_elems * 2, c->x16_elems * 2, (pf + tk) * 4,
			  BLAS_WS_BYTES, 64, 2 * (size_t)c->n_folds * 4, c->deq_elems * 2, amax_floats(g) * 4};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		if (!sizes[i])
			continue;
		cudaError_t e = cudaMalloc(ptrs[i], sizes[i]);
		if (e != cudaSuccess)
			return awq_err(err, errlen, AWQ_ETOOBIG, "cuda: cudaMalloc of %.1f MiB for buffers failed: %s",
				       sizes[i] / MIB, cudaGetErrorString(e));
	}
	/* the greedy chain's token ring and events; without them (no mapped host memory) the core steps
	 * one token at a time */
	if (cudaHostAlloc((void **)&c->ring, CU_RING * sizeof(int32_t), cudaHostAllocMapped) == cudaSuccess &&
	    (cudaHostGetDevicePointer((void **)&c->d_ring, c->ring, 0) != cudaSuccess ||
	     cudaEventCreateWithFlags(&c->chain_ev[0], cudaEventDisableTiming) != cudaSuccess ||
	     cudaEventCreateWithFlags(&c->chain_ev[1], cudaEventDisableTiming) != cudaSuccess))
		free_chain(c);
	cudaGetLastError(); /* a refused host allocation is not the next call's error */
	if (cublasSetWorkspace(c->blas, c->blas_ws, BLAS_WS_BYTES) != CUBLAS_STATUS_SUCCESS)
		return awq_err(err, errlen, AWQ_EDEVICE, "cuda: cublasSetWorkspace failed");
	/* the split-merge tickets after the partials start at 0 (each launch leaves them at 0);
	 * AWQ_CUDA_ATTN_MERGE=0 keeps the separate combine launch (for comparisons) */
	const char *am = getenv("AWQ_CUDA_ATTN_MERGE");
	c->attn_ticket = tk && !(am && am[0] == '0') ? (unsigned *)(c->attn_part + pf) : NULL;
	cudaError_t e = c->attn_ticket ? cudaMemsetAsync(c->attn_ticket, 0, tk * sizeof(unsigned), c->stream) : cudaSuccess;
	if (c->amax_scr.part_v) { /* the split argmax's ticket starts at 0 (each launch leaves it at 0) */
		const int mb = (int)(amax_floats(g) / 2);
		c->amax_scr.part_i = (int *)(c->amax_scr.part_v + mb);
		c->amax_scr.ticket = (unsigned *)(c->amax_scr.part_v + 2 * mb);
		c->amax_scr.max_blocks = mb;
		if (e == cudaSuccess)
			e = cudaMemsetAsync(c->amax_scr.ticket, 0, sizeof(unsigned), c->stream);
	}
	if (e == cudaSuccess && c->n_folds) /* the epilogue norms' accumulators start at 0 (each clears another) */
		e = cudaMemsetAsync(c->xn_sumsq, 0, 2 * (size_t)c->n_folds * 4, c->stream);
	if (e != cudaSuccess)
		return awq_cu_fail(err, errlen, e, "cudaMemset");
	/* Unwritten cache rows are never read, but zeros keep a stray read finite under sanitizers. */
	size_t kvb = (size_t)c->kv_slot * 2 * g->n_kv_layers;
	e = kvb ? cudaMemsetAsync(c->kcache, 0, kvb, c->stream) : cudaSuccess;
	if (e == cudaSuccess && kvb)
		e = cudaMemsetAsync(c->vcache, 0, kvb, c->stream);
	return e == cudaSuccess ? 0 : awq_cu_fail(err, errlen, e, "cudaMemset");
}

static int check_fit(struct cu_ctx *c, uint64_t need, char *err, size_t errlen)
{
	size_t fr = 0, tot = 0;
	cudaError_t e = cudaMemGetInfo(&fr, &tot);
	if (e != cudaSuccess)
		return awq_cu_fail(err, errlen, e, "cudaMemGetInfo");
	if (need + FIT_MARGIN > fr)
		return awq_err(err, errlen, AWQ_ETOOBIG,
			       "cuda: the model needs %.0f MiB on %s (weights %.0f, KV cache %.0f for %d positions, "
			       "activations %.0f) but only %.0f MiB of %.0f are free",
			       (need + FIT_MARGIN) / MIB, c->name, c->weight_bytes / MIB, c->kv_bytes / MIB, c->max_ctx,
			       c->act_bytes / MIB, fr / MIB, tot / MIB);
	return 0;
}

int awq_cu_prepare(struct cu_ctx *c, const struct awq_graph *g, const struct awq_prepare_opts *o, char *err,
		   size_t errlen)
{
	int rc = awq_graph_check(g, err, errlen);
	if (rc)
		return rc;
	if ((rc = check_nodes(g, err, errlen)))
		return rc;
	if (c->g)
		awq_cu_release(c);
	if (o->max_tokens < 1 || o->max_ctx < 1)
		return awq_err(err, errlen, AWQ_EINVAL, "cuda: max_tokens and max_ctx must be positive");
	c->g = g;
	c->max_tokens = o->max_tokens;
	c->max_ctx = o->max_ctx;
	c->nodes = calloc((size_t)g->n_nodes, sizeof(*c->nodes));
	c->n_nodes = c->nodes ? g->n_nodes : 0;
	c->offs = calloc((size_t)g->n_values, sizeof(size_t));
	int *uses = awq_graph_count_uses(g);
	if (!c->nodes || !c->offs || !uses) {
		free(uses);
		awq_cu_release(c);
		return awq_err(err, errlen, AWQ_ENOMEM, "cuda: out of host memory");
	}
	awq_cu_plan_fusions(c, uses);
	free(uses);
	int *live = malloc((size_t)g->n_values * 2 * sizeof(int));
	if (!live) {
		rc = awq_err(err, errlen, AWQ_ENOMEM, "cuda: out of host memory");
		goto fail;
	}
	awq_cu_fusion_lifetimes(c, live, live + g->n_values);
	rc = awq_graph_plan_live(g, c->max_tokens, 4, live, live + g->n_values, c->offs, &c->arena_bytes, err, errlen);
	free(live);
	if (rc)
		goto fail;
	awq_cu_check_fusions(c);
	if (awq_cu_collect_weights(c)) {
		rc = awq_err(err, errlen, AWQ_ENOMEM, "cuda: out of host memory");
		goto fail;
	}
	if (!(c->x16_want = calloc((size_t)g->n_values, 1)) || !(c->x16_dec = calloc((size_t)g->n_values, 1))) {
		rc = awq_err(err, errlen, AWQ_ENOMEM, "cuda: out of host memory");
		goto fail;
	}
	plan_x16(c);
	c->weight_bytes = 0;
	for (int i = 0; i < c->n_wts; i++)
		c->weight_bytes += c->wts[i].bytes = awq_cu_weight_bytes(&c->wts[i]);
	if ((rc = awq_cu_moe_plan(c, err, errlen)))
		goto fail;
	c->weight_bytes += awq_cu_moe_weight_bytes(c);
	uint64_t rt = runtime_bytes(c);
	c->act_bytes += awq_cu_moe_scratch_bytes(c);
	rc = check_fit(c, c->weight_bytes + rt + awq_cu_moe_scratch_bytes(c), err, errlen);
	if (rc == AWQ_ETOOBIG && c->deq_elems) { /* the prefill copy is an option, not a need */
		uint64_t copy = (uint64_t)c->deq_elems * 2;
		c->deq_elems = 0;
		c->act_bytes -= copy;
		rt -= copy;
		rc = check_fit(c, c->weight_bytes + rt + awq_cu_moe_scratch_bytes(c), err, errlen);
		if (!rc)
			fprintf(stderr,
				"awqrun: cuda: no room for the %.0f MiB f16 copy that AWQ prefill runs cuBLAS on; "
				"prefill uses the W4A16 GEMM\n",
				copy / MIB);
	}
	if (rc)
		goto fail;
	if ((rc = alloc_runtime(c, err, errlen)))
		goto fail;
	rc = awq_cu_upload_weights(c, err, errlen);
	if (!rc)
		rc = awq_cu_moe_upload(c, err, errlen);
	for (int i = 0; i < g->n_nodes && !rc; i++)
		if (g->nodes[i].op == AWQ_OP_ROPE)
			rc = rope_table(c, &c->nodes[i], &g->nodes[i], err, errlen);
	if (rc)
		goto fail;
	if (awq_cu_profile_init(c)) {
		rc = awq_err(err, errlen, AWQ_EDEVICE, "cuda: AWQ_CUDA_PROFILE: cannot create the profiling events");
		goto fail;
	}
	return 0;
fail:
	awq_cu_release(c);
	return rc;
}

void awq_cu_release(struct cu_ctx *c)
{
	awq_cu_profile_report(c);
	awq_cu_profile_free(c);
	for (int k = 0; k < CU_SPANS; k++) {
		if (c->graphs[k])
			cudaGraphExecDestroy(c->graphs[k]);
		c->graphs[k] = NULL;
	}
	awq_cu_free_weights(c);
	awq_cu_moe_free(c);
	free_chain(c);
	cudaFree(c->topk_part);
	cudaFree(c->topk_ticket);
	cudaFree(c->d_samp);
	c->d_samp = NULL;
	if (c->topk_host)
		cudaFreeHost(c->topk_host);
	c->topk_part = NULL;
	c->topk_part_bytes = 0;
	c->topk_ticket = NULL;
	c->topk_host = c->d_topk = NULL;
	if (c->nodes)
		for (int i = 0; i < c->n_nodes; i++)
			cudaFree(c->nodes[i].inv_freq);
	void *bufs[] = {c->arena, c->kcache, c->vcache, c->x16[0], c->x16[1], c->attn_part, c->blas_ws, c->d_pos,
			c->xn_sumsq, c->deq, c->amax_scr.part_v};
	for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
		cudaFree(bufs[i]);
	free(c->nodes);
	free(c->offs);
	free(c->x16_want);
	free(c->x16_dec);
	c->x16_want = NULL;
	c->x16_dec = NULL;
	c->nodes = NULL;
	c->n_nodes = 0;
	c->offs = NULL;
	c->arena = NULL;
	c->kcache = c->vcache = NULL;
	c->x16[0] = c->x16[1] = NULL;
	c->attn_part = NULL;
	c->xn_sumsq = NULL;
	c->deq = NULL;
	c->deq_elems = 0;
	c->n_folds = 0;
	c->attn_ticket = NULL;
	c->blas_ws = NULL;
	c->d_pos = NULL;
	memset(&c->amax_scr, 0, sizeof(c->amax_scr));
	c->g = NULL;
}
