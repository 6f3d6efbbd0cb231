/* CUDA backend plugin (libawqrun-cuda.so): device discovery, the ops table and value transfers.
 * Weight upload, memory planning and execution live in cuda_prepare.c and cuda_run.c. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"
#include "error.h"

int awq_cu_fail(char *err, size_t errlen, cudaError_t e, const char *what)
{
	return awq_err(err, errlen, AWQ_EDEVICE, "cuda: %s failed: %s", what, cudaGetErrorString(e));
}

static int cu_probe(struct awq_device_desc *out, int max, char *err, size_t errlen)
{
	int n = 0;
	cudaError_t e = cudaGetDeviceCount(&n);
	if (e != cudaSuccess) {
		/* the runtime says "driver version is insufficient" also when there is no driver at all */
		void *drv = e == cudaErrorInsufficientDriver ? dlopen("libcuda.so.1", RTLD_LAZY) : NULL;
		if (e == cudaErrorInsufficientDriver && !drv)
			awq_err(err, errlen, AWQ_ENODEV, "cuda: no NVIDIA driver (libcuda.so.1 not found)");
		else
			awq_err(err, errlen, AWQ_ENODEV, "cuda: no usable device (%s)", cudaGetErrorString(e));
		if (drv)
			dlclose(drv);
		return 0;
	}
	if (n == 0) {
		awq_err(err, errlen, AWQ_ENODEV, "cuda: the driver reports no device");
		return 0;
	}
	for (int i = 0; i < n && i < max; i++) {
		struct cudaDeviceProp p;
		if ((e = cudaGetDeviceProperties(&p, i)) != cudaSuccess)
			return awq_cu_fail(err, errlen, e, "cudaGetDeviceProperties");
		memset(&out[i], 0, sizeof(out[i]));
		snprintf(out[i].name, sizeof(out[i].name), "%.127s", p.name);
		snprintf(out[i].arch, sizeof(out[i].arch), "sm_%d%d", p.major, p.minor);
		out[i].mem_total = p.totalGlobalMem;
		size_t fr = 0, tot = 0;
		if (cudaSetDevice(i) == cudaSuccess && cudaMemGetInfo(&fr, &tot) == cudaSuccess)
			out[i].mem_free = fr;
	}
	return n < max ? n : max;
}

