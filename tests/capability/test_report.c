/* The caps report: text and JSON for database GPUs (the JSON parsed back and checked against the
 * schema of docs/caps-schema.md), and the --backend auto planner on this machine. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "caps_internal.h"
#include "ct.h"
#include "synthetic.h"

static char *report(const struct awq_caps_report_opts *o)
{
	char *buf = NULL, err[AWQ_ERRLEN];
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	int rc = awq_caps_report(f, o, err, sizeof(err));
	fclose(f);
	CHECK(rc == 0, "report: %s", err);
	return buf;
}

static const cJSON *get(const cJSON *o, const char *key)
{
	const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
	CHECK(x != NULL, "JSON has no '%s'", key);
	return x;
}

static void check_json(const char *text, int n_devs, int n_models)
{
	cJSON *root = cJSON_Parse(text);
	CHECK(root != NULL, "the JSON report does not parse");
	if (!root)
		return;
	CHECK(cJSON_IsString(get(root, "schema")) && !strcmp(get(root, "schema")->valuestring, "awqrun-caps/1"), "schema");
	const cJSON *devs = get(root, "devices"), *preds = get(root, "predictions");
	CHECK(cJSON_GetArraySize(devs) == n_devs, "%d devices", cJSON_GetArraySize(devs));
	CHECK(cJSON_GetArraySize(preds) == n_devs * n_models, "%d predictions", cJSON_GetArraySize(preds));
	const cJSON *d;
	cJSON_ArrayForEach(d, devs)
	{
		const cJSON *rates = get(d, "rates_tflops"), *bw = get(d, "bandwidth_gbs");
		CHECK(cJSON_IsObject(get(rates, "fp16-fp32acc")) && cJSON_IsObject(get(bw, "peak")), "device record shape");
		CHECK(cJSON_IsString(get(d, "verdict")) && strlen(get(d, "verdict")->valuestring) > 40, "verdict");
		CHECK(!strcmp(get(get(bw, "peak"), "source")->valuestring, "database"), "peak bandwidth source");
	}
	const cJSON *p;
	cJSON_ArrayForEach(p, preds)
	{
		const cJSON *w = get(p, "w16"), *a = get(p, "awq");
		double dw = get(get(w, "decode"), "tok_s")->valuedouble, da = get(get(a, "decode"), "tok_s")->valuedouble;
		CHECK(dw > 0 && da > dw, "decode %g (16-bit) vs %g (AWQ)", dw, da);
		CHECK(cJSON_IsNumber(get(p, "awq_speedup_decode")), "speedup");
		CHECK(cJSON_IsString(get(get(p, "fp8"), "limit")), "fp8 entry");
	}
	cJSON_Delete(root);
}

static void check_reports(void)
{
	struct awq_device_caps devs[2];
	struct awq_caps_model models[2] = {{"qwen3-0.6b", NULL}, {"qwen3-8b", NULL}};
	char err[AWQ_ERRLEN];
	CHECK(awq_caps_from_db("t4", &devs[0], err, sizeof(err)) == 0 && awq_caps_from_db("rtx-4090", &devs[1], err, sizeof(err)) == 0,
	      "%s", err);
	for (int i = 0; i < 2; i++)
		CHECK(awq_caps_model_shape(models[i].label, &models[i].stored, err, sizeof(err)) == 0, "%s", err);
	if (!models[0].stored || !models[1].stored)
		return;
	struct awq_caps_report_opts o = {.devs = devs, .n_devs = 2, .absent = "cuda: no driver\n", .models = models,
					 .n_models = 2, .ctx = 1024, .n_prompt = 512, .batch = 1};
	char *text = report(&o);
	CHECK(text && strstr(text, "NVIDIA T4") && strstr(text, "why:") && strstr(text, "no cp.async") &&
		      strstr(text, "FP8 units"), "text report:\n%s", text ? text : "(none)");
	free(text);
	o.json = 1;
	text = report(&o);
	if (text)
		check_json(text, 2, 2);
	free(text);
	for (int i = 0; i < 2; i++)
		awq_model_free(models[i].stored);
}

/* The planner chooses a backend this build has, with a reason that names it. */
static void check_planner(void)
{
	awq_model *m = NULL;
	char err[AWQ_ERRLEN], choice[16], reason[AWQ_ERRLEN];
	CHECK(awq_model_shape("qwen3-0.6b", "awq", &m, err, sizeof(err)) == 0, "%s", err);
	if (!m)
		return;
	memset(choice, 'x', sizeof(choice));
	int rc = awq_plan_backend(m, 2048, choice, sizeof(choice), reason, sizeof(reason), err, sizeof(err));
	CHECK(rc == 0, "planner: %s", err);
	if (rc == 0) {
		printf("planner: %s (%s)\n", choice, reason);
		CHECK(!strcmp(choice, "cpu") || !strcmp(choice, "cuda") || !strcmp(choice, "vulkan"), "choice '%.15s'", choice);
		CHECK(strlen(reason) > 10, "reason '%s'", reason);
	}
	awq_model_free(m);
}

/* Prediction for this machine's CPU with a bandwidth the caller measured, as `awqrun bench` asks. */
static void check_predict_device(void)
{
	awq_model *m = NULL;
	char err[AWQ_ERRLEN];
	struct awq_perf_query q = {.scheme = AWQ_SCHEME_STORED, .batch = 1, .ctx = 256, .n_prompt = 64};
	struct awq_perf_result r, r2;
	CHECK(awq_model_shape("qwen3-0.6b", "bf16", &m, err, sizeof(err)) == 0, "%s", err);
	if (!m)
		return;
	CHECK(awq_caps_predict_device("cpu", NULL, m, &q, 20.0, &r, err, sizeof(err)) == 0, "%s", err);
	CHECK(awq_caps_predict_device("cpu", NULL, m, &q, 40.0, &r2, err, sizeof(err)) == 0, "%s", err);
	CHECK(r.decode.tok_s > 0 && r.limit != AWQ_LIMIT_UNKNOWN, "cpu prediction: %s", r.why);
	CHECK(r2.decode.tok_s > r.decode.tok_s, "twice the bandwidth: %g vs %g tok/s", r2.decode.tok_s, r.decode.tok_s);
	CHECK(awq_caps_predict_device("nosuch", NULL, m, &q, 20.0, &r, err, sizeof(err)) == AWQ_ENODEV, "unknown backend");
	awq_model_free(m);
}

int main(void)
{
	check_reports();
	check_planner();
	check_predict_device();
	return ct_result("caps_report");
}
