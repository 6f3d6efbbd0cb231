/* `awqrun run -m DIR -p PROMPT` (also `awqrun -m DIR -p PROMPT`): text generation with the model's
 * tokenizer and chat template, streamed to stdout as complete UTF-8 characters, and a closing line
 * on stderr with token counts, prefill and decode speed and peak memory. `-i` keeps a multi-turn
 * chat going on one KV cache. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "awqrun.h"
#include "awqrun_text.h"
#include "clock.h"
#include "commands.h"

#define MAX_STOP 8

struct run_opts {
	const char *dir, *prompt, *prompt_file, *system, *backend;
	const char *stop[MAX_STOP];
	int n_stop;
	int chat;     /* -1 = default (chat when the tokenizer has a known template) */
	int thinking; /* -1 = the template's default */
	int n_predict, ctx, threads, device, interactive, print_ids;
	struct awq_sampler_opts s;
	int seed_given;
	unsigned sampling_given; /* AWQ_GEN_* bits of the options on the command line */
	int no_gen_config;       /* --no-gen-config: awqrun's defaults, not generation_config.json's */
};

/* Everything one generation needs, kept across turns in interactive mode. */
struct gen {
	awq_tokenizer *tok;
	awq_session *sess;
	struct awq_sampler sampler;
	struct awq_chat chat;
	int use_chat, vocab, ctx, greedy_on_device;
	int32_t stop_ids[16];
	int n_stop_ids;
	int32_t *hist; /* every token in the context; hist[0..n_past) are in the KV cache */
	int n_hist, n_past, cap;
	float *logits;
	/* top-k sampling (or greedy with a penalty of 1 or more) needs only the row's best sample_topk
	 * logits (awq_sampler_candidates_needed; awq_session_eval_topk selects them on the device where
	 * the backend can); 0: the whole row. sample_chain: no penalty, so a reply's steps run as one
	 * awq_session_decode_sampled (drawn on the device where the backend can) */
	int sample_topk, sample_chain;
	int32_t topk_ids[AWQ_TOPK_MAX];
	float topk_vals[AWQ_TOPK_MAX];
	/* statistics over the whole run */
	int n_prompt, n_gen;
	double t_prefill, t_decode;
	int n_decode_evals;
};

static void usage(void)
{
	printf("usage: awqrun [run] -m DIR (-p PROMPT | -f FILE | -i) [options]\n"
	       "  -m, --model DIR      Hugging Face checkpoint with tokenizer.json\n"
	       "  -p, --prompt TEXT    prompt (the first user message with -i)\n"
	       "  -f, --file FILE      read the prompt from FILE\n"
	       "  -i, --interactive    multi-turn chat on one KV cache (empty line or EOF ends it)\n"
	       "  --chat / --no-chat   format with the model's chat template (default when it has one) or raw\n"
	       "  --system TEXT        system message (chat)\n"
	       "  --think / --no-think Qwen3 thinking switch (enable_thinking); default: the template's\n"
	       "  -n N                 tokens to generate (default -1: until end of turn or the context is full)\n"
	       "  sampling defaults are the model's generation_config.json values where it has them (as vLLM),\n"
	       "  else these; --no-gen-config ignores the file\n"
	       "  --temp T             temperature, 0 = greedy (default 0.8)\n"
	       "  --top-k K            (default 40, 0 = off)    --top-p P (default 0.95)\n"
	       "  --min-p P            (default 0.05, 0 = off)  --repeat-penalty R (default 1.0 = off)\n"
	       "  --repeat-last-n N    tokens the penalty looks back at (default 64, 0 = all)\n"
	       "  --seed N             random seed (default: from the clock, printed at the end)\n"
	       "  --stop STR           stop when STR is generated (repeatable)\n"
	       "  --ctx N              context length in tokens (default min(model max, 4096))\n"
	       "  --backend NAME       auto, cpu, cuda, vulkan (default auto)\n"
	       "  --device N, -t N     device index; CPU threads\n"
	       "  --print-token-ids    print the generated token ids to stderr at the end (one prompt)\n");
}

static int parse_num(const char *opt, const char *v, double lo, double hi, double *out)
{
	char *end;
	double d = strtod(v, &end);
	if (end == v || *end || !(d >= lo && d <= hi)) {
		fprintf(stderr, "awqrun: %s needs a number in [%g, %g], not '%s'\n", opt, lo, hi, v);
		return -1;
	}
	*out = d;
	return 0;
}

