/* Measured memory read bandwidth of this machine: the ceiling decode speed is judged against. */
#ifndef AWQ_CPU_MEMBW_H
#define AWQ_CPU_MEMBW_H

#include <stddef.h>

struct awq_pool;

/* GB/s (1e9 bytes/s) for reading `bytes` (well beyond the last-level cache; 0 = 1 GiB) with every
 * thread of the pool, best of a few passes; < 0 when memory cannot be allocated. */
double awq_cpu_read_bandwidth_gbs(struct awq_pool *pool, size_t bytes);

#endif
