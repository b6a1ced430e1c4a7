"""Optional experiment trackers: the records of metrics.jsonl, also sent elsewhere.

`--report-to tensorboard` writes event files next to the run (and into the
published version); `--report-to mlflow` logs to the MLflow tracking URI (default:
<workspace>/mlruns). Both receive exactly what metrics.jsonl gets, as it happens.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Protocol

from storetune.errors import StoretuneError


class Tracker(Protocol):
    def log(self, record: dict) -> None: ...

    def close(self) -> None: ...


class TensorBoardTracker:
    def __init__(self, log_dir: Path, params: dict) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(log_dir))
        self.writer.add_text("config", _params_markdown(params), 0)

    def log(self, record: dict) -> None:
        step = record.get("step", 0)
        for key, value in _scalars(record).items():
            self.writer.add_scalar(key, value, step)
        if record.get("kind") == "warning":
            self.writer.add_text("warnings", record["message"], step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class MLflowTracker:
    def __init__(self, tracking_dir: Path, run_name: str, params: dict) -> None:
        import mlflow

        if not os.environ.get("MLFLOW_TRACKING_URI"):
            mlflow.set_tracking_uri(tracking_dir.resolve().as_uri())
        self.mlflow = mlflow
        self.run = mlflow.start_run(run_name=run_name)
        mlflow.log_params({k: str(v)[:250] for k, v in params.items()})

    def log(self, record: dict) -> None:
        step = record.get("step", 0)
        values = {k.replace("/", "_"): v for k, v in _scalars(record).items()}
        if values:
            self.mlflow.log_metrics(values, step=step)
        if record.get("kind") == "warning":
            self.mlflow.set_tag("warning", record["message"][:250])

    def close(self) -> None:
        self.mlflow.end_run()


def check_tracker(kind: str) -> None:
    """Fail before training starts, not after the model has loaded."""
    if kind == "mlflow" and importlib.util.find_spec("mlflow") is None:
        raise StoretuneError(
            "train.report_to is 'mlflow' but the mlflow package is not installed",
            hint="pip install mlflow, or use --report-to tensorboard / none",
        )
    if kind == "tensorboard" and importlib.util.find_spec("tensorboard") is None:
        raise StoretuneError(
            "train.report_to is 'tensorboard' but the tensorboard package is not installed",
            hint="pip install tensorboard, or use --report-to none",
        )


def make_tracker(kind: str, log_dir: Path, run_name: str, params: dict) -> Tracker | None:
    """A tracker for `kind` (none|tensorboard|mlflow), or None."""
    check_tracker(kind)
    if kind == "tensorboard":
        return TensorBoardTracker(log_dir, params)
    if kind == "mlflow":
        return MLflowTracker(log_dir, run_name, params)
    return None


def _scalars(record: dict) -> dict[str, float]:
    kind = record.get("kind")
    if kind == "train":
        return {
            "train/loss": record["loss"],
            "train/lr": record["lr"],
            "train/tokens_per_s": record["tokens_per_s"],
        }
    if kind == "val":
        return {"val/loss": record["val_loss"]}
    return {}


def _params_markdown(params: dict) -> str:
    return "\n".join(f"- **{k}**: `{v}`" for k, v in params.items())
