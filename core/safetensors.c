/* safetensors reader. The checks follow the reference implementation (huggingface/safetensors,
 * safetensors/src/tensor.rs: read_metadata and Metadata::validate): header length within the file
 * and at most 100 MB, UTF-8 JSON object, tensors sorted by offsets must tile the data buffer from 0
 * to its end, end - begin == product(shape) * dtype size with overflow checks. We add duplicate
 * names (cJSON keeps both copies of a repeated key), a bounded rank and element alignment, because
 * weights are used in place through typed pointers. */
#define _POSIX_C_SOURCE 200809L

#include "safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"

#define MAX_HEADER_BYTES 100000000ull
/* Integers in the header are read through cJSON's double; above 2^53 they are no longer exact. */
#define MAX_EXACT_INT 9007199254740992.0

/* Newer safetensors dtypes we recognise but do not read: named as such instead of "unknown". */
static const char *const unread_dtypes[] = {
	"F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ", "F6_E2M3", "F6_E3M2", "F4", "C64", "C128",
};

void awq_shape_str(const int64_t *shape, int n_dims, char *buf, size_t buflen)
{
	size_t used = 0;
	int r = snprintf(buf, buflen, "[");
	for (int i = 0; i < n_dims && r >= 0; i++) {
		used = strlen(buf);
		r = snprintf(buf + used, buflen - used, "%s%lld", i ? ", " : "",
			     (long long)shape[i]);
	}
	used = strlen(buf);
	if (used + 1 < buflen)
		snprintf(buf + used, buflen - used, "]");
}

static int utf8_valid(const uint8_t *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		uint8_t c = s[i];
		size_t len;
		uint32_t cp;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			len = 2, cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			len = 3, cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			len = 4, cp = c & 0x07;
		} else {
			return 0;
		}
		if (n - i < len)
			return 0;
		for (size_t j = 1; j < len; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + j] & 0x3f);
		}
		/* overlong forms, surrogates, beyond U+10FFFF */
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
		    (len == 4 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += len;
	}
	return 1;
}

/* A JSON number that is a whole, non-negative, exactly representable integer. */
static int json_uint(const cJSON *v, uint64_t *out)
{
	if (!cJSON_IsNumber(v))
		return -1;
	double d = v->valuedouble;
	if (!(d >= 0.0 && d <= MAX_EXACT_INT) || d != (double)(uint64_t)d)
		return -1;
	*out = (uint64_t)d;
	return 0;
}

static int parse_dtype(const cJSON *e, const char *path, struct awq_st_tensor *t, char *err,
		       size_t errlen)
{
	const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
	if (!cJSON_IsString(dt))
		return awq_err(err, errlen, AWQ_EFORMAT,
			       "%s: tensor '%s': \"dtype\" missing or not a string", path, t->name);
	if (awq_dtype_from_name(dt->valuestring, &t->dtype) == 0)
		return 0;
	for (size_t i = 0; i < sizeof(unread_dtypes) / sizeof(unread_dtypes[0]); i++)
		if (strcmp(dt->valuestring, unread_dtypes[i]) == 0)
			return awq_err(err, errlen, AWQ_EUNSUPPORTED,
				       "%s: tensor '%s': dtype %s is not supported by awqrun",
				       path, t->name, dt->valuestring);
	return awq_err(err, errlen, AWQ_EFORMAT, "%s: tensor '%s': unknown dtype \"%.32s\"", path,
		       t->name, dt->valuestring);
}

