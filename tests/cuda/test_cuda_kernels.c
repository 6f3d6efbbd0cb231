/* The CUDA backend's complex kernels called directly, against double-precision host references
 * written here: AWQ repack + W4A16 GEMV (1..8 rows, q/k/v segments, fused SiLU-mul) and GEMM
 * (odd row counts), the 16-bit GEMV, decode (split-K; plain and programmatic launch) and prefill
 * (flash) attention with RoPE on q and the KV append. Outputs are poisoned with NaN first. Exit 77
 * without a CUDA device. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "awqrun_text.h"
#include "cu_kernels.h"
#include "dtype.h"
#include "model.h"

static uint64_t rng = 42;
static int fails, cc_major = 8, sm_count = 100;

static double urand(double lo, double hi)
{
	rng = rng * 6364136223846793005ull + 1442695040888963407ull;
	return lo + (hi - lo) * (double)(rng >> 11) * (1.0 / 9007199254740992.0);
}

static void *dmalloc(size_t bytes)
{
	void *p = NULL;
	if (cudaMalloc(&p, bytes) != cudaSuccess) {
		printf("FAIL: cudaMalloc %zu\n", bytes);
		exit(1);
	}
	return p;
}

static void *up(const void *h, size_t bytes)
{
	void *d = dmalloc(bytes);
	cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice);
	return d;
}

static float *poisoned(size_t n)
{
	float *d = dmalloc(n * 4);
	cudaMemset(d, 0xff, n * 4); /* NaN */
	return d;
}

/* sub: host values subtracted from the device's before the comparison (NULL: none) */
static void check_sub(const char *what, const double *ref, const float *dev_out, const float *sub, size_t n, double tol)
{
	float *h = malloc(n * 4);
	cudaError_t e = cudaDeviceSynchronize();
	cudaMemcpy(h, dev_out, n * 4, cudaMemcpyDeviceToHost);
	for (size_t i = 0; sub && i < n; i++)
		h[i] -= sub[i];
	double num = 0, den = 0;
	int bad = e != cudaSuccess;
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(h[i]))
			bad = 1;
		num += (h[i] - ref[i]) * (h[i] - ref[i]);
		den += ref[i] * ref[i];
	}
	double rel = sqrt(num / (den > 0 ? den : 1e-30));
	bad |= !(rel <= tol);
	printf("%s %s: rel_err %.3g (tol %.1g)%s%s\n", bad ? "FAIL" : "ok  ", what, rel, tol, e ? " " : "",
	       e ? cudaGetErrorString(e) : "");
	fails += bad;
	free(h);
}

static void check(const char *what, const double *ref, const float *dev_out, size_t n, double tol)
{
	check_sub(what, ref, dev_out, NULL, n, tol);
}

/* An f16 side output (dev16, n halves) equals the f32 output it copies (dev_out) rounded once, and
 * the 8 halves after it (poisoned 0xffff) are untouched. */
static void check16(const char *what, const float *dev_out, const uint16_t *dev16, size_t n)
{
	float *h = malloc(n * 4);
	uint16_t *h16 = malloc((n + 8) * 2);
	int ok = cudaMemcpy(h, dev_out, n * 4, cudaMemcpyDeviceToHost) == cudaSuccess &&
		 cudaMemcpy(h16, dev16, (n + 8) * 2, cudaMemcpyDeviceToHost) == cudaSuccess;
	size_t bad = 0;
	for (size_t i = 0; ok && i < n + 8; i++)
		bad += h16[i] != (i < n ? awq_f32_to_f16(h[i]) : 0xffffu);
	ok = ok && !bad;
	printf("%s %s: f16 copy (%zu of %zu halves differ)\n", ok ? "ok  " : "FAIL", what, bad, n);
	fails += !ok;
	free(h);
	free(h16);
}

/* n halves poisoned with 0xffff (NaN), plus 8 more to catch writes past the end. */
static uint16_t *poisoned16(size_t n)
{
	uint16_t *d = dmalloc((n + 8) * 2);
	cudaMemset(d, 0xff, (n + 8) * 2);
	return d;
}

struct q4w {
	struct awq_weight w;
	int32_t *qw, *qz;
	uint16_t *sc;
	double *deq; /* [n][k] */
};

static void make_q4(struct q4w *q, int n, int k, int group, int zp)
{
	memset(q, 0, sizeof(*q));
	q->qw = malloc((size_t)k * n / 2);
	q->qz = zp ? malloc((size_t)(k / group) * n / 2) : NULL;
	q->sc = malloc((size_t)(k / group) * n * 2);
	for (size_t i = 0; i < (size_t)k * n / 8; i++)
		q->qw[i] = (int32_t)(urand(0, 4294967296.0));
	for (size_t i = 0; zp && i < (size_t)(k / group) * n / 8; i++)
		q->qz[i] = (int32_t)(urand(0, 4294967296.0));
	for (size_t i = 0; i < (size_t)(k / group) * n; i++)
		q->sc[i] = awq_f32_to_f16((float)urand(0.002, 0.02));
	q->w = (struct awq_weight){.fmt = AWQ_WFMT_AWQ4, .n = n, .k = k, .group_size = group, .sym_zero = 8,
				   .qweight = q->qw, .qzeros = q->qz, .scales = q->sc};
	q->deq = malloc((size_t)n * k * sizeof(double));
	for (int kk = 0; kk < k; kk++)
		for (int nn = 0; nn < n; nn++) {
			int z = zp ? awq_awq4_get(q->qz, n, kk / group, nn) : 8;
			q->deq[(size_t)nn * k + kk] = (awq_awq4_get(q->qw, n, kk, nn) - z) *
						      (double)awq_f16_to_f32(q->sc[(size_t)(kk / group) * n + nn]);
		}
}

/* Repack sources into one device weight: concatenated (interleave 0) or gate/up interleaved; with
 * rope_hd > 0 the first two sources' rows in the order of awq_rope_perm_src (a q/k/v weight of the
 * RoPE epilogue). */
static struct awq_cu_q4 to_device_perm(struct q4w *const *src, int nsrc, int interleave, int rope_hd)
{
	struct awq_cu_q4 q = {0};
	const struct awq_weight *w0 = &src[0]->w;
	for (int j = 0; j < nsrc; j++)
		q.tiles += (int)((src[j]->w.n + 15) / 16);
	q.k = (int)w0->k;
	q.chunks = (q.k + 63) / 64;
	q.group_size = w0->group_size;
	q.groups = (q.chunks * 64 + q.group_size - 1) / q.group_size;
	q.q = dmalloc((size_t)q.tiles * q.chunks * 512);
	q.scales = dmalloc((size_t)q.tiles * q.groups * 32);
	q.zeros = dmalloc((size_t)q.tiles * q.groups * 8);
	int base = 0;
	for (int j = 0; j < nsrc; j++) {
		const struct awq_weight *w = &src[j]->w;
		struct awq_cu_q4_src s = {.n = (int)w->n, .k = (int)w->k, .group_size = w->group_size, .sym_zero = 8,
					  .rope_hd = j < 2 ? rope_hd : 0};
		s.qweight = up(w->qweight, (size_t)w->k * w->n / 2);
		s.qzeros = w->qzeros ? up(w->qzeros, (size_t)(w->k / w->group_size) * w->n / 2) : NULL;
		s.scales = up(w->scales, (size_t)(w->k / w->group_size) * w->n * 2);
		cudaError_t e = awq_cu_q4_repack(0, &s, &q, interleave ? 2 : 1, interleave ? j : base);
		if (e != cudaSuccess)
			printf("FAIL repack: %s\n", cudaGetErrorString(e)), fails++;
		base += (int)((w->n + 15) / 16);
	}
	return q;
}

static struct awq_cu_q4 to_device(struct q4w *const *src, int nsrc, int interleave)
{
	return to_device_perm(src, nsrc, interleave, 0);
}

static void matmul_ref(const double *deq, int n, int k, const float *x, int rows, double *out, int ld, int off)
{
	for (int r = 0; r < rows; r++)
		for (int i = 0; i < n; i++) {
			double s = 0;
			for (int kk = 0; kk < k; kk++)
				s += deq[(size_t)i * k + kk] * x[(size_t)r * k + kk];
			out[(size_t)r * ld + off + i] = s;
		}
}

/* Prefill's dequantisation (awq_cu_q4_dequant) of each source of a repacked weight, concatenated or
 * gate/up interleaved, against (q - z) * s rounded once to f16: bit-exact; the poisoned output
 * past n rows must stay untouched. */
static void test_q4_dequant(int k, int group, const int *ns, int nsrc, int interleave)
{
	struct q4w q[3], *qp[3];
	for (int j = 0; j < nsrc; j++) {
		make_q4(&q[j], ns[j], k, group, j != 1);
		qp[j] = &q[j];
	}
	struct awq_cu_q4 d = to_device(qp, nsrc, interleave);
	int base = 0;
	for (int j = 0; j < nsrc; j++) {
		size_t cnt = (size_t)ns[j] * k;
		uint16_t *dev = dmalloc((cnt + 64) * 2), *h = malloc((cnt + 64) * 2);
		cudaMemset(dev, 0xff, (cnt + 64) * 2);
		cudaError_t e = awq_cu_q4_dequant(0, &d, interleave ? 2 : 1, interleave ? j : base, ns[j], dev);
		if (e == cudaSuccess)
			e = cudaMemcpy(h, dev, (cnt + 64) * 2, cudaMemcpyDeviceToHost);
		size_t bad = 0, first = 0;
		for (size_t i = 0; i < cnt; i++)
			if (h[i] != awq_f32_to_f16((float)q[j].deq[i]) && !bad++)
				first = i;
		for (size_t i = cnt; i < cnt + 64; i++)
			bad += h[i] != 0xffffu;
		int ok = e == cudaSuccess && !bad;
		printf("%s q4 dequant %s source %d of %d: n=%d k=%d g=%d (%zu values differ%s)\n", ok ? "ok  " : "FAIL",
		       interleave ? "interleaved" : "concatenated", j, nsrc, ns[j], k, group, bad,
		       e != cudaSuccess ? ", launch failed" : "");
		if (bad && first < cnt)
			printf("     first at row %zu col %zu: %04x, want %04x\n", first / k, first % k, h[first],
			       awq_f32_to_f16((float)q[j].deq[first]));
		fails += !ok;
		base += (ns[j] + 15) / 16;
		cudaFree(dev);
		free(h);
	}
	static const int big[] = {1 << 20};
	if (nsrc == 1 && awq_cu_q4_dequant(0, &d, 1, 0, big[0], (uint16_t *)d.q) != cudaErrorInvalidValue)
		printf("FAIL q4 dequant: more rows than the weight has accepted\n"), fails++;
	cudaFree((void *)d.q), cudaFree((void *)d.scales), cudaFree((void *)d.zeros);
	for (int j = 0; j < nsrc; j++)
		free(q[j].qw), free(q[j].qz), free(q[j].sc), free(q[j].deq);
}

