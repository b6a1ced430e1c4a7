"""llama.cpp as storetune's CPU engine: GGUF files for a base and its adapters, and
batched decoding of several sequences in one context.

One `LlamaModel` holds the base weights once. Each adapter gets its own `Context`
(its own key/value cache, the LoRA applied by llama.cpp at run time — or, for a small
base, its own merged copy of the weights, `merged_gguf`: on the default model 1.3x the
decode speed with the same greedy tokens), so a prompt
prefix cached under one adapter is never reused under another (llama.cpp#26207 is
that bug in llama-server). A context decodes up to `slots` sequences together in
one `llama_decode` per step, the way llama-server's parallel slots do; one extra
sequence keeps the shared policy prompt, and each new row starts from a copy of it
(in the unified cache a copy shares cells: nothing is recomputed or duplicated).

The GGUF files are written by llama.cpp's own converters (shipped in
llama-cpp-python's source distribution; `make llama-cpp` unpacks them) and cached:
the base under the model cache, each adapter inside its registry version.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from storetune.errors import StoretuneError

log = logging.getLogger("storetune.llamacpp")

# f16 keeps greedy output equal to the PyTorch path on nearly every prompt (q8_0 is
# faster but drifts after a few tokens on this model: see docs/serving.md).
DEFAULT_OUTTYPE = "f16"
OUTTYPES = ("f16", "bf16", "q8_0", "f32")


# -- the converters -------------------------------------------------------------------
#
# convert_hf_to_gguf.py knows every architecture llama.cpp runs and identifies the
# tokenizer's pre-tokenizer by how it splits a probe text (a hand-written writer got
# SmolLM2's wrong); convert_lora_to_gguf.py writes adapters in the layout `--lora`
# reads. They run in a child process: they put their own gguf-py first on sys.path,
# which must not replace the `gguf` package transformers uses here.


class ConverterError(StoretuneError):
    def __init__(self, script: str, output: str) -> None:
        tail = "\n".join(output.strip().splitlines()[-15:])
        super().__init__(f"{script} failed:\n{tail}")
        self.output = output


def llama_cpp_converters() -> Path | None:
    """The directory holding llama.cpp's converters, or None when they are not installed.

    STORETUNE_LLAMA_CPP may name a llama.cpp checkout; else the venv's share/llama.cpp.
    """
    env = os.environ.get("STORETUNE_LLAMA_CPP")
    for d in ([Path(env)] if env else []) + [Path(sys.prefix) / "share" / "llama.cpp"]:
        if (d / "convert_hf_to_gguf.py").is_file():
            return d
    return None


def require_converters(why: str) -> Path:
    converters = llama_cpp_converters()
    if converters is None:
        raise StoretuneError(
            f"{why}, which is not installed",
            hint="run 'make llama-cpp' (or set STORETUNE_LLAMA_CPP to a llama.cpp checkout)",
        )
    return converters


def run_converter(script: Path, args: list[str]) -> None:
    """Run one of llama.cpp's converters offline; ConverterError with its output on failure."""
    env = {k: v for k, v in os.environ.items() if k != "NO_LOCAL_GGUF"}
    env["HF_HUB_OFFLINE"] = "1"  # never fetch a base config or tokenizer from the hub
    run = subprocess.run(
        [sys.executable, str(script), *args],
        cwd=script.parent,
        env=env,
        capture_output=True,
        text=True,
    )
    if run.returncode != 0:
        raise ConverterError(script.name, run.stdout + run.stderr)


def convert_hf_to_gguf(model_dir: Path, path: Path, outtype: str, name: str) -> None:
    """A Hugging Face model directory as GGUF, by llama.cpp's convert_hf_to_gguf.py."""
    converters = require_converters("GGUF conversion needs llama.cpp's convert_hf_to_gguf.py")
    # the converter runs in its own directory: paths must not be relative to ours
    run_converter(
        converters / "convert_hf_to_gguf.py",
        [str(Path(model_dir).resolve()), "--outfile", str(Path(path).resolve())]
        + ["--outtype", outtype, "--model-name", name],
    )


