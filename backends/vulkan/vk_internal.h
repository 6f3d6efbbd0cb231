/* Internal state of the Vulkan backend, shared by its source files. */
#ifndef AWQ_VK_INTERNAL_H
#define AWQ_VK_INTERNAL_H

#include <stdint.h>
#include <vulkan/vulkan.h>

#include "backend.h"
#include "error.h"
#include "graph.h"

#define VK_NBIND 12      /* bindings of the one descriptor set layout (0 = step buffer) */
#define VK_MAX_PIPES 64
#define VK_MAX_CMDS 8    /* recorded command buffers kept (one per step shape) */
#define VK_MAX_ROPES 4   /* distinct RoPE tables (head_dim and scaling) per graph */
#define VK_MATVEC_ROWS 4 /* steps up to this many rows use the matrix-vector shaders */
#define VK_WG 128        /* smallest workgroup of the rmsnorm shaders (norm_wg) */
/* the mat-vecs' default workgroup (mv_wg): 64 decoded llama2-7b AWQ at 262.4 tok/s on an H200 against
 * 250.5 with 128 (9bd073b, the K-split kernel and the fused gate/up both at that size) */
#define VK_MV_WG 64
#define VK_NODE_SETS 10  /* descriptor sets of one node at most (MOE_EXPERTS, vk_moe.c) */
#define VK_RING 64       /* slots of the greedy chain's token ring (chain.comp's mask) */

struct vk_buf {
	VkBuffer buf;
	VkDeviceMemory mem;
	VkDeviceSize size;
	void *map;    /* host-visible buffers stay mapped */
	int coherent; /* host-visible and coherent (no flush/invalidate needed) */
};

/* A sub-range of a buffer, as bound to a descriptor. */
struct vk_range {
	VkBuffer buf;
	VkDeviceSize off, size;
};

struct vk_push {
	uint32_t u[8];
	float f0, f1;
};

struct vk_pipe {
	char name[32];
	int32_t spec[3];
	VkPipeline pipe;
};

/* A weight on the device: dense data as stored (padded to 16 bytes), or AWQ repacked to
 * [n][k/8] nibble words plus [n][k/G] scale|zero words (see shaders/repack_q4.comp). */
struct vk_weight {
	const struct awq_weight *w;
	struct vk_buf data, sz, bias;
	/* BF16: every value finite and below 65536 in magnitude (bits & 0x7fff < 0x4780, found while
	 * uploading), so fp16 holds it and the cooperative-matrix prefill may take it (vk_rec_matmul) */
	int bf16_in_f16;
};

/* Per graph node: its descriptor sets (attention: kv store or prep, attention, combine, and the
 * attention with the prep folded in for decode steps; MoE: vk_moe.c). */
struct vk_node {
	VkDescriptorSet set[VK_NODE_SETS];
	struct vk_weight *wt;
	int rope_slot;
	int moe_set; /* MOE_EXPERTS: index into vk_ctx.moe */
	int norm;    /* ADD: the whole-row RMSNORM after it, run in the same dispatch (-1: none) */
	int skip;    /* folded into another node's dispatch (RMSNORM after an ADD, ROPE/RMSNORM of q/k) */
	/* ATTENTION with prep: attn_prep.comp does the folded per-head norms (norm_q/k) and RoPE
	 * (rope_q/k) of q and k, from q_raw/k_raw, and the KV-cache write (-1: not folded) */
	int prep, rope_q, rope_k, norm_q, norm_k, q_raw, k_raw;
	/* SILU_MUL whose gate and up MATMULs run inside it in decode steps (matvec_*_silu): their nodes
	 * (-1: none); the MATMULs carry decode_skip (skipped in steps of <= VK_MATVEC_ROWS rows) */
	int silu_gate, silu_up, decode_skip;
	/* AWQ_VK_EPINORM=1, one-row steps (epinorm.glsl): an ADD with its whole-row RMSNORM runs in the
	 * epilogue of the MATMUL before it and the prologue of its readers. On that MATMUL, epi = the
	 * ADD's node (-1: none); on the ADD, epi_add = 1 (it does not run then) and epi_slot its half of
	 * the partial-sums buffer; on each reader (a K-split MATMUL or a fused 4-bit SILU_MUL), pre_add =
	 * the ADD's node (-1: none). The EPI and NORM2 forms take descriptor set 1 (MATMUL) or 2 (SILU). */
	int epi, epi_add, epi_slot, pre_add;
	/* AWQ_VK_MOE_FOLD=1, decode steps: an ADD (with its norm) right after MOE_EXPERTS forms the
	 * experts' combine itself (add_rmsnorm_moe, descriptor set 1): comb = the experts' node on the
	 * ADD (-1: none), comb_skip = 1 on the experts (no combine dispatch then) */
	int comb, comb_skip;
};

