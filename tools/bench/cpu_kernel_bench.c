/* CPU kernel micro-benchmark: the AWQ (int8-activation) and BF16 matmul kernels of the selected
 * kernel set on one thread, from cache and from memory, beside the read bandwidth of one thread and
 * of all cores measured in the same run. For tuning the kernels of backends/cpu; model speed is
 * `awqrun bench`'s job. Figures are GB/s of weights as the kernel reads them (repacked AWQ incl.
 * scales and zeros; bf16 as stored).
 *   awq-cpu-bench [-t THREADS]     (THREADS for the all-cores bandwidth line; default all)
 *   awq-cpu-bench --sampler [VOCAB] the host sampler's time per token (awq_sampler_sample) over VOCAB
 *                                   logits (default 151936, a Qwen vocabulary), as `awqrun run` pays it
 *                                   per sampled token on every backend */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "awqrun.h"
#include "awqrun_text.h"
#include "clock.h"
#include "cpu_kernels.h"
#include "cpu_membw.h"
#include "dtype.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)rng;
}

static void *xalloc(size_t bytes)
{
	void *p = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
	if (!p) {
		fprintf(stderr, "awq-cpu-bench: out of memory (%zu bytes)\n", bytes);
		exit(1);
	}
	return p;
}

/* Best time of several passes, each long enough to be measured (about 0.1 s). */
typedef void (*kernel_fn)(void *ctx);

static double best_seconds(kernel_fn fn, void *ctx, size_t bytes)
{
	int reps = (int)(1e8 / (double)bytes) + 1;
	double best = 1e30;
	fn(ctx); /* warm-up: fault in, fill caches */
	for (int pass = 0; pass < 5; pass++) {
		double t0 = awq_now_s();
		for (int r = 0; r < reps; r++)
			fn(ctx);
		double dt = (awq_now_s() - t0) / reps;
		best = dt < best ? dt : best;
	}
	return best;
}

struct q4_case {
	const struct awq_cpu_kernels *k;
	struct awq_cpu_q4 q;
	struct awq_cpu_qact a;
	float *out;
	int rows;
};

static void run_q4(void *ctx)
{
	struct q4_case *c = ctx;
	c->k->q4(&c->q, &c->a, 0, c->rows, 0, c->q.tiles, c->out);
}

static void bench_q4(const struct awq_cpu_kernels *k, int64_t n, int64_t kk, int rows, const char *where)
{
	const int G = 128;
	struct awq_weight w;
	memset(&w, 0, sizeof(w));
	w.fmt = AWQ_WFMT_AWQ4;
	w.n = n;
	w.k = kk;
	w.group_size = G;
	int32_t *qw = xalloc((size_t)(kk * n / 2)), *qz = xalloc((size_t)(kk / G * n / 2));
	uint16_t *sc = xalloc((size_t)(kk / G * n) * 2);
	for (int64_t i = 0; i < kk * n / 8; i++)
		qw[i] = (int32_t)rnd();
	for (int64_t i = 0; i < kk / G * n / 8; i++)
		qz[i] = (int32_t)0x88888888u;
	for (int64_t i = 0; i < kk / G * n; i++)
		sc[i] = (uint16_t)(0x1800u | (rnd() & 0x3ffu));
	w.qweight = qw;
	w.qzeros = qz;
	w.scales = sc;
	struct q4_case c = {.k = k, .rows = rows};
	if (awq_cpu_q4_alloc(&w, &c.q)) {
		fprintf(stderr, "awq-cpu-bench: out of memory repacking\n");
		exit(1);
	}
	awq_cpu_q4_repack(&w, &c.q, 0, c.q.tiles);
	float *x = xalloc((size_t)(rows * kk) * 4);
	for (int64_t i = 0; i < rows * kk; i++)
		x[i] = (float)((int)(rnd() % 2001) - 1000) / 1000.0f;
	c.a = (struct awq_cpu_qact){.rows = rows, .k = (int)kk, .group = awq_cpu_qblock(&w)};
	c.a.q = xalloc((size_t)(rows * kk));
	c.a.scale = xalloc((size_t)(rows * kk / 8) * 4);
	c.a.sum = xalloc((size_t)(rows * kk / 8) * 4);
	k->quantize(x, 0, rows, &c.a);
	c.out = xalloc((size_t)(rows * n) * 4);
	size_t bytes = awq_cpu_q4_bytes(&w);
	double t = best_seconds(run_q4, &c, bytes);
	printf("AWQ g128 int8-act  %6lld x %-6lld rows %d  %-6s %9.2f us %8.2f GB/s\n", (long long)n, (long long)kk, rows,
	       where, t * 1e6, (double)bytes / t / 1e9);
	awq_cpu_q4_free(&c.q);
	free(qw), free(qz), free(sc), free(x), free(c.a.q), free(c.a.scale), free(c.a.sum), free(c.out);
}

struct dense_case {
	const struct awq_cpu_kernels *k;
	struct awq_weight w;
	const float *x, *xp;
	float *out;
	int rows;
};

static void run_dense(void *ctx)
{
	struct dense_case *c = ctx;
	c->k->dense(&c->w, c->x, c->xp, 0, c->rows, 0, c->w.n, c->out);
}

