/* CPU probe against independent sources: hwloc queried here directly, the compiler's cpuid
 * helpers, sysconf, and plausibility of the measured bandwidth and dispatch latency. */
#include <hwloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caps_internal.h"
#include "ct.h"

static void check_topology(const struct awq_device_caps *d)
{
	hwloc_topology_t t;
	if (hwloc_topology_init(&t) || hwloc_topology_load(t)) {
		CHECK(0, "hwloc failed in the test itself");
		return;
	}
	int cores = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE), pus = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PU);
	int numa = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE);
	hwloc_topology_destroy(t);
	CHECK(d->cpu.cores == cores, "probe says %d cores, hwloc %d", d->cpu.cores, cores);
	CHECK(d->cpu.threads == pus, "probe says %d threads, hwloc %d", d->cpu.threads, pus);
	CHECK(d->cpu.numa_nodes == numa, "probe says %d NUMA nodes, hwloc %d", d->cpu.numa_nodes, numa);
	CHECK(d->units == cores, "units %d, cores %d", d->units, cores);
	CHECK(d->cpu.threads >= d->cpu.cores && d->cpu.cores >= 1, "threads %d < cores %d", d->cpu.threads, d->cpu.cores);
	long online = sysconf(_SC_NPROCESSORS_ONLN);
	CHECK(online >= d->cpu.threads, "%ld CPUs online but %d threads probed", online, d->cpu.threads);
	uint64_t numa_sum = 0;
	for (int i = 0; i < d->cpu.numa_nodes && i < AWQ_CAPS_MAX_NUMA; i++)
		numa_sum += d->cpu.numa_mem[i];
	CHECK(numa_sum > 0 && d->mem_total >= numa_sum / 2, "NUMA memory %llu vs total %llu",
	      (unsigned long long)numa_sum, (unsigned long long)d->mem_total);
	CHECK(d->cpu.l2_bytes == 0 || d->cpu.l2_bytes >= 64 * 1024, "L2 of %llu bytes", (unsigned long long)d->cpu.l2_bytes);
}

static void check_flags(const struct awq_device_caps *d)
{
#if defined(__x86_64__)
	static const struct {
		const char *name;
		unsigned bit;
	} f[] = {{"avx2", AWQ_CPU_AVX2}, {"fma", AWQ_CPU_FMA}, {"avx512f", AWQ_CPU_AVX512F},
		 {"avx512bw", AWQ_CPU_AVX512BW}, {"avx512vnni", AWQ_CPU_AVX512VNNI}};
	__builtin_cpu_init();
	int has[5] = {__builtin_cpu_supports("avx2"), __builtin_cpu_supports("fma"), __builtin_cpu_supports("avx512f"),
		      __builtin_cpu_supports("avx512bw"), __builtin_cpu_supports("avx512vnni")};
	for (int i = 0; i < 5; i++)
		CHECK(!has[i] == !(d->cpu.flags & f[i].bit), "%s: compiler says %d, probe says %d", f[i].name, has[i] != 0,
		      (d->cpu.flags & f[i].bit) != 0);
	CHECK(strncmp(d->arch, "x86-64 ", 7) == 0, "arch '%s'", d->arch);
	CHECK(d->rate[AWQ_MF_FP32].v > 0 && d->rate[AWQ_MF_FP32].src == AWQ_SRC_COMPUTED, "no FP32 rate");
#elif defined(__aarch64__)
	CHECK(d->cpu.flags & AWQ_CPU_NEON, "arm64 without NEON");
#endif
	CHECK(d->native[AWQ_MF_FP8] == 0 && d->native[AWQ_MF_FP4] == 0, "a CPU with FP8/FP4 matrix units?");
}

int main(void)
{
	struct awq_device_caps *d = calloc(1, sizeof(*d));
	char err[AWQ_ERRLEN];
	if (!d)
		return 1;
	memset(d, 0x5a, sizeof(*d)); /* poison: the probe must set everything it reports */
	int rc = awq_probe_cpu(d, 1, err, sizeof(err));
	CHECK(rc == 0, "awq_probe_cpu: %s", err);
	if (rc == 0) {
		CHECK(strcmp(d->backend, "cpu") == 0 && d->present == 1, "backend '%s'", d->backend);
		CHECK(d->name[0] != 0, "no CPU name");
		check_topology(d);
		check_flags(d);
		CHECK(d->measured_bw_gbs.v > 0.1 && d->measured_bw_gbs.v < 5000, "bandwidth %g GB/s", d->measured_bw_gbs.v);
		CHECK(d->measured_bw_gbs.src == AWQ_SRC_MEASURED, "bandwidth source %d", d->measured_bw_gbs.src);
		CHECK(d->launch_us.v > 0 && d->launch_us.v < 10000, "dispatch latency %g us", d->launch_us.v);
		CHECK(d->mem_total > ((uint64_t)64 << 20), "memory %llu bytes", (unsigned long long)d->mem_total);
		CHECK(d->clock_mhz > 0, "no clock");
	}
	/* Without measuring, no measured figure may appear. */
	rc = awq_probe_cpu(d, 0, err, sizeof(err));
	CHECK(rc == 0 && d->measured_bw_gbs.v == 0 && d->launch_us.v == 0, "unmeasured probe reports %g GB/s",
	      d->measured_bw_gbs.v);
	free(d);
	return ct_result("caps_probe_cpu");
}
