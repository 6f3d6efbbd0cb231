/* Sessions: one model's graph on one backend device, with its KV cache. The executor hands the whole
 * graph to the backend once (prepare) and then runs it per step. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "awqrun_caps.h"
#include "awqrun_text.h"
#include "env.h"
#include "error.h"
#include "graph.h"
#include "model.h"

struct awq_session {
	awq_model *model;
	struct awq_graph graph;
	const struct awq_backend_ops *ops;
	void *ctx;
	int max_ctx, max_batch, threads;
	int chained_steps; /* the last decode's steps run in the backend's chain (awq_session_info) */
	char backend[16];
	char device[128];
	float *topk_row; /* awq_session_eval_topk's row where the backend does not select (vocab floats) */
};

#ifndef AWQ_VERSION_STRING
#define AWQ_VERSION_STRING "0.0.0"
#endif

const char *awq_version(void)
{
	return AWQ_VERSION_STRING;
}

void awq_session_opts_default(struct awq_session_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->backend = "auto";
	o->device = -1;
}

static void note(const struct awq_session_opts *o, const char *fmt, const char *a, const char *b)
{
	if (!o->quiet) {
		fprintf(stderr, "awqrun: ");
		fprintf(stderr, fmt, a, b);
		fputc('\n', stderr);
	}
}

/* Open backend `name` on its device and prepare the graph; returns 0 or a status. */
static int open_backend(struct awq_session *s, const char *name, const struct awq_session_opts *o,
			char *err, size_t errlen)
{
	struct awq_device_desc devs[16];
	struct awq_backend_opts bo = {.threads = o->threads, .cpu_scalar = o->cpu_scalar, .quiet = o->quiet};
	struct awq_prepare_opts po = {.max_tokens = s->max_batch, .max_ctx = s->max_ctx};
	char why[AWQ_ERRLEN] = "";
	int rc = awq_backend_find(name, &s->ops, err, errlen);
	if (rc)
		return rc;
	int n = s->ops->probe(devs, 16, why, sizeof(why));
	if (n <= 0)
		return awq_err(err, errlen, n < 0 ? n : AWQ_ENODEV, "the %s backend has no usable device: %s", name,
			       why[0] ? why : "none found");
	int dev = o->device < 0 ? 0 : o->device;
	if (dev >= n)
		return awq_err(err, errlen, AWQ_ENODEV, "the %s backend has %d device(s); device %d does not exist", name,
			       n, dev);
	rc = s->ops->open(dev, &bo, &s->ctx, err, errlen);
	if (rc)
		return rc;
	for (int i = 0; i < s->graph.n_nodes && !rc; i++) {
		const struct awq_node *nd = &s->graph.nodes[i];
		if (s->ops->supports(s->ctx, &s->graph, nd) != 1)
			rc = awq_err(err, errlen, AWQ_EUNSUPPORTED, "the %s backend does not run %s (%s%s)", name,
				     awq_op_name(nd->op), nd->w ? "weight " : "value ",
				     nd->w ? nd->w->name : s->graph.values[nd->out].name);
	}
	if (!rc)
		rc = s->ops->prepare(s->ctx, &s->graph, &po, err, errlen);
	if (rc) {
		s->ops->close(s->ctx);
		s->ctx = NULL;
		return rc;
	}
	snprintf(s->backend, sizeof(s->backend), "%s", name);
	snprintf(s->device, sizeof(s->device), "%s", devs[dev].name);
	return 0;
}

