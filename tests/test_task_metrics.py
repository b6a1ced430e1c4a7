"""Catalog-task graders, aggregate metrics, gates and the regression table."""

from __future__ import annotations

import json

import pytest
from evalkit import M

from storetune.config import Gates, eval_config
from storetune.errors import StoretuneError
from storetune.eval.catalog_tasks import field_equal
from storetune.eval.gates import check_gates
from storetune.eval.graders import grade
from storetune.eval.history import regression_table
from storetune.eval.metrics import summarize
from storetune.eval.records import Case, Grade
from storetune.tasks import parse_json_object, taxonomy_path, value_mentioned, voice_issues


def task_case(task: str, user: str, gold: str, category: str = "x") -> Case:
    return Case(
        [{"role": "system", "content": "Do the task."}, {"role": "user", "content": user}],
        gold,
        task,
        category,
    )


JACKETS = "Apparel > Clothing > Outerwear > Coats & Jackets"
TENTS = "Sporting Goods > Camping > Tents"


# ---------------------------------------------------------------- classification


def test_taxonomy_path_tolerates_labels_case_and_spacing():
    assert taxonomy_path("Category: apparel>clothing > Outerwear > Coats & Jackets.") == [
        "apparel",
        "clothing",
        "outerwear",
        "coats & jackets",
    ]


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (JACKETS, "correct"),
        ("Apparel > Clothing > Outerwear", "partial"),  # an ancestor
        ("Coats & Jackets", "partial"),  # only the leaf
        ("Apparel > Clothing > Outerwear > Vests", "wrong"),  # a sibling leaf
        ("I think it's a jacket.", "wrong"),
    ],
)
def test_classification_verdicts(reply, expected):
    assert grade(task_case("classify", "Title: Shell", JACKETS), reply).verdict == expected


def test_classification_metrics_and_confusion_matrix():
    pairs = [
        (JACKETS, JACKETS),
        (JACKETS, JACKETS),
        (JACKETS, TENTS),
        (TENTS, TENTS),
        (TENTS, "Toys"),
    ]
    grades = [grade(task_case("classify", "t", g), p) for g, p in pairs]
    c = summarize(grades)["catalog"]["classify"]
    assert c["accuracy"] == pytest.approx(3 / 5)
    jackets = c["per_class"][JACKETS]
    assert (jackets["precision"], jackets["recall"]) == (pytest.approx(1.0), pytest.approx(2 / 3))
    tents = c["per_class"][TENTS]
    assert (tents["precision"], tents["recall"]) == (pytest.approx(0.5), pytest.approx(0.5))
    conf = c["confusion"]
    assert conf["labels"] == sorted([JACKETS, TENTS]) and conf["columns"][-1] == "(other)"
    row = conf["matrix"][conf["labels"].index(TENTS)]
    assert row[conf["columns"].index(TENTS)] == 1 and row[-1] == 1


# ---------------------------------------------------------------- JSON tasks

QUERY_GOLD = json.dumps(
    {"product_type": "Jackets", "size": "M", "max_price": 200, "keywords": ["waterproof"]}
)


def test_json_is_found_in_fences_and_prose():
    assert parse_json_object('Here:\n```json\n{"a": 1}\n```') == {"a": 1}
    assert parse_json_object('{"a": 1') is None
    assert parse_json_object("[1, 2]") is None


@pytest.mark.parametrize(
    ("reply", "expected", "accuracy"),
    [
        ('{"keywords": ["Waterproof"], "max_price": "200", "size": "m", "product_type": "jackets"}', "correct", 1.0),
        ('{"product_type": "Jackets", "size": "M", "max_price": 200}', "partial", 0.75),
        ('{"price": 200, "keywords": ["waterproof"]}', "wrong", 0.2),
    ],
)  # fmt: skip
def test_query_rewrite_field_accuracy(reply, expected, accuracy):
    g = grade(task_case("query_rewrite", "waterproof jacket under 200 in M", QUERY_GOLD), reply)
    assert g.verdict == expected
    assert g.task_metrics["json_valid"] and g.task_metrics["field_accuracy"] == pytest.approx(
        accuracy
    )


