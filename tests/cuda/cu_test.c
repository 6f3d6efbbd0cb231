#include "cu_test.h"

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "awq_test.h"
#include "awqrun.h"

#ifndef AWQ_CUDA_PLUGIN_PATH
#error "AWQ_CUDA_PLUGIN_PATH must name the built plugin"
#endif

static void *plugin;

int cu_pair_open(struct cu_pair *p)
{
	char err[AWQ_ERRLEN] = "";
	struct awq_device_desc devs[8];
	memset(p, 0, sizeof(*p));
	char buf[4096];
	const char *path = awq_test_plugin_path("libawqrun-cuda.so", AWQ_CUDA_PLUGIN_PATH, buf, sizeof(buf));
	plugin = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!plugin) {
		const char *e = dlerror();
		printf("FAIL: cannot load %s: %s\n", path, e ? e : "?");
		return 1;
	}
	const struct awq_backend_ops *(*entry)(int) = (const struct awq_backend_ops *(*)(int))dlsym(plugin, "awq_backend_entry");
	if (!entry || !(p->ops[1] = entry(AWQ_BACKEND_ABI))) {
		printf("FAIL: %s has no awq_backend_entry for ABI %d\n", path, AWQ_BACKEND_ABI);
		return 1;
	}
	int n = p->ops[1]->probe(devs, 8, err, sizeof(err));
	if (n <= 0) {
		printf("SKIP: no CUDA device: %s\n", err[0] ? err : "none found");
		return SKIP_CODE;
	}
	printf("device: %s (%s)\n", devs[0].name, devs[0].arch);
	p->ops[0] = awq_cpu_backend();
	return cu_pair_reopen(p);
}

/* A backend context takes one graph in its life (the CPU backend refuses a second prepare). */
int cu_pair_reopen(struct cu_pair *p)
{
	char err[AWQ_ERRLEN] = "";
	struct awq_backend_opts ref = {.threads = 0, .cpu_scalar = 1, .quiet = 1};
	for (int i = 0; i < 2; i++) {
		if (p->ctx[i])
			p->ops[i]->close(p->ctx[i]);
		p->ctx[i] = NULL;
		if (p->ops[i]->open(0, &ref, &p->ctx[i], err, sizeof(err))) {
			printf("FAIL: %s open: %s\n", p->ops[i]->name, err);
			return 1;
		}
	}
	return 0;
}

void cu_pair_close(struct cu_pair *p)
{
	for (int i = 0; i < 2; i++)
		if (p->ctx[i] && p->ops[i])
			p->ops[i]->close(p->ctx[i]);
	memset(p, 0, sizeof(*p));
}

uint64_t cu_rand_u64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

float cu_rand_f(uint64_t *s, float lo, float hi)
{
	return lo + (hi - lo) * (float)((cu_rand_u64(s) >> 40) * (1.0 / 16777216.0));
}

void cu_fill(float *x, size_t n, uint64_t *seed, float lo, float hi)
{
	for (size_t i = 0; i < n; i++)
		x[i] = cu_rand_f(seed, lo, hi);
}

void cu_graph_io(struct awq_graph *g, int tokens, int logits)
{
	g->tokens_in = tokens;
	g->logits_out = logits;
	g->argmax_out = -1;
}

static int compare(const struct awq_graph *g, int v, const void *ref, const void *got, int rows, double tol,
		   double *err_out)
{
	size_t n = (size_t)rows * g->values[v].cols;
	if (g->values[v].kind == AWQ_V_TOKENS) {
		*err_out = 0;
		for (size_t i = 0; i < n; i++)
			if (((const int32_t *)ref)[i] != ((const int32_t *)got)[i])
				*err_out += 1;
		return *err_out == 0;
	}
	const float *r = ref, *o = got;
	double num = 0, den = 0;
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(o[i])) {
			*err_out = INFINITY;
			return 0;
		}
		num += ((double)o[i] - r[i]) * ((double)o[i] - r[i]);
		den += (double)r[i] * r[i];
	}
	*err_out = sqrt(num / (den > 0 ? den : 1e-30));
	return *err_out <= tol;
}

static int prepare_both(struct cu_pair *p, const struct cu_case *c)
{
	char err[AWQ_ERRLEN] = "";
	struct awq_prepare_opts po = {.max_tokens = c->max_tokens, .max_ctx = c->max_ctx};
	for (int b = 0; b < 2; b++) {
		if (p->ops[b]->prepare(p->ctx[b], c->g, &po, err, sizeof(err))) {
			printf("FAIL %s: %s prepare: %s\n", c->name, p->ops[b]->name, err);
			return 1;
		}
	}
	return 0;
}

