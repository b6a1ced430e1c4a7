"""Teacher paraphrasing against a local fake OpenAI-compatible server."""

from __future__ import annotations

import json
import random
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from storetune.config import ParaphraseConfig
from storetune.dataset.build import build_dataset
from storetune.dataset.example import Example
from storetune.dataset.paraphrase import (
    INSTRUCTION,
    PARAPHRASE_TASKS,
    check_paraphrase,
    paraphrase_examples,
    proper_names,
    select_messages,
)
from storetune.demo.store_gen import generate_demo_store
from storetune.errors import StoretuneError
from storetune.ingest import ingest_workspace
from storetune.workspace import Workspace


class _Teacher(BaseHTTPRequestHandler):
    """Deterministic rewrites keyed on markers in the customer's message."""

    requests: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append(
            {"path": self.path, "body": body, "auth": self.headers.get("Authorization")}
        )
        if self.path.startswith("/locked/"):
            return self._send(401, {"error": {"message": "bad key"}})
        text = body["messages"][-1]["content"]
        if "ERROR" in text:
            return self._send(500, {"error": {"message": "overloaded"}})
        if "EMPTY" in text:
            reply = "   "
        elif "LONG" in text:
            reply = (text + " ") * 20  # far past 2x the original + 60 chars
        elif "30" in text:
            reply = "Could you tell me " + text.replace("30", "40")  # a changed fact
        elif "Ridgeline" in text:
            reply = "Could you tell me about that jacket?"  # drops the product name
        elif "SAME" in text:
            reply = text
        else:
            reply = f'"Could you tell me: {text.lower()}"'  # quoted, as teachers do
        self._send(200, {"choices": [{"message": {"role": "assistant", "content": reply}}]})

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:  # keep test output quiet
        pass


@pytest.fixture
def teacher():
    _Teacher.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Teacher)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Teacher.requests
    server.shutdown()
    server.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ex(user: str, task: str = "support", system: str = "policies") -> Example:
    return Example(
        messages=[
            {"role": "system", "content": system},
            {"role": "user", "content": user},
            {"role": "assistant", "content": f"answer to {user}"},
        ],
        task=task,
        category="c",
        builder="b",
    )


def _cfg(url: str, **kw) -> ParaphraseConfig:
    return ParaphraseConfig(enabled=True, base_url=f"{url}/v1", share=1.0, **kw)


def test_disabled_by_default_sends_nothing(teacher):
    url, requests = teacher
    examples = [_ex("Where is my order?")]
    pcfg = ParaphraseConfig(base_url=f"{url}/v1", share=1.0)
    assert pcfg.enabled is False
    out, stats = paraphrase_examples(examples, pcfg, seed=0)
    assert out is examples and stats == {}
    assert requests == []


def test_accepts_good_rewrites_and_rejects_changed_facts(teacher):
    url, requests = teacher
    examples = [
        _ex("Where is my order <ORDER_ID>?"),
        _ex("Can I return it within 30 days?"),
        _ex("Is the Ridgeline Down Jacket warm?"),
        _ex("ERROR please help"),
        _ex("EMPTY reply please"),
        _ex("LONG one"),
        _ex("SAME words"),
        _ex("What is 2+2?", task="classify"),  # catalog task: never sent
    ]
    out, stats = paraphrase_examples(examples, _cfg(url), seed=0, progress=False)
    assert stats == {
        "paraphrase_selected": 7,
        "paraphrase_accepted": 1,
        "paraphrase_errors": 1,
        "paraphrase_rejected_empty": 1,
        "paraphrase_rejected_too_long": 1,
        "paraphrase_rejected_number": 1,
        "paraphrase_rejected_name": 1,
        "paraphrase_rejected_unchanged": 1,
    }
    assert out[0].messages[1]["content"] == "Could you tell me: where is my order <order_id>?"
    for before, after in zip(examples[1:], out[1:], strict=True):
        assert after.messages == before.messages  # rejected or failed: original kept
    assert examples[0].messages[1]["content"] == "Where is my order <ORDER_ID>?"  # not mutated
    assert out[0].messages[0] == examples[0].messages[0]
    assert out[0].messages[2] == examples[0].messages[2]
    sent = [r["body"]["messages"] for r in requests]
    assert len(sent) == 7
    assert all(m[0] == {"role": "system", "content": INSTRUCTION} for m in sent)
    assert not any("answer to" in m[-1]["content"] or "2+2" in m[-1]["content"] for m in sent)
    assert {r["path"] for r in requests} == {"/v1/chat/completions"}