static void test_q4_segments(int k, int group, const int *ns, int nsrc, const int *rows_list, int nrows)
{
	struct q4w w[3], *src[3];
	for (int j = 0; j < nsrc; j++) {
		make_q4(&w[j], ns[j], k, group, j != 1);
		src[j] = &w[j];
	}
	struct awq_cu_q4 q = to_device(src, nsrc, 0);
	int maxr = 0, total_n = 0;
	for (int i = 0; i < nrows; i++)
		maxr = rows_list[i] > maxr ? rows_list[i] : maxr;
	for (int j = 0; j < nsrc; j++)
		total_n += ns[j];
	float *x = malloc((size_t)maxr * k * 4);
	for (size_t i = 0; i < (size_t)maxr * k; i++)
		x[i] = (float)urand(-1, 1);
	float *dx = up(x, (size_t)maxr * k * 4);
	uint16_t *dx16 = dmalloc((size_t)maxr * k * 2);
	awq_cu_to_16(0, dx, dx16, (size_t)maxr * k, 0);
	double *ref = malloc((size_t)maxr * total_n * sizeof(double));
	for (int ri = 0; ri < nrows; ri++) {
		int rows = rows_list[ri];
		struct awq_cu_out o = {.nseg = nsrc};
		float *outs[3];
		int end = 0, off = 0;
		for (int j = 0; j < 3; j++) {
			if (j < nsrc) {
				outs[j] = poisoned((size_t)rows * ns[j]);
				o.ptr[j] = outs[j];
				o.n[j] = ns[j];
				end += (ns[j] + 15) / 16;
			}
			o.tile_end[j] = end;
		}
		cudaError_t e = rows <= AWQ_CU_DECODE_ROWS ? awq_cu_q4_gemv(0, &q, dx, rows, &o, AWQ_CU_EPI_STORE, sm_count)
							   : awq_cu_q4_gemm(0, &q, dx16, rows, &o, AWQ_CU_EPI_STORE, cc_major, sm_count);
		if (e != cudaSuccess)
			printf("FAIL launch: %s\n", cudaGetErrorString(e)), fails++;
		/* 1-8 tokens again with the f16 copy of x (the XH form where the streaming kernel runs) */
		const int xh = rows <= AWQ_CU_DECODE_ROWS;
		float *outs16[3] = {NULL, NULL, NULL};
		struct awq_cu_gemv_choice ch = {0};
		if (xh) {
			for (int j = 0; j < nsrc; j++)
				o.ptr[j] = outs16[j] = poisoned((size_t)rows * ns[j]);
			o.x16 = dx16;
			e = awq_cu_q4_gemv(0, &q, dx, rows, &o, AWQ_CU_EPI_STORE, sm_count);
			awq_cu_q4_gemv_last(&ch);
			if (e != cudaSuccess || (ch.streaming && ch.xr != 2))
				printf("FAIL f16-input launch: %s, xr %d\n", cudaGetErrorString(e), ch.xr), fails++;
		}
		for (int j = 0; j < nsrc; j++) {
			char what[128];
			matmul_ref(w[j].deq, ns[j], k, x, rows, ref, ns[j], 0);
			snprintf(what, sizeof(what), "W4A16 %s k=%d g=%d seg %d/%d n=%d rows=%d", rows <= 8 ? "GEMV" : "GEMM", k,
				 group, j + 1, nsrc, ns[j], rows);
			check(what, ref, outs[j], (size_t)rows * ns[j], 3e-3);
			cudaFree(outs[j]);
			if (xh) {
				snprintf(what, sizeof(what), "W4A16 GEMV k=%d g=%d seg %d/%d n=%d rows=%d, f16 input%s", k, group,
					 j + 1, nsrc, ns[j], rows, ch.streaming ? " (XH)" : " (ignored by the fallback)");
				check(what, ref, outs16[j], (size_t)rows * ns[j], 3e-3);
				cudaFree(outs16[j]);
			}
			off += ns[j];
		}
	}
	free(x);
	free(ref);
}

/* The decode GEMV's launch choice (awq_cu_q4_gemv_last), for a 1000 x 2304 weight (M = 1008, 63
 * tiles, 36 chunks): the built-in rule (the streaming kernel from sm_80: 16 warps and 2 stages for
 * this K, one tile per block for one token; above 2 tokens the XR form with 2 tiles, at most 8 warps
 * and 2 stages, or with the f16 copy of x (x16) the XH form with the one-token warps and stages,
 * two tiles per block from two tokens) and
 * an AWQ_CUDA_GEMV-style override for that shape (its 8 stages become 4 in the XR and XH forms).
 * want: streaming, rt, kw, stages, xr. */
static void test_gemv_choice(const char *spec, const int want[4][5], int x16)
{
	static const int rows_list[4] = {1, 2, 3, 8};
	struct q4w w, *src[1] = {&w};
	make_q4(&w, 1000, 2304, 128, 1);
	struct awq_cu_q4 q = to_device(src, 1, 0);
	float *x = malloc((size_t)8 * 2304 * 4);
	for (size_t i = 0; i < (size_t)8 * 2304; i++)
		x[i] = (float)urand(-1, 1);
	float *dx = up(x, (size_t)8 * 2304 * 4), *out = poisoned((size_t)8 * 1000);
	uint16_t *dx16 = dmalloc((size_t)8 * 2304 * 2);
	awq_cu_to_16(0, dx, dx16, (size_t)8 * 2304, 0);
	awq_cu_q4_gemv_overrides(spec);
	for (int i = 0; i < 4; i++) {
		struct awq_cu_out o = {.nseg = 1, .ptr = {out}, .n = {1000}, .tile_end = {63, 63, 63}, .x16 = x16 ? dx16 : NULL};
		struct awq_cu_gemv_choice c;
		cudaError_t e = awq_cu_q4_gemv(0, &q, dx, rows_list[i], &o, AWQ_CU_EPI_STORE, sm_count);
		awq_cu_q4_gemv_last(&c);
		const int *x5 = want[i];
		int ok = e == cudaSuccess && c.streaming == x5[0] &&
			 (!x5[0] || (c.rt == x5[1] && c.kw == x5[2] && c.stages == x5[3] && c.xr == x5[4]));
		printf("%s GEMV choice %s%s rows=%d: streaming %d rt %d kw %d stages %d xr %d\n", ok ? "ok  " : "FAIL",
		       spec[0] ? spec : "built-in", x16 ? ", f16 x" : "", rows_list[i], c.streaming, c.rt, c.kw, c.stages, c.xr);
		fails += !ok;
	}
	awq_cu_q4_gemv_overrides("");
	cudaFree(dx16);
	cudaFree(out);
	cudaFree(dx);
	free(x);
}

/* The built-in rule's wave balance (k_q4.cu try_gemv2, session 17) at one token, on a GPU of 132 SMs
 * (H100 SXM, H200: what it was measured on): qwen3-14b's down projection (5120 x 17408, long K: 160
 * 16-warp blocks would need two waves) takes one-tile 8-warp blocks with 4 stages; qwen3-8b's q/k/v
 * (6144 x 4096: 192 blocks of two tiles leave the SMs 73% balanced) one-tile blocks; llama2-7b's q/k/v
 * (12288 x 4096: 384 blocks, 97%) keeps two tiles per block and 2 stages; qwen3-14b's q/k/v (7168 x
 * 5120: 224 blocks, under two per SM, 10 chunks per warp) 4 stages, qwen3-30b-a3b's (5120 x 2048,
 * whose 8 warps would stream 4 chunks each) one-tile blocks of 4 warps and 4 stages (sessions 19, 22). */
static void test_gemv_balance(int n, int k, int want_rt, int want_kw, int want_s)
{
	if (sm_count != 132 || cc_major < 8) {
		printf("skip GEMV balance %d x %d: the expectations are for 132 SMs of sm_80+ (%d here)\n", n, k, sm_count);
		return;
	}
	/* the choice depends on the shape only: a zero weight in the repacked layout (no host copy of
	 * these large matrices) */
	struct awq_cu_q4 q = {.tiles = n / 16, .k = k, .chunks = k / 64, .group_size = 128, .groups = k / 128};
	q.q = dmalloc((size_t)q.tiles * q.chunks * 512);
	q.scales = dmalloc((size_t)q.tiles * q.groups * 32);
	q.zeros = dmalloc((size_t)q.tiles * q.groups * 8);
	cudaMemset((void *)q.q, 0, (size_t)q.tiles * q.chunks * 512);
	cudaMemset((void *)q.scales, 0, (size_t)q.tiles * q.groups * 32);
	cudaMemset((void *)q.zeros, 0, (size_t)q.tiles * q.groups * 8);
	float *x = malloc((size_t)k * 4);
	for (int i = 0; i < k; i++)
		x[i] = (float)urand(-1, 1);
	float *dx = up(x, (size_t)k * 4), *out = poisoned((size_t)n);
	struct awq_cu_out o = {.nseg = 1, .ptr = {out}, .n = {n}, .tile_end = {n / 16, n / 16, n / 16}};
	struct awq_cu_gemv_choice c;
	cudaError_t e = awq_cu_q4_gemv(0, &q, dx, 1, &o, AWQ_CU_EPI_STORE, sm_count);
	awq_cu_q4_gemv_last(&c);
	int ok = e == cudaSuccess && c.streaming && c.rt == want_rt && c.kw == want_kw && c.stages == want_s;
	printf("%s GEMV balance %d x %d: rt %d kw %d stages %d (want %d %d %d)\n", ok ? "ok  " : "FAIL", n, k, c.rt, c.kw,
	       c.stages, want_rt, want_kw, want_s);
	fails += !ok;
	cudaFree(out);
	cudaFree(dx);
	cudaFree((void *)q.q);
	cudaFree((void *)q.scales);
	cudaFree((void *)q.zeros);
	free(x);
}

static void test_q4_silu(int n, int k, int group)
{
	struct q4w g, u, *src[2] = {&g, &u};
	make_q4(&g, n, k, group, 1);
	make_q4(&u, n, k, group, 1);
	struct awq_cu_q4 q = to_device(src, 2, 1);
	static const int rows_list[] = {1, 2, 5, 8, 37};
	float *x = malloc((size_t)37 * k * 4);
	for (size_t i = 0; i < (size_t)37 * k; i++)
		x[i] = (float)urand(-1, 1);
	float *dx = up(x, (size_t)37 * k * 4);
	uint16_t *dx16 = dmalloc((size_t)37 * k * 2);
	awq_cu_to_16(0, dx, dx16, (size_t)37 * k, 0);
	double *rg = malloc((size_t)37 * n * 8), *ru = malloc((size_t)37 * n * 8);
	for (int ri = 0; ri < 5; ri++) {
		int rows = rows_list[ri];
		float *out = poisoned((size_t)rows * n);
		struct awq_cu_out o = {.ptr = {out}, .n = {n}, .nseg = 1, .tile_end = {q.tiles, q.tiles, q.tiles}};
		cudaError_t e = rows <= 8 ? awq_cu_q4_gemv(0, &q, dx, rows, &o, AWQ_CU_EPI_SILU_MUL, sm_count)
					  : awq_cu_q4_gemm(0, &q, dx16, rows, &o, AWQ_CU_EPI_SILU_MUL, cc_major, sm_count);
		if (e != cudaSuccess)
			printf("FAIL launch: %s\n", cudaGetErrorString(e)), fails++;
		matmul_ref(g.deq, n, k, x, rows, rg, n, 0);
		matmul_ref(u.deq, n, k, x, rows, ru, n, 0);
		for (size_t i = 0; i < (size_t)rows * n; i++)
			rg[i] = rg[i] / (1.0 + exp(-rg[i])) * ru[i];
		char what[128];
		snprintf(what, sizeof(what), "W4A16 gate/up+SiLU n=%d k=%d rows=%d", n, k, rows);
		check(what, rg, out, (size_t)rows * n, 4e-3);
		cudaFree(out);
		if (rows <= 8) { /* the f16 input (XH) and the f16 copy of the output for the next */
			out = poisoned((size_t)rows * n);
			uint16_t *o16 = poisoned16((size_t)rows * n);
			o.ptr[0] = out, o.x16 = dx16, o.o16 = o16;
			e = awq_cu_q4_gemv(0, &q, dx, rows, &o, AWQ_CU_EPI_SILU_MUL, sm_count);
			if (e != cudaSuccess)
				printf("FAIL launch: %s\n", cudaGetErrorString(e)), fails++;
			snprintf(what, sizeof(what), "W4A16 gate/up+SiLU n=%d k=%d rows=%d, f16 input and output", n, k, rows);
			check(what, rg, out, (size_t)rows * n, 4e-3);
			check16(what, out, o16, (size_t)rows * n);
			cudaFree(out);
			cudaFree(o16);
		}
	}
	free(x);
	free(rg);
	free(ru);
}

/* The host and device inputs and the reference buffers of an epilogue-norm test (two tokens): x
 * [2][k1], a residual with values up to 3000 (an unnormalised xn must not overflow fp16 on the way),
 * norm weights in [0.5, 1.5]. */
struct epinorm_io {
	float *x, *res, *nw, *dx, *dres, *dnw, *xnorm;
	double *h, *ref, *rg, *ru;
};

