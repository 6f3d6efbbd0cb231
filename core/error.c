#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Messages quote file contents (tensor names, tokens, config strings): control characters there
 * would break the one-line promise, so they are written as \n, \t, \r or \xNN. */
static void escape_controls(char *err, size_t errlen)
{
	size_t n = strlen(err), extra = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)err[i];
		if (c < 0x20 || c == 0x7f)
			extra += c == '\n' || c == '\t' || c == '\r' ? 1 : 3;
	}
	if (!extra)
		return;
	/* shift from the end; what no longer fits is cut */
	size_t cap = errlen - 1, out = n + extra < cap ? n + extra : cap;
	char tmp[1024];
	char *buf = out < sizeof(tmp) ? tmp : NULL;
	if (!buf) { /* a very long buffer: replace in place instead */
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)err[i] < 0x20 || err[i] == 0x7f)
				err[i] = ' ';
		return;
	}
	size_t o = 0;
	for (size_t i = 0; i < n && o < out; i++) {
		unsigned char c = (unsigned char)err[i];
		char esc[5];
		size_t k;
		if (c >= 0x20 && c != 0x7f) {
			esc[0] = (char)c;
			k = 1;
		} else if (c == '\n' || c == '\t' || c == '\r') {
			esc[0] = '\\';
			esc[1] = c == '\n' ? 'n' : c == '\t' ? 't' : 'r';
			k = 2;
		} else {
			snprintf(esc, sizeof(esc), "\\x%02x", c);
			k = 4;
		}
		if (o + k > out)
			break;
		memcpy(buf + o, esc, k);
		o += k;
	}
	memcpy(err, buf, o);
	err[o] = '\0';
}

int awq_err(char *err, size_t errlen, int code, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
		escape_controls(err, errlen);
	}
	return code;
}
