#include "fuzz_targets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "awqrun_text.h"
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

/* The tokenizer loads from a path: the input goes to a private temporary file first. */
int awq_fuzz_tokenizer_json(const uint8_t *data, size_t size)
{
	char path[] = "/tmp/awq-fuzz-tokenizer-XXXXXX", err[AWQ_ERRLEN] = "";
	int fd = mkstemp(path);
	if (fd < 0)
		fail("cannot create a temporary file");
	FILE *f = fdopen(fd, "wb");
	if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
		fail("cannot write the temporary file");
	awq_tokenizer *t = NULL;
	int rc = awq_tokenizer_load_files(path, NULL, &t, err, sizeof(err));
	unlink(path);
	check_message(rc, err);
	if (rc)
		return 0;
	static const char text[] = "Hello, world! 123 \xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x98\x80 \xff\n\n  x";
	int32_t *ids = NULL;
	int n = 0;
	err[0] = '\0';
	rc = awq_tokenizer_encode(t, text, sizeof(text) - 1, 1, &ids, &n, err, sizeof(err));
	check_message(rc, err);
	if (rc == 0) {
		char *back = NULL;
		size_t len = 0;
		for (int i = 0; i < n; i++)
			if (ids[i] < 0 || ids[i] >= awq_tokenizer_vocab_size(t))
				fail("encode produced an id outside the vocabulary");
		err[0] = '\0';
		rc = awq_tokenizer_decode(t, ids, n, 0, &back, &len, err, sizeof(err));
		check_message(rc, err);
		free(back);
	}
	free(ids);
	awq_tokenizer_free(t);
	return 1;
}

int awq_fuzz_tokenize(const uint8_t *data, size_t size)
{
	static awq_tokenizer *t;
	char err[AWQ_ERRLEN] = "";
	if (!t && awq_tokenizer_load_files(AWQ_FUZZ_TOKENIZER_JSON, NULL, &t, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		fail("the byte-level tokenizer of tests/data does not load");
	}
	int32_t *ids = NULL;
	int n = 0;
	int rc = awq_tokenizer_encode(t, (const char *)data, size, 0, &ids, &n, err, sizeof(err));
	check_message(rc, err);
	if (rc)
		return 0;
	char *back = NULL, *want = NULL;
	size_t len = 0, want_len = 0;
	err[0] = '\0';
	rc = awq_tokenizer_decode(t, ids, n, 0, &back, &len, err, sizeof(err));
	check_message(rc, err);
	if (rc == 0) {
		if (awq_utf8_lossy((const char *)data, size, &want, &want_len))
			fail("awq_utf8_lossy failed");
		if (len != want_len || memcmp(back, want, len) != 0)
			fail("decode(encode(text)) differs from the text");
	}
	free(want);
	free(back);
	free(ids);
	return rc == 0;
}

static void check_text(const char *s)
{
	if (!s)
		fail("chat formatting returned no text");
	(void)strlen(s); /* NUL-terminated: ASan catches a read past the end */
}

int awq_fuzz_chat(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 2), err[AWQ_ERRLEN] = "";
	if (!buf)
		fail("out of memory");
	memcpy(buf, data, size);
	buf[size] = buf[size + 1] = '\0';
	const char *tmpl = buf, *rest = buf + strlen(buf) + (strlen(buf) < size ? 1 : 0);
	struct awq_chat c;
	int rc = awq_chat_detect(tmpl, "<s>", &c, err, sizeof(err));
	check_message(rc, err);
	if (rc) {
		free(buf);
		return 0;
	}
	/* the rest of the input as every message's content, with a reasoning block in the history */
	const struct awq_chat_msg msgs[] = {
		{"system", rest}, {"user", rest}, {"assistant", "<think>\nhm\n</think>\n\nok"}, {"user", rest},
	};
	for (int think = -1; think <= 1; think++) {
		char *out = NULL;
		if (awq_chat_format(&c, msgs, 4, 1, think, &out) == 0)
			check_text(out);
		free(out);
		out = NULL;
		if (awq_chat_format(&c, msgs + 1, 1, 0, think, &out) == 0)
			check_text(out);
		free(out);
		out = NULL;
		if (awq_chat_next_turn(&c, rest, think, &out) == 0)
			check_text(out);
		free(out);
	}
	free(buf);
	return 1;
}
