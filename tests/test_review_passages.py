"""The review page shows a help-center passage source as a passage (heading, article
link), not as a product out of stock; a non-web URL from an export is never a link."""

from __future__ import annotations

from test_review import login, new_ticket, site  # noqa: F401  (fixture)


def test_passage_sources_on_the_review_page(site):  # noqa: F811
    client, queue, _ = site
    passage = {
        "type": "passage",
        "title": "Warranty",
        "heading": "How to make a claim",
        "url": "https://support.example.com/hc/en-us/articles/1-warranty",
        "key": "zendesk_hc:1:en-us#1",
    }
    evil = {**passage, "heading": "Evil", "url": "javascript:alert(1)"}
    queue.add(new_ticket("Warranty?", sources=[passage, evil]))
    assert login(client).status_code == 303
    html = client.get("/review").text
    row = html.split("How to make a claim", 1)[1].split("</tr>", 1)[0]
    assert 'href="https://support.example.com/hc/en-us/articles/1-warranty"' in row
    assert "out of stock" not in row
    evil_row = html.split("Evil", 1)[1].split("</tr>", 1)[0]
    assert "href" not in evil_row and "javascript:" not in html
