"""Answer spans: what kind of fact a question asks for, and where it stands in a sentence.

Dates are found and resolved with ``dateparser`` against the document's date (so "im
November" in an article of 2022-03 reads as November 2021); numbers and places by patterns.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Literal

from ..types import Span

logger = logging.getLogger(__name__)

Kind = Literal["date", "number", "place"]

_KIND_PATTERNS: tuple[tuple[Kind, re.Pattern[str]], ...] = (
    (
        "date",
        re.compile(
            r"\b(when|what (year|date|month|day|century|decade)|which (year|date|month|day|century)"
            r"|in what (year|month|century)|wann|seit wann|bis wann|in welche[mnr]? "
            r"(jahr|monat|jahrhundert|jahrzehnt)|an welchem (tag|datum)|welche[snr]? "
            r"(jahr|datum|monat))\b",
            re.IGNORECASE,
        ),
    ),
    (
        "number",
        re.compile(
            r"\b(how (many|much|long|old|far|large|big|tall|high)|what (percentage|percent|number"
            r"|amount)|wie (viele?|lange|alt|weit|groß|hoch|schwer)|wieviele?|welcher anteil"
            r"|wie hoch)\b",
            re.IGNORECASE,
        ),
    ),
    (
        "place",
        re.compile(
            r"\b(where|in what (city|country|state|place)|in which (city|country|state)|wo|woher"
            r"|wohin|in welche[mnr]? (stadt|land|staat|ort))\b",
            re.IGNORECASE,
        ),
    ),
)

_MONTHS = (
    "januar|jänner|februar|märz|april|mai|juni|juli|august|september|oktober|november|dezember"
    "|january|february|march|may|june|july|october|december"
)
_DATE_HINT = re.compile(
    rf"\d|\b({_MONTHS}|gestern|vorgestern|heute|letzte[nrs]?|vergangene[nrs]?|vorige[nrs]?"
    r"|yesterday|today|last|ago)\b",
    re.IGNORECASE,
)
_EDGE_WORDS = re.compile(
    r"^(?:(?:im|am|um|in|an|on|at|the|der|die|das|des|dem|den|seit|bis|ab|vom|zum|mit)\s+)+"
    r"|(?:\s+(?:im|am|um|in|an|on|at|the|der|die|das|des|dem|den|und|and|mit))+$",
    re.IGNORECASE,
)
# dateparser reads "letztes Jahr" but not the genitive "letzten Jahres".
_GENITIVE = (
    (re.compile(r"\b(letzten|vergangenen|vorigen) Jahres\b", re.IGNORECASE), "letztes Jahr"),
    (re.compile(r"\b(letzten|vergangenen|vorigen) Monats\b", re.IGNORECASE), "letzten Monat"),
)
_NUMBER = re.compile(
    r"(?<![\w.,])(?:ca\.\s*|rund\s+|etwa\s+|über\s+|about\s+|over\s+|around\s+)?"
    r"(?:\d{1,3}(?:[.,\u202f ]\d{3})+|\d+)(?:[.,]\d+)?(?!\d)"
    r"(?:\s*(?:%|Prozent|percent|Millionen|Milliarden|Mio\.|Mrd\.|million|billion|thousand"
    r"|Tausend|Meter|Metern|metres|meters|Kilometer|kilometres|km|miles|Meilen|Fuß|feet"
    r"|Tonnen|tons|tonnes|kg|Euro|Dollar|US-Dollar|dollars)\b)?"
    r"|\b(?:zwei|drei|vier|fünf|sechs|sieben|acht|neun|zehn|elf|zwölf|zwanzig|dreißig|hundert"
    r"|tausend|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|hundred)\b",
    re.IGNORECASE,
)
_MEASURE = re.compile(
    r"\b(how (tall|long|much|far|high|big|large|old|heavy|deep|wide)|wie (hoch|lang|lange|groß"
    r"|weit|alt|schwer|tief|breit|viel))\b",
    re.IGNORECASE,
)
_UNIT = re.compile(
    r"\s*(%|Prozent|percent|Meter|Metern|metres|meters|m\b|km|Kilometer|kilometres|miles|Meilen"
    r"|Fuß|feet|ft\b|Zoll|inches|kg|Kilogramm|Tonnen|tons|tonnes|Jahre|Jahren|years|Euro|Dollar"
    r"|US-Dollar|dollars|€|\$|Millionen|Milliarden|million|billion)",
    re.IGNORECASE,
)
_PLACE = re.compile(
    r"\b(?:in|im|bei|nahe|nach|aus|am Rande der|am Rande des|auf der|an der|at|near|from)"
    r"(?:\s+(?:die|den|der|dem|das|the))?\s+"
    r"((?:[A-ZÄÖÜ][\w\-]*\.?)(?:\s+(?:[A-ZÄÖÜ][\w\-]*|de|del|von|van|of|upon))*)"
)
_NOT_PLACE = re.compile(
    rf"^({_MONTHS}|Jahr|Jahre|Jahren|Anfang|Ende|Mitte|Laufe|Rahmen"
    r"|Gegensatz|Zusammenarbeit|Folge|Zukunft|Vergangenheit)\b",
    re.I,
)


def question_kind(question: str) -> Kind | None:
    """The kind of fact a question asks for, if it is a date, a number or a place.

    >>> question_kind("When did Porsche meet Apple?")
    'date'
    >>> question_kind("Wie viele Punkte gab die Verteidigung ab?")
    'number'
    """
    for kind, pattern in _KIND_PATTERNS:
        if pattern.search(question):
            return kind
    return None


@lru_cache(maxsize=8)
def _date_parser(language: str, base: datetime) -> object:
    from dateparser.date import DateDataParser

    return DateDataParser(
        languages=[language, "en"] if language != "en" else ["en"],
        settings={"RELATIVE_BASE": base, "PREFER_DATES_FROM": "past"},
    )


def _base_date(document_date: str | None) -> datetime | None:
    if not document_date:
        return None
    parts = [int(p) for p in document_date.split("-")]
    year, month = parts[0], parts[1] if len(parts) > 1 else 12
    day = parts[2] if len(parts) > 2 else 28
    return datetime(year, month, day)


def _format_date(value: datetime, period: str) -> str:
    if period == "year":
        return str(value.year)
    if period == "month":
        return value.strftime("%B %Y")
    return f"{value.day} {value.strftime('%B %Y')}"


def _padded(replacement: str) -> Callable[[re.Match[str]], str]:
    return lambda match: replacement.ljust(len(match.group(0)))


def find_date(sentence: str, *, language: str, document_date: str | None) -> Span | None:
    """The first date expression in the sentence, resolved against the document's date."""
    from dateparser.search import search_dates

    base = _base_date(document_date) or datetime(2100, 1, 1)
    text = sentence
    for pattern, replacement in _GENITIVE:  # padded to the same length: offsets stay valid
        text = pattern.sub(_padded(replacement), text)
    settings = {"RELATIVE_BASE": base, "PREFER_DATES_FROM": "past"}
    try:
        found = search_dates(text, languages=[language], settings=settings) or []
    except Exception:  # dateparser raises assorted errors on odd input
        logger.debug("dateparser failed on %r", sentence, exc_info=True)
        found = []
    parser = _date_parser(language, base)
    cursor = 0
    for matched, _ in found:
        at = text.find(matched, cursor)
        if at < 0:
            continue
        cursor = at + len(matched)
        trimmed = _EDGE_WORDS.sub("", matched)
        if not trimmed or not _DATE_HINT.search(trimmed):
            continue
        at += matched.find(trimmed)
        end = at + len(trimmed)
        while end < len(sentence) and sentence[end].isalnum():  # the word replaced above
            end += 1
        data = parser.get_date_data(trimmed)  # type: ignore[attr-defined]
        if data.date_obj is None:
            continue
        period = data.period or "day"
        if re.fullmatch(r"\d{4}", trimmed.strip()):
            period = "year"
        if document_date is None and not re.search(r"\d{4}", trimmed):
            value = trimmed  # a relative date with nothing to resolve it against
        else:
            value = _format_date(data.date_obj, period)
        return Span("date", at, end, sentence[at:end], value)
    return None


