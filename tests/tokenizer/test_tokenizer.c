/* Tokenizer goldens: DIR/golden.json (tools/reference/make_tokenizer_golden.py, from the real
 * `tokenizers` library and transformers' apply_chat_template) against awqrun's tokenizer.
 *   test_tokenizer DIR
 * Every encode case must give the same ids, every decode case the same text, streaming decode of
 * each encoded text must concatenate to the full decode without ever splitting a character, and
 * every chat case must format to the same text. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "awqrun_text.h"
#include "awq_test.h"

static int failures;

static void fail(const char *what, const char *text)
{
	if (++failures <= 20)
		fprintf(stderr, "FAIL %s: %s\n", what, text);
}

static int32_t *ids_of(const cJSON *arr, int *n)
{
	*n = cJSON_GetArraySize(arr);
	int32_t *v = malloc(sizeof(int32_t) * (size_t)(*n + 1));
	const cJSON *e;
	int i = 0;
	cJSON_ArrayForEach(e, arr) v[i++] = (int32_t)e->valueint;
	return v;
}

static void print_ids(const char *label, const int32_t *v, int n)
{
	fprintf(stderr, "  %s:", label);
	for (int i = 0; i < n; i++)
		fprintf(stderr, " %d", v[i]);
	fprintf(stderr, "\n");
}

static int valid_utf8(const char *s)
{
	for (size_t i = 0, n = strlen(s); i < n;) {
		int k = awq_utf8_char_len((const unsigned char *)s + i, n - i);
		if (!k)
			return 0;
		i += (size_t)k;
	}
	return 1;
}

/* Streams ids; every piece must be valid UTF-8 and, for ids of valid text (exact != 0), the pieces
 * must add up to the full decode. */
static void check_stream(const awq_tokenizer *t, const int32_t *ids, int n, const char *text, int exact)
{
	struct awq_detok d;
	char err[AWQ_ERRLEN], *full = NULL, *piece;
	size_t fl, len = 0;
	awq_detok_init(&d, t, 1);
	if (awq_tokenizer_decode(t, ids, n, 1, &full, &fl, err, sizeof(err))) {
		fail("decode", err);
		return;
	}
	char *acc = calloc(1, fl * 2 + 16);
	for (int i = 0; i <= n; i++) {
		int rc = i < n ? awq_detok_push(&d, ids[i], &piece, err, sizeof(err)) : awq_detok_flush(&d, &piece, err,
												  sizeof(err));
		if (rc) {
			fail("stream", err);
			break;
		}
		if (piece) {
			if (!valid_utf8(piece))
				fail("stream emitted invalid UTF-8 for", text);
			if (len + strlen(piece) < fl * 2 + 16)
				strcpy(acc + len, piece);
			len += strlen(piece);
			free(piece);
		}
	}
	if (exact && strcmp(acc, full))
		fail("stream != decode for", text);
	free(acc);
	free(full);
	awq_detok_free(&d);
}

static void check_encode(const awq_tokenizer *t, const cJSON *c)
{
	const char *text = cJSON_GetObjectItem(c, "text")->valuestring;
	int add = cJSON_IsTrue(cJSON_GetObjectItem(c, "add_special")), n_ref, n;
	int32_t *ref = ids_of(cJSON_GetObjectItem(c, "ids"), &n_ref), *ids;
	char err[AWQ_ERRLEN];
	if (awq_tokenizer_encode(t, text, strlen(text), add, &ids, &n, err, sizeof(err))) {
		fail("encode error", err);
	} else {
		if (n != n_ref || memcmp(ids, ref, sizeof(int32_t) * (size_t)n)) {
			fail(add ? "encode (add_special)" : "encode", text);
			if (failures <= 20) {
				print_ids("want", ref, n_ref);
				print_ids("got ", ids, n);
			}
		}
		if (!add)
			check_stream(t, ids, n, text, 1);
		free(ids);
	}
	free(ref);
}

static void check_decode(const awq_tokenizer *t, const cJSON *c)
{
	const char *want = cJSON_GetObjectItem(c, "text")->valuestring;
	int skip = cJSON_IsTrue(cJSON_GetObjectItem(c, "skip_special")), n;
	int32_t *ids = ids_of(cJSON_GetObjectItem(c, "ids"), &n);
	char err[AWQ_ERRLEN], *out;
	size_t len;
	if (awq_tokenizer_decode(t, ids, n, skip, &out, &len, err, sizeof(err))) {
		fail("decode error", err);
	} else {
		if (strcmp(out, want)) {
			fail("decode", want);
			if (failures <= 20) {
				print_ids("ids", ids, n);
				fprintf(stderr, "  got: %s\n", out);
			}
		}
		free(out);
	}
	check_stream(t, ids, n, want, 0);
	free(ids);
}

static void check_chat(const awq_tokenizer *t, const cJSON *c)
{
	struct awq_chat chat;
	struct awq_chat_msg m[16];
	char err[AWQ_ERRLEN], *out;
	const cJSON *msgs = cJSON_GetObjectItem(c, "messages"), *e, *think = cJSON_GetObjectItem(c, "enable_thinking");
	int n = 0;
	if (awq_chat_detect(awq_tokenizer_chat_template(t), awq_tokenizer_bos_text(t), &chat, err, sizeof(err))) {
		fail("chat detect", err);
		return;
	}
	cJSON_ArrayForEach(e, msgs)
	{
		m[n].role = cJSON_GetObjectItem(e, "role")->valuestring;
		m[n++].content = cJSON_GetObjectItem(e, "content")->valuestring;
	}
	int th = cJSON_IsBool(think) ? cJSON_IsTrue(think) : -1;
	if (awq_chat_format(&chat, m, n, 1, th, &out)) {
		fail("chat format", "out of memory");
		return;
	}
	const char *want = cJSON_GetObjectItem(c, "text")->valuestring;
	if (strcmp(out, want)) {
		fail("chat", m[n - 1].content);
		if (failures <= 20)
			fprintf(stderr, "  want: [%s]\n  got:  [%s]\n", want, out);
	}
	free(out);
}

int main(int argc, char **argv)
{
	char path[4096], err[AWQ_ERRLEN];
	awq_tokenizer *t;
	if (argc != 2) {
		fprintf(stderr, "usage: test_tokenizer DIR\n");
		return 2;
	}
	if (awq_tokenizer_load(argv[1], &t, err, sizeof(err))) {
		fprintf(stderr, "FAIL load: %s\n", err);
		return 1;
	}
	snprintf(path, sizeof(path), "%s/golden.json", argv[1]);
	char *text = awq_test_slurp(path);
	cJSON *g = text ? cJSON_Parse(text) : NULL;
	if (!g) {
		fprintf(stderr, "FAIL: cannot read %s\n", path);
		return 1;
	}
	const cJSON *c;
	int n_enc = 0, n_dec = 0, n_chat = 0;
	cJSON_ArrayForEach(c, cJSON_GetObjectItem(g, "encode")) check_encode(t, c), n_enc++;
	cJSON_ArrayForEach(c, cJSON_GetObjectItem(g, "decode")) check_decode(t, c), n_dec++;
	cJSON_ArrayForEach(c, cJSON_GetObjectItem(g, "chat")) check_chat(t, c), n_chat++;
	printf("%s: %d encode, %d decode, %d chat cases, %d failures\n", argv[1], n_enc, n_dec, n_chat, failures);
	cJSON_Delete(g);
	free(text);
	awq_tokenizer_free(t);
	return failures ? 1 : 0;
}
