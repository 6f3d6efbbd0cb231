/* `awqrun compare`: bench results from several devices or machines side by side — the decode and
 * prefill tokens/s of each precision, the AWQ speedup over 16-bit, what bounds decode and how close it
 * came to the device's bandwidth — as a table, and optionally an SVG bar chart. Input: JSON files
 * written by `awqrun bench --json`, a fresh run on every present backend (--synthetic/-m), and
 * modeled rows for GPUs of the capability database that are not present (--gpu). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "awqrun_caps.h"
#include "bench.h"
#include "commands.h"

#define MAX_ROWS 1024
#define MAX_GPUS 16

static void usage(void)
{
	printf("usage: awqrun compare [FILE.json ...] [--synthetic NAME | -m DIR] [--gpu LIST] [options]\n"
	       "  FILE.json          results of `awqrun bench --json` (from this or other machines)\n"
	       "  --synthetic NAME   also run this synthetic model now (or -m DIR for a checkpoint)\n"
	       "  --precision LIST   precisions for the run and the modeled rows (default awq,bf16)\n"
	       "  --backend NAME     backends for the run: all (default), cpu, cuda, vulkan; none: no run, the\n"
	       "                     model only names what --gpu models\n"
	       "  --device N         device index within the backend for the run\n"
	       "  -p N / -n N / -r N prompt length, decode tokens, repeats for the run (default 128/64/2)\n"
	       "  --bw GBS           read bandwidth for the run instead of measuring it\n"
	       "  --gpu LIST         add rows modeled by the performance model for database GPUs\n"
	       "                     (t4, l40s, rtx-4090, h100, ...; `awqrun caps --list-gpus`), marked modeled\n"
	       "  --svg FILE         write a chart: decode tokens/s per device and precision, bandwidth ceiling\n");
}

static const char *jstr(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : "";
}

static double jnum(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsNumber(v) ? v->valuedouble : 0.0;
}

/* Append the results of one `bench --json` file (schema 1 or 2); returns rows added or -1. */
static int load_json(const char *path, struct bench_result *rows, int max)
{
	char *text = NULL;
	size_t len = 0;
	if (awq_cli_read_file(path, &text, &len) || len == 0) {
		fprintf(stderr, "awqrun compare: %s is missing, unreadable or empty\n", path);
		free(text);
		return -1;
	}
	cJSON *root = cJSON_Parse(text);
	free(text);
	const cJSON *res = root ? cJSON_GetObjectItemCaseSensitive(root, "results") : NULL;
	if (!cJSON_IsArray(res)) {
		fprintf(stderr, "awqrun compare: %s is not awqrun bench JSON (no \"results\" array)\n", path);
		cJSON_Delete(root);
		return -1;
	}
	int n = 0;
	const cJSON *r;
	cJSON_ArrayForEach(r, res)
	{
		if (n >= max) {
			fprintf(stderr, "awqrun compare: more than %d results; the rest of %s is left out\n", max, path);
			break;
		}
		struct bench_result *b = &rows[n];
		memset(b, 0, sizeof(*b));
		snprintf(b->model, sizeof(b->model), "%s", jstr(r, "model"));
		snprintf(b->precision, sizeof(b->precision), "%s", jstr(r, "precision"));
		snprintf(b->backend, sizeof(b->backend), "%s", jstr(r, "backend"));
		snprintf(b->device, sizeof(b->device), "%s", jstr(r, "device"));
		snprintf(b->test, sizeof(b->test), "%s", jstr(r, "test"));
		snprintf(b->bound, sizeof(b->bound), "%s", jstr(r, "bound"));
		snprintf(b->method, sizeof(b->method), "%s", jstr(r, "method")[0] ? jstr(r, "method") : "llama");
		b->modeled = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "modeled"));
		b->past_trained = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "past_trained_positions"));
		b->trained_positions = (int)jnum(r, "trained_positions");
		b->device_index = (int)jnum(r, "device_index");
		b->n_prompt = (int)jnum(r, "n_prompt");
		b->n_gen = (int)jnum(r, "n_gen");
		b->tok_s = jnum(r, "tok_s");
		b->tok_s_stddev = jnum(r, "tok_s_stddev");
		b->predicted_tok_s = jnum(r, "predicted_tok_s");
		b->bytes_per_token = jnum(r, "bytes_per_token");
		b->gbs = jnum(r, "gbs");
		b->bw_gbs = jnum(r, "bw_gbs");
		if (!b->model[0] || !b->precision[0] || !b->test[0] || !(b->tok_s > 0)) {
			fprintf(stderr, "awqrun compare: %s: result %d lacks model, precision, test or tok_s\n", path, n);
			cJSON_Delete(root);
			return -1;
		}
		n++;
	}
	cJSON_Delete(root);
	return n;
}

