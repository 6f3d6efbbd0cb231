/* All probes together: the CPU, then every API this build knows. Devices that share host memory
 * (CPU-type Vulkan/OpenCL devices such as lavapipe and PoCL, integrated GPUs) get the CPU's measured
 * bandwidth; a Vulkan view of a CUDA device gets the CUDA measurement. */
#include <stdio.h>
#include <string.h>

#include "caps_internal.h"
#include "error.h"

static void add_line(char *buf, size_t len, const char *api, const char *why)
{
	size_t used = strlen(buf);
	if (used < len)
		snprintf(buf + used, len - used, "%s: %s\n", api, why);
}

/* "cpu", "integrated", "discrete", ... as the Vulkan or OpenCL driver reports it ("" for others). */
static const char *device_type(const struct awq_device_caps *d)
{
	return strcmp(d->backend, "vulkan") == 0 ? d->vk.device_type : d->cl.device_type;
}

static int shares_host_memory(const struct awq_device_caps *d)
{
	return strcmp(device_type(d), "cpu") == 0 || strcmp(device_type(d), "integrated") == 0;
}

/* Figures one API cannot give, borrowed from another view of the same memory. */
static void borrow(struct awq_device_caps *devs, int n, int first)
{
	const struct awq_device_caps *cpu = NULL;
	for (int i = 0; i < first; i++)
		if (strcmp(devs[i].backend, "cpu") == 0)
			cpu = &devs[i];
	for (int i = first; i < n; i++) {
		struct awq_device_caps *d = &devs[i];
		if (shares_host_memory(d)) {
			if (cpu && cpu->measured_bw_gbs.v > 0) {
				d->measured_bw_gbs = cpu->measured_bw_gbs;
				d->measured_bw_gbs.src = AWQ_SRC_HOST;
			}
			/* A CPU-type device runs its shaders on the same SIMD units. */
			if (cpu && strcmp(device_type(d), "cpu") == 0) {
				d->rate[AWQ_MF_FP32] = cpu->rate[AWQ_MF_FP32];
				d->rate[AWQ_MF_FP32].src = AWQ_SRC_HOST;
			}
			continue;
		}
		for (int j = 0; j < first; j++)
			if (strcmp(devs[j].backend, "cuda") == 0 && strcmp(devs[j].name, d->name) == 0 &&
			    devs[j].measured_bw_gbs.v > 0)
				d->measured_bw_gbs = devs[j].measured_bw_gbs;
	}
}

static void attach_all(struct awq_device_caps *devs, int from, int to)
{
	for (int i = from; i < to; i++)
		if (!shares_host_memory(&devs[i]))
			awq_gpudb_attach(&devs[i]);
		else
			snprintf(devs[i].db_how, sizeof(devs[i].db_how),
				 "shares host memory: the CPU's measured bandwidth applies; no matrix units");
}

int awq_caps_probe(struct awq_device_caps *out, int max, unsigned flags, char *absent, size_t absent_len,
		   char *err, size_t errlen)
{
	int measure = !(flags & AWQ_CAPS_NO_MEASURE), n = 0, k;
	char why[AWQ_ERRLEN];

	if (absent_len)
		absent[0] = 0;
	if (!(flags & AWQ_CAPS_NO_CPU) && n < max) {
		int rc = awq_probe_cpu(&out[n], measure, err, errlen);
		if (rc)
			return rc;
		n++;
	}
	if (!(flags & AWQ_CAPS_NO_CUDA) && n < max) {
		why[0] = 0;
		k = awq_probe_cuda(out + n, max - n, measure, why, sizeof(why));
		if (k <= 0)
			add_line(absent, absent_len, "cuda", why[0] ? why : "no device");
		attach_all(out, n, n + (k > 0 ? k : 0));
		n += k > 0 ? k : 0;
	}
	int first_other = n;
#ifdef AWQ_HAVE_VULKAN_PROBE
	if (!(flags & AWQ_CAPS_NO_VULKAN) && n < max) {
		why[0] = 0;
		k = awq_probe_vulkan(out + n, max - n, why, sizeof(why));
		if (k <= 0)
			add_line(absent, absent_len, "vulkan", why[0] ? why : "no device");
		attach_all(out, n, n + (k > 0 ? k : 0));
		n += k > 0 ? k : 0;
	}
#else
	if (!(flags & AWQ_CAPS_NO_VULKAN))
		add_line(absent, absent_len, "vulkan", "this build has no Vulkan headers (install libvulkan-dev and rebuild)");
#endif
	if (!(flags & AWQ_CAPS_NO_OPENCL) && n < max) {
		why[0] = 0;
		k = awq_probe_opencl(out + n, max - n, why, sizeof(why));
		if (k <= 0)
			add_line(absent, absent_len, "opencl", why[0] ? why : "no device");
		attach_all(out, n, n + (k > 0 ? k : 0));
		n += k > 0 ? k : 0;
	}
	borrow(out, n, first_other);
	return n;
}
