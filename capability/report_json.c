/* `awqrun caps --json`: the same records as the text report, in the schema of docs/caps-schema.md
 * ("schema": "awqrun-caps/1"). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caps_internal.h"
#include "error.h"

static cJSON *figure(const struct awq_figure *f)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	if (f->v > 0)
		cJSON_AddNumberToObject(o, "value", f->v);
	else
		cJSON_AddNullToObject(o, "value");
	cJSON_AddStringToObject(o, "source", awq_src_name(f->src));
	cJSON_AddBoolToObject(o, "unconfirmed", f->unconfirmed);
	return o;
}

static cJSON *cpu_json(const struct awq_device_caps *d)
{
	const struct awq_cpu_caps *c = &d->cpu;
	cJSON *o = cJSON_CreateObject(), *numa = cJSON_CreateArray();
	if (!o || !numa) {
		cJSON_Delete(o);
		cJSON_Delete(numa);
		return NULL;
	}
	cJSON_AddNumberToObject(o, "flags", c->flags);
	cJSON_AddNumberToObject(o, "packages", c->packages);
	cJSON_AddNumberToObject(o, "cores", c->cores);
	cJSON_AddNumberToObject(o, "threads", c->threads);
	cJSON_AddNumberToObject(o, "numa_nodes", c->numa_nodes);
	cJSON_AddNumberToObject(o, "l1d_bytes", (double)c->l1d_bytes);
	cJSON_AddNumberToObject(o, "l2_bytes", (double)c->l2_bytes);
	cJSON_AddNumberToObject(o, "l3_bytes", (double)c->l3_bytes);
	for (int i = 0; i < c->numa_nodes && i < AWQ_CAPS_MAX_NUMA; i++)
		cJSON_AddItemToArray(numa, cJSON_CreateNumber((double)c->numa_mem[i]));
	cJSON_AddItemToObject(o, "numa_mem_bytes", numa);
	return o;
}

static cJSON *cuda_json(const struct awq_device_caps *d)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	cJSON_AddNumberToObject(o, "cc_major", d->cuda.cc_major);
	cJSON_AddNumberToObject(o, "cc_minor", d->cuda.cc_minor);
	cJSON_AddNumberToObject(o, "sm_count", d->cuda.sm_count);
	cJSON_AddNumberToObject(o, "driver_version", d->cuda.driver_version);
	cJSON_AddNumberToObject(o, "l2_bytes", (double)d->cuda.l2_bytes);
	cJSON_AddNumberToObject(o, "smem_per_block_optin", d->cuda.smem_per_block_optin);
	cJSON_AddBoolToObject(o, "nvml", d->cuda.nvml);
	cJSON_AddNumberToObject(o, "power_limit_w", d->cuda.power_limit_w);
	return o;
}

static void tri(cJSON *o, const char *key, int v)
{
	if (v < 0)
		cJSON_AddNullToObject(o, key);
	else
		cJSON_AddBoolToObject(o, key, v);
}

static cJSON *vulkan_json(const struct awq_device_caps *d)
{
	const struct awq_vk_caps *v = &d->vk;
	cJSON *o = cJSON_CreateObject(), *cm = cJSON_CreateArray(), *heaps = cJSON_CreateArray();
	if (!o || !cm || !heaps) {
		cJSON_Delete(o);
		cJSON_Delete(cm);
		cJSON_Delete(heaps);
		return NULL;
	}
	cJSON_AddNumberToObject(o, "api_version", v->api_version);
	cJSON_AddNumberToObject(o, "vendor_id", v->vendor_id);
	cJSON_AddNumberToObject(o, "device_id", v->device_id);
	cJSON_AddStringToObject(o, "device_type", v->device_type);
	cJSON_AddStringToObject(o, "driver_name", v->driver_name);
	tri(o, "shader_float16", v->shader_float16);
	tri(o, "shader_int8", v->shader_int8);
	tri(o, "storage_8bit", v->storage_8bit);
	tri(o, "storage_16bit", v->storage_16bit);
	tri(o, "shader_bfloat16", v->shader_bfloat16);
	cJSON_AddNumberToObject(o, "subgroup_size", v->subgroup_size);
	cJSON_AddNumberToObject(o, "subgroup_min", v->subgroup_min);
	cJSON_AddNumberToObject(o, "subgroup_max", v->subgroup_max);
	tri(o, "subgroup_size_control", v->subgroup_size_control);
	tri(o, "integer_dot_product", v->int_dot);
	tri(o, "int_dot_4x8_packed_accelerated", v->int_dot_4x8_packed_accel);
	tri(o, "int_dot_8bit_accelerated", v->int_dot_8bit_accel);
	cJSON_AddNumberToObject(o, "max_shared_bytes", v->max_shared_bytes);
	tri(o, "khr_cooperative_matrix", v->khr_coopmat);
	tri(o, "nv_cooperative_matrix", v->nv_coopmat);
	tri(o, "nv_cooperative_matrix2", v->nv_coopmat2);
	tri(o, "khr_cooperative_matrix_queryable", v->khr_coopmat_queryable);
	for (int i = 0; i < v->n_coopmat; i++) {
		const struct awq_coopmat *c = &v->coopmat[i];
		cJSON *x = cJSON_CreateObject();
		if (!x)
			break;
		cJSON_AddNumberToObject(x, "m", c->m);
		cJSON_AddNumberToObject(x, "n", c->n);
		cJSON_AddNumberToObject(x, "k", c->k);
		cJSON_AddStringToObject(x, "a", c->a);
		cJSON_AddStringToObject(x, "b", c->b);
		cJSON_AddStringToObject(x, "c", c->c);
		cJSON_AddStringToObject(x, "result", c->result);
		cJSON_AddStringToObject(x, "scope", c->scope);
		cJSON_AddStringToObject(x, "extension", c->nv ? "VK_NV_cooperative_matrix" : "VK_KHR_cooperative_matrix");
		cJSON_AddItemToArray(cm, x);
	}
	cJSON_AddItemToObject(o, "cooperative_matrix", cm);
	for (int i = 0; i < v->n_heaps; i++) {
		cJSON *h = cJSON_CreateObject();
		if (!h)
			break;
		cJSON_AddNumberToObject(h, "bytes", (double)v->heap_bytes[i]);
		cJSON_AddBoolToObject(h, "device_local", v->heap_device_local[i]);
		cJSON_AddItemToArray(heaps, h);
	}
	cJSON_AddItemToObject(o, "heaps", heaps);
	cJSON_AddNumberToObject(o, "extension_count", v->n_extensions);
	cJSON_AddStringToObject(o, "extensions", v->extensions);
	return o;
}

static cJSON *opencl_json(const struct awq_device_caps *d)
{
	const struct awq_cl_caps *c = &d->cl;
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	cJSON_AddStringToObject(o, "platform", c->platform);
	cJSON_AddStringToObject(o, "platform_version", c->platform_version);
	cJSON_AddStringToObject(o, "device_version", c->device_version);
	cJSON_AddStringToObject(o, "driver_version", c->driver_version);
	cJSON_AddStringToObject(o, "device_type", c->device_type);
	cJSON_AddNumberToObject(o, "compute_units", c->compute_units);
	cJSON_AddNumberToObject(o, "clock_mhz", c->clock_mhz);
	cJSON_AddNumberToObject(o, "local_mem_bytes", (double)c->local_mem_bytes);
	cJSON_AddBoolToObject(o, "fp16", c->fp16);
	cJSON_AddBoolToObject(o, "fp64", c->fp64);
	cJSON_AddBoolToObject(o, "integer_dot_product", c->int_dot);
	cJSON_AddBoolToObject(o, "subgroups", c->subgroups);
	cJSON_AddNumberToObject(o, "extension_count", c->n_extensions);
	cJSON_AddStringToObject(o, "extensions", c->extensions);
	return o;
}

static cJSON *device_json(const struct awq_device_caps *d)
{
	cJSON *o = cJSON_CreateObject(), *mem = cJSON_CreateObject(), *bw = cJSON_CreateObject();
	cJSON *rates = cJSON_CreateObject(), *spec = cJSON_CreateObject();
	if (!o || !mem || !bw || !rates || !spec) {
		cJSON_Delete(o), cJSON_Delete(mem), cJSON_Delete(bw), cJSON_Delete(rates), cJSON_Delete(spec);
		return NULL;
	}
	cJSON_AddStringToObject(o, "backend", d->backend);
	cJSON_AddNumberToObject(o, "index", d->index);
	cJSON_AddBoolToObject(o, "present", d->present);
	cJSON_AddStringToObject(o, "name", d->name);
	cJSON_AddStringToObject(o, "vendor", d->vendor);
	cJSON_AddStringToObject(o, "arch", d->arch);
	cJSON_AddStringToObject(o, "driver", d->driver);
	cJSON_AddNumberToObject(o, "units", d->units);
	cJSON_AddNumberToObject(o, "clock_mhz", d->clock_mhz);
	cJSON_AddNumberToObject(o, "sustained_mhz", d->sustained_mhz);
	cJSON_AddNumberToObject(mem, "total_bytes", (double)d->mem_total);
	cJSON_AddNumberToObject(mem, "free_bytes", (double)d->mem_free);
	cJSON_AddNumberToObject(mem, "bus_width_bits", d->bus_width_bits);
	cJSON_AddNumberToObject(mem, "mem_clock_mhz", d->mem_clock_mhz);
	cJSON_AddItemToObject(o, "memory", mem);
	cJSON_AddItemToObject(bw, "peak", figure(&d->peak_bw_gbs));
	cJSON_AddItemToObject(bw, "measured", figure(&d->measured_bw_gbs));
	cJSON_AddItemToObject(o, "bandwidth_gbs", bw);
	for (int i = 0; i < AWQ_MF_COUNT; i++) {
		cJSON *r = figure(&d->rate[i]);
		if (!r)
			continue;
		tri(r, "native", d->native[i]);
		cJSON_AddItemToObject(rates, awq_mfmt_name((enum awq_mfmt)i), r);
	}
	cJSON_AddItemToObject(o, "rates_tflops", rates);
	cJSON_AddItemToObject(o, "launch_us", figure(&d->launch_us));
	cJSON_AddStringToObject(spec, "db_row", d->db_row);
	cJSON_AddStringToObject(spec, "how", d->db_how);
	cJSON_AddItemToObject(o, "spec", spec);
	cJSON_AddStringToObject(o, "notes", d->notes);
	if (strcmp(d->backend, "cpu") == 0)
		cJSON_AddItemToObject(o, "cpu", cpu_json(d));
	else if (strcmp(d->backend, "cuda") == 0 && d->present)
		cJSON_AddItemToObject(o, "cuda", cuda_json(d));
	else if (strcmp(d->backend, "vulkan") == 0 && d->present)
		cJSON_AddItemToObject(o, "vulkan", vulkan_json(d));
	else if (strcmp(d->backend, "opencl") == 0)
		cJSON_AddItemToObject(o, "opencl", opencl_json(d));
	return o;
}

static cJSON *phase_json(const struct awq_perf_phase *p)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	cJSON_AddNumberToObject(o, "tok_s", p->tok_s);
	cJSON_AddNumberToObject(o, "seconds", p->seconds);
	cJSON_AddNumberToObject(o, "bytes", p->bytes);
	cJSON_AddNumberToObject(o, "flops", p->flops);
	cJSON_AddNumberToObject(o, "t_bytes", p->t_bytes);
	cJSON_AddNumberToObject(o, "t_compute", p->t_compute);
	cJSON_AddNumberToObject(o, "t_overhead", p->t_overhead);
	cJSON_AddStringToObject(o, "limit", awq_limit_name(p->limit));
	return o;
}

static cJSON *result_json(const struct awq_perf_result *r, enum awq_scheme s)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	cJSON_AddStringToObject(o, "scheme", awq_scheme_name(s));
	cJSON_AddStringToObject(o, "limit", awq_limit_name(r->limit));
	cJSON_AddStringToObject(o, "why", r->why);
	if (r->limit == AWQ_LIMIT_UNKNOWN || r->limit == AWQ_LIMIT_UNSUPPORTED)
		return o;
	cJSON_AddItemToObject(o, "decode", phase_json(&r->decode));
	cJSON_AddItemToObject(o, "prefill", phase_json(&r->prefill));
	cJSON_AddNumberToObject(o, "weight_bytes", (double)r->weight_bytes);
	cJSON_AddNumberToObject(o, "kv_bytes", (double)r->kv_bytes);
	cJSON_AddNumberToObject(o, "need_bytes", (double)r->need_bytes);
	cJSON_AddNumberToObject(o, "decode_weight_bytes", r->decode_weight_bytes);
	cJSON_AddNumberToObject(o, "unquantized_share", r->unquantized_share);
	cJSON_AddNumberToObject(o, "bw_gbs", r->bw_gbs);
	cJSON_AddStringToObject(o, "matmul_unit", awq_mfmt_name(r->unit));
	cJSON_AddNumberToObject(o, "matmul_tflops", r->matmul_tflops);
	cJSON_AddNumberToObject(o, "op_overhead_us", r->op_overhead_us);
	return o;
}

static int predictions_json(cJSON *preds, const struct awq_caps_report_opts *o, int dev, char *verdict, size_t vlen,
			    char *err, size_t errlen)
{
	static const char *const keys[CAPS_NSCHEMES] = {"w16", "awq", "fp8"};
	const struct awq_device_caps *d = &o->devs[dev];
	struct caps_row row;
	int pick = 0;
	verdict[0] = 0;
	for (int j = 0; j < o->n_models; j++) {
		int rc = awq_caps_row(d, o->models[j].stored, o, &row, err, errlen);
		if (rc)
			return rc;
		cJSON *p = cJSON_CreateObject();
		if (!p)
			return awq_err(err, errlen, AWQ_ENOMEM, "out of memory building the JSON report");
		cJSON_AddNumberToObject(p, "device", dev);
		cJSON_AddStringToObject(p, "model", o->models[j].label);
		for (int s = 0; s < CAPS_NSCHEMES; s++) {
			enum awq_scheme sc = s == CAPS_W16 ? row.scheme16 : s == CAPS_AWQ ? AWQ_SCHEME_AWQ4 : AWQ_SCHEME_FP8;
			cJSON_AddItemToObject(p, keys[s], result_json(&row.res[s], sc));
		}
		const struct awq_perf_result *w = &row.res[CAPS_W16], *a = &row.res[CAPS_AWQ];
		if (w->decode.tok_s > 0 && a->decode.tok_s > 0) {
			cJSON_AddNumberToObject(p, "awq_speedup_decode", a->decode.tok_s / w->decode.tok_s);
			cJSON_AddNumberToObject(p, "awq_speedup_prefill", a->prefill.tok_s / w->prefill.tok_s);
		}
		cJSON_AddItemToArray(preds, p);
		if (awq_caps_verdict_pick(&row, j == 0, &pick))
			awq_caps_verdict(d, o->models[j].label, &row, verdict, vlen);
	}
	return 0;
}

/* "api: why" lines of awq_caps_probe as [{"api", "why"}]. */
static cJSON *absent_json(const char *absent)
{
	cJSON *arr = cJSON_CreateArray();
	for (const char *p = absent; arr && p && *p;) {
		size_t l = strcspn(p, "\n"), c = strcspn(p, ":");
		if (c < l) {
			const char *w = p + c + 1 + (p[c + 1] == ' ');
			char api[32], why[AWQ_ERRLEN];
			snprintf(api, sizeof(api), "%.*s", (int)c, p);
			snprintf(why, sizeof(why), "%.*s", (int)(p + l - w), w);
			cJSON *x = cJSON_CreateObject();
			if (x) {
				cJSON_AddStringToObject(x, "api", api);
				cJSON_AddStringToObject(x, "why", why);
				cJSON_AddItemToArray(arr, x);
			}
		}
		p += l;
		p += *p == '\n';
	}
	return arr;
}

