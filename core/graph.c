/* Op graph construction, validation and activation-memory planning (shared by every backend). */
#include "graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

static const char *const op_names[AWQ_OP_COUNT] = {
	[AWQ_OP_EMBED] = "EMBED",         [AWQ_OP_RMSNORM] = "RMSNORM",
	[AWQ_OP_MATMUL] = "MATMUL",       [AWQ_OP_ROPE] = "ROPE",
	[AWQ_OP_ATTENTION] = "ATTENTION", [AWQ_OP_SILU_MUL] = "SILU_MUL",
	[AWQ_OP_ADD] = "ADD",             [AWQ_OP_LAST_ROWS] = "LAST_ROWS",
	[AWQ_OP_ARGMAX] = "ARGMAX",       [AWQ_OP_MOE_ROUTE] = "MOE_ROUTE",
	[AWQ_OP_MOE_EXPERTS] = "MOE_EXPERTS", [AWQ_OP_SIGMOID_MUL] = "SIGMOID_MUL",
};

const char *awq_op_name(enum awq_op op)
{
	return (unsigned)op < AWQ_OP_COUNT ? op_names[op] : "?";
}

void awq_graph_init(struct awq_graph *g)
{
	memset(g, 0, sizeof(*g));
	g->tokens_in = g->logits_out = g->argmax_out = -1;
}

void awq_graph_free(struct awq_graph *g)
{
	free(g->values);
	free(g->nodes);
	awq_graph_init(g);
}

int awq_graph_value(struct awq_graph *g, enum awq_vkind kind, int cols, const char *name)
{
	if (g->n_values == g->cap_values) {
		int cap = g->cap_values ? 2 * g->cap_values : 64;
		void *p = realloc(g->values, (size_t)cap * sizeof(*g->values));
		if (!p)
			return AWQ_ENOMEM;
		g->values = p;
		g->cap_values = cap;
	}
	struct awq_value *v = &g->values[g->n_values];
	memset(v, 0, sizeof(*v));
	v->kind = kind;
	v->cols = cols;
	snprintf(v->name, sizeof(v->name), "%s", name ? name : "");
	return g->n_values++;
}

int awq_graph_node(struct awq_graph *g, enum awq_op op, int cols, const char *name, int in0, int in1,
		   int in2, const struct awq_weight *w, const struct awq_node *params)
{
	if (g->n_nodes == g->cap_nodes) {
		int cap = g->cap_nodes ? 2 * g->cap_nodes : 64;
		void *p = realloc(g->nodes, (size_t)cap * sizeof(*g->nodes));
		if (!p)
			return AWQ_ENOMEM;
		g->nodes = p;
		g->cap_nodes = cap;
	}
	enum awq_vkind kind = op == AWQ_OP_ARGMAX ? AWQ_V_TOKENS : AWQ_V_ACT;
	int out = awq_graph_value(g, kind, cols, name);
	if (out < 0)
		return out;
	if (op == AWQ_OP_LAST_ROWS)
		g->values[out].last_rows = true;
	else if (op != AWQ_OP_EMBED && in0 >= 0 && in0 < g->n_values)
		g->values[out].last_rows = g->values[in0].last_rows;
	struct awq_node *n = &g->nodes[g->n_nodes++];
	if (params)
		*n = *params;
	else
		memset(n, 0, sizeof(*n));
	n->op = op;
	n->out = out;
	n->in[0] = in0;
	n->in[1] = in1;
	n->in[2] = in2;
	n->w = w;
	return out;
}

static int check_format(const struct awq_weight *w, enum awq_op op, char *err, size_t errlen)
{
	if (w->n <= 0 || w->k <= 0)
		return awq_err(err, errlen, AWQ_EINVAL, "weight %s has an empty shape", w->name);
	if (w->fmt == AWQ_WFMT_AWQ4) {
		if (w->group_size <= 0 || w->k % w->group_size || w->n % 8)
			return awq_err(err, errlen, AWQ_EINVAL,
				       "AWQ weight %s: group size %d must divide k=%lld and n=%lld must be a multiple of 8",
				       w->name, w->group_size, (long long)w->k, (long long)w->n);
		if (op != AWQ_OP_MATMUL && op != AWQ_OP_MOE_EXPERTS)
			return awq_err(err, errlen, AWQ_EUNSUPPORTED, "weight %s: 4-bit weights are only supported in MATMUL",
				       w->name);
	} else if (w->fmt == AWQ_WFMT_DENSE) {
		if (w->dtype != AWQ_DT_F32 && w->dtype != AWQ_DT_F16 && w->dtype != AWQ_DT_BF16)
			return awq_err(err, errlen, AWQ_EUNSUPPORTED, "weight %s: dtype %s is not a float type",
				       w->name, awq_dtype_name(w->dtype));
	} else {
		return awq_err(err, errlen, AWQ_EUNSUPPORTED, "weight %s: unknown format", w->name);
	}
	return 0;
}