static int cu_open(int device, const struct awq_backend_opts *o, void **ctx, char *err, size_t errlen)
{
	int n = 0;
	cudaError_t e = cudaGetDeviceCount(&n);
	if (e != cudaSuccess)
		return awq_err(err, errlen, AWQ_ENODEV, "cuda: no usable device (%s)", cudaGetErrorString(e));
	if (device < 0)
		device = 0;
	if (device >= n)
		return awq_err(err, errlen, AWQ_ENODEV, "cuda: device %d requested but only %d present", device, n);
	struct cudaDeviceProp p;
	if ((e = cudaGetDeviceProperties(&p, device)) != cudaSuccess)
		return awq_cu_fail(err, errlen, e, "cudaGetDeviceProperties");
	if (p.major < 7 || (p.major == 7 && p.minor < 5))
		return awq_err(err, errlen, AWQ_EUNSUPPORTED, "cuda: %s is sm_%d%d; this backend needs sm_75 or newer",
			       p.name, p.major, p.minor);
	if ((e = cudaSetDevice(device)) != cudaSuccess)
		return awq_cu_fail(err, errlen, e, "cudaSetDevice");
	struct cu_ctx *c = calloc(1, sizeof(*c));
	if (!c)
		return awq_err(err, errlen, AWQ_ENOMEM, "cuda: out of host memory");
	c->dev = device;
	c->cc_major = p.major;
	c->cc_minor = p.minor;
	c->sm_count = p.multiProcessorCount;
	snprintf(c->name, sizeof(c->name), "%.127s", p.name);
	snprintf(c->arch, sizeof(c->arch), "sm_%d%d", p.major, p.minor);
	snprintf(c->kernels, sizeof(c->kernels), "cuda %s (mma.sync %s)", c->arch, p.major >= 8 ? "m16n8k16" : "m16n8k8");
	if (o)
		c->opts = *o;
	const char *ng = getenv("AWQ_CUDA_NO_GRAPH");
	c->use_graph = !(ng && ng[0] == '1');
	/* decode attention's grid from the span of the step's positions, one captured step per span */
	c->span_on = awq_env_int("AWQ_CUDA_ATTN_SPAN", 1, 0, 1);
	/* the decode attention grid's floor: qwen3-8b AWQ decode at max_ctx 129 ran 442.7 tok/s with
	 * its 96-block grid and 478-481 padded to 8 blocks per SM (H200, 2026-11-30; docs/perf.md) */
	c->attn_blocks_per_sm = awq_env_int("AWQ_CUDA_ATTN_BLOCKS_PER_SM", 8, 0, 64);
	/* decode attention's K/V rows through a cp.async ring (k_attn.cu RING): llama2-7b after 4096
	 * positions 443 against 428 tok/s, qwen3-8b after 16384 299 against 295, short context within
	 * drift (H200, 2026-12-02; docs/perf.md session 27) */
	c->attn_ring = awq_env_int("AWQ_CUDA_ATTN_RING", 1, 0, 1) && p.major >= 8;
	/* grouped-query decode attention on tensor cores where a block has 2 heads or more (k_attn.cu
	 * awq_cu_attn_decode_plan): qwen3-8b after 16384 positions 359 against 299 tok/s (H200) */
	c->attn_mma = awq_env_int("AWQ_CUDA_ATTN_MMA", 1, 0, 1) && p.major >= 8;
	/* a fixed split length for that kernel instead of the plan's rule, for measuring split lengths
	 * in the model (k_attn.cu awq_cu_attn_decode_plan takes 128, 256, 512 or 1024) */
	c->attn_mma_chunk = awq_env_int("AWQ_CUDA_ATTN_MMA_CHUNK", 0, 0, 1024);
	if (c->attn_mma_chunk & (c->attn_mma_chunk - 1) || (c->attn_mma_chunk && c->attn_mma_chunk < 128)) {
		fprintf(stderr, "awqrun: AWQ_CUDA_ATTN_MMA_CHUNK=%d is not 128, 256, 512 or 1024; the plan's rule is used\n",
			c->attn_mma_chunk);
		c->attn_mma_chunk = 0;
	}
	c->deq_rows = awq_cuda_deq_rows(); /* prefill AWQ matmuls through an f16 copy and cuBLAS */
	c->x16_fuse = awq_env_int("AWQ_CUDA_X16_FUSE", 1, 0, 1);
	/* the f16 copies for the XH GEMV from this many decode tokens (AWQ_CUDA_XH_ROWS, 1-9; 9: none) */
	c->xh_rows = awq_env_int("AWQ_CUDA_XH_ROWS", 2, 1, AWQ_CU_DECODE_ROWS + 1);
	c->moe_cluster = awq_env_int("AWQ_CUDA_MOE_CLUSTER", 1, 0, 1);
	/* a one-row argmax over a long row in many blocks (k_misc.cu argmax_split_kernel) */
	c->amax_split = awq_env_int("AWQ_CUDA_ARGMAX_SPLIT", 1, 0, 1);
	if ((e = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking)) != cudaSuccess) {
		free(c);
		return awq_cu_fail(err, errlen, e, "cudaStreamCreate");
	}
	if (cublasCreate(&c->blas) != CUBLAS_STATUS_SUCCESS || cublasSetStream(c->blas, c->stream) != CUBLAS_STATUS_SUCCESS) {
		cudaStreamDestroy(c->stream);
		free(c);
		return awq_err(err, errlen, AWQ_EDEVICE, "cuda: cuBLAS initialisation failed");
	}
	*ctx = c;
	return 0;
}

static void cu_close(void *ctx)
{
	struct cu_ctx *c = ctx;
	if (!c)
		return;
	cudaSetDevice(c->dev);
	cudaStreamSynchronize(c->stream);
	awq_cu_release(c);
	cublasDestroy(c->blas);
	cudaStreamDestroy(c->stream);
	free(c);
}

int awq_cu_weight_ok(const struct awq_weight *w, enum awq_op op)
{
	if (!w)
		return 0;
	if (w->fmt == AWQ_WFMT_AWQ4)
		return op == AWQ_OP_MATMUL && w->group_size >= 16 && w->group_size % 16 == 0 && w->k % w->group_size == 0 &&
		       w->n % 8 == 0 && w->n < (1 << 30) && w->k < (1 << 30);
	return w->dtype == AWQ_DT_F32 || w->dtype == AWQ_DT_F16 || w->dtype == AWQ_DT_BF16;
}

