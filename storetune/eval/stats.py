"""Rates with their 95% intervals, so a reader can tell a real change from noise.

Wilson's score interval rather than the normal approximation: it stays inside [0, 1]
and is honest at the small n and extreme rates an eval of 150 tickets produces
(0 wrong of 40 sent is not "0%", it is "0–9%").
"""

from __future__ import annotations

import math

Z95 = 1.959963984540054  # two-sided 95% normal quantile


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of k successes in n trials; None when n is 0."""
    if n <= 0:
        return None
    if not 0 <= k <= n:
        raise ValueError(f"wilson: k={k} is outside 0..n={n}")
    p = k / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def rate_ci(k: int, n: int) -> dict:
    """`{"rate", "k", "n", "ci"}` for a count; rate and ci are None when n is 0."""
    interval = wilson(k, n)
    return {
        "rate": k / n if n else None,
        "k": k,
        "n": n,
        "ci": [round(interval[0], 4), round(interval[1], 4)] if interval else None,
    }


def format_rate(entry: dict | None, digits: int = 1) -> str:
    """'42.0% (34.4–50.0%)' for a rate_ci entry; '–' when there is nothing to rate."""
    if not entry or entry.get("rate") is None:
        return "–"
    lo, hi = entry["ci"]
    return f"{100 * entry['rate']:.{digits}f}% ({100 * lo:.0f}–{100 * hi:.0f}%)"
