"""Extractive reader: finds answer spans, with character offsets, in retrieved passages."""

from __future__ import annotations

from .readings import AnswerSpan, Reading
from .runtime import Reader

__all__ = ["AnswerSpan", "Reader", "Reading"]
