/* Measured memory read bandwidth of this machine: the ceiling decode speed is judged against. */
#ifndef AWQ_CPU_MEMBW_H
#define AWQ_CPU_MEMBW_H

#include <stddef.h>

struct awq_pool;

/* GB/s (1e9 bytes/s) for reading `bytes` (0 = 1 GiB, well beyond any last-level cache) with every
 * thread of the pool, vectorized, best of a few passes; < 0 when the buffer cannot be had. */
double awq_cpu_read_bandwidth_gbs(struct awq_pool *pool, size_t bytes);
/* The same on a pool of `threads` pinned threads made for the test (<= 0: one per core). */
double awq_cpu_read_bandwidth_threads(int threads, size_t bytes);

#endif
