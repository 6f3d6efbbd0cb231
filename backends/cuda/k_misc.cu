/* Element-wise and row-wise kernels: embedding gather, RMSNorm, RoPE, the attention prep (per-head
 * norms, RoPE, KV-cache write), add + RMSNorm, SiLU-mul, sigmoid-mul, add, bias, argmax,
 * f32 -> f16/bf16. */
#include <float.h>
#include <stdlib.h>

#include "cu_common.cuh"
#include "cu_kernels.h"

static inline unsigned blocks_for(size_t n, unsigned threads)
{
	size_t b = (n + threads - 1) / threads;
	return (unsigned)(b > 65535u * 8 ? 65535u * 8 : b);
}

__global__ void to16_kernel(const float *__restrict__ in, uint16_t *__restrict__ out, size_t n, int to_bf16)
{
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
		out[i] = to16_one(in[i], to_bf16);
}

/* Eight values per thread and step (two 16-byte loads, one 16-byte store): the one-value form above
 * kept 4 bytes per thread in flight and converted a 512 x 4096 prefill activation in ~10 us, a third
 * of the copy rate (ncu, H200, 2026-12-01). */
__global__ void to16x8_kernel(const float4 *__restrict__ in, uint4 *__restrict__ out, size_t n8, int to_bf16)
{
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n8; i += (size_t)gridDim.x * blockDim.x) {
		const float4 a = __ldg(in + 2 * i), b = __ldg(in + 2 * i + 1);
		out[i] = make_uint4(pack16x2(a.x, a.y, to_bf16), pack16x2(a.z, a.w, to_bf16), pack16x2(b.x, b.y, to_bf16),
				    pack16x2(b.z, b.w, to_bf16));
	}
}

extern "C" cudaError_t awq_cu_to_16(cudaStream_t s, const float *in, uint16_t *out, size_t count, int to_bf16)
{
	size_t n8 = ((uintptr_t)in % 16 || (uintptr_t)out % 16) ? 0 : count / 8;
	if (n8) {
		to16x8_kernel<<<blocks_for(n8, 256), 256, 0, s>>>(reinterpret_cast<const float4 *>(in),
								  reinterpret_cast<uint4 *>(out), n8, to_bf16);
		cudaError_t e = cudaGetLastError();
		if (e != cudaSuccess || n8 * 8 == count)
			return e;
	}
	to16_kernel<<<blocks_for(count - n8 * 8, 256), 256, 0, s>>>(in + n8 * 8, out + n8 * 8, count - n8 * 8, to_bf16);
	return cudaGetLastError();
}

__global__ void add_bias_kernel(float *out, const float *bias, size_t total, int n)
{
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x)
		out[i] += bias[i % n];
}

extern "C" cudaError_t awq_cu_add_bias(cudaStream_t s, float *out, const float *bias, int rows, int n)
{
	size_t total = (size_t)rows * n;
	add_bias_kernel<<<blocks_for(total, 256), 256, 0, s>>>(out, bias, total, n);
	return cudaGetLastError();
}

template <bool PDL>
__global__ void embed_kernel(const int32_t *__restrict__ tokens, const void *__restrict__ table, int dtype_bytes,
			     int is_bf16, int cols, int vocab, float *__restrict__ out)
{
	pdl_start<PDL>(); /* programmatic launch: nothing is read before the kernel before has finished */
	int r = blockIdx.y;
	int tok = tokens[r];
	if (tok < 0 || tok >= vocab)
		tok = 0; /* ids are checked on the host when written; this only keeps the read in bounds */
	int c = blockIdx.x * blockDim.x + threadIdx.x; /* one element per thread: no serial load chain */
	if (c < cols) {
		size_t i = (size_t)tok * cols + c;
		float v;
		if (dtype_bytes == 4)
			v = reinterpret_cast<const float *>(table)[i];
		else if (is_bf16)
			v = __bfloat162float(__ushort_as_bfloat16(reinterpret_cast<const uint16_t *>(table)[i]));
		else
			v = __half2float(__ushort_as_half(reinterpret_cast<const uint16_t *>(table)[i]));
		out[(size_t)r * cols + c] = v;
	}
}

