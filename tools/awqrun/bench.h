/* `awqrun bench` and `awqrun compare`: measurement, the performance model's prediction beside each
 * measured row, memory accounting, and the report formats (markdown, CSV, JSON; docs/bench-schema.md). */
#ifndef AWQ_BENCH_H
#define AWQ_BENCH_H

#include <stdint.h>
#include <stdio.h>

#include "awqrun.h"

#define BENCH_MAX_TESTS 8
#define BENCH_SCHEMA "awqrun-bench/2"

/* Memory of one session: what the backend allocated (awq_session_get_info) beside what the
 * performance model accounts for the same model, context and batch (the accounting `--fit` uses). */
struct bench_mem {
	uint64_t weights, kv, act, workspace, total; /* allocated; workspace = total - the other three */
	uint64_t weights_q4, weights_16;             /* accounted weights by format (AWQ INT4 incl. scales/zeros, 16-bit) */
	uint64_t acc_weights, acc_kv, acc_act, acc_total; /* accounted (0 = the model could not say) */
	int max_ctx, max_batch;                           /* the session's KV positions and rows per step */
};

struct bench_result {
	char model[96], precision[32], backend[16], device[128], driver[96], kernels[192], test[32];
	char method[8];   /* "llama" (ppN / tgN) or "qwen" (long context) */
	char bound[16];   /* the performance model's limit: bandwidth, compute, overhead, ... ("" unknown) */
	int device_index; /* within the backend */
	int n_devices;    /* devices the run used (1) */
	int modeled;      /* 1: no measurement, a row of the performance model (compare --gpu) */
	int n_prompt, n_gen, repeats;
	int n_depth; /* positions already in the KV cache when the test ran (llama-bench -d) */
	int trained_positions; /* the model's max_position_embeddings (0 = unknown) */
	int past_trained;      /* 1: the test reached positions past them (a speed figure only) */
	double tok_s, tok_s_stddev;
	double predicted_tok_s; /* performance model for this device, model, test (0 = unknown) */
	double bytes_per_token; /* weights read per token (+ mean KV read for decode) */
	double gbs;             /* decode: bytes_per_token * tok_s / 1e9; prefill 0 (not a bandwidth figure) */
	double bw_gbs;          /* the device's measured read bandwidth (0 = unknown) */
	char bw_source[40];     /* how bw_gbs was found: "read kernel", "copy (caps probe)", "given (--bw)", ... */
	struct bench_mem mem;
	uint64_t weight_bytes; /* all weights as stored in the model */
};

struct bench_opts {
	int prompts[BENCH_MAX_TESTS], n_prompts;
	int gens[BENCH_MAX_TESTS], n_gens;
	int depths[BENCH_MAX_TESTS], n_depths; /* context filled before each test (default {0}) */
	int repeats;
	int threads;
	int device;
	int quiet;
	int predict;  /* fill predicted_tok_s / bound / accounted memory */
	int sample;   /* decode tests sample with awqrun's default sampler (top-k read back) */
	float repeat_penalty; /* with sample: awqrun run's --repeat-penalty (1: none; default 64 tokens back) */
	double bw_gbs; /* device read bandwidth for % of BW and the prediction (0: unknown) */
	uint64_t seed;
};

/* Progress line on stderr: shown when stderr is a terminal or when forced (--progress). */
void bench_progress_enable(int on);
void bench_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void bench_progress_done(void);

/* Run every pp/tg test for one model on one backend device; appends to res (capacity max), returns
 * the number of rows added or a negative status with err filled. */
int bench_model(awq_model *m, const char *model_name, const char *backend, const struct bench_opts *o,
		struct bench_result *res, int max, char *err, size_t errlen);

/* The long-context method of the Qwen speed benchmark: batch 1, for each input length L a fresh
 * session sized to L + gen, a warm-up, then prefill L tokens and decode gen; speed = (L + gen) /
 * total time; the device memory the session holds is reported. Lengths the model or device cannot
 * hold are skipped with a note. */
int bench_long_context(awq_model *m, const char *model_name, const char *backend, const struct bench_opts *o,
		       const int *inputs, int n_inputs, int gen, struct bench_result *res, int max, char *err,
		       size_t errlen);

