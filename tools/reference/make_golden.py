#!/usr/bin/env python3
"""Make the golden test models: tiny random-weight checkpoints written with Hugging Face
transformers, and reference logits computed by transformers itself.

Re-run (deterministic, CPU only, a few seconds):
    python3 tools/reference/make_golden.py [--only NAME[,NAME...]]
It needs torch, transformers and safetensors; it rewrites every directory under tests/data/golden/
and tests/data/golden/README.md (which records the torch and transformers versions used).

Each tests/data/golden/<name>/ holds a checkpoint as a real one looks (config.json written by
transformers, model.safetensors or shards + model.safetensors.index.json) and golden.safetensors:
    tokens  I32 [T]         input token ids (seeded random)
    logits  F32 [T, vocab]  transformers' logits at every position
The reference runs in float32 on exactly the stored values (bf16/fp16 upcast, AWQ weights
dequantized as (q - z) * s with the fp16 scales), so what remains is awqrun's own arithmetic.

AWQ models follow AutoAWQ's "gemm" export (awq/quantize/quantizer.py AwqQuantizer._apply_quant,
pseudo_quantize_tensor; awq/modules/linear/gemm.py WQLinear_GEMM.from_linear), reimplemented here:
every nn.Linear of the decoder layers (not embed_tokens, not lm_head, not modules_to_not_convert)
is cast to fp16 and quantized per group of G input channels with the min-max asymmetric quantizer
    s = clamp(max - min, 1e-5) / 15,  z = clamp(round(-min / s), 0, 15),
    w' = (clamp(round(w / s) + z, 0, 15) - z) * s
then from_linear recomputes the integers as round((w' + z * s) / s_fp16) and packs them into
qweight [K, N/8] and the zeros into qzeros [K/G, N/8] (int32, physical nibble i holds logical
column AWQ_ORDER[i] of each group of 8), scales [K/G, N] fp16; biases and every other tensor fp16.

zero_point false: pseudo_quantize_tensor quantizes symmetrically (s = max|w| / 7,
q = clamp(round(w / s), -8, 7)) and returns zeros = None, but from_linear starts with
`assert scales is not None and zeros is not None`, so AutoAWQ cannot export a GEMM checkpoint
without zero points, and its GEMM loader (and dequantize_gemm) always reads qzeros. The one
symmetric model here therefore stores the signed grid as unsigned nibbles q + 8 and omits qzeros:
the checkpoint form the awqrun loader defines for zero_point false (a constant zero of 8).
"""
import copy
import json
import os
import shutil
import sys

import torch
import transformers
from safetensors.torch import save_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "data", "golden")
AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7]
T = 12

BASE = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            intermediate_size=160, vocab_size=320, max_position_embeddings=256, rms_norm_eps=1e-6,
            rope_theta=10000.0, initializer_range=0.08)
LLAMA3_ROPE = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 64}

# name, arch, config changes, AWQ (group size, zero_point, modules_to_not_convert) or None, shards
MODELS = [
    ("llama-bf16", "llama", {}, None, 1),
    ("llama3rope-bf16-sharded", "llama", {"rope_theta": 500000.0, "rope_scaling": LLAMA3_ROPE},
     None, 2),
    ("qwen2-bf16", "qwen2", {"tie_word_embeddings": True}, None, 1),
    ("qwen3-bf16", "qwen3", {"head_dim": 32}, None, 1),
    ("llama-awq-g32", "llama", {}, (32, True, None), 1),
    ("llama-awq-sym-g64", "llama", {"intermediate_size": 192}, (64, False, None), 1),
    ("qwen2-awq-g64", "qwen2", {"tie_word_embeddings": True, "intermediate_size": 128},
     (64, True, None), 1),
    ("qwen3-awq-g64", "qwen3", {"head_dim": 32, "intermediate_size": 128}, (64, True, None), 1),
    ("qwen3-awq-notconvert", "qwen3", {"head_dim": 32, "intermediate_size": 128},
     (64, True, ["mlp.down_proj"]), 1),
    # head_dim 64: the head size GPU decode attention's fast variants take (Vulkan attention.comp's
    # HD variants, their grouped-query workgroups)
    ("qwen3-hd64-awq-g64", "qwen3", {"head_dim": 64, "intermediate_size": 128}, (64, True, None), 1),
]

ARCH = {"llama": (transformers.LlamaConfig, transformers.LlamaForCausalLM),
        "qwen2": (transformers.Qwen2Config, transformers.Qwen2ForCausalLM),
        "qwen3": (transformers.Qwen3Config, transformers.Qwen3ForCausalLM)}


def build(arch, extra, seed):
    """A float32 model whose parameters are all bf16 values."""
    torch.manual_seed(seed)
    cfg_cls, model_cls = ARCH[arch]
    kw = dict(BASE)
    kw.update(extra)
    model = model_cls(cfg_cls(**kw)).float().eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:  # random norm weights, so a missing or misplaced norm shows
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.05 * torch.randn_like(p))
            p.copy_(p.to(torch.bfloat16).float())
    return model


