/* `awqrun caps`: what every device here (and any database GPU named with --gpu) can do, and how
 * fast each model would run there in 16-bit, AWQ W4A16 and FP8, with the reason. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "awqrun_caps.h"
#include "commands.h"

#define MAX_DEVS 48
#define MAX_MODELS 16

static const char *const default_models[] = {"qwen3-0.6b", "qwen3-1.7b", "qwen3-4b", "qwen3-8b", "qwen3-14b",
					      "qwen3-32b"};

struct caps_args {
	const char *model_dir, *synthetic, *gpus;
	int json, probe, measure, no_models, list_gpus;
	int ctx, n_prompt, batch;
};

static void usage(void)
{
	printf("usage: awqrun caps [options]\n"
	       "  -m DIR               predict for this checkpoint directory\n"
	       "  --synthetic LIST     predict for these shapes (default: qwen3-0.6b,1.7b,4b,8b,14b,32b)\n"
	       "  --gpu LIST           model database GPUs that are not present (aliases: t4, a100-80g, l40s,\n"
	       "                       rtx-4090, h100, h200, b200, rtx-5090, rtx-pro-6000, ...; 'all' = every row)\n"
	       "  --probe              with --gpu, also probe this machine's devices (default without --gpu)\n"
	       "  --no-measure         skip the bandwidth and launch-latency measurements\n"
	       "  --no-models          device blocks only\n"
	       "  --ctx N              context length for decode (KV-cache reads; default 1024)\n"
	       "  --prompt N           prefill length (default 512)\n"
	       "  --batch N            sequences decoded together (default 1)\n"
	       "  --list-gpus          database rows and their aliases\n"
	       "  --json               JSON in the schema of docs/caps-schema.md\n");
}

static int int_arg(const char *s, int lo, int hi, int *out)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (*s == 0 || *end || v < lo || v > hi)
		return -1;
	*out = (int)v;
	return 0;
}

static int parse(int argc, char **argv, struct caps_args *a)
{
	memset(a, 0, sizeof(*a));
	a->measure = 1;
	a->ctx = 1024, a->n_prompt = 512, a->batch = 1;
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int bad = 0;
		if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
			usage();
			return 1;
		} else if (!strcmp(o, "--json")) {
			a->json = 1;
		} else if (!strcmp(o, "--probe")) {
			a->probe = 1;
		} else if (!strcmp(o, "--no-measure")) {
			a->measure = 0;
		} else if (!strcmp(o, "--no-models")) {
			a->no_models = 1;
		} else if (!strcmp(o, "--list-gpus")) {
			a->list_gpus = 1;
		} else if (v && (!strcmp(o, "-m") || !strcmp(o, "--model"))) {
			a->model_dir = argv[++i];
		} else if (v && !strcmp(o, "--synthetic")) {
			a->synthetic = argv[++i];
		} else if (v && !strcmp(o, "--gpu")) {
			a->gpus = argv[++i];
		} else if (v && !strcmp(o, "--ctx")) {
			bad = int_arg(argv[++i], 1, 1 << 24, &a->ctx);
		} else if (v && !strcmp(o, "--prompt")) {
			bad = int_arg(argv[++i], 1, 1 << 24, &a->n_prompt);
		} else if (v && !strcmp(o, "--batch")) {
			bad = int_arg(argv[++i], 1, 4096, &a->batch);
		} else {
			fprintf(stderr, "awqrun caps: unknown option or missing value: %s (awqrun caps --help)\n", o);
			return 2;
		}
		if (bad) {
			fprintf(stderr, "awqrun caps: %s needs a positive number in range, not '%s'\n", o, argv[i]);
			return 2;
		}
	}
	if (!a->gpus)
		a->probe = 1;
	return 0;
}

/* Comma-separated items of list, one at a time, into buf. */
static const char *next_item(const char *list, char *buf, size_t len)
{
	size_t l = strcspn(list, ",");
	snprintf(buf, len, "%.*s", (int)(l < len ? l : len - 1), list);
	return list[l] ? list + l + 1 : list + l;
}