int awq_session_create(awq_model *m, const struct awq_session_opts *opts, awq_session **out, char *err,
		       size_t errlen)
{
	struct awq_session_opts o;
	struct awq_session *s;
	int rc;

	if (opts)
		o = *opts;
	else
		awq_session_opts_default(&o);
	if (!o.backend)
		o.backend = "auto";
	if (o.max_ctx < 0 || o.max_batch < 0 || o.threads < 0)
		return awq_err(err, errlen, AWQ_EINVAL, "context, batch and thread counts must not be negative");
	s = calloc(1, sizeof(*s));
	if (!s)
		return awq_err(err, errlen, AWQ_ENOMEM, "out of memory creating a session");
	s->model = m;
	s->max_ctx = o.max_ctx ? o.max_ctx : (m->cfg.max_pos > 0 && m->cfg.max_pos < 4096 ? m->cfg.max_pos : 4096);
	if (m->cfg.max_pos > 0 && s->max_ctx > m->cfg.max_pos && !o.max_ctx)
		s->max_ctx = m->cfg.max_pos;
	s->max_batch = o.max_batch ? o.max_batch : 512;
	if (s->max_batch > s->max_ctx)
		s->max_batch = s->max_ctx;
	rc = awq_build_graph(m, &s->graph, err, errlen);
	if (rc) {
		free(s);
		return rc;
	}
	if (strcmp(o.backend, "auto") == 0) {
		char choice[16], reason[AWQ_ERRLEN];
		/* the planner (capability/planner.c) is the one place that decides */
		rc = awq_plan_backend(m, s->max_ctx, choice, sizeof(choice), reason, sizeof(reason), err, errlen);
		if (rc == 0) {
			note(&o, "--backend auto chose %s: %s", choice, reason);
			rc = open_backend(s, choice, &o, err, errlen);
			if (rc && strcmp(choice, "cpu") != 0) {
				note(&o, "%s failed (%s); using the CPU", choice, err);
				rc = open_backend(s, "cpu", &o, err, errlen);
			}
		}
	} else {
		rc = open_backend(s, o.backend, &o, err, errlen);
		if (rc == AWQ_EUNSUPPORTED && strcmp(o.backend, "cpu") != 0) {
			/* An op the backend lacks runs on the CPU, visibly: here the whole graph moves. */
			note(&o, "%s; running the whole model on the CPU backend instead%s", err, "");
			rc = open_backend(s, "cpu", &o, err, errlen);
		}
	}
	if (rc) {
		awq_graph_free(&s->graph);
		free(s);
		return rc;
	}
	s->threads = o.threads;
	*out = s;
	return 0;
}

void awq_session_free(awq_session *s)
{
	if (!s)
		return;
	if (s->ops && s->ctx)
		s->ops->close(s->ctx);
	awq_graph_free(&s->graph);
	free(s->topk_row);
	free(s);
}

/* Run tokens in chunks of at most max_batch; all_rows copies every row's logits. */
static int eval_chunks(awq_session *s, const int32_t *tokens, int n, int pos, int all_rows, float *logits,
		       int32_t *next, char *err, size_t errlen)
{
	const struct awq_config *c = &s->model->cfg;
	if (!tokens || n <= 0)
		return awq_err(err, errlen, AWQ_EINVAL, "nothing to evaluate (no tokens)");
	if (pos < 0 || (long long)pos + n > s->max_ctx)
		return awq_err(err, errlen, AWQ_ETOOBIG,
			       "positions %d..%d exceed the context of %d tokens (raise --ctx or shorten the input)", pos,
			       pos + n - 1, s->max_ctx);
	for (int i = 0; i < n; i++)
		if (tokens[i] < 0 || tokens[i] >= c->vocab)
			return awq_err(err, errlen, AWQ_EINVAL, "token id %d at index %d is outside the vocabulary (%d)",
				       tokens[i], i, c->vocab);
	for (int done = 0; done < n;) {
		int chunk = n - done < s->max_batch ? n - done : s->max_batch;
		int last = done + chunk == n;
		struct awq_step step = {.n_tokens = chunk, .pos = pos + done, .all_rows = all_rows != 0};
		int rc = s->ops->write_value(s->ctx, s->graph.tokens_in, tokens + done, chunk, err, errlen);
		if (!rc)
			rc = s->ops->run(s->ctx, &step, err, errlen);
		if (!rc && logits && (all_rows || last)) {
			float *dst = logits + (all_rows ? (size_t)done * (size_t)c->vocab : 0);
			int rows = all_rows ? chunk : 1;
			rc = s->ops->read_value(s->ctx, s->graph.logits_out, dst, rows, err, errlen);
		}
		if (!rc && next && last) {
			int32_t ids[1];
			if (all_rows)
				return awq_err(err, errlen, AWQ_EINVAL, "greedy evaluation takes only the last row");
			rc = s->ops->read_value(s->ctx, s->graph.argmax_out, ids, 1, err, errlen);
			*next = ids[0];
		}
		if (rc)
			return rc;
		done += chunk;
	}
	return 0;
}

int awq_session_eval(awq_session *s, const int32_t *tokens, int n, int pos, int all_rows, float *logits,
		     char *err, size_t errlen)
{
	return eval_chunks(s, tokens, n, pos, all_rows, logits, NULL, err, errlen);
}

