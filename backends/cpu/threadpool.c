#include "threadpool.h"

#include <hwloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ volatile("yield")
#else
#define cpu_relax() ((void)0)
#endif

#define SPIN_ITERS 200000

struct worker {
	struct awq_pool *pool;
	int index;
	pthread_t thread;
};

struct awq_pool {
	int n;
	struct worker *workers;
	hwloc_topology_t topo;
	int have_topo;
	/* current job */
	awq_pool_fn fn;
	void *ctx;
	int n_items, align;
	atomic_uint generation;
	atomic_int pending;
	atomic_int stop;
	pthread_mutex_t mu;
	pthread_cond_t wake;
};

static void chunk(const struct awq_pool *p, int t, int *b, int *e)
{
	int units = (p->n_items + p->align - 1) / p->align;
	int per = units / p->n, extra = units % p->n;
	int ub = t * per + (t < extra ? t : extra);
	int ue = ub + per + (t < extra ? 1 : 0);
	*b = ub * p->align;
	*e = ue * p->align < p->n_items ? ue * p->align : p->n_items;
}

static void do_part(struct awq_pool *p, int t)
{
	int b, e;
	chunk(p, t, &b, &e);
	if (b < e)
		p->fn(p->ctx, b, e, t);
}

static void pin(struct awq_pool *p, int index)
{
	if (!p->have_topo)
		return;
	int cores = hwloc_get_nbobjs_by_type(p->topo, HWLOC_OBJ_CORE);
	if (cores <= 0)
		return;
	hwloc_obj_t core = hwloc_get_obj_by_type(p->topo, HWLOC_OBJ_CORE, (unsigned)(index % cores));
	if (!core || !core->cpuset)
		return;
	hwloc_bitmap_t set = hwloc_bitmap_dup(core->cpuset);
	hwloc_bitmap_singlify(set);
	hwloc_set_cpubind(p->topo, set, HWLOC_CPUBIND_THREAD); /* best effort: containers may refuse */
	hwloc_bitmap_free(set);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct awq_pool *p = w->pool;
	unsigned seen = 0;
	pin(p, w->index);
	for (;;) {
		int spins = 0;
		while (atomic_load_explicit(&p->generation, memory_order_acquire) == seen &&
		       !atomic_load(&p->stop)) {
			if (++spins < SPIN_ITERS) {
				cpu_relax();
				continue;
			}
			pthread_mutex_lock(&p->mu);
			while (atomic_load(&p->generation) == seen && !atomic_load(&p->stop))
				pthread_cond_wait(&p->wake, &p->mu);
			pthread_mutex_unlock(&p->mu);
		}
		if (atomic_load(&p->stop))
			return NULL;
		seen = atomic_load(&p->generation);
		do_part(p, w->index);
		atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel);
	}
}

int awq_pool_create(int threads, struct awq_pool **out, char *err, size_t errlen)
{
	struct awq_pool *p = calloc(1, sizeof(*p));
	if (!p)
		return awq_err(err, errlen, AWQ_ENOMEM, "out of memory creating the thread pool");
	if (hwloc_topology_init(&p->topo) == 0) {
		if (hwloc_topology_load(p->topo) == 0)
			p->have_topo = 1;
		else
			hwloc_topology_destroy(p->topo);
	}
	if (threads <= 0) {
		threads = p->have_topo ? hwloc_get_nbobjs_by_type(p->topo, HWLOC_OBJ_CORE) : 1;
		if (threads <= 0)
			threads = 1;
	}
	p->n = threads;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->wake, NULL);
	p->workers = calloc((size_t)threads, sizeof(*p->workers));
	if (!p->workers) {
		awq_pool_destroy(p);
		return awq_err(err, errlen, AWQ_ENOMEM, "out of memory creating the thread pool");
	}
	pin(p, 0);
	for (int i = 1; i < threads; i++) {
		p->workers[i].pool = p;
		p->workers[i].index = i;
		if (pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i]) != 0) {
			p->n = i;
			awq_pool_destroy(p);
			return awq_err(err, errlen, AWQ_EDEVICE, "could not start CPU worker thread %d", i);
		}
	}
	*out = p;
	return 0;
}

void awq_pool_destroy(struct awq_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	atomic_store(&p->stop, 1);
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->mu);
	for (int i = 1; i < p->n; i++)
		if (p->workers && p->workers[i].pool)
			pthread_join(p->workers[i].thread, NULL);
	free(p->workers);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->wake);
	if (p->have_topo)
		hwloc_topology_destroy(p->topo);
	free(p);
}

int awq_pool_threads(const struct awq_pool *p)
{
	return p->n;
}

void awq_pool_run(struct awq_pool *p, awq_pool_fn fn, void *ctx, int n_items, int align)
{
	if (n_items <= 0)
		return;
	p->fn = fn;
	p->ctx = ctx;
	p->n_items = n_items;
	p->align = align > 0 ? align : 1;
	if (p->n == 1 || n_items <= p->align) {
		fn(ctx, 0, n_items, 0);
		return;
	}
	atomic_store(&p->pending, p->n - 1);
	pthread_mutex_lock(&p->mu);
	atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->mu);
	do_part(p, 0);
	/* A worker that lost its core to another process would make a pure spin burn a whole time
	 * slice; after a short spin give the core away instead. */
	for (int spins = 0; atomic_load_explicit(&p->pending, memory_order_acquire) > 0; spins++) {
		if (spins < 4096)
			cpu_relax();
		else
			sched_yield();
	}
}
