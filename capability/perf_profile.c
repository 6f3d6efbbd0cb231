/* Kernel profiles of the performance model: for each kind of device, which unit each kernel class
 * runs on and the efficiency factors (eta) that turn peak figures into achieved ones. Every constant
 * is listed here, with where it comes from; docs/caps-schema.md repeats the table.
 *
 * Bandwidth: the measured figure when the probe has one (GPU copy kernel: bytes read + written;
 * CPU: read of all cores), else the peak x 0.84 — the memcpy/peak ratio of A100-80GB, H200 and
 * RTX 5090 in gn-kernels' measurements (shared/spec/gpus.md section 3c). */
#include <stdio.h>
#include <string.h>

#include "env.h"
#include "error.h"
#include "perfmodel.h"

#define ETA_COPY_OF_PEAK 0.84

/* awqrun's CUDA backend (backends/cuda), calibrated against `awqrun bench` on the device machine's
 * H100 (2026-11-22, tests/capability/device_check.sh; docs/caps-schema.md "Validation"):
 * - 16-bit GEMV: 94-101 % of the copy bandwidth (docs/perf-cuda-notes.md session 1) -> 0.92; since
 *   the parameter-struct fix (2026-11-30, session 8: the multi-segment GEMV no longer copies its
 *   parameters to local memory) llama2-7b and qwen3-8b BF16 decode run at 80-81 % of copy end to
 *   end, and 0.97 fits them (-4..-6 %);
 * - W4A16 GEMV: 0.42-0.47 of the copy bandwidth in qwen3-8b and llama2-7b decode on the H100
 *   (2026-11-22); since the per-group zero correction (2026-11-30, session 7) the kernel streams at
 *   0.53-0.63 of copy on the H200's large decode shapes and 0.33-0.55 on the small ones, and 0.60 fits
 *   llama2-7b, qwen3-8b, qwen3-14b and qwen3-30b-a3b AWQ decode within -5..+13% (the kernel's design
 *   target is >= 0.85: raise this as it is tuned); session 8 (no parameter copy to local memory):
 *   66-73 % of copy on the large shapes in awq-cuda-bench -> 0.70; session 14 (producer-epilogue
 *   norms, 2026-11-30: llama2-7b 610, qwen3-8b 480 tok/s) -> 0.75 with 0.25 launches per node
 *   (below); sm_75 has no cp.async and runs the synchronous-load kernel class (unchanged: 0.28,
 *   gpus.md 3c);
 * - decode attention over the f16 KV cache: 43-46 % measured, 70 % targeted -> 0.60;
 * - 16-bit GEMM through cuBLAS: 745/989 on H100 (device machine), 267/312 A100, 763/989 H200 -> 0.75;
 * - W4A16 GEMM on mma.sync (no wgmma): pp512 of qwen3-8b / llama2-7b fit 0.30 of the H100 peak;
 *   0.55 assumed where mma.sync is the native path (sm_75..sm_89, sm_120);
 * - FP8 GEMM (cuBLAS-class): 1394/1979 on the device machine's H100 -> 0.70;
 * - per kernel: the measured launch latency (4.05 us on H100), also inside a replayed CUDA graph:
 *   decode of qwen3-0.6b, qwen3-8b and llama2-7b spent 2.7-3.1 us per graph node beyond its bytes
 *   (2026-11-22). Since 2026-11-30 the fusions survive the arena plan and a dense layer of 15-17
 *   graph nodes runs as 9 launches (test_cuda_fuse), with programmatic launch overlapping the
 *   matmuls' start: 0.5 launches per node fitted the H200 at 2ac9cf8; with the one-launch attention
 *   merge and faster GEMVs (session 7) 0.4 fits qwen3-0.6b, llama2-7b and qwen3-8b BF16 and AWQ
 *   decode within -0..+13% (docs/perf.md, performance-model error); after session 8 (shorter kernel
 *   start-up) 0.35 with the etas above fits qwen3-0.6b, qwen3-8b, qwen3-14b and qwen3-30b-a3b BF16
 *   and AWQ decode within -6..+5% (`awqrun caps --gpu h200 --ctx 576` against docs/perf.md); the
 *   epilogue norms (session 13-14: the add + RMSNorm launches folded into the GEMVs and the MoE
 *   down kernel) left that under-predicting every decode row by 11-28%, and 0.25 (with the Q4 eta
 *   0.75 and the MoE constants below) fits qwen3-0.6b, llama2-7b, qwen3-8b, qwen3-14b and
 *   qwen3-30b-a3b BF16 and AWQ decode within -7..+12% (session 14's bench rows);
 * - MoE decode: the router and the expert gate/up + down kernels are dependent chains of small
 *   launches; qwen3-30b-a3b decode on the H200 takes ~30 us per MoE layer beyond bytes and launches
 *   at 0.4 launches per node (AWQ_CUDA_PROFILE, session 7: router 14.6 us, experts 34.3 us per
 *   layer for 19 MB) -> 30 us: BF16 and AWQ within -1..+4%. Session 9 gave the AWQ experts the dense
 *   GEMV's arithmetic (q4m kernels) and the router a branch-free top-k: 456.2 tok/s AWQ, 272.5 BF16
 *   (16-bit experts on the old kernels), which the other constants leave at 7.5 us (AWQ) and 20.5 us
 *   (BF16) per MoE layer -> 7.5 and 20 us; session 14 (498.5 AWQ, 334.3 BF16 with the refit
 *   above) -> 9 and 16 us;
 * - MoE prefill: the grouped expert matmuls (qwen3-30b-a3b pp512: 32 tokens per expert on average)
 *   measured 14689 tok/s AWQ and 16331 BF16 against 40535 and 25680 predicted at the dense kernel
 *   rates: they reach 0.22 (W4A16) and 0.093 (16-bit) of those rates (session 9; one shape, so the
 *   dependence on tokens per expert is not in the model). */
