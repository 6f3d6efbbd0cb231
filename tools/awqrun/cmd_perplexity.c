/* `awqrun perplexity -m DIR -f FILE [--ctx 512] [--stride N]`: perplexity of the model on a text
 * file by the sliding-window method of Hugging Face's perplexity guide: windows of --ctx tokens
 * start every --stride tokens, and each window scores only the tokens the previous window did not
 * (every token gets as much context as the window allows; the first token, which nothing
 * predicts, is never scored). PPL = exp(mean negative log-likelihood per scored token), with the
 * log-softmax in double precision. Comparing AWQ against BF16 checkpoints of one model on the
 * same text and settings measures what the quantization costs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "awqrun.h"
#include "clock.h"
#include "commands.h"
#include "awqrun_text.h"

#define CHUNK 64 /* rows of logits fetched per eval call */

static void usage(void)
{
	printf("usage: awqrun perplexity -m DIR -f FILE [options]\n"
	       "  --ctx N        window length in tokens (default 512)\n"
	       "  --stride N     tokens between window starts (default: --ctx / 2)\n"
	       "  --max-tokens N score only the first N tokens of the file (default: all)\n"
	       "  --backend NAME auto, cpu, cuda, vulkan (default auto)\n"
	       "  --device N, -t N  device index; CPU threads\n");
}

/* -log softmax(row)[target] in double precision. */
static double nll(const float *row, int vocab, int32_t target)
{
	double max = row[0], sum = 0;
	for (int i = 1; i < vocab; i++)
		max = row[i] > max ? row[i] : max;
	for (int i = 0; i < vocab; i++)
		sum += exp((double)row[i] - max);
	return log(sum) + max - (double)row[target];
}

/* Score targets [lo, end) of the window [begin, end): row r predicts token begin + r + 1. */
static int score_window(awq_session *s, const int32_t *ids, int begin, int end, int lo, int vocab, float *logits,
			double *sum, char *err, size_t errlen)
{
	for (int at = begin; at < end - 1; at += CHUNK) {
		int n = end - 1 - at < CHUNK ? end - 1 - at : CHUNK;
		/* rows for positions at..at+n-1; tokens before lo are evaluated only as context */
		int wanted = at + n >= lo;
		int rc = awq_session_eval(s, ids + at, n, at - begin, 1, wanted ? logits : NULL, err, errlen);
		if (rc)
			return rc;
		if (!wanted)
			continue;
		for (int r = 0; r < n; r++) {
			int target = at + r + 1;
			if (target >= lo)
				*sum += nll(logits + (size_t)r * (size_t)vocab, vocab, ids[target]);
		}
	}
	return 0;
}

int awq_cmd_perplexity(int argc, char **argv)
{
	const char *dir = NULL, *file = NULL, *backend = "auto";
	int ctx = 512, stride = 0, threads = 0, device = -1, max_tokens = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage();
			return 0;
		}
		if (!v) {
			fprintf(stderr, "awqrun: unknown option or missing value: %s (awqrun perplexity --help)\n", a);
			return 2;
		}
		i++;
		if (!strcmp(a, "-m") || !strcmp(a, "--model"))
			dir = v;
		else if (!strcmp(a, "-f") || !strcmp(a, "--file"))
			file = v;
		else if (!strcmp(a, "--backend"))
			backend = v;
		else if (!strcmp(a, "--ctx") || !strcmp(a, "-c"))
			ctx = atoi(v);
		else if (!strcmp(a, "--stride"))
			stride = atoi(v);
		else if (!strcmp(a, "--max-tokens"))
			max_tokens = atoi(v);
		else if (!strcmp(a, "-t") || !strcmp(a, "--threads"))
			threads = atoi(v);
		else if (!strcmp(a, "--device"))
			device = atoi(v);
		else {
			fprintf(stderr, "awqrun: unknown option %s (awqrun perplexity --help)\n", a);
			return 2;
		}
	}
	if (!dir || !file) {
		fprintf(stderr, "awqrun: perplexity needs -m MODEL_DIR and -f TEXT_FILE\n");
		return 2;
	}
	if (!stride)
		stride = ctx / 2 > 0 ? ctx / 2 : 1;
	if (ctx < 2 || stride < 1 || stride > ctx || max_tokens < 0) {
		fprintf(stderr, "awqrun: need --ctx >= 2 and 1 <= --stride <= --ctx\n");
		return 2;
	}

	char err[AWQ_ERRLEN] = "", *text = NULL;
	size_t len = 0;
	awq_tokenizer *tok = NULL;
	awq_model *model = NULL;
	awq_session *sess = NULL;
	int32_t *ids = NULL;
	float *logits = NULL;
	int n = 0, rc = awq_tokenizer_load(dir, &tok, err, sizeof(err));
	if (!rc && awq_cli_read_file(file, &text, &len))
		rc = awq_err(err, sizeof(err), AWQ_EIO, "%s: cannot read it", file);
	if (!rc) /* like the guide's tokenizer(text): the tokenizer's own special tokens included */
		rc = awq_tokenizer_encode(tok, text, len, 1, &ids, &n, err, sizeof(err));
	if (!rc && max_tokens && n > max_tokens)
		n = max_tokens;
	if (!rc && n < 2)
		rc = awq_err(err, sizeof(err), AWQ_EINVAL, "%s: fewer than 2 tokens, nothing to score", file);
	if (!rc)
		rc = awq_model_load(dir, &model, err, sizeof(err));
	struct awq_model_info mi;
	if (!rc) {
		struct awq_session_opts so;
		awq_session_opts_default(&so);
		so.backend = backend;
		so.device = device;
		so.max_ctx = ctx;
		so.threads = threads;
		awq_model_get_info(model, &mi);
		rc = awq_session_create(model, &so, &sess, err, sizeof(err));
	}
	if (!rc && !(logits = malloc((size_t)CHUNK * (size_t)mi.vocab * sizeof(float))))
		rc = awq_err(err, sizeof(err), AWQ_ENOMEM, "out of memory for %d rows of logits", CHUNK);
	double sum = 0;
	long scored = 0;
	int windows = 0;
	double t0 = awq_now_s();
	for (int begin = 0, prev_end = 0; !rc && begin < n; begin += stride) {
		int end = begin + ctx < n ? begin + ctx : n;
		int lo = prev_end > begin + 1 ? prev_end : begin + 1;
		rc = score_window(sess, ids, begin, end, lo, mi.vocab, logits, &sum, err, sizeof(err));
		scored += end - lo;
		windows++;
		prev_end = end;
		if (!rc && windows % 16 == 0)
			fprintf(stderr, "\r[%d/%d tokens] ppl %.4f", end, n, exp(sum / (double)scored));
		if (end == n)
			break;
	}
	double t1 = awq_now_s();
	if (!rc) {
		double secs = t1 - t0;
		struct awq_session_info si;
		awq_session_get_info(sess, &si);
		if (windows >= 16)
			fprintf(stderr, "\n");
		printf("perplexity: %.6f  (%ld tokens scored of %d, %d windows of --ctx %d, --stride %d; mean NLL %.6f)\n",
		       exp(sum / (double)scored), scored, n, windows, ctx, stride, sum / (double)scored);
		fprintf(stderr, "[awqrun: %s %s, %.1f s, %.1f tok/s evaluated]\n", si.backend, mi.precision, secs,
			secs > 0 ? (double)n / secs : 0);
	} else {
		fprintf(stderr, "awqrun: %s\n", err);
	}
	free(logits);
	free(ids);
	free(text);
	awq_session_free(sess);
	awq_model_free(model);
	awq_tokenizer_free(tok);
	return rc ? 1 : 0;
}
