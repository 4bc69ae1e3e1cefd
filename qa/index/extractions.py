"""Each content's canonical text and location map, kept in the version folder (no pickle).

``extractions/<content key>.npz`` holds ``text`` (UTF-8 bytes) and the arrays of
:meth:`LocationMap.to_arrays`; one file per distinct content, shared by copies and renames.
A build writes the files of new contents and links (or copies) those of unchanged ones from
the version it replaces, so an unchanged PDF is never parsed again. Queries do not need them
(chunks and sentences carry their page and location); the document view loads one on demand
and checks it against the manifest's checksum first.
"""

from __future__ import annotations

import logging
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np

from ..errors import IndexCorruptError, IndexNotFoundError
from ..ingest.formats import LocationMap
from ..types import Document, DocumentKind, content_key
from . import persist
from .manifest import DocumentRecord, Manifest

logger = logging.getLogger(__name__)

FOLDER = "extractions"


def extraction_name(key: str) -> str:
    """The version-folder path of a content's extraction file.

    >>> extraction_name("ab12")
    'extractions/ab12.npz'
    """
    return f"{FOLDER}/{key}.npz"


def save_extraction(version: Path, key: str, text: str, locations: LocationMap) -> str:
    """Write one content's text and location map; return the file's name in the version."""
    name = extraction_name(key)
    path = version / name
    path.parent.mkdir(exist_ok=True)
    arrays = locations.to_arrays()
    arrays["text"] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    with open(path, "wb") as handle:
        np.savez_compressed(handle, allow_pickle=False, **arrays)
    return name


def carry_extraction(old_version: Path, version: Path, key: str) -> str:
    """Hard-link (else copy) an unchanged content's file from the version this one replaces."""
    name = extraction_name(key)
    target = version / name
    target.parent.mkdir(exist_ok=True)
    try:
        os.link(old_version / name, target)
    except OSError:
        shutil.copyfile(old_version / name, target)
    return name


def _corrupt(path: Path, exc: Exception) -> IndexCorruptError:
    return IndexCorruptError(
        f"Index file {path} is unreadable ({type(exc).__name__}: {exc}); run `qa build` to "
        "rebuild the index."
    )


def load_text(version: Path, key: str) -> str:
    """The canonical text alone (a build reuses it for an unchanged content)."""
    path = version / extraction_name(key)
    try:
        with np.load(path, allow_pickle=False) as arrays:
            return bytes(arrays["text"].tobytes()).decode("utf-8")
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise _corrupt(path, exc) from exc


def load_extraction(version: Path, manifest: Manifest, key: str) -> tuple[str, LocationMap]:
    """A content's text and location map, checked against the manifest's checksum first."""
    name = extraction_name(key)
    persist.check_file(version, name, manifest.files.get(name))
    path = version / name
    try:
        with np.load(path, allow_pickle=False) as arrays:
            text = bytes(arrays["text"].tobytes()).decode("utf-8")
            locations = LocationMap.from_arrays(arrays)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise _corrupt(path, exc) from exc
    return text, locations


def document_of(record: DocumentRecord, source: str, text: str) -> Document:
    """The :class:`Document` an index recorded, under the name ``source`` it is asked for."""
    return Document(
        source=source,
        text=text,
        sha256=record.sha256,
        body_start=record.body_start,
        date=record.date,
        authors=record.authors,
        kind=record.kind,
        title=record.title,
        pages=record.pages,
    )


def stored_document(
    index_dir: Path, source: str, sha256: str, kind: DocumentKind
) -> tuple[Document, LocationMap] | None:
    """The document and location map the live index holds for these bytes, or ``None``.

    ``None`` too when there is no index or its files cannot be used (the caller reads the
    seed itself then); a bad file is logged.
    """
    key = content_key(sha256, kind)
    try:
        version = persist.current_version(index_dir)
        manifest = persist.read_manifest(version)
        record = next((d for d in manifest.documents if d.content_key == key), None)
        if record is None:
            return None
        text, locations = load_extraction(version, manifest, key)
    except IndexNotFoundError:
        return None
    except IndexCorruptError as exc:
        logger.warning("reading %s from its seed: %s", source, exc)
        return None
    return document_of(record, source, text), locations
