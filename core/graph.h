/* The hardware-neutral op graph. An architecture module builds it once per model; a backend gets
 * the whole graph in prepare() and executes it per step (a step = n tokens of one sequence at
 * positions pos..pos+n-1).
 *
 * Values are 2-D activations: rows x cols, where cols is fixed at build time and rows is decided per
 * step: n_tokens for every value, except downstream of a LAST_ROWS node, where it is 1 (or n_tokens
 * when the step asks for all rows). Activation values are f32 in the graph's semantics; a backend
 * may store them in a narrower type if its tests show it keeps the stated tolerances. TOKENS values
 * hold int32 token ids (cols = 1). */
#ifndef AWQ_GRAPH_H
#define AWQ_GRAPH_H

#include <stdbool.h>
#include <stddef.h>

#include "model.h"

enum awq_op {
	AWQ_OP_EMBED,     /* out[r] = embedding row in[0][r] (TOKENS); w = embedding [vocab, hidden] */
	AWQ_OP_RMSNORM,   /* out = in0 / sqrt(mean(in0^2) + eps) * w, over groups of p.norm.group cols */
	AWQ_OP_MATMUL,    /* out[r][n] = sum_k in0[r][k] * W[n][k] (+ bias[n]); w any format */
	AWQ_OP_ROPE,      /* rotate_half RoPE on n_heads heads of head_dim, position pos + r */
	AWQ_OP_ATTENTION, /* in0 = q, in1 = k, in2 = v (after RoPE): append k,v to layer's KV cache at
			   * pos + r, then causal softmax(q k^T * scale) v over positions <= pos + r */
	AWQ_OP_SILU_MUL,  /* out = silu(in0) * in1 */
	AWQ_OP_ADD,       /* out = in0 + in1 */
	AWQ_OP_LAST_ROWS, /* out = last row of in0 (all rows when the step sets all_rows) */
	AWQ_OP_ARGMAX,    /* out (TOKENS, cols 1) = argmax over in0's cols, per row */
	AWQ_OP_MOE_ROUTE, /* in0 = normed hidden [rows, hidden], w = router [E, hidden] (16-bit or f32):
			   * p = softmax(in0 W^T) in f32 over all E experts; the k largest p (ties: lower
			   * expert id first), divided by their sum when p.moe.norm_topk. out [rows, 2k]:
			   * cols [0, k) the expert ids as floats (exact), cols [k, 2k) their weights.
			   * Mixtral's softmax over the k selected logits is the same with norm_topk. A
			   * backend keeps this value in f32 whatever it does with other activations. */
	AWQ_OP_MOE_EXPERTS, /* in0 = normed hidden [rows, hidden], in1 = MOE_ROUTE output, experts =
			     * the layer's experts (any weight format, all of one format and shape):
			     * out[r] = sum_j weight_j * down_e(silu(gate_e(x)) * up_e(x)), e = id_j.
			     * Only the selected experts' weights may be read. */
	AWQ_OP_SIGMOID_MUL, /* out[r][c] = sigmoid(in0[r][0]) * in1[r][c]; in0 has 1 col (Qwen2-MoE's
			     * shared-expert gate) */
	AWQ_OP_COUNT
};

enum awq_vkind {
	AWQ_V_ACT,    /* f32 activations */
	AWQ_V_TOKENS, /* int32 token ids */
};

struct awq_value {
	enum awq_vkind kind;
	int cols;
	bool last_rows; /* rows follow a LAST_ROWS node (1 row, or all when the step asks) */
	char name[48];  /* for debugging and error messages, e.g. "l3.q" */
};

#define AWQ_MAX_IN 3

struct awq_node {
	enum awq_op op;
	int out;
	int in[AWQ_MAX_IN]; /* value ids, -1 when unused */
	const struct awq_weight *w;
	const struct awq_experts *experts; /* MOE_EXPERTS only */
	union {
		struct {
			float eps;
			int group; /* cols normalised together; == value cols for a whole-row norm */
		} norm;
		struct {
			int n_heads, head_dim;
			struct awq_rope rope;
		} rope;
		struct {
			int layer; /* KV-cache slot */
			int n_heads, n_kv_heads, head_dim;
			float scale;
		} attn;
		struct {
			int n_experts, top_k;
			bool norm_topk;
		} moe; /* MOE_ROUTE and MOE_EXPERTS */
	} p;
};

struct awq_graph {
	struct awq_value *values;
	int n_values, cap_values;
	struct awq_node *nodes;
	int n_nodes, cap_nodes;
	int tokens_in;  /* TOKENS value the step's ids are written to */
	int logits_out; /* ACT value holding logits (rows per LAST_ROWS rule) */
	int argmax_out; /* TOKENS value with greedy ids, -1 if the graph has none */
	/* KV cache geometry: n_kv_layers slots of [max_ctx, kv_heads * head_dim] for K and for V */
	int n_kv_layers, kv_heads, head_dim;
	const struct awq_model *model; /* NULL for graphs built by op tests */
};

