"""The `serve:` block of store.yaml: limits, keys and review settings for `storetune serve`."""

from __future__ import annotations

import ipaddress
import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DEFAULT_KEYS_ENV = "STORETUNE_API_KEYS"
DEFAULT_SESSION_ENV = "STORETUNE_SESSION_SECRET"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReviewUser(_Strict):
    """An agent who may log in to the review page.

    Give either a password hash (made with `python -m storetune.serve.security
    hash-password`) or the name of an environment variable that holds the password,
    so no plain password has to sit in store.yaml.
    """

    username: str = Field(min_length=1)
    password_hash: str | None = Field(
        None, description="pbkdf2_sha256$<iterations>$<salt>$<hash> from hash-password."
    )
    password_env: str | None = Field(
        None, description="Environment variable holding this user's password."
    )

    @model_validator(mode="after")
    def _one_secret(self) -> ReviewUser:
        if not (self.password_hash or self.password_env):
            raise ValueError("give password_hash or password_env")
        return self


class ServeConfig(_Strict):
    """Options for `storetune serve`; every limit answers with a clear HTTP error."""

    api_keys: list[str] = Field(
        default_factory=list,
        description="Bearer keys accepted on /v1 routes (prefer api_keys_env for secrets).",
    )
    api_keys_env: str = Field(
        DEFAULT_KEYS_ENV,
        description="Environment variable with more keys, comma-separated.",
    )
    max_body_bytes: int = Field(
        64 * 1024, gt=0, description="Larger request bodies get 413 before they are parsed."
    )
    max_tokens: int = Field(
        512, gt=0, description="Cap on max_tokens; requests asking for more get 400."
    )
    default_max_tokens: int = Field(
        256, gt=0, description="max_tokens when a request gives none (capped at max_tokens)."
    )
    max_concurrency: int = Field(
        8, gt=0, description="Generations running at once (one batch on the engine)."
    )
    queue_size: int = Field(
        32, ge=0, description="Requests allowed to wait beyond max_concurrency; more get 429."
    )
    request_timeout_s: float = Field(
        120.0, gt=0, description="Seconds from arrival to a finished reply; later gets 504."
    )
    batch_window_ms: float = Field(
        4.0, ge=0, description="How long an idle engine waits to batch concurrent requests."
    )
    engine: Literal["auto", "llamacpp", "torch"] = Field(
        "auto",
        description="What generates: llamacpp (llama.cpp on GGUF copies of the base and "
        "each adapter, converted once and cached; several times faster on CPU), torch "
        "(transformers + peft), or auto: llamacpp when make llama-cpp installed it.",
    )
    gguf_type: Literal["f16", "bf16", "q8_0", "f32"] = Field(
        "f16",
        description="Weight type of the llamacpp engine's GGUF copies; f16 matches torch's "
        "greedy output, q8_0 is faster and drifts after a few tokens.",
    )
    merge_adapters: Literal["auto", "yes", "no"] = Field(
        "auto",
        description="llamacpp engine: run each adapter as its own GGUF copy with the "
        "LoRA folded into the weights (faster decode; one copy of the model per adapter "
        "in memory) instead of applying it at run time; auto: when the base GGUF is "
        "under 1 GiB.",
    )
    context_tokens: int = Field(
        8192,
        ge=512,
        description="llamacpp engine: tokens of key/value cache per context, shared by the "
        "requests running together (never less than the model's context; ~23 KB a token "
        "on the default model).",
    )
    contexts: int = Field(
        2,
        ge=1,
        description="llamacpp engine: caches kept at once, one per adapter in use; past "
        "that the least recently used is emptied and given to the adapter asked for.",
    )
    threads: int | None = Field(
        None,
        gt=0,
        description="compute threads for the server process (default: torch's, one per "
        "core); 1 is faster when other heavy processes share the cores.",
    )
    default_model: str | None = Field(
        None,
        description="Model for requests that name none: default the 'support' adapter "
        "when trained, else the base model.",
    )
    adapters: list[str] | None = Field(
        None, description="Registry names to load (default: every trained name)."
    )
    review_mode: Literal["approval", "auto"] = Field(
        "approval",
        description="approval: every draft waits for an agent; auto: confident drafts are sent.",
    )
    review_users: list[ReviewUser] = Field(
        default_factory=list, description="Agents allowed to log in to the review page."
    )
    session_secret_env: str = Field(
        DEFAULT_SESSION_ENV,
        description="Environment variable with the review-session key (set it so sessions "
        "survive a restart; a new key ends every session).",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or networks (127.0.0.1, 10.0.0.0/8) of reverse proxies whose "
        "X-Forwarded-For / X-Forwarded-Proto are believed; from anyone else they are ignored "
        "(the login lockout counts the connection's own address). Empty: no proxy trusted.",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                raise ValueError(
                    f"{entry!r} is not an IP address or network (e.g. 127.0.0.1, 10.0.0.0/8)"
                ) from None
        return [e.strip() for e in value]

    def resolved_api_keys(self) -> list[str]:
        """Keys from store.yaml plus the comma-separated environment variable."""
        from_env = os.environ.get(self.api_keys_env, "")
        keys = [k.strip() for k in [*self.api_keys, *from_env.split(",")]]
        return list(dict.fromkeys(k for k in keys if k))
