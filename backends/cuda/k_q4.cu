/* W4A16 matmul on tensor cores with on-the-fly dequantization: out[r][n] = sum_k x[r][k] W[n][k].
 * Weights stay 4-bit in the fragment-ordered layout of struct awq_cu_q4 (the mma A operand = 16
 * output rows), activations are the B operand (8 tokens per n8 tile), f32 accumulation.
 * Decode (rows <= 8): the streaming kernel q4_gemv2_kernel (1-2 tokens, group sizes that are
 * multiples of 64, sm_80+: cp.async ring per lane, activations staged once per warp as f16
 * fragments, programmatic launch) and the fallback q4_gemv_kernel (every warp streams its K slice of
 * RT row tiles with 16-byte register loads, two batches in flight); both reduce the warps' partial
 * sums through shared memory. With group sizes that are multiples of 64 the fallback's mma runs on
 * (q - z) and its f32 result is scaled once per chunk; the streaming kernel's mma runs on the raw
 * 1024 + q values and zero and scale are applied once per group from the activation sums (see its
 * main loop). Prefill: 128x128 block tiles fed by a cp.async pipeline (plain copies and m16n8k8 on
 * sm_75). */
#include "cu_common.cuh"
#include "cu_kernels.h"

#include <stdio.h>
#include <stdlib.h>

#define DEC_WARPS 8
#define DEC_UNROLL 4

/* The output segment of tile `tile` (0-2; 3 past the last segment's end) and in *lt its tile index
 * within that segment. */
static __device__ __forceinline__ int q4_seg(const struct awq_cu_out &o, int tile, int *lt)
{
	const int s = tile < o.tile_end[0] ? 0 : tile < o.tile_end[1] ? 1 : tile < o.tile_end[2] ? 2 : 3;
	*lt = tile - (s == 0 ? 0 : s == 1 ? o.tile_end[0] : o.tile_end[1]);
	return s;
}

/* Write one warp's accumulators of RT tiles from tile0 (fused SiLU-mul: the pair gate = acc[0],
 * up = acc[1] of interleaved tiles). Rows of tokens 2t, 2t+1; features g, g + 8 of each tile. */
/* AN: the AWQ_CU_EPI_ADD_NORM form compiled in; ROPE: the AWQ_CU_EPI_ROPE_KV form (separate
 * instantiations: compiled into every decode GEMV, that form changed the register allocation of
 * the others and cost ~1% of qwen3 decode, session 24) */
template <int RT, bool AN = false, bool ROPE = false>
static __device__ __forceinline__ void q4_epilogue(const struct awq_cu_out &o, float acc[RT][4], int tile0,
						   int token_base, int rows, enum awq_cu_epilogue epi,
						   const float *epi_s = nullptr, int pos0 = 0)
{
	int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
	int r0 = token_base + 2 * t;
	if (ROPE && epi == AWQ_CU_EPI_ROPE_KV) {
		/* q, k, v of a fused projection (three segments, whole heads of hd rows): the q and k rows
		 * of tile j of a head are stored as the pairs (8 j + g, 8 j + g + hd / 2) of the
		 * rotate-half RoPE (awq_rope_perm_src), so acc[r][i] and acc[r][i + 2] are one pair of
		 * token r0 + i; v's rows g, g + 8 are dims 16 j + g and + 8. The arithmetic is the prep
		 * kernel's (attn_prep_kernel; sin and cos from rope_sincos): RoPE in f32 on the sum plus
		 * bias, then q as f32, k and v as f16 cache rows of position pos0 + token. */
		const struct awq_cu_rope_kv &rk = o.rk;
		const int hd = rk.hd, tph = hd / 16, half = hd / 2;
#pragma unroll
		for (int r = 0; r < RT; r++) {
			int lt;
			const int s = q4_seg(o, tile0 + r, &lt);
			if (s > 2)
				continue;
			const int head = lt / tph, j = lt % tph, n = cu_sel3(o.n, s);
			const int da = s < 2 ? 8 * j + g : 16 * j + g, db = s < 2 ? da + half : da + 8;
			const float *bias = cu_sel3(o.bias, s);
			const float ba = bias ? bias[lt * 16 + g] : 0.f, bb = bias ? bias[lt * 16 + g + 8] : 0.f;
			const float *freq = s == 0 ? rk.q_freq : s == 1 ? rk.k_freq : nullptr;
			const float fr = freq ? freq[da] : 0.f;
#pragma unroll
			for (int i = 0; i < 2; i++) {
				const int row = r0 + i;
				if (row >= rows)
					continue;
				float lo = acc[r][i] + ba, hi = acc[r][i + 2] + bb;
				if (freq) {
					float sn, cs;
					rope_sincos((float)(pos0 + row) * fr, &sn, &cs);
					const float l2 = lo * cs - hi * sn;
					hi = hi * cs + lo * sn;
					lo = l2;
				}
				if (s == 0) {
					float *q = o.ptr[0] + (size_t)row * n + head * hd;
					q[da] = lo;
					q[db] = hi;
				} else {
					uint16_t *c = (s == 1 ? rk.kc : rk.vc) + ((size_t)(pos0 + row) * (n / hd) + head) * hd;
					c[da] = __half_as_ushort(__float2half_rn(lo));
					c[db] = __half_as_ushort(__float2half_rn(hi));
				}
			}
		}
		return;
	}
	if (AN && epi == AWQ_CU_EPI_ADD_NORM) {
		/* h = res + W x, xn = h * norm_w, and the block's sum of h^2 per token: lanes of one t hold
		 * tokens 2t, 2t + 1, their g the tile's features g and g + 8, so the sum runs over the lane
		 * bits of g (xor 4, 8, 16). res and norm_w come from epi_s ([token][RT * 16] then
		 * [RT * 16], copied at start-up) when given, else from global memory. */
		const int n = o.n[0], ntiles = o.tile_end[0];
		float ss[2] = {0.f, 0.f};
#pragma unroll
		for (int r = 0; r < RT; r++) {
			int tile = tile0 + r;
			if (tile >= ntiles) /* warp-uniform */
				continue;
#pragma unroll
			for (int i = 0; i < 4; i++) {
				int row = r0 + (i & 1), lf = r * 16 + g + (i >> 1) * 8, f = tile0 * 16 + lf;
				if (row < rows && f < n) {
					size_t e = (size_t)row * n + f;
					float rv = epi_s ? epi_s[row * RT * 16 + lf] : o.nrm.res[e];
					float wv = epi_s ? epi_s[2 * RT * 16 + lf] : o.nrm.norm_w[f];
					float h = acc[r][i] + (o.bias[0] ? o.bias[0][f] : 0.0f) + rv;
					o.ptr[0][e] = h;
					o.nrm.xn[e] = h * wv;
					ss[i & 1] += h * h;
				}
			}
		}
#pragma unroll
		for (int off = 4; off < 32; off <<= 1) {
			ss[0] += __shfl_xor_sync(0xffffffffu, ss[0], off);
			ss[1] += __shfl_xor_sync(0xffffffffu, ss[1], off);
		}
		if (g == 0) {
			if (r0 < rows)
				atomicAdd(o.nrm.sumsq + r0, ss[0]);
			if (r0 + 1 < rows)
				atomicAdd(o.nrm.sumsq + r0 + 1, ss[1]);
		}
		if (blockIdx.x == 0 && lane < rows && o.nrm.sumsq_clear)
			o.nrm.sumsq_clear[lane] = 0.f;
		return;
	}
	if (epi == AWQ_CU_EPI_SILU_MUL) {
		int feat = (tile0 / 2) * 16 + g;
#pragma unroll
		for (int i = 0; i < 4; i++) {
			int row = r0 + (i & 1), f = feat + (i >> 1) * 8;
			if (row < rows && f < o.n[0]) {
				const float v = silu(acc[0][i]) * acc[1][i];
				o.ptr[0][(size_t)row * o.n[0] + f] = v;
				if (o.o16) /* the down projection's f16 input (XH) */
					o.o16[(size_t)row * o.n[0] + f] = to16_one(v, 0);
			}
		}
		return;
	}
#pragma unroll
	for (int r = 0; r < RT; r++) {
		int lt;
		const int s = q4_seg(o, tile0 + r, &lt);
		if (s >= o.nseg)
			continue;
		/* cu_sel3, not o.ptr[s]: no local-memory copy of the parameter struct */
		int feat = lt * 16 + g;
		float *dst = cu_sel3(o.ptr, s);
		const float *bias = cu_sel3(o.bias, s);
		const int n = cu_sel3(o.n, s);
#pragma unroll
		for (int i = 0; i < 4; i++) {
			int row = r0 + (i & 1), f = feat + (i >> 1) * 8;
			if (row < rows && f < n)
				dst[(size_t)row * n + f] = acc[r][i] + (bias ? bias[f] : 0.0f);
		}
	}
}

