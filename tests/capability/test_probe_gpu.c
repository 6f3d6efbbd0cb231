/* GPU probes on whatever this machine has. `cuda`: without a driver the probe must say so cleanly;
 * with one, every figure must be plausible. `vulkan`: lavapipe (or any device) must report the
 * properties the Vulkan backend relies on. `opencl`: at least one device with sane figures.
 * Exit 77 when the API or device is absent (vulkan, opencl). */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "caps_internal.h"
#include "ct.h"

#define MAX 16

static int is_pow2(int v)
{
	return v > 0 && (v & (v - 1)) == 0;
}

static int test_cuda(struct awq_device_caps *d)
{
	char why[AWQ_ERRLEN] = "";
	void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	int n = awq_probe_cuda(d, MAX, 1, why, sizeof(why));
	if (!lib) {
		CHECK(n == 0, "probe found %d CUDA devices without libcuda.so.1", n);
		CHECK(strstr(why, "libcuda.so.1") != NULL, "reason '%s' does not name the missing library", why);
		printf("no driver, reported as: %s\n", why);
		return ct_result("caps_probe_cuda");
	}
	CHECK(n >= 0, "probe failed: %s", why);
	if (n == 0)
		CHECK(why[0] != 0, "no device and no reason");
	for (int i = 0; i < n; i++) {
		struct awq_device_caps *x = &d[i];
		awq_gpudb_attach(x);
		printf("cuda %d: %s %s, %d SMs, %.0f MHz, %.1f GB, measured %.0f GB/s, peak %.0f GB/s, launch %.2f us; %s\n",
		       i, x->name, x->arch, x->units, x->clock_mhz, x->mem_total / 1e9, x->measured_bw_gbs.v, x->peak_bw_gbs.v,
		       x->launch_us.v, x->db_how);
		CHECK(x->cuda.cc_major >= 3 && x->units > 0 && x->clock_mhz > 0, "%s: cc %d, %d SMs", x->name,
		      x->cuda.cc_major, x->units);
		CHECK(x->mem_total > ((uint64_t)256 << 20) && x->mem_free <= x->mem_total, "%s: memory %llu/%llu", x->name,
		      (unsigned long long)x->mem_free, (unsigned long long)x->mem_total);
		CHECK(x->measured_bw_gbs.v > 1, "%s: measured %g GB/s (%s)", x->name, x->measured_bw_gbs.v, x->notes);
		if (x->peak_bw_gbs.v > 0)
			CHECK(x->measured_bw_gbs.v < 1.2 * x->peak_bw_gbs.v, "%s: measured %g GB/s above peak %g", x->name,
			      x->measured_bw_gbs.v, x->peak_bw_gbs.v);
		CHECK(x->launch_us.v > 0 && x->launch_us.v < 1000, "%s: launch %g us", x->name, x->launch_us.v);
		CHECK(x->rate[AWQ_MF_FP16].v > 0, "%s: no FP16 rate after the database (%s)", x->name, x->db_how);
		CHECK(x->notes[0] == 0, "%s: note '%s'", x->name, x->notes);
	}
	dlclose(lib);
	return ct_result("caps_probe_cuda");
}

static int test_vulkan(struct awq_device_caps *d)
{
#ifdef AWQ_HAVE_VULKAN_PROBE
	char why[AWQ_ERRLEN] = "";
	int n = awq_probe_vulkan(d, MAX, why, sizeof(why));
	if (n <= 0) {
		printf("skipped: no Vulkan device (%s)\n", why);
		return CT_SKIP;
	}
	for (int i = 0; i < n; i++) {
		const struct awq_device_caps *x = &d[i];
		const struct awq_vk_caps *v = &x->vk;
		printf("vulkan %d: %s (%s), subgroup %d, int8 %d, fp16 %d, %d coopmat shapes\n", i, x->name, v->device_type,
		       v->subgroup_size, v->shader_int8, v->shader_float16, v->n_coopmat);
		CHECK(x->name[0] && v->api_version >= ((1u << 22) | (1u << 12)), "%s: API %#x", x->name, v->api_version);
		CHECK(is_pow2(v->subgroup_size), "%s: subgroup size %d", x->name, v->subgroup_size);
		CHECK(v->subgroup_min <= v->subgroup_size && v->subgroup_size <= v->subgroup_max, "%s: subgroup %d not in %d..%d",
		      x->name, v->subgroup_size, v->subgroup_min, v->subgroup_max);
		CHECK(v->n_heaps > 0 && x->mem_total > 0, "%s: no device-local heap", x->name);
		CHECK(v->n_extensions > 0, "%s: no extensions", x->name);
		for (int c = 0; c < v->n_coopmat; c++)
			CHECK(v->coopmat[c].m > 0 && v->coopmat[c].n > 0 && v->coopmat[c].k > 0, "%s: coopmat %d has a zero size",
			      x->name, c);
		if (strcmp(x->arch, "llvmpipe") == 0) {
			CHECK(v->shader_int8 == 1, "lavapipe without shaderInt8");
			CHECK(v->storage_8bit == 1 && v->storage_16bit == 1, "lavapipe without 8/16-bit storage");
			CHECK(strcmp(v->device_type, "cpu") == 0, "lavapipe is a '%s' device", v->device_type);
		}
	}
	return ct_result("caps_probe_vulkan");
#else
	(void)d;
	printf("skipped: built without Vulkan headers\n");
	return CT_SKIP;
#endif
}

static int test_opencl(struct awq_device_caps *d)
{
	char why[AWQ_ERRLEN] = "";
	int n = awq_probe_opencl(d, MAX, why, sizeof(why));
	if (n <= 0) {
		printf("skipped: no OpenCL device (%s)\n", why);
		return CT_SKIP;
	}
	for (int i = 0; i < n; i++) {
		const struct awq_device_caps *x = &d[i];
		printf("opencl %d: %s on %s (%s), %d CUs, %s\n", i, x->name, x->cl.platform, x->cl.device_type, x->units,
		       x->cl.extensions);
		CHECK(x->name[0] && x->cl.platform[0], "device %d has no name or platform", i);
		CHECK(x->units > 0 && x->mem_total > 0, "%s: %d compute units, %llu bytes", x->name, x->units,
		      (unsigned long long)x->mem_total);
		CHECK(strncmp(x->cl.device_version, "OpenCL ", 7) == 0, "%s: version '%s'", x->name, x->cl.device_version);
		CHECK(x->cl.n_extensions > 0, "%s: no extensions", x->name);
		CHECK(!x->cl.fp16 == !strstr(x->cl.extensions, "cl_khr_fp16"), "%s: fp16 flag disagrees with the list",
		      x->name);
	}
	return ct_result("caps_probe_opencl");
}

int main(int argc, char **argv)
{
	struct awq_device_caps *d = calloc(MAX, sizeof(*d));
	int rc = 2;
	if (!d)
		return 1;
	memset(d, 0x5a, MAX * sizeof(*d));
	if (argc == 2 && strcmp(argv[1], "cuda") == 0)
		rc = test_cuda(d);
	else if (argc == 2 && strcmp(argv[1], "vulkan") == 0)
		rc = test_vulkan(d);
	else if (argc == 2 && strcmp(argv[1], "opencl") == 0)
		rc = test_opencl(d);
	else
		fprintf(stderr, "usage: %s cuda|vulkan|opencl\n", argv[0]);
	free(d);
	return rc;
}
