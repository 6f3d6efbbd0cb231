/* Mixture-of-experts kernels (cu_moe.h): router + top-k, grouped W4A16 / 16-bit expert matmuls.
 * The AWQ experts use the fragment layout of struct awq_cu_q4 and the dequantization and mma
 * helpers of cu_common.cuh, as the dense W4A16 kernels do. 16-bit experts stay in their stored
 * row-major layout: each lane reads 16 consecutive columns of a row per 64-column chunk and the
 * k order inside an mma step is permuted identically for the weights and the activations (a dot
 * product does not depend on it), so the loads are full 32-byte sectors; bf16 is converted to f16
 * on the way into the tensor cores, as the activations are. Accumulation is f32 throughout.
 * Decode of AWQ experts with 64-multiple group sizes: the q4m kernels (raw 1024 + q values in the
 * mma, activation sums from an all-ones mma, zero and scale once per group), see their section. */
#include <float.h>

#include <cooperative_groups.h>

#include "cu_common.cuh"
#include "cu_kernels.h"
#include "cu_moe.h"

#define MOE_WARPS 8
#define MOE_BT_MIN 32 /* smallest prefill token block: sizes the work-item list */

/* Branch-free (a branch on the loaded route value kept the decode kernels' independent loads
 * behind that load's round trip, SASS); __float2int_rz is defined for every input. */
static __device__ __forceinline__ int moe_expert_id(float v, int n_experts)
{
	int i = __float2int_rz(v);
	bool ok = (v >= 0.f) & (v < (float)n_experts) & (v == (float)i);
	return ok ? i : -1;
}

/* Dynamic shared memory above 48 KB: opt in (per device, so set at every launch that needs it). */
template <typename... KArgs>
static cudaError_t moe_smem(void (*kernel)(KArgs...), size_t bytes)
{
	if (bytes <= 48 * 1024)
		return cudaSuccess;
	return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes);
}

/* ---- weight tiles ------------------------------------------------------------------------ */

/* One 16-row tile of one expert's matrix, as one lane sees it. */
struct moe_tile {
	const uint4 *q;           /* q4: the tile's chunks, this lane's word included */
	const uint32_t *sc;       /* q4: the tile's scales [groups][8] */
	const uint2 *z;           /* q4: the tile's zeros [groups] */
	const uint16_t *r0, *r1;  /* 16-bit: rows g and g + 8 from this lane's column (NULL past n) */
	int k, group_size;
};

/* mat: 0 gate, 1 up, 2 down. */
template <int Q4>
static __device__ __forceinline__ moe_tile moe_make_tile(const awq_cu_moe_w &w, int mat, int e, int tile)
{
	moe_tile T;
	int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
	if (Q4) {
		const awq_cu_q4 &m = mat == 2 ? w.down : w.gu;
		int tt = mat == 2 ? tile : 2 * tile + mat;
		size_t ti = (size_t)e * m.tiles + tt;
		T.q = m.q + ti * m.chunks * 32 + lane;
		T.sc = m.scales + ti * m.groups * 8;
		T.z = m.zeros + ti * m.groups;
		T.k = m.k;
		T.group_size = m.group_size;
		T.r0 = T.r1 = NULL;
	} else {
		int n = mat == 2 ? w.hidden : w.inter, k = mat == 2 ? w.inter : w.hidden;
		const uint16_t *base = mat == 0 ? w.gate : mat == 1 ? w.up : w.dn;
		base += (size_t)e * n * k + 16 * t;
		int ra = tile * 16 + g, rb = ra + 8;
		T.r0 = ra < n ? base + (size_t)ra * k : NULL;
		T.r1 = rb < n ? base + (size_t)rb * k : NULL;
		T.k = k;
		T.group_size = 0;
		T.q = NULL;
		T.sc = NULL;
		T.z = NULL;
	}
	return T;
}

/* Raw weights of one tile and one 64-column chunk. */
template <int Q4> struct moe_frag {
	uint4 v[Q4 ? 1 : 4];
};

template <int Q4>
static __device__ __forceinline__ void moe_frag_load(const moe_tile &T, int c, moe_frag<Q4> &f)
{
	const uint4 zero = make_uint4(0, 0, 0, 0);
	if (Q4) {
		f.v[0] = c * 64 < T.k ? ld_stream16(T.q + (size_t)c * 32) : zero;
	} else {
		int t = threadIdx.x & 3;
		bool ok = c * 64 + 16 * t < T.k;
		const uint4 *a = reinterpret_cast<const uint4 *>(T.r0 + (size_t)c * 64);
		const uint4 *b = reinterpret_cast<const uint4 *>(T.r1 + (size_t)c * 64);
		f.v[0] = ok && T.r0 ? ld_stream16(a) : zero;
		f.v[1] = ok && T.r0 ? ld_stream16(a + 1) : zero;
		f.v[2] = ok && T.r1 ? ld_stream16(b) : zero;
		f.v[3] = ok && T.r1 ? ld_stream16(b + 1) : zero;
	}
}

static __device__ __forceinline__ uint32_t w16_to_h2(uint32_t u, bool bf16)
{
	if (!bf16)
		return u;
	return h2u(__floats2half2_rn(__uint_as_float(u << 16), __uint_as_float(u & 0xffff0000u)));
}

/* A fragment of k16 step j (0..3) of chunk c. */
template <int Q4>
static __device__ __forceinline__ void moe_frag_a(const moe_tile &T, int c, const moe_frag<Q4> &f, int j, bool bf16,
						  uint32_t a[4])
{
	if (Q4) {
		int g = (threadIdx.x & 31) >> 2;
		q4_group gp = q4_group_load(T.sc, T.z, (size_t)((c * 64 + 16 * j) / T.group_size), g);
		q4_dequant(word_of(f.v[0], j), gp, a);
	} else {
		/* lane t holds columns 16t..16t+15 of the chunk: step j uses 16t + 4j .. + 3 */
		const uint4 &lo0 = f.v[0], &lo1 = f.v[1], &hi0 = f.v[2], &hi1 = f.v[3];
		int w0 = 2 * j, w1 = 2 * j + 1;
		a[0] = w16_to_h2(w0 < 4 ? word_of(lo0, w0) : word_of(lo1, w0 - 4), bf16);
		a[2] = w16_to_h2(w1 < 4 ? word_of(lo0, w1) : word_of(lo1, w1 - 4), bf16);
		a[1] = w16_to_h2(w0 < 4 ? word_of(hi0, w0) : word_of(hi1, w0 - 4), bf16);
		a[3] = w16_to_h2(w1 < 4 ? word_of(hi0, w1) : word_of(hi1, w1 - 4), bf16);
	}
}

/* A row of L floats as f16 pairs in shared memory ((L + 1) / 2 words, the odd tail padded with 0),
 * written by the whole block: the decode kernels read their activation fragments from here instead
 * of issuing global loads inside the mma loop, one dependent round trip each. */
static __device__ __forceinline__ void moe_stage_row(const float *__restrict__ src, int L, uint32_t *dst)
{
	int words = (L + 1) / 2;
	/* 4 words per thread, every load issued before any store (indices clamped: the odd tail
	 * re-reads the last element and zeroes it). As a loop of load-then-store, ptxas reused one
	 * register per element and each load waited for the store before it (SASS). */
	for (int i0 = threadIdx.x; i0 < words; i0 += 4 * blockDim.x) {
		float lo[4], hi[4];
#pragma unroll
		for (int u = 0; u < 4; u++) {
			int i = min(i0 + u * (int)blockDim.x, words - 1);
			lo[u] = src[2 * i];
			hi[u] = src[min(2 * i + 1, L - 1)];
		}
#pragma unroll
		for (int u = 0; u < 4; u++) {
			int i = i0 + u * (int)blockDim.x;
			if (i < words)
				dst[i] = pack_half2(lo[u], 2 * i + 1 < L ? hi[u] : 0.f);
		}
	}
}

/* B fragment of step j (0..3) of chunk c from a staged row (row length K); zero when !ok. Only
 * column 0 of the mma carries the token, so lanes with g != 0 pass ok = false. */
template <int Q4>
static __device__ __forceinline__ void moe_frag_b_s(const uint32_t *xs, bool ok, int K, int c, int j, uint32_t &b0,
						    uint32_t &b1)
{
	int t = threadIdx.x & 3;
	if (Q4) {
		int ka = c * 64 + 16 * j + 2 * t, kb = ka + 8;
		b0 = ok && ka < K ? xs[ka / 2] : 0u;
		b1 = ok && kb < K ? xs[kb / 2] : 0u;
	} else {
		int kk = c * 64 + 16 * t + 4 * j;
		bool in = ok && kk < K;
		b0 = in ? xs[kk / 2] : 0u;
		b1 = in ? xs[kk / 2 + 1] : 0u;
	}
}

/* A tile's group scales and zeros (groups x 8 words, groups x uint2) copied into shared memory by
 * the whole block, to be read by q4_group_load there: in global memory each k16 step of the mma loop
 * waited for its own load (the first of each group a DRAM round trip, one after another). Two tiles
 * (A, B) at once, each thread's four loads in flight before its stores. */
static __device__ __forceinline__ void moe_stage_params2(const moe_tile &A, const moe_tile &B, int groups,
							  uint32_t *sa, uint2 *za, uint32_t *sb, uint2 *zb)
{
	const int n = groups * 8;
	for (int i = threadIdx.x; i < n; i += blockDim.x) {
		bool z = i < groups;
		uint32_t a = __ldg(A.sc + i), b = __ldg(B.sc + i);
		uint2 ya = z ? __ldg(A.z + i) : make_uint2(0, 0), yb = z ? __ldg(B.z + i) : make_uint2(0, 0);
		sa[i] = a;
		sb[i] = b;
		if (z) {
			za[i] = ya;
			zb[i] = yb;
		}
	}
}

/* ---- routing ----------------------------------------------------------------------------- */

/* acc + f . (a, b), one fma after the other in this order. */
static __device__ __forceinline__ float moe_dot8(const float f[8], float4 a, float4 b, float acc)
{
	acc = fmaf(f[0], a.x, acc);
	acc = fmaf(f[1], a.y, acc);
	acc = fmaf(f[2], a.z, acc);
	acc = fmaf(f[3], a.w, acc);
	acc = fmaf(f[4], b.x, acc);
	acc = fmaf(f[5], b.y, acc);
	acc = fmaf(f[6], b.z, acc);
	return fmaf(f[7], b.w, acc);
}

/* One warp's logits of expert e for rows r0 .. r0 + nr - 1: the lanes' partial sums reduced. */
static __device__ __forceinline__ void moe_logits_store(float acc[8], int lane, bool has, int e, int E, int r0, int nr,
							float *__restrict__ logits)
{
#pragma unroll
	for (int r = 0; r < 8; r++) {
		if (r >= nr) /* warp-uniform: no reductions for absent rows (7 of 8 in decode) */
			break;
		float s = acc[r];
		for (int o = 16; o > 0; o >>= 1)
			s += __shfl_xor_sync(0xffffffffu, s, o);
		if (lane == 0 && has)
			logits[(size_t)(r0 + r) * E + e] = s;
	}
}

