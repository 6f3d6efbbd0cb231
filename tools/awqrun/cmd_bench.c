/* `awqrun bench`: prefill/decode tokens/s for a model directory or synthetic shapes, in each precision,
 * on one backend device or every device here, with the performance model's prediction beside each
 * row; and `awqrun bench --fit`, which models fit on which GPU size. docs/bench-schema.md has the JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "commands.h"

#define MAX_ROWS 512
#define MAX_TARGETS 16

static void usage(void)
{
	printf("usage: awqrun bench (-m DIR | --synthetic NAME[,NAME...]) [options]\n"
	       "       awqrun bench --fit [--ctx N] [--synthetic LIST] [--precision LIST] [--gpu-mem LIST]\n"
	       "  --synthetic LIST   synthetic models of published shapes (--list); random weights\n"
	       "  --precision LIST   synthetic models: bf16,f16,awq or all (default awq,bf16)\n"
	       "  --backend NAME     auto, cpu, cuda, vulkan, a list of them, or all: every device of every\n"
	       "                     backend present (default auto)\n"
	       "  --device N         device index within the backend\n"
	       "  --name NAME        model name in the report (default: the directory's or preset's name);\n"
	       "                     give a checkpoint its preset's name (qwen3-8b) so compare can model it\n"
	       "  -p LIST            prompt lengths for prefill tests (default 512)\n"
	       "  -n LIST            tokens for decode tests (default 128)\n"
	       "  -d LIST            context depths: each test runs after this many tokens are in the\n"
	       "                     KV cache (default 0; e.g. -d 0,4096,16384: decode at long context)\n"
	       "  -r N               timed repetitions per test, after one warm-up (default 3)\n"
	       "  -t N               CPU threads (default: all cores)\n"
	       "  --bw GBS           device read bandwidth to use instead of measuring it\n"
	       "  --method NAME      llama (pp/tg tests, default) or qwen (long-context method:\n"
	       "                     batch 1, each input length then --gen tokens; speed = all tokens / time)\n"
	       "  --inputs LIST      qwen method input lengths (default 1,6144,14336,30720,63488,129024)\n"
	       "  --gen N            qwen method generated tokens (default 2048)\n"
	       "  --json             JSON (docs/bench-schema.md) instead of the markdown report\n"
	       "  --csv              CSV, one line per result\n"
	       "  --json-out FILE    also write the JSON to FILE (for awqrun compare)\n"
	       "  --progress         progress lines on stderr even when it is not a terminal\n"
	       "  --no-predict       leave out the performance model's prediction and accounting\n"
	       "  --sample           decode tests sample as `awqrun run` does by default (temperature 0.8,\n"
	       "                     top-k 40, top-p 0.95, min-p 0.05; rows \"tgN sampled\"): drawn on the\n"
	       "                     device where the backend can (CUDA, Vulkan), else from each step's top-k\n"
	       "  --repeat-penalty R with --sample: awqrun run's repetition penalty over the last 64 tokens\n"
	       "                     (rows \"tgN sampled rpR\"): each step reads back the top-k + 64 best\n"
	       "                     logits (the row where R < 1) and the host draws, as awqrun run does\n"
	       "  --seed N           seed for synthetic weights and tokens\n"
	       "  --list             list synthetic presets\n"
	       "  --fit              table of which models (default: every preset) fit on a GPU of each size\n"
	       "                     in each precision (bf16,fp8,awq by default) at context --ctx (default 4096)\n"
	       "  --gpu-mem LIST     GPU sizes in GiB for --fit (default 16,24,48,80)\n");
}

/* Parse "a,b,c" integers into out; returns the count or -1. */
static int int_list(const char *s, int *out, int max)
{
	int n = 0;
	while (*s) {
		char *end;
		long v = strtol(s, &end, 10);
		if (end == s || v < 0 || v > 1000000 || n == max)
			return -1;
		out[n++] = (int)v;
		s = end;
		if (*s == ',')
			s++;
		else if (*s)
			return -1;
	}
	return n;
}

static int int_arg(const char *s, long lo, long hi, int *out)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (!*s || *end || v < lo || v > hi)
		return -1;
	*out = (int)v;
	return 0;
}