/* The device's read bandwidth, measured once per (backend, device) in this process: best of a few
 * short runs of the backend's read kernel on session s; where the backend has none, the capability
 * probe's measurement (CUDA: a device-to-device copy), else the database's peak. Returns 0 when
 * nothing is known; *source says which (static string). */
double bench_device_bandwidth(awq_session *s, const char *backend, int device_index, const char *device,
			      const char **source);

/* --- accounting (memtable.c) ------------------------------------------------------------------ */

/* Accounted memory of model m in its stored format on a device of `backend` ("cpu", "vulkan", "cuda";
 * the KV-cache element size follows the backend) for max_ctx positions and max_batch rows, split by
 * weight format. Fills the acc_* and weights_* fields of mem; 0 or a negative status. */
int bench_mem_account(const awq_model *m, const char *backend, const char *device, int max_ctx, int max_batch,
		      struct bench_mem *mem, char *err, size_t errlen);

/* `awqrun bench --fit`: which presets fit on GPUs of the given sizes (GB) in each precision at
 * context ctx. Returns 0, 1 on an error (message printed), 2 on a usage error. */
int bench_fit_table(FILE *f, const char *presets, const char *precisions, const char *sizes, int ctx, int csv,
		    int json);

/* --- report (cmd_bench_report.c) -------------------------------------------------------------- */

struct bench_header {
	char date[32];   /* UTC, ISO 8601 */
	const char *commit;
	char command[512];
	int n_devices;
	struct {
		char backend[16], name[128], driver[96];
		int index;
		double bw_gbs;
		char bw_source[40];
	} devices[8];
};

/* --- devices (cmd_bench_devices.c) ------------------------------------------------------------ */

/* Device indices of `backend` on this machine (probed once per process, without timed runs);
 * returns the count (0: none). */
int bench_backend_devices(const char *backend, int *index, int max);
/* The driver of a probed device ("" when unknown). */
const char *bench_device_driver(const char *backend, int index, const char *name);
/* Bandwidth of a device by the capability probe with its timed runs (once per process): measured,
 * else database peak; 0 when unknown. *source says which. */
double bench_probe_bandwidth(const char *backend, int index, const char *name, const char **source);

void bench_header_init(struct bench_header *h, int argc, char **argv);
/* Note a device a row ran on (deduplicated), for the header. */
void bench_header_add(struct bench_header *h, const struct bench_result *r);
const char *bench_commit(void);

/* The header block (date, commit, devices, drivers, bandwidths), then the table of rows. */
void bench_print_header(FILE *f, const struct bench_header *h);
/* The speed table; rows of the qwen method use the layout of the Qwen speed benchmark. */
void bench_print_markdown(FILE *f, const struct bench_result *r, int n);
void bench_print_memory(FILE *f, const struct bench_result *r, int n);
void bench_print_csv(FILE *f, const struct bench_result *r, int n);
void bench_print_json(FILE *f, const struct bench_header *h, const struct bench_result *r, int n);
/* Write s as a JSON string (quotes included). */
void bench_json_string(FILE *f, const char *s);

/* Error of a prediction in percent: (measured - predicted) / predicted. */
double bench_pred_error(const struct bench_result *r);

/* --- compare (cmd_compare.c, cmd_bench_svg.c) -------------------------------------------------- */

#define CMP_MAX_PRECS 4

/* One line of `awqrun compare`: a model on one device (measured or modeled), each precision's
 * decode and prefill tokens/s and the decode rate the device's bandwidth allows. */
struct cmp_group {
	char model[96], backend[16], device[128];
	int modeled;
	double bw_gbs;
	double tg[CMP_MAX_PRECS], pp[CMP_MAX_PRECS], bytes[CMP_MAX_PRECS];
	char bound[CMP_MAX_PRECS][16];
};

struct cmp_table {
	int n_precs;
	char precs[CMP_MAX_PRECS][32]; /* 16-bit formats first, then AWQ */
	int n;
	struct cmp_group *g;
};

/* Decode tokens/s the bandwidth allows for precision p (0 = unknown). */
double cmp_ceiling(const struct cmp_group *g, int p);
/* Grouped bars per device and precision, the bandwidth ceiling marked; 0 or -1 (message printed). */
int cmp_write_svg(const char *path, const struct cmp_table *t);

#endif
