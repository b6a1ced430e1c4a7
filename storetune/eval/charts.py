"""Report charts: matplotlib PNGs as base64 strings, ready to embed in the HTML."""

from __future__ import annotations

import base64
import io

_COLORS = {"correct": "#2e7d32", "partial": "#f9a825", "wrong": "#c62828"}
_MODEL_COLORS = ["#90a4ae", "#1565c0", "#6a1b9a", "#00838f"]


def _figure(width: float, height: float):
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height), dpi=100)
    return plt, fig, ax


def _png(plt, fig) -> str:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def verdict_bars(results: dict) -> str:
    """Stacked correct / partial / wrong share per model."""
    plt, fig, ax = _figure(6.0, 0.9 + 0.6 * len(results))
    names = list(results)
    left = [0.0] * len(names)
    for verdict in ("correct", "partial", "wrong"):
        values = [100 * results[n]["summary"][verdict] for n in names]
        ax.barh(names, values, left=left, color=_COLORS[verdict], label=verdict)
        for i, v in enumerate(values):
            if v >= 6:
                ax.text(left[i] + v / 2, i, f"{v:.0f}%", ha="center", va="center", color="white")
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of replies")
    ax.invert_yaxis()
    ax.legend(ncol=3, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    return _png(plt, fig)


def category_bars(results: dict) -> str:
    """Share correct per task/category, one bar per model."""
    cats = sorted({c for r in results.values() for c in r["summary"]["by_category"]})
    plt, fig, ax = _figure(7.0, 1.0 + 0.32 * len(cats) * max(1, len(results)) ** 0.5)
    height = 0.8 / max(1, len(results))
    for i, (name, r) in enumerate(results.items()):
        by = r["summary"]["by_category"]
        ys = [j + i * height for j in range(len(cats))]
        xs = [100 * by.get(c, {}).get("correct", 0.0) for c in cats]
        ax.barh(ys, xs, height=height, label=name, color=_MODEL_COLORS[i % len(_MODEL_COLORS)])
    ax.set_yticks([j + 0.4 - height / 2 for j in range(len(cats))], cats, fontsize=8)
    ax.set_xlim(0, 100)
    ax.set_xlabel("% correct")
    ax.invert_yaxis()
    ax.legend(loc="lower right", fontsize=8)
    return _png(plt, fig)


def confusion_chart(confusion: dict, title: str) -> str:
    """Heat map of gold class (rows) against predicted class (columns)."""
    labels, columns, matrix = confusion["labels"], confusion["columns"], confusion["matrix"]
    short = [lab.split(" > ")[-1][:22] for lab in labels]
    short_cols = [c.split(" > ")[-1][:22] for c in columns]
    plt, fig, ax = _figure(1.6 + 0.55 * len(columns), 1.2 + 0.45 * len(labels))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(columns)), short_cols, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), short, fontsize=8)
    for i, row in enumerate(matrix):
        for j, v in enumerate(row):
            if v:
                ax.text(j, i, str(v), ha="center", va="center", fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(title, fontsize=9)
    return _png(plt, fig)


def refusal_bars(results: dict) -> str | None:
    """Safety refusal rate per category, one bar per model."""
    cats = sorted({c for r in results.values() for c in r["summary"]["refusal"]["by_category"]})
    if not cats:
        return None
    plt, fig, ax = _figure(6.0, 2.6)
    width = 0.8 / max(1, len(results))
    for i, (name, r) in enumerate(results.items()):
        by = r["summary"]["refusal"]["by_category"]
        xs = [j + i * width for j in range(len(cats))]
        ys = [100 * (by.get(c, {}).get("refusal_rate") or 0.0) for c in cats]
        ax.bar(xs, ys, width=width, label=name, color=_MODEL_COLORS[i % len(_MODEL_COLORS)])
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(cats))], cats, fontsize=8)
    ax.set_ylim(0, 100)
    ax.set_ylabel("% declined")
    ax.legend(fontsize=8)
    return _png(plt, fig)


def regression_chart(rows: list[dict]) -> str | None:
    """Correct and wrong share across versions of one adapter."""
    if len(rows) < 2:
        return None
    plt, fig, ax = _figure(6.0, 2.6)
    xs = [r["version"] for r in rows]
    ax.plot(
        xs,
        [100 * (r["correct"] or 0) for r in rows],
        marker="o",
        color=_COLORS["correct"],
        label="correct",
    )
    ax.plot(
        xs,
        [100 * (r["wrong"] or 0) for r in rows],
        marker="o",
        color=_COLORS["wrong"],
        label="wrong",
    )
    ax.set_ylim(0, 100)
    ax.set_ylabel("% of replies")
    ax.legend(fontsize=8)
    return _png(plt, fig)