static const char *basename_of(const char *p)
{
	static char buf[256];
	snprintf(buf, sizeof(buf), "%s", p);
	size_t n = strlen(buf);
	while (n > 1 && buf[n - 1] == '/')
		buf[--n] = 0;
	const char *s = strrchr(buf, '/');
	return s ? s + 1 : buf;
}

static int split(char *s, char **out, int max)
{
	int n = 0;
	for (char *tok = strtok(s, ","); tok && n < max; tok = strtok(NULL, ","))
		out[n++] = tok;
	return n;
}

struct target {
	char backend[16];
	int device;
};

/* (backend, device) pairs to run: `all` is every device of every backend the probe finds. */
static int targets_of(const char *backend, int device, struct target *t, int max)
{
	char buf[64], *names[4];
	int all = !strcmp(backend, "all"), n = 0;
	snprintf(buf, sizeof(buf), "%s", all ? "cpu,cuda,vulkan" : backend);
	int nb = split(buf, names, 4);
	for (int b = 0; b < nb; b++) {
		int idx[MAX_TARGETS], k = 0;
		if (all && device < 0) {
			k = bench_backend_devices(names[b], idx, MAX_TARGETS);
			if (k == 0)
				fprintf(stderr, "bench: %s: no device found, skipped\n", names[b]);
		} else {
			idx[k++] = device;
		}
		for (int i = 0; i < k && n < max; i++, n++) {
			snprintf(t[n].backend, sizeof(t[n].backend), "%s", names[b]);
			t[n].device = idx[i];
		}
	}
	return n;
}

struct bench_args {
	const char *dir, *backend, *gpu_mem, *fit_prec, *name, *json_out;
	char synth[512], prec[128];
	struct bench_opts o;
	int json, csv, qwen, gen, n_inputs, progress, fit, ctx, list;
	int inputs[BENCH_MAX_TESTS];
};

/* 0 ok, 1 printed help/list (exit 0), 2 usage error (message printed). */
static int parse(int argc, char **argv, struct bench_args *a)
{
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int used = 1;
		if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
			usage();
			return 1;
		} else if (!strcmp(o, "--list")) {
			for (const char *const *p = awq_synthetic_presets(); *p; p++)
				printf("%s\n", *p);
			return 1;
		} else if (!strcmp(o, "--json") || !strcmp(o, "--csv") || !strcmp(o, "--progress") ||
			   !strcmp(o, "--fit") || !strcmp(o, "--no-predict") || !strcmp(o, "--sample")) {
			*(!strcmp(o, "--json")	   ? &a->json
			  : !strcmp(o, "--sample")   ? &a->o.sample
			  : !strcmp(o, "--csv")	   ? &a->csv
			  : !strcmp(o, "--fit")	   ? &a->fit
			  : !strcmp(o, "--progress") ? &a->progress
						     : &a->o.predict) = !strcmp(o, "--no-predict") ? 0 : 1;
			used = 0;
		} else if (!v) {
			fprintf(stderr, "awqrun bench: %s needs a value (or is unknown); see --help\n", o);
			return 2;
		} else if (!strcmp(o, "-m") || !strcmp(o, "--model")) {
			a->dir = v;
		} else if (!strcmp(o, "--synthetic") || !strcmp(o, "--precision")) {
			char *dst = !strcmp(o, "--synthetic") ? a->synth : a->prec;
			size_t len = !strcmp(o, "--synthetic") ? sizeof(a->synth) : sizeof(a->prec);
			if ((size_t)snprintf(dst, len, "%s", v) >= len)
				goto bad_value;
			if (!strcmp(o, "--precision"))
				a->fit_prec = v;
		} else if (!strcmp(o, "--backend")) {
			a->backend = v;
		} else if (!strcmp(o, "--name")) {
			a->name = v;
		} else if (!strcmp(o, "--json-out")) {
			a->json_out = v;
		} else if (!strcmp(o, "--device")) {
			if (int_arg(v, 0, 64, &a->o.device))
				goto bad_value;
		} else if (!strcmp(o, "-d")) {
			int k = int_list(v, a->o.depths, BENCH_MAX_TESTS);
			if (k <= 0)
				goto bad_value;
			a->o.n_depths = k;
		} else if (!strcmp(o, "-p") || !strcmp(o, "-n")) {
			int *dst = !strcmp(o, "-p") ? a->o.prompts : a->o.gens;
			int k = int_list(v, dst, BENCH_MAX_TESTS);
			if (k < 0)
				goto bad_value;
			*(!strcmp(o, "-p") ? &a->o.n_prompts : &a->o.n_gens) = k;
		} else if (!strcmp(o, "-r")) {
			if (int_arg(v, 1, 10000, &a->o.repeats))
				goto bad_value;
		} else if (!strcmp(o, "-t")) {
			if (int_arg(v, 0, 4096, &a->o.threads))
				goto bad_value;
		} else if (!strcmp(o, "--bw")) {
			char *end;
			a->o.bw_gbs = strtod(v, &end);
			if (end == v || *end || !(a->o.bw_gbs > 0))
				goto bad_value;
		} else if (!strcmp(o, "--method")) {
			if (strcmp(v, "llama") && strcmp(v, "qwen"))
				goto bad_value;
			a->qwen = !strcmp(v, "qwen");
		} else if (!strcmp(o, "--inputs")) {
			if ((a->n_inputs = int_list(v, a->inputs, BENCH_MAX_TESTS)) <= 0)
				goto bad_value;
		} else if (!strcmp(o, "--gen")) {
			if (int_arg(v, 1, 1000000, &a->gen))
				goto bad_value;
		} else if (!strcmp(o, "--ctx")) {
			if (int_arg(v, 1, 1 << 24, &a->ctx))
				goto bad_value;
		} else if (!strcmp(o, "--gpu-mem")) {
			a->gpu_mem = v;
		} else if (!strcmp(o, "--repeat-penalty")) {
			char *end;
			const double r = strtod(v, &end);
			if (end == v || *end || !(r > 0 && r <= 100))
				goto bad_value;
			a->o.repeat_penalty = (float)r;
		} else if (!strcmp(o, "--seed")) {
			a->o.seed = strtoull(v, NULL, 10);
		} else {
			fprintf(stderr, "awqrun bench: unknown option %s; see --help\n", o);
			return 2;
		}
		i += used;
		continue;
