#include "error.h"

#include <stdarg.h>
#include <stdio.h>

/* Messages quote file contents (tensor names, tokens, config strings): control characters there
 * would break the one-line promise, so the formatted text is copied into err with them written as
 * \n, \t, \r or \xNN; what no longer fits is cut. */
int awq_err(char *err, size_t errlen, int code, const char *fmt, ...)
{
	if (!err || !errlen)
		return code;
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	size_t o = 0;
	for (const unsigned char *c = (const unsigned char *)msg; *c; c++) {
		char esc[5] = {(char)*c, 0};
		if (*c == '\n' || *c == '\t' || *c == '\r')
			snprintf(esc, sizeof(esc), "\\%c", *c == '\n' ? 'n' : *c == '\t' ? 't' : 'r');
		else if (*c < 0x20 || *c == 0x7f)
			snprintf(esc, sizeof(esc), "\\x%02x", *c);
		size_t k = 0;
		while (esc[k])
			k++;
		if (o + k > errlen - 1)
			break;
		for (size_t i = 0; i < k; i++)
			err[o++] = esc[i];
	}
	err[o] = '\0';
	return code;
}
