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

__global__ void q4_repack_weights(struct awq_cu_q4_src src, uint4 *dst, int tiles, int chunks, int stride, int base)
{
	size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
	int src_tiles = (src.n + 15) / 16;
	if (i >= (size_t)src_tiles * chunks * 32)
		return;
	int lane = (int)(i % 32), c = (int)((i / 32) % chunks), T = (int)(i / (32 * (size_t)chunks));
	int g = lane >> 2, t = lane & 3;
	int rows[2] = {T * 16 + g, T * 16 + g + 8};
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
		int row = T * 16 + r;
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
		int lo = T * 16 + g, hi = lo + 8;
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
