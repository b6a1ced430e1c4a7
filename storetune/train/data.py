"""Chat examples -> token ids with a loss mask on assistant tokens only.

Works from the chat template itself rather than from generation markers
({% generation %}), which most templates lack: each assistant turn's tokens are
the difference between the conversation rendered up to that turn with and without
the turn. The end-of-turn token after each assistant reply is trained, so the model
learns to stop; whatever the template writes after it (ChatML's newline) is not.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from storetune.errors import StoretuneError

IGNORE = -100


@dataclass
class Tokenized:
    input_ids: list[int]
    labels: list[int]  # IGNORE where no loss

    @property
    def trainable(self) -> int:
        return sum(1 for t in self.labels if t != IGNORE)


def read_jsonl(path: Path) -> list[dict]:
    rows = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise StoretuneError(f"{path} line {n}: not valid JSON ({e.msg})") from None
    return rows


def _render(tokenizer, messages: list[dict], gen_prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen_prompt)


def tokenize_chat(tokenizer, messages: list[dict], max_length: int) -> Tokenized:
    ids: list[int] = []
    labels: list[int] = []
    rendered = ""
    for i, msg in enumerate(messages):
        if msg["role"] == "assistant":
            head = _render(tokenizer, messages[:i], gen_prompt=True)
            _append(tokenizer, ids, labels, head[len(rendered) :], train=False)
            rendered = head
        full = _render(tokenizer, messages[: i + 1], gen_prompt=False)
        if not full.startswith(rendered):
            raise StoretuneError(
                "the model's chat template is not prefix-stable; cannot mask assistant turns",
                hint="use a model whose template renders each turn independently",
            )
        start = len(ids)
        # OpenAI's fine-tuning format: an assistant turn with "weight": 0 is context only.
        trained = msg["role"] == "assistant" and msg.get("weight", 1) != 0
        _append(tokenizer, ids, labels, full[len(rendered) :], train=trained)
        if trained:
            _mask_after_end_of_turn(labels, ids, start, tokenizer.eos_token_id)
        rendered = full
    if len(ids) > max_length:  # keep the end: that is where the trained reply is
        ids, labels = ids[-max_length:], labels[-max_length:]
    return Tokenized(ids, labels)


def _mask_after_end_of_turn(labels: list[int], ids: list[int], start: int, eos: int | None) -> None:
    """Train up to and including the reply's end-of-turn token, not the separator after it.

    (Generation stops at that token, so what a template writes after it — ChatML's
    newline — is never predicted at inference.)
    """
    if eos is None:
        return
    ends = [i for i in range(start, len(ids)) if ids[i] == eos]
    for i in range(ends[-1] + 1 if ends else len(ids), len(ids)):
        labels[i] = IGNORE


def _append(tokenizer, ids: list[int], labels: list[int], text: str, train: bool) -> None:
    if not text:
        return
    new = tokenizer(text, add_special_tokens=False)["input_ids"]
    ids.extend(new)
    labels.extend(new if train else [IGNORE] * len(new))


def length_batches(
    items: list[Tokenized], batch_tokens: int, seed: int | None, shared: int = 0
) -> list[list[int]]:
    """Group example indices into micro-batches of similar length.

    Sorting by length keeps padding small without packing; batches are then shuffled
    (seeded) so training does not see lengths in order. `shared` tokens at the start
    of every item (the common system prompt) are computed once per batch, so only
    the rest counts against the budget.
    """
    order = sorted(range(len(items)), key=lambda i: len(items[i].input_ids))
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        longest = max([len(items[j].input_ids) for j in current] + [len(items[i].input_ids)])
        longest -= shared
        if current and longest * (len(current) + 1) > batch_tokens:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    if seed is not None:
        random.Random(seed).shuffle(batches)
    return batches


def collate(items: list[Tokenized], pad_id: int):
    """Right-padded tensors: input_ids, attention_mask, labels."""
    import torch

    width = max(len(t.input_ids) for t in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    labels = torch.full((len(items), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    for row, t in enumerate(items):
        n = len(t.input_ids)
        ids[row, :n] = torch.tensor(t.input_ids)
        labels[row, :n] = torch.tensor(t.labels)
        mask[row, :n] = 1
    return ids, mask, labels
