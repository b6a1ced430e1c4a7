"""Versioned model registry: models/<name>/v<N>/, published atomically.

A version directory only ever appears complete: training writes into a hidden
staging directory and renames it into place, and a published version is never
rewritten (its eval summary is read from reports/ when shown). Which version is
*current* lives in models/<name>/registry.json, replaced atomically:
``{"current": N | null, "history": [...]}``; null means "the latest version", and
`history` lists the versions that have been current, oldest first, so `rollback`
can go back to the one before.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from storetune.errors import StoretuneError
from storetune.io import atomic_write_json

_VERSION = re.compile(r"^v(\d+)$")
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")


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

    def __str__(self) -> str:
        return self.name if self.version is None else f"{self.name}@v{self.version}"


def weights_hash(model_dir: Path) -> str:
    """sha256 over the model's weight files (name + bytes, sorted by name)."""
    h = hashlib.sha256()
    for f in sorted(p for p in model_dir.iterdir() if p.suffix in _WEIGHT_SUFFIXES):
        h.update(f.name.encode())
        with f.open("rb") as fh:
            while chunk := fh.read(1 << 22):
                h.update(chunk)
    return h.hexdigest()


class Registry:
    def __init__(self, models_dir: Path) -> None:
        self.root = models_dir

    # -- versions -----------------------------------------------------------------

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
        """A fresh hidden directory to write the next version into; leftovers are cleared."""
        version = (max(self.versions(name)) if self.versions(name) else 0) + 1
        d = self.root / name
        if d.is_dir():  # a killed run's staging is garbage, never a version
            for old in d.glob(".staging-v*"):
                shutil.rmtree(old, ignore_errors=True)
        path = d / f".staging-v{version}"
        path.mkdir(parents=True)
        return version, path

    def publish(self, name: str, version: int, staging: Path) -> Path:
        """Rename a complete staging directory into place (atomic on one filesystem)."""
        final = self.root / name / f"v{version}"
        if final.exists():
            raise StoretuneError(
                f"{final} already exists; refusing to overwrite a version",
                hint="another run published this version first; train again for the next one",
            )
        if not (staging / "version.json").exists():
            raise StoretuneError(f"{staging}: incomplete (no version.json); not publishing it")
        os.replace(staging, final)
        state = self._state(name)
        if state["current"] is None:  # following the latest: the new version is current
            self._write_state(name, None, [*state["history"], version])
        return final

    # -- current / promote / rollback ----------------------------------------------

    def _state(self, name: str) -> dict:
        path = self.root / name / "registry.json"
        if path.exists():
            try:
                state = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as e:
                raise StoretuneError(
                    f"{path}: not valid JSON ({e.msg})",
                    hint="fix it, or delete it to make the latest version current",
                ) from None
            return {"current": state.get("current"), "history": list(state.get("history", []))}
        legacy = self.root / name / "current"  # pointer file of earlier releases
        if legacy.exists():
            v = int(legacy.read_text().strip().lstrip("v"))
            return {"current": v, "history": [v]}
        return {"current": None, "history": []}

    def _write_state(self, name: str, current: int | None, history: list[int]) -> None:
        atomic_write_json(
            self.root / name / "registry.json", {"current": current, "history": history}
        )

    def current(self, name: str) -> int | None:
        pinned = self._state(name)["current"]
        if pinned is not None:
            return pinned
        versions = self.versions(name)
        return versions[-1] if versions else None

    def history(self, name: str) -> list[int]:
        return self._state(name)["history"]

    def promote(self, name: str, version: int) -> None:
        if version not in self.versions(name):
            raise StoretuneError(
                f"model '{name}' has no version v{version}",
                hint=f"versions: {self._listing(name)}",
            )
        state = self._state(name)
        history = state["history"]
        now = self.current(name)
        if not history and now is not None and now != version:
            history = [now]  # remember what was current before the first promotion
        if not history or history[-1] != version:
            history = [*history, version]
        self._write_state(name, version, history)

    def rollback(self, name: str) -> int:
        """Make the previously current version current again; returns it."""
        if not self.versions(name):
            raise StoretuneError(f"no trained model named '{name}' in {self.root}")
        now = self.current(name)
        existing = set(self.versions(name))
        history = [v for v in self._state(name)["history"] if v in existing]
        while history and history[-1] == now:
            history.pop()
        if not history:
            raise StoretuneError(
                f"model '{name}' has no earlier current version to roll back to (current: v{now})",
                hint=f"pick one with 'storetune models promote {name}@vN' ({self._listing(name)})",
            )
        self._write_state(name, history[-1], history)
        return history[-1]

    def _listing(self, name: str) -> str:
        return ", ".join(f"v{v}" for v in self.versions(name)) or "none"

    # -- lookup ---------------------------------------------------------------------

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
            raise StoretuneError(
                f"model '{ref.name}' has no version v{version}",
                hint=f"versions: {self._listing(ref.name)}",
            )
        return path

    def info(self, path: Path) -> dict:
        file = path / "version.json"
        try:
            return json.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise StoretuneError(f"{file}: missing; this is not a published version") from None
        except json.JSONDecodeError as e:
            raise StoretuneError(f"{file}: not valid JSON ({e.msg})") from None

    # -- show / diff ----------------------------------------------------------------

    def show(self, ref: str | ModelRef, reports_dir: Path | None = None) -> dict:
        """Everything about one version: config, data, metrics, eval summary, files."""
        path = self.resolve(ref)
        info = self.info(path)
        name, version = path.parent.name, int(path.name[1:])
        config_file = path / "train_config.json"
        return {
            "ref": f"{name}@v{version}",
            "path": str(path),
            "current": self.current(name) == version,
            "created": info.get("created"),
            "tasks": info.get("tasks"),
            "base_model": {
                "name": info.get("base_model"),
                "path": info.get("base_model_path"),
                "fingerprint": info.get("base_model_fingerprint"),
                "weights_sha256": info.get("base_model_weights_sha256"),
            },
            "config": json.loads(config_file.read_text()) if config_file.exists() else {},
            "data": {
                "id": info.get("dataset_id"),
                "fingerprint": info.get("dataset_fingerprint"),
                **(info.get("dataset") or {}),
            },
            "metrics": info.get("train", {}),
            "warnings": info.get("warnings", []),
            "eval": eval_summary(reports_dir, name, version) if reports_dir else info.get("eval"),
            "files": {
                str(f.relative_to(path)): f.stat().st_size
                for f in sorted(path.rglob("*"))
                if f.is_file()
            },
        }

    def diff(self, a: str | ModelRef, b: str | ModelRef, reports_dir: Path | None = None) -> dict:
        """Config, data and metric differences between two versions (only what differs)."""
        sa, sb = self.show(a, reports_dir), self.show(b, reports_dir)
        data_keys = ("id", "fingerprint", "train_examples", "val_examples")
        return {
            "a": sa["ref"],
            "b": sb["ref"],
            "config": _changed(sa["config"], sb["config"]),
            "data": {
                **_changed(
                    {k: sa["data"].get(k) for k in data_keys},
                    {k: sb["data"].get(k) for k in data_keys},
                ),
                **_prefixed(
                    "train.", _changed(sa["data"].get("train", {}), sb["data"].get("train", {}))
                ),
            },
            "base_model": _changed(sa["base_model"], sb["base_model"]),
            "tasks": [sa["tasks"], sb["tasks"]] if sa["tasks"] != sb["tasks"] else None,
            "metrics": _changed(_numbers(sa["metrics"]), _numbers(sb["metrics"])),
            "eval": _changed(_flat_numbers(sa["eval"]), _flat_numbers(sb["eval"])),
        }


