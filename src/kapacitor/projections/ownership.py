"""Which session a record belongs to, so everything is counted once across the store.

A resumed or forked session (and ``--continue``) writes a new file that first
replays records of the old one: the same ``uuid``, message id and request id,
``sessionId`` rewritten (or new uuids over the same API calls). Counting them
again would double tokens, cost, prompts, tool calls and files, and stretch the
new session back to the old one's start.

The rule, in one place: a record belongs to the session that holds it **first
in the log**. What identifies a record (``record_keys``): its ``uuid``, the API
call it reports (message id + request id: only the API writes both). A user message or tool
result replayed under a new uuid has neither and is counted again (its time and
text are no key: copies of a session, as the demo set's, share them; a replayed
result answers a call its session does not count, so it changes no file). An event
any of whose keys another session already owns is *inherited*: the later
session shows it as history (collapsed, marked) but counts none of it; the two
sessions form a chain ("continued from" / "continued in").

The importer reads a folder's transcripts in order of their first and last
record times (``capture/transcripts.py``), and live capture sends a session as
it happens, so "first in the log" is the session that made the record. The
owner of a key never changes as the log grows, so any read model at any
position gets the same answer from the ``ownership`` read model (listed first
in the catalog) as from a fold over the log (``Owners``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from kapacitor.events import USAGE_METADATA_KEY, RecordedEvent
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


def leaf_key(uuid: str) -> str:
    """The key of the record a ``summary`` title names by ``leafUuid``."""
    return f"u:{uuid}"


class Owners:
    """Key owners as a fold sees them: the first session to claim a key owns it."""

    def __init__(self, known: dict[str, str] | None = None):
        self.owners: dict[str, str] = known if known is not None else {}

    def claim(self, event: RecordedEvent, session_id: str) -> str | None:
        """The session ``event`` is inherited from, or None when it is
        ``session_id``'s own (its keys are then claimed for it)."""
        keys = record_keys(event)
        for key in keys:
            owner = self.owners.get(key)
            if owner is not None and owner != session_id:
                return owner
        for key in keys:
            self.owners.setdefault(key, session_id)
        return None

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

    keyed = [(event, sid, keys) for event in events if (sid := session_of(event)) and (keys := record_keys(event))]
    known = _owners(conn, {key for _, _, keys in keyed for key in keys})
    before = dict(known)
    owners = Owners(known)
    inherited = []
    for event, sid, _ in keyed:
        owner = owners.claim(event, sid)
        if owner is not None:
            inherited.append((event.position, sid, owner))
    conn.executemany(
        "INSERT INTO record_owners VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
        [(key, sid) for key, sid in owners.owners.items() if key not in before],
    )
    conn.executemany(conn.upsert("inherited_events", ("position", "session_id", "owner"), ("position",)), inherited)


PROJECTION = Projection("ownership", 1, ("record_owners", "inherited_events"), setup, apply)