/* B fragment of token g at k columns k0+2t, +1 and k0+2t+8, +9 (zero past K or past rows). */
static __device__ __forceinline__ void x_frag(const float *xr, bool ok, int K, int k0, int t, float sc, uint32_t &b0,
					      uint32_t &b1)
{
	int ka = k0 + 2 * t, kb = ka + 8;
	float2 va = make_float2(0.f, 0.f), vb = make_float2(0.f, 0.f);
	if (ok && ka < K)
		va = __ldg(reinterpret_cast<const float2 *>(xr + ka));
	if (ok && kb < K)
		vb = __ldg(reinterpret_cast<const float2 *>(xr + kb));
	b0 = pack_half2(va.x * sc, va.y * sc);
	b1 = pack_half2(vb.x * sc, vb.y * sc);
}

/* The activation scale of token `tok` (1 unless the input is an unnormalised xn): 1 / RMS from the
 * producer's sum of squares, as add_rmsnorm_kernel forms it. */
static __device__ __forceinline__ float xn_scale_of(const struct awq_cu_out &o, int k, int tok)
{
	return o.nrm.xn_sumsq ? rsqrtf(o.nrm.xn_sumsq[tok] / (float)k + o.nrm.xn_eps) : 1.f;
}

/* Weights of DEC_UNROLL chunks and the activation fragments they multiply, loaded together so
 * that neither latency sits on the critical path of the mma that uses them. */
template <int RT>
static __device__ __forceinline__ void q4_load_chunks(const uint4 *const qb[RT], const bool tok[RT], int c, int c1,
						      const float *xr, bool xok, int K, int t, float xsc, uint4 wv[DEC_UNROLL][RT],
						      uint32_t xb[DEC_UNROLL][4][2])
{
#pragma unroll
	for (int u = 0; u < DEC_UNROLL; u++) {
#pragma unroll
		for (int r = 0; r < RT; r++)
			wv[u][r] = (c + u < c1 && tok[r]) ? ld_stream16(qb[r] + (size_t)(c + u) * 32) : make_uint4(0, 0, 0, 0);
#pragma unroll
		for (int j = 0; j < 4; j++)
			x_frag(xr, xok && c + u < c1, K, (c + u) * 64 + 16 * j, t, xsc, xb[u][j][0], xb[u][j][1]);
	}
}

template <int RT, bool G64, bool ROPE = false>
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
	const float xsc = g < rows ? xn_scale_of(out, w.k, g) : 1.f;
	q4_load_chunks<RT>(qb, tok, c0, c1, xr, xok, w.k, t, xsc, wv, xb);
	for (int c = c0; c < c1; c += DEC_UNROLL) {
		q4_load_chunks<RT>(qb, tok, c + DEC_UNROLL, c1, xr, xok, w.k, t, xsc, nx, xn);
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
						uint32_t wj = word_of(wv[u][r], j);
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
						uint32_t wj = word_of(wv[u][r], j);
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
	/* the position of AWQ_CU_EPI_ROPE_KV (written before the step's first kernel), loaded across the
	 * barrier */
	const int pos0 = ROPE && epi == AWQ_CU_EPI_ROPE_KV && warp == 0 ? __ldg(out.rk.d_pos) : 0;
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
	q4_epilogue<RT, true, ROPE>(out, acc, tile0, 0, rows, epi, nullptr, pos0);
}

template <int RT>
static cudaError_t launch_gemv(cudaStream_t s, const struct awq_cu_q4 *w, const float *x, int rows,
			       const struct awq_cu_out *out, enum awq_cu_epilogue epi)
{
	dim3 grid((w->tiles + RT - 1) / RT);
	size_t smem = (size_t)RT * w->groups * 40;
	int staged = smem <= 32768;
	smem = staged ? smem : 0;
	const bool rope = epi == AWQ_CU_EPI_ROPE_KV;
	if (w->group_size % 64 == 0 && rope)
		q4_gemv_kernel<RT, true, true><<<grid, DEC_WARPS * 32, smem, s>>>(*w, x, rows, *out, epi, staged);
	else if (w->group_size % 64 == 0)
		q4_gemv_kernel<RT, true><<<grid, DEC_WARPS * 32, smem, s>>>(*w, x, rows, *out, epi, staged);
	else if (rope)
		q4_gemv_kernel<RT, false, true><<<grid, DEC_WARPS * 32, smem, s>>>(*w, x, rows, *out, epi, staged);
	else
		q4_gemv_kernel<RT, false><<<grid, DEC_WARPS * 32, smem, s>>>(*w, x, rows, *out, epi, staged);
	return cudaGetLastError();
}

static int try_gemv2(cudaStream_t s, const struct awq_cu_q4 *w, const float *x, int rows, const struct awq_cu_out *out,
		     enum awq_cu_epilogue epi, int sm_count, cudaError_t *err);

static struct awq_cu_gemv_choice v2_last; /* awq_cu_q4_gemv_last */

extern "C" void awq_cu_q4_gemv_last(struct awq_cu_gemv_choice *c)
{
	*c = v2_last;
}