static int parse_args(int argc, char **argv, struct run_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->chat = o->thinking = -1;
	o->n_predict = -1;
	o->device = -1;
	o->backend = "auto";
	awq_sampler_opts_default(&o->s);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		double d, glo = 0, ghi = 0;
#define NUM(lo, hi) (v ? (i++, parse_num(a, v, lo, hi, &d)) : (fprintf(stderr, "awqrun: %s needs a value\n", a), -1))
/* a sampling option: the range the sampler and generation_config.json use */
#define GEN_NUM(bit) (awq_sampling_range(bit, &glo, &ghi), NUM(glo, ghi))
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage();
			return 1;
		} else if (!strcmp(a, "-i") || !strcmp(a, "--interactive")) {
			o->interactive = 1;
		} else if (!strcmp(a, "--chat") || !strcmp(a, "--no-chat")) {
			o->chat = a[2] == 'c';
		} else if (!strcmp(a, "--think") || !strcmp(a, "--no-think")) {
			o->thinking = a[2] == 't';
		} else if (!strcmp(a, "--print-token-ids")) {
			o->print_ids = 1;
		} else if (!v) {
			fprintf(stderr, "awqrun: unknown option or missing value: %s (awqrun run --help)\n", a);
			return -1;
		} else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
			o->dir = argv[++i];
		} else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
			o->prompt = argv[++i];
		} else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
			o->prompt_file = argv[++i];
		} else if (!strcmp(a, "--system")) {
			o->system = argv[++i];
		} else if (!strcmp(a, "--backend")) {
			o->backend = argv[++i];
		} else if (!strcmp(a, "--stop")) {
			if (o->n_stop == MAX_STOP || !*v) {
				fprintf(stderr, "awqrun: --stop takes a non-empty string, at most %d times\n", MAX_STOP);
				return -1;
			}
			o->stop[o->n_stop++] = argv[++i];
		} else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
			if (NUM(-1, 1e9))
				return -1;
			o->n_predict = (int)d;
		} else if (!strcmp(a, "--ctx") || !strcmp(a, "-c")) {
			if (NUM(1, 1e7))
				return -1;
			o->ctx = (int)d;
		} else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
			if (NUM(0, 4096))
				return -1;
			o->threads = (int)d;
		} else if (!strcmp(a, "--device")) {
			if (NUM(0, 64))
				return -1;
			o->device = (int)d;
		} else if (!strcmp(a, "--temp")) {
			o->sampling_given |= AWQ_GEN_TEMPERATURE;
			if (GEN_NUM(AWQ_GEN_TEMPERATURE))
				return -1;
			o->s.temperature = (float)d;
		} else if (!strcmp(a, "--top-k")) {
			o->sampling_given |= AWQ_GEN_TOP_K;
			if (GEN_NUM(AWQ_GEN_TOP_K))
				return -1;
			o->s.top_k = (int)d;
		} else if (!strcmp(a, "--top-p")) {
			o->sampling_given |= AWQ_GEN_TOP_P;
			if (GEN_NUM(AWQ_GEN_TOP_P))
				return -1;
			o->s.top_p = (float)d;
		} else if (!strcmp(a, "--min-p")) {
			o->sampling_given |= AWQ_GEN_MIN_P;
			if (GEN_NUM(AWQ_GEN_MIN_P))
				return -1;
			o->s.min_p = (float)d;
		} else if (!strcmp(a, "--repeat-penalty")) {
			o->sampling_given |= AWQ_GEN_REPEAT_PENALTY;
			if (GEN_NUM(AWQ_GEN_REPEAT_PENALTY))
				return -1;
			o->s.repeat_penalty = (float)d;
		} else if (!strcmp(a, "--repeat-last-n")) {
			if (NUM(0, 1e9))
				return -1;
			o->s.repeat_last_n = (int)d;
		} else if (!strcmp(a, "--no-gen-config")) {
			o->no_gen_config = 1;
		} else if (!strcmp(a, "--seed")) {
			if (NUM(0, 1.8e19))
				return -1;
			o->s.seed = (uint64_t)d;
			o->seed_given = 1;
		} else {
			fprintf(stderr, "awqrun: unknown option %s (awqrun run --help)\n", a);
			return -1;
		}
