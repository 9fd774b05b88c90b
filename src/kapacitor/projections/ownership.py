"""Which session a record belongs to, so everything is counted once across the store.

A resumed or forked session (and ``--continue``) writes a new file that first
replays records of the old one: the same ``uuid``, message id and request id,
``sessionId`` rewritten (or new uuids over the same API calls). Counting them
again would double tokens, cost, prompts, tool calls and files, and stretch the
new session back to the old one's start.

The rule, in one place: a record belongs to the session that holds it **first
in the log**. What identifies a record (``record_keys``): its ``uuid``, the API
call it reports (message id + request id: only the API writes both). An event
any of whose keys another session already owns is *inherited*: the later
session shows it as history (collapsed, marked) but counts none of it; the two
sessions form a chain ("continued from" / "continued in").

A replay may also write new uuids over the same API calls. Its user messages
(prompts, commands, queued prompts, injected context) and tool results then have
no key of their own, nor have records without any uuid (queue operations,
titles), so they carry a *replay key* (``replay_key``): the words (the answered
call's id; all the record says) and the time to the millisecond, which a replay
copies and a person does not type twice. A replay key alone is not enough:
copies of a session under fresh ids (``capture/synthetic.py``) share it too,
and are other sessions. So it makes an event inherited only at the same place
in the chain: its ``parentUuid`` names no record, or a record the same owner
owns (a replayed record is claimed for its owner under its new uuid too). A
prompt typed again after the replay has a new time and stays the new
session's own; the first prompt after the replay, whose parent is replayed
history, has a time no earlier session holds.

The importer reads a folder's transcripts in order of their first and last
record times (``capture/transcripts.py``), and live capture sends a session as
it happens, so "first in the log" is the session that made the record. The
owner of a key never changes as the log grows, so any read model at any
position gets the same answer from the ``ownership`` read model (listed first
in the catalog) as from a fold over the log (``Owners``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence

from kapacitor.envelope import USAGE_METADATA_KEY, RecordedEvent
from kapacitor.projections.runner import Projection
from kapacitor.store.readdb import ReadDb

_CHUNK = 500  # SQLite host parameters per IN (...) query


def record_keys(event: RecordedEvent) -> list[str]:
    """What identifies the record an event came from, across files."""
    data = event.data
    ext = (data.get("extensions") or {}).get("claude_code") or {}
    keys = []
    uuid = ext.get("uuid")
    if isinstance(uuid, str) and uuid:
        keys.append(f"u:{uuid}")
    usage = event.metadata.get(USAGE_METADATA_KEY)
    if usage and usage.get("message_id") and usage.get("request_id"):
        keys.append(f"c:{usage['message_id']}|{usage['request_id']}")
    return keys


def replay_key(event: RecordedEvent) -> str | None:
    """What a replay under new uuids keeps of a user message or tool result: its
    words (the call it answers) and its time; of a record that has no uuid, all
    it says and its time. None for other events and for records without a time."""
    data = event.data
    stamp = data.get("timestamp")
    if not isinstance(stamp, str) or not stamp:
        return None
    ext = (data.get("extensions") or {}).get("claude_code") or {}
    if event.type == "UserMessageReceived":
        said = f"{ext.get('kind') or ''}\x00{data.get('content', '')}"
    elif event.type == "ToolResultReceived" and data.get("call_id"):
        said = f"result\x00{data['call_id']}"
    elif not ext.get("uuid") and event.type != "SessionStarted" and "line" in (event.metadata.get("source") or {}):
        # A transcript record without a uuid (queue operations, client state): all
        # it says. (Hook payloads, which may be megabytes, are no transcript record.)
        said = event.type + json.dumps({k: v for k, v in data.items() if k != "message_index"}, sort_keys=True, default=str)
    else:
        return None
    return f"r:{stamp}|{hashlib.blake2b(said.encode(), digest_size=12).hexdigest()}"


def parent_key(event: RecordedEvent) -> str | None:
    """The key of the record this event's record follows in its chain."""
    parent = ((event.data.get("extensions") or {}).get("claude_code") or {}).get("parent_uuid")
    return f"u:{parent}" if isinstance(parent, str) and parent else None


def leaf_key(uuid: str) -> str:
    """The key of the record a ``summary`` title names by ``leafUuid``."""
    return f"u:{uuid}"


