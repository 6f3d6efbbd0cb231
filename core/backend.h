/* The backend plugin interface. CPU is built in; GPU backends are shared libraries
 * (libawqrun-<name>.so) loaded with dlopen that export
 *     const struct awq_backend_ops *awq_backend_entry(int abi_version);
 * and return NULL when the ABI differs. Nothing here assumes host-addressable device memory: values
 * move in and out only through write_value/read_value, weights are uploaded in prepare(). */
#ifndef AWQ_BACKEND_H
#define AWQ_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "graph.h"

#define AWQ_BACKEND_ABI 4 /* 2: decode_chain, 3: read_topk, 4: awq_chain.sample */

struct awq_device_desc {
	char name[128];
	char arch[64];        /* e.g. "sm_90", "x86-64 avx512-vnni", "llvmpipe" */
	uint64_t mem_total;   /* bytes, 0 if unknown */
	uint64_t mem_free;
};

struct awq_backend_opts {
	int threads;    /* CPU: worker threads, 0 = all cores */
	int cpu_scalar; /* CPU: scalar reference kernels only */
	int quiet;
};

struct awq_prepare_opts {
	int max_tokens; /* most rows of any step */
	int max_ctx;    /* KV-cache positions */
};

struct awq_backend_info {
	const char *device;  /* device name */
	const char *kernels; /* kernel family in use */
	uint64_t device_bytes; /* weights + KV + activations held */
	uint64_t weight_bytes;
	uint64_t kv_bytes;
	uint64_t act_bytes;
};

/* What every backend's info() reports; device_bytes is the sum of the parts. */
static inline void awq_backend_info_set(struct awq_backend_info *info, const char *device, const char *kernels,
					uint64_t weight_bytes, uint64_t kv_bytes, uint64_t act_bytes)
{
	info->device = device;
	info->kernels = kernels;
	info->weight_bytes = weight_bytes;
	info->kv_bytes = kv_bytes;
	info->act_bytes = act_bytes;
	info->device_bytes = weight_bytes + kv_bytes + act_bytes;
}

/* A chain of one-token greedy steps (decode_chain): step i evaluates, at position pos + i, the
 * argmax of step i - 1 (step 0: the token the core wrote to the graph's token input), for up to n
 * steps. on_token(user, id) gets each step's argmax in order and returns nonzero to stop after it;
 * the backend sets steps to the number of tokens it delivered. */
struct awq_chain {
	int pos, n;
	int (*on_token)(void *user, int32_t id);
	void *user;
	int steps;
	/* NULL: greedy. Otherwise each step's token is drawn as the host sampler's top-k branch draws it
	 * (awq_sampler_sample_topk over the step's top_k best logits, ranked as read_topk ranks them),
	 * step i taking draw i of the xoshiro256** stream whose state is rng (the backend keeps its own
	 * copy; the core advances the host's by the steps delivered). A backend that cannot draw returns
	 * AWQ_EUNSUPPORTED before any step. */
	const struct awq_chain_sample *sample;
};

struct awq_chain_sample {
	float inv_t;       /* 1.0f / temperature, as the host computes it */
	float top_p, min_p; /* 1 / 0 = off */
	int top_k;          /* 1..AWQ_TOPK_MAX, below the vocabulary */
	uint64_t rng[4];
};

struct awq_backend_ops {
	const char *name;
	int abi;
	/* Enumerate devices into out[0..max); returns the count (0 = none, with err saying why) or < 0. */
	int (*probe)(struct awq_device_desc *out, int max, char *err, size_t errlen);
	int (*open)(int device, const struct awq_backend_opts *o, void **ctx, char *err, size_t errlen);
	void (*close)(void *ctx);
	/* 1 if the backend runs this node (op and weight format), 0 if not. */
	int (*supports)(void *ctx, const struct awq_graph *g, const struct awq_node *node);
	/* Take the graph (kept by pointer until close), upload its weights, allocate KV cache and
	 * activations. Fails with AWQ_ETOOBIG and the needed/available bytes when it does not fit. */
	int (*prepare)(void *ctx, const struct awq_graph *g, const struct awq_prepare_opts *o, char *err,
		       size_t errlen);
	/* Copy rows of an input value in (TOKENS: int32, ACT: f32). */
	int (*write_value)(void *ctx, int value, const void *src, int rows, char *err, size_t errlen);
	/* Execute all nodes for one step. May return before the device finishes. */
	int (*run)(void *ctx, const struct awq_step *step, char *err, size_t errlen);
	/* Copy rows of a value out (waits for the run that produces it). ACT values come out as f32. */
	int (*read_value)(void *ctx, int value, void *dst, int rows, char *err, size_t errlen);
	int (*sync)(void *ctx, char *err, size_t errlen);
	int (*info)(void *ctx, struct awq_backend_info *info);
	/* Optional (NULL = unknown): measured memory read bandwidth of the device in GB/s, the
	 * ceiling decode is judged against (bench reports decode as a fraction of it). */
	int (*bandwidth)(void *ctx, double *gbs, char *err, size_t errlen);
	/* Optional (NULL, or AWQ_EUNSUPPORTED before any step: the core runs the steps one by one): the
	 * chain of greedy steps with each argmax fed to the next step on the device, the next step
	 * queued while the host reads a token, so that the device does not wait for the host between
	 * steps. The step after the one that stopped may have run as well (its cache row is rewritten by
	 * whatever is evaluated at that position next). The core has checked the positions and the
	 * graph's argmax output. */
	int (*decode_chain)(void *ctx, struct awq_chain *ch, char *err, size_t errlen);
	/* Optional (NULL, or AWQ_EUNSUPPORTED: the core reads the row and selects on the host): the k
	 * largest entries of the first row of an ACT value (the row read_value gives for rows = 1), best
	 * first (larger value, then lower column; -0 and +0 equal), their columns into ids[0..k) and
	 * their values, unchanged, into vals[0..k); 1 <= k <= AWQ_TOPK_MAX, k <= the value's columns
	 * (checked by the core). Waits for the run that produces the value, like read_value. */
	int (*read_topk)(void *ctx, int value, int k, int32_t *ids, float *vals, char *err, size_t errlen);
};

/* The built-in CPU backend. */
const struct awq_backend_ops *awq_cpu_backend(void);

/* Find a backend by name: built in, or a plugin next to the executable / in AWQ_PLUGIN_DIR /
 * in the install's lib dir. On failure err says why (not built, library missing, no driver). */
int awq_backend_find(const char *name, const struct awq_backend_ops **out, char *err, size_t errlen);

/* Names of all backends this build knows, built in or plugin, NULL-terminated. */
const char *const *awq_backend_names(void);

#endif
