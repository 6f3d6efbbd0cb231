/* Fast CPU matmul kernels and the AWQ weight layout they read. The x86 kernels are one source
 * (cpu_kernels_x86.c) compiled twice: with AVX-512 VNNI (int8 dot products in one instruction) and
 * with AVX2+FMA (the same dot products through vpmaddubsw). */
#ifndef AWQ_CPU_KERNELS_H
#define AWQ_CPU_KERNELS_H

#include <stdint.h>

#include "model.h"

/* AWQ INT4 weights repacked at load for dot products along k, still 4 bits per weight: blocks of
 * 64 k of one column in 32 bytes, byte i = q[k0 + i] | q[k0 + 32 + i] << 4; the blocks of four
 * neighbouring columns interleaved ([n/4][k/64][4][32 bytes]) so a decode kernel working on four
 * columns at once streams memory linearly; per (column, group) one f16 scale and one 8-bit zero.
 * Needs k % 64 == 0, group % 64 == 0, n % 4 == 0. */
static inline const uint8_t *cpu_q4_block(const uint8_t *q, int64_t k, int64_t n, int64_t b)
{
	return q + (((n >> 2) * (k / 64) + b) * 4 + (n & 3)) * 32;
}
struct cpu_q4 {
	int64_t n, k;
	int group;
	uint8_t *q;       /* [n][k/2] */
	uint16_t *scales; /* [n][k/group] f16 */
	uint8_t *zeros;   /* [n][k/group] */
	const void *bias;
	enum awq_dtype bias_dtype;
};

#define CPU_QBLOCK 64

/* Activations quantized to int8 per block of 64 (symmetric, scale = max|x|/127), with per-group
 * correction terms corr[g] = sum over the group's blocks of scale * sum(q) so the weight zero point
 * costs one multiply per group. */
struct cpu_qact {
	int rows, k, group;
	int8_t *q;     /* [rows][k] */
	float *scale;  /* [rows][k/64] */
	float *corr;   /* [rows][k/group] */
};

int cpu_q4_supported(const struct awq_weight *w);
/* Repack columns [n0, n1) of an AutoAWQ GEMM weight into dst (allocated by the caller). */
void cpu_q4_repack(const struct awq_weight *w, struct cpu_q4 *dst, int64_t n0, int64_t n1);
void cpu_quantize_rows(const float *x, int r0, int r1, struct cpu_qact *a);

struct cpu_kernels {
	const char *name;
	/* out[r][n] for rows [0, rows), columns [n0, n1); out has row stride w->n */
	void (*q4)(const struct cpu_q4 *w, const struct cpu_qact *a, int rows, int64_t n0, int64_t n1, float *out);
	void (*dense)(const struct awq_weight *w, const float *x, int rows, int64_t n0, int64_t n1, float *out);
};

extern const struct cpu_kernels cpu_kernels_avx512vnni;
extern const struct cpu_kernels cpu_kernels_avx2;

/* The best kernel set this CPU runs, or NULL (scalar reference only). */
const struct cpu_kernels *cpu_kernels_select(void);

#endif
