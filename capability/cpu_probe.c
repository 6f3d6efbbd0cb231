/* CPU probe: instruction-set flags (cpuid on x86-64, getauxval on arm64), topology from hwloc, the
 * measured read bandwidth of all cores and the thread pool's dispatch latency. */
#include <hwloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caps_internal.h"
#include "clock.h"
#include "cpu_membw.h"
#include "error.h"
#include "threadpool.h"

#if defined(__x86_64__)
#include <cpuid.h>
#elif defined(__aarch64__)
#include <sys/auxv.h>
#endif

/* Bytes read by the bandwidth test: at least 4x the L3 (server parts have hundreds of MiB), small
 * enough to stay well under a second. */
#define BW_MIN_BYTES ((size_t)256 << 20)
#define BW_MAX_BYTES ((size_t)2 << 30)
#define DISPATCH_REPS 200

#if defined(__x86_64__)
/* XCR0: which register states the OS saves; a CPU flag is usable only when its state is enabled. */
static uint64_t xcr0(void)
{
	uint32_t lo, hi;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return ((uint64_t)hi << 32) | lo;
}

static unsigned cpu_flags(void)
{
	unsigned a, b, c, d, f = 0;
	if (!__get_cpuid(1, &a, &b, &c, &d))
		return 0;
	int osxsave = (c >> 27) & 1;
	uint64_t x = osxsave ? xcr0() : 0;
	int ymm = (x & 6) == 6, zmm = ymm && (x & 0xe0) == 0xe0, amx = (x & 0x60000) == 0x60000;
	if (c & (1u << 20))
		f |= AWQ_CPU_SSE42;
	if (ymm && (c & (1u << 28)))
		f |= AWQ_CPU_AVX;
	if (ymm && (c & (1u << 12)))
		f |= AWQ_CPU_FMA;
	if (ymm && (c & (1u << 29)))
		f |= AWQ_CPU_F16C;
	if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
		return f;
	unsigned max7 = a;
	if (ymm && (b & (1u << 5)))
		f |= AWQ_CPU_AVX2;
	if (zmm && (b & (1u << 16)))
		f |= AWQ_CPU_AVX512F;
	if (zmm && (b & (1u << 30)))
		f |= AWQ_CPU_AVX512BW;
	if (zmm && (b & (1u << 31)))
		f |= AWQ_CPU_AVX512VL;
	if (zmm && (c & (1u << 11)))
		f |= AWQ_CPU_AVX512VNNI;
	if (amx && (d & (1u << 24)))
		f |= AWQ_CPU_AMX_TILE;
	if (amx && (d & (1u << 25)))
		f |= AWQ_CPU_AMX_INT8;
	if (amx && (d & (1u << 22)))
		f |= AWQ_CPU_AMX_BF16;
	if (max7 >= 1 && __get_cpuid_count(7, 1, &a, &b, &c, &d)) {
		if (ymm && (a & (1u << 4)))
			f |= AWQ_CPU_AVXVNNI;
		if (zmm && (a & (1u << 5)))
			f |= AWQ_CPU_AVX512BF16;
	}
	return f;
}
#elif defined(__aarch64__)
static unsigned cpu_flags(void)
{
	unsigned long h = getauxval(AT_HWCAP), h2 = getauxval(AT_HWCAP2);
	unsigned f = 0;
	/* Bit positions of the arm64 Linux ABI (asm/hwcap.h), stable since they were added. */
	if (h & (1ul << 1))
		f |= AWQ_CPU_NEON;
	if (h & (1ul << 10))
		f |= AWQ_CPU_ASIMDHP;
	if (h & (1ul << 20))
		f |= AWQ_CPU_DOTPROD;
	if (h & (1ul << 22))
		f |= AWQ_CPU_SVE;
	if (h2 & (1ul << 13))
		f |= AWQ_CPU_I8MM;
	if (h2 & (1ul << 14))
		f |= AWQ_CPU_ARM_BF16;
	return f;
}
#else
static unsigned cpu_flags(void)
{
	return 0;
}
#endif

static const char *arch_name(unsigned f, char *buf, size_t len)
{
#if defined(__x86_64__)
	const char *best = f & AWQ_CPU_AVX512VNNI ? "avx512-vnni" : f & AWQ_CPU_AVX512F ? "avx512"
		: f & AWQ_CPU_AVX2 ? "avx2" : f & AWQ_CPU_AVX ? "avx" : "sse";
	snprintf(buf, len, "x86-64 %s%s", best, f & AWQ_CPU_AMX_INT8 ? " amx" : "");
#elif defined(__aarch64__)
	snprintf(buf, len, "arm64 %s%s", f & AWQ_CPU_DOTPROD ? "neon-dotprod" : "neon", f & AWQ_CPU_I8MM ? " i8mm" : "");
#else
	(void)f;
	snprintf(buf, len, "unknown");
#endif
	return buf;
}