#undef NUM
	}
	if (!o->dir) {
		fprintf(stderr, "awqrun: run needs -m MODEL_DIR (awqrun run --help)\n");
		return -1;
	}
	if (!o->prompt && !o->prompt_file && !o->interactive) {
		fprintf(stderr, "awqrun: give a prompt with -p TEXT or -f FILE, or chat with -i\n");
		return -1;
	}
	if (!o->seed_given)
		o->s.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	return 0;
}

static int hist_append(struct gen *g, const int32_t *ids, int n)
{
	if (g->n_hist + n > g->cap) {
		int cap = (g->n_hist + n) * 2 + 64;
		int32_t *h = realloc(g->hist, (size_t)cap * sizeof(*h));
		if (!h)
			return -1;
		g->hist = h;
		g->cap = cap;
	}
	memcpy(g->hist + g->n_hist, ids, (size_t)n * sizeof(*ids));
	g->n_hist += n;
	return 0;
}

/* Evaluate the tokens not yet in the cache; the next token's logits (or its argmax) result. */
static int eval_pending(struct gen *g, int32_t *greedy, char *err, size_t errlen)
{
	int n = g->n_hist - g->n_past, rc = AWQ_EUNSUPPORTED;
	if (g->greedy_on_device)
		rc = awq_session_eval_greedy(g->sess, g->hist + g->n_past, n, g->n_past, greedy, err, errlen);
	if (rc == AWQ_EUNSUPPORTED && g->greedy_on_device) {
		/* a graph without a device argmax: greedy over the full logits row instead */
		struct awq_sampler_opts o;
		awq_sampler_opts_default(&o);
		o.temperature = 0;
		g->greedy_on_device = 0;
		if (!(g->logits = malloc((size_t)g->vocab * sizeof(float))))
			return awq_err(err, errlen, AWQ_ENOMEM, "out of memory for the logits");
		if ((rc = awq_sampler_init(&g->sampler, &o, g->vocab, err, errlen)))
			return rc;
	}
	if (!g->greedy_on_device && g->sample_topk)
		rc = awq_session_eval_topk(g->sess, g->hist + g->n_past, n, g->n_past, g->sample_topk, g->topk_ids,
					   g->topk_vals, err, errlen);
	else if (!g->greedy_on_device)
		rc = awq_session_eval(g->sess, g->hist + g->n_past, n, g->n_past, 0, g->logits, err, errlen);
	if (!rc)
		g->n_past = g->n_hist;
	return rc;
}

/* The next token from the last evaluation's logits or top-k candidates. */
static int32_t sample_next(struct gen *g)
{
	if (g->sample_topk)
		return awq_sampler_sample_candidates(&g->sampler, g->topk_ids, g->topk_vals, g->sample_topk, g->hist,
						     g->n_hist);
	return awq_sampler_sample(&g->sampler, g->logits, g->hist, g->n_hist);
}

static int is_stop_id(const struct gen *g, int32_t id)
{
	for (int i = 0; i < g->n_stop_ids; i++)
		if (g->stop_ids[i] == id)
			return 1;
	return 0;
}

/* Longest suffix of s (length n) that is a prefix of a stop string: held back until it resolves. */
static size_t held_back(const struct run_opts *o, const char *s, size_t n)
{
	size_t best = 0;
	for (int k = 0; k < o->n_stop; k++) {
		size_t ls = strlen(o->stop[k]);
		for (size_t l = ls - 1 < n ? ls - 1 : n; l > best; l--)
			if (memcmp(s + n - l, o->stop[k], l) == 0) {
				best = l;
				break;
			}
	}
	return best;
}

/* Streamed text goes out as soon as no stop string can still begin in it. Returns 1 when a stop
 * string was found (the text before it is printed, the rest dropped), -1 when out of memory. */
static int print_piece(const struct run_opts *o, char **text, size_t *tn, char *piece)
{
	size_t pl = piece ? strlen(piece) : 0;
	char *nt = realloc(*text, *tn + pl + 1);
	if (!nt) {
		free(piece);
		return -1;
	}
	*text = nt;
	memcpy(nt + *tn, piece ? piece : "", pl + 1);
	*tn += pl;
	free(piece);
	int stopped = 0;
	for (int k = 0; k < o->n_stop && !stopped; k++) {
		char *at = strstr(nt, o->stop[k]);
		if (at) {
			*tn = (size_t)(at - nt);
			stopped = 1;
		}
	}
	size_t keep = stopped ? 0 : held_back(o, nt, *tn);
	fwrite(nt, 1, *tn - keep, stdout);
	fflush(stdout);
	memmove(nt, nt + *tn - keep, keep);
	*tn = keep;
	return stopped;
}