extern "C" cudaError_t awq_cu_q4_gemv(cudaStream_t s, const struct awq_cu_q4 *w, const float *x, int rows,
				      const struct awq_cu_out *out, enum awq_cu_epilogue epi, int sm_count)
{
	if (rows < 1 || rows > AWQ_CU_DECODE_ROWS)
		return cudaErrorInvalidValue;
	/* the producer-epilogue norm and its readers: one or two tokens (the XR form above two does
	 * not take them), one output segment, every pointer set */
	if ((epi == AWQ_CU_EPI_ADD_NORM || out->nrm.xn_sumsq) && rows > 2)
		return cudaErrorInvalidValue;
	/* a producer reading a fold's xn would clear the accumulator its own blocks read (cuda_fuse.c
	 * plans none) */
	if (epi == AWQ_CU_EPI_ADD_NORM && out->nrm.xn_sumsq)
		return cudaErrorInvalidValue;
	if (epi == AWQ_CU_EPI_ADD_NORM && (out->nseg != 1 || !out->nrm.res || !out->nrm.norm_w || !out->nrm.xn || !out->nrm.sumsq ||
					   out->tile_end[0] != w->tiles || out->n[0] % 4))
		return cudaErrorInvalidValue;
	/* the RoPE / KV-cache epilogue: three segments of whole heads, every pointer set */
	if (epi == AWQ_CU_EPI_ROPE_KV) {
		const struct awq_cu_rope_kv &rk = out->rk;
		const int tph = rk.hd / 16;
		if (out->nseg != 3 || rk.hd < 16 || rk.hd % 16 || !out->ptr[0] || !rk.kc || !rk.vc || !rk.d_pos ||
		    !rk.q_freq || !rk.k_freq || out->tile_end[2] != w->tiles || out->n[0] % rk.hd || out->n[1] % rk.hd ||
		    out->n[2] != out->n[1] || out->tile_end[0] * 16 != out->n[0] ||
		    (out->tile_end[1] - out->tile_end[0]) * 16 != out->n[1] || out->tile_end[0] % tph)
			return cudaErrorInvalidValue;
	}
	cudaError_t e2;
	v2_last = awq_cu_gemv_choice{0, 0, 0, 0, 0};
	if (try_gemv2(s, w, x, rows, out, epi, sm_count, &e2))
		return e2;
	/* Two tiles per warp halve the activation re-reads; one keeps small matrices spread over the SMs. */
	if (epi == AWQ_CU_EPI_SILU_MUL || w->tiles >= sm_count)
		return launch_gemv<2>(s, w, x, rows, out, epi);
	return launch_gemv<1>(s, w, x, rows, out, epi);
}

/* ---- decode GEMV, streaming version (group sizes that are multiples of 64, x fits in shared memory) ----
 * One block per RT tiles (16 output rows each); its KW warps split K into contiguous chunk ranges.
 * Every lane streams its 16-byte share of each chunk with cp.async into a lane-private ring of S
 * stages in shared memory (no register cost for the bytes in flight, no barrier: each lane reads
 * only what it copied), and the warp's activation slice is converted once to f16 in B-fragment order
 * (two 16-byte shared loads per chunk instead of eight 8-byte global loads and eight conversions).
 * The mma runs on the raw 1024 + q (1024 + 16 q) values, exact in f16, into a per-group f32
 * accumulator; a fifth mma sums the activations, and zero and scale are applied once per group.
 * Warps reduce through shared memory; the block's first warp runs the common epilogue.
 * Launched with programmatic dependent launch where available: weights, scales and zeros are read
 * before griddepcontrol.wait (they never change after load; the weights must not be written by the
 * kernel launched just before), the activations and the output only after it, so a decode step's
 * weight prefetch overlaps the tail of the kernel before it. */
#define V2_MAX_WARPS 16
#define V2_GREG 4 /* group-parameter loads per thread held in registers at startup: ne <= 4 x threads
		    * (K = 14336 over 16 warps: 1792 of 2048) needs no serial loop after the barrier */

static __device__ __forceinline__ void v2_cp16(uint32_t dst, const void *src)
{
#if __CUDA_ARCH__ >= 800
	asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(dst), "l"(src) : "memory");
#endif
}

/* 8-byte global -> shared copy (through L1: the activations, written by the kernel before). */
static __device__ __forceinline__ void v2_cp8(uint32_t dst, const void *src)
{
#if __CUDA_ARCH__ >= 800
	asm volatile("cp.async.ca.shared.global [%0], [%1], 8;" ::"r"(dst), "l"(src) : "memory");
#endif
}


/* 16-byte copy of 16 (valid) or 0 bytes, the rest zero-filled: an f16 activation row that does not
 * exist (tokens past rows) becomes zeros without a global read. */
static __device__ __forceinline__ void v2_cp16z(uint32_t dst, const void *src, bool valid)
{
#if __CUDA_ARCH__ >= 800
	asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(dst), "l"(src), "r"(valid ? 16 : 0) : "memory");
#endif
}

/* Four 8 x 8 f16 matrices from shared memory (ordered after the cp.async waits: "memory"). */
static __device__ __forceinline__ uint4 v2_ldsm4(uint32_t a)
{
	uint4 r;
	asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
		     : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
		     : "r"(a)
		     : "memory");
	return r;
}

static __device__ __forceinline__ float4 v2_lds16f(uint32_t a)
{
	float4 r;
	asm volatile("ld.shared.v4.f32 {%0,%1,%2,%3}, [%4];" : "=f"(r.x), "=f"(r.y), "=f"(r.z), "=f"(r.w) : "r"(a) : "memory");
	return r;
}

static __device__ __forceinline__ uint4 v2_lds16(uint32_t a)
{
	uint4 r;
	asm volatile("ld.shared.v4.u32 {%0,%1,%2,%3}, [%4];" : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w) : "r"(a) : "memory");
	return r;
}

/* XR (3-8 tokens): the activations travel in the ring with the weights instead of being staged
 * for the warp's whole K slice up front. Staged, 8 tokens of a 14336-wide row are 229 KB of f16 per
 * block, more than shared memory holds, and the up-front batches of loads are round trips one after
 * another; in the ring each chunk's activations are one more cp.async group member. Each lane of
 * tokens g < rows copies the 16 f32 values it multiplies (steps 0..3: columns 16j + 2t, + 1 and
 * 16j + 8 + 2t, + 1, as 8-byte copies) into its own 64 bytes of the slot, so that, as for the
 * weights, a lane reads only what it copied (no barrier); the four 16-byte pieces are XOR-swizzled
 * by lane so that the warp's 16-byte reads are free of bank conflicts. */
#define V2_XR_SLOT 2048 /* bytes of activations per ring slot and warp (32 lanes x 64) */

/* XH (2-8 tokens; one with AWQ_CUDA_XH_ROWS=1): XR with the activations already in f16
 * (awq_cu_out.x16, written by their producer alongside the f32 values): half the bytes in the ring
 * (8 tokens x 64 k x 2 B = 1 KB per slot and warp, the weights' 1 KB at RT = 2, against 2 KB of
 * f32) and no conversion in the loop. H200, 4096 x 14336 at 8 tokens: 11.27 us against XR's 20.78
 * (one token: 11.10; session 19). A token's 64 values of a chunk are eight 16-byte segments, copied
 * by its four lanes g (two each, tokens past rows zero-filled) to [token][segment ^ token]
 * (XOR-swizzled so that ldmatrix's eight row reads of a segment hit distinct banks); ldmatrix.x4
 * then gives each lane its B fragments of two k16 steps (rows: tokens, 8 k per segment) in one
 * instruction. Lanes read each other's copies, so a __syncwarp orders the wait before the read
 * and the read before the slot's refill. */
#define V2_XH_SLOT 1024

/* XN: the producer-epilogue norm's forms compiled in, a mask: XN_READ the reader's scale (x is an
 * unnormalised xn), XN_EPI the producer's AWQ_CU_EPI_ADD_NORM epilogue. Separate instantiations,
 * because one with both ran its main loop with ~4% more instructions (address arithmetic) than the
 * plain one: the gate/up reader took 20.2 us instead of 19.2 (ncu, session 13). */
