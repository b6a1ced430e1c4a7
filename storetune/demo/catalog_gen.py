"""Fictional outdoor-gear catalog for the demo store, written as a Shopify 2023 product CSV.

The catalog is built once in memory (``build_catalog``) so the ticket generator can quote
the same prices, stock and specs that the CSV holds; ``write_products_csv`` then renders
it in Shopify's 2023 export dialect (product fields on the first row of each handle,
variants and extra images on the following rows).
"""

from __future__ import annotations

import csv
import random
import re
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from storetune.store.records import Variant

# Column list of Shopify's 2023 product import/export template, in order.
SHOPIFY_2023_HEADER: tuple[str, ...] = (
    "Handle", "Title", "Body (HTML)", "Vendor", "Product Category", "Type", "Tags",
    "Published", "Option1 Name", "Option1 Value", "Option2 Name", "Option2 Value",
    "Option3 Name", "Option3 Value", "Variant SKU", "Variant Grams",
    "Variant Inventory Tracker", "Variant Inventory Qty", "Variant Inventory Policy",
    "Variant Fulfillment Service", "Variant Price", "Variant Compare At Price",
    "Variant Requires Shipping", "Variant Taxable", "Variant Barcode", "Image Src",
    "Image Position", "Image Alt Text", "Gift Card", "SEO Title", "SEO Description",
    "Google Shopping / Google Product Category", "Google Shopping / Gender",
    "Google Shopping / Age Group", "Google Shopping / MPN", "Google Shopping / Condition",
    "Google Shopping / Custom Product", "Variant Image", "Variant Weight Unit",
    "Variant Tax Code", "Cost per item", "Included / United States",
    "Price / United States", "Compare At Price / United States", "Included / International",
    "Price / International", "Compare At Price / International", "Status",
)  # fmt: skip

BRAND = "Cedar & Summit Outfitters"
IMAGE_BASE = "https://cdn.example.com/cedar-summit/products"

PREFIXES = (
    "Ridgeline", "Alpine", "Cascade", "Timberline", "Granite", "Switchback", "Basin",
    "Talus", "Cirque", "Larch", "Juniper", "Sawtooth", "Meadow", "Boulder", "Headwall",
    "Cornice", "Tamarack", "Aspen", "Pika", "Kestrel", "Cairn", "Ember", "Driftwood",
    "Bristlecone", "Foxtail", "Highline", "Lakeshore", "Tundra", "Glacier", "Scree",
    "Moraine", "Trailhead", "Ironwood", "Willow", "Saddleback", "Fireweed", "Ptarmigan",
    "Wildcat", "Stillwater", "Coldwater",
)  # fmt: skip

APPAREL_COLORS = (
    "Moss", "Black", "Slate", "Rust", "Glacier Blue", "Sage", "Navy", "Sand",
    "Ember Red", "Heather Grey", "Plum", "Ochre",
)  # fmt: skip
GEAR_COLORS = ("Forest", "Sand", "Orange", "Charcoal", "Lake Blue")
APPAREL_SIZES = ("XS", "S", "M", "L", "XL", "XXL")
SIZE_GRAMS = {"XS": 0.86, "S": 0.93, "M": 1.0, "L": 1.07, "XL": 1.15, "XXL": 1.24}

APPAREL_FITS = (
    "Regular fit; true to size",
    "Regular fit; runs small, size up",
    "Athletic fit; runs small, size up if you like to layer",
    "Relaxed fit with room to layer underneath",
    "Trim fit; true to size",
)
FOOTWEAR_FITS = (
    "True to size, medium width",
    "Runs half a size small; size up",
    "Roomy toe box; true to size",
    "Narrow fit; size up if you have wide feet",
)
WARRANTIES = (
    "Lifetime warranty against manufacturing defects",
    "2-year limited warranty",
    "1-year limited warranty",
)


@dataclass(frozen=True)
class Kind:
    """One product category: naming vocabulary, options and the facts its pages state."""

    key: str
    code: str  # SKU segment
    type: str
    path: str  # Shopify product taxonomy path
    noun: str  # what a customer calls it ("jacket")
    forms: tuple[str, ...]
    mods: tuple[str, ...]
    options: str  # option scheme, see _option_grid
    price: tuple[int, int]
    grams: tuple[int, int]
    materials: tuple[str, ...]
    cares: tuple[str, ...]
    activities: tuple[str, ...]
    weight: int  # relative share of the catalog
    fits: tuple[str, ...] = ()
    caps: tuple[int, ...] = ()  # capacity/temperature/lumens slot for titles
    specs: tuple[tuple[str, tuple[str, ...]], ...] = ()
    gendered: bool = False
    tags: tuple[str, ...] = ()


_CLOTHING = "Apparel & Accessories > Clothing"
_CAMP = "Sporting Goods > Outdoor Recreation > Camping & Hiking"
_MACHINE_WASH = "Machine wash cold on gentle, tumble dry low"

