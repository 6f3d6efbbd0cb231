/* `awqrun compare`: bench results from several devices or machines side by side — the decode and
 * prefill tokens/s of each precision, the AWQ speedup over 16-bit, and how close decode came to the
 * device's bandwidth — as a table, and optionally an SVG bar chart. Input: JSON files written by
 * `awqrun bench --json`, and/or a fresh run on every present backend (--synthetic/-m with --backend). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "commands.h"

#define MAX_ROWS 512

static void usage(void)
{
	printf("usage: awqrun compare [FILE.json ...] [--synthetic NAME | -m DIR] [options]\n"
	       "  FILE.json          results of `awqrun bench --json` (from this or other machines)\n"
	       "  --synthetic NAME   also run this synthetic model now (or -m DIR for a checkpoint)\n"
	       "  --precision LIST   precisions for the run (default awq,bf16)\n"
	       "  --backend NAME     backends for the run: all (default), cpu, cuda, vulkan\n"
	       "  -p N / -n N / -r N prompt length, decode tokens, repeats for the run (default 128/64/2)\n"
	       "  --svg FILE         write a grouped bar chart of decode tokens/s\n");
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

/* Append the results of one `bench --json` file; returns rows added or -1 with a message printed. */
static int load_json(const char *path, struct bench_result *rows, int max)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "awqrun compare: cannot open %s\n", path);
		return -1;
	}
	fseek(f, 0, SEEK_END);
	long len = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *text = len > 0 && len < (64l << 20) ? malloc((size_t)len + 1) : NULL;
	if (!text || fread(text, 1, (size_t)len, f) != (size_t)len) {
		fprintf(stderr, "awqrun compare: %s is empty, unreadable or too large\n", path);
		fclose(f);
		free(text);
		return -1;
	}
	fclose(f);
	text[len] = 0;
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
		if (n >= max)
			break;
		struct bench_result *b = &rows[n];
		memset(b, 0, sizeof(*b));
		snprintf(b->model, sizeof(b->model), "%s", jstr(r, "model"));
		snprintf(b->precision, sizeof(b->precision), "%s", jstr(r, "precision"));
		snprintf(b->backend, sizeof(b->backend), "%s", jstr(r, "backend"));
		snprintf(b->device, sizeof(b->device), "%s", jstr(r, "device"));
		snprintf(b->test, sizeof(b->test), "%s", jstr(r, "test"));
		b->n_prompt = (int)jnum(r, "n_prompt");
		b->n_gen = (int)jnum(r, "n_gen");
		b->tok_s = jnum(r, "tok_s");
		b->tok_s_stddev = jnum(r, "tok_s_stddev");
		b->bytes_per_token = jnum(r, "bytes_per_token");
		b->gbs = jnum(r, "gbs");
		b->bw_gbs = jnum(r, "bw_gbs");
		if (!b->model[0] || !b->precision[0] || !b->test[0] || b->tok_s <= 0) {
			fprintf(stderr, "awqrun compare: %s: result %d lacks model, precision, test or tok_s\n", path, n);
			cJSON_Delete(root);
			return -1;
		}
		n++;
	}
	cJSON_Delete(root);
	return n;
}

/* One table line per (model, backend, device): decode and prefill tok/s per precision. */
struct group {
	char model[96], backend[16], device[128];
	double tg[2], pp[2], bw, bytes[2]; /* [0] = 16-bit, [1] = AWQ */
	char prec16[32];
};

static int is_awq(const char *p)
{
	return strstr(p, "awq") != NULL;
}

static int build_groups(const struct bench_result *r, int n, struct group *g, int max)
{
	int ng = 0;
	for (int i = 0; i < n; i++) {
		int j;
		for (j = 0; j < ng; j++)
			if (!strcmp(g[j].model, r[i].model) && !strcmp(g[j].backend, r[i].backend) &&
			    !strcmp(g[j].device, r[i].device))
				break;
		if (j == ng) {
			if (ng == max)
				continue;
			memset(&g[ng], 0, sizeof(g[ng]));
			snprintf(g[ng].model, sizeof(g[ng].model), "%s", r[i].model);
			snprintf(g[ng].backend, sizeof(g[ng].backend), "%s", r[i].backend);
			snprintf(g[ng].device, sizeof(g[ng].device), "%s", r[i].device);
			ng++;
		}
		int a = is_awq(r[i].precision);
		if (!a)
			snprintf(g[j].prec16, sizeof(g[j].prec16), "%s", r[i].precision);
		if (r[i].n_gen > 0) {
			g[j].tg[a] = r[i].tok_s;
			g[j].bytes[a] = r[i].bytes_per_token;
			if (r[i].bw_gbs > 0)
				g[j].bw = r[i].bw_gbs;
		} else {
			g[j].pp[a] = r[i].tok_s;
		}
	}
	return ng;
}