def test_placeholder_dropped_by_the_teacher_is_rejected(teacher):
    # The fake teacher lowercases '<ORDER_ID>' in its rewrite; the comparison is
    # case-insensitive, so that passes, but a rewrite without it must not.
    assert check_paraphrase("Order <ORDER_ID> is late", "my order is late") == "name"
    assert check_paraphrase("Order <ORDER_ID> is late", "<ORDER_ID> hasn't come") is None


def test_check_paraphrase_rules():
    original = "Is the Cascade Storm Shell still $129.00 in size M?"
    assert check_paraphrase(original, "Does the Cascade Storm Shell cost $129.00 in M?") is None
    assert check_paraphrase(original, "Does the Cascade Storm Shell cost $139.00 in M?") == (
        "number"
    )
    assert check_paraphrase(original, "Is the Cascade Storm Shell $129.00 for 2 in M?") == (
        "number"
    )  # an invented number is a new fact too
    assert check_paraphrase(original, "Is that shell still $129.00 in size M?") == "name"
    assert check_paraphrase(original, "") == "empty"
    assert check_paraphrase(original, original.upper()) == "unchanged"
    # catalog titles are protected even when written in lowercase by the customer
    lower = "is the basin trail 28l pack waterproof"
    assert check_paraphrase(lower, "is that 28l pack waterproof", ["Basin Trail 28L Pack"]) == (
        "name"
    )
    assert (
        check_paraphrase(lower, "basin trail 28l pack: waterproof?", ["Basin Trail 28L Pack"])
        is None
    )


def test_proper_names_skip_greetings_and_sentence_openers():
    text = "Hello Cedar & Summit, Can I swap the Men's Basin Mid Boot? Thanks Team"
    assert proper_names(text) == ["Men's Basin Mid Boot"]
    assert check_paraphrase(text, "hi, may i swap the men's basin mid boot? thank you") is None


def test_card_titles_in_the_system_prompt_are_protected(teacher):
    url, _ = teacher
    card = "policies\nProduct information:\n* Basin Trail 28L Pack (Backpacks)\n  price: $89.00"
    examples = [_ex("is the basin trail 28l pack waterproof", system=card)]
    out, stats = paraphrase_examples(examples, _cfg(url), seed=0, progress=False)
    # the fake rewrite keeps the text, so the protected title survives and it is accepted
    assert stats["paraphrase_accepted"] == 1
    assert "basin trail 28l pack" in out[0].messages[1]["content"]


def test_selection_is_a_deterministic_share_of_eligible_user_messages():
    tasks = sorted(PARAPHRASE_TASKS) + ["classify", "query_rewrite", "description"]
    examples = [
        _ex(f"question number {i} about things", task=tasks[i % len(tasks)]) for i in range(400)
    ]
    eligible = [i for i, ex in enumerate(examples) if ex.task in PARAPHRASE_TASKS]
    jobs = select_messages(examples, 0.3, seed=7)
    assert jobs == select_messages(examples, 0.3, seed=7)
    assert jobs != select_messages(examples, 0.3, seed=8)
    assert all(examples[i].task in PARAPHRASE_TASKS and j == 1 for i, j in jobs)
    assert 0.2 * len(eligible) < len(jobs) < 0.4 * len(eligible)
    assert len(select_messages(examples, 1.0, seed=7)) == len(eligible)
    assert select_messages(examples, 0.0, seed=7) == []
    # the choice follows the text, not the position in the list
    shuffled = examples[:]
    random.Random(0).shuffle(shuffled)
    texts = {examples[i].messages[j]["content"] for i, j in jobs}
    again = {shuffled[i].messages[j]["content"] for i, j in select_messages(shuffled, 0.3, 7)}
    assert again == texts


