"""Content-addressed storage of large strings: each distinct piece stored once per store.

Newer Claude Code clients write the same large text into every session: the
system prompt and tool schemas (``api-request-shape``, ~40 KB), prompt snapshots
(8–58 KB), the same files re-attached. Stored as it comes, a 2.1.332 session's
events are several times the size of its conversation.

So a backend stores every string of an event's data or metadata that is at least
``MIN_CHARS`` long as a list of chunks named by their SHA-256 (its first 128 bits), each chunk kept
(zlib-compressed) once in the store's ``blobs`` table whatever the session, the
event or the stream. Chunk boundaries are content-defined (they fall after a
newline or a JSON separator whose preceding bytes hash to a chosen value), so the
same text inside two different lines (a raw record whose first bytes name another
session and time) still splits into the same chunks after the first boundary.

The event read back is exactly the event appended: ``encode`` replaces such a
string by ``{MARKER: [hash, ...]}`` and ``decode`` puts it back. Only a backend
calls these; nothing above the store port sees a chunk.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable, Iterable
from typing import Any

from kapacitor.store import codec

MIN_CHARS = 4096
"""Strings at least this long are stored as chunks."""
MIN_CHUNK, MAX_CHUNK = 1024, 32768
"""Chunk sizes in characters: no boundary before MIN_CHUNK, always one by MAX_CHUNK."""
MARKER = "\x00chunks"
"""The key of the object that stands for a chunked string (a NUL-led key no client writes)."""
MARKER_BYTES = codec.dumps(MARKER)[1:-1]
_WINDOW = 24

Chunks = dict[str, bytes]
"""Chunk hash -> chunk: as ``encode`` collects them (UTF-8), as stored and fetched
(zlib-compressed)."""


def split(text: str) -> list[str]:
    """``text`` cut at content-defined boundaries; ``"".join`` gives it back.

    A boundary falls right after a newline (escaped, ``\\n``, in a raw JSON line;
    real in a decoded string: whichever the text has more of) whose preceding
    ``_WINDOW`` characters hash to a chosen value, at least ``MIN_CHUNK`` after the
    last one; past ``MAX_CHUNK`` without one, a cut is forced. ``str.find`` from
    ``MIN_CHUNK`` past the last cut keeps it to a few searches and hashes per chunk
    (a regex runs at a tenth of the speed on the non-ASCII strings transcripts are)."""
    separator = "\\n" if text.count("\\n") >= text.count("\n") else "\n"
    pieces, last, size = [], 0, len(text)
    while size - last > MIN_CHUNK:
        cut, pos, limit = 0, last + MIN_CHUNK, last + MAX_CHUNK
        while not cut:
            found = text.find(separator, pos, limit)
            end = found + len(separator)
            if found < 0:
                cut = min(size, limit)
            elif zlib.crc32(_utf8(text[end - _WINDOW : end])) & 7 == 0:
                cut = end
            else:
                pos = end
        if cut >= size:
            break
        pieces.append(text[last:cut])
        last = cut
    pieces.append(text[last:])
    return pieces


def encode(value: dict[str, Any], chunks: Chunks) -> bytes:
    """``value`` as stored JSON, its long strings replaced by chunk references; the
    chunks it needs are added to ``chunks``."""
    raw = codec.dumps(value)
    if len(raw) < MIN_CHARS:  # no string inside can be that long
        return raw
    return codec.dumps(_out(value, chunks))


def _out(value: Any, chunks: Chunks) -> Any:
    if isinstance(value, str):
        if len(value) < MIN_CHARS:
            return value
        names = []
        for piece in split(value):
            data = _utf8(piece)
            name = hashlib.sha256(data).hexdigest()[:32]  # 128 bits: no collision in any store
            chunks[name] = data
            names.append(name)
        return {MARKER: names}
    if isinstance(value, dict):
        return {k: _out(v, chunks) for k, v in value.items()}
    if isinstance(value, list):
        return [_out(v, chunks) for v in value]
    return value


def new_rows(chunks: Chunks, stored: Iterable[str]) -> list[tuple[str, bytes]]:
    """The (hash, compressed chunk) rows to insert: the chunks ``encode`` collected
    that are not ``stored`` yet (only those are worth compressing)."""
    known = set(stored)
    return [(name, zlib.compress(data, 1)) for name, data in chunks.items() if name not in known]


def orphans(stored: Iterable[str], rows: Iterable[tuple[bytes, bytes]]) -> list[str]:
    """The ``stored`` chunk hashes that none of ``rows`` (stored data, metadata)
    refers to: what a rewrite (``kapacitor scrub``) leaves behind."""
    referred: set[str] = set()
    for data, metadata in rows:
        referred.update(references(bytes(data)))
        referred.update(references(bytes(metadata)))
    return [name for name in stored if name not in referred]


def references(raw: bytes) -> list[str]:
    """The chunk hashes stored JSON refers to (none for most events)."""
    if MARKER_BYTES not in raw:
        return []
    found: list[str] = []
    _walk(codec.loads(raw), found)
    return found


def _walk(value: Any, found: list[str]) -> None:
    if isinstance(value, dict):
        if MARKER in value and len(value) == 1:
            found.extend(value[MARKER])
            return
        for v in value.values():
            _walk(v, found)
    elif isinstance(value, list):
        for v in value:
            _walk(v, found)


def decode(raw: bytes, fetch: Callable[[Iterable[str]], Chunks]) -> Any:
    """Stored JSON back to the value appended; ``fetch`` gives the compressed chunks
    of the hashes asked for."""
    value = codec.loads(raw)
    if MARKER_BYTES not in raw:
        return value
    names: list[str] = []
    _walk(value, names)
    return _in(value, fetch(set(names)))


def _in(value: Any, chunks: Chunks) -> Any:
    if isinstance(value, dict):
        if MARKER in value and len(value) == 1:
            return "".join(zlib.decompress(chunks[n]).decode("utf-8", "surrogatepass") for n in value[MARKER])
        return {k: _in(v, chunks) for k, v in value.items()}
    if isinstance(value, list):
        return [_in(v, chunks) for v in value]
    return value


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")
