"""Replace personal data in helpdesk text with typed placeholders.

One Scrubber per conversation: names it learns anywhere in the conversation (a
greeting, a sign-off, the helpdesk's user records) are replaced everywhere in it.
Placeholders are plain (<EMAIL>, <NAME>, …) so the model learns the shape of a
reply, never a customer's details. Catalog facts (product names, SKUs, prices,
sizes, dates, policy numbers) must survive: every pattern here is anchored on
something personal data has and catalog text does not (an @, a checksum, a
street suffix, a greeting), and single-word names that are also catalog words
("Olive", "Rose") are only replaced where the context says they are names.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from functools import lru_cache

from storetune.facts import (
    CARD,
    EMAIL,
    FEDEX_GROUND,
    IBAN,
    IBAN_WHOLE_GROUPS,
    IPV4,
    IPV6,
    LOCAL_PHONE,
    ORDER_HASH,
    ORDER_WORD,
    PHONES,
    POSTAL_S10,
    TRACKING_AFTER_CARRIER,
    TRACKING_AFTER_WORD,
    UPS,
    URL,
    USPS,
    card_ok,
    iban_ok,
    ipv6_ok,
    phone_ok,
    tracking_ok,
)

_DIGIT = re.compile(r"\d")

TYPES = ("EMAIL", "PHONE", "CARD", "IBAN", "ADDRESS", "NAME", "ORDER_ID", "TRACKING", "IP")


def placeholder(kind: str) -> str:
    return f"<{kind}>"


# --- patterns -----------------------------------------------------------------------


def _letters(test: Callable[[str], bool]) -> str:
    """Letters of the Latin, Greek and Cyrillic blocks (and Vietnamese) passing `test`."""
    spans = ((0x41, 0x250), (0x370, 0x530), (0x1E00, 0x1F00))
    return "".join(chr(c) for a, b in spans for c in range(a, b) if test(chr(c)))


_UP = _letters(str.isupper)
_LO = _letters(str.islower)


# Emails, URLs, phones, order and tracking numbers, cards, IBANs and IP addresses are
# defined once in storetune.facts (the guard and the eval use the same patterns).
_SUFFIX = (
    r"Street|St|Avenue|Ave|Road|Rd|Lane|Ln|Drive|Dr|Boulevard|Blvd|Court|Ct|Way|Place|Pl"
    r"|Terrace|Ter|Circle|Cir|Parkway|Pkwy|Highway|Hwy|Square|Sq|Trail|Trl|Close|Crescent"
    r"|Cres|Gardens|Grove|Mews|Row|Hill|Walk|Loop|Alley|Plaza"
)
_US_STATES = (
    r"AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE"
    r"|NV|NH|NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY"
)
_UK_POSTCODE = r"(?:[A-Z]{1,2}\d[A-Z\d]?[ \t]*\d[A-Z]{2})"
_CA_POSTAL = r"(?:(?:AB|BC|MB|NB|NL|NS|NT|NU|ON|PE|QC|SK|YT)[ \t]+[A-Z]\d[A-Z][ \t]?\d[A-Z]\d)"
_CAP = r"[A-Z][a-zA-Z'’-]*(?!\w)\.?"  # a capitalised word, never half of "SW1A"
# Irish Eircode: a routing key (letter, two digits; D6W) and a unique identifier of four
# from a reduced alphabet (no B G I J L M O Q S U Z): A65 F4E2, D02 X285.
_EIRCODE = r"(?:(?:[AC-FHKNPRTV-Y]\d{2}|D6W)[ \t]?[0-9AC-FHKNPRTV-Y]{4})"
_TOWN = rf"(?![A-Z]{{2}}\b){_CAP}"  # a town's word; "OR", "AB" are states and provinces
_CITY_TAIL = (
    rf"(?:,[ \t]*{_TOWN}(?:[ \t]+{_TOWN}){{0,3}}(?:[ \t]+\d{{1,2}}\b)?){{0,2}}"
    rf"(?:,?[ \t]*(?:(?:{_US_STATES})[ \t]+\d{{5}}(?:-\d{{4}})?|{_CA_POSTAL}|{_UK_POSTCODE}"
    rf"|{_EIRCODE}\b))?"
)
_UNIT_FIRST = r"(?:(?:Flat|Apartment|Apt|Unit|Suite)\.?[ \t]*[\w-]{1,5},?[ \t]+)?"
# A street word of a European address: Goethestraße, Karl-Marx-Allee, "ul.", "das".
_STREET_WORD = (
    rf"(?:[{_UP}][\w'’.-]*|(?:ul|al|pl|os)\.|de|del|la|las|los|das|dos|da|do|den|der|dem"
    r"|des|di|du|le|van|von|am|an|im|auf|zum|zur)"
)
_EU_POSTAL = r"(?:\d{5}|\d{4}-\d{3}|\d{2}-\d{3}|\d{4}[ \t]?[A-Z]{2}(?![\w]))"
_EU_CITY = (
    rf"[{_UP}][\w'’-]+(?:[ \t]+(?:am|an der|im|in der|ob der|bei|sur|en|upon|on)[ \t]+"
    rf"[{_UP}][\w'’-]+)?"
)
_JP_CHARS = "\u3040-\u30ff\u4e00-\u9fff\uff10-\uff19"
_ADDRESSES = [
    # Japan: 〒150-0002 東京都渋谷区渋谷2-21-1 / 東京都港区南青山1-2-3
    re.compile(rf"〒[ \t]?\d{{3}}[-−]\d{{4}}(?:[ \t]*[{_JP_CHARS}\d][{_JP_CHARS}\d\-−ー－]*)?"),
    re.compile(rf"[\u4e00-\u9fff]{{1,3}}[都道府県][{_JP_CHARS}]+[\d０-９][{_JP_CHARS}\d\-−ー－]*"),
    # 2-21-1 Shibuya, Shibuya-ku, Tokyo 150-0002 (a block number, a ward, a postcode)
    re.compile(
        r"\b\d{1,4}(?:-\d{1,4}){1,2}[ \t]+[A-Z][a-z]+(?:-[A-Za-z][a-z]+)*"
        r"(?:,[ \t]*[A-Z][a-z]+-(?:ku|shi|cho|machi|gun|mura))"
        r"(?:,[ \t]*[A-Z][a-z]+(?:[ \t]+[A-Z][a-z]+)?)?(?:,?[ \t]+\d{3}-\d{4})?"
    ),
    # Europe, street first: Goethestraße 27, 60313 Frankfurt am Main / Rua das Flores 123,
    # 4050-265 Porto / ul. Marszałkowska 84/92, 00-514 Warszawa / Unter den Linden 77, …
    re.compile(
        rf"(?<![\w-])(?:[{_UP}][\w'’.-]*|(?:ul|al|pl|os)\.)(?:[ \t]+{_STREET_WORD}){{0,4}}"
        rf"[ \t]+\d{{1,4}}[a-z]?(?:[/-]\d{{1,4}}[a-z]?)?,[ \t]*{_EU_POSTAL}[ \t]+{_EU_CITY}"
    ),
    # 42 Birch Lane, Apt 3, Portland, OR 97201 / 10 Downing Street, London SW1A 2AA
    re.compile(
        _UNIT_FIRST
        + rf"\b\d{{1,6}}[A-Za-z]?(?:[ \t]+(?:{_CAP}|\d{{1,3}}(?:st|nd|rd|th))){{1,4}}?[ \t]+(?:{_SUFFIX})\b\.?"
        rf"(?:,?[ \t]+(?:Apt|Apartment|Suite|Ste|Unit|Flat|\#)\.?[ \t]*[\w-]+)?" + _CITY_TAIL
    ),
    # Rose Cottage, Mill Lane, Little Snoring NR21 0HS: a street without a number, then a
    # postcode
    re.compile(
        rf"\b(?:{_CAP}(?:[ \t]+{_CAP}){{0,2}},[ \t]*)?(?:{_CAP}[ \t]+){{1,3}}(?:{_SUFFIX})\b"
        rf"(?:,[ \t]*{_CAP}(?:[ \t]+{_CAP}){{0,3}})?,?[ \t]*(?:{_UK_POSTCODE}|{_EIRCODE})\b"
    ),
    re.compile(r"\bP\.?[ \t]?O\.?[ \t]+Box[ \t]+\d+\b" + _CITY_TAIL, re.I),
    # Portland, OR 97201 / Calgary, AB T2P 1J9 on their own
    re.compile(
        rf"\b{_CAP}(?:[ \t]+{_CAP}){{0,2}},[ \t]*(?:(?:{_US_STATES})[ \t]+\d{{5}}(?:-\d{{4}})?"
        rf"|{_CA_POSTAL})\b"
    ),
    # German/Dutch: Hauptstraße 12, 10115 Berlin
    re.compile(
        r"\b[A-ZÄÖÜ][\wäöüß-]*(?:straße|strasse|str\.|weg|gasse|platz|allee|damm|laan|straat"
        r"|gracht|plein|kade)[ \t]+\d{1,4}[a-z]?(?:,[ \t]*\d{4,5}(?:[ \t]?[A-Z]{2})?[ \t]+[A-Z][\wäöüß-]+)?"
    ),
    # French/Spanish/Italian: 12 rue de la Paix, 75002 Paris / Calle Mayor 5, 28013 Madrid
    re.compile(
        r"\b\d{1,4}(?:[ \t]?(?:bis|ter))?,?[ \t]+(?:rue|avenue|boulevard|bd|place|chemin|allée"
        r"|impasse|quai)[ \t]+(?:[\wÀ-ÿ'’-]+[ \t]+){0,4}?[A-ZÀ-Ý][\wÀ-ÿ'’-]+(?:[ \t]+[A-ZÀ-Ý][\wÀ-ÿ'’-]+)*"
        r"(?:,[ \t]*\d{5}[ \t]+[A-ZÀ-Ý][\wÀ-ÿ-]+)?"
    ),
    re.compile(
        r"\b(?:Via|Viale|Calle|Avenida|Rua|Carrer|Corso)[ \t]+(?:[\wÀ-ÿ'’-]+[ \t]+){0,4}?\d{1,4}"
        r"(?:,[ \t]*\d{5}[ \t]+[A-ZÀ-Ý][\wÀ-ÿ-]+)?"
    ),
    # a postcode alone only after a comma, a "postcode" label or at a line start:
    # "M4 3XL" in running text is more likely a product code and a size
    re.compile(
        r"(?:(?<=,)|(?<=,[ \t])|^|(?<=[Cc]ode[ \t])|(?<=[Cc]ode:[ \t]))" + _UK_POSTCODE + r"\b",
        re.M,
    ),
    # after a label: "my postcode is EH3 9QP", "Eircode: A65 F4E2", "PLZ 10115"
    re.compile(
        r"(?i:\b(?:post[ \t]?code|postal[ \t]code|zip(?:[ \t]?code)?|eircode|plz))"
        r"(?:[ \t]+(?i:is|was))?[ \t]*[:#]?[ \t]*"
        rf"(?P<v>{_UK_POSTCODE}|[A-Z]\d[\dW][ \t]?[0-9A-Z]{{4}}|\d{{5}}(?:-\d{{4}})?"
        r"|\d{3}-\d{4}|\d{4}-\d{3}|\d{2}-\d{3}|\d{4}(?:[ \t]?[A-Z]{2})?)\b"
    ),
    # an Eircode alone: its identifier mixes letters and digits
    re.compile(
        rf"\b(?=[A-Z0-9]{{3}}[ \t]?[0-9]*[A-Z])(?=[A-Z0-9]{{3}}[ \t]?[A-Z]*[0-9]){_EIRCODE}\b"
    ),
]

# One capitalised name word: Maya, Zoë, McAllister, O'Brien, D’Angelo, Müller-Lüdenscheidt,
# Al-Farsi, Brzęczyszczykiewicz; never "SW1A" or "URGENT" (a name word has a lower-case
# letter after its capital).
_CAPWORD = rf"[{_UP}][{_LO}]+(?:[{_UP}][{_LO}]+)?"
# Numbers facts.py does not cover, personal data only:
# "00 44 20 7946 0958": the international prefix written 00 and a space (never a card).
_PHONE_00 = re.compile(
    r"(?<![\w+/#.-])00[ \t]?[1-9]\d{0,2}(?:[ .-]?(?:\(\d{1,4}\)|\d{1,5})){1,6}(?![\w/-]|\.\d)"
)
# Letter-prefixed order numbers after a word that says so: "order no. SO-2024-88123",
# "your reference is ORD-558812", "confirmation #US-48213".
_ORDER_REF = re.compile(
    r"(?i:\b(?:order|ref|reference|confirmation|invoice|booking))"
    r"(?:[ \t]+(?i:number|no\.?|num|id|ref|code|#))?[ \t]*(?:(?i:is|was)[ \t]*)?[:#]?[ \t]*"
    r"(?P<v>#?[A-Z]{1,5}-?\d{3,12}(?:-\d{1,8}){0,2})(?![\w-])"
)
# An IPv4 address written as IPv6 (::ffff:192.0.2.128): one address, one placeholder.
_IPV4_MAPPED = re.compile(
    r"(?<![\w:])(?i:(?:0{1,4}:){0,5}:?:ffff:)(?:\d{1,3}\.){3}\d{1,3}(?![\d.]\d)"
)


_NAME_WORD = rf"(?:[{_UP}]['’])?{_CAPWORD}(?:[-‐]{_CAPWORD})*(?![\w'’-])"
# Lower-case or one-letter pieces of a name between its words: María José Fernández
# de la Vega, Mariana dos Santos, Aoife Ó Súilleabháin, Nguyễn Thị Lan.
_PARTICLES = (
    "de|del|della|der|den|di|da|das|do|dos|du|la|le|van|von|y|e|bin|binti|ibn|al|el|ter"
    "|ten|Ó|Ní|Nic|Mac|Ua"
)
_PARTICLE_SET = {p.lower() for p in _PARTICLES.split("|")}
_NAME_NEXT = rf"(?:[ \t]+(?:(?:{_PARTICLES})[ \t]+){{0,2}}(?:{_NAME_WORD}|[A-Z]\.))"
_NAME2 = rf"{_NAME_WORD}{_NAME_NEXT}?"
_NAME_MULTI = rf"{_NAME_WORD}{_NAME_NEXT}{{0,4}}"
_TITLES = r"(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof)"
# Keywords match in any case; the name itself must be capitalised.
_GREETING = re.compile(
    rf"^[ \t]*(?i:hi|hello|hey|dear|hiya|greetings|good (?:morning|afternoon|evening))[ \t]+"
    rf"(?:{_TITLES}\.?[ \t]+)?(?P<v>{_NAME_MULTI})[ \t]*(?=[,!.:;—-]|$)",
    re.M,
)
_TITLED = re.compile(rf"\b{_TITLES}\.?[ \t]+(?P<v>{_NAME_MULTI})")
_INTRO = re.compile(
    rf"(?i:\bmy name is|\bmy name's|\bname:|\b(?:his|her|their) name (?:is|was))[ \t]+"
    rf"(?P<v>{_NAME_MULTI})"
)
# "this is Zoë Müller." / "this is Ngozi from …" / "this is Lan again"; not "this is
# Ridgeline's best tent" (a catalog word, and 's) or "This is the second one".
_THIS_IS = re.compile(
    rf"(?i:\bthis is)[ \t]+(?P<v>{_NAME_MULTI})"
    r"(?=[ \t]*(?:[,.!;:—–(]|-[ \t]|$|(?i:from|here|again|writing|calling|speaking|and|with"
    r"|at|of|about|I|I'm)\b))",
    re.M,
)
# "Thanks, Maya!" inline; "Best,\nJordan P." with the name alone on the next line.
_THANKS_NAME = re.compile(
    rf"(?i:\b(?:thanks|thank you|thx|cheers)(?:[ \t]+(?:so much|a lot|again))?)[ \t]*,?[ \t]*(?P<v>{_NAME2})[ \t]*(?=[!.,]|$)",
    re.M,
)
# "Thanks for your help, Priyanka!"
_THANKS_FOR_NAME = re.compile(
    rf"(?i:\b(?:thanks|thank you|thx)[ \t]+for)[^,.!?\n]{{1,40}},[ \t]*(?P<v>{_NAME2})[ \t]*(?=[!.]|$)",
    re.M,
)
# "Aoife Ó Súilleabháin will collect the parcel."
_NAME_WILL = re.compile(
    rf"(?<![\w'’-])(?P<v>{_NAME_MULTI})[ \t]+(?i:will|can|is going to|is)[ \t]+(?i:collect"
    r"|pick(?:ing)? (?:it |them )?up|sign for|be (?:home|there|in)|receive|accept|collecting)\b"
)
_SIGNOFFS = (
    r"thanks|thank you|thanks again|thank you again|many thanks|cheers|best|best regards"
    r"|best wishes|kind regards|regards|warm regards|warmest regards|with thanks|sincerely"
    r"|yours sincerely|yours truly|yours|respectfully|warmly|take care|all the best|love|ta"
    r"|thx|talk soon|un saludo|saludos|atentamente|viele grüße|liebe grüße|mit freundlichen"
    r" grüßen|beste grüße|grüße|gruß|lg|mfg|cordialement|bien à vous|merci|bisous|grazie"
    r"|cordiali saluti|distinti saluti|saluti|met vriendelijke groet|groetjes|groeten"
    r"|obrigado|obrigada|cumprimentos|abraços|pozdrawiam|hälsningar|mvh|hilsen"
)
_SIGNOFF_NAME = re.compile(
    rf"^[ \t]*(?i:{_SIGNOFFS})[ \t]*[,!.]?[ \t]*\n"
    rf"[ \t]*(?:{_TITLES}\.?[ \t]+)?(?P<v>{_NAME_MULTI})[ \t]*$",
    re.M,
)
# "Regards, Wojciech Brzęczyszczykiewicz" on one line, at the end of a text.
_SIGNOFF_INLINE = re.compile(
    rf"^[ \t]*(?i:{_SIGNOFFS})[ \t]*[,!.—–-][ \t]*(?:{_TITLES}\.?[ \t]+)?"
    rf"(?P<v>{_NAME_MULTI})[ \t]*[.!]?[ \t]*(?=\s*\Z)",
    re.M,
)
# A name alone on the last line after a blank line, "Sent from my iPhone" aside.
_LAST_LINE_NAME = re.compile(
    rf"\n[ \t]*\n[ \t]*(?P<v>{_NAME_MULTI})[ \t]*(?=(?:\n[ \t]*(?i:sent from)[^\n]*)?\s*\Z)"
)
_MENTION = re.compile(rf"(?<![\w.])@(?P<v>{_NAME_WORD})")  # "@Jordan can you check…"
# "— Maya" as the last line (en/em dash or tilde: a hyphen starts a list item).
_DASH_NAME = re.compile(rf"^[ \t]*[–—~][ \t]*(?P<v>{_NAME2})[ \t]*(?=\s*\Z)", re.M)
# Third parties: "my husband Hiroshi Yamamoto", "a man called Dmitri", "I spoke to
# Ngozi", "addressed to Chidinma Okonkwo-Eze", "c/o Dragana Petrović".
_RELATIONS = (
    r"husband|wife|partner|spouse|son|daughter|child|kid|mum|mom|mother|mam|father|dad"
    r"|brother|sister|sibling|neighbour|neighbor|colleague|co-?worker|coworker|friend"
    r"|boss|manager|assistant|flatmate|roommate|housemate|boyfriend|girlfriend|fiancée?"
    r"|aunt|auntie|uncle|cousin|niece|nephew|grandmother|grandma|granny|grandfather"
    r"|grandpa|grandson|granddaughter|in-law|mother-in-law|father-in-law|landlord"
    r"|landlady|tenant|nanny|carer|caretaker|concierge|receptionist|secretary|employee"
)
_RELATION_NAME = re.compile(
    rf"(?i:\b(?:my|our|his|her|their)(?:[ \t]+(?:eldest|youngest|little|older|younger|"
    rf"elder|best|good|dear|new|late))?[ \t]+(?:{_RELATIONS}))[ \t]*,?[ \t]+"
    rf"(?P<v>{_NAME_MULTI})"
)
_CALLED_NAME = re.compile(
    r"(?i:\b(?:man|woman|guy|lady|person|someone|somebody|girl|boy|gentleman|agent|driver"
    r"|courier|rep|representative|chap|bloke|customer|recipient)[ \t]+(?:called|named|"
    rf"by the name of))[ \t]+(?P<v>{_NAME_MULTI})"
)
_TO_NAME = re.compile(
    r"(?i:\b(?:spoke|spoken|talked|chatted|speaking|talking)[ \t]+(?:to|with)|\baddressed to"
    r"|\bmade out to|\bhanded (?:it )?to|\bgiven to|\bsigned (?:for )?by|\bcollected by"
    r"|\breceived by|\bpicked up by|\bc/o|\battn\.?:?|\battention:|\brecipient:|\bin the name"
    rf" of|\bordered by|\bplaced by|\bask for)[ \t]+(?P<v>{_NAME_MULTI})"
)
# (rule, strict, triggers): a strict rule's every word must be no catalog word and no
# common word; a rule runs only on texts whose lower case holds one of its triggers (a
# keyword test is ~50× cheaper than the regex, and most messages have none).
_RELATION_WORDS = (*(w for w in re.sub(r"[?()]|-\?", "", _RELATIONS).split("|") if w), "co-worker")
_CONTEXT_NAME_RULES: list[tuple[re.Pattern[str], bool, tuple[str, ...] | None]] = [
    (_GREETING, False, None),
    (_TITLED, False, ("mr", "ms", "miss", "mx", "dr", "prof")),
    (_INTRO, False, ("name",)),
    (_THIS_IS, True, ("this is",)),
    (_THANKS_NAME, False, ("thank", "thx", "cheers")),
    (_THANKS_FOR_NAME, True, ("thank", "thx")),
    (
        _NAME_WILL,
        True,
        ("collect", "pick", "sign for", "be home", "be there", "be in", "receive", "accept"),
    ),
    (_SIGNOFF_NAME, False, ("\n",)),
    (_SIGNOFF_INLINE, True, None),
    (_LAST_LINE_NAME, True, ("\n",)),
    (_DASH_NAME, False, ("–", "—", "~")),
    (_MENTION, False, ("@",)),
    (_RELATION_NAME, True, _RELATION_WORDS),
    (_CALLED_NAME, True, ("called", "named", "name of")),
    (
        _TO_NAME,
        True,
        (
            "spoke",
            "spoken",
            "talked",
            "chatted",
            "speaking",
            "talking",
            "addressed",
            "made out",
            "handed",
            "given",
            "signed",
            "collected",
            "received",
            "picked",
            "c/o",
            "attn",
            "attention",
            "recipient",
            "in the name",
            "ordered by",
            "placed by",
            "ask for",
        ),
    ),
]


def _name_rules(text: str) -> list[tuple[re.Pattern[str], bool]]:
    low = text.lower()
    return [
        (rule, strict)
        for rule, strict, triggers in _CONTEXT_NAME_RULES
        if triggers is None or any(t in low for t in triggers)
    ]


# Words that fill a name slot without being a name ("Hi there", "Thanks again").
_NOT_NAMES = set(
    "there team all everyone folks support sir madam customer friend friends again guys you "
    "so much for in a lot the both care service hello hi thanks thank y'all yall and or "
    "regards best very kindly please ok okay yes no not is it i we our your my this that an "
    "advance monday tuesday wednesday thursday friday saturday sunday january february march "
    "april may june july august september october november december today tomorrow morning "
    "afternoon evening question order about regarding re just quick sorry though mr mrs ms "
    "miss mx dr prof bye hey heya hiya howdy dear greetings".split()
)
# Capitalised words that a strict name rule ("this is …", a last line, "my friend …")
# must not take for a name: sentence starts, sign-off words, shop and order words.
_COMMON = _NOT_NAMES | set(
    "a about after again also am an any are as at back be because been before being but by "
    "can could did do does done each even ever every few first from get got had has have he "
    "her here hers him his how however if into its just last let like made make many me "
    "might more most must never new next now of off on once one only other out over own per "
    "perhaps same she should since some still such than then these they thing those through "
    "to too under until up us was way well were what when where which while who why with "
    "would yet yours also sent from iphone android ipad mobile phone email mail outlook "
    "gmail kind warm wishes cheers love sincerely yours truly respectfully greetings saludos "
    "regards thanks merci danke grazie gracias obrigado best all take care talk soon have a "
    "nice day great good fine happy glad sorry urgent important help helpful problem issue "
    "refund return returns exchange delivery shipping shipment package parcel item items "
    "product products size colour color price invoice receipt account password website "
    "store shop online app cart checkout payment card bank courier driver post office "
    "tracking number address street road city country amazon paypal visa mastercard ups "
    "usps fedex dhl royal mail customer service support team manager staff hq admin "
    "north south east west new old big small black white red blue green grey gray brown "
    "pink yellow orange purple navy still someone somebody anyone anybody nobody no-one "
    "neighbour neighbor reception concierge security".split()
)


# First names that are also everyday words: replaced only where context says "name",
# so "Will it ship?" survives a customer called Will.
_WORD_NAMES = set(
    "will may june april august bill mark grace hope joy faith rich sky summer autumn dawn "
    "guy ray rose jack frank art pat sue don chance miles max rob wade gene bob sandy rusty "
    "amber ruby pearl jade olive ivy holly iris lily daisy violet hunter taylor page "
    "crystal misty stormy brook river forest".split()
)


class Scrubber:
    """Replaces personal data in the texts of one conversation, counting by type."""

    def __init__(
        self,
        names: Iterable[str] = (),
        protected: Iterable[str] = (),
        allow: Iterable[str] = (),
    ) -> None:
        # protected: lower-case catalog/brand words that are only names in context.
        self.protected = (
            _lowered(protected)
            if isinstance(protected, frozenset)
            else {w.lower() for w in protected}
        )
        self.allow = sorted({a for a in allow if a}, key=len, reverse=True)
        self.counts: Counter[str] = Counter()
        self._full: set[str] = set()
        self._tokens: set[str] = set()
        self._learned: set[str] = set()
        for name in names:
            self.add_name(name)

    # --- names ---------------------------------------------------------------------

    def _is_name_token(self, token: str) -> bool:
        t = token.strip(".,").lower()
        return len(t) >= 2 and t not in _NOT_NAMES

    def add_name(self, name: str) -> None:
        """Remember a person's name for this conversation: the full name, and the first
        name alone. A surname alone is left to context ("Mr. Price"): many are also
        words ("Price", "Brown") that a reply needs."""
        full, first = _name_parts(name or "")
        if full:
            self._full.add(full)
        if first:
            self._tokens.add(first)

    def learn(self, text: str) -> None:
        """Pick up names from context (greetings, sign-offs) without replacing anything,
        so a name seen in a later message is also replaced in earlier ones."""
        if not text or text in self._learned:
            return  # ingest learns every message first, then scrub() would learn it again
        self._learned.add(text)
        for rule, strict in _name_rules(text):
            if rule is _TITLED:
                continue  # "Mr. Price" gives a surname, which may also be a word
            check = self._strict_name if strict else self._plausible_name
            for m in rule.finditer(text):
                if check(m.group("v")):
                    self.add_name(m.group("v"))

    def _plausible_name(self, value: str) -> bool:
        """False for "Hi there", "Hi Support Team", or a greeting to the brand
        ("Hello Cedar Summit"): every word a catalog/brand word is not a person."""
        tokens = [t for t in value.split() if t.lower() not in _PARTICLE_SET]
        if (
            not tokens
            or "<" in value
            or not all(self._is_name_token(t) for t in tokens if not re.fullmatch(r"[A-Z]\.", t))
        ):
            return False
        words = [t.strip(".,").lower() for t in tokens if len(t.strip(".,")) > 1]
        return not (len(words) > 1 and all(w in self.protected for w in words))

    def _strict_name(self, value: str) -> bool:
        """For rules with a weaker cue ("this is …", a last line, "my friend …"): no word
        of the name is a catalog word or a common word."""
        if not self._plausible_name(value):
            return False
        words = [
            p.lower()
            for t in value.split()
            if t.lower() not in _PARTICLE_SET
            for p in re.split(r"[-‐'’]", t.strip("."))
            if len(p) > 1
        ]
        return bool(words) and not any(w in _COMMON or w in self.protected for w in words)

    # --- scrubbing -----------------------------------------------------------------

    def scrub(self, text: str) -> str:
        """Text with personal data replaced; self.counts grows by what was replaced."""
        if not text:
            return text or ""
        self.learn(text)
        # Every pattern but names and emails needs a digit: most chat lines have none.
        digits = _DIGIT.search(text) is not None
        vault: list[str] = []
        text = self._stash(text, self.allow, vault)
        if "@" in text:
            text = self._sub(EMAIL, "EMAIL", text)
        if digits:
            for rule in (UPS, USPS, FEDEX_GROUND):  # before a link could hide them
                text = self._sub(rule, "TRACKING", text)
        text = URL.sub(lambda m: self._hide(m.group(0), vault), text)  # store links stay
        if digits:
            text = self._scrub_numbers(text)
        text = self._scrub_names(text)
        return self._unstash(text, vault)

    def _scrub_numbers(self, text: str) -> str:
        text = self._sub(TRACKING_AFTER_WORD, "TRACKING", text, check=tracking_ok)
        text = self._sub(TRACKING_AFTER_CARRIER, "TRACKING", text)
        text = self._sub(POSTAL_S10, "TRACKING", text)
        text = self._sub(_PHONE_00, "PHONE", text, check=phone_ok)
        text = self._sub(IBAN, "IBAN", text, check=iban_ok)
        text = self._sub(IBAN_WHOLE_GROUPS, "IBAN", text, check=iban_ok)
        text = self._sub(CARD, "CARD", text, check=card_ok)
        text = self._sub(ORDER_WORD, "ORDER_ID", text)
        text = self._sub(ORDER_HASH, "ORDER_ID", text)
        text = self._sub(_ORDER_REF, "ORDER_ID", text)
        text = self._sub(_IPV4_MAPPED, "IP", text)
        text = self._sub(IPV4, "IP", text)
        text = self._sub(IPV6, "IP", text, check=ipv6_ok)
        for rule in PHONES:
            text = self._sub(rule, "PHONE", text, check=phone_ok)
        text = self._sub(LOCAL_PHONE, "PHONE", text)
        for rule in _ADDRESSES:  # every address pattern holds a house number or postcode
            text = self._sub(rule, "ADDRESS", text, check=self._not_catalog)
        return text

    def scrub_all(self, texts: list[str]) -> list[str]:
        for t in texts:
            self.learn(t)
        return [self.scrub(t) for t in texts]

    def _sub(
        self,
        rx: re.Pattern[str],
        kind: str,
        text: str,
        check: Callable[[str], bool] | None = None,
    ) -> str:
        def repl(m: re.Match[str]) -> str:
            group = "v" if "v" in rx.groupindex else 0
            value = m.group(group)
            if value is None or (check and not check(value)):
                return m.group(0)
            self.counts[kind] += 1
            start, end = m.span(group)
            whole = m.group(0)
            base = m.start(0)
            return whole[: start - base] + placeholder(kind) + whole[end - base :]

        return rx.sub(repl, text)

    def _not_catalog(self, value: str) -> bool:
        words = re.findall(r"[A-Za-z]{3,}", value)
        return not words or not all(w.lower() in self.protected for w in words)

    def _scrub_names(self, text: str) -> str:
        folded = text.translate(_FOLD_TABLE)
        lowered = folded.lower()
        for full in sorted(self._full, key=len, reverse=True):
            if full.translate(_FOLD_TABLE).lower() not in lowered:
                continue  # cheap test first: most names are absent from most messages
            if all(p.strip(".").lower() in self.protected for p in full.split()):
                continue  # "Olive Green" the person vs the Olive Green Jacket: context only
            text = self._sub(_full_name_rx(full), "NAME", text)
        for token in sorted(self._tokens, key=len, reverse=True):
            if token.translate(_FOLD_TABLE) not in folded:
                continue  # the token regexes are case-sensitive
            low = token.strip(".").lower()
            if low in self.protected:
                continue
            # "Will it ship?" keeps its Will; "Sorry, Will, the…" loses it.
            text = self._sub(_token_rx(token, low in _WORD_NAMES), "NAME", text)
        # Catalog words used as names are only replaced where context says "name".
        for rule, strict in _name_rules(text):
            check = self._strict_name if strict else self._plausible_name
            text = self._sub(rule, "NAME", text, check=check)
        return self._absorb_surnames(text)

    def _absorb_surnames(self, text: str) -> str:
        """A known first name replaced, a second or hyphenated surname beside it is part
        of the same name: "<NAME> Luis García Márquez", "<NAME>-Eze", "José <NAME>"."""
        if "<NAME>" not in text:
            return text

        def after(m: re.Match[str]) -> str:
            return "<NAME>" if self._strict_name(m.group("v")) else m.group(0)

        def before(m: re.Match[str]) -> str:
            return "<NAME>" if self._strict_name(m.group("v")) else m.group(0)

        text = _NAME_HYPHEN_TAIL.sub("<NAME>", text)
        text = _NAME_AFTER.sub(after, text)
        return _NAME_BEFORE.sub(before, text)

    @staticmethod
    def _hide(value: str, vault: list[str]) -> str:
        vault.append(value)
        return f"\ue000{len(vault) - 1}\ue001"

    def _stash(self, text: str, values: list[str], vault: list[str]) -> str:
        for v in values:
            text = text.replace(v, self._hide(v, vault)) if v in text else text
        return text

    @staticmethod
    def _unstash(text: str, vault: list[str]) -> str:
        return re.sub("\ue000(\\d+)\ue001", lambda m: vault[int(m.group(1))], text)


_NAME_HYPHEN_TAIL = re.compile(rf"<NAME>(?:[-‐]{_CAPWORD})+(?![\w'’-])")
_NAME_AFTER = re.compile(
    rf"<NAME>(?P<v>(?:[ \t]+(?:(?:{_PARTICLES})[ \t]+){{0,2}}{_NAME_WORD}){{1,3}})"
)
_NAME_BEFORE = re.compile(rf"(?<![\w'’-])(?P<v>{_NAME_WORD})[ \t]+<NAME>")

# Accent-blind matching of a known name: "Siobhan Ni Bhriain" in the helpdesk's user
# record is "Siobhán Ní Bhriain" in her message, and the other way round.
_FOLD: dict[str, set[str]] = {}
for _c in _UP + _LO:
    _base = unicodedata.normalize("NFKD", _c)[0]
    if _base.isascii() and _base.isalpha():
        _FOLD.setdefault(_base, {_base}).add(_c)


_FOLD_TABLE = {ord(c): base for base, cs in _FOLD.items() for c in cs if c != base}


def _fold(ch: str) -> str:
    base = unicodedata.normalize("NFKD", ch)[0]
    return base if base.isascii() and base.isalpha() else ch


def _accent_blind(name: str) -> str:
    out = []
    for ch in name:
        variants = _FOLD.get(_fold(ch))
        if variants and len(variants) > 1:
            out.append("[" + "".join(sorted(variants)) + "]")
        else:
            out.append(re.escape(ch))
    return "".join(out)


# Compiled once per name, not once per message: agents' names recur on every ticket.
@lru_cache(maxsize=8192)
def _full_name_rx(full: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w<])" + _accent_blind(full) + r"(?![\w>])", re.I)


@lru_cache(maxsize=8192)
def _token_rx(token: str, word_name: bool) -> re.Pattern[str]:
    name = _accent_blind(token)
    if word_name:  # mid-sentence after a word, or alone on its line
        return re.compile(rf"(?<=[\w,;:] ){name}(?![\w>])|^[ \t]*{name}(?=[ \t.!]*$)", re.M)
    return re.compile(rf"(?<![\w<]){name}(?![\w>])")


@lru_cache(maxsize=65536)
def _name_parts(name: str) -> tuple[str | None, str | None]:
    """(full name when it has several words, first name when it can stand alone)."""
    name = re.sub(r"\s+", " ", name).strip()
    if "@" in name or not re.search(r"[A-Za-z]", name):
        return None, None
    parts = name.split(" ")
    first = parts[0]
    t = first.strip(".,").lower()
    token_ok = len(first.strip(".")) >= 2 and len(t) >= 2 and t not in _NOT_NAMES
    return (name if len(parts) > 1 else None), (first if token_ok else None)


@lru_cache(maxsize=16)
def _lowered(words: frozenset[str]) -> frozenset[str]:
    # ingest passes the same catalog vocabulary to every ticket's Scrubber
    return frozenset(w.lower() for w in words)


def find_pii(text: str, protected: Iterable[str] = (), allow: Iterable[str] = ()) -> Counter[str]:
    """What the Scrubber would still replace in `text`, by type: the check a built
    dataset gets (text that went through ingest should have none left)."""
    scrubber = Scrubber(protected=protected, allow=allow)
    scrubber.scrub(text)
    return scrubber.counts
