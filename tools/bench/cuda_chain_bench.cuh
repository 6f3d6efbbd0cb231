/* --chain: is a layer's chain of dependent decode GEMVs faster as one persistent kernel than as one
 * launch per GEMV? Included by cuda_kernel_bench.cu (uses its dev, rnd, time_us, push_row, make_q4).
 *
 * The question behind it (docs/perf-cuda-notes.md, sessions 13-21): the built-in decode GEMVs lose
 * 2-4 us per launch to their start-up and end (the bare weight stream of the same launch is 2.0-4.4
 * us faster), and the dependent chain q/k/v -> o -> gate/up -> down has no independent work to hide
 * it; programmatic launch overlaps little because the o / down launches fill every SM. One persistent
 * kernel per step, with a grid-wide barrier between the GEMVs, could load the next GEMV's first
 * weights before each barrier, so that only the barrier and the activations' staging stay serial.
 *
 * So that the launch form is the only difference, both forms run the same phase code (its own
 * simple W4A16 mat-vec, not the built-in one): phase p is y_p = W_p x_p over llama2-7b's four
 * decode shapes per layer, x of each phase the output of the one before, 32 layers of distinct
 * weights (3.3 GB, read once per step as in the model). A warp computes two rows at a time over
 * the whole K (no cross-warp reduction), 4 x 16 bytes per row and lane in flight, the next step's
 * loads issued before the current step's arithmetic; x is staged per block in shared memory as f16.
 * Forms: one launch per phase with programmatic launch (each block loads its first weights before
 * griddepcontrol.wait) and without; one cooperative launch per step with a grid barrier (arrive
 * after the phase's stores, the next phase's first weights loaded, then wait) and the same without
 * the early loads. The built-in GEMVs' chain on the same shapes is timed beside them. The forms'
 * outputs are compared (the same arithmetic in the same order: equal bits), and the first phase
 * against a host reference, so that a broken barrier cannot pass as a fast one. */
