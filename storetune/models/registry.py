"""Versioned model registry: models/<name>/v<N>/, published atomically.

A version directory only ever appears complete: training writes into a hidden
staging directory and renames it into place. `current` names the promoted version.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from storetune.errors import StoretuneError

_VERSION = re.compile(r"^v(\d+)$")


@dataclass(frozen=True)
class ModelRef:
    name: str
    version: int | None  # None: the promoted (or latest) version

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        m = re.fullmatch(r"([A-Za-z0-9][\w.-]*)(?:@v?(\d+))?", text.strip())
        if not m:
            raise StoretuneError(f"model reference '{text}' is not NAME or NAME@vN")
        return cls(m.group(1), int(m.group(2)) if m.group(2) else None)


class Registry:
    def __init__(self, models_dir: Path) -> None:
        self.root = models_dir

    def versions(self, name: str) -> list[int]:
        d = self.root / name
        if not d.is_dir():
            return []
        found = (_VERSION.match(p.name) for p in d.iterdir() if p.is_dir())
        return sorted(int(m.group(1)) for m in found if m)

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and self.versions(p.name))

    def staging_dir(self, name: str) -> tuple[int, Path]:
        version = (max(self.versions(name)) if self.versions(name) else 0) + 1
        path = self.root / name / f".staging-v{version}"
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return version, path

    def publish(self, name: str, version: int, staging: Path) -> Path:
        final = self.root / name / f"v{version}"
        if final.exists():
            raise StoretuneError(f"{final} already exists; refusing to overwrite a version")
        os.replace(staging, final)
        return final

    def current(self, name: str) -> int | None:
        pointer = self.root / name / "current"
        if pointer.exists():
            return int(pointer.read_text().strip().lstrip("v"))
        versions = self.versions(name)
        return versions[-1] if versions else None

    def promote(self, name: str, version: int) -> None:
        if version not in self.versions(name):
            raise StoretuneError(f"model '{name}' has no version v{version}")
        tmp = self.root / name / ".current.tmp"
        tmp.write_text(f"v{version}\n")
        os.replace(tmp, self.root / name / "current")

    def resolve(self, ref: str | ModelRef) -> Path:
        ref = ModelRef.parse(ref) if isinstance(ref, str) else ref
        version = ref.version or self.current(ref.name)
        if version is None:
            raise StoretuneError(
                f"no trained model named '{ref.name}' in {self.root}",
                hint="run 'storetune train' first, or check 'storetune models list'",
            )
        path = self.root / ref.name / f"v{version}"
        if not path.is_dir():
            raise StoretuneError(f"model '{ref.name}' has no version v{version}")
        return path

    def info(self, path: Path) -> dict:
        return json.loads((path / "version.json").read_text(encoding="utf-8"))