extern "C" cudaError_t awq_cu_embed(cudaStream_t s, const int32_t *tokens, int rows, const void *table, int dtype_bytes,
				    int is_bf16, int cols, int vocab, float *out, int pdl)
{
	return awq_cu_launch(pdl ? embed_kernel<true> : embed_kernel<false>, dim3((cols + 255) / 256, rows),
			     dim3(256), 0, s, pdl, tokens, table, dtype_bytes, is_bf16, cols, vocab, out);
}

static __device__ float block_sum(float v, float *sh)
{
	for (int o = 16; o > 0; o >>= 1)
		v += __shfl_xor_sync(0xffffffffu, v, o);
	int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nw = (blockDim.x + 31) >> 5;
	__syncthreads();
	if (lane == 0)
		sh[warp] = v;
	__syncthreads();
	float t = 0.f;
	for (int i = 0; i < nw; i++)
		t += sh[i];
	return t;
}

/* One block per (row, group). w holds `group` weights (per-head norms) or `cols` (whole-row). */
template <bool PDL>
__global__ void rmsnorm_kernel(const float *__restrict__ in, const float *__restrict__ w, float *__restrict__ out,
			       int cols, int group, float eps, uint16_t *__restrict__ out16, int bf16)
{
	pdl_start<PDL>(); /* the matmul after this norm may start streaming its weights now */
	__shared__ float sh[32];
	int per_row = cols / group;
	int r = blockIdx.x / per_row, gi = blockIdx.x % per_row;
	const float *x = in + (size_t)r * cols + (size_t)gi * group;
	float *y = out + (size_t)r * cols + (size_t)gi * group;
	float ss = 0.f;
	for (int c = threadIdx.x; c < group; c += blockDim.x)
		ss += x[c] * x[c];
	ss = block_sum(ss, sh);
	float inv = 1.0f / sqrtf(ss / (float)group + eps);
	uint16_t *y16 = out16 ? out16 + (size_t)r * cols + (size_t)gi * group : NULL;
	for (int c = threadIdx.x; c < group; c += blockDim.x) {
		float v = x[c] * inv * w[c];
		y[c] = v;
		if (y16)
			y16[c] = to16_one(v, bf16);
	}
}

extern "C" cudaError_t awq_cu_rmsnorm(cudaStream_t s, const float *in, const float *w, float *out, int rows, int cols,
				      int group, float eps, int pdl, uint16_t *out16, int out16_bf16)
{
	int threads = group >= 1024 ? 512 : group >= 256 ? 256 : 128;
	return awq_cu_launch(pdl ? rmsnorm_kernel<true> : rmsnorm_kernel<false>, dim3(rows * (cols / group)),
			     dim3(threads), 0, s, pdl, in, w, out, cols, group, eps, out16, out16_bf16);
}

__global__ void rope_kernel(const float *__restrict__ in, float *__restrict__ out, int rows, int n_heads,
			    int head_dim, const float *__restrict__ inv_freq, const int *__restrict__ d_pos)
{
	int half_d = head_dim / 2;
	size_t total = (size_t)rows * n_heads * half_d;
	size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
	if (i >= total)
		return;
	int d = (int)(i % half_d);
	int h = (int)((i / half_d) % n_heads);
	int r = (int)(i / ((size_t)half_d * n_heads));
	int pos = *d_pos + r;
	float sn, cs;
	sincosf((float)pos * inv_freq[d], &sn, &cs);
	size_t cols = (size_t)n_heads * head_dim;
	const float *x = in + r * cols + (size_t)h * head_dim;
	float x1 = x[d], x2 = x[d + half_d];
	float o1 = x1 * cs - x2 * sn, o2 = x2 * cs + x1 * sn;
	float *y = out + r * cols + (size_t)h * head_dim;
	y[d] = o1;
	y[d + half_d] = o2;
}

extern "C" cudaError_t awq_cu_rope(cudaStream_t s, const float *in, float *out, int rows, int n_heads, int head_dim,
				   const float *inv_freq, const int *d_pos)
{
	size_t total = (size_t)rows * n_heads * (head_dim / 2);
	rope_kernel<<<(unsigned)((total + 255) / 256), 256, 0, s>>>(in, out, rows, n_heads, head_dim, inv_freq, d_pos);
	return cudaGetLastError();
}

