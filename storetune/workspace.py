"""Workspace paths: one directory per store, and its store.yaml loaded.

The layout of a workspace and the data flow between its folders are described in
docs/architecture.md; the schema of store.yaml lives in `storetune.config`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from storetune.config import CONFIG_NAME, StoreConfig, load_config
from storetune.errors import StoretuneError


@dataclass(frozen=True)
class Workspace:
    """Paths inside one store's workspace directory."""

    root: Path

    @classmethod
    def resolve(cls, root: str | Path | None = None) -> Workspace:
        chosen = root or os.environ.get("STORETUNE_WORKSPACE") or "."
        return cls(Path(chosen).expanduser().resolve())

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_NAME

    @property
    def db_path(self) -> Path:
        return self.root / "store.db"

    @property
    def datasets_dir(self) -> Path:
        return self.root / "datasets"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    def config(self, policies: Path | None = None) -> StoreConfig:
        """store.yaml, validated whole (every section), with the policy rules file merged."""
        return load_config(self.config_path, policies)

    def source_path(self, rel: str | None, what: str) -> Path:
        if not rel:
            raise StoretuneError(
                f"{self.config_path}: field 'sources.{what}' is not set",
                hint=f"set sources.{what} in store.yaml or pass the path on the command line",
            )
        p = Path(rel)
        return p if p.is_absolute() else (self.root / p)


def cache_dir() -> Path:
    """Where converted base models live (STORETUNE_CACHE, else the user cache dir)."""
    env = os.environ.get("STORETUNE_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or (Path.home() / ".cache")
    return Path(base) / "storetune"