bad_value:
		fprintf(stderr, "awqrun bench: bad value '%s' for %s; see --help\n", v, o);
		return 2;
	}
	if (a->json + a->csv > 1) {
		fprintf(stderr, "awqrun bench: give --json or --csv, not both\n");
		return 2;
	}
	if (a->qwen && (a->o.n_depths > 1 || a->o.depths[0] > 0)) {
		fprintf(stderr, "awqrun bench: -d is for the llama method (--method qwen sets its contexts with --inputs)\n");
		return 2;
	}
	if (a->o.repeat_penalty != 1.0f && !a->o.sample) {
		fprintf(stderr, "awqrun bench: --repeat-penalty is for the sampled decode tests (--sample)\n");
		return 2;
	}
	if (a->qwen && a->o.sample) {
		fprintf(stderr, "awqrun bench: --sample is for the llama method's decode tests (--method qwen decodes greedily)\n");
		return 2;
	}
	if (!a->fit && (!a->dir) == (!a->synth[0])) {
		fprintf(stderr, "awqrun bench: give either -m DIR or --synthetic NAME (or --fit); see --help\n");
		return 2;
	}
	return 0;
}

/* Run every model x precision x target; returns rows or -1. */
static int run_all(struct bench_args *a, struct bench_result *rows, int *failed)
{
	char *precs[8], *synths[32], err[AWQ_ERRLEN];
	struct target t[MAX_TARGETS];
	int n_rows = 0, n_precs, n_synths = 0;
	if (!strcmp(a->prec, "all"))
		snprintf(a->prec, sizeof(a->prec), "bf16,f16,awq");
	n_precs = split(a->prec, precs, 8);
	if (a->synth[0])
		n_synths = split(a->synth, synths, 32);
	int n_t = targets_of(a->backend, a->o.device, t, MAX_TARGETS);
	for (int mi = 0; mi < (a->dir ? 1 : n_synths); mi++) {
		for (int pi = 0; pi < (a->dir ? 1 : n_precs); pi++) {
			awq_model *m = NULL;
			const char *name = a->name ? a->name : a->dir ? basename_of(a->dir) : synths[mi];
			bench_progress("bench: %s%s%s: building the model", name, a->dir ? "" : " ", a->dir ? "" : precs[pi]);
			int rc = a->dir ? awq_model_load(a->dir, &m, err, sizeof(err))
					: awq_model_synthetic(synths[mi], precs[pi], a->o.seed, &m, err, sizeof(err));
			if (rc) {
				bench_progress_done();
				fprintf(stderr, "awqrun bench: %s\n", err);
				return -1;
			}
			for (int ti = 0; ti < n_t; ti++) {
				struct bench_opts o = a->o;
				o.device = t[ti].device;
				if (a->qwen)
					rc = bench_long_context(m, name, t[ti].backend, &o, a->inputs, a->n_inputs, a->gen,
								rows + n_rows, MAX_ROWS - n_rows, err, sizeof(err));
				else
					rc = bench_model(m, name, t[ti].backend, &o, rows + n_rows, MAX_ROWS - n_rows, err,
							 sizeof(err));
				if (rc < 0) {
					bench_progress_done();
					fprintf(stderr, "awqrun bench: %s: %s\n", t[ti].backend, err);
					/* With several targets an absent backend is reported and skipped. */
					if (n_t == 1 && strcmp(a->backend, "all"))
						*failed = 1;
					continue;
				}
				n_rows += rc;
			}
			awq_model_free(m);
		}
	}
	return n_rows;
}

