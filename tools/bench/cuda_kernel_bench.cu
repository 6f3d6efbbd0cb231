/* Kernel micro-benchmark of the CUDA backend, with the ceilings it is judged against measured in the
 * same run: device copy bandwidth (read + write counted), read-only bandwidth, cuBLAS FP16/BF16 GEMM.
 * Then the W4A16 mat-vec (m=4096, k=14336, n = 1, 2, 4, 8), W4A16 prefill GEMM, BF16 mat-vec and
 * decode attention, each as time, bytes or FLOPs, and the fraction of the measured ceiling.
 * Weights rotate over copies larger than L2 so no timing reads from cache; kernels are timed as
 * CUDA-graph replays of many launches (median of several).
 * Usage: awq-cuda-bench [--quick | --topk | --sweep | --pattern | --parts | --profile | --tokens | --tokens14 | --chain [llama2-7b | qwen3-30b-a3b | NxK,... [layers]]
 *                        | --attn CTX HEADS KV_HEADS | --attn-rows [CTX[@POS],...]] */
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "cu_common.cuh" /* pdl_wait, pdl_trigger (the --chain bench) */
#include "cu_kernels.h"

#define CK(x)                                                                                        \
	do {                                                                                         \
		cudaError_t e_ = (x);                                                                \
		if (e_ != cudaSuccess) {                                                             \
			fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
			exit(1);                                                                     \
		}                                                                                    \
	} while (0)

static cudaStream_t st;

struct row {
	char what[112];
	double us, amount; /* amount: bytes or flops */
	const char *unit;
	double ceiling; /* bytes/s or flop/s */
};
static std::vector<row> rows;

template <class F> static double time_us(F launch, int per_graph, int reps)
{
	cudaGraph_t g;
	cudaGraphExec_t ge;
	launch(); /* warm-up outside capture: module load, attributes */
	CK(cudaStreamSynchronize(st));
	CK(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
	for (int i = 0; i < per_graph; i++)
		launch();
	CK(cudaStreamEndCapture(st, &g));
	CK(cudaGraphInstantiate(&ge, g, 0));
	cudaEvent_t a, b;
	CK(cudaEventCreate(&a));
	CK(cudaEventCreate(&b));
	CK(cudaGraphLaunch(ge, st));
	std::vector<float> t;
	for (int r = 0; r < reps; r++) {
		CK(cudaEventRecord(a, st));
		CK(cudaGraphLaunch(ge, st));
		CK(cudaEventRecord(b, st));
		CK(cudaEventSynchronize(b));
		float ms;
		CK(cudaEventElapsedTime(&ms, a, b));
		t.push_back(ms * 1000.0f / per_graph);
	}
	std::sort(t.begin(), t.end());
	CK(cudaGraphExecDestroy(ge));
	CK(cudaGraphDestroy(g));
	CK(cudaEventDestroy(a));
	CK(cudaEventDestroy(b));
	return t[t.size() / 2];
}

__global__ void fill_kernel(uint32_t *p, size_t n, uint32_t seed)
{
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
		uint32_t x = (uint32_t)i * 2654435761u ^ seed;
		x ^= x >> 13;
		x *= 0x5bd1e995u;
		x ^= x >> 15;
		p[i] = x;
	}
}

/* Random f16 in a small positive range (scales) or [-1, 1) (activations), written as bits. */
__global__ void fill_half_kernel(uint16_t *p, size_t n, float lo, float hi, uint32_t seed)
{
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
		uint32_t x = (uint32_t)i * 2246822519u ^ seed;
		x ^= x >> 15;
		x *= 0x2c1b3c6du;
		x ^= x >> 12;
		float f = lo + (hi - lo) * (x >> 8) * (1.0f / 16777216.0f);
		p[i] = __half_as_ushort(__float2half(f));
	}
}

static void *dev(size_t bytes)
{
	void *p;
	CK(cudaMalloc(&p, bytes));
	return p;
}

static void rnd(void *p, size_t bytes, uint32_t seed)
{
	fill_kernel<<<1024, 256, 0, st>>>((uint32_t *)p, bytes / 4, seed);
	CK(cudaGetLastError());
}

static void rnd_half(void *p, size_t n, float lo, float hi, uint32_t seed)
{
	fill_half_kernel<<<1024, 256, 0, st>>>((uint16_t *)p, n, lo, hi, seed);
	CK(cudaGetLastError());
}

__global__ void copy_kernel(const uint4 *__restrict__ a, uint4 *__restrict__ b, size_t n)
{
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
		b[i] = a[i];
}

__global__ void read_kernel(const uint4 *__restrict__ a, size_t n, uint32_t *out)
{
	uint32_t acc = 0;
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
		uint4 v = a[i];
		acc ^= v.x ^ v.y ^ v.z ^ v.w;
	}
	if (acc == 0x12345678u)
		*out = acc; /* keeps the loads alive */
}

static double copy_bw, read_bw, gemm_f16, gemm_bf16;

static void push_row(const char *what, double us, double amount, const char *unit, double ceiling)
{
	rows.push_back({"", us, amount, unit, ceiling});
	snprintf(rows.back().what, sizeof(rows.back().what), "%s", what);
}

/* --pattern: the decode GEMV's weight stream without its arithmetic. Each warp of a block of RT
 * tiles reads its contiguous chunk range (per chunks) of each tile, 512 bytes per tile and chunk
 * (16 bytes per lane), keeping S chunks of loads in flight, as q4_gemv2_kernel's ring does. The
 * layout is the repacked one (tile-major: a tile's chunks together, so warps reading at the same
 * moment are per x 512 bytes and more apart) or chunk-major (a chunk's tiles together, so the
 * warps of neighbouring blocks read neighbouring 512-byte pieces): whether the DRAM access
 * pattern, not the arithmetic, caps the GEMV below the read-only kernel's rate. */
template <int RT, int S>
__global__ void __launch_bounds__(512) pattern_kernel(const uint4 *__restrict__ q, int tiles, int chunks, int per,
						      int chunk_major, uint32_t *out)
{
	const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
	const int tile0 = blockIdx.x * RT, c0 = warp * per, nc = max(min(chunks, c0 + per) - c0, 0);
	const size_t ts = chunk_major ? 32 : (size_t)chunks * 32, cs = chunk_major ? (size_t)tiles * 32 : 32;
	const uint4 *b[RT];
#pragma unroll
	for (int r = 0; r < RT; r++)
		b[r] = q + (size_t)min(tile0 + r, tiles - 1) * ts + (size_t)c0 * cs + lane;
	uint4 v[S][RT];
	uint32_t acc = 0;
#pragma unroll
	for (int s = 0; s < S; s++)
#pragma unroll
		for (int r = 0; r < RT; r++)
			v[s][r] = s < nc ? __ldg(b[r] + (size_t)s * cs) : make_uint4(0, 0, 0, 0);
	for (int c = 0; c < nc; c += S)
#pragma unroll
		for (int s = 0; s < S; s++)
#pragma unroll
			for (int r = 0; r < RT; r++) {
				acc ^= v[s][r].x ^ v[s][r].y ^ v[s][r].z ^ v[s][r].w;
				const int cn = c + S + s;
				v[s][r] = cn < nc ? __ldg(b[r] + (size_t)cn * cs) : make_uint4(0, 0, 0, 0);
			}
	if (acc == 0x12345678u)
		*out = acc; /* keeps the loads alive */
}

