/* `awqrun caps` text report: one block per device (identity, memory, bandwidth measured vs peak,
 * native matrix formats and rates, overheads, where each figure came from), then per model the
 * predicted decode and prefill speed in 16-bit, AWQ W4A16 and FP8, and one sentence per device. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caps_internal.h"
#include "error.h"

static const char *gib(double bytes, char *buf, size_t len)
{
	if (bytes <= 0)
		snprintf(buf, len, "?");
	else if (bytes >= 1 << 30)
		snprintf(buf, len, "%.1f GiB", bytes / (1 << 30));
	else if (bytes >= 1 << 20)
		snprintf(buf, len, "%.0f MiB", bytes / (1 << 20));
	else
		snprintf(buf, len, "%.0f KiB", bytes / 1024);
	return buf;
}

static const char *fig(const struct awq_figure *f, const char *unit, char *buf, size_t len)
{
	if (f->v <= 0)
		snprintf(buf, len, "unknown");
	else
		snprintf(buf, len, "%.4g %s (%s%s)", f->v, unit, awq_src_name(f->src), f->unconfirmed ? ", unconfirmed" : "");
	return buf;
}

static void cpu_block(FILE *f, const struct awq_device_caps *d)
{
	static const struct {
		unsigned bit;
		const char *name;
	} flags[] = {
		{AWQ_CPU_SSE42, "sse4.2"}, {AWQ_CPU_AVX, "avx"}, {AWQ_CPU_AVX2, "avx2"}, {AWQ_CPU_FMA, "fma"},
		{AWQ_CPU_F16C, "f16c"}, {AWQ_CPU_AVX512F, "avx512f"}, {AWQ_CPU_AVX512BW, "avx512bw"},
		{AWQ_CPU_AVX512VL, "avx512vl"}, {AWQ_CPU_AVX512VNNI, "avx512-vnni"}, {AWQ_CPU_AVX512BF16, "avx512-bf16"},
		{AWQ_CPU_AVXVNNI, "avx-vnni"}, {AWQ_CPU_AMX_TILE, "amx-tile"}, {AWQ_CPU_AMX_INT8, "amx-int8"},
		{AWQ_CPU_AMX_BF16, "amx-bf16"}, {AWQ_CPU_NEON, "neon"}, {AWQ_CPU_DOTPROD, "dotprod"},
		{AWQ_CPU_ASIMDHP, "fp16"}, {AWQ_CPU_SVE, "sve"}, {AWQ_CPU_I8MM, "i8mm"}, {AWQ_CPU_ARM_BF16, "bf16"},
	};
	const struct awq_cpu_caps *c = &d->cpu;
	char a[32], b[32], e[32];
	fprintf(f, "  topology : %d package(s), %d cores, %d threads, %d NUMA node(s) at %.0f MHz\n", c->packages,
		c->cores, c->threads, c->numa_nodes, d->clock_mhz);
	fprintf(f, "  flags    :");
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		if (c->flags & flags[i].bit)
			fprintf(f, " %s", flags[i].name);
	fprintf(f, "\n  caches   : L1d %s, L2 %s per core; L3 %s in all\n", gib((double)c->l1d_bytes, a, sizeof(a)),
		gib((double)c->l2_bytes, b, sizeof(b)), gib((double)c->l3_bytes, e, sizeof(e)));
	for (int i = 0; i < c->numa_nodes && i < AWQ_CAPS_MAX_NUMA; i++)
		fprintf(f, "  numa %-4d: %s\n", i, gib((double)c->numa_mem[i], a, sizeof(a)));
}

static void cuda_block(FILE *f, const struct awq_device_caps *d)
{
	char a[32];
	fprintf(f, "  gpu      : %d SMs at %.0f MHz, L2 %s, %d KiB shared memory per block%s", d->units, d->clock_mhz,
		gib((double)d->cuda.l2_bytes, a, sizeof(a)), d->cuda.smem_per_block_optin / 1024,
		d->cuda.nvml ? ", clocks from NVML" : "");
	if (d->cuda.power_limit_w > 0)
		fprintf(f, ", power limit %.0f W", d->cuda.power_limit_w);
	fprintf(f, "\n");
}

static const char *yn(int v)
{
	return v > 0 ? "yes" : v == 0 ? "no" : "not queryable with these headers";
}

static void vulkan_block(FILE *f, const struct awq_device_caps *d)
{
	const struct awq_vk_caps *v = &d->vk;
	char a[32];
	fprintf(f, "  vulkan   : %s device, vendor %#x device %#x, API %u.%u.%u\n", v->device_type, v->vendor_id,
		v->device_id, v->api_version >> 22, (v->api_version >> 12) & 0x3ff, v->api_version & 0xfff);
	fprintf(f, "  features : shaderFloat16 %s, shaderInt8 %s, 8-bit storage %s, 16-bit storage %s, bfloat16 %s\n",
		yn(v->shader_float16), yn(v->shader_int8), yn(v->storage_8bit), yn(v->storage_16bit), yn(v->shader_bfloat16));
	fprintf(f, "  subgroup : %d (range %d..%d, size control %s); %u KiB shared memory\n", v->subgroup_size,
		v->subgroup_min, v->subgroup_max, yn(v->subgroup_size_control), v->max_shared_bytes / 1024);
	fprintf(f, "  int dot  : %s (4x8-bit packed accelerated: %s)\n", yn(v->int_dot), yn(v->int_dot_4x8_packed_accel));
	fprintf(f, "  coopmat  : KHR %s%s, NV %s%s, NV coopmat2 %s\n", yn(v->khr_coopmat),
		v->khr_coopmat && !v->khr_coopmat_queryable ? " (shapes not queryable: headers predate it)" : "",
		yn(v->nv_coopmat), v->nv_coopmat && !v->nv_coopmat_queryable ? " (not queryable)" : "", yn(v->nv_coopmat2));
	for (int i = 0; i < v->n_coopmat; i++) {
		const struct awq_coopmat *c = &v->coopmat[i];
		fprintf(f, "             %dx%dx%d %s x %s + %s -> %s (%s%s)\n", c->m, c->n, c->k, c->a, c->b, c->c,
			c->result, c->scope, c->nv ? ", NV" : "");
	}
	for (int i = 0; i < v->n_heaps; i++)
		fprintf(f, "  heap %-4d: %s%s\n", i, gib((double)v->heap_bytes[i], a, sizeof(a)),
			v->heap_device_local[i] ? " device-local" : "");
	fprintf(f, "  ext (%d) : %s\n", v->n_extensions, v->extensions);
}

static void opencl_block(FILE *f, const struct awq_device_caps *d)
{
	const struct awq_cl_caps *c = &d->cl;
	char a[32];
	fprintf(f, "  opencl   : %s device, %d compute units at %.0f MHz, %s local memory\n", c->device_type,
		c->compute_units, c->clock_mhz, gib((double)c->local_mem_bytes, a, sizeof(a)));
	fprintf(f, "  features : fp16 %s, fp64 %s, integer dot product %s, subgroups %s\n", yn(c->fp16), yn(c->fp64),
		yn(c->int_dot), yn(c->subgroups));
	fprintf(f, "  ext (%d) : %s\n", c->n_extensions, c->extensions);
}

static void rates_line(FILE *f, const struct awq_device_caps *d)
{
	int any = 0;
	fprintf(f, "  matrix   :");
	for (int i = 0; i < AWQ_MF_COUNT; i++) {
		if (d->rate[i].v <= 0)
			continue;
		fprintf(f, "%s %s %.4g%s", any ? "," : "", awq_mfmt_name((enum awq_mfmt)i), d->rate[i].v,
			d->rate[i].unconfirmed ? "?" : "");
		any = 1;
	}
	fprintf(f, any ? " TFLOPS dense peak" : " no rates known");
	int none = 0;
	for (int i = 0; i < AWQ_MF_COUNT; i++)
		if (d->native[i] == 0)
			fprintf(f, "%s%s", none++ ? " " : "; not native: ", awq_mfmt_name((enum awq_mfmt)i));
	fprintf(f, "\n");
}

static void device_block(FILE *f, const struct awq_device_caps *d)
{
	char a[48], b[48], c[96], e[96];
	if (d->present)
		fprintf(f, "== %s %d: %s [%s] ==\n", d->backend, d->index, d->name, d->arch);
	else
		fprintf(f, "== %s (not present, modeled): %s [%s] ==\n", d->backend, d->name, d->arch);
	fprintf(f, "  identity : %s; %s\n", d->vendor[0] ? d->vendor : "?", d->driver);
	fprintf(f, "  memory   : %s total, %s free", gib((double)d->mem_total, a, sizeof(a)),
		gib((double)d->mem_free, b, sizeof(b)));
	if (d->bus_width_bits)
		fprintf(f, "; %d-bit bus at %.0f MHz", d->bus_width_bits, d->mem_clock_mhz);
	fprintf(f, "\n  bandwidth: measured %s; peak %s", fig(&d->measured_bw_gbs, "GB/s", c, sizeof(c)),
		fig(&d->peak_bw_gbs, "GB/s", e, sizeof(e)));
	if (d->measured_bw_gbs.v > 0 && d->peak_bw_gbs.v > 0)
		fprintf(f, " (%.0f%% of peak)", 100 * d->measured_bw_gbs.v / d->peak_bw_gbs.v);
	fprintf(f, "\n");
	rates_line(f, d);
	fprintf(f, "  overhead : %s per op\n", fig(&d->launch_us, "us", c, sizeof(c)));
	fprintf(f, "  rates    : %s\n", d->db_how[0] ? d->db_how : "-");
	if (strcmp(d->backend, "cpu") == 0)
		cpu_block(f, d);
	else if (strcmp(d->backend, "cuda") == 0 && d->present)
		cuda_block(f, d);
	else if (strcmp(d->backend, "vulkan") == 0 && d->present)
		vulkan_block(f, d);
	else if (strcmp(d->backend, "opencl") == 0)
		opencl_block(f, d);
	if (d->notes[0])
		fprintf(f, "  note     : %s\n", d->notes);
	fprintf(f, "\n");
}

static const char *tps(double v, char *buf, size_t len)
{
	snprintf(buf, len, v >= 100 ? "%.0f" : "%.3g", v);
	return buf;
}

static void cell(FILE *f, const struct awq_perf_result *r)
{
	char a[32], b[32];
	if (r->limit == AWQ_LIMIT_UNSUPPORTED || r->limit == AWQ_LIMIT_UNKNOWN)
		fprintf(f, " %8s %8s %-9s |", "-", "-", r->limit == AWQ_LIMIT_UNSUPPORTED ? "no unit" : "unknown");
	else
		fprintf(f, " %8s %8s %-9s |", tps(r->decode.tok_s, a, sizeof(a)), tps(r->prefill.tok_s, b, sizeof(b)),
			r->limit == AWQ_LIMIT_MEMORY ? "NO FIT" : awq_limit_name(r->decode.limit));
}

static void table_header(FILE *f, const struct awq_caps_report_opts *o)
{
	fprintf(f, "== predicted tokens/s: batch %d, decode at context %d, prefill of %d tokens ==\n", o->batch, o->ctx,
		o->n_prompt);
	fprintf(f, "%-28s %-14s %-4s | %-27s | %-27s | %-27s | %s\n", "device", "model", "16b", "16-bit", "AWQ W4A16",
		"FP8", "AWQ/16-bit");
	fprintf(f, "%-28s %-14s %-4s | %8s %8s %-9s | %8s %8s %-9s | %8s %8s %-9s | %s\n", "", "", "", "decode", "prefill",
		"limit", "decode", "prefill", "limit", "decode", "prefill", "limit", "decode prefill");
}

static int device_rows(FILE *f, const struct awq_device_caps *d, const struct awq_caps_report_opts *o, char *verdict,
		       size_t vlen, char *err, size_t errlen)
{
	struct caps_row row;
	char label[40];
	int pick = 0;
	verdict[0] = 0;
	const char *name = d->name;
	/* The table is narrow: "NVIDIA GeForce RTX 5090" -> "RTX 5090". */
	if (d->vendor[0] && strncmp(name, d->vendor, strlen(d->vendor)) == 0 && name[strlen(d->vendor)] == ' ')
		name += strlen(d->vendor) + 1;
	if (strncmp(name, "GeForce ", 8) == 0)
		name += 8;
	snprintf(label, sizeof(label), "%.8s %.19s", d->backend, name);
	for (int j = 0; j < o->n_models; j++) {
		int rc = awq_caps_row(d, o->models[j].stored, o, &row, err, errlen);
		if (rc)
			return rc;
		const struct awq_perf_result *w = &row.res[CAPS_W16], *a = &row.res[CAPS_AWQ];
		fprintf(f, "%-28s %-14.14s %-4s |", label, o->models[j].label, awq_scheme_name(row.scheme16));
		for (int s = 0; s < CAPS_NSCHEMES; s++)
			cell(f, &row.res[s]);
		if (w->decode.tok_s > 0 && a->decode.tok_s > 0 && w->limit != AWQ_LIMIT_UNKNOWN)
			fprintf(f, " %5.2fx %6.2fx", a->decode.tok_s / w->decode.tok_s, a->prefill.tok_s / w->prefill.tok_s);
		fprintf(f, "\n");
		if (awq_caps_verdict_pick(&row, j == 0, &pick))
			awq_caps_verdict(d, o->models[j].label, &row, verdict, vlen);
	}
	return 0;
}

