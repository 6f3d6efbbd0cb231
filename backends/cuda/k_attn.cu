/* Attention over the f16 KV cache. Decode (few rows): flash-decoding, one block per (kv head group,
 * split of 64-512 positions, row) scoring the group's query heads against each K row read once
 * (awq_cu_attn_decode_plan picks the kernel: a warp per slice of the split on CUDA cores, its K/V
 * rows through registers or a cp.async ring, or, for grouped-query heads, on tensor cores), then
 * the last split block or a combine kernel merges the splits by their max/sum. The grid depends
 * only on max_ctx (a bound on the step's positions: the backend passes the step's attention span,
 * cuda_run.c), never on the position (read from device memory), so a captured decode graph
 * replays at any position below that bound. Prefill: causal flash attention on tensor cores (FA2 style, 64 queries
 * x 64 keys per step). */
#include <float.h>
#include <string.h>

#include "cu_common.cuh"
#include "cu_kernels.h"

#define AT_CHUNK 64
#define AT_THREADS 128
#define AT_MAXG 8
#define AT_MAXD 256
#define AT_VPRE 32 /* V values per thread loaded ahead: a whole chunk when head_dim <= 128 */

static __host__ __device__ inline int n_splits(int max_ctx)
{
	return (max_ctx + AT_CHUNK - 1) / AT_CHUNK;
}

extern "C" size_t awq_cu_attn_part_floats(int rows, int n_heads, int head_dim, int max_ctx)
{
	return (size_t)rows * n_heads * n_splits(max_ctx) * (head_dim + 2);
}

extern "C" size_t awq_cu_attn_ticket_words(int n_heads)
{
	return (size_t)AWQ_CU_DECODE_ROWS * n_heads;
}

__global__ void __launch_bounds__(AT_THREADS) attn_split_kernel(struct awq_cu_attn a, int hsub)
{
	__shared__ float qs[AT_MAXG][AT_MAXD];
	__shared__ float sc[AT_MAXG][AT_CHUNK];
	__shared__ float red[AT_MAXG * AT_MAXD];
	__shared__ float mh[AT_MAXG], lh[AT_MAXG];
	int group = a.n_heads / a.n_kv_heads, hd = a.head_dim;
	int kvh = blockIdx.x / hsub, h0 = kvh * group + (blockIdx.x % hsub) * AT_MAXG;
	int hg = min(AT_MAXG, kvh * group + group - h0);
	int split = blockIdx.y, r = blockIdx.z;
	int limit = *a.d_pos + a.row0 + r + 1;
	int start = split * AT_CHUNK, len = min(AT_CHUNK, limit - start);
	if (len <= 0)
		return;
	size_t qcols = (size_t)a.n_heads * hd, kvs = (size_t)a.n_kv_heads * hd;
	for (int i = threadIdx.x; i < hg * hd; i += AT_THREADS)
		qs[i / hd][i % hd] = a.q[r * qcols + (size_t)(h0 + i / hd) * hd + i % hd];
	__syncthreads();
	/* V rows do not depend on the scores: start loading this thread's share now so that their
	 * latency overlaps the K pass and the softmax. */
	int pairs = hd / 2, stripes = AT_THREADS / pairs;
	int dp = threadIdx.x % pairs, stripe = threadIdx.x / pairs;
	uint32_t vpre[AT_VPRE];
#pragma unroll
	for (int i = 0; i < AT_VPRE; i++) {
		int p = stripe + i * stripes;
		vpre[i] = 0;
		if (stripe < stripes && p < len)
			vpre[i] = reinterpret_cast<const uint32_t *>(a.v + (size_t)(start + p) * kvs + (size_t)kvh * hd)[dp];
	}
	/* Two threads per position, each a line-sized half of the K row; loads batched four deep. */
	{
		const int tpp = AT_THREADS / AT_CHUNK;
		int p = threadIdx.x / tpp, part = threadIdx.x % tpp, nch = hd / 8;
		const uint4 *kr = reinterpret_cast<const uint4 *>(a.k + (size_t)(start + min(p, len - 1)) * kvs +
								  (size_t)kvh * hd);
		float acc[AT_MAXG];
#pragma unroll
		for (int h = 0; h < AT_MAXG; h++)
			acc[h] = 0.f;
		for (int c0 = part; c0 < nch; c0 += 4 * tpp) {
			uint4 v[4];
#pragma unroll
			for (int u = 0; u < 4; u++)
				v[u] = c0 + u * tpp < nch ? kr[c0 + u * tpp] : make_uint4(0, 0, 0, 0);
#pragma unroll
			for (int u = 0; u < 4; u++) {
				int cc = c0 + u * tpp;
				if (cc >= nch)
					break;
				const uint32_t w4[4] = {v[u].x, v[u].y, v[u].z, v[u].w};
				float f[8];
#pragma unroll
				for (int i = 0; i < 4; i++) {
					float2 t2 = __half22float2(u2h(w4[i]));
					f[2 * i] = t2.x;
					f[2 * i + 1] = t2.y;
				}
#pragma unroll
				for (int h = 0; h < AT_MAXG; h++)
					if (h < hg)
#pragma unroll
						for (int e = 0; e < 8; e++)
							acc[h] = fmaf(qs[h][cc * 8 + e], f[e], acc[h]);
			}
		}
#pragma unroll
		for (int h = 0; h < AT_MAXG; h++) {
			for (int o = 1; o < tpp; o <<= 1)
				acc[h] += __shfl_xor_sync(0xffffffffu, acc[h], o);
			if (h < hg && part == 0 && p < len)
				sc[h][p] = acc[h] * a.scale;
		}
	}
	__syncthreads();
	int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
	for (int h = warp; h < hg; h += AT_THREADS / 32) {
		float m = -FLT_MAX;
		for (int p = lane; p < len; p += 32)
			m = fmaxf(m, sc[h][p]);
		for (int o = 16; o > 0; o >>= 1)
			m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
		float l = 0.f;
		for (int p = lane; p < len; p += 32) {
			float e = expf(sc[h][p] - m);
			sc[h][p] = e;
			l += e;
		}
		for (int o = 16; o > 0; o >>= 1)
			l += __shfl_xor_sync(0xffffffffu, l, o);
		if (lane == 0) {
			mh[h] = m;
			lh[h] = l;
		}
	}
	__syncthreads();
	float o0[AT_MAXG], o1[AT_MAXG];
#pragma unroll
	for (int h = 0; h < AT_MAXG; h++)
		o0[h] = o1[h] = 0.f;
	if (stripe < stripes) {
#pragma unroll
		for (int i = 0; i < AT_VPRE; i++) {
			int p = stripe + i * stripes;
			float2 vv = __half22float2(u2h(vpre[i]));
#pragma unroll
			for (int h = 0; h < AT_MAXG; h++)
				if (h < hg && p < len) {
					o0[h] = fmaf(sc[h][p], vv.x, o0[h]);
					o1[h] = fmaf(sc[h][p], vv.y, o1[h]);
				}
		}
#pragma unroll 4
		for (int p = stripe + AT_VPRE * stripes; p < len; p += stripes) {
			const uint32_t *vr = reinterpret_cast<const uint32_t *>(a.v + (size_t)(start + p) * kvs +
									      (size_t)kvh * hd);
			float2 vv = __half22float2(u2h(vr[dp]));
#pragma unroll
			for (int h = 0; h < AT_MAXG; h++)
				if (h < hg) {
					o0[h] = fmaf(sc[h][p], vv.x, o0[h]);
					o1[h] = fmaf(sc[h][p], vv.y, o1[h]);
				}
		}
	}
	for (int s = 0; s < stripes; s++) {
		if (stripe == s) {
			for (int h = 0; h < hg; h++) {
				float *rp = red + h * hd + 2 * dp;
				rp[0] = s == 0 ? o0[h] : rp[0] + o0[h];
				rp[1] = s == 0 ? o1[h] : rp[1] + o1[h];
			}
		}
		__syncthreads();
	}
	int ns = n_splits(a.max_ctx);
	for (int i = threadIdx.x; i < hg * (hd + 2); i += AT_THREADS) {
		int h = i / (hd + 2), d = i % (hd + 2);
		float v = d < hd ? red[h * hd + d] : d == hd ? mh[h] : lh[h];
		a.part[(((size_t)r * a.n_heads + h0 + h) * ns + split) * (hd + 2) + d] = v;
	}
}