static int check_weight(const struct awq_node *n, int idx, char *err, size_t errlen)
{
	if (!n->w)
		return awq_err(err, errlen, AWQ_EINVAL, "graph node %d (%s) has no weight", idx,
			       awq_op_name(n->op));
	return check_format(n->w, n->op, err, errlen);
}

static int same_kind(const struct awq_weight *a, const struct awq_weight *b)
{
	return a->fmt == b->fmt && a->n == b->n && a->k == b->k && a->group_size == b->group_size &&
	       (a->fmt != AWQ_WFMT_DENSE || a->dtype == b->dtype);
}

/* Experts of one node share format and shapes, so a backend picks one kernel for all of them:
 * gate/up [inter, hidden], down [hidden, inter]. */
static int check_experts(const struct awq_node *n, int hidden, char *err, size_t errlen)
{
	const struct awq_experts *x = n->experts;
	if (!x || x->n != n->p.moe.n_experts || x->n <= 0 || !x->gate || !x->up || !x->down)
		return awq_err(err, errlen, AWQ_EINVAL, "MOE_EXPERTS node has no experts or not %d of them",
			       n->p.moe.n_experts);
	const struct awq_weight *g0 = &x->gate[0], *d0 = &x->down[0];
	for (int e = 0; e < x->n; e++) {
		const struct awq_weight *ws[3] = {&x->gate[e], &x->up[e], &x->down[e]};
		for (int i = 0; i < 3; i++) {
			int rc = check_format(ws[i], AWQ_OP_MOE_EXPERTS, err, errlen);
			if (rc)
				return rc;
			if (!same_kind(ws[i], i == 2 ? d0 : g0))
				return awq_err(err, errlen, AWQ_EUNSUPPORTED,
					       "expert weight %s differs in format or shape from %s", ws[i]->name,
					       (i == 2 ? d0 : g0)->name);
		}
	}
	if (g0->k != hidden || d0->n != hidden || d0->k != g0->n)
		return awq_err(err, errlen, AWQ_EINVAL,
			       "experts %s/%s do not map %d hidden columns through one intermediate size",
			       g0->name, d0->name, hidden);
	return 0;
}

static int moe_params_ok(const struct awq_node *n)
{
	return n->p.moe.n_experts > 0 && n->p.moe.top_k > 0 && n->p.moe.top_k <= n->p.moe.n_experts;
}

static int value_ok(const struct awq_graph *g, int v, enum awq_vkind kind)
{
	return v >= 0 && v < g->n_values && g->values[v].kind == kind;
}

