"""Dataset validation: each finding has a file that triggers it and one that doesn't;
duplicates and leakage; token figures equal training's; the CLI; the build report."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml
from datasketch import MinHash
from typer.testing import CliRunner

from storetune.chat.tokenize import tokenize_chat
from storetune.cli import app
from storetune.dataset import dedup
from storetune.dataset.build import build_dataset, resolve_dataset
from storetune.dataset.example import Example
from storetune.dataset.validate import (
    CHECKS,
    ChatTokens,
    ModelTokenizer,
    load_model_tokenizer,
    pii_in,
    placeholder_kinds,
    validate_dataset,
    validate_file,
)
from storetune.demo.store_gen import generate_demo_store
from storetune.errors import StoretuneError
from storetune.ingest import ingest_workspace
from storetune.workspace import Workspace

SYSTEM = "You are the support assistant of Pine Co. Contact: help@pineco.example, +1 503 555 0142."
WORDS = (
    "jacket boots tent stove fleece socks return refund exchange size colour order parcel "
    "delivery weekend trail river summit cedar pine alpine rain wind snow warm light heavy "
    "blue green black red small medium large week month price sale stock care wash dry"
).split()


@pytest.fixture(scope="module")
def tiny(tiny_model_dir) -> ModelTokenizer:
    # The test tokenizer has a 400-token vocabulary, so its examples run ~3x longer
    # than a real model's; give it room so only the tests that mean to hit a limit do.
    return replace(load_model_tokenizer(str(tiny_model_dir)), context=1 << 16)


def chat(user: str, reply: str, system: str | None = SYSTEM) -> dict:
    msgs = [{"role": "system", "content": system}] if system else []
    return {
        "messages": msgs
        + [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]
    }


def varied(n: int, seed: int = 0) -> list[dict]:
    """n well-formed examples whose texts share little (no duplicate warnings)."""
    rng = random.Random(seed)
    return [
        chat(
            f"Question {i}: " + " ".join(rng.choices(WORDS, k=12)) + "?",
            f"Answer {i}. " + " ".join(rng.choices(WORDS, k=16)) + ".",
        )
        for i in range(n)
    ]


def write(path: Path, rows: list) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r) for r in rows]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def codes(report) -> dict[str, list]:
    out: dict[str, list] = {}
    for f in report.findings:
        out.setdefault(f.code, []).append(f)
    return out


def lines_of(report, code: str, file: str | None = None) -> list[int]:
    return sorted(
        n
        for f in report.findings
        if f.code == code
        for name, ns in f.locations.items()
        if file is None or name == file
        for n in ns
    )


# --- structure (errors) ---------------------------------------------------------------

BROKEN = {
    "invalid_json": ['{"messages": [{"role": "user", "content": "hi"}'],
    "missing_messages": [{"prompt": "hi", "completion": "hello"}, {"messages": []}],
    "bad_message": [
        {"messages": [{"role": "user", "content": ["hi"]}, {"role": "assistant", "content": "x"}]},
        {
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "x", "weight": 2},
            ]
        },
    ],
    "unknown_role": [
        {"messages": [{"role": "customer", "content": "hi"}, {"role": "assistant", "content": "x"}]}
    ],
    "empty_content": [chat("   ", "We can help.")],
    "no_assistant": [
        {"messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "hi"}]}
    ],
}


@pytest.mark.parametrize("code", sorted(BROKEN))
def test_structural_errors_name_the_line(tmp_path, tiny, code):
    bad = write(tmp_path / "bad.jsonl", [*varied(2), *BROKEN[code], *varied(2, seed=1)])
    report = validate_file(bad, tiny)
    assert CHECKS[code][0] == "error" and not report.ok
    assert lines_of(report, code) == list(range(3, 3 + len(BROKEN[code])))
    assert report.examples["bad.jsonl"] == 4  # the broken lines are not measured

    clean = validate_file(write(tmp_path / "clean.jsonl", varied(4)), tiny)
    assert code not in codes(clean) and clean.ok


def test_too_long_uses_the_real_tokenizer_and_template(tmp_path, tiny):
    rows = varied(3)
    lengths = [len(tokenize_chat(tiny.tokenizer, r["messages"], 1 << 20).input_ids) for r in rows]
    path = write(tmp_path / "a.jsonl", rows)
    limit = sorted(lengths)[1]  # the longest example is over, the others are not
    report = validate_file(path, tiny, max_length=limit)
    assert lines_of(report, "too_long") == [lengths.index(max(lengths)) + 1]
    assert f"{max(lengths):,}" in codes(report)["too_long"][0].message
    assert "too_long" not in codes(validate_file(path, tiny, max_length=max(lengths)))


def test_examples_longer_than_train_max_length_warn_that_training_cuts_them(tmp_path, tiny):
    rows = varied(3)
    lengths = [len(tokenize_chat(tiny.tokenizer, r["messages"], 1 << 20).input_ids) for r in rows]
    path = write(tmp_path / "a.jsonl", rows)
    report = validate_file(path, tiny, train_max_length=min(lengths))
    assert lines_of(report, "truncated") == [
        i + 1 for i, n in enumerate(lengths) if n > min(lengths)
    ]
    assert report.ok  # a warning only
    assert "truncated" not in codes(validate_file(path, tiny, train_max_length=max(lengths)))


def test_for_storetune_training_longer_than_the_model_is_an_error_even_if_cut(tmp_path, tiny):
    # issue 16 item 9: training would cut it to train.max_length, but an example over
    # the model's context still fails (README); one between the two only warns
    rows = varied(3)
    lengths = [len(tokenize_chat(tiny.tokenizer, r["messages"], 1 << 20).input_ids) for r in rows]
    path = write(tmp_path / "a.jsonl", rows)
    limit = min(lengths)  # the model's context, say; two examples are longer
    over = [i + 1 for i, n in enumerate(lengths) if n > limit]
    cut = validate_file(
        path, tiny, max_length=limit, train_max_length=limit - 1, train_truncates=True
    )
    assert not cut.ok and lines_of(cut, "too_long") == over
    assert lines_of(cut, "truncated") == [i + 1 for i, n in enumerate(lengths) if n <= limit]
    past = validate_file(
        path, tiny, max_length=limit, train_max_length=limit + 1000, train_truncates=True
    )
    assert lines_of(past, "too_long") == over
    fits = validate_file(
        path, tiny, max_length=max(lengths), train_max_length=limit, train_truncates=True
    )
    assert fits.ok and lines_of(fits, "truncated") == over


def test_a_huge_message_fails_as_too_long_in_the_build_too(tmp_path, tiny):
    # issue 16 item 9: build's validation (train_truncates) let a 10 MB message through
    # as a warning; 200 KB against a 4,096-token context shows it in a second
    huge = chat("Where is my order? " + "x" * 200_000, "It left today.")
    path = write(tmp_path / "a.jsonl", [*varied(2), huge])
    report = validate_file(path, tiny, max_length=4096, train_max_length=512, train_truncates=True)
    assert not report.ok and lines_of(report, "too_long") == [3]


@pytest.mark.parametrize(
    "line",
    [
        '{"messages": ' + "[" * 5000 + "]" * 5000 + "}",  # RecursionError in json.loads
        '{"messages": [{"role": "user", "content": "x", "meta": '
        + "[" * 200
        + "]" * 200
        + "}]}",  # loads, but deeper than anything walks safely
        '{"messages": [{"role": "user", "content": ' + "9" * 5000 + "}]}",  # int digits
    ],
)
def test_unreadable_json_lines_are_findings_not_crashes(tmp_path, line):
    # issue 16 item 10: `storetune validate` on a deeply nested line raised RecursionError
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps(chat("Hi", "Hello")) + "\n" + line + "\n", encoding="utf-8")
    report = validate_file(path)
    assert lines_of(report, "invalid_json") == [2]
    assert report.examples["a.jsonl"] == 1


def test_zero_trainable_tokens(tmp_path, tiny):
    silenced = chat("Where is my parcel?", "It left today.")
    silenced["messages"][-1]["weight"] = 0
    report = validate_file(write(tmp_path / "a.jsonl", [*varied(2), silenced]), tiny)
    assert lines_of(report, "zero_trainable") == [3]
    assert report.stats["a.jsonl"].examples == 3

    half = chat("Where is my parcel?", "It left today.")
    half["messages"] += [
        {"role": "user", "content": "Thanks"},
        {"role": "assistant", "content": "Welcome!"},
    ]
    half["messages"][2]["weight"] = 0  # one turn silenced, one still trained
    assert "zero_trainable" not in codes(validate_file(write(tmp_path / "b.jsonl", [half]), tiny))


def test_zero_trainable_when_the_template_drops_replies(tmp_path, tiny):
    tok = tiny.tokenizer.__class__.from_pretrained(tiny.tokenizer.name_or_path)
    tok.chat_template = (
        "{% for m in messages %}{% if m['role'] != 'assistant' %}<|im_start|>{{ m['role'] }}\n"
        "{{ m['content'] }}<|im_end|>\n{% endif %}{% endfor %}"
    )
    report = validate_file(write(tmp_path / "a.jsonl", varied(2)), replace(tiny, tokenizer=tok))
    assert lines_of(report, "zero_trainable") == [1, 2]


def test_assistant_turns_that_do_not_end_in_eos(tmp_path, tiny):
    path = write(tmp_path / "a.jsonl", varied(3))
    assert "no_eos" not in codes(validate_file(path, tiny))
    # A tokenizer whose EOS is not the token the template closes turns with: the model
    # would never learn to emit the token generation stops on.
    tok = tiny.tokenizer.__class__.from_pretrained(tiny.tokenizer.name_or_path)
    tok.eos_token = "<|endoftext|>"
    report = validate_file(
        path, replace(tiny, tokenizer=tok, eos_ids=frozenset({tok.eos_token_id}))
    )
    assert lines_of(report, "no_eos") == [1, 2, 3]
    assert not report.ok


def test_a_template_that_refuses_a_role_order_is_an_error(tmp_path, tiny):
    tok = tiny.tokenizer.__class__.from_pretrained(tiny.tokenizer.name_or_path)
    tok.chat_template = (
        "{% if messages[0]['role'] == 'system' %}{{ raise_exception('no system role') }}{% endif %}"
        + tok.chat_template
    )
    rows = [chat("Hi", "Hello!"), chat("Hi there", "Hello.", system=None)]
    report = validate_file(write(tmp_path / "a.jsonl", rows), replace(tiny, tokenizer=tok))
    assert lines_of(report, "template_error") == [1]
    assert "no system role" in codes(report)["template_error"][0].message


# --- tokens: the fast counts are training's counts --------------------------------------


def test_token_counts_equal_tokenize_chat(tmp_path, tiny):
    multi = chat("Do you ship to Canada?", "Yes: $19.95, 7-12 business days.")
    multi["messages"] += [
        {"role": "user", "content": "And Alaska?"},
        {"role": "assistant", "content": "$14.95, 5-8 business days."},
    ]
    rows = [*varied(5), multi, chat("No system prompt here", "Fine.", system=None)]
    report = validate_file(write(tmp_path / "a.jsonl", rows), tiny)
    exact = [tokenize_chat(tiny.tokenizer, r["messages"], 1 << 20) for r in rows]
    stats = report.stats["a.jsonl"]
    assert stats.tokens == sum(len(t.input_ids) for t in exact)
    assert stats.trainable == sum(t.trainable for t in exact)
    assert stats.max == max(len(t.input_ids) for t in exact)
    ct = ChatTokens(tiny.tokenizer, tiny.eos_ids)
    from storetune.dataset.validate import _Row

    fast = ct.measure(
        [_Row("a", i + 1, i, r["messages"]) for i, r in enumerate(rows)], lambda n: None
    )
    assert fast == ([len(t.input_ids) for t in exact], [t.trainable for t in exact])


def test_system_prompts_are_counted_by_line_and_still_exact(tiny):
    ct = ChatTokens(tiny.tokenizer, tiny.eos_ids)
    prompts = [
        f"{SYSTEM}\nPolicies:\n- Returns within {d} days.\nProduct: Tent {d}" for d in range(20)
    ]
    from storetune.dataset.validate import _Row

    rows = [_Row("a", i + 1, i, chat("Hi", "Hello", p)["messages"]) for i, p in enumerate(prompts)]
    totals, _ = ct.measure(rows, lambda n: None)
    assert ct.by_lines  # this tokenizer never merges across such a newline
    assert totals == [
        len(tokenize_chat(tiny.tokenizer, r.messages, 1 << 20).input_ids) for r in rows
    ]


def test_preview_marks_exactly_the_trained_text(tmp_path, tiny):
    rows = [chat("Where is my parcel?", "It left our warehouse today.")]
    report = validate_file(write(tmp_path / "a.jsonl", rows), tiny)
    trained = "".join(t for t, tr in report.preview if tr)
    untrained = "".join(t for t, tr in report.preview if not tr)
    assert trained == "It left our warehouse today.<|im_end|>"
    assert "Where is my parcel?" in untrained and SYSTEM in untrained
    labels = tokenize_chat(tiny.tokenizer, rows[0]["messages"], 1 << 20)
    assert tiny.tokenizer.decode([t for t in labels.labels if t != -100]) == trained


def test_training_time_estimate(tmp_path, tiny):
    report = validate_file(
        write(tmp_path / "a.jsonl", varied(4)), tiny, tokens_per_second=100.0, epochs=2.0
    )
    tokens = report.stats["a.jsonl"].tokens
    assert report.estimate == {
        "train_tokens": tokens,
        "epochs": 2.0,
        "tokens_per_second": 100.0,
        "seconds": round(tokens * 2 / 100),
    }


def test_the_light_tokenizer_load_matches_autotokenizer(tiny_model_dir, tiny):
    from transformers import AutoTokenizer

    auto = AutoTokenizer.from_pretrained(tiny_model_dir)
    messages = chat("Where is my parcel?", "It left today.")["messages"]
    assert tiny.tokenizer.apply_chat_template(messages, tokenize=False) == auto.apply_chat_template(
        messages, tokenize=False
    )
    assert tiny.tokenizer.eos_token_id == auto.eos_token_id and tiny.eos_ids == {auto.eos_token_id}


def test_without_a_tokenizer_the_token_checks_are_skipped_not_passed(tmp_path):
    report = validate_file(write(tmp_path / "a.jsonl", varied(3)), None)
    assert report.stats == {} and report.estimate is None
    assert any("token checks skipped" in n for n in report.notes)


# --- warnings ---------------------------------------------------------------------------


def test_exact_duplicates_after_normalising_case_and_spaces(tmp_path, tiny):
    rows = varied(4)
    copy = json.loads(json.dumps(rows[1]))
    copy["messages"][1]["content"] = "  " + copy["messages"][1]["content"].upper()
    copy["messages"][0]["content"] = "A different system prompt does not make it new."
    report = validate_file(write(tmp_path / "a.jsonl", [*rows, copy]), tiny)
    assert lines_of(report, "exact_duplicate") == [2, 5]
    assert report.duplicates["exact"] == 1
    assert "exact_duplicate" not in codes(validate_file(write(tmp_path / "b.jsonl", rows), tiny))


def _near_copy(row: dict) -> dict:
    copy = json.loads(json.dumps(row))
    words = copy["messages"][-1]["content"].split()
    words[-1] = "different."  # one word of ~30 changed
    copy["messages"][-1]["content"] = " ".join(words)
    return copy


def test_near_duplicates(tmp_path, tiny):
    rows = varied(5)
    report = validate_file(write(tmp_path / "a.jsonl", [*rows, _near_copy(rows[2])]), tiny)
    assert lines_of(report, "near_duplicate") == [3, 6]
    assert "exact_duplicate" not in codes(report)
    assert "near_duplicate" not in codes(validate_file(write(tmp_path / "b.jsonl", rows), tiny))


def _dataset(root: Path, train: list, val: list, test: list) -> Path:
    root.mkdir()
    for name, rows in (("train", train), ("val", val), ("test", test)):
        write(root / f"{name}.jsonl", rows)
    return root


def test_leakage_across_splits_exact_and_near(tmp_path, tiny):
    rows = varied(12)
    train, val, test = rows[:8], rows[8:10], rows[10:]
    clean = validate_dataset(_dataset(tmp_path / "clean", train, val, test), tiny)
    assert clean.leakage == {"exact": 0, "near": 0}
    assert not {"leakage_exact", "leakage_near"} & set(codes(clean))

    leaky = validate_dataset(
        _dataset(tmp_path / "leaky", train, [*val, _near_copy(train[3])], [*test, train[5]]), tiny
    )
    assert leaky.leakage == {"exact": 1, "near": 1}
    exact = codes(leaky)["leakage_exact"][0]
    assert exact.locations == {"train.jsonl": [6], "test.jsonl": [3]}
    near = codes(leaky)["leakage_near"][0]
    assert near.locations == {"train.jsonl": [4], "val.jsonl": [3]}
    assert leaky.ok  # leakage warns; the build prevents it


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Lorem ipsum dolor sit amet.", "lorem ipsum"),
        ("TODO: write the answer", "TODO/FIXME/TBD"),
        ("Hi [Insert customer name], thanks!", "a bracketed slot like [insert …]"),
        ("Dear {{ first_name }}, your order shipped.", "unrendered template braces ({{ or {%)"),
        ("N/A", "a non-answer like 'N/A'"),
        ("As an AI language model I cannot help.", "'as an AI language model'"),
    ],
)
def test_placeholder_text(tmp_path, tiny, text, kind):
    assert kind in placeholder_kinds(text, "assistant")
    report = validate_file(write(tmp_path / "a.jsonl", [*varied(2), chat("Hi", text)]), tiny)
    assert lines_of(report, "placeholder") == [3]
    assert kind in codes(report)["placeholder"][0].message


def test_cleaning_placeholders_and_markers_are_not_placeholder_text(tmp_path, tiny):
    rows = [
        chat("My email is <EMAIL>, call <PHONE>", "[ESCALATE] A teammate will follow up, <NAME>."),
        chat("Is the todo-list app yours?", 'Our filters: {"color": "red", "size": {"min": 8}}'),
        chat("What is n/a on the tag?", "It means the size is not available in that colour."),
    ]
    assert "placeholder" not in codes(validate_file(write(tmp_path / "a.jsonl", rows), tiny))


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("you can reach me at maya.lopez@gmail.com", "an email address"),
        ("my cell is (503) 555-0199", "a phone number"),
        ("card 4111 1111 1111 1111 exp 09/27", "a card number"),
    ],
)
def test_pii_that_escaped_cleaning(tmp_path, tiny, text, kind):
    assert [k for k, _ in pii_in(text)] == [kind]
    report = validate_file(write(tmp_path / "a.jsonl", [*varied(2), chat(text, "Thanks!")]), tiny)
    assert lines_of(report, "pii") == [3]
    finding = codes(report)["pii"][0]
    assert kind in finding.message and text.split()[-1] not in finding.message  # value masked


def test_store_contact_placeholders_and_catalog_numbers_are_not_pii(tmp_path, tiny):
    rows = [
        chat("How do I reach you?", "Email help@pineco.example or call +1 503 555 0142."),
        chat("My email is <EMAIL> and card <CARD>", "Thanks, <NAME>."),
        chat("Order #100234, SKU PC-2231-BLK-M", "The Alpine Tent is $349.00, 2.1 kg, size 10.5."),
        chat("Tracking 2024-03-14?", "It ships within 1 business day."),
    ]
    report = validate_file(write(tmp_path / "a.jsonl", rows), tiny)
    assert "pii" not in codes(report)


def _meta(rows_by_split: dict[str, int], classes: list[str]) -> list[dict]:
    out, k = [], 0
    for split, n in rows_by_split.items():
        for i in range(n):
            task, category = classes[k].split("/")
            out.append({"split": split, "index": i, "task": task, "category": category})
            k += 1
    return out


def test_class_imbalance_from_meta(tmp_path, tiny):
    rows = varied(60)
    balanced = ["support/returns"] * 20 + ["support/shipping"] * 20 + ["support/exchange"] * 20
    ok = _dataset(tmp_path / "ok", rows[:48], rows[48:54], rows[54:])
    write(ok / "meta.jsonl", _meta({"train": 48, "val": 6, "test": 6}, balanced))
    assert "class_imbalance" not in codes(validate_dataset(ok, tiny))

    skewed = ["support/returns"] * 52 + ["support/shipping"] * 5 + ["support/exchange"] * 3
    rng = random.Random(0)
    rng.shuffle(skewed)
    bad = _dataset(tmp_path / "bad", rows[:48], rows[48:54], rows[54:])
    write(bad / "meta.jsonl", _meta({"train": 48, "val": 6, "test": 6}, skewed))
    messages = [f.message for f in codes(validate_dataset(bad, tiny))["class_imbalance"]]
    assert any("'returns' is 87%" in m for m in messages)
    assert any("exchange (3), shipping (5)" in m for m in messages)


def test_class_balance_is_not_guessed_without_meta(tmp_path, tiny):
    report = validate_file(write(tmp_path / "a.jsonl", varied(3)), tiny)
    assert "class_imbalance" not in codes(report)
    assert any("class balance not checked" in n for n in report.notes)


def test_fewer_than_500_examples(tmp_path, tiny):
    few = validate_file(write(tmp_path / "few.jsonl", varied(499)), tiny)
    assert [f.message for f in codes(few)["too_few"]] == ["499 training example(s), fewer than 500"]
    enough = validate_file(write(tmp_path / "enough.jsonl", varied(500)), tiny)
    assert "too_few" not in codes(enough)
    assert not codes(enough)  # 500 varied examples: nothing to report at all


# --- duplicate detection ------------------------------------------------------------------


def test_signatures_are_datasketch_minhashes():
    keys = ["user: where is my order\nassistant: it shipped", "two words", "", "a b c d e f"]
    sigs = dedup.signatures(keys)
    values, starts = dedup.shingles(keys, dedup._WordHashes())
    assert len(values) == 6 + 2 + 1 + 4  # 3-grams, the two words, one zero, 3-grams
    ends = [*starts[1:], len(values)]
    for i in range(len(keys)):
        m = MinHash(num_perm=dedup.NUM_PERM, seed=dedup.SEED, hashfunc=int)
        m.update_batch(values[starts[i] : ends[i]].tolist())
        assert np.array_equal(m.hashvalues, sigs[i])


def test_near_pairs_depend_on_the_texts_not_their_order():
    rng = random.Random(1)
    base = [rng.choices(WORDS, k=80) for _ in range(30)]
    # one word of 80 changed: Jaccard of the 3-grams ~0.93, well over the 0.8 threshold
    keys = [" ".join(b) for b in base] + [" ".join([*b[:7], "zebra", *b[8:]]) for b in base[:10]]
    ranks = [dedup.key_rank(k) for k in keys]
    pairs = dedup.near_duplicate_pairs(dedup.signatures(keys), ranks)
    assert {(i, 30 + i) for i in range(10)} <= pairs
    assert all(b == a + 30 for a, b in pairs)  # nothing else is near
    order = list(range(len(keys)))
    rng.shuffle(order)
    shuffled = dedup.near_duplicate_pairs(
        dedup.signatures([keys[i] for i in order]), [ranks[i] for i in order]
    )
    assert {tuple(sorted((order[a], order[b]))) for a, b in shuffled} == pairs


def test_build_grouping_merges_near_duplicates_and_drops_exact_ones():
    def ex(user: str, reply: str, group: str) -> Example:
        return Example(
            chat(user, reply)["messages"], "support", "returns", "support", [group], group
        )

    long_reply = " ".join(random.Random(2).choices(WORDS, k=40))
    examples = [
        ex("Can I return these boots?", long_reply, "t1"),
        ex("can I   RETURN these boots?", long_reply.upper(), "t2"),  # exact after normalising
        ex("Can I return these boots please?", long_reply + " thanks", "t3"),  # near
        ex("Do you ship to Canada?", "Yes, $19.95.", "t4"),
    ]
    kept, removed = dedup.remove_exact_duplicates(examples)
    assert removed == 1 and [e.group for e in kept] == ["t1", "t3", "t4"]
    grouping = dedup.group_duplicates(kept)
    assert [e.group for e in kept] == ["t1", "t1", "t4"]
    assert grouping.near_pairs == 1 and grouping.merged_groups == 1


# --- the CLI on a file storetune did not build ----------------------------------------------

runner = CliRunner()


def test_cli_on_a_foreign_file(tmp_path, tiny_model_dir):
    good = write(tmp_path / "good.jsonl", varied(3))
    bad = write(tmp_path / "bad.jsonl", [*varied(2), "{not json", chat("hi", "TODO")])
    w = ["-w", str(tmp_path / "no-workspace")]
    common = ["--model", str(tiny_model_dir)]

    result = runner.invoke(app, [*w, "validate", str(good), *common], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "validation passed" in result.output and "good.jsonl" in result.output

    result = runner.invoke(app, [*w, "validate", str(bad), *common], catch_exceptions=False)
    assert result.exit_code == 1
    assert "invalid_json" in result.output and "bad.jsonl:3" in result.output

    result = runner.invoke(
        app,
        [*w, "validate", str(bad), *common, "--json", "--max-length", "64"],
        catch_exceptions=False,
    )
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["ok"] is False and data["max_length"] == 64
    found = {(f["code"], f["severity"]) for f in data["findings"]}
    assert {("invalid_json", "error"), ("too_long", "error"), ("placeholder", "warning")} <= found
    assert [f["lines"] for f in data["findings"] if f["code"] == "invalid_json"] == [[3]]


def test_cli_usage_errors_exit_2(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "storetune",
            "-w",
            str(tmp_path),
            "validate",
            str(tmp_path / "nope.jsonl"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    stderr = " ".join(proc.stderr.split())  # rich wraps long lines
    assert "nope.jsonl: no such file or directory" in stderr and "Traceback" not in stderr


# --- the build: report, zero leakage, determinism, refusal ---------------------------------


def _store(root: Path, seed: int, build: dict | None = None) -> Workspace:
    generate_demo_store(root, seed=seed, n_products=30, n_tickets=160)
    cfg = yaml.safe_load((root / "store.yaml").read_text())
    cfg["build"] = {"product_qa": 40, "seed": seed, **(build or {})}
    (root / "store.yaml").write_text(yaml.safe_dump(cfg))
    ws = Workspace(root)
    ingest_workspace(ws, progress=False)
    return ws


@pytest.fixture(scope="module")
def demo_build(tmp_path_factory, tiny):
    ws = _store(tmp_path_factory.mktemp("store"), seed=0)
    return ws, build_dataset(ws, model=tiny, progress=False)


def test_build_report_shows_the_mix_and_zero_leakage(demo_build):
    ws, report = demo_build
    assert report.validation.ok and report.leakage == {"exact": 0, "near": 0}
    assert (ws.datasets_dir / "LATEST").read_text().strip() == report.dataset_id
    data = json.loads((report.path / "report.json").read_text())
    assert data["counts"] == report.counts and sum(report.counts.values()) > 300
    builders = set(data["by_builder"])
    assert {"support", "escalation", "product_qa", "safety"} <= builders
    assert set(data["safety"]) == {
        "fake_product",
        "manipulation",
        "off_topic",
        "injection",
        "negotiation",
    }
    assert data["leakage"] == {"exact": 0, "near": 0}
    assert data["validation"]["stats"]["train.jsonl"]["examples"] == report.counts["train"]
    md = (report.path / "report.md").read_text()
    assert "leakage between splits: 0 exact, 0 near" in md
    assert "## Mix by builder" in md and "## Mix by task/category" in md
    assert "| safety/fake_product |" in md and "## Safety and edge cases" in md
    assert "exact duplicates removed" in md and "tickets read" in md
    assert "### Tokens" in md and "⟦" in md  # token table and the marked preview


def test_build_keeps_near_duplicates_in_one_split(demo_build):
    _, report = demo_build
    rows = {
        s: [json.loads(x) for x in (report.path / f"{s}.jsonl").read_text().splitlines()]
        for s in ("train", "val", "test")
    }
    keys = [(s, dedup.content_key(r["messages"])) for s in rows for r in rows[s]]
    ranks = [dedup.key_rank(k) for _, k in keys]
    pairs = dedup.near_duplicate_pairs(dedup.signatures([k for _, k in keys]), ranks)
    assert pairs  # the sample store does have near duplicates…
    assert all(keys[a][0] == keys[b][0] for a, b in pairs)  # …and none straddles splits
    assert len({k for _, k in keys}) == len(keys)  # exact ones were removed


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, demo_build, tiny):
    _, first = demo_build
    again = build_dataset(_store(tmp_path / "again", seed=0), model=tiny, progress=False)
    files = ("train.jsonl", "val.jsonl", "test.jsonl", "meta.jsonl")
    assert again.dataset_id == first.dataset_id
    for name in files:
        assert (again.path / name).read_bytes() == (first.path / name).read_bytes(), name
    other = build_dataset(_store(tmp_path / "other", seed=1), model=tiny, progress=False)
    assert other.dataset_id != first.dataset_id
    assert all((other.path / n).read_bytes() != (first.path / n).read_bytes() for n in files)


def test_build_refuses_a_dataset_that_fails_validation(tmp_path, tiny):
    ws = _store(tmp_path / "s", seed=0)
    with pytest.raises(StoretuneError, match="failed validation") as e:
        build_dataset(ws, model=replace(tiny, context=256), progress=False)  # too short
    assert "report.md" in str(e.value)
    assert not (ws.datasets_dir / "LATEST").exists()
    failed = next(p for p in ws.datasets_dir.iterdir() if p.name.startswith("ds-"))
    assert "too_long" in (failed / "report.md").read_text()
    with pytest.raises(StoretuneError, match="failed validation"):
        resolve_dataset(ws, failed.name)  # training refuses it too
