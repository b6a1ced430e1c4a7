"""`storetune train`: dataset -> LoRA adapter -> models/<name>/v<N>/."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from storetune.dataset.build import resolve_dataset
from storetune.errors import StoretuneError
from storetune.models.base import resolve_base_model
from storetune.models.registry import Registry
from storetune.train.config import TrainConfig
from storetune.train.data import read_jsonl
from storetune.train.loop import TrainResult, file_fingerprint, train_lora, write_metrics
from storetune.train.plots import plot_loss
from storetune.workspace import Workspace


def train_config(ws: Workspace, overrides: dict | None = None) -> TrainConfig:
    raw = {**ws.config().train, **(overrides or {})}
    try:
        return TrainConfig.model_validate(raw)
    except Exception as e:
        raise StoretuneError(f"{ws.config_path}: invalid 'train' options: {e}") from None


def train_model(
    ws: Workspace,
    name: str = "support",
    dataset_id: str | None = None,
    overrides: dict | None = None,
    resume: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> tuple[Path, TrainResult]:
    cfg = train_config(ws, overrides)
    store_cfg = ws.config()
    run_dir = ws.models_dir / name / ".run"
    if resume:
        saved = (
            json.loads((run_dir / "run.json").read_text())
            if (run_dir / "run.json").exists()
            else None
        )
        if saved is None:
            raise StoretuneError(f"{run_dir}: no interrupted run to resume")
        dataset_id, cfg = saved["dataset_id"], TrainConfig.model_validate(saved["config"])
    data_dir = resolve_dataset(ws, dataset_id)
    base = resolve_base_model(store_cfg.base_model)
    if not resume:
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir(parents=True)
        run = {"dataset_id": data_dir.name, "config": cfg.model_dump(), "base_model": base.name}
        (run_dir / "run.json").write_text(json.dumps(run, indent=2))
    train_rows = read_jsonl(data_dir / "train.jsonl")
    val_rows = read_jsonl(data_dir / "val.jsonl")
    registry = Registry(ws.models_dir)
    version, staging = registry.staging_dir(name)
    result = train_lora(base, train_rows, val_rows, cfg, run_dir, staging, resume, progress, log)
    _write_version_files(staging, name, version, cfg, base, data_dir, result)
    final = registry.publish(name, version, staging)
    shutil.rmtree(run_dir, ignore_errors=True)
    return final, result


def _write_version_files(staging, name, version, cfg, base, data_dir, result) -> None:
    info = {
        "name": name,
        "version": version,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "base_model": base.name,
        "base_model_path": str(base.path),
        "base_model_fingerprint": base.fingerprint,
        "dataset_id": data_dir.name,
        "dataset_fingerprint": file_fingerprint(data_dir / "train.jsonl", data_dir / "val.jsonl"),
        "train": {k: v for k, v in result.__dict__.items() if k != "metrics"},
    }
    (staging / "version.json").write_text(json.dumps(info, indent=2))
    (staging / "train_config.json").write_text(json.dumps(cfg.model_dump(), indent=2))
    write_metrics(result.metrics, staging / "metrics.jsonl")
    plot_loss(result.metrics, staging / "loss.png", f"{name} v{version} on {data_dir.name}")
