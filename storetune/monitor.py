"""`storetune monitor`: how the drafts fare with agents, week by week.

For each ISO week (by when the ticket was routed): how many drafts were routed,
how many were escalated, and of those an agent reviewed, the share approved
unchanged, edited and rejected. Auto-sent drafts are counted apart: nobody
reviewed them, so they say nothing about quality. A week whose approved-unchanged
share falls below 85% is flagged: the model is drifting from what agents send.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from storetune.errors import StoretuneError
from storetune.io import atomic_write_bytes, atomic_write_text
from storetune.ops import CostAssumptions, OpsReport, ops_report, render_html
from storetune.ops import plot_png as ops_plot_png
from storetune.store import db
from storetune.store.review import APPROVED, EDITED, REJECTED, SENT, WAITING
from storetune.workspace import Workspace

APPROVED_TARGET = 0.85


@dataclass
class WeekRow:
    week: str  # ISO week, e.g. 2026-W47
    routed: int = 0
    escalated: int = 0
    approved: int = 0
    edited: int = 0
    rejected: int = 0
    auto_sent: int = 0
    waiting: int = 0

    @property
    def reviewed(self) -> int:
        return self.approved + self.edited + self.rejected

    def share(self, n: int, of: int) -> float | None:
        return n / of if of else None

    @property
    def approved_share(self) -> float | None:
        return self.share(self.approved, self.reviewed)

    @property
    def edited_share(self) -> float | None:
        return self.share(self.edited, self.reviewed)

    @property
    def rejected_share(self) -> float | None:
        return self.share(self.rejected, self.reviewed)

    @property
    def escalated_share(self) -> float | None:
        return self.share(self.escalated, self.routed)

    def to_dict(self) -> dict:
        return asdict(self) | {
            "reviewed": self.reviewed,
            "approved_unchanged_share": self.approved_share,
            "edited_share": self.edited_share,
            "rejected_share": self.rejected_share,
            "escalated_share": self.escalated_share,
        }


@dataclass
class MonitorReport:
    weeks: list[WeekRow]
    total: WeekRow
    warnings: list[str] = field(default_factory=list)
    plot: Path | None = None
    json_path: Path | None = None
    ops: OpsReport | None = None  # automation, hand-over, time to draft, topics, cost
    ops_plot: Path | None = None
    html_path: Path | None = None

    def to_dict(self) -> dict:
        return {
            "weeks": [w.to_dict() for w in self.weeks],
            "total": self.total.to_dict(),
            "warnings": self.warnings,
            "target_approved_unchanged": APPROVED_TARGET,
            "ops": self.ops.to_dict() if self.ops else None,
        }


def iso_week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def week_rows(conn: sqlite3.Connection, weeks: int, today: date) -> list[WeekRow]:
    """The last `weeks` ISO weeks up to today's, oldest first (empty weeks included)."""
    monday = today - timedelta(days=today.weekday())
    labels = [iso_week(monday - timedelta(weeks=i)) for i in reversed(range(weeks))]
    rows = {label: WeekRow(label) for label in labels}
    start = (monday - timedelta(weeks=weeks - 1)).isoformat()
    for created, status, escalate in conn.execute(
        "SELECT created, status, escalate FROM review_tickets WHERE created >= ?", (start,)
    ):
        row = rows.get(iso_week(datetime.fromisoformat(created).date()))
        if row is None:
            continue  # routed after today (a clock change); not in the window
        row.routed += 1
        row.escalated += bool(escalate)
        attr = {APPROVED: "approved", EDITED: "edited", REJECTED: "rejected"}.get(status)
        attr = attr or {SENT: "auto_sent", WAITING: "waiting"}[status]
        setattr(row, attr, getattr(row, attr) + 1)
    return list(rows.values())


def _total(rows: list[WeekRow]) -> WeekRow:
    total = WeekRow("all")
    for r in rows:
        for name in (
            "routed",
            "escalated",
            "approved",
            "edited",
            "rejected",
            "auto_sent",
            "waiting",
        ):
            setattr(total, name, getattr(total, name) + getattr(r, name))
    return total


def _warnings(rows: list[WeekRow]) -> list[str]:
    out = []
    for r in rows:
        share = r.approved_share
        if share is not None and share < APPROVED_TARGET:
            out.append(
                f"{r.week}: only {share:.0%} of {r.reviewed} reviewed drafts were approved "
                f"unchanged (target {APPROVED_TARGET:.0%}); read the edits and rejections, "
                "then export them ('storetune feedback export') and retrain"
            )
    return out


def monitor(
    ws: Workspace,
    weeks: int = 8,
    plot: bool = True,
    today: date | None = None,
    costs: CostAssumptions | None = None,
) -> MonitorReport:
    """Per-week review outcomes and the ops numbers (storetune.ops); writes
    reports/monitor.json, monitor.html and, with `plot`, monitor.png and monitor_ops.png."""
    if weeks < 1:
        raise StoretuneError("--weeks must be at least 1")
    if not ws.db_path.exists():
        raise StoretuneError(f"{ws.db_path}: no store database", hint="run 'storetune ingest'")
    today = today or datetime.now(UTC).date()
    start = today - timedelta(days=today.weekday(), weeks=weeks - 1)
    conn = db.connect(ws.db_path)
    try:
        rows = week_rows(conn, weeks, today)
        ops = ops_report(conn, start, today, costs or CostAssumptions())
    finally:
        conn.close()
    report = MonitorReport(rows, _total(rows), _warnings(rows), ops=ops)
    ws.reports_dir.mkdir(parents=True, exist_ok=True)
    report.json_path = ws.reports_dir / "monitor.json"
    atomic_write_bytes(report.json_path, json.dumps(report.to_dict(), indent=2).encode())
    weekly = ops_png = None
    if plot:
        report.plot = ws.reports_dir / "monitor.png"
        weekly = plot_png(rows)
        atomic_write_bytes(report.plot, weekly)
        report.ops_plot = ws.reports_dir / "monitor_ops.png"
        ops_png = ops_plot_png(ops)
        atomic_write_bytes(report.ops_plot, ops_png)
    report.html_path = ws.reports_dir / "monitor.html"
    atomic_write_text(report.html_path, render_html(report.to_dict(), ops, weekly, ops_png))
    return report


def plot_png(rows: list[WeekRow]) -> bytes:
    """Shares per week as lines, with the 85% approved-unchanged target."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = list(range(len(rows)))
    fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(rows) + 2), 3.6), dpi=110)
    series = [
        ("approved unchanged", "approved_share", "#1f7a4d"),
        ("edited", "edited_share", "#a36200"),
        ("rejected", "rejected_share", "#b3261e"),
        ("escalated (of routed)", "escalated_share", "#2357a5"),
    ]
    for label, attr, colour in series:
        values = [getattr(r, attr) for r in rows]
        ax.plot(x, [v * 100 if v is not None else float("nan") for v in values], "o-",
                label=label, color=colour)  # fmt: skip
    ax.axhline(APPROVED_TARGET * 100, ls="--", lw=1, color="#1f7a4d", alpha=0.6)
    ax.set_xticks(x, [r.week for r in rows], rotation=45, ha="right", fontsize=8)
    ax.set_ylim(0, 100)
    ax.set_ylabel("% of drafts")
    ax.set_title("Drafts by agent decision, per ISO week")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1, 0.5))
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
