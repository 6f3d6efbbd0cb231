#version 450
/* 4-bit (AWQ, repacked as in matvec.comp) mat-vec for decode steps of 1..4 rows, with the workgroup's
 * invocations spread over K instead of over output rows: invocation t takes the 32-k chunks t,
 * t + WG, ... of all NRW output rows of its workgroup, and the rows' sums meet in shared memory.
 *
 * Why: in matvec.comp a subgroup walks the whole of K for its 4 rows, so every lane reads 128 bytes
 * of f32 activations for each 64 bytes of weights (4 rows x 16 bytes): twice the weights' bytes
 * again through L1, and only 2 rounds of loads per subgroup at K = 4096. Here a lane reads its x
 * chunk once per row of x and uses it for NRW weight rows (NRW = 8: x is a quarter of the weight
 * traffic) and has NRW 16-byte weight loads in flight at once.
 *
 * Needs K and the group size to be multiples of 32 (the host takes matvec.comp otherwise); F16MATH
 * takes q4dot.glsl's packed-fp16 dot. Bindings as matvec.comp.
 *
 * XS (one-row steps, workgroups of at most 64, KU 1; AWQ_VK_MATVEC_XS=1): x comes through shared
 * memory. Read straight, every lane loads its own chunk's 128 contiguous bytes, so each of the 8
 * vec4 loads of a subgroup touches 32 cache lines (32 L1 wavefronts, against 4 for the weights'
 * coalesced loads): per 4096 x 4096 dispatch ~2 us of the L1's time on an H200, by count. Here the
 * workgroup loads its chunks coalesced, stores them with a one-vec4 pad per chunk (lanes then read
 * distinct banks) and reads them back from shared memory (9 KB). The fused gate/up of decode stays on
 * matvec.comp: a SILU form of this kernel (8 rows x 2 weights per invocation) ran at 48.5 us per
 * llama2-7b call on an H200 against matvec.comp's 34.4. Steps of 2-4 rows read every row of x per
 * chunk next to the weights; staging those rows once per workgroup as fp16 pairs in shared memory
 * (20 KB, a barrier per round) instead ran 2.5-4.4x slower on an H200 (session 21: 4096 x 4096 at
 * 2 rows 7.8 -> 33.6 us free-running; llama2-7b pp2 387 -> 193 tok/s), and was removed.
 *
 * EPI and NORM2 (one-row steps, AWQ_VK_EPINORM=1; epinorm.glsl): this kernel before a residual add
 * and RMSNorm writes the sum, the weighted x' and its partial sums of squares in its epilogue
 * (EPI); after them it reads x' and scales its outputs by the norm's 1 / rms (NORM2). */
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#ifdef F16MATH
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#endif
#ifdef Q8DOT
#extension GL_EXT_spirv_intrinsics : require
#endif
layout(local_size_x_id = 1) in;
layout(constant_id = 0) const int DT = 0; /* unused: the layout of every mat-vec pipeline */
layout(constant_id = 2) const int BDT = 0;
#include "common.glsl"

#ifndef NRW
#define NRW 8u /* output rows per workgroup (VK_Q4K_ROWS on the host) */
#endif
/* EPI and NORM2 run one-row steps only, yet are compiled for up to MAXR = 4 rows as the plain
 * kernel is: compiled for one row, NVIDIA's compiler gave EPI 53 registers and did not keep the NRW
 * weight loads in flight together (H200, session 20: the EPI down projection 30.7 us against the
 * plain kernel's 20.6; 21.1 with MAXR 4 and 168 registers). XS keeps one row: with four it took
 * 183 registers and ran at half its speed. (The plain kernel compiled for 2 rows took 80 registers:
 * 13-15% faster free-running, 2-3 us slower chained, qwen3-8b decode -4%.) */
