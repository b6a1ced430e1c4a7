"""The review page: server-rendered HTML forms, no JavaScript build step.

/review lists waiting drafts with the customer's message, the catalog facts used
and the router's reasons; an agent approves in one click, edits then sends, or
rejects with a reason. Agents log in with the users of store.yaml
(`serve.review_users`, pbkdf2 hashes or a password in an environment variable);
the session is a cookie signed with HMAC-SHA256 under the key in
`serve.session_secret_env` (a random per-process key when unset: sessions then end
with the server). Every form carries a CSRF token bound to the session, and the
cookies are SameSite=Strict and HttpOnly.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.templating import Jinja2Templates
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from storetune.serve.security import verify_password
from storetune.store.review import ReviewError, ReviewQueue

log = logging.getLogger("storetune.review")

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
router = APIRouter(prefix="/review", include_in_schema=False)

SESSION_COOKIE = "storetune_review"
LOGIN_CSRF_COOKIE = "storetune_login_csrf"
SESSION_SECONDS = 12 * 3600
MAX_FAILURES = 5  # failed logins per client address within FAILURE_WINDOW_S
FAILURE_WINDOW_S = 300


# ---- sessions -------------------------------------------------------------------------------


@dataclass
class Session:
    user: str
    nonce: str  # binds the CSRF token to this login
    expires: int
    csrf: str = ""  # HMAC of the nonce: the token every form of this session carries


class Sessions:
    """Signed, expiring session cookies and a login-failure throttle."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def _sign(self, payload: bytes) -> str:
        return hmac.new(self.secret, payload, hashlib.sha256).hexdigest()

    def _csrf(self, nonce: str) -> str:
        return self._sign(f"csrf:{nonce}".encode())[:32]

    def issue(self, user: str) -> tuple[str, Session]:
        nonce = secrets.token_urlsafe(16)
        s = Session(user, nonce, int(time.time()) + SESSION_SECONDS, self._csrf(nonce))
        payload = base64.urlsafe_b64encode(
            json.dumps({"u": s.user, "n": s.nonce, "e": s.expires}).encode()
        )
        return f"{payload.decode()}.{self._sign(payload)}", s

    def read(self, cookie: str | None) -> Session | None:
        if not cookie or "." not in cookie:
            return None
        payload, _, signature = cookie.rpartition(".")
        if not hmac.compare_digest(self._sign(payload.encode()), signature):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(payload.encode()))
            s = Session(str(data["u"]), str(data["n"]), int(data["e"]))
            s.csrf = self._csrf(s.nonce)
        except (ValueError, KeyError, TypeError):
            return None
        return s if s.expires > time.time() else None

    def throttled(self, client: str) -> bool:
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._failures.get(client, []) if now - t < FAILURE_WINDOW_S]
            self._failures[client] = recent
            return len(recent) >= MAX_FAILURES

    def failed(self, client: str) -> None:
        with self._lock:
            self._failures.setdefault(client, []).append(time.monotonic())


def _state(request: Request):
    """Per-app review state (secret, sessions, queue), created on first use."""
    app_state = request.app.state
    sessions = getattr(app_state, "review_sessions", None)
    if sessions is None:
        env = app_state.serve_cfg.session_secret_env
        secret = os.environ.get(env, "").encode() or secrets.token_bytes(32)
        sessions = Sessions(secret)
        app_state.review_sessions = sessions
    return sessions


def _queue(request: Request) -> ReviewQueue | None:
    state = request.app.state
    queue = getattr(state, "review_queue", None)
    if queue is None and state.ws.db_path.exists():
        queue = ReviewQueue(state.ws.db_path)
        state.review_queue = queue
    return queue


def check_password(request: Request, username: str, password: str) -> bool:
    """True when store.yaml has this user and the password matches (constant time)."""
    users = {u.username: u for u in request.app.state.serve_cfg.review_users}
    user = users.get(username)
    if user is None:
        verify_password(password, _DUMMY_HASH)  # same work for unknown users
        return False
    if user.password_hash:
        return verify_password(password, user.password_hash)
    expected = os.environ.get(user.password_env or "", "")
    return bool(expected) and hmac.compare_digest(expected.encode(), password.encode())


_DUMMY_HASH = (
    "pbkdf2_sha256$240000$c3RvcmV0dW5lLWR1bW15$0000000000000000000000000000000000000000000="
)


def _cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/review",
    )


def _session(request: Request) -> Session | None:
    return _state(request).read(request.cookies.get(SESSION_COOKIE))


