"""Generation speed on the default model (CPU, 2 threads): llama.cpp vs transformers.

Setup (not timed): SmolLM2-135M-Instruct, the default base, exported as a Q8_0 GGUF the
way `storetune export --format gguf --outtype q8_0` writes it (llama.cpp's converter
when installed).

Measured, one stream, greedy, in this run:
- llama.cpp (llama-cpp-python, built by make): prefill of a 512-token prompt (tok/s),
  then decode of 80 new tokens after it (tok/s);
- peer: transformers on the same weights unquantised, fp32 and bf16: prefill as one
  forward pass over the same 512 tokens, decode as `generate` of 81 tokens minus 1.
Each figure is the best of REPEATS runs (the least disturbed by other processes).
Threads: STORETUNE_BENCH_LLAMACPP_THREADS (default 2). On 2 cores that other processes
also use, llama.cpp's 2 OpenMP threads wait on each other: it then decodes several
times slower than on 1 thread; compare figures only from a quiet machine.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

THREADS = int(os.environ.get("STORETUNE_BENCH_LLAMACPP_THREADS", "2"))
PROMPT_TOKENS = 512
NEW_TOKENS = 80
REPEATS = int(os.environ.get("STORETUNE_BENCH_LLAMACPP_REPEATS", "3"))
_TEXT = (
    "Returns are accepted within 30 days of delivery, unused and with the original tags; "
    "we send a free prepaid label and refund the original payment method within 5 business "
    "days. Standard shipping is free over $75, otherwise $6.95 and 3-5 business days. "
)


def store_prompt(tokenizer, n: int) -> list[int]:
    """n token ids of policy-like text."""
    ids: list[int] = []
    while len(ids) < n:
        ids += tokenizer(_TEXT, add_special_tokens=False)["input_ids"]
    return ids[:n]


def llama_cpp_speed(gguf: Path, prompt: list[int], new_tokens: int, threads: int) -> dict:
    """llama.cpp prefill and greedy decode rates (tok/s) for one GGUF."""
    from storetune.models.export import LlamaCppGreedy

    engine = LlamaCppGreedy(gguf, len(prompt) + new_tokens + 8, n_threads=threads)
    prefill, decode = [], []
    for _ in range(REPEATS):
        engine.llm.reset()
        started = time.perf_counter()
        logits = engine.logits(prompt)
        prefill.append(len(prompt) / (time.perf_counter() - started))
        seq = [*prompt, int(logits.argmax())]
        started = time.perf_counter()
        for _ in range(new_tokens):
            seq.append(int(engine.logits(seq).argmax()))
        decode.append(new_tokens / (time.perf_counter() - started))
    return {"prefill_tok_s": round(max(prefill), 1), "decode_tok_s": round(max(decode), 1)}


def transformers_speed(model, prompt: list[int], new_tokens: int) -> dict:
    """transformers prefill (one forward pass) and `generate` decode rates (tok/s)."""
    import torch

    ids = torch.tensor([prompt])
    prefill, decode = [], []
    kwargs = {"do_sample": False, "pad_token_id": 0}
    with torch.inference_mode():
        for _ in range(REPEATS):
            started = time.perf_counter()
            model(ids)
            prefill.append(len(prompt) / (time.perf_counter() - started))
            started = time.perf_counter()
            model.generate(ids, max_new_tokens=1, min_new_tokens=1, **kwargs)
            first = time.perf_counter() - started
            started = time.perf_counter()
            model.generate(
                ids, max_new_tokens=new_tokens + 1, min_new_tokens=new_tokens + 1, **kwargs
            )
            decode.append(new_tokens / (time.perf_counter() - started - first))
    return {"prefill_tok_s": round(max(prefill), 1), "decode_tok_s": round(max(decode), 1)}


def run() -> dict:
    from storetune.models.export import llama_cpp_available

    if not llama_cpp_available():
        return {"summary": {"skipped": "llama-cpp-python is not installed (make llama-cpp)"}}
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from storetune.models.export import write_model_gguf
    from storetune.runtime import resolve_base_model

    torch.set_num_threads(THREADS)
    base = resolve_base_model().path
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32).eval()
    prompt = store_prompt(tokenizer, PROMPT_TOKENS)
    with tempfile.TemporaryDirectory() as tmp:
        gguf = Path(tmp) / "base.q8_0.gguf"
        writer = write_model_gguf(model, tokenizer, gguf, "q8_0", "smollm2-135m-instruct")
        engines = {"llama.cpp q8_0": llama_cpp_speed(gguf, prompt, NEW_TOKENS, THREADS)}
    engines["transformers fp32"] = transformers_speed(model, prompt, NEW_TOKENS)
    engines["transformers bf16"] = transformers_speed(model.to(torch.bfloat16), prompt, NEW_TOKENS)
    ref = engines["llama.cpp q8_0"]
    ratios = {
        name: {k: round(v[k] / ref[k], 3) for k in ("prefill_tok_s", "decode_tok_s") if ref[k]}
        for name, v in engines.items()
        if name != "llama.cpp q8_0"
    }
    return {
        "summary": {
            "threads": THREADS,
            "prompt_tokens": PROMPT_TOKENS,
            "new_tokens": NEW_TOKENS,
            "engines": engines,
            "ratio_to_llama_cpp": ratios,
        },
        "setup": {"base": str(base), "gguf": writer, "repeats": REPEATS},
    }