#define AM_BATCH 8 /* splits whose partials attn_merge_one loads together */

/* Output d of one head merged over its `used` split partials p ([split][hd + 2]: o, then m in
 * natural-log units, then l), read through L2 (other blocks of the same grid may have written them). */
static __device__ __forceinline__ float attn_merge_one(const float *p, int used, int hd, int d)
{
	/* AM_BATCH splits per round, their 3 x AM_BATCH loads issued together and merged online (the
	 * running maximum rescales the sums): one L2 round trip per AM_BATCH splits. Two passes of one
	 * load at a time (the maxima, then the sums) were ~2 round trips per split: after 4096 positions
	 * (32 splits) the merge cost llama2-7b 5.8% of its decode (H200, session 25). */
	float M = -FLT_MAX, num = 0.f, den = 0.f;
	for (int s0 = 0; s0 < used; s0 += AM_BATCH) {
		float m[AM_BATCH], l[AM_BATCH], v[AM_BATCH];
#pragma unroll
		for (int j = 0; j < AM_BATCH; j++) {
			const float *q = p + min(s0 + j, used - 1) * (hd + 2);
			m[j] = __ldcg(q + hd);
			l[j] = __ldcg(q + hd + 1);
			v[j] = __ldcg(q + d);
		}
		float mb = M;
#pragma unroll
		for (int j = 0; j < AM_BATCH; j++)
			mb = fmaxf(mb, m[j]); /* the clamped repeats of the last split change no maximum */
		const float sc = expf(M - mb);
		num *= sc;
		den *= sc;
#pragma unroll
		for (int j = 0; j < AM_BATCH; j++) {
			const float f = s0 + j < used ? expf(m[j] - mb) : 0.f;
			num = fmaf(v[j], f, num);
			den = fmaf(l[j], f, den);
		}
		M = mb;
	}
	return num / den;
}

__global__ void attn_combine_kernel(struct awq_cu_attn a, int chunk)
{
	pdl_trigger(); /* the o projection after it may start streaming its weights */
	pdl_wait();
	int h = blockIdx.x, r = blockIdx.y, hd = a.head_dim, ns = n_splits(a.max_ctx);
	int limit = *a.d_pos + a.row0 + r + 1;
	int used = (limit + chunk - 1) / chunk;
	const float *p = a.part + ((size_t)r * a.n_heads + h) * ns * (hd + 2);
	for (int d = threadIdx.x; d < hd; d += blockDim.x) {
		const size_t e = (size_t)r * a.n_heads * hd + (size_t)h * hd + d;
		const float v = attn_merge_one(p, used, hd, d);
		a.out[e] = v;
		if (a.out16)
			a.out16[e] = to16_one(v, a.out16_bf16);
	}
}

/* Element offset of 16-byte chunk `chunk` of row `row` in a tile of rows of hd halves, swizzled so that
 * ldmatrix's 8 rows of one chunk fall in 8 different bank groups (prefill and decode tiles) */
static __device__ __forceinline__ int fa_swz(int row, int chunk, int hd)
{
	return row * hd + ((chunk ^ (row & 7)) << 3);
}

/* Warp-per-slice decode attention for head_dim = 32 * DPL (64, 128): lanes split the head dimension, so K
 * and V rows are read coalesced and the PV product needs no reduction; 16 positions per round,
 * their 32 row loads in flight together, then two steps of 8 whose scores are reduced across lanes
 * by a transposing butterfly (9 shuffles for 8 dot products). The 4 warps of a block take consecutive quarter slices of
 * one split (64, 128 or 256 positions, by max_ctx) and merge through shared memory; the split
 * partials use the layout of attn_split_kernel (stride n_splits(max_ctx)). */
#define AW_MAX_CHUNK 256

template <int DPL> struct kv_vec;
template <> struct kv_vec<2> { typedef uint32_t t; };
template <> struct kv_vec<4> { typedef uint2 t; };

template <int DPL> static __device__ __forceinline__ void kv_unpack(typename kv_vec<DPL>::t v, float f[DPL])
{
	const uint32_t *u = reinterpret_cast<const uint32_t *>(&v);
#pragma unroll
	for (int i = 0; i < DPL / 2; i++) {
		float2 t2 = __half22float2(u2h(u[i]));
		f[2 * i] = t2.x;
		f[2 * i + 1] = t2.y;
	}
}

/* s[0..7] per lane -> lane holds the warp sum for position ((l>>4)&1)*4 + ((l>>3)&1)*2 + ((l>>2)&1). */
static __device__ __forceinline__ float transpose_sum8(float s[8], int lane)
{
#pragma unroll
	for (int i = 0; i < 4; i++) {
		bool hi = lane & 16;
		float send = hi ? s[i] : s[i + 4], keep = hi ? s[i + 4] : s[i];
		s[i] = keep + __shfl_xor_sync(0xffffffffu, send, 16);
	}
#pragma unroll
	for (int i = 0; i < 2; i++) {
		bool hi = lane & 8;
		float send = hi ? s[i] : s[i + 2], keep = hi ? s[i + 2] : s[i];
		s[i] = keep + __shfl_xor_sync(0xffffffffu, send, 8);
	}
	bool hi = lane & 4;
	float send = hi ? s[0] : s[1], keep = hi ? s[1] : s[0];
	float v = keep + __shfl_xor_sync(0xffffffffu, send, 4);
	v += __shfl_xor_sync(0xffffffffu, v, 2);
	return v + __shfl_xor_sync(0xffffffffu, v, 1);
}

