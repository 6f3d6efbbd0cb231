/* BF16/FP16 matrix-vector product for decode (1..8 token rows): W [n][k] streamed once with 16-byte
 * loads, two weight rows per warp, activations (f32) read through L1 and shared by the block's warps
 * that walk K in step. f32 accumulation; prefill goes to cuBLAS. */
#include "cu_common.cuh"
#include "cu_kernels.h"

#define W16_WARPS 8
#define W16_ROWS 2

/* The weights of one loop step: vectors i and i + 32 of each of the warp's rows (zero past k8). */
static __device__ __forceinline__ void w16_load(uint4 v[2][W16_ROWS], const uint4 *const wr[W16_ROWS], int i, int k8)
{
#pragma unroll
	for (int u = 0; u < 2; u++)
#pragma unroll
		for (int r = 0; r < W16_ROWS; r++)
			v[u][r] = i + 32 * u < k8 ? ld_stream16(wr[r] + i + 32 * u) : make_uint4(0, 0, 0, 0);
}

/* Multiply-accumulate one loop step: the weights v (two 8-element vectors per row, at vector
 * indices i and i + 32 of the rows) against the activations of the NT token rows. */
template <int NT>
static __device__ __forceinline__ void w16_step(const uint4 v[2][W16_ROWS], int i, int k, const float *__restrict__ x,
						int rows, int is_bf16, float acc[W16_ROWS][NT])
{
#pragma unroll
	for (int u = 0; u < 2; u++) {
		int kk = (i + 32 * u) * 8;
		if (kk >= k)
			break;
		float xv[NT][8];
#pragma unroll
		for (int t = 0; t < NT; t++) {
			const float4 *xp = reinterpret_cast<const float4 *>(x + (size_t)min(t, rows - 1) * k + kk);
			float4 a = __ldg(xp), b = __ldg(xp + 1);
			xv[t][0] = a.x, xv[t][1] = a.y, xv[t][2] = a.z, xv[t][3] = a.w;
			xv[t][4] = b.x, xv[t][5] = b.y, xv[t][6] = b.z, xv[t][7] = b.w;
		}
#pragma unroll
		for (int r = 0; r < W16_ROWS; r++) {
			float f[8];
			w16x8_unpack(v[u][r], is_bf16, f);
#pragma unroll
			for (int t = 0; t < NT; t++)
#pragma unroll
				for (int e = 0; e < 8; e++)
					acc[r][t] = fmaf(f[e], xv[t][e], acc[r][t]);
		}
	}
}

/* Sum each accumulator over the warp's lanes (every lane gets the total). */
template <int NT> static __device__ __forceinline__ void w16_warp_sum(float acc[W16_ROWS][NT])
{
#pragma unroll
	for (int r = 0; r < W16_ROWS; r++)
#pragma unroll
		for (int t = 0; t < NT; t++)
			for (int o = 16; o > 0; o >>= 1)
				acc[r][t] += __shfl_xor_sync(0xffffffffu, acc[r][t], o);
}

/* One weight matrix: the kernel measured at 84-110 % of the copy bandwidth on the H200 (plain
 * launch, no prefetch; a programmatic launch measured 2.6-3.8% slower in BF16 decode, session 14);
 * the generalised kernel below ran 10-28 % slower on single matrices. XN: the producer and reader
 * forms of struct awq_cu_xnorm (NT <= 2). The producer's residual and norm weights, and the
 * reader's sums of squares, are loaded before the main loop (everything before this plain launch
 * has finished), so that the epilogue waits for none. */