/* --parts: the weight stream of pattern_kernel (tile-major, two tiles per block) with the decode
 * GEMV's other phases added one at a time, F a mask: 1 the group parameters (up to four scale and
 * zero loads per thread before the stream, converted into a float4 each in shared memory), 2 the
 * activation staging (each warp's slice of x, 16 float2 loads per lane in flight, stored as half2;
 * the main loop reads it back), 4 the end (each warp's 8 partial sums per lane through shared
 * memory, the block's sum, warp 0's stores). A barrier follows the start-up when F & 3. Against the
 * bare stream (F = 0) and the GEMV itself, which of them costs the ~2 us per launch. */
template <int S, int F>
__global__ void __launch_bounds__(512) parts_kernel(const uint4 *__restrict__ q, const uint32_t *__restrict__ sc,
						    const uint2 *__restrict__ zr, const float *__restrict__ x, int tiles,
						    int chunks, int groups, int per, float *__restrict__ y)
{
	extern __shared__ __align__(16) uint8_t psm[];
	const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, kw = blockDim.x >> 5;
	const int tile0 = blockIdx.x * 2, c0 = warp * per, nc = max(min(chunks, c0 + per) - c0, 0);
	uint32_t *xs = reinterpret_cast<uint32_t *>(psm) + (size_t)warp * per * 32;
	float4 *corr = reinterpret_cast<float4 *>(psm + (size_t)kw * per * 128);
	float *red = reinterpret_cast<float *>(psm + (size_t)kw * per * 128 + (size_t)2 * groups * 8 * 16);
	const int ne = min(2, tiles - tile0) * groups * 8;
	uint32_t gs[4];
	uint2 gz[4];
	if (F & 1)
#pragma unroll
		for (int u = 0; u < 4; u++) {
			const int i = threadIdx.x + u * blockDim.x;
			gs[u] = i < ne ? __ldg(sc + (size_t)tile0 * groups * 8 + i) : 0u;
			gz[u] = i < ne ? __ldg(zr + (size_t)tile0 * groups + i / 8) : make_uint2(0, 0);
		}
	const uint4 *b[2];
#pragma unroll
	for (int r = 0; r < 2; r++)
		b[r] = q + ((size_t)min(tile0 + r, tiles - 1) * chunks + c0) * 32 + lane;
	uint4 v[S][2];
#pragma unroll
	for (int s = 0; s < S; s++)
#pragma unroll
		for (int r = 0; r < 2; r++)
			v[s][r] = s < nc ? __ldg(b[r] + (size_t)s * 32) : make_uint4(0, 0, 0, 0);
	if (F & 2)
		for (int e0 = 0; e0 < nc; e0 += 16) {
			float2 t[16];
#pragma unroll
			for (int u = 0; u < 16; u++)
				t[u] = __ldg(reinterpret_cast<const float2 *>(x + (size_t)(c0 + e0 + min(u, nc - 1 - e0)) * 64) + lane);
#pragma unroll
			for (int u = 0; u < 16; u++)
				if (e0 + u < nc) {
					__half2 h = __floats2half2_rn(t[u].x, t[u].y);
					xs[(e0 + u) * 32 + lane] = *reinterpret_cast<uint32_t *>(&h);
				}
		}
	if (F & 1)
#pragma unroll
		for (int u = 0; u < 4; u++) {
			const int i = threadIdx.x + u * blockDim.x;
			if (i < ne)
				corr[i] = make_float4(__uint_as_float(gs[u] & 0x7fffffu), (float)(gz[u].x >> ((i & 7) * 4) & 15),
						      __uint_as_float(gs[u] >> 9), (float)(gz[u].y & 15));
		}
	if (F & 3)
		__syncthreads();
	uint32_t acc = 0;
	for (int c = 0; c < nc; c += S)
#pragma unroll
		for (int s = 0; s < S; s++)
#pragma unroll
			for (int r = 0; r < 2; r++) {
				acc ^= v[s][r].x ^ v[s][r].y ^ v[s][r].z ^ v[s][r].w;
				if ((F & 2) && r == 0 && c + s < nc)
					acc ^= xs[(c + s) * 32 + lane];
				const int cn = c + S + s;
				v[s][r] = cn < nc ? __ldg(b[r] + (size_t)cn * 32) : make_uint4(0, 0, 0, 0);
			}
	if (F & 1)
		acc ^= __float_as_uint(corr[(lane * 7) % max(ne, 1)].x);
	if (F & 4) {
		float a = __uint_as_float(acc & 0x3fffffffu) * 1e-30f;
#pragma unroll
		for (int i = 0; i < 8; i++)
			red[(warp * 8 + i) * 32 + lane] = a + (float)i;
		__syncthreads();
		for (int e = threadIdx.x; e < 8 * 32; e += blockDim.x) {
			float sum = 0.f;
			for (int w = 0; w < kw; w++)
				sum += red[(w * 8) * 32 + e];
			red[e] = sum;
		}
		__syncthreads();
		if (warp == 0 && lane < 16 && tile0 * 16 + lane < tiles * 16) {
			y[tile0 * 16 + lane] = red[lane];
			if (tile0 + 1 < tiles)
				y[(tile0 + 1) * 16 + lane] = red[32 + lane];
		}
	} else if (acc == 0x12345678u) {
		y[0] = (float)acc; /* keeps the loads alive */
	}
}

template <int S, int F>
static void launch_parts(int tiles, int kw, size_t smem, const uint4 *q, const uint32_t *sc, const uint2 *zr,
			 const float *x, int chunks, int groups, int per, float *y)
{
	static int set;
	if (!set) {
		CK(cudaFuncSetAttribute(parts_kernel<S, F>, cudaFuncAttributeMaxDynamicSharedMemorySize, 200 * 1024));
		set = 1;
	}
	parts_kernel<S, F><<<(tiles + 1) / 2, kw * 32, smem, st>>>(q, sc, zr, x, tiles, chunks, groups, per, y);
	CK(cudaGetLastError());
}

template <int S>
static void launch_parts_f(int F, int tiles, int kw, size_t smem, const uint4 *q, const uint32_t *sc, const uint2 *zr,
			   const float *x, int chunks, int groups, int per, float *y)
{
	switch (F) {
	case 0: launch_parts<S, 0>(tiles, kw, smem, q, sc, zr, x, chunks, groups, per, y); break;
	case 1: launch_parts<S, 1>(tiles, kw, smem, q, sc, zr, x, chunks, groups, per, y); break;
	case 2: launch_parts<S, 2>(tiles, kw, smem, q, sc, zr, x, chunks, groups, per, y); break;
	case 4: launch_parts<S, 4>(tiles, kw, smem, q, sc, zr, x, chunks, groups, per, y); break;
	default: launch_parts<S, 7>(tiles, kw, smem, q, sc, zr, x, chunks, groups, per, y); break;
	}
}