KINDS: tuple[Kind, ...] = (
    Kind(
        "insulated_jacket", "JKT", "Jackets", f"{_CLOTHING} > Outerwear > Coats & Jackets",
        "insulated jacket", ("{prefix} {mod} Jacket", "{prefix} {mod} Hoody", "{prefix} {mod} Parka"),
        ("Down", "Insulated", "Synthetic Puffy", "Thermal", "800-Fill"), "apparel", (149, 379),
        (320, 880),
        ("100% recycled nylon shell, 800-fill responsibly sourced down",
         "20D ripstop nylon shell, 650-fill RDS-certified down",
         "Recycled polyester shell with 100 g synthetic insulation that stays warm when wet"),
        ("Machine wash cold with a down-specific detergent, tumble dry low with dryer balls",
         "Machine wash cold on gentle, tumble dry low; do not dry-clean"),
        ("hiking", "camping", "winter", "travel"), 10, fits=APPAREL_FITS,
        specs=(("Water resistance", ("DWR finish: water-resistant, not waterproof",)),
               ("Packability", ("Packs into its own chest pocket",
                                "Stuffs into an included stuff sack"))),
        gendered=True, tags=("insulated", "outerwear"),
    ),
    Kind(
        "rain_jacket", "RJK", "Jackets", f"{_CLOTHING} > Outerwear > Coats & Jackets",
        "rain jacket", ("{prefix} {mod} Rain Jacket", "{prefix} {mod} Shell"),
        ("Storm", "3L", "2.5L", "Waterproof", "Stretch"), "apparel", (119, 329), (240, 520),
        ("3-layer recycled nylon with a waterproof-breathable membrane",
         "2.5-layer 40D nylon with a PFC-free DWR finish",
         "Stretch-woven polyester with a waterproof-breathable laminate"),
        ("Machine wash warm with a technical cleaner, tumble dry low to reactivate the DWR",),
        ("hiking", "backpacking", "travel", "trail running"), 8, fits=APPAREL_FITS,
        specs=(("Waterproof rating", ("10,000 mm", "20,000 mm", "28,000 mm")),
               ("Seams", ("Fully taped seams",))),
        gendered=True, tags=("waterproof", "outerwear", "rain"),
    ),
    Kind(
        "fleece", "FLC", "Fleece", f"{_CLOTHING} > Outerwear > Coats & Jackets", "fleece",
        ("{prefix} {mod} Fleece Jacket", "{prefix} {mod} Fleece Pullover",
         "{prefix} {mod} Quarter-Zip"),
        ("Grid", "High-Pile", "Polar", "Micro", "Sherpa"), "apparel", (59, 149), (240, 620),
        ("100% recycled polyester grid fleece", "200-weight recycled polyester fleece",
         "High-pile recycled polyester fleece with nylon overlays"),
        (_MACHINE_WASH, "Machine wash cold, hang dry; no fabric softener"),
        ("hiking", "camping", "everyday"), 8, fits=APPAREL_FITS, gendered=True,
        tags=("fleece", "midlayer"),
    ),
    Kind(
        "base_layer", "BSL", "Base Layers", f"{_CLOTHING} > Underwear & Socks > Long Johns",
        "base layer",
        ("{prefix} {mod} Base Layer Crew", "{prefix} {mod} Base Layer Bottoms",
         "{prefix} {mod} Zip-Neck Top"),
        ("Merino 150", "Merino 250", "Midweight", "Lightweight", "Thermal"), "apparel",
        (49, 119), (140, 320),
        ("100% merino wool, 18.5 micron", "Merino/nylon core-spun blend (87/13)",
         "Recycled polyester with odor control"),
        ("Machine wash cold on wool cycle, lay flat to dry", _MACHINE_WASH),
        ("hiking", "winter", "skiing", "backpacking"), 8, fits=APPAREL_FITS, gendered=True,
        tags=("base-layer", "merino"),
    ),
    Kind(
        "pants", "PNT", "Pants", f"{_CLOTHING} > Pants", "hiking pants",
        ("{prefix} {mod} Hiking Pants", "{prefix} {mod} Convertible Pants",
         "{prefix} {mod} Trail Shorts"),
        ("Stretch", "Ripstop", "Softshell", "Lightweight"), "apparel", (59, 129), (220, 480),
        ("Nylon/elastane stretch woven with a DWR finish", "Recycled nylon ripstop with UPF 50+"),
        (_MACHINE_WASH,), ("hiking", "backpacking", "travel"), 7, fits=APPAREL_FITS,
        specs=(("Sun protection", ("UPF 50+",)),), gendered=True, tags=("pants",),
    ),
    Kind(
        "hiking_boots", "BOT", "Boots", "Apparel & Accessories > Shoes > Boots", "hiking boots",
        ("{prefix} {mod} Hiking Boot", "{prefix} Mid {mod} Boot"),
        ("Waterproof", "Leather", "Trekking", "Lightweight"), "boots", (139, 259), (900, 1500),
        ("Full-grain leather upper, waterproof membrane, rubber outsole with 5 mm lugs",
         "Recycled mesh and suede upper, waterproof membrane, grippy rubber outsole"),
        ("Brush off dirt, rinse with cool water and air dry away from heat; condition leather",),
        ("hiking", "backpacking"), 8, fits=FOOTWEAR_FITS,
        specs=(("Waterproofing", ("Waterproof membrane with a gusseted tongue",)),),
        gendered=True, tags=("footwear", "waterproof"),
    ),
    Kind(
        "trail_runners", "TRN", "Shoes",
        "Apparel & Accessories > Shoes > Athletic Shoes > Running Shoes", "trail runners",
        ("{prefix} {mod} Trail Runner", "{prefix} {mod} Trail Shoe"),
        ("Speed", "Ultra", "Grip", "Light"), "boots", (109, 179), (520, 700),
        ("Engineered mesh upper, EVA midsole, sticky rubber outsole with 4 mm lugs",),
        ("Hand wash with mild soap, remove insoles and air dry",),
        ("trail running", "hiking"), 6, fits=FOOTWEAR_FITS,
        specs=(("Drop", ("6 mm heel-to-toe drop", "8 mm heel-to-toe drop")),),
        gendered=True, tags=("footwear", "running"),
    ),
    Kind(
        "socks", "SCK", "Socks", f"{_CLOTHING} > Underwear & Socks > Socks", "socks",
        ("{prefix} {mod} Hiking Socks", "{prefix} {mod} Crew Socks", "{prefix} {mod} Quarter Socks"),
        ("Merino", "Cushioned", "Lightweight", "Midweight"), "socks", (16, 32), (60, 110),
        ("64% merino wool, 33% nylon, 3% elastane", "Recycled nylon and merino blend"),
        ("Machine wash warm inside out, tumble dry low",), ("hiking", "trail running", "winter"),
        7, specs=(("Cushioning", ("Light cushioning", "Full cushioning underfoot")),),
        tags=("socks", "merino"),
    ),
    Kind(
        "backpack", "PCK", "Backpacks", "Luggage & Bags > Backpacks", "backpack",
        ("{prefix} {mod} {cap}L Pack",), ("Trail", "Trek", "Summit", "Day"), "pack",
        (69, 299), (520, 2200),
        ("210D recycled nylon ripstop with a PU coating", "Recycled 420D nylon with a PFC-free DWR"),
        ("Spot clean with mild soap and water; hang to dry",), ("hiking", "backpacking", "travel"),
        9, caps=(18, 22, 28, 35, 45, 55, 65),
        fits=("Adjustable torso; S fits 15–17 in, M 17–19 in, L 19–21 in torso length",),
        specs=(("Capacity", ("{cap} liters",)),), tags=("packs",),
    ),
    Kind(
        "tent", "TNT", "Tents", f"{_CAMP} > Tents", "tent", ("{prefix} {cap}P {mod} Tent",),
        ("Backpacking", "Ultralight", "Dome", "Basecamp"), "color", (179, 599), (1100, 4200),
        ("20D silicone-coated ripstop nylon fly, 30D nylon floor, aluminum poles",
         "68D polyester fly and floor, aluminum poles"),
        ("Set up to dry completely before storing; never machine wash",),
        ("camping", "backpacking"), 6, caps=(1, 2, 3, 4),
        specs=(("Capacity", ("Sleeps {cap}",)),
               ("Waterproof rating", ("1,500 mm fly / 3,000 mm floor", "3,000 mm fly and floor"))),
        tags=("shelter",),
    ),
    Kind(
        "sleeping_bag", "BAG", "Sleeping Bags", f"{_CAMP} > Sleeping Bags", "sleeping bag",
        ("{prefix} {cap}°F {mod} Sleeping Bag",), ("Down", "Synthetic", "Mummy"), "length",
        (149, 429), (700, 1600),
        ("20D nylon shell with 650-fill RDS-certified down", "Recycled polyester synthetic fill"),
        ("Front-load machine wash on gentle with down wash, tumble dry low with dryer balls",),
        ("camping", "backpacking", "winter"), 5, caps=(0, 15, 20, 30, 40),
        specs=(("Temperature rating", ("Comfort {cap10}°F / limit {cap}°F",)),),
        tags=("sleep",),
    ),
    Kind(
        "sleeping_pad", "PAD", "Sleeping Pads", f"{_CAMP} > Sleeping Pads", "sleeping pad",
        ("{prefix} {mod} Sleeping Pad",), ("Insulated Air", "Foam", "Self-Inflating", "Ultralight Air"),
        "pad", (49, 199), (350, 900),
        ("30D ripstop nylon with reflective insulation", "Closed-cell foam"),
        ("Wipe clean with mild soap; store unrolled with the valve open",),
        ("camping", "backpacking"), 4,
        specs=(("R-value", ("2.0", "3.2", "4.2", "5.4")),), tags=("sleep",),
    ),
    Kind(
        "stove", "STV", "Stoves", f"{_CAMP} > Portable Cooking Stoves", "stove",
        ("{prefix} {mod} Stove",), ("Canister", "Micro", "Jet", "Two-Burner"), "single",
        (39, 149), (80, 3800),
        ("Stainless steel and aluminum burner with a piezo igniter",),
        ("Let cool fully before packing; use outdoors only, never inside a tent",),
        ("camping", "backpacking"), 4,
        specs=(("Boil time", ("1 L in about 3.5 minutes", "1 L in about 4 minutes")),
               ("Fuel", ("Isobutane-propane canisters (sold separately)",))),
        tags=("cooking",),
    ),
    Kind(
        "cookware", "COK", "Cookware", f"{_CAMP} > Camp Cookware & Dinnerware", "cook set",
        ("{prefix} {mod} Cook Set", "{prefix} {mod} Pot"), ("Titanium", "Hard-Anodized", "Nesting"),
        "single", (29, 119), (120, 900),
        ("Grade 1 titanium", "Hard-anodized aluminum with a nonstick-free finish"),
        ("Hand wash; dishwasher safe lids",), ("camping", "backpacking"), 3, tags=("cooking",),
    ),
    Kind(
        "headlamp", "LMP", "Headlamps", "Hardware > Tools > Flashlights & Headlamps > Headlamps",
        "headlamp", ("{prefix} {cap} Headlamp",), ("",), "color", (24, 79), (70, 120),
        ("Polycarbonate housing with a rechargeable 1,500 mAh battery",),
        ("Wipe clean; charge at least every 3 months in storage",),
        ("camping", "trail running", "backpacking"), 4, caps=(200, 350, 400, 600),
        specs=(("Brightness", ("{cap} lumens; run time up to 40 h on low",)),
               ("Water resistance", ("IPX4 splash resistant", "IPX7 waterproof"))),
        tags=("lighting",),
    ),
    Kind(
        "water_bottle", "BTL", "Water Bottles",
        "Home & Garden > Kitchen & Dining > Food & Beverage Carriers > Water Bottles",
        "water bottle", ("{prefix} {mod} Bottle",), ("Insulated", "Wide-Mouth", "Trail"),
        "bottle", (19, 44), (280, 520),
        ("18/8 stainless steel with double-wall vacuum insulation and a BPA-free lid",),
        ("Hand wash; the lid is top-rack dishwasher safe",), ("hiking", "camping", "everyday"),
        4, specs=(("Insulation", ("Keeps drinks cold 24 h or hot 12 h",)),), tags=("hydration",),
    ),
    Kind(
        "trekking_poles", "POL", "Trekking Poles", f"{_CAMP} > Hiking Poles", "trekking poles",
        ("{prefix} {mod} Trekking Poles",), ("Carbon", "Aluminum", "Folding", "Cork Grip"),
        "single", (59, 169), (380, 560),
        ("Carbon fiber shafts with cork grips", "7075 aluminum shafts with foam grips"),
        ("Dry after use and store extended; wipe the locks clean",),
        ("hiking", "backpacking"), 3,
        specs=(("Length", ("Adjustable 100–135 cm",)),), tags=("poles",),
    ),
    Kind(
        "hat", "HAT", "Hats", "Apparel & Accessories > Clothing Accessories > Hats", "hat",
        ("{prefix} {mod} Beanie", "{prefix} {mod} Sun Hat", "{prefix} {mod} Trucker Hat"),
        ("Merino", "Wool", "Wide-Brim", "Logo"), "color", (24, 44), (60, 140),
        ("Merino wool rib knit", "Recycled nylon with UPF 50+"), ("Hand wash cold, lay flat to dry",),
        ("hiking", "winter", "everyday"), 5, tags=("accessories",),
    ),
    Kind(
        "gloves", "GLV", "Gloves", "Apparel & Accessories > Clothing Accessories > Gloves & Mittens",
        "gloves", ("{prefix} {mod} Gloves", "{prefix} {mod} Mittens"),
        ("Fleece", "Insulated", "Liner", "Softshell"), "socks", (29, 79), (60, 180),
        ("Recycled polyester fleece with touchscreen fingertips",
         "Nylon shell with synthetic insulation and a waterproof insert"),
        ("Hand wash cold, air dry",), ("winter", "hiking", "skiing"), 4,
        fits=("True to size; size up for a liner underneath",), tags=("accessories",),
    ),
)  # fmt: skip