def convert_lora_to_gguf(adapter_dir: Path, base_dir: Path, path: Path, outtype: str) -> None:
    """A peft LoRA adapter as a llama.cpp LoRA GGUF, by convert_lora_to_gguf.py."""
    converters = require_converters("GGUF LoRA export needs llama.cpp's convert_lora_to_gguf.py")
    run_converter(
        converters / "convert_lora_to_gguf.py",
        ["--base", str(Path(base_dir).resolve()), "--outtype", outtype]
        + ["--outfile", str(Path(path).resolve()), str(Path(adapter_dir).resolve())],
    )


def _cached(path: Path, write: Callable[[Path], None]) -> Path:
    """`path`, written by `write(tmp)` and renamed into place the first time."""
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def base_gguf(base_dir: Path, fingerprint: str, outtype: str = DEFAULT_OUTTYPE) -> Path:
    """The base model as GGUF, converted once and kept in the model cache."""
    from storetune.workspace import cache_dir

    name = Path(base_dir).name
    path = cache_dir() / "gguf" / f"{name}-{fingerprint[:12]}.{outtype}.gguf"
    return _cached(path, lambda tmp: convert_hf_to_gguf(base_dir, tmp, outtype, name))


def adapter_gguf(adapter_dir: Path, base_dir: Path, outtype: str = DEFAULT_OUTTYPE) -> Path:
    """A registry version's adapter as a GGUF LoRA, converted once, kept beside it."""
    path = Path(adapter_dir) / "gguf" / f"adapter.{outtype}.gguf"
    return _cached(path, lambda tmp: convert_lora_to_gguf(adapter_dir, base_dir, tmp, outtype))


def merged_gguf(adapter_dir: Path, base_dir: Path, outtype: str = DEFAULT_OUTTYPE) -> Path:
    """A registry version with its adapter folded into the base weights (peft's merge in
    fp32), as GGUF: converted once, kept beside the adapter."""
    path = Path(adapter_dir) / "gguf" / f"merged.{outtype}.gguf"

    def write(tmp: Path) -> None:
        import tempfile

        from storetune.runtime import attach_adapter, load_base, load_tokenizer

        model = attach_adapter(load_base(Path(base_dir)), Path(adapter_dir)).merge_and_unload()
        # the tokenizer saved with the version, or the base's when it has none
        has_own = (Path(adapter_dir) / "tokenizer_config.json").exists()
        tokenizer = load_tokenizer(Path(adapter_dir) if has_own else Path(base_dir))
        with tempfile.TemporaryDirectory(prefix="storetune-merge-") as d:
            model.save_pretrained(d)
            tokenizer.save_pretrained(d)
            del model
            convert_hf_to_gguf(Path(d), tmp, outtype, Path(base_dir).name)

    return _cached(path, write)


# Below this size a merged copy per adapter costs little memory (the default model:
# 270 MB in f16) and decodes faster than the LoRA applied at run time.
MERGE_BELOW_BYTES = 1 << 30


def merge_adapters(mode: str, base: Path) -> bool:
    """Whether adapters run as merged copies: `mode` yes | no | auto (when the base
    GGUF is under MERGE_BELOW_BYTES)."""
    if mode in ("yes", "no"):
        return mode == "yes"
    return Path(base).stat().st_size < MERGE_BELOW_BYTES


