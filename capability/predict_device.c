/* Predictions for a present device, for `awqrun bench` to print beside its measurement, and the
 * probe records the planner ranks. Devices are probed once per process; a caller that measured the
 * bandwidth itself passes it in and the probe skips its own timed runs. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "caps_internal.h"
#include "error.h"

#define MAX_CACHED 24

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct awq_device_caps *cache; /* kept for the life of the process */
static int n_cached, cache_measured;

static int fill_cache(int measure, char *err, size_t errlen)
{
	char absent[AWQ_ERRLEN * 2];
	if (!cache && !(cache = calloc(MAX_CACHED, sizeof(*cache))))
		return awq_err(err, errlen, AWQ_ENOMEM, "out of memory probing devices");
	int n = awq_caps_probe(cache, MAX_CACHED, (measure ? 0 : AWQ_CAPS_NO_MEASURE) | AWQ_CAPS_NO_OPENCL, absent,
			       sizeof(absent), err, errlen);
	if (n < 0)
		return n;
	n_cached = n;
	cache_measured = measure;
	return 0;
}

int awq_caps_probe_cached(struct awq_device_caps *out, int max, int measure, char *err, size_t errlen)
{
	int rc = 0;
	pthread_mutex_lock(&cache_lock);
	if (!cache || (measure && !cache_measured))
		rc = fill_cache(measure, err, errlen);
	int n = rc ? rc : n_cached < max ? n_cached : max;
	if (!rc)
		memcpy(out, cache, (size_t)n * sizeof(*out));
	pthread_mutex_unlock(&cache_lock);
	return n;
}

static int find(const char *backend, const char *device, struct awq_device_caps *out)
{
	for (int i = 0; i < n_cached; i++) {
		if (strcmp(cache[i].backend, backend) != 0)
			continue;
		if (!device || !device[0] || strcmp(backend, "cpu") == 0 || strcmp(cache[i].name, device) == 0) {
			*out = cache[i];
			return 0;
		}
	}
	return -1;
}

int awq_caps_predict_device(const char *backend, const char *device, const awq_model *m,
			    const struct awq_perf_query *q, double bw_gbs, struct awq_perf_result *r, char *err,
			    size_t errlen)
{
	struct awq_device_caps d;
	int rc = 0;
	pthread_mutex_lock(&cache_lock);
	if (!cache || (bw_gbs <= 0 && !cache_measured))
		rc = fill_cache(bw_gbs <= 0, err, errlen);
	if (!rc && find(backend, device, &d))
		rc = awq_err(err, errlen, AWQ_ENODEV, "no %s device%s%s among the probed devices", backend,
			     device && device[0] ? " named " : "", device ? device : "");
	pthread_mutex_unlock(&cache_lock);
	if (rc)
		return rc;
	if (bw_gbs > 0)
		awq_fig_set(&d.measured_bw_gbs, bw_gbs, AWQ_SRC_MEASURED);
	return awq_perf_predict(&d, m, q, r, err, errlen);
}
