"""Batched greedy generation for a base model with an optional LoRA adapter.

Every prompt starts with the same policy system prompt, so its key/value cache is
computed once and reused by each batch: only the per-ticket suffix is prefilled.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path


def load_for_inference(base_path: Path, adapter_dir: Path | None, use_bf16: bool):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_path)
    tokenizer.padding_side = "left"  # decoder-only batches must be left-padded
    dtype = torch.bfloat16 if use_bf16 else torch.float32
    model = AutoModelForCausalLM.from_pretrained(base_path, dtype=dtype)
    if adapter_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter_dir)
    model.eval()
    return model, tokenizer


def common_prefix(token_lists: list[list[int]]) -> int:
    """Length of the token prefix all lists share, leaving each at least one token."""
    if len(token_lists) < 2:
        return 0
    first = token_lists[0]
    n = min(len(t) for t in token_lists) - 1
    for ids in token_lists[1:]:
        n = next((i for i in range(n) if ids[i] != first[i]), n)
    return max(n, 0)


def _prefix_cache(model, prefix: list[int]):
    import torch
    from transformers import DynamicCache

    cache = DynamicCache()
    with torch.no_grad():
        model(input_ids=torch.tensor([prefix]), past_key_values=cache, use_cache=True)
    return cache


def _batch_inputs(prefix: list[int], suffixes: list[list[int]], pad: int):
    """[prefix | left padding | suffix]: pads sit between prefix and suffix, masked out."""
    import torch

    width = max(len(s) for s in suffixes)
    rows, masks = [], []
    for s in suffixes:
        gap = width - len(s)
        rows.append(prefix + [pad] * gap + s)
        masks.append([1] * len(prefix) + [0] * gap + [1] * len(s))
    return torch.tensor(rows), torch.tensor(masks)


def generate_replies(
    model,
    tokenizer,
    conversations: list[list[dict]],
    max_new_tokens: int = 128,
    batch_size: int = 16,
    on_batch: Callable[[int], None] | None = None,
    share_prefix: bool = True,
) -> list[str]:
    """Greedy replies for each conversation (which ends with a user turn)."""
    import torch

    prompts = [
        tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True)
        for c in conversations
    ]
    tokens = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    shared = common_prefix(tokens) if share_prefix else 0
    prefix = tokens[0][:shared] if shared else []
    cache = _prefix_cache(model, prefix) if shared else None
    order = sorted(range(len(tokens)), key=lambda i: len(tokens[i]))
    replies: list[str] = [""] * len(tokens)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        ids, mask = _batch_inputs(prefix, [tokens[i][shared:] for i in idx], pad)
        extra = {}
        if cache is not None:
            batch_cache = copy.deepcopy(cache)
            batch_cache.batch_repeat_interleave(len(idx))
            extra["past_key_values"] = batch_cache
        with torch.no_grad():
            out = model.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=pad,
                eos_token_id=tokenizer.eos_token_id,
                **extra,
            )
        for row, i in enumerate(idx):
            replies[i] = tokenizer.decode(
                out[row, ids.shape[1] :], skip_special_tokens=True
            ).strip()
        if on_batch:
            on_batch(len(idx))
    return replies
