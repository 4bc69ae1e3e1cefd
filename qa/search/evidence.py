"""What retrieval hands to answering: the ranked passages with their scored sentences."""

from __future__ import annotations

from dataclasses import dataclass

from ..types import Passage, Sentence


@dataclass(frozen=True, slots=True)
class SentenceEvidence:
    """One sentence of a retrieved passage, scored against the question."""

    #: The sentence's row in the index; passages that overlap share sentences (and rows).
    row: int
    #: With its offsets, page and location: what a citation of it needs.
    sentence: Sentence
    #: Cosine similarity of the question's and the sentence's vectors.
    similarity: float
    #: Dot product of their latent-term vectors (0 when the embedder has no latent head).
    latent: float


@dataclass(frozen=True, slots=True)
class PassageEvidence:
    """A retrieved passage, its document's language and its sentences in text order."""

    passage: Passage
    language: str
    sentences: tuple[SentenceEvidence, ...]


@dataclass(frozen=True, slots=True)
class Evidence:
    """Everything answering needs from retrieval, so that it never calls back into it."""

    question: str
    #: The question's language (``"de"`` or ``"en"``).
    language: str
    passages: tuple[PassageEvidence, ...]

    @property
    def ranked(self) -> tuple[Passage, ...]:
        """The passages, best first."""
        return tuple(p.passage for p in self.passages)