static void epinorm_io_make(struct epinorm_io *io, int hidden, int k1, int n2)
{
	io->x = malloc((size_t)2 * k1 * 4);
	io->res = malloc((size_t)2 * hidden * 4);
	io->nw = malloc((size_t)hidden * 4);
	for (int i = 0; i < 2 * k1; i++)
		io->x[i] = (float)urand(-1, 1);
	for (int i = 0; i < 2 * hidden; i++)
		io->res[i] = (float)(i % 97 == 5 ? urand(-3000, 3000) : urand(-2, 2));
	for (int i = 0; i < hidden; i++)
		io->nw[i] = (float)urand(0.5, 1.5);
	io->dx = up(io->x, (size_t)2 * k1 * 4);
	io->dres = up(io->res, (size_t)2 * hidden * 4);
	io->dnw = up(io->nw, (size_t)hidden * 4);
	io->h = malloc((size_t)2 * hidden * 8);
	io->ref = malloc((size_t)2 * (hidden > n2 ? hidden : n2) * 8);
	io->rg = malloc((size_t)2 * n2 * 8);
	io->ru = malloc((size_t)2 * n2 * 8);
	io->xnorm = malloc((size_t)2 * hidden * 4);
}

static void epinorm_io_free(struct epinorm_io *io)
{
	void *host[] = {io->x, io->res, io->nw, io->xnorm, io->h, io->ref, io->rg, io->ru};
	for (size_t i = 0; i < sizeof(host) / sizeof(host[0]); i++)
		free(host[i]);
	cudaFree(io->dx);
	cudaFree(io->dres);
	cudaFree(io->dnw);
}

/* The device buffers of one launch pair: h, xn and the readers' output poisoned, the sum-of-squares
 * accumulator zeroed, the one to be cleared poisoned. */
struct epinorm_out {
	float *dh, *dxn, *dsum, *dclear, *dy;
};

static void epinorm_out_make(struct epinorm_out *o, int rows, int hidden, int n2)
{
	o->dh = poisoned((size_t)rows * hidden);
	o->dxn = poisoned((size_t)rows * hidden);
	o->dsum = dmalloc(2 * 4);
	cudaMemset(o->dsum, 0, 2 * 4);
	o->dclear = poisoned(2);
	o->dy = poisoned((size_t)rows * n2);
}

static void epinorm_out_free(struct epinorm_out *o)
{
	cudaFree(o->dh);
	cudaFree(o->dxn);
	cudaFree(o->dsum);
	cudaFree(o->dclear);
	cudaFree(o->dy);
}

/* After h = W x (double), the rest of a producer-epilogue norm's reference: h += res, the sum of
 * squares per token, xnorm = RMSNorm(h) * nw (what the readers multiply) and hw = h * nw (what the
 * producer writes). */
static void epinorm_ref(double *h, const float *res, const float *nw, int rows, int hidden, float eps, double *ssq,
			float *xnorm, double *hw)
{
	for (int r = 0; r < rows; r++) {
		double ss = 0;
		for (int i = 0; i < hidden; i++) {
			h[(size_t)r * hidden + i] += res[(size_t)r * hidden + i];
			ss += h[(size_t)r * hidden + i] * h[(size_t)r * hidden + i];
		}
		ssq[r] = ss;
		double inv = 1.0 / sqrt(ss / hidden + eps);
		for (int i = 0; i < hidden; i++)
			xnorm[(size_t)r * hidden + i] = (float)(h[(size_t)r * hidden + i] * inv * nw[i]);
	}
	for (size_t i = 0; i < (size_t)rows * hidden; i++)
		hw[i] = h[i] * nw[i % hidden];
}

/* The producer's h * w, sum of squares and cleared accumulator against epinorm_ref's. */
static void epinorm_check(const char *ty, int rows, int hidden, const double *hw, const float *dxn, const double *ssq,
			  const float *dsum, const float *dclear, double tol)
{
	static const double zero[2] = {0, 0};
	char what[128];
	snprintf(what, sizeof(what), "%s + add + RMSNorm epilogue: h * w, rows=%d", ty, rows);
	check(what, hw, dxn, (size_t)rows * hidden, tol);
	snprintf(what, sizeof(what), "%s + add + RMSNorm epilogue: sum of squares, rows=%d", ty, rows);
	check(what, ssq, dsum, (size_t)rows, 1e-4);
	snprintf(what, sizeof(what), "%s + add + RMSNorm epilogue: the other accumulator cleared, rows=%d", ty, rows);
	check(what, zero, dclear, (size_t)rows, 0);
}

/* The producer-epilogue norm (AWQ_CU_EPI_ADD_NORM) and its readers: a GEMV of hidden x k1 writes
 * h = res + W1 x, xn = h * nw, adds each token's sum of h^2 to an accumulator and clears another;
 * a GEMV (plain, then gate/up + SiLU) of n2 x hidden reading xn with that sum must equal the same
 * matmul of RMSNorm(h) * nw. Then the forms that are refused: three tokens, the prefill GEMM, a
 * producer reading an xn. */
static void test_q4_epinorm(int hidden, int k1, int n2, int group)
{
	const float eps = 1e-5f;
	struct q4w w1, w2, gu[2], *s1[1] = {&w1}, *s2[1] = {&w2}, *sg[2] = {&gu[0], &gu[1]};
	make_q4(&w1, hidden, k1, group, 1);
	make_q4(&w2, n2, hidden, group, 0);
	make_q4(&gu[0], n2, hidden, group, 1);
	make_q4(&gu[1], n2, hidden, group, 1);
	struct awq_cu_q4 q1 = to_device(s1, 1, 0), q2 = to_device(s2, 1, 0), qg = to_device(sg, 2, 1);
	struct epinorm_io io;
	epinorm_io_make(&io, hidden, k1, n2);
	double ssq[2];
	for (int rows = 1; rows <= 2; rows++) {
		char what[128];
		struct epinorm_out d;
		epinorm_out_make(&d, rows, hidden, n2);
		struct awq_cu_out o = {.nseg = 1, .ptr = {d.dh}, .n = {hidden}, .tile_end = {q1.tiles, q1.tiles, q1.tiles},
				       .nrm = {.res = io.dres, .norm_w = io.dnw, .xn = d.dxn, .sumsq = d.dsum,
					       .sumsq_clear = d.dclear}};
		cudaError_t e = awq_cu_q4_gemv(0, &q1, io.dx, rows, &o, AWQ_CU_EPI_ADD_NORM, sm_count);
		if (e != cudaSuccess)
			printf("FAIL launch (add + norm epilogue): %s\n", cudaGetErrorString(e)), fails++;
		matmul_ref(w1.deq, hidden, k1, io.x, rows, io.h, hidden, 0);
		snprintf(what, sizeof(what), "W4A16 GEMV + add + RMSNorm epilogue: h - res, n=%d k=%d rows=%d", hidden, k1, rows);
		check_sub(what, io.h, d.dh, io.res, (size_t)rows * hidden, 3e-3);
		epinorm_ref(io.h, io.res, io.nw, rows, hidden, eps, ssq, io.xnorm, io.ref);
		epinorm_check("W4A16 GEMV", rows, hidden, io.ref, d.dxn, ssq, d.dsum, d.dclear, 1e-3);
		/* readers: the plain GEMV, then the fused gate/up + SiLU */
		struct awq_cu_out r = {.nseg = 1, .ptr = {d.dy}, .n = {n2}, .tile_end = {q2.tiles, q2.tiles, q2.tiles},
				       .nrm = {.xn_sumsq = d.dsum, .xn_eps = eps}};
		e = awq_cu_q4_gemv(0, &q2, d.dxn, rows, &r, AWQ_CU_EPI_STORE, sm_count);
		if (e != cudaSuccess)
			printf("FAIL launch (norm reader): %s\n", cudaGetErrorString(e)), fails++;
		matmul_ref(w2.deq, n2, hidden, io.xnorm, rows, io.ref, n2, 0);
		snprintf(what, sizeof(what), "W4A16 GEMV reading an epilogue norm: n=%d k=%d rows=%d", n2, hidden, rows);
		check(what, io.ref, d.dy, (size_t)rows * n2, 3e-3);
		struct awq_cu_out rs = r;
		rs.tile_end[0] = rs.tile_end[1] = rs.tile_end[2] = qg.tiles;
		cudaMemset(d.dy, 0xff, (size_t)rows * n2 * 4);
		e = awq_cu_q4_gemv(0, &qg, d.dxn, rows, &rs, AWQ_CU_EPI_SILU_MUL, sm_count);
		if (e != cudaSuccess)
			printf("FAIL launch (norm reader, gate/up): %s\n", cudaGetErrorString(e)), fails++;
		matmul_ref(gu[0].deq, n2, hidden, io.xnorm, rows, io.rg, n2, 0);
		matmul_ref(gu[1].deq, n2, hidden, io.xnorm, rows, io.ru, n2, 0);
		for (size_t i = 0; i < (size_t)rows * n2; i++)
			io.rg[i] = io.rg[i] / (1.0 + exp(-io.rg[i])) * io.ru[i];
		snprintf(what, sizeof(what), "W4A16 gate/up+SiLU reading an epilogue norm: n=%d rows=%d", n2, rows);
		check(what, io.rg, d.dy, (size_t)rows * n2, 4e-3);
		{ /* the producer again, reading an f16 copy of x (XH where the streaming kernel runs) */
			struct epinorm_out d2;
			epinorm_out_make(&d2, rows, hidden, n2);
			uint16_t *x16 = dmalloc((size_t)rows * k1 * 2);
			awq_cu_to_16(0, io.dx, x16, (size_t)rows * k1, 0);
			struct awq_cu_out o2 = o;
			o2.ptr[0] = d2.dh, o2.nrm.xn = d2.dxn, o2.nrm.sumsq = d2.dsum, o2.nrm.sumsq_clear = d2.dclear;
			o2.x16 = x16;
			struct awq_cu_gemv_choice ch;
			e = awq_cu_q4_gemv(0, &q1, io.dx, rows, &o2, AWQ_CU_EPI_ADD_NORM, sm_count);
			awq_cu_q4_gemv_last(&ch);
			if (e != cudaSuccess || (ch.streaming && ch.xr != 2))
				printf("FAIL launch (add + norm epilogue, f16 input): %s, xr %d\n", cudaGetErrorString(e), ch.xr), fails++;
			snprintf(what, sizeof(what), "W4A16 GEMV (f16 input) + add + RMSNorm epilogue: h - res, n=%d k=%d rows=%d",
				 hidden, k1, rows);
			matmul_ref(w1.deq, hidden, k1, io.x, rows, io.h, hidden, 0); /* (epinorm_ref added res) */
			check_sub(what, io.h, d2.dh, io.res, (size_t)rows * hidden, 3e-3);
			epinorm_ref(io.h, io.res, io.nw, rows, hidden, eps, ssq, io.xnorm, io.ref);
			epinorm_check("W4A16 GEMV (f16 input)", rows, hidden, io.ref, d2.dxn, ssq, d2.dsum, d2.dclear, 1e-3);
			epinorm_out_free(&d2);
			cudaFree(x16);
		}
		/* refused: three tokens (both sides), the prefill GEMM */
		if (rows == 2) {
			int bad = awq_cu_q4_gemv(0, &q1, io.dx, 3, &o, AWQ_CU_EPI_ADD_NORM, sm_count) != cudaErrorInvalidValue;
			bad |= awq_cu_q4_gemv(0, &q2, d.dxn, 3, &r, AWQ_CU_EPI_STORE, sm_count) != cudaErrorInvalidValue;
			/* and a producer that also reads an xn (it would clear what its own blocks read) */
			struct awq_cu_out both = o;
			both.nrm.xn_sumsq = d.dsum;
			both.nrm.xn_eps = eps;
			bad |= awq_cu_q4_gemv(0, &q1, io.dx, 1, &both, AWQ_CU_EPI_ADD_NORM, sm_count) != cudaErrorInvalidValue;
			uint16_t *x16 = dmalloc((size_t)16 * hidden * 2);
			bad |= awq_cu_q4_gemm(0, &q2, x16, 16, &r, AWQ_CU_EPI_STORE, cc_major, sm_count) != cudaErrorInvalidValue;
			cudaGetLastError();
			printf("%s epilogue norm refused above two tokens, in the GEMM and as producer and reader at once\n",
			       bad ? "FAIL" : "ok  ");
			fails += bad;
			cudaFree(x16);
		}
		epinorm_out_free(&d);
	}
	epinorm_io_free(&io);
}