static void bench_parts(int m, int k, int kw, int S)
{
	const int tiles = (m + 15) / 16, chunks = k / 64, per = (chunks + kw - 1) / kw, groups = k / 128;
	const size_t qb = (size_t)tiles * chunks * 512, sb = (size_t)tiles * groups * 8 * 4, zb = (size_t)tiles * groups * 8;
	const size_t bytes = qb + sb + zb;
	const int copies = (int)std::max<size_t>(2, (size_t)160000000 / bytes + 1);
	uint4 *q = (uint4 *)dev(qb * copies);
	uint32_t *sc = (uint32_t *)dev(sb * copies);
	uint2 *zr = (uint2 *)dev(zb * copies);
	float *x = (float *)dev((size_t)k * 4), *y = (float *)dev((size_t)tiles * 16 * 4);
	rnd(q, qb * copies, 9);
	rnd(sc, sb * copies, 10);
	rnd(zr, zb * copies, 11);
	rnd_half(x, (size_t)k * 2, -1, 1, 12); /* f16 pairs read as f32: finite, small */
	const size_t smem = (size_t)kw * per * 128 + (size_t)2 * groups * 8 * 16 + (size_t)kw * 8 * 32 * 4;
	static const int fs[] = {0, 1, 2, 4, 7};
	static const char *fn[] = {"stream", "+params", "+x staging", "+reduction", "+all three"};
	for (int fi = 0; fi < 5; fi++) {
		int i = 0;
		double us = time_us(
			[&] {
				const uint4 *qi = q + (size_t)i * (qb / 16);
				const uint32_t *si = sc + (size_t)i * (sb / 4);
				const uint2 *zi = zr + (size_t)i * (zb / 8);
				if (S == 2)
					launch_parts_f<2>(fs[fi], tiles, kw, smem, qi, si, zi, x, chunks, groups, per, y);
				else
					launch_parts_f<4>(fs[fi], tiles, kw, smem, qi, si, zi, x, chunks, groups, per, y);
				i = (i + 1) % copies;
			},
			copies * 8, 9);
		char what[96];
		snprintf(what, sizeof(what), "parts m=%d k=%d kw%d s%d %s", m, k, kw, S, fn[fi]);
		push_row(what, us, (double)bytes, "B", copy_bw);
	}
	CK(cudaFree(q));
	CK(cudaFree(sc));
	CK(cudaFree(zr));
	CK(cudaFree(x));
	CK(cudaFree(y));
}

static void bench_pattern(int m, int k, int kw, int S, int sms)
{
	const int tiles = (m + 15) / 16, chunks = k / 64, per = (chunks + kw - 1) / kw;
	const size_t bytes = (size_t)tiles * chunks * 512;
	const int copies = (int)std::max<size_t>(2, (size_t)160000000 / bytes + 1); /* > 2.5 x L2 in all */
	uint4 *q = (uint4 *)dev(bytes * copies);
	uint32_t *o = (uint32_t *)dev(64);
	rnd(q, bytes * copies, 9);
	for (int cm = 0; cm < 2; cm++) {
		int i = 0;
		double us = time_us(
			[&] {
				const uint4 *qi = q + (size_t)i * (bytes / 16);
				if (S == 2)
					pattern_kernel<2, 2><<<(tiles + 1) / 2, kw * 32, 0, st>>>(qi, tiles, chunks, per, cm, o);
				else
					pattern_kernel<2, 4><<<(tiles + 1) / 2, kw * 32, 0, st>>>(qi, tiles, chunks, per, cm, o);
				CK(cudaGetLastError());
				i = (i + 1) % copies;
			},
			copies * 8, 9);
		char what[96];
		snprintf(what, sizeof(what), "read pattern m=%d k=%d kw%d s%d %s", m, k, kw, S, cm ? "chunk-major" : "tile-major");
		push_row(what, us, (double)bytes, "B", copy_bw);
	}
	(void)sms;
	CK(cudaFree(q));
	CK(cudaFree(o));
}

static void ceilings(int sms)
{
	size_t bytes = (size_t)1 << 30;
	void *a = dev(bytes), *b = dev(bytes), *o = dev(64);
	rnd(a, bytes, 1);
	size_t n = bytes / 16;
	double us = time_us([&] { copy_kernel<<<sms * 8, 512, 0, st>>>((const uint4 *)a, (uint4 *)b, n); }, 5, 7);
	copy_bw = 2.0 * bytes / (us * 1e-6);
	rows.push_back({"copy kernel 1 GiB (read+write)", us, 2.0 * bytes, "B", copy_bw});
	us = time_us([&] { CK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, st)); }, 5, 7);
	rows.push_back({"cudaMemcpy D2D 1 GiB (read+write)", us, 2.0 * bytes, "B", copy_bw});
	us = time_us([&] { read_kernel<<<sms * 8, 512, 0, st>>>((const uint4 *)a, n, (uint32_t *)o); }, 5, 7);
	read_bw = bytes / (us * 1e-6);
	rows.push_back({"read-only kernel 1 GiB", us, (double)bytes, "B", copy_bw});
	CK(cudaFree(a));
	CK(cudaFree(b));
	CK(cudaFree(o));
}

static double blas_gemm(cublasHandle_t h, cudaDataType_t t, int m, int n, int k, const char *label, double ceiling)
{
	void *A = dev((size_t)m * k * 2), *B = dev((size_t)n * k * 2), *C = dev((size_t)m * n * 2);
	rnd_half(A, (size_t)m * k, -1, 1, 3);
	rnd_half(B, (size_t)n * k, -1, 1, 4);
	/* f16 bit patterns of [-1, 1) read as bf16 are finite too, so one fill serves both types. */
	float one = 1, zero = 0;
	double us = time_us(
		[&] {
			cublasStatus_t s = cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &one, A, t, k, B, t, k, &zero, C, t,
							m, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
			if (s != CUBLAS_STATUS_SUCCESS) {
				fprintf(stderr, "cublasGemmEx failed: %d\n", (int)s);
				exit(1);
			}
		},
		10, 7);
	double flops = 2.0 * m * n * k;
	char what[96];
	snprintf(what, sizeof(what), "cuBLAS %s m=%d n=%d k=%d", label, m, n, k);
	push_row(what, us, flops, "FLOP", ceiling > 0 ? ceiling : flops / (us * 1e-6));
	CK(cudaFree(A));
	CK(cudaFree(B));
	CK(cudaFree(C));
	return flops / (us * 1e-6);
}

struct q4set {
	std::vector<awq_cu_q4> w;
	double bytes; /* as stored: qweight + scales + zeros */
};

static q4set make_q4(int m, int k, int copies)
{
	q4set s;
	const int G = 128;
	struct awq_cu_q4_src src = {};
	src.n = m, src.k = k, src.group_size = G, src.sym_zero = 8;
	void *qw = dev((size_t)k * m / 2), *qz = dev((size_t)(k / G) * m / 2), *sc = dev((size_t)(k / G) * m * 2);
	for (int c = 0; c < copies; c++) {
		rnd(qw, (size_t)k * m / 2, 10 + c);
		rnd(qz, (size_t)(k / G) * m / 2, 20 + c);
		rnd_half(sc, (size_t)(k / G) * m, 0.002f, 0.02f, 30 + c);
		src.qweight = (const uint32_t *)qw;
		src.qzeros = (const uint32_t *)qz;
		src.scales = (const uint16_t *)sc;
		awq_cu_q4 q = {};
		q.k = k, q.tiles = (m + 15) / 16, q.chunks = (k + 63) / 64, q.group_size = G;
		q.groups = (q.chunks * 64 + G - 1) / G;
		q.q = (const uint4 *)dev((size_t)q.tiles * q.chunks * 512);
		q.scales = (const uint32_t *)dev((size_t)q.tiles * q.groups * 32);
		q.zeros = (const uint2 *)dev((size_t)q.tiles * q.groups * 8);
		CK(awq_cu_q4_repack(st, &src, &q, 1, 0));
		s.w.push_back(q);
	}
	CK(cudaStreamSynchronize(st));
	CK(cudaFree(qw));
	CK(cudaFree(qz));
	CK(cudaFree(sc));
	s.bytes = (double)k * m / 2 + (double)(k / G) * m * 2.5;
	return s;
}

