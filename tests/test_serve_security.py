"""Hardening: API keys, body size, admission queue (429), timeouts (504), health, metrics."""

from __future__ import annotations

import re
import threading

import httpx
import pytest
from test_serve_support import (
    AUTH,
    BODY,
    KEY,
    GatedEngine,
    LiveServer,
    chat,
    make_workspace,
    serve_base,
    serve_engine,
    serve_models,
    wait_until,
)
from typer.testing import CliRunner

from storetune.config import ServeConfig
from storetune.errors import StoretuneError
from storetune.serve.app import create_app
from storetune.serve.security import hash_password, verify_password
from storetune.workspace import Workspace

# pytest finds fixtures by name in this module's namespace
FIXTURES = (serve_base, serve_engine, serve_models)


@pytest.fixture(scope="module")
def server(serve_base, serve_models, serve_engine):
    ws = Workspace(make_workspace(serve_models.parent, serve_base, {"max_body_bytes": 4096}))
    with LiveServer(create_app(ws, serve_engine)) as live:
        yield live


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def test_requests_without_a_valid_key_are_refused(http):
    assert http.get("/v1/models").status_code == 401
    wrong = http.post("/v1/chat/completions", json=BODY, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_api_key"
    basic = http.get("/v1/models", headers={"Authorization": f"Basic {KEY}"})
    assert basic.status_code == 401 and basic.json()["error"]["code"] == "missing_api_key"
    assert http.get("/v1/models", headers=AUTH).status_code == 200


def test_health_needs_no_key_and_reports_models(http):
    r = http.get("/health")
    assert r.status_code == 200
    assert {"base", "support", "product"} <= set(r.json()["models"])


def test_oversized_body_is_413_before_parsing(http):
    big = {**BODY, "messages": chat("x" * 5000)}
    r = http.post("/v1/chat/completions", json=big, headers=AUTH)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "request_too_large"
    # no Content-Length (chunked upload): counted while reading, same answer
    chunks = iter([b'{"model": "base", "messages": [', b" " * 5000, b"]}"])
    r = http.post(
        "/v1/chat/completions",
        content=chunks,
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert r.status_code == 413
    # the body is not even parsed: invalid JSON that is too large is still a 413
    assert http.post("/v1/chat/completions", content=b"{" * 5000, headers=AUTH).status_code == 413


def test_bad_json_is_400_in_openai_shape(http):
    r = http.post(
        "/v1/chat/completions",
        content=b"{not json",
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"


def _metric(text: str, name: str, **labels) -> float:
    total = 0.0
    for line in text.splitlines():
        m = re.match(rf"^{name}\{{(.*)\}} (\S+)$", line)
        if m and all(f'{k}="{v}"' in m.group(1) for k, v in labels.items()):
            total += float(m.group(2))
    return total


def test_metrics_count_requests_statuses_and_tokens(http):
    before = http.get("/metrics").text
    ok = http.post("/v1/chat/completions", json={**BODY, "model": "support"}, headers=AUTH)
    assert ok.status_code == 200
    http.get("/v1/models")  # a 401
    after = http.get("/metrics").text
    route = "/v1/chat/completions"
    req = "storetune_http_requests_total"
    assert (
        _metric(after, req, route=route, status="200")
        == _metric(before, req, route=route, status="200") + 1
    )
    assert (
        _metric(after, req, route="/v1/models", status="401")
        == _metric(before, req, route="/v1/models", status="401") + 1
    )
    tokens = ok.json()["usage"]["completion_tokens"]
    gen = "storetune_generated_tokens_total"
    assert _metric(after, gen, model="support") == _metric(before, gen, model="support") + tokens
    assert "storetune_queue_depth" in after
    assert _metric(after, "storetune_http_request_seconds_count", route=route) >= 1


def _post_in_thread(url: str, body: dict, results: list) -> threading.Thread:
    def go() -> None:
        results.append(httpx.post(url, json=body, headers=AUTH, timeout=60).status_code)

    t = threading.Thread(target=go)
    t.start()
    return t


@pytest.fixture
def gated(serve_base, tmp_path):
    engine = GatedEngine.create(serve_base)
    yield engine
    engine.close()


def _gated_server(gated, serve_base, tmp_path, **serve):
    ws = Workspace(make_workspace(tmp_path / "ws", serve_base, serve))
    return LiveServer(create_app(ws, gated))


def test_queue_full_answers_429_immediately(gated, serve_base, tmp_path):
    with _gated_server(gated, serve_base, tmp_path, max_concurrency=1, queue_size=1) as live:
        url = f"{live.url}/v1/chat/completions"
        results: list[int] = []
        threads = [_post_in_thread(url, BODY, results) for _ in range(2)]
        limiter = live.app.state.limiter
        wait_until(lambda: limiter.active == 2 and gated.waiting.is_set(), "two admitted")
        # the engine is blocked: a third request must be refused, not queued or hung
        third = httpx.post(url, json=BODY, headers=AUTH, timeout=60)
        assert third.status_code == 429
        assert third.json()["error"]["type"] == "rate_limit_error"
        assert third.headers["retry-after"] == "1"
        assert results == []  # the admitted two are still waiting
        gated.gate.set()
        for t in threads:
            t.join()
        assert results == [200, 200]
        assert limiter.active == 0


def test_timeout_answers_504_and_frees_the_slot(gated, serve_base, tmp_path):
    with _gated_server(gated, serve_base, tmp_path, request_timeout_s=0.3) as live:
        url = f"{live.url}/v1/chat/completions"
        r = httpx.post(url, json=BODY, headers=AUTH, timeout=60)
        assert r.status_code == 504 and r.json()["error"]["code"] == "timeout"
        s = httpx.post(url, json={**BODY, "stream": True}, headers=AUTH, timeout=60)
        assert s.status_code == 504  # no token before the deadline: a status, not a stream
        assert live.app.state.limiter.active == 0
        gated.gate.set()
        wait_until(lambda: gated.queue_depth == 0 and gated.running == 0, "engine idle")


def test_no_keys_refuses_to_start_unless_insecure(serve_base, serve_engine, tmp_path, monkeypatch):
    monkeypatch.delenv("STORETUNE_API_KEYS", raising=False)
    ws = Workspace(make_workspace(tmp_path / "ws", serve_base, {"api_keys": []}))
    with pytest.raises(StoretuneError, match="no API keys configured"):
        create_app(ws, serve_engine)
    app = create_app(ws, serve_engine, insecure_no_auth=True)
    with LiveServer(app) as live:
        assert httpx.get(f"{live.url}/v1/models").status_code == 200


def test_keys_from_the_environment(serve_base, serve_engine, tmp_path, monkeypatch):
    monkeypatch.setenv("STORETUNE_API_KEYS", "alpha-key, beta-key")
    ws = Workspace(make_workspace(tmp_path / "ws", serve_base, {"api_keys": []}))
    with LiveServer(create_app(ws, serve_engine)) as live:
        get = lambda key: httpx.get(  # noqa: E731
            f"{live.url}/v1/models", headers={"Authorization": f"Bearer {key}"}
        )
        assert get("beta-key").status_code == 200
        assert get("alpha-key").status_code == 200
        assert get(KEY).status_code == 401  # not configured in this workspace


def test_cli_serve_refuses_without_keys_before_loading_the_model(tmp_path, monkeypatch):
    from storetune.cli import app

    monkeypatch.delenv("STORETUNE_API_KEYS", raising=False)
    ws = make_workspace(tmp_path / "ws", tmp_path / "no-such-model", {"api_keys": []})
    result = CliRunner().invoke(app, ["-w", str(ws), "serve"])
    assert isinstance(result.exception, StoretuneError)
    assert "--insecure-no-auth" in str(result.exception)


def test_review_password_hashes_verify():
    encoded = hash_password("correct horse", iterations=1000)
    assert verify_password("correct horse", encoded)
    assert not verify_password("wrong horse", encoded)
    assert not verify_password("correct horse", "garbage")


def test_serve_config_validates_fields():
    with pytest.raises(ValueError):
        ServeConfig(max_concurrency=0)
    with pytest.raises(ValueError):
        ServeConfig(review_users=[{"username": "ana"}])  # neither hash nor env
    assert ServeConfig(api_keys=["a", "a", " "]).resolved_api_keys() == ["a"]
