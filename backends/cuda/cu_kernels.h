/* Launchers of the CUDA backend's kernels, callable from the C host side. Each returns the
 * launch's cudaError_t (cudaSuccess when queued). Activations are f32 row-major [rows][cols];
 * positions come from device memory (d_pos) so that a captured decode graph replays unchanged.
 *
 * pdl (the last argument of a launcher, or a field of struct awq_cu_attn / awq_cu_prep): programmatic
 * dependent launch; 0 = plain launch. A kernel launched with it may start while the kernel before it
 * in the stream is still running, but waits for that kernel's end (and so for every earlier one)
 * before its first read of anything a kernel writes: results never depend on pdl, only the overlap
 * of launches does. The backend sets it on sm_90+ (awq_cu_pdl_default) for launches of at most
 * AWQ_CU_DECODE_ROWS rows and leaves prefill plain: there it cost 2% (pp512, H200), likely from
 * early blocks holding SMs that the big grids before them needed. Where the driver refuses the
 * attribute outside a stream capture the launch is retried plain. */
#ifndef AWQ_CU_KERNELS_H
#define AWQ_CU_KERNELS_H

#include <stdint.h>

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* AWQ INT4 weights repacked at load time into mma.sync fragment order: for each tile of 16 output
 * rows and each chunk of 64 input columns, 32 lanes x 4 words (one word per k16 sub-tile, eight
 * nibbles in the lop3 order). Scales [tiles][groups][8] half2 (rows r, r+8); zeros [tiles][groups]
 * as two words of eight nibbles (rows 0-7, 8-15). Padding rows/columns hold scale 0. */
struct awq_cu_q4 {
	const uint4 *q;
	const uint32_t *scales; /* half2 bits */
	const uint2 *zeros;
	int k, tiles, chunks, groups, group_size;
};

/* The residual add + RMSNorm between two decode GEMVs done by the GEMVs themselves (one or two
 * tokens; the AWQ and the 16-bit GEMVs take the same description). As the producer (res set) the
 * GEMV's output gets h = res + W x (+ bias), xn gets h * norm_w (not yet divided by the RMS), and
 * each block adds its rows' sum of h^2 to sumsq[token] (float atomics: the order of the sum varies
 * from run to run); block 0 sets sumsq_clear[0..rows) to 0 (NULL: none), which lets a chain of such
 * launches reuse their accumulators without a memset. As a reader (xn_sumsq set) the input x is
 * such an xn, and each token is scaled by 1 / sqrt(xn_sumsq[token] / k + xn_eps), which completes
 * the RMSNorm (the AWQ GEMVs scale x as they convert it to f16, the 16-bit ones their f32 sums). */
struct awq_cu_xnorm {
	const float *res, *norm_w;
	float *xn, *sumsq, *sumsq_clear;
	const float *xn_sumsq;
	float xn_eps;
};

/* AWQ_CU_EPI_ROPE_KV (decode GEMVs of a fused q/k/v projection, three segments): segment 0 gets
 * RoPE and goes to ptr[0] (the attention's q), segments 1 and 2 (k with RoPE, v) to the f16
 * cache rows of positions *d_pos + token, [pos][n / hd][hd]. The q and k rows of each head are
 * stored in the order of awq_rope_perm_src (the repack's rope_hd), so that a lane holds both
 * halves of a RoPE pair; v's are as stored. */
struct awq_cu_rope_kv {
	const float *q_freq, *k_freq; /* inverse frequencies, hd / 2 each */
	uint16_t *kc, *vc;
	const int *d_pos;
	int hd;
};

/* Where the output rows of a matmul go: up to three segments of consecutive tiles (q, k and v of a
 * fused QKV projection), each its own [rows][n] matrix with an optional bias. nrm: the norm's
 * producer side (with AWQ_CU_EPI_ADD_NORM: one segment) and/or reader side, decode GEMVs only. */
struct awq_cu_out {
	float *ptr[3];
	const float *bias[3];
	int tile_end[3]; /* segment s holds tiles [tile_end[s - 1], tile_end[s]) */
	int n[3];
	int nseg;
	struct awq_cu_xnorm nrm;
	/* Decode GEMV only: x16, when set, holds the input x as f16 [rows][k] (its producer's copy),
	 * streamed instead of x (the XH form: half the bytes of XR's f32, see k_q4.cu); ignored by the
	 * norm's reader side (nrm.xn_sumsq: x is an unnormalised xn, scaled as it is converted) and by
	 * the fallback kernel. o16, when set with AWQ_CU_EPI_SILU_MUL, receives an f16 copy of the
	 * output [rows][n] for such a reader. */
	const uint16_t *x16;
	uint16_t *o16;
	struct awq_cu_rope_kv rk; /* AWQ_CU_EPI_ROPE_KV */
};