template <int NT, bool XN = false>
__global__ void __launch_bounds__(W16_WARPS * 32) w16_gemv_one_kernel(const uint16_t *__restrict__ w, int is_bf16,
								  const float *__restrict__ bias, int n, int k,
								  const float *__restrict__ x, int rows,
								  float *__restrict__ out, const struct awq_cu_xnorm xn)
{
	int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
	int row0 = (blockIdx.x * W16_WARPS + warp) * W16_ROWS;
	float acc[W16_ROWS][NT] = {};
	const uint4 *wr[W16_ROWS];
#pragma unroll
	for (int r = 0; r < W16_ROWS; r++)
		wr[r] = reinterpret_cast<const uint4 *>(w + (size_t)min(row0 + r, n - 1) * k);
	float pres[W16_ROWS][NT], pw[W16_ROWS], pss[NT];
	if (XN) {
#pragma unroll
		for (int r = 0; r < W16_ROWS; r++) {
			int row = min(row0 + r, n - 1);
			pw[r] = xn.res ? xn.norm_w[row] : 0.f;
#pragma unroll
			for (int t = 0; t < NT; t++)
				pres[r][t] = xn.res && t < rows ? xn.res[(size_t)t * n + row] : 0.f;
		}
#pragma unroll
		for (int t = 0; t < NT; t++)
			pss[t] = xn.xn_sumsq && t < rows ? xn.xn_sumsq[t] : 0.f;
	}
	int k8 = k / 8;
	for (int i = lane; i < k8; i += 64) {
		uint4 v[2][W16_ROWS];
		w16_load(v, wr, i, k8);
		w16_step<NT>(v, i, k, x, rows, is_bf16, acc);
	}
	w16_warp_sum<NT>(acc);
	if (XN && xn.xn_sumsq)
#pragma unroll
		for (int t = 0; t < NT; t++) {
			float sc = rsqrtf(pss[t] / (float)k + xn.xn_eps);
#pragma unroll
			for (int r = 0; r < W16_ROWS; r++)
				acc[r][t] *= sc;
		}
	if (XN && xn.res) {
		/* h, h * w and the block's sum of h^2 per token: lane 0 of each warp has its two rows */
		__shared__ float wss[W16_WARPS][NT];
		float ss[NT];
#pragma unroll
		for (int t = 0; t < NT; t++) {
			ss[t] = 0.f;
#pragma unroll
			for (int r = 0; r < W16_ROWS; r++)
				if (lane == 0 && row0 + r < n && t < rows) {
					size_t e = (size_t)t * n + row0 + r;
					float h = acc[r][t] + (bias ? bias[row0 + r] : 0.f) + pres[r][t];
					out[e] = h;
					xn.xn[e] = h * pw[r];
					ss[t] += h * h;
				}
			if (lane == 0)
				wss[warp][t] = ss[t];
		}
		__syncthreads();
		if (threadIdx.x < NT && (int)threadIdx.x < rows) {
			float b = 0.f;
			for (int q = 0; q < W16_WARPS; q++)
				b += wss[q][threadIdx.x];
			atomicAdd(xn.sumsq + threadIdx.x, b);
			if (blockIdx.x == 0 && xn.sumsq_clear)
				xn.sumsq_clear[threadIdx.x] = 0.f;
		}
		return;
	}
#pragma unroll
	for (int r = 0; r < W16_ROWS; r++)
#pragma unroll
		for (int t = 0; t < NT; t++)
			if (lane == 0 && row0 + r < n && t < rows)
				out[(size_t)t * n + row0 + r] = acc[r][t] + (bias ? bias[row0 + r] : 0.f);
}

/* Row R of the concatenated segments: its segment's weight row and output column, or -1 past the end. */
static __device__ __forceinline__ int w16_seg_row(const struct awq_cu_w16_multi &m, int R, int &seg)
{
	int start = 0;
#pragma unroll
	for (int s = 0; s < 3; s++) {
		if (s < m.nseg && R < start + m.n[s]) {
			seg = s;
			return R - start;
		}
		start += s < m.nseg ? m.n[s] : 0;
	}
	seg = 0;
	return -1;
}

/* Each warp takes W16_ROWS = 2 weight rows: two consecutive rows of the concatenated segments
 * (q/k/v), or with m.silu row j of the gate and row j of the up weight, stored as
 * silu(gate) * up. */
