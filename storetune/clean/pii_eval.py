"""Recall and precision of the PII Scrubber on a labeled set.

    python -m storetune.clean.pii_eval [path/to/labeled.jsonl]

Each line of the labeled file: {"text", "names" (helpdesk user names of the
conversation), optional "protected" (catalog words), "spans" [{"start", "end",
"type"}], optional "keep" [substrings that must survive]}. One Scrubber per line,
as ingest uses one per conversation.

Scores:
- recall: share of labeled spans whose every character was replaced by a placeholder
  of the span's type (recall_any: by a placeholder of any type);
- precision: share of placeholders whose replaced text overlaps a labeled span;
- survival: share of keep strings (look-alikes: SKUs, prices, sizes, dates, …) with
  no character replaced.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from storetune.clean.pii import TYPES, Scrubber

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "tests" / "data" / "pii_labeled.jsonl"
_PLACEHOLDER = re.compile("(<(?:" + "|".join(TYPES) + ")>)")


def replaced_ranges(original: str, scrubbed: str) -> list[tuple[int, int, str]]:
    """(start, end, type) in `original` of the text each placeholder in `scrubbed` replaced.

    The scrubbed text is the original with some stretches swapped for placeholders, so
    the literal pieces between placeholders pin down what each one stands for.
    """
    parts = _PLACEHOLDER.split(scrubbed)
    if len(parts) == 1:
        return []
    pattern = "".join(
        "(.+?)" if i % 2 else re.escape(p) for i, p in enumerate(parts)
    )  # odd indexes are placeholders
    m = re.fullmatch(pattern, original, re.S)
    if m is None:
        raise ValueError(f"cannot align scrubbed text with its original: {scrubbed[:80]!r}")
    kinds = [p[1:-1] for p in parts[1::2]]
    return [(m.start(g), m.end(g), kind) for g, kind in enumerate(kinds, 1)]


def _covered(start: int, end: int, ranges: list[tuple[int, int, str]], kind: str | None) -> bool:
    chars = set(range(start, end))
    for a, b, k in ranges:
        if kind is None or k == kind:
            chars -= set(range(a, b))
    return not chars


def _occurrences(text: str, sub: str) -> list[tuple[int, int]]:
    out, i = [], text.find(sub)
    while i >= 0 and sub:
        out.append((i, i + len(sub)))
        i = text.find(sub, i + 1)
    return out


def load(path: Path | str) -> list[dict[str, Any]]:
    rows = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            row = json.loads(line)
            row["_line"] = n
            rows.append(row)
    return rows


def evaluate_pii(path: Path | str = DEFAULT_PATH) -> dict[str, Any]:
    """Span-level recall/precision per type and look-alike survival; see module doc."""
    rows = load(path)
    labeled: Counter[str] = Counter()
    hit: Counter[str] = Counter()
    hit_any: Counter[str] = Counter()
    replaced: Counter[str] = Counter()
    replaced_ok: Counter[str] = Counter()  # overlaps a labeled span (any type)
    replaced_same: Counter[str] = Counter()  # overlaps a labeled span of its type
    keep_total = keep_ok = 0
    misses: list[dict[str, Any]] = []
    false_positives: list[dict[str, Any]] = []
    killed: list[dict[str, Any]] = []
    for row in rows:
        text = row["text"]
        scrubber = Scrubber(row.get("names", []), row.get("protected", []))
        out = scrubber.scrub(text)
        ranges = replaced_ranges(text, out)
        spans = [(s["start"], s["end"], s["type"]) for s in row.get("spans", [])]
        for s, e, kind in spans:
            labeled[kind] += 1
            if _covered(s, e, ranges, kind):
                hit[kind] += 1
            else:
                misses.append({"line": row["_line"], "type": kind, "value": text[s:e], "out": out})
            if _covered(s, e, ranges, None):
                hit_any[kind] += 1
        for a, b, kind in ranges:
            replaced[kind] += 1
            overlapping = [k for s, e, k in spans if s < b and a < e]
            if overlapping:
                replaced_ok[kind] += 1
            else:
                false_positives.append({"line": row["_line"], "type": kind, "value": text[a:b]})
            if kind in overlapping:
                replaced_same[kind] += 1
        for k in row.get("keep", []):
            keep_total += 1
            occ = _occurrences(text, k)
            if occ and not any(s < b and a < e for s, e in occ for a, b, _ in ranges):
                keep_ok += 1
            else:
                killed.append({"line": row["_line"], "keep": k, "out": out})
    n_spans, n_replaced = sum(labeled.values()), sum(replaced.values())
    per_type = {
        kind: {
            "labeled": labeled[kind],
            "recall": _ratio(hit[kind], labeled[kind]),
            "recall_any": _ratio(hit_any[kind], labeled[kind]),
            "replaced": replaced[kind],
            "precision": _ratio(replaced_same[kind], replaced[kind]),
        }
        for kind in TYPES
    }
    return {
        "path": str(path),
        "texts": len(rows),
        "spans": n_spans,
        "keep_strings": keep_total,
        "recall": _ratio(sum(hit.values()), n_spans),
        "recall_any": _ratio(sum(hit_any.values()), n_spans),
        "precision": _ratio(sum(replaced_ok.values()), n_replaced),
        "replaced": n_replaced,
        "survival": _ratio(keep_ok, keep_total),
        "per_type": per_type,
        "misses": misses,
        "false_positives": false_positives,
        "killed_keeps": killed,
    }


def _ratio(a: int, b: int) -> float:
    return a / b if b else 1.0


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console
    from rich.table import Table

    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else DEFAULT_PATH
    console = Console()
    if not path.exists():
        console.print(f"[red]{path}: not found[/red]")
        return 2
    r = evaluate_pii(path)
    table = Table(title=f"PII scrubber on {path.name} ({r['texts']} texts)")
    for col in ("type", "labeled", "recall", "recall (any type)", "replaced", "precision"):
        table.add_column(col, justify="left" if col == "type" else "right")
    for kind, t in r["per_type"].items():
        table.add_row(
            kind,
            str(t["labeled"]),
            f"{t['recall']:.1%}",
            f"{t['recall_any']:.1%}",
            str(t["replaced"]),
            f"{t['precision']:.1%}",
        )
    table.add_section()
    table.add_row(
        "all",
        str(r["spans"]),
        f"{r['recall']:.1%}",
        f"{r['recall_any']:.1%}",
        str(r["replaced"]),
        f"{r['precision']:.1%}",
        style="bold",
    )
    table.caption = (
        f"look-alikes surviving: {r['survival']:.1%} of {r['keep_strings']} "
        f"(targets: recall ≥ 99%, precision ≥ 95%, survival 100%)"
    )
    console.print(table)
    for m in r["misses"][:20]:
        console.print(f"[yellow]missed[/yellow] line {m['line']} {m['type']}: {m['value']!r}")
    for f in r["false_positives"][:20]:
        console.print(f"[red]false positive[/red] line {f['line']} {f['type']}: {f['value']!r}")
    for k in r["killed_keeps"][:20]:
        console.print(f"[red]look-alike lost[/red] line {k['line']}: {k['keep']!r}")
    ok = r["recall"] >= 0.99 and r["precision"] >= 0.95 and r["survival"] == 1.0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
