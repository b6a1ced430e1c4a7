"""`storetune monitor`: per-week shares of agent decisions, the plot, the 85% warning."""

from __future__ import annotations

import json
from datetime import date

import pytest
from test_review import new_ticket
from typer.testing import CliRunner

from storetune.cli import app
from storetune.monitor import iso_week, monitor
from storetune.store.review import ReviewQueue
from storetune.workspace import Workspace

TODAY = date(2026, 3, 18)  # a Wednesday in ISO week 2026-W12


@pytest.fixture
def ws(tmp_path) -> Workspace:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "store.yaml").write_text("brand: {name: Tiny Outfitters, voice: friendly}\n")
    return Workspace(root)


def route(q: ReviewQueue, day: str, outcome: str, escalate: bool = False) -> None:
    t = q.add(
        new_ticket(escalate=escalate), auto_send=outcome == "sent", at=f"{day}T10:00:00+00:00"
    )
    if outcome == "approved":
        q.approve(t, "ana")
    elif outcome == "edited":
        q.edit(t, "ana", "A different reply.")
    elif outcome == "rejected":
        q.reject(t, "ana", "wrong")


def test_weekly_shares_and_warning(ws):
    q = ReviewQueue(ws.db_path)
    for _ in range(9):
        route(q, "2026-03-10", "approved")  # W11
    route(q, "2026-03-12", "edited", escalate=True)
    for outcome in ["approved"] * 4 + ["edited"] * 2 + ["rejected", "waiting", "sent"]:
        route(q, "2026-03-16", outcome, escalate=outcome in ("rejected", "waiting"))  # W12
    route(q, "2026-02-01", "approved")  # outside the window

    report = monitor(ws, weeks=3, today=TODAY)
    assert [w.week for w in report.weeks] == ["2026-W10", "2026-W11", "2026-W12"]
    w10, w11, w12 = report.weeks
    assert w10.routed == 0 and w10.approved_share is None
    assert (w11.routed, w11.reviewed, w11.approved_share, w11.edited_share) == (10, 10, 0.9, 0.1)
    assert w11.escalated_share == 0.1
    assert (w12.routed, w12.reviewed, w12.auto_sent, w12.waiting) == (9, 7, 1, 1)
    assert w12.approved_share == pytest.approx(4 / 7)
    assert w12.rejected_share == pytest.approx(1 / 7)
    assert w12.escalated_share == pytest.approx(2 / 9)
    assert report.total.routed == 19
    assert len(report.warnings) == 1 and report.warnings[0].startswith("2026-W12: only 57%")

    assert (
        report.plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and report.plot.stat().st_size > 5000
    )
    saved = json.loads(report.json_path.read_text())
    assert saved["weeks"][1]["approved_unchanged_share"] == 0.9


def test_iso_week_crosses_the_year():
    assert iso_week(date(2027, 1, 1)) == "2026-W53"
    assert iso_week(date(2025, 12, 29)) == "2026-W01"


def test_monitor_command(ws):
    q = ReviewQueue(ws.db_path)
    for outcome in ("approved", "edited", "rejected"):
        t = q.add(new_ticket())
        getattr(q, {"approved": "approve", "edited": "edit", "rejected": "reject"}[outcome])(
            *((t, "ana") if outcome == "approved" else (t, "ana", "other text"))
        )
    result = CliRunner().invoke(app, ["-w", str(ws.root), "monitor", "--weeks", "2"])
    assert result.exit_code == 0, result.output
    assert "33.3%" in result.output and "warning:" in result.output
    assert (ws.reports_dir / "monitor.png").exists()
    bad = CliRunner().invoke(app, ["-w", str(ws.root), "monitor", "--weeks", "0"])
    assert bad.exit_code != 0 and "at least 1" in str(bad.exception)