/* Shape and offsets; checks end - begin == product(shape) * element size without overflow. */
static int parse_extent(const cJSON *e, const char *path, struct awq_st_tensor *t, char *err,
			size_t errlen)
{
	const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
	const cJSON *offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
	if (!cJSON_IsArray(shape))
		return awq_err(err, errlen, AWQ_EFORMAT,
			       "%s: tensor '%s': \"shape\" missing or not an array", path, t->name);
	int nd = cJSON_GetArraySize(shape);
	if (nd > AWQ_ST_MAX_DIMS)
		return awq_err(err, errlen, AWQ_EFORMAT, "%s: tensor '%s': %d dimensions (at most %d)",
			       path, t->name, nd, AWQ_ST_MAX_DIMS);
	uint64_t bytes = awq_dtype_size(t->dtype);
	const cJSON *d;
	t->n_dims = 0;
	cJSON_ArrayForEach(d, shape) {
		uint64_t dim;
		if (json_uint(d, &dim))
			return awq_err(err, errlen, AWQ_EFORMAT,
				       "%s: tensor '%s': shape entry %d is not a non-negative integer",
				       path, t->name, t->n_dims);
		t->shape[t->n_dims++] = (int64_t)dim;
		if (dim && bytes > UINT64_MAX / dim)
			return awq_err(err, errlen, AWQ_EFORMAT,
				       "%s: tensor '%s': shape product overflows", path, t->name);
		bytes *= dim;
	}
	if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 ||
	    json_uint(cJSON_GetArrayItem(offs, 0), &t->begin) ||
	    json_uint(cJSON_GetArrayItem(offs, 1), &t->end))
		return awq_err(err, errlen, AWQ_EFORMAT,
			       "%s: tensor '%s': \"data_offsets\" must be two non-negative integers",
			       path, t->name);
	if (t->end < t->begin)
		return awq_err(err, errlen, AWQ_EFORMAT,
			       "%s: tensor '%s': data_offsets end %llu is before begin %llu", path,
			       t->name, (unsigned long long)t->end, (unsigned long long)t->begin);
	if (t->end - t->begin != bytes) {
		char s[160];
		awq_shape_str(t->shape, t->n_dims, s, sizeof(s));
		return awq_err(err, errlen, AWQ_EFORMAT,
			       "%s: tensor '%s': %s %s needs %llu bytes but data_offsets span %llu",
			       path, t->name, awq_dtype_name(t->dtype), s,
			       (unsigned long long)bytes, (unsigned long long)(t->end - t->begin));
	}
	return 0;
}

static int parse_entry(const cJSON *e, const char *path, struct awq_st_tensor *t, char *err,
		       size_t errlen)
{
	t->name = strdup(e->string);
	if (!t->name)
		return awq_err(err, errlen, AWQ_ENOMEM, "%s: out of memory reading the header", path);
	if (!cJSON_IsObject(e))
		return awq_err(err, errlen, AWQ_EFORMAT, "%s: tensor '%s': entry is not an object",
			       path, t->name);
	int rc = parse_dtype(e, path, t, err, errlen);
	if (rc)
		return rc;
	return parse_extent(e, path, t, err, errlen);
}

static int check_metadata(const cJSON *meta, const char *path, char *err, size_t errlen)
{
	const cJSON *v;
	if (!cJSON_IsObject(meta))
		return awq_err(err, errlen, AWQ_EFORMAT, "%s: \"__metadata__\" is not an object", path);
	cJSON_ArrayForEach(v, meta) {
		if (!cJSON_IsString(v))
			return awq_err(err, errlen, AWQ_EFORMAT,
				       "%s: \"__metadata__\" value '%s' is not a string", path,
				       v->string);
	}
	return 0;
}

static int cmp_offsets(const void *a, const void *b)
{
	const struct awq_st_tensor *x = *(struct awq_st_tensor *const *)a;
	const struct awq_st_tensor *y = *(struct awq_st_tensor *const *)b;
	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(((const struct awq_st_tensor *)a)->name,
		      ((const struct awq_st_tensor *)b)->name);
}

/* Offsets in (begin, end) order must run 0 .. data_len with each tensor starting where the
 * previous one ended. */