int awq_graph_check(const struct awq_graph *g, char *err, size_t errlen)
{
	if (!value_ok(g, g->tokens_in, AWQ_V_TOKENS) || !value_ok(g, g->logits_out, AWQ_V_ACT))
		return awq_err(err, errlen, AWQ_EINVAL, "graph has no token input or no logits output");
	if (g->argmax_out >= 0 && !value_ok(g, g->argmax_out, AWQ_V_TOKENS))
		return awq_err(err, errlen, AWQ_EINVAL, "graph's argmax output is not a token value");
	for (int i = 0; i < g->n_nodes; i++) {
		const struct awq_node *n = &g->nodes[i];
		const struct awq_value *out = &g->values[n->out];
		const struct awq_value *a = NULL, *b = NULL, *c = NULL;
		int rc;
		for (int j = 0; j < AWQ_MAX_IN; j++) {
			if (n->in[j] >= n->out || (n->in[j] < 0 && n->in[j] != -1))
				return awq_err(err, errlen, AWQ_EINVAL, "graph node %d (%s) input %d is not defined before it",
					       i, awq_op_name(n->op), j);
		}
		if (n->in[0] >= 0)
			a = &g->values[n->in[0]];
		if (n->in[1] >= 0)
			b = &g->values[n->in[1]];
		if (n->in[2] >= 0)
			c = &g->values[n->in[2]];
		int ok = 1;
		switch (n->op) {
		case AWQ_OP_EMBED:
			if ((rc = check_weight(n, i, err, errlen)))
				return rc;
			ok = a && a->kind == AWQ_V_TOKENS && n->w->fmt == AWQ_WFMT_DENSE && out->cols == n->w->k;
			break;
		case AWQ_OP_RMSNORM:
			if ((rc = check_weight(n, i, err, errlen)))
				return rc;
			ok = a && a->kind == AWQ_V_ACT && n->p.norm.group > 0 && a->cols % n->p.norm.group == 0 &&
			     n->w->fmt == AWQ_WFMT_DENSE && n->w->n == n->p.norm.group && out->cols == a->cols &&
			     n->p.norm.eps > 0;
			break;
		case AWQ_OP_MATMUL:
			if ((rc = check_weight(n, i, err, errlen)))
				return rc;
			ok = a && a->kind == AWQ_V_ACT && a->cols == n->w->k && out->cols == n->w->n;
			break;
		case AWQ_OP_ROPE:
			ok = a && a->kind == AWQ_V_ACT && n->p.rope.head_dim > 0 && n->p.rope.head_dim % 2 == 0 &&
			     a->cols == n->p.rope.n_heads * n->p.rope.head_dim && out->cols == a->cols &&
			     n->p.rope.rope.theta > 0;
			break;
		case AWQ_OP_ATTENTION: {
			int hq = n->p.attn.n_heads, hk = n->p.attn.n_kv_heads, d = n->p.attn.head_dim;
			ok = a && b && c && hq > 0 && hk > 0 && hq % hk == 0 && d > 0 && a->cols == hq * d &&
			     b->cols == hk * d && c->cols == hk * d && out->cols == hq * d &&
			     n->p.attn.layer >= 0 && n->p.attn.layer < g->n_kv_layers && hk == g->kv_heads &&
			     d == g->head_dim && !a->last_rows && !b->last_rows && !c->last_rows;
			break;
		}
		case AWQ_OP_SILU_MUL:
		case AWQ_OP_ADD:
			ok = a && b && a->kind == AWQ_V_ACT && b->kind == AWQ_V_ACT && a->cols == b->cols &&
			     a->last_rows == b->last_rows && out->cols == a->cols;
			break;
		case AWQ_OP_SIGMOID_MUL:
			ok = a && b && a->kind == AWQ_V_ACT && b->kind == AWQ_V_ACT && a->cols == 1 &&
			     a->last_rows == b->last_rows && out->cols == b->cols;
			break;
		case AWQ_OP_LAST_ROWS:
			ok = a && a->kind == AWQ_V_ACT && !a->last_rows && out->cols == a->cols;
			break;
		case AWQ_OP_ARGMAX:
			ok = a && a->kind == AWQ_V_ACT && out->cols == 1;
			break;
		case AWQ_OP_MOE_ROUTE:
			if ((rc = check_weight(n, i, err, errlen)))
				return rc;
			ok = a && a->kind == AWQ_V_ACT && moe_params_ok(n) && n->w->fmt == AWQ_WFMT_DENSE &&
			     n->w->k == a->cols && n->w->n == n->p.moe.n_experts && out->cols == 2 * n->p.moe.top_k;
			break;
		case AWQ_OP_MOE_EXPERTS:
			ok = a && b && a->kind == AWQ_V_ACT && b->kind == AWQ_V_ACT && moe_params_ok(n) &&
			     b->cols == 2 * n->p.moe.top_k && a->last_rows == b->last_rows && out->cols == a->cols;
			if (ok && (rc = check_experts(n, a->cols, err, errlen)))
				return rc;
			break;
		default:
			return awq_err(err, errlen, AWQ_EUNSUPPORTED, "graph node %d: op %s is not supported yet", i,
				       awq_op_name(n->op));
		}
		if (!ok)
			return awq_err(err, errlen, AWQ_EINVAL, "graph node %d (%s -> %s) has inconsistent inputs or shapes",
				       i, awq_op_name(n->op), out->name);
	}
	return 0;
}

/* Experts are distinct weights by construction, so only a repeated experts set is skipped (the
 * pairwise search below would be quadratic in their tens of thousands). */
static int add_experts(const struct awq_graph *g, int node, const struct awq_weight **list, int count)
{
	const struct awq_experts *x = g->nodes[node].experts;
	if (g->nodes[node].op != AWQ_OP_MOE_EXPERTS || !x)
		return count;
	for (int i = 0; i < node; i++)
		if (g->nodes[i].op == AWQ_OP_MOE_EXPERTS && g->nodes[i].experts == x)
			return count;
	for (int e = 0; e < x->n; e++) {
		list[count++] = &x->gate[e];
		list[count++] = &x->up[e];
		list[count++] = &x->down[e];
	}
	return count;
}

