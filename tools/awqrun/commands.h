/* Sub-commands of the awqrun CLI; each lives in its own cmd_*.c file. Each returns the process exit
 * status (0 ok, 1 error after printing a one-line message to stderr, 2 usage error). */
#ifndef AWQ_COMMANDS_H
#define AWQ_COMMANDS_H

#include <stddef.h>

int awq_cmd_bench(int argc, char **argv);
int awq_cmd_caps(int argc, char **argv); /* device capabilities and predicted speed */
int awq_cmd_compare(int argc, char **argv);
int awq_cmd_default(int argc, char **argv); /* `awqrun` with no model: machine summary + quick bench */
int awq_cmd_run(int argc, char **argv);        /* text generation: awqrun [run] -m DIR -p PROMPT */
int awq_cmd_perplexity(int argc, char **argv); /* sliding-window perplexity of a text file */

/* The whole file, NUL-terminated (len: bytes before the NUL; may be NULL); -1 if unreadable. */
int awq_cli_read_file(const char *path, char **out, size_t *len);

#endif
