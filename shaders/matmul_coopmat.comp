#version 450
/* Matrix product for steps of more than 4 rows on tensor cores through GL_NV_cooperative_matrix
 * (used only where the device exposes VK_NV_cooperative_matrix with fp16 16x16x16 and an f32
 * accumulator, and the build's glslang compiles it).
 *
 * A workgroup computes a tile of BM rows x BN outputs from WM x WN subgroups, each owning TM x TN
 * 16 x 16 accumulators. k advances in slices of BK = 32 through two shared-memory buffers: while the
 * subgroups multiply slice s, every invocation holds slice s + 1's global loads in registers and
 * stores them (x rounded to fp16, the weight dequantised to fp16) into the other buffer after its
 * products, so one barrier per slice separates the two. Rows of the shared tiles are padded to 40
 * halves (80 bytes), so the 16-byte rows a matrix load reads from eight consecutive tile rows fall
 * in distinct banks.
 *   default: 64 x 64, 2 x 2 subgroups of 2 x 2 (128 invocations, 24 KiB of shared memory)
 *   LARGE:  128 x 128, 2 x 4 subgroups of 4 x 2 (256 invocations, 48 KiB)
 *   LARGE + W16: 128 x 128, 4 x 4 subgroups of 2 x 2 (512 invocations, 48 KiB; the default where the
 *           device allows 512 invocations, AWQ_VK_COOPMAT_WARPS=8 for the form above): LARGE alone
 *           uses 157 registers on the H200 (AWQ_VK_PIPELINE_STATS), one workgroup of 8 warps per
 *           SM; W16 keeps the tile and its shared memory over 16 warps of 98 registers, 2-11%
 *           faster (session 18)
 * Every loop but the one over k slices is unrolled, so that the accumulator, fragment and staging
 * arrays are indexed by constants and stay in registers.
 * The operands are fp16 (x rounded once, as the CUDA backend's cuBLAS prefill), the sums f32. Each
 * subgroup's accumulators go through 1 KiB of shared memory to the output (bounds and bias).
 * Weight formats as in matvec.comp (FMT_Q4: repacked AWQ, K a multiple of 8; FMT_DENSE: [n][k] F16 or
 * BF16 by DT). BF16 halves are widened to f32 and converted to fp16 once, in the staging: exact in
 * fp16's normal range; below 2^-14 (6.1e-5) they become fp16 subnormals, off by at most 2^-24 (2^-25
 * where the conversion rounds to nearest), which does not matter for weights; 65536 and above would
 * overflow to inf, so the host sends a BF16 matrix here only when every |w| < 65536 (the largest
 * bf16 below, 65280, fits) and none is inf or NaN (vk_rec_matmul).
 * MOE (the default tile only; MOE_EXPERTS prefill, dispatched indirectly, as matmul_tile.comp's MOE):
 * workgroup y is one 64-row tile of one expert from the grouping buffer at binding 7
 * (moe_layout.glsl; no bias): rows are that expert's permuted slots, x rows their tokens (gather) or
 * the slots themselves, and the weight rows the expert's in the buffer of all experts. */
#extension GL_GOOGLE_include_directive : require
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_control_flow_attributes : require

#if defined(LARGE) && defined(W16)
#define WM 4u
#define WN 4u
#define TM 2u
#define TN 2u
#define NT 512
#elif defined(LARGE)
#define WM 2u
#define WN 4u
#define TM 4u
#define TN 2u
#define NT 256
#else
#define WM 2u
#define WN 2u
#define TM 2u
#define TN 2u
#define NT 128
#endif
layout(local_size_x = NT) in;
layout(constant_id = 0) const int DT = 0;
layout(constant_id = 2) const int BDT = 0;
#include "common.glsl"

#define BM (WM * TM * 16u)
#define BN (WN * TN * 16u)
#define BK 32u
#define LD 40u /* halves per shared tile row: BK + 8 */

layout(set = 0, binding = 6, std430) readonly buffer X1 { float x1[]; };
layout(set = 0, binding = 6, std430) readonly buffer X4 { vec4 x4[]; };
layout(set = 0, binding = 4, std430) readonly buffer W1 { uint w1[]; };
layout(set = 0, binding = 4, std430) readonly buffer W4 { uvec4 w4[]; };
layout(set = 0, binding = 3, std430) writeonly buffer Out { float o[]; };
layout(set = 0, binding = 5, std430) readonly buffer SZ { uint sz[]; };
#ifdef MOE
#if defined(LARGE)
#error "MOE takes the 64 x 64 tile (the grouping's 64-row tiles)"
#endif
#include "moe_layout.glsl"
layout(set = 0, binding = 7, std430) readonly buffer Group { uint grp[]; };
#define BIAS(n) 0.0
#else
#include "bias.glsl"
#endif

