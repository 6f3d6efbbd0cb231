/* Shared by the test programs: a CHECK that counts a failure and says where, and reading a whole
 * file. Header only, so every test program stays one self-contained executable. */
#ifndef AWQ_TEST_H
#define AWQ_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* When cond is false: counter++, and "FAIL file:line: cond: message" on stderr. */
#define AWQ_CHECK(counter, cond, ...)                                                          \
	do {                                                                                   \
		if (!(cond)) {                                                                 \
			(counter)++;                                                           \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);         \
			fprintf(stderr, __VA_ARGS__);                                          \
			fputc('\n', stderr);                                                   \
		}                                                                              \
	} while (0)

/* A session that could not be created, as the test's exit status: "SKIP" and 77 (ctest's skip)
 * where the backend has no device (nodev: rc == AWQ_ENODEV), else "FAIL" and 1. */
static inline int awq_test_no_session(int nodev, const char *err)
{
	fprintf(nodev ? stdout : stderr, "%s: %s\n", nodev ? "SKIP" : "FAIL", err);
	return nodev ? 77 : 1;
}

/* Whether awq_session_decode_greedy (sampled = 0) or awq_session_decode_sampled (1) should run every
 * step in the backend's chain (awq_session_info.chained_steps), so that a chain quietly refused (the
 * core then runs the steps itself, with the same tokens) fails a test: on CUDA, and on Vulkan where
 * the device is lavapipe or NVIDIA's (both have what the sampled chain's shader needs), unless a knob
 * turns the chain off (AWQ_DECODE_CHAIN=0, AWQ_CUDA_NO_GRAPH=1, AWQ_CUDA_PROFILE, AWQ_VK_PROFILE,
 * AWQ_VK_SAMPLE_CHAIN=0 for sampled). AWQ_TEST_EXPECT_CHAIN=0 or 1 decides instead. */
static inline int awq_test_env_is(const char *name, const char *v)
{
	const char *e = getenv(name);
	return e && !strcmp(e, v);
}

static inline int awq_test_expect_chain(const char *backend, const char *device, int sampled)
{
	const char *ex = getenv("AWQ_TEST_EXPECT_CHAIN");
	if (ex)
		return !strcmp(ex, "1");
	const int cuda = !strcmp(backend, "cuda"), vk = !strcmp(backend, "vulkan");
	if (awq_test_env_is("AWQ_DECODE_CHAIN", "0"))
		return 0;
	if (cuda)
		return !awq_test_env_is("AWQ_CUDA_NO_GRAPH", "1") && !getenv("AWQ_CUDA_PROFILE");
	if (vk)
		return !getenv("AWQ_VK_PROFILE") && !(sampled && awq_test_env_is("AWQ_VK_SAMPLE_CHAIN", "0")) && device &&
		       (strstr(device, "llvmpipe") || strstr(device, "NVIDIA"));
	return 0;
}

/* The whole file, NUL-terminated and malloc'ed (an empty file gives ""), or NULL when it cannot be
 * read; works on pipes too. */
static inline char *awq_test_slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t len = 0, cap = 4096, k;
	char *buf = malloc(cap);
	while (buf && (k = fread(buf + len, 1, cap - len - 1, f)) > 0) {
		len += k;
		if (cap - len < 2) {
			char *nb = realloc(buf, cap *= 2);
			if (!nb)
				free(buf);
			buf = nb;
		}
	}
	if (buf && ferror(f)) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	if (buf)
		buf[len] = '\0';
	return buf;
}

/* The plugin a GPU test loads: lib (a file name) in $AWQ_PLUGIN_DIR when that is set (binaries copied
 * to another machine, as the device scripts do), else the path the build compiled in. */
static inline const char *awq_test_plugin_path(const char *lib, const char *built, char *buf, size_t len)
{
	const char *dir = getenv("AWQ_PLUGIN_DIR");
	if (!dir || !*dir || (size_t)snprintf(buf, len, "%s/%s", dir, lib) >= len)
		return built;
	return buf;
}

#endif