static int is_awq(const char *p)
{
	return strstr(p, "awq") != NULL;
}

static enum awq_scheme scheme_of(const char *prec)
{
	if (is_awq(prec))
		return AWQ_SCHEME_AWQ4;
	if (strstr(prec, "fp8"))
		return AWQ_SCHEME_FP8;
	return strstr(prec, "f16") && !strstr(prec, "bf16") ? AWQ_SCHEME_FP16 : AWQ_SCHEME_BF16;
}

/* Rows of the performance model for database GPU `gpu`: for each model name that is a preset (or
 * the -m model), each precision, a decode and a prefill row of the lengths the other rows used. */
static int model_gpu(const char *gpu, char **models, int n_models, awq_model *dir_model, const char *dir_name,
		     char **precs, int n_precs, int n_prompt, int n_gen, struct bench_result *rows, int max)
{
	struct awq_device_caps d;
	char err[AWQ_ERRLEN];
	int n = 0;
	if (awq_caps_from_db(gpu, &d, err, sizeof(err))) {
		fprintf(stderr, "awqrun compare: %s\n", err);
		return -1;
	}
	for (int i = 0; i < n_models; i++) {
		awq_model *m = NULL;
		int own = 0;
		if (dir_model && !strcmp(models[i], dir_name)) {
			m = dir_model;
		} else if (awq_caps_model_shape(models[i], &m, err, sizeof(err)) == 0) {
			own = 1;
		} else {
			continue; /* not a preset: add_modeled said so */
		}
		for (int p = 0; p < n_precs && n + 2 <= max; p++) {
			struct awq_perf_query q = {.scheme = scheme_of(precs[p]), .batch = 1, .n_prompt = n_prompt,
						   .ctx = n_gen / 2 > 0 ? n_gen / 2 : 1, .chunk = n_prompt};
			struct awq_perf_result r;
			if (awq_perf_predict(&d, m, &q, &r, err, sizeof(err)) || r.limit == AWQ_LIMIT_UNKNOWN ||
			    r.limit == AWQ_LIMIT_UNSUPPORTED)
				continue;
			for (int k = 0; k < 2; k++) {
				struct bench_result *b = &rows[n++];
				const struct awq_perf_phase *ph = k ? &r.prefill : &r.decode;
				memset(b, 0, sizeof(*b));
				snprintf(b->model, sizeof(b->model), "%s", models[i]);
				snprintf(b->precision, sizeof(b->precision), "%s",
					 q.scheme == AWQ_SCHEME_AWQ4 ? "awq-int4-g128" : awq_scheme_name(q.scheme));
				snprintf(b->backend, sizeof(b->backend), "%s", d.backend);
				snprintf(b->device, sizeof(b->device), "%s", d.name);
				snprintf(b->method, sizeof(b->method), "llama");
				snprintf(b->test, sizeof(b->test), "%s%d", k ? "pp" : "tg", k ? n_prompt : n_gen);
				snprintf(b->bound, sizeof(b->bound), "%s",
					 r.limit == AWQ_LIMIT_MEMORY ? "no fit" : awq_limit_name(ph->limit));
				b->modeled = 1;
				b->n_devices = 1;
				b->n_prompt = k ? n_prompt : 0;
				b->n_gen = k ? 0 : n_gen;
				b->tok_s = b->predicted_tok_s = ph->tok_s;
				b->bytes_per_token = k ? ph->bytes / n_prompt : ph->bytes;
				b->bw_gbs = d.peak_bw_gbs.v;
				b->gbs = k ? 0 : b->bytes_per_token * b->tok_s / 1e9;
			}
		}
		if (own)
			awq_model_free(m);
	}
	return n;
}

