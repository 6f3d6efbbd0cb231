/* Device helpers shared by the kernels: tensor-core mma wrappers (m16n8k16 on sm_80+, two m16n8k8
 * on sm_75), INT4 -> FP16 conversion with lop3 and the 0x6400 exponent trick, async copies. */
#ifndef AWQ_CU_COMMON_CUH
#define AWQ_CU_COMMON_CUH

#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <stdint.h>

#define AWQ_CU_CHECK_LAUNCH() cudaGetLastError()

static __device__ __forceinline__ uint32_t lop3_and_or(uint32_t a, uint32_t b, uint32_t c)
{
	uint32_t r;
	asm("lop3.b32 %0, %1, %2, %3, 0xea;" : "=r"(r) : "r"(a), "r"(b), "r"(c));
	return r;
}

static __device__ __forceinline__ uint32_t h2u(half2 h)
{
	return *reinterpret_cast<uint32_t *>(&h);
}

static __device__ __forceinline__ half2 u2h(uint32_t u)
{
	return *reinterpret_cast<half2 *>(&u);
}

/* Per-lane group parameters for rows g (lo) and g + 8 (hi) of a 16-row tile. */
struct q4_group {
	half2 s_lo, s_hi;    /* scale, broadcast */
	half2 z_lo, nz_hi;   /* 1024 + z (lo path), -(64 + z) (hi path, after the 1/16 fma) */
};

/* scales/zeros may point to global memory or to the block's shared-memory copy (generic loads). */
static __device__ __forceinline__ q4_group q4_group_load(const uint32_t *scales, const uint2 *zeros,
							 size_t idx, int g)
{
	q4_group p;
	half2 s = u2h(scales[idx * 8 + g]);
	uint2 zw = zeros[idx];
	uint32_t zl = (zw.x >> (4 * g)) & 0xfu, zh = (zw.y >> (4 * g)) & 0xfu;
	p.s_lo = __low2half2(s);
	p.s_hi = __high2half2(s);
	uint32_t zlo = 0x6400u | zl, nzhi = 0xd400u | (zh << 4);
	p.z_lo = u2h(zlo | (zlo << 16));
	p.nz_hi = u2h(nzhi | (nzhi << 16));
	return p;
}

/* Copy the scales and zeros of tiles [tile0, tile0 + ntiles) into shared memory, so that the
 * per-chunk parameter loads of the main loop do not wait on L2 after every barrier. */
static __device__ __forceinline__ void q4_stage_groups(const uint32_t *scales, const uint2 *zeros, int tiles,
						       int groups, int tile0, int ntiles, uint32_t *s_sc, uint2 *s_z)
{
	int n = min(ntiles, tiles - tile0) * groups;
	const uint4 *src = reinterpret_cast<const uint4 *>(scales + (size_t)tile0 * groups * 8);
	uint4 *dst = reinterpret_cast<uint4 *>(s_sc);
	for (int i = threadIdx.x; i < n * 2; i += blockDim.x)
		dst[i] = src[i];
	for (int i = threadIdx.x; i < n; i += blockDim.x)
		s_z[i] = zeros[(size_t)tile0 * groups + i];
	__syncthreads();
}

/* One packed word -> the four f16x2 registers of an m16k16 A fragment. Nibbles 0..7 hold
 * (g,2t) (g+8,2t) (g,2t+8) (g+8,2t+8) in their low halves and the +1 columns in nibbles 4..7. */
static __device__ __forceinline__ void q4_dequant(uint32_t w, const q4_group &p, uint32_t a[4])
{
	const uint32_t lo_mask = 0x000f000fu, hi_mask = 0x00f000f0u, ex = 0x64006400u;
	const half2 sixteenth = __float2half2_rn(0.0625f);
	uint32_t w8 = w >> 8;
	half2 l0 = u2h(lop3_and_or(w, lo_mask, ex));
	half2 h0 = u2h(lop3_and_or(w, hi_mask, ex));
	half2 l1 = u2h(lop3_and_or(w8, lo_mask, ex));
	half2 h1 = u2h(lop3_and_or(w8, hi_mask, ex));
	a[0] = h2u(__hmul2(__hsub2(l0, p.z_lo), p.s_lo));
	a[1] = h2u(__hmul2(__hfma2(h0, sixteenth, p.nz_hi), p.s_hi));
	a[2] = h2u(__hmul2(__hsub2(l1, p.z_lo), p.s_lo));
	a[3] = h2u(__hmul2(__hfma2(h1, sixteenth, p.nz_hi), p.s_hi));
}