/* The state of one reply's generated text while its tokens arrive. */
struct reply {
	struct gen *g;
	const struct run_opts *o;
	struct awq_detok d;
	char *text; /* generated but held back (stop-string look-ahead) */
	size_t tn;
	int produced, stopped, rc;
	char *err;
	size_t errlen;
};

/* One generated token: appended, streamed; 1 when the reply ends with it (a stop id, which is not
 * kept, a stop string, -n reached, the context full, or an error in r->rc). */
static int take(struct reply *r, int32_t next)
{
	struct gen *g = r->g;
	char *piece = NULL;
	if (is_stop_id(g, next))
		return 1;
	if (hist_append(g, &next, 1)) {
		r->rc = AWQ_ENOMEM;
		return 1;
	}
	r->produced++;
	g->n_gen++;
	if ((r->rc = awq_detok_push(&r->d, next, &piece, r->err, r->errlen)))
		return 1;
	if (piece && (r->stopped = print_piece(r->o, &r->text, &r->tn, piece)) < 0)
		r->rc = AWQ_ENOMEM;
	return r->stopped || r->rc || (r->o->n_predict >= 0 && r->produced >= r->o->n_predict) || g->n_hist >= g->ctx;
}

/* A token of the greedy chain: the step that made it evaluated the last token taken. */
static int take_chained(void *user, int32_t id)
{
	struct reply *r = user;
	r->g->n_past++;
	r->g->n_decode_evals++;
	return take(r, id);
}

/* One reply: prefill what is pending, then sample, stream and evaluate until a stop. Greedy decoding
 * on the device runs as one chain of steps (awq_session_decode_greedy), which keeps the next step
 * queued on the device while a token is printed. */
static int generate(struct gen *g, const struct run_opts *o, int prompt_tokens, char *err, size_t errlen)
{
	struct reply r = {.g = g, .o = o, .err = err, .errlen = errlen};
	char *piece = NULL;
	int32_t next = 0;
	int rc, stopped;
	double t0 = awq_now_s();
	if (g->n_hist >= g->ctx)
		return awq_err(err, errlen, AWQ_ETOOBIG,
			       "the prompt has %d tokens but the context holds %d (at least one more is needed to "
			       "generate); raise --ctx or shorten the prompt", g->n_hist, g->ctx);
	if ((rc = eval_pending(g, &next, err, errlen)))
		return rc;
	g->t_prefill += awq_now_s() - t0;
	g->n_prompt += prompt_tokens;
	if (o->n_predict == 0)
		return 0;
	awq_detok_init(&r.d, g->tok, 1);
	double t1 = awq_now_s();
	if (g->greedy_on_device || g->sample_chain) {
		/* the first token from the prefill's argmax or top-k, then the rest as one run */
		if (!g->greedy_on_device)
			next = sample_next(g);
		if (!take(&r, next)) {
			/* the steps left: each evaluates the last token taken at the next position */
			int n = g->ctx - g->n_past;
			if (o->n_predict >= 0 && o->n_predict - r.produced < n)
				n = o->n_predict - r.produced;
			rc = g->greedy_on_device
				     ? awq_session_decode_greedy(g->sess, next, g->n_past, n, take_chained, &r, NULL, err, errlen)
				     : awq_session_decode_sampled(g->sess, &g->sampler, next, g->n_past, n, take_chained, &r,
								  NULL, err, errlen);
		}
	} else {
		while (!take(&r, sample_next(g))) {
			if ((rc = eval_pending(g, &next, err, errlen)))
				break;
			g->n_decode_evals++;
		}
	}
	if (!rc)
		rc = r.rc;
	stopped = r.stopped;
	/* characters still incomplete at the end come out as U+FFFD, as the library decodes them */
	if (!rc && !stopped && !(rc = awq_detok_flush(&r.d, &piece, err, errlen)) && piece &&
	    print_piece(o, &r.text, &r.tn, piece) < 0)
		rc = AWQ_ENOMEM;
	if (!stopped)
		fwrite(r.text ? r.text : "", 1, r.tn, stdout); /* a partial stop string that never completed */
	fflush(stdout);
	free(r.text);
	awq_detok_free(&r.d);
	g->t_decode += awq_now_s() - t1;
	if (!rc && g->n_hist >= g->ctx && o->interactive)
		fprintf(stderr, "\nawqrun: the context of %d tokens is full\n", g->ctx);
	if (rc == AWQ_ENOMEM && !err[0])
		awq_err(err, errlen, rc, "out of memory while generating");
	return rc;
}