struct vk_cmd {
	int n_tokens, all_rows, span; /* key (span: vk_attn_span); n_tokens 0 = free slot */
	VkCommandBuffer cb;
	uint64_t last_use;
	int n_dispatch, n_barrier; /* recorded in it (the profile's count per decode step) */
};

struct vk_rope_slot {
	struct awq_rope rope;
	int head_dim;
	uint32_t cos_off, sin_off; /* float offsets into the step buffer's table */
	float inv_freq[128], pos_scale;
};

struct vk_upload {
	struct vk_buf stage;
	VkCommandBuffer cb;
	int rows;    /* rows the recorded copy moves */
	int pending; /* written since the last step */
};

/* Load-time upload state: a host-visible staging buffer, and for AWQ the tensors as stored before
 * the repack with the two descriptor sets of the repack (allocated on first use). */
struct vk_staging {
	struct vk_buf stage;
	struct vk_buf raw[3]; /* AWQ qweight, qzeros, scales as stored, before the repack */
	VkDescriptorSet repack[2];
};

/* The experts of one MOE_EXPERTS node (or of several sharing them): gate, up and down of all
 * experts each packed one expert after another in one buffer (AWQ repacked; sz as vk_weight). */
struct vk_moe_set {
	const struct awq_experts *x;
	struct vk_buf data[3], sz[3];
	/* BF16 experts (gate, up, down): every value of every expert finite and below 65536 in
	 * magnitude, as vk_weight.bf16_in_f16 (found while uploading) */
	int bf16_in_f16[3];
};

/* Step scratch of the MoE ops, sized for the largest MoE node: router logits, the per-slot
 * gate / up / activation and down outputs, and the prefill grouping buffer (moe_layout.glsl). */
struct vk_moe_scratch {
	struct vk_buf logits, gate, up, h, y, grp;
};

