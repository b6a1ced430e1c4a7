"""Recipe ablation on the demo's dataset: train and grade each variant of store.yaml's
`train:` block on the same held-out tickets (model and system passes, no base model).

    python -m bench.ablate WORKSPACE '[{"name": "1ep", "train": {"epochs": 1}},
                                      {"name": "2ep", "train": {"epochs": 2}}]'

WORKSPACE is (re)created with the demo store, budget and dataset (`storetune demo`'s
first stages) unless it already holds a dataset. A variant with a `build` block (e.g.
`{"name": "full", "build": {"policies": "full"}}`) rebuilds the dataset first; changes
carry over to the variants after it. Rows are appended to
reports/bench/ablate.jsonl. Not part of `make bench`: each variant trains for minutes.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import yaml

OUT = Path("reports/bench/ablate.jsonl")


def prepare(root: Path):
    from storetune.dataset.build import build_dataset
    from storetune.demo.pipeline import DemoBudget, apply_budget
    from storetune.demo.store_gen import generate_demo_store
    from storetune.ingest import ingest_workspace
    from storetune.retrieval.index import build_index
    from storetune.workspace import Workspace

    ws = Workspace(root.resolve())
    if list(ws.root.glob("datasets/*/train.jsonl")):
        return ws
    budget = DemoBudget()
    generate_demo_store(root, seed=0, n_products=budget.products, n_tickets=budget.tickets)
    apply_budget(ws, budget, None)
    ingest_workspace(ws, progress=False)
    build_index(ws.db_path, progress=False)
    build_dataset(ws)
    return ws


def run_variant(ws, variant: dict, max_new_tokens: int = 96) -> dict:
    from storetune.dataset.build import build_dataset
    from storetune.eval.runner import evaluate
    from storetune.train import train_model

    raw = yaml.safe_load(ws.config_path.read_text(encoding="utf-8"))
    raw.setdefault("train", {}).update(variant.get("train", {}))
    raw.setdefault("build", {}).update(variant.get("build", {}))
    ws.config_path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    if variant.get("build"):
        # same seed and examples, other prompts: the held-out tickets stay the same
        build_dataset(ws, progress=False)
    started = time.time()
    version_dir, trained = train_model(ws, progress=False, log=print)
    train_s = round(time.time() - started)
    started = time.time()
    report = evaluate(
        ws,
        f"support@{version_dir.name}",
        baseline=False,
        max_new_tokens=max_new_tokens,
        progress=False,
        log=print,
    )
    result = report["results"][report["model"]]
    return {
        "variant": variant,
        "version": version_dir.name,
        "train_s": train_s,
        "eval_s": round(time.time() - started),
        "summary": result["summary"],
        "system": result.get("system"),
    }


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    ws = prepare(Path(argv[0]))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    for variant in json.loads(argv[1]):
        row = run_variant(ws, variant)
        with OUT.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row, default=str) + "\n")
        s = row["summary"]
        print(f"{variant.get('name')}: correct {s['correct']:.1%}, wrong {s['wrong']:.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
