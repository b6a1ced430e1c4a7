"""Run-time LoRA or a merged copy: speed and greedy agreement of one version's GGUF
variants in llama.cpp, in one run on the same prompts and threads.

    python -m bench.merge WORKSPACE [support@v1] [N_PROMPTS]

Variants: the f16 base with the adapter as a LoRA (serving's `merge_adapters: no`), the
bf16 and q8_0 bases with the same LoRA, and the adapter folded into f16, bf16 and q8_0 copies
(`merge_adapters: yes`; `gguf_type`). Prompts are the version's test-split conversations
(system and customer turns); each variant prefills a prompt from an empty cache, then
decodes up to 64 greedy tokens one at a time. Agreement is counted against the first
variant, whose greedy tokens match torch's fp32 (tests/test_llamacpp.py). Rows go to
reports/bench/merge.json.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

OUT = Path("reports/bench/merge.json")
NEW_TOKENS = 64
THREADS = 2


def _variants(
    version_dir: Path, base: Path, fingerprint: str
) -> dict[str, tuple[Path, Path | None]]:
    from storetune import llamacpp

    lora = llamacpp.adapter_gguf(version_dir, base, "f16")
    out: dict[str, tuple[Path, Path | None]] = {}
    for t in ("f16", "bf16", "q8_0"):
        out[f"{t} base + LoRA"] = (llamacpp.base_gguf(base, fingerprint, t), lora)
    for t in ("f16", "bf16", "q8_0"):
        out[f"{t} merged"] = (llamacpp.merged_gguf(version_dir, base, t), None)
    return out


def _prompts(ws, version_dir: Path, tokenizer, n: int) -> list[list[int]]:
    from storetune.chat.tokenize import chat_ids
    from storetune.io import read_jsonl

    info = json.loads((version_dir / "version.json").read_text())
    test = ws.datasets_dir / info["dataset_id"] / "test.jsonl"
    rows = [r for r in read_jsonl(test) if r["messages"][0]["role"] == "system"]
    return [chat_ids(tokenizer, r["messages"][:-1]) for r in rows[:n]]


def _measure(weights: Path, lora: Path | None, prompts: list[list[int]], eos: int) -> dict:
    import llama_cpp
    import numpy as np
    from llama_cpp import Llama

    llm = Llama(
        model_path=str(weights),
        lora_path=str(lora) if lora else None,
        n_ctx=4096,
        n_batch=512,
        n_threads=THREADS,
        n_threads_batch=THREADS,
        verbose=False,
    )
    outs, prefill_s, decode_s, decoded = [], 0.0, 0.0, 0
    try:
        for prompt in prompts:
            llm.reset()
            t0 = time.perf_counter()
            llm.eval(prompt)
            t1 = time.perf_counter()
            out: list[int] = []
            while len(out) < NEW_TOKENS:
                row = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
                token = int(np.argmax(np.ctypeslib.as_array(row, shape=(llm.n_vocab(),))))
                out.append(token)
                if token == eos:
                    break
                llm.eval([token])
            prefill_s += t1 - t0
            decode_s += time.perf_counter() - t1
            decoded += len(out)
            outs.append(out)
    finally:
        llm.close()
    return {
        "outputs": outs,
        "prefill_tok_s": round(sum(map(len, prompts)) / prefill_s, 1),
        "decode_tok_s": round(decoded / decode_s, 1),
    }


def run(root: Path, model: str = "support@v1", n: int = 12) -> dict:
    from storetune.models.registry import ModelRef, Registry
    from storetune.runtime import load_tokenizer
    from storetune.workspace import Workspace

    ws = Workspace.resolve(root)
    version_dir = Registry(ws.models_dir).resolve(ModelRef.parse(model))
    info = json.loads((version_dir / "version.json").read_text())
    base = Path(info["base_model_path"])
    tokenizer = load_tokenizer(base)
    prompts = _prompts(ws, version_dir, tokenizer, n)
    rows, reference = {}, None
    for name, (weights, lora) in _variants(
        version_dir, base, info["base_model_fingerprint"]
    ).items():
        m = _measure(weights, lora, prompts, tokenizer.eos_token_id)
        reference = reference or m["outputs"]
        same = sum(a == b for a, b in zip(m.pop("outputs"), reference, strict=True))
        rows[name] = {**m, "identical": f"{same}/{len(reference)}"}
        print(name, rows[name], flush=True)
    first = next(iter(rows.values()))
    for r in rows.values():
        r["decode_vs_lora"] = round(r["decode_tok_s"] / first["decode_tok_s"], 2)
        r["prefill_vs_lora"] = round(r["prefill_tok_s"] / first["prefill_tok_s"], 2)
    result = {
        "model": model,
        "prompts": len(prompts),
        "mean_prompt_tokens": round(sum(map(len, prompts)) / len(prompts), 1),
        "threads": THREADS,
        "rows": rows,
    }
    out = ws.root / OUT
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    run(Path(args[0]), *(args[1:2] or ["support@v1"]), *[int(x) for x in args[2:3]])
