#include "vk_test.h"

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "awq_test.h"
#include "dtype.h"
#include "error.h"

uint64_t vt_rand_u64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

float vt_rand(uint64_t *s, float lo, float hi)
{
	return lo + (hi - lo) * (float)((vt_rand_u64(s) >> 40) * (1.0 / 16777216.0));
}

int vt_load(struct vt_pair *p)
{
	char err[AWQ_ERRLEN];
	struct awq_device_desc d[8];
	memset(p, 0, sizeof(*p));
	char buf[4096];
	const char *path = awq_test_plugin_path("libawqrun-vulkan.so", AWQ_VK_PLUGIN_PATH, buf, sizeof(buf));
	p->lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!p->lib) {
		printf("SKIP: cannot load %s: %s\n", path, dlerror());
		return VK_SKIP;
	}
	const struct awq_backend_ops *(*entry)(int) =
		(const struct awq_backend_ops *(*)(int))dlsym(p->lib, "awq_backend_entry");
	p->ops[1] = entry ? entry(AWQ_BACKEND_ABI) : NULL;
	p->ops[0] = awq_cpu_backend();
	if (!p->ops[1]) {
		fprintf(stderr, "FAIL: the plugin has no awq_backend_entry for ABI %d\n", AWQ_BACKEND_ABI);
		return 1;
	}
	int n = p->ops[1]->probe(d, 8, err, sizeof(err));
	if (n <= 0) {
		printf("SKIP: no Vulkan device: %s\n", err);
		return VK_SKIP;
	}
	printf("Vulkan device 0: %s (%s)\n", d[0].name, d[0].arch);
	void *ctx;
	struct awq_backend_info info;
	struct awq_backend_opts o = {.quiet = 0};
	if (p->ops[1]->open(0, &o, &ctx, err, sizeof(err))) {
		fprintf(stderr, "FAIL: %s\n", err);
		return 1;
	}
	p->ops[1]->info(ctx, &info);
	p->coopmat = strstr(info.kernels, "NV cooperative matrix fp16") != NULL;
	p->q4_f16 = strstr(info.kernels, "W4A16 fp16-math") != NULL;
	p->q8 = strstr(info.kernels, "int8-dot") != NULL;
	printf("%s\n", info.kernels);
	p->ops[1]->close(ctx);
	return 0;
}

void vt_unload(struct vt_pair *p)
{
	/* the plugin stays loaded: validation layers may still hold callbacks into it at exit */
	(void)p;
}

static double rel_l2(const float *a, const float *ref, size_t n, int *bad)
{
	double num = 0, den = 0;
	*bad = 0;
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(a[i]))
			(*bad)++;
		double d = (double)a[i] - ref[i];
		num += d * d;
		den += (double)ref[i] * ref[i];
	}
	return sqrt(num / (den > 0 ? den : 1));
}

static int open_both(struct vt_pair *p, const struct vt_case *c, char *err, size_t errlen)
{
	struct awq_backend_opts o = {.threads = 1, .cpu_scalar = 1, .quiet = 0};
	struct awq_prepare_opts po = {.max_tokens = c->max_tokens, .max_ctx = c->max_ctx};
	for (int b = 0; b < 2; b++) {
		int rc = p->ops[b]->open(0, &o, &p->ctx[b], err, errlen);
		if (!rc)
			rc = p->ops[b]->prepare(p->ctx[b], c->g, &po, err, errlen);
		if (rc)
			return rc;
	}
	return 0;
}

static void close_both(struct vt_pair *p)
{
	for (int b = 0; b < 2; b++)
		if (p->ctx[b])
			p->ops[b]->close(p->ctx[b]);
	p->ctx[0] = p->ctx[1] = NULL;
}

static int write_inputs(struct vt_pair *p, const struct vt_case *c, int rows, uint64_t *seed, char *err,
			size_t errlen)
{
	for (int i = 0; i < c->n_in; i++) {
		const struct vt_input *in = &c->in[i];
		const struct awq_value *v = &c->g->values[in->value];
		size_t n = (size_t)rows * v->cols;
		float *f = malloc(n * sizeof(float));
		if (!f)
			return awq_err(err, errlen, AWQ_ENOMEM, "out of memory");
		for (size_t j = 0; j < n; j++) {
			if (v->kind == AWQ_V_TOKENS)
				((int32_t *)f)[j] = (int32_t)(vt_rand_u64(seed) % (uint64_t)in->vocab);
			else
				f[j] = vt_rand(seed, in->lo, in->hi);
		}
		int rc = 0;
		for (int b = 0; b < 2 && !rc; b++)
			rc = p->ops[b]->write_value(p->ctx[b], in->value, f, rows, err, errlen);
		free(f);
		if (rc)
			return rc;
	}
	return 0;
}