static void free_q4(q4set &s)
{
	for (auto &q : s.w) {
		CK(cudaFree((void *)q.q));
		CK(cudaFree((void *)q.scales));
		CK(cudaFree((void *)q.zeros));
	}
}

static awq_cu_out out_of(float *y, int m)
{
	awq_cu_out o = {};
	o.ptr[0] = y;
	o.n[0] = m;
	o.nseg = 1;
	o.tile_end[0] = o.tile_end[1] = o.tile_end[2] = (m + 15) / 16;
	return o;
}

/* Decode GEMV variants (awq_cu_q4_gemv_tune): the fallback kernel ("legacy", the version before the
 * streaming kernel) and tuning points of the streaming kernel, timed on the same weights. */
struct gemv_variant {
	const char *name;
	int legacy, rt, kw, stages, pdl;
	int xh = 0; /* 3-8 tokens: the f16 copy of x given (awq_cu_out.x16, the XH form) */
};
static const gemv_variant V_DEFAULT = {"", 0, 0, 0, 0, -1}, V_LEGACY = {"legacy", 1, 0, 0, 0, -1};

static void bench_q4_gemv(int m, int k, int sms, int copies, const gemv_variant *vs, int nv, const int *ns, int nn)
{
	q4set s = make_q4(m, k, copies);
	float *x = (float *)dev((size_t)8 * k * 4), *y = (float *)dev((size_t)8 * m * 4);
	uint16_t *x16 = (uint16_t *)dev((size_t)8 * k * 2);
	std::vector<float> hx((size_t)8 * k);
	for (size_t i = 0; i < hx.size(); i++)
		hx[i] = (float)((i * 7919) % 2001) / 1000.0f - 1.0f;
	CK(cudaMemcpy(x, hx.data(), hx.size() * 4, cudaMemcpyHostToDevice));
	CK(awq_cu_to_16(st, x, x16, hx.size(), 0));
	for (int vi = 0; vi < nv; vi++) {
		const gemv_variant &v = vs[vi];
		awq_cu_q4_gemv_tune(v.legacy, v.rt, v.kw, v.stages, v.pdl);
		for (int ni = 0; ni < nn; ni++) {
			int n = ns[ni];
			int i = 0;
			double us = time_us(
				[&] {
					awq_cu_out o = out_of(y, m);
					o.x16 = v.xh ? x16 : NULL;
					CK(awq_cu_q4_gemv(st, &s.w[i], x, n, &o, AWQ_CU_EPI_STORE, sms));
					i = (i + 1) % copies;
				},
				copies * 8, 9);
			char what[96];
			snprintf(what, sizeof(what), "W4A16 GEMV m=%d k=%d n=%d %s", m, k, n, v.name);
			push_row(what, us, s.bytes, "B", copy_bw);
		}
	}
	awq_cu_q4_gemv_tune(0, 0, 0, 0, -1);
	CK(cudaFree(x));
	CK(cudaFree(x16));
	CK(cudaFree(y));
	free_q4(s);
}

static void bench_q4_gemm(int m, int k, int n, int cc, int sms, int copies)
{
	q4set s = make_q4(m, k, copies);
	uint16_t *x = (uint16_t *)dev((size_t)n * k * 2);
	float *y = (float *)dev((size_t)n * m * 4);
	rnd_half(x, (size_t)n * k, -1, 1, 6);
	int i = 0;
	double us = time_us(
		[&] {
			awq_cu_out o = out_of(y, m);
			CK(awq_cu_q4_gemm(st, &s.w[i], x, n, &o, AWQ_CU_EPI_STORE, cc, sms));
			i = (i + 1) % copies;
		},
		copies * 2, 7);
	char what[96];
	snprintf(what, sizeof(what), "W4A16 GEMM m=%d k=%d n=%d", m, k, n);
	push_row(what, us, 2.0 * m * n * k, "FLOP", gemm_f16);
	CK(cudaFree(x));
	CK(cudaFree(y));
	free_q4(s);
}

static void bench_w16_gemv(int m, int k, int copies)
{
	std::vector<uint16_t *> w;
	for (int c = 0; c < copies; c++) {
		w.push_back((uint16_t *)dev((size_t)m * k * 2));
		rnd_half(w.back(), (size_t)m * k, -0.1f, 0.1f, 40 + c); /* f16 patterns read as bf16: finite */
	}
	float *x = (float *)dev((size_t)k * 4), *y = (float *)dev((size_t)m * 4);
	CK(cudaMemset(x, 0x3c, (size_t)k * 4));
	int i = 0;
	double us = time_us(
		[&] {
			CK(awq_cu_w16_gemv(st, w[i], 1, NULL, m, k, x, 1, y));
			i = (i + 1) % copies;
		},
		copies * 8, 9);
	char what[96];
	snprintf(what, sizeof(what), "BF16 GEMV m=%d k=%d n=1", m, k);
	push_row(what, us, (double)m * k * 2, "B", copy_bw);
	for (auto p : w)
		CK(cudaFree(p));
	CK(cudaFree(x));
	CK(cudaFree(y));
}

/* The kernel awq_cu_attn_decode takes for a launch, for the report */
static const char *plan_kernel(const struct awq_cu_attn *a)
{
	struct awq_cu_attn_plan p;
	if (awq_cu_attn_decode_plan(a, &p))
		return ", refused";
	return p.kernel == AWQ_CU_ATTN_MMA ? ", mma" : p.kernel == AWQ_CU_ATTN_RING ? ", ring" : "";
}

/* One layer of llama2-7b decode attention (32 heads, 128 dims, f16 KV) at a given context, with
 * programmatic launch where the backend's decode steps use it (device compute capability cc).
 * profile_sms > 0 (--attn): no timing, two launches as a one-token decode step makes them (ticket,
 * grid floor of 8 blocks per SM of profile_sms SMs), for `ncu --kernel-name regex:attn`.
 * fill > 0: the step at that many positions of a cache planned for ctx (a decode step part-way
 * through its span); the bytes counted are those it reads. */
