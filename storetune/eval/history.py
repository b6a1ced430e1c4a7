"""The regression table: every evaluated version of one adapter, side by side by task,
read from the earlier reports' JSON so no version is re-run."""

from __future__ import annotations

import json
import re
from pathlib import Path

# A task's correct rate falling by more than this from the previous version is flagged.
REGRESSION_DROP = 0.02
_VERSION = re.compile(r"^eval-(?P<name>.+)-v(?P<v>\d+)\.json$")


def earlier_reports(reports_dir: Path, name: str) -> dict[int, dict]:
    """version -> report for every eval-<name>-v<N>.json in the reports directory."""
    out = {}
    for path in reports_dir.glob(f"eval-{name}-v*.json"):
        m = _VERSION.match(path.name)
        if not m or m.group("name") != name:
            continue
        try:
            out[int(m.group("v"))] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue  # a report from a killed run: skip it rather than fail the new one
    return out


def _version_summary(report: dict) -> dict | None:
    results = report.get("results", {})
    label = report.get("model")
    r = results.get(label) or next((v for k, v in results.items() if k != "base"), None)
    return r.get("summary") if r else None


def regression_table(reports_dir: Path, name: str, current: dict, version: int) -> dict:
    """Rows per version (oldest first) with headline figures and each task's correct rate."""
    reports = earlier_reports(reports_dir, name)
    reports[version] = current
    rows = []
    for v in sorted(reports):
        s = _version_summary(reports[v])
        if not s:
            continue
        rows.append(
            {
                "version": f"v{v}",
                "dataset": reports[v].get("dataset_id"),
                "n": s.get("n"),
                "correct": s.get("correct"),
                "wrong": s.get("wrong"),
                "hallucination": s.get("hallucination"),
                "escalation_f1": s.get("escalation_f1"),
                "tasks": {t: r.get("correct") for t, r in (s.get("by_task") or {}).items()},
            }
        )
    tasks = sorted({t for r in rows for t in r["tasks"]})
    for prev, row in zip(rows, rows[1:], strict=False):
        row["regressed"] = [
            t
            for t in tasks
            if prev["tasks"].get(t) is not None
            and row["tasks"].get(t) is not None
            and row["tasks"][t] < prev["tasks"][t] - REGRESSION_DROP
        ]
    if rows:
        rows[0]["regressed"] = []
    return {"tasks": tasks, "rows": rows}
