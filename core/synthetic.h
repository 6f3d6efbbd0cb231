/* Models of published shapes built in memory: with random weights (benchmarks) or shape only
 * (performance model: every weight has its metadata, data pointers are NULL). */
#ifndef AWQ_SYNTHETIC_H
#define AWQ_SYNTHETIC_H

#include "model.h"

/* The config of a preset ("qwen3-8b", ...); 0 or AWQ_EINVAL for an unknown name. */
int awq_preset_config(const char *preset, struct awq_config *c, char *err, size_t errlen);

/* A model whose weights have shapes and formats but no data. */
int awq_model_shape(const char *preset, const char *precision, awq_model **out, char *err, size_t errlen);

/* The same from an explicit config (e.g. a model directory's config.json). */
int awq_model_from_config(const struct awq_config *c, const char *precision, int with_data, uint64_t seed,
			  awq_model **out, char *err, size_t errlen);

/* One weight by itself, filled as the synthetic models' are (kernel benchmarks): AWQ 4-bit g128 with
 * zero points when awq (K a multiple of 128, N of 8), else n x k of dtype t (F16 or BF16). Its data
 * is one allocation returned in *owned: free it after the weight's last use. */
int awq_synthetic_weight(struct awq_weight *w, const char *name, int64_t n, int64_t k, int awq, enum awq_dtype t,
			 uint64_t seed, void **owned, char *err, size_t errlen);

#endif
