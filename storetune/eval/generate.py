"""Batched greedy generation for a base model with an optional LoRA adapter.

Every prompt starts with the same policy system prompt, so its key/value cache is
computed once and reused by each batch: only the per-ticket suffix is prefilled
(storetune.runtime.greedy_generate). Prompts are tokenized as serving tokenizes
them (storetune.chat.tokenize.chat_ids).
"""

from __future__ import annotations

from collections.abc import Callable

from storetune.chat.tokenize import chat_ids
from storetune.runtime import greedy_generate
from storetune.serve.rules import loops_at, repetition_cut


def _decode_greedy(model, tokenizer, conversations, max_new_tokens, batch_size, on_batch, **kw):
    """Chat-tokenize the conversations as serving does and decode them greedily."""
    return greedy_generate(
        model,
        [chat_ids(tokenizer, c) for c in conversations],
        max_new_tokens,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,  # runtime falls back to the end token
        batch_size=batch_size,
        on_batch=on_batch,
        **kw,
    )


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
    outputs = _decode_greedy(
        model,
        tokenizer,
        conversations,
        max_new_tokens,
        batch_size,
        on_batch,
        share_prefix=share_prefix,
    )
    return [tokenizer.decode(ids, skip_special_tokens=True).strip() for ids in outputs]


def generate_scored(
    model,
    tokenizer,
    conversations: list[list[dict]],
    max_new_tokens: int = 128,
    batch_size: int = 16,
    on_batch: Callable[[int], None] | None = None,
) -> list[dict]:
    """Greedy replies with what the ticket router needs to decide: the reply text, each
    token's log-probability and why generation stopped ("stop" or "length")."""
    outputs, scores = _decode_greedy(
        model, tokenizer, conversations, max_new_tokens, batch_size, on_batch, logprobs=True
    )
    return _scored(tokenizer, outputs, scores)


def generate_scored_llamacpp(
    ctx,
    tokenizer,
    conversations: list[list[dict]],
    max_new_tokens: int = 128,
    on_batch: Callable[[int], None] | None = None,
) -> list[dict]:
    """generate_scored on llama.cpp: `ctx` is the adapter's storetune.llamacpp.Context;
    each distinct system prompt is decoded once and copied into the rows that use it."""
    from storetune.llamacpp import common_prefix, greedy_generate

    prompts = [chat_ids(tokenizer, c) for c in conversations]
    prefix_lens = [
        common_prefix(p, chat_ids(tokenizer, c[:1], gen_prompt=False))
        if c and c[0]["role"] == "system"
        else 0
        for p, c in zip(prompts, conversations, strict=True)
    ]

    def loops(ids: list[int]) -> bool:
        return loops_at(len(ids), lambda: _text(tokenizer, ids))

    outputs, scores = greedy_generate(
        ctx,
        prompts,
        max_new_tokens,
        {tokenizer.eos_token_id},
        prefix_lens=prefix_lens,
        logprobs=True,
        on_done=on_batch,
        stop_early=loops,
    )
    return _scored(tokenizer, outputs, scores)


def _text(tokenizer, ids: list[int]) -> str:
    return tokenizer.decode(ids, skip_special_tokens=True)


def _scored(tokenizer, outputs: list[list[int]], scores: list[list[float]]) -> list[dict]:
    """Each reply as the ticket router reads it. A reply that loops ends where serving
    stops generating it (`stop_repetition`): engines that ran on are cut there."""
    out = []
    for ids, lps in zip(outputs, scores, strict=True):
        ended = bool(ids) and ids[-1] == tokenizer.eos_token_id
        body, lps = (ids[:-1], lps[:-1]) if ended else (ids, lps)
        cut = repetition_cut(lambda part: _text(tokenizer, part), body)
        finish = "stop" if ended else "length"
        if cut is not None:
            body, lps, finish = body[:cut], lps[:cut], "repetition"
        out.append(
            {
                "text": _text(tokenizer, body).strip(),
                "logprobs": [round(x, 5) for x in lps],
                "finish_reason": finish,
            }
        )
    return out
