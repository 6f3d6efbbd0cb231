/* Attaching spec figures to devices: the database row when one matches, else a per-architecture
 * rule (dense operations per SM per clock, times the probed SM count and clock). The per-SM figures
 * are the database rows' rates divided back by SMs x boost clock (e.g. H100 SXM 989.4 TFLOPS /
 * (132 x 1.83 GHz) = 4096 FP16 FLOP/clk/SM), see shared/spec/gpus.md section 1. */
#include <stdio.h>
#include <string.h>

#include "caps_internal.h"

struct arch_rule {
	int major, minor;     /* minor -1: any minor of the major */
	const char *family;
	/* FLOP (or int ops) per clock per SM, dense: fp32, fp16 (fp16 acc), fp16 fp32-acc, bf16, tf32,
	 * fp8, int8, int4, fp4 — in enum awq_mfmt order */
	double per_sm[AWQ_MF_COUNT];
	int geforce_half;     /* GeForce parts run FP32-accumulate (fp16/bf16/tf32/fp8) at half rate */
};

static const struct arch_rule rules[] = {
	{7, 0, "Volta", {128, 1024, 1024, 0, 0, 0, 0, 0, 0}, 0},
	{7, 5, "Turing", {128, 1024, 1024, 0, 0, 0, 2048, 4096, 0}, 1},
	{8, 0, "Ampere GA100", {128, 2048, 2048, 2048, 1024, 0, 4096, 8192, 0}, 0},
	{8, 6, "Ampere GA10x", {256, 1024, 1024, 1024, 512, 0, 2048, 4096, 0}, 1},
	{8, 7, "Ampere GA10B (Orin)", {256, 2048, 2048, 2048, 1024, 0, 4096, 8192, 0}, 0},
	{8, 9, "Ada", {256, 1024, 1024, 1024, 512, 2048, 2048, 4096, 0}, 1},
	{9, 0, "Hopper", {256, 4096, 4096, 4096, 2048, 8192, 8192, 0, 0}, 0},
	{10, -1, "Blackwell (datacenter)", {256, 8192, 8192, 8192, 4096, 16384, 16384, 0, 32768}, 0},
	{12, -1, "Blackwell (RTX)", {256, 1024, 1024, 1024, 512, 2048, 2048, 0, 4096}, 1},
};

#define N_RULES (sizeof(rules) / sizeof(rules[0]))

/* The rule for a compute capability; a part newer than the table gets the newest rule. */
static const struct arch_rule *find_rule(int major, int minor, int *newer)
{
	*newer = 0;
	for (size_t i = 0; i < N_RULES; i++)
		if (rules[i].major == major && (rules[i].minor < 0 || rules[i].minor == minor))
			return &rules[i];
	for (size_t i = N_RULES; i-- > 0;)
		if (rules[i].major == major && rules[i].minor < minor) {
			*newer = 1;
			return &rules[i];
		}
	if (major > rules[N_RULES - 1].major) {
		*newer = 1;
		return &rules[N_RULES - 1];
	}
	return NULL;
}

static int is_half_rate(enum awq_mfmt f)
{
	return f == AWQ_MF_FP16_F32ACC || f == AWQ_MF_BF16 || f == AWQ_MF_TF32 || f == AWQ_MF_FP8;
}

static void apply_rule(struct awq_device_caps *d)
{
	int newer;
	const struct arch_rule *r = find_rule(d->cuda.cc_major, d->cuda.cc_minor, &newer);
	if (!r || d->units <= 0 || d->clock_mhz <= 0) {
		snprintf(d->db_how, sizeof(d->db_how), "not in the GPU database and no architecture rule for %s: "
			 "matrix rates unknown", d->arch);
		return;
	}
	int geforce = r->geforce_half && strstr(d->name, "GeForce") != NULL;
	double hz = d->units * d->clock_mhz * 1e6;
	for (int f = 0; f < AWQ_MF_COUNT; f++) {
		double per = r->per_sm[f] * (geforce && is_half_rate((enum awq_mfmt)f) ? 0.5 : 1.0);
		awq_fig_set(&d->rate[f], per * hz / 1e12, AWQ_SRC_ARCH_RULE);
		d->native[f] = per > 0;
	}
	snprintf(d->db_how, sizeof(d->db_how), "not in the GPU database: %s rule%s, per-SM rates x %d SMs x %.0f MHz%s",
		 r->family, newer ? " (newest known, assumed for this newer part)" : "", d->units, d->clock_mhz,
		 geforce ? ", GeForce half-rate FP32 accumulate" : "");
}

