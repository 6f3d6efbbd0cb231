/* awqrun capability API: what each device can do (probes + GPU spec database), how fast a model will
 * run there (performance model), which device a model should run on (planner), and the `awqrun caps`
 * report. docs/caps-schema.md documents the JSON form of the same records. */
#ifndef AWQRUN_CAPS_H
#define AWQRUN_CAPS_H

#include <stdint.h>
#include <stdio.h>

#include "awqrun.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Where a figure came from; every figure of a device record carries one. */
enum awq_src {
	AWQ_SRC_NONE = 0,  /* unknown / not applicable */
	AWQ_SRC_API,       /* reported by the driver or the OS (cuDeviceGetAttribute, NVML, Vulkan, hwloc) */
	AWQ_SRC_MEASURED,  /* timed on the device during this probe */
	AWQ_SRC_DATABASE,  /* the GPU spec database row named in db_row */
	AWQ_SRC_ARCH_RULE, /* per-architecture rule (per-SM rate x probed SM count x probed clock) */
	AWQ_SRC_COMPUTED,  /* from other probed figures (bus width x memory clock, cores x SIMD x clock) */
	AWQ_SRC_HOST,      /* shares host memory: the CPU's measured bandwidth */
};

struct awq_figure {
	double v; /* 0 when unknown */
	enum awq_src src;
	int unconfirmed; /* database value marked '?' (derived or conflicting sources) */
};

/* Matrix / vector formats the hardware runs natively, with dense peak rates in TFLOP/s (TOP/s). */
enum awq_mfmt {
	AWQ_MF_FP32,        /* vector FP32 (CUDA cores, CPU SIMD FMA) */
	AWQ_MF_FP16,        /* FP16 matrix units, best accumulate mode */
	AWQ_MF_FP16_F32ACC, /* FP16 matrix units with FP32 accumulate: FP16 GEMM and W4A16 use this */
	AWQ_MF_BF16,
	AWQ_MF_TF32,
	AWQ_MF_FP8,         /* e4m3/e5m2, FP32 accumulate */
	AWQ_MF_INT8,
	AWQ_MF_INT4,
	AWQ_MF_FP4,
	AWQ_MF_COUNT
};

enum awq_cpu_flag {
	AWQ_CPU_SSE42 = 1u << 0, AWQ_CPU_AVX = 1u << 1, AWQ_CPU_AVX2 = 1u << 2, AWQ_CPU_FMA = 1u << 3,
	AWQ_CPU_F16C = 1u << 4, AWQ_CPU_AVX512F = 1u << 5, AWQ_CPU_AVX512BW = 1u << 6,
	AWQ_CPU_AVX512VL = 1u << 7, AWQ_CPU_AVX512VNNI = 1u << 8, AWQ_CPU_AVX512BF16 = 1u << 9,
	AWQ_CPU_AVXVNNI = 1u << 10, AWQ_CPU_AMX_TILE = 1u << 11, AWQ_CPU_AMX_INT8 = 1u << 12,
	AWQ_CPU_AMX_BF16 = 1u << 13, AWQ_CPU_NEON = 1u << 16, AWQ_CPU_DOTPROD = 1u << 17,
	AWQ_CPU_ASIMDHP = 1u << 18, AWQ_CPU_SVE = 1u << 19, AWQ_CPU_I8MM = 1u << 20, AWQ_CPU_ARM_BF16 = 1u << 21,
};

#define AWQ_CAPS_MAX_NUMA 8

struct awq_cpu_caps {
	unsigned flags;           /* enum awq_cpu_flag */
	int packages, cores, threads, numa_nodes;
	uint64_t l1d_bytes, l2_bytes; /* per core */
	uint64_t l3_bytes;            /* all L3 together */
	uint64_t numa_mem[AWQ_CAPS_MAX_NUMA]; /* local memory of each NUMA node */
};

struct awq_cuda_caps {
	int cc_major, cc_minor;
	int driver_version;  /* cuDriverGetVersion, e.g. 13000 */
	int sm_count;
	int nvml;            /* NVML answered (clocks, power limit) */
	double power_limit_w;
	uint64_t l2_bytes;
	int smem_per_block_optin;
};

#define AWQ_CAPS_MAX_COOPMAT 32
#define AWQ_CAPS_MAX_HEAPS 8

struct awq_coopmat {
	int m, n, k;
	char a[8], b[8], c[8], result[8]; /* "f16", "f32", "s8", "u8", "s32", "bf16", "e4m3", ... */
	char scope[12];                   /* "subgroup", "workgroup" */
	int nv;                           /* from VK_NV_cooperative_matrix rather than the KHR one */
};

