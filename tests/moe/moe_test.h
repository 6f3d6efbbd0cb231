/* Shared pieces of the MoE test program. */
#ifndef AWQ_MOE_TEST_H
#define AWQ_MOE_TEST_H

#include <stdint.h>
#include <stdio.h>

#include "awq_test.h"
#include "model.h"

extern int mt_failures;

#define CHECK(cond, ...) AWQ_CHECK(mt_failures, cond, __VA_ARGS__)

/* Uniform in [-1, 1), never exactly 0. */
float mt_frand(void);
uint32_t mt_rand(void);
/* A fresh directory under the test's temporary root. */
void mt_newdir(const char *name, char *out, size_t outlen);
/* max |a - b| relative to max |b| (rms: to the RMS of b); +inf when a has a non-finite value. */
double mt_err(const float *a, const float *b, size_t n, int rms);

void mt_kernel_cases(void);
void mt_loader_cases(void);
void mt_model_cases(void);

#endif