static __device__ __forceinline__ float reduce8(float v, bool is_max)
{
#pragma unroll
	for (int o = 4; o <= 16; o <<= 1) {
		float t = __shfl_xor_sync(0xffffffffu, v, o);
		v = is_max ? fmaxf(v, t) : v + t;
	}
	return v;
}

/* RING (awq_cu_attn.ring, sm_80+): the 16 positions' K/V rows of a round come through a lane-private
 * cp.async ring in dynamic shared memory (AW_RING rounds: the next round's copies are in flight
 * while this round's scores and softmax run, and the rows take no registers until their step of 8
 * reads them), instead of 32 register loads issued and then waited for at the top of every round.
 * Each lane reads back only the bytes it copied, so the ring needs no barrier. */
#define AW_RING 2

/* One lane's share of a cache row (8 or 4 bytes) into the ring: asynchronous on sm_80+, a plain
 * load and store before that (correct, not overlapped; the backend takes the ring on sm_80+ only) */
template <int DPL> static __device__ __forceinline__ void kv_cp(uint32_t dst, const void *src)
{
#if __CUDA_ARCH__ >= 800
	if (DPL == 4)
		asm volatile("cp.async.ca.shared.global [%0], [%1], 8;" ::"r"(dst), "l"(src) : "memory");
	else
		asm volatile("cp.async.ca.shared.global [%0], [%1], 4;" ::"r"(dst), "l"(src) : "memory");
#else
	if (DPL == 4) {
		const uint2 v = *reinterpret_cast<const uint2 *>(src);
		asm volatile("st.shared.v2.u32 [%0], {%1, %2};" ::"r"(dst), "r"(v.x), "r"(v.y) : "memory");
	} else {
		const uint32_t v = *reinterpret_cast<const uint32_t *>(src);
		asm volatile("st.shared.u32 [%0], %1;" ::"r"(dst), "r"(v) : "memory");
	}
#endif
}

/* Round rr's 16 K and 16 V rows of a warp's slice [wstart, wend) into its slot of the lane's ring
 * (positions past the slice repeat its last row, as the register loads do). */
template <int DPL>
static __device__ __forceinline__ void kv_issue(uint32_t ring, int rr, int wstart, int wend,
						const typename kv_vec<DPL>::t *kb, const typename kv_vec<DPL>::t *vb,
						size_t rs)
{
	const uint32_t esz = sizeof(typename kv_vec<DPL>::t);
	const uint32_t slot = ring + (uint32_t)(rr % AW_RING) * 32u * 32u * esz;
#pragma unroll
	for (int i = 0; i < 16; i++) {
		const size_t p = (size_t)min(wstart + 16 * rr + i, wend - 1);
		kv_cp<DPL>(slot + (uint32_t)i * 32u * esz, kb + p * rs);
		kv_cp<DPL>(slot + (uint32_t)(16 + i) * 32u * esz, vb + p * rs);
	}
}

/* The end of a decode attention block of 4 warps, each with its running (o, m, l) of the block's hg
 * heads in sm_o / sm_m / sm_l (m in log2 units; a warp without positions has m = -FLT_MAX, l = 0):
 * merged over the warps, then the answer (the only split, with a ticket), or the split's partial
 * for the combine kernel, or (with a ticket) the partial and, in the last split block, the merge of
 * all of them. */
template <int HD>
static __device__ __forceinline__ void attn_block_end(const struct awq_cu_attn &a, float (*sm_o)[AT_MAXG][HD],
						      float (*sm_m)[AT_MAXG], float (*sm_l)[AT_MAXG], int h0, int hg,
						      int split, int r, int limit, int chunk)
{
	__syncthreads();
	int ns = n_splits(a.max_ctx), used = (limit + chunk - 1) / chunk;
	float *orow = a.out + (size_t)r * a.n_heads * HD + (size_t)h0 * HD;
	uint16_t *orow16 = a.out16 ? a.out16 + (size_t)r * a.n_heads * HD + (size_t)h0 * HD : nullptr;
	if (a.ticket && used == 1) { /* the only split: the block's merge is the answer */
		for (int i = threadIdx.x; i < hg * HD; i += blockDim.x) {
			int h = i / HD, d = i % HD;
			float M = fmaxf(fmaxf(sm_m[0][h], sm_m[1][h]), fmaxf(sm_m[2][h], sm_m[3][h]));
			float num = 0.f, den = 0.f;
#pragma unroll
			for (int w = 0; w < 4; w++) {
				float f = exp2f(sm_m[w][h] - M);
				num += f * sm_o[w][h][d];
				den += f * sm_l[w][h];
			}
			orow[i] = num / den;
			if (orow16)
				orow16[i] = to16_one(num / den, a.out16_bf16);
		}
		return;
	}
	for (int i = threadIdx.x; i < hg * (HD + 2); i += blockDim.x) {
		int h = i / (HD + 2), d = i % (HD + 2);
		float M = fmaxf(fmaxf(sm_m[0][h], sm_m[1][h]), fmaxf(sm_m[2][h], sm_m[3][h]));
		float v = 0.f;
#pragma unroll
		for (int w = 0; w < 4; w++) {
			float f = exp2f(sm_m[w][h] - M);
			v += f * (d < HD ? sm_o[w][h][d] : sm_l[w][h]);
		}
		if (d == HD)
			v = M * 0.6931471805599453f; /* back to natural-log units for the combine kernel */
		a.part[(((size_t)r * a.n_heads + h0 + h) * ns + split) * (HD + 2) + d] = v;
	}
	if (!a.ticket)
		return;
	/* The last of the row's `used` split blocks of this head group merges all their partials (read
	 * through L2: other blocks wrote them) and resets the ticket for the next launch. */
	__shared__ int last;
	__syncthreads();
	if (threadIdx.x == 0) {
		__threadfence();
		unsigned *tk = a.ticket + (size_t)r * gridDim.x + blockIdx.x;
		last = atomicAdd(tk, 1u) == (unsigned)(used - 1);
		if (last)
			*tk = 0u;
	}
	__syncthreads();
	if (!last)
		return;
	__threadfence();
	for (int i = threadIdx.x; i < hg * HD; i += blockDim.x) {
		const float v = attn_merge_one(a.part + ((size_t)r * a.n_heads + h0 + i / HD) * ns * (HD + 2), used, HD, i % HD);
		orow[i] = v;
		if (orow16)
			orow16[i] = to16_one(v, a.out16_bf16);
	}
}

