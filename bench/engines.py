"""storetune's engines beside llama.cpp itself, same weights, same threads, one run.

- llama.cpp: llama-cpp-python's `Llama` (llama.cpp's own prompt cache and greedy
  sampler) on the f16 GGUF of the base with the support adapter as GGUF LoRA;
- storetune llamacpp: the serving engine (`serve.engine: llamacpp`) on the same files;
- storetune torch: the serving engine on transformers + peft (bf16 where the CPU has it).

Figures: prefill of the policy prompt (tok/s, nothing cached), decode (tok/s after the
first token, one stream), time to first token with the policy prefix cached, the
routed-ticket latency (bench.route, the whole /v1/tickets path without HTTP) and eval
throughput (greedy replies for a batch of support conversations, tok/s). Ratios are
storetune llamacpp over llama.cpp (decode, prefill; TTFT inverted so >1 is faster) and
llamacpp over torch for eval throughput; and the eval's own generation path (a cache
stream per row) over the torch engine and over the same path in one unified cache.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

NEW_TOKENS = 80
EVAL_CONVERSATIONS = 32


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 1)


def llama_cpp_reference(
    base_gguf: Path, lora: Path | None, prompts: list[list[int]], threads: int, eos: int
) -> dict:
    """llama.cpp's high-level loop: prefill, greedy decode, TTFT with the prefix cached."""
    from llama_cpp import Llama

    llm = Llama(
        model_path=str(base_gguf),
        lora_path=str(lora) if lora else None,
        n_ctx=4096,
        n_threads=threads,
        n_threads_batch=threads,
        verbose=False,
    )
    prefill, decode, ttft = [], [], []
    for i, prompt in enumerate(prompts):
        if i == 0:
            llm.reset()  # nothing cached: the prefill rate
            started = time.perf_counter()
            llm.eval(prompt)
            prefill.append(len(prompt) / (time.perf_counter() - started))
        started, first, n = time.perf_counter(), None, 0
        # generate() keeps the longest prefix the cache shares with the prompt
        for token in llm.generate(prompt, temp=0.0):
            n += 1
            if first is None:
                first = time.perf_counter()
            if token == eos or n >= NEW_TOKENS:
                break
        done = time.perf_counter()
        if i > 0:
            ttft.append(1000 * (first - started))
        if n > 1:
            decode.append((n - 1) / (done - first))
    llm.close()
    return {
        "prefill_tok_s": _median(prefill),
        "decode_tok_s": _median(decode),
        "ttft_cached_prefix_ms": _median(ttft),
    }


def storetune_engine(engine, conversations: list[list[dict]], model: str) -> dict:
    """The same three figures through storetune's Engine (one request at a time)."""
    cold = engine.generate(conversations[0], model, max_tokens=1)
    prefill = cold.prompt_tokens / cold.first_token_s
    decode, ttft = [], []
    for conv in conversations[1:]:
        started = time.perf_counter()
        g = engine.generate(conv, model, max_tokens=NEW_TOKENS)
        total = time.perf_counter() - started
        ttft.append(1000 * g.first_token_s)
        if g.completion_tokens > 1:
            decode.append((g.completion_tokens - 1) / (total - g.first_token_s))
    return {
        "prefill_tok_s": round(prefill, 1),
        "decode_tok_s": _median(decode),
        "ttft_cached_prefix_ms": _median(ttft),
    }


def eval_throughput(engine, conversations: list[list[dict]], model: str, max_tokens: int) -> dict:
    """Replies for many conversations submitted at once (the engine batches them)."""
    import concurrent.futures as cf

    started = time.perf_counter()
    with cf.ThreadPoolExecutor(len(conversations)) as pool:
        gens = list(
            pool.map(lambda c: engine.generate(c, model, max_tokens=max_tokens), conversations)
        )
    seconds = time.perf_counter() - started
    tokens = sum(g.completion_tokens for g in gens)
    return {"tok_s": round(tokens / seconds, 1), "replies": len(gens), "seconds": round(seconds, 1)}