def available() -> bool:
    """Whether llama-cpp-python's bindings and llama.cpp's converters are installed."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return False
    return llama_cpp_converters() is not None


# -- the engine -------------------------------------------------------------------------

_init_lock = threading.Lock()
_log_callback = None  # kept alive: llama.cpp holds a pointer to it


def _init_backend() -> None:
    """Start llama.cpp once; its log lines go to this module's logger (errors as errors,
    the load chatter at debug level) instead of the terminal."""
    global _log_callback
    with _init_lock:
        if _log_callback is None:
            import llama_cpp

            @llama_cpp.llama_log_callback
            def forward(level: int, text: bytes, _user_data) -> None:
                message = text.decode("utf-8", "replace").rstrip()
                if message:  # ggml levels: 4 error, 3 warning (e.g. a cache larger
                    # than one sequence's trained context, which a unified cache is), …
                    log.log(logging.ERROR if level == 4 else logging.DEBUG, message)

            _log_callback = forward
            llama_cpp.llama_log_set(forward, ctypes.c_void_p(0))
            llama_cpp.llama_backend_init()


def default_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


_FLOAT_GGUF = (".f16.gguf", ".f32.gguf", ".bf16.gguf")


def model_params(gguf: Path):
    """llama.cpp's model parameters for loading `gguf`. Weight repacking (llama.cpp's
    "extra buffer types") is off for quantized files: on a 2-core Xeon with AVX-512 BF16
    (2026-12-07), llama.cpp 0.3.36 segfaulted in the first decode of every q8_0 GGUF
    with it on, base model or merged adapter, 1 or 2 threads, and decoded them right
    with it off; f16 files load as before."""
    import llama_cpp

    params = llama_cpp.llama_model_default_params()
    if not Path(gguf).name.endswith(_FLOAT_GGUF):
        params.use_extra_bufts = False
    return params


@contextlib.contextmanager
def llama_params_for(gguf: Path) -> Iterator[None]:
    """While open, `llama_cpp.Llama(...)` loads with `model_params(gguf)` (the high-level
    class builds its parameters itself and has no argument for repacking)."""
    import llama_cpp.llama as high_level

    low = high_level.llama_cpp
    default = low.llama_model_default_params
    low.llama_model_default_params = lambda: model_params(gguf)
    try:
        yield
    finally:
        low.llama_model_default_params = default


class LlamaModel:
    """A GGUF's weights, loaded once; contexts (one per adapter) are made from it."""

    def __init__(self, gguf: Path, threads: int | None = None) -> None:
        import llama_cpp

        _init_backend()
        params = model_params(gguf)
        self.path = Path(gguf)
        self.ptr = llama_cpp.llama_model_load_from_file(str(self.path).encode(), params)
        if not self.ptr:
            raise StoretuneError(f"{gguf}: llama.cpp could not load this GGUF")
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(llama_cpp.llama_model_get_vocab(self.ptr))
        self.threads = threads or default_threads()
        self.f32 = self.path.name.endswith(".f32.gguf")
        self._adapters: dict[Path, object] = {}

    def lora(self, path: Path):
        """A LoRA adapter loaded onto these weights (once per file)."""
        import llama_cpp

        path = Path(path)
        if path not in self._adapters:
            ptr = llama_cpp.llama_adapter_lora_init(self.ptr, str(path).encode())
            if not ptr:
                raise StoretuneError(f"{path}: llama.cpp could not load this LoRA adapter")
            self._adapters[path] = ptr
        return self._adapters[path]

    def context(
        self, lora: Path | None = None, slots: int = 8, n_ctx: int = 16384, streams: bool = False
    ) -> Context:
        return Context(self, lora, slots, n_ctx, streams)

    def close(self) -> None:
        import llama_cpp

        for ptr in self._adapters.values():
            llama_cpp.llama_adapter_lora_free(ptr)
        self._adapters.clear()
        if self.ptr:
            llama_cpp.llama_model_free(self.ptr)
            self.ptr = None


class ContextFullError(StoretuneError):
    """The context's key/value cache has no room for the batch."""