/* One block of 1024 threads per row; the row stays in registers between the add and the norm. All
 * loads of a thread are issued before its first store (h may be a's or b's memory, so the compiler
 * cannot move loads above stores by itself): one memory round trip per row, not one per element. */
#define ADDNORM_THREADS 1024
#define ADDNORM_PER 8
template <bool PDL>
__global__ void __launch_bounds__(ADDNORM_THREADS) add_rmsnorm_kernel(const float *a, const float *b, float *h,
								     const float *__restrict__ w,
								     float *__restrict__ y, int cols, float eps,
								     uint16_t *__restrict__ y16, int bf16)
{
	__shared__ float sh[32];
	pdl_start<PDL>(); /* the matmul after this norm may start streaming its weights now */
	size_t off = (size_t)blockIdx.x * cols;
	float v[ADDNORM_PER];
#pragma unroll
	for (int i = 0; i < ADDNORM_PER; i++) {
		int c = threadIdx.x + i * ADDNORM_THREADS;
		v[i] = c < cols ? a[off + c] + b[off + c] : 0.f;
	}
	float ss = 0.f;
#pragma unroll
	for (int i = 0; i < ADDNORM_PER; i++) {
		int c = threadIdx.x + i * ADDNORM_THREADS;
		if (c < cols)
			h[off + c] = v[i];
		ss += v[i] * v[i];
	}
	ss = block_sum(ss, sh);
	float inv = 1.0f / sqrtf(ss / (float)cols + eps);
#pragma unroll
	for (int i = 0; i < ADDNORM_PER; i++) {
		int c = threadIdx.x + i * ADDNORM_THREADS;
		if (c < cols) {
			float o = v[i] * inv * w[c];
			y[off + c] = o;
			if (y16)
				y16[off + c] = to16_one(o, bf16);
		}
	}
}

extern "C" cudaError_t awq_cu_add_rmsnorm(cudaStream_t s, const float *a, const float *b, float *h, const float *w,
					  float *y, int rows, int cols, float eps, int pdl, uint16_t *y16, int y16_bf16)
{
	if (cols > ADDNORM_THREADS * ADDNORM_PER)
		return cudaErrorInvalidValue;
	return awq_cu_launch(pdl ? add_rmsnorm_kernel<true> : add_rmsnorm_kernel<false>, dim3(rows),
			     dim3(ADDNORM_THREADS), 0, s, pdl, a, b, h, w, y, cols, eps, y16, y16_bf16);
}

template <bool PDL>
__global__ void silu_mul_kernel(const float *__restrict__ a, const float *__restrict__ b, float *__restrict__ out,
				size_t n, uint16_t *__restrict__ out16, int bf16)
{
	pdl_start<PDL>();
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
		float v = silu(a[i]) * b[i];
		out[i] = v;
		if (out16)
			out16[i] = to16_one(v, bf16);
	}
}

extern "C" cudaError_t awq_cu_silu_mul(cudaStream_t s, const float *a, const float *b, float *out, size_t count,
				       int pdl, uint16_t *out16, int out16_bf16)
{
	return awq_cu_launch(pdl ? silu_mul_kernel<true> : silu_mul_kernel<false>, dim3(blocks_for(count, 256)),
			     dim3(256), 0, s, pdl, a, b, out, count, out16, out16_bf16);
}

template <bool PDL>
__global__ void add_kernel(const float *__restrict__ a, const float *__restrict__ b, float *__restrict__ out, size_t n)
{
	pdl_start<PDL>();
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
		out[i] = a[i] + b[i];
}

extern "C" cudaError_t awq_cu_add(cudaStream_t s, const float *a, const float *b, float *out, size_t count, int pdl)
{
	return awq_cu_launch(pdl ? add_kernel<true> : add_kernel<false>, dim3(blocks_for(count, 256)), dim3(256), 0,
			     s, pdl, a, b, out, count);
}

