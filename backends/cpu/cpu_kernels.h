/* Fast CPU matmul kernels and the AWQ weight layout they read. The x86 kernels are one source
 * (cpu_kernels_x86.c) compiled twice: with AVX-512 VNNI/VL (int8 dot products in one instruction,
 * 32 vector registers) and with AVX2+FMA+F16C (the same dot products through vpmaddubsw); arm64 has
 * its own NEON source. The scalar reference (cpu_ref.h) is what all of them are tested against. */
#ifndef AWQ_CPU_KERNELS_H
#define AWQ_CPU_KERNELS_H

#include <stdint.h>

#include "model.h"

/* AWQ INT4 weights repacked at load for int8 dot products along k, still 4 bits per weight.
 * Columns are grouped in tiles of 16 (the last tile padded with zero weights); per tile and per
 * octet o of k, 64 bytes where byte 4*j + i holds column j's q[8o + i] in its low nibble and
 * q[8o + 4 + i] in its high nibble. One 32-bit lane thus holds 4 consecutive k of one column, which
 * is what vpdpbusd / sdot multiply against 4 broadcast activation bytes, and a tile streams
 * linearly. Per (tile, group): 16 f16 scales and 16 zero points (bytes). Needs k % group == 0 and
 * group % 8 == 0. */
#define AWQ_CPU_TILE 16

struct awq_cpu_q4 {
	int64_t n, k;
	int group;
	int64_t tiles;     /* ceil(n / 16) */
	uint8_t *q;        /* [tiles][k/8][64] */
	uint16_t *scales;  /* [tiles][k/group][16] f16 */
	uint8_t *zeros;    /* [tiles][k/group][16] */
	const void *bias;
	enum awq_dtype bias_dtype;
};

/* Activations quantized to int8 per block of `group` k (symmetric: scale = max|x| / 127, round to
 * nearest even), with each block's integer sum so the weight zero point costs one multiply per
 * block: y[n] = sum_b s[g(b),n] * scale[b] * (sum_k q*a - z[g(b),n] * sum[b]). The block must divide
 * the weight's group; AWQ_CPU_QBLOCK (32, as llama.cpp's Q8 activations) is what the backend uses:
 * a whole AWQ group of 128 per scale lets one outlier channel coarsen 127 others. */
#define AWQ_CPU_QBLOCK 32
/* Query heads of one KV head per attention call at most (attn_group): a group of more is split. */
#define AWQ_CPU_ATTN_G 8

struct awq_cpu_qact {
	int rows, k, group; /* group: activation block size */
	int8_t *q;     /* [rows][k] */
	float *scale;  /* [rows][k/group] */
	int32_t *sum;  /* [rows][k/group] */
};

/* The activation block for weight w: AWQ_CPU_QBLOCK when it divides the group, else the group. */
int awq_cpu_qblock(const struct awq_weight *w);

/* Memory for weights the kernels stream: 2 MiB aligned and marked for transparent huge pages, which
 * measured 25-30% faster streaming here (fewer page walks); free() releases it. NULL when out of
 * memory. */
void *awq_cpu_alloc_huge(size_t bytes);

int awq_cpu_q4_supported(const struct awq_weight *w);
/* Bytes of the repacked form (one block, parts 64-byte aligned). */
size_t awq_cpu_q4_bytes(const struct awq_weight *w);
/* Fill dst's geometry and point its arrays into p (64-byte aligned, awq_cpu_q4_bytes(w) long);
 * returns the end of the block, so callers can carve many weights from one allocation. */
