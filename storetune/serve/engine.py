"""One base model, every registry adapter beside it, and a batching scheduler.

The base weights are loaded once; each adapter (a few MB of LoRA weights) is
attached to the same model under its own name and chosen per batch, so serving
four adapters costs little more memory than serving one. All torch work happens in
one worker thread: requests are queued, and the worker takes the oldest one plus
every queued request for the same adapter and system prompt, waiting a few
milliseconds when idle so concurrent arrivals share a batch. The system prompt's
key/value cache is computed once per adapter and reused by every later batch, so a
request only prefills its own turns (the policy prompt is most of the tokens).

Decoding is a plain loop over the model's forward pass rather than
``model.generate``, because rows in one batch have their own temperature, top-p,
seed, stop strings and length, stream their text as it is produced, and leave the
batch when they finish.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import logging
import math
import queue
import random
import re
import threading
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from storetune import runtime
from storetune.chat.tokenize import chat_ids
from storetune.errors import StoretuneError
from storetune.llamacpp import common_prefix
from storetune.serve.rules import loops_at

log = logging.getLogger("storetune.serve")

BASE = "base"


class UnknownModelError(StoretuneError):
    """The request named a model that is neither the base nor a trained adapter."""


class RequestError(StoretuneError):
    """The request cannot be served as asked (bad parameter, prompt too long)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class EngineClosedError(StoretuneError):
    """The engine was shut down while the request waited."""


MIN_TEMPERATURE = 1e-4  # greedy in all but name below this; far below, logits/T overflow


@dataclass(frozen=True)
class SamplingParams:
    max_tokens: int = 256
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    logprobs: bool = False
    top_logprobs: int = 0  # alternatives per token, when logprobs is on
    seed: int | None = None
    # end the reply once it loops (storetune.serve.rules.repeating): ticket drafts, where a
    # looping draft is never sent, so the tokens after the loop shows are wasted
    stop_repetition: bool = False

    def validate(self) -> None:
        checks = [
            (self.max_tokens >= 1, "max_tokens", "max_tokens must be at least 1"),
            (math.isfinite(self.temperature) and self.temperature >= 0, "temperature",
             "temperature must be a finite number >= 0"),
            (self.temperature == 0 or self.temperature >= MIN_TEMPERATURE, "temperature",
             f"temperature must be 0 (greedy) or at least {MIN_TEMPERATURE:g}"),
            (0 < self.top_p <= 1, "top_p", "top_p must be in (0, 1]"),
            (0 <= self.top_logprobs <= 20, "top_logprobs", "top_logprobs must be 0..20"),
            (len(self.stop) <= 4, "stop", "at most 4 stop sequences"),
            (all(self.stop), "stop", "stop sequences must not be empty"),
            (self.seed is None or -(2**63) <= self.seed < 2**63, "seed",
             "seed must be a 64-bit integer (-2^63 to 2^63-1)"),
        ]  # fmt: skip
        for ok, param, message in checks:
            if not ok:
                raise RequestError(message, param)


@dataclass
class Generation:
    text: str
    finish_reason: str  # "stop" (end of turn or a stop string), "length" or "repetition"
    prompt_tokens: int
    completion_tokens: int
    model: str = BASE  # the resolved model id, e.g. "support@v2"
    token_logprobs: list[tuple[str, float]] = field(default_factory=list)
    top_logprobs: list[list[tuple[str, float]]] = field(default_factory=list)
    first_token_s: float | None = None  # seconds from submission to the first token

    @classmethod
    def fixed(cls, text: str, model: str) -> Generation:
        """A reply nobody generated (a store template): no tokens, certain by definition."""
        return cls(text, "stop", 0, 0, model, [("", 0.0)])


@dataclass
class Delta:
    """A piece of streamed text; the last one of a request carries the whole result."""

    text: str
    token_logprobs: list[tuple[str, float]] = field(default_factory=list)
    top_logprobs: list[list[tuple[str, float]]] = field(default_factory=list)
    final: Generation | None = None


@dataclass(frozen=True)
class ModelEntry:
    id: str  # "base", "support" (current version), "support@v2"
    adapter_key: str | None  # peft adapter name; None for the base model
    path: Path
    version: int | None = None
    parent: str | None = None


class Job:
    """One request as the worker sees it; events go to `sink` from the worker thread."""

    _ids = itertools.count(1)

    def __init__(
        self,
        messages: list[dict],
        entry: ModelEntry,
        params: SamplingParams,
        sink: Callable[[Delta | BaseException], None],
        seed: int,
    ) -> None:
        self.id = next(self._ids)
        self.messages = messages
        self.entry = entry
        self.params = params
        self.sink = sink
        self.seed = seed
        self.created = time.monotonic()
        self.cancelled = False
        # Requests for the same adapter share a batch; whatever prompt prefix they
        # share (the policy prompt) is found and cached by the engine.
        self.batch_key = entry.adapter_key

    def cancel(self) -> None:
        self.cancelled = True  # read by the worker between decode steps


def _normalise_messages(messages: Sequence[dict]) -> list[dict]:
    if not messages:
        raise RequestError("messages must not be empty", "messages")
    out = []
    for i, m in enumerate(messages):
        role = m.get("role")
        role = "system" if role == "developer" else role
        if role not in ("system", "user", "assistant"):
            raise RequestError(
                f"messages[{i}].role must be system, user or assistant", f"messages[{i}].role"
            )
        content = m.get("content")
        if isinstance(content, list):  # OpenAI content parts: keep the text ones
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if not isinstance(content, str):
            raise RequestError(f"messages[{i}].content must be text", f"messages[{i}].content")
        out.append({"role": role, "content": content})
    return out