static void test_w16(int n, int k, int bf16)
{
	uint16_t *w = malloc((size_t)n * k * 2);
	double *wd = malloc((size_t)n * k * 8);
	for (size_t i = 0; i < (size_t)n * k; i++) {
		float f = (float)urand(-0.1, 0.1);
		w[i] = bf16 ? awq_f32_to_bf16(f) : awq_f32_to_f16(f);
		wd[i] = bf16 ? awq_bf16_to_f32(w[i]) : awq_f16_to_f32(w[i]);
	}
	float *x = malloc((size_t)8 * k * 4);
	for (size_t i = 0; i < (size_t)8 * k; i++)
		x[i] = (float)urand(-1, 1);
	uint16_t *dw = up(w, (size_t)n * k * 2);
	float *dx = up(x, (size_t)8 * k * 4);
	double *ref = malloc((size_t)8 * n * 8);
	for (int rows = 1; rows <= 8; rows += 3) {
		float *out = poisoned((size_t)rows * n);
		awq_cu_w16_gemv(0, dw, bf16, NULL, n, k, dx, rows, out);
		matmul_ref(wd, n, k, x, rows, ref, n, 0);
		char what[96];
		snprintf(what, sizeof(what), "%s GEMV n=%d k=%d rows=%d", bf16 ? "BF16" : "F16", n, k, rows);
		check(what, ref, out, (size_t)rows * n, 1e-5);
		cudaFree(out);
	}
	free(w);
	free(wd);
	free(x);
	free(ref);
}

/* A random 16-bit weight [n][k] on the device and in double. */
static uint16_t *w16_make(int n, int k, int bf16, double **wd)
{
	uint16_t *w = malloc((size_t)n * k * 2);
	*wd = malloc((size_t)n * k * 8);
	for (size_t i = 0; i < (size_t)n * k; i++) {
		float f = (float)urand(-0.1, 0.1);
		w[i] = bf16 ? awq_f32_to_bf16(f) : awq_f32_to_f16(f);
		(*wd)[i] = bf16 ? awq_bf16_to_f32(w[i]) : awq_f16_to_f32(w[i]);
	}
	uint16_t *dw = up(w, (size_t)n * k * 2);
	free(w);
	return dw;
}

/* The producer-epilogue norm on the 16-bit GEMVs (struct awq_cu_xnorm): a GEMV of hidden x k1 as
 * the producer (h, h * w, the sum of squares, the other accumulator cleared), then the single
 * GEMV, the fused q/k/v form and the fused gate/up + SiLU reading its xn, against the same matmuls
 * of RMSNorm(h) * w in double. */
static void test_w16_epinorm(int hidden, int k1, int n2, int bf16)
{
	const float eps = 1e-6f;
	double *w1d, *w2d, *wgd, *wud;
	uint16_t *dw1 = w16_make(hidden, k1, bf16, &w1d), *dw2 = w16_make(n2, hidden, bf16, &w2d);
	uint16_t *dwg = w16_make(n2, hidden, bf16, &wgd), *dwu = w16_make(n2, hidden, bf16, &wud);
	struct epinorm_io io;
	epinorm_io_make(&io, hidden, k1, n2);
	double ssq[2];
	const char *ty = bf16 ? "BF16" : "F16";
	for (int rows = 1; rows <= 2; rows++) {
		char what[128];
		struct epinorm_out d;
		epinorm_out_make(&d, rows, hidden, n2);
		struct awq_cu_xnorm p = {.res = io.dres, .norm_w = io.dnw, .xn = d.dxn, .sumsq = d.dsum,
					 .sumsq_clear = d.dclear};
		cudaError_t e = awq_cu_w16_gemv_x(0, dw1, bf16, NULL, hidden, k1, io.dx, rows, d.dh, &p);
		if (e != cudaSuccess)
			printf("FAIL launch (%s add + norm epilogue): %s\n", ty, cudaGetErrorString(e)), fails++;
		matmul_ref(w1d, hidden, k1, io.x, rows, io.h, hidden, 0);
		snprintf(what, sizeof(what), "%s GEMV + add + RMSNorm epilogue: h - res, n=%d k=%d rows=%d", ty, hidden, k1, rows);
		check_sub(what, io.h, d.dh, io.res, (size_t)rows * hidden, 1e-4); /* h - res loses res's f32 ulp */
		epinorm_ref(io.h, io.res, io.nw, rows, hidden, eps, ssq, io.xnorm, io.ref);
		epinorm_check(bf16 ? "BF16 GEMV" : "F16 GEMV", rows, hidden, io.ref, d.dxn, ssq, d.dsum, d.dclear, 1e-5);
		/* readers: the single GEMV, q/k/v (three segments), gate/up + SiLU */
		struct awq_cu_xnorm r = {.xn_sumsq = d.dsum, .xn_eps = eps};
		e = awq_cu_w16_gemv_x(0, dw2, bf16, NULL, n2, hidden, d.dxn, rows, d.dy, &r);
		if (e != cudaSuccess)
			printf("FAIL launch (%s norm reader): %s\n", ty, cudaGetErrorString(e)), fails++;
		matmul_ref(w2d, n2, hidden, io.xnorm, rows, io.ref, n2, 0);
		snprintf(what, sizeof(what), "%s GEMV reading an epilogue norm: n=%d k=%d rows=%d", ty, n2, hidden, rows);
		check(what, io.ref, d.dy, (size_t)rows * n2, 1e-4);
		float *dq[3];
		struct awq_cu_w16_multi m = {.nseg = 3, .is_bf16 = bf16, .k = hidden, .cc_major = cc_major, .xn_sumsq = d.dsum,
					     .xn_eps = eps};
		const uint16_t *ws[3] = {dw2, dwg, dwu};
		const double *wds[3] = {w2d, wgd, wud};
		for (int j = 0; j < 3; j++) {
			dq[j] = poisoned((size_t)rows * n2);
			m.w[j] = ws[j];
			m.n[j] = n2;
			m.out[j] = dq[j];
		}
		e = awq_cu_w16_gemv_multi(0, &m, d.dxn, rows);
		if (e != cudaSuccess)
			printf("FAIL launch (%s q/k/v norm reader): %s\n", ty, cudaGetErrorString(e)), fails++;
		for (int j = 0; j < 3; j++) {
			matmul_ref(wds[j], n2, hidden, io.xnorm, rows, io.ref, n2, 0);
			snprintf(what, sizeof(what), "%s q/k/v GEMV reading an epilogue norm: seg %d rows=%d", ty, j, rows);
			check(what, io.ref, dq[j], (size_t)rows * n2, 1e-4);
			cudaFree(dq[j]);
		}
		struct awq_cu_w16_multi gu = {.nseg = 2, .silu = 1, .is_bf16 = bf16, .k = hidden, .cc_major = cc_major,
					      .w = {dwg, dwu}, .n = {n2, n2}, .out = {d.dy}, .xn_sumsq = d.dsum, .xn_eps = eps};
		cudaMemset(d.dy, 0xff, (size_t)rows * n2 * 4);
		e = awq_cu_w16_gemv_multi(0, &gu, d.dxn, rows);
		if (e != cudaSuccess)
			printf("FAIL launch (%s gate/up norm reader): %s\n", ty, cudaGetErrorString(e)), fails++;
		matmul_ref(wgd, n2, hidden, io.xnorm, rows, io.rg, n2, 0);
		matmul_ref(wud, n2, hidden, io.xnorm, rows, io.ru, n2, 0);
		for (size_t i = 0; i < (size_t)rows * n2; i++)
			io.rg[i] = io.rg[i] / (1.0 + exp(-io.rg[i])) * io.ru[i];
		snprintf(what, sizeof(what), "%s gate/up+SiLU reading an epilogue norm: rows=%d", ty, rows);
		check(what, io.rg, d.dy, (size_t)rows * n2, 1e-4);
		if (rows == 2) { /* refused above two tokens */
			int bad = awq_cu_w16_gemv_x(0, dw1, bf16, NULL, hidden, k1, io.dx, 3, d.dh, &p) != cudaErrorInvalidValue;
			bad |= awq_cu_w16_gemv_multi(0, &m, d.dxn, 3) != cudaErrorInvalidValue;
			printf("%s %s epilogue norm refused above two tokens\n", bad ? "FAIL" : "ok  ", ty);
			fails += bad;
		}
		epinorm_out_free(&d);
	}
	epinorm_io_free(&io);
	double *wd[4] = {w1d, w2d, wgd, wud};
	uint16_t *dw[4] = {dw1, dw2, dwg, dwu};
	for (int j = 0; j < 4; j++) {
		free(wd[j]);
		cudaFree(dw[j]);
	}
}

/* Reference attention over positions 0..pos+r for query rows r of one step, K/V as the f16 cache
 * holds them (K rotated), q rotated in double. */
static void attn_ref(const float *q, const double *kc, const double *vc, int rows, int pos, int nh, int nkv, int hd,
		     const double *inv, double *out)
{
	double *s = malloc((size_t)(pos + rows) * sizeof(double)), *qr = malloc((size_t)hd * sizeof(double));
	for (int r = 0; r < rows; r++)
		for (int h = 0; h < nh; h++) {
			const float *qh = q + ((size_t)r * nh + h) * hd;
			for (int d = 0; d < hd / 2; d++) {
				double a = (pos + r) * inv[d], x1 = qh[d], x2 = qh[d + hd / 2];
				qr[d] = x1 * cos(a) - x2 * sin(a);
				qr[d + hd / 2] = x2 * cos(a) + x1 * sin(a);
			}
			int kvh = h / (nh / nkv), n = pos + r + 1;
			double m = -1e300, l = 0;
			for (int p = 0; p < n; p++) {
				double d = 0;
				for (int i = 0; i < hd; i++)
					d += qr[i] * kc[((size_t)p * nkv + kvh) * hd + i];
				s[p] = d / sqrt((double)hd);
				m = s[p] > m ? s[p] : m;
			}
			for (int p = 0; p < n; p++)
				l += s[p] = exp(s[p] - m);
			for (int i = 0; i < hd; i++) {
				double o = 0;
				for (int p = 0; p < n; p++)
					o += s[p] * vc[((size_t)p * nkv + kvh) * hd + i];
				out[((size_t)r * nh + h) * hd + i] = o / l;
			}
		}
	free(s);
	free(qr);
}

/* Per-head RMSNorm (eps 1e-6) of n heads of hd values, in place: the reference of the prep's q/k norms. */
static void rms_heads(float *x, int n, int hd, const float *w)
{
	for (int i = 0; i < n; i++) {
		double ss = 0;
		for (int d = 0; d < hd; d++)
			ss += (double)x[(size_t)i * hd + d] * x[(size_t)i * hd + d];
		double inv = 1.0 / sqrt(ss / hd + 1e-6);
		for (int d = 0; d < hd; d++)
			x[(size_t)i * hd + d] = (float)(x[(size_t)i * hd + d] * inv * w[d]);
	}
}

/* Prefill of T tokens, then decode steps of 1 and 3 rows as plain launches and again with
 * programmatic launch (pdl, as the backend's decode steps on sm_90+: each kernel waits for the one
 * before) and a grid padded to 1056 blocks (min_grid: 8 per SM of an H100/H200, whose extra split
 * rows must leave without output or ticket); with tickets, head dims 64 and 128 merge their splits in the split kernel's last
 * block (one launch) instead of the combine kernel where a block's heads x head_dim outputs are one
 * per thread (else the combine kernel still runs). With tickets also: they are all 0 again after the
 * launches, and a launch of more rows than they cover is refused. norm: q and k also get per-head
 * RMSNorms (Qwen3's q_norm, k_norm) before RoPE in the prep kernel (the rows kernel for the prefill,
 * the block kernel for decode steps). */
static int attn_ring; /* struct awq_cu_attn ring of test_attention's launches (sm_80+) */
static int attn_mma;  /* and mma (grouped heads on tensor cores, sm_80+) */

