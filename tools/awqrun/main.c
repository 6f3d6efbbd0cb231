/* awqrun: command-line front end. `awqrun SUBCOMMAND ...`; with no subcommand, options go to the
 * generation command when -m is given and to the built-in default (machine summary and a short
 * AWQ-vs-BF16 benchmark) otherwise. */
#include <stdio.h>
#include <string.h>

#include "awqrun.h"
#include "commands.h"

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
};

static const struct command commands[] = {
	{"bench", awq_cmd_bench, "prefill/decode tokens/s for a model or a synthetic shape"},
	{"caps", awq_cmd_caps, "what each device can do and how fast models would run there, with why"},
	{"compare", awq_cmd_compare, "bench results of several devices/machines side by side (+ SVG chart)"},
	{"default", awq_cmd_default, "machine summary and a short synthetic AWQ vs BF16 benchmark"},
	{"perplexity", awq_cmd_perplexity, "perplexity of a model on a text file (sliding window)"},
	{"run", awq_cmd_run, "generate text: awqrun [run] -m DIR -p PROMPT (chat template, sampling, -i)"},
};

static void usage(void)
{
	printf("awqrun %s: inference for 4-bit AWQ and 16-bit LLM checkpoints\n\n", awq_version());
	printf("usage: awqrun [--backend auto|cpu|cuda|vulkan]    (no model: machine summary + quick bench)\n");
	printf("       awqrun COMMAND [options]   (awqrun COMMAND --help for its options)\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		printf("  %-12s %s\n", commands[i].name, commands[i].help);
}

static const struct command *find(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		usage();
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
		printf("awqrun %s\n", awq_version());
		return 0;
	}
	if (argc >= 2 && argv[1][0] != '-') {
		const struct command *c = find(argv[1]);
		if (!c) {
			fprintf(stderr, "awqrun: unknown command '%s' (awqrun --help lists them)\n", argv[1]);
			return 2;
		}
		return c->fn(argc - 1, argv + 1);
	}
	/* Options only: generation when a model is named, the built-in default otherwise. */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-m") == 0 || strcmp(argv[i], "--model") == 0) {
			const struct command *run = find("run");
			if (!run) {
				fprintf(stderr, "awqrun: text generation is not built into this version\n");
				return 2;
			}
			return run->fn(argc, argv);
		}
	}
	return awq_cmd_default(argc, argv);
}
