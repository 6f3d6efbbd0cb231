/* CUDA probe through the driver API and NVML, both loaded with dlopen so that awqrun runs where
 * neither library exists. With measure: device copy bandwidth (cuMemcpyDtoD, bytes read + written)
 * and kernel launch overhead (a one-thread PTX kernel JIT-compiled by the driver). */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "caps_internal.h"
#include "clock.h"

/* The few driver types and constants used (cuda.h is not needed to build awqrun). */
typedef int CUresult;
typedef int CUdevice;
typedef void *CUcontext, *CUmodule, *CUfunction, *CUstream;
typedef unsigned long long CUdeviceptr;
typedef void *nvmlDevice_t;

enum {
	ATTR_CLOCK_RATE = 13, ATTR_SM_COUNT = 16, ATTR_MEM_CLOCK = 36, ATTR_BUS_WIDTH = 37, ATTR_L2 = 38,
	ATTR_CC_MAJOR = 75, ATTR_CC_MINOR = 76, ATTR_SMEM_OPTIN = 97,
};
enum { NVML_CLOCK_SM = 1, NVML_CLOCK_MEM = 2 };

#define BW_BYTES ((size_t)256 << 20)
#define BW_REPS 10
#define LAUNCH_REPS 200

struct cu_api {
	void *lib;
	CUresult (*Init)(unsigned);
	CUresult (*DriverGetVersion)(int *);
	CUresult (*DeviceGetCount)(int *);
	CUresult (*DeviceGet)(CUdevice *, int);
	CUresult (*DeviceGetName)(char *, int, CUdevice);
	CUresult (*DeviceTotalMem)(size_t *, CUdevice);
	CUresult (*DeviceGetAttribute)(int *, int, CUdevice);
	CUresult (*DeviceGetPCIBusId)(char *, int, CUdevice);
	CUresult (*PrimaryCtxRetain)(CUcontext *, CUdevice);
	CUresult (*PrimaryCtxRelease)(CUdevice);
	CUresult (*CtxSetCurrent)(CUcontext);
	CUresult (*CtxSynchronize)(void);
	CUresult (*MemGetInfo)(size_t *, size_t *);
	CUresult (*MemAlloc)(CUdeviceptr *, size_t);
	CUresult (*MemFree)(CUdeviceptr);
	CUresult (*MemcpyDtoD)(CUdeviceptr, CUdeviceptr, size_t);
	CUresult (*MemcpyDtoH)(void *, CUdeviceptr, size_t);
	CUresult (*MemsetD32)(CUdeviceptr, unsigned, size_t);
	CUresult (*ModuleLoadData)(CUmodule *, const void *);
	CUresult (*ModuleUnload)(CUmodule);
	CUresult (*ModuleGetFunction)(CUfunction *, CUmodule, const char *);
	CUresult (*LaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
				 CUstream, void **, void **);
	CUresult (*GetErrorString)(CUresult, const char **);
};

struct nvml_api {
	void *lib;
	int (*Init)(void);
	int (*Shutdown)(void);
	int (*ByPciBusId)(const char *, nvmlDevice_t *);
	int (*MaxClock)(nvmlDevice_t, int, unsigned *);
	int (*BusWidth)(nvmlDevice_t, unsigned *);
	int (*PowerLimit)(nvmlDevice_t, unsigned *);
	int (*DriverVersion)(char *, unsigned);
};

/* A kernel that does almost nothing: the launch is what is timed. Its store proves it ran. */
static const char nop_ptx[] =
	".version 6.0\n.target sm_50\n.address_size 64\n"
	".visible .entry awq_nop(.param .u64 out)\n{\n"
	"\t.reg .u64 %rd<3>;\n\t.reg .u32 %r<2>;\n"
	"\tld.param.u64 %rd1, [out];\n\tcvta.to.global.u64 %rd2, %rd1;\n"
	"\tmov.u32 %r1, %tid.x;\n\tst.global.u32 [%rd2], %r1;\n\tret;\n}\n";