namespace chain {

constexpr int NT = 512, WARPS = NT / 32, TB = 4; /* uint4 per row and lane in one step */

struct phase {
	const uint4 *q;	  /* [n][k / 32]: word w of a row holds k = 8w .. 8w + 7, nibble i is k = 8w + i; zero 8 */
	const __half *sc; /* [n][gq_pad(k)]: k / 128 per row, padded to 16 bytes for the bulk copies */
	const float *x;	  /* [k] */
	float *y;	  /* [n] */
	int n, k;
};

static __host__ __device__ __forceinline__ int gq_pad(int k)
{
	return (k / 128 + 7) & ~7;
}

struct stepbuf {
	uint4 w[2][TB];
	__half s[2][TB];
};

/* Step b of unit u (rows 2u, 2u + 1): uint4 j = lane + 32 (b TB + t) of each row, clamped to the
 * row (the tail's extra loads are re-reads, masked in compute: unconditional loads keep ptxas from
 * serialising them). */
static __device__ __forceinline__ void load_step(const phase &P, int u, int b, int lane, stepbuf &B)
{
	const int kq = P.k >> 5, gq = gq_pad(P.k);
#pragma unroll
	for (int r = 0; r < 2; r++) {
		const size_t row = 2 * (size_t)u + r;
#pragma unroll
		for (int t = 0; t < TB; t++) {
			const int j = min(lane + 32 * (b * TB + t), kq - 1);
			B.w[r][t] = ld_stream16(P.q + row * kq + j);
			B.s[r][t] = __ldg(P.sc + row * gq + (j >> 2));
		}
	}
}

static __device__ __forceinline__ uint32_t word(const uint4 &v, int q)
{
	return q == 0 ? v.x : q == 1 ? v.y : q == 2 ? v.z : v.w;
}

/* The 8 nibbles of w times x pairs xv (slots (x0, x4), (x1, x5), (x2, x6), (x3, x7)) into a:
 * (w & 0x000f000f) | 0x6400 is 1024 + n as f16, (w & 0x00f000f0) | 0x6400 is 1024 + 16 n. */
static __device__ __forceinline__ __half2 dot8(uint32_t w, const uint4 &xv, __half2 a)
{
	const __half2 m0 = u2h(0x64086408u);		    /* 1032: magic + zero */
	const __half2 s1 = u2h(0x2c002c00u), m1 = u2h(0xd480d480u); /* 1 / 16, -72 = -(64 + 8) */
	const uint32_t hi = w >> 8;
	a = __hfma2(__hsub2(u2h((w & 0x000f000fu) | 0x64006400u), m0), u2h(xv.x), a);
	a = __hfma2(__hfma2(u2h((w & 0x00f000f0u) | 0x64006400u), s1, m1), u2h(xv.y), a);
	a = __hfma2(__hsub2(u2h((hi & 0x000f000fu) | 0x64006400u), m0), u2h(xv.z), a);
	a = __hfma2(__hfma2(u2h((hi & 0x00f000f0u) | 0x64006400u), s1, m1), u2h(xv.w), a);
	return a;
}

static __device__ __forceinline__ void compute_step(const stepbuf &B, int b, int lane, int kq, const uint4 *xs,
						    float &f0, float &f1)
{
#pragma unroll
	for (int t = 0; t < TB; t++) {
		const int j = lane + 32 * (b * TB + t);
		if (j < kq) {
			__half2 a0 = __float2half2_rn(0.f), a1 = a0;
#pragma unroll
			for (int q = 0; q < 4; q++) {
				const uint4 xv = xs[4 * j + q];
				a0 = dot8(word(B.w[0][t], q), xv, a0);
				a1 = dot8(word(B.w[1][t], q), xv, a1);
			}
			const float2 v0 = __half22float2(a0), v1 = __half22float2(a1);
			f0 += (v0.x + v0.y) * __half2float(B.s[0][t]);
			f1 += (v1.x + v1.y) * __half2float(B.s[1][t]);
		}
	}
}

static __device__ __forceinline__ void xor_step(const stepbuf &B, float &f0)
{
	uint32_t a = __float_as_uint(f0);
#pragma unroll
	for (int r = 0; r < 2; r++)
#pragma unroll
		for (int t = 0; t < TB; t++)
			a ^= B.w[r][t].x ^ B.w[r][t].y ^ B.w[r][t].z ^ B.w[r][t].w ^ __half_as_ushort(B.s[r][t]);
	f0 = __uint_as_float(a & 0x3fffffffu); /* finite */
}

static __device__ __forceinline__ void finish_unit(const phase &P, int u, int lane, float &f0, float &f1)
{
#pragma unroll
	for (int o = 16; o > 0; o >>= 1) {
		f0 += __shfl_xor_sync(0xffffffffu, f0, o);
		f1 += __shfl_xor_sync(0xffffffffu, f1, o);
	}
	if (lane == 0)
		*reinterpret_cast<float2 *>(P.y + 2 * (size_t)u) = make_float2(f0, f1);
	f0 = f1 = 0.f;
}

static __device__ __forceinline__ unsigned ld_acquire(const unsigned *p)
{
	unsigned v;
	asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
	return v;
}

/* The grid barrier, split: arrive after the phase's stores, wait before reading its outputs. The
 * counter only grows within a launch (zeroed before each); phase p waits for p x gridDim.x. */
static __device__ __forceinline__ void bar_arrive(unsigned *bar)
{
	__syncthreads();
	if (threadIdx.x == 0) {
		__threadfence();
		atomicAdd(bar, 1u);
	}
}

static __device__ __noinline__ void stuck(const char *what, unsigned v, int i, uint32_t mb);

static __device__ __forceinline__ void spin_until(const unsigned *bar, unsigned target)
{
	const long long t0 = clock64();
	while (ld_acquire(bar) < target)
		if (clock64() - t0 > 8000000000ll)
			stuck("the grid barrier", target, -1, 0);
	__threadfence();
}

static __device__ __forceinline__ void bar_wait(const unsigned *bar, unsigned target)
{
	if (threadIdx.x == 0)
		spin_until(bar, target);
	__syncthreads();
}

/* The first two steps of a warp's share of phase P (both buffers), issued before the wait */
static __device__ __forceinline__ void first_steps(const phase &P, int gw, int W, int nb, int steps, int lane,
						   stepbuf &A, stepbuf &B)
{
	if (steps > 0)
		load_step(P, gw, 0, lane, A);
	if (steps > 1)
		load_step(P, gw + 1 / nb * W, 1 % nb, lane, B);
}

/* Warp-granular arrival: each warp counts itself in shared memory once its stores are fenced; the
 * block's last warp adds the block to the grid counter. A warp that has arrived goes on to load its
 * next phase's first steps without waiting for the rest of its block (bar_arrive waits for them). */
static __device__ __forceinline__ void warp_arrive(unsigned *s_arr, unsigned *bar, int p, int lane)
{
	if (lane == 0) {
		__threadfence();
		if (atomicAdd(s_arr, 1u) == (unsigned)(p + 1) * WARPS - 1) {
			__threadfence();
			atomicAdd(bar, 1u);
		}
	}
	__syncwarp();
}

/* PERSIST: all nph phases with grid barriers between them (a cooperative launch); otherwise one
 * phase, launched with or without programmatic serialization. EARLY: a warp's first two steps of a
 * phase are loaded before the wait (the barrier's or griddepcontrol's). WARPARR: warp_arrive instead
 * of bar_arrive. Measurement only: SYNC = false drops the barriers (phases run free, reading
 * whatever x holds: the phase code's throughput without the dependency), MATH = false replaces the
 * arithmetic by an XOR of the weights (the loads' rate). */
template <bool PERSIST, bool EARLY, bool SYNC = true, bool MATH = true, bool WARPARR = false>
__global__ void __launch_bounds__(NT, 1) chain_kernel(const phase *__restrict__ ph, int nph, unsigned *bar)
{
	extern __shared__ uint4 xs[];
	__shared__ unsigned s_arr;
	const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
	const int W = gridDim.x * WARPS, gw = warp * gridDim.x + blockIdx.x; /* a unit's neighbours on other SMs */
	if (threadIdx.x == 0)
		s_arr = 0;
	stepbuf A, Bf;
	phase P = ph[0];
	int kq = P.k >> 5, nb = (kq + 32 * TB - 1) / (32 * TB);
	int steps = gw < (P.n >> 1) ? (((P.n >> 1) - 1 - gw) / W + 1) * nb : 0;
	if (EARLY)
		first_steps(P, gw, W, nb, steps, lane, A, Bf);
	for (int p = 0; p < nph; p++) {
		if (PERSIST) {
			if (SYNC && p > 0)
				bar_wait(bar, (unsigned)p * gridDim.x);
		} else {
			pdl_wait();
			pdl_trigger();
		}
		if (!EARLY)
			first_steps(P, gw, W, nb, steps, lane, A, Bf);
		/* x as f16 pairs (x0, x4), (x1, x5), (x2, x6), (x3, x7) per word; L2 reads (written by
		 * other SMs in this launch) */
		for (int w = threadIdx.x; w < P.k / 8; w += NT) {
			const float4 a = __ldcg(reinterpret_cast<const float4 *>(P.x) + 2 * w);
			const float4 b = __ldcg(reinterpret_cast<const float4 *>(P.x) + 2 * w + 1);
			__half2 p0 = __floats2half2_rn(a.x, b.x), p1 = __floats2half2_rn(a.y, b.y);
			__half2 p2 = __floats2half2_rn(a.z, b.z), p3 = __floats2half2_rn(a.w, b.w);
			xs[w] = make_uint4(*reinterpret_cast<uint32_t *>(&p0), *reinterpret_cast<uint32_t *>(&p1),
					   *reinterpret_cast<uint32_t *>(&p2), *reinterpret_cast<uint32_t *>(&p3));
		}
		__syncthreads();
		/* steps s and s + 1 in flight: each buffer is reloaded (step s + 2) once computed */
		float f0 = 0.f, f1 = 0.f;
		for (int s = 0; s < steps; s += 2) {
			MATH ? compute_step(A, s % nb, lane, kq, xs, f0, f1) : xor_step(A, f0);
			if (s % nb == nb - 1)
				finish_unit(P, gw + s / nb * W, lane, f0, f1);
			if (s + 2 < steps)
				load_step(P, gw + (s + 2) / nb * W, (s + 2) % nb, lane, A);
			if (s + 1 < steps) {
				MATH ? compute_step(Bf, (s + 1) % nb, lane, kq, xs, f0, f1) : xor_step(Bf, f0);
				if ((s + 1) % nb == nb - 1)
					finish_unit(P, gw + (s + 1) / nb * W, lane, f0, f1);
				if (s + 3 < steps)
					load_step(P, gw + (s + 3) / nb * W, (s + 3) % nb, lane, Bf);
			}
		}
		if (!PERSIST || p + 1 == nph)
			break;
		if (!SYNC)
			__syncthreads(); /* xs is restaged */
		else if (WARPARR)
			warp_arrive(&s_arr, bar, p, lane);
		else
			bar_arrive(bar);
		P = ph[p + 1];
		kq = P.k >> 5, nb = (kq + 32 * TB - 1) / (32 * TB);
		steps = gw < (P.n >> 1) ? (((P.n >> 1) - 1 - gw) / W + 1) * nb : 0;
		if (EARLY)
			first_steps(P, gw, W, nb, steps, lane, A, Bf);
	}
}

/* The decoupled form (RING): one producer warp per SM streams the SM's units of every phase, in
 * order, into shared memory with bulk copies (cp.async.bulk, completion on an mbarrier per slot),
 * never waiting on the grid barrier: the weights are constant, so it runs ahead of the consumers by
 * up to two units per consumer warp and keeps DRAM busy across the phase boundaries. Unit q of a
 * phase goes to consumer warp q % RC, into that warp's own two slots in turn, filled by producer lane
 * q % RC (one lane per consumer, so a consumer waiting at a barrier does not hold up the others'
 * fills): a warp waits for its slots' fills in order, so a parity wait never looks two fills ahead
 * (with slots shared round-robin, a warp waiting for a slot's second fill before its first had
 * landed saw the "preceding phase" complete and went on: a hang). The consumers wait at each phase's start for the grid barrier and the block's x
 * staging, and release their slot once computed. A unit is RU rows x the whole K (8 rows at k =
 * 4096, 2 at 11008: at most 16 KB of weights), computed with the register form's arithmetic in the
 * same order (so its outputs have the same bits). */
constexpr int RC = 12, RNT = (RC + 1) * 32, NS = 2 * RC, SLOT_W = 8192, SLOT = SLOT_W + 256;

static __host__ __device__ __forceinline__ int rows_per_unit(int k)
{
	return min(8, SLOT_W / (k / 2)); /* 8 rows at k = 2048, 4 at 4096, 1 at 11008 */
}

static __device__ __forceinline__ void mb_init(uint32_t a, unsigned count)
{
	asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(a), "r"(count) : "memory");
}