template <int DPL, bool RING>
static __device__ __forceinline__ void attn_warp_body(const struct awq_cu_attn &a, int hsub, int gper, int chunk)
{
	if (a.ticket)
		pdl_trigger(); /* no combine launch follows: the o projection may start streaming its weights */
	pdl_wait(); /* programmatic launch: the cache and q come from the kernels before */
	const int HD = 32 * DPL;
	typedef typename kv_vec<DPL>::t vec;
	__shared__ float sm_o[4][AT_MAXG][HD];
	__shared__ float sm_m[4][AT_MAXG], sm_l[4][AT_MAXG];
	int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
	int group = a.n_heads / a.n_kv_heads;
	int kvh = blockIdx.x / hsub, h0 = kvh * group + (blockIdx.x % hsub) * gper;
	int hg = min(gper, kvh * group + group - h0);
	int split = blockIdx.y, r = blockIdx.z;
	int limit = *a.d_pos + a.row0 + r + 1;
	int start = split * chunk, wpos = chunk / 4;
	if (start >= limit)
		return;
	int wstart = start + warp * wpos, wend = min(limit, wstart + wpos);
	size_t kvs = (size_t)a.n_kv_heads * HD, qcols = (size_t)a.n_heads * HD;
	const float qscale = a.scale * 1.4426950408889634f; /* scores in log2 units for exp2f */
	float q[AT_MAXG][DPL], o[AT_MAXG][DPL], m[AT_MAXG], l[AT_MAXG];
#pragma unroll
	for (int h = 0; h < AT_MAXG; h++) {
		m[h] = -FLT_MAX;
		l[h] = 0.f;
#pragma unroll
		for (int e = 0; e < DPL; e++)
			q[h][e] = o[h][e] = 0.f;
		if (h >= hg)
			continue;
		const float *qh = a.q + r * qcols + (size_t)(h0 + h) * HD + lane * DPL;
#pragma unroll
		for (int e = 0; e < DPL; e++) {
			float x = qh[e];
			q[h][e] = x * qscale;
		}
	}
	const vec *kb = reinterpret_cast<const vec *>(a.k + (size_t)kvh * HD + lane * DPL);
	const vec *vb = reinterpret_cast<const vec *>(a.v + (size_t)kvh * HD + lane * DPL);
	const size_t rs = kvs / DPL; /* row stride in vec units */
	int idx = ((lane >> 4) & 1) * 4 + ((lane >> 3) & 1) * 2 + ((lane >> 2) & 1);
	/* RING: this warp's lane-private ring, [AW_RING rounds][32 rows: 16 K, then 16 V][32 lanes] */
	extern __shared__ __align__(16) uint8_t aw_ring[];
	const uint32_t ring = smem_addr(aw_ring) + (uint32_t)(((warp * AW_RING * 32) * 32 + lane) * sizeof(vec));
	const vec *ring_rd = reinterpret_cast<const vec *>(aw_ring) + (warp * AW_RING * 32) * 32 + lane;
	const int nr = wend > wstart ? (wend - wstart + 15) / 16 : 0;
	if (RING) {
#pragma unroll
		for (int rr = 0; rr < AW_RING - 1; rr++) {
			if (rr < nr)
				kv_issue<DPL>(ring, rr, wstart, wend, kb, vb, rs);
			v2_commit();
		}
	}
	/* 16 positions per round: their 32 row loads go out together, then two passes of 8 (a warp
	 * walks 16 positions of a 64-position split: one round trip to memory instead of two) */
	for (int p0 = wstart, rr = 0; p0 < wend; p0 += 16, rr++) {
		vec kr[RING ? 1 : 16], vr[RING ? 1 : 16]; /* (RING: the rows stay in the ring until their step) */
		if (RING) {
			if (rr + AW_RING - 1 < nr)
				kv_issue<DPL>(ring, rr + AW_RING - 1, wstart, wend, kb, vb, rs);
			v2_commit();
			v2_wait<AW_RING - 1>(); /* round rr's copies (this lane's own) have landed */
		} else {
#pragma unroll
			for (int i = 0; i < (RING ? 1 : 16); i++) {
				size_t p = (size_t)min(p0 + i, wend - 1);
				kr[i] = kb[p * rs];
				vr[i] = vb[p * rs];
			}
		}
#pragma unroll
		for (int sub = 0; sub < 2; sub++) {
			const int pb = p0 + 8 * sub;
			if (pb >= wend) /* warp-uniform */
				break;
			vec k8[8], v8[8];
#pragma unroll
			for (int i = 0; i < 8; i++) {
				if (RING) { /* this step's 8 K and 8 V rows from the ring */
					const vec *sl = ring_rd + (rr % AW_RING) * 32 * 32;
					k8[i] = sl[(8 * sub + i) * 32];
					v8[i] = sl[(16 + 8 * sub + i) * 32];
				} else {
					k8[i] = kr[RING ? 0 : 8 * sub + i];
					v8[i] = vr[RING ? 0 : 8 * sub + i];
				}
			}
			bool valid = pb + idx < wend;
#pragma unroll
			for (int h = 0; h < AT_MAXG; h++) {
				if (h >= hg)
					break;
				float sc[8];
#pragma unroll
				for (int i = 0; i < 8; i++) {
					float f[DPL];
					kv_unpack<DPL>(k8[i], f);
					float d = 0.f;
#pragma unroll
					for (int e = 0; e < DPL; e++)
						d = fmaf(q[h][e], f[e], d);
					sc[i] = d;
				}
				float sv = transpose_sum8(sc, lane);
				sv = valid ? sv : -FLT_MAX;
				float mn = fmaxf(m[h], reduce8(sv, true));
				float alpha = exp2f(m[h] - mn), pv = valid ? exp2f(sv - mn) : 0.f;
				l[h] = l[h] * alpha + reduce8(pv, false);
				m[h] = mn;
#pragma unroll
				for (int e = 0; e < DPL; e++)
					o[h][e] *= alpha;
#pragma unroll
				for (int i = 0; i < 8; i++) {
					float pi = __shfl_sync(0xffffffffu, pv, ((i >> 2) & 1) * 16 + ((i >> 1) & 1) * 8 + (i & 1) * 4);
					float f[DPL];
					kv_unpack<DPL>(v8[i], f);
#pragma unroll
					for (int e = 0; e < DPL; e++)
						o[h][e] = fmaf(pi, f[e], o[h][e]);
				}
			}
		}
	}
#pragma unroll
	for (int h = 0; h < AT_MAXG; h++) {
		if (h >= hg)
			break;
#pragma unroll
		for (int e = 0; e < DPL; e++)
			sm_o[warp][h][lane * DPL + e] = o[h][e];
		if (lane == 0) {
			sm_m[warp][h] = m[h];
			sm_l[warp][h] = l[h];
		}
	}
	attn_block_end<HD>(a, sm_o, sm_m, sm_l, h0, hg, split, r, limit, chunk);
}

