/* The GPU spec database: the shipped CSV (argv[1]) equals the embedded copy and is valid (unique
 * names and aliases, sane units, every row cited, FP32-accumulate never above the best mode), rows
 * are matched to driver names the way the probes see them, the per-architecture rules reproduce the
 * rows they stand in for, and malformed CSV is rejected with a line number. */
#include <stdlib.h>
#include <string.h>

#include "caps_internal.h"
#include "ct.h"

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;
	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)))
		*len = fread(buf, 1, (size_t)n, f);
	fclose(f);
	return buf;
}

static int in_range(const struct awq_figure *f, double lo, double hi)
{
	return f->v == 0 || (f->v >= lo && f->v <= hi);
}

static void check_rows(const struct awq_gpu_row *r, int n)
{
	CHECK(n >= 20, "only %d rows", n);
	for (int i = 0; i < n; i++) {
		const struct awq_gpu_row *x = &r[i];
		for (int j = 0; j < i; j++)
			CHECK(strcmp(x->name, r[j].name) != 0, "duplicate row '%s'", x->name);
		/* Unique aliases: each resolves to the embedded row of the same name. */
		for (const char *a = x->aliases; *a; a += strspn(a, " ")) {
			char one[32];
			size_t l = strcspn(a, " ");
			snprintf(one, sizeof(one), "%.*s", (int)l, a);
			const struct awq_gpu_row *f = awq_gpudb_find(one);
			CHECK(f && strcmp(f->name, x->name) == 0, "alias '%s' of '%s' resolves to '%s'", one, x->name,
			      f ? f->name : "nothing");
			a += l;
		}
		CHECK(strlen(x->source) >= 10, "'%s' is not cited", x->name);
		CHECK(x->match[0] && x->aliases[0], "'%s' has no match pattern or alias", x->name);
		CHECK(x->mem_bw_gbs.v >= 50 && x->mem_bw_gbs.v <= 20000, "'%s': %g GB/s", x->name, x->mem_bw_gbs.v);
		CHECK(x->mem_gb.v >= 1 && x->mem_gb.v <= 1024, "'%s': %g GB", x->name, x->mem_gb.v);
		CHECK(in_range(&x->boost_mhz, 300, 4000) && in_range(&x->tdp_w, 5, 2000) && in_range(&x->l2_mb, 0.5, 512),
		      "'%s': clock %g MHz, %g W, L2 %g MB", x->name, x->boost_mhz.v, x->tdp_w.v, x->l2_mb.v);
		for (int f = 0; f < AWQ_MF_COUNT; f++)
			CHECK(in_range(&x->rate[f], 0.1, 50000), "'%s': %s rate %g", x->name, awq_mfmt_name(f), x->rate[f].v);
		CHECK(x->rate[AWQ_MF_FP16_F32ACC].v <= x->rate[AWQ_MF_FP16].v, "'%s': FP32-acc %g above FP16 %g", x->name,
		      x->rate[AWQ_MF_FP16_F32ACC].v, x->rate[AWQ_MF_FP16].v);
		if (!strcmp(x->vendor, "NVIDIA"))
			CHECK(x->cc_major >= 7 && x->cc_minor >= 0, "'%s': compute capability '%s'", x->name, x->cc);
	}
}

/* An unknown part of a known architecture gets rates from the rule; a row with confirmed SMs and
 * clock must come out within 20 % of its own rates (the rules were derived from these rows). */
