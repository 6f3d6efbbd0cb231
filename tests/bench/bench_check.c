/* Checks of what `awqrun bench` / `awqrun compare` write, for the bench CLI tests:
 *   bench_check json FILE [METHOD]   bench --json: every field of docs/bench-schema.md with its type
 *   bench_check fit FILE             bench --fit --json
 *   bench_check csv FILE             bench --csv: the documented header, same field count on every line
 *   bench_check svg FILE             compare --svg: well-formed XML, an <svg> root, bars and ceilings
 * Exit status 0 when every check passes, 1 otherwise (each failure printed). */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "awq_test.h"

static int failures;

#define CHECK(cond, ...) AWQ_CHECK(failures, cond, __VA_ARGS__)

static const cJSON *field(const cJSON *o, const char *k)
{
	return cJSON_GetObjectItemCaseSensitive(o, k);
}

static void want_str(const cJSON *o, const char *k, int i)
{
	CHECK(cJSON_IsString(field(o, k)), "result %d: \"%s\" is not a string", i, k);
}

static void want_num(const cJSON *o, const char *k, int i)
{
	CHECK(cJSON_IsNumber(field(o, k)), "result %d: \"%s\" is not a number", i, k);
}

static void want_num_or_null(const cJSON *o, const char *k, int i)
{
	CHECK(cJSON_IsNumber(field(o, k)) || cJSON_IsNull(field(o, k)), "result %d: \"%s\" is not a number or null", i, k);
}