static int prec_index(struct cmp_table *t, const char *p)
{
	for (int i = 0; i < t->n_precs; i++)
		if (!strcmp(t->precs[i], p))
			return i;
	if (t->n_precs == CMP_MAX_PRECS)
		return -1;
	snprintf(t->precs[t->n_precs], sizeof(t->precs[0]), "%s", p);
	return t->n_precs++;
}

/* Precisions in a fixed order: 16-bit formats, then FP8, then AWQ; the groups' columns follow. */
static void order_precs(struct cmp_table *t, const struct bench_result *r, int n)
{
	for (int pass = 0; pass < 3; pass++)
		for (int i = 0; i < n; i++) {
			int kind = is_awq(r[i].precision) ? 2 : strstr(r[i].precision, "fp8") ? 1 : 0;
			if (kind == pass)
				prec_index(t, r[i].precision);
		}
}

/* Lines of one model together (in the order models first appear), measured before modeled; a
 * stable insertion sort keeps the input order otherwise. */
static void sort_groups(struct cmp_table *t)
{
	int *rank = malloc((size_t)(t->n > 0 ? t->n : 1) * sizeof(int));
	struct cmp_group tmp;
	if (!rank)
		return;
	for (int i = 0; i < t->n; i++) {
		int j = 0;
		while (strcmp(t->g[j].model, t->g[i].model))
			j++;
		rank[i] = j * 2 + t->g[i].modeled;
	}
	for (int i = 1; i < t->n; i++) {
		int k = rank[i], j = i - 1;
		tmp = t->g[i];
		while (j >= 0 && rank[j] > k) {
			t->g[j + 1] = t->g[j];
			rank[j + 1] = rank[j];
			j--;
		}
		t->g[j + 1] = tmp;
		rank[j + 1] = k;
	}
	free(rank);
}

static void build_groups(const struct bench_result *r, int n, struct cmp_table *t, int max)
{
	order_precs(t, r, n);
	for (int i = 0; i < n; i++) {
		int j, p = prec_index(t, r[i].precision);
		if (p < 0 || !strcmp(r[i].method, "qwen"))
			continue;
		for (j = 0; j < t->n; j++)
			if (!strcmp(t->g[j].model, r[i].model) && !strcmp(t->g[j].backend, r[i].backend) &&
			    !strcmp(t->g[j].device, r[i].device) && t->g[j].modeled == r[i].modeled)
				break;
		if (j == t->n) {
			if (t->n == max)
				continue;
			struct cmp_group *g = &t->g[t->n++];
			memset(g, 0, sizeof(*g));
			snprintf(g->model, sizeof(g->model), "%s", r[i].model);
			snprintf(g->backend, sizeof(g->backend), "%s", r[i].backend);
			snprintf(g->device, sizeof(g->device), "%s", r[i].device);
			g->modeled = r[i].modeled;
		}
		struct cmp_group *g = &t->g[j];
		if (r[i].bw_gbs > g->bw_gbs)
			g->bw_gbs = r[i].bw_gbs;
		if (r[i].n_gen > 0) {
			g->tg[p] = r[i].tok_s;
			g->bytes[p] = r[i].bytes_per_token;
			snprintf(g->bound[p], sizeof(g->bound[p]), "%s", r[i].bound);
		} else {
			g->pp[p] = r[i].tok_s;
		}
	}
	sort_groups(t);
}

double cmp_ceiling(const struct cmp_group *g, int p)
{
	return g->bw_gbs > 0 && g->bytes[p] > 0 ? g->bw_gbs * 1e9 / g->bytes[p] : 0;
}

static void cell(char *buf, size_t len, double v)
{
	if (v > 0)
		snprintf(buf, len, v < 100 ? "%.1f" : "%.0f", v);
	else
		snprintf(buf, len, "-");
}