#define XN_READ 1
#define XN_EPI 2
#define XN_ROPE 4 /* the AWQ_CU_EPI_ROPE_KV epilogue (q4_epilogue's ROPE) */
template <int RT, int S, bool XR = false, int XN = 0, bool XH = false>
__global__ void __launch_bounds__(V2_MAX_WARPS * 32, 1) q4_gemv2_kernel(struct awq_cu_q4 w, const float *__restrict__ x,
									 int rows, struct awq_cu_out out,
									 enum awq_cu_epilogue epi, int per)
{
#if __CUDA_ARCH__ >= 800
	extern __shared__ __align__(16) uint8_t dsm[];
	const int kw = blockDim.x >> 5;
	const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
	const int tile0 = blockIdx.x * RT;
	const int c0 = warp * per, c1 = min(w.chunks, c0 + per), nc = max(c1 - c0, 0);
	constexpr int XSLOT = XH ? V2_XH_SLOT : V2_XR_SLOT;
	const size_t warp_bytes = XR ? (size_t)S * (RT * 512 + XSLOT) : (size_t)S * RT * 512 + (size_t)per * rows * 128;
	uint8_t *wbase = dsm + warp * warp_bytes;
	const uint32_t ring = smem_addr(wbase) + lane * 16;
	uint32_t *xs = reinterpret_cast<uint32_t *>(wbase + S * RT * 512);
	float4 *s_corr = reinterpret_cast<float4 *>(dsm + kw * warp_bytes);

	/* Startup without a chain of round trips: the block's group parameters are loaded first (ahead of
	 * the weight stream in the memory queues) into registers, then the weight ring is filled, then
	 * (after the programmatic-launch wait) all of the warp's activation loads are issued at once, and
	 * only then are the parameters converted to their correction form (q4_corr_make, one float4 per tile,
	 * group and row pair g) and the block synchronised. Element e = (tile * groups + group) * 8 + g:
	 * its scale word is scales[tile0 * groups * 8 + e], its zeros zeros[tile0 * groups + e / 8]. */
	const int ntl = min(RT, w.tiles - tile0);
	const int ne = ntl * w.groups * 8;
	const uint32_t *ssrc = w.scales + (size_t)tile0 * w.groups * 8;
	const uint2 *zsrc = w.zeros + (size_t)tile0 * w.groups;
	uint32_t gsr[V2_GREG];
	uint2 gzr[V2_GREG];
#pragma unroll
	for (int q = 0; q < V2_GREG; q++) {
		int i = threadIdx.x + q * blockDim.x;
		gsr[q] = i < ne ? __ldg(ssrc + i) : 0u;
		gzr[q] = i < ne ? __ldg(zsrc + i / 8) : make_uint2(0, 0);
	}

	/* Tiles past the end (odd tile counts with RT = 2) repeat the last tile; the epilogue drops them. */
	const uint4 *qb[RT];
#pragma unroll
	for (int r = 0; r < RT; r++)
		qb[r] = w.q + ((size_t)min(tile0 + r, w.tiles - 1) * w.chunks + c0) * 32 + lane;
	/* XR: slot s holds the weights [RT][512] then the activations; the weights of all S slots go
	 * out as one cp.async group before the wait, each slot's activations as a group after it, so
	 * that chunk i's weights and activations are in group i + 1 and wait_group<S - 1> still covers
	 * them (refills commit one group per chunk, as before) */
	const uint32_t slot = XR ? RT * 512 + XSLOT : RT * 512;
	const int xsw = (lane >> 1) & 3; /* XR: this lane's swizzle of its four 16-byte pieces */
	const float *xl = x + (size_t)(g < rows ? g : 0) * w.k + (size_t)c0 * 64 + 2 * t; /* XR: chunk c0, step 0 */
	const uint32_t xslot = smem_addr(wbase) + RT * 512 + lane * 64;
	/* XH: this lane copies token g's segments 2t, 2t + 1 (elements 16t .. 16t + 15 of the chunk) and
	 * reads, through ldmatrix, row (lane & 7) of matrix lane >> 3: token lane & 7, segment lane >> 3
	 * (+ 4 for the second read) */
	const uint16_t *xh = XH ? out.x16 + (size_t)(g < rows ? g : 0) * w.k + (size_t)c0 * 64 + 16 * t : nullptr;
	const uint32_t xh_dst = smem_addr(wbase) + RT * 512 + g * 128, xh_sw = (uint32_t)g;
	const uint32_t xh_src = smem_addr(wbase) + RT * 512 + (lane & 7) * 128;
	const uint32_t xh_rd0 = xh_src + (((uint32_t)(lane >> 3) ^ (lane & 7)) << 4);
	const uint32_t xh_rd1 = xh_src + (((uint32_t)(4 + (lane >> 3)) ^ (lane & 7)) << 4);
#pragma unroll
	for (int s = 0; s < S; s++) {
		if (s < nc)
#pragma unroll
			for (int r = 0; r < RT; r++)
				v2_cp16(ring + (XR ? s * slot + r * 512 : (s * RT + r) * 512), qb[r] + (size_t)s * 32);
		if (!XR)
			v2_commit();
	}
	if (XR)
		v2_commit();
	pdl_wait();    /* everything above reads weights only */
	pdl_trigger(); /* all blocks launched: the next kernel may start streaming its weights */
	/* AWQ_CU_EPI_ADD_NORM: warp 0 copies the residual rows and norm weights of the block's tiles to
	 * shared memory (after s_corr: [token][RT * 16], then [RT * 16]) now, so that the epilogue does
	 * not wait for them; the copies join the first refill's cp.async group (no group of their own,
	 * which would shift the ring's wait_group accounting), and v2_wait<0> completes them. */
	if ((XN & XN_EPI) && epi == AWQ_CU_EPI_ADD_NORM && warp == 0) {
		float *epi_s = reinterpret_cast<float *>(s_corr + (size_t)RT * w.groups * 8);
		const int n = out.n[0], per_row = RT * 4; /* 16-byte pieces per row */
		const int tok = lane / per_row, pc = lane % per_row, f = tile0 * 16 + pc * 4;
		if (f < n) { /* n % 4 == 0: whole pieces */
			if (tok < rows)
				v2_cp16(smem_addr(epi_s + tok * RT * 16 + pc * 4), out.nrm.res + (size_t)tok * n + f);
			if (tok == 0)
				v2_cp16(smem_addr(epi_s + 2 * RT * 16 + pc * 4), out.nrm.norm_w + f);
		}
	}
	if (XH) {
#pragma unroll
		for (int s = 0; s < S; s++) {
			if (s < nc)
#pragma unroll
				for (int h = 0; h < 2; h++)
					v2_cp16z(xh_dst + s * slot + (((2 * t + h) ^ xh_sw) << 4), xh + (size_t)s * 64 + 8 * h,
						 g < rows);
			v2_commit();
		}
	} else if (XR) {
#pragma unroll
		for (int s = 0; s < S; s++) {
			if (s < nc && g < rows)
#pragma unroll
				for (int j = 0; j < 4; j++) {
					uint32_t d = xslot + s * slot + ((j ^ xsw) << 4);
					v2_cp8(d, xl + (size_t)s * 64 + 16 * j);
					v2_cp8(d + 8, xl + (size_t)s * 64 + 16 * j + 8);
				}
			v2_commit();
		}
	}

