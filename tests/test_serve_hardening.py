"""Issue 16: no request can hurt another, and the review login holds.

For every item, tests here failed on the code before its fix (a few cases, such as a
negative temperature or a new session secret, already held and stay as guards):
- parameters are checked before a request joins a batch, and a row that fails to start
  fails alone (item 3);
- review sessions live in store.db: logout, removing an agent or changing their
  password ends them, across a restart too (item 4);
- X-Forwarded-For counts only from `serve.trusted_proxies` (item 5);
- every login attempt runs one password hash of the same cost (item 6);
- ticket ids beyond SQLite's integers are "no such ticket", not a plain-text 500 (item 10);
- /openapi.json needs the API key; /review pages refuse framing and carry a CSP (item 11).
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient
from test_review import PASSWORD, csrf_of, login, new_ticket
from test_review import site as site  # noqa: F401  (fixture)
from test_serve_support import (
    AUTH,
    BODY,
    KEY,
    GatedEngine,
    chat,
    free_port,
    make_workspace,
    serve_base,
    serve_engine,
    serve_models,
    wait_until,
)
from test_serve_tickets import ScriptedEngine

from storetune.config import ServeConfig
from storetune.serve.app import create_app
from storetune.serve.engine import Engine, RequestError
from storetune.serve.security import hash_password
from storetune.store import db
from storetune.store.review import ReviewQueue, ReviewSessions
from storetune.workspace import Workspace

FIXTURES = (serve_base, serve_engine, serve_models)

SESSION = "storetune_review"


class UvicornServer:
    """The app under uvicorn as `storetune serve` runs it (its uvicorn options)."""

    def __init__(self, app, **options) -> None:
        import uvicorn

        from storetune.serve.security import uvicorn_options

        self.port = free_port()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            **(uvicorn_options() | options),
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.app = app
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> UvicornServer:
        self.thread.start()
        wait_until(lambda: self.server.started or not self.thread.is_alive(), "uvicorn")
        assert self.server.started
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


# ---- item 3: parameters checked before the batch; a row's failure is its own -------------


@pytest.fixture(scope="module")
def live(serve_base, serve_models, serve_engine, tmp_path_factory):
    root = tmp_path_factory.mktemp("hardening") / "ws"
    ws = Workspace(make_workspace(root, serve_base))
    with UvicornServer(create_app(ws, serve_engine)) as server:
        yield server


BAD_PARAMETERS = [
    ({"seed": 2**63}, "seed"),
    ({"seed": 2**64 + 5}, "seed"),
    ({"seed": -(2**63) - 1}, "seed"),
    ({"temperature": -0.5}, "temperature"),
    ({"temperature": 2.5}, "temperature"),
    ({"temperature": 1e-30}, "temperature"),
    ({"temperature": "warm"}, "temperature"),
    ({"top_p": 0}, "top_p"),
    ({"top_p": 1.5}, "top_p"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"max_tokens": 10**30}, "max_tokens"),
    ({"max_completion_tokens": -3}, "max_completion_tokens"),
    ({"stop": [""]}, "stop"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"stop": 7}, "stop"),
    ({"n": 2}, "n"),
    ({"n": 0}, "n"),
    ({"logprobs": "sometimes"}, "logprobs"),
    ({"top_logprobs": 21, "logprobs": True}, "top_logprobs"),
    ({"top_logprobs": 3}, "top_logprobs"),
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}, "messages"),
    ({"messages": [{"role": "tool", "content": "hi"}]}, "messages"),
    ({"messages": []}, "messages"),
]


@pytest.mark.parametrize(("change", "param"), BAD_PARAMETERS)
def test_every_generation_parameter_is_checked_with_a_400(live, change, param):
    r = httpx.post(f"{live.url}/v1/chat/completions", json=BODY | change, headers=AUTH, timeout=60)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert param in (error["param"] or "") + error["message"]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_a_400(live, literal):
    # Python's JSON parser accepts these words; the server must not.
    for field in ("temperature", "top_p"):
        raw = json.dumps(BODY)[:-1] + f', "{field}": {literal}}}'
        r = httpx.post(
            f"{live.url}/v1/chat/completions",
            content=raw,
            headers=AUTH | {"Content-Type": "application/json"},
            timeout=60,
        )
        assert r.status_code == 400, r.text
        assert r.json()["error"]["param"] == field


def test_the_int64_seed_range_is_served(live):
    for seed in (2**63 - 1, -(2**63), 0):
        body = BODY | {"seed": seed, "temperature": 0.8}
        r = httpx.post(f"{live.url}/v1/chat/completions", json=body, headers=AUTH, timeout=60)
        assert r.status_code == 200, r.text


def test_engine_rejects_bad_parameters_before_queueing(serve_engine):
    for kwargs, param in [
        ({"seed": 2**64}, "seed"),
        ({"temperature": float("inf")}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"top_p": float("nan")}, "top_p"),
    ]:
        with pytest.raises(RequestError) as e:
            serve_engine.generate(chat("hi"), "base", max_tokens=2, **kwargs)
        assert e.value.param == param


@pytest.fixture
def gated(serve_base):
    engine = GatedEngine.create(serve_base)
    yield engine
    engine.close()


def _post(url: str, body: dict, results: dict, key: str) -> threading.Thread:
    def go() -> None:
        r = httpx.post(url, json=body, headers=AUTH, timeout=60)
        results[key] = (r.status_code, r.json())

    t = threading.Thread(target=go)
    t.start()
    return t


def test_a_bad_seed_beside_queued_requests_fails_alone_and_at_once(gated, serve_base, tmp_path):
    ws = Workspace(make_workspace(tmp_path / "ws", serve_base))
    with UvicornServer(create_app(ws, gated)) as server:
        url = f"{server.url}/v1/chat/completions"
        results: dict = {}
        good = [
            _post(url, BODY | {"messages": chat(f"question {i}"), "seed": i}, results, f"g{i}")
            for i in range(3)
        ]
        wait_until(lambda: gated.waiting.is_set() or gated.queue_depth == 3, "requests queued")
        # The engine is held: a bad request must be answered now, not after (or with) them.
        bad = httpx.post(url, json=BODY | {"seed": 2**64}, headers=AUTH, timeout=20)
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "seed"
        assert results == {}
        gated.gate.set()
        for t in good:
            t.join()
        assert {k: v[0] for k, v in results.items()} == {"g0": 200, "g1": 200, "g2": 200}
        assert all(v[1]["choices"][0]["message"]["content"] is not None for v in results.values())


class _FailingRows(Engine):
    """A tiny-model engine where a request mentioning BOOM fails as its row is prepared
    (standing in for any per-request failure the validation did not foresee); the first
    decode step can be held so requests queue up to join the running batch."""

    def __init__(self, *a, **kw) -> None:
        self.in_batch = threading.Event()
        self.go = threading.Event()
        self.hold_joins = False
        self.joiners: list[int] = []  # rows each take_joiners call handed the batch
        super().__init__(*a, **kw)

    def _prompt_ids(self, job):
        if "BOOM" in job.messages[-1]["content"]:
            raise RuntimeError("this row cannot start")
        return super()._prompt_ids(job)

    def take_joiners(self, adapter_key, room):
        if self.hold_joins:
            self.hold_joins = False
            self.in_batch.set()
            self.go.wait(30)
        rows = super().take_joiners(adapter_key, room)
        self.joiners.append(len(rows))
        return rows


@pytest.fixture(params=["torch", "llamacpp"])
def failing(request, serve_base, tmp_path_factory):
    if request.param == "torch":
        engine = _FailingRows(serve_base, {}, bf16=False, batch_window_ms=200)
    else:  # llama.cpp's converter needs a tokenizer it knows: the default model's
        from test_llamacpp import tiny_llama_with_smollm_tokenizer

        base = tiny_llama_with_smollm_tokenizer(tmp_path_factory.mktemp("smoltok"))
        engine = _FailingRows(base, {}, engine="llamacpp", gguf_type="f32", batch_window_ms=200)
    yield engine
    engine.close()


def _generate(engine, question: str, results: queue.Queue, **kwargs) -> threading.Thread:
    def go() -> None:
        try:
            results.put((question, engine.generate(chat(question), "base", **kwargs)))
        except Exception as e:
            results.put((question, e))

    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t


def _collect(results: queue.Queue, n: int) -> dict:
    got = {}
    for _ in range(n):
        question, outcome = results.get(timeout=60)  # a stranded request fails the test here
        got[question] = outcome
    return got


def test_a_row_that_fails_in_a_new_batch_fails_alone(failing):
    results: queue.Queue = queue.Queue()
    # three requests inside one batch window: one batch, one bad row
    for q in ("first question", "BOOM question", "third question"):
        _generate(failing, q, results, max_tokens=3)
    got = _collect(results, 3)
    assert isinstance(got["BOOM question"], RuntimeError)
    assert got["first question"].completion_tokens >= 1
    assert got["third question"].completion_tokens >= 1


def test_a_row_that_fails_while_joining_a_running_batch_fails_alone(failing):
    results: queue.Queue = queue.Queue()
    failing.hold_joins = True
    _generate(failing, "running question", results, max_tokens=8)
    assert failing.in_batch.wait(30)
    # queued while the batch runs: they join it between decode steps
    _generate(failing, "BOOM joiner", results, max_tokens=3)
    _generate(failing, "good joiner", results, max_tokens=3)
    wait_until(lambda: failing.queue_depth == 2, "two joiners queued")
    failing.go.set()
    got = _collect(results, 3)
    assert isinstance(got["BOOM joiner"], RuntimeError)
    assert got["running question"].completion_tokens >= 1
    assert got["good joiner"].completion_tokens >= 1
    # both joiners were taken together once the batch ran; only the good one became a row
    assert failing.joiners[0] == 1 and sum(failing.joiners) == 1


# ---- item 4: server-side sessions -----------------------------------------------------------


def _restart(client: TestClient) -> TestClient:
    """A new app on the same workspace (store.yaml read again), like a server restart."""
    ws = Workspace(client.app.state.ws.root)
    return TestClient(create_app(ws, ScriptedEngine()), follow_redirects=False)


def _works(client: TestClient, cookie: str) -> bool:
    client.cookies.clear()
    client.cookies.set(SESSION, cookie, path="/review")
    r = client.get("/review")
    return r.status_code == 200


def _rewrite_users(root, users: list[dict]) -> None:
    cfg = yaml.safe_load((root / "store.yaml").read_text())
    cfg["serve"]["review_users"] = users
    (root / "store.yaml").write_text(yaml.safe_dump(cfg))


def test_logout_ends_the_session_for_a_copied_cookie(site):  # noqa: F811
    client, _, _ = site
    assert login(client).status_code == 303
    copied = client.cookies.get(SESSION)
    token = csrf_of(client.get("/review").text)
    assert client.post("/review/logout", data={"csrf": token}).status_code == 303
    with TestClient(client.app, follow_redirects=False) as other:
        assert not _works(other, copied)


def test_sessions_are_stored_hashed_in_store_db(site):  # noqa: F811
    client, queue_, _ = site
    login(client)
    cookie = client.cookies.get(SESSION)
    rows = queue_.conn.execute("SELECT token_hash, username FROM review_sessions").fetchall()
    assert [tuple(r) for r in rows] == [(hashlib.sha256(cookie.encode()).hexdigest(), "ana")]
    assert cookie not in json.dumps([tuple(r) for r in rows])
    names = {r[0] for r in db.connect(":memory:").execute("SELECT name FROM _migrations")}
    assert "m005_review_sessions" in names


def _two_agents_logged_in(client: TestClient) -> tuple[str, str]:
    """Session cookies of ana and ben, each logged in once."""
    login(client)
    ana = client.cookies.get(SESSION)
    client.cookies.clear()
    login(client, "ben", "ben-pass-123")
    return ana, client.cookies.get(SESSION)


def test_removing_an_agent_ends_their_sessions_across_a_restart(site):  # noqa: F811
    client, _, _ = site
    ana, ben = _two_agents_logged_in(client)
    root = client.app.state.ws.root
    users = client.app.state.serve_cfg.review_users
    _rewrite_users(root, [u.model_dump(exclude_none=True) for u in users if u.username != "ana"])
    with _restart(client) as restarted:  # same STORETUNE_SESSION_SECRET
        assert not _works(restarted, ana)
        assert _works(restarted, ben)
        sessions = ReviewSessions(client.app.state.ws.db_path)
        assert sessions.count("ana") == 0 and sessions.count("ben") == 1


def test_changing_a_password_ends_the_agents_sessions(site, monkeypatch):  # noqa: F811
    client, _, _ = site
    ana, ben = _two_agents_logged_in(client)
    root = client.app.state.ws.root
    new_hash = hash_password("a new password", iterations=1000)
    _rewrite_users(
        root,
        [
            {"username": "ana", "password_hash": new_hash},
            {"username": "ben", "password_env": "BEN_PASSWORD"},
        ],
    )
    monkeypatch.setenv("BEN_PASSWORD", "ben-new-pass")
    with _restart(client) as restarted:
        assert not _works(restarted, ana)
        assert not _works(restarted, ben)
        restarted.cookies.clear()
        assert login(restarted, "ana", "a new password").status_code == 303
        assert restarted.get("/review").status_code == 200


def test_a_new_session_secret_ends_every_session(site, monkeypatch):  # noqa: F811
    client, _, _ = site
    login(client)
    ana = client.cookies.get(SESSION)
    monkeypatch.setenv("STORETUNE_SESSION_SECRET", "another-secret")
    with _restart(client) as restarted:
        assert not _works(restarted, ana)


def test_sessions_without_a_store_db_are_in_memory(tmp_path, monkeypatch):
    root = tmp_path / "ws"
    root.mkdir()
    users = [{"username": "ana", "password_hash": hash_password(PASSWORD, iterations=1000)}]
    (root / "store.yaml").write_text(
        yaml.safe_dump(
            {
                "brand": {"name": "Tiny Outfitters", "voice": "friendly"},
                "serve": {"api_keys": [KEY], "review_users": users},
            }
        )
    )
    with TestClient(create_app(Workspace(root), ScriptedEngine()), follow_redirects=False) as c:
        assert login(c).status_code == 303
        assert c.get("/review").status_code == 200
    assert not (root / "store.db").exists()  # logging in does not create the database


# ---- item 5: X-Forwarded-For only from trusted proxies ---------------------------------------


def _review_server(tmp_path, monkeypatch, serve: dict | None = None) -> UvicornServer:
    root = tmp_path / "ws"
    root.mkdir()
    users = [{"username": "ana", "password_hash": hash_password(PASSWORD, iterations=1000)}]
    cfg = {
        "brand": {"name": "Tiny Outfitters", "voice": "friendly"},
        "serve": {"api_keys": [KEY], "review_users": users, **(serve or {})},
    }
    (root / "store.yaml").write_text(yaml.safe_dump(cfg))
    monkeypatch.setenv("STORETUNE_SESSION_SECRET", "test-secret-key")
    return UvicornServer(create_app(Workspace(root), ScriptedEngine()))


def _http_login(base: str, password: str, forwarded: str | None = None) -> httpx.Response:
    with httpx.Client(base_url=base, timeout=30) as c:
        page = c.get("/review/login")
        headers = {"X-Forwarded-For": forwarded} if forwarded else {}
        return c.post(
            "/review/login",
            data={"username": "ana", "password": password, "csrf": csrf_of(page.text)},
            headers=headers,
        )


def test_forwarded_for_cannot_dodge_the_login_lockout(tmp_path, monkeypatch):
    with _review_server(tmp_path, monkeypatch) as server:
        for i in range(5):
            r = _http_login(server.url, "guess", forwarded=f"203.0.113.{i}")
            assert "Wrong username or password" in r.text
        r = _http_login(server.url, PASSWORD, forwarded="198.51.100.77")
        assert r.status_code == 401 and "Too many failed logins" in r.text


def test_storetune_serve_runs_uvicorn_without_its_proxy_trust(tmp_path, monkeypatch, serve_base):
    import uvicorn

    from storetune.serve import app as app_module

    seen = {}
    engine = ScriptedEngine()
    engine.kind = "scripted"
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(kw))
    monkeypatch.setattr(app_module.Engine, "from_workspace", lambda ws, **kw: engine)
    ws = Workspace(make_workspace(tmp_path / "ws", serve_base))
    app_module.serve_workspace(ws, log=lambda *a: None)
    assert seen["proxy_headers"] is False


def test_trusted_proxies_are_believed_and_others_are_not(tmp_path, monkeypatch):
    serve = {"trusted_proxies": ["127.0.0.1", "10.0.0.0/8"]}
    with _review_server(tmp_path, monkeypatch, serve) as server:
        # behind the (trusted) loopback proxy, each forwarded client has its own count
        for i in range(5):
            _http_login(server.url, "guess", forwarded=f"203.0.113.{i}")
        assert _http_login(server.url, PASSWORD, forwarded="203.0.113.50").status_code == 303
        # a client cannot pick its address by writing the header itself: the proxy
        # appends the real one, and that right-most untrusted address is what counts
        for i in range(5):
            _http_login(server.url, "guess", forwarded=f"198.51.100.{i}, 192.0.2.9, 10.1.2.3")
        r = _http_login(server.url, PASSWORD, forwarded="198.51.100.99, 192.0.2.9")
        assert "Too many failed logins" in r.text
    # from a peer not in the list (TestClient's peer is "testclient"), headers are ignored
    with TestClient(server.app, follow_redirects=False) as client:
        for i in range(5):
            page = client.get("/review/login")
            client.post(
                "/review/login",
                data={"username": "ana", "password": "x", "csrf": csrf_of(page.text)},
                headers={"X-Forwarded-For": f"203.0.113.{100 + i}"},
            )
        assert "Too many failed logins" in login(client).text


def test_trusted_proxies_must_be_addresses():
    assert ServeConfig(trusted_proxies=["::1", " 10.0.0.0/8"]).trusted_proxies == [
        "::1",
        "10.0.0.0/8",
    ]
    with pytest.raises(ValueError, match="not an IP address"):
        ServeConfig(trusted_proxies=["proxy.example.com"])


# ---- item 6: the same work for unknown and known usernames -----------------------------------


def test_every_login_attempt_runs_one_password_hash_of_the_same_cost(site, monkeypatch):  # noqa: F811
    client, _, _ = site
    client.get("/review/login")  # the app's review state exists before counting starts
    calls: list[int] = []
    real = hashlib.pbkdf2_hmac

    def counting(name, password, salt, iterations, *rest):
        calls.append(iterations)
        return real(name, password, salt, iterations, *rest)

    monkeypatch.setattr(hashlib, "pbkdf2_hmac", counting)
    attempts = [
        ("nobody", "whatever", 401),  # no such user
        ("ana", "wrong", 401),  # a user with a password hash
        ("ben", "wrong", 401),  # a user whose password is in the environment
        ("ana", PASSWORD, 303),
    ]
    for user, password, status in attempts:
        calls.clear()
        client.cookies.clear()
        assert login(client, user, password).status_code == status
        assert calls == [1000], (user, calls)  # ana's hash uses 1000 iterations


# ---- item 10: ticket ids past SQLite's integers ----------------------------------------------


@pytest.mark.parametrize("ticket_id", [2**63, 2**64 + 1, -(2**63) - 1])
def test_huge_ticket_ids_are_not_found_not_a_500(site, ticket_id):  # noqa: F811
    client, queue_, ids = site
    raw = TestClient(client.app, raise_server_exceptions=False, follow_redirects=False)
    r = raw.get(f"/v1/tickets/{ticket_id}", headers=AUTH)
    assert r.status_code == 404, r.text
    assert r.json()["error"]["type"] == "not_found_error"
    assert raw.get(f"/v1/tickets/{ids[0]}", headers=AUTH).status_code == 200
    login(raw)
    token = csrf_of(raw.get("/review").text)
    for action, data in [("approve", {}), ("edit", {"text": "hi"}), ("reject", {"reason": "x"})]:
        r = raw.post(f"/review/{ticket_id}/{action}", data={"csrf": token, **data})
        assert r.status_code == 303, r.text
        assert "does+not+exist" in r.headers["location"]
    assert queue_.get(ticket_id) is None and queue_.audit(ticket_id) == []


def test_an_unexpected_error_is_json_not_plain_text(site):  # noqa: F811
    client, _, _ = site
    app = client.app

    @app.get("/v1/_boom")
    async def boom():
        raise RuntimeError("kaboom")

    raw = TestClient(app, raise_server_exceptions=False)
    r = raw.get("/v1/_boom", headers=AUTH)
    assert r.status_code == 500
    assert r.json()["error"]["type"] == "server_error" and "kaboom" not in r.text


# ---- item 11: the schema needs a key; the review pages refuse framing -------------------------


def test_openapi_schema_needs_the_api_key(site):  # noqa: F811
    client, _, _ = site
    assert client.get("/openapi.json").status_code == 401
    assert client.get("/openapi.json", headers={"Authorization": "Bearer nope"}).status_code == 401
    r = client.get("/openapi.json", headers=AUTH)
    assert r.status_code == 200 and "/v1/chat/completions" in r.json()["paths"]
    for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        assert client.get(path).status_code == 404


def test_review_pages_refuse_framing_and_carry_a_csp(site):  # noqa: F811
    client, _, ids = site
    pages = [client.get("/review/login"), client.get("/review")]  # a page and a redirect
    login(client)
    pages += [client.get("/review"), client.get("/review/history")]
    pages.append(client.get("/review/static/review.css"))
    for r in pages:
        assert r.headers["x-frame-options"] == "DENY", r.url
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
        assert "script-src" not in csp  # no script may run at all
    assert pages[2].status_code == 200 and f'id="ticket-{ids[0]}"' in pages[2].text


def test_api_answers_do_not_need_page_headers(site):  # noqa: F811
    client, _, _ = site
    r = client.get("/health")
    assert "content-security-policy" not in r.headers


def test_queue_reads_for_ids_beyond_sqlite(tmp_path):
    q = ReviewQueue(tmp_path / "store.db")
    t = q.add(new_ticket())
    assert q.get(2**63) is None
    with pytest.raises(Exception, match="does not exist"):
        q.approve(2**70, "ana")
    assert q.get(t).status == "waiting"


def test_expired_sessions_are_refused_and_dropped(site):  # noqa: F811
    client, _, _ = site
    login(client)
    cookie = client.cookies.get(SESSION)
    store = client.app.state.review_sessions.store
    store.conn.execute("UPDATE review_sessions SET expires = 1")
    store.conn.commit()
    assert client.get("/review").status_code == 303
    assert store.count() == 0
    assert not _works(client, cookie)