/* logits[r][e] for 8 experts (one per warp) x 8 rows per block (block x, y). */
static __device__ __forceinline__ void moe_logits_block(const void *__restrict__ w, int elem_bytes, int is_bf16, int E,
							int H, const float *__restrict__ x, int rows,
							float *__restrict__ logits)
{
	int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
	int e = blockIdx.x * MOE_WARPS + warp, r0 = blockIdx.y * 8;
	if (e >= E)
		return;
	int nr = min(8, rows - r0);
	float acc[8];
#pragma unroll
	for (int r = 0; r < 8; r++)
		acc[r] = 0.f;
	if (elem_bytes == 2 && H % 8 == 0) {
		const uint4 *wr = reinterpret_cast<const uint4 *>(static_cast<const uint16_t *>(w) + (size_t)e * H);
		/* unrolled so that several weight and activation loads are in flight: the router is a
		 * few hundred KB, read in one round trip (H <= 2048) instead of H / 256 serial ones */
#pragma unroll 8
		for (int i = lane; i < H / 8; i += 32) {
			float f[8];
			w16x8_unpack(__ldg(wr + i), is_bf16, f);
#pragma unroll
			for (int r = 0; r < 8; r++) {
				if (r >= nr)
					break;
				const float4 *xp = reinterpret_cast<const float4 *>(x + (size_t)(r0 + r) * H + 8 * i);
				acc[r] = moe_dot8(f, __ldg(xp), __ldg(xp + 1), acc[r]);
			}
		}
	} else {
		for (int k = lane; k < H; k += 32) {
			size_t i = (size_t)e * H + k;
			float f;
			if (elem_bytes == 4)
				f = static_cast<const float *>(w)[i];
			else if (is_bf16)
				f = __uint_as_float((uint32_t) static_cast<const uint16_t *>(w)[i] << 16);
			else
				f = __half2float(__ushort_as_half(static_cast<const uint16_t *>(w)[i]));
#pragma unroll
			for (int r = 0; r < 8; r++)
				if (r < nr)
					acc[r] = fmaf(f, x[(size_t)(r0 + r) * H + k], acc[r]);
		}
	}
	moe_logits_store(acc, lane, true, e, E, r0, nr, logits);
}

__global__ void __launch_bounds__(MOE_WARPS * 32) moe_logits_kernel(const void *__restrict__ w, int elem_bytes,
								     int is_bf16, int E, int H,
								     const float *__restrict__ x, int rows,
								     float *__restrict__ logits)
{
	moe_logits_block(w, elem_bytes, is_bf16, E, H, x, rows, logits);
}

/* One warp per row: softmax over all E in f32, then k rounds of a warp arg-max (larger p, then
 * lower id), which is the CPU's insertion order. NaN probabilities are never picked; slots left
 * empty get the ids the CPU leaves there (0, 1, ...) with weight -inf. The logits are read through
 * L2 (__ldcg): in the fused router they were written by other blocks of the same grid.
 * N: logits per lane, E <= 32 N. N < 32 has no loop exits (a constant trip count, fully unrolled and
 * branch-free); 32 is the general case, whose loops stop at the first i past E. In the fused router
 * this runs on one warp after the grid's logits are done, the router's serial tail: with N = 32 for
 * every E it executed ~1100 instructions at E = 128 (ncu, H200), a few microseconds per MoE layer. */
template <int N, bool L2 = true> /* L2: the logits in global memory (else this block's shared memory) */
static __device__ __forceinline__ void moe_topk_row_n(const float *__restrict__ logits, int E, int K, int norm,
						    float *__restrict__ route, int r, int lane)
{
	const float *l = logits + (size_t)r * E;
	/* this lane's logits (experts lane + 32 i), all loads in flight at once, then the softmax from
	 * registers (constant indices: they stay in registers); with N = 32 the loops stop at the first
	 * i with no expert (a warp-uniform branch) */
	float pr[N];
#pragma unroll
	for (int i = 0; i < N; i++) {
		if (N == 32 && 32 * i >= E)
			break;
		pr[i] = lane + 32 * i < E ? (L2 ? __ldcg(l + lane + 32 * i) : l[lane + 32 * i]) : -INFINITY;
	}
	float mx = -INFINITY, sum = 0.f;
#pragma unroll
	for (int i = 0; i < N; i++) {
		if (N == 32 && 32 * i >= E)
			break;
		mx = fmaxf(mx, pr[i]);
	}
	for (int o = 16; o > 0; o >>= 1)
		mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
#pragma unroll
	for (int i = 0; i < N; i++) {
		if (N == 32 && 32 * i >= E)
			break;
		pr[i] = lane + 32 * i < E ? expf(pr[i] - mx) : 0.f;
		sum += pr[i];
	}
	for (int o = 16; o > 0; o >>= 1)
		sum += __shfl_xor_sync(0xffffffffu, sum, o);
#pragma unroll
	for (int i = 0; i < N; i++) {
		if (N == 32 && 32 * i >= E)
			break;
		pr[i] = lane + 32 * i < E ? pr[i] / sum : NAN;
	}
	uint32_t taken = 0; /* bit i: expert lane + 32 i is selected (E <= 1024) */
	float *ids = route + (size_t)r * 2 * K, *wts = ids + K, ksum = 0.f, my_id = 0.f, my_wt = 0.f;
	int found = 0;
	for (int j = 0; j < K; j++) {
		float bp = -1.f;
		int be = 0x7fffffff;
#pragma unroll
		for (int i = 0; i < N; i++) {
			if (N == 32 && 32 * i >= E)
				break;
			int e = lane + 32 * i;
			if (e >= E || (taken >> i & 1u))
				continue;
			float p = pr[i];
			if (!isnan(p) && p > bp) {
				bp = p;
				be = e;
			}
		}
#if __CUDA_ARCH__ >= 800
		/* the warp's best: p >= 0 orders as its bits; key 0 is "none left". Two reductions
		 * instead of five dependent shuffle pairs (the top-k is the router's serial tail) */
		unsigned key = be == 0x7fffffff ? 0u : __float_as_uint(bp) + 1u;
		unsigned mk = __reduce_max_sync(0xffffffffu, key);
		be = (int)__reduce_min_sync(0xffffffffu, key == mk && mk ? (unsigned)be : 0x7fffffffu);
		bp = mk ? __uint_as_float(mk - 1u) : -1.f;
#else
		for (int o = 16; o > 0; o >>= 1) {
			float op = __shfl_xor_sync(0xffffffffu, bp, o);
			int oe = __shfl_xor_sync(0xffffffffu, be, o);
			if (op > bp || (op == bp && oe < be)) {
				bp = op;
				be = oe;
			}
		}
#endif
		float id, wt;
		if (be == 0x7fffffff) {
			id = (float)(j - found);
			wt = -INFINITY;
		} else {
			if ((be & 31) == lane)
				taken |= 1u << (be >> 5);
			id = (float)be;
			wt = bp;
			found++;
		}
		ksum += wt;
		/* slot j is written by lane j % 32, after the loop (no serial read-back of global memory
		 * for the normalisation: that loop cost several microseconds per MoE layer) */
		if ((j & 31) == lane) {
			my_id = id;
			my_wt = wt;
		}
		if ((j & 31) == 31 && j + 1 < K) { /* K > 32: this batch goes out unnormalised */
			ids[j - 31 + lane] = my_id;
			wts[j - 31 + lane] = my_wt;
		}
	}
	int b = (K - 1) & ~31;
	if (b + lane < K) {
		ids[b + lane] = my_id;
		wts[b + lane] = norm ? my_wt / ksum : my_wt;
	}
	if (norm && K > 32) { /* the earlier batches, read back (K > 32 only) */
		__syncwarp();
		for (int j = lane; j < b; j += 32)
			wts[j] /= ksum;
	}
}

template <bool L2 = true>
static __device__ __forceinline__ void moe_topk_row(const float *__restrict__ logits, int E, int K, int norm,
						    float *__restrict__ route, int r, int lane)
{
	if (E <= 32)
		moe_topk_row_n<1, L2>(logits, E, K, norm, route, r, lane);
	else if (E <= 64)
		moe_topk_row_n<2, L2>(logits, E, K, norm, route, r, lane);
	else if (E <= 128)
		moe_topk_row_n<4, L2>(logits, E, K, norm, route, r, lane);
	else if (E <= 256)
		moe_topk_row_n<8, L2>(logits, E, K, norm, route, r, lane);
	else
		moe_topk_row_n<32, L2>(logits, E, K, norm, route, r, lane);
}

__global__ void moe_topk_kernel(const float *__restrict__ logits, int E, int K, int norm, float *__restrict__ route)
{
	moe_topk_row(logits, E, K, norm, route, blockIdx.x, threadIdx.x);
}

/* Logits of the decode router from 16-bit weights (H a multiple of 8) with the rows of x staged in
 * shared memory (xsm: rows * H floats) by the whole block. Each warp's weight loads of a batch (8 per
 * lane, 2048 columns) are issued before the staging, so weights (DRAM) and x (L2) arrive in one
 * round trip; the sums then read x from shared memory. moe_logits_block instead reads x from global
 * memory inside its loop, and the compiler kept those loads and the next weight load behind each
 * other: 8 dependent round trips at H = 2048 (SASS, 2026-11-30), ~12 us per MoE layer. */
#define MOE_RB 8
template <bool CLUSTER_WAIT = false> /* moe_route_cluster_kernel: the start barrier's wait before the stores */
static __device__ __forceinline__ void moe_logits_staged(const uint16_t *__restrict__ w, int is_bf16, int E, int H,
							 const float *__restrict__ x, int rows,
							 float *__restrict__ logits, float *xsm,
							 const float *__restrict__ xn_sumsq, float xn_eps)
{
	int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
	int e = blockIdx.x * MOE_WARPS + warp;
	bool has = e < E;
	const uint4 *wr = reinterpret_cast<const uint4 *>(w + (size_t)(has ? e : 0) * H);
	const int n8 = H / 8;
	float acc[8];
#pragma unroll
	for (int r = 0; r < 8; r++)
		acc[r] = 0.f;
	for (int b0 = 0; b0 < n8; b0 += 32 * MOE_RB) { /* the same trip count in every warp */
		uint4 v[MOE_RB];
#pragma unroll
		for (int b = 0; b < MOE_RB; b++) {
			int j = b0 + lane + 32 * b;
			v[b] = has && j < n8 ? __ldg(wr + j) : make_uint4(0, 0, 0, 0);
		}
		if (b0 == 0) {
			pdl_wait(); /* the weights above are constant; x comes from the kernel before */
			const float4 *x4 = reinterpret_cast<const float4 *>(x);
			float4 *s4 = reinterpret_cast<float4 *>(xsm);
			const int n4 = rows * H / 4;
			for (int i0 = 0; i0 < n4; i0 += 4 * blockDim.x) { /* 4 loads per thread in flight */
				float4 t[4];
#pragma unroll
				for (int u = 0; u < 4; u++) {
					int i = i0 + threadIdx.x + u * blockDim.x;
					t[u] = i < n4 ? __ldg(x4 + i) : make_float4(0.f, 0.f, 0.f, 0.f);
				}
#pragma unroll
				for (int u = 0; u < 4; u++) {
					int i = i0 + threadIdx.x + u * blockDim.x;
					if (i < n4)
						s4[i] = t[u];
				}
			}
			__syncthreads();
		}
#pragma unroll
		for (int b = 0; b < MOE_RB; b++) {
			int j = b0 + lane + 32 * b;
			if (j >= n8) /* past the row: v[b] is zero, and x would be read past it */
				continue;
			float f[8];
			w16x8_unpack(v[b], is_bf16, f);
#pragma unroll
			for (int r = 0; r < 8; r++) {
				if (r >= rows)
					break;
				const float4 *xp = reinterpret_cast<const float4 *>(xsm + (size_t)r * H + 8 * j);
				acc[r] = moe_dot8(f, xp[0], xp[1], acc[r]);
			}
		}
	}
	if (xn_sumsq) /* x is a producer-epilogue norm's xn (rows <= 2): its 1 / RMS on the sums */
#pragma unroll
		for (int r = 0; r < 2; r++)
			if (r < rows)
				acc[r] *= rsqrtf(xn_sumsq[r] / (float)H + xn_eps);
#if __CUDA_ARCH__ >= 900
	if (CLUSTER_WAIT)
		asm volatile("barrier.cluster.wait.aligned;" ::: "memory");
#endif
	moe_logits_store(acc, lane, has, e, E, 0, rows, logits);
}

