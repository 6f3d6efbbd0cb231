/* Load-time repack of AutoAWQ GEMM tensors (qweight [K][N/8], qzeros [K/G][N/8], scales [K/G][N])
 * into the fragment order of struct awq_cu_q4. Runs on the device so that loading a 7B model is
 * bounded by the upload, not by a host loop over billions of nibbles. */
#include "cu_common.cuh"
#include "cu_kernels.h"

static __device__ __forceinline__ uint32_t awq_nib(const uint32_t *p, int n_cols, int row, int col)
{
	const int rev[8] = {0, 4, 1, 5, 2, 6, 3, 7};
	uint32_t w = p[(size_t)row * (n_cols / 8) + col / 8];
	return (w >> (4 * rev[col % 8])) & 0xfu;
}

/* The source row that stored row `row` of a weight repacked from src holds (rows past n stay). */
static __device__ __forceinline__ int src_row(const struct awq_cu_q4_src &src, int row)
{
	return src.rope_hd && row < src.n ? awq_rope_perm_src(row, src.rope_hd) : row;
}

__global__ void q4_repack_weights(struct awq_cu_q4_src src, uint4 *dst, int tiles, int chunks, int stride, int base)
{
	size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
	int src_tiles = (src.n + 15) / 16;
	if (i >= (size_t)src_tiles * chunks * 32)
		return;
	int lane = (int)(i % 32), c = (int)((i / 32) % chunks), T = (int)(i / (32 * (size_t)chunks));
	int g = lane >> 2, t = lane & 3;
	int rows[2] = {src_row(src, T * 16 + g), src_row(src, T * 16 + g + 8)};
	uint32_t out[4];
	for (int j = 0; j < 4; j++) {
		int kk = c * 64 + j * 16 + 2 * t;
		/* (row, k) for nibbles 0..7: (lo,kk) (hi,kk) (lo,kk+8) (hi,kk+8) | +1 columns */
		const int rsel[8] = {0, 1, 0, 1, 0, 1, 0, 1};
		const int koff[8] = {0, 0, 8, 8, 1, 1, 9, 9};
		uint32_t w = 0;
		for (int p = 0; p < 8; p++) {
			int row = rows[rsel[p]], k = kk + koff[p];
			uint32_t v = (row < src.n && k < src.k) ? awq_nib(src.qweight, src.n, k, row) : 0u;
			w |= v << (4 * p);
		}
		out[j] = w;
	}
	dst[((size_t)(T * stride + base) * chunks + c) * 32 + lane] = make_uint4(out[0], out[1], out[2], out[3]);
	(void)tiles;
}

__global__ void q4_repack_groups(struct awq_cu_q4_src src, uint32_t *scales, uint2 *zeros, int groups, int stride,
				 int base)
{
	size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
	int src_tiles = (src.n + 15) / 16;
	if (i >= (size_t)src_tiles * groups)
		return;
	int gi = (int)(i % groups), T = (int)(i / groups);
	int src_groups = src.k / src.group_size;
	size_t d = (size_t)(T * stride + base) * groups + gi;
	uint2 z = make_uint2(0, 0);
	for (int r = 0; r < 16; r++) {
		int row = src_row(src, T * 16 + r);
		bool ok = row < src.n && gi < src_groups;
		uint32_t zv = 0;
		if (ok)
			zv = src.qzeros ? awq_nib(src.qzeros, src.n, gi, row) : (uint32_t)src.sym_zero;
		if (r < 8)
			z.x |= zv << (4 * r);
		else
			z.y |= zv << (4 * (r - 8));
	}
	zeros[d] = z;
	for (int g = 0; g < 8; g++) {
		int lo = src_row(src, T * 16 + g), hi = src_row(src, T * 16 + g + 8);
		uint16_t sl = (lo < src.n && gi < src_groups) ? src.scales[(size_t)gi * src.n + lo] : 0;
		uint16_t sh = (hi < src.n && gi < src_groups) ? src.scales[(size_t)gi * src.n + hi] : 0;
		scales[d * 8 + g] = (uint32_t)sl | ((uint32_t)sh << 16);
	}
}

extern "C" cudaError_t awq_cu_q4_repack(cudaStream_t s, const struct awq_cu_q4_src *src, struct awq_cu_q4 *dst,
					int stride, int base)
{
	int src_tiles = (src->n + 15) / 16;
	size_t nw = (size_t)src_tiles * dst->chunks * 32;
	q4_repack_weights<<<(unsigned)((nw + 255) / 256), 256, 0, s>>>(*src, (uint4 *)dst->q, dst->tiles, dst->chunks,
								       stride, base);
	cudaError_t e = cudaGetLastError();
	if (e != cudaSuccess)
		return e;
	size_t ng = (size_t)src_tiles * dst->groups;
	q4_repack_groups<<<(unsigned)((ng + 255) / 256), 256, 0, s>>>(*src, (uint32_t *)dst->scales, (uint2 *)dst->zeros,
								      dst->groups, stride, base);
	return cudaGetLastError();
}

/* One block per (tile of the weight, 8 chunks): 256 threads, one 16-byte word group (lane, chunk)
 * each, the 16 x 512 values through shared memory so that each row's 1 KB leaves in coalesced 16-byte
 * stores. Nibbles p and p + 4 of word j of lane (g, t) are row g + 8 (p & 1), columns c * 64 + 16 j +
 * 2 t + 8 (p >> 1) and the one after (q4_repack_weights), so one mask with the 0x6400 exponent
 * trick gives both as the half2 1024 + q; 1024 + q - (1024 + z) is exact in f16, and its product
 * with the f16 scale is rounded once, as (q - z) * s in f32 then rounded would be. ONE_GROUP: the
 * group size is a multiple of 64, so a chunk lies in one group. */