static void bench_attn(int ctx, int heads, int kv_heads, int cc, int profile_sms = 0, int fill = 0)
{
	int hd = 128;
	size_t kv = (size_t)ctx * kv_heads * hd;
	uint16_t *k = (uint16_t *)dev(kv * 2), *v = (uint16_t *)dev(kv * 2);
	rnd_half(k, kv, -1, 1, 7);
	rnd_half(v, kv, -1, 1, 8);
	float *q = (float *)dev((size_t)heads * hd * 4), *o = (float *)dev((size_t)heads * hd * 4);
	CK(cudaMemset(q, 0, (size_t)heads * hd * 4));
	int *pos = (int *)dev(4);
	int p = (fill > 0 && fill < ctx ? fill : ctx) - 1;
	CK(cudaMemcpy(pos, &p, 4, cudaMemcpyHostToDevice));
	float *part = (float *)dev(awq_cu_attn_part_floats(1, heads, hd, ctx) * 4);
	struct awq_cu_attn a = {};
	a.q = q, a.k = k, a.v = v, a.out = o, a.d_pos = pos, a.rows = 1, a.n_heads = heads, a.n_kv_heads = kv_heads;
	a.head_dim = hd, a.max_ctx = ctx, a.scale = 0.088f, a.part = part, a.pdl = awq_cu_pdl_default(cc);
	const char *rg = getenv("AWQ_CUDA_ATTN_RING"); /* the K/V rows through a cp.async ring, as the backend reads it */
	a.ring = cc >= 8 && !(rg && rg[0] == '0'); /* default on, as the backend's */
	const char *mm = getenv("AWQ_CUDA_ATTN_MMA"); /* grouped heads on tensor cores, as the backend reads it */
	a.mma = cc >= 8 && !(mm && mm[0] == '0'); /* default on, as the backend's */
	const char *mc = getenv("AWQ_CUDA_ATTN_MMA_CHUNK"); /* its split length (the plan takes 128-1024; else the rule) */
	a.mma_chunk = mc ? atoi(mc) : 0;
	/* two launches (split, then combine) and the backend's path: with a ticket the last split block
	 * merges where its heads x head_dim outputs are one per thread (else still two launches) */
	unsigned *tk = (unsigned *)dev(awq_cu_attn_ticket_words(heads) * sizeof(unsigned));
	CK(cudaMemset(tk, 0, awq_cu_attn_ticket_words(heads) * sizeof(unsigned)));
	if (profile_sms) {
		a.ticket = tk;
		a.min_grid = 8 * profile_sms;
		for (int i = 0; i < 2; i++)
			CK(awq_cu_attn_decode(st, &a));
		CK(cudaStreamSynchronize(st));
	} else {
		for (int merged = 0; merged < 2; merged++) {
			a.ticket = merged ? tk : NULL;
			double us = time_us([&] { CK(awq_cu_attn_decode(st, &a)); }, 20, 9);
			char what[112], at[24] = "";
			if (p + 1 < ctx)
				snprintf(at, sizeof(at), "@%d", p + 1);
			snprintf(what, sizeof(what), "decode attention ctx=%d%s heads=%d/%d %s%s%s", ctx, at, heads, kv_heads,
				 merged ? "with ticket" : "2 launches", a.pdl ? ", pdl" : "",
				 plan_kernel(&a));
			push_row(what, us, 2.0 * kv * 2 * (p + 1) / ctx, "B", copy_bw);
		}
	}
	CK(cudaFree(tk));
	CK(cudaFree(k));
	CK(cudaFree(v));
	CK(cudaFree(q));
	CK(cudaFree(o));
	CK(cudaFree(pos));
	CK(cudaFree(part));
}

/* One layer of llama2-7b prefill attention: n tokens at position 0, causal, f16 tensor cores. */
static void bench_flash(int n, int heads, int kv_heads)
{
	int hd = 128;
	size_t kv = (size_t)n * kv_heads * hd;
	uint16_t *k = (uint16_t *)dev(kv * 2), *v = (uint16_t *)dev(kv * 2);
	rnd_half(k, kv, -1, 1, 9);
	rnd_half(v, kv, -1, 1, 10);
	float *q = (float *)dev((size_t)n * heads * hd * 4), *o = (float *)dev((size_t)n * heads * hd * 4);
	CK(cudaMemset(q, 0, (size_t)n * heads * hd * 4));
	int *pos = (int *)dev(4);
	CK(cudaMemset(pos, 0, 4));
	struct awq_cu_attn a = {};
	a.q = q, a.k = k, a.v = v, a.out = o, a.d_pos = pos, a.rows = n, a.n_heads = heads, a.n_kv_heads = kv_heads;
	a.head_dim = hd, a.max_ctx = n, a.scale = 0.088f;
	double us = time_us([&] { CK(awq_cu_attn_prefill(st, &a)); }, 10, 7);
	char what[96];
	snprintf(what, sizeof(what), "flash attention n=%d heads=%d/%d", n, heads, kv_heads);
	push_row(what, us, 2.0 * 2.0 * n * n * heads * hd / 2, "FLOP", gemm_f16);
	CK(cudaFree(k));
	CK(cudaFree(v));
	CK(cudaFree(q));
	CK(cudaFree(o));
	CK(cudaFree(pos));
}

/* A shape list "MxK,MxK,..." (both positive) into out; 0 where it does not read as one. */
static int read_shape_list(const char *a, std::vector<std::pair<int, int>> &out)
{
	for (const char *c = a; *c;) {
		int m, k, used = 0;
		if (sscanf(c, "%dx%d%n", &m, &k, &used) != 2 || m <= 0 || k <= 0)
			return 0;
		out.push_back({m, k});
		c += used;
		if (*c == ',')
			c++;
		else if (*c)
			return 0;
	}
	return !out.empty();
}

#include "cuda_chain_bench.cuh"

/* Logits-like floats: value = lo + (hi - lo) * u, u uniform from the column's hash. */
__global__ void fill_float_kernel(float *p, size_t n, float lo, float hi, uint32_t seed)
{
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
		uint32_t x = (uint32_t)i * 2654435761u ^ seed;
		x ^= x >> 15;
		x *= 0x2c1b3c6du;
		x ^= x >> 12;
		p[i] = lo + (hi - lo) * (x >> 8) * (1.0f / 16777216.0f);
	}
}

/* --topk: the device top-k (awq_cu_topk, k = 1, 40, 256) and the sampled chain's draw (awq_cu_sample,
 * top-k 40) on one row of vocabulary size, against the split argmax of the same row and against
 * reading the row once (the floor: the row is 128-608 KB, well under a microsecond of bandwidth, so
 * these kernels are latency-bound and the fraction shown is of the read rate). */
