"""Catalog-task builders: exact formats, catalog-valid values, voice rules, determinism."""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal

import pytest

from storetune.chat.prompt import render_task_prompt
from storetune.config import BuildConfig, TaskMix
from storetune.dataset.builders.tasks import (
    build_tasks,
    catalog_taxonomy,
    query_vocabulary,
    task_prompt,
    taxonomy_label,
)
from storetune.dataset.context import BuildContext
from storetune.demo.store_gen import generate_demo_store
from storetune.errors import StoretuneError
from storetune.ingest import ingest_workspace
from storetune.store import db
from storetune.store.records import Product, Variant
from storetune.tasks import (
    CATALOG_TASKS,
    QUERY_FIELDS,
    REVIEW_FIELDS,
    REVIEW_ISSUES,
    description_attributes,
    description_problems,
    missing_attribute_values,
    validate_query,
    validate_review,
)
from storetune.workspace import Workspace


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("tasks")
    generate_demo_store(root, seed=3, n_products=40, n_tickets=30)
    ws = Workspace(root)
    ingest_workspace(ws, progress=False)
    conn = db.connect(ws.db_path)
    products = db.load_products(conn)
    conn.close()
    return ws.config(), products


def _ctx(store, **build) -> BuildContext:
    cfg, products = store
    return BuildContext(cfg, BuildConfig(**build), products, [])


@pytest.fixture(scope="module")
def built(store):
    examples = build_tasks(_ctx(store))
    by_task: dict[str, list] = {t: [] for t in CATALOG_TASKS}
    for ex in examples:
        by_task[ex.task].append(ex)
    return by_task


def _product(store, ex) -> Product:
    handle = ex.group.removeprefix("product:")
    return next(p for p in store[1] if p.handle == handle)


def _roles(ex) -> list[str]:
    return [m["role"] for m in ex.messages]


def test_default_counts_follow_config_and_every_example_has_the_chat_shape(store, built):
    mix = TaskMix()
    assert {t: len(v) for t, v in built.items()} == {
        "classify": mix.classify,
        "query_rewrite": mix.query_rewrite,
        "review_extract": mix.review_extract,
        "description": mix.description,
    }
    for task, examples in built.items():
        for ex in examples:
            assert _roles(ex) == ["system", "user", "assistant"]
            assert ex.builder == "tasks" and ex.group.startswith("product:")
            assert ex.source_ids == [ex.group]
            assert _product(store, ex).active
            assert all(m["content"].strip() for m in ex.messages)
        # within a task no two examples repeat an input
        assert len({ex.messages[1]["content"] for ex in examples}) == len(examples), task


def test_custom_counts_and_zero(store):
    examples = build_tasks(
        _ctx(
            store,
            tasks={"classify": 7, "query_rewrite": 0, "review_extract": 3, "description": 2},
        )
    )
    assert Counter(ex.task for ex in examples) == {
        "classify": 7,
        "review_extract": 3,
        "description": 2,
    }


def test_only_active_products_with_real_pages_are_used(store):
    cfg, products = store
    inactive = {p.handle for p in products if not p.active}
    placeholder = {p.handle for p in products if p.active and "placeholder" in p.flags}
    assert inactive and placeholder  # drafts, archived and "Description coming soon" pages
    inactive |= placeholder
    examples = build_tasks(_ctx(store, tasks={"classify": 500, "description": 200}))
    assert not {ex.group.removeprefix("product:") for ex in examples} & inactive


def test_classify_labels_are_the_products_own_taxonomy_path(store, built):
    cfg, products = store
    active = [p for p in products if p.active and p.variants]
    paths = catalog_taxonomy(active)
    assert len(paths) > 5 and all(" > " in path for path in paths)
    system = built["classify"][0].messages[0]["content"]
    for path in paths:
        assert f"- {path}\n" in system + "\n"
    for ex in built["classify"]:
        p = _product(store, ex)
        answer = ex.messages[2]["content"]
        assert answer == p.category == taxonomy_label(p)
        assert answer in paths
        assert ex.category == answer.split(" > ")[0]
        assert p.title.lower() in ex.messages[1]["content"].lower()
    assert len({ex.category for ex in built["classify"]}) >= 3