static void check_rules(const struct awq_gpu_row *r, int n)
{
	int tried = 0;
	for (int i = 0; i < n; i++) {
		const struct awq_gpu_row *x = &r[i];
		if (x->cc_major < 0 || !x->unit_known || x->boost_mhz.v <= 0 || x->boost_mhz.unconfirmed ||
		    x->rate[AWQ_MF_FP16].unconfirmed)
			continue;
		struct awq_device_caps d;
		awq_caps_init(&d, "cuda", 0);
		snprintf(d.name, sizeof(d.name), "Prototype %s", strstr(x->name, "GeForce") ? "GeForce" : "board");
		d.cuda.cc_major = x->cc_major, d.cuda.cc_minor = x->cc_minor;
		d.units = x->units, d.clock_mhz = x->boost_mhz.v;
		awq_gpudb_attach(&d);
		CHECK(d.db_row[0] == 0 && strstr(d.db_how, "rule"), "'%s': %s", x->name, d.db_how);
		for (int f = AWQ_MF_FP16; f <= AWQ_MF_FP16_F32ACC; f++) {
			double want = x->rate[f].v, got = d.rate[f].v;
			CHECK(got > 0.8 * want && got < 1.2 * want, "'%s' %s: rule %g, row %g", x->name, awq_mfmt_name(f), got, want);
		}
		CHECK((d.rate[AWQ_MF_FP8].v > 0) == (x->rate[AWQ_MF_FP8].v > 0), "'%s': FP8 rule %g, row %g", x->name,
		      d.rate[AWQ_MF_FP8].v, x->rate[AWQ_MF_FP8].v);
		tried++;
	}
	CHECK(tried >= 10, "only %d rows could check the rules", tried);
}