	/* The warp's activation slice as f16 B fragments: [chunk][token][lane t][8 words], all loads of a
	 * batch in flight at once (16 for one token, 8 otherwise: element e = token * nc + chunk, the float
	 * division is exact at these sizes). */
	if (!XR) {
		const int tt = lane >> 3, ww = lane & 7;
		const int koff = 16 * (ww >> 1) + 2 * tt + 8 * (ww & 1);
		const float *xb0 = x + (size_t)c0 * 64 + koff;
		/* an unnormalised input (xn_sumsq): 1 / RMS of each token from one broadcast load, issued
		 * with the x loads */
		float sc0 = 1.f, sc1 = 1.f, ss0 = 0.f, ss1 = 0.f;
		if ((XN & XN_READ) && out.nrm.xn_sumsq) { /* raw loads here, their use after the x loads below */
			ss0 = out.nrm.xn_sumsq[0];
			ss1 = rows == 2 ? out.nrm.xn_sumsq[1] : 0.f; /* (xn_sumsq is refused above two tokens) */
		}
		if (rows == 1) {
			for (int e0 = 0; e0 < nc; e0 += 16) {
				const float *p = xb0 + (size_t)e0 * 64;
				float2 v[16];
				/* Unconditional loads (chunks past the slice re-read its last one, never stored):
				 * written as "in range ? load : 0", ptxas gave all 16 one register pair, zeroed
				 * and reloaded in turn, so each load waited for the one before (SASS). */
#pragma unroll
				for (int u = 0; u < 16; u++)
					v[u] = __ldg(reinterpret_cast<const float2 *>(p + min(u, nc - 1 - e0) * 64));
				if ((XN & XN_READ) && out.nrm.xn_sumsq) {
					/* after this batch's loads: computed where it is written, the scale was
					 * hoisted above them as loop-invariant (SASS), and its wait for ss0 put a
					 * round trip before the x loads (ncu: +0.5-1.1 us per reader) */
					float t0 = ss0;
					asm volatile("" : "+f"(t0) : "f"(v[15].x));
					sc0 = rsqrtf(t0 / (float)w.k + out.nrm.xn_eps);
				}
#pragma unroll
				for (int u = 0; u < 16; u++)
					if (e0 + u < nc)
						xs[(e0 + u) * 32 + lane] = pack_half2(v[u].x * sc0, v[u].y * sc0);
			}
		} else {
			const int ne = rows * nc;
			const float inv = 1.0f / (float)max(nc, 1);
			for (int e0 = 0; e0 < ne; e0 += 8) {
				float2 v[8];
#pragma unroll
				for (int u = 0; u < 8; u++) { /* unconditional, as for one token */
					int e = min(e0 + u, ne - 1), tok = __float2int_rz(((float)e + 0.5f) * inv), i = e - tok * nc;
					v[u] = __ldg(reinterpret_cast<const float2 *>(xb0 + (size_t)tok * w.k + (size_t)i * 64));
				}
				if ((XN & XN_READ) && out.nrm.xn_sumsq) { /* (as for one token) */
					float t0 = ss0, t1 = ss1;
					asm volatile("" : "+f"(t0), "+f"(t1) : "f"(v[7].x));
					sc0 = rsqrtf(t0 / (float)w.k + out.nrm.xn_eps);
					sc1 = rsqrtf(t1 / (float)w.k + out.nrm.xn_eps);
				}
#pragma unroll
				for (int u = 0; u < 8; u++) {
					int e = e0 + u, tok = __float2int_rz(((float)e + 0.5f) * inv), i = e - tok * nc;
					float sc = tok ? sc1 : sc0;
					if (e < ne)
						xs[(i * rows + tok) * 32 + lane] = pack_half2(v[u].x * sc, v[u].y * sc);
				}
			}
		}
	}
#pragma unroll
	for (int q = 0; q < V2_GREG; q++) {
		int i = threadIdx.x + q * blockDim.x;
		if (i < ne)
			s_corr[i] = q4_corr_make(gsr[q], gzr[q], i & 7);
	}
	for (int i = threadIdx.x + V2_GREG * blockDim.x; i < ne; i += blockDim.x)
		s_corr[i] = q4_corr_make(__ldg(ssrc + i), __ldg(zsrc + i / 8), i & 7);
	__syncthreads(); /* parameters of all warps; also orders each warp's activation stores */