def test_multi_turn_support_paraphrases_each_user_turn(teacher):
    url, requests = teacher
    ex = Example(
        messages=[
            {"role": "system", "content": "policies"},
            {"role": "user", "content": "Hi, my parcel is late"},
            {"role": "assistant", "content": "Sorry to hear that."},
            {"role": "user", "content": "It was due Monday"},
            {"role": "assistant", "content": "Let me check."},
        ],
        task="support",
        category="shipping",
        builder="support",
    )
    out, stats = paraphrase_examples([ex], _cfg(url), seed=0, progress=False)
    assert stats["paraphrase_accepted"] == 2
    assert [m["role"] for m in out[0].messages] == [m["role"] for m in ex.messages]
    assert out[0].messages[3]["content"] == "Could you tell me: it was due monday"
    assert [m["content"] for m in out[0].messages[::2]] == [m["content"] for m in ex.messages[::2]]


def test_unreachable_endpoint_names_the_url():
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    pcfg = ParaphraseConfig(enabled=True, base_url=url, share=1.0, timeout_s=5)
    with pytest.raises(StoretuneError, match=f"{url}/chat/completions is unreachable") as e:
        paraphrase_examples([_ex("Where is my order?")] * 3, pcfg, seed=0, progress=False)
    assert "build.paraphrase" in str(e.value)


def test_rejected_key_stops_the_build_and_the_key_is_sent(teacher, monkeypatch):
    url, requests = teacher
    monkeypatch.setenv("TEACHER_KEY", "sk-test-123")
    pcfg = ParaphraseConfig(
        enabled=True, base_url=f"{url}/locked/v1", share=1.0, api_key_env="TEACHER_KEY"
    )
    with pytest.raises(StoretuneError, match="answered HTTP 401") as e:
        paraphrase_examples([_ex("Where is my order?")], pcfg, seed=0, progress=False)
    assert "$TEACHER_KEY" in str(e.value)
    assert requests[0]["auth"] == "Bearer sk-test-123"


def test_build_dataset_paraphrases_when_enabled(tmp_path, teacher):
    url, requests = teacher
    root = tmp_path / "store"
    generate_demo_store(root, seed=2, n_products=20, n_tickets=40)
    cfg = yaml.safe_load((root / "store.yaml").read_text())
    cfg["build"] = {
        "product_qa": 20,
        "paraphrase": {"enabled": True, "base_url": f"{url}/v1", "share": 0.5},
    }
    (root / "store.yaml").write_text(yaml.safe_dump(cfg))
    ws = Workspace(root)
    ingest_workspace(ws, progress=False)
    report = build_dataset(ws)
    notes = report.notes
    assert notes["paraphrase_selected"] == len(requests) > 0
    assert notes["paraphrase_accepted"] > 0
    assert notes["paraphrase_selected"] == notes["paraphrase_accepted"] + notes[
        "paraphrase_errors"
    ] + sum(v for k, v in notes.items() if k.startswith("paraphrase_rejected_"))
    users = [
        m["content"]
        for split in ("train", "val", "test")
        for line in (report.path / f"{split}.jsonl").read_text().splitlines()
        for m in json.loads(line)["messages"]
        if m["role"] == "user"
    ]
    # dedupe runs after paraphrasing and may drop a rewritten exact duplicate
    rewritten = sum(u.startswith("Could you tell me: ") for u in users)
    assert 0 < rewritten <= notes["paraphrase_accepted"]