static __device__ __forceinline__ void mb_expect(uint32_t a, unsigned bytes)
{
	asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(a), "r"(bytes) : "memory");
}

static __device__ __forceinline__ void mb_arrive(uint32_t a)
{
	asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(a) : "memory");
}

/* A wait that cannot hang the bench: after ~4 s it names itself and traps (the launch then fails
 * with an error instead of the run timing out without output). */
static __device__ __noinline__ void stuck(const char *what, unsigned v, int i = -1, uint32_t mb = 0)
{
	unsigned long long st = 0;
	if (mb)
		asm volatile("ld.shared.b64 %0, [%1];" : "=l"(st) : "r"(mb));
	if ((threadIdx.x & 31) == 0)
		printf("chain: block %d warp %d stuck in %s (%u), unit %d, barrier word %016llx\n", blockIdx.x,
		       threadIdx.x >> 5, what, v, i, st);
	__trap();
}

static __device__ __forceinline__ void mb_wait(uint32_t a, unsigned parity, const char *what, int i)
{
	const long long t0 = clock64();
	for (;;) {
		uint32_t ok;
		asm volatile("{\n\t.reg .pred p;\n\t"
			     "mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n\t"
			     "selp.u32 %0, 1, 0, p;\n}"
			     : "=r"(ok)
			     : "r"(a), "r"(parity)
			     : "memory");
		if (ok)
			return;
		if (clock64() - t0 > 8000000000ll)
			stuck(what, parity, i, a);
	}
}

