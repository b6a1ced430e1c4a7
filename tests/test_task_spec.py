"""One catalog-task spec for builder and grader: what the builder writes, the grader scores
correct; what the grader penalises, the builder refuses to write."""

from __future__ import annotations

import json

import pytest

from storetune.config import BuildConfig
from storetune.config.train import ALL_TASKS, SUPPORT_TASKS
from storetune.dataset.builders.tasks import build_tasks, catalog_allowed
from storetune.dataset.context import BuildContext
from storetune.demo.store_gen import generate_demo_store
from storetune.errors import StoretuneError
from storetune.eval.graders import grade
from storetune.eval.records import Case
from storetune.ingest import ingest_workspace
from storetune.store import db
from storetune.tasks import CATALOG_TASKS, TASKS, task_spec, voice_breaches
from storetune.workspace import Workspace

COUNTS = {"classify": 40, "query_rewrite": 40, "review_extract": 40, "description": 30}


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """A small sample store's products and the catalog-task examples built from them."""
    root = tmp_path_factory.mktemp("spec")
    generate_demo_store(root, seed=5, n_products=30, n_tickets=20)
    ws = Workspace(root)
    ingest_workspace(ws, progress=False)
    conn = db.connect(ws.db_path)
    products = db.load_products(conn)
    conn.close()
    examples = build_tasks(BuildContext(ws.config(), BuildConfig(tasks=COUNTS), products, []))
    return products, {t: [ex for ex in examples if ex.task == t] for t in CATALOG_TASKS}


def _case(ex) -> Case:
    return Case(ex.messages[:2], ex.messages[2]["content"], ex.task, ex.category)


def test_the_spec_names_the_tasks_the_dataset_knows():
    # the task tags a dataset and `train.tasks` know: the support ones plus the specs
    assert set(TASKS) == set(CATALOG_TASKS) == set(ALL_TASKS) - set(SUPPORT_TASKS)
    with pytest.raises(StoretuneError, match="unknown catalog task 'summarise'"):
        task_spec("summarise")


@pytest.mark.parametrize("task", CATALOG_TASKS)
def test_every_built_target_keeps_the_spec_and_grades_correct(sample, task):
    products, built = sample
    spec, allowed = TASKS[task], catalog_allowed(task, products)
    assert len(built[task]) >= 10
    for ex in built[task]:
        user, answer = ex.messages[1]["content"], ex.messages[2]["content"]
        assert spec.problems(answer, user, allowed) == [], answer
        g = grade(_case(ex), answer)
        assert g.verdict == "correct", (answer, g.reasons)
        assert not g.task_metrics.get("schema_problems") and not g.hallucinations


def _bad_classify(gold: str, user: str) -> dict[str, str]:
    return {
        "a class outside the taxonomy": "Toys & Games > Toys > Kites",
        "prose instead of a path": "I think it's a jacket.",
        "nothing": "",
    }


def _bad_query(gold: str, user: str) -> dict[str, str]:
    obj = json.loads(gold)
    return {
        "invalid JSON": gold[:-1],
        "prose instead of JSON": "Here are some jackets under $200.",
        "a product type outside the catalog": json.dumps({**obj, "product_type": "Kayaks"}),
        "an unknown key": json.dumps({**obj, "colour": "Red"}),
        "a flag that is not true or false": json.dumps({**obj, "in_stock": "yes"}),
        "a negative price": json.dumps({**obj, "max_price": -5}),
    }


def _bad_review(gold: str, user: str) -> dict[str, str]:
    obj = json.loads(gold)
    rest = {k: v for k, v in obj.items() if k != "would_recommend"}
    return {
        "invalid JSON": gold.replace('"sentiment"', "sentiment"),
        "a sentiment outside the set": json.dumps({**obj, "sentiment": "meh"}),
        "a fit outside the set": json.dumps({**obj, "fit": "small"}),
        "a quality outside the set": json.dumps({**obj, "quality": "medium"}),
        "an issue outside the set": json.dumps({**obj, "issues": ["teleportation"]}),
        "an extra key": json.dumps({**obj, "stars": 4}),
        "a missing key": json.dumps(rest),
    }


def _bad_description(gold: str, user: str) -> dict[str, str]:
    title = user.splitlines()[0].partition(": ")[2]
    return {
        "first person 'my'": gold + " My pick for weekends away.",
        "first person 'I'": "I reckon " + gold,
        "a stock claim": gold + " In stock now.",
        "a price": gold + " Yours for €49.",
        "shouting": gold.rstrip(".!") + "! Go! Now!",
        "too short": gold.split(". ")[0] + ".",
        "a value left out": gold.replace(title, "this one"),
    }


BAD = {
    "classify": _bad_classify,
    "query_rewrite": _bad_query,
    "review_extract": _bad_review,
    "description": _bad_description,
}


@pytest.mark.parametrize("task", CATALOG_TASKS)
def test_bad_outputs_are_rejected_by_the_builder_and_penalised_by_the_grader(sample, task):
    products, built = sample
    spec, allowed = TASKS[task], catalog_allowed(task, products)
    for ex in built[task][:5]:
        user, gold = ex.messages[1]["content"], ex.messages[2]["content"]
        for why, bad in BAD[task](gold, user).items():
            assert bad != gold, why
            assert spec.problems(bad, user, allowed), f"builder would write {why}: {bad!r}"
            g = grade(_case(ex), bad)
            assert g.verdict != "correct", f"grader accepts {why}: {bad!r}"


def test_both_sides_name_the_same_voice_rule(sample):
    """The grader's voice issues are the builder's reasons, rule for rule."""
    _, built = sample
    ex = built["description"][0]
    user, gold = ex.messages[1]["content"], ex.messages[2]["content"]
    for why, bad in _bad_description(gold, user).items():
        breaches = voice_breaches(bad)
        builder = TASKS["description"].problems(bad, user, None)
        grader = grade(_case(ex), bad).task_metrics["voice_issues"]
        assert breaches or why == "a value left out"
        assert builder[: len(breaches)] == [b.message() for b in breaches]
        assert grader == [b.label() for b in breaches]


def test_the_two_rules_the_copies_disagreed_on():
    """'my' was graded down but trained on; stock claims were refused but graded up."""
    text = (
        "The Alpine Mug holds 350 ml and keeps coffee hot through a slow morning at camp. "
        "Its enamel finish shrugs off knocks, and the handle stays cool in the hand. "
        "It comes in Moss, Sand and Black. Rinse and dry after use to keep it looking new."
    )
    user = "title: Alpine Mug\ncolors: Moss, Sand and Black"
    case = Case([{"role": "user", "content": user}], text, "description", "Mugs")
    spec = TASKS["description"]
    assert spec.problems(text, user, None) == [] and grade(case, text).verdict == "correct"
    mine = text.replace("Its enamel finish", "The enamel finish on my own one")
    assert "first person singular ('my')" in spec.problems(mine, user, None)
    assert grade(case, mine).verdict == "partial"
    stocked = text + " Available now while supplies last."
    assert "makes a stock claim" in spec.problems(stocked, user, None)
    g = grade(case, stocked)  # also an unsupported stock fact, so wrong, not partial
    assert g.verdict != "correct" and "makes a stock claim" in g.task_metrics["voice_issues"]
