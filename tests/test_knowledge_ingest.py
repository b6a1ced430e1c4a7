"""Knowledge-base ingest: Zendesk Help Center, Shopify pages/blog and Markdown/HTML folders
into heading chunks in store.db; re-imports idempotent; bad records quarantined."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from storetune.clean.html import html_to_outline
from storetune.errors import StoretuneError
from storetune.ingest import ingest_workspace
from storetune.ingest.chunk import MAX_CHARS, chunk_outline
from storetune.ingest.detect import detect_format
from storetune.ingest.knowledge import markdown_outline, read_knowledge
from storetune.store import db
from storetune.store.knowledge import load_passages
from storetune.workspace import Workspace

WEBSITE = "https://www.cedarsummit.example.com"
FOOTER = "<p>Was this article helpful?</p><p>Still need help? Contact us</p>"


def hc_article(ident: int, title: str, body: str, **extra) -> dict:
    """A Zendesk Help Center article as the Articles API lists it."""
    return {
        "id": ident,
        "url": f"https://x.zendesk.com/api/v2/help_center/en-us/articles/{ident}.json",
        "html_url": f"https://x.zendesk.com/hc/en-us/articles/{ident}",
        "author_id": 1,
        "draft": False,
        "section_id": 900,
        "locale": "en-us",
        "source_locale": "en-us",
        "updated_at": "2025-05-01T10:00:00Z",
        "title": title,
        "name": title,
        "label_names": [],
        "body": body,
        **extra,
    }


SIZING = (
    "<h2>Packs</h2><p>Packs fit by torso length: S 15-17 in, M 17-19 in, L 19-21 in.</p>"
    "<h2>Footwear</h2><p>Whole US sizes 7-13; if you're a half size, go up.</p>" + FOOTER
)
WARRANTY = (
    "<p>Every item carries a 2-year warranty against defects in materials and workmanship."
    "</p><p>Start a claim at <a href='https://www.cedarsummit.example.com/warranty'>our "
    "warranty page</a>.</p>" + FOOTER
)
CARE = "<h2>Down jackets</h2><p>Wash with a down cleaner and tumble dry low with balls.</p>"


def hc_export(*articles: dict) -> dict:
    return {"articles": list(articles), "next_page": None, "page": 1, "count": len(articles)}


def write_json(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def workspace(root: Path, **sources) -> Workspace:
    root.mkdir(parents=True, exist_ok=True)
    cfg = {
        "brand": {"name": "Cedar & Summit", "voice": "warm", "website": WEBSITE},
        "sources": sources,
    }
    (root / "store.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return Workspace(root)


def stored(ws: Workspace) -> dict[str, list[tuple[str, str]]]:
    conn = db.connect(ws.db_path)
    try:
        out: dict[str, list[tuple[str, str]]] = {}
        for p in load_passages(conn):
            out.setdefault(p.title, []).append((p.heading, p.text))
        return out
    finally:
        conn.close()


# --- cleaning and chunking -------------------------------------------------------------


def test_chunks_follow_headings_and_drop_boilerplate():
    chunks = chunk_outline(html_to_outline("<h1>Sizing guide</h1>" + SIZING), "Sizing guide")
    assert [(c.heading, c.text[:20]) for c in chunks] == [
        ("Packs", "Packs fit by torso l"),
        ("Footwear", "Whole US sizes 7-13;"),
    ]
    assert not any("helpful" in c.text or "Still need" in c.text for c in chunks)


def test_long_sections_split_under_the_limit_at_sentence_ends():
    text = "# Care\n\n" + " ".join(f"Sentence number {i} about washing." for i in range(80))
    chunks = chunk_outline(text, "Care guide")
    assert len(chunks) > 1 and all(len(c.text) <= MAX_CHARS for c in chunks)
    assert all(c.heading == "Care" and c.text.endswith(".") for c in chunks)
    assert " ".join(c.text for c in chunks) == text.split("\n\n", 1)[1]


def test_markdown_links_headings_and_lists():
    md = "Returns\n=======\n\n* **Free** label via [the portal](https://r.example.com/x)\n"
    md += "\n## Refunds\n\nRefunds take 5 business days. ![box](box.png)\n"
    outline = markdown_outline(md)
    chunks = chunk_outline(outline, "Returns")
    assert [(c.heading, c.text) for c in chunks] == [
        ("", "- Free label via the portal (https://r.example.com/x)"),
        ("Refunds", "Refunds take 5 business days. box"),
    ]


# --- detection --------------------------------------------------------------------------


def test_detects_each_knowledge_format_apart_from_products_and_tickets(tmp_path):
    hc = write_json(tmp_path / "hc.json", hc_export(hc_article(1, "Sizing", SIZING)))
    pages = write_json(
        tmp_path / "pages.json",
        {"pages": [{"id": 5, "title": "FAQ", "handle": "faq", "body_html": "<p>x</p>"}]},
    )
    blog = write_json(
        tmp_path / "blog.json",
        {"articles": [{"id": 7, "blog_id": 3, "title": "Trip", "body_html": "<p>x</p>"}]},
    )
    products = write_json(
        tmp_path / "products.json", {"products": [{"title": "T", "body_html": "<p>x</p>"}]}
    )
    # a ticket export whose comment quotes an article list is still tickets
    tickets = write_json(
        tmp_path / "tickets.json",
        {"tickets": [{"id": 1, "requester_id": 2, "articles": [{"html_url": "h"}]}]},
    )
    folder = tmp_path / "kb"
    folder.mkdir()
    (folder / "returns.md").write_text("# Returns\n\nWithin 30 days.\n", encoding="utf-8")
    got = [detect_format(p) for p in (hc, pages, blog, products, tickets, folder)]
    assert got == [
        "zendesk_hc",
        "shopify_pages",
        "shopify_blog",
        "shopify_json",
        "zendesk",
        "knowledge_files",
    ]


# --- ingest -----------------------------------------------------------------------------


def test_zendesk_hc_ingest_reimport_and_change(tmp_path):
    export = tmp_path / "ws" / "hc"
    articles = [
        hc_article(1, "Sizing guide", SIZING),
        hc_article(2, "Warranty", WARRANTY),
        hc_article(3, "Care", CARE),
        hc_article(4, "Coming soon", "<p>Draft text</p>", draft=True),
    ]
    write_json(export / "articles-1.json", hc_export(*articles[:2]))
    write_json(export / "articles-2.json", hc_export(*articles[2:]))
    ws = workspace(tmp_path / "ws", knowledge="hc")
    report = ingest_workspace(ws, progress=False)
    src = report.source("knowledge")
    assert src.format == "zendesk_hc" and src.reconciles
    assert src.counts["article"] == {"read": 3, "accepted": 3, "quarantined": 0}
    assert src.dropped["draft"] == 1
    assert src.upserts == {"new": 3, "changed": 0, "unchanged": 0, "removed": 0}
    kb = stored(ws)
    assert set(kb) == {"Sizing guide", "Warranty", "Care"}
    assert [h for h, _ in kb["Sizing guide"]] == ["Packs", "Footwear"]
    # the link target is kept: a reply may give it, and the guard checks URLs
    warranty = " ".join(text for _, text in kb["Warranty"])
    assert "warranty page (https://www.cedarsummit.example.com/warranty)" in warranty
    assert report.db_counts["articles"] == 3 and report.db_counts["passages"] == 4

    again = ingest_workspace(ws, progress=False).source("knowledge")
    assert again.upserts == {"new": 0, "changed": 0, "unchanged": 3, "removed": 0}
    assert stored(ws) == kb

    # the warranty changes, care is unpublished (now a draft), sizing stays
    articles[1] = hc_article(2, "Warranty", WARRANTY.replace("2-year", "3-year"))
    articles[2] = hc_article(3, "Care", CARE, draft=True)
    write_json(export / "articles-1.json", hc_export(*articles[:2]))
    write_json(export / "articles-2.json", hc_export(*articles[2:]))
    third = ingest_workspace(ws, progress=False).source("knowledge")
    assert third.upserts == {"new": 0, "changed": 1, "unchanged": 1, "removed": 1}
    kb = stored(ws)
    assert set(kb) == {"Sizing guide", "Warranty"} and "3-year" in kb["Warranty"][0][1]


def test_bad_records_are_quarantined_whole_with_the_field(tmp_path):
    bad_title = hc_article(11, "", "<p>text</p>")
    bad_body = hc_article(12, "Body", {"html": "<p>x</p>"})
    export = write_json(
        tmp_path / "hc.json",
        hc_export(hc_article(10, "Good", "<p>Fine text.</p>"), bad_title, bad_body, "oops"),
    )
    ws = workspace(tmp_path / "ws")
    src = ingest_workspace(ws, knowledge=export, progress=False).source("knowledge")
    assert src.counts["article"] == {"read": 4, "accepted": 1, "quarantined": 3}
    assert src.rejects == [
        "hc.json article 11: field 'title' is missing or empty",
        "hc.json article 12: field 'body' is dict, not HTML text",
        "record 4 is not a JSON object",
    ]
    conn = db.connect(ws.db_path)
    raws = [r[0] for r in conn.execute("SELECT raw FROM quarantine ORDER BY id")]
    conn.close()
    assert json.loads(raws[1]) == bad_body  # kept whole: nothing is lost


def test_invalid_json_names_file_and_line_and_writes_nothing(tmp_path):
    export = tmp_path / "hc.json"
    export.write_text('{"articles": [\n{"id": 1, "title": "A",\n "body": }\n]}', encoding="utf-8")
    ws = workspace(tmp_path / "ws")
    with pytest.raises(StoretuneError) as e:
        ingest_workspace(ws, knowledge=export, fmt="zendesk_hc", progress=False)
    assert str(e.value).splitlines()[0].startswith(f"{export} line 3: not valid JSON")
    assert not ws.db_path.exists()


def test_shopify_pages_and_blog(tmp_path):
    pages = write_json(
        tmp_path / "pages.json",
        {
            "pages": [
                {
                    "id": 1,
                    "title": "Shipping FAQ",
                    "handle": "shipping-faq",
                    "body_html": "<h2>Canada</h2><p>Canada orders arrive in 7-12 days.</p>",
                    "updated_at": "2025-01-02T00:00:00-05:00",
                    "published_at": "2024-01-01T00:00:00-05:00",
                },
                {"id": 2, "title": "Hidden", "handle": "h", "body_html": "<p>x</p>",
                 "published_at": None},
            ]
        },
    )  # fmt: skip
    blog = write_json(
        tmp_path / "blog.json",
        {"articles": [{"id": 9, "blog_id": 4, "title": "Waxing boots", "handle": "wax",
                       "body_html": "<p>Wax leather boots twice a season.</p>",
                       "published_at": "2024-03-01T00:00:00Z"}]},
    )  # fmt: skip
    read = read_knowledge(pages, "shopify_pages", WEBSITE)
    (page,) = read.articles
    assert page.url == f"{WEBSITE}/pages/shipping-faq" and page.source == "shopify_page"
    assert [(c.heading, c.text) for c in page.chunks] == [
        ("Canada", "Canada orders arrive in 7-12 days.")
    ]
    assert read.dropped == {"unpublished": 1}
    (post,) = read_knowledge(blog, "shopify_blog").articles
    assert post.source == "shopify_article" and post.section == "4"


def test_markdown_folder_via_cli_path(tmp_path):
    folder = tmp_path / "help"
    (folder / "care").mkdir(parents=True)
    (folder / "returns.md").write_text(
        "---\ntitle: How returns work\nurl: https://help.example.com/returns\n---\n"
        "## Window\n\nReturn within 30 days.\n\n## Label\n\nThe label is free.\n",
        encoding="utf-8",
    )
    (folder / "care" / "down.html").write_text(
        "<html><head><title>Down care</title></head><body><nav>Home | Shop</nav><main>"
        "<h1>Down care</h1><p>Tumble dry low.</p></main><footer>(c) 2025</footer></body></html>",
        encoding="utf-8",
    )
    (folder / "draft.md").write_text("---\ndraft: true\n---\nNot yet.\n", encoding="utf-8")
    (folder / "broken.md").write_bytes(b"# Bad\n\ncaf\xe9\n")
    (folder / "notes.txt").write_text("ignored", encoding="utf-8")
    ws = workspace(tmp_path / "ws", products="missing.csv")
    from storetune.cli import app

    result = CliRunner().invoke(app, ["-w", str(ws.root), "ingest", str(folder)])
    assert result.exit_code == 0, result.output
    kb = stored(ws)
    assert kb == {
        "How returns work": [("Window", "Return within 30 days."), ("Label", "The label is free.")],
        "Down care": [("", "Tumble dry low.")],
    }
    saved = json.loads((ws.reports_dir / "ingest.json").read_text(encoding="utf-8"))
    (src,) = saved["sources"]  # store.yaml's products source was not read
    assert src["format"] == "knowledge_files" and src["dropped"] == {"draft": 1}
    assert src["counts"]["article"] == {"read": 3, "accepted": 2, "quarantined": 1}
    assert src["rejects"] == [f"{folder / 'broken.md'} line 3: not UTF-8 text (byte 0xe9)"]
    assert [Path(f).name for f, _ in src["skipped"]] == ["notes.txt"]


def test_articles_restricted_to_a_user_segment_are_never_stored(tmp_path):
    """An agents-only (or signed-in-only) article must not be quoted to customers: it is
    skipped and counted, and one stored before it was restricted is removed."""
    export = tmp_path / "ws" / "hc"
    public = hc_article(1, "Sizing guide", SIZING)
    internal = hc_article(2, "Warranty", WARRANTY)
    write_json(export / "articles.json", hc_export(public, internal))
    ws = workspace(tmp_path / "ws", knowledge="hc")
    assert (
        ingest_workspace(ws, progress=False).source("knowledge").dropped.get("restricted", 0) == 0
    )
    assert set(stored(ws)) == {"Sizing guide", "Warranty"}

    internal = hc_article(2, "Warranty", WARRANTY, user_segment_id=360001234)
    write_json(export / "articles.json", hc_export(public, internal))
    src = ingest_workspace(ws, progress=False).source("knowledge")
    assert src.dropped["restricted"] == 1 and src.reconciles
    assert src.upserts["removed"] == 1
    assert set(stored(ws)) == {"Sizing guide"}
