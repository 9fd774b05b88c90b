"""The validation boundary: events leave the normalizer with the documented types.

Transcripts are untrusted: a year of history holds records cut mid-line, written
by older clients, or with a lone UTF-16 surrogate where Node cut an emoji. This
module is the one place that checks shapes; ``Normalizer.feed`` calls it on
every line (``envelope`` before mapping, ``checked`` after). Everything after
the normalizer (store, projections, pages) trusts event data:

- ``timestamp`` (and ``retained_at``): UTC ISO 8601 with milliseconds
  (``2026-01-02T03:04:05.678Z``), or ``""`` when the record has none or an
  unparseable one. A time with an offset is converted to UTC; one without is
  taken as UTC.
- fields declared ``int`` (``message_index``, ``pre_tokens``, ``duration_ms``,
  ``retry_attempt``) and the token counts in ``metadata["$usage"]``:
  integers in ``0..MAX_COUNT``; anything else becomes 0.
- fields declared ``str``: strings (a number or bool as its text, an object or
  list as its JSON text, null as ``""``); ``bool``: booleans; ``dict``: objects;
  ``tool_calls``: a list of objects whose ``call_id``, ``tool_name`` and
  ``tool_kind`` are strings and ``arguments`` an object.
- every string anywhere in the data is valid Unicode: a lone surrogate is
  replaced by U+FFFD (the raw line in ``metadata.raw`` keeps it as written);
  objects nested deeper than ``MAX_DEPTH`` are replaced by their JSON text.
- the ``claude_code`` extension fields that read models and pages use
  (``is_error``, ``kind``, ``tool_use_id``, ``tool_use_result.structuredPatch``,
  ...) have the types they expect (see ``_EXTENSION_TEXT``).

Whatever was replaced is named in ``metadata["$invalid"]`` (field path → the
original value's JSON text, cut to 200 characters), and the importer warns with
file and line. A record whose shape the mapping cannot follow at all becomes an
``UnknownRecordReceived`` (``Normalizer.feed``), raw text kept.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from kapacitor.events import EVENT_TYPES, TOKEN_FIELDS, USAGE_METADATA_KEY, NewEvent
from kapacitor.store import codec

MAX_COUNT = 10**12
"""The largest count kept: no API call uses a trillion tokens, and sums of such
counts stay far inside SQLite's 64-bit integers."""
MAX_DEPTH = 64
"""Nesting kept in event data; deeper values are kept as JSON text."""
INVALID_METADATA_KEY = "$invalid"

# Record fields the mapping reads as strings, and ``message``, which it reads as an object.
_ENVELOPE_TEXT = frozenset(
    "type uuid parentUuid sessionId cwd gitBranch version agentId requestId entrypoint"
    " permissionMode subtype level userType slug".split()
)
_USAGE_TEXT = ("model", "message_id", "request_id")
_USAGE_COUNTS = TOKEN_FIELDS
_TOOL_CALL_TEXT = ("call_id", "tool_name", "tool_kind")
# extensions.claude_code fields downstream reads as text (None allowed: "not said").
_EXTENSION_TEXT = frozenset(
    "kind command args cwd git_branch version entrypoint permission_mode repository remote_url user"
    " tool_use_id description agent_type request_id error_kind uuid parent_uuid".split()
)
_CANONICAL_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class _Invalid(dict[str, str]):
    """Field path → the replaced value, as short JSON text."""

    def note(self, path: str, value: Any) -> None:
        try:
            text = codec.dumps(value).decode("utf-8", "replace")
        except (TypeError, ValueError, RecursionError):
            text = repr(value)
        self[path] = _clean_text(text[:200])