#define SYM(api, field, name) (*(void **)&(api)->field = dlsym((api)->lib, name))

static int load_cuda(struct cu_api *a, char *why, size_t len)
{
	memset(a, 0, sizeof(*a));
	a->lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!a->lib) {
		snprintf(why, len, "no NVIDIA driver (libcuda.so.1 not found)");
		return -1;
	}
	int ok = SYM(a, Init, "cuInit") && SYM(a, DriverGetVersion, "cuDriverGetVersion") &&
		 SYM(a, DeviceGetCount, "cuDeviceGetCount") && SYM(a, DeviceGet, "cuDeviceGet") &&
		 SYM(a, DeviceGetName, "cuDeviceGetName") && SYM(a, DeviceTotalMem, "cuDeviceTotalMem_v2") &&
		 SYM(a, DeviceGetAttribute, "cuDeviceGetAttribute") &&
		 SYM(a, DeviceGetPCIBusId, "cuDeviceGetPCIBusId") &&
		 SYM(a, PrimaryCtxRetain, "cuDevicePrimaryCtxRetain") &&
		 SYM(a, PrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2") &&
		 SYM(a, CtxSetCurrent, "cuCtxSetCurrent") && SYM(a, CtxSynchronize, "cuCtxSynchronize") &&
		 SYM(a, MemGetInfo, "cuMemGetInfo_v2") && SYM(a, MemAlloc, "cuMemAlloc_v2") &&
		 SYM(a, MemFree, "cuMemFree_v2") && SYM(a, MemcpyDtoD, "cuMemcpyDtoD_v2") &&
		 SYM(a, MemcpyDtoH, "cuMemcpyDtoH_v2") && SYM(a, MemsetD32, "cuMemsetD32_v2") &&
		 SYM(a, ModuleLoadData, "cuModuleLoadData") && SYM(a, ModuleUnload, "cuModuleUnload") &&
		 SYM(a, ModuleGetFunction, "cuModuleGetFunction") && SYM(a, LaunchKernel, "cuLaunchKernel");
	SYM(a, GetErrorString, "cuGetErrorString");
	if (!ok) {
		snprintf(why, len, "libcuda.so.1 lacks a driver API function awqrun needs (driver too old)");
		dlclose(a->lib);
		a->lib = NULL;
		return -1;
	}
	return 0;
}

static void load_nvml(struct nvml_api *n)
{
	memset(n, 0, sizeof(*n));
	n->lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!n->lib)
		return;
	int ok = SYM(n, Init, "nvmlInit_v2") && SYM(n, Shutdown, "nvmlShutdown") &&
		 SYM(n, ByPciBusId, "nvmlDeviceGetHandleByPciBusId_v2") &&
		 SYM(n, MaxClock, "nvmlDeviceGetMaxClockInfo");
	SYM(n, BusWidth, "nvmlDeviceGetMemoryBusWidth");
	SYM(n, PowerLimit, "nvmlDeviceGetPowerManagementLimit");
	SYM(n, DriverVersion, "nvmlSystemGetDriverVersion");
	if (!ok || n->Init() != 0) {
		dlclose(n->lib);
		n->lib = NULL;
	}
}

static const char *cu_errstr(const struct cu_api *a, CUresult r)
{
	const char *s = NULL;
	if (a->GetErrorString && a->GetErrorString(r, &s) == 0 && s)
		return s;
	return "unknown CUDA error";
}

static int attr(const struct cu_api *a, int which, CUdevice dev)
{
	int v = 0;
	return a->DeviceGetAttribute(&v, which, dev) == 0 ? v : 0;
}