/* As q4_dequant but leaves out the scale: (q - z) is an exact small integer in f16, and the
 * caller scales the f32 mma result once per group (fewer instructions per weight, and exact). */
static __device__ __forceinline__ void q4_dequant_noscale(uint32_t w, const q4_group &p, uint32_t a[4])
{
	const uint32_t lo_mask = 0x000f000fu, hi_mask = 0x00f000f0u, ex = 0x64006400u;
	const half2 sixteenth = __float2half2_rn(0.0625f);
	uint32_t w8 = w >> 8;
	a[0] = h2u(__hsub2(u2h(lop3_and_or(w, lo_mask, ex)), p.z_lo));
	a[1] = h2u(__hfma2(u2h(lop3_and_or(w, hi_mask, ex)), sixteenth, p.nz_hi));
	a[2] = h2u(__hsub2(u2h(lop3_and_or(w8, lo_mask, ex)), p.z_lo));
	a[3] = h2u(__hfma2(u2h(lop3_and_or(w8, hi_mask, ex)), sixteenth, p.nz_hi));
}

/* One packed word -> the A fragment without zero or scale: 1024 + q in rows g (a[0], a[2]) and
 * 1024 + 16 q in rows g + 8 (a[1], a[3]), all exact in f16 (see q4_corr_make for the correction). */
static __device__ __forceinline__ void q4_magic(uint32_t w, uint32_t a[4])
{
	const uint32_t lo_mask = 0x000f000fu, hi_mask = 0x00f000f0u, ex = 0x64006400u;
	uint32_t w8 = w >> 8;
	a[0] = lop3_and_or(w, lo_mask, ex);
	a[1] = lop3_and_or(w, hi_mask, ex);
	a[2] = lop3_and_or(w8, lo_mask, ex);
	a[3] = lop3_and_or(w8, hi_mask, ex);
}

/* A group's correction of q4_magic sums for rows g (lo) and g + 8 (hi), from the scale word (half2:
 * rows g, g + 8) and the zeros (nibble g of .x and .y): out += s * acc - t * sum(x), as a float4
 * {s_lo, t_lo, s_hi, t_hi} with s_lo = scale, t_lo = scale * (1024 + z); s_hi = scale / 16,
 * t_hi = scale * (64 + z). */
static __device__ __forceinline__ float4 q4_corr_make(uint32_t scale, uint2 zw, int g)
{
	half2 s = u2h(scale);
	float zl = (float)((zw.x >> (4 * g)) & 0xfu), zh = (float)((zw.y >> (4 * g)) & 0xfu);
	float sl = __low2float(s), sh = __high2float(s);
	return make_float4(sl, sl * (1024.0f + zl), sh * 0.0625f, sh * (64.0f + zh));
}

/* c += A(16x16 f16) * B(16x8 f16), f32 accumulators. */
static __device__ __forceinline__ void mma_f16(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1)
{
#if __CUDA_ARCH__ >= 800
	asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
		     "{%8,%9}, {%0,%1,%2,%3};"
		     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
		     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
	asm("mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5}, {%6}, "
		     "{%0,%1,%2,%3};"
		     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
		     : "r"(a[0]), "r"(a[1]), "r"(b0));
	asm("mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5}, {%6}, "
		     "{%0,%1,%2,%3};"
		     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
		     : "r"(a[2]), "r"(a[3]), "r"(b1));
#endif
}

/* Word i of a 16-byte vector (i a constant after unrolling: selects, no local-memory copy). */
static __device__ __forceinline__ uint32_t word_of(const uint4 &v, int i)
{
	return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w;
}

/* The four k16 steps of one 64-column chunk of NT tiles on raw q4 words (q4_magic): cx += all-ones A
 * x B (the activation sums of the columns, for q4_corr_make's correction), cg[i] += tile i's raw
 * values x B. w[i]: the lane's word of each tile (word j is step j); xa, xb: the lane's B words of the
 * chunk (step j: b0 = word 2j, b1 = word 2j + 1). */