class Context:
    """One adapter's key/value cache: `slots` row sequences plus one for the shared prefix.

    By default the sequences share one cache (any row may use any cell, up to `n_ctx`
    tokens together). With `streams`, each sequence has its own n_ctx / (slots + 1)
    cells: a row's attention then reads its own cells only, where in the shared cache
    every row reads every row's cells (masked), so a step costs the square of the rows.
    On the default model (2-core Xeon, 2026-12-08), 16 rows of 400 tokens decoded 87
    tok/s shared, 171 tok/s in streams (flash attention off: its CPU kernel was slower
    for one-token rows). A stream holds a copy of the prefix rather than sharing its
    cells, so it suits the eval, whose prompt lengths are known.

    Not thread-safe: one caller at a time (the serving worker, or an eval loop).
    """

    def __init__(
        self, model: LlamaModel, lora: Path | None, slots: int, n_ctx: int, streams: bool = False
    ) -> None:
        import llama_cpp

        self.model = model
        self.slots = slots
        self.prefix_seq = slots  # the last sequence id holds the shared prompt prefix
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = min(n_ctx, 2048)
        params.n_ubatch = 512
        params.n_seq_max = slots + 1
        params.n_threads = params.n_threads_batch = model.threads
        # shared: sequences share cells, a copied prefix costs nothing
        params.kv_unified = not streams
        if streams:
            params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        self.streams = streams
        params.no_perf = True
        if model.f32:  # an f32 model keeps an f32 cache (llama.cpp's default is f16)
            params.type_k = params.type_v = llama_cpp.GGML_TYPE_F32
        self.n_ctx = n_ctx
        self.n_batch = params.n_batch
        self.ptr = llama_cpp.llama_init_from_model(model.ptr, params)
        if not self.ptr:
            raise StoretuneError(f"llama.cpp could not create a context of {n_ctx} tokens")
        self.memory = llama_cpp.llama_get_memory(self.ptr)
        self.prefix: list[int] = []  # tokens held by the prefix sequence
        self._batch = llama_cpp.llama_batch_init(self.n_batch, 0, 1)
        self.lora = None
        self.set_lora(lora)

    def set_lora(self, lora: Path | None) -> None:
        """Run under another adapter (or none): the cache, computed under the old one,
        is emptied with it (reusing it is llama.cpp#26207's bug)."""
        import llama_cpp

        n = 0 if lora is None else 1
        adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)()
        scales = (ctypes.c_float * 1)(1.0)
        if lora is not None:
            adapters[0] = self.model.lora(lora)
        if llama_cpp.llama_set_adapters_lora(self.ptr, adapters, n, scales) != 0:
            raise StoretuneError(f"{lora}: llama.cpp could not apply this LoRA adapter")
        llama_cpp.llama_memory_clear(self.memory, True)
        self.prefix = []
        self.lora = lora

    # ---- the shared prefix ---------------------------------------------------------

    def cache_prefix(self, tokens: Sequence[int]) -> None:
        """Make the prefix sequence hold `tokens` (keeping what it shares with them)."""
        import llama_cpp

        keep = common_prefix(self.prefix, tokens)
        if keep == len(self.prefix) == len(tokens):
            return
        llama_cpp.llama_memory_seq_rm(self.memory, self.prefix_seq, keep, -1)
        self.prefix = list(self.prefix[:keep])
        if len(tokens) > keep:
            self._decode([(self.prefix_seq, list(tokens[keep:]), keep, False)])
            self.prefix = list(tokens)

    # ---- rows ----------------------------------------------------------------------

    def start(self, rows: Sequence[tuple[int, Sequence[int]]]):
        """Prefill whole prompts into slots: [(slot, prompt ids)] -> next-token logits.

        Each slot is emptied, then given what the cached prefix covers of its prompt
        (at most all but the last token, whose logits are needed) and the rest decoded.
        """
        import llama_cpp

        parts = []
        for slot, prompt in rows:
            llama_cpp.llama_memory_seq_rm(self.memory, slot, -1, -1)
            shared = min(common_prefix(self.prefix, prompt), len(prompt) - 1)
            if shared and self.streams:  # across streams only a whole copy exists
                llama_cpp.llama_memory_seq_cp(self.memory, self.prefix_seq, slot, -1, -1)
                llama_cpp.llama_memory_seq_rm(self.memory, slot, shared, -1)
            elif shared:
                llama_cpp.llama_memory_seq_cp(self.memory, self.prefix_seq, slot, 0, shared)
            parts.append((slot, list(prompt[shared:]), shared, True))
        return self._decode(parts)

    def step(self, rows: Sequence[tuple[int, int, int]]):
        """One token per slot: [(slot, token, position)] -> next-token logits per row."""
        return self._decode([(slot, [token], pos, True) for slot, token, pos in rows])

    def release(self, slot: int) -> None:
        import llama_cpp

        llama_cpp.llama_memory_seq_rm(self.memory, slot, -1, -1)

    def _decode(self, parts: list[tuple[int, list[int], int, bool]]):
        """Decode token runs [(seq, tokens, first position, want last logits)] in as few
        llama_decode calls as the batch size allows; the wanted logits, one row each."""
        import llama_cpp
        import numpy as np

        # In streams, llama.cpp puts in one micro-batch only sequences whose ids follow
        # one another in batch order; rows in slot order keep a full step in one pass.
        order = sorted(range(len(parts)), key=lambda k: parts[k][0])
        flat = [
            (seq, tok, start + i, want and i == len(tokens) - 1)
            for seq, tokens, start, want in (parts[k] for k in order)
            for i, tok in enumerate(tokens)
        ]
        out = []
        for begin in range(0, len(flat), self.n_batch):
            chunk = flat[begin : begin + self.n_batch]
            b = self._batch
            for i, (seq, tok, pos, want) in enumerate(chunk):
                b.token[i] = tok
                b.pos[i] = pos
                b.n_seq_id[i] = 1
                b.seq_id[i][0] = seq
                b.logits[i] = want
            b.n_tokens = len(chunk)
            rc = llama_cpp.llama_decode(self.ptr, b)
            if rc == 1:
                raise ContextFullError(
                    f"the engine's context ({self.n_ctx} tokens) is full",
                    hint="raise serve.context_tokens or lower serve.max_concurrency",
                )
            if rc != 0:
                raise StoretuneError(f"llama.cpp failed to decode a batch (code {rc})")
            for i, (_, _, _, want) in enumerate(chunk):
                if want:
                    row = llama_cpp.llama_get_logits_ith(self.ptr, i)
                    out.append(np.ctypeslib.as_array(row, shape=(self.model.n_vocab,)).copy())
        if not out:
            return np.zeros((0, self.model.n_vocab), np.float32)
        # back to the callers' order: the wanted rows, in sorted order, are `out`
        wanted = [k for k in order if parts[k][3] and parts[k][1]]
        rows = dict(zip(wanted, out, strict=True))
        return np.stack([rows[k] for k in range(len(parts)) if k in rows])

    def close(self) -> None:
        import llama_cpp

        if self.ptr:
            llama_cpp.llama_batch_free(self._batch)
            llama_cpp.llama_free(self.ptr)
            self.ptr = None


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def log_softmax(logits):
    import numpy as np

    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


