#!/usr/bin/env python3
"""Make the text-generation golden: a tiny random Qwen3ForCausalLM (BF16) with the byte-level BPE
tokenizer of tests/data/tokenizer/qwen2 (Qwen2/Qwen3 pre-tokenizer, Qwen3 chat template), and
transformers' own results on it:
  - greedy generate() tokens for the chat-formatted prompt "Why is the sky blue?" with thinking
    off (what `awqrun run -m DIR -p "Why is the sky blue?" --no-think --temp 0 -n N` must print);
  - the perplexity of ppl.txt by the sliding-window method of the transformers perplexity guide
    (windows of CTX tokens every STRIDE tokens, each scoring the tokens the previous window did
    not; the first token is never scored), per-token NLL summed in float64.
Re-run (deterministic, CPU, seconds; needs torch, transformers, tokenizers):
    python3 tools/reference/make_tokenizer_golden.py   # first, if the tokenizer changed
    python3 tools/reference/make_gen_golden.py
Writes tests/data/gen/qwen3-tiny/: config.json, generation_config.json, model.safetensors,
tokenizer.json, tokenizer_config.json, ppl.txt, golden.json, golden_tokens.txt.
The reference runs in float32 on the stored bf16 values. The seed is chosen so that every greedy
step's top-1 logit leads the runner-up by at least MARGIN, so summation-order differences cannot
flip a token.
"""
import json
import math
import os
import shutil

import torch
import transformers

HERE = os.path.dirname(os.path.abspath(__file__))
TOK = os.path.join(HERE, "..", "..", "tests", "data", "tokenizer", "qwen2")
OUT = os.path.join(HERE, "..", "..", "tests", "data", "gen", "qwen3-tiny")
PROMPT = "Why is the sky blue?"
N_NEW = 24
# a path through varied tokens (random models tend to repeat one), so positions and the cache matter
CTX, STRIDE = 64, 24
MARGIN = 0.02
PPL_TEXT = """The quick brown fox jumps over the lazy dog. Why is the sky blue? Because air molecules scatter
short wavelengths of sunlight more than long ones; this is called Rayleigh scattering.
Numbers: 0 1 2 3 12 123 1234 3.14159 2024-06-01 $19.99 100%.
中文测试：天空为什么是蓝色的？因为瑞利散射。我们喜欢自然语言处理。
Русский текст: почему небо голубое? Emoji: 😀 👍🏽 🚀✨ café naïve résumé.
def main(argv):
    for i in range(10):
        print(f"{i}: {argv[i]!r}")
    return 0
"""


def build(seed, vocab, eos):
    torch.manual_seed(seed)
    cfg = transformers.Qwen3Config(vocab_size=vocab, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                   num_key_value_heads=2, head_dim=32, intermediate_size=128,
                                   max_position_embeddings=512, rms_norm_eps=1e-6, rope_theta=10000.0,
                                   tie_word_embeddings=True, initializer_range=0.15, bos_token_id=None,
                                   eos_token_id=eos[0], pad_token_id=eos[1])
    model = transformers.Qwen3ForCausalLM(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():  # norms get random gains too, so nothing is trivially 1
            if p.dim() == 1:
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            p.copy_(p.to(torch.bfloat16).float())
    return model


def greedy(model, ids, eos):
    out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                         max_new_tokens=N_NEW, do_sample=False, eos_token_id=eos, pad_token_id=eos[1],
                         output_scores=True, return_dict_in_generate=True)
    gen = out.sequences[0, len(ids):].tolist()
    margin = min((s[0].topk(2).values[0] - s[0].topk(2).values[1]).item() for s in out.scores)
    return gen, margin


def perplexity(model, ids):
    nll, scored, prev_end = 0.0, 0, 0
    for begin in range(0, len(ids), STRIDE):
        end = min(begin + CTX, len(ids))
        lo = max(prev_end, begin + 1)
        with torch.no_grad():
            logits = model(torch.tensor([ids[begin:end]])).logits[0].double()
        logp = torch.log_softmax(logits, dim=-1)
        for t in range(lo, end):
            nll -= logp[t - 1 - begin, ids[t]].item()
        scored += end - lo
        prev_end = end
        if end == len(ids):
            break
    return math.exp(nll / scored), scored


def main():
    tok = transformers.PreTrainedTokenizerFast.from_pretrained(TOK)
    eos = [tok.convert_tokens_to_ids("<|im_end|>"), tok.convert_tokens_to_ids("<|endoftext|>")]
    text = tok.apply_chat_template([{"role": "user", "content": PROMPT}], tokenize=False,
                                   add_generation_prompt=True, enable_thinking=False)
    prompt_ids = tok(text, add_special_tokens=False)["input_ids"]
    ppl_ids = tok(PPL_TEXT)["input_ids"]
    for seed in range(300):
        model = build(seed, len(tok), eos)
        gen, margin = greedy(model, prompt_ids, eos)
        if margin >= MARGIN and len(gen) == N_NEW and len(set(gen)) >= 8:
            break
    else:
        raise SystemExit("no seed gives a clear greedy path")
    ppl, scored = perplexity(model, ppl_ids)
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    model.generation_config.eos_token_id = eos
    model.generation_config.pad_token_id = eos[1]
    model.to(torch.bfloat16).save_pretrained(OUT)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(TOK, f), OUT)
    with open(os.path.join(OUT, "ppl.txt"), "w") as f:
        f.write(PPL_TEXT)
    golden = {"torch_version": torch.__version__, "transformers_version": transformers.__version__, "seed": seed,
              "prompt": PROMPT, "chat_text": text, "prompt_ids": prompt_ids, "generated_ids": gen,
              "min_top1_margin": margin, "generated_text": tok.decode(gen, skip_special_tokens=True),
              "ppl": {"ctx": CTX, "stride": STRIDE, "tokens": len(ppl_ids), "scored": scored, "value": ppl}}
    with open(os.path.join(OUT, "golden.json"), "w") as f:
        json.dump(golden, f, ensure_ascii=False, indent=1)
        f.write("\n")
    with open(os.path.join(OUT, "golden_tokens.txt"), "w") as f:
        f.write(" ".join(map(str, gen)) + "\n")
    print("seed", seed, "margin %.4f" % margin, "generated", gen, "ppl %.6f over %d tokens" % (ppl, scored))


if __name__ == "__main__":
    main()