static int poison(struct vt_pair *p, const struct vt_case *c, int rows, char *err, size_t errlen)
{
	size_t n = (size_t)rows * c->g->values[c->check].cols;
	float *f = malloc(n * sizeof(float));
	if (!f)
		return awq_err(err, errlen, AWQ_ENOMEM, "out of memory");
	for (size_t j = 0; j < n; j++)
		f[j] = NAN;
	if (c->g->values[c->check].kind == AWQ_V_TOKENS)
		for (size_t j = 0; j < n; j++)
			((int32_t *)f)[j] = -12345;
	int rc = p->ops[1]->write_value(p->ctx[1], c->check, f, rows, err, errlen);
	free(f);
	return rc;
}

static int compare(struct vt_pair *p, const struct vt_case *c, const int *st, char *err, size_t errlen)
{
	const struct awq_step s = {.n_tokens = st[0], .pos = st[1], .all_rows = st[2] != 0};
	const int rows = awq_value_rows(c->g, c->check, &s);
	const size_t n = (size_t)rows * c->g->values[c->check].cols;
	float *a = malloc(n * sizeof(float)), *ref = malloc(n * sizeof(float));
	int rc = a && ref ? 0 : awq_err(err, errlen, AWQ_ENOMEM, "out of memory"), fails = 0;
	if (!rc)
		rc = p->ops[0]->read_value(p->ctx[0], c->check, ref, rows, err, errlen);
	if (!rc)
		rc = p->ops[1]->read_value(p->ctx[1], c->check, a, rows, err, errlen);
	if (!rc && c->g->values[c->check].kind == AWQ_V_TOKENS) {
		int diff = memcmp(a, ref, n * 4) != 0;
		printf("  %-34s step (%d tokens, pos %d%s): ids %s\n", c->name, st[0], st[1], st[2] ? ", all rows" : "",
		       diff ? "DIFFER" : "match");
		fails = diff;
	} else if (!rc) {
		int bad;
		double e = rel_l2(a, ref, n, &bad);
		fails = bad || !(e <= c->tol);
		printf("  %-34s step (%d tokens, pos %d%s): rel err %.2e (tol %.0e)%s %s\n", c->name, st[0], st[1],
		       st[2] ? ", all rows" : "", e, c->tol, bad ? ", non-finite/unwritten values" : "", fails ? "FAIL" : "ok");
	}
	free(a);
	free(ref);
	return rc ? rc : fails;
}

int vt_run_case(struct vt_pair *p, const struct vt_case *c, const int (*steps)[3], int n_steps, uint64_t seed)
{
	char err[AWQ_ERRLEN] = "";
	const int tokens = c->g->values[c->check].kind == AWQ_V_TOKENS;
	int *pin = tokens ? &c->g->argmax_out : &c->g->logits_out, saved = *pin, fails = 0;
	*pin = c->check; /* pinned: the planner never lets another value overlap it */
	int rc = open_both(p, c, err, sizeof(err));
	for (int i = 0; i < n_steps && !rc; i++) {
		const struct awq_step s = {.n_tokens = steps[i][0], .pos = steps[i][1], .all_rows = steps[i][2] != 0};
		rc = write_inputs(p, c, s.n_tokens, &seed, err, sizeof(err));
		if (!rc)
			rc = poison(p, c, awq_value_rows(c->g, c->check, &s), err, sizeof(err));
		for (int b = 0; b < 2 && !rc; b++)
			rc = p->ops[b]->run(p->ctx[b], &s, err, sizeof(err));
		if (!rc) {
			int f = compare(p, c, steps[i], err, sizeof(err));
			if (f < 0)
				rc = f;
			else
				fails += f;
		}
	}
	close_both(p);
	*pin = saved;
	if (rc) {
		printf("  %-34s FAIL: %s\n", c->name, err);
		return 1;
	}
	return fails;
}

/* Test weights: allocations kept in one list, freed together by vt_free_all. */
static void **allocs;
static size_t n_allocs, cap_allocs;