/* Decode router in one launch (rows <= 8): the logits blocks (STAGED: moe_logits_staged, x in
 * dynamic shared memory; else moe_logits_block), then the last block to finish (a grid-wide ticket,
 * reset to 0 for the next launch) runs the top-k of every row, one warp per row. Saves the second
 * launch and its dependency round trip per MoE layer. */
template <int STAGED>
static __device__ __forceinline__ void moe_route_fused(const void *__restrict__ w, int elem_bytes, int is_bf16, int E,
						       int H, const float *__restrict__ x, int rows,
						       float *__restrict__ logits, int K, int norm,
						       float *__restrict__ route, unsigned *__restrict__ ticket,
						       const float *__restrict__ xn_sumsq, float xn_eps)
{
	extern __shared__ __align__(16) float xsm[];
	__shared__ int last;
	pdl_trigger(); /* the expert kernel's blocks may be placed now; they wait for this grid to end */
	if (STAGED) {
		moe_logits_staged(static_cast<const uint16_t *>(w), is_bf16, E, H, x, rows, logits, xsm, xn_sumsq, xn_eps);
	} else {
		pdl_wait(); /* x comes from the kernel before */
		moe_logits_block(w, elem_bytes, is_bf16, E, H, x, rows, logits);
	}
	__syncthreads();
	if (threadIdx.x == 0) {
		__threadfence(); /* this block's logits before its ticket */
		last = atomicAdd(ticket, 1u) == gridDim.x - 1;
	}
	__syncthreads();
	if (!last)
		return;
	__threadfence(); /* every block's logits after their tickets */
	int warp = threadIdx.x >> 5; /* rows <= 8 = MOE_WARPS */
	if (warp < rows)
		moe_topk_row(logits, E, K, norm, route, warp, threadIdx.x & 31);
	if (threadIdx.x == 0)
		*ticket = 0u;
}

/* The staged router (16-bit weights, H a multiple of 8: every decode router of the presets; xn_sumsq:
 * x is a producer-epilogue norm's xn, struct awq_cu_xnorm), and the general one with a budget of 128
 * registers: ptxas gave it 64 and a 16-byte spill on sm_120. */
__global__ void __launch_bounds__(MOE_WARPS * 32) moe_route_fused_kernel(const void *__restrict__ w, int elem_bytes,
									  int is_bf16, int E, int H,
									  const float *__restrict__ x, int rows,
									  float *__restrict__ logits, int K, int norm,
									  float *__restrict__ route,
									  unsigned *__restrict__ ticket,
									  const float *__restrict__ xn_sumsq, float xn_eps)
{
	moe_route_fused<1>(w, elem_bytes, is_bf16, E, H, x, rows, logits, K, norm, route, ticket, xn_sumsq, xn_eps);
}

__global__ void __launch_bounds__(MOE_WARPS * 32, 2) moe_route_fused_any_kernel(const void *__restrict__ w,
										 int elem_bytes, int is_bf16, int E,
										 int H, const float *__restrict__ x,
										 int rows, float *__restrict__ logits,
										 int K, int norm,
										 float *__restrict__ route,
										 unsigned *__restrict__ ticket)
{
	moe_route_fused<0>(w, elem_bytes, is_bf16, E, H, x, rows, logits, K, norm, route, ticket, nullptr, 0.f);
}

/* The staged router as one thread-block cluster (sm_90; E <= 128, so at most 16 blocks: the whole
 * grid is the cluster). Each warp's logit goes straight into block 0's shared memory (distributed
 * shared memory), one cluster barrier (release / acquire) replaces the ticket's fence, global atomic
 * and the last block's reload of the logits from L2, and block 0 takes the top-k from its own shared
 * memory. The fused router's cost in the decode graph is that serial tail after the logits (5.4 us
 * per layer on qwen3-30b-a3b, session 21); this form keeps one on-chip step of it. Dynamic shared
 * memory: x (rows x H floats), then the cluster's logits (rows x E, used in block 0). */
__global__ void __launch_bounds__(MOE_WARPS * 32) moe_route_cluster_kernel(const void *__restrict__ w, int is_bf16, int E,
									    int H, const float *__restrict__ x, int rows,
									    int K, int norm, float *__restrict__ route,
									    const float *__restrict__ xn_sumsq, float xn_eps)
{
#if __CUDA_ARCH__ >= 900
	extern __shared__ __align__(16) float xsm[];
	namespace cg = cooperative_groups;
	cg::cluster_group cl = cg::this_cluster();
	float *lg = xsm + (size_t)rows * H;
	/* a block may write another's shared memory only once that block is running: every block
	 * arrives here and waits just before its stores (moe_logits_staged), by when the arrivals are
	 * long done (compute-sanitizer racecheck flagged the stores without it) */
	asm volatile("barrier.cluster.arrive.relaxed.aligned;" ::: "memory");
	pdl_trigger(); /* the expert kernel's blocks may be placed now; they wait for this grid to end */
	moe_logits_staged<true>(static_cast<const uint16_t *>(w), is_bf16, E, H, x, rows, cl.map_shared_rank(lg, 0),
				xsm, xn_sumsq, xn_eps);
	cl.sync(); /* every block's logits in block 0 */
	const int warp = threadIdx.x >> 5;
	if (cl.block_rank() == 0 && warp < rows)
		moe_topk_row<false>(lg, E, K, norm, route, warp, threadIdx.x & 31);
#endif
}

/* Whether a decode router of this many blocks runs as one cluster (the caller has checked sm_90+):
 * at most 16 blocks (E <= 128; above 8 the non-portable cluster size, which H100 / H200 allow) and a
 * cluster of that size with the path's largest shared memory (48 KB a block) fits on the device,
 * asked once per size. */
static int moe_cluster_fits(int blocks)
{
	static int fits[17]; /* 0: not asked yet, 1: fits, -1: does not */
	if (blocks < 1 || blocks > 16)
		return 0;
	if (!fits[blocks]) {
		int n = 0;
		cudaLaunchConfig_t cfg = {};
		cfg.gridDim = dim3(blocks);
		cfg.blockDim = dim3(MOE_WARPS * 32);
		cfg.dynamicSmemBytes = 48 * 1024;
		cudaLaunchAttribute at[1];
		at[0].id = cudaLaunchAttributeClusterDimension;
		at[0].val.clusterDim.x = blocks, at[0].val.clusterDim.y = 1, at[0].val.clusterDim.z = 1;
		cfg.attrs = at, cfg.numAttrs = 1;
		fits[blocks] = (blocks <= 8 || cudaFuncSetAttribute(moe_route_cluster_kernel,
								     cudaFuncAttributeNonPortableClusterSizeAllowed, 1) ==
							cudaSuccess) &&
					       cudaOccupancyMaxActiveClusters(&n, moe_route_cluster_kernel, &cfg) == cudaSuccess &&
					       n >= 1
				       ? 1
				       : -1;
		cudaGetLastError();
	}
	return fits[blocks] > 0;
}

extern "C" cudaError_t awq_cu_moe_route(cudaStream_t s, const void *w, int elem_bytes, int is_bf16, int n_experts,
					int hidden, const float *x, int rows, int top_k, int norm_topk, float *logits,
					float *route, unsigned *ticket, int pdl, int cluster, const float *xn_sumsq,
					float xn_eps)
{
	if (rows < 1 || n_experts < 1 || n_experts > 1024 || top_k < 1 || top_k > n_experts)
		return cudaErrorInvalidValue;
	/* the reader of a producer-epilogue norm: the staged fused router only (awq_cu_moe_route_reads_xn) */
	if (xn_sumsq && (rows > 2 || !ticket || !awq_cu_moe_route_reads_xn(elem_bytes, hidden)))
		return cudaErrorInvalidValue;
	dim3 grid((n_experts + MOE_WARPS - 1) / MOE_WARPS, (rows + 7) / 8);
	if (rows <= 8 && ticket) {
		size_t xs = (size_t)rows * hidden * sizeof(float);
		/* programmatic launch: the router's weights are read before the wait, while the norm
		 * before it runs */
		const size_t xc = xs + (size_t)rows * n_experts * sizeof(float);
		if (cluster && elem_bytes == 2 && hidden % 8 == 0 && xc <= 48 * 1024 && grid.y == 1 &&
		    moe_cluster_fits(grid.x))
			return awq_cu_launch_cluster(moe_route_cluster_kernel, grid, dim3(MOE_WARPS * 32), xc, s, pdl, grid.x, w,
						     is_bf16, n_experts, hidden, x, rows, top_k, norm_topk, route, xn_sumsq,
						     xn_eps);
		if (elem_bytes == 2 && hidden % 8 == 0 && xs <= 48 * 1024)
			return awq_cu_launch(moe_route_fused_kernel, grid, dim3(MOE_WARPS * 32), xs, s, pdl, w,
					     elem_bytes, is_bf16, n_experts, hidden, x, rows, logits, top_k, norm_topk,
					     route, ticket, xn_sumsq, xn_eps);
		return awq_cu_launch(moe_route_fused_any_kernel, grid, dim3(MOE_WARPS * 32), 0, s, pdl, w, elem_bytes,
				     is_bf16, n_experts, hidden, x, rows, logits, top_k, norm_topk, route, ticket);
	}
	moe_logits_kernel<<<grid, MOE_WARPS * 32, 0, s>>>(w, elem_bytes, is_bf16, n_experts, hidden, x, rows, logits);
	cudaError_t e = cudaGetLastError();
	if (e != cudaSuccess)
		return e;
	moe_topk_kernel<<<rows, 32, 0, s>>>(logits, n_experts, top_k, norm_topk, route);
	return cudaGetLastError();
}

/* ---- decode: one token per (row, slot) pair ------------------------------------------------ */

/* Block (feature tile i, pair p = row * K + j): h[p][16i ..] = silu(gate_e) * up_e of token row's x,
 * e = route id j. The warps split the hidden dimension and reduce through shared memory. Only
 * column 0 of the mma (lanes with g == 0 feed it) carries the token. */
/* AWQ: at most 80 registers (no spills), so that three blocks fit per SM and the 384 blocks of a
 * qwen3-30b-a3b layer (48 tiles x 8 slots) run in one wave instead of two (105 registers before). */
