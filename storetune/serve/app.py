"""The FastAPI app behind `storetune serve`.

`create_app` wires the engine, the OpenAI routes, the hardening (keys, body limit,
admission queue, timeouts) and /health + /metrics. Other routers (tickets, review)
are included at the marked spot and find everything on `app.state`:

    app.state.ws         the Workspace
    app.state.cfg        the validated StoreConfig (store.yaml)
    app.state.serve_cfg  cfg.serve, or the override given to create_app
    app.state.engine     the Engine (generate / agenerate / astream)
    app.state.limiter    admission: `async with app.state.limiter.slot(): ...` (429 when full)
    app.state.metrics    Prometheus metrics (its .registry is what /metrics serves)
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import JSONResponse, Response

from storetune.config import ServeConfig
from storetune.errors import StoretuneError
from storetune.progress import progress as progress_bar
from storetune.serve import integrations
from storetune.serve.engine import Engine
from storetune.serve.openai import router as openai_router
from storetune.serve.security import (
    BodyLimitMiddleware,
    KeyChecker,
    Limiter,
    Metrics,
    MetricsMiddleware,
    PageHeadersMiddleware,
    ProxyHeadersMiddleware,
    install_error_handlers,
    require_api_key,
    uvicorn_options,
)
from storetune.workspace import Workspace


def api_keys_or_refuse(serve_cfg: ServeConfig, insecure_no_auth: bool, where: str) -> list[str]:
    """The configured keys; no keys and no explicit opt-out is a start-up error."""
    keys = serve_cfg.resolved_api_keys()
    if not keys and not insecure_no_auth:
        raise StoretuneError(
            f"{where}: no API keys configured (serve.api_keys is empty and "
            f"${serve_cfg.api_keys_env} is unset); refusing to serve without authentication",
            hint=f"export {serve_cfg.api_keys_env}=<a long random key> (comma-separate "
            "several), or pass --insecure-no-auth for local development only",
        )
    return [] if insecure_no_auth and not keys else keys


def create_app(
    workspace: Workspace,
    engine: Engine | None = None,
    *,
    serve_config: ServeConfig | None = None,
    insecure_no_auth: bool = False,
    progress: Callable[[str], None] | None = None,
) -> FastAPI:
    """The server app for a workspace; builds the engine from the registry if none is given."""
    cfg = workspace.config()
    serve_cfg = serve_config or cfg.serve
    keys = api_keys_or_refuse(serve_cfg, insecure_no_auth, str(workspace.config_path))
    owns_engine = engine is None
    if engine is None:
        engine = Engine.from_workspace(workspace, progress=progress)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        integrations.start(app)  # delivers what the helpdesks are owed, from store.db
        yield
        integrations.stop(app)
        if owns_engine:
            engine.close()

    app = FastAPI(
        title=f"storetune — {cfg.brand.name}",
        lifespan=lifespan,
        docs_url=None,  # no public API explorer on a production port
        redoc_url=None,
        openapi_url=None,  # served below, behind the API key like /v1
    )
    app.state.ws = workspace
    app.state.cfg = cfg
    app.state.serve_cfg = serve_cfg
    app.state.engine = engine
    app.state.keys = KeyChecker(keys)
    app.state.limiter = Limiter(serve_cfg.max_concurrency, serve_cfg.queue_size)
    app.state.metrics = Metrics()
    app.state.metrics.bind(engine, app.state.limiter)

    install_error_handlers(app)
    app.include_router(openai_router)
    # ---- more routers (part B): /v1/tickets (routing) and /review (queue UI) ----
    from storetune.serve.review.routes import router as review_router
    from storetune.serve.tickets import router as tickets_router
    from storetune.serve.tickets import start_warm_up

    app.include_router(tickets_router)
    app.include_router(review_router)
    integrations.mount(app)  # /v1/integrations/{zendesk,gorgias} (helpdesk webhooks)
    start_warm_up(app)  # loads the index + embedder in the background when there is one
    # ---- end of the routers ----
    app.add_api_route(
        "/openapi.json",
        openapi_schema,
        methods=["GET"],
        include_in_schema=False,
        dependencies=[Depends(require_api_key)],
    )
    app.add_api_route("/health", health, methods=["GET"], include_in_schema=False)
    app.add_api_route("/metrics", metrics, methods=["GET"], include_in_schema=False)

    # Added last = runs first: metrics see every answer, including 413s.
    app.add_middleware(BodyLimitMiddleware, max_bytes=serve_cfg.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(PageHeadersMiddleware)
    if serve_cfg.trusted_proxies:  # outermost: everything inside sees the real client
        app.add_middleware(ProxyHeadersMiddleware, trusted=serve_cfg.trusted_proxies)
    return app


async def openapi_schema(request: Request) -> Response:
    """The API's OpenAPI document, for clients and code generators that hold a key."""
    return JSONResponse(request.app.openapi())


