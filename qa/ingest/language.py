"""Language of a text or question: German or English, by counting function words."""

from __future__ import annotations

import re

_WORD = re.compile(r"[A-Za-zÄÖÜäöüß]+")
_GERMAN = frozenset(
    "der die das und ist nicht ein eine einen einer eines dem den des im mit sich auf für von "
    "zu wurde wurden wird werden hat hatte hatten haben war waren auch als bei nach über wie wer "
    "wen wem wann wo welche welcher welches welchem welchen wieviel wieviele viele durch noch "
    "aus oder sind vom zum zur worüber wofür womit wodurch worauf woraus gegen zwischen während "
    "dass sein seine ihre ihr keine nur sehr unter gab gibt kann können einige manche weshalb "
    "wozu wogegen warum oft".split()
)
# "was" and "in" are both German and English: they count for neither.
_ENGLISH = frozenset(
    "the and is not a an of on for to were has have had be been by with as at from "
    "what who when where which how many much did does do this that it its are or".split()
)
_UMLAUT = re.compile(r"[äöüßÄÖÜ]")


def detect_language(text: str) -> str:
    """Return ``"de"`` or ``"en"``, by counting common function words (ties go to English).

    >>> detect_language("Wann haben sich Porsche und Apple getroffen?")
    'de'
    """
    de = en = 0
    for word in _WORD.findall(text.lower()):
        de += word in _GERMAN or bool(_UMLAUT.search(word))
        en += word in _ENGLISH
    return "de" if de > en else "en"