struct awq_vk_caps {
	uint32_t api_version, driver_version, vendor_id, device_id;
	char device_type[16];  /* "discrete", "integrated", "cpu", "virtual", "other" */
	char driver_name[64];
	/* features: 1 yes, 0 no, -1 not queryable (the headers this was built with do not know it) */
	int shader_float16, shader_int8, storage_8bit, storage_16bit, shader_bfloat16;
	int subgroup_size, subgroup_min, subgroup_max, subgroup_size_control;
	int int_dot, int_dot_4x8_packed_accel, int_dot_8bit_accel; /* VK_KHR_shader_integer_dot_product */
	uint32_t max_shared_bytes;
	/* cooperative matrix: extension advertised (1), and whether this build could query it */
	int khr_coopmat, nv_coopmat, nv_coopmat2;
	int khr_coopmat_queryable, nv_coopmat_queryable;
	int n_coopmat;
	struct awq_coopmat coopmat[AWQ_CAPS_MAX_COOPMAT];
	int n_heaps;
	uint64_t heap_bytes[AWQ_CAPS_MAX_HEAPS];
	int heap_device_local[AWQ_CAPS_MAX_HEAPS];
	int n_extensions;
	char extensions[768]; /* the matrix/dot/format/subgroup-related ones, space separated */
};

struct awq_cl_caps {
	char platform[64], platform_version[64], device_version[64], driver_version[64];
	char device_type[16];
	int compute_units;
	double clock_mhz;
	uint64_t local_mem_bytes;
	int fp16, fp64, int_dot, subgroups;
	int n_extensions;
	char extensions[512]; /* the relevant ones, space separated */
};

/* One device, whatever the API. Figures have a source; the backend-specific parts (cpu, cuda, vk, cl)
 * are filled for that backend only. */
struct awq_device_caps {
	char backend[16];   /* "cpu", "cuda", "vulkan", "opencl" */
	int index;          /* device index within the backend */
	int present;        /* 1 probed on this machine, 0 modeled from the database (--gpu) */
	char name[128], vendor[64], arch[64], driver[96];
	uint64_t mem_total, mem_free; /* bytes (0 unknown) */
	int bus_width_bits;
	double mem_clock_mhz;
	int units;          /* SMs, compute units or CPU cores */
	double clock_mhz;   /* max SM / core clock */
	double sustained_mhz; /* clock under sustained load where a power cap holds it below clock_mhz, else 0 */
	struct awq_figure peak_bw_gbs;     /* GB/s = 1e9 B/s */
	struct awq_figure measured_bw_gbs; /* read (CPU) or copy read+write (GPU) */
	struct awq_figure rate[AWQ_MF_COUNT]; /* dense peak TFLOP/s; v = 0: not native or unknown */
	int native[AWQ_MF_COUNT];             /* 1 native, 0 not, -1 unknown */
	struct awq_figure launch_us;          /* measured launch / dispatch latency per op */
	char db_row[96];    /* database row used, "" for none */
	char db_how[192];   /* how the rates were found: name match, arch rule, none (and why) */
	char notes[256];    /* anything the user should know (e.g. power cap, no driver) */
	struct awq_cpu_caps cpu;
	struct awq_cuda_caps cuda;
	struct awq_vk_caps vk;
	struct awq_cl_caps cl;
};

/* --- probing ---------------------------------------------------------------------------- */

enum {
	AWQ_CAPS_NO_MEASURE = 1, /* skip the timed bandwidth / latency measurements */
	AWQ_CAPS_NO_CPU = 2, AWQ_CAPS_NO_CUDA = 4, AWQ_CAPS_NO_VULKAN = 8, AWQ_CAPS_NO_OPENCL = 16,
};

/* Probe every API this build knows (CPU, CUDA, Vulkan, OpenCL) and fill out[0..max); returns the
 * device count or < 0. An API with no driver or device adds a line to `absent` ("cuda: ...\n"), it
 * is not an error. Database rates are attached to every GPU found. */
int awq_caps_probe(struct awq_device_caps *out, int max, unsigned flags, char *absent, size_t absent_len,
		   char *err, size_t errlen);

/* A database GPU that is not present, by row name or short alias ("t4", "h100", "rtx-pro-6000";
 * case-insensitive). */
int awq_caps_from_db(const char *name, struct awq_device_caps *out, char *err, size_t errlen);
/* Aliases the database knows, one "alias = row name" per line. */
int awq_caps_db_aliases(char *buf, size_t len);

const char *awq_mfmt_name(enum awq_mfmt f);
const char *awq_src_name(enum awq_src s);

/* --- performance model ------------------------------------------------------------------ */

/* How the matmul weights are stored for a prediction. STORED is the model as loaded; the others
 * re-express every quantizable linear layer (attention and MLP projections, experts) in that format,
 * keeping embeddings, lm_head and norms 16-bit as checkpoints of that kind do. */
