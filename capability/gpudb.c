/* GPU spec database: capability/data/gpus.csv, embedded at build time and parsed on first use. Rows
 * are matched to probed devices by name patterns (the `match` column) and compute capability;
 * unknown CUDA parts fall back to per-architecture rates (gpudb_rules.c). Every row is cited. */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caps_internal.h"
#include "error.h"

enum col {
	C_NAME, C_VENDOR, C_ARCH, C_CC, C_SM, C_BOOST, C_MEMTYPE, C_MEMGB, C_BW, C_L2, C_TDP,
	C_FP32, C_FP16, C_BF16, C_TF32, C_FP8, C_INT8, C_INT4, C_FP4, C_FP16ACC32,
	C_SOURCE, C_API, C_NOTES, C_MATCH, C_ALIASES, C_SUSTAINED, C_COUNT
};

static const char *const col_names[C_COUNT] = {
	"name", "vendor", "arch", "compute_capability", "sm_count", "boost_clock_mhz", "mem_type", "mem_gb",
	"mem_bw_gbs", "l2_mb", "tdp_w", "fp32_cuda_core", "fp16_tc", "bf16_tc", "tf32_tc", "fp8_tc", "int8_tc",
	"int4_tc", "fp4_tc", "fp16_tc_fp32acc", "source", "api", "notes", "match", "aliases", "sustained_clock_mhz",
};

/* Which rate column fills which format. */
static const struct {
	enum col col;
	enum awq_mfmt fmt;
} rate_cols[] = {
	{C_FP32, AWQ_MF_FP32}, {C_FP16, AWQ_MF_FP16}, {C_FP16ACC32, AWQ_MF_FP16_F32ACC}, {C_BF16, AWQ_MF_BF16},
	{C_TF32, AWQ_MF_TF32}, {C_FP8, AWQ_MF_FP8}, {C_INT8, AWQ_MF_INT8}, {C_INT4, AWQ_MF_INT4}, {C_FP4, AWQ_MF_FP4},
};

#define MAX_FIELDS 40

/* Split one CSV line (no quoting: the file uses ';' inside text) into trimmed fields. */
static int split(char *line, char **f, int max)
{
	int n = 0;
	for (char *p = line;; p++) {
		char *e = strchr(p, ',');
		if (n < max)
			f[n] = p;
		n++;
		if (!e)
			break;
		*e = 0;
		p = e;
	}
	for (int i = 0; i < n && i < max; i++) {
		while (isspace((unsigned char)*f[i]))
			f[i]++;
		size_t l = strlen(f[i]);
		while (l && isspace((unsigned char)f[i][l - 1]))
			f[i][--l] = 0;
	}
	return n;
}

/* "1980?" -> 1980 unconfirmed; "" -> unknown; "304 CU" -> 304. */
static int number(const char *s, struct awq_figure *f, const char *what, int line, char *err, size_t errlen)
{
	char *end;
	memset(f, 0, sizeof(*f));
	if (!*s || strcmp(s, "?") == 0)
		return 0;
	double v = strtod(s, &end);
	if (end == s || v < 0)
		return awq_err(err, errlen, AWQ_EFORMAT, "gpus.csv line %d: %s '%s' is not a number", line, what, s);
	f->v = v;
	f->src = AWQ_SRC_DATABASE;
	f->unconfirmed = strchr(s, '?') != NULL;
	return 0;
}

static void copy(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src);
}

