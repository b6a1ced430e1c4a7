"""`storetune serve --engine vllm`: the command for the registry, printed or run."""

from __future__ import annotations

import json
import os
import stat

import pytest
from test_serve_support import KEY, make_workspace, save_adapter
from typer.testing import CliRunner

from storetune.errors import StoretuneError
from storetune.serve.vllm import vllm_plan, vllm_rank
from storetune.workspace import Workspace


@pytest.fixture
def ws(tiny_model_dir, tmp_path) -> Workspace:
    ws = Workspace(make_workspace(tmp_path / "ws", tiny_model_dir))
    save_adapter(tiny_model_dir, ws.models_dir, "support", 1, seed=1)
    save_adapter(tiny_model_dir, ws.models_dir, "support", 2, seed=2)
    product = save_adapter(tiny_model_dir, ws.models_dir, "product", 1, seed=3)
    cfg = json.loads((product / "adapter_config.json").read_text())
    cfg["rank_pattern"] = {"q_proj": 24}  # one layer with a larger rank
    (product / "adapter_config.json").write_text(json.dumps(cfg))
    return ws


def test_plan_lists_current_adapters_and_rounds_the_rank(ws, tiny_model_dir):
    plan = vllm_plan(ws, "0.0.0.0", 9000)
    cmd = plan.command
    assert cmd[:3] == ["vllm", "serve", str(tiny_model_dir.resolve())]
    i = cmd.index("--lora-modules")
    assert sorted(cmd[i + 1 : i + 3]) == [
        f"product={ws.models_dir / 'product/v1'}",
        f"support={ws.models_dir / 'support/v2'}",
    ]
    assert cmd[cmd.index("--max-lora-rank") + 1] == "32"  # 24 rounded up to a vLLM size
    assert cmd[cmd.index("--max-loras") + 1] == "2"
    assert "--enable-lora" in cmd and cmd[cmd.index("--port") + 1] == "9000"
    assert "base" in cmd[cmd.index("--served-model-name") + 1 :]
    assert plan.env == {"VLLM_API_KEY": KEY}
    assert KEY not in plan.shell()  # the key never appears on a printed command line


def test_vllm_rank_sizes():
    assert [vllm_rank(r) for r in (1, 8, 9, 16, 200)] == [8, 8, 16, 16, 256]
    with pytest.raises(StoretuneError):
        vllm_rank(4096)


def test_cli_prints_the_command_when_vllm_is_absent(ws, monkeypatch):
    from storetune.cli import app

    monkeypatch.setenv("PATH", "/nonexistent")
    result = CliRunner().invoke(app, ["-w", str(ws.root), "serve", "--engine", "vllm"])
    assert result.exit_code == 0, result.output
    assert "vLLM is not installed" in result.output
    assert "--enable-lora" in result.output


def test_cli_runs_vllm_when_installed(ws, tmp_path, monkeypatch):
    from storetune.cli import app

    bindir = tmp_path / "bin"
    bindir.mkdir()
    record = tmp_path / "argv.json"
    fake = bindir / "vllm"
    # A stand-in `vllm` that records its arguments and the key it was handed.
    fake.write_text(
        "#!/bin/sh\n"
        f'python3 -c \'import json,os,sys; json.dump({{"argv": sys.argv[1:], '
        f'"key": os.environ.get("VLLM_API_KEY")}}, open("{record}", "w"))\' "$@"\n'
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    result = CliRunner().invoke(app, ["-w", str(ws.root), "serve", "--engine", "vllm"])
    assert result.exit_code == 0, result.output
    seen = json.loads(record.read_text())
    assert seen["argv"][0] == "serve" and "--enable-lora" in seen["argv"]
    assert seen["key"] == KEY
