#!/usr/bin/env python3
"""Make the mixture-of-experts golden models: tiny random Qwen3MoeForCausalLM and MixtralForCausalLM
checkpoints written by Hugging Face transformers, with transformers' own logits.

Same files as tools/reference/make_golden.py writes (and its AWQ quantizer and packer, imported
from there): tests/data/golden_moe/<name>/ holds config.json + model.safetensors and
golden.safetensors with tokens I32 [T] and logits F32 [T, vocab], computed in float32 on exactly
the stored weights (bf16 upcast; AWQ weights dequantized as (q - zero) * fp16 scale).

AWQ checkpoints quantize every decoder Linear, the experts' included, and keep the router
(mlp.gate / block_sparse_moe.gate) in fp16, as AutoAWQ does. transformers 5 holds the experts
fused in memory and splits them per expert on save, so the checkpoint is first written in float32
by save_pretrained (giving the names a real checkpoint has), quantized tensor by tensor under
those names, and the reference model is loaded back from the dequantized tensors.

Routing is a discrete choice: where the k-th and (k+1)-th router logits of a token nearly tie,
the last bits of rounding decide which expert runs, and awqrun's CPU AWQ path (int8 activations)
legitimately differs from float32 there. Each model's seed is therefore advanced until every
token's top-k margin, in every sparse layer, is at least MIN_MARGIN in logit units (the choice
is then decided by the model, not by rounding); the chosen seed is printed.

Re-run (deterministic): python3 tools/reference/make_golden_moe.py [NAME...]   (torch, transformers, safetensors)
"""
import json
import os
import shutil
import sys
import tempfile

import torch
import transformers
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_golden  # noqa: E402  (AWQ quantizer/packer, bf16 writer, reference: one implementation)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "data", "golden_moe")
MIN_MARGIN = 0.05
ROUTER_SCALE = 4.0  # spreads the router logits so that margins above MIN_MARGIN are common

BASE = dict(hidden_size=64, num_attention_heads=4, num_key_value_heads=2, vocab_size=320,
            max_position_embeddings=256, rms_norm_eps=1e-6, initializer_range=0.08)

MODELS = [
    # name, arch, config extras, awq (group, zero_point) or None
    ("qwen3moe-bf16", "qwen3_moe", dict(num_hidden_layers=3, head_dim=16, intermediate_size=96,
                                        moe_intermediate_size=32, num_experts=8, num_experts_per_tok=2,
                                        norm_topk_prob=False, mlp_only_layers=[1]), None),
    ("qwen3moe-step2-bf16", "qwen3_moe", dict(num_hidden_layers=4, head_dim=32, intermediate_size=128,
                                              moe_intermediate_size=48, num_experts=16, num_experts_per_tok=4,
                                              norm_topk_prob=True, decoder_sparse_step=2), None),
    ("qwen3moe-awq-g32", "qwen3_moe", dict(num_hidden_layers=3, head_dim=16, intermediate_size=128,
                                           moe_intermediate_size=64, num_experts=8, num_experts_per_tok=2,
                                           norm_topk_prob=True, mlp_only_layers=[0]), (32, True)),
    ("mixtral-bf16", "mixtral", dict(num_hidden_layers=2, intermediate_size=48, num_local_experts=8,
                                     num_experts_per_tok=2), None),
    ("mixtral-awq-g64", "mixtral", dict(num_hidden_layers=2, intermediate_size=64, num_local_experts=8,
                                        num_experts_per_tok=2), (64, True)),
    # Qwen2-MoE: Qwen2 attention (q/k/v bias) and a shared expert gated by sigmoid(shared_expert_gate)
    ("qwen2moe-bf16", "qwen2_moe", dict(num_hidden_layers=3, intermediate_size=96, moe_intermediate_size=32,
                                        shared_expert_intermediate_size=48, num_experts=8,
                                        num_experts_per_tok=2, norm_topk_prob=False, mlp_only_layers=[1]), None),
    ("qwen2moe-awq-g32", "qwen2_moe", dict(num_hidden_layers=2, intermediate_size=96, moe_intermediate_size=32,
                                           shared_expert_intermediate_size=64, num_experts=8,
                                           num_experts_per_tok=2, norm_topk_prob=True), (32, True)),
]

CLASSES = {"qwen3_moe": (transformers.Qwen3MoeConfig, transformers.Qwen3MoeForCausalLM),
           "mixtral": (transformers.MixtralConfig, transformers.MixtralForCausalLM),
           "qwen2_moe": (transformers.Qwen2MoeConfig, transformers.Qwen2MoeForCausalLM)}