struct vk_ctx {
	struct awq_backend_opts opts;
	/* device */
	VkInstance inst;
	VkDebugUtilsMessengerEXT messenger;
	VkPhysicalDevice phys;
	VkDevice dev;
	VkQueue queue;
	uint32_t qfamily;
	VkPhysicalDeviceProperties props;
	VkPhysicalDeviceMemoryProperties memprops;
	uint32_t subgroup_size, min_subgroup;
	int mv_wg; /* workgroup size of the matvec shaders: VK_MV_WG, or AWQ_VK_MATVEC_WG (a tuning knob) */
	int mv_ksplit; /* 4-bit decode mat-vecs split over K (matvec_q4k.comp); AWQ_VK_MATVEC_KSPLIT=0: off */
	int mv_ku;     /* its chunks per invocation in flight: 1, or 2 with AWQ_VK_MATVEC_KU=2 */
	int full_barriers; /* AWQ_VK_BARRIERS=full: a full barrier after every node (vk_run.c, record) */
	int mv_u4; /* AWQ_VK_MATVEC_U4=1: the 4-bit matvec with 4 chunks per lane in flight (else 2) */
	int mv_nr; /* output rows per subgroup of the 4-bit matvec: 4, or 2 with AWQ_VK_MATVEC_NR=2 */
	int mv_xs; /* AWQ_VK_MATVEC_XS=1: one-row K-split mat-vecs read x through shared memory (matvec_q4k XS) */
	int has_f16, validate;
	int idot_fast; /* 4x8-bit packed signed dots accelerated (integerDotProduct4x8BitPackedSignedAccelerated) */
	int q8; /* AWQ_VK_Q8=1 and shaderIntegerDotProduct (then enabled): int8-activation 4-bit decode mat-vecs */
	int no_fuse; /* AWQ_VK_NO_FUSE: every node as its own dispatch (plan_fusions, the MoE gate/up) */
	int nv_coopmat; /* device and build have VK_NV_cooperative_matrix (fp16 16x16x16, f32 acc) */
	int nv_coopmat_large; /* and 48 KiB of shared memory, 256 invocations: matmul_coopmat.comp's LARGE tile */
	int nv_coopmat_w16;   /* large tile, AWQ_VK_COOPMAT_WARPS not 8, 512 invocations: that tile over 16 subgroups (W16) */
	char coopmat_why[160];
	uint64_t max_alloc, max_range;
	uint32_t max_allocs, n_allocs;
	int val_errors;
	char val_msg[400];
	/* pipelines */
	VkPipelineCache pcache;
	VkDescriptorSetLayout dsl;
	VkPipelineLayout playout;
	VkDescriptorPool dpool;
	VkShaderModule modules[32];
	const char *module_names[32];
	int n_modules;
	struct vk_pipe pipes[VK_MAX_PIPES];
	int n_pipes;
	VkCommandPool cpool;
	VkFence fence;
	int inflight;
	/* graph */
	const struct awq_graph *g;
	int max_tokens, max_ctx;
	size_t *offsets;
	struct vk_buf arena, step, readback, dummy, attn_part;
	struct vk_buf attn_ticket; /* max_tokens x n_heads words, 0 between dispatches (attention.comp) */
	struct vk_buf amax_part;   /* argmax.comp's per-slice results over one long row (vk_argmax_slices) */
	int attn_merge;            /* attention merges its splits in its own dispatch; AWQ_VK_ATTN_MERGE=0: off */
	int attn_fold;             /* decode: attn_prep's work inside the attention dispatch; AWQ_VK_ATTN_FOLD=0: off */
	int attn_prefill;          /* prefill steps through attn_prefill.comp where it fits; AWQ_VK_ATTN_PREFILL=0: off */
	int sg_shuffle;            /* subgroup shuffles in compute (attn_prefill.comp) */
	int pipe_stats;            /* AWQ_VK_PIPELINE_STATS=1: print each pipeline's driver statistics */
	int coopmat_tile;          /* AWQ_VK_COOPMAT_TILE: 128 (default, where the device allows) or 64 */
	int coopmat_warps;         /* AWQ_VK_COOPMAT_WARPS: 16 (default) or 8 subgroups in the 128 x 128 tile */
	int attn_ilp;              /* attention.comp's ILP flag (AWQ_VK_ATTN_ILP=1) */
	int attn_fast;             /* attention_d64/d128/d256 where they apply (AWQ_VK_ATTN_FAST=0: never) */
	int attn_group;            /* at most this many q heads of a kv head per workgroup of theirs (AWQ_VK_ATTN_GROUP=2|4; 1) */
	int attn_group_from;       /* ... in decode steps whose keys reach this many (AWQ_VK_ATTN_GROUP_FROM; 0 with the knob set) */
	int attn_spans;            /* some attention node of the graph groups its heads: steps are recorded per span */
	int rec_span;              /* the span of the step being recorded (rec_attention) */
	int attn_splits_cap;       /* AWQ_VK_ATTN_SPLITS=N: at most N key splits per attention (0: none) */
	int moe_silu;              /* MoE decode: experts' gate/up + SiLU in one dispatch; AWQ_VK_MOE_SILU=1: on */
	int epinorm;               /* AWQ_VK_EPINORM=1: add + RMSNorm in the mat-vecs around them (one-row steps) */
	int moe_fold;              /* AWQ_VK_MOE_FOLD=1: the experts' combine inside the add + RMSNorm after them */
	int moe_bf16_cm;           /* BF16 experts' prefill on the cooperative-matrix tile (AWQ_VK_MOE_BF16_CM=0: off) */
	int sample_chain;          /* sampled chains drawn on the device where it can (AWQ_VK_SAMPLE_CHAIN=0: off) */
	struct vk_buf norm_part;   /* ... their partial sums of squares: two halves of norm_part_half bytes */
	VkDeviceSize norm_part_half;
	struct vk_buf *kv; /* per layer: K then V at kv_voff */
	VkDeviceSize kv_voff, kv_layer_bytes;
	struct vk_weight *weights;
	int n_weights;
	struct vk_node *nodes;
	struct vk_moe_set *moe;
	int n_moe;
	struct vk_moe_scratch moe_tmp;
	struct vk_rope_slot ropes[VK_MAX_ROPES];
	int n_ropes;
	struct vk_upload *uploads; /* per value, created on first write */
	struct vk_cmd cmds[VK_MAX_CMDS];
	uint64_t cmd_clock;
	VkDeviceSize rb_logits_off, rb_argmax_off;
	/* the greedy chain (vk_chain): every position's RoPE rows (host-visible, chain.comp's table), its
	 * descriptor set, two recorded one-token steps ending in chain.comp (one may be pending while the
	 * other is submitted) with a fence each, and the token ring in readback at rb_ring_off */
	struct vk_buf rope_all;
	VkDescriptorSet chain_set;
	/* [0] greedy (chain.comp), [1] sampled (chain_sample: the draw on the device, the sampler's
	 * state in samp, host-visible; created where sample_chain is on and the device has what the
	 * shader needs, has_f64i64) */
	VkCommandBuffer chain_cb[2][2][2]; /* [sampled][span][k] */
	struct vk_buf samp;
	int has_f64i64;
	/* the sampled chain's top-k levels (topk_part.comp; vk_topk_levels): their keys, sized for
	 * AWQ_TOPK_MAX; chain_k: the top-k the sampled command buffers were recorded for */
	struct vk_buf topk;
	int chain_k;
	VkFence chain_fence[2];
	int chain_inflight[2];
	VkDeviceSize rb_ring_off;
	int rb_rows; /* rows of logits the last step copied to readback */
	uint64_t weight_bytes, kv_bytes, act_bytes;
	/* profiling (AWQ_VK_PROFILE=1) */
	VkQueryPool qpool;
	int profile;
	double op_ms[AWQ_OP_COUNT];
	long op_count[AWQ_OP_COUNT];
	int prof_pending; /* the in-flight step wrote timestamps for prof_nodes nodes */
	int prof_nodes;
	int prof_single;              /* ... and it was a single-token (decode) step */
	int dec_dispatch, dec_barrier; /* dispatches and barriers of the single-token step's command buffer */
	long rec_dispatch;             /* dispatches recorded so far (vk_dispatch*) */
	double dec_ms[AWQ_OP_COUNT]; /* the single-token steps' share of op_ms */
	double *node_dec_ms;         /* the same per node (g->n_nodes), for the mat-vecs by shape */
	long dec_steps;
	char device[256];
	char kernels[768];
};

