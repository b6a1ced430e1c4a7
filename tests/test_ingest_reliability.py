"""Issue 16: ingest never shrinks the catalog silently, loses nothing, never hangs or
crashes on odd files (items 1, 7, 8, 10 and the ingest parts of 11)."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from storetune.cli import app
from storetune.errors import StoretuneError
from storetune.ingest import format_report, ingest_workspace, shopify_csv, shopify_json
from storetune.store import db
from storetune.workspace import Workspace

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
HEADER = ["Handle", "Title", "Option1 Name", "Option1 Value", "Variant SKU", "Variant Price"]


def _rows(n: int, sizes: tuple[str, ...] = ("S", "M")) -> list[list[str]]:
    rows = []
    for i in range(n):
        for j, size in enumerate(sizes):
            first = j == 0
            title, name = (f"Jacket {i}", "Size") if first else ("", "")
            rows.append([f"jacket-{i}", title, name, size, f"J-{i}-{size}", f"{100 + i}.00"])
    return rows


def _csv(rows: list[list[str]], header: list[str] = HEADER) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([header, *rows])
    return buf.getvalue()


def _workspace(root: Path, **sources: str) -> Workspace:
    root.mkdir(parents=True, exist_ok=True)
    cfg = {"brand": {"name": "Cedar & Summit", "voice": "warm"}, "sources": sources}
    (root / "store.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return Workspace(root)


@pytest.fixture
def stocked(tmp_path) -> Workspace:
    """A workspace whose store.db holds a 30-product catalog (60 variants)."""
    good = tmp_path / "catalog.csv"
    good.write_text(_csv(_rows(30)), encoding="utf-8")
    ws = _workspace(tmp_path / "ws")
    report = ingest_workspace(ws, products=good, progress=False)
    assert report.db_counts["active_products"] == 30
    return ws


def _refused(ws: Workspace, path: Path, match: str, **kw) -> StoretuneError:
    before = ws.db_path.read_bytes()
    with pytest.raises(StoretuneError, match=match) as err:
        ingest_workspace(ws, products=path, progress=False, **kw)
    assert "\n" not in str(err.value).split("\n  hint:")[0]  # one line, then the hint
    assert ws.db_path.read_bytes() == before  # nothing written
    return err.value


# --- item 1: a bad product file never shrinks the catalog silently -----------------------


@pytest.mark.parametrize(
    ("column", "renamed", "named"),
    [("Title", "Name", "'Title'"), ("Variant Price", "Cost", "'Variant Price' or 'Price'")],
)
def test_a_missing_required_column_is_one_line_naming_file_and_column(
    stocked, tmp_path, column, renamed, named
):
    header = [renamed if h == column else h for h in HEADER]
    path = tmp_path / "renamed.csv"
    path.write_text(_csv(_rows(30), header), encoding="utf-8")
    err = _refused(stocked, path, "no .* column")
    assert str(path) in str(err) and named in str(err)


def test_a_header_only_csv_is_refused(stocked, tmp_path):
    path = tmp_path / "header.csv"
    path.write_text(_csv([]), encoding="utf-8")
    _refused(stocked, path, "no product rows")


def test_an_import_that_takes_most_of_the_catalog_away_needs_replace(stocked, tmp_path):
    small = tmp_path / "small.csv"
    small.write_text(_csv(_rows(10)), encoding="utf-8")
    err = _refused(stocked, small, "would take 20 of the 30 active products")
    assert "--replace" in str(err)
    report = ingest_workspace(stocked, products=small, progress=False, replace=True)
    assert report.db_counts["active_products"] == 10
    assert report.sources[0].catalog == {
        "active_before": 30, "active_after": 10, "removed": 20, "active_lost": 20
    }  # fmt: skip
    assert "20 products not in the export removed (30 → 10 active)" in format_report(report).caption


def test_a_smaller_change_goes_through_and_is_reported(stocked, tmp_path):
    fewer = tmp_path / "fewer.csv"
    fewer.write_text(_csv(_rows(20)), encoding="utf-8")
    report = ingest_workspace(stocked, products=fewer, progress=False)
    assert report.db_counts["active_products"] == 20
    assert "10 products not in the export removed" in format_report(report).caption


def _cli(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "storetune", *args]
    env = {**os.environ, "COLUMNS": "300"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)


def test_the_cli_refuses_with_a_message_and_replace_lets_it_through(stocked, tmp_path):
    small = tmp_path / "small.csv"
    small.write_text(_csv(_rows(3)), encoding="utf-8")
    args = ["-w", str(stocked.root), "ingest", "--products", str(small)]
    refused = _cli(*args)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "would take 27 of the 30" in " ".join(refused.stderr.split())
    assert CliRunner().invoke(app, [*args, "--replace"]).exit_code == 0
    assert db.counts(db.connect(stocked.db_path))["active_products"] == 3


def test_a_cut_off_row_is_quarantined_and_counted(tmp_path):
    text = _csv(_rows(5))
    path = tmp_path / "cut.csv"
    path.write_text(text[: text.rindex(",J-4-M")], encoding="utf-8")  # the last row, cut
    cat = shopify_csv.read_catalog(path)
    (q,) = cat.quarantine
    assert "4 of the header's 6 columns" in q.reason and q.location == "line 11"
    assert cat.counts["row"] == {"read": 10, "accepted": 9, "quarantined": 1}
    assert len(cat.products) == 5 and len(cat.products[-1].variants) == 1


def test_duplicate_rows_are_detected_not_doubled(tmp_path):
    rows = _rows(4)
    path = tmp_path / "twice.csv"
    path.write_text(_csv(rows + rows), encoding="utf-8")  # the rows pasted twice
    cat = shopify_csv.read_catalog(path)
    assert sum(len(p.variants) for p in cat.products) == 8
    assert cat.counts["variant"] == {"read": 16, "accepted": 8, "quarantined": 8}
    assert cat.counts["row"]["quarantined"] == 8
    assert all("duplicate variant (Size S) of line 2" in q.reason for q in cat.quarantine[:1])


def test_duplicate_variants_in_product_json(tmp_path):
    variant = {"option1": "M", "price": "10.00", "sku": "A"}
    product = {"handle": "a", "title": "A", "options": [{"name": "Size"}]}
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"products": [{**product, "variants": [variant, variant]}]}))
    cat = shopify_json.read_catalog(path)
    assert len(cat.products[0].variants) == 1
    assert cat.counts["variant"] == {"read": 2, "accepted": 1, "quarantined": 1}
    assert "duplicate variant (Size M) of variant 1" in cat.quarantine[0].reason


@pytest.mark.parametrize("price", ["1e309", "-5.00", "NaN", "inf", "9" * 400, "1e-999"])
def test_absurd_prices_are_quarantined(tmp_path, price):
    rows = _rows(2)
    rows[0][-1] = price
    path = tmp_path / "p.csv"
    path.write_text(_csv(rows), encoding="utf-8")
    cat = shopify_csv.read_catalog(path)
    assert [q.location for q in cat.quarantine] == ["line 2"]
    assert "invalid price" in cat.quarantine[0].reason or "unparsable" in cat.quarantine[0].reason
    jpath = tmp_path / "p.json"
    product = {"handle": "a", "title": "A", "variants": [{"price": price}, {"price": "1.00"}]}
    jpath.write_text(json.dumps({"products": [product]}))
    assert shopify_json.read_catalog(jpath).counts["variant"]["quarantined"] == 1


def test_a_json_number_past_float_range_is_quarantined(tmp_path):
    path = tmp_path / "p.json"
    path.write_text('{"products": [{"handle": "a", "title": "A", "variants": '
                    '[{"price": 1e309}, {"price": 2.5}]}]}')  # fmt: skip
    cat = shopify_json.read_catalog(path)
    assert [str(v.price) for v in cat.products[0].variants] == ["2.5"]


# --- item 7: the quarantine keeps whole records, messages included -----------------------


def _zendesk_page(description: str, status: str = "deleted", subject: str = "Order") -> dict:
    return {
        "tickets": [
            {"id": 7, "subject": subject, "status": status, "requester_id": 1,
             "updated_at": "2025-03-02T10:00:00Z", "description": description},
        ],
        "ticket_events": [
            {"ticket_id": 7, "updater_id": 2, "created_at": "2025-03-01T11:00:00Z",
             "child_events": [{"event_type": "Comment", "id": 70, "body": "Reply " + "y" * 3000}]},
        ],
    }  # fmt: skip


def test_a_quarantined_ticket_keeps_its_whole_record_and_its_messages(tmp_path):
    export = tmp_path / "zendesk.json"
    long_text = "My order never came. " + "x" * 5000
    export.write_text(json.dumps(_zendesk_page(long_text)), encoding="utf-8")
    ws = _workspace(tmp_path / "ws")
    report = ingest_workspace(ws, tickets=export, progress=False)
    assert report.reconciles
    conn = db.connect(ws.db_path)
    rows = conn.execute("SELECT kind, location, raw FROM quarantine ORDER BY id").fetchall()
    ticket = [r for r in rows if r["kind"] == "ticket"]
    messages = [r for r in rows if r["kind"] == "message"]
    assert json.loads(ticket[0]["raw"])["description"] == long_text  # no 2 KB / 4 KB cut
    texts = [r["raw"] for r in messages]
    assert any(long_text in json.loads(t) for t in texts)  # the description
    assert any("y" * 3000 in t for t in texts)  # the comment, whole
    counts = report.sources[0].counts
    assert counts["message"]["quarantined"] == len(messages) == 2


# --- item 8: --tickets FILE is detected by content ----------------------------------------


def test_tickets_format_in_store_yaml_does_not_override_an_explicit_file(tmp_path):
    ws = _workspace(tmp_path / "ws", tickets="zendesk", tickets_format="zendesk")
    chat = tmp_path / "chat.jsonl"
    line = {"messages": [{"role": "user", "content": "Where is my parcel?"},
                         {"role": "assistant", "content": "It left today."}]}  # fmt: skip
    chat.write_text(json.dumps(line) + "\n", encoding="utf-8")
    report = ingest_workspace(ws, tickets=chat, progress=False)
    assert report.sources[0].format == "chat_jsonl"
    assert report.db_counts["tickets"] == 1
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("Customer message,Agent response\nWhere is it?,On its way.\n")
    report = ingest_workspace(ws, tickets=sheet, progress=False)
    assert report.sources[0].format == "generic_csv"


def test_tickets_format_still_applies_to_the_configured_folder(tmp_path):
    ws = _workspace(tmp_path / "ws", tickets="export", tickets_format="chat_jsonl")
    (ws.root / "export").mkdir()
    line = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]}
    (ws.root / "export" / "a.json").write_text(json.dumps(line) + "\n")
    assert ingest_workspace(ws, progress=False).sources[0].format == "chat_jsonl"


# --- item 10: deep nesting and FIFOs --------------------------------------------------------


@pytest.mark.parametrize("depth", [300, 5000])
def test_deeply_nested_product_json_is_one_line(tmp_path, depth):
    path = tmp_path / "deep.json"
    path.write_text('{"products": [' + "[" * depth + "]" * depth + "]}")
    ws = _workspace(tmp_path / "ws")
    with pytest.raises(StoretuneError, match="nested|can't be read|can't tell"):
        ingest_workspace(ws, products=path, progress=False)
    result = _cli("-w", str(ws.root), "ingest", "--products", str(path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2  # the error, its hint


def _unblock(fifo: Path) -> None:
    try:  # a reader stuck on the FIFO gets end-of-file
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass


def _zendesk_folder(root: Path) -> Path:
    folder = root / "zendesk"
    folder.mkdir()
    page = _zendesk_page("Where is my parcel?", status="solved")
    (folder / "tickets.json").write_text(json.dumps(page), encoding="utf-8")
    return folder


def test_a_fifo_in_a_tickets_folder_is_skipped_not_waited_on(tmp_path):
    folder = _zendesk_folder(tmp_path)
    fifo = folder / "pipe.json"
    os.mkfifo(fifo)
    ws = _workspace(tmp_path / "ws")
    out: dict = {}

    def run() -> None:
        try:
            out["report"] = ingest_workspace(ws, tickets=folder, progress=False)
        except BaseException as e:  # noqa: BLE001 - reported below
            out["error"] = e

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(60)
    blocked = worker.is_alive()
    _unblock(fifo)
    assert not blocked, "ingest waited on the FIFO"
    report = out["report"]
    assert report.db_counts["tickets"] == 1
    assert report.sources[0].skipped == [[str(fifo), "not a regular file (a FIFO)"]]
    with pytest.raises(StoretuneError, match="not a regular file"):
        ingest_workspace(ws, tickets=fifo, progress=False)


# --- item 11: UTF-16, symlink loops, skipped files, conflicts, doubled quarantine ----------


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_product_csv_and_ticket_json_are_read(tmp_path, encoding):
    path = tmp_path / "p.csv"
    path.write_bytes(_csv(_rows(2)).encode(encoding))
    assert len(shopify_csv.read_catalog(path).products) == 2
    ws = _workspace(tmp_path / "ws")
    assert ingest_workspace(ws, products=path, progress=False).db_counts["products"] == 2
    export = tmp_path / "z.json"
    page = _zendesk_page("Où est mon colis ?", status="solved")
    export.write_bytes(json.dumps(page, ensure_ascii=False).encode(encoding))
    assert ingest_workspace(ws, tickets=export, progress=False).db_counts["tickets"] == 1


def test_broken_utf16_is_named_not_called_binary(tmp_path):
    path = tmp_path / "p.csv"
    path.write_bytes("Handle,Title\n".encode("utf-16") + b"\x00\xd8\x00\x00")  # lone surrogate
    with pytest.raises(StoretuneError, match="UTF-16"):
        shopify_csv.read_catalog(path)


def test_a_symlink_loop_is_named_as_such(tmp_path):
    loop = tmp_path / "loop.csv"
    loop.symlink_to(loop)
    ws = _workspace(tmp_path / "ws")
    with pytest.raises(StoretuneError, match="symlink loop"):
        ingest_workspace(ws, products=loop, progress=False)
    folder = _zendesk_folder(tmp_path)
    (folder / "a.json").symlink_to(folder / "b.json")
    (folder / "b.json").symlink_to(folder / "a.json")
    report = ingest_workspace(ws, tickets=folder, progress=False)
    assert sorted(why for _, why in report.sources[0].skipped) == ["symlink loop"] * 2


def test_other_files_in_a_zendesk_folder_are_counted_as_skipped(tmp_path):
    folder = _zendesk_folder(tmp_path)
    (folder / "users.csv").write_text("id,name\n1,Maya\n")
    (folder / "notes.txt").write_text("exported Monday")
    ws = _workspace(tmp_path / "ws")
    report = ingest_workspace(ws, tickets=folder, progress=False)
    skipped = {Path(f).name: why for f, why in report.sources[0].skipped}
    assert skipped == {"notes.txt": "not .json or .jsonl", "users.csv": "not .json or .jsonl"}
    assert "files skipped (not read): 2" in format_report(report).caption
    saved = json.loads((ws.reports_dir / "ingest.json").read_text())
    assert len(saved["sources"][0]["skipped"]) == 2


def test_a_conflicting_duplicate_ticket_is_reported_and_kept_in_quarantine(tmp_path):
    folder = tmp_path / "zendesk"
    folder.mkdir()
    first = _zendesk_page("Where is my parcel?", status="solved", subject="Parcel")
    second = _zendesk_page("Where is my parcel?", status="solved", subject="Refund please")
    (folder / "a.json").write_text(json.dumps(first))
    (folder / "b.json").write_text(json.dumps(second))
    ws = _workspace(tmp_path / "ws")
    report = ingest_workspace(ws, tickets=folder, progress=False)
    src = report.sources[0]
    assert src.dropped.get("conflicting_duplicate_tickets") == 1
    assert src.counts["record"] == {"read": 1, "accepted": 0, "quarantined": 1}
    assert report.reconciles
    conn = db.connect(ws.db_path)
    (raw,) = conn.execute("SELECT raw FROM quarantine WHERE kind = 'record'").fetchone()
    assert json.loads(raw)["subject"] == "Parcel"
    assert "conflicting_duplicate_tickets 1" in format_report(report).caption
    # the same record twice is a plain repeat, not a conflict
    (folder / "b.json").write_text(json.dumps(first))
    again = ingest_workspace(ws, tickets=folder, progress=False).sources[0]
    assert "conflicting_duplicate_tickets" not in again.dropped


def test_a_conflicting_spreadsheet_row_is_reported(tmp_path):
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("ID,Customer message,Agent response\n1,Where?,Here.\n1,Where?,There.\n")
    ws = _workspace(tmp_path / "ws")
    report = ingest_workspace(ws, tickets=sheet, progress=False)
    assert report.sources[0].dropped == {"conflicting_duplicate_tickets": 1}
    assert report.reconciles and report.db_counts["tickets"] == 1


def test_quarantine_rows_do_not_double_when_the_export_moves(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name / "zendesk").mkdir(parents=True)
        shutil.copy(DATA / "shopify" / "apparel.csv", tmp_path / name / "products.csv")
        page = _zendesk_page("Where is my parcel?", status="weird")
        (tmp_path / name / "zendesk" / "tickets.json").write_text(json.dumps(page))
    ws = _workspace(tmp_path / "ws")

    def ingest(name: str):
        where = tmp_path / name
        return ingest_workspace(
            ws, products=where / "products.csv", tickets=where / "zendesk", progress=False
        )

    first = ingest("a")
    assert first.db_counts["quarantine"] > 0
    second = ingest("b")
    assert second.db_counts["quarantine"] == first.db_counts["quarantine"]