static __device__ __forceinline__ void bulk_copy(uint32_t dst, const void *src, unsigned bytes, uint32_t mbar)
{
	asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(dst),
		     "l"(src), "r"(bytes), "r"(mbar)
		     : "memory");
}

static __device__ __forceinline__ void consumers_sync(void)
{
	asm volatile("barrier.sync 1, %0;" ::"n"(RC * 32) : "memory"); /* not .aligned (bar.sync is) */
}

/* SELF: no producer; each consumer warp's lane 0 refills the slot it has just computed with its unit
 * two ahead (the walk crosses phases: weights need no barrier), so a warp's next two units are in
 * flight while it waits at a phase boundary. */
struct fill_cursor {
	int p, u, ru, U, gq, k;
};

static __device__ __forceinline__ void cursor_set(fill_cursor &c, const phase *ph, int nph, int p, int first)
{
	for (c.p = p; c.p < nph; c.p++) {
		const phase P = ph[c.p];
		c.k = P.k, c.ru = rows_per_unit(P.k), c.U = P.n / c.ru, c.gq = gq_pad(P.k), c.u = first;
		if (c.u < c.U)
			return;
	}
}

static __device__ __forceinline__ void cursor_fill(fill_cursor &c, const phase *ph, int nph, int first, int step,
						   uint8_t *rs, uint64_t *full, int sl)
{
	if (c.p >= nph)
		return;
	const phase P = ph[c.p];
	const unsigned wb = c.ru * c.k / 2, sb = c.ru * c.gq * 2;
	asm volatile("fence.proxy.async.shared::cta;" ::: "memory"); /* the slot's generic reads before the copy */
	mb_expect(smem_addr(&full[sl]), wb + sb);
	bulk_copy(smem_addr(rs + sl * SLOT), P.q + (size_t)c.u * c.ru * (c.k >> 5), wb, smem_addr(&full[sl]));
	bulk_copy(smem_addr(rs + sl * SLOT + SLOT_W), P.sc + (size_t)c.u * c.ru * c.gq, sb, smem_addr(&full[sl]));
	c.u += step;
	if (c.u >= c.U)
		cursor_set(c, ph, nph, c.p + 1, first);
}

