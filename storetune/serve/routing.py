"""Ticket routing: retrieve, prompt as in training, generate, then decide.

The decision combines these signals, none trusted alone:

- the escalation marker the model was trained to emit;
- token log-probs (mean and minimum over the reply), against thresholds that
  `storetune calibrate` fits on the validation split so that replies rated
  `high` are wrong less than 5% of the time (defaults below when uncalibrated);
- the grounding check (any blocked fact: confidence `low`, the sentence removed);
- the always-escalate topics of store.yaml, matched on the customer's words;
- a nearest-neighbour classifier over past tickets (escalated or not), a second
  opinion that generalises across phrasing where a small generator does not;
- the learned router's reading (must-hand-over kinds) and the rules in code;
- the reply check: a classifier trained beside the router on the dataset's reference
  replies reads which kind of question the draft answers; a draft that answers none
  of the kinds the router chose the context for ("I can't see your order" to a
  refund-policy question) is never `high`;
- the coverage check (serve.coverage): a draft that leaves out one of the customer's
  questions ("warranty? Also, the price?" answered with the price only) is never `high`.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from storetune.chat.card import Card, PassageCard, ProductCard
from storetune.chat.money import store_currency
from storetune.chat.prompt import render_system_prompt
from storetune.clean import human_only_reason
from storetune.config import StoreConfig
from storetune.errors import StoretuneError
from storetune.kinds import HAND_OVER, focus, sections_for
from storetune.models.router import (
    ROUTER_DIR,
    RouterModel,
    RouterPrediction,
    agreement,
    features,
)
from storetune.retrieval.also_bought import AlsoBought, bought_handles
from storetune.retrieval.index import HybridIndex, Retrieval, index_exists
from storetune.retrieval.knn import KnnOpinion, TicketClassifier
from storetune.retrieval.passages import PassageHit
from storetune.serve.coverage import unanswered
from storetune.serve.guard import Evidence, Finding, Guard, redact
from storetune.serve.order_reply import asks_status, status_reply
from storetune.serve.orders import (
    ASK_FOR_ORDER,
    ORDER_KINDS,
    ORDER_READING_MIN,
    OrderContext,
    asks_for_suggestion,
    look_up,
    needs_a_person,
    often_bought_card,
    requester_email,
)
from storetune.serve.rules import (
    asks_for_person,
    degenerate,
    handover_line,
    over_budget,
    pasted_markup,
)
from storetune.store import db
from storetune.store.review import NewTicket, ReviewQueue, conversation, thread_turns
from storetune.workspace import Workspace

KNN_ESCALATE = 0.5  # neighbours this escalated: hand over even if the model did not
KNN_UNSURE = 0.3  # neighbours this escalated: not sure enough to send unreviewed
HANDOVER = (
    "Thanks for your message. A member of our team will check the details and get back to "
    "you shortly."
)


# ---- thresholds ---------------------------------------------------------------------------


@dataclass
class Thresholds:
    """Log-prob cut-offs for `high` and `low` confidence.

    The defaults are deliberately strict (few replies are `high` until the model is
    calibrated): a reply must be near-certain on average and have no token the model
    found unlikely.
    """

    mean_high: float = -0.25  # mean token log-prob at or above: may be high
    min_high: float = -2.5  # and no token below this
    mean_low: float = -1.0  # mean below: low
    calibrated: bool = False
    details: dict[str, Any] = field(default_factory=dict)  # what calibration measured

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def calibration_path(ws: Workspace, name: str, version: int | None) -> Path:
    label = f"{name}@v{version}" if version is not None else name
    return ws.root / "calibration" / f"{label}.json"


def load_thresholds(ws: Workspace, name: str, version: int | None) -> Thresholds:
    path = calibration_path(ws, name, version)
    if not path.exists():
        return Thresholds()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Thresholds(**{k: data[k] for k in Thresholds.__dataclass_fields__ if k in data})
    except (ValueError, TypeError) as e:
        raise StoretuneError(
            f"{path}: not a valid calibration file ({e})",
            hint="delete it and run 'storetune calibrate' again",
        ) from None


# ---- the decision ---------------------------------------------------------------------------


@dataclass
class Signals:
    marker: bool
    mean_logprob: float | None
    min_logprob: float | None
    finish_reason: str
    topic: str | None = None
    topic_reason: str | None = None
    knn: KnnOpinion | None = None
    blocked: list[Finding] = field(default_factory=list)
    thresholds: str = "default"  # or "calibrated"
    router: RouterPrediction | None = None
    hand_over: str | None = None  # why the router or a rule hands over
    degenerate: str | None = None  # why the draft must not be sent
    order: str = "none"  # none | verified | unverified: never which order, nor if it exists
    off_topic: str | None = None  # why the draft seems to answer another question
    over_budget: str | None = None  # a price above the ceiling the customer set
    unanswered: str | None = None  # a question the draft leaves out

    def to_dict(self) -> dict[str, Any]:
        return {
            "router": self.router.to_dict() if self.router else None,
            "hand_over": self.hand_over,
            "degenerate": self.degenerate,
            "order": self.order,
            "off_topic": self.off_topic,
            "over_budget": self.over_budget,
            "unanswered": self.unanswered,
            "marker": self.marker,
            "mean_logprob": _round(self.mean_logprob),
            "min_logprob": _round(self.min_logprob),
            "finish_reason": self.finish_reason,
            "topic": self.topic,
            "knn": self.knn.to_dict() if self.knn else None,
            "blocked": [f.to_dict() for f in self.blocked],
            "thresholds": self.thresholds,
        }


@dataclass
class Decision:
    confidence: str  # high | medium | low
    escalate: bool
    reasons: list[str]


def logprob_stats(token_logprobs: list[tuple[str, float]]) -> tuple[float | None, float | None]:
    values = [lp for _, lp in token_logprobs]
    if not values:
        return None, None
    return sum(values) / len(values), min(values)


def decide(s: Signals, t: Thresholds, marker: str = "[ESCALATE]") -> Decision:
    """Combine the signals; every reason a reply is not high or is escalated is listed."""
    reasons: list[str] = []
    escalate = False
    if s.marker:
        escalate = True
        reasons.append(f"the model handed over ({marker})")
    if s.hand_over:
        escalate = True
        reasons.append(s.hand_over)
    if s.topic:
        escalate = True
        reasons.append(
            f"always-escalate topic '{s.topic}'" + (f": {s.topic_reason}" if s.topic_reason else "")
        )
    p = s.knn.p_escalate if s.knn else None
    if p is not None and p >= KNN_ESCALATE:
        escalate = True
        reasons.append(f"similar past tickets were handed to a person (p={p:.2f})")
    elif p is not None and p >= KNN_UNSURE:
        reasons.append(f"some similar past tickets were handed to a person (p={p:.2f})")
    reasons += [f"grounding: {f.reason}" for f in s.blocked]
    low = bool(s.blocked)
    if s.degenerate:
        low = True
        reasons.append(s.degenerate)
    sure = True
    if s.mean_logprob is None:
        sure = False
        reasons.append("no token log-probs to judge the reply by")
    else:
        if s.mean_logprob < t.mean_low:
            low = True
            reasons.append(
                f"the model was unsure (mean log-prob {s.mean_logprob:.2f} < {t.mean_low:.2f})"
            )
        elif s.mean_logprob < t.mean_high:
            sure = False
            reasons.append(
                f"mean log-prob {s.mean_logprob:.2f} is below {t.mean_high:.2f} for high confidence"
            )
        if s.min_logprob is not None and s.min_logprob < t.min_high:
            sure = False
            reasons.append(f"an unlikely token (log-prob {s.min_logprob:.2f} < {t.min_high:.2f})")
    if s.off_topic:
        sure = False
        reasons.append(s.off_topic)
    if s.over_budget:
        sure = False
        reasons.append(s.over_budget)
    if s.unanswered:
        sure = False
        reasons.append(s.unanswered)
    if s.finish_reason == "length":
        sure = False
        reasons.append("the reply was cut at the token limit")
    if low:
        confidence = "low"
    elif sure and (p is None or p < KNN_UNSURE) and not escalate:
        confidence = "high"
    else:
        confidence = "medium"
    return Decision(confidence, escalate, list(dict.fromkeys(reasons)))


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


# ---- the router -----------------------------------------------------------------------------


@dataclass
class TicketInput:
    message: str
    thread: list[dict] = field(default_factory=list)  # earlier turns: role customer|agent
    customer: dict[str, Any] = field(default_factory=dict)


@dataclass
class Prepared:
    """Everything known before generation."""

    ticket: TicketInput
    retrieval: Retrieval
    system_prompt: str
    messages: list[dict]
    topic: str | None
    knn: KnnOpinion | None
    cards: list[Card] = field(default_factory=list)  # what the prompt shows; the guard reads them
    reading: RouterPrediction | None = None  # the router's reading of the ticket
    hand_over: str | None = None  # why a person must take it, decided before drafting
    template: str | None = None  # the store's fixed reply for this kind: sent, not generated
    order: str = "none"  # none | verified | unverified (serve.orders)
    passages: list[tuple[PassageCard, PassageHit]] = field(default_factory=list)
    reply_check: RouterModel | None = None  # which kind a draft answers (the version's)


@dataclass
class Routed:
    ticket_id: int
    status: str  # waiting | sent
    response: str
    decision: Decision
    sources: list[dict]
    signals: Signals
    model: str

    def body(self) -> dict[str, Any]:
        return {
            "ticket_id": self.ticket_id,
            "status": self.status,
            "response": self.response,
            "confidence": self.decision.confidence,
            "escalate": self.decision.escalate,
            "reasons": self.decision.reasons,
            "sources": self.sources,
            "model": self.model,
            "signals": self.signals.to_dict(),
        }


class TicketRouter:
    """Routes tickets for one workspace: retrieval, prompt, decision, queue."""

    def __init__(
        self,
        ws: Workspace,
        cfg: StoreConfig,
        index: HybridIndex | None,
        classifier: TicketClassifier | None,
        queue: ReviewQueue,
        context_products: int = 2,
        context_passages: int = 2,
    ) -> None:
        self.ws, self.cfg = ws, cfg
        self.index = index
        self.classifier = classifier
        self.queue = queue
        self.k = context_products
        self.k_passages = context_passages
        self._lock = threading.Lock()
        self._guard_generation: object = None
        self.guard = Guard()

    @classmethod
    def load(cls, ws: Workspace, cfg: StoreConfig | None = None) -> TicketRouter:
        """Open the workspace's index, classifier and queue (loads the embedder)."""
        cfg = cfg or ws.config()
        if not ws.db_path.exists():
            raise StoretuneError(
                f"{ws.db_path}: no store database; ticket routing needs the catalog",
                hint="run 'storetune ingest' and 'storetune index'",
            )
        conn = db.connect(ws.db_path)
        try:
            products = conn.execute("SELECT COUNT(*) FROM products").fetchone()[0]
            products += conn.execute("SELECT COUNT(*) FROM knowledge_chunks").fetchone()[0]
            indexed = index_exists(conn)
            classifier = TicketClassifier.load(conn)
        finally:
            conn.close()
        if products and not indexed:
            raise StoretuneError(
                f"{ws.db_path}: the catalog and help center are not indexed, so replies would "
                "have no product facts or passages",
                hint="run 'storetune index' (once; later ingests refresh it)",
            )
        index = HybridIndex(ws.db_path) if indexed else None
        k, kp = cfg.build.context_products, cfg.build.context_passages
        return cls(ws, cfg, index, classifier, ReviewQueue(ws.db_path), k, kp)

    # ---- before generation ----

    def prepare(self, ticket: TicketInput, router: RouterModel | None = None) -> Prepared:
        """Retrieve, read the ticket with the version's router, render the focused prompt.

        Without a router (a version trained before routers, or catalog tasks) the prompt
        carries every policy line, as such versions were trained."""
        if not ticket.message.strip():
            raise StoretuneError("message must not be empty")
        turns = thread_turns(ticket.thread)
        customer_texts = [t["content"] for t in turns if t["role"] == "user"] + [ticket.message]
        retrieval = self._retrieve(ticket.message, customer_texts)
        passages = self._passages(ticket.message)
        cards: list[Card] = [ProductCard.from_product(p) for p in retrieval.products]
        cards += [card for card, _ in passages]
        reading = self._read(router, ticket.message, customer_texts)
        order = self._order(customer_texts, ticket.customer, reading)
        cards += self._often_bought(customer_texts, retrieval, reading, order, ticket.customer)
        sections = self._sections(router, reading)
        if order.card is not None:  # the requester's own order, verified
            cards.append(order.card)
            if sections is not None:
                sections += [s for s in order.sections() if s not in sections]
        system = render_system_prompt(self.cfg, cards, sections)
        messages = conversation(system, ticket.thread, ticket.message)
        topic = human_only_reason(customer_texts, self.cfg.escalation.always or None)
        knn = None
        if self.classifier is not None and self.index is not None:
            knn = self.classifier.predict(self.index.embedder.embed_query(ticket.message))
        hand_over = _hand_over(router, reading, customer_texts[-1])
        if order.ask and not hand_over:
            agent_turns = [t["content"] for t in turns if t["role"] == "assistant"]
            hand_over = needs_a_person(agent_turns, ticket.message)
        template = None
        if hand_over and reading is not None:
            template = self.cfg.escalation.templates.get(reading.label)
        elif order.ask and not hand_over and not topic:
            template = ASK_FOR_ORDER  # fixed: the same words whatever the order database holds
        elif order.card is not None and not hand_over and not topic and asks_status(reading):
            # read off the card (serve.order_reply); braces doubled so `fill` keeps a URL's
            template = status_reply(order.card, self.cfg).replace("{", "{{").replace("}", "}}")
            # past order tickets went to a person because only a person could look the
            # order up; this reply is that lookup, so their hand-overs are not a signal here
            knn = None
        return Prepared(
            ticket,
            retrieval,
            system,
            messages,
            topic,
            knn,
            cards,
            reading,
            hand_over,
            template,
            order.state,
            passages,
            router.reply_check if router is not None else None,
        )

    def _passages(self, message: str) -> list[tuple[PassageCard, PassageHit]]:
        """The help-center passages relevant to the message (top k above the index's
        relevance threshold), as the cards the prompt shows."""
        if self.index is None or self.k_passages == 0:
            return []
        found = self.index.retrieve_passages(message, self.k_passages)
        return [(PassageCard.from_passage(p), hit) for p, hit in found]

    def _often_bought(
        self,
        texts: list[str],
        retrieval: Retrieval,
        reading: RouterPrediction | None,
        order: OrderContext,
        customer: dict[str, Any],
    ) -> list[Card]:
        """For a recommendation, one in-stock product customers often bought with what
        the ticket is about (or, for a verified customer, with what they bought), its
        card saying so."""
        wanted = reading.label == "recommendation" if reading else asks_for_suggestion(texts)
        if not wanted:
            return []
        conn = db.connect(self.ws.db_path)
        try:
            mine = bought_handles(conn, requester_email(customer)) if order.card else []
            shown = [p.handle for p in retrieval.products]
            also = self._also_bought(conn)
            # what they bought themselves first, then what the ticket is about
            found = also.suggest(conn, mine, 1, exclude=shown) or also.suggest(conn, shown, 1)
        finally:
            conn.close()
        return [often_bought_card(p, base, base.handle in mine) for p, base in found]

    def _also_bought(self, conn: sqlite3.Connection) -> AlsoBought:
        """Co-purchase counts, re-read when the orders in store.db change."""
        stamp = tuple(conn.execute("SELECT COUNT(*), MAX(updated_at) FROM orders").fetchone())
        with self._lock:
            if getattr(self, "_also_stamp", None) != stamp:
                self._also, self._also_stamp = AlsoBought.load(conn), stamp
            return self._also

    def _order(
        self, texts: list[str], customer: dict[str, Any], reading: RouterPrediction | None
    ) -> OrderContext:
        conn = db.connect(self.ws.db_path)
        try:
            # a weak reading is no reason to ask for an order number ("can I order
            # the socks today?" read order_status at p=0.21 in the demo)
            sure = reading is not None and reading.mass(ORDER_KINDS) >= ORDER_READING_MIN
            return look_up(conn, texts, customer, reading.label if sure else None)
        finally:
            conn.close()

    def _read(
        self, router: RouterModel | None, message: str, customer_texts: list[str]
    ) -> RouterPrediction | None:
        if router is None or self.index is None:
            return None
        embed = self.index.embedder.embed_query
        thread = "\n".join(customer_texts)
        return router.predict(features(embed(message), embed(thread)))[0]

    @staticmethod
    def _sections(router: RouterModel | None, reading: RouterPrediction | None) -> list[str] | None:
        """The policy sections of the kinds the router reads, as the dataset gave them to
        those kinds in training; None (every line) when the version was trained so."""
        table = router.info.get("kind_sections") if router is not None else None
        if reading is None or table is None:
            return None
        chosen: list[str] = []
        for kind in focus(reading.top(3)):
            for section in table.get(kind, sections_for([kind])):
                if section not in chosen:
                    chosen.append(section)
        return chosen

    def _retrieve(self, message: str, customer_texts: list[str]) -> Retrieval:
        if self.index is None or self.k == 0:
            return Retrieval(message, [])
        found = self.index.retrieve(message, self.k)
        if not found.products and len(customer_texts) > 1:
            # "how much is it?" after a first message naming the product
            found = self.index.retrieve("\n".join(customer_texts), self.k)
        return found

    # ---- after generation ----

    def finish(
        self,
        p: Prepared,
        text: str,
        token_logprobs: list[tuple[str, float]],
        finish_reason: str,
        model: str,
        thresholds: Thresholds,
        review_mode: str = "approval",
        record: bool = True,
    ) -> Routed:
        """Check the draft, decide, and queue it (`record=False`: decide only, as the
        system evaluation does, leaving the review queue untouched)."""
        marker = self.cfg.escalation.marker
        has_marker = marker in text
        draft = re.sub(r"\s{2,}", " ", text.replace(marker, " ")).strip()
        turns = _customer_turns(p)
        customer = "\n".join([*turns, json.dumps(p.ticket.customer, ensure_ascii=False)])
        evidence = Evidence.for_prompt(p.system_prompt, customer, self.cfg.brand.website, p.cards)
        result = self._guard().check(draft, evidence)
        response = redact(draft, result.blocked) or handover_line(self.cfg)
        mean_lp, min_lp = logprob_stats(token_logprobs)
        topic_reason = next(
            (t.reason for t in self.cfg.escalation.always if t.name == p.topic), None
        )
        signals = Signals(
            has_marker,
            mean_lp,
            min_lp,
            finish_reason,
            p.topic,
            topic_reason,
            p.knn,
            result.blocked,
            "calibrated" if thresholds.calibrated else "default",
            p.reading,
            p.hand_over,
            None if p.template else degenerate(draft) or pasted_markup(draft, _heads(p)),
            p.order,
            None if p.template else self._off_topic(p, draft),
            None if p.template else over_budget(turns, draft),
            None if p.template else self._unanswered(p, turns, draft),
        )
        decision = decide(signals, thresholds, marker)
        if p.template is not None:
            response = text  # the store's own wording, checked by nobody but the store
        elif decision.escalate and (not has_marker or signals.degenerate):
            # the draft answered as if nobody would take over, or it loops: tell the
            # customer who will
            response = handover_line(self.cfg, p.reading.label if p.reading else None)
        auto = review_mode == "auto" and decision.confidence == "high" and not decision.escalate
        sources = self._sources(p)
        if not record:
            return Routed(0, "dry-run", response, decision, sources, signals, model)
        ticket_id = self.queue.add(
            NewTicket(
                model=model,
                message=p.ticket.message,
                system_prompt=p.system_prompt,
                raw_draft=text,
                draft=draft,
                response=response,
                confidence=decision.confidence,
                escalate=decision.escalate,
                reasons=decision.reasons,
                sources=sources,
                signals=signals.to_dict(),
                thread=p.ticket.thread,
                customer=p.ticket.customer,
            ),
            auto_send=auto,
        )
        return Routed(
            ticket_id, "sent" if auto else "waiting", response, decision, sources, signals, model
        )

    def _off_topic(self, p: Prepared, draft: str) -> str | None:
        """Why the draft seems to answer another question than the one the router read:
        the reply check reads it as none of the kinds the focused context was chosen for."""
        if p.reply_check is None or p.reading is None or self.index is None or not draft:
            return None
        check = p.reply_check.predict(self.index.embedder.embed_query(draft))[0]
        score = agreement(p.reading, check)
        threshold = float(p.reply_check.info.get("agree_threshold", 0.2))
        if score >= threshold:
            return None
        return (
            f"the draft reads as a '{check.label}' answer, not one about "
            f"{' / '.join(focus(p.reading.top(3)))} (agreement {score:.2f} < {threshold:.2f})"
        )

    def _unanswered(self, p: Prepared, turns: list[str], draft: str) -> str | None:
        if self.index is None:
            return None
        return unanswered(turns, draft, p.system_prompt, self.index.embedder.embed)

    def _sources(self, p: Prepared) -> list[dict]:
        """The retrieved products beside the reply, priced as their cards are, then the
        help-center passages the prompt showed."""
        currency = store_currency(self.cfg)
        products = [
            {**source, "price": ProductCard.from_product(product).price_text(currency)}
            for source, product in zip(p.retrieval.sources(), p.retrieval.products, strict=True)
        ]
        return products + [passage_source(card, hit) for card, hit in p.passages]

    def _guard(self) -> Guard:
        """The guard knows every catalog title; rebuilt when the catalog is re-indexed."""
        generation = self.index.generation if self.index is not None else 0
        with self._lock:
            if generation != self._guard_generation:
                conn = db.connect(self.ws.db_path)
                try:
                    self.guard = _guard_from(conn)
                finally:
                    conn.close()
                self._guard_generation = generation
            return self.guard


