/* Broken checkpoints: each must fail cleanly with a message naming the file and tensor or key. */
#define _POSIX_C_SOURCE 200809L

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "safetensors.h"
#include "tl.h"

#define ST "model.safetensors"

/* A valid llama config.json next to a model.safetensors with this header (padded with spaces
 * to a multiple of 8) and data_len random bytes. */
static void raw_case(const char *name, const char *header, size_t data_len, const char *s1,
		     const char *s2)
{
	struct ck c;
	char hdr[1024], path[1200];
	uint8_t data[256];
	ck_init(&c, name, "LlamaForCausalLM", 0);
	c.cfg = spec_config(&c.s);
	spec_write(&c.s, c.cfg, NULL, c.dir);
	snprintf(hdr, sizeof(hdr), "%s", header);
	while (strlen(hdr) % 8)
		strcat(hdr, " ");
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(tw_rand(&c.w) | 1);
	snprintf(path, sizeof(path), "%s/" ST, c.dir);
	CHECK(data_len <= sizeof(data) && write_raw_st(path, hdr, data, data_len) == 0, "%s", name);
	tl_expect_fail(name, c.dir, 0, s1, s2);
	ck_free(&c);
}

#define T(n, dt, shape, b, e) "\"" n "\": {\"dtype\": \"" dt "\", \"shape\": " shape \
			      ", \"data_offsets\": [" #b ", " #e "]}"

static void header_cases(void)
{
	raw_case("invalid json", "{\"a\": {\"dtype\": \"F32\", ", 0, ST ": header is not valid JSON",
		 NULL);
	raw_case("json not an object", "[1, 2]", 0, ST, "not a JSON object");
	raw_case("trailing garbage", "{} x", 0, ST, "trailing bytes");
	raw_case("invalid utf-8", "{\"\xff\xfe\": 1}", 0, ST, "UTF-8");
	raw_case("offsets outside buffer", "{" T("w", "F32", "[4]", 0, 16) "}", 8,
		 ST ": tensor 'w'", "outside the 8-byte data buffer");
	raw_case("overlapping offsets",
		 "{" T("a", "F32", "[2]", 0, 8) ", " T("b", "F32", "[2]", 4, 12) "}", 12,
		 ST ": tensor 'b'", "overlap");
	raw_case("hole between tensors",
		 "{" T("a", "F32", "[2]", 0, 8) ", " T("b", "F32", "[2]", 12, 20) "}", 20,
		 ST ": tensor 'b'", "hole");
	raw_case("bytes after last tensor", "{" T("a", "F32", "[2]", 0, 8) "}", 16, ST,
		 "cover 8 bytes but the data buffer holds 16");
	raw_case("size mismatch", "{" T("w", "F32", "[2, 2]", 0, 12) "}", 12, ST ": tensor 'w'",
		 "needs 16 bytes");
	raw_case("shape product overflow",
		 "{" T("w", "F32", "[4294967296, 4294967296, 4294967296]", 0, 0) "}", 0,
		 ST ": tensor 'w'", "overflows");
	raw_case("negative dim", "{" T("w", "F32", "[-2]", 0, 0) "}", 0, ST ": tensor 'w'",
		 "non-negative");
	raw_case("unknown dtype", "{" T("w", "Q4_K", "[4]", 0, 4) "}", 4, ST ": tensor 'w'",
		 "unknown dtype \"Q4_K\"");
	raw_case("newline in dtype", "{" T("w", "F\\n32", "[1]", 0, 4) "}", 4, ST ": tensor 'w'",
		 "unknown dtype \"F\\n32\"");
	raw_case("unread dtype", "{" T("w", "F8_E8M0", "[4]", 0, 4) "}", 4, ST ": tensor 'w'",
		 "not supported");
	raw_case("missing data_offsets", "{\"w\": {\"dtype\": \"F32\", \"shape\": [1]}}", 4,
		 ST ": tensor 'w'", "data_offsets");
	raw_case("duplicate names",
		 "{" T("w", "F32", "[2]", 0, 8) ", " T("w", "F32", "[2]", 8, 16) "}", 16,
		 ST ": tensor 'w'", "twice");
	raw_case("misaligned tensor",
		 "{" T("h", "F16", "[1]", 0, 2) ", " T("w", "F32", "[1]", 2, 6) "}", 6,
		 ST ": tensor 'w'", "not aligned");
	raw_case("bad metadata", "{\"__metadata__\": {\"format\": 1}}", 0, ST, "__metadata__");
}

/* Files too short or with a lying length prefix: written byte by byte. */
static void length_cases(void)
{
	struct ck c;
	char path[1200];
	uint8_t buf[16] = {0xe8, 0x03, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '};
	ck_init(&c, "header length past eof", "LlamaForCausalLM", 0);
	c.cfg = spec_config(&c.s);
	spec_write(&c.s, c.cfg, NULL, c.dir);
	snprintf(path, sizeof(path), "%s/" ST, c.dir);
	write_bytes(path, buf, sizeof(buf));
	tl_expect_fail("header length past EOF", c.dir, AWQ_EFORMAT, ST, "header length 1000 runs past");
	write_bytes(path, buf, 5);
	tl_expect_fail("5-byte file", c.dir, AWQ_EFORMAT, ST, "too short");
	ck_free(&c);

	/* the memory entry point reads only len bytes even when the file is larger */
	struct awq_st_header h;
	char err[AWQ_ERRLEN] = "";
	buf[0] = 8;
	buf[1] = 0;
	int rc = awq_safetensors_parse_header(buf, 12, 16, "buf", &h, err, sizeof(err));
	CHECK(rc == AWQ_EFORMAT && strstr(err, "runs past"), "short buffer: %d %s", rc, err);
	rc = awq_safetensors_parse_header(buf, 16, 16, "buf", &h, err, sizeof(err));
	CHECK(rc == 0 && h.n == 0 && h.data_start == 16, "empty header: %d %s", rc, err);
	awq_safetensors_header_free(&h);
}

static void truncated(void)
{
	struct ck c;
	char path[1200];
	ck_init(&c, "truncated", "LlamaForCausalLM", 0);
	ck_build(&c);
	ck_write(&c);
	snprintf(path, sizeof(path), "%s/" ST, c.dir);
	struct tw_tensor *t = tw_find(&c.w, "model.norm.weight");
	off_t size = 0;
	FILE *f = fopen(path, "rb");
	if (f) {
		fseek(f, 0, SEEK_END);
		size = ftell(f);
		fclose(f);
	}
	CHECK(t && size > 10 && truncate(path, size - 10) == 0, "truncate");
	tl_expect_fail("truncated file", c.dir, AWQ_EFORMAT, ST ": tensor 'model.norm.weight'",
		       "outside");
	ck_free(&c);
}

void tl_bad_header_cases(void)
{
	header_cases();
	length_cases();
	truncated();
}
