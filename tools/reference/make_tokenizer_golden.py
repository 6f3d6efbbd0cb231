#!/usr/bin/env python3
"""Make the tokenizer goldens: small tokenizers trained with the real Hugging Face `tokenizers`
library in the configurations real checkpoints use, and the library's own encode/decode output
(and transformers' apply_chat_template output) on a broad text set.

Re-run (deterministic, CPU only, seconds; needs tokenizers, transformers and jinja2, no torch):
    python3 tools/reference/make_tokenizer_golden.py
It rewrites tests/data/tokenizer/<name>/{tokenizer.json,tokenizer_config.json,golden.json}:
  qwen2   byte-level BPE with Qwen2/Qwen3's exact Split regex, NFC normalizer, the special tokens
          <|endoftext|> <|im_start|> <|im_end|> and the non-special <think> </think>; Qwen3's
          chat template (ChatML with the enable_thinking switch)
  llama3  byte-level BPE with Llama-3's regex (\\p{N}{1,3}), ignore_merges, a TemplateProcessing
          post-processor adding <|begin_of_text|>; Llama-3-Instruct's chat template
  qwen25, llama31  the qwen2 / llama3 tokenizers with Qwen2.5's template (default system message)
          and Llama-3.1's (system block with the knowledge cutoff); chat cases only
  llama2  SentencePiece-style BPE as Llama-2's tokenizer.json has it: Prepend("▁") + Replace(" ",
          "▁") normalizer, no pre-tokenizer, <0xNN> byte fallback, <unk>/<s>/</s>, decoder
          Replace/ByteFallback/Fuse/Strip; Llama-2's [INST] template (awqrun does not format it:
          the unknown-template error test)
  mistral the llama2 model with a Metaspace pre-tokenizer (prepend_scheme "first") and decoder
golden.json: {"encode": [{text, add_special, ids}], "decode": [{ids, skip_special, text}],
              "chat": [{messages, enable_thinking, text}]}
"""
import json
import os
import random

import tokenizers
import transformers
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "data", "tokenizer")

QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")

CORPUS = """The quick brown fox jumps over the lazy dog. Why is the sky blue? Because air molecules scatter
short wavelengths of sunlight more than long ones; this is called Rayleigh scattering.
It's a test: we'll see, they're here, I've done it, you'd know, I'm sure. DON'T SHOUT, it'S fine.
Numbers: 0 1 2 3 12 123 1234 12345 3.14159 2024-06-01 10:30 $19.99 100% 1,000,000 0x1F -42 +7.
def main(argv):\n    for i in range(10):\n        print(f"{i}: {argv[i]!r}")\n    return 0\n
int main(void) { return printf("%d\\n", 42) > 0 ? 0 : 1; }   // C code with   spaces
Tabs\tand\tnewlines\n\nand  double  spaces   and trailing spaces   \n\r\n windows line ends\r\n
中文测试：天空为什么是蓝色的？因为瑞利散射。我们喜欢自然语言处理。你好，世界！
日本語のテキスト：空はなぜ青いのですか。カタカナとひらがな。東京は日本の首都です。
한국어 텍스트: 하늘은 왜 파란가요? 안녕하세요 세계.
Русский текст: почему небо голубое? Привет, мир! Ёлка и ёжик.
Ελληνικά: γεια σου κόσμε. العربية: مرحبا بالعالم. עברית: שלום עולם. हिन्दी: नमस्ते दुनिया।
Emoji: 😀 😃 👍🏽 👨‍👩‍👧‍👦 🇫🇷 ❤️ 🚀✨ — dashes – and “quotes” ‘single’ «guillemets» … ellipsis.
Accents: café naïve résumé Ångström façade Zoë coöperate São Paulo Łódź Dvořák crème brûlée.
Mixed: GPT-4o, Qwen2.5-7B-Instruct, llama3.1:8b, e=mc², H₂O, ½ ¼, Ⅻ, ①②③, ﬁ ligature, ＦＵＬＬ width.
"""


def corpus_lines():
    lines = CORPUS.replace("\\n", "\n").split("\n")
    return [l for l in lines if l] * 3