template <int NT>
static __device__ __forceinline__ void q4_chunk_mma(const uint4 (&w)[NT], const uint4 &xa, const uint4 &xb, float (&cx)[4],
						    float (&cg)[NT][4])
{
	const uint32_t ones = 0x3c003c00u;
	const uint32_t ones_a[4] = {ones, ones, ones, ones};
#pragma unroll
	for (int j = 0; j < 4; j++) {
		const uint4 &xv = j < 2 ? xa : xb; /* step j: b0 = word 2j, b1 = word 2j + 1 of xa, xb */
		uint32_t b0 = word_of(xv, 2 * (j & 1)), b1 = word_of(xv, 2 * (j & 1) + 1);
		mma_f16(cx, ones_a, b0, b1);
#pragma unroll
		for (int i = 0; i < NT; i++) {
			uint32_t a[4];
			q4_magic(word_of(w[i], j), a);
			mma_f16(cg[i], a, b0, b1);
		}
	}
}

static __device__ __forceinline__ uint4 ld_stream16(const uint4 *p)
{
	uint4 r;
	asm("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
		     : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
		     : "l"(p));
	return r;
}

static __device__ __forceinline__ uint32_t smem_addr(const void *p)
{
	return (uint32_t)__cvta_generic_to_shared(p);
}

/* 16-byte global -> shared copy, zero-filled when !valid. Asynchronous on sm_80+. */
static __device__ __forceinline__ void cp16(void *dst, const void *src, bool valid)
{
#if __CUDA_ARCH__ >= 800
	asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(smem_addr(dst)), "l"(src),
		     "r"(valid ? 16 : 0));
#else
	*reinterpret_cast<uint4 *>(dst) = valid ? *reinterpret_cast<const uint4 *>(src) : make_uint4(0, 0, 0, 0);
#endif
}

static __device__ __forceinline__ void cp_commit(void)
{
#if __CUDA_ARCH__ >= 800
	asm volatile("cp.async.commit_group;");
#endif
}

template <int N> static __device__ __forceinline__ void cp_wait(void)
{
#if __CUDA_ARCH__ >= 800
	asm volatile("cp.async.wait_group %0;" ::"n"(N));
#endif
}

/* cp.async commit / wait with a memory clobber, for rings read back with plain loads (which the
 * compiler must not move above the wait): the decode GEMV's (k_q4.cu) and decode attention's */
static __device__ __forceinline__ void v2_commit(void)
{
#if __CUDA_ARCH__ >= 800
	asm volatile("cp.async.commit_group;" ::: "memory");
#endif
}

template <int N> static __device__ __forceinline__ void v2_wait(void)
{
#if __CUDA_ARCH__ >= 800
	asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
#endif
}

static __device__ __forceinline__ void ldmatrix_x4(uint32_t r[4], const void *p)
{
	asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
		     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
		     : "r"(smem_addr(p)));
}

static __device__ __forceinline__ void ldmatrix_x4_trans(uint32_t r[4], const void *p)
{
	asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
		     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
		     : "r"(smem_addr(p)));
}

/* sin and cos of a RoPE angle a >= 0 (position x inverse frequency): a reduced to [-pi, pi] by
 * 2 pi in two float parts (the second, float(2 pi) - 2 pi, through an fma), then the hardware
 * approximation (absolute error ~4e-7 there). sincosf itself keeps a large-argument path with a
 * local-memory table in every kernel that calls it; the decode GEMVs have no local memory. */
static __device__ __forceinline__ void rope_sincos(float a, float *sn, float *cs)
{
	const float k = rintf(a * 0.159154943091895336f);
	const float r = fmaf(k, 1.7484555e-7f, fmaf(-k, 6.28318548202514648f, a));
	__sincosf(r, sn, cs);
}

static __device__ __forceinline__ float silu(float x)
{
	return x / (1.0f + expf(-x));
}

static __device__ __forceinline__ float sigmoid(float x)
{
	return 1.0f / (1.0f + expf(-x));
}

/* Element s of a 3-array in a kernel's parameter struct, by selects: a dynamic index into the
 * struct makes the compiler copy all of it to local memory at kernel start (an 80-120 byte stack
 * frame whose stores queue behind the first loads: ~9% of decode, session 8). */
template <class T> static __device__ __forceinline__ T cu_sel3(const T (&a)[3], int s)
{
	return s == 0 ? a[0] : s == 1 ? a[1] : a[2];
}