static void from_nvml(const struct nvml_api *n, struct awq_device_caps *d, const char *bus_id)
{
	nvmlDevice_t h;
	unsigned v;
	if (!n->lib || n->ByPciBusId(bus_id, &h) != 0)
		return;
	d->cuda.nvml = 1;
	if (n->MaxClock(h, NVML_CLOCK_SM, &v) == 0 && v)
		d->clock_mhz = v;
	if (n->MaxClock(h, NVML_CLOCK_MEM, &v) == 0 && v)
		d->mem_clock_mhz = v;
	if (n->BusWidth && n->BusWidth(h, &v) == 0 && v)
		d->bus_width_bits = (int)v;
	if (n->PowerLimit && n->PowerLimit(h, &v) == 0 && v)
		d->cuda.power_limit_w = v / 1000.0;
}

/* Copy bandwidth and launch overhead, in the device's primary context (already current). */
static void measure(const struct cu_api *a, struct awq_device_caps *d)
{
	CUdeviceptr src = 0, dst = 0, flag = 0;
	CUmodule mod = NULL;
	CUfunction fn;
	CUresult r;
	size_t bytes = BW_BYTES;
	unsigned got = 0xffffffffu;

	if (d->mem_free && bytes * 3 > d->mem_free)
		bytes = d->mem_free / 4;
	if ((r = a->MemAlloc(&src, bytes)) || (r = a->MemAlloc(&dst, bytes)) || (r = a->MemAlloc(&flag, 4)))
		goto fail;
	if ((r = a->MemsetD32(src, 0x3c003c00u, bytes / 4)) || (r = a->MemcpyDtoD(dst, src, bytes)) ||
	    (r = a->CtxSynchronize()))
		goto fail;
	double t0 = awq_now_s();
	for (int i = 0; i < BW_REPS && !r; i++)
		r = a->MemcpyDtoD(i & 1 ? src : dst, i & 1 ? dst : src, bytes);
	if (r || (r = a->CtxSynchronize()))
		goto fail;
	awq_fig_set(&d->measured_bw_gbs, 2.0 * (double)bytes * BW_REPS / (awq_now_s() - t0) / 1e9, AWQ_SRC_MEASURED);

	if ((r = a->ModuleLoadData(&mod, nop_ptx)) || (r = a->ModuleGetFunction(&fn, mod, "awq_nop")) ||
	    (r = a->MemsetD32(flag, 0xffffffffu, 1)))
		goto fail;
	void *args[] = {&flag};
	for (int i = 0; i < 10 && !r; i++)
		r = a->LaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, NULL, args, NULL);
	if (r || (r = a->CtxSynchronize()))
		goto fail;
	t0 = awq_now_s();
	for (int i = 0; i < LAUNCH_REPS && !r; i++)
		r = a->LaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, NULL, args, NULL);
	if (r || (r = a->CtxSynchronize()))
		goto fail;
	awq_fig_set(&d->launch_us, (awq_now_s() - t0) / LAUNCH_REPS * 1e6, AWQ_SRC_MEASURED);
	if ((r = a->MemcpyDtoH(&got, flag, 4)))
		goto fail;
	if (got != 0)
		snprintf(d->notes, sizeof(d->notes), "the launch-latency kernel did not run (flag %#x)", got);
fail:
	if (mod)
		a->ModuleUnload(mod);
	if (src)
		a->MemFree(src);
	if (dst)
		a->MemFree(dst);
	if (flag)
		a->MemFree(flag);
	if (r)
		snprintf(d->notes, sizeof(d->notes), "measuring bandwidth and launch latency failed: %s",
			 cu_errstr(a, r));
}

static int one_device(const struct cu_api *a, const struct nvml_api *n, int i, int do_measure,
		      struct awq_device_caps *d, char *why, size_t len)
{
	CUdevice dev;
	CUcontext ctx;
	char bus[32] = "";
	size_t total = 0, fr = 0, tot = 0;
	CUresult r;

