"""The optional LLM judge against a local fake OpenAI-compatible server."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from evalkit import case

from storetune.config import JudgeConfig
from storetune.errors import StoretuneError
from storetune.eval.judge import LLMJudge, parse_judgement


class FakeJudge(BaseHTTPRequestHandler):
    """Scores 1 when the graded reply mentions $99, else 3; records each request."""

    requests: list[dict] = []
    fail = False

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeJudge.requests.append(
            {"path": self.path, "auth": self.headers.get("Authorization"), "body": body}
        )
        if FakeJudge.fail:
            self.send_response(500)
            self.end_headers()
            return
        graded = body["messages"][-1]["content"].split("Reply to grade:")[-1]
        score = 1 if "$99" in graded else 3
        answer = {
            "choices": [
                {"message": {"role": "assistant", "content": f"SCORE: {score}\nREASON: checked"}}
            ]
        }
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):  # keep test output quiet
        pass


@pytest.fixture
def judge_server():
    server = HTTPServer(("127.0.0.1", 0), FakeJudge)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FakeJudge.requests, FakeJudge.fail = [], False
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_judge_posts_chat_completions_and_parses_the_score(judge_server, monkeypatch):
    monkeypatch.setenv("JUDGE_KEY", "sk-test")
    judge = LLMJudge(
        JudgeConfig(enabled=True, base_url=judge_server, model="grader-1", api_key_env="JUDGE_KEY")
    )
    c = case("How much is the Ridgeline?", "It's $129.00.")
    assert judge.judge(c, "It's $129.00.") == ("correct", "checked")
    assert judge.judge(c, "It's $99.00.")[0] == "wrong"
    judge.close()
    req = FakeJudge.requests[0]
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer sk-test"
    assert req["body"]["model"] == "grader-1" and req["body"]["temperature"] == 0
    assert "[ESCALATE]" in req["body"]["messages"][0]["content"]
    assert "It's $129.00." in req["body"]["messages"][1]["content"]


def test_judge_errors_name_the_endpoint(judge_server):
    FakeJudge.fail = True
    judge = LLMJudge(JudgeConfig(enabled=True, base_url=judge_server))
    with pytest.raises(StoretuneError, match=r"127\.0\.0\.1.*/chat/completions"):
        judge.judge(case("hi", "hello"), "hello")
    judge.close()


def test_unusable_answers_are_rejected():
    assert parse_judgement("SCORE: 2\nREASON: misses the window") == (
        "partial",
        "misses the window",
    )
    with pytest.raises(ValueError):
        parse_judgement("looks fine to me")