TEXTS = [
    "", " ", "  ", "\n", "\n\n\n", "\t", " \t \n ", "a", "Hello", " Hello", "Hello world", "Hello  world",
    "Hello world ", "Hello world  ", "hello\nworld", "hello\r\nworld\r\n", "line1\n\n  line2\n   ",
    "Why is the sky blue?", "It's what we'll do, they'RE sure I'M right.", "don't DON'T Don't",
    "0", "7", "42", "123", "1234", "12345678901", "3.14159", "1,000,000", "2024-06-01T10:30:00Z",
    "$19.99 (100%)", "x1y22z333w4444", "٣٤٥ ۱۲۳ ๑๒๓ ①②",
    "中文测试", "天空为什么是蓝色的？", "你好，世界！Hello, world!", "日本語のテキスト", "東京タワー",
    "한국어 텍스트", "Привет, мир!", "Ελληνικά γεια", "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया",
    "😀", "👍🏽", "👨‍👩‍👧‍👦", "🇫🇷🇩🇪", "❤️", "🚀✨🔥", "smile 😀 and 🙃 twice 😀😀", "\U0001F9EC\U0001FAE0",
    "café", "cafe\u0301", "Ångström", "A\u030angstro\u0308m", "ﬁ ﬂ", "ＦＵＬＬ", "e=mc² H₂O ½",
    "def main(argv):\n    return 0\n", "if (x) {\n\treturn y;\n}\n", "    indented", "a    b",
    "trailing   \n", "    ", "  \n  \n", "x \n y", "?!...", "---===", "«guillemets» “quotes”",
    "<|im_start|>user\nhi<|im_end|>\n", "Hello<|im_end|>world", "a <|endoftext|> b", "<|im_start|><|im_end|>",
    "<think>\nreasoning\n</think>\n\nanswer", "x<think>y", "<|begin_of_text|>Hi", "<|eot_id|>",
    "<s>hello</s>", "<unk>", "<|im_start", "<|im_end|", "text <s> more",
    "Mixed 中文 and English and 日本語 with 123 numbers 😀.",
    "\u00a0non-breaking\u00a0space", "zero\u200bwidth", "\u3000ideographic space", "tab\tsep\tvalues",
    "MiXeD CaSe WoRdS", "URL: https://example.com/path?q=1&r=2#frag", "email@example.com",
    "a\u0085b", "a\u2028b\u2029c", "\u000b\u000c x", "\u001c\u001d\u001e\u001f", "\u180e", "\ufeffBOM",
    "\u2000\u2001\u2002x\u200a", "a\u00adb", "\U0010FFFF\uE000", "\u0301alone",
    "Türkçe İstanbul ıi", "ǅ ǈ ß ẞ", "(?i:'S) 'LL 'Ve", "'s's's", "a's b'T",
    # (no NUL characters: the C test reads cases with cJSON, whose strings end at NUL)
    "a" * 60, "ab" * 30, " " * 17 + "x", "\n" * 7 + "y", "😀" * 9, "中" * 20,
]

QWEN3_TEMPLATE = r"""{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0].role == 'system' %}
        {{- messages[0].content + '\n\n' }}
    {%- endif %}
    {{- "# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0].role == 'system' %}
        {{- '<|im_start|>system\n' + messages[0].content + '<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}
    {%- set index = (messages|length - 1) - loop.index0 %}
    {%- if ns.multi_step_tool and message.role == "user" and message.content is string and not(message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}
        {%- set ns.multi_step_tool = false %}
        {%- set ns.last_query_index = index %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- if message.content is string %}
        {%- set content = message.content %}
    {%- else %}
        {%- set content = '' %}
    {%- endif %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\n' + content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {%- set reasoning_content = '' %}
        {%- if message.reasoning_content is string %}
            {%- set reasoning_content = message.reasoning_content %}
        {%- else %}
            {%- if '</think>' in content %}
                {%- set reasoning_content = content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') %}
                {%- set content = content.split('</think>')[-1].lstrip('\n') %}
            {%- endif %}
        {%- endif %}
        {%- if loop.index0 > ns.last_query_index %}
            {%- if loop.last or (not loop.last and reasoning_content) %}
                {{- '<|im_start|>' + message.role + '\n<think>\n' + reasoning_content.strip('\n') + '\n</think>\n\n' + content.lstrip('\n') }}
            {%- else %}
                {{- '<|im_start|>' + message.role + '\n' + content }}
            {%- endif %}
        {%- else %}
            {{- '<|im_start|>' + message.role + '\n' + content }}
        {%- endif %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if loop.first or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\n\n</think>\n\n' }}
    {%- endif %}
{%- endif %}"""

LLAMA3_TEMPLATE = ("{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
                   "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + "
                   "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
                   "{{ content }}{% endfor %}{% if add_generation_prompt %}"
                   "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")