static int cu_supports(void *ctx, const struct awq_graph *g, const struct awq_node *node)
{
	(void)ctx;
	switch (node->op) {
	case AWQ_OP_EMBED:
	case AWQ_OP_RMSNORM:
	case AWQ_OP_MATMUL:
		return awq_cu_weight_ok(node->w, node->op);
	case AWQ_OP_ROPE:
		return node->p.rope.head_dim % 2 == 0;
	case AWQ_OP_ATTENTION:
		return node->p.attn.head_dim % 8 == 0 && node->p.attn.head_dim <= 256 && node->p.attn.n_kv_heads > 0 &&
		       node->p.attn.n_heads % node->p.attn.n_kv_heads == 0;
	case AWQ_OP_SILU_MUL:
	case AWQ_OP_SIGMOID_MUL:
	case AWQ_OP_ADD:
	case AWQ_OP_LAST_ROWS:
	case AWQ_OP_ARGMAX:
		return 1;
	case AWQ_OP_MOE_ROUTE:
	case AWQ_OP_MOE_EXPERTS:
		return awq_cu_moe_supported(g, node);
	default:
		return 0;
	}
}

static int cu_prepare(void *ctx, const struct awq_graph *g, const struct awq_prepare_opts *o, char *err, size_t errlen)
{
	struct cu_ctx *c = ctx;
	cudaSetDevice(c->dev);
	return awq_cu_prepare(c, g, o, err, errlen);
}

static int check_value(struct cu_ctx *c, int value, int rows, char *err, size_t errlen)
{
	if (!c->g)
		return awq_err(err, errlen, AWQ_EINVAL, "cuda: no graph prepared");
	if (value < 0 || value >= c->g->n_values)
		return awq_err(err, errlen, AWQ_EINVAL, "cuda: value %d out of range", value);
	if (rows < 1 || rows > c->max_tokens)
		return awq_err(err, errlen, AWQ_EINVAL, "cuda: %d rows of %s exceed the prepared %d", rows,
			       c->g->values[value].name, c->max_tokens);
	return 0;
}

static int cu_write_value(void *ctx, int value, const void *src, int rows, char *err, size_t errlen)
{
	struct cu_ctx *c = ctx;
	int rc = check_value(c, value, rows, err, errlen);
	if (rc)
		return rc;
	const struct awq_value *v = &c->g->values[value];
	size_t bytes = (size_t)rows * v->cols * 4;
	if (v->kind == AWQ_V_TOKENS && c->vocab > 0) {
		const int32_t *ids = src;
		for (size_t i = 0; i < (size_t)rows * v->cols; i++)
			if (ids[i] < 0 || ids[i] >= c->vocab)
				return awq_err(err, errlen, AWQ_EINVAL, "cuda: token id %d outside the vocabulary (0..%d)",
					       ids[i], c->vocab - 1);
	}
	cudaSetDevice(c->dev);
	cudaError_t e = cudaMemcpyAsync(awq_cu_value(c, value), src, bytes, cudaMemcpyHostToDevice, c->stream);
	return e == cudaSuccess ? 0 : awq_cu_fail(err, errlen, e, "cudaMemcpyAsync (write value)");
}

static int cu_read_value(void *ctx, int value, void *dst, int rows, char *err, size_t errlen)
{
	struct cu_ctx *c = ctx;
	int rc = check_value(c, value, rows, err, errlen);
	if (rc)
		return rc;
	cudaSetDevice(c->dev);
	size_t bytes = (size_t)rows * c->g->values[value].cols * 4;
	cudaError_t e = cudaMemcpyAsync(dst, awq_cu_value(c, value), bytes, cudaMemcpyDeviceToHost, c->stream);
	if (e == cudaSuccess)
		e = cudaStreamSynchronize(c->stream);
	return e == cudaSuccess ? 0 : awq_cu_fail(err, errlen, e, "reading a value back");
}

