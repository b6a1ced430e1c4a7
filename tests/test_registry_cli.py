"""`storetune models list|show|promote|rollback|diff` on a workspace with three versions."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from typer.testing import CliRunner

from storetune.cli import app
from storetune.models.registry import Registry

runner = CliRunner()


def _publish(reg: Registry, lr: float, val: float, n_train: int, tasks=("support",)) -> int:
    v, staging = reg.staging_dir("support")
    info = {
        "name": "support",
        "version": v,
        "created": f"2025-01-0{v}T00:00:00+00:00",
        "tasks": list(tasks),
        "base_model": "smollm2-135m-instruct",
        "base_model_weights_sha256": "f" * 64,
        "dataset_id": f"ds-{n_train}",
        "dataset_fingerprint": f"fp-{n_train}",
        "dataset": {
            "train": {"support": n_train},
            "val": {"support": 10},
            "train_examples": n_train,
        },
        "train": {"best_val_loss": val, "steps": 30, "tokens_per_second": 500.0},
        "warnings": [],
    }
    (staging / "version.json").write_text(json.dumps(info))
    (staging / "train_config.json").write_text(json.dumps({"lr": lr, "lora_r": 16, "epochs": 3}))
    (staging / "adapter_model.safetensors").write_bytes(b"\0" * 64)
    reg.publish("support", v, staging)
    return v


@pytest.fixture
def ws(tmp_path):
    root = tmp_path / "store"
    root.mkdir()
    (root / "store.yaml").write_text(yaml.safe_dump({"brand": {"name": "Pine", "voice": "warm"}}))
    reg = Registry(root / "models")
    _publish(reg, 2e-4, 1.50, 400)
    _publish(reg, 2e-4, 1.40, 400)
    _publish(reg, 1e-3, 1.20, 520, tasks=("support", "escalation"))
    (root / "reports").mkdir()
    report = {
        "model": "support-v3",
        "results": {"support-v3": {"summary": {"n": 38, "correct": 0.31, "wrong": 0.4}}},
    }
    (root / "reports" / "eval-support-v3.json").write_text(json.dumps(report))
    return root


def cli(root, *args):
    result = runner.invoke(app, ["-w", str(root), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_list_marks_the_current_version(ws):
    out = cli(ws, "models", "list")
    rows = [line for line in out.splitlines() if "support" in line and "v" in line]
    assert len(rows) == 3
    assert "*" in next(r for r in rows if " v3 " in r)
    assert "1.2000" in out and "escalation" in out  # v3 trained on two tasks


def test_promote_then_rollback(ws):
    assert "support@v1 is now current" in cli(ws, "models", "promote", "support@v1")
    assert Registry(ws / "models").current("support") == 1
    assert "support@v3 is current again" in cli(ws, "models", "rollback", "support")
    assert "support@v2 is current again" in cli(ws, "models", "rollback", "support")
    assert Registry(ws / "models").current("support") == 2
    shown = json.loads(cli(ws, "models", "show", "support", "--json"))
    assert shown["ref"] == "support@v2" and shown["current"] is True


def test_show_includes_config_data_metrics_eval_and_files(ws):
    shown = json.loads(cli(ws, "models", "show", "support@v3", "--json"))
    assert shown["config"]["lr"] == 1e-3
    assert shown["data"]["id"] == "ds-520" and shown["data"]["train_examples"] == 520
    assert shown["metrics"]["best_val_loss"] == 1.2
    assert shown["eval"]["summary"]["support-v3"]["correct"] == 0.31
    assert "adapter_model.safetensors" in shown["files"]
    table = cli(ws, "models", "show", "support@v1")
    assert "not graded yet" in table and "ds-400" in table


def test_diff_shows_config_data_and_metric_changes(ws):
    d = json.loads(cli(ws, "models", "diff", "support@v1", "support@v3", "--json"))
    assert d["config"]["lr"]["b"] == 1e-3
    assert d["data"]["fingerprint"] == {"a": "fp-400", "b": "fp-520"}
    assert d["data"]["train_examples"]["delta"] == 120
    assert d["metrics"]["best_val_loss"]["delta"] == pytest.approx(-0.3)
    assert d["eval"]["model.correct"] == {"a": None, "b": 0.31}
    assert d["tasks"] == [["support"], ["support", "escalation"]]
    table = cli(ws, "models", "diff", "support@v1", "support@v3")
    assert "best_val_loss" in table and "fingerprint" in table and "lora_r" not in table
    same = cli(ws, "models", "diff", "support@v1", "support@v1")
    assert "no differences" in same


@pytest.mark.parametrize(
    "args, message",
    [
        (["models", "promote", "support"], "say which version"),
        (["models", "promote", "support@v9"], "no version v9"),
        (["models", "show", "nope"], "no trained model named 'nope'"),
    ],
)
def test_user_errors_exit_2_with_one_line(ws, args, message):
    proc = subprocess.run(
        [sys.executable, "-m", "storetune", "-w", str(ws), *args], capture_output=True, text=True
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_rollback_with_no_earlier_version_is_an_error(tmp_path):
    root = tmp_path / "one"
    root.mkdir()
    (root / "store.yaml").write_text(yaml.safe_dump({"brand": {"name": "P", "voice": "w"}}))
    _publish(Registry(root / "models"), 2e-4, 1.5, 100)
    proc = subprocess.run(
        [sys.executable, "-m", "storetune", "-w", str(root), "models", "rollback", "support"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "no earlier current version" in proc.stderr