static void test_attention(int nh, int nkv, int hd, int T, int tickets, int norm)
{
	int max_ctx = T + 8, cols = nkv * hd, qcols = nh * hd;
	double *inv = malloc((size_t)hd / 2 * sizeof(double));
	float *invf = malloc((size_t)hd / 2 * sizeof(float));
	for (int d = 0; d < hd / 2; d++) {
		invf[d] = (float)pow(10000.0, -2.0 * d / hd);
		inv[d] = invf[d];
	}
	double *kc = calloc((size_t)max_ctx * cols, sizeof(double)), *vc = calloc((size_t)max_ctx * cols, sizeof(double));
	float *q = malloc((size_t)T * qcols * 4), *k = malloc((size_t)T * cols * 4), *v = malloc((size_t)T * cols * 4);
	uint16_t *dkc = dmalloc((size_t)max_ctx * cols * 2), *dvc = dmalloc((size_t)max_ctx * cols * 2);
	float *dinv = up(invf, (size_t)hd / 2 * 4), *part = dmalloc(awq_cu_attn_part_floats(8, nh, hd, max_ctx) * 4);
	int *dpos = dmalloc(4);
	unsigned *dtk = tickets ? dmalloc(awq_cu_attn_ticket_words(nh) * sizeof(unsigned)) : NULL;
	if (dtk)
		cudaMemset(dtk, 0, awq_cu_attn_ticket_words(nh) * sizeof(unsigned));
	double *ref = malloc((size_t)T * qcols * sizeof(double));
	float *qn = malloc((size_t)T * qcols * 4), *kn = malloc((size_t)T * cols * 4); /* q and k after their norms */
	float qw[256], kw[256];
	for (int d = 0; d < hd; d++) {
		qw[d] = (float)urand(0.5, 1.5);
		kw[d] = (float)urand(0.5, 1.5);
	}
	float *dqw = up(qw, (size_t)hd * 4), *dkw = up(kw, (size_t)hd * 4);
	int pos = 0;
	for (int si = 0; si < 5; si++) { /* T + 1 + 3 + 1 + 3 rows: max_ctx */
		int rows = si == 0 ? T : si % 2 ? 1 : 3, pdl = si >= 3;
		for (size_t i = 0; i < (size_t)rows * qcols; i++)
			q[i] = (float)urand(-2, 2);
		for (size_t i = 0; i < (size_t)rows * cols; i++) {
			k[i] = (float)urand(-2, 2);
			v[i] = (float)urand(-1, 1);
		}
		memcpy(qn, q, (size_t)rows * qcols * 4);
		memcpy(kn, k, (size_t)rows * cols * 4);
		if (norm) {
			rms_heads(qn, rows * nh, hd, qw);
			rms_heads(kn, rows * nkv, hd, kw);
		}
		for (int r = 0; r < rows; r++)
			for (int hh = 0; hh < nkv; hh++)
				for (int d = 0; d < hd / 2; d++) {
					size_t b = (size_t)r * cols + (size_t)hh * hd;
					double a = (pos + r) * (double)invf[d], x1 = kn[b + d], x2 = kn[b + d + hd / 2];
					size_t o = (size_t)(pos + r) * cols + (size_t)hh * hd;
					kc[o + d] = awq_f16_to_f32(awq_f32_to_f16((float)(x1 * cos(a) - x2 * sin(a))));
					kc[o + d + hd / 2] = awq_f16_to_f32(awq_f32_to_f16((float)(x2 * cos(a) + x1 * sin(a))));
					vc[o + d] = awq_f16_to_f32(awq_f32_to_f16(v[b + d]));
					vc[o + d + hd / 2] = awq_f16_to_f32(awq_f32_to_f16(v[b + d + hd / 2]));
				}
		float *dq = up(q, (size_t)rows * qcols * 4), *dk = up(k, (size_t)rows * cols * 4);
		float *dv = up(v, (size_t)rows * cols * 4), *out = poisoned((size_t)rows * qcols);
		uint16_t *out16 = si >= 3 ? poisoned16((size_t)rows * qcols) : NULL; /* and its f16 copy */
		cudaMemcpy(dpos, &pos, 4, cudaMemcpyHostToDevice);
		/* q rotated into its own buffer, k rotated into the cache: the prep kernel of the backend */
		float *dqr = poisoned((size_t)rows * qcols);
		struct awq_cu_prep pp = {.q = dq, .k = dk, .v = dv, .q_freq = dinv, .k_freq = dinv, .q_out = dqr, .kc = dkc,
					 .vc = dvc, .d_pos = dpos, .rows = rows, .n_heads = nh, .n_kv_heads = nkv, .head_dim = hd,
					 .pdl = pdl};
		if (norm) {
			pp.q_norm = dqw, pp.k_norm = dkw;
			pp.q_eps = pp.k_eps = 1e-6f;
		}
		awq_cu_attn_prep(0, &pp);
		struct awq_cu_attn a = {.k = dkc, .v = dvc, .d_pos = dpos, .n_heads = nh, .n_kv_heads = nkv, .head_dim = hd,
					.max_ctx = max_ctx, .scale = 1.0f / sqrtf((float)hd), .part = part, .ticket = dtk,
					.pdl = pdl, .min_grid = pdl ? 1056 : 0, .ring = attn_ring,
					.mma = attn_mma};
		const char *kind = "decode";
		if (rows > 8 && awq_cu_attn_prefill_ok(hd, cc_major)) {
			a.q = dqr, a.out = out, a.rows = rows, a.out16 = out16;
			awq_cu_attn_prefill(0, &a);
			kind = "flash";
		} else {
			/* the kernel of the launches' plan (the first 8 rows'), for the report */
			static const char *const kn[] = {"decode", "decode, warp kernel", "decode, K/V ring",
							 "decode, tensor cores"};
			struct awq_cu_attn_plan pl;
			a.rows = rows < 8 ? rows : 8;
			kind = awq_cu_attn_decode_plan(&a, &pl) == 0 ? kn[pl.kernel] : "decode";
			for (int r0 = 0; r0 < rows; r0 += 8) {
				a.row0 = r0;
				a.rows = rows - r0 < 8 ? rows - r0 : 8;
				a.q = dqr + (size_t)r0 * qcols;
				a.out = out + (size_t)r0 * qcols;
				a.out16 = out16 ? out16 + (size_t)r0 * qcols : NULL;
				awq_cu_attn_decode(0, &a);
			}
		}
		char what[160];
		snprintf(what, sizeof(what), "attention (%s%s%s%s) heads %d/%d d=%d rows=%d pos=%d", kind,
			 dtk && strcmp(kind, "flash") ? ", tickets" : "", pdl ? ", pdl, grid >= 1056 blocks" : "",
			 norm ? ", q/k norms" : "", nh, nkv, hd, rows, pos);
		if (rows > 4096) { /* a long prefill: six rows against the reference (all of them cost minutes) */
			const int picks[6] = {0, 1, rows / 3, rows / 2, rows - 2, rows - 1};
			for (int j = 0; j < 6; j++) {
				attn_ref(qn + (size_t)picks[j] * qcols, kc, vc, 1, pos + picks[j], nh, nkv, hd, inv, ref);
				char wr[200];
				snprintf(wr, sizeof(wr), "%s, row %d", what, picks[j]);
				check(wr, ref, out + (size_t)picks[j] * qcols, (size_t)qcols, 5e-3);
			}
		} else {
			attn_ref(qn, kc, vc, rows, pos, nh, nkv, hd, inv, ref);
			check(what, ref, out, (size_t)rows * qcols, 5e-3);
		}
		if (out16)
			check16(what, out, out16, (size_t)rows * qcols);
		cudaFree(dq), cudaFree(dqr), cudaFree(dk), cudaFree(dv), cudaFree(out), cudaFree(out16);
		pos += rows;
	}
	if (dtk) {
		size_t nw = awq_cu_attn_ticket_words(nh);
		unsigned *h = calloc(nw, sizeof(unsigned));
		int zero = h && cudaMemcpy(h, dtk, nw * sizeof(unsigned), cudaMemcpyDeviceToHost) == cudaSuccess;
		for (size_t i = 0; zero && i < nw; i++)
			zero = h[i] == 0;
		free(h);
		struct awq_cu_attn big = {.k = dkc, .v = dvc, .d_pos = dpos, .n_heads = nh, .n_kv_heads = nkv,
					  .head_dim = hd, .max_ctx = max_ctx, .scale = 1.0f, .part = part, .ticket = dtk,
					  .rows = AWQ_CU_DECODE_ROWS + 1, .q = part, .out = part}; /* never run */
		int refused = awq_cu_attn_decode(0, &big) == cudaErrorInvalidValue;
		cudaGetLastError();
		printf("%s attention tickets heads %d/%d d=%d: all 0 after the launches (%s), %d rows refused (%s)\n",
		       zero && refused ? "ok  " : "FAIL", nh, nkv, hd, zero ? "yes" : "no", AWQ_CU_DECODE_ROWS + 1,
		       refused ? "yes" : "no");
		fails += !(zero && refused);
	}
	free(inv), free(invf), free(kc), free(vc), free(q), free(k), free(v), free(ref), free(qn), free(kn);
	cudaFree(dkc), cudaFree(dvc), cudaFree(dinv), cudaFree(part), cudaFree(dpos), cudaFree(dtk);
	cudaFree(dqw), cudaFree(dkw);
}

/* rows (<= 8) cache rows of n halves at position pos of a [pos + rows + 1][n] f16 cache against
 * ref [rows][n]; every other half of the cache (poisoned) must be untouched. */
static void check_cache(const char *what, const uint16_t *dev, int pos, int rows, int n, const double *ref)
{
	size_t total = (size_t)(pos + rows + 1) * n;
	uint16_t *h = malloc(total * 2);
	int ok = cudaDeviceSynchronize() == cudaSuccess && cudaMemcpy(h, dev, total * 2, cudaMemcpyDeviceToHost) == cudaSuccess;
	double num = 0, den = 0;
	size_t stray = 0;
	for (size_t i = 0; ok && i < total; i++) {
		size_t r = i / n;
		if (r < (size_t)pos || r >= (size_t)(pos + rows)) {
			stray += h[i] != 0xffffu;
			continue;
		}
		double v = awq_f16_to_f32(h[i]), w = ref[(r - pos) * n + i % n];
		if (!isfinite(v))
			ok = 0;
		num += (v - w) * (v - w);
		den += w * w;
	}
	double rel = sqrt(num / (den > 0 ? den : 1e-30));
	ok = ok && !stray && rel <= 3e-3;
	printf("%s %s: rel_err %.3g (tol 3e-3), %zu halves written outside its rows\n", ok ? "ok  " : "FAIL", what, rel,
	       stray);
	fails += !ok;
	free(h);
}

/* The q/k/v decode GEMV whose epilogue does the attention prep (AWQ_CU_EPI_ROPE_KV): q and k rows
 * repacked per head in the RoPE pair order (rope_hd), biases permuted as the backend uploads them;
 * q with RoPE into its output, k with RoPE and v into the f16 cache rows at pos. Then prefill's
 * route on the same weight: the plain store (permuted q and k) and the prep kernel reading it
 * through awq_cu_prep.perm. Against RoPE in double on the unpermuted product. */
