/* OpenCL probe: platforms and devices through the ICD loader (libOpenCL.so.1, loaded with dlopen),
 * with the extensions that matter for LLM kernels (fp16, integer dot product, subgroups). */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caps_internal.h"

/* The stable OpenCL 1.x ABI: handles are pointers, queries are numbered (CL/cl.h values). */
typedef int cl_int;
typedef unsigned cl_uint;
typedef void *cl_platform_id, *cl_device_id;
enum {
	CL_PLATFORM_VERSION = 0x0901, CL_PLATFORM_NAME = 0x0902,
	CL_DEVICE_TYPE = 0x1000, CL_DEVICE_MAX_COMPUTE_UNITS = 0x1002, CL_DEVICE_MAX_CLOCK_FREQUENCY = 0x100C,
	CL_DEVICE_GLOBAL_MEM_SIZE = 0x101F, CL_DEVICE_LOCAL_MEM_SIZE = 0x1023, CL_DEVICE_NAME = 0x102B,
	CL_DEVICE_VENDOR = 0x102C, CL_DRIVER_VERSION = 0x102D, CL_DEVICE_VERSION = 0x102F,
	CL_DEVICE_EXTENSIONS = 0x1030,
};
#define CL_DEVICE_TYPE_ALL 0xFFFFFFFFull

#define MAX_PLATFORMS 8
#define MAX_DEVICES 16

struct cl_api {
	void *lib;
	cl_int (*GetPlatformIDs)(cl_uint, cl_platform_id *, cl_uint *);
	cl_int (*GetPlatformInfo)(cl_platform_id, cl_uint, size_t, void *, size_t *);
	cl_int (*GetDeviceIDs)(cl_platform_id, unsigned long long, cl_uint, cl_device_id *, cl_uint *);
	cl_int (*GetDeviceInfo)(cl_device_id, cl_uint, size_t, void *, size_t *);
};

static const char *const shown_ext[] = {
	"cl_khr_fp16", "cl_khr_fp64", "cl_khr_integer_dot_product", "cl_khr_subgroups", "cl_intel_subgroups",
	"cl_intel_required_subgroup_size", "cl_khr_subgroup_extended_types", "cl_intel_subgroup_matrix_multiply_accumulate",
	"cl_qcom_dot_product8", "cl_arm_integer_dot_product_int8", "cl_khr_int64_base_atomics",
};

#define SYM(api, field, name) (*(void **)&(api)->field = dlsym((api)->lib, name))

static int load(struct cl_api *a, char *why, size_t len)
{
	memset(a, 0, sizeof(*a));
	a->lib = dlopen("libOpenCL.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!a->lib) {
		snprintf(why, len, "no OpenCL ICD loader (libOpenCL.so.1 not found)");
		return -1;
	}
	if (!SYM(a, GetPlatformIDs, "clGetPlatformIDs") || !SYM(a, GetPlatformInfo, "clGetPlatformInfo") ||
	    !SYM(a, GetDeviceIDs, "clGetDeviceIDs") || !SYM(a, GetDeviceInfo, "clGetDeviceInfo")) {
		snprintf(why, len, "libOpenCL.so.1 lacks the platform/device query functions");
		dlclose(a->lib);
		return -1;
	}
	return 0;
}

/* A string property, truncated to len: the query fails outright when the buffer is too small. */
static void str_info(const struct cl_api *a, void *obj, int platform, cl_uint what, char *out, size_t len)
{
	size_t n = 0;
	out[0] = 0;
	int rc = platform ? a->GetPlatformInfo(obj, what, 0, NULL, &n) : a->GetDeviceInfo(obj, what, 0, NULL, &n);
	char *tmp = rc == 0 && n ? calloc(n + 1, 1) : NULL;
	if (!tmp)
		return;
	rc = platform ? a->GetPlatformInfo(obj, what, n, tmp, NULL) : a->GetDeviceInfo(obj, what, n, tmp, NULL);
	if (rc == 0)
		snprintf(out, len, "%s", tmp);
	free(tmp);
}

static int has_word(const char *list, const char *word)
{
	size_t wl = strlen(word);
	for (const char *p = list; (p = strstr(p, word)) != NULL; p += wl)
		if ((p == list || p[-1] == ' ') && (p[wl] == 0 || p[wl] == ' '))
			return 1;
	return 0;
}