shared float16_t As[2u * BM * LD];
shared float16_t Bs[2u * BN * LD];
/* the accumulators' way out, 1 KiB per subgroup, for at most 8 subgroups at a time (W16's 16 take
 * turns: 48 KiB is all the shared memory there is) */
#define CSG (WM * WN > 8u ? 8u : WM * WN)
shared float Cs[CSG * 256u];

/* Per invocation and slice: AL float4 groups of x (a row's 32 k are 8 of them) and BL weight
 * groups (Q4: a word of 8 k; dense: 8 halves as a uvec4 where K % 8 == 0, else 8 single loads). */
#define AL (BM * 8u / NT)
#define BL (BN * 4u / NT)

vec4 ra[AL];
/* the tile's rows (an expert's with MOE), the x row of each of this invocation's AL staged rows,
 * the weight's first row (the expert's) and the output's first row */
uint g_rows, g_wrow, g_base;
uint xrow[AL];
#ifdef FMT_Q4
uint rq[BL];
uint rz[BL];
#else
uvec4 rw[BL];
#endif

/* u0 = K, u1 = N, u2 = rows, u3 = group size (Q4), u4 = has bias;
 * MOE: u2 = experts, u5 = slot capacity S, u6 = gather x rows through slot_token */
void load_slice(uint k0, uint m0, uint n0)
{
	const uint K = pc.u0, N = pc.u1, rows = g_rows, t = gl_LocalInvocationID.x;
	const bool v4 = (K & 3u) == 0u;
	[[unroll]] for (uint i = 0u; i < AL; i++) {
		uint idx = i * NT + t, r = m0 + idx / 8u, k = k0 + (idx % 8u) * 4u;
		vec4 v = vec4(0.0);
		if (r < rows) {
			if (v4 && k < K) {
				v = x4[(xrow[i] * K + k) / 4u];
			} else {
				[[unroll]] for (uint e = 0u; e < 4u; e++)
					if (k + e < K)
						v[e] = x1[xrow[i] * K + k + e];
			}
		}
		ra[i] = v;
	}
	[[unroll]] for (uint i = 0u; i < BL; i++) {
		uint idx = i * NT + t, n = n0 + idx / 4u, k = k0 + (idx % 4u) * 8u, wn = g_wrow + n;
#ifdef FMT_Q4
		bool in_b = n < N && k < K;
		rq[i] = in_b ? w1[wn * (K / 8u) + k / 8u] : 0u;
		rz[i] = in_b ? sz[wn * (K / pc.u3) + k / pc.u3] : 0u;
#else
		uvec4 v = uvec4(0u);
		if (n < N) {
			if ((K & 7u) == 0u && k < K) {
				v = w4[(wn * K + k) / 8u];
			} else {
				[[unroll]] for (uint e = 0u; e < 8u; e++) {
					uint i2 = wn * K + k + e;
					uint h = k + e < K ? (w1[i2 >> 1] >> ((i2 & 1u) * 16u)) & 0xffffu : 0u;
					v[e / 2u] |= h << ((e & 1u) * 16u);
				}
			}
		}
		rw[i] = v;
#endif
	}
}

void store_slice(uint buf)
{
	const uint t = gl_LocalInvocationID.x;
	[[unroll]] for (uint i = 0u; i < AL; i++) {
		uint idx = i * NT + t, base = buf * BM * LD + (idx / 8u) * LD + (idx % 8u) * 4u;
		[[unroll]] for (uint e = 0u; e < 4u; e++)
			As[base + e] = float16_t(ra[i][e]);
	}
	[[unroll]] for (uint i = 0u; i < BL; i++) {
		uint idx = i * NT + t, base = buf * BN * LD + (idx / 4u) * LD + (idx % 4u) * 8u;
#ifdef FMT_Q4
		float s = unpackHalf2x16(rz[i]).x, z = float(rz[i] >> 16);
		[[unroll]] for (uint e = 0u; e < 8u; e++)
			Bs[base + e] = float16_t(s * (float((rq[i] >> (4u * e)) & 15u) - z));
#else
		[[unroll]] for (uint e = 0u; e < 8u; e++) {
			uint h = rw[i][e / 2u] >> ((e & 1u) * 16u); /* the half in the low 16 bits */
			Bs[base + e] = DT == DT_BF16 ? float16_t(uintBitsToFloat(h << 16)) : float16_t(unpackHalf2x16(h).x);
		}
#endif
	}
}