static void test_q4_rope_kv(int nh, int nkv, int hd, int k, int group, int bias, int pos)
{
	const int ns[3] = {nh * hd, nkv * hd, nkv * hd}, rows_list[4] = {1, 2, 3, 8};
	struct q4w w[3], *src[3];
	for (int j = 0; j < 3; j++) {
		make_q4(&w[j], ns[j], k, group, j != 1);
		src[j] = &w[j];
	}
	struct awq_cu_q4 q = to_device_perm(src, 3, 0, hd);
	float *b[3] = {NULL, NULL, NULL}, *db[3] = {NULL, NULL, NULL};
	for (int j = 0; bias && j < 3; j++) {
		b[j] = malloc((size_t)ns[j] * 4);
		float *bp = malloc((size_t)ns[j] * 4);
		for (int i = 0; i < ns[j]; i++)
			b[j][i] = (float)urand(-0.5, 0.5);
		for (int i = 0; i < ns[j]; i++)
			bp[i] = j < 2 ? b[j][awq_rope_perm_src(i, hd)] : b[j][i];
		db[j] = up(bp, (size_t)ns[j] * 4);
		free(bp);
	}
	float *invf = malloc((size_t)hd / 2 * 4);
	for (int d = 0; d < hd / 2; d++)
		invf[d] = (float)pow(10000.0, -2.0 * d / hd);
	float *dinv = up(invf, (size_t)hd / 2 * 4);
	int *dpos = up(&pos, 4);
	float *x = malloc((size_t)8 * k * 4);
	for (size_t i = 0; i < (size_t)8 * k; i++)
		x[i] = (float)urand(-1, 1);
	float *dx = up(x, (size_t)8 * k * 4);
	double *ref[3];
	for (int j = 0; j < 3; j++) { /* [8][n]: W x + bias, RoPE on q and k */
		ref[j] = malloc((size_t)8 * ns[j] * sizeof(double));
		matmul_ref(w[j].deq, ns[j], k, x, 8, ref[j], ns[j], 0);
		for (int r = 0; r < 8; r++)
			for (int i = 0; i < ns[j]; i++)
				ref[j][(size_t)r * ns[j] + i] += b[j] ? b[j][i] : 0.f;
		for (int r = 0; j < 2 && r < 8; r++)
			for (int h = 0; h < ns[j] / hd; h++)
				for (int d = 0; d < hd / 2; d++) {
					double *e = ref[j] + (size_t)r * ns[j] + (size_t)h * hd;
					double a = (double)(pos + r) * invf[d], x1 = e[d], x2 = e[d + hd / 2];
					e[d] = x1 * cos(a) - x2 * sin(a);
					e[d + hd / 2] = x2 * cos(a) + x1 * sin(a);
				}
	}
	for (int ri = 0; ri < 4; ri++) {
		const int rows = rows_list[ri], cache = (pos + rows + 1) * ns[1];
		for (int route = 0; route < 2; route++) { /* 0: the epilogue; 1: store + prep (prefill's) */
			float *qo = poisoned((size_t)rows * ns[0]);
			uint16_t *kc = poisoned16((size_t)cache), *vc = poisoned16((size_t)cache);
			struct awq_cu_out o = {.nseg = 3, .tile_end = {ns[0] / 16, (ns[0] + ns[1]) / 16, q.tiles},
					       .n = {ns[0], ns[1], ns[2]}, .bias = {db[0], db[1], db[2]}};
			cudaError_t e;
			float *raw[3] = {NULL, NULL, NULL};
			if (route == 0) {
				o.ptr[0] = qo;
				o.rk = (struct awq_cu_rope_kv){.q_freq = dinv, .k_freq = dinv, .kc = kc, .vc = vc, .d_pos = dpos,
							       .hd = hd};
				e = awq_cu_q4_gemv(0, &q, dx, rows, &o, AWQ_CU_EPI_ROPE_KV, sm_count);
			} else {
				for (int j = 0; j < 3; j++)
					o.ptr[j] = raw[j] = poisoned((size_t)rows * ns[j]);
				e = awq_cu_q4_gemv(0, &q, dx, rows, &o, AWQ_CU_EPI_STORE, sm_count);
				struct awq_cu_prep pp = {.q = raw[0], .k = raw[1], .v = raw[2], .q_freq = dinv, .k_freq = dinv,
							 .q_out = qo, .kc = kc, .vc = vc, .d_pos = dpos, .rows = rows, .n_heads = nh,
							 .n_kv_heads = nkv, .head_dim = hd, .perm = 1};
				if (e == cudaSuccess)
					e = awq_cu_attn_prep(0, &pp);
			}
			char what[160];
			snprintf(what, sizeof(what), "q/k/v %s heads %d/%d d=%d k=%d g=%d%s rows=%d pos=%d",
				 route ? "store + prep (perm)" : "GEMV with RoPE and KV write", nh, nkv, hd, k, group,
				 bias ? " bias" : "", rows, pos);
			if (e != cudaSuccess)
				printf("FAIL %s: launch %s\n", what, cudaGetErrorString(e)), fails++;
			char wq[200];
			snprintf(wq, sizeof(wq), "%s: q", what);
			check(wq, ref[0], qo, (size_t)rows * ns[0], 3e-3);
			snprintf(wq, sizeof(wq), "%s: k cache", what);
			check_cache(wq, kc, pos, rows, ns[1], ref[1]);
			snprintf(wq, sizeof(wq), "%s: v cache", what);
			check_cache(wq, vc, pos, rows, ns[2], ref[2]);
			cudaFree(qo), cudaFree(kc), cudaFree(vc);
			for (int j = 0; j < 3; j++)
				cudaFree(raw[j]);
		}
	}
	/* refused: a segment that is not whole heads */
	{
		struct awq_cu_out o = {.nseg = 3, .tile_end = {ns[0] / 16 - 1, (ns[0] + ns[1]) / 16, q.tiles},
				       .n = {ns[0] - 16, ns[1], ns[2]}, .ptr = {(float *)dx}};
		o.rk = (struct awq_cu_rope_kv){.q_freq = dinv, .k_freq = dinv, .kc = (uint16_t *)dx, .vc = (uint16_t *)dx,
					       .d_pos = dpos, .hd = hd};
		int refused = awq_cu_q4_gemv(0, &q, dx, 1, &o, AWQ_CU_EPI_ROPE_KV, sm_count) == cudaErrorInvalidValue;
		cudaGetLastError();
		printf("%s q/k/v RoPE epilogue with a partial head refused\n", refused ? "ok  " : "FAIL");
		fails += !refused;
		/* the epilogue is decode-only: the prefill GEMM refuses it with whole heads too */
		struct awq_cu_out og = {.nseg = 3, .tile_end = {ns[0] / 16, (ns[0] + ns[1]) / 16, q.tiles},
					.n = {ns[0], ns[1], ns[2]}, .ptr = {(float *)dx}, .rk = o.rk};
		uint16_t *x16 = dmalloc((size_t)16 * k * 2);
		refused = awq_cu_q4_gemm(0, &q, x16, 16, &og, AWQ_CU_EPI_ROPE_KV, cc_major, sm_count) == cudaErrorInvalidValue;
		cudaGetLastError();
		printf("%s q/k/v RoPE epilogue refused by the prefill GEMM\n", refused ? "ok  " : "FAIL");
		fails += !refused;
		cudaFree(x16);
		/* the prep reading permuted q and k needs head dims of whole tiles */
		struct awq_cu_prep pp = {.q = dx, .k = dx, .v = dx, .q_out = (float *)dx, .kc = (uint16_t *)dx,
					 .vc = (uint16_t *)dx, .d_pos = dpos, .rows = 1, .n_heads = 1, .n_kv_heads = 1,
					 .head_dim = 24, .perm = 1};
		refused = awq_cu_attn_prep(0, &pp) == cudaErrorInvalidValue;
		printf("%s attention prep of permuted q/k at head dim 24 refused\n", refused ? "ok  " : "FAIL");
		fails += !refused;
	}
	cudaFree((void *)q.q), cudaFree((void *)q.scales), cudaFree((void *)q.zeros);
	cudaFree(dinv), cudaFree(dpos), cudaFree(dx);
	for (int j = 0; j < 3; j++) {
		free(w[j].qw), free(w[j].qz), free(w[j].sc), free(w[j].deq), free(ref[j]), free(b[j]);
		cudaFree(db[j]);
	}
	free(invf), free(x);
}

/* The AWQ_CUDA_GEMV parser refuses malformed specs (host code: runs without a device too). */
static void test_gemv_override_specs(void)
{
	static const char *bad[] = {"1008x2304:3,16,8", "1008x2304:1,16,8,", "1008x2304:1,17,4", "x:1,2,2", "1008x2304:1,4,3"};
	for (int i = 0; i < 5; i++) {
		int no = awq_cu_q4_gemv_overrides(bad[i]);
		printf("%s GEMV override \"%s\" refused (%d)\n", no == -1 ? "ok  " : "FAIL", bad[i], no);
		fails += no != -1;
	}
	awq_cu_q4_gemv_overrides(NULL);
}

/* awq_cu_attn_decode's launch plans (host only: runs without a GPU): which kernel, split length,
 * heads per block, grid and merge for the shapes of the models it was measured on (k_attn.cu) */
static int plan_mma_chunk; /* the AWQ_CUDA_ATTN_MMA_CHUNK of the cases below (0: the rule) */

static void plan_case(const char *what, int nh, int nkv, int hd, int max_ctx, int rows, int ticket, int ring,
		      int mma, int min_grid, int kernel, int chunk, int gper, int gy, int merged)
{
	unsigned tk;
	struct awq_cu_attn a = {.n_heads = nh, .n_kv_heads = nkv, .head_dim = hd, .max_ctx = max_ctx, .rows = rows,
				.ticket = ticket ? &tk : NULL, .ring = ring, .mma = mma, .min_grid = min_grid,
				.mma_chunk = plan_mma_chunk};
	struct awq_cu_attn_plan p;
	int rc = awq_cu_attn_decode_plan(&a, &p);
	int ok = kernel < 0 ? rc == -1
			    : rc == 0 && p.kernel == kernel && p.chunk == chunk && p.gper == gper &&
				      p.grid[0] == nkv * p.hsub && p.hsub == (nh / nkv + gper - 1) / gper &&
				      p.grid[1] == gy && p.grid[2] == rows && p.merged == merged &&
				      (kernel == AWQ_CU_ATTN_MMA || kernel == AWQ_CU_ATTN_RING) == (p.smem > 0);
	if (ok && kernel == AWQ_CU_ATTN_MMA) /* the ring of a warp: its tiles up to 3, 16 positions of K and V */
		ok = p.smem == 4 * (chunk / 64 < 3 ? chunk / 64 : 3) * 2 * 16 * hd * 2;
	printf("%s attention plan %s: rc %d kernel %d chunk %d heads/block %d grid %dx%dx%d smem %d merged %d\n",
	       ok ? "ok  " : "FAIL", what, rc, p.kernel, p.chunk, p.gper, p.grid[0], p.grid[1], p.grid[2], p.smem, p.merged);
	fails += !ok;
}