template <int NT, bool XN = false> /* XN: m.xn_sumsq honoured (the reader of a producer-epilogue norm) */
__global__ void __launch_bounds__(W16_WARPS * 32) w16_gemv_kernel(const struct awq_cu_w16_multi m,
								  const float *__restrict__ x, int rows)
{
	int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
	int gw = blockIdx.x * W16_WARPS + warp, k = m.k;
	int seg[W16_ROWS], lr[W16_ROWS];
	const uint4 *wr[W16_ROWS];
#pragma unroll
	for (int r = 0; r < W16_ROWS; r++) {
		if (m.silu) {
			seg[r] = r;
			lr[r] = gw < m.n[0] ? gw : -1;
		} else {
			lr[r] = w16_seg_row(m, gw * W16_ROWS + r, seg[r]);
		}
		/* rows past the end read row 0 of their segment and are not stored */
		wr[r] = reinterpret_cast<const uint4 *>(cu_sel3(m.w, seg[r]) + (size_t)(lr[r] < 0 ? 0 : lr[r]) * k);
	}
	float acc[W16_ROWS][NT] = {};
	int k8 = k / 8;
	/* The first weights are requested before waiting for the kernel that writes x (programmatic
	 * launch), and every iteration requests the next one's before computing its own. */
	uint4 nxt[2][W16_ROWS];
	w16_load(nxt, wr, lane, k8);
	pdl_wait();
	pdl_trigger();
	for (int i = lane; i < k8; i += 64) {
		uint4 v[2][W16_ROWS];
#pragma unroll
		for (int u = 0; u < 2; u++)
#pragma unroll
			for (int r = 0; r < W16_ROWS; r++)
				v[u][r] = nxt[u][r];
		w16_load(nxt, wr, i + 64, k8);
		w16_step<NT>(v, i, k, x, rows, m.is_bf16, acc);
	}
	w16_warp_sum<NT>(acc);
	if (XN && m.xn_sumsq) /* reader of a producer-epilogue norm: the scale on the sums (x is f32) */
#pragma unroll
		for (int t = 0; t < NT; t++) {
			float sc = t < rows ? rsqrtf(m.xn_sumsq[t] / (float)k + m.xn_eps) : 1.f;
#pragma unroll
			for (int r = 0; r < W16_ROWS; r++)
				acc[r][t] *= sc;
		}
#pragma unroll
	for (int r = 0; r < W16_ROWS; r++)
#pragma unroll
		for (int t = 0; t < NT; t++)
			acc[r][t] += lr[r] >= 0 && cu_sel3(m.bias, seg[r]) ? cu_sel3(m.bias, seg[r])[lr[r]] : 0.f;
	if (lane != 0)
		return;
#pragma unroll
	for (int t = 0; t < NT; t++) {
		if (t >= rows)
			break;
		if (m.silu) {
			if (lr[0] >= 0)
				m.out[0][(size_t)t * m.n[0] + lr[0]] = silu(acc[0][t]) * acc[1][t];
			continue;
		}
#pragma unroll
		for (int r = 0; r < W16_ROWS; r++)
			if (lr[r] >= 0)
				cu_sel3(m.out, seg[r])[(size_t)t * cu_sel3(m.n, seg[r]) + lr[r]] = acc[r][t];
	}
}

/* Rows whose length is not a multiple of 8 elements cannot use 16-byte loads. */
__global__ void w16_gemv_scalar_kernel(const uint16_t *__restrict__ w, int is_bf16, const float *__restrict__ bias,
				       int n, int k, const float *__restrict__ x, int rows, float *__restrict__ out)
{
	int warp = (blockIdx.x * blockDim.x + threadIdx.x) >> 5, lane = threadIdx.x & 31;
	if (warp >= n)
		return;
	const uint16_t *wr = w + (size_t)warp * k;
	for (int t = 0; t < rows; t++) {
		float s = 0.f;
		for (int i = lane; i < k; i += 32) {
			float f = is_bf16 ? __uint_as_float((uint32_t)wr[i] << 16) : __half2float(__ushort_as_half(wr[i]));
			s = fmaf(f, x[(size_t)t * k + i], s);
		}
		for (int o = 16; o > 0; o >>= 1)
			s += __shfl_xor_sync(0xffffffffu, s, o);
		if (lane == 0)
			out[(size_t)t * n + warp] = s + (bias ? bias[warp] : 0.f);
	}
}