KIND_BY_KEY = {k.key: k for k in KINDS}
SIZED_OPTIONS = {"apparel", "boots", "socks", "pack"}


@dataclass
class DemoProduct:
    """A catalog item plus the facts its page states (used for ticket answers)."""

    handle: str
    title: str
    kind: Kind
    vendor: str
    gender: str  # "Men's", "Women's" or ""
    tags: list[str]
    option_names: list[str]
    variants: list[Variant]
    material: str
    care: str
    warranty: str
    intro: str
    fit: str = ""
    specs: list[tuple[str, str]] = field(default_factory=list)
    status: str = "active"
    published: bool = True
    dirty: str = ""  # "", "placeholder", "boilerplate" or "broken_html"
    images: list[str] = field(default_factory=list)
    image_alts: list[str] = field(default_factory=list)
    variant_images: list[int] = field(default_factory=list)  # image index per variant

    @property
    def active(self) -> bool:
        return self.status == "active" and self.published

    @property
    def price(self) -> Decimal:
        return min(v.price for v in self.variants)

    @property
    def compare_at(self) -> Decimal | None:
        return self.variants[0].compare_at_price

    @property
    def on_sale(self) -> bool:
        return any(v.on_sale for v in self.variants)

    @property
    def in_stock(self) -> bool:
        return any(v.inventory_qty for v in self.variants)

    @property
    def sellable(self) -> bool:
        """Can be recommended: live on the store, in stock, and described for real."""
        return self.active and self.in_stock and self.dirty != "placeholder"

    @property
    def sized(self) -> bool:
        return self.kind.options in SIZED_OPTIONS

    def option_values(self, name: str) -> list[str]:
        seen: dict[str, None] = {}
        for v in self.variants:
            if name in v.options:
                seen[v.options[name]] = None
        return list(seen)

    def find_variant(self, **opts: str) -> Variant | None:
        for v in self.variants:
            if all(v.options.get(k) == val for k, val in opts.items()):
                return v
        return None

    @property
    def weight_text(self) -> str:
        v = self.find_variant(Size="M") or self.find_variant(Size="10") or self.variants[0]
        grams = v.grams or 0
        oz = Decimal(grams) / Decimal("28.3495")
        where = f", size {v.options['Size']}" if self.sized and "Size" in v.options else ""
        return f"{grams} g ({oz.quantize(Decimal('0.1'))} oz{where})"