int awq_cmd_bench(int argc, char **argv)
{
	struct bench_args a = {.backend = "auto", .prec = "awq,bf16", .gen = 2048, .n_inputs = 6, .ctx = 4096,
			       .gpu_mem = "16,24,48,80", .fit_prec = "bf16,fp8,awq",
			       .inputs = {1, 6144, 14336, 30720, 63488, 129024}};
	a.o = (struct bench_opts){.n_prompts = 1, .prompts = {512}, .n_gens = 1, .gens = {128}, .n_depths = 1, .repeats = 3,
				  .device = -1, .quiet = 1, .predict = 1, .repeat_penalty = 1.0f};
	int rc = parse(argc, argv, &a);
	if (rc)
		return rc == 1 ? 0 : 2;
	if (a.fit)
		return bench_fit_table(stdout, a.synth, a.fit_prec, a.gpu_mem, a.ctx, a.csv, a.json);

	struct bench_result *rows = calloc(MAX_ROWS, sizeof(*rows));
	if (!rows) {
		fprintf(stderr, "awqrun bench: out of memory\n");
		return 1;
	}
	struct bench_header h;
	bench_header_init(&h, argc, argv);
	bench_progress_enable(a.progress);
	int failed = 0, n_rows = run_all(&a, rows, &failed);
	if (n_rows < 0) {
		free(rows);
		return 1;
	}
	for (int i = 0; i < n_rows; i++)
		bench_header_add(&h, &rows[i]);
	if (a.json) {
		bench_print_json(stdout, &h, rows, n_rows);
	} else if (a.csv) {
		bench_print_csv(stdout, rows, n_rows);
	} else {
		bench_print_header(stdout, &h);
		bench_print_markdown(stdout, rows, n_rows);
		if (n_rows) {
			printf("\n");
			bench_print_memory(stdout, rows, n_rows);
		}
		printf("\npredicted: the performance model (awqrun caps) for the same device, model and test, "
		       "with this run's measured bandwidth; error = (measured - predicted) / predicted. "
		       "%% of BW: decode bytes/token x tok/s over the device's read bandwidth.\n");
	}
	if (a.json_out) {
		FILE *f = fopen(a.json_out, "w");
		if (f)
			bench_print_json(f, &h, rows, n_rows);
		if (!f || fclose(f) != 0) {
			fprintf(stderr, "awqrun bench: cannot write %s\n", a.json_out);
			failed = 1;
		}
	}
	free(rows);
	if (n_rows == 0)
		fprintf(stderr, "awqrun bench: no results\n");
	return failed || n_rows == 0 ? 1 : 0;
}