uint8_t *awq_cpu_q4_layout(const struct awq_weight *w, struct awq_cpu_q4 *dst, uint8_t *p);
/* One allocation holding dst's arrays (-1 when out of memory); awq_cpu_q4_free releases it. */
int awq_cpu_q4_alloc(const struct awq_weight *w, struct awq_cpu_q4 *dst);
void awq_cpu_q4_free(struct awq_cpu_q4 *q);
/* Repack tiles [t0, t1) of an AutoAWQ GEMM weight into dst. */
void awq_cpu_q4_repack(const struct awq_weight *w, struct awq_cpu_q4 *dst, int64_t t0, int64_t t1);
/* Scalar activation quantization of rows [r0, r1): the reference for every SIMD version. */
void awq_cpu_quantize_ref(const float *x, int r0, int r1, struct awq_cpu_qact *a);
/* Bias of column n, 0 when there is none. */
float awq_cpu_bias(const void *bias, enum awq_dtype t, int64_t n);

/* The 16 sums v of tile t into one output row (fewer in the padded last tile), adding the bias:
 * every kernel set's AWQ tile ends here. */
static inline void awq_cpu_store_tile(const struct awq_cpu_q4 *w, int64_t t, const float *v, float *orow)
{
	int64_t n0 = t * AWQ_CPU_TILE, cnt = w->n - n0 < AWQ_CPU_TILE ? w->n - n0 : AWQ_CPU_TILE;
	for (int64_t j = 0; j < cnt; j++)
		orow[n0 + j] = v[j] + awq_cpu_bias(w->bias, w->bias_dtype, n0 + j);
}

/* The bf16 kernels widen a vector of weights at a time by shifting the even ones and masking the
 * odd ones, so they read activations permuted per block of B = the kernel set's bf16_block (16 for
 * 256-bit vectors, 32 for 512-bit): xp[Bb + i] = x[Bb + 2i], xp[Bb + B/2 + i] = x[Bb + 2i + 1]
 * (i < B/2); the tail past the last full block is left in order. */
void awq_cpu_permute_bf16(const float *x, int r0, int r1, int k, int block, float *xp);

struct awq_cpu_kernels {
	const char *name;
	int bf16_block; /* the activation permutation its bf16 dense kernel reads (awq_cpu_permute_bf16) */
	/* Rows [r0, r1), tiles [t0, t1) of out[rows][w->n]: int8 activations, exact int32 sums. */
	void (*q4)(const struct awq_cpu_q4 *w, const struct awq_cpu_qact *a, int r0, int r1, int64_t t0,
		   int64_t t1, float *out);
	/* Same columns with f32 activations and f32 sums (the exact path, compute-bound). */
	void (*q4_f32)(const struct awq_cpu_q4 *w, const float *x, int r0, int r1, int64_t t0, int64_t t1,
		       float *out);
	/* Rows [r0, r1), columns [n0, n1). For bf16 weights xp is x permuted by awq_cpu_permute_bf16
	 * with bf16_block,
	 * or NULL to widen in order (a little slower). */
	void (*dense)(const struct awq_weight *w, const float *x, const float *xp, int r0, int r1, int64_t n0,
		      int64_t n1, float *out);
	void (*quantize)(const float *x, int r0, int r1, struct awq_cpu_qact *a);
	/* g (1..AWQ_CPU_ATTN_G) query heads of one KV head over n cached positions (rows kv_stride
	 * floats apart), each K and V row read once for all g: q and out hold the g heads' d values
	 * side by side, head h's scores go to p[h n .. h n + n) (softmax in f32), and its out =
	 * sum_s p[s] * v[s]. */
	void (*attn_group)(const float *q, const float *kc, const float *vc, int64_t kv_stride, int n, int d, int g,
			   float scale, float *p, float *out);
};

#if defined(__x86_64__)
extern const struct awq_cpu_kernels awq_cpu_kernels_avx512vnni;
extern const struct awq_cpu_kernels awq_cpu_kernels_avx2;
#endif
#if defined(__aarch64__)
extern const struct awq_cpu_kernels awq_cpu_kernels_neon;
#endif

/* The best kernel set this CPU runs, or NULL (scalar reference only). */
const struct awq_cpu_kernels *awq_cpu_kernels_select(void);

#endif