def stock_phrase(v: Variant) -> str:
    """How agents describe a variant's availability."""
    if v.inventory_qty:
        return "in stock"
    return "on backorder" if v.inventory_policy == "continue" else "out of stock"


def money(x: Decimal | float | int) -> str:
    return f"${Decimal(str(x)):,.2f}"


def slugify(text: str) -> str:
    text = text.lower().replace("&", "and").replace("°f", "f").replace("'", "")
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


def _allocate(weights: list[int], total: int) -> list[int]:
    """Split total by weights (largest remainder), every share at least one when possible."""
    base = [1 if total >= len(weights) else 0 for _ in weights]
    rest = total - sum(base)
    wsum = sum(weights)
    exact = [rest * w / wsum for w in weights]
    counts = [b + int(e) for b, e in zip(base, exact, strict=True)]
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - int(exact[i])), i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _snap_price(rng: random.Random, lo: int, hi: int) -> Decimal:
    raw = rng.uniform(lo, hi)
    if raw < 40:
        return Decimal(f"{round(raw)}.{rng.choice(['00', '95'])}")
    return Decimal(f"{int(round(raw / 10.0) * 10) - 1}.00")


def _sale_price(list_price: Decimal, rng: random.Random) -> Decimal:
    cut = Decimal(str(rng.choice([0.7, 0.75, 0.8, 0.85])))
    price = (list_price * cut).quantize(Decimal("1"), rounding=ROUND_HALF_UP)
    return Decimal(f"{price - 1}.95") if price > 20 else Decimal(f"{price}.00")


