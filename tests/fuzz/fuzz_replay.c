/* Runs each fuzz target over its committed seed corpus and over deterministic mutations of it, so
 * builds without libFuzzer (gcc CI) exercise the same code. Usage: fuzz_replay CORPUS_DIR [N]
 * (N mutations per target, default 4000). */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_targets.h"

#define MAX_SEEDS 64
#define MAX_SEED_BYTES (1u << 20)

struct seed {
	uint8_t *data;
	size_t size;
};

static uint64_t rng = 0x243f6a8885a308d3ull;

static uint32_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 11);
}

static int load_seeds(const char *dir, struct seed *s, int *n)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char *names[MAX_SEEDS];
	int count = 0;
	if (!d) {
		perror(dir);
		return -1;
	}
	while ((e = readdir(d)) && count < MAX_SEEDS)
		if (e->d_name[0] != '.')
			names[count++] = strdup(e->d_name);
	closedir(d);
	/* readdir order depends on the file system; sort so mutations are reproducible */
	for (int i = 1; i < count; i++)
		for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
			char *t = names[j];
			names[j] = names[j - 1];
			names[j - 1] = t;
		}
	*n = 0;
	for (int i = 0; i < count; i++) {
		char path[2048];
		int plen = snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		free(names[i]);
		FILE *f = plen > 0 && (size_t)plen < sizeof(path) ? fopen(path, "rb") : NULL;
		uint8_t *buf = malloc(MAX_SEED_BYTES);
		size_t len = (f && buf) ? fread(buf, 1, MAX_SEED_BYTES, f) : 0;
		if (f)
			fclose(f);
		if (!buf || !len) {
			free(buf);
			continue;
		}
		s[*n].data = buf;
		s[(*n)++].size = len;
	}
	return *n ? 0 : -1;
}

static const char *const tokens[] = {
	"0", "-1", "1e400", "18446744073709551616", "9007199254740993", "4294967296", "null",
	"true", "\"F32\"", "\"I32\"", "[]", "{}", "[0, 0]", "\"__metadata__\"", "\\u0000", "\"\"",
	"\xff", "\"architectures\"", "\"quantization_config\"", "2.5",
};

/* One random edit of buf (capacity cap) in place; returns the new size. */
static size_t mutate_once(uint8_t *buf, size_t size, size_t cap)
{
	size_t at = size ? next() % size : 0;
	switch (next() % 7) {
	case 0: /* flip a bit */
		if (size)
			buf[at] ^= (uint8_t)(1u << (next() % 8));
		return size;
	case 1: /* structural byte */
		if (size)
			buf[at] = (uint8_t)"{}[],:\"0 9-"[next() % 11];
		return size;
	case 2: { /* delete a range */
		size_t n = size ? 1 + next() % (size - at < 16 ? size - at : 16) : 0;
		memmove(buf + at, buf + at + n, size - at - n);
		return size - n;
	}
	case 3: { /* insert a token */
		const char *t = tokens[next() % (sizeof(tokens) / sizeof(tokens[0]))];
		size_t n = strlen(t);
		if (size + n > cap)
			return size;
		memmove(buf + at + n, buf + at, size - at);
		memcpy(buf + at, t, n);
		return size + n;
	}
	case 4: /* lie about the safetensors header length */
		if (size >= 8) {
			uint64_t v = next() % 3 ? (uint64_t)next() % (size + 16) : ~0ull >> (next() % 64);
			for (int i = 0; i < 8; i++)
				buf[i] = (uint8_t)(v >> (8 * i));
		}
		return size;
	case 5: /* truncate */
		return at;
	default: { /* copy a chunk from elsewhere over this spot */
		size_t from = size ? next() % size : 0, n = 1 + next() % 12;
		if (from + n > size || at + n > size)
			return size;
		memmove(buf + at, buf + from, n);
		return size;
	}
	}
}

static long run_target(const char *name, int (*fn)(const uint8_t *, size_t), const char *dir,
		       long mutations)
{
	struct seed seeds[MAX_SEEDS];
	int n;
	if (load_seeds(dir, seeds, &n)) {
		fprintf(stderr, "%s: no seeds in %s\n", name, dir);
		return -1;
	}
	size_t cap = 0;
	long seeds_ok = 0, mutants_ok = 0;
	for (int i = 0; i < n; i++) {
		seeds_ok += fn(seeds[i].data, seeds[i].size);
		cap = seeds[i].size + 256 > cap ? seeds[i].size + 256 : cap;
	}
	uint8_t *buf = malloc(cap);
	for (long m = 0; buf && m < mutations; m++) {
		const struct seed *s = &seeds[m % n];
		size_t size = s->size;
		memcpy(buf, s->data, size);
		for (int k = 1 + (int)(next() % 4); k > 0; k--)
			size = mutate_once(buf, size, cap);
		/* an exact-size copy so reads past the end are caught by ASan / valgrind */
		uint8_t *exact = malloc(size ? size : 1);
		if (!exact)
			break;
		memcpy(exact, buf, size);
		mutants_ok += fn(exact, size);
		free(exact);
	}
	free(buf);
	for (int i = 0; i < n; i++)
		free(seeds[i].data);
	printf("%s: %d seeds (%ld accepted), %ld mutations (%ld accepted)\n", name, n, seeds_ok,
	       mutations, mutants_ok);
	/* a target that rejects every seed, or every mutant, no longer reaches the code behind
	 * the first checks: the corpus or the target is broken */
	if (!seeds_ok || (mutations >= 100 && !mutants_ok)) {
		fprintf(stderr, "%s: too few inputs accepted\n", name);
		return -1;
	}
	return n;
}

/* Each target with its corpus folder; a tokenizer.json mutant builds a whole vocabulary, so that
 * target gets an eighth of the mutations. */
static const struct {
	const char *name;
	int (*fn)(const uint8_t *, size_t);
	int divisor;
} targets[] = {
	{"safetensors", awq_fuzz_safetensors, 1},
	{"config", awq_fuzz_config, 1},
	{"tokenizer_json", awq_fuzz_tokenizer_json, 8},
	{"text", awq_fuzz_tokenize, 1},
	{"chat", awq_fuzz_chat, 1},
};

int main(int argc, char **argv)
{
	char dir[1024];
	long mutations = argc > 2 ? atol(argv[2]) : 4000;
	if (argc < 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR [MUTATIONS]\n", argv[0]);
		return 2;
	}
	for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
		snprintf(dir, sizeof(dir), "%s/%s", argv[1], targets[i].name);
		if (run_target(targets[i].name, targets[i].fn, dir, mutations / targets[i].divisor) < 0)
			return 1;
	}
	return 0;
}