def default_bf16() -> bool:
    # Same rule as training and eval: bf16 weights where the CPU has native bf16.
    return runtime.bf16_supported()


class Engine:
    """Serve a base model and its LoRA adapters; thread-safe, one torch worker."""

    def __init__(
        self,
        base_path: Path,
        adapters: dict[str, Path] | None = None,
        *,
        base_name: str | None = None,
        registry_root: Path | None = None,
        bf16: bool | None = None,
        max_batch: int = 8,
        batch_window_ms: float = 4.0,
        default_model: str | None = None,
        seed: int = 0,
        prefix_cache_size: int = 8,
        progress: Callable[[str], None] | None = None,
        engine: str = "torch",
        gguf_type: str = "f16",
        context_tokens: int = 8192,
        max_contexts: int = 2,
        threads: int | None = None,
        merge_adapters: str = "auto",
    ) -> None:
        """`adapters` maps a served name (e.g. "support" or "support@v2") to an adapter dir.

        `engine` is what generates: "torch" (transformers + peft), "llamacpp" (llama.cpp
        on GGUF copies of the base and of each adapter, `gguf_type` weights, one
        `context_tokens` key/value cache per adapter; `merge_adapters` yes/no/auto: each
        adapter as its own merged copy of the weights instead of a run-time LoRA) or
        "auto" (llamacpp if installed and able to run this base model)."""
        self.base_path = Path(base_path)
        self.base_name = base_name or self.base_path.name
        self.registry_root = registry_root
        self.max_batch = max_batch
        self.batch_window_s = batch_window_ms / 1000
        self._rng = random.Random(seed)
        self._prefix_cache: OrderedDict[tuple, Any] = OrderedDict()
        self._prefix_cache_size = prefix_cache_size
        self._recent: dict[str | None, list[int]] = {}  # last prompt per adapter
        self._listeners: list[Callable[[ModelEntry, Generation], None]] = []
        self._base_fingerprint: str | None = None
        self.kind = self._engine_kind(engine, gguf_type)
        self.gguf_type = gguf_type
        self.context_tokens = context_tokens
        self.max_contexts = max_contexts
        self.threads = threads
        self.merge_mode = merge_adapters
        self._load(bf16 if bf16 is not None else default_bf16(), adapters or {}, progress)
        self.default_model = default_model or ("support" if "support" in self._entries else BASE)
        self.resolve(self.default_model)  # fail at start-up, not on the first request
        self._pending: list[Job] = []
        self._running = 0
        self.batch_sizes: deque[int] = deque(maxlen=1000)  # recent batches, for tests/ops
        self.joined = 0  # requests that joined a running batch between decode steps
        self._cond = threading.Condition()
        self._closed = False
        self._worker = threading.Thread(target=self._loop, name="storetune-engine", daemon=True)
        self._worker.start()

    # ---- loading -----------------------------------------------------------------

    def _engine_kind(self, engine: str, gguf_type: str) -> str:
        from storetune import llamacpp

        kind = llamacpp.choose_engine(engine)
        if kind == "llamacpp" and engine == "auto":
            fp = self._fingerprint()
            if not llamacpp.convertible(self.base_path, fp, gguf_type):
                return "torch"
        return kind

    def _fingerprint(self) -> str:
        if self._base_fingerprint is None:
            self._base_fingerprint = runtime.fingerprint(self.base_path)
        return self._base_fingerprint

    def _load(self, use_bf16: bool, adapters: dict[str, Path], progress) -> None:
        self.dtype = runtime.model_dtype(use_bf16)
        self.tokenizer = runtime.load_tokenizer(self.base_path)
        if self.kind == "llamacpp":
            model = self._load_llamacpp()
        else:
            model = runtime.load_base(self.base_path, bf16=use_bf16)
        self.base_model = model
        self.model = model  # becomes the PeftModel once an adapter is attached
        self.context_length = int(getattr(model.config, "max_position_embeddings", 2048))
        self.eos_ids = _eos_ids(self.tokenizer, model)
        self.pad_id = (
            self.tokenizer.pad_token_id
            if self.tokenizer.pad_token_id is not None
            else min(self.eos_ids)
        )
        self._entries: dict[str, ModelEntry] = {
            BASE: ModelEntry(BASE, None, self.base_path),
        }
        self._loaded: set[str] = set()
        for name, path in adapters.items():
            if progress:
                progress(name)
            self._attach(self._entry_for(name, Path(path)))

    def _entry_for(self, served: str, path: Path) -> ModelEntry:
        name, _, ver = served.partition("@")
        version = int(ver.lstrip("v")) if ver else _version_of(path)
        # peft keys its modules by adapter name: keep it free of '@', '.' and '-'
        safe = re.sub(r"\W", "_", name)
        key = f"{safe}__v{version}" if version is not None else safe
        return ModelEntry(served, key, path, version, BASE)

    def _load_llamacpp(self):
        """The base as GGUF in llama.cpp; what the engine reads of the model (config,
        generation config) comes from the Hugging Face directory, no torch weights."""
        from types import SimpleNamespace

        from transformers import AutoConfig, GenerationConfig

        from storetune import llamacpp

        gguf = llamacpp.base_gguf(self.base_path, self._fingerprint(), self.gguf_type)
        self.llama = llamacpp.LlamaModel(gguf, threads=self.threads)
        self.merged = llamacpp.merge_adapters(self.merge_mode, gguf)
        self._contexts: OrderedDict[str | None, llamacpp.Context] = OrderedDict()
        self._lora_files: dict[str, Path] = {}  # adapter key -> its GGUF (LoRA or merged)
        try:
            generation = GenerationConfig.from_pretrained(self.base_path)
        except OSError:  # no generation_config.json: the config's end token is the rule
            generation = None
        config = AutoConfig.from_pretrained(self.base_path)
        return SimpleNamespace(config=config, generation_config=generation or config)

    def context_for(self, adapter_key: str | None):
        """llama.cpp engine: the adapter's own context (its key/value cache). At most
        `max_contexts` exist; past that the least recently used one is emptied and
        handed to this adapter (memory stays bounded, caches never cross adapters)."""
        if self.merged:
            return self._merged_context(adapter_key)
        lora = self._lora_files[adapter_key] if adapter_key is not None else None
        if adapter_key in self._contexts:
            self._contexts.move_to_end(adapter_key)
        elif len(self._contexts) >= self.max_contexts:
            _, ctx = self._contexts.popitem(last=False)
            ctx.set_lora(lora)
            self._contexts[adapter_key] = ctx
        else:
            n_ctx = max(self.context_tokens, self.context_length)
            self._contexts[adapter_key] = self.llama.context(lora, self.max_batch, n_ctx)
        return self._contexts[adapter_key]

    def _merged_context(self, adapter_key: str | None):
        """context_for with merged adapters: each adapter's context is made from its own
        weights; the least recently used one past `max_contexts` is closed with them."""
        from storetune import llamacpp

        if adapter_key in self._contexts:
            self._contexts.move_to_end(adapter_key)
            return self._contexts[adapter_key]
        if len(self._contexts) >= self.max_contexts:
            old, ctx = self._contexts.popitem(last=False)
            ctx.close()
            if old is not None:
                ctx.model.close()
        weights = (
            self.llama
            if adapter_key is None
            else llamacpp.LlamaModel(self._lora_files[adapter_key], threads=self.threads)
        )
        n_ctx = max(self.context_tokens, self.context_length)
        self._contexts[adapter_key] = weights.context(None, self.max_batch, n_ctx)
        return self._contexts[adapter_key]

    def _attach(self, entry: ModelEntry) -> None:
        """Load an adapter's weights beside the base (worker thread or start-up only)."""
        if entry.adapter_key not in self._loaded:
            if self.kind == "llamacpp":
                from storetune import llamacpp

                convert = llamacpp.merged_gguf if self.merged else llamacpp.adapter_gguf
                self._lora_files[entry.adapter_key] = convert(
                    entry.path, self.base_path, self.gguf_type
                )
            else:
                self.model = runtime.attach_adapter(self.model, entry.path, entry.adapter_key)
            self._loaded.add(entry.adapter_key)
        self._entries[entry.id] = entry
        if entry.version is not None:  # "support" is also reachable as "support@v2"
            ref = f"{entry.id.partition('@')[0]}@v{entry.version}"
            self._entries.setdefault(
                ref, ModelEntry(ref, entry.adapter_key, entry.path, entry.version, BASE)
            )

    @classmethod
    def from_workspace(cls, ws, progress: Callable[[str], None] | None = None, **kwargs) -> Engine:
        """The workspace's base model with the current version of every trained adapter."""
        from storetune.models.registry import Registry

        cfg = ws.config()
        base = runtime.resolve_base_model(cfg.base_model)
        registry = Registry(ws.models_dir)
        names = cfg.serve.adapters if cfg.serve.adapters is not None else registry.names()
        adapters = {}
        for name in names:
            path = registry.resolve(name)
            if _fits_base(path, base.fingerprint):
                adapters[name] = path
            else:
                log.warning("skipping %s: trained on a different base model than %s", path, base)
        kwargs.setdefault("max_batch", cfg.serve.max_concurrency)
        kwargs.setdefault("batch_window_ms", cfg.serve.batch_window_ms)
        kwargs.setdefault("default_model", cfg.serve.default_model)
        kwargs.setdefault("seed", cfg.seed)
        kwargs.setdefault("engine", cfg.serve.engine)
        kwargs.setdefault("gguf_type", cfg.serve.gguf_type)
        kwargs.setdefault("context_tokens", cfg.serve.context_tokens)
        kwargs.setdefault("max_contexts", cfg.serve.contexts)
        kwargs.setdefault("threads", cfg.serve.threads)
        kwargs.setdefault("merge_adapters", cfg.serve.merge_adapters)
        return cls(
            base.path,
            adapters,
            base_name=base.name,
            registry_root=ws.models_dir,
            progress=progress,
            **kwargs,
        )

    # ---- model names ---------------------------------------------------------------

    def models(self) -> list[ModelEntry]:
        """Every servable model: base, each adapter's current version, explicit versions."""
        seen = dict(self._entries)
        if self.registry_root is not None:
            from storetune.models.registry import Registry

            reg = Registry(self.registry_root)
            for name in reg.names():
                for v in reg.versions(name):
                    ref = f"{name}@v{v}"
                    if ref not in seen and name in self._entries:
                        seen[ref] = self._entry_for(ref, self.registry_root / name / f"v{v}")
        return list(seen.values())

    def resolve(self, model: str | None) -> ModelEntry:
        """The entry for a requested model id; a known name@vN is loaded on first use."""
        wanted = (model or self.default_model).strip()
        if wanted in (BASE, self.base_name):
            return self._entries[BASE]
        if wanted in self._entries:
            entry = self._entries[wanted]
            return self._promoted(entry) if "@" not in wanted else entry
        name, _, ver = wanted.partition("@")
        if ver and name in self._entries and self.registry_root is not None:
            path = self.registry_root / name / f"v{ver.lstrip('v')}"
            if ver.lstrip("v").isdigit() and path.is_dir() and self._fits(path):
                return self._entry_for(f"{name}@v{int(ver.lstrip('v'))}", path)
        known = ", ".join(sorted(self._entries))
        raise UnknownModelError(
            f"model '{wanted}' does not exist on this server (available: {known})",
            hint="list models with GET /v1/models; train one with 'storetune train --name NAME'",
        )

    def _promoted(self, entry: ModelEntry) -> ModelEntry:
        """The registry's current version of an adapter name: a promotion or rollback
        takes effect on the next request, no restart (the new version loads on first use)."""
        if entry.adapter_key is None or self.registry_root is None or entry.version is None:
            return entry
        from storetune.models.registry import Registry

        try:
            current = Registry(self.registry_root).current(entry.id)
        except StoretuneError as e:  # a broken registry file must not take serving down
            log.warning("keeping %s v%s: %s", entry.id, entry.version, e)
            return entry
        path = self.registry_root / entry.id / f"v{current}"
        if current in (None, entry.version) or not path.is_dir() or not self._fits(path):
            return entry
        return self._entry_for(entry.id, path)

    def _fits(self, adapter_dir: Path) -> bool:
        return _fits_base(adapter_dir, self._fingerprint())

    def add_listener(self, fn: Callable[[ModelEntry, Generation], None]) -> None:
        """Called from the worker thread after every finished generation (metrics)."""
        self._listeners.append(fn)

    # ---- public generation API -----------------------------------------------------

    def submit(
        self,
        messages: Sequence[dict],
        sink: Callable[[Delta | BaseException], None],
        model: str | None = None,
        params: SamplingParams | None = None,
    ) -> Job:
        """Queue a request; `sink` gets Deltas (the last has .final) or an exception."""
        params = params or SamplingParams()
        params.validate()
        entry = self.resolve(model)
        seed = params.seed if params.seed is not None else self._rng.randrange(2**31)
        job = Job(_normalise_messages(messages), entry, params, sink, seed)
        with self._cond:
            if self._closed:
                raise EngineClosedError("the engine is shut down")
            self._pending.append(job)
            self._cond.notify()
        return job

    def generate(
        self, messages: Sequence[dict], model: str | None = None, **kwargs: Any
    ) -> Generation:
        """Blocking generation; kwargs are SamplingParams fields (max_tokens, stop, …)."""
        final = None
        for delta in self.stream_deltas(messages, model, **kwargs):
            final = delta.final or final
        assert final is not None
        return final

    def stream(
        self, messages: Sequence[dict], model: str | None = None, **kwargs: Any
    ) -> Iterator[str]:
        """Blocking iterator of text pieces; their concatenation is the whole reply."""
        for delta in self.stream_deltas(messages, model, **kwargs):
            if delta.text:
                yield delta.text

    def stream_deltas(
        self, messages: Sequence[dict], model: str | None = None, **kwargs: Any
    ) -> Iterator[Delta]:
        events: queue.Queue = queue.Queue()
        job = self.submit(messages, events.put, model, _params(kwargs))
        try:
            while True:
                event = events.get()
                if isinstance(event, BaseException):
                    raise event
                yield event
                if event.final is not None:
                    return
        finally:
            job.cancel()  # a consumer that stops early frees its batch row

    async def agenerate(
        self, messages: Sequence[dict], model: str | None = None, **kwargs: Any
    ) -> Generation:
        final = None
        async for delta in self.astream(messages, model, **kwargs):
            final = delta.final or final
        assert final is not None
        return final

    async def astream(
        self, messages: Sequence[dict], model: str | None = None, **kwargs: Any
    ) -> AsyncIterator[Delta]:
        """Async iterator of Deltas; cancelling the consumer cancels the request."""
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()

        def sink(event: Delta | BaseException) -> None:
            try:
                loop.call_soon_threadsafe(events.put_nowait, event)
            except RuntimeError:  # the event loop is gone; nobody is listening
                job.cancel()

        job = self.submit(messages, sink, model, _params(kwargs))
        try:
            while True:
                event = await events.get()
                if isinstance(event, BaseException):
                    raise event
                yield event
                if event.final is not None:
                    return
        finally:
            job.cancel()

    @property
    def queue_depth(self) -> int:
        """Requests waiting for the worker (not counting the batch being generated)."""
        with self._cond:
            return len(self._pending)

    @property
    def running(self) -> int:
        return self._running

    def is_alive(self) -> bool:
        return self._worker.is_alive() and not self._closed

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._worker.join(timeout=30)
        if self.kind == "llamacpp" and not self._worker.is_alive():
            for key, ctx in self._contexts.items():
                ctx.close()
                if self.merged and key is not None:
                    ctx.model.close()
            self._contexts.clear()
            self.llama.close()

    # ---- the worker ------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self.batch_sizes.append(len(batch))
            self._running = len(batch)
            try:
                self._run_batch(batch)
            finally:
                self._running = 0

    def _next_batch(self) -> list[Job] | None:
        with self._cond:
            while True:
                self._pending = [j for j in self._pending if not j.cancelled]
                if self._closed:
                    for job in self._pending:
                        job.sink(EngineClosedError("the engine is shut down"))
                    self._pending.clear()
                    return None
                if self._pending:
                    break
                self._cond.wait()
            head = self._pending[0]
            # Idle engine: give concurrent requests a moment to join this batch.
            deadline = head.created + self.batch_window_s
            while self._count_like(head) < self.max_batch and time.monotonic() < deadline:
                self._cond.wait(max(deadline - time.monotonic(), 0))
            batch = [j for j in self._pending if j.batch_key == head.batch_key][: self.max_batch]
            self._pending = [j for j in self._pending if j not in batch]
            return batch

    def _count_like(self, head: Job) -> int:
        return sum(j.batch_key == head.batch_key for j in self._pending)

    def _run_batch(self, jobs: list[Job]) -> None:
        import torch

        entry = jobs[0].entry
        decoder = None
        try:
            if entry.adapter_key is not None and entry.adapter_key not in self._loaded:
                self._attach(entry)  # an explicit name@vN, loaded on first request
            rows = self._rows(jobs)
            if not rows:
                return
            with torch.inference_mode(), self._adapter(entry):
                kind = _LlamaDecoder if self.kind == "llamacpp" else _Decoder
                decoder = kind(self, entry.adapter_key, rows)
                decoder.run()
        except Exception as e:  # a broken batch must not kill the worker
            log.exception("generation failed")
            unfinished = decoder.rows if decoder is not None else jobs
            for item in unfinished:
                (item.job if isinstance(item, _Row) else item).sink(e)

    def _rows(self, jobs: list[Job]) -> list[_Row]:
        rows = []
        for job in jobs:
            try:
                rows.append(_Row(job, self._prompt_ids(job), self._system_turn(job)))
            except Exception as e:  # this request's own failure: the others go on
                if not isinstance(e, RequestError):
                    log.exception("request %s failed before decoding", job.id)
                job.sink(e)
        return rows

    def take_joiners(self, adapter_key: str | None, room: int) -> list[_Row]:
        """Queued requests for the running adapter, to join the batch between steps.

        Only while no request for another model is older: a busy adapter must not
        starve the others.
        """
        if room <= 0:
            return []
        with self._cond:
            live = [j for j in self._pending if not j.cancelled]
            if not live or live[0].batch_key != adapter_key:
                return []
            taken = [j for j in live if j.batch_key == adapter_key][:room]
            self._pending = [j for j in live if j not in taken]
        self._running += len(taken)
        return self._rows(taken)

    def requeue(self, jobs: list[Job]) -> None:
        """Put jobs back at the front of the queue (a batch had no room for them)."""
        with self._cond:
            self._pending = jobs + self._pending
            self._cond.notify()

    def _adapter(self, entry: ModelEntry):
        import contextlib

        if self.model is self.base_model:  # no adapter attached to torch (or llama.cpp)
            return contextlib.nullcontext()
        if entry.adapter_key is None:
            return self.model.disable_adapter()
        self.model.set_adapter(entry.adapter_key)
        return contextlib.nullcontext()

    def _prompt_ids(self, job: Job) -> list[int]:
        # Customer text stays text: control strings in it are not control tokens.
        ids = chat_ids(self.tokenizer, job.messages)
        if len(ids) + job.params.max_tokens > self.context_length:
            raise RequestError(
                f"the prompt is {len(ids)} tokens and max_tokens {job.params.max_tokens}; "
                f"together they exceed the model's context of {self.context_length} tokens",
                "messages",
            )
        return ids

    def _system_turn(self, job: Job) -> list[int]:
        """Tokens of the rendered system turn (the policy prompt), if there is one."""
        if job.messages[0]["role"] != "system":
            return []
        return chat_ids(self.tokenizer, job.messages[:1], gen_prompt=False)

    def shared_prefix(
        self, adapter_key: str | None, prompts: list[list[int]], system_turn: list[int]
    ) -> tuple[int, Any]:
        """(length, KV cache) of a prompt prefix every prompt starts with, or (0, None).

        Prefixes are cached per adapter (LoRA changes the keys and values). The
        prefix worth caching is the longest one the prompts share with each other and
        with the adapter's previous prompt, cut at the end of the system turn: the
        policy prompt, even when per-ticket context follows it inside the system
        message. A shorter cached prefix is extended rather than recomputed.
        """
        limit = min(len(p) for p in prompts) - 1  # the first position whose output is needed
        best_len, best = 0, None
        for key, tokens in self._prefix_cache:
            n = len(tokens)
            if key == adapter_key and best_len < n <= limit and _all_start_with(prompts, tokens):
                best_len, best = n, (key, tokens)
        target = self.prefix_target(adapter_key, prompts, system_turn)
        if target >= _MIN_PREFIX and target >= best_len + _MIN_PREFIX:
            return target, self._cache_prefix(adapter_key, prompts[0][:target], best)
        if best is None:
            return 0, None
        self._prefix_cache.move_to_end(best)
        return best_len, self._prefix_cache[best]

    def prefix_target(
        self, adapter_key: str | None, prompts: list[list[int]], system_turn: list[int]
    ) -> int:
        """How many leading tokens are worth caching for this adapter: the longest prefix
        the prompts share with each other and with the adapter's previous prompt, cut at
        the end of the system turn (reusable whatever the customer asks)."""
        limit = min(len(p) for p in prompts) - 1
        target = 0
        others = prompts + ([self._recent[adapter_key]] if adapter_key in self._recent else [])
        if len(others) > 1:
            target = runtime.cacheable_prefix_len(others, limit)
            if system_turn and target >= len(system_turn):
                target = len(system_turn)
        self._recent[adapter_key] = prompts[-1]
        return target

    def _cache_prefix(self, adapter_key: str | None, tokens: list[int], start) -> Any:
        """Compute (extending a shorter cached prefix when there is one) and remember."""
        done = len(start[1]) if start else 0
        cache = copy.deepcopy(self._prefix_cache[start]) if start else None
        cache = runtime.prefill(self.model, tokens, cache, done, logits_to_keep=1)
        key = (adapter_key, tuple(tokens))
        self._prefix_cache[key] = cache
        while len(self._prefix_cache) > self._prefix_cache_size:
            self._prefix_cache.popitem(last=False)
        return cache

    def _finished(self, job: Job, generation: Generation) -> None:
        for fn in self._listeners:
            try:
                fn(job.entry, generation)
            except Exception:  # a metrics hook must never fail a request
                log.exception("engine listener failed")