template <bool PDL>
__global__ void sigmoid_mul_kernel(const float *__restrict__ g, const float *__restrict__ x, float *__restrict__ out,
				   size_t n, int cols)
{
	pdl_start<PDL>();
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
		out[i] = sigmoid(g[i / (size_t)cols]) * x[i]; /* as the CPU reference */
}

extern "C" cudaError_t awq_cu_sigmoid_mul(cudaStream_t s, const float *g, const float *x, float *out, int rows,
					  int cols, int pdl)
{
	size_t count = (size_t)rows * cols;
	if (rows < 1 || cols < 1)
		return cudaErrorInvalidValue;
	return awq_cu_launch(pdl ? sigmoid_mul_kernel<true> : sigmoid_mul_kernel<false>,
			     dim3(blocks_for(count, 256)), dim3(256), 0, s, pdl, g, x, out, count, cols);
}

/* Ties go to the lowest index, as a sequential scan would. One block of 1024 threads per row;
 * rows of a multiple of 4 columns are read as float4 with four loads in flight per thread (a
 * 152k-entry vocabulary is ~37 loads per thread instead of 600 dependent ones). */
#define ARGMAX_THREADS 1024
static __device__ __forceinline__ void amax_take(float v, int i, float &best, int &bi)
{
	if (v > best || (v == best && i < bi)) {
		best = v;
		bi = i;
	}
}

/* The best (value, index) of a block's threads' candidates, in thread 0 (ties: lowest index). */
static __device__ __forceinline__ void amax_block(float &best, int &bi, float *sv, int *si)
{
	for (int o = 16; o > 0; o >>= 1) {
		float ov = __shfl_xor_sync(0xffffffffu, best, o);
		int oi = __shfl_xor_sync(0xffffffffu, bi, o);
		amax_take(ov, oi, best, bi);
	}
	const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nw = blockDim.x >> 5;
	if (lane == 0) {
		sv[warp] = best;
		si[warp] = bi;
	}
	__syncthreads();
	if (warp == 0) {
		best = lane < nw ? sv[lane] : -FLT_MAX;
		bi = lane < nw ? si[lane] : 0x7fffffff;
		for (int o = 16; o > 0; o >>= 1) {
			float ov = __shfl_xor_sync(0xffffffffu, best, o);
			int oi = __shfl_xor_sync(0xffffffffu, bi, o);
			amax_take(ov, oi, best, bi);
		}
	}
}

/* Thread candidates over columns [c0, c1) of x (c0, c1 multiples of 4 when vec). */
static __device__ __forceinline__ void amax_scan(const float *__restrict__ x, int c0, int c1, bool vec, float &best,
						 int &bi)
{
	if (vec) {
		const float4 *x4 = reinterpret_cast<const float4 *>(x);
#pragma unroll 4
		for (int c = c0 / 4 + (int)threadIdx.x; c < c1 / 4; c += blockDim.x) {
			float4 v = x4[c];
			amax_take(v.x, 4 * c, best, bi);
			amax_take(v.y, 4 * c + 1, best, bi);
			amax_take(v.z, 4 * c + 2, best, bi);
			amax_take(v.w, 4 * c + 3, best, bi);
		}
	} else {
#pragma unroll 4
		for (int c = c0 + (int)threadIdx.x; c < c1; c += blockDim.x)
			amax_take(x[c], c, best, bi);
	}
}

/* The chain's feed of a one-row step's id (awq_cu_feed): every kernel of the step is done with the
 * token and the position by now. */
static __device__ __forceinline__ void amax_feed(const struct awq_cu_feed &feed, int32_t id)
{
	if (feed.tok) {
		const int pos = *feed.pos;
		feed.tok[0] = id;
		*feed.pos = pos + 1;
		feed.ring[pos & feed.ring_mask] = id;
		__threadfence_system(); /* the host reads the ring after the step's event */
	}
}