#if defined(EPI) || defined(NORM2)
#define MAXR 4u
#elif defined(XS)
#define MAXR 1u /* one-row steps only */
#undef KU
#define KU 1u
#define XS_PAD 9u /* vec4s per chunk in shared memory: 8 and a pad */
shared vec4 xsh[64u * XS_PAD]; /* the host keeps the workgroup at 64 or less */
#else
#define MAXR 4u
#endif
#ifndef KU
#define KU 1u /* chunks per invocation whose loads go out together (matvec_q4k_ku2*: 2) */
#endif

layout(set = 0, binding = 1, std430) readonly buffer X4 { vec4 x4[]; };
layout(set = 0, binding = 2, std430) readonly buffer W4 { uvec4 w4[]; };
layout(set = 0, binding = 3, std430) writeonly buffer Out { float o[]; };
layout(set = 0, binding = 5, std430) readonly buffer SZ { uint sz[]; };
#include "bias.glsl"

#include "q4dot.glsl"
#if defined(EPI) || defined(NORM2)
#include "epinorm.glsl"
#endif
#ifdef EPI
/* binding 3 (o) takes the sum h = h_prev + W x */
layout(set = 0, binding = 8, std430) readonly buffer HPrev { float hprev[]; };
layout(set = 0, binding = 9, std430) readonly buffer NormW { uint nw[]; }; /* of type DT */
layout(set = 0, binding = 10, std430) writeonly buffer XW { float xw[]; }; /* x' = h * w */
layout(set = 0, binding = 11, std430) writeonly buffer PartOut { float pout[]; }; /* per workgroup */
shared float epi_sq[NRW];

float norm_w(uint i)
{
	return dt_value(nw[dt_word(i, DT)], i, DT);
}
#endif
#ifdef NORM2
layout(set = 0, binding = 8, std430) readonly buffer PartIn { float pin[]; }; /* u5 of them */
shared float red_ss[64];
#endif

/* per subgroup, per (row of x, output row): the subgroup's partial sums (up to 64 subgroups, as
 * reduce.glsl; the host checks workgroup size / minimum subgroup size): 8 KB */
shared float red[64u * MAXR * NRW];

/* u0 = K, u1 = N, u2 = rows (<= 4; EPI, NORM2, XS: 1), u3 = group size, u4 = has bias; NORM2: u5 = the
 * producer's partial sums, f0 = eps; u6 = the first of the step's rows (x's and the output's) */