static void check_match(void)
{
	static const struct {
		const char *probe;
		int major, minor;
		const char *row; /* NULL: no match expected */
	} cases[] = {
		{"NVIDIA H100 80GB HBM3", 9, 0, "NVIDIA H100 SXM5"},
		{"NVIDIA H100 80GB HBM3", 8, 0, NULL},
		{"Tesla T4", 7, 5, "NVIDIA T4"},
		{"NVIDIA A100-SXM4-80GB", 8, 0, "NVIDIA A100 80GB SXM4"},
		{"NVIDIA A100 80GB PCIe", 8, 0, "NVIDIA A100 80GB PCIe"},
		{"NVIDIA A10", 8, 6, "NVIDIA A10"},
		{"NVIDIA L4", 8, 9, "NVIDIA L4"},
		{"NVIDIA L40S", 8, 9, "NVIDIA L40S"},
		{"NVIDIA GeForce RTX 4090", 8, 9, "NVIDIA GeForce RTX 4090"},
		{"NVIDIA GeForce RTX 4090 Laptop GPU", 8, 9, NULL},
		{"NVIDIA H200", 9, 0, "NVIDIA H200 SXM"},
		{"NVIDIA H20", 9, 0, "NVIDIA H20"},
		{"NVIDIA RTX PRO 6000 Blackwell Workstation Edition", 12, 0, "NVIDIA RTX PRO 6000 Blackwell Workstation"},
		{"AMD Radeon RX 7900 XTX (RADV NAVI31)", -1, -1, "AMD Radeon RX 7900 XTX"},
		{"Intel(R) Arc(tm) A770 Graphics (DG2)", -1, -1, "Intel Arc A770 16GB"},
		{"llvmpipe (LLVM 15.0.6, 256 bits)", -1, -1, NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct awq_gpu_row *r = awq_gpudb_match(cases[i].probe, cases[i].major, cases[i].minor);
		const char *got = r ? r->name : "(none)", *want = cases[i].row ? cases[i].row : "(none)";
		CHECK(strcmp(got, want) == 0, "'%s' matched '%s', expected '%s'", cases[i].probe, got, want);
	}
	static const char *const aliases[] = {"t4", "a100-80g", "l40s", "rtx-4090", "h100", "h200", "b200", "rtx-5090",
					      "rtx-pro-6000", "H100", "RTX-PRO-6000"};
	for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
		CHECK(awq_gpudb_find(aliases[i]) != NULL, "alias '%s' unknown", aliases[i]);
	CHECK(awq_gpudb_find("h1000") == NULL && awq_gpudb_find("") == NULL, "nonsense alias resolved");
	struct awq_device_caps d;
	char err[AWQ_ERRLEN];
	CHECK(awq_caps_from_db("nosuchgpu", &d, err, sizeof(err)) == AWQ_EINVAL && strstr(err, "nosuchgpu"),
	      "unknown GPU: '%s'", err);
}

/* An unknown Ada part (not in the table): rates from the rule with the probe's SMs and clock. */
static void check_fallback(void)
{
	struct awq_device_caps d;
	awq_caps_init(&d, "cuda", 0);
	snprintf(d.name, sizeof(d.name), "NVIDIA RTX 4000 Ada Generation");
	d.cuda.cc_major = 8, d.cuda.cc_minor = 9, d.units = 48, d.clock_mhz = 2175;
	awq_gpudb_attach(&d);
	double fp8 = 48 * 2175e6 * 2048 / 1e12;
	CHECK(d.rate[AWQ_MF_FP8].v > 0.999 * fp8 && d.rate[AWQ_MF_FP8].v < 1.001 * fp8, "FP8 %g, want %g",
	      d.rate[AWQ_MF_FP8].v, fp8);
	CHECK(d.rate[AWQ_MF_FP8].src == AWQ_SRC_ARCH_RULE && strstr(d.db_how, "Ada"), "how: %s", d.db_how);
	CHECK(d.native[AWQ_MF_FP4] == 0 && d.native[AWQ_MF_INT8] == 1, "Ada formats wrong");
	/* A newer architecture than any rule: the newest rule, said so. */
	awq_caps_init(&d, "cuda", 0);
	snprintf(d.name, sizeof(d.name), "NVIDIA Future GPU");
	d.cuda.cc_major = 15, d.cuda.cc_minor = 0, d.units = 100, d.clock_mhz = 2000;
	awq_gpudb_attach(&d);
	CHECK(d.rate[AWQ_MF_FP16].v > 0 && strstr(d.db_how, "assumed"), "future GPU: %s", d.db_how);
}

static void check_bad_csv(void)
{
	static const char missing[] = "name,vendor\nX,Y\n";
	struct awq_gpu_row *rows = NULL;
	int n = 0;
	char err[AWQ_ERRLEN] = "", buf[4096];
	CHECK(awq_gpudb_parse(missing, strlen(missing), &rows, &n, err, sizeof(err)) == AWQ_EFORMAT &&
		      strstr(err, "column"), "missing columns: '%s'", err);
	const char *csv = awq_gpudb_csv, *row = strchr(csv, '\n') + 1, *row_end = strchr(row, '\n');
	int hl = (int)(row - csv);
	snprintf(buf, sizeof(buf), "%.*sShort,NVIDIA,x\n", hl, csv);
	CHECK(awq_gpudb_parse(buf, strlen(buf), &rows, &n, err, sizeof(err)) == AWQ_EFORMAT && strstr(err, "line 2"),
	      "short row: '%s'", err);
	/* The first row with a word in its 9th field (mem_bw_gbs in the shipped column order). */
	const char *field = row;
	for (int commas = 0; commas < 8; field++)
		commas += *field == ',';
	const char *field_end = field + strcspn(field, ",");
	snprintf(buf, sizeof(buf), "%.*s%.*sfast%.*s\n", hl, csv, (int)(field - row), row, (int)(row_end - field_end),
		 field_end);
	CHECK(awq_gpudb_parse(buf, strlen(buf), &rows, &n, err, sizeof(err)) == AWQ_EFORMAT && strstr(err, "mem_bw_gbs"),
	      "bad number: '%s'", err);
}

int main(int argc, char **argv)
{
	size_t len = 0;
	char *text = argc > 1 ? read_file(argv[1], &len) : NULL;
	struct awq_gpu_row *rows = NULL;
	const struct awq_gpu_row *emb;
	int n = 0, ne = 0;
	char err[AWQ_ERRLEN];
	if (!text) {
		fprintf(stderr, "usage: %s path/to/capability/data/gpus.csv\n", argv[0]);
		return 2;
	}
	CHECK(len == awq_gpudb_csv_len && memcmp(text, awq_gpudb_csv, len) == 0,
	      "the embedded database differs from %s (re-run cmake)", argv[1]);
	CHECK(awq_gpudb_parse(text, len, &rows, &n, err, sizeof(err)) == 0, "%s", err);
	CHECK(awq_gpudb_rows(&emb, &ne, err, sizeof(err)) == 0 && ne == n, "embedded: %d rows (%s)", ne, err);
	if (rows)
		check_rows(rows, n);
	if (rows)
		check_rules(rows, n);
	check_match();
	check_fallback();
	check_bad_csv();
	free(rows);
	free(text);
	return ct_result("caps_gpudb");
}
