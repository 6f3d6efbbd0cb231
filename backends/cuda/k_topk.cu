/* Top-k of one row of logits on the device (awq_cu_topk), so that sampling reads back k candidates
 * instead of the row (608 KB for a 152k vocabulary) and the host does not rank the row.
 *
 * Each entry becomes a 64-bit key: the float's bits made order-preserving as an unsigned integer
 * (-0 as +0, NaN below every number) in the high word, the column inverted in the low word, so that
 * keys are unique and a larger key is a larger value, then a lower column: the host sampler's order.
 * No entry's key is 0 (0 pads lists).
 *
 * One launch: each block takes the k best of a slice of TOPK_SLICE columns (its 16 per thread in
 * registers) and writes them ranked to part[]; the last block to arrive (ticket, reset for the next
 * launch) takes the k best of those and ranks them. The kernel is latency-bound (the row is read
 * once), so each selection avoids passes: a lower bound of the k-th key first (topk_floor: every
 * warp's ceil(k/8)-th best thread maximum, the least of those, costs one pass and shuffles), then
 * the few keys of at least it (typically little more than k) are ranked by counting. Radix
 * selection runs only where many keys pass the bound (topk_radix). Session 31: the first design,
 * radix selection over every key with __match_any_sync, and loads one at a time, took 44 us for a
 * 152k row at k = 40. */
#include <cuda_runtime.h>
#include <stdint.h>

#include "cu_kernels.h"

#define TOPK_SLICE 4096
#define TOPK_THREADS 256
#define TOPK_PER (TOPK_SLICE / TOPK_THREADS)
#define TOPK_WARPS (TOPK_THREADS / 32)
#define TOPK_BUF 4096 /* shared keys: candidates, then the ranked and the draw's weights */

typedef unsigned long long u64;

static __device__ __forceinline__ u64 topk_key(float v, int col)
{
	uint32_t b = __float_as_uint(v);
	if (b == 0x80000000u)
		b = 0; /* -0 ranks as +0 */
	if ((b & 0x7fffffffu) > 0x7f800000u)
		b = 0; /* NaN: below every number (-inf is 0x007fffff) */
	else
		b = (b & 0x80000000u) ? ~b : b | 0x80000000u;
	return ((u64)b << 32) | (uint32_t)~(uint32_t)col;
}

struct topk_smem {
	unsigned hist[256];
	u64 prefix, wfloor[TOPK_WARPS];
	int remaining, done, count;
};

/* The keys are visited through each(f), which calls f(key) for every key of the calling thread (0
 * for none); the whole block (TOPK_THREADS threads) calls these functions. */

/* A lower bound of the k-th largest key: each warp's ceil(k / 8)-th largest thread maximum, the
 * least over the warps. Those ceil(k / 8) x 8 >= k maxima are distinct keys (or 0, and then the
 * bound is 0) of at least the bound. */
template <class Each> static __device__ u64 topk_floor(Each each, int k, topk_smem &sm)
{
	const int lane = threadIdx.x & 31, j = (k + TOPK_WARPS - 1) / TOPK_WARPS;
	u64 mx = 0;
	each([&](u64 key) { mx = key > mx ? key : mx; });
	int rank = 0; /* among the warp's maxima, equal ones (0) by lane */
#pragma unroll 8
	for (int l = 0; l < 32; l++) {
		const u64 o = __shfl_sync(0xffffffffu, mx, l);
		rank += o > mx || (o == mx && l < lane);
	}
	if (rank == j - 1)
		sm.wfloor[threadIdx.x >> 5] = mx;
	__syncthreads();
	u64 f = sm.wfloor[0];
	for (int w = 1; w < TOPK_WARPS; w++)
		f = sm.wfloor[w] < f ? sm.wfloor[w] : f;
	return f;
}

/* The keys of at least bound (nonzero) into out[0..cap), in no particular order; returns how many
 * there are (more than cap: the rest were not written). */
template <class Each> static __device__ int topk_collect(Each each, u64 bound, u64 *out, int cap, topk_smem &sm)
{
	if (threadIdx.x == 0)
		sm.count = 0;
	__syncthreads();
	each([&](u64 key) {
		if (key && key >= bound) {
			const int i = atomicAdd(&sm.count, 1);
			if (i < cap)
				out[i] = key;
		}
	});
	__syncthreads();
	const int n = sm.count;
	__syncthreads(); /* read before a next call resets it */
	return n;
}