static void bench_topk(void)
{
	static const int cols[] = {4096, 32000, 128256, 151936};
	for (int c : cols) {
		float *in = (float *)dev((size_t)c * 4);
		fill_float_kernel<<<256, 256, 0, st>>>(in, (size_t)c, -12.0f, 24.0f, 77u + (uint32_t)c);
		CK(cudaGetLastError());
		void *part = dev(awq_cu_topk_part_bytes(c, AWQ_CU_TOPK_MAX));
		unsigned *ticket = (unsigned *)dev(64);
		CK(cudaMemset(ticket, 0, 64));
		int32_t *ids = (int32_t *)dev(AWQ_CU_TOPK_MAX * 8);
		float *vals = (float *)(ids + AWQ_CU_TOPK_MAX);
		char what[112];
		const double bytes = (double)c * 4;
		{
			const int nb = awq_cu_argmax_blocks(1, c);
			float *pv = (float *)dev((size_t)(nb > 0 ? nb : 1) * 8);
			struct awq_cu_amax_scratch scr = {pv, (int *)(pv + (nb > 0 ? nb : 1)), ticket + 8, nb};
			double us = time_us([&] { CK(awq_cu_argmax(st, in, 1, c, ids, 0, NULL, nb > 0 ? &scr : NULL)); }, 50, 7);
			snprintf(what, sizeof(what), "argmax cols %d", c);
			push_row(what, us, bytes, "B", read_bw);
			CK(cudaFree(pv));
		}
		for (int k : {1, 40, 256}) {
			if (k > c)
				continue;
			double us = time_us([&] { CK(awq_cu_topk(st, in, c, k, part, ticket, ids, vals)); }, 50, 7);
			snprintf(what, sizeof(what), "topk cols %d k %d", c, k);
			push_row(what, us, bytes, "B", read_bw);
		}
		{
			struct awq_cu_sampling *samp = (struct awq_cu_sampling *)dev(sizeof(struct awq_cu_sampling));
			struct awq_cu_sampling hs = {1.0f / 0.8f, 0.95f, 0.05f, 40, {1, 2, 3, 4}};
			CK(cudaMemcpy(samp, &hs, sizeof(hs), cudaMemcpyHostToDevice));
			int *pos = (int *)dev(64);
			CK(cudaMemset(pos, 0, 64));
			int32_t *ring = (int32_t *)dev(64 * 4);
			struct awq_cu_feed feed = {ids, pos, ring, 63};
			double us = time_us([&] { CK(awq_cu_sample(st, in, c, part, ticket, samp, 40, &feed)); }, 50, 7);
			snprintf(what, sizeof(what), "sample cols %d top-k 40", c);
			push_row(what, us, bytes, "B", read_bw);
			CK(cudaFree(samp));
			CK(cudaFree(pos));
			CK(cudaFree(ring));
		}
		CK(cudaStreamSynchronize(st));
		CK(cudaFree(in));
		CK(cudaFree(part));
		CK(cudaFree(ticket));
		CK(cudaFree(ids));
	}
}

static void print_rows(void)
{
	printf("\n%-44s %10s %12s %14s %8s\n", "kernel", "time us", "amount", "rate", "of ceil");
	for (auto &r : rows) {
		double rate = r.amount / (r.us * 1e-6);
		bool bytes = r.unit[0] == 'B';
		printf("%-44s %10.2f %9.2f %s %9.1f %s %7.1f%%\n", r.what, r.us, r.amount / (bytes ? 1e6 : 1e9),
		       bytes ? "MB " : "GF ", rate / (bytes ? 1e9 : 1e12), bytes ? "GB/s " : "TF/s ", 100.0 * rate / r.ceiling);
	}
}

