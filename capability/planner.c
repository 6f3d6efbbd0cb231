/* --backend auto: the one place that decides which device runs a model. Candidates are the devices
 * the backends of this build can open; each is ranked by the performance model's time for a
 * typical turn (PLAN_PROMPT tokens of prefill, then PLAN_GEN decoded tokens at the session's
 * context), devices the model does not fit are skipped, and the reason names the numbers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "caps_internal.h"
#include "error.h"

#define PLAN_PROMPT 512
#define PLAN_GEN 256
#define MAX_CAND 16
#define MAX_CAPS 24

struct candidate {
	char backend[16];
	struct awq_device_desc desc;
};

static int list_candidates(struct candidate *c, int max, char *notes, size_t nlen)
{
	const char *const *names = awq_backend_names();
	int n = 0;
	for (int b = 0; names[b] && n < max; b++) {
		const struct awq_backend_ops *ops;
		struct awq_device_desc devs[MAX_CAND];
		char why[AWQ_ERRLEN] = "";
		int k = awq_backend_find(names[b], &ops, why, sizeof(why)) == 0 ? ops->probe(devs, MAX_CAND, why, sizeof(why))
										: 0;
		if (k <= 0) {
			size_t used = strlen(notes);
			if (strcmp(names[b], "cpu") != 0 && used < nlen)
				snprintf(notes + used, nlen - used, "%s%s: %s", used ? "; " : "", names[b], why[0] ? why : "no device");
			continue;
		}
		for (int i = 0; i < k && n < max; i++, n++) {
			snprintf(c[n].backend, sizeof(c[n].backend), "%s", names[b]);
			c[n].desc = devs[i];
		}
	}
	return n;
}

/* The probe record describing a backend's device: same API and name (the CPU has one). */
static const struct awq_device_caps *caps_for(const struct candidate *c, const struct awq_device_caps *caps, int n)
{
	for (int i = 0; i < n; i++) {
		if (strcmp(caps[i].backend, c->backend) != 0)
			continue;
		if (strcmp(c->backend, "cpu") == 0 || strcmp(caps[i].name, c->desc.name) == 0)
			return &caps[i];
	}
	return NULL;
}

static void append(char *buf, size_t len, const char *fmt, const char *a, const char *b)
{
	size_t used = strlen(buf);
	if (used < len)
		snprintf(buf + used, len - used, fmt, a, b);
}

/* Rank the candidates by predicted time; returns 0 with choice and reason filled. */
static int rank(const struct candidate *cand, int nc, const struct awq_device_caps *caps, int n, const awq_model *m,
		int max_ctx, char *choice, size_t len, char *reason, size_t rlen, char *err, size_t errlen)
{
	char skipped[AWQ_ERRLEN] = "", others[AWQ_ERRLEN] = "";
	int best = -1;
	double best_t = 0, best_dec = 0, best_pre = 0;

	for (int i = 0; i < nc; i++) {
		const struct awq_device_caps *d = caps_for(&cand[i], caps, n);
		struct awq_perf_query q = {.scheme = AWQ_SCHEME_STORED, .batch = 1, .ctx = max_ctx > 0 ? max_ctx : 4096,
					   .n_prompt = PLAN_PROMPT};
		struct awq_perf_result r;
		char label[200];
		snprintf(label, sizeof(label), "%.15s %.127s", cand[i].backend, cand[i].desc.name);
		if (!d) {
			append(skipped, sizeof(skipped), "%s%s: not probed", skipped[0] ? "; " : "", label);
			continue;
		}
		int rc = awq_perf_predict(d, m, &q, &r, err, errlen);
		if (rc)
			return rc;
		if (r.limit == AWQ_LIMIT_MEMORY || r.limit == AWQ_LIMIT_UNKNOWN || r.limit == AWQ_LIMIT_UNSUPPORTED) {
			append(skipped, sizeof(skipped), "%s%s", skipped[0] ? "; " : "", label);
			append(skipped, sizeof(skipped), "%s%s", ": ", r.why);
			continue;
		}
		double t = r.prefill.seconds + PLAN_GEN * r.decode.seconds;
		char line[256];
		snprintf(line, sizeof(line), "%s %.3g tok/s decode", label, r.decode.tok_s);
		append(others, sizeof(others), "%s%s", others[0] ? ", " : "", line);
		if (best < 0 || t < best_t)
			best = i, best_t = t, best_dec = r.decode.tok_s, best_pre = r.prefill.tok_s;
	}
	if (best < 0) {
		snprintf(choice, len, "cpu");
		snprintf(reason, rlen, "no device could be ranked (%s); using the CPU", skipped);
		return 0;
	}
	snprintf(choice, len, "%s", cand[best].backend);
	snprintf(reason, rlen, "%s is predicted fastest: %.3g tok/s decode, %.3g tok/s prefill (ranked: %s%s%s)",
		 cand[best].desc.name, best_dec, best_pre, others, skipped[0] ? "; skipped: " : "", skipped);
	return 0;
}

int awq_plan_backend(const awq_model *m, int max_ctx, char *choice, size_t len, char *reason, size_t rlen,
		     char *err, size_t errlen)
{
	struct candidate cand[MAX_CAND];
	char notes[AWQ_ERRLEN] = "";

	int nc = list_candidates(cand, MAX_CAND, notes, sizeof(notes));
	if (nc <= 1) {
		snprintf(choice, len, "%s", nc ? cand[0].backend : "cpu");
		if (notes[0])
			snprintf(reason, rlen, "the only backend with a device here (%s)", notes);
		else
			snprintf(reason, rlen, "the only backend with a device here");
		return 0;
	}
	/* Several devices: measure them (a fraction of a second, once per process) and let the model
	 * rank them. */
	struct awq_device_caps *caps = calloc(MAX_CAPS, sizeof(*caps));
	if (!caps)
		return awq_err(err, errlen, AWQ_ENOMEM, "out of memory probing devices");
	int n = awq_caps_probe_cached(caps, MAX_CAPS, 1, err, errlen);
	int rc = n < 0 ? n : rank(cand, nc, caps, n, m, max_ctx, choice, len, reason, rlen, err, errlen);
	free(caps);
	return rc;
}
