/* Reading a whole file for the command line (prompts, perplexity text, bench JSON). */
#include <stdio.h>
#include <stdlib.h>

#include "commands.h"

int awq_cli_read_file(const char *path, char **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	size_t n = 0, cap = 1 << 16;
	char *s = malloc(cap);
	if (!f || !s) {
		if (f)
			fclose(f);
		free(s);
		return -1;
	}
	for (size_t got; (got = fread(s + n, 1, cap - n - 1, f)) > 0;) {
		n += got;
		if (cap - n < 2) {
			char *ns = realloc(s, cap *= 2);
			if (!ns) {
				free(s);
				fclose(f);
				return -1;
			}
			s = ns;
		}
	}
	int failed = ferror(f);
	fclose(f);
	if (failed) {
		free(s);
		return -1;
	}
	s[n] = 0;
	*out = s;
	if (len)
		*len = n;
	return 0;
}