def passage_source(card: PassageCard, hit: PassageHit) -> dict[str, Any]:
    """A help-center passage beside the reply: where it is, and how close it was."""
    return {
        "type": "passage",
        "title": card.title,
        "heading": card.heading,
        "url": card.url,
        "key": card.key,
        "updated_at": card.updated_at,
        "score": round(hit.score, 4),
        "similarity": round(hit.similarity, 4),
    }


def _guard_from(conn: sqlite3.Connection) -> Guard:
    rows = conn.execute("SELECT title, product_type FROM products").fetchall()
    return Guard([r[0] for r in rows], {r[1] for r in rows if r[1]})


def _heads(p: Prepared) -> list[str]:
    """The passage heads the prompt showed, as a draft would copy them."""
    return [f"[{c.label()}]" for c in p.cards if isinstance(c, PassageCard)]


def _customer_turns(p: Prepared) -> list[str]:
    return [m["content"] for m in p.messages[1:] if m["role"] == "user"]


def _hand_over(
    router: RouterModel | None, reading: RouterPrediction | None, message: str
) -> str | None:
    """Why a person must take the ticket before any draft: an explicit request for a
    person (a rule in code), or the router reading a must-hand-over kind."""
    if asks_for_person(message):
        return "the customer asked for a person"
    if reading is None or router is None:
        return None
    threshold = float(router.info.get("hand_over_threshold", 0.5))
    p = reading.mass(HAND_OVER)
    if p >= threshold:
        kind = max(HAND_OVER, key=lambda k: reading.probabilities.get(k, 0.0))
        return f"the router reads a must-hand-over ticket: {kind} (p={p:.2f})"
    return None


_ROUTERS: dict[Path, RouterModel | None] = {}
_ROUTERS_LOCK = threading.Lock()


def router_for(version_dir: Path | None) -> RouterModel | None:
    """The router saved beside a version (cached); None for versions without one."""
    if version_dir is None or not (version_dir / ROUTER_DIR).is_dir():
        return None
    with _ROUTERS_LOCK:
        if version_dir not in _ROUTERS:
            _ROUTERS[version_dir] = RouterModel.load(version_dir / ROUTER_DIR)
        return _ROUTERS[version_dir]
