"""The model registry: versions, current/promote/rollback, crash safety, show and diff."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from storetune.errors import StoretuneError
from storetune.models.registry import ModelRef, Registry, weights_hash


def _version(reg: Registry, name: str, **info) -> int:
    v, staging = reg.staging_dir(name)
    (staging / "version.json").write_text(json.dumps({"version": v, **info}))
    reg.publish(name, v, staging)
    return v


def test_versions_promote_and_resolve(tmp_path):
    reg = Registry(tmp_path)
    assert [_version(reg, "support") for _ in range(3)] == [1, 2, 3]
    assert reg.current("support") == 3  # latest until something is promoted
    reg.promote("support", 1)
    assert reg.resolve("support").name == "v1"
    assert reg.resolve("support@v2").name == "v2"
    _version(reg, "support")  # v4: a promoted pin is not moved by a new version
    assert reg.current("support") == 1
    with pytest.raises(StoretuneError, match="no version v9"):
        reg.resolve("support@v9")
    with pytest.raises(StoretuneError, match="no version v9"):
        reg.promote("support", 9)
    with pytest.raises(StoretuneError):
        reg.resolve("nothing")


def test_rollback_goes_back_through_what_was_current(tmp_path):
    reg = Registry(tmp_path)
    _version(reg, "support")
    with pytest.raises(StoretuneError, match="no earlier current version"):
        reg.rollback("support")
    _version(reg, "support")  # v2 becomes current by being newest
    assert reg.rollback("support") == 1
    assert reg.current("support") == 1
    reg.promote("support", 2)
    _version(reg, "support")  # v3, not current (v2 is pinned)
    reg.promote("support", 3)
    assert reg.rollback("support") == 2
    assert reg.rollback("support") == 1
    with pytest.raises(StoretuneError, match="no earlier current version"):
        reg.rollback("support")
    assert reg.current("support") == 1
    with pytest.raises(StoretuneError, match="no trained model"):
        reg.rollback("ghost")


def test_staging_is_invisible_until_published(tmp_path):
    reg = Registry(tmp_path)
    v, staging = reg.staging_dir("content")
    assert reg.versions("content") == []  # a killed run leaves no version behind
    with pytest.raises(StoretuneError, match="incomplete"):
        reg.publish("content", v, staging)  # no version.json yet
    (staging / "version.json").write_text("{}")
    reg.publish("content", v, staging)
    assert reg.versions("content") == [1]


def test_publish_killed_midway_leaves_registry_consistent(tmp_path):
    reg = Registry(tmp_path)
    _version(reg, "support")
    reg.promote("support", 1)
    # A separate process writes v2's files and is killed with SIGKILL half-way
    # through the adapter file, before publishing.
    script = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from storetune.models.registry import Registry
        reg = Registry(Path({str(tmp_path)!r}))
        v, staging = reg.staging_dir("support")
        (staging / "version.json").write_text('{{"version": 2}}')
        with open(staging / "adapter_model.safetensors", "wb") as f:
            f.write(b"x" * 4096)
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == -signal.SIGKILL
    assert (tmp_path / "support" / ".staging-v2").is_dir()  # garbage was left...
    assert reg.versions("support") == [1]  # ...but no half version
    assert reg.current("support") == 1
    assert reg.names() == ["support"]
    assert _version(reg, "support") == 2  # the next run reuses the number and cleans up
    assert not (tmp_path / "support" / ".staging-v2").exists()
    assert reg.current("support") == 1  # still pinned


def test_promote_interrupted_before_rename_keeps_old_state(tmp_path, monkeypatch):
    reg = Registry(tmp_path)
    _version(reg, "support")
    _version(reg, "support")
    reg.promote("support", 1)
    before = (tmp_path / "support" / "registry.json").read_text()

    def crash(*_a, **_k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        reg.promote("support", 2)
    monkeypatch.undo()
    assert (tmp_path / "support" / "registry.json").read_text() == before
    assert reg.current("support") == 1
    reg.promote("support", 2)
    assert reg.current("support") == 2


def test_model_ref_parsing():
    assert ModelRef.parse("support@v3") == ModelRef("support", 3)
    assert ModelRef.parse("support@3") == ModelRef("support", 3)
    assert ModelRef.parse("support") == ModelRef("support", None)
    assert str(ModelRef("support", 3)) == "support@v3"
    with pytest.raises(StoretuneError):
        ModelRef.parse("bad name@")


def test_weights_hash_covers_bytes_not_just_sizes(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"a" * 100)
    (tmp_path / "config.json").write_text("{}")
    first = weights_hash(tmp_path)
    (tmp_path / "config.json").write_text('{"x": 1}')  # not a weights file
    assert weights_hash(tmp_path) == first
    (tmp_path / "model.safetensors").write_bytes(b"b" * 100)  # same size, other bytes
    assert weights_hash(tmp_path) != first


def _full_version(reg: Registry, name: str, lr: float, val: float, train_n: int) -> int:
    v, staging = reg.staging_dir(name)
    info = {
        "name": name,
        "version": v,
        "created": "2025-01-01T00:00:00+00:00",
        "tasks": ["support"],
        "base_model": "tiny",
        "base_model_weights_sha256": "abc",
        "dataset_id": f"ds-{train_n}",
        "dataset_fingerprint": f"fp{train_n}",
        "dataset": {
            "train": {"support": train_n},
            "val": {"support": 4},
            "train_examples": train_n,
        },
        "train": {"best_val_loss": val, "steps": 10, "stopped_early": False},
    }
    (staging / "version.json").write_text(json.dumps(info))
    (staging / "train_config.json").write_text(json.dumps({"lr": lr, "lora_r": 16}))
    (staging / "adapter_model.safetensors").write_bytes(b"\0" * 10)
    reg.publish(name, v, staging)
    return v


def test_show_and_diff_read_the_latest_eval_report(tmp_path):
    reg = Registry(tmp_path / "models")
    _full_version(reg, "support", lr=2e-4, val=1.5, train_n=100)
    _full_version(reg, "support", lr=1e-3, val=1.2, train_n=120)
    reports = tmp_path / "reports"
    reports.mkdir()
    for n, (label, correct) in enumerate([("support-v1", 0.2), ("support-v2", 0.3)]):
        report = {
            "model": label,
            "results": {
                "base": {"summary": {"n": 10, "correct": 0.1}},
                label: {"summary": {"n": 10, "correct": correct}},
            },
        }
        (reports / f"eval-{label}.json").write_text(json.dumps(report))
        os.utime(reports / f"eval-{label}.json", (1000 + n, 1000 + n))
    newer = {"model": "support-v2", "results": {"support-v2": {"summary": {"correct": 0.4}}}}
    (reports / "eval-support-v2-rerun.json").write_text(json.dumps(newer))
    os.utime(reports / "eval-support-v2-rerun.json", (2000, 2000))
    (reports / "eval-broken.json").write_text("{not json")

    shown = reg.show("support@v2", reports)
    assert shown["current"] is True and shown["config"]["lr"] == 1e-3
    assert shown["data"]["id"] == "ds-120" and shown["metrics"]["best_val_loss"] == 1.2
    assert shown["eval"]["summary"]["support-v2"]["correct"] == 0.4  # the newest report
    assert shown["files"]["adapter_model.safetensors"] == 10
    assert reg.show("support@v1")["eval"] is None  # no reports dir given

    d = reg.diff("support@v1", "support@v2", reports)
    assert d["config"] == {"lr": {"a": 2e-4, "b": 1e-3, "delta": pytest.approx(8e-4)}}
    assert d["data"]["id"] == {"a": "ds-100", "b": "ds-120"}
    assert d["data"]["train_examples"]["delta"] == 20
    assert d["data"]["train.support"]["delta"] == 20
    assert d["metrics"]["best_val_loss"]["delta"] == pytest.approx(-0.3)
    assert "steps" not in d["metrics"]  # unchanged fields are left out
    assert d["eval"]["model.correct"]["delta"] == pytest.approx(0.2)
    assert d["tasks"] is None
