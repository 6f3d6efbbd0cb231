/* The chart of `awqrun compare --svg`: decode tokens/s as grouped bars, one group per device (and
 * model), one bar per precision; measured bars solid, modeled ones hatched; a dashed black mark over
 * each bar at the rate the device's bandwidth allows for that precision's bytes per token. The axis
 * turns logarithmic when the rates span more than a factor of 30 (a CPU beside an H100). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"

/* Colour by kind, so a precision keeps its colour across charts: 16-bit slate/blue, FP8 ochre, AWQ orange. */
static const char *color_of(const struct cmp_table *t, int p)
{
	const char *name = t->precs[p];
	int same_kind_before = 0;
	int awq = strstr(name, "awq") != NULL, fp8 = strstr(name, "fp8") != NULL;
	for (int q = 0; q < p; q++)
		same_kind_before += (strstr(t->precs[q], "awq") != NULL) == awq && (strstr(t->precs[q], "fp8") != NULL) == fp8;
	if (awq)
		return same_kind_before ? "#b8471a" : "#e1703c";
	if (fp8)
		return "#d9a520";
	return same_kind_before ? "#4a78b5" : "#7f8fa6";
}

/* 46242 -> "46k", 1546 -> "1.5k", 18.2 -> "18", 3.14 -> "3.1" */
static void compact(char *buf, size_t len, double v)
{
	if (v >= 1e6)
		snprintf(buf, len, "%.1fM", v / 1e6);
	else if (v >= 1e4)
		snprintf(buf, len, "%.0fk", v / 1e3);
	else if (v >= 1e3)
		snprintf(buf, len, "%.1fk", v / 1e3);
	else
		snprintf(buf, len, v < 10 ? "%.1f" : "%.0f", v);
	char *dot = strstr(buf, ".0");
	if (dot && (dot[2] == 0 || dot[2] == 'k' || dot[2] == 'M'))
		memmove(dot, dot + 2, strlen(dot + 2) + 1);
}

static void xml_text(FILE *f, const char *s, size_t max)
{
	size_t n = 0;
	for (; *s && n < max; s++, n++) {
		if (*s == '<')
			fputs("&lt;", f);
		else if (*s == '>')
			fputs("&gt;", f);
		else if (*s == '&')
			fputs("&amp;", f);
		else if (*s == '"')
			fputs("&quot;", f);
		else if ((unsigned char)*s >= 0x20)
			fputc(*s, f);
	}
	if (*s)
		fputs("…", f);
}

struct scale {
	int log;
	double lo, hi; /* axis range (log: decades) */
	int top, height;
};

static double y_of(const struct scale *s, double v)
{
	double frac = s->log ? (log10(v > s->lo ? v : s->lo) - log10(s->lo)) / (log10(s->hi) - log10(s->lo))
			     : v / s->hi;
	frac = frac < 0 ? 0 : frac > 1 ? 1 : frac;
	return s->top + s->height - frac * s->height;
}

static void axis(FILE *f, const struct scale *s, int left, int right)
{
	char num[32];
	if (s->log) {
		for (double v = s->lo; v <= s->hi * 1.0001; v *= 10) {
			double y = y_of(s, v);
			fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ccc\"/>\n", left, y, right, y);
			compact(num, sizeof(num), v);
			fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", left - 6, y + 4, num);
			for (int m = 2; m <= 5 && v * m < s->hi; m += 3) {
				double ym = y_of(s, v * m);
				fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#eee\"/>\n", left, ym,
					right, ym);
				compact(num, sizeof(num), v * m);
				fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" font-size=\"9\" fill=\"#888\">%s"
					   "</text>\n", left - 6, ym + 3, num);
			}
		}
		return;
	}
	for (int t = 0; t <= 5; t++) {
		double v = s->hi * t / 5, y = y_of(s, v);
		fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", left, y, right, y);
		compact(num, sizeof(num), v);
		fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", left - 6, y + 4, v > 0 ? num : "0");
	}
}