MIN_PREFIX = 32  # tokens; a shorter shared prefix is not worth its own decode


def greedy_generate(
    ctx: Context,
    prompts: list[list[int]],
    max_new_tokens: int,
    eos_ids: set[int],
    prefix_lens: list[int] | None = None,
    logprobs: bool = False,
    first_logits: bool = False,
    on_done: Callable[[int], None] | None = None,
    stop_early: Callable[[list[int]], bool] | None = None,
):
    """Greedy continuations, the slots kept full (a finished row's slot takes the next
    prompt at once). Same results as storetune.runtime.greedy_generate: generated ids up
    to and including the end token; with `logprobs`, each chosen token's log-probability;
    with `first_logits`, the logits at the first new position.

    `prefix_lens[i]` tokens of prompt i (its system turn, the policy prompt) are worth
    sharing: prompts are run grouped by that prefix, each prefix decoded once.
    `stop_early(ids)`, asked after each token that is not an end token, ends a row at once
    (a draft that loops, storetune.serve.rules.repetition_cut).
    """
    lens = prefix_lens or [0] * len(prompts)
    outputs: list[list[int]] = [[] for _ in prompts]
    scores: list[list[float]] = [[] for _ in prompts]
    firsts: list = [None] * len(prompts)
    # popped from the end: same prefixes together, then shortest first
    todo = sorted(range(len(prompts)), key=lambda i: (prompts[i][: lens[i]], -len(prompts[i])))
    todo.reverse()
    active: dict[int, int] = {}  # slot -> prompt index
    free = list(range(ctx.slots))

    def admit() -> list[tuple[int, object]]:
        """Start queued prompts in free slots: (slot, next-token logits) each."""
        started, batch = [], []
        while free and todo:
            i = todo[-1]
            prefix = prompts[i][: min(lens[i], len(prompts[i]) - 1)]
            if len(prefix) >= MIN_PREFIX and common_prefix(ctx.prefix, prefix) < len(prefix):
                started += _start(ctx, batch)
                batch = []
                ctx.cache_prefix(prefix)
            slot = free.pop()
            active[slot] = todo.pop()
            batch.append((slot, prompts[i]))
        return started + _start(ctx, batch)

    def take(slot_logits) -> list[tuple[int, int, int]]:
        """Choose each active row's token; the (slot, token, position) of rows going on."""
        going = []
        for slot, logits in slot_logits:
            i = active[slot]
            token = int(logits.argmax())
            if first_logits and firsts[i] is None:
                firsts[i] = logits
            if logprobs:
                scores[i].append(float(log_softmax(logits)[token]))
            outputs[i].append(token)
            done = token in eos_ids or len(outputs[i]) >= max_new_tokens
            if not done and stop_early is not None:
                done = stop_early(outputs[i])
            if done:
                ctx.release(slot)
                free.append(slot)
                del active[slot]
                if on_done:
                    on_done(1)
            else:
                going.append((slot, token, len(prompts[i]) + len(outputs[i]) - 1))
        return going

    going: list[tuple[int, int, int]] = []
    while todo or active:
        pairs = list(zip([s for s, _, _ in going], ctx.step(going), strict=True)) if going else []
        going = take(pairs + admit())
    if logprobs:
        return outputs, scores
    return (outputs, firsts) if first_logits else outputs