template <int Q4, int U>
__global__ void __launch_bounds__(MOE_WARPS * 32, Q4 ? 3 : 1) moe_gu_decode_kernel(struct awq_cu_moe_w w,
									const float *__restrict__ x,
									const float *__restrict__ route, int K,
									float *__restrict__ h)
{
	__shared__ float red[MOE_WARPS][2][2][32];
	extern __shared__ uint32_t xs[]; /* the token row's x as f16 pairs */
	int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
	int tile = blockIdx.x, p = blockIdx.y, r = p / K;
	pdl_wait(); /* the route and x come from the kernels before */
	int e = moe_expert_id(route[(size_t)r * 2 * K + p % K], w.n_experts);
	e = e < 0 ? 0 : e; /* the down kernel turns the row into NaN */
	const int H = w.hidden;
	moe_tile tg = moe_make_tile<Q4>(w, 0, e, tile), tu = moe_make_tile<Q4>(w, 1, e, tile);
	int chunks = (H + 63) / 64, per = (chunks + MOE_WARPS - 1) / MOE_WARPS;
	int c0 = warp * per, c1 = min(chunks, c0 + per);
	/* the first weights are requested before x is staged: both round trips overlap */
	moe_frag<Q4> fg[U], fu[U];
#pragma unroll
	for (int u = 0; u < U; u++)
		if (c0 + u < c1) {
			moe_frag_load<Q4>(tg, c0 + u, fg[u]);
			moe_frag_load<Q4>(tu, c0 + u, fu[u]);
		}
	moe_stage_row(x + (size_t)r * H, H, xs);
	if (Q4) { /* after x: (H + 1) / 2 words rounded up to even (uint2 alignment) */
		const int G = w.gu.groups, xw = ((H + 1) / 2 + 1) & ~1;
		uint32_t *s_sc = xs + xw;
		uint2 *s_z = reinterpret_cast<uint2 *>(s_sc + 2 * G * 8);
		moe_stage_params2(tg, tu, G, s_sc, s_z, s_sc + G * 8, s_z + G);
		tg.sc = s_sc;
		tg.z = s_z;
		tu.sc = s_sc + G * 8;
		tu.z = s_z + G;
	}
	__syncthreads();
	float ag[4] = {0.f, 0.f, 0.f, 0.f}, au[4] = {0.f, 0.f, 0.f, 0.f};
	for (int c = c0; c < c1; c += U) {
		if (c != c0)
#pragma unroll
			for (int u = 0; u < U; u++)
				if (c + u < c1) {
					moe_frag_load<Q4>(tg, c + u, fg[u]);
					moe_frag_load<Q4>(tu, c + u, fu[u]);
				}
#pragma unroll
		for (int u = 0; u < U; u++) {
			if (c + u >= c1)
				break;
#pragma unroll
			for (int j = 0; j < 4; j++) {
				uint32_t b0, b1, a[4];
				moe_frag_b_s<Q4>(xs, g == 0, H, c + u, j, b0, b1);
				moe_frag_a<Q4>(tg, c + u, fg[u], j, w.is_bf16, a);
				mma_f16(ag, a, b0, b1);
				moe_frag_a<Q4>(tu, c + u, fu[u], j, w.is_bf16, a);
				mma_f16(au, a, b0, b1);
			}
		}
	}
	/* token column 0: c[0] (feature g) and c[2] (feature g + 8) of lanes with t == 0 */
	red[warp][0][0][lane] = ag[0];
	red[warp][0][1][lane] = ag[2];
	red[warp][1][0][lane] = au[0];
	red[warp][1][1][lane] = au[2];
	__syncthreads();
	if (warp != 0 || t != 0)
		return;
#pragma unroll
	for (int hh = 0; hh < 2; hh++) {
		float sg = 0.f, su = 0.f;
		for (int q = 0; q < MOE_WARPS; q++) {
			sg += red[q][0][hh][lane];
			su += red[q][1][hh][lane];
		}
		int f = tile * 16 + g + 8 * hh;
		if (f < w.inter)
			h[(size_t)p * w.inter + f] = silu(sg) * su;
	}
}

/* Block (output tile i, row r): out[r][16i ..] = sum_j weight_j * down_e(h[r * K + j]). The warps
 * split (slot, inter) work; every warp scales its partial sums by the slot's router weight and the
 * block adds the warps in a fixed order. */
template <int Q4, int U>
__global__ void __launch_bounds__(MOE_WARPS * 32, 2) moe_down_decode_kernel(struct awq_cu_moe_w w,
									  const float *__restrict__ h,
									  const float *__restrict__ route, int K,
									  float *__restrict__ out)
{
	__shared__ float red[MOE_WARPS][2][32];
	extern __shared__ uint32_t hs[]; /* the row's K slot rows of h as f16 pairs, (I + 1) / 2 words each */
	int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
	int tile = blockIdx.x, r = blockIdx.y;
	const int I = w.inter, E = w.n_experts, hw = (I + 1) / 2;
	const float *rt = route + (size_t)r * 2 * K;
	pdl_wait(); /* the route and h come from the kernels before */
	/* the K rows of h as f16 pairs, all slots at once with 4 loads per thread in flight (row by row,
	 * each row's loads waited for the previous row's stores: K dependent round trips) */
	{
		const float *hb = h + (size_t)r * K * I;
		const int tot = K * hw;
		for (int i0 = 0; i0 < tot; i0 += 4 * blockDim.x) {
			float2 v[4];
#pragma unroll
			for (int u = 0; u < 4; u++) {
				int i = i0 + threadIdx.x + u * blockDim.x, j = i / hw, c = 2 * (i - j * hw);
				v[u] = make_float2(0.f, 0.f);
				if (i < tot) {
					v[u].x = hb[(size_t)j * I + c];
					if (c + 1 < I)
						v[u].y = hb[(size_t)j * I + c + 1];
				}
			}
#pragma unroll
			for (int u = 0; u < 4; u++) {
				int i = i0 + threadIdx.x + u * blockDim.x;
				if (i < tot)
					hs[i] = pack_half2(v[u].x, v[u].y);
			}
		}
	}
	/* Q4: every slot's expert's group parameters of this tile, after the K rows of h (rounded up
	 * to even words for the uint2 zeros) */
	const int G = Q4 ? w.down.groups : 0, pw = ((K * hw) + 1) & ~1;
	uint32_t *p_sc = hs + pw;
	uint2 *p_z = reinterpret_cast<uint2 *>(p_sc + (size_t)K * G * 8);
	if (Q4) {
		/* slot j's tile of its expert; all slots' loads of a thread in flight before its stores
		 * (up to 8 slots with one element each per thread; otherwise slot by slot) */
		const int n = G * 8, tid = threadIdx.x;
		if (K <= 8 && n <= (int)blockDim.x) {
			uint32_t a[8];
			uint2 zz[8];
			float rv[8]; /* the slots' route ids, loaded together */
#pragma unroll
			for (int j = 0; j < 8; j++)
				rv[j] = j < K ? rt[j] : -1.f;
#pragma unroll
			for (int j = 0; j < 8; j++) {
				a[j] = 0u;
				zz[j] = make_uint2(0, 0);
				if (j < K) {
					int ej = moe_expert_id(rv[j], E);
					moe_tile T = moe_make_tile<Q4>(w, 2, ej < 0 ? 0 : ej, tile);
					if (tid < n)
						a[j] = __ldg(T.sc + tid);
					if (tid < G)
						zz[j] = __ldg(T.z + tid);
				}
			}
#pragma unroll
			for (int j = 0; j < 8; j++)
				if (j < K) {
					if (tid < n)
						p_sc[j * n + tid] = a[j];
					if (tid < G)
						p_z[j * G + tid] = zz[j];
				}
		} else {
			for (int j = 0; j < K; j++) {
				int ej = moe_expert_id(rt[j], E);
				moe_tile T = moe_make_tile<Q4>(w, 2, ej < 0 ? 0 : ej, tile);
				for (int i = tid; i < n; i += blockDim.x) {
					bool z = i < G;
					uint32_t v = __ldg(T.sc + i);
					uint2 y = z ? __ldg(T.z + i) : make_uint2(0, 0);
					p_sc[j * n + i] = v;
					if (z)
						p_z[j * G + i] = y;
				}
			}
		}
	}
	__syncthreads();
	int wps = K >= MOE_WARPS ? 1 : MOE_WARPS / K, conc = MOE_WARPS / wps;
	int chunks = (I + 63) / 64, per = (chunks + wps - 1) / wps;
	int sub = warp % wps, c0 = sub * per, c1 = min(chunks, c0 + per);
	float acc[4] = {0.f, 0.f, 0.f, 0.f};
	for (int j = warp / wps; j < K && warp / wps < conc; j += conc) {
		int e = moe_expert_id(rt[j], E);
		e = e < 0 ? 0 : e;
		float wt = rt[K + j];
		moe_tile T = moe_make_tile<Q4>(w, 2, e, tile);
		if (Q4) {
			T.sc = p_sc + (size_t)j * G * 8;
			T.z = p_z + (size_t)j * G;
		}
		const uint32_t *hr = hs + (size_t)j * hw;
		float part[4] = {0.f, 0.f, 0.f, 0.f};
		for (int c = c0; c < c1; c += U) {
			moe_frag<Q4> f[U];
#pragma unroll
			for (int u = 0; u < U; u++)
				if (c + u < c1)
					moe_frag_load<Q4>(T, c + u, f[u]);
#pragma unroll
			for (int u = 0; u < U; u++) {
				if (c + u >= c1)
					break;
#pragma unroll
				for (int jj = 0; jj < 4; jj++) {
					uint32_t b0, b1, a[4];
					moe_frag_b_s<Q4>(hr, g == 0, I, c + u, jj, b0, b1);
					moe_frag_a<Q4>(T, c + u, f[u], jj, w.is_bf16, a);
					mma_f16(part, a, b0, b1);
				}
			}
		}
		acc[0] = fmaf(wt, part[0], acc[0]);
		acc[2] = fmaf(wt, part[2], acc[2]);
	}
	red[warp][0][lane] = acc[0];
	red[warp][1][lane] = acc[2];
	__syncthreads();
	if (warp != 0 || t != 0)
		return;
	bool bad = false;
	for (int j = 0; j < K; j++)
		bad |= moe_expert_id(rt[j], E) < 0;
#pragma unroll
	for (int hh = 0; hh < 2; hh++) {
		float s = 0.f;
		for (int q = 0; q < MOE_WARPS; q++)
			s += red[q][hh][lane];
		int f = tile * 16 + g + 8 * hh;
		if (f < w.hidden)
			out[(size_t)r * w.hidden + f] = bad ? NAN : s;
	}
}

/* ---- decode, AWQ with group sizes that are multiples of 64 ----------------------------------
 * The dense streaming GEMV's arithmetic (q4_gemv2_kernel) per warp: the mma runs on the raw
 * exponent-trick values 1024 + q and 1024 + 16 q (q4_magic, 5 instructions per packed word), an
 * all-ones mma sums the activations, and zero and scale are applied once per group and row pair from
 * a correction made at start-up (q4_corr_make). The kernels above dequantize every weight and look
 * its group up in every k16 step: ncu on the H200 (2026-11-30) counted ~60 instructions per mma
 * and 440-690 per KB of weights (the dense GEMV: 156), and both were bound by instruction issue
 * (14.3 and 17.6 us for 13.4 and 6.5 MB in qwen3-30b-a3b). With a multiple of 64 as the group size
 * every 64-column chunk lies in one group and k is a multiple of 64 (no partial chunk). */