static void cuda_profile(const struct awq_device_caps *d, struct perf_profile *p)
{
	int cc = d->cuda.cc_major * 10 + d->cuda.cc_minor;
	int hopper_class = d->cuda.cc_major == 9 || d->cuda.cc_major == 10;
	p->kind = "cuda";
	p->eta_bw[PK_W16] = 0.97;
	p->eta_bw[PK_Q4] = cc >= 80 ? 0.75 : 0.28;
	p->eta_bw[PK_FP8] = 0.85;
	p->eta_bw[PK_ATTN] = 0.60;
	p->eta_bw[PK_ELEM] = 0.70;
	p->rate[PK_W16] = 0.75;
	p->rate[PK_Q4] = hopper_class ? 0.30 : 0.55;
	p->rate[PK_FP8] = 0.70;
	p->rate[PK_ATTN] = 0.40;
	p->unit[PK_Q4] = p->unit[PK_ATTN] = AWQ_MF_FP16_F32ACC;
	p->unit[PK_FP8] = AWQ_MF_FP8;
	p->mma_rows = 8;
	p->launch_decode_s = p->launch_prefill_s = d->launch_us.v > 0 ? d->launch_us.v * 1e-6 : 4.0e-6;
	p->launches_per_node = 0.25;
	p->step_s = 30e-6;
	p->moe_decode_s = 16e-6;
	p->moe_decode_q4_s = 9e-6;
	p->moe_prefill_eff = 0.28;
	p->moe_prefill_q4_eff = 0.22;
	p->kv_elem = 2;
	p->q4_deq_rows = awq_cuda_deq_rows(); /* the CUDA backend's own choice (env.h) */
}

/* Vulkan on a GPU, calibrated on the one GPU measured so far (NVIDIA H200 through NVIDIA's Vulkan
 * driver, docs/perf.md). Decode: session 18's tg128 rows (llama2-7b AWQ 267.4 tok/s, BF16 165.9;
 * qwen3-8b 241.8, 144.8; qwen3-30b-a3b 186.3, 174.6) at a read bandwidth of 3.8 TB/s, with the
 * backend's folds counted node by node (vk_folds: q/k RoPE and norms inside attention, the RMSNorm
 * inside the residual ADD, gate and up inside their SILU_MUL; the launch per graph node of session
 * 10's fit charged qwen3's two per-head norms, folded since, and left qwen3-8b AWQ 17% slow): 5 us
 * per dispatch and its barrier (session 18's chain harness measured 4.76 us per dependent dispatch),
 * 60 us per submit, the 16-bit mat-vec at 0.77 and the 4-bit one at 0.44 of the bandwidth (dense
 * rows within -4..+4%), and per MoE layer 19 us (BF16 experts) / 32 us (AWQ) beyond bytes and
 * launches: the router -> experts chain, as on CUDA (9 / 16 us there). Decode steps (up to
 * VK_MATVEC_ROWS = 4 rows) run mat-vecs on the ALUs, not the cooperative-matrix shader: no 16-row
 * padding (charging it predicted 55.6 tok/s for both), at an assumed half of the FP32 peak, which
 * never binds them; 4-bit matmuls of 5-8 rows run the K-split mat-vec twice (session 20: llama2-7b
 * pp8 265 -> 495 tok/s against the cooperative-matrix tiles), and each row of a pass beyond its first
 * costs 0.8 of the weight's bytes (the kernel reads every row of x per chunk next to the weights;
 * fitted to session 20's llama2-7b pp2 / pp4 / pp5 / pp8 of 400 / 414 / 466 / 495 tok/s: -5..+14%;
 * the 16-bit mat-vec's rows are not measured and not charged). Prefill through the NV cooperative-matrix
 * shader at 0.075 of the FP16 peak (~74 TFLOP/s on the H200, matmuls and attention together: llama2-7b
 * pp512 5650 tok/s AWQ, 5662 BF16, qwen3-8b AWQ 5170 with the 128 x 128 tile over 16 subgroups,
 * 2026-12-01 session 18; 0.072 with 8 subgroups in session 17, 0.013 before the shader's rewrite,
 * at 12-14 TFLOP/s). Without cooperative matrices the tiled FP32 shader
 * is assumed at half the FP32 peak (not measured on a GPU yet). Raise these as the shaders are tuned. */
