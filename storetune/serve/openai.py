"""OpenAI-compatible routes: GET /v1/models and POST /v1/chat/completions.

`model` picks the adapter ("base", "support", "support@v2"); any OpenAI client
pointed at the server's /v1 works. Differences from OpenAI, on purpose:
temperature defaults to 0 (greedy, so a support reply is reproducible) and n must
be 1. Fields this server does not use (presence_penalty, user, …) are accepted
and ignored so existing clients need no changes.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.responses import JSONResponse, StreamingResponse

from storetune.serve.engine import (
    BASE,
    Delta,
    Engine,
    EngineClosedError,
    Generation,
    ModelEntry,
    RequestError,
    SamplingParams,
    UnknownModelError,
)
from storetune.serve.security import APIError, require_api_key, timeout_error

router = APIRouter(prefix="/v1", dependencies=[Depends(require_api_key)])


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow")


class ChatMessage(_Lenient):
    role: str
    content: str | list[dict] | None = None

    @field_validator("content")
    @classmethod
    def _text_parts(cls, value):
        if isinstance(value, list):
            for i, part in enumerate(value):
                if "text" in part and not isinstance(part["text"], str):
                    raise ValueError(f"content[{i}].text must be a string")
        return value


class StreamOptions(_Lenient):
    include_usage: bool = False


class ChatRequest(_Lenient):
    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2, allow_inf_nan=False)
    top_p: float | None = Field(None, gt=0, le=1, allow_inf_nan=False)
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=20)
    seed: int | None = Field(None, ge=-(2**63), le=2**63 - 1)  # what a 64-bit seed holds
    n: int = 1


# ---- translation between OpenAI requests and the engine ------------------------------------


def engine_kwargs(body: ChatRequest, request: Request) -> dict:
    """SamplingParams for the engine, with the server's token cap applied; every value is
    checked here (400), before the request is admitted or joins anyone's batch."""
    serve_cfg = request.app.state.serve_cfg
    if body.n != 1:
        raise APIError(400, "only n=1 is supported", param="n")
    if body.top_logprobs and not body.logprobs:
        raise APIError(400, "top_logprobs needs logprobs=true", param="top_logprobs")
    default = min(serve_cfg.default_max_tokens, serve_cfg.max_tokens)
    wanted = body.max_completion_tokens or body.max_tokens or default
    if wanted > serve_cfg.max_tokens:
        raise APIError(
            400,
            f"max_tokens {wanted} is above this server's limit of {serve_cfg.max_tokens} "
            "(serve.max_tokens in store.yaml)",
            param="max_tokens",
            code="max_tokens_exceeded",
        )
    kwargs = {
        "max_tokens": wanted,
        "temperature": body.temperature if body.temperature is not None else 0.0,
        "top_p": body.top_p if body.top_p is not None else 1.0,
        "stop": body.stop,
        "logprobs": body.logprobs,
        "top_logprobs": body.top_logprobs or 0,
        "seed": body.seed,
    }
    stop = (body.stop,) if isinstance(body.stop, str) else tuple(body.stop or ())
    try:
        SamplingParams(**(kwargs | {"stop": stop})).validate()
    except RequestError as e:
        raise APIError(400, e.args[0], param=e.param) from None
    return kwargs


def engine_error(exc: Exception) -> APIError:
    """The HTTP error for an engine exception (anything unexpected is a 500)."""
    if isinstance(exc, UnknownModelError):
        return APIError(
            404, exc.args[0], type="not_found_error", param="model", code="model_not_found"
        )
    if isinstance(exc, RequestError):
        return APIError(400, exc.args[0], param=exc.param)
    if isinstance(exc, EngineClosedError):
        return APIError(503, "the server is shutting down", type="server_error", code="unavailable")
    return APIError(500, f"generation failed: {type(exc).__name__}", type="server_error")


def _logprob_item(token: str, logprob: float) -> dict:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8"))}


def logprobs_content(
    token_logprobs: list[tuple[str, float]], top: list[list[tuple[str, float]]]
) -> list[dict]:
    items = []
    for i, (token, lp) in enumerate(token_logprobs):
        item = _logprob_item(token, lp)
        item["top_logprobs"] = [_logprob_item(t, v) for t, v in top[i]] if i < len(top) else []
        items.append(item)
    return items


def usage(gen: Generation) -> dict:
    return {
        "prompt_tokens": gen.prompt_tokens,
        "completion_tokens": gen.completion_tokens,
        "total_tokens": gen.prompt_tokens + gen.completion_tokens,
    }


def _fingerprint(entry: ModelEntry) -> str:
    return f"storetune-{entry.adapter_key or BASE}"


