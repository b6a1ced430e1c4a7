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


def test_scored_generation_reports_the_chosen_tokens_logprobs(tiny_model_dir):
    """The log-probs greedy decoding reports are those of a plain forward over prompt +
    reply, token by token; generate_scored passes them on beside the same text."""
    import torch

    from storetune.chat.tokenize import chat_ids
    from storetune.eval.generate import generate_scored
    from storetune.runtime import greedy_generate

    model, tok = load_for_inference(tiny_model_dir, None, use_bf16=False)
    torch.manual_seed(0)
    for p in model.parameters():
        if p.dim() == 2:
            torch.nn.init.normal_(p, std=0.2)
    convs = [
        [{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}]
        for q in ["Return?", "How much is shipping to Canada please?"]
    ]
    prompts = [chat_ids(tok, c) for c in convs]
    outputs, scores = greedy_generate(
        model, prompts, 8, tok.eos_token_id, tok.pad_token_id, batch_size=2, logprobs=True
    )
    for prompt, ids, lps in zip(prompts, outputs, scores, strict=True):
        assert len(ids) == len(lps) > 0
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([prompt + ids])).logits[0].float()
        lp = torch.log_softmax(logits[len(prompt) - 1 : -1], dim=-1)
        expected = [float(lp[t, tok_id]) for t, tok_id in enumerate(ids)]
        assert max(abs(a - b) for a, b in zip(lps, expected, strict=True)) < 1e-3
    scored = generate_scored(model, tok, convs, max_new_tokens=8, batch_size=2)
    assert [s["text"] for s in scored] == generate_replies(model, tok, convs, max_new_tokens=8)
    for s, ids, lps in zip(scored, outputs, scores, strict=True):
        ended = ids[-1] == tok.eos_token_id
        assert s["finish_reason"] == ("stop" if ended else "length")
        assert s["logprobs"] == [round(x, 5) for x in (lps[:-1] if ended else lps)]