def _option_grid(kind: Kind, rng: random.Random) -> tuple[list[str], list[dict[str, str]]]:
    """Option names and the value combinations (colour outer, size inner, like Shopify)."""
    scheme = kind.options
    if scheme == "single":
        return ["Title"], [{"Title": "Default Title"}]
    if scheme == "length":
        return ["Length"], [{"Length": "Regular"}, {"Length": "Long"}]
    if scheme == "pad":
        return ["Size"], [{"Size": s} for s in ("Regular", "Long", "Wide")]
    pool = GEAR_COLORS if scheme in {"color", "bottle"} else APPAREL_COLORS
    colors = rng.sample(pool, rng.randint(2, 4) if scheme == "color" else rng.randint(1, 3))
    if scheme == "color":
        return ["Color"], [{"Color": c} for c in colors]
    sizes = _sizes(scheme, rng)
    name = "Capacity" if scheme == "bottle" else "Size"
    return [name, "Color"], [{name: s, "Color": c} for c in colors for s in sizes]


def _sizes(scheme: str, rng: random.Random) -> list[str]:
    if scheme == "apparel":
        start = rng.choice([0, 1, 1])
        return list(APPAREL_SIZES[start : start + rng.choice([4, 5, 5, 6])])
    if scheme == "boots":
        return [str(n) for n in range(7, 14)]
    if scheme == "socks":
        return ["S", "M", "L", "XL"]
    if scheme == "pack":
        return ["S", "M", "L"]
    return ["20 oz", "32 oz", "40 oz"]  # bottle