def _params(kwargs: dict) -> SamplingParams:
    if "stop" in kwargs:
        stop = kwargs["stop"]
        kwargs = {**kwargs, "stop": (stop,) if isinstance(stop, str) else tuple(stop or ())}
    try:
        return SamplingParams(**kwargs)
    except TypeError as e:
        raise RequestError(str(e)) from None


def _eos_ids(tokenizer, model) -> set[int]:
    ids = set()
    for source in (tokenizer.eos_token_id, getattr(model.generation_config, "eos_token_id", None)):
        if isinstance(source, int):
            ids.add(source)
        elif isinstance(source, list):
            ids.update(source)
    return ids


def _version_of(path: Path) -> int | None:
    name = path.name
    return int(name[1:]) if name.startswith("v") and name[1:].isdigit() else None


def _fits_base(adapter_dir: Path, base_fingerprint: str) -> bool:
    import json

    info_path = adapter_dir / "version.json"
    if not info_path.exists():
        return True
    recorded = json.loads(info_path.read_text(encoding="utf-8")).get("base_model_fingerprint")
    return recorded in (None, base_fingerprint)


class _Row:
    """One request's state inside a running batch: tokens, text so far, what was sent."""

    def __init__(self, job: Job, prompt_ids: list[int], system_turn: list[int]) -> None:
        import torch

        self.job = job
        self.prompt = prompt_ids
        self.system_turn = system_turn
        self.ids: list[int] = []
        self.sent = ""  # text already handed to the consumer
        self.pending_lp: list[tuple[str, float]] = []
        self.pending_top: list[list[tuple[str, float]]] = []
        self.all_lp: list[tuple[str, float]] = []
        self.all_top: list[list[tuple[str, float]]] = []
        self.first_token_s: float | None = None
        self.generator = torch.Generator().manual_seed(job.seed)
        self.max_stop = max((len(s) for s in job.params.stop), default=0)