static void rates_from_row(const struct awq_gpu_row *r, struct awq_device_caps *d)
{
	for (int f = 0; f < AWQ_MF_COUNT; f++) {
		d->rate[f] = r->rate[f];
		d->native[f] = r->rate[f].v > 0;
	}
	/* Rows leave INT4 empty where NVIDIA publishes none, which is not proof of absence elsewhere. */
	if (strcmp(r->vendor, "NVIDIA") != 0)
		for (int f = 0; f < AWQ_MF_COUNT; f++)
			if (!d->native[f])
				d->native[f] = -1;
}

void awq_gpudb_attach(struct awq_device_caps *d)
{
	int cc_major = strcmp(d->backend, "cuda") == 0 ? d->cuda.cc_major : -1;
	const struct awq_gpu_row *r = awq_gpudb_match(d->name, cc_major, d->cuda.cc_minor);
	if (!r) {
		if (cc_major >= 0)
			apply_rule(d);
		else
			snprintf(d->db_how, sizeof(d->db_how), "not in the GPU database (no rule for non-CUDA devices): "
				 "matrix rates unknown");
		return;
	}
	snprintf(d->db_row, sizeof(d->db_row), "%s", r->name);
	rates_from_row(r, d);
	if (r->mem_bw_gbs.v > 0)
		d->peak_bw_gbs = r->mem_bw_gbs;
	if (!d->units && r->unit_known)
		d->units = r->units;
	if (d->clock_mhz <= 0)
		d->clock_mhz = r->boost_mhz.v;
	d->sustained_mhz = r->sustained_mhz.v;
	if (!d->arch[0] || strcmp(d->backend, "cuda") != 0)
		snprintf(d->arch, sizeof(d->arch), "%s", r->arch);
	int n = snprintf(d->db_how, sizeof(d->db_how), "database row '%s' (matched by name%s)", r->name,
			 cc_major >= 0 ? " and compute capability" : "");
	if (r->unit_known && d->units && d->units != r->units && n > 0 && (size_t)n < sizeof(d->db_how))
		snprintf(d->db_how + n, sizeof(d->db_how) - (size_t)n, "; the device has %d SMs, the row %d", d->units,
			 r->units);
}

/* The awqrun backend that would run a database GPU: CUDA, else Vulkan where the row lists it. */
static const char *backend_for(const struct awq_gpu_row *r)
{
	if (strstr(r->api, "CUDA"))
		return "cuda";
	if (strstr(r->api, "Vulkan") && !strstr(r->api, "no Vulkan"))
		return "vulkan";
	return "none";
}

void awq_gpudb_fill(const struct awq_gpu_row *r, struct awq_device_caps *d)
{
	int cuda = strstr(r->api, "CUDA") != NULL;
	awq_caps_init(d, backend_for(r), 0);
	d->present = 0;
	snprintf(d->name, sizeof(d->name), "%s", r->name);
	snprintf(d->vendor, sizeof(d->vendor), "%s", r->vendor);
	if (r->cc_major >= 0)
		snprintf(d->arch, sizeof(d->arch), "sm_%d%d (%.40s)", r->cc_major, r->cc_minor, r->arch);
	else
		snprintf(d->arch, sizeof(d->arch), "%s", r->arch);
	snprintf(d->driver, sizeof(d->driver), "not present: modeled from the database");
	d->cuda.cc_major = r->cc_major;
	d->cuda.cc_minor = r->cc_minor;
	d->units = r->units;
	d->cuda.sm_count = cuda ? r->units : 0;
	d->clock_mhz = r->boost_mhz.v;
	d->sustained_mhz = r->sustained_mhz.v;
	/* Datasheet "80 GB" parts expose about 80 GiB minus what the driver reserves. */
	d->mem_total = (uint64_t)(r->mem_gb.v * (double)(1ull << 30));
	d->peak_bw_gbs = r->mem_bw_gbs;
	rates_from_row(r, d);
	snprintf(d->db_row, sizeof(d->db_row), "%s", r->name);
	snprintf(d->db_how, sizeof(d->db_how), "database row '%s'", r->name);
	if (strcmp(d->backend, "none") == 0)
		snprintf(d->notes, sizeof(d->notes), "awqrun has no backend for %s; modeled as if it had one", r->api);
}