int awq_session_eval_greedy(awq_session *s, const int32_t *tokens, int n, int pos, int32_t *next, char *err,
			    size_t errlen)
{
	if (!next)
		return awq_err(err, errlen, AWQ_EINVAL, "greedy evaluation needs somewhere to put the token");
	if (s->graph.argmax_out < 0)
		return awq_err(err, errlen, AWQ_EUNSUPPORTED, "this model's graph has no argmax output");
	return eval_chunks(s, tokens, n, pos, 0, NULL, next, err, errlen);
}

int awq_session_eval_topk(awq_session *s, const int32_t *tokens, int n, int pos, int k, int32_t *ids, float *vals,
			  char *err, size_t errlen)
{
	const int V = s->model->cfg.vocab;
	if (!ids || !vals)
		return awq_err(err, errlen, AWQ_EINVAL, "top-k evaluation needs somewhere to put the candidates");
	if (k < 1 || k > AWQ_TOPK_MAX || k > V)
		return awq_err(err, errlen, AWQ_EINVAL, "top-k of %d candidates: need 1..%d and at most the vocabulary (%d)",
			       k, AWQ_TOPK_MAX, V);
	int rc, evaluated = 0;
	if (s->ops->read_topk && awq_env_int("AWQ_DEVICE_TOPK", 1, 0, 1)) {
		if ((rc = eval_chunks(s, tokens, n, pos, 0, NULL, NULL, err, errlen)))
			return rc;
		rc = s->ops->read_topk(s->ctx, s->graph.logits_out, k, ids, vals, err, errlen);
		if (rc != AWQ_EUNSUPPORTED)
			return rc;
		evaluated = 1; /* the backend cannot select on this value: read its row */
		if (errlen)
			err[0] = 0;
	}
	if (!s->topk_row && !(s->topk_row = malloc((size_t)V * sizeof(float))))
		return awq_err(err, errlen, AWQ_ENOMEM, "out of memory for a row of logits");
	if (evaluated)
		rc = s->ops->read_value(s->ctx, s->graph.logits_out, s->topk_row, 1, err, errlen);
	else
		rc = eval_chunks(s, tokens, n, pos, 0, s->topk_row, NULL, err, errlen);
	if (rc)
		return rc;
	awq_topk_select(s->topk_row, V, k, ids);
	for (int i = 0; i < k; i++)
		vals[i] = s->topk_row[ids[i]];
	return 0;
}

/* What every decode run checks before its first step: a step count, the positions, the first token. */
static int decode_args_ok(const awq_session *s, int32_t first, int pos, int n, char *err, size_t errlen)
{
	const struct awq_config *c = &s->model->cfg;
	if (n <= 0)
		return awq_err(err, errlen, AWQ_EINVAL, "nothing to decode (%d steps)", n);
	if (pos < 0 || (long long)pos + n > s->max_ctx)
		return awq_err(err, errlen, AWQ_ETOOBIG,
			       "positions %d..%d exceed the context of %d tokens (raise --ctx or decode fewer)", pos,
			       pos + n - 1, s->max_ctx);
	if (first < 0 || first >= c->vocab)
		return awq_err(err, errlen, AWQ_EINVAL, "token id %d is outside the vocabulary (%d)", first, c->vocab);
	return 0;
}

/* The backend's chain where it has one (AWQ_DECODE_CHAIN=0: none, for A/B runs); AWQ_EUNSUPPORTED,
 * with err cleared, where the core runs the steps itself. */
static int backend_chain(awq_session *s, int32_t first, struct awq_chain *ch, char *err, size_t errlen)
{
	if (!s->ops->decode_chain || !awq_env_int("AWQ_DECODE_CHAIN", 1, 0, 1))
		return AWQ_EUNSUPPORTED;
	int rc = s->ops->write_value(s->ctx, s->graph.tokens_in, &first, 1, err, errlen);
	if (!rc)
		rc = s->ops->decode_chain(s->ctx, ch, err, errlen);
	if (rc == AWQ_EUNSUPPORTED && errlen)
		err[0] = 0;
	return rc;
}