static void vulkan_gpu_profile(const struct awq_device_caps *d, struct perf_profile *p)
{
	int coopmat = d->vk.khr_coopmat || d->vk.nv_coopmat || !d->present;
	p->kind = "vulkan-gpu";
	p->eta_bw[PK_W16] = 0.77;
	p->eta_bw[PK_Q4] = 0.44;
	p->eta_bw[PK_FP8] = 0.53;
	p->eta_bw[PK_ATTN] = 0.50;
	p->eta_bw[PK_ELEM] = 0.60;
	for (int k = 0; k < PK_COUNT; k++)
		p->rate[k] = coopmat ? 0.075 : 0.5;
	if (!coopmat)
		for (int k = 0; k < PK_COUNT; k++)
			p->unit[k] = AWQ_MF_FP32;
	p->unit[PK_FP8] = AWQ_MF_FP8;
	p->mma_rows = coopmat ? 16 : 1;
	p->matvec_rows = 4;
	p->q4_split_rows = 8;
	p->matvec_row_q4 = 0.8;
	p->matvec_rate = 0.5;
	p->launch_decode_s = p->launch_prefill_s = 5e-6;
	p->launches_per_node = 1;
	p->vk_folds = 1;
	p->step_s = 60e-6;
	p->moe_decode_s = 19e-6;
	p->moe_decode_q4_s = 32e-6;
	p->kv_elem = 2;
	/* MoE prefill's grouped expert matmuls, fitted on qwen3-30b-a3b pp512: AWQ experts on the
	 * cooperative-matrix shader's 64 x 64 MOE tile at 0.365 of its rate (5863 tok/s, session 17),
	 * BF16 experts on the same tile at 0.28 (4762, session 18: converted to fp16 in its staging, where
	 * every value fits; 2061 on the f32 tile shader before); without cooperative matrices not measured */
	if (coopmat) {
		p->moe_prefill_eff = 0.28;
		p->moe_prefill_q4_eff = 0.365;
	}
}

/* Vulkan or OpenCL on the CPU (lavapipe, PoCL): shaders JIT-compiled to SIMD code; assumed to reach
 * 0.3 of the host bandwidth and 0.1 of the FP32 peak, 20 us per dispatch, 200 us per submit; the
 * Vulkan backend's fp16 KV cache. */
static void host_shader_profile(struct perf_profile *p)
{
	p->kind = "vulkan-cpu";
	for (int k = 0; k < PK_COUNT; k++) {
		p->eta_bw[k] = 0.30;
		p->rate[k] = 0.10;
		p->unit[k] = AWQ_MF_FP32;
	}
	p->mma_rows = 1;
	p->launch_decode_s = p->launch_prefill_s = 20e-6;
	p->launches_per_node = 1;
	p->vk_folds = 1; /* the same backend's folds */
	p->step_s = 200e-6;
	p->kv_elem = 2;
}

/* The CPU backend (backends/cpu): 16-bit weights widened to f32 and FMA'd; AWQ through int8 dot
 * products of unpacked nibbles with int8-quantized activations (VNNI / vpmaddubsw). Calibrated with
 * `awqrun bench --synthetic qwen3-0.6b,tinyllama-1.1b --precision awq,bf16 --backend cpu -p 64 -n 64`
 * on the 2-core AMD EPYC development VM (2026-11-30, commit d5a3fb1, docs/perf.md; its bandwidth
 * varies 23-67 GB/s with the load of other users): 16-bit decode at 0.84-0.89 of the read bandwidth
 * measured in the same run (0.95 kept: the low figures coincide with bandwidth dips), AWQ decode at
 * 0.78-0.85 (0.90 kept), pp64 at 0.58-0.72 of the FP32 FMA peak (16-bit; 0.60) and 0.54-0.55 of the
 * int8 peak (AWQ with one op per weight to unpack; 0.50). One pool dispatch per op, no fusion; f32
 * KV cache. */