static double num(const cJSON *o, const char *k)
{
	const cJSON *v = field(o, k);
	return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

static int check_bench_json(const char *text, const char *method)
{
	cJSON *root = cJSON_Parse(text);
	CHECK(root != NULL, "not JSON");
	if (!root)
		return 1;
	const cJSON *schema = field(root, "schema");
	CHECK(cJSON_IsString(schema) && !strcmp(schema->valuestring, "awqrun-bench/2"), "schema is not awqrun-bench/2");
	const char *top[] = {"awqrun", "commit", "date", "command"};
	for (size_t i = 0; i < sizeof(top) / sizeof(top[0]); i++)
		CHECK(cJSON_IsString(field(root, top[i])) && field(root, top[i])->valuestring[0], "\"%s\" missing", top[i]);
	const cJSON *devs = field(root, "devices"), *d;
	CHECK(cJSON_IsArray(devs) && cJSON_GetArraySize(devs) >= 1, "no devices");
	cJSON_ArrayForEach(d, devs)
	{
		want_str(d, "backend", -1);
		want_str(d, "name", -1);
		want_str(d, "driver", -1);
		want_num(d, "index", -1);
		want_num_or_null(d, "bw_gbs", -1);
	}
	const cJSON *res = field(root, "results"), *r;
	CHECK(cJSON_IsArray(res) && cJSON_GetArraySize(res) >= 1, "no results");
	int i = 0;
	cJSON_ArrayForEach(r, res)
	{
		const char *strs[] = {"model", "precision", "backend", "device", "driver", "kernels", "method", "test"};
		const char *nums[] = {"device_index", "n_prompt", "n_gen", "n_devices", "repeats", "tok_s", "tok_s_stddev",
				      "bytes_per_token", "weight_bytes", "device_bytes"};
		const char *opt[] = {"predicted_tok_s", "predicted_error_pct", "gbs", "bw_gbs", "bw_fraction",
				     "trained_positions"};
		for (size_t k = 0; k < sizeof(strs) / sizeof(strs[0]); k++)
			want_str(r, strs[k], i);
		for (size_t k = 0; k < sizeof(nums) / sizeof(nums[0]); k++)
			want_num(r, nums[k], i);
		for (size_t k = 0; k < sizeof(opt) / sizeof(opt[0]); k++)
			want_num_or_null(r, opt[k], i);
		CHECK(cJSON_IsString(field(r, "bound")) || cJSON_IsNull(field(r, "bound")), "result %d: bound", i);
		CHECK(cJSON_IsBool(field(r, "modeled")) && cJSON_IsFalse(field(r, "modeled")), "result %d: modeled", i);
		CHECK(cJSON_IsBool(field(r, "past_trained_positions")), "result %d: past_trained_positions", i);
		/* a test past the trained positions says so: depth + tokens over them */
		if (cJSON_IsNumber(field(r, "trained_positions")) && cJSON_IsNumber(field(r, "n_depth")))
			CHECK(cJSON_IsTrue(field(r, "past_trained_positions")) ==
				      (num(r, "n_depth") + num(r, "n_prompt") + num(r, "n_gen") > num(r, "trained_positions")),
			      "result %d: past_trained_positions disagrees with n_depth + tokens", i);
		CHECK(num(r, "tok_s") > 0, "result %d: tok_s %g", i, num(r, "tok_s"));
		CHECK(num(r, "n_devices") == 1, "result %d: n_devices", i);
		if (method)
			CHECK(cJSON_IsString(field(r, "method")) && !strcmp(field(r, "method")->valuestring, method),
			      "result %d: method is not %s", i, method);
		/* Prefill rows have no bandwidth figure; decode rows do. */
		int llama_pp = num(r, "n_gen") == 0;
		if (llama_pp)
			CHECK(cJSON_IsNull(field(r, "gbs")), "result %d: prefill gbs should be null", i);
		const cJSON *m = field(r, "memory"), *acc = m ? field(m, "accounted") : NULL;
		CHECK(cJSON_IsObject(m) && cJSON_IsObject(acc), "result %d: memory / memory.accounted missing", i);
		if (m && acc) {
			const char *mk[] = {"kv_positions", "max_batch", "weights", "weights_int4", "weights_16bit", "kv_cache",
					    "activations", "workspace", "total"};
			for (size_t k = 0; k < sizeof(mk) / sizeof(mk[0]); k++)
				want_num(m, mk[k], i);
			double parts = num(m, "weights") + num(m, "kv_cache") + num(m, "activations") + num(m, "workspace");
			CHECK(parts == num(m, "total"), "result %d: memory parts %.0f != total %.0f", i, parts, num(m, "total"));
			CHECK(num(m, "total") == num(r, "device_bytes"), "result %d: device_bytes != memory.total", i);
			double at = num(acc, "total"), t = num(m, "total");
			CHECK(at > 0.9 * t && at < 1.1 * t, "result %d: accounted %.0f vs allocated %.0f bytes", i, at, t);
			CHECK(num(acc, "kv_cache") == num(m, "kv_cache"), "result %d: accounted KV %.0f vs allocated %.0f", i,
			      num(acc, "kv_cache"), num(m, "kv_cache"));
			double split = num(m, "weights_int4") + num(m, "weights_16bit");
			CHECK(split == num(acc, "weights"), "result %d: weights by format %.0f != accounted %.0f", i, split,
			      num(acc, "weights"));
		}
		i++;
	}
	cJSON_Delete(root);
	return failures != 0;
}

static int check_fit_json(const char *text)
{
	cJSON *root = cJSON_Parse(text);
	CHECK(root != NULL, "not JSON");
	if (!root)
		return 1;
	CHECK(cJSON_IsString(field(root, "schema")) && !strcmp(field(root, "schema")->valuestring, "awqrun-fit/1"),
	      "schema is not awqrun-fit/1");
	CHECK(num(root, "ctx") > 0, "ctx");
	const cJSON *sizes = field(root, "gpus_gib"), *rows = field(root, "rows"), *r;
	CHECK(cJSON_IsArray(sizes) && cJSON_GetArraySize(sizes) > 0, "gpus_gib");
	CHECK(cJSON_IsArray(rows) && cJSON_GetArraySize(rows) > 0, "rows");
	int i = 0;
	cJSON_ArrayForEach(r, rows)
	{
		want_str(r, "model", i);
		want_str(r, "precision", i);
		double parts = num(r, "weights_bytes") + num(r, "kv_bytes") + num(r, "activation_bytes");
		CHECK(parts == num(r, "total_bytes"), "row %d: parts %.0f != total %.0f", i, parts, num(r, "total_bytes"));
		CHECK(num(r, "weights_quantized_bytes") + num(r, "weights_16bit_bytes") == num(r, "weights_bytes"),
		      "row %d: weights by format do not add up", i);
		const cJSON *fits = field(r, "fits");
		CHECK(cJSON_IsArray(fits) && cJSON_GetArraySize(fits) == cJSON_GetArraySize(sizes), "row %d: fits", i);
		i++;
	}
	cJSON_Delete(root);
	return failures != 0;
}

static int csv_fields(const char *line, size_t len)
{
	int n = 1, quoted = 0;
	for (size_t i = 0; i < len; i++) {
		if (line[i] == '"')
			quoted = !quoted;
		else if (line[i] == ',' && !quoted)
			n++;
	}
	return n;
}

static int check_csv(const char *text)
{
	static const char header[] =
		"model,precision,backend,device_index,device,driver,kernels,method,test,n_prompt,n_gen,n_devices,repeats,"
		"tok_s,tok_s_stddev,predicted_tok_s,predicted_error_pct,bound,bytes_per_token,gbs,bw_gbs,bw_fraction,"
		"mem_weights,mem_weights_int4,mem_weights_16bit,mem_kv,mem_activations,mem_workspace,mem_total,"
		"mem_accounted,kv_positions,modeled,past_trained_positions\n";
	CHECK(!strncmp(text, header, strlen(header)), "CSV header differs from docs/bench-schema.md");
	int want = csv_fields(header, strlen(header) - 1), lines = 0;
	for (const char *p = text; *p;) {
		const char *e = strchr(p, '\n');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		CHECK(csv_fields(p, len) == want, "line %d has %d fields, not %d", lines + 1, csv_fields(p, len), want);
		lines++;
		p += len + (e ? 1 : 0);
	}
	CHECK(lines >= 2, "no data lines");
	return failures != 0;
}

/* --- a small well-formedness check: tags nest, attributes are quoted, entities are known -------- */

static int name_char(int c)
{
	return isalnum(c) || c == '-' || c == '_' || c == ':' || c == '.';
}

static int check_svg(const char *s)
{
	const char *stack[64];
	size_t stack_len[64];
	int depth = 0, elements = 0, rects = 0, dashes = 0, root_svg = 0;
	const char *p = s;
	if (!strncmp(p, "<?xml", 5)) {
		p = strstr(p, "?>");
		CHECK(p != NULL, "unterminated XML declaration");
		if (!p)
			return 1;
		p += 2;
	}
	while (*p && !failures) {
		if (*p == '&') {
			const char *ents[] = {"&lt;", "&gt;", "&amp;", "&quot;", "&apos;"};
			int ok = p[1] == '#';
			for (size_t i = 0; i < 5 && !ok; i++)
				ok = !strncmp(p, ents[i], strlen(ents[i]));
			CHECK(ok, "bad entity near \"%.20s\"", p);
			p++;
			continue;
		}
		if (*p != '<') {
			p++;
			continue;
		}
		if (!strncmp(p, "<!--", 4)) {
			p = strstr(p, "-->");
			CHECK(p != NULL, "unterminated comment");
			if (!p)
				break;
			p += 3;
			continue;
		}
		int closing = p[1] == '/';
		const char *name = p + 1 + closing, *q = name;
		while (name_char((unsigned char)*q))
			q++;
		size_t nlen = (size_t)(q - name);
		CHECK(nlen > 0, "empty tag name near \"%.20s\"", p);
		if (closing) {
			CHECK(depth > 0 && stack_len[depth - 1] == nlen && !strncmp(stack[depth - 1], name, nlen),
			      "</%.*s> does not close the open element", (int)nlen, name);
			depth--;
			while (isspace((unsigned char)*q))
				q++;
			CHECK(*q == '>', "junk in end tag </%.*s>", (int)nlen, name);
			p = q + 1;
			continue;
		}
		if (elements++ == 0)
			root_svg = nlen == 3 && !strncmp(name, "svg", 3);
		rects += nlen == 4 && !strncmp(name, "rect", 4);
		/* attributes: name="value" or name='value' */
		for (;;) {
			while (isspace((unsigned char)*q))
				q++;
			if (*q == '>' || (*q == '/' && q[1] == '>'))
				break;
			const char *an = q;
			while (name_char((unsigned char)*q))
				q++;
			CHECK(q > an && *q == '=' && (q[1] == '"' || q[1] == '\''), "bad attribute in <%.*s> near \"%.20s\"",
			      (int)nlen, name, an);
			if (failures)
				return 1;
			char quote = q[1];
			const char *val = q + 2, *end = strchr(val, quote);
			CHECK(end != NULL, "unterminated attribute value");
			if (!end)
				return 1;
			CHECK(memchr(val, '<', (size_t)(end - val)) == NULL, "'<' inside an attribute value");
			dashes += (size_t)(val - an) > 17 && !strncmp(an, "stroke-dasharray", 16);
			q = end + 1;
		}
		if (*q == '/') {
			p = q + 2;
		} else {
			CHECK(depth < 64, "nesting too deep");
			if (depth >= 64)
				return 1;
			stack[depth] = name;
			stack_len[depth++] = nlen;
			p = q + 1;
		}
	}
	CHECK(depth == 0, "%d element(s) left open", depth);
	CHECK(root_svg, "the root element is not <svg>");
	CHECK(rects >= 3, "only %d <rect> elements: no bars", rects);
	CHECK(dashes >= 1, "no dashed bandwidth-ceiling mark");
	return failures != 0;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: bench_check json|fit|csv|svg FILE [METHOD]\n");
		return 2;
	}
	char *text = awq_test_slurp(argv[2]);
	if (!text) {
		fprintf(stderr, "bench_check: cannot read %s\n", argv[2]);
		return 1;
	}
	int rc = !strcmp(argv[1], "json")  ? check_bench_json(text, argc > 3 ? argv[3] : NULL)
		 : !strcmp(argv[1], "fit") ? check_fit_json(text)
		 : !strcmp(argv[1], "csv") ? check_csv(text)
		 : !strcmp(argv[1], "svg") ? check_svg(text)
					   : 2;
	free(text);
	if (rc == 0)
		printf("bench_check %s %s: ok\n", argv[1], argv[2]);
	return rc;
}
