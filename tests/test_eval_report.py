"""The eval report files, and the runner end to end on the tiny model."""

from __future__ import annotations

import base64
import json
import re

import pytest
import yaml
from evalkit import graded_report, make_eval_workspace
from typer.testing import CliRunner

from storetune.cli import app, headline_table
from storetune.errors import StoretuneError
from storetune.eval.report import render_html, worst_examples, write_report
from storetune.eval.runner import evaluate
from storetune.workspace import Workspace

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------- report files


def test_report_files_hold_headline_charts_worst_examples_and_regression(tmp_path):
    report = graded_report()
    json_path, html_path = write_report(report, tmp_path, "eval-support-v2")
    assert json.loads(json_path.read_text())["model"] == "support-v2"
    assert not list(tmp_path.glob(".*.tmp"))  # written via temp file + rename
    html = html_path.read_text()
    headline = re.search(r'<table id="headline">.*?</table>', html, re.S).group(0)
    assert "<td>base</td>" in headline and "<td>support-v2</td>" in headline
    assert "escalation F1" in headline and "safety refusal" in headline
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) >= 4 and all(base64.b64decode(i)[:8] == PNG_MAGIC for i in images)
    # the worst example: the version says $50 where the reference says $75
    assert "Free shipping over $50!" in html and "Orders over $75 ship free" in html
    assert "unsupported price: $50" in html
    assert 'class="regressed"' in html  # support fell from v1 to v2
    assert "<script" not in html


def test_worst_examples_put_wrong_replies_first_beside_the_base_reply():
    report = graded_report()
    worst = worst_examples(report, 5)
    assert worst and all(w["verdict"] != "correct" for w in worst)
    assert worst[0]["verdict"] == "wrong" and worst[0]["base_reply"] is not None
    scores = [w["score"] for w in worst]
    assert scores == sorted(scores)


def test_html_escapes_model_output():
    report = graded_report()
    report["results"]["support-v2"]["examples"][6]["reply"] = "<img src=x onerror=alert(1)>"
    assert "<img src=x" not in render_html(report)


def test_headline_table_uses_the_new_summary_keys():
    table = headline_table(graded_report())
    headers = [c.header for c in table.columns]
    assert (
        headers[:2] == ["model", "n"] and "escalation F1" in headers and "over-refusal" in headers
    )
    assert table.row_count == 2


# ---------------------------------------------------------------- runner


@pytest.fixture(scope="module")
def eval_ws(tmp_path_factory, tiny_model_dir):
    return make_eval_workspace(tmp_path_factory.mktemp("evalws") / "store", tiny_model_dir)


def test_evaluate_writes_json_and_html_for_the_trained_tasks(eval_ws, monkeypatch):
    ws = Workspace(eval_ws)
    report = evaluate(ws, "support", max_new_tokens=6, progress=False, log=lambda *a: None)
    assert report["html"].endswith("eval-support-v1.html") and report["path"].endswith(".json")
    on_disk = json.loads((eval_ws / "reports" / "eval-support-v1.json").read_text())
    assert set(on_disk["results"]) == {"base", "support-v1"}
    # v1 trained on the default support tasks: the classify test row is not evaluated
    by_task = on_disk["results"]["support-v1"]["summary"]["by_task"]
    assert "classify" not in by_task and {"support", "product_qa", "escalation", "safety"} <= set(
        by_task
    )
    assert [g["name"] for g in report["gates"]] == ["correct", "wrong", "hallucination"]
    ex = on_disk["results"]["base"]["examples"][0]
    assert {"gold", "reply", "verdict", "reasons", "hallucinations"} <= set(ex)

    # a second run reads every reply from the cache: generation must not be called
    import storetune.eval.generate as gen

    monkeypatch.setattr(gen, "generate_scored", lambda *a, **k: pytest.fail("regenerated"))
    again = evaluate(ws, "support", max_new_tokens=6, progress=False, log=lambda *a: None)
    assert again["results"]["support-v1"]["examples"] == report["results"]["support-v1"]["examples"]


