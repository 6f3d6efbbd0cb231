/* `awqrun bench`: prefill/decode tokens/s for a model directory or synthetic shapes, in each precision,
 * on one backend or all of them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "commands.h"

#define MAX_ROWS 256

static void usage(void)
{
	printf("usage: awqrun bench (-m DIR | --synthetic NAME[,NAME...]) [options]\n"
	       "  --precision LIST   synthetic models: bf16,f16,awq (default awq,bf16)\n"
	       "  --backend NAME     auto, cpu, cuda, vulkan or all (default auto)\n"
	       "  --device N         device index within the backend\n"
	       "  -p LIST            prompt lengths for prefill tests (default 512)\n"
	       "  -n LIST            tokens for decode tests (default 128)\n"
	       "  -r N               repetitions per test (default 3)\n"
	       "  -t N               CPU threads (default: all cores)\n"
	       "  --bw GBS           bandwidth to report decode as a fraction of\n"
	       "  --method NAME      llama (pp/tg tests, default) or qwen (long-context method:\n"
	       "                     batch 1, each input length then --gen tokens; speed = all tokens / time)\n"
	       "  --inputs LIST      qwen method input lengths (default 1,6144,14336,30720,63488,129024)\n"
	       "  --gen N            qwen method generated tokens (default 2048)\n"
	       "  --json             print {\"results\": [...]} instead of a table\n"
	       "  --seed N           seed for synthetic weights and tokens\n"
	       "  --list             list synthetic presets\n");
}

/* Parse "a,b,c" integers into out; returns the count or -1. */
static int int_list(const char *s, int *out, int max)
{
	int n = 0;
	while (*s && n < max) {
		char *end;
		long v = strtol(s, &end, 10);
		if (end == s || v < 0 || v > 1000000)
			return -1;
		out[n++] = (int)v;
		s = end;
		if (*s == ',')
			s++;
		else if (*s)
			return -1;
	}
	return *s ? -1 : n;
}

static const char *basename_of(const char *p)
{
	const char *s = strrchr(p, '/');
	while (s && s[1] == 0 && s != p) { /* trailing slash */
		const char *q = s - 1;
		while (q > p && *q != '/')
			q--;
		return *q == '/' ? q + 1 : q;
	}
	return s ? s + 1 : p;
}

static int split(char *s, char **out, int max)
{
	int n = 0;
	for (char *tok = strtok(s, ","); tok && n < max; tok = strtok(NULL, ","))
		out[n++] = tok;
	return n;
}

int awq_cmd_bench(int argc, char **argv)
{
	const char *dir = NULL, *backend = "auto";
	char synth_buf[512] = "", prec_buf[128] = "awq,bf16";
	struct bench_opts o = {.n_prompts = 1, .prompts = {512}, .n_gens = 1, .gens = {128}, .repeats = 3,
			       .device = -1};
	int json = 0, qwen = 0, gen = 2048, n_inputs = 6;
	int inputs[BENCH_MAX_TESTS] = {1, 6144, 14336, 30720, 63488, 129024};

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int used = 1;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage();
			return 0;
		} else if (!strcmp(a, "--list")) {
			for (const char *const *p = awq_synthetic_presets(); *p; p++)
				printf("%s\n", *p);
			return 0;
		} else if (!strcmp(a, "--json")) {
			json = 1;
			used = 0;
		} else if (!v) {
			fprintf(stderr, "awqrun bench: %s needs a value (or is unknown); see --help\n", a);
			return 2;
		} else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
			dir = v;
		} else if (!strcmp(a, "--synthetic")) {
			snprintf(synth_buf, sizeof(synth_buf), "%s", v);
		} else if (!strcmp(a, "--precision")) {
			snprintf(prec_buf, sizeof(prec_buf), "%s", v);
		} else if (!strcmp(a, "--backend")) {
			backend = v;
		} else if (!strcmp(a, "--device")) {
			o.device = atoi(v);
		} else if (!strcmp(a, "-p")) {
			if ((o.n_prompts = int_list(v, o.prompts, BENCH_MAX_TESTS)) < 0)
				goto bad;
		} else if (!strcmp(a, "-n")) {
			if ((o.n_gens = int_list(v, o.gens, BENCH_MAX_TESTS)) < 0)
				goto bad;
		} else if (!strcmp(a, "-r")) {
			o.repeats = atoi(v);
		} else if (!strcmp(a, "-t")) {
			o.threads = atoi(v);
		} else if (!strcmp(a, "--bw")) {
			o.bw_gbs = atof(v);
		} else if (!strcmp(a, "--method")) {
			if (strcmp(v, "llama") && strcmp(v, "qwen")) {
				fprintf(stderr, "awqrun bench: --method is llama or qwen, not '%s'\n", v);
				return 2;
			}
			qwen = !strcmp(v, "qwen");
		} else if (!strcmp(a, "--inputs")) {
			if ((n_inputs = int_list(v, inputs, BENCH_MAX_TESTS)) <= 0)
				goto bad;
		} else if (!strcmp(a, "--gen")) {
			gen = atoi(v);
		} else if (!strcmp(a, "--seed")) {
			o.seed = strtoull(v, NULL, 10);
		} else {
			fprintf(stderr, "awqrun bench: unknown option %s; see --help\n", a);
			return 2;
		}
		i += used;
		continue;