/* The q and k rows of a fused projection whose decode epilogue applies RoPE (AWQ_CU_EPI_ROPE_KV) are
 * repacked per head of hd rows (hd a multiple of 16) so that rows g and g + 8 of the head's tile j
 * are the pair (8 j + g, 8 j + g + hd / 2) of the rotate-half RoPE: stored row r holds source row
 * awq_rope_perm_src(r, hd). Prefill reads such outputs through the same map (awq_cu_prep.perm). */
#ifdef __CUDACC__
#define AWQ_CU_HD __host__ __device__
#else
#define AWQ_CU_HD
#endif
AWQ_CU_HD static inline int awq_rope_perm_src(int r, int hd)
{
	const int p = r % hd;
	return r - p + 8 * (p / 16) + p % 8 + ((p / 8) & 1) * (hd / 2);
}
/* Its inverse within a head: where source dim d (0 <= d < hd) is stored. */
AWQ_CU_HD static inline int awq_rope_perm_dst(int d, int hd)
{
	const int u = d >= hd / 2, e = d - u * (hd / 2);
	return 16 * (e / 8) + 8 * u + e % 8;
}

/* Raw AutoAWQ tensors of one weight, already on the device. */
struct awq_cu_q4_src {
	const uint32_t *qweight, *qzeros; /* qzeros NULL: every zero is sym_zero */
	const uint16_t *scales;
	int n, k, group_size, sym_zero;
	int rope_hd; /* > 0: rows in the order of awq_rope_perm_src per head of rope_hd rows */
};
/* Repack src into dst (geometry and buffers set by the caller) at tiles T * stride + base, so that
 * two weights can be interleaved tile by tile (stride 2) for the fused gate/up matmul. */
cudaError_t awq_cu_q4_repack(cudaStream_t s, const struct awq_cu_q4_src *src, struct awq_cu_q4 *dst, int stride,
			     int base);

/* The inverse for prefill: rows [0, n) of the weight whose tiles sit at T * stride + base in w (as
 * repacked above) dequantised to f16, w = (q - z) * s rounded once, row-major [n][w->k] in out, for
 * cuBLAS: at hundreds of tokens the W4A16 GEMM (mma.sync) reached 35% of cuBLAS's FP16 rate, and
 * the dequantised copy costs one read of the 4-bit weight and one write of 2 bytes per value. */
cudaError_t awq_cu_q4_dequant(cudaStream_t s, const struct awq_cu_q4 *w, int stride, int base, int n, uint16_t *out);

/* Where a matmul's output columns go: one destination, or the gate/up pair of a fused SiLU-mul
 * (tiles alternate gate, up; out = silu(gate) * up with n / 2 columns). */
enum awq_cu_epilogue { AWQ_CU_EPI_STORE, AWQ_CU_EPI_SILU_MUL, AWQ_CU_EPI_ADD_NORM, AWQ_CU_EPI_ROPE_KV };

/* With AWQ_CU_EPI_SILU_MUL the output has one segment of n = (gate rows) columns. AWQ_CU_EPI_ADD_NORM
 * and the norm's reader side (awq_cu_out.nrm) are decode-only: rows <= 2 (cudaErrorInvalidValue otherwise). */
cudaError_t awq_cu_q4_gemv(cudaStream_t s, const struct awq_cu_q4 *w, const float *x, int rows,
			   const struct awq_cu_out *out, enum awq_cu_epilogue epi, int sm_count);
/* Micro-benchmark hook: force the decode GEMV's fallback kernel (legacy = 1) or the streaming
 * kernel's tiles per block (rt), warps per block (kw), ring stages and programmatic launch (pdl);
 * 0 (pdl: -1) keeps the built-in choice. Not thread-safe; for tools/bench only. */