def pseudo_quantize(w, G, zero_point):
    """AutoAWQ's group quantizer on an fp16 [N, K] weight: (dequantized w, scales, zeros or None),
    scales and zeros [N, K/G] in fp16 like the module they come from."""
    N, K = w.shape
    g = w.reshape(-1, G)
    if zero_point:
        mx, mn = g.amax(dim=1, keepdim=True), g.amin(dim=1, keepdim=True)
        s = (mx - mn).clamp(min=1e-5) / 15
        z = (-torch.round(mn / s)).clamp(0, 15)
        deq = (torch.clamp(torch.round(g / s) + z, 0, 15) - z) * s
        return deq.reshape(N, K), s.view(N, -1), z.view(N, -1)
    s = g.abs().amax(dim=1, keepdim=True).clamp(min=1e-5) / 7
    deq = torch.clamp(torch.round(g / s), -8, 7) * s
    return deq.reshape(N, K), s.view(N, -1), None


def pack(m):
    """[R, C] ints in 0..15 -> [R, C/8] int32, physical nibble i = logical column AWQ_ORDER[i]."""
    R, C = m.shape
    assert int(m.min()) >= 0 and int(m.max()) <= 15, "value outside 4 bits"
    cols = m.reshape(R, C // 8, 8).long()
    out = torch.zeros(R, C // 8, dtype=torch.int64)
    for i in range(8):
        out |= cols[:, :, AWQ_ORDER[i]] << (4 * i)
    return torch.where(out >= 2 ** 31, out - 2 ** 32, out).int()


def quantize_linear(w, G, zero_point):
    """w: float [N, K]. Returns the stored tensors (qweight, qzeros or None, scales) and the
    float32 weight they dequantize to."""
    N, K = w.shape
    deq, s, z = pseudo_quantize(w.half(), G, zero_point)
    s16 = s.t().contiguous().half()  # [K/G, N]
    zt = torch.zeros_like(s16) if z is None else z.t().contiguous()
    # from_linear: integers from the dequantized weight, per input row, against the fp16 scales
    rows = torch.arange(K) // G
    q = torch.round((deq.t() + (zt * s16)[rows]) / s16[rows]).int()  # [K, N]
    if z is None:
        q = q + 8  # signed grid stored as unsigned nibbles; the loader's zero is 8
        zt = torch.full_like(zt, 8)
    zi = zt.int()
    w32 = ((q - zi[rows]).float() * s16.float()[rows]).t().contiguous()
    return pack(q), (pack(zi) if z is not None else None), s16, w32


def save_awq(model, out, G, zero_point, not_convert):
    """Write model as an AutoAWQ GEMM checkpoint; afterwards model holds exactly the stored values."""
    sd, dequantized = {}, {}
    for name, mod in model.named_modules():
        if not isinstance(mod, torch.nn.Linear) or not name.startswith("model.layers."):
            continue
        if not_convert and any(nc in name for nc in not_convert):
            continue
        qweight, qzeros, scales, w32 = quantize_linear(mod.weight.data, G, zero_point)
        sd[name + ".qweight"] = qweight
        if qzeros is not None:
            sd[name + ".qzeros"] = qzeros
        sd[name + ".scales"] = scales
        dequantized[name + ".weight"] = w32
    tied = model.config.tie_word_embeddings
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name in dequantized:
                p.copy_(dequantized[name])
                continue
            p.copy_(p.half().float())  # AutoAWQ saves everything else (biases too) in fp16
            if not (tied and name == "lm_head.weight"):
                sd[name] = p.detach().half().contiguous()
    save_file(sd, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    cfg = copy.deepcopy(model.config)
    cfg.architectures = [model.__class__.__name__]
    cfg.dtype = torch.float16
    cfg.quantization_config = {"quant_method": "awq", "bits": 4, "group_size": G,
                               "zero_point": zero_point, "version": "gemm",
                               "modules_to_not_convert": not_convert}
    cfg.save_pretrained(out)
    # AutoAWQ checkpoints in the wild were written by transformers 4.x, which says "torch_dtype";
    # the BF16 models keep transformers 5's "dtype", so the loader sees both spellings.
    path = os.path.join(out, "config.json")
    with open(path) as f:
        js = json.load(f)
    js["torch_dtype"] = js.pop("dtype")
    with open(path, "w") as f:
        json.dump(js, f, indent=2, sort_keys=True)
        f.write("\n")


def save_bf16(model, out, shards):
    # a copy: .to(bfloat16) also rounds the rotary inv_freq buffers the reference must keep in f32
    m16 = copy.deepcopy(model).to(torch.bfloat16)
    total = sum(p.numel() * 2 for p in m16.state_dict().values())
    # greedy sharding in tensor order: half the bytes plus half the largest tensor gives two files
    size = total // shards + 24 * 1024 if shards > 1 else "5GB"
    m16.save_pretrained(out, max_shard_size=size)
    if shards > 1:
        with open(os.path.join(out, "model.safetensors.index.json")) as f:
            files = set(json.load(f)["weight_map"].values())
        assert len(files) == shards, "got %d shards, wanted %d" % (len(files), shards)


def check_awq(model, out, G):
    """Decode the written file the way AutoAWQ's dequantize_gemm does (shift out nibbles, undo the
    order with AWQ_REVERSE_ORDER) and insist it gives the weights the reference uses."""
    from safetensors.torch import load_file
    sd = load_file(os.path.join(out, "model.safetensors"))
    reverse = [AWQ_ORDER.index(j) for j in range(8)]
    params = dict(model.named_parameters())

    def unpack(x):
        nib = (x.long()[..., None] >> torch.arange(0, 32, 4)) & 15
        return nib[..., reverse].reshape(x.shape[0], -1)
    for name, qw in sd.items():
        if not name.endswith(".qweight"):
            continue
        base = name[:-len(".qweight")]
        q = unpack(qw)
        K = q.shape[0]
        z = unpack(sd[base + ".qzeros"]) if base + ".qzeros" in sd else torch.full_like(q[::G], 8)
        w = (q - z.repeat_interleave(G, 0)).float() * sd[base + ".scales"].float().repeat_interleave(G, 0)
        assert K % G == 0 and torch.equal(w.t(), params[base + ".weight"].data), base


def reference(model, out, seed):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, model.config.vocab_size, (T,), generator=g)
    with torch.no_grad():
        logits = model(tokens[None]).logits[0].float()
    save_file({"tokens": tokens.int().contiguous(), "logits": logits.contiguous()},
              os.path.join(out, "golden.safetensors"))


README = """# Golden models

Made by `python3 tools/reference/make_golden.py` with torch {torch}, transformers {tf}
(deterministic: fixed seeds; the script's docstring explains every choice). Each directory is a
tiny random-weight checkpoint plus `golden.safetensors` (`tokens` I32 [T], `logits` F32 [T, vocab],
transformers' float32 logits on exactly the stored weights). tests/golden/test_golden checks
awqrun against them.

| model | architecture | weights | notes |
|---|---|---|---|
{rows}

All: hidden 64, 2 layers, 4 heads / 2 KV heads (GQA), vocab 320, rms_norm_eps 1e-6, T = {T} tokens.

zero_point false: AutoAWQ's symmetric quantizer returns no zeros and WQLinear_GEMM.from_linear
asserts zeros is not None, so AutoAWQ itself never writes a GEMM checkpoint without qzeros.
`llama-awq-sym-g64` stores the symmetric grid q in [-8, 7] as unsigned nibbles q + 8 and has no
qzeros tensors, which the awqrun loader reads as a constant zero point of 8.
"""


def describe(name, arch, extra, awq, shards):
    cfg = dict(BASE)
    cfg.update(extra)
    notes = ["intermediate %d" % cfg["intermediate_size"]]
    if "head_dim" in extra:
        notes.append("head_dim %d" % extra["head_dim"])
    if extra.get("tie_word_embeddings"):
        notes.append("tied embeddings")
    if "rope_scaling" in extra:
        notes.append("llama3 rope scaling, rope_theta %g" % extra["rope_theta"])
    if shards > 1:
        notes.append("%d shards + index" % shards)
    if awq is None:
        weights = "BF16"
    else:
        G, zp, nc = awq
        weights = "AWQ GEMM INT4, G %d, zero_point %s" % (G, "true" if zp else "false")
        if nc:
            notes.append("modules_to_not_convert %s (stay fp16)" % nc)
    return "| %s | %s | %s | %s |" % (name, ARCH[arch][1].__name__, weights, "; ".join(notes))


def main():
    # --only NAME[,NAME...]: make those models alone (each keeps its seed, from its place in MODELS)
    # and leave README.md as it is (its table lists every model; the versions line is the full run's)
    only = None
    if len(sys.argv) == 3 and sys.argv[1] == "--only":
        only = sys.argv[2].split(",")
        unknown = [n for n in only if n not in [m[0] for m in MODELS]]
        if unknown:
            print("no such model: %s" % ", ".join(unknown), file=sys.stderr)
            return 2
    elif len(sys.argv) != 1:
        print("usage: make_golden.py [--only NAME[,NAME...]]", file=sys.stderr)
        return 2
    os.makedirs(ROOT, exist_ok=True)
    for i, (name, arch, extra, awq, shards) in enumerate(MODELS):
        if only is not None and name not in only:
            continue
        model = build(arch, extra, 1000 + i)
        out = os.path.join(ROOT, name)
        if os.path.isdir(out):
            shutil.rmtree(out)
        os.makedirs(out)
        if awq is None:
            save_bf16(model, out, shards)
        else:
            save_awq(model, out, *awq)
            check_awq(model, out, awq[0])
        reference(model, out, 2000 + i)
        print(name, sorted(os.listdir(out)))
    if only is not None:
        print("README.md left as it is; its row for %s: %s" % (
            ", ".join(only), "\n".join(describe(*m) for m in MODELS if m[0] in only)))
        return 0
    rows = "\n".join(describe(*m) for m in MODELS)
    with open(os.path.join(ROOT, "README.md"), "w") as f:
        f.write(README.format(torch=torch.__version__, tf=transformers.__version__, rows=rows, T=T))
    return 0


if __name__ == "__main__":
    sys.exit(main())
