"""`storetune train`: dataset -> LoRA adapter -> models/<name>/v<N>/."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from storetune.config import TrainConfig
from storetune.config.train import SUPPORT_TASKS
from storetune.dataset.build import resolve_dataset
from storetune.errors import StoretuneError
from storetune.io import atomic_write_json, read_jsonl, select_rows
from storetune.models.registry import Registry, weights_hash
from storetune.runtime import ResolvedModel, resolve_base_model
from storetune.train.loop import TrainResult, file_fingerprint, train_lora, write_metrics
from storetune.train.plots import plot_loss
from storetune.train.tracking import check_tracker, make_tracker
from storetune.workspace import Workspace


def train_config(ws: Workspace, overrides: dict | None = None) -> TrainConfig:
    return ws.config().train.with_overrides(overrides or {})


def train_model(
    ws: Workspace,
    name: str = "support",
    dataset_id: str | None = None,
    overrides: dict | None = None,
    resume: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
    on_step: Callable[[int], None] | None = None,
) -> tuple[Path, TrainResult]:
    """Train adapter `name` on the dataset's selected tasks and publish models/<name>/v<N>.

    Under `accelerate launch` every rank runs this; only rank 0 touches the registry.
    """
    cfg = train_config(ws, overrides)
    main = int(os.environ.get("RANK", "0")) == 0
    run_dir = ws.models_dir / name / ".run"
    if resume:
        dataset_id, cfg = _resumed_run(run_dir, dataset_id, cfg, overrides or {})
    check_tracker(cfg.report_to)
    data_dir = resolve_dataset(ws, dataset_id)
    base = resolve_base_model(ws.config().base_model)
    train_rows, train_tasks = select_rows(data_dir, "train", cfg.tasks)
    val_rows, val_tasks = select_rows(data_dir, "val", cfg.tasks)
    _check_selection(cfg.tasks, train_tasks, data_dir, log)
    if main and not resume:
        _start_run(run_dir, data_dir, cfg, base)
    registry = Registry(ws.models_dir)
    version, staging = (
        registry.staging_dir(name) if main else (0, run_dir / f".rank{os.environ['RANK']}")
    )
    tracker = (
        make_tracker(
            cfg.report_to, _tracker_dir(ws, run_dir, cfg), f"{name}-v{version}", _params(cfg)
        )
        if main
        else None
    )
    try:
        result = train_lora(
            base,
            train_rows,
            val_rows,
            cfg,
            run_dir,
            staging,
            resume,
            progress,
            log,
            on_step=on_step,
            on_metric=tracker.log if tracker else None,
        )
    finally:
        if tracker:
            tracker.close()
    if not main:
        return staging, result
    if (run_dir / "tensorboard").is_dir():
        shutil.move(run_dir / "tensorboard", staging / "tensorboard")
    dataset = {"id": data_dir.name, "train": train_tasks, "val": val_tasks}
    router = _train_router(data_dir, staging, cfg, log, ws.config().escalation.marker)
    _write_version_files(staging, name, version, cfg, base, data_dir, dataset, result, router)
    final = registry.publish(name, version, staging)
    shutil.rmtree(run_dir, ignore_errors=True)
    return final, result


def _resumed_run(
    run_dir: Path, dataset_id: str | None, asked: TrainConfig, overrides: dict
) -> tuple[str, TrainConfig]:
    """The interrupted run's own dataset and config; refuse options that contradict them.

    A resumed run must follow the one it continues, so a changed option would silently
    be ignored — say so instead.
    """
    saved_id, saved = _saved_run(run_dir)
    changed = [
        f"--{k.replace('_', '-')} (saved: {getattr(saved, k)!r}, given: {getattr(asked, k)!r})"
        for k in overrides
        if getattr(saved, k) != getattr(asked, k)
    ]
    if dataset_id is not None and dataset_id != saved_id:
        changed.append(f"--dataset (saved: {saved_id!r}, given: {dataset_id!r})")
    if changed:
        raise StoretuneError(
            f"{run_dir}: --resume continues the interrupted run with its saved settings, "
            "but these differ: " + "; ".join(changed),
            hint="drop those options to resume, or start a new run without --resume",
        )
    return saved_id, saved


def _saved_run(run_dir: Path) -> tuple[str, TrainConfig]:
    path = run_dir / "run.json"
    if not path.exists():
        raise StoretuneError(
            f"{run_dir}: no interrupted run to resume", hint="start a new run without --resume"
        )
    saved = json.loads(path.read_text(encoding="utf-8"))
    return saved["dataset_id"], TrainConfig.model_validate(saved["config"])


def _start_run(run_dir: Path, data_dir: Path, cfg: TrainConfig, base: ResolvedModel) -> None:
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    run = {"dataset_id": data_dir.name, "config": cfg.model_dump(), "base_model": base.name}
    atomic_write_json(run_dir / "run.json", run)


def _check_selection(tasks: list[str], kept: dict[str, int], data_dir: Path, log) -> None:
    if not kept:
        meta = data_dir / "meta.jsonl"
        rows = read_jsonl(meta) if meta.exists() else []
        present = sorted({m["task"] for m in rows if m["split"] == "train"})
        raise StoretuneError(
            f"{data_dir.name}: no training examples for tasks {', '.join(tasks)}",
            hint=f"this dataset's train split has tasks: {', '.join(present) or 'none'}",
        )
    absent = [t for t in tasks if t != "all" and t not in kept]
    if absent and tasks != list(SUPPORT_TASKS):
        log(f"note: no training examples for task(s) {', '.join(absent)} in {data_dir.name}")


def _tracker_dir(ws: Workspace, run_dir: Path, cfg: TrainConfig) -> Path:
    # TensorBoard: beside the checkpoint (watch it live), moved into the version at
    # the end. MLflow: one store per workspace.
    return ws.root / "mlruns" if cfg.report_to == "mlflow" else run_dir / "tensorboard"


def _params(cfg: TrainConfig) -> dict:
    return {k: ",".join(v) if isinstance(v, list) else v for k, v in cfg.model_dump().items()}


def _train_router(
    data_dir: Path, staging: Path, cfg: TrainConfig, log, marker: str = "[ESCALATE]"
) -> dict | None:
    """The router beside a support adapter (seconds): it reads every ticket first and
    decides the focused context and hand-overs. Catalog-task adapters need none."""
    from storetune.train.router import embed_texts, train_router_for_version

    if not set(cfg.tasks) & set(SUPPORT_TASKS) and cfg.tasks != ["all"]:
        return None
    report = train_router_for_version(data_dir, staging, embed_texts, cfg.seed, marker)
    if report is not None:
        acc = report.get("val_accuracy")
        check = report.get("reply_check", {}).get("val_accuracy")
        log(
            f"router: {report['train_examples']} examples"
            + (f", val accuracy {acc:.1%}" if acc is not None else "")
            + f", hand-over threshold {report['hand_over_threshold']:.2f}"
            + (f"; reply check val accuracy {check:.1%}" if check is not None else "")
        )
    return report


def _dataset_layout(data_dir: Path) -> int | None:
    """The support prompt layout the training set was rendered in (None: it has none)."""
    from storetune.chat.prompt import prompt_layout_of

    with (data_dir / "train.jsonl").open(encoding="utf-8") as f:
        for line in f:
            messages = json.loads(line).get("messages") or []
            if messages and messages[0].get("role") == "system":
                layout = prompt_layout_of(messages[0]["content"])
                if layout is not None:
                    return layout
    return None


def _write_version_files(
    staging, name, version, cfg, base, data_dir, dataset, result, router=None
) -> None:
    summary = {k: v for k, v in result.__dict__.items() if k != "metrics"}
    vals = [m["val_loss"] for m in result.metrics if m["kind"] == "val"]
    summary["final_val_loss"] = vals[-1] if vals else None
    info = {
        "name": name,
        "version": version,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "tasks": cfg.tasks,
        "base_model": base.name,
        "base_model_path": str(base.path),
        "base_model_fingerprint": base.fingerprint,
        "base_model_weights_sha256": weights_hash(base.path),
        "dataset_id": data_dir.name,
        "dataset_fingerprint": file_fingerprint(data_dir / "train.jsonl", data_dir / "val.jsonl"),
        "dataset": {
            **dataset,
            "train_examples": sum(dataset["train"].values()),
            "val_examples": sum(dataset["val"].values()),
        },
        "prompt_layout": _dataset_layout(data_dir),
        "train": summary,
        "router": router,
        "warnings": [m["message"] for m in result.metrics if m["kind"] == "warning"],
        # Filled from reports/eval-<name>-v<N>.json by `models show` / `diff`: a
        # published version is never rewritten.
        "eval": None,
    }
    atomic_write_json(staging / "version.json", info)
    atomic_write_json(staging / "train_config.json", cfg.model_dump())
    write_metrics(result.metrics, staging / "metrics.jsonl")
    plot_loss(result.metrics, staging / "loss.png", f"{name} v{version} on {data_dir.name}")