template <int DPL>
__global__ void __launch_bounds__(128) attn_warp_kernel(struct awq_cu_attn a, int hsub, int gper, int chunk)
{
	attn_warp_body<DPL, false>(a, hsub, gper, chunk);
}

/* (at least one block per SM: without it the head-dim-64 form was held to 128 registers and spilled) */
template <int DPL>
__global__ void __launch_bounds__(128, 1) attn_ring_kernel(struct awq_cu_attn a, int hsub, int gper, int chunk)
{
	attn_warp_body<DPL, true>(a, hsub, gper, chunk);
}

/* Grouped-query decode attention on tensor cores (awq_cu_attn.mma, sm_80+). With g query heads per
 * KV head, the warp kernel above does g heads' dot products, softmax and PV sums on every K/V row
 * with CUDA-core instructions: ~190 per head and 8 positions, so qwen3-8b's 32/8 heads after 16384
 * positions issued ~1.6 instructions per cycle for 41% of the copy rate (ncu, H200), where 32/32
 * heads of the same kernel reach 76-90%. Here a warp's heads are the rows of an m16n8k16 product
 * (rows hg..15 zero): per 16 positions, S = Q K^T is HD / 16 x 2 mma, P V is HD / 8 mma, with
 * ldmatrix from a per-warp cp.async ring of AM_STAGES tiles (16 positions of K then V, swizzled as
 * the prefill tiles): ~150 instructions for all the group's heads. q and the probabilities go to
 * f16 as in the prefill kernel. Blocks, splits and partials are the warp kernel's; the ring's space
 * holds the warps' (o, m, l) for the block's merge once every warp is done with it. */
#define AM_STAGES 3

/* ring slots per warp of attn_mma_kernel: AM_STAGES, or the warp's tiles (chunk / 4 positions in
 * tiles of 16) where it has fewer; the kernel's ring layout and its launch's shared memory */
static __host__ __device__ inline int am_slots(int chunk)
{
	return min(AM_STAGES, chunk / 64);
}