static int encode_append(struct gen *g, const char *text, int add_special, int *count, char *err, size_t errlen)
{
	int32_t *ids;
	int n;
	int rc = awq_tokenizer_encode(g->tok, text, strlen(text), add_special, &ids, &n, err, errlen);
	if (rc)
		return rc;
	rc = hist_append(g, ids, n) ? AWQ_ENOMEM : 0;
	free(ids);
	*count = n;
	return rc;
}

/* The text of the first turn: the chat-formatted conversation, or the raw prompt. */
static int first_turn(struct gen *g, const struct run_opts *o, const char *user, int *count, char *err,
		      size_t errlen)
{
	if (!g->use_chat)
		return encode_append(g, user, 1, count, err, errlen);
	struct awq_chat_msg m[2];
	int n = 0;
	char *text;
	if (o->system)
		m[n++] = (struct awq_chat_msg){"system", o->system};
	m[n++] = (struct awq_chat_msg){"user", user};
	if (awq_chat_format(&g->chat, m, n, 1, o->thinking, &text))
		return AWQ_ENOMEM;
	int rc = encode_append(g, text, 0, count, err, errlen);
	free(text);
	return rc;
}

static int next_turn(struct gen *g, const struct run_opts *o, const char *user, int *count, char *err,
		     size_t errlen)
{
	if (!g->use_chat)
		return encode_append(g, user, 0, count, err, errlen);
	char *text;
	if (awq_chat_next_turn(&g->chat, user, o->thinking, &text))
		return AWQ_ENOMEM;
	int rc = encode_append(g, text, 0, count, err, errlen);
	free(text);
	return rc;
}

static int interactive(struct gen *g, const struct run_opts *o, char *err, size_t errlen)
{
	char line[16384];
	int turn = 0, rc = 0;
	if (o->prompt) {
		int n;
		if ((rc = first_turn(g, o, o->prompt, &n, err, errlen)) || (rc = generate(g, o, n, err, errlen)))
			return rc;
		turn = 1;
		printf("\n");
	}
	for (;;) {
		fprintf(stderr, "> ");
		fflush(stderr);
		if (!fgets(line, sizeof(line), stdin))
			break;
		line[strcspn(line, "\n")] = 0;
		if (!line[0])
			break;
		int n;
		rc = turn ? next_turn(g, o, line, &n, err, errlen) : first_turn(g, o, line, &n, err, errlen);
		if (!rc)
			rc = generate(g, o, n, err, errlen);
		if (rc)
			return rc;
		printf("\n");
		turn++;
	}
	return 0;
}

static void closing_line(struct gen *g, const struct run_opts *o)
{
	struct rusage ru;
	struct awq_session_info si;
	getrusage(RUSAGE_SELF, &ru);
	awq_session_get_info(g->sess, &si);
	double pp = g->t_prefill > 0 ? g->n_prompt / g->t_prefill : 0;
	double tg = g->t_decode > 0 && g->n_decode_evals ? g->n_decode_evals / g->t_decode : 0;
	fprintf(stderr,
		"\n[awqrun: prompt %d tokens, generated %d tokens | prefill %.1f tok/s, decode %.1f tok/s | "
		"peak RSS %.1f MiB, %s device %.1f MiB",
		g->n_prompt, g->n_gen, pp, tg, ru.ru_maxrss / 1024.0, si.backend, si.device_bytes / 1048576.0);
	if (o->s.temperature > 0 && !g->greedy_on_device)
		fprintf(stderr, " | seed %llu", (unsigned long long)o->s.seed);
	fprintf(stderr, "]\n");
	if (o->print_ids) {
		int start = g->n_hist - g->n_gen;
		fprintf(stderr, "generated ids:");
		for (int i = start; i < g->n_hist; i++)
			fprintf(stderr, " %d", g->hist[i]);
		fprintf(stderr, "\n");
	}
}