enum awq_scheme { AWQ_SCHEME_STORED, AWQ_SCHEME_BF16, AWQ_SCHEME_FP16, AWQ_SCHEME_AWQ4, AWQ_SCHEME_FP8,
		  AWQ_SCHEME_COUNT };

enum awq_limit {
	AWQ_LIMIT_BANDWIDTH, AWQ_LIMIT_COMPUTE, AWQ_LIMIT_OVERHEAD,
	AWQ_LIMIT_MEMORY,      /* does not fit in device memory */
	AWQ_LIMIT_UNSUPPORTED, /* the format has no native unit on this device (FP8 before Ada) */
	AWQ_LIMIT_UNKNOWN,     /* the device has no bandwidth figure to predict from */
};

struct awq_perf_query {
	enum awq_scheme scheme;
	int batch;    /* sequences decoded together (0 = 1) */
	int ctx;      /* context length at decode: KV positions read per token (0 = 1024) */
	int n_prompt; /* prefill length (0 = 512) */
	int chunk;    /* most tokens per prefill step, as the session's max_batch (0 = 512) */
};

struct awq_perf_phase {
	double seconds;   /* per step (decode) or for the whole prompt (prefill) */
	double tok_s;
	double bytes, flops;
	double t_bytes, t_compute, t_overhead; /* seconds summed over ops of each op's limiting term */
	enum awq_limit limit;
};

struct awq_perf_result {
	enum awq_limit limit;      /* overall: MEMORY / UNSUPPORTED / UNKNOWN, else the decode limit */
	uint64_t weight_bytes;     /* all weights as the scheme stores them */
	uint64_t kv_bytes;         /* KV cache at ctx (all sequences) */
	uint64_t need_bytes;       /* weights + KV + activations: what must fit */
	double decode_weight_bytes; /* weight bytes one decode step reads */
	double unquantized_share;   /* of those, the share in 16-bit embedding / lm_head / norms */
	double bw_gbs;              /* bandwidth the prediction used (after efficiency) */
	double matmul_tflops;       /* rate of the unit the prefill matmuls use (after efficiency) */
	enum awq_mfmt unit;         /* that unit */
	double op_overhead_us;      /* per-op overhead used */
	struct awq_perf_phase decode, prefill;
	char why[160];              /* for MEMORY / UNSUPPORTED / UNKNOWN: the reason */
};

/* Predict decode and prefill for model m (weights need metadata only: awq_model_shape models work)
 * on device d. Returns 0 with r->limit saying when the scheme does not fit or is not supported. */
int awq_perf_predict(const struct awq_device_caps *d, const awq_model *m, const struct awq_perf_query *q,
		     struct awq_perf_result *r, char *err, size_t errlen);

/* The same for a device of this machine, by backend ("cpu", "cuda", "vulkan") and device name
 * (NULL: the backend's first device), as `awqrun bench` prints beside a measurement. Devices are
 * probed once per process; bw_gbs > 0 is a bandwidth the caller measured (the probe then skips its
 * own timed runs), 0 lets the probe measure. */
int awq_caps_predict_device(const char *backend, const char *device, const awq_model *m,
			    const struct awq_perf_query *q, double bw_gbs, struct awq_perf_result *r, char *err,
			    size_t errlen);

const char *awq_limit_name(enum awq_limit l);
const char *awq_scheme_name(enum awq_scheme s);

/* --- planner ---------------------------------------------------------------------------- */

/* --backend auto: rank the devices of the backends that can run here by predicted decode + prefill
 * time for m with a KV cache of max_ctx, skip those it does not fit, and write the chosen backend
 * name ("cpu", "cuda", "vulkan") and one sentence of reason. */
int awq_plan_backend(const awq_model *m, int max_ctx, char *choice, size_t len, char *reason, size_t rlen,
		     char *err, size_t errlen);

/* A model of a published shape with metadata only (no weight data): what the performance model
 * needs. preset as awq_synthetic_presets() lists them. */
int awq_caps_model_shape(const char *preset, awq_model **out, char *err, size_t errlen);

/* --- report (`awqrun caps`) --------------------------------------------------------------- */

struct awq_caps_model {
	const char *label;   /* "qwen3-8b" or the model directory */
	awq_model *stored;   /* the model (any precision; data may be NULL) */
};

struct awq_caps_report_opts {
	const struct awq_device_caps *devs;
	int n_devs;
	const char *absent;  /* lines from awq_caps_probe */
	const struct awq_caps_model *models;
	int n_models;
	int ctx, n_prompt, batch;
	int json;
};

/* Print the device blocks and the per-model prediction tables (text) or one JSON document. */
int awq_caps_report(FILE *f, const struct awq_caps_report_opts *o, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
