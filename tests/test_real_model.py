"""Integration with the real bundled default model (no model hub involved)."""

from __future__ import annotations

import os

import pytest

from storetune.eval.generate import generate_replies
from storetune.runtime import (
    embedding_model_dir,
    load_embedder,
    load_for_inference,
    resolve_base_model,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def default_model():
    if os.environ.get("STORETUNE_CACHE") is None:
        pytest.fail("STORETUNE_CACHE must point at the converted-model cache (make test sets it)")
    return resolve_base_model()


def test_default_model_resolves_offline_and_generates(default_model, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert (default_model.path / "model.safetensors").exists()
    model, tok = load_for_inference(default_model.path, None, use_bf16=False)
    reply = generate_replies(
        model, tok, [[{"role": "user", "content": "Say hello."}]], max_new_tokens=20
    )
    assert reply[0].strip(), "the model should produce text"
    assert model.config.model_type == "llama" and model.config.num_hidden_layers == 30


def test_bundled_embedder_loads_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert (embedding_model_dir() / "model.safetensors").exists()
    vectors = load_embedder().encode(["waterproof jacket", "rain shell", "camp stove"])
    sim = vectors @ vectors.T
    assert sim[0, 1] > sim[0, 2], "a jacket is closer to a rain shell than to a stove"


def test_hub_id_without_network_fails_clearly(monkeypatch):
    from storetune.errors import StoretuneError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(StoretuneError, match="local directory|directory"):
        resolve_base_model("some-org/not-a-local-model")
