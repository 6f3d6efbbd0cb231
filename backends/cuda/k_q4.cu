/* W4A16 matmul on tensor cores with on-the-fly dequantization: out[r][n] = sum_k x[r][k] W[n][k].
 * Weights stay 4-bit in the fragment-ordered layout of struct awq_cu_q4 (the mma A operand = 16
 * output rows), activations are the B operand (8 tokens per n8 tile), f32 accumulation.
 * Decode (rows <= 8): every warp streams its K slice of RT row tiles with 16-byte loads, two batches
 * in flight, and the block's warps reduce through shared memory. With group sizes that are multiples
 * of 64 the mma runs on (q - z) and the f32 result is scaled once per 64-column chunk. Prefill: 128x128 block tiles fed by a
 * cp.async pipeline (plain copies and m16n8k8 on sm_75). */
#include "cu_common.cuh"
#include "cu_kernels.h"

#define DEC_WARPS 8
#define DEC_UNROLL 4

/* Write one warp's accumulators of RT tiles from tile0 (fused SiLU-mul: the pair gate = acc[0],
 * up = acc[1] of interleaved tiles). Rows of tokens 2t, 2t+1; features g, g + 8 of each tile. */
template <int RT>
static __device__ __forceinline__ void q4_epilogue(const struct awq_cu_out &o, float acc[RT][4], int tile0,
						   int token_base, int rows, enum awq_cu_epilogue epi)
{
	int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
	int r0 = token_base + 2 * t;
	if (epi == AWQ_CU_EPI_SILU_MUL) {
		int feat = (tile0 / 2) * 16 + g;
#pragma unroll
		for (int i = 0; i < 4; i++) {
			int row = r0 + (i & 1), f = feat + (i >> 1) * 8;
			if (row < rows && f < o.n[0])
				o.ptr[0][(size_t)row * o.n[0] + f] = silu(acc[0][i]) * acc[1][i];
		}
		return;
	}
#pragma unroll
	for (int r = 0; r < RT; r++) {
		int tile = tile0 + r;
		int s = tile < o.tile_end[0] ? 0 : tile < o.tile_end[1] ? 1 : 2;
		if (s >= o.nseg)
			continue;
		int base = s == 0 ? 0 : o.tile_end[s - 1];
		int feat = (tile - base) * 16 + g;
		float *dst = o.ptr[s];
		const float *bias = o.bias[s];
#pragma unroll
		for (int i = 0; i < 4; i++) {
			int row = r0 + (i & 1), f = feat + (i >> 1) * 8;
			if (row < rows && f < o.n[s])
				dst[(size_t)row * o.n[s] + f] = acc[r][i] + (bias ? bias[f] : 0.0f);
		}
	}
}

/* B fragment of token g at k columns k0+2t, +1 and k0+2t+8, +9 (zero past K or past rows). */
static __device__ __forceinline__ void x_frag(const float *xr, bool ok, int K, int k0, int t, uint32_t &b0,
					      uint32_t &b1)
{
	int ka = k0 + 2 * t, kb = ka + 8;
	float2 va = make_float2(0.f, 0.f), vb = make_float2(0.f, 0.f);
	if (ok && ka < K)
		va = __ldg(reinterpret_cast<const float2 *>(xr + ka));
	if (ok && kb < K)
		vb = __ldg(reinterpret_cast<const float2 *>(xr + kb));
	b0 = pack_half2(va.x, va.y);
	b1 = pack_half2(vb.x, vb.y);
}

/* Weights of DEC_UNROLL chunks and the activation fragments they multiply, loaded together so
 * that neither latency sits on the critical path of the mma that uses them. */
template <int RT>
static __device__ __forceinline__ void q4_load_chunks(const uint4 *const qb[RT], const bool tok[RT], int c, int c1,
						      const float *xr, bool xok, int K, int t, uint4 wv[DEC_UNROLL][RT],
						      uint32_t xb[DEC_UNROLL][4][2])
{
#pragma unroll
	for (int u = 0; u < DEC_UNROLL; u++) {
#pragma unroll
		for (int r = 0; r < RT; r++)
			wv[u][r] = (c + u < c1 && tok[r]) ? ld_stream16(qb[r] + (size_t)(c + u) * 32) : make_uint4(0, 0, 0, 0);
#pragma unroll
		for (int j = 0; j < 4; j++)
			x_frag(xr, xok && c + u < c1, K, (c + u) * 64 + 16 * j, t, xb[u][j][0], xb[u][j][1]);
	}
}

