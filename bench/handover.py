"""Which signal hands over what: the deployed system's decision with signals switched off,
on one evaluated version's cached drafts (no generation, no training).

    python -m bench.handover WORKSPACE [support@v1]

Run `storetune eval` on the version first: the system pass's drafts are read from
reports/cache and nothing is generated here (a draft missing from the cache is an
error). Each row keeps a subset of the hand-over signals — the model's own marker, the
rules in code (an explicit request for a person, store.yaml's always-escalate topics),
the learned router, the nearest past tickets — and grades what the system would then
send, with the held-out tickets removed from the neighbours as `storetune eval` does;
the last row adds the reply check (a draft answering another question is not sent).
Rows go to reports/bench/handover.json.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

OUT = Path("reports/bench/handover.json")

VARIANTS = {
    "marker only": {"marker"},
    "marker + rules": {"marker", "rules"},
    "marker + rules + router": {"marker", "rules", "router"},
    "+ neighbours (served before the reply check)": {"marker", "rules", "router", "knn"},
    "+ reply check, as served": {"marker", "rules", "router", "knn", "reply_check"},
}


def _keep(signals, kept: set[str]):
    """The signals with the switched-off hand-over sources emptied."""
    s = dataclasses.replace(signals)
    if "marker" not in kept:
        s.marker = False
    if "rules" not in kept:
        s.topic = None
        if s.hand_over and not s.hand_over.startswith("the router"):
            s.hand_over = None
    if "router" not in kept and s.hand_over and s.hand_over.startswith("the router"):
        s.hand_over = None
    if "knn" not in kept:
        s.knn = None
    if "reply_check" not in kept:
        s.off_topic = None
    return s


def run(root: Path, model: str = "support") -> dict:
    from storetune.eval.cases import load_test_cases, trained_tasks
    from storetune.eval.runner import Grader, StoreFacts, _products, conversation_key
    from storetune.eval.system import Outcome, SystemRun, outcome_of, summarize_system
    from storetune.models.registry import ModelRef, Registry
    from storetune.serve.guard import redact
    from storetune.serve.routing import decide, load_thresholds
    from storetune.serve.rules import handover_line
    from storetune.workspace import Workspace

    ws = Workspace(root.resolve())
    cfg = ws.config()
    registry = Registry(ws.models_dir)
    version_dir = registry.resolve(ModelRef.parse(model))
    info = registry.info(version_dir)
    from storetune.dataset.build import resolve_dataset

    cases = load_test_cases(resolve_dataset(ws, info["dataset_id"]), trained_tasks(version_dir))
    grader = Grader(StoreFacts.from_config(cfg, [p.title for p in _products(ws)]), cases)
    system = SystemRun.open(ws, version_dir, info, cases)
    drafts = _cached_drafts(ws, f"{ModelRef.parse(model).name}-v{info['version']}")
    thresholds = load_thresholds(ws, info["name"], info["version"])
    marker = cfg.escalation.marker
    rows = {name: [] for name in VARIANTS}
    for case, p in zip(system.cases, system.prepared, strict=True):
        if p.template is not None:
            continue  # the store's fixed wording: not a draft, not an ablation
        key = f"{conversation_key(p.messages)}:96"
        if key not in drafts:
            raise SystemExit(f"no cached draft for a system prompt: run 'storetune eval {model}'")
        d = drafts[key]
        routed = system.router.finish(
            p,
            d["text"],
            [("", x) for x in d["logprobs"]],
            d["finish_reason"],
            "x",
            thresholds,
            "auto",
            record=False,
        )
        must = marker in case.gold
        sent_text = redact(
            d["text"].replace(marker, " ").strip(), routed.signals.blocked
        ) or handover_line(cfg)
        for name, kept in VARIANTS.items():
            decision = decide(_keep(routed.signals, kept), thresholds, marker)
            outcome = outcome_of(decision.confidence, decision.escalate)
            verdict = grader.grade(case, sent_text).verdict if outcome == "sent" else "n/a"
            if must and outcome == "sent":
                verdict = "wrong"
            rows[name].append(Outcome(outcome, verdict, must, not must and case.task != "safety"))
    system.close()
    result = {
        "workspace": str(root),
        "model": model,
        "variants": {name: summarize_system(o) for name, o in rows.items()},
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result


def _cached_drafts(ws, label: str) -> dict:
    from storetune.eval.runner import ScoredCache

    data: dict = {}
    for path in sorted((ws.reports_dir / "cache").glob(f"{label}*.scored.jsonl")):
        data.update(ScoredCache(path).data)
    return data


def _fmt(r: dict) -> str:
    return f"{r['k']}/{r['n']} = {100 * r['rate']:.1f}% ({100 * r['ci'][0]:.0f}–{100 * r['ci'][1]:.0f})"


if __name__ == "__main__":
    out = run(Path(sys.argv[1]), *(sys.argv[2:3] or []))
    print("| signals | hand-overs caught | over-escalation | sent | wrong and sent |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, s in out["variants"].items():
        print(
            f"| {name} | {_fmt(s['escalation_recall'])} | {_fmt(s['over_escalation'])} | "
            f"{_fmt(s['automation'])} | {_fmt(s['wrong_and_sent'])} |"
        )