def _start(ctx: Context, rows: list[tuple[int, list[int]]]) -> list[tuple[int, object]]:
    return list(zip([s for s, _ in rows], ctx.start(rows), strict=True)) if rows else []


# -- choosing the engine ------------------------------------------------------------------

ENGINES = ("auto", "llamacpp", "torch")


def choose_engine(requested: str) -> str:
    """'llamacpp' or 'torch' for a configured engine; auto takes llama.cpp when installed."""
    if requested not in ENGINES:
        raise StoretuneError(f"engine must be one of {', '.join(ENGINES)}, not '{requested}'")
    if requested == "auto":
        return "llamacpp" if available() else "torch"
    if requested == "llamacpp" and not available():
        raise StoretuneError(
            "the llamacpp engine needs llama-cpp-python and llama.cpp's converters, "
            "which are not installed",
            hint="run 'make llama-cpp', or set serve.engine: torch",
        )
    return requested


def convertible(base_dir: Path, fingerprint: str, outtype: str = DEFAULT_OUTTYPE) -> bool:
    """Whether llama.cpp's converter takes this base model: tried once, the answer cached
    (a model llama.cpp does not know, or a tokenizer it cannot identify, is refused)."""
    from storetune.workspace import cache_dir

    failed = cache_dir() / "gguf" / f"{Path(base_dir).name}-{fingerprint[:12]}.unsupported"
    if failed.is_file():
        return False
    try:
        base_gguf(base_dir, fingerprint, outtype)
        return True
    except ConverterError as e:
        failed.parent.mkdir(parents=True, exist_ok=True)
        failed.write_text(e.output, encoding="utf-8")
        log.warning("llama.cpp cannot run %s (%s); using torch", base_dir, e.args[0][:200])
        return False