template <int RT, bool G64>
__global__ void __launch_bounds__(DEC_WARPS * 32) q4_gemv_kernel(struct awq_cu_q4 w, const float *__restrict__ x,
								 int rows, struct awq_cu_out out,
								 enum awq_cu_epilogue epi, int staged)
{
	__shared__ float red[DEC_WARPS][RT][4][32];
	extern __shared__ __align__(16) uint8_t dsm[];
	int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
	int tile0 = blockIdx.x * RT;
	/* group parameters, indexed (tile - tile0) * groups + group */
	const uint32_t *gsc = w.scales + (size_t)tile0 * w.groups * 8;
	const uint2 *gz = w.zeros + (size_t)tile0 * w.groups;
	if (staged) {
		uint32_t *s_sc = reinterpret_cast<uint32_t *>(dsm);
		uint2 *s_z = reinterpret_cast<uint2 *>(dsm + (size_t)RT * w.groups * 32);
		q4_stage_groups(w.scales, w.zeros, w.tiles, w.groups, tile0, RT, s_sc, s_z);
		gsc = s_sc;
		gz = s_z;
	}
	int per = (w.chunks + DEC_WARPS - 1) / DEC_WARPS;
	int c0 = warp * per, c1 = min(w.chunks, c0 + per);
	const float *xr = x + (size_t)g * w.k;
	bool xok = g < rows;
	float acc[RT][4];
#pragma unroll
	for (int r = 0; r < RT; r++)
		acc[r][0] = acc[r][1] = acc[r][2] = acc[r][3] = 0.f;
	const uint4 *qb[RT];
	bool tok[RT];
#pragma unroll
	for (int r = 0; r < RT; r++) {
		tok[r] = tile0 + r < w.tiles;
		qb[r] = w.q + ((size_t)(tok[r] ? tile0 + r : 0) * w.chunks) * 32 + lane;
	}
	/* Software pipeline: the next DEC_UNROLL chunks are in flight while the current ones compute. */
	uint4 wv[DEC_UNROLL][RT], nx[DEC_UNROLL][RT];
	uint32_t xb[DEC_UNROLL][4][2], xn[DEC_UNROLL][4][2];
	q4_load_chunks<RT>(qb, tok, c0, c1, xr, xok, w.k, t, wv, xb);
	for (int c = c0; c < c1; c += DEC_UNROLL) {
		q4_load_chunks<RT>(qb, tok, c + DEC_UNROLL, c1, xr, xok, w.k, t, nx, xn);
#pragma unroll
		for (int u = 0; u < DEC_UNROLL; u++) {
			if (c + u >= c1)
				continue;
			int kc = (c + u) * 64;
			q4_group gp[RT];
			if (G64) {
				float cg[RT][4];
#pragma unroll
				for (int r = 0; r < RT; r++) {
					gp[r] = q4_group_load(gsc, gz, (size_t)(tok[r] ? r : 0) * w.groups + kc / w.group_size, g);
					cg[r][0] = cg[r][1] = cg[r][2] = cg[r][3] = 0.f;
				}
#pragma unroll
				for (int j = 0; j < 4; j++) {
#pragma unroll
					for (int r = 0; r < RT; r++) {
						uint32_t wj = j == 0 ? wv[u][r].x : j == 1 ? wv[u][r].y : j == 2 ? wv[u][r].z : wv[u][r].w;
						uint32_t a[4];
						q4_dequant_noscale(wj, gp[r], a);
						mma_f16(cg[r], a, xb[u][j][0], xb[u][j][1]);
					}
				}
#pragma unroll
				for (int r = 0; r < RT; r++) {
					float sl = __low2float(gp[r].s_lo), sh = __low2float(gp[r].s_hi);
					acc[r][0] = fmaf(cg[r][0], sl, acc[r][0]);
					acc[r][1] = fmaf(cg[r][1], sl, acc[r][1]);
					acc[r][2] = fmaf(cg[r][2], sh, acc[r][2]);
					acc[r][3] = fmaf(cg[r][3], sh, acc[r][3]);
				}
			} else {
#pragma unroll
				for (int j = 0; j < 4; j++) {
					uint32_t b0 = xb[u][j][0], b1 = xb[u][j][1];
#pragma unroll
					for (int r = 0; r < RT; r++) {
						gp[r] = q4_group_load(gsc, gz,
								      (size_t)(tok[r] ? r : 0) * w.groups + (kc + 16 * j) / w.group_size,
								      g);
						uint32_t wj = j == 0 ? wv[u][r].x : j == 1 ? wv[u][r].y : j == 2 ? wv[u][r].z : wv[u][r].w;
						uint32_t a[4];
						q4_dequant(wj, gp[r], a);
						mma_f16(acc[r], a, b0, b1);
					}
				}
			}
		}
#pragma unroll
		for (int u = 0; u < DEC_UNROLL; u++) {
#pragma unroll
			for (int r = 0; r < RT; r++)
				wv[u][r] = nx[u][r];
#pragma unroll
			for (int j = 0; j < 4; j++)
				xb[u][j][0] = xn[u][j][0], xb[u][j][1] = xn[u][j][1];
		}
	}
#pragma unroll
	for (int r = 0; r < RT; r++)
#pragma unroll
		for (int i = 0; i < 4; i++)
			red[warp][r][i][lane] = acc[r][i];
	__syncthreads();
	if (warp != 0)
		return;
#pragma unroll
	for (int r = 0; r < RT; r++)
#pragma unroll
		for (int i = 0; i < 4; i++) {
			float s = 0.f;
			for (int q = 0; q < DEC_WARPS; q++)
				s += red[q][r][i][lane];
			acc[r][i] = s;
		}
	if (epi == AWQ_CU_EPI_SILU_MUL && (RT != 2 || tile0 + 1 >= w.tiles))
		return;
	q4_epilogue<RT>(out, acc, tile0, 0, rows, epi);
}

