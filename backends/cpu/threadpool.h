/* A small thread pool for data-parallel kernels: the calling thread and n-1 workers, each pinned to
 * its own core with hwloc, split [0, n_items) into contiguous chunks. Workers spin briefly between
 * jobs (decode issues hundreds of short jobs per token) and then sleep. */
#ifndef AWQ_THREADPOOL_H
#define AWQ_THREADPOOL_H

#include <stddef.h>

struct awq_pool;

/* fn(ctx, begin, end, thread_index) processes items [begin, end). */
typedef void (*awq_pool_fn)(void *ctx, int begin, int end, int thread);

/* threads <= 0: one per physical core. */
int awq_pool_create(int threads, struct awq_pool **out, char *err, size_t errlen);
void awq_pool_destroy(struct awq_pool *p);
int awq_pool_threads(const struct awq_pool *p);
/* Split n_items into chunks whose size is a multiple of `align` (except the last) and wait for all. */
void awq_pool_run(struct awq_pool *p, awq_pool_fn fn, void *ctx, int n_items, int align);

#endif