def completion_body(gen: Generation, entry: ModelEntry, want_logprobs: bool) -> dict:
    lp = (
        {"content": logprobs_content(gen.token_logprobs, gen.top_logprobs), "refusal": None}
        if want_logprobs
        else None
    )
    return {
        "id": f"chatcmpl-{secrets.token_hex(12)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": entry.id,
        "system_fingerprint": _fingerprint(entry),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": gen.text, "refusal": None},
                "logprobs": lp,
                "finish_reason": gen.finish_reason,
            }
        ],
        "usage": usage(gen),
    }


# ---- routes ---------------------------------------------------------------------------------


def _model_card(entry: ModelEntry, created: int) -> dict:
    card = {"id": entry.id, "object": "model", "created": created, "owned_by": "storetune"}
    card["root"] = entry.id.partition("@")[0]
    card["parent"] = entry.parent
    return card


def _created(entry: ModelEntry) -> int:
    try:
        return int(entry.path.stat().st_mtime)
    except OSError:
        return 0


@router.get("/models")
async def list_models(request: Request) -> dict:
    engine: Engine = request.app.state.engine
    return {
        "object": "list",
        "data": [_model_card(e, _created(e)) for e in engine.models()],
    }


@router.get("/models/{model_id:path}")
async def get_model(model_id: str, request: Request) -> dict:
    engine: Engine = request.app.state.engine
    try:
        entry = engine.resolve(model_id)
    except UnknownModelError as e:
        raise engine_error(e) from None
    return _model_card(entry, _created(entry))


@router.post("/chat/completions")
async def chat_completions(body: ChatRequest, request: Request):
    state = request.app.state
    engine: Engine = state.engine
    kwargs = engine_kwargs(body, request)
    try:
        entry = engine.resolve(body.model)
    except UnknownModelError as e:
        raise engine_error(e) from None
    messages = [m.model_dump(include={"role", "content"}) for m in body.messages]
    timeout = state.serve_cfg.request_timeout_s
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return await _stream(request, engine, entry, messages, kwargs, timeout, include_usage)
    async with state.limiter.slot():
        try:
            gen = await asyncio.wait_for(engine.agenerate(messages, entry.id, **kwargs), timeout)
        except TimeoutError:
            raise timeout_error(timeout) from None
        except APIError:
            raise
        except Exception as e:
            raise engine_error(e) from None
    return JSONResponse(completion_body(gen, entry, body.logprobs))


async def _stream(request, engine, entry, messages, kwargs, timeout, include_usage):
    """SSE: waits for the first piece before answering, so early errors keep their status."""
    limiter = request.app.state.limiter
    limiter.acquire_or_429()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    deltas = engine.astream(messages, entry.id, **kwargs)
    try:
        first = await asyncio.wait_for(anext(deltas), timeout)
    except BaseException as e:
        limiter.release()
        await deltas.aclose()
        if isinstance(e, TimeoutError):
            raise timeout_error(timeout) from None
        if isinstance(e, Exception) and not isinstance(e, APIError):
            raise engine_error(e) from None
        raise
    events = _sse_events(first, deltas, entry, kwargs["logprobs"], include_usage, deadline, timeout)

    async def body() -> AsyncIterator[bytes]:
        try:
            async for event in events:
                yield event
        finally:
            await deltas.aclose()  # client gone or finished: free the batch row
            limiter.release()

    return StreamingResponse(
        body(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


def _sse(payload: dict | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {data}\n\n".encode()


async def _sse_events(
    first: Delta,
    deltas: AsyncIterator[Delta],
    entry: ModelEntry,
    want_logprobs: bool,
    include_usage: bool,
    deadline: float,
    timeout: float,
) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    base = {
        "id": f"chatcmpl-{secrets.token_hex(12)}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": entry.id,
        "system_fingerprint": _fingerprint(entry),
    }

    def chunk(delta: dict, d: Delta | None, finish: str | None) -> bytes:
        lp = None
        if want_logprobs and d is not None:
            lp = {"content": logprobs_content(d.token_logprobs, d.top_logprobs), "refusal": None}
        choice = {"index": 0, "delta": delta, "logprobs": lp, "finish_reason": finish}
        extra = {"usage": None} if include_usage else {}
        return _sse({**base, "choices": [choice], **extra})

    yield chunk({"role": "assistant", "content": ""}, None, None)
    current = first
    while True:
        if current.text or current.token_logprobs:
            yield chunk({"content": current.text}, current, None)
        if current.final is not None:
            yield chunk({}, None, current.final.finish_reason)
            if include_usage:
                yield _sse({**base, "choices": [], "usage": usage(current.final)})
            yield _sse("[DONE]")
            return
        try:
            current = await asyncio.wait_for(anext(deltas), max(deadline - loop.time(), 0))
        except TimeoutError:
            # Headers are already sent: report the timeout in the stream, as OpenAI does
            # for errors after the first chunk.
            yield _sse(timeout_error(timeout).body())
            return
        except Exception as e:
            yield _sse(engine_error(e).body())
            return