def eval_path(weights: Path, lora: Path | None, tokenizer, conversations, threads: int) -> dict:
    """The eval's own generation (storetune.eval.generate on llama.cpp, 16 rows, policy
    prefix shared) on the engine's weights, with a cache stream per row (what the eval
    uses) and with one unified cache (what serving uses)."""
    from storetune import llamacpp
    from storetune.chat.tokenize import chat_ids
    from storetune.eval.generate import generate_scored_llamacpp

    slots = 16
    longest = max(len(chat_ids(tokenizer, c)) for c in conversations)
    model = llamacpp.LlamaModel(weights, threads=threads)
    out = {}
    try:
        for name, streams in (("streams", True), ("unified", False)):
            ctx = model.context(lora, slots, (slots + 1) * (longest + NEW_TOKENS), streams)
            try:
                started = time.perf_counter()
                replies = generate_scored_llamacpp(ctx, tokenizer, conversations, NEW_TOKENS)
                seconds = time.perf_counter() - started
            finally:
                ctx.close()
            tokens = sum(len(r["logprobs"]) for r in replies)
            out[name] = {"tok_s": round(tokens / seconds, 1), "seconds": round(seconds, 1)}
    finally:
        model.close()
    return out


def compare(ws, questions: list[str], route_messages: list[str]) -> dict:
    """Every figure for the three engines, and the ratios the README shows."""
    from bench.route import bench_route
    from storetune import llamacpp
    from storetune.chat.prompt import render_system_prompt
    from storetune.chat.tokenize import chat_ids
    from storetune.serve.engine import Engine

    system = render_system_prompt(ws.config())
    convs = [
        [{"role": "system", "content": system}, {"role": "user", "content": q}] for q in questions
    ]
    batch = [convs[i % len(convs)] for i in range(EVAL_CONVERSATIONS)]
    out: dict = {}
    for kind in ("llamacpp", "torch"):
        engine = Engine.from_workspace(ws, engine=kind, max_batch=16)
        try:
            threads = engine.threads or llamacpp.default_threads()
            figures = storetune_engine(engine, convs, "support")
            figures["eval"] = eval_throughput(engine, batch, "support", NEW_TOKENS)
            figures["route"] = bench_route(engine, ws, route_messages, model="support")
            out[f"storetune_{kind}"] = figures
            if kind == "llamacpp":
                prompts = [chat_ids(engine.tokenizer, c) for c in convs]
                adapter = engine._lora_files[engine.resolve("support").adapter_key]
                # the same weights as the engine: the merged copy, or the base + LoRA
                weights, lora = (adapter, None) if engine.merged else (engine.llama.path, adapter)
                out["eval_path"] = eval_path(weights, lora, engine.tokenizer, batch, threads)
                out["llama_cpp"] = llama_cpp_reference(
                    weights,
                    lora,
                    prompts,
                    threads,
                    engine.tokenizer.eos_token_id,
                )
        finally:
            engine.close()
    ours, ref, torch_ = out["storetune_llamacpp"], out["llama_cpp"], out["storetune_torch"]
    out["threads"] = threads
    out["ratios"] = {
        "decode_vs_llama_cpp": round(ours["decode_tok_s"] / ref["decode_tok_s"], 2),
        "prefill_vs_llama_cpp": round(ours["prefill_tok_s"] / ref["prefill_tok_s"], 2),
        "ttft_speed_vs_llama_cpp": round(
            ref["ttft_cached_prefix_ms"] / ours["ttft_cached_prefix_ms"], 2
        ),
        "eval_throughput_vs_torch": round(ours["eval"]["tok_s"] / torch_["eval"]["tok_s"], 2),
        # the eval's generation (a cache stream per row) over the torch engine's batches
        "eval_path_vs_torch": round(
            out["eval_path"]["streams"]["tok_s"] / torch_["eval"]["tok_s"], 2
        ),
        "eval_streams_vs_unified": round(
            out["eval_path"]["streams"]["tok_s"] / out["eval_path"]["unified"]["tok_s"], 2
        ),
        "decode_vs_torch": round(ours["decode_tok_s"] / torch_["decode_tok_s"], 2),
        "route_p50_speedup_vs_torch": round(
            torch_["route"]["route_p50_ms"] / ours["route"]["route_p50_ms"], 2
        ),
    }
    return out
