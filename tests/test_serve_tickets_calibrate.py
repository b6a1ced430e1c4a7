"""`storetune calibrate`: thresholds that keep `high` replies under the wrong-rate target."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import yaml
from test_retrieval import copy_store, indexed_store_template
from test_serve_support import save_adapter

from storetune.dataset.build import build_dataset
from storetune.dataset.validate import load_model_tokenizer
from storetune.serve.calibrate import Point, calibrate, fit_thresholds, wilson_upper
from storetune.serve.routing import Signals, decide, load_thresholds
from storetune.workspace import Workspace


def points(means: list[float], wrong: bool, low: float = -1.0, **kw) -> list[Point]:
    return [
        Point(m, low, wrong, kw.get("escalated", False), kw.get("blocked", False)) for m in means
    ]


def steps(start: float, stop: float, n: int) -> list[float]:
    return [round(start + (stop - start) * i / (n - 1), 4) for i in range(n)]


def test_loosest_cut_off_within_the_target():
    right = points(steps(-0.2, -0.05, 40), wrong=False)
    wrong = points(steps(-1.0, -0.5, 20), wrong=True)
    t = fit_thresholds(right + wrong, target=0.05, min_support=20)
    # two wrong replies among 42 is 4.8%: allowed; a third would be 7%
    assert t.mean_high == -0.5263 and t.calibrated
    assert (t.details["high"], t.details["high_wrong"]) == (42, 2)
    assert t.details["high_wrong_rate"] <= 0.05
    assert t.details["high_wrong_rate_upper95"] == round(wilson_upper(2, 42), 4)
    # the low cut-off separates the wrong replies from the right ones
    assert t.mean_low == -0.2


def test_one_unlikely_token_can_decide():
    right = points(steps(-0.3, -0.05, 40), wrong=False, low=-1.5)
    confident_but_wrong = points(steps(-0.3, -0.05, 10), wrong=True, low=-7.0)
    t = fit_thresholds(right + confident_but_wrong, target=0.05, min_support=20)
    assert -7.0 < t.min_high <= -1.5
    assert t.details["high_wrong"] == 0 and t.details["high"] == 40


def test_hand_overs_and_blocked_replies_are_not_candidates():
    right = points(steps(-0.2, -0.05, 25), wrong=False)
    set_aside = points([-0.01] * 30, wrong=True, escalated=True) + points(
        [-0.01] * 30, wrong=True, blocked=True
    )
    t = fit_thresholds(right + set_aside, min_support=20)
    assert t.details["candidates"] == 25 and t.details["high_wrong"] == 0
    assert t.details["handed_over"] == 30 and t.details["blocked_by_grounding"] == 30


def test_too_little_evidence_means_nothing_is_high():
    t = fit_thresholds(points(steps(-0.2, -0.05, 10), wrong=False), min_support=20)
    assert t.mean_high == 1.0 and "nothing will be rated high" in t.details["note"]
    signals = Signals(False, -0.01, -0.02, "stop")
    assert decide(signals, t).confidence == "medium"


def test_wilson_bound():
    assert wilson_upper(0, 0) == 1.0
    assert wilson_upper(0, 20) == pytest.approx(0.161, abs=0.001)
    assert wilson_upper(5, 100) > 0.05


def test_calibrate_with_the_tiny_model(tmp_path, tiny_model_dir):
    root = copy_store(indexed_store_template(), tmp_path / "store")
    cfg = yaml.safe_load((root / "store.yaml").read_text())
    cfg["base_model"] = str(tiny_model_dir)
    (root / "store.yaml").write_text(yaml.safe_dump(cfg))
    ws = Workspace(root)
    tiny = replace(load_model_tokenizer(str(tiny_model_dir)), context=1 << 16)
    dataset = build_dataset(ws, model=tiny, progress=False)
    version = save_adapter(tiny_model_dir, ws.models_dir, "support", 1, seed=4)
    info = json.loads((version / "version.json").read_text())
    info |= {"dataset_id": dataset.dataset_id, "base_model_path": str(tiny_model_dir)}
    (version / "version.json").write_text(json.dumps(info))

    from storetune.models.registry import Registry
    from storetune.serve.calibrate import _engine

    class Recording:
        """The engine serving would use, noting how calibration asks it for replies."""

        def __init__(self, inner) -> None:
            self.inner, self.calls = inner, []
            self.max_batch = getattr(inner, "max_batch", 4)

        def generate(self, *args, **kwargs):
            self.calls.append(kwargs)
            return self.inner.generate(*args, **kwargs)

    engine = Recording(_engine(ws, "support@v1", version, Registry(ws.models_dir).info(version)))
    try:
        result = calibrate(
            ws, "support", limit=10, max_new_tokens=6, min_support=3, progress=False, engine=engine
        )
    finally:
        engine.inner.close()
    # replies are decoded as ticket drafts are: greedy, with log-probs, stopped where they loop
    assert engine.calls and all(
        c["temperature"] == 0 and c["logprobs"] and c["stop_repetition"] for c in engine.calls
    )
    assert result.path == ws.root / "calibration" / "support@v1.json"
    d = result.thresholds.details
    assert d["dataset_id"] == dataset.dataset_id and d["model"] == "support@v1"
    assert d["validation_replies"] + d["skipped"] == 10
    assert d["validation_replies"] > 0
    if "high" in d:
        assert d["high_wrong_rate"] <= 0.05 and d["high"] >= 3
    loaded = load_thresholds(ws, "support", 1)
    assert loaded.calibrated and loaded.mean_high == result.thresholds.mean_high
