"""The deployed system's signals, one at a time: re-grade a version's system pass from
the replies `storetune eval` already generated (no model is loaded), once as served
and once with each signal switched off.

    python -m bench.system_ablate WORKSPACE [MODEL] [MAX_NEW_TOKENS]

MODEL defaults to support, MAX_NEW_TOKENS to the demo's 96; run `storetune eval`
with the same figure first (a reply not in its cache is an error, not generated here).
Rows go to reports/bench/system_ablate.jsonl. Variants:

- served: every signal, as `POST /v1/tickets` decides;
- no coverage check: a draft leaving out a question may be sent (serve.coverage);
- no router hand-over: hand-overs come from the marker, the rules, the neighbours and
  store.yaml's topics, not from the router's reading;
- marker only: only the model's own escalation marker hands over.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

OUT = Path("reports/bench/system_ablate.jsonl")


def _cached_generate(ws, label: str, max_new_tokens: int):
    """conversations -> the replies `storetune eval` cached for this version."""
    from storetune.eval.runner import ScoredCache, conversation_key

    files = sorted((ws.reports_dir / "cache").glob(f"{label}.*scored.jsonl"))
    files = [f for f in files if not f.name.startswith("base-")]
    if not files:
        raise SystemExit(f"no cached replies for {label} under {ws.reports_dir / 'cache'}")
    data: dict[str, dict] = {}
    for f in files:
        data.update(ScoredCache(f).data)

    def generate(conversations: list[list[dict]], stage: str) -> list[dict]:
        keys = [f"{conversation_key(c)}:{max_new_tokens}:r" for c in conversations]
        missing = sum(k not in data for k in keys)
        if missing:
            raise SystemExit(f"{missing} {stage} replies not cached: run storetune eval first")
        return [data[k] for k in keys]

    return generate


@contextlib.contextmanager
def variant(name: str) -> Iterator[None]:
    from storetune.serve import routing

    with contextlib.ExitStack() as stack:
        if name in ("no coverage check",):
            stack.enter_context(mock.patch.object(routing, "unanswered", lambda *a, **k: None))
        if name == "no router hand-over":
            keep = routing._hand_over

            def rules_only(router, reading, message):
                return keep(None, None, message)

            stack.enter_context(mock.patch.object(routing, "_hand_over", rules_only))
        if name == "marker only":
            stack.enter_context(mock.patch.object(routing, "_hand_over", lambda *a: None))
            stack.enter_context(mock.patch.object(routing, "KNN_ESCALATE", 2.0))
            stack.enter_context(mock.patch.object(routing, "human_only_reason", lambda *a: None))
        yield


def run(ws, model: str, max_new_tokens: int, name: str) -> dict:
    from storetune.dataset.build import resolve_dataset
    from storetune.eval.cases import load_test_cases, stratified, trained_tasks
    from storetune.eval.graders import Grader
    from storetune.eval.records import StoreFacts
    from storetune.eval.runner import _products
    from storetune.eval.system import SystemRun
    from storetune.models.registry import ModelRef, Registry

    registry = Registry(ws.models_dir)
    version_dir = registry.resolve(ModelRef.parse(model))
    info = registry.info(version_dir)
    cases = stratified(
        load_test_cases(resolve_dataset(ws, info["dataset_id"]), trained_tasks(version_dir)),
        None,
    )
    cfg = ws.config()
    grader = Grader(StoreFacts.from_config(cfg, [p.title for p in _products(ws)]), cases)
    generate = _cached_generate(ws, f"{info['name']}-v{info['version']}", max_new_tokens)
    with variant(name):
        system = SystemRun.open(ws, version_dir, info, cases)
        try:
            result = system.run(generate, grader, calibrated=True)
        finally:
            system.close()
    return {
        "variant": name,
        "model": model,
        "summary": result["summary"],
        "examples": result["examples"],
    }


def main(argv: list[str]) -> int:
    from storetune.workspace import Workspace

    if not argv:
        print(__doc__)
        return 2
    ws = Workspace(Path(argv[0]).resolve())
    model = argv[1] if len(argv) > 1 else "support"
    tokens = int(argv[2]) if len(argv) > 2 else 96
    OUT.parent.mkdir(parents=True, exist_ok=True)
    for name in ("served", "no coverage check", "no router hand-over", "marker only"):
        row = run(ws, model, tokens, name)
        row.pop("examples")
        with OUT.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row, default=str) + "\n")
        s = row["summary"]
        rates = {k: f"{v['k']}/{v['n']}" for k, v in s.items() if isinstance(v, dict) and "k" in v}
        print(name, json.dumps(rates))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
