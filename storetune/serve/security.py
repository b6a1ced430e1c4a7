"""Hardening for the server: API keys, body size, admission queue, errors, metrics.

Everything here is reusable by any router on the app: `require_api_key` is a
FastAPI dependency, `app.state.limiter.slot()` admits a generation or answers 429,
and `APIError` renders in OpenAI's error shape on /v1 routes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import secrets
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

OPENAI_PREFIX = "/v1"

log = logging.getLogger("storetune.serve")


class APIError(Exception):
    """An error answered as {"error": {"message", "type", "param", "code"}}."""

    def __init__(
        self,
        status: int,
        message: str,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type = status, message, type
        self.code, self.param, self.headers = code, param, headers

    def body(self) -> dict:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


# ---- API keys ----------------------------------------------------------------------


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class KeyChecker:
    """Holds only digests of the keys; compares in constant time."""

    def __init__(self, keys: list[str]) -> None:
        self._digests = [_digest(k) for k in keys]

    @property
    def enabled(self) -> bool:
        return bool(self._digests)

    def accepts(self, key: str) -> bool:
        given = _digest(key)
        # compare against every key so the time taken does not reveal which matched
        return any([hmac.compare_digest(given, d) for d in self._digests])


async def require_api_key(request: Request) -> None:
    """FastAPI dependency: `Authorization: Bearer <key>` must name a configured key."""
    checker: KeyChecker = request.app.state.keys
    if not checker.enabled:  # started with --insecure-no-auth
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise APIError(
            401,
            "missing API key: send 'Authorization: Bearer <key>'",
            code="missing_api_key",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not checker.accepts(token.strip()):
        raise APIError(
            401,
            "invalid API key",
            code="invalid_api_key",
            headers={"WWW-Authenticate": "Bearer"},
        )


# ---- passwords for the review login (used by the review page) -------------------------

PBKDF2_ITERATIONS = 240_000


def hash_password(password: str, iterations: int = PBKDF2_ITERATIONS) -> str:
    """pbkdf2_sha256$<iterations>$<salt>$<hash>, for serve.review_users[].password_hash."""
    salt = secrets.token_bytes(16)
    dk = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    b64 = base64.urlsafe_b64encode
    return f"pbkdf2_sha256${iterations}${b64(salt).decode()}${b64(dk).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    try:
        algo, iterations, salt, expected = encoded.split("$")
        if algo != "pbkdf2_sha256":
            return False
        dk = hashlib.pbkdf2_hmac(
            "sha256", password.encode(), base64.urlsafe_b64decode(salt), int(iterations)
        )
    except ValueError:
        return False
    return hmac.compare_digest(base64.urlsafe_b64encode(dk).decode(), expected)


# ---- admission: bounded concurrency + bounded queue ---------------------------------------


class Limiter:
    """Admits at most max_concurrency + queue_size generations; the rest get 429 at once.

    The engine runs up to max_concurrency of the admitted requests in one batch; the
    others wait in its queue. Nothing ever waits here, so an overloaded server
    answers quickly instead of hanging.
    """

    def __init__(self, max_concurrency: int, queue_size: int) -> None:
        self.capacity = max_concurrency + queue_size
        self.active = 0
        self.rejected = 0

    def try_acquire(self) -> bool:
        # Runs on the event loop thread only, so no lock is needed.
        if self.active >= self.capacity:
            self.rejected += 1
            return False
        self.active += 1
        return True

    def release(self) -> None:
        self.active -= 1

    def acquire_or_429(self) -> None:
        if not self.try_acquire():
            raise APIError(
                429,
                f"the server is at capacity ({self.capacity} requests in flight or "
                "queued); retry shortly",
                type="rate_limit_error",
                code="server_busy",
                headers={"Retry-After": "1"},
            )

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        self.acquire_or_429()
        try:
            yield
        finally:
            self.release()


def timeout_error(seconds: float) -> APIError:
    return APIError(
        504,
        f"the request did not finish within {seconds:g} s (serve.request_timeout_s)",
        type="timeout_error",
        code="timeout",
    )


# ---- request body limit (pure ASGI, before anything parses the body) ---------------------


class BodyLimitMiddleware:
    """413 for bodies over the limit: by Content-Length, or counted while reading."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._reject(scope, receive, send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                return await self._reject(scope, receive, send)
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for disconnect as usual

        await self.app(scope, replay, send)

    async def _reject(self, scope, receive, send) -> None:
        error = APIError(
            413,
            f"request body is larger than {self.max_bytes} bytes (serve.max_body_bytes)",
            code="request_too_large",
        )
        await error.response()(scope, receive, send)