/* This warp's B-fragment words of chunks [c0, c0 + nc) of a row of floats, as f16 pairs in
 * warp-private shared memory: word (c - c0) * 32 + lane holds columns 64 c + koff(lane) and + 1,
 * so that lane t of the mma reads its eight words of a chunk (steps 0..3, b0 and b1) as words
 * 8 t .. 8 t + 7, two 16-byte loads. In two halves, so that a kernel can issue the loads of the
 * first B chunks before its other round trips and store them after: moe_xfrag_load (the lane's
 * pointer from moe_xfrag_ptr; chunks past nc re-read the last one and are never stored) and
 * moe_xfrag_store; moe_stage_xfrag stages the rest, B chunks at a time. */
static __device__ __forceinline__ const float *moe_xfrag_ptr(const float *__restrict__ row, int c0)
{
	const int lane = threadIdx.x & 31, tt = lane >> 3, ww = lane & 7;
	return row + (size_t)c0 * 64 + 16 * (ww >> 1) + 2 * tt + 8 * (ww & 1);
}

template <int B>
static __device__ __forceinline__ void moe_xfrag_load(const float *p, int e0, int nc, float2 v[B])
{
#pragma unroll
	for (int u = 0; u < B; u++) /* nothing read when the warp has no chunks (p is past the row) */
		v[u] = e0 < nc ? *reinterpret_cast<const float2 *>(p + (size_t)min(e0 + u, nc - 1) * 64)
			       : make_float2(0.f, 0.f);
}

template <int B>
static __device__ __forceinline__ void moe_xfrag_store(const float2 v[B], int e0, int nc, uint32_t *xs)
{
	const int lane = threadIdx.x & 31;
#pragma unroll
	for (int u = 0; u < B; u++)
		if (e0 + u < nc)
			xs[(e0 + u) * 32 + lane] = pack_half2(v[u].x, v[u].y);
}

template <int B>
static __device__ __forceinline__ void moe_stage_xfrag(const float *p, int e0, int nc, uint32_t *xs)
{
	for (; e0 < nc; e0 += B) {
		float2 v[B];
		moe_xfrag_load<B>(p, e0, nc, v);
		moe_xfrag_store<B>(v, e0, nc, xs);
	}
}

/* Corrections of groups [g0, g0 + ng) of NT tiles (sc[i], z[i]: tile i's scales [groups][8] and
 * zeros [groups]) into dst[(i * ng + group - g0) * 8 + row pair], by threads tid of nthr (the block
 * or one warp). moe_corr_load reads the parameters of entries i0 and i0 + nthr into registers (none
 * when ng is 0), moe_corr_store converts and stores them; moe_stage_corr does the entries from i0 on. */
template <int NT>
static __device__ __forceinline__ void moe_corr_load(const uint32_t *const sc[NT], const uint2 *const z[NT], int g0,
						     int ng, int i0, int nthr, uint32_t s[2], uint2 zz[2])
{
	const int per_tile = ng * 8, n = NT * per_tile;
#pragma unroll
	for (int u = 0; u < 2; u++) {
		s[u] = 0u;
		zz[u] = make_uint2(0, 0);
		if (n > 0) {
			int i = min(i0 + u * nthr, n - 1), ti = NT > 1 && i >= per_tile ? 1 : 0, e = i - ti * per_tile;
			s[u] = __ldg((ti ? sc[NT - 1] : sc[0]) + (size_t)g0 * 8 + e);
			zz[u] = __ldg((ti ? z[NT - 1] : z[0]) + g0 + e / 8);
		}
	}
}

static __device__ __forceinline__ void moe_corr_store(const uint32_t s[2], const uint2 zz[2], int i0, int nthr, int n,
						      float4 *dst)
{
#pragma unroll
	for (int u = 0; u < 2; u++) {
		int i = i0 + u * nthr;
		if (i < n)
			dst[i] = q4_corr_make(s[u], zz[u], i & 7);
	}
}

template <int NT>
static __device__ __forceinline__ void moe_stage_corr(const uint32_t *const sc[NT], const uint2 *const z[NT], int g0,
						      int ng, float4 *dst, int i0, int nthr)
{
	for (; i0 < NT * ng * 8; i0 += 2 * nthr) {
		uint32_t s[2];
		uint2 zz[2];
		moe_corr_load<NT>(sc, z, g0, ng, i0, nthr, s, zz);
		moe_corr_store(s, zz, i0, nthr, NT * ng * 8, dst);
	}
}

/* The weights of chunks [c, c + U) (those below c1) of NT tiles: tile i's chunk 0 for this lane is
 * q + off[i] (32-bit offsets from the kernel parameter: two fewer registers per tile than pointers,
 * which kept the gate/up kernel within 80 registers without spilling). */
template <int NT, int U>
static __device__ __forceinline__ void moe_q4m_load(const uint4 *q, const uint32_t off[NT], int c, int c1,
						    uint4 f[U][NT])
{
#pragma unroll
	for (int u = 0; u < U; u++)
#pragma unroll
		for (int i = 0; i < NT; i++)
			f[u][i] = c + u < c1 ? ld_stream16(q + (off[i] + (uint32_t)(c + u) * 32u)) : make_uint4(0, 0, 0, 0);
}

/* One warp's sums over chunks [c0, c1) of NT tiles with the token in column 0 of the mma: f holds
 * the first batch (moe_q4m_load at c0), xs the staged row from c0 (moe_stage_xfrag), corr the
 * corrections from group c0 / cpg (tile i at corr + i * tstride). Lanes with t == 0 end with rows g
 * (acc[i][0]) and g + 8 (acc[i][1]) of tile i added to acc. */