/* Radix selection of the `want` largest keys (more than `want` are nonzero), eight bits a pass from
 * the top: a histogram of the next digit among the keys that share the prefix found so far, the
 * digit where the want-th key falls, until the keys sharing the prefix are exactly the ones still
 * wanted. Returns the bound: the `want` keys of at least it are the largest. */
template <class Each> static __device__ u64 topk_radix(Each each, int want, topk_smem &sm)
{
	if (threadIdx.x == 0) {
		sm.prefix = 0;
		sm.remaining = want;
		sm.done = 0;
	}
	for (int shift = 56;; shift -= 8) {
		sm.hist[threadIdx.x] = 0;
		__syncthreads();
		const u64 pf = sm.prefix;
		each([&](u64 key) {
			if (key && (shift == 56 || (key >> (shift + 8)) == pf))
				atomicAdd(&sm.hist[(key >> shift) & 255], 1u);
		});
		__syncthreads();
		if (threadIdx.x < 32) {
			/* lane L sums bins 255 - 8L down to 248 - 8L; the lane whose range holds the
			 * remaining-th key (counting from the top) walks its bins */
			const int lane = threadIdx.x, r = sm.remaining, hi = 255 - 8 * lane;
			unsigned local = 0;
			for (int b = 0; b < 8; b++)
				local += sm.hist[hi - b];
			unsigned incl = local;
			for (int o = 1; o < 32; o <<= 1) {
				const unsigned up = __shfl_up_sync(0xffffffffu, incl, o);
				if (lane >= o)
					incl += up;
			}
			const unsigned excl = incl - local;
			__syncwarp(); /* every lane has read sm.remaining before one writes it */
			if (excl < (unsigned)r && (unsigned)r <= incl) {
				unsigned c = excl;
				int d = hi;
				for (int b = 0; b < 8; b++, d--) {
					if (c + sm.hist[d] >= (unsigned)r)
						break;
					c += sm.hist[d];
				}
				const int left = r - (int)c;
				sm.prefix = (sm.prefix << 8) | (u64)d;
				sm.remaining = left;
				sm.done = sm.hist[d] == (unsigned)left || shift == 0;
			}
		}
		__syncthreads();
		const u64 p = sm.prefix;
		const int done = sm.done;
		__syncthreads(); /* read before the next pass or call changes them */
		if (done)
			return p << shift;
	}
}

/* Keys c[0..n) (n <= TOPK_THREADS, unique or 0) ranked by counting: the k best into out[0..k), 0
 * after the last. out must not overlap c. */
static __device__ void topk_rank(const u64 *c, int n, int k, u64 *out)
{
	const int t = threadIdx.x;
	if (t < n && c[t]) {
		const u64 key = c[t];
		int rank = 0;
		for (int j = 0; j < n; j++)
			rank += c[j] > key;
		if (rank < k)
			out[rank] = key;
	}
	int nz = 0; /* how many keys are nonzero: the ranks filled */
	for (int j = 0; j < n; j++)
		nz += c[j] != 0;
	if (t >= nz && t < k)
		out[t] = 0;
	__syncthreads();
}

/* The k best keys of each(), ranked, into out[0..k) (0 after the last where there are fewer).
 * cand: cap keys of shared scratch, tmp: AWQ_CU_TOPK_MAX more; none overlaps out. */
template <class Each>
static __device__ void topk_select(Each each, int k, u64 *cand, int cap, u64 *tmp, u64 *out, topk_smem &sm)
{
	const u64 floor = topk_floor(each, k, sm);
	const int n = topk_collect(each, floor, cand, cap, sm);
	if (n <= TOPK_THREADS) {
		topk_rank(cand, n, k, out);
		return;
	}
	if (n <= cap) {
		auto in_cand = [&](auto f) {
#pragma unroll 4
			for (int i = threadIdx.x; i < n; i += TOPK_THREADS)
				f(cand[i]);
		};
		topk_collect(in_cand, topk_radix(in_cand, k, sm), tmp, k, sm);
	} else {
		auto above = [&](auto f) { each([&](u64 key) { f(key >= floor ? key : 0); }); };
		topk_collect(above, topk_radix(above, k, sm), tmp, k, sm);
	}
	topk_rank(tmp, k, k, out);
}

/* xoshiro256** (core/sampler.c awq_rng_next): the next output, the state advanced */
static __device__ unsigned long long rng_next(unsigned long long *st)
{
	unsigned long long s0 = st[0], s1 = st[1], s2 = st[2], s3 = st[3];
	const unsigned long long r = ((s1 * 5) << 7 | (s1 * 5) >> 57) * 9, t = s1 << 17;
	s2 ^= s0;
	s3 ^= s1;
	s1 ^= s2;
	s0 ^= s3;
	s2 ^= t;
	s3 = s3 << 45 | s3 >> 19;
	st[0] = s0, st[1] = s1, st[2] = s2, st[3] = s3;
	return r;
}