# ---- proxies: who the client is -------------------------------------------------------------


def client_address(request: Request) -> str:
    """The client's address as the app sees it: the connection's peer, or what a trusted
    proxy said in X-Forwarded-For (see ProxyHeadersMiddleware); what login throttling
    counts failures by."""
    return request.client.host if request.client else "?"


def uvicorn_options() -> dict:
    """How storetune runs uvicorn: its own proxy-header handling off (by default it trusts
    X-Forwarded-For from loopback, so anyone on the machine could pick their address);
    ProxyHeadersMiddleware honours the headers from `serve.trusted_proxies` only."""
    return {"proxy_headers": False, "server_header": False}


class ProxyHeadersMiddleware:
    """X-Forwarded-For / X-Forwarded-Proto, believed only from configured proxies.

    When the connection comes from an address in `trusted` (IPs or CIDR networks), the
    client becomes the right-most X-Forwarded-For address that is not itself a trusted
    proxy (the left part of the header is whatever the client wrote), and the scheme
    becomes X-Forwarded-Proto. From any other peer the headers are ignored.
    """

    def __init__(self, app, trusted: list[str]) -> None:
        self.app = app
        self.networks = [ipaddress.ip_network(t, strict=False) for t in trusted]

    def trusts(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.strip().strip("[]"))
        except ValueError:
            return False
        return any(ip in net for net in self.networks)

    async def __call__(self, scope, receive, send) -> None:
        client = scope.get("client")
        if scope["type"] in ("http", "websocket") and client and self.trusts(client[0]):
            headers = scope["headers"]
            forwarded = [
                a.strip()
                for name, value in headers
                if name == b"x-forwarded-for"
                for a in value.decode("latin-1").split(",")
                if a.strip()
            ]
            scope = dict(scope)
            if forwarded:
                chain = [a for a in forwarded if not self.trusts(a)]
                scope["client"] = (chain[-1] if chain else forwarded[0], 0)
            protos = [v.decode("latin-1") for n, v in headers if n == b"x-forwarded-proto"]
            proto = protos[-1].split(",")[-1].strip().lower() if protos else ""
            if proto in ("http", "https"):
                ws = scope["type"] == "websocket"
                scope["scheme"] = {"http": "ws", "https": "wss"}[proto] if ws else proto
        await self.app(scope, receive, send)


# ---- security headers on the review pages ---------------------------------------------------

