/* Top-k of one row of logits on the device (awq_cu_topk), so that sampling reads back k candidates
 * instead of the row (608 KB for a 152k vocabulary) and the host does not rank the row.
 *
 * Each entry becomes a 64-bit key: the float's bits made order-preserving as an unsigned integer
 * (-0 as +0, NaN below every number) in the high word, the column inverted in the low word, so that
 * keys are unique and a larger key is a larger value, then a lower column: the host sampler's order.
 * The k largest keys are found by radix selection, eight bits a pass from the top: a histogram of
 * the next digit among the keys that share the prefix found so far, the digit where the k-th key
 * falls, until the keys that share the prefix are exactly the ones still wanted (typically after
 * the four passes of the value bits; at most eight). Every key whose leading bits are at least the
 * prefix is then among the k.
 *
 * One launch: each block selects the k best of a slice of TOPK_SLICE columns into part[] (a slice
 * of at most k columns copies them, padded with key 0, which no entry has), the last block to
 * arrive (ticket, reset for the next launch) selects the k best of those and writes them ranked. */
#include <cuda_runtime.h>
#include <stdint.h>

#include "cu_kernels.h"

#define TOPK_SLICE 4096
#define TOPK_THREADS 256

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
	u64 prefix;
	int remaining, done, count;
};

/* Radix selection of the `want` largest of keys get(0..n) (unique, or 0; at least `want` nonzero).
 * Returns (through prefix, shift) the selection rule: key >> shift >= prefix. The whole block calls
 * it; warps iterate uniformly over n rounded up to 32 so that __match_any_sync sees every lane. */
