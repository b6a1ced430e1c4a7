"""Experiment: a past ticket like this one, with the reply that was sent, in the prompt.

    python -m bench.fewshot SOURCE_WS TARGET_WS

Copies a demo workspace (store, database, dataset; no models or reports) and rewrites
its dataset so every example's system prompt ends with the nearest *training* example
by the bundled MiniLM embedding of the customer's last message, never one of the same
phrasing family (held-out wordings stay held out: a test example's neighbour is worded
another way, as a real store's past tickets are). Then train and grade with the usual
commands on TARGET_WS (`storetune -w TARGET_WS train`, `eval --no-baseline`). Not part
of `make bench`; a measurement for docs/evaluation.md, not a feature.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np

HEADER = "A past ticket like this one and the reply we sent (its facts may not fit this one):"
MAX_CHARS = 400


def last_user(messages: list[dict]) -> str:
    return next(m["content"] for m in reversed(messages) if m["role"] == "user")


def reply_of(messages: list[dict]) -> str:
    return messages[-1]["content"]


def with_example(messages: list[dict], neighbour: list[dict]) -> list[dict]:
    block = (
        f"\n{HEADER}\nCustomer: {last_user(neighbour)[:MAX_CHARS]}\n"
        f"Reply: {reply_of(neighbour)[:MAX_CHARS]}"
    )
    out = [dict(m) for m in messages]
    if out[0]["role"] == "system":
        out[0]["content"] = out[0]["content"] + block
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    from storetune.retrieval.embed import default_embedder

    src, dst = Path(argv[0]), Path(argv[1])
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("models", "reports", "runs"))
    ds_id = (dst / "datasets" / "LATEST").read_text().strip()
    ds = dst / "datasets" / ds_id
    splits = {
        s: [json.loads(x) for x in (ds / f"{s}.jsonl").open()] for s in ("train", "val", "test")
    }
    meta = [json.loads(x) for x in (ds / "meta.jsonl").open()]
    fam = {(m["split"], m["index"]): m.get("family") or f"{m['split']}:{m['index']}" for m in meta}
    embedder = default_embedder()
    vecs = {
        s: embedder.embed([last_user(r["messages"]) for r in rows]) for s, rows in splits.items()
    }
    train_fam = [fam[("train", i)] for i in range(len(splits["train"]))]
    for s, rows in splits.items():
        sims = vecs[s] @ vecs["train"].T
        for i, row in enumerate(rows):
            own = fam[(s, i)]
            order = np.argsort(-sims[i])
            j = next(int(k) for k in order if train_fam[k] != own and not (s == "train" and k == i))
            row["messages"] = with_example(row["messages"], splits["train"][j]["messages"])
    new = dst / "datasets" / f"{ds_id}-fs"
    new.mkdir()
    for s, rows in splits.items():
        with (new / f"{s}.jsonl").open("w") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    for name in ("meta.jsonl", "report.json", "report.md"):
        shutil.copy(ds / name, new / name)
    (dst / "datasets" / "LATEST").write_text(new.name)
    print(f"{new}: {sum(len(r) for r in splits.values())} examples rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