REVIEW_PREFIX = "/review"
PAGE_HEADERS = [
    (b"x-frame-options", b"DENY"),
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        b"frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]


class PageHeadersMiddleware:
    """The review pages may not be framed (clickjacking an approve button), load nothing
    but their own stylesheet, post forms only to this server, and are not cached."""

    def __init__(self, app, prefix: str = REVIEW_PREFIX) -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope, receive, send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (
            path == self.prefix or path.startswith(self.prefix + "/")
        ):
            return await self.app(scope, receive, send)

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in PAGE_HEADERS if n not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


# ---- error rendering -----------------------------------------------------------------------


def _is_openai_path(request: Request) -> bool:
    return request.url.path.startswith(OPENAI_PREFIX)


async def api_error_handler(request: Request, exc: APIError) -> Response:
    return exc.response()


async def validation_error_handler(request: Request, exc: RequestValidationError) -> Response:
    if not _is_openai_path(request):
        from fastapi.exception_handlers import request_validation_exception_handler

        return await request_validation_exception_handler(request, exc)
    first = exc.errors()[0] if exc.errors() else {}
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    param = ".".join(loc) or None
    message = f"{param}: {first.get('msg', 'invalid request')}" if param else "invalid request"
    if first.get("type") == "json_invalid":
        message, param = "request body is not valid JSON", None
    return APIError(400, message, param=param, code="invalid_request").response()


async def http_error_handler(request: Request, exc: StarletteHTTPException) -> Response:
    if not _is_openai_path(request):
        from fastapi.exception_handlers import http_exception_handler

        return await http_exception_handler(request, exc)
    kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
    return APIError(exc.status_code, str(exc.detail), type=kind, headers=exc.headers).response()


async def unexpected_error_handler(request: Request, exc: Exception) -> Response:
    """A bug answers JSON like every other error, never a plain-text traceback page."""
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return APIError(
        500, "internal server error", type="server_error", code="internal_error"
    ).response()


def install_error_handlers(app) -> None:
    app.add_exception_handler(Exception, unexpected_error_handler)
    app.add_exception_handler(APIError, api_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)


# ---- Prometheus metrics ---------------------------------------------------------------------


class Metrics:
    """One registry per app, so several apps (tests) in a process do not collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "storetune_http_requests",
            "HTTP requests by route and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "storetune_http_request_seconds",
            "HTTP request latency (until the last byte) by route",
            ["route"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=r,
        )
        self.queue_depth = Gauge(
            "storetune_queue_depth", "Requests waiting for the engine", registry=r
        )
        self.in_flight = Gauge(
            "storetune_in_flight", "Admitted generation requests (running or queued)", registry=r
        )
        self.rejected = Counter(
            "storetune_rejected", "Requests refused with 429 (queue full)", registry=r
        )
        self.tokens = Counter(
            "storetune_generated_tokens",
            "Completion tokens generated, by model",
            ["model"],
            registry=r,
        )
        self.prompt_tokens = Counter(
            "storetune_prompt_tokens", "Prompt tokens processed, by model", ["model"], registry=r
        )
        self.generations = Counter(
            "storetune_generations",
            "Finished generations by model and finish reason",
            ["model", "finish_reason"],
            registry=r,
        )
        self.ttft = Histogram(
            "storetune_time_to_first_token_seconds",
            "Seconds from arrival at the engine to the first token, by model",
            ["model"],
            buckets=(0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5, 10, 30),
            registry=r,
        )

    def bind(self, engine, limiter: Limiter) -> None:
        self.queue_depth.set_function(lambda: engine.queue_depth)
        self.in_flight.set_function(lambda: limiter.active)
        engine.add_listener(self.record_generation)

    def record_generation(self, entry, generation) -> None:
        model = entry.id
        self.tokens.labels(model).inc(generation.completion_tokens)
        self.prompt_tokens.labels(model).inc(generation.prompt_tokens)
        self.generations.labels(model, generation.finish_reason).inc()
        if generation.first_token_s is not None:
            self.ttft.labels(model).observe(generation.first_token_s)


class MetricsMiddleware:
    """Counts every request by matched route (not raw path: bounded label values)."""

    def __init__(self, app, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = {"code": 500}

        async def send_and_watch(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                if status["code"] == 429:
                    self.metrics.rejected.inc()
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.requests.labels(route, scope["method"], str(status["code"])).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)


# ---- `python -m storetune.serve.security hash-password` ------------------------------------


def _main(argv: list[str]) -> int:
    if argv[:1] != ["hash-password"]:
        print("usage: python -m storetune.serve.security hash-password", file=sys.stderr)
        return 2
    import getpass

    password = os.environ.get("STORETUNE_PASSWORD") or getpass.getpass("password: ")
    print(json.dumps({"password_hash": hash_password(password)}))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
