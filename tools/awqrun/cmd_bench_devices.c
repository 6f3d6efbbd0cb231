/* The devices `awqrun bench --backend all` runs on, and their drivers for the report header: one
 * capability probe per process, without its timed runs (bench measures bandwidth itself). */
#include <stdlib.h>
#include <string.h>

#include "awqrun_caps.h"
#include "bench.h"

#define MAX_PROBED 24

static struct awq_device_caps *probed;
static int n_probed = -1;

static void probe_once(void)
{
	char absent[AWQ_ERRLEN * 2], err[AWQ_ERRLEN];
	if (n_probed >= 0)
		return;
	n_probed = 0;
	if (!(probed = calloc(MAX_PROBED, sizeof(*probed))))
		return;
	int n = awq_caps_probe(probed, MAX_PROBED, AWQ_CAPS_NO_MEASURE | AWQ_CAPS_NO_OPENCL, absent, sizeof(absent), err,
			       sizeof(err));
	n_probed = n > 0 ? n : 0;
}

int bench_backend_devices(const char *backend, int *index, int max)
{
	int n = 0;
	probe_once();
	for (int i = 0; i < n_probed && n < max; i++)
		if (!strcmp(probed[i].backend, backend))
			index[n++] = probed[i].index;
	return n;
}

const char *bench_device_driver(const char *backend, int index, const char *name)
{
	probe_once();
	for (int i = 0; i < n_probed; i++) {
		if (strcmp(probed[i].backend, backend))
			continue;
		if ((name && !strcmp(probed[i].name, name)) || probed[i].index == (index < 0 ? 0 : index))
			return probed[i].driver;
	}
	return "";
}

static struct awq_device_caps *measured;
static int n_measured = -1;

double bench_probe_bandwidth(const char *backend, int index, const char *name, const char **source)
{
	char absent[AWQ_ERRLEN * 2], err[AWQ_ERRLEN];
	*source = "unknown";
	if (n_measured < 0) {
		n_measured = 0;
		/* Only the API in question is probed, with its timed runs. */
		unsigned flags = AWQ_CAPS_NO_OPENCL | (strcmp(backend, "cpu") ? AWQ_CAPS_NO_CPU : 0) |
				 (strcmp(backend, "cuda") ? AWQ_CAPS_NO_CUDA : 0) |
				 (strcmp(backend, "vulkan") ? AWQ_CAPS_NO_VULKAN : 0);
		if ((measured = calloc(MAX_PROBED, sizeof(*measured))) != NULL) {
			int n = awq_caps_probe(measured, MAX_PROBED, flags, absent, sizeof(absent), err, sizeof(err));
			n_measured = n > 0 ? n : 0;
		}
	}
	for (int i = 0; i < n_measured; i++) {
		const struct awq_device_caps *d = &measured[i];
		if (strcmp(d->backend, backend) || (name && strcmp(d->name, name) && d->index != index))
			continue;
		if (d->measured_bw_gbs.v > 0) {
			*source = strcmp(backend, "cuda") ? "caps probe" : "copy, caps probe";
			return d->measured_bw_gbs.v;
		}
		if (d->peak_bw_gbs.v > 0) {
			*source = "database peak";
			return d->peak_bw_gbs.v;
		}
	}
	return 0;
}
