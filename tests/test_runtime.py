"""The runtime layer: the shared-prefix cache changes no number, whoever uses it."""

from __future__ import annotations

import pytest
import torch

from storetune import runtime
from storetune.chat.tokenize import chat_ids
from storetune.errors import StoretuneError
from storetune.runtime import (
    cache_for_rows,
    cacheable_prefix_len,
    greedy_generate,
    load_for_inference,
    prefill,
)

SYSTEM = "You are the support assistant. Returns within 30 days. Shipping $6.95. " * 6
QUESTIONS = ["Return?", "Where is my order number 5?", "How much is shipping to Canada please?"]


@pytest.fixture(scope="module")
def lively(tiny_model_dir):
    """The tiny model with wide weights: its greedy choices depend on the prompt."""
    model, tok = load_for_inference(tiny_model_dir, None, use_bf16=False)
    torch.manual_seed(0)
    for p in model.parameters():
        if p.dim() == 2:
            torch.nn.init.normal_(p, std=0.2)
    return model, tok


def _prompts(tok) -> list[list[int]]:
    convs = [
        [{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}] for q in QUESTIONS
    ]
    return [chat_ids(tok, c) for c in convs]


def test_the_prefix_stops_before_the_first_output_needed():
    # generation: every row keeps its last prompt token, whose logits pick the next one
    assert cacheable_prefix_len([[1, 2, 3], [1, 2, 3]]) == 2
    assert cacheable_prefix_len([[1, 2, 3, 4], [1, 2, 9]]) == 2
    assert cacheable_prefix_len([[1, 2, 3, 4], [1, 2, 3, 5, 6]]) == 3
    # training: the position before the first trained label is needed
    assert cacheable_prefix_len([[1, 2, 3, 4, 5], [1, 2, 3, 4, 6]], first_needed=2) == 2
    assert cacheable_prefix_len([[1, 2], [1, 3]], first_needed=0) == 0
    # one sequence shares with no one; nothing in common, nothing cached
    assert cacheable_prefix_len([[5, 6]]) == 0
    assert cacheable_prefix_len([[1, 2], [3, 4]]) == 0


def test_a_forward_over_the_cached_prefix_equals_the_plain_forward(lively):
    model, tok = lively
    prompts = _prompts(tok)
    shared = cacheable_prefix_len(prompts)
    assert shared > 20
    with torch.no_grad():
        cache = cache_for_rows(prefill(model, prompts[0][:shared]), len(prompts))
        for row, ids in enumerate(prompts):  # each row alone against the batched cache row
            plain = model(torch.tensor([ids])).logits[0, shared:]
            one = cache_for_rows(cache, 1)
            one.batch_select_indices(torch.tensor([row]))
            cached = model(
                input_ids=torch.tensor([ids[shared:]]),
                position_ids=torch.arange(shared, len(ids)).unsqueeze(0),
                past_key_values=one,
                use_cache=True,
            ).logits[0]
            torch.testing.assert_close(cached, plain, rtol=1e-5, atol=1e-5)


def test_extending_a_cached_prefix_equals_computing_it_at_once(lively):
    model, tok = lively
    ids = _prompts(tok)[0]
    with torch.no_grad():
        whole = prefill(model, ids[:40])
        extended = prefill(model, ids[:40], prefill(model, ids[:25]), start=25)
    for a, b in zip(whole.layers, extended.layers, strict=True):
        torch.testing.assert_close(a.keys, b.keys, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(a.values, b.values, rtol=1e-5, atol=1e-5)


def test_cached_greedy_decoding_equals_uncached(lively):
    model, tok = lively
    prompts = _prompts(tok)
    args = (model, prompts, 12, tok.eos_token_id, tok.pad_token_id)
    shared, shared_logits = greedy_generate(*args, batch_size=2, first_logits=True)
    plain, plain_logits = greedy_generate(
        *args, batch_size=2, share_prefix=False, first_logits=True
    )
    single = []
    for ids in prompts:  # transformers' own generate, one prompt, no cache of ours
        x = torch.tensor([ids])
        out = model.generate(
            x,
            attention_mask=torch.ones_like(x),
            max_new_tokens=12,
            do_sample=False,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
        )
        single.append(out[0, len(ids) :].tolist())
    assert shared == plain == single
    assert len({tuple(s) for s in shared}) > 1  # the replies depend on the prompt
    for a, b in zip(shared_logits, plain_logits, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_bf16_setting_and_device_choice():
    assert runtime.bf16_enabled("on") and not runtime.bf16_enabled("off")
    assert runtime.bf16_enabled("auto") == runtime.bf16_supported("cpu")
    if not torch.cuda.is_available():
        assert runtime.pick_device("auto") == "cpu"
        with pytest.raises(StoretuneError, match="serve.device is 'cuda'"):
            runtime.pick_device("cuda", "serve.device")