int awq_graph_weights(const struct awq_graph *g, const struct awq_weight ***out)
{
	size_t cap = (size_t)g->n_nodes + 1;
	for (int i = 0; i < g->n_nodes; i++)
		if (g->nodes[i].op == AWQ_OP_MOE_EXPERTS && g->nodes[i].experts)
			cap += 3 * (size_t)g->nodes[i].experts->n;
	const struct awq_weight **list = malloc(cap * sizeof(*list));
	int count = 0;
	if (!list)
		return AWQ_ENOMEM;
	for (int i = 0; i < g->n_nodes; i++) {
		const struct awq_weight *w = g->nodes[i].w;
		int seen = 0;
		count = add_experts(g, i, list, count);
		if (!w)
			continue;
		/* Tied weights are distinct structs with the same storage: compare the data too. */
		for (int j = 0; j < count && !seen; j++)
			seen = list[j] == w || (w->fmt == AWQ_WFMT_DENSE && w->data && list[j]->data == w->data &&
						list[j]->n == w->n && list[j]->k == w->k && list[j]->dtype == w->dtype);
		if (!seen)
			list[count++] = w;
	}
	*out = list;
	return count;
}

static size_t align64(size_t x)
{
	return (x + 63) & ~(size_t)63;
}

int *awq_graph_count_uses(const struct awq_graph *g)
{
	int *uses = calloc((size_t)g->n_values, sizeof(int));
	if (!uses)
		return NULL;
	for (int i = 0; i < g->n_nodes; i++)
		for (int j = 0; j < AWQ_MAX_IN; j++)
			if (g->nodes[i].in[j] >= 0)
				uses[g->nodes[i].in[j]]++;
	int pinned[3] = {g->tokens_in, g->logits_out, g->argmax_out};
	for (int j = 0; j < 3; j++)
		if (pinned[j] >= 0)
			uses[pinned[j]]++;
	return uses;
}

int awq_graph_producer(const struct awq_graph *g, int v)
{
	for (int i = 0; v >= 0 && i < g->n_nodes; i++)
		if (g->nodes[i].out == v)
			return i;
	return -1;
}

/* Whether the n characters at p name an op. */
static int op_named(const char *p, size_t n)
{
	for (int o = 0; o < AWQ_OP_COUNT; o++)
		if (strlen(op_names[o]) == n && !strncmp(p, op_names[o], n))
			return 1;
	return 0;
}

/* Length of the comma-separated item at p (up to the next ',' or the end). */
static size_t item_len(const char *p)
{
	const char *q = strchr(p, ',');
	return q ? (size_t)(q - p) : strlen(p);
}

const char *awq_knockout_unknown(const char *list, size_t *len)
{
	for (const char *p = list; p && *p;) {
		size_t n = item_len(p);
		if (n && !op_named(p, n)) {
			*len = n;
			return p;
		}
		p += n + (p[n] == ',');
	}
	return NULL;
}

int awq_knockout(const struct awq_graph *g, int i, int rows)
{
	static int warned, checked;
	if (rows != 1 || i < 0 || i >= g->n_nodes)
		return 0;
	const char *e = getenv("AWQ_KNOCKOUT");
	if (!e || !*e)
		return 0;
	size_t bad_len;
	const char *bad = checked ? NULL : awq_knockout_unknown(e, &bad_len);
	checked = 1;
	if (bad)
		fprintf(stderr, "awqrun: AWQ_KNOCKOUT: \"%.*s\" is not an op name (EMBED, RMSNORM, MATMUL, ...), ignored\n",
			(int)bad_len, bad);
	const char *name = awq_op_name(g->nodes[i].op);
	size_t len = strlen(name);
	for (const char *p = e; *p;) {
		size_t n = item_len(p);
		if (n == len && !strncmp(p, name, len)) {
			if (!warned) {
				fprintf(stderr, "awqrun: AWQ_KNOCKOUT=%s: those ops are left out of one-token steps "
						"(a timing experiment: the output is meaningless)\n", e);
				warned = 1;
			}
			return 1;
		}
		p += n + (p[n] == ',');
	}
	return 0;
}

