"""The `storetune` command: thin commands that parse, call one library function, print."""

from __future__ import annotations

import json
import os
import sys
from functools import cache
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from storetune.config import read_config
from storetune.errors import StoretuneError
from storetune.quiet import quiet_libraries
from storetune.workspace import Workspace

WORKSPACE_HELP = "Store workspace directory (default: current directory)."
_state: dict[str, Any] = {}


def _use_workspace(value: Path | None) -> None:
    # `-w DIR` after a command is parsed after the one before it, so it wins.
    if value is not None:
        _state["ws"] = Workspace.resolve(value)


@cache
def _workspace_after_command() -> Any:
    """The -w/--workspace option every command takes after its name.

    Typer builds it from a one-parameter prototype command (its option class has no
    public constructor), so it parses and shows in --help like the options written out.
    """
    shape = typer.Typer()

    @shape.command()
    def takes_workspace(
        workspace: Annotated[
            Path | None,
            typer.Option(
                "-w",
                "--workspace",
                callback=_use_workspace,
                expose_value=False,
                help=WORKSPACE_HELP,
            ),
        ] = None,
    ) -> None: ...

    return typer.main.get_command(shape).params[0]


class WorkspaceAnywhere(TyperGroup):
    """A command group whose commands also accept -w/--workspace after their name."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for command in self.commands.values():
            if not any(p.name == "workspace" for p in command.params):
                command.params.append(_workspace_after_command())


def _commands(help: str, **kwargs: Any) -> typer.Typer:
    return typer.Typer(help=help, cls=WorkspaceAnywhere, **kwargs)


app = _commands(
    "storetune: turn a store's catalog, tickets and policies into its own support model.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    add_completion=False,
)
models_app = _commands("List and manage trained model versions.", no_args_is_help=True)
app.add_typer(models_app, name="models")
console = Console()
err = Console(stderr=True)


def ws(validate: bool = True) -> Workspace:
    """The chosen workspace. Its store.yaml, when there is one, is validated whole the first
    time a command asks, so a typo in any section stops every command, naming the field."""
    workspace = _state["ws"]
    if validate and not _state.get("validated") and workspace.config_path.exists():
        read_config(workspace.config_path)
        _state["validated"] = True
    return workspace


@app.callback()
def main(
    workspace: Annotated[
        Path | None,
        typer.Option("-w", "--workspace", envvar="STORETUNE_WORKSPACE", help=WORKSPACE_HELP),
    ] = None,
) -> None:
    quiet_libraries()
    _state["ws"] = Workspace.resolve(workspace)
    _state["validated"] = False


@app.command()
def init(
    brand: Annotated[str, typer.Option(help="Store name customers know.")] = "My Store",
    products: Annotated[str | None, typer.Option(help="Shopify product export path.")] = None,
    tickets: Annotated[str | None, typer.Option(help="Helpdesk export file or directory.")] = None,
) -> None:
    """Create store.yaml in the workspace, ready to edit."""
    from storetune.setup import init_workspace

    path = init_workspace(ws(validate=False), brand, products, tickets)
    console.print(f"created {path}; edit the policies, then run [bold]storetune ingest[/]")


@app.command("demo-store")
def demo_store(
    directory: Annotated[Path, typer.Argument(help="Where to write the sample store.")],
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same bytes.")] = 0,
    products: Annotated[int, typer.Option(help="Number of products.")] = 160,
    tickets: Annotated[int, typer.Option(help="Number of helpdesk tickets.")] = 2400,
) -> None:
    """Write a realistic fictional outdoor-gear store (Shopify CSV, Zendesk export, store.yaml)."""
    from storetune.demo.store_gen import generate_demo_store

    summary = generate_demo_store(directory, seed=seed, n_products=products, n_tickets=tickets)
    console.print_json(json.dumps(summary, default=str))
    console.print(f"sample store written to {directory}; next: storetune -w {directory} ingest")


@app.command()
def ingest(
    path: Annotated[
        Path | None,
        typer.Argument(
            help="One export to read alone, detected by content: products, tickets, orders "
            "or a help center (Zendesk/Shopify JSON, a folder of Markdown/HTML)."
        ),
    ] = None,
    products: Annotated[
        Path | None, typer.Option(help="Product export (default: store.yaml sources).")
    ] = None,
    tickets: Annotated[
        Path | None, typer.Option(help="Ticket export (default: store.yaml sources).")
    ] = None,
    orders: Annotated[
        Path | None,
        typer.Option(help="Shopify orders CSV or order JSON (default: store.yaml sources)."),
    ] = None,
    knowledge: Annotated[
        Path | None,
        typer.Option(help="Help-center export or Markdown/HTML folder (default: store.yaml)."),
    ] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="Reader to use instead of detecting by content (auto): a product, ticket or "
            "help-center format, e.g. shopify_csv, zendesk, zendesk_hc, knowledge_files. "
            "Order exports are always detected by content.",
        ),
    ] = "auto",
    policies: Annotated[
        Path | None, typer.Option(help="Policy rules file (JSON/YAML); recorded in store.yaml.")
    ] = None,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="Import the product export even if it takes most of the active catalog away.",
        ),
    ] = False,
) -> None:
    """Read the store's exports into store.db: cleaned, PII scrubbed, bad rows quarantined."""
    from storetune.ingest import format_report, ingest_workspace, source_role

    given = {"products": products, "tickets": tickets, "orders": orders, "knowledge": knowledge}
    if path is not None:
        given[source_role(path)] = path
    report = ingest_workspace(
        ws(),
        given["products"],
        given["tickets"],
        fmt,
        policies=policies,
        replace=replace,
        orders=given["orders"],
        knowledge=given["knowledge"],
        configured_sources=path is None,
    )
    console.print(format_report(report))