def _number_scores(sentence: str, question: str) -> list[tuple[float, re.Match[str]]]:
    """Numbers of the sentence the question does not mention, each with how well it fits.

    A number right before a word of the question ("85 Mitarbeiter" for "how many employees…
    Mitarbeiter") fits best; for "how tall/long/much…" one with a unit fits better than a
    bare count; digits fit better than number words.
    """
    from ..search.lexical import tokenize

    asked = {m.group(0).lower() for m in _NUMBER.finditer(question)}
    q_tokens = set(tokenize(question, ("de", "en")))
    measure = bool(_MEASURE.search(question))
    scored = []
    for match in _NUMBER.finditer(sentence):
        text = match.group(0).strip()
        if text.lower() in asked:
            continue
        after = sentence[match.end() : match.end() + 40]
        following = set(tokenize(" ".join(after.split()[:2]), ("de", "en")))
        score = 2.0 * bool(following & q_tokens)
        if measure and (_UNIT.match(after) or _UNIT.search(text)):
            score += 1.0
        score += 0.5 * text[0].isdigit()
        scored.append((score, match))
    return scored


def find_number(sentence: str, question: str) -> Span | None:
    """The number in the sentence that best fits the question (see ``_number_scores``)."""
    scored = _number_scores(sentence, question)
    if not scored:
        return None
    best = max(scored, key=lambda item: item[0])[1]  # max keeps the first of equals
    text = best.group(0).strip()
    return Span("number", best.start(), best.start() + len(text), text, text)


def find_place(sentence: str, question: str) -> Span | None:
    """A capitalised name after a place preposition that the question does not mention."""
    asked = question.lower()
    for match in _PLACE.finditer(sentence):
        name = match.group(1).rstrip(".")
        if _NOT_PLACE.match(name) or name.lower() in asked:
            continue
        start = match.start(1)
        return Span("place", start, start + len(name), name, name)
    return None


def find_span(
    kind: Kind | None, sentence: str, question: str, *, language: str, document_date: str | None
) -> Span | None:
    """The span of the asked-for kind in the sentence, or ``None``."""
    if kind == "date":
        return find_date(sentence, language=language, document_date=document_date)
    if kind == "number":
        return find_number(sentence, question)
    if kind == "place":
        return find_place(sentence, question)
    return None


def holds_number(text: str) -> bool:
    """Whether ``text`` holds a number at all: digits or a number word ("drei", "hundred")."""
    return _NUMBER.search(text) is not None


def has_kind(kind: Kind | None, sentence: str, question: str = "") -> float:
    """How well a sentence can hold the asked-for kind, 0 to 1 (used in sentence scoring)."""
    if kind == "date":
        return bool(re.search(rf"\b(1\d{{3}}|20\d{{2}}|{_MONTHS})\b", sentence, re.IGNORECASE))
    if kind == "number":
        scores = _number_scores(sentence, question)
        return min(1.0, max((s for s, _ in scores), default=-0.5) / 2.5 + 0.2) if scores else 0.0
    if kind == "place":
        return bool(_PLACE.search(sentence))
    return False