static void bench_bf16(const struct awq_cpu_kernels *k, int64_t n, int64_t kk, int rows, const char *where)
{
	struct dense_case c = {.k = k, .rows = rows};
	c.w.fmt = AWQ_WFMT_DENSE;
	c.w.n = n;
	c.w.k = kk;
	c.w.dtype = AWQ_DT_BF16;
	size_t bytes = (size_t)(n * kk) * 2;
	uint16_t *d = awq_cpu_alloc_huge(bytes);
	if (!d) {
		fprintf(stderr, "awq-cpu-bench: out of memory\n");
		exit(1);
	}
	for (int64_t i = 0; i < n * kk; i++)
		d[i] = awq_f32_to_bf16((float)((int)(rnd() % 2001) - 1000) / 32000.0f);
	c.w.data = d;
	float *x = xalloc((size_t)(rows * kk) * 4), *xp = xalloc((size_t)(rows * kk) * 4);
	for (int64_t i = 0; i < rows * kk; i++)
		x[i] = (float)((int)(rnd() % 2001) - 1000) / 1000.0f;
	awq_cpu_permute_bf16(x, 0, rows, (int)kk, k->bf16_block, xp);
	c.x = x;
	c.xp = xp;
	c.out = xalloc((size_t)(rows * n) * 4);
	double t = best_seconds(run_dense, &c, bytes);
	printf("BF16 dense         %6lld x %-6lld rows %d  %-6s %9.2f us %8.2f GB/s\n", (long long)n, (long long)kk, rows,
	       where, t * 1e6, (double)bytes / t / 1e9);
	free(d), free(x), free(xp), free(c.out);
}

/* The host sampler per token: awqrun's defaults, Qwen3's generation_config and top-k off, on logits
 * peaked as a language model's (a few far above the rest) and flat (all within 2 units). */
static int bench_sampler(int vocab)
{
	static const struct {
		const char *what;
		float t, p, minp;
		int k;
	} cfg[] = {{"awqrun defaults (T 0.8, top-k 40, top-p 0.95, min-p 0.05)", 0.8f, 0.95f, 0.05f, 40},
		   {"Qwen3 generation_config (T 0.6, top-k 20, top-p 0.95)", 0.6f, 0.95f, 0, 20},
		   {"top-k off (T 0.8, top-p 0.95, min-p 0.05)", 0.8f, 0.95f, 0.05f, 0},
		   {"top-k off, top-p only (T 1, top-p 0.9)", 1, 0.9f, 0, 0}};
	char err[AWQ_ERRLEN];
	float *l = xalloc((size_t)vocab * 4), *w = xalloc((size_t)vocab * 4);
	int32_t hist[64] = {0};
	for (int shape = 0; shape < 2; shape++) {
		for (int i = 0; i < vocab; i++) {
			double u = rnd() / 4294967296.0;
			l[i] = shape == 0 ? (float)(30 * u * u * u * u * u * u - 8) : (float)(2 * u);
		}
		for (size_t c = 0; c < sizeof(cfg) / sizeof(cfg[0]); c++) {
			struct awq_sampler_opts o;
			struct awq_sampler smp;
			awq_sampler_opts_default(&o);
			o.temperature = cfg[c].t, o.top_p = cfg[c].p, o.min_p = cfg[c].minp, o.top_k = cfg[c].k;
			if (awq_sampler_init(&smp, &o, vocab, err, sizeof(err))) {
				fprintf(stderr, "awq-cpu-bench: %s\n", err);
				return 1;
			}
			int n = 0;
			double t0 = awq_now_s(), t = 0;
			while (n < 5 || (t = awq_now_s() - t0) < 0.5) {
				memcpy(w, l, (size_t)vocab * 4); /* the sampler may rewrite its logits (penalty) */
				hist[n % 64] = awq_sampler_sample(&smp, w, hist, 64);
				n++;
			}
			printf("sampler %-6s logits x %d: %-58s %9.1f us per token (%d tokens)\n", shape ? "flat" : "peaked",
			       vocab, cfg[c].what, 1e6 * t / n, n);
			awq_sampler_free(&smp);
		}
	}
	free(l), free(w);
	return 0;
}

int main(int argc, char **argv)
{
	int threads = 0;
	if (argc > 1 && !strcmp(argv[1], "--sampler")) {
		char *end = NULL;
		long v = argc > 2 ? strtol(argv[2], &end, 10) : 151936;
		if (argc > 3 || (end && (end == argv[2] || *end)) || v < 2 || v > (1 << 24)) {
			fprintf(stderr, "usage: awq-cpu-bench --sampler [VOCAB (2..16777216)]\n");
			return 2;
		}
		return bench_sampler((int)v);
	}
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-t") && i + 1 < argc) {
			threads = atoi(argv[++i]);
		} else {
			fprintf(stderr, "usage: awq-cpu-bench [-t THREADS] | --sampler [VOCAB]\n");
			return 2;
		}
	}
	const struct awq_cpu_kernels *k = awq_cpu_kernels_select();
	if (!k) {
		printf("awq-cpu-bench: no SIMD kernel set for this CPU (the scalar reference is not benchmarked)\n");
		return 0;
	}
	printf("kernel set: %s (bf16 activations permuted per %d)\n", k->name, k->bf16_block);
	printf("read bandwidth: 1 thread %.1f GB/s, %s %.1f GB/s (1 GiB, huge pages, best pass)\n",
	       awq_cpu_read_bandwidth_threads(1, 0), threads ? "-t" : "all cores", awq_cpu_read_bandwidth_threads(threads, 0));
	/* cache: weights of ~0.25 MiB stay in L2 and show the kernel's instruction limit; memory: 64 MiB */
	bench_q4(k, 512, 1024, 1, "cache");
	bench_q4(k, 16384, 4096, 1, "memory");
	bench_q4(k, 512, 1024, 4, "cache");
	bench_bf16(k, 128, 1024, 1, "cache");
	bench_bf16(k, 16384, 2048, 1, "memory");
	bench_bf16(k, 128, 1024, 4, "cache");
	return 0;
}