static void extensions(const struct cl_api *a, cl_device_id id, struct awq_device_caps *d)
{
	size_t n = 0, used = 0;
	if (a->GetDeviceInfo(id, CL_DEVICE_EXTENSIONS, 0, NULL, &n) != 0 || n == 0)
		return;
	char *all = calloc(n + 1, 1);
	if (!all || a->GetDeviceInfo(id, CL_DEVICE_EXTENSIONS, n, all, NULL) != 0) {
		free(all);
		return;
	}
	for (char *p = all; *p;) {
		p += strspn(p, " ");
		if (*p)
			d->cl.n_extensions++;
		p += strcspn(p, " ");
	}
	for (size_t i = 0; i < sizeof(shown_ext) / sizeof(shown_ext[0]); i++) {
		if (!has_word(all, shown_ext[i]))
			continue;
		int w = snprintf(d->cl.extensions + used, sizeof(d->cl.extensions) - used, "%s%s", used ? " " : "",
				 shown_ext[i]);
		if (w < 0 || (size_t)w >= sizeof(d->cl.extensions) - used)
			break;
		used += (size_t)w;
	}
	d->cl.fp16 = has_word(all, "cl_khr_fp16");
	d->cl.fp64 = has_word(all, "cl_khr_fp64");
	d->cl.int_dot = has_word(all, "cl_khr_integer_dot_product") || has_word(all, "cl_arm_integer_dot_product_int8");
	d->cl.subgroups = has_word(all, "cl_khr_subgroups") || has_word(all, "cl_intel_subgroups");
	free(all);
}

static void one_device(const struct cl_api *a, cl_device_id id, const char *plat, const char *pver, int index,
		       struct awq_device_caps *d)
{
	unsigned long long type = 0, gmem = 0, lmem = 0;
	cl_uint cu = 0, mhz = 0;

	awq_caps_init(d, "opencl", index);
	d->present = 1;
	snprintf(d->cl.platform, sizeof(d->cl.platform), "%s", plat);
	snprintf(d->cl.platform_version, sizeof(d->cl.platform_version), "%s", pver);
	str_info(a, id, 0, CL_DEVICE_NAME, d->name, sizeof(d->name));
	str_info(a, id, 0, CL_DEVICE_VENDOR, d->vendor, sizeof(d->vendor));
	str_info(a, id, 0, CL_DEVICE_VERSION, d->cl.device_version, sizeof(d->cl.device_version));
	str_info(a, id, 0, CL_DRIVER_VERSION, d->cl.driver_version, sizeof(d->cl.driver_version));
	snprintf(d->driver, sizeof(d->driver), "%.28s; %.40s; driver %.12s", plat, d->cl.device_version, d->cl.driver_version);
	if (a->GetDeviceInfo(id, CL_DEVICE_TYPE, sizeof(type), &type, NULL) != 0)
		type = 0;
	snprintf(d->cl.device_type, sizeof(d->cl.device_type), "%s",
		 type & 4 ? "gpu" : type & 2 ? "cpu" : type & 8 ? "accelerator" : "other");
	snprintf(d->arch, sizeof(d->arch), "OpenCL %s device", d->cl.device_type);
	if (a->GetDeviceInfo(id, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof(cu), &cu, NULL) == 0)
		d->units = d->cl.compute_units = (int)cu;
	if (a->GetDeviceInfo(id, CL_DEVICE_MAX_CLOCK_FREQUENCY, sizeof(mhz), &mhz, NULL) == 0)
		d->clock_mhz = d->cl.clock_mhz = mhz;
	if (a->GetDeviceInfo(id, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof(gmem), &gmem, NULL) == 0)
		d->mem_total = gmem;
	if (a->GetDeviceInfo(id, CL_DEVICE_LOCAL_MEM_SIZE, sizeof(lmem), &lmem, NULL) == 0)
		d->cl.local_mem_bytes = lmem;
	extensions(a, id, d);
}

int awq_probe_opencl(struct awq_device_caps *out, int max, char *why, size_t whylen)
{
	struct cl_api a;
	cl_platform_id plats[MAX_PLATFORMS];
	cl_uint np = 0;
	int found = 0;

	if (load(&a, why, whylen))
		return 0;
	if (a.GetPlatformIDs(MAX_PLATFORMS, plats, &np) != 0 || np == 0) {
		snprintf(why, whylen, "the OpenCL ICD loader found no platform");
		return 0;
	}
	if (np > MAX_PLATFORMS)
		np = MAX_PLATFORMS;
	for (cl_uint p = 0; p < np && found < max; p++) {
		char name[64] = "", ver[64] = "";
		cl_device_id devs[MAX_DEVICES];
		cl_uint nd = 0;
		str_info(&a, plats[p], 1, CL_PLATFORM_NAME, name, sizeof(name));
		str_info(&a, plats[p], 1, CL_PLATFORM_VERSION, ver, sizeof(ver));
		if (a.GetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, MAX_DEVICES, devs, &nd) != 0)
			continue;
		for (cl_uint i = 0; i < nd && i < MAX_DEVICES && found < max; i++) {
			one_device(&a, devs[i], name, ver, found, &out[found]);
			found++;
		}
	}
	if (!found)
		snprintf(why, whylen, "the OpenCL platforms list no device");
	/* The ICD loader stays loaded: some ICDs (PoCL) register exit handlers that must not be unmapped. */
	return found;
}