_PRICE_STEP = {"Long": 20, "Wide": 30, "32 oz": 5, "40 oz": 8}


def _grams_factor(opts: dict[str, str]) -> float:
    size = opts.get("Size", "")
    if size in SIZE_GRAMS:
        return SIZE_GRAMS[size]
    if size.isdigit():
        return 0.85 + (int(size) - 7) * 0.05
    bump = {"Long": 1.1, "Wide": 1.18, "32 oz": 1.3, "40 oz": 1.55}
    return (
        bump.get(size)
        or bump.get(opts.get("Length", ""))
        or bump.get(opts.get("Capacity", ""), 1.0)
    )


def _sku_part(value: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", value.upper())[:4] or "X"


class _Catalog:
    """Builds products one by one, keeping titles, handles and barcodes unique."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.titles: set[str] = set()
        self.barcodes: set[str] = set()

    def title(self, kind: Kind) -> tuple[str, str, int | None]:
        rng = self.rng
        for attempt in range(200):
            gender = rng.choice(["Men's ", "Women's ", ""]) if kind.gendered else ""
            cap = rng.choice(kind.caps) if kind.caps else None
            form = rng.choice(kind.forms)
            core = form.format(prefix=rng.choice(PREFIXES), mod=rng.choice(kind.mods), cap=cap)
            title = re.sub(r"\s+", " ", f"{gender}{core}").strip()
            if attempt > 150:  # vocabulary exhausted for this kind: number the line
                title = f"{title} {attempt - 149}"
            if title not in self.titles:
                self.titles.add(title)
                return title, gender.strip(), cap
        raise RuntimeError("could not find a unique product title")  # unreachable in practice

    def barcode(self) -> str:
        while True:
            code = f"0{self.rng.randrange(10**10, 10**11)}"
            if code not in self.barcodes:
                self.barcodes.add(code)
                return code

    def product(self, kind: Kind, index: int) -> DemoProduct:
        rng = self.rng
        title, gender, cap = self.title(kind)
        handle = slugify(title)
        names, grid = _option_grid(kind, rng)
        if kind.key == "backpack" and cap is not None:
            base_price = _snap_price(rng, 59 + cap * 2, 79 + cap * 3)
        else:
            base_price = _snap_price(rng, *kind.price)
        grams = rng.randint(*kind.grams)
        if kind.key == "backpack" and cap is not None:  # bigger packs weigh more
            grams = 380 + cap * 28 + rng.randint(-60, 60)
        variants = []
        for opts in grid:
            step = next((s for v, s in _PRICE_STEP.items() if v in opts.values()), 0)
            sku_tail = "-".join(_sku_part(v) for v in opts.values() if v != "Default Title")
            sku = f"CS-{kind.code}-{index:03d}" + (f"-{sku_tail}" if sku_tail else "")
            variants.append(
                Variant(
                    sku=sku,
                    options=dict(opts),
                    price=base_price + step,
                    inventory_qty=rng.randint(1, 60),
                    grams=int(grams * _grams_factor(opts)),
                    barcode=self.barcode(),
                )
            )
        specs = [
            (label, rng.choice(values).format(cap=cap, cap10=(cap or 0) + 10))
            for label, values in kind.specs
        ]
        vendor = _vendor(kind, rng)
        colors = [opts["Color"] for opts in grid if "Color" in opts]
        image_keys = list(dict.fromkeys(colors)) or ["main"] * rng.randint(1, 2)
        images = [
            f"{IMAGE_BASE}/{handle}-{slugify(c)}-{i + 1}.jpg" for i, c in enumerate(image_keys)
        ]
        return DemoProduct(
            handle=handle,
            title=title,
            kind=kind,
            vendor=vendor,
            gender=gender,
            tags=_tags(kind, gender, rng),
            option_names=names,
            variants=variants,
            material=rng.choice(kind.materials),
            care=rng.choice(kind.cares),
            warranty=WARRANTIES[0] if vendor == "Cedar & Summit" else rng.choice(WARRANTIES),
            intro=_intro(kind, title, rng),
            fit=rng.choice(kind.fits) if kind.fits else "",
            specs=specs,
            images=images,
            image_alts=[
                f"{title} in {c}" if colors else f"{title}, view {i + 1}"
                for i, c in enumerate(image_keys)
            ],
            variant_images=[image_keys.index(o["Color"]) if "Color" in o else 0 for o in grid],
        )


def _vendor(kind: Kind, rng: random.Random) -> str:
    outside = {
        "headlamp": "Kestrel Lightworks",
        "hiking_boots": "Tamarack Footwear Co.",
        "trail_runners": "Tamarack Footwear Co.",
        "stove": "Northfold Gear Co.",
        "tent": "Northfold Gear Co.",
    }
    if kind.key in outside and rng.random() < 0.6:
        return outside[kind.key]
    return "Cedar & Summit" if rng.random() < 0.8 else "Larchwood Supply"


def _tags(kind: Kind, gender: str, rng: random.Random) -> list[str]:
    tags = set(kind.tags) | set(rng.sample(kind.activities, min(2, len(kind.activities))))
    if gender:
        tags.add(gender.lower().replace("'", ""))
    if rng.random() < 0.2:
        tags.add("new-arrival")
    if rng.random() < 0.3:
        tags.add("recycled")
    return sorted(tags)


_INTROS = (
    "Built for {act} and made to last, the {title} keeps things simple and tough.",
    "The {title} is our go-to {noun} for {act} when the forecast can't make up its mind.",
    "Meet the {title}: a dependable {noun} our crew tested on {act} all year.",
    "Light, practical and made to last, the {title} earns its place in your kit.",
)
_ACTIVITY_PHRASES = {
    "everyday": "everyday wear",
    "winter": "winter trips",
    "skiing": "ski days",
    "backpacking": "backpacking trips",
}


def _intro(kind: Kind, title: str, rng: random.Random) -> str:
    act = rng.choice(kind.activities)
    act = _ACTIVITY_PHRASES.get(act, act)
    return rng.choice(_INTROS).format(title=title, noun=kind.noun, act=act)


def _apply_status_and_stock(products: list[DemoProduct], rng: random.Random) -> None:
    """Sprinkle drafts, archived items, sales, stock-outs, backorders and dirty rows.

    Counts are fixed fractions (at least one each) rather than coin flips so that even a
    30-product store has every case the ingest and tests care about.
    """
    n = len(products)
    order = list(range(n))
    rng.shuffle(order)
    take = _Taker(order)
    for i in take(max(1, round(n * 0.06))):
        products[i].status, products[i].published = "draft", False
    for i in take(max(1, round(n * 0.05))):
        products[i].status, products[i].published = "archived", False
    for i in take(max(1, n // 80)):
        products[i].published = False  # active but hidden from the online store
    live = [i for i in order if products[i].status == "active"]
    rng.shuffle(live)
    live_take = _Taker(live)
    for i in live_take(max(1, round(n * 0.2))):
        for v in products[i].variants:
            v.compare_at_price, v.price = v.price, _sale_price(v.price, rng)
    backorder = live_take(max(1, round(n * 0.08)))
    for i in backorder:
        for v in products[i].variants:
            v.inventory_policy = "continue"
    _stock_outs(products, live, backorder, rng)
    kinds = ["placeholder", "boilerplate", "broken_html", "placeholder", "broken_html"]
    dirty = live_take(max(3, round(n * 0.03)))
    for j, i in enumerate(dirty):
        products[i].dirty = kinds[j % len(kinds)]


class _Taker:
    """Hands out disjoint slices of a shuffled index list."""

    def __init__(self, order: list[int]) -> None:
        self.order, self.pos = order, 0

    def __call__(self, k: int) -> list[int]:
        out = self.order[self.pos : self.pos + k]
        self.pos += len(out)
        return out


def _stock_outs(
    products: list[DemoProduct], live: list[int], backorder: list[int], rng: random.Random
) -> None:
    for p in products:
        for v in p.variants:
            if rng.random() < 0.12:
                v.inventory_qty = 0
    # Guarantee one out-of-stock 'deny' variant and one backordered 'continue' variant
    # on live products, so both stock phrases exist in every store.
    deny = next(i for i in live if i not in backorder)
    products[deny].variants[-1].inventory_qty = 0
    products[backorder[0]].variants[0].inventory_qty = 0
    for i in live:  # every live product keeps at least one sellable variant
        p = products[i]
        if not p.in_stock:
            p.variants[len(p.variants) // 2].inventory_qty = rng.randint(3, 25)


def build_catalog(rng: random.Random, n_products: int) -> list[DemoProduct]:
    counts = _allocate([k.weight for k in KINDS], n_products)
    plan = [kind for kind, c in zip(KINDS, counts, strict=True) for _ in range(c)]
    rng.shuffle(plan)
    maker = _Catalog(rng)
    products = [maker.product(kind, i + 1) for i, kind in enumerate(plan)]
    _apply_status_and_stock(products, rng)
    return products


# --- CSV rendering -------------------------------------------------------------------------


def body_html(p: DemoProduct) -> str:
    facts = [("Material", p.material)]
    if p.fit:
        facts.append(("Fit", p.fit))
    facts += [("Care", p.care), ("Weight", p.weight_text), *p.specs, ("Warranty", p.warranty)]
    items = "\n".join(f"<li><strong>{k}:</strong> {_esc(v)}</li>" for k, v in facts)
    clean = f"<p>{_esc(p.intro)}</p>\n<ul>\n{items}\n</ul>"
    if p.dirty == "placeholder":
        return {
            0: "<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit. Sed do eiusmod.</p>",
            1: "<p>Description coming soon</p>",
            2: "TBD",
        }[len(p.handle) % 3]
    if p.dirty == "boilerplate":
        return (
            f"{clean}\n<p><strong>Click here to buy now!</strong> BEST PRICE GUARANTEED!!! "
            '<a href="https://cdn.example.com/promo">Shop the sale</a> while supplies last!</p>'
        )
    if p.dirty == "broken_html":
        broken = items.replace("</li>", "", 2).replace("</strong>", "</b>", 1)
        return f"<p>{_esc(p.intro)}&nbsp;&nbsp;<br>\n<ul>\n{broken}\n<p>&nbsp;</p><div>"
    return clean


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _product_rows(p: DemoProduct) -> list[dict[str, str]]:
    rows = []
    for i, v in enumerate(p.variants):
        row = _variant_cells(p, v, i)
        if i == 0:
            row.update(_product_cells(p))
        rows.append(row)
    for pos in range(len(p.variants), len(p.images)):  # image-only rows
        rows.append(_image_cells(p, pos))
    return rows


def _product_cells(p: DemoProduct) -> dict[str, str]:
    cells = {
        "Title": p.title,
        "Body (HTML)": body_html(p),
        "Vendor": p.vendor,
        "Product Category": p.kind.path,
        "Type": p.kind.type,
        "Tags": ", ".join(p.tags),
        "Published": "TRUE" if p.published else "FALSE",
        "Gift Card": "FALSE",
        "SEO Title": f"{p.title} | {BRAND}",
        "SEO Description": p.intro,
        "Google Shopping / Gender": {"Men's": "male", "Women's": "female"}.get(p.gender, "unisex"),
        "Google Shopping / Age Group": "adult",
        "Google Shopping / MPN": p.variants[0].sku,
        "Google Shopping / Condition": "new",
        "Google Shopping / Custom Product": "FALSE",
        "Included / United States": "TRUE",
        "Included / International": "TRUE" if p.kind.key != "stove" else "",
        "Status": p.status,
    }
    for n, name in enumerate(p.option_names, start=1):
        cells[f"Option{n} Name"] = name
    return cells


def _variant_cells(p: DemoProduct, v: Variant, i: int) -> dict[str, str]:
    cells = {"Handle": p.handle}
    for n, name in enumerate(p.option_names, start=1):
        cells[f"Option{n} Value"] = v.options[name]
    unit = "lb" if (v.grams or 0) >= 1000 else "g"
    cost = (v.compare_at_price or v.price) * Decimal("0.45")
    cells.update(
        {
            "Variant SKU": v.sku,
            "Variant Grams": str(v.grams),
            "Variant Inventory Tracker": "shopify",
            "Variant Inventory Qty": str(v.inventory_qty),
            "Variant Inventory Policy": v.inventory_policy,
            "Variant Fulfillment Service": "manual",
            "Variant Price": f"{v.price:.2f}",
            "Variant Compare At Price": f"{v.compare_at_price:.2f}" if v.compare_at_price else "",
            "Variant Requires Shipping": "TRUE",
            "Variant Taxable": "TRUE",
            "Variant Barcode": v.barcode or "",
            "Variant Image": p.images[p.variant_images[i]],
            "Variant Weight Unit": unit,
            "Cost per item": f"{cost.quantize(Decimal('0.01'))}",
        }
    )
    if i < len(p.images):
        cells.update(_image_cells(p, i))
    return cells


def _image_cells(p: DemoProduct, pos: int) -> dict[str, str]:
    return {
        "Handle": p.handle,
        "Image Src": p.images[pos],
        "Image Position": str(pos + 1),
        "Image Alt Text": p.image_alts[pos],
    }


def write_products_csv(path: Path, products: list[DemoProduct]) -> int:
    """Write the catalog as a Shopify 2023 product CSV; returns the number of data rows."""
    n_rows = 0
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)  # RFC 4180: CRLF line ends, quotes doubled
        writer.writerow(SHOPIFY_2023_HEADER)
        for p in products:
            for row in _product_rows(p):
                writer.writerow([row.get(col, "") for col in SHOPIFY_2023_HEADER])
                n_rows += 1
    return n_rows
