"""Prefix-cached batched generation gives the same greedy replies as plain generation."""

from __future__ import annotations

from storetune.eval.generate import generate_replies
from storetune.runtime import cacheable_prefix_len, load_for_inference

SYSTEM = "You are the support assistant. Returns within 30 days. Shipping $6.95. " * 8


def test_common_prefix_leaves_a_token():
    assert cacheable_prefix_len([[1, 2, 3], [1, 2, 3]]) == 2
    assert cacheable_prefix_len([[1, 2, 3, 4], [1, 2, 9]]) == 2
    assert cacheable_prefix_len([[5, 6]]) == 0


def test_shared_prefix_generation_matches_plain(tiny_model_dir):
    import torch

    model, tok = load_for_inference(tiny_model_dir, None, use_bf16=False)
    # A freshly initialised tiny model greedily repeats one token; wider weights make
    # its choices depend on the prompt, so the equality below means something.
    torch.manual_seed(0)
    for p in model.parameters():
        if p.dim() == 2:
            torch.nn.init.normal_(p, std=0.2)
    convs = [
        [{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}]
        for q in [
            "Return?",
            "Where is my order number 5?",
            "How much is shipping to Canada please?",
        ]
    ]
    plain = generate_replies(model, tok, convs, max_new_tokens=12, batch_size=2, share_prefix=False)
    shared = generate_replies(model, tok, convs, max_new_tokens=12, batch_size=2, share_prefix=True)
    single = [generate_replies(model, tok, [c], max_new_tokens=12)[0] for c in convs]
    assert shared == plain == single
    assert all(r for r in shared) and len(set(shared)) > 1
