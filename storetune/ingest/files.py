"""Finding and decoding export files: what every reader shares before parsing.

Only regular files are opened (a FIFO named *.json would block a read forever); a
symlink loop, a broken link or a file that is not UTF-8/UTF-16 text is named as such
in one line. Files of a directory that are not read are returned with the reason,
so the ingest summary can count them.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from storetune.errors import StoretuneError

_BOMS = ((b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))


def problem(path: Path) -> str | None:
    """Why path can't be read as an export file, or None for a regular file."""
    try:
        mode = path.stat().st_mode
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "symlink loop"
        if path.is_symlink():
            return f"broken symlink (to {os.readlink(path)})"
        return "not found" if e.errno == errno.ENOENT else f"can't read ({e.strerror})"
    if stat.S_ISDIR(mode):
        return "is a directory"
    if not stat.S_ISREG(mode):
        return f"not a regular file ({_kind(mode)})"
    return None


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "special file"


def check_file(path: Path, expected: str = "export") -> None:
    """StoretuneError naming the problem unless path is a regular file."""
    why = problem(path)
    if why == "is a directory":
        raise StoretuneError(f"{path}: is a directory, expected a {expected} file")
    if why:
        raise StoretuneError(f"{path}: {why}")


def check_path(path: Path, hint: str | None = None) -> None:
    """A source given by the user: a directory or a regular file."""
    why = problem(path)
    if why and why != "is a directory":
        raise StoretuneError(f"{path}: {why}", hint=hint if why == "not found" else None)


def scan(path: Path, suffixes: Iterable[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """(files to read, [(file, why skipped)]) of a directory, sorted; a file is its own list."""
    check_path(path)
    if path.is_file():
        return [path], []
    wanted = {s.lower() for s in suffixes}
    files, skipped = [], []
    for p in sorted(path.rglob("*")):
        if p.is_dir() and not p.is_symlink():
            continue
        why = problem(p)
        if why is None and p.suffix.lower() not in wanted:
            why = f"not {' or '.join(sorted(wanted))}"
        if why is None:
            files.append(p)
        elif why != "is a directory":
            skipped.append((str(p), why))
    return files, skipped


def utf16(data: bytes) -> str | None:
    """The UTF-16 codec of data (from its BOM, or NUL bytes in every other place)."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return codec
    head = data[:4096]
    if len(head) >= 4 and len(head) % 2 == 0:
        if head[1::2].count(0) == len(head) // 2 and 0 not in head[::2]:
            return "utf-16-le"
        if head[::2].count(0) == len(head) // 2 and 0 not in head[1::2]:
            return "utf-16-be"
    return None


def decode_utf16(path: Path, data: bytes, codec: str) -> str:
    bom = any(data.startswith(b) for b, _ in _BOMS)
    try:
        return data[2 if bom else 0 :].decode(codec)
    except UnicodeDecodeError as e:
        raise StoretuneError(
            f"{path}: UTF-16 text with an invalid byte sequence at offset {e.start}",
            hint="re-save the file as UTF-8",
        ) from None
