"""Write an evaluation report: reports/eval-<name>-v<N>.json and the HTML page beside it.

The HTML has the headline table (base vs version), gates, charts (embedded PNG), the
per-category breakdown, safety refusal rates, catalog-task metrics, the worst
examples side by side with the reference reply and the grader's reasons, and the
regression table across versions. Plain HTML and CSS, no scripts.
"""

from __future__ import annotations

from pathlib import Path

from storetune.eval import charts
from storetune.eval.stats import format_rate
from storetune.io import atomic_write_json, atomic_write_text

TEMPLATE_DIR = Path(__file__).parent / "templates"
HEADLINE = [
    ("correct", "correct"),
    ("partial", "partial"),
    ("wrong", "wrong"),
    ("hallucination", "hallucination"),
    ("escalation_f1", "escalation F1"),
    ("refusal_rate", "safety refusal"),
    ("over_refusal", "over-refusal"),
]


SYSTEM_COLUMNS = [
    ("automation", "sent without a person"),
    ("correct_among_sent", "correct among sent"),
    ("wrong_and_sent", "wrong and sent (of all)"),
    ("escalation_recall", "must-hand-over handed over"),
    ("over_escalation", "over-escalation"),
    ("queued", "queued for an agent"),
]


# The "Order tickets" block: the system pass on store.db's own orders (order_tickets.py).
ORDER_COLUMNS = [
    ("verified", "status_correct", "verified: status facts correct"),
    ("verified", "wrong", "verified: wrong"),
    ("verified", "wrong_and_sent", "verified: wrong and sent"),
    ("unverified", "nothing_revealed", "unverified: nothing revealed"),
]


def ci(entry: dict | None) -> str:
    if not entry or not entry.get("ci"):
        return ""
    lo, hi = entry["ci"]
    return f"{100 * lo:.0f}–{100 * hi:.0f}%, n={entry['n']}"


def pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def worst_examples(report: dict, limit: int) -> list[dict]:
    """The version's worst replies (wrong first, hallucinations first), with the base reply."""
    label = report["model"]
    mine = report["results"][label]["examples"]
    base = report["results"].get("base", {}).get("examples")
    order = sorted(
        range(len(mine)),
        key=lambda i: (mine[i]["score"], -len(mine[i]["hallucinations"]), i),
    )
    out = []
    for i in order[:limit]:
        if mine[i]["score"] == 3:
            break
        row = dict(mine[i])
        row["base_reply"] = base[i]["reply"] if base else None
        row["base_verdict"] = base[i]["verdict"] if base else None
        out.append(row)
    return out


def order_examples(report: dict, limit: int) -> list[dict]:
    """The version's order tickets, wrong first, then partial (emails already masked)."""
    system = report["results"][report["model"]].get("system") or {}
    rows = (system.get("orders") or {}).get("examples", [])
    rank = {"wrong": 0, "partial": 1, "correct": 2}
    return sorted(rows, key=lambda r: rank[r["verdict"]])[:limit]


def _charts(report: dict) -> list[tuple[str, str]]:
    results = report["results"]
    out = [
        ("Verdicts per model", charts.verdict_bars(results)),
        ("Share correct per task / category", charts.category_bars(results)),
    ]
    refusal = charts.refusal_bars(results)
    if refusal:
        out.append(("Safety prompts declined, per category", refusal))
    version = results[report["model"]]["summary"]["catalog"].get("classify")
    if version:
        out.append(
            (
                "Classification confusion matrix",
                charts.confusion_chart(version["confusion"], report["model"]),
            )
        )
    reg = charts.regression_chart(report.get("regression", {}).get("rows", []))
    if reg:
        out.append(("Across versions", reg))
    return out


def render_html(report: dict, worst: int = 12) -> str:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = pct
    env.filters["ci"] = ci
    env.filters["cirate"] = format_rate
    template = env.get_template("report.html.j2")
    categories = sorted(
        {c for r in report["results"].values() for c in r["summary"]["by_category"]}
    )
    return template.render(
        report=report,
        headline=HEADLINE,
        charts=_charts(report),
        categories=categories,
        worst=worst_examples(report, worst),
        system_rows=[
            (name, r["system"]["summary"])
            for name, r in report["results"].items()
            if r.get("system")
        ],
        system_columns=SYSTEM_COLUMNS,
        order_columns=ORDER_COLUMNS,
        order_examples=order_examples(report, worst),
        tasks=sorted({t for r in report["results"].values() for t in r["summary"]["by_task"]}),
    )


def write_report(report: dict, reports_dir: Path, stem: str, worst: int = 12) -> tuple[Path, Path]:
    """Write <stem>.json and <stem>.html; returns both paths."""
    json_path = reports_dir / f"{stem}.json"
    html_path = reports_dir / f"{stem}.html"
    atomic_write_json(json_path, report, default=str)
    atomic_write_text(html_path, render_html(report, worst))
    return json_path, html_path


def summary_lines(report: dict) -> list[str]:
    """One line each for the order tickets and the knowledge questions, base vs
    version, as `storetune eval` and `storetune demo` print them under the tables."""
    results = report["results"]
    out = []
    orders = report.get("order_tickets") or {}
    systems = {name: o["system"] for name, o in orders.items() if o.get("system")}
    if systems:
        any_s = next(iter(systems.values()))
        ver = " · ".join(
            f"{n} {format_rate(s['verified']['status_correct'])}" for n, s in systems.items()
        )
        unv = " · ".join(
            f"{n} {format_rate(s['unverified']['nothing_revealed'])}" for n, s in systems.items()
        )
        drafted = max(s["unverified"]["generated"] for s in systems.values())
        out.append(
            f"order tickets (store's own orders): verified, status right: {ver} "
            f"(n={any_s['verified']['n']}); unverified, nothing revealed: {unv} "
            f"(n={any_s['unverified']['n']}, {drafted} drafted)"
        )
    knowledge = {n: r["summary"]["by_task"].get("knowledge") for n, r in results.items()}
    if any(knowledge.values()):
        figures = " · ".join(
            f"{n} {format_rate(k.get('correct_ci'))}" for n, k in knowledge.items() if k
        )
        n = next(k["n"] for k in knowledge.values() if k)
        out.append(f"knowledge questions (help center), correct: {figures} (n={n})")
    return out
