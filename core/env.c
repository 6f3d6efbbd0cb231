/* Settings from environment variables (env.h). */
#include "env.h"

#include <stdio.h>
#include <stdlib.h>

int awq_env_int(const char *var, int def, int lo, int hi)
{
	const char *e = getenv(var);
	if (!e || !*e)
		return def;
	char *end;
	long v = strtol(e, &end, 10);
	if (*end || v < lo || v > hi) {
		fprintf(stderr, "awqrun: %s=%s ignored (want %d-%d; using %d)\n", var, e, lo, hi, def);
		return def;
	}
	return (int)v;
}

int awq_cuda_deq_rows(void)
{
	int r = awq_env_int("AWQ_CUDA_DEQ_ROWS", AWQ_CUDA_DEQ_ROWS_DEFAULT, 0, 1 << 20);
	return r > 0 && r < 9 ? 9 : r;
}
