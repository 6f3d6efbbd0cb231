/* safetensors files: header parsing with full validation (from a memory buffer, so fuzzers need no
 * files) and read-only memory mapping of whole files. */
#ifndef AWQ_SAFETENSORS_H
#define AWQ_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "dtype.h"

/* Tensors of more dimensions than this are rejected (model weights have at most 3). */
#define AWQ_ST_MAX_DIMS 8

struct awq_st_tensor {
	char *name;
	enum awq_dtype dtype;
	int n_dims;
	int64_t shape[AWQ_ST_MAX_DIMS];
	uint64_t begin, end; /* byte offsets relative to the start of the data buffer */
};

struct awq_st_header {
	struct awq_st_tensor *tensors; /* sorted by name (lookups use binary search) */
	int n;
	uint64_t data_start; /* file offset of the data buffer: 8 + header length */
};

/* Parse and validate the header of a safetensors file whose first len bytes are in buf and whose
 * total size is file_size (len may be smaller: only 8 + header length bytes are read). Checks the
 * header length against the file, UTF-8 and JSON validity, each entry's dtype, shape and
 * data_offsets, that the offsets tile the data buffer exactly (no overlap, no hole, nothing after
 * the last tensor), byte lengths == product(shape) * element size without overflow, duplicate
 * names and element alignment. path is used in messages only. On error h is left empty. */
int awq_safetensors_parse_header(const uint8_t *buf, size_t len, size_t file_size,
				 const char *path, struct awq_st_header *h, char *err,
				 size_t errlen);
void awq_safetensors_header_free(struct awq_st_header *h);

/* NULL when the header has no tensor of that name. */
const struct awq_st_tensor *awq_safetensors_find(const struct awq_st_header *h,
						 const char *name);

/* A safetensors file mapped read-only. */
struct awq_st_file {
	char *path;
	const uint8_t *map;
	size_t size;
	struct awq_st_header hdr;
};

int awq_safetensors_open(const char *path, struct awq_st_file *f, char *err, size_t errlen);
void awq_safetensors_close(struct awq_st_file *f);

/* Pointer to the first byte of tensor t of file f. */
static inline const void *awq_safetensors_data(const struct awq_st_file *f,
					       const struct awq_st_tensor *t)
{
	return f->map + f->hdr.data_start + t->begin;
}

/* Human-readable shape, e.g. "[4096, 512]", for messages. */
void awq_shape_str(const int64_t *shape, int n_dims, char *buf, size_t buflen);

#endif
