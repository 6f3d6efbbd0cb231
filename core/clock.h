/* Wall time for measurements: seconds on the monotonic clock (one definition for the probes, the
 * backends and the tools). */
#ifndef AWQ_CLOCK_H
#define AWQ_CLOCK_H

#include <time.h>

static inline double awq_now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#endif