# Qwen2.5-Instruct's template: ChatML with a default system message.
QWEN25_TEMPLATE = r"""{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
"""

# Llama-3.1-Instruct's template (the parts without tools): a system block with the knowledge
# cutoff and a fixed date always comes first.
LLAMA31_TEMPLATE = r"""{{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- set date_string = "26 Jul 2024" %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message + builtin tools #}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if builtin_tools is defined or tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{{- system_message }}
{{- "<|eot_id|>" }}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
"""

LLAMA2_TEMPLATE = ("{% for message in messages %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + "
                   "message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
                   "{{ ' ' + message['content'] + ' ' + eos_token }}{% endif %}{% endfor %}")

CHATS = [
    [{"role": "user", "content": "Why is the sky blue?"}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi 😀, 你好"}],
    [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "<think>\nadd them\n</think>\n\n4"},
     {"role": "user", "content": "  and 3+3? \n"}],
    [{"role": "system", "content": "S"}, {"role": "user", "content": "a"},
     {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}],
    [{"role": "user", "content": "q"}, {"role": "assistant", "content": "<think>\nt\n</think>\n\nr"}],
]


def byte_level_tokenizer(pattern, specials, extra, nfc, ignore_merges):
    tok = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    if nfc:
        tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=700, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus_lines(), trainer)
    if extra:
        tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in extra])
    return tok