template <bool PDL>
__global__ void __launch_bounds__(ARGMAX_THREADS) argmax_kernel(const float *__restrict__ in, int cols,
								 int32_t *__restrict__ out, struct awq_cu_feed feed)
{
	if (PDL)
		pdl_wait(); /* programmatic launch: the logits come from the kernel before */
	__shared__ float sv[32];
	__shared__ int si[32];
	float best = -FLT_MAX;
	int bi = 0x7fffffff;
	amax_scan(in + (size_t)blockIdx.x * cols, 0, cols, cols % 4 == 0, best, bi);
	amax_block(best, bi, sv, si);
	if (threadIdx.x == 0) {
		const int32_t id = bi == 0x7fffffff ? 0 : bi;
		out[blockIdx.x] = id;
		amax_feed(feed, id);
	}
}

/* One row over many blocks (a 152k vocabulary in one block of 1024 threads took 9.5 us on an H200:
 * one SM's loads): each block takes a slice of ARGMAX_SLICE columns and leaves its best in part[],
 * the last block to arrive (ticket, reset for the next launch) merges them in block order. */
#define ARGMAX_SLICE 4096
#define ARGMAX_SPLIT_THREADS 256
template <bool PDL>
__global__ void __launch_bounds__(ARGMAX_SPLIT_THREADS) argmax_split_kernel(const float *__restrict__ in, int cols,
									     int32_t *__restrict__ out, struct awq_cu_feed feed,
									     float *part_v, int *part_i, unsigned *ticket)
{
	if (PDL)
		pdl_wait();
	__shared__ float sv[32];
	__shared__ int si[32];
	__shared__ int last;
	float best = -FLT_MAX;
	int bi = 0x7fffffff;
	const int c0 = blockIdx.x * ARGMAX_SLICE, c1 = min(cols, c0 + ARGMAX_SLICE);
	amax_scan(in, c0, c1, cols % 4 == 0, best, bi);
	amax_block(best, bi, sv, si);
	if (threadIdx.x == 0) {
		part_v[blockIdx.x] = best;
		part_i[blockIdx.x] = bi;
		__threadfence();
		last = atomicAdd(ticket, 1u) == gridDim.x - 1;
		if (last)
			*ticket = 0u;
	}
	__syncthreads();
	if (!last)
		return;
	__threadfence();
	best = -FLT_MAX;
	bi = 0x7fffffff;
	for (int b = threadIdx.x; b < (int)gridDim.x; b += blockDim.x)
		amax_take(__ldcg(part_v + b), __ldcg(part_i + b), best, bi);
	amax_block(best, bi, sv, si);
	if (threadIdx.x == 0) {
		const int32_t id = bi == 0x7fffffff ? 0 : bi;
		out[0] = id;
		amax_feed(feed, id);
	}
}

int awq_cu_argmax_blocks(int rows, int cols)
{
	return rows == 1 && cols > 2 * ARGMAX_SLICE ? (cols + ARGMAX_SLICE - 1) / ARGMAX_SLICE : 0;
}

extern "C" cudaError_t awq_cu_argmax(cudaStream_t s, const float *in, int rows, int cols, int32_t *out, int pdl,
				     const struct awq_cu_feed *feed, const struct awq_cu_amax_scratch *scr)
{
	struct awq_cu_feed f = {};
	if (feed && rows == 1)
		f = *feed;
	const int nb = awq_cu_argmax_blocks(rows, cols);
	if (nb && scr && scr->ticket && nb <= scr->max_blocks)
		return awq_cu_launch(pdl ? argmax_split_kernel<true> : argmax_split_kernel<false>, dim3(nb),
				     dim3(ARGMAX_SPLIT_THREADS), 0, s, pdl, in, cols, out, f, scr->part_v, scr->part_i,
				     scr->ticket);
	return awq_cu_launch(pdl ? argmax_kernel<true> : argmax_kernel<false>, dim3(rows), dim3(ARGMAX_THREADS), 0,
			     s, pdl, in, cols, out, f);
}

/* Slot `slot` of an attention-prep grid (the q heads, then the k heads, then the v heads): its kind
 * (0 q, 1 k, 2 v), head h of heads, source rows, per-head norm weights, RoPE table and norm eps. */
struct prep_slot {
	int kind, h, heads;
	const float *src, *nw, *freq;
	float eps;
};