void *vt_alloc(size_t bytes)
{
	void *p = calloc(1, bytes ? bytes : 1);
	if (p && n_allocs == cap_allocs) {
		size_t cap = cap_allocs ? 2 * cap_allocs : 256;
		void **a = realloc(allocs, cap * sizeof(*a));
		if (a) {
			allocs = a;
			cap_allocs = cap;
		}
	}
	if (!p || n_allocs == cap_allocs) {
		fprintf(stderr, "vulkan tests: out of memory\n");
		exit(1);
	}
	allocs[n_allocs++] = p;
	return p;
}

void vt_free_all(void)
{
	while (n_allocs)
		free(allocs[--n_allocs]);
	free(allocs);
	allocs = NULL;
	cap_allocs = 0;
}

void *vt_rand_floats(uint64_t *seed, size_t n, enum awq_dtype dt, float lo, float hi)
{
	void *p = vt_alloc(n * awq_dtype_size(dt));
	for (size_t i = 0; i < n; i++) {
		float f = vt_rand(seed, lo, hi);
		awq_store_float(p, dt, i, f);
	}
	return p;
}

static void fill_dense(uint64_t *seed, struct awq_weight *w, int n, int k, enum awq_dtype dt, float amp,
		       enum awq_dtype bias)
{
	snprintf(w->name, sizeof(w->name), "dense_%s_%dx%d", awq_dtype_name(dt), n, k);
	w->fmt = AWQ_WFMT_DENSE;
	w->n = n;
	w->k = k;
	w->dtype = dt;
	w->data = vt_rand_floats(seed, (size_t)n * k, dt, -amp, amp);
	if (bias != AWQ_DT_COUNT) {
		w->bias = vt_rand_floats(seed, (size_t)n, bias, -0.5f, 0.5f);
		w->bias_dtype = bias;
	}
}

static void fill_awq4(uint64_t *seed, struct awq_weight *w, int n, int k, int group, int zero_point, int bias)
{
	snprintf(w->name, sizeof(w->name), "awq_%dx%d_g%d", n, k, group);
	w->fmt = AWQ_WFMT_AWQ4;
	w->n = n;
	w->k = k;
	w->group_size = group;
	w->sym_zero = 8;
	int32_t *q = vt_alloc((size_t)k * n / 8 * 4);
	for (size_t i = 0; i < (size_t)k * n / 8; i++)
		q[i] = (int32_t)vt_rand_u64(seed);
	w->qweight = q;
	if (zero_point) {
		int32_t *z = vt_alloc((size_t)(k / group) * n / 8 * 4);
		for (size_t i = 0; i < (size_t)(k / group) * n / 8; i++)
			z[i] = (int32_t)vt_rand_u64(seed);
		w->qzeros = z;
	}
	uint16_t *s = vt_alloc((size_t)(k / group) * n * 2);
	for (size_t i = 0; i < (size_t)(k / group) * n; i++)
		s[i] = awq_f32_to_f16(vt_rand(seed, 0.002f, 0.02f));
	w->scales = s;
	if (bias) {
		w->bias = vt_rand_floats(seed, (size_t)n, AWQ_DT_F16, -0.5f, 0.5f);
		w->bias_dtype = AWQ_DT_F16;
	}
}

struct awq_weight *vt_dense(uint64_t *seed, int n, int k, enum awq_dtype dt, float amp, enum awq_dtype bias)
{
	struct awq_weight *w = vt_alloc(sizeof(*w));
	fill_dense(seed, w, n, k, dt, amp, bias);
	return w;
}

struct awq_weight *vt_awq4(uint64_t *seed, int n, int k, int group, int zero_point, int bias)
{
	struct awq_weight *w = vt_alloc(sizeof(*w));
	fill_awq4(seed, w, n, k, group, zero_point, bias);
	return w;
}

struct awq_weight *vt_weights(uint64_t *seed, int count, int n, int k, const struct vt_wspec *f)
{
	struct awq_weight *w = vt_alloc((size_t)count * sizeof(*w));
	for (int i = 0; i < count; i++) {
		if (f->awq)
			fill_awq4(seed, &w[i], n, k, f->group, f->zero_point, 0);
		else
			fill_dense(seed, &w[i], n, k, f->dtype, f->amp, AWQ_DT_COUNT);
	}
	return w;
}