template <int HD>
__global__ void __launch_bounds__(128) attn_mma_kernel(struct awq_cu_attn a, int hsub, int gper, int chunk)
{
	if (a.ticket)
		pdl_trigger(); /* no combine launch follows: the o projection may start streaming its weights */
	pdl_wait(); /* programmatic launch: the cache and q come from the kernels before */
	constexpr int CH = HD / 8, TILE = 16 * HD; /* 16-byte chunks per row; halves per K (or V) tile */
	extern __shared__ __align__(16) uint16_t am_smem[];
	__shared__ float sm_m[4][AT_MAXG], sm_l[4][AT_MAXG];
	const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
	const int group = a.n_heads / a.n_kv_heads;
	const int kvh = blockIdx.x / hsub, h0 = kvh * group + (blockIdx.x % hsub) * gper;
	const int hg = min(gper, kvh * group + group - h0);
	const int split = blockIdx.y, r = blockIdx.z;
	const int limit = *a.d_pos + a.row0 + r + 1;
	const int start = split * chunk, wpos = chunk / 4;
	if (start >= limit)
		return;
	const int wstart = start + warp * wpos, wend = min(limit, wstart + wpos);
	const int nt = wend > wstart ? (wend - wstart + 15) / 16 : 0;
	const size_t kvs = (size_t)a.n_kv_heads * HD, qcols = (size_t)a.n_heads * HD;
	uint16_t *ring = am_smem + (size_t)warp * am_slots(chunk) * 2 * TILE;
	const uint16_t *kg = a.k + (size_t)kvh * HD, *vg = a.v + (size_t)kvh * HD;
	/* tile tt's 16 K and 16 V rows into its ring slot, rows past the slice zero (masked below) */
	auto issue = [&](int tt) {
		uint16_t *ks = ring + (tt % AM_STAGES) * 2 * TILE, *vs = ks + TILE;
#pragma unroll
		for (int i = lane; i < 16 * CH; i += 32) {
			const int row = i / CH, ch = i % CH, p = wstart + 16 * tt + row;
			const bool ok = p < wend;
			const size_t off = (size_t)(ok ? p : wstart) * kvs + ch * 8;
			cp16(ks + fa_swz(row, ch, HD), kg + off, ok);
			cp16(vs + fa_swz(row, ch, HD), vg + off, ok);
		}
	};
#pragma unroll
	for (int st = 0; st < AM_STAGES - 1; st++) {
		if (st < nt)
			issue(st);
		cp_commit();
	}
	/* q of head h0 + g (zero past the block's heads), scaled to log2 units, as A fragments */
	const float qscale = a.scale * 1.4426950408889634f;
	uint32_t qa[HD / 16][4];
	const float *qh = a.q + r * qcols + (size_t)(h0 + min(g, hg - 1)) * HD + 2 * t;
#pragma unroll
	for (int j = 0; j < HD / 16; j++) {
		float2 x0 = *reinterpret_cast<const float2 *>(qh + 16 * j);
		float2 x1 = *reinterpret_cast<const float2 *>(qh + 16 * j + 8);
		const float sc = g < hg ? qscale : 0.f;
		qa[j][0] = pack_half2(x0.x * sc, x0.y * sc);
		qa[j][1] = 0u;
		qa[j][2] = pack_half2(x1.x * sc, x1.y * sc);
		qa[j][3] = 0u;
	}
	float o[HD / 8][4];
#pragma unroll
	for (int i = 0; i < HD / 8; i++)
		o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
	float m = -FLT_MAX, l = 0.f; /* of row g (head h0 + g); rows g + 8 are padding */
	for (int tt = 0; tt < nt; tt++) {
		if (tt + AM_STAGES - 1 < nt)
			issue(tt + AM_STAGES - 1);
		cp_commit();
		cp_wait<AM_STAGES - 1>();
		__syncwarp(); /* every lane's copies of tile tt have landed */
		const uint16_t *ks = ring + (tt % AM_STAGES) * 2 * TILE, *vs = ks + TILE;
		float sacc[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
#pragma unroll
		for (int j = 0; j < HD / 16; j++) {
			uint32_t b[4];
			const int mat = lane >> 3, row = (lane & 7) + (mat >> 1) * 8;
			ldmatrix_x4(b, ks + fa_swz(row, 2 * j + (mat & 1), HD));
			mma_f16(sacc[0], qa[j], b[0], b[1]);
			mma_f16(sacc[1], qa[j], b[2], b[3]);
		}
		/* this lane's positions: 2t, 2t + 1 (tile 0), 8 + 2t, 9 + 2t (tile 1) */
		const int pb = wstart + 16 * tt + 2 * t;
		float x[4] = {pb < wend ? sacc[0][0] : -INFINITY, pb + 1 < wend ? sacc[0][1] : -INFINITY,
			      pb + 8 < wend ? sacc[1][0] : -INFINITY, pb + 9 < wend ? sacc[1][1] : -INFINITY};
		float mx = fmaxf(fmaxf(x[0], x[1]), fmaxf(x[2], x[3]));
		mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
		mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
		const float mn = fmaxf(m, mx), alpha = exp2f(m - mn);
		float pr[4];
#pragma unroll
		for (int i = 0; i < 4; i++)
			pr[i] = exp2f(x[i] - mn);
		l = l * alpha + ((pr[0] + pr[1]) + (pr[2] + pr[3]));
		m = mn;
#pragma unroll
		for (int i = 0; i < HD / 8; i++) {
			o[i][0] *= alpha;
			o[i][1] *= alpha;
		}
		const uint32_t pa[4] = {pack_half2(pr[0], pr[1]), 0u, pack_half2(pr[2], pr[3]), 0u};
#pragma unroll
		for (int dn = 0; dn < HD / 8; dn += 2) {
			uint32_t b[4];
			const int row = (lane & 7) + ((lane >> 3) & 1) * 8;
			ldmatrix_x4_trans(b, vs + fa_swz(row, dn + (lane >> 4), HD));
			mma_f16(o[dn], pa, b[0], b[1]);
			mma_f16(o[dn + 1], pa, b[2], b[3]);
		}
		__syncwarp(); /* the slot is refilled two tiles on */
	}
	l += __shfl_xor_sync(0xffffffffu, l, 1);
	l += __shfl_xor_sync(0xffffffffu, l, 2);
	__syncthreads(); /* every warp is done with its ring: its space holds the warps' o */
	float(*sm_o)[AT_MAXG][HD] = reinterpret_cast<float(*)[AT_MAXG][HD]>(am_smem);
	if (g < hg) {
#pragma unroll
		for (int dn = 0; dn < HD / 8; dn++) {
			sm_o[warp][g][dn * 8 + 2 * t] = o[dn][0];
			sm_o[warp][g][dn * 8 + 2 * t + 1] = o[dn][1];
		}
		if (t == 0) {
			sm_m[warp][g] = m;
			sm_l[warp][g] = l;
		}
	}
	attn_block_end<HD>(a, sm_o, sm_m, sm_l, h0, hg, split, r, limit, chunk);
}

/* dynamic shared memory of attn_mma_kernel: 4 warps' rings (at least the warps' o of the merge) */
static int am_smem_bytes(int hd, int chunk)
{
	return 4 * am_slots(chunk) * 2 * 16 * hd * 2;
}

extern "C" int awq_cu_attn_decode_plan(const struct awq_cu_attn *a, struct awq_cu_attn_plan *p)
{
	const int group = a->n_heads / a->n_kv_heads, hd = a->head_dim;
	if (hd % 8 || hd > AT_MAXD || a->n_heads % a->n_kv_heads || a->rows < 1 ||
	    (a->ticket && a->rows > AWQ_CU_DECODE_ROWS)) /* the tickets cover AWQ_CU_DECODE_ROWS rows */
		return -1;
	memset(p, 0, sizeof(*p));
	if (hd != 64 && hd != 128) { /* the generic kernel never merges */
		p->kernel = AWQ_CU_ATTN_SPLIT;
		p->chunk = AT_CHUNK;
		p->gper = min(group, AT_MAXG);
		p->hsub = (group + AT_MAXG - 1) / AT_MAXG;
		p->grid[0] = a->n_kv_heads * p->hsub, p->grid[1] = n_splits(a->max_ctx), p->grid[2] = a->rows;
		return 0;
	}
	/* Positions per block: short caches get short splits, so that a decode step at a few hundred
	 * positions still spreads over many SMs (each warp walks chunk / 4 positions). */
	int chunk = a->max_ctx <= 1024 ? 64 : a->max_ctx <= 4096 ? 128 : AW_MAX_CHUNK;
	int splits = (a->max_ctx + chunk - 1) / chunk;
	/* Query heads per block (of one KV head's group): up to 8, halved while the grid has fewer
	 * than 256 blocks. With grouped-query heads and a short cache the blocks were too few and each
	 * walked 8 heads: qwen3-30b-a3b (32/4 heads) at 640 positions ran 40 blocks and 17 us per
	 * layer. The split blocks of one KV head re-read its K/V rows, mostly from L2. */
	int gper = min(group, AT_MAXG);
	while (gper > 1 && (long)a->n_kv_heads * ((group + gper - 1) / gper) * splits * a->rows < 256)
		gper = (gper + 1) / 2;
	const int hsub = (group + gper - 1) / gper;
	/* Tensor cores where a block has two heads or more: qwen3-8b (32/8) after 4096 and 16384
	 * positions 438 and 337 tok/s against 389 and 299 on the ring kernel; at one head per block
	 * (short caches: the halving above) the ring kernel's 16 positions per 190 instructions are
	 * no worse, and qwen3-30b-a3b decode at max_ctx 144 ran 508-513 against 518-519 tok/s on
	 * tensor cores (H200, 2026-12-02; docs/perf.md session 27). Past 2 blocks per SM of
	 * 512-position splits, those: the ring of each warp runs 8 tiles instead of 4 (qwen3-8b after
	 * 16384 positions 359 against 337 tok/s; after 4096, with 72 such blocks, 430 against 438). */
	if (a->mma && gper > 1) {
		p->kernel = AWQ_CU_ATTN_MMA;
		if (a->mma_chunk == 128 || a->mma_chunk == 256 || a->mma_chunk == 512 || a->mma_chunk == 1024) {
			chunk = a->mma_chunk;
			splits = (a->max_ctx + chunk - 1) / chunk;
		} else if ((long)a->n_kv_heads * hsub * ((a->max_ctx + 511) / 512) * a->rows >= 256) {
			chunk = 512;
			splits = (a->max_ctx + chunk - 1) / chunk;
		} else if (a->max_ctx > 2048 && a->max_ctx <= 4096) {
			/* spans of 2049-4096 positions in splits of 256, not 128: in the model after
			 * 2048 and 3072 positions qwen3-8b +3.8/+3.0%, llama3-8b +1.7/+2.8%, qwen2.5-7b
			 * +0.2/+1.1%, qwen3-30b-a3b +0.7/+3.5% (knob A/B; as the rule: qwen3-8b +3.6/+3.0%, 30b-a3b
			 * +0.7/+3.4%); after 1024 (a span of 2048) mixed,
			 * -0.6..+2.3%, so 2048 keeps 128 (H200, docs/perf.md session 30) */
			chunk = 256;
			splits = (a->max_ctx + chunk - 1) / chunk;
		}
		p->smem = am_smem_bytes(hd, chunk);
	} else if (a->ring) {
		p->kernel = AWQ_CU_ATTN_RING;
		p->smem = 4 * AW_RING * 32 * 32 * (hd == 64 ? 4 : 8);
	} else {
		p->kernel = AWQ_CU_ATTN_WARP;
	}
	/* The last split block merges only when its heads x head_dim outputs are one per thread (128):
	 * at 8 heads of 128 its threads walked 8 outputs each, every one two passes over the partials
	 * in L2, and the one launch took 24.1 us against 11.6 for split + combine (awq-cuda-bench, ctx
	 * 640, H200). */
	p->merged = a->ticket && gper * hd <= 128;
	/* Split rows past the cache's (min_grid): their blocks find start >= limit and leave. At
	 * max_ctx 129 qwen3-8b's grid was 96 blocks and its decode 443 tok/s against 480 at max_ctx 513
	 * (288 blocks), the same blocks doing the same work; padded to 1024 blocks, 481 (H200,
	 * 2026-11-30). Not the grid's own work, and not the o projection's blocks doubling up on the
	 * idle SMs; it is the early trigger of the kernels: a short grid is resident at once, so every
	 * block triggers at once and the o projection (and the kernels after it) are placed while the
	 * q/k/v GEMV two launches back still streams. Without the trigger (or with it after the wait)
	 * the unpadded grid ran 470-476 tok/s; padded with the trigger at the start, 479 (docs/perf.md,
	 * 2026-12-01). */
	const int cols = a->n_kv_heads * hsub * a->rows;
	p->chunk = chunk, p->gper = gper, p->hsub = hsub;
	p->grid[0] = a->n_kv_heads * hsub, p->grid[1] = max(splits, (a->min_grid + cols - 1) / cols), p->grid[2] = a->rows;
	return 0;
}

/* One launch of a split kernel of 128 threads with smem bytes of dynamic shared memory (0: none) */
static cudaError_t attn_launch(void (*k)(struct awq_cu_attn, int, int, int), dim3 grid, int smem, cudaStream_t s,
			       const struct awq_cu_attn &a, int hsub, int gper, int chunk)
{
	cudaError_t e = smem ? cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, smem) : cudaSuccess;
	return e != cudaSuccess ? e : awq_cu_launch(k, grid, dim3(128), smem, s, a.pdl, a, hsub, gper, chunk);
}

