"""The sample store's help center: a Zendesk Help Center articles export.

Every figure agrees with the store's policies (storetune.demo.store_gen._policies);
the articles add what a policy line does not hold (the glove and pack size tables, how
to start a warranty claim, care steps per fabric), so a knowledge question has an
answer only a passage gives. One article is a draft, which ingest skips.
The export is fixed text: the same bytes for every seed.
"""

from __future__ import annotations

import json
import re

HC_URL = "https://support.cedarsummit.example.com/hc/en-us/articles"
RETURNS_PORTAL = "https://www.cedarsummit.example.com/returns"
WARRANTY_FORM = "https://www.cedarsummit.example.com/warranty"
SECTION_SIZING, SECTION_CARE, SECTION_POLICIES = 360001, 360002, 360003

# (id, section, title, body HTML, draft)
ARTICLES: list[tuple[int, int, str, str, bool]] = [
    (
        4410001,
        SECTION_SIZING,
        "Sizing guide",
        "<p>Not sure which size to pick? Here is how our gear fits.</p>"
        "<h2>Apparel</h2><p>Follow the fit note on the product page. If you are between "
        "sizes, size up.</p>"
        "<h2>Footwear</h2><p>Our boots and shoes come in whole US sizes 7-13. If you are a "
        "half size, go up to the next whole size.</p>"
        "<h2>Packs</h2><p>Packs fit by torso length, not by height. Measure from the bony "
        "bump at the base of your neck to the top of your hip bones.</p><ul><li>S: 15-17 in "
        "torso</li><li>M: 17-19 in torso</li><li>L: 19-21 in torso</li></ul>"
        "<h2>Gloves</h2><p>Measure around your palm just below the knuckles, without the "
        "thumb.</p><ul><li>S: 7-8 in</li><li>M: 8-9 in</li><li>L: 9-10 in</li></ul>",
        False,
    ),
    (
        4410002,
        SECTION_CARE,
        "Care instructions",
        "<p>Good care keeps technical gear working for years. Always follow the care line on "
        "the product page first.</p>"
        "<h2>Rain shells</h2><p>Wash with a technical cleaner on a gentle cycle, then tumble "
        "dry low for 20 minutes to revive the water repellent finish. Re-apply a spray-on "
        "repellent every 10-15 washes.</p>"
        "<h2>Down jackets and sleeping bags</h2><p>Wash with a down cleaner and tumble dry "
        "low with two clean tennis balls until no clumps remain. Store sleeping bags loose in "
        "their large storage sack, never compressed. Never dry-clean technical gear.</p>"
        "<h2>Leather boots</h2><p>Brush off dirt after each trip and wax the leather twice a "
        "season. Let wet boots dry at room temperature, away from heaters and fires.</p>",
        False,
    ),
    (
        4410003,
        SECTION_POLICIES,
        "Warranty",
        "<p>Every Cedar &amp; Summit item carries a 2-year warranty against defects in "
        "materials and workmanship, counted from the day it was delivered. It does not cover "
        "normal wear and tear, accidents or misuse.</p>"
        "<h2>How to make a claim</h2><p>Fill in the warranty form at "
        f"<a href='{WARRANTY_FORM}'>our warranty page</a> with your order number and a photo "
        "of the defect. We repair, replace or refund the item; repairs take 10-15 business "
        "days.</p>"
        "<h2>Damage on arrival</h2><p>Items damaged in transit are not a warranty claim: "
        "report them within 7 days of delivery with a photo for a free replacement or a full "
        "refund.</p>",
        False,
    ),
    (
        4410004,
        SECTION_POLICIES,
        "How returns work",
        "<p>You can return unused and unwashed items with the original tags attached within "
        "30 days of delivery.</p>"
        "<h2>Starting a return</h2><p>Open "
        f"<a href='{RETURNS_PORTAL}'>the returns portal</a>, enter your order number and "
        "checkout email, and print the free prepaid return label. Drop the parcel at any USPS "
        "location.</p>"
        "<h2>Refunds</h2><p>Refunds go to the original payment method within 5 business days "
        "of the return reaching our warehouse. Sale items are final sale and cannot be "
        "returned or exchanged.</p>"
        "<h2>Exchanges</h2><p>Size or colour exchanges on full-price items are free within 30 "
        "days. If the new size is out of stock, return the item for a refund instead.</p>",
        False,
    ),
    (
        4410005,
        SECTION_POLICIES,
        "Trail Points rewards",
        "<p>Trail Points is our free loyalty programme: join by creating a store account.</p>"
        "<h2>Earning points</h2><p>You earn 1 point for every $1 spent, sale items "
        "included.</p>"
        "<h2>Using points</h2><p>Every 200 points is worth $10 off at checkout. Points can't "
        "be applied to past orders and expire after 12 months without a purchase.</p>",
        False,
    ),
    (
        4410006,
        SECTION_POLICIES,
        "Holiday shipping cut-off dates",
        "<p>Our holiday cut-off dates will be announced in November.</p>",
        True,
    ),
]


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def _article(ident: int, section: int, title: str, body: str, draft: bool) -> dict:
    """One article as the Help Center Articles API lists it."""
    return {
        "id": ident,
        "url": f"https://support.cedarsummit.example.com/api/v2/help_center/en-us/articles/{ident}.json",
        "html_url": f"{HC_URL}/{ident}-{_slug(title)}",
        "author_id": 1,
        "comments_disabled": True,
        "draft": draft,
        "promoted": False,
        "position": 0,
        "vote_sum": 0,
        "vote_count": 0,
        "section_id": section,
        "created_at": "2025-01-15T09:00:00Z",
        "updated_at": "2025-06-02T09:00:00Z",
        "title": title,
        "source_locale": "en-us",
        "locale": "en-us",
        "outdated": False,
        "label_names": [],
        "body": body,
    }


def help_center_export() -> bytes:
    """The export page: {"articles": [...], "next_page": null, ...}."""
    page = {
        "articles": [_article(*a) for a in ARTICLES],
        "page": 1,
        "per_page": 100,
        "page_count": 1,
        "count": len(ARTICLES),
        "next_page": None,
        "previous_page": None,
    }
    return (json.dumps(page, indent=1, ensure_ascii=False) + "\n").encode("utf-8")
