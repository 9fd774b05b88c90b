"""Content-defined chunks (store/blobs.py): any text comes back exactly, and the
same text behind a different start shares its chunks."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from kapacitor.store import blobs

LINES = "".join(f'{{"name":"tool{i}","description":"{hashlib.sha256(str(i).encode()).hexdigest()}. Use it."}},\\n' for i in range(800))


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.text(alphabet=st.sampled_from(['a', 'b', '\n', '\\', 'n', '"', ',', '{', '}', '.', ' ', 'é', '\ud800']), max_size=80_000))
def test_split_gives_the_text_back(text):
    pieces = blobs.split(text)
    assert "".join(pieces) == text
    assert all(len(p) <= blobs.MAX_CHUNK for p in pieces)


@settings(max_examples=50, deadline=None, derandomize=True)
@given(st.text(max_size=300), st.text(max_size=300))
def test_a_different_start_still_shares_the_rest(head_a, head_b):
    a, b = blobs.split(head_a + LINES), blobs.split(head_b + LINES)
    shared = sum(len(p) for p in set(a) & set(b))
    assert shared > len(LINES) - 2 * blobs.MAX_CHUNK


def test_encode_and_decode_round_trip_with_chunks_stored_once():
    value = {"raw": LINES, "nested": [{"x": LINES + "tail"}], "small": "s", "n": 1}
    chunks: blobs.Chunks = {}
    stored = blobs.encode(value, chunks)
    assert len(stored) < len(LINES) / 10 and blobs.MARKER_BYTES in stored
    rows = dict(blobs.new_rows(chunks, []))
    assert blobs.decode(stored, lambda names: {n: rows[n] for n in names}) == value
    assert len(chunks) < 2 * len(blobs.split(LINES))  # the two copies share their chunks