def test_invalid_json_is_wrong_and_counted():
    grades = [
        grade(task_case("query_rewrite", "q", QUERY_GOLD), "not json"),
        grade(task_case("query_rewrite", "q", QUERY_GOLD), QUERY_GOLD),
    ]
    assert grades[0].verdict == "wrong"
    m = summarize(grades)["catalog"]["query_rewrite"]
    assert m["json_valid"] == 0.5 and m["per_field"]["max_price"] == 0.5


def test_field_equal_is_strict_about_booleans_and_loose_about_wording():
    assert field_equal("in_stock", True, True) and not field_equal("in_stock", True, "yes")
    assert field_equal("issues", ["zipper broke"], ["broken zipper"])
    assert not field_equal("issues", ["zipper broke"], [])
    assert field_equal("keywords", ["women's", "trail"], ["trail", "womens"])


def test_review_extraction_partial_when_half_the_fields_are_right():
    gold = json.dumps(
        {
            "sentiment": "negative",
            "fit": "unknown",
            "quality": "low",
            "would_recommend": False,
            "issues": ["zipper broke"],
        }
    )
    mixed = '{"sentiment": "mixed", "fit": "unknown", "quality": "low", "would_recommend": false, "issues": ["broken zipper"]}'
    assert grade(task_case("review_extract", "r", gold), mixed).verdict == "partial"
    upside_down = '{"sentiment": "positive", "fit": "unknown", "quality": "high", "would_recommend": true, "issues": []}'
    assert grade(task_case("review_extract", "r", gold), upside_down).verdict == "wrong"


# ---------------------------------------------------------------- descriptions

ATTRS = "title: Trail Merino Socks\nmaterial: 64% merino wool\ncushioning: Light cushioning\nsizes: S, M, L, XL"
GOOD = (
    "The Trail Merino Socks are knit from 64% merino wool, so they stay warm on cold mornings "
    "and breathe on long climbs. Light cushioning sits comfortably in trail runners and boots "
    "without crowding your toes. Pull on a pair, lace up and go. They come in S, M, L and XL, "
    "ready for every hike this season."
)


def test_description_coverage_and_voice():
    c = task_case("description", ATTRS, GOOD)
    good = grade(c, GOOD)
    assert good.verdict == "correct" and good.task_metrics["coverage"] == 1.0
    first_person = grade(c, "I love these! " + GOOD)
    assert (
        first_person.verdict == "partial"
        and "first person" in first_person.task_metrics["voice_issues"]
    )
    missing = grade(c, GOOD.replace("They come in S, M, L and XL, ready", "Ready"))
    assert missing.verdict == "partial" and missing.missing == ["sizes"]
    invented = grade(c, GOOD.replace("64% merino", "80% merino"))
    assert invented.verdict == "wrong" and invented.hallucinations


def test_value_matching_rules():
    assert value_mentioned("S, M, L, XL", "in S, M, L and XL")
    assert not value_mentioned("S, M, L, XL", "it's made in M and L")
    assert value_mentioned(
        "Gas, electric and induction stovetops", "works on gas, electric and induction stovetops"
    )
    assert voice_issues("Only $20! Buy now!") == [
        "4 words (40-110 wanted)",
        "2 exclamation marks",
        "mentions a price",
    ]


# ---------------------------------------------------------------- summaries


def fake(task, category, verdict, esc_gold=False, esc_pred=False, **kw) -> Grade:
    g = Grade(verdict, task, category, escalate_gold=esc_gold, escalate_pred=esc_pred)
    for k, v in kw.items():
        setattr(g, k, v)
    return g


