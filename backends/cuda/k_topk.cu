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

__global__ void __launch_bounds__(TOPK_THREADS)
	topk_kernel(const float *__restrict__ in, int cols, int k, u64 *part, unsigned *ticket, int32_t *ids, float *vals)
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
	/* ranked: each key's place is the number of larger ones */
	for (int i = threadIdx.x; i < k; i += blockDim.x) {
		const u64 key = keys[i];
		int rank = 0;
		for (int j = 0; j < k; j++)
			rank += keys[j] > key;
		const int col = (int)~(uint32_t)key;
		ids[rank] = col;
		vals[rank] = in[col];
	}
	__threadfence_system(); /* ids/vals may be host memory mapped into the device */
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
	topk_kernel<<<nb, TOPK_THREADS, 0, s>>>(in, cols, k, (u64 *)part, ticket, ids, vals);
	return cudaGetLastError();
}