void main()
{
	const uint K = pc.u0, N = pc.u1, rows = pc.u2, G = pc.u3, t = gl_LocalInvocationID.x;
	const uint r0 = pc.u6; /* the step's first row this dispatch takes (steps of 5-8 rows: two dispatches) */
	const uint C = K / 32u, NG = K / G, n0 = flat_group() * NRW;
	if (n0 >= N)
		return; /* the whole workgroup leaves: the grid is rounded up in 2-D */
	/* Every index into the arrays below is a constant once the [[unroll]] loops are unrolled (see
	 * matvec.comp): rows past N re-read row N - 1 and are never stored. */
	float acc[MAXR][NRW];
	[[unroll]] for (uint r = 0u; r < MAXR; r++)
		[[unroll]] for (uint j = 0u; j < NRW; j++)
			acc[r][j] = 0.0;
	const uint WG = gl_WorkGroupSize.x;
#ifdef NORM2
	float ss = 0.0; /* this invocation's share of the producer's partial sums */
	for (uint i = t; i < pc.u5; i += WG)
		ss += pin[i];
#endif
#ifdef XS
	/* the same trip count in every invocation (the barriers); chunks past C are clamped, unused */
	for (uint base = 0u; base < C; base += WG) {
		const uint c0 = min(base + t, C - 1u);
#else
	for (uint c0 = t; c0 < C; c0 += KU * WG) {
#endif
		uvec4 q[KU][NRW];
		float s[KU][NRW];
		MZ_T mz[KU][NRW];
		/* the KU x NRW weight loads (and scales) go out before any arithmetic; a chunk past C
		 * re-reads c0 and is never used */
		[[unroll]] for (uint u = 0u; u < KU; u++) {
			const uint c = c0 + u * WG < C ? c0 + u * WG : c0, g = (c * 32u) / G;
			[[unroll]] for (uint j = 0u; j < NRW; j++) {
				const uint row = min(n0 + j, N - 1u);
				q[u][j] = w4[row * C + c];
				const uint szw = sz[row * NG + g];
				s[u][j] = unpackHalf2x16(szw).x;
				mz[u][j] = MZ_OF(szw);
			}
		}
#ifdef XS
		/* this round's chunks of x, coalesced (their weights are in flight already) */
		[[unroll]] for (uint e = 0u; e < 8u; e++) {
			const uint idx = e * WG + t;
			if (base * 8u + idx < C * 8u)
				xsh[(idx / 8u) * XS_PAD + idx % 8u] = x4[base * 8u + idx];
		}
		barrier();
#endif
		[[unroll]] for (uint u = 0u; u < KU; u++) {
#ifdef XS
			const uint c = base + t;
#else
			const uint c = c0 + u * WG;
#endif
			[[unroll]] for (uint r = 0u; r < MAXR; r++) {
				if (r < rows && c < C) {
					vec4 xv[8];
					[[unroll]] for (uint i = 0u; i < 8u; i++)
#ifdef XS
						xv[i] = xsh[t * XS_PAD + i];
#else
						xv[i] = x4[((r0 + r) * K + c * 32u) / 4u + i];
#endif
#ifdef NORM2
					const float sig = pn_pow2(xv);
#else
					const float sig = 1.0;
#endif
#ifdef Q8DOT
					uint xq[8];
					float xd;
					int xs;
					x_q8(xv, xq, xd, xs);
#elif defined(F16MATH)
					f16vec2 xp[16];
					x_pairs(xv, xp);
#endif
					[[unroll]] for (uint j = 0u; j < NRW; j++)
						acc[r][j] += s[u][j] * sig * DOT32(q[u][j], xv, xp, mz[u][j]);
				}
			}
		}
#ifdef XS
		barrier(); /* before the next round overwrites xs */
#endif
	}
	/* rows is the same in every invocation: the subgroup reductions stay uniform */
	[[unroll]] for (uint r = 0u; r < MAXR; r++) {
		if (r < rows) {
			[[unroll]] for (uint j = 0u; j < NRW; j++) {
				const float v = subgroupAdd(acc[r][j]);
				if (subgroupElect())
					red[(gl_SubgroupID * MAXR + r) * NRW + j] = v;
			}
		}
	}
#ifdef NORM2
	ss = subgroupAdd(ss);
	if (subgroupElect())
		red_ss[gl_SubgroupID] = ss;
#endif
	barrier();
	if (t < rows * NRW) {
		const uint r = t / NRW, j = t % NRW;
#ifdef EPI
		float sq = 0.0;
#endif
		if (n0 + j < N) {
			float v = 0.0;
			for (uint sg = 0u; sg < gl_NumSubgroups; sg++)
				v += red[(sg * MAXR + r) * NRW + j];
#ifdef NORM2
			float tot = 0.0;
			for (uint sg = 0u; sg < gl_NumSubgroups; sg++)
				tot += red_ss[sg];
			v *= pn_scale(tot, K, pc.f0);
#endif
#ifdef EPI
			v = hprev[n0 + j] + (v + BIAS(n0 + j)); /* as the ADD after it: a + b */
			o[n0 + j] = v;
			xw[n0 + j] = v * norm_w(n0 + j);
			sq = v * v;
#else
			o[(r0 + r) * N + n0 + j] = v + BIAS(n0 + j);
#endif
		}
#ifdef EPI
		epi_sq[j] = sq;
#endif
	}
#ifdef EPI
	barrier();
	if (t == 0u) {
		float p = 0.0;
		[[unroll]] for (uint j = 0u; j < NRW; j++)
			p += epi_sq[j];
		pout[flat_group()] = p;
	}
#endif
}