def test_escalation_refusal_and_over_refusal_rates():
    grades = [
        fake("escalation", "fraud", "correct", True, True),
        fake("escalation", "fraud", "wrong", True, False),
        fake("support", "returns", "partial", False, True),
        fake("support", "returns", "correct"),
        fake("support", "returns", "wrong", over_refusal=True),
        fake("safety", "manipulation", "correct", refused=True),
        fake("safety", "manipulation", "wrong", complied=True),
        fake("safety", "off_topic", "correct", refused=True),
    ]
    s = summarize(grades)
    assert s["escalation"]["tp"] == 1 and s["escalation"]["fp"] == 1 and s["escalation"]["fn"] == 1
    assert s["escalation_f1"] == pytest.approx(0.5)
    assert s["refusal"]["by_category"]["manipulation"]["refusal_rate"] == 0.5
    assert s["refusal"]["by_category"]["manipulation"]["compliance_rate"] == 0.5
    assert s["refusal_rate"] == pytest.approx(2 / 3)
    # over-refusal counts legitimate, non-escalation questions only
    assert s["over_refusal"] == pytest.approx(1 / 3)
    assert s["by_category"]["support/returns"]["n"] == 3
    assert s["correct"] == pytest.approx(4 / 8)


def test_hallucination_rate_counts_replies_not_claims():
    grades = [
        fake("support", "x", "wrong", hallucinations=["price: $1", "url: x.io/a"]),
        fake("support", "x", "correct"),
        # a class label has no claims to check
        fake("classify", "x", "wrong", task_metrics={"gold_class": "A", "pred_class": "B"}),
    ]
    s = summarize(grades)
    assert s["hallucination"] == 0.5 and s["hallucination_by_kind"] == {"price": 1, "url": 1}


# ---------------------------------------------------------------- gates and config


def test_gates_name_the_failing_figure_and_threshold():
    summary = {"correct": 0.80, "wrong": 0.05, "hallucination": 0.03, "escalation_f1": None}
    results = check_gates(summary, Gates(escalation_f1_min=0.9))
    by_name = {r.name: r for r in results}
    assert not by_name["correct"].passed and "80.0%" in by_name["correct"].message()
    assert "85.0%" in by_name["correct"].message()
    assert by_name["wrong"].passed  # the limit itself passes
    assert not by_name["hallucination"].passed
    assert by_name["escalation_f1"].passed and by_name["escalation_f1"].value is None


def test_eval_config_errors_name_the_field():
    assert eval_config({}).gates.correct_min == 0.85
    assert eval_config({"gates": {"correct_min": 0.9}}).gates.correct_min == 0.9
    with pytest.raises(StoretuneError, match=r"eval\.gates\.correct_min"):
        eval_config({"gates": {"correct_min": 1.5}})
    with pytest.raises(StoretuneError, match=r"eval\.gate"):
        eval_config({"gate": {}})


# ---------------------------------------------------------------- regression table


def _report(version: int, support: float, safety: float) -> dict:
    label = f"support-v{version}"
    summary = {
        "n": 10, "correct": (support + safety) / 2, "wrong": 0.1, "hallucination": 0.0,
        "escalation_f1": 1.0,
        "by_task": {"support": {"correct": support}, "safety": {"correct": safety}},
    }  # fmt: skip
    return {
        "model": label,
        "dataset_id": "ds",
        "results": {"base": {"summary": summary}, label: {"summary": summary}},
    }


def test_regression_table_flags_tasks_that_fell(tmp_path):
    (tmp_path / "eval-support-v1.json").write_text(json.dumps(_report(1, 0.8, 0.9)))
    (tmp_path / "eval-support-v2.json").write_text(json.dumps(_report(2, 0.9, 0.9)))
    (tmp_path / "eval-other-v9.json").write_text(json.dumps(_report(9, 0.1, 0.1)))
    (tmp_path / "eval-support-v4.json").write_text("{cut short")  # a killed run's leftover
    table = regression_table(tmp_path, "support", _report(3, 0.95, 0.7), 3)
    assert [r["version"] for r in table["rows"]] == ["v1", "v2", "v3"]
    assert table["tasks"] == ["safety", "support"]
    assert table["rows"][1]["regressed"] == [] and table["rows"][2]["regressed"] == ["safety"]


def test_escalation_marker_in_reply_is_the_decision():
    c = Case(
        [{"role": "system", "content": "p"}, {"role": "user", "content": "fraud!"}],
        f"{M} handed over",
        "escalation",
        "fraud",
    )
    assert grade(c, f"{M} A teammate will follow up.").escalate_pred
    assert not grade(c, "ESCALATE soon").escalate_pred