void awq_cu_q4_gemv_tune(int legacy, int rt, int kw, int stages, int pdl);
/* Launch overrides of the streaming decode GEMV per matrix shape, "MxK:rt,kw,S;..." (the value of
 * AWQ_CUDA_GEMV, read at the first launch; see k_q4.cu). NULL or "" clears them. Returns the number
 * of entries taken, or -1 when the spec is malformed (entries before the bad one stay). */
int awq_cu_q4_gemv_overrides(const char *spec);
/* Test hook: the configuration of the last awq_cu_q4_gemv launch (streaming = 0: the fallback
 * kernel; else tiles per block, warps per block, ring stages and xr = activations in the ring).
 * Not thread-safe; for tests only. */
struct awq_cu_gemv_choice {
	int streaming, rt, kw, stages, xr; /* xr: 1 f32 activations in the ring, 2 f16 (awq_cu_out.x16) */
};
void awq_cu_q4_gemv_last(struct awq_cu_gemv_choice *c);
cudaError_t awq_cu_q4_gemm(cudaStream_t s, const struct awq_cu_q4 *w, const uint16_t *x16, int rows,
			   const struct awq_cu_out *out, enum awq_cu_epilogue epi, int cc_major, int sm_count);

/* Dense 16-bit weights [n][k] (bf16 when is_bf16, else f16), decode rows <= 8. */
cudaError_t awq_cu_w16_gemv(cudaStream_t s, const uint16_t *w, int is_bf16, const float *bias, int n,
			    int k, const float *x, int rows, float *out);
/* xn: the norm's producer or reader side (struct awq_cu_xnorm; NULL: none; k a multiple of 8). */
cudaError_t awq_cu_w16_gemv_x(cudaStream_t s, const uint16_t *w, int is_bf16, const float *bias, int n, int k,
			      const float *x, int rows, float *out, const struct awq_cu_xnorm *xn);
/* Several 16-bit weights on one input in one launch (k a multiple of 8): nseg segments, each its
 * own [rows][n[s]] output (q/k/v), or with silu = 1 two weights of n[0] rows (gate, up) and one
 * output silu(gate) * up. */
struct awq_cu_w16_multi {
	const uint16_t *w[3];
	const float *bias[3];
	float *out[3];
	int n[3];
	int nseg, silu, is_bf16, k;
	int cc_major; /* the device's, for the programmatic-launch choice (awq_cu_pdl_default) */
	const float *xn_sumsq; /* the reader side of struct awq_cu_xnorm (not the whole struct: its */
	float xn_eps;          /* producer fields made w16_gemv_kernel<3> take a local-memory copy) */
};
cudaError_t awq_cu_w16_gemv_multi(cudaStream_t s, const struct awq_cu_w16_multi *m, const float *x, int rows);

cudaError_t awq_cu_to_16(cudaStream_t s, const float *in, uint16_t *out, size_t count, int to_bf16);
cudaError_t awq_cu_add_bias(cudaStream_t s, float *out, const float *bias, int rows, int n);
cudaError_t awq_cu_embed(cudaStream_t s, const int32_t *tokens, int rows, const void *table,
			 int dtype_bytes, int is_bf16, int cols, int vocab, float *out, int pdl);
/* out16 (NULL: none): the output also as f16 (out16_bf16 0) or bf16 (1), for the prefill matmul
 * that reads it (cuda_run.c x16_claim): the conversion pass it saves read 4 and wrote 2 bytes per
 * value. Here and in awq_cu_add_rmsnorm (y), awq_cu_silu_mul and awq_cu_attn (prefill). */
cudaError_t awq_cu_rmsnorm(cudaStream_t s, const float *in, const float *w, float *out, int rows,
			   int cols, int group, float eps, int pdl, uint16_t *out16, int out16_bf16);
/* inv_freq: head_dim / 2 floats; row r is at position *d_pos + r. */
cudaError_t awq_cu_rope(cudaStream_t s, const float *in, float *out, int rows, int n_heads, int head_dim,
			const float *inv_freq, const int *d_pos);
/* h = a + b and y = rmsnorm(h) * w over whole rows, in one pass. */
cudaError_t awq_cu_add_rmsnorm(cudaStream_t s, const float *a, const float *b, float *h, const float *w, float *y,
			       int rows, int cols, float eps, int pdl, uint16_t *y16, int y16_bf16);
cudaError_t awq_cu_silu_mul(cudaStream_t s, const float *a, const float *b, float *out, size_t count, int pdl,
			    uint16_t *out16, int out16_bf16);