	/* Main loop. The A fragments are the raw exponent-trick values 1024 + q (rows g) and 1024 + 16 q
	 * (rows g + 8): no zero subtraction or scaling per weight, 5 instructions per packed word. A
	 * fifth mma per k16 step, with an all-ones A, accumulates the chunk's activation sums (cx: tokens
	 * 2t, 2t + 1, the f16 values the weights were multiplied with), and the group is corrected once:
	 *   rows g:     s * (cg - (1024 + z) * sum x)          = s * sum (q - z) x
	 *   rows g + 8: s / 16 * (cg - (1024 + 16 z) * sum x)  = s * sum (q - z) x
	 * The offsets cancel in f32 after the mma; each mma's operands are exact in f16. */
	const int cpg = w.group_size / 64;
	float acc[RT][4], cg[RT][4], cx[4];
#pragma unroll
	for (int r = 0; r < RT; r++)
#pragma unroll
		for (int i = 0; i < 4; i++)
			acc[r][i] = cg[r][i] = 0.f;
	cx[0] = cx[1] = cx[2] = cx[3] = 0.f;
	/* warps without chunks (c0 past the end) flush nothing */
	int gleft = cpg - c0 % cpg;
	uint32_t corr = smem_addr(s_corr) + (uint32_t)(((c0 / cpg) * 8 + g) * 16); /* this lane's, group of c0 */
	const uint32_t xaddr = smem_addr(xs) + (uint32_t)((g * 32 + t * 8) * 4);
	const bool xlane = g < rows;
	for (int i0 = 0; i0 < nc; i0 += S) {
#pragma unroll
		for (int sl = 0; sl < S; sl++) {
			const int i = i0 + sl;
			if (i >= nc)
				break;
			v2_wait<S - 1>();
			uint4 wv[RT];
#pragma unroll
			for (int r = 0; r < RT; r++)
				wv[r] = v2_lds16(ring + (XR ? sl * slot + r * 512 : (sl * RT + r) * 512));
			uint4 xa = make_uint4(0, 0, 0, 0), xb = make_uint4(0, 0, 0, 0);
			if (XH) { /* every lane: ldmatrix is warp-wide */
				__syncwarp();
				xa = v2_ldsm4(xh_rd0 + sl * slot);
				xb = v2_ldsm4(xh_rd1 + sl * slot);
				__syncwarp();
			} else if (xlane) {
				if (XR) { /* piece j: b0 and b1 of step j as f32 pairs */
					float4 p[4];
#pragma unroll
					for (int j = 0; j < 4; j++)
						p[j] = v2_lds16f(xslot + sl * slot + ((j ^ xsw) << 4));
					xa = make_uint4(pack_half2(p[0].x, p[0].y), pack_half2(p[0].z, p[0].w),
							pack_half2(p[1].x, p[1].y), pack_half2(p[1].z, p[1].w));
					xb = make_uint4(pack_half2(p[2].x, p[2].y), pack_half2(p[2].z, p[2].w),
							pack_half2(p[3].x, p[3].y), pack_half2(p[3].z, p[3].w));
				} else {
					uint32_t xp = xaddr + (uint32_t)(i * rows) * 128u;
					xa = v2_lds16(xp);
					xb = v2_lds16(xp + 16);
				}
			}
			/* Refill the slot just read (this lane's own bytes, already in registers). */
			if (i + S < nc) {
#pragma unroll
				for (int r = 0; r < RT; r++)
					v2_cp16(ring + (XR ? sl * slot + r * 512 : (sl * RT + r) * 512), qb[r] + (size_t)(i + S) * 32);
				if (XH)
#pragma unroll
					for (int h = 0; h < 2; h++)
						v2_cp16z(xh_dst + sl * slot + (((2 * t + h) ^ xh_sw) << 4),
							 xh + (size_t)(i + S) * 64 + 8 * h, g < rows);
				else if (XR && xlane)
#pragma unroll
					for (int j = 0; j < 4; j++) {
						uint32_t d = xslot + sl * slot + ((j ^ xsw) << 4);
						v2_cp8(d, xl + (size_t)(i + S) * 64 + 16 * j);
						v2_cp8(d + 8, xl + (size_t)(i + S) * 64 + 16 * j + 8);
					}
			}
			v2_commit();
			q4_chunk_mma<RT>(wv, xa, xb, cx, cg);
			if (--gleft == 0 || i + 1 == nc) {
#pragma unroll
				for (int r = 0; r < RT; r++) {
					float4 cr = v2_lds16f(corr + (uint32_t)((tile0 + r < w.tiles ? r : 0) * w.groups * 128));
					acc[r][0] = fmaf(cr.x, cg[r][0], fmaf(-cr.y, cx[0], acc[r][0]));
					acc[r][1] = fmaf(cr.x, cg[r][1], fmaf(-cr.y, cx[1], acc[r][1]));
					acc[r][2] = fmaf(cr.z, cg[r][2], fmaf(-cr.w, cx[0], acc[r][2]));
					acc[r][3] = fmaf(cr.z, cg[r][3], fmaf(-cr.w, cx[1], acc[r][3]));
					cg[r][0] = cg[r][1] = cg[r][2] = cg[r][3] = 0.f;
				}
				cx[0] = cx[1] = cx[2] = cx[3] = 0.f;
				corr += 128;
				gleft = cpg;
			}
		}
	}
	/* the position of AWQ_CU_EPI_ROPE_KV (written before the step's first kernel), loaded across the
	 * reduction */
	const int pos0 = (XN & XN_ROPE) && epi == AWQ_CU_EPI_ROPE_KV && warp == 0 ? __ldg(out.rk.d_pos) : 0;
	v2_wait<0>();
	/* Cross-warp reduction in the warps' own ring space: [RT][4][32] floats per warp (other lanes'
	 * ring bytes: every lane's copies have landed and been read before the barrier). */
	__syncwarp();
	float *red = reinterpret_cast<float *>(wbase);
#pragma unroll
	for (int r = 0; r < RT; r++)
#pragma unroll
		for (int i = 0; i < 4; i++)
			red[(r * 4 + i) * 32 + lane] = acc[r][i];
	__syncthreads();
	for (int e = threadIdx.x; e < RT * 128; e += blockDim.x) {
		float sum = 0.f;
		for (int q = 0; q < kw; q++)
			sum += reinterpret_cast<const float *>(dsm + q * warp_bytes)[e];
		reinterpret_cast<float *>(dsm)[e] = sum; /* warp 0's slot e: read above by this thread only */
	}
	__syncthreads();
	if (warp != 0)
		return;
	const float *tot = reinterpret_cast<const float *>(dsm);
#pragma unroll
	for (int r = 0; r < RT; r++)
#pragma unroll
		for (int i = 0; i < 4; i++)
			acc[r][i] = tot[(r * 4 + i) * 32 + lane];
	if (epi == AWQ_CU_EPI_SILU_MUL && (RT != 2 || tile0 + 1 >= w.tiles))
		return;
	/* (the copies' address formed again here, not kept in registers across the main loop) */
	const float *epi_s = (XN & XN_EPI) && epi == AWQ_CU_EPI_ADD_NORM
				     ? reinterpret_cast<const float *>(reinterpret_cast<const float4 *>(dsm + kw * warp_bytes) +
								       (size_t)RT * w.groups * 8)
				     : nullptr;
	q4_epilogue<RT, (XN & XN_EPI) != 0, (XN & XN_ROPE) != 0>(out, acc, tile0, 0, rows, epi, epi_s, pos0);
#else
	if (rows < 0) { /* references the helpers so that pre-sm_80 passes compile without warnings */
		v2_cp16(0, x);
		v2_cp8(0, x);
		v2_commit();
		v2_wait<0>();
		(void)v2_lds16(0);
		(void)v2_lds16f(0);
		pdl_wait();
		pdl_trigger();
	}
	__trap();
#endif
}

/* Tuning overrides (the micro-benchmark sweeps them; 0 / -1 = the built-in choice). */
static int v2_force_legacy, v2_rt, v2_kw, v2_stages, v2_pdl = -1;

extern "C" void awq_cu_q4_gemv_tune(int legacy, int rt, int kw, int stages, int pdl)
{
	v2_force_legacy = legacy, v2_rt = rt, v2_kw = kw, v2_stages = stages, v2_pdl = pdl;
}

struct v2_dev {
	int cc_major, optin;
};

static v2_dev v2_device(void)
{
	static v2_dev cache[16];
	static int known[16];
	int d = 0;
	if (cudaGetDevice(&d) != cudaSuccess || d < 0 || d >= 16)
		return v2_dev{0, 48 * 1024};
	if (!known[d]) {
		v2_dev v = {0, 48 * 1024};
		cudaDeviceGetAttribute(&v.cc_major, cudaDevAttrComputeCapabilityMajor, d);
		cudaDeviceGetAttribute(&v.optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, d);
		cache[d] = v;
		known[d] = 1;
	}
	return cache[d];
}

template <int RT, int S, bool XR = false, int XN = 0, bool XH = false>
static cudaError_t launch_gemv2(cudaStream_t s, const struct awq_cu_q4 *w, const float *x, int rows,
				const struct awq_cu_out *out, enum awq_cu_epilogue epi, int kw, int per, size_t smem,
				int pdl)
{
	static int attr_set[16]; /* per device: the largest size already allowed */
	int d = 0;
	cudaGetDevice(&d);
	const int known = d >= 0 && d < 16;
	if (!known || attr_set[d] < (int)smem) {
		cudaError_t e = cudaFuncSetAttribute(q4_gemv2_kernel<RT, S, XR, XN, XH>, cudaFuncAttributeMaxDynamicSharedMemorySize,
						     (int)smem);
		if (e != cudaSuccess)
			return e;
		if (known)
			attr_set[d] = (int)smem;
	}
	return awq_cu_launch(q4_gemv2_kernel<RT, S, XR, XN, XH>, dim3((w->tiles + RT - 1) / RT), dim3(kw * 32), smem, s, pdl, *w, x,
			     rows, *out, epi, per);
}

template <int RT, int XN>
static cudaError_t launch_gemv2_xn(int S, cudaStream_t s, const struct awq_cu_q4 *w, const float *x, int rows,
				   const struct awq_cu_out *out, enum awq_cu_epilogue epi, int kw, int per, size_t smem,
				   int pdl)
{
	switch (S) {
	case 2: return launch_gemv2<RT, 2, false, XN>(s, w, x, rows, out, epi, kw, per, smem, pdl);
	case 6: return launch_gemv2<RT, 6, false, XN>(s, w, x, rows, out, epi, kw, per, smem, pdl);
	case 8: return launch_gemv2<RT, 8, false, XN>(s, w, x, rows, out, epi, kw, per, smem, pdl);
	default: return launch_gemv2<RT, 4, false, XN>(s, w, x, rows, out, epi, kw, per, smem, pdl);
	}
}