static __device__ __forceinline__ prep_slot prep_slot_of(const struct awq_cu_prep &p, int slot)
{
	prep_slot s;
	s.kind = slot < p.n_heads ? 0 : slot < p.n_heads + p.n_kv_heads ? 1 : 2;
	s.h = s.kind == 0 ? slot : s.kind == 1 ? slot - p.n_heads : slot - p.n_heads - p.n_kv_heads;
	s.heads = s.kind == 0 ? p.n_heads : p.n_kv_heads;
	s.src = s.kind == 0 ? p.q : s.kind == 1 ? p.k : p.v;
	s.nw = s.kind == 0 ? p.q_norm : s.kind == 1 ? p.k_norm : NULL;
	s.freq = s.kind == 0 ? p.q_freq : s.kind == 1 ? p.k_freq : NULL;
	s.eps = s.kind == 0 ? p.q_eps : p.k_eps;
	return s;
}

/* Attention inputs of one step in one launch: one block per (head slot, row), the slots being the
 * q heads, then the k heads, then the v heads. q and k get their per-head RMSNorm (Qwen3's q_norm
 * and k_norm) and RoPE when given; q goes to q_out (f32), k and v to the f16 cache at their
 * position. The arithmetic is that of rmsnorm_kernel and rope_kernel. */
template <bool PDL>
__global__ void attn_prep_kernel(struct awq_cu_prep p)
{
	pdl_start<PDL>();
	__shared__ float sh[32];
	__shared__ float row[256];
	int slot = blockIdx.x, r = blockIdx.y, d = threadIdx.x, hd = p.head_dim, half = hd / 2;
	int pos = *p.d_pos + r;
	const prep_slot ps = prep_slot_of(p, slot);
	const int kind = ps.kind, h = ps.h, heads = ps.heads;
	const float *nw = ps.nw, *freq = ps.freq;
	const float eps = ps.eps;
	const int sd = p.perm && kind < 2 && d < hd ? awq_rope_perm_dst(d, hd) : d;
	float x = d < hd ? ps.src[((size_t)r * heads + h) * hd + sd] : 0.f;
	if (nw) {
		float ss = block_sum(x * x, sh);
		float inv = 1.0f / sqrtf(ss / (float)hd + eps);
		x = d < hd ? x * inv * nw[d] : 0.f;
	}
	if (freq) {
		row[d] = x;
		__syncthreads();
		if (d < hd) {
			float y = d < half ? row[d + half] : row[d - half], sn, cs;
			sincosf((float)pos * freq[d < half ? d : d - half], &sn, &cs);
			x = d < half ? x * cs - y * sn : x * cs + y * sn;
		}
	}
	if (d >= hd)
		return;
	if (kind == 0) {
		p.q_out[((size_t)r * heads + h) * hd + d] = x;
		return;
	}
	uint16_t *dst = kind == 1 ? p.kc : p.vc;
	dst[((size_t)pos * heads + h) * hd + d] = __half_as_ushort(__float2half_rn(x));
}

/* The same for prefill (more than AWQ_CU_DECODE_ROWS rows) at head dims that are multiples of 64:
 * one warp per (slot, row), 8 per block, V = head_dim / 32 values per lane (d = lane + 32 i), so
 * that the RoPE partner d +- head_dim / 2 is the same lane's value i +- V / 2 and the norm is a warp
 * sum: no shared memory, no barrier. The kernel above, one 128-thread block per (slot, row) with
 * three barriers, took 36 us per llama2-7b layer at 512 rows (49k blocks; ncu, H200, 2026-12-01). */