/* What bounds decode, per precision when they differ ("bf16 no fit, awq-int4-g128 bandwidth"). */
static void bound_cell(char *buf, size_t len, const struct cmp_table *t, const struct cmp_group *g)
{
	int n = 0, same = 1;
	const char *first = NULL;
	for (int p = 0; p < t->n_precs; p++)
		if (g->bound[p][0]) {
			same &= !first || !strcmp(first, g->bound[p]);
			first = first ? first : g->bound[p];
		}
	if (!first) {
		snprintf(buf, len, "-");
		return;
	}
	if (same) {
		snprintf(buf, len, "%s", first);
		return;
	}
	for (int p = 0; p < t->n_precs; p++) {
		if (!g->bound[p][0])
			continue;
		size_t used = strlen(buf);
		int k = snprintf(buf + used, len - used, "%s%s %s", n++ ? ", " : "", t->precs[p], g->bound[p]);
		if (k < 0 || (size_t)k >= len - used)
			break;
	}
}

static void print_table(const struct cmp_table *t)
{
	int awq = -1, b16 = -1;
	for (int p = 0; p < t->n_precs; p++)
		if (is_awq(t->precs[p]) && awq < 0)
			awq = p;
		else if (!is_awq(t->precs[p]) && !strstr(t->precs[p], "fp8") && b16 < 0)
			b16 = p;
	printf("| model | device | backend | source |");
	for (int p = 0; p < t->n_precs; p++)
		printf(" decode %s |", t->precs[p]);
	printf(" AWQ speedup |");
	for (int p = 0; p < t->n_precs; p++)
		printf(" prefill %s |", t->precs[p]);
	printf(" AWQ decode %% of BW | decode bound |\n|---|---|---|---|");
	for (int p = 0; p < 2 * t->n_precs + 2; p++)
		printf("---:|");
	printf("---|\n");
	for (int i = 0; i < t->n; i++) {
		const struct cmp_group *g = &t->g[i];
		char c[32], s[32] = "-", f[32] = "-";
		printf("| %s | %s | %s | %s |", g->model, g->device, g->backend, g->modeled ? "modeled" : "measured");
		for (int p = 0; p < t->n_precs; p++) {
			cell(c, sizeof(c), g->tg[p]);
			printf(" %s%s |", c, !strcmp(g->bound[p], "no fit") ? " (no fit)" : "");
		}
		if (awq >= 0 && b16 >= 0 && g->tg[awq] > 0 && g->tg[b16] > 0)
			snprintf(s, sizeof(s), "%.2fx", g->tg[awq] / g->tg[b16]);
		printf(" %s |", s);
		for (int p = 0; p < t->n_precs; p++) {
			cell(c, sizeof(c), g->pp[p]);
			printf(" %s |", c);
		}
		if (awq >= 0 && cmp_ceiling(g, awq) > 0 && g->tg[awq] > 0)
			snprintf(f, sizeof(f), "%.0f%%", 100.0 * g->tg[awq] / cmp_ceiling(g, awq));
		char bound[160] = "";
		bound_cell(bound, sizeof(bound), t, g);
		printf(" %s | %s |\n", f, bound);
	}
	printf("\nmodeled: the performance model (awqrun caps) for a GPU of the database, not a measurement; its %% "
	       "of BW is of the peak bandwidth. measured %% of BW: of the device's measured read bandwidth.\n");
}

struct cmp_args {
	const char *svg, *synth, *dir, *backend, *gpus;
	char precs[128];
	struct bench_opts o;
};

/* The run's model in the table: the preset, or the checkpoint directory's last component. */
static const char *model_label(const struct cmp_args *a)
{
	if (!a->dir)
		return a->synth;
	const char *s = strrchr(a->dir, '/');
	return s && s[1] ? s + 1 : a->dir;
}