static int write_inputs(struct cu_pair *p, const struct cu_case *c, const struct awq_step *st, uint64_t *seed,
			void *buf)
{
	char err[AWQ_ERRLEN] = "";
	for (int i = 0; i < c->n_in; i++) {
		const struct cu_input *in = &c->in[i];
		int rows = awq_value_rows(c->g, in->value, st);
		size_t n = (size_t)rows * c->g->values[in->value].cols;
		if (c->g->values[in->value].kind == AWQ_V_TOKENS)
			for (size_t j = 0; j < n; j++)
				((int32_t *)buf)[j] = (int32_t)(cu_rand_u64(seed) % (uint64_t)in->vocab);
		else
			cu_fill(buf, n, seed, in->lo, in->hi);
		for (int b = 0; b < 2; b++)
			if (p->ops[b]->write_value(p->ctx[b], in->value, buf, rows, err, sizeof(err))) {
				printf("FAIL %s: write_value: %s\n", c->name, err);
				return 1;
			}
	}
	return 0;
}

static int poison(struct cu_pair *p, const struct cu_case *c, const struct awq_step *st, void *buf)
{
	char err[AWQ_ERRLEN] = "";
	for (int i = 0; i < c->n_check; i++) {
		int v = c->check[i], rows = awq_value_rows(c->g, v, st);
		size_t n = (size_t)rows * c->g->values[v].cols;
		for (size_t j = 0; j < n; j++)
			((uint32_t *)buf)[j] = c->g->values[v].kind == AWQ_V_TOKENS ? 0x7fffffffu : 0x7fc00000u;
		if (p->ops[1]->write_value(p->ctx[1], v, buf, rows, err, sizeof(err))) {
			printf("FAIL %s: poisoning: %s\n", c->name, err);
			return 1;
		}
	}
	return 0;
}

static int run_step(struct cu_pair *p, const struct cu_case *c, const struct awq_step *st, float *ref, float *got)
{
	char err[AWQ_ERRLEN] = "";
	int fails = 0;
	for (int b = 0; b < 2; b++)
		if (p->ops[b]->run(p->ctx[b], st, err, sizeof(err))) {
			printf("FAIL %s: %s run: %s\n", c->name, p->ops[b]->name, err);
			return 1;
		}
	for (int i = 0; i < c->n_check; i++) {
		int v = c->check[i], rows = awq_value_rows(c->g, v, st);
		double e;
		if (p->ops[0]->read_value(p->ctx[0], v, ref, rows, err, sizeof(err)) ||
		    p->ops[1]->read_value(p->ctx[1], v, got, rows, err, sizeof(err))) {
			printf("FAIL %s: read_value: %s\n", c->name, err);
			return 1;
		}
		int ok = compare(c->g, v, ref, got, rows, c->tol, &e);
		printf("%s %s: %s n=%d pos=%d%s rel_err=%.3g (tol %.1g)\n", ok ? "ok  " : "FAIL", c->name,
		       c->g->values[v].name, st->n_tokens, st->pos, st->all_rows ? " all" : "", e, c->tol);
		fails += !ok;
	}
	return fails;
}

int cu_run_case(struct cu_pair *p, const struct cu_case *c, const int (*steps)[3], int n_steps, uint64_t seed)
{
	int max_cols = 1;
	for (int v = 0; v < c->g->n_values; v++)
		max_cols = c->g->values[v].cols > max_cols ? c->g->values[v].cols : max_cols;
	size_t n = (size_t)c->max_tokens * max_cols;
	float *buf = malloc(n * 4), *ref = malloc(n * 4), *got = malloc(n * 4);
	int fails = 0;
	if (!buf || !ref || !got || cu_pair_reopen(p) || prepare_both(p, c)) {
		fails = 1;
		goto out;
	}
	for (int s = 0; s < n_steps; s++) {
		struct awq_step st = {.n_tokens = steps[s][0], .pos = steps[s][1], .all_rows = steps[s][2] != 0};
		/* poison first: a checked value the arena places over an input whose last reader comes
		 * before it (a residual input, say) must not clobber that input */
		if (poison(p, c, &st, buf) || write_inputs(p, c, &st, &seed, buf)) {
			fails++;
			break;
		}
		fails += run_step(p, c, &st, ref, got);
	}
out:
	/* The backends keep the graph by pointer until close (backend.h), and the caller frees it
	 * after this returns: close both contexts now. cu_pair_reopen opens new ones. */
	for (int b = 0; b < 2; b++) {
		if (p->ctx[b])
			p->ops[b]->close(p->ctx[b]);
		p->ctx[b] = NULL;
	}
	free(buf);
	free(ref);
	free(got);
	return fails;
}