/* xmode: 0 activations staged up front, 1 f32 activations in the ring (XR), 2 f16 (XH) */
template <int RT>
static cudaError_t launch_gemv2_s(int S, int xmode, cudaStream_t s, const struct awq_cu_q4 *w, const float *x, int rows,
				  const struct awq_cu_out *out, enum awq_cu_epilogue epi, int kw, int per, size_t smem,
				  int pdl)
{
	if (epi == AWQ_CU_EPI_ROPE_KV) { /* the RoPE / KV-cache epilogue's own instantiations */
		if (xmode == 2)
			return S == 2 ? launch_gemv2<RT, 2, true, XN_ROPE, true>(s, w, x, rows, out, epi, kw, per, smem, pdl)
				      : launch_gemv2<RT, 4, true, XN_ROPE, true>(s, w, x, rows, out, epi, kw, per, smem, pdl);
		if (xmode == 1)
			return S == 2 ? launch_gemv2<RT, 2, true, XN_ROPE>(s, w, x, rows, out, epi, kw, per, smem, pdl)
				      : launch_gemv2<RT, 4, true, XN_ROPE>(s, w, x, rows, out, epi, kw, per, smem, pdl);
		return out->nrm.xn_sumsq ? launch_gemv2_xn<RT, XN_READ | XN_ROPE>(S, s, w, x, rows, out, epi, kw, per, smem, pdl)
					 : launch_gemv2_xn<RT, XN_ROPE>(S, s, w, x, rows, out, epi, kw, per, smem, pdl);
	}
	if (xmode == 2 && epi == AWQ_CU_EPI_ADD_NORM) /* f16 activations in the ring, the norm's producer */
		return S == 2 ? launch_gemv2<RT, 2, true, XN_EPI, true>(s, w, x, rows, out, epi, kw, per, smem, pdl)
			      : launch_gemv2<RT, 4, true, XN_EPI, true>(s, w, x, rows, out, epi, kw, per, smem, pdl);
	if (xmode == 2) /* f16 activations in the ring: 2 or 4 stages */
		return S == 2 ? launch_gemv2<RT, 2, true, 0, true>(s, w, x, rows, out, epi, kw, per, smem, pdl)
			      : launch_gemv2<RT, 4, true, 0, true>(s, w, x, rows, out, epi, kw, per, smem, pdl);
	if (xmode == 1) /* f32 activations in the ring: 2 or 4 stages */
		return S == 2 ? launch_gemv2<RT, 2, true>(s, w, x, rows, out, epi, kw, per, smem, pdl)
			      : launch_gemv2<RT, 4, true>(s, w, x, rows, out, epi, kw, per, smem, pdl);
	const int xn = (out->nrm.xn_sumsq ? XN_READ : 0) | (epi == AWQ_CU_EPI_ADD_NORM ? XN_EPI : 0);
	if (xn) /* one or two tokens, one form at a time (awq_cu_q4_gemv) */
		return xn == XN_READ ? launch_gemv2_xn<RT, XN_READ>(S, s, w, x, rows, out, epi, kw, per, smem, pdl)
				     : launch_gemv2_xn<RT, XN_EPI>(S, s, w, x, rows, out, epi, kw, per, smem, pdl);
	switch (S) {
	case 2: return launch_gemv2<RT, 2>(s, w, x, rows, out, epi, kw, per, smem, pdl);
	case 6: return launch_gemv2<RT, 6>(s, w, x, rows, out, epi, kw, per, smem, pdl);
	case 8: return launch_gemv2<RT, 8>(s, w, x, rows, out, epi, kw, per, smem, pdl);
	default: return launch_gemv2<RT, 4>(s, w, x, rows, out, epi, kw, per, smem, pdl);
	}
}

/* In-model launch overrides, for measuring launch choices inside the decode graph (a sweep of the
 * kernel alone misled twice: docs/perf-cuda-notes.md, session 8):
 *   AWQ_CUDA_GEMV="MxK:rt,kw,S;MxK:rt,kw,S..."   e.g. AWQ_CUDA_GEMV="4096x4096:2,8,8"
 * M = output rows of the launch (the fused gate/up: both weights, 2 x intermediate), K = input
 * columns; rt 1-2 (the fused gate/up always 2), kw 1-16 warps, S 2, 4, 6 or 8 ring stages. Read once;
 * a malformed entry is reported on stderr and parsing stops there (the entries before it stay). */
#define V2_MAX_OVR 16
struct v2_ovr {
	int m, k, rt, kw, s;
};
static v2_ovr v2_ovrs[V2_MAX_OVR];
static int v2_novr = -1;

extern "C" int awq_cu_q4_gemv_overrides(const char *spec)
{
	v2_novr = 0;
	const char *e = spec;
	while (e && *e) {
		v2_ovr o;
		int used = 0;
		if (sscanf(e, "%dx%d:%d,%d,%d%n", &o.m, &o.k, &o.rt, &o.kw, &o.s, &used) == 5 && used > 0 &&
		    o.m > 0 && o.k > 0 && (o.rt == 1 || o.rt == 2) && o.kw >= 1 && o.kw <= V2_MAX_WARPS &&
		    (o.s == 2 || o.s == 4 || o.s == 6 || o.s == 8) && v2_novr < V2_MAX_OVR) {
			v2_ovrs[v2_novr++] = o;
			e += used;
		} else {
			fprintf(stderr, "awqrun: AWQ_CUDA_GEMV: ignoring \"%s\" (want MxK:rt,kw,S with rt 1-2, kw 1-16, S 2/4/6/8; at most %d)\n",
				e, V2_MAX_OVR);
			return -1;
		}
		if (*e == ';')
			e++;
		else if (*e) {
			fprintf(stderr, "awqrun: AWQ_CUDA_GEMV: ignoring \"%s\" (entries are separated by ';')\n", e);
			return -1;
		}
	}
	return v2_novr;
}

