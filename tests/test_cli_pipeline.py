"""The CLI pipeline end to end on a small sample store with the tiny model."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from storetune.cli import app

runner = CliRunner()


def invoke(*args: str):
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def small_store(tmp_path, tiny_model_dir):
    ws = tmp_path / "store"
    invoke("demo-store", str(ws), "--products", "30", "--tickets", "120", "--seed", "3")
    cfg = yaml.safe_load((ws / "store.yaml").read_text())
    cfg["base_model"] = str(tiny_model_dir)
    cfg["build"] = {"product_qa": 20}
    cfg["train"] = {"batch_tokens": 1024, "threads": 1}
    (ws / "store.yaml").write_text(yaml.safe_dump(cfg))
    return ws


def test_pipeline_end_to_end(small_store):
    w = ["-w", str(small_store)]
    out = invoke(*w, "ingest").output
    assert "zendesk" in out and (small_store / "store.db").exists()
    assert json.loads((small_store / "reports" / "ingest.json").read_text())["reconciles"] is True

    invoke(*w, "build")
    dataset = (small_store / "datasets" / "LATEST").read_text().strip()
    ddir = small_store / "datasets" / dataset
    for split in ("train", "val", "test"):
        rows = [json.loads(line) for line in (ddir / f"{split}.jsonl").read_text().splitlines()]
        assert rows and all(r["messages"][0]["role"] == "system" for r in rows)

    out = invoke(*w, "train", "--max-steps", "2").output
    assert "saved" in out
    version = small_store / "models" / "support" / "v1"
    for name in (
        "adapter_model.safetensors",
        "adapter_config.json",
        "version.json",
        "metrics.jsonl",
        "loss.png",
        "train_config.json",
    ):
        assert (version / name).exists(), name
    info = json.loads((version / "version.json").read_text())
    assert info["dataset_id"] == dataset and info["train"]["steps"] == 2

    out = invoke(*w, "eval", "--limit", "4", "--max-new-tokens", "8").output
    assert "correct" in out
    report = json.loads((small_store / "reports" / "eval-support-v1.json").read_text())
    assert set(report["results"]) == {"base", "support-v1"}
    assert report["results"]["base"]["summary"]["n"] == 4

    assert "support" in invoke(*w, "models", "list").output


def test_errors_are_one_line_without_traceback(tmp_path):
    from storetune.cli import run

    bad = tmp_path / "ws"
    bad.mkdir()
    (bad / "store.yaml").write_text(
        "brand:\n  name: X\npolicies:\n  returns:\n    window_days: soon\n"
    )
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "storetune", "-w", str(bad), "build"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "policies.returns.window_days" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert run is not None


def test_init_writes_a_valid_config(tmp_path):
    from storetune.config import load_config

    invoke("-w", str(tmp_path / "new"), "init", "--brand", "Pine Co")
    cfg = load_config(tmp_path / "new" / "store.yaml")
    assert cfg.brand.name == "Pine Co"
    result = runner.invoke(app, ["-w", str(tmp_path / "new"), "init"])
    assert result.exit_code != 0


def test_demo_ends_with_the_headline_table_and_the_report_path(
    tmp_path, tiny_model_dir, monkeypatch
):
    from dataclasses import replace
    from pathlib import Path

    from storetune.demo import pipeline

    small = replace(pipeline.QUICK, products=20, tickets=80, build_max_tickets=40, eval_limit=4)
    monkeypatch.setattr(pipeline, "QUICK", replace(small, max_new_tokens=8, product_qa=8))
    out = invoke(
        "demo",
        "--quick",
        "--directory",
        str(tmp_path / "demo"),
        "--base-model",
        str(tiny_model_dir),
    ).output
    assert "correct" in out and "wrong" in out and "support-v1" in out
    # the sample store's own orders, asked about by their owners and by others
    line = next(x for x in out.splitlines() if x.startswith("order tickets"))
    assert "verified, status right" in line and "nothing revealed" in line, line
    assert "(n=0" not in line and "0 drafted" in line, line
    report = Path(out.split("eval report:")[1].split()[0])
    assert report.suffix == ".html" and report.exists()
    assert "support" in report.read_text(encoding="utf-8")