async def health(request: Request) -> Response:
    """Liveness and load, without auth (for load balancers and `curl`)."""
    state = request.app.state
    engine: Engine = state.engine
    alive = engine.is_alive()
    body = {
        "status": "ok" if alive else "engine stopped",
        "base_model": engine.base_name,
        "models": [e.id for e in engine.models()],
        "default_model": engine.default_model,
        "in_flight": state.limiter.active,
        "queue_depth": engine.queue_depth,
        "capacity": state.limiter.capacity,
        "threads": _torch_threads(),
    }
    return JSONResponse(body, status_code=200 if alive else 503)


def _torch_threads() -> int:
    import torch  # already loaded by the engine

    return torch.get_num_threads()


async def metrics(request: Request) -> Response:
    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )


def _layout_warnings(registry, names) -> list[str]:
    """One line per served version trained on an older prompt layout."""
    from storetune.chat.prompt import layout_warning
    from storetune.models.registry import ModelRef

    out = []
    for name in names:
        try:
            info = registry.info(registry.resolve(ModelRef.parse(name)))
        except StoretuneError:
            continue  # the engine already said what it could not load
        if warning := layout_warning(info):
            out.append(warning)
    return out


def serve_workspace(
    workspace: Workspace,
    host: str = "127.0.0.1",
    port: int = 8000,
    insecure_no_auth: bool = False,
    log: Callable[[str], None] = print,
    engine_kind: str | None = None,
) -> None:
    """Load the engine (with a progress bar) and run uvicorn until interrupted;
    `engine_kind` (auto, llamacpp, torch) overrides serve.engine."""
    import uvicorn

    from storetune.models.registry import Registry

    cfg = workspace.config()
    # Refuse before the (slow) model load, not after it.
    api_keys_or_refuse(cfg.serve, insecure_no_auth, str(workspace.config_path))
    if insecure_no_auth and host not in ("127.0.0.1", "localhost", "::1"):
        log(f"[bold yellow]warning:[/] serving without authentication on {host}")
    if cfg.serve.threads:
        import torch

        torch.set_num_threads(cfg.serve.threads)  # this process only serves: global is fine
    names = (
        cfg.serve.adapters
        if cfg.serve.adapters is not None
        else Registry(workspace.models_dir).names()
    )
    label = "loading base model and adapters"
    with progress_bar(label, len(names), transient=True, rate=False) as bar:

        def advance(name: str) -> None:
            bar.advance(1, adapter=name)

        kwargs = {"engine": engine_kind} if engine_kind else {}
        engine = Engine.from_workspace(workspace, progress=advance, **kwargs)
        app = create_app(workspace, engine, insecure_no_auth=insecure_no_auth)
    for warning in _layout_warnings(Registry(workspace.models_dir), names):
        log(f"[bold yellow]warning:[/] {warning}")
    log(
        f"serving {engine.base_name} with {', '.join(e.id for e in engine.models())} "
        f"on http://{host}:{port}/v1 (default model: {engine.default_model}; "
        f"engine: {engine.kind})"
    )
    try:
        # proxy headers: see storetune.serve.security.uvicorn_options
        uvicorn.run(app, host=host, port=port, log_level="info", **uvicorn_options())
    finally:
        engine.close()