static void make_scale(const struct cmp_table *t, struct scale *s)
{
	double lo = 0, hi = 0;
	for (int i = 0; i < t->n; i++)
		for (int p = 0; p < t->n_precs; p++) {
			double v[2] = {t->g[i].tg[p], cmp_ceiling(&t->g[i], p)};
			for (int k = 0; k < 2; k++)
				if (v[k] > 0) {
					lo = lo == 0 || v[k] < lo ? v[k] : lo;
					hi = v[k] > hi ? v[k] : hi;
				}
		}
	if (hi <= 0)
		hi = lo = 1;
	s->log = hi / lo > 30;
	if (s->log) {
		s->lo = pow(10, floor(log10(lo)));
		s->hi = pow(10, ceil(log10(hi * 1.05)));
	} else {
		/* A round top: 1, 2, 2.5 or 5 times a power of ten, above the highest value. */
		static const double nice[] = {1, 2, 2.5, 5, 10};
		double decade = pow(10, floor(log10(hi * 1.1)));
		int k = 0;
		while (k < 4 && nice[k] * decade < hi * 1.1)
			k++;
		s->hi = nice[k] * decade;
		s->lo = 0;
	}
}

/* Device name in up to two lines of about 22 characters, split at a space. */
static void label(FILE *f, int x, int y, const char *s)
{
	char a[136], b[136];
	size_t n = strlen(s);
	snprintf(a, sizeof(a), "%s", s);
	b[0] = 0;
	if (n > 22) {
		size_t cut = 22;
		while (cut > 8 && s[cut] != ' ')
			cut--;
		if (s[cut] != ' ')
			cut = 22;
		a[cut < sizeof(a) ? cut : sizeof(a) - 1] = 0;
		snprintf(b, sizeof(b), "%s", s + cut + (s[cut] == ' '));
	}
	fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"11\">", x, y);
	xml_text(f, a, 24);
	fprintf(f, "</text>\n");
	if (b[0]) {
		fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"11\">", x, y + 13);
		xml_text(f, b, 22);
		fprintf(f, "</text>\n");
	}
}

