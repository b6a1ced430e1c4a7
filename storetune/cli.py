"""The `storetune` command: thin commands that parse, call one library function, print."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from storetune.errors import StoretuneError
from storetune.quiet import quiet_libraries
from storetune.workspace import Workspace

app = typer.Typer(
    help="storetune: turn a store's catalog, tickets and policies into its own support model.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    add_completion=False,
)
models_app = typer.Typer(help="List and manage trained model versions.", no_args_is_help=True)
app.add_typer(models_app, name="models")
console = Console()
err = Console(stderr=True)
_state: dict[str, Workspace] = {}


def ws() -> Workspace:
    return _state["ws"]


@app.callback()
def main(
    workspace: Annotated[
        Path | None,
        typer.Option(
            "-w",
            "--workspace",
            envvar="STORETUNE_WORKSPACE",
            help="Store workspace directory (default: current directory).",
        ),
    ] = None,
) -> None:
    quiet_libraries()
    _state["ws"] = Workspace.resolve(workspace)


@app.command()
def init(
    brand: Annotated[str, typer.Option(help="Store name customers know.")] = "My Store",
    products: Annotated[str | None, typer.Option(help="Shopify product export path.")] = None,
    tickets: Annotated[str | None, typer.Option(help="Helpdesk export file or directory.")] = None,
) -> None:
    """Create store.yaml in the workspace, ready to edit."""
    from storetune.setup import init_workspace

    path = init_workspace(ws(), brand, products, tickets)
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
    products: Annotated[
        Path | None, typer.Option(help="Product export (default: store.yaml sources).")
    ] = None,
    tickets: Annotated[
        Path | None, typer.Option(help="Ticket export (default: store.yaml sources).")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="Ticket format, or auto.")] = "auto",
    policies: Annotated[
        Path | None, typer.Option(help="Policy rules file (JSON/YAML); recorded in store.yaml.")
    ] = None,
) -> None:
    """Read the store's exports into store.db: cleaned, PII scrubbed, bad rows quarantined."""
    from storetune.ingest import format_report, ingest_workspace

    report = ingest_workspace(ws(), products, tickets, fmt, policies=policies)
    console.print(format_report(report))


@app.command()
def build() -> None:
    """Build the train/val/test chat JSONL dataset from store.db."""
    from storetune.dataset.build import build_dataset

    report = build_dataset(ws())
    table = Table(title=f"dataset {report.dataset_id}")
    for col in ("task", "train", "val", "test"):
        table.add_column(col, justify="right" if col != "task" else "left")
    for task, c in report.by_task.items():
        table.add_row(task, *(str(c.get(s, 0)) for s in ("train", "val", "test")))
    console.print(table)
    console.print(f"notes: {report.notes}\nwritten to {report.path}")


@app.command()
def train(
    name: Annotated[str, typer.Option(help="Adapter name in the registry.")] = "support",
    dataset: Annotated[str | None, typer.Option(help="Dataset id (default: latest).")] = None,
    epochs: Annotated[float | None, typer.Option(help="Override epochs.")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after N optimizer steps.")] = None,
    lr: Annotated[float | None, typer.Option(help="Override the learning rate.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run.")] = False,
) -> None:
    """LoRA-fine-tune the base model on the dataset; writes models/<name>/v<N>."""
    from storetune.train import train_model

    overrides = {
        k: v
        for k, v in {"epochs": epochs, "max_steps": max_steps, "lr": lr}.items()
        if v is not None
    }
    path, result = train_model(ws(), name, dataset, overrides, resume=resume, log=console.print)
    console.print(
        f"trained {result.steps} steps in {result.seconds:.0f}s "
        f"({result.tokens_per_second:,.0f} tok/s), best val loss {result.best_val_loss:.4f}\n"
        f"saved {path}"
    )


@app.command("eval")
def eval_cmd(
    model: Annotated[str, typer.Option(help="NAME or NAME@vN.")] = "support",
    baseline: Annotated[bool, typer.Option(help="Also grade the base model.")] = True,
    limit: Annotated[int | None, typer.Option(help="Grade at most N test examples.")] = None,
    max_new_tokens: Annotated[int, typer.Option(help="Reply length limit.")] = 128,
) -> None:
    """Grade the base model and a fine-tuned version on the held-out test split."""
    from storetune.eval.runner import evaluate

    report = evaluate(ws(), model, baseline, limit, max_new_tokens, log=console.print)
    console.print(headline_table(report))
    console.print(f"report: {report['path']}")


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
    console.print(f"stage times (s): {result['timings']}\nworkspace: {result['workspace']}")


@models_app.command("list")
def models_list() -> None:
    """Every trained version with its dataset and validation loss."""
    from storetune.models.registry import Registry

    reg = Registry(ws().models_dir)
    table = Table("model", "version", "current", "dataset", "val loss", "created")
    for name in reg.names():
        for v in reg.versions(name):
            info = reg.info(reg.resolve(f"{name}@v{v}"))
            loss = info["train"].get("best_val_loss")
            table.add_row(
                name,
                f"v{v}",
                "*" if reg.current(name) == v else "",
                info["dataset_id"],
                f"{loss:.4f}" if loss is not None else "-",
                info["created"],
            )
    console.print(table)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def headline_table(report: dict, train_seconds: float | None = None) -> Table:
    table = Table(title=f"base vs {report['model']} on held-out tickets")
    for col in ("model", "n", "correct", "partial", "wrong", "escalation acc.", "hallucination"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for name, r in report["results"].items():
        s = r["summary"]
        table.add_row(
            name,
            str(s["n"]),
            _pct(s["correct"]),
            _pct(s["partial"]),
            _pct(s["wrong"]),
            _pct(s["escalation_accuracy"]),
            _pct(s["hallucination"]),
        )
    seconds = train_seconds if train_seconds is not None else report.get("train_seconds")
    if seconds is not None:
        table.caption = f"training time: {seconds / 60:.1f} min"
    return table


def run() -> None:
    try:
        app()
    except StoretuneError as e:
        err.print(f"[bold red]error:[/] {e}", highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    run()
