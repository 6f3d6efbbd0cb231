#!/usr/bin/env python3
"""Regenerates the seed corpus of the fuzz targets (tests/fuzz/corpus). The safetensors seeds come
from the reference writer (the `safetensors` package) where it is installed, plus hand-made
headers for layouts it never writes; the config seeds are shaped like published config.json files."""
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ST = os.path.join(HERE, "corpus", "safetensors")
CFG = os.path.join(HERE, "corpus", "config")


def raw(name, header, data=b""):
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(os.path.join(ST, name), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


def safetensors_seeds():
    raw("empty.st", {})
    raw("metadata_only.st", {"__metadata__": {"format": "pt"}})
    raw("scalar_and_empty.st", {"s": {"dtype": "F32", "shape": [], "data_offsets": [0, 4]},
                                "z": {"dtype": "BF16", "shape": [0, 4], "data_offsets": [4, 4]}},
        b"\x00\x00\x80\x3f")
    raw("overlap.st", {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                       "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, bytes(range(1, 13)))
    raw("f64_i16.st", {"d": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]},
                       "i": {"dtype": "I16", "shape": [2, 1], "data_offsets": [8, 12]}},
        b"\x01" * 12)
    try:
        import torch
        from safetensors.torch import save_file
    except ImportError:
        print("safetensors/torch not installed: reference-writer seeds not regenerated")
        return
    g = torch.Generator().manual_seed(1)
    save_file({"model.embed_tokens.weight": torch.randn(8, 4, generator=g).bfloat16(),
               "model.norm.weight": torch.randn(4, generator=g).bfloat16(),
               "lm_head.weight": torch.randn(8, 4, generator=g).half()},
              os.path.join(ST, "dense.st"), metadata={"format": "pt"})
    save_file({"q.qweight": torch.randint(-2**31, 2**31 - 1, (16, 2), generator=g, dtype=torch.int32),
               "q.qzeros": torch.randint(-2**31, 2**31 - 1, (2, 2), generator=g, dtype=torch.int32),
               "q.scales": torch.rand(2, 16, generator=g).half(),
               "q.bias": torch.randn(16, generator=g).half()},
              os.path.join(ST, "awq.st"))
    save_file({"a": torch.zeros(3, dtype=torch.int8), "b": torch.ones(2, 2, dtype=torch.float32),
               "c": torch.ones(1, dtype=torch.int64), "d": torch.ones(3, dtype=torch.bool),
               "e": torch.ones(2, dtype=torch.float8_e4m3fn), "f": torch.ones(5, dtype=torch.uint8)},
              os.path.join(ST, "mixed.st"))


BASE = {"hidden_size": 1024, "num_hidden_layers": 28, "num_attention_heads": 16,
        "num_key_value_heads": 8, "intermediate_size": 3072, "vocab_size": 151936,
        "max_position_embeddings": 40960, "rms_norm_eps": 1e-06, "hidden_act": "silu",
        "bos_token_id": 151643, "eos_token_id": 151645}


def cfg(name, arch, **kw):
    c = {"architectures": [arch], **BASE, **kw}
    with open(os.path.join(CFG, name), "w") as f:
        json.dump(c, f, indent=2)


def config_seeds():
    cfg("qwen3.json", "Qwen3ForCausalLM", head_dim=128, rope_theta=1000000, rope_scaling=None,
        tie_word_embeddings=True, attention_bias=False, torch_dtype="bfloat16")
    cfg("qwen2_awq.json", "Qwen2ForCausalLM", torch_dtype="float16", tie_word_embeddings=False,
        quantization_config={"quant_method": "awq", "bits": 4, "group_size": 128, "zero_point": True,
                             "version": "gemm", "modules_to_not_convert": None})
    cfg("llama31.json", "LlamaForCausalLM", rope_theta=500000.0, eos_token_id=[128001, 128008, 128009],
        bos_token_id=128000, vocab_size=128256, mlp_bias=False,
        rope_scaling={"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                      "original_max_position_embeddings": 8192, "rope_type": "llama3"})
    cfg("mistral_tf5.json", "MistralForCausalLM", dtype="bfloat16", head_dim=None, sliding_window=None,
        rope_parameters={"rope_type": "linear", "factor": 2.0, "rope_theta": 1000000.0})
    cfg("qwen3_moe.json", "Qwen3MoeForCausalLM", head_dim=128, num_experts=128, num_experts_per_tok=8,
        moe_intermediate_size=768, norm_topk_prob=True, decoder_sparse_step=1, mlp_only_layers=[0, 3])
    cfg("mixtral.json", "MixtralForCausalLM", num_local_experts=8, num_experts_per_tok=2)
    with open(os.path.join(CFG, "quant_config.json"), "w") as f:
        json.dump({"zero_point": True, "q_group_size": 128, "w_bit": 4, "version": "GEMM"}, f)


if __name__ == "__main__":
    os.makedirs(ST, exist_ok=True)
    os.makedirs(CFG, exist_ok=True)
    safetensors_seeds()
    config_seeds()
    sys.exit(0)
