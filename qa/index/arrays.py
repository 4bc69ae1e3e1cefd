"""numpy ``.npy`` files of an index version: written by appending, read memory-mapped.

Every array of a version is a plain ``.npy`` file (a fixed header, then the raw data; no
pickle). :class:`AppendArray` writes one row block after another without knowing the final
length: it reserves a header of fixed size and fills in the shape when closed.
:func:`open_array` maps a file read-only, so loading costs no copy and the pages a query
touches are file-backed (shared, reclaimable) memory; ``random=True`` tells the kernel that
reads are scattered, so it does not read ahead megabytes around every candidate row.
"""

from __future__ import annotations

import ast
import mmap
import os
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from ..errors import IndexCorruptError

_MAGIC = b"\x93NUMPY\x01\x00"
#: Header bytes (magic, version, length and the padded dict): room for any 2-D shape.
_HEADER_BYTES = 128


def _header(dtype: np.dtype[Any], shape: tuple[int, ...]) -> bytes:
    described = {
        "descr": np.lib.format.dtype_to_descr(dtype),
        "fortran_order": False,
        "shape": shape,
    }
    text = repr(described)
    body = text.encode("latin1")
    room = _HEADER_BYTES - len(_MAGIC) - 2
    if len(body) + 1 > room:  # pragma: no cover - only for shapes with ~20 dimensions
        raise ValueError(f"npy header for shape {shape} does not fit {_HEADER_BYTES} bytes")
    body = body + b" " * (room - len(body) - 1) + b"\n"
    return _MAGIC + len(body).to_bytes(2, "little") + body


class AppendArray:
    """An ``.npy`` file of rows of one dtype and row shape, written block by block."""

    def __init__(self, path: Path, dtype: npt.DTypeLike, row_shape: tuple[int, ...] = ()) -> None:
        self.path = path
        self.dtype = np.dtype(dtype)
        self.row_shape = row_shape
        self.rows = 0
        self._file: BinaryIO = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._file.write(_header(self.dtype, (0, *row_shape)))

    def append(self, block: npt.ArrayLike) -> None:
        array = np.ascontiguousarray(block, dtype=self.dtype)
        if array.shape[1:] != self.row_shape:
            raise ValueError(
                f"{self.path.name}: rows of shape {array.shape[1:]}, expected {self.row_shape}"
            )
        self._file.write(array.tobytes())
        self.rows += len(array)

    def close(self) -> None:
        """Write the final shape into the header and close the file."""
        if self._file.closed:
            return
        self._file.seek(0)
        self._file.write(_header(self.dtype, (self.rows, *self.row_shape)))
        self._file.close()

    def abort(self) -> None:
        """Close the file unfinished (its folder is being deleted)."""
        self._file.close()

    def __enter__(self) -> AppendArray:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_array(path: Path, array: npt.ArrayLike) -> None:
    """Write a whole array as ``.npy`` (no pickle)."""
    np.save(path, np.asarray(array), allow_pickle=False)


def _read_header(path: Path, handle: BinaryIO) -> tuple[np.dtype[Any], tuple[int, ...], int]:
    magic = handle.read(len(_MAGIC) - 2)
    if magic != _MAGIC[:6]:
        raise ValueError("not a .npy file")
    version = handle.read(2)
    size_bytes = 2 if version[0] == 1 else 4
    size = int.from_bytes(handle.read(size_bytes), "little")
    header = ast.literal_eval(handle.read(size).decode("latin1"))
    if not isinstance(header, dict) or header.get("fortran_order") is not False:
        raise ValueError("unsupported .npy header")
    dtype = np.lib.format.descr_to_dtype(header["descr"])
    if dtype.hasobject:
        raise ValueError("object arrays (pickles) are refused")
    shape = tuple(int(n) for n in header["shape"])
    return dtype, shape, 8 + size_bytes + size


