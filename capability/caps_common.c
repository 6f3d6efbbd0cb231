/* Helpers every probe shares: record initialisation and the names of formats and sources. No
 * dependencies beyond libc, so each probe file plus this one builds on its own. */
#include <stdio.h>
#include <string.h>

#include "caps_internal.h"

static const char *const mfmt_names[AWQ_MF_COUNT] = {
	"fp32", "fp16", "fp16-fp32acc", "bf16", "tf32", "fp8", "int8", "int4", "fp4",
};

const char *awq_mfmt_name(enum awq_mfmt f)
{
	return (unsigned)f < AWQ_MF_COUNT ? mfmt_names[f] : "?";
}

const char *awq_src_name(enum awq_src s)
{
	static const char *const names[] = {"none", "api", "measured", "database", "arch-rule", "computed", "host"};
	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

void awq_caps_init(struct awq_device_caps *d, const char *backend, int index)
{
	memset(d, 0, sizeof(*d));
	snprintf(d->backend, sizeof(d->backend), "%s", backend);
	d->index = index;
	d->cuda.cc_major = d->cuda.cc_minor = -1;
	for (int i = 0; i < AWQ_MF_COUNT; i++)
		d->native[i] = -1;
}
