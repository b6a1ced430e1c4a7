"""Tickets cleaned in forked workers give what one process gives: the same tickets, the
same quarantine rows in the same order, the same counts."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from storetune.demo.store_gen import generate_demo_store
from storetune.ingest import parallel, zendesk
from tests.test_ingest_helpdesks import EXPORTS, _export, _write

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "helpdesk"


@pytest.fixture
def small_slices(monkeypatch):
    """Workers even for a small read, in many slices."""
    monkeypatch.setattr(parallel, "MIN_PARALLEL", 0)
    monkeypatch.setattr(parallel, "CHUNK", 7)


def _same(one, many) -> None:
    tickets, quarantined, stats = one
    assert tickets == many[0]
    assert quarantined == many[1]
    assert stats == many[2]


def test_slices_run_in_other_processes_and_come_back_in_order(small_slices):
    got = list(parallel.map_slices(lambda lo, hi: (lo, hi, os.getpid()), 40, workers=2, chunk=7))
    assert [size for size, _ in got] == [7, 7, 7, 7, 7, 5]
    assert [r[:2] for _, r in got] == [(0, 7), (7, 14), (14, 21), (21, 28), (28, 35), (35, 40)]
    assert os.getpid() not in {r[2] for _, r in got}
    # one worker, or too few tickets to repay the start: this process
    here = list(parallel.map_slices(lambda lo, hi: os.getpid(), 40, workers=1))
    assert {pid for _, pid in here} == {os.getpid()}


def test_the_sample_stores_zendesk_export_cleans_the_same_in_workers(tmp_path, small_slices):
    generate_demo_store(tmp_path, seed=3, n_products=20, n_tickets=150)
    d = tmp_path / "zendesk"
    # a page with a record of no kind and a comment whose ticket never comes
    _write(d, "zz-broken.json", {"tickets": [{"subject": "no id"}], "hello": 1})
    one = zendesk.read_tickets(d, protected={"cairn"}, workers=1)
    many = zendesk.read_tickets(d, protected={"cairn"}, workers=2)
    assert len(one[0]) > 100 and one[1]  # some tickets, something quarantined
    _same(one, many)


def test_the_shared_real_zendesk_export_cleans_the_same_in_workers(small_slices):
    if not SHARED.is_dir():
        pytest.fail(f"{SHARED}: the shared real export files are missing")
    one = zendesk.read_tickets(SHARED, workers=1)
    _same(one, zendesk.read_tickets(SHARED, workers=2))


@pytest.mark.parametrize("fmt", list(EXPORTS))
def test_every_helpdesk_reader_cleans_the_same_in_workers(tmp_path, fmt, small_slices):
    d = _export(tmp_path, fmt)
    _write(d, "page-008.json", {"hello": "world"})
    pages = [json.loads(p.read_text()) for p in sorted(d.iterdir())]
    for n in range(3):  # more tickets than one slice: the same pages, other ids
        for k, page in enumerate(pages):
            _write(d, f"copy-{n}-{k}.json", _renumber(page, 1000 * (n + 1)))
    one = EXPORTS[fmt][1](d, workers=1)
    assert len(one[0]) > parallel.CHUNK
    _same(one, EXPORTS[fmt][1](d, workers=2))


def _renumber(value, offset: int):
    """A page with every numeric id moved by offset (and string ids of digits too)."""
    if isinstance(value, dict):
        return {k: _shift(k, v, offset) for k, v in value.items()}
    if isinstance(value, list):
        return [_renumber(v, offset) for v in value]
    return value


def _shift(key: str, value, offset: int):
    if key == "id" or key.endswith("_id"):
        if isinstance(value, int):
            return value + offset
        if isinstance(value, str) and value.isdigit():
            return str(int(value) + offset)
    return _renumber(value, offset)


def test_a_worker_sends_back_what_it_counted_not_what_was_gathered():
    """A slice's result crosses a pipe: it must not carry every gathered record along
    (it did once, and made 100,000 tickets slower in workers than in one process)."""
    import pickle

    from storetune.ingest.helpdesk import Collector

    col = Collector()
    col.add_ticket("1", {"subject": "a-record-only-the-parent-needs"}, Path("p.json"))
    out = col.fresh()
    out.reject("p.json", "ticket 1", "ticket", "why", "{}")
    sent = pickle.dumps(out.delta())
    assert b"a-record-only-the-parent-needs" not in sent
    col.merge(pickle.loads(sent))
    assert [q.reason for q in col.quarantine] == ["why"]
    assert col.counts["ticket"]["quarantined"] == 1 and col.counts["ticket"]["read"] == 1