template <bool MATH, bool SELF = false>
__global__ void __launch_bounds__(RNT, 1) ring_kernel(const phase *__restrict__ ph, int nph, unsigned *bar)
{
#if __CUDA_ARCH__ >= 900
	extern __shared__ __align__(128) uint8_t rs[];
	__shared__ __align__(8) uint64_t full[NS], empty[NS];
	__shared__ unsigned s_done;
	uint4 *xs = reinterpret_cast<uint4 *>(rs + NS * SLOT); /* one buffer: the grid barrier orders its reuse */
	const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, G = gridDim.x, b = blockIdx.x;
	if (threadIdx.x == 0) {
		for (int i = 0; i < NS; i++) {
			mb_init(smem_addr(&full[i]), 1);
			mb_init(smem_addr(&empty[i]), 1);
		}
		s_done = 0;
		asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
		asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
	}
	__syncthreads();
	if (warp == RC) { /* the producer */
		if (!SELF && lane < RC) { /* lane l serves consumer warp l's two slots: no head-of-line blocking */
			unsigned n = 0;
			for (int p = 0; p < nph; p++) {
				const phase P = ph[p];
				const int ru = rows_per_unit(P.k), U = P.n / ru, gq = gq_pad(P.k);
				const unsigned wb = ru * P.k / 2, sb = ru * gq * 2;
				for (int u = b + lane * G; u < U; u += RC * G, n++) {
					const int sl = 2 * lane + (n & 1);
					if (n >= 2)
						mb_wait(smem_addr(&empty[sl]), ((n >> 1) - 1) & 1, "a slot's release", (int)n);
					mb_expect(smem_addr(&full[sl]), wb + sb);
					bulk_copy(smem_addr(rs + sl * SLOT), P.q + (size_t)u * ru * (P.k >> 5), wb, smem_addr(&full[sl]));
					bulk_copy(smem_addr(rs + sl * SLOT + SLOT_W), P.sc + (size_t)u * ru * gq, sb, smem_addr(&full[sl]));
				}
			}
		}
		return;
	}
	unsigned uses = 0; /* fills of this warp's slot consumed */
	fill_cursor cur;
	if (SELF && lane == 0) {
		cursor_set(cur, ph, nph, 0, b + warp * G);
		cursor_fill(cur, ph, nph, b + warp * G, RC * G, rs, full, 2 * warp);
		cursor_fill(cur, ph, nph, b + warp * G, RC * G, rs, full, 2 * warp + 1);
	}
	for (int p = 0; p < nph; p++) {
		const phase P = ph[p];
		const int ru = rows_per_unit(P.k), U = P.n / ru, gq = gq_pad(P.k), kq = P.k >> 5;
		const int cnt = b < U ? (U - 1 - b) / G + 1 : 0;
		if (p > 0) {
			if (warp == 0 && lane == 0)
				spin_until(bar, (unsigned)p * G);
			__syncwarp();
			consumers_sync();
		}
		/* word w = 4j + q of x at xs[q kq + j]: a warp's reads of word q for j = lane + 32t are
		 * consecutive (no bank conflicts) */
		for (int w = threadIdx.x; w < P.k / 8; w += RC * 32) {
			const float4 a = __ldcg(reinterpret_cast<const float4 *>(P.x) + 2 * w);
			const float4 c = __ldcg(reinterpret_cast<const float4 *>(P.x) + 2 * w + 1);
			__half2 p0 = __floats2half2_rn(a.x, c.x), p1 = __floats2half2_rn(a.y, c.y);
			__half2 p2 = __floats2half2_rn(a.z, c.z), p3 = __floats2half2_rn(a.w, c.w);
			xs[(w & 3) * kq + (w >> 2)] =
				make_uint4(*reinterpret_cast<uint32_t *>(&p0), *reinterpret_cast<uint32_t *>(&p1),
					   *reinterpret_cast<uint32_t *>(&p2), *reinterpret_cast<uint32_t *>(&p3));
		}
		consumers_sync();
		for (int q = warp; q < cnt; q += RC) {
			const int sl = 2 * warp + (uses & 1), u = b + q * G;
			mb_wait(smem_addr(&full[sl]), (uses >> 1) & 1, "a slot's fill", (int)uses);
			uses++;
			const uint8_t *slot = rs + sl * SLOT;
			const __half *ssc = reinterpret_cast<const __half *>(slot + SLOT_W);
			float acc[8];
#pragma unroll
			for (int r = 0; r < 8; r++)
				acc[r] = 0.f;
			for (int j = lane; j < kq; j += 32) {
				uint4 xv[4];
#pragma unroll
				for (int qq = 0; qq < 4; qq++)
					xv[qq] = xs[qq * kq + j];
#pragma unroll
				for (int r = 0; r < 8; r++)
					if (r < ru) {
						const uint4 wv = *reinterpret_cast<const uint4 *>(slot + (size_t)r * (P.k / 2) + j * 16);
						if (MATH) {
							__half2 a = __float2half2_rn(0.f);
#pragma unroll
							for (int qq = 0; qq < 4; qq++)
								a = dot8(word(wv, qq), xv[qq], a);
							const float2 v = __half22float2(a);
							acc[r] += (v.x + v.y) * __half2float(ssc[r * gq + (j >> 2)]);
						} else {
							acc[r] = __uint_as_float((__float_as_uint(acc[r]) ^ wv.x ^ wv.y ^ wv.z ^ wv.w) &
										 0x3fffffffu);
						}
					}
			}
			__syncwarp();
			if (SELF) {
				if (lane == 0)
					cursor_fill(cur, ph, nph, b + warp * G, RC * G, rs, full, sl);
			} else if (lane == 0) {
				mb_arrive(smem_addr(&empty[sl]));
			}
#pragma unroll
			for (int r = 0; r < 8; r++)
				if (r < ru) {
					float f = acc[r];
#pragma unroll
					for (int o = 16; o > 0; o >>= 1)
						f += __shfl_xor_sync(0xffffffffu, f, o);
					if (lane == 0)
						P.y[(size_t)u * ru + r] = f;
				}
		}
		if (p + 1 < nph) {
			if (lane == 0) {
				__threadfence();
				if (atomicAdd(&s_done, 1u) == (unsigned)(p + 1) * RC - 1) {
					__threadfence();
					atomicAdd(bar, 1u);
				}
			}
			__syncwarp();
		}
	}
#endif
}

/* One cooperative launch of a persistent form over nph phases, its barrier counter zeroed first. */
static void launch_coop(void (*kernel)(const phase *, int, unsigned *), int threads, const phase *d_ph, int nph,
			unsigned *bar, int grid, size_t smem)
{
	CK(cudaMemsetAsync(bar, 0, sizeof(unsigned), st));
	cudaLaunchConfig_t cfg = {};
	cfg.gridDim = dim3(grid), cfg.blockDim = dim3(threads), cfg.dynamicSmemBytes = smem, cfg.stream = st;
	cudaLaunchAttribute at[1];
	at[0].id = cudaLaunchAttributeCooperative;
	at[0].val.cooperative = 1;
	cfg.attrs = at, cfg.numAttrs = 1;
	CK(cudaLaunchKernelEx(&cfg, kernel, d_ph, nph, bar));
}

template <bool MATH, bool SELF = false> static void launch_ring(const phase *d_ph, int nph, unsigned *bar, int grid, size_t smem)
{
	launch_coop(ring_kernel<MATH, SELF>, RNT, d_ph, nph, bar, grid, smem);
}