#define DQ_CHUNKS 8
template <bool ONE_GROUP>
__global__ void __launch_bounds__(DQ_CHUNKS * 32) q4_dequant_kernel(struct awq_cu_q4 w, int stride, int base, int n,
								   __half *__restrict__ out)
{
	__shared__ __align__(16) __half sm[16][DQ_CHUNKS * 64 + 8];
	const int lane = threadIdx.x & 31, cl = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
	const int T = blockIdx.y, dT = T * stride + base, c = blockIdx.x * DQ_CHUNKS + cl;
	if (c < w.chunks) {
		const uint4 v = __ldg(w.q + ((size_t)dT * w.chunks + c) * 32 + lane);
		const uint32_t words[4] = {v.x, v.y, v.z, v.w};
		const uint32_t *sc = w.scales + (size_t)dT * w.groups * 8 + g;
		const uint2 *zp = w.zeros + (size_t)dT * w.groups;
		__half2 off[2], scl[2]; /* rows g, g + 8: 1024 + z and s */
		int gcur = -1;
#pragma unroll
		for (int j = 0; j < 4; j++) {
#pragma unroll
			for (int p = 0; p < 4; p++) {
				const int col = 16 * j + 2 * t + 8 * (p >> 1), hi = p & 1;
				const int gi = ONE_GROUP ? c * 64 / w.group_size : (c * 64 + col) / w.group_size;
				if (gi != gcur) { /* once with ONE_GROUP (the compiler hoists it) */
					const uint32_t s2 = __ldg(sc + (size_t)gi * 8);
					const uint2 z2 = __ldg(zp + gi);
					const uint32_t zl = (z2.x >> (4 * g)) & 0xfu, zh = (z2.y >> (4 * g)) & 0xfu;
					off[0] = __halves2half2(__ushort_as_half((unsigned short)(0x6400u | zl)),
								__ushort_as_half((unsigned short)(0x6400u | zl)));
					off[1] = __halves2half2(__ushort_as_half((unsigned short)(0x6400u | zh)),
								__ushort_as_half((unsigned short)(0x6400u | zh)));
					scl[0] = __halves2half2(__ushort_as_half((unsigned short)(s2 & 0xffffu)),
								__ushort_as_half((unsigned short)(s2 & 0xffffu)));
					scl[1] = __halves2half2(__ushort_as_half((unsigned short)(s2 >> 16)),
								__ushort_as_half((unsigned short)(s2 >> 16)));
					gcur = gi;
				}
				const uint32_t qb = ((words[j] >> (4 * p)) & 0x000f000fu) | 0x64006400u;
				const __half2 val = __hmul2(__hsub2(*reinterpret_cast<const __half2 *>(&qb), off[hi]), scl[hi]);
				*reinterpret_cast<__half2 *>(&sm[g + 8 * hi][cl * 64 + col]) = val;
			}
		}
	}
	__syncthreads();
	const int col0 = blockIdx.x * DQ_CHUNKS * 64;
	if (w.k % 8 == 0) { /* 16-byte pieces (k a multiple of 8, so every row starts 16-byte aligned) */
		for (int e = threadIdx.x; e < 16 * DQ_CHUNKS * 8; e += blockDim.x) {
			const int r = e / (DQ_CHUNKS * 8), cp = e % (DQ_CHUNKS * 8), col = col0 + 8 * cp, row = T * 16 + r;
			if (row < n && col < w.k)
				*reinterpret_cast<uint4 *>(out + (size_t)row * w.k + col) =
					*reinterpret_cast<const uint4 *>(&sm[r][8 * cp]);
		}
		return;
	}
	for (int e = threadIdx.x; e < 16 * DQ_CHUNKS * 32; e += blockDim.x) { /* half2 pairs (k is even) */
		const int r = e / (DQ_CHUNKS * 32), cp = e % (DQ_CHUNKS * 32), col = col0 + 2 * cp, row = T * 16 + r;
		if (row < n && col < w.k)
			*reinterpret_cast<__half2 *>(out + (size_t)row * w.k + col) =
				*reinterpret_cast<const __half2 *>(&sm[r][2 * cp]);
	}
}

extern "C" cudaError_t awq_cu_q4_dequant(cudaStream_t s, const struct awq_cu_q4 *w, int stride, int base, int n,
					 uint16_t *out)
{
	if (n < 1 || w->k % 2 || w->group_size % 2 || stride < 1 || base < 0 ||
	    ((n + 15) / 16 - 1) * stride + base >= w->tiles)
		return cudaErrorInvalidValue;
	dim3 grid((w->chunks + DQ_CHUNKS - 1) / DQ_CHUNKS, (n + 15) / 16);
	if (w->group_size % 64 == 0)
		q4_dequant_kernel<true><<<grid, DQ_CHUNKS * 32, 0, s>>>(*w, stride, base, n, reinterpret_cast<__half *>(out));
	else
		q4_dequant_kernel<false><<<grid, DQ_CHUNKS * 32, 0, s>>>(*w, stride, base, n, reinterpret_cast<__half *>(out));
	return cudaGetLastError();
}