static int setup(struct gen *g, struct run_opts *o, awq_model **model, char *err, size_t errlen)
{
	int rc = awq_tokenizer_load(o->dir, &g->tok, err, errlen);
	if (rc)
		return rc;
	const char *tmpl = awq_tokenizer_chat_template(g->tok);
	g->use_chat = o->chat;
	if (o->chat == -1) { /* default: chat when the template is one awqrun formats */
		char why[AWQ_ERRLEN];
		g->use_chat = tmpl && awq_chat_detect(tmpl, awq_tokenizer_bos_text(g->tok), &g->chat, why, sizeof(why)) == 0;
		if (tmpl && !g->use_chat)
			fprintf(stderr, "awqrun: note: the chat template is not one awqrun formats (ChatML or Llama-3); "
					"using the raw prompt\n");
	} else if (o->chat && (rc = awq_chat_detect(tmpl, awq_tokenizer_bos_text(g->tok), &g->chat, err, errlen))) {
		return rc;
	}
	if (!o->no_gen_config) {
		unsigned used = awq_tokenizer_sampling_defaults(g->tok, o->sampling_given, &o->s);
		if (used)
			fprintf(stderr,
				"awqrun: sampling from generation_config.json: temperature %g, top-k %d, top-p %g, min-p %g, "
				"repeat penalty %g (options on the command line win; --no-gen-config for awqrun's defaults)\n",
				o->s.temperature, o->s.top_k, o->s.top_p, o->s.min_p, o->s.repeat_penalty);
	}
	g->n_stop_ids = awq_tokenizer_stop_ids(g->tok, g->stop_ids, 15);
	if (g->use_chat) {
		int32_t eot = awq_tokenizer_token_to_id(g->tok, g->chat.end_of_turn);
		if (eot >= 0)
			g->stop_ids[g->n_stop_ids++] = eot;
	}
	if ((rc = awq_model_load(o->dir, model, err, errlen)))
		return rc;
	struct awq_model_info mi;
	awq_model_get_info(*model, &mi);
	struct awq_session_opts so;
	awq_session_opts_default(&so);
	so.backend = o->backend;
	so.device = o->device;
	so.max_ctx = o->ctx;
	so.threads = o->threads;
	if ((rc = awq_session_create(*model, &so, &g->sess, err, errlen)))
		return rc;
	struct awq_session_info si;
	awq_session_get_info(g->sess, &si);
	g->ctx = si.max_ctx;
	g->vocab = mi.vocab;
	if (awq_tokenizer_vocab_size(g->tok) > mi.vocab)
		fprintf(stderr, "awqrun: note: the tokenizer has %d tokens, the model's vocabulary %d\n",
			awq_tokenizer_vocab_size(g->tok), mi.vocab);
	g->greedy_on_device = o->s.temperature == 0 && o->s.repeat_penalty == 1.0f;
	if (!g->greedy_on_device) {
		if ((rc = awq_sampler_init(&g->sampler, &o->s, mi.vocab, err, errlen)))
			return rc;
		g->sample_topk = awq_sampler_candidates_needed(&g->sampler);
		g->sample_chain = awq_sampler_topk_only(&g->sampler);
		if (!g->sample_topk && !(g->logits = malloc((size_t)mi.vocab * sizeof(float))))
			return AWQ_ENOMEM;
	}
	return 0;
}

int awq_cmd_run(int argc, char **argv)
{
	struct run_opts o;
	struct gen g = {0};
	awq_model *model = NULL;
	char err[AWQ_ERRLEN] = "", *file_prompt = NULL;
	int rc = parse_args(argc, argv, &o);
	if (rc)
		return rc > 0 ? 0 : 2;
	if (o.prompt_file) {
		if (awq_cli_read_file(o.prompt_file, &file_prompt, NULL)) {
			fprintf(stderr, "awqrun: %s: cannot read it\n", o.prompt_file);
			return 1;
		}
		o.prompt = file_prompt;
	}
	rc = setup(&g, &o, &model, err, sizeof(err));
	if (!rc && o.interactive) {
		rc = interactive(&g, &o, err, sizeof(err));
	} else if (!rc) {
		int n;
		rc = first_turn(&g, &o, o.prompt, &n, err, sizeof(err));
		if (!rc)
			rc = generate(&g, &o, n, err, sizeof(err));
	}
	if (g.sess && (!rc || g.n_gen))
		closing_line(&g, &o);
	if (rc)
		fprintf(stderr, "awqrun: %s\n", err[0] ? err : "out of memory");
	awq_sampler_free(&g.sampler);
	free(g.logits);
	free(g.hist);
	awq_session_free(g.sess);
	awq_model_free(model);
	awq_tokenizer_free(g.tok);
	free(file_prompt);
	return rc ? 1 : 0;
}