static int add_gpus(const char *list, struct awq_device_caps *devs, int n, char *err, size_t errlen)
{
	char name[96];
	if (!strcmp(list, "all")) {
		char aliases[8192];
		if (awq_caps_db_aliases(aliases, sizeof(aliases)))
			return -1;
		/* Each line: aliases, then the row name; the first alias names the row. */
		for (const char *p = aliases; *p && n < MAX_DEVS;) {
			size_t l = strcspn(p, " \n");
			snprintf(name, sizeof(name), "%.*s", (int)l, p);
			if (awq_caps_from_db(name, &devs[n], err, errlen) == 0)
				n++;
			p += strcspn(p, "\n");
			p += *p == '\n';
		}
		return n;
	}
	for (const char *p = list; *p && n < MAX_DEVS;) {
		p = next_item(p, name, sizeof(name));
		if (!name[0])
			continue;
		if (awq_caps_from_db(name, &devs[n], err, errlen))
			return -1;
		n++;
	}
	return n;
}

static int add_models(const struct caps_args *a, struct awq_caps_model *models, char (*labels)[64], char *err,
		      size_t errlen)
{
	int n = 0;
	if (a->no_models)
		return 0;
	if (a->model_dir) {
		if (awq_model_load(a->model_dir, &models[0].stored, err, errlen))
			return -1;
		snprintf(labels[0], sizeof(labels[0]), "%.63s", a->model_dir);
		models[0].label = labels[0];
		n = 1;
	}
	if (a->synthetic || !a->model_dir) {
		const char *p = a->synthetic;
		for (size_t i = 0; n < MAX_MODELS && (p ? *p != 0 : i < sizeof(default_models) / sizeof(default_models[0]));
		     i++) {
			if (p)
				p = next_item(p, labels[n], sizeof(labels[n]));
			else
				snprintf(labels[n], sizeof(labels[n]), "%s", default_models[i]);
			if (!labels[n][0])
				continue;
			if (awq_caps_model_shape(labels[n], &models[n].stored, err, errlen))
				return -1 - n;
			models[n].label = labels[n];
			n++;
		}
	}
	return n;
}

static int run(const struct caps_args *a, struct awq_device_caps *devs, char *err, size_t errlen)
{
	struct awq_caps_model models[MAX_MODELS] = {{0}};
	char labels[MAX_MODELS][64], absent[2048] = "";
	int n = 0, nm, rc = 1;

	if (a->probe) {
		n = awq_caps_probe(devs, MAX_DEVS, a->measure ? 0 : AWQ_CAPS_NO_MEASURE, absent, sizeof(absent), err,
				   errlen);
		if (n < 0)
			return 1;
	}
	if (a->gpus && (n = add_gpus(a->gpus, devs, n, err, errlen)) < 0)
		return 1;
	nm = add_models(a, models, labels, err, errlen);
	if (nm >= 0) {
		struct awq_caps_report_opts o = {.devs = devs, .n_devs = n, .absent = absent, .models = models,
						 .n_models = nm, .ctx = a->ctx, .n_prompt = a->n_prompt, .batch = a->batch,
						 .json = a->json};
		rc = awq_caps_report(stdout, &o, err, errlen) ? 1 : 0;
	}
	for (int i = 0; i < MAX_MODELS; i++)
		awq_model_free(models[i].stored);
	return rc;
}

int awq_cmd_caps(int argc, char **argv)
{
	struct caps_args a;
	char err[AWQ_ERRLEN] = "";
	int rc = parse(argc, argv, &a);
	if (rc)
		return rc == 1 ? 0 : rc;
	if (a.list_gpus) {
		char buf[8192];
		if (awq_caps_db_aliases(buf, sizeof(buf))) {
			fprintf(stderr, "awqrun caps: the GPU database could not be read\n");
			return 1;
		}
		printf("%-22s %s\n%s", "aliases", "database row", buf);
		return 0;
	}
	struct awq_device_caps *devs = calloc(MAX_DEVS, sizeof(*devs));
	if (!devs) {
		fprintf(stderr, "awqrun caps: out of memory\n");
		return 1;
	}
	rc = run(&a, devs, err, sizeof(err));
	free(devs);
	if (rc)
		fprintf(stderr, "awqrun caps: %s\n", err[0] ? err : "failed");
	return rc;
}