def envelope(record: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The record with its envelope fields usable by the mapping: a string field
    (``cwd``, ``uuid``, ...) that is not a string or null, or a ``message`` that is
    not an object, is dropped (as if absent) and noted. Returns the record (a copy
    when something was dropped) and the notes."""
    invalid = _Invalid()
    for key, value in record.items():
        if type(value) is not str and value is not None and key in _ENVELOPE_TEXT:
            invalid.note(key, value)
    message = record.get("message")
    if message is not None and type(message) is not dict:
        invalid.note("message", message)
    if not invalid:
        return record, invalid
    return {k: v for k, v in record.items() if k not in invalid}, invalid


@dataclass(frozen=True)
class LineFacts:
    """What one line's text says about the checks its events need: its envelope
    ``notes``; ``scrub``: its strings may hold lone surrogates; ``deep``: its
    containers may nest deeper than ``MAX_DEPTH``. The defaults check everything."""

    notes: dict[str, str] = field(default_factory=dict)
    scrub: bool = True
    deep: bool = True


_SOUND = LineFacts({}, False, False)
"""A line whose events need only their fields' types checked (most lines)."""


def parse(text: str) -> tuple[Any, bool]:
    """A line's JSON and whether the lenient parser had to read it. orjson refuses
    lone surrogates (and NaN, integers past 64 bits, nesting past 1,024): only a
    line it refuses can hold one, so only such a line's strings are scrubbed.
    Raises ``ValueError`` (or ``RecursionError``) for text that is not JSON."""
    try:
        return orjson.loads(text), False
    except orjson.JSONDecodeError:
        return json.loads(text), True


def line_facts(text: str, record: dict[str, Any], notes: dict[str, str], lenient: bool = True) -> LineFacts:
    """The facts of a parsed line, found cheaply: a lone surrogate needs a line
    orjson refused (``lenient``, from ``parse``) and a ``\\uD8..`` escape in its
    text; deep nesting needs as many brackets (then the record is walked to be
    sure)."""
    scrub = lenient and _SURROGATE_ESCAPE.search(text) is not None
    limit = MAX_DEPTH - _WRAPPING
    deep = text.count("[") + text.count("{") > limit and _nests_deeper(record, limit)
    if not (notes or scrub or deep):
        return _SOUND
    return LineFacts(notes, scrub, deep)


def checked(event: NewEvent, facts: LineFacts = LineFacts()) -> NewEvent:
    """``event`` with its data of the declared types (see the module docstring).
    The normalizer's fresh ``event.data`` is corrected in place."""
    invalid = _Invalid(facts.notes)
    data = event.data
    for name, kind in _SPECS.get(event.type, ()):
        if name not in data:
            continue
        value = data[name]
        if _FITS[kind](value):  # the usual case, decided without a call per field
            continue
        if kind == "str":
            data[name] = _text(name, value, invalid)
        elif kind == "time":
            stamp = _utc_text(value) if type(value) is str else utc_timestamp(value)
            if stamp is None:
                invalid.note(name, value)
                data[name] = ""
            elif stamp is not value:
                data[name] = stamp
        else:
            data[name] = _field(name, kind, value, invalid)
    ext = data.get("extensions")
    if ext and type(ext) is dict and type(ours := ext.get("claude_code")) is dict:
        checked_ext = _extension(ours, invalid)
        if checked_ext is not ours:
            data["extensions"] = ext | {"claude_code": checked_ext}
    if facts.scrub or facts.deep:
        data = _deep(data, facts.scrub, invalid, "", 0)
    metadata = event.metadata
    usage = metadata.get(USAGE_METADATA_KEY)
    if usage is not None:
        valid_usage = _usage(usage, invalid)
        if facts.scrub or facts.deep:
            valid_usage = _deep(valid_usage, facts.scrub, invalid, "$usage", 0)
        if valid_usage is not usage:
            metadata = metadata | {USAGE_METADATA_KEY: valid_usage}
    if invalid:
        metadata = metadata | {INVALID_METADATA_KEY: dict(invalid)}
    if data is event.data and metadata is event.metadata:
        return event
    return NewEvent(event.id, event.type, data, metadata)


@functools.lru_cache(maxsize=4096)
def _utc_text(value: str) -> str | None:
    """``utc_timestamp`` of a string, remembered: a line's events share their time."""
    return utc_timestamp(value)


def utc_timestamp(value: Any) -> str | None:
    """``value`` as canonical UTC text, ``""`` for none, None when it is not a time."""
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if _CANONICAL_TIME.fullmatch(value):
        return value
    if parsed.tzinfo is not None:
        try:
            parsed = parsed.astimezone(UTC)
        except OverflowError:  # year 1 minus an offset
            return None
    return parsed.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def count(value: Any) -> int | None:
    """``value`` as a count in ``0..MAX_COUNT``, None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and 0 <= value <= MAX_COUNT:
        return value
    return None


def _kind(name: str, declared: str) -> str:
    """How a declared field is checked: time, str, int, bool, dict, list, tool_calls or any."""
    if name in ("timestamp", "retained_at"):
        return "time"
    if name == "tool_calls":
        return name
    if declared.startswith(("dict", "list")):
        return declared[:4]
    return declared if declared in ("str", "int", "bool") else "any"


_SPECS = {
    name: tuple(
        (f.name, kind) for f in dataclasses.fields(cls) if (kind := _kind(f.name, str(f.type))) != "any"
    )
    for name, cls in EVENT_TYPES.items()
}


def _tool_calls_fit(value: Any) -> bool:
    return type(value) is list and all(
        type(call) is dict
        and type(call.get("call_id")) is str
        and type(call.get("tool_name")) is str
        and type(call.get("tool_kind")) is str
        and type(call.get("arguments")) is dict
        for call in value
    )


_FITS = {
    "str": lambda v: type(v) is str,
    "time": lambda v: type(v) is str and _utc_text(v) == v,
    "int": lambda v: type(v) is int and 0 <= v <= MAX_COUNT,
    "bool": lambda v: type(v) is bool,
    "dict": lambda v: type(v) is dict,
    "list": lambda v: type(v) is list and all(type(item) is dict for item in v),
    "tool_calls": _tool_calls_fit,
}
"""Whether a value already has its field's type (then it is kept as it is)."""
_WRAPPING = 4  # levels events add around a record's values (data, extensions, claude_code, ...)


def _field(name: str, declared: str, value: Any, invalid: _Invalid) -> Any:
    if declared == "int":
        number = count(value if value is not None else 0)
        if number is None:
            invalid.note(name, value)
            return 0
        return number
    if declared == "bool":
        if not isinstance(value, bool):
            invalid.note(name, value)
            return bool(value)
        return value
    if declared == "dict":
        if not isinstance(value, dict):
            invalid.note(name, value)
            return {}
        return value
    if declared in ("list", "tool_calls"):
        if not isinstance(value, list):
            invalid.note(name, value)
            return []
        if declared == "tool_calls":
            return [_tool_call(i, call, invalid) for i, call in enumerate(value)]
        return [item if isinstance(item, dict) else {"value": item} for item in value]
    return value


def _text(path: str, value: Any, invalid: _Invalid) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    invalid.note(path, value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return _json_text(value)


def _tool_call(index: int, call: Any, invalid: _Invalid) -> dict[str, Any]:
    path = f"tool_calls.{index}"
    if not isinstance(call, dict):
        invalid.note(path, call)
        call = {}
    out = dict(call)
    for key in _TOOL_CALL_TEXT:
        out[key] = _text(f"{path}.{key}", call.get(key), invalid)
    arguments = call.get("arguments")
    if not isinstance(arguments, dict):
        if arguments is not None:
            invalid.note(f"{path}.arguments", arguments)
        out["arguments"] = {} if arguments is None else {"input": arguments}
    return out


def _extension(ext: dict[str, Any], invalid: _Invalid) -> dict[str, Any]:
    """The claude_code extension with the fields downstream reads of their types;
    ``ext`` itself when they are."""
    bad = [k for k, v in ext.items() if type(v) is not str and v is not None and k in _EXTENSION_TEXT]
    if not bad and _extension_fits(ext):
        return ext
    out = dict(ext)
    for key in bad:
        out[key] = _text(f"extensions.claude_code.{key}", ext[key], invalid)
    if "is_error" in ext and not isinstance(ext["is_error"], bool):
        out["is_error"] = bool(ext["is_error"])
    images = ext.get("images")
    if images is not None and not (isinstance(images, list) and all(isinstance(i, dict) for i in images)):
        invalid.note("extensions.claude_code.images", images)
        out.pop("images")
    result = ext.get("tool_use_result")
    if isinstance(result, dict):
        out["tool_use_result"] = _tool_use_result(result, invalid)
    return out


def _extension_fits(ext: dict[str, Any]) -> bool:
    """Whether ``is_error``, ``images`` and ``tool_use_result`` already have their types."""
    if type(ext.get("is_error", False)) is not bool:
        return False
    images = ext.get("images")
    if images is not None and not (type(images) is list and all(type(i) is dict for i in images)):
        return False
    result = ext.get("tool_use_result")
    if type(result) is not dict:
        return True
    for key in ("type", "filePath", "agentId", "status") + (("content",) if result.get("type") == "create" else ()):
        if type(result.get(key, "")) is not str and result.get(key) is not None:
            return False
    patch = result.get("structuredPatch")
    return patch is None or (
        type(patch) is list
        and all(type(h) is dict and type(lines := h.get("lines", [])) is list and all(type(x) is str for x in lines) for h in patch)
    )


def _tool_use_result(result: dict[str, Any], invalid: _Invalid) -> dict[str, Any]:
    """The structured tool result's fields read models use: ``type`` text (and a
    created file's ``content``), ``structuredPatch`` a list of hunks whose ``lines``
    are text."""
    out = dict(result)
    path = "extensions.claude_code.tool_use_result"
    text_keys = ("type", "filePath", "agentId", "status") + (("content",) if result.get("type") == "create" else ())
    for key in text_keys:
        if key in result and result[key] is not None and not isinstance(result[key], str):
            out[key] = _text(f"{path}.{key}", result[key], invalid)
    patch = result.get("structuredPatch")
    if patch is not None:
        hunks = patch if isinstance(patch, list) else []
        good = [
            h for h in hunks
            if isinstance(h, dict) and isinstance(h.get("lines", []), list) and all(isinstance(x, str) for x in h.get("lines", []))
        ]
        if len(good) != len(hunks) or not isinstance(patch, list):
            invalid.note(f"{path}.structuredPatch", patch)
            out["structuredPatch"] = good
    return out


def _usage(usage: Any, invalid: _Invalid) -> dict[str, Any]:
    if type(usage) is dict and _usage_ok(usage):
        return usage
    if not isinstance(usage, dict):
        invalid.note("$usage", usage)
        usage = {}
    out = dict(usage)
    for key in _USAGE_TEXT:
        out[key] = _text(f"$usage.{key}", usage.get(key), invalid)
    for key in _USAGE_COUNTS:
        number = count(usage.get(key) or 0)
        if number is None:
            invalid.note(f"$usage.{key}", usage.get(key))
            number = 0
        out[key] = number
    return out


def _usage_ok(usage: dict[str, Any]) -> bool:
    for key in _USAGE_TEXT:
        if type(usage.get(key)) is not str:
            return False
    for key in _USAGE_COUNTS:
        n = usage.get(key)
        if type(n) is not int or not 0 <= n <= MAX_COUNT:
            return False
    return True


def _deep(value: Any, scrub: bool, invalid: _Invalid, path: str, depth: int) -> Any:
    """``value`` with lone surrogates replaced (when ``scrub``) and anything nested
    deeper than ``MAX_DEPTH`` kept as JSON text."""
    if isinstance(value, str):
        cleaned = _clean_text(value) if scrub else value
        if cleaned is not value:
            invalid.note(path, value)
        return cleaned
    if isinstance(value, (dict, list)) and depth >= MAX_DEPTH:
        invalid.note(path or "data", "nested deeper than 64 levels")
        return _clean_text(_json_text(value))
    if isinstance(value, dict):
        return {
            (_clean_text(k) if scrub and isinstance(k, str) else k): _deep(v, scrub, invalid, f"{path}.{k}" if path else str(k), depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_deep(v, scrub, invalid, f"{path}.{i}", depth + 1) for i, v in enumerate(value)]
    return value


def _nests_deeper(value: Any, limit: int) -> bool:
    """Whether ``value`` nests containers deeper than ``limit`` (without recursion)."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def _clean_text(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _LONE_SURROGATE.sub("\ufffd", text)
    return text


def _json_text(value: Any) -> str:
    try:
        return codec.dumps(value).decode("utf-8", "replace")
    except (TypeError, ValueError, RecursionError):
        return repr(value)
