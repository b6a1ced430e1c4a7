"""Token batches for training: length-grouped micro-batches and padded tensors.

How a conversation becomes ids and a loss mask is defined once, in
storetune.chat.tokenize (validation, eval and serving use the same rules).
"""

from __future__ import annotations

import random

from storetune.chat.tokenize import IGNORE, Tokenized


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