/* vk_device.c */
int vk_instance(struct vk_ctx *c, char *err, size_t errlen);
int vk_open_device(struct vk_ctx *c, int index, char *err, size_t errlen);
int vk_check(struct vk_ctx *c, VkResult r, const char *what, char *err, size_t errlen);
int vk_validation_status(struct vk_ctx *c, char *err, size_t errlen);
int vk_probe_devices(struct awq_device_desc *out, int max, char *err, size_t errlen);

/* vk_mem.c */
int vk_buf_create(struct vk_ctx *c, struct vk_buf *b, VkDeviceSize size, int host, const char *what, char *err,
		  size_t errlen);
void vk_buf_destroy(struct vk_ctx *c, struct vk_buf *b);
/* Host writes to a mapped buffer made visible to the device (nothing where it is coherent). */
void vk_flush(struct vk_ctx *c, const struct vk_buf *b);
struct vk_range vk_whole(const struct vk_buf *b);
int vk_begin_once(struct vk_ctx *c, VkCommandBuffer *cb, char *err, size_t errlen);
int vk_submit_wait(struct vk_ctx *c, VkCommandBuffer cb, char *err, size_t errlen);
int vk_wait(struct vk_ctx *c, char *err, size_t errlen);
int vk_chain_wait(struct vk_ctx *c, int k, char *err, size_t errlen);
int vk_upload(struct vk_ctx *c, struct vk_buf *dst, VkDeviceSize off, const void *src, size_t bytes,
	      struct vk_buf *stage, char *err, size_t errlen);