def eval_summary(reports_dir: Path, name: str, version: int) -> dict | None:
    """The newest eval report for name@vN in reports/ (eval-*.json), summarised."""
    label = f"{name}-v{version}"
    if not reports_dir or not reports_dir.is_dir():
        return None
    found = []
    for f in reports_dir.glob("eval-*.json"):
        try:
            report = json.loads(f.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, OSError):
            continue  # a half-written or foreign file is not an eval of this version
        if isinstance(report, dict) and report.get("model") == label:
            found.append((f.stat().st_mtime, f, report))
    if not found:
        return None
    _, path, report = max(found, key=lambda t: (t[0], t[1].name))
    results = report.get("results") or {}
    summary = {k: r.get("summary") for k, r in results.items() if isinstance(r, dict)}
    return {"report": str(path), "summary": summary or report.get("summary")}


def _changed(a: dict, b: dict) -> dict:
    keys = sorted(set(a) | set(b))
    out = {}
    for k in keys:
        va, vb = a.get(k), b.get(k)
        if va != vb:
            entry = {"a": va, "b": vb}
            if _is_num(va) and _is_num(vb):
                entry["delta"] = round(vb - va, 6)
            out[k] = entry
    return out


def _prefixed(prefix: str, d: dict) -> dict:
    return {prefix + k: v for k, v in d.items()}


def _is_num(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _numbers(d: dict) -> dict:
    return {k: v for k, v in (d or {}).items() if _is_num(v) or isinstance(v, bool) or v is None}


def _flat_numbers(e: dict | None) -> dict:
    """eval summary {'summary': {'base': {...}, 'x-v1': {...}}} -> {'x-v1.correct': 0.3, ...}

    The model's own label differs between versions, so it is renamed 'model'.
    """
    if not e or not isinstance(e.get("summary"), dict):
        return {}
    if all(_is_num(v) for v in e["summary"].values()):  # one flat summary
        return {f"model.{k}": v for k, v in e["summary"].items()}
    out = {}
    for run, s in e["summary"].items():
        if not isinstance(s, dict):
            continue
        key = "base" if run == "base" else "model"
        out.update({f"{key}.{k}": v for k, v in s.items() if _is_num(v)})
    return out
