/* Error reporting: every failing function fills a caller-supplied buffer with one sentence. */
#ifndef AWQ_ERROR_H
#define AWQ_ERROR_H

#include <stddef.h>

#include "awqrun.h"

#if defined(__GNUC__)
#define AWQ_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define AWQ_PRINTF(a, b)
#endif

/* Format the message into err (when err is not NULL) and return code, so callers write
 * `return awq_err(err, errlen, AWQ_EFORMAT, "%s: ...", path);`. */
int awq_err(char *err, size_t errlen, int code, const char *fmt, ...) AWQ_PRINTF(4, 5);

#endif
