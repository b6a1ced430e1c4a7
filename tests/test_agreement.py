"""The automatic rubric agrees with the hand-labeled trust set, which covers every task."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from typer.testing import CliRunner

from storetune.cli import app
from storetune.config.train import ALL_TASKS
from storetune.errors import StoretuneError
from storetune.eval.agreement import LABELED_SET, load_labeled, measure_agreement
from storetune.eval.metrics import SAFETY_CATEGORIES


def test_labeled_set_covers_every_task_category_and_label():
    rows, _ = load_labeled()
    assert len(rows) >= 150
    assert {r.case.task for r in rows} == set(ALL_TASKS)
    safety = {r.case.category for r in rows if r.case.task == "safety"}
    assert safety == set(SAFETY_CATEGORIES)
    labels = Counter(r.label for r in rows)
    assert all(labels[k] >= 30 for k in (1, 2, 3)), labels
    assert len({r.id for r in rows}) == len(rows)


def test_rubric_agrees_with_the_support_lead_at_least_90_percent():
    a = measure_agreement()
    assert a.rate >= 0.90, [(r.id, r.label, g.score, g.reasons) for r, g in a.disagreements]
    # every label is recovered, not just the majority one
    assert all(v >= 0.85 for v in a.per_label().values()), a.per_label()
    assert sum(sum(row.values()) for row in a.confusion.values()) == a.n


def test_agreement_command_prints_overall_per_label_and_confusion():
    result = CliRunner().invoke(app, ["eval", "agreement", "--show", "2"])
    assert result.exit_code == 0, result.output
    a = measure_agreement()
    assert f"agreement {a.agree}/{a.n}" in result.output
    assert "grader 3" in result.output and "by task" in result.output


def test_a_broken_labeled_file_names_the_line(tmp_path):
    good = LABELED_SET.read_text(encoding="utf-8").splitlines()[0]
    (tmp_path / "stores.json").write_text((LABELED_SET.parent / "stores.json").read_text())
    bad = json.loads(good)
    bad["label"] = 5
    path = tmp_path / "set.jsonl"
    path.write_text(good + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(StoretuneError, match=r"set\.jsonl line 2: field 'label'"):
        load_labeled(path)
    path.write_text(good + "\n{oops\n")
    with pytest.raises(StoretuneError, match="line 2: not valid JSON"):
        load_labeled(path)