/* vk_upload of an array of 16-bit floats (to dst at off; src 2-byte aligned), which also scans each
 * piece of it right after its copy, while it is in cache: *max_mag = the bits of its largest
 * magnitude (the largest word & 0x7fff; inf and NaN above every finite value). */
int vk_upload16(struct vk_ctx *c, struct vk_buf *dst, VkDeviceSize off, const void *src, size_t bytes,
		struct vk_buf *stage, uint16_t *max_mag, char *err, size_t errlen);
/* Whether BF16 values whose largest magnitude has the bits max_mag (vk_upload16) all fit fp16:
 * finite and below 65536 (the largest bf16 below, 65280, fits), so the fp16 cooperative-matrix
 * prefill may take them (dense weights: vk_weight.bf16_in_f16; experts: vk_moe_set.bf16_in_f16). */
static inline int vk_bf16_fits_f16(uint16_t max_mag)
{
	return max_mag < 0x4780;
}
void vk_barrier(VkCommandBuffer cb);
void vk_barrier_compute(VkCommandBuffer cb);
/* vk_barrier, and the shader writes also become indirect dispatch arguments. */
void vk_barrier_indirect(VkCommandBuffer cb);

/* vk_pipe.c */
int vk_pipes_init(struct vk_ctx *c, char *err, size_t errlen);
void vk_pipes_destroy(struct vk_ctx *c);
int vk_pipe_get(struct vk_ctx *c, const char *name, int32_t s0, int32_t s1, int32_t s2, VkPipeline *out,
		char *err, size_t errlen);
int vk_set_alloc(struct vk_ctx *c, VkDescriptorSet *set, char *err, size_t errlen);
/* Point binding i (1..7) of a set at r; bindings left out stay on the dummy buffer. */
void vk_set_write(struct vk_ctx *c, VkDescriptorSet set, const struct vk_range *r, int n_ranges);
void vk_dispatch(VkCommandBuffer cb, struct vk_ctx *c, VkPipeline p, VkDescriptorSet set, const struct vk_push *pc,
		 uint32_t gx, uint32_t gy, uint32_t gz);
void vk_dispatch_indirect(VkCommandBuffer cb, struct vk_ctx *c, VkPipeline p, VkDescriptorSet set,
			  const struct vk_push *pc, VkBuffer args, VkDeviceSize off);

/* The levels of the sampled chain's top-k over a row of cols at top-k k (vk_run.c): how many there
 * are (at most 8); per level the workgroups, entries in and where its keys go in the topk buffer
 * (in 8-byte keys); *total: the keys of all levels; the last level's one workgroup leaves the row's
 * top-k at out[n - 1]. */
#define VK_TOPK_PER_GROUP 4096
/* argmax.comp over one long row: how many workgroups of VK_ARGMAX_SLICE columns (its ARGMAX_SLICE)
 * take it (0: a workgroup per row), whose results go to amax_part (8 bytes each) */
#define VK_ARGMAX_SLICE 4096
uint32_t vk_argmax_slices(int rows, int cols);
int vk_topk_levels(int cols, int k, uint32_t *groups, uint32_t *in_n, uint32_t *out, uint32_t *total);

/* vk_prepare.c */
int vk_prepare(void *ctx, const struct awq_graph *g, const struct awq_prepare_opts *o, char *err, size_t errlen);
struct vk_range vk_value(struct vk_ctx *c, int v);
int vk_dt_code(enum awq_dtype t);
int vk_attn_splits(const struct vk_ctx *c, int rows, int n_heads);
uint32_t vk_attn_group(const struct vk_ctx *c, uint32_t H, uint32_t HKV, uint32_t D);
int vk_attn_hd(const struct vk_ctx *c, uint32_t D);
int vk_attn_span(const struct vk_ctx *c, int rows, int keys);
void vk_attn_group_words(const struct vk_ctx *c, char *buf, size_t n);
void vk_release_graph(struct vk_ctx *c);
int vk_range_ok(struct vk_ctx *c, const char *what, VkDeviceSize bytes, char *err, size_t errlen);
/* Upload AWQ weight w as stored and repack it on the device into data ([n][k/8] words) and sz. */
int vk_repack_awq(struct vk_ctx *c, const struct awq_weight *w, struct vk_staging *st, struct vk_buf *data,
		  struct vk_buf *sz, char *err, size_t errlen);

