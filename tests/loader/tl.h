/* Shared pieces of the loader test program. */
#ifndef AWQ_TEST_TL_H
#define AWQ_TEST_TL_H

#include <stdio.h>

#include "awqrun.h"
#include "awq_test.h"
#include "ckpt.h"
#include "model.h"

extern int tl_failures;

#define CHECK(cond, ...) AWQ_CHECK(tl_failures, cond, __VA_ARGS__)

/* A checkpoint being built: spec, config object and tensors, and its directory. */
struct ck {
	struct spec s;
	cJSON *cfg;
	struct tw w;
	char dir[1100];
};

/* Creates a fresh directory under the test's temporary root. */
void tl_newdir(const char *name, char *out, size_t outlen);
/* Sets up c with the default spec of arch (AWQ when awq); call ck_build after changing c->s. */
void ck_init(struct ck *c, const char *name, const char *arch, int awq);
void ck_build(struct ck *c);
void ck_write(struct ck *c);
void ck_free(struct ck *c);
/* Loads dir, which must fail with code (0: any negative code), leave *out NULL and give a
 * one-line message containing s1 and (when not NULL) s2. */
void tl_expect_fail(const char *what, const char *dir, int code, const char *s1, const char *s2);
/* Loads dir, which must succeed; NULL (and a counted failure) otherwise. */
awq_model *tl_load_ok(const char *what, const char *dir);

void tl_valid_cases(void);
void tl_config_cases(void);
void tl_bad_header_cases(void);
void tl_bad_model_cases(void);

#endif
