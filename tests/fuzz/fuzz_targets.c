#include "fuzz_targets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "safetensors.h"

static void fail(const char *what)
{
	fprintf(stderr, "fuzz invariant broken: %s\n", what);
	abort();
}

/* A failure must leave a non-empty one-line message; success must describe a consistent file. */
static void check_message(int rc, const char *err)
{
	if (rc > 0 || (rc < 0 && (!err[0] || strchr(err, '\n'))))
		fail("status or message");
}

static void check_header(const struct awq_st_header *h, size_t file_size)
{
	uint64_t covered = 0;
	for (int i = 0; i < h->n; i++) {
		const struct awq_st_tensor *t = &h->tensors[i];
		uint64_t elems = 1;
		for (int d = 0; d < t->n_dims; d++)
			elems *= (uint64_t)t->shape[d];
		if (t->begin > t->end || t->end > file_size - h->data_start ||
		    t->end - t->begin != elems * awq_dtype_size(t->dtype))
			fail("tensor extent");
		if (awq_safetensors_find(h, t->name) != t)
			fail("lookup by name");
		covered += t->end - t->begin;
	}
	if (covered != file_size - h->data_start)
		fail("tensors do not tile the data buffer");
}

int awq_fuzz_safetensors(const uint8_t *data, size_t size)
{
	struct awq_st_header h;
	char err[AWQ_ERRLEN] = "";
	int rc = awq_safetensors_parse_header(data, size, size, "fuzz", &h, err, sizeof(err));
	int accepted = rc == 0;
	check_message(rc, err);
	if (rc == 0) {
		check_header(&h, size);
		awq_safetensors_header_free(&h);
	}
	/* only the first bytes in memory, the rest of the file elsewhere */
	err[0] = '\0';
	rc = awq_safetensors_parse_header(data, size / 2, size, "fuzz", &h, err, sizeof(err));
	check_message(rc, err);
	if (rc == 0) {
		check_header(&h, size);
		awq_safetensors_header_free(&h);
	}
	return accepted;
}

static void check_config(const struct awq_config *c)
{
	if (c->head_dim <= 0 || c->n_kv_heads <= 0 || c->n_heads % c->n_kv_heads ||
	    c->hidden <= 0 || c->vocab <= 0 || c->n_layers <= 0 || c->intermediate <= 0)
		fail("validated config has bad sizes");
	if (c->n_eos < 0 || c->n_eos > AWQ_MAX_EOS || c->quant.n_not_convert > AWQ_MAX_NOT_CONVERT)
		fail("list lengths");
	if (c->quant.method == AWQ_QUANT_AWQ && (c->quant.bits != 4 || c->quant.group_size == 0))
		fail("quantization settings");
}

int awq_fuzz_config(const uint8_t *data, size_t size)
{
	struct awq_config c;
	struct awq_quant q;
	char err[AWQ_ERRLEN] = "";
	int rc = awq_config_parse((const char *)data, size, "fuzz.json", &c, err, sizeof(err));
	check_message(rc, err);
	if (rc == 0) {
		rc = awq_config_validate(&c, "fuzz.json", err, sizeof(err));
		check_message(rc, err);
		if (rc == 0)
			check_config(&c);
	}
	int accepted = rc == 0;
	err[0] = '\0';
	rc = awq_quant_config_parse((const char *)data, size, "fuzz.json", &q, err, sizeof(err));
	check_message(rc, err);
	if (rc == 0 && (q.method != AWQ_QUANT_AWQ || q.n_not_convert > AWQ_MAX_NOT_CONVERT))
		fail("quant_config.json result");
	return accepted || rc == 0;
}