static void cell(char *buf, size_t len, double v)
{
	if (v > 0)
		snprintf(buf, len, "%.1f", v);
	else
		snprintf(buf, len, "-");
}

static void print_table(const struct group *g, int ng)
{
	printf("| model | backend | device | decode 16-bit | decode AWQ | AWQ speedup | prefill 16-bit | prefill AWQ | "
	       "AWQ decode %% of BW |\n|---|---|---|---:|---:|---:|---:|---:|---:|\n");
	for (int i = 0; i < ng; i++) {
		char a[32], b[32], c[32], d[32], s[32] = "-", f[32] = "-";
		cell(a, sizeof(a), g[i].tg[0]);
		cell(b, sizeof(b), g[i].tg[1]);
		cell(c, sizeof(c), g[i].pp[0]);
		cell(d, sizeof(d), g[i].pp[1]);
		if (g[i].tg[0] > 0 && g[i].tg[1] > 0)
			snprintf(s, sizeof(s), "%.2fx", g[i].tg[1] / g[i].tg[0]);
		if (g[i].bw > 0 && g[i].tg[1] > 0)
			snprintf(f, sizeof(f), "%.0f%%", 100.0 * g[i].tg[1] * g[i].bytes[1] / 1e9 / g[i].bw);
		printf("| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", g[i].model, g[i].backend, g[i].device, a, b,
		       s, c, d, f);
	}
}

static void xml_text(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '<')
			fputs("&lt;", f);
		else if (*s == '>')
			fputs("&gt;", f);
		else if (*s == '&')
			fputs("&amp;", f);
		else
			fputc(*s, f);
	}
}

/* Grouped bars: one group per (model, device), a bar per precision; a dashed tick above each bar at
 * the decode rate the device's bandwidth allows for that precision's bytes per token. */
static int write_svg(const char *path, const struct group *g, int ng)
{
	const int bar = 34, gap = 36, left = 70, top = 50, height = 300;
	int width = left + ng * (2 * bar + gap) + 40;
	double ymax = 1;
	for (int i = 0; i < ng; i++)
		for (int a = 0; a < 2; a++) {
			double ceil = g[i].bw > 0 && g[i].bytes[a] > 0 ? g[i].bw * 1e9 / g[i].bytes[a] : 0;
			ymax = g[i].tg[a] > ymax ? g[i].tg[a] : ymax;
			ymax = ceil > ymax ? ceil : ymax;
		}
	ymax *= 1.1;
	FILE *f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "awqrun compare: cannot write %s\n", path);
		return -1;
	}
	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" "
		   "font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n", width,
		top + height + 110);
	fprintf(f, "<text x=\"%d\" y=\"24\" font-size=\"16\">Decode tokens/s (batch 1): 16-bit vs AWQ INT4; dashed = "
		   "bandwidth ceiling</text>\n", left);
	for (int t = 0; t <= 4; t++) {
		double v = ymax * t / 4;
		int y = top + height - (int)(height * t / 4);
		fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#ddd\"/>\n", left, y, width - 20, y);
		fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%.0f</text>\n", left - 6, y + 4, v);
	}
	const char *colors[2] = {"#7f8fa6", "#e1703c"};
	for (int i = 0; i < ng; i++) {
		int x0 = left + gap / 2 + i * (2 * bar + gap);
		for (int a = 0; a < 2; a++) {
			int x = x0 + a * bar;
			if (g[i].tg[a] > 0) {
				int h = (int)(height * g[i].tg[a] / ymax);
				fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\"/>\n", x + 2,
					top + height - h, bar - 4, h, colors[a]);
				fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"10\">%.0f</text>\n",
					x + bar / 2, top + height - h - 4, g[i].tg[a]);
			}
			if (g[i].bw > 0 && g[i].bytes[a] > 0) {
				int y = top + height - (int)(height * (g[i].bw * 1e9 / g[i].bytes[a]) / ymax);
				fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\" "
					   "stroke-dasharray=\"4,3\"/>\n", x, y, x + bar, y);
			}
		}
		fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"11\">", x0 + bar, top + height + 18);
		xml_text(f, g[i].device);
		fprintf(f, "</text>\n<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"10\" fill=\"#555\">", x0 + bar,
			top + height + 34);
		xml_text(f, g[i].model);
		fprintf(f, " (%s)</text>\n", g[i].backend);
	}
	int ly = top + height + 60;
	for (int a = 0; a < 2; a++) {
		fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"14\" height=\"14\" fill=\"%s\"/>\n", left + a * 160, ly,
			colors[a]);
		fprintf(f, "<text x=\"%d\" y=\"%d\">%s</text>\n", left + a * 160 + 20, ly + 12,
			a ? "AWQ INT4 (W4A16)" : "16-bit (BF16/F16)");
	}
	fprintf(f, "</svg>\n");
	return fclose(f) == 0 ? 0 : -1;
}