	awq_caps_init(d, "cuda", i);
	d->present = 1;
	snprintf(d->vendor, sizeof(d->vendor), "NVIDIA");
	if ((r = a->DeviceGet(&dev, i)) || (r = a->DeviceGetName(d->name, sizeof(d->name), dev)) ||
	    (r = a->DeviceTotalMem(&total, dev))) {
		snprintf(why, len, "device %d: %s", i, cu_errstr(a, r));
		return -1;
	}
	d->mem_total = total;
	d->cuda.cc_major = attr(a, ATTR_CC_MAJOR, dev);
	d->cuda.cc_minor = attr(a, ATTR_CC_MINOR, dev);
	snprintf(d->arch, sizeof(d->arch), "sm_%d%d", d->cuda.cc_major, d->cuda.cc_minor);
	d->units = d->cuda.sm_count = attr(a, ATTR_SM_COUNT, dev);
	d->clock_mhz = attr(a, ATTR_CLOCK_RATE, dev) / 1000.0;
	d->mem_clock_mhz = attr(a, ATTR_MEM_CLOCK, dev) / 1000.0;
	d->bus_width_bits = attr(a, ATTR_BUS_WIDTH, dev);
	d->cuda.l2_bytes = (uint64_t)attr(a, ATTR_L2, dev);
	d->cuda.smem_per_block_optin = attr(a, ATTR_SMEM_OPTIN, dev);
	if (a->DeviceGetPCIBusId(bus, sizeof(bus), dev) == 0)
		from_nvml(n, d, bus);
	/* DDR signalling: two transfers per memory clock, as the driver reports the clock. */
	awq_fig_set(&d->peak_bw_gbs, d->bus_width_bits / 8.0 * d->mem_clock_mhz * 2.0 / 1000.0, AWQ_SRC_COMPUTED);
	if ((r = a->PrimaryCtxRetain(&ctx, dev))) {
		snprintf(why, len, "%s: no context: %s", d->name, cu_errstr(a, r));
		return -1;
	}
	if ((r = a->CtxSetCurrent(ctx)) == 0 && (r = a->MemGetInfo(&fr, &tot)) == 0)
		d->mem_free = fr;
	if (r)
		snprintf(d->notes, sizeof(d->notes), "the device's context failed: %s", cu_errstr(a, r));
	else if (do_measure)
		measure(a, d);
	a->CtxSetCurrent(NULL);
	a->PrimaryCtxRelease(dev);
	return 0;
}

int awq_probe_cuda(struct awq_device_caps *out, int max, int do_measure, char *why, size_t whylen)
{
	struct cu_api a;
	struct nvml_api n;
	int count = 0, ver = 0, found = 0;
	char drv[80] = "";
	CUresult r;

	if (load_cuda(&a, why, whylen))
		return 0;
	if ((r = a.Init(0)) != 0) {
		snprintf(why, whylen, "the NVIDIA driver is installed but cuInit failed: %s", cu_errstr(&a, r));
		dlclose(a.lib);
		return 0;
	}
	if ((r = a.DeviceGetCount(&count)) != 0 || count == 0) {
		snprintf(why, whylen, "the NVIDIA driver reports no CUDA device");
		dlclose(a.lib);
		return 0;
	}
	a.DriverGetVersion(&ver);
	load_nvml(&n);
	if (n.lib && n.DriverVersion)
		n.DriverVersion(drv, sizeof(drv));
	for (int i = 0; i < count && found < max; i++) {
		struct awq_device_caps *d = &out[found];
		if (one_device(&a, &n, i, do_measure, d, why, whylen) != 0)
			continue;
		d->cuda.driver_version = ver;
		snprintf(d->driver, sizeof(d->driver), "CUDA %d.%d%s%.60s", ver / 1000, ver % 1000 / 10, drv[0] ? ", driver " : "",
			 drv);
		found++;
	}
	if (n.lib) {
		n.Shutdown();
		dlclose(n.lib);
	}
	/* libcuda stays loaded: unloading a driver that created contexts is not safe. */
	return found;
}