/* The draw of the host sampler's top-k branch (core/sampler.c: finish_probs, draw) over the k ranked
 * candidates with weights w[j] = exp(val[j] * inv_t - max) (the host recomputes that same expression
 * where it needs it): top-p, min-p, probabilities renormalised and rounded to float, then the first
 * candidate whose running sum passes u, all in double. The running sums are the host's, added in its
 * order by thread 0 (unrolled, no branch: the loads go ahead of the adds), and stored; where each cut
 * falls is then found by all threads at once (the first index whose sum passes, by atomicMin),
 * which is where the host's loop stops. Divisions run one per thread. The whole block calls it
 * (k <= TOPK_THREADS); it returns the candidate's rank, and the stream at rng advances by one. c:
 * k doubles of scratch. */
static __device__ double serial_sum(const double *w, int n)
{
	double sum = 0;
#pragma unroll 8
	for (int j = 0; j < n; j++)
		sum += w[j];
	return sum;
}

static __device__ int topk_draw(const double *w, double *c, float *pr, int k, const struct awq_cu_sampling &sp,
				unsigned long long *rng)
{
	__shared__ double total, u;
	__shared__ int cut;
	const int t = threadIdx.x;
	if (t == 0) {
		total = serial_sum(w, k);
		cut = k;
	}
	__syncthreads();
	if (sp.top_p < 1.0f) { /* the first n whose probabilities' sum reaches top_p */
		if (t < k)
			c[t] = w[t] / total;
		__syncthreads();
		if (t == 0) {
			double cum = 0;
#pragma unroll 8
			for (int j = 0; j < k; j++) {
				cum += c[j];
				c[j] = cum;
			}
		}
		__syncthreads();
		if (t < k && c[t] >= sp.top_p)
			atomicMin(&cut, t + 1);
		__syncthreads();
	}
	const int after_p = cut;
	if (sp.min_p > 0) { /* from the second on, the first below min_p (of the top's weight, 1) */
		if (t >= 1 && t < after_p && !(w[t] >= sp.min_p * 1.0))
			atomicMin(&cut, t);
		__syncthreads();
	}
	const int keep = cut;
	if (t == 0)
		total = serial_sum(w, keep);
	__syncthreads();
	if (t < keep)
		pr[t] = (float)(w[t] / total);
	__syncthreads();
	if (t == 0) {
		u = (double)(rng_next(rng) >> 11) * (1.0 / 9007199254740992.0);
		double cum = 0;
#pragma unroll 8
		for (int j = 0; j < keep - 1; j++) {
			cum += pr[j];
			c[j] = cum;
		}
		cut = keep - 1; /* no sum passes u: the last */
	}
	__syncthreads();
	if (t < keep - 1 && u < c[t])
		atomicMin(&cut, t);
	__syncthreads();
	return cut;
}

/* SAMPLE: the ranked candidates are drawn from (topk_draw with the sampler state at samp) and the
 * token goes to the step's feed, as the argmax's would: tok[0], and ring at the position the step's
 * argmax has already advanced *pos past (its own id there is overwritten). Otherwise they are written
 * to ids / vals. */
