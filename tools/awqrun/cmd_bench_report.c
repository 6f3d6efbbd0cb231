/* The report of `awqrun bench`: header (date, commit, devices, drivers, bandwidths), the speed table in
 * the layout of the public reports with the performance model beside each row, the memory table, CSV
 * and JSON (docs/bench-schema.md). */
#include <string.h>
#include <time.h>

#include "bench.h"

#ifndef AWQ_GIT_DESCRIBE
#define AWQ_GIT_DESCRIBE "unknown"
#endif

const char *bench_commit(void)
{
	return AWQ_GIT_DESCRIBE[0] ? AWQ_GIT_DESCRIBE : "unknown";
}

void bench_header_init(struct bench_header *h, int argc, char **argv)
{
	time_t t = time(NULL);
	struct tm tm;
	memset(h, 0, sizeof(*h));
	if (gmtime_r(&t, &tm) == NULL || strftime(h->date, sizeof(h->date), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(h->date, sizeof(h->date), "unknown");
	h->commit = bench_commit();
	size_t used = 0;
	for (int i = 0; i < argc; i++) {
		int k = snprintf(h->command + used, sizeof(h->command) - used, "%s%s", i ? " " : "awqrun ", argv[i]);
		if (k < 0 || (size_t)k >= sizeof(h->command) - used) {
			h->command[sizeof(h->command) - 1] = 0;
			break;
		}
		used += (size_t)k;
	}
}

void bench_header_add(struct bench_header *h, const struct bench_result *r)
{
	for (int i = 0; i < h->n_devices; i++)
		if (!strcmp(h->devices[i].backend, r->backend) && h->devices[i].index == r->device_index) {
			if (r->bw_gbs > h->devices[i].bw_gbs)
				h->devices[i].bw_gbs = r->bw_gbs;
			return;
		}
	if (h->n_devices == (int)(sizeof(h->devices) / sizeof(h->devices[0])))
		return;
	int k = h->n_devices++;
	snprintf(h->devices[k].backend, sizeof(h->devices[k].backend), "%s", r->backend);
	snprintf(h->devices[k].name, sizeof(h->devices[k].name), "%s", r->device);
	snprintf(h->devices[k].driver, sizeof(h->devices[k].driver), "%s", r->driver);
	h->devices[k].index = r->device_index;
	h->devices[k].bw_gbs = r->bw_gbs;
	snprintf(h->devices[k].bw_source, sizeof(h->devices[k].bw_source), "%s", r->bw_source);
}

void bench_print_header(FILE *f, const struct bench_header *h)
{
	fprintf(f, "# awqrun bench\n\n- date: %s\n- awqrun: %s (commit %s)\n- command: `%s`\n", h->date, awq_version(),
		h->commit, h->command);
	for (int i = 0; i < h->n_devices; i++) {
		char bw[32] = "unknown";
		if (h->devices[i].bw_gbs > 0)
			snprintf(bw, sizeof(bw), "%.1f GB/s", h->devices[i].bw_gbs);
		fprintf(f, "- device: %s %d: %s; driver: %s; bandwidth: %s (%s)\n", h->devices[i].backend,
			h->devices[i].index, h->devices[i].name, h->devices[i].driver[0] ? h->devices[i].driver : "unknown",
			bw, h->devices[i].bw_source[0] ? h->devices[i].bw_source : "unknown");
	}
	fprintf(f, "\n");
}

/* MiB, with a decimal for small sessions (the golden models hold well under 1 MiB). */
static void mib_cell(char *buf, size_t len, uint64_t bytes)
{
	double v = (double)bytes / 1048576.0;
	snprintf(buf, len, v < 100 ? "%.1f" : "%.0f", v);
}

/* 15.1 GB, 547 MB, 32.9 kB: three significant digits in the unit that fits. */
static void bytes_cell(char *buf, size_t len, double b)
{
	if (b >= 1e9)
		snprintf(buf, len, "%.3g GB", b / 1e9);
	else if (b >= 1e6)
		snprintf(buf, len, "%.3g MB", b / 1e6);
	else if (b >= 1e3)
		snprintf(buf, len, "%.3g kB", b / 1e3);
	else
		snprintf(buf, len, "%.0f B", b);
}

static void cell_pred(char *p, size_t plen, char *e, size_t elen, const struct bench_result *r)
{
	if (r->predicted_tok_s > 0) {
		snprintf(p, plen, "%.2f", r->predicted_tok_s);
		snprintf(e, elen, "%+.0f%%", bench_pred_error(r));
	} else {
		snprintf(p, plen, "-");
		snprintf(e, elen, "-");
	}
}

static void print_llama(FILE *f, const struct bench_result *r, int n)
{
	fprintf(f, "| model | test | precision | backend | device | GPUs | tok/s | predicted tok/s | error | bound | "
		   "bytes/token | GB/s | %% of BW | memory (MB) |\n"
		   "|---|---|---|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|\n");
	for (int i = 0; i < n; i++) {
		if (strcmp(r[i].method, "qwen") == 0)
			continue;
		char frac[32] = "-", gbs[32] = "-", pred[32], perr[32], mem[32] = "-", bpt[32];
		/* Prefill is compute-bound: its bytes per token say how far weights are reused, not a
		 * bandwidth, so it gets no GB/s. */
		if (r[i].n_gen > 0) {
			snprintf(gbs, sizeof(gbs), "%.1f", r[i].gbs);
			if (r[i].bw_gbs > 0)
				snprintf(frac, sizeof(frac), "%.0f%%", 100.0 * r[i].gbs / r[i].bw_gbs);
		}
		cell_pred(pred, sizeof(pred), perr, sizeof(perr), &r[i]);
		if (r[i].mem.total)
			mib_cell(mem, sizeof(mem), r[i].mem.total);
		bytes_cell(bpt, sizeof(bpt), r[i].bytes_per_token);
		fprintf(f, "| %s | %s%s | %s | %s | %s | %d | %.2f ± %.2f | %s | %s | %s | %s | %s | %s | %s |\n",
			r[i].model, r[i].test, r[i].past_trained ? " *" : "", r[i].precision, r[i].backend, r[i].device, r[i].n_devices, r[i].tok_s,
			r[i].tok_s_stddev, pred, perr, r[i].bound[0] ? r[i].bound : "-", bpt, gbs, frac, mem);
	}
	for (int i = 0; i < n; i++)
		if (strcmp(r[i].method, "qwen") != 0 && r[i].past_trained) {
			fprintf(f, "\n\\* the test ran past the model's trained positions (%d): a speed figure only\n",
				r[i].trained_positions);
			break;
		}
}

/* The layout of the Qwen speed benchmark, plus the backend, device and the model's prediction. */
static void print_qwen(FILE *f, const struct bench_result *r, int n)
{
	fprintf(f, "| Model | Input Length | Quantization | Backend | Device | GPU Num | Speed (tokens/s) | "
		   "Predicted (tokens/s) | Error | Bound | Memory (MB) |\n"
		   "|---|---:|---|---|---|---:|---:|---:|---:|---|---:|\n");
	for (int i = 0; i < n; i++) {
		if (strcmp(r[i].method, "qwen") != 0)
			continue;
		char pred[32], perr[32], mem[32];
		cell_pred(pred, sizeof(pred), perr, sizeof(perr), &r[i]);
		mib_cell(mem, sizeof(mem), r[i].mem.total);
		fprintf(f, "| %s | %d | %s | %s | %s | %d | %.2f | %s | %s | %s | %s |\n", r[i].model, r[i].n_prompt,
			r[i].precision, r[i].backend, r[i].device, r[i].n_devices, r[i].tok_s, pred, perr,
			r[i].bound[0] ? r[i].bound : "-", mem);
	}
}

void bench_print_markdown(FILE *f, const struct bench_result *r, int n)
{
	int llama = 0, qwen = 0;
	for (int i = 0; i < n; i++)
		*(strcmp(r[i].method, "qwen") == 0 ? &qwen : &llama) += 1;
	if (llama)
		print_llama(f, r, n);
	if (llama && qwen)
		fprintf(f, "\n");
	if (qwen)
		print_qwen(f, r, n);
}

static int same_session(const struct bench_result *a, const struct bench_result *b)
{
	return !strcmp(a->model, b->model) && !strcmp(a->precision, b->precision) && !strcmp(a->backend, b->backend) &&
	       a->device_index == b->device_index && a->mem.total == b->mem.total && a->mem.max_ctx == b->mem.max_ctx;
}

static double mib(uint64_t b)
{
	return (double)b / 1048576.0;
}

void bench_print_memory(FILE *f, const struct bench_result *r, int n)
{
	fprintf(f, "Memory the backend allocated (MB), and the performance model's accounting of the same session "
		   "(what `awqrun bench --fit` uses):\n\n"
		   "| model | precision | backend | KV positions | weights | of which int4 | of which 16-bit | KV cache | "
		   "activations | workspace | total | accounted | difference |\n"
		   "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
	for (int i = 0; i < n; i++) {
		int dup = 0;
		for (int j = 0; j < i && !dup; j++)
			dup = same_session(&r[i], &r[j]);
		if (dup || r[i].modeled)
			continue;
		const struct bench_mem *m = &r[i].mem;
		char acc[32] = "-", diff[32] = "-", q4[32] = "-", w16[32] = "-";
		if (m->acc_total) {
			snprintf(acc, sizeof(acc), "%.1f", mib(m->acc_total));
			snprintf(diff, sizeof(diff), "%+.1f%%",
				 m->total ? 100.0 * ((double)m->acc_total - (double)m->total) / (double)m->total : 0.0);
			snprintf(q4, sizeof(q4), "%.1f", mib(m->weights_q4));
			snprintf(w16, sizeof(w16), "%.1f", mib(m->weights_16));
		}
		fprintf(f, "| %s | %s | %s | %d | %.1f | %s | %s | %.1f | %.1f | %.1f | %.1f | %s | %s |\n", r[i].model,
			r[i].precision, r[i].backend, m->max_ctx, mib(m->weights), q4, w16, mib(m->kv), mib(m->act),
			mib(m->workspace), mib(m->total), acc, diff);
	}
}

/* --- CSV -------------------------------------------------------------------------------------------- */

static void csv_str(FILE *f, const char *s, int last)
{
	int quote = strpbrk(s, ",\"\n") != NULL;
	if (quote) {
		fputc('"', f);
		for (; *s; s++) {
			if (*s == '"')
				fputc('"', f);
			fputc(*s, f);
		}
		fputc('"', f);
	} else {
		fputs(s, f);
	}
	fputc(last ? '\n' : ',', f);
}

void bench_print_csv(FILE *f, const struct bench_result *r, int n)
{
	fprintf(f, "model,precision,backend,device_index,device,driver,kernels,method,test,n_prompt,n_gen,n_devices,"
		   "repeats,tok_s,tok_s_stddev,predicted_tok_s,predicted_error_pct,bound,bytes_per_token,gbs,bw_gbs,"
		   "bw_fraction,mem_weights,mem_weights_int4,mem_weights_16bit,mem_kv,mem_activations,mem_workspace,"
		   "mem_total,mem_accounted,kv_positions,modeled,past_trained_positions\n");
	for (int i = 0; i < n; i++) {
		const struct bench_result *b = &r[i];
		csv_str(f, b->model, 0);
		csv_str(f, b->precision, 0);
		csv_str(f, b->backend, 0);
		fprintf(f, "%d,", b->device_index);
		csv_str(f, b->device, 0);
		csv_str(f, b->driver, 0);
		csv_str(f, b->kernels, 0);
		csv_str(f, b->method, 0);
		csv_str(f, b->test, 0);
		fprintf(f, "%d,%d,%d,%d,%.4f,%.4f,", b->n_prompt, b->n_gen, b->n_devices, b->repeats, b->tok_s,
			b->tok_s_stddev);
		if (b->predicted_tok_s > 0)
			fprintf(f, "%.4f,%.2f,", b->predicted_tok_s, bench_pred_error(b));
		else
			fprintf(f, ",,");
		csv_str(f, b->bound, 0);
		fprintf(f, "%.0f,", b->bytes_per_token);
		if (b->n_gen > 0 && b->gbs > 0)
			fprintf(f, "%.3f,", b->gbs);
		else
			fprintf(f, ",");
		fprintf(f, "%.3f,", b->bw_gbs);
		if (b->n_gen > 0 && b->gbs > 0 && b->bw_gbs > 0)
			fprintf(f, "%.4f,", b->gbs / b->bw_gbs);
		else
			fprintf(f, ",");
		fprintf(f, "%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%d,%d,%d\n", (unsigned long long)b->mem.weights,
			(unsigned long long)b->mem.weights_q4, (unsigned long long)b->mem.weights_16,
			(unsigned long long)b->mem.kv, (unsigned long long)b->mem.act,
			(unsigned long long)b->mem.workspace, (unsigned long long)b->mem.total,
			(unsigned long long)b->mem.acc_total, b->mem.max_ctx, b->modeled, b->past_trained);
	}
}

/* --- JSON ------------------------------------------------------------------------------------------- */

void bench_json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

static void json_kv(FILE *f, const char *key, const char *v)
{
	fprintf(f, "\"%s\": ", key);
	bench_json_string(f, v);
	fprintf(f, ", ");
}

static void json_num_or_null(FILE *f, const char *key, double v, int known, const char *fmt)
{
	fprintf(f, "\"%s\": ", key);
	if (known)
		fprintf(f, fmt, v);
	else
		fprintf(f, "null");
	fprintf(f, ", ");
}

static void json_row(FILE *f, const struct bench_result *b)
{
	fprintf(f, "{");
	json_kv(f, "model", b->model);
	json_kv(f, "precision", b->precision);
	json_kv(f, "backend", b->backend);
	fprintf(f, "\"device_index\": %d, ", b->device_index);
	json_kv(f, "device", b->device);
	json_kv(f, "driver", b->driver);
	json_kv(f, "kernels", b->kernels);
	json_kv(f, "method", b->method);
	json_kv(f, "test", b->test);
	fprintf(f, "\"n_prompt\": %d, \"n_gen\": %d, \"n_depth\": %d, \"n_devices\": %d, \"repeats\": %d, \"modeled\": %s, ",
		b->n_prompt, b->n_gen, b->n_depth, b->n_devices, b->repeats, b->modeled ? "true" : "false");
	json_num_or_null(f, "trained_positions", b->trained_positions, b->trained_positions > 0, "%.0f");
	fprintf(f, "\"past_trained_positions\": %s, ", b->past_trained ? "true" : "false");
	fprintf(f, "\"tok_s\": %.4f, \"tok_s_stddev\": %.4f, ", b->tok_s, b->tok_s_stddev);
	json_num_or_null(f, "predicted_tok_s", b->predicted_tok_s, b->predicted_tok_s > 0, "%.4f");
	json_num_or_null(f, "predicted_error_pct", bench_pred_error(b), b->predicted_tok_s > 0, "%.2f");
	fprintf(f, "\"bound\": ");
	if (b->bound[0])
		bench_json_string(f, b->bound);
	else
		fprintf(f, "null");
	fprintf(f, ", \"bytes_per_token\": %.0f, ", b->bytes_per_token);
	int dec = b->n_gen > 0 && b->gbs > 0;
	json_num_or_null(f, "gbs", b->gbs, dec, "%.3f");
	json_num_or_null(f, "bw_gbs", b->bw_gbs, b->bw_gbs > 0, "%.3f");
	json_num_or_null(f, "bw_fraction", dec && b->bw_gbs > 0 ? b->gbs / b->bw_gbs : 0, dec && b->bw_gbs > 0, "%.4f");
	fprintf(f, "\"weight_bytes\": %llu, \"device_bytes\": %llu, ", (unsigned long long)b->weight_bytes,
		(unsigned long long)b->mem.total);
	const struct bench_mem *m = &b->mem;
	fprintf(f, "\"memory\": {\"kv_positions\": %d, \"max_batch\": %d, \"weights\": %llu, \"weights_int4\": %llu, "
		   "\"weights_16bit\": %llu, \"kv_cache\": %llu, \"activations\": %llu, \"workspace\": %llu, "
		   "\"total\": %llu, \"accounted\": {\"weights\": %llu, \"kv_cache\": %llu, \"activations\": %llu, "
		   "\"total\": %llu}}}",
		m->max_ctx, m->max_batch, (unsigned long long)m->weights, (unsigned long long)m->weights_q4,
		(unsigned long long)m->weights_16, (unsigned long long)m->kv, (unsigned long long)m->act,
		(unsigned long long)m->workspace, (unsigned long long)m->total, (unsigned long long)m->acc_weights,
		(unsigned long long)m->acc_kv, (unsigned long long)m->acc_act, (unsigned long long)m->acc_total);
}

void bench_print_json(FILE *f, const struct bench_header *h, const struct bench_result *r, int n)
{
	fprintf(f, "{\"schema\": \"%s\", \"awqrun\": ", BENCH_SCHEMA);
	bench_json_string(f, awq_version());
	fprintf(f, ", \"commit\": ");
	bench_json_string(f, h->commit);
	fprintf(f, ", \"date\": ");
	bench_json_string(f, h->date);
	fprintf(f, ", \"command\": ");
	bench_json_string(f, h->command);
	fprintf(f, ",\n \"devices\": [");
	for (int i = 0; i < h->n_devices; i++) {
		fprintf(f, "%s\n  {", i ? "," : "");
		json_kv(f, "backend", h->devices[i].backend);
		fprintf(f, "\"index\": %d, ", h->devices[i].index);
		json_kv(f, "name", h->devices[i].name);
		json_kv(f, "driver", h->devices[i].driver);
		json_num_or_null(f, "bw_gbs", h->devices[i].bw_gbs, h->devices[i].bw_gbs > 0, "%.3f");
		fprintf(f, "\"bw_source\": ");
		bench_json_string(f, h->devices[i].bw_source[0] ? h->devices[i].bw_source : "unknown");
		fprintf(f, "}");
	}
	fprintf(f, "],\n \"results\": [");
	for (int i = 0; i < n; i++) {
		fprintf(f, "%s\n  ", i ? "," : "");
		json_row(f, &r[i]);
	}
	fprintf(f, "]}\n");
}
