/* Test weights built by hand (struct awq_weight of core/model.h): freeing their malloc'ed buffers and
 * poisoning them with NaN, shared by the MoE kernel tests of the CPU and CUDA backends. */
#ifndef AWQ_TEST_WEIGHTS_H
#define AWQ_TEST_WEIGHTS_H

#include <stdint.h>
#include <stdlib.h>

#include "model.h"

#define AWQ_TEST_NAN_F16 0x7e00u
#define AWQ_TEST_NAN_BF16 0x7fc0u

static inline void awq_test_free_weight(struct awq_weight *w)
{
	free((void *)w->data);
	free((void *)w->qweight);
	free((void *)w->qzeros);
	free((void *)w->scales);
}

/* NaN in every weight of w (AWQ: every scale), so any read of it reaches the output. */
static inline void awq_test_poison_weight(struct awq_weight *w)
{
	if (w->fmt == AWQ_WFMT_AWQ4) {
		for (int64_t i = 0; i < w->k / w->group_size * w->n; i++)
			((uint16_t *)w->scales)[i] = AWQ_TEST_NAN_F16;
	} else {
		for (int64_t i = 0; i < w->n * w->k; i++)
			((uint16_t *)w->data)[i] = w->dtype == AWQ_DT_BF16 ? AWQ_TEST_NAN_BF16 : AWQ_TEST_NAN_F16;
	}
}

#endif