struct awq_step {
	int n_tokens; /* rows of the step, 1 <= n_tokens <= max_tokens given to prepare */
	int pos;      /* position of the first token; the cache holds 0..pos-1 */
	bool all_rows;
};

void awq_graph_init(struct awq_graph *g);
void awq_graph_free(struct awq_graph *g);
/* Add a value; returns its id or a negative status (allocation failure). */
int awq_graph_value(struct awq_graph *g, enum awq_vkind kind, int cols, const char *name);
/* Add a node computing a new value of `cols` cols; returns the new value's id or < 0. The node's
 * params are copied from *params when not NULL. */
int awq_graph_node(struct awq_graph *g, enum awq_op op, int cols, const char *name, int in0, int in1,
		   int in2, const struct awq_weight *w, const struct awq_node *params);

/* Rows value v has in a given step. */
static inline int awq_value_rows(const struct awq_graph *g, int v, const struct awq_step *s)
{
	return g->values[v].last_rows && !s->all_rows ? 1 : s->n_tokens;
}

/* Check ids, shapes and weights of every node; backends call it in prepare(). */
int awq_graph_check(const struct awq_graph *g, char *err, size_t errlen);

/* Plan one arena for all values with rows <= max_rows: offsets (bytes, 64-byte aligned) such that
 * values alive at the same time do not overlap. Input and output values (tokens_in, logits_out,
 * argmax_out) are never overwritten. elem_size is bytes per activation element the backend uses
 * (TOKENS values always take 4). offsets must hold n_values entries. */
int awq_graph_plan(const struct awq_graph *g, int max_rows, size_t elem_size, size_t *offsets,
		   size_t *arena_bytes, char *err, size_t errlen);
/* The same with lifetimes widened for a backend that fuses nodes: value v is also live from node
 * live_from[v] and up to node live_to[v] (-1: no change; either array may be NULL). A fused kernel
 * that reads v at a later node, or writes it at an earlier one, says so here. */
int awq_graph_plan_live(const struct awq_graph *g, int max_rows, size_t elem_size, const int *live_from,
			const int *live_to, size_t *offsets, size_t *arena_bytes, char *err, size_t errlen);

/* Readers of each value (node inputs; the graph's pinned inputs and outputs count once each), for
 * backends that fold single-use producers into their consumer. malloc'ed, n_values entries; NULL
 * when out of memory. */
int *awq_graph_count_uses(const struct awq_graph *g);
/* The node that writes value v, or -1 (graph inputs). */
int awq_graph_producer(const struct awq_graph *g, int v);
/* AWQ_KNOCKOUT="OP,OP,..." (op names as awq_op_name gives them; a measurement aid): 1 when node i
 * is of one of those ops and the step's row count is 1. The GPU backends then leave it out of
 * one-token steps, which times decode without those launches: the bound of any fusion that removes
 * them. The output of such a run is meaningless; the first knocked-out node warns on stderr. */
int awq_knockout(const struct awq_graph *g, int i, int rows);
/* The first name of a comma-separated AWQ_KNOCKOUT list that names no op (its length in *len; the
 * first use warns about it on stderr), or NULL. */
const char *awq_knockout_unknown(const char *list, size_t *len);
/* The producer of v when v has one reader (uses: awq_graph_count_uses) and it is a per-head op of
 * q or k: a ROPE over heads x head_dim, or an RMSNORM in groups of head_dim over heads * head_dim
 * columns (op says which); else -1. For backends that fold these into their attention. */
int awq_graph_head_producer(const struct awq_graph *g, const int *uses, int v, enum awq_op op, int heads,
			    int head_dim);
/* Whether node k is a SILU_MUL whose two inputs each have one reader and come from MATMULs on one
 * input (*gate, *up: those nodes): the gate/up pair a backend may run as one launch. The weights'
 * formats are the backend's to check. */
bool awq_graph_gate_up_pair(const struct awq_graph *g, const int *uses, int k, int *gate, int *up);

/* Distinct weights referenced by the graph, in first-use order (tied weights appear once).
 * Returns the count; *out is malloc'ed (caller frees). */
int awq_graph_weights(const struct awq_graph *g, const struct awq_weight ***out);

const char *awq_op_name(enum awq_op op);

/* Build the decoder graph of a Llama / Qwen2 / Qwen3 / Qwen3-MoE / Mixtral model. */
int awq_build_graph(const struct awq_model *m, struct awq_graph *g, char *err, size_t errlen);

/* The sparse MLP of layer l (arch_moe.c): MOE_ROUTE then MOE_EXPERTS on the normed hidden value h.
 * Returns the output value's id or < 0 (allocation failure). */
int awq_build_moe_mlp(struct awq_graph *g, const struct awq_model *m, int l, int h);
/* The SwiGLU MLP of layer l's gate/up/down weights on h, down(silu(gate(h)) * up(h)), as nodes
 * "l<l>.<pre>gate", "...up", "...act", "...down" (pre "": the dense MLP; "shared_": Qwen2-MoE's
 * shared expert). Returns the output value or a negative error. */
int awq_build_swiglu(struct awq_graph *g, const struct awq_layer *L, int l, int h, const char *pre);

#endif
