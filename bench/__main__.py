"""`make bench`: run every bench/bench_*.py and write its JSON to reports/bench/.

Each benchmark compares storetune with a peer in the same run and reports ratios;
wall-clock figures are only meaningful against the peer measured beside them.
"""

from __future__ import annotations

import importlib
import json
import platform
import sys
import time
from pathlib import Path

OUT = Path("reports/bench")


def main(selected: list[str]) -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    names = sorted(p.stem for p in Path(__file__).parent.glob("bench_*.py"))
    names = [n for n in names if not selected or n.removeprefix("bench_") in selected]
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        started = time.time()
        result = module.run()
        result["machine"] = {"python": platform.python_version(), "cpu": platform.processor()}
        result["wall_s"] = round(time.time() - started, 1)
        path = OUT / f"{name.removeprefix('bench_')}.json"
        path.write_text(json.dumps(result, indent=2))
        print(json.dumps(result.get("summary", result), indent=2))
        print(f"-> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
