/* Performance model internals: the per-device kernel profile (efficiency factors, overheads) and
 * the graph walk. awqrun_caps.h has the public entry points. */
#ifndef AWQ_PERFMODEL_H
#define AWQ_PERFMODEL_H

#include "caps_internal.h"
#include "graph.h"

/* Kernel classes whose speed the model distinguishes. */
enum perf_kernel { PK_W16, PK_Q4, PK_FP8, PK_ATTN, PK_ELEM, PK_COUNT };

struct perf_profile {
	const char *kind;        /* "cuda", "vulkan-gpu", "vulkan-cpu", "cpu" */
	double bw;               /* streaming bandwidth before kernel efficiency, bytes/s */
	const char *bw_from;     /* "measured", "peak x 0.84", ... */
	double eta_bw[PK_COUNT]; /* fraction of bw each kernel class reaches */
	double rate[PK_COUNT];   /* FLOP/s each kernel class reaches (peak x eta x clock factor), 0 unknown */
	enum awq_mfmt unit[PK_COUNT];
	double q4_dequant_ops;   /* ops per weight per step to unpack 4-bit weights (CPU kernels) */
	int mma_rows;            /* token rows a matrix-unit kernel always computes (mma n8 = 8) */
	int matvec_rows;         /* steps of up to this many rows take a mat-vec instead (no mma_rows
				  * padding) at matvec_rate; 0: none (Vulkan: VK_MATVEC_ROWS) */
	double matvec_rate;      /* FLOP/s of that mat-vec (a fraction of the FP32 peak until apply_rates) */
	int q4_split_rows;       /* 4-bit matmuls of matvec_rows + 1 to this many rows run the mat-vec twice,
				  * each pass reading the weight (Vulkan: steps of 5-8 rows); 0: none */
	double matvec_row_q4;    /* each row of a 4-bit mat-vec pass beyond its first costs this fraction of
				  * the weight's bytes more (x read per row next to the weights); 0: nothing */
	double launch_decode_s, launch_prefill_s; /* per launched op */
	double launches_per_node; /* fusion: launched kernels per graph node */
	/* The Vulkan backend's folds (backends/vulkan/vk_prepare.c plan_fusions), counted node by node
	 * instead of through launches_per_node: q's and k's RoPE and per-head RMSNorm run inside the
	 * attention dispatch in decode (one prep dispatch in prefill), a whole-row RMSNorm inside the
	 * residual ADD before it, and in decode the gate and up mat-vecs inside their SILU_MUL */
	int vk_folds;
	double step_s;           /* fixed host cost per step (graph launch, sync, argmax copy) */
	double moe_decode_s;     /* latency of one MoE experts node in decode beyond its bytes and launches */
	double moe_decode_q4_s;  /* the same for AWQ experts (their own decode kernels) */
	double moe_prefill_eff, moe_prefill_q4_eff; /* grouped expert matmuls in prefill: fraction of
						       * their kernel class's rate (0: all of it) */
	double kv_elem, act_elem; /* bytes per KV-cache element and per activation element */
	/* AWQ matmuls of at least this many rows dequantise the weight to an f16 copy (one 4-bit read,
	 * one 2-byte write per weight, at the 16-bit stream rate) and run the 16-bit GEMM on it
	 * (CUDA: AWQ_CUDA_DEQ_ROWS, default 256); 0: never */
	int q4_deq_rows;
	int bf16_native, fp8_native;
};

/* Build the profile of device d for scheme s; 0, or AWQ_EUNSUPPORTED with err saying why no
 * prediction is possible (no bandwidth figure, no awqrun backend). */
int awq_perf_profile(const struct awq_device_caps *d, enum awq_scheme s, struct perf_profile *p, char *err,
		     size_t errlen);

/* Predict over an already built graph (tests hand-build MoE graphs with it). */
int awq_perf_predict_graph(const struct awq_device_caps *d, const awq_model *m, const struct awq_graph *g,
			   const struct awq_perf_query *q, struct awq_perf_result *r, char *err, size_t errlen);

/* Weight bytes one decode step of `rows` tokens reads in the graph (experts: expected distinct
 * experts of rows tokens routed top-k of E uniformly). */
double awq_perf_decode_weight_bytes(const awq_model *m, const struct awq_graph *g, enum awq_scheme s, int rows);

#endif
