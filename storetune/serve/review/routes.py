"""The review page: server-rendered HTML forms, no JavaScript build step.

/review lists waiting drafts with the customer's message, the catalog facts used
and the router's reasons; an agent approves in one click, edits then sends, or
rejects with a reason. Agents log in with the users of store.yaml
(`serve.review_users`, pbkdf2 hashes or a password in an environment variable).
Sessions are server-side rows in store.db (`review_sessions`) behind a random
cookie: logging out, removing the agent from store.yaml or changing their password
ends them, also across a restart. The key in `serve.session_secret_env` binds a
session to the password entry it was opened with (a random per-process key when
unset: sessions then end with the server). Every form carries the session's CSRF
token, the cookies are SameSite=Strict and HttpOnly, and the pages may not be
framed (X-Frame-Options, Content-Security-Policy: storetune.serve.security).
Failed logins are throttled per client address, which comes from X-Forwarded-For
only behind a proxy listed in `serve.trusted_proxies`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
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

from storetune.serve.security import PBKDF2_ITERATIONS, client_address, verify_password
from storetune.store.review import ReviewError, ReviewQueue, ReviewSession, ReviewSessions

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
    csrf: str  # the token every form of this session carries
    token_hash: str  # the session's key in store.db


def _token_hash(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


class Sessions:
    """Server-side review sessions (store.db's `review_sessions`) and a login-failure
    throttle.

    The cookie is a random token; store.db keeps only its SHA-256, with the agent, an
    HMAC (under the session secret) of the agent's password entry at login, a CSRF token
    and the expiry. A session is valid only while its row exists, the agent is still in
    `serve.review_users` and their password entry is unchanged: logout deletes the row,
    and removing an agent or changing their password ends their sessions, also across a
    restart (with the same secret; a new secret ends every session).
    """

    def __init__(self, secret: bytes, store: ReviewSessions, users: list) -> None:
        self.secret = secret
        self.store = store
        self.users = {u.username: u for u in users}
        self._credentials = {name: self._credential(u) for name, u in self.users.items()}
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()
        ended = store.keep_only(self._credentials, int(time.time()))
        if ended:
            log.info("review: %d stale session(s) ended (expired, agent removed or changed)", ended)

    def _credential(self, user) -> str:
        # What the agent logs in with; a new hash or a new password in the environment
        # gives a new value, so the sessions started with the old one stop working.
        entry = (
            f"hash:{user.password_hash}"
            if user.password_hash
            else f"env:{user.password_env}:{os.environ.get(user.password_env or '', '')}"
        )
        message = f"{user.username}\0{entry}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()

    def issue(self, user: str) -> tuple[str, Session]:
        cookie = secrets.token_urlsafe(32)
        row = ReviewSession(
            user,
            self._credentials[user],
            secrets.token_urlsafe(24),
            int(time.time()) + SESSION_SECONDS,
        )
        self.store.add(_token_hash(cookie), row)
        return cookie, Session(user, row.csrf, _token_hash(cookie))

    def read(self, cookie: str | None) -> Session | None:
        if not cookie or len(cookie) > 200:
            return None
        key = _token_hash(cookie)
        row = self.store.get(key)
        if row is None:
            return None
        current = self._credentials.get(row.username)
        if (
            row.expires <= time.time()
            or current is None
            or not hmac.compare_digest(current, row.credential)
        ):
            self.store.delete(key)
            return None
        return Session(row.username, row.csrf, key)

    def end(self, session: Session) -> None:
        self.store.delete(session.token_hash)

    def throttled(self, client: str) -> bool:
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._failures.get(client, []) if now - t < FAILURE_WINDOW_S]
            self._failures[client] = recent
            return len(recent) >= MAX_FAILURES

    def failed(self, client: str) -> None:
        with self._lock:
            self._failures.setdefault(client, []).append(time.monotonic())


_STATE_LOCK = threading.Lock()


def _state(request: Request) -> Sessions:
    """Per-app review state (secret, sessions, throttle), created on first use.

    Sessions live in store.db; a workspace without one yet keeps them in memory (they
    end with the server, and there is nothing to review until `storetune ingest`)."""
    app_state = request.app.state
    with _STATE_LOCK:
        sessions = getattr(app_state, "review_sessions", None)
        if sessions is None:
            serve_cfg = app_state.serve_cfg
            secret = os.environ.get(serve_cfg.session_secret_env, "").encode()
            db_path = app_state.ws.db_path
            store = ReviewSessions(db_path if db_path.exists() else ":memory:")
            sessions = Sessions(secret or secrets.token_bytes(32), store, serve_cfg.review_users)
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
    """True when store.yaml has this user and the password matches.

    Every attempt runs exactly one password hash of the same cost, whether the user
    exists (hash or environment password) or not, so the response time does not tell
    which usernames exist."""
    users = _state(request).users
    user = users.get(username)
    if user is not None and user.password_hash:
        return verify_password(password, user.password_hash)
    verify_password(password, _dummy_hash(request))  # the same work as a real check
    if user is None:
        return False
    expected = os.environ.get(user.password_env or "", "")
    return bool(expected) and hmac.compare_digest(expected.encode(), password.encode())


def _dummy_hash(request: Request) -> str:
    """A hash no password matches, at the cost of the configured ones (the highest
    iteration count among them; hash-password's default when there are none)."""
    state = request.app.state
    dummy = getattr(state, "review_dummy_hash", None)
    if dummy is None:
        counts = [
            int(parts[1])
            for u in state.serve_cfg.review_users
            if u.password_hash
            and len(parts := u.password_hash.split("$")) == 4
            and parts[1].isdigit()
        ]
        iterations = max(counts, default=PBKDF2_ITERATIONS)
        salt = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode()
        dummy = f"pbkdf2_sha256${iterations}${salt}${'A' * 43}="
        state.review_dummy_hash = dummy
    return dummy


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
    client = client_address(request)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected, csrf):
        return await login_page(request, "Your login form expired; please try again.")
    if sessions.throttled(client):
        return await login_page(request, "Too many failed logins; wait a few minutes.")
    # PBKDF2 takes tens of milliseconds: off the event loop, so logins never stall the API
    if not await asyncio.to_thread(check_password, request, username.strip(), password):
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
        _state(request).end(session)  # the cookie stops working, wherever it was copied
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
    notify = getattr(request.app.state, "on_review_decision", None)
    if notify is not None:
        notify(ticket)  # a helpdesk ticket's reply is posted now, not at the next poll
    return _back(done=ticket.status, ticket=ticket.id)


def _back(**params) -> RedirectResponse:
    return RedirectResponse(f"/review?{urlencode(params)}", status_code=303)


def _brand(request: Request) -> str:
    return request.app.state.cfg.brand.name


@router.get("/static/review.css")
async def stylesheet() -> FileResponse:
    return FileResponse(HERE / "static" / "review.css", media_type="text/css")