cudaError_t awq_cu_add(cudaStream_t s, const float *a, const float *b, float *out, size_t count, int pdl);
/* out[r][c] = sigmoid(g[r]) * x[r][c] (Qwen2-MoE's shared-expert gate: g has one value per row) */
cudaError_t awq_cu_sigmoid_mul(cudaStream_t s, const float *g, const float *x, float *out, int rows, int cols,
			       int pdl);
/* The greedy chain's feed (awq_cu_chain): a one-row argmax also writes its id to the step's token
 * input (tok[0]) and to ring[pos & ring_mask] (host memory mapped into the device), and advances the
 * step's position (*pos, read as pos) by one, so that the next step can be launched without the host
 * writing either. */
struct awq_cu_feed {
	int32_t *tok;
	int *pos;
	int32_t *ring;
	int ring_mask;
};
/* A one-row argmax of a long row runs over awq_cu_argmax_blocks(rows, cols) blocks (0: one block per
 * row) with this scratch: a best value and index per block, and a ticket that starts at 0 (each
 * launch leaves it at 0). */
struct awq_cu_amax_scratch {
	float *part_v;
	int *part_i;
	unsigned *ticket;
	int max_blocks;
};
int awq_cu_argmax_blocks(int rows, int cols);
/* feed: NULL, or (rows 1) the chain's feed above; scr: NULL (one block per row), or the scratch */
cudaError_t awq_cu_argmax(cudaStream_t s, const float *in, int rows, int cols, int32_t *out, int pdl,
			  const struct awq_cu_feed *feed, const struct awq_cu_amax_scratch *scr);
/* The k largest of one row of cols floats (awq_cu_topk, k_topk.cu), best first (larger value, then
 * lower column; -0 as +0, NaN last), columns into ids[0..k) and values into vals[0..k) (device or
 * mapped host memory); 1 <= k <= AWQ_CU_TOPK_MAX, k <= cols. part: awq_cu_topk_part_bytes(cols, k)
 * of scratch; ticket: one unsigned that starts at 0 (each launch leaves it at 0). */
#define AWQ_CU_TOPK_MAX 256
size_t awq_cu_topk_part_bytes(int cols, int k);
cudaError_t awq_cu_topk(cudaStream_t s, const float *in, int cols, int k, void *part, unsigned *ticket, int32_t *ids,
			float *vals);
/* The sampled chain's draw (awq_cu_sample): the host sampler's top-k branch on the device. The state
 * lives in device memory; rng advances by one draw per launch. */
struct awq_cu_sampling {
	float inv_t, top_p, min_p; /* 1.0f / temperature; 1 / 0 = off */
	int top_k;
	unsigned long long rng[4]; /* xoshiro256** */
};
/* After a one-token step whose argmax fed the chain (feed, as awq_cu_argmax's): the top_k best of the
 * row in (cols floats, 1 <= top_k <= AWQ_CU_TOPK_MAX, top_k < cols), ranked as awq_cu_topk ranks them,
 * one drawn as core/sampler.c draws it (its exp in CUDA's double precision), and that id written over
 * the argmax's in feed->tok[0] and feed->ring at the position before *feed->pos. part / ticket as
 * awq_cu_topk's. */
cudaError_t awq_cu_sample(cudaStream_t s, const float *in, int cols, void *part, unsigned *ticket,
			  struct awq_cu_sampling *samp, int top_k, const struct awq_cu_feed *feed);
/* Whether decode launches use programmatic dependent launch on a device of this compute
 * capability (sm_90+, unless AWQ_CUDA_PDL=0). */
int awq_cu_pdl_default(int cc_major);
/* Profiling: one kernel that occupies the stream for `us` microseconds. */
cudaError_t awq_cu_hold(cudaStream_t s, unsigned us);

