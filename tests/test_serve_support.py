"""Fixtures shared by the serve tests: a tiny workspace with real adapters, a live server.

The tiny model's weights are widened (as in test_generate.py) so its greedy output
depends on the prompt and on the adapter; the adapters are real PEFT LoRA adapters
with non-zero B matrices, saved in the registry layout models/<name>/vN.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest
import yaml

SYSTEM = "You are the support assistant. Returns within 30 days. Shipping $6.95. " * 6
KEY = "test-key-0123456789"


def chat(question: str, system: str = SYSTEM) -> list[dict]:
    return [{"role": "system", "content": system}, {"role": "user", "content": question}]


def widen_weights(model_dir: Path, out: Path) -> Path:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    torch.manual_seed(0)
    for p in model.parameters():
        if p.dim() == 2:
            torch.nn.init.normal_(p, std=0.2)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(out)
    return out


def save_adapter(base_dir: Path, models_dir: Path, name: str, version: int, seed: int) -> Path:
    """A LoRA adapter with random (non-zero) weights, published like training does."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from storetune.runtime import fingerprint

    model = AutoModelForCausalLM.from_pretrained(base_dir)
    torch.manual_seed(seed)
    lora = LoraConfig(
        r=4,
        lora_alpha=8,
        lora_dropout=0.1,  # dropout left on at inference would make replies random
        target_modules="all-linear",
        init_lora_weights=False,
        task_type="CAUSAL_LM",
    )
    out = models_dir / name / f"v{version}"
    get_peft_model(model, lora).save_pretrained(out)
    info = {"name": name, "version": version, "base_model_fingerprint": fingerprint(base_dir)}
    (out / "version.json").write_text(json.dumps(info))
    return out


def make_workspace(root: Path, base_dir: Path, serve: dict | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    cfg = {
        "brand": {"name": "Tiny Outfitters", "voice": "friendly"},
        "base_model": str(base_dir),
        "serve": {"api_keys": [KEY], **(serve or {})},
    }
    (root / "store.yaml").write_text(yaml.safe_dump(cfg))
    return root


@pytest.fixture(scope="session")
def serve_base(tiny_model_dir, tmp_path_factory) -> Path:
    return widen_weights(tiny_model_dir, tmp_path_factory.mktemp("serve-base"))


@pytest.fixture(scope="session")
def serve_models(serve_base, tmp_path_factory) -> Path:
    """models/ with support v1 + v2 (v2 current) and product v1."""
    models = tmp_path_factory.mktemp("serve-ws") / "models"
    save_adapter(serve_base, models, "support", 1, seed=1)
    save_adapter(serve_base, models, "support", 2, seed=2)
    save_adapter(serve_base, models, "product", 1, seed=3)
    return models


@pytest.fixture(scope="session")
def serve_engine(serve_base, serve_models):
    from storetune.serve.engine import Engine

    engine = Engine(
        serve_base,
        {"support": serve_models / "support/v2", "product": serve_models / "product/v1"},
        registry_root=serve_models,
        bf16=False,
    )
    yield engine
    engine.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """uvicorn on a free loopback port in a thread, for real HTTP clients."""

    def __init__(self, app) -> None:
        import uvicorn

        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.app = app

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class GatedEngine:
    """Builds an Engine whose worker waits on `gate` before each batch.

    Lets a test hold the engine busy for as long as it needs, deterministically.
    """

    @staticmethod
    def create(base: Path, adapters: dict[str, Path] | None = None, **kwargs):
        from storetune.serve.engine import Engine

        class _Gated(Engine):
            def __init__(self, *a, **kw) -> None:
                self.gate = threading.Event()
                self.waiting = threading.Event()  # set while a batch waits at the gate
                super().__init__(*a, **kw)

            def _run_batch(self, jobs) -> None:
                self.waiting.set()
                self.gate.wait()
                self.waiting.clear()
                super()._run_batch(jobs)

            def close(self) -> None:
                self.gate.set()
                super().close()

        return _Gated(base, adapters or {}, bf16=False, **kwargs)


def wait_until(predicate, what: str, limit_s: float = 30.0) -> None:
    """Poll a condition (not a timing assertion: the limit only stops a hung test)."""
    deadline = time.monotonic() + limit_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.005)


AUTH = {"Authorization": f"Bearer {KEY}"}
BODY = {"model": "base", "messages": chat("Where is my order?"), "max_tokens": 4}
