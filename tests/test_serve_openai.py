"""The `openai` Python package against a live server (tiny model, real adapters)."""

from __future__ import annotations

import openai
import pytest
from test_serve_support import (
    KEY,
    SYSTEM,
    LiveServer,
    chat,
    make_workspace,
    serve_base,
    serve_engine,
    serve_models,
)

from storetune.serve.app import create_app
from storetune.workspace import Workspace

# pytest finds fixtures by name in this module's namespace
FIXTURES = (serve_base, serve_engine, serve_models)

QUESTION = "Where is my order number 5?"


@pytest.fixture(scope="module")
def server(serve_base, serve_models, serve_engine):
    ws = Workspace(make_workspace(serve_models.parent, serve_base, {"max_tokens": 64}))
    with LiveServer(create_app(ws, serve_engine)) as live:
        yield live


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0)


def complete(client, model: str, **kwargs):
    return client.chat.completions.create(
        model=model, messages=chat(QUESTION), max_tokens=kwargs.pop("max_tokens", 12), **kwargs
    )


def test_models_list_has_base_adapters_and_versions(client):
    ids = {m.id for m in client.models.list()}
    assert {"base", "support", "product", "support@v1", "support@v2", "product@v1"} <= ids
    assert client.models.retrieve("support").id == "support"


def test_each_adapter_answers_differently_from_base(client):
    replies = {
        m: complete(client, m).choices[0].message.content for m in ("base", "support", "product")
    }
    assert all(replies.values())
    assert len(set(replies.values())) == 3, replies
    # greedy decoding is deterministic: the same request gives the same reply
    assert complete(client, "support").choices[0].message.content == replies["support"]


def test_explicit_version_is_loaded_on_request(client):
    current = complete(client, "support")
    v2 = complete(client, "support@v2")
    v1 = complete(client, "support@v1")
    assert v2.choices[0].message.content == current.choices[0].message.content
    assert v1.choices[0].message.content != current.choices[0].message.content
    assert v1.model == "support@v1"


def test_streaming_deltas_concatenate_to_the_plain_reply(client):
    plain = complete(client, "product", max_tokens=16)
    stream = client.chat.completions.create(
        model="product",
        messages=chat(QUESTION),
        max_tokens=16,
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces, finish, usage = [], None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    assert "".join(pieces) == plain.choices[0].message.content
    assert len([p for p in pieces if p]) > 1  # really streamed, not one blob
    assert finish == plain.choices[0].finish_reason
    assert usage.completion_tokens == plain.usage.completion_tokens


def test_unknown_model_is_not_found(client):
    with pytest.raises(openai.NotFoundError) as info:
        complete(client, "no-such-adapter")
    assert info.value.body["code"] == "model_not_found"
    assert "no-such-adapter" in info.value.body["message"]


def test_logprobs_match_greedy_choice(client):
    r = complete(client, "support", logprobs=True, top_logprobs=3)
    content = r.choices[0].logprobs.content
    assert content and len(content) <= r.usage.completion_tokens
    for item in content:
        assert item.logprob <= 0
        assert len(item.top_logprobs) == 3
        # greedy: the chosen token is the most likely one
        assert item.logprob == pytest.approx(item.top_logprobs[0].logprob)
    assert "".join(i.token for i in content) == r.choices[0].message.content


def test_length_limit_and_usage(client):
    r = complete(client, "base", max_tokens=5)
    if r.choices[0].finish_reason == "length":
        assert r.usage.completion_tokens == 5
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    assert r.usage.prompt_tokens > len(SYSTEM) // 10  # the system prompt was counted


def test_stop_sequence_cuts_the_reply(client):
    full = complete(client, "support", max_tokens=16).choices[0].message.content
    stop = full[4:6]
    assert stop
    r = complete(client, "support", max_tokens=16, stop=[stop])
    text = r.choices[0].message.content
    assert stop not in text and full.startswith(text) and len(text) <= full.index(stop)
    assert r.choices[0].finish_reason == "stop"


def test_max_tokens_above_cap_is_a_bad_request(client):
    with pytest.raises(openai.BadRequestError) as info:
        complete(client, "base", max_tokens=65)
    assert info.value.body["param"] == "max_tokens"


def test_invalid_parameter_is_a_bad_request_in_openai_shape(client):
    with pytest.raises(openai.BadRequestError) as info:
        complete(client, "base", temperature=-1)
    assert info.value.body["param"] == "temperature"
    assert set(info.value.body) == {"message", "type", "param", "code"}