static int parse_row(char **f, const int *idx, int line, struct awq_gpu_row *r, char *err, size_t errlen)
{
	struct awq_figure units;
	memset(r, 0, sizeof(*r));
	copy(r->name, sizeof(r->name), f[idx[C_NAME]]);
	copy(r->vendor, sizeof(r->vendor), f[idx[C_VENDOR]]);
	copy(r->arch, sizeof(r->arch), f[idx[C_ARCH]]);
	copy(r->cc, sizeof(r->cc), f[idx[C_CC]]);
	copy(r->mem_type, sizeof(r->mem_type), f[idx[C_MEMTYPE]]);
	copy(r->source, sizeof(r->source), f[idx[C_SOURCE]]);
	copy(r->api, sizeof(r->api), f[idx[C_API]]);
	copy(r->notes, sizeof(r->notes), f[idx[C_NOTES]]);
	copy(r->match, sizeof(r->match), f[idx[C_MATCH]]);
	copy(r->aliases, sizeof(r->aliases), f[idx[C_ALIASES]]);
	if (!r->name[0])
		return awq_err(err, errlen, AWQ_EFORMAT, "gpus.csv line %d: empty name", line);
	r->cc_major = r->cc_minor = -1;
	int ma, mi;
	char tail;
	if (sscanf(r->cc, "%d.%d%c", &ma, &mi, &tail) == 2)
		r->cc_major = ma, r->cc_minor = mi;
	int rc = number(f[idx[C_SM]], &units, "sm_count", line, err, errlen);
	rc = rc ? rc : number(f[idx[C_BOOST]], &r->boost_mhz, "boost_clock_mhz", line, err, errlen);
	rc = rc ? rc : number(f[idx[C_MEMGB]], &r->mem_gb, "mem_gb", line, err, errlen);
	rc = rc ? rc : number(f[idx[C_BW]], &r->mem_bw_gbs, "mem_bw_gbs", line, err, errlen);
	rc = rc ? rc : number(f[idx[C_L2]], &r->l2_mb, "l2_mb", line, err, errlen);
	rc = rc ? rc : number(f[idx[C_TDP]], &r->tdp_w, "tdp_w", line, err, errlen);
	rc = rc ? rc : number(f[idx[C_SUSTAINED]], &r->sustained_mhz, "sustained_clock_mhz", line, err, errlen);
	for (size_t i = 0; !rc && i < sizeof(rate_cols) / sizeof(rate_cols[0]); i++)
		rc = number(f[idx[rate_cols[i].col]], &r->rate[rate_cols[i].fmt], col_names[rate_cols[i].col], line, err,
			    errlen);
	r->units = (int)units.v;
	r->unit_known = units.v > 0 && !units.unconfirmed;
	return rc;
}

static int header(char **f, int n, int *idx, char *err, size_t errlen)
{
	for (int c = 0; c < C_COUNT; c++) {
		idx[c] = -1;
		for (int i = 0; i < n && i < MAX_FIELDS; i++)
			if (strcmp(f[i], col_names[c]) == 0)
				idx[c] = i;
		if (idx[c] < 0)
			return awq_err(err, errlen, AWQ_EFORMAT, "gpus.csv: the header has no '%s' column", col_names[c]);
	}
	return 0;
}

int awq_gpudb_parse(const char *text, size_t len, struct awq_gpu_row **rows, int *n, char *err, size_t errlen)
{
	char *buf = malloc(len + 1), *f[MAX_FIELDS];
	int idx[C_COUNT], ncols = 0, line = 0, count = 0, cap = 0, rc = 0;
	struct awq_gpu_row *out = NULL;

	if (!buf)
		return awq_err(err, errlen, AWQ_ENOMEM, "out of memory reading the GPU database");
	memcpy(buf, text, len);
	buf[len] = 0;
	for (char *p = buf, *next; p && *p && !rc; p = next) {
		next = strchr(p, '\n');
		if (next)
			*next++ = 0;
		line++;
		p[strcspn(p, "\r")] = 0;
		if (!*p)
			continue;
		int nf = split(p, f, MAX_FIELDS);
		if (line == 1) {
			ncols = nf;
			rc = header(f, nf, idx, err, errlen);
			continue;
		}
		if (nf != ncols) {
			rc = awq_err(err, errlen, AWQ_EFORMAT, "gpus.csv line %d: %d fields, the header has %d", line, nf, ncols);
			break;
		}
		if (count == cap) {
			cap = cap ? cap * 2 : 32;
			struct awq_gpu_row *t = realloc(out, (size_t)cap * sizeof(*out));
			if (!t) {
				rc = awq_err(err, errlen, AWQ_ENOMEM, "out of memory reading the GPU database");
				break;
			}
			out = t;
		}
		rc = parse_row(f, idx, line, &out[count], err, errlen);
		if (!rc)
			count++;
	}
	free(buf);
	if (!rc && count == 0)
		rc = awq_err(err, errlen, AWQ_EFORMAT, "gpus.csv has no rows");
	if (rc) {
		free(out);
		return rc;
	}
	*rows = out;
	*n = count;
	return 0;
}

static struct awq_gpu_row *db_rows;
static int db_n;
static int db_rc;
static char db_err[AWQ_ERRLEN];
static pthread_once_t db_once = PTHREAD_ONCE_INIT;

static void db_load(void)
{
	db_rc = awq_gpudb_parse(awq_gpudb_csv, awq_gpudb_csv_len, &db_rows, &db_n, db_err, sizeof(db_err));
}