template <class Get>
static __device__ void topk_radix(Get get, int n, int want, topk_smem &sm, u64 &prefix, int &shift)
{
	const int lane = threadIdx.x & 31, n32 = (n + 31) & ~31;
	if (threadIdx.x == 0) {
		sm.prefix = 0;
		sm.remaining = want;
		sm.done = 0;
	}
	prefix = 0;
	for (shift = 56;; shift -= 8) {
		for (int i = threadIdx.x; i < 256; i += blockDim.x)
			sm.hist[i] = 0;
		__syncthreads();
		for (int i = threadIdx.x; i < n32; i += blockDim.x) {
			const u64 key = i < n ? get(i) : 0;
			const bool match = key && (shift == 56 || (key >> (shift + 8)) == prefix);
			const int dig = match ? (int)((key >> shift) & 255) : 256 + lane;
			/* one atomic per distinct digit of the warp: the leading digits are few */
			const unsigned same = __match_any_sync(0xffffffffu, dig);
			if (match && lane == __ffs(same) - 1)
				atomicAdd(&sm.hist[dig], __popc(same));
		}
		__syncthreads();
		if (threadIdx.x < 32) {
			/* lane L sums bins 255 - 8L down to 248 - 8L; the lane whose range holds the
			 * remaining-th key (counting from the top) walks its bins */
			const int r = sm.remaining, hi = 255 - 8 * lane;
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
		prefix = sm.prefix;
		const int done = sm.done;
		__syncthreads(); /* every thread has read sm before the next pass changes it */
		if (done)
			return;
	}
}

/* The selected keys of get(0..n) into out[0..want) in no particular order. */
template <class Get>
static __device__ void topk_gather(Get get, int n, u64 prefix, int shift, topk_smem &sm, u64 *out)
{
	if (threadIdx.x == 0)
		sm.count = 0;
	__syncthreads();
	for (int i = threadIdx.x; i < n; i += blockDim.x) {
		const u64 key = get(i);
		if (key && (key >> shift) >= prefix)
			out[atomicAdd(&sm.count, 1)] = key;
	}
	__syncthreads();
}

/* The draw of the host sampler's top-k branch (core/sampler.c: finish_probs, draw) over the k ranked
 * candidates in val[], by one thread after the block computed each weight w[j] = exp(val[j] * inv_t -
 * max) (the host recomputes the same expression where it needs it): top-p, min-p, renormalised
 * probabilities as floats, then the first candidate whose running sum passes u. The sums run in the
 * host's order, in double. Returns the candidate's rank and advances the stream. */
static __device__ int topk_draw(const double *w, int k, const struct awq_cu_sampling &sp, unsigned long long *rng)
{
	double sum = 0;
	for (int j = 0; j < k; j++)
		sum += w[j];
	int keep = k;
	if (sp.top_p < 1.0f) {
		double cum = 0;
		int n = 0;
		while (n < keep) {
			cum += w[n] / sum;
			n++;
			if (cum >= sp.top_p)
				break;
		}
		keep = n;
	}
	if (sp.min_p > 0) {
		int n = 1;
		while (n < keep && w[n] >= sp.min_p * 1.0)
			n++;
		keep = n;
	}
	sum = 0;
	for (int j = 0; j < keep; j++)
		sum += w[j];
	/* xoshiro256** (core/sampler.c awq_rng_next) */
	unsigned long long s0 = rng[0], s1 = rng[1], s2 = rng[2], s3 = rng[3];
	const unsigned long long r = ((s1 * 5) << 7 | (s1 * 5) >> 57) * 9, t = s1 << 17;
	s2 ^= s0;
	s3 ^= s1;
	s1 ^= s2;
	s0 ^= s3;
	s2 ^= t;
	s3 = s3 << 45 | s3 >> 19;
	rng[0] = s0, rng[1] = s1, rng[2] = s2, rng[3] = s3;
	const double u = (double)(r >> 11) * (1.0 / 9007199254740992.0);
	double cum = 0;
	for (int j = 0; j < keep; j++) {
		cum += (float)(w[j] / sum);
		if (u < cum)
			return j;
	}
	return keep - 1;
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
	__shared__ u64 keys[TOPK_SLICE];
	__shared__ topk_smem sm;
	__shared__ int last;
	const int c0 = blockIdx.x * TOPK_SLICE, n = min(cols - c0, TOPK_SLICE);
	u64 *mine = part + (size_t)blockIdx.x * k;
	for (int i = threadIdx.x; i < n; i += blockDim.x)
		keys[i] = topk_key(in[c0 + i], c0 + i);
	__syncthreads();
	if (n <= k) {
		for (int i = threadIdx.x; i < k; i += blockDim.x)
			mine[i] = i < n ? keys[i] : 0;
	} else {
		u64 prefix;
		int shift;
		auto get = [&](int i) { return keys[i]; };
		topk_radix(get, n, k, sm, prefix, shift);
		topk_gather(get, n, prefix, shift, sm, mine);
	}
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
	/* the k best of every block's k: keys[] holds them (k <= 256 of the slice's 4096) */
	const int m = (int)gridDim.x * k;
	auto get = [&](int i) { return __ldcg(part + i); };
	u64 prefix;
	int shift;
	topk_radix(get, m, k, sm, prefix, shift);
	topk_gather(get, m, prefix, shift, sm, keys);
	/* ranked: each key's place is the number of larger ones (after keys[0..k) they go, so keys[]
	 * is read whole before any is overwritten: ranks into the second half) */
	u64 *ranked = keys + AWQ_CU_TOPK_MAX;
	for (int i = threadIdx.x; i < k; i += blockDim.x) {
		const u64 key = keys[i];
		int rank = 0;
		for (int j = 0; j < k; j++)
			rank += keys[j] > key;
		ranked[rank] = key;
	}
	__syncthreads();
	if (!SAMPLE) {
		for (int r = threadIdx.x; r < k; r += blockDim.x) {
			const int col = (int)~(uint32_t)ranked[r];
			ids[r] = col;
			vals[r] = in[col];
		}
		__threadfence_system(); /* ids/vals may be host memory mapped into the device */
		return;
	}
	/* the weights, one per thread, in the host's arithmetic: (double)(float v * inv_t) - max */
	double *w = reinterpret_cast<double *>(keys + 2 * AWQ_CU_TOPK_MAX);
	const struct awq_cu_sampling sp = *samp;
	const double mx = (double)__fmul_rn(in[(int)~(uint32_t)ranked[0]], sp.inv_t);
	for (int r = threadIdx.x; r < k; r += blockDim.x)
		w[r] = exp((double)__fmul_rn(in[(int)~(uint32_t)ranked[r]], sp.inv_t) - mx);
	__syncthreads();
	if (threadIdx.x == 0) {
		const int32_t id = (int32_t)~(uint32_t)ranked[topk_draw(w, k, sp, samp->rng)];
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
