/* Minimal checks for the capability tests: every failed check prints where and why, the test's exit
 * status is the number of failures (0 = pass); 77 = skipped (device absent). */
#ifndef AWQ_CT_H
#define AWQ_CT_H

#include <stdio.h>

#include "awq_test.h"
static int ct_failures;

#define CHECK(cond, ...) AWQ_CHECK(ct_failures, cond, __VA_ARGS__)

#define CT_SKIP 77

static inline int ct_result(const char *name)
{
	if (ct_failures)
		fprintf(stderr, "%s: %d check(s) failed\n", name, ct_failures);
	else
		printf("%s: ok\n", name);
	return ct_failures ? 1 : 0;
}

#endif