int awq_cmd_compare(int argc, char **argv)
{
	const char *svg = NULL, *synth = NULL, *dir = NULL, *backend = "all", *precs = "awq,bf16";
	struct bench_opts o = {.n_prompts = 1, .prompts = {128}, .n_gens = 1, .gens = {64}, .repeats = 2,
			       .device = -1, .quiet = 1};
	struct bench_result *rows = calloc(MAX_ROWS, sizeof(*rows));
	struct group *groups = calloc(MAX_ROWS, sizeof(*groups));
	int n = 0, rc = 1;
	char err[AWQ_ERRLEN];

	if (!rows || !groups) {
		fprintf(stderr, "awqrun compare: out of memory\n");
		goto out;
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage();
			rc = 0;
			goto out;
		} else if (a[0] != '-') {
			int k = load_json(a, rows + n, MAX_ROWS - n);
			if (k < 0)
				goto out;
			n += k;
			continue;
		} else if (!v) {
			fprintf(stderr, "awqrun compare: %s needs a value (or is unknown); see --help\n", a);
			rc = 2;
			goto out;
		} else if (!strcmp(a, "--svg")) {
			svg = v;
		} else if (!strcmp(a, "--synthetic")) {
			synth = v;
		} else if (!strcmp(a, "-m")) {
			dir = v;
		} else if (!strcmp(a, "--backend")) {
			backend = v;
		} else if (!strcmp(a, "--precision")) {
			precs = v;
		} else if (!strcmp(a, "-p")) {
			o.prompts[0] = atoi(v);
		} else if (!strcmp(a, "-n")) {
			o.gens[0] = atoi(v);
		} else if (!strcmp(a, "-r")) {
			o.repeats = atoi(v) > 0 ? atoi(v) : 1;
		} else {
			fprintf(stderr, "awqrun compare: unknown option %s; see --help\n", a);
			rc = 2;
			goto out;
		}
		i++;
	}
	if (synth || dir) {
		char bbuf[64], pbuf[64], *bl[4], *pl[8];
		int nb = 0, np = 0;
		snprintf(bbuf, sizeof(bbuf), "%s", !strcmp(backend, "all") ? "cpu,cuda,vulkan" : backend);
		snprintf(pbuf, sizeof(pbuf), "%s", precs);
		for (char *t = strtok(bbuf, ","); t && nb < 4; t = strtok(NULL, ","))
			bl[nb++] = t;
		for (char *t = strtok(pbuf, ","); t && np < 8; t = strtok(NULL, ","))
			pl[np++] = t;
		for (int p = 0; p < (dir ? 1 : np); p++) {
			awq_model *m = NULL;
			if ((dir ? awq_model_load(dir, &m, err, sizeof(err))
				 : awq_model_synthetic(synth, pl[p], 1, &m, err, sizeof(err))) != 0) {
				fprintf(stderr, "awqrun compare: %s\n", err);
				goto out;
			}
			for (int b = 0; b < nb; b++) {
				int k = bench_model(m, dir ? dir : synth, bl[b], &o, rows + n, MAX_ROWS - n, err, sizeof(err));
				if (k < 0)
					fprintf(stderr, "awqrun compare: %s skipped: %s\n", bl[b], err);
				else
					n += k;
			}
			awq_model_free(m);
		}
	}
	if (n == 0) {
		fprintf(stderr, "awqrun compare: no results (give bench JSON files or --synthetic NAME); see --help\n");
		rc = 2;
		goto out;
	}
	int ng = build_groups(rows, n, groups, MAX_ROWS);
	print_table(groups, ng);
	rc = svg && write_svg(svg, groups, ng) ? 1 : 0;
out:
	free(rows);
	free(groups);
	return rc;
}