/* 1 when the streaming kernel took the launch (its result in *err), 0 to use the fallback. */
static int try_gemv2(cudaStream_t s, const struct awq_cu_q4 *w, const float *x, int rows, const struct awq_cu_out *out,
		     enum awq_cu_epilogue epi, int sm_count, cudaError_t *err)
{
	if (v2_force_legacy || w->group_size % 64 != 0 || w->k % 64 != 0 || w->chunks < 1)
		return 0;
	v2_dev dv = v2_device();
	if (dv.cc_major < 8)
		return 0;
	/* Built-in choice from the H200 sweeps of 2026-11-30 (docs/perf-cuda-notes.md, sessions 5, 7 and
	 * 10): two tiles per block (one for matrices of fewer tiles than SMs); long K (>= 128 chunks)
	 * over 16 warps with 4 ring stages; very short K (< 32 chunks) over 4 warps; otherwise with
	 * as many warps per block as keep all blocks resident in one wave (about 2-3k warps in all: 16
	 * warps when one block per SM covers the tiles, 8 up to three blocks per SM, else 4), with 2
	 * stages at 8-16 warps. Above 2 tokens the XR form (activations in the ring) with at most 8 warps
	 * and 2 stages (session 10's kbench, 4 / 8 tokens against the fallback's 8): 4096 x 14336 17.75 /
	 * 20.70 us (23.10), 4096 x 4096 6.21 / 6.92 (10.43), 12288 x 4096 11.17 / 15.05 (26.37); 16 warps
	 * and 4 stages were slower at 8 tokens everywhere (25.65, 9.93, 27.73). With the f16 copy of x
	 * (XH, half the ring's bytes) the one-token rule's warps and stages again (session 19's
	 * --tokens, H200, 8 tokens: 4096 x 14336 at 16 warps and 4 stages 11.15 us against 15.50 at 8
	 * and 2; 4096 x 4096 16 / 2 5.25 against 5.94; 4096 x 11008 16 / 4 9.32 against 12.15; 12288 x
	 * 4096 8 / 2 9.94, 16 warps 15.15). */
	int long_k = w->chunks >= 128, blocks2 = (w->tiles + 1) / 2;
	int rt = epi == AWQ_CU_EPI_SILU_MUL ? 2 : v2_rt ? v2_rt : (rows >= 2 || w->tiles >= sm_count) ? 2 : 1;
	int kw = v2_kw			     ? v2_kw
		 : long_k		     ? 16
		 : w->chunks < 32	     ? 4
		 : blocks2 <= sm_count	     ? 16
		 : blocks2 <= 3 * sm_count ? 8
					     : 4;
	/* Wave balance (session 17, measured in the model on the H200, AWQ_CUDA_GEMV overrides): a long-K
	 * launch whose 16-warp blocks (one per SM) would need a second wave takes one-tile blocks of 8
	 * warps instead when three per SM hold them all at once (qwen3-14b down, 5120 x 17408: 160 blocks
	 * in two waves -> 320 in one, decode 286.7 -> 301.2 tok/s); and a launch of 8-warp blocks that
	 * would leave most SMs a block short (under 80% of the busiest SM's share on average) takes
	 * one-tile blocks when those fill the SMs evenly (90% or more; qwen3-8b q/k/v, 6144 x 4096: 192
	 * blocks -> 384, 482.6 -> 494.5 tok/s). The second not for the producer-epilogue norm's launches,
	 * whose per-block epilogue the doubled grid pays twice (qwen3-14b o, 5120 x 5120: 286.7 -> 283.4;
	 * the down projection above is such a producer too, and gains). And a one-token launch whose 8
	 * warps would stream at most 4 chunks each (K <= 2048) takes one-tile blocks of 4 warps, the same
	 * warps with 8 chunks each in one wave, and 4 stages by the rule below (qwen3-30b-a3b q/k/v, 5120 x
	 * 2048: 160 blocks -> 320, in the model 505.4 -> 511.9 tok/s with 4 stages, 512.3 with 2, session
	 * 22; not measured for the norm's producers). */
	/* f16 activations in the ring (XH) where the f16 copy is given (also for the norm's producer;
	 * not for its reader, whose x is an unnormalised xn scaled as it is converted), f32 (XR) above
	 * two tokens without it, else staged */
	const int xmode = out->x16 && !out->nrm.xn_sumsq ? 2 : rows > 2 ? 1 : 0;
	const int xh = xmode == 2;
	if (!v2_rt && !v2_kw && rows <= 2 && !xh && epi != AWQ_CU_EPI_SILU_MUL && rt == 2) {
		const int slots = 3 * sm_count; /* 8-warp blocks per wave */
		const int waves2 = (blocks2 + sm_count - 1) / sm_count, waves1 = (w->tiles + sm_count - 1) / sm_count;
		if (long_k && blocks2 > sm_count && w->tiles <= slots) {
			rt = 1;
			kw = 8;
		} else if (!long_k && kw == 8 && epi != AWQ_CU_EPI_ADD_NORM && w->tiles <= slots &&
			   10 * blocks2 < 8 * waves2 * sm_count && 10 * w->tiles >= 9 * waves1 * sm_count) {
			rt = 1;
		} else if (rows == 1 && kw == 8 && w->chunks <= 4 * kw && epi != AWQ_CU_EPI_ADD_NORM &&
			   w->tiles <= 4 * sm_count) {
			rt = 1;
			kw = 4;
		}
	}
	if (xmode == 1 && !v2_kw && kw > 8)
		kw = 8;
	kw = kw > V2_MAX_WARPS ? V2_MAX_WARPS : kw;
	/* 8-warp blocks of at least 8 chunks per warp, at most two blocks per SM, keep 4 stages
	 * (session 19, in the model on the H200, AWQ_CUDA_GEMV overrides: qwen3-14b's q/k/v, 7168 x 5120
	 * in 224 blocks, decode 300.9 -> 305.4 tok/s and pp8 1925 -> 2019 with its o projection, 5120 x
	 * 5120, too; qwen3-30b-a3b's q/k/v as 8-warp blocks of 4 chunks per warp, 505.9 -> 499.3 with 4
	 * stages, so 2, before session 22 gave it 4-warp blocks; llama2-7b's q/k/v, 384 blocks, 2 stages:
	 * 8.95 against 11.38 us at 3 tokens) */
	const int nblocks = (w->tiles + rt - 1) / rt;
	const int deep = kw == 8 && nblocks <= 2 * sm_count && w->chunks >= 8 * kw;
	int S = v2_stages ? v2_stages : xmode == 1 || (!long_k && kw >= 8 && !deep) ? 2 : 4;
	if (v2_novr < 0)
		awq_cu_q4_gemv_overrides(getenv("AWQ_CUDA_GEMV"));
	for (int i = 0; i < v2_novr; i++)
		if (v2_ovrs[i].m == w->tiles * 16 && v2_ovrs[i].k == w->k) {
			rt = epi == AWQ_CU_EPI_SILU_MUL ? 2 : v2_ovrs[i].rt;
			kw = v2_ovrs[i].kw;
			S = v2_ovrs[i].s;
		}
	int per = (w->chunks + kw - 1) / kw;
	if (xmode) /* the XR / XH kernels (activations in the ring): 2 or 4 stages */
		S = S == 2 ? 2 : 4;
	size_t wb = xmode ? (size_t)S * (rt * 512 + (xh ? V2_XH_SLOT : V2_XR_SLOT)) : (size_t)S * rt * 512 + (size_t)per * rows * 128;
	/* warp 0's ring also holds the RT x 4 x 32 reduction floats: S * RT * 512 >= RT * 512 */
	size_t smem = kw * wb + (size_t)rt * w->groups * 128; /* + the q4_corr_make float4 of every (tile, group, g) */
	if (epi == AWQ_CU_EPI_ADD_NORM) /* + the epilogue's residual rows (two tokens) and norm weights */
		smem += (size_t)3 * rt * 16 * 4;
	if (smem > (size_t)dv.optin)
		return 0;
	int pdl = v2_pdl >= 0 ? v2_pdl : awq_cu_pdl_default(dv.cc_major);
	v2_last = awq_cu_gemv_choice{1, rt, kw, S, xmode};
	*err = rt == 2 ? launch_gemv2_s<2>(S, xmode, s, w, x, rows, out, epi, kw, per, smem, pdl)
		       : launch_gemv2_s<1>(S, xmode, s, w, x, rows, out, epi, kw, per, smem, pdl);
	return 1;
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
				uint32_t wj = word_of(wv[r], j);
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
	if (epi == AWQ_CU_EPI_ADD_NORM || epi == AWQ_CU_EPI_ROPE_KV || out->nrm.xn_sumsq) /* decode-only forms */
		return cudaErrorInvalidValue;
	long big = (long)((w->tiles + GM_TILES - 1) / GM_TILES) * ((rows + 127) / 128);
	int wide = rows > 64 && big >= sm_count / 2;
	if (cc_major >= 8)
		return wide ? launch_gemm2<4, 8>(s, w, x16, rows, out, epi) : launch_gemm2<4, 4>(s, w, x16, rows, out, epi);
	return wide ? launch_gemm2<2, 8>(s, w, x16, rows, out, epi) : launch_gemm2<2, 4>(s, w, x16, rows, out, epi);
}