void main()
{
	const uint K = pc.u0, N = pc.u1, n0 = gl_WorkGroupID.x * BN;
#ifdef MOE
	const uint tile = moe_tiles(pc.u2, pc.u5) + 2u * gl_WorkGroupID.y, ex = grp[tile], m0 = grp[tile + 1u];
	g_base = grp[MOE_START + ex];
	g_rows = grp[MOE_START + ex + 1u] - g_base;
	g_wrow = ex * N;
#else
	const uint m0 = gl_WorkGroupID.y * BM;
	g_rows = pc.u2;
	g_base = 0u;
	g_wrow = 0u;
#endif
	const uint rows = g_rows;
	[[unroll]] for (uint i = 0u; i < AL; i++) {
		const uint r = m0 + (i * NT + gl_LocalInvocationID.x) / 8u; /* (rows past the end are not read) */
#ifdef MOE
		xrow[i] = r >= rows ? 0u : pc.u6 != 0u ? grp[moe_slot_token(pc.u2) + g_base + r] : g_base + r;
#else
		xrow[i] = r;
#endif
	}
	const uint sg = gl_SubgroupID, sm = (sg / WN) * TM * 16u, sn = (sg % WN) * TN * 16u;
	fcoopmatNV<32, gl_ScopeSubgroup, 16, 16> acc[TM][TN];
	[[unroll]] for (uint i = 0u; i < TM; i++)
		[[unroll]] for (uint j = 0u; j < TN; j++)
			acc[i][j] = fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>(0.0);
	const uint slices = (K + BK - 1u) / BK;
	load_slice(0u, m0, n0);
	store_slice(0u);
	memoryBarrierShared();
	barrier();
	for (uint s = 0u; s < slices; s++) {
		const uint buf = s & 1u;
		if (s + 1u < slices)
			load_slice((s + 1u) * BK, m0, n0); /* in flight during the products */
		[[unroll]] for (uint kk = 0u; kk < BK; kk += 16u) {
			fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> a[TM], b[TN];
			[[unroll]] for (uint i = 0u; i < TM; i++)
				coopMatLoadNV(a[i], As, buf * BM * LD + (sm + 16u * i) * LD + kk, LD, false);
			/* Bs holds [n][k]: the k x n operand is column-major */
			[[unroll]] for (uint j = 0u; j < TN; j++)
				coopMatLoadNV(b[j], Bs, buf * BN * LD + (sn + 16u * j) * LD + kk, LD, true);
			[[unroll]] for (uint i = 0u; i < TM; i++)
				[[unroll]] for (uint j = 0u; j < TN; j++)
					acc[i][j] = coopMatMulAddNV(a[i], b[j], acc[i][j]);
		}
		if (s + 1u < slices)
			store_slice(buf ^ 1u);
		memoryBarrierShared();
		barrier();
	}
	const uint lane = gl_SubgroupInvocationID, cs = (sg % CSG) * 256u;
#ifdef W16
	[[unroll]] for (uint ph = 0u; ph < WM * WN / CSG; ph++) {
		if (sg / CSG == ph) { /* uniform per subgroup */
#else
	{
		{
#endif
			[[unroll]] for (uint i = 0u; i < TM; i++)
				[[unroll]] for (uint j = 0u; j < TN; j++) {
					coopMatStoreNV(acc[i][j], Cs, cs, 16u, false);
					subgroupMemoryBarrierShared();
					subgroupBarrier();
					[[unroll]] for (uint e = 0u; e < 8u; e++) {
						uint idx = e * 32u + lane, m = m0 + sm + 16u * i + idx / 16u,
						     n = n0 + sn + 16u * j + idx % 16u;
						if (m < rows && n < N)
							o[(g_base + m) * N + n] = Cs[cs + idx] + BIAS(n);
					}
					subgroupMemoryBarrierShared();
					subgroupBarrier();
				}
		}
#ifdef W16
		barrier(); /* the next subgroups reuse Cs */
#endif
	}
}