int cmp_write_svg(const char *path, const struct cmp_table *t)
{
	const int bar = 30, left = 70, top = 96, height = 320;
	int group_w = t->n_precs * bar + 40 > 150 ? t->n_precs * bar + 40 : 150;
	int width = left + t->n * group_w + 30, legend_y = top + height + 78;
	if (width < 760)
		width = 760;
	struct scale s = {.top = top, .height = height};
	make_scale(t, &s);
	FILE *f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "awqrun compare: cannot write %s\n", path);
		return -1;
	}
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
		   "height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"DejaVu Sans, Arial, sans-serif\" font-size=\"12\">\n",
		width, legend_y + 40, width, legend_y + 40);
	fprintf(f, "<defs>\n");
	for (int p = 0; p < t->n_precs; p++)
		fprintf(f, "<pattern id=\"hatch%d\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" "
			   "patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"white\"/>"
			   "<rect width=\"3\" height=\"6\" fill=\"%s\"/></pattern>\n", p, color_of(t, p));
	fprintf(f, "</defs>\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
	fprintf(f, "<text x=\"%d\" y=\"26\" font-size=\"16\" font-weight=\"bold\">Decode tokens/s, batch 1, per device "
		   "and precision</text>\n", left);
	fprintf(f, "<text x=\"%d\" y=\"44\" font-size=\"12\" fill=\"#444\">Black dashes: bandwidth ceiling (read "
		   "bandwidth / bytes per token); hatched: modeled, not measured.</text>\n", left);
	if (s.log)
		fprintf(f, "<text x=\"%d\" y=\"60\" font-size=\"12\" fill=\"#444\">Logarithmic axis: the rates span more "
			   "than a factor of 30.</text>\n", left);
	axis(f, &s, left, width - 20);
	fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333\"/>\n", left, top + height, width - 20,
		top + height);
	fprintf(f, "<text x=\"16\" y=\"%d\" transform=\"rotate(-90 16 %d)\" text-anchor=\"middle\">tokens/s</text>\n",
		top + height / 2, top + height / 2);
	for (int i = 0; i < t->n; i++) {
		const struct cmp_group *g = &t->g[i];
		int x0 = left + i * group_w + (group_w - t->n_precs * bar) / 2;
		for (int p = 0; p < t->n_precs; p++) {
			int x = x0 + p * bar;
			double c = cmp_ceiling(g, p);
			if (g->tg[p] > 0) {
				double y = y_of(&s, g->tg[p]);
				/* the value goes above the ceiling mark when the mark sits just over the bar */
				double label_y = c > 0 && y - y_of(&s, c) >= 0 && y - y_of(&s, c) < 14 ? y_of(&s, c) - 4 : y - 4;
				char fill[32], num[32];
				int nofit = !strcmp(g->bound[p], "no fit");
				if (g->modeled)
					snprintf(fill, sizeof(fill), "url(#hatch%d)", p);
				else
					snprintf(fill, sizeof(fill), "%s", color_of(t, p));
				compact(num, sizeof(num), g->tg[p]);
				fprintf(f, "<rect x=\"%d\" y=\"%.1f\" width=\"%d\" height=\"%.1f\" fill=\"%s\" stroke=\"%s\"%s>"
					   "<title>", x + 3, y, bar - 6, top + height - y, fill, color_of(t, p),
					nofit ? " opacity=\"0.35\"" : "");
				xml_text(f, g->device, 128);
				fprintf(f, ", ");
				xml_text(f, t->precs[p], 32);
				fprintf(f, ": %.2f tok/s%s</title></rect>\n", g->tg[p], nofit ? " (does not fit)" : "");
				fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"10\"%s>%s</text>\n",
					x + bar / 2, label_y, nofit ? " fill=\"#c00\"" : "", nofit ? "no fit" : num);
			}
			if (c > 0)
				fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"black\" stroke-width=\"2\" "
					   "stroke-dasharray=\"4,2\"/>\n", x + 1, y_of(&s, c), x + bar - 1, y_of(&s, c));
		}
		int cx = left + i * group_w + group_w / 2;
		label(f, cx, top + height + 18, g->device);
		fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"10\" fill=\"#555\">%s · %s</text>\n",
			cx, top + height + 46, g->backend, g->modeled ? "modeled" : "measured");
		/* The model over its run of groups (compare sorts groups by model), a rule between models. */
		if (i == 0 || strcmp(t->g[i - 1].model, g->model)) {
			int j = i;
			while (j + 1 < t->n && !strcmp(t->g[j + 1].model, g->model))
				j++;
			int x1 = left + i * group_w, x2 = left + (j + 1) * group_w;
			if (i > 0)
				fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#999\"/>\n", x1, top - 6, x1,
					top + height + 50);
			fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"12\" font-weight=\"bold\">",
				(x1 + x2) / 2, top - 10);
			xml_text(f, g->model, 40);
			fprintf(f, "</text>\n");
		}
	}
	int lx = left;
	for (int p = 0; p < t->n_precs; p++) {
		fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"14\" height=\"14\" fill=\"%s\"/>\n", lx, legend_y,
			color_of(t, p));
		fprintf(f, "<text x=\"%d\" y=\"%d\">", lx + 20, legend_y + 12);
		xml_text(f, t->precs[p], 30);
		fprintf(f, "</text>\n");
		lx += 40 + 8 * (int)strlen(t->precs[p]);
	}
	fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"14\" height=\"14\" fill=\"url(#hatch0)\" stroke=\"%s\"/>\n"
		   "<text x=\"%d\" y=\"%d\">modeled</text>\n", lx, legend_y, color_of(t, 0), lx + 20, legend_y + 12);
	lx += 90;
	fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\" stroke-width=\"2\" "
		   "stroke-dasharray=\"4,2\"/>\n<text x=\"%d\" y=\"%d\">bandwidth ceiling</text>\n</svg>\n",
		lx, legend_y + 7, lx + 24, legend_y + 7, lx + 30, legend_y + 12);
	if (fclose(f) != 0) {
		fprintf(stderr, "awqrun compare: cannot write %s\n", path);
		return -1;
	}
	return 0;
}