static int check_tiling(struct awq_st_header *h, uint64_t data_len, const char *path, char *err,
			size_t errlen)
{
	struct awq_st_tensor **ord = malloc(((size_t)h->n + 1) * sizeof(*ord));
	if (!ord)
		return awq_err(err, errlen, AWQ_ENOMEM, "%s: out of memory reading the header", path);
	for (int i = 0; i < h->n; i++)
		ord[i] = &h->tensors[i];
	qsort(ord, (size_t)h->n, sizeof(*ord), cmp_offsets);
	uint64_t at = 0;
	int rc = 0;
	for (int i = 0; i < h->n && !rc; i++) {
		const struct awq_st_tensor *t = ord[i];
		if (t->end > data_len)
			rc = awq_err(err, errlen, AWQ_EFORMAT,
				     "%s: tensor '%s': data_offsets end %llu is outside the %llu-byte data buffer",
				     path, t->name, (unsigned long long)t->end,
				     (unsigned long long)data_len);
		else if (t->begin < at)
			rc = awq_err(err, errlen, AWQ_EFORMAT,
				     "%s: tensor '%s': data_offsets [%llu, %llu] overlap the previous tensor (ends at %llu)",
				     path, t->name, (unsigned long long)t->begin,
				     (unsigned long long)t->end, (unsigned long long)at);
		else if (t->begin > at)
			rc = awq_err(err, errlen, AWQ_EFORMAT,
				     "%s: tensor '%s': data_offsets begin %llu leaves a hole after byte %llu",
				     path, t->name, (unsigned long long)t->begin,
				     (unsigned long long)at);
		at = t->end;
	}
	free(ord);
	if (!rc && at != data_len)
		rc = awq_err(err, errlen, AWQ_EFORMAT,
			     "%s: tensors cover %llu bytes but the data buffer holds %llu (truncated or padded file)",
			     path, (unsigned long long)at, (unsigned long long)data_len);
	return rc;
}

static int check_names_and_alignment(struct awq_st_header *h, const char *path, char *err,
				     size_t errlen)
{
	qsort(h->tensors, (size_t)h->n, sizeof(*h->tensors), cmp_names);
	for (int i = 0; i < h->n; i++) {
		const struct awq_st_tensor *t = &h->tensors[i];
		if (i && strcmp(t->name, h->tensors[i - 1].name) == 0)
			return awq_err(err, errlen, AWQ_EFORMAT, "%s: tensor '%s' appears twice",
				       path, t->name);
		if (t->end > t->begin && (h->data_start + t->begin) % awq_dtype_size(t->dtype))
			return awq_err(err, errlen, AWQ_EFORMAT,
				       "%s: tensor '%s': data at file offset %llu is not aligned to its %zu-byte elements (re-save with the safetensors library)",
				       path, t->name,
				       (unsigned long long)(h->data_start + t->begin),
				       awq_dtype_size(t->dtype));
	}
	return 0;
}

static int parse_tensors(const cJSON *root, const char *path, struct awq_st_header *h,
			 char *err, size_t errlen)
{
	int count = 0;
	const cJSON *e;
	cJSON_ArrayForEach(e, root)
		count++;
	h->tensors = calloc((size_t)count + 1, sizeof(*h->tensors));
	if (!h->tensors)
		return awq_err(err, errlen, AWQ_ENOMEM, "%s: out of memory reading the header", path);
	cJSON_ArrayForEach(e, root) {
		int rc;
		if (strcmp(e->string, "__metadata__") == 0) {
			rc = check_metadata(e, path, err, errlen);
		} else {
			rc = parse_entry(e, path, &h->tensors[h->n], err, errlen);
			h->n++; /* counted even on failure so its name is freed */
		}
		if (rc)
			return rc;
	}
	return 0;
}

static int parse_json(const uint8_t *json, uint64_t n, const char *path, cJSON **out, char *err,
		      size_t errlen)
{
	if (!utf8_valid(json, (size_t)n))
		return awq_err(err, errlen, AWQ_EFORMAT, "%s: header is not valid UTF-8", path);
	const char *end = NULL;
	cJSON *root = cJSON_ParseWithLengthOpts((const char *)json, (size_t)n, &end, 0);
	if (!root) {
		long at = end ? (long)(end - (const char *)json) : 0;
		return awq_err(err, errlen, AWQ_EFORMAT, "%s: header is not valid JSON (near byte %ld)",
			       path, at + 8);
	}
	/* The writer pads the header with spaces to a multiple of 8; anything else is garbage. */
	for (const char *p = end; p < (const char *)json + n; p++) {
		if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
			cJSON_Delete(root);
			return awq_err(err, errlen, AWQ_EFORMAT,
				       "%s: header has trailing bytes after the JSON object", path);
		}
	}
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return awq_err(err, errlen, AWQ_EFORMAT, "%s: header is not a JSON object", path);
	}
	*out = root;
	return 0;
}