static int predictions(FILE *f, const struct awq_caps_report_opts *o, char *err, size_t errlen)
{
	char (*verdicts)[600] = calloc((size_t)o->n_devs, sizeof(*verdicts));
	if (!verdicts)
		return awq_err(err, errlen, AWQ_ENOMEM, "out of memory for the report");
	table_header(f, o);
	int rc = 0;
	for (int i = 0; i < o->n_devs && !rc; i++) {
		if (strcmp(o->devs[i].backend, "opencl") == 0)
			continue;
		rc = device_rows(f, &o->devs[i], o, verdicts[i], sizeof(verdicts[i]), err, errlen);
	}
	if (!rc) {
		fprintf(f, "\nwhy:\n");
		for (int i = 0; i < o->n_devs; i++)
			if (verdicts[i][0])
				fprintf(f, "  %s\n", verdicts[i]);
		fprintf(f, "\n16b: the 16-bit format (BF16 where the device has BF16 units, else FP16). limit: what bounds "
			"decode (bandwidth, compute, overhead); NO FIT: weights + KV cache + activations exceed the device "
			"memory; no unit: no native FP8 matrix unit.\n");
	}
	free(verdicts);
	return rc;
}

int awq_caps_report(FILE *f, const struct awq_caps_report_opts *o, char *err, size_t errlen)
{
	if (o->json)
		return awq_caps_report_json(f, o, err, errlen);
	for (int i = 0; i < o->n_devs; i++)
		device_block(f, &o->devs[i]);
	if (o->absent && o->absent[0])
		fprintf(f, "absent:\n%s\n", o->absent);
	if (o->n_models > 0)
		return predictions(f, o, err, errlen);
	return 0;
}