/* vk_run.c */
int vk_run(void *ctx, const struct awq_step *s, char *err, size_t errlen);
int vk_chain(void *ctx, struct awq_chain *ch, char *err, size_t errlen);
void vk_rope_row(const struct vk_rope_slot *r, int pos, float *cos_row, float *sin_row);
int vk_write_value(void *ctx, int v, const void *src, int rows, char *err, size_t errlen);
int vk_read_value(void *ctx, int v, void *dst, int rows, char *err, size_t errlen);
int vk_sync(void *ctx, char *err, size_t errlen);
void vk_profile_report(struct vk_ctx *c);
void vk_grid(uint32_t groups, uint32_t *gx, uint32_t *gy);
uint32_t vk_matvec_groups(const struct vk_ctx *c, int64_t n, int nr);
/* No knob of matvec.comp's 4-bit variants set (AWQ_VK_MATVEC_NR, AWQ_VK_MATVEC_U4). */
static inline int vk_mv_plain(const struct vk_ctx *c)
{
	return c->mv_nr == 4 && !c->mv_u4;
}
/* Whether the 4-bit mat-vecs take packed fp16 arithmetic: shaderFloat16 and no matvec.comp knob set
 * (the knobs' variants are f32 only). */
static inline int vk_q4_f16(const struct vk_ctx *c)
{
	return c->has_f16 && vk_mv_plain(c);
}
#define VK_Q4K_ROWS 8 /* output rows per workgroup of matvec_q4k.comp (its NRW) */
/* Whether the K-split mat-vec (matvec_q4k.comp) is on: AWQ_VK_MATVEC_KSPLIT not 0, no matvec.comp
 * knob set, and at most 64 subgroups per workgroup (its shared partial sums). */
static inline int vk_q4k_on(const struct vk_ctx *c)
{
	return c->mv_ksplit && vk_mv_plain(c) && (uint32_t)c->mv_wg <= 64u * c->min_subgroup;
}
/* ... and takes 4-bit weight w in decode: K and the group size multiples of 32. */
static inline int vk_q4k(const struct vk_ctx *c, const struct awq_weight *w)
{
	return vk_q4k_on(c) && w->k % 32 == 0 && w->group_size % 32 == 0;
}
/* Whether the 4-bit decode mat-vecs take int8 activations and integer dots (Q8DOT in q4dot.glsl):
 * c->q8 with the K-split kernel at its defaults (the knobs' variants have no such form). */
static inline int vk_q4_q8(const struct vk_ctx *c)
{
	return c->q8 && vk_q4k_on(c) && c->mv_ku == 1;
}
/* Record the product of rows of the set's input with the uploaded weight wt. exact: f32 arithmetic
 * only (no fp16 products, no cooperative matrices), as the router needs for the CPU's top-k. */
int vk_rec_matmul(struct vk_ctx *c, VkCommandBuffer cb, const struct vk_weight *wt, VkDescriptorSet set, int rows,
		  int exact, char *err, size_t errlen);

/* vk_moe.c: MOE_ROUTE and MOE_EXPERTS */
int vk_moe_check(const struct awq_node *n, char *err, size_t errlen);
int vk_moe_is_expert(const struct awq_graph *g, const struct awq_weight *w);
uint32_t vk_moe_sets_needed(const struct awq_graph *g);
int vk_moe_upload(struct vk_ctx *c, struct vk_staging *st, char *err, size_t errlen);
int vk_moe_node_sets(struct vk_ctx *c, int i, char *err, size_t errlen);
int vk_moe_record(struct vk_ctx *c, VkCommandBuffer cb, int i, int rows, char *err, size_t errlen);
void vk_moe_release(struct vk_ctx *c);

#endif