int main(int argc, char **argv)
{
	int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
	/* --profile: one plain launch each of the decode GEMV at m=4096 k=14336 (fallback, then built-in
	 * choice), of the built-in one at m=4096 k=4096 and of the BF16 GEMV at m=4096 k=14336, for
	 * `ncu --clock-control none --kernel-name regex:gemv` (no graphs, no timing). */
	int profile = argc > 1 && strcmp(argv[1], "--profile") == 0;
	/* the shape lists of --chain and --sweep, read before any device work: a bad one is reported
	 * (exit 2) on any machine */
	std::vector<chain::plan> chains;
	std::vector<std::pair<int, int>> list; /* --sweep MxK,MxK,...: those shapes instead of the built-in ones */
	if (argc > 1 && strcmp(argv[1], "--chain") == 0 && chain::read_plans(argc, argv, chains))
		return 2;
	/* --attn CTX HEADS KV_HEADS: two decode attention launches of head dim 128 at that context, as a
	 * decode step makes them, for ncu (no timing) */
	int attn[3] = {0, 0, 0};
	if (argc > 1 && strcmp(argv[1], "--attn") == 0) {
		bool ok = argc == 5;
		for (int i = 0; ok && i < 3; i++) {
			char *end;
			long v = strtol(argv[i + 2], &end, 10);
			ok = *end == 0 && v > 0 && v <= (1 << 20);
			attn[i] = (int)v;
		}
		if (!ok || attn[1] % attn[2]) {
			printf("awq-cuda-bench: --attn wants CTX HEADS KV_HEADS (whole numbers from 1 to 1048576, HEADS a multiple of KV_HEADS)\n");
			return 2;
		}
	}
	/* --attn-rows [CTX[@POS],...]: the contexts, read here too */
	std::vector<int> ctx = {640, 4096, 16384}, fill = {0, 0, 0};
	if (argc > 2 && strcmp(argv[1], "--attn-rows") == 0) {
		ctx.clear();
		fill.clear();
		for (const char *c = argv[2]; *c;) {
			char *end;
			long v = strtol(c, &end, 10), f = 0;
			if (end != c && *end == '@') {
				const char *fs = end + 1;
				f = strtol(fs, &end, 10);
				if (end == fs || f < 1 || f > v)
					f = -1;
			}
			if (end == c || v < 1 || v > (1 << 20) || f < 0 || (*end && *end != ',')) {
				printf("awq-cuda-bench: --attn-rows wants CTX[@POS],... (whole numbers from 1 to 1048576, POS <= CTX)\n");
				return 2;
			}
			ctx.push_back((int)v);
			fill.push_back((int)f);
			c = *end ? end + 1 : end;
		}
		if (ctx.empty()) {
			printf("awq-cuda-bench: --attn-rows wants CTX[@POS],... (whole numbers from 1 to 1048576, POS <= CTX)\n");
			return 2;
		}
	}
	if (argc > 2 && strcmp(argv[1], "--sweep") == 0) {
		bool ok = read_shape_list(argv[2], list);
		for (auto &mk : list)
			ok = ok && mk.first % 16 == 0 && mk.second % 128 == 0;
		if (!ok) {
			printf("awq-cuda-bench: cannot read shape list '%s' (MxK,... with M a multiple of 16, K of 128)\n",
			       argv[2]);
			return 2;
		}
	}
	cudaDeviceProp p;
	if (cudaGetDeviceProperties(&p, 0) != cudaSuccess) {
		printf("awq-cuda-bench: no CUDA device\n");
		return 77;
	}
	CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
	cublasHandle_t h;
	if (cublasCreate(&h) != CUBLAS_STATUS_SUCCESS || cublasSetStream(h, st) != CUBLAS_STATUS_SUCCESS)
		return 1;
	printf("device: %s, sm_%d%d, %d SMs, L2 %d MiB\n", p.name, p.major, p.minor, p.multiProcessorCount,
	       p.l2CacheSize >> 20);
	if (attn[0]) {
		bench_attn(attn[0], attn[1], attn[2], p.major, p.multiProcessorCount);
		printf("attention launches done\n");
		return 0;
	}
	if (profile) {
		q4set q = make_q4(4096, 14336, 1);
		float *x = (float *)dev((size_t)8 * 14336 * 4), *y = (float *)dev((size_t)8 * 32000 * 4);
		rnd_half(x, (size_t)8 * 14336 * 2, -1, 1, 5); /* f16 pairs read as f32: finite, small */
		awq_cu_out o = out_of(y, 4096);
		awq_cu_q4_gemv_tune(1, 0, 0, 0, -1);
		CK(awq_cu_q4_gemv(st, &q.w[0], x, 1, &o, AWQ_CU_EPI_STORE, p.multiProcessorCount));
		awq_cu_q4_gemv_tune(0, 0, 0, 0, 0);
		CK(awq_cu_q4_gemv(st, &q.w[0], x, 1, &o, AWQ_CU_EPI_STORE, p.multiProcessorCount));
		q4set q2 = make_q4(4096, 4096, 1); /* short K: 8 chunks per warp */
		CK(awq_cu_q4_gemv(st, &q2.w[0], x, 1, &o, AWQ_CU_EPI_STORE, p.multiProcessorCount));
		uint16_t *wb = (uint16_t *)dev((size_t)4096 * 14336 * 2);
		rnd_half(wb, (size_t)4096 * 14336, -0.1f, 0.1f, 6);
		CK(awq_cu_w16_gemv(st, wb, 1, NULL, 4096, 14336, x, 1, y));
		CK(cudaStreamSynchronize(st));
		printf("profile launches done\n");
		return 0;
	}
	if (argc > 1 && strcmp(argv[1], "--attn-rows") == 0) {
		/* --attn-rows [CTX[@POS],...]: decode attention alone (timed), head dim 128, at those
		 * contexts (default 640, 4096, 16384; @POS: the step at POS positions of a cache planned
		 * for CTX, as a step part-way through its span) and the head groupings of the dense models
		 * (32/32 llama2-7b, 32/8 qwen3-8b and llama3-8b, 32/4 qwen3-30b-a3b, 28/4 qwen2.5-7b), for
		 * sweeps of the attention knobs in one call */
		static const int hk[][2] = {{32, 32}, {32, 8}, {32, 4}, {28, 4}};
		ceilings(p.multiProcessorCount);
		for (size_t i = 0; i < ctx.size(); i++)
			for (auto &g : hk)
				bench_attn(ctx[i], g[0], g[1], p.major, 0, fill[i]);
		print_rows();
		printf("ceilings: copy %.0f GB/s (read+write), read-only %.0f GB/s\n", copy_bw / 1e9, read_bw / 1e9);
		return 0;
	}
	if (argc > 1 && strcmp(argv[1], "--topk") == 0) {
		ceilings(p.multiProcessorCount);
		bench_topk();
		print_rows();
		printf("ceilings: read-only %.0f GB/s\n", read_bw / 1e9);
		return 0;
	}
	if (argc > 1 && strcmp(argv[1], "--parts") == 0) {
		/* --parts: the weight stream with the decode GEMV's start-up and end phases added one at a
		 * time (parts_kernel), at the built-in launches of the llama2-7b shapes */
		static const int sh[][4] = {{4096, 14336, 16, 4}, {22016, 4096, 4, 4}, {12288, 4096, 8, 2},
					    {4096, 4096, 16, 2}, {4096, 11008, 16, 4}, {11008, 4096, 8, 2}};
		ceilings(p.multiProcessorCount);
		for (size_t i = 0; i < sizeof(sh) / sizeof(sh[0]); i++)
			bench_parts(sh[i][0], sh[i][1], sh[i][2], sh[i][3]);
		print_rows();
		return 0;
	}
	if (argc > 1 && strcmp(argv[1], "--chain") == 0) {
		/* --chain [llama2-7b | qwen3-30b-a3b | NxK,... [layers]]: a layer's dependent decode GEMVs as
		 * launches, one persistent kernel or a ring (cuda_chain_bench.cuh), and the built-in GEMVs */
		setvbuf(stdout, NULL, _IOLBF, 0); /* a failed launch still leaves what came before */
		ceilings(p.multiProcessorCount);
		for (const chain::plan &c : chains)
			chain::bench(p.multiProcessorCount, c.label, c.sh, c.layers);
		print_rows();
		printf("ceilings: copy %.0f GB/s (read+write), read-only %.0f GB/s\n", copy_bw / 1e9, read_bw / 1e9);
		return 0;
	}
	if (argc > 1 && strcmp(argv[1], "--pattern") == 0) {
		/* --pattern: the decode GEMV's weight stream alone (pattern_kernel), its built-in launches
		 * on the llama2-7b shapes, in the repacked tile-major layout and chunk-major */
		static const int sh[][4] = {{4096, 14336, 16, 2}, {4096, 14336, 16, 4}, {22016, 4096, 4, 4}, {22016, 4096, 4, 2},
					    {12288, 4096, 8, 2}, {4096, 4096, 16, 2}, {4096, 11008, 16, 2}, {11008, 4096, 8, 2}};
		ceilings(p.multiProcessorCount);
		for (size_t i = 0; i < sizeof(sh) / sizeof(sh[0]); i++)
			bench_pattern(sh[i][0], sh[i][1], sh[i][2], sh[i][3], p.multiProcessorCount);
		print_rows();
		return 0;
	}
	if (argc > 1 && (strcmp(argv[1], "--tokens") == 0 || strcmp(argv[1], "--tokens14") == 0)) {
		/* --tokens: the decode GEMV at 1-8 tokens on the llama2-7b and qwen3-8b shapes, the built-in
		 * choice with f32 x (activations staged up to 2 tokens, in the ring above: XR) against the
		 * f16 ring (XH) at several launches; --tokens14: qwen3-14b's shapes, whose down projection
		 * (5120 x 17408) is the one-token wave-balance rule's case (one tile per block, 8 warps) */
		static const int n348[] = {1, 2, 3, 4, 8};
		static const gemv_variant tv[] = {
			{"f32 x", 0, 0, 0, 0, -1, 0},	      {"xh", 0, 0, 0, 0, -1, 1},	   {"xh rt2 kw8 s2", 0, 2, 8, 2, -1, 1},
			{"xh rt2 kw4 s2", 0, 2, 4, 2, -1, 1}, {"xh rt2 kw16 s4", 0, 2, 16, 4, -1, 1},
		};
		static const gemv_variant tv14[] = {
			{"f32 x", 0, 0, 0, 0, -1, 0},	      {"xh", 0, 0, 0, 0, -1, 1},	     {"xh rt1 kw8 s4", 0, 1, 8, 4, -1, 1},
			{"xh rt1 kw16 s4", 0, 1, 16, 4, -1, 1}, {"xh rt2 kw8 s4", 0, 2, 8, 4, -1, 1},
		};
		/* llama2-7b's q/k/v, o, gate/up, down; qwen3-8b's q/k/v, gate/up, down */
		static const int shapes[][2] = {{12288, 4096}, {4096, 4096}, {22016, 4096}, {4096, 11008},
						{6144, 4096},	{24576, 4096}, {4096, 12288}, {4096, 14336}};
		/* qwen3-14b's q/k/v, o, gate/up, down */
		static const int shapes14[][2] = {{7168, 5120}, {5120, 5120}, {34816, 5120}, {5120, 17408}};
		const int is14 = strcmp(argv[1], "--tokens14") == 0;
		const int nsh = is14 ? 4 : (int)(sizeof(shapes) / sizeof(shapes[0]));
		ceilings(p.multiProcessorCount);
		for (int i = 0; i < nsh; i++) {
			const int *sh = is14 ? shapes14[i] : shapes[i];
			int cp = sh[0] * sh[1] > 40000000 ? 4 : 8;
			bench_q4_gemv(sh[0], sh[1], p.multiProcessorCount, cp, is14 ? tv14 : tv, 5, n348, 5);
		}
		print_rows();
		return 0;
	}
	if (argc > 1 && strcmp(argv[1], "--sweep") == 0) {
		/* --sweep [MxK,...]: the decode GEMV's tuning variants on every llama2-7b / 8b decode shape
		 * (n = 1), or on the shapes given, to choose the built-in configuration (try_gemv2) from one
		 * short run */
		static const int n1[] = {1};
		static const gemv_variant sw[] = {
			{"default", 0, 0, 0, 0, -1}, {"rt2 kw4 s4", 0, 2, 4, 4, 1},   {"rt2 kw8 s4", 0, 2, 8, 4, 1},
			{"rt2 kw8 s8", 0, 2, 8, 8, 1}, {"rt2 kw8 s2", 0, 2, 8, 2, 1},   {"rt2 kw16 s4", 0, 2, 16, 4, 1},
			{"rt2 kw16 s2", 0, 2, 16, 2, 1}, {"rt1 kw8 s8", 0, 1, 8, 8, 1}, {"rt1 kw8 s4", 0, 1, 8, 4, 1},
			{"rt1 kw4 s4", 0, 1, 4, 4, 1}, {"rt1 kw4 s2", 0, 1, 4, 2, 1}, {"rt1 kw16 s2", 0, 1, 16, 2, 1},
			V_LEGACY,
		};
		static const int shapes[][2] = {{4096, 4096}, {12288, 4096}, {22016, 4096}, {11008, 4096},
						{4096, 11008}, {4096, 14336}, {6144, 4096}, {24576, 4096}, {4096, 12288}};
		if (list.empty())
			for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++)
				list.push_back({shapes[i][0], shapes[i][1]});
		ceilings(p.multiProcessorCount);
		for (auto &sh : list) {
			/* copies: at least 3 x the 60 MB L2 */
			const int cp = std::max(4, (int)(180e6 / (sh.first * (double)sh.second / 2)) + 1);
			bench_q4_gemv(sh.first, sh.second, p.multiProcessorCount, cp, sw, sizeof(sw) / sizeof(sw[0]), n1, 1);
		}
		print_rows();
		return 0;
	}
	ceilings(p.multiProcessorCount);
	gemm_f16 = blas_gemm(h, CUDA_R_16F, 8192, 8192, 8192, "FP16", 0);
	gemm_bf16 = blas_gemm(h, CUDA_R_16BF, 8192, 8192, 8192, "BF16", 0);
	blas_gemm(h, CUDA_R_16F, 11008, 512, 4096, "FP16", gemm_f16);
	blas_gemm(h, CUDA_R_16F, 4096, 512, 4096, "FP16", gemm_f16);
	int copies = quick ? 4 : 6; /* 6 x 30.5 MB > 50 MB L2 */
	{
		static const int n1[] = {1}, n1248[] = {1, 2, 4, 8};
		static const gemv_variant sweep[] = {
			V_LEGACY, {"default", 0, 0, 0, 0, -1},
			{"rt2 kw16 s2", 0, 2, 16, 2, 1}, {"rt2 kw16 s6", 0, 2, 16, 6, 1},
			{"rt2 kw16 s4 nopdl", 0, 2, 16, 4, 0}, {"rt1 kw16 s4", 0, 1, 16, 4, 1},
		};
		int sms = p.multiProcessorCount;
		bench_q4_gemv(4096, 14336, sms, copies, sweep, sizeof(sweep) / sizeof(sweep[0]), n1, 1);
		/* Short K (64 chunks): with 8 warps a warp's slice is 8 chunks, so s8 puts all of it in flight
		 * at once and kw16 halves the slice; both test whether the start-up round trips bound it. */
		static const gemv_variant small_sweep[] = {
			V_LEGACY, {"default", 0, 0, 0, 0, -1},
			{"rt1 kw8 s2", 0, 1, 8, 2, 1}, {"rt1 kw8 s4 nopdl", 0, 1, 8, 4, 0},
			{"rt1 kw4 s4", 0, 1, 4, 4, 1}, {"rt2 kw8 s4", 0, 2, 8, 4, 1}, {"rt2 kw4 s4", 0, 2, 4, 4, 1},
			{"rt1 kw8 s8", 0, 1, 8, 8, 1}, {"rt1 kw16 s4", 0, 1, 16, 4, 1}, {"rt1 kw16 s2", 0, 1, 16, 2, 1},
		};
		bench_q4_gemv(4096, 4096, sms, copies * 3, small_sweep, sizeof(small_sweep) / sizeof(small_sweep[0]), n1, 1);
		/* the built-in choice at n = 1, 2, 4, 8 against the fallback, llama2-7b decode shapes; the
		 * streaming kernel forced (above 2 tokens: activations in the ring, XR), and at 4096 x 14336
		 * the built-in choice given the f16 copy of x (from 2 tokens: XH, as in the model) */
		static const gemv_variant dl[] = {V_LEGACY, V_DEFAULT, {"xr rt2 kw16 s4", 0, 2, 16, 4, -1},
						  {"xr rt2 kw8 s2", 0, 2, 8, 2, -1}, {"xh", 0, 0, 0, 0, -1, 1}};
		static const int n128[] = {1, 2, 8}, n48[] = {4, 8};
		bench_q4_gemv(4096, 14336, sms, copies, dl, 5, n1248, 4);
		bench_q4_gemv(4096, 4096, sms, copies * 3, dl, 2, n128, 3);
		bench_q4_gemv(4096, 4096, sms, copies * 3, dl + 2, 2, n48, 2);
		bench_q4_gemv(12288, 4096, sms, copies, dl, 2, n128, 3);
		bench_q4_gemv(12288, 4096, sms, copies, dl + 2, 2, n48, 2);
		bench_q4_gemv(22016, 4096, sms, 4, dl, 2, n128, 3);
		bench_q4_gemv(4096, 11008, sms, copies, dl, 2, n128, 3);
		bench_q4_gemv(11008, 4096, sms, copies, small_sweep, sizeof(small_sweep) / sizeof(small_sweep[0]), n1, 1);
	}
	bench_q4_gemm(4096, 4096, 512, p.major, p.multiProcessorCount, 4);
	bench_q4_gemm(11008, 4096, 512, p.major, p.multiProcessorCount, 4);
	bench_q4_gemm(4096, 11008, 512, p.major, p.multiProcessorCount, 4);
	bench_q4_gemm(4096, 4096, 4096, p.major, p.multiProcessorCount, 2);
	bench_w16_gemv(4096, 4096, 4);
	bench_w16_gemv(4096, 14336, 2);
	bench_w16_gemv(32000, 4096, 2); /* llama2-7b lm_head */
	bench_attn(640, 32, 32, p.major); /* the context of `awqrun bench -p 512 -n 128`: llama2-7b, qwen3-30b-a3b */
	bench_attn(640, 32, 4, p.major);
	bench_attn(4096, 32, 32, p.major);
	bench_attn(4096, 32, 8, p.major); /* llama3-8b, qwen3-8b */
	bench_attn(16384, 32, 32, p.major);
	bench_attn(16384, 32, 8, p.major);
	bench_flash(512, 32, 32);
	bench_flash(4096, 32, 8);
	print_rows();
	printf("ceilings: copy %.0f GB/s (read+write), read-only %.0f GB/s, cuBLAS FP16 %.0f TFLOP/s, BF16 %.0f TFLOP/s\n",
	       copy_bw / 1e9, read_bw / 1e9, gemm_f16 / 1e12, gemm_bf16 / 1e12);
	cublasDestroy(h);
	return 0;
}