template <int V>
__global__ void __launch_bounds__(256) attn_prep_rows_kernel(struct awq_cu_prep p, int slots)
{
	const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, hd = 32 * V;
	const int idx = blockIdx.x * 8 + warp;
	if (idx >= slots * p.rows)
		return;
	const int slot = idx % slots, r = idx / slots, pos = *p.d_pos + r;
	const prep_slot ps = prep_slot_of(p, slot);
	const int kind = ps.kind, h = ps.h, heads = ps.heads;
	const float *src = ps.src + ((size_t)r * heads + h) * hd;
	const float *nw = ps.nw, *freq = ps.freq;
	const float eps = ps.eps;
	const bool perm = p.perm && kind < 2;
	float x[V];
#pragma unroll
	for (int i = 0; i < V; i++)
		x[i] = src[perm ? awq_rope_perm_dst(lane + 32 * i, hd) : lane + 32 * i];
	if (nw) {
		float ss = 0.f;
#pragma unroll
		for (int i = 0; i < V; i++)
			ss += x[i] * x[i];
#pragma unroll
		for (int o = 16; o; o >>= 1)
			ss += __shfl_xor_sync(0xffffffffu, ss, o);
		float inv = 1.0f / sqrtf(ss / (float)hd + eps);
#pragma unroll
		for (int i = 0; i < V; i++)
			x[i] = x[i] * inv * nw[lane + 32 * i];
	}
	if (freq) {
#pragma unroll
		for (int i = 0; i < V / 2; i++) {
			float sn, cs, lo = x[i], hi = x[i + V / 2];
			sincosf((float)pos * freq[lane + 32 * i], &sn, &cs);
			x[i] = lo * cs - hi * sn;
			x[i + V / 2] = hi * cs + lo * sn;
		}
	}
	if (kind == 0) {
		float *dst = p.q_out + ((size_t)r * heads + h) * hd + lane;
#pragma unroll
		for (int i = 0; i < V; i++)
			dst[32 * i] = x[i];
		return;
	}
	uint16_t *dst = (kind == 1 ? p.kc : p.vc) + ((size_t)pos * heads + h) * hd + lane;
#pragma unroll
	for (int i = 0; i < V; i++)
		dst[32 * i] = __half_as_ushort(__float2half_rn(x[i]));
}

extern "C" cudaError_t awq_cu_attn_prep(cudaStream_t s, const struct awq_cu_prep *p)
{
	if (p->head_dim > 256 || p->head_dim % 2 || (!p->q_out && (p->q_norm || p->q_freq)) || (p->perm && p->head_dim % 16))
		return cudaErrorInvalidValue;
	int slots = (p->q_out ? p->n_heads : 0) + 2 * p->n_kv_heads;
	int threads = (p->head_dim + 31) / 32 * 32;
	struct awq_cu_prep a = *p;
	if (!p->q_out) { /* nothing to do for q: the grid starts at the k heads */
		a.n_heads = 0;
	}
	const int V = p->head_dim / 32;
	if (p->rows > AWQ_CU_DECODE_ROWS && p->head_dim % 64 == 0 && (V == 2 || V == 4 || V == 8)) {
		unsigned blocks = (unsigned)(((size_t)slots * p->rows + 7) / 8);
		if (V == 2)
			attn_prep_rows_kernel<2><<<blocks, 256, 0, s>>>(a, slots);
		else if (V == 4)
			attn_prep_rows_kernel<4><<<blocks, 256, 0, s>>>(a, slots);
		else
			attn_prep_rows_kernel<8><<<blocks, 256, 0, s>>>(a, slots);
		return cudaGetLastError();
	}
	return awq_cu_launch(p->pdl ? attn_prep_kernel<true> : attn_prep_kernel<false>, dim3(slots, p->rows),
			     dim3(threads), 0, s, p->pdl, a);
}

/* Profiling aid: keeps the stream busy for `us` microseconds so that the host can queue a whole
 * step's launches (and the events between them) before the first one starts. */
__global__ void hold_kernel(unsigned long long ns)
{
	unsigned long long t0, t;
	asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
	do {
		__nanosleep(1000);
		asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
	} while (t - t0 < ns);
}

extern "C" cudaError_t awq_cu_hold(cudaStream_t s, unsigned us)
{
	hold_kernel<<<1, 1, 0, s>>>(1000ull * us);
	return cudaGetLastError();
}

/* Programmatic dependent launch of the decode kernels: on from sm_90 unless AWQ_CUDA_PDL=0. */
extern "C" int awq_cu_pdl_default(int cc_major)
{
	static int env = -1;
	if (env < 0) {
		const char *e = getenv("AWQ_CUDA_PDL");
		env = !(e && e[0] == '0');
	}
	return cc_major >= 9 && env;
}