/* Eight 16-bit values (one 16-byte load; bf16 when is_bf16, else f16) as floats. */
static __device__ __forceinline__ void w16x8_unpack(const uint4 &v, int is_bf16, float f[8])
{
	const uint32_t u[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
	for (int i = 0; i < 4; i++) {
		if (is_bf16) {
			f[2 * i] = __uint_as_float(u[i] << 16);
			f[2 * i + 1] = __uint_as_float(u[i] & 0xffff0000u);
		} else {
			float2 h = __half22float2(u2h(u[i]));
			f[2 * i] = h.x;
			f[2 * i + 1] = h.y;
		}
	}
}

static __device__ __forceinline__ uint32_t pack_half2(float lo, float hi)
{
	return h2u(__floats2half2_rn(lo, hi));
}

/* f32 -> the 16-bit bits of f16 (bf16 0) or bf16 (bf16 1), one value or a pair (lo in the low half),
 * rounded to nearest even: the prefill matmuls' 16-bit activations */
static __device__ __forceinline__ uint16_t to16_one(float x, int bf16)
{
	return bf16 ? __bfloat16_as_ushort(__float2bfloat16_rn(x)) : __half_as_ushort(__float2half_rn(x));
}

static __device__ __forceinline__ uint32_t pack16x2(float lo, float hi, int bf16)
{
	if (bf16) {
		__nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
		return *reinterpret_cast<uint32_t *>(&v);
	}
	return pack_half2(lo, hi);
}

/* Programmatic dependent launch (sm_90): a kernel launched with the programmatic-serialization
 * attribute may start once every block of the kernel before it has called pdl_trigger (or exited);
 * it reads only constant data (weights) until pdl_wait, which returns when that kernel has finished
 * and its writes are visible. Both are no-ops on older GPUs and for plain launches. */
static __device__ __forceinline__ void pdl_wait(void)
{
#if __CUDA_ARCH__ >= 900
	asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

static __device__ __forceinline__ void pdl_trigger(void)
{
#if __CUDA_ARCH__ >= 900
	asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

/* pdl_trigger then pdl_wait at a kernel's start, in its programmatic-launch instantiation only
 * (template <bool PDL>, launched as kernel<pdl>): the small kernels that prefill launches without the
 * attribute lost 3-6% of prefill to the two instructions alone (session 11 on an H200: BF16 pp512
 * 32.8k tok/s with them, 34.8k in a build without them, 8439f8d's figure). */
template <bool PDL> static __device__ __forceinline__ void pdl_start(void)
{
	if (PDL) {
		pdl_trigger();
		pdl_wait();
	}
}

/* Host: launch with programmatic serialization when pdl is set, retrying as a plain launch where the
 * attribute is refused (outside a stream capture that the failure would have broken); cluster > 0:
 * as thread-block clusters of that many blocks along x. */
template <typename... KArgs, typename... Args>
static cudaError_t awq_cu_launch_cluster(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t s,
					 int pdl, int cluster, Args... args)
{
	cudaLaunchConfig_t cfg = {};
	cfg.gridDim = grid;
	cfg.blockDim = block;
	cfg.dynamicSmemBytes = smem;
	cfg.stream = s;
	cudaLaunchAttribute at[2];
	int n = 0;
	if (cluster > 0) {
		at[n].id = cudaLaunchAttributeClusterDimension;
		at[n].val.clusterDim.x = cluster, at[n].val.clusterDim.y = 1, at[n].val.clusterDim.z = 1;
		n++;
	}
	at[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
	at[n].val.programmaticStreamSerializationAllowed = 1;
	cfg.attrs = at;
	cfg.numAttrs = pdl ? n + 1 : n;
	cudaError_t e = cudaLaunchKernelEx(&cfg, kernel, args...);
	if (e != cudaSuccess && pdl) {
		cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
		cudaGetLastError();
		if (cudaStreamIsCapturing(s, &cs) == cudaSuccess && cs == cudaStreamCaptureStatusNone) {
			cfg.numAttrs = n;
			e = cudaLaunchKernelEx(&cfg, kernel, args...);
		}
	}
	return e != cudaSuccess ? e : cudaGetLastError();
}

template <typename... KArgs, typename... Args>
static cudaError_t awq_cu_launch(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t s, int pdl,
				 Args... args)
{
	return awq_cu_launch_cluster(kernel, grid, block, smem, s, pdl, 0, args...);
}

#endif
