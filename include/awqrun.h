/* awqrun public C API: model loading, sessions (one model on one backend device), evaluation.
 * The CLI in tools/awqrun uses only this header (and the other include/awqrun_*.h headers). */
#ifndef AWQRUN_H
#define AWQRUN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes: 0 is success, every error is negative. Functions that can fail take an error
 * buffer (err, errlen) and fill it with one sentence a user can act on. */
enum awq_status {
	AWQ_OK = 0,
	AWQ_EINVAL = -1,       /* bad argument or option */
	AWQ_EIO = -2,          /* file missing or unreadable */
	AWQ_ENOMEM = -3,       /* host allocation failed */
	AWQ_EFORMAT = -4,      /* file contents invalid (corrupt, inconsistent) */
	AWQ_EUNSUPPORTED = -5, /* valid input we do not handle (architecture, dtype, quantization) */
	AWQ_EDEVICE = -6,      /* a backend/device call failed */
	AWQ_ENODEV = -7,       /* no such backend or device */
	AWQ_ETOOBIG = -8,      /* does not fit (device memory, context length) */
};

#define AWQ_ERRLEN 512

#if defined(__GNUC__)
#define AWQ_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define AWQ_PRINTF(a, b)
#endif

/* Format a message into err (when err is not NULL) and return code, so callers write
 * `return awq_err(err, errlen, AWQ_EFORMAT, "%s: ...", path);`. Every awqrun function reports its
 * errors this way, in one line: control characters quoted from files come out as \n, \t, \r or
 * \xNN. */
int awq_err(char *err, size_t errlen, int code, const char *fmt, ...) AWQ_PRINTF(4, 5);

typedef struct awq_model awq_model;
typedef struct awq_session awq_session;

/* --- models ------------------------------------------------------------------------------ */

/* Load a Hugging Face checkpoint directory: config.json plus model.safetensors or
 * model.safetensors.index.json with its shards. Tensors are memory-mapped, validated and kept in
 * their stored format (AWQ stays 4-bit). */
int awq_model_load(const char *dir, awq_model **out, char *err, size_t errlen);

/* Build a model of a published shape with random weights in memory.
 * preset: e.g. "qwen3-0.6b", "llama2-7b" (awq_synthetic_presets lists them);
 * precision: "bf16", "f16" or "awq" (AWQ INT4, group size 128, with zero points). */
int awq_model_synthetic(const char *preset, const char *precision, uint64_t seed, awq_model **out,
			char *err, size_t errlen);
/* NULL-terminated list of preset names. */
const char *const *awq_synthetic_presets(void);
void awq_model_free(awq_model *m);

struct awq_model_info {
	const char *arch;      /* "llama", "qwen2", "qwen3", ... */
	const char *precision; /* "bf16", "f16", "f32", "awq-int4-g128", ... */
	int n_layers, hidden, n_heads, n_kv_heads, head_dim, intermediate, vocab;
	int n_experts, n_experts_per_tok;
	int max_position;
	uint64_t n_params;        /* parameters (logical weights, all experts) */
	uint64_t weight_bytes;    /* bytes of all weights as stored (incl. scales/zeros) */
	uint64_t decode_bytes;    /* weight bytes read per decoded token (embedding row only; top-k experts) */
	uint64_t kv_bytes_per_token; /* K+V bytes one token adds to the cache, at the backend's KV dtype f32 */
};
int awq_model_get_info(const awq_model *m, struct awq_model_info *info);

/* --- sessions ---------------------------------------------------------------------------- */

struct awq_session_opts {
	const char *backend; /* "auto" (default when NULL), "cpu", "cuda", "vulkan" */
	int device;          /* device index within the backend, -1 = backend's choice */
	int max_ctx;         /* KV-cache length in tokens; 0 = min(model max, 4096) */
	int max_batch;       /* most tokens per eval call; 0 = 512 */
	int threads;         /* CPU threads; 0 = all cores */
	int cpu_scalar;      /* 1 = CPU backend uses its scalar reference kernels only */
	int quiet;           /* 1 = no notes on stderr (backend choice, fallbacks) */
};
void awq_session_opts_default(struct awq_session_opts *o);

