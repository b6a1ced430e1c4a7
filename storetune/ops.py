"""The numbers a support lead reports upward, for `storetune monitor`.

Over the monitor's window: the automation rate (replies sent exactly as drafted:
approved unchanged or auto-sent, of every draft with an outcome), the hand-over rate
(drafts escalated to a person, of every routed ticket), the median time from a
helpdesk ticket's creation to storetune's note on it, approved / edited / rejected
shares per topic (the router's reading of the ticket), and what the same volume
would cost a month on a hosted API next to running it locally. Every cost
assumption is a field of `CostAssumptions`, printed beside the result.
"""

from __future__ import annotations

import json
import sqlite3
import statistics
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, date, datetime

from storetune.errors import StoretuneError
from storetune.store.review import APPROVED, EDITED, REJECTED, SENT

UNROUTED = "(no router reading)"


@dataclass
class CostAssumptions:
    """What the cost comparison assumes; change any with `--cost NAME=VALUE`."""

    tokens_in: float = 900  # prompt tokens per ticket: system prompt, focused context, thread
    tokens_out: float = 150  # reply tokens per ticket
    price_in: float = 2.50  # hosted API, per million input tokens (a mid-size hosted model)
    price_out: float = 10.00  # hosted API, per million output tokens
    local_watts: float = 120  # average draw of the machine that serves storetune
    local_hours: float = 730  # hours a month it runs (always on)
    kwh_price: float = 0.30  # electricity, per kWh
    hardware_cost: float = 1500  # the serving machine, paid off over hardware_months
    hardware_months: float = 36
    currency: str = "USD"

    HELP = {
        "tokens_in": "prompt tokens per ticket",
        "tokens_out": "reply tokens per ticket",
        "price_in": "hosted price per million input tokens",
        "price_out": "hosted price per million output tokens",
        "local_watts": "average power draw of the local machine (W)",
        "local_hours": "hours a month the local machine runs",
        "kwh_price": "electricity price per kWh",
        "hardware_cost": "price of the local machine",
        "hardware_months": "months the machine is paid off over",
        "currency": "currency of every price",
    }

    @classmethod
    def parse(cls, items: list[str]) -> CostAssumptions:
        """From NAME=VALUE pairs (the CLI's --cost); unknown names and bad numbers fail."""
        names = {f.name: f for f in fields(cls)}
        values: dict[str, object] = {}
        for item in items:
            name, sep, raw = item.partition("=")
            name = name.strip().replace("-", "_")
            if not sep or name not in names:
                raise StoretuneError(
                    f"--cost {item!r}: expected NAME=VALUE with NAME one of {', '.join(names)}"
                )
            values[name] = raw.strip() if name == "currency" else _number(item, raw)
        return cls(**values)

    def items(self) -> list[tuple[str, str, str]]:
        """(name, value, meaning) rows for the report."""
        return [(k, str(v), self.HELP[k]) for k, v in asdict(self).items()]