/* Live runs on every requested backend device; returns rows added. */
static int run_live(const struct cmp_args *a, char **pl, int np, awq_model **dir_model, struct bench_result *rows,
		    int max)
{
	char err[AWQ_ERRLEN], bbuf[64], *bl[4];
	int n = 0, nb = 0;
	snprintf(bbuf, sizeof(bbuf), "%s", !strcmp(a->backend, "all") ? "cpu,cuda,vulkan" : a->backend);
	for (char *t = strtok(bbuf, ","); t && nb < 4; t = strtok(NULL, ","))
		bl[nb++] = t;
	for (int p = 0; p < (a->dir ? 1 : np); p++) {
		awq_model *m = NULL;
		if ((a->dir ? awq_model_load(a->dir, &m, err, sizeof(err))
			    : awq_model_synthetic(a->synth, pl[p], 1, &m, err, sizeof(err))) != 0) {
			fprintf(stderr, "awqrun compare: %s\n", err);
			return -1;
		}
		for (int b = 0; b < nb; b++) {
			int idx[8], nd = a->o.device >= 0 ? 1 : bench_backend_devices(bl[b], idx, 8);
			if (a->o.device >= 0)
				idx[0] = a->o.device;
			for (int d = 0; d < nd; d++) {
				struct bench_opts o = a->o;
				o.device = idx[d];
				int k = bench_model(m, model_label(a), bl[b], &o, rows + n, max - n, err, sizeof(err));
				if (k < 0)
					fprintf(stderr, "awqrun compare: %s skipped: %s\n", bl[b], err);
				else
					n += k;
			}
		}
		if (a->dir)
			*dir_model = m;
		else
			awq_model_free(m);
	}
	return n;
}

/* Modeled rows for every --gpu entry, for the models of the other rows. */
static int add_modeled(const struct cmp_args *a, char **pl, int np, awq_model *dir_model, struct bench_result *rows,
		       int n, int max)
{
	char gbuf[512], *gl[MAX_GPUS], *models[32];
	int ng = 0, nm = 0, n_prompt = a->o.prompts[0], n_gen = a->o.gens[0], added = 0;
	if (a->synth)
		models[nm++] = (char *)a->synth;
	if (a->dir)
		models[nm++] = (char *)model_label(a);
	for (int i = 0; i < n; i++) {
		int seen = 0;
		for (int j = 0; j < nm; j++)
			seen |= !strcmp(models[j], rows[i].model);
		if (!seen && nm < 32)
			models[nm++] = rows[i].model;
		/* Lengths of the measured rows, so modeled and measured rows compare the same test. */
		if (rows[i].n_gen > 0 && !rows[i].n_prompt)
			n_gen = rows[i].n_gen;
		else if (rows[i].n_prompt > 0 && !rows[i].n_gen)
			n_prompt = rows[i].n_prompt;
	}
	int presets = 0;
	for (int j = 0; j < nm; j++) {
		awq_model *m = NULL;
		char err[AWQ_ERRLEN];
		if (a->dir && !strcmp(models[j], model_label(a))) {
			presets++;
		} else if (awq_caps_model_shape(models[j], &m, err, sizeof(err)) == 0) {
			presets++;
			awq_model_free(m);
		} else {
			fprintf(stderr, "awqrun compare: %s is not a preset (bench --name can label a run with one); no "
					"modeled rows for it\n", models[j]);
		}
	}
	if (presets == 0) {
		fprintf(stderr, "awqrun compare: --gpu needs a model: --synthetic NAME or JSON results of a preset\n");
		return -2;
	}
	if ((size_t)snprintf(gbuf, sizeof(gbuf), "%s", a->gpus) >= sizeof(gbuf))
		return -2;
	for (char *t = strtok(gbuf, ","); t && ng < MAX_GPUS; t = strtok(NULL, ","))
		gl[ng++] = t;
	for (int g = 0; g < ng; g++) {
		int k = model_gpu(gl[g], models, nm, dir_model, a->dir ? model_label(a) : NULL, pl, np, n_prompt, n_gen,
				  rows + n + added,
				  max - n - added);
		if (k < 0)
			return -1;
		added += k;
	}
	return added;
}

