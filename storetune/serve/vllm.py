"""`storetune serve --engine vllm`: hand the registry's adapters to a vLLM server.

vLLM serves the same OpenAI API with continuous batching on a GPU; it loads the
base model directory and each LoRA adapter directory as they are in the workspace
(PEFT format), so nothing is converted. Model names stay the same as with the
embedded server ("base", "support", …), so clients do not change.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from storetune.errors import StoretuneError
from storetune.workspace import Workspace

# vLLM accepts only these values for --max-lora-rank.
VLLM_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)


@dataclass
class VllmPlan:
    command: list[str]
    adapters: dict[str, Path] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)  # secrets travel here, not in argv

    def shell(self) -> str:
        env = " ".join(f"{k}='<your API key>'" for k in self.env)
        return (env + " " if env else "") + shlex.join(self.command)


def adapter_rank(adapter_dir: Path) -> int:
    """The largest LoRA rank in a PEFT adapter_config.json (rank_pattern included)."""
    path = adapter_dir / "adapter_config.json"
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise StoretuneError(f"{path}: cannot read the adapter config ({e})") from None
    return max([int(cfg.get("r", 8)), *map(int, (cfg.get("rank_pattern") or {}).values())])


def vllm_rank(rank: int) -> int:
    fitting = [r for r in VLLM_RANKS if r >= rank]
    if not fitting:
        raise StoretuneError(f"LoRA rank {rank} is above vLLM's maximum of {VLLM_RANKS[-1]}")
    return fitting[0]


def vllm_plan(ws: Workspace, host: str = "127.0.0.1", port: int = 8000) -> VllmPlan:
    """The `vllm serve` command for the workspace's base model and current adapters."""
    from storetune.models.registry import Registry
    from storetune.runtime import resolve_base_model

    cfg = ws.config()
    base = resolve_base_model(cfg.base_model)
    registry = Registry(ws.models_dir)
    names = cfg.serve.adapters if cfg.serve.adapters is not None else registry.names()
    adapters = {name: registry.resolve(name) for name in names}
    cmd = ["vllm", "serve", str(base.path), "--served-model-name", "base", base.name]
    cmd += ["--host", host, "--port", str(port)]
    if adapters:
        rank = vllm_rank(max(adapter_rank(p) for p in adapters.values()))
        cmd += ["--enable-lora", "--max-loras", str(len(adapters)), "--max-lora-rank", str(rank)]
        cmd += ["--lora-modules", *(f"{n}={p}" for n, p in adapters.items())]
    cmd += ["--max-num-seqs", str(cfg.serve.max_concurrency + cfg.serve.queue_size)]
    env = {}
    keys = cfg.serve.resolved_api_keys()
    if keys:
        # vLLM checks one key (VLLM_API_KEY); the first configured key is handed over.
        env["VLLM_API_KEY"] = keys[0]
    return VllmPlan(cmd, adapters, env)


def run_vllm(
    ws: Workspace,
    host: str = "127.0.0.1",
    port: int = 8000,
    insecure_no_auth: bool = False,
    log: Callable[[str], None] = print,
) -> int:
    """Start vLLM when it is installed; otherwise print the command to run where it is."""
    plan = vllm_plan(ws, host, port)
    if not plan.env and not insecure_no_auth:
        from storetune.serve.app import api_keys_or_refuse

        api_keys_or_refuse(ws.config().serve, False, str(ws.config_path))
    if shutil.which("vllm") is None:
        log(
            "vLLM is not installed on this machine, so it was not started. On a machine "
            "with a supported GPU, `pip install vllm` and run (same workspace paths):\n\n"
            f"  {plan.shell()}\n\n"
            "Clients use the same /v1 API and model names as `storetune serve`."
        )
        return 0
    log(f"starting: {plan.shell()}")
    return subprocess.run(plan.command, env={**os.environ, **plan.env}).returncode