extern "C" cudaError_t awq_cu_attn_decode(cudaStream_t s, const struct awq_cu_attn *a0)
{
	struct awq_cu_attn_plan p;
	if (awq_cu_attn_decode_plan(a0, &p))
		return cudaErrorInvalidValue;
	struct awq_cu_attn a = *a0;
	if (!p.merged)
		a.ticket = NULL;
	const int hd = a.head_dim, hsub = p.hsub, gper = p.gper, chunk = p.chunk;
	const dim3 grid(p.grid[0], p.grid[1], p.grid[2]);
	cudaError_t e = cudaSuccess;
	switch (p.kernel) { /* the ring and tensor-core kernels: sm_80+ (the caller checks) */
	case AWQ_CU_ATTN_MMA:
		e = attn_launch(hd == 64 ? attn_mma_kernel<64> : attn_mma_kernel<128>, grid, p.smem, s, a, hsub, gper, chunk);
		break;
	case AWQ_CU_ATTN_RING:
		e = attn_launch(hd == 64 ? attn_ring_kernel<2> : attn_ring_kernel<4>, grid, p.smem, s, a, hsub, gper, chunk);
		break;
	case AWQ_CU_ATTN_WARP:
		e = attn_launch(hd == 64 ? attn_warp_kernel<2> : attn_warp_kernel<4>, grid, 0, s, a, hsub, gper, chunk);
		break;
	default:
		attn_split_kernel<<<grid, AT_THREADS, 0, s>>>(a, hsub);
		e = cudaGetLastError();
	}
	if (e != cudaSuccess || p.merged) /* merged: the last split block wrote the answer */
		return e;
	return awq_cu_launch(attn_combine_kernel, dim3(a.n_heads, a.rows), dim3(hd < 32 ? 32 : hd), 0, s, a.pdl, a, chunk);
}

/* ---- prefill: tensor-core flash attention ---- */
#define FA_Q 64
#define FA_KV 64


/* K and V rows kv0 .. kv0 + FA_KV - 1 of one KV head into swizzled tiles; rows past `last` are zero. */
static __device__ __forceinline__ void fa_load(const struct awq_cu_attn &a, int kv0, int last, size_t kvs, int kvh,
					       uint16_t *ks, uint16_t *vs)
{
	const int hd = a.head_dim, ch_n = hd / 8;
	for (int i = threadIdx.x; i < FA_KV * ch_n; i += blockDim.x) {
		int row = i / ch_n, ch = i % ch_n;
		bool ok = kv0 + row <= last;
		size_t off = ok ? (size_t)(kv0 + row) * kvs + (size_t)kvh * hd + ch * 8 : 0;
		cp16(ks + fa_swz(row, ch, hd), a.k + off, ok);
		cp16(vs + fa_swz(row, ch, hd), a.v + off, ok);
	}
}

/* K and V tiles are double-buffered (the next tile's cp.async runs under this tile's mma); Q is
 * staged through the second buffer before the loop and then lives in registers. */