int awq_safetensors_parse_header(const uint8_t *buf, size_t len, size_t file_size,
				 const char *path, struct awq_st_header *h, char *err,
				 size_t errlen)
{
	memset(h, 0, sizeof(*h));
	if (file_size < 8 || len < 8)
		return awq_err(err, errlen, AWQ_EFORMAT,
			       "%s: file is %zu bytes, too short for the 8-byte header length", path,
			       file_size);
	uint64_t n = 0;
	for (int i = 7; i >= 0; i--)
		n = (n << 8) | buf[i];
	if (n > MAX_HEADER_BYTES)
		return awq_err(err, errlen, AWQ_EFORMAT,
			       "%s: header length %llu is over the 100 MB limit (not a safetensors file?)",
			       path, (unsigned long long)n);
	if (n > file_size - 8 || n > len - 8)
		return awq_err(err, errlen, AWQ_EFORMAT,
			       "%s: header length %llu runs past the end of the %zu-byte file", path,
			       (unsigned long long)n, file_size);
	cJSON *root = NULL;
	int rc = parse_json(buf + 8, n, path, &root, err, errlen);
	if (rc)
		return rc;
	h->data_start = 8 + n;
	rc = parse_tensors(root, path, h, err, errlen);
	cJSON_Delete(root);
	if (!rc)
		rc = check_tiling(h, file_size - h->data_start, path, err, errlen);
	if (!rc)
		rc = check_names_and_alignment(h, path, err, errlen);
	if (rc)
		awq_safetensors_header_free(h);
	return rc;
}

void awq_safetensors_header_free(struct awq_st_header *h)
{
	for (int i = 0; i < h->n; i++)
		free(h->tensors[i].name);
	free(h->tensors);
	memset(h, 0, sizeof(*h));
}

const struct awq_st_tensor *awq_safetensors_find(const struct awq_st_header *h,
						 const char *name)
{
	int lo = 0, hi = h->n - 1;
	while (lo <= hi) {
		int mid = lo + (hi - lo) / 2;
		int c = strcmp(name, h->tensors[mid].name);
		if (c == 0)
			return &h->tensors[mid];
		if (c < 0)
			hi = mid - 1;
		else
			lo = mid + 1;
	}
	return NULL;
}

static int map_file(const char *path, struct awq_st_file *f, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return awq_err(err, errlen, AWQ_EIO, "%s: cannot open: %s", path, strerror(errno));
	struct stat st;
	int rc = 0;
	if (fstat(fd, &st) != 0)
		rc = awq_err(err, errlen, AWQ_EIO, "%s: cannot stat: %s", path, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		rc = awq_err(err, errlen, AWQ_EIO, "%s: not a regular file", path);
	else if (st.st_size < 8)
		rc = awq_err(err, errlen, AWQ_EFORMAT,
			     "%s: file is %lld bytes, too short for the 8-byte header length", path,
			     (long long)st.st_size);
	if (!rc) {
		void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (p == MAP_FAILED) {
			rc = awq_err(err, errlen, AWQ_EIO, "%s: cannot map: %s", path,
				     strerror(errno));
		} else {
			f->map = p;
			f->size = (size_t)st.st_size;
		}
	}
	close(fd);
	return rc;
}

int awq_safetensors_open(const char *path, struct awq_st_file *f, char *err, size_t errlen)
{
	memset(f, 0, sizeof(*f));
	f->path = strdup(path);
	if (!f->path)
		return awq_err(err, errlen, AWQ_ENOMEM, "%s: out of memory", path);
	int rc = map_file(path, f, err, errlen);
	if (!rc)
		rc = awq_safetensors_parse_header(f->map, f->size, f->size, path, &f->hdr, err,
						  errlen);
	if (rc)
		awq_safetensors_close(f);
	return rc;
}

void awq_safetensors_close(struct awq_st_file *f)
{
	awq_safetensors_header_free(&f->hdr);
	if (f->map)
		munmap((void *)f->map, f->size);
	free(f->path);
	memset(f, 0, sizeof(*f));
}
