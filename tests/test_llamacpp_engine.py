"""The llama.cpp serving engine (serve.engine: llamacpp) against the torch engine.

Both engines serve the same tiny random Llama (the default model's tokenizer, so
llama.cpp's converter takes it) with LoRA adapters from the registry; the GGUF copies
are f32 here so greedy choices must agree token for token (the slow test in
test_real_model.py does the default model in f16).
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import shutil

import pytest
from test_llamacpp import add_version, tiny_llama_with_smollm_tokenizer

from storetune.serve.engine import Engine

SYSTEM = (
    "You are the support assistant of Trailhead Outfitters. Returns: within 30 days of "
    "delivery, unused, tags attached; free prepaid label. Shipping: $6.95, free over $75, "
    "3-5 business days; Canada $19.95, 7-12 business days. Never invent order details."
)
QUESTIONS = [
    "Can I return a jacket I bought 20 days ago?",
    "how much is shipping to canada",
    "where is my order 10234??",
    "Ça arrive quand ? 🙂",
    "I want to talk to a human",
    "is the fleece machine washable",
]


def conv(q: str) -> list[dict]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}]


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """A workspace with support@v1 and support@v2: random adapters large enough that
    the (otherwise newline-only) random base says varied things through them."""
    base = tiny_llama_with_smollm_tokenizer(tmp_path_factory.mktemp("tiny-smoltok"))
    ws = add_version(tmp_path_factory.mktemp("ws"), base, seed=4, b_std=1.0)
    other = add_version(tmp_path_factory.mktemp("ws2"), base, seed=9, b_std=1.0)
    shutil.copytree(other.models_dir / "support" / "v1", ws.models_dir / "support" / "v2")
    info = json.loads((ws.models_dir / "support" / "v1" / "version.json").read_text())
    return ws, base, info


def engines(registry, **llama_kwargs):
    ws, base, _ = registry
    adapters = {
        "support@v1": ws.models_dir / "support" / "v1",
        "support@v2": ws.models_dir / "support" / "v2",
    }
    torch_engine = Engine(base, adapters, bf16=False, engine="torch", default_model="base")
    llama_engine = Engine(
        base, adapters, engine="llamacpp", gguf_type="f32", default_model="base", **llama_kwargs
    )
    return torch_engine, llama_engine


@pytest.mark.parametrize("merge", ["yes", "no"])
def test_llamacpp_engine_decodes_like_torch_for_base_and_each_adapter(registry, merge):
    # two caches for three models: each switch empties the least recently used cache
    # and hands it to the next adapter (LoRA), or closes it with its merged weights and
    # opens the next adapter's, so no prefix computed under one serves another
    torch_engine, llama_engine = engines(registry, max_contexts=2, merge_adapters=merge)
    files = {p.name for p in llama_engine._lora_files.values()}
    assert files == ({"merged.f32.gguf"} if merge == "yes" else {"adapter.f32.gguf"})
    try:
        for model in ("base", "support@v1", "support@v2", "support@v1"):
            for q in QUESTIONS:
                want = torch_engine.generate(conv(q), model, max_tokens=24, logprobs=True)
                got = llama_engine.generate(conv(q), model, max_tokens=24, logprobs=True)
                assert got.text == want.text, (model, q)
                assert got.finish_reason == want.finish_reason
                assert got.completion_tokens == want.completion_tokens
                assert [t for t, _ in got.token_logprobs] == [t for t, _ in want.token_logprobs]
                for (_, a), (_, b) in zip(got.token_logprobs, want.token_logprobs, strict=True):
                    # base: equal. Through these outsized random adapters (B ~ N(0,1), logits
                    # up to ~18) llama.cpp's f32 arithmetic differs from torch's by ~4e-4
                    # relative (merged or as LoRA alike), which compounds over 24 tokens to
                    # ~0.1 in log-prob at the flattest steps; a wrong LoRA scale or cache
                    # gives whole units
                    assert a == pytest.approx(b, abs=0.2)
        # the adapters really differ, so agreeing above means each request used its own
        v1 = [llama_engine.generate(conv(q), "support@v1", max_tokens=24).text for q in QUESTIONS]
        v2 = [llama_engine.generate(conv(q), "support@v2", max_tokens=24).text for q in QUESTIONS]
        assert v1 != v2
        assert list(llama_engine._contexts) == ["support__v1", "support__v2"]
    finally:
        torch_engine.close()
        llama_engine.close()


def test_llamacpp_engine_batches_concurrent_requests_with_the_same_results(registry):
    torch_engine, llama_engine = engines(registry, context_tokens=512)
    try:
        want = [torch_engine.generate(conv(q), "support@v1", max_tokens=40).text for q in QUESTIONS]
        # The cache (max(512, the model's 2048 context)) cannot hold six 40-token
        # replies' promises at once: some requests wait for a slot and still finish.
        with cf.ThreadPoolExecutor(len(QUESTIONS)) as pool:
            got = list(
                pool.map(
                    lambda q: llama_engine.generate(conv(q), "support@v1", max_tokens=300).text[
                        : len(want[QUESTIONS.index(q)])
                    ],
                    QUESTIONS,
                )
            )
        assert got == want
        assert max(llama_engine.batch_sizes) >= 1
    finally:
        torch_engine.close()
        llama_engine.close()


def test_llamacpp_engine_streams_and_stops_like_torch(registry):
    torch_engine, llama_engine = engines(registry)
    try:
        for q in QUESTIONS[:3]:
            full = torch_engine.generate(conv(q), "support@v1", max_tokens=30).text
            stop = full[len(full) // 2 : len(full) // 2 + 2] or "x"
            want = torch_engine.generate(conv(q), "support@v1", max_tokens=30, stop=[stop])
            pieces = list(llama_engine.stream(conv(q), "support@v1", max_tokens=30, stop=[stop]))
            assert "".join(pieces) == want.text
            assert len(pieces) > 1
    finally:
        torch_engine.close()
        llama_engine.close()


def test_auto_engine_falls_back_to_torch_for_a_model_llama_cpp_cannot_convert(tiny_model_dir):
    # tests/tiny.py's tokenizer is unknown to llama.cpp's converter
    engine = Engine(tiny_model_dir, engine="auto")
    try:
        assert engine.kind == "torch"
        assert engine.generate([{"role": "user", "content": "hi"}], max_tokens=4).text is not None
    finally:
        engine.close()


@pytest.mark.parametrize("streams", [False, True])
def test_eval_generation_on_llama_cpp_matches_torch(registry, streams):
    """eval's llama.cpp path (slots refilled as rows finish, each system prompt decoded
    once and copied) gives exactly what the same weights give one conversation at a time,
    and torch's greedy replies, finish reasons and log-probs up to near ties; in one
    shared cache and with a cache stream per row (the eval's, where the prefix is copied
    whole and cut, and rows finish out of slot order)."""
    from storetune import llamacpp
    from storetune.eval.generate import generate_scored, generate_scored_llamacpp
    from storetune.runtime import fingerprint, load_for_inference

    ws, base, _ = registry
    version = ws.models_dir / "support" / "v1"
    other = SYSTEM.replace("Trailhead Outfitters", "Summit Supply")
    convs = [
        [{"role": "system", "content": s}, {"role": "user", "content": q}]
        for s in (SYSTEM, other)
        for q in QUESTIONS
    ] + [[{"role": "user", "content": "hi"}]]
    model, tok = load_for_inference(base, version, False)
    want = generate_scored(model, tok, convs, max_new_tokens=20, batch_size=1)
    gguf = llamacpp.base_gguf(base, fingerprint(base), "f32")
    llama = llamacpp.LlamaModel(gguf)
    lora = llamacpp.adapter_gguf(version, base, "f32")
    ctx = llama.context(lora, slots=3, n_ctx=4096, streams=streams)
    alone_ctx = llama.context(lora, slots=1, n_ctx=4096, streams=streams)
    done = []
    try:
        got = generate_scored_llamacpp(ctx, tok, convs, 20, on_batch=done.append)
        alone = [generate_scored_llamacpp(alone_ctx, tok, [c], 20)[0] for c in convs]
    finally:
        ctx.close()
        alone_ctx.close()
        llama.close()
    # the same tokens; log-probs within llama.cpp's batch-size-dependent rounding
    assert [(g["text"], g["finish_reason"]) for g in got] == [
        (a["text"], a["finish_reason"]) for a in alone
    ]
    for g, a in zip(got, alone, strict=True):
        assert g["logprobs"] == pytest.approx(a["logprobs"], abs=0.05)
    assert sum(done) == len(convs)
    # Through the outsized random adapters llama.cpp's f32 arithmetic differs from torch's
    # by ~4e-4 relative; seen here: one of 13 rows flips at step 6 where torch's top two
    # logits are 0.066 apart (14.53 vs 14.46). Every other row is token for token.
    same = [i for i, (g, w) in enumerate(zip(got, want, strict=True)) if g["text"] == w["text"]]
    assert len(same) >= len(convs) - 1
    for i in same:
        assert got[i]["finish_reason"] == want[i]["finish_reason"]
        assert got[i]["logprobs"] == pytest.approx(want[i]["logprobs"], abs=0.2)


def test_adapters_merge_by_default_only_below_the_size_limit(tmp_path, monkeypatch):
    from storetune import llamacpp

    small = tmp_path / "small.gguf"
    small.write_bytes(b"x" * 10)
    assert llamacpp.merge_adapters("auto", small)
    assert not llamacpp.merge_adapters("no", small)
    monkeypatch.setattr(llamacpp, "MERGE_BELOW_BYTES", 10)
    assert not llamacpp.merge_adapters("auto", small)  # a large base: LoRA at run time
    assert llamacpp.merge_adapters("yes", small)


def test_a_looping_ticket_draft_ends_where_it_loops_on_both_engines(registry, tmp_path_factory):
    """`stop_repetition` (ticket drafts): both engines end a looping reply at the same
    token, the first check at which its start loops; eval's batched llama.cpp path stops
    there too, and torch's eval output is cut there afterwards."""
    from storetune import llamacpp
    from storetune.eval.generate import generate_scored, generate_scored_llamacpp
    from storetune.runtime import fingerprint, load_for_inference
    from storetune.serve.rules import degenerate

    base = registry[1]
    # a smaller random adapter than the module's: this one loops on some questions
    ws = add_version(tmp_path_factory.mktemp("loops"), base, seed=4, b_std=0.3)
    shutil.copytree(ws.models_dir / "support" / "v1", ws.models_dir / "support" / "v2")
    loops = (ws, base, None)
    torch_engine, llama_engine = engines(loops)
    looped = 0
    try:
        for q in QUESTIONS:
            full = torch_engine.generate(conv(q), "support@v1", max_tokens=96)
            for engine in (torch_engine, llama_engine):
                got = engine.generate(conv(q), "support@v1", max_tokens=96, stop_repetition=True)
                if got.finish_reason == "repetition":
                    assert got.completion_tokens <= full.completion_tokens
                    assert full.text.startswith(got.text.rstrip())
                    assert degenerate(got.text)  # what was generated is never sent
                else:
                    assert got.text == full.text
            looped += got.finish_reason == "repetition"
    finally:
        torch_engine.close()
        llama_engine.close()
    assert looped  # the random adapter loops on some questions, so the stop was exercised
    version = ws.models_dir / "support" / "v1"
    convs = [conv(q) for q in QUESTIONS]
    model, tok = load_for_inference(base, version, False)
    want = generate_scored(model, tok, convs, max_new_tokens=96, batch_size=2)
    llama = llamacpp.LlamaModel(llamacpp.base_gguf(base, fingerprint(base), "f32"))
    ctx = llama.context(llamacpp.adapter_gguf(version, base, "f32"), slots=3, n_ctx=4096)
    try:
        got = generate_scored_llamacpp(ctx, tok, convs, 96)
    finally:
        ctx.close()
        llama.close()
    assert [g["finish_reason"] for g in got].count("repetition") == looped
    for g, w in zip(got, want, strict=True):
        assert (g["text"], g["finish_reason"]) == (w["text"], w["finish_reason"])
        assert len(g["logprobs"]) == len(w["logprobs"])
        if g["finish_reason"] == "repetition":
            assert degenerate(g["text"])