struct mat {
	uint4 *q;
	__half *sc;
};

/* a chain: per layer the phases' (n, k), in order */
struct shape {
	int n, k;
};

/* Host reference of one phase (k = 8w + i is nibble i of word w; x rounded to f16 as the kernel
 * stages it). */
static void host_phase(const std::vector<uint32_t> &q, const std::vector<__half> &sc, const std::vector<float> &x, int n,
		       int k, std::vector<double> &y)
{
	y.assign(n, 0.0);
	for (int r = 0; r < n; r++) {
		double acc = 0;
		for (int kk = 0; kk < k; kk++) {
			const uint32_t w = q[(size_t)r * (k / 8) + kk / 8];
			const int nib = (int)((w >> (4 * (kk % 8))) & 15u) - 8;
			acc += (double)nib * (double)__half2float(sc[(size_t)r * gq_pad(k) + kk / 128]) *
			       (double)__half2float(__float2half(x[kk]));
		}
		y[r] = acc;
	}
}

static void launch_phase(const phase *d_ph, bool pdl, int grid, size_t smem)
{
	cudaLaunchConfig_t cfg = {};
	cfg.gridDim = dim3(grid), cfg.blockDim = dim3(NT), cfg.dynamicSmemBytes = smem, cfg.stream = st;
	cudaLaunchAttribute at[1];
	at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
	at[0].val.programmaticStreamSerializationAllowed = 1;
	cfg.attrs = at, cfg.numAttrs = pdl ? 1 : 0;
	CK(cudaLaunchKernelEx(&cfg, chain_kernel<false, true>, d_ph, 1, (unsigned *)nullptr));
}

template <bool EARLY, bool SYNC = true, bool MATH = true, bool WARPARR = false>
static void launch_persist(const phase *d_ph, int nph, unsigned *bar, int grid, size_t smem)
{
	launch_coop(chain_kernel<true, EARLY, SYNC, MATH, WARPARR>, NT, d_ph, nph, bar, grid, smem);
}

/* x of phase s: the output of the latest phase before it (this layer, then the layer before) with at
 * least k values; layer 0 starts from x0, and so does a phase with no such output (its launch still
 * waits for the one before, as every form orders the phases). */
static int x_source(const std::vector<shape> &sh, int s, int k)
{
	const int S = (int)sh.size();
	for (int d = 1; d <= S; d++) {
		const int t = ((s - d) % S + S) % S;
		if (sh[t].n >= k)
			return t;
	}
	return -1;
}