static void test_attn_plans(void)
{
	enum { S = AWQ_CU_ATTN_SPLIT, W = AWQ_CU_ATTN_WARP, R = AWQ_CU_ATTN_RING, M = AWQ_CU_ATTN_MMA };
	/* qwen3-8b (32/8, 128): a short cache halves the heads per block to 1 (96 blocks) and keeps
	 * the ring kernel; 4096 positions: 2 heads on tensor cores in splits of 256 (17 x 16 blocks);
	 * 16384: 4 heads in splits of 512 (33 x 8 blocks); the 1056-block floor pads the split rows;
	 * more than 128 outputs per block: no merge */
	plan_case("qwen3-8b ctx 144", 32, 8, 128, 144, 1, 1, 1, 1, 0, R, 64, 1, 3, 1);
	plan_case("qwen3-8b ctx 144 floor", 32, 8, 128, 144, 1, 1, 1, 1, 1056, R, 64, 1, 33, 1);
	plan_case("qwen3-8b ctx 4176", 32, 8, 128, 4176, 1, 1, 1, 1, 1056, M, 256, 2, 66, 0);
	/* spans of 2049-4096 take splits of 256 on tensor cores (heads per block as with 128: 4 at
	 * 4096, 16 x 8 blocks); 2048 keeps 128; MHA's ring kernel keeps 128 */
	plan_case("qwen3-8b ctx 4096", 32, 8, 128, 4096, 1, 1, 1, 1, 0, M, 256, 4, 16, 0);
	plan_case("qwen3-8b ctx 3000", 32, 8, 128, 3000, 1, 1, 1, 1, 0, M, 256, 2, 12, 0);
	plan_case("qwen3-8b ctx 2048", 32, 8, 128, 2048, 1, 1, 1, 1, 0, M, 128, 2, 16, 0);
	plan_case("qwen3-30b-a3b ctx 4096", 32, 4, 128, 4096, 1, 1, 1, 1, 0, M, 256, 4, 16, 0);
	plan_case("llama2-7b ctx 4096", 32, 32, 128, 4096, 1, 1, 1, 1, 0, R, 128, 1, 32, 1);
	plan_case("qwen3-8b ctx 16464", 32, 8, 128, 16464, 1, 1, 1, 1, 1056, M, 512, 4, 132, 0);
	plan_case("qwen3-8b ctx 16464 no floor", 32, 8, 128, 16464, 1, 1, 1, 1, 0, M, 512, 4, 33, 0);
	plan_case("qwen3-8b ctx 16464 mma off", 32, 8, 128, 16464, 1, 1, 1, 0, 0, R, 256, 4, 65, 0);
	plan_case("qwen3-8b ctx 16464 ring off", 32, 8, 128, 16464, 1, 1, 0, 0, 0, W, 256, 4, 65, 0);
	/* qwen3-30b-a3b (32/4, 128): 2 heads per block at 4176 positions; 8 rows: 8 heads per block,
	 * and 9 x 4 x 8 blocks of 512 positions */
	plan_case("qwen3-30b-a3b ctx 144", 32, 4, 128, 144, 1, 1, 1, 1, 0, R, 64, 1, 3, 1);
	plan_case("qwen3-30b-a3b ctx 4176", 32, 4, 128, 4176, 1, 1, 1, 1, 0, M, 256, 2, 17, 0);
	plan_case("qwen3-30b-a3b ctx 4176 8 rows", 32, 4, 128, 4176, 8, 1, 1, 1, 0, M, 512, 8, 9, 0);
	/* MHA (llama2-7b) stays on the ring kernel; head dim 64: one head per block on the ring kernel,
	 * 8 heads (3 rows) on tensor cores with 2 ring slots per warp (its 2 tiles); 96: the generic kernel */
	plan_case("llama2-7b ctx 16464", 32, 32, 128, 16464, 1, 1, 1, 1, 0, R, 256, 1, 65, 1);
	plan_case("16/2 d=64 ctx 640", 16, 2, 64, 640, 1, 1, 1, 1, 0, R, 64, 1, 10, 1);
	plan_case("16/2 d=64 ctx 2000", 16, 2, 64, 2000, 1, 1, 1, 1, 0, R, 128, 1, 16, 1);
	plan_case("64/8 d=64 ctx 2000 3 rows", 64, 8, 64, 2000, 3, 1, 1, 1, 0, M, 128, 8, 16, 0);
	plan_case("16/1 d=96", 16, 1, 96, 40, 1, 1, 1, 1, 0, S, 64, 8, 1, 0);
	/* a fixed split length for the tensor-core kernel (AWQ_CUDA_ATTN_MMA_CHUNK): qwen3-8b at 4176
	 * positions takes 256 by the rule; 512 and 128 by the knob; a length it does not take keeps the
	 * rule; the ring kernel of MHA ignores it */
	plan_case("qwen3-8b ctx 4176", 32, 8, 128, 4176, 1, 1, 1, 1, 0, M, 256, 2, 17, 0);
	plan_mma_chunk = 512;
	plan_case("qwen3-8b ctx 4176 split 512", 32, 8, 128, 4176, 1, 1, 1, 1, 0, M, 512, 2, 9, 0);
	plan_case("llama2-7b ctx 16464 split 512", 32, 32, 128, 16464, 1, 1, 1, 1, 0, R, 256, 1, 65, 1);
	plan_mma_chunk = 128;
	plan_case("qwen3-8b ctx 4176 split 128", 32, 8, 128, 4176, 1, 1, 1, 1, 0, M, 128, 2, 33, 0);
	plan_mma_chunk = 300;
	plan_case("qwen3-8b ctx 4176 split 300 (not taken)", 32, 8, 128, 4176, 1, 1, 1, 1, 0, M, 256, 2, 17, 0);
	plan_mma_chunk = 0;
	/* refused: more rows than the tickets cover, heads not a multiple of the KV heads, no rows */
	plan_case("9 rows with tickets", 32, 8, 128, 144, AWQ_CU_DECODE_ROWS + 1, 1, 1, 1, 0, -1, 0, 0, 0, 0);
	plan_case("30/8 heads", 30, 8, 128, 144, 1, 0, 1, 1, 0, -1, 0, 0, 0, 0);
	plan_case("no rows", 32, 8, 128, 144, 0, 0, 1, 1, 0, -1, 0, 0, 0, 0);
}

/* awq_cu_topk against the host sampler's selection (awq_topk_select): the same ids in the same order
 * and the values unchanged, from one launch, twice (the ticket resets). mode 0: distinct random
 * values; 1: four values only (ties broken by the lower column across slices); 2: one value
 * everywhere; 3: -0 and +0 mixed with negatives and -inf; 4: every 1024 columns the same distinct
 * values (every slice alike); 5: increasing with the column (the best k in the last slices). */
static void test_topk(int cols, int k, int mode)
{
	float *h = malloc((size_t)cols * 4);
	int32_t *want = malloc((size_t)k * 4), got[AWQ_CU_TOPK_MAX];
	float gv[AWQ_CU_TOPK_MAX];
	for (int i = 0; i < cols; i++) {
		const double u = urand(0, 1);
		h[i] = mode == 0   ? (float)urand(-20, 20)
		       : mode == 1 ? (float)(int)(u * 4) - 1.5f
		       : mode == 2 ? 0.25f
		       : mode == 3 ? (u < 0.3 ? -0.0f : u < 0.6 ? 0.0f : u < 0.7 ? -INFINITY : (float)urand(-5, -1))
		       : mode == 4 ? (float)((i % 1024) * 37 % 1024) * 0.01f - 3.0f
				   : (float)i * 1e-3f;
	}
	awq_topk_select(h, cols, k, want);
	float *d = up(h, (size_t)cols * 4);
	void *part = dmalloc(awq_cu_topk_part_bytes(cols, k));
	unsigned *ticket = dmalloc(4);
	int32_t *dids = dmalloc(AWQ_CU_TOPK_MAX * 8);
	float *dvals = (float *)(dids + AWQ_CU_TOPK_MAX);
	cudaMemset(ticket, 0, 4);
	for (int rep = 0; rep < 2; rep++) {
		cudaMemset(dids, 0xff, AWQ_CU_TOPK_MAX * 8);
		cudaError_t e = awq_cu_topk(0, d, cols, k, part, ticket, dids, dvals);
		if (e == cudaSuccess)
			e = cudaDeviceSynchronize();
		cudaMemcpy(got, dids, (size_t)k * 4, cudaMemcpyDeviceToHost);
		cudaMemcpy(gv, dvals, (size_t)k * 4, cudaMemcpyDeviceToHost);
		int bad = -1;
		for (int i = 0; i < k && bad < 0; i++)
			if (got[i] != want[i] || memcmp(&gv[i], &h[want[i]], 4))
				bad = i;
		if (e != cudaSuccess || bad >= 0) {
			printf("FAIL: topk cols %d k %d mode %d run %d: %s", cols, k, mode, rep,
			       e != cudaSuccess ? cudaGetErrorString(e) : "");
			if (bad >= 0)
				printf("rank %d: id %d (%g), want %d (%g)", bad, got[bad], gv[bad], want[bad], h[want[bad]]);
			printf("\n");
			fails++;
			break;
		}
		if (rep == 1)
			printf("ok: topk cols %d k %d mode %d\n", cols, k, mode);
	}
	cudaFree(d);
	cudaFree(part);
	cudaFree(ticket);
	cudaFree(dids);
	free(h);
	free(want);
}

/* awq_cu_sample against the host sampler (awq_sampler_sample on the same row, the same stream): the
 * same token for every draw, over temperatures, top-k, top-p and min-p, on rows of a Qwen vocabulary
 * (peaked as a model's, flat, and with ties), written to the feed's token and to the ring slot before
 * the position; the device's stream ends where the host's does. */
static int topk_quick; /* AWQ_TEST_TOPK_ONLY=2: fewer cases, for the sanitizer's racecheck */

static void test_sample(int cols)
{
	static const struct {
		float t, p, minp;
		int k;
	} cfg[] = {{0.8f, 0.95f, 0.05f, 40}, {0.6f, 0.95f, 0, 20}, {1.0f, 1.0f, 0, 1}, {1.5f, 0.5f, 0.01f, 256},
		   {0.1f, 0.9f, 0, 64}, {2.5f, 1.0f, 0.2f, 100}};
	float *h = malloc((size_t)cols * 4), *w = malloc((size_t)cols * 4);
	float *d = dmalloc((size_t)cols * 4);
	void *part = dmalloc(awq_cu_topk_part_bytes(cols, AWQ_CU_TOPK_MAX));
	unsigned *ticket = dmalloc(4);
	struct awq_cu_sampling *ds = dmalloc(sizeof(*ds));
	int32_t *dtok = dmalloc(4), *dring = dmalloc(64 * 4);
	int *dpos = dmalloc(4);
	cudaMemset(ticket, 0, 4);
	int draws = 0, diff = 0, bad_feed = 0, err = 0;
	for (size_t c = 0; c < sizeof(cfg) / sizeof(cfg[0]); c++) {
		struct awq_sampler_opts o;
		struct awq_sampler smp;
		char e[256];
		awq_sampler_opts_default(&o);
		o.temperature = cfg[c].t, o.top_p = cfg[c].p, o.min_p = cfg[c].minp, o.top_k = cfg[c].k, o.seed = 100 + c;
		if (awq_sampler_init(&smp, &o, cols, e, sizeof(e))) {
			printf("FAIL: sampler: %s\n", e);
			fails++;
			return;
		}
		struct awq_cu_sampling sp = {1.0f / o.temperature, o.top_p, o.min_p, o.top_k, {0}};
		memcpy(sp.rng, smp.rng, sizeof(sp.rng));
		cudaMemcpy(ds, &sp, sizeof(sp), cudaMemcpyHostToDevice);
		for (int it = 0; it < (topk_quick ? 3 : 60); it++) {
			const int shape = it % 3;
			for (int i = 0; i < cols; i++) {
				const double u = urand(0, 1);
				h[i] = shape == 0   ? (float)(30 * u * u * u * u * u * u - 8)
				       : shape == 1 ? (float)(2 * u)
						    : (float)(int)(u * 16) * 0.5f;
			}
			memcpy(w, h, (size_t)cols * 4);
			const int32_t want = awq_sampler_sample(&smp, w, NULL, 0);
			const int pos = 1000 + it; /* as after the step's argmax advanced it */
			cudaMemcpy(d, h, (size_t)cols * 4, cudaMemcpyHostToDevice);
			cudaMemcpy(dpos, &pos, 4, cudaMemcpyHostToDevice);
			cudaMemset(dtok, 0xff, 4);
			cudaMemset(dring, 0xff, 64 * 4);
			struct awq_cu_feed feed = {dtok, dpos, dring, 63};
			cudaError_t ce = awq_cu_sample(0, d, cols, part, ticket, ds, o.top_k, &feed);
			if (ce == cudaSuccess)
				ce = cudaDeviceSynchronize();
			int32_t tok = -1, ring[64];
			cudaMemcpy(&tok, dtok, 4, cudaMemcpyDeviceToHost);
			cudaMemcpy(ring, dring, sizeof(ring), cudaMemcpyDeviceToHost);
			err += ce != cudaSuccess;
			diff += tok != want;
			bad_feed += ring[(pos - 1) & 63] != tok;
			draws++;
		}
		cudaMemcpy(&sp, ds, sizeof(sp), cudaMemcpyDeviceToHost);
		if (memcmp(sp.rng, smp.rng, sizeof(sp.rng))) {
			printf("FAIL: sample T %g k %d: the device's random stream is not where the host's is\n", o.temperature,
			       o.top_k);
			fails++;
		}
		awq_sampler_free(&smp);
	}
	if (err || diff || bad_feed) {
		printf("FAIL: sample cols %d: %d of %d draws differ from the host's, %d ring slots wrong, %d launch errors\n",
		       cols, diff, draws, bad_feed, err);
		fails++;
	} else {
		printf("ok: sample cols %d: %d draws as the host's\n", cols, draws);
	}
	struct awq_cu_feed none = {0};
	if (awq_cu_sample(0, d, cols, part, ticket, ds, 0, &none) != cudaErrorInvalidValue ||
	    awq_cu_sample(0, d, 10, part, ticket, ds, 10, &none) != cudaErrorInvalidValue) {
		printf("FAIL: sample accepted top-k 0 or top-k >= cols\n");
		fails++;
	}
	cudaFree(d), cudaFree(part), cudaFree(ticket), cudaFree(ds), cudaFree(dtok), cudaFree(dring), cudaFree(dpos);
	free(h), free(w);
}

