#!/usr/bin/env python3
"""Make the golden test models: tiny random-weight checkpoints written by Hugging Face transformers,
with reference logits computed by transformers itself.

Each model directory under tests/data/golden/<name>/ holds a real checkpoint (config.json +
model.safetensors, or shards + model.safetensors.index.json) and golden.safetensors with
  tokens  I32 [T]         the input token ids
  logits  F32 [T, vocab]  transformers' logits for every position, computed in float32 on exactly
                          the stored weights (bf16 values upcast; AWQ weights dequantized as
                          (q - zero) * fp16 scale), so what remains is awqrun's arithmetic.

AWQ checkpoints use AutoAWQ's "gemm" layout: min-max asymmetric quantization per group of G input
channels (scale = (max - min) / 15, zero = clamp(round(-min / scale), 0, 15)), qweight [K, N/8] and
qzeros [K/G, N/8] int32 with 8 nibbles packed in the order AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7],
scales [K/G, N] fp16 (AutoAWQ awq/modules/linear/gemm.py WQLinear_GEMM.from_linear and
awq/utils/packing_utils.py; this is our own implementation of that layout).

Re-run (deterministic): python3 tools/reference/make_golden.py   (needs torch, transformers, safetensors)
"""
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
            intermediate_size=128, vocab_size=320, max_position_embeddings=256, rms_norm_eps=1e-6,
            initializer_range=0.08)


def build(arch, extra, seed):
    torch.manual_seed(seed)
    cfg_cls = {"llama": transformers.LlamaConfig, "qwen2": transformers.Qwen2Config,
               "qwen3": transformers.Qwen3Config}[arch]
    model_cls = {"llama": transformers.LlamaForCausalLM, "qwen2": transformers.Qwen2ForCausalLM,
                 "qwen3": transformers.Qwen3ForCausalLM}[arch]
    kw = dict(BASE)
    kw.update(extra)
    cfg = cfg_cls(**kw)
    model = model_cls(cfg).float().eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:  # make the norm weights matter
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.05 * torch.randn_like(p))
        # store in bf16: round every parameter once, keep computing in f32 on the rounded values
        for p in model.parameters():
            p.copy_(p.to(torch.bfloat16).float())
    return model