static void bench(int sms, const char *label, const std::vector<shape> &sh, int L)
{
	const int G = 128, S = (int)sh.size();
	int maxk = 0;
	for (const shape &h : sh)
		maxk = std::max(maxk, h.k);
	printf("chain %s: %d layers of", label, L);
	for (const shape &h : sh)
		printf(" %dx%d", h.n, h.k);
	printf("\n");
	const size_t smem = (size_t)maxk / 8 * 16;
	cudaFuncAttributes fa;
	const size_t rsmem = (size_t)NS * SLOT + (size_t)maxk / 8 * 16;
	CK(cudaFuncSetAttribute(ring_kernel<true>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)rsmem));
	CK(cudaFuncSetAttribute(ring_kernel<false>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)rsmem));
	CK(cudaFuncSetAttribute(ring_kernel<true, true>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)rsmem));
	CK(cudaFuncSetAttribute(ring_kernel<false, true>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)rsmem));
	int occ = 0, rocc = 0;
	CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&rocc, ring_kernel<true>, RNT, rsmem));
	CK(cudaFuncGetAttributes(&fa, ring_kernel<true>));
	printf("chain, ring form: %d blocks per SM of %d threads (%d consumer warps, %d registers), %zu + %zu bytes of shared memory\n",
	       rocc, RNT, RC, fa.numRegs, rsmem, fa.sharedSizeBytes);
	if (rocc < 1) {
		printf("chain: the ring form does not fit\n");
		exit(1);
	}
	CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, chain_kernel<true, true>, NT, smem));
	const int grid = sms * occ;
	CK(cudaFuncGetAttributes(&fa, chain_kernel<true, true>));
	printf("chain: %d blocks of %d threads (%d per SM, %d registers), %zu bytes of shared memory\n", grid, NT, occ,
	       fa.numRegs, smem);

	/* weights: per layer each phase's matrix */
	std::vector<mat> m((size_t)L * S);
	double bytes = 0;
	for (int l = 0; l < L; l++)
		for (int s = 0; s < S; s++) {
			const int n = sh[s].n, k = sh[s].k;
			mat &a = m[(size_t)l * S + s];
			a.q = (uint4 *)dev((size_t)n * k / 2);
			a.sc = (__half *)dev((size_t)n * gq_pad(k) * 2);
			rnd(a.q, (size_t)n * k / 2, 100 + l * S + s);
			/* signed scales (rms 1 / (sqrt(k) x 4.64), that of n - 8): the nibbles' mean of -0.5
			 * then adds no common offset to the outputs, which would grow phase by phase */
			const float g = 1.732f / (sqrtf((float)k) * 4.64f);
			rnd_half(a.sc, (size_t)n * gq_pad(k), -g, g, 300 + l * S + s);
			bytes += (double)n * k / 2 + (double)n * (k / G) * 2;
		}
	bytes /= L;
	float *x0 = (float *)dev((size_t)maxk * 4);
	/* two output buffers per phase, by layer parity: a phase whose input is its own output of the
	 * layer before (a chain of one shape) never reads the buffer it writes */
	std::vector<float *> ys(2 * S);
	for (int s = 0; s < 2 * S; s++)
		ys[s] = (float *)dev((size_t)sh[s % S].n * 4);
	auto y_of = [&](int l, int s) { return ys[(l & 1) * S + s]; };
	std::vector<float> hx(maxk);
	for (int i = 0; i < maxk; i++)
		hx[i] = (float)((i * 7919) % 2001) / 1000.0f - 1.0f;
	CK(cudaMemcpy(x0, hx.data(), (size_t)maxk * 4, cudaMemcpyHostToDevice));
	/* the input of phase s of layer l (layer 0 reads x0 until a phase of its own is long enough) */
	auto x_of = [&](int l, int s) -> const float * {
		const int t = x_source(sh, s, sh[s].k);
		if (t < 0 || (l == 0 && t >= s))
			return x0;
		return y_of(t < s ? l : l - 1, t);
	};
	std::vector<phase> hp((size_t)L * S);
	for (int l = 0; l < L; l++)
		for (int s = 0; s < S; s++) {
			phase &P = hp[(size_t)l * S + s];
			P.q = m[(size_t)l * S + s].q, P.sc = m[(size_t)l * S + s].sc;
			P.n = sh[s].n, P.k = sh[s].k;
			P.x = x_of(l, s);
			P.y = y_of(l, s);
		}
	phase *d_ph = (phase *)dev(hp.size() * sizeof(phase));
	CK(cudaMemcpy(d_ph, hp.data(), hp.size() * sizeof(phase), cudaMemcpyHostToDevice));
	unsigned *bar = (unsigned *)dev(sizeof(unsigned));
	CK(cudaStreamSynchronize(st));

	/* checks: layer 0's first phase against the host, then every form's final output */
	auto run_form = [&](int f, int layers) {
		if (f == 0 || f == 1)
			for (int i = 0; i < layers * S; i++)
				launch_phase(d_ph + i, f == 0, grid, smem);
		else if (f == 2)
			launch_persist<true>(d_ph, layers * S, bar, grid, smem);
		else if (f == 3)
			launch_persist<false>(d_ph, layers * S, bar, grid, smem);
		else if (f == 4)
			launch_persist<true, true, true, true>(d_ph, layers * S, bar, grid, smem);
		else if (f == 5)
			launch_ring<true>(d_ph, layers * S, bar, sms, rsmem);
		else if (f == 6)
			launch_ring<true, true>(d_ph, layers * S, bar, sms, rsmem);
		else if (f == 7)
			launch_persist<true, false>(d_ph, layers * S, bar, grid, smem);
		else if (f == 8)
			launch_persist<true, false, false>(d_ph, layers * S, bar, grid, smem);
		else if (f == 9)
			launch_persist<true, true, false>(d_ph, layers * S, bar, grid, smem);
		else if (f == 10)
			launch_ring<false>(d_ph, layers * S, bar, sms, rsmem);
		else
			launch_ring<false, true>(d_ph, layers * S, bar, sms, rsmem);
	};
	static const char *names[12] = {"launches, programmatic", "launches, plain", "persistent, early loads",
					"persistent, no early loads", "persistent, warp arrival", "ring (producer warp)",
					"ring, self-fed", "no barriers (free)", "no barriers, no math", "barriers, no math",
					"ring, no math", "ring self-fed, no math"};
	{
		launch_phase(d_ph, false, grid, smem);
		CK(cudaStreamSynchronize(st));
		const int n = sh[0].n, k = sh[0].k;
		std::vector<uint32_t> hq((size_t)n * k / 8);
		std::vector<__half> hs((size_t)n * gq_pad(k));
		std::vector<float> hy(n);
		CK(cudaMemcpy(hq.data(), m[0].q, hq.size() * 4, cudaMemcpyDeviceToHost));
		CK(cudaMemcpy(hs.data(), m[0].sc, hs.size() * 2, cudaMemcpyDeviceToHost));
		CK(cudaMemcpy(hy.data(), y_of(0, 0), n * 4, cudaMemcpyDeviceToHost));
		std::vector<double> ref;
		host_phase(hq, hs, hx, n, k, ref);
		double num = 0, den = 0;
		for (int r = 0; r < n; r++)
			num += (hy[r] - ref[r]) * (hy[r] - ref[r]), den += ref[r] * ref[r];
		const double rel = sqrt(num / (den > 0 ? den : 1));
		printf("chain: phase 0 against the host reference: relative RMS error %.2e (%s)\n", rel,
		       rel < 2e-3 ? "ok" : "WRONG");
		if (!(rel < 2e-3))
			exit(1);
	}
	/* every synchronised form after one layer and after all: the same bits (a missed barrier reads
	 * a stale x); the RMS of each phase's output shows the values stay finite */
	for (int layers = 1; layers <= L; layers += L - 1) {
		std::vector<float> out[7];
		for (int f = 0; f < 7; f++) {
			for (int s = 0; s < 2 * S; s++)
				CK(cudaMemsetAsync(ys[s], 0, (size_t)sh[s % S].n * 4, st));
			run_form(f, layers);
			const cudaError_t e = cudaStreamSynchronize(st);
			if (e != cudaSuccess) {
				printf("chain: %s, %d layer(s): %s\n", names[f], layers, cudaGetErrorString(e));
				exit(1);
			}
			out[f].resize(sh[S - 1].n);
			CK(cudaMemcpy(out[f].data(), y_of(layers - 1, S - 1), out[f].size() * 4, cudaMemcpyDeviceToHost));
		}
		printf("chain: after %d layer(s), output RMS per phase:", layers);
		for (int s = 0; s < S; s++) {
			std::vector<float> v(sh[s].n);
			CK(cudaMemcpy(v.data(), y_of(layers - 1, s), v.size() * 4, cudaMemcpyDeviceToHost));
			double mag = 0;
			for (float e : v)
				mag += (double)e * e;
			printf(" %.3g", sqrt(mag / v.size()));
		}
		printf("\n");
		for (int f = 1; f < 7; f++)
			if (memcmp(out[f].data(), out[0].data(), out[0].size() * 4) != 0) {
				printf("chain: %s differs from %s after %d layer(s): WRONG\n", names[f], names[0], layers);
				exit(1);
			}
	}
	printf("chain: the seven synchronised forms give the same bits\n");

	for (int f = 0; f < 12; f++) {
		double us = time_us([&] { run_form(f, L); }, 2, 9);
		char what[96];
		snprintf(what, sizeof(what), "chain %s: %s, per layer", label, names[f]);
		push_row(what, us / L, bytes, "B", copy_bw);
	}
	/* the built-in GEMVs on the same shapes and chain (their repacked layout, zero points read) */
	{
		std::vector<q4set> q;
		double qb = 0;
		for (int s = 0; s < S; s++) {
			q.push_back(make_q4(sh[s].n, sh[s].k, L));
			qb += q.back().bytes;
		}
		double us = time_us(
			[&] {
				for (int l = 0; l < L; l++)
					for (int s = 0; s < S; s++) {
						awq_cu_out o = out_of(y_of(l, s), sh[s].n);
						CK(awq_cu_q4_gemv(st, &q[s].w[l], x_of(l, s), 1, &o, AWQ_CU_EPI_STORE, sms));
					}
			},
			2, 9);
		char what[96];
		snprintf(what, sizeof(what), "chain %s: built-in GEMVs, per layer", label);
		push_row(what, us / L, qb, "B", copy_bw);
		for (auto &s : q)
			free_q4(s);
	}
	for (auto &a : m) {
		CK(cudaFree(a.q));
		CK(cudaFree(a.sc));
	}
	for (float *y : ys)
		CK(cudaFree(y));
	CK(cudaFree(x0));
	CK(cudaFree(d_ph));
	CK(cudaFree(bar));
}

