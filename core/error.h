/* Error reporting: every failing function fills a caller-supplied buffer with one sentence. */
#ifndef AWQ_ERROR_H
#define AWQ_ERROR_H

#include <stddef.h>

#include "awqrun.h"

/* awq_err and AWQ_PRINTF are public (awqrun.h); this header stays for the core's own includes. */

#endif
