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
