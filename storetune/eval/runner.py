"""`storetune eval`: the base model vs a fine-tuned version on held-out examples.

Both see the same conversations (system prompt with the policies and the same catalog
cards), generation is batched, replies are cached by (model, example), every reply is
graded (graders.py), and the report (JSON + HTML) is written under reports/.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path

from storetune.chat.prompt import layout_warning
from storetune.config import EvalConfig
from storetune.dataset.build import resolve_dataset
from storetune.errors import StoretuneError
from storetune.eval.cases import load_extra, load_test_cases, stratified, trained_tasks
from storetune.eval.gates import check_gates
from storetune.eval.graders import Grader
from storetune.eval.history import regression_table
from storetune.eval.metrics import summarize
from storetune.eval.order_tickets import order_block
from storetune.eval.records import Case, Grade, StoreFacts
from storetune.eval.report import write_report
from storetune.eval.system import SystemRun
from storetune.models.registry import ModelRef, Registry
from storetune.progress import progress as progress_bar
from storetune.store import db
from storetune.workspace import Workspace


def evaluate(
    ws: Workspace,
    model: str = "support",
    baseline: bool = True,
    limit: int | None = None,
    max_new_tokens: int = 128,
    progress: bool = True,
    log: Callable[[str], None] = print,
    extra: list[Path] | None = None,
) -> dict:
    """Grade the base model and a registry version; write reports/eval-<name>-v<N>.{json,html}.

    Returns the report dict with `path` (JSON), `html` and `gates` (the version's).
    """
    cfg = ws.config()
    ecfg = cfg.eval
    registry = Registry(ws.models_dir)
    ref = ModelRef.parse(model)
    version_dir = registry.resolve(ref)
    info = registry.info(version_dir)
    data_dir = resolve_dataset(ws, info["dataset_id"])
    tasks = trained_tasks(version_dir)
    products = _products(ws)
    cases = stratified(load_test_cases(data_dir, tasks), limit)
    for path in extra or []:
        cases += load_extra(Path(path), _system_for(ws, cfg, products))
    if not cases:
        raise StoretuneError(
            f"{data_dir}: no test examples for the tasks {model} was trained on ({', '.join(tasks)})",
            hint="rebuild the dataset, or pass examples with --extra FILE",
        )
    label = f"{ref.name}-v{info['version']}"
    if warning := layout_warning(info):
        log(f"warning: {warning}")
    log(f"evaluating {label} on {len(cases)} examples ({', '.join(tasks)})")
    grader = Grader(StoreFacts.from_config(cfg, [p.title for p in products]), cases)
    results = _run_models(
        ws, info, version_dir, label, cases, grader, baseline, max_new_tokens, progress, ecfg, log
    )
    report = {
        "model": label,
        "dataset_id": data_dir.name,
        "base_model": info["base_model"],
        "train_seconds": info.get("train", {}).get("seconds"),
        "tasks": tasks,
        "extra_files": [str(p) for p in extra or []],
        "results": {name: r for name, (r, _) in results.items()},
    }
    report["gates"] = [
        g.to_dict() for g in check_gates(report["results"][label]["summary"], ecfg.gates)
    ]
    report["order_tickets"] = order_block(report["results"])
    if ecfg.judge.enabled:
        report["judge"] = _judge(ecfg, cfg.escalation.marker, cases, results, progress)
    report["regression"] = regression_table(ws.reports_dir, ref.name, report, info["version"])
    json_path, html_path = write_report(
        report, ws.reports_dir, f"eval-{label}", ecfg.worst_examples
    )
    report["path"], report["html"] = str(json_path), str(html_path)
    return report


def _run_models(
    ws, info, version_dir, label, cases, grader, baseline, max_new_tokens, progress, ecfg, log
):
    lm, tokenizer = _load_engine(ws, info, version_dir, ecfg, log)
    runs = [("base", f"base-{info['base_model_fingerprint']}", True)] if baseline else []
    runs.append((label, label, False))
    system = SystemRun.open(ws, version_dir, info, cases) if ecfg.system else None
    if ecfg.system and system is None:
        log("system figures skipped: the catalog is not indexed (run 'storetune index')")
    results: dict[str, tuple[dict, list[str]]] = {}
    for name, cache_label, disable_adapter in runs:
        start = time.time()
        generate = _generator(
            ws, lm, tokenizer, cache_label, disable_adapter, max_new_tokens, progress, ecfg
        )
        replies = [g["text"] for g in generate([c.conversation for c in cases], "model")]
        grades = [grader.grade(c, r) for c, r in zip(cases, replies, strict=True)]
        result = {
            "summary": summarize(grades),
            "examples": examples(cases, replies, grades),
        }
        if system is not None and (ecfg.system_baseline or not disable_adapter):
            result["system"] = system.run(generate, grader, calibrated=not disable_adapter)
        result["seconds"] = round(time.time() - start, 1)
        results[name] = (result, replies)
    if system is not None:
        system.close()
    if isinstance(lm, LlamaEval):
        lm.close()
    return results


def _load_engine(ws, info: dict, version_dir: Path, ecfg, log):
    """(model, tokenizer) that generate the replies: a torch PeftModel, or with the
    llamacpp engine a LlamaEval holding the base and the adapter as GGUF in llama.cpp."""
    from storetune import llamacpp
    from storetune.runtime import bf16_supported, load_for_inference, load_tokenizer

    base = Path(info["base_model_path"])
    fingerprint = info["base_model_fingerprint"]
    serve = ws.config().serve
    gguf_type = serve.gguf_type
    kind = llamacpp.choose_engine(ecfg.engine)
    if kind == "llamacpp" and (
        ecfg.engine == "llamacpp" or llamacpp.convertible(base, fingerprint, gguf_type)
    ):
        lm = LlamaEval(base, fingerprint, version_dir, gguf_type, serve.merge_adapters)
        how = "the adapter merged into its own copy" if lm.merged else "the adapter as LoRA"
        log(f"generating with llama.cpp ({gguf_type} GGUF copies of the base; {how})")
        return lm, load_tokenizer(base)
    return load_for_inference(base, version_dir, bf16_supported())


class LlamaEval:
    """The base and a version's adapter in llama.cpp, one context each (made on first use);
    the adapter as a run-time LoRA, or folded into its own copy of the weights as serving
    runs it (`serve.merge_adapters`)."""

    def __init__(
        self, base: Path, fingerprint: str, version_dir: Path, gguf_type: str, merge: str = "no"
    ) -> None:
        from storetune import llamacpp

        self.model = llamacpp.LlamaModel(llamacpp.base_gguf(base, fingerprint, gguf_type))
        self.merged = llamacpp.merge_adapters(merge, self.model.path)
        self.lora = None
        self.adapted = self.model
        if self.merged:
            self.adapted = llamacpp.LlamaModel(llamacpp.merged_gguf(version_dir, base, gguf_type))
        else:
            self.lora = llamacpp.adapter_gguf(version_dir, base, gguf_type)
        self.contexts: dict[bool, object] = {}
        self.gguf_type = gguf_type

    def label(self, disable_adapter: bool) -> str:
        """The reply cache's label: replies differ slightly from torch's, and a merged
        adapter's from a run-time LoRA's, so each keeps its own."""
        merged = "-merged" if self.merged and not disable_adapter else ""
        return f"llamacpp-{self.gguf_type}{merged}"

    def context(self, disable_adapter: bool, slots: int, n_ctx: int):
        weights = self.model if disable_adapter else self.adapted
        lora = None if disable_adapter else self.lora
        # a cache stream per row: the eval knows its longest prompt (llamacpp.Context)
        if disable_adapter not in self.contexts:
            self.contexts[disable_adapter] = weights.context(lora, slots, n_ctx, streams=True)
        ctx = self.contexts[disable_adapter]
        if ctx.n_ctx < n_ctx:  # longer prompts than the context was made for
            ctx.close()
            ctx = self.contexts[disable_adapter] = weights.context(lora, slots, n_ctx, streams=True)
        return ctx

    def close(self) -> None:
        for ctx in self.contexts.values():
            ctx.close()
        if self.adapted is not self.model:
            self.adapted.close()
        self.model.close()


def _scored_batch(lm, tokenizer, conversations, disable_adapter, max_new_tokens, ecfg, bar):
    from storetune.chat.tokenize import chat_ids
    from storetune.eval.generate import generate_scored, generate_scored_llamacpp

    if isinstance(lm, LlamaEval):
        longest = max(len(chat_ids(tokenizer, c)) for c in conversations)
        slots = ecfg.batch_size
        ctx = lm.context(disable_adapter, slots, (slots + 1) * (longest + max_new_tokens))
        return generate_scored_llamacpp(
            ctx, tokenizer, conversations, max_new_tokens, on_batch=bar.advance
        )
    with lm.disable_adapter() if disable_adapter else contextlib.nullcontext():
        return generate_scored(
            lm,
            tokenizer,
            conversations,
            max_new_tokens=max_new_tokens,
            batch_size=ecfg.batch_size,
            on_batch=bar.advance,
        )


def _generator(ws, lm, tokenizer, cache_label, disable_adapter, max_new_tokens, progress, ecfg):
    """conversations -> scored greedy replies (text, token log-probs, finish reason), cached
    by conversation so the system pass reuses every draft whose prompt the model pass
    already ran."""
    if isinstance(lm, LlamaEval):
        cache_label = f"{cache_label}.{lm.label(disable_adapter)}"
    cache = ScoredCache(ws.reports_dir / "cache" / f"{cache_label}.scored.jsonl")

    def generate(conversations: list[list[dict]], stage: str) -> list[dict]:
        # ":r": replies end where they start to loop (as serving stops them)
        keys = [f"{conversation_key(c)}:{max_new_tokens}:r" for c in conversations]
        todo = list({k: i for i, k in enumerate(keys) if k not in cache.data}.values())
        if todo:
            label = f"generate {cache_label} ({stage})"
            with progress_bar(label, len(todo), progress) as bar:
                new = _scored_batch(
                    lm,
                    tokenizer,
                    [conversations[i] for i in todo],
                    disable_adapter,
                    max_new_tokens,
                    ecfg,
                    bar,
                )
            cache.save({keys[i]: r for i, r in zip(todo, new, strict=True)})
        return [cache.data[k] for k in keys]

    return generate


def examples(cases: list[Case], replies: list[str], grades: list[Grade]) -> list[dict]:
    return [
        {
            "task": c.task,
            "category": c.category,
            "source": c.source,
            "prompt": c.last_user,
            "gold": c.gold,
            "reply": r,
            **g.to_dict(),
        }
        for c, r, g in zip(cases, replies, grades, strict=True)
    ]


def _products(ws: Workspace):
    conn = db.connect(ws.db_path)
    try:
        return db.load_products(conn)
    finally:
        conn.close()


def _system_for(ws: Workspace, cfg, products) -> Callable[[str], str]:
    """The training build's prompt: policies plus the cards a message retrieves."""
    from storetune.chat.prompt import render_system_prompt
    from storetune.retrieval.catalog import KeywordIndex

    index = KeywordIndex(products)
    k = cfg.build.context_products

    def system_for(text: str) -> str:
        return render_system_prompt(cfg, index.context(text, k))

    return system_for


def conversation_key(conversation: list[dict]) -> str:
    return hashlib.sha256(json.dumps(conversation).encode()).hexdigest()[:20]


class ScoredCache:
    """Scored replies stored by (model label, conversation) so re-runs skip generation.

    One JSON line per reply, appended; a line cut short by a killed run is skipped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, dict] = {}
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                    self.data[row["key"]] = row["scored"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue

    def save(self, new: dict[str, dict]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            for k, v in new.items():
                f.write(json.dumps({"key": k, "scored": v}) + "\n")
        self.data.update(new)


def _judge(ecfg: EvalConfig, marker: str, cases: list[Case], results: dict, progress: bool) -> dict:
    """LLM-judge verdicts per model, stored beside the rubric's, with their agreement."""
    from storetune.eval.judge import LLMJudge

    judge = LLMJudge(ecfg.judge, marker)
    out = {"model": ecfg.judge.model, "results": {}}
    try:
        for name, (result, replies) in results.items():
            verdicts = []
            with progress_bar(f"judge {name}", len(cases), progress) as bar:
                for c, r, ex in zip(cases, replies, result["examples"], strict=True):
                    verdict, reason = judge.judge(c, r)
                    ex["judge"] = {"verdict": verdict, "reason": reason}
                    verdicts.append(verdict)
                    bar.advance(1)
            n = len(verdicts)
            agree = sum(
                v == ex["verdict"] for v, ex in zip(verdicts, result["examples"], strict=True)
            )
            out["results"][name] = {
                "correct": verdicts.count("correct") / n,
                "partial": verdicts.count("partial") / n,
                "wrong": verdicts.count("wrong") / n,
                "agreement": agree / n,
            }
    finally:
        judge.close()
    return out