template <bool SAMPLE>
__global__ void __launch_bounds__(TOPK_THREADS)
	topk_kernel(const float *__restrict__ in, int cols, int k, u64 *part, unsigned *ticket, int32_t *ids, float *vals,
		    struct awq_cu_sampling *samp, struct awq_cu_feed feed)
{
	/* keys[0..256): the ranked result; [256..512): selection scratch; [512..1024): the draw's
	 * weights and probabilities (double); [1024..): candidates */
	__shared__ u64 keys[TOPK_BUF];
	__shared__ topk_smem sm;
	__shared__ int last;
	u64 *const ranked = keys, *const tmp = keys + AWQ_CU_TOPK_MAX, *const cand = keys + 4 * AWQ_CU_TOPK_MAX;
	const int cap = TOPK_BUF - 4 * AWQ_CU_TOPK_MAX;
	const int c0 = blockIdx.x * TOPK_SLICE;
	/* the slice: every load in flight before the first is used */
	float v[TOPK_PER];
#pragma unroll
	for (int u = 0; u < TOPK_PER; u++) {
		const int c = c0 + u * TOPK_THREADS + (int)threadIdx.x;
		v[u] = c < cols ? __ldcg(in + c) : 0.0f;
	}
	auto in_slice = [&](auto f) {
#pragma unroll
		for (int u = 0; u < TOPK_PER; u++) {
			const int c = c0 + u * TOPK_THREADS + (int)threadIdx.x;
			f(c < cols ? topk_key(v[u], c) : 0);
		}
	};
	topk_select(in_slice, k, cand, cap, tmp, ranked, sm);
	u64 *mine = part + (size_t)blockIdx.x * k;
	for (int i = threadIdx.x; i < k; i += TOPK_THREADS)
		mine[i] = ranked[i];
	__threadfence(); /* this block's part[] before its ticket */
	__syncthreads();
	if (threadIdx.x == 0) {
		last = atomicAdd(ticket, 1u) == gridDim.x - 1;
		if (last)
			*ticket = 0u;
	}
	__syncthreads();
	if (!last)
		return;
	__threadfence();
	/* the k best of every block's k (from L2: each pass has all its loads in flight) */
	const int m = (int)gridDim.x * k;
	auto in_part = [&](auto f) {
#pragma unroll 8
		for (int i = threadIdx.x; i < m; i += TOPK_THREADS)
			f(__ldcg(part + i));
	};
	topk_select(in_part, k, cand, cap, tmp, ranked, sm);
	if (!SAMPLE) {
		for (int r = threadIdx.x; r < k; r += TOPK_THREADS) {
			const int col = (int)~(uint32_t)ranked[r];
			ids[r] = col;
			vals[r] = in[col];
		}
		__threadfence_system(); /* ids/vals may be host memory mapped into the device */
		return;
	}
	/* the weights, one per thread, in the host's arithmetic: (double)(float v * inv_t) - max */
	__shared__ float pr[AWQ_CU_TOPK_MAX];
	double *w = reinterpret_cast<double *>(keys + 2 * AWQ_CU_TOPK_MAX);
	double *q = reinterpret_cast<double *>(keys + 3 * AWQ_CU_TOPK_MAX);
	const struct awq_cu_sampling sp = *samp;
	const double mx = (double)__fmul_rn(in[(int)~(uint32_t)ranked[0]], sp.inv_t);
	for (int r = threadIdx.x; r < k; r += blockDim.x)
		w[r] = exp((double)__fmul_rn(in[(int)~(uint32_t)ranked[r]], sp.inv_t) - mx);
	__syncthreads();
	const int pick = topk_draw(w, q, pr, k, sp, samp->rng);
	if (threadIdx.x == 0) {
		const int32_t id = (int32_t)~(uint32_t)ranked[pick];
		const int pos = *feed.pos; /* advanced by the step's argmax */
		feed.tok[0] = id;
		feed.ring[(pos - 1) & feed.ring_mask] = id;
		__threadfence_system(); /* the host reads the ring after the step's event */
	}
}

extern "C" size_t awq_cu_topk_part_bytes(int cols, int k)
{
	return (size_t)((cols + TOPK_SLICE - 1) / TOPK_SLICE) * (size_t)k * sizeof(u64);
}

extern "C" cudaError_t awq_cu_topk(cudaStream_t s, const float *in, int cols, int k, void *part, unsigned *ticket,
				   int32_t *ids, float *vals)
{
	if (k < 1 || k > AWQ_CU_TOPK_MAX || k > cols)
		return cudaErrorInvalidValue;
	const int nb = (cols + TOPK_SLICE - 1) / TOPK_SLICE;
	topk_kernel<false><<<nb, TOPK_THREADS, 0, s>>>(in, cols, k, (u64 *)part, ticket, ids, vals, NULL,
							 awq_cu_feed{});
	return cudaGetLastError();
}

extern "C" cudaError_t awq_cu_sample(cudaStream_t s, const float *in, int cols, void *part, unsigned *ticket,
				     struct awq_cu_sampling *samp, int top_k, const struct awq_cu_feed *feed)
{
	if (top_k < 1 || top_k > AWQ_CU_TOPK_MAX || top_k >= cols || !feed || !feed->tok)
		return cudaErrorInvalidValue;
	const int nb = (cols + TOPK_SLICE - 1) / TOPK_SLICE;
	topk_kernel<true><<<nb, TOPK_THREADS, 0, s>>>(in, cols, top_k, (u64 *)part, ticket, NULL, NULL, samp, *feed);
	return cudaGetLastError();
}
