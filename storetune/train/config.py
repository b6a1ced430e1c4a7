"""Moved to storetune.config.train; re-exported until the parallel branches are merged."""

from storetune.config.train import TrainConfig  # noqa: F401