/* A "key : value" line of a /proc file, value copied into out. */
static int proc_field(const char *path, const char *key, char *out, size_t len)
{
	FILE *f = fopen(path, "r");
	char line[512];
	size_t kl = strlen(key);
	int found = 0;
	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, kl) != 0)
			continue;
		char *v = strchr(line + kl, ':');
		if (!v)
			continue;
		for (v++; *v == ' ' || *v == '\t'; v++)
			;
		v[strcspn(v, "\n")] = 0;
		snprintf(out, len, "%s", v);
		found = 1;
	}
	fclose(f);
	return found;
}

static double max_clock_mhz(void)
{
	char buf[64];
	FILE *f = fopen("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", "r");
	if (f) {
		long khz = 0;
		int ok = fscanf(f, "%ld", &khz) == 1;
		fclose(f);
		if (ok && khz > 0)
			return (double)khz / 1000.0;
	}
	if (proc_field("/proc/cpuinfo", "cpu MHz", buf, sizeof(buf)))
		return atof(buf);
	return 0;
}

static void topology(struct awq_device_caps *d, hwloc_topology_t t)
{
	struct awq_cpu_caps *c = &d->cpu;
	c->packages = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PACKAGE);
	c->cores = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE);
	c->threads = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PU);
	c->numa_nodes = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE);
	for (int i = 0; i < c->numa_nodes; i++) {
		hwloc_obj_t o = hwloc_get_obj_by_type(t, HWLOC_OBJ_NUMANODE, (unsigned)i);
		if (o && o->attr) {
			if (i < AWQ_CAPS_MAX_NUMA)
				c->numa_mem[i] = o->attr->numanode.local_memory;
			d->mem_total += o->attr->numanode.local_memory;
		}
	}
	hwloc_obj_t l1 = hwloc_get_obj_by_type(t, HWLOC_OBJ_L1CACHE, 0);
	hwloc_obj_t l2 = hwloc_get_obj_by_type(t, HWLOC_OBJ_L2CACHE, 0);
	c->l1d_bytes = l1 && l1->attr ? l1->attr->cache.size : 0;
	c->l2_bytes = l2 && l2->attr ? l2->attr->cache.size : 0;
	int n3 = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_L3CACHE);
	for (int i = 0; i < n3; i++) {
		hwloc_obj_t o = hwloc_get_obj_by_type(t, HWLOC_OBJ_L3CACHE, (unsigned)i);
		if (o && o->attr)
			c->l3_bytes += o->attr->cache.size;
	}
	hwloc_obj_t pkg = hwloc_get_obj_by_type(t, HWLOC_OBJ_PACKAGE, 0);
	const char *model = pkg ? hwloc_obj_get_info_by_name(pkg, "CPUModel") : NULL;
	const char *vendor = pkg ? hwloc_obj_get_info_by_name(pkg, "CPUVendor") : NULL;
	if (model)
		snprintf(d->name, sizeof(d->name), "%s", model);
	if (vendor)
		snprintf(d->vendor, sizeof(d->vendor), "%s", vendor);
}

/* Dense peak per core and cycle, from the flags. Assumes two FMA pipes of 256 bits (x86-64: the
 * common case from Haswell and Zen 2 on; AVX-512 parts with one 512-bit pipe give the same) or of
 * 128 bits (arm64 NEON). INT8 counts a multiply-add as two ops. */
static void rates(struct awq_device_caps *d)
{
	unsigned f = d->cpu.flags;
	double fp32 = 0, int8 = 0, bf16 = 0;
	if (f & (AWQ_CPU_AVX2 | AWQ_CPU_AVX512F))
		fp32 = f & AWQ_CPU_FMA ? 32 : 16;
	else if (f & AWQ_CPU_AVX)
		fp32 = 16;
	else if (f & (AWQ_CPU_SSE42 | AWQ_CPU_NEON))
		fp32 = f & AWQ_CPU_NEON ? 16 : 8;
	if (f & (AWQ_CPU_AVX512VNNI | AWQ_CPU_AVXVNNI))
		int8 = 128; /* vpdpbusd: 32 u8 x s8 MACs per 256 bits, two pipes */
	else if (f & AWQ_CPU_AVX2)
		int8 = 64;  /* vpmaddubsw + vpmaddwd: half the VNNI rate */
	else if (f & AWQ_CPU_DOTPROD)
		int8 = 64;  /* sdot: 16 MACs per 128 bits, two pipes */
	if (f & AWQ_CPU_AVX512BF16)
		bf16 = 64;  /* vdpbf16ps: 16 MACs per 256 bits, two pipes */
	else if (f & AWQ_CPU_ARM_BF16)
		bf16 = 32;
	double hz = (double)d->units * d->clock_mhz * 1e6;
	awq_fig_set(&d->rate[AWQ_MF_FP32], fp32 * hz / 1e12, AWQ_SRC_COMPUTED);
	awq_fig_set(&d->rate[AWQ_MF_INT8], int8 * hz / 1e12, AWQ_SRC_COMPUTED);
	awq_fig_set(&d->rate[AWQ_MF_BF16], bf16 * hz / 1e12, AWQ_SRC_COMPUTED);
	for (int i = 0; i < AWQ_MF_COUNT; i++)
		d->native[i] = d->rate[i].v > 0;
	if (f & (AWQ_CPU_F16C | AWQ_CPU_ASIMDHP))
		d->native[AWQ_MF_FP16] = 1; /* converts or computes FP16, no matrix unit: rate left unknown */
	d->native[AWQ_MF_FP16_F32ACC] = d->native[AWQ_MF_FP16];
	if (f & AWQ_CPU_AMX_INT8)
		d->native[AWQ_MF_INT8] = 1;
}