def build(arch, extra, seed):
    torch.manual_seed(seed)
    cfg_cls, model_cls = CLASSES[arch]
    kw = dict(BASE)
    kw.update(extra)
    model = model_cls(cfg_cls(**kw)).float().eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif name.endswith("mlp.gate.weight"):
                p.mul_(ROUTER_SCALE)
            elif "experts" in name:  # fused expert tensors may be left uninitialised
                p.copy_(kw["initializer_range"] * torch.randn_like(p))
        for p in model.parameters():
            p.copy_(p.to(torch.bfloat16).float())
    return model


def routers(model):
    return [m for name, m in model.named_modules() if name.endswith("mlp.gate")]


def top_k_margin(model, tokens):
    """Smallest gap between the k-th and (k+1)-th router logit over all tokens and sparse layers."""
    margins = []

    def hook(mod, inp, out):
        logits = out[0] if isinstance(out, tuple) else out
        s = torch.sort(logits.float(), dim=-1, descending=True).values
        margins.append((s[:, mod.top_k - 1] - s[:, mod.top_k]).min().item())

    handles = [r.register_forward_hook(hook) for r in routers(model)]
    with torch.no_grad():
        model(tokens[None])
    for h in handles:
        h.remove()
    return min(margins)


def golden_tokens(model, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, model.config.vocab_size, (make_golden.T,), generator=g)


def quantizable(name):
    """Decoder Linears except the routers and Qwen2-MoE's shared_expert_gate ([1, hidden]: AutoAWQ
    packs 8 output columns per int32 and keeps it 16-bit)."""
    return (name.startswith("model.layers.") and name.endswith(".weight") and "norm" not in name
            and not name.endswith(".gate.weight") and not name.endswith("shared_expert_gate.weight"))


def save_awq(model, out, G, zero_point):
    """Quantize the checkpoint's Linears under their saved names; returns the reference model."""
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        sd = load_file(os.path.join(tmp, "model.safetensors"))
        cfg = json.load(open(os.path.join(tmp, "config.json")))
        ckpt, ref = {}, {}
        for name, w in sd.items():
            base = name[: -len(".weight")]
            if w.dim() == 2 and quantizable(name):
                qweight, qzeros, scales, ref[name] = make_golden.quantize_linear(w.float(), G, zero_point)
                ckpt[base + ".qweight"] = qweight
                if qzeros is not None:
                    ckpt[base + ".qzeros"] = qzeros
                ckpt[base + ".scales"] = scales
            else:
                ckpt[name] = w.to(torch.float16).contiguous()
                ref[name] = ckpt[name].float()
        save_file({k: v.contiguous() for k, v in ref.items()}, os.path.join(tmp, "model.safetensors"),
                  metadata={"format": "pt"})
        ref_model = type(model).from_pretrained(tmp, dtype=torch.float32).eval()
    save_file(ckpt, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    cfg["torch_dtype"] = "float16"
    cfg.pop("dtype", None)
    cfg["quantization_config"] = {"quant_method": "awq", "bits": 4, "group_size": G, "zero_point": zero_point,
                                  "version": "gemm", "modules_to_not_convert": None}
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    return ref_model


def make(i, name, arch, extra, awq):
    out = os.path.join(ROOT, name)
    for attempt in range(200):
        model = build(arch, extra, 3000 + 100 * i + attempt)
        if os.path.isdir(out):
            shutil.rmtree(out)
        os.makedirs(out)
        if awq is None:
            make_golden.save_bf16(model, out, 1)
        else:
            model = save_awq(model, out, *awq)
        tokens = golden_tokens(model, 4000 + i)
        margin = top_k_margin(model, tokens)
        if margin >= MIN_MARGIN:
            make_golden.reference(model, out, 4000 + i)
            print("%s: seed %d, smallest top-k logit margin %.3f, files %s"
                  % (name, 3000 + 100 * i + attempt, margin, sorted(os.listdir(out))))
            return
    raise SystemExit("%s: no seed with top-k margins >= %g" % (name, MIN_MARGIN))


def main(argv):
    """All models, or only those named on the command line (the others' files are left as they are)."""
    os.makedirs(ROOT, exist_ok=True)
    names = set(argv[1:])
    unknown = names - {m[0] for m in MODELS}
    if unknown:
        raise SystemExit("unknown model(s): %s" % ", ".join(sorted(unknown)))
    for i, (name, arch, extra, awq) in enumerate(MODELS):
        if not names or name in names:
            make(i, name, arch, extra, awq)
    with open(os.path.join(ROOT, "README.md"), "a" if names else "w") as f:
        f.write("MoE golden models made by tools/reference/make_golden_moe.py with torch %s, transformers %s%s.\n"
                % (torch.__version__, transformers.__version__, " (" + ", ".join(sorted(names)) + ")" if names else ""))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
