/* Loader tests: writes small valid and invalid checkpoints into a temporary directory and checks
 * what awq_model_load (and the config / safetensors parsers) make of each. */
#define _XOPEN_SOURCE 700

#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tl.h"

int tl_failures;
static char root[512];
static unsigned seed_counter = 1;

void tl_newdir(const char *name, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s/%s", root, name);
	if (mkdir(out, 0700) != 0) {
		perror(out);
		exit(1);
	}
}

void ck_init(struct ck *c, const char *name, const char *arch, int awq)
{
	memset(c, 0, sizeof(*c));
	spec_default(&c->s, arch);
	c->s.awq = awq;
	tw_init(&c->w, seed_counter++);
	tl_newdir(name, c->dir, sizeof(c->dir));
}

void ck_build(struct ck *c)
{
	c->cfg = spec_config(&c->s);
	spec_tensors(&c->s, &c->w);
}

void ck_write(struct ck *c)
{
	if (spec_write(&c->s, c->cfg, &c->w, c->dir)) {
		fprintf(stderr, "cannot write checkpoint in %s\n", c->dir);
		exit(1);
	}
}

void ck_free(struct ck *c)
{
	cJSON_Delete(c->cfg);
	tw_free(&c->w);
}

void tl_expect_fail(const char *what, const char *dir, int code, const char *s1, const char *s2)
{
	char err[AWQ_ERRLEN];
	static int poison;
	memset(err, 'Z', sizeof(err));
	err[sizeof(err) - 1] = '\0';
	awq_model *m = (awq_model *)&poison;
	int rc = awq_model_load(dir, &m, err, sizeof(err));
	CHECK(rc < 0, "%s: loaded but should fail", what);
	CHECK(code == 0 || rc == code, "%s: status %d, expected %d (%s)", what, rc, code, err);
	CHECK(m == NULL, "%s: output model not cleared", what);
	CHECK(strchr(err, '\n') == NULL && strchr(err, 'Z') != err, "%s: bad message '%s'", what,
	      err);
	CHECK(strstr(err, s1) != NULL, "%s: message '%s' lacks '%s'", what, err, s1);
	CHECK(!s2 || strstr(err, s2) != NULL, "%s: message '%s' lacks '%s'", what, err, s2);
	if (rc == 0)
		awq_model_free(m);
	printf("ok   %-34s %s\n", what, err);
}

awq_model *tl_load_ok(const char *what, const char *dir)
{
	char err[AWQ_ERRLEN] = "";
	static int poison;
	awq_model *m = (awq_model *)&poison;
	int rc = awq_model_load(dir, &m, err, sizeof(err));
	CHECK(rc == 0 && m != NULL && m != (awq_model *)&poison, "%s: load failed: %s", what, err);
	if (rc == 0)
		printf("ok   %-34s loaded (%s)\n", what, m->precision);
	return rc == 0 && m != (awq_model *)&poison ? m : NULL;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(root, sizeof(root), "%s/awq-loader-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
	if (!mkdtemp(root)) {
		perror("mkdtemp");
		return 1;
	}
	tl_valid_cases();
	tl_config_cases();
	tl_bad_header_cases();
	tl_bad_model_cases();
	nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	if (tl_failures) {
		fprintf(stderr, "%d check(s) failed\n", tl_failures);
		return 1;
	}
	printf("all loader checks passed\n");
	return 0;
}