static int parse(int argc, char **argv, struct cmp_args *a, struct bench_result *rows, int *n)
{
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
			usage();
			return 1;
		} else if (o[0] != '-') {
			int k = load_json(o, rows + *n, MAX_ROWS - *n);
			if (k < 0)
				return 3;
			*n += k;
			continue;
		} else if (!v) {
			fprintf(stderr, "awqrun compare: %s needs a value (or is unknown); see --help\n", o);
			return 2;
		} else if (!strcmp(o, "--svg")) {
			a->svg = v;
		} else if (!strcmp(o, "--synthetic")) {
			a->synth = v;
		} else if (!strcmp(o, "-m")) {
			a->dir = v;
		} else if (!strcmp(o, "--backend")) {
			a->backend = v;
		} else if (!strcmp(o, "--gpu")) {
			a->gpus = v;
		} else if (!strcmp(o, "--precision")) {
			if ((size_t)snprintf(a->precs, sizeof(a->precs), "%s", v) >= sizeof(a->precs))
				goto bad;
		} else if (!strcmp(o, "--bw")) {
			if (!((a->o.bw_gbs = atof(v)) > 0))
				goto bad;
		} else if (!strcmp(o, "-p") || !strcmp(o, "-n") || !strcmp(o, "-r") || !strcmp(o, "--device")) {
			char *end;
			long x = strtol(v, &end, 10);
			if (*end || x < (!strcmp(o, "--device") ? 0 : 1) || x > 1000000)
				goto bad;
			*(!strcmp(o, "-p") ? &a->o.prompts[0] : !strcmp(o, "-n") ? &a->o.gens[0]
				: !strcmp(o, "-r") ? &a->o.repeats : &a->o.device) = (int)x;
		} else {
			fprintf(stderr, "awqrun compare: unknown option %s; see --help\n", o);
			return 2;
		}
		i++;
		continue;
bad:
		fprintf(stderr, "awqrun compare: bad value '%s' for %s; see --help\n", v, o);
		return 2;
	}
	return 0;
}

int awq_cmd_compare(int argc, char **argv)
{
	struct cmp_args a = {.backend = "all", .precs = "awq,bf16"};
	a.o = (struct bench_opts){.n_prompts = 1, .prompts = {128}, .n_gens = 1, .gens = {64}, .repeats = 2,
				  .device = -1, .quiet = 1, .predict = 1};
	struct bench_result *rows = calloc(MAX_ROWS, sizeof(*rows));
	struct cmp_table t = {.g = calloc(MAX_ROWS, sizeof(struct cmp_group))};
	awq_model *dir_model = NULL;
	char *pl[8];
	int n = 0, np = 0, rc = 1;

	if (!rows || !t.g) {
		fprintf(stderr, "awqrun compare: out of memory\n");
		goto out;
	}
	if ((rc = parse(argc, argv, &a, rows, &n)) != 0) {
		rc = rc == 1 ? 0 : rc == 3 ? 1 : 2;
		goto out;
	}
	rc = 1;
	for (char *p = strtok(a.precs, ","); p && np < 8; p = strtok(NULL, ","))
		pl[np++] = p;
	if ((a.synth || a.dir) && strcmp(a.backend, "none")) {
		bench_progress_enable(0);
		int k = run_live(&a, pl, np, &dir_model, rows + n, MAX_ROWS - n);
		if (k < 0)
			goto out;
		n += k;
	}
	if (a.gpus) {
		int k = add_modeled(&a, pl, np, dir_model, rows, n, MAX_ROWS);
		if (k < 0) {
			rc = k == -2 ? 2 : 1;
			goto out;
		}
		n += k;
	}
	if (n == 0) {
		fprintf(stderr, "awqrun compare: no results (give bench JSON files, --synthetic NAME or --gpu); see "
				"--help\n");
		rc = 2;
		goto out;
	}
	build_groups(rows, n, &t, MAX_ROWS);
	print_table(&t);
	rc = a.svg && cmp_write_svg(a.svg, &t) ? 1 : 0;
out:
	awq_model_free(dir_model);
	free(rows);
	free(t.g);
	return rc;
}
