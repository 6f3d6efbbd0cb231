/* Internal interface of the capability library: one probe per API (each file usable without the
 * others), the GPU spec database, and helpers shared by the model and the report. */
#ifndef AWQ_CAPS_INTERNAL_H
#define AWQ_CAPS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "awqrun_caps.h"
#include "model.h"

static inline void awq_fig_set(struct awq_figure *f, double v, enum awq_src src)
{
	f->v = v;
	f->src = v > 0 ? src : AWQ_SRC_NONE;
	f->unconfirmed = 0;
}

/* Clear d and fill the fields every record needs. */
void awq_caps_init(struct awq_device_caps *d, const char *backend, int index);

/* CPU: cpuid / getauxval flags, hwloc topology; with measure, the read bandwidth of all cores and
 * the thread pool's dispatch latency (about 0.3 s). */
int awq_probe_cpu(struct awq_device_caps *d, int measure, char *err, size_t errlen);

/* GPU probes: fill out[0..max), return the count; 0 with `why` saying why none (no driver library,
 * no device), < 0 on a failure worth reporting. Each loads its driver library with dlopen. */
int awq_probe_cuda(struct awq_device_caps *out, int max, int measure, char *why, size_t whylen);
int awq_probe_vulkan(struct awq_device_caps *out, int max, char *why, size_t whylen);
int awq_probe_opencl(struct awq_device_caps *out, int max, char *why, size_t whylen);
/* This process's devices (no OpenCL), probed once and kept (predict_device.c); measure: with the
 * timed bandwidth and launch runs, re-probing once if the kept probe skipped them. Copies up to max
 * records into out and returns their count, or < 0. */
int awq_caps_probe_cached(struct awq_device_caps *out, int max, int measure, char *err, size_t errlen);

/* --- GPU spec database (gpudb.c) --------------------------------------------------------- */

struct awq_gpu_row {
	char name[80], vendor[16], arch[48], cc[24], mem_type[32];
	char source[400], api[64], notes[600], match[160], aliases[96];
	int cc_major, cc_minor;  /* -1 when not a CUDA compute capability */
	int units;               /* SMs / CUs / Xe-cores / GPU cores */
	struct awq_figure boost_mhz, mem_gb, mem_bw_gbs, l2_mb, tdp_w, sustained_mhz;
	struct awq_figure rate[AWQ_MF_COUNT];
	int unit_known;          /* units is a number from the table (not '?') */
};

/* Parse the embedded CSV (once; later calls return the same table). */
int awq_gpudb_rows(const struct awq_gpu_row **rows, int *n, char *err, size_t errlen);
/* Parse CSV text into a malloc'ed table (tests validate the shipped file with it). */
int awq_gpudb_parse(const char *text, size_t len, struct awq_gpu_row **rows, int *n, char *err, size_t errlen);
/* The row a probed device name (and compute capability, -1 if unknown) matches, or NULL. */
const struct awq_gpu_row *awq_gpudb_match(const char *name, int cc_major, int cc_minor);
/* A row by exact name or alias (case-insensitive), or NULL. */
const struct awq_gpu_row *awq_gpudb_find(const char *name);
/* Attach rates and peak bandwidth to a probed GPU: database row, else per-architecture rule, and
 * record which in d->db_row / d->db_how. */
void awq_gpudb_attach(struct awq_device_caps *d);
/* Fill a record for a database row (a GPU that is not present). */
void awq_gpudb_fill(const struct awq_gpu_row *r, struct awq_device_caps *d);

extern const char awq_gpudb_csv[];
extern const size_t awq_gpudb_csv_len;

/* --- performance model internals (perfmodel.c) ------------------------------------------- */

/* Bytes one weight occupies when stored in scheme s (STORED: as it is). Exposed for tests of the
 * per-weight counting (MoE). */
double awq_perf_weight_bytes(const awq_model *m, const struct awq_weight *w, enum awq_scheme s);

/* --- report helpers (report.c, report_json.c) ------------------------------------------- */

enum { CAPS_W16, CAPS_AWQ, CAPS_FP8, CAPS_NSCHEMES };

/* Predictions of one model on one device in the three schemes the report compares. */
struct caps_row {
	struct awq_perf_result res[CAPS_NSCHEMES];
	enum awq_scheme scheme16; /* BF16 where the device has BF16 units, else FP16 */
};

int awq_caps_row(const struct awq_device_caps *d, const awq_model *m, const struct awq_caps_report_opts *o,
		 struct caps_row *row, char *err, size_t errlen);
/* One plain sentence naming what decides AWQ's gain on d, from the predictions of one model. */
void awq_caps_verdict(const struct awq_device_caps *d, const char *model, const struct caps_row *row, char *buf,
		      size_t len);
/* Whether the sentence should speak about this model rather than the one picked before (*rank keeps
 * the best so far): the largest model that fits in 16-bit and 4-bit, else the largest that fits in
 * 4-bit, else the first. */
int awq_caps_verdict_pick(const struct caps_row *row, int first, int *rank);
int awq_caps_report_json(FILE *f, const struct awq_caps_report_opts *o, char *err, size_t errlen);

#endif