int main(void)
{
	int ndev = 0;
	test_gemv_override_specs();
	test_attn_plans();
	if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0) {
		printf("SKIP: no CUDA device or driver\n");
		return fails ? 1 : 77;
	}
	struct cudaDeviceProp p;
	cudaGetDeviceProperties(&p, 0);
	printf("device: %s sm_%d%d\n", p.name, p.major, p.minor);
	cc_major = p.major;
	sm_count = p.multiProcessorCount;
	{
		const char *only = getenv("AWQ_TEST_TOPK_ONLY"); /* the sanitizer runs of these cases alone */
		topk_quick = only && only[0] == '2';
		/* one slice, slices of at most k columns, a partial last slice, a Qwen vocabulary, more
		 * blocks' keys than the last block holds in shared memory (1M columns at k 256) */
		const int tk[][2] = {{1, 1}, {7, 7}, {100, 40}, {1024, 256}, {1025, 40}, {4096, 256}, {4097, 40},
				     {5000, 256}, {8193, 1}, {32000, 40}, {151936, 40}, {151936, 256}, {151936, 1},
				     {128256, 64}, {262145, 40}, {1 << 20, 256}};
		for (size_t i = 0; i < sizeof(tk) / sizeof(tk[0]); i++)
			for (int mode = 0; mode < 6; mode++)
				if (!topk_quick || tk[i][0] <= 10000)
					test_topk(tk[i][0], tk[i][1], mode);
		if (!topk_quick)
			test_sample(151936);
		test_sample(32000);
		test_sample(1000);
		if (awq_cu_topk(0, NULL, 10, 11, NULL, NULL, NULL, NULL) != cudaErrorInvalidValue ||
		    awq_cu_topk(0, NULL, 1000, AWQ_CU_TOPK_MAX + 1, NULL, NULL, NULL, NULL) != cudaErrorInvalidValue) {
			printf("FAIL: topk accepted k > cols or k > %d\n", AWQ_CU_TOPK_MAX);
			fails++;
		}
		if (only && (only[0] == '1' || only[0] == '2')) {
			printf("%s: %d failure(s) (top-k and sampling cases only)\n", fails ? "FAIL" : "PASS", fails);
			return fails ? 1 : 0;
		}
	}
	static const int r_small[] = {1, 2, 3, 4, 5, 8, 9, 64, 130};
	static const int n1[] = {1000}, n3[] = {40, 24, 72}, n4[] = {4096};
	const char *sm = getenv("AWQ_CUDA_TEST_SMALL");
	test_q4_segments(1024, 128, n1, 1, r_small, 9);
	if (!(sm && sm[0] == '1')) /* the sanitizer runs skip the large matrix */
		test_q4_segments(4096, 128, n4, 1, r_small, 8);
	test_q4_segments(96, 32, n3, 3, r_small, 9);
	/* Streaming decode GEMV (group sizes that are multiples of 64): chunk ranges that start inside a
	 * group (36 chunks over 8 warps), one-chunk groups over 4 warps, 256-wide groups, then the same
	 * shapes again with each tuning variant and the fallback kernel forced. */
	{
		static const int r_dec[] = {1, 2, 3, 5, 8}, n2[] = {1000}, n5[] = {72, 40};
		static const int var[][5] = {{0, 0, 0, 0, -1}, {0, 2, 4, 8, 1}, {0, 1, 16, 2, 0},
					     {1, 0, 0, 0, -1}, {0, 1, 8, 6, 1}};
		int nvar = sm && sm[0] == '1' ? 3 : 5; /* sanitizer runs: three of them */
		for (int v = 0; v < nvar; v++) {
			awq_cu_q4_gemv_tune(var[v][0], var[v][1], var[v][2], var[v][3], var[v][4]);
			printf("-- decode GEMV variant legacy=%d rt=%d kw=%d stages=%d pdl=%d\n", var[v][0], var[v][1],
			       var[v][2], var[v][3], var[v][4]);
			test_q4_segments(2304, 128, n2, 1, r_dec, 5);
			test_q4_segments(1152, 64, n3, 3, r_dec, 5);
			test_q4_segments(768, 256, n5, 2, r_dec, 5);
			test_q4_silu(344, 256, 64);
			test_q4_epinorm(1152, 1088, 344, 64);
		}
		awq_cu_q4_gemv_tune(0, 0, 0, 0, -1);
		test_q4_epinorm(4096, 4096, 1024, 128); /* llama2-7b's hidden size, the built-in launch */
		test_q4_epinorm(1024, 1152, 344, 32);   /* g32: the fallback kernel */
		/* which launch the built-in rule and an override take (sm_80+: the streaming kernel; the
		 * rule's inputs here: 63 tiles, 32 blocks of two; 16 warps where one block per SM covers
		 * them, as on the H100/H200, 8 up to three per SM) */
		const int s8 = cc_major >= 8, rt1 = 63 >= sm_count ? 2 : 1, kw = 32 <= sm_count ? 16 : 32 <= 3 * sm_count ? 8 : 4;
		/* stages: 2 at 8-16 warps (36 chunks: under 8 per warp at 8 warps), else 4 */
		const int st1 = kw >= 8 ? 2 : 4, st2 = st1;
		const int builtin[4][5] = {{s8, rt1, kw, st1, 0}, {s8, 2, kw, st2, 0},
					   {s8, 2, kw > 8 ? 8 : kw, 2, 1}, {s8, 2, kw > 8 ? 8 : kw, 2, 1}};
		const int ovr[4][5] = {{s8, 1, 16, 8, 0}, {s8, 1, 16, 8, 0}, {s8, 1, 16, 4, 1}, {s8, 1, 16, 4, 1}};
		test_gemv_choice("", builtin, 0);
		test_gemv_choice("1008x2304:1,16,8", ovr, 0);
		const int builtin_xh[4][5] = {{s8, rt1, kw, st1, 2}, {s8, 2, kw, st2, 2}, {s8, 2, kw, st2, 2}, {s8, 2, kw, st2, 2}};
		const int ovr_xh[4][5] = {{s8, 1, 16, 4, 2}, {s8, 1, 16, 4, 2}, {s8, 1, 16, 4, 2}, {s8, 1, 16, 4, 2}};
		test_gemv_choice("", builtin_xh, 1);
		test_gemv_choice("1008x2304:1,16,8", ovr_xh, 1);
		test_gemv_balance(5120, 17408, 1, 8, 4);
		test_gemv_balance(6144, 4096, 1, 8, 2);
		test_gemv_balance(12288, 4096, 2, 8, 2);
		test_gemv_balance(7168, 5120, 2, 8, 4); /* qwen3-14b's q/k/v: 224 blocks of 8 warps, 4 stages */
		test_gemv_balance(5120, 2048, 1, 4, 4); /* qwen3-30b-a3b's: 4-warp one-tile blocks, 8 chunks per warp */
		/* in-model launch overrides (AWQ_CUDA_GEMV): taken for their shapes (M = rows rounded up
		 * to 16; the fused gate/up counts both weights), results unchanged; malformed specs refused */
		int no = awq_cu_q4_gemv_overrides("1008x2304:1,16,8;704x256:1,2,6");
		printf("%s GEMV overrides: %d of 2 taken\n", no == 2 ? "ok  " : "FAIL", no);
		fails += no != 2;
		test_q4_segments(2304, 128, n2, 1, r_dec, 5);
		test_q4_silu(344, 256, 64);
		no = awq_cu_q4_gemv_overrides(NULL);
		fails += no != 0;
	}
	test_q4_segments(192, 48, n1, 1, r_small, 9);
	test_q4_silu(344, 256, 64);
	{
		static const int g2[] = {344, 344}, one[] = {1000};
		test_q4_dequant(1152, 64, n3, 3, 0);
		test_q4_dequant(256, 128, g2, 2, 1);
		test_q4_dequant(192, 48, one, 1, 0);
		test_q4_dequant(96, 32, n3, 3, 0);
	}
	test_w16(300, 264, 1);
	test_w16(77, 37, 0);
	test_w16_epinorm(1024, 1152, 344, 1);
	test_w16_epinorm(1000, 256, 200, 0); /* a partial last block of rows */
	test_q4_rope_kv(8, 2, 128, 1024, 128, 0, 37); /* the streaming kernel */
	test_q4_rope_kv(4, 4, 64, 768, 64, 1, 5);     /* with biases (Qwen2) */
	test_q4_rope_kv(2, 1, 32, 256, 32, 1, 100);   /* g32: the fallback kernel */
	awq_cu_q4_gemv_tune(1, 0, 0, 0, -1);
	test_q4_rope_kv(8, 2, 128, 1024, 128, 1, 3); /* the fallback kernel forced */
	awq_cu_q4_gemv_tune(0, 0, 0, 0, -1);
	test_attention(8, 2, 128, 200, 1, 0); /* 4 splits merged by the last block */
	test_attention(8, 2, 128, 200, 0, 0);
	test_attention(4, 4, 64, 70, 1, 0);
	test_attention(4, 4, 64, 70, 0, 0);
	/* 8 KV heads of 8 query heads: 4 query heads per block at one token (8 would give 128 blocks),
	 * 8 at three tokens (384 blocks); both on split + combine (more than one output per thread) */
	test_attention(64, 8, 64, 1000, 1, 0);
	test_attention(8, 2, 128, 20, 1, 0); /* one split: written directly */
	/* more splits than one round of the merge's loads (8): 12 and 20 splits of 128 positions, merged
	 * by the last block and by the combine kernel */
	test_attention(8, 8, 128, 1500, 1, 0);
	test_attention(8, 8, 128, 1500, 0, 0);
	test_attention(4, 4, 64, 2500, 1, 0);
	test_attention(16, 1, 96, 40, 1, 0); /* no one-launch kernel for d = 96: the combine kernel runs */
	test_attention(8, 2, 128, 200, 1, 1); /* with q/k norms */
	test_attention(4, 4, 64, 70, 0, 1);
	test_attention(32, 4, 128, 20, 1, 1); /* qwen3-30b-a3b's heads, one split */
	test_attention(16, 1, 96, 40, 1, 1);
	/* caches of more than 4096 positions (splits of 256: a warp walks 64 positions in 4 rounds),
	 * grouped (qwen3-8b's 32/8) and not, head dims 128 and 64 */
	test_attention(32, 8, 128, 4200, 1, 0);
	test_attention(8, 8, 64, 4200, 0, 0);
	/* the K/V rows through the cp.async ring (AWQ_CUDA_ATTN_RING, the default on sm_80+): MHA and GQA, head dims 64 and
	 * 128, one split to many (the 4200-position cache: 4 rounds per warp, the ring wrapping), merged
	 * by the last block and by the combine kernel */
	if (cc_major >= 8) {
		attn_ring = 1;
		test_attention(8, 2, 128, 200, 1, 0);
		test_attention(8, 2, 128, 200, 0, 0);
		test_attention(4, 4, 64, 70, 1, 0);
		test_attention(8, 2, 128, 20, 1, 0);
		test_attention(8, 8, 128, 1500, 1, 0);
		test_attention(4, 4, 64, 2500, 0, 0);
		test_attention(32, 4, 128, 20, 1, 1);
		test_attention(32, 8, 128, 4200, 1, 0);
		test_attention(8, 8, 64, 4200, 0, 0);
		attn_ring = 0;
		/* grouped heads on tensor cores (AWQ_CUDA_ATTN_MMA), where a block has 2 heads or more
		 * (awq_cu_attn_decode_plan; the reports name the kernel): 64/8 d=64 at 1008 positions, 4
		 * heads per block at one token, 8 at three; 28/4 (qwen2.5-7b's group of 7: a block of 3
		 * heads) at three tokens; 32/8 d=128 at 4208 positions, 2 and 4 heads per block in splits
		 * of 256 (4 tiles per warp, the ring wrapping), and at 16408 positions in splits of 512;
		 * 16/4 d=64 at three tokens: 2 heads of 64, merged by the last block; the others by the
		 * combine kernel; with q/k norms. The short caches of the first cases take the warp kernel. */
		attn_mma = 1;
		test_attention(8, 2, 128, 200, 1, 0);
		test_attention(64, 8, 64, 1000, 1, 0);
		test_attention(28, 4, 128, 1500, 0, 0);
		test_attention(32, 8, 128, 4200, 1, 0);
		if (!(sm && sm[0] == '1')) /* the sanitizer runs skip the 16400-token prefill */
			test_attention(32, 8, 128, 16400, 1, 1);
		test_attention(16, 4, 64, 4200, 1, 1);
		test_attention(16, 4, 64, 4200, 0, 0);
		attn_mma = 0;
	}
	printf("%s: %d failure(s)\n", fails ? "FAIL" : "PASS", fails);
	return fails ? 1 : 0;
}
