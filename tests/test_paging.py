"""The session list's cursor (``server/paging.py``): what a page's link carries
comes back as it was made; anything else is refused with a one-line reason
(the 422 of the JSON twin, the problem beside the page's form), never an SQL
error from a value of the wrong type or size."""

from __future__ import annotations

import base64
import json

import pytest

from kapacitor.server import paging


def text(data: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


@pytest.mark.parametrize("cursor", [
    paging.Cursor("", 49, ("2026-11-25T20:58:20.149Z", "708f24f2-dc3e-4588-a43d-59d69a508ed0")),
    paging.Cursor("-cost", 0, (None, "2026-11-25T20:58:20.149Z", "a")),
    paging.Cursor("cost", 7, (0.1 + 0.2, "2026-11-25T20:58:20.149Z", "a")),  # a float comes back to the last bit
    paging.Cursor("title", 3, ("ünïcode « title »", "2026-11-25T20:58:20.149Z", "a")),
    paging.Cursor("-tokens", 100_000, (2**62, "2026", "a")),
])
def test_a_cursor_comes_back_as_it_was_made(cursor):
    assert paging.parse(cursor.text()) == cursor
    assert set(cursor.text()) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")  # as is in a URL


@pytest.mark.parametrize(("given", "reason"), [
    ("x", "not a cursor this server made"),
    (text({"sort": ""}), "not a cursor this server made"),
    (text(["tokens", -1, 5, "s", "a"]), "not a cursor this server made"),
    ("WyJjb3N0IiwwLE5hTiwicyIsImEiXQ", "not a cursor this server made"),  # ["cost",0,NaN,"s","a"]
    (text(["zz", 0, 5, "s", "a"]), "a cursor for an unknown sort 'zz'"),
    (text(["tokens", 0, 5, "s"]), "a cursor cut short or edited"),
    (text(["tokens", 0, None, "s", "a"]), "a cursor cut short or edited"),  # tokens always has a value
    (text(["tokens", 0, 10**30, "s", "a"]), "a cursor cut short or edited"),  # past a 64-bit integer
    (text(["tokens", 0, True, "s", "a"]), "a cursor cut short or edited"),
    (text(["title", 0, 5, "s", "a"]), "a cursor cut short or edited"),
    (text(["", 0, "s", 5]), "a cursor cut short or edited"),
])
def test_anything_else_is_refused_with_a_reason(given, reason):
    with pytest.raises(ValueError, match=reason):
        paging.parse(given)