int awq_cu_topk_scratch(struct cu_ctx *c, int cols, int k, char *err, size_t errlen)
{
	const size_t need = awq_cu_topk_part_bytes(cols, k < 64 ? 64 : k);
	cudaError_t e = cudaSuccess;
	if (c->topk_part_bytes < need) {
		cudaFree(c->topk_part);
		c->topk_part_bytes = 0;
		if ((e = cudaMalloc(&c->topk_part, need)) != cudaSuccess) {
			c->topk_part = NULL;
			return awq_cu_fail(err, errlen, e, "allocating the top-k scratch");
		}
		c->topk_part_bytes = need;
	}
	if (!c->topk_ticket) {
		if ((e = cudaMalloc((void **)&c->topk_ticket, sizeof(unsigned))) == cudaSuccess &&
		    (e = cudaMemsetAsync(c->topk_ticket, 0, sizeof(unsigned), c->stream)) != cudaSuccess) {
			cudaFree(c->topk_ticket);
			c->topk_ticket = NULL;
		}
		if (e != cudaSuccess)
			return awq_cu_fail(err, errlen, e, "allocating the top-k ticket");
	}
	if (!c->topk_host) {
		if ((e = cudaHostAlloc((void **)&c->topk_host, AWQ_CU_TOPK_MAX * 8, cudaHostAllocMapped)) == cudaSuccess &&
		    (e = cudaHostGetDevicePointer((void **)&c->d_topk, c->topk_host, 0)) != cudaSuccess) {
			cudaFreeHost(c->topk_host);
			c->topk_host = NULL;
		}
		if (e != cudaSuccess)
			return awq_cu_fail(err, errlen, e, "allocating the top-k result");
	}
	if (!c->d_samp && (e = cudaMalloc((void **)&c->d_samp, sizeof(*c->d_samp))) != cudaSuccess) {
		c->d_samp = NULL;
		return awq_cu_fail(err, errlen, e, "allocating the sampler state");
	}
	return 0;
}

/* The k largest of the value's first row, selected on the device (awq_cu_topk); only they come back. */
static int cu_read_topk(void *ctx, int value, int k, int32_t *ids, float *vals, char *err, size_t errlen)
{
	struct cu_ctx *c = ctx;
	int rc = check_value(c, value, 1, err, errlen);
	if (rc)
		return rc;
	const int cols = c->g->values[value].cols;
	if (c->g->values[value].kind != AWQ_V_ACT)
		return awq_err(err, errlen, AWQ_EUNSUPPORTED, "cuda: top-k of %s, which is not an activation",
			       c->g->values[value].name);
	if (k < 1 || k > AWQ_CU_TOPK_MAX || k > cols)
		return awq_err(err, errlen, AWQ_EINVAL, "cuda: top-%d of %d columns (1..%d)", k, cols, AWQ_CU_TOPK_MAX);
	cudaSetDevice(c->dev);
	if ((rc = awq_cu_topk_scratch(c, cols, k, err, errlen)))
		return rc;
	cudaError_t e = awq_cu_topk(c->stream, awq_cu_value(c, value), cols, k, c->topk_part, c->topk_ticket, c->d_topk,
				    (float *)(c->d_topk + AWQ_CU_TOPK_MAX));
	if (e == cudaSuccess)
		e = cudaStreamSynchronize(c->stream);
	if (e != cudaSuccess)
		return awq_cu_fail(err, errlen, e, "selecting the top-k");
	memcpy(ids, c->topk_host, (size_t)k * sizeof(int32_t));
	memcpy(vals, c->topk_host + AWQ_CU_TOPK_MAX, (size_t)k * sizeof(float));
	return 0;
}

static int cu_run(void *ctx, const struct awq_step *step, char *err, size_t errlen)
{
	struct cu_ctx *c = ctx;
	cudaSetDevice(c->dev);
	return awq_cu_run(c, step, err, errlen);
}

static int cu_sync(void *ctx, char *err, size_t errlen)
{
	struct cu_ctx *c = ctx;
	cudaSetDevice(c->dev);
	cudaError_t e = cudaStreamSynchronize(c->stream);
	return e == cudaSuccess ? 0 : awq_cu_fail(err, errlen, e, "cudaStreamSynchronize");
}

static int cu_chain(void *ctx, struct awq_chain *ch, char *err, size_t errlen)
{
	struct cu_ctx *c = ctx;
	cudaSetDevice(c->dev);
	return awq_cu_chain(c, ch, err, errlen);
}

static int cu_info(void *ctx, struct awq_backend_info *info)
{
	struct cu_ctx *c = ctx;
	memset(info, 0, sizeof(*info));
	awq_backend_info_set(info, c->name, c->kernels, c->weight_bytes, c->kv_bytes, c->act_bytes);
	return 0;
}

static const struct awq_backend_ops cuda_ops = {
	.name = "cuda",
	.abi = AWQ_BACKEND_ABI,
	.probe = cu_probe,
	.open = cu_open,
	.close = cu_close,
	.supports = cu_supports,
	.prepare = cu_prepare,
	.write_value = cu_write_value,
	.run = cu_run,
	.read_value = cu_read_value,
	.sync = cu_sync,
	.info = cu_info,
	.decode_chain = cu_chain,
	.read_topk = cu_read_topk,
};

__attribute__((visibility("default"))) const struct awq_backend_ops *awq_backend_entry(int abi)
{
	return abi == AWQ_BACKEND_ABI ? &cuda_ops : NULL;
}
