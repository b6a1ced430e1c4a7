"""`storetune monitor`'s ops numbers: automation and hand-over rates, time to draft,
decisions by topic, hosted vs local cost, and the HTML report that shows them."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from test_monitor import TODAY
from test_review import new_ticket

from storetune.errors import StoretuneError
from storetune.monitor import monitor
from storetune.ops import CostAssumptions, monthly_cost
from storetune.store.helpdesk import NOTE, HelpdeskStore
from storetune.store.review import ReviewQueue
from storetune.workspace import Workspace

AT = "2026-03-16T10:00:00+00:00"  # Monday of TODAY's week


@pytest.fixture
def ws(tmp_path) -> Workspace:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "store.yaml").write_text("brand: {name: Tiny Outfitters, voice: friendly}\n")
    return Workspace(root)


def route(q: ReviewQueue, topic: str, outcome: str, escalate: bool = False, at: str = AT) -> int:
    signals = {"router": {"label": topic, "probability": 0.9}}
    t = q.add(new_ticket(signals=signals, escalate=escalate), auto_send=outcome == "sent", at=at)
    if outcome == "approved":
        q.approve(t, "ana")
    elif outcome == "edited":
        q.edit(t, "ana", "Something else entirely.")
    elif outcome == "rejected":
        q.reject(t, "ana", "wrong")
    return t


def helpdesk_ticket(store: HelpdeskStore, ext: str, review_id: int, created: str, noted: str):
    store.claim("zendesk", ext, created, {}, at=datetime(2026, 3, 16, 10, tzinfo=UTC))
    store.link("zendesk", ext, review_id)
    store.enqueue("zendesk", ext, NOTE, "PUT", f"/api/v2/tickets/{ext}.json", {})
    with store._tx() as c:
        c.execute("UPDATE helpdesk_outbox SET sent_at = ? WHERE external_id = ?", (noted, ext))


def test_ops_numbers_and_report(ws):
    q = ReviewQueue(ws.db_path)
    ids = [route(q, "returns", o) for o in ("approved", "approved", "edited", "rejected")]
    ids += [route(q, "shipping", o) for o in ("approved", "sent")]
    ids += [route(q, "damaged", "waiting", escalate=True), route(q, "damaged", "edited", True)]
    store = HelpdeskStore(ws.db_path)
    for ext, seconds in (("1", 30), ("2", 90), ("3", 600)):
        noted = f"2026-03-16T10:{seconds // 60:02d}:{seconds % 60:02d}+00:00"
        helpdesk_ticket(store, ext, ids[int(ext)], "2026-03-16T10:00:00Z", noted)
    store.enqueue("zendesk", "4", NOTE, "PUT", "/x", {})  # still owed: no time to draft yet

    report = monitor(ws, weeks=2, today=TODAY)
    ops = report.ops
    assert ops.routed == 8 and ops.window_days == 10  # Monday of W11 .. Wednesday of W12
    # sent as drafted: 3 approved + 1 auto-sent, of 7 with an outcome (one still waits)
    assert (ops.sent_unedited, ops.with_outcome) == (4, 7)
    assert ops.automation_rate == pytest.approx(4 / 7)
    assert ops.handover_rate == pytest.approx(2 / 8)
    assert ops.median_draft_seconds == 90 and len(ops.draft_seconds) == 3
    by_topic = {t.topic: t for t in ops.topics}
    assert [t.topic for t in ops.topics] == ["returns", "damaged", "shipping"]
    assert by_topic["returns"].shares() == {"approved": 0.5, "edited": 0.25, "rejected": 0.25}
    assert by_topic["shipping"].shares()["approved"] == 1.0 and by_topic["shipping"].auto_sent == 1
    assert by_topic["damaged"].reviewed == 1

    saved = json.loads(report.json_path.read_text())["ops"]
    assert saved["median_ticket_to_draft_seconds"] == 90
    assert saved["cost"]["monthly_tickets"] == pytest.approx(8 / 10 * 30)
    page = report.html_path.read_text()
    assert "57.1%" in page and "25.0%" in page and "90 s" in page
    assert "returns" in page and "price_in" in page and "per million input tokens" in page
    assert page.count("data:image/png;base64,") == 2
    assert report.ops_plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cost_arithmetic_follows_the_assumptions():
    a = CostAssumptions(tokens_in=1000, tokens_out=200, price_in=3, price_out=15,
                        local_watts=100, local_hours=720, kwh_price=0.25,
                        hardware_cost=1200, hardware_months=24)  # fmt: skip
    cost = monthly_cost(10_000, a)
    # per ticket 1000*3/1e6 + 200*15/1e6 = 0.006; energy 72 kWh * 0.25 = 18; hardware 50
    assert cost.hosted_monthly == pytest.approx(60.0)
    assert (cost.local_energy_monthly, cost.local_hardware_monthly) == (18.0, 50.0)
    assert cost.local_monthly == pytest.approx(68.0)


def test_cost_options_parse_and_refuse_mistakes():
    a = CostAssumptions.parse(["price-in=1.5", "currency=EUR", "kwh_price=0.2"])
    assert (a.price_in, a.currency, a.kwh_price, a.tokens_out) == (1.5, "EUR", 0.2, 150)
    for bad in (["price=1"], ["price_in"], ["price_in=cheap"], ["tokens_in=-5"]):
        with pytest.raises(StoretuneError, match="--cost"):
            CostAssumptions.parse(bad)


def test_empty_workspace_reports_no_rates(ws):
    ReviewQueue(ws.db_path)
    report = monitor(ws, weeks=1, today=date(2026, 3, 18), plot=False)
    assert report.ops.automation_rate is None and report.ops.median_draft_seconds is None
    assert report.ops.cost.hosted_monthly == 0 and report.ops.cost.local_monthly > 0
    assert "none in the window" in report.html_path.read_text()


def test_monitor_command_prints_the_ops_numbers_and_takes_cost_options(ws):
    from typer.testing import CliRunner

    from storetune.cli import app

    q = ReviewQueue(ws.db_path)
    now = datetime.now(UTC).isoformat(timespec="seconds")  # the command reports up to today
    route(q, "returns", "approved", at=now)
    route(q, "returns", "edited", escalate=True, at=now)
    args = ["-w", str(ws.root), "monitor", "--weeks", "1"]
    result = CliRunner().invoke(app, [*args, "--cost", "currency=EUR", "--cost", "kwh_price=0"])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())  # rich wraps at the terminal's width
    assert "automation rate (sent as drafted): 50.0%; hand-over rate: 50.0%" in out
    assert "EUR" in out and "report: " in out
    saved = json.loads((ws.reports_dir / "monitor.json").read_text())["ops"]["cost"]
    assert saved["local_energy_monthly"] == 0 and saved["assumptions"]["currency"] == "EUR"
    bad = CliRunner().invoke(app, [*args, "--cost", "pricey=1"])
    assert bad.exit_code != 0 and "--cost" in str(bad.exception or bad.output)


def test_requests_a_helpdesk_keeps_refusing_are_shown_to_a_person(ws):
    """The worker retries refused notes forever (nothing dropped); a refusal waiting
    will not heal (bad credentials) must reach a person through the monitor."""
    from typer.testing import CliRunner

    from storetune.cli import app

    ReviewQueue(ws.db_path)
    store = HelpdeskStore(ws.db_path)
    store.enqueue("zendesk", "7", NOTE, "PUT", "/api/v2/tickets/7.json", {})
    store.enqueue("zendesk", "8", NOTE, "PUT", "/api/v2/tickets/8.json", {})
    assert monitor(ws, weeks=1, today=TODAY, plot=False).ops.notes[-1].startswith("time to")
    for item in store.due(1e12, ["zendesk"]):
        store.failed(item, "HTTP 401: Couldn't authenticate you", 0.0)
    store.failed(store.due(1e12, ["zendesk"])[0], "HTTP 401: Couldn't authenticate you", 0.0)
    notes = monitor(ws, weeks=1, today=TODAY, plot=False).ops.notes
    assert any("zendesk: 2 request(s) not delivered yet, up to 2 attempt(s)" in n for n in notes)
    assert any("HTTP 401" in n for n in notes)
    result = CliRunner().invoke(app, ["-w", str(ws.root), "monitor", "--weeks", "1"])
    assert result.exit_code == 0 and "not delivered yet" in " ".join(result.output.split())