def quantize(w, G, zero_point):
    """w: [N, K] float. Returns q [N, K] ints, zeros [N, K/G] ints or None, scales [N, K/G] fp16."""
    N, K = w.shape
    g = w.reshape(N, K // G, G)
    if zero_point:
        mx, mn = g.amax(dim=2), g.amin(dim=2)
        s = ((mx - mn).clamp(min=1e-5) / 15)
        z = (-torch.round(mn / s)).clamp(0, 15)
        s16 = s.half()
        q = (torch.round(g / s16.float()[..., None]) + z[..., None]).clamp(0, 15)
        return q.reshape(N, K).int(), z.int(), s16
    s = g.abs().amax(dim=2).clamp(min=1e-5) / 7
    s16 = s.half()
    q = (torch.round(g / s16.float()[..., None]).clamp(-8, 7) + 8)
    return q.reshape(N, K).int(), None, s16


def pack(m):
    """m: [R, C] ints in 0..15 -> [R, C/8] int32, AutoAWQ nibble order."""
    R, C = m.shape
    out = torch.zeros(R, C // 8, dtype=torch.int64)
    cols = m.reshape(R, C // 8, 8).long()
    for i in range(8):
        out |= cols[:, :, AWQ_ORDER[i]] << (4 * i)
    out = torch.where(out >= 2 ** 31, out - 2 ** 32, out)
    return out.int()


def awq_state(model, G, zero_point, not_convert):
    """Replace decoder Linear weights by AWQ tensors; dequantize them into the model in place."""
    sd = {}
    for name, mod in model.named_modules():
        if not isinstance(mod, torch.nn.Linear) or not name.startswith("model.layers."):
            continue
        if any(nc in name for nc in not_convert):
            continue
        w = mod.weight.data.float()
        q, z, s16 = quantize(w, G, zero_point)
        N, K = w.shape
        zz = z if z is not None else torch.full((N, K // G), 8, dtype=torch.int32)
        deq = (q.reshape(N, K // G, G) - zz[..., None]).float() * s16.float()[..., None]
        mod.weight.data.copy_(deq.reshape(N, K))
        sd[name + ".qweight"] = pack(q.t().contiguous())
        if z is not None:
            sd[name + ".qzeros"] = pack(z.t().contiguous())
        sd[name + ".scales"] = s16.t().contiguous()
    return sd


def save(model, out, awq=None, shards=1):
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    tied = model.config.tie_word_embeddings
    if awq is None:
        model.to(torch.bfloat16).save_pretrained(out, max_shard_size="60KB" if shards > 1 else "5GB")
        model.float()
    else:
        G, zero_point, not_convert = awq
        sd = awq_state(model, G, zero_point, not_convert)
        for name, p in model.state_dict().items():
            base = name.rsplit(".", 1)[0]
            if name.endswith(".weight") and base + ".qweight" in sd:
                continue
            if tied and name == "lm_head.weight":
                continue
            sd[name] = p.detach().to(torch.float16).contiguous()
        save_file(sd, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
        cfg = model.config.to_diff_dict()
        cfg["architectures"] = [model.__class__.__name__]
        cfg["torch_dtype"] = "float16"
        cfg.pop("dtype", None)
        cfg["quantization_config"] = {"quant_method": "awq", "bits": 4, "group_size": G,
                                      "zero_point": zero_point, "version": "gemm",
                                      "modules_to_not_convert": not_convert or None}
        with open(os.path.join(out, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        # AWQ checkpoints keep unquantized tensors in fp16: compute the reference on those values
        with torch.no_grad():
            for name, p in model.named_parameters():
                base = name.rsplit(".", 1)[0]
                if base + ".qweight" not in sd:
                    p.copy_(p.half().float())


def reference(model, out, seed):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, model.config.vocab_size, (T,), generator=g)
    with torch.no_grad():
        logits = model(tokens[None]).logits[0].float()
    save_file({"tokens": tokens.int().contiguous(), "logits": logits.contiguous()},
              os.path.join(out, "golden.safetensors"))


MODELS = [
    # name, arch, config extras, awq (group, zero_point, modules_to_not_convert) or None, shards
    ("llama-bf16", "llama", {}, None, 1),
    ("llama3rope-bf16-sharded", "llama", {"rope_theta": 500000.0, "rope_scaling": {
        "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
        "original_max_position_embeddings": 64}}, None, 2),
    ("qwen2-bf16", "qwen2", {"tie_word_embeddings": True}, None, 1),
    ("qwen3-bf16", "qwen3", {"head_dim": 32}, None, 1),
    ("llama-awq-g32", "llama", {}, (32, True, []), 1),
    ("llama-awq-sym-g64", "llama", {}, (64, False, []), 1),
    ("qwen2-awq-g64", "qwen2", {"tie_word_embeddings": True}, (64, True, []), 1),
    ("qwen3-awq-g64", "qwen3", {"head_dim": 32}, (64, True, []), 1),
    ("qwen3-awq-notconvert", "qwen3", {"head_dim": 32}, (64, True, ["mlp.down_proj"]), 1),
]


def main():
    os.makedirs(ROOT, exist_ok=True)
    for i, (name, arch, extra, awq, shards) in enumerate(MODELS):
        model = build(arch, extra, 1000 + i)
        out = os.path.join(ROOT, name)
        save(model, out, awq, shards)
        reference(model, out, 2000 + i)
        print(name, sorted(os.listdir(out)))
    with open(os.path.join(ROOT, "README.md"), "w") as f:
        f.write("Golden models made by tools/reference/make_golden.py with torch %s, transformers %s.\n"
                % (torch.__version__, transformers.__version__))


if __name__ == "__main__":
    sys.exit(main())