int awq_graph_head_producer(const struct awq_graph *g, const int *uses, int v, enum awq_op op, int heads,
			    int head_dim)
{
	int p = v >= 0 && uses[v] == 1 ? awq_graph_producer(g, v) : -1;
	if (p < 0 || g->nodes[p].op != op)
		return -1;
	const struct awq_node *n = &g->nodes[p];
	if (op == AWQ_OP_ROPE)
		return n->p.rope.n_heads == heads && n->p.rope.head_dim == head_dim ? p : -1;
	if (op == AWQ_OP_RMSNORM)
		return n->p.norm.group == head_dim && g->values[n->out].cols == heads * head_dim ? p : -1;
	return -1;
}

bool awq_graph_gate_up_pair(const struct awq_graph *g, const int *uses, int k, int *gate, int *up)
{
	const struct awq_node *s = &g->nodes[k];
	if (s->op != AWQ_OP_SILU_MUL || s->in[0] < 0 || s->in[1] < 0 || uses[s->in[0]] != 1 || uses[s->in[1]] != 1)
		return false;
	*gate = awq_graph_producer(g, s->in[0]);
	*up = awq_graph_producer(g, s->in[1]);
	if (*gate < 0 || *up < 0)
		return false;
	const struct awq_node *a = &g->nodes[*gate], *b = &g->nodes[*up];
	return a->op == AWQ_OP_MATMUL && b->op == AWQ_OP_MATMUL && a->in[0] == b->in[0];
}

int awq_graph_plan(const struct awq_graph *g, int max_rows, size_t elem_size, size_t *offsets,
		   size_t *arena_bytes, char *err, size_t errlen)
{
	return awq_graph_plan_live(g, max_rows, elem_size, NULL, NULL, offsets, arena_bytes, err, errlen);
}

int awq_graph_plan_live(const struct awq_graph *g, int max_rows, size_t elem_size, const int *live_from,
			const int *live_to, size_t *offsets, size_t *arena_bytes, char *err, size_t errlen)
{
	int nv = g->n_values;
	int *first = malloc((size_t)nv * sizeof(int));
	int *last = malloc((size_t)nv * sizeof(int));
	size_t *size = malloc((size_t)nv * sizeof(size_t));
	int *order = malloc((size_t)nv * sizeof(int));
	int placed = 0;
	size_t total = 0;
	if (!first || !last || !size || !order) {
		free(first), free(last), free(size), free(order);
		return awq_err(err, errlen, AWQ_ENOMEM, "out of memory planning activations");
	}
	/* Lifetimes in node indices: a value is live from the node that defines it (or the start, for
	 * inputs) to its last reader. Graph inputs and outputs live for the whole step. */
	for (int v = 0; v < nv; v++) {
		first[v] = -1;
		last[v] = -1;
		size_t rows = (size_t)max_rows;
		size_t es = g->values[v].kind == AWQ_V_TOKENS ? 4 : elem_size;
		size[v] = align64(rows * (size_t)g->values[v].cols * es);
	}
	for (int i = 0; i < g->n_nodes; i++) {
		const struct awq_node *n = &g->nodes[i];
		first[n->out] = i;
		if (last[n->out] < i)
			last[n->out] = i;
		for (int j = 0; j < AWQ_MAX_IN; j++)
			if (n->in[j] >= 0)
				last[n->in[j]] = i;
	}
	for (int v = 0; v < nv; v++) {
		if (live_from && live_from[v] >= 0 && first[v] >= 0 && live_from[v] < first[v])
			first[v] = live_from[v];
		if (live_to && live_to[v] > last[v])
			last[v] = live_to[v];
	}
	int pinned[3] = {g->tokens_in, g->logits_out, g->argmax_out};
	for (int p = 0; p < 3; p++) {
		if (pinned[p] >= 0) {
			first[pinned[p]] = -1;
			last[pinned[p]] = g->n_nodes;
		}
	}
	/* Place values in definition order at the lowest offset that overlaps no live-at-once value. */
	for (int v = 0; v < nv; v++) {
		if (last[v] < 0 && first[v] < 0) {
			offsets[v] = 0; /* unused value: never touched */
			continue;
		}
		size_t off = 0;
		int moved = 1;
		while (moved) {
			moved = 0;
			for (int j = 0; j < placed; j++) {
				int u = order[j];
				if (first[u] > last[v] || first[v] > last[u])
					continue;
				if (off < offsets[u] + size[u] && offsets[u] < off + size[v]) {
					off = offsets[u] + size[u];
					moved = 1;
				}
			}
		}
		offsets[v] = off;
		order[placed++] = v;
		if (off + size[v] > total)
			total = off + size[v];
	}
	*arena_bytes = total;
	free(first), free(last), free(size), free(order);
	return 0;
}
