"""Files every stage writes and reads: atomic writes and chat JSONL.

A write goes to a temporary file in the target's own directory (same filesystem,
so the rename is atomic), is flushed to disk, and is renamed over the target: a
killed run leaves either the old file or the new one, never half of either. The file
keeps the permissions a plain write would give it (the old file's, else the umask's).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

from storetune.errors import StoretuneError


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace `path` with `data` atomically (its directory is created if missing)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _sync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, data: Any, *, indent: int | None = 2, default=None) -> None:
    atomic_write_text(path, json.dumps(data, indent=indent, default=default))


def _mode_for(path: Path) -> int:
    # mkstemp makes the file 0600; store.yaml or a report must not turn private.
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        return 0o666 & ~_umask()


@cache
def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


def _sync_dir(directory: Path) -> None:
    # The rename itself is durable only once the directory entry is on disk.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # platforms without directory handles (Windows)
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_jsonl(path: Path) -> list[dict]:
    """Every non-blank line of a JSONL file; a bad line is an error naming it."""
    rows = []
    with Path(path).open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise StoretuneError(f"{path} line {n}: not valid JSON ({e.msg})") from None
    return rows


def select_rows(data_dir: Path, split: str, tasks: list[str]) -> tuple[list[dict], dict[str, int]]:
    """Rows of one dataset split whose meta.jsonl task is in `tasks` (['all']: every row).

    Returns the rows and how many of each task were kept.
    """
    rows = read_jsonl(data_dir / f"{split}.jsonl")
    meta_path = data_dir / "meta.jsonl"
    if not meta_path.exists():
        if tasks != ["all"]:
            raise StoretuneError(
                f"{meta_path}: missing, so examples cannot be selected by task",
                hint="rebuild the dataset with 'storetune build', or train with --tasks all",
            )
        return rows, {"(untagged)": len(rows)}
    task_of = {m["index"]: m["task"] for m in read_jsonl(meta_path) if m["split"] == split}
    missing = [i for i in range(len(rows)) if i not in task_of]
    if missing:
        raise StoretuneError(
            f"{meta_path}: no entry for {split}.jsonl line {missing[0] + 1}",
            hint="the dataset is incomplete; rebuild it with 'storetune build'",
        )
    keep = [i for i in range(len(rows)) if tasks == ["all"] or task_of[i] in tasks]
    return [rows[i] for i in keep], dict(sorted(Counter(task_of[i] for i in keep).items()))


def too_deep(value: Any, limit: int) -> bool:
    """True when parsed JSON's lists/objects nest deeper than `limit` (checked level by
    level without recursion, so a hostile file cannot raise RecursionError in the check
    itself; only containers are queued, so the leaves of a 100 MB export cost a type test)."""
    level = [value] if isinstance(value, dict | list) else []
    depth = 1
    while level:
        if depth > limit:
            return True
        level = [
            x
            for v in level
            for x in (v.values() if isinstance(v, dict) else v)
            if isinstance(x, dict | list)
        ]
        depth += 1
    return False