def test_classify_falls_back_to_product_type_and_skips_unlabelled(store):
    cfg, _ = store
    variant = [Variant(sku="X-1", options={}, price=Decimal("10"))]
    products = [
        Product(
            handle="a", title="Camp Mug", description="", product_type="Mugs", variants=variant
        ),
        Product(handle="b", title="Mystery Thing", description="", variants=variant),
    ]
    ctx = BuildContext(cfg, BuildConfig(tasks={"classify": 50}), products, [])
    examples = [ex for ex in build_tasks(ctx) if ex.task == "classify"]
    assert examples and {ex.messages[2]["content"] for ex in examples} == {"Mugs"}
    assert {ex.group for ex in examples} == {"product:a"}


def _satisfied_by(gold: dict, p: Product) -> bool:
    """Some variant of the source product meets every filter in the gold."""
    if "product_type" in gold and gold["product_type"] != p.product_type:
        return False
    if "keywords" in gold and not set(gold["keywords"]) <= set(p.tags):
        return False
    for v in p.variants:
        opts = {k.lower(): val for k, val in v.options.items()}
        if "color" in gold and opts.get("color") != gold["color"]:
            continue
        if "size" in gold and opts.get("size") != gold["size"]:
            continue
        if "max_price" in gold and v.price > gold["max_price"]:
            continue
        if "min_price" in gold and v.price < gold["min_price"]:
            continue
        if gold.get("in_stock") and not v.in_stock:
            continue
        if gold.get("on_sale") and not v.on_sale:
            continue
        return True
    return False


def test_query_rewrite_json_is_exact_and_valid_for_the_catalog(store, built):
    cfg, products = store
    vocab = query_vocabulary(products)
    assert vocab.color and vocab.size and vocab.product_type
    system = built["query_rewrite"][0].messages[0]["content"]
    assert f"product_type: {' | '.join(vocab.product_type)}" in system
    assert f"color: {' | '.join(vocab.color)}" in system
    seen_keys: set[str] = set()
    for ex in built["query_rewrite"]:
        user, answer = ex.messages[1]["content"], ex.messages[2]["content"]
        gold = json.loads(answer)
        assert answer == json.dumps(gold, sort_keys=True)
        assert gold and set(gold) <= set(QUERY_FIELDS)
        assert validate_query(gold, vocab) == []
        assert _satisfied_by(gold, _product(store, ex)), (user, answer)
        low = user.lower()
        # values a shopper typed must be in the text; typos never touch them
        for kw in gold.get("keywords", []):
            assert kw == kw.lower() and kw in low
        if "color" in gold:
            assert gold["color"].lower() in low
        for key in ("max_price", "min_price"):
            if key in gold:
                assert isinstance(gold[key], int) and str(gold[key]) in user
        assert gold.get("in_stock", True) is True and gold.get("on_sale", True) is True
        seen_keys |= set(gold)
        kinds = ex.category.split("+")
        assert ("type" in kinds) == ("product_type" in gold)
        assert ("price" in kinds) == bool({"max_price", "min_price"} & set(gold))
    assert seen_keys == set(QUERY_FIELDS)


def test_validate_query_flags_values_the_catalog_does_not_have(store):
    vocab = query_vocabulary(store[1])
    bad = {"product_type": "Kayaks", "colour": "Red", "max_price": "cheap", "keywords": ["UP"]}
    problems = validate_query(bad, vocab)
    assert len(problems) == 4
    assert validate_query({"product_type": vocab.product_type[0], "in_stock": True}, vocab) == []