struct awq_cu_attn {
	const float *q;     /* [rows][n_heads * head_dim] */
	const uint16_t *k;  /* f16 [max_ctx][n_kv_heads * head_dim] */
	const uint16_t *v;
	float *out;         /* [rows][n_heads * head_dim] */
	const int *d_pos;
	int rows, row0; /* rows of q handled here; row0 = their offset within the step */
	int n_heads, n_kv_heads, head_dim, max_ctx;
	float scale;
	float *part; /* split partials: see awq_cu_attn_part_floats */
	/* NULL, or AWQ_CU_DECODE_ROWS * n_heads words that are 0 between launches: with head dims 64
	 * and 128, where a block's heads x head_dim outputs are one per thread (k_attn.cu), the last
	 * block of each (row, head group) merges the splits instead of a second launch */
	unsigned *ticket;
	int pdl; /* awq_cu_attn_decode: programmatic launch (see the top); 0 = plain launch. Prefill ignores it */
	/* awq_cu_attn_decode (head dims 64 and 128): at least this many blocks (0: no floor); the grid
	 * gets more split rows than the cache has, whose blocks leave at once. A grid on a few SMs made
	 * the decode step slower (k_attn.cu) */
	int min_grid;
	/* out also as f16 / bf16 (out16_bf16), NULL: none (see awq_cu_rmsnorm); decode writes it too (the
	 * XH GEMV of 2-8 tokens reads it), offset by row0 as out is */
	uint16_t *out16;
	int out16_bf16;
	/* awq_cu_attn_decode (head dims 64 and 128, sm_80+ only: the caller checks): the K/V rows through
	 * a cp.async ring in shared memory (k_attn.cu, RING) */
	int ring;
	/* awq_cu_attn_decode (head dims 64 and 128, sm_80+ only: the caller checks): grouped-query heads
	 * (n_heads > n_kv_heads) on tensor cores (k_attn.cu, attn_mma_kernel); MHA keeps the warp kernel */
	int mma;
	/* positions per split of the tensor-core kernel (128, 256, 512 or 1024); 0: the plan's rule
	 * (AWQ_CUDA_ATTN_MMA_CHUNK, for measuring split lengths in the model) */
	int mma_chunk;
};
/* How awq_cu_attn_decode runs a launch (awq_cu_attn_decode_plan; host only, no device calls): which
 * split kernel, positions per split block (chunk), query heads per block (gper) and head groups per
 * KV head (hsub), the grid, dynamic shared memory, and whether the last split block merges the
 * splits (merged: the ticket is used) or the combine kernel runs after. */
enum { AWQ_CU_ATTN_SPLIT, AWQ_CU_ATTN_WARP, AWQ_CU_ATTN_RING, AWQ_CU_ATTN_MMA };
struct awq_cu_attn_plan {
	int kernel, chunk, gper, hsub, grid[3], smem, merged;
};
/* 0, or -1 for a launch awq_cu_attn_decode refuses (unsupported head dim or group, too many rows for the tickets) */
int awq_cu_attn_decode_plan(const struct awq_cu_attn *a, struct awq_cu_attn_plan *p);
/* The attention inputs of a step prepared in one launch (see attn_prep_kernel): q (and k) get
 * their optional per-head RMSNorm (weights of head_dim floats) and optional RoPE (inv_freq tables);
 * q goes to q_out (NULL: q is used as it is, then q_norm and q_freq must be NULL), k and v to the f16
 * cache rows of positions *d_pos + r. */
struct awq_cu_prep {
	const float *q, *k, *v; /* [rows][heads * head_dim] */
	const float *q_norm, *k_norm, *q_freq, *k_freq;
	float q_eps, k_eps;
	float *q_out;
	uint16_t *kc, *vc;
	const int *d_pos;
	int rows, n_heads, n_kv_heads, head_dim;
	int pdl; /* programmatic launch (see the top); 0 = plain launch */
	int perm; /* q and k rows of each head in the order of awq_rope_perm_src (a ROPE_KV weight's) */
};
cudaError_t awq_cu_attn_prep(cudaStream_t s, const struct awq_cu_prep *p);
/* Floats of scratch awq_cu_attn_decode needs for `rows` rows. */
size_t awq_cu_attn_part_floats(int rows, int n_heads, int head_dim, int max_ctx);
size_t awq_cu_attn_ticket_words(int n_heads); /* the size of awq_cu_attn.ticket */
cudaError_t awq_cu_attn_decode(cudaStream_t s, const struct awq_cu_attn *a);
/* Tensor-core causal flash attention; 1 when head_dim is one it has a kernel for. */
int awq_cu_attn_prefill_ok(int head_dim, int cc_major);
cudaError_t awq_cu_attn_prefill(cudaStream_t s, const struct awq_cu_attn *a);

#define AWQ_CU_DECODE_ROWS 8

#ifdef __cplusplus
}
#endif

#endif