static void nop_job(void *ctx, int b, int e, int t)
{
	(void)ctx, (void)b, (void)e, (void)t;
}

/* The decode path issues one pool job per op, so the dispatch round trip is the per-op overhead. */
static int measure(struct awq_device_caps *d, char *err, size_t errlen)
{
	struct awq_pool *pool;
	size_t bytes = d->cpu.l3_bytes * 4 > BW_MIN_BYTES ? (size_t)d->cpu.l3_bytes * 4 : BW_MIN_BYTES;
	if (bytes > BW_MAX_BYTES)
		bytes = BW_MAX_BYTES;
	if (d->mem_free && bytes > d->mem_free / 4)
		bytes = d->mem_free / 4;
	int rc = awq_pool_create(0, &pool, err, errlen);
	if (rc)
		return rc;
	double bw = awq_cpu_read_bandwidth_gbs(pool, bytes);
	int n = awq_pool_threads(pool);
	for (int i = 0; i < 20; i++)
		awq_pool_run(pool, nop_job, NULL, n, 1);
	double t0 = awq_now_s();
	for (int i = 0; i < DISPATCH_REPS; i++)
		awq_pool_run(pool, nop_job, NULL, n, 1);
	double dt = awq_now_s() - t0;
	awq_pool_destroy(pool);
	if (bw <= 0)
		return awq_err(err, errlen, AWQ_ENOMEM, "no memory for the %zu MiB CPU bandwidth test buffer",
			       bytes >> 20);
	awq_fig_set(&d->measured_bw_gbs, bw, AWQ_SRC_MEASURED);
	awq_fig_set(&d->launch_us, dt / DISPATCH_REPS * 1e6, AWQ_SRC_MEASURED);
	return 0;
}

int awq_probe_cpu(struct awq_device_caps *d, int do_measure, char *err, size_t errlen)
{
	hwloc_topology_t t;
	char buf[64];

	awq_caps_init(d, "cpu", 0);
	d->present = 1;
	snprintf(d->name, sizeof(d->name), "CPU");
	if (hwloc_topology_init(&t) != 0)
		return awq_err(err, errlen, AWQ_ENOMEM, "hwloc could not initialise a topology");
	if (hwloc_topology_load(t) != 0) {
		hwloc_topology_destroy(t);
		return awq_err(err, errlen, AWQ_EDEVICE, "hwloc could not read this machine's topology");
	}
	topology(d, t);
	hwloc_topology_destroy(t);
	if (strcmp(d->name, "CPU") == 0 && proc_field("/proc/cpuinfo", "model name", d->name, sizeof(d->name)) == 0)
		snprintf(d->name, sizeof(d->name), "CPU");
	d->cpu.flags = cpu_flags();
	arch_name(d->cpu.flags, d->arch, sizeof(d->arch));
	d->units = d->cpu.cores;
	d->clock_mhz = max_clock_mhz();
	/* MemTotal over hwloc's NUMA sum: virtual machines can hot-plug memory hwloc does not list. */
	if (proc_field("/proc/meminfo", "MemTotal", buf, sizeof(buf)))
		d->mem_total = (uint64_t)strtoull(buf, NULL, 10) * 1024;
	if (proc_field("/proc/meminfo", "MemAvailable", buf, sizeof(buf)))
		d->mem_free = (uint64_t)strtoull(buf, NULL, 10) * 1024;
	if (!d->mem_total) {
		long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
		if (pages > 0 && psz > 0)
			d->mem_total = (uint64_t)pages * (uint64_t)psz;
	}
	snprintf(d->driver, sizeof(d->driver), "hwloc %s", HWLOC_VERSION);
	rates(d);
	snprintf(d->db_how, sizeof(d->db_how), "rates computed: cores x clock x SIMD width (two FMA pipes assumed)");
	if (do_measure)
		return measure(d, err, errlen);
	return 0;
}