class Owners:
    """Key owners as a fold sees them: the first session to claim a key owns it."""

    def __init__(self, known: dict[str, str] | None = None):
        self.owners: dict[str, str] = known if known is not None else {}

    def claim(self, event: RecordedEvent, session_id: str) -> str | None:
        """The session ``event`` is inherited from, or None when it is
        ``session_id``'s own. Its keys are claimed for whichever it is."""
        keys = record_keys(event)
        owner = next((o for key in keys if (o := self.owners.get(key)) is not None and o != session_id), None)
        replay = replay_key(event)
        if replay is not None:
            if owner is None:
                owner = self._replayed(replay, parent_key(event), session_id)
            keys.append(replay)
        for key in keys:
            self.owners.setdefault(key, owner or session_id)
        return owner

    def _replayed(self, replay: str, parent: str | None, session_id: str) -> str | None:
        """The owner of ``replay`` when this event sits where its owner's did:
        after no record, or after a record that owner owns."""
        owner = self.owners.get(replay)
        if owner is None or owner == session_id:
            return None
        return owner if parent is None or self.owners.get(parent) == owner else None

    def inherited(self, event: RecordedEvent, session_id: str) -> str | None:
        return self.claim(event, session_id)

    def owner_of(self, key: str) -> str | None:
        return self.owners.get(key)


class StoredOwners:
    """Key owners as the ``ownership`` read model has them, for one batch of
    events it has already applied. Where that read model is not kept (a store
    whose runner leaves it out), nothing is inherited."""

    def __init__(self, conn: ReadDb, events: Sequence[RecordedEvent], keys: Iterable[str] = ()):
        self.by_position: dict[int, str] = {}
        self.owners: dict[str, str] = {}
        if not _kept(conn):
            return
        if events:
            rows = conn.execute(
                "SELECT position, owner FROM inherited_events WHERE position BETWEEN ? AND ?",
                (events[0].position, events[-1].position),
            )
            self.by_position = dict(rows)
        self.owners = _owners(conn, set(keys))

    def inherited(self, event: RecordedEvent, session_id: str) -> str | None:
        return self.by_position.get(event.position)

    def owner_of(self, key: str) -> str | None:
        return self.owners.get(key)


def _kept(conn: ReadDb) -> bool:
    return conn.has_table("inherited_events")


def _owners(conn: ReadDb, keys: set[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    listed = list(keys)
    for i in range(0, len(listed), _CHUNK):
        chunk = listed[i : i + _CHUNK]
        rows = conn.execute(
            f"SELECT key, session_id FROM record_owners WHERE key IN ({', '.join('?' * len(chunk))})", chunk
        )
        found.update(rows)
    return found


def chain(conn: ReadDb, session_id: str) -> dict[str, list[str]]:
    """The sessions ``session_id`` inherited history from and those that inherited
    from it: ``{"continued_from": [...], "continued_in": [...]}``."""
    if not _kept(conn):
        return {"continued_from": [], "continued_in": []}
    before = conn.execute("SELECT DISTINCT owner FROM inherited_events WHERE session_id = ? ORDER BY owner", (session_id,))
    after = conn.execute("SELECT DISTINCT session_id FROM inherited_events WHERE owner = ? ORDER BY session_id", (session_id,))
    return {"continued_from": [r[0] for r in before], "continued_in": [r[0] for r in after]}


def inherited_positions(conn: ReadDb, session_id: str) -> dict[int, str]:
    """Position → owning session of every event ``session_id`` inherited."""
    if not _kept(conn):
        return {}
    rows = conn.execute("SELECT position, owner FROM inherited_events WHERE session_id = ?", (session_id,))
    return dict(rows)


def setup(conn: ReadDb) -> None:
    conn.execute("CREATE TABLE record_owners (key TEXT PRIMARY KEY, session_id TEXT NOT NULL)"
                 + (" WITHOUT ROWID" if conn.dialect == "sqlite" else ""))
    position = "INTEGER" if conn.dialect == "sqlite" else "BIGINT"  # SQLite: the rowid itself
    conn.execute(
        f"CREATE TABLE inherited_events (position {position} PRIMARY KEY, session_id TEXT NOT NULL, owner TEXT NOT NULL)"
    )
    conn.execute("CREATE INDEX inherited_events_session ON inherited_events (session_id)")
    conn.execute("CREATE INDEX inherited_events_owner ON inherited_events (owner)")


def apply(conn: ReadDb, events: Sequence[RecordedEvent]) -> None:
    from kapacitor.projections.session_summary import session_of

    keyed = [(event, sid) for event in events if (sid := session_of(event))]
    wanted = set()
    for event, _ in keyed:
        wanted.update(record_keys(event))
        wanted.update(k for k in (replay_key(event), parent_key(event)) if k)
    known = _owners(conn, wanted)
    before = dict(known)
    owners = Owners(known)
    inherited = []
    for event, sid in keyed:
        owner = owners.claim(event, sid)
        if owner is not None:
            inherited.append((event.position, sid, owner))
    conn.executemany(
        "INSERT INTO record_owners VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
        [(key, sid) for key, sid in owners.owners.items() if key not in before],
    )
    conn.executemany(conn.upsert("inherited_events", ("position", "session_id", "owner"), ("position",)), inherited)


PROJECTION = Projection("ownership", 2, ("record_owners", "inherited_events"), setup, apply)