template <int NT, int U>
static __device__ __forceinline__ void moe_q4m_run(const uint4 *q, const uint32_t off[NT], int c0, int c1, int cpg,
						   const uint32_t *xs, const float4 *corr, int tstride, uint4 f[U][NT],
						   float acc[NT][2])
{
	const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
	float cg[NT][4], cx[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
	for (int i = 0; i < NT; i++)
		cg[i][0] = cg[i][1] = cg[i][2] = cg[i][3] = 0.f;
	int gleft = cpg - c0 % cpg;
	const float4 *cr = corr + g;
	for (int cb = c0; cb < c1; cb += U) {
		if (cb != c0)
			moe_q4m_load<NT, U>(q, off, cb, c1, f);
#pragma unroll
		for (int u = 0; u < U; u++) {
			const int c = cb + u;
			if (c >= c1)
				break;
			uint4 xa = make_uint4(0, 0, 0, 0), xb = make_uint4(0, 0, 0, 0);
			if (g == 0) { /* only column 0 carries the token */
				const uint4 *xp = reinterpret_cast<const uint4 *>(xs + (c - c0) * 32 + t * 8);
				xa = xp[0];
				xb = xp[1];
			}
			q4_chunk_mma<NT>(f[u], xa, xb, cx, cg);
			if (--gleft == 0 || c + 1 == c1) {
#pragma unroll
				for (int i = 0; i < NT; i++) {
					float4 k = cr[i * tstride];
					acc[i][0] = fmaf(k.x, cg[i][0], fmaf(-k.y, cx[0], acc[i][0]));
					acc[i][1] = fmaf(k.z, cg[i][2], fmaf(-k.w, cx[0], acc[i][1]));
					cg[i][0] = cg[i][1] = cg[i][2] = cg[i][3] = 0.f;
				}
				cx[0] = cx[1] = cx[2] = cx[3] = 0.f;
				cr += 8;
				gleft = cpg;
			}
		}
	}
}

/* Block (feature tile, pair p = row * K + j): h[p][16 tile ..] = silu(gate_e) * up_e of the row's x,
 * e = route id j. The warps split the chunks of the hidden dimension; each stages its slice of x,
 * the block the corrections of both tiles ([2][groups][8] after the slices). At most 80 registers:
 * three blocks per SM, so qwen3-30b-a3b's 384 blocks run in one wave. */
template <int U>
__global__ void __launch_bounds__(MOE_WARPS * 32, 3) moe_gu_q4m_kernel(struct awq_cu_moe_w w,
								   const float *__restrict__ x,
								   const float *__restrict__ route, int K,
								   float *__restrict__ h,
								   const float *__restrict__ xn_sumsq, float xn_eps)
{
	extern __shared__ __align__(16) uint32_t dyn[];
	__shared__ float red[MOE_WARPS][2][2][8];
	const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
	const int tile = blockIdx.x, p = blockIdx.y, r = p / K;
	const awq_cu_q4 &m = w.gu;
	const int per = (m.chunks + MOE_WARPS - 1) / MOE_WARPS, c0 = min(warp * per, m.chunks),
		  c1 = min(m.chunks, c0 + per), cpg = m.group_size / 64, G = m.groups;
	pdl_wait(); /* the route and x come from the kernels before */
	/* Two round trips before the mma loop: the route id, then the expert's weights, scales and
	 * zeros with the first chunks of x (ptxas issues x's loads after the id's compare, with the
	 * others). The parameters used to be loaded after x's stores: a third round trip. */
	const int nc = c1 - c0;
	const float rid = route[(size_t)r * 2 * K + p % K];
	/* a producer-epilogue norm's xn (xn_sumsq set): its sum of squares with the id, used at the end */
	const float xss = xn_sumsq ? xn_sumsq[r] : 0.f;
	const float *xp = moe_xfrag_ptr(x + (size_t)r * m.k, c0);
	float2 xv[U];
	moe_xfrag_load<U>(xp, 0, nc, xv);
	uint32_t *xs = dyn + warp * per * 32;
	float4 *corr = reinterpret_cast<float4 *>(dyn + MOE_WARPS * per * 32);
	moe_xfrag_store<U>(xv, 0, nc, xs);
	int e = moe_expert_id(rid, w.n_experts);
	e = e < 0 ? 0 : e; /* the down kernel turns the row into NaN */
	const size_t ti = (size_t)e * m.tiles + 2 * tile; /* gate; up is the next tile */
	const uint32_t off[2] = {(uint32_t)(ti * m.chunks * 32 + lane), (uint32_t)((ti + 1) * m.chunks * 32 + lane)};
	uint4 f[U][2];
	moe_q4m_load<2, U>(m.q, off, c0, c1, f);
	const uint32_t *sc[2] = {m.scales + ti * G * 8, m.scales + (ti + 1) * G * 8};
	const uint2 *z[2] = {m.zeros + ti * G, m.zeros + (ti + 1) * G};
	uint32_t ps[2];
	uint2 pz[2];
	moe_corr_load<2>(sc, z, 0, G, threadIdx.x, blockDim.x, ps, pz);
	moe_corr_store(ps, pz, threadIdx.x, blockDim.x, 2 * G * 8, corr);
	moe_stage_xfrag<U>(xp, U, nc, xs);                                       /* hidden > U chunks per warp */
	moe_stage_corr<2>(sc, z, 0, G, corr, threadIdx.x + 2 * blockDim.x, blockDim.x); /* > 2 per thread */
	__syncthreads();
	pdl_trigger(); /* the down kernel's blocks may be placed as this one's leave */
	float acc[2][2] = {{0.f, 0.f}, {0.f, 0.f}};
	moe_q4m_run<2, U>(m.q, off, c0, c1, cpg, xs, corr + (size_t)(c0 / cpg) * 8, G * 8, f, acc);
	if (t == 0) {
		red[warp][0][0][g] = acc[0][0];
		red[warp][0][1][g] = acc[0][1];
		red[warp][1][0][g] = acc[1][0];
		red[warp][1][1][g] = acc[1][1];
	}
	__syncthreads();
	if (warp != 0 || lane >= 16)
		return;
	const int hh = lane >> 3, gg = lane & 7;
	float sg = 0.f, su = 0.f;
	for (int i = 0; i < MOE_WARPS; i++) { /* fixed order: deterministic */
		sg += red[i][0][hh][gg];
		su += red[i][1][hh][gg];
	}
	if (xn_sumsq) { /* W (x / rms) = (W x) / rms for gate and up */
		const float sc = rsqrtf(xss / (float)w.hidden + xn_eps);
		sg *= sc;
		su *= sc;
	}
	const int ft = tile * 16 + gg + 8 * hh;
	if (ft < w.inter)
		h[(size_t)p * w.inter + ft] = silu(sg) * su;
}

/* Block (output tile, row r): out[r][16 tile ..] = sum_j weight_j * down_e(h[r * K + j]). Slot j goes
 * to MOE_WARPS / K warps (one warp per slot at K = 8), which split its chunks; each warp stages its
 * slice of the slot's h row and its groups' corrections in its own shared memory, scales its sums by
 * the router weight, and the block adds the warps in a fixed order.
 * nrm.res set: the producer-epilogue norm of the residual add + RMSNorm after the experts (struct
 * awq_cu_xnorm, as the dense decode GEMVs): out gets res + the sum, nrm.xn that times the norm
 * weight, nrm.sumsq[r] the block's sum of squares (a float atomic), and the blocks of tile 0 clear
 * nrm.sumsq_clear[r]. A block holds all K experts' sums of its 16 features, so it can. */
template <int U>
__global__ void __launch_bounds__(MOE_WARPS * 32) moe_down_q4m_kernel(struct awq_cu_moe_w w,
								  const float *__restrict__ h,
								  const float *__restrict__ route, int K,
								  float *__restrict__ out, struct awq_cu_xnorm nrm)
{
	extern __shared__ __align__(16) uint32_t dyn[];
	__shared__ float red[MOE_WARPS][2][8];
	const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
	const int tile = blockIdx.x, r = blockIdx.y;
	const awq_cu_q4 &m = w.down;
	const int E = w.n_experts, cpg = m.group_size / 64, G = m.groups;
	const int wps = K >= MOE_WARPS ? 1 : MOE_WARPS / K, conc = MOE_WARPS / wps;
	const int per = (m.chunks + wps - 1) / wps, sub = warp % wps, c0 = min(sub * per, m.chunks),
		  c1 = min(m.chunks, c0 + per);
	const int ngmax = (per + cpg - 1) / cpg + 1; /* groups a range of per chunks can touch */
	uint32_t *xs = dyn + warp * (per + ngmax) * 32;
	float4 *corr = reinterpret_cast<float4 *>(xs + per * 32);
	const int g0 = c0 / cpg, ng = c1 > c0 ? (c1 - 1) / cpg - g0 + 1 : 0;
	pdl_wait(); /* the route and h come from the kernels before */
	/* the epilogue norm's residual and weight of this lane's feature (warp 0, lanes 0-15: feature
	 * 16 tile + (lane & 7) + 8 (lane >> 3)), requested now so that the epilogue does not wait for them */
	const int ft = tile * 16 + (lane & 7) + 8 * (lane >> 3);
	float res_v = 0.f, nw_v = 0.f;
	if (nrm.res && warp == 0 && lane < 16 && ft < w.hidden) {
		res_v = nrm.res[(size_t)r * w.hidden + ft];
		nw_v = nrm.norm_w[ft];
	}
	const float *rt = route + (size_t)r * 2 * K;
	float a0 = 0.f, a1 = 0.f;
	const int nc = c1 - c0;
	for (int j = warp / wps; j < K; j += conc) {
		/* two round trips before the mma loop, as in the gate/up kernel: the route entry with the
		 * first chunks of h (stored before the id is used), then the weights, scales and zeros */
		const float rid = rt[j], wt = rt[K + j];
		const float *hp = moe_xfrag_ptr(h + ((size_t)r * K + j) * m.k, c0);
		float2 hv[U];
		moe_xfrag_load<U>(hp, 0, nc, hv);
		__syncwarp(); /* the previous slot's reads of xs and corr are done (it also keeps the id's
			       * compare, and its wait, below h's loads) */
		moe_xfrag_store<U>(hv, 0, nc, xs);
		int e = moe_expert_id(rid, E);
		e = e < 0 ? 0 : e;
		const size_t ti = (size_t)e * m.tiles + tile;
		const uint32_t off[1] = {(uint32_t)(ti * m.chunks * 32 + lane)};
		uint4 f[U][1];
		moe_q4m_load<1, U>(m.q, off, c0, c1, f);
		const uint32_t *sc[1] = {m.scales + ti * G * 8};
		const uint2 *z[1] = {m.zeros + ti * G};
		uint32_t ps[2];
		uint2 pz[2];
		moe_corr_load<1>(sc, z, g0, ng, lane, 32, ps, pz);
		moe_corr_store(ps, pz, lane, 32, ng * 8, corr);
		moe_stage_xfrag<U>(hp, U, nc, xs);
		moe_stage_corr<1>(sc, z, g0, ng, corr, lane + 64, 32);
		__syncwarp();
		float part[1][2] = {{0.f, 0.f}};
		moe_q4m_run<1, U>(m.q, off, c0, c1, cpg, xs, corr, 0, f, part);
		a0 = fmaf(wt, part[0][0], a0);
		a1 = fmaf(wt, part[0][1], a1);
	}
	if (t == 0) {
		red[warp][0][g] = a0;
		red[warp][1][g] = a1;
	}
	__syncthreads();
	if (warp != 0 || lane >= 16)
		return;
	bool bad = false;
	for (int j = 0; j < K; j++)
		bad |= moe_expert_id(rt[j], E) < 0;
	const int hh = lane >> 3, gg = lane & 7;
	float s = 0.f;
	for (int i = 0; i < MOE_WARPS; i++)
		s += red[i][hh][gg];
	if (nrm.res) { /* (hidden % 4 == 0: awq_cu_moe_experts) */
		float v = 0.f;
		if (ft < w.hidden) {
			const size_t o = (size_t)r * w.hidden + ft;
			v = (bad ? NAN : s) + res_v;
			out[o] = v;
			nrm.xn[o] = v * nw_v;
		}
		float q = v * v;
#pragma unroll
		for (int m = 8; m; m >>= 1) /* the 16 lanes left */
			q += __shfl_xor_sync(0xffffu, q, m);
		if (lane == 0) {
			atomicAdd(nrm.sumsq + r, q);
			if (tile == 0 && nrm.sumsq_clear)
				nrm.sumsq_clear[r] = 0.f;
		}
		return;
	}
	if (ft < w.hidden)
		out[(size_t)r * w.hidden + ft] = bad ? NAN : s;
}

/* ---- decode, 16-bit experts ------------------------------------------------------------------
 * As the dense 16-bit GEMV (k_w16.cu, 82-84% of copy bandwidth in llama2-7b / qwen3-8b decode):
 * lanes stride over a weight row with 16-byte loads, f32 FMAs, a warp reduction at the end; the
 * activations staged once per block in shared memory (after the weight loads are out). The kernels
 * above run the 16-bit experts through the mma with 64-column chunk tiles and a bf16 -> f16
 * conversion per weight pair; qwen3-30b-a3b BF16 decode spends ~43 us per layer in them for 37.7 MB
 * (~0.9 TB/s; H200, 2026-11-30). Rows of H and I must be multiples of 8 (16-byte vectors), and the
 * staged activations fit in 48 KB (H floats for gate/up, K x I for down). */
#define MOE_W16_V 8 /* 16-byte vectors per lane and row in flight (a whole row at H = 2048) */

/* acc + the 8 products of a weight vector and 8 staged activations. */
static __device__ __forceinline__ float moe_w16_fma8(const uint4 &v, const float *xs, int is_bf16, float acc)
{
	const float4 a = reinterpret_cast<const float4 *>(xs)[0], b = reinterpret_cast<const float4 *>(xs)[1];
	float f[8];
	w16x8_unpack(v, is_bf16, f);
	return moe_dot8(f, a, b, acc);
}

/* n floats from global to shared memory by the whole block, four 16-byte loads per thread in flight
 * (n a multiple of 4). */
static __device__ __forceinline__ void moe_stage_f4(const float *__restrict__ src, int n, float *dst)
{
	const float4 *s4 = reinterpret_cast<const float4 *>(src);
	float4 *d4 = reinterpret_cast<float4 *>(dst);
	const int n4 = n / 4;
	for (int i0 = threadIdx.x; i0 < n4; i0 += 4 * blockDim.x) {
		float4 t[4];
#pragma unroll
		for (int u = 0; u < 4; u++)
			t[u] = s4[min(i0 + u * (int)blockDim.x, n4 - 1)];
#pragma unroll
		for (int u = 0; u < 4; u++)
			if (i0 + u * (int)blockDim.x < n4)
				d4[i0 + u * blockDim.x] = t[u];
	}
}

/* One warp per (pair p = row * K + j, feature f): h[p][f] = silu(gate_e[f] . x_row) * (up_e[f] . x_row),
 * e = route id j. The block's warps take consecutive features of one pair and share its staged x. */
__global__ void __launch_bounds__(MOE_WARPS * 32) moe_gu_w16_kernel(struct awq_cu_moe_w w, const float *__restrict__ x,
								     const float *__restrict__ route, int K,
								     float *__restrict__ h)
{
	extern __shared__ __align__(16) float xsf[]; /* the row's x, H floats */
	const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
	const int p = blockIdx.y, r = p / K, f = blockIdx.x * MOE_WARPS + warp;
	const int H = w.hidden, I = w.inter, n8 = H / 8;
	pdl_wait(); /* the route and x come from the kernels before */
	int e = moe_expert_id(route[(size_t)r * 2 * K + p % K], w.n_experts);
	e = e < 0 ? 0 : e; /* the down kernel turns the row into NaN */
	const bool has = f < I;
	const uint4 *gr = reinterpret_cast<const uint4 *>(w.gate + ((size_t)e * I + (has ? f : 0)) * H);
	const uint4 *ur = reinterpret_cast<const uint4 *>(w.up + ((size_t)e * I + (has ? f : 0)) * H);
	float sg = 0.f, su = 0.f;
	for (int b = 0; b < n8; b += 32 * MOE_W16_V) { /* the same trip count in every warp */
		uint4 vg[MOE_W16_V], vu[MOE_W16_V];
#pragma unroll
		for (int u = 0; u < MOE_W16_V; u++) {
			const int c = b + lane + 32 * u;
			vg[u] = has && c < n8 ? ld_stream16(gr + c) : make_uint4(0, 0, 0, 0);
			vu[u] = has && c < n8 ? ld_stream16(ur + c) : make_uint4(0, 0, 0, 0);
		}
		if (b == 0) { /* x staged while the first weights are in flight */
			moe_stage_f4(x + (size_t)r * H, H, xsf);
			__syncthreads();
		}
#pragma unroll
		for (int u = 0; u < MOE_W16_V; u++) {
			const int c = b + lane + 32 * u;
			if (c < n8) {
				sg = moe_w16_fma8(vg[u], xsf + (size_t)c * 8, w.is_bf16, sg);
				su = moe_w16_fma8(vu[u], xsf + (size_t)c * 8, w.is_bf16, su);
			}
		}
	}
	for (int o = 16; o > 0; o >>= 1) {
		sg += __shfl_xor_sync(0xffffffffu, sg, o);
		su += __shfl_xor_sync(0xffffffffu, su, o);
	}
	if (lane == 0 && has)
		h[(size_t)p * I + f] = silu(sg) * su;
}

/* One warp per (row r, output feature f): out[r][f] = sum_j weight_j * (down_e[f] . h[r * K + j]),
 * e = route id j, in slot order (deterministic); NaN for a row with an id that is no expert's. The
 * block's warps take consecutive features of one row and share its K staged h rows. VPL: 16-byte
 * vectors per lane and slot row (I <= 256 VPL); the vectors of SB slots go out before any is used
 * (VPL x SB <= 24: 96 registers of weights in flight, within the 128 of two blocks per SM). */
template <int VPL, int SB>
__global__ void __launch_bounds__(MOE_WARPS * 32, 2) moe_down_w16_kernel(struct awq_cu_moe_w w,
									  const float *__restrict__ h,
									  const float *__restrict__ route, int K,
									  float *__restrict__ out)
{
	extern __shared__ __align__(16) float hsf[]; /* the row's K slot rows of h, K x I floats */
	const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
	const int r = blockIdx.y, f = blockIdx.x * MOE_WARPS + warp;
	const int H = w.hidden, I = w.inter, E = w.n_experts, n8 = I / 8;
	const bool has = f < H;
	pdl_wait(); /* the route and h come from the kernels before */
	const float *rt = route + (size_t)r * 2 * K;
	float acc = 0.f;
	for (int j0 = 0; j0 < K; j0 += SB) { /* the same trip count in every warp */
		uint4 v[SB][VPL];
#pragma unroll
		for (int jj = 0; jj < SB; jj++) {
			const int j = j0 + jj;
			int e = j < K ? moe_expert_id(rt[j], E) : 0;
			e = e < 0 ? 0 : e;
			/* 32-bit vector offsets from the parameter (fewer registers; the host checks the range) */
			const uint32_t row = ((uint32_t)e * (uint32_t)H + (uint32_t)(has ? f : 0)) * (uint32_t)n8;
#pragma unroll
			for (int u = 0; u < VPL; u++) {
				const int c = lane + 32 * u;
				v[jj][u] = has && j < K && c < n8 ? ld_stream16(reinterpret_cast<const uint4 *>(w.dn) + (row + c))
								  : make_uint4(0, 0, 0, 0);
			}
		}
		if (j0 == 0) { /* h staged while the first weights are in flight */
			moe_stage_f4(h + (size_t)r * K * I, K * I, hsf);
			__syncthreads();
		}
#pragma unroll
		for (int jj = 0; jj < SB; jj++) {
			const int j = j0 + jj;
			if (j >= K)
				break;
			float part = 0.f;
#pragma unroll
			for (int u = 0; u < VPL; u++) {
				const int c = lane + 32 * u;
				if (c < n8)
					part = moe_w16_fma8(v[jj][u], hsf + (size_t)j * I + (size_t)c * 8, w.is_bf16, part);
			}
			acc = fmaf(rt[K + j], part, acc); /* in slot order */
		}
	}
	bool bad = false;
	for (int j = 0; j < K; j++)
		bad |= moe_expert_id(rt[j], E) < 0;
	for (int o = 16; o > 0; o >>= 1)
		acc += __shfl_xor_sync(0xffffffffu, acc, o);
	if (lane == 0 && has)
		out[(size_t)r * H + f] = bad ? NAN : acc;
}

/* ---- prefill: grouped by expert ------------------------------------------------------------ */

/* One block: count the (token, slot) pairs of each expert, prefix-sum, list the work items of at
 * most BT slots each, and give every pair its slot (any order inside an expert: a token's result
 * does not depend on its neighbours in the matmul, and the scatter sums in router order). */
__global__ void moe_group_kernel(const float *__restrict__ route, int rows, int K, int E, int BT,
				 int *__restrict__ slot_pair, int *__restrict__ pair_slot, int4 *__restrict__ blocks,
				 int *__restrict__ n_blocks, int max_blocks)
{
	extern __shared__ int sh[];
	int *cnt = sh, *cur = sh + E;
	int P = rows * K;
	for (int e = threadIdx.x; e < E; e += blockDim.x)
		cnt[e] = 0;
	__syncthreads();
	for (int p = threadIdx.x; p < P; p += blockDim.x) {
		int e = moe_expert_id(route[(size_t)(p / K) * 2 * K + p % K], E);
		atomicAdd(&cnt[e < 0 ? 0 : e], 1);
	}
	__syncthreads();
	if (threadIdx.x == 0) {
		int s = 0, nb = 0;
		for (int e = 0; e < E; e++) {
			cur[e] = s;
			for (int s0 = s; s0 < s + cnt[e] && nb < max_blocks; s0 += BT)
				blocks[nb++] = make_int4(e, s0, min(BT, s + cnt[e] - s0), 0);
			s += cnt[e];
		}
		*n_blocks = nb;
	}
	__syncthreads();
	for (int p = threadIdx.x; p < P; p += blockDim.x) {
		int e = moe_expert_id(route[(size_t)(p / K) * 2 * K + p % K], E);
		int slot = atomicAdd(&cur[e < 0 ? 0 : e], 1);
		slot_pair[slot] = p;
		pair_slot[p] = slot;
	}
}

#define XS_STRIDE 72 /* halves per staged row: 64 + 8 of padding against bank conflicts */

/* Work item (expert e, slots s0 .. s0 + ns) x 16 weight tiles per block (warp: 2 tiles) x BT = 8 NT
 * token slots. GU: the gate/up pair of 8 feature tiles, input x rows gathered by slot, output
 * h[slot] = silu(gate) * up. Down: 16 consecutive output tiles, input h[slot], output y[slot].
 * Each 64-column chunk of the inputs is staged in shared memory as f16. */
template <int Q4, int NT, int GU>
__global__ void __launch_bounds__(256) moe_gemm_kernel(struct awq_cu_moe_w w, const float *__restrict__ in,
							const int *__restrict__ slot_pair, int K,
							const int4 *__restrict__ blocks, const int *__restrict__ n_blocks,
							float *__restrict__ outp)
{
	__shared__ __align__(16) uint16_t xs[8 * NT * XS_STRIDE];
	if ((int)blockIdx.y >= *n_blocks)
		return;
	int4 blk = blocks[blockIdx.y];
	const int e = blk.x, s0 = blk.y, ns = blk.z;
	int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
	const int Kin = GU ? w.hidden : w.inter, Nout = GU ? w.inter : w.hidden;
	const int ntiles = (Nout + 15) / 16;
	int tA, tB;
	if (GU) {
		tA = tB = blockIdx.x * MOE_WARPS + warp;
	} else {
		tA = blockIdx.x * 2 * MOE_WARPS + 2 * warp;
		tB = tA + 1;
	}
	bool okA = tA < ntiles, okB = tB < ntiles;
	moe_tile TA = moe_make_tile<Q4>(w, GU ? 0 : 2, e, okA ? tA : 0);
	moe_tile TB = moe_make_tile<Q4>(w, GU ? 1 : 2, e, okB ? tB : 0);
	float acc[2][NT][4];
#pragma unroll
	for (int a = 0; a < 2; a++)
#pragma unroll
		for (int n = 0; n < NT; n++)
			acc[a][n][0] = acc[a][n][1] = acc[a][n][2] = acc[a][n][3] = 0.f;
	/* staging: thread -> (row, column pair) of the chunk */
	const float *src[NT];
	int scol[NT], srow[NT];
#pragma unroll
	for (int i = 0; i < NT; i++) {
		int idx = threadIdx.x + 256 * i, row = idx >> 5;
		srow[i] = row;
		scol[i] = 2 * (idx & 31);
		src[i] = NULL;
		if (row < ns) {
			int s = s0 + row;
			src[i] = GU ? in + (size_t)(slot_pair[s] / K) * Kin : in + (size_t)s * Kin;
		}
	}
	int chunks = (Kin + 63) / 64;
	for (int c = 0; c < chunks; c++) {
		moe_frag<Q4> fa, fb;
		if (okA)
			moe_frag_load<Q4>(TA, c, fa);
		if (okB)
			moe_frag_load<Q4>(TB, c, fb);
		float2 v[NT];
#pragma unroll
		for (int i = 0; i < NT; i++) {
			int k = c * 64 + scol[i];
			v[i] = src[i] && k < Kin ? __ldg(reinterpret_cast<const float2 *>(src[i] + k)) : make_float2(0.f, 0.f);
		}
		__syncthreads(); /* the previous chunk's reads are done */
#pragma unroll
		for (int i = 0; i < NT; i++)
			*reinterpret_cast<uint32_t *>(&xs[srow[i] * XS_STRIDE + scol[i]]) = pack_half2(v[i].x, v[i].y);
		__syncthreads();
		if (!okA && !okB)
			continue;
#pragma unroll
		for (int j = 0; j < 4; j++) {
			uint32_t a0[4], a1[4];
			if (okA)
				moe_frag_a<Q4>(TA, c, fa, j, w.is_bf16, a0);
			if (okB)
				moe_frag_a<Q4>(TB, c, fb, j, w.is_bf16, a1);
#pragma unroll
			for (int n = 0; n < NT; n++) {
				const uint16_t *xr = &xs[(n * 8 + g) * XS_STRIDE];
				uint32_t b0, b1;
				if (Q4) {
					b0 = *reinterpret_cast<const uint32_t *>(xr + 16 * j + 2 * t);
					b1 = *reinterpret_cast<const uint32_t *>(xr + 16 * j + 2 * t + 8);
				} else {
					uint2 bb = *reinterpret_cast<const uint2 *>(xr + 16 * t + 4 * j);
					b0 = bb.x;
					b1 = bb.y;
				}
				if (okA)
					mma_f16(acc[0][n], a0, b0, b1);
				if (okB)
					mma_f16(acc[1][n], a1, b0, b1);
			}
		}
	}
	/* c0, c1: feature g, slots 2t, 2t + 1; c2, c3: feature g + 8 */
#pragma unroll
	for (int n = 0; n < NT; n++)
#pragma unroll
		for (int i = 0; i < 4; i++) {
			int row = n * 8 + 2 * t + (i & 1), fo = g + 8 * (i >> 1);
			if (row >= ns)
				continue;
			size_t s = (size_t)(s0 + row);
			if (GU) {
				int f = tA * 16 + fo;
				if (okA && f < Nout)
					outp[s * Nout + f] = silu(acc[0][n][i]) * acc[1][n][i];
			} else {
				int fa = tA * 16 + fo, fb = tB * 16 + fo;
				if (okA && fa < Nout)
					outp[s * Nout + fa] = acc[0][n][i];
				if (okB && fb < Nout)
					outp[s * Nout + fb] = acc[1][n][i];
			}
		}
}

/* out[r] = sum_j weight_j * y[slot of (r, j)], in router order; NaN for a row with a bad id. */
__global__ void moe_scatter_kernel(const float *__restrict__ y, const int *__restrict__ pair_slot,
				   const float *__restrict__ route, int K, int H, int E, float *__restrict__ out)
{
	int r = blockIdx.x;
	const float *rt = route + (size_t)r * 2 * K;
	bool bad = false;
	for (int j = 0; j < K; j++)
		bad |= moe_expert_id(rt[j], E) < 0;
	for (int i = threadIdx.x; i < H; i += blockDim.x) {
		float s = 0.f;
		for (int j = 0; j < K; j++)
			s = j == 0 ? rt[K] * y[(size_t)pair_slot[(size_t)r * K] * H + i]
				   : fmaf(rt[K + j], y[(size_t)pair_slot[(size_t)r * K + j] * H + i], s);
		out[(size_t)r * H + i] = bad ? NAN : s;
	}
}

/* ---- launchers ------------------------------------------------------------------------------ */

extern "C" void awq_cu_moe_scratch_size(int max_rows, int top_k, int n_experts, int hidden, int inter,
					size_t sizes[6])
{
	size_t pairs = (size_t)max_rows * top_k;
	int pre = max_rows > AWQ_CU_DECODE_ROWS;
	size_t blocks = pairs / MOE_BT_MIN + (pairs < (size_t)n_experts ? pairs : (size_t)n_experts) + 1;
	sizes[0] = pairs * inter * 4;
	sizes[1] = pre ? pairs * hidden * 4 : 0;
	sizes[2] = pre ? pairs * 4 : 0;
	sizes[3] = pre ? pairs * 4 : 0;
	sizes[4] = pre ? blocks * sizeof(int4) : 0;
	sizes[5] = pre ? 16 : 0;
}

/* AWQ experts whose group sizes are multiples of 64: the q4m kernels. */
static cudaError_t decode_q4m(cudaStream_t s, const struct awq_cu_moe_w *w, const float *x, const float *route,
			      int rows, int K, const struct awq_cu_moe_scratch *sc, float *out, int pdl,
			      const struct awq_cu_xnorm *nrm)
{
	struct awq_cu_xnorm none = {}, prod = nrm ? *nrm : none;
	prod.xn_sumsq = NULL; /* the down kernel is the producer side only */
	const int UG = 4, UD = 12; /* chunks in flight per warp: the whole slice at qwen3-30b-a3b's shapes */
	const int pg = (w->gu.chunks + MOE_WARPS - 1) / MOE_WARPS;
	const size_t s1 = (size_t)MOE_WARPS * pg * 128 + (size_t)2 * w->gu.groups * 128;
	const int wps = K >= MOE_WARPS ? 1 : MOE_WARPS / K, pd = (w->down.chunks + wps - 1) / wps;
	const int cpg = w->down.group_size / 64, ngmax = (pd + cpg - 1) / cpg + 1;
	const size_t s2 = (size_t)MOE_WARPS * (pd + ngmax) * 128;
	cudaError_t e = moe_smem(moe_gu_q4m_kernel<UG>, s1);
	if (e == cudaSuccess)
		e = moe_smem(moe_down_q4m_kernel<UD>, s2);
	if (e == cudaSuccess)
		e = awq_cu_launch(moe_gu_q4m_kernel<UG>, dim3((w->inter + 15) / 16, rows * K), dim3(MOE_WARPS * 32), s1, s,
				  pdl, *w, x, route, K, sc->h, nrm ? nrm->xn_sumsq : (const float *)nullptr,
				  nrm ? nrm->xn_eps : 0.f);
	if (e == cudaSuccess)
		e = awq_cu_launch(moe_down_q4m_kernel<UD>, dim3((w->hidden + 15) / 16, rows), dim3(MOE_WARPS * 32), s2, s,
				  pdl, *w, (const float *)sc->h, route, K, out, nrm && nrm->res ? prod : none);
	return e;
}

/* 16-bit experts with 8-element rows whose staged activations fit in 48 KB: the w16 kernels. */
static int decode_w16_fits(const struct awq_cu_moe_w *w, int K)
{
	return w->hidden % 8 == 0 && w->inter % 8 == 0 && w->inter <= 4 * 256 && (size_t)w->hidden * 4 <= 48 * 1024 &&
	       (size_t)K * w->inter * 4 <= 48 * 1024 && (size_t)w->n_experts * w->hidden * (w->inter / 8) <= 0xffffffffu;
}

template <int VPL>
static cudaError_t launch_down_w16(cudaStream_t s, const struct awq_cu_moe_w *w, const float *route, int rows, int K,
				   const struct awq_cu_moe_scratch *sc, float *out, int pdl)
{
	return awq_cu_launch(moe_down_w16_kernel<VPL, VPL <= 3 ? 8 : 4>, dim3((w->hidden + MOE_WARPS - 1) / MOE_WARPS, rows),
			     dim3(MOE_WARPS * 32), (size_t)K * w->inter * 4, s, pdl, *w, (const float *)sc->h, route, K,
			     out);
}

static cudaError_t decode_w16(cudaStream_t s, const struct awq_cu_moe_w *w, const float *x, const float *route,
			      int rows, int K, const struct awq_cu_moe_scratch *sc, float *out, int pdl)
{
	cudaError_t e = awq_cu_launch(moe_gu_w16_kernel, dim3((w->inter + MOE_WARPS - 1) / MOE_WARPS, rows * K),
				      dim3(MOE_WARPS * 32), (size_t)w->hidden * 4, s, pdl, *w, x, route, K, sc->h);
	if (e != cudaSuccess)
		return e;
	const int vpl = (w->inter / 8 + 31) / 32; /* 16-byte vectors per lane of a slot row */
	return vpl <= 1	  ? launch_down_w16<1>(s, w, route, rows, K, sc, out, pdl)
	       : vpl == 2 ? launch_down_w16<2>(s, w, route, rows, K, sc, out, pdl)
	       : vpl == 3 ? launch_down_w16<3>(s, w, route, rows, K, sc, out, pdl)
			  : launch_down_w16<4>(s, w, route, rows, K, sc, out, pdl);
}

template <int Q4>
static cudaError_t decode(cudaStream_t s, const struct awq_cu_moe_w *w, const float *x, const float *route, int rows,
			  int K, const struct awq_cu_moe_scratch *sc, float *out, int pdl)
{
	if (!Q4 && decode_w16_fits(w, K))
		return decode_w16(s, w, x, route, rows, K, sc, out, pdl);
	if (Q4 && awq_cu_moe_q4m(w))
		return decode_q4m(s, w, x, route, rows, K, sc, out, pdl, NULL);
	/* chunks in flight per warp (12 in the down kernel measured slower on the H200: 37.5 against 35.7
	 * us per layer for both kernels) */
	const int U = Q4 ? 4 : 2;
	dim3 g1((w->inter + 15) / 16, rows * K), g2((w->hidden + 15) / 16, rows);
	/* staged activations: x (hidden) for gate/up, the K rows of h (inter each) for down */
	size_t s1 = (size_t)(w->hidden + 1) / 2 * 4, s2 = (size_t)K * ((w->inter + 1) / 2) * 4;
	if (Q4) { /* the staged group parameters (see the kernels), 40 bytes per tile and group */
		s1 = (size_t)(((w->hidden + 1) / 2 + 1) & ~1) * 4 + (size_t)2 * w->gu.groups * 40;
		s2 = (size_t)((K * ((w->inter + 1) / 2) + 1) & ~1) * 4 + (size_t)K * w->down.groups * 40;
	}
	if (s1 > 48 * 1024)
		return cudaErrorInvalidValue;
	cudaError_t e = moe_smem(moe_down_decode_kernel<Q4, U>, s2); /* Mixtral-sized inter */
	if (e != cudaSuccess)
		return e;
	e = awq_cu_launch(moe_gu_decode_kernel<Q4, U>, g1, dim3(MOE_WARPS * 32), s1, s, pdl, *w, x, route, K, sc->h);
	if (e != cudaSuccess)
		return e;
	return awq_cu_launch(moe_down_decode_kernel<Q4, U>, g2, dim3(MOE_WARPS * 32), s2, s, pdl, *w,
			     (const float *)sc->h, route, K, out);
}

template <int Q4, int NT>
static cudaError_t prefill(cudaStream_t s, const struct awq_cu_moe_w *w, const float *x, const float *route, int rows,
			   int K, const struct awq_cu_moe_scratch *sc, float *out)
{
	const int E = w->n_experts;
	moe_group_kernel<<<1, 1024, (size_t)2 * E * sizeof(int), s>>>(route, rows, K, E, 8 * NT, sc->slot_pair,
								       sc->pair_slot, sc->blocks, sc->n_blocks,
								       sc->max_blocks);
	cudaError_t e = cudaGetLastError();
	if (e != cudaSuccess)
		return e;
	int pairs = rows * K, items = pairs / (8 * NT) + (pairs < E ? pairs : E) + 1;
	items = items < sc->max_blocks ? items : sc->max_blocks;
	dim3 g1((w->inter + 16 * MOE_WARPS - 1) / (16 * MOE_WARPS), items);
	moe_gemm_kernel<Q4, NT, 1><<<g1, 256, 0, s>>>(*w, x, sc->slot_pair, K, sc->blocks, sc->n_blocks, sc->h);
	if ((e = cudaGetLastError()) != cudaSuccess)
		return e;
	dim3 g2((w->hidden + 32 * MOE_WARPS - 1) / (32 * MOE_WARPS), items);
	moe_gemm_kernel<Q4, NT, 0><<<g2, 256, 0, s>>>(*w, sc->h, sc->slot_pair, K, sc->blocks, sc->n_blocks, sc->y);
	if ((e = cudaGetLastError()) != cudaSuccess)
		return e;
	moe_scatter_kernel<<<rows, 256, 0, s>>>(sc->y, sc->pair_slot, route, K, w->hidden, E, out);
	return cudaGetLastError();
}

extern "C" cudaError_t awq_cu_moe_experts(cudaStream_t s, const struct awq_cu_moe_w *w, const float *x,
					  const float *route, int rows, int top_k, const struct awq_cu_moe_scratch *sc,
					  float *out, int pdl, const struct awq_cu_xnorm *nrm)
{
	if (rows < 1 || top_k < 1 || w->n_experts < 1)
		return cudaErrorInvalidValue;
	if (nrm && (nrm->res || nrm->xn_sumsq)) { /* a producer-epilogue norm: the q4m decode kernels only */
		if (rows > AWQ_CU_DECODE_ROWS || !awq_cu_moe_q4m(w) ||
		    (nrm->res && (w->hidden % 4 || !nrm->norm_w || !nrm->xn || !nrm->sumsq)) || (nrm->xn_sumsq && rows > 2))
			return cudaErrorInvalidValue;
		return decode_q4m(s, w, x, route, rows, top_k, sc, out, pdl, nrm);
	}
	if (rows <= AWQ_CU_DECODE_ROWS)
		return w->q4 ? decode<1>(s, w, x, route, rows, top_k, sc, out, pdl)
			     : decode<0>(s, w, x, route, rows, top_k, sc, out, pdl);
	if (!sc->y || !sc->blocks)
		return cudaErrorInvalidValue;
	/* 64-slot token blocks when experts get many tokens each on average, else 32 */
	int wide = (long)rows * top_k >= 48L * w->n_experts;
	if (w->q4)
		return wide ? prefill<1, 8>(s, w, x, route, rows, top_k, sc, out)
			    : prefill<1, 4>(s, w, x, route, rows, top_k, sc, out);
	return wide ? prefill<0, 8>(s, w, x, route, rows, top_k, sc, out)
		    : prefill<0, 4>(s, w, x, route, rows, top_k, sc, out);
}