int awq_caps_report_json(FILE *f, const struct awq_caps_report_opts *o, char *err, size_t errlen)
{
	cJSON *root = cJSON_CreateObject(), *devs = cJSON_CreateArray(), *preds = cJSON_CreateArray();
	cJSON *query = cJSON_CreateObject();
	char verdict[600];
	int rc = 0;
	if (!root || !devs || !preds || !query) {
		cJSON_Delete(root), cJSON_Delete(devs), cJSON_Delete(preds), cJSON_Delete(query);
		return awq_err(err, errlen, AWQ_ENOMEM, "out of memory building the JSON report");
	}
	cJSON_AddStringToObject(root, "schema", "awqrun-caps/1");
	cJSON_AddStringToObject(root, "version", awq_version());
	cJSON_AddNumberToObject(query, "batch", o->batch);
	cJSON_AddNumberToObject(query, "ctx", o->ctx);
	cJSON_AddNumberToObject(query, "n_prompt", o->n_prompt);
	cJSON_AddItemToObject(root, "query", query);
	cJSON_AddItemToObject(root, "absent", absent_json(o->absent));
	for (int i = 0; i < o->n_devs && !rc; i++) {
		cJSON *d = device_json(&o->devs[i]);
		if (!d) {
			rc = awq_err(err, errlen, AWQ_ENOMEM, "out of memory building the JSON report");
			break;
		}
		cJSON_AddItemToArray(devs, d);
		if (strcmp(o->devs[i].backend, "opencl") == 0)
			continue;
		rc = predictions_json(preds, o, i, verdict, sizeof(verdict), err, errlen);
		if (!rc && verdict[0])
			cJSON_AddStringToObject(d, "verdict", verdict);
	}
	cJSON_AddItemToObject(root, "devices", devs);
	cJSON_AddItemToObject(root, "predictions", preds);
	char *text = rc ? NULL : cJSON_Print(root);
	if (!rc && !text)
		rc = awq_err(err, errlen, AWQ_ENOMEM, "out of memory printing the JSON report");
	if (text) {
		fputs(text, f);
		fputc('\n', f);
		free(text);
	}
	cJSON_Delete(root);
	return rc;
}
