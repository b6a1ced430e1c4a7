"""Atomic writes and JSONL reading, shared by every stage."""

from __future__ import annotations

import json
import os

import pytest

from storetune import io
from storetune.errors import StoretuneError


def test_atomic_write_replaces_whole_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "sub" / "report.json"
    io.atomic_write_json(path, {"a": 1})
    io.atomic_write_json(path, {"b": [1, 2]})
    assert json.loads(path.read_text()) == {"b": [1, 2]}
    io.atomic_write_text(tmp_path / "LATEST", "ds-1\n")
    io.atomic_write_bytes(tmp_path / "plot.png", b"\x89PNG")
    assert (tmp_path / "LATEST").read_text() == "ds-1\n"
    assert (tmp_path / "plot.png").read_bytes() == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.rglob(".*")) == []


def test_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "version.json"
    io.atomic_write_json(path, {"version": 1})

    def killed(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        io.atomic_write_json(path, {"version": 2})
    assert json.loads(path.read_text()) == {"version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["version.json"]


def test_atomic_write_keeps_the_permissions_a_plain_write_gives(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    io.atomic_write_text(tmp_path / "new.txt", "x")
    assert (tmp_path / "new.txt").stat().st_mode & 0o777 == plain.stat().st_mode & 0o777
    shared = tmp_path / "store.yaml"
    shared.write_text("a: 1\n")
    shared.chmod(0o664)
    io.atomic_write_text(shared, "a: 2\n")
    assert shared.stat().st_mode & 0o777 == 0o664 and shared.read_text() == "a: 2\n"


def test_read_jsonl_skips_blank_lines_and_names_a_bad_one(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2}\n{"a": \n', encoding="utf-8")
    with pytest.raises(StoretuneError, match="train.jsonl line 4: not valid JSON"):
        io.read_jsonl(path)
    path.write_text('{"a": 1}\n\n{"a": 2}\n', encoding="utf-8")
    assert io.read_jsonl(path) == [{"a": 1}, {"a": 2}]