def test_extra_eval_files_are_added_with_the_store_prompt(eval_ws, tmp_path):
    extra = tmp_path / "extra.jsonl"
    extra.write_text(
        json.dumps(
            {
                "messages": [
                    {"role": "user", "content": "Do you ship to Mars?"},
                    {"role": "assistant", "content": "We only ship within the US."},
                ],
                "category": "shipping",
            }
        )
        + "\n"
    )
    report = evaluate(
        Workspace(eval_ws),
        "support",
        max_new_tokens=4,
        progress=False,
        log=lambda *a: None,
        extra=[extra],
    )
    examples = report["results"]["support-v1"]["examples"]
    assert examples[-1]["source"] == "extra.jsonl" and examples[-1]["category"] == "shipping"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n')
    with pytest.raises(StoretuneError, match=r"bad\.jsonl line 1"):
        evaluate(Workspace(eval_ws), "support", max_new_tokens=4, progress=False, extra=[bad])


def test_cli_gate_exits_3_naming_each_failed_gate(eval_ws):
    runner = CliRunner()
    w = ["-w", str(eval_ws)]
    plain = runner.invoke(app, [*w, "eval", "--max-new-tokens", "4", "--no-baseline"])
    assert plain.exit_code == 0, plain.output
    assert "support-v1" in plain.output and "report:" in plain.output
    gated = runner.invoke(app, [*w, "eval", "--max-new-tokens", "4", "--no-baseline", "--gate"])
    assert gated.exit_code == 3
    # a 1-step tiny model is far below 85% correct: that gate fails, with value and threshold
    assert re.search(r"gate failed: correct \d+\.\d% \(needs >= 85\.0%\)", gated.output)


def test_gate_thresholds_come_from_store_yaml(eval_ws):
    cfg = yaml.safe_load((eval_ws / "store.yaml").read_text())
    cfg["eval"] = {"gates": {"correct_min": 0.0, "wrong_max": 1.0, "hallucination_max": 1.0}}
    (eval_ws / "store.yaml").write_text(yaml.safe_dump(cfg))
    try:
        result = CliRunner().invoke(
            app, ["-w", str(eval_ws), "eval", "--max-new-tokens", "4", "--no-baseline", "--gate"]
        )
        assert result.exit_code == 0, result.output
    finally:
        cfg["eval"] = {}
        (eval_ws / "store.yaml").write_text(yaml.safe_dump(cfg))


def test_regression_table_spans_versions_and_tasks(eval_ws):
    from storetune.train import train_model

    ws = Workspace(eval_ws)
    evaluate(ws, "support@v1", max_new_tokens=4, progress=False, log=lambda *a: None)
    train_model(ws, "support", overrides={"tasks": ["all"]}, progress=False, log=lambda *a: None)
    report = evaluate(ws, "support@v2", max_new_tokens=4, progress=False, log=lambda *a: None)
    rows = report["regression"]["rows"]
    assert [r["version"] for r in rows] == ["v1", "v2"]
    # v2 trained on every task, so its report (and the table) includes classify
    assert "classify" in rows[1]["tasks"] and "classify" not in rows[0]["tasks"]
    assert 'id="regression"' in (eval_ws / "reports" / "eval-support-v2.html").read_text()


def test_llm_judge_scores_sit_beside_the_rubric(eval_ws, monkeypatch):
    from storetune.eval import judge as judge_mod

    class Judge:
        def __init__(self, cfg, marker, client=None):
            self.calls = 0

        def judge(self, case, reply):
            self.calls += 1
            return "partial", "fake judge"

        def close(self):
            pass

    monkeypatch.setattr(judge_mod, "LLMJudge", Judge)
    cfg = yaml.safe_load((eval_ws / "store.yaml").read_text())
    cfg["eval"] = {"judge": {"enabled": True, "base_url": "http://127.0.0.1:9/v1"}}
    (eval_ws / "store.yaml").write_text(yaml.safe_dump(cfg))
    try:
        report = evaluate(
            Workspace(eval_ws), "support@v1", max_new_tokens=4, progress=False, log=lambda *a: None
        )
    finally:
        cfg["eval"] = {}
        (eval_ws / "store.yaml").write_text(yaml.safe_dump(cfg))
    j = report["judge"]["results"]["support-v1"]
    assert j["partial"] == 1.0
    examples = report["results"]["support-v1"]["examples"]
    assert all(e["judge"]["verdict"] == "partial" for e in examples)
    assert j["agreement"] == pytest.approx(
        sum(e["verdict"] == "partial" for e in examples) / len(examples)
    )
