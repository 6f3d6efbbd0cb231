#include "cpu_membw.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "cpu_kernels.h"
#include "threadpool.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

struct bw_job {
	const uint8_t *buf;
	size_t bytes;
	uint64_t sink[64];
};

/* Sum 32-byte words with four independent chains so the loop is limited by memory, not latency. */
#if defined(__x86_64__)
__attribute__((target("avx2"))) static uint64_t read_range(const uint8_t *p, size_t n)
{
	__m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
	for (size_t i = 0; i + 128 <= n; i += 128) {
		a = _mm256_xor_si256(a, _mm256_load_si256((const __m256i *)(p + i)));
		b = _mm256_xor_si256(b, _mm256_load_si256((const __m256i *)(p + i + 32)));
		c = _mm256_xor_si256(c, _mm256_load_si256((const __m256i *)(p + i + 64)));
		d = _mm256_xor_si256(d, _mm256_load_si256((const __m256i *)(p + i + 96)));
	}
	a = _mm256_xor_si256(_mm256_xor_si256(a, b), _mm256_xor_si256(c, d));
	return (uint64_t)_mm256_extract_epi64(a, 0) ^ (uint64_t)_mm256_extract_epi64(a, 3);
}
#endif

static uint64_t read_range_plain(const uint8_t *p, size_t n)
{
	const uint64_t *q = (const uint64_t *)p;
	uint64_t a = 0, b = 0, c = 0, d = 0;
	for (size_t i = 0; i + 4 <= n / 8; i += 4) {
		a ^= q[i];
		b ^= q[i + 1];
		c ^= q[i + 2];
		d ^= q[i + 3];
	}
	return a ^ b ^ c ^ d;
}

static void bw_part(void *ctx, int b, int e, int t)
{
	struct bw_job *j = ctx;
	size_t chunk = j->bytes / 1024, lo = (size_t)b * chunk, n = (size_t)(e - b) * chunk;
	uint64_t s;
#if defined(__x86_64__)
	__builtin_cpu_init();
	s = __builtin_cpu_supports("avx2") ? read_range(j->buf + lo, n) : read_range_plain(j->buf + lo, n);
#else
	s = read_range_plain(j->buf + lo, n);
#endif
	j->sink[t & 63] ^= s;
}


double awq_cpu_read_bandwidth_gbs(struct awq_pool *pool, size_t bytes)
{
	struct bw_job j;
	memset(&j, 0, sizeof(j));
	j.bytes = bytes ? bytes : (size_t)1 << 30;
	j.bytes -= j.bytes % (1024 * 128);
	/* huge pages like the weights the kernels stream (cpu_backend.c, cpu_q4.c), so the ceiling is
	 * measured under the same conditions as the decode it is compared with */
	uint8_t *buf = awq_cpu_alloc_huge(j.bytes);
	if (!buf)
		return -1;
	memset(buf, 1, j.bytes); /* fault the pages in before timing */
	j.buf = buf;
	double best = 0;
	for (int pass = 0; pass < 6; pass++) {
		double t0 = awq_now_s();
		awq_pool_run(pool, bw_part, &j, 1024, 1);
		double dt = awq_now_s() - t0;
		if (pass > 0 && j.bytes / dt / 1e9 > best)
			best = j.bytes / dt / 1e9;
	}
	free(buf);
	return best;
}

double awq_cpu_read_bandwidth_threads(int threads, size_t bytes)
{
	struct awq_pool *pool;
	if (awq_pool_create(threads, &pool, NULL, 0))
		return -1;
	double gbs = awq_cpu_read_bandwidth_gbs(pool, bytes);
	awq_pool_destroy(pool);
	return gbs;
}
