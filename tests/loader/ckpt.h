/* Test helpers: write small Hugging Face style checkpoints (config.json, safetensors files,
 * shard index) into a directory, with random tensor contents. */
#ifndef AWQ_TEST_CKPT_H
#define AWQ_TEST_CKPT_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "dtype.h"

struct tw_tensor {
	char name[160];
	enum awq_dtype dt;
	int nd;
	int64_t shape[4];
	uint8_t *data;
	size_t bytes;
	int shard; /* 0-based shard index when written sharded */
};

struct tw {
	struct tw_tensor *t;
	int n, cap;
	uint64_t rng;
};

void tw_init(struct tw *w, uint64_t seed);
void tw_free(struct tw *w);
/* Adds a tensor with random contents (floats in [-1, 1], random bits for integers). */
struct tw_tensor *tw_add(struct tw *w, const char *name, enum awq_dtype dt, int nd, int64_t d0,
			 int64_t d1);
struct tw_tensor *tw_find(struct tw *w, const char *name);
/* Removes the tensor; returns 0, or -1 when absent. */
int tw_remove(struct tw *w, const char *name);
/* Replaces shape and dtype, reallocating random data to match. */
void tw_reshape(struct tw *w, struct tw_tensor *t, enum awq_dtype dt, int nd, int64_t d0,
		int64_t d1);
uint32_t tw_rand(struct tw *w);

/* Writes all tensors as one safetensors file, laid out as the reference writer does (larger
 * elements first, header padded with spaces to a multiple of 8). */
int tw_write(const struct tw *w, const char *path);
/* Writes shards model-0000i-of-0000n.safetensors (tensor t goes to shard t->shard) and returns
 * the index object for model.safetensors.index.json (caller writes and deletes it). */
cJSON *tw_write_shards(const struct tw *w, const char *dir, int n_shards);

int write_bytes(const char *path, const void *data, size_t len);
int write_json(const char *path, const cJSON *obj);
/* A safetensors file with a verbatim header (length prefix = strlen(header)) and data. */
int write_raw_st(const char *path, const char *header, const void *data, size_t len);

/* A small model of one architecture. */
struct spec {
	const char *arch;
	int hidden, layers, heads, kv, head_dim, inter, vocab; /* head_dim 0: key omitted */
	enum awq_dtype dt;
	int tie;
	int awq, group, zero_point;
	int old_quant_file; /* AWQ settings in quant_config.json instead of config.json */
	int omit_qzeros;
	const char *not_convert; /* one modules_to_not_convert entry, or NULL */
};

void spec_default(struct spec *s, const char *arch);
cJSON *spec_config(const struct spec *s);
void spec_tensors(const struct spec *s, struct tw *w);
/* Writes config.json (and quant_config.json), and model.safetensors from w. */
int spec_write(const struct spec *s, const cJSON *config, const struct tw *w, const char *dir);

#endif