template <int RT>
static cudaError_t launch_gemv(cudaStream_t s, const struct awq_cu_q4 *w, const float *x, int rows,
			       const struct awq_cu_out *out, enum awq_cu_epilogue epi)
{
	dim3 grid((w->tiles + RT - 1) / RT);
	size_t smem = (size_t)RT * w->groups * 40;
	int staged = smem <= 32768;
	smem = staged ? smem : 0;
	if (w->group_size % 64 == 0)
		q4_gemv_kernel<RT, true><<<grid, DEC_WARPS * 32, smem, s>>>(*w, x, rows, *out, epi, staged);
	else
		q4_gemv_kernel<RT, false><<<grid, DEC_WARPS * 32, smem, s>>>(*w, x, rows, *out, epi, staged);
	return cudaGetLastError();
}

extern "C" cudaError_t awq_cu_q4_gemv(cudaStream_t s, const struct awq_cu_q4 *w, const float *x, int rows,
				      const struct awq_cu_out *out, enum awq_cu_epilogue epi, int sm_count)
{
	if (rows < 1 || rows > AWQ_CU_DECODE_ROWS)
		return cudaErrorInvalidValue;
	/* Two tiles per warp halve the activation re-reads; one keeps small matrices spread over the SMs. */
	if (epi == AWQ_CU_EPI_SILU_MUL || w->tiles >= sm_count)
		return launch_gemv<2>(s, w, x, rows, out, epi);
	return launch_gemv<1>(s, w, x, rows, out, epi);
}

/* ---- prefill GEMM: block 128 output features x 16*NT tokens, 8 warps (4 along n, 2 along tokens) ---- */
#define GM_TILES 8
#define GM_W_STAGE (GM_TILES * 32 * 4) /* words */

static __device__ __forceinline__ int swz(int row, int chunk)
{
	return row * 64 + ((chunk ^ (row & 7)) << 3);
}

