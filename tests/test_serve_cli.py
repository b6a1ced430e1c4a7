"""`storetune serve` for real: a child process on a free port, reached over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
from test_serve_support import KEY, free_port, make_workspace, save_adapter, wait_until


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def test_serve_command_serves_the_registry(tiny_model_dir, tmp_path):
    ws = make_workspace(tmp_path / "ws", tiny_model_dir, {"api_keys": [], "threads": 1})
    save_adapter(tiny_model_dir, ws / "models", "support", 1, seed=1)
    port = free_port()
    env = {**os.environ, "STORETUNE_API_KEYS": KEY}
    cmd = [sys.executable, "-m", "storetune", "-w", str(ws), "serve", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: proc.poll() is not None or _healthy(url), "the server to start", 120)
        assert proc.poll() is None, proc.stdout.read().decode()
        assert httpx.get(f"{url}/health").json()["threads"] == 1  # serve.threads applied
        auth = {"Authorization": f"Bearer {KEY}"}
        models = httpx.get(f"{url}/v1/models", headers=auth).json()
        assert {m["id"] for m in models["data"]} >= {"base", "support", "support@v1"}
        body = {
            "model": "support",
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 3,
        }
        reply = httpx.post(f"{url}/v1/chat/completions", json=body, headers=auth, timeout=60)
        assert reply.status_code == 200 and reply.json()["usage"]["completion_tokens"] >= 1
        assert httpx.post(f"{url}/v1/chat/completions", json=body).status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=30)