bad:
		fprintf(stderr, "awqrun bench: %s takes a comma-separated list of token counts, not '%s'\n", a, v);
		return 2;
	}
	if ((!dir) == (!synth_buf[0])) {
		fprintf(stderr, "awqrun bench: give either -m DIR or --synthetic NAME (see --help)\n");
		return 2;
	}
	if (o.repeats < 1 || o.threads < 0 || gen < 1) {
		fprintf(stderr, "awqrun bench: -r must be at least 1 and -t not negative\n");
		return 2;
	}

	char *backends[4], *precs[8], *synths[32];
	char backend_buf[64];
	int n_backends, n_precs, n_synths = 0;
	if (!strcmp(backend, "all"))
		snprintf(backend_buf, sizeof(backend_buf), "cpu,cuda,vulkan");
	else
		snprintf(backend_buf, sizeof(backend_buf), "%s", backend);
	n_backends = split(backend_buf, backends, 4);
	n_precs = split(prec_buf, precs, 8);
	if (synth_buf[0])
		n_synths = split(synth_buf, synths, 32);

	struct bench_result *rows = calloc(MAX_ROWS, sizeof(*rows));
	int n_rows = 0, failed = 0;
	char err[AWQ_ERRLEN];
	if (!rows) {
		fprintf(stderr, "awqrun bench: out of memory\n");
		return 1;
	}
	for (int mi = 0; mi < (dir ? 1 : n_synths); mi++) {
		for (int pi = 0; pi < (dir ? 1 : n_precs); pi++) {
			awq_model *m = NULL;
			int rc = dir ? awq_model_load(dir, &m, err, sizeof(err))
				     : awq_model_synthetic(synths[mi], precs[pi], o.seed, &m, err, sizeof(err));
			if (rc) {
				fprintf(stderr, "awqrun bench: %s\n", err);
				free(rows);
				return 1;
			}
			for (int bi = 0; bi < n_backends; bi++) {
				if (!json)
					fprintf(stderr, "bench: %s %s on %s ...\n", dir ? dir : synths[mi],
						dir ? "" : precs[pi], backends[bi]);
				o.progress = !json;
				if (qwen)
					rc = bench_long_context(m, dir ? basename_of(dir) : synths[mi], backends[bi], &o, inputs,
								n_inputs, gen, rows + n_rows, MAX_ROWS - n_rows, err,
								sizeof(err));
				else
					rc = bench_model(m, dir ? basename_of(dir) : synths[mi], backends[bi], &o,
							 rows + n_rows, MAX_ROWS - n_rows, err, sizeof(err));
				if (rc < 0) {
					fprintf(stderr, "awqrun bench: %s: %s\n", backends[bi], err);
					/* With --backend all an absent backend is reported and skipped. */
					if (n_backends == 1)
						failed = 1;
					continue;
				}
				n_rows += rc;
			}
			awq_model_free(m);
		}
	}
	if (json)
		bench_print_json(stdout, rows, n_rows);
	else if (qwen)
		bench_print_long_markdown(stdout, rows, n_rows);
	else
		bench_print_markdown(stdout, rows, n_rows);
	free(rows);
	return failed || n_rows == 0 ? 1 : 0;
}
