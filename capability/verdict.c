/* The report's per-model predictions (16-bit, AWQ W4A16, FP8) and the one sentence per device that
 * names what decides whether 4-bit weights help there. */
#include <stdio.h>
#include <string.h>

#include "caps_internal.h"
#include "synthetic.h"

int awq_caps_row(const struct awq_device_caps *d, const awq_model *m, const struct awq_caps_report_opts *o,
		 struct caps_row *row, char *err, size_t errlen)
{
	static const enum awq_scheme schemes[CAPS_NSCHEMES] = {AWQ_SCHEME_BF16, AWQ_SCHEME_AWQ4, AWQ_SCHEME_FP8};
	memset(row, 0, sizeof(*row));
	row->scheme16 = d->native[AWQ_MF_BF16] == 1 || strcmp(d->backend, "cpu") == 0 ? AWQ_SCHEME_BF16
										      : AWQ_SCHEME_FP16;
	for (int i = 0; i < CAPS_NSCHEMES; i++) {
		struct awq_perf_query q = {.scheme = i == CAPS_W16 ? row->scheme16 : schemes[i], .batch = o->batch,
					   .ctx = o->ctx, .n_prompt = o->n_prompt};
		int rc = awq_perf_predict(d, m, &q, &row->res[i], err, errlen);
		if (rc)
			return rc;
	}
	return 0;
}

static int usable(const struct awq_perf_result *r)
{
	return r->limit != AWQ_LIMIT_UNKNOWN && r->limit != AWQ_LIMIT_UNSUPPORTED && r->limit != AWQ_LIMIT_MEMORY;
}

/* Why the decode speedup is what it is. */
static int decode_clause(const struct awq_device_caps *d, const char *model, const struct caps_row *row, char *buf,
			 size_t len)
{
	const struct awq_perf_result *w = &row->res[CAPS_W16], *a = &row->res[CAPS_AWQ];
	double speed = a->decode.tok_s / w->decode.tok_s, ratio = w->decode.bytes / a->decode.bytes;
	if (w->decode.limit == AWQ_LIMIT_OVERHEAD)
		return snprintf(buf, len, "decode of %s is overhead-bound (%.0f%% of each token is launch/dispatch cost), "
			       "so AWQ's %.1fx fewer bytes give only %.2fx", model,
			       100 * w->decode.t_overhead / w->decode.seconds, ratio, speed);
	if (a->decode.limit == AWQ_LIMIT_COMPUTE)
		return snprintf(buf, len, "AWQ decode of %s is compute-bound here: unpacking 4-bit weights on the %s units "
			       "costs more than reading %.1fx fewer bytes saves, so AWQ runs at %.2fx the 16-bit speed",
			       model, awq_mfmt_name(a->unit), ratio, speed);
	if (strcmp(d->backend, "cuda") == 0 && d->cuda.cc_major == 7)
		return snprintf(buf, len, "Turing has no cp.async, so the W4A16 kernel streams %s's %.1fx fewer bytes at "
			       "%.0f%% of the 16-bit kernel's rate: AWQ decodes only %.2fx as fast", model, ratio,
			       100 * a->bw_gbs / w->bw_gbs, speed);
	double kernel = a->bw_gbs / w->bw_gbs;
	if (kernel < 0.8)
		return snprintf(buf, len, "decode of %s is bandwidth-bound and AWQ reads %.1fx fewer bytes, but the W4A16 "
			       "kernel streams them at %.0f GB/s, %.0f%% of the 16-bit kernel's rate, so AWQ gives %.2fx (the "
			       "16-bit embedding and lm_head are %.0f%% of AWQ's bytes)", model, ratio, a->bw_gbs, 100 * kernel,
			       speed, 100 * a->unquantized_share);
	return snprintf(buf, len, "decode of %s is bandwidth-bound at %.0f GB/s, so AWQ's %.1fx fewer bytes give %.2fx "
		       "(the 16-bit embedding and lm_head are %.0f%% of AWQ's bytes)", model, a->bw_gbs, ratio, speed,
		       100 * a->unquantized_share);
}

/* What prefill (compute-bound) can gain: only a lower-precision unit helps, never W4A16. */
static void prefill_clause(const struct awq_device_caps *d, const struct caps_row *row, char *buf, size_t len)
{
	const struct awq_perf_result *w = &row->res[CAPS_W16], *f8 = &row->res[CAPS_FP8];
	int n = 0;
	if (usable(f8))
		n = snprintf(buf, len, "; FP8 units (%.0f TFLOPS peak) make prefill %.1fx faster than 16-bit, which AWQ "
			     "(dequantize + FP16 matmul) cannot", d->rate[AWQ_MF_FP8].v, f8->prefill.tok_s / w->prefill.tok_s);
	else if (strcmp(d->backend, "cpu") != 0)
		n = snprintf(buf, len, "; with no FP8 units prefill stays on %s at %.0f TFLOPS peak whatever the weight "
			     "format", awq_mfmt_name(w->unit), d->rate[w->unit].v);
	if (n >= 0 && (size_t)n < len && d->sustained_mhz > 0)
		snprintf(buf + n, len - (size_t)n, "; its power cap holds the clock near %.0f of %.0f MHz", d->sustained_mhz,
			 d->clock_mhz);
}

void awq_caps_verdict(const struct awq_device_caps *d, const char *model, const struct caps_row *row, char *buf,
		      size_t len)
{
	const struct awq_perf_result *w = &row->res[CAPS_W16], *a = &row->res[CAPS_AWQ];
	char dec[400], pre[300] = "";
	if (w->limit == AWQ_LIMIT_UNKNOWN) {
		snprintf(buf, len, "%s: no prediction (%s).", d->name, w->why);
		return;
	}
	if (a->limit == AWQ_LIMIT_MEMORY) {
		snprintf(buf, len, "%s: %s does not fit even with 4-bit weights (%s).", d->name, model, a->why);
		return;
	}
	if (w->limit == AWQ_LIMIT_MEMORY) {
		snprintf(buf, len, "%s: only 4-bit weights fit: 16-bit %s %s, while AWQ needs %.1f GB and decodes at %.3g tok/s.",
			 d->name, model, w->why, a->need_bytes / 1e9, a->decode.tok_s);
		return;
	}
	decode_clause(d, model, row, dec, sizeof(dec));
	prefill_clause(d, row, pre, sizeof(pre));
	snprintf(buf, len, "%s: %s%s.", d->name, dec, pre);
}

int awq_caps_model_shape(const char *preset, awq_model **out, char *err, size_t errlen)
{
	return awq_model_shape(preset, "bf16", out, err, errlen);
}

int awq_caps_verdict_pick(const struct caps_row *row, int first, int *rank)
{
	int r = usable(&row->res[CAPS_W16]) && usable(&row->res[CAPS_AWQ]) ? 3 : usable(&row->res[CAPS_AWQ]) ? 2 : 1;
	if (!first && r < *rank)
		return 0;
	*rank = r;
	return 1;
}