int awq_session_create(awq_model *m, const struct awq_session_opts *o, awq_session **out,
		       char *err, size_t errlen);
void awq_session_free(awq_session *s);

/* Evaluate n tokens at positions pos..pos+n-1 (the KV cache keeps positions < pos from earlier
 * calls). logits receives vocab floats for the last token, or n*vocab floats when all_rows != 0.
 * logits may be NULL (e.g. prefill whose output is not needed). */
int awq_session_eval(awq_session *s, const int32_t *tokens, int n, int pos, int all_rows,
		     float *logits, char *err, size_t errlen);

/* Evaluate like awq_session_eval and return only the greedy (argmax) next token after the last
 * input token; the backend computes it on the device, so only 4 bytes come back. */
int awq_session_eval_greedy(awq_session *s, const int32_t *tokens, int n, int pos, int32_t *next,
			    char *err, size_t errlen);

/* The most candidates awq_session_eval_topk returns. */
#define AWQ_TOPK_MAX 256

/* Evaluate like awq_session_eval and return the k highest logits of the last input token, best first
 * (higher logit, then lower id; -0 and +0 equal), ids in ids[0..k) and logits in vals[0..k);
 * 1 <= k <= AWQ_TOPK_MAX and k <= vocab. A backend that selects them on the device (CUDA) sends back
 * only these k, not the row; elsewhere the row is read and they are selected on the host
 * (AWQ_DEVICE_TOPK=0 forces that, for A/B runs). The result is the same either way: with top-k
 * sampling and no repetition penalty, awq_sampler_sample_topk draws from it exactly the token
 * awq_sampler_sample draws from the row. */
int awq_session_eval_topk(awq_session *s, const int32_t *tokens, int n, int pos, int k, int32_t *ids, float *vals,
			  char *err, size_t errlen);

/* Greedy decoding: evaluate `first` at position pos, then each step's argmax at the next position,
 * up to n steps (positions pos..pos+n-1). on_token(user, id) sees every argmax in order and returns
 * nonzero to stop after it; *steps (may be NULL) gets the number of tokens seen. On a backend that
 * feeds each argmax to the next step on the device (CUDA), the next step is already queued while
 * the host reads a token: the step after a stop may have run too, and its cache row is simply
 * rewritten by what is evaluated at that position next. AWQ_DECODE_CHAIN=0 runs the steps one by
 * one (awq_session_eval_greedy) everywhere. */
int awq_session_decode_greedy(awq_session *s, int32_t first, int pos, int n, int (*on_token)(void *user, int32_t id),
			      void *user, int *steps, char *err, size_t errlen);

/* Wait for all queued device work (timing helpers call this). */
int awq_session_sync(awq_session *s, char *err, size_t errlen);

struct awq_session_info {
	const char *backend;  /* "cpu", "cuda", ... */
	const char *device;   /* device name */
	const char *kernels;  /* kernel family used, e.g. "avx512-vnni", "scalar", "sm_90" */
	int max_ctx, max_batch, threads;
	uint64_t device_bytes; /* bytes the backend holds for weights + KV + activations */
	uint64_t weight_bytes, kv_bytes, act_bytes;
	/* of the last awq_session_decode_greedy / awq_session_decode_sampled: the steps that ran in the
	 * backend's chain (each token chosen and fed to the next step on the device); 0 where the core
	 * ran them one by one */
	int chained_steps;
};
int awq_session_get_info(const awq_session *s, struct awq_session_info *info);

/* Measured memory bandwidth (GB/s) of the session's device, by a short read kernel; AWQ_EUNSUPPORTED
 * when the backend cannot measure it. */
int awq_session_bandwidth(awq_session *s, double *gbs, char *err, size_t errlen);

/* Names of the backends compiled into this binary or found as plugins, NULL-terminated,
 * and why an absent one is unavailable. */
int awq_backend_status(char *buf, size_t buflen);

const char *awq_version(void);

#ifdef __cplusplus
}
#endif

#endif