template <int NT, bool XN = false>
static cudaError_t launch_nt(cudaStream_t s, const struct awq_cu_w16_multi *m, const float *x, int rows)
{
	int total = m->silu ? m->n[0] * W16_ROWS : m->n[0] + (m->nseg > 1 ? m->n[1] : 0) + (m->nseg > 2 ? m->n[2] : 0);
	int per_block = W16_WARPS * W16_ROWS;
	return awq_cu_launch(w16_gemv_kernel<NT, XN>, dim3((total + per_block - 1) / per_block), dim3(W16_WARPS * 32), 0,
			     s, awq_cu_pdl_default(m->cc_major), *m, x, rows);
}

extern "C" cudaError_t awq_cu_w16_gemv_multi(cudaStream_t s, const struct awq_cu_w16_multi *m, const float *x,
					     int rows)
{
	if (rows < 1 || rows > AWQ_CU_DECODE_ROWS || m->nseg < 1 || m->nseg > 3 || (m->silu && m->nseg != 2) ||
	    m->k % 8 != 0 || (m->xn_sumsq && rows > 2))
		return cudaErrorInvalidValue;
	if (m->xn_sumsq)
		return rows == 1 ? launch_nt<1, true>(s, m, x, rows) : launch_nt<2, true>(s, m, x, rows);
	switch (rows) {
	case 1: return launch_nt<1>(s, m, x, rows);
	case 2: return launch_nt<2>(s, m, x, rows);
	case 3: return launch_nt<3>(s, m, x, rows);
	case 4: return launch_nt<4>(s, m, x, rows);
	default: return launch_nt<8>(s, m, x, rows);
	}
}

extern "C" cudaError_t awq_cu_w16_gemv_x(cudaStream_t s, const uint16_t *w, int is_bf16, const float *bias, int n,
					 int k, const float *x, int rows, float *out, const struct awq_cu_xnorm *xn)
{
	if (rows < 1 || rows > AWQ_CU_DECODE_ROWS)
		return cudaErrorInvalidValue;
	const struct awq_cu_xnorm none = {};
	const int fold = xn && (xn->res || xn->xn_sumsq);
	if (fold && (rows > 2 || k % 8 != 0 || (xn->res && (!xn->norm_w || !xn->xn || !xn->sumsq))))
		return cudaErrorInvalidValue;
	if (k % 8 != 0) {
		w16_gemv_scalar_kernel<<<(n + 7) / 8, 256, 0, s>>>(w, is_bf16, bias, n, k, x, rows, out);
		return cudaGetLastError();
	}
	int per_block = W16_WARPS * W16_ROWS;
	dim3 grid((n + per_block - 1) / per_block), block(W16_WARPS * 32);
	if (fold) {
		if (rows == 1)
			w16_gemv_one_kernel<1, true><<<grid, block, 0, s>>>(w, is_bf16, bias, n, k, x, rows, out, *xn);
		else
			w16_gemv_one_kernel<2, true><<<grid, block, 0, s>>>(w, is_bf16, bias, n, k, x, rows, out, *xn);
		return cudaGetLastError();
	}
	switch (rows) {
	case 1: w16_gemv_one_kernel<1><<<grid, block, 0, s>>>(w, is_bf16, bias, n, k, x, rows, out, none); break;
	case 2: w16_gemv_one_kernel<2><<<grid, block, 0, s>>>(w, is_bf16, bias, n, k, x, rows, out, none); break;
	case 3: w16_gemv_one_kernel<3><<<grid, block, 0, s>>>(w, is_bf16, bias, n, k, x, rows, out, none); break;
	case 4: w16_gemv_one_kernel<4><<<grid, block, 0, s>>>(w, is_bf16, bias, n, k, x, rows, out, none); break;
	default: w16_gemv_one_kernel<8><<<grid, block, 0, s>>>(w, is_bf16, bias, n, k, x, rows, out, none); break;
	}
	return cudaGetLastError();
}

extern "C" cudaError_t awq_cu_w16_gemv(cudaStream_t s, const uint16_t *w, int is_bf16, const float *bias, int n, int k,
				       const float *x, int rows, float *out)
{
	return awq_cu_w16_gemv_x(s, w, is_bf16, bias, n, k, x, rows, out, NULL);
}
