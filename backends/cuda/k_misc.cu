/* Element-wise and row-wise kernels: embedding gather, RMSNorm, RoPE (with the optional direct write
 * of rotated K into the f16 KV cache), KV append, SiLU-mul, add, bias, argmax, f32 -> f16/bf16. */
#include <float.h>

#include "cu_common.cuh"
#include "cu_kernels.h"

static inline unsigned blocks_for(size_t n, unsigned threads)
{
	size_t b = (n + threads - 1) / threads;
	return (unsigned)(b > 65535u * 8 ? 65535u * 8 : b);
}

__global__ void to16_kernel(const float *__restrict__ in, uint16_t *__restrict__ out, size_t n, int to_bf16)
{
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
		if (to_bf16)
			out[i] = __bfloat16_as_ushort(__float2bfloat16_rn(in[i]));
		else
			out[i] = __half_as_ushort(__float2half_rn(in[i]));
	}
}

extern "C" cudaError_t awq_cu_to_16(cudaStream_t s, const float *in, uint16_t *out, size_t count, int to_bf16)
{
	to16_kernel<<<blocks_for(count, 256), 256, 0, s>>>(in, out, count, to_bf16);
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

__global__ void embed_kernel(const int32_t *__restrict__ tokens, const void *__restrict__ table, int dtype_bytes,
			     int is_bf16, int cols, int vocab, float *__restrict__ out)
{
	int r = blockIdx.x;
	int tok = tokens[r];
	if (tok < 0 || tok >= vocab)
		tok = 0; /* ids are checked on the host when written; this only keeps the read in bounds */
	for (int c = threadIdx.x; c < cols; c += blockDim.x) {
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
				    int is_bf16, int cols, int vocab, float *out)
{
	embed_kernel<<<rows, 256, 0, s>>>(tokens, table, dtype_bytes, is_bf16, cols, vocab, out);
	return cudaGetLastError();
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
__global__ void rmsnorm_kernel(const float *__restrict__ in, const float *__restrict__ w, float *__restrict__ out,
			       int cols, int group, float eps)
{
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
	for (int c = threadIdx.x; c < group; c += blockDim.x)
		y[c] = x[c] * inv * w[c];
}

extern "C" cudaError_t awq_cu_rmsnorm(cudaStream_t s, const float *in, const float *w, float *out, int rows, int cols,
				      int group, float eps)
{
	int threads = group >= 1024 ? 512 : group >= 256 ? 256 : 128;
	rmsnorm_kernel<<<rows * (cols / group), threads, 0, s>>>(in, w, out, cols, group, eps);
	return cudaGetLastError();
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

__global__ void kv_append_kernel(const float *__restrict__ k, const float *__restrict__ v, uint16_t *__restrict__ kc,
				 uint16_t *__restrict__ vc, int kv_heads, int head_dim, const float *__restrict__ inv_freq,
				 const int *__restrict__ d_pos)
{
	int r = blockIdx.x, cols = kv_heads * head_dim, half_d = head_dim / 2;
	int pos = *d_pos + r;
	const float *kr = k + (size_t)r * cols, *vr = v + (size_t)r * cols;
	uint16_t *kd = kc + (size_t)pos * cols, *vd = vc + (size_t)pos * cols;
	for (int i = threadIdx.x; i < cols; i += blockDim.x)
		vd[i] = __half_as_ushort(__float2half_rn(vr[i]));
	if (!inv_freq) {
		for (int i = threadIdx.x; i < cols; i += blockDim.x)
			kd[i] = __half_as_ushort(__float2half_rn(kr[i]));
		return;
	}
	for (int i = threadIdx.x; i < kv_heads * half_d; i += blockDim.x) {
		int h = i / half_d, d = i % half_d;
		float sn, cs;
		sincosf((float)pos * inv_freq[d], &sn, &cs);
		float x1 = kr[h * head_dim + d], x2 = kr[h * head_dim + d + half_d];
		kd[h * head_dim + d] = __half_as_ushort(__float2half_rn(x1 * cs - x2 * sn));
		kd[h * head_dim + d + half_d] = __half_as_ushort(__float2half_rn(x2 * cs + x1 * sn));
	}
}

extern "C" cudaError_t awq_cu_kv_append(cudaStream_t s, const float *k, const float *v, uint16_t *kc, uint16_t *vc,
					int rows, int kv_heads, int head_dim, const float *k_inv_freq, const int *d_pos)
{
	kv_append_kernel<<<rows, 256, 0, s>>>(k, v, kc, vc, kv_heads, head_dim, k_inv_freq, d_pos);
	return cudaGetLastError();
}

/* One block per row; the row stays in registers between the add and the norm. */
#define ADDNORM_THREADS 256
#define ADDNORM_PER 32
__global__ void __launch_bounds__(ADDNORM_THREADS) add_rmsnorm_kernel(const float *__restrict__ a,
								     const float *__restrict__ b, float *__restrict__ h,
								     const float *__restrict__ w, float *__restrict__ y,
								     int cols, float eps)
{
	__shared__ float sh[32];
	size_t off = (size_t)blockIdx.x * cols;
	float v[ADDNORM_PER];
	float ss = 0.f;
#pragma unroll
	for (int i = 0; i < ADDNORM_PER; i++) {
		int c = threadIdx.x + i * ADDNORM_THREADS;
		v[i] = 0.f;
		if (c < cols) {
			v[i] = a[off + c] + b[off + c];
			h[off + c] = v[i];
			ss += v[i] * v[i];
		}
	}
	ss = block_sum(ss, sh);
	float inv = 1.0f / sqrtf(ss / (float)cols + eps);
#pragma unroll
	for (int i = 0; i < ADDNORM_PER; i++) {
		int c = threadIdx.x + i * ADDNORM_THREADS;
		if (c < cols)
			y[off + c] = v[i] * inv * w[c];
	}
}

extern "C" cudaError_t awq_cu_add_rmsnorm(cudaStream_t s, const float *a, const float *b, float *h, const float *w,
					  float *y, int rows, int cols, float eps)
{
	if (cols > ADDNORM_THREADS * ADDNORM_PER)
		return cudaErrorInvalidValue;
	add_rmsnorm_kernel<<<rows, ADDNORM_THREADS, 0, s>>>(a, b, h, w, y, cols, eps);
	return cudaGetLastError();
}

__global__ void silu_mul_kernel(const float *__restrict__ a, const float *__restrict__ b, float *__restrict__ out,
				size_t n)
{
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
		out[i] = silu(a[i]) * b[i];
}

extern "C" cudaError_t awq_cu_silu_mul(cudaStream_t s, const float *a, const float *b, float *out, size_t count)
{
	silu_mul_kernel<<<blocks_for(count, 256), 256, 0, s>>>(a, b, out, count);
	return cudaGetLastError();
}

__global__ void add_kernel(const float *__restrict__ a, const float *__restrict__ b, float *__restrict__ out, size_t n)
{
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
		out[i] = a[i] + b[i];
}

extern "C" cudaError_t awq_cu_add(cudaStream_t s, const float *a, const float *b, float *out, size_t count)
{
	add_kernel<<<blocks_for(count, 256), 256, 0, s>>>(a, b, out, count);
	return cudaGetLastError();
}

/* Ties go to the lowest index, as a sequential scan would. */
__global__ void argmax_kernel(const float *__restrict__ in, int cols, int32_t *__restrict__ out)
{
	__shared__ float sv[32];
	__shared__ int si[32];
	const float *x = in + (size_t)blockIdx.x * cols;
	float best = -FLT_MAX;
	int bi = 0x7fffffff;
	for (int c = threadIdx.x; c < cols; c += blockDim.x) {
		float v = x[c];
		if (v > best) {
			best = v;
			bi = c;
		}
	}
	for (int o = 16; o > 0; o >>= 1) {
		float ov = __shfl_xor_sync(0xffffffffu, best, o);
		int oi = __shfl_xor_sync(0xffffffffu, bi, o);
		if (ov > best || (ov == best && oi < bi)) {
			best = ov;
			bi = oi;
		}
	}
	int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
	if (lane == 0) {
		sv[warp] = best;
		si[warp] = bi;
	}
	__syncthreads();
	if (threadIdx.x == 0) {
		for (int i = 1; i < (int)(blockDim.x >> 5); i++)
			if (sv[i] > best || (sv[i] == best && si[i] < bi)) {
				best = sv[i];
				bi = si[i];
			}
		out[blockIdx.x] = bi == 0x7fffffff ? 0 : bi;
	}
}

extern "C" cudaError_t awq_cu_argmax(cudaStream_t s, const float *in, int rows, int cols, int32_t *out)
{
	argmax_kernel<<<rows, 256, 0, s>>>(in, cols, out);
	return cudaGetLastError();
}
