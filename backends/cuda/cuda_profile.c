/* AWQ_CUDA_PROFILE=1: where a decode step's time goes. Single-token steps then run without the CUDA
 * graph: a hold kernel keeps the stream busy while the host queues every node with an event after
 * it, so the events time the GPU alone (each node's kernels plus the launch gap before them), not
 * the host's launch rate. Steps whose hold ended before the queue was full are not counted and the
 * hold grows. The report (per node kind and for the nodes of layer 1) goes to stderr when the
 * context is released. Graph replay saves part of each gap, so the sum is an upper bound on the
 * step time of the captured graph: compare with the tg figure of a run without profiling. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"
#include "error.h"

struct cu_profile {
	cudaEvent_t *ev; /* n_nodes + 1 */
	double *us;      /* per node, summed over counted steps */
	int n_ev, steps, late;
	unsigned hold_us;
};

int awq_cu_profile_init(struct cu_ctx *c)
{
	const char *e = getenv("AWQ_CUDA_PROFILE");
	if (!e || e[0] != '1' || !c->g)
		return 0;
	int n = c->g->n_nodes;
	struct cu_profile *p = calloc(1, sizeof(*p));
	if (!p)
		return -1;
	p->ev = calloc((size_t)n + 1, sizeof(*p->ev));
	p->us = calloc((size_t)n, sizeof(*p->us));
	p->hold_us = 20000;
	p->n_ev = n + 1;
	c->prof = p;
	if (!p->ev || !p->us)
		return -1;
	for (int i = 0; i <= n; i++)
		if (cudaEventCreate(&p->ev[i]) != cudaSuccess)
			return -1;
	return 0;
}

int awq_cu_run_profiled(struct cu_ctx *c, const struct awq_step *step, char *err, size_t errlen)
{
	struct cu_profile *p = c->prof;
	const struct awq_graph *g = c->g;
	cudaError_t e = awq_cu_hold(c->stream, p->hold_us);
	if (e == cudaSuccess)
		e = cudaEventRecord(p->ev[0], c->stream);
	if (e != cudaSuccess)
		return awq_cu_fail(err, errlen, e, "profile hold");
	c->x16_val[0] = c->x16_val[1] = -1;
	for (int i = 0; i < g->n_nodes; i++) {
		if (c->nodes[i].exec == CU_X_SKIP)
			continue;
		int rc = awq_cu_run_node(c, i, step, err, errlen);
		if (rc)
			return rc;
		if ((e = cudaEventRecord(p->ev[i + 1], c->stream)) != cudaSuccess)
			return awq_cu_fail(err, errlen, e, "profile event");
	}
	int late = cudaEventQuery(p->ev[0]) == cudaSuccess;
	if ((e = cudaStreamSynchronize(c->stream)) != cudaSuccess)
		return awq_cu_fail(err, errlen, e, "profiled step");
	if (late) {
		p->late++;
		if (p->hold_us < 400000)
			p->hold_us *= 2;
		return 0;
	}
	int prev = 0;
	for (int i = 0; i < g->n_nodes; i++) {
		if (c->nodes[i].exec == CU_X_SKIP)
			continue;
		float ms = 0.f;
		if ((e = cudaEventElapsedTime(&ms, p->ev[prev], p->ev[i + 1])) != cudaSuccess)
			return awq_cu_fail(err, errlen, e, "profile elapsed time");
		p->us[i] += 1000.0 * ms;
		prev = i + 1;
	}
	p->steps++;
	return 0;
}

/* The kind of work a node does, as reported: op, fused variant and weight format. */
static void node_kind(const struct cu_ctx *c, int i, char *buf, size_t len)
{
	const struct awq_node *n = &c->g->nodes[i];
	const struct cu_node *cn = &c->nodes[i];
	const struct cu_weight *w = cn->w >= 0 ? &c->wts[cn->w] : NULL;
	const char *fmt = !w ? "" : w->kind == CU_W_Q4 ? " q4" : w->kind == CU_W_D16 ? (w->is_bf16 ? " bf16" : " f16") : "";
	const char *what = awq_op_name(n->op);
	if (cn->exec == CU_X_GATE_UP)
		what = "gate/up+silu";
	else if (cn->exec == CU_X_QKV)
		what = "q/k/v";
	else if (cn->exec == CU_X_ADD_NORM)
		what = "add+rmsnorm", fmt = "";
	else if (n->op == AWQ_OP_RMSNORM || n->op == AWQ_OP_EMBED)
		fmt = "";
	snprintf(buf, len, "%s%s", what, fmt);
}

void awq_cu_profile_report(struct cu_ctx *c)
{
	struct cu_profile *p = c->prof;
	if (!p || !c->g || (!p->steps && !p->late))
		return;
	const struct awq_graph *g = c->g;
	fprintf(stderr, "cuda profile: %d single-token steps timed (%d not counted: queue not ahead of the GPU)\n",
		p->steps, p->late);
	if (!p->steps)
		return;
	char (*kinds)[40] = calloc((size_t)g->n_nodes, sizeof(*kinds));
	double *sum = calloc((size_t)g->n_nodes, sizeof(double));
	int *cnt = calloc((size_t)g->n_nodes, sizeof(int)), nk = 0, launched = 0;
	if (!kinds || !sum || !cnt)
		goto out;
	double total = 0;
	for (int i = 0; i < g->n_nodes; i++) {
		if (c->nodes[i].exec == CU_X_SKIP)
			continue;
		char k[40];
		node_kind(c, i, k, sizeof(k));
		int j = 0;
		while (j < nk && strcmp(kinds[j], k))
			j++;
		if (j == nk)
			snprintf(kinds[nk++], sizeof(kinds[0]), "%s", k);
		sum[j] += p->us[i] / p->steps;
		cnt[j]++;
		total += p->us[i] / p->steps;
		launched++;
	}
	fprintf(stderr, "cuda profile: %.1f us per step over %d nodes (events between nodes, no graph)\n", total,
		launched);
	fprintf(stderr, "  %-22s %6s %10s %9s %6s\n", "node kind", "nodes", "us/step", "us/node", "share");
	for (int j = 0; j < nk; j++)
		fprintf(stderr, "  %-22s %6d %10.1f %9.2f %5.1f%%\n", kinds[j], cnt[j], sum[j], sum[j] / cnt[j],
			100.0 * sum[j] / total);
	fprintf(stderr, "  nodes of layer 1:\n");
	for (int i = 0; i < g->n_nodes; i++) {
		const char *name = g->values[g->nodes[i].out].name;
		if (c->nodes[i].exec == CU_X_SKIP || strncmp(name, "l1.", 3))
			continue;
		char k[40];
		node_kind(c, i, k, sizeof(k));
		fprintf(stderr, "    %-20s %-22s %8.2f us\n", name, k, p->us[i] / p->steps);
	}
out:
	free(kinds);
	free(sum);
	free(cnt);
}

void awq_cu_profile_free(struct cu_ctx *c)
{
	struct cu_profile *p = c->prof;
	if (!p)
		return;
	if (p->ev)
		for (int i = 0; i < p->n_ev; i++)
			if (p->ev[i])
				cudaEventDestroy(p->ev[i]);
	free(p->ev);
	free(p->us);
	free(p);
	c->prof = NULL;
}