int awq_session_decode_greedy(awq_session *s, int32_t first, int pos, int n, int (*on_token)(void *user, int32_t id),
			      void *user, int *steps, char *err, size_t errlen)
{
	int done = 0, rc;
	if (steps)
		*steps = 0;
	if (s->graph.argmax_out < 0)
		return awq_err(err, errlen, AWQ_EUNSUPPORTED, "this model's graph has no argmax output");
	if ((rc = decode_args_ok(s, first, pos, n, err, errlen)))
		return rc;
	struct awq_chain ch = {.pos = pos, .n = n, .on_token = on_token, .user = user};
	s->chained_steps = 0;
	if ((rc = backend_chain(s, first, &ch, err, errlen)) != AWQ_EUNSUPPORTED) {
		s->chained_steps = ch.steps;
		if (steps)
			*steps = ch.steps;
		return rc;
	}
	rc = 0;
	for (int32_t tok = first; done < n;) {
		if ((rc = awq_session_eval_greedy(s, &tok, 1, pos + done, &tok, err, errlen)))
			break;
		done++;
		if (on_token && on_token(user, tok))
			break;
	}
	if (steps)
		*steps = done;
	return rc;
}

int awq_session_decode_sampled(awq_session *s, struct awq_sampler *smp, int32_t first, int pos, int n,
			       int (*on_token)(void *user, int32_t id), void *user, int *steps, char *err, size_t errlen)
{
	int done = 0, rc;
	if (steps)
		*steps = 0;
	if (!smp || !awq_sampler_topk_only(smp) || smp->vocab != s->model->cfg.vocab)
		return awq_err(err, errlen, AWQ_EINVAL,
			       "sampled decoding takes top-k sampling (temperature > 0, top-k 1..%d below the vocabulary) "
			       "without a repetition penalty, over the model's vocabulary",
			       AWQ_TOPK_MAX);
	if ((rc = decode_args_ok(s, first, pos, n, err, errlen)))
		return rc;
	const int k = smp->o.top_k;
	struct awq_chain_sample cs = {
		.inv_t = 1.0f / smp->o.temperature, .top_p = smp->o.top_p, .min_p = smp->o.min_p, .top_k = k};
	memcpy(cs.rng, smp->rng, sizeof(cs.rng));
	struct awq_chain ch = {.pos = pos, .n = n, .on_token = on_token, .user = user, .sample = &cs};
	s->chained_steps = 0;
	if (s->graph.argmax_out >= 0 && (rc = backend_chain(s, first, &ch, err, errlen)) != AWQ_EUNSUPPORTED) {
		/* one draw per token delivered: the host's stream continues where they end */
		for (int i = 0; i < ch.steps; i++)
			awq_rng_next(smp->rng);
		s->chained_steps = ch.steps;
		if (steps)
			*steps = ch.steps;
		return rc;
	}
	rc = 0;
	int32_t ids[AWQ_TOPK_MAX];
	float vals[AWQ_TOPK_MAX];
	for (int32_t tok = first; done < n;) {
		if ((rc = awq_session_eval_topk(s, &tok, 1, pos + done, k, ids, vals, err, errlen)))
			break;
		tok = awq_sampler_sample_topk(smp, ids, vals, k);
		done++;
		if (on_token && on_token(user, tok))
			break;
	}
	if (steps)
		*steps = done;
	return rc;
}

int awq_session_sync(awq_session *s, char *err, size_t errlen)
{
	return s->ops->sync(s->ctx, err, errlen);
}

int awq_session_get_info(const awq_session *s, struct awq_session_info *info)
{
	struct awq_backend_info bi = {0};
	memset(info, 0, sizeof(*info));
	s->ops->info(s->ctx, &bi);
	info->backend = s->backend;
	info->device = bi.device ? bi.device : s->device;
	info->kernels = bi.kernels ? bi.kernels : "";
	info->max_ctx = s->max_ctx;
	info->max_batch = s->max_batch;
	info->threads = s->threads;
	info->device_bytes = bi.device_bytes;
	info->weight_bytes = bi.weight_bytes;
	info->kv_bytes = bi.kv_bytes;
	info->act_bytes = bi.act_bytes;
	info->chained_steps = s->chained_steps;
	return 0;
}

int awq_session_bandwidth(awq_session *s, double *gbs, char *err, size_t errlen)
{
	if (!s->ops->bandwidth)
		return awq_err(err, errlen, AWQ_EUNSUPPORTED, "the %s backend cannot measure its bandwidth", s->backend);
	return s->ops->bandwidth(s->ctx, gbs, err, errlen);
}