template <int HD>
__global__ void __launch_bounds__(128) attn_flash_kernel(struct awq_cu_attn a)
{
	extern __shared__ __align__(16) uint16_t fsm[];
	const int BUF = 2 * FA_KV * HD; /* one K tile then one V tile */
	uint16_t *qs = fsm + BUF;
	const int CH = HD / 8;
	int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
	int h = blockIdx.y, kvh = h / (a.n_heads / a.n_kv_heads);
	int q0 = blockIdx.x * FA_Q;
	int pos = *a.d_pos + a.row0;
	size_t qcols = (size_t)a.n_heads * HD, kvs = (size_t)a.n_kv_heads * HD;
	int last = pos + min(q0 + FA_Q, a.rows) - 1;
	fa_load(a, 0, last, kvs, kvh, fsm, fsm + FA_KV * HD);
	cp_commit();
	/* q of the block's rows as f16, one chunk of 8 dims per thread and step (zero past the rows) */
	for (int i = threadIdx.x; i < FA_Q * CH; i += 128) {
		int row = i / CH, ch = i % CH;
		float x[8] = {0};
		if (q0 + row < a.rows) {
			const float *src = a.q + (size_t)(q0 + row) * qcols + (size_t)h * HD + ch * 8;
#pragma unroll
			for (int e = 0; e < 8; e++)
				x[e] = src[e];
		}
		*reinterpret_cast<uint4 *>(qs + fa_swz(row, ch, HD)) =
			make_uint4(pack_half2(x[0], x[1]), pack_half2(x[2], x[3]), pack_half2(x[4], x[5]), pack_half2(x[6], x[7]));
	}
	__syncthreads();
	uint32_t qa[HD / 16][4];
#pragma unroll
	for (int j = 0; j < HD / 16; j++) {
		int row = warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
		ldmatrix_x4(qa[j], qs + fa_swz(row, 2 * j + (lane >> 4), HD));
	}
	float o[HD / 8][4];
#pragma unroll
	for (int i = 0; i < HD / 8; i++)
		o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
	float m[2] = {-FLT_MAX, -FLT_MAX}, l[2] = {0.f, 0.f};
	const float sl2 = a.scale * 1.4426950408889634f;
	int qpos[2] = {pos + q0 + warp * 16 + g, pos + q0 + warp * 16 + g + 8};
	int ntiles = last / FA_KV + 1;
	__syncthreads(); /* Q fragments are in registers: buffer 1 is free for K/V */
	for (int tt = 0; tt < ntiles; tt++) {
		int kv0 = tt * FA_KV;
		const uint16_t *ks = fsm + (tt & 1) * BUF, *vs = ks + FA_KV * HD;
		if (tt + 1 < ntiles) {
			uint16_t *nk = fsm + ((tt + 1) & 1) * BUF;
			fa_load(a, (tt + 1) * FA_KV, last, kvs, kvh, nk, nk + FA_KV * HD);
			cp_commit();
			cp_wait<1>();
		} else {
			cp_wait<0>();
		}
		__syncthreads();
		float sacc[FA_KV / 8][4];
#pragma unroll
		for (int n = 0; n < FA_KV / 8; n++)
			sacc[n][0] = sacc[n][1] = sacc[n][2] = sacc[n][3] = 0.f;
#pragma unroll
		for (int j = 0; j < HD / 16; j++)
#pragma unroll
			for (int np = 0; np < FA_KV / 16; np++) {
				uint32_t b[4];
				int mat = lane >> 3, row = np * 16 + (lane & 7) + (mat >> 1) * 8;
				ldmatrix_x4(b, ks + fa_swz(row, 2 * j + (mat & 1), HD));
				mma_f16(sacc[2 * np], qa[j], b[0], b[1]);
				mma_f16(sacc[2 * np + 1], qa[j], b[2], b[3]);
			}
		float mx[2] = {m[0], m[1]};
#pragma unroll
		for (int n = 0; n < FA_KV / 8; n++)
#pragma unroll
			for (int i = 0; i < 4; i++) {
				int kp = kv0 + n * 8 + 2 * t + (i & 1);
				float v = kp <= qpos[i >> 1] ? sacc[n][i] * sl2 : -INFINITY;
				sacc[n][i] = v;
				mx[i >> 1] = fmaxf(mx[i >> 1], v);
			}
		float alpha[2];
#pragma unroll
		for (int r = 0; r < 2; r++) {
			mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
			mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
			alpha[r] = exp2f(m[r] - mx[r]);
			m[r] = mx[r];
			l[r] *= alpha[r];
		}
#pragma unroll
		for (int i = 0; i < HD / 8; i++) {
			o[i][0] *= alpha[0];
			o[i][1] *= alpha[0];
			o[i][2] *= alpha[1];
			o[i][3] *= alpha[1];
		}
#pragma unroll
		for (int n = 0; n < FA_KV / 8; n++)
#pragma unroll
			for (int i = 0; i < 4; i++) {
				float p = exp2f(sacc[n][i] - m[i >> 1]);
				sacc[n][i] = p;
				l[i >> 1] += p;
			}
#pragma unroll
		for (int kk = 0; kk < FA_KV / 16; kk++) {
			uint32_t pa[4] = {pack_half2(sacc[2 * kk][0], sacc[2 * kk][1]),
					  pack_half2(sacc[2 * kk][2], sacc[2 * kk][3]),
					  pack_half2(sacc[2 * kk + 1][0], sacc[2 * kk + 1][1]),
					  pack_half2(sacc[2 * kk + 1][2], sacc[2 * kk + 1][3])};
#pragma unroll
			for (int dn = 0; dn < HD / 8; dn += 2) {
				uint32_t b[4];
				int row = kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
				ldmatrix_x4_trans(b, vs + fa_swz(row, dn + (lane >> 4), HD));
				mma_f16(o[dn], pa, b[0], b[1]);
				mma_f16(o[dn + 1], pa, b[2], b[3]);
			}
		}
		__syncthreads(); /* the next iteration refills the buffer read here */
	}
#pragma unroll
	for (int r = 0; r < 2; r++) {
		l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
		l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
	}
#pragma unroll
	for (int r = 0; r < 2; r++) {
		int row = q0 + warp * 16 + g + 8 * r;
		if (row >= a.rows)
			continue;
		float inv = 1.0f / l[r];
		float *dst = a.out + (size_t)row * qcols + (size_t)h * HD;
		uint32_t *dst16 = a.out16 ? reinterpret_cast<uint32_t *>(a.out16 + (size_t)row * qcols + (size_t)h * HD) : nullptr;
#pragma unroll
		for (int i = 0; i < HD / 8; i++) {
			float v0 = o[i][2 * r] * inv, v1 = o[i][2 * r + 1] * inv;
			dst[i * 8 + 2 * t] = v0;
			dst[i * 8 + 2 * t + 1] = v1;
			if (dst16) /* qcols and HD are even: 4-byte aligned pairs */
				dst16[(i * 8 + 2 * t) / 2] = pack16x2(v0, v1, a.out16_bf16);
		}
	}
}

extern "C" int awq_cu_attn_prefill_ok(int head_dim, int cc_major)
{
	return cc_major >= 8 && (head_dim == 64 || head_dim == 128);
}

extern "C" cudaError_t awq_cu_attn_prefill(cudaStream_t s, const struct awq_cu_attn *a)
{
	dim3 grid((a->rows + FA_Q - 1) / FA_Q, a->n_heads);
	size_t smem = (size_t)4 * FA_KV * a->head_dim * 2;
	cudaError_t e;
	if (a->head_dim == 128) {
		e = cudaFuncSetAttribute(attn_flash_kernel<128>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
		if (e == cudaSuccess)
			attn_flash_kernel<128><<<grid, 128, smem, s>>>(*a);
	} else if (a->head_dim == 64) {
		e = cudaFuncSetAttribute(attn_flash_kernel<64>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
		if (e == cudaSuccess)
			attn_flash_kernel<64><<<grid, 128, smem, s>>>(*a);
	} else {
		return cudaErrorInvalidValue;
	}
	return e != cudaSuccess ? e : cudaGetLastError();
}
