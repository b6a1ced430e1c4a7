"""Training-step throughput on the default model: storetune's step vs plain HF steps.

Peers, all on the same model, LoRA config and batches, in this run:
- hf_fp32: `model(input_ids, labels=...)` in fp32 (what a default Trainer does on CPU)
- hf_bf16: the same under bf16 autocast
- storetune: bf16 base weights + autocast + lm_head only at assistant positions
Reported: non-padding tokens/s per peer and storetune's ratio to each.
"""

from __future__ import annotations

import time

SYSTEM = (
    "You are the support assistant of a store. Returns within 30 days. " * 60
)  # ~900 tokens, like a policy prompt
STEPS, WARMUP = 4, 1


def _rows(n: int = 8) -> list[dict]:
    return [
        {
            "messages": [
                {"role": "system", "content": SYSTEM},
                {
                    "role": "user",
                    "content": f"Can I return the jacket I bought {i} days ago? It was on sale.",
                },
                {
                    "role": "assistant",
                    "content": "Sale items are final sale, so I can't accept a return, "
                    "but I'm happy to help with sizing or care questions. " * 2,
                },
            ]
        }
        for i in range(n)
    ]


def _measure(step, batches) -> float:
    for b in batches[:WARMUP]:
        step(b)
    tokens, start = 0, time.perf_counter()
    for b in batches[WARMUP : WARMUP + STEPS]:
        tokens += step(b)
    return tokens / (time.perf_counter() - start)


def run() -> dict:
    import torch

    from storetune.chat.tokenize import tokenize_chat
    from storetune.config import TrainConfig
    from storetune.runtime import bf16_supported, resolve_base_model
    from storetune.train.data import collate
    from storetune.train.loop import assistant_loss, load_model_for_training, shared_prefix_len

    base = resolve_base_model()
    cfg = TrainConfig()
    bf16 = bf16_supported()
    results = {}
    for peer in ("hf_fp32", "hf_bf16", "storetune"):
        model, tok = load_model_for_training(base, cfg, use_bf16=(peer == "storetune" and bf16))
        items = [tokenize_chat(tok, r["messages"], 1024) for r in _rows()]
        batches = [collate(items[i : i + 4], tok.pad_token_id) for i in range(0, 8, 4)] * 3
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
        use_autocast = peer != "hf_fp32" and bf16

        def step(batch, peer=peer, model=model, opt=opt, use_autocast=use_autocast, items=items):
            ids, mask, labels = batch
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_autocast):
                if peer == "storetune":
                    loss, n = assistant_loss(model, ids, mask, labels, shared_prefix_len(items))
                    loss = loss / n
                else:
                    loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            opt.step()
            opt.zero_grad()
            return int(mask.sum())

        results[peer] = round(_measure(step, batches), 1)
        del model
    summary = {
        "tokens_per_s": results,
        "bf16_cpu": bf16,
        "ratio_vs_hf_fp32": round(results["storetune"] / results["hf_fp32"], 2),
        "ratio_vs_hf_bf16": round(results["storetune"] / results["hf_bf16"], 2),
    }
    return {"benchmark": "train_step", "summary": summary}