int awq_gpudb_rows(const struct awq_gpu_row **rows, int *n, char *err, size_t errlen)
{
	pthread_once(&db_once, db_load);
	if (db_rc)
		return awq_err(err, errlen, db_rc, "%s", db_err);
	*rows = db_rows;
	*n = db_n;
	return 0;
}

static int ieq_n(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (tolower((unsigned char)a[i]) != tolower((unsigned char)b[i]) || !a[i])
			return 0;
	return 1;
}

/* pat occurs in hay as a whole word (case-insensitive): "A10" does not match "A100". */
static int word_in(const char *hay, const char *pat, size_t pl)
{
	for (const char *p = hay; *p; p++) {
		if (!ieq_n(p, pat, pl))
			continue;
		int before = p > hay && isalnum((unsigned char)p[-1]);
		int after = isalnum((unsigned char)p[pl]);
		if (!before && !after)
			return 1;
	}
	return 0;
}

/* Laptop parts share desktop names but not their clocks or power: never match one to the other. */
static int mobile(const char *s)
{
	static const char *const words[] = {"laptop", "mobile", "max-q"};
	for (size_t i = 0; i < 3; i++)
		if (word_in(s, words[i], strlen(words[i])))
			return 1;
	return 0;
}

/* Length of the longest pattern of r that name contains, 0 for none. */
static size_t match_len(const struct awq_gpu_row *r, const char *name)
{
	size_t best = 0;
	for (const char *p = r->match; *p;) {
		size_t pl = strcspn(p, "|");
		char pat[sizeof(r->match)];
		memcpy(pat, p, pl);
		pat[pl] = 0;
		if (pl && word_in(name, pat, pl) && mobile(name) == mobile(pat) && pl > best)
			best = pl;
		p += pl;
		if (*p == '|')
			p++;
	}
	return best;
}

const struct awq_gpu_row *awq_gpudb_match(const char *name, int cc_major, int cc_minor)
{
	const struct awq_gpu_row *rows, *best = NULL;
	size_t best_len = 0;
	int n;
	if (awq_gpudb_rows(&rows, &n, NULL, 0))
		return NULL;
	for (int i = 0; i < n; i++) {
		const struct awq_gpu_row *r = &rows[i];
		if (cc_major >= 0 && r->cc_major >= 0 && (r->cc_major != cc_major || r->cc_minor != cc_minor))
			continue;
		size_t l = match_len(r, name);
		if (l > best_len)
			best = r, best_len = l;
	}
	return best;
}

static int ieq(const char *a, const char *b)
{
	size_t la = strlen(a);
	return la == strlen(b) && ieq_n(a, b, la);
}

const struct awq_gpu_row *awq_gpudb_find(const char *name)
{
	const struct awq_gpu_row *rows;
	int n;
	if (awq_gpudb_rows(&rows, &n, NULL, 0))
		return NULL;
	for (int i = 0; i < n; i++) {
		if (ieq(rows[i].name, name))
			return &rows[i];
		for (const char *p = rows[i].aliases; *p;) {
			size_t l = strcspn(p, " ");
			if (l && l == strlen(name) && ieq_n(p, name, l))
				return &rows[i];
			p += l;
			p += strspn(p, " ");
		}
	}
	return NULL;
}

int awq_caps_db_aliases(char *buf, size_t len)
{
	const struct awq_gpu_row *rows;
	size_t used = 0;
	int n;
	if (len)
		buf[0] = 0;
	if (awq_gpudb_rows(&rows, &n, NULL, 0))
		return AWQ_EFORMAT;
	for (int i = 0; i < n; i++) {
		int w = snprintf(buf + used, len > used ? len - used : 0, "%-22s %s\n", rows[i].aliases, rows[i].name);
		if (w < 0 || (size_t)w >= len - used)
			return AWQ_ETOOBIG;
		used += (size_t)w;
	}
	return 0;
}

int awq_caps_from_db(const char *name, struct awq_device_caps *out, char *err, size_t errlen)
{
	const struct awq_gpu_row *rows;
	int n, rc = awq_gpudb_rows(&rows, &n, err, errlen);
	if (rc)
		return rc;
	const struct awq_gpu_row *r = awq_gpudb_find(name);
	if (!r)
		return awq_err(err, errlen, AWQ_EINVAL,
			       "'%s' is not in the GPU database (awqrun caps --list-gpus shows names and aliases)", name);
	awq_gpudb_fill(r, out);
	return 0;
}