def test_review_extract_json_has_exactly_the_schema(store, built):
    assert list(REVIEW_ISSUES) == sorted(REVIEW_ISSUES)
    sentiments = Counter()
    for ex in built["review_extract"]:
        answer = ex.messages[2]["content"]
        gold = json.loads(answer)
        assert answer == json.dumps(gold, sort_keys=True)
        assert set(gold) == set(REVIEW_FIELDS)
        assert validate_review(gold) == []
        assert ex.category == gold["sentiment"]
        sentiments[gold["sentiment"]] += 1
        p = _product(store, ex)
        if not any("size" in {k.lower() for k in v.options} for v in p.variants):
            assert gold["fit"] is None
        if gold["sentiment"] == "positive":
            assert gold["issues"] == [] and gold["quality"] != "low"
        if gold["sentiment"] == "negative":
            assert gold["issues"] and gold["would_recommend"] is not True
    assert set(sentiments) == {"positive", "negative", "mixed"}
    fits = {json.loads(ex.messages[2]["content"])["fit"] for ex in built["review_extract"]}
    assert fits == {None, "runs small", "true to size", "runs large"}


def test_validate_review_rejects_bad_answers():
    good = {
        "fit": None,
        "issues": ["shipping", "zipper"],
        "quality": "high",
        "sentiment": "mixed",
        "would_recommend": None,
    }
    assert validate_review(good) == []
    assert validate_review({**good, "issues": ["zipper", "shipping"]})  # unsorted
    assert validate_review({**good, "issues": ["teleportation"]})
    assert validate_review({**good, "sentiment": "meh"})
    assert validate_review({**good, "extra": 1})
    assert validate_review([good])


def test_descriptions_mention_every_attribute_and_keep_the_voice_rules(store, built):
    for ex in built["description"]:
        user, text = ex.messages[1]["content"], ex.messages[2]["content"]
        attrs = description_attributes(user)
        assert list(attrs)[:2] == ["title", "type"]
        assert len(attrs) >= 3
        assert user == "\n".join(f"{k}: {v}" for k, v in attrs.items())
        assert missing_attribute_values(text, attrs) == []
        assert description_problems(text) == []
        p = _product(store, ex)
        assert not p.flags and attrs["title"] == p.title and ex.category == p.product_type
        assert "$" not in text and "!" not in text  # the sample voice says "no hype"
    system = built["description"][0].messages[0]["content"]
    assert f"Voice: {store[0].brand.voice}" in system


def test_description_checkers_catch_broken_descriptions():
    attrs = description_attributes(
        "title: Alpine Mug\ntype: Mugs\ncolors: Moss, Sand and Black\nweight: 120 g"
    )
    assert attrs == {
        "title": "Alpine Mug",
        "type": "Mugs",
        "colors": "Moss, Sand and Black",
        "weight": "120 g",
    }
    text = "The Alpine Mug from our mugs range comes in black, moss and sand and weighs 120 g."
    assert missing_attribute_values(text, attrs) == []
    assert missing_attribute_values(text.replace("sand", "rust"), attrs) == ["colors: Sand"]
    filler = " plain words" * 20
    assert description_problems("Short.") == ["1 words, expected 40-110"]
    assert description_problems("I love it!!" + filler) == [
        "first person singular ('I')",
        "2 exclamation marks, at most 1",
    ]
    assert description_problems("Only $49.95 and in stock now." + filler) == [
        "mentions a price",
        "makes a stock claim",
    ]
    assert description_problems("A fine mug." + filler) == []


def test_same_seed_same_examples_other_seed_different(store):
    first = build_tasks(_ctx(store))
    again = build_tasks(_ctx(store))
    other = build_tasks(_ctx(store, seed=1))
    assert [e.messages for e in first] == [e.messages for e in again]
    for task in CATALOG_TASKS:
        a = [e.messages for e in first if e.task == task]
        b = [e.messages for e in other if e.task == task]
        assert a != b, task


def test_task_prompt_rebuilds_the_training_prompt(store, built):
    cfg, products = store
    for task, examples in built.items():
        assert task_prompt(cfg, task, products) == examples[0].messages[0]["content"]
        assert cfg.brand.name in examples[0].messages[0]["content"]
        assert len({ex.messages[0]["content"] for ex in examples}) == 1
    with pytest.raises(StoretuneError, match="unknown catalog task 'summarise'"):
        render_task_prompt(cfg, "summarise")