class _Decoder:
    """Decode a batch token by token; rows leave when done, queued rows join between steps.

    Joining (continuous batching) keeps time-to-first-token low under load: a new
    request waits for one decode step, not for a whole batch to finish.
    """

    def __init__(self, engine: Engine, adapter_key: str | None, rows: list[_Row]) -> None:
        self.engine = engine
        self.adapter_key = adapter_key
        self.rows = rows
        self.tok = engine.tokenizer

    def run(self) -> None:
        self.cache, self.mask, self.positions, logits = self._prefill(self.rows)
        while self.rows:
            tokens = self._choose(logits)
            keep = [
                i
                for i, (row, t) in enumerate(zip(self.rows, tokens, strict=True))
                if not self._advance(row, t)
            ]
            self._keep(keep)
            joiners = []
            if _joinable(self.cache):
                joiners = self.engine.take_joiners(
                    self.adapter_key, self.engine.max_batch - len(self.rows)
                )
            if self.rows:
                logits = self._step([tokens[i] for i in keep])
            if joiners:
                logits = self._join(joiners, logits if self.rows else None)

    def _prefill(self, rows: list[_Row]):
        """(cache, mask, last positions, next-token logits) for new rows."""
        import torch
        from transformers import DynamicCache

        engine = self.engine
        prompts = [r.prompt for r in rows]
        same_system = all(r.system_turn == rows[0].system_turn for r in rows)
        p, shared = engine.shared_prefix(
            self.adapter_key, prompts, rows[0].system_turn if same_system else []
        )
        cache = runtime.cache_for_rows(shared, len(rows)) if shared is not None else DynamicCache()
        suffixes = [prompt[p:] for prompt in prompts]
        width = max(len(s) for s in suffixes)
        # [prefix | left padding | own tokens]: pads sit between, masked out.
        ids = [[engine.pad_id] * (width - len(s)) + s for s in suffixes]
        own = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in suffixes])
        positions = (p + own.cumsum(-1) - 1).clamp(min=p)
        mask = torch.cat([torch.ones(len(rows), p, dtype=own.dtype), own], dim=1)
        out = engine.model(
            input_ids=torch.tensor(ids),
            attention_mask=mask,
            position_ids=positions,
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        return cache, mask, positions[:, -1], out.logits[:, -1, :]

    def _keep(self, keep: list[int]) -> None:
        import torch

        if len(keep) == len(self.rows):
            return
        self.rows = [self.rows[i] for i in keep]
        self.engine._running = len(self.rows)
        if keep:  # finished rows leave the batch and its cache
            index = torch.tensor(keep)
            self.cache.batch_select_indices(index)
            self.mask = self.mask[index]
            self.positions = self.positions[index]

    def _step(self, tokens: list[int]):
        import torch

        ones = torch.ones(len(self.rows), 1, dtype=self.mask.dtype)
        self.mask = torch.cat([self.mask, ones], 1)
        self.positions = self.positions + 1
        out = self.engine.model(
            input_ids=torch.tensor(tokens).unsqueeze(1),
            attention_mask=self.mask,
            position_ids=self.positions.unsqueeze(1),
            past_key_values=self.cache,
            use_cache=True,
        )
        return out.logits[:, -1, :]

    def _join(self, joiners: list[_Row], logits):
        """Prefill newcomers and append them to the running batch (cache, mask, logits)."""
        import torch

        cache, mask, positions, new_logits = self._prefill(joiners)
        self.engine.joined += len(joiners)
        if logits is None:  # everyone else finished meanwhile
            self.cache, self.mask, self.positions, self.rows = cache, mask, positions, joiners
            return new_logits
        self.mask = _merge_cache(self.cache, self.mask, cache, mask)
        self.positions = torch.cat([self.positions, positions])
        self.rows = self.rows + joiners
        return torch.cat([logits, new_logits])

    def _choose(self, logits) -> list[int]:
        import torch

        logits = logits.float()
        logprobs = torch.log_softmax(logits, dim=-1)
        chosen = []
        for i, row in enumerate(self.rows):
            p = row.job.params
            if p.temperature == 0:
                token = int(torch.argmax(logits[i]))
            else:
                token = _sample(logits[i], p.temperature, p.top_p, row.generator)
            chosen.append(token)
            if p.logprobs:
                self._record_logprobs(row, token, logprobs[i])
        return chosen

    def _record_logprobs(self, row: _Row, token: int, logprobs) -> None:
        import torch

        if token in self.engine.eos_ids:
            return  # the end-of-turn token is not part of the reply
        row.pending_lp.append((self.tok.decode([token]), float(logprobs[token])))
        k = row.job.params.top_logprobs
        if k:
            values, idx = torch.topk(logprobs, k)
            row.pending_top.append(
                [(self.tok.decode([int(t)]), float(v)) for v, t in zip(values, idx, strict=True)]
            )

    def _advance(self, row: _Row, token: int) -> bool:
        """Add a token to a row, send any settled text; True when the row is done."""
        job = row.job
        if row.first_token_s is None:
            row.first_token_s = time.monotonic() - job.created
        row.ids.append(token)
        if job.cancelled:
            return True
        finish = None
        if token in self.engine.eos_ids:
            finish, body = "stop", row.ids[:-1]
        else:
            body = row.ids
        text = self.tok.decode(body, skip_special_tokens=True)
        cut = _first_stop(text, job.params.stop, max(len(row.sent) - row.max_stop, 0))
        if cut is not None:
            text, finish = text[:cut], "stop"
        if finish is None and job.params.stop_repetition and loops_at(len(row.ids), lambda: text):
            finish = "repetition"
        if finish is None and len(row.ids) >= job.params.max_tokens:
            finish = "length"
        settled = text if finish else _settled(text, job.params.stop)
        piece = settled[len(row.sent) :] if settled.startswith(row.sent) else ""
        if piece or finish:
            self._send(row, piece, finish)
        return finish is not None

    def _send(self, row: _Row, piece: str, finish: str | None) -> None:
        row.sent += piece
        row.all_lp += row.pending_lp
        row.all_top += row.pending_top
        delta = Delta(piece, row.pending_lp, row.pending_top)
        row.pending_lp, row.pending_top = [], []
        if finish:
            delta.final = Generation(
                text=row.sent,
                finish_reason=finish,
                prompt_tokens=len(row.prompt),
                completion_tokens=len(row.ids),
                model=row.job.entry.id,
                token_logprobs=row.all_lp,
                top_logprobs=row.all_top,
                first_token_s=row.first_token_s,
            )
            self.engine._finished(row.job, delta.final)
        row.job.sink(delta)


class _LlamaDecoder(_Decoder):
    """The same decoding on llama.cpp: each row owns a sequence (slot) of the adapter's
    context, all rows advance in one llama_decode per step, and a new row starts from a
    copy of the context's cached policy prefix instead of recomputing it."""

    def __init__(self, engine: Engine, adapter_key: str | None, rows: list[_Row]) -> None:
        super().__init__(engine, adapter_key, [])
        self.ctx = engine.context_for(adapter_key)
        self.free = list(range(self.ctx.slots))[::-1]
        # cache cells not yet promised: the prefix's stay held while rows share them
        self.budget = self.ctx.n_ctx - len(self.ctx.prefix)
        self.pending = rows

    def run(self) -> None:
        import torch

        logits = self._start(self._admit(self.pending))
        while self.rows:
            tokens = self._choose(logits)
            going = []
            for row, token in zip(list(self.rows), tokens, strict=True):
                if self._advance(row, token):
                    self._release(row)
                else:
                    going.append((row, token))
            self.rows = [row for row, _ in going]
            self.engine._running = len(self.rows)
            joiners = self._admit(
                self.engine.take_joiners(self.adapter_key, len(self.free)) if self.free else []
            )
            parts = []
            if going:
                steps = [(r.slot, t, len(r.prompt) + len(r.ids) - 1) for r, t in going]
                parts.append(torch.from_numpy(self.ctx.step(steps)))
            if joiners:
                parts.append(self._start(joiners))
            if parts:
                logits = torch.cat(parts)

    def _admit(self, rows: list[_Row]) -> list[_Row]:
        """Give rows a slot while the cache has room for their prompt and reply; the
        rest go back to the queue's front (they run in a later batch)."""
        taken, back = [], []
        for row in rows:
            # cells of the cached prefix are shared, not used again by the row
            shared = common_prefix(self.ctx.prefix, row.prompt)
            need = len(row.prompt) - shared + row.job.params.max_tokens
            if self.free and (need <= self.budget or not self.rows + taken):
                row.slot, row.need = self.free.pop(), need
                self.budget -= need
                taken.append(row)
            else:
                back.append(row)
        if back:
            self.engine.requeue([r.job for r in back])
        return taken

    def _release(self, row: _Row) -> None:
        self.ctx.release(row.slot)
        self.free.append(row.slot)
        self.budget += row.need

    def _start(self, rows: list[_Row]):
        import torch

        prompts = [r.prompt for r in rows]
        same_system = all(r.system_turn == rows[0].system_turn for r in rows)
        target = self.engine.prefix_target(
            self.adapter_key, prompts, rows[0].system_turn if same_system else []
        )
        shared = common_prefix(self.ctx.prefix, prompts[0][:target])
        if target >= _MIN_PREFIX and target >= shared + _MIN_PREFIX:
            # the old prefix's cells stay held by rows that copied them
            self.budget -= target
            self.ctx.cache_prefix(prompts[0][:target])
        self.rows = self.rows + rows
        self.engine._running = len(self.rows)
        return torch.from_numpy(self.ctx.start([(r.slot, r.prompt) for r in rows]))


_MIN_PREFIX = 32  # tokens; shorter shared prefixes are not worth a cache entry


def _all_start_with(prompts: list[list[int]], prefix) -> bool:
    n = len(prefix)
    return all(tuple(p[:n]) == tuple(prefix) for p in prompts)


def _joinable(cache) -> bool:
    from transformers.cache_utils import DynamicLayer

    return all(type(layer) is DynamicLayer for layer in cache.layers)


def _merge_cache(a, mask_a, b, mask_b):
    """Append cache b's rows to cache a, left-padding the shorter in time; the new mask."""
    import torch
    import torch.nn.functional as F

    length = max(mask_a.shape[1], mask_b.shape[1])
    pad_a, pad_b = length - mask_a.shape[1], length - mask_b.shape[1]
    for la, lb in zip(a.layers, b.layers, strict=True):
        # zeros at masked positions: attention gives them weight 0, and 0 * 0 stays 0
        la.keys = torch.cat([F.pad(la.keys, (0, 0, pad_a, 0)), F.pad(lb.keys, (0, 0, pad_b, 0))])
        la.values = torch.cat(
            [F.pad(la.values, (0, 0, pad_a, 0)), F.pad(lb.values, (0, 0, pad_b, 0))]
        )
    return torch.cat([F.pad(mask_a, (pad_a, 0)), F.pad(mask_b, (pad_b, 0))])


def _sample(logits, temperature: float, top_p: float, generator) -> int:
    import torch

    probs = torch.softmax(logits / temperature, dim=-1)
    if top_p < 1.0:
        sorted_p, order = torch.sort(probs, descending=True)
        # keep the smallest set whose mass reaches top_p (at least one token)
        drop = sorted_p.cumsum(-1) - sorted_p >= top_p
        sorted_p[drop] = 0
        probs = torch.zeros_like(probs).scatter(0, order, sorted_p)
    return int(torch.multinomial(probs, 1, generator=generator))


def _first_stop(text: str, stops: tuple[str, ...], start: int) -> int | None:
    hits = [i for s in stops if (i := text.find(s, start)) >= 0]
    return min(hits) if hits else None


def _settled(text: str, stops: tuple[str, ...]) -> str:
    """Text safe to send: no half-decoded character, no possible start of a stop string."""
    end = len(text)
    while end and text[end - 1] == "\ufffd":
        end -= 1
    for s in stops:
        for k in range(min(len(s) - 1, end), 0, -1):
            if text[:end].endswith(s[:k]):
                end = min(end, len(text[:end]) - k)
                break
    return text[:end]
