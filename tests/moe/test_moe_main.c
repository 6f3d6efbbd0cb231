/* MoE tests: routing and expert kernels against references, the loader on good and broken MoE
 * checkpoints, and a model run that proves decode reads only the selected experts. */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "moe_test.h"

int mt_failures;
static uint64_t rng = 0x2545f4914f6cdd1dull;
static char root[512];

uint32_t mt_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 24);
}

float mt_frand(void)
{
	float f = (float)(mt_rand() % 2000001) / 1000000.0f - 1.0f;
	return f == 0.0f ? 0.25f : f;
}

void mt_newdir(const char *name, char *out, size_t outlen)
{
	static int n;
	snprintf(out, outlen, "%s/%02d-", root, n++);
	size_t len = strlen(out);
	for (const char *p = name; *p && len + 1 < outlen; p++)
		out[len++] = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ? *p : '_';
	out[len] = '\0';
	if (mkdir(out, 0700) != 0) {
		perror(out);
		exit(1);
	}
}

double mt_err(const float *a, const float *b, size_t n, int rms)
{
	double mx = 0, scale = 0;
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(a[i]))
			return INFINITY;
		double d = fabs((double)a[i] - b[i]);
		mx = d > mx ? d : mx;
		scale = rms ? scale + (double)b[i] * b[i] : fmax(scale, fabs(b[i]));
	}
	if (rms)
		scale = sqrt(scale / (double)n);
	return mx / (scale > 0 ? scale : 1);
}

static void remove_tree(const char *dir)
{
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "warning: could not remove %s\n", dir);
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(root, sizeof(root), "%s/awq_moe_XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
	if (!mkdtemp(root)) {
		perror("mkdtemp");
		return 1;
	}
	mt_kernel_cases();
	mt_loader_cases();
	mt_model_cases();
	remove_tree(root);
	if (mt_failures) {
		fprintf(stderr, "%d MoE check(s) failed\n", mt_failures);
		return 1;
	}
	printf("MoE tests passed\n");
	return 0;
}
