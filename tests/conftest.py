from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tiny import build_tiny_model  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path, monkeypatch):
    # Tests never touch the user's real workspace or model cache.
    monkeypatch.setenv("STORETUNE_WORKSPACE", str(tmp_path / "workspace"))
    if "STORETUNE_CACHE" not in __import__("os").environ:
        monkeypatch.setenv("STORETUNE_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return SHARED / "data"