/* One chain to run: a name, its phases, its layers. */
struct plan {
	const char *label;
	std::vector<shape> sh;
	int layers;
};

/* --chain [llama2-7b | qwen3-30b-a3b | NxK,NxK,... [layers]]: no argument runs both named chains.
 * qwen3-30b-a3b's is its dense equivalent: q/k/v, o, the router (4-bit here), then its 8 routed
 * experts' gate/up and down as one matrix each (the same bytes; the real kernels gather them).
 * Read before any device work, so that a bad list is reported (exit 2) on any machine. */
static int read_plans(int argc, char **argv, std::vector<plan> &out)
{
	static const std::vector<shape> llama = {{12288, 4096}, {4096, 4096}, {22016, 4096}, {4096, 11008}};
	static const std::vector<shape> moe = {{5120, 2048}, {2048, 4096}, {128, 2048}, {12288, 2048}, {2048, 6144}};
	const char *a = argc > 2 ? argv[2] : NULL;
	if (!a || strcmp(a, "llama2-7b") == 0)
		out.push_back({"llama2-7b", llama, 32});
	if (!a || strcmp(a, "qwen3-30b-a3b") == 0)
		out.push_back({"qwen3-30b-a3b", moe, 48});
	if (!out.empty())
		return 0;
	std::vector<std::pair<int, int>> list;
	if (!read_shape_list(a, list)) {
		printf("chain: cannot read shape list '%s' (NxK,NxK,...)\n", a);
		return 2;
	}
	plan p = {"custom", {}, 32};
	for (auto &nk : list) {
		const shape h = {nk.first, nk.second};
		if (h.n % 8 || h.k % 128 || h.k > 2 * SLOT_W || h.n % rows_per_unit(h.k)) {
			printf("chain: shape %dx%d not supported (n a multiple of 8 and of the ring's rows per unit, k of 128 "
			       "and at most %d)\n",
			       h.n, h.k, 2 * SLOT_W);
			return 2;
		}
		p.sh.push_back(h);
	}
	if (argc > 3) {
		char *end;
		const long l = strtol(argv[3], &end, 10);
		if (*end || l < 1 || l > 1000) {
			printf("chain: layers '%s' not a number from 1 to 1000\n", argv[3]);
			return 2;
		}
		p.layers = (int)l;
	}
	out.push_back(p);
	return 0;
}

} // namespace chain