def sentencepiece_tokenizer():
    """Trained with a Metaspace pre-tokenizer (SentencePiece never merges across words), then
    rebuilt in Llama-2's tokenizer.json layout: <unk> <s> </s>, <0x00>..<0xFF>, then the pieces."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(vocab_size=500, special_tokens=["<unk>"], limit_alphabet=120,
                                  show_progress=False)
    tok.train_from_iterator(corpus_lines(), trainer)
    trained = json.loads(tok.to_str())["model"]
    pieces = sorted((i, t) for t, i in trained["vocab"].items() if t != "<unk>")
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab["<0x%02X>" % b] = len(vocab)
    for _, t in pieces:
        vocab.setdefault(t, len(vocab))
    merges = [m if isinstance(m, list) else m.split(" ") for m in trained["merges"]]
    model = models.BPE(vocab=vocab, merges=[tuple(m) for m in merges], unk_token="<unk>", byte_fallback=True,
                       fuse_unk=True)
    tok = Tokenizer(model)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in ("<unk>", "<s>", "</s>")])
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(content=" ", left=1, right=0)])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", 1)])
    return tok


def metaspace_tokenizer():
    """The same SentencePiece-style model in the layout newer tokenizers write for Llama/Mistral
    (legacy=False): no normalizer, a Metaspace pre-tokenizer that prepends only at the start of the
    text (prepend_scheme "first", split false), and a ByteFallback + Metaspace decoder."""
    tok = sentencepiece_tokenizer()
    tok.normalizer = None
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    tok.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Metaspace(replacement="▁", prepend_scheme="first")])
    return tok


def invalid_byte_ids(tok, byte_level):
    """Id sequences whose bytes are not valid UTF-8 (truncated characters, stray bytes)."""
    vocab = tok.get_vocab()
    if byte_level:
        bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
        cs = bs[:]
        n = 0
        for b in range(256):
            if b not in bs:
                bs.append(b)
                cs.append(256 + n)
                n += 1
        to_char = dict(zip(bs, (chr(c) for c in cs)))
        ids_of = lambda b: vocab[to_char[b]]
    else:
        ids_of = lambda b: vocab["<0x%02X>" % b]
    seqs = [b"\xe4\xbd", b"\xff", b"\x80", b"\xf0\x9f\x98", b"\xe4\xbd\xa0\xe5", b"\xc3", b"\xed\xa0\x80",
            b"\xf4\x90\x80\x80", b"\xe0\x80\xaf", b"\xf0\x9f\x98\x80\xf0\x9f"]
    out = []
    for s in seqs:
        ids = [ids_of(b) for b in s]
        out.append(ids)
        out.append(tok.encode("ab").ids + ids + tok.encode("cd").ids)
    return out


def goldens(tok, byte_level):
    enc, dec = [], []
    for text in TEXTS:
        for add in (False, True):
            ids = tok.encode(text, add_special_tokens=add).ids
            enc.append({"text": text, "add_special": add, "ids": ids})
            if not add:
                for skip in (False, True):
                    dec.append({"ids": ids, "skip_special": skip, "text": tok.decode(ids, skip_special_tokens=skip)})
    rnd = random.Random(1234)
    n = tok.get_vocab_size()
    extra = invalid_byte_ids(tok, byte_level) + [[rnd.randrange(n) for _ in range(rnd.randrange(1, 12))]
                                                 for _ in range(40)]
    for ids in extra:
        for skip in (False, True):
            dec.append({"ids": ids, "skip_special": skip, "text": tok.decode(ids, skip_special_tokens=skip)})
    return enc, dec


def chats(path, template, with_thinking):
    hf = transformers.PreTrainedTokenizerFast.from_pretrained(path)
    out = []
    for msgs in CHATS:
        for think in ((None, True, False) if with_thinking else (None,)):
            kw = {} if think is None else {"enable_thinking": think}
            text = hf.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True, **kw)
            out.append({"messages": msgs, "enable_thinking": think, "text": text})
    return out


def save(name, tok, config, byte_level, template_kind, legacy_merges=False, cases=True):
    d = os.path.join(ROOT, name)
    os.makedirs(d, exist_ok=True)
    tok.save(os.path.join(d, "tokenizer.json"))
    if legacy_merges:  # Llama-2's file has merges as "left right" strings, as older tokenizers wrote them
        with open(os.path.join(d, "tokenizer.json")) as f:
            j = json.load(f)
        j["model"]["merges"] = [" ".join(m) for m in j["model"]["merges"]]
        with open(os.path.join(d, "tokenizer.json"), "w") as f:
            json.dump(j, f, ensure_ascii=False, indent=2)
        tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump(dict(config, tokenizer_class="PreTrainedTokenizerFast"), f, indent=2, ensure_ascii=False)
        f.write("\n")
    enc, dec = goldens(tok, byte_level) if cases else ([], [])
    chat = chats(d, config["chat_template"], template_kind == "qwen3") if template_kind else []
    with open(os.path.join(d, "golden.json"), "w") as f:  # one case per line
        dumps = lambda v: json.dumps(v, ensure_ascii=False)
        f.write('{"tokenizers_version": %s, "transformers_version": %s' %
                (dumps(tokenizers.__version__), dumps(transformers.__version__)))
        for key, cases in (("encode", enc), ("decode", dec), ("chat", chat)):
            f.write(',\n"%s": [' % key + ",".join("\n" + dumps(c) for c in cases) + "]")
        f.write("}\n")
    print(name, tok.get_vocab_size(), "tokens,", len(enc), "encode,", len(dec), "decode,", len(chat), "chat cases")


def main():
    qwen = byte_level_tokenizer(QWEN2_PATTERN, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                ["<think>", "</think>"], True, False)
    qwen.post_processor = processors.ByteLevel(trim_offsets=False)
    save("qwen2", qwen, {"chat_template": QWEN3_TEMPLATE, "bos_token": None, "eos_token": "<|im_end|>",
                         "pad_token": "<|endoftext|>"}, True, "qwen3")

    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    llama3 = byte_level_tokenizer(LLAMA3_PATTERN, specials, None, False, True)
    bos = llama3.token_to_id("<|begin_of_text|>")
    llama3.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
                                      special_tokens=[("<|begin_of_text|>", bos)])])
    save("llama3", llama3, {"chat_template": LLAMA3_TEMPLATE, "bos_token": "<|begin_of_text|>",
                            "eos_token": "<|eot_id|>"}, True, "llama3")

    # the same tokenizers with other templates of the family: chat cases only
    save("qwen25", qwen, {"chat_template": QWEN25_TEMPLATE, "bos_token": None, "eos_token": "<|im_end|>",
                          "pad_token": "<|endoftext|>"}, True, "qwen25", cases=False)
    save("llama31", llama3, {"chat_template": LLAMA31_TEMPLATE, "bos_token": "<|begin_of_text|>",
                             "eos_token": "<|eot_id|>"}, True, "llama31", cases=False)

    save("llama2", sentencepiece_tokenizer(), {"chat_template": LLAMA2_TEMPLATE, "bos_token": "<s>",
                                               "eos_token": "</s>", "unk_token": "<unk>"}, False, None, True)
    save("mistral", metaspace_tokenizer(), {"chat_template": None, "bos_token": "<s>", "eos_token": "</s>",
                                            "unk_token": "<unk>"}, False, None)


if __name__ == "__main__":
    main()