template <int NT>
static __device__ __forceinline__ void gm_load(const struct awq_cu_q4 &w, const uint16_t *x16, int rows, int tile0,
					       int tok0, int c, uint32_t *ws, uint16_t *xs)
{
	int tid = threadIdx.x;
	{
		int tile = tid >> 5, lane = tid & 31;
		bool ok = tile0 + tile < w.tiles && c < w.chunks;
		const uint4 *src = w.q + ((size_t)(ok ? tile0 + tile : 0) * w.chunks + (ok ? c : 0)) * 32 + lane;
		cp16(ws + (tile * 32 + lane) * 4, src, ok);
	}
#pragma unroll
	for (int i = 0; i < NT / 2; i++) {
		int idx = tid + i * 256, row = idx >> 3, ch = idx & 7;
		int k = c * 64 + ch * 8;
		bool ok = tok0 + row < rows && k < w.k;
		const uint16_t *src = x16 + (ok ? (size_t)(tok0 + row) * w.k + k : 0);
		cp16(xs + swz(row, ch), src, ok);
	}
}

template <int STAGES, int NT, bool G64>
__global__ void __launch_bounds__(256, NT == 4 ? 2 : 1) q4_gemm_kernel(struct awq_cu_q4 w,
								       const uint16_t *__restrict__ x16, int rows,
								       struct awq_cu_out out, enum awq_cu_epilogue epi,
								       int staged)
{
	const int x_stage = 16 * NT * 64; /* halves */
	extern __shared__ __align__(16) uint8_t smem[];
	uint32_t *ws = reinterpret_cast<uint32_t *>(smem);
	uint16_t *xs = reinterpret_cast<uint16_t *>(smem + STAGES * GM_W_STAGE * 4);
	int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2;
	int wm = warp & 3, wn = warp >> 2;
	int tile0 = blockIdx.x * GM_TILES, tok0 = blockIdx.y * 16 * NT;
	const uint32_t *gsc = w.scales + (size_t)tile0 * w.groups * 8;
	const uint2 *gz = w.zeros + (size_t)tile0 * w.groups;
	if (staged) {
		uint8_t *p = smem + STAGES * (GM_W_STAGE * 4 + x_stage * 2);
		uint32_t *s_sc = reinterpret_cast<uint32_t *>(p);
		uint2 *s_z = reinterpret_cast<uint2 *>(p + (size_t)GM_TILES * w.groups * 32);
		q4_stage_groups(w.scales, w.zeros, w.tiles, w.groups, tile0, GM_TILES, s_sc, s_z);
		gsc = s_sc;
		gz = s_z;
	}
	float acc[2][NT][4];
#pragma unroll
	for (int r = 0; r < 2; r++)
#pragma unroll
		for (int n = 0; n < NT; n++)
			acc[r][n][0] = acc[r][n][1] = acc[r][n][2] = acc[r][n][3] = 0.f;
#pragma unroll
	for (int s = 0; s < STAGES - 1; s++) {
		gm_load<NT>(w, x16, rows, tile0, tok0, s, ws + s * GM_W_STAGE, xs + s * x_stage);
		cp_commit();
	}
	int my_tile[2] = {tile0 + wm * 2, tile0 + wm * 2 + 1};
	for (int c = 0; c < w.chunks; c++) {
		cp_wait<STAGES - 2>();
		__syncthreads();
		int nc = c + STAGES - 1, ns = nc % STAGES;
		gm_load<NT>(w, x16, rows, tile0, tok0, nc, ws + ns * GM_W_STAGE, xs + ns * x_stage);
		cp_commit();
		const uint32_t *wst = ws + (c % STAGES) * GM_W_STAGE;
		const uint16_t *xst = xs + (c % STAGES) * x_stage;
		uint4 wv[2];
		q4_group gp[2];
#pragma unroll
		for (int r = 0; r < 2; r++) {
			wv[r] = *reinterpret_cast<const uint4 *>(wst + ((wm * 2 + r) * 32 + lane) * 4);
			if (G64) {
				int tl = my_tile[r] < w.tiles ? my_tile[r] - tile0 : 0;
				gp[r] = q4_group_load(gsc, gz, (size_t)tl * w.groups + c * 64 / w.group_size, g);
			}
		}
#pragma unroll
		for (int j = 0; j < 4; j++) {
			uint32_t a[2][4];
#pragma unroll
			for (int r = 0; r < 2; r++) {
				if (!G64) {
					int tl = my_tile[r] < w.tiles ? my_tile[r] - tile0 : 0;
					gp[r] = q4_group_load(gsc, gz, (size_t)tl * w.groups + (c * 64 + 16 * j) / w.group_size, g);
				}
				uint32_t wj = j == 0 ? wv[r].x : j == 1 ? wv[r].y : j == 2 ? wv[r].z : wv[r].w;
				q4_dequant(wj, gp[r], a[r]);
			}
#pragma unroll
			for (int np = 0; np < NT / 2; np++) {
				uint32_t b[4];
				int mat = lane >> 3, row = wn * 8 * NT + np * 16 + (lane & 7) + (mat >> 1) * 8;
				ldmatrix_x4(b, xst + swz(row, 2 * j + (mat & 1)));
#pragma unroll
				for (int r = 0; r < 2; r++) {
					mma_f16(acc[r][2 * np], a[r], b[0], b[1]);
					mma_f16(acc[r][2 * np + 1], a[r], b[2], b[3]);
				}
			}
		}
	}
	cp_wait<0>();
#pragma unroll
	for (int n = 0; n < NT; n++) {
		float a2[2][4];
#pragma unroll
		for (int r = 0; r < 2; r++)
#pragma unroll
			for (int i = 0; i < 4; i++)
				a2[r][i] = acc[r][n][i];
		int tb = tok0 + wn * 8 * NT + n * 8;
		if (epi != AWQ_CU_EPI_SILU_MUL || my_tile[1] < w.tiles)
			q4_epilogue<2>(out, a2, my_tile[0], tb, rows, epi);
	}
}