static void cpu_profile(const struct awq_device_caps *d, struct perf_profile *p)
{
	p->kind = "cpu";
	p->eta_bw[PK_W16] = 0.95;
	p->eta_bw[PK_Q4] = 0.90;
	p->eta_bw[PK_FP8] = 0.90;
	p->eta_bw[PK_ATTN] = 0.70;
	p->eta_bw[PK_ELEM] = 0.80;
	p->rate[PK_W16] = p->rate[PK_ATTN] = p->rate[PK_ELEM] = 0.60;
	p->rate[PK_Q4] = 0.50;
	p->rate[PK_FP8] = 0.20;
	for (int k = 0; k < PK_COUNT; k++)
		p->unit[k] = AWQ_MF_FP32;
	p->unit[PK_Q4] = d->rate[AWQ_MF_INT8].v > 0 ? AWQ_MF_INT8 : AWQ_MF_FP32;
	p->q4_dequant_ops = 1.0;
	p->mma_rows = 1;
	p->launch_decode_s = p->launch_prefill_s = d->launch_us.v > 0 ? d->launch_us.v * 1e-6 : 5e-6;
	p->launches_per_node = 1;
	p->step_s = 0;
	p->kv_elem = 4;
}

static int base_bandwidth(const struct awq_device_caps *d, struct perf_profile *p, char *err, size_t errlen)
{
	if (d->measured_bw_gbs.v > 0) {
		p->bw = d->measured_bw_gbs.v * 1e9;
		p->bw_from = d->measured_bw_gbs.src == AWQ_SRC_HOST ? "host memory, measured" : "measured";
	} else if (d->peak_bw_gbs.v > 0) {
		p->bw = d->peak_bw_gbs.v * 1e9 * ETA_COPY_OF_PEAK;
		p->bw_from = "peak x 0.84";
	} else {
		return awq_err(err, errlen, AWQ_EUNSUPPORTED, "%s: no measured or peak bandwidth to predict from",
			       d->name);
	}
	return 0;
}

/* Peak rates times eta, and the sustained clock where a power cap holds the clock down (T4). */
static void apply_rates(const struct awq_device_caps *d, struct perf_profile *p)
{
	double clock = d->sustained_mhz > 0 && d->clock_mhz > 0 ? d->sustained_mhz / d->clock_mhz : 1.0;
	for (int k = 0; k < PK_COUNT; k++) {
		double peak = d->rate[p->unit[k]].v;
		if (peak <= 0 && p->unit[k] != AWQ_MF_FP32)
			peak = d->rate[AWQ_MF_FP32].v;
		p->rate[k] = peak > 0 ? p->rate[k] * peak * 1e12 * clock : 0;
	}
	p->matvec_rate *= d->rate[AWQ_MF_FP32].v > 0 ? d->rate[AWQ_MF_FP32].v * 1e12 * clock : 0;
}

int awq_perf_profile(const struct awq_device_caps *d, enum awq_scheme s, struct perf_profile *p, char *err,
		     size_t errlen)
{
	memset(p, 0, sizeof(*p));
	p->bf16_native = d->native[AWQ_MF_BF16] == 1;
	p->fp8_native = d->native[AWQ_MF_FP8] == 1;
	/* 16-bit GEMMs run on BF16 units for BF16 weights where they exist, else on FP16 FP32-acc. */
	enum awq_mfmt u16 = s == AWQ_SCHEME_BF16 && p->bf16_native ? AWQ_MF_BF16 : AWQ_MF_FP16_F32ACC;
	for (int k = 0; k < PK_COUNT; k++)
		p->unit[k] = u16;
	p->unit[PK_ELEM] = AWQ_MF_FP32;
	p->act_elem = 4;
	int host_shader = (strcmp(d->backend, "vulkan") == 0 && strcmp(d->vk.device_type, "cpu") == 0);
	if (strcmp(d->backend, "opencl") == 0)
		return awq_err(err, errlen, AWQ_EUNSUPPORTED, "awqrun has no OpenCL backend");
	if (strcmp(d->backend, "cpu") == 0)
		cpu_profile(d, p);
	else if (host_shader)
		host_shader_profile(p);
	else if (strcmp(d->backend, "cuda") == 0)
		cuda_profile(d, p);
	else
		vulkan_gpu_profile(d, p);
	int rc = base_bandwidth(d, p, err, errlen);
	if (rc)
		return rc;
	apply_rates(d, p);
	return 0;
}