def _to_login() -> RedirectResponse:
    return RedirectResponse("/review/login", status_code=303)


# ---- pages ----------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, error: str | None = None) -> Response:
    token = secrets.token_urlsafe(16)
    response = templates.TemplateResponse(
        request,
        "login.html",
        {
            "csrf": token,
            "error": error,
            "brand": _brand(request),
            "no_users": not request.app.state.serve_cfg.review_users,
        },
        status_code=401 if error else 200,
    )
    _cookie(response, request, LOGIN_CSRF_COOKIE, token, 900)
    return response


@router.post("/login")
async def login(
    request: Request,
    username: str = Form(""),
    password: str = Form(""),
    csrf: str = Form(""),
) -> Response:
    sessions = _state(request)
    client = request.client.host if request.client else "?"
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected, csrf):
        return await login_page(request, "Your login form expired; please try again.")
    if sessions.throttled(client):
        return await login_page(request, "Too many failed logins; wait a few minutes.")
    if not check_password(request, username.strip(), password):
        sessions.failed(client)
        log.warning("failed review login for %r from %s", username, client)
        return await login_page(request, "Wrong username or password.")
    cookie, _ = sessions.issue(username.strip())
    response = RedirectResponse("/review", status_code=303)
    _cookie(response, request, SESSION_COOKIE, cookie, SESSION_SECONDS)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/review")
    return response


@router.post("/logout")
async def logout(request: Request, csrf: str = Form("")) -> Response:
    session = _session(request)
    response = _to_login()
    if session is not None and hmac.compare_digest(session.csrf, csrf):
        response.delete_cookie(SESSION_COOKIE, path="/review")
    return response


@router.get("", response_class=HTMLResponse)
async def queue_page(
    request: Request, done: str | None = None, ticket: int | None = None, error: str | None = None
) -> Response:
    session = _session(request)
    if session is None:
        return _to_login()
    queue = _queue(request)
    waiting = queue.tickets("waiting") if queue else []
    counts = queue.counts() if queue else {}
    return templates.TemplateResponse(
        request,
        "queue.html",
        {
            "user": session.user,
            "csrf": session.csrf,
            "tickets": waiting,
            "counts": counts,
            "done": done,
            "done_ticket": ticket,
            "error": error,
            "brand": _brand(request),
            "no_db": queue is None,
        },
    )


@router.get("/history", response_class=HTMLResponse)
async def history_page(request: Request) -> Response:
    session = _session(request)
    if session is None:
        return _to_login()
    queue = _queue(request)
    return templates.TemplateResponse(
        request,
        "history.html",
        {
            "user": session.user,
            "csrf": session.csrf,
            "audit": queue.audit(limit=200) if queue else [],
            "brand": _brand(request),
        },
    )


@router.post("/{ticket_id}/approve")
async def approve(request: Request, ticket_id: int, csrf: str = Form("")) -> Response:
    return _act(request, csrf, lambda q, user: q.approve(ticket_id, user))


@router.post("/{ticket_id}/edit")
async def edit(
    request: Request, ticket_id: int, text: str = Form(""), csrf: str = Form("")
) -> Response:
    return _act(request, csrf, lambda q, user: q.edit(ticket_id, user, text))


@router.post("/{ticket_id}/reject")
async def reject(
    request: Request, ticket_id: int, reason: str = Form(""), csrf: str = Form("")
) -> Response:
    return _act(request, csrf, lambda q, user: q.reject(ticket_id, user, reason))


def _act(request: Request, csrf: str, action) -> Response:
    """Run one queue action for the logged-in agent, then back to the list."""
    session = _session(request)
    if session is None:
        return _to_login()
    if not hmac.compare_digest(session.csrf, csrf):
        return Response("CSRF token missing or wrong; reload the page.", status_code=403)
    queue = _queue(request)
    if queue is None:
        return _back(error="there is no store database yet")
    try:
        ticket = action(queue, session.user)
    except ReviewError as e:
        return _back(error=str(e))
    log.info("review: %s %s ticket %s", session.user, ticket.status, ticket.id)
    return _back(done=ticket.status, ticket=ticket.id)


def _back(**params) -> RedirectResponse:
    return RedirectResponse(f"/review?{urlencode(params)}", status_code=303)


def _brand(request: Request) -> str:
    return request.app.state.cfg.brand.name


@router.get("/static/review.css")
async def stylesheet() -> FileResponse:
    return FileResponse(HERE / "static" / "review.css", media_type="text/css")