def _number(item: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise StoretuneError(f"--cost {item!r}: {raw!r} is not a number") from None
    if value < 0 or value != value:
        raise StoretuneError(f"--cost {item!r}: must be a number of zero or more")
    return value


@dataclass
class Cost:
    monthly_tickets: float
    hosted_monthly: float
    local_monthly: float
    local_energy_monthly: float
    local_hardware_monthly: float
    assumptions: CostAssumptions

    def to_dict(self) -> dict:
        out = asdict(self)
        out["assumptions"] = asdict(self.assumptions)
        return out


def monthly_cost(tickets_per_month: float, a: CostAssumptions) -> Cost:
    per_ticket = (a.tokens_in * a.price_in + a.tokens_out * a.price_out) / 1e6
    energy = a.local_watts * a.local_hours / 1000 * a.kwh_price
    hardware = a.hardware_cost / a.hardware_months if a.hardware_months else a.hardware_cost
    return Cost(tickets_per_month, tickets_per_month * per_ticket, energy + hardware, energy,
                hardware, a)  # fmt: skip


@dataclass
class TopicRow:
    topic: str
    routed: int = 0
    approved: int = 0
    edited: int = 0
    rejected: int = 0
    auto_sent: int = 0

    @property
    def reviewed(self) -> int:
        return self.approved + self.edited + self.rejected

    def shares(self) -> dict[str, float | None]:
        n = self.reviewed
        return {
            k: (getattr(self, k) / n if n else None) for k in ("approved", "edited", "rejected")
        }

    def to_dict(self) -> dict:
        return asdict(self) | {"reviewed": self.reviewed, "shares": self.shares()}


@dataclass
class OpsReport:
    routed: int
    escalated: int
    sent_unedited: int  # approved unchanged + auto-sent
    with_outcome: int  # approved + edited + rejected + auto-sent
    draft_seconds: list[float]  # per helpdesk ticket: created there -> note accepted there
    topics: list[TopicRow]
    cost: Cost
    window_days: int
    since: str = ""  # first day of the window (ISO date)
    until: str = ""  # last day
    notes: list[str] = field(default_factory=list)

    @property
    def automation_rate(self) -> float | None:
        return self.sent_unedited / self.with_outcome if self.with_outcome else None

    @property
    def handover_rate(self) -> float | None:
        return self.escalated / self.routed if self.routed else None

    @property
    def median_draft_seconds(self) -> float | None:
        return statistics.median(self.draft_seconds) if self.draft_seconds else None

    def to_dict(self) -> dict:
        return {
            "routed": self.routed,
            "window_days": self.window_days,
            "since": self.since,
            "until": self.until,
            "automation_rate": self.automation_rate,
            "handover_rate": self.handover_rate,
            "median_ticket_to_draft_seconds": self.median_draft_seconds,
            "ticket_to_draft_n": len(self.draft_seconds),
            "topics": [t.to_dict() for t in self.topics],
            "cost": self.cost.to_dict(),
            "notes": self.notes,
        }


_OUTCOME = {APPROVED: "approved", EDITED: "edited", REJECTED: "rejected", SENT: "auto_sent"}


def ops_report(
    conn: sqlite3.Connection, start: date, today: date, assumptions: CostAssumptions
) -> OpsReport:
    """The ops numbers for tickets routed from `start` to `today` (inclusive)."""
    rows = conn.execute(
        "SELECT status, escalate, signals FROM review_tickets WHERE created >= ? AND created < ?",
        (start.isoformat(), _day_after(today)),
    ).fetchall()
    topics: dict[str, TopicRow] = {}
    escalated = 0
    for status, escalate, signals in rows:
        escalated += bool(escalate)
        row = topics.setdefault(_topic(signals), TopicRow(_topic(signals)))
        row.routed += 1
        if status in _OUTCOME:
            setattr(row, _OUTCOME[status], getattr(row, _OUTCOME[status]) + 1)
    ordered = sorted(topics.values(), key=lambda t: (-t.routed, t.topic))
    days = (today - start).days + 1
    report = OpsReport(
        routed=len(rows),
        escalated=escalated,
        sent_unedited=sum(t.approved + t.auto_sent for t in ordered),
        with_outcome=sum(t.reviewed + t.auto_sent for t in ordered),
        draft_seconds=_draft_seconds(conn, start, today),
        topics=ordered,
        cost=monthly_cost(len(rows) / days * 30, assumptions),
        window_days=days,
        since=start.isoformat(),
        until=today.isoformat(),
    )
    if not report.draft_seconds:
        report.notes.append(
            "time to draft is measured on helpdesk tickets (webhook to note); none in the window"
        )
    report.notes += _undelivered(conn)
    return report


def _undelivered(conn: sqlite3.Connection) -> list[str]:
    """Notes and replies a helpdesk has refused so far: the worker retries them with
    backoff (nothing is dropped), and a refusal that will not heal by waiting (bad
    credentials, a deleted ticket) needs a person to see it here."""
    if not _has_table(conn, "helpdesk_outbox"):
        return []
    rows = conn.execute(
        """SELECT helpdesk, COUNT(*), MAX(attempts) FROM helpdesk_outbox
           WHERE sent_at IS NULL AND attempts > 0 GROUP BY helpdesk ORDER BY helpdesk"""
    ).fetchall()
    notes = []
    for helpdesk, n, attempts in rows:
        (error,) = conn.execute(
            """SELECT last_error FROM helpdesk_outbox WHERE helpdesk = ? AND sent_at IS NULL
               AND attempts > 0 ORDER BY id DESC LIMIT 1""",
            (helpdesk,),
        ).fetchone()
        notes.append(
            f"{helpdesk}: {n} request(s) not delivered yet, up to {attempts} attempt(s); "
            f"last error: {error} (retried with backoff; check the credentials if it is 401/403)"
        )
    return notes


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    return bool(
        conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = ?", (name,)).fetchone()[0]
    )


def _topic(signals: str) -> str:
    try:
        data = json.loads(signals or "{}")
    except ValueError:
        return UNROUTED
    router = data.get("router") or {}
    return str(router.get("label") or data.get("topic") or UNROUTED)


def _draft_seconds(conn: sqlite3.Connection, start: date, today: date) -> list[float]:
    """Helpdesk tickets: from their creation in the helpdesk (or the webhook, when the
    helpdesk sent no time) to the moment the helpdesk accepted storetune's note."""
    if not _has_table(conn, "helpdesk_outbox"):
        return []
    rows = conn.execute(
        """SELECT COALESCE(h.ticket_created, h.received), o.sent_at FROM helpdesk_tickets h
           JOIN helpdesk_outbox o ON o.helpdesk = h.helpdesk AND o.external_id = h.external_id
           WHERE o.purpose = 'note' AND o.sent_at IS NOT NULL AND h.received >= ?
             AND h.received < ?""",
        (start.isoformat(), _day_after(today)),
    ).fetchall()
    out = []
    for created, sent in rows:
        a, b = _when(created), _when(sent)
        if a is not None and b is not None:
            out.append(max(0.0, (b - a).total_seconds()))
    return out


def _when(text: str | None) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # helpdesks send UTC


def _day_after(day: date) -> str:
    return date.fromordinal(day.toordinal() + 1).isoformat()


# ---- the plot -------------------------------------------------------------------------------


def plot_png(report: OpsReport) -> bytes:
    """Left: agent decisions per topic (stacked shares). Right: monthly cost, hosted vs local."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    topics = [t for t in report.topics if t.reviewed][:12]
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(10, 0.9 + 0.45 * max(3, len(topics))), dpi=110,
        gridspec_kw={"width_ratios": [3, 2]},
    )  # fmt: skip
    _topic_bars(left, topics)
    _cost_bars(right, report.cost)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _topic_bars(ax, topics: list[TopicRow]) -> None:
    colours = {"approved": "#1f7a4d", "edited": "#a36200", "rejected": "#b3261e"}
    names = [f"{t.topic} ({t.reviewed})" for t in topics]
    left = [0.0] * len(topics)
    for outcome, colour in colours.items():
        values = [100 * (t.shares()[outcome] or 0) for t in topics]
        ax.barh(names, values, left=left, color=colour, label=outcome)
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.set_xlim(0, 100)
    ax.invert_yaxis()
    ax.set_xlabel("% of reviewed drafts")
    # the legend sits between the title and the bars, clear of the axis label
    ax.set_title("Agent decisions by topic (reviewed drafts)", fontsize=10, pad=22)
    ax.legend(fontsize=8, ncol=3, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    if not topics:
        ax.text(50, 0, "no reviewed drafts yet", ha="center", va="center")


def _cost_bars(ax, cost: Cost) -> None:
    cur = cost.assumptions.currency
    labels = ["hosted API", "local"]
    ax.bar(labels[:1], [cost.hosted_monthly], color="#2357a5")
    ax.bar(labels[1:], [cost.local_energy_monthly], color="#1f7a4d", label="energy")
    ax.bar(labels[1:], [cost.local_hardware_monthly], bottom=[cost.local_energy_monthly],
           color="#8fbf9f", label="hardware")  # fmt: skip
    for x, value in enumerate((cost.hosted_monthly, cost.local_monthly)):
        shown = f"{value:,.0f}" if value >= 100 else f"{value:,.2f}"
        ax.text(x, value, f"{shown} {cur}", ha="center", va="bottom", fontsize=9)
    ax.set_ylabel(f"{cur} per month")
    ax.set_title(f"Cost of {cost.monthly_tickets:,.0f} tickets a month", fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    ax.margins(y=0.15)


# ---- the HTML report --------------------------------------------------------------------------


def render_html(
    monitor: dict, ops: OpsReport, weekly_png: bytes | None, ops_png: bytes | None
) -> str:
    """reports/monitor.html: the weekly table and plot, the ops numbers and their plot."""
    import base64

    from jinja2 import Environment

    env = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = lambda v: "–" if v is None else f"{100 * v:.1f}%"
    env.filters["b64"] = lambda data: base64.b64encode(data).decode("ascii")
    env.filters["money"] = lambda v: f"{v:,.0f}" if v >= 100 else f"{v:,.2f}"
    return env.from_string(_TEMPLATE).render(
        m=monitor,
        ops=ops,
        cost=ops.cost,
        minutes=_minutes(ops.median_draft_seconds),
        weekly_png=weekly_png,
        ops_png=ops_png,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )


def _minutes(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>storetune monitor</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
.cards { display: flex; gap: 1rem; flex-wrap: wrap; }
.card { border: 1px solid #ddd; border-radius: 8px; padding: .8rem 1.1rem; min-width: 11rem; }
.card b { display: block; font-size: 1.6rem; }
.card span { color: #555; font-size: .85rem; }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { border-bottom: 1px solid #e3e3e3; padding: .3rem .7rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
table.left td:last-child, table.left th:last-child { text-align: left; }
.warn { color: #8a4b00; } .muted { color: #666; font-size: .85rem; }
img { max-width: 100%; border: 1px solid #eee; }
</style></head><body>
<h1>storetune monitor</h1>
<p class="muted">{{ ops.since }} to {{ ops.until }} ({{ ops.window_days }} days):
{{ ops.routed }} tickets routed. Generated {{ generated }}.</p>
<div class="cards">
  <div class="card"><b>{{ ops.automation_rate | pct }}</b><span>automation rate: sent
    exactly as drafted ({{ ops.sent_unedited }} of {{ ops.with_outcome }})</span></div>
  <div class="card"><b>{{ ops.handover_rate | pct }}</b><span>hand-over rate: escalated to a
    person ({{ ops.escalated }} of {{ ops.routed }})</span></div>
  <div class="card"><b>{{ minutes }}</b><span>median time from ticket to draft in the
    helpdesk ({{ ops.draft_seconds | length }} tickets)</span></div>
  <div class="card"><b>{{ cost.hosted_monthly | money }} vs
    {{ cost.local_monthly | money }}</b><span>{{ cost.assumptions.currency }} a month:
    hosted API vs local, for {{ "{:,.0f}".format(cost.monthly_tickets) }} tickets</span></div>
</div>
{% for note in ops.notes %}<p class="muted">{{ note }}</p>{% endfor %}
{% for w in m.warnings %}<p class="warn">warning: {{ w }}</p>{% endfor %}

<h2>Agent decisions by topic</h2>
<table><tr><th>topic</th><th>routed</th><th>reviewed</th><th>approved</th><th>edited</th>
<th>rejected</th><th>auto-sent</th></tr>
{% for t in ops.topics %}{% set s = t.shares() %}
<tr><td>{{ t.topic }}</td><td>{{ t.routed }}</td><td>{{ t.reviewed }}</td>
<td>{{ s.approved | pct }}</td><td>{{ s.edited | pct }}</td><td>{{ s.rejected | pct }}</td>
<td>{{ t.auto_sent }}</td></tr>
{% endfor %}</table>
{% if ops_png %}
<img alt="Agent decisions by topic and monthly cost" src="data:image/png;base64,{{ ops_png | b64 }}">
{% endif %}

<h2>Monthly cost: hosted API vs local</h2>
<table><tr><th></th><th>{{ cost.assumptions.currency }} / month</th></tr>
<tr><td>hosted API ({{ "{:,.0f}".format(cost.monthly_tickets) }} tickets)</td>
<td>{{ "{:,.2f}".format(cost.hosted_monthly) }}</td></tr>
<tr><td>local: energy</td><td>{{ "{:,.2f}".format(cost.local_energy_monthly) }}</td></tr>
<tr><td>local: hardware, paid off</td><td>{{ "{:,.2f}".format(cost.local_hardware_monthly) }}</td></tr>
<tr><td><b>local total</b></td><td><b>{{ "{:,.2f}".format(cost.local_monthly) }}</b></td></tr>
</table>
<p class="muted">Volume: tickets routed in the window, scaled to 30 days. Assumptions (change
any with <code>storetune monitor --cost NAME=VALUE</code>):</p>
<table class="left"><tr><th>name</th><th>value</th><th>meaning</th></tr>
{% for name, value, meaning in cost.assumptions.items() %}
<tr><td><code>{{ name }}</code></td><td>{{ value }}</td><td>{{ meaning }}</td></tr>
{% endfor %}</table>

<h2>Review outcomes per ISO week</h2>
<table><tr><th>week</th><th>routed</th><th>reviewed</th><th>approved unchanged</th>
<th>edited</th><th>rejected</th><th>escalated</th><th>auto-sent</th></tr>
{% for w in m.weeks + [m.total] %}
<tr><td>{{ w.week }}</td><td>{{ w.routed }}</td><td>{{ w.reviewed }}</td>
<td>{{ w.approved_unchanged_share | pct }}</td><td>{{ w.edited_share | pct }}</td>
<td>{{ w.rejected_share | pct }}</td><td>{{ w.escalated_share | pct }}</td>
<td>{{ w.auto_sent }}</td></tr>
{% endfor %}</table>
{% if weekly_png %}
<img alt="Drafts by agent decision per week" src="data:image/png;base64,{{ weekly_png | b64 }}">
{% endif %}
</body></html>
"""