@app.command()
def build() -> None:
    """Build the train/val/test chat JSONL dataset from store.db."""
    from storetune.dataset.build import build_dataset, build_summary

    report = build_dataset(ws())
    console.print(build_summary(report))


@app.command()
def validate(
    file: Annotated[Path, typer.Argument(help="Chat JSONL file, or a dataset directory.")],
    model: Annotated[
        str | None,
        typer.Option(help="Tokenizer's model (default: store.yaml's base_model, else bundled)."),
    ] = None,
    max_length: Annotated[
        int | None, typer.Option(help="Token limit per example (default: model context).")
    ] = None,
    tokens_per_second: Annotated[
        float | None, typer.Option(help="Training speed for the time estimate (default 450).")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check chat JSONL before training: errors (exit 1), warnings, tokens, preview."""
    from storetune.dataset.validate import rich_report, validate_path

    report = validate_path(
        file, ws(), model, max_length, tokens_per_second, progress=not json_output
    )
    if json_output:
        typer.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        console.print(rich_report(report))
    raise typer.Exit(1 if report.errors else 0)


@app.command()
def train(
    name: Annotated[str, typer.Option(help="Adapter name in the registry.")] = "support",
    dataset: Annotated[str | None, typer.Option(help="Dataset id (default: latest).")] = None,
    epochs: Annotated[float | None, typer.Option(help="Override epochs.")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after N optimizer steps.")] = None,
    lr: Annotated[float | None, typer.Option(help="Override the learning rate.")] = None,
    tasks: Annotated[
        str | None,
        typer.Option(help="Comma-separated task tags to train on, or 'all' (default: support)."),
    ] = None,
    report_to: Annotated[
        str | None, typer.Option(help="Also log metrics to: tensorboard, mlflow or none.")
    ] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda or cuda:N.")] = None,
    qlora: Annotated[
        bool | None, typer.Option("--qlora/--no-qlora", help="4-bit NF4 base (CUDA only).")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run.")] = False,
) -> None:
    """LoRA-fine-tune the base model on the dataset; writes models/<name>/v<N>."""
    from storetune.train import train_model

    given = {
        "epochs": epochs,
        "max_steps": max_steps,
        "lr": lr,
        "tasks": tasks,
        "report_to": report_to,
        "device": device,
        "qlora": qlora,
    }
    overrides = {k: v for k, v in given.items() if v is not None}
    path, result = train_model(ws(), name, dataset, overrides, resume=resume, log=console.print)
    if os.environ.get("RANK", "0") != "0":  # other ranks of `accelerate launch` stay quiet
        return
    best = "-" if result.best_val_loss is None else f"{result.best_val_loss:.4f}"
    console.print(
        f"trained {result.steps} steps in {result.seconds:.0f}s "
        f"({result.tokens_per_second:,.0f} tok/s), best val loss {best}\n"
        f"saved {path}"
    )


eval_app = _commands(
    "Grade the base model and a fine-tuned version on held-out examples; "
    "'storetune eval agreement' checks the grader against hand labels."
)
app.add_typer(eval_app, name="eval")
GATE_EXIT = 3  # distinct from 1 (crash) and 2 (user error): a release gate failed


@eval_app.callback(invoke_without_command=True)
def eval_cmd(
    ctx: typer.Context,
    model: Annotated[str, typer.Option(help="NAME or NAME@vN.")] = "support",
    baseline: Annotated[bool, typer.Option(help="Also grade the base model.")] = True,
    gate: Annotated[
        bool,
        typer.Option(
            help="Exit with code 3, naming each failed gate, when the version misses a "
            "release gate (store.yaml eval.gates: correct >= 85%, wrong <= 5%, "
            "hallucination <= 2% by default)."
        ),
    ] = False,
    extra: Annotated[
        list[Path] | None,
        typer.Option(help="Extra eval file (chat JSONL, reference reply last); repeatable."),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(help="Grade at most N test examples (stratified).")
    ] = None,
    max_new_tokens: Annotated[int, typer.Option(help="Reply length limit.")] = 128,
) -> None:
    """Grade the base model and a fine-tuned version; write reports/eval-NAME-vN.{json,html}."""
    if ctx.invoked_subcommand is not None:
        return
    from storetune.eval.runner import evaluate

    report = evaluate(ws(), model, baseline, limit, max_new_tokens, log=console.print, extra=extra)
    console.print(headline_table(report))
    if any("system" in r for r in report["results"].values()):
        console.print(system_table(report))
    _print_summary_lines(report)
    failed = [g for g in report["gates"] if not g["passed"]]
    for g in report["gates"]:
        style = "green" if g["passed"] else "bold red"
        console.print(f"[{style}]gate {_gate_line(g)}[/]")
    console.print(f"report: {report['html']}\njson: {report['path']}")
    if gate and failed:
        for g in failed:
            err.print(f"[bold red]gate failed:[/] {_gate_line(g)}", highlight=False)
        raise typer.Exit(GATE_EXIT)


def _gate_line(g: dict) -> str:
    return f"{g['name']} {_pct(g['value'])} (needs {g['op']} {_pct(g['threshold'])})"


@eval_app.command("agreement")
def eval_agreement(
    file: Annotated[
        Path | None, typer.Option(help="Labeled JSONL (default: the bundled trust set).")
    ] = None,
    show: Annotated[int, typer.Option(help="Print up to N disagreements.")] = 10,
) -> None:
    """How often the automatic rubric agrees with the hand-labeled trust set."""
    from storetune.eval.agreement import LABELED_SET, measure_agreement

    a = measure_agreement(file or LABELED_SET)
    console.print(f"agreement {a.agree}/{a.n} = [bold]{_pct(a.rate)}[/] on {file or LABELED_SET}")
    table = Table(title="hand label (rows) vs grader (columns)")
    for col in ("label", "n", "grader 3", "grader 2", "grader 1", "agreement"):
        table.add_column(col, justify="right")
    per_label = a.per_label()
    for label, row in sorted(a.confusion.items(), reverse=True):
        table.add_row(
            str(label),
            str(sum(row.values())),
            *(str(row[s]) for s in (3, 2, 1)),
            _pct(per_label[label]),
        )
    console.print(table)
    tasks = Table(title="by task")
    for col in ("task", "n", "agreement"):
        tasks.add_column(col, justify="left" if col == "task" else "right")
    for task, (agree, n) in a.by_task.items():
        tasks.add_row(task, str(n), _pct(agree / n))
    console.print(tasks)
    for row, g in a.disagreements[:show]:
        console.print(
            f"[yellow]{row.id}[/] label {row.label}, grader {g.score}: "
            f"{'; '.join(g.reasons) or '-'}",
            highlight=False,
        )


@app.command()
def demo(
    directory: Annotated[Path, typer.Option(help="Workspace to (re)create.")] = Path(
        "demo-workspace"
    ),
    quick: Annotated[
        bool, typer.Option(help="Tiny budget for a smoke test (seconds, not minutes).")
    ] = False,
    base_model: Annotated[str | None, typer.Option(help="Base model (default: bundled).")] = None,
) -> None:
    """Run the whole pipeline on the sample store and compare base vs fine-tuned."""
    from storetune.demo.pipeline import QUICK, run_demo

    result = run_demo(directory, QUICK if quick else None, base_model, log=console.print)
    console.print(headline_table(result["eval"], result["train"].seconds))
    if any("system" in r for r in result["eval"]["results"].values()):
        console.print(system_table(result["eval"]))
    _print_summary_lines(result["eval"])
    console.print(f"stage times (s): {result['timings']}\nworkspace: {result['workspace']}")
    console.print(f"eval report: {result['eval']['html']}", soft_wrap=True)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    engine: Annotated[
        str,
        typer.Option(
            help="local (the embedded server, engine from serve.engine), llamacpp or torch "
            "(the embedded server on that engine), or vllm (start/print a vLLM server)."
        ),
    ] = "local",
    insecure_no_auth: Annotated[
        bool,
        typer.Option("--insecure-no-auth", help="Serve without API keys (local development only)."),
    ] = False,
) -> None:
    """Serve the base model and every trained adapter behind an OpenAI-compatible API."""
    if engine == "vllm":
        from storetune.serve.vllm import run_vllm

        raise typer.Exit(run_vllm(ws(), host, port, insecure_no_auth, log=console.print))
    if engine not in ("local", "llamacpp", "torch"):
        raise StoretuneError(
            f"--engine must be 'local', 'llamacpp', 'torch' or 'vllm', not '{engine}'"
        )
    from storetune.serve.app import serve_workspace

    kind = None if engine == "local" else engine
    serve_workspace(ws(), host, port, insecure_no_auth, log=console.print, engine_kind=kind)


@app.command()
def index(
    tickets: Annotated[
        bool, typer.Option(help="Also embed past tickets for the routing classifier.")
    ] = True,
) -> None:
    """Build or refresh the catalog and help-center index (only changed texts are embedded)."""
    from storetune.retrieval.index import build_index

    r = build_index(ws().db_path, tickets=tickets)
    console.print(
        f"indexed {r.products} active products: {r.embedded} embedded, {r.reused} reused, "
        f"{r.removed} removed; {r.tickets} past tickets ({r.tickets_embedded} embedded); "
        f"{r.passages} help-center passages ({r.passages_embedded} embedded) "
        f"in {r.seconds:.1f}s with {r.model}"
    )


feedback_app = _commands("Agent decisions as training data.", no_args_is_help=True)
app.add_typer(feedback_app, name="feedback")


@feedback_app.command("export")
def feedback_export(
    out: Annotated[
        Path | None, typer.Option(help="JSONL file (default: feedback/feedback.jsonl).")
    ] = None,
) -> None:
    """Write approved and edited drafts as chat examples with provenance."""
    from storetune.feedback import export_feedback

    r = export_feedback(ws(), out)
    console.print(
        f"{r.examples} examples ({r.approved} approved unchanged, {r.edited} edited) -> {r.path}"
    )


@app.command()
def monitor(
    weeks: Annotated[int, typer.Option(help="How many ISO weeks, up to this one.")] = 8,
    cost: Annotated[
        list[str] | None,
        typer.Option(
            help="A cost assumption, NAME=VALUE (repeatable): tokens_in, tokens_out, "
            "price_in, price_out (per million tokens), local_watts, local_hours, kwh_price, "
            "hardware_cost, hardware_months, currency. The report lists every default."
        ),
    ] = None,
) -> None:
    """Per week: drafts approved unchanged, edited, rejected, escalated; the ops numbers
    (automation, hand-over, time to draft, topics, hosted vs local cost); HTML + plots."""
    from storetune.monitor import monitor as run_monitor
    from storetune.ops import CostAssumptions

    report = run_monitor(ws(), weeks, costs=CostAssumptions.parse(cost or []))
    table = Table(title="review outcomes per ISO week")
    for col in ("week", "routed", "reviewed", "approved", "edited", "rejected", "escalated"):
        table.add_column(col, justify="left" if col == "week" else "right")
    for r in [*report.weeks, report.total]:
        table.add_row(
            r.week,
            str(r.routed),
            str(r.reviewed),
            _pct(r.approved_share),
            _pct(r.edited_share),
            _pct(r.rejected_share),
            _pct(r.escalated_share),
        )
    console.print(table)
    for w in report.warnings:
        console.print(f"[bold yellow]warning:[/] {w}")
    _print_ops(report.ops)
    console.print(f"report: {report.html_path}\nplot: {report.plot}\ndata: {report.json_path}")


def _print_ops(ops) -> None:
    c = ops.cost
    median = ops.median_draft_seconds
    console.print(
        f"automation rate (sent as drafted): {_pct(ops.automation_rate)}; hand-over rate: "
        f"{_pct(ops.handover_rate)}; median ticket to draft: "
        + (
            f"{median:.0f} s over {len(ops.draft_seconds)} helpdesk tickets"
            if median is not None
            else "no helpdesk tickets"
        )  # fmt: skip
    )
    console.print(
        f"{c.monthly_tickets:,.0f} tickets a month: hosted API {c.hosted_monthly:,.2f} vs local "
        f"{c.local_monthly:,.2f} {c.assumptions.currency} (assumptions in the HTML report)"
    )
    for note in ops.notes:
        console.print(f"note: {note}")


@app.command()
def calibrate(
    model: Annotated[str, typer.Option(help="NAME or NAME@vN.")] = "support",
    limit: Annotated[int, typer.Option(help="Validation replies to generate.")] = 100,
    max_new_tokens: Annotated[int, typer.Option(help="Reply length limit.")] = 128,
    target: Annotated[float, typer.Option(help="Highest wrong share for 'high'.")] = 0.05,
) -> None:
    """Fit the routing confidence thresholds on the validation split."""
    from storetune.serve.calibrate import calibrate as run_calibrate

    r = run_calibrate(ws(), model, limit, max_new_tokens, target, log=console.print)
    t, d = r.thresholds, r.thresholds.details
    console.print(
        f"high: mean log-prob >= {t.mean_high} and every token >= {t.min_high}; "
        f"low: mean < {t.mean_low}"
    )
    if "high" in d:
        console.print(
            f"{d['high']} of {d['candidates']} sendable replies rated high, "
            f"{d['high_wrong_rate']:.1%} of them wrong (95% upper bound "
            f"{d['high_wrong_rate_upper95']:.1%})"
        )
    else:
        console.print(f"[bold yellow]warning:[/] {d['note']}")
    console.print(f"saved {r.path}")


@models_app.command("list")
def models_list() -> None:
    """Every trained version with its dataset and validation loss."""
    from storetune.models.registry import Registry

    reg = Registry(ws().models_dir)
    table = Table("model", "version", "current", "tasks", "dataset", "val loss", "created")
    for name in reg.names():
        for v in reg.versions(name):
            info = reg.info(reg.resolve(f"{name}@v{v}"))
            loss = info["train"].get("best_val_loss")
            table.add_row(
                name,
                f"v{v}",
                "*" if reg.current(name) == v else "",
                ", ".join(info.get("tasks") or ["-"]),
                info["dataset_id"],
                f"{loss:.4f}" if loss is not None else "-",
                info["created"],
            )
    console.print(table)


@models_app.command("show")
def models_show(
    model: Annotated[str, typer.Argument(help="NAME (current version) or NAME@vN.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """One version: training config, data, metrics, eval summary and files."""
    from storetune.models.registry import Registry

    shown = Registry(ws().models_dir).show(model, ws().reports_dir)
    if as_json:
        console.print_json(json.dumps(shown))
        return
    current = " (current)" if shown["current"] else ""
    console.print(f"[bold]{shown['ref']}[/]{current}  {shown['path']}")
    for title in ("base_model", "config", "data", "metrics", "eval", "files"):
        console.print(_kv_table(title, shown[title]))
    for w in shown["warnings"]:
        console.print(f"[yellow]warning:[/] {w}")


@models_app.command("promote")
def models_promote(model: Annotated[str, typer.Argument(help="NAME@vN to make current.")]) -> None:
    """Make NAME@vN the version that eval, serve and export use by default."""
    from storetune.models.registry import ModelRef, Registry

    ref = ModelRef.parse(model)
    if ref.version is None:
        raise StoretuneError(f"'{model}': say which version, e.g. {ref.name}@v2")
    Registry(ws().models_dir).promote(ref.name, ref.version)
    console.print(f"{ref} is now current")


@models_app.command("rollback")
def models_rollback(name: Annotated[str, typer.Argument(help="Model name.")]) -> None:
    """Make the previously current version current again."""
    from storetune.models.registry import Registry

    version = Registry(ws().models_dir).rollback(name)
    console.print(f"{name}@v{version} is current again")


@models_app.command("diff")
def models_diff(
    a: Annotated[str, typer.Argument(help="NAME@vA")],
    b: Annotated[str, typer.Argument(help="NAME@vB")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Config, data and metric differences between two versions (eval too, when graded)."""
    from storetune.models.registry import Registry

    d = Registry(ws().models_dir).diff(a, b, ws().reports_dir)
    if as_json:
        console.print_json(json.dumps(d))
        return
    table = Table("section", "field", d["a"], d["b"], "delta", title=f"{d['a']} → {d['b']}")
    for section in ("config", "data", "base_model", "metrics", "eval"):
        for key, ch in d[section].items():
            table.add_row(section, key, str(ch["a"]), str(ch["b"]), str(ch.get("delta", "")))
    if d["tasks"]:
        table.add_row("tasks", "", *(",".join(t or []) for t in d["tasks"]), "")
    console.print(table if table.row_count else "no differences")


@app.command()
def export(
    model: Annotated[str, typer.Option(help="NAME (current version) or NAME@vN.")] = "support",
    fmt: Annotated[str, typer.Option("--format", help="merged, gguf, ollama or vllm.")] = "merged",
    out: Annotated[
        Path | None, typer.Option(help="Output directory (default: exports/NAME-vN-FORMAT).")
    ] = None,
    outtype: Annotated[str, typer.Option(help="GGUF weights: f16, bf16, f32 or q8_0.")] = "f16",
    parity_prompts: Annotated[
        int, typer.Option(help="GGUF parity check: prompts to compare (0: skip).")
    ] = 20,
    force: Annotated[bool, typer.Option(help="Replace an existing export directory.")] = False,
) -> None:
    """Export a trained version: merged safetensors, GGUF, Ollama Modelfile or vLLM adapter."""
    from storetune.models.export import export_model

    result = export_model(
        ws(), model, fmt, out, outtype, parity_prompts, force=force, log=console.print
    )
    console.print(
        f"exported {model} as {result.format} to {result.path}: {', '.join(result.files)}"
    )
    if result.parity:
        p = result.parity
        console.print(
            f"parity (greedy, {p['max_new_tokens']} tokens): {p['identical']}/{p['prompts']} "
            f"identical outputs, HF vs GGUF ({p['outtype']}); details in parity.json"
        )
    if result.command:
        console.print(result.command, soft_wrap=True, highlight=False)


def _kv_table(title: str, data: dict | None) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    for key, value in (data or {}).items():
        text = json.dumps(value) if isinstance(value, dict | list) else str(value)
        table.add_row(key, text)
    if not data:
        table.add_row("-", "none" if title != "eval" else "not graded yet: storetune eval")
    return table


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def headline_table(report: dict, train_seconds: float | None = None) -> Table:
    """Base vs version: the figures of the eval report's headline."""
    from storetune.eval.report import HEADLINE as columns

    table = Table(title=f"base vs {report['model']} on held-out examples")
    table.add_column("model")
    table.add_column("n", justify="right")
    for _, title in columns:
        table.add_column(title, justify="right")
    for name, r in report["results"].items():
        s = r["summary"]
        table.add_row(name, str(s["n"]), *(_pct(s.get(key)) for key, _ in columns))
    seconds = train_seconds if train_seconds is not None else report.get("train_seconds")
    if seconds is not None:
        table.caption = f"training time: {seconds / 60:.1f} min"
    return table


def system_table(report: dict) -> Table:
    """What customers would get with `review_mode: auto`: each model behind the router,
    focused prompt, guard, hand-over rules and confidence (95% intervals in brackets)."""
    from storetune.eval.report import SYSTEM_COLUMNS
    from storetune.eval.stats import format_rate

    shown = [name for name, r in report["results"].items() if r.get("system")]
    title = " vs ".join(shown) if len(shown) > 1 else report["model"]
    table = Table(title=f"the deployed system, {title} (same tickets)")
    columns = SYSTEM_COLUMNS
    table.add_column("model")
    table.add_column("n", justify="right")
    for _, title in columns:
        table.add_column(title, justify="right")
    for name, r in report["results"].items():
        s = (r.get("system") or {}).get("summary")
        if s:
            table.add_row(name, str(s["n"]), *(format_rate(s.get(key)) for key, _ in columns))
    return table


def _print_summary_lines(report: dict) -> None:
    """Order tickets and knowledge questions, one line each (eval.report.summary_lines)."""
    from storetune.eval.report import summary_lines

    for line in summary_lines(report):
        console.print(line, highlight=False, soft_wrap=True)


def run() -> None:
    try:
        app()
    except StoretuneError as e:
        err.print(f"[bold red]error:[/] {e}", highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    run()