template <int STAGES, int NT, bool G64>
static cudaError_t launch_gemm3(cudaStream_t s, const struct awq_cu_q4 *w, const uint16_t *x16, int rows,
				const struct awq_cu_out *out, enum awq_cu_epilogue epi)
{
	size_t smem = (size_t)STAGES * (GM_W_STAGE * 4 + 16 * NT * 64 * 2);
	size_t params = (size_t)GM_TILES * w->groups * 40;
	int dev = 0, optin = 48 * 1024;
	if (cudaGetDevice(&dev) == cudaSuccess)
		cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
	int staged = smem + params <= (size_t)optin;
	smem += staged ? params : 0;
	dim3 grid((w->tiles + GM_TILES - 1) / GM_TILES, (rows + 16 * NT - 1) / (16 * NT));
	cudaError_t e = cudaFuncSetAttribute(q4_gemm_kernel<STAGES, NT, G64>, cudaFuncAttributeMaxDynamicSharedMemorySize,
					     (int)smem);
	if (e != cudaSuccess)
		return e;
	q4_gemm_kernel<STAGES, NT, G64><<<grid, 256, smem, s>>>(*w, x16, rows, *out, epi, staged);
	return cudaGetLastError();
}

template <int STAGES, int NT>
static cudaError_t launch_gemm2(cudaStream_t s, const struct awq_cu_q4 *w, const uint16_t *x16, int rows,
				const struct awq_cu_out *out, enum awq_cu_epilogue epi)
{
	if (w->group_size % 64 == 0)
		return launch_gemm3<STAGES, NT, true>(s, w, x16, rows, out, epi);
	return launch_gemm3<STAGES, NT, false>(s, w, x16, rows, out, epi);
}

extern "C" cudaError_t awq_cu_q4_gemm(cudaStream_t s, const struct awq_cu_q4 *w, const uint16_t *x16, int rows,
				      const struct awq_cu_out *out, enum awq_cu_epilogue epi, int cc_major, int sm_count)
{
	/* 128-token tiles reuse each dequantized weight over more tokens (measured faster at 512 tokens
	 * even with one block per SM); 64-token tiles when a step has few rows or the wide grid would
	 * leave most SMs idle. */
	long big = (long)((w->tiles + GM_TILES - 1) / GM_TILES) * ((rows + 127) / 128);
	int wide = rows > 64 && big >= sm_count / 2;
	if (cc_major >= 8)
		return wide ? launch_gemm2<4, 8>(s, w, x16, rows, out, epi) : launch_gemm2<4, 4>(s, w, x16, rows, out, epi);
	return wide ? launch_gemm2<2, 8>(s, w, x16, rows, out, epi) : launch_gemm2<2, 4>(s, w, x16, rows, out, epi);
}
