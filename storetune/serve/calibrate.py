"""`storetune calibrate`: log-prob thresholds fitted on the validation split.

Each validation example is answered by the served model exactly as the router would
(greedy, token log-probs on) and graded with the eval rubric against the reference
reply. Replies the router could never send on their own (a hand-over, or one the
grounding check blocks) are set aside; over the rest, the thresholds on the mean
and the minimum token log-prob are chosen to rate as many replies `high` as
possible while the `high` ones are wrong at most `target` (5%) of the time, with
at least `min_support` replies to measure that on. The Wilson 95% upper bound of
that error rate is reported too: on a small validation split it is the honest
figure.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from storetune.errors import StoretuneError
from storetune.io import atomic_write_json
from storetune.progress import progress as progress_bar
from storetune.serve.guard import Evidence, Guard
from storetune.serve.routing import Thresholds, calibration_path, logprob_stats
from storetune.workspace import Workspace

TARGET = 0.05
MIN_SUPPORT = 20


@dataclass
class Point:
    """One graded validation reply."""

    mean: float
    min: float
    wrong: bool
    escalated: bool  # the reply handed over (never auto-sent)
    blocked: bool  # the grounding check blocked a fact (never high)


def wilson_upper(wrong: int, n: int, z: float = 1.96) -> float:
    """95% upper confidence bound of a wrong-rate measured as wrong/n."""
    if n == 0:
        return 1.0
    p = wrong / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return min(1.0, (centre + spread) / (1 + z * z / n))


def fit_thresholds(
    points: list[Point], target: float = TARGET, min_support: int = MIN_SUPPORT
) -> Thresholds:
    """The loosest (mean, min) log-prob cut-offs whose `high` replies are wrong <= target."""
    candidates = [p for p in points if not p.escalated and not p.blocked]
    details: dict = {
        "validation_replies": len(points),
        "handed_over": sum(p.escalated for p in points),
        "blocked_by_grounding": sum(p.blocked and not p.escalated for p in points),
        "candidates": len(candidates),
        "candidates_wrong": sum(p.wrong for p in candidates),
        "target_wrong_rate": target,
        "min_support": min_support,
    }
    best: tuple[int, float, float] | None = None
    for tm in sorted({p.mean for p in candidates}):
        for tn in _min_grid(candidates):
            chosen = [p for p in candidates if p.mean >= tm and p.min >= tn]
            if len(chosen) < min_support or sum(p.wrong for p in chosen) > target * len(chosen):
                continue
            key = (len(chosen), tm, tn)  # most replies; ties: the stricter cut-offs
            if best is None or key > best:
                best = key
    mean_low = _low_threshold(candidates)
    if best is None:
        details["note"] = (
            f"no cut-off rates {min_support}+ replies high with at most {target:.0%} wrong; "
            "nothing will be rated high (every draft waits for an agent)"
        )
        return Thresholds(1.0, 0.0, mean_low, True, details)
    n, tm, tn = best
    wrong = sum(p.wrong for p in candidates if p.mean >= tm and p.min >= tn)
    details |= {
        "high": n,
        "high_share_of_candidates": round(n / len(candidates), 4),
        "high_wrong": wrong,
        "high_wrong_rate": round(wrong / n, 4),
        "high_wrong_rate_upper95": round(wilson_upper(wrong, n), 4),
    }
    return Thresholds(round(tm, 4), round(tn, 4), mean_low, True, details)


def _min_grid(points: list[Point], steps: int = 20) -> list[float]:
    """Candidate cut-offs for the minimum log-prob: quantiles, plus 'no cut-off'."""
    values = sorted(p.min for p in points)
    if not values:
        return [-1e9]
    picks = {values[round(i * (len(values) - 1) / steps)] for i in range(steps + 1)}
    return [-1e9, *sorted(picks)]


def _low_threshold(points: list[Point], min_n: int = 5) -> float:
    """The mean log-prob cut-off that best separates wrong replies (below it) from the
    rest: most wrong minus right replies below; no cut-off when nothing separates."""
    ordered = sorted(points, key=lambda p: p.mean)
    if not ordered:
        return -1.0
    best_t, best_score = ordered[0].mean, 0  # nothing is below the lowest seen
    score = 0
    for i, p in enumerate(ordered):
        score += 1 if p.wrong else -1
        nxt = ordered[i + 1].mean if i + 1 < len(ordered) else None
        if nxt is not None and nxt > p.mean and i + 1 >= min_n and score > best_score:
            best_t, best_score = nxt, score
    return round(best_t, 4)


# ---- the run --------------------------------------------------------------------------------


@dataclass
class CalibrationResult:
    path: Path
    model: str
    thresholds: Thresholds
    seconds: float

    def to_dict(self) -> dict:
        return {"path": str(self.path), "model": self.model, "seconds": self.seconds} | asdict(
            self.thresholds
        )


def calibrate(
    ws: Workspace,
    model: str = "support",
    limit: int | None = 100,
    max_new_tokens: int = 128,
    target: float = TARGET,
    min_support: int = MIN_SUPPORT,
    engine=None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> CalibrationResult:
    """Fit and store the routing thresholds of a model version (see the module doc)."""
    import time

    from storetune.config.train import SUPPORT_TASKS
    from storetune.dataset.build import resolve_dataset
    from storetune.eval.cases import load_test_cases, stratified, trained_tasks
    from storetune.models.registry import ModelRef, Registry

    started = time.perf_counter()
    cfg = ws.config()
    registry = Registry(ws.models_dir)
    ref = ModelRef.parse(model)
    version_dir = registry.resolve(ref)
    info = registry.info(version_dir)
    version = int(info.get("version") or version_dir.name.lstrip("v"))
    data_dir = resolve_dataset(ws, info.get("dataset_id"))
    tasks = [t for t in trained_tasks(version_dir) if t in SUPPORT_TASKS]
    cases = stratified(load_test_cases(data_dir, tasks, split="val"), limit)
    if not cases:
        raise StoretuneError(
            f"{data_dir}: the validation split has no support examples to calibrate on",
            hint="rebuild the dataset with more tickets ('storetune build')",
        )
    label = f"{ref.name}@v{version}"
    log(f"calibrating {label} on {len(cases)} validation replies ({data_dir.name})")
    owns = engine is None
    engine = engine or _engine(ws, label, version_dir, info)
    try:
        replies = _generate(engine, label, cases, max_new_tokens, progress)
    finally:
        if owns:
            engine.close()
    points = _grade(ws, cfg, cases, replies)
    thresholds = fit_thresholds(points, target, min_support)
    thresholds.details |= {
        "skipped": len(cases) - len(points),  # too long for the context, or empty
        "model": label,
        "dataset_id": data_dir.name,
        "max_new_tokens": max_new_tokens,
        "calibrated_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    path = calibration_path(ws, ref.name, version)
    atomic_write_json(path, thresholds.to_dict())
    return CalibrationResult(path, label, thresholds, round(time.perf_counter() - started, 1))


def _engine(ws: Workspace, label: str, version_dir: Path, info: dict):
    from storetune.runtime import resolve_base_model
    from storetune.serve.engine import Engine

    recorded = Path(info.get("base_model_path") or "")
    base = (
        recorded
        if (recorded / "config.json").exists()
        else resolve_base_model(ws.config().base_model).path
    )
    serve = ws.config().serve
    # the engine serving will use: thresholds are read off its log-probs
    return Engine(
        base,
        {label: version_dir},
        base_name=str(info.get("base_model", base.name)),
        engine=serve.engine,
        gguf_type=serve.gguf_type,
        context_tokens=serve.context_tokens,
        threads=serve.threads,
        merge_adapters=serve.merge_adapters,
    )


def _generate(engine, label: str, cases, max_new_tokens: int, progress: bool):
    """Replies with log-probs, stopped where they loop as ticket drafts are; requests go
    in together so the engine can batch them."""
    from storetune.serve.engine import RequestError

    out: list = [None] * len(cases)
    workers = max(1, getattr(engine, "max_batch", 4))
    with (
        progress_bar("calibrate", len(cases), progress) as bar,
        ThreadPoolExecutor(workers) as pool,
    ):
        futures = {
            pool.submit(
                engine.generate,
                c.conversation,
                label,
                max_tokens=max_new_tokens,
                temperature=0.0,
                logprobs=True,
                stop_repetition=True,
            ): i
            for i, c in enumerate(cases)
        }
        for f in as_completed(futures):
            try:
                out[futures[f]] = f.result()
            except RequestError:
                pass  # longer than the model's context: the router would refuse it too
            bar.advance(1)
    return out


def _grade(ws: Workspace, cfg, cases, replies) -> list[Point]:
    from storetune.eval.graders import Grader
    from storetune.eval.records import StoreFacts
    from storetune.store import db

    conn = db.connect(ws.db_path)
    try:
        rows = conn.execute("SELECT title, product_type FROM products").fetchall()
    finally:
        conn.close()
    titles = [r[0] for r in rows]
    grader = Grader(StoreFacts.from_config(cfg, titles), cases)
    guard = Guard(titles, {r[1] for r in rows if r[1]})
    marker = cfg.escalation.marker
    points = []
    for case, gen in zip(cases, replies, strict=True):
        if gen is None:
            continue
        mean, low = logprob_stats(gen.token_logprobs)
        if mean is None:
            continue  # an empty reply says nothing about confidence
        draft = gen.text.replace(marker, " ").strip()
        evidence = Evidence.for_prompt(
            case.system, case.customer, cfg.brand.website, case.context_cards
        )
        points.append(
            Point(
                mean,
                low,
                grader.grade(case, gen.text).verdict == "wrong",
                marker in gen.text,
                not guard.check(draft, evidence).ok,
            )
        )
    return points