def open_array(
    path: Path,
    *,
    dtype: npt.DTypeLike | None = None,
    row_shape: tuple[int, ...] | None = None,
    rows: int | None = None,
    random: bool = False,
) -> npt.NDArray[Any]:
    """Map an ``.npy`` file read-only; check its dtype, row shape and row count if given.

    A mismatch raises :class:`IndexCorruptError` naming the file.
    """
    try:
        with open(path, "rb") as handle:
            found, shape, offset = _read_header(path, handle)
            length = os.fstat(handle.fileno()).st_size
            count = int(np.prod(shape, dtype=np.int64))
            if offset + count * found.itemsize != length:
                raise ValueError(f"{length} bytes, but its header describes {shape} {found}")
            if count == 0:
                return np.zeros(shape, found)
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError, SyntaxError, KeyError, TypeError) as exc:
        raise IndexCorruptError(
            f"Index file {path} is unreadable ({exc}); run `qa build` to rebuild."
        ) from exc
    if random:
        mapped.madvise(mmap.MADV_RANDOM)
    array: npt.NDArray[Any] = np.ndarray(shape, dtype=found, buffer=mapped, offset=offset)
    problems = []
    if dtype is not None and found != np.dtype(dtype):
        problems.append(f"dtype {found}, expected {np.dtype(dtype)}")
    if row_shape is not None and shape[1:] != row_shape:
        problems.append(f"rows of shape {shape[1:]}, expected {row_shape}")
    if rows is not None and shape[0] != rows:
        problems.append(f"{shape[0]} rows, expected {rows}")
    if problems:
        raise IndexCorruptError(
            f"Index file {path} holds {'; '.join(problems)}; run `qa build` to rebuild."
        )
    return array


class RowReader:
    """Rows of an opened ``.npy`` array, read with ``os.pread`` instead of through the map.

    Questions read a few hundred scattered vector rows. Through a memory map every page they
    touch — and, when the file is in the page cache, the kernel's fault-around neighbours of
    each — counts as the process's resident memory until the kernel reclaims it: at 1M
    passages 4.5 GB after 200 questions. Read with ``pread`` the same bytes come from the same
    page cache, but the process keeps only the copies it asked for. Thread-safe (``pread``
    has no file position). Where ``os.pread`` does not exist the map is read instead.
    """

    def __init__(self, path: Path, array: npt.NDArray[Any]) -> None:
        self._path = path
        self._array = array
        self._row_bytes = int(array.dtype.itemsize * int(np.prod(array.shape[1:], dtype=np.int64)))
        self._fd: int | None = None
        if hasattr(os, "pread") and array.size:
            try:
                fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            except OSError as exc:
                raise IndexCorruptError(
                    f"Index file {path} is unreadable ({exc.strerror or exc}); "
                    "run `qa build` to rebuild."
                ) from exc
            # open_array checked that the data ends the file.
            self._offset = os.fstat(fd).st_size - array.nbytes
            self._fd = fd
            weakref.finalize(self, os.close, fd)

    def __len__(self) -> int:
        return len(self._array)

    def _read(self, first: int, end: int) -> npt.NDArray[Any]:
        if self._fd is None or end <= first:
            return np.array(self._array[first:end])
        size = (end - first) * self._row_bytes
        data = os.pread(self._fd, size, self._offset + first * self._row_bytes)
        if len(data) != size:  # the file shrank under us: the index was damaged
            raise IndexCorruptError(
                f"Index file {self._path} ends before row {end} (it changed after loading); "
                "run `qa build` to rebuild."
            )
        return np.frombuffer(data, self._array.dtype).reshape(end - first, *self._array.shape[1:])

    def range(self, first: int, end: int) -> npt.NDArray[Any]:
        """Rows ``first`` to ``end`` (exclusive), one read."""
        if not 0 <= first <= end <= len(self._array):
            raise IndexError(f"rows {first}..{end} outside 0..{len(self._array)}")
        return self._read(first, end)

    def ranges(self, bounds: Sequence[tuple[int, int]]) -> npt.NDArray[Any]:
        """Rows ``first`` to ``end`` of each pair, one after another (one read per pair)."""
        if not bounds:
            return np.empty((0, *self._array.shape[1:]), self._array.dtype)
        return np.concatenate([self.range(first, end) for first, end in bounds])

    def take(self, rows: Sequence[int]) -> npt.NDArray[Any]:
        """The given rows in the given order; each run of consecutive rows is one read."""
        out = np.empty((len(rows), *self._array.shape[1:]), self._array.dtype)
        j = 0
        while j < len(rows):
            run = j + 1
            while run < len(rows) and rows[run] == rows[run - 1] + 1:
                run += 1
            out[j:run] = self.range(int(rows[j]), int(rows[j]) + run - j)
            j = run
        return out
